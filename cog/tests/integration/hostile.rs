//! Hostile files: truncation at every structure boundary, IFD loops, block offsets past the
//! end, size overflows, absurd block counts, unknown compression, and a deterministic
//! mutation fuzzer over the IFD parser. Each must give a clear error naming the file, never
//! a panic, and no allocation larger than the file justifies (checked with a counting
//! global allocator).

use crate::common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::*;
use bytes::Bytes;
use cog::{CogError, CogReader, Window};

/// Tracks the largest single allocation.
struct Counting;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LARGEST.fetch_max(n, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Runs `f` and returns the largest single allocation it made (tests run in parallel, so
/// this is an upper bound shared with other tests; the bounds below are loose enough).
fn largest_alloc<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.store(0, Ordering::Relaxed);
    let r = f();
    (r, LARGEST.load(Ordering::Relaxed))
}

/// Opens and reads `data` fully; returns the error (panics are test failures).
fn try_all(data: &[u8]) -> Result<(), CogError> {
    cog::fuzz::exercise(data)
}

fn cog_bytes() -> Vec<u8> {
    std::fs::read(data(
        "raster/derived_gdal362/rgb_byte_cog_deflate_pred2_256.tif",
    ))
    .unwrap()
}

/// Offsets of IFDs and of every out-of-line tag value of a classic little-endian TIFF.
fn structure_offsets(f: &[u8]) -> Vec<usize> {
    let u16at = |o: usize| u16::from_le_bytes([f[o], f[o + 1]]) as usize;
    let u32at = |o: usize| u32::from_le_bytes([f[o], f[o + 1], f[o + 2], f[o + 3]]) as usize;
    let mut out = vec![];
    let mut ifd = u32at(4);
    while ifd != 0 {
        out.push(ifd);
        let n = u16at(ifd);
        for i in 0..n {
            let e = ifd + 2 + 12 * i;
            out.push(e);
            let typ = u16at(e + 2);
            let size = match typ {
                1 | 2 | 6 | 7 => 1,
                3 | 8 => 2,
                4 | 9 | 11 => 4,
                _ => 8,
            };
            if u32at(e + 4) * size > 4 {
                out.push(u32at(e + 8));
            }
        }
        out.push(ifd + 2 + 12 * n);
        ifd = u32at(ifd + 2 + 12 * n);
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[test]
fn truncated_at_every_structure_boundary() {
    let f = cog_bytes();
    let offsets = structure_offsets(&f);
    assert!(offsets.len() > 40, "{}", offsets.len());
    let mut cuts: Vec<usize> = offsets
        .iter()
        .flat_map(|&o| [o, o + 1, o + 2, o + 7])
        .collect();
    cuts.extend(0..16);
    // And a few cuts inside the tile data.
    cuts.extend([f.len() / 2, f.len() - 5]);
    for cut in cuts {
        let t = &f[..cut.min(f.len() - 1)];
        let (r, big) = largest_alloc(|| try_all(t));
        let e = r.expect_err(&format!("truncated at {cut} must fail"));
        let msg = e.to_string();
        assert!(msg.starts_with("fuzz.tif"), "{msg}");
        assert!(big < 64 << 20, "cut {cut}: allocated {big} bytes");
    }
}

#[test]
fn every_header_byte_cut_is_an_error_not_a_panic() {
    let f = cog_bytes();
    for cut in 0..2100 {
        assert!(try_all(&f[..cut]).is_err(), "cut {cut}");
    }
}

#[test]
fn ifd_loops_are_refused() {
    // A single IFD whose next pointer is itself, and a two-IFD cycle.
    let f = cog_bytes();
    let offs = structure_offsets(&f);
    let first = u32::from_le_bytes(f[4..8].try_into().unwrap()) as usize;
    let n = u16::from_le_bytes([f[first], f[first + 1]]) as usize;
    let next_at = first + 2 + 12 * n;
    let mut self_loop = f.clone();
    self_loop[next_at..next_at + 4].copy_from_slice(&(first as u32).to_le_bytes());
    let e = CogReader::from_bytes("loop.tif", Bytes::from(self_loop))
        .unwrap_err()
        .to_string();
    assert!(e.contains("loop.tif") && e.contains("loops back"), "{e}");
    // Second IFD points back to the first.
    let second = u32::from_le_bytes(f[next_at..next_at + 4].try_into().unwrap()) as usize;
    let n2 = u16::from_le_bytes([f[second], f[second + 1]]) as usize;
    let mut cycle = f.clone();
    let at2 = second + 2 + 12 * n2;
    cycle[at2..at2 + 4].copy_from_slice(&(first as u32).to_le_bytes());
    let e = CogReader::from_bytes("cycle.tif", Bytes::from(cycle))
        .unwrap_err()
        .to_string();
    assert!(e.contains("loops back"), "{e}");
    assert!(offs.contains(&second));
}

fn tiled(
    width: u32,
    height: u32,
    tile: u32,
    offsets: &[u32],
    counts: &[u32],
    compression: u16,
    data: &[u8],
) -> Vec<u8> {
    build_tiff(
        data,
        &[
            long(256, width),
            long(257, height),
            short(258, 8),
            short(259, compression),
            short(262, 1),
            short(277, 1),
            long(322, tile),
            long(323, tile),
            longs(324, offsets),
            longs(325, counts),
        ],
    )
}

#[test]
fn block_offsets_past_the_end() {
    let data = vec![7u8; 256];
    let f = tiled(16, 16, 16, &[8 + 10_000], &[256], 1, &data);
    let r = CogReader::from_bytes("past.tif", Bytes::from(f)).unwrap();
    let e = r.read_band::<u8>(1).unwrap_err().to_string();
    assert!(e.contains("past.tif") && e.contains("past the end"), "{e}");
    // The same through a local file and the store.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("past.tif");
    std::fs::write(&p, tiled(16, 16, 16, &[1 << 30], &[256], 1, &data)).unwrap();
    let store = cloud::Store::new(cloud::StoreOptions::default());
    let e = cog::read_band::<u8>(&store, p.to_str().unwrap(), 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("past the end"), "{e}");
    // A sane file reads.
    let ok = tiled(16, 16, 16, &[8], &[256], 1, &data);
    assert!(
        CogReader::from_bytes("ok.tif", Bytes::from(ok))
            .unwrap()
            .read_band::<u8>(1)
            .unwrap()
            .data
            .iter()
            .all(|&v| v == 7)
    );
}

#[test]
fn size_overflows_and_absurd_block_counts() {
    let data = vec![0u8; 64];
    // width × height far beyond any block array the file holds.
    let f = tiled(u32::MAX, u32::MAX, 16, &[8], &[64], 8, &data);
    let (r, big) = largest_alloc(|| {
        CogReader::from_bytes("huge.tif", Bytes::from(f.clone()))
            .and_then(|r| r.read_window::<u8>(1, Window::new(0, 0, 16, 16), 0))
    });
    let e = r.unwrap_err().to_string();
    assert!(e.contains("block offsets") || e.contains("blocks"), "{e}");
    assert!(big < 1 << 20, "allocated {big}");
    // A whole-band read of a 4G×4G image is refused before allocating.
    let r = CogReader::from_bytes("huge.tif", Bytes::from(f)).unwrap();
    let (e, big) = largest_alloc(|| r.read_band::<u8>(1));
    assert!(matches!(e, Err(CogError::TooLarge { .. })), "{e:?}");
    assert!(big < 1 << 20);
    // TileOffsets claims 2^30 entries: its array lies past the end of the file.
    let mut f = tiled(1 << 19, 1 << 15, 16, &[8, 8], &[64, 64], 8, &data);
    let pos = f.windows(4).position(|w| w == [0x44, 0x01, 4, 0]).unwrap(); // tag 324, LONG
    f[pos + 4..pos + 8].copy_from_slice(&(1u32 << 30).to_le_bytes());
    let (r, big) = largest_alloc(|| {
        CogReader::from_bytes("count.tif", Bytes::from(f))
            .and_then(|r| r.read_window::<u8>(1, Window::new(0, 0, 16, 16), 0))
    });
    let e = r.unwrap_err().to_string();
    assert!(e.contains("count.tif"), "{e}");
    assert!(big < 1 << 20, "allocated {big}");
    // A single block claiming 1 GiB of pixels with 64 bytes of data.
    let f = tiled(32768, 32768, 32768, &[8], &[64], 8, &data);
    let r = CogReader::from_bytes("bigblock.tif", Bytes::from(f)).unwrap();
    let (e, big) = largest_alloc(|| r.read_window::<u8>(1, Window::new(0, 0, 4, 4), 0));
    assert!(e.is_err());
    assert!(big < 64 << 20, "allocated {big}");
    // Tile size 0, width 0.
    assert!(
        CogReader::from_bytes(
            "t0.tif",
            Bytes::from(tiled(16, 16, 0, &[8], &[64], 1, &data))
        )
        .is_err()
    );
    assert!(
        CogReader::from_bytes(
            "w0.tif",
            Bytes::from(tiled(0, 16, 16, &[8], &[64], 1, &data))
        )
        .is_err()
    );
    // A block byte count far beyond what its pixels can compress to.
    let f = tiled(16, 16, 16, &[8], &[u32::MAX], 8, &data);
    let e = CogReader::from_bytes("cnt.tif", Bytes::from(f))
        .unwrap()
        .read_band::<u8>(1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("claims"), "{e}");
}

#[test]
fn unknown_compression_is_unsupported_but_info_works() {
    let data = vec![0u8; 256];
    let f = tiled(16, 16, 16, &[8], &[256], 12345, &data);
    let r = CogReader::from_bytes("unk.tif", Bytes::from(f)).unwrap();
    assert_eq!(r.info().compression, "UNKNOWN(12345)");
    let e = r.read_band::<u8>(1).unwrap_err();
    assert!(matches!(e, CogError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("unk.tif"));
    // Corrupt DEFLATE data is a decode error naming the block.
    let f = tiled(16, 16, 16, &[8], &[256], 8, &data);
    let e = CogReader::from_bytes("bad.tif", Bytes::from(f))
        .unwrap()
        .read_band::<u8>(1)
        .unwrap_err();
    assert!(matches!(e, CogError::Decode { .. }), "{e}");
    assert!(e.to_string().contains("block (0, 0)"), "{e}");
    // Not a TIFF at all.
    assert!(
        CogReader::from_bytes("x.tif", Bytes::from_static(b"hello world, not a tiff"))
            .unwrap_err()
            .to_string()
            .contains("not a TIFF")
    );
}

#[test]
fn tags_in_any_order_read_the_same() {
    let px: Vec<u8> = (0..=255).collect();
    let entries = vec![
        long(256, 16),
        long(257, 16),
        short(258, 8),
        short(259, 1),
        short(262, 1),
        long(273, 8),
        short(277, 1),
        long(278, 16),
        long(279, 256),
    ];
    let a = CogReader::from_bytes("a.tif", Bytes::from(build_tiff(&px, &entries)))
        .unwrap()
        .read_band::<u8>(1)
        .unwrap();
    let mut rev = entries.clone();
    rev.reverse();
    rev.swap(2, 5);
    let b = CogReader::from_bytes("b.tif", Bytes::from(build_tiff(&px, &rev)))
        .unwrap()
        .read_band::<u8>(1)
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.data[(1, 2)], 18);
}

/// Deterministic mutation fuzzing of the IFD parser and block reader (cargo-fuzz needs a
/// nightly compiler; this runs a fixed number of iterations on stable in the normal suite).
#[test]
fn mutation_fuzz_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let byte = std::fs::read(data("raster/rasterio/byte.tif")).unwrap();
    let f32t = std::fs::read(data("raster/rasterio/float32.tif")).unwrap();
    let small_cog = gdal_make(
        dir.path(),
        "c.tif",
        &data_str("raster/rasterio/byte.tif"),
        &[
            "-of",
            "COG",
            "-co",
            "BLOCKSIZE=16",
            "-co",
            "COMPRESS=LZW",
            "-co",
            "PREDICTOR=2",
        ],
    );
    let big = gdal_make(
        dir.path(),
        "b.tif",
        &data_str("raster/rasterio/float32.tif"),
        &[
            "-co",
            "BIGTIFF=YES",
            "-co",
            "COMPRESS=ZSTD",
            "-co",
            "PREDICTOR=3",
        ],
    );
    let planar = gdal_make(
        dir.path(),
        "p.tif",
        &data_str("raster/rasterio/red.tif"),
        &[
            "-co",
            "INTERLEAVE=BAND",
            "-co",
            "COMPRESS=PACKBITS",
            "-co",
            "TILED=YES",
            "-co",
            "BLOCKXSIZE=16",
            "-co",
            "BLOCKYSIZE=16",
        ],
    );
    let seeds: Vec<Vec<u8>> = vec![
        byte,
        f32t,
        std::fs::read(small_cog).unwrap(),
        std::fs::read(big).unwrap(),
        std::fs::read(planar).unwrap(),
    ];
    let iterations: u64 = std::env::var("COG_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20000);
    let mut s: u64 = 0x243F6A8885A308D3;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let interesting: [u32; 10] = [0, 1, 2, 7, 0xFF, 0xFFFF, 0x8000_0000, 0xFFFF_FFFF, 16, 4096];
    let (mut ok, mut err) = (0u64, 0u64);
    let mut largest = 0usize;
    for it in 0..iterations {
        let seed = &seeds[(next() % seeds.len() as u64) as usize];
        let mut m = seed.clone();
        for _ in 0..1 + next() % 4 {
            let hdr = m.len().min(1024);
            let pos = (next() % hdr as u64) as usize;
            match next() % 5 {
                0 => m[pos] ^= 1 << (next() % 8),
                1 => m[pos] = next() as u8,
                2 => {
                    let v = interesting[(next() % 10) as usize].to_le_bytes();
                    let end = (pos + 4).min(m.len());
                    m[pos..end].copy_from_slice(&v[..end - pos]);
                }
                3 => {
                    let v = (m.len() as u32 + (next() % 64) as u32).to_le_bytes();
                    let end = (pos + 4).min(m.len());
                    m[pos..end].copy_from_slice(&v[..end - pos]);
                }
                _ => m.truncate(pos.max(8)),
            }
        }
        let (r, big) = largest_alloc(|| std::panic::catch_unwind(|| try_all(&m)));
        let r = r.unwrap_or_else(|_| panic!("iteration {it}: panic on a mutated file"));
        largest = largest.max(big);
        match r {
            Ok(()) => ok += 1,
            Err(e) => {
                assert!(e.to_string().starts_with("fuzz.tif"), "{e}");
                err += 1;
            }
        }
    }
    assert!(ok > 0 && err > 0, "ok {ok} err {err}");
    // Reads are capped at 2^20 pixels of f64 per band (8 MiB) plus decoded blocks.
    assert!(largest < 128 << 20, "largest allocation {largest}");
}

#[test]
fn blocks_that_decode_short_are_errors_as_in_gdal() {
    let dir = tempfile::tempdir().unwrap();
    // An uncompressed 16×16 tile whose byte count says 200 of its 256 bytes.
    let data = vec![7u8; 256];
    let short_raw = tiled(16, 16, 16, &[8], &[200], 1, &data);
    // A DEFLATE tile whose stream holds 100 of its 256 bytes.
    let z = {
        use std::io::Write;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&[9u8; 100]).unwrap();
        e.finish().unwrap()
    };
    let short_deflate = tiled(16, 16, 16, &[8], &[z.len() as u32], 8, &z);
    for (name, bytes) in [("raw.tif", short_raw), ("deflate.tif", short_deflate)] {
        let e = CogReader::from_bytes(name, Bytes::from(bytes.clone()))
            .unwrap()
            .read_band::<u8>(1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(name) && e.contains("block (0, 0)") && e.contains("256 expected"),
            "{e}"
        );
        // GDAL 3.6.2 refuses the same DEFLATE file ("ZIPDecode: decoding error"). For the
        // uncompressed one libtiff reads past the declared byte count into whatever follows
        // (here the IFD): pixels from the wrong bytes, which we refuse instead.
        if name == "raw.tif" {
            continue;
        }
        let p = dir.path().join(name);
        std::fs::write(&p, &bytes).unwrap();
        let o = std::process::Command::new("gdal_translate")
            .args(["-q", "-of", "GTiff"])
            .arg(&p)
            .arg(dir.path().join(format!("{name}.out.tif")))
            .output()
            .unwrap();
        assert!(!o.status.success(), "GDAL read {name}");
    }
}

/// A classic TIFF of several IFDs: each `(entries, data)`, data placed before its IFD.
fn multi_ifd(images: &[(Vec<RawEntry>, Vec<u8>)]) -> Vec<u8> {
    // Layout: header, then per image: data, IFD, IFD values. Offsets patched as we go.
    let mut f = b"II*\0\0\0\0\0".to_vec();
    let mut prev_next_at = 4usize;
    for (entries, data) in images {
        let data_at = f.len() as u32;
        f.extend_from_slice(data);
        if f.len() % 2 == 1 {
            f.push(0);
        }
        let ifd_at = f.len() as u32;
        f[prev_next_at..prev_next_at + 4].copy_from_slice(&ifd_at.to_le_bytes());
        let n = entries.len() as u32;
        let mut values_at = ifd_at + 2 + 12 * n + 4;
        let mut tail = Vec::new();
        f.extend_from_slice(&(n as u16).to_le_bytes());
        for (tag, typ, count, v) in entries {
            let v = if *tag == 273 || *tag == 324 {
                data_at.to_le_bytes().to_vec()
            } else {
                v.clone()
            };
            f.extend_from_slice(&tag.to_le_bytes());
            f.extend_from_slice(&typ.to_le_bytes());
            f.extend_from_slice(&count.to_le_bytes());
            if v.len() <= 4 {
                let mut x = v.clone();
                x.resize(4, 0);
                f.extend_from_slice(&x);
            } else {
                f.extend_from_slice(&values_at.to_le_bytes());
                tail.extend_from_slice(&v);
                values_at += v.len() as u32;
            }
        }
        prev_next_at = f.len();
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&tail);
    }
    f
}

#[test]
fn an_overview_with_other_samples_is_not_used() {
    let strip = |w: u32, h: u32, spp: u16, reduced: bool| {
        let mut e = vec![
            long(256, w),
            long(257, h),
            short(258, 8),
            short(259, 1),
            short(262, if spp == 3 { 2 } else { 1 }),
            long(273, 0),
            short(277, spp),
            long(278, h),
            long(279, w * h * spp as u32),
        ];
        if reduced {
            e.insert(0, long(254, 1));
        }
        (e, vec![5u8; (w * h * spp as u32) as usize])
    };
    let dir = tempfile::tempdir().unwrap();
    // A 1-band image whose "overview" has 3 samples per pixel: not an overview of it.
    let bad = multi_ifd(&[strip(32, 32, 1, false), strip(16, 16, 3, true)]);
    let r = CogReader::from_bytes("bad.tif", Bytes::from(bad.clone())).unwrap();
    assert_eq!(r.overview_count(), 0);
    assert!(
        r.read_window::<u8>(1, Window::new(0, 0, 32, 32), 1)
            .is_err()
    );
    // GDAL ignores it too.
    let p = dir.path().join("bad.tif");
    std::fs::write(&p, &bad).unwrap();
    let info = common::gdalinfo_json(p.to_str().unwrap());
    assert!(
        info["bands"][0]["overviews"]
            .as_array()
            .is_none_or(|o| o.is_empty()),
        "{info}"
    );
    // A matching overview is used.
    let good = multi_ifd(&[strip(32, 32, 1, false), strip(16, 16, 1, true)]);
    let r = CogReader::from_bytes("good.tif", Bytes::from(good)).unwrap();
    assert_eq!(r.overview_count(), 1);
    assert!(
        r.read_window::<u8>(1, Window::new(0, 0, 16, 16), 1)
            .unwrap()
            .data
            .iter()
            .all(|&v| v == 5)
    );
}
