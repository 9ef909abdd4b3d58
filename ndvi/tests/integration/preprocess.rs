//! `ndvi preprocess`: Sentinel-2 products (.SAFE trees holding the 29RKH GeoTIFF bands) →
//! COGs in the `sentinel-cogs` layout with a STAC item, addressable by `ndvi tile`.

use std::path::Path;

use crate::common::*;

const L2A: &str = "S2A_MSIL2A_20200219T112111_N0214_R037_T29RKH_20200219T123947.SAFE";
const L1C: &str = "S2A_MSIL1C_20200219T112111_N0209_R037_T29RKH_20200219T115434.SAFE";

/// A product tree like ESA's, with the fixture bands as GeoTIFF (`ext` tif) or placeholder
/// JPEG 2000 files (`ext` jp2).
fn make_safe(root: &Path, name: &str, ext: &str, metadata: &str) -> String {
    let safe = root.join(name);
    let l2a = name.contains("MSIL2A");
    let granule = safe.join(if l2a {
        "GRANULE/L2A_T29RKH_A024344_20200219T113105/IMG_DATA"
    } else {
        "GRANULE/L1C_T29RKH_A024344_20200219T113105/IMG_DATA"
    });
    let bands: Vec<(String, String)> = if l2a {
        vec![
            (format!("R10m/T29RKH_20200219T112111_B04_10m.{ext}"), b04()),
            (format!("R10m/T29RKH_20200219T112111_B08_10m.{ext}"), b08()),
            (format!("R20m/T29RKH_20200219T112111_SCL_20m.{ext}"), scl()),
        ]
    } else {
        vec![
            (format!("T29RKH_20200219T112111_B04.{ext}"), b04()),
            (format!("T29RKH_20200219T112111_B08.{ext}"), b08()),
        ]
    };
    for (rel, src) in bands {
        let dst = granule.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        if ext == "jp2" {
            std::fs::write(&dst, b"\0\0\0\x0cjP  \r\n\x87\n").unwrap();
        } else {
            std::fs::copy(src, &dst).unwrap();
        }
    }
    let mtd = if l2a {
        "MTD_MSIL2A.xml"
    } else {
        "MTD_MSIL1C.xml"
    };
    std::fs::write(safe.join(mtd), metadata).unwrap();
    path_str(&safe)
}

fn mtd(baseline: &str, offset: Option<i32>) -> String {
    let offsets = offset.map_or(String::new(), |o| {
        (0..13)
            .map(|b| format!("<BOA_ADD_OFFSET band_id=\"{b}\">{o}</BOA_ADD_OFFSET>"))
            .collect()
    });
    format!(
        "<?xml version=\"1.0\"?><n1:Level-2A_User_Product><n1:General_Info><Product_Info>\
         <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE></Product_Info>\
         <Product_Image_Characteristics><QUANTIFICATION_VALUES_LIST>\
         <BOA_QUANTIFICATION_VALUE unit=\"none\">10000</BOA_QUANTIFICATION_VALUE>\
         </QUANTIFICATION_VALUES_LIST><BOA_ADD_OFFSET_VALUES_LIST>{offsets}\
         </BOA_ADD_OFFSET_VALUES_LIST></Product_Image_Characteristics></n1:General_Info>\
         </n1:Level-2A_User_Product>"
    )
}

