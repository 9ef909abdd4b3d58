//! Request budget through the store's counters (as rio-tiler's request tests do): opening a
//! normal COG is one GET; a window inside one tile is header + 1 GET; a 2×2-tile window of
//! contiguous tiles is header + 1 GET — locally and against the loopback S3 server.

use crate::common::*;
use cloud::Store;
use cog::{CogReader, OpenOptions, Window};

const COGS: &[&str] = &[
    "sentinel/s2_l2a_cogs_29RKH_20200219/B04.tif",
    "raster/derived_gdal362/rgb_byte_cog_deflate_pred2_256.tif",
    "raster/rio-cogeo/image_web_z5_z11.tif",
];

fn budget(store: &Store, uri: &str) {
    let s = store.with_own_counters();
    let r = CogReader::open(&s, uri).unwrap();
    let st = s.stats();
    assert_eq!((st.requests, st.get_requests), (1, 1), "{uri}: open {st:?}");
    let [bw, bh] = r.info().block;
    // Inside one tile (not the first one).
    r.read_window::<f32>(1, Window::new(bw + 3, bh + 5, 40, 30), 0)
        .unwrap();
    let st = s.stats();
    assert_eq!(
        (st.requests, st.get_requests),
        (2, 2),
        "{uri}: one-tile window {st:?}"
    );
    // A 2×2-tile window of contiguous tiles, on a fresh open.
    let s = store.with_own_counters();
    let r = CogReader::open(&s, uri).unwrap();
    r.read_window::<f32>(1, Window::new(bw - 10, bh - 10, 20, 20), 0)
        .unwrap();
    let st = s.stats();
    assert_eq!(
        (st.requests, st.get_requests),
        (2, 2),
        "{uri}: 2x2-tile window {st:?}"
    );
    // An overview window is also one GET.
    if r.overview_count() > 0 {
        let before = s.stats().get_requests;
        let (ow, oh) = r.level_size(1).unwrap();
        r.read_window::<u16>(1, Window::new(0, 0, ow.min(300), oh.min(300)), 1)
            .unwrap();
        assert_eq!(s.stats().get_requests - before, 1);
    }
    // Reading the same window twice re-fetches only the tiles (the header is cached).
    let before = s.stats().get_requests;
    r.read_window::<f32>(1, Window::new(bw - 10, bh - 10, 20, 20), 0)
        .unwrap();
    assert_eq!(s.stats().get_requests - before, 1);
    // A batch of one-tile windows along the first tile row (contiguous in a COG) is one GET,
    // with the same pixels as window-by-window reads.
    let (w, _) = r.level_size(0).unwrap();
    let windows: Vec<Window> = (0..w.div_ceil(bw).min(4))
        .map(|c| Window::new(c * bw, 0, bw.min(w - c * bw), bh))
        .collect();
    assert!(windows.len() >= 2, "{uri}");
    let before = s.stats().get_requests;
    let batch = r.read_windows::<u16>(1, &windows, 0).unwrap();
    assert_eq!(
        s.stats().get_requests - before,
        1,
        "{uri}: batch of windows"
    );
    assert_eq!(batch.len(), windows.len());
    for (got, w) in batch.iter().zip(&windows) {
        assert_eq!(got, &r.read_window::<u16>(1, *w, 0).unwrap(), "{uri} {w:?}");
    }
    // A window outside the image fails the batch with a clear error.
    let mut bad = windows.clone();
    bad.push(Window::new(w, 0, 1, 1));
    let err = r.read_windows::<u16>(1, &bad, 0).unwrap_err().to_string();
    assert!(err.contains("not inside"), "{err}");
}

#[test]
fn local_cogs_meet_the_request_budget() {
    let store = Store::new(cloud::StoreOptions::default());
    for rel in COGS {
        budget(&store, &data_str(rel));
    }
}

#[test]
fn s3_cogs_meet_the_request_budget() {
    let s3 = cloud::testing::s3_store();
    let bucket = cloud::testing::unique_bucket(&s3, "cogreq").unwrap();
    for rel in COGS {
        let uri = format!("s3://{bucket}/{}", rel.replace('/', "_"));
        s3.put_file(&uri, &data(rel)).unwrap();
        budget(&s3, &uri);
    }
}

