//! The exact method: all points in memory as columns (x/y pairs apart from the other record
//! bytes, so the split reads 8 bytes a point), the split, then every tile gathered from the
//! columns in input order and written (LAS streamed, LAZ compressed chunk-parallel).
//!
//! Memory: the point records once (x/y plus the rest, N × record length), a u32 index per
//! point, and per tile its selection and output buffers: about 1.15–1.2 × the uncompressed
//! point data.

use std::sync::Mutex;

use cloud::{Ctx, Store};
use rayon::prelude::*;

use crate::error::{PartitionError, Result};
use crate::format::{Header, PointFormat, le_i32};
use crate::params::{Bounds, Method, TileInfo};
use crate::reader::{LAS_BATCH_POINTS, LasFile};
use crate::records::set_withheld;
use crate::split::{Leaves, RawBox, Tf};
use crate::tiles::{BUFFER_FLAG, Grown, deep_inside, margin, neighbours, scaled_box, stats_bounds};
use crate::writer::{RecordSource, Stats, write_file};

/// Calls `$f::<RL>(args)` with the rest length `$rl` (record length − 8) as a constant for
/// the standard formats' lengths (so that a record's copy is a few moves, not a `memcpy`
/// call), `$f::<0>` for other lengths (extra bytes).
macro_rules! with_rest_len {
    ($rl:expr, $f:ident ( $($arg:expr),* )) => {
        match $rl {
            12 => $f::<12>($($arg),*),
            18 => $f::<18>($($arg),*),
            20 => $f::<20>($($arg),*),
            22 => $f::<22>($($arg),*),
            26 => $f::<26>($($arg),*),
            28 => $f::<28>($($arg),*),
            30 => $f::<30>($($arg),*),
            _ => $f::<0>($($arg),*),
        }
    };
}

/// Every point's record split into x/y and the remaining bytes.
pub(crate) struct Columns {
    pub xy: Vec<[i32; 2]>,
    pub rest: Vec<u8>,
    /// Record length − 8.
    pub rl: usize,
}

/// User and system CPU seconds of this process so far (from `/proc/self/stat`), for the
/// phase timings in debug logs.
pub(crate) fn cpu_seconds() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (tick(11), tick(12))
}

/// Where and how tiles are written.
pub(crate) struct OutputPlan<'a> {
    pub store: &'a Store,
    pub dir: &'a str,
    pub stem: &'a str,
    pub laz: bool,
    /// URIs written so far (for clean-up on failure).
    pub written: &'a Mutex<Vec<String>>,
}

impl OutputPlan<'_> {
    pub fn uri(&self, index: usize) -> (String, String) {
        let name = crate::tiles::tile_name(self.stem, index, self.laz);
        (cloud::uri::join(self.dir, &name), name)
    }

    pub fn record(&self, uri: &str) {
        if let Ok(mut w) = self.written.lock() {
            w.push(uri.to_string());
        }
    }
}

/// Bytes the exact method holds for `n` records of `rec` bytes (records, index, scratch and
/// per-tile buffers).
pub(crate) fn memory_estimate(n: u64, rec: u64) -> u64 {
    n * rec + n * 6 + (96 << 20)
}

