//! Opening LAS/LAZ files from any [`cloud::Store`] URI and reading their raw point records in
//! batches (LAS: byte ranges; LAZ: chunks, decompressed independently, so in parallel).
//!
//! Every size a header asks for is checked against the file size before anything is
//! allocated; LAZ chunk tables are validated (chunk count, byte sizes, point counts) before
//! `laz` sees them, and each layered chunk's layer sizes are checked before decompression.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::panic::AssertUnwindSafe;

use bytes::Bytes;
use cloud::{Location, Store};
use rayon::prelude::*;

use crate::error::{PartitionError, Result};
use crate::format::{EVLR_HEADER, HEADER_SIZE_14, Header, Vlr, le_u16, le_u32, le_u64};
use crate::records::PointRecords;

/// Remote inputs up to this size are read into memory; larger ones go to a temporary file.
const MEMORY_DOWNLOAD_LIMIT: u64 = 16 << 20;
/// Remote downloads are fetched in windows of this many bytes (requests of `max_request`).
const DOWNLOAD_WINDOW: u64 = 64 << 20;
/// Largest VLR area (header end to point data) accepted.
const MAX_VLR_AREA: u64 = 256 << 20;
/// Points per batch when reading uncompressed LAS.
pub(crate) const LAS_BATCH_POINTS: u64 = 1 << 16;

/// Random-access bytes of an input: a local file (possibly a downloaded temporary copy) or
/// memory.
pub(crate) enum Source {
    File {
        file: File,
        len: u64,
        _temp: Option<tempfile::TempPath>,
    },
    Memory(Bytes),
}

impl Source {
    /// Opens `uri`: local files in place; remote objects in memory when small, else
    /// downloaded to a temporary file (`TMPDIR`) with bounded memory.
    pub(crate) fn open(store: &Store, uri: &str) -> Result<Source> {
        match Location::parse(uri)? {
            Location::Local(path) => {
                let file = File::open(&path).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        PartitionError::Store(cloud::StoreError::not_found_local(
                            cloud::Op::Get,
                            uri,
                        ))
                    } else {
                        PartitionError::io(uri, e)
                    }
                })?;
                let meta = file.metadata().map_err(|e| PartitionError::io(uri, e))?;
                if !meta.is_file() {
                    return Err(PartitionError::input(uri, "not a regular file"));
                }
                Ok(Source::File {
                    file,
                    len: meta.len(),
                    _temp: None,
                })
            }
            _ => {
                let size = store.head(uri)?;
                if size <= MEMORY_DOWNLOAD_LIMIT {
                    let bytes = store.get(uri)?;
                    if bytes.len() as u64 != size {
                        return Err(PartitionError::input(
                            uri,
                            format!(
                                "object changed while reading ({size} then {} bytes)",
                                bytes.len()
                            ),
                        ));
                    }
                    return Ok(Source::Memory(bytes));
                }
                let tmp = tempfile::NamedTempFile::new()
                    .map_err(|e| PartitionError::io(std::env::temp_dir().display(), e))?;
                let (mut file, path) = tmp.into_parts();
                let step = store.options().max_request.max(1 << 20);
                let mut at = 0u64;
                while at < size {
                    let end = (at + DOWNLOAD_WINDOW).min(size);
                    let ranges: Vec<_> = (at..end)
                        .step_by(step as usize)
                        .map(|s| s..(s + step).min(end))
                        .collect();
                    for part in store.get_ranges(uri, &ranges)? {
                        file.write_all(&part)
                            .map_err(|e| PartitionError::io(path.display(), e))?;
                    }
                    at = end;
                }
                file.flush()
                    .map_err(|e| PartitionError::io(path.display(), e))?;
                tracing::debug!(uri, bytes = size, tmp = %path.display(), "downloaded input");
                Ok(Source::File {
                    file,
                    len: size,
                    _temp: Some(path),
                })
            }
        }
    }

    pub(crate) fn len(&self) -> u64 {
        match self {
            Source::File { len, .. } => *len,
            Source::Memory(b) => b.len() as u64,
        }
    }

    /// Fills `buf` from byte `offset`; an `UnexpectedEof` error past the end.
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "bytes {offset}..{} are past the end of the file ({} bytes)",
                    offset.saturating_add(buf.len() as u64),
                    self.len()
                ),
            ));
        }
        match self {
            Source::File { file, .. } => file.read_exact_at(buf, offset),
            Source::Memory(b) => {
                let o = offset as usize;
                buf.copy_from_slice(&b[o..o + buf.len()]);
                Ok(())
            }
        }
    }

    fn read_vec(&self, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
        if offset.saturating_add(len) > self.len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "{len} bytes at offset {offset} are past the end of the file ({} bytes)",
                    self.len()
                ),
            ));
        }
        let mut v = vec![0u8; len as usize];
        self.read_at(offset, &mut v)?;
        Ok(v)
    }
}

