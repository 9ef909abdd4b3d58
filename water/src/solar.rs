//! Daily solar radiation over terrain.
//!
//! Per pixel:
//! - Ra, the daily extraterrestrial radiation on a horizontal surface (FAO-56 eq. 21) at the
//!   pixel's latitude;
//! - Ra on the pixel's inclined surface: the extraterrestrial beam `cos θ` integrated over the
//!   hours the sun is above both the horizon and the plane of the slope, in closed form
//!   (Duffie & Beckman, *Solar Engineering of Thermal Processes*, eq. 1.6.2 for cos θ;
//!   integration limits as in Klein 1977 but for any azimuth);
//! - the horizontal global radiation Rs (from the stations, see [`crate::workflow`]) is split
//!   into beam and diffuse with the Erbs, Klein & Duffie (1982) daily diffuse-fraction
//!   correlation; the beam is scaled by Rb = Ra(inclined)/Ra(horizontal), the diffuse by the
//!   sky-view factor ((1 + cos β)/2, isotropic sky, or the Dozier & Frew 1990 form from the
//!   horizon angles), and the ground-reflected part (albedo 0.2) is added.
//!
//! Optional horizon shading: horizon elevation angles in `n` azimuths from the DTM (geometric
//! ray marching up to a maximum distance); the beam is then integrated numerically in
//! 5-minute steps, counting only the steps when the sun is above the local horizon.
//! Slopes and aspects use Horn's 3×3 method (as `gdaldem`), replicating edges.

use std::f64::consts::PI;

use ndarray::{Array2, Array3, ArrayView2, Axis, Zip};
use rayon::prelude::*;

use crate::fao56::{SOLAR_CONSTANT, inverse_relative_distance, solar_declination};

/// Ground albedo for the reflected part on slopes.
pub const GROUND_ALBEDO: f64 = 0.2;

/// Unit normal vectors of the terrain per pixel in (east, north, up) components.
#[derive(Debug, Clone)]
pub struct Normals {
    pub east: Array2<f32>,
    pub north: Array2<f32>,
    pub up: Array2<f32>,
}

impl Normals {
    /// Slope (degrees) of each pixel.
    pub fn slope_deg(&self) -> Array2<f32> {
        self.up
            .mapv(|u| (u.clamp(-1.0, 1.0) as f64).acos().to_degrees() as f32)
    }

    /// Aspect (degrees clockwise from north of the downslope direction; NaN when flat).
    pub fn aspect_deg(&self) -> Array2<f32> {
        let mut a = Array2::<f32>::zeros(self.up.dim());
        Zip::from(&mut a)
            .and(&self.east)
            .and(&self.north)
            .for_each(|a, &e, &n| {
                *a = if e == 0.0 && n == 0.0 {
                    f32::NAN
                } else {
                    ((e as f64).atan2(n as f64).to_degrees().rem_euclid(360.0)) as f32
                };
            });
        a
    }
}

