//! The `water` pipeline: DTM tiles → crop water use.
//!
//! 1. `tiles`: one `water` task per DTM tile (the stage computes each tile as k×k windows
//!    with their own geotransforms and merges them in memory, exactly: see `water::stage`),
//!    writing `tiles/<stem>_et0.tif`, `_etc.tif`, `_plots.csv`, `_et0.png`.
//! 2. `mosaic` (two tiles or more): `terrain` mosaic tasks assemble `et0.tif` (and `etc.tif`
//!    with plots) over all tiles, on their common pixel lattice (MDT05 sheets share it).
//! 3. results: `plots.csv` merges the tiles' per-plot rows — pixels, covered area and water
//!    volume add up across tiles (the stage computes a cut plot's volume on its covered area,
//!    so the sum is the plot's), means are pixel-weighted.
//!
//! **Over a season** ([`WaterPipeline::dates`]): `tiles` runs one task per tile per day (as
//! the seed did: 36 tiles × 53 days = 1,908 invocations), each day's station table from
//! `--stations` with `{date}` in its name, or from one table with a `date` column; the days'
//! rasters go to `days/<date>/`. A `season` step then adds each tile's days up
//! (`tiles/<stem>_et0_season.tif`, mm over the season; `terrain mosaic --sum`, nodata where a
//! day has none), `mosaic` assembles `et0_season.tif`/`etc_season.tif`, and
//! `plots_season.csv` gives each plot's season totals (ET0 and ETc in mm, water in m³).
//!
//! **Irrigated plots** ([`WaterPipeline::irrigation`]): with an NDVI product, the per-plot
//! table gains the plot's mean NDVI, the area of its pixels above the threshold and whether
//! its mean is above it ([`water::irrigation`]).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use cloud::Store;
use serde_json::Value;
use terrain::TerrainStage;
use terrain::stage::{MosaicFormat, MosaicParams, RasterOutput, TerrainParams};
use water::WaterStage;
use water::plots::PlotTotal;

use super::{Pipeline, Product, Results, file_stem, id_part, outcome, unique_ids};
use crate::error::DriverError;
use crate::exec::StepOutcome;
use crate::plan::{Step, TaskSpec};
use crate::stage::StageKind;

/// Settings of a water run.
#[derive(Debug, Clone)]
pub struct WaterPipeline {
    /// DTM tiles (GeoTIFF/COG or ESRI ASCII).
    pub dtms: Vec<String>,
    /// Task parameters shared by every tile (`dtm` and `out` are filled per tile).
    pub template: water::Params,
    /// Output root.
    pub out: String,
    /// How tiles are mosaicked (two tiles or more); `None`: not at all.
    pub mosaic: Option<MosaicFormat>,
    /// The days of a season run (empty: the template's one day).
    pub dates: Vec<NaiveDate>,
    /// Irrigated plots from an NDVI product.
    pub irrigation: Option<Irrigation>,
}

/// The seed's irrigated-area rule: an NDVI product and its threshold.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Irrigation {
    /// NDVI raster in the plots' CRS (or WGS 84 / UTM of the same zone).
    pub ndvi: String,
    /// NDVI above which a pixel (and a plot, by its mean) counts as irrigated.
    pub threshold: f64,
}

/// Placeholder in `--stations` replaced by each day (YYYY-MM-DD).
pub const DATE_PLACEHOLDER: &str = "{date}";

/// Most days of a season run.
pub const MAX_SEASON_DAYS: i64 = 366;

/// The days from `first` to `last`, both included (`YYYY-MM-DD/YYYY-MM-DD`).
pub fn parse_dates(text: &str) -> Result<Vec<NaiveDate>, DriverError> {
    let bad = |m: String| DriverError::Invalid(format!("--dates {text:?}: {m}"));
    let (a, b) = text
        .split_once('/')
        .ok_or_else(|| bad("give FIRST/LAST, e.g. 2022-05-01/2022-09-30".into()))?;
    let day = |s: &str| {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|e| bad(format!("{s:?} is not a YYYY-MM-DD date: {e}")))
    };
    let (first, last) = (day(a)?, day(b)?);
    let days = (last - first).num_days() + 1;
    if days < 1 {
        return Err(bad("the last day is before the first".into()));
    }
    if days > MAX_SEASON_DAYS {
        return Err(bad(format!(
            "{days} days: at most {MAX_SEASON_DAYS} in one run"
        )));
    }
    Ok(first.iter_days().take(days as usize).collect())
}

