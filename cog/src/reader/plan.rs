//! Block planning: which blocks of an image a window needs and which byte ranges of the
//! file hold them. Pure arithmetic over the parsed image and its block table; no I/O.

use std::sync::Arc;

use super::image::Image;
use super::{BlockInfo, CogReader, MAX_WINDOW_BYTES};
use crate::codec::{self, compression};
use crate::error::CogError;
use crate::raster::Window;
use crate::tiff::{self, tag};

/// The block offsets and byte counts of one image, read on first use.
#[derive(Debug)]
pub(super) struct Blocks {
    pub(super) offsets: Vec<u64>,
    pub(super) counts: Vec<u64>,
    /// Byte ranges of the stored, plausibly sized blocks, sorted (file order), for
    /// read-ahead.
    pub(super) order: Vec<std::ops::Range<u64>>,
}

/// One block a window read needs: where it is and which of its rows are used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Job {
    /// Band index of a planar file's block, 0 for pixel-interleaved files.
    pub(super) plane: usize,
    /// Block row and column.
    pub(super) r: u64,
    pub(super) c: u64,
    /// Rows of the block fetched/decoded: from `row_a` (block-relative).
    pub(super) row_a: u64,
    pub(super) rows: u64,
    /// Bytes of the file to fetch; `None` for a block missing from a sparse file.
    pub(super) range: Option<std::ops::Range<u64>>,
}

/// The blocks a window read needs, in plane, row, column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WindowPlan {
    /// First and last block column and row the window touches.
    pub(super) c0: u64,
    pub(super) c1: u64,
    pub(super) r0: u64,
    pub(super) r1: u64,
    pub(super) jobs: Vec<Job>,
    /// Whether each range is a whole block (which may be fetched ahead and cached), or
    /// only the needed rows of an uncompressed block.
    pub(super) whole_blocks: bool,
}

/// Checks that `window` lies inside `im`, that a band of it as samples of `sample_size`
/// bytes stays within [`MAX_WINDOW_BYTES`], and that its blocks can be decoded.
pub(super) fn check_read(
    uri: &str,
    im: &Image,
    window: Window,
    sample_size: usize,
) -> Result<(), CogError> {
    if window.is_empty()
        || window
            .col_off
            .checked_add(window.width)
            .is_none_or(|e| e > im.width)
        || window
            .row_off
            .checked_add(window.height)
            .is_none_or(|e| e > im.height)
    {
        return Err(CogError::request(
            uri,
            format!(
                "window {},{} {}x{} is empty or not inside the {}x{} image",
                window.col_off, window.row_off, window.width, window.height, im.width, im.height
            ),
        ));
    }
    let out_bytes = window.width as u128 * window.height as u128 * sample_size as u128;
    if out_bytes > MAX_WINDOW_BYTES as u128 {
        return Err(CogError::too_large(
            uri,
            format!(
                "a window of {}x{} pixels needs {out_bytes} bytes (limit {MAX_WINDOW_BYTES} per band)",
                window.width, window.height
            ),
        ));
    }
    check_codec(uri, im)
}

/// Checks that the blocks of `im` can be decoded: a known compression and predictor, the
/// floating-point predictor only on floating-point samples.
pub(super) fn check_codec(uri: &str, im: &Image) -> Result<(), CogError> {
    if !codec::can_decode(im.compression) {
        return Err(CogError::unsupported(
            uri,
            format!(
                "compression {} (code {})",
                codec::compression_name(im.compression),
                im.compression
            ),
        ));
    }
    if !matches!(im.predictor, 1..=3) {
        return Err(CogError::unsupported(
            uri,
            format!("predictor {}", im.predictor),
        ));
    }
    if im.predictor == 3 && !im.stype.is_some_and(|s| s.is_float()) {
        return Err(CogError::invalid(
            uri,
            "floating-point predictor on integer samples",
        ));
    }
    Ok(())
}

