//! Read-only HTTP(S) backend: HEAD and range GETs with retries for transient failures.

use std::future::Future;
use std::io::Read;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, LAST_MODIFIED, RANGE};

use crate::backend::{Backend, ObjectInfo, ObjectMeta, Shared};
use crate::error::{Op, StoreError};
use crate::options::StoreOptions;
use crate::retry::is_retryable_status;
use crate::runtime::block_on;

/// An object at an HTTP(S) URL: read-only, and not listable.
pub(crate) struct HttpUrl(pub(crate) String);

impl HttpUrl {
    fn read_only<T>(&self, op: Op, uri: &str, reason: &'static str) -> Result<T, StoreError> {
        Err(StoreError::Unsupported {
            op,
            uri: uri.to_string(),
            reason,
        })
    }
}

impl Backend for HttpUrl {
    fn head(&self, shared: &Arc<Shared>, _uri: &str) -> Result<ObjectInfo, StoreError> {
        let (s, url) = (shared.clone(), self.0.clone());
        block_on(async move { s.http.head(&s, &url).await })
    }
    fn get(&self, shared: &Arc<Shared>, _uri: &str, max_bytes: u64) -> Result<Bytes, StoreError> {
        let (s, url) = (shared.clone(), self.0.clone());
        block_on(async move { s.http.get(&s, &url, None, Some(max_bytes)).await })
    }
    fn get_ranges(
        &self,
        shared: &Arc<Shared>,
        _uri: &str,
        requests: &[Range<u64>],
    ) -> Result<Vec<Bytes>, StoreError> {
        let (s, url, requests) = (shared.clone(), self.0.clone(), requests.to_vec());
        block_on(async move { get_ranges(&s, &url, requests).await })
    }
    fn put_reader(&self, _: &Arc<Shared>, uri: &str, _: &mut dyn Read) -> Result<u64, StoreError> {
        self.read_only(Op::Put, uri, "HTTP(S) locations are read-only")
    }
    fn list(&self, _: &Arc<Shared>, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.read_only(Op::List, prefix, "HTTP(S) locations cannot be listed")
    }
    fn delete(&self, _: &Arc<Shared>, uri: &str) -> Result<(), StoreError> {
        self.read_only(Op::Delete, uri, "HTTP(S) locations are read-only")
    }
}

#[derive(Clone)]
pub(crate) struct Client {
    client: Result<reqwest::Client, String>,
}

/// The outcome of one attempt: done, or a failure that may be retried.
enum Attempt<T> {
    Done(Result<T, StoreError>),
    Transient {
        message: String,
        status: Option<u16>,
    },
}

impl Client {
    pub(crate) fn new(options: &StoreOptions) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .user_agent(concat!("geobutton/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string());
        Client { client }
    }

    fn get_client(&self, op: Op, url: &str) -> Result<&reqwest::Client, StoreError> {
        self.client.as_ref().map_err(|e| StoreError::Remote {
            op,
            uri: url.to_string(),
            message: format!("cannot create the HTTP client: {e}"),
            status: None,
            attempts: 0,
        })
    }

    async fn head(&self, inner: &Shared, url: &str) -> Result<ObjectInfo, StoreError> {
        let client = self.get_client(Op::Head, url)?;
        with_retries(inner, Op::Head, url, || async {
            inner.counters.request();
            let resp = match client.head(url).send().await {
                Ok(r) => r,
                Err(e) => return transient(Op::Head, url, &e),
            };
            match classify(Op::Head, url, resp.status()) {
                Some(a) => a,
                None => match resp
                    .headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    Some(n) => Attempt::Done(Ok(ObjectInfo {
                        size: n,
                        etag: resp
                            .headers()
                            .get(ETAG)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string),
                        modified_ns: resp
                            .headers()
                            .get(LAST_MODIFIED)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
                            .and_then(|t| t.timestamp_nanos_opt()),
                    })),
                    None => Attempt::Done(Err(StoreError::Remote {
                        op: Op::Head,
                        uri: url.to_string(),
                        message: "the server sent no Content-Length".to_string(),
                        status: Some(resp.status().as_u16()),
                        attempts: 1,
                    })),
                },
            }
        })
        .await
    }

    /// The whole object (at most `max` bytes) or one byte range. The body is streamed and
    /// never read past what was asked: a server that ignores `Range` and answers 200 with
    /// the whole (or an endless) object costs at most `range.end` bytes.
    async fn get(
        &self,
        inner: &Shared,
        url: &str,
        range: Option<Range<u64>>,
        max: Option<u64>,
    ) -> Result<Bytes, StoreError> {
        let op = if range.is_some() {
            Op::GetRange
        } else {
            Op::Get
        };
        let client = self.get_client(op, url)?;
        with_retries(inner, op, url, || {
            let range = range.clone();
            async move {
                let mut req = client.get(url);
                if let Some(r) = &range {
                    req = req.header(RANGE, format!("bytes={}-{}", r.start, r.end - 1));
                }
                let mut resp = match req.send().await {
                    Ok(r) => r,
                    Err(e) => {
                        inner.counters.request();
                        return transient(op, url, &e);
                    }
                };
                let status = resp.status();
                if let (StatusCode::RANGE_NOT_SATISFIABLE, Some(r)) = (status, &range) {
                    inner.counters.request();
                    let size = total_size(resp.headers());
                    return Attempt::Done(Err(StoreError::RangePastEnd {
                        op,
                        uri: url.to_string(),
                        start: r.start,
                        end: r.end,
                        size,
                    }));
                }
                if let Some(a) = classify(op, url, status) {
                    inner.counters.request();
                    return a;
                }
                let partial = status == StatusCode::PARTIAL_CONTENT;
                let size = total_size(resp.headers());
                // How much of the body to read: the range's length (206), the bytes up to
                // the range's end (200: the server ignored Range), or the cap.
                let (wanted, limit) = match (&range, partial) {
                    (Some(r), true) => (r.end - r.start, r.end - r.start),
                    (Some(r), false) => (r.end, r.end),
                    (None, _) => {
                        let cap = max.unwrap_or(inner.options.max_get_bytes);
                        if let Some(len) = resp.content_length()
                            && len > cap
                        {
                            inner.counters.request();
                            return Attempt::Done(Err(StoreError::TooLarge {
                                op,
                                uri: url.to_string(),
                                size: Some(len),
                                limit: cap,
                            }));
                        }
                        (cap, cap)
                    }
                };
                let mut body = Vec::with_capacity(
                    resp.content_length().unwrap_or(0).min(limit).min(64 << 20) as usize,
                );
                let mut overflow = false;
                loop {
                    match resp.chunk().await {
                        Ok(Some(chunk)) => {
                            let room = (limit - body.len() as u64) as usize;
                            if chunk.len() > room {
                                body.extend_from_slice(&chunk[..room]);
                                overflow = true;
                                break;
                            }
                            body.extend_from_slice(&chunk);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            inner.counters.request();
                            return transient(op, url, &e);
                        }
                    }
                }
                drop(resp);
                inner.counters.get(body.len() as u64);
                let body = Bytes::from(body);
                let Some(r) = range else {
                    if overflow {
                        return Attempt::Done(Err(StoreError::TooLarge {
                            op,
                            uri: url.to_string(),
                            size: None,
                            limit: wanted,
                        }));
                    }
                    return Attempt::Done(Ok(body));
                };
                let body = if partial {
                    body
                } else if (body.len() as u64) >= r.end {
                    body.slice(r.start as usize..r.end as usize)
                } else {
                    Bytes::new()
                };
                if body.len() as u64 != r.end - r.start {
                    return Attempt::Done(Err(StoreError::RangePastEnd {
                        op,
                        uri: url.to_string(),
                        start: r.start,
                        end: r.end,
                        size,
                    }));
                }
                Attempt::Done(Ok(body))
            }
        })
        .await
    }
}

