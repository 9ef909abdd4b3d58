//! A COG written band of rows by band of rows, for images larger than memory.
//!
//! [`CogRowWriter`] takes the full-resolution rows top to bottom, compresses each complete
//! row of tiles as soon as it has it, computes every overview level from the rows of the
//! level above as they arrive (the same values [`crate::writer::downsample`] gives on the
//! whole image, so the file equals what [`crate::write_cog`] writes), and spills the
//! compressed tiles to one temporary file per level. [`CogRowWriter::finish`] lays the
//! header out from the tiles' sizes and streams header and tiles to the store atomically.
//!
//! Memory: about two rows of tiles per level (`2 × blocksize × width` samples at full
//! resolution, half that for the first overview, ...), whatever the image's height. The
//! temporary files (in the system's temporary directory) hold the compressed image once.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};

use cloud::Store;
use ndarray::ArrayView2;

use crate::error::CogError;
use crate::geo::GeoKeys;
use crate::pixel::Pixel;
use crate::raster::GeoTransform;
use crate::writer::{
    CogWriteOptions, Header, LevelSizes, Resampling, downsample_rows, encode_level, overview_sizes,
    source_rows, tile_frame,
};

/// A row writer's image must have pixels, and no more than a TIFF's 32-bit sizes hold.
fn check_size(uri: &str, width: u64, height: u64) -> Result<(), CogError> {
    if width == 0 || height == 0 {
        return Err(CogError::request(uri, "cannot write an empty raster"));
    }
    if width > u32::MAX as u64 || height > u32::MAX as u64 {
        return Err(CogError::too_large(
            uri,
            format!("{width}×{height} pixels is more than a TIFF holds"),
        ));
    }
    Ok(())
}

/// One resolution level being written.
struct LevelStream<T> {
    width: usize,
    height: usize,
    /// Rows `first..first + buf.len() / width` of the level.
    buf: Vec<T>,
    first: usize,
    /// Rows received so far.
    received: usize,
    /// Rows compressed into tiles so far (a multiple of the block size until the end).
    encoded: usize,
    /// The next row of the level below (the next smaller) to compute.
    next_out: usize,
    /// Compressed size of each tile written, row-major.
    counts: Vec<u64>,
    spill: BufWriter<File>,
}

/// Writes a single-band COG whose rows are given in order, a band at a time (see the
/// module documentation).
pub struct CogRowWriter<T: Pixel> {
    uri: String,
    header: Header,
    nodata: Option<T>,
    resampling: Resampling,
    bigtiff: Option<bool>,
    levels: Vec<LevelStream<T>>,
}

impl<T: Pixel> CogRowWriter<T> {
    /// A writer of a `width`×`height` image to `uri`, georeferenced by `transform` and
    /// `geokeys`, with `nodata` (written as GDAL_NODATA, and skipped by overview averaging).
    pub fn new(
        uri: &str,
        (width, height): (u64, u64),
        transform: &GeoTransform,
        geokeys: &GeoKeys,
        nodata: Option<f64>,
        options: &CogWriteOptions,
    ) -> Result<Self, CogError> {
        check_size(uri, width, height)?;
        let header = Header::new(uri, 1, T::TYPE, transform, geokeys, nodata, options)?;
        let bs = header.codec.bs as u64;
        let mut sizes = vec![(width, height)];
        if options.overviews {
            sizes.extend(overview_sizes(width, height, bs));
        }
        let levels = sizes
            .into_iter()
            .map(|(w, h)| {
                let file = tempfile::tempfile()
                    .map_err(|e| CogError::request(uri, format!("temporary tile file: {e}")))?;
                Ok(LevelStream {
                    width: w as usize,
                    height: h as usize,
                    buf: Vec::new(),
                    first: 0,
                    received: 0,
                    encoded: 0,
                    next_out: 0,
                    counts: Vec::new(),
                    spill: BufWriter::with_capacity(1 << 20, file),
                })
            })
            .collect::<Result<Vec<_>, CogError>>()?;
        Ok(CogRowWriter {
            uri: uri.to_string(),
            header,
            nodata: nodata.map(T::from_f64),
            resampling: options.resampling,
            bigtiff: options.bigtiff,
            levels,
        })
    }

