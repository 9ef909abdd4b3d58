//! LAS/LAZ point clouds for geobutton, on the floor beside `cog`: what every crate that
//! reads point files shares, so that one file is valid or invalid for all of them.
//!
//! - [`header`]: the LAS 1.0–1.4 public header block (parsed from its raw bytes, kept
//!   whole), point record layouts 0–10, and the checks a header must pass before any
//!   allocation it asks for: signature, version, header size, point format and record
//!   length, offsets, positive finite scales, finite offsets.
//!
//! ```
//! let bytes = std::fs::read(concat!(
//!     env!("CARGO_MANIFEST_DIR"),
//!     "/../../shared/data/lidar/laspy/simple.las"
//! ))
//! .unwrap();
//! let h = pointcloud::Header::parse(&bytes).unwrap();
//! assert_eq!(h.version(), (1, 2));
//! assert!(h.scale().iter().all(|&s| s > 0.0));
//! ```

pub mod crs;
pub mod header;

pub use header::{Header, PointFormat};
