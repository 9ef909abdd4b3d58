//! Irrigated plots from an NDVI product (the seed's rule): a plot's pixel counts as irrigated
//! where its NDVI exceeds a threshold, and a plot as irrigated where its mean NDVI does.
//!
//! The NDVI raster (e.g. `ndvi_after.tif` of `geobutton run ndvi`, a Sentinel-2 tile in
//! WGS 84 / UTM) must be in the plots' CRS; ETRS89 / UTM (EPSG:258zz) and WGS 84 / UTM
//! (EPSG:326zz) of the same zone are taken as one (they differ by less than a metre, a tenth
//! of a Sentinel-2 pixel). Only the window covering the plots is read.

use std::collections::BTreeMap;

use cloud::Store;
use cog::CogReader;
use cog::{GeoTransform, Window};
use geo::BoundingRect;

use crate::crops::{Plot, rasterize};
use crate::stage::WaterError;

/// Most NDVI pixels read for one plot set (the plots' bounding window): 2²⁸.
pub const MAX_NDVI_PIXELS: u64 = 1 << 28;

/// A plot's NDVI figures.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotNdvi {
    /// NDVI pixels whose centre lies in the plot and that have a value.
    pub pixels: u64,
    /// Their mean NDVI.
    pub ndvi_mean: Option<f64>,
    /// Those above the threshold, and their area (m²).
    pub irrigated_pixels: u64,
    pub irrigated_m2: f64,
    /// Mean NDVI above the threshold.
    pub irrigated: bool,
}

/// Whether rasters in EPSG `a` and `b` may be overlaid without reprojection: equal codes, or
/// ETRS89 / UTM and WGS 84 / UTM of the same northern zone.
///
/// ```
/// use water::irrigation::same_grid_crs;
/// assert!(same_grid_crs(25830, 32630));
/// assert!(same_grid_crs(25830, 25830));
/// assert!(!same_grid_crs(25830, 32631));
/// assert!(!same_grid_crs(25830, 4326));
/// ```
pub fn same_grid_crs(a: u32, b: u32) -> bool {
    let zone = |c: u32| match c {
        25828..=25838 => Some(c - 25800),
        32601..=32660 => Some(c - 32600),
        _ => None,
    };
    a == b || zone(a).is_some_and(|z| zone(b) == Some(z))
}

