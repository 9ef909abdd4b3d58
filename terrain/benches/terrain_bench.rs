//! Timing runs of the terrain library, step by step, with peak RSS.
//!
//! ```text
//! cargo bench -p terrain --bench terrain_bench -- slope-aspect DEM.tif OUTDIR
//! cargo bench -p terrain --bench terrain_bench -- models CLOUD.las OUTDIR [ground] [dem] [products]
//!     ground: smrf | existing (default existing), dem: idw | tin (default idw),
//!     products: comma list (default all six)
//! ```
//! Outputs of `slope-aspect` are uncompressed tiled GeoTIFFs (256×256 blocks, no overviews),
//! like `gdaldem ... -co TILED=YES`; those of `models` are COGs as `terrain models` writes.
//! Each step prints `STEP name seconds`; the end prints `PEAK_RSS_MB n`. The comparisons with
//! gdaldem and whitebox-workflows use the `terrain` binary and these step times.

use std::time::Instant;

use cloud::{Store, uri};
use cog::{CogWriteOptions, Compression};
use terrain::derivatives::{AspectOptions, SlopeOptions, aspect, slope};
use terrain::las_io::read_las;
use terrain::models::{DemMethod, GroundSource, ModelOptions, compute_models};
use terrain::products::Product;
use terrain::stage::product_uri;

fn step(name: &str, t: &mut Instant) {
    println!("STEP {name} {:.3}", t.elapsed().as_secs_f64());
    *t = Instant::now();
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.is_empty() {
        eprintln!(
            "usage: terrain_bench slope-aspect DEM OUTDIR | models CLOUD OUTDIR [ground] [dem] [products]"
        );
        return;
    }
    let store = Store::from_env();
    let total = Instant::now();
    let mut t = Instant::now();
    match args[0].as_str() {
        "slope-aspect" => {
            let (input, outdir) = (&args[1], &args[2]);
            let dem = cog::read_band::<f32>(&store, input, 1).expect("read DEM");
            step("read", &mut t);
            let s = slope(&dem, &SlopeOptions::default()).expect("slope");
            step("slope", &mut t);
            let a = aspect(
                &dem,
                &AspectOptions {
                    compute_edges: true,
                    ..Default::default()
                },
            )
            .expect("aspect");
            step("aspect", &mut t);
            let opts = CogWriteOptions {
                compression: Compression::None,
                blocksize: 256,
                overviews: false,
                ..Default::default()
            };
            cog::write_cog(&store, &uri::join(outdir, "slope.tif"), &s, &opts).expect("write");
            cog::write_cog(&store, &uri::join(outdir, "aspect.tif"), &a, &opts).expect("write");
            step("write", &mut t);
        }
        "compute" => {
            // Slope and aspect of an in-memory DEM, three times each.
            let dem = cog::read_band::<f32>(&store, &args[1], 1).expect("read DEM");
            step("read", &mut t);
            for _ in 0..3 {
                let s = slope(&dem, &SlopeOptions::default()).expect("slope");
                step("slope", &mut t);
                drop(s);
                let a = aspect(
                    &dem,
                    &AspectOptions {
                        compute_edges: true,
                        ..Default::default()
                    },
                )
                .expect("aspect");
                step("aspect", &mut t);
                drop(a);
            }
        }
        "models" => {
            let (input, outdir) = (&args[1], &args[2]);
            let ground = match args.get(3).map(String::as_str) {
                Some("smrf") => GroundSource::Smrf,
                _ => GroundSource::Existing,
            };
            let dem_method = match args.get(4).map(String::as_str) {
                Some("tin") => DemMethod::Tin,
                _ => DemMethod::Idw,
            };
            let products = match args.get(5) {
                Some(list) => list
                    .split(',')
                    .map(|p| Product::parse(p).expect("product"))
                    .collect(),
                None => Product::ALL.to_vec(),
            };
            let opts = ModelOptions {
                ground,
                dem_method,
                products,
                tin_max_edge: Some(50.0),
                ..Default::default()
            };
            let mut file = read_las(&store, input, false).expect("read LAS");
            step("read", &mut t);
            let cloud = std::mem::take(&mut file.cloud);
            let crs = file.crs.clone();
            drop(file);
            let mut last = Instant::now();
            let models = compute_models(cloud, &crs, &opts, input, &mut |s| {
                println!(
                    "  (starting {s} after {:.3}s)",
                    last.elapsed().as_secs_f64()
                );
                last = Instant::now();
            })
            .expect("models");
            step("compute", &mut t);
            for (p, r) in &models.rasters {
                cog::write_cog(
                    &store,
                    &product_uri(outdir, "bench", *p),
                    r,
                    &Default::default(),
                )
                .expect("write");
            }
            step("write", &mut t);
            println!(
                "STATS {}",
                serde_json::to_string(&models.stats).unwrap_or_default()
            );
        }
        other => panic!("unknown bench {other}"),
    }
    println!("STEP total {:.3}", total.elapsed().as_secs_f64());
    if let Some(b) = cloud::rss::peak_rss_bytes() {
        println!("PEAK_RSS_MB {}", b >> 20);
    }
}
