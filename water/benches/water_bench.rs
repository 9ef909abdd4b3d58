//! Benchmarks of the `water` crate: `cargo bench -p water --bench water_bench -- CASE [ARGS]`.
//!
//! - `et0 [N]`: daily ET0 over an N×N (2000) raster stack of one day's inputs,
//!   built as `shared/bench/pyet_bench.py` builds its inputs for pyet's `pm_fao56`; prints
//!   `STEP make_inputs`, `STEP et0_daily` seconds and the ET0 statistics.
//! - `tile [DIR]`: the full workflow on a generated 5600×3700 5 m DTM (one MDT05
//!   sheet near Murcia, written once to DIR, default /tmp/bench-data/water) with the 47 SIAM
//!   stations: time per window and per tile, peak RSS.
//! - `window I [DIR]`: one window (I of the 3×3) read from the DTM COG with its
//!   halo, as a per-window task would: time and peak RSS.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use cloud::{Ctx, Store};
use ndarray::Array2;
use water::grid::{self, DailyGrid, Field, GridHumidity, GridRa};

fn noise(seed: u64) -> impl FnMut() -> f64 {
    // SplitMix64 → uniform [0, 1).
    let mut s = seed;
    move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn bench_et0(n: usize) -> Result<()> {
    let t0 = Instant::now();
    let mut u = noise(11);
    let mut normal = move |sd: f64| {
        // Box-Muller.
        let (a, b) = (u().max(1e-300), u());
        sd * (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
    };
    let f = |a: Array2<f64>| a.mapv(|v| v as f32);
    let yy = |i: usize| i as f64 / n as f64;
    let tmax = f(Array2::from_shape_fn((n, n), |(i, j)| {
        28.0 + 6.0 * (3.0 * yy(j)).sin() - 4.0 * yy(i) + normal(0.3)
    }));
    let tmin = f(Array2::from_shape_fn((n, n), |(i, j)| {
        tmax[[i, j]] as f64 - 12.0 - 2.0 * (2.0 * yy(i)).cos()
    }));
    let tmean = f(Array2::from_shape_fn((n, n), |(i, j)| {
        0.5 * (tmax[[i, j]] as f64 + tmin[[i, j]] as f64)
    }));
    let mut u2 = noise(12);
    let wind = f(Array2::from_shape_fn((n, n), |(i, j)| {
        1.5 + 2.0 * yy(j) * yy(i) + 0.5 * u2()
    }));
    let rs = f(Array2::from_shape_fn((n, n), |(_, j)| {
        24.0 + 3.0 * (4.0 * yy(j)).cos() + normal(0.5)
    }));
    let rhmax = f(Array2::from_shape_fn((n, n), |(i, _)| {
        (80.0 + 10.0 * yy(i) + normal(2.0)).clamp(0.0, 100.0)
    }));
    let rhmin = rhmax.mapv(|v| (v - 45.0).clamp(5.0, 100.0));
    let elev = f(Array2::from_shape_fn((n, n), |(i, j)| {
        600.0 + 400.0 * yy(j) * yy(i)
    }));
    let lat = f(Array2::from_shape_fn((n, n), |(i, _)| {
        (40.0 + 0.5 * (1.0 - yy(i))).to_radians()
    }));
    let t1 = Instant::now();
    println!("STEP make_inputs {:.4}", (t1 - t0).as_secs_f64());
    let et = grid::et0_daily(&DailyGrid {
        doy: 196,
        tmax: Field::from(&tmax),
        tmin: Field::from(&tmin),
        tmean: Some(Field::from(&tmean)),
        humidity: GridHumidity::RhMaxMin(Field::from(&rhmax), Field::from(&rhmin)),
        u2: Field::from(&wind),
        rs: Field::from(&rs),
        rs_rso: None,
        ra: GridRa::Latitude(Field::from(&lat)),
        elev: Field::from(&elev),
        albedo: 0.23,
    })?;
    let t2 = Instant::now();
    println!("STEP et0_daily {:.4}", (t2 - t1).as_secs_f64());
    let (mut s, mut lo, mut hi) = (0.0f64, f32::MAX, f32::MIN);
    for &v in et.iter() {
        s += v as f64;
        lo = lo.min(v);
        hi = hi.max(v);
    }
    println!(
        "ET0 shape ({n}, {n}) mean {:.3} mm/d min {lo:.3} max {hi:.3}",
        s / (n * n) as f64
    );
    Ok(())
}

const COLS: usize = 5600;
const ROWS: usize = 3700;

fn dtm_uri(dir: &str) -> String {
    format!("{dir}/dtm_murcia_5600x3700.tif")
}

fn stations_uri() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/water/siam_data.csv"
    )
    .to_string()
}

/// The SIAM stations of the bench day (2022-05-15).
fn bench_stations(store: &Store) -> Result<Vec<water::stations::Station>> {
    let bytes = store.get(&stations_uri())?;
    let date = NaiveDate::from_ymd_opt(2022, 5, 15).context("date")?;
    Ok(water::stations::parse(
        "siam_data.csv",
        &bytes,
        water::stations::StationFormat::Auto,
        date,
    )?)
}

