//! Helpers for tests that talk to the S3-compatible server on loopback started by
//! `scripts/test-services.sh` (and by `.ci/run`).
//!
//! The server's address comes from `GEOBUTTON_TEST_S3_ENDPOINT` (e.g. `http://127.0.0.1:5000`).
//! Tests fail, rather than skip, when it is not set: an S3 test that cannot fail is no test.

use crate::error::StoreError;
use crate::runtime::block_on;
use crate::store::{Store, StoreOptions};

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
        let client = crate::s3::client_for(&inner, &name).await;
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
