//! [`Store`]: one blocking API over local files, S3 and HTTP(S).

use std::io::Read;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Op, StoreError};
use crate::retry::RetryPolicy;
use crate::runtime::block_on;
use crate::uri::Location;
use crate::{http, local, ranges, s3};

/// Settings of a [`Store`]. [`StoreOptions::from_env`] reads them from the environment.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// S3-compatible endpoint (e.g. `http://127.0.0.1:5000`); path-style addressing is used
    /// with it. `None` reads `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, else AWS itself.
    pub endpoint: Option<String>,
    /// AWS region; `None` uses the standard chain, falling back to `us-east-1`.
    pub region: Option<String>,
    /// Send every S3 request unsigned (anonymous access to public buckets).
    pub no_sign_request: bool,
    /// Buckets always read anonymously (public open-data buckets), default `sentinel-cogs`.
    pub anonymous_buckets: Vec<String>,
    /// Add `x-amz-request-payer: requester` to S3 requests.
    pub requester_pays: bool,
    /// Fixed S3 credentials `(access key id, secret access key)` instead of the standard
    /// chain (environment, profile, SSO, container/instance roles).
    pub static_credentials: Option<(String, String)>,
    /// Ranges whose gap is at most this many bytes are fetched in one request.
    pub coalesce_gap: u64,
    /// Upper bound of one merged range request, in bytes.
    pub max_request: u64,
    /// Requests in flight at once for `get_ranges` and multipart uploads.
    pub concurrency: usize,
    /// Part size of multipart uploads (at least 5 MiB); smaller objects use one PUT.
    pub part_size: usize,
    /// Retries of throttled and transient failures, per request (the S3 SDK's and the
    /// HTTP client's own loop).
    pub retry: RetryPolicy,
    /// Throttling is not failure: a request still throttled after `retry` (S3 `SlowDown`,
    /// HTTP 503/429) waits `throttle.backoff(n)` (jittered, growing to a minute) and goes
    /// again, up to `throttle.max_attempts` rounds and never past the task's deadline; each
    /// wait is counted in [`StoreStats::throttled`]. Whole-object and ranged reads, heads,
    /// listings and deletes wait; a streamed upload cannot be replayed and fails instead.
    pub throttle: RetryPolicy,
    /// TCP connect timeout for remote stores.
    pub connect_timeout: Duration,
    /// Time without receiving data after which a remote read fails (and may be retried).
    pub read_timeout: Duration,
    /// Overall limit of one remote request attempt, body included: a server that trickles
    /// bytes slower than `read_timeout` cannot hold a read open past it.
    pub request_deadline: Duration,
    /// Largest object a whole-object `get` reads (bytes); larger ones, and bodies that go on
    /// past it, are [`StoreError::TooLarge`].
    pub max_get_bytes: u64,
}

/// Largest JSON document [`Store::get_json`] reads: 256 MiB.
pub const MAX_JSON_BYTES: u64 = 256 << 20;

/// Minimum S3 multipart part size.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            endpoint: None,
            region: None,
            no_sign_request: false,
            anonymous_buckets: vec!["sentinel-cogs".to_string()],
            requester_pays: false,
            static_credentials: None,
            coalesce_gap: 1024 * 1024,
            max_request: 16 * 1024 * 1024,
            concurrency: 8,
            part_size: 8 * 1024 * 1024,
            retry: RetryPolicy::default(),
            // 1, 2, 4, … 60 s: about five minutes in all.
            throttle: RetryPolicy {
                max_attempts: 10,
                initial_backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(60),
            },
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
            request_deadline: Duration::from_secs(300),
            max_get_bytes: 8 << 30,
        }
    }
}

