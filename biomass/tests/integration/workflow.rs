//! The workflow over files: outputs, the serverless chunk + merge tasks, and bad inputs.

use crate::common::{SJER_CHM, SJER_TRAINING};
use biomass::stage::{BiomassStage, Params};
use biomass::workflow::{self, RunParams, plan, run_chunk, run_merge};
use biomass::{SegmentParams, segment};
use cloud::{Classify, Ctx, ErrorKind, Stage, Store};
use cog::{CogWriteOptions, Crs, GeoTransform, Raster};
use ndarray::Array2;

fn ctx() -> Ctx {
    Ctx::new(Store::from_env())
}

fn params(out: &str) -> RunParams {
    RunParams {
        chm: SJER_CHM.into(),
        training: Some(SJER_TRAINING.into()),
        model: None,
        out: out.into(),
        segment: SegmentParams::default(),
        forest: Default::default(),
        chunks: None,
        halo: workflow::DEFAULT_HALO,
        maps: true,
    }
}

#[test]
fn sjer_run_writes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let ctx = ctx();
    let s = workflow::run(&params(out), &ctx).unwrap();
    assert_eq!(s.tops, 1093);
    assert_eq!(s.trees, 1093);
    let total = s.total_biomass_kg.unwrap();
    for name in [
        "smoothed_chm.tif",
        "treetops.csv",
        "crowns.tif",
        "trees.csv",
        "biomass.tif",
        "model.json",
        "summary.json",
        "chm.png",
        "crowns.png",
        "biomass.png",
    ] {
        assert!(dir.path().join(name).exists(), "{name} missing");
    }
    // Crowns COG round-trips to the in-memory labels; the biomass raster sums to the total.
    let (chm, _) = workflow::load_chm(&ctx.store, SJER_CHM).unwrap();
    let seg = segment(chm.data.view(), &SegmentParams::default()).unwrap();
    let crowns: Raster<u32> = cog::read_band(&ctx.store, &format!("{out}/crowns.tif"), 1).unwrap();
    assert_eq!(crowns.data, seg.labels);
    assert_eq!(crowns.crs.epsg, Some(32611));
    assert_eq!(crowns.transform, chm.transform);
    let bio: Raster<f32> = cog::read_band(&ctx.store, &format!("{out}/biomass.tif"), 1).unwrap();
    let sum: f64 = bio.data.iter().map(|&v| v as f64).sum();
    assert!((sum - total).abs() / total < 1e-5, "{sum} vs {total}");
    let sm: Raster<f32> =
        cog::read_band(&ctx.store, &format!("{out}/smoothed_chm.tif"), 1).unwrap();
    assert_eq!(sm.data, seg.smoothed);
    // CSVs: header + one row per tree; the first top lies inside the tile, in UTM 11N metres.
    let tops = std::fs::read_to_string(dir.path().join("treetops.csv")).unwrap();
    assert_eq!(tops.lines().count(), 1094);
    assert!(tops.starts_with("id,x,y,height,"));
    let first: Vec<f64> = tops
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert!((256000.0..257000.0).contains(&first[1]) && (4106000.0..4107000.0).contains(&first[2]));
    let trees = std::fs::read_to_string(dir.path().join("trees.csv")).unwrap();
    for prj in ["trees.prj", "treetops.prj"] {
        let wkt = std::fs::read_to_string(dir.path().join(prj)).unwrap();
        assert!(wkt.contains("UTM zone 11N"), "{prj}: {wkt}");
    }
    assert_eq!(trees.lines().count(), 1094);
    let csv_total: f64 = trees
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!((csv_total - total).abs() < 1e-6 * total);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["trees"], 1093);
    // The saved model predicts the same total.
    let mut p2 = params(dir.path().join("again").to_str().unwrap());
    p2.training = None;
    p2.model = Some(format!("{out}/model.json"));
    p2.maps = false;
    let s2 = workflow::run(&p2, &ctx).unwrap();
    assert_eq!(s2.total_biomass_kg, Some(total));
}

