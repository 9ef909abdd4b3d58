//! Mosaics of any size: many rasters on one pixel lattice into one COG, by bands of rows.
//!
//! The inputs must share the CRS (when known), a north-up pixel size and one pixel lattice
//! (origins a whole number of pixels apart, within 10⁻⁶ pixel). The output covers their
//! union; each pixel takes the first input, in the order given, that has a value there
//! (neither its nodata nor NaN), or with [`Combine::Sum`] the sum of all the inputs covering
//! it (a season's total from its days' rasters). [`Mosaic::plan`] reads only the inputs' headers;
//! [`Mosaic::write_cog`] reads, for each band of output rows, the windows of the inputs
//! that band crosses (concurrently) and hands the rows to a [`CogRowWriter`], so memory is
//! a few bands of rows whatever the mosaic's height (see [`Mosaic::band_bytes`]).
//! [`Mosaic::write_vrt`] writes a GDAL VRT over the inputs instead, copying nothing.

use cloud::Store;
use ndarray::{Array2, s};
use rayon::prelude::*;

use crate::error::CogError;
use crate::geo::GeoKeys;
use crate::raster::{Crs, GeoTransform, Raster, Window};
use crate::reader::CogReader;
use crate::rows::CogRowWriter;
use crate::writer::CogWriteOptions;

/// Most samples one band of output rows may hold (`blocksize × width`): 512 MiB of f32.
pub const MAX_BAND_SAMPLES: u64 = 1 << 27;

/// How the inputs covering a pixel make its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    /// The first input, in the order given, that has a value there.
    #[default]
    First,
    /// The sum of every input covering the pixel (added in f64); nodata where any of them
    /// has none, so that a total is never silently short of a term.
    Sum,
}

/// Where one input lies in the mosaic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MosaicInput {
    pub uri: String,
    /// Column and row of its top-left pixel in the mosaic.
    pub col: u64,
    pub row: u64,
    /// Its size in pixels.
    pub width: u64,
    pub height: u64,
}

/// The georeferencing of one input, as [`Mosaic::place`] needs it.
#[derive(Debug, Clone)]
pub struct InputGrid {
    pub uri: String,
    pub transform: GeoTransform,
    pub width: u64,
    pub height: u64,
    pub crs: Crs,
}

/// A planned mosaic: the inputs placed on one lattice, and the output grid.
pub struct Mosaic {
    pub inputs: Vec<MosaicInput>,
    /// Output size in pixels.
    pub width: u64,
    pub height: u64,
    /// Output geotransform (the first input's pixel size, the union's top-left corner).
    pub transform: GeoTransform,
    /// The first known CRS of the inputs (all known ones are the same).
    pub crs: Crs,
    /// How overlapping inputs combine (first wins unless set).
    pub combine: Combine,
    readers: Vec<CogReader>,
}

impl Mosaic {
    /// Opens every input's header (concurrently) and places the inputs on the first one's
    /// lattice.
    pub fn plan(store: &Store, uris: &[String]) -> Result<Mosaic, CogError> {
        let readers: Vec<CogReader> = uris
            .par_iter()
            .map(|u| CogReader::open(store, u))
            .collect::<Result<_, _>>()?;
        let grids: Vec<InputGrid> = readers
            .iter()
            .map(|r| {
                let i = r.info();
                InputGrid {
                    uri: r.uri().to_string(),
                    transform: i.geotransform,
                    width: i.width,
                    height: i.height,
                    crs: i.crs.clone(),
                }
            })
            .collect();
        let placed = Self::place(&grids)?;
        Ok(Mosaic { readers, ..placed })
    }

