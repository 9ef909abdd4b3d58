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
