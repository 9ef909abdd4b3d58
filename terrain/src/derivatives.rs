//! Slope and aspect, numerically identical to GDAL 3.6 `gdaldem slope|aspect`.
//!
//! The 3×3 processing mirrors `GDALGeneric3x3Processing`: windows hold float32 values and
//! the Horn sums are evaluated in float32 in gdaldem's order before the float64 division
//! and `atan`; outputs are float32. Without `compute_edges` the first and last rows and
//! columns are nodata; with it the missing neighbours are extrapolated (`2·a − b`). A pixel
//! whose value is the source nodata gives nodata; a nodata neighbour gives nodata, or with
//! `compute_edges` is replaced by the centre value. Slope is in degrees (or percent) with
//! `scale` = horizontal units per vertical unit (`-s`, e.g. 111120 for degrees vs metres);
//! aspect is in degrees clockwise from north (azimuth) or counter-clockwise from east
//! (`trigonometric`), and flat pixels are nodata (−9999) or, with `zero_for_flat`, 0 — and
//! then, exactly as gdaldem does, the output has no nodata value at all (nodata input pixels
//! become 0 too). As in gdaldem, aspect does not depend on the pixel size.

use cog::Raster;
use ndarray::Array2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TerrainError};

/// The nodata value of slope and aspect outputs (gdaldem's).
pub const DERIVATIVE_NODATA: f32 = -9999.0;

const RAD_TO_DEG: f64 = 180.0 / std::f64::consts::PI;
const DEG_TO_RAD: f64 = std::f64::consts::PI / 180.0;

/// Which finite differences estimate the gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GradientAlg {
    /// Horn (1981), 8 neighbours (gdaldem's default).
    #[default]
    Horn,
    /// Zevenbergen & Thorne (1987), 4 neighbours.
    ZevenbergenThorne,
}

/// Options of [`slope`] (gdaldem `slope`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlopeOptions {
    pub alg: GradientAlg,
    /// Percent instead of degrees (`-p`).
    pub percent: bool,
    /// Ratio of horizontal to vertical units (`-s`).
    pub scale: f64,
    /// Compute the edge pixels too (`-compute_edges`).
    pub compute_edges: bool,
}

impl Default for SlopeOptions {
    fn default() -> Self {
        SlopeOptions {
            alg: GradientAlg::Horn,
            percent: false,
            scale: 1.0,
            compute_edges: true,
        }
    }
}

/// Options of [`aspect`] (gdaldem `aspect`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AspectOptions {
    pub alg: GradientAlg,
    /// Flat pixels get 0 instead of nodata, and the output has no nodata (`-zero_for_flat`).
    pub zero_for_flat: bool,
    /// Degrees counter-clockwise from east instead of azimuth (`-trigonometric`).
    pub trigonometric: bool,
    /// Compute the edge pixels too (`-compute_edges`).
    pub compute_edges: bool,
}

/// GDAL's `ARE_REAL_EQUAL` for floats (2 ulps relative).
#[inline]
fn are_real_equal(a: f32, b: f32) -> bool {
    a == b || (a - b).abs() < f32::EPSILON * (a + b).abs() * 2.0
}

/// The source nodata as gdaldem tests it.
#[derive(Clone, Copy)]
struct SrcNodata {
    value: f32,
    is_nan: bool,
}

impl SrcNodata {
    #[inline]
    fn matches(&self, v: f32) -> bool {
        if self.is_nan {
            v.is_nan()
        } else {
            are_real_equal(v, self.value)
        }
    }
}

#[inline]
fn interpol(a: f32, b: f32, nd: Option<SrcNodata>) -> f32 {
    if let Some(nd) = nd
        && !nd.is_nan
        && (are_real_equal(a, nd.value) || are_real_equal(b, nd.value))
    {
        return nd.value;
    }
    let v = 2.0f32 * a - b;
    if let Some(nd) = nd
        && !nd.is_nan
        && are_real_equal(v, nd.value)
    {
        return nd.value * (1.0 + 3.0 * f32::EPSILON);
    }
    v
}

/// gdaldem's `ComputeVal`.
#[inline]
fn compute_val<A: Fn(&[f32; 9]) -> f32>(
    check: Option<SrcNodata>,
    mut w: [f32; 9],
    dst_nodata: f32,
    compute_edges: bool,
    alg: &A,
) -> f32 {
    if let Some(nd) = check {
        if nd.matches(w[4]) {
            return dst_nodata;
        }
        for k in 0..9 {
            if nd.matches(w[k]) {
                if compute_edges {
                    w[k] = w[4];
                } else {
                    return dst_nodata;
                }
            }
        }
    }
    alg(&w)
}