/// The non-point parts of a LAS/LAZ file: header, VLRs, the bytes between the VLRs and the
/// point data (kept verbatim), and EVLRs.
#[derive(Debug, Clone)]
pub struct LasMeta {
    /// The public header block.
    pub header: Header,
    /// VLRs in file order.
    pub vlrs: Vec<Vlr>,
    /// EVLRs in file order (LAS 1.4; for LAS 1.3 the internal waveform data record).
    pub evlrs: Vec<Vlr>,
    /// Bytes between the last VLR and the point data (e.g. LAS 1.0's 0xDDCC signature).
    pub gap: Vec<u8>,
}

impl LasMeta {
    /// The CRS the VLRs/EVLRs declare.
    pub fn crs(&self) -> crate::format::CrsInfo {
        let wkt_bit = self.header.global_encoding() & 0x10 != 0;
        crate::format::CrsInfo::from_records(
            self.vlrs
                .iter()
                .chain(&self.evlrs)
                .map(|v| (v.user(), v.record_id, &v.data[..])),
            wkt_bit,
        )
    }
}

/// One LAZ chunk: `points` records starting at point `first`, stored in `bytes` bytes at
/// absolute file offset `offset`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LazChunk {
    pub first: u64,
    pub points: u64,
    pub offset: u64,
    pub bytes: u64,
}

/// The LASzip parameters of a compressed input.
pub(crate) struct LazInfo {
    vlr: laz::LazVlr,
    chunks: Vec<LazChunk>,
    /// Layered (point formats 6–10) chunks: number of u32 layer sizes after the first point.
    layers: Option<usize>,
}

/// A batch of consecutive point records that can be read independently of the others.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batch {
    /// Index of the first point.
    pub first: u64,
    /// Number of points.
    pub count: u64,
    kind: BatchKind,
}

#[derive(Debug, Clone, Copy)]
enum BatchKind {
    Las { offset: u64 },
    Laz { chunk: usize },
}

/// An open LAS/LAZ file (COPC is read as the LAZ it is): validated header, VLRs, EVLRs and
/// the layout of its point records.
pub struct LasFile {
    uri: String,
    source: Source,
    meta: LasMeta,
    laz: Option<LazInfo>,
}

impl std::fmt::Debug for LasFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LasFile")
            .field("uri", &self.uri)
            .field("points", &self.meta.header.point_count())
            .field("compressed", &self.laz.is_some())
            .finish_non_exhaustive()
    }
}

impl LasFile {
    /// Opens and validates `uri` (local path, `file://`, `s3://`, `https://`).
    pub fn open(store: &Store, uri: &str) -> Result<LasFile> {
        let source = Source::open(store, uri)?;
        LasFile::from_source(uri, source)
    }

    /// Opens LAS/LAZ bytes held in memory; `name` is used in error messages.
    pub fn from_bytes(name: &str, bytes: Bytes) -> Result<LasFile> {
        LasFile::from_source(name, Source::Memory(bytes))
    }

