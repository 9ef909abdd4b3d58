//! Benchmarks of the driver: `cargo bench -p driver --bench driver_bench -- CASE [ARGS]`
//! (the stage binaries first: `cargo build --release --workspace --bins`). Cases:
//!
//! - `demo [--dir D] [--concurrency N]`: the demo scene's four pipelines with
//!   the local executor; prints, per pipeline, the wall time, the sum of the task durations
//!   (the stage work, timed by the task adapter around `Stage::run`) and the difference
//!   (driver overhead: planning, manifests, resume checks, status objects, report, figures).
//! - `lidar IN.las OUT [--capacity N] [--buffer M] [--concurrency N]`: the same
//!   for the lidar pipeline on one file (e.g. the 16 M-point `/tmp/bench-data/cloud.las`).
//! - `lambda-overhead --tasks N [--instances K]`: per-task overhead of the
//!   Lambda executor against the `cargo lambda watch --only-lambda-apis` emulator with K
//!   instances of the release `water` binary (`target/release/water`): invocation wall time
//!   minus the task's own duration, median and 90th percentile, next to the local executor's.
//! - `seed [--workload lidar|ndvi|water] [--executors local,lambda]
//!   [--concurrency 1,2,4,8,16]`: the seed's task counts (516 LAZ sheets partitioned, 968
//!   NDVI windows over 8 tiles, 36 water tiles; `driver::workloads`) on the loopback S3
//!   server (`source scripts/test-services.sh` first), through the local executor and the
//!   Lambda executor against `cargo lambda watch` with as many instances of the release
//!   stage binaries as the concurrency: wall time, per-task overhead, S3 requests per task,
//!   and the dry run's forecast of the same run (from the first run's task times) beside it.
//! - `seed-forecast [--dir D] [--memory MB] [--s2 BEFORE_RED,BEFORE_NIR,AFTER_RED,AFTER_NIR]`:
//!   the dry run's forecast of the seed's three runs at the seed's sizes. One task of each
//!   at the seed's size is run and timed with the local executor (a 5.2 M-point LAZ sheet,
//!   2 km at 1.3 points/m², about 155 MB as LAS like the seed's 516 files; the 121 windows of
//!   1024 px of two 10980² Sentinel-2 dates, e.g. `gen_data.py --only s2`; one day of a 3550²
//!   MDT05-like tile at 5 m, a 36th of the seed's 452 M cells). Its mean task time then stands
//!   for every task of the seed's plan (516 sheets, 968 windows, 36 tiles × 53 days: the
//!   plans of `seed`, made on local disk, the water one over a season) in
//!   `plan_pipeline`'s forecast on as many functions as tasks (at most 1,000, an account's
//!   default concurrency), at
//!   `--memory` MB (1769: one vCPU). Run it under `taskset -c 0` so that each task is timed
//!   on one vCPU, as on a 1769 MB function.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cloud::{ProgressMode, Store};
use driver::exec::Executor;
use driver::exec::lambda::{LambdaConfig, LambdaExecutor};
use driver::exec::local::LocalExecutor;
use driver::pipeline::Pipeline;
use driver::pipeline::lidar::LidarPipeline;
use driver::pipeline::water::WaterPipeline;
use driver::report::Report;
use driver::run::{RunConfig, run_pipeline};
use testkit::process::ChildGuard;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn print_overhead(name: &str, r: &Report) {
    let tasks: f64 = r.tasks.iter().filter_map(|t| t.duration_s).sum();
    println!(
        "{name:<8} wall {:>8.3} s   Σ task durations {:>8.3} s   tasks {:>4}   wall − Σ tasks {:>7.3} s",
        r.wall_s,
        tasks,
        r.tasks.len(),
        r.wall_s - tasks
    );
}

/// The directory of the workspace's release binaries (`target/release`; a bench runs from
/// its `deps` folder).
fn release_dir() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("the bench's own path has no folder")?;
    Ok(if dir.ends_with("deps") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    })
}

