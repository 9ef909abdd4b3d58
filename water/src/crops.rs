//! Crops: SIGPAC land plots, crop coefficients, ETc and per-plot water volume.
//!
//! Plots come from GeoJSON (a FeatureCollection of Polygon/MultiPolygon features) or an ESRI
//! shapefile (`.shp` with its `.dbf` beside it), in the DTM's CRS, with the SIGPAC land-use
//! code in the `uso_sigpac` attribute (and an optional id in `id`, `ID`, `recinto` or
//! `plot_id`; else the feature's position). Kc comes from the SIGPAC group table of
//! DESIGN.md (vineyard 0.70, olive 0.70, fruit 0.95, nuts 0.90, citrus 0.65; a mixed-use code
//! takes the first group listing it, as CloudButton's table did), overridable by a CSV
//! `uso_sigpac,kc`. Plots whose use has no Kc (non-arable, pasture, urban, ...) are counted
//! but get no ETc. Rasterising follows GDAL's default: a pixel belongs to a polygon when its
//! centre is inside (even-odd rule, holes honoured); later plots win overlaps.

use std::collections::BTreeMap;
use std::io::Cursor;

use cog::GeoTransform;
use geo::{Area, BoundingRect, Coord, LineString, MultiPolygon, Polygon};
use ndarray::Array2;

/// Errors reading plots or Kc tables.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CropError {
    #[error("{uri}: {message}")]
    Invalid { uri: String, message: String },
}

fn invalid(uri: &str, message: impl Into<String>) -> CropError {
    CropError::Invalid {
        uri: uri.to_string(),
        message: message.into(),
    }
}

/// A land plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    pub id: String,
    /// SIGPAC land-use code (e.g. `OV`, `VI`, `CI`).
    pub uso_sigpac: String,
    pub geometry: MultiPolygon<f64>,
}

/// SIGPAC uses per crop group and the group's Kc (FAO-56 Table 12 mid-season values as
/// chosen by CloudButton), in priority order.
pub const KC_GROUPS: [(&str, f64, &[&str]); 5] = [
    ("vineyard", 0.70, &["VI", "VO", "VF", "FV", "CV"]),
    ("olive", 0.70, &["OV", "VO", "OF", "FL", "OC"]),
    ("fruit", 0.95, &["FY", "VF", "OF", "FF", "CF"]),
    ("nuts", 0.90, &["FS", "FV", "FL", "FF", "CS"]),
    ("citrus", 0.65, &["CI", "CV", "OC", "CF", "CS"]),
];

/// Crop coefficient per SIGPAC use code.
#[derive(Debug, Clone, PartialEq)]
pub struct KcTable(pub BTreeMap<String, f64>);

impl Default for KcTable {
    fn default() -> Self {
        let mut m = BTreeMap::new();
        for (_, kc, codes) in KC_GROUPS {
            for c in codes {
                m.entry(c.to_string()).or_insert(kc);
            }
        }
        KcTable(m)
    }
}

impl KcTable {
    /// Kc of a use code (case-insensitive), if any.
    pub fn kc(&self, uso: &str) -> Option<f64> {
        self.0.get(&uso.trim().to_ascii_uppercase()).copied()
    }

    /// The default table with the rows of a CSV `uso_sigpac,kc` applied on top.
    pub fn with_overrides(uri: &str, csv_bytes: &[u8]) -> Result<KcTable, CropError> {
        let mut t = KcTable::default();
        let mut r = csv::Reader::from_reader(csv_bytes);
        let head = r
            .headers()
            .map_err(|e| invalid(uri, e.to_string()))?
            .clone();
        let pos = |n: &str| head.iter().position(|h| h.trim() == n);
        let (Some(iu), Some(ik)) = (pos("uso_sigpac"), pos("kc")) else {
            return Err(invalid(
                uri,
                "missing column(s): the Kc table needs `uso_sigpac,kc`",
            ));
        };
        for rec in r.records() {
            let rec = rec.map_err(|e| invalid(uri, e.to_string()))?;
            let line = rec.position().map_or(0, |p| p.line());
            let code = rec.get(iu).unwrap_or("").trim().to_ascii_uppercase();
            let kc: f64 = rec
                .get(ik)
                .and_then(|s| s.trim().parse().ok())
                .filter(|k: &f64| (0.0..=2.0).contains(k))
                .ok_or_else(|| {
                    invalid(uri, format!("line {line}: kc must be a number in 0..=2"))
                })?;
            if code.is_empty() {
                return Err(invalid(uri, format!("line {line}: empty uso_sigpac")));
            }
            t.0.insert(code, kc);
        }
        Ok(t)
    }
}

