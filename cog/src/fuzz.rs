//! The fuzzing entry point: everything a reader does with an untrusted file held in memory.
//! Used by the cargo-fuzz target (`fuzz/`) and the deterministic mutation test.

use bytes::Bytes;

use crate::error::CogError;
use crate::raster::Window;
use crate::reader::CogReader;

/// Largest window (pixels) [`exercise`] reads from a level.
pub const FUZZ_MAX_PIXELS: u64 = 1 << 20;

/// Parses `data` as a TIFF (IFD chain, every tag this crate uses), then reads every band of
/// every level and the masks, each capped at [`FUZZ_MAX_PIXELS`]. Errors are expected for
/// bad input; panics are bugs.
pub fn exercise(data: &[u8]) -> Result<(), CogError> {
    let r = CogReader::from_bytes("fuzz.tif", Bytes::copy_from_slice(data))?;
    let info = r.info().clone();
    let _ = serde_json::to_string(&info);
    let _ = r.plan_windows(256);
    let mut first_err = None;
    for level in 0..=r.overview_count() {
        let (w, h) = r.level_size(level)?;
        let win = Window::new(
            0,
            0,
            w.min(1024),
            h.min(FUZZ_MAX_PIXELS / w.clamp(1, 1024)).max(1),
        );
        let bands: Vec<usize> = (1..=info.bands.min(8)).collect();
        if let Err(e) = r.read_bands::<f64>(&bands, win, level) {
            first_err.get_or_insert(e);
        }
        if info.mask
            && let Err(e) = r.read_mask(win, level)
        {
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
