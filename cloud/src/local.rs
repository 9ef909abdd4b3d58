//! Local-file backend: positional reads, temp-file-and-rename writes.

use std::fs::File;
use std::io::{Read, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rand::Rng;

use crate::error::{Op, StoreError};
use crate::store::{Counters, ObjectMeta};

/// Marker in the names of files being written; listings skip them.
const TEMP_MARKER: &str = ".geobutton-tmp.";

pub(crate) fn head(counters: &Counters, uri: &str, path: &Path) -> Result<u64, StoreError> {
    counters.request();
    let meta = std::fs::metadata(path).map_err(|e| StoreError::io(Op::Head, uri, e))?;
    if !meta.is_file() {
        return Err(StoreError::NotFound {
            op: Op::Head,
            uri: uri.to_string(),
        });
    }
    Ok(meta.len())
}

pub(crate) fn get(counters: &Counters, uri: &str, path: &Path) -> Result<Bytes, StoreError> {
    let data = std::fs::read(path).map_err(|e| StoreError::io(Op::Get, uri, e))?;
    counters.get(data.len() as u64);
    Ok(Bytes::from(data))
}

pub(crate) fn get_ranges(
    counters: &Counters,
    uri: &str,
    path: &Path,
    requests: &[Range<u64>],
) -> Result<Vec<Bytes>, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io(Op::GetRange, uri, e))?;
    let size = file
        .metadata()
        .map_err(|e| StoreError::io(Op::GetRange, uri, e))?
        .len();
    let mut out = Vec::with_capacity(requests.len());
    for r in requests {
        if r.end > size {
            return Err(StoreError::RangePastEnd {
                op: Op::GetRange,
                uri: uri.to_string(),
                start: r.start,
                end: r.end,
                size: Some(size),
            });
        }
        let mut buf = vec![0u8; (r.end - r.start) as usize];
        file.read_exact_at(&mut buf, r.start)
            .map_err(|e| StoreError::io(Op::GetRange, uri, e))?;
        counters.get(buf.len() as u64);
        out.push(Bytes::from(buf));
    }
    Ok(out)
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suffix: u64 = rand::rng().random();
    path.with_file_name(format!(
        ".{name}{TEMP_MARKER}{}.{suffix:016x}",
        std::process::id()
    ))
}

pub(crate) fn put_reader(
    counters: &Counters,
    uri: &str,
    path: &Path,
    mut reader: impl Read,
) -> Result<u64, StoreError> {
    if path.file_name().is_none() || uri.ends_with('/') {
        return Err(StoreError::InvalidUri {
            uri: uri.to_string(),
            reason: "a put needs a file name, not a directory".to_string(),
        });
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(Op::Put, uri, e))?;
    }
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = File::create(&tmp).map_err(|e| StoreError::io(Op::Put, uri, e))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut written = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(StoreError::Source {
                        op: Op::Put,
                        uri: uri.to_string(),
                        source,
                    });
                }
            };
            file.write_all(&buf[..n])
                .map_err(|e| StoreError::io(Op::Put, uri, e))?;
            written += n as u64;
        }
        // No fsync: like GDAL and cp, durability across a machine crash is not promised;
        // the rename still guarantees readers see the old or the whole new object.
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| StoreError::io(Op::Put, uri, e))?;
        Ok(written)
    })();
    match result {
        Ok(written) => {
            counters.put(written);
            Ok(written)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

pub(crate) fn delete(counters: &Counters, uri: &str, path: &Path) -> Result<(), StoreError> {
    counters.request();
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(Op::Delete, uri, e)),
    }
}

pub(crate) fn list(
    counters: &Counters,
    prefix: &str,
    path: &Path,
) -> Result<Vec<ObjectMeta>, StoreError> {
    counters.request();
    let scheme = if prefix.starts_with("file://") {
        "file://"
    } else {
        ""
    };
    let (root, name_prefix) = if prefix.ends_with('/') || path.is_dir() {
        (path.to_path_buf(), None)
    } else {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        (
            parent.to_path_buf(),
            Some(path.to_string_lossy().into_owned()),
        )
    };
    // A bare name prefix lists `.`, whose entries read `./x`: show them as `x`.
    let strip_dot = name_prefix.is_some() && path.parent().is_none_or(|p| p.as_os_str().is_empty());
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(Op::List, prefix, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(Op::List, prefix, e))?;
            let p = entry.path();
            let file_type = entry
                .file_type()
                .map_err(|e| StoreError::io(Op::List, prefix, e))?;
            let shown = if strip_dot {
                p.strip_prefix(".").unwrap_or(&p)
            } else {
                &p
            };
            let display = shown.to_string_lossy().into_owned();
            if let Some(np) = &name_prefix
                && !display.starts_with(np.as_str())
            {
                continue;
            }
            if file_type.is_dir() {
                stack.push(p);
            } else if file_type.is_file() {
                if entry.file_name().to_string_lossy().contains(TEMP_MARKER) {
                    continue;
                }
                let size = entry
                    .metadata()
                    .map_err(|e| StoreError::io(Op::List, prefix, e))?
                    .len();
                out.push(ObjectMeta {
                    uri: format!("{scheme}{display}"),
                    size,
                });
            }
        }
    }
    out.sort_by(|a, b| a.uri.cmp(&b.uri));
    Ok(out)
}