fn main() -> Result<()> {
    // `cargo bench` adds `--bench`.
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let store = Store::from_env();
    match args.get(1).map(String::as_str) {
        Some("demo") => {
            let dir = arg(&args, "--dir", "/tmp/geobutton-demo-bench".to_string());
            let _ = std::fs::remove_dir_all(&dir);
            let exec = LocalExecutor {
                concurrency: arg(&args, "--concurrency", 0usize),
                ..Default::default()
            };
            let clock = Instant::now();
            let demo = driver::demo::run_demo(&store, &dir, &exec, ProgressMode::Silent)?;
            let total = clock.elapsed().as_secs_f64();
            for (name, s) in &demo.runs {
                print_overhead(name, &s.report);
            }
            println!("demo total (scene generation included) {total:.3} s");
        }
        Some("lidar") => {
            let (Some(input), Some(out)) = (args.get(2), args.get(3)) else {
                bail!("driver_bench lidar IN.las OUT [--capacity N] [--buffer M]");
            };
            let _ = std::fs::remove_dir_all(out);
            let mut p = LidarPipeline::new(vec![input.clone()], out);
            p.capacity = Some(arg(&args, "--capacity", 4_000_000u64));
            p.buffer_m = arg(&args, "--buffer", 20.0f64);
            let exec = LocalExecutor {
                concurrency: arg(&args, "--concurrency", 0usize),
                ..Default::default()
            };
            let config = RunConfig {
                progress: ProgressMode::Silent,
                ..RunConfig::new(out)
            };
            let s = run_pipeline(&mut p, &exec, &store, &config)?;
            print_overhead("lidar", &s.report);
            for st in &s.report.steps {
                println!(
                    "  {:<10} {:>4} tasks  wall {:>8.3} s  Σ tasks {:>8.3} s",
                    st.step, st.tasks, st.wall_s, st.task_seconds
                );
            }
        }
        Some("lambda-overhead") => lambda_overhead(&args, &store)?,
        Some("seed") => seed(&args)?,
        Some("seed-forecast") => seed_forecast(&args, &store)?,
        _ => bail!(
            "driver_bench demo | lidar IN OUT | lambda-overhead --tasks N | seed | seed-forecast"
        ),
    }
    Ok(())
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (0.0, 0.0);
    }
    (v[v.len() / 2], v[(v.len() * 9 / 10).min(v.len() - 1)])
}

