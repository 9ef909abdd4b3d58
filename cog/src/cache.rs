//! [`HeaderCache`]: the bytes of a file's header region, fetched from a [`cloud::Store`] with
//! as few requests as possible (one 32 KiB prefix for a normal COG), as a [`Source`].

use std::ops::Range;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use cloud::{Store, StoreError};

use crate::error::CogError;
use crate::tiff::Source;

/// Size of a separate segment fetched around a structure far from the prefix.
const SEGMENT: u64 = 16 * 1024;

struct Inner {
    /// Fetched segments `(start, bytes)`, the first one is the prefix starting at 0.
    segs: Vec<(u64, Bytes)>,
    /// The file size when known.
    size: Option<u64>,
}

/// A store for in-memory readers, which never make requests (built once: making a store
/// sets up clients).
pub(crate) fn unused_store() -> Store {
    static STORE: std::sync::OnceLock<Store> = std::sync::OnceLock::new();
    STORE
        .get_or_init(|| Store::new(cloud::StoreOptions::default()))
        .clone()
}

/// Bytes of the header region of one file.
pub struct HeaderCache {
    store: Store,
    uri: String,
    inner: Mutex<Inner>,
}

impl HeaderCache {
    /// Fetches the first `prefix` bytes of `uri` (fewer if the file is smaller).
    pub fn open(store: &Store, uri: &str, prefix: u64) -> Result<HeaderCache, CogError> {
        let prefix = prefix.max(64);
        let (bytes, size) = match store.get_range(uri, 0..prefix) {
            Ok(b) => (b, None),
            Err(StoreError::RangePastEnd { size, .. }) => {
                let size = match size {
                    Some(s) => s,
                    None => store.head(uri).map_err(|e| CogError::store(uri, e))?,
                };
                if size == 0 {
                    return Err(CogError::invalid(uri, "the file is empty"));
                }
                let b = store
                    .get_range(uri, 0..size.min(prefix))
                    .map_err(|e| CogError::store(uri, e))?;
                (b, Some(size))
            }
            Err(e) => return Err(CogError::store(uri, e)),
        };
        Ok(HeaderCache {
            store: store.clone(),
            uri: uri.to_string(),
            inner: Mutex::new(Inner {
                segs: vec![(0, bytes)],
                size,
            }),
        })
    }

    /// A cache holding a whole file already in memory (no requests are ever made).
    pub fn from_bytes(uri: &str, data: Bytes) -> HeaderCache {
        let size = data.len() as u64;
        HeaderCache {
            store: unused_store(),
            uri: uri.to_string(),
            inner: Mutex::new(Inner {
                segs: vec![(0, data)],
                size: Some(size),
            }),
        }
    }

    /// The prefix bytes (from offset 0).
    pub fn prefix(&self) -> Bytes {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.segs[0].1.clone()
    }

    /// The file size, if a request has revealed it.
    pub fn known_size(&self) -> Option<u64> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).size
    }

    /// The file size (a HEAD request if not known yet).
    pub fn size(&self) -> Result<u64, CogError> {
        if let Some(s) = self.known_size() {
            return Ok(s);
        }
        let s = self
            .store
            .head(&self.uri)
            .map_err(|e| CogError::store(&self.uri, e))?;
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).size = Some(s);
        Ok(s)
    }

    fn past_end(&self, r: &Range<u64>, size: u64) -> CogError {
        CogError::invalid(
            &self.uri,
            format!(
                "bytes {}..{} lie past the end of the file ({size} bytes)",
                r.start, r.end
            ),
        )
    }
}

impl Source for HeaderCache {
    fn uri(&self) -> &str {
        &self.uri
    }

    fn bytes(&self, r: Range<u64>) -> Result<Bytes, CogError> {
        if r.start > r.end {
            return Err(CogError::invalid(&self.uri, "reversed byte range"));
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for (start, b) in &g.segs {
            let end = start + b.len() as u64;
            if r.start >= *start && r.end <= end {
                return Ok(b.slice((r.start - start) as usize..(r.end - start) as usize));
            }
        }
        let prefix_len = g.segs[0].1.len() as u64;
        // A prefix shorter than asked means the whole file is already here.
        if let Some(size) = g.size
            && r.end > size
        {
            return Err(self.past_end(&r, size));
        }
        let near = r.start <= prefix_len.saturating_mul(2) && r.end <= prefix_len.saturating_mul(8);
        if !near && g.size.is_none() {
            // Far away: learn the size first so a hostile offset never triggers a huge read.
            drop(g);
            let size = self.size()?;
            if r.end > size {
                return Err(self.past_end(&r, size));
            }
            g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        }
        let size = g.size;
        if near {
            // Grow the prefix by doubling until it covers the range.
            let mut new_len = prefix_len.max(1) * 2;
            while new_len < r.end {
                new_len *= 2;
            }
            if let Some(s) = size {
                new_len = new_len.min(s);
            }
            let got = match self.store.get_range(&self.uri, prefix_len..new_len) {
                Ok(b) => b,
                Err(StoreError::RangePastEnd { size: found, .. }) => {
                    let s = match found {
                        Some(s) => s,
                        None => {
                            drop(g);
                            let s = self.size()?;
                            g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
                            s
                        }
                    };
                    g.size = Some(s);
                    if r.end > s {
                        return Err(self.past_end(&r, s));
                    }
                    self.store
                        .get_range(&self.uri, prefix_len..s)
                        .map_err(|e| CogError::store(&self.uri, e))?
                }
                Err(e) => return Err(CogError::store(&self.uri, e)),
            };
            let mut joined = BytesMut::with_capacity(prefix_len as usize + got.len());
            joined.extend_from_slice(&g.segs[0].1);
            joined.extend_from_slice(&got);
            let joined = joined.freeze();
            let out = joined.slice(r.start as usize..r.end as usize);
            g.segs[0].1 = joined;
            return Ok(out);
        }
        // A separate segment around the range (size is known here).
        let size = size.unwrap_or(r.end);
        let end = r.end.max(r.start + SEGMENT).min(size);
        let got = self
            .store
            .get_range(&self.uri, r.start..end)
            .map_err(|e| CogError::store(&self.uri, e))?;
        let out = got.slice(0..(r.end - r.start) as usize);
        g.segs.push((r.start, got));
        Ok(out)
    }
}
