//! NDVI, NDVI differences, grid checks, SCL masking and statistics on [`Raster`]s.
//!
//! NDVI = (NIR − Red) / (NIR + Red) of surface reflectances, as float32. A pixel is nodata
//! (NaN in the output) where either band is nodata (its raster's nodata value, or the extra
//! nodata DN — 0 for Sentinel-2), where NIR + Red = 0, or where the scene classification
//! marks it as cloud or shadow when masking is on.
//!
//! When both bands have the same scale (always so for Sentinel-2), the scale cancels and the
//! ratio is computed in DN space as float32: `n = DN_nir + offset_dn`, `r = DN_red + offset_dn`,
//! `(n − r) / (n + r)`. For integer DNs below 2²⁴ the sum and difference are exact, so every
//! NDVI is the correctly rounded float32 of the exact ratio (the same numbers numpy gives for
//! `(n - r) / (n + r)` on float32 arrays).

use cog::{Crs, GeoTransform, Raster, Window};
use ndarray::{Array2, ArrayView2, Zip};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::NdviError;
use crate::radiometry::Radiometry;

/// Output nodata: NaN (GDAL writes it as the `nan` nodata value).
pub const NODATA: f32 = f32::NAN;

/// Scene classification (SCL) classes masked by default: 3 cloud shadows, 8 cloud medium
/// probability, 9 cloud high probability, 10 thin cirrus.
pub const DEFAULT_SCL_MASK: [u8; 4] = [3, 8, 9, 10];

/// Pixel types NDVI can be computed from.
pub trait Sample: Copy + PartialEq + Send + Sync + 'static {
    /// True when every value converts to float32 exactly (8/16-bit integers, float32).
    const EXACT_F32: bool;
    /// The value as float32 (exact for 8/16-bit integers).
    fn to_f32(self) -> f32;
    /// The value as float64.
    fn to_f64(self) -> f64;
}

macro_rules! sample {
    ($($t:ty => $exact:expr),*) => {$(
        impl Sample for $t {
            const EXACT_F32: bool = $exact;
            #[inline]
            fn to_f32(self) -> f32 { self as f32 }
            #[inline]
            fn to_f64(self) -> f64 { self as f64 }
        }
    )*};
}
sample!(u8 => true, i8 => true, u16 => true, i16 => true, u32 => false, i32 => false,
    f32 => true, f64 => false);

/// Pixels per parallel chunk of the slice kernels.
const CHUNK: usize = 1 << 16;

/// The DN-space NDVI of contiguous slices, branch-free so that it vectorises. Nodata values
/// are compared as float32 (exact for the types with [`Sample::EXACT_F32`]); NaN disables a
/// comparison.
#[allow(clippy::too_many_arguments)]
fn ndvi_dn_slices<T: Sample>(
    red: &[T],
    nir: &[T],
    out: &mut [f32],
    red_nd: f32,
    nir_nd: f32,
    extra: f32,
    red_off: f32,
    nir_off: f32,
) {
    out.par_chunks_mut(CHUNK)
        .zip(red.par_chunks(CHUNK).zip(nir.par_chunks(CHUNK)))
        .for_each(|(o, (r, n))| {
            for ((o, r), n) in o.iter_mut().zip(r).zip(n) {
                let (r, n) = (r.to_f32(), n.to_f32());
                #[allow(clippy::eq_op)]
                let bad = (r == red_nd)
                    | (r == extra)
                    | (r != r)
                    | (n == nir_nd)
                    | (n == extra)
                    | (n != n);
                let (r, n) = (r + red_off, n + nir_off);
                let s = n + r;
                let v = (n - r) / s;
                *o = if bad | (s == 0.0) | !v.is_finite() {
                    NODATA
                } else {
                    v
                };
            }
        });
}

/// The pixel grid of a raster: size, geotransform (GDAL order) and CRS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Columns.
    pub width: u64,
    /// Rows.
    pub height: u64,
    /// GDAL geotransform of the top-left corner, in CRS units.
    pub transform: GeoTransform,
    pub crs: Crs,
}

impl Grid {
    /// The grid of `raster`.
    pub fn of<T>(raster: &Raster<T>) -> Grid {
        Grid {
            width: raster.width() as u64,
            height: raster.height() as u64,
            transform: raster.transform,
            crs: raster.crs.clone(),
        }
    }

