//! Slope and aspect of DEMs of any size, by bands of rows.
//!
//! [`for_each_band`] reads the DEM a band of rows at a time (whole blocks of the file, each
//! decoded once, the next read while the current band is computed) and hands each band with
//! one halo row above and below (where the image has them) to a 3×3 computation; [`derive_by_bands`] keeps the band's own rows of the result
//! and streams them into a [`RowWriter`] (a COG, or plain strips). The halo rows are what the 3×3 window of a
//! band's first and last rows reads, so the output equals the whole-image computation
//! bit for bit, while memory holds about five bands (two read, one assembled, the writer's
//! two) instead of the image and its result.

use cloud::Store;
use cog::{CogReader, Raster, RowWriter, Window};
use ndarray::{Array2, Axis, s};

use crate::error::{Result, TerrainError};

/// Fewest rows per band read.
const MIN_BAND_ROWS: u64 = 256;

/// Calls `f(band, first, rows)` for consecutive bands of rows of band 1 of `reader`, top to
/// bottom, reading the next block of rows while `f` works on the current band: `band` holds
/// the output rows `first..first + rows` with the rows their 3×3 windows read around them
/// (one above, except at the image's top; one below, except at its bottom), and the
/// georeferencing of its first row. A band's last input row is its output's halo: that row
/// is output with the next band.
pub fn for_each_band(
    reader: &CogReader,
    mut f: impl FnMut(&Raster<f32>, usize, usize) -> Result<()>,
) -> Result<()> {
    let info = reader.info();
    let (w, h) = (info.width, info.height);
    let block = info.block[1].max(1);
    let chunk = MIN_BAND_ROWS.div_ceil(block) * block;
    let read = |r0: u64| -> Result<Raster<f32>> {
        Ok(reader.read_window::<f32>(1, Window::new(0, r0, w, chunk.min(h - r0)), 0)?)
    };
    let mut cur = read(0)?;
    let mut r0 = 0u64;
    // The last two rows of the previous band (the first output row's halo and itself).
    let mut carry: Option<Array2<f32>> = None;
    loop {
        let r1 = r0 + cur.height() as u64;
        let last = r1 == h;
        let c = carry.as_ref().map_or(0, |a| a.nrows());
        let data = match &carry {
            Some(a) => ndarray::concatenate(Axis(0), &[a.view(), cur.data.view()])
                .map_err(|e| TerrainError::param(format!("internal: band assembly: {e}")))?,
            None => std::mem::take(&mut cur.data),
        };
        let start = r0 - c as u64;
        let first = usize::from(c > 0);
        let end = if last { h } else { r1 - 1 };
        let rows = (end - (start + first as u64)) as usize;
        let band = Raster {
            data,
            transform: info.geotransform.window(0, start),
            crs: cur.crs.clone(),
            nodata: cur.nodata,
        };
        let (next, done) = std::thread::scope(|s| {
            let next = (!last).then(|| s.spawn(|| read(r1)));
            let done = f(&band, first, rows);
            let next = next.map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            (next, done)
        });
        done?;
        let Some(next) = next else {
            return Ok(());
        };
        let n = band.data.nrows();
        carry = Some(band.data.slice(s![n.saturating_sub(2).., ..]).to_owned());
        cur = next?;
        r0 = r1;
    }
}

/// Writes `derive(band)` of the DEM `reader` reads into `writer`, by bands of rows (see
/// the module documentation), and completes the file.
pub fn derive_by_bands(
    store: &Store,
    reader: &CogReader,
    mut writer: RowWriter<f32>,
    derive: impl Fn(&Raster<f32>) -> Result<Raster<f32>>,
) -> Result<()> {
    for_each_band(reader, |band, first, rows| {
        let out = derive(band)?;
        writer.push_rows(out.data.slice(s![first..first + rows, ..]))?;
        Ok(())
    })?;
    writer.finish(store)?;
    Ok(())
}
