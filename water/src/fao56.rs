//! FAO-56 (Allen, Pereira, Raes & Smith 1998, *Crop evapotranspiration*, FAO Irrigation and
//! Drainage Paper 56, chapter 3) reference evapotranspiration: every helper equation and the
//! Penman-Monteith equation in its daily (eq. 6) and hourly (eq. 53) forms.
//!
//! Units follow FAO-56: temperatures °C, vapour pressures kPa, radiation MJ m⁻² day⁻¹ (daily)
//! or MJ m⁻² h⁻¹ (hourly), wind m s⁻¹, elevation m above sea level, latitude in radians
//! (north positive), ET0 in mm day⁻¹ or mm h⁻¹. Every function is plain `f64` arithmetic so
//! the raster kernels in [`crate::grid`] call exactly the same code.

use std::f64::consts::PI;

/// Solar constant Gsc, MJ m⁻² min⁻¹ (FAO-56 eq. 21).
pub const SOLAR_CONSTANT: f64 = 0.0820;
/// Stefan-Boltzmann constant for daily sums, MJ K⁻⁴ m⁻² day⁻¹ (FAO-56 eq. 39).
pub const SIGMA_DAILY: f64 = 4.903e-9;
/// Stefan-Boltzmann constant for hourly sums, MJ K⁻⁴ m⁻² h⁻¹ (FAO-56 eq. 39, hourly).
pub const SIGMA_HOURLY: f64 = 2.043e-10;
/// Albedo of the hypothetical grass reference crop (FAO-56 eq. 38).
pub const ALBEDO_GRASS: f64 = 0.23;
/// Ångström coefficients recommended when no calibration exists (FAO-56 eq. 35).
pub const ANGSTROM_AS: f64 = 0.25;
/// See [`ANGSTROM_AS`].
pub const ANGSTROM_BS: f64 = 0.50;
/// Latent heat of vaporisation used by FAO-56 (0.408 = 1/2.45), MJ kg⁻¹.
pub const LAMBDA: f64 = 2.45;

/// Atmospheric pressure P (kPa) at elevation `z_m` (m), FAO-56 eq. 7.
#[inline]
pub fn atmospheric_pressure(z_m: f64) -> f64 {
    101.3 * ((293.0 - 0.0065 * z_m) / 293.0).powf(5.26)
}

/// Psychrometric constant γ (kPa °C⁻¹) from pressure `p_kpa`, FAO-56 eq. 8.
#[inline]
pub fn psychrometric_constant(p_kpa: f64) -> f64 {
    0.665e-3 * p_kpa
}

/// Saturation vapour pressure e°(T) (kPa) at air temperature `t_c` (°C), FAO-56 eq. 11.
#[inline]
pub fn sat_vapour_pressure(t_c: f64) -> f64 {
    0.6108 * (17.27 * t_c / (t_c + 237.3)).exp()
}

/// Mean saturation vapour pressure es (kPa) from daily Tmax/Tmin (°C), FAO-56 eq. 12.
#[inline]
pub fn mean_sat_vapour_pressure(tmax_c: f64, tmin_c: f64) -> f64 {
    0.5 * (sat_vapour_pressure(tmax_c) + sat_vapour_pressure(tmin_c))
}

/// Slope Δ (kPa °C⁻¹) of the saturation vapour pressure curve at `t_c` (°C), FAO-56 eq. 13.
#[inline]
pub fn slope_vapour_pressure_curve(t_c: f64) -> f64 {
    let d = t_c + 237.3;
    4098.0 * sat_vapour_pressure(t_c) / (d * d)
}

/// Actual vapour pressure ea (kPa) from dew point `tdew_c` (°C), FAO-56 eq. 14.
#[inline]
pub fn ea_from_tdew(tdew_c: f64) -> f64 {
    sat_vapour_pressure(tdew_c)
}

