//! NDVI on the real Sentinel-2 L2A bands of tile 29RKH (2020-02-19, 100 m fixture) against a
//! rasterio/numpy reference computed here, through the library and the `ndvi` binary.

use crate::common;

use crate::common::*;
use cloud::Store;
use cog::Window;
use ndvi::scene::{AssetLocation, SceneRef};
use ndvi::tile::{TileRequest, check_coverage, plan_tile};

fn stat(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64().unwrap()
}

#[test]
fn ndvi_equals_numpy_reference_and_provenance() {
    let dir = tempdir();
    let reference = dir.path().join("ref.f32");
    let ref_stats = reference_ndvi(&b04(), &b08(), 0.0, None, &reference);
    // PROVENANCE.md: min -0.02949, max 0.18599, mean 0.06624806, std 0.01092335, all valid.
    assert_eq!(ref_stats["valid"], 1_205_604);
    assert!((stat(&ref_stats, "mean") - 0.06624806).abs() < 5e-9);

    let store = Store::default();
    let red: cog::Raster<u16> = cog::read_band(&store, &b04(), 1).unwrap();
    let nir: cog::Raster<u16> = cog::read_band(&store, &b08(), 1).unwrap();
    let v = ndvi::ndvi(&red, &nir).unwrap();
    assert_same_pixels(
        "library NDVI",
        v.data.as_slice().unwrap(),
        &read_f32(&reference),
    );
    let s = ndvi::stats(&v);
    assert_eq!(s.valid, 1_205_604);
    for (ours, key) in [
        (s.min, "min"),
        (s.max, "max"),
        (s.mean, "mean"),
        (s.std, "std"),
    ] {
        let (a, b) = (ours.unwrap(), stat(&ref_stats, key));
        assert!(
            (a - b).abs() <= 1e-12 * b.abs().max(1.0),
            "{key}: {a} vs numpy {b}"
        );
    }
    assert!((s.mean.unwrap() - 0.06624806).abs() < 5e-9);
    assert!((s.std.unwrap() - 0.01092335).abs() < 5e-9);
    assert!((s.min.unwrap() + 0.02949).abs() < 5e-6 && (s.max.unwrap() - 0.18599).abs() < 5e-6);
    // Georeferencing carried over.
    assert_eq!(v.transform, red.transform);
    assert_eq!(v.crs.epsg, Some(32629));
}

#[test]
fn compute_cli_writes_a_georeferenced_cog_equal_to_numpy() {
    let dir = tempdir();
    let out = path_str(&dir.path().join("ndvi.tif"));
    let png = path_str(&dir.path().join("ndvi.png"));
    // Bands from the STAC item, found next to it (the item's hrefs point at AWS).
    let stdout = run_ok(ndvi_bin().args([
        "compute",
        "--stac",
        &item(),
        "--local-assets",
        "-o",
        &out,
        "--png",
        &png,
        "--window",
        "512",
    ]));
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["stats"]["valid"], 1_205_604);

    let reference = dir.path().join("ref.f32");
    reference_ndvi(&b04(), &b08(), 0.0, None, &reference);
    let dump = dir.path().join("ours.f32");
    let ours = rasterio_dump(&out, &dump);
    assert_same_pixels(
        "ndvi compute (read by rasterio)",
        &read_f32(&dump),
        &read_f32(&reference),
    );
    let input = georef(&b04());
    for k in ["width", "height", "transform", "crs"] {
        assert_eq!(ours[k], input[k], "{k}");
    }
    assert_eq!(ours["dtype"], "float32");
    assert_eq!(ours["nodata"], "nan");
    assert_valid_cog(&out);
    let img = image::open(&png).unwrap();
    assert!(img.width() > 1098 / 2 && img.height() >= 1098 / 2);
}

#[test]
fn scl_mask_equals_numpy_nearest_neighbour() {
    let dir = tempdir();
    let reference = dir.path().join("ref.f32");
    let ref_stats = reference_ndvi(&b04(), &b08(), 0.0, Some(&scl()), &reference);
    let out = path_str(&dir.path().join("masked.tif"));
    run_ok(ndvi_bin().args([
        "compute",
        "--red",
        &b04(),
        "--nir",
        &b08(),
        "--scl",
        &scl(),
        "--mask-scl",
        "-o",
        &out,
        "--window",
        "256",
    ]));
    let dump = dir.path().join("ours.f32");
    rasterio_dump(&out, &dump);
    assert_same_pixels("SCL-masked NDVI", &read_f32(&dump), &read_f32(&reference));
    // The scene is 4.05 % cloud: some but not most pixels go.
    let valid = ref_stats["valid"].as_u64().unwrap();
    assert!(valid < 1_205_604 && valid > 1_000_000, "{valid}");
}

