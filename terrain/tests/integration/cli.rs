//! The `terrain` binary end to end: models, ground, slope, aspect, mosaic and a task file,
//! with the outputs checked by GDAL (`gdalinfo`) and by reading them back.

use std::path::Path;
use std::process::{Command, Output};

use cloud::Store;
use cog::Raster;
use terrain::las_io::read_las;

const BIN: &str = env!("CARGO_BIN_EXE_terrain");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");

fn terrain(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> Output {
    let o = terrain(args);
    assert!(
        o.status.success(),
        "terrain {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn gdalinfo(path: &Path) -> String {
    let o = Command::new("gdalinfo").arg(path).output().unwrap();
    assert!(
        o.status.success(),
        "gdalinfo {path:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn read(path: &Path) -> Raster<f32> {
    cog::read_band::<f32>(&Store::from_env(), path.to_str().unwrap(), 1).unwrap()
}

#[test]
fn models_writes_six_valid_cogs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("models");
    let input = format!("{DATA}/cnig/murcia_tiles/out_2_-8.laz");
    let o = ok(&[
        "models",
        &input,
        out.to_str().unwrap(),
        "--resolution",
        "5",
        "--smrf-cell",
        "2",
        "--epsg",
        "25830",
        "--elm",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["stats"]["points"], 210527);
    for p in ["dem", "dsm", "chm", "fcc", "slope", "aspect"] {
        let f = out.join(format!("out_2_-8_{p}.tif"));
        assert_eq!(report["products"][p], f.to_str().unwrap());
        let info = gdalinfo(&f);
        assert!(info.contains("Type=Float32"), "{p}: {info}");
        assert!(info.contains("NoData Value=-9999"), "{p}");
        assert!(info.contains("ID[\"EPSG\",25830]"), "{p}");
        assert!(info.contains("LAYOUT=COG"), "{p}: {info}");
        assert!(
            info.contains("Pixel Size = (5.000000000000000,-5.000000000000000)"),
            "{p}"
        );
        // Snapped grid: the origin is a multiple of 5 m.
        let r = read(&f);
        assert_eq!(r.transform.0[0] % 5.0, 0.0);
        assert_eq!(r.transform.0[3] % 5.0, 0.0);
    }
    let dem = read(&out.join("out_2_-8_dem.tif"));
    let dsm = read(&out.join("out_2_-8_dsm.tif"));
    let chm = read(&out.join("out_2_-8_chm.tif"));
    let fcc = read(&out.join("out_2_-8_fcc.tif"));
    let mut valid = 0;
    for (((&g, &s), &h), &f) in dem.data.iter().zip(&dsm.data).zip(&chm.data).zip(&fcc.data) {
        if g == -9999.0 || s == -9999.0 {
            assert_eq!(h, -9999.0);
            continue;
        }
        valid += 1;
        assert!((1000.0..2000.0).contains(&g), "dem {g}");
        assert!(
            (h - (s - g).max(0.0)).abs() < 1e-3,
            "chm {h} dsm {s} dem {g}"
        );
        assert!((0.0..=100.0).contains(&f));
    }
    assert!(valid > 5000, "{valid}");
}

#[test]
fn ground_rewrites_classes_and_keeps_everything_else() {
    let dir = tempfile::tempdir().unwrap();
    let input = format!("{DATA}/cnig/murcia_tiles/out_2_-6.laz");
    let out = dir.path().join("ground.laz");
    ok(&["ground", &input, out.to_str().unwrap()]);
    let store = Store::from_env();
    let a = read_las(&store, &input, false).unwrap();
    let b = read_las(&store, out.to_str().unwrap(), false).unwrap();
    assert!(b.header.point_format().is_compressed);
    assert_eq!(a.cloud.len(), b.cloud.len());
    assert_eq!(a.cloud.x, b.cloud.x);
    assert_eq!(a.cloud.z, b.cloud.z);
    assert_eq!(a.cloud.returns, b.cloud.returns);
    assert_eq!(a.header.transforms(), b.header.transforms());
    let ground = b.cloud.class.iter().filter(|&&c| c == 2).count();
    assert!(ground > 50, "{ground}");
    // Every point is a single return here: each one was classified, 2 or 1.
    assert!(b.cloud.class.iter().all(|&c| c == 1 || c == 2));
    // LAS output from LAZ input.
    let las_out = dir.path().join("ground.las");
    ok(&[
        "ground",
        &input,
        las_out.to_str().unwrap(),
        "--preserve-classes",
    ]);
    let c = read_las(&store, las_out.to_str().unwrap(), false).unwrap();
    assert!(!c.header.point_format().is_compressed);
    for (&before, &after) in a.cloud.class.iter().zip(&c.cloud.class) {
        assert!(after == before || after == 2);
    }
}

#[test]
fn slope_aspect_and_mosaic() {
    let dir = tempfile::tempdir().unwrap();
    let dem = format!("{DATA}/raster/georust-gdal/dem-hills.tiff");
    // Geographic DEM without --scale: a clear error, exit status 1, nothing written.
    let out = dir.path().join("slope.tif");
    let o = terrain(&["slope", &dem, out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--scale") && err.contains("dem-hills.tiff"),
        "{err}"
    );
    assert!(!out.exists());
    // As in PROVENANCE.md: gdaldem slope -alg Horn -s 98473.2947 -p (no -compute_edges).
    ok(&[
        "slope",
        &dem,
        out.to_str().unwrap(),
        "--percent",
        "--scale",
        "98473.2947",
        "--no-edges",
    ]);
    let want = read(Path::new(&format!(
        "{DATA}/raster/expected_gdaldem_gdal362/dem_hills_slope_horn_percent_s98473.2947.tif"
    )));
    let got = read(&out);
    assert_eq!(got.data, want.data);
    let asp = dir.path().join("aspect.tif");
    ok(&[
        "aspect",
        &dem,
        asp.to_str().unwrap(),
        "--zero-for-flat",
        "--no-edges",
    ]);
    let want = read(Path::new(&format!(
        "{DATA}/raster/expected_gdaldem_gdal362/dem_hills_aspect_horn_zero_for_flat.tif"
    )));
    let got = read(&asp);
    assert_eq!(got.data, want.data);
    assert_eq!(got.nodata, None);

    // Mosaic two halves cut by gdal_translate back into the whole.
    let left = dir.path().join("left.tif");
    let right = dir.path().join("right.tif");
    for (f, win) in [(&left, "0 0 200 218"), (&right, "150 0 183 218")] {
        let mut args = vec!["-q", "-srcwin"];
        args.extend(win.split(' '));
        let o = Command::new("gdal_translate")
            .args(&args)
            .arg(out.to_str().unwrap())
            .arg(f)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let m = dir.path().join("mosaic.tif");
    ok(&[
        "mosaic",
        left.to_str().unwrap(),
        right.to_str().unwrap(),
        "-o",
        m.to_str().unwrap(),
    ]);
    let whole = read(&out);
    let mosaic = read(&m);
    assert_eq!(mosaic.transform, whole.transform);
    assert_eq!(mosaic.data, whole.data);
    // The halves by glob: the same mosaic.
    let m2 = dir.path().join("mosaic-glob.tif");
    let glob = format!("{}/[lr]*t.tif", dir.path().display());
    ok(&["mosaic", &glob, "-o", m2.to_str().unwrap()]);
    assert_eq!(read(&m2).data, whole.data);
    // A bad argument list: exit status 2 from clap.
    assert_eq!(terrain(&["mosaic", "only.tif"]).status.code(), Some(2));
    // The output forgotten: an error, and the last input is not overwritten.
    let before = std::fs::read(&right).unwrap();
    let o = terrain(&["mosaic", left.to_str().unwrap(), right.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&right).unwrap(), before);
    // An output that is one of the inputs: refused before anything is read.
    let o = terrain(&[
        "mosaic",
        left.to_str().unwrap(),
        right.to_str().unwrap(),
        "-o",
        right.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("is also an input"), "{e}");
    assert_eq!(std::fs::read(&right).unwrap(), before);
}

#[test]
fn a_task_file_runs_and_records_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("task-out");
    let task = serde_json::json!({
        "id": "t-1",
        "stage": "terrain",
        "params": {"models": {
            "input": format!("{DATA}/cnig/murcia_tiles/out_2_-6.laz"),
            "output": out.to_str().unwrap(),
            "epsg": 25830,
            "options": {"resolution": 2.0, "products": ["dem", "dsm"]}
        }}
    });
    let tf = dir.path().join("task.json");
    std::fs::write(&tf, task.to_string()).unwrap();
    let o = ok(&["task", tf.to_str().unwrap()]);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["state"], "ok", "{status}");
    assert_eq!(status["outputs"].as_array().unwrap().len(), 2);
    assert!(out.join("status/t-1.json").exists());
    assert!(out.join("out_2_-6_dem.tif").exists());
    // Unknown parameter: an invalid task (exit status 2), no status written for it.
    let bad = serde_json::json!({
        "id": "t-2", "stage": "terrain",
        "params": {"models": {"input": "x.laz", "output": "o", "resolutoin": 1}}
    });
    std::fs::write(&tf, bad.to_string()).unwrap();
    assert_eq!(
        terrain(&["task", tf.to_str().unwrap()]).status.code(),
        Some(2)
    );
}

#[test]
fn epsg_only_labels_data_without_a_crs() {
    let dir = tempfile::tempdir().unwrap();
    // A Catalonia partition recording EPSG:25831: --epsg 25830 would relabel it.
    let cat = format!("{DATA}/cnig/partitions/lasfile-0000.las");
    let out = dir.path().join("cat");
    let args = |epsg: &str| {
        vec![
            "models".to_string(),
            cat.clone(),
            out.to_str().unwrap().to_string(),
            "--resolution".into(),
            "5".into(),
            "--products".into(),
            "dem".into(),
            "--epsg".into(),
            epsg.into(),
        ]
    };
    let a = args("25830");
    let o = terrain(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("EPSG:25831") && e.contains("25830"), "{e}");
    assert!(!out.join("lasfile-0000_dem.tif").exists());
    // The same code is fine, and so is no --epsg: the products say 25831.
    for extra in [Some("25831"), None] {
        let mut a = args("25831");
        if extra.is_none() {
            a.truncate(a.len() - 2);
        }
        ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
        let info = gdalinfo(&out.join("lasfile-0000_dem.tif"));
        assert!(info.contains("ID[\"EPSG\",25831]"), "{info}");
    }
    // A Murcia tile without a CRS and without --epsg: products without CRS, and a warning.
    let murcia = format!("{DATA}/cnig/murcia_tiles/out_2_-8.laz");
    let out = dir.path().join("murcia");
    let o = ok(&[
        "models",
        &murcia,
        out.to_str().unwrap(),
        "--resolution",
        "5",
        "--products",
        "dem",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let warnings = report["stats"]["warnings"].to_string();
    assert!(warnings.contains("records no CRS"), "{warnings}");
    let info = gdalinfo(&out.join("out_2_-8_dem.tif"));
    assert!(!info.contains("EPSG"), "{info}");
}

#[test]
fn help_says_the_true_ground_rule_and_logs_are_plain_when_redirected() {
    let o = ok(&["ground", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("every other point keeps its class"), "{help}");
    // A slope run with standard error redirected: log lines without colour codes; --quiet
    // prints nothing but errors.
    let dir = tempfile::tempdir().unwrap();
    let dem = format!("{DATA}/raster/georust-gdal/dem-hills.tiff");
    let out = dir.path().join("s.tif");
    let o = ok(&["slope", &dem, out.to_str().unwrap(), "--scale", "111120"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains('\u{1b}'),
        "colour codes in redirected output: {err:?}"
    );
    let o = Command::new(BIN)
        .args([
            "slope",
            "--quiet",
            &dem,
            out.to_str().unwrap(),
            "--scale",
            "111120",
        ])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("INFO"), "{err}");
}