fn lambda_overhead(args: &[String], store: &Store) -> Result<()> {
    let tasks = arg(args, "--tasks", 40usize);
    let instances = arg(args, "--instances", 2usize);
    // `emulator` checks that the binary is there before anything starts.
    let water = release_dir()?.join("water");
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    // The emulator, with one function of our own name.
    let (_emulator, port) = emulator(
        &[("geobutton-water-2048".to_string(), water.clone())],
        instances,
    )?;
    // Small tiles: the task is short, so the overhead shows.
    let stations = std::env::var("GEOBUTTON_SIAM")
        .unwrap_or_else(|_| "../shared/data/water/siam_data.csv".to_string());
    let st_bytes = std::fs::read(&stations).with_context(|| stations.clone())?;
    let date = chrono::NaiveDate::from_ymd_opt(2022, 5, 15).context("date")?;
    let st = water::stations::parse(
        &stations,
        &st_bytes,
        water::stations::StationFormat::Auto,
        date,
    )?;
    let mut dtms = Vec::new();
    for i in 0..tasks {
        let dtm = water::synth::dtm(
            &st,
            630_000.0 + 2_000.0 * i as f64,
            4_200_000.0,
            50.0,
            40,
            40,
            None,
        );
        let p = d.join(format!("t{i:03}.asc"));
        std::fs::write(&p, water::synth::to_asc(&dtm))?;
        dtms.push(p.display().to_string());
    }
    let template: water::Params = serde_json::from_value(serde_json::json!({
        "dtm": "", "stations": std::fs::canonicalize(&stations)?, "date": "2022-05-15",
        "out": "", "png": false, "options": { "windows": 1 }
    }))?;
    let lambda = LambdaExecutor::new(LambdaConfig {
        concurrency: instances,
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: Some("us-east-1".into()),
        ..LambdaConfig::default()
    });
    let local = LocalExecutor {
        concurrency: instances,
        ..Default::default()
    };
    for (name, exec) in [
        ("lambda", &lambda as &dyn Executor),
        ("local", &local as &dyn Executor),
    ] {
        // The tiles step alone (the water tasks), straight through the executor.
        let out = d.join(name).display().to_string();
        let mut p = WaterPipeline::new(dtms.clone(), template.clone(), &out);
        let step = p.plan_next(store, &[])?.context("no step")?;
        let manifest = driver::plan::manifest_uri(&out, &step.name, None);
        driver::plan::write_manifest(store, &manifest, &step.tasks)?;
        let records = step
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| driver::exec::TaskRecord::new(i, t))
            .collect();
        let job = driver::exec::StepJob {
            step,
            manifest,
            output: out.clone(),
            records,
            force: false,
        };
        let clock = Instant::now();
        let outcome = driver::exec::run_step(
            exec,
            job,
            store,
            std::sync::Arc::new(|_: &driver::exec::TaskRecord| {}),
        )?;
        let wall = clock.elapsed().as_secs_f64();
        if !outcome.all_ok() {
            bail!("{name}: {} tasks failed", outcome.failed().len());
        }
        let overhead: Vec<f64> = outcome
            .records
            .iter()
            .filter_map(|r| {
                let a = r.attempts.last()?;
                let wall = (a.end - a.start).num_microseconds()? as f64 / 1e6;
                Some(wall - r.status.as_ref()?.duration_s)
            })
            .collect();
        let (median, p90) = percentiles(overhead);
        let task: Vec<f64> = outcome
            .records
            .iter()
            .filter_map(|r| r.status.as_ref().map(|s| s.duration_s))
            .collect();
        let (task_median, _) = percentiles(task);
        println!(
            "{name:<7} {tasks} tasks, {instances} at once: wall {wall:.3} s; task median {:.2} ms; per-task overhead median {:.2} ms, p90 {:.2} ms",
            task_median * 1e3,
            median * 1e3,
            p90 * 1e3
        );
    }
    Ok(())
}

/// `cargo lambda watch --only-lambda-apis` on a free port with `instances` instances of each
/// (function name, release binary).
fn emulator(
    functions: &[(String, std::path::PathBuf)],
    instances: usize,
) -> Result<(Vec<ChildGuard>, u16)> {
    for (_, bin) in functions {
        if !bin.is_file() {
            bail!(
                "{} not found: cargo build --release --workspace --bins",
                bin.display()
            );
        }
    }
    let names: Vec<&str> = functions.iter().map(|(f, _)| f.as_str()).collect();
    let (emulator, port) = testkit::lambda::start_emulator(&names)?;
    let mut guards = vec![emulator];
    for (f, bin) in functions {
        for _ in 0..instances {
            let mut cmd = std::process::Command::new(bin);
            // The functions reach the loopback S3 server, as the tests' do.
            cmd.env_remove("GEOBUTTON_MANIFEST")
                .env("AWS_ENDPOINT_URL", cloud::testing::s3_endpoint())
                .env("AWS_REGION", "us-east-1");
            guards.push(ChildGuard(
                testkit::lambda::as_instance(&mut cmd, port, f).spawn()?,
            ));
        }
    }
    Ok((guards, port))
}

