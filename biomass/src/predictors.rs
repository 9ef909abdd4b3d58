//! The 11 NEON crown predictors, as the tutorial derives them from `regionprops(labels,
//! intensity_image=chm)`, in the training CSV's column order.
//!
//! For crown `k` with pixel heights `h` (the raw CHM, metres, raster order):
//! area (pixels), major axis length (`4·√λ₁` of the region's inertia tensor, as skimage),
//! max h, min h, p50, p60, p70 (`np.percentile`, linear interpolation), full crown
//! `Σ(h − min h)`, and crown50/60/70 `Σ(min(h, pₓ) − min h)` (m³ per m² pixel).

use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::BiomassError;

/// Number of predictors (columns 1..=11 of the training CSV).
pub const N_PREDICTORS: usize = 11;

/// Names of the predictors in training-CSV order.
pub const PREDICTOR_NAMES: [&str; N_PREDICTORS] = [
    "area",
    "major_axis_length",
    "max_height",
    "min_height",
    "p50",
    "p60",
    "p70",
    "full_crown",
    "crown50",
    "crown60",
    "crown70",
];

/// One crown's predictors and where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crown {
    /// Crown label (the tree top's marker number).
    pub label: u32,
    /// The 11 predictors in training-CSV order.
    pub predictors: [f64; N_PREDICTORS],
    /// Crown centroid, row (pixels, whole image).
    pub centroid_row: f64,
    /// Crown centroid, column (pixels, whole image).
    pub centroid_col: f64,
}

