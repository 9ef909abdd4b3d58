//! The error type of the `ndvi` crate.

use cloud::{Classify, ErrorKind, StoreError};

/// Everything that can go wrong computing NDVI, addressing scenes or preprocessing products.
/// Every variant names the file (URI) or input it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NdviError {
    /// Two rasters that must share a pixel grid do not (CRS, size or geotransform).
    #[error("{a} and {b} are not on the same pixel grid: {detail}")]
    GridMismatch {
        a: String,
        b: String,
        detail: String,
    },

    /// The scene classification layer cannot be put on the band grid by nearest neighbour.
    #[error("SCL {scl} cannot be resampled onto the grid of {band}: {reason}")]
    SclGrid {
        scl: String,
        band: String,
        reason: String,
    },

    /// A malformed MGRS tile id, scene id, date or scene reference.
    #[error("invalid {what} {input:?}: {reason}")]
    InvalidName {
        what: &'static str,
        input: String,
        reason: String,
    },

    /// A STAC item that cannot be used.
    #[error("STAC item {uri}: {reason}")]
    Stac { uri: String, reason: String },

    /// No scene of the tile on the date under the archive root.
    #[error("no Sentinel-2 L2A scene of tile {tile} on {date} under {prefix}{}",
        if found.is_empty() { String::new() } else { format!(" (scenes there: {})", found.join(", ")) })]
    SceneNotFound {
        tile: String,
        date: String,
        prefix: String,
        found: Vec<String>,
    },

    /// Several scenes match a tile and date; the caller must choose one by its id.
    #[error("{} scenes of tile {tile} on {date} under {prefix}: {}; pass one of these scene ids instead of the date",
        candidates.len(), candidates.join(", "))]
    AmbiguousScene {
        tile: String,
        date: String,
        prefix: String,
        candidates: Vec<String>,
    },

    /// A scene lacks a band or layer the computation needs.
    #[error("scene {scene}: {what}")]
    MissingAsset { scene: String, what: String },

    /// The −1000 DN offset of processing baseline 04.00 may or may not apply and nothing says.
    #[error(
        "scene {scene}: {reason}; give the DN offset explicitly (0, or -1000 for processing baseline 04.00 data whose offset was not removed)"
    )]
    UnknownOffset { scene: String, reason: String },

    /// A value in task parameters or options is out of range.
    #[error("{0}")]
    InvalidParameter(String),

    /// A window result the merge needs is missing or does not fit the tile grid.
    #[error("window result {uri}: {reason}")]
    WindowResult { uri: String, reason: String },

    /// A Sentinel-2 product (SAFE folder or band folder) that cannot be preprocessed.
    #[error("Sentinel-2 product {product}: {reason}")]
    Product { product: String, reason: String },

    /// A JPEG 2000 input, which this build cannot decode.
    #[error(
        "{uri}: JPEG 2000 input needs GDAL (the `gdal` feature of the `ndvi` and `cog` crates), which this build does not have; convert the product with an `ndvi preprocess` built with `--features gdal`, or the band with `gdal_translate -of COG {uri} band.tif`"
    )]
    Jp2Unsupported { uri: String },

    /// An L1C product needs Sen2Cor and it is not installed.
    #[error(
        "Sentinel-2 product {product} is Level-1C (top-of-atmosphere): Sen2Cor's `L2A_Process` was not found on PATH, so it cannot be converted to Level-2A; install Sen2Cor, or pass --allow-l1c to compute NDVI from top-of-atmosphere reflectance"
    )]
    Sen2CorMissing { product: String },

    /// Sen2Cor ran and failed (or produced no L2A product).
    #[error("Sen2Cor ({program}) on {product}: {reason}")]
    Sen2CorFailed {
        program: String,
        product: String,
        reason: String,
    },

    /// Rendering or encoding the quicklook PNG failed.
    #[error("quicklook {uri}: {reason}")]
    Quicklook { uri: String, reason: String },

    /// A local file system operation (temporary files, Sen2Cor output) failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// Reading or writing a raster failed.
    #[error(transparent)]
    Cog(#[from] cog::CogError),

    /// A storage operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NdviError {
    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        NdviError::Io {
            path: path.to_string(),
            source,
        }
    }
}

impl Classify for NdviError {
    fn kind(&self) -> ErrorKind {
        match self {
            NdviError::GridMismatch { .. }
            | NdviError::SclGrid { .. }
            | NdviError::Stac { .. }
            | NdviError::AmbiguousScene { .. }
            | NdviError::MissingAsset { .. }
            | NdviError::UnknownOffset { .. }
            | NdviError::WindowResult { .. }
            | NdviError::Product { .. }
            | NdviError::Jp2Unsupported { .. }
            | NdviError::Sen2CorMissing { .. }
            | NdviError::Sen2CorFailed { .. } => ErrorKind::InvalidInput,
            NdviError::InvalidName { .. } | NdviError::InvalidParameter(_) => {
                ErrorKind::InvalidTask
            }
            NdviError::SceneNotFound { .. } => ErrorKind::NotFound,
            NdviError::Quicklook { .. } => ErrorKind::Internal,
            NdviError::Io { .. } => ErrorKind::Storage,
            NdviError::Cog(e) => e.kind(),
            NdviError::Store(e) => e.kind(),
        }
    }
}
