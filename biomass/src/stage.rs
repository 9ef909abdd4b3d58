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

use clap::{Args, Parser, Subcommand};
use cloud::{Ctx, Stage, TaskError};
use serde::{Deserialize, Serialize};

use crate::peaks::Connectivity;
use crate::segment::SegmentParams;
use crate::watershed::Flood;
use crate::workflow::{
    self, ChunkOutput, ChunkParams, DEFAULT_HALO, MergeParams, RunOutput, RunParams,
};

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
    type Cli = Cli;

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

    fn cli(cli: Cli, ctx: &Ctx) -> Result<(), TaskError> {
        match cli.command {
            Command::Run(a) => {
                let run = a.params();
                Params::Run(run.clone()).validate()?;
                if a.plan {
                    let n = a.chunks.unwrap_or(2).max(1);
                    let (chunks, merge) = workflow::plan(&ctx.store, &run, n)?;
                    let tasks: Vec<_> = chunks
                        .into_iter()
                        .map(|c| task(&format!("chunk-{:05}", c.index), Params::Chunk(c)))
                        .collect();
                    return print_json(&serde_json::json!({
                        "chunk_tasks": tasks,
                        "merge_task": task("merge", Params::Merge(merge)),
                    }));
                }
                print_json(&workflow::run(&run, ctx)?)
            }
            Command::Treetops(a) => {
                let params = a.seg.params();
                let (csv, n) = workflow::treetops_csv(&ctx.store, &a.chm, &params)?;
                ctx.store
                    .put(&a.out, bytes::Bytes::from(csv))
                    .map_err(crate::BiomassError::from)?;
                print_json(&serde_json::json!({"tops": n, "out": a.out}))
            }
            Command::Crowns(a) => {
                let params = a.seg.params();
                let n =
                    workflow::write_crowns(&ctx.store, &a.chm, &a.out, &params, a.chunks, a.halo)?;
                print_json(&serde_json::json!({"crowns": n, "out": a.out}))
            }
        }
    }
}

fn print_json<T: Serialize>(v: &T) -> Result<(), TaskError> {
    let s = serde_json::to_string_pretty(v)
        .map_err(|e| TaskError::internal(format!("cannot print the result: {e}")))?;
    println!("{s}");
    Ok(())
}

/// A task of the stage: `{id, stage: "biomass", params}`.
pub fn task(id: &str, params: Params) -> cloud::Task<Params> {
    cloud::Task {
        id: id.to_string(),
        stage: BiomassStage::NAME.to_string(),
        params,
    }
}

