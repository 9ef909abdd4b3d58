//! One `Store` test suite, run against local files and against the S3-compatible server on
//! loopback (`GEOBUTTON_TEST_S3_ENDPOINT`, started by `scripts/test-services.sh`).

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use cloud::{Store, StoreError, StoreOptions, testing, uri};

/// Deterministic pseudo-random bytes.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2654435761) >> 24) as u8)
        .collect()
}

/// A reader that yields `good` bytes and then fails.
struct FailingReader {
    left: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("the source broke"));
        }
        let n = buf.len().min(self.left);
        buf[..n].fill(7);
        self.left -= n;
        Ok(n)
    }
}

fn range_reads(store: &Store, root: &str) {
    let data = pattern(1_000_003, 1);
    let obj = uri::join(root, "ranges/object.bin");
    store.put(&obj, Bytes::from(data.clone())).unwrap();
    assert_eq!(store.head(&obj).unwrap(), data.len() as u64);
    for r in [
        0..1u64,
        0..4096,
        499_000..501_234,
        999_000..1_000_003,
        1_000_002..1_000_003,
    ] {
        let got = store.get_range(&obj, r.clone()).unwrap();
        assert_eq!(
            got.as_ref(),
            &data[r.start as usize..r.end as usize],
            "{r:?}"
        );
    }
    assert!(store.get_range(&obj, 10..10).unwrap().is_empty());
    assert_eq!(store.get(&obj).unwrap().as_ref(), data.as_slice());

    // Past the end: a clear error naming the object, never short data.
    for r in [
        999_990..1_000_004,
        1_000_003..1_000_010,
        2_000_000..2_000_001,
    ] {
        match store.get_range(&obj, r.clone()) {
            Err(StoreError::RangePastEnd {
                uri, start, end, ..
            }) => {
                assert_eq!((start, end), (r.start, r.end));
                assert_eq!(uri, obj);
            }
            other => panic!("{r:?}: expected RangePastEnd, got {other:?}"),
        }
    }
    // The message says what and where.
    let msg = store
        .get_range(&obj, 999_990..1_000_004)
        .unwrap_err()
        .to_string();
    assert!(msg.contains(&obj) && msg.contains("past the end"), "{msg}");
}

fn coalescing(base: &StoreOptions, root: &str) {
    let store = Store::new(StoreOptions {
        coalesce_gap: 100,
        max_request: 10_000,
        ..base.clone()
    });
    let data = pattern(100_000, 2);
    let obj = uri::join(root, "coalesce/object.bin");
    store.put(&obj, Bytes::from(data.clone())).unwrap();
    // Sorted: [0..50, 60..100] merge (gap 10); [1000..1100] alone (gap 900);
    // [5000..5100, 5150..5200] merge; [20_000..35_000] is over the cap: split into 2.
    let ranges = vec![
        5150..5200u64,
        0..50,
        20_000..35_000,
        1000..1100,
        60..100,
        5000..5100,
    ];
    store.reset_stats();
    let got = store.get_ranges(&obj, &ranges).unwrap();
    let stats = store.stats();
    assert_eq!(stats.get_requests, 5, "{stats:?}");
    assert_eq!(stats.requests, 5, "{stats:?}");
    for (r, b) in ranges.iter().zip(&got) {
        assert_eq!(b.as_ref(), &data[r.start as usize..r.end as usize], "{r:?}");
    }
}

fn atomic_put(store: &Store, root: &str) {
    // Larger than the multipart part size, so S3 uses a multipart upload.
    let len = 12 * 1024 * 1024;
    let obj = uri::join(root, "atomic/object.bin");
    store.put(&obj, Bytes::from(vec![b'a'; len])).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, obj, stop) = (store.clone(), obj.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = [0usize; 2];
            while !stop.load(Ordering::Relaxed) {
                let got = store.get(&obj).unwrap();
                assert_eq!(got.len(), len, "a reader saw a partial object");
                let first = got[0];
                assert!(first == b'a' || first == b'b');
                assert!(
                    got.iter().all(|&b| b == first),
                    "a reader saw mixed versions"
                );
                seen[(first - b'a') as usize] += 1;
            }
            seen
        })
    };
    for i in 0..4 {
        let fill = if i % 2 == 0 { b'b' } else { b'a' };
        store.put(&obj, Bytes::from(vec![fill; len])).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let seen = reader.join().unwrap();
    assert!(seen[0] + seen[1] > 0, "the reader never read");
    assert_eq!(store.get(&obj).unwrap()[0], b'a');

    // A source that fails midway (after one whole part) leaves nothing behind.
    let broken = uri::join(root, "atomic/broken.bin");
    let err = store
        .put_reader(
            &broken,
            FailingReader {
                left: 10 * 1024 * 1024,
            },
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Source { .. }), "{err:?}");
    assert!(err.to_string().contains(&broken), "{err}");
    assert!(!store.exists(&broken).unwrap());
    let listed = store.list(&uri::join(root, "atomic/")).unwrap();
    let names: Vec<_> = listed.iter().map(|o| uri::file_name(&o.uri)).collect();
    assert_eq!(names, vec!["object.bin"], "{listed:?}");
}