/// One of the seed's runs, made fresh into `out`.
fn seed_pipeline(
    workload: &str,
    inputs: &SeedInputs,
    out: &str,
) -> Result<Box<dyn driver::Pipeline>> {
    use driver::pipeline::ndvi::{NdviInput, NdviPipeline, NdviSearch};
    Ok(match (workload, inputs) {
        ("lidar", SeedInputs::Lidar(cat)) => {
            let mut p = LidarPipeline::new(cat.inputs.clone(), out);
            p.partition_only = true;
            p.buffer_m = 10.0;
            Box::new(p)
        }
        ("ndvi", SeedInputs::Ndvi(cat, api)) => {
            let request = ndvi::search::SearchRequest {
                collection: ndvi::search::COLLECTION.to_string(),
                area: ndvi::search::Area::Tiles(
                    cat.tiles
                        .iter()
                        .map(|t| t.parse())
                        .collect::<Result<_, _>>()?,
                ),
                before: "2021-05-01/2021-05-31".parse()?,
                after: "2021-08-01/2021-08-31".parse()?,
                max_cloud: 20.0,
            };
            Box::new(NdviPipeline::new(NdviInput::Search(NdviSearch {
                stac: api.clone(),
                request,
                out: out.to_string(),
                window: 32,
                blocksize: 32,
                quicklook: false,
                mask_scl: false,
            })))
        }
        ("water", SeedInputs::Water(cat)) => {
            let template = water_template(cat, &cat.stations, 1)?;
            Box::new(WaterPipeline::new(cat.dtms.clone(), template, out))
        }
        _ => bail!("unknown workload {workload}"),
    })
}

enum SeedInputs {
    Lidar(driver::workloads::LidarCatalog),
    Ndvi(driver::workloads::S2Catalog, String),
    Water(driver::workloads::WaterCatalog),
}

/// The inputs of the seed's run `workload` under `prefix` (at the seed's task counts, small
/// tasks): 516 LAZ sheets; 8 Sentinel-2 tiles of 121 windows with a loopback STAC API
/// serving their items; 36 water DTM tiles.
fn seed_inputs(store: &Store, workload: &str, prefix: &str) -> Result<SeedInputs> {
    use driver::workloads as w;
    Ok(match workload {
        "lidar" => SeedInputs::Lidar(w::lidar_catalog(store, prefix, 12, 43, 60.0, 0.5, true)?),
        "ndvi" => {
            let tiles = w::mgrs_tiles(w::SEED_NDVI_TILES);
            let cat = w::s2_catalog(store, prefix, &tiles, 352, 32)?;
            let items = cat.items.clone();
            let (api, _) = w::serve_stac_api(100, move |_| items)?;
            SeedInputs::Ndvi(cat, api)
        }
        "water" => SeedInputs::Water(w::water_catalog(store, prefix, 6, 6, 40, 100.0)?),
        other => bail!("unknown workload {other}: lidar, ndvi or water"),
    })
}

