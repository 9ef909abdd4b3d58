//! The command line of the `biomass` binary (feature `cli`).

use clap::{Args, Parser, Subcommand};

use super::*;
use crate::peaks::Connectivity;
use crate::segment::SegmentParams;
use crate::watershed::Flood;
use crate::workflow::DEFAULT_HALO;

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

impl cloud::StageCli for Cli {
    type Stage = BiomassStage;

    fn run(self, ctx: &Ctx) -> Result<(), TaskError> {
        match self.command {
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
