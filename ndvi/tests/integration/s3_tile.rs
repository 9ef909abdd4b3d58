//! `ndvi tile` against the loopback S3 server: the 29RKH bands under the real `sentinel-cogs`
//! key layout (a 2020 scene, processing baseline 02.14, and a changed copy dated 2022 encoded
//! as baseline 04.00 DNs with its STAC item), found by tile + date, run as window tasks and
//! merged; the merged COGs must equal the local `ndvi diff` result and the numpy reference.

use crate::common::*;
use bytes::Bytes;
use cloud::Store;

const ROOT: &str = "s3://sentinel-cogs/sentinel-s2-l2a-cogs";
const BEFORE_ID: &str = "S2A_29RKH_20200219_0_L2A";
const AFTER_ID: &str = "S2B_29RKH_20220321_0_L2A";

fn upload(store: &Store, uri: &str, file: &str) {
    store
        .put(uri, Bytes::from(std::fs::read(file).unwrap()))
        .unwrap();
}

/// The fixture's STAC item rewritten for the changed 2022 scene (baseline 04.00, offset not
/// removed, assets at the new keys).
fn after_item() -> Vec<u8> {
    let text = std::fs::read_to_string(item())
        .unwrap()
        .replace(
            "2020/2/S2A_29RKH_20200219_0_L2A",
            &format!("2022/3/{AFTER_ID}"),
        )
        .replace("2020/2/19/0", "2022/3/21/0")
        .replace(BEFORE_ID, AFTER_ID);
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let p = &mut v["properties"];
    p["datetime"] = "2022-03-21T11:34:25.405000Z".into();
    p["platform"] = "sentinel-2b".into();
    p["s2:processing_baseline"] = "04.00".into();
    p["earthsearch:boa_offset_applied"] = false.into();
    for (_, a) in v["assets"].as_object_mut().unwrap() {
        if let Some(b) = a.get_mut("raster:bands").and_then(|b| b.get_mut(0))
            && b.get("scale").is_some_and(|s| s.as_f64() == Some(0.0001))
        {
            b["offset"] = (-0.1).into();
        }
    }
    serde_json::to_vec(&v).unwrap()
}

/// A store that signs its requests to `sentinel-cogs` too (the bucket owner, who uploads).
fn owner_store() -> Store {
    Store::new(cloud::StoreOptions {
        anonymous_buckets: Vec::new(),
        ..cloud::testing::s3_options()
    })
}

/// Creates `sentinel-cogs` on the loopback server and makes it readable anonymously like the
/// real open-data bucket (a public-read bucket policy; the S3 API for it is not in `cloud`).
fn public_sentinel_cogs() -> Store {
    let store = owner_store();
    // Other tests may create this bucket too: creating it again is fine.
    cloud::testing::create_bucket(&store, "sentinel-cogs").unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import json, sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="testing",
                  aws_secret_access_key="testing", region_name="us-east-1")
b = "sentinel-cogs"
s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
    "Resource": [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"]}]}))
"#,
        )
        .arg(cloud::testing::s3_endpoint())
        .output()
        .expect("python3 with boto3 (installed with moto[server])");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    store
}

