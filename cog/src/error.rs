//! [`CogError`]: everything that can go wrong reading or writing a raster.

use cloud::{Classify, ErrorKind, StoreError};

/// An error reading or writing a raster; every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CogError {
    /// The storage layer failed (missing object, network, permissions).
    #[error("{source}")]
    Store {
        uri: String,
        #[source]
        source: StoreError,
    },
    /// The file is not a valid TIFF/GeoTIFF/ASCII grid (corrupt, truncated, inconsistent).
    #[error("{uri}: invalid raster: {reason}")]
    Invalid { uri: String, reason: String },
    /// The file is valid but uses a feature this reader does not implement.
    #[error("{uri}: unsupported: {reason}")]
    Unsupported { uri: String, reason: String },
    /// The request itself is wrong (band out of range, window outside the image, ...).
    #[error("{uri}: {reason}")]
    Request { uri: String, reason: String },
    /// A size limit was exceeded (an allocation the file or request asks for is too large).
    #[error("{uri}: too large: {reason}")]
    TooLarge { uri: String, reason: String },
    /// Decompressing a block failed.
    #[error("{uri}: {what}: {reason}")]
    Decode {
        uri: String,
        what: String,
        reason: String,
    },
}

impl CogError {
    pub(crate) fn invalid(uri: &str, reason: impl Into<String>) -> Self {
        CogError::Invalid {
            uri: uri.to_string(),
            reason: reason.into(),
        }
    }
    pub(crate) fn unsupported(uri: &str, reason: impl Into<String>) -> Self {
        CogError::Unsupported {
            uri: uri.to_string(),
            reason: reason.into(),
        }
    }
    pub(crate) fn request(uri: &str, reason: impl Into<String>) -> Self {
        CogError::Request {
            uri: uri.to_string(),
            reason: reason.into(),
        }
    }
    pub(crate) fn too_large(uri: &str, reason: impl Into<String>) -> Self {
        CogError::TooLarge {
            uri: uri.to_string(),
            reason: reason.into(),
        }
    }
    pub(crate) fn store(uri: &str, source: StoreError) -> Self {
        CogError::Store {
            uri: uri.to_string(),
            source,
        }
    }

    /// The URI of the file the error is about.
    pub fn uri(&self) -> &str {
        match self {
            CogError::Store { uri, .. }
            | CogError::Invalid { uri, .. }
            | CogError::Unsupported { uri, .. }
            | CogError::Request { uri, .. }
            | CogError::TooLarge { uri, .. }
            | CogError::Decode { uri, .. } => uri,
        }
    }
}

impl Classify for CogError {
    fn kind(&self) -> ErrorKind {
        match self {
            CogError::Store { source, .. } => source.kind(),
            CogError::Invalid { .. }
            | CogError::Unsupported { .. }
            | CogError::Request { .. }
            | CogError::Decode { .. } => ErrorKind::InvalidInput,
            CogError::TooLarge { .. } => ErrorKind::ResourceLimit,
        }
    }
}
