//! One-site ET0: typed daily and hourly inputs (with the alternative humidity, wind and
//! radiation data FAO-56 allows), validation, and every intermediate of the computation.

use crate::fao56::*;

/// Humidity data, in FAO-56's order of preference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Humidity {
    /// Actual vapour pressure ea (kPa), measured.
    Ea(f64),
    /// Dew point (°C), eq. 14.
    Tdew(f64),
    /// Daily maximum and minimum relative humidity (%), eq. 17.
    RhMaxMin { rhmax_pct: f64, rhmin_pct: f64 },
    /// Daily maximum relative humidity only (%), eq. 18.
    RhMax(f64),
    /// Daily mean relative humidity (%), eq. 19.
    RhMean(f64),
}

/// Wind data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wind {
    /// Wind speed at 2 m (m s⁻¹).
    U2(f64),
    /// Wind speed `speed` (m s⁻¹) measured `height_m` above ground, converted by eq. 47.
    Uz { speed: f64, height_m: f64 },
}

/// Solar radiation data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Solar {
    /// Measured global radiation Rs (MJ m⁻² day⁻¹).
    Rs(f64),
    /// Actual sunshine duration n (h); Rs by Ångström (eq. 35) with `a_s`, `b_s`.
    Sunshine { hours: f64, a_s: f64, b_s: f64 },
    /// Rs from the temperature range (eq. 50) with adjustment coefficient `krs`.
    TemperatureRange { krs: f64 },
}

/// Soil heat flux rule for a daily or monthly step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SoilHeat {
    /// G = 0 (daily steps, FAO-56 eq. 42).
    Zero,
    /// A given G (MJ m⁻² day⁻¹), e.g. from [`soil_heat_flux_monthly`].
    Given(f64),
}

/// Daily (or monthly-mean) inputs at one site.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DailyInput {
    /// Latitude (degrees, north positive).
    pub lat_deg: f64,
    /// Elevation above sea level (m).
    pub elev_m: f64,
    /// Day of year (1..=366).
    pub doy: u32,
    /// Daily maximum air temperature (°C).
    pub tmax_c: f64,
    /// Daily minimum air temperature (°C).
    pub tmin_c: f64,
    pub humidity: Humidity,
    pub wind: Wind,
    pub solar: Solar,
    pub soil_heat: SoilHeat,
    /// Surface albedo (0.23 for the grass reference).
    pub albedo: f64,
}

/// Every intermediate of a daily FAO-56 computation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DailyResult {
    /// Atmospheric pressure (kPa).
    pub pressure: f64,
    /// Psychrometric constant (kPa °C⁻¹).
    pub gamma: f64,
    /// Mean air temperature (°C).
    pub tmean: f64,
    /// Slope of the vapour pressure curve at Tmean (kPa °C⁻¹).
    pub delta: f64,
    /// Mean saturation vapour pressure (kPa).
    pub es: f64,
    /// Actual vapour pressure (kPa).
    pub ea: f64,
    /// Inverse relative Earth-Sun distance.
    pub dr: f64,
    /// Solar declination (rad).
    pub declination: f64,
    /// Sunset hour angle (rad).
    pub sunset_angle: f64,
    /// Extraterrestrial radiation (MJ m⁻² day⁻¹).
    pub ra: f64,
    /// Daylight hours (h).
    pub daylight_h: f64,
    /// Global solar radiation (MJ m⁻² day⁻¹).
    pub rs: f64,
    /// Clear-sky radiation (MJ m⁻² day⁻¹).
    pub rso: f64,
    /// Net shortwave radiation (MJ m⁻² day⁻¹).
    pub rns: f64,
    /// Net longwave radiation (MJ m⁻² day⁻¹).
    pub rnl: f64,
    /// Net radiation (MJ m⁻² day⁻¹).
    pub rn: f64,
    /// Soil heat flux (MJ m⁻² day⁻¹).
    pub g: f64,
    /// Wind speed at 2 m (m s⁻¹).
    pub u2: f64,
    /// Reference evapotranspiration (mm day⁻¹).
    pub et0: f64,
}

