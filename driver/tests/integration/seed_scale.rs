//! The seed's task counts through the real control plane (issue 14.6): 516 LAZ sheets
//! partitioned from a bucket on the loopback S3 server, 968 NDVI window tasks over 8 MGRS
//! tiles found through a STAC API on loopback, and a 36-tile water run — each through the
//! `geobutton` binary with the local executor and with the Lambda executor against the
//! runtime emulator (the real stage binaries as its instances), each killed (SIGKILL)
//! mid-run and run again: the second run does only what the first left, and the products of
//! the two executors are the same bytes.
//!
//! Data from `driver::workloads` (small files: what these exercise is planning, dispatch,
//! statuses and resume at the seed's counts, not the stages' speed).
//!
//! The water run has the seed's 36 tiles. The lidar and NDVI runs have the seed's counts
//! (516 sheets; 8 tiles × 121 windows) with `GEOBUTTON_SEED_SCALE=full`, and 48 sheets and
//! 2 tiles × 121 windows otherwise: at the seed's counts they take ~10 minutes against the
//! loopback S3 server (whose ~20 ms a request, at ~11–22 requests a task, bounds them), more
//! than CI's budget; `cargo bench -p driver --bench driver_bench -- seed` measures the full counts with release binaries.

use crate::common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{ChildGuard, lambda};
use cloud::{Store, testing};
use driver::report::Report;
use driver::workloads;

const BIN: &str = env!("CARGO_BIN_EXE_geobutton");

/// Whether to run the seed's full counts (`GEOBUTTON_SEED_SCALE=full`).
fn full_scale() -> bool {
    std::env::var("GEOBUTTON_SEED_SCALE").is_ok_and(|v| v == "full")
}

/// Where a run goes: locally, or to the emulator at the port with `--concurrency`.
#[derive(Clone, Copy)]
enum Via {
    Local,
    Lambda(u16),
}

fn command(args: &[String], out: &str, via: Via) -> Command {
    let mut cmd = Command::new(BIN);
    common::s3_env(&mut cmd)
        .args(args)
        .args(["--output", out, "-q"]);
    match via {
        Via::Local => cmd.args(["--concurrency", "2"]),
        Via::Lambda(port) => cmd
            .args([
                "--executor",
                "lambda",
                "--memory",
                "1024",
                "--concurrency",
                "4",
            ])
            .args(["--timeout", "120", "--lambda-endpoint"])
            .arg(format!("http://127.0.0.1:{port}")),
    };
    cmd
}

/// The status objects under `out` of the tasks of `step` (ids holding `id_part`).
fn statuses(store: &Store, out: &str, id_part: &str) -> Vec<(String, String)> {
    store
        .list(&format!("{out}/"))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| {
            let (_, name) = o.uri.rsplit_once("/status/")?;
            let id = name.strip_suffix(".json")?;
            id.contains(id_part)
                .then(|| (id.to_string(), o.uri.clone()))
        })
        .collect()
}

/// The ids of those tasks whose status is `ok`.
fn finished(store: &Store, out: &str, id_part: &str) -> BTreeSet<String> {
    statuses(store, out, id_part)
        .into_iter()
        .filter_map(|(id, uri)| {
            let s: serde_json::Value = store.get_json(&uri).ok()?;
            (s["state"] == "ok").then_some(id)
        })
        .collect()
}