/// Tree tops, watershed crowns and random-forest biomass from a canopy height model.
#[derive(Debug, Parser)]
#[command(name = "biomass", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole workflow: tops, crowns, predictors, biomass, maps.
    Run(RunArgs),
    /// Tree tops only, as CSV (id,x,y,height,...).
    Treetops(TopsArgs),
    /// Crown labels only, as a uint32 COG.
    Crowns(CrownArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FloodArg {
    /// Flood the smoothed CHM as the NEON tutorial does.
    Neon,
    /// Flood the negated smoothed CHM (tops are basins).
    Inverted,
}

/// Segmentation options shared by the subcommands.
#[derive(Debug, Args)]
struct SegArgs {
    /// Which surface the watershed floods.
    #[arg(long, value_enum, default_value = "neon")]
    flood: FloodArg,
    /// Tree tops need a smoothed height above this, metres (default: the smoothed minimum).
    #[arg(long)]
    min_height: Option<f32>,
    /// Watershed connectivity, 4 or 8.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(4..=8))]
    connectivity: u8,
    /// Gaussian sigma, pixels.
    #[arg(long, default_value_t = 2.0)]
    sigma: f64,
    /// Gaussian kernel radius in sigmas (NEON: 2; scikit-image's default: 4).
    #[arg(long, default_value_t = 2.0)]
    truncate: f64,
    /// Gaussian edge handling (NEON: constant 0; scikit-image's `gaussian` default: nearest).
    #[arg(long, value_enum, default_value = "constant")]
    gaussian_mode: GaussianModeArg,
    /// Peak footprint side, pixels.
    #[arg(long, default_value_t = 5)]
    footprint: usize,
    /// Tree tops at least this many pixels apart, with scikit-image's default footprint
    /// (2·N+1) instead of --footprint: `peak_local_max(min_distance=N)`.
    #[arg(long)]
    min_distance: Option<usize>,
    /// Flood only where the smoothed CHM is above this height, metres (scikit-image's
    /// `watershed(…, mask=smoothed > H)`); default: where the CHM is above 0 (NEON).
    #[arg(long)]
    mask_above: Option<f32>,
    /// Keep the smoothed heights over bare ground (scikit-image's `gaussian` alone); NEON
    /// sets them to 0.
    #[arg(long)]
    smooth_ground: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum GaussianModeArg {
    /// Zero outside the image (NEON).
    Constant,
    /// The edge value repeats (scikit-image's `gaussian` default).
    Nearest,
    /// scipy's default.
    Reflect,
    Mirror,
}

impl SegArgs {
    fn params(&self) -> SegmentParams {
        let d = SegmentParams::default();
        SegmentParams {
            flood: match self.flood {
                FloodArg::Neon => Flood::Neon,
                FloodArg::Inverted => Flood::Inverted,
            },
            min_height: self.min_height,
            connectivity: if self.connectivity == 8 {
                Connectivity::Eight
            } else {
                Connectivity::Four
            },
            gaussian: crate::GaussianParams {
                sigma: self.sigma,
                truncate: self.truncate,
                mode: match self.gaussian_mode {
                    GaussianModeArg::Constant => crate::BorderMode::Constant(0.0),
                    GaussianModeArg::Nearest => crate::BorderMode::Nearest,
                    GaussianModeArg::Reflect => crate::BorderMode::Reflect,
                    GaussianModeArg::Mirror => crate::BorderMode::Mirror,
                },
            },
            peaks: match self.min_distance {
                Some(n) => crate::PeakParams {
                    min_distance: n,
                    footprint: None,
                    ..d.peaks
                },
                None => crate::PeakParams {
                    footprint: Some((self.footprint, self.footprint)),
                    ..d.peaks
                },
            },
            mask_above: self.mask_above,
            smooth_ground: self.smooth_ground,
            ..d
        }
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The CHM (GeoTIFF/COG, metres): a path or URI.
    chm: String,
    /// Training CSV (headerless: biomass kg, then the 11 predictors).
    #[arg(long)]
    training: Option<String>,
    /// Use a fitted model.json instead of training.
    #[arg(long, conflicts_with = "training")]
    model: Option<String>,
    /// Output directory (path or URI).
    #[arg(short, long)]
    out: String,
    /// Process as N×N chunks (in parallel); the result equals the whole-image run.
    #[arg(long)]
    chunks: Option<usize>,
    /// Watershed halo of each chunk, pixels.
    #[arg(long, default_value_t = DEFAULT_HALO)]
    halo: usize,
    /// Do not write the PNG maps.
    #[arg(long)]
    no_maps: bool,
    /// Print the serverless tasks (one per chunk, then the merge) instead of running.
    #[arg(long)]
    plan: bool,
    #[command(flatten)]
    seg: SegArgs,
}

impl RunArgs {
    fn params(&self) -> RunParams {
        RunParams {
            chm: self.chm.clone(),
            training: self.training.clone(),
            model: self.model.clone(),
            out: self.out.clone(),
            segment: self.seg.params(),
            forest: Default::default(),
            chunks: self.chunks,
            halo: self.halo,
            maps: !self.no_maps,
        }
    }
}

#[derive(Debug, Args)]
struct TopsArgs {
    /// The CHM.
    chm: String,
    /// Output CSV.
    #[arg(short, long)]
    out: String,
    #[command(flatten)]
    seg: SegArgs,
}

#[derive(Debug, Args)]
struct CrownArgs {
    /// The CHM.
    chm: String,
    /// Output labels COG.
    #[arg(short, long)]
    out: String,
    /// Process as N×N chunks.
    #[arg(long)]
    chunks: Option<usize>,
    /// Watershed halo of each chunk, pixels.
    #[arg(long, default_value_t = DEFAULT_HALO)]
    halo: usize,
    #[command(flatten)]
    seg: SegArgs,
}
