//! Gaussian smoothing with `scipy.ndimage.gaussian_filter` semantics, bit for bit.
//!
//! scipy builds the kernel in float64 (`exp(-0.5 / σ² · x²)` normalised by numpy's pairwise
//! sum), runs one 1-D correlation per axis (axis 0 first, then axis 1) in float64 with the
//! symmetric-kernel summation order of `NI_Correlate1D` (`acc = x₀·w₀`, then
//! `acc += (x₋ₖ + x₊ₖ)·wₖ` for k = r … 1), and stores each pass in the output dtype (so a
//! float32 image is rounded to float32 between the passes). This module does exactly that,
//! with the lines of each pass spread over rayon.

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::error::BiomassError;

/// How values beyond the image edge are filled (scipy's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "cval")]
pub enum BorderMode {
    /// `mode='constant'` with the given `cval` (the NEON tutorial uses 0).
    Constant(f64),
    /// `mode='nearest'`: the edge value repeats.
    Nearest,
    /// `mode='reflect'` (scipy's default): `d c b a | a b c d | d c b a`.
    Reflect,
    /// `mode='mirror'`: `d c b | a b c d | c b a`.
    Mirror,
}

/// Parameters of [`gaussian_filter`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GaussianParams {
    /// Standard deviation in pixels (NEON: 2).
    pub sigma: f64,
    /// The kernel radius is `int(truncate·σ + 0.5)` pixels (NEON: 2, so radius 4).
    pub truncate: f64,
    /// Edge handling (NEON: constant 0).
    pub mode: BorderMode,
}

impl Default for GaussianParams {
    /// The NEON SJER tutorial's parameters: σ = 2 px, truncate 2, constant 0 outside.
    fn default() -> Self {
        GaussianParams {
            sigma: 2.0,
            truncate: 2.0,
            mode: BorderMode::Constant(0.0),
        }
    }
}

impl GaussianParams {
    /// Kernel radius in pixels, `int(truncate·σ + 0.5)` as scipy computes it.
    pub fn radius(&self) -> usize {
        let r = self.truncate * self.sigma + 0.5;
        if r.is_finite() && r > 0.0 {
            r as usize
        } else {
            0
        }
    }

    /// Checks σ and truncate (finite, positive, a kernel of at most 1000 px radius).
    pub fn validate(&self) -> Result<(), BiomassError> {
        if !(self.sigma.is_finite() && self.sigma > 0.0) {
            return Err(BiomassError::Param(format!(
                "gaussian sigma must be a positive number of pixels, got {}",
                self.sigma
            )));
        }
        if !(self.truncate.is_finite() && self.truncate >= 0.0) {
            return Err(BiomassError::Param(format!(
                "gaussian truncate must be >= 0, got {}",
                self.truncate
            )));
        }
        if self.radius() > 10_000 {
            return Err(BiomassError::Param(format!(
                "gaussian radius {} px is too large",
                self.radius()
            )));
        }
        Ok(())
    }
}

/// numpy's pairwise summation of a float64 vector (`np.sum`, `pairwise_sum_DOUBLE`).
pub(crate) fn numpy_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &v in a {
            res += v;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for k in 0..8 {
                r[k] += a[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        numpy_sum(&a[..n2]) + numpy_sum(&a[n2..])
    }
}

/// The 1-D gaussian kernel scipy uses (`_gaussian_kernel1d(σ, 0, radius)`), from −radius to
/// +radius, in float64.
pub fn gaussian_kernel1d(sigma: f64, radius: usize) -> Vec<f64> {
    let c2 = -0.5 / (sigma * sigma);
    let r = radius as i64;
    let phi: Vec<f64> = (-r..=r)
        .map(|x| {
            let x = x as f64;
            // numpy.polynomial evaluates c0 + x·(c1 + x·c2) by Horner's rule.
            (0.0 + (0.0 + c2 * x) * x).exp()
        })
        .collect();
    let s = numpy_sum(&phi);
    phi.into_iter().map(|v| v / s).collect()
}

/// A sample type the filter can run on (the output has the input's type, like scipy).
pub trait Sample: Copy + Send + Sync + 'static {
    /// Widens to float64 exactly.
    fn to_f64(self) -> f64;
    /// Narrows from float64 like a C cast (round to nearest for f32).
    fn from_f64(v: f64) -> Self;
}

