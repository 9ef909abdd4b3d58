//! Local maxima with scikit-image 0.25 `peak_local_max` semantics, and marker labelling.
//!
//! `peak_local_max(image, min_distance, threshold_abs, threshold_rel, exclude_border,
//! num_peaks, footprint)` (without `labels`) is, in skimage 0.25:
//! 1. threshold = `threshold_abs` if given else `image.min()`; with `threshold_rel`,
//!    `max(threshold, threshold_rel · image.max())` (in the image's type, numpy 2 rules);
//! 2. candidates: `image == maximum_filter(image, footprint, mode='nearest')`; if that holds
//!    for *every* pixel the image is "trivial" and there are no peaks; then `image > threshold`;
//! 3. candidates within `border` pixels of the image edge are dropped (`exclude_border=True`
//!    means `border = min_distance`, so 1 px for the NEON call with a 5×5 footprint);
//! 4. candidates sorted by decreasing value (stable, so ties stay in raster order); if
//!    `min_distance > 1`, a greedy pass keeps a candidate only if no kept one lies closer than
//!    `min_distance` (p-norm distance); the first `num_peaks` are returned.
//!
//! Plateaus therefore give every plateau pixel as a peak when `min_distance == 1`; the NEON
//! method then labels the peak mask with 4-connectivity (`ndi.label`) so that a plateau is one
//! marker. [`label_mask`] does that labelling with imageproc's connected components, whose
//! numbering (order of each component's first pixel in raster order) is `ndi.label`'s.

use imageproc::region_labelling::{Connectivity as IpConnectivity, connected_components};
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::error::BiomassError;

/// Pixel connectivity: 4 (edges) or 8 (edges and corners).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Connectivity {
    /// 4-connectivity (`connectivity=1` in scipy/skimage; `ndi.label`'s default).
    #[default]
    Four,
    /// 8-connectivity (`connectivity=2`).
    Eight,
}

/// Which border band is excluded from peaks (`exclude_border`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExcludeBorder {
    /// `exclude_border=True`: a band of `min_distance` pixels.
    MinDistance,
    /// `exclude_border=n`: a band of n pixels (0 keeps every pixel).
    Pixels(usize),
}

/// Distance used by the `min_distance` spacing pass (`p_norm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PNorm {
    /// p = ∞, skimage's default (Chebyshev).
    #[default]
    Chebyshev,
    /// p = 2.
    Euclidean,
    /// p = 1.
    Manhattan,
}

/// Parameters of [`peak_local_max`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PeakParams {
    /// Minimal distance between peaks, pixels (skimage default 1).
    pub min_distance: usize,
    /// Footprint size (rows, cols) of the maximum filter; `None` means a square of
    /// `2·min_distance + 1` (skimage's default). NEON: 5×5.
    pub footprint: Option<(usize, usize)>,
    /// Minimum peak value; `None` means the image minimum (skimage's default).
    pub threshold_abs: Option<f32>,
    /// Minimum peak value as a fraction of the image maximum.
    pub threshold_rel: Option<f32>,
    /// Border band without peaks.
    pub exclude_border: ExcludeBorder,
    /// At most this many peaks (the highest).
    pub num_peaks: Option<usize>,
    /// Distance for the `min_distance` pass.
    pub p_norm: PNorm,
}

impl Default for PeakParams {
    /// The NEON SJER call: `peak_local_max(chm_smooth, footprint=np.ones((5, 5)))`.
    fn default() -> Self {
        PeakParams {
            min_distance: 1,
            footprint: Some((5, 5)),
            threshold_abs: None,
            threshold_rel: None,
            exclude_border: ExcludeBorder::MinDistance,
            num_peaks: None,
            p_norm: PNorm::Chebyshev,
        }
    }
}

impl PeakParams {
    /// The maximum filter's footprint (rows, cols).
    pub fn footprint_size(&self) -> (usize, usize) {
        self.footprint.unwrap_or_else(|| {
            let s = 2 * self.min_distance + 1;
            (s, s)
        })
    }

