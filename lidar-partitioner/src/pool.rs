//! A small pool of byte buffers reused across rayon jobs (decoded batches, LAZ chunks), so
//! that the allocator does not keep a growing set of freed multi-megabyte blocks per thread.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// Buffers kept for reuse at most.
const KEEP: usize = 16;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A buffer of `len` bytes (contents unspecified) that goes back to the pool when dropped.
pub(crate) struct Buf(Vec<u8>);

impl Buf {
    pub fn new(len: usize) -> Buf {
        let mut v = POOL
            .lock()
            .ok()
            .and_then(|mut p| {
                // The smallest buffer that is big enough, else the biggest.
                let best = (0..p.len())
                    .filter(|&i| p[i].capacity() >= len)
                    .min_by_key(|&i| p[i].capacity())
                    .or_else(|| (0..p.len()).max_by_key(|&i| p[i].capacity()));
                best.map(|i| p.swap_remove(i))
            })
            .unwrap_or_default();
        v.clear();
        v.resize(len, 0);
        Buf(v)
    }

    /// An empty buffer with at least `cap` bytes of capacity, for appending.
    pub fn with_capacity(cap: usize) -> Buf {
        let mut b = Buf::new(0);
        b.0.reserve(cap);
        b
    }

    pub fn vec(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Deref for Buf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        if v.capacity() == 0 {
            return;
        }
        if let Ok(mut p) = POOL.lock()
            && p.len() < KEEP
        {
            p.push(v);
        }
    }
}

/// Frees the pooled buffers (between phases, so the pool does not hold memory idle).
pub(crate) fn trim() {
    if let Ok(mut p) = POOL.lock() {
        p.clear();
    }
}