impl WaterPipeline {
    /// A pipeline over `dtms` with `template`'s settings, writing under `out`.
    pub fn new(dtms: Vec<String>, template: water::Params, out: &str) -> WaterPipeline {
        WaterPipeline {
            dtms,
            template,
            out: out.trim_end_matches('/').to_string(),
            mosaic: Some(MosaicFormat::Cog),
            dates: Vec::new(),
            irrigation: None,
        }
    }

    fn season(&self) -> bool {
        !self.dates.is_empty()
    }

    /// The days run: the season's, or the template's one.
    fn days(&self) -> Vec<NaiveDate> {
        if self.season() {
            self.dates.clone()
        } else {
            vec![self.template.date]
        }
    }

    /// The task parameters of tile `dtm` on `date`.
    fn day_params(&self, dtm: &str, date: NaiveDate, owned: Vec<[f64; 4]>) -> water::Params {
        let day = date.format("%Y-%m-%d").to_string();
        water::Params {
            dtm: dtm.to_string(),
            date,
            stations: self.template.stations.replace(DATE_PLACEHOLDER, &day),
            out: if self.season() {
                cloud::uri::join(&self.out, &format!("days/{day}"))
            } else {
                self.tiles_dir()
            },
            // One map per tile and day would be thousands of pictures.
            png: self.template.png && !self.season(),
            plots_owned_elsewhere: owned,
            ..self.template.clone()
        }
    }

    /// Checks that every day has its observations: a `{date}` table per day exists, or the
    /// one table has a `date` column (a SIAM table, which has none, would give every day
    /// the same weather).
    fn check_stations(&self, store: &Store) -> Result<(), DriverError> {
        let stations = &self.template.stations;
        if !stations.contains(DATE_PLACEHOLDER) {
            if self.season() {
                let bytes = store.get_capped(stations, 256 << 20)?;
                if !water::stations::has_date_column(&bytes) {
                    return Err(DriverError::Invalid(format!(
                        "water: {stations} has no date column, so every day of the season \
                         would get the same observations: give one table per day with \
                         {DATE_PLACEHOLDER} in --stations (e.g. siam/{DATE_PLACEHOLDER}.csv)"
                    )));
                }
            }
            return Ok(());
        }
        let cache = cloud::InfoCache::new();
        let missing: Vec<String> = self
            .days()
            .iter()
            .map(|d| stations.replace(DATE_PLACEHOLDER, &d.format("%Y-%m-%d").to_string()))
            .filter(|uri| cache.info(store, uri).is_err())
            .collect();
        if !missing.is_empty() {
            return Err(DriverError::Invalid(format!(
                "water: {} day(s) have no station table: {}{}",
                missing.len(),
                missing[..missing.len().min(5)].join(", "),
                if missing.len() > 5 { ", …" } else { "" }
            )));
        }
        Ok(())
    }

