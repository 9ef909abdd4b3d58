//! NDVI benchmark on the generated Sentinel-2-shaped pair (`gen_data.py --only s2`:
//! `s2_t{1,2}_{red,nir}.tif`, 10980² uint16 DEFLATE COGs with 1024 tiles).
//!
//! ```text
//! cargo bench -p ndvi --bench ndvi_bench -- diff DATADIR OUT.tif
//!     in-process NDVI difference → float32 COG (what `ndvi diff` does), with step times
//! cargo bench -p ndvi --bench ndvi_bench -- windows DATADIR [N] [NDVI_BIN]
//!     N window tasks (default 12), each in its own `ndvi task` process as on Lambda:
//!     task wall time and peak RSS per task (min / median / max)
//! ```
//! End-to-end comparisons with `gdal_calc.py` and `ndvi_bench.py` run the release `ndvi diff`
//! binary against them pair by pair (see the crate's report).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::Path;
use std::time::Instant;

use cloud::Store;
use ndvi::scene::SceneBands;
use ndvi::stage::{Params, task};
use ndvi::tile::{ProductTask, WindowTask, run_product};

fn scene(dir: &str, date: &str) -> SceneBands {
    let mut s = SceneBands::from_uris(
        &format!("{dir}/s2_{date}_red.tif"),
        &format!("{dir}/s2_{date}_nir.tif"),
        None,
        0.0,
    );
    s.id = Some(date.to_string());
    s
}

fn diff(dir: &str, out: &str) {
    let store = Store::default();
    let t0 = Instant::now();
    let task = ProductTask {
        before: scene(dir, "t1"),
        after: Some(scene(dir, "t2")),
        out: out.to_string(),
        ndvi_before: None,
        ndvi_after: None,
        png: None,
        scl_mask: Vec::new(),
        window: 1024,
        blocksize: 1024,
        level: std::env::var("NDVI_LEVEL")
            .ok()
            .and_then(|l| l.parse().ok()),
    };
    let o = run_product(&store, &task, None).unwrap();
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    println!(
        "total {:.2} s; out {:.0} MB; valid {} mean {:?}",
        t0.elapsed().as_secs_f64(),
        size as f64 / 1e6,
        o.stats.valid,
        o.stats.mean
    );
}

fn windows(dir: &str, n: usize, bin: &str) {
    let store = Store::default();
    let reader = cog::CogReader::open(&store, &format!("{dir}/s2_t1_red.tif")).unwrap();
    let all = reader.plan_windows(1024);
    let n = n.clamp(1, all.len());
    // Spread over the tile, always including the partial last window.
    let mut picked: Vec<_> = (0..n - 1).map(|i| all[i * all.len() / n]).collect();
    picked.push(*all.last().unwrap());
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let mut durations = Vec::new();
    let mut process = Vec::new();
    let mut rss = Vec::new();
    for w in picked {
        let t = task(
            &ndvi::tile::window_task_id(&w),
            Params::Window(WindowTask {
                before: scene(dir, "t1"),
                after: scene(dir, "t2"),
                window: w,
                out: out.to_str().unwrap().to_string(),
                scl_mask: Vec::new(),
            }),
        );
        let file = work.path().join("task.json");
        std::fs::write(&file, serde_json::to_vec(&t).unwrap()).unwrap();
        let t0 = Instant::now();
        let o = std::process::Command::new(bin)
            .args(["task", file.to_str().unwrap(), "--force"])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let wall = t0.elapsed().as_secs_f64();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let d = status["duration_s"].as_f64().unwrap();
        let r = status["peak_rss_bytes"].as_f64().unwrap_or(0.0) / 1e6;
        println!(
            "window {:>5},{:>5} {:>4}x{:<4} task {:.3} s, process {:.3} s, peak RSS {:.0} MB, read {:.1} MB in {} requests",
            w.col_off,
            w.row_off,
            w.width,
            w.height,
            d,
            wall,
            r,
            status["bytes_read"].as_f64().unwrap_or(0.0) / 1e6,
            status["requests"]
        );
        durations.push(d);
        process.push(wall);
        rss.push(r);
    }
    let summary = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2], v[v.len() - 1])
    };
    let (a, b, c) = summary(&mut durations);
    println!("task wall time  min {a:.3} s  median {b:.3} s  max {c:.3} s");
    let (a, b, c) = summary(&mut process);
    println!("process time    min {a:.3} s  median {b:.3} s  max {c:.3} s");
    let (a, b, c) = summary(&mut rss);
    println!("peak RSS        min {a:.0} MB  median {b:.0} MB  max {c:.0} MB");
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("diff") if args.len() >= 3 => diff(&args[1], &args[2]),
        Some("windows") if args.len() >= 2 => {
            let n = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(12);
            let default_bin = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/ndvi");
            let bin = args.get(3).map(String::as_str).unwrap_or(default_bin);
            assert!(
                Path::new(bin).exists(),
                "build the binary first: cargo build --release -p ndvi ({bin})"
            );
            windows(&args[1], n, bin)
        }
        _ => {
            eprintln!("usage: ndvi_bench diff DATADIR OUT.tif | windows DATADIR [N] [NDVI_BIN]");
            std::process::exit(2);
        }
    }
}
