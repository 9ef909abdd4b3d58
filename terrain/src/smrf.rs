//! SMRF, the Simple Morphological Filter of Pingel, Clarke & McBride (2013), as in
//! Pingel's reference implementation:
//!
//! 1. ZImin: the lowest candidate point of every cell (side `cell`) of a grid snapped to
//!    multiples of `cell`; empty cells are inpainted (harmonic, [`crate::inpaint`]).
//! 2. Low outliers: cells where `−ZImin` minus its opening by `disk(1)` exceeds 5·cell.
//! 3. Objects: a progressive filter — for r = 1 ..= ⌈window/cell⌉ the last surface is opened
//!    by `disk(r)`; cells where the drop exceeds `slope·r·cell` are objects.
//! 4. ZIpro: ZImin with empty, low-outlier, object (and net-cut) cells removed and inpainted.
//! 5. A candidate point is ground when |z − ZIpro(x, y)| ≤ `threshold + scalar·S(x, y)`,
//!    with ZIpro and its gradient magnitude S bilinearly interpolated at the point.
//!
//! The optional net cut (`cut` > 0, PDAL's extension for large buildings) replaces the
//! minimum surface along lines every ⌈cut/cell⌉ cells by its opening with `disk(2·cut/cell)`
//! before the object search and forces those cells to be re-interpolated.
//!
//! Candidates are the last and only returns not in an ignored class (7 by default), buffer
//! points included. Because the grid is snapped and every step is local except the
//! inpainting of voids, a partition whose buffer is at least 2·window + 3·cell wide
//! classifies its core points as the whole tile does, except near voids (no candidate
//! points, or object cells) that reach the partition's buffered edge.

use ndarray::Array2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TerrainError};
use crate::grid::{Grid, check_resolution};
use crate::inpaint::inpaint;
use crate::morph::open_disk;
use crate::points::{CLASS_LOW_NOISE, PointCloud};

/// SMRF parameters. The defaults are CloudButton's; PDAL's are
/// [`SmrfParams::pdal_defaults`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmrfParams {
    /// Cell size of the minimum surface, CRS units (m).
    pub cell: f64,
    /// Slope tolerance of the progressive filter (rise over run; 0.2 = 20 %).
    pub slope: f64,
    /// Largest opening radius, CRS units (m).
    pub window: f64,
    /// Elevation threshold of the final classification, z units (m).
    pub threshold: f64,
    /// Elevation scalar: the threshold grows by `scalar × local slope`.
    pub scalar: f64,
    /// Net-cut spacing, CRS units (0 = off).
    pub cut: f64,
    /// Classes never used (noise by default).
    pub ignore_classes: Vec<u8>,
    /// Use only last and only returns (true), or every return.
    pub last_returns: bool,
}

impl Default for SmrfParams {
    /// CloudButton's parameters: cell 1, slope 0.2, window 16 m, threshold 0.45, scalar 1.2.
    fn default() -> Self {
        SmrfParams {
            cell: 1.0,
            slope: 0.2,
            window: 16.0,
            threshold: 0.45,
            scalar: 1.2,
            cut: 0.0,
            ignore_classes: vec![CLASS_LOW_NOISE, crate::models::CLASS_HIGH_NOISE],
            last_returns: true,
        }
    }
}

impl SmrfParams {
    /// PDAL `filters.smrf` defaults: slope 0.15, window 18, threshold 0.5, scalar 1.25.
    pub fn pdal_defaults() -> Self {
        SmrfParams {
            slope: 0.15,
            window: 18.0,
            threshold: 0.5,
            scalar: 1.25,
            ..Default::default()
        }
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        check_resolution(self.cell, "SMRF cell")?;
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        if !(ok(self.slope) && ok(self.threshold) && ok(self.scalar) && ok(self.cut)) {
            return Err(TerrainError::param(format!(
                "SMRF slope, threshold, scalar and cut must be finite and ≥ 0, got {} {} {} {}",
                self.slope, self.threshold, self.scalar, self.cut
            )));
        }
        if !(self.window.is_finite() && self.window >= self.cell) {
            return Err(TerrainError::param(format!(
                "SMRF window ({}) must be at least one cell ({})",
                self.window, self.cell
            )));
        }
        if (self.window / self.cell).ceil() > 1000.0 || (self.cut / self.cell).ceil() > 1000.0 {
            return Err(TerrainError::param(format!(
                "SMRF window/cut of more than 1000 cells ({} / {}) is not supported",
                self.window.max(self.cut),
                self.cell
            )));
        }
        Ok(())
    }

    /// The largest opening radius in cells.
    pub fn radius_cells(&self) -> usize {
        (self.window / self.cell).ceil() as usize
    }
}

