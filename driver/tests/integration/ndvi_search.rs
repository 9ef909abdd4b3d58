//! `geobutton run ndvi --mgrs … | --bbox … --before P --after P --max-cloud N`: scenes found by
//! place and time in a STAC API, served on loopback by this test from items made from the
//! fixture's Earth Search v1 item (same bands, other dates and cloud covers). The API filters
//! as Earth Search does (collections, bbox, datetime, the `query` extension on
//! `eo:cloud_cover` and `grid:code`) and pages its answers two items at a time through
//! `next` links with a POST body, as Earth Search does.

use crate::common;

use std::process::Command;
use std::sync::atomic::Ordering;

use driver::workloads::serve_stac_api;

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_geobutton");
const PAGE: usize = 2;

fn fixture(name: &str) -> String {
    common::data(&format!("sentinel/s2_l2a_cogs_29RKH_20200219/{name}"))
}

/// The fixture's bands on the loopback S3 server (an item read over HTTP may not name local
/// files): the bucket they are in.
fn bands_on_s3() -> String {
    let store = cloud::testing::s3_store();
    let bucket = cloud::testing::unique_bucket(&store, "s2-search").unwrap();
    for file in ["B04.tif", "B08.tif", "SCL.tif"] {
        let bytes = std::fs::read(fixture(file)).unwrap();
        store
            .put(&format!("s3://{bucket}/29RKH/{file}"), bytes.into())
            .unwrap();
    }
    bucket
}

/// The fixture item as scene `day` of `tile` with `cloud` % cloud cover, its assets the
/// fixture's bands in `bucket`, its self link on the API at `api`.
fn item(api: &str, bucket: &str, tile: &str, day: &str, cloud: f64) -> Value {
    let mut it: Value =
        serde_json::from_slice(&std::fs::read(fixture("S2A_29RKH_20200219_0_L2A.json")).unwrap())
            .unwrap();
    let id = format!("S2A_{tile}_{}_0_L2A", day.replace('-', ""));
    it["id"] = json!(id);
    let p = &mut it["properties"];
    p["datetime"] = json!(format!("{day}T11:34:25.405000Z"));
    p["eo:cloud_cover"] = json!(cloud);
    p["grid:code"] = json!(format!("MGRS-{tile}"));
    p["mgrs:grid_square"] = json!(&tile[3..]);
    if tile != "29RKH" {
        // A tile to the north: its footprint one degree up.
        let b = it["bbox"].as_array().unwrap().clone();
        it["bbox"] = json!([
            b[0],
            b[1].as_f64().unwrap() + 1.0,
            b[2],
            b[3].as_f64().unwrap() + 1.0
        ]);
    }
    for (key, file) in [("red", "B04.tif"), ("nir", "B08.tif"), ("scl", "SCL.tif")] {
        it["assets"][key]["href"] = json!(format!("s3://{bucket}/29RKH/{file}"));
    }
    it["links"] = json!([{"rel": "self", "type": "application/geo+json",
        "href": format!("{api}/collections/sentinel-2-l2a/items/{id}")}]);
    it
}

fn scenes(api: &str) -> Vec<Value> {
    let bucket = bands_on_s3();
    let item = |tile: &str, day: &str, cloud: f64| item(api, &bucket, tile, day, cloud);
    vec![
        // 29RKH, February: over the limit, cloudier, the least cloudy.
        item("29RKH", "2020-02-04", 30.0),
        item("29RKH", "2020-02-09", 12.0),
        item("29RKH", "2020-02-19", 4.051854),
        // 29RKH, August: the least cloudy is the 18th.
        item("29RKH", "2020-08-03", 50.0),
        item("29RKH", "2020-08-18", 2.0),
        item("29RKH", "2020-08-28", 9.0),
        // A tile to the north with a February scene only.
        item("29RKJ", "2020-02-14", 1.0),
        // Another tile, never asked for.
        item("30STG", "2020-02-14", 0.0),
    ]
}

