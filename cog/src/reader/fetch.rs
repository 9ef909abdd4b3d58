//! Fetching blocks: the byte ranges a window plan names, in one `Store::get_ranges` call
//! (coalesced and capped by the store), with read-ahead of the blocks that follow in the
//! file and a bounded cache of them; a file held in memory is sliced instead. [`Block`] and
//! [`CogReader::fetch_block`] give the compressed bytes of one block, apart from decoding.

use std::collections::BTreeMap;

use bytes::Bytes;
use cloud::StoreError;

use super::image::Image;
use super::plan::{Blocks, WindowPlan, block_info};
use super::{
    BlockInfo, CogReader, MAX_WINDOW_BYTES, READ_AHEAD_BYTES, READ_AHEAD_CACHE_BYTES,
    READ_AHEAD_MIN_BYTES,
};
use crate::error::CogError;
use crate::raster::Window;

/// One stored block (tile or strip) as it is in the file: its place and its compressed
/// bytes, fetched by [`CogReader::fetch_block`] and decoded by [`CogReader::decode_block`].
/// Apart, the two steps let a caller fetch on one thread pool and decode on another, or
/// keep compressed blocks (as async-tiff does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The overview level (0 = full resolution) the block belongs to.
    pub overview: usize,
    /// Where the block is: pixels, plane, byte range (see [`CogReader::block_layout`]).
    pub info: BlockInfo,
    /// The block's bytes as stored (compressed, predicted); empty for a missing block.
    pub data: Bytes,
}

/// Compressed blocks fetched ahead of need, keyed by `(file index, offset)`, bounded by
/// [`READ_AHEAD_CACHE_BYTES`] (oldest evicted first).
#[derive(Debug, Default)]
pub(super) struct ReadAhead {
    blocks: BTreeMap<(usize, u64), Bytes>,
    fifo: std::collections::VecDeque<(usize, u64)>,
    bytes: u64,
}

impl ReadAhead {
    /// The bytes of `r` of file `file` when one cached block holds all of them.
    fn get(&self, file: usize, r: &std::ops::Range<u64>) -> Option<Bytes> {
        let ((f, s), b) = self.blocks.range(..=(file, r.start)).next_back()?;
        if *f != file {
            return None;
        }
        let a = r.start.checked_sub(*s)?;
        let e = r.end.checked_sub(*s)?;
        (a <= e && e <= b.len() as u64).then(|| b.slice(a as usize..e as usize))
    }

    /// Whether a block starting at `start` of file `file` is cached.
    fn has(&self, file: usize, start: u64) -> bool {
        self.blocks.contains_key(&(file, start))
    }

    fn insert(&mut self, file: usize, start: u64, data: Bytes) {
        let len = data.len() as u64;
        if len > READ_AHEAD_CACHE_BYTES {
            return;
        }
        if let Some(old) = self.blocks.insert((file, start), data) {
            self.bytes -= old.len() as u64;
            self.fifo.retain(|k| *k != (file, start));
        }
        self.bytes += len;
        self.fifo.push_back((file, start));
        while self.bytes > READ_AHEAD_CACHE_BYTES {
            let Some(k) = self.fifo.pop_front() else {
                break;
            };
            if let Some(old) = self.blocks.remove(&k) {
                self.bytes -= old.len() as u64;
            }
        }
    }
}

/// Block bytes fetched ahead for several windows: `(file offset, bytes)` sorted by offset.
pub(super) struct Prefetched(Vec<(u64, Bytes)>);

impl Prefetched {
    /// The bytes of `r` when one fetched block holds all of them.
    fn slice(&self, r: &std::ops::Range<u64>) -> Option<Bytes> {
        let i = self
            .0
            .partition_point(|(s, _)| *s <= r.start)
            .checked_sub(1)?;
        let (s, b) = &self.0[i];
        let (a, e) = ((r.start - s) as usize, (r.end.checked_sub(*s)?) as usize);
        (a <= e && e <= b.len()).then(|| b.slice(a..e))
    }
}

impl CogReader {
    /// Fetches the stored bytes of block `index` of `overview` (an index into
    /// [`CogReader::block_layout`]), without decoding them. A block missing from a sparse
    /// file has no bytes.
    pub fn fetch_block(&self, overview: usize, index: usize) -> Result<Block, CogError> {
        let im = self.level(overview)?;
        let blocks = self.blocks(im)?;
        let info = block_info(im, &blocks, index).ok_or_else(|| {
            CogError::request(
                self.uri(),
                format!(
                    "block {index} does not exist (overview {overview} has {} blocks)",
                    blocks.offsets.len()
                ),
            )
        })?;
        if info.bytes == 0 {
            return Ok(Block {
                overview,
                info,
                data: Bytes::new(),
            });
        }
        // The file that holds the block: the image's own, or its external `.ovr` overviews.
        let file = &self.files[im.file];
        let r = info.window.row_off / im.block_h;
        if info.bytes > im.max_stored_bytes(r) {
            let raw = im.rows_in_block(r) * im.row_bytes() as u64;
            return Err(CogError::invalid(
                &file.uri,
                format!(
                    "block {index} claims {} bytes for {raw} bytes of pixels",
                    info.bytes
                ),
            ));
        }
        let end = info.offset.checked_add(info.bytes).ok_or_else(|| {
            CogError::invalid(&file.uri, format!("block {index} offset overflows"))
        })?;
        let range = info.offset..end;
        let data = match &file.mem {
            Some(mem) => slice_mem(&file.uri, mem, &range)?,
            None => {
                let mut got = self.fetch_ranges(im.file, &file.uri, &blocks, &[range], false)?;
                got.pop()
                    .ok_or_else(|| CogError::invalid(&file.uri, "the store returned no range"))?
            }
        };
        Ok(Block {
            overview,
            info,
            data,
        })
    }