/// What [`smrf`] found.
#[derive(Debug, Clone)]
pub struct SmrfResult {
    /// Per point: classified as ground.
    pub ground: Vec<bool>,
    /// Per point: was a candidate (classified at all).
    pub candidate: Vec<bool>,
    /// The provisional DEM (ZIpro) and its grid.
    pub zpro: Array2<f64>,
    pub grid: Grid,
    /// Cells: low outliers, objects.
    pub low_cells: usize,
    pub object_cells: usize,
}

/// Which points SMRF classifies: last/only returns (if asked) not in an ignored class and
/// not flagged in `noise`.
pub fn candidates(cloud: &PointCloud, params: &SmrfParams, noise: Option<&[bool]>) -> Vec<bool> {
    (0..cloud.len())
        .into_par_iter()
        .map(|i| {
            (!params.last_returns || cloud.is_last_or_only(i))
                && !params.ignore_classes.contains(&cloud.class[i])
                && !noise.is_some_and(|n| n[i])
                && cloud.z[i].is_finite()
        })
        .collect()
}

/// Progressive morphological filter: object mask of `z`.
fn progressive(z: &Array2<f64>, radii: &[usize], cell: f64, slope: f64) -> Array2<bool> {
    let mut obj = Array2::from_elem(z.dim(), false);
    let mut last = z.clone();
    for &r in radii {
        let this = open_disk(&last, r);
        let thr = slope * r as f64 * cell;
        ndarray::Zip::from(&mut obj)
            .and(&last)
            .and(&this)
            .par_for_each(|o, &l, &t| {
                if l - t > thr {
                    *o = true;
                }
            });
        last = this;
    }
    obj
}

/// numpy.gradient magnitude of `z` with spacing `cell`.
fn gradient_magnitude(z: &Array2<f64>, cell: f64) -> Array2<f64> {
    let (rows, cols) = z.dim();
    Array2::from_shape_fn((rows, cols), |(r, c)| {
        let gx = if cols < 2 {
            0.0
        } else if c == 0 {
            (z[(r, 1)] - z[(r, 0)]) / cell
        } else if c == cols - 1 {
            (z[(r, c)] - z[(r, c - 1)]) / cell
        } else {
            (z[(r, c + 1)] - z[(r, c - 1)]) / (2.0 * cell)
        };
        let gy = if rows < 2 {
            0.0
        } else if r == 0 {
            (z[(1, c)] - z[(0, c)]) / cell
        } else if r == rows - 1 {
            (z[(r, c)] - z[(r - 1, c)]) / cell
        } else {
            (z[(r + 1, c)] - z[(r - 1, c)]) / (2.0 * cell)
        };
        (gx * gx + gy * gy).sqrt()
    })
}

/// Bilinear interpolation of `a` (samples at cell centres of `grid`) at (x, y), clamped at
/// the grid's outer centres.
#[inline]
fn bilinear(a: &Array2<f64>, grid: &Grid, x: f64, y: f64) -> f64 {
    let (rows, cols) = a.dim();
    // Fractional column/row of (x, y) in centre coordinates (row 0 at the top).
    let fc = ((x - grid.left()) / grid.res - 0.5).clamp(0.0, (cols - 1) as f64);
    let fr = ((grid.top() - y) / grid.res - 0.5).clamp(0.0, (rows - 1) as f64);
    let (c0, r0) = (fc.floor() as usize, fr.floor() as usize);
    let (c1, r1) = ((c0 + 1).min(cols - 1), (r0 + 1).min(rows - 1));
    let (tc, tr) = (fc - c0 as f64, fr - r0 as f64);
    let top = a[(r0, c0)] * (1.0 - tc) + a[(r0, c1)] * tc;
    let bot = a[(r1, c0)] * (1.0 - tc) + a[(r1, c1)] * tc;
    top * (1.0 - tr) + bot * tr
}

