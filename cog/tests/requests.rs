//! Request budget through the store's counters (as rio-tiler's request tests do): opening a
//! normal COG is one GET; a window inside one tile is header + 1 GET; a 2×2-tile window of
//! contiguous tiles is header + 1 GET — locally and against the loopback S3 server.
#![allow(clippy::unwrap_used)]

mod common;

use cloud::Store;
use cog::{CogReader, OpenOptions, Window};
use common::*;

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
