//! Errors of the partitioner and of the LAS/LAZ reader and writer.

use cloud::{Classify, ErrorKind, StoreError};

/// What went wrong; every variant names the file (URI or path) it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionError {
    /// The parameters cannot work (capacity 0, negative buffer, ...).
    #[error("invalid parameters: {0}")]
    InvalidParams(String),

    /// The input is not a usable LAS/LAZ file: truncated, inconsistent header, unknown point
    /// format, corrupt LAZ data, no points.
    #[error("{uri}: {message}")]
    InvalidInput { uri: String, message: String },

    /// Storage failed (the URI is in the store error).
    #[error(transparent)]
    Store(#[from] StoreError),

    /// A local temporary file (download, spill) failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// The work does not fit the memory available or the configured budget.
    #[error("{uri}: {message}")]
    ResourceLimit { uri: String, message: String },

    /// A bug: an impossible state was reached.
    #[error("internal error: {0}")]
    Internal(String),
}

impl PartitionError {
    pub(crate) fn input(uri: &str, message: impl Into<String>) -> Self {
        PartitionError::InvalidInput {
            uri: uri.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        PartitionError::Io {
            path: path.to_string(),
            source,
        }
    }
}

impl Classify for PartitionError {
    fn kind(&self) -> ErrorKind {
        match self {
            PartitionError::InvalidParams(_) => ErrorKind::InvalidTask,
            PartitionError::InvalidInput { .. } => ErrorKind::InvalidInput,
            PartitionError::Store(e) => e.kind(),
            PartitionError::Io { .. } => ErrorKind::Storage,
            PartitionError::ResourceLimit { .. } => ErrorKind::ResourceLimit,
            PartitionError::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// Result of this crate.
pub type Result<T, E = PartitionError> = std::result::Result<T, E>;
