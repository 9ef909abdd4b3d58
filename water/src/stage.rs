//! The `water` stage: **one task = one DTM tile** (an MDT05 sheet).
//!
//! Why a tile and not a window: the tile's k×k windows are computed inside the task one after
//! another (each parallel with rayon), so memory stays bounded by one window while the merge
//! is an in-memory copy (exact by construction) and the ET0/ETc COGs are written once, whole;
//! splitting a tile over tasks would need a second merge stage and k² reads of the station
//! table for a job that takes seconds per tile (the benchmark measures < 10 s per 5600×3700
//! tile on 2 cores), while a region already gives one task per tile (36 for Murcia).
//! [`crate::workflow::process_window`] remains the unit for callers who want windows.
//!
//! Outputs under `out` (names from the DTM's file stem, deterministic):
//! `<stem>_et0.tif` and, with plots, `<stem>_etc.tif` (float32 COGs, mm/day, nodata −9999),
//! `<stem>_plots.csv`, `<stem>_et0.png`, and with `write_inputs` the interpolated inputs
//! `<stem>_{tmax,tmin,ea,u2,rs,ra}.tif`.

use chrono::{Datelike, NaiveDate};
use cloud::{Classify, Ctx, ErrorKind, Stage, Store, TaskError};
use cog::{CogWriteOptions, Raster};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::crops::{self, KcTable, Plot};
use crate::proj::Projection;
use crate::stations::{self, StationFormat};
use crate::workflow::{self, Options, StationSet};

#[cfg(feature = "cli")]
pub mod cli;

/// Nodata of the float32 outputs.
pub const NODATA: f32 = -9999.0;

/// Parameters of one tile task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// DTM tile URI (GeoTIFF/COG or ESRI ASCII `.asc`), metres above sea level.
    pub dtm: String,
    /// EPSG code assumed when the DTM carries no CRS (`.asc`): 25830 for CNIG MDT05.
    #[serde(default = "default_epsg")]
    pub dtm_epsg: u32,
    /// Station table URI.
    pub stations: String,
    #[serde(default)]
    pub station_format: StationFormat,
    /// Day of the observations (YYYY-MM-DD).
    pub date: NaiveDate,
    /// Land plots (GeoJSON, or `.shp` with `.dbf` beside it).
    #[serde(default)]
    pub plots: Option<String>,
    /// Kc overrides CSV (`uso_sigpac,kc`).
    #[serde(default)]
    pub kc: Option<String>,
    /// Output directory URI.
    pub out: String,
    /// Extents `[xmin, ymin, xmax, ymax]` (DTM CRS) of other tiles of the same run that own
    /// the cells they cover: where DTM tiles overlap, a plot cell counts for one tile only
    /// (the first in the run's order). Set by the driver.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plots_owned_elsewhere: Vec<[f64; 4]>,
    /// Also write the interpolated inputs.
    #[serde(default)]
    pub write_inputs: bool,
    /// Write the PNG map.
    #[serde(default = "yes")]
    pub png: bool,
    #[serde(default)]
    pub options: Options,
}

fn default_epsg() -> u32 {
    25830
}
fn yes() -> bool {
    true
}