/// ea (kPa) from daily RHmax/RHmin (%) and Tmax/Tmin (°C), FAO-56 eq. 17.
#[inline]
pub fn ea_from_rh_max_min(tmax_c: f64, tmin_c: f64, rhmax_pct: f64, rhmin_pct: f64) -> f64 {
    0.5 * (sat_vapour_pressure(tmin_c) * rhmax_pct / 100.0
        + sat_vapour_pressure(tmax_c) * rhmin_pct / 100.0)
}

/// ea (kPa) from RHmax (%) and Tmin (°C) alone, FAO-56 eq. 18.
#[inline]
pub fn ea_from_rh_max(tmin_c: f64, rhmax_pct: f64) -> f64 {
    sat_vapour_pressure(tmin_c) * rhmax_pct / 100.0
}

/// ea (kPa) from mean RH (%) and Tmax/Tmin (°C), FAO-56 eq. 19.
#[inline]
pub fn ea_from_rh_mean(tmax_c: f64, tmin_c: f64, rhmean_pct: f64) -> f64 {
    rhmean_pct / 100.0 * mean_sat_vapour_pressure(tmax_c, tmin_c)
}

/// Inverse relative Earth-Sun distance dr for day of year `doy` (1..=366), FAO-56 eq. 23.
#[inline]
pub fn inverse_relative_distance(doy: f64) -> f64 {
    1.0 + 0.033 * (2.0 * PI / 365.0 * doy).cos()
}

/// Solar declination δ (rad) for day of year `doy`, FAO-56 eq. 24.
#[inline]
pub fn solar_declination(doy: f64) -> f64 {
    0.409 * (2.0 * PI / 365.0 * doy - 1.39).sin()
}

/// Sunset hour angle ωs (rad) at latitude `lat_rad` for declination `decl_rad`, FAO-56
/// eq. 25; clamped to 0 (polar night) and π (midnight sun).
#[inline]
pub fn sunset_hour_angle(lat_rad: f64, decl_rad: f64) -> f64 {
    (-lat_rad.tan() * decl_rad.tan()).clamp(-1.0, 1.0).acos()
}

/// Daily extraterrestrial radiation Ra (MJ m⁻² day⁻¹) at latitude `lat_rad` on day `doy`,
/// FAO-56 eq. 21.
#[inline]
pub fn extraterrestrial_radiation(lat_rad: f64, doy: f64) -> f64 {
    let dr = inverse_relative_distance(doy);
    let decl = solar_declination(doy);
    let ws = sunset_hour_angle(lat_rad, decl);
    24.0 * 60.0 / PI
        * SOLAR_CONSTANT
        * dr
        * (ws * lat_rad.sin() * decl.sin() + lat_rad.cos() * decl.cos() * ws.sin())
}

/// Daylight hours N (h), FAO-56 eq. 34.
#[inline]
pub fn daylight_hours(lat_rad: f64, doy: f64) -> f64 {
    24.0 / PI * sunset_hour_angle(lat_rad, solar_declination(doy))
}

/// Seasonal correction for solar time Sc (h), FAO-56 eq. 32-33.
#[inline]
pub fn seasonal_correction(doy: f64) -> f64 {
    let b = 2.0 * PI * (doy - 81.0) / 364.0;
    0.1645 * (2.0 * b).sin() - 0.1255 * b.cos() - 0.025 * b.sin()
}

/// Solar time angle ω (rad) at the midpoint `t_mid_h` (standard clock time, h) of a period,
/// FAO-56 eq. 31. `lz_deg_west` is the longitude of the time zone centre and `lm_deg_west`
/// that of the site, both in degrees **west** of Greenwich (FAO-56 convention).
#[inline]
pub fn solar_time_angle(t_mid_h: f64, lz_deg_west: f64, lm_deg_west: f64, doy: f64) -> f64 {
    PI / 12.0
        * ((t_mid_h + 0.06667 * (lz_deg_west - lm_deg_west) + seasonal_correction(doy)) - 12.0)
}

