//! [`Store`]: one blocking API over local files, S3 and HTTP(S).

use std::io::Read;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;

use crate::backend::{self, ObjectInfo, ObjectMeta, Shared};
use crate::counters::{Counters, S3Traffic, StoreStats};
use crate::error::{Op, StoreError};
use crate::options::{MIN_PART_SIZE, StoreOptions};
use crate::{http, ranges};

/// Largest JSON document [`Store::get_json`] reads: 256 MiB.
pub const MAX_JSON_BYTES: u64 = 256 << 20;

/// Blocking access to objects named by URIs: local paths, `file://`, `s3://`, `http(s)://`.
///
/// Cheap to clone; clones share connections and request counters. Safe to call from rayon
/// workers and from async code running on a multi-threaded tokio runtime.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Shared>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Default for Store {
    fn default() -> Self {
        Store::new(StoreOptions::default())
    }
}

impl Store {
    /// A store with the given options. Remote clients are created on first use.
    pub fn new(mut options: StoreOptions) -> Self {
        options.part_size = options.part_size.max(MIN_PART_SIZE);
        options.concurrency = options.concurrency.max(1);
        Store {
            inner: Arc::new(Shared {
                http: http::Client::new(&options),
                s3: Arc::default(),
                counters: Counters::default(),
                options,
                deadline: None,
                written: None,
            }),
        }
    }

    /// A store configured from the environment ([`StoreOptions::from_env`]).
    pub fn from_env() -> Self {
        Store::new(StoreOptions::from_env())
    }

    /// A store configured from the environment, refusing values the variables cannot take
    /// ([`StoreOptions::try_from_env`]): what programs start with.
    pub fn try_from_env() -> Result<Self, String> {
        StoreOptions::try_from_env().map(Store::new)
    }

    /// A store sharing this one's options and connections but with request counters of its
    /// own (one per task, so concurrent tasks report their own traffic).
    pub fn with_own_counters(&self) -> Store {
        self.derived(self.inner.deadline, None)
    }

    /// A store sharing this one's options and connections, with counters of its own.
    fn derived(&self, deadline: Option<Instant>, written: Option<Mutex<Vec<String>>>) -> Store {
        Store {
            inner: Arc::new(Shared {
                options: self.inner.options.clone(),
                counters: Counters::default(),
                s3: self.inner.s3.clone(),
                http: self.inner.http.clone(),
                deadline,
                written,
            }),
        }
    }

    /// A store for one task: counters of its own, a record of every object it writes
    /// ([`Store::written`]), and operations that fail with [`StoreError::Deadline`] after
    /// `deadline` (so a task past its deadline stops at its next storage call).
    pub fn for_task(&self, deadline: Option<Instant>) -> Store {
        self.derived(
            deadline.or(self.inner.deadline),
            Some(Mutex::new(Vec::new())),
        )
    }