#[test]
fn serverless_chunks_and_merge_equal_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx();
    let whole_dir = dir.path().join("whole");
    let mut p = params(whole_dir.to_str().unwrap());
    p.maps = false;
    let whole = workflow::run(&p, &ctx).unwrap();
    let chunked_dir = dir.path().join("chunked");
    let mut pc = params(chunked_dir.to_str().unwrap());
    pc.maps = false;
    let (chunks, merge) = plan(&ctx.store, &pc, 3).unwrap();
    assert_eq!(chunks.len(), 9);
    for c in &chunks {
        // Through the stage, as a Lambda/Batch task would run it.
        BiomassStage::run(&Params::Chunk(c.clone()), &ctx).unwrap();
    }
    let _ = run_chunk;
    let merged = run_merge(&merge, &ctx).unwrap();
    assert_eq!(merged.tops, whole.tops);
    assert_eq!(merged.total_biomass_kg, whole.total_biomass_kg);
    for f in [
        "crowns.tif",
        "treetops.csv",
        "trees.csv",
        "biomass.tif",
        "smoothed_chm.tif",
    ] {
        assert_eq!(
            std::fs::read(whole_dir.join(f)).unwrap(),
            std::fs::read(chunked_dir.join(f)).unwrap(),
            "{f} differs"
        );
    }
}

fn write_chm(path: &std::path::Path, data: Array2<f32>, nodata: Option<f32>) {
    let r = Raster {
        data,
        transform: GeoTransform([500000.0, 1.0, 0.0, 4100000.0, 0.0, -1.0]),
        crs: Crs::epsg(32611),
        nodata,
    };
    cog::write_cog(
        &Store::from_env(),
        path.to_str().unwrap(),
        &r,
        &CogWriteOptions::default(),
    )
    .unwrap();
}

#[test]
fn all_zero_chm_gives_documented_empty_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let chm = dir.path().join("zero.tif");
    write_chm(&chm, Array2::zeros((64, 64)), None);
    let mut p = params(dir.path().join("out").to_str().unwrap());
    p.chm = chm.to_str().unwrap().into();
    let s = workflow::run(&p, &ctx()).unwrap();
    assert_eq!((s.tops, s.trees), (0, 0));
    assert_eq!(s.total_biomass_kg, Some(0.0));
    let tops = std::fs::read_to_string(dir.path().join("out/treetops.csv")).unwrap();
    assert_eq!(tops.lines().count(), 1);
}

#[test]
fn nodata_and_nan_pixels_are_ground_and_all_nodata_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let chm = dir.path().join("nd.tif");
    let mut a = Array2::from_elem((40, 40), -9999.0f32);
    a[[20, 20]] = 10.0;
    a[[20, 21]] = f32::NAN;
    for r in 15..26 {
        for c in 15..26 {
            if (r, c) != (20, 21) {
                a[[r, c]] = 10.0 - ((r as f32 - 20.0).abs() + (c as f32 - 20.0).abs()) * 0.5;
            }
        }
    }
    write_chm(&chm, a, Some(-9999.0));
    let mut p = params(dir.path().join("out").to_str().unwrap());
    p.chm = chm.to_str().unwrap().into();
    let s = workflow::run(&p, &ctx()).unwrap();
    assert_eq!(s.sanitised.nodata_pixels, 40 * 40 - 121 + 1);
    assert_eq!(s.tops, 1);

    let bad = dir.path().join("allnd.tif");
    write_chm(&bad, Array2::from_elem((8, 8), -9999.0f32), Some(-9999.0));
    p.chm = bad.to_str().unwrap().into();
    p.out = dir.path().join("out2").to_str().unwrap().into();
    let e = workflow::run(&p, &ctx()).unwrap_err();
    assert!(
        e.to_string().contains("allnd.tif") && e.to_string().contains("nodata"),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(!dir.path().join("out2/summary.json").exists());
}

#[test]
fn bad_training_csv_is_a_clear_error_with_no_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    for (content, want) in [
        ("1,2,3\n4,5,6\n", "line 1: 3 columns, expected 12"),
        (
            "1,2,3,4,5,6,7,8,9,10,11,12\n1,2,3,4,5,abc,7,8,9,10,11,12\n",
            "line 2, column 6: \"abc\" is not a number",
        ),
    ] {
        std::fs::write(&csv, content).unwrap();
        let mut p = params(dir.path().join("out").to_str().unwrap());
        p.training = Some(csv.to_str().unwrap().into());
        let e = workflow::run(&p, &ctx()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("t.csv") && msg.contains(want), "{msg}");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(!dir.path().join("out").exists(), "no partial outputs");
    }
    // A missing CHM names the file.
    let mut p = params(dir.path().join("out").to_str().unwrap());
    p.chm = dir.path().join("missing.tif").to_str().unwrap().into();
    let e = workflow::run(&p, &ctx()).unwrap_err();
    assert!(e.to_string().contains("missing.tif"), "{e}");
    assert_eq!(e.kind(), ErrorKind::NotFound);
}
