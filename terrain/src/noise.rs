//! Noise filters, as in PDAL: the extended local minimum (`filters.elm`) and the outlier
//! filter (`filters.outlier`, statistical by default with PDAL's `mean_k` 8 and
//! `multiplier` 2, or by radius). Before SMRF (when asked) flagged points are reclassified
//! as low noise (class 7), which SMRF then ignores; the statistical filter also keeps
//! isolated points (birds, air returns) out of the surface models by default.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TerrainError};
use crate::grid::{Bounds, Grid, check_resolution};
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

/// How outliers are found (PDAL `filters.outlier` `method`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutlierMethod {
    /// A point whose mean 3D distance to its `mean_k` nearest neighbours is at least
    /// μ + `multiplier`·σ of those means over the cloud (PDAL's default).
    #[default]
    Statistical,
    /// A point with fewer than `min_neighbours` other points within `radius` (3D).
    Radius,
}

/// Outlier filter parameters; the defaults are PDAL `filters.outlier`'s (statistical,
/// `mean_k` 8, `multiplier` 2; radius 1 and `min_k` 2 for the radius method). CloudButton's
/// pipelines used the radius method with radius 1 m and 4 neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutlierParams {
    pub method: OutlierMethod,
    /// Neighbours whose mean distance is taken (statistical).
    pub mean_k: usize,
    /// Standard deviations above the mean distance that make an outlier (statistical).
    pub multiplier: f64,
    /// Search radius (3D), CRS units (radius).
    pub radius: f64,
    /// Fewer other points than this within `radius` makes a point noise (radius; PDAL
    /// `min_k`).
    pub min_neighbours: usize,
}

impl Default for OutlierParams {
    fn default() -> Self {
        OutlierParams {
            method: OutlierMethod::Statistical,
            mean_k: 8,
            multiplier: 2.0,
            radius: 1.0,
            min_neighbours: 2,
        }
    }
}

impl OutlierParams {
    /// CloudButton's radius filter: radius 1 m, at least 4 neighbours.
    pub fn cloudbutton_radius() -> Self {
        OutlierParams {
            method: OutlierMethod::Radius,
            min_neighbours: 4,
            ..Default::default()
        }
    }
}

/// Outlier flags of the points for which `eligible` holds, by `params`' method.
pub fn outliers(
    cloud: &PointCloud,
    eligible: &[bool],
    params: &OutlierParams,
) -> Result<Vec<bool>> {
    match params.method {
        OutlierMethod::Statistical => {
            statistical_outliers(cloud, eligible, params.mean_k, params.multiplier)
        }
        OutlierMethod::Radius => radius_outliers(cloud, eligible, params),
    }
}

/// The eligible points binned in square cells of `side`: (grid, row-major cell starts,
/// point ids in cell order with their coordinates).
struct Binned {
    grid: Grid,
    starts: Vec<u32>,
    ids: Vec<u32>,
    xyz: Vec<[f64; 3]>,
}

fn bin(cloud: &PointCloud, eligible: &[bool], bounds: &Bounds, side: f64) -> Result<Binned> {
    let grid = Grid::snapped(bounds, side)?;
    let mut order: Vec<(u32, u32)> = (0..cloud.len())
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
    let xyz = order
        .iter()
        .map(|&(_, i)| {
            let i = i as usize;
            [cloud.x[i], cloud.y[i], cloud.z[i]]
        })
        .collect();
    Ok(Binned {
        grid,
        starts,
        ids: order.into_iter().map(|(_, i)| i).collect(),
        xyz,
    })
}

/// Most cells a statistical-outlier grid may have (the cell side grows to keep under it).
const MAX_KNN_CELLS: f64 = 4e7;

