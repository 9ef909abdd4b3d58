//! The `ndvi` pipeline: NDVI of two dates and their difference over one Sentinel-2 tile.
//!
//! 1. `windows`: one `ndvi` window task per tile-aligned window (1024 px by default), each
//!    reading both dates' B04/B08 windows by range requests and writing its NDVI before,
//!    after and difference.
//! 2. `merge`: one task assembles `ndvi_before.tif`, `ndvi_after.tif`, `ndvi_diff.tif`
//!    (float32 COGs) and the `ndvi_diff.png` quicklook.
//!
//! Scenes are given as scene references (dates with an MGRS tile, scene ids, STAC items;
//! `ndvi::plan_tile`) or as explicit band URIs.

use cloud::Store;
use ndvi::NdviStage;
use ndvi::scene::SceneBands;
use ndvi::tile::{MergeTask, TilePlan, TileRequest, WindowTask, check_coverage};
use serde_json::Value;

use super::{Pipeline, Product, Results, outcome};
use crate::error::DriverError;
use crate::exec::StepOutcome;
use crate::plan::{Step, TaskSpec};
use crate::stage::StageKind;

/// What the two dates are.
#[derive(Debug, Clone)]
pub enum NdviInput {
    /// Scene references resolved by the `ndvi` crate.
    Request(TileRequest),
    /// Explicit bands of each date, with the output settings.
    Bands {
        before: SceneBands,
        after: SceneBands,
        out: String,
        window: u64,
        blocksize: u32,
        quicklook: bool,
    },
}

/// Settings of an NDVI run.
#[derive(Debug, Clone)]
pub struct NdviPipeline {
    pub input: NdviInput,
    plan: Option<TilePlan>,
}

impl NdviPipeline {
    pub fn new(input: NdviInput) -> NdviPipeline {
        NdviPipeline { input, plan: None }
    }
}

/// Plans a tile from explicit bands (what `ndvi::plan_tile` does after resolving scenes).
pub fn plan_bands(
    store: &Store,
    before: &SceneBands,
    after: &SceneBands,
    out: &str,
    window: u64,
    blocksize: u32,
    quicklook: bool,
) -> Result<TilePlan, DriverError> {
    let plan_err = |e: ndvi::NdviError| DriverError::plan("ndvi", e);
    if window == 0 {
        return Err(DriverError::Invalid(
            "ndvi: the window must be at least 1 px".into(),
        ));
    }
    let (b, a) = rayon::join(
        || ndvi::io::SceneReader::open(store, before, &[]),
        || ndvi::io::SceneReader::open(store, after, &[]),
    );
    let (b, a) = (b.map_err(plan_err)?, a.map_err(plan_err)?);
    ndvi::io::check_dates(&b, &a).map_err(plan_err)?;
    let grid = b.grid();
    let windows = b.red.plan_windows(window);
    check_coverage(&windows, grid.width, grid.height).map_err(plan_err)?;
    let merge = MergeTask {
        out: out.to_string(),
        grid: grid.clone(),
        windows: windows.clone(),
        blocksize,
        level: None,
        quicklook: quicklook.then(ndvi::quicklook::QuicklookOptions::default),
    };
    let windows = windows
        .into_iter()
        .map(|window| WindowTask {
            before: before.clone(),
            after: after.clone(),
            window,
            out: out.to_string(),
            scl_mask: Vec::new(),
        })
        .collect();
    Ok(TilePlan {
        before: before.clone(),
        after: after.clone(),
        grid,
        windows,
        merge,
    })
}

impl Pipeline for NdviPipeline {
    fn name(&self) -> &'static str {
        "ndvi"
    }

    fn describe(&self) -> Value {
        match &self.input {
            NdviInput::Request(r) => serde_json::json!({ "request": r }),
            NdviInput::Bands {
                before,
                after,
                out,
                window,
                blocksize,
                quicklook,
            } => serde_json::json!({
                "before": before, "after": after, "out": out, "window": window,
                "blocksize": blocksize, "quicklook": quicklook
            }),
        }
    }

    fn validate(&self) -> Result<(), DriverError> {
        let invalid = |e: cloud::TaskError| DriverError::Invalid(format!("ndvi: {}", e.message));
        let (window, blocksize, level) = match &self.input {
            NdviInput::Request(r) => (r.window, r.blocksize, r.level),
            NdviInput::Bands {
                window, blocksize, ..
            } => (*window, *blocksize, None),
        };
        cloud::validate::count("window", window, 16..=ndvi::stage::MAX_WINDOW_SIDE)
            .map_err(invalid)?;
        ndvi::stage::validate_cog(blocksize, level).map_err(invalid)
    }

    fn plan_next(
        &mut self,
        store: &Store,
        done: &[StepOutcome],
    ) -> Result<Option<Step>, DriverError> {
        match done.len() {
            0 => {
                self.validate()?;
                let plan = match &self.input {
                    NdviInput::Request(r) => {
                        ndvi::plan_tile(store, r).map_err(|e| DriverError::plan("ndvi", e))?
                    }
                    NdviInput::Bands {
                        before,
                        after,
                        out,
                        window,
                        blocksize,
                        quicklook,
                    } => plan_bands(store, before, after, out, *window, *blocksize, *quicklook)?,
                };
                let tasks = plan
                    .window_tasks()
                    .into_iter()
                    .map(|t| TaskSpec::new::<NdviStage>(&t.id, &t.params))
                    .collect::<Result<Vec<_>, _>>()?;
                self.plan = Some(plan);
                Ok(Some(Step::new("windows", StageKind::Ndvi, tasks)?))
            }
            1 => {
                let plan = self
                    .plan
                    .as_ref()
                    .ok_or_else(|| DriverError::Invalid("ndvi: not planned".into()))?;
                let t = plan.merge_task();
                let task = TaskSpec::new::<NdviStage>(&t.id, &t.params)?;
                Ok(Some(Step::new("merge", StageKind::Ndvi, vec![task])?))
            }
            _ => Ok(None),
        }
    }

    fn results(&self, _store: &Store, done: &[StepOutcome]) -> Result<Results, DriverError> {
        let out: Vec<ndvi::stage::Output> = outcome("ndvi", done, "merge")?.outputs()?;
        let Some(ndvi::stage::Output::Merge(m)) = out.into_iter().next() else {
            return Err(DriverError::Invalid(
                "ndvi: the merge task returned no merge output".into(),
            ));
        };
        let mut products = vec![
            Product::new(&m.ndvi_before, "NDVI of the earlier date"),
            Product::new(&m.ndvi_after, "NDVI of the later date"),
            Product::new(&m.ndvi_diff, "NDVI difference, later − earlier"),
        ];
        if let Some(q) = &m.quicklook {
            products.push(Product::new(q, "quicklook of the difference"));
        }
        Ok(Results {
            products,
            summary: serde_json::json!({
                "windows": done.first().map_or(0, |d| d.records.len()),
                "stats_before": m.stats_before,
                "stats_after": m.stats_after,
                "stats_diff": m.stats_diff,
            }),
        })
    }
}
