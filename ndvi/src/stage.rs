//! The `ndvi` stage: task parameters and outputs, the [`cloud::Stage`] implementation (CLI,
//! Lambda handler and Batch worker in one binary), and the tile runner.

use cloud::{Ctx, RunOptions, Stage, TaskError};
use serde::{Deserialize, Serialize};

use crate::preprocess::{PreprocessOutput, PreprocessTask, run_preprocess};
use crate::scene::SceneBands;
use crate::tile::{
    MergeOutput, MergeTask, ProductOutput, ProductTask, TilePlan, WindowOutput, WindowTask,
    run_merge, run_product, run_window, window_task_id,
};

#[cfg(feature = "cli")]
pub mod cli;

/// Parameters of an `ndvi` task, tagged by `"op"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Params {
    /// One window of a tile, both dates (the serverless unit).
    Window(WindowTask),
    /// Assemble a tile's window results into COGs and the quicklook.
    Merge(MergeTask),
    /// A whole-raster NDVI or difference (what `ndvi compute` / `ndvi diff` do).
    Product(ProductTask),
    /// Sentinel-2 product → COGs (serverful: Batch).
    Preprocess(PreprocessTask),
}

/// Output of an `ndvi` task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Output {
    Window(WindowOutput),
    Merge(MergeOutput),
    Product(ProductOutput),
    Preprocess(PreprocessOutput),
}

/// The `ndvi` stage.
pub struct NdviStage;

/// The band files a scene contributes to a task (SCL only when masking).
fn scene_inputs(scene: &SceneBands, masking: bool, out: &mut Vec<String>) {
    out.push(scene.red.clone());
    out.push(scene.nir.clone());
    if masking && let Some(scl) = &scene.scl {
        out.push(scl.clone());
    }
}

fn validate_scene(what: &str, scene: &SceneBands) -> Result<(), TaskError> {
    use cloud::validate;
    validate::uri(&format!("{what} red band"), &scene.red)?;
    validate::uri(&format!("{what} NIR band"), &scene.nir)?;
    if let Some(scl) = &scene.scl {
        validate::uri(&format!("{what} SCL band"), scl)?;
    }
    for (band, r) in [
        ("red", &scene.radiometry.red),
        ("NIR", &scene.radiometry.nir),
    ] {
        r.validate(&format!("{what} {band}"))
            .map_err(|e| TaskError::invalid_task(e.to_string()))?;
    }
    Ok(())
}

fn validate_mask(mask: &[u8]) -> Result<(), TaskError> {
    if let Some(c) = mask.iter().find(|&&c| c > 11) {
        return Err(TaskError::invalid_task(format!(
            "scl_mask: {c} is not a Sentinel-2 scene classification (0-11)"
        )));
    }
    Ok(())
}

/// Checks the product COG settings: block size a multiple of 16 in 16..=4096, DEFLATE level
/// 1–12.
pub fn validate_cog(blocksize: u32, level: Option<i32>) -> Result<(), TaskError> {
    use cloud::validate;
    if !blocksize.is_multiple_of(16) {
        return Err(TaskError::invalid_task(format!(
            "blocksize must be a multiple of 16, not {blocksize}"
        )));
    }
    validate::count("blocksize", blocksize, 16..=4096)?;
    if let Some(l) = level {
        validate::count("level", l, 1..=12)?;
    }
    Ok(())
}

impl Params {
    /// Checks the parameters and locations without reading anything (see
    /// [`cloud::Stage::validate`]).
    pub fn validate(&self) -> Result<(), TaskError> {
        use cloud::validate;
        match self {
            Params::Window(t) => {
                validate_scene("before", &t.before)?;
                validate_scene("after", &t.after)?;
                validate_mask(&t.scl_mask)?;
                validate::location("out", &t.out)?;
                validate::count("window width", t.window.width, 1..=MAX_WINDOW_SIDE)?;
                validate::count("window height", t.window.height, 1..=MAX_WINDOW_SIDE)?;
                Ok(())
            }
            Params::Merge(t) => {
                validate::location("out", &t.out)?;
                validate::count(
                    "number of windows",
                    t.windows.len(),
                    1..=crate::tile::MAX_WINDOWS,
                )?;
                validate_cog(t.blocksize, t.level)
            }
            Params::Product(t) => {
                validate_scene("before", &t.before)?;
                if let Some(a) = &t.after {
                    validate_scene("after", a)?;
                }
                validate_mask(&t.scl_mask)?;
                validate::uri("out", &t.out)?;
                validate::count("window", t.window, 16..=MAX_WINDOW_SIDE)?;
                validate_cog(t.blocksize, t.level)?;
                let inputs = Self::input_uris_of(self);
                let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                let outputs: Vec<&str> = [
                    Some(&t.out),
                    t.ndvi_before.as_ref(),
                    t.ndvi_after.as_ref(),
                    t.png.as_ref(),
                ]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
                for o in &outputs {
                    validate::uri("output", o)?;
                }
                validate::distinct_outputs(&inputs, &outputs)
            }
            Params::Preprocess(t) => {
                validate::location("product", &t.product)?;
                validate::location("out", &t.out)?;
                validate_cog(t.blocksize, None)
            }
        }
    }