fn seed(args: &[String]) -> Result<()> {
    let list = |name: &str, default: &str| -> Vec<String> {
        arg(args, name, default.to_string())
            .split(',')
            .map(str::to_string)
            .collect()
    };
    let workloads = list("--workload", "lidar,ndvi,water");
    let executors = list("--executors", "local,lambda");
    let concurrency: Vec<usize> = list("--concurrency", "1,2,4,8,16")
        .iter()
        .map(|c| c.parse())
        .collect::<Result<_, _>>()?;
    let store = cloud::testing::s3_store();
    let bucket = cloud::testing::unique_bucket(&store, "seed-bench")?;
    let bins = release_dir()?;
    let host = std::process::Command::new("nproc").output().ok();
    println!(
        "seed workloads on s3://{bucket} (loopback S3: {}), {} cores",
        cloud::testing::s3_endpoint(),
        host.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    );
    for workload in &workloads {
        let root = format!("s3://{bucket}/{workload}");
        let clock = Instant::now();
        let inputs = seed_inputs(&store, workload, &format!("{root}/in"))?;
        let (step, functions) = match workload.as_str() {
            "lidar" => (
                "partition",
                vec![("lidar-partitioner", "geobutton-lidar-partitioner-1024")],
            ),
            "ndvi" => ("windows", vec![("ndvi", "geobutton-ndvi-1024")]),
            _ => (
                "tiles",
                vec![
                    ("water", "geobutton-water-1024"),
                    ("terrain", "geobutton-terrain-1024"),
                ],
            ),
        };
        println!(
            "\n{workload}: inputs made in {:.1} s",
            clock.elapsed().as_secs_f64()
        );
        println!(
            "  {:<7} {:>3}  {:>6}  {:>8}  {:>9}  {:>11}  {:>9}  {:>10}",
            "exec", "N", "tasks", "wall s", "Σtask s", "overhead ms", "req/task", "forecast s"
        );
        let mut forecast_from: Option<String> = None;
        for executor in &executors {
            for &c in &concurrency {
                let (_guards, exec): (Vec<ChildGuard>, Box<dyn Executor>) = match executor.as_str()
                {
                    "local" => (
                        Vec::new(),
                        Box::new(LocalExecutor {
                            concurrency: c,
                            ..Default::default()
                        }),
                    ),
                    "lambda" => {
                        let fns: Vec<(String, std::path::PathBuf)> = functions
                            .iter()
                            .map(|(bin, f)| (f.to_string(), bins.join(bin)))
                            .collect();
                        let (guards, port) = emulator(&fns, c)?;
                        (
                            guards,
                            Box::new(LambdaExecutor::new(LambdaConfig {
                                memory_mb: 1024,
                                concurrency: c,
                                deadline: Duration::from_secs(300),
                                endpoint: Some(format!("http://127.0.0.1:{port}")),
                                region: Some("us-east-1".into()),
                                ..LambdaConfig::default()
                            })),
                        )
                    }
                    other => bail!("unknown executor {other}: local or lambda"),
                };
                let out = format!("{root}/{executor}-{c}");
                // The forecast of this run, from the task times of the first run.
                let forecast = match &forecast_from {
                    Some(first) => {
                        let mut p = seed_pipeline(workload, &inputs, first)?;
                        let mut config = RunConfig {
                            progress: ProgressMode::Silent,
                            force: true,
                            ..RunConfig::new(first)
                        };
                        config.forecast.lambdas = Some(c);
                        config.forecast.overhead_s = 0.0;
                        let plan =
                            driver::run::plan_pipeline(p.as_mut(), exec.as_ref(), &store, &config)?;
                        plan.forecast.map(|f| {
                            f.steps
                                .iter()
                                .filter(|s| s.0 == step)
                                .map(|s| s.2)
                                .sum::<f64>()
                        })
                    }
                    None => None,
                };
                let mut p = seed_pipeline(workload, &inputs, &out)?;
                let config = RunConfig {
                    progress: ProgressMode::Silent,
                    ..RunConfig::new(&out)
                };
                let s = run_pipeline(p.as_mut(), exec.as_ref(), &store, &config)?;
                let st = s
                    .report
                    .steps
                    .iter()
                    .find(|s| s.step == step)
                    .context("no step")?;
                let tasks: Vec<&driver::report::TaskReport> =
                    s.report.tasks.iter().filter(|t| t.step == step).collect();
                let (requests, _) = percentiles(tasks.iter().map(|t| t.requests as f64).collect());
                let overhead = (st.wall_s * c as f64 - st.task_seconds) / st.tasks.max(1) as f64;
                println!(
                    "  {executor:<7} {c:>3}  {:>6}  {:>8.2}  {:>9.2}  {:>11.1}  {:>9.0}  {:>10}",
                    st.tasks,
                    st.wall_s,
                    st.task_seconds,
                    overhead * 1e3,
                    requests,
                    forecast
                        .map(|f| format!("{f:.2}"))
                        .unwrap_or_else(|| "-".into())
                );
                if forecast_from.is_none() {
                    forecast_from = Some(out);
                }
            }
        }
    }
    Ok(())
}

/// Water task settings over `cat`'s plots and day, with the station table(s) `stations`
/// and `windows` × `windows` windows per tile.
fn water_template(
    cat: &driver::workloads::WaterCatalog,
    stations: &str,
    windows: u32,
) -> Result<water::Params> {
    Ok(serde_json::from_value(serde_json::json!({
        "dtm": "", "stations": stations, "date": cat.date, "plots": cat.plots, "out": "",
        "options": { "windows": windows }
    }))?)
}