/// `np.percentile(a, q)` with the default linear method, for sorted `a` (float64 maths).
pub fn percentile_sorted(a: &[f64], q: f64) -> f64 {
    let n = a.len();
    if n == 0 {
        return f64::NAN;
    }
    let vi = q / 100.0 * (n as f64 - 1.0);
    let prev = vi.floor();
    let gamma = vi - prev;
    let lo = (prev.max(0.0) as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    let (x, y) = (a[lo], a[hi]);
    let diff = y - x;
    if gamma >= 0.5 {
        y - diff * (1.0 - gamma)
    } else {
        x + diff * gamma
    }
}

/// Predictors of one crown from its pixels (`rows`, `cols` whole-image pixel indices and
/// `heights` in metres, all in raster order).
pub fn crown_predictors(rows: &[u32], cols: &[u32], heights: &[f32]) -> [f64; N_PREDICTORS] {
    let n = heights.len();
    let nf = n as f64;
    // Central moments of the pixel coordinates.
    let (mut sr, mut sc) = (0.0f64, 0.0f64);
    for (&r, &c) in rows.iter().zip(cols) {
        sr += r as f64;
        sc += c as f64;
    }
    let (mr, mc) = (sr / nf, sc / nf);
    let (mut m20, mut m02, mut m11) = (0.0f64, 0.0f64, 0.0f64);
    for (&r, &c) in rows.iter().zip(cols) {
        let (dr, dc) = (r as f64 - mr, c as f64 - mc);
        m20 += dr * dr;
        m02 += dc * dc;
        m11 += dr * dc;
    }
    let (a, b, c) = (m20 / nf, m11 / nf, m02 / nf);
    let l1 = ((a + c) / 2.0 + (((a - c) / 2.0).powi(2) + b * b).sqrt()).max(0.0);
    let major = 4.0 * l1.sqrt();

    let mut h: Vec<f64> = heights.iter().map(|&v| v as f64).collect();
    let mx = h.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mn = h.iter().copied().fold(f64::INFINITY, f64::min);
    let full: f64 = h.iter().map(|v| v - mn).sum();
    h.sort_by(f64::total_cmp);
    let p50 = percentile_sorted(&h, 50.0);
    let p60 = percentile_sorted(&h, 60.0);
    let p70 = percentile_sorted(&h, 70.0);
    let vol = |p: f64| -> f64 { h.iter().map(|&v| if v < p { v } else { p } - mn).sum() };
    [
        nf,
        major,
        mx,
        mn,
        p50,
        p60,
        p70,
        full,
        vol(p50),
        vol(p60),
        vol(p70),
    ]
}

/// Predictors of every crown in `labels` (0 = background) over the raw CHM `chm` (metres),
/// in increasing label order; labels with no pixels are skipped (as `regionprops` does).
/// `origin` is the (row, col) of `labels[[0, 0]]` in the whole image (for centroids).
pub fn crowns(
    labels: ArrayView2<'_, u32>,
    chm: ArrayView2<'_, f32>,
    origin: (usize, usize),
) -> Result<Vec<Crown>, BiomassError> {
    if labels.dim() != chm.dim() {
        return Err(BiomassError::Shape(format!(
            "labels {:?} vs CHM {:?}",
            labels.dim(),
            chm.dim()
        )));
    }
    let max = labels.iter().copied().max().unwrap_or(0) as usize;
    if max == 0 {
        return Ok(Vec::new());
    }
    // Counting sort of labelled pixels by label (raster order kept within a label).
    let mut count = vec![0usize; max + 2];
    for &l in labels.iter() {
        if l != 0 {
            count[l as usize + 1] += 1;
        }
    }
    for i in 1..count.len() {
        count[i] += count[i - 1];
    }
    let total = count[max + 1];
    let mut next = count.clone();
    let mut rows = vec![0u32; total];
    let mut cols = vec![0u32; total];
    let mut hs = vec![0f32; total];
    for ((r, c), &l) in labels.indexed_iter() {
        if l != 0 {
            let k = &mut next[l as usize];
            rows[*k] = (origin.0 + r) as u32;
            cols[*k] = (origin.1 + c) as u32;
            hs[*k] = chm[[r, c]];
            *k += 1;
        }
    }
    let out: Vec<Crown> = (1..=max)
        .into_par_iter()
        .filter_map(|l| {
            let (a, b) = (count[l], count[l + 1]);
            if a == b {
                return None;
            }
            let (rr, cc) = (&rows[a..b], &cols[a..b]);
            let n = (b - a) as f64;
            let cr = rr.iter().map(|&v| v as f64).sum::<f64>() / n;
            let ccm = cc.iter().map(|&v| v as f64).sum::<f64>() / n;
            Some(Crown {
                label: l as u32,
                predictors: crown_predictors(rr, cc, &hs[a..b]),
                centroid_row: cr,
                centroid_col: ccm,
            })
        })
        .collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ndarray::array;

    #[test]
    fn percentile_like_numpy() {
        // np.percentile([1, 2, 3, 4], [50, 60, 70]) = 2.5, 2.8, 3.1
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((percentile_sorted(&a, 50.0) - 2.5).abs() < 1e-12);
        assert!((percentile_sorted(&a, 60.0) - 2.8).abs() < 1e-12);
        assert!((percentile_sorted(&a, 70.0) - 3.1).abs() < 1e-12);
        assert_eq!(percentile_sorted(&[7.0], 70.0), 7.0);
    }

    #[test]
    fn rectangle_crown() {
        // A 2×4 rectangle: regionprops major_axis_length = 4·sqrt(var of cols) = 4·sqrt(1.25).
        let labels = array![[0u32, 0, 0, 0, 0], [0, 1, 1, 1, 1], [0, 1, 1, 1, 1]];
        let chm = array![
            [0.0f32, 0.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 2.0, 3.0, 4.0],
            [0.0, 5.0, 6.0, 7.0, 8.0]
        ];
        let c = crowns(labels.view(), chm.view(), (10, 20)).unwrap();
        assert_eq!(c.len(), 1);
        let p = c[0].predictors;
        assert_eq!(p[0], 8.0);
        assert!((p[1] - 4.0 * 1.25f64.sqrt()).abs() < 1e-12);
        assert_eq!((p[2], p[3]), (8.0, 1.0));
        assert!((p[4] - 4.5).abs() < 1e-12);
        assert!((p[7] - 28.0).abs() < 1e-12);
        // crown50: min(h, 4.5) - 1 summed = 0+1+2+3+3.5*4 = 20
        assert!((p[8] - 20.0).abs() < 1e-12);
        assert!((c[0].centroid_row - 11.5).abs() < 1e-12);
        assert!((c[0].centroid_col - 22.5).abs() < 1e-12);
    }
}
