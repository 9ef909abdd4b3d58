//! Crop water use for geobutton (CloudButton D2.5 §8.6): FAO-56 Penman-Monteith reference
//! evapotranspiration for station tables and over DTM tiles, with weather-station
//! interpolation, terrain-aware solar radiation and SIGPAC crop coefficients.
//!
//! - [`fao56`]: every FAO-56 equation as a plain function; [`et0`]: one-site daily/hourly
//!   ET0 with all intermediates; [`grid`]: the same over rasters (ndarray + rayon).
//! - [`table`]: the tabular mode (`water et0 IN.csv -o OUT.csv`).
//! - [`stations`], [`interp`], [`proj`], [`solar`], [`workflow`]: the spatial workflow on a
//!   DTM tile; [`crops`]: plots, Kc, ETc and water volume; [`map`]: PNG maps.
//! - [`plots`]: a run's per-plot tables over many tiles and days; [`irrigation`]: the
//!   NDVI irrigated-plot rule.
//! - [`stage`]: the `water` stage (one task = one tile) and its CLI.

pub mod crops;
pub mod et0;
pub mod fao56;
pub mod grid;
pub mod interp;
pub mod irrigation;
pub mod map;
pub mod plots;
pub use cog::proj;
pub mod solar;
pub mod stage;
pub mod stations;
pub mod synth;
pub mod table;
pub mod workflow;

pub use stage::{Output, Params, WaterError, WaterStage};