    fn input_uris_of(&self) -> Vec<String> {
        let mut v = Vec::new();
        match self {
            Params::Window(t) => {
                scene_inputs(&t.before, !t.scl_mask.is_empty(), &mut v);
                scene_inputs(&t.after, !t.scl_mask.is_empty(), &mut v);
            }
            Params::Merge(t) => {
                for w in &t.windows {
                    for name in [
                        crate::tile::NDVI_BEFORE,
                        crate::tile::NDVI_AFTER,
                        crate::tile::NDVI_DIFF,
                    ] {
                        v.push(crate::tile::window_uri(&t.out, w, name));
                    }
                }
            }
            Params::Product(t) => {
                scene_inputs(&t.before, !t.scl_mask.is_empty(), &mut v);
                if let Some(a) = &t.after {
                    scene_inputs(a, !t.scl_mask.is_empty(), &mut v);
                }
            }
            // A product folder (a .SAFE directory) is not one object: see `input_folders`.
            Params::Preprocess(_) => {}
        }
        v
    }
}

/// Widest window side accepted, pixels (a 10980-pixel Sentinel-2 tile in one window).
pub const MAX_WINDOW_SIDE: u64 = 1 << 15;

impl Stage for NdviStage {
    const NAME: &'static str = "ndvi";
    const VERSION: u32 = 1;
    type Params = Params;
    type Output = Output;

    fn validate(params: &Params) -> Result<(), TaskError> {
        params.validate()
    }

    fn input_uris(params: &Params) -> Vec<String> {
        params.input_uris_of()
    }

    /// A preprocessing task reads its whole product folder (Sen2Cor reads every file of it).
    fn input_folders(params: &Params) -> Vec<String> {
        match params {
            Params::Preprocess(t) => vec![crate::preprocess::product_prefix(&t.product)],
            _ => Vec::new(),
        }
    }

    fn status_root(params: &Params) -> String {
        match params {
            Params::Window(t) => t.out.clone(),
            Params::Merge(t) => t.out.clone(),
            Params::Product(t) => cloud::uri::parent(&t.out),
            Params::Preprocess(t) => t.out.clone(),
        }
    }

    fn run(params: &Params, ctx: &Ctx) -> Result<Output, TaskError> {
        Ok(match params {
            Params::Window(t) => Output::Window(run_window(&ctx.store, t)?),
            Params::Merge(t) => Output::Merge(run_merge(&ctx.store, t, Some(ctx))?),
            Params::Product(t) => Output::Product(run_product(&ctx.store, t, Some(ctx))?),
            Params::Preprocess(t) => Output::Preprocess(run_preprocess(&ctx.store, t)?),
        })
    }

    fn output_uris(output: &Output) -> Vec<String> {
        match output {
            Output::Window(o) => vec![
                o.ndvi_before.clone(),
                o.ndvi_after.clone(),
                o.ndvi_diff.clone(),
            ],
            Output::Merge(o) => [
                Some(&o.ndvi_before),
                Some(&o.ndvi_after),
                Some(&o.ndvi_diff),
                o.quicklook.as_ref(),
            ]
            .into_iter()
            .flatten()
            .cloned()
            .collect(),
            Output::Product(o) => [
                Some(&o.out),
                o.ndvi_before.as_ref(),
                o.ndvi_after.as_ref(),
                o.png.as_ref(),
            ]
            .into_iter()
            .flatten()
            .cloned()
            .collect(),
            Output::Preprocess(o) => o
                .assets
                .values()
                .cloned()
                .chain(std::iter::once(o.stac_item.clone()))
                .collect(),
        }
    }
}

/// A task of the stage: `{id, stage: "ndvi", params}`.
pub fn task(id: &str, params: Params) -> cloud::Task<Params> {
    cloud::Task {
        id: id.to_string(),
        stage: NdviStage::NAME.to_string(),
        params,
    }
}