    /// Full-resolution rows given so far.
    pub fn rows_written(&self) -> u64 {
        self.levels[0].received as u64
    }

    /// Appends the next rows (as many as convenient; a multiple of the block size keeps
    /// memory lowest). They must be as wide as the image, and not run past its height.
    pub fn push_rows(&mut self, rows: ArrayView2<'_, T>) -> Result<(), CogError> {
        let (n, w) = rows.dim();
        let l0 = &self.levels[0];
        if w != l0.width {
            return Err(CogError::request(
                &self.uri,
                format!("rows {w} pixels wide for an image {} wide", l0.width),
            ));
        }
        if l0.received + n > l0.height {
            return Err(CogError::request(
                &self.uri,
                format!(
                    "{} rows given for an image {} rows high",
                    l0.received + n,
                    l0.height
                ),
            ));
        }
        let rows = rows.as_standard_layout();
        let flat = rows
            .as_slice()
            .ok_or_else(|| CogError::request(&self.uri, "rows are not contiguous"))?;
        self.push_level(0, flat.to_vec())
    }

    /// Adds `rows` to level `li`: encodes the complete rows of tiles, computes the rows of
    /// the next level they allow (and adds those in turn), drops what no level needs.
    fn push_level(&mut self, mut li: usize, mut rows: Vec<T>) -> Result<(), CogError> {
        let codec = self.header.codec;
        let bs = codec.bs;
        let fill = self.nodata.unwrap_or_default();
        let n_levels = self.levels.len();
        loop {
            let below = self.levels.get(li + 1).map(|l| (l.width, l.height));
            let st = &mut self.levels[li];
            st.received += rows.len() / st.width;
            st.buf.extend_from_slice(&rows);
            while st.received - st.encoded >= bs
                || (st.received == st.height && st.encoded < st.height)
            {
                let band_h = (st.height - st.encoded).min(bs);
                let off = (st.encoded - st.first) * st.width;
                let view = ArrayView2::from_shape(
                    (band_h, st.width),
                    &st.buf[off..off + band_h * st.width],
                )
                .map_err(|e| CogError::request(&self.uri, e.to_string()))?;
                for t in encode_level(&self.uri, &[view], codec, fill)? {
                    let (leader, trailer) = tile_frame(&t);
                    let io = |e: std::io::Error| {
                        CogError::request(&self.uri, format!("temporary tile file: {e}"))
                    };
                    st.spill.write_all(&leader).map_err(io)?;
                    st.spill.write_all(&t).map_err(io)?;
                    st.spill.write_all(&trailer).map_err(io)?;
                    st.counts.push(t.len() as u64);
                }
                st.encoded += band_h;
            }
            let mut produced = Vec::new();
            let mut keep_from = st.encoded;
            if let Some((w1, h1)) = below {
                let mut end = st.next_out;
                while end < h1 && source_rows(end, st.height, h1).1 <= st.received {
                    end += 1;
                }
                if end > st.next_out {
                    let src: Vec<&[T]> = st.buf.chunks_exact(st.width).collect();
                    produced = downsample_rows(
                        &src,
                        st.first,
                        (st.width, st.height),
                        (w1, h1),
                        st.next_out..end,
                        self.nodata,
                        self.resampling,
                    );
                    st.next_out = end;
                }
                if st.next_out < h1 {
                    keep_from = keep_from.min(source_rows(st.next_out, st.height, h1).0);
                }
            }
            if keep_from > st.first {
                st.buf.drain(..(keep_from - st.first) * st.width);
                st.first = keep_from;
            }
            if produced.is_empty() || li + 1 >= n_levels {
                return Ok(());
            }
            li += 1;
            rows = produced;
        }
    }

