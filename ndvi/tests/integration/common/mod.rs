//! Helpers shared by the integration tests: fixture paths, the `ndvi` binary, the numpy /
//! rasterio reference, raw float32 arrays.

use std::path::Path;
use std::process::{Command, Output};

pub const SENTINEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/sentinel");

pub fn scene_dir() -> String {
    format!("{SENTINEL}/s2_l2a_cogs_29RKH_20200219")
}
pub fn b04() -> String {
    format!("{}/B04.tif", scene_dir())
}
pub fn b08() -> String {
    format!("{}/B08.tif", scene_dir())
}
pub fn scl() -> String {
    format!("{}/SCL.tif", scene_dir())
}
pub fn item() -> String {
    format!("{}/S2A_29RKH_20200219_0_L2A.json", scene_dir())
}

/// The `ndvi` binary built for these tests.
pub fn ndvi_bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ndvi"));
    c.env("RUST_LOG", "warn");
    c
}

/// Runs the binary and asserts success; returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    testkit::process::stdout_of(cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the binary and asserts failure; returns stderr.
pub fn run_err(cmd: &mut Command) -> String {
    let out: Output = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "{cmd:?} should have failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// Python prelude of the reference: rasterio + numpy NDVI as the issue defines it.
pub const PY_PRELUDE: &str = r#"
import json, sys
import numpy as np
import rasterio

def read(path):
    with rasterio.open(path) as src:
        return src.read(1), src.profile

def ndvi(red_path, nir_path, offset_dn=0.0, scl_path=None, classes=()):
    red, _ = read(red_path)
    nir, _ = read(nir_path)
    valid = (red != 0) & (nir != 0)
    r = red.astype(np.float32) + np.float32(offset_dn)
    n = nir.astype(np.float32) + np.float32(offset_dn)
    s = n + r
    with np.errstate(all="ignore"):
        v = (n - r) / s
    v[~valid | (s == 0)] = np.nan
    if scl_path:
        scl, _ = read(scl_path)
        k = red.shape[0] // scl.shape[0]
        up = np.repeat(np.repeat(scl, k, 0), k, 1)[: red.shape[0], : red.shape[1]]
        v[np.isin(up, classes)] = np.nan
    return v.astype(np.float32)

def stats(v):
    ok = ~np.isnan(v)
    x = v[ok].astype(np.float64)
    return dict(valid=int(ok.sum()), min=float(x.min()), max=float(x.max()),
                mean=float(x.mean()), std=float(x.std()))

def georef(path):
    with rasterio.open(path) as src:
        return dict(width=src.width, height=src.height, transform=list(src.transform)[:6],
                    crs=src.crs.to_epsg(), dtype=src.dtypes[0],
                    nodata=None if src.nodata is None else repr(src.nodata))
"#;

/// Runs `body` after the prelude with `args` as `sys.argv[1:]`; returns stdout.
pub fn python(body: &str, args: &[&str]) -> String {
    let script = format!("{PY_PRELUDE}\n{body}");
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .args(args)
        .output()
        .expect("python3 with numpy and rasterio (scripts/requirements-test.txt)");
    assert!(
        out.status.success(),
        "python reference failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Reads a raw little-endian float32 file.
pub fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Asserts two float32 arrays are bit-for-bit equal (NaN matches NaN).
pub fn assert_same_pixels(what: &str, ours: &[f32], reference: &[f32]) {
    assert_eq!(ours.len(), reference.len(), "{what}: pixel counts");
    let mut bad = 0usize;
    let mut first = None;
    for (i, (a, b)) in ours.iter().zip(reference).enumerate() {
        let same = (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits();
        if !same {
            bad += 1;
            first.get_or_insert((i, *a, *b));
        }
    }
    assert_eq!(
        bad, 0,
        "{what}: {bad} pixels differ; first (index, ours, reference) = {first:?}"
    );
}

/// A scratch directory for one test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ndvi-test-")
        .tempdir()
        .unwrap()
}

pub fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// Makes the "after" scene of the tests in `dir`: the 2020-02-19 bands with a known change
/// (NIR × 1.5 in rows 200–599, cols 300–799; NIR × 0.97 elsewhere), re-encoded as processing
/// baseline 04.00 DNs (+1000, so reflectance = (DN − 1000) / 10000), tiled 512 DEFLATE.
/// Returns (B04, B08) paths.
pub fn make_after_scene(dir: &Path) -> (String, String) {
    let red = path_str(&dir.join("B04.tif"));
    let nir = path_str(&dir.join("B08.tif"));
    python(
        r#"
red, prof = read(sys.argv[1])
nir, _ = read(sys.argv[2])
prof.update(driver="GTiff", tiled=True, blockxsize=512, blockysize=512, compress="deflate")
n = nir.astype(np.float64) * 0.97
n[200:600, 300:800] = nir[200:600, 300:800].astype(np.float64) * 1.5
n = np.where(nir == 0, 0, np.clip(np.rint(n) + 1000, 1, 65535)).astype(np.uint16)
r = np.where(red == 0, 0, red.astype(np.uint32) + 1000).astype(np.uint16)
for path, a in ((sys.argv[3], r), (sys.argv[4], n)):
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(a, 1)
"#,
        &[&b04(), &b08(), &red, &nir],
    );
    (red, nir)
}

/// Writes the numpy reference NDVI of (red, nir, offset[, scl]) as raw float32 to `out` and
/// returns its statistics JSON.
pub fn reference_ndvi(
    red: &str,
    nir: &str,
    offset_dn: f64,
    scl: Option<&str>,
    out: &Path,
) -> serde_json::Value {
    let off = offset_dn.to_string();
    let scl = scl.unwrap_or("");
    let s = python(
        r#"
v = ndvi(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] or None, (3, 8, 9, 10))
v.astype("<f4").tofile(sys.argv[5])
print(json.dumps(stats(v)))
"#,
        &[red, nir, &off, scl, &path_str(out)],
    );
    serde_json::from_str(&s).unwrap()
}

/// Reads band 1 of a GeoTIFF with rasterio and writes it as raw float32 to `out`; returns its
/// georeferencing JSON.
pub fn rasterio_dump(tif: &str, out: &Path) -> serde_json::Value {
    let s = python(
        r#"
a, _ = read(sys.argv[1])
a.astype("<f4").tofile(sys.argv[2])
print(json.dumps(georef(sys.argv[1])))
"#,
        &[tif, &path_str(out)],
    );
    serde_json::from_str(&s).unwrap()
}

/// Georeferencing of a raster as rasterio reads it.
pub fn georef(tif: &str) -> serde_json::Value {
    serde_json::from_str(&python("print(json.dumps(georef(sys.argv[1])))", &[tif])).unwrap()
}

/// Runs GDAL's COG validator on `tif`; panics with its report when invalid.
pub fn assert_valid_cog(tif: &str) {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-m",
            "osgeo_utils.samples.validate_cloud_optimized_geotiff",
            tif,
        ])
        .output()
        .expect("GDAL's python bindings (python3-gdal)");
    assert!(
        out.status.success(),
        "{tif} is not a valid COG:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `cmd` with the loopback S3 server's endpoint and test credentials.
pub fn s3_env(cmd: &mut Command) -> &mut Command {
    testkit::aws::s3_env(cmd, &cloud::testing::s3_endpoint())
}