    /// Width of the excluded border band, pixels.
    pub fn border_width(&self) -> usize {
        match self.exclude_border {
            ExcludeBorder::MinDistance => self.min_distance,
            ExcludeBorder::Pixels(n) => n,
        }
    }

    /// How far (pixels) the peak decision at a pixel looks: footprint reach in rows and columns.
    pub fn reach(&self) -> usize {
        let (fh, fw) = self.footprint_size();
        fh.max(fw) / 2
    }

    pub(crate) fn validate(&self) -> Result<(), BiomassError> {
        let (fh, fw) = self.footprint_size();
        if fh == 0 || fw == 0 || fh > 1001 || fw > 1001 {
            return Err(BiomassError::Param(format!(
                "peak footprint must be 1..=1001 pixels a side, got {fh}x{fw}"
            )));
        }
        if self.min_distance > 100_000 {
            return Err(BiomassError::Param(format!(
                "min_distance {} is too large",
                self.min_distance
            )));
        }
        for (name, v) in [
            ("threshold_abs", self.threshold_abs),
            ("threshold_rel", self.threshold_rel),
        ] {
            if let Some(v) = v
                && v.is_nan()
            {
                return Err(BiomassError::Param(format!("{name} is NaN")));
            }
        }
        Ok(())
    }
}

/// A peak candidate: position and value.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Candidate {
    /// Row (pixels from the top of the whole image).
    pub row: usize,
    /// Column (pixels from the left of the whole image).
    pub col: usize,
    /// Image value at the peak.
    pub value: f32,
}

/// `scipy.ndimage.maximum_filter(image, size=(fh, fw), mode='nearest')`: the maximum over the
/// window rows `r - fh/2 ..= r + (fh-1-fh/2)`, columns likewise, with edges repeated.
pub fn maximum_filter(image: ArrayView2<'_, f32>, size: (usize, usize)) -> Array2<f32> {
    let (h, w) = image.dim();
    let (fh, fw) = size;
    let mut rowmax = Array2::<f32>::zeros((h, w));
    if h == 0 || w == 0 {
        return rowmax;
    }
    let (l, r) = (fw / 2, fw - 1 - fw / 2);
    rowmax
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(image.axis_iter(Axis(0)).into_par_iter())
        .for_each(|(mut out, inp)| {
            for c in 0..w {
                let a = c.saturating_sub(l);
                let b = (c + r).min(w - 1);
                let mut m = inp[a];
                for k in a + 1..=b {
                    let v = inp[k];
                    if v > m {
                        m = v;
                    }
                }
                out[c] = m;
            }
        });
    let (u, d) = (fh / 2, fh - 1 - fh / 2);
    let mut out = Array2::<f32>::zeros((h, w));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(row, mut o)| {
            let a = row.saturating_sub(u);
            let b = (row + d).min(h - 1);
            o.assign(&rowmax.row(a));
            for k in a + 1..=b {
                for (x, &v) in o.iter_mut().zip(rowmax.row(k)) {
                    if v > *x {
                        *x = v;
                    }
                }
            }
        });
    out
}

/// The threshold skimage derives from `threshold_abs`/`threshold_rel` (f32 arithmetic).
pub fn peak_threshold(image: ArrayView2<'_, f32>, params: &PeakParams) -> f32 {
    let mut t = match params.threshold_abs {
        Some(t) => t,
        None => image.iter().copied().fold(f32::INFINITY, f32::min),
    };
    if let Some(rel) = params.threshold_rel {
        let max = image.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        t = t.max(rel * max);
    }
    t
}

