//! Shared test helpers: the scikit-image/scipy/scikit-learn reference outputs on SJER.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use ndarray::Array2;

pub const SJER_CHM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/biomass/sjer/NEON_D17_SJER_DP3_256000_4106000_CHM.tif"
);
pub const SJER_TRAINING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/biomass/sjer/SJER_Biomass_Training.csv"
);

/// Outputs of `scripts/neon_reference.py` on SJER.
pub struct Reference {
    pub meta: serde_json::Value,
    pub chm: Array2<f32>,
    pub smooth: Array2<f32>,
    pub peaks: Vec<(usize, usize)>,
    pub markers: Array2<u32>,
    pub labels: Array2<u32>,
    pub labels_inv: Array2<u32>,
    pub labels8: Array2<u32>,
    /// label + 11 predictors per crown.
    pub predictors: Vec<[f64; 12]>,
}

fn read_bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn f32s(p: &Path, shape: (usize, usize)) -> Array2<f32> {
    let b = read_bytes(p);
    let v: Vec<f32> = b
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    Array2::from_shape_vec(shape, v).unwrap()
}

fn i32s(p: &Path, shape: (usize, usize)) -> Array2<u32> {
    let b = read_bytes(p);
    let v: Vec<u32> = b
        .chunks_exact(4)
        .map(|c| u32::try_from(i32::from_le_bytes(c.try_into().unwrap())).unwrap())
        .collect();
    Array2::from_shape_vec(shape, v).unwrap()
}

/// Runs the reference script once per test binary (python3 with the pinned packages of
/// scripts/requirements-test.txt) and loads its outputs.
pub fn reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    REF.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("biomass-ref-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/neon_reference.py");
        let out = Command::new("python3")
            .arg(script)
            .arg(SJER_CHM)
            .arg(SJER_TRAINING)
            .arg(&dir)
            .output()
            .expect("python3 must be installed with the packages of scripts/requirements-test.txt");
        assert!(
            out.status.success(),
            "reference script failed (install scripts/requirements-test.txt):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: serde_json::Value =
            serde_json::from_slice(&read_bytes(&dir.join("meta.json"))).unwrap();
        let shape = (
            meta["rows"].as_u64().unwrap() as usize,
            meta["cols"].as_u64().unwrap() as usize,
        );
        let pk = read_bytes(&dir.join("peaks.i64"));
        let pv: Vec<i64> = pk
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let peaks = pv
            .chunks_exact(2)
            .map(|p| (p[0] as usize, p[1] as usize))
            .collect();
        let pr = read_bytes(&dir.join("predictors.f64"));
        let prv: Vec<f64> = pr
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let predictors = prv
            .chunks_exact(12)
            .map(|r| r.try_into().unwrap())
            .collect();
        Reference {
            chm: f32s(&dir.join("chm.f32"), shape),
            smooth: f32s(&dir.join("smooth.f32"), shape),
            peaks,
            markers: i32s(&dir.join("markers.i32"), shape),
            labels: i32s(&dir.join("labels.i32"), shape),
            labels_inv: i32s(&dir.join("labels_inv.i32"), shape),
            labels8: i32s(&dir.join("labels8.i32"), shape),
            predictors,
            meta,
        }
    })
}
