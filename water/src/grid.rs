//! FAO-56 daily Penman-Monteith over rasters: every input is a per-pixel grid or a constant,
//! rows are processed in parallel with rayon, each pixel with FAO-56's equations in float32
//! (checked against [`crate::et0::daily`]). Missing inputs (NaN) give NaN.

use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

use crate::fao56::*;

/// A raster input: one value everywhere, or one value per pixel (`[row, col]`).
#[derive(Debug, Clone, Copy)]
pub enum Field<'a> {
    Const(f32),
    Grid(ArrayView2<'a, f32>),
}

impl<'a> From<f32> for Field<'a> {
    fn from(v: f32) -> Self {
        Field::Const(v)
    }
}

impl<'a> From<&'a Array2<f32>> for Field<'a> {
    fn from(a: &'a Array2<f32>) -> Self {
        Field::Grid(a.view())
    }
}

impl<'a> From<ArrayView2<'a, f32>> for Field<'a> {
    fn from(a: ArrayView2<'a, f32>) -> Self {
        Field::Grid(a)
    }
}

impl<'a> Field<'a> {
    fn shape(&self) -> Option<(usize, usize)> {
        match self {
            Field::Const(_) => None,
            Field::Grid(a) => Some(a.dim()),
        }
    }
    #[inline]
    fn row(self, i: usize) -> Row<'a> {
        match self {
            Field::Const(v) => Row::Const(v as f64),
            Field::Grid(a) => Row::Row(a.index_axis_move(Axis(0), i)),
        }
    }
}

enum Row<'a> {
    Const(f64),
    Row(ArrayView1<'a, f32>),
}

impl Row<'_> {
    #[inline(always)]
    fn at(&self, j: usize) -> f64 {
        match self {
            Row::Const(v) => *v,
            Row::Row(r) => r[j] as f64,
        }
    }
}