    /// The grid of `window` of this grid.
    pub fn window(&self, w: &Window) -> Grid {
        Grid {
            width: w.width,
            height: w.height,
            transform: self.transform.window(w.col_off, w.row_off),
            crs: self.crs.clone(),
        }
    }

    /// Pixel size along x (`|gt[1]|`), CRS units.
    pub fn pixel_x(&self) -> f64 {
        self.transform.0[1].abs()
    }

    /// Pixel size along y (`|gt[5]|`), CRS units.
    pub fn pixel_y(&self) -> f64 {
        self.transform.0[5].abs()
    }
}

impl std::fmt::Display for Grid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = &self.transform.0;
        write!(
            f,
            "{}x{} px, origin ({}, {}), pixel ({}, {})",
            self.width, self.height, g[0], g[3], g[1], g[5]
        )?;
        if g[2] != 0.0 || g[4] != 0.0 {
            write!(f, ", rotation ({}, {})", g[2], g[4])?;
        }
        write!(f, ", CRS {}", crs_name(&self.crs))
    }
}

/// A short name of a CRS for messages.
pub fn crs_name(crs: &Crs) -> String {
    match (&crs.epsg, &crs.wkt) {
        (Some(e), _) => format!("EPSG:{e}"),
        (None, Some(w)) => {
            let head: String = w.chars().take(60).collect();
            format!("WKT {head}…")
        }
        (None, None) => "unknown".to_string(),
    }
}

