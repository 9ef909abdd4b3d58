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
//!
//! ```
//! use water::fao56;
//!
//! // FAO-56 Example 8: extraterrestrial radiation at 20° S on 3 September (day 246).
//! let ra = fao56::extraterrestrial_radiation((-20f64).to_radians(), 246.0);
//! assert!((ra - 32.2).abs() < 0.05, "{ra}"); // MJ m⁻² day⁻¹
//! // FAO-56 Example 2: the psychrometric constant at 1 800 m.
//! let gamma = fao56::psychrometric_constant(fao56::atmospheric_pressure(1800.0));
//! assert!((gamma - 0.054).abs() < 0.0005, "{gamma}"); // kPa °C⁻¹
//! ```

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