/// PDAL's statistical outlier filter over the eligible points: for each, the mean 3D
/// distance to its `mean_k` nearest other eligible points (exact k-nearest-neighbour search
/// over a grid of square cells, rings grown until no closer point can exist); then, over all
/// of them, the mean μ and the sample standard deviation σ of those means; a point whose
/// mean is ≥ μ + `multiplier`·σ is an outlier. A cloud of `mean_k` points or fewer has none.
pub fn statistical_outliers(
    cloud: &PointCloud,
    eligible: &[bool],
    mean_k: usize,
    multiplier: f64,
) -> Result<Vec<bool>> {
    if mean_k == 0 || !multiplier.is_finite() {
        return Err(TerrainError::param(format!(
            "statistical outliers need mean_k ≥ 1 and a finite multiplier, got {mean_k} and {multiplier}"
        )));
    }
    let n = cloud.len();
    let Some(bounds) = cloud.bounds_where(|i| eligible[i]) else {
        return Ok(vec![false; n]);
    };
    let count = eligible.iter().filter(|&&e| e).count();
    if count <= mean_k {
        return Ok(vec![false; n]);
    }
    // Cells holding about `mean_k` points each on average, within a bounded cell count.
    let area = ((bounds.max_x - bounds.min_x) * (bounds.max_y - bounds.min_y)).max(1e-6);
    let mut side = (area * mean_k as f64 / count as f64).sqrt().max(1e-3);
    side = side.max((area / MAX_KNN_CELLS).sqrt());
    let b = bin(cloud, eligible, &bounds, side)?;
    let (cols, rows) = (b.grid.cols, b.grid.rows);
    let means: Vec<f64> = (0..b.ids.len())
        .into_par_iter()
        .map(|k| {
            let [x, y, z] = b.xyz[k];
            let (col, row) = b.grid.cell_of(x, y).unwrap_or((0, 0));
            // The `mean_k` smallest squared distances so far, ascending.
            let mut best: Vec<f64> = Vec::with_capacity(mean_k + 1);
            let visit = |best: &mut Vec<f64>, r: usize, c: usize| {
                let cell = r * cols + c;
                for j in b.starts[cell] as usize..b.starts[cell + 1] as usize {
                    if j == k {
                        continue;
                    }
                    let [px, py, pz] = b.xyz[j];
                    let d = (px - x).powi(2) + (py - y).powi(2) + (pz - z).powi(2);
                    if best.len() < mean_k || d < best[mean_k - 1] {
                        let at = best.partition_point(|&v| v <= d);
                        best.insert(at, d);
                        best.truncate(mean_k);
                    }
                }
            };
            let mut ring = 0usize;
            loop {
                // The cells at Chebyshev distance `ring` from (row, col), clipped.
                let top = row.checked_sub(ring);
                let bottom = Some(row + ring).filter(|&r| r < rows);
                let left = col.checked_sub(ring);
                let right = Some(col + ring).filter(|&c| c < cols);
                let (rmin, rmax) = (row.saturating_sub(ring), (row + ring).min(rows - 1));
                let (cmin, cmax) = (col.saturating_sub(ring), (col + ring).min(cols - 1));
                if ring == 0 {
                    visit(&mut best, row, col);
                } else {
                    for r in [top, bottom].into_iter().flatten() {
                        for c in cmin..=cmax {
                            visit(&mut best, r, c);
                        }
                    }
                    for r in rmin..=rmax {
                        if Some(r) == top || Some(r) == bottom {
                            continue;
                        }
                        for c in [left, right].into_iter().flatten() {
                            visit(&mut best, r, c);
                        }
                    }
                }
                // A point outside the rings seen so far is more than `ring · side` away.
                let reach = ring as f64 * side;
                let covered = rmin == 0 && cmin == 0 && rmax == rows - 1 && cmax == cols - 1;
                if covered || (best.len() == mean_k && reach * reach >= best[mean_k - 1]) {
                    break;
                }
                ring += 1;
            }
            best.iter().map(|d| d.sqrt()).sum::<f64>() / best.len().max(1) as f64
        })
        .collect();
    let m = means.len() as f64;
    let mu = means.iter().sum::<f64>() / m;
    let var = means.iter().map(|d| (d - mu).powi(2)).sum::<f64>() / (m - 1.0);
    let threshold = mu + multiplier * var.sqrt();
    let mut noise = vec![false; n];
    for (k, &i) in b.ids.iter().enumerate() {
        noise[i as usize] = means[k] >= threshold;
    }
    Ok(noise)
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
    let binned = bin(cloud, eligible, &bounds, params.radius)?;
    let (grid, starts) = (&binned.grid, &binned.starts);
    let r2 = params.radius * params.radius;
    let need = params.min_neighbours;
    let flags: Vec<bool> = (0..binned.ids.len())
        .into_par_iter()
        .map(|k| {
            let [x, y, z] = binned.xyz[k];
            let (col, row) = grid.cell_of(x, y).unwrap_or((0, 0));
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
                    let [px, py, pz] = binned.xyz[j];
                    let (dx, dy, dz) = (px - x, py - y, pz - z);
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
    for (k, &i) in binned.ids.iter().enumerate() {
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
        let n = radius_outliers(&c, &[true; 7], &OutlierParams::cloudbutton_radius()).unwrap();
        assert_eq!(n, vec![false, false, false, false, false, true, true]);
    }

    #[test]
    fn statistical_outliers_flag_an_air_point_and_match_brute_force() {
        // A 30×30 lattice of 1 m (z on a gentle slope with a ripple) and one point 400 m up.
        let (mut x, mut y, mut z) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..30 {
            for j in 0..30 {
                x.push(i as f64 + 0.1 * ((i * j) % 7) as f64);
                y.push(j as f64 + 0.05 * ((i + j) % 5) as f64);
                z.push(0.2 * i as f64 + 0.3 * ((i * 3 + j) % 4) as f64);
            }
        }
        x.push(15.0);
        y.push(15.0);
        z.push(400.0);
        let c = PointCloud::from_xyz(x.clone(), y.clone(), z.clone());
        let all = vec![true; c.len()];
        let flags = statistical_outliers(&c, &all, 8, 2.0).unwrap();
        assert!(flags[c.len() - 1], "the air point");
        // Brute force: the same means, threshold and flags.
        let n = c.len();
        let means: Vec<f64> = (0..n)
            .map(|a| {
                let mut d: Vec<f64> = (0..n)
                    .filter(|&b| b != a)
                    .map(|b| {
                        ((x[a] - x[b]).powi(2) + (y[a] - y[b]).powi(2) + (z[a] - z[b]).powi(2))
                            .sqrt()
                    })
                    .collect();
                d.sort_by(f64::total_cmp);
                d[..8].iter().sum::<f64>() / 8.0
            })
            .collect();
        let mu = means.iter().sum::<f64>() / n as f64;
        let sd = (means.iter().map(|m| (m - mu).powi(2)).sum::<f64>() / (n as f64 - 1.0)).sqrt();
        let expect: Vec<bool> = means.iter().map(|&m| m >= mu + 2.0 * sd).collect();
        assert_eq!(flags, expect);
    }
}
