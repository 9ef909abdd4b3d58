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
#[non_exhaustive]
pub enum StoreError {
    #[error("invalid URI {uri:?}: {reason}")]
    InvalidUri { uri: String, reason: String },

    #[error("{op} {uri}: {what}")]
    NotFound {
        op: Op,
        uri: String,
        /// What is missing: `no such file`, `no such directory: /x`, `bucket b does not
        /// exist`, `no such key in bucket b`, `the server answered 404 Not Found`.
        what: String,
    },

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

    /// The server refused the request for good (a redirect loop, a 4xx status other than
    /// not-found and access-denied): retrying cannot help.
    #[error("{op} {uri}: {message}")]
    Refused {
        op: Op,
        uri: String,
        message: String,
    },

    /// S3 answered that the bucket is in another region than the request was signed for
    /// (`PermanentRedirect`, `AuthorizationHeaderMalformed`). The store remembers the region
    /// and asks again there; this is seen only when that failed too.
    #[error("{op} {uri}: the bucket is in region {region}, not {asked}")]
    WrongRegion {
        op: Op,
        uri: String,
        /// The bucket's region, from the answer's `x-amz-bucket-region`.
        region: Box<str>,
        /// The region the request was signed for.
        asked: Box<str>,
    },

    /// A local path that is not a regular file: a directory, a device, a FIFO, a socket.
    #[error("{op} {uri}: {what}, not a regular file")]
    NotAFile {
        op: Op,
        uri: String,
        /// `a directory`, `a character device`, ...
        what: &'static str,
    },

    /// The object is larger than the reader accepts (or its body went on past the limit).
    #[error("{op} {uri}: {} is more than the {} this read accepts", size.map(|s| format!("the object's {s} bytes")).unwrap_or_else(|| "the body sent".to_string()), human_bytes(*limit))]
    TooLarge {
        op: Op,
        uri: String,
        size: Option<u64>,
        limit: u64,
    },

    /// The task's deadline passed before this operation.
    #[error("{op} {uri}: the task's deadline has passed")]
    Deadline { op: Op, uri: String },

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
            | StoreError::NotAFile { uri, .. }
            | StoreError::Refused { uri, .. }
            | StoreError::WrongRegion { uri, .. }
            | StoreError::TooLarge { uri, .. }
            | StoreError::Deadline { uri, .. }
            | StoreError::Source { uri, .. } => uri,
        }
    }

    /// Whether the service throttled the request (HTTP 429 or 503, S3's `SlowDown`) and
    /// kept doing so through the request's retries: worth waiting for, not a failure.
    pub fn is_throttled(&self) -> bool {
        matches!(
            self,
            StoreError::Remote {
                status: Some(429 | 503),
                ..
            }
        ) || matches!(self, StoreError::Remote { message, .. } if message.contains("SlowDown"))
    }

    /// A missing local file, saying whether its directory is missing too.
    pub fn not_found_local(op: Op, uri: &str) -> Self {
        let path = std::path::Path::new(uri.strip_prefix("file://").unwrap_or(uri));
        let what = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) if !dir.exists() => format!("no such file (no directory {})", dir.display()),
            _ => "no such file".to_string(),
        };
        StoreError::NotFound {
            op,
            uri: uri.to_string(),
            what,
        }
    }

    pub(crate) fn io(op: Op, uri: &str, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::IsADirectory {
            StoreError::NotAFile {
                op,
                uri: uri.to_string(),
                what: "a directory",
            }
        } else if source.kind() == std::io::ErrorKind::NotFound {
            StoreError::not_found_local(op, uri)
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

/// `n` bytes as `12 B`, `3.0 KiB`, `256 MiB`, `8.0 GiB`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
