//! The driver's integration tests: pipelines on the local, Lambda and Batch executors, resumes, the
//! CLI.
//!
//! One test binary for the crate (one link, one process): each module is one former
//! `tests/*.rs` file. Run one with `cargo test -p driver --test integration <module>::`.
#![allow(clippy::unwrap_used)]

mod batch_executor;
mod common;
mod lambda_executor;
mod local_pipelines;
mod ndvi_search;
mod resume_and_cli;
mod resume_changes;
mod seed_scale;
mod server_mix;
mod water_season;
