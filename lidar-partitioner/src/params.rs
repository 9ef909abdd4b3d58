//! Partitioning parameters and the `partitions.json` manifest.

use serde::{Deserialize, Serialize};

use crate::error::{PartitionError, Result};
use crate::format::CrsInfo;

/// How tiles are cut.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Balanced point counts: the recursive count-median split of PDAL's `filters.chipper`
    /// (CloudButton's partitioner).
    #[default]
    Density,
    /// Naive equal-area tiles over the bounding box (for comparison).
    Grid,
}

/// Output encoding of the tiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// LAZ for LAZ/COPC input, LAS for LAS input.
    #[default]
    Same,
    /// Uncompressed LAS.
    Las,
    /// LASzip-compressed LAZ.
    Laz,
}

/// Parameters of [`crate::partition`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Core points per tile; the input is cut into `ceil(N / capacity)` tiles. Exactly one
    /// of `capacity` and `target_mb` must be given.
    #[serde(default)]
    pub capacity: Option<u64>,
    /// Target size of a tile's core point records in MB (10^6 bytes, uncompressed):
    /// `capacity = max(1, floor(target_mb·10^6 / record length))`. CloudButton found about
    /// 50 MB best for terrain work.
    #[serde(default)]
    pub target_mb: Option<f64>,
    /// Buffer width in CRS horizontal units (metres for projected CRSs): every input point
    /// within this distance of a tile's core bounding box (inclusive) that is not one of its
    /// core points is added to the tile with the withheld flag set.
    pub buffer_m: f64,
    /// Density (balanced counts) or grid (equal areas).
    #[serde(default)]
    pub method: Method,
    /// LAS, LAZ, or the input's encoding.
    #[serde(default)]
    pub format: OutputFormat,
    /// Memory budget in MiB. When the exact method would need more (about 1.2 × the
    /// uncompressed point records), the bounded-memory method runs within it instead.
    /// Unset: 85 % of a Lambda function's memory or of the container's cgroup limit when
    /// there is one, else no budget (the exact method, checked against available memory).
    #[serde(default)]
    pub max_memory_mb: Option<u64>,
    /// EPSG code of the coordinates of an input that records no CRS: written into every
    /// tile. An input that records another CRS is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsg: Option<u32>,
    /// Files next to the input (same point format, scale and offset lattice) whose points
    /// within `buffer_m` of the input join its tiles' buffers (withheld), as lidR's
    /// LAScatalog does: tiles along the input's border then see what lies across it, and a
    /// run over adjacent files equals one over their merge. Never core points.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neighbours: Vec<String>,
}

impl Params {
    /// Density tiles of `capacity` core points with a buffer of `buffer_m`, output in the
    /// input's encoding, exact method.
    pub fn capacity(capacity: u64, buffer_m: f64) -> Params {
        Params {
            capacity: Some(capacity),
            target_mb: None,
            buffer_m,
            method: Method::Density,
            format: OutputFormat::Same,
            max_memory_mb: None,
            epsg: None,
            neighbours: Vec::new(),
        }
    }

    /// Checks the parameters that do not depend on the input.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(PartitionError::InvalidParams(m));
        match (self.capacity, self.target_mb) {
            (Some(_), Some(_)) => return bad("give either capacity or target_mb, not both".into()),
            (None, None) => return bad("give capacity (points per tile) or target_mb".into()),
            (Some(0), _) => return bad("capacity must be at least 1 point per tile".into()),
            (_, Some(mb)) if !(mb.is_finite() && mb > 0.0) => {
                return bad(format!("target_mb must be a positive number, not {mb}"));
            }
            _ => {}
        }
        if !(self.buffer_m.is_finite() && self.buffer_m >= 0.0) {
            return bad(format!(
                "buffer_m must be a non-negative number of CRS units, not {}",
                self.buffer_m
            ));
        }
        if self.max_memory_mb == Some(0) {
            return bad("max_memory_mb must be at least 1".into());
        }
        Ok(())
    }

    /// Core points per tile for records of `record_len` bytes.
    pub fn resolved_capacity(&self, record_len: u16) -> Result<u64> {
        self.validate()?;
        match (self.capacity, self.target_mb) {
            (Some(c), _) => Ok(c),
            (None, Some(mb)) => Ok(((mb * 1e6) / f64::from(record_len)).floor().max(1.0) as u64),
            (None, None) => Err(PartitionError::InvalidParams("no tile size".into())),
        }
    }
}

