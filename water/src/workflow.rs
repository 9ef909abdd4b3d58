//! The spatial workflow on one DTM tile: k×k windows, each with its own geotransform,
//! station interpolation, terrain radiation and ET0, merged back into the tile.
//!
//! Per pixel (daily step, G = 0):
//! - temperatures: each station's Tmax/Tmin (or Tmean) reduced to `z_ref` (2000 m) with the
//!   lapse rate (−0.0056 °C/m), interpolated by IDW, then brought to the pixel's elevation;
//! - ea and u2: IDW of the stations' values (ea is limited to e°(Tmin) at the pixel so that
//!   a higher, colder pixel is never supersaturated);
//! - radiation: IDW of the stations' relative radiation Rs/Rso (each station's Rso from its
//!   own latitude and elevation; Hargreaves' Rs (kRs 0.16) for a station without Rs but with
//!   Tmax/Tmin) gives the horizontal Rs = (Rs/Rso)·Rso(pixel), distributed over the terrain
//!   by [`crate::solar`]; Rnl uses the horizontal Rs/Rso (cloudiness), Rns the radiation on
//!   the slope;
//! - ET0 by FAO-56 eq. 6 ([`crate::grid::et0_daily`]).
//!
//! **Area of influence.** Stations within `influence_m` (16 km) of the *tile* take part. The
//! selection is made once per tile, not per window: windows of one tile then use the same
//! stations and merge without seams, and the k×k result equals the 1×1 result exactly
//! (CloudButton's original selected per chunk and also placed stations with the tile origin).
//! **Fallback:** when no station lies within the area of influence, the `fallback_stations`
//! (3) nearest stations are used, a warning is logged and the tile's output records
//! `fallback: true`; the tile is never silently dropped. With `fallback_stations = 0` it is
//! an error instead.

use cog::{GeoTransform, Raster, Window};
use ndarray::{Array2, s};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::fao56;
use crate::grid::{self, DailyGrid, Field, GridHumidity, GridRa};
use crate::interp::{self, Extent};
use crate::proj::{Projection, UnsupportedCrs};
use crate::solar::{self, Horizon, Normals, TerrainInputs};
use crate::stations::Station;

/// Options of the spatial workflow; the defaults are DESIGN.md's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// k: each tile is processed as k×k windows.
    pub windows: u32,
    /// Area of influence around the tile (m).
    pub influence_m: f64,
    /// IDW power.
    pub idw_power: f64,
    /// Temperature lapse rate (°C per m, negative = cooler uphill).
    pub lapse_rate_c_per_m: f64,
    /// Reference altitude the temperatures are reduced to (m).
    pub z_ref_m: f64,
    /// Nearest stations used when none lies in the area of influence (0 = error instead).
    pub fallback_stations: usize,
    /// Horizon shading: number of azimuths (0 = off; 16 or 32 typical).
    pub horizon_dirs: u32,
    /// Horizon search distance (m).
    pub horizon_max_dist_m: f64,
    /// Hargreaves radiation coefficient for stations without Rs (0.16 interior, 0.19 coast).
    pub krs: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            windows: 3,
            influence_m: 16_000.0,
            idw_power: 1.0,
            lapse_rate_c_per_m: -0.0056,
            z_ref_m: 2000.0,
            fallback_stations: 3,
            horizon_dirs: 0,
            horizon_max_dist_m: 2000.0,
            krs: 0.16,
        }
    }
}

