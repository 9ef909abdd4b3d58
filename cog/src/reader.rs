//! [`CogReader`]: an opened GeoTIFF/COG. Opening reads one header prefix; each window read
//! fetches the blocks it touches with one `get_ranges` call and decodes them on rayon.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cloud::{Store, StoreError};
use ndarray::{Array2, ArrayViewMut2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::asc::{self, AscGrid};
use crate::cache::HeaderCache;
use crate::codec::{self, compression};
use crate::error::CogError;
use crate::geo::{self, GeoKeys, MetadataItem};
use crate::pixel::{Pixel, SampleType};
use crate::raster::{Crs, GeoTransform, Raster, Window};
use crate::tiff::{self, Header, Ifd, Source, tag};

/// Default size of the header prefix read when opening a file (bytes).
pub const DEFAULT_PREFIX: u64 = 32 * 1024;
/// Largest decoded block accepted (bytes).
pub const MAX_BLOCK_BYTES: u64 = 1 << 30;
/// Largest window a single read may return (bytes of output per band).
pub const MAX_WINDOW_BYTES: u64 = 4 << 30;
/// Most compressed bytes one window read fetches ahead (blocks that follow the fetched ones
/// in the file, merged into the same requests).
pub const READ_AHEAD_BYTES: u64 = 8 << 20;
/// Read-ahead of a request may reach this many bytes even when the request is smaller
/// (small blocks cost a request each; a little more data per request is cheaper).
pub const READ_AHEAD_MIN_BYTES: u64 = 256 << 10;
/// Most compressed bytes of read-ahead blocks an open reader keeps (oldest evicted first).
pub const READ_AHEAD_CACHE_BYTES: u64 = 16 << 20;

/// How to open a file.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Bytes of the first read (doubled only while IFDs lie beyond it).
    pub prefix: u64,
    /// Look for a GDAL external overview file `<uri>.ovr` when the file has no internal
    /// overviews (one extra HEAD request).
    pub external_overviews: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            prefix: DEFAULT_PREFIX,
            external_overviews: false,
        }
    }
}

/// Scale/offset and description of one band (GDAL_METADATA).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BandInfo {
    /// Physical value = raw × scale + offset.
    pub scale: Option<f64>,
    pub offset: Option<f64>,
    pub description: Option<String>,
}

/// What a file holds (the `cog info` JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CogInfo {
    pub uri: String,
    /// Image size in pixels.
    pub width: u64,
    pub height: u64,
    /// Number of bands (samples per pixel, alpha included).
    pub bands: usize,
    /// Sample type of every band.
    pub dtype: SampleType,
    /// Block (tile, or strip: full width × rows per strip) size in pixels, `[width, height]`.
    pub block: [u64; 2],
    pub tiled: bool,
    /// GDAL's compression name (`DEFLATE`, `LZW`, `ZSTD`, `NONE`, ...).
    pub compression: String,
    /// TIFF predictor (1 none, 2 horizontal, 3 floating point).
    pub predictor: u16,
    /// `pixel` (chunky) or `band` (planar).
    pub interleave: String,
    /// TIFF photometric interpretation (1 MinIsBlack, 2 RGB, 6 YCbCr, ...).
    pub photometric: u16,
    pub bigtiff: bool,
    /// Overview sizes `[width, height]`, largest first (internal, or from a `.ovr` file).
    pub overviews: Vec<[u64; 2]>,
    /// True when the file has an internal (GDAL) mask.
    pub mask: bool,
    /// GDAL geotransform (CRS units; default when the file has none).
    pub geotransform: GeoTransform,
    /// True when the file carries georeferencing (a transform).
    pub georeferenced: bool,
    pub crs: Crs,
    /// GDAL_NODATA, as a double.
    pub nodata: Option<f64>,
    /// Per band scale/offset/description.
    pub band_info: Vec<BandInfo>,
    /// Dataset-level GDAL metadata items (default domain).
    pub metadata: BTreeMap<String, String>,
    /// The GeoKeys as stored.
    pub geokeys: GeoKeys,
    /// True when GDAL's COG ghost header says the IFDs come before the data.
    pub cog_layout: bool,
    /// URI of the external overview file, if used.
    pub external_overviews: Option<String>,
}

/// One block (tile or strip) of an image, see [`CogReader::block_layout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockInfo {
    /// Pixels the block covers (clipped to the image).
    pub window: Window,
    /// Band index (0-based) of a planar file's block, 0 for pixel-interleaved files.
    pub plane: usize,
    /// Byte offset in the file (0 for a missing block).
    pub offset: u64,
    /// Compressed size in bytes (0 for a missing block).
    pub bytes: u64,
}

#[derive(Debug)]
struct Blocks {
    offsets: Vec<u64>,
    counts: Vec<u64>,
    /// Byte ranges of the stored, plausibly sized blocks, sorted (file order), for
    /// read-ahead.
    order: Vec<std::ops::Range<u64>>,
}

