//! Gridding points into rasters: PDAL `writers.gdal` inverse-distance weighting and maximum,
//! and linear interpolation on a Delaunay TIN.
//!
//! IDW follows `writers.gdal` (`output_type=idw`): a point contributes to every cell whose
//! centre lies at a distance `d < radius` (default `resolution·√2`), with weight `1/d^power`;
//! a cell is `Σ(z/dᵖ) / Σ(1/dᵖ)`. The first point lying exactly on a cell centre (`d = 0`)
//! sets the cell to its z and later points are ignored for that cell. Cells no point reaches
//! are empty (NaN here, nodata on output) unless `window_size` > 0 fills them, as PDAL does,
//! with the inverse-Chebyshev-distance average of the non-empty cells at most `window_size`
//! cells away.
//!
//! Differences from PDAL: every cell within the radius is reached (PDAL 1.8 skipped some
//! cells along the last column and row of the raster); points are taken in a canonical
//! order (by cell, then x, y, z) instead of file order, so the result does not depend on how
//! a partition file orders its points — among several points exactly on a cell centre the
//! lowest wins rather than the first in the file.

use ndarray::{Array2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::grid::Grid;
use crate::points::{CellIndex, PointCloud};

/// Parameters of [`idw`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdwParams {
    /// Exponent of the distance in the weights (PDAL `power`, default 1).
    pub power: f64,
    /// Search radius around cell centres, CRS units; `None` = resolution·√2 (PDAL's default).
    pub radius: Option<f64>,
    /// PDAL `window_size`: fill empty cells from non-empty ones this many cells away (0 = off).
    pub window_size: usize,
}

impl Default for IdwParams {
    fn default() -> Self {
        IdwParams {
            power: 1.0,
            radius: None,
            window_size: 0,
        }
    }
}

impl IdwParams {
    /// The search radius for cells of side `res`.
    pub fn radius_for(&self, res: f64) -> f64 {
        self.radius.unwrap_or(res * std::f64::consts::SQRT_2)
    }
}

/// How many cells away from its own cell a point within `radius` of a cell centre can be.
fn reach(radius: f64, res: f64) -> usize {
    // A point in cell c is within `radius` of the centre of cell c+k only if
    // (k − 0.5)·res < radius.
    ((radius / res + 0.5).floor() as usize).max(1)
}

/// Sets every cell of `out` (shaped like `index.grid`) to `f(points)`, where `points` holds
/// (z, distance) of every selected point within `radius` of the cell centre: neighbouring
/// cells in row-major order, points in index order.
fn for_each_cell<F>(
    cloud: &PointCloud,
    index: &CellIndex,
    select: &[bool],
    radius: f64,
    out: &mut Array2<f64>,
    f: F,
) where
    F: Fn(&[(f64, f64)]) -> f64 + Sync,
{
    let g = index.grid;
    let k = reach(radius, g.res) as isize;
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each_init(Vec::new, |found, (row, mut line)| {
            let cy = g.center_y(row);
            let r0 = (row as isize - k).max(0) as usize;
            let r1 = (row as isize + k).min(g.rows as isize - 1) as usize;
            for col in 0..g.cols {
                let cx = g.center_x(col);
                let c0 = (col as isize - k).max(0) as usize;
                let c1 = (col as isize + k).min(g.cols as isize - 1) as usize;
                found.clear();
                for r in r0..=r1 {
                    let span = index.cell(c0, r).start..index.cell(c1, r).end;
                    for i in span {
                        if !select[i] {
                            continue;
                        }
                        let dx = cx - cloud.x[i];
                        let dy = cy - cloud.y[i];
                        let d = (dx * dx + dy * dy).sqrt();
                        if d < radius {
                            found.push((cloud.z[i], d));
                        }
                    }
                }
                line[col] = f(found);
            }
        });
}

/// PDAL `writers.gdal` IDW of the selected points of a cloud sorted on `index.grid` (see the
/// module documentation). Empty cells are NaN.
pub fn idw(
    cloud: &PointCloud,
    index: &CellIndex,
    select: &[bool],
    params: &IdwParams,
) -> Array2<f64> {
    let g = index.grid;
    let radius = params.radius_for(g.res);
    let power = params.power;
    let mut out = Array2::from_elem((g.rows, g.cols), f64::NAN);
    for_each_cell(cloud, index, select, radius, &mut out, |found| {
        if found.is_empty() {
            return f64::NAN;
        }
        let mut num = 0.0f64;
        let mut den = 0.0f64;
        for &(z, d) in found {
            if d == 0.0 {
                return z;
            }
            let w = d.powf(power);
            num += z / w;
            den += 1.0 / w;
        }
        num / den
    });
    if params.window_size > 0 {
        window_fill(&mut out, params.window_size);
    }
    out
}