const ID_FIELDS: [&str; 5] = ["id", "ID", "plot_id", "recinto", "RECINTO"];

/// Reads plots from GeoJSON (`.geojson`/`.json`) or a shapefile (`shp` bytes with `dbf`).
pub fn read_geojson(uri: &str, bytes: &[u8]) -> Result<Vec<Plot>, CropError> {
    let text = std::str::from_utf8(bytes).map_err(|_| invalid(uri, "not UTF-8 text"))?;
    let gj: geojson::GeoJson = text
        .parse()
        .map_err(|e| invalid(uri, format!("invalid GeoJSON: {e}")))?;
    let fc = geojson::FeatureCollection::try_from(gj)
        .map_err(|e| invalid(uri, format!("not a FeatureCollection: {e}")))?;
    let mut out = Vec::new();
    for (i, f) in fc.features.into_iter().enumerate() {
        let uso = f
            .property("uso_sigpac")
            .and_then(|v| v.as_str().map(str::to_string))
            .ok_or_else(|| {
                invalid(
                    uri,
                    format!("feature {i} has no string `uso_sigpac` property"),
                )
            })?;
        let id = ID_FIELDS
            .iter()
            .find_map(|k| {
                f.property(k)
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            })
            .unwrap_or_else(|| i.to_string());
        let Some(g) = f.geometry else {
            return Err(invalid(uri, format!("feature {i} has no geometry")));
        };
        let geom: geo::Geometry<f64> = g
            .try_into()
            .map_err(|e: geojson::Error| invalid(uri, format!("feature {i}: {e}")))?;
        let mp = match geom {
            geo::Geometry::Polygon(p) => MultiPolygon(vec![p]),
            geo::Geometry::MultiPolygon(mp) => mp,
            other => {
                return Err(invalid(
                    uri,
                    format!("feature {i} is not a polygon ({other:?})"),
                ));
            }
        };
        out.push(Plot {
            id,
            uso_sigpac: uso,
            geometry: mp,
        });
    }
    Ok(out)
}

/// Reads plots from shapefile bytes (`shp`) and its attribute table (`dbf`).
pub fn read_shapefile(uri: &str, shp: &[u8], dbf: &[u8]) -> Result<Vec<Plot>, CropError> {
    let shape_reader = shapefile::ShapeReader::new(Cursor::new(shp))
        .map_err(|e| invalid(uri, format!("invalid .shp: {e}")))?;
    let dbf_reader = shapefile::dbase::Reader::new(Cursor::new(dbf))
        .map_err(|e| invalid(uri, format!("invalid .dbf: {e}")))?;
    let mut reader = shapefile::Reader::new(shape_reader, dbf_reader);
    let mut out = Vec::new();
    for (i, item) in reader.iter_shapes_and_records().enumerate() {
        let (shape, record) = item.map_err(|e| invalid(uri, format!("record {i}: {e}")))?;
        let text = |k: &str| match record.get(k) {
            Some(shapefile::dbase::FieldValue::Character(Some(s))) => Some(s.trim().to_string()),
            Some(shapefile::dbase::FieldValue::Numeric(Some(n))) => Some(n.to_string()),
            _ => None,
        };
        let uso = text("uso_sigpac")
            .or_else(|| text("USO_SIGPAC"))
            .ok_or_else(|| invalid(uri, format!("record {i} has no `uso_sigpac` attribute")))?;
        let id = ID_FIELDS
            .iter()
            .find_map(|k| text(k))
            .unwrap_or_else(|| i.to_string());
        let mp = match shape {
            shapefile::Shape::Polygon(p) => polygon_to_geo(p.rings()),
            shapefile::Shape::PolygonZ(p) => polygon_to_geo_z(p.rings()),
            shapefile::Shape::PolygonM(p) => polygon_to_geo_m(p.rings()),
            shapefile::Shape::NullShape => continue,
            other => {
                return Err(invalid(
                    uri,
                    format!("record {i} is a {}, not a polygon", other.shapetype()),
                ));
            }
        };
        out.push(Plot {
            id,
            uso_sigpac: uso,
            geometry: mp,
        });
    }
    Ok(out)
}

