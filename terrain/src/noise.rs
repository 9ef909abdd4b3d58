//! Noise filters run before SMRF, as in CloudButton's PDAL pipelines: the extended local
//! minimum (PDAL `filters.elm`) and the radius outlier filter (PDAL `filters.outlier`,
//! `method=radius`). Flagged points are reclassified as low noise (class 7), which SMRF
//! then ignores.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TerrainError};
use crate::grid::{Grid, check_resolution};
use crate::points::PointCloud;

/// Extended local minimum parameters (PDAL `filters.elm` defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElmParams {
    /// Cell size, CRS units.
    pub cell: f64,
    /// Minimum gap to the next point up for the lowest point of a cell to be noise, z units.
    pub threshold: f64,
}

impl Default for ElmParams {
    fn default() -> Self {
        ElmParams {
            cell: 10.0,
            threshold: 1.0,
        }
    }
}

/// Radius outlier parameters (CloudButton: radius 1 m, at least 4 neighbours).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutlierParams {
    /// Search radius (3D), CRS units.
    pub radius: f64,
    /// Fewer other points than this within `radius` makes a point noise (PDAL `min_k`).
    pub min_neighbours: usize,
}

impl Default for OutlierParams {
    fn default() -> Self {
        OutlierParams {
            radius: 1.0,
            min_neighbours: 4,
        }
    }
}

/// Extended local minimum: in every cell (of a grid snapped to multiples of `cell`), the
/// points are taken from the lowest up; while the next point is at least `threshold`
/// higher, the current lowest one is noise. Returns the noise flags of the points for
/// which `eligible` holds.
pub fn elm(cloud: &PointCloud, eligible: &[bool], params: &ElmParams) -> Result<Vec<bool>> {
    check_resolution(params.cell, "ELM cell")?;
    if !(params.threshold.is_finite() && params.threshold >= 0.0) {
        return Err(TerrainError::param(format!(
            "ELM threshold must be ≥ 0, got {}",
            params.threshold
        )));
    }
    let mut noise = vec![false; cloud.len()];
    let Some(bounds) = cloud.bounds_where(|i| eligible[i]) else {
        return Ok(noise);
    };
    let grid = Grid::snapped(&bounds, params.cell)?;
    let mut items: Vec<(u32, f64, u32)> = (0..cloud.len())
        .filter(|&i| eligible[i])
        .filter_map(|i| {
            grid.cell_of(cloud.x[i], cloud.y[i])
                .map(|(c, r)| ((r * grid.cols + c) as u32, cloud.z[i], i as u32))
        })
        .collect();
    items.par_sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut start = 0;
    while start < items.len() {
        let mut end = start + 1;
        while end < items.len() && items[end].0 == items[start].0 {
            end += 1;
        }
        for k in start..end.saturating_sub(1) {
            if (items[k].1 - items[k + 1].1).abs() < params.threshold {
                break;
            }
            noise[items[k].2 as usize] = true;
        }
        start = end;
    }
    Ok(noise)
}

/// Radius outlier filter: a point with fewer than `min_neighbours` other points within
/// `radius` (3D distance, strictly less) is noise. Only points for which `eligible` holds
/// are tested or counted.
pub fn radius_outliers(
    cloud: &PointCloud,
    eligible: &[bool],
    params: &OutlierParams,
) -> Result<Vec<bool>> {
    check_resolution(params.radius, "outlier radius")?;
    let n = cloud.len();
    let Some(bounds) = cloud.bounds_where(|i| eligible[i]) else {
        return Ok(vec![false; n]);
    };
    if params.min_neighbours == 0 {
        return Ok(vec![false; n]);
    }
    // Bin the eligible points in cells of side `radius`.
    let grid = Grid::snapped(&bounds, params.radius)?;
    let mut order: Vec<(u32, u32)> = (0..n)
        .filter(|&i| eligible[i])
        .filter_map(|i| {
            grid.cell_of(cloud.x[i], cloud.y[i])
                .map(|(c, r)| ((r * grid.cols + c) as u32, i as u32))
        })
        .collect();
    order.par_sort_unstable();
    let cells = grid.cells();
    let mut starts = vec![0u32; cells + 1];
    for &(c, _) in &order {
        starts[c as usize + 1] += 1;
    }
    for k in 1..=cells {
        starts[k] += starts[k - 1];
    }
    let (xs, ys, zs): (Vec<f64>, Vec<f64>, Vec<f64>) = {
        let mut xs = Vec::with_capacity(order.len());
        let mut ys = Vec::with_capacity(order.len());
        let mut zs = Vec::with_capacity(order.len());
        for &(_, i) in &order {
            xs.push(cloud.x[i as usize]);
            ys.push(cloud.y[i as usize]);
            zs.push(cloud.z[i as usize]);
        }
        (xs, ys, zs)
    };
    let r2 = params.radius * params.radius;
    let need = params.min_neighbours;
    let flags: Vec<bool> = (0..order.len())
        .into_par_iter()
        .map(|k| {
            let cell = order[k].0 as usize;
            let (row, col) = (cell / grid.cols, cell % grid.cols);
            let (x, y, z) = (xs[k], ys[k], zs[k]);
            let mut found = 0usize;
            for r in row.saturating_sub(1)..=(row + 1).min(grid.rows - 1) {
                let c0 = col.saturating_sub(1);
                let c1 = (col + 1).min(grid.cols - 1);
                let a = starts[r * grid.cols + c0] as usize;
                let b = starts[r * grid.cols + c1 + 1] as usize;
                for j in a..b {
                    if j == k {
                        continue;
                    }
                    let (dx, dy, dz) = (xs[j] - x, ys[j] - y, zs[j] - z);
                    if dx * dx + dy * dy + dz * dz < r2 {
                        found += 1;
                        if found >= need {
                            return false;
                        }
                    }
                }
            }
            true
        })
        .collect();
    let mut noise = vec![false; n];
    for (k, &(_, i)) in order.iter().enumerate() {
        noise[i as usize] = flags[k];
    }
    Ok(noise)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn elm_flags_isolated_low_points() {
        // One cell: z = 0 (noise: next is 5 above), 5, 5.5, 6.
        let c = PointCloud::from_xyz(
            vec![1.0, 2.0, 3.0, 4.0, 15.0],
            vec![1.0; 5],
            vec![5.0, 0.0, 5.5, 6.0, -50.0],
        );
        let n = elm(&c, &[true; 5], &ElmParams::default()).unwrap();
        assert_eq!(n, vec![false, true, false, false, false]);
        // Two low points each ≥ 1 below the next.
        let c = PointCloud::from_xyz(vec![1.0; 4], vec![1.0; 4], vec![0.0, 2.0, 4.0, 4.2]);
        let n = elm(&c, &[true; 4], &ElmParams::default()).unwrap();
        assert_eq!(n, vec![true, true, false, false]);
    }

    #[test]
    fn radius_outliers_need_neighbours() {
        let mut x = vec![0.0, 0.1, 0.2, 0.3, 0.4];
        let mut y = vec![0.0; 5];
        let mut z = vec![0.0; 5];
        x.push(5.0);
        y.push(5.0);
        z.push(0.0);
        // A point 2 m above the cluster has no neighbour within 1 m (3D).
        x.push(0.3);
        y.push(0.0);
        z.push(2.0);
        let c = PointCloud::from_xyz(x, y, z);
        let n = radius_outliers(&c, &[true; 7], &OutlierParams::default()).unwrap();
        assert_eq!(n, vec![false, false, false, false, false, true, true]);
    }
}