/// Horn's method normals of `dem` (`[row, col]`, north-up) with pixel sizes `xres`, `yres`
/// (m). NaN cells are treated as missing: a missing neighbour takes the centre's value, edges
/// replicate (gdaldem `-compute_edges`); a NaN centre gives a NaN normal.
pub fn normals(dem: ArrayView2<'_, f32>, xres: f64, yres: f64) -> Normals {
    let (rows, cols) = dem.dim();
    let mut east = Array2::<f32>::zeros((rows, cols));
    let mut north = Array2::<f32>::zeros((rows, cols));
    let mut up = Array2::<f32>::zeros((rows, cols));
    let ri = rows as isize;
    let ci = cols as isize;
    // The value at (r, c), or None outside the grid or at a NaN.
    let get = |r: isize, c: isize| -> Option<f64> {
        if r < 0 || c < 0 || r >= ri || c >= ci {
            return None;
        }
        let v = dem[[r as usize, c as usize]];
        (!v.is_nan()).then_some(v as f64)
    };
    east.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(north.axis_iter_mut(Axis(0)).into_par_iter())
        .zip(up.axis_iter_mut(Axis(0)).into_par_iter())
        .enumerate()
        .for_each(|(r, ((mut er, mut nr), mut ur))| {
            let r = r as isize;
            for c in 0..cols {
                let z = dem[[r as usize, c]];
                if z.is_nan() {
                    er[c] = f32::NAN;
                    nr[c] = f32::NAN;
                    ur[c] = f32::NAN;
                    continue;
                }
                let z = z as f64;
                let cc = c as isize;
                // 3×3 window a b c / d e f / g h i; a missing cell is extrapolated from its
                // opposite through the centre (2e − opposite, as gdaldem -compute_edges), else
                // along its column or row, else it takes the centre's value.
                let mut w = [0.0f64; 9];
                // Fast path: an interior pixel with nine valid cells.
                if r > 0 && r + 1 < ri && cc > 0 && cc + 1 < ci {
                    let (ru, cu) = (r as usize, c);
                    let mut ok = true;
                    for (k, wk) in w.iter_mut().enumerate() {
                        let v = dem[[ru + k / 3 - 1, cu + k % 3 - 1]];
                        ok &= !v.is_nan();
                        *wk = v as f64;
                    }
                    if ok {
                        let [a, b, c3, d, _, f, g, h, i] = w;
                        let dzdx = ((c3 + 2.0 * f + i) - (a + 2.0 * d + g)) / (8.0 * xres);
                        let dzdn = -((g + 2.0 * h + i) - (a + 2.0 * b + c3)) / (8.0 * yres);
                        let norm = (dzdx * dzdx + dzdn * dzdn + 1.0).sqrt();
                        er[c] = (-dzdx / norm) as f32;
                        nr[c] = (-dzdn / norm) as f32;
                        ur[c] = (1.0 / norm) as f32;
                        continue;
                    }
                }
                let mut have = [None; 9];
                for (k, hv) in have.iter_mut().enumerate() {
                    *hv = get(r + (k / 3) as isize - 1, cc + (k % 3) as isize - 1);
                }
                for k in 0..9 {
                    let (dr, dc) = ((k / 3) as isize - 1, (k % 3) as isize - 1);
                    let vertical = || Some(2.0 * get(r, cc + dc)? - get(r - dr, cc + dc)?);
                    let horizontal = || Some(2.0 * get(r + dr, cc)? - get(r + dr, cc - dc)?);
                    w[k] = have[k]
                        .or_else(|| have[8 - k].map(|o| 2.0 * z - o))
                        .or_else(|| if dr != 0 { vertical() } else { None })
                        .or_else(|| if dc != 0 { horizontal() } else { None })
                        .unwrap_or(z);
                }
                let [a, b, cc_, d, _, f, g, h, i] = w;
                let cc = cc_;
                // dz/d(east) and dz/d(south) (rows grow southwards).
                let dzdx = ((cc + 2.0 * f + i) - (a + 2.0 * d + g)) / (8.0 * xres);
                let dzds = ((g + 2.0 * h + i) - (a + 2.0 * b + cc)) / (8.0 * yres);
                let dzdn = -dzds;
                let norm = (dzdx * dzdx + dzdn * dzdn + 1.0).sqrt();
                er[c] = (-dzdx / norm) as f32;
                nr[c] = (-dzdn / norm) as f32;
                ur[c] = (1.0 / norm) as f32;
            }
        });
    Normals { east, north, up }
}

/// Daily extraterrestrial radiation (MJ m⁻² day⁻¹) on a surface with unit normal
/// (`ne`, `nn`, `nu`) (east, north, up) at latitude `lat` (rad), for a day with declination
/// `decl` (rad) and inverse relative distance `dr`: ∫ max(0, cos θ) over the daylight hour
/// angles, in closed form. With `nu = 1` this is FAO-56 eq. 21.
#[inline]
pub fn extraterrestrial_on_surface(lat: f64, decl: f64, dr: f64, ne: f64, nn: f64, nu: f64) -> f64 {
    let (sp, cp) = lat.sin_cos();
    let (sd, cd) = decl.sin_cos();
    let ws = (-(sp / cp) * (sd / cd)).clamp(-1.0, 1.0).acos();
    on_surface(sp, cp, sd, cd, ws, dr, ne, nn, nu)
}

