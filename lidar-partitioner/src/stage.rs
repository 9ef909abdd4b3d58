//! The `lidar-partitioner` stage: one task partitions one input file (as CloudButton's
//! original did); the same binary is the CLI, the AWS Lambda handler and the AWS Batch worker.

use clap::Parser;
use cloud::{Ctx, Stage, TaskError};
use serde::{Deserialize, Serialize};

use crate::params::{Manifest, Method, OutputFormat, Params};

/// The stage (see [`cloud::Stage`]).
#[derive(Debug, Clone, Copy)]
pub struct PartitionStage;

/// Parameters of one task: partition `input` into `output`.
///
/// Task JSON: `{"id": "t1", "stage": "lidar-partitioner", "params": {"input":
/// "s3://b/in/tile.laz", "output": "s3://b/parts/tile", "capacity": 1600000, "buffer_m": 10}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionTask {
    /// Input LAS/LAZ/COPC URI (path, `file://`, `s3://`, `https://`).
    pub input: String,
    /// Output directory or prefix URI; tiles, `partitions.json` and `status/` go there.
    pub output: String,
    /// See [`Params::capacity`].
    #[serde(default)]
    pub capacity: Option<u64>,
    /// See [`Params::target_mb`].
    #[serde(default)]
    pub target_mb: Option<f64>,
    /// See [`Params::buffer_m`].
    pub buffer_m: f64,
    /// See [`Params::method`].
    #[serde(default)]
    pub method: Method,
    /// See [`Params::format`].
    #[serde(default)]
    pub format: OutputFormat,
    /// See [`Params::max_memory_mb`].
    #[serde(default)]
    pub max_memory_mb: Option<u64>,
    /// See [`Params::epsg`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsg: Option<u32>,
    /// See [`Params::neighbours`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neighbours: Vec<String>,
}

impl PartitionTask {
    /// The partitioning parameters of the task.
    pub fn params(&self) -> Params {
        Params {
            capacity: self.capacity,
            target_mb: self.target_mb,
            buffer_m: self.buffer_m,
            method: self.method,
            format: self.format,
            max_memory_mb: self.max_memory_mb,
            epsg: self.epsg,
            neighbours: self.neighbours.clone(),
        }
    }
}

/// Splits a LAS/LAZ point cloud into balanced, buffered tiles (density method of PDAL's
/// filters.chipper, as in CloudButton) and writes `<stem>-NNNN.<las|laz>` plus
/// `partitions.json` to OUTDIR.
#[derive(Debug, Clone, Parser)]
#[command(name = "lidar-partitioner", version)]
#[command(group(clap::ArgGroup::new("size").required(true).args(["capacity", "target_mb"])))]
pub struct Cli {
    /// Input LAS/LAZ/COPC file (path, file://, s3://bucket/key or https://).
    pub input: String,
    /// Output directory (or s3:// prefix).
    pub outdir: String,
    /// Core points per tile (tiles = ceil(points / capacity)).
    #[arg(long)]
    pub capacity: Option<u64>,
    /// Target uncompressed size of a tile's core points, in MB (instead of --capacity).
    #[arg(long)]
    pub target_mb: Option<f64>,
    /// Buffer width in CRS units (metres for projected CRSs) around each tile's core box.
    #[arg(long, allow_negative_numbers = true)]
    pub buffer: f64,
    /// Splitting method.
    #[arg(long, value_enum, default_value_t = Method::Density)]
    pub method: Method,
    /// Output encoding (same: LAZ for LAZ input, LAS for LAS input).
    #[arg(long, value_enum, default_value_t = OutputFormat::Same)]
    pub format: OutputFormat,
    /// Memory budget in MiB; inputs that need more use the bounded-memory method.
    #[arg(long)]
    pub max_memory_mb: Option<u64>,
    /// EPSG code of the coordinates when the input records no CRS (written into the tiles).
    #[arg(long)]
    pub epsg: Option<u32>,
    /// A neighbouring file whose points within the buffer join the tiles' buffers
    /// (repeatable; same point format and coordinate lattice).
    #[arg(long)]
    pub neighbour: Vec<String>,
    /// Print partitions.json on standard output instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl From<&Cli> for PartitionTask {
    fn from(c: &Cli) -> Self {
        PartitionTask {
            input: c.input.clone(),
            output: c.outdir.clone(),
            capacity: c.capacity,
            target_mb: c.target_mb,
            buffer_m: c.buffer,
            method: c.method,
            format: c.format,
            max_memory_mb: c.max_memory_mb,
            epsg: c.epsg,
            neighbours: c.neighbour.clone(),
        }
    }
}