/// A 3×3 algorithm: one pixel from its window, and (the same values, faster) the inner
/// pixels `1..w−1` of a row whose three lines hold no nodata.
trait Kernel: Sync {
    fn pixel(&self, w: &[f32; 9]) -> f32;
    fn row(&self, l1: &[f32], l2: &[f32], l3: &[f32], out: &mut [f32]);

    /// [`Kernel::row`] one pixel at a time (the interior pixels `1..n-1`).
    fn row_by_pixels(&self, l1: &[f32], l2: &[f32], l3: &[f32], out: &mut [f32]) {
        let n = l2.len();
        for (j, o) in out.iter_mut().enumerate().take(n.saturating_sub(1)).skip(1) {
            *o = self.pixel(&window_at(l1, l2, l3, j));
        }
    }
}

/// Runs a kernel over one row: pixel by pixel unless `alg` is Horn, else `horn(hx, hy, o)`
/// with this thread's two scratch rows (Horn's x and y gradients) sized to the row's
/// interior `o = out[1..n-1]`. Rows shorter than 3 have no interior.
fn horn_row<K: Kernel>(
    kernel: &K,
    alg: GradientAlg,
    [l1, l2, l3]: [&[f32]; 3],
    out: &mut [f32],
    horn: impl FnOnce(&mut [f32], &mut [f32], &mut [f32]),
) {
    let n = l2.len();
    if n < 3 {
        return;
    }
    if alg != GradientAlg::Horn {
        kernel.row_by_pixels(l1, l2, l3, out);
        return;
    }
    SCRATCH.with(|sc| {
        let (hx, hy) = &mut *sc.borrow_mut();
        hx.resize(n - 2, 0.0);
        hy.resize(n - 2, 0.0);
        horn(hx, hy, &mut out[1..n - 1]);
    });
}

/// The 3×3 window centred on column `j` of the middle row `l2` (row-major, as gdaldem's).
#[inline(always)]
fn window_at(l1: &[f32], l2: &[f32], l3: &[f32], j: usize) -> [f32; 9] {
    [
        l1[j - 1],
        l1[j],
        l1[j + 1],
        l2[j - 1],
        l2[j],
        l2[j + 1],
        l3[j - 1],
        l3[j],
        l3[j + 1],
    ]
}

/// Runs a 3×3 algorithm over `src` (`width`×`height`, row-major) exactly as
/// `GDALGeneric3x3Processing` does.
fn process_3x3<K: Kernel>(
    src: &[f32],
    width: usize,
    height: usize,
    nodata: Option<f32>,
    compute_edges: bool,
    dst_nodata: f32,
    kernel: &K,
) -> Vec<f32> {
    let alg = |w: &[f32; 9]| kernel.pixel(w);
    let (w, h) = (width, height);
    let nd = nodata.map(|v| SrcNodata {
        value: v,
        is_nan: v.is_nan(),
    });
    // Which rows hold a nodata (or NaN) value, for gdaldem's per-line shortcut.
    let row_nd: Vec<bool> = match nodata {
        None => vec![false; h],
        Some(v) => src
            .par_chunks(w.max(1))
            .map(|row| {
                // Branch-free scan in blocks (vectorises), stopping at the first hit block.
                row.chunks(256)
                    .any(|c| c.iter().fold(false, |a, &x| a | (x == v) | x.is_nan()))
            })
            .collect(),
    };
    let mut out = vec![dst_nodata; w * h];
    if w == 0 || h == 0 {
        return out;
    }
    let row = |i: usize| &src[i * w..(i + 1) * w];
    out.par_chunks_mut(w).enumerate().for_each(|(i, o)| {
        let edge_rows = compute_edges && w >= 2 && h >= 2;
        if i == 0 || i == h - 1 {
            if !edge_rows {
                return; // nodata row
            }
            let check = nd;
            if i == 0 {
                let (r0, r1) = (row(0), row(1));
                for j in 0..w {
                    let jmin = if j == 0 { j } else { j - 1 };
                    let jmax = if j == w - 1 { j } else { j + 1 };
                    let win = [
                        interpol(r0[jmin], r1[jmin], nd),
                        interpol(r0[j], r1[j], nd),
                        interpol(r0[jmax], r1[jmax], nd),
                        r0[jmin],
                        r0[j],
                        r0[jmax],
                        r1[jmin],
                        r1[j],
                        r1[jmax],
                    ];
                    o[j] = compute_val(check, win, dst_nodata, compute_edges, &alg);
                }
            } else {
                let (l1, l2) = (row(h - 2), row(h - 1));
                for j in 0..w {
                    let jmin = if j == 0 { j } else { j - 1 };
                    let jmax = if j == w - 1 { j } else { j + 1 };
                    let win = [
                        l1[jmin],
                        l1[j],
                        l1[jmax],
                        l2[jmin],
                        l2[j],
                        l2[jmax],
                        interpol(l2[jmin], l1[jmin], nd),
                        interpol(l2[j], l1[j], nd),
                        interpol(l2[jmax], l1[jmax], nd),
                    ];
                    o[j] = compute_val(check, win, dst_nodata, compute_edges, &alg);
                }
            }
            return;
        }
        let (l1, l2, l3) = (row(i - 1), row(i), row(i + 1));
        let check = if nd.is_some() && (row_nd[i - 1] || row_nd[i] || row_nd[i + 1]) {
            nd
        } else {
            None
        };
        if compute_edges && w >= 2 {
            let win = [
                interpol(l1[0], l1[1], nd),
                l1[0],
                l1[1],
                interpol(l2[0], l2[1], nd),
                l2[0],
                l2[1],
                interpol(l3[0], l3[1], nd),
                l3[0],
                l3[1],
            ];
            o[0] = compute_val(check, win, dst_nodata, compute_edges, &alg);
        }
        if w >= 3 {
            match check {
                None => kernel.row(l1, l2, l3, o),
                Some(_) => {
                    for (j, oj) in o.iter_mut().enumerate().take(w - 1).skip(1) {
                        let win = window_at(l1, l2, l3, j);
                        *oj = compute_val(check, win, dst_nodata, compute_edges, &alg);
                    }
                }
            }
        }
        if compute_edges && w >= 2 {
            let j = w - 1;
            let win = [
                l1[j - 1],
                l1[j],
                interpol(l1[j], l1[j - 1], nd),
                l2[j - 1],
                l2[j],
                interpol(l2[j], l2[j - 1], nd),
                l3[j - 1],
                l3[j],
                interpol(l3[j], l3[j - 1], nd),
            ];
            o[j] = compute_val(check, win, dst_nodata, compute_edges, &alg);
        }
    });
    out
}