fn listing(store: &Store, root: &str) {
    let n = 1100;
    let prefix = uri::join(root, "many/");
    let names: Vec<String> = (0..n).map(|i| format!("k{i:05}.txt")).collect();
    std::thread::scope(|s| {
        for chunk in names.chunks(n / 8 + 1) {
            let prefix = &prefix;
            s.spawn(move || {
                for name in chunk {
                    store
                        .put(
                            &uri::join(prefix, name),
                            Bytes::from(name.clone().into_bytes()),
                        )
                        .unwrap();
                }
            });
        }
    });
    store
        .put(
            &uri::join(root, "many-other/x.txt"),
            Bytes::from_static(b"x"),
        )
        .unwrap();
    store.reset_stats();
    let listed = store.list(&prefix).unwrap();
    assert_eq!(listed.len(), n);
    for (obj, name) in listed.iter().zip(&names) {
        assert_eq!(obj.uri, uri::join(&prefix, name));
        assert_eq!(obj.size, name.len() as u64);
    }
    // A name prefix (not a directory) matches what starts with it.
    let partial = store.list(&uri::join(root, "many/k0109")).unwrap();
    assert_eq!(partial.len(), 10, "{partial:?}");
    assert!(
        store
            .list(&uri::join(root, "nothing-here/"))
            .unwrap()
            .is_empty()
    );
}

fn missing_objects(store: &Store, root: &str) {
    let missing = uri::join(root, "missing/none.bin");
    assert!(store.head(&missing).unwrap_err().is_not_found());
    assert!(store.get(&missing).unwrap_err().is_not_found());
    let err = store.get_range(&missing, 0..10).unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(err.to_string().contains(&missing));
    assert!(!store.exists(&missing).unwrap());
    store.delete(&missing).unwrap();
}

fn run_suite(options: StoreOptions, root: &str) {
    let store = Store::new(options.clone());
    range_reads(&store, root);
    coalescing(&options, root);
    missing_objects(&store, root);
    atomic_put(&store, root);
    listing(&store, root);
}

#[test]
fn local_store_suite() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("suite").display().to_string();
    run_suite(StoreOptions::default(), &root);
    // file:// URIs are the same files.
    let store = Store::default();
    let as_uri = format!("file://{}", uri::join(&root, "ranges/object.bin"));
    assert_eq!(store.head(&as_uri).unwrap(), 1_000_003);
    // No temporary files are left behind by the failed put.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("suite/atomic"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, vec!["object.bin"]);
}

#[test]
fn s3_store_suite() {
    let store = testing::s3_store();
    let bucket = testing::unique_bucket(&store, "suite").unwrap();
    let root = format!("s3://{bucket}/suite");
    run_suite(testing::s3_options(), &root);

    // The failed multipart upload was aborted, not left pending.
    let client = s3_client();
    let uploads = cloud::runtime::block_on(async move {
        client
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .unwrap()
    });
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
}

fn s3_client() -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(testing::s3_endpoint())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

#[test]
fn stopped_s3_server_is_a_clear_error() {
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = Store::new(StoreOptions {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: Some("us-east-1".into()),
        static_credentials: Some(("testing".into(), "testing".into())),
        retry: cloud::RetryPolicy {
            max_attempts: 2,
            initial_backoff: std::time::Duration::from_millis(10),
            max_backoff: std::time::Duration::from_millis(20),
        },
        ..StoreOptions::default()
    });
    let err = store.get("s3://nobody/key.bin").unwrap_err();
    match &err {
        StoreError::Remote { uri, attempts, .. } => {
            assert_eq!(uri, "s3://nobody/key.bin");
            assert_eq!(*attempts, 2);
        }
        other => panic!("expected a remote error, got {other:?}"),
    }
    assert!(err.to_string().contains("s3://nobody/key.bin"), "{err}");
    let err = store
        .put("s3://nobody/key.bin", Bytes::from_static(b"x"))
        .unwrap_err();
    assert!(matches!(err, StoreError::Remote { .. }), "{err:?}");
}

#[test]
fn invalid_uris_are_rejected() {
    let store = Store::default();
    for bad in ["gs://bucket/x", "s3://", ""] {
        let err = store.get(bad).unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidUri { .. }),
            "{bad}: {err:?}"
        );
    }
    let err = store
        .put("https://example.org/x", Bytes::new())
        .unwrap_err();
    assert!(matches!(err, StoreError::Unsupported { .. }), "{err:?}");
}

#[test]
fn s3_errors_say_what_is_missing() {
    let store = testing::s3_store();
    let bucket = testing::unique_bucket(&store, "msgs").unwrap();
    // A missing key in an existing bucket, through HEAD (no error body) and GET.
    let e = store.head(&format!("s3://{bucket}/nope.tif")).unwrap_err();
    assert!(e.is_not_found());
    assert!(
        e.to_string()
            .contains(&format!("no such key in bucket {bucket}")),
        "{e}"
    );
    let e = store.get(&format!("s3://{bucket}/nope.tif")).unwrap_err();
    assert!(e.to_string().contains("no such key"), "{e}");
    // A missing bucket, through HEAD and GET.
    for e in [
        store
            .head("s3://geobutton-no-such-bucket-x/k.tif")
            .unwrap_err(),
        store
            .get("s3://geobutton-no-such-bucket-x/k.tif")
            .unwrap_err(),
    ] {
        assert!(
            e.to_string()
                .contains("bucket geobutton-no-such-bucket-x does not exist"),
            "{e}"
        );
    }
    // A bucket without a key: a clear error, not an SDK dump.
    let e = store.get(&format!("s3://{bucket}")).unwrap_err();
    assert!(matches!(e, StoreError::InvalidUri { .. }), "{e:?}");
    assert!(e.to_string().contains("needs a key"), "{e}");
}
