//! Slope and aspect of DEMs of any size, by bands of rows.
//!
//! [`for_each_band`] reads the DEM a band of rows at a time (whole blocks of the file, each
//! decoded once) and hands each band with one halo row above and below (where the image has
//! them) to a 3×3 computation; [`derive_by_bands`] keeps the band's own rows of the result
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
/// bottom: `band` holds rows `first..first + rows` of the band's own rows after a halo row
/// above (`first` = 1, except at the image's top) and before a halo row below (except at its
/// bottom), with the georeferencing of its first row.
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
    let mut above: Option<Array2<f32>> = None;
    loop {
        let r1 = r0 + cur.height() as u64;
        let next = if r1 < h { Some(read(r1)?) } else { None };
        let top = usize::from(above.is_some());
        let mut parts = Vec::with_capacity(3);
        if let Some(a) = &above {
            parts.push(a.view());
        }
        parts.push(cur.data.view());
        if let Some(n) = &next {
            parts.push(n.data.slice(s![0..1, ..]));
        }
        let data = ndarray::concatenate(Axis(0), &parts)
            .map_err(|e| TerrainError::param(format!("internal: band assembly: {e}")))?;
        let band = Raster {
            data,
            transform: info.geotransform.window(0, r0 - top as u64),
            crs: cur.crs.clone(),
            nodata: cur.nodata,
        };
        f(&band, top, cur.height())?;
        let last = cur.height() - 1;
        above = Some(cur.data.slice(s![last..last + 1, ..]).to_owned());
        match next {
            Some(n) => {
                cur = n;
                r0 = r1;
            }
            None => return Ok(()),
        }
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
