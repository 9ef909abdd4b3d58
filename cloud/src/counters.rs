//! Request counters of a [`crate::Store`]: every request and byte, and S3 requests by bucket
//! region and payer (what the cost estimate prices).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Counters of the requests a [`crate::Store`] (and its clones) made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Every backend request: heads, gets, range gets, puts/parts, list pages, deletes.
    pub requests: u64,
    /// Whole and ranged GETs (one per merged range request; local reads count alike).
    pub get_requests: u64,
    /// Bytes received by GETs.
    pub bytes_read: u64,
    /// PUTs, multipart parts included.
    pub put_requests: u64,
    /// Bytes written by PUTs.
    pub bytes_written: u64,
    /// Waits on a throttled service ([`crate::StoreOptions::throttle`]): not failures.
    #[serde(default)]
    pub throttled: u64,
}

/// S3 requests and bytes of a [`crate::Store`] to the buckets of one region, split by who pays:
/// the figures the cost estimate prices (requests by class; transfer out of the region).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Traffic {
    /// The buckets' region (`us-west-2`), as the requests were answered from.
    pub region: String,
    /// Whether the requester pays for these requests and the transfer: signed requests
    /// (buckets of one's own account, requester-pays buckets). Unsigned requests to public
    /// open-data buckets are paid by the bucket's owner (the AWS Open Data sponsorship).
    pub billed: bool,
    /// GET-class requests (GET, ranged GET, HEAD).
    pub get_class: u64,
    /// PUT-class requests (PUT, multipart parts, POST, LIST).
    pub put_class: u64,
    /// Bytes received, out of the region.
    pub bytes_read: u64,
    /// Bytes sent, into the region.
    pub bytes_written: u64,
}

/// The class of an S3 request, as priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub(crate) enum S3Class {
    /// GET, HEAD.
    Get,
    /// PUT, POST, LIST, multipart.
    Put,
    /// DELETE, free.
    Free,
}

#[derive(Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    get_requests: AtomicU64,
    bytes_read: AtomicU64,
    put_requests: AtomicU64,
    bytes_written: AtomicU64,
    pub(crate) throttled: AtomicU64,
    /// S3 traffic by (region, billed).
    s3: Mutex<std::collections::BTreeMap<(String, bool), S3Traffic>>,
}

impl Counters {
    /// One S3 request to a bucket of `region`, with the bytes it moved.
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    pub(crate) fn s3(&self, region: &str, billed: bool, class: S3Class, read: u64, written: u64) {
        let Ok(mut m) = self.s3.lock() else { return };
        let t = m
            .entry((region.to_string(), billed))
            .or_insert_with(|| S3Traffic {
                region: region.to_string(),
                billed,
                ..S3Traffic::default()
            });
        match class {
            S3Class::Get => t.get_class += 1,
            S3Class::Put => t.put_class += 1,
            S3Class::Free => {}
        }
        t.bytes_read += read;
        t.bytes_written += written;
    }
    pub(crate) fn s3_traffic(&self) -> Vec<S3Traffic> {
        self.s3
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn get(&self, bytes: u64) {
        self.request();
        self.get_requests.fetch_add(1, Ordering::Relaxed);
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }
    pub(crate) fn put(&self, bytes: u64) {
        self.request();
        self.put_requests.fetch_add(1, Ordering::Relaxed);
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
    }
    pub(crate) fn snapshot(&self) -> StoreStats {
        StoreStats {
            requests: self.requests.load(Ordering::Relaxed),
            get_requests: self.get_requests.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            put_requests: self.put_requests.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
        }
    }
    pub(crate) fn reset(&self) {
        for c in [
            &self.requests,
            &self.get_requests,
            &self.bytes_read,
            &self.put_requests,
            &self.bytes_written,
            &self.throttled,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        if let Ok(mut m) = self.s3.lock() {
            m.clear();
        }
    }
}
