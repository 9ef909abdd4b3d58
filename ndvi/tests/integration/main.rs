//! ndvi's integration tests: Sentinel-2 tiles, preprocessing, S3.
//!
//! One test binary for the crate (one link, one process): each module is one former
//! `tests/*.rs` file. Run one with `cargo test -p ndvi --test integration <module>::`.
#![allow(clippy::unwrap_used)]

mod common;
mod preprocess;
mod s3_tile;
mod sentinel;