// Cephes `atan` constants (published with more digits than f64 holds).
#[allow(clippy::excessive_precision)]
const T3P8: f64 = 2.414_213_562_373_095_048_80;
#[allow(clippy::excessive_precision)]
const MOREBITS: f64 = 6.123_233_995_736_765_886_130e-17;
#[allow(clippy::excessive_precision)]
const P: [f64; 5] = [
    -8.750_608_600_031_904_122_785e-1,
    -1.615_753_718_733_365_076_637e1,
    -7.500_855_792_314_704_667_340e1,
    -1.228_866_684_490_136_173_410e2,
    -6.485_021_904_942_025_371_773e1,
];
#[allow(clippy::excessive_precision)]
const Q: [f64; 5] = [
    2.485_846_490_142_306_297_962e1,
    1.650_270_098_316_988_542_046e2,
    4.328_810_604_912_902_668_951e2,
    4.853_903_996_359_136_964_868e2,
    1.945_506_571_482_613_964_425e2,
];

/// atan(x) for finite x ≥ 0 (Cephes' rational approximation; relative error < 3·10⁻¹⁶).
#[inline(always)]
fn atan_fast(x: f64) -> f64 {
    let (base, t, extra) = if x > T3P8 {
        (std::f64::consts::FRAC_PI_2, -1.0 / x, MOREBITS)
    } else if x <= 0.66 {
        (0.0, x, 0.0)
    } else {
        (
            std::f64::consts::FRAC_PI_4,
            (x - 1.0) / (x + 1.0),
            0.5 * MOREBITS,
        )
    };
    let z = t * t;
    let p = (((P[0] * z + P[1]) * z + P[2]) * z + P[3]) * z + P[4];
    let q = ((((z + Q[0]) * z + Q[1]) * z + Q[2]) * z + Q[3]) * z + Q[4];
    base + (t * (z * p / q) + t + extra)
}

/// Relative margin within which a fast result must round to one float32 for it to be
/// taken (far above the approximation error; closer calls use libm, as gdaldem does).
const MARGIN: f64 = 1e-13;

/// `v as f32` when every value within `MARGIN` of `v` rounds to the same float32.
#[inline(always)]
fn settled_f32(v: f64) -> Option<f32> {
    let a = (v * (1.0 - MARGIN)) as f32;
    let b = (v * (1.0 + MARGIN)) as f32;
    (a == b).then_some(a)
}

/// `(atan(t) · 180/π) as f32` exactly as with libm's `atan`, for t ≥ 0.
#[inline(always)]
fn atan_deg_f32(t: f64) -> f32 {
    if t.is_finite()
        && let Some(v) = settled_f32(atan_fast(t) * RAD_TO_DEG)
    {
        return v;
    }
    (t.atan() * RAD_TO_DEG) as f32
}