/// [`extraterrestrial_on_surface`] with sin/cos of latitude and declination and the sunset
/// hour angle `ws` precomputed.
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn on_surface(
    sp: f64,
    cp: f64,
    sd: f64,
    cd: f64,
    ws: f64,
    dr: f64,
    ne: f64,
    nn: f64,
    nu: f64,
) -> f64 {
    // cos θ(ω) = a + b cos ω + c sin ω.
    let a = sd * (nn * cp + nu * sp);
    let b = cd * (nu * cp - nn * sp);
    let c = -cd * ne;
    let integral = positive_integral(a, b, c, -ws, ws);
    12.0 * 60.0 / PI * SOLAR_CONSTANT * dr * integral
}

/// ∫ max(0, a + b cos ω + c sin ω) dω over [lo, hi] (hi − lo ≤ 2π).
#[inline]
fn positive_integral(a: f64, b: f64, c: f64, lo: f64, hi: f64) -> f64 {
    if hi <= lo {
        return 0.0;
    }
    let prim = |w: f64| a * w + b * w.sin() - c * w.cos();
    let r = (b * b + c * c).sqrt();
    if r <= 1e-12 * a.abs().max(1e-300) || r == 0.0 {
        return if a > 0.0 { a * (hi - lo) } else { 0.0 };
    }
    let k = -a / r;
    if k <= -1.0 {
        return prim(hi) - prim(lo);
    }
    if k >= 1.0 {
        return 0.0;
    }
    let psi = c.atan2(b);
    let alpha = k.acos();
    let mut sum = 0.0;
    for shift in [-2.0 * PI, 0.0, 2.0 * PI] {
        let s = (psi - alpha + shift).max(lo);
        let e = (psi + alpha + shift).min(hi);
        if e > s {
            sum += prim(e) - prim(s);
        }
    }
    sum.max(0.0)
}

/// Daily diffuse fraction Hd/H from the clearness index KT = H/H0 and the sunset hour angle
/// `ws` (rad): Erbs, Klein & Duffie (1982).
#[inline]
pub fn erbs_diffuse_fraction(kt: f64, ws: f64) -> f64 {
    let kt = kt.clamp(0.0, 1.0);
    let kd = if ws <= 81.4f64.to_radians() {
        if kt < 0.715 {
            1.0 - 0.2727 * kt + 2.4495 * kt * kt - 11.9514 * kt.powi(3) + 9.3879 * kt.powi(4)
        } else {
            0.143
        }
    } else if kt < 0.722 {
        1.0 + 0.2832 * kt - 2.5557 * kt * kt + 0.8448 * kt.powi(3)
    } else {
        0.175
    };
    kd.clamp(0.0, 1.0)
}

/// Horizon elevation angles of every pixel (stored as tangents) in `dirs` azimuths
/// (direction `k` at `k·360°/dirs` clockwise from north).
#[derive(Debug, Clone)]
pub struct Horizon {
    /// `[dir, row, col]`: tan of the horizon elevation angle (may be negative).
    pub tan: Array3<f32>,
}

impl Horizon {
    /// Number of azimuth directions.
    pub fn dirs(&self) -> usize {
        self.tan.dim().0
    }
}

