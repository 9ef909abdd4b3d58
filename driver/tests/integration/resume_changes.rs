//! Resumed runs notice change (issue 13 A): a task reruns when its parameters, its
//! algorithm version or an input changed, downstream tasks rerun when their inputs did, a run
//! with fewer tasks removes what the dropped ones wrote, and `--dry-run` plans without
//! writing. Water runs over synthetic DTM sheets (fast) through the real SIAM stations.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::common::data;
use cloud::{ProgressMode, Store};
use driver::exec::local::LocalExecutor;
use driver::pipeline::water::WaterPipeline;
use driver::run::{RunConfig, RunSummary, plan_pipeline, run_pipeline};

const BIN: &str = env!("CARGO_BIN_EXE_geobutton");

fn config(out: &str) -> RunConfig {
    RunConfig {
        progress: ProgressMode::Silent,
        figures: None,
        ..RunConfig::new(out)
    }
}

fn local() -> LocalExecutor {
    LocalExecutor {
        concurrency: 2,
        ..Default::default()
    }
}

/// Three adjacent 100 m sheets, 60×40 pixels each, west to east.
fn sheets(d: &str) -> Vec<String> {
    std::fs::create_dir_all(format!("{d}/in")).unwrap();
    (0..3)
        .map(|i| {
            let p = format!("{d}/in/sheet{i}.asc");
            std::fs::write(
                &p,
                common::synthetic_dtm(640_000.0 + 6_000.0 * i as f64, 4_200_000.0, 100.0, 60, 40),
            )
            .unwrap();
            p
        })
        .collect()
}

fn water(dtms: &[String], date: &str, out: &str) -> WaterPipeline {
    let template: water::Params = serde_json::from_value(serde_json::json!({
        "dtm": "", "stations": data("water/siam_data.csv"), "date": date,
        "out": "", "png": false, "options": { "windows": 1 }
    }))
    .unwrap();
    WaterPipeline::new(dtms.to_vec(), template, out)
}

fn run(dtms: &[String], date: &str, out: &str) -> RunSummary {
    let mut p = water(dtms, date, out);
    run_pipeline(&mut p, &local(), &Store::from_env(), &config(out)).unwrap()
}

/// (skipped, ran) task ids of `step` in a summary.
fn split(s: &RunSummary, step: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut skipped, mut ran) = (BTreeSet::new(), BTreeSet::new());
    for t in s.report.tasks.iter().filter(|t| t.step == step) {
        if t.skipped {
            skipped.insert(t.id.clone());
        } else {
            ran.insert(t.id.clone());
        }
    }
    (skipped, ran)
}

fn et0(out: &str) -> cog::Raster<f32> {
    cog::read_band(&Store::from_env(), &format!("{out}/et0.tif"), 1).unwrap()
}

fn files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            e.file_type()
                .unwrap()
                .is_file()
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

#[test]
fn changed_parameters_rerun_every_task_that_depends_on_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let dtms = sheets(d);
    let out = format!("{d}/run");
    let first = run(&dtms[..2], "2022-05-15", &out);
    let may = et0(&out);
    // Unchanged: everything is skipped.
    let again = run(&dtms[..2], "2022-05-15", &out);
    assert_eq!(split(&again, "tiles").1.len(), 0);
    assert_eq!(split(&again, "mosaic").1.len(), 0);
    assert_eq!(first.report.steps.len(), 2);
    // Another date: the tiles rerun (parameters changed), and the mosaic reruns because its
    // inputs were rewritten; the products are July's, not May's.
    let july = run(&dtms[..2], "2022-07-15", &out);
    assert_eq!(split(&july, "tiles").1.len(), 2, "{:?}", july.report.tasks);
    assert_eq!(split(&july, "mosaic").1.len(), 1);
    let tiles = &july.report.steps[0];
    assert_eq!(tiles.rerun.get("parameters changed"), Some(&2), "{tiles:?}");
    assert_eq!(july.report.steps[1].rerun.get("input changed"), Some(&1));
    let text = july.report.summary_text();
    assert!(text.contains("2 rerun: parameters changed"), "{text}");
    assert!(!text.contains("-0.00"), "{text}");
    let jul = et0(&out);
    assert_eq!(jul.data.dim(), may.data.dim());
    assert!(
        jul.data
            .iter()
            .zip(may.data.iter())
            .any(|(j, m)| j.to_bits() != m.to_bits()),
        "the July mosaic is still May's"
    );
    // And it is what a fresh July run gives.
    let fresh = format!("{d}/fresh");
    run(&dtms[..2], "2022-07-15", &fresh);
    common::assert_same_raster(
        &Store::from_env(),
        &format!("{out}/et0.tif"),
        &format!("{fresh}/et0.tif"),
    );
    // The record of the run says July.
    let record = driver::run::read_record(&Store::from_env(), &out).unwrap();
    assert_eq!(record.params["template"]["date"], "2022-07-15");
}

