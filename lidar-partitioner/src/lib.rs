//! Density-based, buffered partitioning of LAS/LAZ point clouds (CloudButton D2.5 §8.2).
//!
//! [`partition`] splits one LAS/LAZ/COPC file into tiles of balanced point counts (or, for
//! comparison, equal areas), each with a buffer of its neighbours' points flagged *withheld*,
//! so that per-tile work (ground filtering, gridding) has no border artefacts and no task
//! runs out of memory. Tiles are written as `<stem>-NNNN.<las|laz>` next to a
//! `partitions.json` [`Manifest`].
//!
//! # The split
//! The density method is PDAL's `filters.chipper` as CloudButton ported it: `num =
//! ceil(N / capacity)` tiles, boundaries `lround(k·N/num)`, recursive cuts across the wider
//! axis at the middle boundary (a count median, ties to y), leaves in depth-first order; so
//! tile core counts differ by at most one. Points equal to a cut value are taken in input
//! order (PDAL's stable sort); the original (NumPy `argsort`, not stable) could swap such tie
//! points between neighbouring tiles.
//!
//! # The buffer
//! A tile holds every input point inside its core box (the bounding box of its core points)
//! grown by `buffer_m`, inclusive, tested like the original on scaled f64 coordinates. Points
//! that are not its own core points get the LAS withheld flag (bit 7 of the classification
//! byte in formats 0–5, bit 2 of the classification-flags byte in formats 6–10); core points
//! are written with it cleared (so a withheld flag already set in the input is not kept).
//! Every input point is a core point of exactly one tile; tiles keep input point order.
//!
//! # What is kept
//! LAS version, point format, record length (extra bytes), scales/offsets, GUID, system and
//! software ids, dates, global encoding (GPS time type, WKT bit), user-defined header bytes,
//! VLRs and EVLRs (GeoTIFF and WKT CRS, extra-bytes descriptions, waveform packet descriptors
//! and the waveform data record) and the bytes between VLRs and points. Point counts (legacy
//! and 1.4), points by return and bounds are recomputed. LAZ output gets a fresh LASzip VLR
//! (the input's is dropped) and the compressed bit of the format byte; COPC records are
//! dropped (tiles are not COPC octrees).
//!
//! # Speed and memory
//! Records are never decoded into point structs: x/y are read from their fixed offsets into
//! a column, the split works on that column, and each tile is one gather of raw records.
//! LAZ chunks are decompressed and compressed in parallel (`laz`'s `parallel` feature).
//! The *exact* method holds the records once (1.18–1.26 × the uncompressed point data at
//! peak, measured on 16 M points); with a memory budget too small for that
//! ([`Params::max_memory_mb`], or a Lambda's/container's memory), the *bounded-memory*
//! method cuts on a count grid and streams the input twice, spilling tiles to `TMPDIR`
//! (87–90 MiB peak on the same input with a 256 MiB budget; see [`mod@bounded`] for how
//! close its tiles come to the exact ones).
//!
//! Outputs go through [`cloud::Store::put_reader`]: atomic (written under a temporary name,
//! renamed when complete; like `cp` and GDAL, not `fsync`ed).
//!
//! What bounds it (profiled on 16 M format-6 points, 10 tiles, 2 cores): for LAS, memory
//! traffic, not I/O policy. Reading the file into the columns (a kernel copy plus the first
//! touch of 480 MB of fresh pages) and writing the tiles (a kernel copy of 540 MB) are about
//! 0.4 CPU-seconds that `cp`, copying inside the kernel, never spends; the count-median split
//! (a quarter of the CPU: histogram and stable partition passes over x/y) and the gather of
//! 18 M records make the rest. For LAZ, the LASzip codec: decompressing the input and
//! compressing the tiles are 95 % of the CPU, both on every core from the first chunk to the
//! last, with the same `laz` codec that laspy's `lazrs` backend uses.
//!
//! # Reading points
//! [`LasFile`] and [`PointRecords`]/[`PointRef`] are the reader underneath, public for other
//! stages: raw records plus typed accessors for formats 0–10.
//!
//! ```
//! use lidar_partitioner::Params;
//!
//! // Tiles of at most 1.6 M core points, each with a 10 m buffer of withheld neighbours.
//! let p = Params::capacity(1_600_000, 10.0);
//! assert!(p.validate().is_ok());
//! // Checked before any point is read: a negative buffer is refused by name.
//! let bad = Params::capacity(1_600_000, -1.0);
//! assert!(bad.validate().unwrap_err().to_string().contains("buffer"));
//! ```

