//! Block codecs (decompression and compression) and TIFF predictors.
//!
//! Codecs come from crates: DEFLATE from `libdeflater` (measured faster than miniz/flate2,
//! see the benchmark), LZW from `weezl`, ZSTD from `zstd`. PackBits, a dozen lines, is the
//! only codec written here.

use std::cell::RefCell;

/// TIFF compression codes.
pub mod compression {
    pub const NONE: u16 = 1;
    pub const CCITT_RLE: u16 = 2;
    pub const CCITT_FAX3: u16 = 3;
    pub const CCITT_FAX4: u16 = 4;
    pub const LZW: u16 = 5;
    pub const OJPEG: u16 = 6;
    pub const JPEG: u16 = 7;
    pub const ADOBE_DEFLATE: u16 = 8;
    pub const PACKBITS: u16 = 32773;
    pub const DEFLATE: u16 = 32946;
    pub const LERC: u16 = 34887;
    pub const LZMA: u16 = 34925;
    pub const ZSTD: u16 = 50000;
    pub const WEBP: u16 = 50001;
    pub const JXL: u16 = 50002;
}

/// A human name for a TIFF compression code (GDAL's spelling).
pub fn compression_name(code: u16) -> String {
    use compression::*;
    match code {
        NONE => "NONE".into(),
        CCITT_RLE => "CCITTRLE".into(),
        CCITT_FAX3 => "CCITTFAX3".into(),
        CCITT_FAX4 => "CCITTFAX4".into(),
        LZW => "LZW".into(),
        OJPEG => "OJPEG".into(),
        JPEG => "JPEG".into(),
        ADOBE_DEFLATE | DEFLATE => "DEFLATE".into(),
        PACKBITS => "PACKBITS".into(),
        LERC => "LERC".into(),
        LZMA => "LZMA".into(),
        ZSTD => "ZSTD".into(),
        WEBP => "WEBP".into(),
        JXL => "JXL".into(),
        other => format!("UNKNOWN({other})"),
    }
}

/// True when this crate can decode blocks with the compression code.
pub fn can_decode(code: u16) -> bool {
    use compression::*;
    matches!(
        code,
        NONE | LZW | ADOBE_DEFLATE | DEFLATE | PACKBITS | ZSTD | JPEG | WEBP
    )
}

/// What a block decoder needs besides the bytes (JPEG and WebP carry whole images).
#[derive(Debug, Clone, Default)]
pub struct BlockCtx {
    pub compression: u16,
    /// Samples per pixel in a block.
    pub samples: usize,
    /// JPEGTables (abbreviated table stream) when present.
    pub jpeg_tables: Option<bytes::Bytes>,
    /// Block size in pixels (a JPEG/WebP image larger than this is refused).
    pub width: usize,
    pub height: usize,
}

/// Decodes one block whose codec needs [`BlockCtx`] (JPEG, WebP) or any other codec into a
/// reusable buffer.
pub fn decompress_block_into(
    ctx: &BlockCtx,
    data: &[u8],
    expected: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match ctx.compression {
        compression::JPEG => *out = jpeg_decode(ctx, data, expected)?,
        compression::WEBP => *out = webp_decode(ctx, data, expected)?,
        c => decompress_into(c, data, expected, out)?,
    }
    Ok(())
}

fn jpeg_decode(ctx: &BlockCtx, data: &[u8], expected: usize) -> Result<Vec<u8>, String> {
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    let stream: std::borrow::Cow<'_, [u8]> = match &ctx.jpeg_tables {
        Some(t) if t.len() >= 4 && data.len() >= 2 => {
            // Tables without their EOI, then the block without its SOI.
            let mut s = Vec::with_capacity(t.len() + data.len());
            s.extend_from_slice(&t[..t.len() - 2]);
            s.extend_from_slice(&data[2..]);
            std::borrow::Cow::Owned(s)
        }
        _ => std::borrow::Cow::Borrowed(data),
    };
    let out_cs = match ctx.samples {
        1 => ColorSpace::Luma,
        3 => ColorSpace::RGB,
        4 => ColorSpace::CMYK,
        n => return Err(format!("JPEG with {n} samples per pixel is not supported")),
    };
    let opts = DecoderOptions::default()
        .jpeg_set_out_colorspace(out_cs)
        .set_max_width(ctx.width.max(1))
        .set_max_height(ctx.height.max(1));
    let mut d = zune_jpeg::JpegDecoder::new_with_options(stream.as_ref(), opts);
    let px = d.decode().map_err(|e| format!("JPEG: {e:?}"))?;
    let mut out = vec![0u8; expected];
    let n = px.len().min(expected);
    out[..n].copy_from_slice(&px[..n]);
    Ok(out)
}