#[test]
fn an_added_input_reruns_the_mosaic_and_a_dropped_one_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let dtms = sheets(d);
    let out = format!("{d}/run");
    run(&dtms[..2], "2022-05-15", &out);
    assert_eq!(et0(&out).data.dim(), (40, 120));
    // A third sheet: its tile runs, the two others are skipped, the mosaic reruns and covers
    // all three.
    let s = run(&dtms, "2022-05-15", &out);
    let (skipped, ran) = split(&s, "tiles");
    assert_eq!(ran, BTreeSet::from(["tile-sheet2".to_string()]));
    assert_eq!(skipped.len(), 2);
    assert_eq!(split(&s, "mosaic").1.len(), 1);
    assert_eq!(s.report.steps[1].rerun.get("parameters changed"), Some(&1));
    assert_eq!(et0(&out).data.dim(), (40, 180));
    let tiles = Path::new(&out).join("tiles");
    assert!(files(&tiles).contains("sheet2_et0.tif"));
    // Back to two sheets: sheet2's outputs and status go; the mosaic is two sheets wide.
    let s = run(&dtms[..2], "2022-05-15", &out);
    assert_eq!(split(&s, "tiles").1.len(), 0);
    assert_eq!(et0(&out).data.dim(), (40, 120));
    let left = files(&tiles);
    assert!(
        left.contains("sheet0_et0.tif") && left.contains("sheet1_et0.tif"),
        "{left:?}"
    );
    assert!(!left.iter().any(|f| f.starts_with("sheet2")), "{left:?}");
    assert!(!tiles.join("status/tile-sheet2.json").exists());
}

#[test]
fn a_rewritten_input_reruns_its_task() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let dtms = sheets(d);
    let out = format!("{d}/run");
    run(&dtms[..1], "2022-05-15", &out);
    std::thread::sleep(std::time::Duration::from_millis(20));
    // The same sheet raised by 500 m.
    std::fs::write(
        &dtms[0],
        common::synthetic_dtm(640_000.0, 4_200_000.0, 100.0, 60, 40)
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i < 6 {
                    l.to_string()
                } else {
                    l.split_whitespace()
                        .map(|v| format!("{}", v.parse::<f64>().unwrap() + 500.0))
                        .collect::<Vec<_>>()
                        .join(" ")
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let s = run(&dtms[..1], "2022-05-15", &out);
    let t = s.report.tasks.iter().find(|t| t.step == "tiles").unwrap();
    assert!(!t.skipped);
    assert_eq!(s.report.steps[0].rerun.get("input changed"), Some(&1));
}

#[test]
fn dry_run_plans_every_decision_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let dtms = sheets(d);
    let out = format!("{d}/run");
    let store = Store::from_env();
    // Nothing yet: every tile would run; the mosaic is planned after them.
    let plan = plan_pipeline(
        &mut water(&dtms[..2], "2022-05-15", &out),
        &local(),
        &store,
        &config(&out),
    )
    .unwrap();
    assert_eq!(plan.steps.len(), 1);
    assert_eq!(plan.steps[0].to_run, 2);
    assert!(plan.not_planned.is_some());
    assert!(plan.lambda_usd > 0.0);
    assert!(!Path::new(&out).exists(), "a dry run wrote {out}");
    run(&dtms[..2], "2022-05-15", &out);
    let listing = |p: &str| {
        let mut v: Vec<(String, std::time::SystemTime)> = walk(Path::new(p));
        v.sort();
        v
    };
    let before = listing(&out);
    // Finished: both steps are planned, nothing to run.
    let plan = plan_pipeline(
        &mut water(&dtms[..2], "2022-05-15", &out),
        &local(),
        &store,
        &config(&out),
    )
    .unwrap();
    assert_eq!(plan.steps.len(), 2);
    assert!(plan.steps.iter().all(|s| s.to_run == 0));
    assert_eq!(plan.task_seconds, 0.0);
    // Through the CLI with a new date: the tiles would rerun, with the reason.
    let o = Command::new(BIN)
        .args(["run", "water", "--dry-run", "--output", &out])
        .args([
            "--stations",
            &data("water/siam_data.csv"),
            "--date",
            "2022-08-01",
        ])
        .args(["--windows", "1", "--input"])
        .args(&dtms[..2])
        .output()
        .unwrap();
    let text = common::succeeded(&o);
    assert!(text.contains("2 to run"), "{text}");
    assert!(text.contains("2 run: parameters changed"), "{text}");
    assert!(text.contains("nothing written"), "{text}");
    assert_eq!(listing(&out), before, "the dry run changed {out}");
}

