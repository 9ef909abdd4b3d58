//! NDVI and NDVI differences of Sentinel-2 L2A scenes (CloudButton D2.5 §8.4–8.5), correct
//! where the original was not (it squared the NDVIs and wrote only JPEGs).
//!
//! - [`ndvi`], [`ndvi_with`], [`ndvi_diff`]: float32 NDVI and `after − before` on
//!   [`cog::Raster`]s or windows, from Sentinel-2 DNs (scale 0.0001, the −1000 DN offset of
//!   processing baseline 04.00), NaN nodata where a band is nodata (0) or NIR + Red = 0;
//!   [`apply_scl_mask`] masks SCL classes 3, 8, 9, 10 (20 m SCL resampled to the 10 m grid
//!   by nearest neighbour).
//! - [`scene`]: MGRS tiles, scene ids, the `s3://sentinel-cogs/sentinel-s2-l2a-cogs/…` key
//!   layout, Earth Search STAC items, and resolution of a tile + date to band URIs.
//! - [`quicklook`]: PNG quicklooks with a diverging colormap and a legend.
//! - [`tile`]: one task per window of a tile ([`tile::WindowTask`]) and a merge
//!   ([`tile::MergeTask`]) writing NDVI before, after and difference COGs and the quicklook;
//!   [`plan_tile`] builds them. [`stage::NdviStage`] is the stage (CLI `ndvi compute | diff |
//!   tile | preprocess`, Lambda, Batch).
//! - [`preprocess`]: Sentinel-2 product → COGs in the `sentinel-cogs` layout (Sen2Cor first
//!   for Level-1C when installed).
//!
//! ```
//! use cog::{Crs, GeoTransform, Raster};
//!
//! // Sentinel-2 L2A DNs (reflectance × 10 000; 0 is nodata) of two pixels.
//! let band = |v: [u16; 2]| Raster {
//!     data: ndarray::Array2::from_shape_vec((1, 2), v.to_vec()).unwrap(),
//!     transform: GeoTransform([600_000.0, 10.0, 0.0, 4_200_000.0, 0.0, -10.0]),
//!     crs: Crs::epsg(32629),
//!     nodata: Some(0),
//! };
//! let n = ndvi::ndvi(&band([1000, 0]), &band([3000, 2500]))?;
//! assert_eq!(n.data[[0, 0]], 0.5); // (0.3 − 0.1) / (0.3 + 0.1)
//! assert!(n.data[[0, 1]].is_nan()); // red is nodata
//! # Ok::<(), ndvi::NdviError>(())
//! ```

pub mod compute;
pub mod error;
pub mod io;
pub mod preprocess;
pub mod quicklook;
pub mod radiometry;
pub mod scene;
pub mod search;
pub mod stage;
pub mod tile;

pub use compute::{
    DEFAULT_SCL_MASK, Grid, NODATA, NdviOptions, Sample, SclMapping, Stats, apply_scl_mask,
    check_same_grid, ndvi, ndvi_diff, ndvi_with, stats,
};
pub use error::NdviError;
pub use radiometry::{ProcessingBaseline, Radiometry};
pub use scene::{MgrsTile, SceneBands, SceneId, SceneRef, StacItem};
pub use stage::{NdviStage, Params};
pub use tile::{TilePlan, TileRequest, plan_tile};