/// True when two CRSs are the same: equal EPSG codes when both have one, else equal WKT,
/// else both unknown.
pub fn same_crs(a: &Crs, b: &Crs) -> bool {
    match (a.epsg, b.epsg) {
        (Some(x), Some(y)) => x == y,
        _ => match (&a.wkt, &b.wkt) {
            (Some(x), Some(y)) => x == y,
            _ => a.is_unknown() && b.is_unknown(),
        },
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// Checks that grids `a` (named `a_name`) and `b` are identical: same CRS, size and
/// geotransform (origins within 1e-6 pixel, pixel sizes within 1e-9 relative).
pub fn check_same_grid(a_name: &str, a: &Grid, b_name: &str, b: &Grid) -> Result<(), NdviError> {
    let mismatch = |detail: String| NdviError::GridMismatch {
        a: a_name.to_string(),
        b: b_name.to_string(),
        detail,
    };
    if !same_crs(&a.crs, &b.crs) {
        return Err(mismatch(format!(
            "CRS {} vs {}",
            crs_name(&a.crs),
            crs_name(&b.crs)
        )));
    }
    if a.width != b.width || a.height != b.height {
        return Err(mismatch(format!(
            "size {}x{} vs {}x{} px",
            a.width, a.height, b.width, b.height
        )));
    }
    let (ga, gb) = (&a.transform.0, &b.transform.0);
    let px = a.pixel_x().max(a.pixel_y()).max(f64::MIN_POSITIVE);
    for i in [1, 2, 4, 5] {
        if !close(ga[i], gb[i], 1e-9 * ga[i].abs().max(gb[i].abs()).max(px)) {
            return Err(mismatch(format!(
                "pixel size/rotation ({}, {}, {}, {}) vs ({}, {}, {}, {})",
                ga[1], ga[2], ga[4], ga[5], gb[1], gb[2], gb[4], gb[5]
            )));
        }
    }
    if !close(ga[0], gb[0], 1e-6 * px) || !close(ga[3], gb[3], 1e-6 * px) {
        return Err(mismatch(format!(
            "origin ({}, {}) vs ({}, {})",
            ga[0], ga[3], gb[0], gb[3]
        )));
    }
    Ok(())
}

/// How NDVI is computed from two bands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NdviOptions {
    /// DN → reflectance of the red band (B04).
    pub red: Radiometry,
    /// DN → reflectance of the NIR band (B08).
    pub nir: Radiometry,
    /// A DN that marks nodata in both bands in addition to the rasters' own nodata values
    /// (0 for Sentinel-2, whose COGs also tag it).
    pub nodata_dn: Option<f64>,
}

impl Default for NdviOptions {
    /// Sentinel-2 L2A before processing baseline 04.00: scale 0.0001, no offset, nodata 0.
    fn default() -> Self {
        NdviOptions::sentinel2(0.0)
    }
}

impl NdviOptions {
    /// Sentinel-2 bands whose DNs carry `offset_dn` (0, or −1000 from baseline 04.00).
    pub fn sentinel2(offset_dn: f64) -> Self {
        NdviOptions {
            red: Radiometry::sentinel2(offset_dn),
            nir: Radiometry::sentinel2(offset_dn),
            nodata_dn: Some(0.0),
        }
    }
}

/// NDVI of Sentinel-2 L2A DNs before baseline 04.00 (scale 0.0001, no offset, nodata 0);
/// see [`ndvi_with`]. The output has the grid of the inputs and NaN nodata.
pub fn ndvi<T: Sample>(red: &Raster<T>, nir: &Raster<T>) -> Result<Raster<f32>, NdviError> {
    ndvi_with(red, nir, &NdviOptions::default())
}

/// NDVI = (NIR − Red) / (NIR + Red) of reflectances, float32, NaN where either band is nodata
/// or the sum is 0. The bands must share their grid (else [`NdviError::GridMismatch`]).
pub fn ndvi_with<T: Sample>(
    red: &Raster<T>,
    nir: &Raster<T>,
    options: &NdviOptions,
) -> Result<Raster<f32>, NdviError> {
    check_same_grid("red band", &Grid::of(red), "NIR band", &Grid::of(nir))?;
    let data = ndvi_array(
        red.data.view(),
        red.nodata,
        nir.data.view(),
        nir.nodata,
        options,
    )?;
    Ok(Raster {
        data,
        transform: red.transform,
        crs: red.crs.clone(),
        nodata: Some(NODATA),
    })
}

#[inline]
fn is_nodata<T: Sample>(v: T, nodata: Option<T>, extra: Option<f64>) -> bool {
    // NaN never equals itself: a NaN sample is nodata whatever the tags say.
    #[allow(clippy::eq_op)]
    let nan = v != v;
    nan || nodata.is_some_and(|nd| v == nd) || extra.is_some_and(|e| v.to_f64() == e)
}

/// The NDVI kernel on arrays (`[row, col]`, same shape); see [`ndvi_with`].
pub fn ndvi_array<T: Sample>(
    red: ArrayView2<T>,
    red_nodata: Option<T>,
    nir: ArrayView2<T>,
    nir_nodata: Option<T>,
    options: &NdviOptions,
) -> Result<Array2<f32>, NdviError> {
    if red.dim() != nir.dim() {
        return Err(NdviError::InvalidParameter(format!(
            "red {:?} and NIR {:?} arrays differ in shape",
            red.dim(),
            nir.dim()
        )));
    }
    options.red.validate("red band")?;
    options.nir.validate("NIR band")?;
    let extra = options.nodata_dn;
    let mut out = Array2::<f32>::zeros(red.dim());
    let nd32 = |nd: Option<T>| nd.map_or(f32::NAN, Sample::to_f32);
    if options.red.scale == options.nir.scale
        && T::EXACT_F32
        && extra.is_none_or(|e| e as f32 as f64 == e)
        && let (Some(r), Some(n)) = (red.as_slice(), nir.as_slice())
        && let Some(o) = out.as_slice_mut()
    {
        ndvi_dn_slices(
            r,
            n,
            o,
            nd32(red_nodata),
            nd32(nir_nodata),
            extra.map_or(f32::NAN, |e| e as f32),
            options.red.offset_dn() as f32,
            options.nir.offset_dn() as f32,
        );
    } else if options.red.scale == options.nir.scale {
        // The scale cancels: work in DN space, exactly, in float32.
        let or = options.red.offset_dn() as f32;
        let on = options.nir.offset_dn() as f32;
        Zip::from(&mut out)
            .and(&red)
            .and(&nir)
            .par_for_each(|o, &r, &n| {
                *o = if is_nodata(r, red_nodata, extra) || is_nodata(n, nir_nodata, extra) {
                    NODATA
                } else {
                    let r = r.to_f32() + or;
                    let n = n.to_f32() + on;
                    let s = n + r;
                    let v = (n - r) / s;
                    // s = 0 gives ±inf or NaN; a ±inf DN (float input) NaN.
                    if s == 0.0 || !v.is_finite() {
                        NODATA
                    } else {
                        v
                    }
                };
            });
    } else {
        let (sr, or) = (options.red.scale, options.red.offset);
        let (sn, on) = (options.nir.scale, options.nir.offset);
        Zip::from(&mut out)
            .and(&red)
            .and(&nir)
            .par_for_each(|o, &r, &n| {
                *o = if is_nodata(r, red_nodata, extra) || is_nodata(n, nir_nodata, extra) {
                    NODATA
                } else {
                    let r = r.to_f64() * sr + or;
                    let n = n.to_f64() * sn + on;
                    let s = n + r;
                    let v = ((n - r) / s) as f32;
                    if s == 0.0 || !v.is_finite() {
                        NODATA
                    } else {
                        v
                    }
                };
            });
    }
    Ok(out)
}

/// NDVI difference `after − before` (float32, NaN where either is nodata). The rasters must
/// share their grid. (CloudButton's original squared both NDVIs by mistake.)
pub fn ndvi_diff(before: &Raster<f32>, after: &Raster<f32>) -> Result<Raster<f32>, NdviError> {
    check_same_grid(
        "NDVI before",
        &Grid::of(before),
        "NDVI after",
        &Grid::of(after),
    )?;
    let data = diff_array(
        before.data.view(),
        before.nodata,
        after.data.view(),
        after.nodata,
    );
    Ok(Raster {
        data,
        transform: after.transform,
        crs: after.crs.clone(),
        nodata: Some(NODATA),
    })
}

/// The difference kernel on same-shaped arrays: `after − before`, NaN where either is nodata.
pub fn diff_array(
    before: ArrayView2<f32>,
    before_nodata: Option<f32>,
    after: ArrayView2<f32>,
    after_nodata: Option<f32>,
) -> Array2<f32> {
    let mut out = Array2::<f32>::zeros(before.dim());
    if before.dim() == after.dim()
        && let (Some(b), Some(a), Some(o)) =
            (before.as_slice(), after.as_slice(), out.as_slice_mut())
    {
        let (bn, an) = (
            before_nodata.unwrap_or(f32::NAN),
            after_nodata.unwrap_or(f32::NAN),
        );
        o.par_chunks_mut(CHUNK)
            .zip(b.par_chunks(CHUNK).zip(a.par_chunks(CHUNK)))
            .for_each(|(o, (b, a))| {
                for ((o, &b), &a) in o.iter_mut().zip(b).zip(a) {
                    #[allow(clippy::eq_op)]
                    let bad = (b != b) | (a != a) | (b == bn) | (a == an);
                    *o = if bad { NODATA } else { a - b };
                }
            });
        return out;
    }
    Zip::from(&mut out)
        .and(&before)
        .and(&after)
        .par_for_each(|o, &b, &a| {
            *o = if is_nodata(b, before_nodata, None) || is_nodata(a, after_nodata, None) {
                NODATA
            } else {
                a - b
            };
        });
    out
}

/// Nearest-neighbour mapping of a band grid onto a coarser SCL grid whose pixel is an
/// integer multiple `factor` of the band's and whose pixel corners are band pixel corners:
/// band pixel (col, row) takes SCL pixel ((col + col_off) / factor, (row + row_off) / factor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SclMapping {
    /// SCL pixel size / band pixel size (2 for Sentinel-2's 20 m SCL over 10 m bands).
    pub factor: u64,
    /// Band-pixel offset of the band grid's origin from the SCL grid's origin (columns).
    pub col_off: u64,
    /// Same, rows.
    pub row_off: u64,
}