    /// Writes the file (header, then the tiles from the smallest overview to full
    /// resolution) to `store`, atomically; its size in bytes. Every row must have been given.
    pub fn finish(self, store: &Store) -> Result<u64, CogError> {
        let uri = self.uri;
        let mut sizes = Vec::with_capacity(self.levels.len());
        let mut files = Vec::with_capacity(self.levels.len());
        for (li, l) in self.levels.into_iter().enumerate() {
            if l.received != l.height || l.encoded != l.height {
                return Err(CogError::request(
                    &uri,
                    format!(
                        "{} of {} rows given (level {li}); nothing written",
                        l.received, l.height
                    ),
                ));
            }
            let io =
                |e: std::io::Error| CogError::request(&uri, format!("temporary tile file: {e}"));
            let mut file = l.spill.into_inner().map_err(|e| io(e.into_error()))?;
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            sizes.push(LevelSizes {
                width: l.width as u64,
                height: l.height as u64,
                counts: l.counts,
            });
            files.push(file);
        }
        let head = self.header.layout(&uri, &sizes, self.bigtiff)?;
        let mut reader: Box<dyn Read> = Box::new(std::io::Cursor::new(head));
        for f in files.into_iter().rev() {
            reader = Box::new(reader.chain(f));
        }
        store
            .put_reader(&uri, reader)
            .map_err(|e| CogError::store(&uri, e))
    }
}

/// What a [`StripRowWriter`]'s uploading thread receives.
enum Chunk {
    Data(Vec<u8>),
    End,
}

/// The bytes a [`StripRowWriter`] sends, as a `Read` for [`Store::put_reader`]: ends at
/// [`Chunk::End`], and fails (so that no partial file is published) when the writer went
/// away without it.
struct ChunkChannel {
    rx: std::sync::mpsc::Receiver<Chunk>,
    cur: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl Read for ChunkChannel {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Chunk::Data(d)) => {
                    self.cur = d;
                    self.pos = 0;
                }
                Ok(Chunk::End) => self.ended = true,
                Err(_) => {
                    return Err(std::io::Error::other(
                        "the raster writer stopped before its last row",
                    ));
                }
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Writes a single-band, uncompressed, striped GeoTIFF (what `gdaldem` and GDAL's GTiff
/// driver write by default) whose rows are given in order: the header goes first and every
/// row straight after it to the store (atomically, on a thread of its own), so nothing is
/// held but the rows in flight. Strips of about 8 KiB, as GDAL makes them.
pub struct StripRowWriter<T: Pixel> {
    uri: String,
    width: usize,
    height: usize,
    received: usize,
    tx: Option<std::sync::mpsc::SyncSender<Chunk>>,
    upload: Option<std::thread::JoinHandle<Result<u64, cloud::StoreError>>>,
    _pixel: std::marker::PhantomData<T>,
}

impl<T: Pixel> StripRowWriter<T> {
    /// A writer of a `width`×`height` image to `uri` through `store`.
    pub fn new(
        store: &Store,
        uri: &str,
        (width, height): (u64, u64),
        transform: &GeoTransform,
        geokeys: &GeoKeys,
        nodata: Option<f64>,
    ) -> Result<Self, CogError> {
        check_size(uri, width, height)?;
        let options = CogWriteOptions {
            compression: crate::Compression::None,
            overviews: false,
            ..Default::default()
        };
        let header = Header::new(uri, 1, T::TYPE, transform, geokeys, nodata, &options)?;
        let row_bytes = width * T::TYPE.size() as u64;
        let rows_per_strip = (8192 / row_bytes).max(1);
        let head = header.strip_layout(uri, (width, height), rows_per_strip)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(16);
        let (store, target) = (store.clone(), uri.to_string());
        let upload = std::thread::Builder::new()
            .name("strip-upload".into())
            .spawn(move || {
                let body = ChunkChannel {
                    rx,
                    cur: Vec::new(),
                    pos: 0,
                    ended: false,
                };
                store.put_reader(&target, std::io::Cursor::new(head).chain(body))
            })
            .map_err(|e| CogError::request(uri, format!("cannot start the upload: {e}")))?;
        Ok(StripRowWriter {
            uri: uri.to_string(),
            width: width as usize,
            height: height as usize,
            received: 0,
            tx: Some(tx),
            upload: Some(upload),
            _pixel: std::marker::PhantomData,
        })
    }

    /// Appends the next rows (as wide as the image, not past its height).
    pub fn push_rows(&mut self, rows: ArrayView2<'_, T>) -> Result<(), CogError> {
        let (n, w) = rows.dim();
        if w != self.width || self.received + n > self.height {
            return Err(CogError::request(
                &self.uri,
                format!(
                    "{n} rows of {w} pixels after {} for an image {}×{}",
                    self.received, self.width, self.height
                ),
            ));
        }
        let rows = rows.as_standard_layout();
        let flat = rows
            .as_slice()
            .ok_or_else(|| CogError::request(&self.uri, "rows are not contiguous"))?;
        let mut bytes = vec![0u8; flat.len() * T::TYPE.size()];
        T::write_le_slice(flat, &mut bytes);
        self.send(Chunk::Data(bytes))?;
        self.received += n;
        Ok(())
    }

    fn send(&mut self, chunk: Chunk) -> Result<(), CogError> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(chunk).is_ok());
        if sent {
            return Ok(());
        }
        // The upload stopped: its error says why.
        Err(self.join().err().unwrap_or_else(|| {
            CogError::request(&self.uri, "the upload stopped before the last row")
        }))
    }

