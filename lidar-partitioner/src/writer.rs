//! Writing complete LAS/LAZ files from a source of raw records, atomically through
//! [`cloud::Store::put_reader`].
//!
//! The output keeps the input's header (version, point format, scales/offsets, system and
//! software ids, GUID, global encoding, dates, user-defined header bytes), its VLRs and
//! EVLRs (CRS, extra bytes, waveform descriptors and data) and the bytes between VLRs and
//! points; point counts, return counts, bounds and offsets are recomputed. The LASzip VLR is
//! dropped and, for LAZ output, a new one is added (and the format byte's compression bit
//! set); COPC records are dropped (re-tiled points are no longer a COPC octree).

use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::Path;

use cloud::Store;
use rayon::prelude::*;

use crate::error::{PartitionError, Result};
use crate::format::{Header, OutputHeader, PointFormat, Vlr, le_i32};
use crate::reader::LasMeta;

/// Points per LAZ chunk (LASzip's default).
pub(crate) const LAZ_CHUNK: u64 = 50_000;
/// Records per block when streaming LAS output.
const LAS_BLOCK_POINTS: u64 = 1 << 17;

/// A source of the records of one output file, in output order, flags already applied.
pub(crate) trait RecordSource: Sync {
    /// Number of records.
    fn len(&self) -> u64;
    /// Writes records `start..start + out.len() / record_len` into `out`.
    fn fill(&self, start: u64, out: &mut [u8]) -> Result<()>;
}

/// Records held in a slice.
pub(crate) struct SliceRecords<'a> {
    pub data: &'a [u8],
    pub rec: usize,
}

impl RecordSource for SliceRecords<'_> {
    fn len(&self) -> u64 {
        (self.data.len() / self.rec) as u64
    }
    fn fill(&self, start: u64, out: &mut [u8]) -> Result<()> {
        let a = start as usize * self.rec;
        out.copy_from_slice(&self.data[a..a + out.len()]);
        Ok(())
    }
}

/// Counts and raw bounds of a set of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stats {
    pub n: u64,
    pub min: [i32; 3],
    pub max: [i32; 3],
    /// Records by return number 1–15.
    pub returns: [u64; 15],
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            n: 0,
            min: [i32::MAX; 3],
            max: [i32::MIN; 3],
            returns: [0; 15],
        }
    }
}

impl Stats {
    #[inline]
    pub fn add(&mut self, xyz: [i32; 3], return_number: u8) {
        self.n += 1;
        for (a, &v) in xyz.iter().enumerate() {
            self.min[a] = self.min[a].min(v);
            self.max[a] = self.max[a].max(v);
        }
        if (1..=15).contains(&return_number) {
            self.returns[return_number as usize - 1] += 1;
        }
    }

    pub fn merge(mut self, o: &Stats) -> Stats {
        self.n += o.n;
        for a in 0..3 {
            self.min[a] = self.min[a].min(o.min[a]);
            self.max[a] = self.max[a].max(o.max[a]);
        }
        for r in 0..15 {
            self.returns[r] += o.returns[r];
        }
        self
    }

    /// Stats of raw records (`rec` bytes each) of format `fmt`.
    pub fn scan(data: &[u8], rec: usize, fmt: PointFormat) -> Stats {
        let mask = fmt.return_number_mask();
        data.par_chunks(rec * 4096)
            .map(|block| {
                let mut s = Stats::default();
                for r in block.chunks_exact(rec) {
                    s.add([le_i32(r, 0), le_i32(r, 4), le_i32(r, 8)], r[14] & mask);
                }
                s
            })
            .reduce(Stats::default, |a, b| a.merge(&b))
    }

    /// Scaled header bounds (min, max); zeros when empty.
    pub fn bounds(&self, h: &Header) -> ([f64; 3], [f64; 3]) {
        if self.n == 0 {
            return ([0.0; 3], [0.0; 3]);
        }
        let mut min = [0.0; 3];
        let mut max = [0.0; 3];
        for a in 0..3 {
            min[a] = h.scaled(a, self.min[a]);
            max[a] = h.scaled(a, self.max[a]);
        }
        (min, max)
    }
}