/// Compressed blocks fetched ahead of need, keyed by `(file index, offset)`, bounded by
/// [`READ_AHEAD_CACHE_BYTES`] (oldest evicted first).
#[derive(Debug, Default)]
struct ReadAhead {
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

/// One image (IFD) of a file: the full resolution, an overview or a mask.
#[derive(Debug)]
struct Image {
    file: usize,
    ifd: Ifd,
    width: u64,
    height: u64,
    spp: usize,
    bits: u16,
    /// `None` for 1-bit masks.
    stype: Option<SampleType>,
    compression: u16,
    predictor: u16,
    planar: bool,
    tiled: bool,
    block_w: u64,
    block_h: u64,
    across: u64,
    down: u64,
    is_mask: bool,
    reduced: bool,
    photometric: u16,
    jpeg_tables: Option<Bytes>,
    blocks: Mutex<Option<Arc<Blocks>>>,
}

impl Image {
    fn blocks_per_plane(&self) -> u64 {
        self.across * self.down
    }

    /// Bytes of one decoded block row (a row of one block).
    fn row_bytes(&self) -> usize {
        let samples = if self.planar { 1 } else { self.spp };
        if self.bits == 1 {
            (self.block_w as usize * samples).div_ceil(8)
        } else {
            self.block_w as usize * samples * (self.bits as usize / 8)
        }
    }

    /// Rows of block row `r` (strips at the bottom may be short).
    fn rows_in_block(&self, r: u64) -> u64 {
        if self.tiled {
            self.block_h
        } else {
            self.block_h.min(self.height - r * self.block_h)
        }
    }
}

struct File {
    uri: String,
    cache: HeaderCache,
    header: Header,
    /// The whole file, for readers made with [`CogReader::from_bytes`].
    mem: Option<Bytes>,
}

/// An opened GeoTIFF/COG: structure parsed once, windows read on demand. Cheap to share
/// between threads (`&CogReader` is `Sync`).
pub struct CogReader {
    store: Store,
    files: Vec<File>,
    /// Full resolution first, then overviews, largest first.
    levels: Vec<Image>,
    /// Masks matching `levels` by size, when present.
    masks: Vec<Image>,
    info: CogInfo,
    metadata_items: Vec<MetadataItem>,
    /// Set for ESRI ASCII grids (read whole, then windowed in memory).
    asc: Option<Arc<AscGrid>>,
    /// Blocks fetched ahead by window reads.
    ahead: Mutex<ReadAhead>,
}

impl std::fmt::Debug for CogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CogReader")
            .field("info", &self.info)
            .finish()
    }
}