fn ring_coords<P>(
    ring: &shapefile::PolygonRing<P>,
    xy: impl Fn(&P) -> (f64, f64),
) -> (bool, LineString<f64>) {
    let (outer, pts) = match ring {
        shapefile::PolygonRing::Outer(p) => (true, p),
        shapefile::PolygonRing::Inner(p) => (false, p),
    };
    (
        outer,
        LineString(
            pts.iter()
                .map(|p| {
                    let (x, y) = xy(p);
                    Coord { x, y }
                })
                .collect(),
        ),
    )
}

fn rings_to_mp(rings: Vec<(bool, LineString<f64>)>) -> MultiPolygon<f64> {
    // Inner rings attach to the preceding outer ring (shapefile order).
    let mut polys: Vec<Polygon<f64>> = Vec::new();
    for (outer, ls) in rings {
        if outer || polys.is_empty() {
            polys.push(Polygon::new(ls, vec![]));
        } else if let Some(last) = polys.last_mut() {
            last.interiors_push(ls);
        }
    }
    MultiPolygon(polys)
}

fn polygon_to_geo(rings: &[shapefile::PolygonRing<shapefile::Point>]) -> MultiPolygon<f64> {
    rings_to_mp(
        rings
            .iter()
            .map(|r| ring_coords(r, |p| (p.x, p.y)))
            .collect(),
    )
}
fn polygon_to_geo_z(rings: &[shapefile::PolygonRing<shapefile::PointZ>]) -> MultiPolygon<f64> {
    rings_to_mp(
        rings
            .iter()
            .map(|r| ring_coords(r, |p| (p.x, p.y)))
            .collect(),
    )
}
fn polygon_to_geo_m(rings: &[shapefile::PolygonRing<shapefile::PointM>]) -> MultiPolygon<f64> {
    rings_to_mp(
        rings
            .iter()
            .map(|r| ring_coords(r, |p| (p.x, p.y)))
            .collect(),
    )
}

