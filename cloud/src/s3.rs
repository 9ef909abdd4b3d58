//! S3 backend (aws-sdk-s3), for AWS and S3-compatible servers.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::Read;
use std::ops::Range;
use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, RequestPayer};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::Mutex;

use crate::backend::{Backend, ObjectInfo, ObjectMeta, Shared};
use crate::counters::S3Class;
use crate::error::{Op, StoreError};
use crate::retry::is_retryable_status;
use crate::runtime::{block_on, io_runtime};

/// An S3 object (for `list`, a key prefix) of `bucket`.
pub(crate) struct S3Object {
    pub(crate) bucket: String,
    pub(crate) key: String,
}

impl S3Object {
    /// Runs `request(shared, uri, bucket, key)` on the I/O runtime and waits for it.
    fn blocking<T, F>(
        &self,
        shared: &Arc<Shared>,
        uri: &str,
        request: impl FnOnce(Arc<Shared>, String, String, String) -> F,
    ) -> T
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        block_on(request(
            shared.clone(),
            uri.to_string(),
            self.bucket.clone(),
            self.key.clone(),
        ))
    }
}

impl Backend for S3Object {
    fn head(&self, shared: &Arc<Shared>, uri: &str) -> Result<ObjectInfo, StoreError> {
        self.blocking(shared, uri, |s, uri, bucket, key| async move {
            head(&s, &uri, &bucket, &key).await
        })
    }
    fn get(&self, shared: &Arc<Shared>, uri: &str, max_bytes: u64) -> Result<Bytes, StoreError> {
        self.blocking(shared, uri, |s, uri, bucket, key| async move {
            get(&s, &uri, &bucket, &key, None, Some(max_bytes)).await
        })
    }
    fn get_ranges(
        &self,
        shared: &Arc<Shared>,
        uri: &str,
        requests: &[Range<u64>],
    ) -> Result<Vec<Bytes>, StoreError> {
        let requests = requests.to_vec();
        self.blocking(shared, uri, |s, uri, bucket, key| async move {
            get_ranges(&s, &uri, &bucket, &key, requests).await
        })
    }
    fn put_reader(
        &self,
        shared: &Arc<Shared>,
        uri: &str,
        reader: &mut dyn Read,
    ) -> Result<u64, StoreError> {
        put_reader(shared, uri, &self.bucket, &self.key, reader)
    }
    fn list(&self, shared: &Arc<Shared>, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.blocking(shared, prefix, |s, prefix, bucket, key| async move {
            list(&s, &prefix, &bucket, &key).await
        })
    }
    fn delete(&self, shared: &Arc<Shared>, uri: &str) -> Result<(), StoreError> {
        self.blocking(shared, uri, |s, uri, bucket, key| async move {
            delete(&s, &uri, &bucket, &key).await
        })
    }
    fn bucket_region(&self, shared: &Arc<Shared>, uri: &str) -> Result<Option<String>, StoreError> {
        self.blocking(shared, uri, |s, _, bucket, _| async move {
            bucket_region(&s, &bucket).await.map(Some)
        })
    }
}

/// Public buckets and their regions, used when no endpoint override is configured.
const PUBLIC_BUCKET_REGIONS: &[(&str, &str)] = &[("sentinel-cogs", "us-west-2")];

/// (anonymous, configured region) of a client.
type ClientKey = (bool, Option<String>);

/// Lazily created S3 clients, one per (anonymous, region) pair, and the buckets' regions
/// learnt from S3's answers.
#[derive(Default)]
pub(crate) struct Clients {
    clients: Mutex<HashMap<ClientKey, (Client, String)>>,
    /// Bucket → region, from `x-amz-bucket-region` in answers (redirects and refusals that
    /// name the bucket's region): later requests to the bucket are signed for it.
    regions: std::sync::Mutex<HashMap<String, String>>,
}

impl Clients {
    fn learnt(&self, bucket: &str) -> Option<String> {
        self.regions.lock().ok()?.get(bucket).cloned()
    }
    fn learn(&self, bucket: &str, region: &str) {
        if let Ok(mut m) = self.regions.lock() {
            m.insert(bucket.to_string(), region.to_string());
        }
    }
}

/// A client for one bucket, with what its requests are counted as.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) client: Client,
    /// The region the requests are signed for (the bucket's, unless S3 says otherwise).
    pub(crate) region: String,
    /// Signed requests: the requester pays ([`crate::S3Traffic::billed`]).
    pub(crate) billed: bool,
}

