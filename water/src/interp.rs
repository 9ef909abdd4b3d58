//! Station selection (area of influence) and inverse-distance weighting onto raster pixels.

use cog::GeoTransform;
use ndarray::{Array2, Axis};
use rayon::prelude::*;

/// An axis-aligned extent in CRS units: (xmin, ymin, xmax, ymax).
pub type Extent = (f64, f64, f64, f64);

/// Distance (m) from (`x`, `y`) to `extent` (0 inside).
pub fn distance_to_extent(x: f64, y: f64, e: Extent) -> f64 {
    let dx = (e.0 - x).max(0.0).max(x - e.2);
    let dy = (e.1 - y).max(0.0).max(y - e.3);
    dx.hypot(dy)
}

/// Indices of the points within `radius` of `extent`; when there are none, the `fallback`
/// nearest points (by distance to the extent) and `true`.
pub fn select(
    points: &[(f64, f64)],
    extent: Extent,
    radius: f64,
    fallback: usize,
) -> (Vec<usize>, bool) {
    let near: Vec<usize> = (0..points.len())
        .filter(|&i| distance_to_extent(points[i].0, points[i].1, extent) <= radius)
        .collect();
    if !near.is_empty() || fallback == 0 {
        return (near, false);
    }
    let mut all: Vec<(f64, usize)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| (distance_to_extent(p.0, p.1, extent), i))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    (
        all.into_iter().take(fallback).map(|(_, i)| i).collect(),
        true,
    )
}

/// Inverse-distance weighting of several variables at once onto the pixel centres of a
/// `rows`×`cols` grid with geotransform `gt`. `points` are the sample locations; `values[v][s]`
/// is variable `v` at sample `s` (NaN = missing: that sample is left out for that variable).
/// Weights are `1/d^power` (d in CRS units); a pixel centre closer than 1 mm to a sample takes
/// its value. A variable with no sample at all is NaN everywhere. Pixels where `mask` is false
/// are NaN.
pub fn idw(
    gt: &GeoTransform,
    rows: usize,
    cols: usize,
    points: &[(f64, f64)],
    values: &[Vec<f64>],
    power: f64,
    mask: Option<&Array2<bool>>,
) -> Vec<Array2<f32>> {
    let nv = values.len();
    let ns = points.len();
    // Sample-major layout of the values for the inner loop.
    let flat: Vec<f64> = (0..ns)
        .flat_map(|s| values.iter().map(move |v| v[s]))
        .collect();
    let mut out: Vec<f32> = vec![f32::NAN; rows * cols * nv];
    out.par_chunks_mut(cols * nv)
        .enumerate()
        .for_each(|(r, orow)| {
            let mut num = vec![0.0f64; nv];
            let mut den = vec![0.0f64; nv];
            for c in 0..cols {
                if let Some(m) = mask
                    && !m[[r, c]]
                {
                    continue;
                }
                let (x, y) = gt.apply(c as f64 + 0.5, r as f64 + 0.5);
                num.iter_mut().for_each(|v| *v = 0.0);
                den.iter_mut().for_each(|v| *v = 0.0);
                let mut exact: Option<usize> = None;
                for (s, p) in points.iter().enumerate() {
                    let d2 = (x - p.0) * (x - p.0) + (y - p.1) * (y - p.1);
                    if d2 < 1e-6 {
                        exact = Some(s);
                        break;
                    }
                    let w = if power == 1.0 {
                        1.0 / d2.sqrt()
                    } else if power == 2.0 {
                        1.0 / d2
                    } else {
                        d2.powf(-0.5 * power)
                    };
                    let vals = &flat[s * nv..(s + 1) * nv];
                    for v in 0..nv {
                        let val = vals[v];
                        if !val.is_nan() {
                            num[v] += w * val;
                            den[v] += w;
                        }
                    }
                }
                let cell = &mut orow[c * nv..(c + 1) * nv];
                match exact {
                    Some(s) => {
                        for v in 0..nv {
                            let val = flat[s * nv + v];
                            // A missing value at the coincident station: fall back to the others.
                            cell[v] = if val.is_nan() {
                                idw_without(x, y, points, &flat, nv, v, power, s)
                            } else {
                                val as f32
                            };
                        }
                    }
                    None => {
                        for v in 0..nv {
                            cell[v] = if den[v] > 0.0 {
                                (num[v] / den[v]) as f32
                            } else {
                                f32::NAN
                            };
                        }
                    }
                }
            }
        });
    let all =
        Array2::from_shape_vec((rows * cols, nv), out).expect("IDW output has rows*cols*nv values");
    all.axis_iter(Axis(1))
        .map(|col| {
            col.to_owned()
                .into_shape_with_order((rows, cols))
                .expect("rows*cols values per variable")
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn idw_without(
    x: f64,
    y: f64,
    points: &[(f64, f64)],
    flat: &[f64],
    nv: usize,
    v: usize,
    power: f64,
    skip: usize,
) -> f32 {
    let (mut num, mut den) = (0.0, 0.0);
    for (s, p) in points.iter().enumerate() {
        let val = flat[s * nv + v];
        if s == skip || val.is_nan() {
            continue;
        }
        let d = ((x - p.0).powi(2) + (y - p.1).powi(2)).sqrt().max(1e-3);
        let w = d.powf(-power);
        num += w * val;
        den += w;
    }
    if den > 0.0 {
        (num / den) as f32
    } else {
        f32::NAN
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn idw_power_one_by_hand() {
        let gt = GeoTransform::north_up(0.0, 100.0, 10.0);
        // Pixel (row 0, col 0) centre is (5, 95).
        let pts = [(5.0, 95.0 - 30.0), (5.0 + 40.0, 95.0)];
        let vals = vec![vec![10.0, 20.0], vec![f64::NAN, 7.0]];
        let out = idw(&gt, 2, 2, &pts, &vals, 1.0, None);
        let expect = (10.0 / 30.0 + 20.0 / 40.0) / (1.0 / 30.0 + 1.0 / 40.0);
        assert!((out[0][[0, 0]] as f64 - expect).abs() < 1e-5);
        assert_eq!(out[1][[0, 0]], 7.0);
        // A pixel centre on a station takes its value.
        let out = idw(
            &gt,
            2,
            2,
            &[(15.0, 85.0), (1000.0, 0.0)],
            &[vec![3.0, 9.0]],
            1.0,
            None,
        );
        assert_eq!(out[0][[1, 1]], 3.0);
    }

    #[test]
    fn selection_and_fallback() {
        let pts = [(0.0, 0.0), (50_000.0, 0.0), (20_000.0, 0.0)];
        let e = (30_000.0, -1000.0, 40_000.0, 1000.0);
        assert_eq!(select(&pts, e, 16_000.0, 3), (vec![1, 2], false));
        assert_eq!(select(&pts, e, 5_000.0, 2), (vec![1, 2], true));
        assert_eq!(select(&pts, e, 5_000.0, 0), (vec![], false));
        assert_eq!(distance_to_extent(35_000.0, 0.0, e), 0.0);
    }
}