/// Reads every record into columns, in parallel batches. Returns the columns, the x/y box
/// and the raw z range.
pub(crate) fn load(file: &LasFile, ctx: &Ctx) -> Result<(Columns, RawBox, [i32; 2])> {
    let n = usize::try_from(file.point_count())
        .map_err(|_| PartitionError::input(file.uri(), "too many points for this machine"))?;
    let rec = file.header().record_len() as usize;
    let rl = rec - 8;
    // Zeroed allocations come straight from the kernel (no memset); the caller checked the
    // memory available.
    let mut xy = vec![[0i32; 2]; n];
    let mut rest = vec![0u8; n * rl];
    let progress = ctx.progress("read", n as u64);
    let batches = file.batches(LAS_BATCH_POINTS);
    let mut jobs = Vec::with_capacity(batches.len());
    {
        let (mut xs, mut rs): (&mut [[i32; 2]], &mut [u8]) = (&mut xy, &mut rest);
        for b in &batches {
            let (a, xt) = xs.split_at_mut(b.count as usize);
            let (r, rt) = rs.split_at_mut(b.count as usize * rl);
            jobs.push((b, a, r));
            xs = xt;
            rs = rt;
        }
    }
    let (bbox, zr) = jobs
        .into_par_iter()
        .map(|(b, xs, rs)| {
            let mut buf = crate::pool::Buf::new(b.count as usize * rec);
            file.read_batch(b, &mut buf)?;
            let found = with_rest_len!(rl, split_records(&buf, xs, rs, rl));
            progress.inc(b.count);
            Ok::<_, PartitionError>(found)
        })
        .try_reduce(
            || (RawBox::EMPTY, [i32::MAX, i32::MIN]),
            |a, b| Ok((a.0.merge(&b.0), [a.1[0].min(b.1[0]), a.1[1].max(b.1[1])])),
        )?;
    progress.finish();
    crate::pool::trim();
    Ok((Columns { xy, rest, rl }, bbox, zr))
}

/// Splits whole records `buf` into x/y pairs and the rest (`RL` bytes each, `rl` when `RL`
/// is 0); returns their x/y box and raw z range.
fn split_records<const RL: usize>(
    buf: &[u8],
    xs: &mut [[i32; 2]],
    rs: &mut [u8],
    rl: usize,
) -> (RawBox, [i32; 2]) {
    let rl = if RL == 0 { rl } else { RL };
    let mut bb = RawBox::EMPTY;
    let mut zr = [i32::MAX, i32::MIN];
    for ((r, p), q) in buf
        .chunks_exact(rl + 8)
        .zip(xs.iter_mut())
        .zip(rs.chunks_exact_mut(rl))
    {
        *p = [le_i32(r, 0), le_i32(r, 4)];
        bb.add(*p);
        q.copy_from_slice(&r[8..]);
        let z = le_i32(r, 8);
        zr = [zr[0].min(z), zr[1].max(z)];
    }
    (bb, zr)
}