impl Route {
    /// Counts one request of `class` that moved no object data (HEAD, LIST, a refused GET).
    pub(crate) fn count(&self, inner: &Shared, class: S3Class) {
        inner.counters.request();
        inner.counters.s3(&self.region, self.billed, class, 0, 0);
    }
    /// Counts one GET that received `bytes`.
    pub(crate) fn got(&self, inner: &Shared, bytes: u64) {
        inner.counters.get(bytes);
        inner
            .counters
            .s3(&self.region, self.billed, S3Class::Get, bytes, 0);
    }
    /// Counts one PUT (or part) that sent `bytes`.
    pub(crate) fn put(&self, inner: &Shared, bytes: u64) {
        inner.counters.put(bytes);
        inner
            .counters
            .s3(&self.region, self.billed, S3Class::Put, 0, bytes);
    }
}

/// The region of `bucket` as far as known without asking: learnt from an earlier answer,
/// else a public bucket's (without an endpoint override, where it wins over the configured
/// region: a function in eu-west-1 reads `sentinel-cogs` in us-west-2), else the
/// configured region.
fn known_region(inner: &Shared, bucket: &str) -> Option<String> {
    let opts = &inner.options;
    inner.s3.learnt(bucket).or_else(|| {
        let public = PUBLIC_BUCKET_REGIONS
            .iter()
            .find(|(b, _)| *b == bucket)
            .map(|(_, r)| r.to_string());
        match &opts.endpoint {
            None => public.or_else(|| opts.region.clone()),
            Some(_) => opts.region.clone(),
        }
    })
}

pub(crate) async fn client_for(inner: &Shared, bucket: &str) -> Route {
    let opts = &inner.options;
    let anonymous = opts.is_anonymous(bucket);
    let endpoint = opts.endpoint.clone();
    let region = known_region(inner, bucket);
    let mut clients = inner.s3.clients.lock().await;
    if let Some((c, r)) = clients.get(&(anonymous, region.clone())) {
        return Route {
            client: c.clone(),
            region: r.clone(),
            billed: !anonymous,
        };
    }
    let retry = RetryConfig::standard()
        .with_max_attempts(opts.retry.max_attempts.max(1))
        .with_initial_backoff(opts.retry.initial_backoff)
        .with_max_backoff(opts.retry.max_backoff);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(opts.connect_timeout)
        .read_timeout(opts.read_timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
        .timeout_config(timeouts);
    if anonymous {
        loader = loader.no_credentials();
    } else if let Some((id, secret)) = &opts.static_credentials {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            id.clone(),
            secret.clone(),
            None,
            None,
            "geobutton-static",
        ));
    }
    if let Some(ep) = &endpoint {
        loader = loader.endpoint_url(ep);
    }
    if let Some(r) = &region {
        loader = loader.region(Region::new(r.clone()));
    }
    let sdk = loader.load().await;
    let mut builder = aws_sdk_s3::config::Builder::from(&sdk);
    let signed_for = match sdk.region() {
        Some(r) => r.to_string(),
        None => {
            builder = builder.region(Region::new("us-east-1"));
            "us-east-1".to_string()
        }
    };
    if endpoint.is_some() {
        builder = builder.force_path_style(true);
    }
    let client = Client::from_conf(builder.build());
    clients.insert((anonymous, region), (client.clone(), signed_for.clone()));
    Route {
        client,
        region: signed_for,
        billed: !anonymous,
    }
}

/// The region of `bucket`: known ([`known_region`] before the configured one), else
/// asked with a HeadBucket, whose answer names the region even when it refuses.
async fn bucket_region(inner: &Shared, bucket: &str) -> Result<String, StoreError> {
    if let Some(r) = inner.s3.learnt(bucket) {
        return Ok(r);
    }
    if inner.options.endpoint.is_none()
        && let Some((_, r)) = PUBLIC_BUCKET_REGIONS.iter().find(|(b, _)| *b == bucket)
    {
        return Ok(r.to_string());
    }
    let uri = format!("s3://{bucket}");
    bounded(inner, Op::Head, &uri, async {
        let route = client_for(inner, bucket).await;
        route.count(inner, S3Class::Get);
        let resp = route.client.head_bucket().bucket(bucket).send().await;
        match resp {
            Ok(out) => {
                let r = out
                    .bucket_region()
                    .map(str::to_string)
                    .unwrap_or(route.region);
                inner.s3.learn(bucket, &r);
                Ok(r)
            }
            Err(e) => {
                let e = map_err(inner, Op::Head, &uri, &route, e);
                match inner.s3.learnt(bucket) {
                    Some(r) => Ok(r),
                    None => Err(e),
                }
            }
        }
    })
    .await
}