    /// Places inputs of known grids on the first one's lattice (no I/O): errors name the
    /// input that is rotated, of another pixel size or CRS, or off the lattice.
    pub fn place(grids: &[InputGrid]) -> Result<Mosaic, CogError> {
        let Some(first) = grids.first() else {
            return Err(CogError::request("mosaic", "no input raster"));
        };
        let g0 = first.transform.0;
        let (px, py) = (g0[1], -g0[5]);
        if !(first.transform.is_north_up() && px > 0.0 && py > 0.0) {
            return Err(CogError::request(
                &first.uri,
                format!("a mosaic needs north-up rasters, got geotransform {g0:?}"),
            ));
        }
        let mut offsets = Vec::with_capacity(grids.len());
        let (mut c_min, mut r_min, mut c_max, mut r_max) = (0i64, 0i64, 0i64, 0i64);
        for t in grids {
            let g = t.transform.0;
            if !t.transform.is_north_up()
                || (g[1] - px).abs() > 1e-9 * px
                || (-g[5] - py).abs() > 1e-9 * py
            {
                return Err(CogError::request(
                    &t.uri,
                    format!(
                        "pixel size {}×{} differs from {px}×{py} ({})",
                        g[1], -g[5], first.uri
                    ),
                ));
            }
            if !first.crs.is_unknown() && !t.crs.is_unknown() && !first.crs.same_as(&t.crs) {
                return Err(CogError::request(
                    &t.uri,
                    format!(
                        "CRS {} differs from {} ({})",
                        t.crs.label(),
                        first.crs.label(),
                        first.uri
                    ),
                ));
            }
            let fc = (g[0] - g0[0]) / px;
            let fr = (g0[3] - g[3]) / py;
            let (c, r) = (fc.round(), fr.round());
            if (fc - c).abs() > 1e-6 || (fr - r).abs() > 1e-6 || c.abs() > 1e12 || r.abs() > 1e12 {
                return Err(CogError::request(
                    &t.uri,
                    format!(
                        "origin ({}, {}) is not on the pixel lattice of {} (offset {fc:.6}, {fr:.6} pixels)",
                        g[0], g[3], first.uri
                    ),
                ));
            }
            let (c, r) = (c as i64, r as i64);
            c_min = c_min.min(c);
            r_min = r_min.min(r);
            c_max = c_max.max(c + t.width as i64);
            r_max = r_max.max(r + t.height as i64);
            offsets.push((c, r));
        }
        let inputs = grids
            .iter()
            .zip(&offsets)
            .map(|(t, &(c, r))| MosaicInput {
                uri: t.uri.clone(),
                col: (c - c_min) as u64,
                row: (r - r_min) as u64,
                width: t.width,
                height: t.height,
            })
            .collect();
        let crs = grids
            .iter()
            .map(|t| &t.crs)
            .find(|c| !c.is_unknown())
            .cloned()
            .unwrap_or_default();
        Ok(Mosaic {
            inputs,
            width: (c_max - c_min) as u64,
            height: (r_max - r_min) as u64,
            transform: GeoTransform([
                g0[0] + c_min as f64 * px,
                px,
                0.0,
                g0[3] - r_min as f64 * py,
                0.0,
                -py,
            ]),
            crs,
            combine: Combine::First,
            readers: Vec::new(),
        })
    }

    /// Bytes of one band of `blocksize` output rows (f32): what [`Mosaic::write_cog`] holds
    /// about three of at once.
    pub fn band_bytes(&self, blocksize: u32) -> u64 {
        self.width
            .saturating_mul(blocksize as u64)
            .saturating_mul(4)
    }