/// NDVI figures of `plots` (in EPSG `plots_epsg`) from the NDVI raster `ndvi_uri`, with
/// pixels above `threshold` irrigated. Plots outside the raster get no pixels.
pub fn plot_ndvi(
    store: &Store,
    plots: &[Plot],
    plots_epsg: u32,
    ndvi_uri: &str,
    threshold: f64,
) -> Result<BTreeMap<String, PlotNdvi>, WaterError> {
    let input = |message: String| WaterError::Input {
        uri: ndvi_uri.to_string(),
        message,
    };
    if !(-1.0..=1.0).contains(&threshold) {
        return Err(input(format!(
            "the irrigation threshold {threshold} is not an NDVI (−1 to 1)"
        )));
    }
    let reader = CogReader::open(store, ndvi_uri).map_err(|source| WaterError::Cog {
        uri: ndvi_uri.to_string(),
        source,
    })?;
    let info = reader.info();
    match info.crs.epsg {
        Some(e) if same_grid_crs(e, plots_epsg) => {}
        Some(e) => {
            return Err(input(format!(
                "the NDVI is in EPSG:{e}, the plots in EPSG:{plots_epsg}: reproject it \
                 (gdalwarp -t_srs EPSG:{plots_epsg})"
            )));
        }
        None => {
            return Err(input(
                "the NDVI raster records no EPSG code: its CRS cannot be checked against \
                 the plots'"
                    .into(),
            ));
        }
    }
    let g = info.geotransform.0;
    if !info.geotransform.is_north_up() || g[1] <= 0.0 || g[5] >= 0.0 {
        return Err(input("the NDVI raster is not north-up".into()));
    }
    let empty = PlotNdvi {
        pixels: 0,
        ndvi_mean: None,
        irrigated_pixels: 0,
        irrigated_m2: 0.0,
        irrigated: false,
    };
    let mut out: BTreeMap<String, PlotNdvi> = plots
        .iter()
        .map(|p| (p.id.clone(), empty.clone()))
        .collect();
    // The window of NDVI pixels the plots' bounding box covers.
    let Some((x0, y0, x1, y1)) = plots
        .iter()
        .filter_map(|p| p.geometry.bounding_rect())
        .map(|r| (r.min().x, r.min().y, r.max().x, r.max().y))
        .reduce(|a, b| (a.0.min(b.0), a.1.min(b.1), a.2.max(b.2), a.3.max(b.3)))
    else {
        return Ok(out);
    };
    let col = |x: f64| ((x - g[0]) / g[1]).clamp(0.0, info.width as f64);
    let row = |y: f64| ((y - g[3]) / g[5]).clamp(0.0, info.height as f64);
    let (c0, c1) = (col(x0).floor() as u64, col(x1).ceil() as u64);
    let (r0, r1) = (row(y1).floor() as u64, row(y0).ceil() as u64);
    if c1 <= c0 || r1 <= r0 {
        return Ok(out);
    }
    let window = Window::new(c0, r0, c1 - c0, r1 - r0);
    if window.width * window.height > MAX_NDVI_PIXELS {
        return Err(input(format!(
            "the plots span {}×{} NDVI pixels, more than {MAX_NDVI_PIXELS}",
            window.width, window.height
        )));
    }
    let ndvi = reader
        .read_window::<f32>(1, window, 0)
        .map_err(|source| WaterError::Cog {
            uri: ndvi_uri.to_string(),
            source,
        })?;
    let gt = GeoTransform([
        g[0] + c0 as f64 * g[1],
        g[1],
        0.0,
        g[3] + r0 as f64 * g[5],
        0.0,
        g[5],
    ]);
    let labels = rasterize(plots, &gt, ndvi.height(), ndvi.width());
    let mut sums = vec![(0u64, 0.0f64, 0u64); plots.len()];
    for (&label, &v) in labels.iter().zip(ndvi.data.iter()) {
        if label == 0 || !v.is_finite() || ndvi.is_nodata(v) {
            continue;
        }
        let s = &mut sums[label as usize - 1];
        s.0 += 1;
        s.1 += v as f64;
        s.2 += u64::from(v as f64 > threshold);
    }
    let pixel_m2 = (g[1] * g[5]).abs();
    for (p, (n, sum, above)) in plots.iter().zip(sums) {
        // Plots of one id (a multi-part record split in the file) add up.
        let e = out.entry(p.id.clone()).or_insert_with(|| empty.clone());
        let total = e.ndvi_mean.unwrap_or(0.0) * e.pixels as f64 + sum;
        e.pixels += n;
        e.irrigated_pixels += above;
        e.irrigated_m2 = e.irrigated_pixels as f64 * pixel_m2;
        e.ndvi_mean = (e.pixels > 0).then(|| total / e.pixels as f64);
        e.irrigated = e.ndvi_mean.is_some_and(|m| m > threshold);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cog::{CogWriteOptions, Crs, Raster};
    use geo::{MultiPolygon, polygon};

    fn plot(id: &str, x0: f64, y0: f64, side: f64) -> Plot {
        Plot {
            id: id.into(),
            uso_sigpac: "CI".into(),
            geometry: MultiPolygon(vec![polygon![
                (x: x0, y: y0), (x: x0 + side, y: y0), (x: x0 + side, y: y0 + side),
                (x: x0, y: y0 + side), (x: x0, y: y0)
            ]]),
        }
    }

    #[test]
    fn plots_are_irrigated_by_their_ndvi() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::default();
        // 10 m pixels from (600000, 4200100): the west half 0.8, the east half 0.1, one
        // pixel without data.
        let mut data =
            ndarray::Array2::from_shape_fn((10, 10), |(_, c)| if c < 5 { 0.8f32 } else { 0.1 });
        data[[0, 0]] = f32::NAN;
        let uri = dir.path().join("ndvi.tif").display().to_string();
        let r = Raster {
            data,
            transform: GeoTransform::north_up(600_000.0, 4_200_100.0, 10.0),
            crs: Crs::epsg(32630),
            nodata: None,
        };
        cog::write_cog(&store, &uri, &r, &CogWriteOptions::default()).unwrap();
        let plots = [
            plot("west", 600_000.0, 4_200_070.0, 30.0), // 3×3 pixels of 0.8, one NaN
            plot("east", 600_070.0, 4_200_000.0, 30.0), // 3×3 of 0.1
            plot("both", 600_030.0, 4_200_030.0, 40.0), // 2 columns of each, 4 rows
            plot("away", 700_000.0, 4_300_000.0, 10.0), // outside the raster
        ];
        let got = plot_ndvi(&store, &plots, 25830, &uri, 0.4).unwrap();
        let w = &got["west"];
        assert_eq!((w.pixels, w.irrigated_pixels), (8, 8));
        assert!((w.ndvi_mean.unwrap() - 0.8).abs() < 1e-6 && w.irrigated);
        assert!((w.irrigated_m2 - 800.0).abs() < 1e-9);
        let e = &got["east"];
        assert_eq!((e.pixels, e.irrigated_pixels, e.irrigated), (9, 0, false));
        let b = &got["both"];
        assert_eq!((b.pixels, b.irrigated_pixels), (16, 8));
        assert!((b.ndvi_mean.unwrap() - 0.45).abs() < 1e-6 && b.irrigated);
        assert_eq!(got["away"].pixels, 0);
        assert!(!got["away"].irrigated);
        // Another zone is refused, naming both CRSs.
        let e = plot_ndvi(&store, &plots, 25831, &uri, 0.4).unwrap_err();
        assert!(e.to_string().contains("EPSG:32630") && e.to_string().contains("EPSG:25831"));
        assert!(plot_ndvi(&store, &plots, 25830, &uri, 1.5).is_err());
    }
}
