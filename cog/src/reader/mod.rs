//! [`CogReader`]: an opened GeoTIFF/COG or ESRI ASCII grid. Opening reads one header
//! prefix; each window read fetches the blocks it touches with one `get_ranges` call and
//! decodes them on rayon. A read goes through four steps, one module each:
//!
//! 1. `image`: each IFD parsed into an image (size, samples, codec, block grid), and the
//!    file's [`CogInfo`] (georeferencing, GDAL metadata);
//! 2. `plan`: which blocks a window needs and which byte ranges hold them (no I/O);
//! 3. `fetch`: those ranges in one `Store::get_ranges` call, with read-ahead; also
//!    [`CogReader::fetch_block`], one compressed [`Block`];
//! 4. `decode`: decompress, un-predict and copy each block's part of the window, on rayon;
//!    also [`CogReader::decode_block`].
//!
//! An ESRI ASCII grid is its own source (`ascii`), chosen when the file is opened.

mod ascii;
mod decode;
mod fetch;
mod image;
mod plan;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cloud::Store;
use ndarray::Array2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use fetch::Block;
use fetch::{Prefetched, ReadAhead};
use image::{Image, describe, parse_image, same_samples};

use crate::asc::{self, AscGrid};
use crate::cache::HeaderCache;
use crate::error::CogError;
use crate::geo::{GeoKeys, MetadataItem};
use crate::pixel::{Pixel, SampleType};
use crate::raster::{Crs, GeoTransform, Raster, Window};
use crate::tiff::{self, Header};

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
        plan::check_read(uri, im, window, std::mem::size_of::<T>())?;
        let blocks = self.blocks(im)?;
        let plan = plan::plan_window(uri, im, &blocks, window, planes)?;
        let inputs = self.fetch_plan(im, &blocks, &plan, pre)?;
        let le = file.header.little_endian;
        decode::decode_window(uri, im, le, &plan, inputs, planes, window, nodata)
    }
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
