//! The Lambda executor against the real `water` stage binary running behind the Lambda
//! runtime emulator of `cargo lambda watch --only-lambda-apis` (PyPI `cargo-lambda`), with
//! the data on the loopback S3 server.
//!
//! The emulator routes function names: a name is accepted when the Cargo project it watches
//! has a binary of that name (our throw-away project declares `geobutton-water-1024` and
//! `geobutton-water-2048`), and a runtime polls the function `NAME` at
//! `AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:PORT/.rt/NAME`. One emulator serves every
//! function; several processes may poll one function (instances). The mosaic step runs on
//! the real `terrain` binary as `geobutton-terrain-1024`.

use crate::common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{ChildGuard, lambda};
use bytes::Bytes;
use cloud::{ProgressMode, Store, testing};
use driver::exec::lambda::{LambdaConfig, LambdaExecutor};
use driver::exec::local::LocalExecutor;
use driver::exec::throttle::ThrottlePolicy;
use driver::exec::{Failure, RetryPolicy};
use driver::pipeline::water::WaterPipeline;
use driver::run::{RunConfig, run_pipeline};
use driver::{DriverError, Executor};

const FUNCTIONS: [&str; 4] = [
    "geobutton-water-1024",
    "geobutton-water-2048",
    "geobutton-terrain-1024",
    "geobutton-terrain-2048",
];