/// Whether every point was held in memory (exact tiles) or the bounded-memory method ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// All x/y in memory: cuts exactly as the original (tile counts differ by at most 1).
    Exact,
    /// Cuts from a count grid (streaming pass 1), tiles by a second streaming pass.
    Bounded,
}

/// A 2D bounding box in CRS units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub min_x: f64,
    pub min_y: f64,
    pub max_x: f64,
    pub max_y: f64,
}

impl BBox {
    /// This box grown by `d` on every side.
    pub fn grown(&self, d: f64) -> BBox {
        BBox {
            min_x: self.min_x - d,
            min_y: self.min_y - d,
            max_x: self.max_x + d,
            max_y: self.max_y + d,
        }
    }
}

/// 3D bounds in CRS units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    pub min: [f64; 3],
    pub max: [f64; 3],
}

/// The input as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSummary {
    pub uri: String,
    /// Number of point records.
    pub points: u64,
    /// LAS version, e.g. "1.4".
    pub las_version: String,
    pub point_format: u8,
    pub record_length: u16,
    /// LAZ (or COPC) input.
    pub compressed: bool,
    pub scale: [f64; 3],
    pub offset: [f64; 3],
    /// Bounds of the points (computed, not the header's).
    pub bounds: Bounds,
    pub crs: CrsInfo,
    pub system_identifier: String,
    pub generating_software: String,
    pub vlrs: usize,
    pub evlrs: usize,
}

/// One output tile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TileInfo {
    /// Tile number (depth-first order of the split).
    pub index: usize,
    /// File name, `<stem>-NNNN.<las|laz>`.
    pub file: String,
    /// Full URI of the file.
    pub uri: String,
    /// Bounding box of the core points.
    pub core_bbox: BBox,
    /// The core bounding box grown by the buffer: the region whose points the tile holds.
    pub buffered_bbox: BBox,
    /// Points the tile owns (withheld flag clear).
    pub core_points: u64,
    /// Neighbours' points within the buffer (withheld flag set).
    pub buffer_points: u64,
    /// Bounds written in the tile's header (core and buffer points).
    pub bounds: Bounds,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// What `partitions.json` holds, and what [`crate::partition`] returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub input: InputSummary,
    pub method: Method,
    pub mode: Mode,
    /// Core points per tile asked for.
    pub capacity: u64,
    pub buffer_m: f64,
    /// `las` or `laz`.
    pub output_format: String,
    /// URI of this manifest.
    pub manifest_uri: String,
    pub tiles: Vec<TileInfo>,
}

impl Manifest {
    /// Largest over smallest core point count (1.0 for perfectly balanced tiles).
    pub fn core_ratio(&self) -> f64 {
        let max = self.tiles.iter().map(|t| t.core_points).max().unwrap_or(0);
        let min = self.tiles.iter().map(|t| t.core_points).min().unwrap_or(0);
        if min == 0 {
            f64::INFINITY
        } else {
            max as f64 / min as f64
        }
    }

    /// Total buffer points over total core points.
    pub fn buffer_fraction(&self) -> f64 {
        let core: u64 = self.tiles.iter().map(|t| t.core_points).sum();
        let buf: u64 = self.tiles.iter().map(|t| t.buffer_points).sum();
        if core == 0 {
            0.0
        } else {
            buf as f64 / core as f64
        }
    }

    /// URIs of everything the run wrote (tiles, then the manifest).
    pub fn output_uris(&self) -> Vec<String> {
        let mut v: Vec<String> = self.tiles.iter().map(|t| t.uri.clone()).collect();
        v.push(self.manifest_uri.clone());
        v
    }
}
