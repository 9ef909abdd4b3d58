//! A canopy height model from height-normalised points by a simple maximum grid.

use cog::{Crs, GeoTransform, Raster};
use ndarray::Array2;

use crate::error::BiomassError;

/// Largest grid [`max_grid_chm`] builds, pixels.
pub const MAX_GRID_PIXELS: usize = 1_000_000_000;

/// CHM at `res` metres: each cell holds the highest `z` (height above ground, m) of the points
/// falling in it, 0 where no point falls. The grid's origin snaps to multiples of `res`
/// (`floor(xmin/res)·res`, `ceil(ymax/res)·res`); points on the far edges go to the last cell.
pub fn max_grid_chm(
    points: &[(f64, f64, f64)],
    res: f64,
    crs: Crs,
) -> Result<Raster<f32>, BiomassError> {
    if !(res.is_finite() && res > 0.0) {
        return Err(BiomassError::Param(format!(
            "resolution must be > 0 m, got {res}"
        )));
    }
    if points.is_empty() {
        return Err(BiomassError::Param("no points to grid".into()));
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y, _) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let left = (x0 / res).floor() * res;
    let top = (y1 / res).ceil() * res;
    let w = (((x1 - left) / res).floor() as usize + 1).max(1);
    let h = (((top - y0) / res).floor() as usize + 1).max(1);
    if w.saturating_mul(h) > MAX_GRID_PIXELS {
        return Err(BiomassError::Param(format!(
            "a {w}x{h} grid at {res} m is too large"
        )));
    }
    let mut data = Array2::<f32>::zeros((h, w));
    for &(x, y, z) in points {
        let c = (((x - left) / res).floor() as usize).min(w - 1);
        let r = (((top - y) / res).floor() as usize).min(h - 1);
        let z = z as f32;
        if z > data[[r, c]] {
            data[[r, c]] = z;
        }
    }
    Ok(Raster {
        data,
        transform: GeoTransform([left, res, 0.0, top, 0.0, -res]),
        crs,
        nodata: None,
    })
}

/// The (row, col) cell of point (x, y) in a north-up grid, if inside.
pub fn cell_of(t: &GeoTransform, shape: (usize, usize), x: f64, y: f64) -> Option<(usize, usize)> {
    let g = t.0;
    let c = ((x - g[0]) / g[1]).floor();
    let r = ((y - g[3]) / g[5]).floor();
    if c < 0.0 || r < 0.0 {
        return None;
    }
    let (r, c) = ((r as usize).min(shape.0 - 1), (c as usize).min(shape.1 - 1));
    Some((r, c))
}
