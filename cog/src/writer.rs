//! COG writer: tiled, compressed, internal overviews, laid out as GDAL's COG driver does
//! (ghost header, all IFDs first, then tile data from the smallest overview to the full
//! resolution, each tile with a 4-byte size leader and a 4-byte trailer), written atomically
//! through [`cloud::Store::put_reader`].

use std::collections::BTreeMap;
use std::io::Read;

use bytes::Bytes;
use cloud::Store;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::codec::{self, Compression};
use crate::error::CogError;
use crate::geo::{self, GeoKeys, MetadataItem};
use crate::pixel::{Pixel, SampleType};
use crate::raster::{GeoTransform, Raster};
use crate::tiff::{tag, ty};

/// How overview pixels are computed from the level above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resampling {
    /// Mean of the valid (non-nodata, non-NaN) source pixels; integers rounded half up.
    Average,
    /// The top-left source pixel.
    Nearest,
}

/// Options of [`write_cog`]. `Default`: 512 tiles, DEFLATE (level 6) with predictor 2 for
/// integers and 3 for floats, overviews by averaging down to one tile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CogWriteOptions {
    /// Tile width and height in pixels (a multiple of 16).
    pub blocksize: u32,
    pub compression: Compression,
    /// Codec level (DEFLATE 1..=12, default 6; ZSTD 1..=22, default 9).
    pub level: Option<i32>,
    /// TIFF predictor; `None` = 2 for integers, 3 for floats (1 when uncompressed).
    pub predictor: Option<u16>,
    /// Build internal overviews (halving until the image fits one tile).
    pub overviews: bool,
    /// How overviews are computed.
    pub resampling: Resampling,
    /// Force BigTIFF (`Some(true)`), classic (`Some(false)`), or decide by size (`None`).
    pub bigtiff: Option<bool>,
    /// Per-band `(scale, offset)` written as GDAL metadata (physical = raw × scale + offset).
    pub scale_offset: Option<(f64, f64)>,
    /// Dataset metadata items written in GDAL_METADATA.
    pub metadata: BTreeMap<String, String>,
    /// TIFF photometric interpretation; `None` = MinIsBlack (1).
    pub photometric: Option<u16>,
}

impl Default for CogWriteOptions {
    fn default() -> Self {
        CogWriteOptions {
            blocksize: 512,
            compression: Compression::Deflate,
            level: None,
            predictor: None,
            overviews: true,
            resampling: Resampling::Average,
            bigtiff: None,
            scale_offset: None,
            metadata: BTreeMap::new(),
            photometric: None,
        }
    }
}

impl CogWriteOptions {
    /// Checks the options that do not depend on the raster: block size a multiple of 16 in
    /// 16..=16384, codec level in its range, predictor 1–3.
    pub fn validate(&self) -> Result<(), String> {
        if self.blocksize < 16 || !self.blocksize.is_multiple_of(16) || self.blocksize > 16384 {
            return Err(format!(
                "blocksize {} is not a multiple of 16 in 16..=16384",
                self.blocksize
            ));
        }
        if let Some(l) = self.level {
            let max = match self.compression {
                Compression::Zstd => 22,
                _ => 12,
            };
            if !(1..=max).contains(&l) {
                return Err(format!("level {l} is outside 1..={max}"));
            }
        }
        if let Some(p) = self.predictor
            && !(1..=3).contains(&p)
        {
            return Err(format!("predictor {p} is not 1, 2 or 3"));
        }
        if let Some((s, o)) = self.scale_offset
            && !(s.is_finite() && o.is_finite())
        {
            return Err(format!("scale {s} / offset {o} must be finite"));
        }
        Ok(())
    }
}

/// Writes `raster` as a single-band COG at `uri` (atomically).
pub fn write_cog<T: Pixel>(
    store: &Store,
    uri: &str,
    raster: &Raster<T>,
    options: &CogWriteOptions,
) -> Result<(), CogError> {
    let geokeys = GeoKeys::from_crs(&raster.crs, false);
    write_cog_bands(
        store,
        uri,
        &[raster.data.view()],
        &raster.transform,
        &geokeys,
        raster.nodata.map(|v| v.to_f64()),
        options,
    )
}