/// The seed's water run over a season: its 36 tiles on 53 days (2022-05-01 to 06-22), 1,908
/// tasks, with a station table per day (copies of the catalog's: for planning only).
fn seed_water_season(
    store: &Store,
    cat: &driver::workloads::WaterCatalog,
    out: &str,
) -> Result<WaterPipeline> {
    use driver::pipeline::water::{DATE_PLACEHOLDER, parse_dates};
    let days = parse_dates("2022-05-01/2022-06-22")?;
    let table = store.get(&cat.stations)?;
    let per_day = format!(
        "{}/stations_{DATE_PLACEHOLDER}.csv",
        cloud::uri::parent(&cat.stations)
    );
    for d in &days {
        store.put(
            &per_day.replace(DATE_PLACEHOLDER, &d.format("%Y-%m-%d").to_string()),
            table.clone(),
        )?;
    }
    let mut p = WaterPipeline::new(cat.dtms.clone(), water_template(cat, &per_day, 1)?, out);
    p.dates = days;
    Ok(p)
}

/// The default concurrency of a Lambda account (a region's unreserved executions).
const LAMBDA_ACCOUNT_CONCURRENCY: usize = 1000;

/// One seed-size task's measurement: the step, its tasks, their mean seconds and bytes read.
struct Measured {
    step: &'static str,
    tasks: usize,
    mean_s: f64,
    mean_bytes: f64,
}

/// Runs `p` with the local executor and measures the tasks of `step`.
fn measure(
    p: &mut dyn driver::Pipeline,
    store: &Store,
    out: &str,
    step: &'static str,
) -> Result<Measured> {
    let config = RunConfig {
        progress: ProgressMode::Silent,
        force: true,
        ..RunConfig::new(out)
    };
    let s = run_pipeline(p, &LocalExecutor::default(), store, &config)?;
    let tasks: Vec<&driver::report::TaskReport> =
        s.report.tasks.iter().filter(|t| t.step == step).collect();
    if tasks.is_empty() {
        bail!("no {step} tasks ran");
    }
    let n = tasks.len() as f64;
    Ok(Measured {
        step,
        tasks: tasks.len(),
        mean_s: tasks.iter().filter_map(|t| t.duration_s).sum::<f64>() / n,
        mean_bytes: tasks.iter().map(|t| t.bytes_read as f64).sum::<f64>() / n,
    })
}