/// `(atan2(y, x) / (π/180)) as f32` exactly as with libm's `atan2`.
#[inline(always)]
fn atan2_deg_f32(y: f64, x: f64) -> f32 {
    if x != 0.0 && y != 0.0 && x.is_finite() && y.is_finite() {
        let t = (y / x).abs();
        if t.is_finite() && t > 0.0 {
            let a = atan_fast(t);
            // Quadrants: atan2 = ±atan(|y/x|) or ±(π − atan(|y/x|)).
            let r = if x > 0.0 { a } else { std::f64::consts::PI - a };
            let r = if y < 0.0 { -r } else { r };
            if let Some(v) = settled_f32(r / DEG_TO_RAD) {
                return v;
            }
        }
    }
    (y.atan2(x) / DEG_TO_RAD) as f32
}

#[inline]
fn horn_x(w: &[f32; 9]) -> f32 {
    (w[0] + w[3] + w[3] + w[6]) - (w[2] + w[5] + w[5] + w[8])
}

#[inline]
fn horn_y(w: &[f32; 9]) -> f32 {
    (w[6] + w[7] + w[7] + w[8]) - (w[0] + w[1] + w[1] + w[2])
}

#[inline]
fn slope_value(
    w: &[f32; 9],
    alg: GradientAlg,
    ewres: f64,
    nsres: f64,
    div: f64,
    percent: bool,
) -> f32 {
    let (dx, dy) = match alg {
        GradientAlg::Horn => (horn_x(w) as f64 / ewres, horn_y(w) as f64 / nsres),
        GradientAlg::ZevenbergenThorne => {
            ((w[3] - w[5]) as f64 / ewres, (w[7] - w[1]) as f64 / nsres)
        }
    };
    let key = dx * dx + dy * dy;
    if percent {
        (100.0 * (key.sqrt() / div)) as f32
    } else {
        atan_deg_f32(key.sqrt() / div)
    }
}

#[inline]
fn aspect_value(w: &[f32; 9], alg: GradientAlg, trig: bool, flat: f32) -> f32 {
    let (dx, dy) = match alg {
        // gdaldem: dx = (w2 + 2·w5 + w8) − (w0 + 2·w3 + w6), the exact negation in float32.
        GradientAlg::Horn => (f64::from(-horn_x(w)), f64::from(horn_y(w))),
        GradientAlg::ZevenbergenThorne => ((w[5] - w[3]) as f64, (w[7] - w[1]) as f64),
    };
    if dx == 0.0 && dy == 0.0 {
        return flat;
    }
    let mut a = atan2_deg_f32(dy, -dx);
    if !trig {
        a = if a > 90.0f32 {
            450.0f32 - a
        } else {
            90.0f32 - a
        };
    } else if a < 0.0 {
        a += 360.0f32;
    }
    if a == 360.0f32 {
        a = 0.0;
    }
    a
}

/// Horn sums of the inner pixels of a row: hx = (w0+w3+w3+w6) − (w2+w5+w5+w8) and
/// hy = (w6+w7+w7+w8) − (w0+w1+w1+w2), float32 in gdaldem's order, for pixels 1..w−1.
#[inline(always)]
fn horn_body(l1: &[f32], l2: &[f32], l3: &[f32], hx: &mut [f32], hy: &mut [f32]) {
    let m = hx.len().min(hy.len());
    if l1.len() < m + 2 || l2.len() < m + 2 || l3.len() < m + 2 {
        return;
    }
    let (a0, a1, a2) = (&l1[..m], &l1[1..m + 1], &l1[2..m + 2]);
    let (b0, b2) = (&l2[..m], &l2[2..m + 2]);
    let (c0, c1, c2) = (&l3[..m], &l3[1..m + 1], &l3[2..m + 2]);
    let (hx, hy) = (&mut hx[..m], &mut hy[..m]);
    for j in 0..m {
        hx[j] = (a0[j] + b0[j] + b0[j] + c0[j]) - (a2[j] + b2[j] + b2[j] + c2[j]);
        hy[j] = (c0[j] + c1[j] + c1[j] + c2[j]) - (a0[j] + a1[j] + a1[j] + a2[j]);
    }
}

/// atan(n/d) for n ≥ 0, d ≥ 0 (not both 0) with a single division for the range reduction
/// (Cephes' rational approximation; relative error a few 10⁻¹⁶), branch-free.
#[inline(always)]
fn atan_ratio(n: f64, d: f64) -> f64 {
    let big = n > T3P8 * d;
    let small = n <= 0.66 * d;
    let num = if big {
        -d
    } else if small {
        n
    } else {
        n - d
    };
    let den = if big {
        n
    } else if small {
        d
    } else {
        n + d
    };
    let t = num / den;
    let base = if big {
        std::f64::consts::FRAC_PI_2
    } else if small {
        0.0
    } else {
        std::f64::consts::FRAC_PI_4
    };
    let extra = if big {
        MOREBITS
    } else if small {
        0.0
    } else {
        0.5 * MOREBITS
    };
    let z = t * t;
    let p = (((P[0] * z + P[1]) * z + P[2]) * z + P[3]) * z + P[4];
    let q = ((((z + Q[0]) * z + Q[1]) * z + Q[2]) * z + Q[3]) * z + Q[4];
    base + (t * (z * p / q) + t + extra)
}