impl StoreOptions {
    /// Defaults plus `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL`, `AWS_REGION`, unsigned
    /// requests (`AWS_NO_SIGN_REQUEST=YES`, GDAL's name, or `GEOBUTTON_NO_SIGN_REQUEST=1`)
    /// and requester pays (`AWS_REQUEST_PAYER=requester`, GDAL's name, or
    /// `GEOBUTTON_REQUESTER_PAYS=1`). A value these variables cannot take is logged and
    /// ignored; [`StoreOptions::try_from_env`] refuses it instead.
    pub fn from_env() -> Self {
        Self::try_from_env().unwrap_or_else(|problem| {
            tracing::warn!("{problem}; ignored");
            Self::from_vars(|k| std::env::var(k).ok(), true)
                .unwrap_or_else(|_| StoreOptions::default())
        })
    }

    /// [`StoreOptions::from_env`], refusing a value the variables cannot take (e.g.
    /// `AWS_REQUEST_PAYER=bucket-owner`) with a message naming the variable.
    pub fn try_from_env() -> Result<Self, String> {
        Self::from_vars(|k| std::env::var(k).ok(), false)
    }

    /// Whether requests to `bucket` go unsigned (everything with `no_sign_request`, else the
    /// public buckets of `anonymous_buckets`): the bucket's owner pays for them.
    pub fn is_anonymous(&self, bucket: &str) -> bool {
        self.no_sign_request || self.anonymous_buckets.iter().any(|b| b == bucket)
    }