impl TilePlan {
    /// The window tasks (ids `window-r{row}-c{col}`), to run in any order and concurrently.
    pub fn window_tasks(&self) -> Vec<cloud::Task<Params>> {
        self.windows
            .iter()
            .map(|w| task(&window_task_id(&w.window), Params::Window(w.clone())))
            .collect()
    }

    /// The merge task (id `merge`), to run after every window task succeeded.
    pub fn merge_task(&self) -> cloud::Task<Params> {
        task("merge", Params::Merge(self.merge.clone()))
    }
}

/// Writes the plan's window tasks as a JSON-lines manifest (`{out}/tasks/windows.jsonl`, for
/// a Batch array job or the driver) and the merge task (`{out}/tasks/merge.json`).
pub fn write_plan(store: &cloud::Store, plan: &TilePlan) -> Result<(String, String), TaskError> {
    let manifest = cloud::uri::join(&plan.merge.out, "tasks/windows.jsonl");
    let text = cloud::task::manifest_text(plan.window_tasks())
        .map_err(|e| TaskError::internal(format!("cannot serialise a task: {e}")))?;
    store.put(&manifest, bytes::Bytes::from(text))?;
    let merge = cloud::uri::join(&plan.merge.out, "tasks/merge.json");
    store.put_json(&merge, &plan.merge_task())?;
    Ok((manifest, merge))
}

/// Summary of a local tile run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TileReport {
    pub before: SceneBands,
    pub after: SceneBands,
    pub window_tasks: usize,
    /// Window tasks skipped because an earlier run finished them.
    pub skipped: usize,
    /// Wall times of the window tasks that ran (not the skipped ones), seconds: min, median,
    /// max.
    pub window_seconds: [f64; 3],
    pub merge: MergeOutput,
}

/// Runs a planned tile locally: every window task through the task adapter (status files,
/// resume), `jobs` at a time (0: one per core), then the merge task.
pub fn run_tile_plan(
    ctx: &Ctx,
    plan: &TilePlan,
    jobs: usize,
    force: bool,
) -> Result<TileReport, TaskError> {
    let options = RunOptions {
        force,
        executor: "local".to_string(),
        deadline: None,
    };
    let tasks = plan
        .window_tasks()
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TaskError::internal(format!("cannot serialise a task: {e}")))?;
    let windows = cloud::entry::run_tasks::<NdviStage>(&tasks, ctx, &options, jobs, "window tasks")
        .map_err(|e| {
            let at = &plan.merge.out;
            TaskError::new(
                e.kind,
                format!("{} (statuses under {at}/status/)", e.message),
            )
        })?;
    let merge = plan.merge_task();
    let value = serde_json::to_value(&merge)
        .map_err(|e| TaskError::internal(format!("cannot serialise the merge task: {e}")))?;
    let status = cloud::run_task::<NdviStage>(value, ctx, &options)?;
    if let Some(e) = status.error {
        return Err(e);
    }
    let merge: MergeOutput = match status.output.map(serde_json::from_value::<Output>) {
        Some(Ok(Output::Merge(m))) => m,
        _ => {
            return Err(TaskError::internal(
                "the merge task returned no merge output",
            ));
        }
    };
    Ok(TileReport {
        before: plan.before.clone(),
        after: plan.after.clone(),
        window_tasks: tasks.len(),
        skipped: windows.skipped(),
        window_seconds: windows.seconds(),
        merge,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn params_round_trip_and_reject_unknown_fields() {
        let w = WindowTask {
            before: SceneBands::from_uris("a/B04.tif", "a/B08.tif", Some("a/SCL.tif"), 0.0),
            after: SceneBands::from_uris("b/B04.tif", "b/B08.tif", None, -1000.0),
            window: cog::Window::new(0, 1024, 1024, 74),
            out: "s3://bucket/out".into(),
            scl_mask: vec![3, 8],
        };
        let t = task("window-r01024-c00000", Params::Window(w));
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["params"]["op"], "window");
        let back: cloud::Task<Params> = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, t);
        let mut bad = json.clone();
        bad["params"]["colour"] = serde_json::json!(1);
        let e = serde_json::from_value::<cloud::Task<Params>>(bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour"), "{e}");
        let mut bad = json;
        bad["params"]["before"]["nir_band"] = serde_json::json!("x");
        assert!(serde_json::from_value::<cloud::Task<Params>>(bad).is_err());
        assert_eq!(NdviStage::status_root(&t.params), "s3://bucket/out");
    }
}