    /// The bytes of every block `plan` names, one entry per job (`None` for blocks missing
    /// from a sparse file): sliced from a file in memory, taken from `pre` when it holds
    /// them all, else fetched with [`CogReader::fetch_ranges`].
    pub(super) fn fetch_plan(
        &self,
        im: &Image,
        blocks: &Blocks,
        plan: &WindowPlan,
        pre: Option<&Prefetched>,
    ) -> Result<Vec<Option<Bytes>>, CogError> {
        let file = &self.files[im.file];
        let uri = file.uri.as_str();
        let ranges: Vec<std::ops::Range<u64>> =
            plan.jobs.iter().filter_map(|j| j.range.clone()).collect();
        let fetched = if ranges.is_empty() {
            Vec::new()
        } else if let Some(mem) = &file.mem {
            ranges
                .iter()
                .map(|r| slice_mem(uri, mem, r))
                .collect::<Result<Vec<_>, _>>()?
        } else if let Some(got) = pre.and_then(|p| {
            ranges
                .iter()
                .map(|r| p.slice(r))
                .collect::<Option<Vec<_>>>()
        }) {
            got
        } else {
            // Whole blocks (not row subsets of uncompressed ones) may be fetched ahead.
            self.fetch_ranges(im.file, uri, blocks, &ranges, plan.whole_blocks)?
        };
        let mut fetched = fetched.into_iter();
        Ok(plan
            .jobs
            .iter()
            .map(|j| j.range.as_ref().and_then(|_| fetched.next()))
            .collect())
    }

    /// Fetches, in one `get_ranges` call, every stored block of `plane` that the valid
    /// `windows` touch. `None` when there is nothing to fetch, the blocks would exceed
    /// [`MAX_WINDOW_BYTES`], or the fetch fails (each window then reads, and reports errors,
    /// on its own).
    pub(super) fn prefetch(
        &self,
        im: &Image,
        plane: usize,
        windows: &[Window],
    ) -> Result<Option<Prefetched>, CogError> {
        let file = &self.files[im.file];
        if file.mem.is_some() {
            return Ok(None);
        }
        let blocks = self.blocks(im)?;
        let plane = if im.planar { plane as u64 } else { 0 };
        let mut want = std::collections::BTreeSet::new();
        for w in windows {
            let inside = !w.is_empty()
                && w.col_off
                    .checked_add(w.width)
                    .is_some_and(|e| e <= im.width)
                && w.row_off
                    .checked_add(w.height)
                    .is_some_and(|e| e <= im.height);
            if !inside {
                continue;
            }
            for r in w.row_off / im.block_h..=(w.row_off + w.height - 1) / im.block_h {
                for c in w.col_off / im.block_w..=(w.col_off + w.width - 1) / im.block_w {
                    want.insert((r, c));
                }
            }
        }
        let mut ranges = Vec::with_capacity(want.len());
        let mut total = 0u64;
        for (r, c) in want {
            let idx = (plane * im.blocks_per_plane() + r * im.across + c) as usize;
            let (Some(&off), Some(&cnt)) = (blocks.offsets.get(idx), blocks.counts.get(idx)) else {
                continue;
            };
            if off == 0 || cnt == 0 || cnt > im.max_stored_bytes(r) {
                continue;
            }
            let Some(end) = off.checked_add(cnt) else {
                continue;
            };
            total = total.saturating_add(cnt);
            ranges.push(off..end);
        }
        if ranges.is_empty() || total > MAX_WINDOW_BYTES {
            return Ok(None);
        }
        ranges.sort_by_key(|r| (r.start, r.end));
        ranges.dedup();
        match self.store.get_ranges(&file.uri, &ranges) {
            Ok(got) => Ok(Some(Prefetched(
                ranges.iter().map(|r| r.start).zip(got).collect(),
            ))),
            Err(_) => Ok(None),
        }
    }