/// Maximum z of the selected points within `radius` of each cell centre (PDAL
/// `output_type=max`); NaN where there is none.
pub fn max_z(cloud: &PointCloud, index: &CellIndex, select: &[bool], radius: f64) -> Array2<f64> {
    let g = index.grid;
    let mut out = Array2::from_elem((g.rows, g.cols), f64::NAN);
    for_each_cell(cloud, index, select, radius, &mut out, |found| {
        found
            .iter()
            .map(|&(z, _)| z)
            .fold(f64::NAN, |m, z| if m.is_nan() || z > m { z } else { m })
    });
    out
}

/// PDAL's `window_size` fill: every NaN cell gets the average of the originally non-empty
/// cells at most `window` cells away (Chebyshev distance), weighted by the inverse of that
/// distance; cells with none stay NaN.
pub fn window_fill(a: &mut Array2<f64>, window: usize) {
    let src = a.clone();
    let (rows, cols) = src.dim();
    a.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(r, mut line)| {
            for c in 0..cols {
                if !src[(r, c)].is_nan() {
                    continue;
                }
                let (r0, r1) = (r.saturating_sub(window), (r + window + 1).min(rows));
                let (c0, c1) = (c.saturating_sub(window), (c + window + 1).min(cols));
                let mut sum = 0.0;
                let mut wsum = 0.0;
                // PDAL walks columns in the outer loop.
                for cc in c0..c1 {
                    for rr in r0..r1 {
                        let v = src[(rr, cc)];
                        if (rr == r && cc == c) || v.is_nan() {
                            continue;
                        }
                        let d = (rr.abs_diff(r)).max(cc.abs_diff(c)) as f64;
                        sum += v / d;
                        wsum += 1.0 / d;
                    }
                }
                if wsum > 0.0 {
                    line[c] = sum / wsum;
                }
            }
        });
}

