//! The storage backends behind a [`crate::Store`]: local files ([`crate::local`]), S3
//! ([`crate::s3`]) and read-only HTTP(S) ([`crate::http`]), each a [`Backend`] for the
//! locations of its kind ([`open`]).
//!
//! A backend does one request's work and counts it; the store above does what every backend
//! shares: deadlines, waiting out throttling, range planning and the record of writes.

use std::io::Read;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::counters::Counters;
use crate::error::StoreError;
use crate::options::StoreOptions;
use crate::uri::Location;
use crate::{http, local, s3};

/// Size and location of a listed object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// The object's URI, in the same form as the listed prefix.
    pub uri: String,
    /// Size in bytes.
    pub size: u64,
}

/// What identifies one version of an object: its size and, where the backend has them, its
/// ETag (S3, HTTP) and modification time (local files: nanoseconds; HTTP `Last-Modified`).
///
/// Two reads that give equal `ObjectInfo`s saw the same object version, as far as the backend
/// can tell: this is what task fingerprints record of their inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    /// The entity tag the server gives (S3, HTTP), quotes included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Modification time, nanoseconds since 1970-01-01 UTC (local files: the file's mtime;
    /// HTTP without an ETag: `Last-Modified`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_ns: Option<i64>,
}

/// What every backend request of a [`crate::Store`] shares: options, counters, connections,
/// the task's deadline and its record of writes. The store and its clones hold one.
pub(crate) struct Shared {
    pub(crate) options: StoreOptions,
    pub(crate) counters: Counters,
    pub(crate) s3: Arc<s3::Clients>,
    pub(crate) http: http::Client,
    /// After this instant every operation fails with [`StoreError::Deadline`] (a task's).
    pub(crate) deadline: Option<Instant>,
    /// URIs written through this store, when it tracks them (a task's, so that a failed task
    /// can remove what it wrote).
    pub(crate) written: Option<Mutex<Vec<String>>>,
}

impl Shared {
    /// The time a remote request attempt may take: the request deadline, or less when the
    /// task's deadline comes first.
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    pub(crate) fn attempt_limit(&self) -> Duration {
        let limit = self.options.request_deadline;
        match self.deadline {
            Some(d) => limit.min(d.saturating_duration_since(Instant::now())),
            None => limit,
        }
    }
}

/// One object (or prefix) of one kind of storage, with the requests a [`crate::Store`] makes
/// of it. Blocking: remote backends run their requests on the shared I/O runtime
/// ([`crate::runtime::block_on`]).
pub(crate) trait Backend {
    /// Size and version identity of the object.
    fn head(&self, shared: &Arc<Shared>, uri: &str) -> Result<ObjectInfo, StoreError>;
    /// The whole object, refused past `max_bytes`.
    fn get(&self, shared: &Arc<Shared>, uri: &str, max_bytes: u64) -> Result<Bytes, StoreError>;
    /// The byte ranges `requests` (already planned: sorted, coalesced, capped), in order.
    fn get_ranges(
        &self,
        shared: &Arc<Shared>,
        uri: &str,
        requests: &[Range<u64>],
    ) -> Result<Vec<Bytes>, StoreError>;
    /// Streams `reader` into the object atomically; returns the bytes written.
    fn put_reader(
        &self,
        shared: &Arc<Shared>,
        uri: &str,
        reader: &mut dyn Read,
    ) -> Result<u64, StoreError>;
    /// Objects under the prefix, sorted by URI.
    fn list(&self, shared: &Arc<Shared>, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError>;
    /// Deletes the object; a missing one is not an error.
    fn delete(&self, shared: &Arc<Shared>, uri: &str) -> Result<(), StoreError>;
    /// The AWS region of the object's bucket; `None` where there is none (local, HTTP).
    fn bucket_region(
        &self,
        _shared: &Arc<Shared>,
        _uri: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
}

/// The backend of the location `uri` names.
pub(crate) fn open(uri: &str) -> Result<Box<dyn Backend>, StoreError> {
    Ok(match Location::parse(uri)? {
        Location::Local(path) => Box::new(local::LocalFile(path)),
        #[cfg(feature = "remote")]
        Location::S3 { bucket, key } => Box::new(s3::S3Object { bucket, key }),
        #[cfg(feature = "remote")]
        Location::Http(url) => Box::new(http::HttpUrl(url)),
        #[cfg(not(feature = "remote"))]
        Location::S3 { .. } => Box::new(crate::offline::Offline { s3: true }),
        #[cfg(not(feature = "remote"))]
        Location::Http(_) => Box::new(crate::offline::Offline { s3: false }),
    })
}
