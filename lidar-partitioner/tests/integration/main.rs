//! lidar-partitioner's integration tests: partition invariants against laspy, bad input, S3, the
//! CLI.
//!
//! One test binary for the crate (one link, one process): each module is one former
//! `tests/*.rs` file. Run one with `cargo test -p lidar-partitioner --test integration <module>::`.
#![allow(clippy::unwrap_used)]

mod bad_input;
mod cli;
mod common;
mod density_vs_grid;
mod invariants;
mod reader;
mod reproduction;
mod s3;