async fn get_ranges(
    inner: &Shared,
    url: &str,
    requests: Vec<Range<u64>>,
) -> Result<Vec<Bytes>, StoreError> {
    let results: Vec<Result<Bytes, StoreError>> = futures::stream::iter(requests)
        .map(|r| inner.http.get(inner, url, Some(r), None))
        .buffered(inner.options.concurrency)
        .collect()
        .await;
    results.into_iter().collect()
}

fn total_size(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit('/').next())
        .and_then(|t| t.parse().ok())
}

fn transient<T>(op: Op, url: &str, e: &reqwest::Error) -> Attempt<T> {
    if e.is_redirect() {
        // A redirect loop or too many redirects: the same request will loop again.
        return Attempt::Done(Err(StoreError::Refused {
            op,
            uri: url.to_string(),
            message: format!("too many redirects: {e}"),
        }));
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    Attempt::Transient {
        message,
        status: e.status().map(|s| s.as_u16()),
    }
}

/// `None` for success statuses; otherwise the attempt's outcome.
fn classify<T>(op: Op, url: &str, status: StatusCode) -> Option<Attempt<T>> {
    let uri = url.to_string();
    match status.as_u16() {
        200..=299 => None,
        404 | 410 => Some(Attempt::Done(Err(StoreError::NotFound {
            op,
            uri,
            what: format!("the server answered {status}"),
        }))),
        401 | 403 => Some(Attempt::Done(Err(StoreError::AccessDenied {
            op,
            uri,
            detail: Some(status.to_string()),
        }))),
        s if is_retryable_status(s) => Some(Attempt::Transient {
            message: format!("server answered {status}"),
            status: Some(s),
        }),
        s if (400..500).contains(&s) => Some(Attempt::Done(Err(StoreError::Refused {
            op,
            uri,
            message: format!("the server answered {status}"),
        }))),
        s => Some(Attempt::Done(Err(StoreError::Remote {
            op,
            uri,
            message: format!("server answered {status}"),
            status: Some(s),
            attempts: 1,
        }))),
    }
}

async fn with_retries<T, F, Fut>(
    inner: &Shared,
    op: Op,
    url: &str,
    mut attempt: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let policy = inner.options.retry;
    let mut n = 0;
    loop {
        n += 1;
        let limit = inner.attempt_limit();
        let outcome = match tokio::time::timeout(limit, attempt()).await {
            Ok(a) => a,
            Err(_)
                if inner
                    .deadline
                    .is_some_and(|d| std::time::Instant::now() >= d) =>
            {
                return Err(StoreError::Deadline {
                    op,
                    uri: url.to_string(),
                });
            }
            Err(_) => Attempt::Transient {
                message: format!("no complete answer within {:.0} s", limit.as_secs_f64()),
                status: None,
            },
        };
        match outcome {
            Attempt::Done(r) => return r,
            Attempt::Transient { message, status } => {
                if n >= policy.max_attempts.max(1) {
                    return Err(StoreError::Remote {
                        op,
                        uri: url.to_string(),
                        message,
                        status,
                        attempts: n,
                    });
                }
                tracing::debug!(%url, attempt = n, %message, "retrying");
                tokio::time::sleep(policy.backoff(n)).await;
            }
        }
    }
}