/// What was written.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub bytes: u64,
    pub stats: Stats,
}

/// The VLRs and EVLRs an output keeps.
fn kept_records(meta: &LasMeta) -> (Vec<&Vlr>, Vec<&Vlr>) {
    let vlrs = meta
        .vlrs
        .iter()
        .filter(|v| !v.is_laszip() && !v.is_copc())
        .collect();
    let evlrs = meta.evlrs.iter().filter(|v| !v.is_copc()).collect();
    (vlrs, evlrs)
}

/// Header + VLRs + gap, given the point data and EVLR layout.
fn prefix_bytes(
    meta: &LasMeta,
    vlrs: &[&Vlr],
    evlrs: &[&Vlr],
    stats: &Stats,
    compressed: bool,
    point_data_len: u64,
    uri: &str,
) -> Result<Vec<u8>> {
    let h = &meta.header;
    let vlr_bytes: usize = vlrs.iter().map(|v| v.vlr_len()).sum();
    let prefix_len = h.header_size() as usize + vlr_bytes + meta.gap.len();
    let offset_to_points =
        u32::try_from(prefix_len).map_err(|_| PartitionError::ResourceLimit {
            uri: uri.to_string(),
            message: format!("{prefix_len} bytes of header and VLRs do not fit a LAS offset"),
        })?;
    let points_end = prefix_len as u64 + point_data_len;
    let mut start_of_waveform = 0;
    let mut at = points_end;
    for e in evlrs {
        if e.is_waveform_data() && start_of_waveform == 0 {
            start_of_waveform = at;
        }
        at += crate::format::EVLR_HEADER as u64 + e.data.len() as u64;
    }
    let (min, max) = stats.bounds(h);
    let out = OutputHeader {
        compressed,
        offset_to_points,
        number_of_vlrs: vlrs.len() as u32,
        point_count: stats.n,
        returns: stats.returns,
        min,
        max,
        start_of_waveform,
        start_of_first_evlr: if evlrs.is_empty() { 0 } else { points_end },
        number_of_evlrs: evlrs.len() as u32,
    };
    let mut b = h.for_output(&out);
    for v in vlrs {
        v.write_vlr(&mut b);
    }
    b.extend_from_slice(&meta.gap);
    Ok(b)
}

fn evlr_bytes(evlrs: &[&Vlr]) -> Vec<u8> {
    let mut b = Vec::new();
    for e in evlrs {
        e.write_evlr(&mut b);
    }
    b
}

/// Writes a complete file to `uri`: LAS, or LAZ when `compressed`.
///
/// `stats` must describe `src` when given (LAS output needs them before the first byte; it
/// scans `src` once more when they are not given). `spill` puts the compressed LAZ body in
/// a temporary file in that directory instead of memory.
pub(crate) fn write_file(
    store: &Store,
    uri: &str,
    meta: &LasMeta,
    src: &dyn RecordSource,
    stats: Option<Stats>,
    compressed: bool,
    spill: Option<&Path>,
) -> Result<Written> {
    if compressed {
        write_laz(store, uri, meta, src, spill)
    } else {
        let stats = match stats {
            Some(s) => s,
            None => scan_source(meta, src)?,
        };
        write_las(store, uri, meta, src, stats)
    }
}

fn scan_source(meta: &LasMeta, src: &dyn RecordSource) -> Result<Stats> {
    let rec = meta.header.record_len() as usize;
    let fmt = meta.header.point_format();
    let n = src.len();
    let mut buf = vec![0u8; LAS_BLOCK_POINTS.min(n) as usize * rec];
    let mut stats = Stats::default();
    let mut at = 0;
    while at < n {
        let k = LAS_BLOCK_POINTS.min(n - at);
        let out = &mut buf[..k as usize * rec];
        src.fill(at, out)?;
        stats = stats.merge(&Stats::scan(out, rec, fmt));
        at += k;
    }
    Ok(stats)
}

/// Streams prefix, records and suffix to a reader for `put_reader`, keeping the first
/// source error so that it can be reported as itself.
struct LasStream<'a> {
    parts: [Cursor<Vec<u8>>; 2],
    src: &'a dyn RecordSource,
    rec: usize,
    next: u64,
    buf: Vec<u8>,
    buf_pos: usize,
    stage: u8,
    error: Option<PartitionError>,
}