/// Computes horizon angles from `dem` (NaN = missing) for `dirs` azimuths, marching in steps
/// that start at one pixel and grow by 15% up to `max_dist` metres. The result is for
/// the pixels of `dem[inner]` where `inner = (row_off, col_off, rows, cols)`; the rest of
/// `dem` (the halo) is terrain seen but not computed.
pub fn horizon(
    dem: ArrayView2<'_, f32>,
    xres: f64,
    yres: f64,
    dirs: usize,
    max_dist: f64,
    inner: (usize, usize, usize, usize),
) -> Horizon {
    let (r0, c0, rows, cols) = inner;
    let (hr, hc) = dem.dim();
    let mut tan = Array3::<f32>::from_elem((dirs, rows, cols), f32::NEG_INFINITY);
    let px = xres.min(yres);
    let mut steps = Vec::new();
    let mut d = px;
    while d <= max_dist {
        steps.push(d);
        d = (d * 1.15).max(d + px);
    }
    for (k, mut plane) in tan.axis_iter_mut(Axis(0)).enumerate() {
        let az = 2.0 * PI * k as f64 / dirs as f64;
        let (se, ce) = az.sin_cos();
        plane
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(r, mut row)| {
                for c in 0..cols {
                    let rr = r0 + r;
                    let cc = c0 + c;
                    let z0 = dem[[rr, cc]];
                    if z0.is_nan() {
                        row[c] = f32::NAN;
                        continue;
                    }
                    let mut best = f64::NEG_INFINITY;
                    for &dist in &steps {
                        let x = cc as f64 + se * dist / xres;
                        let y = rr as f64 - ce * dist / yres;
                        let (xi, yi) = (x.round(), y.round());
                        if xi < 0.0 || yi < 0.0 || xi >= hc as f64 || yi >= hr as f64 {
                            break;
                        }
                        let z = dem[[yi as usize, xi as usize]];
                        if z.is_nan() {
                            continue;
                        }
                        let t = (z as f64 - z0 as f64) / dist;
                        if t > best {
                            best = t;
                        }
                    }
                    row[c] = best as f32;
                }
            });
    }
    Horizon { tan }
}

/// Per-pixel radiation of one day over terrain.
#[derive(Debug, Clone)]
pub struct TerrainRadiation {
    /// Extraterrestrial radiation on the horizontal, FAO-56 eq. 21 (MJ m⁻² day⁻¹).
    pub ra: Array2<f32>,
    /// Extraterrestrial radiation on the inclined (and, with horizons, shaded) surface.
    pub ra_surface: Array2<f32>,
    /// Global radiation received by the inclined surface (MJ m⁻² day⁻¹).
    pub rs: Array2<f32>,
}

/// Inputs of [`terrain_radiation`]; all grids have the window's shape.
pub struct TerrainInputs<'a> {
    /// Day of year.
    pub doy: u32,
    /// Latitude per pixel (rad).
    pub lat: ArrayView2<'a, f32>,
    /// FAO-56 eq. 21 Ra per pixel (MJ m⁻² day⁻¹) and sunset hour angle (rad), both functions
    /// of the latitude (see [`crate::workflow`], which interpolates them with it).
    pub ra: ArrayView2<'a, f32>,
    pub ws: ArrayView2<'a, f32>,
    pub normals: &'a Normals,
    /// Horizontal global radiation Rs (MJ m⁻² day⁻¹), NaN = unknown.
    pub rs_horizontal: ArrayView2<'a, f32>,
    /// Horizon angles for shading, `None` for none.
    pub horizon: Option<&'a Horizon>,
    /// Latitude (rad) of the sun path used with horizons (one per tile, so that every window
    /// of a tile uses the same sun positions).
    pub sun_path_lat: f64,
}