/// Extraterrestrial radiation Ra (MJ m⁻² per period) for a period shorter than a day that
/// spans hour angles ω1..ω2 (rad), FAO-56 eq. 28; the angles are clipped to the daylight
/// interval −ωs..ωs, so a night period gives 0.
#[inline]
pub fn extraterrestrial_radiation_period(lat_rad: f64, doy: f64, omega1: f64, omega2: f64) -> f64 {
    let dr = inverse_relative_distance(doy);
    let decl = solar_declination(doy);
    let ws = sunset_hour_angle(lat_rad, decl);
    let w1 = omega1.clamp(-ws, ws);
    let w2 = omega2.clamp(-ws, ws);
    if w2 <= w1 {
        return 0.0;
    }
    (12.0 * 60.0 / PI
        * SOLAR_CONSTANT
        * dr
        * ((w2 - w1) * lat_rad.sin() * decl.sin()
            + lat_rad.cos() * decl.cos() * (w2.sin() - w1.sin())))
    .max(0.0)
}

/// Solar radiation Rs (MJ m⁻² day⁻¹) from actual sunshine hours `n_h`, daylight hours
/// `daylight_h` and Ra with the Ångström coefficients `a_s`, `b_s`, FAO-56 eq. 35.
#[inline]
pub fn rs_from_sunshine(n_h: f64, daylight_h: f64, ra: f64, a_s: f64, b_s: f64) -> f64 {
    (a_s + b_s * n_h / daylight_h) * ra
}

/// Solar radiation Rs (MJ m⁻² day⁻¹) from the temperature range (Hargreaves' radiation
/// formula), FAO-56 eq. 50; `krs` 0.16 interior, 0.19 coastal.
#[inline]
pub fn rs_from_temperature_range(tmax_c: f64, tmin_c: f64, ra: f64, krs: f64) -> f64 {
    krs * (tmax_c - tmin_c).max(0.0).sqrt() * ra
}

/// Clear-sky solar radiation Rso (same units as `ra`) from elevation, FAO-56 eq. 37.
#[inline]
pub fn clear_sky_radiation(ra: f64, z_m: f64) -> f64 {
    (0.75 + 2e-5 * z_m) * ra
}

/// Net shortwave radiation Rns = (1 − α) Rs, FAO-56 eq. 38.
#[inline]
pub fn net_shortwave(rs: f64, albedo: f64) -> f64 {
    (1.0 - albedo) * rs
}

/// Relative shortwave radiation Rs/Rso limited to 0..=1 (FAO-56 eq. 39 note); `None` when
/// Rso is not positive (no sun).
#[inline]
pub fn relative_shortwave(rs: f64, rso: f64) -> Option<f64> {
    (rso > 0.0).then(|| (rs / rso).clamp(0.0, 1.0))
}

/// Daily net longwave radiation Rnl (MJ m⁻² day⁻¹), FAO-56 eq. 39, with the relative
/// shortwave radiation `rs_rso` = Rs/Rso (≤ 1).
#[inline]
pub fn net_longwave_daily(tmax_c: f64, tmin_c: f64, ea_kpa: f64, rs_rso: f64) -> f64 {
    let tk4 = 0.5 * ((tmax_c + 273.16).powi(4) + (tmin_c + 273.16).powi(4));
    SIGMA_DAILY * tk4 * (0.34 - 0.14 * ea_kpa.max(0.0).sqrt()) * (1.35 * rs_rso - 0.35)
}

/// Hourly net longwave radiation Rnl (MJ m⁻² h⁻¹) at hourly mean air temperature `t_c`,
/// FAO-56 eq. 39 with σ per hour.
#[inline]
pub fn net_longwave_hourly(t_c: f64, ea_kpa: f64, rs_rso: f64) -> f64 {
    SIGMA_HOURLY
        * (t_c + 273.16).powi(4)
        * (0.34 - 0.14 * ea_kpa.max(0.0).sqrt())
        * (1.35 * rs_rso - 0.35)
}