/// Plots checked before use: self-intersecting ones (a "bowtie" whose signed areas cancel)
/// repaired with [`geo::MakeValid`], empty ones and ones whose coordinates look like
/// longitude/latitude in a projected tile left out, each with a warning naming the plot.
pub fn prepare_plots(plots: Vec<Plot>, tile: crate::interp::Extent) -> (Vec<Plot>, Vec<String>) {
    use geo::{MakeValid, Validation};
    let projected_tile = tile.0.abs() > 360.0 || tile.2.abs() > 360.0 || tile.3.abs() > 180.0;
    let mut out = Vec::with_capacity(plots.len());
    let mut warnings = Vec::new();
    for mut p in plots {
        let Some(bb) = p.geometry.bounding_rect() else {
            warnings.push(format!("plot {}: empty geometry, left out", p.id));
            continue;
        };
        if projected_tile
            && bb.min().x >= -180.0
            && bb.max().x <= 180.0
            && bb.min().y >= -90.0
            && bb.max().y <= 90.0
        {
            warnings.push(format!(
                "plot {}: its coordinates ({:.4}, {:.4}) look like longitude/latitude; plots \
                 must be in the DTM's CRS: left out",
                p.id,
                bb.min().x,
                bb.min().y
            ));
            continue;
        }
        if !p.geometry.is_valid() {
            match p.geometry.make_valid() {
                Ok(mp) if mp.unsigned_area() > 0.0 => {
                    warnings.push(format!(
                        "plot {}: invalid (self-intersecting) polygon repaired: {:.1} m² \
                         (was {:.1} m² by the shoelace formula)",
                        p.id,
                        mp.unsigned_area(),
                        p.geometry.unsigned_area()
                    ));
                    p.geometry = mp;
                }
                Ok(_) => {
                    warnings.push(format!(
                        "plot {}: invalid polygon with no area once repaired, left out",
                        p.id
                    ));
                    continue;
                }
                Err(e) => {
                    warnings.push(format!(
                        "plot {}: invalid polygon that cannot be repaired ({e}), left out",
                        p.id
                    ));
                    continue;
                }
            }
        }
        if p.geometry.unsigned_area() <= 0.0 {
            warnings.push(format!("plot {}: zero area, left out", p.id));
            continue;
        }
        out.push(p);
    }
    (out, warnings)
}

/// Burns plot indices + 1 (0 = no plot) into a `rows`×`cols` grid with geotransform `gt`
/// (north-up): a pixel takes a plot when its centre is inside (even-odd over all rings).
pub fn rasterize(plots: &[Plot], gt: &GeoTransform, rows: usize, cols: usize) -> Array2<u32> {
    let mut out = Array2::<u32>::zeros((rows, cols));
    let g = gt.0;
    for (k, plot) in plots.iter().enumerate() {
        let Some(bb) = plot.geometry.bounding_rect() else {
            continue;
        };
        // Rows whose centre y lies within the plot's y range.
        let (ra, rb) = ((bb.max().y - g[3]) / g[5], (bb.min().y - g[3]) / g[5]);
        let r0 = (ra.min(rb) - 0.5).ceil().max(0.0) as usize;
        let r1 = ((ra.max(rb) - 0.5).floor() + 1.0).clamp(0.0, rows as f64) as usize;
        let mut xs: Vec<f64> = Vec::new();
        for r in r0..r1 {
            let yc = g[3] + (r as f64 + 0.5) * g[5];
            xs.clear();
            for poly in &plot.geometry.0 {
                for ring in std::iter::once(poly.exterior()).chain(poly.interiors()) {
                    for seg in ring.0.windows(2) {
                        let (a, b) = (seg[0], seg[1]);
                        // Half-open rule: count an edge when yc is in [min, max).
                        if (a.y <= yc) != (b.y <= yc) {
                            xs.push(a.x + (yc - a.y) * (b.x - a.x) / (b.y - a.y));
                        }
                    }
                }
            }
            xs.sort_by(f64::total_cmp);
            for pair in xs.chunks_exact(2) {
                // Pixel centres x_c = g0 + (c + 0.5) g1 with pair[0] <= x_c < pair[1].
                let c0 = ((pair[0] - g[0]) / g[1] - 0.5).ceil().max(0.0);
                let c1 = ((pair[1] - g[0]) / g[1] - 0.5).ceil().min(cols as f64);
                if c1 > c0 {
                    for c in c0 as usize..c1 as usize {
                        out[[r, c]] = k as u32 + 1;
                    }
                }
            }
        }
    }
    out
}