fn bucket_of(uri: &str) -> &str {
    let rest = uri.strip_prefix("s3://").unwrap_or(uri);
    rest.split('/').next().unwrap_or(rest)
}

fn payer(inner: &Shared) -> Option<RequestPayer> {
    inner
        .options
        .requester_pays
        .then_some(RequestPayer::Requester)
}

/// Maps an SDK error to a [`StoreError`] naming `op` and `uri`.
fn map_err<E>(
    inner: &Shared,
    op: Op,
    uri: &str,
    route: &Route,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_string);
    let uri = uri.to_string();
    // S3 names a bucket's region in every answer about it, refusals included.
    let bucket_region = err
        .raw_response()
        .and_then(|r| r.headers().get("x-amz-bucket-region"))
        .map(str::to_string);
    if let Some(r) = &bucket_region {
        inner.s3.learn(bucket_of(&uri), r);
    }
    match (status, code.as_deref()) {
        (Some(301 | 307 | 400), _)
            if bucket_region.as_ref().is_some_and(|r| *r != route.region) =>
        {
            StoreError::WrongRegion {
                op,
                region: bucket_region.unwrap_or_default().into(),
                asked: route.region.as_str().into(),
                uri,
            }
        }
        (_, Some("NoSuchBucket")) => StoreError::NotFound {
            op,
            what: format!("bucket {} does not exist", bucket_of(&uri)),
            uri,
        },
        (Some(404), _) | (_, Some("NoSuchKey" | "NotFound")) => StoreError::NotFound {
            op,
            what: format!("no such key in bucket {}", bucket_of(&uri)),
            uri,
        },
        (Some(401 | 403), _) | (_, Some("AccessDenied")) => StoreError::AccessDenied {
            op,
            uri,
            detail: Some(match (code.as_deref(), err.message()) {
                (Some(c), Some(m)) if !m.is_empty() => format!("{c}: {m}"),
                (Some(c), _) => c.to_string(),
                (None, _) => format!(
                    "HTTP {}; the response named no error code: check the credentials, the \
                     bucket policy and whether the bucket is requester-pays",
                    status.unwrap_or(403)
                ),
            }),
        },
        (Some(s), _) if (400..500).contains(&s) && !is_retryable_status(s) => StoreError::Refused {
            op,
            uri,
            message: match (code.as_deref(), err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m} (HTTP {s})"),
                (Some(c), None) => format!("{c} (HTTP {s})"),
                _ => format!("the server answered HTTP {s}"),
            },
        },
        _ => {
            // Dispatch failures, timeouts and retryable statuses went through the SDK's
            // retry loop before reaching us.
            let retried = status.is_none_or(is_retryable_status);
            StoreError::Remote {
                op,
                uri,
                message: DisplayErrorContext(&err).to_string(),
                status,
                attempts: if retried {
                    inner.options.retry.max_attempts
                } else {
                    1
                },
            }
        }
    }
}

/// `fut`, failed with a [`StoreError::Remote`] when it takes longer than the request
/// deadline (or what is left of the task's).
async fn bounded<T>(
    inner: &Shared,
    op: Op,
    uri: &str,
    fut: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let limit = inner.attempt_limit();
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_)
            if inner
                .deadline
                .is_some_and(|d| std::time::Instant::now() >= d) =>
        {
            Err(StoreError::Deadline {
                op,
                uri: uri.to_string(),
            })
        }
        Err(_) => Err(StoreError::Remote {
            op,
            uri: uri.to_string(),
            message: format!("no complete answer within {:.0} s", limit.as_secs_f64()),
            status: None,
            attempts: 1,
        }),
    }
}