impl Read for LasStream<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.stage {
                0 => {
                    let n = self.parts[0].read(out)?;
                    if n > 0 {
                        return Ok(n);
                    }
                    self.stage = 1;
                }
                1 => {
                    if self.buf_pos < self.buf.len() {
                        let n = out.len().min(self.buf.len() - self.buf_pos);
                        out[..n].copy_from_slice(&self.buf[self.buf_pos..self.buf_pos + n]);
                        self.buf_pos += n;
                        return Ok(n);
                    }
                    let total = self.src.len();
                    if self.next >= total {
                        self.stage = 2;
                        continue;
                    }
                    let left = (total - self.next) as usize;
                    // Whole records straight into the caller's buffer when it holds some;
                    // else one record through our buffer.
                    let direct = (out.len() / self.rec).min(left);
                    let result = if direct > 0 {
                        self.src
                            .fill(self.next, &mut out[..direct * self.rec])
                            .map(|()| direct)
                    } else {
                        self.buf.resize(self.rec, 0);
                        self.buf_pos = 0;
                        self.src.fill(self.next, &mut self.buf).map(|()| 0)
                    };
                    match result {
                        Ok(k) => {
                            self.next += if direct > 0 { k as u64 } else { 1 };
                            if k > 0 {
                                return Ok(k * self.rec);
                            }
                        }
                        Err(e) => {
                            let msg = e.to_string();
                            self.error = Some(e);
                            return Err(std::io::Error::other(msg));
                        }
                    }
                }
                _ => return self.parts[1].read(out),
            }
        }
    }
}

fn write_las(
    store: &Store,
    uri: &str,
    meta: &LasMeta,
    src: &dyn RecordSource,
    stats: Stats,
) -> Result<Written> {
    let rec = meta.header.record_len() as usize;
    let (vlrs, evlrs) = kept_records(meta);
    let data_len = src.len() * rec as u64;
    let prefix = prefix_bytes(meta, &vlrs, &evlrs, &stats, false, data_len, uri)?;
    let suffix = evlr_bytes(&evlrs);
    let mut stream = LasStream {
        parts: [Cursor::new(prefix), Cursor::new(suffix)],
        src,
        rec,
        next: 0,
        buf: Vec::new(),
        buf_pos: 0,
        stage: 0,
        error: None,
    };
    match store.put_reader(uri, &mut stream) {
        Ok(bytes) => Ok(Written { bytes, stats }),
        Err(e) => Err(stream.error.take().unwrap_or(PartitionError::Store(e))),
    }
}

/// The compressed point data of a LAZ file: exact-size chunks in memory, or a temporary
/// file.
enum Body {
    Memory(Vec<Vec<u8>>),
    File(std::fs::File, tempfile::TempPath),
}

impl Body {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Body::Memory(v) => {
                v.push(data.to_vec());
                Ok(())
            }
            Body::File(f, p) => f
                .write_all(data)
                .map_err(|e| PartitionError::io(p.display(), e)),
        }
    }
}

/// Reads a list of byte blocks in order.
struct Blocks {
    blocks: std::vec::IntoIter<Vec<u8>>,
    current: Cursor<Vec<u8>>,
}

impl Read for Blocks {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.current.read(out)?;
            if n > 0 || out.is_empty() {
                return Ok(n);
            }
            match self.blocks.next() {
                Some(b) => self.current = Cursor::new(b),
                None => return Ok(0),
            }
        }
    }
}

fn laz_vlr_for(h: &Header) -> Result<laz::LazVlr> {
    laz::LazVlrBuilder::default()
        .with_point_format(h.point_format().id(), h.extra_bytes())
        .map(|b| b.with_fixed_chunk_size(LAZ_CHUNK as u32).build())
        .map_err(|e| {
            PartitionError::Internal(format!("no LASzip layout for the point format: {e}"))
        })
}