/// What a tile task wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    pub dtm: String,
    pub et0: String,
    pub etc: Option<String>,
    pub plots_csv: Option<String>,
    /// The `.prj` (the DTM's CRS as WKT) beside the plots table.
    #[serde(default)]
    pub plots_prj: Option<String>,
    pub png: Option<String>,
    pub inputs: Vec<String>,
    /// Ids of the stations used.
    pub stations_used: Vec<String>,
    /// True when no station was in the area of influence and the nearest were used.
    pub fallback: bool,
    pub width: u64,
    pub height: u64,
    /// Land pixels (DTM has data) and their ET0 statistics (mm/day).
    pub land_pixels: u64,
    pub et0_min: Option<f32>,
    pub et0_mean: Option<f64>,
    pub et0_max: Option<f32>,
    /// Seconds per window, and for the whole computation (without I/O).
    pub window_seconds: Vec<f64>,
    pub compute_seconds: f64,
    /// What the user must know: station Rs above clear-sky, negative ET0, plots repaired
    /// or left out.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Errors of a tile task.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaterError {
    #[error("{uri}: {source}")]
    Store {
        uri: String,
        #[source]
        source: cloud::StoreError,
    },
    #[error("{uri}: {source}")]
    Cog {
        uri: String,
        #[source]
        source: cog::CogError,
    },
    #[error(transparent)]
    Stations(#[from] stations::StationError),
    #[error(transparent)]
    Crops(#[from] crops::CropError),
    #[error("{uri}: {source}")]
    Workflow {
        uri: String,
        #[source]
        source: workflow::WorkflowError,
    },
    #[error("{uri}: {message}")]
    Input { uri: String, message: String },
    #[error("{uri}: cannot encode: {message}")]
    Encode { uri: String, message: String },
}

impl Classify for WaterError {
    fn kind(&self) -> ErrorKind {
        match self {
            WaterError::Store { source, .. } => source.kind(),
            WaterError::Cog { source, .. } => source.kind(),
            WaterError::Encode { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// Largest DTM accepted (pixels): a 10 GB Lambda holds ~20 float32 copies of 100 M pixels.
pub const MAX_PIXELS: usize = 100_000_000;

fn stem(uri: &str) -> String {
    let name = cloud::uri::file_name(uri);
    name.rsplit_once('.').map_or(name, |(s, _)| s).to_string()
}

/// Reads plots from GeoJSON or a shapefile (its `.dbf` beside it).
pub fn read_plots(store: &Store, uri: &str) -> Result<Vec<Plot>, WaterError> {
    let get = |u: &str| {
        store
            .get_capped(u, 2 << 30)
            .map_err(|source| WaterError::Store {
                uri: u.to_string(),
                source,
            })
    };
    let lower = uri.to_ascii_lowercase();
    if lower.ends_with(".shp") {
        let dbf = format!("{}.dbf", &uri[..uri.len() - 4]);
        Ok(crops::read_shapefile(uri, &get(uri)?, &get(&dbf)?)?)
    } else {
        Ok(crops::read_geojson(uri, &get(uri)?)?)
    }
}

fn write_f32(
    store: &Store,
    uri: &str,
    data: &Array2<f32>,
    like: &Raster<f32>,
) -> Result<(), WaterError> {
    let raster = Raster {
        data: data.mapv(|v| if v.is_finite() { v } else { NODATA }),
        transform: like.transform,
        crs: like.crs.clone(),
        nodata: Some(NODATA),
    };
    cog::write_cog(store, uri, &raster, &CogWriteOptions::default()).map_err(|source| {
        WaterError::Cog {
            uri: uri.to_string(),
            source,
        }
    })
}

/// Runs one tile (the body of a task).
pub fn run_tile(params: &Params, ctx: &Ctx) -> Result<Output, WaterError> {
    let store = &ctx.store;
    let dtm_uri = params.dtm.as_str();
    let cog_err = |source| WaterError::Cog {
        uri: dtm_uri.to_string(),
        source,
    };
    let reader = cog::CogReader::open(store, dtm_uri).map_err(cog_err)?;
    let info = reader.info().clone();
    if (info.width as usize).saturating_mul(info.height as usize) > MAX_PIXELS {
        return Err(WaterError::Input {
            uri: dtm_uri.into(),
            message: format!(
                "{}×{} pixels is over the {MAX_PIXELS} limit",
                info.width, info.height
            ),
        });
    }
    let mut dtm: Raster<f32> = reader.read_band(1).map_err(cog_err)?;
    drop(reader);
    if dtm.crs.is_unknown() {
        dtm.crs = cog::Crs::epsg(params.dtm_epsg);
    }
    let projection =
        Projection::from_crs(&dtm.crs, Some(params.dtm_epsg)).map_err(|e| WaterError::Input {
            uri: dtm_uri.into(),
            message: e.to_string(),
        })?;
    let doy = params.date.ordinal();

    let st_bytes = store
        .get_capped(&params.stations, 512 << 20)
        .map_err(|source| WaterError::Store {
            uri: params.stations.clone(),
            source,
        })?;
    let all = stations::parse(
        &params.stations,
        &st_bytes,
        params.station_format,
        params.date,
    )?;
    let extent = workflow::extent(&dtm.transform, dtm.width(), dtm.height());
    let set = StationSet::for_tile(&all, extent, &projection, doy, &params.options).map_err(
        |source| WaterError::Workflow {
            uri: dtm_uri.into(),
            source,
        },
    )?;
    tracing::info!(
        tile = dtm_uri,
        stations = set.stations.len(),
        fallback = set.fallback,
        "{}×{} DTM, {} of {} stations",
        dtm.width(),
        dtm.height(),
        set.stations.len(),
        all.len()
    );
    let k = params.options.windows.max(1) as u64;
    let progress = ctx.progress("windows", k * k);
    let clock = std::time::Instant::now();
    let tile = workflow::process_tile(&dtm, &set, &projection, doy, &params.options, |_| {
        progress.inc(1)
    })
    .map_err(|source| WaterError::Workflow {
        uri: dtm_uri.into(),
        source,
    })?;
    progress.finish();
    let compute_seconds = clock.elapsed().as_secs_f64();

    let mut warnings = set.warnings.clone();
    let negative: Vec<f32> = tile.et0.iter().copied().filter(|v| *v < 0.0).collect();
    if let Some(min) = negative.iter().copied().reduce(f32::min) {
        warnings.push(format!(
            "{dtm_uri}: {} land pixels have a negative daily ET0 (min {min:.2} mm/day): net \
             radiation below zero (winter, shaded slopes); kept as FAO-56 eq. 6 gives them",
            negative.len()
        ));
    }
    let base = stem(dtm_uri);
    let name = |suffix: &str| cloud::uri::join(&params.out, &format!("{base}_{suffix}"));
    let et0_uri = name("et0.tif");
    write_f32(store, &et0_uri, &tile.et0, &dtm)?;

    let (mut etc_uri, mut csv_uri, mut plots_prj) = (None, None, None);
    if let Some(plots_uri) = &params.plots {
        let (plots, plot_warnings) = crops::prepare_plots(read_plots(store, plots_uri)?, extent);
        warnings.extend(
            plot_warnings
                .into_iter()
                .map(|w| format!("{plots_uri}: {w}")),
        );
        let kc = match &params.kc {
            Some(u) => {
                let b = store
                    .get_capped(u, 16 << 20)
                    .map_err(|source| WaterError::Store {
                        uri: u.clone(),
                        source,
                    })?;
                KcTable::with_overrides(u, &b)?
            }
            None => KcTable::default(),
        };
        let owned: Vec<crate::interp::Extent> = params
            .plots_owned_elsewhere
            .iter()
            .map(|e| (e[0], e[1], e[2], e[3]))
            .collect();
        let (etc, stats) =
            crops::crop_water(&plots, &kc, &tile.et0, &dtm.transform, extent, &owned);
        let u = name("etc.tif");
        write_f32(store, &u, &etc, &dtm)?;
        etc_uri = Some(u);
        let u = name("plots.csv");
        let text = crops::stats_csv(&stats).map_err(|e| WaterError::Encode {
            uri: u.clone(),
            message: e.to_string(),
        })?;
        store
            .put(&u, text.into())
            .map_err(|source| WaterError::Store {
                uri: u.clone(),
                source,
            })?;
        plots_prj = cog::write_prj(store, &u, &dtm.crs).map_err(|source| WaterError::Store {
            uri: cog::prj_uri(&u),
            source,
        })?;
        csv_uri = Some(u);
    } else if params.kc.is_some() {
        return Err(WaterError::Input {
            uri: params.kc.clone().unwrap_or_default(),
            message: "a Kc table needs --plots".into(),
        });
    }
    let mut inputs = Vec::new();
    if params.write_inputs {
        for (suffix, a) in [
            ("tmax", &tile.tmax),
            ("tmin", &tile.tmin),
            ("ea", &tile.ea),
            ("u2", &tile.u2),
            ("rs", &tile.rs),
            ("ra", &tile.ra),
        ] {
            let u = name(&format!("{suffix}.tif"));
            write_f32(store, &u, a, &dtm)?;
            inputs.push(u);
        }
    }
    let png_uri = if params.png {
        let u = name("et0.png");
        let bytes =
            crate::map::png(&tile.et0, "ET0", "MM/DAY").map_err(|e| WaterError::Encode {
                uri: u.clone(),
                message: e.to_string(),
            })?;
        store
            .put(&u, bytes.into())
            .map_err(|source| WaterError::Store {
                uri: u.clone(),
                source,
            })?;
        Some(u)
    } else {
        None
    };

    let land: Vec<f32> = tile.et0.iter().copied().filter(|v| v.is_finite()).collect();
    let n = land.len();
    Ok(Output {
        dtm: dtm_uri.to_string(),
        et0: et0_uri,
        etc: etc_uri,
        plots_csv: csv_uri,
        plots_prj,
        png: png_uri,
        inputs,
        stations_used: set.stations.iter().map(|s| s.id.clone()).collect(),
        fallback: set.fallback,
        width: dtm.width() as u64,
        height: dtm.height() as u64,
        land_pixels: n as u64,
        et0_min: land.iter().copied().reduce(f32::min),
        et0_mean: (n > 0).then(|| land.iter().map(|&v| v as f64).sum::<f64>() / n as f64),
        et0_max: land.iter().copied().reduce(f32::max),
        window_seconds: tile.window_seconds,
        compute_seconds,
        warnings,
    })
}

/// The `.dbf` beside a `.shp` (any case), if `uri` names a shapefile.
fn dbf_of(uri: &str) -> Option<String> {
    uri.to_ascii_lowercase()
        .ends_with(".shp")
        .then(|| format!("{}.dbf", &uri[..uri.len() - 4]))
}

impl Params {
    /// Checks the parameters and locations without reading anything (see
    /// [`cloud::Stage::validate`]).
    pub fn validate(&self) -> Result<(), TaskError> {
        use cloud::validate;
        validate::uri("dtm", &self.dtm)?;
        validate::uri("stations", &self.stations)?;
        validate::location("out", &self.out)?;
        if let Some(p) = &self.plots {
            validate::uri("plots", p)?;
        }
        if let Some(k) = &self.kc {
            validate::uri("kc", k)?;
        }
        validate::count("dtm_epsg", self.dtm_epsg, 1024..=999_999)?;
        validate_options(&self.options)
    }

    /// The objects a tile task reads: the DTM, the station table, the plots (with a
    /// shapefile's `.dbf`) and the Kc table.
    pub fn input_uris(&self) -> Vec<String> {
        let mut v = vec![self.dtm.clone(), self.stations.clone()];
        if let Some(p) = &self.plots {
            v.push(p.clone());
            v.extend(dbf_of(p));
        }
        v.extend(self.kc.clone());
        v
    }
}

/// Bounds of the workflow options: each a number a user could mistype into an absurd run.
pub fn validate_options(o: &Options) -> Result<(), TaskError> {
    use cloud::validate::{count, number};
    count("windows", o.windows, 1..=64)?;
    number("influence_m", o.influence_m, 0.0..=1_000_000.0)?;
    number("idw_power", o.idw_power, 0.0..=16.0)?;
    number("lapse_rate_c_per_m", o.lapse_rate_c_per_m, -0.1..=0.1)?;
    number("z_ref_m", o.z_ref_m, -500.0..=9000.0)?;
    count("fallback_stations", o.fallback_stations, 0..=1000)?;
    count("horizon_dirs", o.horizon_dirs, 0..=360)?;
    number("horizon_max_dist_m", o.horizon_max_dist_m, 0.0..=200_000.0)?;
    number("krs", o.krs, 0.05..=0.5)?;
    Ok(())
}

/// The stage marker type.
pub struct WaterStage;

impl Stage for WaterStage {
    const NAME: &'static str = "water";
    const VERSION: u32 = 1;
    type Params = Params;
    type Output = Output;

    fn validate(params: &Params) -> Result<(), TaskError> {
        params.validate()
    }

    fn input_uris(params: &Params) -> Vec<String> {
        params.input_uris()
    }

    fn status_root(params: &Params) -> String {
        params.out.clone()
    }

    fn run(params: &Params, ctx: &Ctx) -> Result<Output, TaskError> {
        Ok(run_tile(params, ctx)?)
    }

    fn warnings(o: &Output) -> Vec<String> {
        o.warnings.clone()
    }

    fn output_uris(o: &Output) -> Vec<String> {
        let mut v = vec![o.et0.clone()];
        v.extend(o.etc.iter().cloned());
        v.extend(o.plots_csv.iter().cloned());
        v.extend(o.plots_prj.iter().cloned());
        v.extend(o.png.iter().cloned());
        v.extend(o.inputs.iter().cloned());
        v
    }
}
