//! The Batch executor against moto's AWS Batch API on loopback (moto's server in its
//! "simple batch" mode: `POST /moto-api/config {"batch": {"use_docker": false}}`, where
//! SubmitJob records the job and its children and marks them SUCCEEDED without running
//! anything — there is no Docker here). The tests play the compute environment: for every
//! job the executor submits they read it back with DescribeJobs and run its children as
//! local processes started as ECS starts them from the project's `Dockerfile` (argv = the
//! image's ENTRYPOINT + the job's command override, else the job definition's command;
//! `common::ecs`), running the real stage binaries with `AWS_BATCH_JOB_ARRAY_INDEX` and the
//! job's own `GEOBUTTON_MANIFEST`, over the manifest on the loopback S3 server. The resources (job definitions, Lambda functions, layout bucket)
//! come from `geobutton deploy --apply` against the same moto server.

use crate::common;

use crate::common::{batch, ecs};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cloud::{ProgressMode, testing};
use driver::exec::batch::{BatchConfig, BatchExecutor, SubmittedJob};
use driver::exec::{Failure, RetryPolicy};
use driver::pipeline::water::WaterPipeline;
use driver::run::{RunConfig, run_pipeline};

/// What `deploy` made, read back through the Describe APIs: Fargate job definitions, the
/// compute environment in the given subnets, the queue on it.
fn verify_fargate(client: &aws_sdk_batch::Client, role: &str, subnets: &str, sg: &str) {
    let c = client.clone();
    let (defs, envs, queues) = cloud::runtime::block_on(async move {
        (
            c.describe_job_definitions()
                .job_definition_name("geobutton-water")
                .status("ACTIVE")
                .send()
                .await
                .unwrap(),
            c.describe_compute_environments()
                .compute_environments("geobutton-fargate")
                .send()
                .await
                .unwrap(),
            c.describe_job_queues()
                .job_queues("geobutton")
                .send()
                .await
                .unwrap(),
        )
    });
    let d = defs.job_definitions().last().unwrap();
    let caps: Vec<&str> = d
        .platform_capabilities()
        .iter()
        .map(|p| p.as_str())
        .collect();
    assert_eq!(caps, ["FARGATE"]);
    let props = d.container_properties().unwrap();
    assert_eq!(props.command(), ["water"]);
    assert_eq!(props.execution_role_arn(), Some(role));
    assert_eq!(
        props
            .network_configuration()
            .and_then(|n| n.assign_public_ip())
            .map(|a| a.as_str()),
        Some("ENABLED")
    );
    assert_eq!(
        props
            .fargate_platform_configuration()
            .and_then(|f| f.platform_version()),
        Some("LATEST")
    );
    let mut sizes: Vec<(String, String)> = props
        .resource_requirements()
        .iter()
        .map(|r| {
            (
                r.r#type().unwrap().as_str().to_string(),
                r.value().unwrap().to_string(),
            )
        })
        .collect();
    sizes.sort();
    assert_eq!(
        sizes,
        [
            ("MEMORY".to_string(), "4096".to_string()),
            ("VCPU".to_string(), "1".to_string())
        ]
    );
    let ce = &envs.compute_environments()[0];
    let resources = ce.compute_resources().unwrap();
    assert_eq!(resources.r#type().map(|t| t.as_str()), Some("FARGATE"));
    assert_eq!(resources.subnets().join(","), subnets);
    assert_eq!(resources.security_group_ids(), [sg]);
    assert_eq!(ce.status().map(|s| s.as_str()), Some("VALID"));
    let q = &queues.job_queues()[0];
    assert_eq!(
        q.compute_environment_order()[0].compute_environment(),
        ce.compute_environment_arn()
    );
}

#[test]
fn batch_array_jobs_run_children_by_index_and_retry_lost_ones() {
    common::aws_test_env();
    let bins: HashMap<String, std::path::PathBuf> = ["water", "terrain"]
        .into_iter()
        .map(String::from)
        .zip(common::stage_binaries(&["water", "terrain"]))
        .collect();
    let (_moto, ep) = common::start_moto();
    let zips = tempfile::tempdir().unwrap();
    let (role, subnets, sg) = batch::setup_account(&ep, zips.path());
    let (subnets, sg) = (subnets.as_str(), sg.as_str());

    // `geobutton deploy --apply` against the emulator: layout bucket, functions, job
    // definitions, the Fargate compute environment and job queue.
    let deploy = |extra: &[&str]| batch::deploy(&ep, &role, zips.path(), extra);
    // An existing queue must exist: it does not, and nothing is made.
    let refused = deploy(&["--existing-job-queue"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(err.contains("job queue geobutton does not exist"), "{err}");
    assert!(!String::from_utf8_lossy(&refused.stdout).contains("created"));
    // A size Fargate does not run is refused before anything is made.
    let refused = deploy(&["--batch-vcpus", "1", "--batch-memory", "1000"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("Fargate runs 1 vCPU with 2048"), "{err}");
    let deployed = deploy(&["--subnets", subnets, "--security-groups", sg]);
    let text = String::from_utf8_lossy(&deployed.stdout);
    assert!(
        deployed.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&deployed.stderr)
    );
    for line in [
        "created compute environment geobutton-fargate (Fargate, up to 256 vCPUs",
        "created job queue geobutton",
        "created function geobutton-water-4096 (4096 MB, x86_64)",
        "registered job definition geobutton-terrain (Fargate, 1 vCPU, 4096 MiB)",
        // Deploy returns only when the functions are ready (State and LastUpdateStatus).
        "function geobutton-water-4096 active",
        "wrote s3://geobutton-deploy/geobutton/README.txt",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    // Again: the compute environment and queue are adopted.
    let again = deploy(&["--subnets", subnets, "--security-groups", sg]);
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{text}");
    assert!(
        text.contains("compute environment geobutton-fargate exists (Fargate)"),
        "{text}"
    );
    assert!(text.contains("job queue geobutton exists"), "{text}");

    // Data on the loopback S3 server.
    let store = testing::s3_store();
    let bucket = testing::unique_bucket(&store, "driver-batch").unwrap();
    let put = |key: &str, text: String| {
        let uri = format!("s3://{bucket}/{key}");
        store.put(&uri, Bytes::from(text)).unwrap();
        uri
    };
    let dtms: Vec<String> = (0..3)
        .map(|i| {
            put(
                &format!("in/s{i}.asc"),
                common::synthetic_dtm(640_000.0 + 6_000.0 * i as f64, 4_200_000.0, 100.0, 60, 40),
            )
        })
        .collect();
    let stations = put(
        "in/siam.csv",
        std::fs::read_to_string(common::data("water/siam_data.csv")).unwrap(),
    );
    let template: water::Params = serde_json::from_value(serde_json::json!({
        "dtm": "", "stations": stations, "date": "2022-05-15", "out": "", "options": { "windows": 2 }
    }))
    .unwrap();

    let client = batch::client(&ep);
    verify_fargate(&client, &role, subnets, sg);
    let submitted: Arc<Mutex<Vec<SubmittedJob>>> = Arc::default();
    let runs: Arc<batch::Runs> = Arc::default();
    let image = Arc::new(ecs::Image::from_dockerfile(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile"),
        &bins,
    ));
    // Set: the next job's manifest is gone before its children start.
    let lose_manifest = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hook = {
        let (client, submitted, runs) = (client.clone(), submitted.clone(), runs.clone());
        let (lose, store) = (lose_manifest.clone(), store.clone());
        Arc::new(move |job: &SubmittedJob| {
            if lose.swap(false, std::sync::atomic::Ordering::SeqCst) {
                store.delete(&job.manifest).unwrap();
            }
            let first = submitted.lock().unwrap().is_empty();
            // The first array job loses child 1.
            batch::run_children(&client, &image, job, if first { &[1] } else { &[] }, &runs);
            submitted.lock().unwrap().push(job.clone());
        })
    };
    let batch = BatchExecutor::new(BatchConfig {
        job_queue: "geobutton".into(),
        memory_mb: Some(2048),
        deadline: Duration::from_secs(600),
        retry: RetryPolicy {
            max_attempts: 2,
            retry_memory_mb: Some(4096),
        },
        poll_interval: Duration::from_millis(100),
        endpoint: Some(ep.clone()),
        region: Some("us-east-1".into()),
        on_submit: Some(hook),
        ..BatchConfig::default()
    });
    let output = format!("s3://{bucket}/run");
    let mut p = WaterPipeline::new(dtms.clone(), template.clone(), &output);
    let config = RunConfig {
        progress: ProgressMode::Silent,
        ..RunConfig::new(&output)
    };
    let s = run_pipeline(&mut p, &batch, &store, &config).unwrap();

    let jobs = submitted.lock().unwrap().clone();
    // Every child started through the image's ENTRYPOINT and exited 0: array children with
    // the definition's command, one-task jobs with the override (stage first).
    let runs = runs.lock().unwrap().clone();
    let entry = "/usr/local/bin/geobutton-entry".to_string();
    assert_eq!(runs.len(), 2 + 1 + 1, "{runs:?}");
    for (argv, code) in &runs {
        assert_eq!(argv[0], entry, "{argv:?}");
        assert_eq!(*code, Some(0), "{argv:?}");
    }
    assert_eq!(runs[0].0, [entry.as_str(), "water"]);
    assert_eq!(
        runs[2].0,
        [
            entry.as_str(),
            "water",
            "batch",
            "--manifest",
            &jobs[1].manifest,
            "--index",
            "0"
        ]
    );
    assert_eq!(runs[3].0[1], "terrain");
    // tiles: an array job of 3, then a retry job of the lost task (with more memory);
    // mosaic (et0 only: no plots) one task, a plain job of the terrain definition.
    assert_eq!(jobs[0].request.array_size, Some(3));
    assert_eq!(jobs[0].request.memory_mb, Some(2048));
    assert_eq!(
        jobs[1].request.array_size, None,
        "one lost task: a plain job"
    );
    assert_eq!(jobs[1].request.memory_mb, Some(4096));
    assert_eq!(jobs[1].tasks, vec![1]);
    assert!(jobs[1].manifest.ends_with("tasks/tiles.batch-2-0.jsonl"));
    assert_eq!(jobs.len(), 3);
    assert_eq!(jobs[2].request.job_definition, "geobutton-terrain");
    assert_eq!(s.report.steps[0].retries, 1);
    assert_eq!(s.report.steps[0].ok, 3);
    let record: driver::run::RunRecord =
        store.get_json(&format!("{output}/tasks/run.json")).unwrap();
    let lost = &record.steps[0].records[1];
    match &lost.attempts[0].failure {
        Some(Failure::Runtime {
            error_type,
            message,
        }) => {
            assert!(error_type.starts_with("Batch."), "{error_type}");
            assert!(
                message.contains(&format!("{}:1", jobs[0].job_id)),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    for r in &record.steps[0].records {
        assert_eq!(r.status.as_ref().unwrap().executor, "batch");
    }
    assert!(store.exists(&format!("{output}/et0.tif")).unwrap());
    let et0: cog::Raster<f32> = cog::read_band(&store, &format!("{output}/et0.tif"), 1).unwrap();
    assert_eq!(et0.data.dim(), (40, 180));

    // Children that cannot read their manifest say why (beside it), and the run names it:
    // the manifest is missing, which no retry mends.
    lose_manifest.store(true, std::sync::atomic::Ordering::SeqCst);
    let output = format!("s3://{bucket}/run-lost-manifest");
    let mut p = WaterPipeline::new(dtms[..2].to_vec(), template, &output);
    let e = run_pipeline(
        &mut p,
        &batch,
        &store,
        &RunConfig {
            progress: ProgressMode::Silent,
            ..RunConfig::new(&output)
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("tiles"), "{e}");
    let record: driver::run::RunRecord =
        store.get_json(&format!("{output}/tasks/run.json")).unwrap();
    let job = submitted.lock().unwrap().last().unwrap().clone();
    for (child, r) in record.steps[0].records.iter().enumerate() {
        assert_eq!(r.attempts.len(), 1, "not retried: {r:?}");
        match &r.attempts[0].failure {
            Some(Failure::Task(t)) => {
                assert_eq!(t.kind, cloud::ErrorKind::NotFound, "{t}");
                assert!(
                    t.message.contains(&format!(
                        "job {} child {child} could not run its task",
                        job.job_id
                    )) && t.message.contains(&job.manifest),
                    "{t}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