    fn join(&mut self) -> Result<u64, CogError> {
        self.tx = None;
        match self.upload.take().map(|h| h.join()) {
            Some(Ok(r)) => r.map_err(|e| CogError::store(&self.uri, e)),
            Some(Err(_)) => Err(CogError::request(&self.uri, "the upload thread panicked")),
            None => Err(CogError::request(&self.uri, "the upload already ended")),
        }
    }

    /// Completes the file once every row was given; its size in bytes.
    pub fn finish(mut self) -> Result<u64, CogError> {
        if self.received != self.height {
            return Err(CogError::request(
                &self.uri,
                format!(
                    "{} of {} rows given; nothing written",
                    self.received, self.height
                ),
            ));
        }
        self.send(Chunk::End)?;
        self.join()
    }
}

impl<T: Pixel> Drop for StripRowWriter<T> {
    /// Abandoned before [`StripRowWriter::finish`]: the upload fails and publishes nothing.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.upload.take() {
            let _ = h.join();
        }
    }
}

/// A raster written by rows: as a COG ([`CogRowWriter`]) or as plain strips
/// ([`StripRowWriter`]).
pub enum RowWriter<T: Pixel> {
    Cog(CogRowWriter<T>),
    Strips(StripRowWriter<T>),
}

impl<T: Pixel> RowWriter<T> {
    /// Appends the next rows.
    pub fn push_rows(&mut self, rows: ArrayView2<'_, T>) -> Result<(), CogError> {
        match self {
            RowWriter::Cog(w) => w.push_rows(rows),
            RowWriter::Strips(w) => w.push_rows(rows),
        }
    }

