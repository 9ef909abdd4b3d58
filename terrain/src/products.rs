//! Raster products derived from gridded surfaces: canopy height, forest canopy cover,
//! cropping and conversion to float32 rasters with nodata −9999.

use cog::{Crs, Raster};
use ndarray::{Array2, Axis, s};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TerrainError};
use crate::grid::Grid;
use crate::points::PointCloud;

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
    /// Forest canopy cover: % of the first returns of the 3×3 cells around a cell that lie
    /// more than `fcc_height` (2 m) above the ground.
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

/// Forest canopy cover (FCC), percent: around each cell (its 3×3 cells), the share of first
/// returns (the `select`ed points: first returns outside the noise classes and the surface
/// outliers) whose height above the ground, z − DEM of the point's cell, exceeds `height` m;
/// NaN where the window holds no such return over a DEM cell with a value.
///
/// This is the standard airborne-LiDAR estimator of vertical canopy cover, the proportion of
/// first returns above a height threshold (Korhonen et al. 2011, *Remote Sensing of
/// Environment* 115:1065–1080; lidR's `pzabove2` with the common 2 m threshold). (CloudButton's
/// original computed it from the DEM; an earlier geobutton from CHM cells above 0.01 m, which
/// made bare land read as canopy.)
pub fn fcc(
    cloud: &PointCloud,
    select: &[bool],
    grid: &Grid,
    dem: &Array2<f64>,
    height: f64,
) -> Array2<f64> {
    let (rows, cols) = dem.dim();
    let mut first = Array2::<u32>::zeros((rows, cols));
    let mut canopy = Array2::<u32>::zeros((rows, cols));
    for i in (0..cloud.len()).filter(|&i| select[i]) {
        let Some((c, r)) = grid.cell_of(cloud.x[i], cloud.y[i]) else {
            continue;
        };
        let g = dem[(r, c)];
        if g.is_nan() {
            continue;
        }
        first[(r, c)] += 1;
        canopy[(r, c)] += u32::from(cloud.z[i] - g > height);
    }
    let mut out = Array2::from_elem((rows, cols), f64::NAN);
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(r, mut line)| {
            for c in 0..cols {
                let (mut n, mut above) = (0u64, 0u64);
                for rr in r.saturating_sub(1)..(r + 2).min(rows) {
                    for cc in c.saturating_sub(1)..(c + 2).min(cols) {
                        n += u64::from(first[(rr, cc)]);
                        above += u64::from(canopy[(rr, cc)]);
                    }
                }
                if n > 0 {
                    line[c] = 100.0 * above as f64 / n as f64;
                }
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
    }

    #[test]
    fn fcc_is_the_share_of_first_returns_above_the_threshold() {
        // 1 m cells over x 0..4, y 0..3 (cols 4, rows 3); flat ground at 10 m except one cell.
        let grid = Grid::snapped(
            &Bounds {
                min_x: 0.0,
                min_y: 0.0,
                max_x: 3.5,
                max_y: 2.5,
            },
            1.0,
        )
        .unwrap();
        let mut dem = Array2::from_elem((grid.rows, grid.cols), 10.0);
        dem[(2, 3)] = f64::NAN;
        // Cell (row 0, col 0): 3 first returns, one 5 m up (canopy), one 1.5 m up (not),
        // one on the ground. Cell (row 2, col 3) has no DEM: its return is not counted.
        let c = PointCloud::from_xyz(
            vec![0.2, 0.5, 0.7, 3.5, 2.5],
            vec![2.5, 2.6, 2.7, 0.5, 0.5],
            vec![15.0, 11.5, 10.0, 30.0, 12.5],
        );
        let mut select = vec![true; 5];
        let f = fcc(&c, &select, &grid, &dem, 2.0);
        assert!((f[(0, 0)] - 100.0 / 3.0).abs() < 1e-12, "{f}");
        // (row 1, col 1) sees cell (0,0) and cell (2,2) (12.5 m: canopy): 2 of 4.
        assert_eq!(f[(1, 1)], 50.0);
        // (row 1, col 3) sees (2,2) [12.5: canopy] and (2,3) [no DEM].
        assert_eq!(f[(1, 3)], 100.0);
        assert!(f[(0, 3)].is_nan(), "no first return in its window");
        // Points left out by `select` (noise, outliers) do not count.
        select[0] = false;
        let f = fcc(&c, &select, &grid, &dem, 2.0);
        assert_eq!(f[(0, 0)], 0.0);
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