impl SclMapping {
    /// The mapping of `band` (named `band_name`) onto `scl`; an error unless both have the
    /// same CRS, no rotation, SCL pixels an integer multiple of band pixels along both axes,
    /// aligned corners, and an SCL extent covering the band's.
    pub fn new(
        band_name: &str,
        band: &Grid,
        scl_name: &str,
        scl: &Grid,
    ) -> Result<Self, NdviError> {
        let err = |reason: String| NdviError::SclGrid {
            scl: scl_name.to_string(),
            band: band_name.to_string(),
            reason,
        };
        if !same_crs(&band.crs, &scl.crs) {
            return Err(err(format!(
                "CRS {} vs {}",
                crs_name(&scl.crs),
                crs_name(&band.crs)
            )));
        }
        let (gb, gs) = (&band.transform.0, &scl.transform.0);
        if !band.transform.is_north_up() || !scl.transform.is_north_up() {
            return Err(err("rotated geotransforms are not supported".into()));
        }
        if gb[1] <= 0.0 || gb[5] >= 0.0 || gs[1] <= 0.0 || gs[5] >= 0.0 {
            return Err(err(format!(
                "pixel sizes ({}, {}) and ({}, {}) are not north-up (x > 0, y < 0)",
                gs[1], gs[5], gb[1], gb[5]
            )));
        }
        let fx = gs[1] / gb[1];
        let fy = gs[5] / gb[5];
        let k = fx.round();
        if k < 1.0 || (fx - k).abs() > 1e-6 || (fy - k).abs() > 1e-6 {
            return Err(err(format!(
                "SCL pixel ({}, {}) is not the band pixel ({}, {}) times one integer factor \
                 (ratios {fx}, {fy}); only nearest-neighbour resampling by an integer factor \
                 is supported",
                gs[1], gs[5], gb[1], gb[5]
            )));
        }
        let ox = (gb[0] - gs[0]) / gb[1];
        let oy = (gb[3] - gs[3]) / gb[5];
        let (rx, ry) = (ox.round(), oy.round());
        if (ox - rx).abs() > 1e-6 || (oy - ry).abs() > 1e-6 {
            return Err(err(format!(
                "origins ({}, {}) and ({}, {}) are not a whole number of band pixels apart",
                gs[0], gs[3], gb[0], gb[3]
            )));
        }
        let factor = k as u64;
        if rx < 0.0
            || ry < 0.0
            || (rx as u64 + band.width).div_ceil(factor) > scl.width
            || (ry as u64 + band.height).div_ceil(factor) > scl.height
        {
            return Err(err(format!(
                "the SCL ({scl}) does not cover the band ({band})"
            )));
        }
        Ok(SclMapping {
            factor,
            col_off: rx as u64,
            row_off: ry as u64,
        })
    }