    /// `_season` for a season's products, nothing for one day's.
    fn suffix(&self) -> &'static str {
        if self.season() { "_season" } else { "" }
    }

    /// The `tiles` step: a task per tile (and day, over a season).
    fn plan_tiles(&self, store: &Store) -> Result<Step, DriverError> {
        self.validate()?;
        self.check_stations(store)?;
        let stems: Vec<String> = self.dtms.iter().map(|d| file_stem(d)).collect();
        if unique_ids(&stems) != stems {
            return Err(DriverError::Invalid(
                "water: two DTM tiles have the same file name; their outputs would collide".into(),
            ));
        }
        // Where DTM tiles overlap, the first tile owns the cells (as the mosaic takes the
        // first tile): later tiles leave them out of their plot totals. A DTM whose header
        // cannot be read owns nothing here: its own task fails with the reason (and the
        // others still run).
        let extents: Vec<Option<[f64; 4]>> = if self.template.plots.is_some() && self.dtms.len() > 1
        {
            self.dtms
                .iter()
                .map(|d| {
                    let (gt, w, h) = cog::grid_of(store, d).ok()?;
                    let (x0, y0) = gt.apply(0.0, 0.0);
                    let (x1, y1) = gt.apply(w as f64, h as f64);
                    Some([x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1)])
                })
                .collect()
        } else {
            Vec::new()
        };
        let ids = unique_ids(
            &self
                .dtms
                .iter()
                .map(|d| format!("tile-{}", id_part(&file_stem(d))))
                .collect::<Vec<_>>(),
        );
        let mut tasks = Vec::new();
        for (i, (dtm, id)) in self.dtms.iter().zip(ids).enumerate() {
            for date in self.days() {
                let p = self.day_params(dtm, date, owned_by_earlier(&extents, i));
                let id = if self.season() {
                    format!("{id}-{}", date.format("%Y-%m-%d"))
                } else {
                    id.clone()
                };
                tasks.push(TaskSpec::new::<WaterStage>(&id, &p)?);
            }
        }
        Step::new("tiles", StageKind::Water, tasks)
    }

    /// The tiles' day outputs grouped by tile, in the tiles' order.
    fn by_tile<'a>(&self, tiles: &'a [water::Output]) -> Vec<(&'a str, Vec<&'a water::Output>)> {
        let mut out: Vec<(&str, Vec<&water::Output>)> = Vec::new();
        for t in tiles {
            match out.iter_mut().find(|(d, _)| *d == t.dtm) {
                Some((_, v)) => v.push(t),
                None => out.push((t.dtm.as_str(), vec![t])),
            }
        }
        out
    }

    /// Each tile's ET0 and ETc product: the day's, or the season's totals.
    fn tile_products(&self, tiles: &[water::Output]) -> Vec<(String, Option<String>)> {
        if !self.season() {
            return tiles
                .iter()
                .map(|t| (t.et0.clone(), t.etc.clone()))
                .collect();
        }
        self.by_tile(tiles)
            .into_iter()
            .map(|(dtm, days)| {
                let stem = file_stem(dtm);
                let etc = days
                    .iter()
                    .any(|t| t.etc.is_some())
                    .then(|| season_uri(&self.tiles_dir(), &stem, "etc"));
                (season_uri(&self.tiles_dir(), &stem, "et0"), etc)
            })
            .collect()
    }

    fn tiles_dir(&self) -> String {
        cloud::uri::join(&self.out, "tiles")
    }
}

/// The extents of tiles before `i` that overlap tile `i`.
fn owned_by_earlier(extents: &[Option<[f64; 4]>], i: usize) -> Vec<[f64; 4]> {
    let Some(Some(me)) = extents.get(i) else {
        return Vec::new();
    };
    extents[..i]
        .iter()
        .flatten()
        .filter(|e| e[0] < me[2] && me[0] < e[2] && e[1] < me[3] && me[1] < e[3])
        .copied()
        .collect()
}