/// Runs `args` into `out`, kills the run (SIGKILL) once `at` tasks of `step` (ids holding
/// `id_part`) have finished,
/// runs it again to the end and checks the resume: every task finished before the kill is
/// skipped, the others ran, the run is `ok` with `tasks` tasks in `step`. Returns the report.
#[allow(clippy::too_many_arguments)]
fn killed_and_resumed(
    store: &Store,
    args: &[String],
    out: &str,
    via: Via,
    step: &str,
    id_part: &str,
    tasks: usize,
    at: usize,
) -> Report {
    let mut child = ChildGuard(
        command(args, out, via)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let clock = Instant::now();
    let deadline = clock + Duration::from_secs(600);
    loop {
        let n = statuses(store, out, id_part).len();
        if n >= at {
            break;
        }
        assert!(Instant::now() < deadline, "{out}: {n} statuses in 600 s");
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "{out}: the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // Invocations in flight at the kill may still finish: let them, then take stock.
    std::thread::sleep(Duration::from_secs(2));
    let before = finished(store, out, id_part);
    assert!(
        !before.is_empty() && before.len() < tasks,
        "{out}: {} of {tasks} finished at the kill",
        before.len()
    );

    let killed = clock.elapsed().as_secs_f64();
    let o = command(args, out, via).output().unwrap();
    assert!(
        o.status.success(),
        "{out}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!(
        "{out}: killed after {killed:.1} s with {} of {tasks} done; resumed in {:.1} s",
        before.len(),
        clock.elapsed().as_secs_f64() - killed
    );
    let report: Report = store.get_json(&format!("{out}/report.json")).unwrap();
    assert_eq!(report.state, "ok");
    let st = report.steps.iter().find(|s| s.step == step).unwrap();
    assert_eq!((st.tasks, st.ok, st.failed), (tasks, tasks, 0), "{out}");
    for t in report.tasks.iter().filter(|t| t.step == step) {
        if before.contains(&t.id) {
            assert!(t.skipped && t.attempts == 0, "{out}: {} ran again", t.id);
        } else {
            assert!(!t.skipped && t.attempts >= 1, "{out}: {} did not run", t.id);
        }
    }
    assert_eq!(st.skipped, before.len(), "{out}");
    report
}

/// The bytes of every object under `a` equal those under `b`, file for file (names relative
/// to each), for the names `keep` accepts.
fn same_products(store: &Store, a: &str, b: &str, keep: impl Fn(&str) -> bool) -> usize {
    let names = |root: &str| -> BTreeSet<String> {
        store
            .list(&format!("{root}/"))
            .unwrap()
            .into_iter()
            .filter_map(|o| o.uri.strip_prefix(&format!("{root}/")).map(str::to_string))
            .filter(|n| keep(n))
            .collect()
    };
    let (na, nb) = (names(a), names(b));
    assert_eq!(na, nb, "{a} and {b} hold other products");
    for n in &na {
        let (x, y) = (
            store.get(&format!("{a}/{n}")).unwrap(),
            store.get(&format!("{b}/{n}")).unwrap(),
        );
        assert!(x == y, "{n} differs between {a} and {b}");
    }
    na.len()
}

fn start_lambda(functions: &[(&str, &str, usize)]) -> (Vec<ChildGuard>, u16) {
    let names: Vec<&str> = functions.iter().map(|f| f.0).collect();
    let (emulator, port) = lambda::start_emulator(&names);
    let mut guards = vec![emulator];
    for (function, bin, n) in functions {
        let bin = common::stage_binaries(&[bin]).remove(0);
        for _ in 0..*n {
            guards.push(lambda::instance(&bin, port, function));
        }
    }
    (guards, port)
}

#[test]
fn lidar_sheets_from_s3_partitioned_local_and_on_lambda() {
    common::aws_test_env();
    let store = testing::s3_store();
    let bucket = testing::unique_bucket(&store, "seed-lidar").unwrap();
    // 12 × 43 = 516 adjacent sheets of 60 m, 0.5 points/m² (1,800 points each); 6 × 8.
    let (cols, rows) = if full_scale() { (12, 43) } else { (6, 8) };
    let sheets = cols * rows;
    let cat = workloads::lidar_catalog(
        &store,
        &format!("s3://{bucket}/pnoa"),
        cols,
        rows,
        60.0,
        0.5,
        true,
    )
    .unwrap();
    assert_eq!(cat.inputs.len(), sheets);
    if full_scale() {
        assert_eq!(sheets, workloads::SEED_LIDAR_FILES);
    }
    let args: Vec<String> = ["run", "lidar", "--partition-only", "--buffer", "10"]
        .iter()
        .map(|s| s.to_string())
        .chain([
            "--input".to_string(),
            format!("s3://{bucket}/pnoa/**/*.laz"),
        ])
        .collect();

    let local = format!("s3://{bucket}/local");
    let r = killed_and_resumed(
        &store,
        &args,
        &local,
        Via::Local,
        "partition",
        "partition-",
        sheets,
        sheets / 8,
    );
    // Every point in exactly one tile's core.
    let points = r.results.as_ref().unwrap().summary["points"]
        .as_u64()
        .unwrap();
    assert_eq!(points, cat.points);
    let mut cores = 0;
    for t in store.list(&format!("{local}/partitions/")).unwrap() {
        if t.uri.ends_with("/partitions.json") {
            let m: lidar_partitioner::Manifest = store.get_json(&t.uri).unwrap();
            cores += m.tiles.iter().map(|t| t.core_points).sum::<u64>();
            // Interior sheets take their neighbours' points in their buffers.
        }
    }
    assert_eq!(cores, cat.points);

    let (_lambda, port) =
        start_lambda(&[("geobutton-lidar-partitioner-1024", "lidar-partitioner", 3)]);
    let on_lambda = format!("s3://{bucket}/lambda");
    killed_and_resumed(
        &store,
        &args,
        &on_lambda,
        Via::Lambda(port),
        "partition",
        "partition-",
        sheets,
        sheets / 8,
    );
    let n = same_products(
        &store,
        &format!("{local}/partitions"),
        &format!("{on_lambda}/partitions"),
        |n| n.ends_with(".laz"),
    );
    assert_eq!(n, sheets);
}

#[test]
fn ndvi_windows_over_mgrs_tiles_local_and_on_lambda() {
    common::aws_test_env();
    let store = testing::s3_store();
    let bucket = testing::unique_bucket(&store, "seed-ndvi").unwrap();
    let tiles = workloads::mgrs_tiles(if full_scale() {
        workloads::SEED_NDVI_TILES
    } else {
        2
    });
    let windows = tiles.len() * workloads::SEED_WINDOWS_PER_TILE;
    // 11 × 11 windows of 32 px over 352 px tiles.
    let cat = workloads::s2_catalog(&store, &format!("s3://{bucket}/s2"), &tiles, 352, 32).unwrap();
    let (api, _) = workloads::serve_stac_api(100, |_| cat.items.clone()).unwrap();
    let args: Vec<String> = [
        "run",
        "ndvi",
        "--stac",
        &api,
        "--mgrs",
        &tiles.join(","),
        "--before",
        "2021-05-01/2021-05-31",
        "--after",
        "2021-08-01/2021-08-31",
        "--max-cloud",
        "20",
        "--window",
        "32",
        "--no-mask-scl",
        "--no-quicklook",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    let local = format!("s3://{bucket}/local");
    let r = killed_and_resumed(
        &store,
        &args,
        &local,
        Via::Local,
        "windows",
        "-window-",
        windows,
        windows / 8,
    );
    let merge = r.steps.iter().find(|s| s.step == "merge").unwrap();
    assert_eq!(merge.tasks, tiles.len());

    let (_lambda, port) = start_lambda(&[("geobutton-ndvi-1024", "ndvi", 3)]);
    let on_lambda = format!("s3://{bucket}/lambda");
    killed_and_resumed(
        &store,
        &args,
        &on_lambda,
        Via::Lambda(port),
        "windows",
        "-window-",
        windows,
        windows / 8,
    );
    // Each tile's merged products (`<tile>/ndvi_*.tif`).
    let n = same_products(&store, &local, &on_lambda, |n| {
        n.split('/').count() == 2 && n.contains("/ndvi_") && n.ends_with(".tif")
    });
    assert_eq!(n, 3 * tiles.len());
}

#[test]
fn water_36_tiles_local_and_on_lambda() {
    common::aws_test_env();
    let store = testing::s3_store();
    let bucket = testing::unique_bucket(&store, "seed-water").unwrap();
    let cat =
        workloads::water_catalog(&store, &format!("s3://{bucket}/in"), 6, 6, 40, 100.0).unwrap();
    assert_eq!(cat.dtms.len(), workloads::SEED_WATER_TILES);
    let args: Vec<String> = [
        "run",
        "water",
        "--stations",
        &cat.stations,
        "--plots",
        &cat.plots,
        "--date",
        &cat.date,
        "--windows",
        "1",
        "--input",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(cat.dtms.iter().cloned())
    .collect();

    let local = format!("s3://{bucket}/local");
    let r = killed_and_resumed(&store, &args, &local, Via::Local, "tiles", "tile-", 36, 6);
    assert!(r.steps.iter().any(|s| s.step == "mosaic" && s.ok >= 1));

    let (_lambda, port) = start_lambda(&[
        ("geobutton-water-1024", "water", 3),
        ("geobutton-terrain-1024", "terrain", 1),
    ]);
    let on_lambda = format!("s3://{bucket}/lambda");
    killed_and_resumed(
        &store,
        &args,
        &on_lambda,
        Via::Lambda(port),
        "tiles",
        "tile-",
        36,
        6,
    );
    let n = same_products(&store, &local, &on_lambda, |n| {
        !n.contains('/') && n.ends_with(".tif")
    });
    assert!(n >= 2, "{n} mosaics");
}