#[test]
fn l2a_product_to_sentinel_cogs_layout_then_tile() {
    let dir = tempdir();
    let safe = make_safe(dir.path(), L2A, "tif", &mtd("02.14", None));
    let out = path_str(&dir.path().join("archive"));
    let stdout = run_ok(ndvi_bin().args(["preprocess", &safe, "-o", &out]));
    let o: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(o["scene_id"], "S2A_29RKH_20200219_0_L2A");
    assert_eq!(o["processing_baseline"], "02.14");
    assert_eq!(o["offset_dn"], 0.0);
    let folder = format!("{out}/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A");
    for f in [
        "B04.tif",
        "B08.tif",
        "SCL.tif",
        "B04_B08.tif",
        "S2A_29RKH_20200219_0_L2A.json",
    ] {
        assert!(Path::new(&format!("{folder}/{f}")).exists(), "{f}");
    }
    // Same pixels and georeferencing as the product's bands; the stack is B04 then B08.
    python(
        r#"
f = sys.argv[1]
for out, src in ((f + "/B04.tif", sys.argv[2]), (f + "/B08.tif", sys.argv[3]), (f + "/SCL.tif", sys.argv[4])):
    a, _ = read(out); b, _ = read(src)
    assert a.dtype == b.dtype and (a == b).all(), out
    assert georef(out)["transform"] == georef(src)["transform"] and georef(out)["crs"] == georef(src)["crs"], out
with rasterio.open(f + "/B04_B08.tif") as s:
    assert s.count == 2 and s.nodata == 0
    assert (s.read(1) == read(sys.argv[2])[0]).all() and (s.read(2) == read(sys.argv[3])[0]).all()
"#,
        &[&folder, &b04(), &b08(), &scl()],
    );
    for f in ["B04.tif", "B04_B08.tif"] {
        assert_valid_cog(&format!("{folder}/{f}"));
    }
    // The archive is addressable by tile and date; NDVI from it equals numpy on the inputs.
    let tile_out = path_str(&dir.path().join("tile"));
    let stdout = run_ok(ndvi_bin().args([
        "tile",
        "--root",
        &out,
        "--mgrs",
        "29RKH",
        "--before",
        "2020-02-19",
        "--after",
        "S2A_29RKH_20200219_0_L2A",
        "-o",
        &tile_out,
        "--window",
        "1024",
        "--mask-scl",
    ]));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["window_tasks"], 4);
    let reference = dir.path().join("ref.f32");
    reference_ndvi(&b04(), &b08(), 0.0, Some(&scl()), &reference);
    let dump = dir.path().join("ours.f32");
    rasterio_dump(&format!("{tile_out}/ndvi_before.tif"), &dump);
    assert_same_pixels(
        "NDVI of the preprocessed scene",
        &read_f32(&dump),
        &read_f32(&reference),
    );
    // Same scene twice: the difference is 0 wherever it is valid.
    rasterio_dump(&format!("{tile_out}/ndvi_diff.tif"), &dump);
    let d = read_f32(&dump);
    assert!(d.iter().all(|v| v.is_nan() || *v == 0.0));
    assert!(d.iter().filter(|v| !v.is_nan()).count() > 1_000_000);
}

/// A preprocessing task's fingerprint covers every file of its product folder: a resumed run
/// skips it while the product is unchanged, and reruns it, naming the file, when a file of
/// the product changes or appears; an empty product folder fails before any work.
#[test]
fn a_changed_product_file_reruns_preprocessing() {
    use cloud::{Ctx, ErrorKind, ProgressMode, Rerun, RunOptions, Store, TaskState};
    let dir = tempdir();
    let safe = make_safe(dir.path(), L2A, "tif", &mtd("02.14", None));
    let out = path_str(&dir.path().join("archive"));
    let ctx = Ctx::new(Store::default()).with_progress(ProgressMode::Silent);
    let task = |product: &str| {
        serde_json::json!({
            "id": "preprocess",
            "stage": "ndvi",
            "params": { "op": "preprocess", "product": product, "out": out },
        })
    };
    let run = |product: &str| {
        cloud::run_task::<ndvi::NdviStage>(task(product), &ctx, &RunOptions::default()).unwrap()
    };
    let first = run(&safe);
    assert_eq!(first.state, TaskState::Ok, "{first:?}");
    let inputs: Vec<String> = first
        .fingerprint
        .as_ref()
        .unwrap()
        .inputs
        .iter()
        .map(|i| i.uri.strip_prefix(&safe).unwrap().to_string())
        .collect();
    // The three bands and the metadata file, in URI order.
    assert_eq!(inputs.len(), 4, "{inputs:?}");
    assert!(inputs.is_sorted(), "{inputs:?}");
    assert!(
        inputs.contains(&"/MTD_MSIL2A.xml".to_string()),
        "{inputs:?}"
    );
    assert!(run(&safe).skipped);
    // The metadata rewritten (processing baseline 04.00, offset -1000): rerun, named.
    let metadata = format!("{safe}/MTD_MSIL2A.xml");
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&metadata, mtd("04.00", Some(-1000))).unwrap();
    let s = run(&safe);
    assert_eq!(s.ran_because, Some(Rerun::InputChanged(metadata)), "{s:?}");
    assert_eq!(s.output.unwrap()["offset_dn"], -1000.0);
    assert!(run(&safe).skipped);
    // A file added to the product: rerun, named.
    let added = format!("{safe}/manifest.safe");
    std::fs::write(&added, "<manifest/>").unwrap();
    assert_eq!(run(&safe).ran_because, Some(Rerun::InputChanged(added)));
    // An empty product folder: not found, before any work.
    let empty = dir.path().join(L2A.replace("T123947", "T999999"));
    std::fs::create_dir(&empty).unwrap();
    let s = run(&path_str(&empty));
    assert_eq!(s.state, TaskState::Error, "{s:?}");
    let error = s.error.unwrap();
    assert_eq!(error.kind, ErrorKind::NotFound);
    assert!(
        error.message.contains("no object in it"),
        "{}",
        error.message
    );
}

