//! Helpers for tests that talk to the S3-compatible server on loopback started by
//! `scripts/test-services.sh` (and by `.ci/run`).
//!
//! The server's address comes from `GEOBUTTON_TEST_S3_ENDPOINT` (e.g. `http://127.0.0.1:5000`).
//! Tests fail, rather than skip, when it is not set: an S3 test that cannot fail is no test.

use crate::error::StoreError;
use crate::runtime::block_on;
use crate::{Store, StoreOptions};

/// Endpoint of the loopback S3 server; panics with instructions when unset.
pub fn s3_endpoint() -> String {
    match std::env::var("GEOBUTTON_TEST_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => {
            assert!(
                e.starts_with("http://127.") || e.starts_with("http://localhost"),
                "GEOBUTTON_TEST_S3_ENDPOINT={e} is not a loopback address"
            );
            e
        }
        _ => panic!(
            "GEOBUTTON_TEST_S3_ENDPOINT is not set: start the test services with \
             `source scripts/test-services.sh` (or run `bash scripts/test.sh`)"
        ),
    }
}

/// Options for the loopback S3 server (fixed test credentials, path-style, us-east-1).
pub fn s3_options() -> StoreOptions {
    StoreOptions {
        endpoint: Some(s3_endpoint()),
        region: Some("us-east-1".to_string()),
        static_credentials: Some(("testing".to_string(), "testing".to_string())),
        ..StoreOptions::default()
    }
}

/// A store for the loopback S3 server.
pub fn s3_store() -> Store {
    Store::new(s3_options())
}

/// Creates a new bucket named `<prefix>-<random>` on the store's endpoint; returns its name.
pub fn unique_bucket(store: &Store, prefix: &str) -> Result<String, StoreError> {
    let name = format!("{prefix}-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
    create_bucket(store, &name)?;
    Ok(name)
}

/// Creates bucket `name` (succeeds if it exists already and is ours).
pub fn create_bucket(store: &Store, name: &str) -> Result<(), StoreError> {
    let inner = store.inner.clone();
    let name = name.to_string();
    block_on(async move {
        let client = crate::s3::client_for(&inner, &name).await.client;
        match client.create_bucket().bucket(&name).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_bucket_already_owned_by_you()) =>
            {
                Ok(())
            }
            Err(e) => Err(StoreError::Remote {
                op: crate::error::Op::Put,
                uri: format!("s3://{name}"),
                message: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
                status: None,
                attempts: 1,
            }),
        }
    })
}

