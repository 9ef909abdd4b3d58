//! water's integration tests: FAO-56 examples, CoAgMet, spatial runs, the CLI.
//!
//! One test binary for the crate (one link, one process): each module is one former
//! `tests/*.rs` file. Run one with `cargo test -p water --test integration <module>::`.
#![allow(clippy::unwrap_used)]

mod cli;
mod coagmet;
mod fao56_examples;
mod spatial;
