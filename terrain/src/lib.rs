//! Terrain models from LiDAR partitions (CloudButton D2.5 §8.3), computed natively and
//! agreeing with the tools CloudButton used (PDAL, gdaldem):
//!
//! - [`smrf`]: ground classification with SMRF (Pingel, Clarke & McBride 2013), with
//!   optional [`noise`] filters (extended local minimum, radius outliers).
//! - [`gridding`]: PDAL `writers.gdal` IDW and maximum, and TIN interpolation, on grids
//!   snapped to multiples of the resolution ([`grid`]).
//! - [`products`]: CHM = DSM − DEM (≥ 0) and forest canopy cover on the CHM.
//! - [`derivatives`]: slope and aspect identical to `gdaldem` (Horn, Zevenbergen–Thorne).
//! - [`models`]: the whole per-partition pipeline, buffer-aware and cropped to the core.
//! - mosaics: per-partition rasters back into one through [`cog::mosaic`] (the `mosaic`
//!   task of [`stage`]).
//! - [`stage`]: the `terrain` stage (CLI, AWS Lambda, AWS Batch).
//!
//! Coordinates are in the point cloud's CRS (projected, metres); outputs are float32 COGs
//! with nodata −9999.
//!
//! ```
//! use cog::{Crs, GeoTransform, Raster};
//! use terrain::derivatives::{SlopeOptions, slope};
//!
//! // A plane rising 1 m per metre eastwards, on 1 m pixels: 45° inside (Horn, as
//! // `gdaldem slope -compute_edges`, which extrapolates the edges: 45°, but 26.6° in the
//! // corners).
//! let dem = Raster {
//!     data: ndarray::Array2::from_shape_fn((5, 6), |(_, c)| c as f32),
//!     transform: GeoTransform([0.0, 1.0, 0.0, 5.0, 0.0, -1.0]),
//!     crs: Crs::epsg(25830),
//!     nodata: None,
//! };
//! let s = slope(&dem, &SlopeOptions::default())?;
//! let inside = s.data.slice(ndarray::s![1..4, 1..5]);
//! assert!(inside.iter().all(|&d| (d - 45.0).abs() < 1e-4), "{:?}", s.data);
//! assert!((s.data[[0, 0]] - 26.565).abs() < 1e-3);
//! # Ok::<(), terrain::TerrainError>(())
//! ```

pub mod bands;
pub mod derivatives;
pub mod error;
pub mod grid;
pub mod gridding;
pub mod inpaint;
pub mod las_io;
pub mod models;
pub mod morph;
pub mod noise;
pub mod points;
pub mod products;
pub mod smrf;
pub mod stage;

pub use error::{Result, TerrainError};
pub use grid::{Bounds, Grid};
pub use models::{DemMethod, GroundSource, ModelOptions, Models, compute_models};
pub use points::PointCloud;
pub use products::{NODATA, Product};
pub use stage::{TerrainParams, TerrainStage};