#[test]
fn diff_cli_equals_numpy_with_baseline_04_offset() {
    let dir = tempdir();
    let (after_red, after_nir) = make_after_scene(dir.path());
    let out = path_str(&dir.path().join("diff.tif"));
    let nb = path_str(&dir.path().join("before.tif"));
    let na = path_str(&dir.path().join("after.tif"));
    let png = path_str(&dir.path().join("diff.png"));
    run_ok(ndvi_bin().args([
        "diff",
        "--before-red",
        &b04(),
        "--before-nir",
        &b08(),
        "--after-red",
        &after_red,
        "--after-nir",
        &after_nir,
        "--after-offset-dn",
        "-1000",
        "-o",
        &out,
        "--png",
        &png,
        "--ndvi-before",
        &nb,
        "--ndvi-after",
        &na,
    ]));
    let rb = dir.path().join("rb.f32");
    let ra = dir.path().join("ra.f32");
    reference_ndvi(&b04(), &b08(), 0.0, None, &rb);
    reference_ndvi(&after_red, &after_nir, -1000.0, None, &ra);
    let (rb, ra) = (read_f32(&rb), read_f32(&ra));
    let rd: Vec<f32> = ra.iter().zip(&rb).map(|(a, b)| a - b).collect();
    for (tif, reference, what) in [
        (&nb, &rb, "before"),
        (&na, &ra, "after"),
        (&out, &rd, "diff"),
    ] {
        let dump = dir.path().join(format!("{what}.f32"));
        rasterio_dump(tif, &dump);
        assert_same_pixels(what, &read_f32(&dump), reference);
    }
    // The change is where it was put: NDVI up inside the block, slightly down outside.
    let at = |r: usize, c: usize| rd[r * 1098 + c];
    assert!(at(400, 500) > 0.1, "{}", at(400, 500));
    assert!(
        at(900, 900) < 0.0 && at(900, 900) > -0.05,
        "{}",
        at(900, 900)
    );
    // Without the offset the after NDVI would be wrong: make sure it mattered.
    let wrong = dir.path().join("wrong.f32");
    reference_ndvi(&after_red, &after_nir, 0.0, None, &wrong);
    assert_ne!(read_f32(&wrong)[0].to_bits(), ra[0].to_bits());
    assert_valid_cog(&out);
    assert!(image::open(&png).is_ok());
}

#[test]
fn window_plan_covers_every_pixel_exactly_once() {
    let store = Store::default();
    let item = SceneRef::StacItem(item());
    for (size, expect_windows, last) in [
        (256u64, 9usize, 74u64),
        (512, 9, 74),
        (1000, 4, 74),
        (4096, 1, 1098),
    ] {
        let request = TileRequest {
            tile: Some("29RKH".parse().unwrap()),
            before: item.clone(),
            after: item.clone(),
            root: ndvi::scene::SENTINEL_COGS_ROOT.to_string(),
            out: "unused".into(),
            window: size,
            scl_mask: vec![3, 8, 9, 10],
            before_offset_dn: None,
            after_offset_dn: None,
            assets: AssetLocation::NextToItem,
            blocksize: 512,
            level: None,
            quicklook: false,
        };
        let plan = plan_tile(&store, &request).unwrap();
        let windows: Vec<Window> = plan.windows.iter().map(|t| t.window).collect();
        assert_eq!(windows.len(), expect_windows, "window {size}");
        // Independent count of every pixel.
        let mut count = vec![0u8; 1098 * 1098];
        for w in &windows {
            for r in w.row_off..w.row_off + w.height {
                for c in w.col_off..w.col_off + w.width {
                    count[(r * 1098 + c) as usize] += 1;
                }
            }
        }
        assert!(
            count.iter().all(|&n| n == 1),
            "window {size}: some pixel not covered exactly once"
        );
        check_coverage(&windows, 1098, 1098).unwrap();
        // The last column and row of windows are partial.
        let lastw = windows.last().unwrap();
        assert_eq!((lastw.width, lastw.height), (last, last), "window {size}");
        // Windows start on COG tile (512 px) boundaries (sizes round up to whole tiles).
        assert!(
            windows
                .iter()
                .all(|w| w.col_off % 512 == 0 && w.row_off % 512 == 0)
        );
        assert_eq!(plan.merge.windows, windows);
        assert_eq!(plan.grid.width, 1098);
    }
}