/// Writes several bands of one size (pixel-interleaved) as a COG at `uri`, with the CRS as
/// `geokeys` (see [`GeoKeys::from_crs`]; a reader's `info().geokeys` copies a file's CRS
/// verbatim) and `nodata` for every band.
pub fn write_cog_bands<T: Pixel>(
    store: &Store,
    uri: &str,
    bands: &[ArrayView2<'_, T>],
    transform: &GeoTransform,
    geokeys: &GeoKeys,
    nodata: Option<f64>,
    options: &CogWriteOptions,
) -> Result<(), CogError> {
    let parts = encode_cog(uri, bands, transform, geokeys, nodata, options)?;
    let total: u64 = parts.iter().map(|b| b.len() as u64).sum();
    tracing::debug!(uri, bytes = total, "writing COG");
    store
        .put_reader(uri, ChunkReader::new(parts))
        .map_err(|e| CogError::store(uri, e))?;
    Ok(())
}

/// A `Read` over a list of byte chunks (the file is streamed, never concatenated).
struct ChunkReader {
    parts: std::vec::IntoIter<Bytes>,
    cur: Bytes,
}

impl ChunkReader {
    fn new(parts: Vec<Bytes>) -> Self {
        ChunkReader {
            parts: parts.into_iter(),
            cur: Bytes::new(),
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.parts.next() {
                Some(p) => self.cur = p,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// Overview sizes as GDAL's COG driver makes them: halve (rounding down) until the level
/// fits in one tile.
pub fn overview_sizes(width: u64, height: u64, blocksize: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let (mut w, mut h) = (width, height);
    while w > blocksize || h > blocksize {
        w = (w / 2).max(1);
        h = (h / 2).max(1);
        out.push((w, h));
        if w == 1 && h == 1 {
            break;
        }
    }
    out
}

/// Downsamples `src` to `w`×`h` (GDAL's source-window rule for overviews).
pub fn downsample<T: Pixel>(
    src: ArrayView2<'_, T>,
    w: usize,
    h: usize,
    nodata: Option<T>,
    resampling: Resampling,
) -> Array2<T> {
    let (sh, sw) = src.dim();
    // Rows as slices (a copy only for a view that is not in standard layout).
    let src = src.as_standard_layout();
    let src_rows: Vec<&[T]> = src
        .rows()
        .into_iter()
        .map(|r| r.to_slice().expect("standard layout rows are contiguous"))
        .collect();
    let out = downsample_rows(&src_rows, 0, (sw, sh), (w, h), 0..h, nodata, resampling);
    Array2::from_shape_vec((h, w), out).expect("h*w values were produced")
}

/// Source pixels `[a, b)` (along one axis of length `n`) that output pixel `i` reads when
/// downsampling by the ratio `r` = source size / output size.
fn span(i: usize, r: f64, n: usize) -> (usize, usize) {
    let a = ((0.5 + i as f64 * r) as usize).min(n - 1);
    let mut b = ((0.5 + (i + 1) as f64 * r) as usize).min(n);
    if b <= a {
        b = a + 1;
    }
    (a, b)
}

/// Source rows `[a, b)` of an image `src_h` rows high that output row `i` of its
/// downsampling to `out_h` rows reads.
pub(crate) fn source_rows(i: usize, src_h: usize, out_h: usize) -> (usize, usize) {
    span(i, src_h as f64 / out_h as f64, src_h)
}

/// Rows `out_rows` of the `out`=(width, height) downsampling of a `src`=(width, height)
/// image, from its rows `first..first + src_rows.len()` (which hold every source row those
/// output rows read): the same values [`downsample`] gives for those rows.
pub(crate) fn downsample_rows<T: Pixel>(
    src_rows: &[&[T]],
    first: usize,
    (sw, sh): (usize, usize),
    (w, h): (usize, usize),
    out_rows: std::ops::Range<usize>,
    nodata: Option<T>,
    resampling: Resampling,
) -> Vec<T> {
    let rx = sw as f64 / w as f64;
    let ry = sh as f64 / h as f64;
    let is_nd =
        |v: T| v.is_nan() || nodata.is_some_and(|nd| v == nd || (nd.is_nan() && v.is_nan()));
    let fill = nodata.unwrap_or_default();
    let float = T::TYPE.is_float();
    let xs: Vec<(usize, usize)> = (0..w).map(|j| span(j, rx, sw)).collect();
    let mut out = vec![fill; out_rows.len() * w];
    out.par_chunks_mut(w.max(1))
        .enumerate()
        .for_each(|(k, orow)| {
            let (y0, y1) = span(out_rows.start + k, ry, sh);
            let rows = &src_rows[y0 - first..y1 - first];
            for (o, &(x0, x1)) in orow.iter_mut().zip(&xs) {
                *o = match resampling {
                    Resampling::Nearest => rows[0][x0],
                    Resampling::Average => {
                        let (mut sum, mut n) = (0.0f64, 0u32);
                        for row in rows {
                            for &v in &row[x0..x1] {
                                if !is_nd(v) {
                                    sum += v.to_f64();
                                    n += 1;
                                }
                            }
                        }
                        if n == 0 {
                            fill
                        } else if float {
                            T::from_f64(sum / n as f64)
                        } else {
                            T::from_f64((sum / n as f64 + 0.5).floor())
                        }
                    }
                };
            }
        });
    out
}

/// One value of an IFD entry being written.
enum Val {
    Short(Vec<u16>),
    Long(Vec<u32>),
    Long8(Vec<u64>),
    Double(Vec<f64>),
    Ascii(String),
}

impl Val {
    fn typ(&self) -> u16 {
        match self {
            Val::Short(_) => ty::SHORT,
            Val::Long(_) => ty::LONG,
            Val::Long8(_) => ty::LONG8,
            Val::Double(_) => ty::DOUBLE,
            Val::Ascii(_) => ty::ASCII,
        }
    }
    fn count(&self) -> u64 {
        match self {
            Val::Short(v) => v.len() as u64,
            Val::Long(v) => v.len() as u64,
            Val::Long8(v) => v.len() as u64,
            Val::Double(v) => v.len() as u64,
            Val::Ascii(s) => s.len() as u64 + 1,
        }
    }
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Val::Short(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Val::Long(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Val::Long8(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Val::Double(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Val::Ascii(s) => {
                out.extend_from_slice(s.as_bytes());
                out.push(0);
            }
        }
        out
    }
}

fn size_val(v: u64) -> Val {
    if v < 65536 {
        Val::Short(vec![v as u16])
    } else {
        Val::Long(vec![v as u32])
    }
}

/// Tiles of one level, compressed, row-major.
struct Level {
    width: u64,
    height: u64,
    tiles: Vec<Bytes>,
}

thread_local! {
    /// Each rayon worker assembles its tiles in one reused buffer.
    static TILE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Assembles, predicts and compresses every tile of one level, in parallel; the result is
/// in row-major tile order whatever the scheduling.
pub(crate) fn encode_level<T: Pixel>(
    uri: &str,
    bands: &[ArrayView2<'_, T>],
    codec: Codec,
    fill: T,
) -> Result<Vec<Bytes>, CogError> {
    let Codec {
        bs,
        compression,
        level,
        predictor,
    } = codec;
    let (h, w) = bands[0].dim();
    let across = w.div_ceil(bs);
    let down = h.div_ceil(bs);
    let spp = bands.len();
    let size = T::TYPE.size();
    let px_bytes = spp * size;
    let row_bytes = bs * px_bytes;
    let tile_bytes = bs * row_bytes;
    let mut fill_px = vec![0u8; px_bytes];
    T::write_le_slice(&vec![fill; spp], &mut fill_px);
    (0..across * down)
        .into_par_iter()
        .map(|t| {
            let (tr, tc) = (t / across, t % across);
            let x0 = tc * bs;
            let n = (w - x0).min(bs);
            TILE.with(|cell| {
                let mut buf = cell.borrow_mut();
                // Every byte is overwritten below, so the buffer is only sized, never cleared.
                if buf.len() != tile_bytes {
                    buf.resize(tile_bytes, 0);
                }
                for (y, drow) in buf.chunks_exact_mut(row_bytes).enumerate() {
                    let iy = tr * bs + y;
                    let (data, pad) = if iy < h {
                        drow.split_at_mut(n * px_bytes)
                    } else {
                        drow.split_at_mut(0)
                    };
                    if !data.is_empty() {
                        if spp == 1 {
                            let row = bands[0].row(iy);
                            match row.as_slice() {
                                Some(src) => T::write_le_slice(&src[x0..x0 + n], data),
                                None => {
                                    for (d, &v) in
                                        data.chunks_exact_mut(size).zip(row.iter().skip(x0).take(n))
                                    {
                                        T::write_le_slice(&[v], d);
                                    }
                                }
                            }
                        } else {
                            for (b, band) in bands.iter().enumerate() {
                                let row = band.row(iy);
                                for (px, &v) in data
                                    .chunks_exact_mut(px_bytes)
                                    .zip(row.iter().skip(x0).take(n))
                                {
                                    T::write_le_slice(&[v], &mut px[b * size..(b + 1) * size]);
                                }
                            }
                        }
                    }
                    for d in pad.chunks_exact_mut(px_bytes) {
                        d.copy_from_slice(&fill_px);
                    }
                }
                match predictor {
                    2 => codec::apply_horizontal(&mut buf, size, bs * spp, spp),
                    3 => codec::apply_float(&mut buf, size, bs * spp, spp),
                    _ => {}
                }
                codec::compress_bytes(compression, &buf, level)
            })
        })
        .collect::<Result<Vec<Bytes>, String>>()
        .map_err(|reason| CogError::Decode {
            uri: uri.to_string(),
            what: "compressing a tile".into(),
            reason,
        })
}

/// The codec settings every level shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Codec {
    pub(crate) bs: usize,
    compression: Compression,
    level: i32,
    predictor: u16,
}

/// Sizes of one level: what the header needs to lay the file out.
pub(crate) struct LevelSizes {
    pub(crate) width: u64,
    pub(crate) height: u64,
    /// Compressed size of each tile, row-major.
    pub(crate) counts: Vec<u64>,
}

/// Everything of a COG's IFDs that does not depend on the tiles' sizes, checked once before
/// any pixel is encoded.
pub(crate) struct Header {
    spp: usize,
    sample: SampleType,
    pub(crate) codec: Codec,
    photometric: u16,
    /// Georeferencing and metadata entries of the full-resolution IFD.
    main_extra: Vec<(u16, Val)>,
    nodata: Option<Val>,
}

impl Header {
    pub(crate) fn new(
        uri: &str,
        spp: usize,
        sample: SampleType,
        transform: &GeoTransform,
        geokeys: &GeoKeys,
        nodata: Option<f64>,
        o: &CogWriteOptions,
    ) -> Result<Header, CogError> {
        if spp == 0 {
            return Err(CogError::request(uri, "no band to write"));
        }
        if spp > 65535 {
            return Err(CogError::request(uri, "too many bands"));
        }
        if o.blocksize < 16 || !o.blocksize.is_multiple_of(16) || o.blocksize > 16384 {
            return Err(CogError::request(
                uri,
                format!(
                    "blocksize {} is not a multiple of 16 in 16..=16384",
                    o.blocksize
                ),
            ));
        }
        let float = sample.is_float();
        let predictor = match (o.predictor, o.compression) {
            (Some(p), _) => p,
            (None, Compression::None) => 1,
            (None, _) if float => 3,
            (None, _) => 2,
        };
        if !matches!(predictor, 1..=3) || (predictor == 3 && !float) {
            return Err(CogError::request(
                uri,
                format!("predictor {predictor} does not fit {sample} samples"),
            ));
        }
        let level = o.level.unwrap_or(match o.compression {
            Compression::Zstd => 9,
            _ => 6,
        });
        // GDAL metadata.
        let mut items: Vec<MetadataItem> = o
            .metadata
            .iter()
            .map(|(k, v)| MetadataItem {
                name: k.clone(),
                sample: None,
                role: None,
                domain: None,
                value: v.clone(),
            })
            .collect();
        if let Some((scale, offset)) = o.scale_offset {
            for b in 0..spp as u32 {
                items.push(MetadataItem {
                    name: "OFFSET".into(),
                    sample: Some(b),
                    role: Some("offset".into()),
                    domain: None,
                    value: format!("{offset}"),
                });
                items.push(MetadataItem {
                    name: "SCALE".into(),
                    sample: Some(b),
                    role: Some("scale".into()),
                    domain: None,
                    value: format!("{scale}"),
                });
            }
        }
        let georeferenced = *transform != GeoTransform::default() || !geokeys.keys.is_empty();
        let mut main_extra: Vec<(u16, Val)> = Vec::new();
        if georeferenced {
            let g = transform.0;
            if transform.is_north_up() {
                main_extra.push((tag::MODEL_PIXEL_SCALE, Val::Double(vec![g[1], -g[5], 0.0])));
                main_extra.push((
                    tag::MODEL_TIEPOINT,
                    Val::Double(vec![0.0, 0.0, 0.0, g[0], g[3], 0.0]),
                ));
            } else {
                main_extra.push((
                    tag::MODEL_TRANSFORMATION,
                    Val::Double(vec![
                        g[1], g[2], 0.0, g[0], g[4], g[5], 0.0, g[3], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                        0.0, 1.0,
                    ]),
                ));
            }
            if !geokeys.keys.is_empty() {
                let (dir, doubles, ascii) = geokeys.encode();
                main_extra.push((tag::GEO_KEY_DIRECTORY, Val::Short(dir)));
                if !doubles.is_empty() {
                    main_extra.push((tag::GEO_DOUBLE_PARAMS, Val::Double(doubles)));
                }
                if !ascii.is_empty() {
                    main_extra.push((tag::GEO_ASCII_PARAMS, Val::Ascii(ascii)));
                }
            }
        }
        if !items.is_empty() {
            main_extra.push((
                tag::GDAL_METADATA,
                Val::Ascii(geo::format_gdal_metadata(&items)),
            ));
        }
        Ok(Header {
            spp,
            sample,
            codec: Codec {
                bs: o.blocksize as usize,
                compression: o.compression,
                level,
                predictor,
            },
            photometric: o.photometric.unwrap_or(1),
            main_extra,
            nodata: nodata.map(|v| Val::Ascii(geo::format_nodata(v))),
        })
    }

    /// The entries of level `li`'s IFD with these tile arrays.
    fn entries(&self, li: usize, l: &LevelSizes, offsets: Val, counts: Val) -> Vec<(u16, Val)> {
        let spp = self.spp;
        let c = self.codec;
        let mut e: Vec<(u16, Val)> = Vec::new();
        if li > 0 {
            e.push((tag::NEW_SUBFILE_TYPE, Val::Long(vec![1])));
        }
        e.push((tag::IMAGE_WIDTH, size_val(l.width)));
        e.push((tag::IMAGE_LENGTH, size_val(l.height)));
        e.push((
            tag::BITS_PER_SAMPLE,
            Val::Short(vec![(self.sample.size() * 8) as u16; spp]),
        ));
        e.push((tag::COMPRESSION, Val::Short(vec![c.compression.code()])));
        e.push((tag::PHOTOMETRIC, Val::Short(vec![self.photometric])));
        e.push((tag::SAMPLES_PER_PIXEL, Val::Short(vec![spp as u16])));
        e.push((tag::PLANAR_CONFIG, Val::Short(vec![1])));
        e.push((tag::PREDICTOR, Val::Short(vec![c.predictor])));
        e.push((tag::TILE_WIDTH, Val::Short(vec![c.bs as u16])));
        e.push((tag::TILE_LENGTH, Val::Short(vec![c.bs as u16])));
        let extra = match self.photometric {
            2 => spp.saturating_sub(3),
            _ => spp - 1,
        };
        if extra > 0 {
            e.push((tag::EXTRA_SAMPLES, Val::Short(vec![0; extra])));
        }
        e.push((
            tag::SAMPLE_FORMAT,
            Val::Short(vec![self.sample.tiff_sample_format(); spp]),
        ));
        e.push((tag::TILE_OFFSETS, offsets));
        e.push((tag::TILE_BYTE_COUNTS, counts));
        if li == 0 {
            e.extend(self.main_extra.iter().map(|(t, v)| (*t, clone_val(v))));
        }
        if let Some(v) = &self.nodata {
            e.push((tag::GDAL_NODATA, clone_val(v)));
        }
        e.sort_by_key(|(t, _)| *t);
        e
    }

    /// The bytes before the tile data (TIFF header, ghost header, every IFD, the tile
    /// arrays) for levels of these sizes. The data follows: levels from the smallest
    /// overview to full resolution, tiles row-major, each as a 4-byte size leader, the
    /// bytes and a trailer repeating their last 4 bytes ([`tile_frame`]).
    pub(crate) fn layout(
        &self,
        uri: &str,
        levels: &[LevelSizes],
        bigtiff: Option<bool>,
    ) -> Result<Vec<u8>, CogError> {
        let data_bytes: u64 = levels
            .iter()
            .flat_map(|l| l.counts.iter())
            .map(|c| c + 8)
            .sum();
        let bigtiff = bigtiff.unwrap_or(data_bytes > 4_000_000_000);
        if !bigtiff && data_bytes > 4_200_000_000 {
            return Err(CogError::request(
                uri,
                "too large for classic TIFF: use BigTIFF",
            ));
        }
        // Ghost header.
        let body = "LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\n\
                    BLOCK_TRAILER=LAST_4_BYTES_REPEATED\nKNOWN_INCOMPATIBLE_EDITION=NO\n ";
        let ghost = format!(
            "GDAL_STRUCTURAL_METADATA_SIZE={:06} bytes\n{body}",
            body.len()
        );
        let header_len: u64 = if bigtiff { 16 } else { 8 };
        let mut first_ifd = header_len + ghost.len() as u64;
        first_ifd += first_ifd % 2;

        let off_size: u64 = if bigtiff { 8 } else { 4 };
        let arrays_inline = |n: u64| n * off_size <= if bigtiff { 8 } else { 4 };
        let array = |v: Vec<u64>| {
            if bigtiff {
                Val::Long8(v)
            } else {
                Val::Long(v.iter().map(|&x| x as u32).collect())
            }
        };
        // IFD sizes without their out-of-line tile arrays (placed after all IFDs).
        let n_levels = levels.len();
        let mut ifd_sizes = Vec::with_capacity(n_levels);
        for (li, l) in levels.iter().enumerate() {
            let n = l.counts.len() as u64;
            let zeros = || array(vec![0; n as usize]);
            let e = self.entries(li, l, zeros(), zeros());
            let mut size = encode_ifd(&e, 0, bigtiff, 0, None).len() as u64;
            if !arrays_inline(n) {
                let arr = n * off_size;
                size -= 2 * (arr + arr % 2);
            }
            ifd_sizes.push(size);
        }
        let mut ifd_at = Vec::with_capacity(n_levels);
        let mut pos = first_ifd;
        for s in &ifd_sizes {
            ifd_at.push(pos);
            pos += s;
        }
        // Tile arrays after all IFDs, in IFD order.
        let mut arrays_at = Vec::with_capacity(n_levels);
        for l in levels {
            let n = l.counts.len() as u64;
            if arrays_inline(n) {
                arrays_at.push(None);
            } else {
                arrays_at.push(Some((pos, pos + n * off_size)));
                pos += 2 * n * off_size;
            }
        }
        // Data: smallest overview first, full resolution last; leader + tile + trailer.
        let data_start = pos;
        let mut tile_offsets: Vec<Vec<u64>> = vec![Vec::new(); n_levels];
        let mut cursor = data_start;
        for li in (0..n_levels).rev() {
            for c in &levels[li].counts {
                cursor += 4;
                tile_offsets[li].push(cursor);
                cursor += c + 4;
            }
        }
        if !bigtiff && cursor > u32::MAX as u64 {
            return Err(CogError::request(
                uri,
                "too large for classic TIFF: use BigTIFF",
            ));
        }
        let mut head = tiff_header(bigtiff, first_ifd, data_start as usize);
        head.extend_from_slice(ghost.as_bytes());
        head.resize(first_ifd as usize, 0);
        let mut arrays = Vec::new();
        for (li, l) in levels.iter().enumerate() {
            let offsets = tile_offsets[li].clone();
            let next = if li + 1 < n_levels { ifd_at[li + 1] } else { 0 };
            let e = self.entries(li, l, array(offsets.clone()), array(l.counts.clone()));
            // Large tile arrays live after all IFDs: the entries point there.
            let bytes = encode_ifd(&e, ifd_at[li], bigtiff, next, arrays_at[li]);
            debug_assert_eq!(bytes.len() as u64, ifd_sizes[li]);
            head.extend_from_slice(&bytes);
            if arrays_at[li].is_some() {
                for v in offsets.iter().chain(l.counts.iter()) {
                    if bigtiff {
                        arrays.extend_from_slice(&v.to_le_bytes());
                    } else {
                        arrays.extend_from_slice(&(*v as u32).to_le_bytes());
                    }
                }
            }
        }
        head.extend_from_slice(&arrays);
        if head.len() as u64 != data_start {
            return Err(CogError::request(
                uri,
                format!(
                    "internal layout error: header {} != {data_start}",
                    head.len()
                ),
            ));
        }
        Ok(head)
    }
}

impl Header {
    /// The bytes before the pixels of a striped, uncompressed, single-image TIFF of
    /// `width`×`height` pixels, `rows_per_strip` rows per strip: TIFF header and IFD (strip
    /// arrays included); the strips follow, contiguous and in order. BigTIFF when the pixels
    /// pass 4 GB.
    pub(crate) fn strip_layout(
        &self,
        uri: &str,
        (width, height): (u64, u64),
        rows_per_strip: u64,
    ) -> Result<Vec<u8>, CogError> {
        let row_bytes = width * self.spp as u64 * self.sample.size() as u64;
        let strips = height.div_ceil(rows_per_strip);
        let counts: Vec<u64> = (0..strips)
            .map(|k| (height - k * rows_per_strip).min(rows_per_strip) * row_bytes)
            .collect();
        let data: u64 = counts.iter().sum();
        let bigtiff = data > 4_000_000_000;
        let array = |v: Vec<u64>| {
            if bigtiff {
                Val::Long8(v)
            } else {
                Val::Long(v.iter().map(|&x| x as u32).collect())
            }
        };
        let entries = |offsets: Vec<u64>| {
            let spp = self.spp;
            let mut e: Vec<(u16, Val)> = vec![
                (tag::IMAGE_WIDTH, size_val(width)),
                (tag::IMAGE_LENGTH, size_val(height)),
                (
                    tag::BITS_PER_SAMPLE,
                    Val::Short(vec![(self.sample.size() * 8) as u16; spp]),
                ),
                (tag::COMPRESSION, Val::Short(vec![1])),
                (tag::PHOTOMETRIC, Val::Short(vec![self.photometric])),
                (tag::STRIP_OFFSETS, array(offsets)),
                (tag::SAMPLES_PER_PIXEL, Val::Short(vec![spp as u16])),
                (tag::ROWS_PER_STRIP, size_val(rows_per_strip)),
                (tag::STRIP_BYTE_COUNTS, array(counts.clone())),
                (tag::PLANAR_CONFIG, Val::Short(vec![1])),
                (
                    tag::SAMPLE_FORMAT,
                    Val::Short(vec![self.sample.tiff_sample_format(); spp]),
                ),
            ];
            e.extend(self.main_extra.iter().map(|(t, v)| (*t, clone_val(v))));
            if let Some(v) = &self.nodata {
                e.push((tag::GDAL_NODATA, clone_val(v)));
            }
            e.sort_by_key(|(t, _)| *t);
            e
        };
        let first_ifd: u64 = if bigtiff { 16 } else { 8 };
        let size = encode_ifd(
            &entries(vec![0; strips as usize]),
            first_ifd,
            bigtiff,
            0,
            None,
        )
        .len() as u64;
        let data_start = first_ifd + size;
        let mut offsets = Vec::with_capacity(strips as usize);
        let mut at = data_start;
        for c in &counts {
            offsets.push(at);
            at += c;
        }
        if !bigtiff && at > u32::MAX as u64 {
            return Err(CogError::request(uri, "too large for classic TIFF"));
        }
        let mut head = tiff_header(bigtiff, first_ifd, data_start as usize);
        head.extend_from_slice(&encode_ifd(&entries(offsets), first_ifd, bigtiff, 0, None));
        if head.len() as u64 != data_start {
            return Err(CogError::request(
                uri,
                "internal layout error: strip header size",
            ));
        }
        Ok(head)
    }
}

/// A little-endian TIFF (or BigTIFF) header pointing at the first IFD at `first_ifd`, in a
/// buffer with room for `capacity` bytes.
fn tiff_header(bigtiff: bool, first_ifd: u64, capacity: usize) -> Vec<u8> {
    let mut head = Vec::with_capacity(capacity);
    if bigtiff {
        head.extend_from_slice(b"II+\0");
        head.extend_from_slice(&8u16.to_le_bytes());
        head.extend_from_slice(&0u16.to_le_bytes());
        head.extend_from_slice(&first_ifd.to_le_bytes());
    } else {
        head.extend_from_slice(b"II*\0");
        head.extend_from_slice(&(first_ifd as u32).to_le_bytes());
    }
    head
}

/// The leader (4-byte little-endian size) and trailer (the last 4 bytes, zero-padded) GDAL's
/// COG layout puts around each tile.
pub(crate) fn tile_frame(tile: &[u8]) -> ([u8; 4], [u8; 4]) {
    let n = tile.len();
    let mut trailer = [0u8; 4];
    if n >= 4 {
        trailer.copy_from_slice(&tile[n - 4..]);
    } else {
        trailer[..n].copy_from_slice(tile);
    }
    ((n as u32).to_le_bytes(), trailer)
}

/// Encodes a COG into the chunks of the file, in order.
fn encode_cog<T: Pixel>(
    uri: &str,
    bands: &[ArrayView2<'_, T>],
    transform: &GeoTransform,
    geokeys: &GeoKeys,
    nodata: Option<f64>,
    o: &CogWriteOptions,
) -> Result<Vec<Bytes>, CogError> {
    let first = bands
        .first()
        .ok_or_else(|| CogError::request(uri, "no band to write"))?;
    let (h, w) = first.dim();
    if w == 0 || h == 0 {
        return Err(CogError::request(uri, "cannot write an empty raster"));
    }
    if bands.iter().any(|b| b.dim() != (h, w)) {
        return Err(CogError::request(uri, "bands differ in size"));
    }
    let header = Header::new(uri, bands.len(), T::TYPE, transform, geokeys, nodata, o)?;
    let codec = header.codec;
    let nd_t = nodata.map(T::from_f64);
    let fill = nd_t.unwrap_or_default();
    // Levels: full resolution, then overviews each computed from the one above.
    let sizes = if o.overviews {
        overview_sizes(w as u64, h as u64, codec.bs as u64)
    } else {
        Vec::new()
    };
    let enc = |views: &[ArrayView2<'_, T>]| encode_level(uri, views, codec, fill);
    let mut levels = vec![Level {
        width: w as u64,
        height: h as u64,
        tiles: enc(bands)?,
    }];
    let mut prev: Vec<Array2<T>> = Vec::new();
    for &(ow, oh) in &sizes {
        let next: Vec<Array2<T>> = if prev.is_empty() {
            bands
                .iter()
                .map(|b| downsample(b.view(), ow as usize, oh as usize, nd_t, o.resampling))
                .collect()
        } else {
            prev.iter()
                .map(|b| downsample(b.view(), ow as usize, oh as usize, nd_t, o.resampling))
                .collect()
        };
        let views: Vec<ArrayView2<'_, T>> = next.iter().map(|a| a.view()).collect();
        levels.push(Level {
            width: ow,
            height: oh,
            tiles: enc(&views)?,
        });
        prev = next;
    }
    let level_sizes: Vec<LevelSizes> = levels
        .iter()
        .map(|l| LevelSizes {
            width: l.width,
            height: l.height,
            counts: l.tiles.iter().map(|t| t.len() as u64).collect(),
        })
        .collect();
    let head = header.layout(uri, &level_sizes, o.bigtiff)?;
    let mut parts = vec![Bytes::from(head)];
    for li in (0..levels.len()).rev() {
        for t in &levels[li].tiles {
            let (leader, trailer) = tile_frame(t);
            parts.push(Bytes::copy_from_slice(&leader));
            parts.push(t.clone());
            parts.push(Bytes::copy_from_slice(&trailer));
        }
    }
    Ok(parts)
}

fn clone_val(v: &Val) -> Val {
    match v {
        Val::Short(x) => Val::Short(x.clone()),
        Val::Long(x) => Val::Long(x.clone()),
        Val::Long8(x) => Val::Long8(x.clone()),
        Val::Double(x) => Val::Double(x.clone()),
        Val::Ascii(x) => Val::Ascii(x.clone()),
    }
}

/// Serialises one IFD at `at`, its out-of-line values right after it, and returns the bytes.
/// With `external = Some((offsets_at, counts_at))` the TileOffsets and TileByteCounts arrays
/// are not written here: their entries point at those offsets, where the caller puts them.
fn encode_ifd(
    entries: &[(u16, Val)],
    at: u64,
    bigtiff: bool,
    next: u64,
    external: Option<(u64, u64)>,
) -> Vec<u8> {
    let (count_size, entry_size, inline, next_size) = if bigtiff {
        (8u64, 20u64, 8usize, 8u64)
    } else {
        (2, 12, 4, 4)
    };
    let n = entries.len() as u64;
    let mut values_at = at + count_size + n * entry_size + next_size;
    let mut head = Vec::new();
    let mut tail = Vec::new();
    if bigtiff {
        head.extend_from_slice(&n.to_le_bytes());
    } else {
        head.extend_from_slice(&(n as u16).to_le_bytes());
    }
    let put_off = |head: &mut Vec<u8>, v: u64| {
        if bigtiff {
            head.extend_from_slice(&v.to_le_bytes());
        } else {
            head.extend_from_slice(&(v as u32).to_le_bytes());
        }
    };
    for (t, v) in entries {
        head.extend_from_slice(&t.to_le_bytes());
        head.extend_from_slice(&v.typ().to_le_bytes());
        if bigtiff {
            head.extend_from_slice(&v.count().to_le_bytes());
        } else {
            head.extend_from_slice(&(v.count() as u32).to_le_bytes());
        }
        if let Some((offsets_at, counts_at)) = external {
            if *t == tag::TILE_OFFSETS {
                put_off(&mut head, offsets_at);
                continue;
            }
            if *t == tag::TILE_BYTE_COUNTS {
                put_off(&mut head, counts_at);
                continue;
            }
        }
        let b = v.bytes();
        if b.len() <= inline {
            let mut field = b.clone();
            field.resize(inline, 0);
            head.extend_from_slice(&field);
        } else {
            put_off(&mut head, values_at);
            tail.extend_from_slice(&b);
            values_at += b.len() as u64;
            if b.len() % 2 == 1 {
                tail.push(0);
                values_at += 1;
            }
        }
    }
    put_off(&mut head, next);
    head.extend_from_slice(&tail);
    head
}