/// Peak candidates of a window of a larger image, for the pixels of `core` (rows and columns
/// within the window), as `(candidates, core_trivial)`:
/// candidates are `value == local max && value > threshold`, outside the whole image's
/// border band, in raster order, with whole-image coordinates (`origin` = the window's
/// offset in the whole image, `full` = the whole image's (rows, cols)). `core_trivial` says
/// every core pixel equals its local maximum (skimage's "trivial image" test, decided over
/// all chunks by the caller). The window must extend [`PeakParams::reach`] pixels past the
/// core wherever the core is not at the image edge.
pub fn window_candidates(
    window: ArrayView2<'_, f32>,
    core: (std::ops::Range<usize>, std::ops::Range<usize>),
    origin: (usize, usize),
    full: (usize, usize),
    threshold: f32,
    params: &PeakParams,
) -> (Vec<Candidate>, bool) {
    let (fh, fw) = params.footprint_size();
    let (h, w) = window.dim();
    if h == 0 || w == 0 {
        return (Vec::new(), true);
    }
    let single = (fh == 1 && fw == 1) || full.0 * full.1 == 1;
    let maxf = if single {
        None
    } else {
        Some(maximum_filter(window, (fh, fw)))
    };
    let border = params.border_width();
    let (rows, cols) = core;
    let per_row: Vec<(Vec<Candidate>, bool)> = rows
        .clone()
        .into_par_iter()
        .map(|r| {
            let mut out = Vec::new();
            let mut trivial = true;
            let gr = origin.0 + r;
            for c in cols.clone() {
                let v = window[[r, c]];
                let is_max = match &maxf {
                    Some(m) => v == m[[r, c]],
                    None => true,
                };
                if !is_max {
                    trivial = false;
                    continue;
                }
                if maxf.is_none() {
                    trivial = false;
                }
                let gc = origin.1 + c;
                let in_border = border > 0
                    && (gr < border
                        || gc < border
                        || gr + border >= full.0
                        || gc + border >= full.1);
                if v > threshold && !in_border {
                    out.push(Candidate {
                        row: gr,
                        col: gc,
                        value: v,
                    });
                }
            }
            (out, trivial)
        })
        .collect();
    let trivial = per_row.iter().all(|(_, t)| *t);
    let cands = per_row.into_iter().flat_map(|(v, _)| v).collect();
    (cands, trivial)
}

/// skimage's `_get_high_intensity_peaks` on candidates given in raster order: sort by
/// decreasing value (stable), apply the `min_distance` greedy spacing, keep `num_peaks`.
pub fn select_peaks(mut cands: Vec<Candidate>, params: &PeakParams) -> Vec<Candidate> {
    cands.sort_by(|a, b| b.value.total_cmp(&a.value));
    let max_out = params.num_peaks.unwrap_or(usize::MAX);
    let d = params.min_distance;
    if d > 1 {
        // Greedy: keep a candidate if no kept one lies at distance < d.
        let cell = d as i64;
        let mut grid: std::collections::HashMap<(i64, i64), Vec<(i64, i64)>> =
            std::collections::HashMap::new();
        let mut kept = Vec::new();
        for c in cands {
            if kept.len() >= max_out {
                break;
            }
            let (r, q) = (c.row as i64, c.col as i64);
            let (gr, gc) = (r / cell, q / cell);
            let mut ok = true;
            'outer: for dr in -1..=1 {
                for dc in -1..=1 {
                    if let Some(pts) = grid.get(&(gr + dr, gc + dc)) {
                        for &(pr, pc) in pts {
                            let (a, b) = ((pr - r).abs() as f64, (pc - q).abs() as f64);
                            let dist = match params.p_norm {
                                PNorm::Chebyshev => a.max(b),
                                PNorm::Euclidean => (a * a + b * b).sqrt(),
                                PNorm::Manhattan => a + b,
                            };
                            if dist < d as f64 {
                                ok = false;
                                break 'outer;
                            }
                        }
                    }
                }
            }
            if ok {
                grid.entry((gr, gc)).or_default().push((r, q));
                kept.push(c);
            }
        }
        kept
    } else {
        cands.truncate(max_out);
        cands
    }
}

