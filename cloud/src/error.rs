//! Storage errors, each naming the operation and the URI.

use std::fmt;

/// The storage operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Head,
    Get,
    GetRange,
    Put,
    List,
    Delete,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Head => "head",
            Op::Get => "get",
            Op::GetRange => "get_range",
            Op::Put => "put",
            Op::List => "list",
            Op::Delete => "delete",
        })
    }
}

/// An error from a [`crate::Store`] operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid URI {uri:?}: {reason}")]
    InvalidUri { uri: String, reason: String },

    #[error("{op} {uri}: object not found")]
    NotFound { op: Op, uri: String },

    #[error("{op} {uri}: access denied{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    AccessDenied {
        op: Op,
        uri: String,
        detail: Option<String>,
    },

    #[error("{op} {uri}: byte range {start}..{end} is past the end of the object{}",
        size.map(|s| format!(" ({s} bytes)")).unwrap_or_default())]
    RangePastEnd {
        op: Op,
        uri: String,
        start: u64,
        end: u64,
        size: Option<u64>,
    },

    #[error("{op} {uri}: not supported for this kind of location ({reason})")]
    Unsupported {
        op: Op,
        uri: String,
        reason: &'static str,
    },

    #[error("{op} {uri}: {source}")]
    Io {
        op: Op,
        uri: String,
        #[source]
        source: std::io::Error,
    },

    /// A remote service error after retries (if it was retryable) were exhausted.
    #[error("{op} {uri}: {message}{}", if *attempts > 1 { format!(" (after {attempts} attempts)") } else { String::new() })]
    Remote {
        op: Op,
        uri: String,
        message: String,
        /// HTTP status, when the service answered.
        status: Option<u16>,
        attempts: u32,
    },

    /// The data source handed to a streaming `put` failed; nothing was written.
    #[error("{op} {uri}: reading the data to upload failed: {source}")]
    Source {
        op: Op,
        uri: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// True when the object (or bucket) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }

    /// The URI the failed operation was about.
    pub fn uri(&self) -> &str {
        match self {
            StoreError::InvalidUri { uri, .. }
            | StoreError::NotFound { uri, .. }
            | StoreError::AccessDenied { uri, .. }
            | StoreError::RangePastEnd { uri, .. }
            | StoreError::Unsupported { uri, .. }
            | StoreError::Io { uri, .. }
            | StoreError::Remote { uri, .. }
            | StoreError::Source { uri, .. } => uri,
        }
    }

    pub(crate) fn io(op: Op, uri: &str, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            StoreError::NotFound {
                op,
                uri: uri.to_string(),
            }
        } else if source.kind() == std::io::ErrorKind::PermissionDenied {
            StoreError::AccessDenied {
                op,
                uri: uri.to_string(),
                detail: Some(source.to_string()),
            }
        } else {
            StoreError::Io {
                op,
                uri: uri.to_string(),
                source,
            }
        }
    }
}