/// Humidity rasters.
#[derive(Debug, Clone, Copy)]
pub enum GridHumidity<'a> {
    /// Actual vapour pressure (kPa).
    Ea(Field<'a>),
    /// Dew point (°C).
    Tdew(Field<'a>),
    /// RHmax and RHmin (%).
    RhMaxMin(Field<'a>, Field<'a>),
    /// Mean RH (%).
    RhMean(Field<'a>),
}

/// How Ra (and so Rso) is obtained per pixel.
#[derive(Debug, Clone, Copy)]
pub enum GridRa<'a> {
    /// Latitude (rad) per pixel; Ra from FAO-56 eq. 21 for the day.
    Latitude(Field<'a>),
    /// Ra given (MJ m⁻² day⁻¹), e.g. from [`crate::solar`].
    Given(Field<'a>),
}

/// One day's inputs over a raster.
#[derive(Debug, Clone, Copy)]
pub struct DailyGrid<'a> {
    /// Day of year.
    pub doy: u32,
    /// Tmax, Tmin (°C).
    pub tmax: Field<'a>,
    pub tmin: Field<'a>,
    /// Mean temperature (°C) for Δ and the PM temperature term; `None` = (Tmax+Tmin)/2
    /// (FAO-56); pyet lets the caller pass its own.
    pub tmean: Option<Field<'a>>,
    pub humidity: GridHumidity<'a>,
    /// Wind at 2 m (m s⁻¹).
    pub u2: Field<'a>,
    /// Global radiation received by the surface (MJ m⁻² day⁻¹); on terrain, the radiation on
    /// the inclined surface.
    pub rs: Field<'a>,
    /// Relative shortwave radiation Rs/Rso for the longwave term; `None` = Rs/Rso from `rs`.
    /// On terrain, pass the horizontal (cloudiness) ratio so that slopes do not change Rnl.
    pub rs_rso: Option<Field<'a>>,
    pub ra: GridRa<'a>,
    /// Elevation (m).
    pub elev: Field<'a>,
    /// Albedo (0.23 grass reference).
    pub albedo: f32,
}

/// Error for mismatched raster shapes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("input rasters have different shapes: {0:?}")]
pub struct ShapeMismatch(pub Vec<(usize, usize)>);

impl<'a> DailyGrid<'a> {
    fn fields(&self) -> Vec<Field<'a>> {
        let mut v = vec![self.tmax, self.tmin, self.u2, self.rs, self.elev];
        v.extend(self.tmean);
        v.extend(self.rs_rso);
        match self.humidity {
            GridHumidity::Ea(a) | GridHumidity::Tdew(a) | GridHumidity::RhMean(a) => v.push(a),
            GridHumidity::RhMaxMin(a, b) => v.extend([a, b]),
        }
        match self.ra {
            GridRa::Latitude(a) | GridRa::Given(a) => v.push(a),
        }
        v
    }

    /// The common shape of the grid inputs (1×1 when all are constants).
    pub fn shape(&self) -> Result<(usize, usize), ShapeMismatch> {
        let shapes: Vec<(usize, usize)> = self.fields().iter().filter_map(Field::shape).collect();
        match shapes.first() {
            None => Ok((1, 1)),
            Some(&s) if shapes.iter().all(|&t| t == s) => Ok(s),
            Some(_) => Err(ShapeMismatch(shapes)),
        }
    }
}

#[inline(always)]
fn e0(t: f32) -> f32 {
    0.6108 * (17.27 * t / (t + 237.3)).exp()
}

/// Daily ET0 (mm day⁻¹, FAO-56 eq. 6, G = 0) per pixel, as float32; NaN where an input is
/// NaN or the pixel has no sun.
///
/// The per-pixel arithmetic is FAO-56's (eqs. 7, 8, 11-13, 17-19, 21, 37-40) in float32,
/// which the tests hold to the float64 scalar code of [`crate::et0::daily`] within 1e-4 mm;
/// Ra from latitude is recomputed only when the latitude changes along a row.
pub fn et0_daily(inputs: &DailyGrid<'_>) -> Result<Array2<f32>, ShapeMismatch> {
    let (rows, cols) = inputs.shape()?;
    let mut out = Array2::<f32>::zeros((rows, cols));
    let doy = inputs.doy as f64;
    let dr = inverse_relative_distance(doy);
    let decl = solar_declination(doy);
    let (sin_d, cos_d, tan_d) = (decl.sin(), decl.cos(), decl.tan());
    let albedo = inputs.albedo;
    let sigma = SIGMA_DAILY as f32;
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut orow)| {
            let tmax = inputs.tmax.row(i);
            let tmin = inputs.tmin.row(i);
            let tmean = inputs.tmean.map(|f| f.row(i));
            let u2 = inputs.u2.row(i);
            let rs = inputs.rs.row(i);
            let rs_rso = inputs.rs_rso.map(|f| f.row(i));
            let elev = inputs.elev.row(i);
            let (ra_given, ra_lat) = match inputs.ra {
                GridRa::Given(f) => (Some(f.row(i)), None),
                GridRa::Latitude(f) => (None, Some(f.row(i))),
            };
            let (h1, h2) = match inputs.humidity {
                GridHumidity::Ea(a) | GridHumidity::Tdew(a) | GridHumidity::RhMean(a) => {
                    (a.row(i), None)
                }
                GridHumidity::RhMaxMin(a, b) => (a.row(i), Some(b.row(i))),
            };
            let mut last_lat = f64::NAN;
            let mut last_ra = f32::NAN;
            for (j, o) in orow.iter_mut().enumerate() {
                let tx = tmax.at(j) as f32;
                let tn = tmin.at(j) as f32;
                let z = elev.at(j) as f32;
                let p = 101.3 * ((293.0 - 0.0065 * z) / 293.0).powf(5.26);
                let gamma = 0.665e-3 * p;
                let e_max = e0(tx);
                let e_min = e0(tn);
                let es = 0.5 * (e_max + e_min);
                let ea = match inputs.humidity {
                    GridHumidity::Ea(_) => h1.at(j) as f32,
                    GridHumidity::Tdew(_) => e0(h1.at(j) as f32),
                    GridHumidity::RhMean(_) => (h1.at(j) as f32).min(100.0) / 100.0 * es,
                    GridHumidity::RhMaxMin(..) => {
                        let lo = h2.as_ref().map_or(f32::NAN, |r| r.at(j) as f32);
                        0.5 * (e_min * (h1.at(j) as f32).min(100.0) + e_max * lo.min(100.0)) / 100.0
                    }
                };
                let t = match &tmean {
                    Some(r) => r.at(j) as f32,
                    None => 0.5 * (tx + tn),
                };
                let dt = t + 237.3;
                let delta = 4098.0 * e0(t) / (dt * dt);
                let ra = match (&ra_given, &ra_lat) {
                    (Some(r), _) => r.at(j) as f32,
                    (None, Some(l)) => {
                        let lat = l.at(j);
                        if lat.to_bits() != last_lat.to_bits() {
                            let ws = (-lat.tan() * tan_d).clamp(-1.0, 1.0).acos();
                            last_ra = (24.0 * 60.0 / std::f64::consts::PI
                                * SOLAR_CONSTANT
                                * dr
                                * (ws * lat.sin() * sin_d + lat.cos() * cos_d * ws.sin()))
                                as f32;
                            last_lat = lat;
                        }
                        last_ra
                    }
                    (None, None) => f32::NAN,
                };
                let rsv = rs.at(j) as f32;
                let ratio = match &rs_rso {
                    Some(r) => (r.at(j) as f32).clamp(0.0, 1.0),
                    None => {
                        let rso = (0.75 + 2e-5 * z) * ra;
                        if rso > 0.0 {
                            (rsv / rso).clamp(0.0, 1.0)
                        } else {
                            f32::NAN
                        }
                    }
                };
                let kx = tx + 273.16;
                let kn = tn + 273.16;
                let tk4 = 0.5 * (kx * kx * kx * kx + kn * kn * kn * kn);
                let rnl = sigma * tk4 * (0.34 - 0.14 * ea.max(0.0).sqrt()) * (1.35 * ratio - 0.35);
                let rn = (1.0 - albedo) * rsv - rnl;
                let u = u2.at(j) as f32;
                *o = (0.408 * delta * rn + gamma * 900.0 / (t + 273.0) * u * (es - ea))
                    / (delta + gamma * (1.0 + 0.34 * u));
            }
        });
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::et0::{self, DailyInput, Humidity, SoilHeat, Solar, Wind};

    #[test]
    fn grid_matches_scalar_code() {
        let n = 7;
        let tmax = Array2::from_shape_fn((n, n), |(i, j)| 20.0 + i as f32 + 0.3 * j as f32);
        let tmin = tmax.mapv(|t| t - 11.0);
        let rhmax = Array2::from_shape_fn((n, n), |(i, _)| 70.0 + 3.0 * i as f32);
        let rhmin = rhmax.mapv(|r| r - 30.0);
        let elev = Array2::from_shape_fn((n, n), |(_, j)| 100.0 * j as f32);
        let lat = Array2::from_shape_fn((n, n), |(i, _)| (37.0 + 0.1 * i as f32).to_radians());
        let rs = Array2::from_shape_fn((n, n), |(i, j)| 18.0 + 0.5 * (i + j) as f32);
        let g = DailyGrid {
            doy: 200,
            tmax: (&tmax).into(),
            tmin: (&tmin).into(),
            tmean: None,
            humidity: GridHumidity::RhMaxMin((&rhmax).into(), (&rhmin).into()),
            u2: 2.1.into(),
            rs: (&rs).into(),
            rs_rso: None,
            ra: GridRa::Latitude((&lat).into()),
            elev: (&elev).into(),
            albedo: 0.23,
        };
        let out = et0_daily(&g).unwrap();
        for ((i, j), v) in out.indexed_iter() {
            let r = et0::daily(&DailyInput {
                lat_deg: (lat[[i, j]] as f64).to_degrees(),
                elev_m: elev[[i, j]] as f64,
                doy: 200,
                tmax_c: tmax[[i, j]] as f64,
                tmin_c: tmin[[i, j]] as f64,
                humidity: Humidity::RhMaxMin {
                    rhmax_pct: rhmax[[i, j]] as f64,
                    rhmin_pct: rhmin[[i, j]] as f64,
                },
                wind: Wind::U2(2.1f32 as f64),
                solar: Solar::Rs(rs[[i, j]] as f64),
                soil_heat: SoilHeat::Zero,
                albedo: 0.23f32 as f64,
            })
            .unwrap();
            assert!(
                (r.et0 - *v as f64).abs() < 1e-5,
                "{i},{j}: {} vs {v}",
                r.et0
            );
        }
    }

    #[test]
    fn mismatched_shapes_are_an_error() {
        let a = Array2::<f32>::zeros((3, 4));
        let b = Array2::<f32>::zeros((4, 3));
        let g = DailyGrid {
            doy: 1,
            tmax: (&a).into(),
            tmin: (&b).into(),
            tmean: None,
            humidity: GridHumidity::Ea(1.0.into()),
            u2: 2.0.into(),
            rs: 10.0.into(),
            rs_rso: None,
            ra: GridRa::Given(20.0.into()),
            elev: 0.0.into(),
            albedo: 0.23,
        };
        assert!(et0_daily(&g).is_err());
    }
}
