//! A bucket lives in one region and S3 refuses requests signed for another, naming the
//! bucket's region (`x-amz-bucket-region`). The store learns it, asks again there once, signs
//! later requests for it, and counts the traffic under the bucket's region (the cost
//! estimate prices transfer between regions from it). The loopback S3 server does not hold
//! the rule; `cloud::testing::regional_s3` in front of it does, as S3 does.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use cloud::testing;
use cloud::{S3Traffic, Store, StoreError, StoreOptions};

fn upstream() -> u16 {
    testing::s3_endpoint()
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// A store as a function in `region` has it, talking to the proxy.
fn store_in(region: &str, endpoint: &str, part_size: usize) -> Store {
    Store::new(StoreOptions {
        endpoint: Some(endpoint.to_string()),
        region: Some(region.to_string()),
        part_size,
        ..testing::s3_options()
    })
}

fn traffic(store: &Store, region: &str) -> S3Traffic {
    store
        .s3_traffic()
        .into_iter()
        .find(|t| t.region == region)
        .unwrap_or_else(|| panic!("no traffic to {region}: {:?}", store.s3_traffic()))
}

#[test]
fn a_bucket_in_another_region_is_asked_there_once_known() {
    let direct = testing::s3_store();
    let far = testing::unique_bucket(&direct, "far").unwrap();
    let near = testing::unique_bucket(&direct, "near").unwrap();
    let (endpoint, seen) = testing::regional_s3(
        upstream(),
        vec![
            (far.clone(), "us-west-2".to_string()),
            (near.clone(), "eu-south-2".to_string()),
        ],
    )
    .unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();

    // A function in eu-south-2 writes to a bucket in us-west-2: refused once, then there.
    let store = store_in("eu-south-2", &endpoint, cloud::MIN_PART_SIZE);
    let uri = format!("s3://{far}/tile.bin");
    store.put(&uri, Bytes::from(data.clone())).unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    // Later requests are signed for us-west-2 at once.
    assert_eq!(store.get(&uri).unwrap().as_ref(), &data[..]);
    assert_eq!(
        store.get_range(&uri, 10..20).unwrap().as_ref(),
        &data[10..20]
    );
    assert_eq!(store.head(&uri).unwrap(), data.len() as u64);
    assert_eq!(seen.load(Ordering::SeqCst), 5);
    assert_eq!(
        store.bucket_region(&uri).unwrap().as_deref(),
        Some("us-west-2")
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        5,
        "a learnt region is not asked"
    );
    // The bucket in the function's own region is never refused.
    let near_uri = format!("s3://{near}/t.bin");
    store.put(&near_uri, Bytes::from_static(b"near")).unwrap();
    assert_eq!(store.get(&near_uri).unwrap().as_ref(), b"near");
    assert_eq!(seen.load(Ordering::SeqCst), 7);

    // Traffic by the region that answered: the refused PUT went to eu-south-2.
    let west = traffic(&store, "us-west-2");
    assert_eq!(
        (west.get_class, west.put_class, west.billed),
        (3, 1, true),
        "{west:?}"
    );
    assert_eq!(west.bytes_read, data.len() as u64 + 10);
    assert_eq!(west.bytes_written, data.len() as u64);
    let south = traffic(&store, "eu-south-2");
    assert_eq!((south.get_class, south.put_class), (1, 2), "{south:?}");
    assert_eq!(south.bytes_read, 4);
}

#[test]
fn region_is_found_by_head_bucket_and_multipart_uploads_follow_it() {
    let direct = testing::s3_store();
    let far = testing::unique_bucket(&direct, "far-mp").unwrap();
    let (endpoint, seen) = testing::regional_s3(
        upstream(),
        vec![(far.clone(), "ap-southeast-2".to_string())],
    )
    .unwrap();
    let store = store_in("eu-west-1", &endpoint, cloud::MIN_PART_SIZE);
    // HeadBucket is refused (400 without a body) but names the region.
    let uri = format!("s3://{far}/big.bin");
    assert_eq!(
        store.bucket_region(&uri).unwrap().as_deref(),
        Some("ap-southeast-2")
    );
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    // A multipart upload (three parts) is created in the right region at once.
    let data: Vec<u8> = (0..(2 * cloud::MIN_PART_SIZE + 1000) as u32)
        .map(|i| (i % 241) as u8)
        .collect();
    let n = store.put_reader(&uri, &data[..]).unwrap();
    assert_eq!(n, data.len() as u64);
    // Create + 3 parts + complete.
    assert_eq!(seen.load(Ordering::SeqCst), 6);
    assert_eq!(direct.get(&uri).unwrap().as_ref(), &data[..]);

    // A fresh store learns it from a refused multipart create, then uploads.
    let fresh = store_in("eu-west-1", &endpoint, cloud::MIN_PART_SIZE);
    fresh.put_reader(&uri, &data[..]).unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 6 + 1 + 5);
    let t = traffic(&fresh, "ap-southeast-2");
    assert_eq!((t.put_class, t.bytes_written), (5, data.len() as u64));
}

#[test]
fn public_buckets_keep_their_region_and_refusals_are_named() {
    // Without an endpoint override, sentinel-cogs is in us-west-2 whatever the function's
    // region (no request: the region is known).
    let store = Store::new(StoreOptions {
        region: Some("eu-south-2".to_string()),
        ..StoreOptions::default()
    });
    assert_eq!(
        store
            .bucket_region("s3://sentinel-cogs/sentinel-s2-l2a-cogs/30/S/XG")
            .unwrap()
            .as_deref(),
        Some("us-west-2")
    );
    assert_eq!(store.stats().requests, 0);
    assert_eq!(store.bucket_region("/tmp/x").unwrap(), None);

    // After the redirect, the answer is the bucket's own: a missing key is not found.
    let direct = testing::s3_store();
    let far = testing::unique_bucket(&direct, "far-err").unwrap();
    let (endpoint, seen) =
        testing::regional_s3(upstream(), vec![(far.clone(), "us-west-2".to_string())]).unwrap();
    let e = store_in("eu-central-1", &endpoint, cloud::MIN_PART_SIZE)
        .get(&format!("s3://{far}/missing"))
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}