#[test]
fn tile_over_loopback_s3_equals_local_diff() {
    let dir = tempdir();
    let store = public_sentinel_cogs();
    let out_bucket = cloud::testing::unique_bucket(&store, "ndvi-tile").unwrap();

    let before = format!("{ROOT}/29/R/KH/2020/2/{BEFORE_ID}");
    upload(&store, &format!("{before}/B04.tif"), &b04());
    upload(&store, &format!("{before}/B08.tif"), &b08());
    upload(&store, &format!("{before}/SCL.tif"), &scl());
    upload(&store, &format!("{before}/{BEFORE_ID}.json"), &item());
    let (after_red, after_nir) = make_after_scene(dir.path());
    let after = format!("{ROOT}/29/R/KH/2022/3/{AFTER_ID}");
    upload(&store, &format!("{after}/B04.tif"), &after_red);
    upload(&store, &format!("{after}/B08.tif"), &after_nir);
    upload(&store, &format!("{after}/SCL.tif"), &scl());
    store
        .put(
            &format!("{after}/{AFTER_ID}.json"),
            Bytes::from(after_item()),
        )
        .unwrap();

    let out = format!("s3://{out_bucket}/29RKH");
    let stdout = run_ok(s3_env(&mut ndvi_bin()).args([
        "tile",
        "--mgrs",
        "29RKH",
        "--before",
        "2020-02-19",
        "--after",
        "2022-03-21",
        "-o",
        &out,
        "--window",
        "512",
        "--mask-scl",
    ]));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["window_tasks"], 9, "{report}");
    assert_eq!(report["skipped"], 0);
    assert_eq!(report["before"]["id"], BEFORE_ID);
    assert_eq!(report["after"]["id"], AFTER_ID);
    assert_eq!(report["before"]["red"], format!("{before}/B04.tif"));
    // The 2022 scene's DNs carry the baseline 04.00 offset, read from its STAC item.
    assert_eq!(report["after"]["processing_baseline"], "04.00");
    let off = report["after"]["radiometry"]["red"]["offset"]
        .as_f64()
        .unwrap();
    assert!((off + 0.1).abs() < 1e-12, "{off}");

    // Every window task and the merge wrote a status.
    let statuses = store.list(&format!("{out}/status/")).unwrap();
    assert_eq!(statuses.len(), 10, "{statuses:?}");
    let windows = store.list(&format!("{out}/windows/")).unwrap();
    assert_eq!(windows.len(), 27);

    // The same computation locally.
    let local = dir.path().join("local");
    std::fs::create_dir(&local).unwrap();
    let l = |n: &str| path_str(&local.join(n));
    run_ok(ndvi_bin().args([
        "diff",
        "--before-red",
        &b04(),
        "--before-nir",
        &b08(),
        "--before-scl",
        &scl(),
        "--after-red",
        &after_red,
        "--after-nir",
        &after_nir,
        "--after-scl",
        &scl(),
        "--after-offset-dn",
        "-1000",
        "--mask-scl",
        "-o",
        &l("ndvi_diff.tif"),
        "--ndvi-before",
        &l("ndvi_before.tif"),
        "--ndvi-after",
        &l("ndvi_after.tif"),
    ]));
    let local_store = Store::default();
    for name in ["ndvi_before.tif", "ndvi_after.tif", "ndvi_diff.tif"] {
        let remote: cog::Raster<f32> = cog::read_band(&store, &format!("{out}/{name}"), 1).unwrap();
        let mine: cog::Raster<f32> = cog::read_band(&local_store, &l(name), 1).unwrap();
        assert_same_pixels(
            name,
            remote.data.as_slice().unwrap(),
            mine.data.as_slice().unwrap(),
        );
        assert_eq!(remote.transform, mine.transform, "{name}");
        assert_eq!(remote.crs.epsg, Some(32629), "{name}");
        assert!(remote.nodata.unwrap().is_nan());
    }
    // And both equal numpy.
    let rb = dir.path().join("rb.f32");
    let ra = dir.path().join("ra.f32");
    reference_ndvi(&b04(), &b08(), 0.0, Some(&scl()), &rb);
    reference_ndvi(&after_red, &after_nir, -1000.0, Some(&scl()), &ra);
    let rd: Vec<f32> = read_f32(&ra)
        .iter()
        .zip(read_f32(&rb))
        .map(|(a, b)| a - b)
        .collect();
    let remote: cog::Raster<f32> =
        cog::read_band(&store, &format!("{out}/ndvi_diff.tif"), 1).unwrap();
    assert_same_pixels(
        "merged difference vs numpy",
        remote.data.as_slice().unwrap(),
        &rd,
    );
    let stats = &report["merge"]["stats_diff"];
    assert_eq!(
        stats["valid"].as_u64().unwrap(),
        rd.iter().filter(|v| !v.is_nan()).count() as u64
    );

    // The merged COG is a valid COG with the inputs' georeferencing.
    let diff_local = dir.path().join("merged.tif");
    std::fs::write(
        &diff_local,
        store.get(&format!("{out}/ndvi_diff.tif")).unwrap(),
    )
    .unwrap();
    assert_valid_cog(&path_str(&diff_local));
    let g = georef(&path_str(&diff_local));
    let input = georef(&b04());
    for k in ["width", "height", "transform", "crs"] {
        assert_eq!(g[k], input[k], "{k}");
    }
    let png = store.get(&format!("{out}/ndvi_diff.png")).unwrap();
    let img = image::load_from_memory(&png).unwrap();
    assert!(img.width() > 1098 / 2);

    // A second run resumes: every window task is skipped.
    let stdout = run_ok(s3_env(&mut ndvi_bin()).args([
        "tile",
        "--mgrs",
        "29RKH",
        "--before",
        BEFORE_ID,
        "--after",
        "2022-03-21",
        "-o",
        &out,
        "--window",
        "512",
        "--mask-scl",
    ]));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["skipped"], 9, "{report}");
}

#[test]
fn missing_scene_is_a_clear_error() {
    public_sentinel_cogs();
    let e = run_err(s3_env(&mut ndvi_bin()).args([
        "tile",
        "--mgrs",
        "29RKH",
        "--before",
        "1999-01-01",
        "--after",
        "1999-01-02",
        "-o",
        "/nonexistent/out",
    ]));
    assert!(
        e.contains("no Sentinel-2 L2A scene of tile 29RKH on 1999-01-01")
            && e.contains("sentinel-s2-l2a-cogs/29/R/KH/1999/1"),
        "{e}"
    );
}
