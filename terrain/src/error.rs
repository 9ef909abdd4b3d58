//! The terrain crate's error type.

use cloud::{Classify, ErrorKind, StoreError};

/// Everything that can go wrong computing terrain models; each variant names the file (or
/// parameter) and the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TerrainError {
    /// Reading or writing an object failed.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// A LAS/LAZ file could not be decoded or encoded.
    #[error("{uri}: {message}")]
    Las { uri: String, message: String },

    /// A raster could not be read or written.
    #[error(transparent)]
    Cog(#[from] cog::CogError),

    /// The input data cannot be used (no points, geographic CRS, misaligned tiles, ...).
    #[error("{uri}: {message}")]
    Input { uri: String, message: String },

    /// A parameter is out of range.
    #[error("invalid parameter: {0}")]
    Param(String),

    /// A grid or point count exceeds the limits of one task.
    #[error("{0}")]
    TooLarge(String),
}

impl TerrainError {
    /// An unusable-input error about `uri`.
    pub fn input(uri: impl Into<String>, message: impl Into<String>) -> Self {
        TerrainError::Input {
            uri: uri.into(),
            message: message.into(),
        }
    }

    /// A LAS/LAZ decoding error about `uri`.
    pub fn las(uri: impl Into<String>, message: impl std::fmt::Display) -> Self {
        TerrainError::Las {
            uri: uri.into(),
            message: message.to_string(),
        }
    }

    /// A parameter error.
    pub fn param(message: impl Into<String>) -> Self {
        TerrainError::Param(message.into())
    }
}

impl Classify for TerrainError {
    fn kind(&self) -> ErrorKind {
        match self {
            TerrainError::Store(e) => e.kind(),
            TerrainError::Cog(e) => e.kind(),
            TerrainError::Las { .. } | TerrainError::Input { .. } => ErrorKind::InvalidInput,
            TerrainError::Param(_) => ErrorKind::InvalidTask,
            TerrainError::TooLarge(_) => ErrorKind::ResourceLimit,
        }
    }
}

/// Result with [`TerrainError`].
pub type Result<T, E = TerrainError> = std::result::Result<T, E>;