pub mod bounded;
pub mod error;
mod exact;
pub mod format;
pub mod params;
mod pool;
pub mod reader;
pub mod records;
mod split;
pub mod stage;
mod tiles;
pub mod writer;

use std::sync::Mutex;

use cloud::{Ctx, ProgressMode, Store};

pub use error::{PartitionError, Result};
pub use format::{CrsInfo, Header, PointFormat, Vlr};
pub use params::{
    BBox, Bounds, InputSummary, Manifest, Method, Mode, OutputFormat, Params, TileInfo,
};
pub use reader::{LasFile, LasMeta};
pub use records::{PointRecords, PointRef};
pub use stage::{PartitionStage, PartitionTask};

/// Name of the manifest written next to the tiles.
pub const MANIFEST_NAME: &str = "partitions.json";

/// Partitions `input` into tiles under the directory/prefix `output`, reading and writing
/// through the store of the environment ([`Store::from_env`]), without progress output.
pub fn partition(input: &str, output: &str, params: &Params) -> Result<Manifest> {
    let ctx = Ctx::new(Store::from_env()).with_progress(ProgressMode::Silent);
    partition_with(&ctx, input, output, params)
}

/// Partitions `input` (a LAS/LAZ/COPC URI) into tiles under `output` (a directory or prefix
/// URI) with `ctx`'s store and progress reporting; writes `partitions.json` last and returns
/// it.
///
/// On failure nothing that looks complete is left: the tiles written so far are deleted
/// (best effort) and `partitions.json` is absent (a previous one is removed before the
/// first tile is written).
pub fn partition_with(ctx: &Ctx, input: &str, output: &str, params: &Params) -> Result<Manifest> {
    params.validate()?;
    let store = &ctx.store;
    let mut file = LasFile::open(store, input)?;
    if let Some(e) = params.epsg {
        file.assume_epsg(e)?;
    }
    let h = file.header();
    let n = file.point_count();
    if n == 0 {
        return Err(PartitionError::input(input, "the file has no points"));
    }
    let capacity = params.resolved_capacity(h.record_len())?;
    let laz = match params.format {
        OutputFormat::Same => h.is_compressed(),
        OutputFormat::Las => false,
        OutputFormat::Laz => true,
    };
    let rec = u64::from(h.record_len());
    let need = exact::memory_estimate(n, rec);
    let budget = params
        .max_memory_mb
        .map(|m| m << 20)
        .or_else(environment_budget);
    let mode = if n > u64::from(i32::MAX as u32) || budget.is_some_and(|b| need > b) {
        if !params.neighbours.is_empty() {
            return Err(PartitionError::ResourceLimit {
                uri: input.to_string(),
                message: format!(
                    "buffers from neighbouring files need the exact method, which needs about {} MiB here, more than the budget: give more memory",
                    need >> 20
                ),
            });
        }
        Mode::Bounded
    } else {
        if budget.is_none()
            && let Some(avail) = available_memory()
            && need > avail
        {
            return Err(PartitionError::ResourceLimit {
                uri: input.to_string(),
                message: format!(
                    "the exact method needs about {} MiB but {} MiB are available; give a \
                     memory budget (--max-memory-mb) to use the bounded-memory method",
                    need >> 20,
                    avail >> 20
                ),
            });
        }
        Mode::Exact
    };
    let manifest_uri = cloud::uri::join(output, MANIFEST_NAME);
    store.delete(&manifest_uri)?;
    let stem = tiles::stem_of(input);
    let written = Mutex::new(Vec::new());
    let plan = exact::OutputPlan {
        store,
        dir: output,
        stem: &stem,
        laz,
        written: &written,
    };
    tracing::info!(
        input,
        points = n,
        capacity,
        buffer_m = params.buffer_m,
        mode = ?mode,
        method = ?params.method,
        "partitioning"
    );
    let result = match mode {
        Mode::Exact => exact::run(
            ctx,
            &file,
            &plan,
            params.method,
            capacity,
            params.buffer_m,
            &params.neighbours,
        ),
        Mode::Bounded => bounded::run(
            ctx,
            &file,
            &plan,
            params.method,
            capacity,
            params.buffer_m,
            budget.unwrap_or(need),
        ),
    };
    let finish = |(tiles, bounds): (Vec<TileInfo>, Bounds)| -> Result<Manifest> {
        let meta = file.meta();
        let manifest = Manifest {
            input: InputSummary {
                uri: input.to_string(),
                points: n,
                las_version: format!("{}.{}", h.version().0, h.version().1),
                point_format: h.point_format().id(),
                record_length: h.record_len(),
                compressed: h.is_compressed(),
                scale: h.scale(),
                offset: h.offset(),
                bounds,
                crs: meta.crs(),
                system_identifier: h.system_identifier(),
                generating_software: h.generating_software(),
                vlrs: meta.vlrs.len(),
                evlrs: meta.evlrs.len(),
            },
            method: params.method,
            mode,
            capacity,
            buffer_m: params.buffer_m,
            output_format: if laz { "laz" } else { "las" }.to_string(),
            manifest_uri: manifest_uri.clone(),
            tiles,
        };
        store.put_json(&manifest_uri, &manifest)?;
        remove_stale_tiles(store, output, &stem, &manifest);
        Ok(manifest)
    };
    match result.and_then(finish) {
        Ok(m) => Ok(m),
        Err(e) => {
            let uris = written.into_inner().unwrap_or_else(|p| p.into_inner());
            for uri in uris {
                if let Err(d) = store.delete(&uri) {
                    tracing::warn!(uri, error = %d, "could not delete a partial output");
                }
            }
            Err(e)
        }
    }
}