fn parse_image<S: Source + ?Sized>(
    r: &tiff::Reader<'_, S>,
    file: usize,
    ifd: Ifd,
) -> Result<Image, CogError> {
    let uri = r.src.uri().to_string();
    let off = ifd.offset;
    let bad = |what: String| CogError::invalid(&uri, format!("IFD at offset {off}: {what}"));
    let one = |t: u16| -> Result<Option<u64>, CogError> {
        match ifd.get(t) {
            Some(e) => Ok(Some(r.u64_one(e)?)),
            None => Ok(None),
        }
    };
    let width = one(tag::IMAGE_WIDTH)?.ok_or_else(|| bad("no ImageWidth".into()))?;
    let height = one(tag::IMAGE_LENGTH)?.ok_or_else(|| bad("no ImageLength".into()))?;
    if width == 0 || height == 0 || width > u32::MAX as u64 * 4 || height > u32::MAX as u64 * 4 {
        return Err(bad(format!("bad image size {width}x{height}")));
    }
    let spp = one(tag::SAMPLES_PER_PIXEL)?.unwrap_or(1);
    if spp == 0 || spp > 65535 {
        return Err(bad(format!("bad SamplesPerPixel {spp}")));
    }
    let bits_v = match ifd.get(tag::BITS_PER_SAMPLE) {
        Some(e) => r.u64s(e)?,
        None => vec![1],
    };
    let bits = *bits_v
        .first()
        .ok_or_else(|| bad("empty BitsPerSample".into()))?;
    if bits_v.iter().any(|&b| b != bits) {
        return Err(CogError::unsupported(
            &uri,
            format!("IFD at offset {off}: bands with different BitsPerSample {bits_v:?}"),
        ));
    }
    let fmt_v = match ifd.get(tag::SAMPLE_FORMAT) {
        Some(e) => r.u64s(e)?,
        None => vec![1],
    };
    let fmt = fmt_v.first().copied().unwrap_or(1);
    let subfile = one(tag::NEW_SUBFILE_TYPE)?.unwrap_or(0);
    let photometric = one(tag::PHOTOMETRIC)?.unwrap_or(1);
    let is_mask = subfile & 4 != 0 && photometric == 4;
    let bits16 = u16::try_from(bits).map_err(|_| bad(format!("BitsPerSample {bits}")))?;
    let stype = SampleType::from_tiff(bits16, fmt as u16);
    if stype.is_none() && !(bits == 1 && spp == 1) {
        return Err(CogError::unsupported(
            &uri,
            format!("IFD at offset {off}: BitsPerSample {bits} with SampleFormat {fmt}"),
        ));
    }
    let compression = one(tag::COMPRESSION)?.unwrap_or(1) as u16;
    let predictor = one(tag::PREDICTOR)?.unwrap_or(1) as u16;
    let planar = one(tag::PLANAR_CONFIG)?.unwrap_or(1) == 2 && spp > 1;
    let tiled = ifd.get(tag::TILE_OFFSETS).is_some();
    let (block_w, block_h) = if tiled {
        let tw = one(tag::TILE_WIDTH)?.ok_or_else(|| bad("tiled without TileWidth".into()))?;
        let th = one(tag::TILE_LENGTH)?.ok_or_else(|| bad("tiled without TileLength".into()))?;
        if tw == 0 || th == 0 {
            return Err(bad(format!("tile size {tw}x{th}")));
        }
        (tw, th)
    } else {
        if ifd.get(tag::STRIP_OFFSETS).is_none() {
            return Err(bad("neither TileOffsets nor StripOffsets".into()));
        }
        let rps = one(tag::ROWS_PER_STRIP)?.unwrap_or(u32::MAX as u64);
        (width, rps.clamp(1, height))
    };
    let samples = if planar { 1 } else { spp };
    let block_bytes =
        (block_w as u128) * (block_h as u128) * (samples as u128) * (bits as u128) / 8;
    if block_bytes > MAX_BLOCK_BYTES as u128 {
        return Err(CogError::too_large(
            &uri,
            format!(
                "IFD at offset {off}: blocks of {block_w}x{block_h} pixels x {samples} samples \
                 exceed {MAX_BLOCK_BYTES} bytes"
            ),
        ));
    }
    let across = width.div_ceil(block_w);
    let down = height.div_ceil(block_h);
    let jpeg_tables = match ifd.get(tag::JPEG_TABLES) {
        Some(e) if compression == codec::compression::JPEG => Some(r.raw_value(e)?),
        _ => None,
    };
    Ok(Image {
        file,
        ifd,
        width,
        height,
        spp: spp as usize,
        bits: bits16,
        stype,
        compression,
        predictor,
        planar,
        tiled,
        block_w,
        block_h,
        across,
        down,
        is_mask,
        reduced: subfile & 1 != 0,
        photometric: photometric as u16,
        jpeg_tables,
        blocks: Mutex::new(None),
    })
}

impl CogReader {
    /// Opens `uri` with default options (one 32 KiB GET for a normal COG).
    pub fn open(store: &Store, uri: &str) -> Result<CogReader, CogError> {
        Self::open_with(store, uri, &OpenOptions::default())
    }

    /// Opens `uri` with `options`.
    pub fn open_with(
        store: &Store,
        uri: &str,
        options: &OpenOptions,
    ) -> Result<CogReader, CogError> {
        if is_asc_name(uri) {
            return Ok(Self::from_asc(store, uri, asc::read(store, uri)?));
        }
        let cache = HeaderCache::open(store, uri, options.prefix)?;
        Self::open_cache(store, uri, cache, options, None)
    }

    /// A reader over a whole TIFF (or ASCII grid) already in memory; `name` is used in
    /// errors. No storage requests are made.
    pub fn from_bytes(name: &str, data: Bytes) -> Result<CogReader, CogError> {
        let store = crate::cache::unused_store();
        let cache = HeaderCache::from_bytes(name, data.clone());
        Self::open_cache(&store, name, cache, &OpenOptions::default(), Some(data))
    }