#[test]
fn header_prefix_doubles_only_while_ifds_lie_beyond() {
    let store = Store::new(cloud::StoreOptions::default());
    let path = data_str("raster/derived_gdal362/rgb_byte_cog_deflate_pred2_256.tif");
    // Its IFDs and tile arrays end near 1.9 KB: a 1 KiB prefix needs one doubling.
    let s = store.with_own_counters();
    let r = CogReader::open_with(
        &s,
        &path,
        &OpenOptions {
            prefix: 1024,
            ..Default::default()
        },
    )
    .unwrap();
    let st = s.stats();
    assert_eq!(st.get_requests, 2, "{st:?}");
    assert!(st.bytes_read <= 2048, "{st:?}");
    assert_eq!(r.overview_count(), 2);
    // Same result as a default open.
    let a = r
        .read_window::<u8>(2, Window::new(100, 100, 300, 300), 0)
        .unwrap();
    let b = cog::read_window::<u8>(&store, &path, 2, Window::new(100, 100, 300, 300)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn ifd_at_the_end_costs_a_head_and_one_segment() {
    // libtiff-style files put the IFD after the pixel data (here 568 KB in).
    let dir = tempfile::tempdir().unwrap();
    let (pixels, w, h) = gdal_envi(&data_str("raster/rasterio/RGB.byte.tif"), 2, None, None);
    let bytes: Vec<u8> = pixels.iter().map(|&v| v as u8).collect();
    let p = dir.path().join("tail.tif").to_string_lossy().into_owned();
    std::fs::write(&p, strip_tiff(w as u32, h as u32, &bytes)).unwrap();
    let store = Store::new(cloud::StoreOptions::default());
    let s = store.with_own_counters();
    let r = CogReader::open(&s, &p).unwrap();
    let st = s.stats();
    assert_eq!(
        (st.requests, st.get_requests),
        (3, 2),
        "prefix + HEAD + IFD segment: {st:?}"
    );
    assert!(st.bytes_read <= 32 * 1024 + 16 * 1024, "{st:?}");
    let (theirs, _, _) = gdal_envi(&p, 1, None, None);
    let ours: Vec<f64> = r
        .read_band::<f64>(1)
        .unwrap()
        .data
        .iter()
        .copied()
        .collect();
    assert_eq!(ours, theirs);
    // An uncompressed window fetches only its rows.
    let before = s.stats();
    r.read_window::<u8>(1, Window::new(10, 300, 50, 4), 0)
        .unwrap();
    let after = s.stats();
    assert_eq!(after.get_requests - before.get_requests, 1);
    assert_eq!(after.bytes_read - before.bytes_read, 4 * w);
}

#[test]
fn plan_windows_cover_the_image_once_on_block_boundaries() {
    let store = Store::new(cloud::StoreOptions::default());
    // A tiled COG (512² tiles) and a striped file (3-row strips).
    for (rel, tiled) in [
        ("sentinel/s2_l2a_cogs_29RKH_20200219/B04.tif", true),
        ("raster/rasterio/RGB.byte.tif", false),
    ] {
        let uri = data_str(rel);
        let info = CogReader::open(&store, &uri).unwrap().info().clone();
        let [bw, bh] = info.block;
        let (w, h) = (info.width, info.height);
        for size in [1, 100, bw, bw * 3 / 2 + 1, 5000] {
            let windows = cog::plan_windows(&store, &uri, size).unwrap();
            let mut hits = vec![0u8; (w * h) as usize];
            for win in &windows {
                assert!(!win.is_empty(), "{rel} {size}: {win:?}");
                assert_eq!(win.row_off % bh, 0, "{rel} {size}: {win:?}");
                if tiled {
                    assert_eq!(win.col_off % bw, 0, "{rel} {size}: {win:?}");
                }
                assert!(win.col_off + win.width <= w && win.row_off + win.height <= h);
                for y in win.row_off..win.row_off + win.height {
                    for x in win.col_off..win.col_off + win.width {
                        hits[(y * w + x) as usize] += 1;
                    }
                }
            }
            assert!(
                hits.iter().all(|&n| n == 1),
                "{rel} {size}: not an exact cover"
            );
            // Windows are at least the requested size (rounded up to blocks) but the last.
            let full = windows
                .iter()
                .filter(|win| win.col_off + win.width < w && win.row_off + win.height < h);
            for win in full {
                assert!(win.height >= size.min(h) && win.height % bh == 0, "{win:?}");
            }
        }
    }
}

/// Reads every block of `uri`'s full resolution one `read_window` at a time in row order:
/// the read-ahead keeps the requests within GDAL's pattern (a block and the next one per
/// request: ceil(blocks / 2), plus the header), with the pixels of a whole read. Threads
/// sharing one reader read the same pixels.
fn block_by_block(store: &Store, uri: &str) {
    let whole = CogReader::open(store, uri)
        .unwrap()
        .read_band::<f64>(1)
        .unwrap();
    let s = store.with_own_counters();
    let r = CogReader::open(&s, uri).unwrap();
    let blocks = r.block_layout(0).unwrap();
    let windows: Vec<Window> = blocks
        .iter()
        .filter(|b| b.plane == 0)
        .map(|b| b.window)
        .collect();
    assert!(windows.len() >= 4, "{uri}: {} blocks", windows.len());
    let check = |w: &Window, got: &cog::Raster<f64>| {
        let want = whole.data.slice(ndarray::s![
            w.row_off as usize..(w.row_off + w.height) as usize,
            w.col_off as usize..(w.col_off + w.width) as usize
        ]);
        assert_eq!(got.data.view(), want, "{uri} {w:?}");
    };
    for w in &windows {
        check(w, &r.read_window::<f64>(1, *w, 0).unwrap());
    }
    let st = s.stats();
    let bound = windows.len().div_ceil(2) as u64 + 1;
    assert!(
        st.get_requests <= bound && st.requests == st.get_requests,
        "{uri}: {} blocks read one by one made {st:?} (at most {bound} GETs)",
        windows.len()
    );
    // Shared between threads (each reading every other block), on a fresh open.
    let r = CogReader::open(&s, uri).unwrap();
    std::thread::scope(|sc| {
        for k in 0..3 {
            let (r, windows, check) = (&r, &windows, &check);
            sc.spawn(move || {
                for w in windows.iter().skip(k).step_by(2) {
                    check(w, &r.read_window::<f64>(1, *w, 0).unwrap());
                }
            });
        }
    });
}

#[test]
fn local_block_by_block_reads_use_read_ahead() {
    let store = Store::new(cloud::StoreOptions::default());
    for rel in COGS {
        block_by_block(&store, &data_str(rel));
    }
}

#[test]
fn s3_block_by_block_reads_use_read_ahead() {
    let s3 = cloud::testing::s3_store();
    let bucket = cloud::testing::unique_bucket(&s3, "cogahead").unwrap();
    for rel in COGS {
        let uri = format!("s3://{bucket}/{}", rel.replace('/', "_"));
        s3.put_file(&uri, &data(rel)).unwrap();
        block_by_block(&s3, &uri);
    }
}