    /// The options from the variables `var` gives; `lenient` ignores invalid values.
    fn from_vars(var: impl Fn(&str) -> Option<String>, lenient: bool) -> Result<Self, String> {
        let var = |k: &str| {
            var(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let check = |r: Result<bool, String>| match r {
            Err(_) if lenient => Ok(false),
            other => other,
        };
        // Ours: 1/true/0/false. GDAL's AWS_NO_SIGN_REQUEST: YES/NO, TRUE/FALSE, ON/OFF, 1/0.
        let boolean = |k: &str| -> Result<bool, String> {
            match var(k).map(|v| v.to_ascii_lowercase()).as_deref() {
                None => Ok(false),
                Some("1" | "true" | "yes" | "on") => Ok(true),
                Some("0" | "false" | "no" | "off") => Ok(false),
                Some(other) => Err(format!(
                    "{k}={other:?}: expected YES or NO (also TRUE/FALSE, ON/OFF, 1/0)"
                )),
            }
        };
        // GDAL passes AWS_REQUEST_PAYER as the x-amz-request-payer header, whose one value
        // is `requester`.
        let payer = || -> Result<bool, String> {
            match var("AWS_REQUEST_PAYER") {
                None => Ok(false),
                Some(v) if v.eq_ignore_ascii_case("requester") => Ok(true),
                Some(v) => Err(format!(
                    "AWS_REQUEST_PAYER={v:?}: the only value S3 takes is `requester`"
                )),
            }
        };
        Ok(StoreOptions {
            endpoint: var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL")),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            no_sign_request: check(boolean("GEOBUTTON_NO_SIGN_REQUEST"))?
                | check(boolean("AWS_NO_SIGN_REQUEST"))?,
            requester_pays: check(boolean("GEOBUTTON_REQUESTER_PAYS"))? | check(payer())?,
            ..StoreOptions::default()
        })
    }
}

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

/// Counters of the requests a [`Store`] (and its clones) made.
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
    /// Waits on a throttled service ([`StoreOptions::throttle`]): not failures.
    #[serde(default)]
    pub throttled: u64,
}

/// S3 requests and bytes of a [`Store`] to the buckets of one region, split by who pays:
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
    throttled: AtomicU64,
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
    fn s3_traffic(&self) -> Vec<S3Traffic> {
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
    fn snapshot(&self) -> StoreStats {
        StoreStats {
            requests: self.requests.load(Ordering::Relaxed),
            get_requests: self.get_requests.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            put_requests: self.put_requests.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
        }
    }
    fn reset(&self) {
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

pub(crate) struct Inner {
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

impl Inner {
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

/// Blocking access to objects named by URIs: local paths, `file://`, `s3://`, `http(s)://`.
///
/// Cheap to clone; clones share connections and request counters. Safe to call from rayon
/// workers and from async code running on a multi-threaded tokio runtime.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
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
            inner: Arc::new(Inner {
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
            inner: Arc::new(Inner {
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
        match Location::parse(uri)? {
            Location::Local(path) => local::head(&self.inner.counters, uri, &path),
            Location::S3 { bucket, key } => self.patient(Op::Head, uri, || {
                let (inner, uri) = (self.inner.clone(), uri.to_string());
                let (bucket, key) = (bucket.clone(), key.clone());
                block_on(async move { s3::head(&inner, &uri, &bucket, &key).await })
            }),
            Location::Http(url) => self.patient(Op::Head, uri, || {
                let (inner, url) = (self.inner.clone(), url.clone());
                block_on(async move { inner.http.head(&inner, &url).await })
            }),
        }
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
        match Location::parse(uri)? {
            Location::Local(path) => local::get(&self.inner.counters, uri, &path, max_bytes),
            Location::S3 { bucket, key } => self.patient(Op::Get, uri, || {
                let (inner, uri) = (self.inner.clone(), uri.to_string());
                let (bucket, key) = (bucket.clone(), key.clone());
                block_on(async move {
                    s3::get(&inner, &uri, &bucket, &key, None, Some(max_bytes)).await
                })
            }),
            Location::Http(url) => self.patient(Op::Get, uri, || {
                let (inner, url) = (self.inner.clone(), url.clone());
                block_on(async move { inner.http.get(&inner, &url, None, Some(max_bytes)).await })
            }),
        }
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
        let responses = match Location::parse(uri)? {
            Location::Local(path) => {
                local::get_ranges(&self.inner.counters, uri, &path, &requests)?
            }
            Location::S3 { bucket, key } => self.patient(Op::GetRange, uri, || {
                let (inner, uri) = (self.inner.clone(), uri.to_string());
                let (bucket, key, requests) = (bucket.clone(), key.clone(), requests.clone());
                block_on(async move { s3::get_ranges(&inner, &uri, &bucket, &key, requests).await })
            })?,
            Location::Http(url) => self.patient(Op::GetRange, uri, || {
                let (inner, url, requests) = (self.inner.clone(), url.clone(), requests.clone());
                block_on(async move { http::get_ranges(&inner, &url, requests).await })
            })?,
        };
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
    pub fn put_reader(&self, uri: &str, reader: impl Read) -> Result<u64, StoreError> {
        self.check_deadline(Op::Put, uri)?;
        let written = match Location::parse(uri)? {
            Location::Local(path) => local::put_reader(&self.inner.counters, uri, &path, reader),
            Location::S3 { bucket, key } => s3::put_reader(&self.inner, uri, &bucket, &key, reader),
            Location::Http(_) => Err(StoreError::Unsupported {
                op: Op::Put,
                uri: uri.to_string(),
                reason: "HTTP(S) locations are read-only",
            }),
        }?;
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
        match Location::parse(prefix)? {
            Location::Local(path) => local::list(&self.inner.counters, prefix, &path),
            Location::S3 { bucket, key } => self.patient(Op::List, prefix, || {
                let (inner, prefix) = (self.inner.clone(), prefix.to_string());
                let (bucket, key) = (bucket.clone(), key.clone());
                block_on(async move { s3::list(&inner, &prefix, &bucket, &key).await })
            }),
            Location::Http(_) => Err(StoreError::Unsupported {
                op: Op::List,
                uri: prefix.to_string(),
                reason: "HTTP(S) locations cannot be listed",
            }),
        }
    }

    /// The AWS region of the bucket of an `s3://` URI (`us-west-2` for `sentinel-cogs`):
    /// learnt from an earlier answer, a known public bucket's, else asked with a
    /// HeadBucket, whose answer (`x-amz-bucket-region`) names it even when it refuses.
    /// `None` for local and HTTP locations.
    pub fn bucket_region(&self, uri: &str) -> Result<Option<String>, StoreError> {
        match Location::parse(uri)? {
            Location::S3 { bucket, .. } => self
                .patient(Op::Head, uri, || {
                    let (inner, bucket) = (self.inner.clone(), bucket.clone());
                    block_on(async move { s3::bucket_region(&inner, &bucket).await })
                })
                .map(Some),
            Location::Local(_) | Location::Http(_) => Ok(None),
        }
    }

    /// Deletes the object; deleting a missing object succeeds.
    pub fn delete(&self, uri: &str) -> Result<(), StoreError> {
        match Location::parse(uri)? {
            Location::Local(path) => local::delete(&self.inner.counters, uri, &path),
            Location::S3 { bucket, key } => self.patient(Op::Delete, uri, || {
                let (inner, uri) = (self.inner.clone(), uri.to_string());
                let (bucket, key) = (bucket.clone(), key.clone());
                block_on(async move { s3::delete(&inner, &uri, &bucket, &key).await })
            }),
            Location::Http(_) => Err(StoreError::Unsupported {
                op: Op::Delete,
                uri: uri.to_string(),
                reason: "HTTP(S) locations are read-only",
            }),
        }
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

/// Reads from `reader` until `buf` is full or the reader ends; returns the bytes read.
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub(crate) fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)], lenient: bool) -> Result<StoreOptions, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        StoreOptions::from_vars(
            |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            lenient,
        )
    }

    #[test]
    fn gdal_and_geobutton_variable_names() {
        let o = from(&[], false).unwrap();
        assert!(!o.no_sign_request && !o.requester_pays);
        for yes in ["YES", "yes", "TRUE", "On", "1"] {
            let o = from(&[("AWS_NO_SIGN_REQUEST", yes)], false).unwrap();
            assert!(o.no_sign_request, "{yes}");
        }
        for no in ["NO", "false", "OFF", "0", ""] {
            let o = from(&[("AWS_NO_SIGN_REQUEST", no)], false).unwrap();
            assert!(!o.no_sign_request, "{no}");
        }
        assert!(
            from(&[("GEOBUTTON_NO_SIGN_REQUEST", "1")], false)
                .unwrap()
                .no_sign_request
        );
        let o = from(&[("AWS_REQUEST_PAYER", "requester")], false).unwrap();
        assert!(o.requester_pays);
        let o = from(&[("AWS_REQUEST_PAYER", "Requester")], false).unwrap();
        assert!(o.requester_pays);
        assert!(
            from(&[("GEOBUTTON_REQUESTER_PAYS", "true")], false)
                .unwrap()
                .requester_pays
        );
        let o = from(
            &[
                ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9"),
                ("AWS_DEFAULT_REGION", "eu-south-2"),
            ],
            false,
        )
        .unwrap();
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(o.region.as_deref(), Some("eu-south-2"));
    }

    #[test]
    fn values_the_variables_cannot_take_are_refused_by_name() {
        let e = from(&[("AWS_REQUEST_PAYER", "bucket-owner")], false).unwrap_err();
        assert!(
            e.contains("AWS_REQUEST_PAYER") && e.contains("requester"),
            "{e}"
        );
        let e = from(&[("AWS_NO_SIGN_REQUEST", "maybe")], false).unwrap_err();
        assert!(e.contains("AWS_NO_SIGN_REQUEST=\"maybe\""), "{e}");
        // Leniently, a bad value counts as unset and the others still apply.
        let o = from(
            &[
                ("AWS_NO_SIGN_REQUEST", "maybe"),
                ("AWS_REQUEST_PAYER", "requester"),
            ],
            true,
        )
        .unwrap();
        assert!(!o.no_sign_request && o.requester_pays);
    }
}