impl Pipeline for WaterPipeline {
    fn name(&self) -> &'static str {
        "water"
    }

    fn steps(&self) -> Vec<&'static str> {
        vec!["tiles", "season", "mosaic"]
    }

    fn describe(&self) -> Value {
        serde_json::json!({
            "dtms": self.dtms, "template": self.template, "out": self.out, "mosaic": self.mosaic,
            "dates": self.dates, "irrigation": self.irrigation,
        })
    }

    fn validate(&self) -> Result<(), DriverError> {
        if self.dtms.is_empty() {
            return Err(DriverError::Invalid("water: no DTM tile given".into()));
        }
        for dtm in &self.dtms {
            for date in self.days() {
                self.day_params(dtm, date, Vec::new())
                    .validate()
                    .map_err(|e| DriverError::Invalid(format!("water: {}", e.message)))?;
            }
        }
        if self.dates.len() as i64 > MAX_SEASON_DAYS {
            return Err(DriverError::Invalid(format!(
                "water: {} days: at most {MAX_SEASON_DAYS} in one run",
                self.dates.len()
            )));
        }
        if let Some(i) = &self.irrigation {
            if self.template.plots.is_none() {
                return Err(DriverError::Invalid(
                    "water: irrigated plots (an NDVI product) need --plots".into(),
                ));
            }
            cloud::validate::uri("ndvi", &i.ndvi)
                .map_err(|e| DriverError::Invalid(format!("water: {}", e.message)))?;
            cloud::validate::number("irrigation threshold", i.threshold, -1.0..=1.0)
                .map_err(|e| DriverError::Invalid(format!("water: {}", e.message)))?;
        }
        Ok(())
    }

    fn plan_next(
        &mut self,
        store: &Store,
        done: &[StepOutcome],
    ) -> Result<Option<Step>, DriverError> {
        let ran = |name: &str| done.iter().any(|o| o.step == name);
        if !ran("tiles") {
            return self.plan_tiles(store).map(Some);
        }
        let tiles: Vec<water::Output> = outcome("water", done, "tiles")?.outputs()?;
        if self.season() && !ran("season") {
            let mut tasks = Vec::new();
            for (dtm, days) in self.by_tile(&tiles) {
                let stem = file_stem(dtm);
                let et0: Vec<String> = days.iter().map(|t| t.et0.clone()).collect();
                let etc: Vec<String> = days.iter().filter_map(|t| t.etc.clone()).collect();
                for (name, inputs) in [("et0", et0), ("etc", etc)] {
                    if inputs.is_empty() {
                        continue;
                    }
                    let output = season_uri(&self.tiles_dir(), &stem, name);
                    tasks.push(sum_task(
                        &format!("season-{}-{name}", id_part(&stem)),
                        inputs,
                        output,
                    )?);
                }
            }
            return Ok(Some(Step::new("season", StageKind::Terrain, tasks)?));
        }
        if self.dtms.len() > 1 && !ran("mosaic") {
            let Some(format) = self.mosaic else {
                return Ok(None);
            };
            let per_tile = self.tile_products(&tiles);
            let mut tasks = Vec::new();
            for (name, suffix) in [("et0", self.suffix()), ("etc", self.suffix())] {
                let inputs: Vec<String> = per_tile
                    .iter()
                    .filter_map(|(et0, etc)| {
                        if name == "et0" {
                            Some(et0.clone())
                        } else {
                            etc.clone()
                        }
                    })
                    .collect();
                if !inputs.is_empty() {
                    tasks.push(mosaic_task(
                        &format!("{name}{suffix}"),
                        inputs,
                        &self.out,
                        format,
                    )?);
                }
            }
            return Ok(Some(Step::new("mosaic", StageKind::Terrain, tasks)?));
        }
        Ok(None)
    }

    fn results(&self, store: &Store, done: &[StepOutcome]) -> Result<Results, DriverError> {
        let tiles: Vec<water::Output> = outcome("water", done, "tiles")?.outputs()?;
        let season = self.season();
        let (unit, what) = if season {
            ("mm over the season", "season total of ")
        } else {
            ("mm/day", "")
        };
        let mut products = Vec::new();
        let per_tile = self.tile_products(&tiles);
        if let Some(format) = self.mosaic.filter(|_| self.dtms.len() > 1) {
            let ext = format.extension();
            let suffix = self.suffix();
            products.push(Product::new(
                &cloud::uri::join(&self.out, &format!("et0{suffix}{ext}")),
                format!("{what}reference evapotranspiration ET0, {unit}, all tiles"),
            ));
            if per_tile.iter().any(|(_, etc)| etc.is_some()) {
                products.push(Product::new(
                    &cloud::uri::join(&self.out, &format!("etc{suffix}{ext}")),
                    format!("{what}crop evapotranspiration ETc, {unit}, all tiles"),
                ));
            }
        }
        for (dtm, (et0, etc)) in self.dtms.iter().zip(&per_tile) {
            products.push(Product::new(et0, format!("{what}ET0 of {dtm}")));
            if let Some(u) = etc {
                products.push(Product::new(u, format!("{what}ETc of {dtm}")));
            }
        }
        for t in tiles.iter().filter(|_| !season) {
            if let Some(u) = &t.png {
                products.push(Product::new(u, format!("ET0 map of {}", t.dtm)));
            }
        }
        // Per plot: each day's tiles merged, then (over a season) the days added up.
        let mut days: BTreeMap<chrono::NaiveDate, Vec<String>> = BTreeMap::new();
        for (t, date) in tiles.iter().zip(self.task_dates()) {
            if let Some(csv) = &t.plots_csv {
                days.entry(date).or_default().push(csv.clone());
            }
        }
        let mut plots = 0;
        let mut volume = 0.0;
        if !days.is_empty() {
            let ndvi = self.plot_ndvi(store)?;
            let merged: Vec<BTreeMap<String, PlotTotal>> = days
                .values()
                .map(|csvs| water::plots::merge_tiles(store, csvs))
                .collect::<Result<_, _>>()?;
            let (name, text, what) = if season {
                let totals = water::plots::season_totals(&merged);
                plots = totals.len();
                volume = totals.values().map(|p| p.volume_m3).sum::<f64>();
                (
                    "plots_season.csv",
                    water::plots::season_csv(&totals, ndvi.as_ref())?,
                    "water use per plot over the season, m³, all tiles",
                )
            } else {
                let merged = &merged[0];
                plots = merged.len();
                volume = merged.values().filter_map(|p| p.volume).sum::<f64>();
                (
                    "plots.csv",
                    water::plots::day_csv(merged, ndvi.as_ref())?,
                    "water use per plot, m³/day, all tiles",
                )
            };
            let uri = cloud::uri::join(&self.out, name);
            store.put(&uri, bytes::Bytes::from(text))?;
            products.push(Product::new(&uri, what));
            // The tiles share one CRS (the mosaic needs it): their .prj says it.
            if let Some(prj) = tiles.iter().find_map(|t| t.plots_prj.clone()) {
                let to = cog::prj_uri(&uri);
                store.put(&to, store.get_capped(&prj, 1 << 20)?)?;
                products.push(Product::new(&to, format!("CRS of {name} (WKT)")));
            }
        }
        // ET0 means weighted by land pixels: per day, then summed over the season's days.
        let land: u64 = tiles.iter().map(|t| t.land_pixels).sum::<u64>() / self.days().len() as u64;
        let mean = (land > 0).then(|| {
            tiles
                .iter()
                .map(|t| t.et0_mean.unwrap_or(0.0) * t.land_pixels as f64)
                .sum::<f64>()
                / land as f64
        });
        let mut summary = serde_json::json!({
            "tiles": self.dtms.len(),
            "land_pixels": land,
            "plots": plots,
        });
        if season {
            summary["days"] = self.dates.len().into();
            summary["et0_season_mean_mm"] = mean.into();
            summary["volume_m3_season"] = volume.into();
        } else {
            summary["et0_mean_mm_day"] = mean.into();
            summary["et0_min_mm_day"] = tiles
                .iter()
                .filter_map(|t| t.et0_min)
                .reduce(f32::min)
                .into();
            summary["et0_max_mm_day"] = tiles
                .iter()
                .filter_map(|t| t.et0_max)
                .reduce(f32::max)
                .into();
            summary["volume_m3_day"] = volume.into();
        }
        Ok(Results { products, summary })
    }
}