#[test]
fn baseline_04_offset_goes_into_the_stac_item() {
    let dir = tempdir();
    let name = "S2B_MSIL2A_20220601T112119_N0400_R037_T29RKH_20220601T140045.SAFE";
    let safe = make_safe(dir.path(), name, "tif", &mtd("04.00", Some(-1000)));
    let out = path_str(&dir.path().join("archive"));
    let o: serde_json::Value =
        serde_json::from_str(&run_ok(ndvi_bin().args(["preprocess", &safe, "-o", &out]))).unwrap();
    assert_eq!(o["scene_id"], "S2B_29RKH_20220601_0_L2A");
    assert_eq!(o["offset_dn"], -1000.0);
    let item =
        ndvi::scene::read_stac_item(&cloud::Store::default(), o["stac_item"].as_str().unwrap())
            .unwrap();
    assert_eq!(item.offset_dn().unwrap(), -1000.0);
    let bands = item.scene_bands(ndvi::scene::AssetLocation::Href).unwrap();
    assert!(
        bands
            .red
            .ends_with("/2022/6/S2B_29RKH_20220601_0_L2A/B04.tif"),
        "{}",
        bands.red
    );
    assert!((bands.radiometry.nir.offset + 0.1).abs() < 1e-12);
}

#[cfg(not(feature = "gdal"))]
#[test]
fn jpeg2000_products_need_the_gdal_feature() {
    let dir = tempdir();
    let safe = make_safe(dir.path(), L2A, "jp2", &mtd("02.14", None));
    let e = run_err(ndvi_bin().args(["preprocess", &safe, "-o", &path_str(&dir.path().join("o"))]));
    assert!(
        e.contains("JPEG 2000") && e.contains("`gdal` feature") && e.contains("B04_10m.jp2"),
        "{e}"
    );
}

#[test]
fn level_1c_without_sen2cor_is_a_clear_error_or_converted_on_request() {
    let dir = tempdir();
    let safe = make_safe(
        dir.path(),
        L1C,
        "tif",
        &mtd("02.09", None).replace("2A_User", "1C_User"),
    );
    let out = path_str(&dir.path().join("o"));
    let e =
        run_err(
            ndvi_bin()
                .env("PATH", "/usr/bin:/bin")
                .args(["preprocess", &safe, "-o", &out]),
        );
    assert!(
        e.contains("Level-1C") && e.contains("L2A_Process") && e.contains("not found on PATH"),
        "{e}"
    );
    let stdout = run_ok(ndvi_bin().env("PATH", "/usr/bin:/bin").args([
        "preprocess",
        &safe,
        "-o",
        &out,
        "--allow-l1c",
    ]));
    let o: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(o["scene_id"], "S2A_29RKH_20200219_0_L1C");
    assert!(o["sen2cor"].as_str().unwrap().starts_with("absent"), "{o}");
    assert!(
        Path::new(&format!(
            "{out}/29/R/KH/2020/2/S2A_29RKH_20200219_0_L1C/B04.tif"
        ))
        .exists()
    );
}

/// A Level-1C product under `root`, and a `PATH` whose stand-in `L2A_Process` checks how it
/// is called (`L2A_Process --output_dir DIR PRODUCT`, PRODUCT a folder on disk holding
/// `MTD_MSIL1C.xml`) and writes the L2A product a real Sen2Cor run would (the 29RKH L2A
/// bands): (product folder, PATH).
fn l1c_with_stand_in_sen2cor(root: &Path) -> (String, String) {
    use std::os::unix::fs::PermissionsExt;
    let safe = make_safe(
        root,
        L1C,
        "tif",
        "<PROCESSING_BASELINE>02.09</PROCESSING_BASELINE>",
    );
    let l2a_src = make_safe(
        &root.join("sen2cor-result"),
        L2A,
        "tif",
        &mtd("02.14", None),
    );
    let bin = root.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let script = bin.join("L2A_Process");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = --output_dir ] || exit 3\n\
             [ -f \"$3/MTD_MSIL1C.xml\" ] || exit 4\n\
             case \"$3\" in */{L1C}) ;; *) exit 5 ;; esac\n\
             cp -r '{l2a_src}' \"$2/\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (safe, format!("{}:/usr/bin:/bin", bin.display()))
}