/// Degrees of slope of the inner pixels of a row from its Horn sums (fast path; NaN where
/// the result must be redone with libm). Returns whether any pixel is NaN.
#[inline(always)]
fn slope_loop_body(hx: &[f32], hy: &[f32], o: &mut [f32], iew: f64, ins: f64, div: f64) -> bool {
    let m = o.len().min(hx.len()).min(hy.len());
    let (o, hxs, hys) = (&mut o[..m], &hx[..m], &hy[..m]);
    let mut unsettled = false;
    for k in 0..m {
        let dx = hxs[k] as f64 * iew;
        let dy = hys[k] as f64 * ins;
        let v = atan_ratio((dx * dx + dy * dy).sqrt(), div) * RAD_TO_DEG;
        let a = (v * (1.0 - MARGIN)) as f32;
        let b = (v * (1.0 + MARGIN)) as f32;
        o[k] = if a == b { a } else { f32::NAN };
        unsettled |= a != b;
    }
    unsettled
}

/// Aspect of the inner pixels of a row from its Horn sums (fast path; NaN where the result
/// must be redone exactly). Returns whether any pixel is NaN.
#[inline(always)]
fn aspect_loop_body(hx: &[f32], hy: &[f32], o: &mut [f32], trig: bool) -> bool {
    let m = o.len().min(hx.len()).min(hy.len());
    let (o, hxs, hys) = (&mut o[..m], &hx[..m], &hy[..m]);
    let mut unsettled = false;
    for k in 0..m {
        // atan2(dy, −dx) with dx = −hx: atan2(hy, hx).
        let (yy, xx) = (hys[k] as f64, hxs[k] as f64);
        let a = atan_ratio(yy.abs(), xx.abs());
        let r = if xx > 0.0 {
            a
        } else {
            std::f64::consts::PI - a
        };
        let r = if yy < 0.0 { -r } else { r };
        let v = r * RAD_TO_DEG;
        let lo = (v * (1.0 - MARGIN)) as f32;
        let hi = (v * (1.0 + MARGIN)) as f32;
        let ok = lo == hi && xx != 0.0 && yy != 0.0;
        let d = if trig {
            if lo < 0.0 { lo + 360.0f32 } else { lo }
        } else if lo > 90.0f32 {
            450.0f32 - lo
        } else {
            90.0f32 - lo
        };
        let d = if d == 360.0f32 { 0.0 } else { d };
        o[k] = if ok { d } else { f32::NAN };
        unsettled |= !ok;
    }
    unsettled
}

/// Horn sums then fast slopes of a row's inner pixels (see [`slope_loop_body`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn slope_fast_body(
    rows: [&[f32]; 3],
    hx: &mut [f32],
    hy: &mut [f32],
    o: &mut [f32],
    iew: f64,
    ins: f64,
    div: f64,
) -> bool {
    horn_body(rows[0], rows[1], rows[2], hx, hy);
    slope_loop_body(hx, hy, o, iew, ins, div)
}

/// Horn sums then fast aspects of a row's inner pixels (see [`aspect_loop_body`]).
#[inline(always)]
fn aspect_fast_body(
    rows: [&[f32]; 3],
    hx: &mut [f32],
    hy: &mut [f32],
    o: &mut [f32],
    trig: bool,
) -> bool {
    horn_body(rows[0], rows[1], rows[2], hx, hy);
    aspect_loop_body(hx, hy, o, trig)
}

// The same loops compiled for AVX2, where LLVM vectorises them (8 lanes of f32, 4 of f64).
// IEEE arithmetic is identical (no FMA contraction), so results are bit-identical.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn slope_fast_avx2(
    rows: [&[f32]; 3],
    hx: &mut [f32],
    hy: &mut [f32],
    o: &mut [f32],
    iew: f64,
    ins: f64,
    div: f64,
) -> bool {
    slope_fast_body(rows, hx, hy, o, iew, ins, div)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn aspect_fast_avx2(
    rows: [&[f32]; 3],
    hx: &mut [f32],
    hy: &mut [f32],
    o: &mut [f32],
    trig: bool,
) -> bool {
    aspect_fast_body(rows, hx, hy, o, trig)
}

#[allow(clippy::too_many_arguments)]
fn slope_fast(
    rows: [&[f32]; 3],
    hx: &mut [f32],
    hy: &mut [f32],
    o: &mut [f32],
    iew: f64,
    ins: f64,
    div: f64,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { slope_fast_avx2(rows, hx, hy, o, iew, ins, div) };
    }
    slope_fast_body(rows, hx, hy, o, iew, ins, div)
}

