//! The crate's error type.

use cloud::{Classify, ErrorKind};

/// Everything that can go wrong in the biomass workflow.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BiomassError {
    /// A parameter is out of range.
    #[error("invalid parameter: {0}")]
    Param(String),
    /// The canopy height model cannot be used.
    #[error("{uri}: {message}")]
    BadChm {
        /// Where the CHM came from.
        uri: String,
        /// What is wrong with it.
        message: String,
    },
    /// The training table cannot be used.
    #[error("{uri}: {message}")]
    BadTraining {
        /// Where the table came from.
        uri: String,
        /// What is wrong with it (line and column where known).
        message: String,
    },
    /// Arrays that must have the same shape do not.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// The random forest failed to fit, predict or (de)serialise.
    #[error("random forest: {0}")]
    Model(String),
    /// A chunk result does not fit the others (wrong window, missing chunk, corrupt file).
    #[error("{uri}: {message}")]
    BadChunk {
        /// The chunk result file.
        uri: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a raster failed.
    #[error(transparent)]
    Cog(#[from] cog::CogError),
    /// Reading or writing an object failed.
    #[error(transparent)]
    Store(#[from] cloud::StoreError),
    /// Encoding an output (CSV, PNG, JSON) failed.
    #[error("{uri}: cannot encode output: {message}")]
    Encode {
        /// The output being written.
        uri: String,
        /// What failed.
        message: String,
    },
}

impl Classify for BiomassError {
    fn kind(&self) -> ErrorKind {
        match self {
            BiomassError::Param(_)
            | BiomassError::BadChm { .. }
            | BiomassError::BadTraining { .. }
            | BiomassError::Shape(_)
            | BiomassError::BadChunk { .. } => ErrorKind::InvalidInput,
            BiomassError::Model(_) | BiomassError::Encode { .. } => ErrorKind::Internal,
            BiomassError::Cog(e) => e.kind(),
            BiomassError::Store(e) => e.kind(),
        }
    }
}