impl PartitionTask {
    /// Checks the task's parameters and locations (see [`cloud::Stage::validate`]).
    pub fn validate(&self) -> Result<(), TaskError> {
        use cloud::validate;
        validate::uri("input", &self.input)?;
        validate::location("output", &self.output)?;
        validate::count(
            "number of neighbours",
            self.neighbours.len(),
            0..=MAX_NEIGHBOURS,
        )?;
        for n in &self.neighbours {
            validate::uri("neighbour", n)?;
            if n == &self.input {
                return Err(TaskError::invalid_task(format!(
                    "neighbour {n} is the input itself"
                )));
            }
        }
        self.params()
            .validate()
            .map_err(|e| TaskError::invalid_task(e.to_string()))?;
        validate::number("buffer_m", self.buffer_m, 0.0..=MAX_BUFFER_M)?;
        validate::opt_number("target_mb", self.target_mb, 1e-3..=1e6)?;
        if let Some(c) = self.capacity {
            validate::count("capacity", c, 1..=MAX_CAPACITY)?;
        }
        if let Some(m) = self.max_memory_mb {
            validate::count("max_memory_mb", m, 1..=(1 << 24))?;
        }
        if let Some(e) = self.epsg {
            validate::count("epsg", e, 1024..=999_999)?;
            if pointcloud::crs::wkt_of_epsg(e).is_none() {
                return Err(TaskError::invalid_task(format!(
                    "epsg: EPSG:{e} is not in the built-in EPSG table"
                )));
            }
        }
        Ok(())
    }
}

/// Widest buffer accepted: 10 km (a tile's buffer wider than that copies most of a
/// region into every tile).
pub const MAX_BUFFER_M: f64 = 10_000.0;

/// Most neighbouring files one task reads (a file has 8 neighbours on a sheet grid; more
/// means a region's worth of files in every task).
pub const MAX_NEIGHBOURS: usize = 64;

/// Most core points per tile accepted: 2³¹ (a tile's records must fit one allocation).
pub const MAX_CAPACITY: u64 = 1 << 31;

impl Stage for PartitionStage {
    const NAME: &'static str = "lidar-partitioner";
    const VERSION: u32 = 1;
    type Params = PartitionTask;
    type Output = Manifest;
    type Cli = Cli;

    fn status_root(params: &PartitionTask) -> String {
        params.output.clone()
    }

    fn validate(params: &PartitionTask) -> Result<(), TaskError> {
        params.validate()
    }

    fn input_uris(params: &PartitionTask) -> Vec<String> {
        let mut v = vec![params.input.clone()];
        v.extend(params.neighbours.iter().cloned());
        v
    }

    fn run(params: &PartitionTask, ctx: &Ctx) -> Result<Manifest, TaskError> {
        Ok(crate::partition_with(
            ctx,
            &params.input,
            &params.output,
            &params.params(),
        )?)
    }

    fn output_uris(output: &Manifest) -> Vec<String> {
        output.output_uris()
    }

    fn cli(cli: Cli, ctx: &Ctx) -> Result<(), TaskError> {
        let task = PartitionTask::from(&cli);
        task.validate()?;
        let clock = std::time::Instant::now();
        let m = Self::run(&task, ctx)?;
        if cli.json {
            let text = serde_json::to_string_pretty(&m)
                .map_err(|e| TaskError::internal(format!("cannot print the manifest: {e}")))?;
            println!("{text}");
            return Ok(());
        }
        println!("{:<32} {:>12} {:>12}", "tile", "core", "buffer");
        for t in &m.tiles {
            println!(
                "{:<32} {:>12} {:>12}",
                t.file, t.core_points, t.buffer_points
            );
        }
        println!(
            "{} tiles ({:?}, {:?} method) from {} points in {:.2} s; buffer {:.2} % of core; \
             max/min core points {:.4}; manifest {}",
            m.tiles.len(),
            m.mode,
            m.method,
            m.input.points,
            clock.elapsed().as_secs_f64(),
            100.0 * m.buffer_fraction(),
            m.core_ratio(),
            m.manifest_uri
        );
        Ok(())
    }
}