/// Distributes the horizontal global radiation over the terrain (see the module docs).
pub fn terrain_radiation(inp: &TerrainInputs<'_>) -> TerrainRadiation {
    let dim = inp.lat.dim();
    let doy = inp.doy as f64;
    let decl = solar_declination(doy);
    let (sd, cd) = decl.sin_cos();
    let dr = inverse_relative_distance(doy);
    let mut ra = Array2::<f32>::zeros(dim);
    let mut ra_s = Array2::<f32>::zeros(dim);
    let mut rs = Array2::<f32>::zeros(dim);
    // With horizons: sun positions every 5 minutes at the tile's latitude.
    let sun = inp
        .horizon
        .map(|h| SunPath::new(inp.sun_path_lat, decl, h.dirs()));
    let n = inp.normals;
    ra.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(ra_s.axis_iter_mut(Axis(0)).into_par_iter())
        .zip(rs.axis_iter_mut(Axis(0)).into_par_iter())
        .enumerate()
        .for_each(|(r, ((mut ra_r, mut ras_r), mut rs_r))| {
            for c in 0..dim.1 {
                let lat = inp.lat[[r, c]] as f64;
                let (ne, nn, nu) = (
                    n.east[[r, c]] as f64,
                    n.north[[r, c]] as f64,
                    n.up[[r, c]] as f64,
                );
                let h0f = inp.ra[[r, c]];
                let h0 = h0f as f64;
                ra_r[c] = h0f;
                if nu.is_nan() || lat.is_nan() {
                    ras_r[c] = f32::NAN;
                    rs_r[c] = f32::NAN;
                    continue;
                }
                let ws = inp.ws[[r, c]] as f64;
                let (rb, svf) = match (&sun, inp.horizon) {
                    (Some(path), Some(hz)) => path.shaded_ratio(ne, nn, nu, hz, r, c),
                    _ => {
                        let h0t = if nu >= 1.0 {
                            h0
                        } else {
                            let (sp, cp) = lat.sin_cos();
                            on_surface(sp, cp, sd, cd, ws, dr, ne, nn, nu)
                        };
                        (if h0 > 0.0 { h0t / h0 } else { 0.0 }, 0.5 * (1.0 + nu))
                    }
                };
                ras_r[c] = (rb * h0) as f32;
                let rsh = inp.rs_horizontal[[r, c]] as f64;
                let kd = if h0 > 0.0 {
                    erbs_diffuse_fraction(rsh / h0, ws)
                } else {
                    1.0
                };
                let beam = rsh * (1.0 - kd);
                let diffuse = rsh * kd;
                let reflected = rsh * GROUND_ALBEDO * 0.5 * (1.0 - nu);
                rs_r[c] = (beam * rb + diffuse * svf + reflected) as f32;
            }
        });
    TerrainRadiation {
        ra,
        ra_surface: ra_s,
        rs,
    }
}

/// Sun positions through one day for the numeric (shaded) integration.
struct SunPath {
    /// (east, north, up, tan elevation, direction index, horizontal weight) per step.
    steps: Vec<(f64, f64, f64, f64, usize, f64)>,
    /// Σ max(0, up) over the steps (horizontal reference).
    horizontal: f64,
    dirs: usize,
}

impl SunPath {
    fn new(lat: f64, decl: f64, dirs: usize) -> Self {
        let (sp, cp) = lat.sin_cos();
        let (sd, cd) = decl.sin_cos();
        let step = 2.0 * PI / (24.0 * 12.0);
        let mut steps = Vec::new();
        let mut horizontal = 0.0;
        for i in 0..(24 * 12) {
            let w = -PI + (i as f64 + 0.5) * step;
            let up = sp * sd + cp * cd * w.cos();
            if up <= 0.0 {
                continue;
            }
            let east = -cd * w.sin();
            let north = cp * sd - sp * cd * w.cos();
            let horiz = (east * east + north * north).sqrt();
            let az = east.atan2(north).rem_euclid(2.0 * PI);
            let k = ((az / (2.0 * PI) * dirs as f64).round() as usize) % dirs;
            steps.push((east, north, up, up / horiz.max(1e-12), k, step));
            horizontal += up * step;
        }
        SunPath {
            steps,
            horizontal,
            dirs,
        }
    }