    /// The window of the SCL grid that a window of the band grid needs.
    pub fn scl_window(&self, band_window: &Window) -> Window {
        let k = self.factor;
        let c0 = (band_window.col_off + self.col_off) / k;
        let r0 = (band_window.row_off + self.row_off) / k;
        let c1 = (band_window.col_off + band_window.width + self.col_off).div_ceil(k);
        let r1 = (band_window.row_off + band_window.height + self.row_off).div_ceil(k);
        Window::new(c0, r0, c1 - c0, r1 - r0)
    }
}

/// Sets to nodata (NaN) every pixel of `ndvi` whose scene class (nearest neighbour of `scl`,
/// which may be coarser by an integer factor) is in `classes`. Returns the number of valid
/// pixels it masked.
pub fn apply_scl_mask(
    ndvi: &mut Raster<f32>,
    ndvi_name: &str,
    scl: &Raster<u8>,
    scl_name: &str,
    classes: &[u8],
) -> Result<u64, NdviError> {
    let map = SclMapping::new(ndvi_name, &Grid::of(ndvi), scl_name, &Grid::of(scl))?;
    let mut masked_class = [false; 256];
    for &c in classes {
        masked_class[c as usize] = true;
    }
    let k = map.factor as usize;
    let (co, ro) = (map.col_off as usize, map.row_off as usize);
    let scl_data = &scl.data;
    let masked: u64 = ndvi
        .data
        .axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .enumerate()
        .map(|(row, mut line)| {
            let srow = scl_data.row((row + ro) / k);
            let mut n = 0u64;
            for (col, v) in line.iter_mut().enumerate() {
                if masked_class[srow[(col + co) / k] as usize] && !v.is_nan() {
                    *v = NODATA;
                    n += 1;
                }
            }
            n
        })
        .sum();
    Ok(masked)
}

/// Summary statistics of the valid (non-NaN, non-nodata) pixels of a float32 raster.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// All pixels.
    pub pixels: u64,
    /// Valid pixels.
    pub valid: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    /// Population standard deviation (numpy's default, ddof = 0).
    pub std: Option<f64>,
}

