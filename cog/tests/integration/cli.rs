//! The `cog` binary: `info`, `read`, `translate` (GeoTIFF and ESRI ASCII in, COG out) and
//! `task` (the serverless entry: task JSON in, status written).

use std::process::Command;

use crate::common::*;

fn cog(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cog"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn info_prints_the_structure_as_json() {
    let p = data_str("sentinel/s2_l2a_cogs_29RKH_20200219/B04.tif");
    let (ok, out, err) = cog(&["info", "--stats", &p]);
    assert!(ok, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["width"], 1098);
    assert_eq!(j["dtype"], "u16");
    assert_eq!(j["block"], serde_json::json!([512, 512]));
    assert_eq!(j["compression"], "DEFLATE");
    assert_eq!(j["crs"]["epsg"], 32629);
    assert_eq!(j["nodata"], 0.0);
    assert_eq!(j["overviews"], serde_json::json!([[549, 549], [275, 275]]));
    assert_eq!(j["requests"]["get_requests"], 1);
    // A missing file is a clear error and a non-zero exit.
    let (ok, _, err) = cog(&["info", "/nonexistent/x.tif"]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/x.tif"), "{err}");
}

#[test]
fn read_writes_a_window_as_a_valid_cog() {
    let dir = tempfile::tempdir().unwrap();
    let src = data_str("raster/rasterio/RGB.byte.tif");
    let out = dir.path().join("w.tif").to_string_lossy().into_owned();
    let (ok, _, err) = cog(&[
        "read",
        &src,
        "--window",
        "100,200,300,150",
        "--band",
        "2",
        "-o",
        &out,
    ]);
    assert!(ok, "{err}");
    assert!(cog_validate(&out).is_empty());
    let (theirs, w, h) = gdal_envi(&out, 1, None, None);
    assert_eq!((w, h), (300, 150));
    assert_eq!(theirs, gdal_window(&src, 2, 100, 200, 300, 150, None));
    let j = gdalinfo_json(&out);
    let gt = j["geoTransform"].as_array().unwrap();
    let sj = gdalinfo_json(&src);
    let sgt = sj["geoTransform"].as_array().unwrap();
    let x0 = sgt[0].as_f64().unwrap() + 100.0 * sgt[1].as_f64().unwrap();
    assert!((gt[0].as_f64().unwrap() - x0).abs() < 1e-6);
    // An overview window.
    let cogf = data_str("raster/derived_gdal362/rgb_byte_cog_deflate_pred2_256.tif");
    let out2 = dir.path().join("o.tif").to_string_lossy().into_owned();
    let (ok, _, err) = cog(&[
        "read",
        &cogf,
        "--window",
        "0,0,395,359",
        "--overview",
        "1",
        "-o",
        &out2,
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        gdal_envi(&out2, 3, None, None).0,
        gdal_window(&cogf, 3, 0, 0, 395, 359, Some(1))
    );
    // Out-of-image window: clear error.
    let (ok, _, err) = cog(&["read", &src, "--window", "700,700,200,200", "-o", &out2]);
    assert!(!ok && err.contains("not inside"), "{err}");
}

#[test]
fn translate_geotiff_and_ascii_grid_to_cog() {
    let dir = tempfile::tempdir().unwrap();
    let src = data_str("raster/rasterio/RGB.byte.tif");
    let out = dir.path().join("rgb.tif").to_string_lossy().into_owned();
    let (ok, _, err) = cog(&["translate", &src, &out, "--blocksize", "256"]);
    assert!(ok, "{err}");
    assert!(cog_validate(&out).is_empty());
    let j = gdalinfo_json(&out);
    assert_eq!(j["bands"].as_array().unwrap().len(), 3);
    assert_eq!(j["bands"][0]["colorInterpretation"], "Red");
    for b in 1..=3 {
        assert_eq!(
            gdal_envi(&out, b, None, None).0,
            gdal_envi(&src, b, None, None).0
        );
    }
    assert_eq!(
        run("gdalsrsinfo", &["-o", "epsg", &out]).trim(),
        run("gdalsrsinfo", &["-o", "epsg", &src]).trim()
    );
    // ESRI ASCII grid (as CNIG ships DTMs) → COG, CRS from the .prj.
    let asc = gdal_make(
        dir.path(),
        "dtm.asc",
        &data_str("raster/rio-cogeo/image_nodata.tif"),
        &["-of", "AAIGrid"],
    );
    let out2 = dir.path().join("dtm.tif").to_string_lossy().into_owned();
    let (ok, _, err) = cog(&["translate", &asc, &out2, "--compression", "ZSTD"]);
    assert!(ok, "{err}");
    assert!(cog_validate(&out2).is_empty());
    assert_eq!(
        gdal_envi(&out2, 1, None, None).0,
        gdal_envi(&asc, 1, None, None).0
    );
    let j = gdalinfo_json(&out2);
    assert_eq!(j["bands"][0]["noDataValue"].as_f64(), Some(-9999.0));
    assert_eq!(j["metadata"]["IMAGE_STRUCTURE"]["COMPRESSION"], "ZSTD");
}

#[test]
fn task_json_runs_the_translate_stage() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t/out.tif").to_string_lossy().into_owned();
    let task = serde_json::json!({
        "id": "t1",
        "stage": "cog",
        "params": {
            "input": data_str("raster/georust-gdal/dem-hills.tiff"),
            "output": out,
            "options": {"blocksize": 128}
        }
    });
    let tf = dir.path().join("task.json");
    std::fs::write(&tf, task.to_string()).unwrap();
    let (ok, _, err) = cog(&["task", tf.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(cog_validate(&out).is_empty());
    let status: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("t/status/t1.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(status["state"], "ok", "{status}");
    assert_eq!(
        gdal_envi(&out, 1, None, None).0,
        gdal_envi(
            &data_str("raster/georust-gdal/dem-hills.tiff"),
            1,
            None,
            None
        )
        .0
    );
    // Unknown parameters are refused.
    let bad = serde_json::json!({"id": "t2", "stage": "cog", "params": {"input": "a", "output": "b", "x": 1}});
    std::fs::write(&tf, bad.to_string()).unwrap();
    let (ok, _, _) = cog(&["task", tf.to_str().unwrap()]);
    assert!(!ok);
}