    /// Output rows `rows` (float32, `nodata` where no input has a value).
    pub fn read_rows(
        &self,
        rows: std::ops::Range<u64>,
        nodata: f32,
    ) -> Result<Array2<f32>, CogError> {
        let (r0, r1) = (rows.start, rows.end.min(self.height));
        let crossing: Vec<usize> = (0..self.inputs.len())
            .filter(|&i| {
                let t = &self.inputs[i];
                t.row < r1 && t.row + t.height > r0
            })
            .collect();
        let windows: Vec<(usize, u64, Raster<f32>)> = crossing
            .par_iter()
            .map(|&i| {
                let t = &self.inputs[i];
                let (a, b) = (r0.max(t.row), r1.min(t.row + t.height));
                let reader = self.reader(i)?;
                let w =
                    reader.read_window::<f32>(1, Window::new(0, a - t.row, t.width, b - a), 0)?;
                Ok((i, a - r0, w))
            })
            .collect::<Result<_, CogError>>()?;
        let n = (r1.saturating_sub(r0)) as usize;
        if self.combine == Combine::Sum {
            return Ok(self.sum_rows(&windows, n, nodata));
        }
        let mut out = Array2::from_elem((n, self.width as usize), nodata);
        let mut set = Array2::from_elem((n, self.width as usize), false);
        for (i, at, w) in &windows {
            let t = &self.inputs[*i];
            let (r, c) = (*at as usize, t.col as usize);
            let (h, wd) = (w.height(), w.width());
            let mut o = out.slice_mut(s![r..r + h, c..c + wd]);
            let mut m = set.slice_mut(s![r..r + h, c..c + wd]);
            ndarray::Zip::from(&mut o)
                .and(&mut m)
                .and(&w.data)
                .for_each(|o, m, &v| {
                    if !(*m || v.is_nan() || w.is_nodata(v)) {
                        *o = v;
                        *m = true;
                    }
                });
        }
        Ok(out)
    }

    /// [`Combine::Sum`] of `windows` (input index, first row in the band, pixels) over a
    /// band of `n` rows.
    fn sum_rows(
        &self,
        windows: &[(usize, u64, Raster<f32>)],
        n: usize,
        nodata: f32,
    ) -> Array2<f32> {
        let mut sum = Array2::<f64>::zeros((n, self.width as usize));
        // 0: no input covers the pixel; 1: all that do have a value; 2: one has none.
        let mut state = Array2::<u8>::zeros((n, self.width as usize));
        for (i, at, w) in windows {
            let t = &self.inputs[*i];
            let (r, c) = (*at as usize, t.col as usize);
            let (h, wd) = (w.height(), w.width());
            ndarray::Zip::from(sum.slice_mut(s![r..r + h, c..c + wd]))
                .and(state.slice_mut(s![r..r + h, c..c + wd]))
                .and(&w.data)
                .for_each(|o, m, &v| {
                    if v.is_nan() || w.is_nodata(v) {
                        *m = 2;
                    } else if *m < 2 {
                        *o += v as f64;
                        *m = 1;
                    }
                });
        }
        ndarray::Zip::from(&sum)
            .and(&state)
            .map_collect(|&v, &m| if m == 1 { v as f32 } else { nodata })
    }

    fn reader(&self, i: usize) -> Result<&CogReader, CogError> {
        self.readers.get(i).ok_or_else(|| {
            CogError::request(
                &self.inputs[i].uri,
                "mosaic planned without opening its inputs",
            )
        })
    }