/// `geobutton run water` on 2022-05-15, one window per tile, with one `--input` spec.
fn water_cli(out: &str, input: &str) -> std::process::Output {
    Command::new(BIN)
        .args(["run", "water", "--output", out])
        .args(["--stations", &data("water/siam_data.csv")])
        .args(["--date", "2022-05-15", "--windows", "1", "--input", input])
        .output()
        .unwrap()
}

fn walk(dir: &Path) -> Vec<(String, std::time::SystemTime)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push((
                p.display().to_string(),
                e.metadata().unwrap().modified().unwrap(),
            ));
        }
    }
    out
}

#[test]
fn invalid_settings_of_a_later_step_stop_the_run_before_any_task() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let dtms = sheets(d);
    let out = format!("{d}/run");
    // A NaN IDW power (once written to task JSON as null): refused at plan time.
    let mut p = water(&dtms[..2], "2022-05-15", &out);
    p.template.options.idw_power = f64::NAN;
    let e = run_pipeline(&mut p, &local(), &Store::from_env(), &config(&out)).unwrap_err();
    assert!(
        e.to_string().contains("idw_power must be a finite number"),
        "{e}"
    );
    let mut p = water(&dtms[..2], "2022-05-15", &out);
    p.template.options.horizon_dirs = 1_000_000;
    let e = run_pipeline(&mut p, &local(), &Store::from_env(), &config(&out)).unwrap_err();
    assert!(
        e.to_string()
            .contains("horizon_dirs must be between 0 and 360"),
        "{e}"
    );
    assert!(!Path::new(&out).exists());
    // Through the CLI: the lidar mosaic's block size and a duplicated product are checked
    // before the partitioning runs.
    for (flag, value, says) in [
        ("--products", "dem,dem", "asked for twice"),
        ("--resolution", "NaN", "resolution"),
    ] {
        let o = Command::new(BIN)
            .args(["run", "lidar", "--output", &out, flag, value, "--input"])
            .arg(data("lidar/laspy/simple.las"))
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{e}");
        assert!(e.contains(says), "{e}");
    }
    assert!(!Path::new(&out).exists());
    // A missing input: named at plan time, nothing submitted.
    let o = water_cli(&out, "/nonexistent/sheet.asc");
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("/nonexistent/sheet.asc") && e.contains("no such file"),
        "{e}"
    );
}

/// `--input` takes folders, globs and `@lists` (issue 14, item 1): each expands to the same
/// tiles, so a second run with another spelling skips everything, and the run's own outputs
/// (here inside the input folder) are never taken as inputs.
#[test]
fn folders_globs_and_lists_expand_to_the_same_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let dtms = sheets(d);
    let out = format!("{d}/in/run");
    let list = format!("{d}/tiles.txt");
    std::fs::write(
        &list,
        format!(
            "# two sheets and a glob\n{}\n\n{d}/in/sheet[12].asc\n",
            dtms[0]
        ),
    )
    .unwrap();
    let cli = |input: &str| {
        let o = water_cli(&out, input);
        let (text, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        assert!(o.status.success(), "{input}: {text}{err}");
        (text, err)
    };
    let (text, err) = cli(&format!("{d}/in"));
    assert!(err.contains("3 inputs, "), "{err}");
    assert!(
        text.contains("3 tasks      3 ok    0 failed      0 skipped"),
        "{text}"
    );
    // Everything under the folder, outputs included, but the run's own are left out.
    for spec in [format!("{d}/in/**"), format!("@{list}")] {
        let (text, err) = cli(&spec);
        assert!(err.contains("3 inputs, "), "{spec}: {err}");
        assert!(
            text.contains("3 tasks      3 ok    0 failed      3 skipped"),
            "{spec}: {text}"
        );
        assert!(
            text.contains("1 tasks      1 ok    0 failed      1 skipped"),
            "{spec}: {text}"
        );
    }
    // A folder with no DTM, a glob matching nothing: errors naming them, before any work.
    std::fs::create_dir_all(format!("{d}/empty")).unwrap();
    for spec in [format!("{d}/empty"), format!("{d}/in/*.tif")] {
        let o = water_cli(&format!("{d}/other"), &spec);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{spec}: {err}");
        assert!(
            err.contains("no input matches") && err.contains(&spec),
            "{err}"
        );
        assert!(!Path::new(&format!("{d}/other")).exists());
    }
}

