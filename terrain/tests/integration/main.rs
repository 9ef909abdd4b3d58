//! terrain's integration tests: gdaldem and PDAL references, ISPRS, mosaics and seams, bad input,
//! the CLI.
//!
//! One test binary for the crate (one link, one process): each module is one former
//! `tests/*.rs` file. Run one with `cargo test -p terrain --test integration <module>::`.
#![allow(clippy::unwrap_used)]

mod bad_input;
mod cli;
mod gdaldem;
mod isprs;
mod mosaic;
mod outliers_reference;
mod pdal_idw;
mod seams;
