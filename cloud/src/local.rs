//! Local-file backend: positional reads, temp-file-and-rename writes.

use std::fs::File;
use std::io::{Read, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rand::Rng;

use std::sync::Arc;

use crate::backend::{Backend, ObjectInfo, ObjectMeta, Shared};
use crate::counters::Counters;
use crate::error::{Op, StoreError};

/// A local file (for `list`, a directory or a file-name prefix), from a plain path or a
/// `file://` URI.
pub(crate) struct LocalFile(pub(crate) PathBuf);

impl Backend for LocalFile {
    fn head(&self, shared: &Arc<Shared>, uri: &str) -> Result<ObjectInfo, StoreError> {
        head(&shared.counters, uri, &self.0)
    }
    fn get(&self, shared: &Arc<Shared>, uri: &str, max_bytes: u64) -> Result<Bytes, StoreError> {
        get(&shared.counters, uri, &self.0, max_bytes)
    }
    fn get_ranges(
        &self,
        shared: &Arc<Shared>,
        uri: &str,
        requests: &[Range<u64>],
    ) -> Result<Vec<Bytes>, StoreError> {
        get_ranges(&shared.counters, uri, &self.0, requests)
    }
    fn put_reader(
        &self,
        shared: &Arc<Shared>,
        uri: &str,
        reader: &mut dyn Read,
    ) -> Result<u64, StoreError> {
        put_reader(&shared.counters, uri, &self.0, reader)
    }
    fn list(&self, shared: &Arc<Shared>, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        list(&shared.counters, prefix, &self.0)
    }
    fn delete(&self, shared: &Arc<Shared>, uri: &str) -> Result<(), StoreError> {
        delete(&shared.counters, uri, &self.0)
    }
}

/// Marker in the names of files being written; listings skip them.
const TEMP_MARKER: &str = ".geobutton-tmp.";

/// What a non-regular file is, for error messages.
fn kind_of(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// The metadata of the regular file at `path` (symbolic links followed).
fn regular_file_meta(
    op: Op,
    uri: &str,
    meta: std::io::Result<std::fs::Metadata>,
) -> Result<std::fs::Metadata, StoreError> {
    let meta = meta.map_err(|e| StoreError::io(op, uri, e))?;
    if !meta.is_file() {
        return Err(StoreError::NotAFile {
            op,
            uri: uri.to_string(),
            what: kind_of(meta.file_type()),
        });
    }
    Ok(meta)
}

fn info_of(meta: &std::fs::Metadata) -> ObjectInfo {
    use std::os::unix::fs::MetadataExt;
    ObjectInfo {
        size: meta.len(),
        etag: None,
        modified_ns: Some(meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec()),
    }
}

fn head(counters: &Counters, uri: &str, path: &Path) -> Result<ObjectInfo, StoreError> {
    counters.request();
    let meta = regular_file_meta(Op::Head, uri, std::fs::metadata(path))?;
    Ok(info_of(&meta))
}

/// The whole file, refused when it is not a regular file or larger than `max_bytes`.
fn get(counters: &Counters, uri: &str, path: &Path, max_bytes: u64) -> Result<Bytes, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io(Op::Get, uri, e))?;
    let meta = regular_file_meta(Op::Get, uri, file.metadata())?;
    if meta.len() > max_bytes {
        return Err(StoreError::TooLarge {
            op: Op::Get,
            uri: uri.to_string(),
            size: Some(meta.len()),
            limit: max_bytes,
        });
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    // Read one byte past the size seen, so a file that grew is noticed rather than cut.
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| StoreError::io(Op::Get, uri, e))?;
    if data.len() as u64 > max_bytes {
        return Err(StoreError::TooLarge {
            op: Op::Get,
            uri: uri.to_string(),
            size: None,
            limit: max_bytes,
        });
    }
    counters.get(data.len() as u64);
    Ok(Bytes::from(data))
}

fn get_ranges(
    counters: &Counters,
    uri: &str,
    path: &Path,
    requests: &[Range<u64>],
) -> Result<Vec<Bytes>, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io(Op::GetRange, uri, e))?;
    let size = regular_file_meta(Op::GetRange, uri, file.metadata())?.len();
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

/// Removes temporary files of earlier writes of `path` whose writing process is gone (a
/// killed run), so they do not pile up beside the outputs.
fn remove_stale_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}{TEMP_MARKER}", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !process_alive(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` exists on this machine (Linux: `/proc/<pid>`).
fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

fn put_reader(
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
    remove_stale_temps(path);
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

fn delete(counters: &Counters, uri: &str, path: &Path) -> Result<(), StoreError> {
    counters.request();
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(Op::Delete, uri, e)),
    }
}

fn list(counters: &Counters, prefix: &str, path: &Path) -> Result<Vec<ObjectMeta>, StoreError> {
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
    // Directories entered, by their real path: symbolic links are followed (an archive
    // whose scenes are links to another disk lists like one with the files), loops are not.
    let mut seen_dirs = std::collections::HashSet::new();
    if let Ok(real) = std::fs::canonicalize(&root) {
        seen_dirs.insert(real);
    }
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
            let mut file_type = entry
                .file_type()
                .map_err(|e| StoreError::io(Op::List, prefix, e))?;
            let mut meta = None;
            if file_type.is_symlink() {
                // A dangling link lists as nothing.
                let Ok(m) = std::fs::metadata(&p) else {
                    continue;
                };
                file_type = m.file_type();
                meta = Some(m);
            }
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
                let first_visit = std::fs::canonicalize(&p)
                    .map(|real| seen_dirs.insert(real))
                    .unwrap_or(false);
                if first_visit {
                    stack.push(p);
                }
            } else if file_type.is_file() {
                if entry.file_name().to_string_lossy().contains(TEMP_MARKER) {
                    continue;
                }
                let size = match meta {
                    Some(m) => m.len(),
                    None => entry
                        .metadata()
                        .map_err(|e| StoreError::io(Op::List, prefix, e))?
                        .len(),
                };
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