/// `--mosaic vrt|cog|none` (issue 14, item 4): a VRT over the tile COGs that GDAL reads as
/// the COG mosaic's pixels; switching format replaces the product, and `none` leaves only
/// the tiles.
#[test]
fn mosaics_as_cog_vrt_or_none_replace_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    sheets(d);
    let out = format!("{d}/run");
    let run = |mosaic: &str| {
        let o = Command::new(BIN)
            .args(["run", "water", "--output", &out, "--mosaic", mosaic])
            .args(["--stations", &data("water/siam_data.csv")])
            .args(["--date", "2022-05-15", "--windows", "1", "--input"])
            .arg(format!("{d}/in"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let (tif, vrt) = (format!("{out}/et0.tif"), format!("{out}/et0.vrt"));
    let text = run("cog");
    assert!(text.contains(&tif), "{text}");
    let cog_mosaic = et0(&out);
    let text = run("vrt");
    assert!(text.contains(&vrt), "{text}");
    assert!(
        !Path::new(&tif).exists(),
        "the COG mosaic was left beside the VRT"
    );
    let from_vrt = format!("{d}/from_vrt.tif");
    let o = Command::new("gdal_translate")
        .args(["-q", &vrt, &from_vrt])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let g: cog::Raster<f32> = cog::read_band(&Store::from_env(), &from_vrt, 1).unwrap();
    assert_eq!(g.transform, cog_mosaic.transform);
    assert!(g.data == cog_mosaic.data);
    // The run's STAC collection, as pystac reads it: the VRT mosaic and the tiles as items
    // in EPSG:25830 with footprints near Murcia, every asset href resolving to a file.
    let stac = pystac_items(&format!("{out}/stac/collection.json"));
    assert!(stac.contains("item et0 25830 "), "{stac}");
    assert!(stac.contains("item tiles-sheet2_et0 25830 "), "{stac}");
    assert!(
        stac.contains("asset plots") || !stac.contains("missing"),
        "{stac}"
    );
    let et0_bbox: Vec<f64> = stac
        .lines()
        .find(|l| l.starts_with("item et0 "))
        .unwrap()
        .split(' ')
        .skip(3)
        .map(|v| v.parse().unwrap())
        .collect();
    // Sheets from x 640 000 to 658 000, y 4 196 000 to 4 200 000 (EPSG:25830): the box of
    // their corners by `gdaltransform -s_srs EPSG:25830 -t_srs EPSG:4326` (GDAL 3.6.2).
    let want = [
        -1.40761271406175,
        37.8978172866689,
        -1.20208741579347,
        37.9368026796851,
    ];
    for (g, w) in et0_bbox.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{et0_bbox:?}");
    }
    let text = run("none");
    assert!(!text.contains("mosaic "), "{text}");
    assert!(!Path::new(&vrt).exists() && !Path::new(&tif).exists());
    assert!(Path::new(&format!("{out}/tiles/sheet2_et0.tif")).exists());
    let stac = pystac_items(&format!("{out}/stac/collection.json"));
    assert!(!stac.contains("item et0 "), "{stac}");
    assert!(!Path::new(&format!("{out}/stac/et0/et0.json")).exists());
}

/// `item <id> <proj:epsg> <w> <s> <e> <n>` per item of the STAC collection at `path`, as
/// pystac reads it, after checking that every asset's href resolves to an existing file.
fn pystac_items(path: &str) -> String {
    let code = r#"
import os, sys, pystac
from pystac.extensions.projection import ProjectionExtension
c = pystac.Collection.from_file(sys.argv[1])
assert c.extent.spatial.bboxes[0][0] < c.extent.spatial.bboxes[0][2]
for k, a in c.assets.items():
    assert os.path.exists(a.get_absolute_href()), a.get_absolute_href()
for it in c.get_items():
    assert it.get_collection().id == c.id
    a = it.assets['data']
    assert os.path.exists(a.get_absolute_href()), a.get_absolute_href()
    assert 'data' in a.roles
    print('item', it.id, ProjectionExtension.ext(it).epsg, *it.bbox)
"#;
    let o = Command::new("python3")
        .args(["-c", code, path])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A dry run for functions in one region names the buckets of other regions its tasks would
/// read, with the bytes and who pays the transfer; the regions come from S3's answers (a
/// proxy in front of the loopback S3 server holds S3's region rule).
#[test]
fn dry_run_names_buckets_read_across_regions() {
    use driver::exec::lambda::{LambdaConfig, LambdaExecutor};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let dtms = sheets(d);
    let direct = cloud::testing::s3_store();
    let far = cloud::testing::unique_bucket(&direct, "dtm-far").unwrap();
    let open = cloud::testing::unique_bucket(&direct, "dtm-open").unwrap();
    cloud::testing::make_public(&direct, &open).unwrap();
    let mut inputs = Vec::new();
    let mut far_bytes = 0;
    for (i, p) in dtms.iter().enumerate() {
        let bytes = std::fs::read(p).unwrap();
        let uri = if i < 2 {
            far_bytes += bytes.len() as u64;
            format!("s3://{far}/dtm/sheet{i}.asc")
        } else {
            format!("s3://{open}/dtm/sheet{i}.asc")
        };
        direct.put(&uri, bytes.into()).unwrap();
        inputs.push(uri);
    }
    let upstream: u16 = cloud::testing::s3_endpoint()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (endpoint, _) = cloud::testing::regional_s3(
        upstream,
        vec![
            (far.clone(), "us-west-2".to_string()),
            (open.clone(), "us-east-1".to_string()),
        ],
    )
    .unwrap();
    // The driver as a user in eu-south-2 has it; `open` is read unsigned (a public bucket).
    let store = Store::new(cloud::StoreOptions {
        endpoint: Some(endpoint),
        region: Some("eu-south-2".to_string()),
        anonymous_buckets: vec![open.clone()],
        ..cloud::testing::s3_options()
    });
    let out = format!("s3://{far}/run");
    // A dry run for Lambda functions in `region` (the API is never called).
    let plan_in = |region: &str| {
        let lambda = LambdaExecutor::new(LambdaConfig {
            region: Some(region.to_string()),
            endpoint: Some("http://127.0.0.1:9".to_string()),
            ..LambdaConfig::default()
        });
        let mut p = water(&inputs, "2022-05-15", &out);
        plan_pipeline(&mut p, &lambda, &store, &config(&out)).unwrap()
    };
    let plan = plan_in("eu-south-2");
    assert_eq!(plan.region.as_deref(), Some("eu-south-2"));
    assert_eq!(plan.steps[0].to_run, 3);
    let [f, o] = &plan.cross_region[..] else {
        panic!("{:?}", plan.cross_region)
    };
    let f = if f.bucket == far { f } else { o };
    let o = if o.bucket == open {
        o
    } else {
        &plan.cross_region[0]
    };
    assert_eq!(
        (f.region.as_str(), f.tasks, f.bytes, f.billed),
        ("us-west-2", 2, far_bytes, true)
    );
    assert!((f.usd - far_bytes as f64 / 1e9 * 0.02).abs() < 1e-12);
    assert_eq!(
        (o.region.as_str(), o.tasks, o.billed, o.usd),
        ("us-east-1", 1, false, 0.0)
    );
    let text = plan.summary_text();
    assert!(
        text.contains(&format!(
            "2 task(s) in eu-south-2 read s3://{far} in us-west-2"
        )),
        "{text}"
    );
    assert!(text.contains("no transfer charge"), "{text}");
    // Functions in us-west-2 read `far` in region: only `open` is elsewhere.
    let plan = plan_in("us-west-2");
    let buckets: Vec<&str> = plan
        .cross_region
        .iter()
        .map(|c| c.bucket.as_str())
        .collect();
    assert_eq!(buckets, [open.as_str()]);
}
