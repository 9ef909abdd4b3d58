//! Helpers for the driver's tests: fixtures, rasters, stage binaries, loopback services.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use cloud::{Ctx, ProgressMode, Store};
use cog::Raster;

pub mod batch;
pub mod ecs;
pub mod lambda;

/// `../shared/data/<rel>`.
pub fn data(rel: &str) -> String {
    let p = testkit::fixtures::data(rel);
    assert!(p.exists(), "fixture {} not found", p.display());
    p.display().to_string()
}

pub fn ctx(store: &Store) -> Ctx {
    Ctx::new(store.clone()).with_progress(ProgressMode::Silent)
}

/// Asserts two rasters are the same grid and bit-identical.
pub fn assert_same_raster(store: &Store, a: &str, b: &str) {
    let x: Raster<f32> = cog::read_band(store, a, 1).unwrap();
    let y: Raster<f32> = cog::read_band(store, b, 1).unwrap();
    assert_eq!(x.data.dim(), y.data.dim(), "{a} vs {b}");
    assert_eq!(x.transform, y.transform, "{a} vs {b}");
    assert_eq!(x.crs.epsg, y.crs.epsg, "{a} vs {b}");
    let differ = x
        .data
        .iter()
        .zip(y.data.iter())
        .filter(|(p, q)| p.to_bits() != q.to_bits())
        .count();
    assert_eq!(differ, 0, "{a} vs {b}: {differ} pixels differ");
}

pub use testkit::process::{ChildGuard, find_program};

pub fn free_port() -> u16 {
    testkit::process::free_port().expect("a free loopback port")
}

pub fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    testkit::process::wait_for_port(port, child, what, std::time::Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The folder of this build's binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_geobutton"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds the stage binaries `names` (same profile as the tests) and returns their paths.
///
/// Builds what `cargo test --workspace` builds (every package's tests and binaries), so that
/// cargo resolves the same features and, under `cargo test --workspace`, finds everything
/// fresh: building only `-p water --bin water` would unify features differently and rebuild
/// the AWS SDK and the stage crates a second time (minutes on 2 cores).
pub fn stage_binaries(names: &[&str]) -> Vec<PathBuf> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--workspace", "--tests", "--bins"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "building {names:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    names
        .iter()
        .map(|n| {
            let p = bin_dir().join(n);
            assert!(p.is_file(), "{} was not built", p.display());
            p
        })
        .collect()
}

/// Environment pointing a process at the loopback S3 server.
pub fn s3_env(cmd: &mut Command) -> &mut Command {
    testkit::aws::s3_env(cmd, &cloud::testing::s3_endpoint())
}

pub use testkit::aws::test_credentials;

/// Sets this process's AWS environment for SDK clients of the tests (loopback only).
pub fn aws_test_env() {
    // SAFETY: set before any thread of the test reads the environment... tests in one binary
    // share it, and every test sets the same values.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::remove_var("AWS_PROFILE");
    }
}

/// Writes a synthetic DTM (the water crate's generator, through the real SIAM stations) as
/// ESRI ASCII to `path`: `cols`×`rows` pixels of `pixel` m, top-left (`x0`, `y0`).
pub fn synthetic_dtm(x0: f64, y0: f64, pixel: f64, cols: usize, rows: usize) -> String {
    let bytes = std::fs::read(data("water/siam_data.csv")).unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2022, 5, 15).unwrap();
    let st =
        water::stations::parse("siam", &bytes, water::stations::StationFormat::Auto, date).unwrap();
    let dtm = water::synth::dtm(&st, x0, y0, pixel, cols, rows, None);
    water::synth::to_asc(&dtm)
}

/// Plots crossing the boundary between two tiles at x = 640 000 + 60·100 m.
pub fn plots_geojson() -> String {
    let rect = |id: &str, uso: &str, x0: f64, y0: f64, x1: f64, y1: f64| {
        serde_json::json!({
            "type": "Feature",
            "properties": { "id": id, "uso_sigpac": uso },
            "geometry": { "type": "Polygon", "coordinates": [[
                [x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]
            ]]}
        })
    };
    serde_json::json!({
        "type": "FeatureCollection",
        "features": [
            rect("inside", "VI", 641_000.0, 4_197_000.0, 642_000.0, 4_198_000.0),
            rect("across", "OV", 645_000.0, 4_197_500.0, 647_500.0, 4_198_500.0),
        ]
    })
    .to_string()
}

/// Starts a moto server of its own on a free loopback port (AWS's managed IAM policies
/// loaded, as an account has them); returns its guard and endpoint.
pub fn start_moto() -> (ChildGuard, String) {
    let port = free_port();
    let moto = find_program("moto_server").expect("moto_server (pip install moto[server])");
    let mut child = Command::new(moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child, "moto_server");
    (ChildGuard(child), format!("http://127.0.0.1:{port}"))
}

/// The standard output of a finished command, which must have succeeded (else the test
/// fails with both outputs).
pub fn succeeded(o: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    text
}
