//! Deterministic synthetic DTMs for tests and benchmarks (no real DTM of the stations' area
//! ships with the fixtures): a smooth surface through the stations' elevations (IDW,
//! power 2) plus ridges and valleys of a few hundred metres, with a "sea" of nodata in one
//! corner, EPSG:25830.

use cog::{Crs, GeoTransform, Raster};
use ndarray::Array2;

use crate::stations::Station;

/// Nodata of the synthetic DTMs.
pub const DTM_NODATA: f32 = -999.0;

/// A `cols`×`rows` DTM with `pixel`-metre pixels and top-left corner (`x0`, `y0`). Pixels
/// east of `sea_x` and south of `sea_y` (and below the diagonal between them) are sea.
#[allow(clippy::too_many_arguments)]
pub fn dtm(
    stations: &[Station],
    x0: f64,
    y0: f64,
    pixel: f64,
    cols: usize,
    rows: usize,
    sea: Option<(f64, f64)>,
) -> Raster<f32> {
    let gt = GeoTransform::north_up(x0, y0, pixel);
    let mut data = Array2::<f32>::zeros((rows, cols));
    // Coarse base surface (every 16 px), bilinear, to keep large DTMs quick to make.
    const STEP: usize = 16;
    let nr = rows / STEP + 2;
    let nc = cols / STEP + 2;
    let base = Array2::from_shape_fn((nr, nc), |(i, j)| {
        let (x, y) = gt.apply((j * STEP) as f64, (i * STEP) as f64);
        let (mut num, mut den) = (0.0, 0.0);
        for s in stations {
            let d2 = ((x - s.x).powi(2) + (y - s.y).powi(2)).max(1.0);
            num += s.elev_m / d2;
            den += 1.0 / d2;
        }
        if den > 0.0 { num / den } else { 300.0 }
    });
    for ((r, c), v) in data.indexed_iter_mut() {
        let (i, fi) = (r / STEP, (r % STEP) as f64 / STEP as f64);
        let (j, fj) = (c / STEP, (c % STEP) as f64 / STEP as f64);
        let b = (base[[i, j]] * (1.0 - fj) + base[[i, j + 1]] * fj) * (1.0 - fi)
            + (base[[i + 1, j]] * (1.0 - fj) + base[[i + 1, j + 1]] * fj) * fi;
        let (x, y) = gt.apply(c as f64 + 0.5, r as f64 + 0.5);
        let relief =
            120.0 * (x / 3100.0).sin() * (y / 2300.0).cos() + 60.0 * ((x + y) / 900.0).sin();
        let mut z = (b + relief).max(1.0);
        if let Some((sx, sy)) = sea
            && x > sx
            && y < sy
            && (x - sx) + (sy - y) > 0.0
        {
            z = DTM_NODATA as f64;
        }
        *v = z as f32;
    }
    Raster {
        data,
        transform: gt,
        crs: Crs::epsg(25830),
        nodata: Some(DTM_NODATA),
    }
}

/// ESRI ASCII grid text of a north-up raster (cell corner origin).
pub fn to_asc(r: &Raster<f32>) -> String {
    let g = r.transform.0;
    let (rows, cols) = r.data.dim();
    let mut s = format!(
        "ncols {cols}\nnrows {rows}\nxllcorner {}\nyllcorner {}\ncellsize {}\nNODATA_value {}\n",
        g[0],
        g[3] + g[5] * rows as f64,
        g[1],
        r.nodata.unwrap_or(DTM_NODATA)
    );
    for row in r.data.rows() {
        let line: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
        s.push_str(&line.join(" "));
        s.push('\n');
    }
    s
}