    /// Fetches `ranges` of file `file` (blocks of one image described by `blocks`) in one
    /// `get_ranges` call, serving what it can from the read-ahead cache. With `ahead`, each
    /// merged request is extended to the blocks that follow it in the file (gap at most the
    /// store's coalescing gap), up to as many bytes as that request fetches (at least one
    /// block or [`READ_AHEAD_MIN_BYTES`]; at most [`READ_AHEAD_BYTES`] in all), and only
    /// when this adds no request;
    /// those blocks go to the cache for later windows.
    fn fetch_ranges(
        &self,
        file: usize,
        uri: &str,
        blocks: &Blocks,
        ranges: &[std::ops::Range<u64>],
        ahead: bool,
    ) -> Result<Vec<Bytes>, CogError> {
        let lock = || self.ahead.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<Option<Bytes>> = {
            let cache = lock();
            ranges.iter().map(|r| cache.get(file, r)).collect()
        };
        let misses: Vec<std::ops::Range<u64>> = ranges
            .iter()
            .zip(&out)
            .filter(|(_, hit)| hit.is_none())
            .map(|(r, _)| r.clone())
            .collect();
        if misses.is_empty() {
            return Ok(out.into_iter().flatten().collect());
        }
        let extra = if ahead {
            self.read_ahead_ranges(file, blocks, &misses)
        } else {
            Vec::new()
        };
        let mut all = misses.clone();
        all.extend(extra.iter().cloned());
        let mut got = match self.store.get_ranges(uri, &all) {
            // Blocks fetched ahead are not needed: a failure may be theirs (e.g. a hostile
            // offset past the end), so the window's own blocks are fetched alone.
            Err(_) if !extra.is_empty() => {
                all.truncate(misses.len());
                self.store.get_ranges(uri, &all)
            }
            r => r,
        }
        .map_err(|e| match e {
            StoreError::RangePastEnd { size, .. } => CogError::invalid(
                uri,
                format!(
                    "block data lies past the end of the file{}",
                    size.map(|s| format!(" ({s} bytes)")).unwrap_or_default()
                ),
            ),
            e => CogError::store(uri, e),
        })?;
        if got.len() != all.len() {
            return Err(CogError::invalid(uri, "the store returned too few ranges"));
        }
        let fetched_ahead = got.split_off(misses.len());
        if !fetched_ahead.is_empty() {
            let mut cache = lock();
            for (r, b) in extra.iter().zip(fetched_ahead) {
                if b.len() as u64 == r.end - r.start {
                    cache.insert(file, r.start, b);
                }
            }
        }
        let mut got = got.into_iter();
        for slot in out.iter_mut().filter(|o| o.is_none()) {
            *slot = got.next();
        }
        out.into_iter()
            .map(|o| o.ok_or_else(|| CogError::invalid(uri, "the store returned too few ranges")))
            .collect()
    }

    /// The blocks to fetch ahead with `misses` (see [`CogReader::fetch_ranges`]).
    fn read_ahead_ranges(
        &self,
        file: usize,
        blocks: &Blocks,
        misses: &[std::ops::Range<u64>],
    ) -> Vec<std::ops::Range<u64>> {
        let opts = self.store.options();
        let plan = cloud::ranges::plan(misses, opts.coalesce_gap, opts.max_request);
        let mut extra = Vec::new();
        let mut total = 0u64;
        {
            let cache = self.ahead.lock().unwrap_or_else(|p| p.into_inner());
            for m in &plan {
                let run = (m.range.end - m.range.start).max(READ_AHEAD_MIN_BYTES);
                let mut taken = 0u64;
                let mut end = m.range.end;
                let first = blocks.order.partition_point(|b| b.start < end);
                for b in &blocks.order[first..] {
                    let len = b.end - b.start;
                    let fits_run = taken == 0 || taken + len <= run;
                    if b.start > end.saturating_add(opts.coalesce_gap)
                        || !fits_run
                        || total + len > READ_AHEAD_BYTES
                    {
                        break;
                    }
                    if misses.iter().any(|r| r.start < b.end && b.start < r.end) {
                        // Wanted anyway (a later merged request).
                        break;
                    }
                    if !cache.has(file, b.start) {
                        extra.push(b.clone());
                        taken += len;
                        total += len;
                    }
                    end = end.max(b.end);
                }
            }
        }
        if extra.is_empty() {
            return extra;
        }
        let mut all = misses.to_vec();
        all.extend(extra.iter().cloned());
        if cloud::ranges::plan(&all, opts.coalesce_gap, opts.max_request).len() > plan.len() {
            // Never more requests than the window needs.
            return Vec::new();
        }
        extra
    }
}

/// The bytes `r` of a file held in memory, or an error naming `uri` when they lie past its
/// end.
fn slice_mem(uri: &str, mem: &Bytes, r: &std::ops::Range<u64>) -> Result<Bytes, CogError> {
    let len = mem.len() as u64;
    if r.end > len {
        return Err(CogError::invalid(
            uri,
            format!(
                "block data {}..{} lies past the end of the file ({len} bytes)",
                r.start, r.end
            ),
        ));
    }
    Ok(mem.slice(r.start as usize..r.end as usize))
}