    pub(crate) fn from_source(uri: &str, source: Source) -> Result<LasFile> {
        let bad = |m: String| PartitionError::input(uri, m);
        let len = source.len();
        let io = |e: std::io::Error| PartitionError::input(uri, format!("truncated file: {e}"));
        let first = source
            .read_vec(0, len.min(HEADER_SIZE_14 as u64))
            .map_err(io)?;
        let need = Header::needed_len(&first) as u64;
        let head_bytes = if need > first.len() as u64 && need <= len {
            source.read_vec(0, need).map_err(io)?
        } else {
            first
        };
        let header = Header::parse(&head_bytes).map_err(bad)?;
        let offset_to_points = u64::from(header.offset_to_points());
        if offset_to_points > len {
            return Err(bad(format!(
                "offset to point data {offset_to_points} is past the end of the file ({len} bytes): truncated file"
            )));
        }
        let header_size = u64::from(header.header_size());
        let area = offset_to_points - header_size;
        if area > MAX_VLR_AREA {
            return Err(bad(format!(
                "{area} bytes between the header and the point data (more than {MAX_VLR_AREA})"
            )));
        }
        let area_bytes = source.read_vec(header_size, area).map_err(io)?;
        let mut vlrs = Vec::new();
        let mut at = 0usize;
        for k in 0..header.number_of_vlrs() {
            let (vlr, size) = Vlr::parse(&area_bytes[at..]).map_err(|m| {
                bad(format!(
                    "VLR {k} of {} (at byte {}): {m}",
                    header.number_of_vlrs(),
                    header_size + at as u64
                ))
            })?;
            vlrs.push(vlr);
            at += size;
        }
        let gap = area_bytes[at..].to_vec();
        let evlrs = read_evlrs(&source, &header, uri)?;

        let n = header.point_count();
        let rec = u64::from(header.record_len());
        let laz = if header.is_compressed() {
            Some(LazInfo::read(&source, &header, &vlrs, uri)?)
        } else {
            let mut limit = len;
            if header.number_of_evlrs() > 0 && header.start_of_first_evlr() >= offset_to_points {
                limit = limit.min(header.start_of_first_evlr());
            }
            let need = n.saturating_mul(rec);
            let have = limit - offset_to_points;
            if need > have {
                return Err(bad(format!(
                    "the header says {n} points of {rec} bytes ({need} bytes from offset {offset_to_points}) \
                     but the file holds {have} bytes of point data: truncated file or wrong point count"
                )));
            }
            None
        };
        Ok(LasFile {
            uri: uri.to_string(),
            source,
            meta: LasMeta {
                header,
                vlrs,
                evlrs,
                gap,
            },
            laz,
        })
    }

    /// Labels a file that records no CRS with EPSG `epsg`, so that its tiles carry it (an
    /// OGC WKT record and the WKT bit for point formats 6–10, GeoTIFF keys otherwise). A file
    /// that records a CRS keeps it: another code is an error, the same code nothing.
    pub fn assume_epsg(&mut self, epsg: u32) -> Result<()> {
        let own = self.meta.crs();
        match (own.epsg, &own.wkt) {
            (Some(e), _) if e == epsg => return Ok(()),
            (Some(e), _) => {
                return Err(PartitionError::input(
                    &self.uri,
                    format!(
                        "the file's CRS is EPSG:{e}, not the EPSG:{epsg} given; --epsg applies \
                         only to files that record no CRS"
                    ),
                ));
            }
            (None, Some(_)) => {
                tracing::warn!(uri = %self.uri, epsg, "the file records a WKT CRS: --epsg ignored");
                return Ok(());
            }
            (None, None) => {}
        }
        let (user, record_id, data, wkt_bit) =
            pointcloud::crs::crs_record(epsg, self.meta.header.point_format().id())
                .map_err(|m| PartitionError::input(&self.uri, m))?;
        let mut user_id = [0u8; 16];
        user_id[..user.len()].copy_from_slice(user.as_bytes());
        let mut description = [0u8; 32];
        let d = format!("EPSG:{epsg}");
        description[..d.len()].copy_from_slice(d.as_bytes());
        self.meta.vlrs.push(Vlr {
            reserved: 0,
            user_id,
            record_id,
            description,
            data,
        });
        if wkt_bit {
            self.meta.header = self.meta.header.with_wkt_bit();
        }
        Ok(())
    }