    /// Writes the mosaic as a float32 COG at `uri` with `nodata`, a band of `blocksize`
    /// rows at a time; the file's size in bytes.
    pub fn write_cog(
        &self,
        store: &Store,
        uri: &str,
        nodata: f32,
        options: &CogWriteOptions,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, CogError> {
        let bs = options.blocksize as u64;
        if self.width.saturating_mul(bs) > MAX_BAND_SAMPLES {
            return Err(CogError::too_large(
                uri,
                format!(
                    "the mosaic is {} pixels wide: a band of {bs} rows would hold more than {MAX_BAND_SAMPLES} samples (write a VRT, or use a smaller blocksize)",
                    self.width
                ),
            ));
        }
        let mut writer = CogRowWriter::<f32>::new(
            uri,
            (self.width, self.height),
            &self.transform,
            &GeoKeys::from_crs(&self.crs, false),
            Some(nodata as f64),
            options,
        )?;
        let mut r = 0;
        while r < self.height {
            let end = (r + bs).min(self.height);
            let rows = self.read_rows(r..end, nodata)?;
            writer.push_rows(rows.view())?;
            progress(end - r);
            r = end;
        }
        writer.finish(store)
    }

    /// Writes a GDAL VRT at `uri` whose band reads the inputs in place (the first input
    /// wins where they overlap, as in GDAL: later sources are drawn first). Relative paths
    /// are written for inputs beside or below the VRT, `/vsis3/` and `/vsicurl/` paths for
    /// remote ones.
    pub fn write_vrt(&self, store: &Store, uri: &str, nodata: f32) -> Result<(), CogError> {
        if self.combine != Combine::First {
            return Err(CogError::request(
                uri,
                "a VRT shows the first input where they overlap: a sum needs a COG",
            ));
        }
        let vrt = self.vrt_xml(uri, nodata);
        store
            .put(uri, bytes::Bytes::from(vrt.into_bytes()))
            .map_err(|e| CogError::store(uri, e))
    }

    /// The VRT text [`Mosaic::write_vrt`] writes at `vrt_uri`.
    pub fn vrt_xml(&self, vrt_uri: &str, nodata: f32) -> String {
        let g = self.transform.0;
        let mut x = format!(
            "<VRTDataset rasterXSize=\"{}\" rasterYSize=\"{}\">\n",
            self.width, self.height
        );
        if let Some(wkt) = self.crs.wkt_text() {
            x.push_str(&format!("  <SRS>{}</SRS>\n", xml_escape(&wkt)));
        }
        x.push_str(&format!(
            "  <GeoTransform>{:?}, {:?}, {:?}, {:?}, {:?}, {:?}</GeoTransform>\n",
            g[0], g[1], g[2], g[3], g[4], g[5]
        ));
        x.push_str("  <VRTRasterBand dataType=\"Float32\" band=\"1\">\n");
        x.push_str(&format!("    <NoDataValue>{nodata:?}</NoDataValue>\n"));
        let dir = cloud::uri::parent(vrt_uri);
        // GDAL draws sources in order, each over the last: the first input goes last.
        for (i, t) in self.inputs.iter().enumerate().rev() {
            let (path, relative) = vrt_path(&t.uri, &dir);
            let nd = self
                .readers
                .get(i)
                .and_then(|r| r.info().nodata)
                .map(|v| format!("      <NODATA>{v:?}</NODATA>\n"))
                .unwrap_or_default();
            x.push_str(&format!(
                "    <ComplexSource>\n      <SourceFilename relativeToVRT=\"{}\">{}</SourceFilename>\n      <SourceBand>1</SourceBand>\n      <SrcRect xOff=\"0\" yOff=\"0\" xSize=\"{w}\" ySize=\"{h}\" />\n      <DstRect xOff=\"{}\" yOff=\"{}\" xSize=\"{w}\" ySize=\"{h}\" />\n{nd}    </ComplexSource>\n",
                u8::from(relative),
                xml_escape(&path),
                t.col,
                t.row,
                w = t.width,
                h = t.height,
            ));
        }
        x.push_str("  </VRTRasterBand>\n</VRTDataset>\n");
        x
    }
}

/// The grid of a VRT written by [`Mosaic::write_vrt`]: (width, height, geotransform, CRS).
pub fn read_vrt_grid(store: &Store, uri: &str) -> Result<(u64, u64, GeoTransform, Crs), CogError> {
    let bytes = store
        .get_capped(uri, cloud::MAX_JSON_BYTES)
        .map_err(|e| CogError::store(uri, e))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| CogError::invalid(uri, "not UTF-8 text"))?;
    parse_vrt_grid(text).ok_or_else(|| {
        CogError::invalid(
            uri,
            "not a VRT with rasterXSize, rasterYSize and a GeoTransform",
        )
    })
}