fn aspect_fast(
    rows: [&[f32]; 3],
    hx: &mut [f32],
    hy: &mut [f32],
    o: &mut [f32],
    trig: bool,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { aspect_fast_avx2(rows, hx, hy, o, trig) };
    }
    aspect_fast_body(rows, hx, hy, o, trig)
}

struct SlopeKernel {
    alg: GradientAlg,
    ewres: f64,
    nsres: f64,
    div: f64,
    percent: bool,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

impl Kernel for SlopeKernel {
    #[inline]
    fn pixel(&self, w: &[f32; 9]) -> f32 {
        slope_value(w, self.alg, self.ewres, self.nsres, self.div, self.percent)
    }

    fn row(&self, l1: &[f32], l2: &[f32], l3: &[f32], out: &mut [f32]) {
        horn_row(self, self.alg, [l1, l2, l3], out, |hx, hy, o| {
            let (ew, ns, div) = (self.ewres, self.nsres, self.div);
            if self.percent {
                horn_body(l1, l2, l3, hx, hy);
                for ((o, &x), &y) in o.iter_mut().zip(hx.iter()).zip(hy.iter()) {
                    let dx = x as f64 / ew;
                    let dy = y as f64 / ns;
                    *o = (100.0 * ((dx * dx + dy * dy).sqrt() / div)) as f32;
                }
                return;
            }
            let unsettled = slope_fast([l1, l2, l3], hx, hy, o, 1.0 / ew, 1.0 / ns, div);
            if unsettled {
                for (k, o) in o.iter_mut().enumerate() {
                    if o.is_nan() {
                        let dx = hx[k] as f64 / ew;
                        let dy = hy[k] as f64 / ns;
                        *o = (((dx * dx + dy * dy).sqrt() / div).atan() * RAD_TO_DEG) as f32;
                    }
                }
            }
        });
    }
}

struct AspectKernel {
    alg: GradientAlg,
    trig: bool,
    flat: f32,
}

impl Kernel for AspectKernel {
    #[inline]
    fn pixel(&self, w: &[f32; 9]) -> f32 {
        aspect_value(w, self.alg, self.trig, self.flat)
    }

    fn row(&self, l1: &[f32], l2: &[f32], l3: &[f32], out: &mut [f32]) {
        horn_row(self, self.alg, [l1, l2, l3], out, |hx, hy, o| {
            if aspect_fast([l1, l2, l3], hx, hy, o, self.trig) {
                // Pixels the fast path left unsettled (NaN), one by one; `o[k]` is column k + 1.
                for (k, o) in o.iter_mut().enumerate() {
                    if o.is_nan() {
                        *o = self.pixel(&window_at(l1, l2, l3, k + 1));
                    }
                }
            }
        });
    }
}

fn check_scale(scale: f64) -> Result<()> {
    if scale.is_finite() && scale > 0.0 {
        Ok(())
    } else {
        Err(TerrainError::param(format!(
            "scale must be a positive number (horizontal units per vertical unit), got {scale}"
        )))
    }
}

fn source(dem: &Raster<f32>) -> (std::borrow::Cow<'_, [f32]>, usize, usize) {
    let (h, w) = dem.data.dim();
    let data = match dem.data.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(dem.data.iter().copied().collect()),
    };
    (data, w, h)
}

fn output(dem: &Raster<f32>, data: Vec<f32>, nodata: Option<f32>) -> Result<Raster<f32>> {
    let (h, w) = dem.data.dim();
    let data = Array2::from_shape_vec((h, w), data)
        .map_err(|e| TerrainError::param(format!("internal: output shape: {e}")))?;
    Ok(Raster {
        data,
        transform: dem.transform,
        crs: dem.crs.clone(),
        nodata,
    })
}

/// Slope of `dem` (see the module documentation); nodata −9999.
pub fn slope(dem: &Raster<f32>, o: &SlopeOptions) -> Result<Raster<f32>> {
    check_scale(o.scale)?;
    let (src, w, h) = source(dem);
    let gt = dem.transform.0;
    let (ewres, nsres) = (gt[1], gt[5]);
    let div = match o.alg {
        GradientAlg::Horn => 8.0 * o.scale,
        GradientAlg::ZevenbergenThorne => 2.0 * o.scale,
    };
    let kernel = SlopeKernel {
        alg: o.alg,
        ewres,
        nsres,
        div,
        percent: o.percent,
    };
    let out = process_3x3(
        &src,
        w,
        h,
        dem.nodata,
        o.compute_edges,
        DERIVATIVE_NODATA,
        &kernel,
    );
    output(dem, out, Some(DERIVATIVE_NODATA))
}

