//! Rasters for geobutton: [`Raster`] with GDAL-style georeferencing, GeoTIFF/COG reading by
//! windows through [`cloud::Store`] range requests, and COG writing.
//!
//! Reading: [`CogReader::open`] reads one header prefix (32 KiB, doubled only while IFDs lie
//! beyond it) and parses every IFD; [`CogReader::read_window`] fetches the blocks a window
//! touches with a single [`cloud::Store::get_ranges`] call and decodes them in parallel.
//! Classic TIFF and BigTIFF, tiled and striped, chunky and planar, u8..f64, NONE / DEFLATE /
//! LZW / ZSTD / PackBits, predictors 2 and 3, overviews (internal or `.ovr`), internal masks,
//! GeoKeys, ModelPixelScale/Tiepoint/Transformation, GDAL_NODATA and GDAL_METADATA
//! scale/offset. ESRI ASCII grids (`.asc`) are read too.
//!
//! Writing: [`write_cog`] produces a Cloud-Optimized GeoTIFF laid out as GDAL's COG driver
//! does (ghost header, IFDs first, overview data before full resolution data).
//!
//! ```
//! use cog::{CogReader, CogWriteOptions, Crs, GeoTransform, Raster, Window};
//!
//! // A 400×300 float32 raster of 2 m pixels in ETRS89 / UTM 30N, written as a COG...
//! let data = ndarray::Array2::from_shape_fn((300, 400), |(r, c)| (r * 400 + c) as f32);
//! let transform = GeoTransform([600_000.0, 2.0, 0.0, 4_200_000.0, 0.0, -2.0]);
//! let raster = Raster { data, transform, crs: Crs::epsg(25830), nodata: Some(-9999.0) };
//! let store = cloud::Store::default();
//! let dir = std::env::temp_dir().join(format!("cog-doc-{}", std::process::id()));
//! let uri = dir.join("ramp.tif").display().to_string();
//! cog::write_cog(&store, &uri, &raster, &CogWriteOptions::default())?;
//! // ... and a window of it read back: only the blocks it touches are fetched.
//! let r = CogReader::open(&store, &uri)?;
//! assert_eq!((r.info().width, r.info().height, r.info().crs.epsg), (400, 300, Some(25830)));
//! let w = r.read_window::<f32>(1, Window::new(10, 20, 3, 2), 0)?;
//! assert_eq!(w.data[[1, 2]], (21 * 400 + 12) as f32);
//! assert_eq!(w.transform.0[0], 600_000.0 + 10.0 * 2.0);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), cog::CogError>(())
//! ```

pub mod asc;
mod cache;
mod codec;
pub mod error;
/// The fuzz target's entry (`cog/fuzz`), not an API.
#[doc(hidden)]
pub mod fuzz;
#[cfg(feature = "gdal")]
pub mod gdal_io;
pub mod geo;
pub mod legend;
pub mod mosaic;
pub mod pixel;
pub mod proj;
pub mod raster;
pub mod reader;
pub mod rows;
pub mod stage;
mod tiff;
pub mod writer;

pub use codec::Compression;
pub use error::CogError;
pub use mosaic::{Combine, Mosaic};
pub use pixel::{Pixel, SampleType};
pub use raster::{Crs, GeoTransform, Raster, Window};
pub use reader::{BandInfo, Block, BlockInfo, CogInfo, CogReader, OpenOptions, grid_of};
pub use rows::{CogRowWriter, RowWriter, StripRowWriter};
pub use writer::{CogWriteOptions, Resampling, write_cog};

/// The `.prj` beside a table of coordinates: `trees.csv` → `trees.prj` (the ESRI
/// convention GIS tools read).
pub fn prj_uri(uri: &str) -> String {
    match uri.rsplit_once('.') {
        Some((stem, ext)) if !ext.contains('/') => format!("{stem}.prj"),
        _ => format!("{uri}.prj"),
    }
}

/// Writes the `.prj` of `table_uri` (coordinates in `crs`): its URI, or `None` (and nothing
/// written) when the CRS is unknown.
pub fn write_prj(
    store: &cloud::Store,
    table_uri: &str,
    crs: &Crs,
) -> Result<Option<String>, cloud::StoreError> {
    let Some(wkt) = crs.wkt_text() else {
        return Ok(None);
    };
    let uri = prj_uri(table_uri);
    store.put(&uri, bytes::Bytes::from(wkt.into_bytes()))?;
    Ok(Some(uri))
}

use cloud::Store;

/// Reads band `band` (1-based) of a GeoTIFF/COG or ESRI ASCII grid, converting samples to `T`
/// like an `as` cast (nodata likewise).
pub fn read_band<T: Pixel>(store: &Store, uri: &str, band: usize) -> Result<Raster<T>, CogError> {
    CogReader::open(store, uri)?.read_band(band)
}

/// Reads `window` (full-resolution pixels) of band `band` (1-based).
pub fn read_window<T: Pixel>(
    store: &Store,
    uri: &str,
    band: usize,
    window: Window,
) -> Result<Raster<T>, CogError> {
    CogReader::open(store, uri)?.read_window(band, window, 0)
}

/// Tile-aligned windows of about `size`×`size` pixels covering the image (row-major): the
/// unit of work of a serverless task.
pub fn plan_windows(store: &Store, uri: &str, size: u64) -> Result<Vec<Window>, CogError> {
    Ok(CogReader::open(store, uri)?.plan_windows(size))
}