    fn open_cache(
        store: &Store,
        uri: &str,
        cache: HeaderCache,
        options: &OpenOptions,
        mem: Option<Bytes>,
    ) -> Result<CogReader, CogError> {
        let prefix = cache.prefix();
        let header = match Header::parse(uri, &prefix) {
            Ok(h) => h,
            Err(e) => {
                let head =
                    String::from_utf8_lossy(&prefix[..prefix.len().min(16)]).to_ascii_lowercase();
                if head.trim_start().starts_with("ncols") || head.trim_start().starts_with("nrows")
                {
                    let grid = match &mem {
                        Some(b) => asc::parse(uri, b)?,
                        None => asc::read(store, uri)?,
                    };
                    return Ok(Self::from_asc(store, uri, grid));
                }
                return Err(e);
            }
        };
        let cog_layout = {
            let n = prefix.len().min(1024);
            String::from_utf8_lossy(&prefix[..n]).contains("LAYOUT=IFDS_BEFORE_DATA")
        };
        let mut reader = {
            let tr = tiff::Reader::new(&cache, header);
            let ifds = tr.ifds()?;
            let mut images = Vec::with_capacity(ifds.len());
            for ifd in ifds {
                images.push(parse_image(&tr, 0, ifd)?);
            }
            let main = images.remove(0);
            let (info, items) = describe(&tr, uri, &main)?;
            let mut levels = vec![main];
            let mut masks = Vec::new();
            for im in images {
                if im.is_mask {
                    masks.push(im);
                } else if im.reduced || im.width < levels[0].width {
                    // As GDAL does, an IFD whose samples differ from the full image's (count,
                    // type, width) is no overview of it: reading it as one would give wrong
                    // pixels.
                    let main = &levels[0];
                    if !same_samples(&im, main) {
                        tracing::warn!(
                            uri,
                            width = im.width,
                            "an overview IFD whose samples differ from the image's is ignored"
                        );
                        continue;
                    }
                    levels.push(im);
                }
            }
            let mut info = info;
            info.cog_layout = cog_layout;
            CogReader {
                store: store.clone(),
                files: Vec::new(),
                levels,
                masks,
                info,
                metadata_items: items,
                asc: None,
                ahead: Mutex::default(),
            }
        };
        reader.files.push(File {
            uri: uri.to_string(),
            cache,
            header,
            mem,
        });
        if options.external_overviews && reader.levels.len() == 1 {
            let ovr = format!("{uri}.ovr");
            if store.exists(&ovr).map_err(|e| CogError::store(&ovr, e))? {
                let cache = HeaderCache::open(store, &ovr, options.prefix)?;
                let header = Header::parse(&ovr, &cache.prefix())?;
                let tr = tiff::Reader::new(&cache, header);
                let file = reader.files.len();
                for ifd in tr.ifds()? {
                    let im = parse_image(&tr, file, ifd)?;
                    if im.is_mask {
                        continue;
                    }
                    if !same_samples(&im, &reader.levels[0]) {
                        return Err(CogError::invalid(
                            &ovr,
                            "external overviews differ in bands or type from the image",
                        ));
                    }
                    reader.levels.push(im);
                }
                reader.files.push(File {
                    uri: ovr.clone(),
                    cache,
                    header,
                    mem: None,
                });
                reader.info.external_overviews = Some(ovr);
            }
        }
        reader.levels[1..].sort_by(|a, b| b.width.cmp(&a.width).then(b.height.cmp(&a.height)));
        reader.masks.sort_by_key(|m| std::cmp::Reverse(m.width));
        reader.info.overviews = reader.levels[1..]
            .iter()
            .map(|l| [l.width, l.height])
            .collect();
        reader.info.mask = reader.masks.first().is_some_and(|m| {
            m.width == reader.levels[0].width && m.height == reader.levels[0].height
        });
        Ok(reader)
    }

    fn from_asc(store: &Store, uri: &str, g: AscGrid) -> CogReader {
        let info = CogInfo {
            uri: uri.to_string(),
            width: g.width,
            height: g.height,
            bands: 1,
            dtype: g.dtype,
            block: [g.width, 1],
            tiled: false,
            compression: "NONE".into(),
            predictor: 1,
            interleave: "pixel".into(),
            photometric: 1,
            bigtiff: false,
            overviews: Vec::new(),
            mask: false,
            geotransform: g.transform,
            georeferenced: true,
            crs: g.crs.clone(),
            nodata: g.nodata,
            band_info: vec![BandInfo::default()],
            metadata: BTreeMap::new(),
            geokeys: GeoKeys::default(),
            cog_layout: false,
            external_overviews: None,
        };
        CogReader {
            store: store.clone(),
            files: Vec::new(),
            levels: Vec::new(),
            masks: Vec::new(),
            info,
            metadata_items: Vec::new(),
            asc: Some(Arc::new(g)),
            ahead: Mutex::default(),
        }
    }

    /// What the file holds.
    pub fn info(&self) -> &CogInfo {
        &self.info
    }

    /// The URI this reader was opened on.
    pub fn uri(&self) -> &str {
        &self.info.uri
    }

    /// All GDAL_METADATA items (dataset and band level).
    pub fn metadata_items(&self) -> &[MetadataItem] {
        &self.metadata_items
    }

    /// Number of overview levels (0 = none).
    pub fn overview_count(&self) -> usize {
        self.levels.len().saturating_sub(1)
    }

    /// Size `(width, height)` of `overview` (0 = full resolution).
    pub fn level_size(&self, overview: usize) -> Result<(u64, u64), CogError> {
        if self.asc.is_some() && overview == 0 {
            return Ok((self.info.width, self.info.height));
        }
        let l = self.level(overview)?;
        Ok((l.width, l.height))
    }

    /// The geotransform of `overview` (0 = full resolution).
    pub fn level_transform(&self, overview: usize) -> Result<GeoTransform, CogError> {
        let (lw, lh) = self.level_size(overview)?;
        let g = self.info.geotransform.0;
        let sx = self.info.width as f64 / lw as f64;
        let sy = self.info.height as f64 / lh as f64;
        Ok(GeoTransform([
            g[0],
            g[1] * sx,
            g[2] * sy,
            g[3],
            g[4] * sx,
            g[5] * sy,
        ]))
    }

