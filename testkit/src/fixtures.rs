//! The real public fixtures of `../shared/data`, beside the repository (CI's checkout and a
//! developer's have it there; tests use the files in place, never copies).

use std::path::{Path, PathBuf};

/// `../shared/data` beside the repository.
pub fn shared_data() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")).to_path_buf()
}

/// The fixture `rel` (a path relative to `../shared/data`), existing or not.
///
/// ```
/// let p = testkit::fixtures::data("raster/rasterio/RGB.byte.tif");
/// assert!(p.ends_with("shared/data/raster/rasterio/RGB.byte.tif"));
/// ```
pub fn data(rel: &str) -> PathBuf {
    shared_data().join(rel)
}

/// [`data`] as a string, for URIs.
pub fn data_str(rel: &str) -> String {
    data(rel).to_string_lossy().into_owned()
}
