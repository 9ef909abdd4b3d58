//! cloud's integration tests: stores (local, S3 on loopback, HTTP), inputs, the task contract and
//! its entry modes.
//!
//! One test binary for the crate (one link, one process): each module is one former
//! `tests/*.rs` file. Run one with `cargo test -p cloud --test integration <module>::`.
#![allow(clippy::unwrap_used)]

mod entry_modes;
mod http_hostile;
mod http_ranges;
mod inputs;
mod s3_regions;
mod s3_throttling;
mod store_suite;
mod support;
mod task_contract;