fn webp_decode(ctx: &BlockCtx, data: &[u8], expected: usize) -> Result<Vec<u8>, String> {
    let mut d = image_webp::WebPDecoder::new(std::io::Cursor::new(data))
        .map_err(|e| format!("WebP: {e}"))?;
    let (w, h) = d.dimensions();
    if w as usize > ctx.width || h as usize > ctx.height {
        return Err(format!(
            "WebP: image {w}x{h} is larger than the {}x{} block",
            ctx.width, ctx.height
        ));
    }
    let have = if d.has_alpha() { 4 } else { 3 };
    let size = d
        .output_buffer_size()
        .filter(|&s| s <= expected.saturating_mul(2).max(1 << 20))
        .ok_or_else(|| format!("WebP: image {w}x{h} does not fit the block"))?;
    let mut px = vec![0u8; size];
    d.read_image(&mut px).map_err(|e| format!("WebP: {e}"))?;
    let want = ctx.samples;
    if want == have {
        px.resize(expected, 0);
        return Ok(px);
    }
    let mut out = vec![0u8; expected];
    for (o, i) in out.chunks_exact_mut(want).zip(px.chunks_exact(have)) {
        let k = want.min(have);
        o[..k].copy_from_slice(&i[..k]);
        if want == 4 && have == 3 {
            o[3] = 255;
        }
    }
    Ok(out)
}

thread_local! {
    static INFLATER: RefCell<libdeflater::Decompressor> = RefCell::new(libdeflater::Decompressor::new());
}

/// Blocks larger than this are decoded into a growing buffer, so a hostile header claiming
/// a huge block cannot make us allocate more than its data really decodes to.
pub const STREAM_THRESHOLD: usize = 16 << 20;

/// [`decompress_into`] into a new buffer (for tests).
#[cfg(test)]
pub fn decompress(code: u16, data: &[u8], expected: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    decompress_into(code, data, expected, &mut out)?;
    Ok(out)
}

/// Decompresses one block into exactly `expected` bytes of `out` (a strip at the bottom of
/// an image expects only its rows). A block that decodes to fewer bytes is an error, as
/// libtiff and GDAL make it ("not enough data"): zero-filling it would turn a truncated file
/// into a silently wrong raster. Extra bytes are ignored. Blocks over [`STREAM_THRESHOLD`]
/// are decoded incrementally. `out` is resized to `expected` and its old contents are
/// overwritten, so a thread can decode block after block without new allocations.
pub fn decompress_into(
    code: u16,
    data: &[u8],
    expected: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    use compression::*;
    if expected > STREAM_THRESHOLD {
        *out = decompress_streaming(code, data, expected)?;
        return Ok(());
    }
    out.resize(expected, 0);
    let out = &mut out[..expected];
    let written = match code {
        NONE => {
            let n = data.len().min(expected);
            out[..n].copy_from_slice(&data[..n]);
            n
        }
        ADOBE_DEFLATE | DEFLATE => inflate(data, out)?,
        LZW => lzw_decode(data, out)?,
        ZSTD => zstd_decode(data, out)?,
        PACKBITS => packbits_decode(data, out)?,
        other => {
            return Err(format!(
                "compression {} is not supported",
                compression_name(other)
            ));
        }
    };
    if written < expected {
        return Err(format!(
            "the block decodes to {written} bytes, {expected} expected (truncated or corrupt)"
        ));
    }
    Ok(())
}