/// Errors of the spatial workflow.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {
    #[error(transparent)]
    Crs(#[from] UnsupportedCrs),
    #[error("the DTM is not north-up (rotated geotransform {0:?})")]
    Rotated([f64; 6]),
    #[error("no station within {radius} m of the tile and no fallback allowed")]
    NoStation { radius: f64 },
    #[error("no station has {0}")]
    NoData(&'static str),
    #[error("window {0:?} is outside the {1}×{2} DTM")]
    BadWindow(Window, usize, usize),
    #[error("invalid options: {0}")]
    Options(String),
}

/// The stations of one tile, prepared for interpolation.
#[derive(Debug, Clone)]
pub struct StationSet {
    /// The stations used (ids in the output).
    pub stations: Vec<Station>,
    /// True when the area of influence held none and the nearest ones were taken.
    pub fallback: bool,
    /// What a user must know about the stations (Rs above the clear-sky Rso, ...).
    pub warnings: Vec<String>,
    points: Vec<(f64, f64)>,
    /// Per variable (tmax_ref, tmin_ref, ea, u2, rs/rso), per station; NaN = missing.
    values: Vec<Vec<f64>>,
}

/// Station variables in [`StationSet`] order.
const V_TMAX: usize = 0;
const V_TMIN: usize = 1;
const V_EA: usize = 2;
const V_U2: usize = 3;
const V_RATIO: usize = 4;

impl StationSet {
    /// Selects the stations for a tile of `extent` and derives their interpolation values for
    /// day `doy`.
    pub fn for_tile(
        all: &[Station],
        extent: Extent,
        projection: &Projection,
        doy: u32,
        opts: &Options,
    ) -> Result<StationSet, WorkflowError> {
        let pts: Vec<(f64, f64)> = all.iter().map(|s| (s.x, s.y)).collect();
        let (idx, fallback) =
            interp::select(&pts, extent, opts.influence_m, opts.fallback_stations);
        if idx.is_empty() {
            return Err(WorkflowError::NoStation {
                radius: opts.influence_m,
            });
        }
        if fallback {
            tracing::warn!(
                "no station within {} m of the tile; using the {} nearest ({})",
                opts.influence_m,
                idx.len(),
                idx.iter()
                    .map(|&i| all[i].id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let stations: Vec<Station> = idx.iter().map(|&i| all[i].clone()).collect();
        let lapse = opts.lapse_rate_c_per_m;
        let reduce =
            |t: Option<f64>, z: f64| t.map_or(f64::NAN, |t| t + lapse * (opts.z_ref_m - z));
        let mut values: Vec<Vec<f64>> =
            (0..5).map(|_| Vec::with_capacity(stations.len())).collect();
        let mut warnings = Vec::new();
        for s in &stations {
            values[V_TMAX].push(reduce(s.tmax_c, s.elev_m));
            values[V_TMIN].push(reduce(s.tmin_c, s.elev_m));
            values[V_EA].push(s.ea_kpa.unwrap_or(f64::NAN));
            values[V_U2].push(s.u2_m_s.unwrap_or(f64::NAN));
            let (lat, _) = projection.to_lat_lon(s.x, s.y);
            let ra = fao56::extraterrestrial_radiation(lat.to_radians(), doy as f64);
            let rso = fao56::clear_sky_radiation(ra, s.elev_m);
            let rs = s.rs_mj_m2.or_else(|| match (s.tmax_c, s.tmin_c) {
                (Some(a), Some(b)) if !s.mean_only => {
                    Some(fao56::rs_from_temperature_range(a, b, ra, opts.krs))
                }
                _ => None,
            });
            values[V_RATIO].push(match rs {
                Some(rs) if rso > 0.0 => {
                    // FAO-56 eq. 39 / ASCE limit Rs/Rso to 1. A measured Rs well above the
                    // clear-sky value of this day and place means a wrong date or units.
                    if rs > 1.1 * rso {
                        warnings.push(format!(
                            "station {}: Rs {rs:.1} MJ/m²/day is above the clear-sky Rso \
                             {rso:.1} for day {doy} of the year: wrong date or units? Rs/Rso \
                             limited to 1",
                            s.id
                        ));
                    }
                    (rs / rso).clamp(0.0, 1.0)
                }
                _ => f64::NAN,
            });
        }
        for (v, what) in [
            (V_TMAX, "a temperature"),
            (V_EA, "humidity"),
            (V_U2, "wind"),
            (V_RATIO, "radiation (Rs, or Tmax/Tmin for Hargreaves)"),
        ] {
            if values[v].iter().all(|x| x.is_nan()) {
                return Err(WorkflowError::NoData(what));
            }
        }
        for w in &warnings {
            tracing::warn!("{w}");
        }
        Ok(StationSet {
            points: stations.iter().map(|s| (s.x, s.y)).collect(),
            stations,
            fallback,
            warnings,
            values,
        })
    }
}

/// The k×k windows of a `width`×`height` raster, row-major; window (i, j) spans columns
/// ⌊j·W/k⌋..⌊(j+1)·W/k⌋ and likewise rows.
pub fn split(width: u64, height: u64, k: u32) -> Vec<Window> {
    let k = k.max(1) as u64;
    let mut out = Vec::new();
    for i in 0..k {
        for j in 0..k {
            let (r0, r1) = (i * height / k, (i + 1) * height / k);
            let (c0, c1) = (j * width / k, (j + 1) * width / k);
            if r1 > r0 && c1 > c0 {
                out.push(Window::new(c0, r0, c1 - c0, r1 - r0));
            }
        }
    }
    out
}

/// Per-pixel results of one window (float32, NaN = no data).
#[derive(Debug, Clone)]
pub struct WindowResult {
    pub window: Window,
    /// The window's own geotransform.
    pub transform: GeoTransform,
    /// ET0 (mm/day).
    pub et0: Array2<f32>,
    /// Tmax, Tmin at the pixel's elevation (°C).
    pub tmax: Array2<f32>,
    pub tmin: Array2<f32>,
    /// Actual vapour pressure (kPa).
    pub ea: Array2<f32>,
    /// Wind at 2 m (m/s).
    pub u2: Array2<f32>,
    /// Global radiation on the terrain surface (MJ m⁻² day⁻¹).
    pub rs: Array2<f32>,
    /// Extraterrestrial radiation on the horizontal (MJ m⁻² day⁻¹, FAO-56 eq. 21).
    pub ra: Array2<f32>,
}

/// Latitude (rad), FAO-56 eq. 21 Ra and the sunset hour angle at the pixel centres of
/// `window`, from a node grid every `STEP` pixels anchored at the raster's origin (so any
/// window gets the same values), bilinear in between (all three are smooth in latitude: the
/// interpolation error is below 1e-6 MJ m⁻² day⁻¹ for 5 m pixels).
fn latitudes(
    dtm_gt: &GeoTransform,
    projection: &Projection,
    w: Window,
    doy: u32,
) -> [Array2<f32>; 3] {
    const STEP: u64 = 32;
    let (c0, r0) = (w.col_off, w.row_off);
    let (c1, r1) = (c0 + w.width, r0 + w.height);
    let nc0 = c0 / STEP;
    let nr0 = r0 / STEP;
    let nc1 = (c1 - 1) / STEP + 1;
    let nr1 = (r1 - 1) / STEP + 1;
    let decl = fao56::solar_declination(doy as f64);
    let node = |i: usize, j: usize| {
        let (x, y) = dtm_gt.apply(
            ((nc0 + j as u64) * STEP) as f64 + 0.5,
            ((nr0 + i as u64) * STEP) as f64 + 0.5,
        );
        let lat = projection.to_lat_lon(x, y).0.to_radians();
        [
            lat,
            fao56::extraterrestrial_radiation(lat, doy as f64),
            fao56::sunset_hour_angle(lat, decl),
        ]
    };
    let shape = ((nr1 - nr0 + 1) as usize, (nc1 - nc0 + 1) as usize);
    let nodes = Array2::from_shape_fn(shape, |(i, j)| node(i, j));
    let dim = (w.height as usize, w.width as usize);
    let mut out = [
        Array2::<f32>::zeros(dim),
        Array2::<f32>::zeros(dim),
        Array2::<f32>::zeros(dim),
    ];
    for (k, a) in out.iter_mut().enumerate() {
        a.axis_iter_mut(ndarray::Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(i, mut row)| {
                let r = r0 + i as u64;
                let ni = (r / STEP - nr0) as usize;
                let fy = (r % STEP) as f64 / STEP as f64;
                for (j, v) in row.iter_mut().enumerate() {
                    let c = c0 + j as u64;
                    let nj = (c / STEP - nc0) as usize;
                    let fx = (c % STEP) as f64 / STEP as f64;
                    let top = nodes[[ni, nj]][k] * (1.0 - fx) + nodes[[ni, nj + 1]][k] * fx;
                    let bot = nodes[[ni + 1, nj]][k] * (1.0 - fx) + nodes[[ni + 1, nj + 1]][k] * fx;
                    *v = (top * (1.0 - fy) + bot * fy) as f32;
                }
            });
    }
    out
}

/// Computes one window of `dtm` (a tile, or any raster containing the window and the halo it
/// needs: 1 pixel, or the horizon distance with shading). `dtm.nodata` cells give NaN.
pub fn process_window(
    dtm: &Raster<f32>,
    window: Window,
    stations: &StationSet,
    projection: &Projection,
    doy: u32,
    opts: &Options,
) -> Result<WindowResult, WorkflowError> {
    let gt = dtm.transform;
    if !gt.is_north_up() {
        return Err(WorkflowError::Rotated(gt.0));
    }
    let (h, w) = (dtm.height(), dtm.width());
    if window.is_empty()
        || window.col_off + window.width > w as u64
        || window.row_off + window.height > h as u64
    {
        return Err(WorkflowError::BadWindow(window, w, h));
    }
    let xres = gt.0[1].abs();
    let yres = gt.0[5].abs();
    let halo = if opts.horizon_dirs > 0 {
        (opts.horizon_max_dist_m / xres.min(yres)).ceil() as u64 + 1
    } else {
        1
    };
    let hr0 = window.row_off.saturating_sub(halo) as usize;
    let hc0 = window.col_off.saturating_sub(halo) as usize;
    let hr1 = ((window.row_off + window.height + halo) as usize).min(h);
    let hc1 = ((window.col_off + window.width + halo) as usize).min(w);
    let nodata = dtm.nodata;
    let halo_dem = dtm.data.slice(s![hr0..hr1, hc0..hc1]).mapv(|v| {
        if nodata.is_some_and(|nd| v == nd || (nd.is_nan() && v.is_nan()))
            || !v.is_finite()
            || v < -1000.0
        {
            f32::NAN
        } else {
            v
        }
    });
    let (ir, ic) = (window.row_off as usize - hr0, window.col_off as usize - hc0);
    let (rows, cols) = (window.height as usize, window.width as usize);
    let inner = s![ir..ir + rows, ic..ic + cols];
    let elev = halo_dem.slice(inner).to_owned();
    let mut clock = std::time::Instant::now();
    let mut phases: Vec<(&str, f64)> = Vec::new();
    let mut lap = |name: &'static str, phases: &mut Vec<(&'static str, f64)>| {
        phases.push((name, clock.elapsed().as_secs_f64()));
        clock = std::time::Instant::now();
    };
    let full_normals = solar::normals(halo_dem.view(), xres, yres);
    let normals = Normals {
        east: full_normals.east.slice(inner).to_owned(),
        north: full_normals.north.slice(inner).to_owned(),
        up: full_normals.up.slice(inner).to_owned(),
    };
    drop(full_normals);
    let horizon: Option<Horizon> = (opts.horizon_dirs > 0).then(|| {
        solar::horizon(
            halo_dem.view(),
            xres,
            yres,
            opts.horizon_dirs as usize,
            opts.horizon_max_dist_m,
            (ir, ic, rows, cols),
        )
    });
    drop(halo_dem);

    lap("normals", &mut phases);
    let wgt = gt.window(window.col_off, window.row_off);
    let mask = elev.mapv(|z| !z.is_nan());
    let fields = interp::idw(
        &wgt,
        rows,
        cols,
        &stations.points,
        &stations.values,
        opts.idw_power,
        Some(&mask),
    );
    lap("idw", &mut phases);
    let lapse = opts.lapse_rate_c_per_m as f32;
    let zref = opts.z_ref_m as f32;
    // Missing Tmax/Tmin grids (all stations mean-only) mean the same as the interpolated mean.
    let to_pixel = |t: &Array2<f32>| {
        let mut t = t.clone();
        ndarray::Zip::from(&mut t)
            .and(&elev)
            .par_for_each(|t, &z| *t += lapse * (z - zref));
        t
    };
    let tmax = to_pixel(&fields[V_TMAX]);
    let tmin = to_pixel(if fields[V_TMIN].iter().all(|v| v.is_nan()) {
        &fields[V_TMAX]
    } else {
        &fields[V_TMIN]
    });
    let mut ea = fields[V_EA].clone();
    ndarray::Zip::from(&mut ea)
        .and(&tmin)
        .par_for_each(|e, &t| {
            let cap = fao56::sat_vapour_pressure(t as f64) as f32;
            if *e > cap {
                *e = cap;
            }
        });
    let u2 = fields[V_U2].clone();
    let ratio = &fields[V_RATIO];

    lap("fields", &mut phases);
    let [lat, ra_h, ws] = latitudes(&gt, projection, window, doy);
    // Horizontal Rs from the interpolated Rs/Rso.
    let mut rs_h = Array2::<f32>::zeros((rows, cols));
    ndarray::Zip::from(&mut rs_h)
        .and(&ra_h)
        .and(&elev)
        .and(ratio)
        .par_for_each(|o, &ra, &z, &k| {
            *o = k * (0.75 + 2e-5 * z) * ra;
        });
    lap("lat", &mut phases);
    let rad = solar::terrain_radiation(&TerrainInputs {
        doy,
        lat: lat.view(),
        ra: ra_h.view(),
        ws: ws.view(),
        normals: &normals,
        rs_horizontal: rs_h.view(),
        horizon: horizon.as_ref(),
        sun_path_lat: {
            let (x, y) = gt.apply(w as f64 / 2.0, h as f64 / 2.0);
            projection.to_lat_lon(x, y).0.to_radians()
        },
    });
    drop(rs_h);
    lap("radiation", &mut phases);
    let et0 = grid::et0_daily(&DailyGrid {
        doy,
        tmax: Field::from(&tmax),
        tmin: Field::from(&tmin),
        tmean: None,
        humidity: GridHumidity::Ea(Field::from(&ea)),
        u2: Field::from(&u2),
        rs: Field::from(&rad.rs),
        rs_rso: Some(Field::from(ratio)),
        ra: GridRa::Given(Field::from(&rad.ra)),
        elev: Field::from(&elev),
        albedo: fao56::ALBEDO_GRASS as f32,
    })
    .map_err(|e| WorkflowError::Options(e.to_string()))?;
    lap("et0", &mut phases);
    let mut ra = rad.ra;
    ndarray::Zip::from(&mut ra).and(&mask).for_each(|r, &m| {
        if !m {
            *r = f32::NAN;
        }
    });
    tracing::debug!(?window, ?phases, "window phases (s)");
    Ok(WindowResult {
        window,
        transform: wgt,
        et0,
        tmax,
        tmin,
        ea,
        u2,
        rs: rad.rs,
        ra,
    })
}

/// The merged per-pixel results of a tile (same shapes as the DTM).
#[derive(Debug, Clone)]
pub struct TileResult {
    pub et0: Array2<f32>,
    pub tmax: Array2<f32>,
    pub tmin: Array2<f32>,
    pub ea: Array2<f32>,
    pub u2: Array2<f32>,
    pub rs: Array2<f32>,
    pub ra: Array2<f32>,
    /// Seconds spent per window (row-major).
    pub window_seconds: Vec<f64>,
}

/// Runs the workflow over `opts.windows`² windows of `dtm` and merges them (each window's
/// arrays are copied to its offsets: exact). Windows run one after another, each one
/// parallel inside, so memory stays bounded by one window's intermediates.
pub fn process_tile(
    dtm: &Raster<f32>,
    stations: &StationSet,
    projection: &Projection,
    doy: u32,
    opts: &Options,
    mut on_window: impl FnMut(&WindowResult),
) -> Result<TileResult, WorkflowError> {
    if opts.windows == 0 || opts.windows > 64 {
        return Err(WorkflowError::Options(format!(
            "windows = {} (1..=64)",
            opts.windows
        )));
    }
    let dim = dtm.data.dim();
    let nan = || Array2::<f32>::from_elem(dim, f32::NAN);
    let mut t = TileResult {
        et0: nan(),
        tmax: nan(),
        tmin: nan(),
        ea: nan(),
        u2: nan(),
        rs: nan(),
        ra: nan(),
        window_seconds: Vec::new(),
    };
    for w in split(dtm.width() as u64, dtm.height() as u64, opts.windows) {
        let clock = std::time::Instant::now();
        let r = process_window(dtm, w, stations, projection, doy, opts)?;
        let sl = s![
            w.row_off as usize..(w.row_off + w.height) as usize,
            w.col_off as usize..(w.col_off + w.width) as usize
        ];
        t.et0.slice_mut(sl).assign(&r.et0);
        t.tmax.slice_mut(sl).assign(&r.tmax);
        t.tmin.slice_mut(sl).assign(&r.tmin);
        t.ea.slice_mut(sl).assign(&r.ea);
        t.u2.slice_mut(sl).assign(&r.u2);
        t.rs.slice_mut(sl).assign(&r.rs);
        t.ra.slice_mut(sl).assign(&r.ra);
        t.window_seconds.push(clock.elapsed().as_secs_f64());
        on_window(&r);
    }
    Ok(t)
}

/// The CRS extent (xmin, ymin, xmax, ymax) of a north-up raster.
pub fn extent(gt: &GeoTransform, width: usize, height: usize) -> Extent {
    let (x0, y0) = gt.apply(0.0, 0.0);
    let (x1, y1) = gt.apply(width as f64, height as f64);
    (x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_exactly() {
        let ws = split(5600, 3700, 3);
        assert_eq!(ws.len(), 9);
        let total: u64 = ws.iter().map(|w| w.len()).sum();
        assert_eq!(total, 5600 * 3700);
        assert_eq!(ws[4], Window::new(1866, 1233, 1867, 1233));
        assert_eq!(split(2, 2, 3).len(), 4);
    }
}
