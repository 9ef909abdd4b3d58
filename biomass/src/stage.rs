//! The `biomass` stage: task parameters and outputs, and the [`cloud::Stage`] implementation
//! (CLI, AWS Lambda handler and AWS Batch worker in one binary).
//!
//! Serverless runs: [`workflow::plan`] gives one `chunk` task per chunk (reads its window plus
//! halo, writes `chunks/chunk-NNNNN.json` and the smoothed core COG) and one `merge` task,
//! run after every chunk task has finished: it stitches tops and crowns (flooding the few
//! crowns that cross chunks), computes the predictors, fits the random forest on the training
//! CSV (42 rows: milliseconds) or loads `model.json`, predicts and writes every output. The
//! merge holds the whole label image (4 bytes per pixel) and the CHM in memory, so very large
//! CHMs run it on Batch. A `run` task does everything in one process.

use cloud::{Ctx, Stage, TaskError};
use serde::{Deserialize, Serialize};

use crate::workflow::{self, ChunkOutput, ChunkParams, MergeParams, RunOutput, RunParams};

#[cfg(feature = "cli")]
pub mod cli;

/// Parameters of a `biomass` task, tagged by `"op"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Params {
    /// The whole workflow in one task.
    Run(RunParams),
    /// One chunk (the serverless unit).
    Chunk(ChunkParams),
    /// Stitch the chunks, fit/predict and write the outputs.
    Merge(MergeParams),
}

/// Output of a `biomass` task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Output {
    /// Summary of a run.
    Run(RunOutput),
    /// What a chunk wrote.
    Chunk(ChunkOutput),
    /// Summary of the merged run.
    Merge(RunOutput),
}

/// The `biomass` stage.
pub struct BiomassStage;

/// Most chunks per side of a chunked run (64² = 4096 tasks).
pub const MAX_CHUNKS_PER_SIDE: usize = 64;
/// Widest watershed halo, pixels.
pub const MAX_HALO: usize = 4096;

fn validate_model_source(
    training: Option<&String>,
    model: Option<&String>,
) -> Result<(), TaskError> {
    match (training, model) {
        (None, None) => Err(TaskError::invalid_task(
            "no training table and no model: biomass needs --training CSV (or --model \
             model.json); for tree tops and crowns alone use `biomass treetops` / `biomass \
             crowns`",
        )),
        (Some(_), Some(_)) => Err(TaskError::invalid_task(
            "give a training table or a model, not both",
        )),
        (Some(u), None) | (None, Some(u)) => cloud::validate::uri("training/model", u),
    }
}

fn validate_forest(f: &crate::forest::ForestParams) -> Result<(), TaskError> {
    use cloud::validate::count;
    count("forest n_trees", f.n_trees, 1..=10_000)?;
    count("forest max_depth", f.max_depth, 1..=64)?;
    if let Some(m) = f.max_features {
        count(
            "forest max_features",
            m,
            1..=crate::predictors::N_PREDICTORS,
        )?;
    }
    count("forest min_samples_leaf", f.min_samples_leaf, 1..=100_000)?;
    count("forest min_samples_split", f.min_samples_split, 2..=100_000)?;
    Ok(())
}

impl Params {
    /// Checks the parameters and locations without reading anything (see
    /// [`cloud::Stage::validate`]).
    pub fn validate(&self) -> Result<(), TaskError> {
        use cloud::validate;
        let param = |e: crate::BiomassError| TaskError::invalid_task(e.to_string());
        match self {
            Params::Run(p) => {
                validate::uri("chm", &p.chm)?;
                validate::location("out", &p.out)?;
                validate_model_source(p.training.as_ref(), p.model.as_ref())?;
                p.segment.validate().map_err(param)?;
                validate_forest(&p.forest)?;
                if let Some(c) = p.chunks {
                    validate::count("chunks", c, 1..=MAX_CHUNKS_PER_SIDE)?;
                }
                validate::count("halo", p.halo, 0..=MAX_HALO)
            }
            Params::Chunk(p) => {
                validate::uri("chm", &p.chm)?;
                validate::location("out", &p.out)?;
                p.segment.validate().map_err(param)?;
                validate::count("halo", p.halo, 0..=MAX_HALO)?;
                if p.window.rows.is_empty() || p.window.cols.is_empty() {
                    return Err(TaskError::invalid_task(format!(
                        "chunk {}: empty window {:?}x{:?}",
                        p.index, p.window.rows, p.window.cols
                    )));
                }
                Ok(())
            }
            Params::Merge(p) => {
                validate::uri("chm", &p.chm)?;
                validate::location("out", &p.out)?;
                validate_model_source(p.training.as_ref(), p.model.as_ref())?;
                p.segment.validate().map_err(param)?;
                validate_forest(&p.forest)?;
                validate::count(
                    "number of chunks",
                    p.chunks.len(),
                    1..=MAX_CHUNKS_PER_SIDE * MAX_CHUNKS_PER_SIDE,
                )?;
                for c in &p.chunks {
                    validate::uri("chunk", c)?;
                }
                Ok(())
            }
        }
    }

    /// The objects the task reads.
    pub fn input_uris(&self) -> Vec<String> {
        match self {
            Params::Run(p) => std::iter::once(p.chm.clone())
                .chain(p.training.clone())
                .chain(p.model.clone())
                .collect(),
            Params::Chunk(p) => vec![p.chm.clone()],
            Params::Merge(p) => std::iter::once(p.chm.clone())
                .chain(p.chunks.iter().cloned())
                .chain(p.training.clone())
                .chain(p.model.clone())
                .collect(),
        }
    }
}

impl Stage for BiomassStage {
    const NAME: &'static str = "biomass";
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
        match params {
            Params::Run(p) => p.out.clone(),
            Params::Chunk(p) => p.out.clone(),
            Params::Merge(p) => p.out.clone(),
        }
    }

    fn run(params: &Params, ctx: &Ctx) -> Result<Output, TaskError> {
        Ok(match params {
            Params::Run(p) => Output::Run(workflow::run(p, ctx)?),
            Params::Chunk(p) => Output::Chunk(workflow::run_chunk(p, ctx)?),
            Params::Merge(p) => Output::Merge(workflow::run_merge(p, ctx)?),
        })
    }

    fn output_uris(output: &Output) -> Vec<String> {
        match output {
            Output::Run(o) | Output::Merge(o) => o.outputs.clone(),
            Output::Chunk(o) => vec![o.result.clone(), o.smoothed.clone()],
        }
    }
}

/// A task of the stage: `{id, stage: "biomass", params}`.
pub fn task(id: &str, params: Params) -> cloud::Task<Params> {
    cloud::Task {
        id: id.to_string(),
        stage: BiomassStage::NAME.to_string(),
        params,
    }
}