/// Size and ETag of an object: a one-byte ranged GET, whose `Content-Range` gives the size.
///
/// Not a HEAD: it needs exactly the permission the task's reads need (`s3:GetObject`),
/// where some S3-compatible servers authorise HEAD apart (moto denies an anonymous HEAD
/// that a public-read bucket policy allows as GET, which AWS does not); and a GET's error
/// names its code (bucket or key missing), where a HEAD's has no body. An empty object
/// (416 for any range) is asked again with a HEAD.
async fn head(
    inner: &Shared,
    uri: &str,
    bucket: &str,
    key: &str,
) -> Result<ObjectInfo, StoreError> {
    if key.is_empty() {
        return Err(StoreError::InvalidUri {
            uri: uri.to_string(),
            reason: "an S3 object URI needs a key after the bucket (s3://bucket/key)".into(),
        });
    }
    bounded(inner, Op::Head, uri, async {
        let route = client_for(inner, bucket).await;
        route.count(inner, S3Class::Get);
        let resp = route
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .range("bytes=0-0")
            .set_request_payer(payer(inner))
            .send()
            .await;
        match resp {
            Ok(out) => {
                let size = out
                    .content_range()
                    .and_then(|cr| cr.rsplit('/').next())
                    .and_then(|t| t.parse::<u64>().ok())
                    .or_else(|| out.content_length().map(|n| n.max(0) as u64))
                    .unwrap_or(0);
                let etag = out.e_tag().map(str::to_string);
                // The one byte (or, from a server that ignores ranges, more) is dropped.
                drop(out.body);
                Ok(ObjectInfo {
                    size,
                    etag,
                    modified_ns: None,
                })
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                route.count(inner, S3Class::Get);
                let out = route
                    .client
                    .head_object()
                    .bucket(bucket)
                    .key(key)
                    .set_request_payer(payer(inner))
                    .send()
                    .await
                    .map_err(|e| map_err(inner, Op::Head, uri, &route, e))?;
                Ok(ObjectInfo {
                    size: out.content_length().unwrap_or(0).max(0) as u64,
                    etag: out.e_tag().map(str::to_string),
                    modified_ns: None,
                })
            }
            Err(e) => Err(map_err(inner, Op::Head, uri, &route, e)),
        }
    })
    .await
}

/// GET of the whole object (`range = None`, at most `max` bytes) or of one byte range,
/// checked for length, within the request deadline.
async fn get(
    inner: &Shared,
    uri: &str,
    bucket: &str,
    key: &str,
    range: Option<Range<u64>>,
    max: Option<u64>,
) -> Result<Bytes, StoreError> {
    let op = if range.is_some() {
        Op::GetRange
    } else {
        Op::Get
    };
    if key.is_empty() {
        return Err(StoreError::InvalidUri {
            uri: uri.to_string(),
            reason: "an S3 object URI needs a key after the bucket (s3://bucket/key)".into(),
        });
    }
    bounded(
        inner,
        op,
        uri,
        get_unbounded(inner, uri, bucket, key, range, max),
    )
    .await
}

async fn get_unbounded(
    inner: &Shared,
    uri: &str,
    bucket: &str,
    key: &str,
    range: Option<Range<u64>>,
    max: Option<u64>,
) -> Result<Bytes, StoreError> {
    let route = client_for(inner, bucket).await;
    let op = if range.is_some() {
        Op::GetRange
    } else {
        Op::Get
    };
    let past_end = |size: Option<u64>, r: &Range<u64>| StoreError::RangePastEnd {
        op,
        uri: uri.to_string(),
        start: r.start,
        end: r.end,
        size,
    };
    let resp = route
        .client
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_range(
            range
                .as_ref()
                .map(|r| format!("bytes={}-{}", r.start, r.end - 1)),
        )
        .set_request_payer(payer(inner))
        .send()
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            route.count(inner, S3Class::Get);
            if let (Some(416), Some(r)) = (status, &range) {
                return Err(past_end(None, r));
            }
            return Err(map_err(inner, op, uri, &route, e));
        }
    };
    let total = resp
        .content_range()
        .and_then(|cr| cr.rsplit('/').next())
        .and_then(|t| t.parse::<u64>().ok());
    if let (Some(limit), Some(len)) = (max, resp.content_length())
        && len.max(0) as u64 > limit
    {
        route.count(inner, S3Class::Get);
        return Err(StoreError::TooLarge {
            op,
            uri: uri.to_string(),
            size: Some(len.max(0) as u64),
            limit,
        });
    }
    let body = resp.body.collect().await.map_err(|e| StoreError::Remote {
        op,
        uri: uri.to_string(),
        message: format!("reading the response body failed: {e}"),
        status: None,
        attempts: 1,
    })?;
    let bytes = body.into_bytes();
    route.got(inner, bytes.len() as u64);
    if let Some(r) = &range
        && bytes.len() as u64 != r.end - r.start
    {
        return Err(past_end(total, r));
    }
    Ok(bytes)
}