impl Sample for f32 {
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Sample for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// Index of the sample that position `i` (possibly outside `0..n`) reads, or `None` for the
/// constant value.
fn extend_index(i: i64, n: i64, mode: BorderMode) -> Option<usize> {
    if (0..n).contains(&i) {
        return Some(i as usize);
    }
    match mode {
        BorderMode::Constant(_) => None,
        BorderMode::Nearest => Some(i.clamp(0, n - 1) as usize),
        BorderMode::Reflect => {
            if n == 1 {
                return Some(0);
            }
            let period = 2 * n;
            let mut j = i.rem_euclid(period);
            if j >= n {
                j = period - 1 - j;
            }
            Some(j as usize)
        }
        BorderMode::Mirror => {
            if n == 1 {
                return Some(0);
            }
            let period = 2 * n - 2;
            let mut j = i.rem_euclid(period);
            if j >= n {
                j = period - j;
            }
            Some(j as usize)
        }
    }
}

/// Correlates one extended line (`ext` has `radius` extra samples at each end) with the
/// symmetric kernel half `w` (`w[k]` is the weight at distance k), in scipy's order.
#[inline]
fn correlate_line(ext: &[f64], w: &[f64], out: &mut [f64]) {
    let r = w.len() - 1;
    for (i, o) in out.iter_mut().enumerate() {
        let c = i + r;
        let mut acc = ext[c] * w[0];
        for k in (1..=r).rev() {
            acc += (ext[c - k] + ext[c + k]) * w[k];
        }
        *o = acc;
    }
}

/// `scipy.ndimage.gaussian_filter(image, sigma, mode, cval, truncate)` on a 2-D array: the
/// output has the input's type and is identical to scipy's for f32 and f64 inputs.
pub fn gaussian_filter<T: Sample>(
    image: ArrayView2<'_, T>,
    params: &GaussianParams,
) -> Result<Array2<T>, BiomassError> {
    params.validate()?;
    let (h, w) = image.dim();
    if h == 0 || w == 0 {
        return Ok(Array2::from_shape_fn((h, w), |(r, c)| image[[r, c]]));
    }
    let radius = params.radius();
    let kernel = gaussian_kernel1d(params.sigma, radius);
    // Half kernel: weight at distance k (the kernel is exactly symmetric).
    let half: Vec<f64> = kernel[radius..].to_vec();
    let cval = match params.mode {
        BorderMode::Constant(c) => c,
        _ => 0.0,
    };
    let mode = params.mode;

    // Pass 1, along axis 0 (down the columns). Output rows are independent.
    let mut pass1 = Array2::<T>::from_elem((h, w), T::from_f64(0.0));
    {
        let rows: Vec<Option<usize>> = (-(radius as i64)..(h + radius) as i64)
            .map(|i| extend_index(i, h as i64, mode))
            .collect();
        pass1
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(i, mut out_row)| {
                let mut acc = vec![0.0f64; w];
                let get = |k: usize, c: usize| -> f64 {
                    match rows[k] {
                        Some(r) => image[[r, c]].to_f64(),
                        None => cval,
                    }
                };
                let center = i + radius;
                for (c, a) in acc.iter_mut().enumerate() {
                    *a = get(center, c) * half[0];
                }
                for k in (1..=radius).rev() {
                    let (up, down) = (center - k, center + k);
                    let wk = half[k];
                    for (c, a) in acc.iter_mut().enumerate() {
                        *a += (get(up, c) + get(down, c)) * wk;
                    }
                }
                for (o, a) in out_row.iter_mut().zip(acc) {
                    *o = T::from_f64(a);
                }
            });
    }

    // Pass 2, along axis 1 (along the rows), reading the stored (rounded) first pass.
    let mut out = Array2::<T>::from_elem((h, w), T::from_f64(0.0));
    let cols: Vec<Option<usize>> = (-(radius as i64)..(w + radius) as i64)
        .map(|i| extend_index(i, w as i64, mode))
        .collect();
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(pass1.axis_iter(Axis(0)).into_par_iter())
        .for_each_init(
            || (vec![0.0f64; w + 2 * radius], vec![0.0f64; w]),
            |(ext, line), (mut out_row, in_row)| {
                for (e, src) in ext.iter_mut().zip(&cols) {
                    *e = match src {
                        Some(c) => in_row[*c].to_f64(),
                        None => cval,
                    };
                }
                correlate_line(ext, &half, line);
                for (o, v) in out_row.iter_mut().zip(line.iter()) {
                    *o = T::from_f64(*v);
                }
            },
        );
    Ok(out)
}