/// Aspect of `dem` (see the module documentation); nodata −9999, or none with
/// `zero_for_flat`.
pub fn aspect(dem: &Raster<f32>, o: &AspectOptions) -> Result<Raster<f32>> {
    let (src, w, h) = source(dem);
    let dst_nodata = if o.zero_for_flat {
        0.0
    } else {
        DERIVATIVE_NODATA
    };
    let kernel = AspectKernel {
        alg: o.alg,
        trig: o.trigonometric,
        flat: dst_nodata,
    };
    let out = process_3x3(&src, w, h, dem.nodata, o.compute_edges, dst_nodata, &kernel);
    output(dem, out, (!o.zero_for_flat).then_some(DERIVATIVE_NODATA))
}

/// Slope and aspect of `dem` (the same pixels as [`slope`] and [`aspect`]), computed
/// concurrently.
pub fn slope_aspect(
    dem: &Raster<f32>,
    s: &SlopeOptions,
    a: &AspectOptions,
) -> Result<(Raster<f32>, Raster<f32>)> {
    let (sl, asp) = rayon::join(|| slope(dem, s), || aspect(dem, a));
    Ok((sl?, asp?))
}

/// Checks that slopes can be computed on `crs` with `scale`: a geographic CRS (degrees)
/// needs an explicit scale (e.g. 111120 for elevations in metres).
pub fn check_units(crs: &cog::Crs, scale: Option<f64>, uri: &str) -> Result<()> {
    if scale.is_none() && crs.is_geographic() {
        return Err(TerrainError::input(
            uri,
            format!(
                "the raster is in a geographic CRS ({}), so its pixel size is in degrees: give \
                 --scale (111120 for elevations in metres, or 0.5·(1+cos φ)·111120 at latitude φ \
                 as the georust/gdal tests do) or reproject it",
                crs.epsg
                    .map(|e| format!("EPSG:{e}"))
                    .unwrap_or_else(|| "WKT".to_string())
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cog::{Crs, GeoTransform};

    fn dem(data: Vec<f32>, w: usize, h: usize, nodata: Option<f32>) -> Raster<f32> {
        Raster {
            data: Array2::from_shape_vec((h, w), data).unwrap(),
            transform: GeoTransform::north_up(0.0, 0.0, 10.0),
            crs: Crs::epsg(25830),
            nodata,
        }
    }

    #[test]
    fn plane_slope_and_aspect() {
        // z rises 1 m per 10 m to the east: slope atan(0.1), facing west (270°).
        let (w, h) = (5, 4);
        let data: Vec<f32> = (0..w * h).map(|k| (k % w) as f32).collect();
        let d = dem(data, w, h, None);
        let s = slope(&d, &SlopeOptions::default()).unwrap();
        let want = (0.1f64.atan() * RAD_TO_DEG) as f32;
        // gdaldem duplicates (rather than extrapolates) the outer column in the corners of
        // the first and last rows, halving the gradient there.
        let corner = (0.05f64.atan() * RAD_TO_DEG) as f32;
        for ((r, c), &v) in s.data.indexed_iter() {
            let is_corner = (r == 0 || r == h - 1) && (c == 0 || c == w - 1);
            let want = if is_corner { corner } else { want };
            assert!((v - want).abs() < 1e-5, "{r} {c}: {v} vs {want}");
        }
        let a = aspect(
            &d,
            &AspectOptions {
                compute_edges: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(a.data.iter().all(|&v| v == 270.0), "{:?}", a.data);
        let p = slope(
            &d,
            &SlopeOptions {
                percent: true,
                compute_edges: false,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(p.data[(0, 0)], DERIVATIVE_NODATA);
        assert!((p.data[(1, 1)] - 10.0).abs() < 1e-5);
    }

    #[test]
    fn flat_and_nodata() {
        let (w, h) = (4, 4);
        let mut data = vec![5.0f32; w * h];
        data[5] = -1.0; // nodata at (1,1)
        let d = dem(data, w, h, Some(-1.0));
        let a = aspect(&d, &AspectOptions::default()).unwrap();
        assert_eq!(a.data[(1, 1)], DERIVATIVE_NODATA);
        assert_eq!(a.data[(2, 2)], DERIVATIVE_NODATA); // neighbour of nodata, no edges
        let z = aspect(
            &d,
            &AspectOptions {
                zero_for_flat: true,
                compute_edges: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(z.nodata, None);
        assert!(z.data.iter().all(|&v| v == 0.0));
        let s = slope(&d, &SlopeOptions::default()).unwrap();
        assert_eq!(s.data[(1, 1)], DERIVATIVE_NODATA);
        assert_eq!(s.data[(2, 2)], 0.0);
    }

    #[test]
    fn tiny_rasters_are_nodata() {
        let d = dem(vec![1.0, 2.0, 3.0], 3, 1, None);
        let s = slope(&d, &SlopeOptions::default()).unwrap();
        assert!(s.data.iter().all(|&v| v == DERIVATIVE_NODATA));
        let d = dem(vec![1.0], 1, 1, None);
        let s = slope(&d, &SlopeOptions::default()).unwrap();
        assert_eq!(s.data[(0, 0)], DERIVATIVE_NODATA);
        assert!(
            slope(
                &d,
                &SlopeOptions {
                    scale: 0.0,
                    ..Default::default()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn fast_atan_rounds_like_libm() {
        let mut s = 99u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..200_000 {
            let t = next() * 10f64.powf(next() * 12.0 - 6.0);
            assert_eq!(
                atan_deg_f32(t).to_bits(),
                ((t.atan() * RAD_TO_DEG) as f32).to_bits(),
                "{t}"
            );
            let (y, x) = (next() * 2.0 - 1.0, next() * 2.0 - 1.0);
            let (y, x) = (y * 1e3f64.powf(next()), x * 1e3f64.powf(next()));
            assert_eq!(
                atan2_deg_f32(y, x).to_bits(),
                ((y.atan2(x) / DEG_TO_RAD) as f32).to_bits(),
                "{y} {x}"
            );
        }
        for (y, x) in [
            (0.0, 1.0),
            (0.0, -1.0),
            (-0.0, -1.0),
            (1.0, 0.0),
            (-1.0, 0.0),
            (1e-300, -1.0),
        ] {
            assert_eq!(
                atan2_deg_f32(y, x).to_bits(),
                ((f64::atan2(y, x) / DEG_TO_RAD) as f32).to_bits()
            );
        }
        assert!((atan_fast(1.0) - std::f64::consts::FRAC_PI_4).abs() < 1e-16);
    }

    #[test]
    fn row_kernels_equal_the_pixel_path() {
        let mut s = 5u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let n = 4000;
        let mut rows: Vec<Vec<f32>> = Vec::new();
        for r in 0..3 {
            rows.push(
                (0..n)
                    .map(|j| {
                        // Smooth terrain, steep cliffs, exact flats and repeated values.
                        let base = 300.0 + 0.3 * j as f64 + 2.0 * r as f64;
                        let v = match j % 7 {
                            0 => 500.0,
                            1 => base + next() * 1e-3,
                            2 => base + next() * 50.0,
                            _ => base + next(),
                        };
                        v as f32
                    })
                    .collect(),
            );
        }
        // A flat stretch.
        for row in rows.iter_mut() {
            for v in row[100..140].iter_mut() {
                *v = 12.5;
            }
        }
        let kernels_s = [
            SlopeKernel {
                alg: GradientAlg::Horn,
                ewres: 1.0,
                nsres: -1.0,
                div: 8.0,
                percent: false,
            },
            SlopeKernel {
                alg: GradientAlg::Horn,
                ewres: 0.3,
                nsres: -0.7,
                div: 8.0 * 3.0,
                percent: false,
            },
            SlopeKernel {
                alg: GradientAlg::Horn,
                ewres: 2.0,
                nsres: -2.0,
                div: 8.0,
                percent: true,
            },
        ];
        for k in &kernels_s {
            let mut out = vec![0.0f32; n];
            k.row(&rows[0], &rows[1], &rows[2], &mut out);
            for (j, o) in out.iter().enumerate().take(n - 1).skip(1) {
                let w = window_at(&rows[0], &rows[1], &rows[2], j);
                assert_eq!(o.to_bits(), k.pixel(&w).to_bits(), "slope {j}");
            }
        }
        for trig in [false, true] {
            let k = AspectKernel {
                alg: GradientAlg::Horn,
                trig,
                flat: DERIVATIVE_NODATA,
            };
            let mut out = vec![0.0f32; n];
            k.row(&rows[0], &rows[1], &rows[2], &mut out);
            for (j, o) in out.iter().enumerate().take(n - 1).skip(1) {
                let w = window_at(&rows[0], &rows[1], &rows[2], j);
                assert_eq!(o.to_bits(), k.pixel(&w).to_bits(), "aspect {j}");
            }
        }
    }

    #[test]
    fn geographic_needs_scale() {
        let e = check_units(&Crs::epsg(4326), None, "dem.tif").unwrap_err();
        assert!(e.to_string().contains("dem.tif") && e.to_string().contains("--scale"));
        check_units(&Crs::epsg(4326), Some(111120.0), "dem.tif").unwrap();
        check_units(&Crs::epsg(25830), None, "dem.tif").unwrap();
    }
}