fn decompress_streaming(code: u16, data: &[u8], expected: usize) -> Result<Vec<u8>, String> {
    use compression::*;
    use std::io::Read;
    let limit = expected as u64;
    let mut out = Vec::new();
    let read = |r: &mut dyn Read, out: &mut Vec<u8>| -> Result<(), String> {
        r.take(limit)
            .read_to_end(out)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    match code {
        NONE => out.extend_from_slice(&data[..data.len().min(expected)]),
        ADOBE_DEFLATE | DEFLATE => read(&mut flate2::read::ZlibDecoder::new(data), &mut out)
            .map_err(|e| format!("DEFLATE: {e}"))?,
        ZSTD => {
            let mut d = zstd::stream::read::Decoder::new(data).map_err(|e| format!("ZSTD: {e}"))?;
            read(&mut d, &mut out).map_err(|e| format!("ZSTD: {e}"))?
        }
        LZW => {
            let mut dec = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
            let mut chunk = vec![0u8; 1 << 16];
            let mut inp = data;
            while out.len() < expected {
                let r = dec.decode_bytes(inp, &mut chunk);
                inp = &inp[r.consumed_in..];
                let n = r.consumed_out.min(expected - out.len());
                out.extend_from_slice(&chunk[..n]);
                match r.status {
                    Ok(weezl::LzwStatus::Ok) if r.consumed_in > 0 || r.consumed_out > 0 => {}
                    Ok(_) => break,
                    Err(e) => return Err(format!("LZW: {e}")),
                }
            }
        }
        PACKBITS => {
            let mut i = 0;
            while i < data.len() && out.len() < expected {
                let n = data[i] as i8;
                i += 1;
                if n >= 0 {
                    let len = (n as usize + 1)
                        .min(data.len() - i)
                        .min(expected - out.len());
                    out.extend_from_slice(&data[i..i + len]);
                    i += n as usize + 1;
                } else if n != -128 {
                    let len = ((1 - n as isize) as usize).min(expected - out.len());
                    let b = *data
                        .get(i)
                        .ok_or("PackBits: repeat run past the end of the block")?;
                    i += 1;
                    out.resize(out.len() + len, b);
                }
            }
        }
        other => {
            return Err(format!(
                "compression {} is not supported",
                compression_name(other)
            ));
        }
    }
    if out.len() < expected {
        return Err(format!(
            "the block decodes to {} bytes, {expected} expected",
            out.len()
        ));
    }
    Ok(out)
}

/// zlib-wrapped DEFLATE (TIFF compression 8/32946) into `out`; returns the bytes written.
pub fn inflate(data: &[u8], out: &mut [u8]) -> Result<usize, String> {
    let r = INFLATER.with(|d| d.borrow_mut().zlib_decompress(data, out));
    match r {
        Ok(n) => Ok(n),
        Err(libdeflater::DecompressionError::InsufficientSpace) => {
            // The block holds more than its size implies (e.g. a full last strip): decode
            // the whole stream, bounded, and keep the first bytes.
            let cap = out.len().saturating_mul(4).max(1 << 16);
            let mut big = vec![0u8; cap];
            let n = INFLATER
                .with(|d| d.borrow_mut().zlib_decompress(data, &mut big))
                .map_err(|e| format!("DEFLATE: {e}"))?;
            let k = n.min(out.len());
            out[..k].copy_from_slice(&big[..k]);
            Ok(k)
        }
        Err(e) => Err(format!("DEFLATE: {e}")),
    }
}

fn lzw_decode(data: &[u8], out: &mut [u8]) -> Result<usize, String> {
    if data.len() >= 2 && data[0] == 0 && data[1] & 0x01 != 0 {
        return Err("old-style (pre-TIFF 6) LZW is not supported".into());
    }
    let mut dec = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
    let mut inp = data;
    let mut pos = 0;
    while pos < out.len() {
        let r = dec.decode_bytes(inp, &mut out[pos..]);
        pos += r.consumed_out;
        inp = &inp[r.consumed_in..];
        match r.status {
            Ok(weezl::LzwStatus::Done) => break,
            Ok(weezl::LzwStatus::NoProgress) => break,
            Ok(weezl::LzwStatus::Ok) => {
                if r.consumed_in == 0 && r.consumed_out == 0 {
                    break;
                }
            }
            Err(e) => {
                // libtiff tolerates garbage after a complete block; so do we.
                if pos >= out.len() {
                    break;
                }
                return Err(format!("LZW: {e}"));
            }
        }
    }
    Ok(pos)
}

fn zstd_decode(data: &[u8], out: &mut [u8]) -> Result<usize, String> {
    match zstd::bulk::decompress_to_buffer(data, out) {
        Ok(n) => Ok(n),
        Err(_) => {
            // Maybe more than `out` holds: decode in a stream and keep the first bytes.
            use std::io::Read;
            let mut dec =
                zstd::stream::read::Decoder::new(data).map_err(|e| format!("ZSTD: {e}"))?;
            let mut pos = 0;
            while pos < out.len() {
                let n = dec
                    .read(&mut out[pos..])
                    .map_err(|e| format!("ZSTD: {e}"))?;
                if n == 0 {
                    break;
                }
                pos += n;
            }
            Ok(pos)
        }
    }
}

/// PackBits (Apple/TIFF run-length): header byte n, 0..=127 copies n+1 literal bytes,
/// -127..=-1 repeats the next byte 1-n times, -128 is a no-op.
pub fn packbits_decode(data: &[u8], out: &mut [u8]) -> Result<usize, String> {
    let (mut i, mut o) = (0usize, 0usize);
    while i < data.len() && o < out.len() {
        let n = data[i] as i8;
        i += 1;
        if n >= 0 {
            let len = n as usize + 1;
            let avail = (data.len() - i).min(len).min(out.len() - o);
            out[o..o + avail].copy_from_slice(&data[i..i + avail]);
            if avail < len.min(out.len() - o) {
                return Err("PackBits: literal run past the end of the block".into());
            }
            i += len;
            o += avail;
        } else if n != -128 {
            let len = (1 - n as isize) as usize;
            let b = *data
                .get(i)
                .ok_or_else(|| "PackBits: repeat run past the end of the block".to_string())?;
            i += 1;
            let len = len.min(out.len() - o);
            out[o..o + len].fill(b);
            o += len;
        }
    }
    Ok(o)
}

/// Swaps every `size`-byte sample of `buf` between byte orders.
pub fn swap_bytes(buf: &mut [u8], size: usize) {
    if size > 1 {
        for c in buf.chunks_exact_mut(size) {
            c.reverse();
        }
    }
}

macro_rules! hor_acc {
    ($t:ty, $buf:expr, $row_samples:expr, $stride:expr) => {{
        const N: usize = std::mem::size_of::<$t>();
        let row_bytes = $row_samples * N;
        for row in $buf.chunks_exact_mut(row_bytes) {
            if $stride == 1 {
                let mut acc: $t = 0;
                for c in row.chunks_exact_mut(N) {
                    let mut b = [0u8; N];
                    b.copy_from_slice(c);
                    acc = acc.wrapping_add(<$t>::from_le_bytes(b));
                    c.copy_from_slice(&acc.to_le_bytes());
                }
                continue;
            }
            for i in $stride..$row_samples {
                let a = <$t>::from_le_bytes(
                    row[(i - $stride) * N..(i - $stride + 1) * N]
                        .try_into()
                        .expect("N bytes"),
                );
                let b = <$t>::from_le_bytes(row[i * N..(i + 1) * N].try_into().expect("N bytes"));
                row[i * N..(i + 1) * N].copy_from_slice(&b.wrapping_add(a).to_le_bytes());
            }
        }
    }};
}

macro_rules! hor_diff {
    ($t:ty, $buf:expr, $row_samples:expr, $stride:expr) => {{
        const N: usize = std::mem::size_of::<$t>();
        let row_bytes = $row_samples * N;
        for row in $buf.chunks_exact_mut(row_bytes) {
            if $stride == 1 {
                let mut prev: $t = 0;
                for c in row.chunks_exact_mut(N) {
                    let mut b = [0u8; N];
                    b.copy_from_slice(c);
                    let v = <$t>::from_le_bytes(b);
                    c.copy_from_slice(&v.wrapping_sub(prev).to_le_bytes());
                    prev = v;
                }
                continue;
            }
            for i in ($stride..$row_samples).rev() {
                let a = <$t>::from_le_bytes(
                    row[(i - $stride) * N..(i - $stride + 1) * N]
                        .try_into()
                        .expect("N bytes"),
                );
                let b = <$t>::from_le_bytes(row[i * N..(i + 1) * N].try_into().expect("N bytes"));
                row[i * N..(i + 1) * N].copy_from_slice(&b.wrapping_sub(a).to_le_bytes());
            }
        }
    }};
}

/// Undoes the horizontal predictor (2) on little-endian samples of `size` bytes; rows hold
/// `row_samples` samples, `stride` samples per pixel.
pub fn undo_horizontal(buf: &mut [u8], size: usize, row_samples: usize, stride: usize) {
    if row_samples == 0 || stride == 0 {
        return;
    }
    match size {
        1 => {
            for row in buf.chunks_exact_mut(row_samples) {
                for i in stride..row_samples {
                    row[i] = row[i].wrapping_add(row[i - stride]);
                }
            }
        }
        2 => hor_acc!(u16, buf, row_samples, stride),
        4 => hor_acc!(u32, buf, row_samples, stride),
        8 => hor_acc!(u64, buf, row_samples, stride),
        _ => {}
    }
}

/// Applies the horizontal predictor (2) to little-endian samples (inverse of
/// [`undo_horizontal`]).
pub fn apply_horizontal(buf: &mut [u8], size: usize, row_samples: usize, stride: usize) {
    if row_samples == 0 || stride == 0 {
        return;
    }
    match size {
        1 => {
            for row in buf.chunks_exact_mut(row_samples) {
                for i in (stride..row_samples).rev() {
                    row[i] = row[i].wrapping_sub(row[i - stride]);
                }
            }
        }
        2 => hor_diff!(u16, buf, row_samples, stride),
        4 => hor_diff!(u32, buf, row_samples, stride),
        8 => hor_diff!(u64, buf, row_samples, stride),
        _ => {}
    }
}

/// Byte-wise running sum with `stride` (the first step of undoing predictor 3).
fn byte_acc(row: &mut [u8], stride: usize) {
    if stride == 1 {
        let mut acc = 0u8;
        for x in row.iter_mut() {
            acc = acc.wrapping_add(*x);
            *x = acc;
        }
    } else {
        for i in stride..row.len() {
            row[i] = row[i].wrapping_add(row[i - stride]);
        }
    }
}

/// Byte-wise difference with `stride` (the last step of applying predictor 3).
fn byte_diff(row: &mut [u8], stride: usize) {
    if stride == 1 {
        let mut prev = 0u8;
        for x in row.iter_mut() {
            let v = *x;
            *x = v.wrapping_sub(prev);
            prev = v;
        }
    } else {
        for i in (stride..row.len()).rev() {
            row[i] = row[i].wrapping_sub(row[i - stride]);
        }
    }
}

/// Undoes the floating-point predictor (3): per row, byte-wise accumulation with `stride`,
/// then the byte planes (most significant first) are interleaved back into little-endian
/// samples. Same as libtiff's `fpAcc`.
pub fn undo_float(buf: &mut [u8], size: usize, row_samples: usize, stride: usize) {
    let row_bytes = row_samples * size;
    if row_bytes == 0 {
        return;
    }
    let mut tmp = vec![0u8; row_bytes];
    for row in buf.chunks_exact_mut(row_bytes) {
        byte_acc(row, stride);
        tmp.copy_from_slice(row);
        // Plane k holds byte (size - 1 - k) of every sample.
        for (k, plane) in tmp.chunks_exact(row_samples).enumerate() {
            let b = size - 1 - k;
            for (c, &v) in row.chunks_exact_mut(size).zip(plane) {
                c[b] = v;
            }
        }
    }
}

/// Applies the floating-point predictor (3) to little-endian samples (libtiff's `fpDiff`).
pub fn apply_float(buf: &mut [u8], size: usize, row_samples: usize, stride: usize) {
    let row_bytes = row_samples * size;
    if row_bytes == 0 {
        return;
    }
    let mut tmp = vec![0u8; row_bytes];
    for row in buf.chunks_exact_mut(row_bytes) {
        tmp.copy_from_slice(row);
        for (k, plane) in row.chunks_exact_mut(row_samples).enumerate() {
            let b = size - 1 - k;
            for (d, c) in plane.iter_mut().zip(tmp.chunks_exact(size)) {
                *d = c[b];
            }
        }
        byte_diff(row, stride);
    }
}

/// Compression of written blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Compression {
    /// No compression.
    None,
    /// zlib DEFLATE (libdeflate).
    Deflate,
    /// LZW (TIFF flavour).
    Lzw,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The TIFF compression code.
    pub fn code(self) -> u16 {
        match self {
            Compression::None => compression::NONE,
            Compression::Deflate => compression::ADOBE_DEFLATE,
            Compression::Lzw => compression::LZW,
            Compression::Zstd => compression::ZSTD,
        }
    }

    /// Parses `NONE`, `DEFLATE`, `LZW`, `ZSTD` (any case).
    pub fn parse(s: &str) -> Option<Compression> {
        Some(match s.to_ascii_uppercase().as_str() {
            "NONE" => Compression::None,
            "DEFLATE" => Compression::Deflate,
            "LZW" => Compression::Lzw,
            "ZSTD" => Compression::Zstd,
            _ => return None,
        })
    }
}