/// Why an input record cannot give an ET0.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    #[error("{field} = {value} is not a finite number")]
    NotFinite { field: &'static str, value: f64 },
    #[error("{field} = {value} is outside {min}..={max} {unit}")]
    OutOfRange {
        field: &'static str,
        value: f64,
        min: f64,
        max: f64,
        unit: &'static str,
    },
    #[error("tmax_c {tmax} is below tmin_c {tmin}")]
    TmaxBelowTmin { tmax: f64, tmin: f64 },
    #[error("the sun does not rise on day {doy} at latitude {lat}° (Ra = 0): {what}")]
    NoSun {
        doy: u32,
        lat: f64,
        what: &'static str,
    },
}

fn check(
    field: &'static str,
    value: f64,
    min: f64,
    max: f64,
    unit: &'static str,
) -> Result<f64, InputError> {
    if !value.is_finite() {
        return Err(InputError::NotFinite { field, value });
    }
    if value < min || value > max {
        return Err(InputError::OutOfRange {
            field,
            value,
            min,
            max,
            unit,
        });
    }
    Ok(value)
}

/// Plausibility limits (inclusive) of inputs; values outside are errors, not clamped.
pub mod limits {
    /// Air temperature, °C.
    pub const T: (f64, f64) = (-90.0, 60.0);
    /// Relative humidity, %; a little over 100 is tolerated (sensor overshoot) and clamped.
    pub const RH: (f64, f64) = (0.0, 105.0);
    /// Wind speed, m/s.
    pub const WIND: (f64, f64) = (0.0, 75.0);
    /// Wind sensor height, m (eq. 47 needs 67.8 z > 5.42 + 1).
    pub const WIND_HEIGHT: (f64, f64) = (0.1, 200.0);
    /// Elevation, m.
    pub const ELEV: (f64, f64) = (-450.0, 9000.0);
    /// Daily radiation, MJ m⁻² day⁻¹.
    pub const RS_DAILY: (f64, f64) = (0.0, 50.0);
    /// Hourly radiation, MJ m⁻² h⁻¹.
    pub const RS_HOURLY: (f64, f64) = (0.0, 5.0);
    /// Vapour pressure, kPa.
    pub const EA: (f64, f64) = (0.0, 20.0);
}

/// Actual vapour pressure from a humidity record (checked).
pub fn actual_vapour_pressure(h: Humidity, tmax_c: f64, tmin_c: f64) -> Result<f64, InputError> {
    let rh = |f, v| check(f, v, limits::RH.0, limits::RH.1, "%").map(|v: f64| v.min(100.0));
    Ok(match h {
        Humidity::Ea(ea) => check("ea_kpa", ea, limits::EA.0, limits::EA.1, "kPa")?,
        Humidity::Tdew(t) => ea_from_tdew(check("tdew_c", t, limits::T.0, limits::T.1, "°C")?),
        Humidity::RhMaxMin {
            rhmax_pct,
            rhmin_pct,
        } => {
            let hi = rh("rhmax_pct", rhmax_pct)?;
            let lo = rh("rhmin_pct", rhmin_pct)?;
            ea_from_rh_max_min(tmax_c, tmin_c, hi, lo)
        }
        Humidity::RhMax(v) => ea_from_rh_max(tmin_c, rh("rhmax_pct", v)?),
        Humidity::RhMean(v) => ea_from_rh_mean(tmax_c, tmin_c, rh("rhmean_pct", v)?),
    })
}

/// Wind at 2 m from a wind record (checked).
pub fn wind_2m(w: Wind) -> Result<f64, InputError> {
    Ok(match w {
        Wind::U2(u) => check("u2_m_s", u, limits::WIND.0, limits::WIND.1, "m/s")?,
        Wind::Uz { speed, height_m } => {
            let u = check("uz_m_s", speed, limits::WIND.0, limits::WIND.1, "m/s")?;
            let z = check(
                "z_wind_m",
                height_m,
                limits::WIND_HEIGHT.0,
                limits::WIND_HEIGHT.1,
                "m",
            )?;
            wind_speed_2m(u, z)
        }
    })
}

