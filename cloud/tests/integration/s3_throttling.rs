//! Throttling is not failure: S3 answering `503 SlowDown` (as it does per prefix under load)
//! through every retry of a request makes the store wait and ask again, counted apart from
//! failures, bounded in rounds. Played by a loopback proxy in front of the S3 server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloud::testing::{self, Verdict};
use cloud::{RetryPolicy, Store, StoreOptions};

const SLOW_DOWN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>0A1B2C3D</RequestId><HostId>test</HostId></Error>";

/// A proxy that answers the first `throttled` requests with `503 SlowDown`; returns its
/// endpoint and the count of requests it saw.
fn slow_down_proxy(throttled: usize) -> (String, Arc<AtomicUsize>) {
    let upstream: u16 = testing::s3_endpoint()
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    let decide = move |_line: &str, _head: &str| {
        if count.fetch_add(1, Ordering::SeqCst) < throttled {
            Verdict::Answer {
                status: "503 Slow Down".into(),
                headers: vec![("Content-Type".into(), "application/xml".into())],
                body: SLOW_DOWN.into(),
            }
        } else {
            Verdict::Forward
        }
    };
    let port = testing::interpose(upstream, Box::new(decide), Box::new(|_: &str| {})).unwrap();
    (format!("http://127.0.0.1:{port}"), seen)
}

fn store_via(endpoint: &str) -> Store {
    Store::new(StoreOptions {
        endpoint: Some(endpoint.to_string()),
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
        },
        throttle: RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(200),
        },
        ..testing::s3_options()
    })
}

#[test]
fn slow_down_waits_and_asks_again_and_is_counted_apart() {
    let direct = testing::s3_store();
    let bucket = testing::unique_bucket(&direct, "slowdown").unwrap();
    let uri = format!("s3://{bucket}/tile.bin");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    direct.put(&uri, Bytes::from(data.clone())).unwrap();

    // Seven SlowDowns: more than one request's three SDK attempts twice over.
    let (endpoint, seen) = slow_down_proxy(7);
    let store = store_via(&endpoint);
    assert_eq!(store.get(&uri).unwrap().as_ref(), &data[..]);
    // 3 + 3 attempts throttled (two waits), then 1 throttled and 1 answered.
    assert_eq!(seen.load(Ordering::SeqCst), 8);
    assert_eq!(store.stats().throttled, 2);
    // Ranged reads and listings wait alike.
    let (endpoint, _) = slow_down_proxy(4);
    let store = store_via(&endpoint);
    let got = store.get_range(&uri, 1000..1010).unwrap();
    assert_eq!(got.as_ref(), &data[1000..1010]);
    assert_eq!(store.stats().throttled, 1);
    let (endpoint, _) = slow_down_proxy(4);
    let store = store_via(&endpoint);
    assert_eq!(store.list(&format!("s3://{bucket}/")).unwrap().len(), 1);
    assert_eq!(store.stats().throttled, 1);
}

#[test]
fn slow_down_without_end_fails_after_the_bounded_wait() {
    let direct = testing::s3_store();
    let bucket = testing::unique_bucket(&direct, "slowdown-forever").unwrap();
    let uri = format!("s3://{bucket}/k");
    direct.put(&uri, Bytes::from_static(b"x")).unwrap();
    let (endpoint, seen) = slow_down_proxy(usize::MAX);
    let store = store_via(&endpoint);
    let clock = Instant::now();
    let e = store.get(&uri).unwrap_err();
    assert!(e.is_throttled(), "{e}");
    assert!(e.to_string().contains("SlowDown"), "{e}");
    // Five rounds of three attempts; four waits of 50–200 ms.
    assert_eq!(seen.load(Ordering::SeqCst), 15);
    assert_eq!(store.stats().throttled, 4);
    assert!(clock.elapsed() >= Duration::from_millis(200));
    // A refusal is not throttling: no wait.
    assert!(
        !direct
            .get(&format!("s3://{bucket}/missing"))
            .unwrap_err()
            .is_throttled()
    );
}
