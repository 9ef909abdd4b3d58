//! cog's integration tests: reads and writes against GDAL and rasterio, hostile files, request
//! budgets, the CLI.
//!
//! One test binary for the crate (one link, one process): each module is one former
//! `tests/*.rs` file. Run one with `cargo test -p cog --test integration <module>::`.
#![allow(clippy::unwrap_used)]

mod cli;
mod common;
#[cfg(feature = "gdal")]
mod gdal_feature;
mod gdal_reference;
mod hostile;
mod requests;
mod variants;
mod writer;