fn write_laz(
    store: &Store,
    uri: &str,
    meta: &LasMeta,
    src: &dyn RecordSource,
    spill: Option<&Path>,
) -> Result<Written> {
    let h = &meta.header;
    let rec = h.record_len() as usize;
    let fmt = h.point_format();
    let laz_vlr = laz_vlr_for(h)?;
    if laz_vlr.items_size() as usize != rec {
        return Err(PartitionError::Internal(format!(
            "LASzip items of {} bytes for {rec}-byte records",
            laz_vlr.items_size()
        )));
    }
    let n = src.len();
    let n_chunks = n.div_ceil(LAZ_CHUNK);
    let mut body = match spill {
        None => Body::Memory(Vec::with_capacity(n_chunks as usize)),
        Some(dir) => {
            let t = tempfile::NamedTempFile::new_in(dir)
                .map_err(|e| PartitionError::io(dir.display(), e))?;
            let (f, p) = t.into_parts();
            Body::File(f, p)
        }
    };
    let mut table = laz::laszip::ChunkTable::with_capacity(n_chunks as usize);
    let mut stats = Stats::default();
    let batch = (rayon::current_num_threads() * 2).max(2) as u64;
    let mut c = 0u64;
    while c < n_chunks {
        let end = (c + batch).min(n_chunks);
        let done: Vec<Result<(crate::pool::Buf, Stats, u64)>> = (c..end)
            .into_par_iter()
            .map(|k| {
                let first = k * LAZ_CHUNK;
                let pts = LAZ_CHUNK.min(n - first);
                let mut raw = crate::pool::Buf::new(pts as usize * rec);
                src.fill(first, &mut raw)?;
                let s = Stats::scan(&raw, rec, fmt);
                let mut comp = crate::pool::Buf::with_capacity(raw.len() / 2);
                laz::laszip::parallel::par_compress(comp.vec(), &raw, &laz_vlr).map_err(|e| {
                    PartitionError::Internal(format!("LAZ compression failed: {e}"))
                })?;
                Ok((comp, s, pts))
            })
            .collect();
        for r in done {
            let (comp, s, pts) = r?;
            body.append(&comp)?;
            table.push(laz::laszip::ChunkTableEntry {
                point_count: pts,
                byte_count: comp.len() as u64,
            });
            stats = stats.merge(&s);
        }
        c = end;
    }
    let body_len: u64 = table.as_ref().iter().map(|e| e.byte_count).sum();
    let mut table_bytes = Vec::new();
    table
        .write_to(&mut table_bytes, &laz_vlr)
        .map_err(|e| PartitionError::Internal(format!("writing the LAZ chunk table: {e}")))?;

    let (mut vlrs, evlrs) = kept_records(meta);
    let mut laz_data = Vec::new();
    laz_vlr
        .write_to(&mut laz_data)
        .map_err(|e| PartitionError::Internal(format!("writing the LASzip VLR: {e}")))?;
    let laszip = Vlr::new(
        laz::LazVlr::USER_ID,
        laz::LazVlr::RECORD_ID,
        laz::LazVlr::DESCRIPTION,
        laz_data,
    );
    vlrs.push(&laszip);
    let point_data_len = 8 + body_len + table_bytes.len() as u64;
    let prefix = prefix_bytes(meta, &vlrs, &evlrs, &stats, true, point_data_len, uri)?;
    let table_offset = prefix.len() as u64 + 8 + body_len;
    let mut head = prefix;
    head.extend_from_slice(&(table_offset as i64).to_le_bytes());
    let mut tail = table_bytes;
    tail.extend_from_slice(&evlr_bytes(&evlrs));
    let result = match body {
        Body::Memory(v) => {
            let blocks = Blocks {
                blocks: v.into_iter(),
                current: Cursor::new(Vec::new()),
            };
            store.put_reader(
                uri,
                Cursor::new(head).chain(blocks).chain(Cursor::new(tail)),
            )
        }
        Body::File(mut f, p) => {
            f.seek(SeekFrom::Start(0))
                .map_err(|e| PartitionError::io(p.display(), e))?;
            let r = store.put_reader(
                uri,
                Cursor::new(head)
                    .chain(std::io::BufReader::with_capacity(1 << 20, f))
                    .chain(Cursor::new(tail)),
            );
            drop(p);
            r
        }
    };
    let bytes = result?;
    Ok(Written { bytes, stats })
}