fn signal(child: &ChildGuard, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

struct Inputs {
    store: Store,
    bucket: String,
    dtms: Vec<String>,
    template: water::Params,
}

fn inputs() -> Inputs {
    let store = testing::s3_store();
    let bucket = testing::unique_bucket(&store, "driver-lambda").unwrap();
    let put = |key: &str, text: String| {
        let uri = format!("s3://{bucket}/{key}");
        store.put(&uri, Bytes::from(text)).unwrap();
        uri
    };
    let dtms: Vec<String> = (0..3)
        .map(|i| {
            put(
                &format!("in/sheet{i}.asc"),
                common::synthetic_dtm(640_000.0 + 6_000.0 * i as f64, 4_200_000.0, 100.0, 60, 40),
            )
        })
        .collect();
    let stations = put(
        "in/siam_data.csv",
        std::fs::read_to_string(common::data("water/siam_data.csv")).unwrap(),
    );
    let plots = put("in/plots.geojson", common::plots_geojson());
    let template: water::Params = serde_json::from_value(serde_json::json!({
        "dtm": "", "stations": stations, "date": "2022-05-15", "plots": plots, "out": "",
        "options": { "windows": 2 }
    }))
    .unwrap();
    Inputs {
        store,
        bucket,
        dtms,
        template,
    }
}

fn config(out: &str) -> RunConfig {
    RunConfig {
        progress: ProgressMode::Silent,
        ..RunConfig::new(out)
    }
}

#[test]
fn lambda_runs_equal_local_retry_a_hung_instance_and_report_failures() {
    common::aws_test_env();
    let bins = common::stage_binaries(&["water", "terrain"]);
    let bin = &bins[0];
    let inp = inputs();
    let (_emulator, port) = lambda::start_emulator(&FUNCTIONS);

    // A hung instance of the 1024 MB function: it takes the first invocation and never
    // answers (a frozen sandbox). Then healthy instances of both sizes.
    let hung = lambda::instance(bin, port, FUNCTIONS[0]);
    std::thread::sleep(Duration::from_millis(1500)); // it is now waiting for an event
    signal(&hung, "-STOP");
    let _healthy = lambda::instance(bin, port, FUNCTIONS[0]);
    let _bigger = lambda::instance(bin, port, FUNCTIONS[1]);
    let _mosaic = lambda::instance(&bins[1], port, FUNCTIONS[2]);

    let lambda = LambdaExecutor::new(LambdaConfig {
        memory_mb: 1024,
        concurrency: 2,
        deadline: Duration::from_secs(8),
        retry: RetryPolicy {
            max_attempts: 2,
            retry_memory_mb: Some(2048),
        },
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: Some("us-east-1".into()),
        ..LambdaConfig::default()
    });
    let b = &inp.bucket;
    let out = format!("s3://{b}/lambda");
    let mut p = WaterPipeline::new(inp.dtms.clone(), inp.template.clone(), &out);
    let s = run_pipeline(&mut p, &lambda, &inp.store, &config(&out)).unwrap();

    // Exactly one task met the hung instance, passed its deadline, and succeeded on retry
    // with more memory.
    let tiles = &s.report.steps[0];
    assert_eq!(
        (tiles.tasks, tiles.ok, tiles.retries),
        (3, 3, 1),
        "{tiles:?}"
    );
    let retried: Vec<_> = s.report.tasks.iter().filter(|t| t.retries > 0).collect();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].attempt_memory_mb, vec![Some(1024), Some(2048)]);
    assert!(retried[0].attempt_seconds >= 8.0);
    let record: driver::run::RunRecord = inp
        .store
        .get_json(&format!("{out}/tasks/run.json"))
        .unwrap();
    let r = record.steps[0]
        .records
        .iter()
        .find(|r| r.retries() == 1)
        .unwrap();
    assert!(matches!(
        r.attempts[0].failure,
        Some(Failure::Deadline { .. })
    ));
    assert_eq!(r.attempts[1].target.as_deref(), Some(FUNCTIONS[1]));
    // Every status says where it ran.
    for t in &record.steps[0].records {
        assert_eq!(t.status.as_ref().unwrap().executor, "lambda");
    }

    // The local executor on the same inputs gives the same products.
    let local_out = format!("s3://{b}/local");
    let mut p = WaterPipeline::new(inp.dtms.clone(), inp.template.clone(), &local_out);
    let local = LocalExecutor::default();
    run_pipeline(&mut p, &local, &inp.store, &config(&local_out)).unwrap();
    for name in ["et0.tif", "etc.tif", "tiles/sheet1_et0.tif"] {
        let a: cog::Raster<f32> = cog::read_band(&inp.store, &format!("{out}/{name}"), 1).unwrap();
        let l: cog::Raster<f32> =
            cog::read_band(&inp.store, &format!("{local_out}/{name}"), 1).unwrap();
        assert_eq!(a.transform, l.transform);
        assert!(
            a.data
                .iter()
                .zip(l.data.iter())
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{name}"
        );
    }
    assert_eq!(
        inp.store.get(&format!("{out}/plots.csv")).unwrap(),
        inp.store.get(&format!("{local_out}/plots.csv")).unwrap()
    );

    // A task that always fails (a corrupt DTM) ends the run with a clear summary, without
    // retries (InvalidInput is not retryable); the other tiles' outputs are there.
    let corrupt = format!("s3://{b}/in/corrupt.asc");
    inp.store
        .put(&corrupt, Bytes::from_static(b"ncols 10\nnrows x\n1 2 3\n"))
        .unwrap();
    let fail_out = format!("s3://{b}/fail");
    let mut p = WaterPipeline::new(
        vec![inp.dtms[0].clone(), corrupt.clone(), inp.dtms[2].clone()],
        inp.template.clone(),
        &fail_out,
    );
    let e = run_pipeline(&mut p, &lambda, &inp.store, &config(&fail_out)).unwrap_err();
    let DriverError::StepFailed {
        step,
        failed,
        total,
        summary,
    } = e
    else {
        panic!("not a step failure: {e}");
    };
    assert_eq!((step.as_str(), failed, total), ("tiles", 1, 3));
    assert!(
        summary.contains("tile-corrupt") && summary.contains("corrupt.asc"),
        "{summary}"
    );
    assert!(
        summary.contains("InvalidInput") && summary.contains("1 attempt)"),
        "{summary}"
    );
    for sheet in ["sheet0", "sheet2"] {
        assert!(
            inp.store
                .exists(&format!("{fail_out}/tiles/{sheet}_et0.tif"))
                .unwrap()
        );
    }
    assert!(
        !inp.store
            .exists(&format!("{fail_out}/tiles/corrupt_et0.tif"))
            .unwrap()
    );
    let report: driver::report::Report = inp
        .store
        .get_json(&format!("{fail_out}/report.json"))
        .unwrap();
    assert_eq!(report.state, "failed in step tiles");
    assert!(!lambda.name().is_empty());
    drop(hung);
}

/// What the throttling proxy saw.
#[derive(Debug, Default)]
struct ProxyStats {
    invokes: usize,
    throttled: usize,
    in_flight: usize,
    max_in_flight: usize,
    account_settings: usize,
}