/// Linear interpolation on the Delaunay triangulation of the selected points, sampled at
/// cell centres; triangles with an edge longer than `max_edge` (CRS units; `None` = no
/// limit) are left out, and cells outside every kept triangle are NaN.
///
/// Each triangle's plane is computed from its vertices in (x, y) order, so the value of a
/// cell does not depend on how the triangulation lists the triangle.
pub fn tin(cloud: &PointCloud, select: &[bool], grid: &Grid, max_edge: Option<f64>) -> Array2<f64> {
    let mut out = Array2::from_elem((grid.rows, grid.cols), f64::NAN);
    // Coordinates relative to the grid's left/bottom edge, for conditioning.
    let (ox, oy) = (grid.left(), grid.bottom());
    let idx: Vec<usize> = (0..cloud.len()).filter(|&i| select[i]).collect();
    if idx.len() < 3 {
        return out;
    }
    let pts: Vec<delaunator::Point> = idx
        .iter()
        .map(|&i| delaunator::Point {
            x: cloud.x[i] - ox,
            y: cloud.y[i] - oy,
        })
        .collect();
    let tri = delaunator::triangulate(&pts);
    let max2 = max_edge.map(|m| m * m);
    let res = grid.res;
    let (rows, cols) = (grid.rows, grid.cols);
    // Cell centres relative to (ox, oy): x = (c + 0.5)·res, y = (rows − r − 0.5)·res.
    for t in tri.triangles.chunks_exact(3) {
        let mut v = [t[0], t[1], t[2]];
        v.sort_unstable_by(|&a, &b| {
            pts[a]
                .x
                .total_cmp(&pts[b].x)
                .then(pts[a].y.total_cmp(&pts[b].y))
        });
        let (a, b, c) = (&pts[v[0]], &pts[v[1]], &pts[v[2]]);
        if let Some(m2) = max2 {
            let e = |p: &delaunator::Point, q: &delaunator::Point| {
                (p.x - q.x) * (p.x - q.x) + (p.y - q.y) * (p.y - q.y)
            };
            if e(a, b) > m2 || e(b, c) > m2 || e(a, c) > m2 {
                continue;
            }
        }
        let (za, zb, zc) = (cloud.z[idx[v[0]]], cloud.z[idx[v[1]]], cloud.z[idx[v[2]]]);
        let det = (b.y - c.y) * (a.x - c.x) + (c.x - b.x) * (a.y - c.y);
        if det == 0.0 || !det.is_finite() {
            continue;
        }
        let minx = a.x.min(b.x).min(c.x);
        let maxx = a.x.max(b.x).max(c.x);
        let miny = a.y.min(b.y).min(c.y);
        let maxy = a.y.max(b.y).max(c.y);
        let c0 = ((minx / res - 0.5).ceil().max(0.0)) as usize;
        let c1 = (maxx / res - 0.5).floor();
        let rb0 = ((miny / res - 0.5).ceil().max(0.0)) as usize; // from the bottom
        let rb1 = (maxy / res - 0.5).floor();
        if c1 < 0.0 || rb1 < 0.0 {
            continue;
        }
        let c1 = (c1 as usize).min(cols.saturating_sub(1));
        let rb1 = (rb1 as usize).min(rows.saturating_sub(1));
        let eps = 1e-12 * det.abs();
        for rb in rb0..=rb1 {
            let py = (rb as f64 + 0.5) * res;
            let row = rows - 1 - rb;
            for col in c0..=c1 {
                let px = (col as f64 + 0.5) * res;
                let l1 = ((b.y - c.y) * (px - c.x) + (c.x - b.x) * (py - c.y)) / det;
                let l2 = ((c.y - a.y) * (px - c.x) + (a.x - c.x) * (py - c.y)) / det;
                let l3 = 1.0 - l1 - l2;
                let tol = eps / det.abs();
                if l1 < -tol || l2 < -tol || l3 < -tol {
                    continue;
                }
                let cell = &mut out[(row, col)];
                if cell.is_nan() {
                    *cell = l1 * za + l2 * zb + l3 * zc;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::grid::Bounds;

    fn sorted(cloud: &mut PointCloud, grid: &Grid) -> CellIndex {
        cloud.sort_by_cells(grid)
    }

    #[test]
    fn idw_by_hand() {
        // Two points in a 2×1 grid of 1 m cells.
        let mut c = PointCloud::from_xyz(vec![0.25, 1.5], vec![0.5, 0.5], vec![10.0, 20.0]);
        let g = Grid::snapped(
            &Bounds {
                min_x: 0.0,
                min_y: 0.0,
                max_x: 1.9,
                max_y: 0.9,
            },
            1.0,
        )
        .unwrap();
        let idx = sorted(&mut c, &g);
        let sel = vec![true; 2];
        let a = idw(&c, &idx, &sel, &IdwParams::default());
        // Cell 0 (centre 0.5): d=0.25 to z10, d=1.0 to z20 → (40 + 20) / (4 + 1) = 12.
        assert!((a[(0, 0)] - 12.0).abs() < 1e-12);
        // Cell 1 (centre 1.5): the z20 point is exactly on the centre.
        assert_eq!(a[(0, 1)], 20.0);
        let m = max_z(&c, &idx, &sel, std::f64::consts::SQRT_2);
        assert_eq!(m[(0, 0)], 20.0);
        assert_eq!(m[(0, 1)], 20.0);
        // Radius 0.9: cell 0 only sees its own point.
        let a = idw(
            &c,
            &idx,
            &sel,
            &IdwParams {
                radius: Some(0.9),
                ..Default::default()
            },
        );
        assert_eq!(a[(0, 0)], 10.0);
    }

    #[test]
    fn window_fill_like_pdal() {
        let mut a = Array2::from_elem((3, 3), f64::NAN);
        a[(0, 0)] = 1.0;
        a[(2, 2)] = 4.0;
        a[(1, 2)] = 2.0;
        window_fill(&mut a, 1);
        // Centre: neighbours 1 (d1), 4 (d1), 2 (d1) → mean 7/3.
        assert!((a[(1, 1)] - 7.0 / 3.0).abs() < 1e-12);
        // (2,0) has no non-empty neighbour within 1 → stays NaN.
        assert!(a[(2, 0)].is_nan());
    }

    #[test]
    fn tin_reproduces_a_plane() {
        let mut x = vec![];
        let mut y = vec![];
        let mut z = vec![];
        let mut s = 12345u64;
        for _ in 0..500 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let px = (s >> 11) as f64 / (1u64 << 53) as f64 * 20.0;
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let py = (s >> 11) as f64 / (1u64 << 53) as f64 * 10.0;
            x.push(100.0 + px);
            y.push(200.0 + py);
            z.push(3.0 + 0.5 * px - 0.25 * py);
        }
        // Corners so the hull covers the grid.
        for (px, py) in [(0.0, 0.0), (20.0, 0.0), (0.0, 10.0), (20.0, 10.0)] {
            x.push(100.0 + px);
            y.push(200.0 + py);
            z.push(3.0 + 0.5 * px - 0.25 * py);
        }
        let c = PointCloud::from_xyz(x, y, z);
        let g = Grid::snapped(
            &Bounds {
                min_x: 100.0,
                min_y: 200.0,
                max_x: 119.99,
                max_y: 209.99,
            },
            1.0,
        )
        .unwrap();
        let sel = vec![true; c.len()];
        let a = tin(&c, &sel, &g, None);
        for r in 0..g.rows {
            for col in 0..g.cols {
                let px = g.center_x(col) - 100.0;
                let py = g.center_y(r) - 200.0;
                let want = 3.0 + 0.5 * px - 0.25 * py;
                assert!((a[(r, col)] - want).abs() < 1e-9, "{r} {col}");
            }
        }
        // A tiny max edge leaves everything empty.
        let b = tin(&c, &sel, &g, Some(0.01));
        assert!(b.iter().all(|v| v.is_nan()));
    }
}