fn ensure_dtm(store: &Store, dir: &str) -> Result<String> {
    let uri = dtm_uri(dir);
    if store.exists(&uri)? {
        return Ok(uri);
    }
    std::fs::create_dir_all(dir)?;
    let st = bench_stations(store)?;
    let t = Instant::now();
    // One MDT05-sized sheet south-west of Murcia city, with the coast in its corner.
    let dtm = water::synth::dtm(
        &st,
        640_000.0,
        4_200_000.0,
        5.0,
        COLS,
        ROWS,
        Some((665_000.0, 4_184_000.0)),
    );
    cog::write_cog(store, &uri, &dtm, &cog::CogWriteOptions::default())?;
    eprintln!("generated {uri} in {:.1} s", t.elapsed().as_secs_f64());
    Ok(uri)
}

fn peak_rss_mb() -> f64 {
    cloud::rss::peak_rss_bytes().map_or(f64::NAN, |b| b as f64 / 1e6)
}

fn params(dtm: &str, dir: &str) -> water::Params {
    water::Params {
        dtm: dtm.to_string(),
        dtm_epsg: 25830,
        stations: stations_uri(),
        station_format: water::stations::StationFormat::Auto,
        date: NaiveDate::from_ymd_opt(2022, 5, 15).unwrap_or_default(),
        plots: None,
        kc: None,
        out: format!("{dir}/out"),
        plots_owned_elsewhere: Vec::new(),
        write_inputs: false,
        png: true,
        options: water::workflow::Options::default(),
    }
}

fn bench_tile(dir: &str) -> Result<()> {
    let store = Store::from_env();
    let uri = ensure_dtm(&store, dir)?;
    cloud::rss::reset_peak();
    let ctx = Ctx::new(store).with_progress(cloud::ProgressMode::Log);
    let t = Instant::now();
    let out = water::stage::run_tile(&params(&uri, dir), &ctx)?;
    let total = t.elapsed().as_secs_f64();
    for (i, s) in out.window_seconds.iter().enumerate() {
        println!("STEP window{i} {s:.4}");
    }
    println!("STEP compute {:.4}", out.compute_seconds);
    println!("STEP tile_total {total:.4}");
    println!(
        "tile {}x{} stations {} ET0 mean {:.3} min {:?} max {:?} peak_rss_mb {:.0}",
        out.width,
        out.height,
        out.stations_used.len(),
        out.et0_mean.unwrap_or(f64::NAN),
        out.et0_min,
        out.et0_max,
        peak_rss_mb()
    );
    Ok(())
}

fn bench_window(i: usize, dir: &str) -> Result<()> {
    let store = Store::from_env();
    let uri = ensure_dtm(&store, dir)?;
    cloud::rss::reset_peak();
    let t = Instant::now();
    let reader = cog::CogReader::open(&store, &uri)?;
    let info = reader.info().clone();
    let wins = water::workflow::split(info.width, info.height, 3);
    let Some(&w) = wins.get(i) else {
        bail!("window {i} of {}", wins.len())
    };
    // The window plus a 1-pixel halo, read by range requests.
    let c0 = w.col_off.saturating_sub(1);
    let r0 = w.row_off.saturating_sub(1);
    let c1 = (w.col_off + w.width + 1).min(info.width);
    let r1 = (w.row_off + w.height + 1).min(info.height);
    let halo: cog::Raster<f32> =
        reader.read_window(1, cog::Window::new(c0, r0, c1 - c0, r1 - r0), 0)?;
    let read_s = t.elapsed().as_secs_f64();
    let proj = water::proj::Projection::from_epsg(25830)?;
    let st = bench_stations(&store)?;
    let e = water::workflow::extent(
        &info.geotransform,
        info.width as usize,
        info.height as usize,
    );
    let opts = water::workflow::Options::default();
    let set = water::workflow::StationSet::for_tile(&st, e, &proj, 135, &opts)?;
    let inner = cog::Window::new(w.col_off - c0, w.row_off - r0, w.width, w.height);
    let r = water::workflow::process_window(&halo, inner, &set, &proj, 135, &opts)?;
    let total = t.elapsed().as_secs_f64();
    println!("STEP read {read_s:.4}");
    println!("STEP window_total {total:.4}");
    println!(
        "window {i} {}x{} ET0 mean {:.3} peak_rss_mb {:.0}",
        w.width,
        w.height,
        r.et0
            .iter()
            .filter(|v| v.is_finite())
            .map(|&v| v as f64)
            .sum::<f64>()
            / r.et0.iter().filter(|v| v.is_finite()).count().max(1) as f64,
        peak_rss_mb()
    );
    Ok(())
}

fn main() -> Result<()> {
    // `cargo bench` adds `--bench`.
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let dir = |k: usize| {
        args.get(k)
            .cloned()
            .unwrap_or_else(|| "/tmp/bench-data/water".into())
    };
    match args.get(1).map(String::as_str) {
        Some("et0") => bench_et0(args.get(2).map_or(Ok(2000), |s| s.parse()).context("N")?),
        Some("tile") => bench_tile(&dir(2)),
        Some("window") => bench_window(args.get(2).context("window index")?.parse()?, &dir(3)),
        _ => bail!("usage: water_bench et0 [N] | tile [DIR] | window I [DIR]"),
    }
}
