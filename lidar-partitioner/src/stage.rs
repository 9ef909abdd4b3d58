//! The `lidar-partitioner` stage: one task partitions one input file (as CloudButton's
//! original did); the same binary is the CLI, the AWS Lambda handler and the AWS Batch worker.

use cloud::{Ctx, Stage, TaskError};
use serde::{Deserialize, Serialize};

use crate::params::{Manifest, Method, OutputFormat, Params};

#[cfg(feature = "cli")]
pub mod cli;

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
}