    /// The objects written through this store (and its clones) so far, in order, when it
    /// was made by [`Store::for_task`]; empty otherwise.
    pub fn written(&self) -> Vec<String> {
        match &self.inner.written {
            Some(w) => w.lock().map(|v| v.clone()).unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// The deadline of this store's task, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline
    }

    /// [`StoreError::Deadline`] when this store's deadline has passed.
    pub fn check_deadline(&self, op: Op, uri: &str) -> Result<(), StoreError> {
        match self.inner.deadline {
            Some(d) if Instant::now() >= d => Err(StoreError::Deadline {
                op,
                uri: uri.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// `request()` again while the service throttles it, waiting between tries
    /// ([`StoreOptions::throttle`]); other outcomes are returned as they are.
    fn patient<T>(
        &self,
        op: Op,
        uri: &str,
        request: impl Fn() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let policy = self.inner.options.throttle;
        let mut round = 0u32;
        let mut redirected = false;
        loop {
            match request() {
                // S3 named the bucket's region (now remembered): ask there, once.
                Err(StoreError::WrongRegion { .. }) if !redirected => redirected = true,
                Err(e) if e.is_throttled() && round + 1 < policy.max_attempts.max(1) => {
                    round += 1;
                    let mut pause = policy.backoff(round);
                    if let Some(d) = self.inner.deadline {
                        pause = pause.min(d.saturating_duration_since(Instant::now()));
                    }
                    self.inner
                        .counters
                        .throttled
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%uri, round, pause_s = pause.as_secs_f64(), "throttled ({e}); waiting");
                    std::thread::sleep(pause);
                    self.check_deadline(op, uri)?;
                }
                other => return other,
            }
        }
    }

    fn record_write(&self, uri: &str) {
        if let Some(w) = &self.inner.written
            && let Ok(mut v) = w.lock()
            && !v.iter().any(|u| u == uri)
        {
            v.push(uri.to_string());
        }
    }

    /// The options this store was made with.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    /// Requests made so far by this store and its clones.
    pub fn stats(&self) -> StoreStats {
        self.inner.counters.snapshot()
    }

    /// S3 requests and bytes so far by bucket region and payer (sorted by region), for
    /// the cost of requests and of transfer between regions.
    pub fn s3_traffic(&self) -> Vec<S3Traffic> {
        self.inner.counters.s3_traffic()
    }

    /// Sets the request counters back to zero.
    pub fn reset_stats(&self) {
        self.inner.counters.reset()
    }

    /// Size of the object in bytes.
    pub fn head(&self, uri: &str) -> Result<u64, StoreError> {
        self.info(uri).map(|i| i.size)
    }

    /// Size and version identity (ETag, modification time) of the object.
    ///
    /// A local path that is not a regular file (a directory, a device such as `/dev/zero`, a
    /// FIFO) is [`StoreError::NotAFile`]; symbolic links are followed.
    pub fn info(&self, uri: &str) -> Result<ObjectInfo, StoreError> {
        self.check_deadline(Op::Head, uri)?;
        let backend = backend::open(uri)?;
        self.patient(Op::Head, uri, || backend.head(&self.inner, uri))
    }

    /// Whether the object exists.
    pub fn exists(&self, uri: &str) -> Result<bool, StoreError> {
        match self.head(uri) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() || matches!(e, StoreError::NotAFile { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The whole object (at most [`StoreOptions::max_get_bytes`]).
    pub fn get(&self, uri: &str) -> Result<Bytes, StoreError> {
        self.get_capped(uri, self.inner.options.max_get_bytes)
    }

    /// The whole object, refused with [`StoreError::TooLarge`] when it is larger than
    /// `max_bytes` (or its body goes on past it): the read for small inputs such as JSON,
    /// CSV and task files, which a wrong path must not turn into an unbounded allocation.
    pub fn get_capped(&self, uri: &str, max_bytes: u64) -> Result<Bytes, StoreError> {
        self.check_deadline(Op::Get, uri)?;
        let max_bytes = max_bytes.min(self.inner.options.max_get_bytes);
        let backend = backend::open(uri)?;
        self.patient(Op::Get, uri, || backend.get(&self.inner, uri, max_bytes))
    }

    /// Bytes `range` of the object; a range past the end is [`StoreError::RangePastEnd`].
    pub fn get_range(&self, uri: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        let mut out = self.get_ranges(uri, std::slice::from_ref(&range))?;
        Ok(out.pop().unwrap_or_default())
    }

    /// Several byte ranges of one object, returned in the order asked.
    ///
    /// Ranges are sorted and coalesced when their gap is at most
    /// [`StoreOptions::coalesce_gap`], each merged request is capped at
    /// [`StoreOptions::max_request`], and merged requests run concurrently.
    pub fn get_ranges(&self, uri: &str, wanted: &[Range<u64>]) -> Result<Vec<Bytes>, StoreError> {
        for r in wanted {
            if r.start > r.end {
                return Err(StoreError::InvalidUri {
                    uri: uri.to_string(),
                    reason: format!("reversed byte range {}..{}", r.start, r.end),
                });
            }
        }
        self.check_deadline(Op::GetRange, uri)?;
        let opts = &self.inner.options;
        let plan = ranges::plan(wanted, opts.coalesce_gap, opts.max_request);
        if plan.is_empty() {
            return Ok(vec![Bytes::new(); wanted.len()]);
        }
        let requests: Vec<Range<u64>> = plan.iter().map(|m| m.range.clone()).collect();
        let backend = backend::open(uri)?;
        let responses = self.patient(Op::GetRange, uri, || {
            backend.get_ranges(&self.inner, uri, &requests)
        })?;
        Ok(ranges::assemble(wanted, &plan, &responses))
    }

    /// Writes `data` atomically: readers see the old object or the whole new one.
    pub fn put(&self, uri: &str, data: Bytes) -> Result<(), StoreError> {
        self.put_reader(uri, std::io::Cursor::new(data)).map(|_| ())
    }

    /// Streams `reader` into the object atomically and returns the bytes written.
    ///
    /// Locally: a temporary file in the same directory, renamed into place when complete.
    /// On S3: one PUT for small data, else a multipart upload completed last and aborted on
    /// any failure (a failing `reader` included), so no partial object ever appears.
    pub fn put_reader(&self, uri: &str, mut reader: impl Read) -> Result<u64, StoreError> {
        self.check_deadline(Op::Put, uri)?;
        // Not asked again when throttled: a streamed body cannot be replayed.
        let written = backend::open(uri)?.put_reader(&self.inner, uri, &mut reader)?;
        self.record_write(uri);
        Ok(written)
    }

    /// Uploads (or copies) a local file atomically to `uri`.
    pub fn put_file(&self, uri: &str, path: &Path) -> Result<u64, StoreError> {
        let file = std::fs::File::open(path)
            .map_err(|e| StoreError::io(Op::Put, &path.display().to_string(), e))?;
        self.put_reader(uri, std::io::BufReader::with_capacity(1 << 20, file))
    }

    /// Objects whose URI starts with `prefix`, sorted by URI.
    ///
    /// A local prefix naming a directory (or ending in `/`) lists the files below it,
    /// recursively; otherwise the files of its parent directory starting with it.
    pub fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.check_deadline(Op::List, prefix)?;
        let backend = backend::open(prefix)?;
        self.patient(Op::List, prefix, || backend.list(&self.inner, prefix))
    }

    /// The AWS region of the bucket of an `s3://` URI (`us-west-2` for `sentinel-cogs`):
    /// learnt from an earlier answer, a known public bucket's, else asked with a
    /// HeadBucket, whose answer (`x-amz-bucket-region`) names it even when it refuses.
    /// `None` for local and HTTP locations.
    pub fn bucket_region(&self, uri: &str) -> Result<Option<String>, StoreError> {
        let backend = backend::open(uri)?;
        self.patient(Op::Head, uri, || backend.bucket_region(&self.inner, uri))
    }

    /// Deletes the object; deleting a missing object succeeds.
    pub fn delete(&self, uri: &str) -> Result<(), StoreError> {
        let backend = backend::open(uri)?;
        self.patient(Op::Delete, uri, || backend.delete(&self.inner, uri))
    }

    /// Reads the JSON object at `uri` (at most [`MAX_JSON_BYTES`]).
    pub fn get_json<T: serde::de::DeserializeOwned>(&self, uri: &str) -> Result<T, StoreError> {
        let bytes = self.get_capped(uri, MAX_JSON_BYTES)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Io {
            op: Op::Get,
            uri: uri.to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("invalid JSON: {e}"),
            ),
        })
    }

    /// Writes `value` as pretty JSON to `uri`, atomically.
    pub fn put_json<T: Serialize>(&self, uri: &str, value: &T) -> Result<(), StoreError> {
        let mut text = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Io {
            op: Op::Put,
            uri: uri.to_string(),
            source: std::io::Error::other(e),
        })?;
        text.push(b'\n');
        self.put(uri, Bytes::from(text))
    }
}