/// The Sen2Cor wiring (arguments, finding its L2A output) with a stand-in `L2A_Process`.
#[test]
fn level_1c_goes_through_sen2cor_when_it_is_on_path() {
    let dir = tempdir();
    let (safe, path) = l1c_with_stand_in_sen2cor(dir.path());
    let out = path_str(&dir.path().join("o"));
    let stdout = run_ok(
        ndvi_bin()
            .env("PATH", &path)
            .args(["preprocess", &safe, "-o", &out]),
    );
    let o: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(o["scene_id"], "S2A_29RKH_20200219_0_L2A");
    assert_eq!(o["level"], "L2A");
    assert!(
        o["sen2cor"].as_str().unwrap().contains("L2A_Process"),
        "{o}"
    );
    assert!(
        Path::new(&format!(
            "{out}/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A/SCL.tif"
        ))
        .exists()
    );
}

/// A Level-1C product on S3 (where a Batch job finds it): copied to the local disk for
/// Sen2Cor, whose L2A result is converted into an archive on S3.
#[test]
fn level_1c_on_s3_is_copied_for_sen2cor() {
    let dir = tempdir();
    let (safe, path) = l1c_with_stand_in_sen2cor(dir.path());
    let store = cloud::testing::s3_store();
    let bucket = cloud::testing::unique_bucket(&store, "ndvi-l1c").unwrap();
    let product = format!("s3://{bucket}/in/{L1C}");
    let mut stack = vec![std::path::PathBuf::from(&safe)];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(&safe).unwrap().to_str().unwrap().to_string();
            store
                .put(
                    &format!("{product}/{rel}"),
                    bytes::Bytes::from(std::fs::read(&p).unwrap()),
                )
                .unwrap();
            files += 1;
        }
    }
    assert_eq!(files, 3);
    let out = format!("s3://{bucket}/archive");
    let stdout = run_ok(s3_env(&mut ndvi_bin()).env("PATH", &path).args([
        "preprocess",
        &product,
        "-o",
        &out,
    ]));
    let o: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(o["level"], "L2A", "{o}");
    assert!(
        o["sen2cor"].as_str().unwrap().contains("L2A_Process"),
        "{o}"
    );
    let scl_uri = format!("{out}/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A/SCL.tif");
    assert_eq!(o["assets"]["SCL"], scl_uri.as_str());
    let written: cog::Raster<u8> = cog::read_band(&store, &scl_uri, 1).unwrap();
    let source: cog::Raster<u8> = cog::read_band(&cloud::Store::default(), &scl(), 1).unwrap();
    assert_eq!(written.data, source.data);
}

/// With GDAL, a SAFE of real JPEG 2000 bands (lossless re-encodings of the fixture) converts
/// to the same pixels.
#[cfg(feature = "gdal")]
#[test]
fn jpeg2000_products_convert_with_gdal() {
    let dir = tempdir();
    let safe = make_safe(dir.path(), L2A, "tif", &mtd("02.14", None));
    // Re-encode every band as lossless JPEG 2000 and drop the GeoTIFFs.
    let mut stack = vec![std::path::PathBuf::from(&safe)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "tif") {
                let jp2 = p.with_extension("jp2");
                let st = std::process::Command::new("gdal_translate")
                    .args([
                        "-q",
                        "-of",
                        "JP2OpenJPEG",
                        "-co",
                        "REVERSIBLE=YES",
                        "-co",
                        "QUALITY=100",
                    ])
                    .arg(&p)
                    .arg(&jp2)
                    .status()
                    .unwrap();
                assert!(st.success());
                std::fs::remove_file(&p).unwrap();
            }
        }
    }
    let out = path_str(&dir.path().join("archive"));
    run_ok(ndvi_bin().args(["preprocess", &safe, "-o", &out]));
    let folder = format!("{out}/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A");
    python(
        r#"
f = sys.argv[1]
for out, src in ((f + "/B04.tif", sys.argv[2]), (f + "/B08.tif", sys.argv[3]), (f + "/SCL.tif", sys.argv[4])):
    a, _ = read(out); b, _ = read(src)
    assert (a == b).all(), out
"#,
        &[&folder, &b04(), &b08(), &scl()],
    );
}