impl WaterPipeline {
    /// The date of each task of the `tiles` step, in its order (tile by tile, day by day).
    fn task_dates(&self) -> Vec<NaiveDate> {
        let days = self.days();
        self.dtms
            .iter()
            .flat_map(|_| days.iter().copied())
            .collect()
    }

    /// The plots' NDVI figures, when an NDVI product is given.
    fn plot_ndvi(
        &self,
        store: &Store,
    ) -> Result<Option<BTreeMap<String, water::irrigation::PlotNdvi>>, DriverError> {
        let (Some(i), Some(plots)) = (&self.irrigation, &self.template.plots) else {
            return Ok(None);
        };
        let fail =
            |e: water::WaterError| DriverError::Invalid(format!("water: irrigated plots: {e}"));
        let read = water::stage::read_plots(store, plots).map_err(fail)?;
        water::irrigation::plot_ndvi(store, &read, self.template.dtm_epsg, &i.ndvi, i.threshold)
            .map(Some)
            .map_err(fail)
    }
}

/// Where a tile's season total of `name` (`et0`, `etc`) goes.
fn season_uri(tiles_dir: &str, stem: &str, name: &str) -> String {
    cloud::uri::join(tiles_dir, &format!("{stem}_{name}_season.tif"))
}

/// A `terrain` mosaic task adding `inputs` (one tile's days) up into `output`.
fn sum_task(id: &str, inputs: Vec<String>, output: String) -> Result<TaskSpec, DriverError> {
    let p = TerrainParams::Mosaic(MosaicParams {
        inputs,
        output,
        format: MosaicFormat::Cog,
        raster: RasterOutput::default(),
        combine: cog::Combine::Sum,
    });
    TaskSpec::new::<TerrainStage>(id, &p)
}

fn mosaic_task(
    name: &str,
    inputs: Vec<String>,
    out: &str,
    format: MosaicFormat,
) -> Result<TaskSpec, DriverError> {
    let p = TerrainParams::Mosaic(MosaicParams {
        inputs,
        output: cloud::uri::join(out, &format!("{name}{}", format.extension())),
        format,
        raster: RasterOutput::default(),
        combine: Default::default(),
    });
    TaskSpec::new::<TerrainStage>(&format!("mosaic-{name}"), &p)
}
