//! Checks of task parameters, shared by every stage's [`crate::Stage::validate`]: numbers
//! finite and within bounds (a `NaN` would become `null` in task JSON; an absurd count
//! would become an absurd allocation), URIs well formed, and no output that is also an input.
//!
//! Every error is [`ErrorKind::InvalidTask`] and names the parameter, its bounds and the value.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::path::{Component, Path, PathBuf};

use crate::task::{ErrorKind, TaskError};
use crate::uri::Location;

fn refuse(message: String) -> TaskError {
    TaskError::new(ErrorKind::InvalidTask, message)
}

/// `value` is finite and within `range` (inclusive).
///
/// ```
/// assert!(cloud::validate::number("resolution", 1.0, 0.01..=1000.0).is_ok());
/// let e = cloud::validate::number("resolution", f64::NAN, 0.01..=1000.0).unwrap_err();
/// assert!(e.message.contains("resolution"), "{e}");
/// ```
pub fn number(name: &str, value: f64, range: RangeInclusive<f64>) -> Result<(), TaskError> {
    if !value.is_finite() {
        return Err(refuse(format!(
            "{name} must be a finite number between {} and {}, not {value}",
            range.start(),
            range.end()
        )));
    }
    if !range.contains(&value) {
        return Err(refuse(format!(
            "{name} must be between {} and {}, not {value}",
            range.start(),
            range.end()
        )));
    }
    Ok(())
}

/// An optional [`number`].
pub fn opt_number(
    name: &str,
    value: Option<f64>,
    range: RangeInclusive<f64>,
) -> Result<(), TaskError> {
    value.map_or(Ok(()), |v| number(name, v, range))
}

/// An integer within `range` (inclusive).
pub fn count<T: PartialOrd + Display + Copy>(
    name: &str,
    value: T,
    range: RangeInclusive<T>,
) -> Result<(), TaskError> {
    if !range.contains(&value) {
        return Err(refuse(format!(
            "{name} must be between {} and {}, not {value}",
            range.start(),
            range.end()
        )));
    }
    Ok(())
}

/// A URI that parses (a path, `file://`, `s3://bucket/key` or `https://`) and names an
/// object rather than a bucket.
pub fn uri(name: &str, value: &str) -> Result<(), TaskError> {
    match Location::parse(value) {
        Err(e) => Err(refuse(format!("{name}: {e}"))),
        Ok(Location::S3 { key, .. }) if key.is_empty() || key.ends_with('/') => Err(refuse(
            format!("{name}: {value:?} names no object (s3://bucket/key)"),
        )),
        Ok(_) => Ok(()),
    }
}

/// A URI that parses and may be a prefix or folder (an output location).
pub fn location(name: &str, value: &str) -> Result<(), TaskError> {
    Location::parse(value)
        .map(|_| ())
        .map_err(|e| refuse(format!("{name}: {e}")))
}

/// One form of a location for comparisons: local paths made absolute and lexically
/// normalised (`.`/`..`), symbolic links resolved where the file exists.
pub fn comparable(value: &str) -> String {
    match Location::parse(value) {
        Ok(Location::Local(path)) => {
            if let Ok(real) = std::fs::canonicalize(&path) {
                return real.display().to_string();
            }
            let abs = if path.is_absolute() {
                path
            } else {
                std::env::current_dir()
                    .map(|d| d.join(&path))
                    .unwrap_or(path)
            };
            normalise(&abs).display().to_string()
        }
        _ => value.trim_end_matches('/').to_string(),
    }
}

fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// No output is one of the inputs: a command never writes over what it reads.
///
/// ```
/// use cloud::validate::distinct_outputs;
/// assert!(distinct_outputs(&["a.tif", "b.tif"], &["out.tif"]).is_ok());
/// assert!(distinct_outputs(&["a.tif", "./b.tif"], &["b.tif"]).is_err());
/// ```
pub fn distinct_outputs(inputs: &[&str], outputs: &[&str]) -> Result<(), TaskError> {
    let ins: Vec<String> = inputs.iter().map(|i| comparable(i)).collect();
    for o in outputs {
        let c = comparable(o);
        if let Some(i) = ins.iter().position(|i| *i == c) {
            return Err(refuse(format!(
                "the output {o} is also an input ({}): refusing to write over an input",
                inputs[i]
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn numbers_reject_nan_inf_and_out_of_range() {
        assert!(number("x", 0.5, 0.0..=1.0).is_ok());
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.1, 1.5] {
            let e = number("x", v, 0.0..=1.0).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidTask);
            assert!(e.message.starts_with("x must be"), "{e}");
        }
        assert!(count("windows", 0u32, 1..=64).is_err());
        assert!(count("windows", 3u32, 1..=64).is_ok());
    }

    #[test]
    fn uris_name_objects() {
        assert!(uri("input", "s3://b/k.tif").is_ok());
        assert!(uri("input", "s3://b").is_err());
        assert!(uri("input", "s3://b/").is_err());
        assert!(uri("input", "ftp://x/y").is_err());
        assert!(location("output", "s3://b/").is_ok());
    }

    #[test]
    fn outputs_over_inputs_are_refused_through_relative_forms() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.tif");
        std::fs::write(&a, b"x").unwrap();
        let link = dir.path().join("link.tif");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        let a_s = a.to_str().unwrap();
        let dotted = format!("{}/./sub/../a.tif", dir.path().display());
        assert!(distinct_outputs(&[a_s], &[&dotted]).is_err());
        assert!(distinct_outputs(&[a_s], &[link.to_str().unwrap()]).is_err());
        assert!(distinct_outputs(&[a_s], &[&format!("file://{a_s}")]).is_err());
        assert!(distinct_outputs(&["s3://b/x.tif"], &["s3://b/y.tif"]).is_ok());
        assert!(distinct_outputs(&["s3://b/x.tif"], &["s3://b/x.tif"]).is_err());
    }
}