fn seed_forecast(args: &[String], store: &Store) -> Result<()> {
    use driver::workloads as w;
    let dir = arg(args, "--dir", "/tmp/geobutton-seed-forecast".to_string());
    let memory_mb = arg(args, "--memory", 1769u32);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let local = LocalExecutor::default();
    let mut measured = Vec::new();

    // LiDAR: one sheet of 2 km at 1.3 points/m² (5.2 M points), partitioned alone.
    let sheet = format!("{dir}/size/lidar/sheet.laz");
    let (bytes, points) = w::lidar_sheet(600_000.0, 4_150_000.0, 2_000.0, 1.3, 1, true)?;
    std::fs::create_dir_all(format!("{dir}/size/lidar"))?;
    std::fs::write(&sheet, &bytes)?;
    let mut p = LidarPipeline::new(vec![sheet], &format!("{dir}/size/lidar/out"));
    p.partition_only = true;
    p.buffer_m = 10.0;
    let m = measure(&mut p, store, &format!("{dir}/size/lidar/out"), "partition")?;
    println!(
        "lidar: a {points}-point sheet ({:.0} MB LAZ): {:.2} s, {:.0} MB read",
        bytes.len() as f64 / 1e6,
        m.mean_s,
        m.mean_bytes / 1e6
    );
    measured.push(("lidar", m));

    // NDVI: the 121 windows of two real-size dates.
    let bands = arg(args, "--s2", String::new());
    if !bands.is_empty() {
        use driver::pipeline::ndvi::{NdviInput, NdviPipeline};
        let b: Vec<&str> = bands.split(',').collect();
        let [br, bn, ar, an] = b.as_slice() else {
            bail!("--s2 BEFORE_RED,BEFORE_NIR,AFTER_RED,AFTER_NIR");
        };
        let out = format!("{dir}/size/ndvi");
        let mut p = NdviPipeline::new(NdviInput::Bands {
            before: ndvi::SceneBands::from_uris(br, bn, None, 0.0),
            after: ndvi::SceneBands::from_uris(ar, an, None, 0.0),
            out: out.clone(),
            window: 1024,
            blocksize: 512,
            quicklook: false,
        });
        let m = measure(&mut p, store, &out, "windows")?;
        println!(
            "ndvi: {} windows of 1024² over two dates: {:.2} s, {:.1} MB read each",
            m.tasks,
            m.mean_s,
            m.mean_bytes / 1e6
        );
        measured.push(("ndvi", m));
    } else {
        println!("ndvi: skipped (no --s2 bands)");
    }

    // Water: one 3550² tile at 5 m.
    let cat = w::water_catalog(store, &format!("{dir}/size/water/in"), 1, 1, 3550, 5.0)?;
    // k = 3 windows per tile: the stage's default.
    let template = water_template(&cat, &cat.stations, 3)?;
    let out = format!("{dir}/size/water/out");
    let mut p = WaterPipeline::new(cat.dtms.clone(), template, &out);
    let m = measure(&mut p, store, &out, "tiles")?;
    println!(
        "water: a 3550² tile at 5 m: {:.2} s, {:.0} MB read",
        m.mean_s,
        m.mean_bytes / 1e6
    );
    measured.push(("water", m));

    // The seed's plans, with the measured task time for every task.
    println!(
        "\nforecast on as many {memory_mb} MB functions as tasks, at most \
         {LAMBDA_ACCOUNT_CONCURRENCY} (0.2 s per invocation):"
    );
    println!(
        "  {:<6} {:>6}  {:>8}  {:>8}  {:>9}  {:>9}  {:>12}",
        "run", "tasks", "task s", "wall s", "GB-s", "USD", "read GB/s"
    );
    for (workload, m) in &measured {
        let root = format!("{dir}/plan/{workload}");
        let inputs = seed_inputs(store, workload, &format!("{root}/in"))?;
        let plan_of = |inputs: &SeedInputs| -> Result<Box<dyn driver::Pipeline>> {
            let out = format!("{root}/out");
            match inputs {
                SeedInputs::Water(cat) => Ok(Box::new(seed_water_season(store, cat, &out)?)),
                _ => seed_pipeline(workload, inputs, &out),
            }
        };
        let mut p = plan_of(&inputs)?;
        let mut config = RunConfig {
            progress: ProgressMode::Silent,
            ..RunConfig::new(&format!("{root}/out"))
        };
        config.cost.memory_mb = memory_mb;
        config
            .forecast
            .task_seconds
            .insert(m.step.to_string(), m.mean_s);
        // Plan once to count the tasks, then forecast on that many functions.
        let plan = driver::run::plan_pipeline(p.as_mut(), &local, store, &config)?;
        let tasks: usize = plan
            .steps
            .iter()
            .filter(|s| s.step == m.step)
            .map(|s| s.to_run)
            .sum();
        // As many functions as tasks, within an account's default concurrency.
        config.forecast.lambdas = Some(tasks.min(LAMBDA_ACCOUNT_CONCURRENCY));
        let mut p = plan_of(&inputs)?;
        let plan = driver::run::plan_pipeline(p.as_mut(), &local, store, &config)?;
        let f = plan.forecast.context("no forecast")?;
        let wall: f64 = f.steps.iter().filter(|s| s.0 == m.step).map(|s| s.2).sum();
        println!(
            "  {workload:<6} {tasks:>6}  {:>8.2}  {wall:>8.2}  {:>9.0}  {:>9.3}  {:>12.2}",
            m.mean_s,
            f.gb_s,
            f.lambda_usd,
            m.mean_bytes * tasks as f64 / wall / 1e9
        );
    }
    Ok(())
}