/// Appends to `cols` the points of the `neighbours` files (indices from `cols.xy.len()` on)
/// that lie within `buffer` of the input's box `bbox`, in the input's coordinate integers;
/// a point equal, record for record, to an input point or to a point another neighbour lent
/// (files that overlap) is kept once. Returns how many were appended.
///
/// A neighbour must have the input's point format and record length, its scale, and offsets
/// a whole number of scale steps from the input's, so that its points are re-expressed
/// exactly; otherwise it is an error naming it.
pub(crate) fn load_neighbours(
    ctx: &Ctx,
    file: &LasFile,
    cols: &mut Columns,
    bbox: RawBox,
    neighbours: &[String],
    buffer: f64,
) -> Result<usize> {
    let h = file.header();
    let region = Grown::new(&bbox, buffer, h);
    let n_main = cols.xy.len();
    let rec = h.record_len() as usize;
    let lo = [
        h.scaled(0, bbox.min[0]) - buffer,
        h.scaled(1, bbox.min[1]) - buffer,
    ];
    let hi = [
        h.scaled(0, bbox.max[0]) + buffer,
        h.scaled(1, bbox.max[1]) + buffer,
    ];
    // Full records appended from earlier neighbours, to keep a point that two overlapping
    // neighbours both hold once (a file's own repeated points stay, as in a merge).
    let mut earlier: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    // Input points by position, built on the first neighbour point inside the input's box.
    let mut main_at: Option<std::collections::HashMap<[i32; 2], Vec<u32>>> = None;
    for uri in neighbours {
        let nb = LasFile::open(&ctx.store, uri)?;
        let nh = nb.header();
        if nh.point_format().id() != h.point_format().id() || nh.record_len() != h.record_len() {
            return Err(PartitionError::input(
                uri,
                format!(
                    "point format {} with {}-byte records differs from {}'s ({}, {} bytes): it cannot lend its points to that file's buffers",
                    nh.point_format().id(),
                    nh.record_len(),
                    file.uri(),
                    h.point_format().id(),
                    h.record_len()
                ),
            ));
        }
        // Outside the buffered box: nothing to read.
        let (nmin, nmax) = (nh.min(), nh.max());
        if nmax[0] < lo[0] || nmin[0] > hi[0] || nmax[1] < lo[1] || nmin[1] > hi[1] {
            continue;
        }
        let mut shift = [0i64; 3];
        for (a, shift) in shift.iter_mut().enumerate() {
            let steps = (nh.offset()[a] - h.offset()[a]) / h.scale()[a];
            if nh.scale()[a] != h.scale()[a] || (steps - steps.round()).abs() > 1e-6 {
                return Err(PartitionError::input(
                    uri,
                    format!(
                        "scale {:?} / offset {:?} cannot express {}'s points exactly (scale {:?}, offset {:?})",
                        nh.scale(),
                        nh.offset(),
                        file.uri(),
                        h.scale(),
                        h.offset()
                    ),
                ));
            }
            *shift = steps.round() as i64;
        }
        let batches = nb.batches(LAS_BATCH_POINTS);
        let progress = ctx.progress("read neighbour", nb.point_count());
        let kept: Vec<Vec<u8>> = batches
            .par_iter()
            .map(|b| {
                let mut buf = crate::pool::Buf::new(b.count as usize * rec);
                nb.read_batch(b, &mut buf)?;
                let mut out = Vec::new();
                for r in buf.chunks_exact(rec) {
                    let moved = [0usize, 4, 8].map(|at| i64::from(le_i32(r, at)));
                    let mut q = [0i32; 3];
                    let mut fits = true;
                    for a in 0..3 {
                        match i32::try_from(moved[a] + shift[a]) {
                            Ok(v) => q[a] = v,
                            Err(_) => fits = false,
                        }
                    }
                    if !fits || !region.contains([q[0], q[1]]) {
                        continue;
                    }
                    let mut v = r.to_vec();
                    for a in 0..3 {
                        v[4 * a..4 * a + 4].copy_from_slice(&q[a].to_le_bytes());
                    }
                    out.push(v);
                }
                progress.inc(b.count);
                Ok::<_, PartitionError>(out)
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        progress.finish();
        let mut appended = Vec::new();
        for v in kept {
            let p = [le_i32(&v, 0), le_i32(&v, 4)];
            if bbox.contains(p) {
                let index = main_at.get_or_insert_with(|| {
                    let mut m: std::collections::HashMap<[i32; 2], Vec<u32>> =
                        std::collections::HashMap::new();
                    for (i, q) in cols.xy[..n_main].iter().enumerate() {
                        m.entry(*q).or_default().push(i as u32);
                    }
                    m
                });
                let rl = cols.rl;
                let duplicate = index.get(&p).is_some_and(|is| {
                    is.iter()
                        .any(|&i| cols.rest[i as usize * rl..(i as usize + 1) * rl] == v[8..])
                });
                if duplicate {
                    continue;
                }
            }
            if earlier.contains(&v) {
                continue;
            }
            cols.xy.push(p);
            cols.rest.extend_from_slice(&v[8..]);
            appended.push(v);
        }
        if neighbours.len() > 1 {
            earlier.extend(appended);
        }
    }
    Ok(cols.xy.len() - n_main)
}

/// The records of one tile: selected indices (buffer ones flagged) gathered from columns.
struct ExactTile<'a> {
    cols: &'a Columns,
    sel: &'a [u32],
    fmt: PointFormat,
}

const FILL_CHUNK: usize = 8192;

impl RecordSource for ExactTile<'_> {
    fn len(&self) -> u64 {
        self.sel.len() as u64
    }

    fn fill(&self, start: u64, out: &mut [u8]) -> Result<()> {
        let rl = self.cols.rl;
        let rec = rl + 8;
        let sel = &self.sel[start as usize..start as usize + out.len() / rec];
        out.par_chunks_mut(rec * FILL_CHUNK)
            .zip(sel.par_chunks(FILL_CHUNK))
            .for_each(|(o, s)| with_rest_len!(rl, gather(self.cols, s, o, self.fmt)));
        Ok(())
    }
}