/// The NEON smoothing step: `gaussian_filter(chm, σ, mode, truncate)` followed by
/// `smoothed[chm == 0] = 0`. Heights in metres; the grid is unchanged.
pub fn smooth_chm(
    chm: ArrayView2<'_, f32>,
    params: &GaussianParams,
) -> Result<Array2<f32>, BiomassError> {
    let mut sm = gaussian_filter(chm, params)?;
    ndarray::Zip::from(&mut sm).and(chm).par_for_each(|s, &c| {
        if c == 0.0 {
            *s = 0.0;
        }
    });
    Ok(sm)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ndarray::array;

    #[test]
    fn kernel_matches_scipy_values() {
        // scipy.ndimage._filters._gaussian_kernel1d(2, 0, 4), printed with repr(). numpy's
        // AVX512F `exp` is 1 ulp below the correctly rounded exp(-0.125) that Rust's gives, so
        // weights may differ by an ulp or two; the float32 SJER output is still bit-identical
        // (tests/integration/sjer.rs).
        let k = gaussian_kernel1d(2.0, 4);
        let want: [f64; 5] = [
            0.027630550638898833,
            0.06628224528636122,
            0.12383153680577533,
            0.1801738229113809,
            0.20416368871516757,
        ];
        for (i, w) in want.iter().enumerate() {
            let ulps = (k[i].to_bits() as i64 - w.to_bits() as i64).abs();
            assert!(ulps <= 2, "weight {i}: {} vs {w}", k[i]);
            assert_eq!(k[i], k[8 - i], "symmetry {i}");
        }
    }

    #[test]
    fn numpy_sum_orders() {
        let v: Vec<f64> = (0..300).map(|i| 1.0 / (i as f64 + 1.0)).collect();
        let s = numpy_sum(&v);
        let naive: f64 = v.iter().sum();
        assert!((s - naive).abs() < 1e-12);
    }

    #[test]
    fn impulse_spreads_like_kernel() {
        let mut img = Array2::<f64>::zeros((11, 11));
        img[[5, 5]] = 1.0;
        let out = gaussian_filter(img.view(), &GaussianParams::default()).unwrap();
        let k = gaussian_kernel1d(2.0, 4);
        for r in 0..11 {
            for c in 0..11 {
                let want = if (1..=9).contains(&r) && (1..=9).contains(&c) {
                    k[r - 1] * k[c - 1]
                } else {
                    0.0
                };
                assert!((out[[r, c]] - want).abs() < 1e-15, "{r},{c}");
            }
        }
        let total: f64 = out.iter().sum();
        assert!((total - 1.0).abs() < 1e-12);
    }

    #[test]
    fn modes_extend_like_scipy() {
        // n = 4: a b c d
        let n = 4;
        let idx = |i, m| extend_index(i, n, m);
        assert_eq!(idx(-1, BorderMode::Reflect), Some(0));
        assert_eq!(idx(-2, BorderMode::Reflect), Some(1));
        assert_eq!(idx(4, BorderMode::Reflect), Some(3));
        assert_eq!(idx(-1, BorderMode::Mirror), Some(1));
        assert_eq!(idx(4, BorderMode::Mirror), Some(2));
        assert_eq!(idx(-3, BorderMode::Nearest), Some(0));
        assert_eq!(idx(-1, BorderMode::Constant(0.0)), None);
    }

    #[test]
    fn smooth_chm_zeroes_ground() {
        let chm = array![[0.0f32, 5.0, 5.0], [5.0, 5.0, 0.0], [5.0, 5.0, 5.0]];
        let sm = smooth_chm(chm.view(), &GaussianParams::default()).unwrap();
        assert_eq!(sm[[0, 0]], 0.0);
        assert_eq!(sm[[1, 2]], 0.0);
        assert!(sm[[1, 1]] > 0.0);
    }

    #[test]
    fn rejects_bad_sigma() {
        let img = Array2::<f32>::zeros((3, 3));
        let p = GaussianParams {
            sigma: 0.0,
            ..Default::default()
        };
        assert!(gaussian_filter(img.view(), &p).is_err());
    }
}