/// Water use of one plot over the part of it inside a tile.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlotStats {
    pub plot_id: String,
    pub uso_sigpac: String,
    /// Crop coefficient (empty when the use has none).
    pub kc: Option<f64>,
    /// Polygon area (m², CRS units squared).
    pub area_m2: f64,
    /// Pixels of the tile whose centre is in the plot and that have an ET0.
    pub pixels: u64,
    /// Those pixels' area (m²).
    pub covered_m2: f64,
    /// True when the whole plot lies inside the tile.
    pub complete: bool,
    /// Mean ET0 and ETc over the pixels (mm/day).
    pub et0_mean_mm: Option<f64>,
    pub etc_mean_mm: Option<f64>,
    /// Water use (m³/day) = mean ETc × area / 1000, with the polygon area for a complete
    /// plot and the covered area for a plot cut by the tile edge (additive across tiles).
    pub volume_m3_day: Option<f64>,
}

/// ETc raster (NaN outside plots with a Kc or where ET0 is NaN) and per-plot statistics for
/// plots intersecting the grid. A plot too small to hold a pixel centre takes the pixel that
/// contains its interior point.
///
/// `owned_elsewhere`: extents of other tiles of the same run that own the cells they cover
/// (where DTM tiles overlap, each cell counts once across tiles): pixels whose centre lies
/// in one count for no plot here, and a plot reaching into one is not complete here.
pub fn crop_water(
    plots: &[Plot],
    kc: &KcTable,
    et0: &Array2<f32>,
    gt: &GeoTransform,
    extent: crate::interp::Extent,
    owned_elsewhere: &[crate::interp::Extent],
) -> (Array2<f32>, Vec<PlotStats>) {
    use geo::InteriorPoint;
    let (rows, cols) = et0.dim();
    let mut ids = rasterize(plots, gt, rows, cols);
    let elsewhere = |x: f64, y: f64| {
        owned_elsewhere
            .iter()
            .any(|e| x >= e.0 && x < e.2 && y > e.1 && y <= e.3)
    };
    if !owned_elsewhere.is_empty() {
        let g = gt.0;
        for ((r, c), id) in ids.indexed_iter_mut() {
            let (x, y) = (
                g[0] + (c as f64 + 0.5) * g[1],
                g[3] + (r as f64 + 0.5) * g[5],
            );
            if *id != 0 && elsewhere(x, y) {
                *id = 0;
            }
        }
    }
    let kcs: Vec<Option<f64>> = plots.iter().map(|p| kc.kc(&p.uso_sigpac)).collect();
    let mut etc = Array2::<f32>::from_elem((rows, cols), f32::NAN);
    let mut sums = vec![(0u64, 0.0f64); plots.len()];
    for ((rc, &id), &e) in ids.indexed_iter().zip(et0.iter()) {
        if id == 0 || e.is_nan() {
            continue;
        }
        let k = id as usize - 1;
        sums[k].0 += 1;
        sums[k].1 += e as f64;
        if let Some(kc) = kcs[k] {
            etc[rc] = (kc * e as f64) as f32;
        }
    }
    let pixel_area = (gt.0[1] * gt.0[5]).abs();
    let mut stats = Vec::new();
    for (k, p) in plots.iter().enumerate() {
        let Some(bb) = p.geometry.bounding_rect() else {
            continue;
        };
        let inside = bb.min().x >= extent.0
            && bb.min().y >= extent.1
            && bb.max().x <= extent.2
            && bb.max().y <= extent.3
            && !owned_elsewhere.iter().any(|e| {
                bb.max().x > e.0 && bb.min().x < e.2 && bb.max().y > e.1 && bb.min().y < e.3
            });
        let touches = bb.max().x >= extent.0
            && bb.max().y >= extent.1
            && bb.min().x <= extent.2
            && bb.min().y <= extent.3;
        if !touches {
            continue;
        }
        let (mut n, mut sum) = sums[k];
        if n == 0 {
            // Sliver: the pixel under the interior point, if in the grid and owned here.
            if let Some(pt) = p.geometry.interior_point()
                && !elsewhere(pt.x(), pt.y())
                && let Some((c, r)) = gt.invert(pt.x(), pt.y())
                && c >= 0.0
                && r >= 0.0
                && (c as usize) < cols
                && (r as usize) < rows
            {
                let e = et0[[r as usize, c as usize]];
                if !e.is_nan() {
                    n = 1;
                    sum = e as f64;
                }
            }
            if n == 0 && !touches {
                continue;
            }
        }
        let area = p.geometry.unsigned_area();
        let covered = n as f64 * pixel_area;
        let et0_mean = (n > 0).then(|| sum / n as f64);
        let etc_mean = et0_mean.zip(kcs[k]).map(|(e, kc)| e * kc);
        let basis = if inside { area } else { covered };
        stats.push(PlotStats {
            plot_id: p.id.clone(),
            uso_sigpac: p.uso_sigpac.clone(),
            kc: kcs[k],
            area_m2: area,
            pixels: n,
            covered_m2: covered,
            complete: inside,
            et0_mean_mm: et0_mean,
            etc_mean_mm: etc_mean,
            volume_m3_day: etc_mean.map(|e| e * basis / 1000.0),
        });
    }
    (etc, stats)
}