/// Writes the records `sel` (buffer ones flagged withheld) from the columns into `out`;
/// `RL` is the rest length as a constant, or 0.
fn gather<const RL: usize>(cols: &Columns, sel: &[u32], out: &mut [u8], fmt: PointFormat) {
    let rl = if RL == 0 { cols.rl } else { RL };
    for (r, &s) in out.chunks_exact_mut(rl + 8).zip(sel) {
        let i = (s & !BUFFER_FLAG) as usize;
        let p = cols.xy[i];
        r[0..4].copy_from_slice(&p[0].to_le_bytes());
        r[4..8].copy_from_slice(&p[1].to_le_bytes());
        r[8..].copy_from_slice(&cols.rest[i * rl..(i + 1) * rl]);
        set_withheld(r, fmt, s & BUFFER_FLAG != 0);
    }
}

/// Header stats of a selection, from the columns (z and the return byte sit at fixed
/// offsets of the rest).
fn selection_stats(cols: &Columns, sel: &[u32], fmt: PointFormat) -> Stats {
    let mask = fmt.return_number_mask();
    let rl = cols.rl;
    sel.par_chunks(1 << 14)
        .map(|ch| {
            let mut s = Stats::default();
            for &v in ch {
                let i = (v & !BUFFER_FLAG) as usize;
                let p = cols.xy[i];
                let r = &cols.rest[i * rl..i * rl + 7];
                s.add([p[0], p[1], le_i32(r, 0)], r[6] & mask);
            }
            s
        })
        .reduce(Stats::default, |a, b| a.merge(&b))
}

/// Tile `t`'s points in input order: its core points, and its buffer points flagged.
fn selection(
    t: usize,
    leaves: &Leaves,
    cands: &[Vec<u32>],
    nbrs: &[u32],
    grown: &Grown,
    xy: &[[i32; 2]],
    lent: std::ops::Range<u32>,
) -> (Vec<u32>, usize) {
    let (a, b) = leaves.ranges[t];
    let core = &leaves.order[a..b];
    let mut buf: Vec<u32> = Vec::new();
    for &l in nbrs {
        buf.extend(
            cands[l as usize]
                .iter()
                .copied()
                .filter(|&i| grown.contains(xy[i as usize])),
        );
    }
    // Points lent by neighbouring files.
    buf.extend(lent.filter(|&i| grown.contains(xy[i as usize])));
    let n = xy.len();
    let total = core.len() + buf.len();
    let nbuf = buf.len();
    if total < n / 256 {
        let mut v: Vec<u32> = core.to_vec();
        v.extend(buf.iter().map(|&i| i | BUFFER_FLAG));
        v.sort_unstable_by_key(|s| s & !BUFFER_FLAG);
        return (v, nbuf);
    }
    let words = n.div_ceil(64);
    let mut in_tile = vec![0u64; words];
    let mut is_buf = vec![0u64; words];
    for &i in core {
        in_tile[i as usize >> 6] |= 1 << (i & 63);
    }
    for &i in &buf {
        in_tile[i as usize >> 6] |= 1 << (i & 63);
        is_buf[i as usize >> 6] |= 1 << (i & 63);
    }
    drop(buf);
    let mut v = Vec::with_capacity(total);
    for (w, (&m, &f)) in in_tile.iter().zip(&is_buf).enumerate() {
        let mut m = m;
        while m != 0 {
            let bit = m.trailing_zeros();
            m &= m - 1;
            let i = (w as u32) << 6 | bit;
            v.push(if f >> bit & 1 != 0 {
                i | BUFFER_FLAG
            } else {
                i
            });
        }
    }
    (v, nbuf)
}