/// Computes daily ET0 (FAO-56 eq. 6) with all intermediates.
pub fn daily(input: &DailyInput) -> Result<DailyResult, InputError> {
    let lat_deg = check("lat_deg", input.lat_deg, -90.0, 90.0, "°")?;
    let z = check("elev_m", input.elev_m, limits::ELEV.0, limits::ELEV.1, "m")?;
    let doy = input.doy;
    if !(1..=366).contains(&doy) {
        return Err(InputError::OutOfRange {
            field: "doy",
            value: doy as f64,
            min: 1.0,
            max: 366.0,
            unit: "",
        });
    }
    let tmax = check("tmax_c", input.tmax_c, limits::T.0, limits::T.1, "°C")?;
    let tmin = check("tmin_c", input.tmin_c, limits::T.0, limits::T.1, "°C")?;
    if tmax < tmin {
        return Err(InputError::TmaxBelowTmin { tmax, tmin });
    }
    let albedo = check("albedo", input.albedo, 0.0, 1.0, "")?;
    let lat = lat_deg.to_radians();
    let j = doy as f64;

    let pressure = atmospheric_pressure(z);
    let gamma = psychrometric_constant(pressure);
    let tmean = 0.5 * (tmax + tmin);
    let delta = slope_vapour_pressure_curve(tmean);
    let es = mean_sat_vapour_pressure(tmax, tmin);
    let ea = actual_vapour_pressure(input.humidity, tmax, tmin)?;
    let dr = inverse_relative_distance(j);
    let declination = solar_declination(j);
    let sunset_angle = sunset_hour_angle(lat, declination);
    let ra = extraterrestrial_radiation(lat, j);
    let daylight_h = 24.0 / std::f64::consts::PI * sunset_angle;
    let rs = match input.solar {
        Solar::Rs(rs) => check(
            "rs_mj_m2",
            rs,
            limits::RS_DAILY.0,
            limits::RS_DAILY.1,
            "MJ/m²/day",
        )?,
        Solar::Sunshine { hours, a_s, b_s } => {
            let n = check("sunshine_h", hours, 0.0, 24.0, "h")?;
            if daylight_h <= 0.0 {
                return Err(InputError::NoSun {
                    doy,
                    lat: lat_deg,
                    what: "no Ångström Rs",
                });
            }
            if n > daylight_h + 0.05 {
                return Err(InputError::OutOfRange {
                    field: "sunshine_h",
                    value: n,
                    min: 0.0,
                    max: daylight_h,
                    unit: "h (daylight hours N)",
                });
            }
            rs_from_sunshine(n.min(daylight_h), daylight_h, ra, a_s, b_s)
        }
        Solar::TemperatureRange { krs } => rs_from_temperature_range(tmax, tmin, ra, krs),
    };
    let rso = clear_sky_radiation(ra, z);
    let rs_rso = relative_shortwave(rs, rso).ok_or(InputError::NoSun {
        doy,
        lat: lat_deg,
        what: "Rs/Rso undefined",
    })?;
    let rns = net_shortwave(rs, albedo);
    let rnl = net_longwave_daily(tmax, tmin, ea, rs_rso);
    let rn = rns - rnl;
    let g = match input.soil_heat {
        SoilHeat::Zero => 0.0,
        SoilHeat::Given(g) => check("g_mj_m2", g, -10.0, 10.0, "MJ/m²/day")?,
    };
    let u2 = wind_2m(input.wind)?;
    let et0 = penman_monteith_daily(delta, rn, g, gamma, tmean, u2, es, ea);
    Ok(DailyResult {
        pressure,
        gamma,
        tmean,
        delta,
        es,
        ea,
        dr,
        declination,
        sunset_angle,
        ra,
        daylight_h,
        rs,
        rso,
        rns,
        rnl,
        rn,
        g,
        u2,
        et0,
    })
}