/// `skimage.feature.peak_local_max(image, ...)` (without `labels`): peak coordinates
/// `(row, col)` with their values, highest first (ties in raster order), exactly as skimage
/// 0.25 returns them. NaN pixels are not allowed.
pub fn peak_local_max(
    image: ArrayView2<'_, f32>,
    params: &PeakParams,
) -> Result<Vec<Candidate>, BiomassError> {
    params.validate()?;
    if image.iter().any(|v| v.is_nan()) {
        return Err(BiomassError::Param(
            "peak_local_max: the image has NaN pixels".into(),
        ));
    }
    let (h, w) = image.dim();
    if h == 0 || w == 0 {
        return Ok(Vec::new());
    }
    let threshold = peak_threshold(image, params);
    let (cands, trivial) =
        window_candidates(image, (0..h, 0..w), (0, 0), (h, w), threshold, params);
    if trivial {
        return Ok(Vec::new());
    }
    Ok(select_peaks(cands, params))
}

/// A boolean image with `true` at the given peaks.
pub fn peaks_to_mask(shape: (usize, usize), peaks: &[Candidate]) -> Array2<bool> {
    let mut m = Array2::from_elem(shape, false);
    for p in peaks {
        if p.row < shape.0 && p.col < shape.1 {
            m[[p.row, p.col]] = true;
        }
    }
    m
}

/// `scipy.ndimage.label(mask, structure)`: connected components of `true` pixels numbered
/// 1.. in the raster order of each component's first pixel; returns the labels and their
/// count. Uses imageproc's connected components (same numbering).
pub fn label_mask(
    mask: ArrayView2<'_, bool>,
    connectivity: Connectivity,
) -> Result<(Array2<u32>, u32), BiomassError> {
    let (h, w) = mask.dim();
    if h == 0 || w == 0 {
        return Ok((Array2::zeros((h, w)), 0));
    }
    let (hu, wu) = (
        u32::try_from(h).map_err(|_| BiomassError::Shape(format!("{h} rows is too many")))?,
        u32::try_from(w).map_err(|_| BiomassError::Shape(format!("{w} columns is too many")))?,
    );
    let img = image::GrayImage::from_fn(wu, hu, |x, y| {
        image::Luma([if mask[[y as usize, x as usize]] {
            255u8
        } else {
            0
        }])
    });
    let conn = match connectivity {
        Connectivity::Four => IpConnectivity::Four,
        Connectivity::Eight => IpConnectivity::Eight,
    };
    let lab = connected_components(&img, conn, image::Luma([0u8]));
    let raw = lab.into_raw();
    let n = raw.iter().copied().max().unwrap_or(0);
    let arr = Array2::from_shape_vec((h, w), raw)
        .map_err(|e| BiomassError::Shape(format!("labels: {e}")))?;
    Ok((arr, n))
}