/// A loopback proxy in front of the Lambda emulator that behaves as the service does under
/// load: `GetAccountSettings` says the account has `unreserved` concurrency; an Invoke
/// beyond that many in flight, and every `every`-th of the first `share_until` Invokes, is
/// answered 429 `TooManyRequestsException` without running anything; the rest are
/// forwarded.
fn throttling_proxy(
    upstream: u16,
    unreserved: usize,
    every: usize,
    share_until: usize,
) -> (u16, Arc<Mutex<ProxyStats>>) {
    use cloud::testing::Verdict;
    let stats: Arc<Mutex<ProxyStats>> = Arc::default();
    let json = vec![("Content-Type".to_string(), "application/json".to_string())];
    let decide = {
        let stats = stats.clone();
        move |line: &str, _head: &str| {
            let mut s = stats.lock().unwrap();
            if line.contains("/2016-08-19/account-settings") {
                s.account_settings += 1;
                return Verdict::Answer {
                    status: "200 OK".into(),
                    headers: json.clone(),
                    body: format!(
                        r#"{{"AccountLimit":{{"TotalCodeSize":80530636800,"CodeSizeUnzipped":262144000,"CodeSizeZipped":52428800,"ConcurrentExecutions":{},"UnreservedConcurrentExecutions":{unreserved}}},"AccountUsage":{{"TotalCodeSize":0,"FunctionCount":4}}}}"#,
                        unreserved + 100
                    ),
                };
            }
            if !line.contains("/invocations") {
                return Verdict::Forward;
            }
            s.invokes += 1;
            let share = s.invokes <= share_until && s.invokes % every == 1;
            if share || s.in_flight >= unreserved {
                s.throttled += 1;
                let mut headers = json.clone();
                headers.push(("x-amzn-ErrorType".into(), "TooManyRequestsException".into()));
                return Verdict::Answer {
                    status: "429 Too Many Requests".into(),
                    headers,
                    body: r#"{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}"#.into(),
                };
            }
            s.in_flight += 1;
            s.max_in_flight = s.max_in_flight.max(s.in_flight);
            Verdict::Forward
        }
    };
    let answered = {
        let stats = stats.clone();
        move |line: &str| {
            if line.contains("/invocations") {
                stats.lock().unwrap().in_flight -= 1;
            }
        }
    };
    let port = cloud::testing::interpose(upstream, Box::new(decide), Box::new(answered)).unwrap();
    (port, stats)
}

#[test]
fn throttled_invocations_wait_and_go_again_without_failing_tasks() {
    common::aws_test_env();
    let bins = common::stage_binaries(&["water", "terrain"]);
    let inp = inputs();
    let (_emulator, port) = lambda::start_emulator(&FUNCTIONS);
    let _water: Vec<ChildGuard> = (0..3)
        .map(|_| lambda::instance(&bins[0], port, FUNCTIONS[0]))
        .collect();
    let _mosaic = lambda::instance(&bins[1], port, FUNCTIONS[2]);
    // The account has 2 of unreserved concurrency; the first invocations are throttled
    // one in two, and any beyond 2 in flight is throttled as Lambda does.
    let (proxy, stats) = throttling_proxy(port, 2, 2, 8);

    let lambda = LambdaExecutor::new(LambdaConfig {
        memory_mb: 1024,
        concurrency: 8,
        deadline: Duration::from_secs(60),
        // One attempt: a throttle counted as a failed attempt would fail the run.
        retry: RetryPolicy {
            max_attempts: 1,
            retry_memory_mb: None,
        },
        throttle: ThrottlePolicy {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(400),
            max_wait: Duration::from_secs(120),
        },
        endpoint: Some(format!("http://127.0.0.1:{proxy}")),
        region: Some("us-east-1".into()),
        ..LambdaConfig::default()
    });
    let out = format!("s3://{}/throttled", inp.bucket);
    let mut p = WaterPipeline::new(inp.dtms.clone(), inp.template.clone(), &out);
    let s = run_pipeline(&mut p, &lambda, &inp.store, &config(&out)).unwrap();

    let seen = stats.lock().unwrap();
    assert!(seen.throttled >= 4, "{seen:?}");
    assert!(
        seen.max_in_flight <= 2,
        "the account's limit held: {seen:?}"
    );
    assert!(seen.account_settings >= 1, "{seen:?}");
    let throttles: u64 = s.report.steps.iter().map(|st| st.throttles).sum();
    assert_eq!(
        throttles as usize, seen.throttled,
        "every throttle reported"
    );
    for st in &s.report.steps {
        assert_eq!((st.failed, st.retries), (0, 0), "{st:?}");
        let f = st.in_flight.unwrap();
        assert_eq!((f.requested, f.account_limit, f.ceiling), (8, Some(2), 2));
    }
    assert!(s.report.steps[0].throttles > 0);
    assert!(s.report.steps[0].in_flight.unwrap().lowest < 2);
    for t in &s.report.tasks {
        assert_eq!(t.attempts, 1, "a throttle is not an attempt: {t:?}");
    }
    let text = s.report.summary_text();
    assert!(
        text.contains("invocations throttled and sent again"),
        "{text}"
    );
    assert!(text.contains("at most 2 in flight"), "{text}");
    assert!(inp.store.exists(&format!("{out}/et0.tif")).unwrap());
    assert!(inp.store.exists(&format!("{out}/plots.csv")).unwrap());
    // Lambda bills what ran: one request per task, none for the throttles.
    let tasks = s.report.tasks.len() as u64;
    assert_eq!(s.report.cost.lambda_requests, tasks);
}