/// Removes tiles of `stem` in `output` that `manifest` does not list (an earlier run with
/// more tiles, or a killed one): the partitioner owns its tile names in its output folder.
fn remove_stale_tiles(store: &Store, output: &str, stem: &str, manifest: &Manifest) {
    let prefix = format!("{}/", output.trim_end_matches('/'));
    let listed = match store.list(&prefix) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(output, error = %e, "could not list the output to remove stale tiles");
            return;
        }
    };
    for obj in listed {
        let Some(name) = obj.uri.strip_prefix(&prefix) else {
            continue;
        };
        if name.contains('/')
            || !tiles::is_tile_name(stem, name)
            || manifest
                .tiles
                .iter()
                .any(|t| t.uri == obj.uri || t.file == name)
        {
            continue;
        }
        match store.delete(&obj.uri) {
            Ok(()) => tracing::info!(uri = %obj.uri, "removed a tile the manifest no longer lists"),
            Err(e) => tracing::warn!(uri = %obj.uri, error = %e, "could not remove a stale tile"),
        }
    }
}

/// The memory budget the environment imposes when none is given: 85 % of a Lambda
/// function's memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, MB) or of a cgroup v2 limit
/// (`/sys/fs/cgroup/memory.max`, e.g. an AWS Batch container), in bytes.
fn environment_budget() -> Option<u64> {
    let lambda = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|mb| mb << 20);
    let cgroup = || {
        std::fs::read_to_string("/sys/fs/cgroup/memory.max")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    lambda.or_else(cgroup).map(|b| b / 100 * 85)
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