/// Compresses one block; `level` is the codec's level (DEFLATE 1..=12, ZSTD 1..=22).
pub fn compress(c: Compression, data: &[u8], level: i32) -> Result<Vec<u8>, String> {
    match c {
        Compression::None => Ok(data.to_vec()),
        Compression::Deflate => {
            let lvl = libdeflater::CompressionLvl::new(level.clamp(0, 12))
                .map_err(|e| format!("DEFLATE level {level}: {e:?}"))?;
            let mut comp = libdeflater::Compressor::new(lvl);
            let mut out = vec![0u8; comp.zlib_compress_bound(data.len())];
            let n = comp
                .zlib_compress(data, &mut out)
                .map_err(|e| format!("DEFLATE: {e}"))?;
            out.truncate(n);
            Ok(out)
        }
        Compression::Lzw => {
            let mut enc = weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
            enc.encode(data).map_err(|e| format!("LZW: {e}"))
        }
        Compression::Zstd => {
            zstd::bulk::compress(data, level.clamp(1, 22)).map_err(|e| format!("ZSTD: {e}"))
        }
    }
}

thread_local! {
    /// Each thread's DEFLATE compressor (with its level) and output buffer, reused across
    /// blocks.
    static DEFLATER: RefCell<Option<(i32, libdeflater::Compressor)>> = const { RefCell::new(None) };
    static DEFLATE_OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// [`compress`] into shared bytes, reusing this thread's compressor and scratch buffer (only
/// the compressed bytes are copied out).
pub fn compress_bytes(c: Compression, data: &[u8], level: i32) -> Result<bytes::Bytes, String> {
    match c {
        Compression::None => Ok(bytes::Bytes::copy_from_slice(data)),
        Compression::Deflate => {
            let level = level.clamp(0, 12);
            DEFLATER.with(|cell| {
                let mut slot = cell.borrow_mut();
                let comp = match &mut *slot {
                    Some((l, comp)) if *l == level => comp,
                    other => {
                        let lvl = libdeflater::CompressionLvl::new(level)
                            .map_err(|e| format!("DEFLATE level {level}: {e:?}"))?;
                        &mut other.insert((level, libdeflater::Compressor::new(lvl))).1
                    }
                };
                let bound = comp.zlib_compress_bound(data.len());
                DEFLATE_OUT.with(|out| {
                    let mut out = out.borrow_mut();
                    if out.len() < bound {
                        out.resize(bound, 0);
                    }
                    let n = comp
                        .zlib_compress(data, &mut out[..bound])
                        .map_err(|e| format!("DEFLATE: {e}"))?;
                    Ok(bytes::Bytes::copy_from_slice(&out[..n]))
                })
            })
        }
        other => compress(other, data, level).map(bytes::Bytes::from),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn packbits_matches_the_tiff_spec_example() {
        // TIFF 6.0 spec, section 9.
        let packed = [
            0xFEu8, 0xAA, 0x02, 0x80, 0x00, 0x2A, 0xFD, 0xAA, 0x03, 0x80, 0x00, 0x2A, 0x22, 0xF7,
            0xAA,
        ];
        let want = [
            0xAAu8, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0xAA, 0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0x22,
            0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA,
        ];
        let mut out = vec![0u8; want.len()];
        packbits_decode(&packed, &mut out).unwrap();
        assert_eq!(out, want);
    }

    #[test]
    fn predictors_round_trip() {
        let vals: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).sin() * 100.0).collect();
        let mut buf: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let orig = buf.clone();
        apply_float(&mut buf, 4, 16, 1);
        assert_ne!(buf, orig);
        undo_float(&mut buf, 4, 16, 1);
        assert_eq!(buf, orig);
        let ints: Vec<u16> = (0..60).map(|i| (i * 977 % 65536) as u16).collect();
        let mut b2: Vec<u8> = ints.iter().flat_map(|v| v.to_le_bytes()).collect();
        let o2 = b2.clone();
        apply_horizontal(&mut b2, 2, 20, 3);
        undo_horizontal(&mut b2, 2, 20, 3);
        assert_eq!(b2, o2);
    }

    /// libtiff's `fpDiff` written out index by index (the reference for the tight loops).
    fn fp_diff_reference(buf: &mut [u8], size: usize, row_samples: usize, stride: usize) {
        let row_bytes = row_samples * size;
        for row in buf.chunks_exact_mut(row_bytes) {
            let tmp = row.to_vec();
            for i in 0..row_samples {
                for b in 0..size {
                    row[(size - b - 1) * row_samples + i] = tmp[i * size + b];
                }
            }
            for i in (stride..row_bytes).rev() {
                row[i] = row[i].wrapping_sub(row[i - stride]);
            }
        }
    }

    #[test]
    fn predictors_match_the_reference_loops() {
        for (size, stride) in [(4usize, 1usize), (4, 3), (8, 1), (8, 2)] {
            let row_samples = 12 * stride;
            let orig: Vec<u8> = (0..row_samples * size * 5)
                .map(|i| ((i * 37 + i / 7) % 251) as u8)
                .collect();
            let mut want = orig.clone();
            fp_diff_reference(&mut want, size, row_samples, stride);
            let mut got = orig.clone();
            apply_float(&mut got, size, row_samples, stride);
            assert_eq!(got, want, "float size {size} stride {stride}");
            undo_float(&mut got, size, row_samples, stride);
            assert_eq!(got, orig);
        }
        // Horizontal, stride 1 (the tight loop) against stride-general differences.
        let vals: Vec<u16> = (0..64u32).map(|i| (i * i * 977 % 65536) as u16).collect();
        let mut got: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        apply_horizontal(&mut got, 2, 16, 1);
        let want: Vec<u8> = vals
            .chunks(16)
            .flat_map(|r| {
                (0..16).map(move |i| {
                    if i == 0 {
                        r[0]
                    } else {
                        r[i].wrapping_sub(r[i - 1])
                    }
                })
            })
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(got, want);
        undo_horizontal(&mut got, 2, 16, 1);
        let back: Vec<u16> = got
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(back, vals);
    }

    #[test]
    fn codecs_round_trip() {
        let data: Vec<u8> = (0..5000u32)
            .map(|i| (i % 251) as u8 ^ (i / 100) as u8)
            .collect();
        for c in [
            Compression::None,
            Compression::Deflate,
            Compression::Lzw,
            Compression::Zstd,
        ] {
            let z = compress(c, &data, 6).unwrap();
            let back = decompress(c.code(), &z, data.len()).unwrap();
            assert_eq!(back, data, "{c:?}");
        }
    }
}
