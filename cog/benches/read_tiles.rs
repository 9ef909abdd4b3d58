//! Benchmark (issue 3, Performance): read every tile of a large COG (e.g. the 10980×10980
//! uint16 DEFLATE COG of `gen_data.py --only s2`) from local disk or S3, and report MB/s of
//! decoded pixels; or compare inflate libraries on the file's tiles.
//!
//! ```text
//! cargo bench -p cog --bench read_tiles -- URI [--window-tiles N] [--batch B] [--repeat R]
//! cargo bench -p cog --bench read_tiles -- URI --inflate      # libdeflate vs flate2 (miniz)
//! ```
//! Prints one JSON line per run: seconds, decoded MB, MB/s, requests. Windows are
//! `--window-tiles` × `--window-tiles` tiles, read in parallel, one `read_window` each; with
//! `--batch B`, B consecutive windows at a time go through one `read_windows` call (one
//! `get_ranges` for all their tiles).
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use cloud::Store;
use cog::{CogReader, Window};
use rayon::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let uri = args
        .first()
        .expect("usage: read_tiles URI [--window-tiles N] [--repeat R] [--inflate]")
        .clone();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let window_tiles = flag("--window-tiles").unwrap_or(1);
    let repeat = flag("--repeat").unwrap_or(1);
    let batch = flag("--batch");
    let store = Store::from_env();
    if args.iter().any(|a| a == "--inflate") {
        return inflate_bench(&store, &uri, repeat);
    }
    for _ in 0..repeat {
        let s = store.with_own_counters();
        let t = Instant::now();
        let r = CogReader::open(&s, &uri).unwrap();
        let info = r.info().clone();
        let step = info.block[0] * window_tiles;
        let windows: Vec<Window> = r.plan_windows(step);
        // Tasks read windows in parallel; each window read decodes its tiles in parallel.
        let sums: Vec<u64> = match batch {
            Some(b) => windows
                .par_chunks(b.max(1) as usize)
                .map(|ws| {
                    r.read_windows::<u16>(1, ws, 0)
                        .unwrap()
                        .iter()
                        .map(|band| band.data.iter().map(|&v| v as u64).sum::<u64>())
                        .sum::<u64>()
                })
                .collect(),
            None => windows
                .par_iter()
                .map(|w| {
                    let band = r.read_window::<u16>(1, *w, 0).unwrap();
                    band.data.iter().map(|&v| v as u64).sum::<u64>()
                })
                .collect(),
        };
        let secs = t.elapsed().as_secs_f64();
        let mb = (info.width * info.height * info.dtype.size() as u64) as f64 / 1e6;
        let st = s.stats();
        println!(
            "{{\"tool\":\"cog\",\"uri\":\"{uri}\",\"windows\":{},\"seconds\":{secs:.4},\"decoded_mb\":{mb:.1},\"mb_per_s\":{:.1},\"get_requests\":{},\"bytes_read\":{},\"checksum\":{}}}",
            windows.len(),
            mb / secs,
            st.get_requests,
            st.bytes_read,
            sums.iter().sum::<u64>()
        );
    }
}

/// Fetches every full-resolution tile once, then inflates all of them single-threaded with
/// libdeflate and with flate2 (miniz_oxide backend), verifying identical output.
fn inflate_bench(store: &Store, uri: &str, repeat: u64) {
    let r = CogReader::open(store, uri).unwrap();
    let info = r.info().clone();
    let blocks = r.block_layout(0).unwrap();
    let ranges: Vec<std::ops::Range<u64>> = blocks
        .iter()
        .map(|b| b.offset..b.offset + b.bytes)
        .collect();
    let data = store.get_ranges(uri, &ranges).unwrap();
    let raw =
        (info.block[0] * info.block[1] * info.bands as u64 * info.dtype.size() as u64) as usize;
    let mb = (raw * data.len()) as f64 / 1e6;
    for _ in 0..repeat {
        let mut out = vec![0u8; raw];
        let t = Instant::now();
        let mut d = libdeflater::Decompressor::new();
        let mut check_a = 0u64;
        for z in &data {
            let n = d.zlib_decompress(z, &mut out).unwrap();
            check_a = check_a.wrapping_add(out[..n].iter().map(|&b| b as u64).sum::<u64>());
        }
        let a = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut check_b = 0u64;
        for z in &data {
            let mut dec = flate2::Decompress::new(true);
            dec.decompress(z, &mut out, flate2::FlushDecompress::Finish)
                .unwrap();
            let n = dec.total_out() as usize;
            check_b = check_b.wrapping_add(out[..n].iter().map(|&b| b as u64).sum::<u64>());
        }
        let b = t.elapsed().as_secs_f64();
        assert_eq!(check_a, check_b);
        println!(
            "{{\"inflate\":\"libdeflate\",\"seconds\":{a:.4},\"mb_per_s\":{:.1}}}\n{{\"inflate\":\"flate2-miniz_oxide\",\"seconds\":{b:.4},\"mb_per_s\":{:.1}}}\n{{\"ratio_libdeflate_over_flate2_speed\":{:.2}}}",
            mb / a,
            mb / b,
            b / a
        );
    }
}