    /// The overview level that best serves a read at `factor` pixels of full resolution
    /// per output pixel (GDAL's choice: the most reduced level not coarser than `factor`).
    pub fn overview_for_factor(&self, factor: f64) -> usize {
        let mut best = 0;
        for (i, l) in self.levels.iter().enumerate().skip(1) {
            let f = self.info.width as f64 / l.width as f64;
            if f <= factor * 1.0001 {
                best = i;
            }
        }
        best
    }

    fn level(&self, overview: usize) -> Result<&Image, CogError> {
        self.levels.get(overview).ok_or_else(|| {
            CogError::request(
                self.uri(),
                format!(
                    "overview {overview} does not exist (the file has {})",
                    self.overview_count()
                ),
            )
        })
    }

    /// Tile-aligned windows of at most about `size`×`size` pixels covering the image,
    /// row-major (each a unit of work for one task). `size` is rounded up to whole blocks.
    pub fn plan_windows(&self, size: u64) -> Vec<Window> {
        let (width, height) = (self.info.width, self.info.height);
        let (tiled, bw, bh) = match self.levels.first() {
            Some(l) => (l.tiled, l.block_w, l.block_h),
            None => (false, width, 1),
        };
        let size = size.max(1);
        let step_x = if tiled { size.div_ceil(bw) * bw } else { size };
        let step_y = size.div_ceil(bh) * bh;
        let mut out = Vec::new();
        let mut row = 0;
        while row < height {
            let mut col = 0;
            while col < width {
                out.push(Window::new(
                    col,
                    row,
                    step_x.min(width - col),
                    step_y.min(height - row),
                ));
                col += step_x;
            }
            row += step_y;
        }
        out
    }

    fn read_asc<T: Pixel>(
        &self,
        g: &AscGrid,
        bands: &[usize],
        window: Window,
        overview: usize,
    ) -> Result<Vec<Raster<T>>, CogError> {
        if overview != 0 {
            return Err(CogError::request(
                self.uri(),
                "an ASCII grid has no overviews",
            ));
        }
        if let Some(&b) = bands.iter().find(|&&b| b != 1) {
            return Err(CogError::request(
                self.uri(),
                format!("band {b} does not exist (an ASCII grid has 1 band)"),
            ));
        }
        if window.is_empty()
            || window
                .col_off
                .checked_add(window.width)
                .is_none_or(|e| e > g.width)
            || window
                .row_off
                .checked_add(window.height)
                .is_none_or(|e| e > g.height)
        {
            return Err(CogError::request(
                self.uri(),
                format!(
                    "window {window:?} is empty or not inside the {}x{} grid",
                    g.width, g.height
                ),
            ));
        }
        let float = g.dtype == SampleType::F32;
        let conv = |v: f64| {
            if float {
                T::from_f32(v as f32)
            } else {
                T::from_i32(v as i32)
            }
        };
        let data =
            Array2::from_shape_fn((window.height as usize, window.width as usize), |(r, c)| {
                let i =
                    (window.row_off as usize + r) * g.width as usize + window.col_off as usize + c;
                conv(g.values[i])
            });
        let raster = Raster {
            data,
            transform: g.transform.window(window.col_off, window.row_off),
            crs: g.crs.clone(),
            nodata: g.nodata.map(conv),
        };
        Ok(vec![raster; bands.len()])
    }

    /// The blocks of `overview` (0 = full resolution): pixel window (clipped to the image),
    /// plane (band index for planar files, else 0), and byte range in the file (empty for
    /// blocks missing from a sparse file). Row-major per plane.
    pub fn block_layout(&self, overview: usize) -> Result<Vec<BlockInfo>, CogError> {
        let im = self.level(overview)?;
        let b = self.blocks(im)?;
        let planes = if im.planar { im.spp } else { 1 };
        let mut out = Vec::with_capacity(b.offsets.len());
        for p in 0..planes {
            for r in 0..im.down {
                for c in 0..im.across {
                    let i = p * im.blocks_per_plane() as usize + (r * im.across + c) as usize;
                    let (col, row) = (c * im.block_w, r * im.block_h);
                    out.push(BlockInfo {
                        window: Window::new(
                            col,
                            row,
                            im.block_w.min(im.width - col),
                            im.block_h.min(im.height - row),
                        ),
                        plane: p,
                        offset: b.offsets[i],
                        bytes: if b.offsets[i] == 0 { 0 } else { b.counts[i] },
                    });
                }
            }
        }
        Ok(out)
    }