    /// Completes the file; its size in bytes.
    pub fn finish(self, store: &Store) -> Result<u64, CogError> {
        match self {
            RowWriter::Cog(w) => w.finish(store),
            RowWriter::Strips(w) => w.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::raster::{Crs, Raster};
    use ndarray::{Array2, s};

    fn image(w: usize, h: usize) -> Raster<f32> {
        let data = Array2::from_shape_fn((h, w), |(i, j)| {
            if (i * 7 + j * 3) % 11 == 0 {
                -9999.0
            } else if (i + j) % 13 == 0 {
                f32::NAN
            } else {
                ((i as f32) * 0.37).sin() * 100.0 + j as f32 * 0.25
            }
        });
        Raster {
            data,
            transform: GeoTransform::north_up(600_000.0, 4_200_000.0, 5.0),
            crs: Crs::epsg(25830),
            nodata: Some(-9999.0),
        }
    }

    /// Row by row, in odd bands or in tile rows: the same bytes as the whole-image writer,
    /// overviews of odd sizes included.
    #[test]
    fn rows_in_any_bands_give_the_whole_image_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::from_env();
        for (w, h, bs) in [(549, 333, 64), (100, 1000, 16), (17, 5, 16), (64, 64, 64)] {
            let r = image(w, h);
            let options = CogWriteOptions {
                blocksize: bs,
                ..Default::default()
            };
            let whole = dir.path().join("whole.tif");
            let whole = whole.to_str().unwrap();
            crate::write_cog(&store, whole, &r, &options).unwrap();
            let want = std::fs::read(whole).unwrap();
            for band in [1, 37, bs as usize, 3 * bs as usize + 5, h] {
                let out = dir.path().join(format!("rows-{band}.tif"));
                let out = out.to_str().unwrap();
                let mut wr = CogRowWriter::<f32>::new(
                    out,
                    (w as u64, h as u64),
                    &r.transform,
                    &GeoKeys::from_crs(&r.crs, false),
                    Some(-9999.0),
                    &options,
                )
                .unwrap();
                let mut i = 0;
                while i < h {
                    let n = band.min(h - i);
                    wr.push_rows(r.data.slice(s![i..i + n, ..])).unwrap();
                    i += n;
                }
                let bytes = wr.finish(&store).unwrap();
                let got = std::fs::read(out).unwrap();
                assert_eq!(bytes, got.len() as u64);
                assert!(got == want, "{w}×{h} bs {bs} in bands of {band}");
            }
        }
    }

    /// The striped writer's file reads back (ours and GDAL's reader agree on it elsewhere);
    /// abandoned, it publishes nothing.
    #[test]
    fn strips_read_back_and_abandoned_ones_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::from_env();
        let r = image(301, 77);
        let out = dir.path().join("s.tif");
        let out = out.to_str().unwrap();
        let geokeys = GeoKeys::from_crs(&r.crs, false);
        let new = || {
            StripRowWriter::<f32>::new(
                &store,
                out,
                (301, 77),
                &r.transform,
                &geokeys,
                Some(-9999.0),
            )
            .unwrap()
        };
        let mut w = new();
        w.push_rows(r.data.slice(s![0..40, ..])).unwrap();
        w.push_rows(r.data.slice(s![40.., ..])).unwrap();
        w.finish().unwrap();
        let back = crate::read_band::<f32>(&store, out, 1).unwrap();
        assert_eq!(back.transform, r.transform);
        assert_eq!(back.crs.epsg, Some(25830));
        assert_eq!(back.nodata, Some(-9999.0));
        assert!(
            back.data
                .iter()
                .zip(r.data.iter())
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        let info = crate::CogReader::open(&store, out).unwrap().info().clone();
        assert!(!info.tiled);
        assert_eq!(info.compression, "NONE");
        std::fs::remove_file(out).unwrap();
        let mut w = new();
        w.push_rows(r.data.slice(s![0..40, ..])).unwrap();
        let e = w.finish().unwrap_err();
        assert!(e.to_string().contains("40 of 77 rows"), "{e}");
        let mut w = new();
        w.push_rows(r.data.slice(s![0..40, ..])).unwrap();
        drop(w);
        assert!(!std::path::Path::new(out).exists());
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "temporary files left"
        );
    }

    #[test]
    fn missing_extra_or_wrong_rows_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::from_env();
        let r = image(40, 30);
        let out = dir.path().join("x.tif");
        let out = out.to_str().unwrap();
        let new = || {
            CogRowWriter::<f32>::new(
                out,
                (40, 30),
                &r.transform,
                &GeoKeys::default(),
                None,
                &CogWriteOptions {
                    blocksize: 16,
                    ..Default::default()
                },
            )
            .unwrap()
        };
        let mut wr = new();
        wr.push_rows(r.data.slice(s![0..20, ..])).unwrap();
        let e = wr.finish(&store).unwrap_err();
        assert!(e.to_string().contains("20 of 30 rows given"), "{e}");
        assert!(!std::path::Path::new(out).exists());
        let mut wr = new();
        wr.push_rows(r.data.view()).unwrap();
        assert!(wr.push_rows(r.data.slice(s![0..1, ..])).is_err());
        let mut wr = new();
        assert!(wr.push_rows(r.data.slice(s![.., 0..39])).is_err());
        assert!(
            CogRowWriter::<f32>::new(
                out,
                (0, 30),
                &r.transform,
                &GeoKeys::default(),
                None,
                &CogWriteOptions::default()
            )
            .is_err()
        );
    }
}