#[test]
fn mismatched_grids_are_clear_errors() {
    let dir = tempdir();
    let shifted = path_str(&dir.path().join("B08_shifted.tif"));
    let other_crs = path_str(&dir.path().join("B08_32630.tif"));
    python(
        r#"
a, prof = read(sys.argv[1])
prof.update(driver="GTiff", tiled=True, blockxsize=512, blockysize=512, compress="deflate")
t = prof["transform"]
with rasterio.open(sys.argv[2], "w", **dict(prof, transform=rasterio.Affine(t.a, t.b, t.c + 100, t.d, t.e, t.f))) as d:
    d.write(a, 1)
with rasterio.open(sys.argv[3], "w", **dict(prof, crs="EPSG:32630")) as d:
    d.write(a, 1)
"#,
        &[&b08(), &shifted, &other_crs],
    );
    let out = path_str(&dir.path().join("x.tif"));
    // Bands of one date: size, origin, CRS.
    let e = run_err(ndvi_bin().args(["compute", "--red", &b04(), "--nir", &scl(), "-o", &out]));
    assert!(
        e.contains("not on the same pixel grid") && e.contains("size 1098x1098 vs 549x549"),
        "{e}"
    );
    assert!(e.contains("SCL.tif"), "{e}");
    let e = run_err(ndvi_bin().args(["compute", "--red", &b04(), "--nir", &shifted, "-o", &out]));
    assert!(
        e.contains("origin (199980, 2800020) vs (200080, 2800020)"),
        "{e}"
    );
    let e = run_err(ndvi_bin().args(["compute", "--red", &b04(), "--nir", &other_crs, "-o", &out]));
    assert!(e.contains("EPSG:32629 vs EPSG:32630"), "{e}");
    // Between dates.
    let e = run_err(ndvi_bin().args([
        "diff",
        "--before-red",
        &b04(),
        "--before-nir",
        &b08(),
        "--after-red",
        &shifted,
        "--after-nir",
        &shifted,
        "-o",
        &out,
    ]));
    assert!(
        e.contains("before (") && e.contains("after (") && e.contains("origin"),
        "{e}"
    );
    // SCL off the integer-factor grid.
    let e = run_err(ndvi_bin().args([
        "compute",
        "--red",
        &b04(),
        "--nir",
        &b08(),
        "--scl",
        &shifted,
        "--mask-scl",
        "-o",
        &out,
    ]));
    assert!(
        e.contains("SCL") && e.contains("cannot be resampled"),
        "{e}"
    );
    assert!(
        !std::path::Path::new(&out).exists(),
        "no output after an error"
    );
}

#[test]
fn jpeg2000_inputs_are_refused_clearly() {
    let dir = tempdir();
    let jp2 = path_str(&dir.path().join("T29RKH_20200219T112111_B04_10m.jp2"));
    std::fs::write(&jp2, b"\0\0\0\x0cjP  \r\n\x87\n").unwrap();
    let e = run_err(ndvi_bin().args(["compute", "--red", &jp2, "--nir", &b08(), "-o", "x.tif"]));
    assert!(
        e.contains("JPEG 2000") && e.contains("gdal") && e.contains(&jp2),
        "{e}"
    );
}

#[test]
fn cli_errors_read_cleanly() {
    // A scene without bands or an item: the message names what to give, with no dangling
    // ": " where a date label would go.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.tif");
    let e = common::run_err(common::ndvi_bin().args(["compute", "--out", out.to_str().unwrap()]));
    assert!(
        e.contains("ndvi: error: give the red and NIR bands (--red and --nir)"),
        "{e}"
    );
    let e = common::run_err(common::ndvi_bin().args(["diff", "--out", out.to_str().unwrap()]));
    assert!(e.contains("the before scene: give the red"), "{e}");
    assert!(!out.exists());
}