fn run(api: &str, out: &str, area: &[&str], extra: &[&str]) -> std::process::Output {
    common::s3_env(&mut Command::new(BIN))
        .args(["run", "ndvi", "--output", out, "--stac", api])
        .args(area)
        .args([
            "--before",
            "2020-02-01/2020-02-29",
            "--after",
            "2020-08-01/2020-08-31",
        ])
        .args(["--max-cloud", "20", "--window", "512"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn ndvi_by_place_and_time_takes_the_least_cloudy_scene_of_each_tile() {
    let (api, searches) = serve_stac_api(PAGE, scenes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run").display().to_string();
    let o = run(&api, &out, &["--mgrs", "29RKH,29RKJ"], &["--no-mask-scl"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // February: three items at most 20 % cloudy, on two pages; August: two, on one.
    assert_eq!(searches.load(Ordering::SeqCst), 3);
    let report: Value =
        serde_json::from_slice(&std::fs::read(format!("{out}/report.json")).unwrap()).unwrap();
    let summary = &report["results"]["summary"];
    assert_eq!(
        summary["tiles"],
        json!([{"tile": "29RKH", "before": "S2A_29RKH_20200219_0_L2A", "before_cloud": 4.051854,
                "after": "S2A_29RKH_20200818_0_L2A", "after_cloud": 2.0}])
    );
    assert_eq!(
        summary["left_out"],
        json!(["29RKJ: no scene in the after period"])
    );
    // Window tasks of the tile, named by it; the products under OUT/29RKH/.
    let tasks: Vec<&str> = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(tasks.iter().all(|t| t.starts_with("29RKH-")), "{tasks:?}");
    assert_eq!(
        tasks.len(),
        3 * 3 + 1,
        "1098² px in 512 px windows, and the merge"
    );
    // The same bands both dates: NDVI as the fixture's (PROVENANCE: mean 0.06624806 over
    // all 1,205,604 pixels), a difference of zero.
    let before: cog::Raster<f32> = cog::read_band(
        &cloud::Store::default(),
        &format!("{out}/29RKH/ndvi_before.tif"),
        1,
    )
    .unwrap();
    let values: Vec<f64> = before.data.iter().map(|v| *v as f64).collect();
    assert_eq!(values.len(), 1_205_604);
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    assert!((mean - 0.066_248_06).abs() < 1e-6, "{mean}");
    let diff: cog::Raster<f32> = cog::read_band(
        &cloud::Store::default(),
        &format!("{out}/29RKH/ndvi_diff.tif"),
        1,
    )
    .unwrap();
    assert!(diff.data.iter().all(|v| *v == 0.0));

    // A bbox over both tiles finds the same choice; SCL masking (the default) leaves the
    // cloudy pixels out.
    let out2 = dir.path().join("run2").display().to_string();
    let o = run(&api, &out2, &["--bbox", "-12.5,24,-10.5,26.5"], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let masked: cog::Raster<f32> = cog::read_band(
        &cloud::Store::default(),
        &format!("{out2}/29RKH/ndvi_before.tif"),
        1,
    )
    .unwrap();
    let nan = masked.data.iter().filter(|v| v.is_nan()).count();
    assert!(nan > 0 && nan < 1_205_604 / 10, "{nan} pixels masked");

    // Nothing in both periods under the limit: a clear error, nothing run.
    let out3 = dir.path().join("run3").display().to_string();
    let o = run(&api, &out3, &["--mgrs", "29RKJ"], &[]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("no tile with a scene at most 20 % cloudy in both periods"),
        "{e}"
    );
    assert!(e.contains("29RKJ: no scene in the after period"), "{e}");
    // Bad search settings are refused before any request.
    let before = searches.load(Ordering::SeqCst);
    let o = run(&api, &out3, &["--bbox", "-12.5,26,-10.5,24"], &[]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("south below north"));
    assert_eq!(searches.load(Ordering::SeqCst), before);
}