async fn get_ranges(
    inner: &Shared,
    uri: &str,
    bucket: &str,
    key: &str,
    requests: Vec<Range<u64>>,
) -> Result<Vec<Bytes>, StoreError> {
    let concurrency = inner.options.concurrency;
    let results: Vec<Result<Bytes, StoreError>> = futures::stream::iter(requests)
        .map(|r| get(inner, uri, bucket, key, Some(r), None))
        .buffered(concurrency)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn list(
    inner: &Shared,
    prefix_uri: &str,
    bucket: &str,
    key_prefix: &str,
) -> Result<Vec<ObjectMeta>, StoreError> {
    let route = client_for(inner, bucket).await;
    let mut pages = route
        .client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(key_prefix)
        .set_request_payer(payer(inner))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        route.count(inner, S3Class::Put);
        let page = page.map_err(|e| map_err(inner, Op::List, prefix_uri, &route, e))?;
        for obj in page.contents() {
            if let Some(key) = obj.key() {
                out.push(ObjectMeta {
                    uri: format!("s3://{bucket}/{key}"),
                    size: obj.size().unwrap_or(0).max(0) as u64,
                });
            }
        }
    }
    out.sort_by(|a, b| a.uri.cmp(&b.uri));
    Ok(out)
}

async fn delete(inner: &Shared, uri: &str, bucket: &str, key: &str) -> Result<(), StoreError> {
    let route = client_for(inner, bucket).await;
    route.count(inner, S3Class::Free);
    route
        .client
        .delete_object()
        .bucket(bucket)
        .key(key)
        .set_request_payer(payer(inner))
        .send()
        .await
        .map_err(|e| map_err(inner, Op::Delete, uri, &route, e))?;
    Ok(())
}

async fn put_object(
    inner: &Shared,
    uri: &str,
    bucket: &str,
    key: &str,
    data: Bytes,
) -> Result<(), StoreError> {
    let len = data.len() as u64;
    let mut redirected = false;
    loop {
        let route = client_for(inner, bucket).await;
        let result = route
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(data.clone()))
            .set_request_payer(payer(inner))
            .send()
            .await;
        route.put(inner, len);
        match result.map_err(|e| map_err(inner, Op::Put, uri, &route, e)) {
            Ok(_) => return Ok(()),
            // The bucket's region is now known: once more, there.
            Err(StoreError::WrongRegion { .. }) if !redirected => redirected = true,
            Err(e) => return Err(e),
        }
    }
}