    /// The URI (or name) the file was opened from.
    pub fn uri(&self) -> &str {
        &self.uri
    }
    /// Header, VLRs and EVLRs.
    pub fn meta(&self) -> &LasMeta {
        &self.meta
    }
    /// The public header block.
    pub fn header(&self) -> &Header {
        &self.meta.header
    }
    /// Number of point records.
    pub fn point_count(&self) -> u64 {
        self.meta.header.point_count()
    }
    /// Size of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.source.len()
    }

    /// Reads every point record into memory (LAZ chunks decompressed in parallel).
    pub fn read_all(&self) -> Result<PointRecords> {
        let rec = self.meta.header.record_len() as usize;
        let n = self.point_count();
        let total = n
            .checked_mul(rec as u64)
            .and_then(|t| usize::try_from(t).ok())
            .ok_or_else(|| PartitionError::ResourceLimit {
                uri: self.uri.clone(),
                message: format!("{n} points do not fit in memory"),
            })?;
        let mut data = Vec::new();
        data.try_reserve_exact(total)
            .map_err(|_| PartitionError::ResourceLimit {
                uri: self.uri.clone(),
                message: format!("cannot allocate {total} bytes for {n} point records"),
            })?;
        data.resize(total, 0);
        let batches = self.batches(LAS_BATCH_POINTS * 4);
        let mut jobs = Vec::with_capacity(batches.len());
        let mut rest: &mut [u8] = &mut data;
        for b in &batches {
            let (head, tail) = rest.split_at_mut(b.count as usize * rec);
            jobs.push((b, head));
            rest = tail;
        }
        jobs.into_par_iter()
            .try_for_each(|(b, out)| self.read_batch(b, out))?;
        Ok(PointRecords::new(self.meta.clone(), data))
    }

    /// The batches covering all points in order: LAS ranges of `las_points` points, or the
    /// LAZ chunks.
    pub(crate) fn batches(&self, las_points: u64) -> Vec<Batch> {
        match &self.laz {
            Some(laz) => laz
                .chunks
                .iter()
                .enumerate()
                .map(|(k, c)| Batch {
                    first: c.first,
                    count: c.points,
                    kind: BatchKind::Laz { chunk: k },
                })
                .collect(),
            None => {
                let n = self.point_count();
                let rec = u64::from(self.meta.header.record_len());
                let base = u64::from(self.meta.header.offset_to_points());
                let step = las_points.max(1);
                (0..n.div_ceil(step))
                    .map(|k| {
                        let first = k * step;
                        Batch {
                            first,
                            count: step.min(n - first),
                            kind: BatchKind::Las {
                                offset: base + first * rec,
                            },
                        }
                    })
                    .collect()
            }
        }
    }

    /// The largest batch, in points.
    pub(crate) fn max_batch_points(&self, las_points: u64) -> u64 {
        match &self.laz {
            Some(laz) => laz.chunks.iter().map(|c| c.points).max().unwrap_or(0),
            None => las_points.min(self.point_count()),
        }
    }

    /// Reads (decompresses) batch `b` into `out` (`b.count × record length` bytes).
    pub(crate) fn read_batch(&self, b: &Batch, out: &mut [u8]) -> Result<()> {
        let rec = self.meta.header.record_len() as usize;
        debug_assert_eq!(out.len(), b.count as usize * rec);
        match b.kind {
            BatchKind::Las { offset } => self.source.read_at(offset, out).map_err(|e| {
                PartitionError::input(&self.uri, format!("reading points {}..: {e}", b.first))
            }),
            BatchKind::Laz { chunk } => {
                let laz = self
                    .laz
                    .as_ref()
                    .ok_or_else(|| PartitionError::Internal("LAZ batch of a LAS file".into()))?;
                laz.decompress(&self.source, chunk, out, rec, &self.uri)
            }
        }
    }
}

fn read_evlrs(source: &Source, header: &Header, uri: &str) -> Result<Vec<Vlr>> {
    let bad = |m: String| PartitionError::input(uri, m);
    let len = source.len();
    let offset_to_points = u64::from(header.offset_to_points());
    let (start, count) = if header.version().1 >= 4 && header.number_of_evlrs() > 0 {
        (
            header.start_of_first_evlr(),
            u64::from(header.number_of_evlrs()),
        )
    } else if header.version().1 == 3
        && header.start_of_waveform() > 0
        && header.global_encoding() & 0x02 != 0
    {
        // LAS 1.3 internal waveform data: one EVLR at the start of waveform data.
        (header.start_of_waveform(), 1)
    } else {
        return Ok(Vec::new());
    };
    if start < offset_to_points || start > len {
        return Err(bad(format!(
            "the first EVLR is said to start at byte {start}, outside the point data end..file end \
             ({offset_to_points}..{len}): truncated file or corrupt header"
        )));
    }
    if count > (len - start) / EVLR_HEADER as u64 {
        return Err(bad(format!(
            "the header declares {count} EVLRs but only {} bytes follow byte {start}: truncated file",
            len - start
        )));
    }
    let mut evlrs = Vec::with_capacity(count as usize);
    let mut at = start;
    for k in 0..count {
        let h = source.read_vec(at, EVLR_HEADER as u64).map_err(|e| {
            bad(format!(
                "EVLR {k} of {count} at byte {at}: {e} (truncated file)"
            ))
        })?;
        let data_len = le_u64(&h, 20);
        let data_at = at + EVLR_HEADER as u64;
        if data_len > len - data_at.min(len) {
            return Err(bad(format!(
                "EVLR {k} of {count} at byte {at} declares {data_len} bytes of data but the file ends \
                 {} bytes later: truncated file",
                len.saturating_sub(data_at)
            )));
        }
        let data = source
            .read_vec(data_at, data_len)
            .map_err(|e| bad(format!("EVLR {k} of {count}: {e}")))?;
        evlrs.push(Vlr::from_parts(&h, 28, &data));
        at = data_at + data_len;
    }
    Ok(evlrs)
}

