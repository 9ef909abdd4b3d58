//! biomass's integration tests: crowns and allometry against scikit-image and NEON.
//!
//! One test binary for the crate (one link, one process): each module is one former
//! `tests/*.rs` file. Run one with `cargo test -p biomass --test integration <module>::`.
#![allow(clippy::unwrap_used)]

mod common;
mod mixed_conifer;
mod sjer;
mod skimage_call;
mod workflow;
