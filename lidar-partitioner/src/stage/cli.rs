//! The command line of the `lidar-partitioner` binary (feature `cli`).

use clap::Parser;

use super::*;
use crate::params::{Method, OutputFormat};

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
            params: Params {
                capacity: c.capacity,
                target_mb: c.target_mb,
                buffer_m: c.buffer,
                method: c.method,
                format: c.format,
                max_memory_mb: c.max_memory_mb,
                epsg: c.epsg,
                neighbours: c.neighbour.clone(),
            },
        }
    }
}

impl cloud::StageCli for Cli {
    type Stage = PartitionStage;

    fn run(self, ctx: &Ctx) -> Result<(), TaskError> {
        let task = PartitionTask::from(&self);
        task.validate()?;
        let clock = std::time::Instant::now();
        let m = PartitionStage::run(&task, ctx)?;
        if self.json {
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