impl LazInfo {
    fn read(source: &Source, header: &Header, vlrs: &[Vlr], uri: &str) -> Result<LazInfo> {
        let bad = |m: String| PartitionError::input(uri, m);
        let len = source.len();
        let rec = u64::from(header.record_len());
        let n = header.point_count();
        let vlr = vlrs.iter().find(|v| v.is_laszip()).ok_or_else(|| {
            bad("the point data is marked compressed but there is no LASzip VLR".to_string())
        })?;
        let d = &vlr.data;
        if d.len() < 34 {
            return Err(bad(format!("LASzip VLR too short ({} bytes)", d.len())));
        }
        let compressor = le_u16(d, 0);
        if !matches!(compressor, 2 | 3) {
            return Err(bad(format!(
                "unsupported LASzip compressor {compressor} (only chunked compression, 2 and 3, is supported)"
            )));
        }
        let n_items = le_u16(d, 32) as usize;
        if n_items == 0 || d.len() < 34 + 6 * n_items {
            return Err(bad(format!(
                "LASzip VLR lists {n_items} items in {} bytes",
                d.len()
            )));
        }
        let mut size_sum = 0u64;
        let mut layers = 0usize;
        let mut layered = None;
        for k in 0..n_items {
            let at = 34 + 6 * k;
            let (ty, size, version) = (le_u16(d, at), le_u16(d, at + 2), le_u16(d, at + 4));
            size_sum += u64::from(size);
            let is_layered = matches!(version, 3 | 4);
            if *layered.get_or_insert(is_layered) != is_layered {
                return Err(bad(
                    "LASzip VLR mixes layered and point-wise items".to_string()
                ));
            }
            layers += match ty {
                10 => 9,                // Point14
                11 | 13 => 1,           // RGB14, WavePacket14
                12 => 2,                // RGBNIR14
                14 => size as usize,    // Byte14
                0 | 6 | 7 | 8 | 9 => 0, // point-wise items
                other => {
                    return Err(bad(format!("unknown LASzip item type {other}")));
                }
            };
        }
        if size_sum != rec {
            return Err(bad(format!(
                "LASzip items describe {size_sum}-byte points but the header says {rec}"
            )));
        }
        let laz_vlr =
            laz::LazVlr::from_buffer(d).map_err(|e| bad(format!("invalid LASzip VLR: {e}")))?;
        let variable = laz_vlr.uses_variable_size_chunks();
        let chunk_size = u64::from(laz_vlr.chunk_size());

        let data_start = u64::from(header.offset_to_points());
        if n == 0 {
            return Ok(LazInfo {
                vlr: laz_vlr,
                chunks: Vec::new(),
                layers: layered.unwrap_or(false).then_some(layers),
            });
        }
        let io = |e: std::io::Error| bad(format!("truncated LAZ file: {e}"));
        let mut table_at = le_u64(&source.read_vec(data_start, 8).map_err(io)?, 0) as i64;
        if table_at <= data_start as i64 && len >= 16 {
            // A streaming writer stores the chunk table offset in the last 8 bytes.
            table_at = le_u64(&source.read_vec(len - 8, 8).map_err(io)?, 0) as i64;
        }
        let points_start = data_start + 8;
        if table_at < points_start as i64 || table_at as u64 > len.saturating_sub(8) {
            return Err(bad(format!(
                "corrupt LAZ chunk table: its offset {table_at} is outside the file's point data \
                 ({points_start}..{}) (truncated file?)",
                len.saturating_sub(8)
            )));
        }
        let table_at = table_at as u64;
        let table_head = source.read_vec(table_at, 8).map_err(io)?;
        let n_chunks = u64::from(le_u32(&table_head, 4));
        let data_bytes = table_at - points_start;
        let expected = if variable {
            None
        } else {
            if chunk_size == 0 {
                return Err(bad("LASzip chunk size 0".to_string()));
            }
            Some(n.div_ceil(chunk_size))
        };
        if n_chunks == 0
            || expected.is_some_and(|e| e != n_chunks)
            || n_chunks > n
            || n_chunks > data_bytes / rec.max(1)
        {
            return Err(bad(format!(
                "corrupt LAZ chunk table: {n_chunks} chunks for {n} points{} in {data_bytes} bytes",
                expected
                    .map(|e| format!(" (expected {e})"))
                    .unwrap_or_default()
            )));
        }
        let mut table_end = len;
        if header.number_of_evlrs() > 0 && header.start_of_first_evlr() > table_at {
            table_end = table_end.min(header.start_of_first_evlr());
        }
        let table_len = (table_end - table_at).min(8 + 20 * n_chunks + 4096);
        let table_bytes = source.read_vec(table_at, table_len).map_err(io)?;
        let table = std::panic::catch_unwind(AssertUnwindSafe(|| {
            laz::laszip::ChunkTable::read(&mut std::io::Cursor::new(&table_bytes[..]), variable)
        }))
        .map_err(|_| bad("corrupt LAZ chunk table (the decoder failed)".to_string()))?
        .map_err(|e| {
            bad(format!(
                "corrupt LAZ chunk table: cannot decode its {n_chunks} entries ({e})"
            ))
        })?;
        let entries = table.as_ref();
        if entries.len() as u64 != n_chunks {
            return Err(bad(format!(
                "corrupt LAZ chunk table: {} entries decoded, {n_chunks} declared",
                entries.len()
            )));
        }
        let mut chunks = Vec::with_capacity(entries.len());
        let mut first = 0u64;
        let mut offset = points_start;
        for (k, e) in entries.iter().enumerate() {
            let points = if variable {
                e.point_count
            } else if k + 1 == entries.len() {
                n - first
            } else {
                chunk_size
            };
            if points == 0 || e.byte_count == 0 {
                return Err(bad(format!(
                    "corrupt LAZ chunk table: chunk {k} has {points} points in {} bytes",
                    e.byte_count
                )));
            }
            let end = offset.saturating_add(e.byte_count);
            if end > table_at || first.saturating_add(points) > n {
                return Err(bad(format!(
                    "corrupt LAZ chunk table: chunk {k} ({} bytes, {points} points) runs past the \
                     point data ({data_bytes} bytes, {n} points)",
                    e.byte_count
                )));
            }
            chunks.push(LazChunk {
                first,
                points,
                offset,
                bytes: e.byte_count,
            });
            first += points;
            offset = end;
        }
        if first != n || offset != table_at {
            return Err(bad(format!(
                "corrupt LAZ chunk table: the chunks hold {first} points in {} bytes, the file {n} \
                 points in {data_bytes} bytes",
                offset - points_start
            )));
        }
        Ok(LazInfo {
            vlr: laz_vlr,
            chunks,
            layers: layered.unwrap_or(false).then_some(layers),
        })
    }