    /// (Rb, sky-view factor) of one pixel with horizons.
    fn shaded_ratio(
        &self,
        ne: f64,
        nn: f64,
        nu: f64,
        hz: &Horizon,
        r: usize,
        c: usize,
    ) -> (f64, f64) {
        let mut sum = 0.0;
        for &(e, n, u, tan_el, k, w) in &self.steps {
            let cos_t = ne * e + nn * n + nu * u;
            if cos_t > 0.0 && tan_el >= hz.tan[[k, r, c]] as f64 {
                sum += cos_t * w;
            }
        }
        let rb = if self.horizontal > 0.0 {
            sum / self.horizontal
        } else {
            0.0
        };
        // Dozier & Frew (1990) sky-view factor with horizon zenith angles limited by the plane.
        let slope = nu.clamp(-1.0, 1.0).acos();
        let aspect = ne.atan2(nn);
        let mut svf = 0.0;
        for k in 0..self.dirs {
            let phi = 2.0 * PI * k as f64 / self.dirs as f64;
            let plane = (-(slope.tan()) * (phi - aspect).cos()).atan();
            let el = (hz.tan[[k, r, c]] as f64).atan().max(plane);
            let hzen = PI / 2.0 - el;
            svf += slope.cos() * hzen.sin().powi(2)
                + slope.sin() * (phi - aspect).cos() * (hzen - hzen.sin() * hzen.cos());
        }
        (rb, (svf / self.dirs as f64).clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::fao56::extraterrestrial_radiation;

    #[test]
    fn flat_surface_is_eq_21() {
        for lat in [-60.0f64, -20.0, 0.0, 38.0, 50.8, 66.0] {
            for doy in [1.0, 80.0, 172.0, 246.0, 355.0] {
                let l = lat.to_radians();
                let ours = extraterrestrial_on_surface(
                    l,
                    solar_declination(doy),
                    inverse_relative_distance(doy),
                    0.0,
                    0.0,
                    1.0,
                );
                assert!(
                    (ours - extraterrestrial_radiation(l, doy)).abs() < 1e-9,
                    "{lat} {doy}"
                );
            }
        }
    }

    #[test]
    fn closed_form_matches_numeric_integration() {
        let lat = 38f64.to_radians();
        for doy in [15.0, 172.0] {
            let decl = solar_declination(doy);
            let dr = inverse_relative_distance(doy);
            for (slope, aspect) in [
                (30.0f64, 180.0f64),
                (30.0, 0.0),
                (60.0, 90.0),
                (45.0, 300.0),
                (80.0, 10.0),
            ] {
                let (b, a) = (slope.to_radians(), aspect.to_radians());
                let (ne, nn, nu) = (b.sin() * a.sin(), b.sin() * a.cos(), b.cos());
                let closed = extraterrestrial_on_surface(lat, decl, dr, ne, nn, nu);
                let n = 200_000;
                let mut num = 0.0;
                for i in 0..n {
                    let w = -PI + (i as f64 + 0.5) * 2.0 * PI / n as f64;
                    let (sp, cp, sd, cd) = (lat.sin(), lat.cos(), decl.sin(), decl.cos());
                    let up = sp * sd + cp * cd * w.cos();
                    if up <= 0.0 {
                        continue;
                    }
                    let e = -cd * w.sin();
                    let no = cp * sd - sp * cd * w.cos();
                    num += (ne * e + nn * no + nu * up).max(0.0) * 2.0 * PI / n as f64;
                }
                let num = 12.0 * 60.0 / PI * SOLAR_CONSTANT * dr * num;
                assert!(
                    (closed - num).abs() < 1e-3,
                    "{doy} {slope} {aspect}: {closed} vs {num}"
                );
            }
        }
    }

    #[test]
    fn horn_normals_of_a_plane() {
        // A plane rising to the north by 1 m per 10 m: slope atan(0.1), aspect south (180°).
        let dem = Array2::from_shape_fn((5, 6), |(r, _)| {
            (100.0 - 10.0 * r as f64 * 0.1 * 10.0 / 10.0) as f32
        });
        let n = normals(dem.view(), 10.0, 10.0);
        let s = n.slope_deg();
        let a = n.aspect_deg();
        for v in s.iter() {
            assert!((*v as f64 - 0.1f64.atan().to_degrees()).abs() < 1e-4, "{v}");
        }
        for v in a.iter() {
            assert!((*v - 180.0).abs() < 1e-3, "{v}");
        }
    }
}
