//! Decoding: decompressing and un-predicting fetched blocks, and copying the part of each
//! that a window covers into its output, block by block on rayon.

use bytes::Bytes;
use ndarray::{Array2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use super::CogReader;
use super::fetch::Block;
use super::image::Image;
use super::plan::WindowPlan;
use crate::codec;
use crate::error::CogError;
use crate::pixel::Pixel;
use crate::raster::Window;

thread_local! {
    /// Each rayon worker decodes into its own reused buffer.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Decodes the fetched blocks of `plan` (`inputs`, one per job) into one array per plane of
/// `planes`, the window's pixels as `T`; pixels of missing blocks are `nodata` (or 0).
#[allow(clippy::too_many_arguments)]
pub(super) fn decode_window<T: Pixel>(
    uri: &str,
    im: &Image,
    le: bool,
    plan: &WindowPlan,
    inputs: Vec<Option<Bytes>>,
    planes: &[usize],
    window: Window,
    nodata: Option<f64>,
) -> Result<Vec<Array2<T>>, CogError> {
    let fill = nodata.map(T::from_f64).unwrap_or_default();
    let (w, h) = (window.width as usize, window.height as usize);
    let mut outs: Vec<Array2<T>> = planes
        .iter()
        .map(|_| Array2::from_elem((h, w), fill))
        .collect();
    // Split every output into disjoint views, one per block the window touches, so that
    // blocks decode and copy in parallel without sharing mutable state.
    let heights: Vec<usize> = (plan.r0..=plan.r1)
        .map(|r| {
            let top = (r * im.block_h).max(window.row_off);
            let bottom = ((r + 1) * im.block_h).min(window.row_off + window.height);
            (bottom - top) as usize
        })
        .collect();
    let widths: Vec<usize> = (plan.c0..=plan.c1)
        .map(|c| {
            let left = (c * im.block_w).max(window.col_off);
            let right = ((c + 1) * im.block_w).min(window.col_off + window.width);
            (right - left) as usize
        })
        .collect();
    let ncols = widths.len();
    let mut grids: Vec<Vec<Option<ArrayViewMut2<'_, T>>>> = outs
        .iter_mut()
        .map(|o| {
            split_grid(o.view_mut(), &heights, &widths)
                .into_iter()
                .map(Some)
                .collect()
        })
        .collect();
    struct Task<'a, T> {
        job: usize,
        data: Bytes,
        /// (sample index within the block, destination view)
        dests: Vec<(usize, ArrayViewMut2<'a, T>)>,
    }
    let mut tasks = Vec::new();
    for (i, (j, data)) in plan.jobs.iter().zip(inputs).enumerate() {
        let Some(data) = data else { continue };
        let cell = (j.r - plan.r0) as usize * ncols + (j.c - plan.c0) as usize;
        let mut dests = Vec::new();
        for (k, &p) in planes.iter().enumerate() {
            if im.planar && p != j.plane {
                continue;
            }
            if let Some(v) = grids[k][cell].take() {
                dests.push((if im.planar { 0 } else { p }, v));
            }
        }
        tasks.push(Task {
            job: i,
            data,
            dests,
        });
    }
    let spp = if im.planar { 1 } else { im.spp };
    let direct = !plan.whole_blocks && im.bits >= 8 && le;
    let row_bytes = im.row_bytes();
    tasks
        .into_par_iter()
        .try_for_each(|t| -> Result<(), CogError> {
            let j = &plan.jobs[t.job];
            if direct && t.data.len() >= j.rows as usize * row_bytes {
                // Uncompressed little-endian rows: copied straight from the fetched bytes.
                for (sample, mut view) in t.dests {
                    copy_block(
                        im, j.r, j.c, j.row_a, j.rows, &t.data, sample, spp, window, &mut view,
                    );
                }
                return Ok(());
            }
            SCRATCH.with(|cell| {
                let mut buf = cell.borrow_mut();
                decode_block_into(im, &t.data, j.rows, le, &mut buf).map_err(|reason| {
                    CogError::Decode {
                        uri: uri.to_string(),
                        what: format!("block ({}, {}) of plane {}", j.c, j.r, j.plane),
                        reason,
                    }
                })?;
                for (sample, mut view) in t.dests {
                    copy_block(
                        im, j.r, j.c, j.row_a, j.rows, &buf, sample, spp, window, &mut view,
                    );
                }
                Ok(())
            })
        })?;
    Ok(outs)
}

impl CogReader {
    /// Decodes a block fetched by [`CogReader::fetch_block`] into its samples, little-endian,
    /// row by row (all bands of a pixel-interleaved file interleaved; one band of a planar
    /// one; packed bits for a 1-bit mask). A strip at the bottom of the image has only the
    /// image's remaining rows. A missing block decodes to nothing.
    pub fn decode_block(&self, block: &Block) -> Result<Vec<u8>, CogError> {
        if block.data.is_empty() {
            return Ok(Vec::new());
        }
        let im = self.level(block.overview)?;
        let file = &self.files[im.file];
        super::plan::check_codec(&file.uri, im)?;
        let rows = im.rows_in_block(block.info.window.row_off / im.block_h);
        let mut buf = Vec::new();
        decode_block_into(im, &block.data, rows, file.header.little_endian, &mut buf).map_err(
            |reason| CogError::Decode {
                uri: file.uri.clone(),
                what: format!(
                    "block at pixel ({}, {}) of plane {}",
                    block.info.window.col_off, block.info.window.row_off, block.info.plane
                ),
                reason,
            },
        )?;
        buf.truncate(rows as usize * im.row_bytes());
        Ok(buf)
    }
}

/// Splits `a` into a row-major grid of disjoint views with the given row heights and
/// column widths (which sum to its shape).
fn split_grid<'a, T>(
    a: ArrayViewMut2<'a, T>,
    heights: &[usize],
    widths: &[usize],
) -> Vec<ArrayViewMut2<'a, T>> {
    let mut out = Vec::with_capacity(heights.len() * widths.len());
    let mut rest = a;
    for &hh in heights {
        let (band, r) = rest.split_at(Axis(0), hh);
        rest = r;
        let mut cols = band;
        for &ww in widths {
            let (cell, r) = cols.split_at(Axis(1), ww);
            cols = r;
            out.push(cell);
        }
    }
    out
}