/// Plans the read of `window` (checked with [`check_read`]) of the `planes` (0-based bands)
/// of `im` whose block table is `blocks`. A block whose byte count is implausible for its
/// pixels is an error naming it.
pub(super) fn plan_window(
    uri: &str,
    im: &Image,
    blocks: &Blocks,
    window: Window,
    planes: &[usize],
) -> Result<WindowPlan, CogError> {
    let (c0, c1) = (
        window.col_off / im.block_w,
        (window.col_off + window.width - 1) / im.block_w,
    );
    let (r0, r1) = (
        window.row_off / im.block_h,
        (window.row_off + window.height - 1) / im.block_h,
    );
    // Which planes' blocks are needed.
    let block_planes: Vec<usize> = if im.planar {
        let mut p = planes.to_vec();
        p.sort_unstable();
        p.dedup();
        p
    } else {
        vec![0]
    };
    let row_bytes = im.row_bytes();
    let uncompressed = im.compression == compression::NONE;
    let mut jobs = Vec::new();
    for &plane in &block_planes {
        for r in r0..=r1 {
            for c in c0..=c1 {
                let idx = plane as u64 * im.blocks_per_plane() + r * im.across + c;
                let (off, cnt) = (blocks.offsets[idx as usize], blocks.counts[idx as usize]);
                let rows_in = im.rows_in_block(r);
                let raw_len = rows_in * row_bytes as u64;
                let (mut row_a, mut rows) = (0, rows_in);
                let range = if off == 0 || cnt == 0 {
                    None
                } else if uncompressed && im.predictor == 1 {
                    // Only the rows the window needs.
                    let top = r * im.block_h;
                    row_a = window.row_off.max(top) - top;
                    let row_b = (window.row_off + window.height).min(top + rows_in) - top;
                    rows = row_b - row_a;
                    let a = off + row_a * row_bytes as u64;
                    let b = off + (row_b * row_bytes as u64).min(cnt);
                    Some(a..b.max(a))
                } else {
                    if cnt > im.max_stored_bytes(r) {
                        return Err(CogError::invalid(
                            uri,
                            format!("block {idx} claims {cnt} bytes for {raw_len} bytes of pixels"),
                        ));
                    }
                    Some(
                        off..off.checked_add(cnt).ok_or_else(|| {
                            CogError::invalid(uri, format!("block {idx} offset overflows"))
                        })?,
                    )
                };
                jobs.push(Job {
                    plane,
                    r,
                    c,
                    row_a,
                    rows,
                    range,
                });
            }
        }
    }
    Ok(WindowPlan {
        c0,
        c1,
        r0,
        r1,
        jobs,
        whole_blocks: !(uncompressed && im.predictor == 1),
    })
}

/// Block `i` of `im` (planes one after another, each row-major, as the block table is),
/// whose table is `blocks`; `None` past the last block.
pub(super) fn block_info(im: &Image, blocks: &Blocks, i: usize) -> Option<BlockInfo> {
    let (offset, count) = (*blocks.offsets.get(i)?, *blocks.counts.get(i)?);
    let per_plane = (im.blocks_per_plane() as usize).max(1);
    let k = (i % per_plane) as u64;
    let (col, row) = ((k % im.across) * im.block_w, (k / im.across) * im.block_h);
    Some(BlockInfo {
        window: Window::new(
            col,
            row,
            im.block_w.min(im.width - col),
            im.block_h.min(im.height - row),
        ),
        plane: i / per_plane,
        offset,
        bytes: if offset == 0 { 0 } else { count },
    })
}

impl CogReader {
    /// The blocks of `overview` (0 = full resolution): pixel window (clipped to the image),
    /// plane (band index for planar files, else 0), and byte range in the file (empty for
    /// blocks missing from a sparse file). Row-major per plane.
    pub fn block_layout(&self, overview: usize) -> Result<Vec<BlockInfo>, CogError> {
        let im = self.level(overview)?;
        let b = self.blocks(im)?;
        Ok((0..b.offsets.len())
            .filter_map(|i| block_info(im, &b, i))
            .collect())
    }

    /// The block table of `im`, read from its IFD on first use and kept.
    pub(super) fn blocks(&self, im: &Image) -> Result<Arc<Blocks>, CogError> {
        let mut g = im.blocks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = &*g {
            return Ok(b.clone());
        }
        let file = &self.files[im.file];
        let tr = tiff::Reader::new(&file.cache, file.header);
        let (ot, ct) = if im.tiled {
            (tag::TILE_OFFSETS, tag::TILE_BYTE_COUNTS)
        } else {
            (tag::STRIP_OFFSETS, tag::STRIP_BYTE_COUNTS)
        };
        let planes = if im.planar { im.spp as u64 } else { 1 };
        let expected = im
            .blocks_per_plane()
            .checked_mul(planes)
            .ok_or_else(|| CogError::invalid(&file.uri, "block count overflows"))?;
        let oe = im.ifd.get(ot).ok_or_else(|| {
            CogError::invalid(
                &file.uri,
                format!("IFD at offset {} has no block offsets", im.ifd.offset),
            )
        })?;
        let ce = im.ifd.get(ct).ok_or_else(|| {
            CogError::invalid(
                &file.uri,
                format!("IFD at offset {} has no block byte counts", im.ifd.offset),
            )
        })?;
        if oe.count < expected || ce.count < expected {
            return Err(CogError::invalid(
                &file.uri,
                format!(
                    "IFD at offset {}: {} block offsets and {} byte counts for {expected} blocks",
                    im.ifd.offset, oe.count, ce.count
                ),
            ));
        }
        let mut offsets = tr.u64s(oe)?;
        let mut counts = tr.u64s(ce)?;
        offsets.truncate(expected as usize);
        counts.truncate(expected as usize);
        let per_plane = im.blocks_per_plane().max(1);
        let mut order: Vec<std::ops::Range<u64>> = offsets
            .iter()
            .zip(&counts)
            .enumerate()
            .filter_map(|(i, (&off, &cnt))| {
                let r = (i as u64 % per_plane) / im.across.max(1);
                let plausible = off != 0 && cnt != 0 && cnt <= im.max_stored_bytes(r);
                plausible
                    .then(|| Some(off..off.checked_add(cnt)?))
                    .flatten()
            })
            .collect();
        order.sort_by_key(|r| (r.start, r.end));
        order.dedup();
        let b = Arc::new(Blocks {
            offsets,
            counts,
            order,
        });
        *g = Some(b.clone());
        Ok(b)
    }
}
