//! Benchmark (issue 3): write a large raster as a COG, against
//! `gdal_translate -of COG -co COMPRESS=DEFLATE -co PREDICTOR=YES -co NUM_THREADS=ALL_CPUS`.
//!
//! ```text
//! cargo bench -p cog --bench write_cog -- IN.tif OUT.tif [--compression DEFLATE|NONE]
//!     [--blocksize N] [--no-overviews] [--repeat R]
//! ```
//! Reads band 1 of IN as f32 (e.g. the 10000×10000 f32 `dem.tif` of `gen_data.py --only dem`),
//! then writes OUT with the default options (512 tiles, DEFLATE level 6, predictor 3,
//! overviews by averaging). Prints one JSON line per run: read and write seconds.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use cloud::Store;
use cog::{CogWriteOptions, Compression};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let usage = "usage: write_cog IN.tif OUT.tif [--compression C] [--blocksize N] [--no-overviews] [--repeat R]";
    let input = args.first().expect(usage).clone();
    let output = args.get(1).expect(usage).clone();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let mut opts = CogWriteOptions::default();
    if let Some(c) = flag("--compression") {
        opts.compression = Compression::parse(&c).expect("compression");
    }
    if let Some(b) = flag("--blocksize") {
        opts.blocksize = b.parse().expect("blocksize");
    }
    if args.iter().any(|a| a == "--no-overviews") {
        opts.overviews = false;
    }
    let repeat: u32 = flag("--repeat").map_or(1, |r| r.parse().expect("repeat"));
    let store = Store::from_env();
    for _ in 0..repeat {
        let t = Instant::now();
        let raster = cog::read_band::<f32>(&store, &input, 1).unwrap();
        let read = t.elapsed().as_secs_f64();
        let t = Instant::now();
        cog::write_cog(&store, &output, &raster, &opts).unwrap();
        let write = t.elapsed().as_secs_f64();
        let (h, w) = raster.data.dim();
        let mb = (w * h * 4) as f64 / 1e6;
        println!(
            "{{\"tool\":\"cog\",\"input\":\"{input}\",\"read_seconds\":{read:.4},\"write_seconds\":{write:.4},\"seconds\":{:.4},\"pixels_mb\":{mb:.1},\"write_mb_per_s\":{:.1}}}",
            read + write,
            mb / write
        );
    }
}
