//! Raster products derived from gridded surfaces: canopy height, forest canopy cover,
//! cropping and conversion to float32 rasters with nodata −9999.

use cog::{Crs, Raster};
use ndarray::{Array2, Axis, s};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TerrainError};
use crate::grid::Grid;

/// The nodata value of every terrain output raster.
pub const NODATA: f32 = -9999.0;

/// The products `terrain models` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    /// Digital elevation (terrain) model of the ground points, m.
    Dem,
    /// Digital surface model: highest first return, m.
    Dsm,
    /// Canopy height model: DSM − DEM, at least 0, m.
    Chm,
    /// Forest canopy cover: % of the 3×3 cells around a cell whose CHM exceeds 0.01 m.
    Fcc,
    /// Slope of the DEM, degrees (or percent).
    Slope,
    /// Aspect of the DEM, degrees clockwise from north.
    Aspect,
}

impl Product {
    /// All six, in output order.
    pub const ALL: [Product; 6] = [
        Product::Dem,
        Product::Dsm,
        Product::Chm,
        Product::Fcc,
        Product::Slope,
        Product::Aspect,
    ];

    /// The lowercase name used in file names and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Product::Dem => "dem",
            Product::Dsm => "dsm",
            Product::Chm => "chm",
            Product::Fcc => "fcc",
            Product::Slope => "slope",
            Product::Aspect => "aspect",
        }
    }

    /// Parses a product name (case-insensitive).
    pub fn parse(s: &str) -> Result<Product> {
        Product::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                TerrainError::param(format!(
                    "unknown product {s:?} (expected dem, dsm, chm, fcc, slope or aspect)"
                ))
            })
    }
}

/// Canopy height: `dsm − dem` clamped at 0; NaN where either is NaN.
pub fn chm(dsm: &Array2<f64>, dem: &Array2<f64>) -> Array2<f64> {
    let mut out = dsm.clone();
    ndarray::Zip::from(&mut out).and(dem).par_for_each(|o, &g| {
        *o = if o.is_nan() || g.is_nan() {
            f64::NAN
        } else {
            (*o - g).max(0.0)
        };
    });
    out
}

/// Height above which a CHM cell counts as canopy, m.
pub const CANOPY_MIN_HEIGHT: f64 = 0.01;

/// Forest canopy cover: for every cell with a CHM value, 100 × (cells of the 3×3 window with
/// CHM > 0.01 m) / (cells of the window with a CHM value); NaN where the CHM is NaN.
pub fn fcc(chm: &Array2<f64>) -> Array2<f64> {
    let (rows, cols) = chm.dim();
    let mut out = Array2::from_elem((rows, cols), f64::NAN);
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(r, mut line)| {
            for c in 0..cols {
                if chm[(r, c)].is_nan() {
                    continue;
                }
                let mut valid = 0u32;
                let mut canopy = 0u32;
                for rr in r.saturating_sub(1)..(r + 2).min(rows) {
                    for cc in c.saturating_sub(1)..(c + 2).min(cols) {
                        let v = chm[(rr, cc)];
                        if !v.is_nan() {
                            valid += 1;
                            canopy += (v > CANOPY_MIN_HEIGHT) as u32;
                        }
                    }
                }
                line[c] = 100.0 * canopy as f64 / valid as f64;
            }
        });
    out
}

/// The part of `a` (laid out on `outer`) covered by `inner` (same lattice, contained).
pub fn crop(a: &Array2<f64>, outer: &Grid, inner: &Grid) -> Result<Array2<f64>> {
    let (dc, dr) = outer.offset_of(inner).ok_or_else(|| {
        TerrainError::param(format!(
            "internal: grid {inner:?} is not inside {outer:?} on the same lattice"
        ))
    })?;
    Ok(a.slice(s![dr..dr + inner.rows, dc..dc + inner.cols])
        .to_owned())
}

/// A float32 raster of `a` on `grid` with NaN written as −9999.
pub fn to_raster(a: &Array2<f64>, grid: &Grid, crs: &Crs) -> Raster<f32> {
    Raster {
        data: a.mapv(|v| if v.is_nan() { NODATA } else { v as f32 }),
        transform: grid.transform(),
        crs: crs.clone(),
        nodata: Some(NODATA),
    }
}

/// A float64 array of a float32 raster with its nodata as NaN.
pub fn from_raster(r: &Raster<f32>) -> Array2<f64> {
    r.data.mapv(|v| {
        if r.is_nodata(v) || v.is_nan() {
            f64::NAN
        } else {
            v as f64
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::grid::Bounds;
    use ndarray::array;

    #[test]
    fn chm_and_fcc() {
        let dsm = array![[10.0, 12.0, f64::NAN], [10.0, 10.005, 15.0]];
        let dem = array![[10.5, 10.0, 10.0], [10.0, 10.0, f64::NAN]];
        let h = chm(&dsm, &dem);
        assert_eq!(h[(0, 0)], 0.0);
        assert_eq!(h[(0, 1)], 2.0);
        assert!(h[(0, 2)].is_nan() && h[(1, 2)].is_nan());
        assert!((h[(1, 1)] - 0.005).abs() < 1e-12);
        let f = fcc(&h);
        // (0,0): window cells (0,0)=0,(0,1)=2,(1,0)=0,(1,1)=0.005 → 1 of 4.
        assert_eq!(f[(0, 0)], 25.0);
        assert!(f[(0, 2)].is_nan());
        assert_eq!(f[(1, 1)], 25.0);
    }

    #[test]
    fn crop_and_raster() {
        let outer = Grid::snapped(
            &Bounds {
                min_x: 0.0,
                min_y: 0.0,
                max_x: 3.5,
                max_y: 2.5,
            },
            1.0,
        )
        .unwrap();
        let inner = Grid::snapped(
            &Bounds {
                min_x: 1.2,
                min_y: 0.2,
                max_x: 2.2,
                max_y: 1.2,
            },
            1.0,
        )
        .unwrap();
        let a = Array2::from_shape_fn((outer.rows, outer.cols), |(r, c)| (r * 10 + c) as f64);
        let b = crop(&a, &outer, &inner).unwrap();
        assert_eq!(b, array![[11.0, 12.0], [21.0, 22.0]]);
        let r = to_raster(&array![[1.0, f64::NAN]], &inner, &Crs::epsg(25830));
        assert_eq!(r.data[(0, 1)], NODATA);
        assert_eq!(r.transform.0, [1.0, 1.0, 0.0, 2.0, 0.0, -1.0]);
        assert!(crop(&a, &inner, &outer).is_err());
    }

    #[test]
    fn product_names() {
        assert_eq!(Product::parse("DEM").unwrap(), Product::Dem);
        assert!(Product::parse("ndvi").is_err());
    }
}