/// Lets anyone read the objects of bucket `name` (a public-read bucket policy, as open-data
/// buckets have), so that unsigned requests may GET them.
pub fn make_public(store: &Store, name: &str) -> Result<(), StoreError> {
    let inner = store.inner.clone();
    let name = name.to_string();
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::{name}/*"]}}]}}"#
    );
    block_on(async move {
        let client = crate::s3::client_for(&inner, &name).await.client;
        client
            .put_bucket_policy()
            .bucket(&name)
            .policy(policy)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Remote {
                op: crate::error::Op::Put,
                uri: format!("s3://{name}"),
                message: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
                status: None,
                attempts: 1,
            })
    })
}

/// What an [`interpose`]d proxy does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it to the upstream server and relay its answer.
    Forward,
    /// Answer it here: status line (`503 Slow Down`), extra header lines, body.
    Answer {
        status: String,
        headers: Vec<(String, String)>,
        body: String,
    },
}

/// Called with each request line (`GET /bucket/key?… HTTP/1.1`) and the whole request head
/// (request line and header lines): what to do with the request.
pub type Decide = Box<dyn Fn(&str, &str) -> Verdict + Send + Sync>;
/// Called with the request line when a forwarded request has been answered.
pub type Answered = Box<dyn Fn(&str) + Send + Sync>;

/// Starts an HTTP/1.1 proxy on 127.0.0.1 in front of the loopback server at
/// `127.0.0.1:upstream`, that answers requests itself where `decide` says so (a throttling
/// or failing service) and forwards the others; returns its port. One request per
/// connection, `Connection: close` both ways; request bodies are read by `Content-Length`
/// (a chunked request body is refused with 501). For tests only: it runs until the
/// process ends.
pub fn interpose(upstream: u16, decide: Decide, answered: Answered) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    use std::sync::Arc;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let hooks = Arc::new((decide, answered));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut client) = conn else { continue };
            let hooks = hooks.clone();
            std::thread::spawn(move || {
                let reply = |client: &mut std::net::TcpStream,
                             status: &str,
                             headers: &[(String, String)],
                             body: &str| {
                    let mut head = format!("HTTP/1.1 {status}\r\n");
                    for (k, v) in headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str(&format!(
                        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    ));
                    let _ = client.write_all(head.as_bytes());
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 16384];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match client.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case(name)
                            .then(|| v.trim().to_string())
                    })
                };
                if header("transfer-encoding").is_some() {
                    reply(
                        &mut client,
                        "501 Not Implemented",
                        &[],
                        "chunked request bodies are not played",
                    );
                    return;
                }
                let length: usize = header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    match client.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let line = head.lines().next().unwrap_or_default().to_string();
                match (hooks.0)(&line, &head) {
                    Verdict::Answer {
                        status,
                        headers,
                        body,
                    } => {
                        reply(&mut client, &status, &headers, &body);
                        return;
                    }
                    Verdict::Forward => {}
                }
                let without_connection = |text: &str| -> String {
                    let mut out: String = text
                        .trim_end()
                        .lines()
                        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                        .map(|l| format!("{l}\r\n"))
                        .collect();
                    out.push_str("Connection: close\r\n\r\n");
                    out
                };
                let answer = (|| -> std::io::Result<Vec<u8>> {
                    let mut up = std::net::TcpStream::connect(("127.0.0.1", upstream))?;
                    up.write_all(without_connection(&head).as_bytes())?;
                    up.write_all(&buf[head_end..head_end + length])?;
                    let mut answer = Vec::new();
                    up.read_to_end(&mut answer)?;
                    Ok(answer)
                })();
                (hooks.1)(&line);
                let Ok(answer) = answer else {
                    reply(&mut client, "502 Bad Gateway", &[], "upstream failed");
                    return;
                };
                let end = answer
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(answer.len(), |i| i + 4);
                let _ = client.write_all(
                    without_connection(&String::from_utf8_lossy(&answer[..end])).as_bytes(),
                );
                let _ = client.write_all(&answer[end..]);
            });
        }
    });
    Ok(port)
}

/// Starts an [`interpose`]d proxy in front of the loopback S3 server at `upstream` that
/// holds S3's region rule, which the server alone does not: a request signed (SigV4) for
/// another region than its bucket's, as `regions` (bucket, region) gives them, is refused
/// as S3 refuses it — `400 AuthorizationHeaderMalformed` naming the bucket's region in
/// `x-amz-bucket-region` (without a body for a HEAD) — and the others are forwarded.
/// Unsigned requests are forwarded (they name no region). Returns the proxy's endpoint and
/// the count of requests it saw, refused ones included.
pub fn regional_s3(
    upstream: u16,
    regions: Vec<(String, String)>,
) -> std::io::Result<(String, std::sync::Arc<std::sync::atomic::AtomicUsize>)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    let decide = move |line: &str, head: &str| {
        count.fetch_add(1, Ordering::SeqCst);
        let mut words = line.split(' ');
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let bucket = path.trim_start_matches('/').split(['/', '?']).next();
        let home = regions
            .iter()
            .find(|(b, _)| Some(b.as_str()) == bucket)
            .map(|(_, r)| r.as_str());
        // `Authorization: AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/s3/aws4_request, …`
        let signed_for = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            if !k.trim().eq_ignore_ascii_case("authorization") {
                return None;
            }
            let scope = v.split("Credential=").nth(1)?.split([',', ' ']).next()?;
            scope.split('/').nth(2).map(str::to_string)
        });
        match (home, signed_for) {
            (Some(home), Some(asked)) if asked != home => Verdict::Answer {
                status: "400 Bad Request".into(),
                headers: vec![
                    ("Content-Type".into(), "application/xml".into()),
                    ("x-amz-bucket-region".into(), home.to_string()),
                ],
                body: if method == "HEAD" {
                    String::new()
                } else {
                    format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region '{asked}' is wrong; expecting '{home}'</Message><Region>{home}</Region><RequestId>0A1B2C3D4E5F6789</RequestId><HostId>test</HostId></Error>"
                    )
                },
            },
            _ => Verdict::Forward,
        }
    };
    let port = interpose(upstream, Box::new(decide), Box::new(|_: &str| {}))?;
    Ok((format!("http://127.0.0.1:{port}"), seen))
}
