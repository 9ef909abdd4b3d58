//! Benchmark of the biomass core against `shared/bench/skimage_bench.py` and `rf_bench.py`
//! (same work, same parameters), printing `STEP name seconds` lines like the peers:
//! `cargo bench -p biomass --bench biomass_bench -- chm CHM.tif | rf`.
//!
//! `chm CHM.tif`: gaussian (σ 2, truncate 4, nearest — skimage's
//! `gaussian` defaults), `peak_local_max(min_distance=3, threshold_abs=2)`, and the watershed
//! of the negated smoothed CHM from one marker per peak, masked to smoothed > 2 m.
//!
//! `rf`: random forest, 100 trees, all features per split, no depth limit, fit on 1000 × 6
//! synthetic rows (`50·x0 + 30·x1² + 10·sin(6·x2) + noise`), predict 100 000 rows.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use biomass::{
    BorderMode, Connectivity, FlatForest, GaussianParams, PeakParams, gaussian_filter,
    peak_local_max, watershed,
};
use ndarray::Array2;
use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;

fn step(name: &str, t0: &mut Instant) {
    println!("STEP {name} {:.4}", t0.elapsed().as_secs_f64());
    *t0 = Instant::now();
}

fn chm_bench(uri: &str) -> Result<()> {
    let store = cloud::Store::from_env();
    let mut t0 = Instant::now();
    let chm: cog::Raster<f32> = cog::read_band(&store, uri, 1).context("reading the CHM")?;
    step("read", &mut t0);
    let g = GaussianParams {
        sigma: 2.0,
        truncate: 4.0,
        mode: BorderMode::Nearest,
    };
    let sm = gaussian_filter(chm.data.view(), &g)?;
    step("gaussian", &mut t0);
    let p = PeakParams {
        min_distance: 3,
        footprint: None,
        threshold_abs: Some(2.0),
        ..Default::default()
    };
    let peaks = peak_local_max(sm.view(), &p)?;
    step("peak_local_max", &mut t0);
    let mut markers = Array2::<u32>::zeros(sm.dim());
    for (i, pk) in peaks.iter().enumerate() {
        markers[[pk.row, pk.col]] = i as u32 + 1;
    }
    let neg = sm.mapv(|v| -(v as f64));
    let mask = sm.mapv(|v| v > 2.0);
    let labels = watershed(neg.view(), markers.view(), mask.view(), Connectivity::Four)?;
    step("watershed", &mut t0);
    let max = labels.iter().copied().max().unwrap_or(0);
    let labelled = labels.iter().filter(|&&v| v > 0).count() as f64 / labels.len() as f64;
    println!(
        "{} peaks; {max} segments; {:.1} % of pixels labelled",
        peaks.len(),
        labelled * 100.0
    );
    Ok(())
}

fn rf_bench() -> Result<()> {
    // xorshift uniform [0, 1) and Box-Muller normals.
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut u = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let n = 1000;
    let mut x = Vec::with_capacity(n * 6);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let row: Vec<f64> = (0..6).map(|_| u()).collect();
        let (a, b) = (u().max(1e-12), u());
        let noise = 2.0 * (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos();
        y.push(50.0 * row[0] + 30.0 * row[1] * row[1] + 10.0 * (6.0 * row[2]).sin() + noise);
        x.extend(row);
    }
    let xp: Vec<f64> = (0..100_000 * 6).map(|_| u()).collect();
    let xm = DenseMatrix::new(n, 6, x, false).map_err(|e| anyhow::anyhow!("{e}"))?;
    let params = RandomForestRegressorParameters::default()
        .with_n_trees(100)
        .with_m(6)
        .with_seed(0);
    let mut t0 = Instant::now();
    let rf = RandomForestRegressor::fit(&xm, &y, params).map_err(|e| anyhow::anyhow!("{e}"))?;
    step("fit", &mut t0);
    // Our flat copy of the forest (bit-identical to smartcore's predict; conversion timed).
    let flat = FlatForest::from_smartcore(&rf)?;
    let p = flat.predict(&xp, 6)?;
    step("predict", &mut t0);
    println!("pred mean {:.3}", p.iter().sum::<f64>() / p.len() as f64);
    Ok(())
}

fn main() -> Result<()> {
    // `cargo bench` adds `--bench`.
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    match args.get(1).map(String::as_str) {
        Some("chm") => chm_bench(args.get(2).context("usage: biomass_bench chm CHM.tif")?),
        Some("rf") => rf_bench(),
        _ => bail!("usage: biomass_bench chm CHM.tif | rf"),
    }
}