    fn decompress(
        &self,
        source: &Source,
        k: usize,
        out: &mut [u8],
        rec: usize,
        uri: &str,
    ) -> Result<()> {
        let c = self.chunks[k];
        let bad = |m: String| {
            PartitionError::input(
                uri,
                format!(
                    "corrupt LAZ chunk {k} (points {}..{}): {m}",
                    c.first,
                    c.first + c.points
                ),
            )
        };
        let mut comp = crate::pool::Buf::new(c.bytes as usize);
        source
            .read_at(c.offset, &mut comp)
            .map_err(|e| bad(e.to_string()))?;
        if let Some(layers) = self.layers {
            // First point raw, u32 count, one u32 size per layer, then the layers.
            let head = rec + 4 + 4 * layers;
            if comp.len() < head {
                return Err(bad(format!(
                    "{} bytes, less than its layer table",
                    comp.len()
                )));
            }
            let count = u64::from(le_u32(&comp, rec));
            if count != c.points {
                return Err(bad(format!(
                    "it says {count} points, the chunk table {}",
                    c.points
                )));
            }
            let sizes: u64 = (0..layers)
                .map(|l| u64::from(le_u32(&comp, rec + 4 + 4 * l)))
                .sum();
            if sizes > (comp.len() - head) as u64 {
                return Err(bad(format!(
                    "layers of {sizes} bytes in a chunk of {} bytes",
                    comp.len()
                )));
            }
        }
        let entry = laz::laszip::ChunkTableEntry {
            point_count: c.points,
            byte_count: c.bytes,
        };
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            laz::par_decompress(&comp, out, &self.vlr, std::slice::from_ref(&entry))
        }))
        .map_err(|_| bad("the LAZ decoder failed".to_string()))?
        .map_err(|e| bad(e.to_string()))
    }
}