/// Labels a sparse set of pixels like [`label_mask`] would label their mask: returns, for each
/// input pixel (in input order), its component number, components numbered 1.. in the raster
/// order of their first pixel. Used to label chunked peaks without a whole-image mask.
pub fn label_points(points: &[(usize, usize)], connectivity: Connectivity) -> (Vec<u32>, u32) {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| points[i]);
    let index: std::collections::HashMap<(usize, usize), usize> =
        points.iter().enumerate().map(|(i, &p)| (p, i)).collect();
    let mut parent: Vec<usize> = (0..points.len()).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let neigh: &[(i64, i64)] = match connectivity {
        Connectivity::Four => &[(-1, 0), (0, -1)],
        Connectivity::Eight => &[(-1, -1), (-1, 0), (-1, 1), (0, -1)],
    };
    for &i in &order {
        let (r, c) = points[i];
        for &(dr, dc) in neigh {
            let (nr, nc) = (r as i64 + dr, c as i64 + dc);
            if nr < 0 || nc < 0 {
                continue;
            }
            if let Some(&j) = index.get(&(nr as usize, nc as usize)) {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                if a != b {
                    // Keep the root that comes first in raster order.
                    if points[a] < points[b] {
                        parent[b] = a;
                    } else {
                        parent[a] = b;
                    }
                }
            }
        }
    }
    let mut number = std::collections::HashMap::new();
    let mut out = vec![0u32; points.len()];
    let mut next = 0u32;
    for &i in &order {
        let root = find(&mut parent, i);
        let n = *number.entry(root).or_insert_with(|| {
            next += 1;
            next
        });
        out[i] = n;
    }
    (out, next)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ndarray::array;

    #[test]
    fn skimage_docstring_example() {
        let mut img = Array2::<f32>::zeros((7, 7));
        img[[3, 4]] = 1.0;
        img[[3, 2]] = 1.5;
        let p = PeakParams {
            footprint: None,
            ..Default::default()
        };
        let peaks = peak_local_max(img.view(), &p).unwrap();
        let rc: Vec<_> = peaks.iter().map(|c| (c.row, c.col)).collect();
        assert_eq!(rc, vec![(3, 2), (3, 4)]);
        let p2 = PeakParams {
            min_distance: 2,
            footprint: None,
            ..Default::default()
        };
        let peaks = peak_local_max(img.view(), &p2).unwrap();
        let rc: Vec<_> = peaks.iter().map(|c| (c.row, c.col)).collect();
        assert_eq!(rc, vec![(3, 2)]);
    }

    #[test]
    fn plateau_and_trivial() {
        let img = Array2::<f32>::from_elem((6, 6), 3.0);
        assert!(
            peak_local_max(img.view(), &PeakParams::default())
                .unwrap()
                .is_empty()
        );
        let mut img = Array2::<f32>::zeros((8, 8));
        img[[3, 3]] = 2.0;
        img[[3, 4]] = 2.0;
        let peaks = peak_local_max(img.view(), &PeakParams::default()).unwrap();
        assert_eq!(peaks.len(), 2);
        let (lab, n) =
            label_mask(peaks_to_mask((8, 8), &peaks).view(), Connectivity::Four).unwrap();
        assert_eq!(n, 1);
        assert_eq!(lab[[3, 4]], 1);
    }

    #[test]
    fn border_excluded() {
        let mut img = Array2::<f32>::zeros((6, 6));
        img[[0, 3]] = 5.0;
        img[[3, 3]] = 4.0;
        let peaks = peak_local_max(img.view(), &PeakParams::default()).unwrap();
        assert_eq!(peaks.len(), 1);
        assert_eq!((peaks[0].row, peaks[0].col), (3, 3));
        let p = PeakParams {
            exclude_border: ExcludeBorder::Pixels(0),
            ..Default::default()
        };
        assert_eq!(peak_local_max(img.view(), &p).unwrap().len(), 2);
    }

    #[test]
    fn threshold_rel() {
        let mut img = Array2::<f32>::zeros((9, 9));
        img[[2, 2]] = 10.0;
        img[[6, 6]] = 4.0;
        let p = PeakParams {
            threshold_rel: Some(0.5),
            ..Default::default()
        };
        assert_eq!(peak_local_max(img.view(), &p).unwrap().len(), 1);
    }

    #[test]
    fn maximum_filter_nearest() {
        let a = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]];
        let m = maximum_filter(a.view(), (3, 3));
        assert_eq!(m, array![[5.0, 6.0, 6.0], [8.0, 9.0, 9.0], [8.0, 9.0, 9.0]]);
        // An even size reaches size/2 back and size/2 - 1 forward (scipy's origin 0).
        let m = maximum_filter(a.view(), (1, 2));
        assert_eq!(m, a);
        let m = maximum_filter(a.view(), (1, 4));
        assert_eq!(m, array![[2.0, 3.0, 3.0], [5.0, 6.0, 6.0], [8.0, 9.0, 9.0]]);
    }

    #[test]
    fn sparse_labels_match_mask_labels() {
        let pts = vec![(0, 1), (1, 1), (0, 3), (2, 0), (1, 2), (3, 3), (2, 3)];
        let mut mask = Array2::from_elem((4, 4), false);
        for &(r, c) in &pts {
            mask[[r, c]] = true;
        }
        for conn in [Connectivity::Four, Connectivity::Eight] {
            let (lab, n) = label_mask(mask.view(), conn).unwrap();
            let (l2, n2) = label_points(&pts, conn);
            assert_eq!(n, n2);
            for (i, &(r, c)) in pts.iter().enumerate() {
                assert_eq!(lab[[r, c]], l2[i], "{conn:?} {r},{c}");
            }
        }
    }
}