/// The per-plot CSV text of a tile ([`crate::plots::PLOT_COLUMNS`]).
pub fn stats_csv(stats: &[PlotStats]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(crate::plots::PLOT_COLUMNS)?;
    for s in stats {
        w.write_record(crate::plots::stats_row(s))?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use geo::polygon;

    #[test]
    fn pixel_centre_rasterization() {
        // 10×10 grid of 1 m pixels, origin (0, 10). Square 2..5 × 3..7 (x, y) with a hole.
        let gt = GeoTransform::north_up(0.0, 10.0, 1.0);
        let p = polygon!(
            exterior: [(x: 2.0, y: 3.0), (x: 5.0, y: 3.0), (x: 5.0, y: 7.0), (x: 2.0, y: 7.0), (x: 2.0, y: 3.0)],
            interiors: [[(x: 3.0, y: 4.0), (x: 4.0, y: 4.0), (x: 4.0, y: 5.0), (x: 3.0, y: 5.0), (x: 3.0, y: 4.0)]],
        );
        let plots = vec![Plot {
            id: "a".into(),
            uso_sigpac: "OV".into(),
            geometry: MultiPolygon(vec![p]),
        }];
        let r = rasterize(&plots, &gt, 10, 10);
        // Centres x in {2.5,3.5,4.5} (cols 2..5), y in {3.5..6.5} (rows 3..7), minus (3.5, 4.5).
        assert_eq!(r.iter().filter(|&&v| v == 1).count(), 3 * 4 - 1);
        assert_eq!(r[[3, 2]], 1);
        assert_eq!(r[[5, 3]], 0); // centre (3.5, 4.5) is in the hole
        assert_eq!(r[[6, 4]], 1);
        assert_eq!(r[[7, 4]], 0);
        let et0 = Array2::from_elem((10, 10), 5.0f32);
        let (etc, stats) = crop_water(
            &plots,
            &KcTable::default(),
            &et0,
            &gt,
            (0.0, 0.0, 10.0, 10.0),
            &[],
        );
        assert_eq!(etc[[3, 2]], 3.5);
        assert!(etc[[0, 0]].is_nan());
        let s = &stats[0];
        assert_eq!((s.pixels, s.complete, s.kc), (11, true, Some(0.7)));
        assert!((s.area_m2 - 11.0).abs() < 1e-9);
        assert!((s.volume_m3_day.unwrap() - 3.5 * 11.0 / 1000.0).abs() < 1e-12);
    }

    #[test]
    fn overlapping_tiles_count_each_cell_once() {
        // Two 10×10 m tiles of 1 m pixels overlapping by 4 columns (x 6..10), one plot
        // 2..14 × 2..8 across both: its 12×6 = 72 cells count once in all.
        let p = polygon!((x: 2.0, y: 2.0), (x: 14.0, y: 2.0), (x: 14.0, y: 8.0), (x: 2.0, y: 8.0));
        let plots = vec![Plot {
            id: "a".into(),
            uso_sigpac: "OV".into(),
            geometry: MultiPolygon(vec![p]),
        }];
        let et0 = Array2::from_elem((10, 10), 5.0f32);
        let west = GeoTransform::north_up(0.0, 10.0, 1.0);
        let east = GeoTransform::north_up(6.0, 10.0, 1.0);
        let (_, a) = crop_water(
            &plots,
            &KcTable::default(),
            &et0,
            &west,
            (0.0, 0.0, 10.0, 10.0),
            &[],
        );
        // The east tile: the west one (first) owns the overlap.
        let (_, b) = crop_water(
            &plots,
            &KcTable::default(),
            &et0,
            &east,
            (6.0, 0.0, 16.0, 10.0),
            &[(0.0, 0.0, 10.0, 10.0)],
        );
        assert_eq!(a[0].pixels + b[0].pixels, 72);
        assert!(!a[0].complete && !b[0].complete);
        let v = a[0].volume_m3_day.unwrap() + b[0].volume_m3_day.unwrap();
        assert!((v - 3.5 * 72.0 / 1000.0).abs() < 1e-12, "{v}");
        // Without the exclusion the overlap (4×6 cells) was counted twice.
        let (_, twice) = crop_water(
            &plots,
            &KcTable::default(),
            &et0,
            &east,
            (6.0, 0.0, 16.0, 10.0),
            &[],
        );
        assert_eq!(a[0].pixels + twice[0].pixels, 72 + 24);
    }

    #[test]
    fn bowties_are_repaired_and_bad_plots_reported() {
        // A bowtie whose two lobes' signed areas cancel (shoelace area 0).
        let (x, y) = (641_000.0, 4_195_000.0);
        let bowtie = polygon!(
            (x: x, y: y),
            (x: x + 4.0, y: y + 4.0),
            (x: x + 4.0, y: y),
            (x: x, y: y + 4.0)
        );
        assert_eq!(bowtie.unsigned_area(), 0.0);
        let lonlat = polygon!((x: -1.1, y: 37.9), (x: -1.0, y: 37.9), (x: -1.0, y: 38.0));
        let plot = |id: &str, g| Plot {
            id: id.into(),
            uso_sigpac: "OV".into(),
            geometry: MultiPolygon(vec![g]),
        };
        let plots = vec![
            plot("bowtie", bowtie),
            plot("lonlat", lonlat),
            Plot {
                id: "empty".into(),
                uso_sigpac: "OV".into(),
                geometry: MultiPolygon(vec![]),
            },
        ];
        let (kept, warnings) =
            prepare_plots(plots, (640_000.0, 4_190_000.0, 650_000.0, 4_200_000.0));
        assert_eq!(kept.len(), 1);
        assert!(
            (kept[0].geometry.unsigned_area() - 8.0).abs() < 1e-9,
            "two triangles of 4 m²"
        );
        let text = warnings.join("\n");
        assert!(
            text.contains("plot bowtie: invalid (self-intersecting) polygon repaired"),
            "{text}"
        );
        assert!(text.contains("plot lonlat: its coordinates"), "{text}");
        assert!(text.contains("plot empty: empty geometry"), "{text}");
    }

    #[test]
    fn kc_overrides() {
        let t = KcTable::with_overrides("kc.csv", b"uso_sigpac,kc\nov,0.5\nTA,1.15\n").unwrap();
        assert_eq!(t.kc("OV"), Some(0.5));
        assert_eq!(t.kc("TA"), Some(1.15));
        assert_eq!(t.kc("CI"), Some(0.65));
        assert_eq!(t.kc("FV"), Some(0.70)); // first group listing it (vineyard)
        assert_eq!(t.kc("ZU"), None);
        assert!(KcTable::with_overrides("kc.csv", b"code,kc\n").is_err());
        assert!(
            KcTable::with_overrides("kc.csv", b"uso_sigpac,kc\nOV,abc\n")
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );
    }
}