/// Decompresses and un-predicts one block of `rows` rows into little-endian samples (or
/// packed bits for 1-bit images) in `buf`.
pub(super) fn decode_block_into(
    im: &Image,
    data: &[u8],
    rows: u64,
    le: bool,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    let row_bytes = im.row_bytes();
    let expected = rows as usize * row_bytes;
    let ctx = codec::BlockCtx {
        compression: im.compression,
        samples: if im.planar { 1 } else { im.spp },
        jpeg_tables: im.jpeg_tables.clone(),
        width: im.block_w as usize,
        height: rows as usize,
    };
    codec::decompress_block_into(&ctx, data, expected, buf)?;
    let buf = &mut buf[..expected];
    let size = im.bits as usize / 8;
    let samples = if im.planar { 1 } else { im.spp };
    let row_samples = im.block_w as usize * samples;
    if im.bits >= 8 {
        match im.predictor {
            3 => codec::undo_float(buf, size, row_samples, samples),
            p => {
                if !le {
                    codec::swap_bytes(buf, size);
                }
                if p == 2 {
                    codec::undo_horizontal(buf, size, row_samples, samples);
                }
            }
        }
    }
    Ok(())
}

/// Copies the part of a decoded block (rows `row_a..row_a+rows` of block (`r`, `c`)) that
/// falls in `window` into `view`, the window's cell for this block.
#[allow(clippy::too_many_arguments)]
fn copy_block<T: Pixel>(
    im: &Image,
    r: u64,
    c: u64,
    row_a: u64,
    rows: u64,
    buf: &[u8],
    sample: usize,
    spp: usize,
    window: Window,
    view: &mut ArrayViewMut2<'_, T>,
) {
    let top = r * im.block_h + row_a;
    let left = c * im.block_w;
    let y0 = window.row_off.max(top);
    let y1 = (window.row_off + window.height).min(top + rows);
    let x0 = window.col_off.max(left);
    let x1 = (window.col_off + window.width)
        .min(left + im.block_w)
        .min(im.width);
    if y0 >= y1 || x0 >= x1 {
        return;
    }
    // The view starts at image (max(left, col_off), max(r*block_h, row_off)).
    let view_top = window.row_off.max(r * im.block_h);
    let row_bytes = im.row_bytes();
    let bx = (x0 - left) as usize;
    for y in y0..y1 {
        let src_row = &buf[(y - top) as usize * row_bytes..(y - top + 1) as usize * row_bytes];
        let mut vrow = view.row_mut((y - view_top) as usize);
        let Some(drow) = vrow.as_slice_mut() else {
            // Views of a standard-layout array have contiguous rows.
            continue;
        };
        match im.stype {
            None => {
                for (k, d) in drow.iter_mut().enumerate() {
                    let bit = (bx + k) * spp + sample;
                    let on = src_row[bit / 8] & (0x80 >> (bit % 8)) != 0;
                    *d = T::from_u8(if on { 255 } else { 0 });
                }
            }
            Some(st) => {
                crate::dispatch_sample_type!(st, S => {
                    convert_row::<S, T>(src_row, bx, spp, sample, drow)
                })
            }
        }
    }
}

/// Converts samples of stored type `S` (little-endian) at pixel `bx..` of `src_row` into `drow`.
#[inline]
fn convert_row<S: Pixel, T: Pixel>(
    src_row: &[u8],
    bx: usize,
    spp: usize,
    sample: usize,
    drow: &mut [T],
) {
    let size = std::mem::size_of::<S>();
    let start = (bx * spp + sample) * size;
    let src = &src_row[start..];
    if spp == 1 && S::TYPE == T::TYPE {
        // Same type: a plain little-endian copy.
        T::read_le_slice(src, drow);
    } else if spp == 1 {
        for (d, chunk) in drow.iter_mut().zip(src.chunks_exact(size)) {
            *d = S::from_le_slice(chunk).cast::<T>();
        }
    } else {
        for (d, chunk) in drow.iter_mut().zip(src.chunks(spp * size)) {
            *d = S::from_le_slice(&chunk[..size]).cast::<T>();
        }
    }
}