/// Partial statistics of a block of values (count, mean, sum of squared deviations, range),
/// combined with Chan et al.'s pairwise update so blocks can be summarised in parallel.
#[derive(Debug, Clone, Copy)]
struct Partial {
    n: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Partial {
    const EMPTY: Partial = Partial {
        n: 0,
        mean: 0.0,
        m2: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    /// Two passes over a cache-sized block: exact mean, then squared deviations.
    fn of(values: &[f32], valid: impl Fn(f32) -> bool) -> Partial {
        let (mut n, mut sum) = (0u64, 0f64);
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for &v in values.iter().filter(|&&v| valid(v)) {
            let v = v as f64;
            n += 1;
            sum += v;
            min = min.min(v);
            max = max.max(v);
        }
        if n == 0 {
            return Partial::EMPTY;
        }
        let mean = sum / n as f64;
        let m2 = values
            .iter()
            .filter(|&&v| valid(v))
            .map(|&v| (v as f64 - mean).powi(2))
            .sum();
        Partial {
            n,
            mean,
            m2,
            min,
            max,
        }
    }

    fn merge(a: Partial, b: Partial) -> Partial {
        if a.n == 0 {
            return b;
        }
        if b.n == 0 {
            return a;
        }
        let n = a.n + b.n;
        let d = b.mean - a.mean;
        Partial {
            n,
            mean: a.mean + d * (b.n as f64 / n as f64),
            m2: a.m2 + b.m2 + d * d * (a.n as f64 * b.n as f64 / n as f64),
            min: a.min.min(b.min),
            max: a.max.max(b.max),
        }
    }
}

/// Statistics of the valid pixels of `raster` (float64; blocks of 64 Ki pixels summarised
/// in parallel with two passes each, then combined pairwise).
pub fn stats(raster: &Raster<f32>) -> Stats {
    let nodata = raster.nodata;
    let valid = |v: f32| !v.is_nan() && nodata.is_none_or(|nd| v != nd);
    let p = match raster.data.as_slice() {
        Some(all) => all
            .par_chunks(CHUNK)
            .map(|c| Partial::of(c, valid))
            .reduce(|| Partial::EMPTY, Partial::merge),
        None => raster
            .data
            .outer_iter()
            .collect::<Vec<_>>()
            .par_iter()
            .map(|row| Partial::of(&row.to_vec(), valid))
            .reduce(|| Partial::EMPTY, Partial::merge),
    };
    let pixels = raster.data.len() as u64;
    if p.n == 0 {
        return Stats {
            pixels,
            valid: 0,
            min: None,
            max: None,
            mean: None,
            std: None,
        };
    }
    Stats {
        pixels,
        valid: p.n,
        min: Some(p.min),
        max: Some(p.max),
        mean: Some(p.mean),
        std: Some((p.m2 / p.n as f64).sqrt()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ndarray::array;

    fn raster<T>(data: Array2<T>, nodata: Option<T>) -> Raster<T> {
        Raster {
            data,
            transform: GeoTransform::north_up(199980.0, 2800020.0, 10.0),
            crs: Crs::epsg(32629),
            nodata,
        }
    }

    #[test]
    fn ndvi_values_and_nodata() {
        let red = raster(array![[1000u16, 0, 2000], [500, 3000, 1]], Some(0));
        let nir = raster(array![[3000u16, 4000, 2000], [0, 1000, 1]], Some(0));
        let v = ndvi(&red, &nir).unwrap();
        assert_eq!(v.data[[0, 0]], 0.5);
        assert!(v.data[[0, 1]].is_nan(), "red nodata");
        assert_eq!(v.data[[0, 2]], 0.0);
        assert!(v.data[[1, 0]].is_nan(), "nir nodata");
        assert_eq!(v.data[[1, 1]], (1000f32 - 3000.0) / 4000.0);
        assert_eq!(v.data[[1, 2]], 0.0);
        assert_eq!(v.transform, red.transform);
        assert_eq!(v.crs, red.crs);
        assert!(v.nodata.unwrap().is_nan());
    }

    #[test]
    fn baseline_04_offset_and_zero_sum() {
        // Baseline 04.00 DNs: reflectance = (DN - 1000) / 10000.
        let red = raster(array![[1500u16, 1000, 900]], None);
        let nir = raster(array![[3500u16, 1000, 1100]], None);
        let v = ndvi_with(&red, &nir, &NdviOptions::sentinel2(-1000.0)).unwrap();
        assert_eq!(v.data[[0, 0]], (2500f32 - 500.0) / 3000.0);
        assert!(v.data[[0, 1]].is_nan(), "sum 0 is nodata");
        assert!(
            v.data[[0, 2]].is_nan(),
            "reflectances -0.01 and +0.01 sum to 0"
        );
        // Without the offset the same DNs give another NDVI.
        let w = ndvi(&red, &nir).unwrap();
        assert_eq!(w.data[[0, 0]], 2000f32 / 5000.0);
        // The nodata DN applies even without a nodata tag.
        let red = raster(array![[0u16]], None);
        let nir = raster(array![[10u16]], None);
        assert!(ndvi(&red, &nir).unwrap().data[[0, 0]].is_nan());
    }

    #[test]
    fn different_scales_use_reflectances() {
        let red = raster(array![[0.05f32, f32::NAN]], None);
        let nir = raster(array![[3000f32, 1.0]], None);
        let opts = NdviOptions {
            red: Radiometry::identity(),
            nir: Radiometry::sentinel2(0.0),
            nodata_dn: None,
        };
        let v = ndvi_with(&red, &nir, &opts).unwrap();
        let expect = ((0.3f64 - 0.05f32 as f64) / (0.3 + 0.05f32 as f64)) as f32;
        assert!((v.data[[0, 0]] - expect).abs() <= f32::EPSILON);
        assert!(v.data[[0, 1]].is_nan());
    }

    #[test]
    fn mismatched_grids_are_errors() {
        let a = raster(Array2::<u16>::ones((4, 4)), None);
        let mut b = a.clone();
        b.crs = Crs::epsg(32630);
        let e = ndvi(&a, &b).unwrap_err().to_string();
        assert!(e.contains("EPSG:32629 vs EPSG:32630"), "{e}");
        let b = raster(Array2::<u16>::ones((4, 5)), None);
        let e = ndvi(&a, &b).unwrap_err().to_string();
        assert!(e.contains("size 4x4 vs 5x4"), "{e}");
        let mut b = a.clone();
        b.transform = GeoTransform::north_up(199990.0, 2800020.0, 10.0);
        let e = ndvi(&a, &b).unwrap_err().to_string();
        assert!(e.contains("origin"), "{e}");
        let mut b = a.clone();
        b.transform = GeoTransform::north_up(199980.0, 2800020.0, 20.0);
        let e = ndvi(&a, &b).unwrap_err().to_string();
        assert!(e.contains("pixel size"), "{e}");
        let fa = ndvi(&a, &a).unwrap();
        let mut fb = fa.clone();
        fb.transform = GeoTransform::north_up(0.0, 0.0, 10.0);
        assert!(matches!(
            ndvi_diff(&fa, &fb),
            Err(NdviError::GridMismatch { .. })
        ));
    }

    #[test]
    fn diff_is_after_minus_before() {
        let b = raster(array![[0.2f32, f32::NAN, 0.5]], Some(NODATA));
        let a = raster(array![[0.5f32, 0.1, -9999.0]], Some(-9999.0));
        let d = ndvi_diff(&b, &a).unwrap();
        assert_eq!(d.data[[0, 0]], 0.5f32 - 0.2f32);
        assert!(d.data[[0, 1]].is_nan());
        assert!(d.data[[0, 2]].is_nan(), "after's own nodata value");
    }

    #[test]
    fn scl_mask_nearest_neighbour_factor_two() {
        let mut v = raster(Array2::<f32>::from_elem((4, 6), 0.3), Some(NODATA));
        v.data[[3, 5]] = NODATA;
        let mut scl = raster(array![[4u8, 8, 4], [3, 4, 10]], Some(0));
        scl.transform = GeoTransform::north_up(199980.0, 2800020.0, 20.0);
        let n = apply_scl_mask(&mut v, "ndvi", &scl, "scl", &DEFAULT_SCL_MASK).unwrap();
        // Class 8 covers cols 2-3 of rows 0-1; class 3 cols 0-1 of rows 2-3; class 10
        // cols 4-5 of rows 2-3 (one of them already nodata).
        assert_eq!(n, 4 + 4 + 3);
        for r in 0..4 {
            for c in 0..6 {
                let masked = matches!((r / 2, c / 2), (0, 1) | (1, 0) | (1, 2));
                assert_eq!(v.data[[r, c]].is_nan(), masked, "({r}, {c})");
            }
        }
    }

    #[test]
    fn scl_mapping_windows_and_offsets() {
        let band = Grid {
            width: 10980,
            height: 10980,
            transform: GeoTransform::north_up(199980.0, 2800020.0, 10.0),
            crs: Crs::epsg(32629),
        };
        let scl = Grid {
            width: 5490,
            height: 5490,
            transform: GeoTransform::north_up(199980.0, 2800020.0, 20.0),
            crs: Crs::epsg(32629),
        };
        let m = SclMapping::new("b", &band, "s", &scl).unwrap();
        assert_eq!(
            m,
            SclMapping {
                factor: 2,
                col_off: 0,
                row_off: 0
            }
        );
        assert_eq!(
            m.scl_window(&Window::new(10240, 1024, 740, 1024)),
            Window::new(5120, 512, 370, 512)
        );
        assert_eq!(
            m.scl_window(&Window::new(3, 5, 2, 2)),
            Window::new(1, 2, 2, 2)
        );
        // A band window mapped with its own transform.
        let w = band.window(&Window::new(1024, 2048, 1024, 1024));
        let mw = SclMapping::new("b", &w, "s", &scl).unwrap();
        assert_eq!((mw.col_off, mw.row_off), (1024, 2048));
        // Same grid: factor 1.
        assert_eq!(SclMapping::new("b", &band, "s", &band).unwrap().factor, 1);
        // 60 m / 20 m = 3 is fine, 15 m / 10 m is not.
        let mut s15 = scl.clone();
        s15.transform = GeoTransform::north_up(199980.0, 2800020.0, 15.0);
        s15.width = 7320;
        s15.height = 7320;
        let e = SclMapping::new("b", &band, "s", &s15)
            .unwrap_err()
            .to_string();
        assert!(e.contains("integer factor"), "{e}");
        // Misaligned origin.
        let mut sm = scl.clone();
        sm.transform = GeoTransform::north_up(199985.0, 2800020.0, 20.0);
        let e = SclMapping::new("b", &band, "s", &sm)
            .unwrap_err()
            .to_string();
        assert!(e.contains("whole number"), "{e}");
        // Too small.
        let mut ss = scl.clone();
        ss.width = 5000;
        let e = SclMapping::new("b", &band, "s", &ss)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not cover"), "{e}");
        // Other CRS.
        let mut sc = scl;
        sc.crs = Crs::epsg(32630);
        assert!(SclMapping::new("b", &band, "s", &sc).is_err());
    }

    #[test]
    fn vectorised_and_generic_kernels_agree() {
        // A pseudo-random u16 scene with nodata zeros and tiny sums.
        let mut x = 0x2545_f491_u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 4000) as u16
        };
        let big = Array2::from_shape_fn((64, 130), |_| next());
        let big2 = Array2::from_shape_fn((64, 130), |_| next());
        for offset in [0.0, -1000.0] {
            let opts = NdviOptions::sentinel2(offset);
            let fast = ndvi_array(big.view(), Some(0), big2.view(), None, &opts).unwrap();
            // Every other column: not contiguous, so the generic Zip path runs.
            let (r, n) = (
                big.slice(ndarray::s![.., ..;2]),
                big2.slice(ndarray::s![.., ..;2]),
            );
            let slow = ndvi_array(r, Some(0), n, None, &opts).unwrap();
            for ((i, j), v) in slow.indexed_iter() {
                let f = fast[[i, 2 * j]];
                assert!(
                    f.to_bits() == v.to_bits() || (f.is_nan() && v.is_nan()),
                    "{i},{j}"
                );
            }
            let d_fast = diff_array(fast.view(), None, fast.t().t(), None);
            assert!(d_fast.iter().all(|v| v.is_nan() || *v == 0.0));
            let d_slow = diff_array(slow.view(), None, fast.slice(ndarray::s![.., ..;2]), None);
            assert!(d_slow.iter().all(|v| v.is_nan() || *v == 0.0));
        }
    }

    #[test]
    fn statistics() {
        let r = raster(
            array![[1.0f32, 2.0, NODATA], [3.0, 4.0, -9999.0]],
            Some(-9999.0),
        );
        let s = stats(&r);
        assert_eq!(s.pixels, 6);
        assert_eq!(s.valid, 4);
        assert_eq!(s.min, Some(1.0));
        assert_eq!(s.max, Some(4.0));
        assert_eq!(s.mean, Some(2.5));
        assert!((s.std.unwrap() - 1.25f64.sqrt()).abs() < 1e-15);
        // Blocks combined pairwise agree with one two-pass sum over many blocks.
        let big = Array2::from_shape_fn((700, 500), |(r, c)| {
            ((r * 31 + c * 17) % 1000) as f32 / 997.0
        });
        let b = stats(&raster(big.clone(), None));
        let v: Vec<f64> = big.iter().map(|&x| x as f64).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        assert!((b.mean.unwrap() - mean).abs() < 1e-13 && (b.std.unwrap() - std).abs() < 1e-13);
        let t = stats(&raster(big.t().to_owned(), None));
        assert!((t.std.unwrap() - std).abs() < 1e-13);
        let empty = stats(&raster(array![[NODATA]], Some(NODATA)));
        assert_eq!((empty.valid, empty.mean), (0, None));
    }
}