/// Streams `reader` to S3: one PUT when it fits in a part, else a multipart upload with up to
/// `concurrency` parts in flight, completed last and aborted on any failure.
fn put_reader(
    inner: &Arc<Shared>,
    uri: &str,
    bucket: &str,
    key: &str,
    mut reader: impl Read,
) -> Result<u64, StoreError> {
    let part_size = inner.options.part_size;
    let source_err = |source| StoreError::Source {
        op: Op::Put,
        uri: uri.to_string(),
        source,
    };
    let mut first = vec![0u8; part_size];
    let n = read_full(&mut reader, &mut first).map_err(source_err)?;
    first.truncate(n);
    if n < part_size {
        let (inner2, uri2, b, k) = (
            inner.clone(),
            uri.to_string(),
            bucket.to_string(),
            key.to_string(),
        );
        block_on(async move { put_object(&inner2, &uri2, &b, &k, Bytes::from(first)).await })?;
        return Ok(n as u64);
    }

    let (inner2, uri2, b, k) = (
        inner.clone(),
        uri.to_string(),
        bucket.to_string(),
        key.to_string(),
    );
    let (route, upload_id) = block_on(async move {
        let mut redirected = false;
        let (route, created) = loop {
            let route = client_for(&inner2, &b).await;
            route.count(&inner2, S3Class::Put);
            let created = route
                .client
                .create_multipart_upload()
                .bucket(&b)
                .key(&k)
                .set_request_payer(payer(&inner2))
                .send()
                .await
                .map_err(|e| map_err(&inner2, Op::Put, &uri2, &route, e));
            match created {
                Ok(c) => break (route, c),
                // The bucket's region is now known: once more, there.
                Err(StoreError::WrongRegion { .. }) if !redirected => redirected = true,
                Err(e) => return Err(e),
            }
        };
        let id = created
            .upload_id()
            .map(str::to_string)
            .ok_or_else(|| StoreError::Remote {
                op: Op::Put,
                uri: uri2.clone(),
                message: "CreateMultipartUpload returned no upload id".to_string(),
                status: None,
                attempts: 1,
            })?;
        Ok::<_, StoreError>((route, id))
    })?;

    let abort = |err: StoreError| -> StoreError {
        let (inner2, r, b, k, id) = (
            inner.clone(),
            route.clone(),
            bucket.to_string(),
            key.to_string(),
            upload_id.clone(),
        );
        block_on(async move {
            r.count(&inner2, S3Class::Free);
            if let Err(e) = r
                .client
                .abort_multipart_upload()
                .bucket(&b)
                .key(&k)
                .upload_id(&id)
                .send()
                .await
            {
                tracing::warn!(bucket = %b, key = %k, "aborting the multipart upload failed: {}", DisplayErrorContext(&e));
            }
        });
        err
    };

    let mut inflight: VecDeque<tokio::task::JoinHandle<Result<CompletedPart, StoreError>>> =
        VecDeque::new();
    let mut parts: Vec<CompletedPart> = Vec::new();
    let mut total = 0u64;
    let mut next_chunk = Some(first);
    let mut part_number = 0i32;
    let wait_oldest =
        |inflight: &mut VecDeque<tokio::task::JoinHandle<Result<CompletedPart, StoreError>>>| {
            inflight.pop_front().map(|h| {
                block_on(async move {
                    h.await.unwrap_or_else(|e| {
                        Err(StoreError::Remote {
                            op: Op::Put,
                            uri: String::new(),
                            message: format!("upload task failed: {e}"),
                            status: None,
                            attempts: 1,
                        })
                    })
                })
            })
        };
    while let Some(chunk) = next_chunk.take() {
        part_number += 1;
        total += chunk.len() as u64;
        let (inner2, r, b, k, id, uri2) = (
            inner.clone(),
            route.clone(),
            bucket.to_string(),
            key.to_string(),
            upload_id.clone(),
            uri.to_string(),
        );
        let len = chunk.len() as u64;
        inflight.push_back(io_runtime().spawn(async move {
            let out = r
                .client
                .upload_part()
                .bucket(&b)
                .key(&k)
                .upload_id(&id)
                .part_number(part_number)
                .body(ByteStream::from(chunk))
                .set_request_payer(payer(&inner2))
                .send()
                .await;
            r.put(&inner2, len);
            let out = out.map_err(|e| map_err(&inner2, Op::Put, &uri2, &r, e))?;
            Ok(CompletedPart::builder()
                .set_e_tag(out.e_tag().map(str::to_string))
                .part_number(part_number)
                .build())
        }));
        if inflight.len() >= inner.options.concurrency
            && let Some(done) = wait_oldest(&mut inflight)
        {
            match done {
                Ok(p) => parts.push(p),
                Err(e) => {
                    while wait_oldest(&mut inflight).is_some() {}
                    return Err(abort(e));
                }
            }
        }
        let mut buf = vec![0u8; part_size];
        match read_full(&mut reader, &mut buf) {
            Ok(0) => {}
            Ok(n) => {
                buf.truncate(n);
                next_chunk = Some(buf);
            }
            Err(e) => {
                while wait_oldest(&mut inflight).is_some() {}
                return Err(abort(source_err(e)));
            }
        }
    }
    while let Some(done) = wait_oldest(&mut inflight) {
        match done {
            Ok(p) => parts.push(p),
            Err(e) => {
                while wait_oldest(&mut inflight).is_some() {}
                return Err(abort(e));
            }
        }
    }
    parts.sort_by_key(|p| p.part_number());
    let (inner2, r, b, k, id, uri2) = (
        inner.clone(),
        route.clone(),
        bucket.to_string(),
        key.to_string(),
        upload_id.clone(),
        uri.to_string(),
    );
    let completed = block_on(async move {
        r.count(&inner2, S3Class::Put);
        r.client
            .complete_multipart_upload()
            .bucket(&b)
            .key(&k)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .set_request_payer(payer(&inner2))
            .send()
            .await
            .map_err(|e| map_err(&inner2, Op::Put, &uri2, &r, e))
    });
    match completed {
        Ok(_) => Ok(total),
        Err(e) => Err(abort(e)),
    }
}

/// Reads from `reader` until `buf` is full or the reader ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
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