/// Runs SMRF on the candidate points of `cloud` (see [`candidates`]). Errors when there is
/// no candidate.
pub fn smrf(cloud: &PointCloud, candidate: Vec<bool>, params: &SmrfParams) -> Result<SmrfResult> {
    params.validate()?;
    let bounds = cloud.bounds_where(|i| candidate[i]).ok_or_else(|| {
        TerrainError::param("SMRF: no candidate points (last/only returns outside ignored classes)")
    })?;
    let grid = Grid::snapped(&bounds, params.cell)?;
    let ncand = candidate.iter().filter(|&&c| c).count();
    crate::grid::check_density("SMRF", ncand, &grid, params.cell, "SMRF cell (--smrf-cell)")?;
    let (rows, cols) = (grid.rows, grid.cols);
    // 1. Minimum surface.
    let mut zmin = Array2::from_elem((rows, cols), f64::NAN);
    for (i, _) in candidate.iter().enumerate().filter(|(_, c)| **c) {
        if let Some((c, r)) = grid.cell_of(cloud.x[i], cloud.y[i]) {
            let v = &mut zmin[(r, c)];
            if v.is_nan() || cloud.z[i] < *v {
                *v = cloud.z[i];
            }
        }
    }
    let empty = zmin.mapv(|v| v.is_nan());
    inpaint(&mut zmin);
    // 2. Low outliers.
    let low = progressive(&zmin.mapv(|v| -v), &[1], params.cell, 5.0);
    // Net cut.
    let mut net = Array2::from_elem((rows, cols), false);
    let mut zobj_src = zmin.clone();
    if params.cut > 0.0 {
        let v = (params.cut / params.cell).ceil() as i64;
        let opened = open_disk(&zmin, (2 * v) as usize);
        for r in 0..rows {
            let gr = grid.row0 + (rows - 1 - r) as i64;
            for c in 0..cols {
                let gc = grid.col0 + c as i64;
                if gr.rem_euclid(v) == 0 || gc.rem_euclid(v) == 0 {
                    net[(r, c)] = true;
                    zobj_src[(r, c)] = opened[(r, c)];
                }
            }
        }
    }
    // 3. Objects.
    let radii: Vec<usize> = (1..=params.radius_cells()).collect();
    let obj = progressive(&zobj_src, &radii, params.cell, params.slope);
    drop(zobj_src);
    // 4. Provisional DEM.
    let mut zpro = zmin;
    let mut low_cells = 0;
    let mut object_cells = 0;
    for ((z, (&e, &l)), (&o, &n)) in zpro
        .iter_mut()
        .zip(empty.iter().zip(low.iter()))
        .zip(obj.iter().zip(net.iter()))
    {
        low_cells += (l && !e) as usize;
        object_cells += (o && !e && !l) as usize;
        if e || l || o || n {
            *z = f64::NAN;
        }
    }
    if !inpaint(&mut zpro) {
        // Every cell is an object or low outlier: nothing is ground.
        return Ok(SmrfResult {
            ground: vec![false; cloud.len()],
            candidate,
            zpro,
            grid,
            low_cells,
            object_cells,
        });
    }
    // 5. Classification.
    let slope = gradient_magnitude(&zpro, params.cell);
    let ground: Vec<bool> = (0..cloud.len())
        .into_par_iter()
        .map(|i| {
            if !candidate[i] {
                return false;
            }
            let (x, y) = (cloud.x[i], cloud.y[i]);
            let ez = bilinear(&zpro, &grid, x, y);
            let s = bilinear(&slope, &grid, x, y);
            (ez - cloud.z[i]).abs() <= params.threshold + params.scalar * s
        })
        .collect();
    Ok(SmrfResult {
        ground,
        candidate,
        zpro,
        grid,
        low_cells,
        object_cells,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_box_on_a_slope() {
        // 60×60 m of ground on a 5 % slope, 2 points per m², with a 10×10 m building 8 m
        // high and one low outlier.
        let mut x = vec![];
        let mut y = vec![];
        let mut z = vec![];
        let mut truth = vec![];
        for i in 0..120 {
            for j in 0..120 {
                let px = i as f64 * 0.5 + 0.13;
                let py = j as f64 * 0.5 + 0.27;
                let ground = 100.0 + 0.05 * px;
                let building = (20.0..30.0).contains(&px) && (20.0..30.0).contains(&py);
                x.push(px);
                y.push(py);
                z.push(if building { ground + 8.0 } else { ground });
                truth.push(!building);
            }
        }
        x.push(45.1);
        y.push(45.1);
        z.push(90.0);
        truth.push(false);
        let cloud = PointCloud::from_xyz(x, y, z);
        let p = SmrfParams::default();
        let cand = candidates(&cloud, &p, None);
        let r = smrf(&cloud, cand, &p).unwrap();
        let wrong = r.ground.iter().zip(&truth).filter(|(a, b)| a != b).count();
        assert!(wrong <= 20, "{wrong} misclassified of {}", truth.len());
        assert!(!r.ground[cloud.len() - 1], "the low outlier is not ground");
        assert!(r.low_cells >= 1);
    }

    #[test]
    fn parameters_are_checked() {
        let bad = SmrfParams {
            cell: 0.0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = SmrfParams {
            window: 0.5,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let cloud = PointCloud::from_xyz(vec![0.0], vec![0.0], vec![1.0]);
        let p = SmrfParams::default();
        let r = smrf(&cloud, vec![true], &p).unwrap();
        assert_eq!(r.ground, vec![true]);
        assert!(smrf(&cloud, vec![false], &p).is_err());
    }
}
