//! Image parsing: one IFD of a TIFF into an [`Image`] (size, samples, compression, block
//! grid), and the main image's georeferencing and GDAL metadata into [`CogInfo`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::plan::Blocks;
use super::{BandInfo, CogInfo, MAX_BLOCK_BYTES};
use crate::codec;
use crate::error::CogError;
use crate::geo::{self, GeoKeys, MetadataItem};
use crate::pixel::SampleType;
use crate::tiff::{self, Ifd, Source, tag};

/// One image (IFD) of a file: the full resolution, an overview or a mask.
#[derive(Debug)]
pub(super) struct Image {
    pub(super) file: usize,
    pub(super) ifd: Ifd,
    pub(super) width: u64,
    pub(super) height: u64,
    pub(super) spp: usize,
    pub(super) bits: u16,
    /// `None` for 1-bit masks.
    pub(super) stype: Option<SampleType>,
    pub(super) compression: u16,
    pub(super) predictor: u16,
    pub(super) planar: bool,
    pub(super) tiled: bool,
    pub(super) block_w: u64,
    pub(super) block_h: u64,
    pub(super) across: u64,
    pub(super) down: u64,
    pub(super) is_mask: bool,
    pub(super) reduced: bool,
    pub(super) photometric: u16,
    pub(super) jpeg_tables: Option<Bytes>,
    pub(super) blocks: Mutex<Option<Arc<Blocks>>>,
}

impl Image {
    pub(super) fn blocks_per_plane(&self) -> u64 {
        self.across * self.down
    }

    /// Bytes of one decoded block row (a row of one block).
    pub(super) fn row_bytes(&self) -> usize {
        let samples = if self.planar { 1 } else { self.spp };
        if self.bits == 1 {
            (self.block_w as usize * samples).div_ceil(8)
        } else {
            self.block_w as usize * samples * (self.bits as usize / 8)
        }
    }

    /// Rows of block row `r` (strips at the bottom may be short).
    pub(super) fn rows_in_block(&self, r: u64) -> u64 {
        if self.tiled {
            self.block_h
        } else {
            self.block_h.min(self.height - r * self.block_h)
        }
    }

    /// Most stored (compressed) bytes a block of block row `r` may plausibly claim: twice
    /// its decoded size plus 64 KiB. A larger byte count is a hostile or broken header.
    pub(super) fn max_stored_bytes(&self, r: u64) -> u64 {
        self.rows_in_block(r)
            .saturating_mul(self.row_bytes() as u64)
            .saturating_mul(2)
            .saturating_add(65536)
    }
}

/// Parses IFD `ifd` of file `file` (0 the main file, 1 a `.ovr`) into an [`Image`],
/// checking every number it needs and bounding its blocks by [`MAX_BLOCK_BYTES`].
pub(super) fn parse_image<S: Source + ?Sized>(
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

/// What the main image `main` of a file holds: [`CogInfo`] (without the overviews and mask
/// found later) and every GDAL_METADATA item.
pub(super) fn describe<S: Source + ?Sized>(
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
pub(super) fn same_samples(ovr: &Image, main: &Image) -> bool {
    ovr.spp == main.spp && ovr.stype == main.stype && ovr.bits == main.bits
}
