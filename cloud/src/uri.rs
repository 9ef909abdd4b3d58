//! Parsing of storage URIs: local paths, `file://`, `s3://bucket/key`, `http(s)://`.

use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// Where an object lives, parsed from a URI string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local file, from a plain path or a `file://` URI.
    Local(PathBuf),
    /// An S3 object (or a prefix, for `list`).
    S3 { bucket: String, key: String },
    /// A read-only HTTP(S) URL.
    Http(String),
}

impl Location {
    /// Parses `uri`. Plain strings without a scheme are local paths.
    pub fn parse(uri: &str) -> Result<Self, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidUri {
            uri: uri.to_string(),
            reason: reason.to_string(),
        };
        if uri.is_empty() {
            return Err(invalid("empty URI"));
        }
        if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid("missing bucket name after s3://"));
            }
            if !bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            {
                return Err(invalid(
                    "bucket names use lowercase letters, digits, '-' and '.'",
                ));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                key: key.to_string(),
            });
        }
        if let Some(rest) = uri.strip_prefix("file://") {
            if rest.is_empty() {
                return Err(invalid("missing path after file://"));
            }
            return Ok(Location::Local(PathBuf::from(rest)));
        }
        if uri.starts_with("https://") || uri.starts_with("http://") {
            return Ok(Location::Http(uri.to_string()));
        }
        if let Some((scheme, _)) = uri.split_once("://") {
            return Err(invalid(&format!(
                "unsupported scheme {scheme:?} (use a path, file://, s3:// or https://)"
            )));
        }
        Ok(Location::Local(PathBuf::from(uri)))
    }

    /// The local path, if this is a local location.
    pub fn as_local(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            _ => None,
        }
    }
}

/// Joins a relative name onto a URI or path, with exactly one `/` between them.
///
/// `join("s3://b/out", "status/1.json")` is `s3://b/out/status/1.json`;
/// `join("out/", "a.tif")` is `out/a.tif`.
pub fn join(base: &str, name: &str) -> String {
    let name = name.trim_start_matches('/');
    if base.is_empty() {
        return name.to_string();
    }
    if base.ends_with('/') {
        format!("{base}{name}")
    } else {
        format!("{base}/{name}")
    }
}

/// The URI of the "directory" holding `uri` (everything before its last `/`).
///
/// For a local relative file name without a directory this is `.`.
pub fn parent(uri: &str) -> String {
    let trimmed = uri.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(i) if trimmed[..i].ends_with(':') || trimmed[..i].ends_with(":/") => {
            // `s3://bucket` or `file:///` — the root itself.
            trimmed.to_string()
        }
        Some(0) => "/".to_string(),
        Some(i) => trimmed[..i].to_string(),
        None => ".".to_string(),
    }
}

/// The last path component of `uri` (its file name).
pub fn file_name(uri: &str) -> &str {
    let trimmed = uri.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        assert_eq!(
            Location::parse("s3://bucket/a/b.tif").unwrap(),
            Location::S3 {
                bucket: "bucket".into(),
                key: "a/b.tif".into()
            }
        );
        assert_eq!(
            Location::parse("s3://bucket").unwrap(),
            Location::S3 {
                bucket: "bucket".into(),
                key: "".into()
            }
        );
        assert_eq!(
            Location::parse("file:///tmp/x").unwrap(),
            Location::Local("/tmp/x".into())
        );
        assert_eq!(
            Location::parse("rel/x.las").unwrap(),
            Location::Local("rel/x.las".into())
        );
        assert!(matches!(
            Location::parse("https://example.org/x.tif").unwrap(),
            Location::Http(_)
        ));
    }

    #[test]
    fn rejects_bad_uris() {
        for bad in [
            "",
            "s3://",
            "s3:///key",
            "gs://b/k",
            "s3://Bad_Bucket/k",
            "file://",
        ] {
            let err = Location::parse(bad).unwrap_err();
            assert!(matches!(err, StoreError::InvalidUri { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn joins_and_splits() {
        assert_eq!(
            join("s3://b/out", "status/1.json"),
            "s3://b/out/status/1.json"
        );
        assert_eq!(join("s3://b/out/", "/x"), "s3://b/out/x");
        assert_eq!(join("", "x"), "x");
        assert_eq!(parent("s3://b/out/x.tif"), "s3://b/out");
        assert_eq!(parent("s3://b/x.tif"), "s3://b");
        assert_eq!(parent("/x.tif"), "/");
        assert_eq!(parent("x.tif"), ".");
        assert_eq!(parent("dir/x.tif"), "dir");
        assert_eq!(file_name("s3://b/out/x.tif"), "x.tif");
        assert_eq!(file_name("x.tif"), "x.tif");
    }
}