/// Wind speed at 2 m (m s⁻¹) from speed `uz` measured `z_m` metres above ground, FAO-56
/// eq. 47.
#[inline]
pub fn wind_speed_2m(uz: f64, z_m: f64) -> f64 {
    uz * 4.87 / (67.8 * z_m - 5.42).ln()
}

/// Monthly soil heat flux G (MJ m⁻² day⁻¹) from the mean air temperatures of the previous
/// and next month (FAO-56 eq. 43), or of the previous and current month when the next is
/// unknown (eq. 44).
pub fn soil_heat_flux_monthly(t_prev_c: f64, t_current_c: f64, t_next_c: Option<f64>) -> f64 {
    match t_next_c {
        Some(next) => 0.07 * (next - t_prev_c),
        None => 0.14 * (t_current_c - t_prev_c),
    }
}

/// Hourly soil heat flux under grass: 0.1 Rn in daylight, 0.5 Rn at night (FAO-56 eq. 45-46).
#[inline]
pub fn soil_heat_flux_hourly(rn: f64, daytime: bool) -> f64 {
    if daytime { 0.1 * rn } else { 0.5 * rn }
}

/// FAO-56 Penman-Monteith reference ET0 (mm day⁻¹), eq. 6. `rn`, `g` in MJ m⁻² day⁻¹,
/// `t_c` the daily mean air temperature, `u2` wind at 2 m, `es`, `ea` in kPa.
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn penman_monteith_daily(
    delta: f64,
    rn: f64,
    g: f64,
    gamma: f64,
    t_c: f64,
    u2: f64,
    es: f64,
    ea: f64,
) -> f64 {
    (0.408 * delta * (rn - g) + gamma * 900.0 / (t_c + 273.0) * u2 * (es - ea))
        / (delta + gamma * (1.0 + 0.34 * u2))
}

/// FAO-56 hourly Penman-Monteith ET0 (mm h⁻¹), eq. 53; `rn`, `g` in MJ m⁻² h⁻¹, `t_c` the
/// hourly mean air temperature, `es` = e°(T_hr).
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn penman_monteith_hourly(
    delta: f64,
    rn: f64,
    g: f64,
    gamma: f64,
    t_c: f64,
    u2: f64,
    es: f64,
    ea: f64,
) -> f64 {
    (0.408 * delta * (rn - g) + gamma * 37.0 / (t_c + 273.0) * u2 * (es - ea))
        / (delta + gamma * (1.0 + 0.34 * u2))
}

/// Hargreaves ET0 (mm day⁻¹) from temperatures and Ra, FAO-56 eq. 52 (the fallback of
/// chapter 3 when only temperatures are known).
#[inline]
pub fn hargreaves_et0(tmax_c: f64, tmin_c: f64, ra: f64) -> f64 {
    0.0023 * (0.5 * (tmax_c + tmin_c) + 17.8) * (tmax_c - tmin_c).max(0.0).sqrt() * 0.408 * ra
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polar_sunset_angle_is_clamped() {
        // 80°N in December: polar night, ωs = 0 and Ra = 0.
        let lat = 80f64.to_radians();
        assert_eq!(sunset_hour_angle(lat, solar_declination(355.0)), 0.0);
        assert!(extraterrestrial_radiation(lat, 355.0).abs() < 1e-12);
        assert!((sunset_hour_angle(lat, solar_declination(172.0)) - PI).abs() < 1e-12);
    }

    #[test]
    fn period_ra_sums_to_daily_ra() {
        // Integrating eq. 28 over 24 one-hour periods gives eq. 21.
        let lat = 38f64.to_radians();
        let doy = 135.0;
        let mut sum = 0.0;
        for h in 0..24 {
            let w = PI / 12.0 * ((h as f64 + 0.5) - 12.0);
            sum += extraterrestrial_radiation_period(lat, doy, w - PI / 24.0, w + PI / 24.0);
        }
        assert!((sum - extraterrestrial_radiation(lat, doy)).abs() < 1e-9);
    }
}