/// Runs the exact method on an open file; writes the tiles and returns their records and the
/// input's point bounds.
pub(crate) fn run(
    ctx: &Ctx,
    file: &LasFile,
    plan: &OutputPlan<'_>,
    method: Method,
    capacity: u64,
    buffer: f64,
    neighbour_files: &[String],
) -> Result<(Vec<TileInfo>, Bounds)> {
    let h: &Header = file.header();
    let started = std::time::Instant::now();
    let (mut cols, bbox, zr) = load(file, ctx)?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), cpu = ?cpu_seconds(), "loaded");
    let n_main = cols.xy.len();
    let lent = load_neighbours(ctx, file, &mut cols, bbox, neighbour_files, buffer)?;
    if lent > 0 {
        tracing::info!(
            points = lent,
            files = neighbour_files.len(),
            "buffer points from neighbouring files"
        );
    }
    let lent = u32::try_from(n_main)
        .ok()
        .zip(u32::try_from(n_main + lent).ok())
        .map(|(a, b)| a..b)
        .ok_or_else(|| {
            PartitionError::input(
                file.uri(),
                "too many points with the neighbours' for the exact method",
            )
        })?;
    let n = n_main as u64;
    let tf = Tf {
        scale: [h.scale()[0], h.scale()[1]],
        offset: [h.offset()[0], h.offset()[1]],
    };
    let clock = std::time::Instant::now();
    let leaves = match method {
        Method::Density => crate::split::density(
            &cols.xy[..n_main],
            bbox,
            &crate::split::boundaries(n, capacity),
            &tf,
        )?,
        Method::Grid => crate::split::grid(&cols.xy[..n_main], bbox, n.div_ceil(capacity), &tf)?,
    };
    tracing::debug!(tiles = leaves.ranges.len(), seconds = clock.elapsed().as_secs_f64(), cpu = ?cpu_seconds(), "split");
    let input_bounds = Bounds {
        min: [
            h.scaled(0, bbox.min[0]),
            h.scaled(1, bbox.min[1]),
            h.scaled(2, zr[0]),
        ],
        max: [
            h.scaled(0, bbox.max[0]),
            h.scaled(1, bbox.max[1]),
            h.scaled(2, zr[1]),
        ],
    };
    let k = leaves.ranges.len();
    let grown: Vec<Grown> = leaves
        .boxes
        .iter()
        .map(|b| Grown::new(b, buffer, h))
        .collect();
    let nbrs = neighbours(&leaves.boxes, &grown);
    let mut needed = vec![false; k];
    for list in &nbrs {
        for &l in list {
            needed[l as usize] = true;
        }
    }
    let m = margin(buffer, h);
    let cands: Vec<Vec<u32>> = (0..k)
        .into_par_iter()
        .map(|l| {
            if !needed[l] {
                return Vec::new();
            }
            let (a, b) = leaves.ranges[l];
            let bx = &leaves.boxes[l];
            leaves.order[a..b]
                .iter()
                .copied()
                .filter(|&i| !deep_inside(cols.xy[i as usize], bx, m))
                .collect()
        })
        .collect();
    tracing::debug!(seconds = clock.elapsed().as_secs_f64(), cpu = ?cpu_seconds(), "neighbours and candidates");

    let fmt = h.point_format();
    let progress = ctx.progress("write", k as u64);
    let write_tile = |t: usize| -> Result<TileInfo> {
        let (sel, nbuf) = selection(
            t,
            &leaves,
            &cands,
            &nbrs[t],
            &grown[t],
            &cols.xy,
            lent.clone(),
        );
        let src = ExactTile {
            cols: &cols,
            sel: &sel,
            fmt,
        };
        let stats = (!plan.laz).then(|| selection_stats(&cols, &sel, fmt));
        let (uri, name) = plan.uri(t);
        let written = write_file(plan.store, &uri, file.meta(), &src, stats, plan.laz, None)?;
        plan.record(&uri);
        progress.inc(1);
        let core = scaled_box(&leaves.boxes[t], h);
        let (a, b) = leaves.ranges[t];
        Ok(TileInfo {
            index: t,
            file: name,
            uri,
            core_bbox: core,
            buffered_bbox: core.grown(buffer),
            core_points: (b - a) as u64,
            buffer_points: nbuf as u64,
            bounds: stats_bounds(&written.stats, h),
            bytes: written.bytes,
        })
    };
    // LAS tiles are written in parallel (one per thread); LAZ tiles one after the other,
    // each compressed chunk-parallel, which keeps one tile's compressed body in memory
    // instead of one per thread.
    let tiles: Vec<TileInfo> = if plan.laz {
        (0..k).map(write_tile).collect::<Result<_>>()?
    } else {
        (0..k)
            .into_par_iter()
            .map(write_tile)
            .collect::<Result<_>>()?
    };
    progress.finish();
    tracing::debug!(seconds = clock.elapsed().as_secs_f64(), cpu = ?cpu_seconds(), "tiles written");
    Ok((tiles, input_bounds))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records of `rl + 8` bytes with every byte different from its neighbours'.
    fn records(n: usize, rl: usize) -> Vec<u8> {
        (0..n * (rl + 8))
            .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
            .collect()
    }

    /// The constant-length copies give what the general ones give, for every length the
    /// dispatch names, and the records survive the round trip through the columns.
    #[test]
    fn constant_lengths_copy_like_the_general_path() {
        let fmt = PointFormat::new(6).expect("format 6");
        for rl in [12, 18, 20, 22, 26, 28, 30, 33] {
            let n = 1000;
            let buf = records(n, rl);
            let mut xs = vec![[0i32; 2]; n];
            let mut rs = vec![0u8; n * rl];
            let found = with_rest_len!(rl, split_records(&buf, &mut xs, &mut rs, rl));
            let mut xs0 = vec![[0i32; 2]; n];
            let mut rs0 = vec![0u8; n * rl];
            let found0 = split_records::<0>(&buf, &mut xs0, &mut rs0, rl);
            assert_eq!((found, &xs, &rs), (found0, &xs0, &rs0), "rest length {rl}");
            let cols = Columns {
                xy: xs,
                rest: rs,
                rl,
            };
            // Every third record, those ≡ 1 (mod 3) flagged as buffer points.
            let sel: Vec<u32> = (0..n as u32)
                .step_by(3)
                .chain((1..n as u32).step_by(3).map(|i| i | BUFFER_FLAG))
                .collect();
            let mut out = vec![0u8; sel.len() * (rl + 8)];
            with_rest_len!(rl, gather(&cols, &sel, &mut out, fmt));
            let mut out0 = vec![0u8; sel.len() * (rl + 8)];
            gather::<0>(&cols, &sel, &mut out0, fmt);
            assert_eq!(out, out0, "rest length {rl}");
            let (byte, mask) = fmt.withheld_mask();
            for (r, &s) in out.chunks_exact(rl + 8).zip(&sel) {
                let i = (s & !BUFFER_FLAG) as usize;
                let mut want = buf[i * (rl + 8)..(i + 1) * (rl + 8)].to_vec();
                set_withheld(&mut want, fmt, s & BUFFER_FLAG != 0);
                assert_eq!(r, &want[..], "record {i}, rest length {rl}");
                assert_eq!(r[byte] & mask != 0, s & BUFFER_FLAG != 0);
            }
        }
    }
}