/// Hourly (or shorter-period) inputs at one site, FAO-56 eq. 53.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HourlyInput {
    /// Latitude (degrees, north positive).
    pub lat_deg: f64,
    /// Longitude of the site, degrees **west** of Greenwich (FAO-56 Lm).
    pub lon_deg_west: f64,
    /// Longitude of the centre of the local time zone, degrees west of Greenwich (Lz; 0 for
    /// GMT, 345 for Central Europe).
    pub tz_lon_deg_west: f64,
    /// Elevation (m).
    pub elev_m: f64,
    /// Day of year.
    pub doy: u32,
    /// Standard clock time at the midpoint of the period (h), e.g. 14.5 for 14:00-15:00.
    pub t_mid_h: f64,
    /// Length of the period (h), 1 for hourly.
    pub period_h: f64,
    /// Mean air temperature of the period (°C).
    pub t_c: f64,
    /// Mean relative humidity of the period (%).
    pub rh_pct: f64,
    /// Wind speed at 2 m (m s⁻¹).
    pub u2: f64,
    /// Global radiation over the period (MJ m⁻² per period).
    pub rs: f64,
    /// Rs/Rso to use when the sun is down (FAO-56: the value 2-3 h before sunset; Example
    /// 19 uses 0.8). `None` means 0.8 at night.
    pub night_rs_rso: Option<f64>,
    pub albedo: f64,
}

/// Intermediates of an hourly computation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HourlyResult {
    pub pressure: f64,
    pub gamma: f64,
    pub delta: f64,
    /// e°(T_hr) (kPa).
    pub es: f64,
    /// ea = e°(T_hr)·RH/100 (kPa).
    pub ea: f64,
    /// Solar time angle at the midpoint (rad).
    pub omega: f64,
    /// Extraterrestrial radiation over the period (MJ m⁻² per period).
    pub ra: f64,
    pub rso: f64,
    pub rns: f64,
    pub rnl: f64,
    pub rn: f64,
    pub g: f64,
    /// True when the sun is above the horizon at the period's midpoint.
    pub daytime: bool,
    /// ET0 over the period (mm).
    pub et0: f64,
}

/// Computes hourly ET0 (FAO-56 eq. 53) with all intermediates.
pub fn hourly(input: &HourlyInput) -> Result<HourlyResult, InputError> {
    let lat = check("lat_deg", input.lat_deg, -90.0, 90.0, "°")?.to_radians();
    let z = check("elev_m", input.elev_m, limits::ELEV.0, limits::ELEV.1, "m")?;
    let t = check("t_c", input.t_c, limits::T.0, limits::T.1, "°C")?;
    let rh = check("rh_pct", input.rh_pct, limits::RH.0, limits::RH.1, "%")?.min(100.0);
    let u2 = check("u2_m_s", input.u2, limits::WIND.0, limits::WIND.1, "m/s")?;
    let rs = check(
        "rs_mj_m2",
        input.rs,
        limits::RS_HOURLY.0,
        limits::RS_HOURLY.1,
        "MJ/m²/h",
    )?;
    let period = check("period_h", input.period_h, 0.01, 24.0, "h")?;
    let j = input.doy as f64;
    let pressure = atmospheric_pressure(z);
    let gamma = psychrometric_constant(pressure);
    let delta = slope_vapour_pressure_curve(t);
    let es = sat_vapour_pressure(t);
    let ea = es * rh / 100.0;
    let omega = solar_time_angle(input.t_mid_h, input.tz_lon_deg_west, input.lon_deg_west, j);
    let half = std::f64::consts::PI * period / 24.0;
    let ra = extraterrestrial_radiation_period(lat, j, omega - half, omega + half);
    let ws = sunset_hour_angle(lat, solar_declination(j));
    let daytime = omega.abs() < ws;
    let rso = clear_sky_radiation(ra, z);
    let rs_rso = match relative_shortwave(rs, rso) {
        Some(r) if daytime => r,
        _ => input.night_rs_rso.unwrap_or(0.8),
    };
    let rns = net_shortwave(rs, input.albedo);
    let rnl = net_longwave_hourly(t, ea, rs_rso) * period;
    let rn = rns - rnl;
    let g = soil_heat_flux_hourly(rn, daytime);
    let et0 = penman_monteith_hourly(delta, rn, g, gamma, t, u2, es, ea);
    Ok(HourlyResult {
        pressure,
        gamma,
        delta,
        es,
        ea,
        omega,
        ra,
        rso,
        rns,
        rnl,
        rn,
        g,
        daytime,
        et0,
    })
}