    fn blocks(&self, im: &Image) -> Result<Arc<Blocks>, CogError> {
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
        let row_bytes = im.row_bytes() as u64;
        let per_plane = im.blocks_per_plane().max(1);
        let mut order: Vec<std::ops::Range<u64>> = offsets
            .iter()
            .zip(&counts)
            .enumerate()
            .filter_map(|(i, (&off, &cnt))| {
                let r = (i as u64 % per_plane) / im.across.max(1);
                let raw = im.rows_in_block(r).saturating_mul(row_bytes);
                let plausible = off != 0 && cnt != 0 && cnt <= raw.saturating_mul(2) + 65536;
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

    /// Reads `window` of band `band` (1-based) of `overview` (0 = full resolution),
    /// converting samples to `T` like an `as` cast. Blocks missing from the file (sparse)
    /// read as nodata (or 0).
    pub fn read_window<T: Pixel>(
        &self,
        band: usize,
        window: Window,
        overview: usize,
    ) -> Result<Raster<T>, CogError> {
        let mut v = self.read_bands::<T>(&[band], window, overview)?;
        v.pop()
            .ok_or_else(|| CogError::request(self.uri(), "no band requested"))
    }

    /// Reads a whole band (1-based) at full resolution.
    pub fn read_band<T: Pixel>(&self, band: usize) -> Result<Raster<T>, CogError> {
        self.read_window(
            band,
            Window::new(0, 0, self.info.width, self.info.height),
            0,
        )
    }

    /// Reads `window` of several bands (1-based) at once; each block is fetched and decoded
    /// once for all bands of a pixel-interleaved file.
    pub fn read_bands<T: Pixel>(
        &self,
        bands: &[usize],
        window: Window,
        overview: usize,
    ) -> Result<Vec<Raster<T>>, CogError> {
        self.read_bands_with(bands, window, overview, None)
    }

    /// Reads several windows of band `band` (1-based) of `overview`, fetching the blocks of
    /// all of them with **one** `Store::get_ranges` call (coalesced, capped by the store),
    /// then decoding the windows in parallel; the results are in the order of `windows`.
    /// A task that reads a batch of small windows thus makes as few requests as one large
    /// window would (GDAL gets a similar effect from its sequential read-ahead).
    pub fn read_windows<T: Pixel>(
        &self,
        band: usize,
        windows: &[Window],
        overview: usize,
    ) -> Result<Vec<Raster<T>>, CogError> {
        let pre = match (&self.asc, windows.len()) {
            (None, 2..) => {
                let im = self.level(overview)?;
                if band == 0 || band > im.spp {
                    None
                } else {
                    self.prefetch(im, band - 1, windows)?
                }
            }
            _ => None,
        };
        windows
            .par_iter()
            .map(|w| {
                let mut v = self.read_bands_with::<T>(&[band], *w, overview, pre.as_ref())?;
                v.pop()
                    .ok_or_else(|| CogError::request(self.uri(), "no band requested"))
            })
            .collect()
    }

    /// Fetches, in one `get_ranges` call, every stored block of `plane` that the valid
    /// `windows` touch. `None` when there is nothing to fetch, the blocks would exceed
    /// [`MAX_WINDOW_BYTES`], or the fetch fails (each window then reads, and reports errors,
    /// on its own).
    fn prefetch(
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
        let row_bytes = im.row_bytes() as u64;
        let mut ranges = Vec::with_capacity(want.len());
        let mut total = 0u64;
        for (r, c) in want {
            let idx = (plane * im.blocks_per_plane() + r * im.across + c) as usize;
            let (Some(&off), Some(&cnt)) = (blocks.offsets.get(idx), blocks.counts.get(idx)) else {
                continue;
            };
            let raw = im.rows_in_block(r).saturating_mul(row_bytes);
            if off == 0 || cnt == 0 || cnt > raw.saturating_mul(2).saturating_add(65536) {
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

    fn read_bands_with<T: Pixel>(
        &self,
        bands: &[usize],
        window: Window,
        overview: usize,
        pre: Option<&Prefetched>,
    ) -> Result<Vec<Raster<T>>, CogError> {
        if let Some(g) = &self.asc {
            return self.read_asc(g, bands, window, overview);
        }
        let im = self.level(overview)?;
        for &b in bands {
            if b == 0 || b > im.spp {
                return Err(CogError::request(
                    self.uri(),
                    format!(
                        "band {b} does not exist (the file has {} bands, numbered from 1)",
                        im.spp
                    ),
                ));
            }
        }
        let transform = self
            .level_transform(overview)?
            .window(window.col_off, window.row_off);
        let nodata = self.info.nodata;
        let planes: Vec<usize> = bands.iter().map(|b| b - 1).collect();
        let data = self.read_image::<T>(im, &planes, window, nodata, pre)?;
        Ok(data
            .into_iter()
            .map(|d| Raster {
                data: d,
                transform,
                crs: self.info.crs.clone(),
                nodata: nodata.map(T::from_f64),
            })
            .collect())
    }

    /// Reads the internal mask (0 = nodata, 255 = valid, as GDAL) of `window` at `overview`.
    pub fn read_mask(&self, window: Window, overview: usize) -> Result<Array2<u8>, CogError> {
        let l = self.level(overview)?;
        let m = self
            .masks
            .iter()
            .find(|m| m.width == l.width && m.height == l.height)
            .ok_or_else(|| {
                CogError::request(
                    self.uri(),
                    format!("no internal mask at overview {overview}"),
                )
            })?;
        let mut v = self.read_image::<u8>(m, &[0], window, None, None)?;
        v.pop()
            .ok_or_else(|| CogError::request(self.uri(), "mask read returned nothing"))
    }

    fn read_image<T: Pixel>(
        &self,
        im: &Image,
        planes: &[usize],
        window: Window,
        nodata: Option<f64>,
        pre: Option<&Prefetched>,
    ) -> Result<Vec<Array2<T>>, CogError> {
        let file = &self.files[im.file];
        let uri = file.uri.as_str();
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
                    window.col_off,
                    window.row_off,
                    window.width,
                    window.height,
                    im.width,
                    im.height
                ),
            ));
        }
        let out_bytes =
            window.width as u128 * window.height as u128 * std::mem::size_of::<T>() as u128;
        if out_bytes > MAX_WINDOW_BYTES as u128 {
            return Err(CogError::too_large(
                uri,
                format!(
                    "a window of {}x{} pixels needs {out_bytes} bytes (limit {MAX_WINDOW_BYTES} per band)",
                    window.width, window.height
                ),
            ));
        }
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
        let blocks = self.blocks(im)?;
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
        struct Job {
            plane: usize,
            r: u64,
            c: u64,
            /// Rows of the block fetched/decoded: from `row_a` (block-relative).
            row_a: u64,
            rows: u64,
            range: Option<std::ops::Range<u64>>,
        }
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
                        let cap = raw_len.saturating_mul(2).saturating_add(65536);
                        if cnt > cap {
                            return Err(CogError::invalid(
                                uri,
                                format!(
                                    "block {idx} claims {cnt} bytes for {raw_len} bytes of pixels"
                                ),
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
        let ranges: Vec<std::ops::Range<u64>> =
            jobs.iter().filter_map(|j| j.range.clone()).collect();
        let fetched = if ranges.is_empty() {
            Vec::new()
        } else if let Some(mem) = &file.mem {
            let len = mem.len() as u64;
            ranges
                .iter()
                .map(|r| {
                    if r.end > len {
                        Err(CogError::invalid(
                            uri,
                            format!(
                                "block data {}..{} lies past the end of the file ({len} bytes)",
                                r.start, r.end
                            ),
                        ))
                    } else {
                        Ok(mem.slice(r.start as usize..r.end as usize))
                    }
                })
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
            let ahead = !(uncompressed && im.predictor == 1);
            self.fetch_blocks(im.file, uri, &blocks, &ranges, ahead)?
        };
        let mut fetched = fetched.into_iter();
        let inputs: Vec<(usize, Option<Bytes>)> = jobs
            .iter()
            .enumerate()
            .map(|(i, j)| (i, j.range.as_ref().and_then(|_| fetched.next())))
            .collect();
        let le = file.header.little_endian;
        let fill = nodata.map(T::from_f64).unwrap_or_default();
        let (w, h) = (window.width as usize, window.height as usize);
        let mut outs: Vec<Array2<T>> = planes
            .iter()
            .map(|_| Array2::from_elem((h, w), fill))
            .collect();
        // Split every output into disjoint views, one per block the window touches, so that
        // blocks decode and copy in parallel without sharing mutable state.
        let heights: Vec<usize> = (r0..=r1)
            .map(|r| {
                let top = (r * im.block_h).max(window.row_off);
                let bottom = ((r + 1) * im.block_h).min(window.row_off + window.height);
                (bottom - top) as usize
            })
            .collect();
        let widths: Vec<usize> = (c0..=c1)
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
        for (i, (j, data)) in jobs.iter().zip(inputs).enumerate() {
            let Some(data) = data.1 else { continue };
            let cell = (j.r - r0) as usize * ncols + (j.c - c0) as usize;
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
        let direct = uncompressed && im.predictor == 1 && im.bits >= 8 && le;
        tasks
            .into_par_iter()
            .try_for_each(|t| -> Result<(), CogError> {
                let j = &jobs[t.job];
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
}

impl CogReader {
    /// Fetches `ranges` of file `file` (blocks of one image described by `blocks`) in one
    /// `get_ranges` call, serving what it can from the read-ahead cache. With `ahead`, each
    /// merged request is extended to the blocks that follow it in the file (gap at most the
    /// store's coalescing gap), up to as many bytes as that request fetches (at least one
    /// block or [`READ_AHEAD_MIN_BYTES`]; at most [`READ_AHEAD_BYTES`] in all), and only
    /// when this adds no request;
    /// those blocks go to the cache for later windows.
    fn fetch_blocks(
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

    /// The blocks to fetch ahead with `misses` (see [`CogReader::fetch_blocks`]).
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

/// Block bytes fetched ahead for several windows: `(file offset, bytes)` sorted by offset.
struct Prefetched(Vec<(u64, Bytes)>);

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

thread_local! {
    /// Each rayon worker decodes into its own reused buffer.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
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
fn decode_block_into(
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
        photometric: im.photometric,
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

fn describe<S: Source + ?Sized>(
    tr: &tiff::Reader<'_, S>,
    uri: &str,
    main: &Image,
) -> Result<(CogInfo, Vec<MetadataItem>), CogError> {
    let ifd = &main.ifd;
    let f64s = |t: u16| -> Result<Option<Vec<f64>>, CogError> {
        match ifd.get(t) {
            Some(e) => Ok(Some(tr.f64s(e)?)),
            None => Ok(None),
        }
    };
    let ascii = |t: u16| -> Result<Option<String>, CogError> {
        match ifd.get(t) {
            Some(e) => Ok(Some(tr.ascii(e)?)),
            None => Ok(None),
        }
    };
    let dir = match ifd.get(tag::GEO_KEY_DIRECTORY) {
        Some(e) => tr.u64s(e)?,
        None => Vec::new(),
    };
    let doubles = f64s(tag::GEO_DOUBLE_PARAMS)?.unwrap_or_default();
    let gascii = ascii(tag::GEO_ASCII_PARAMS)?.unwrap_or_default();
    let (geokeys, warnings) = GeoKeys::parse(&dir, &doubles, &gascii);
    for w in warnings {
        tracing::warn!(uri, "{w}");
    }
    let scale = f64s(tag::MODEL_PIXEL_SCALE)?;
    let tie = f64s(tag::MODEL_TIEPOINT)?;
    let model = f64s(tag::MODEL_TRANSFORMATION)?;
    let gt = geo::transform_from_tags(
        scale.as_deref(),
        tie.as_deref(),
        model.as_deref(),
        geokeys.pixel_is_point(),
    );
    // GDAL keeps a Float32 band's nodata at float precision.
    let nodata = ascii(tag::GDAL_NODATA)?
        .and_then(|s| geo::parse_nodata(&s))
        .map(|v| {
            if main.stype == Some(SampleType::F32) {
                v as f32 as f64
            } else {
                v
            }
        });
    let items = ascii(tag::GDAL_METADATA)?
        .map(|x| geo::parse_gdal_metadata(&x))
        .unwrap_or_default();
    let mut band_info = vec![BandInfo::default(); main.spp];
    let mut metadata = BTreeMap::new();
    for it in &items {
        match (it.sample, it.role.as_deref()) {
            (Some(s), Some(role)) if (s as usize) < main.spp => {
                let b = &mut band_info[s as usize];
                match role {
                    "scale" => b.scale = it.value.trim().parse().ok(),
                    "offset" => b.offset = it.value.trim().parse().ok(),
                    "description" => b.description = Some(it.value.clone()),
                    _ => {}
                }
            }
            (None, None) if it.domain.is_none() => {
                metadata.insert(it.name.clone(), it.value.clone());
            }
            _ => {}
        }
    }
    let dtype = main.stype.ok_or_else(|| {
        CogError::unsupported(
            uri,
            "the main image is 1-bit; only 8-64 bit samples are read",
        )
    })?;
    Ok((
        CogInfo {
            uri: uri.to_string(),
            width: main.width,
            height: main.height,
            bands: main.spp,
            dtype,
            block: [main.block_w, main.block_h],
            tiled: main.tiled,
            compression: codec::compression_name(main.compression),
            predictor: main.predictor,
            interleave: if main.planar { "band" } else { "pixel" }.to_string(),
            photometric: main.photometric,
            bigtiff: tr.header.bigtiff,
            overviews: Vec::new(),
            mask: false,
            geotransform: gt.unwrap_or_default(),
            georeferenced: gt.is_some(),
            crs: geokeys.crs(),
            nodata,
            band_info,
            metadata,
            geokeys,
            cog_layout: false,
            external_overviews: None,
        },
        items,
    ))
}

/// Whether an overview IFD holds the same samples as the full image: count, type and
/// width (each IFD's own interleaving is read as it is).
fn same_samples(ovr: &Image, main: &Image) -> bool {
    ovr.spp == main.spp && ovr.stype == main.stype && ovr.bits == main.bits
}

/// The pixel grid of the raster at `uri` — geotransform, width, height — read from its
/// header alone (a GeoTIFF's first request; an ASCII grid's first 4 KiB), for planning.
pub fn grid_of(store: &Store, uri: &str) -> Result<(GeoTransform, u64, u64), CogError> {
    if is_asc_name(uri) {
        let h = crate::asc::read_header(store, uri)?;
        return Ok((h.transform, h.width, h.height));
    }
    let r = CogReader::open(store, uri)?;
    let i = r.info();
    Ok((i.geotransform, i.width, i.height))
}

fn is_asc_name(uri: &str) -> bool {
    let l = uri.to_ascii_lowercase();
    l.ends_with(".asc") || l.ends_with(".asc.txt")
}
