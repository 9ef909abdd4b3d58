//! Rasters for geobutton: [`Raster`] with GDAL-style georeferencing, GeoTIFF/COG reading by
//! windows through [`cloud::Store`] range requests, and COG writing.

pub mod raster;

pub use raster::{Crs, GeoTransform, Raster, Window};