fn parse_vrt_grid(text: &str) -> Option<(u64, u64, GeoTransform, Crs)> {
    let attr = |name: &str| -> Option<u64> {
        let at = text.find(&format!("{name}=\""))? + name.len() + 2;
        text[at..].split('"').next()?.parse().ok()
    };
    let element = |name: &str| -> Option<&str> {
        let open = text.find(&format!("<{name}"))?;
        let start = open + text[open..].find('>')? + 1;
        let end = start + text[start..].find(&format!("</{name}>"))?;
        Some(&text[start..end])
    };
    let g: Vec<f64> = element("GeoTransform")?
        .split(',')
        .map(|v| v.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .ok()?;
    let g: [f64; 6] = g.try_into().ok()?;
    let crs = element("SRS")
        .map(|w| {
            let wkt = w
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&");
            crate::asc::crs_from_wkt(&wkt)
        })
        .unwrap_or_default();
    Some((
        attr("rasterXSize")?,
        attr("rasterYSize")?,
        GeoTransform(g),
        crs,
    ))
}

/// How a VRT in `dir` names `uri`: relative when it lies beside or below, GDAL's virtual
/// file system paths for remote objects, absolute otherwise.
fn vrt_path(uri: &str, dir: &str) -> (String, bool) {
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    if let Some(rel) = uri.strip_prefix(&prefix) {
        return (rel.to_string(), true);
    }
    if let Some(rest) = uri.strip_prefix("s3://") {
        return (format!("/vsis3/{rest}"), false);
    }
    if uri.starts_with("https://") || uri.starts_with("http://") {
        return (format!("/vsicurl/{uri}"), false);
    }
    let path = uri.strip_prefix("file://").unwrap_or(uri);
    match std::path::absolute(path) {
        Ok(p) => (p.to_string_lossy().into_owned(), false),
        Err(_) => (path.to_string(), false),
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn grid(uri: &str, x0: f64, y0: f64, w: u64, h: u64, crs: Crs) -> InputGrid {
        InputGrid {
            uri: uri.into(),
            transform: GeoTransform::north_up(x0, y0, 2.0),
            width: w,
            height: h,
            crs,
        }
    }

    #[test]
    fn inputs_are_placed_on_the_first_ones_lattice() {
        let m = Mosaic::place(&[
            grid("a", 0.0, 10.0, 2, 2, Crs::epsg(25830)),
            grid("b", 2.0, 8.0, 2, 2, Crs::default()),
        ])
        .unwrap();
        assert_eq!(m.transform.0, [0.0, 2.0, 0.0, 10.0, 0.0, -2.0]);
        assert_eq!((m.width, m.height), (3, 3));
        assert_eq!((m.inputs[1].col, m.inputs[1].row), (1, 1));
        assert_eq!(m.crs, Crs::epsg(25830));
        // West and north of the first: the origin moves.
        let m = Mosaic::place(&[
            grid("a", 0.0, 10.0, 2, 2, Crs::default()),
            grid("b", -4.0, 14.0, 1, 1, Crs::default()),
        ])
        .unwrap();
        assert_eq!(m.transform.0[0], -4.0);
        assert_eq!(m.transform.0[3], 14.0);
        assert_eq!((m.inputs[0].col, m.inputs[0].row), (2, 2));
        assert_eq!((m.width, m.height), (4, 4));
    }

    #[test]
    fn misaligned_or_mixed_inputs_are_errors_naming_them() {
        let a = grid("a", 0.0, 10.0, 1, 1, Crs::epsg(25830));
        let e = Mosaic::place(&[a.clone(), grid("b.tif", 1.0, 10.0, 1, 1, Crs::default())])
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("b.tif") && e.to_string().contains("lattice"),
            "{e}"
        );
        let e = Mosaic::place(&[a.clone(), grid("c.tif", 2.0, 10.0, 1, 1, Crs::epsg(25831))])
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("c.tif") && e.to_string().contains("CRS"),
            "{e}"
        );
        let mut d = grid("d.tif", 2.0, 10.0, 1, 1, Crs::default());
        d.transform.0[1] = 1.0;
        let e = Mosaic::place(&[a, d]).err().unwrap();
        assert!(e.to_string().contains("pixel size"), "{e}");
        assert!(Mosaic::place(&[]).is_err());
    }

    #[test]
    fn vrt_paths_are_relative_beside_the_vrt_and_virtual_for_remote_inputs() {
        assert_eq!(
            vrt_path("out/tiles/a.tif", "out"),
            ("tiles/a.tif".into(), true)
        );
        assert_eq!(
            vrt_path("s3://b/x/a.tif", "s3://b/out"),
            ("/vsis3/b/x/a.tif".into(), false)
        );
        assert_eq!(
            vrt_path("https://h/a.tif", "out"),
            ("/vsicurl/https://h/a.tif".into(), false)
        );
        assert!(vrt_path("elsewhere/a.tif", "out").0.starts_with('/'));
        assert_eq!(xml_escape("a<b&\"c\">"), "a&lt;b&amp;&quot;c&quot;&gt;");
    }

    #[test]
    fn sums_add_every_covering_input_and_keep_gaps_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::default();
        let put = |name: &str, x0: f64, rows: [[f32; 3]; 2]| {
            let uri = dir.path().join(name).display().to_string();
            let r = Raster {
                data: ndarray::Array2::from_shape_fn((2, 3), |(i, j)| rows[i][j]),
                transform: GeoTransform::north_up(x0, 10.0, 2.0),
                crs: Crs::epsg(25830),
                nodata: Some(-9999.0),
            };
            crate::write_cog(&store, &uri, &r, &CogWriteOptions::default()).unwrap();
            uri
        };
        // Two days on one grid (day b has a gap), and a third input one column east.
        let a = put("a.tif", 0.0, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        let b = put("b.tif", 0.0, [[0.5, -9999.0, 0.25], [1.0, 1.0, 1.0]]);
        let c = put("c.tif", 2.0, [[10.0, 10.0, 10.0], [10.0, 10.0, f32::NAN]]);
        let mut m = Mosaic::plan(&store, &[a.clone(), b, c]).unwrap();
        m.combine = Combine::Sum;
        let rows = m.read_rows(0..2, -9999.0).unwrap();
        assert_eq!(
            rows,
            ndarray::arr2(&[[1.5, -9999.0, 13.25, 10.0], [5.0, 16.0, 17.0, -9999.0]])
        );
        // The same through the COG writer; a VRT cannot sum.
        let out = dir.path().join("sum.tif").display().to_string();
        m.write_cog(&store, &out, -9999.0, &CogWriteOptions::default(), |_| {})
            .unwrap();
        let back: Raster<f32> = crate::read_band(&store, &out, 1).unwrap();
        assert_eq!(back.data, rows);
        let vrt = dir.path().join("sum.vrt").display().to_string();
        assert!(m.write_vrt(&store, &vrt, -9999.0).is_err());
        // First wins by default.
        let m = Mosaic::plan(&store, &[a]).unwrap();
        assert_eq!(m.read_rows(0..1, -9999.0).unwrap()[[0, 2]], 3.0);
    }

    #[test]
    fn a_written_vrt_reads_back_its_grid() {
        let mut m = Mosaic::place(&[grid("a.tif", 0.0, 10.0, 3, 2, Crs::epsg(25830))]).unwrap();
        m.crs = Crs {
            epsg: Some(25830),
            wkt: m.crs.wkt_text(),
        };
        let text = m.vrt_xml("m.vrt", -9999.0);
        let (w, h, g, crs) = parse_vrt_grid(&text).unwrap();
        assert_eq!((w, h), (3, 2));
        assert_eq!(g, m.transform);
        assert_eq!(crs.epsg, Some(25830), "{text}");
        assert_eq!(parse_vrt_grid("<VRTDataset/>"), None);
    }
}
