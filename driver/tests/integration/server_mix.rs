//! ServerMix, as the seed ran it: one `ndvi --preprocess` run whose `preprocess` step (a
//! Sentinel-2 product → COGs, minutes per product) runs on AWS Batch and whose `windows` step
//! runs on Lambda, the merge on the driver's machine
//! (`--executor preprocess=batch,windows=lambda`).
//!
//! Batch is moto's server (simple mode) with the resources `geobutton deploy --apply` made,
//! its children started as ECS starts them from the `Dockerfile` (`common::batch`); Lambda is
//! `cargo lambda watch` with the real `ndvi` binary as the function (`common::lambda`); the
//! products and every output are on the loopback S3 server. The run must equal a local run of
//! the same command, pixel for pixel.

use crate::common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{batch, ecs, lambda};
use bytes::Bytes;
use cloud::{ProgressMode, Store, testing};
use driver::exec::batch::{BatchConfig, BatchExecutor, SubmittedJob};
use driver::exec::lambda::{LambdaConfig, LambdaExecutor};
use driver::exec::local::LocalExecutor;
use driver::exec::mix::ExecutorMix;
use driver::pipeline::ndvi::{NdviInput, NdviPipeline, NdviProducts};
use driver::run::{RunConfig, RunRecord, run_pipeline};

const BEFORE: &str = "S2A_MSIL2A_20200219T112111_N0214_R037_T29RKH_20200219T123947.SAFE";
/// The same pixels as a later product of processing baseline 04.00, whose DNs carry the
/// −1000 BOA offset: a different NDVI, if the offset travels from the product's metadata
/// through the STAC item to the windows.
const AFTER: &str = "S2B_MSIL2A_20220321T112109_N0400_R037_T29RKH_20220321T140000.SAFE";
const FUNCTION: &str = "geobutton-ndvi-2048";

/// Uploads a Level-2A product tree like ESA's (the 29RKH fixture bands as GeoTIFF) under
/// `s3://bucket/in/`; returns its URI.
fn put_product(store: &Store, bucket: &str, name: &str, baseline: &str, offset: i32) -> String {
    let product = format!("s3://{bucket}/in/{name}");
    let date = &name[11..26];
    let granule = format!("{product}/GRANULE/L2A_T29RKH_A024344_{date}/IMG_DATA");
    let scene = "sentinel/s2_l2a_cogs_29RKH_20200219";
    for (rel, fixture) in [
        (format!("R10m/T29RKH_{date}_B04_10m.tif"), "B04.tif"),
        (format!("R10m/T29RKH_{date}_B08_10m.tif"), "B08.tif"),
        (format!("R20m/T29RKH_{date}_SCL_20m.tif"), "SCL.tif"),
    ] {
        let bytes = std::fs::read(common::data(&format!("{scene}/{fixture}"))).unwrap();
        store
            .put(&format!("{granule}/{rel}"), Bytes::from(bytes))
            .unwrap();
    }
    let offsets: String = (0..13)
        .map(|b| format!("<BOA_ADD_OFFSET band_id=\"{b}\">{offset}</BOA_ADD_OFFSET>"))
        .collect();
    let mtd = format!(
        "<?xml version=\"1.0\"?><n1:Level-2A_User_Product><n1:General_Info><Product_Info>\
         <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE></Product_Info>\
         <Product_Image_Characteristics><QUANTIFICATION_VALUES_LIST>\
         <BOA_QUANTIFICATION_VALUE unit=\"none\">10000</BOA_QUANTIFICATION_VALUE>\
         </QUANTIFICATION_VALUES_LIST><BOA_ADD_OFFSET_VALUES_LIST>{offsets}\
         </BOA_ADD_OFFSET_VALUES_LIST></Product_Image_Characteristics></n1:General_Info>\
         </n1:Level-2A_User_Product>"
    );
    store
        .put(&format!("{product}/MTD_MSIL2A.xml"), Bytes::from(mtd))
        .unwrap();
    product
}

fn products(before: &str, after: &str, out: &str) -> NdviPipeline {
    NdviPipeline::new(NdviInput::Products(NdviProducts {
        before: before.to_string(),
        after: after.to_string(),
        archive: cloud::uri::join(out, "archive"),
        allow_l1c: false,
        sen2cor: None,
        out: out.to_string(),
        window: 1024,
        blocksize: 512,
        quicklook: true,
        mask_scl: true,
    }))
}

fn geobutton(args: &[&str]) -> std::process::Output {
    common::s3_env(&mut Command::new(env!("CARGO_BIN_EXE_geobutton")))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn preprocess_on_batch_windows_on_lambda_equal_a_local_run() {
    common::aws_test_env();
    let ndvi_bin = common::stage_binaries(&["ndvi"]).remove(0);
    let store = testing::s3_store();
    let bucket = testing::unique_bucket(&store, "driver-mix").unwrap();
    let before = put_product(&store, &bucket, BEFORE, "02.14", 0);
    let after = put_product(&store, &bucket, AFTER, "04.00", -1000);

    // The reference: the same pipeline through the CLI, every step local.
    let local_out = format!("s3://{bucket}/local");
    let run = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            "ndvi",
            "--preprocess",
            "-i",
            &before,
            &after,
            "-o",
            out,
        ];
        args.extend_from_slice(extra);
        geobutton(&args)
    };
    let text = common::succeeded(&run(&local_out, &["--blocksize", "512", "-q"]));
    assert!(text.contains("local executor"), "{text}");
    // Steps named for an executor must be the pipeline's; remote steps need an S3 output.
    let o = run(&local_out, &["--executor", "preprocess=batch,tiles=lambda"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("step \"tiles\"") && err.contains("preprocess, windows, merge"),
        "{err}"
    );
    let o = run("/tmp/geobutton-not-s3", &["--executor", "preprocess=batch"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("batch executor needs an s3:// output"),
        "{err}"
    );

    // Batch: the account and what deploy makes (job definitions, Fargate queue).
    let (_moto, ep) = common::start_moto();
    let zips = tempfile::tempdir().unwrap();
    let (role, subnets, sg) = batch::setup_account(&ep, zips.path());
    let deployed = batch::deploy(
        &ep,
        &role,
        zips.path(),
        &["--subnets", &subnets, "--security-groups", &sg],
    );
    common::succeeded(&deployed);
    let client = batch::client(&ep);
    let bins: HashMap<String, std::path::PathBuf> =
        HashMap::from([("ndvi".to_string(), ndvi_bin.clone())]);
    let image = Arc::new(ecs::Image::from_dockerfile(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile"),
        &bins,
    ));
    let submitted: Arc<Mutex<Vec<SubmittedJob>>> = Arc::default();
    let runs: Arc<batch::Runs> = Arc::default();
    let hook = {
        let (client, submitted, runs) = (client.clone(), submitted.clone(), runs.clone());
        Arc::new(move |job: &SubmittedJob| {
            batch::run_children(&client, &image, job, &[], &runs);
            submitted.lock().unwrap().push(job.clone());
        })
    };
    let on_batch = BatchExecutor::new(BatchConfig {
        job_queue: "geobutton".into(),
        memory_mb: Some(2048),
        deadline: Duration::from_secs(600),
        poll_interval: Duration::from_millis(100),
        endpoint: Some(ep.clone()),
        region: Some("us-east-1".into()),
        on_submit: Some(hook),
        ..BatchConfig::default()
    });

    // Lambda: the real ndvi binary behind the runtime emulator, two instances.
    let (_emulator, port) = lambda::start_emulator(&[FUNCTION]);
    let _instances: Vec<_> = (0..2)
        .map(|_| lambda::instance(&ndvi_bin, port, FUNCTION))
        .collect();
    let on_lambda = LambdaExecutor::new(LambdaConfig {
        memory_mb: 2048,
        concurrency: 2,
        deadline: Duration::from_secs(120),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: Some("us-east-1".into()),
        ..LambdaConfig::default()
    });
    let mix = ExecutorMix::new(Box::new(LocalExecutor::default()))
        .with_step("preprocess", Box::new(on_batch))
        .with_step("windows", Box::new(on_lambda));

    let out = format!("s3://{bucket}/mix");
    let config = RunConfig {
        progress: ProgressMode::Silent,
        ..RunConfig::new(&out)
    };
    let s = run_pipeline(&mut products(&before, &after, &out), &mix, &store, &config).unwrap();

    // preprocess: one array job of the two products, each child the ndvi binary started
    // through the image's ENTRYPOINT with the job definition's command.
    let jobs = submitted.lock().unwrap().clone();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].request.array_size, Some(2));
    assert_eq!(jobs[0].request.job_definition, "geobutton-ndvi");
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 2);
    for (argv, code) in &runs {
        assert_eq!(argv[..], ["/usr/local/bin/geobutton-entry", "ndvi"]);
        assert_eq!(*code, Some(0));
    }
    // Every task ran where its step was sent, and says so.
    let record: RunRecord = store.get_json(&format!("{out}/tasks/run.json")).unwrap();
    assert_eq!(record.executor, "local,preprocess=batch,windows=lambda");
    let placed: Vec<(&str, &str, usize)> = record
        .steps
        .iter()
        .map(|st| (st.step.as_str(), st.executor.as_str(), st.records.len()))
        .collect();
    assert_eq!(
        placed,
        [
            ("preprocess", "batch", 2),
            ("windows", "lambda", 4),
            ("merge", "local", 1)
        ]
    );
    for st in &record.steps {
        for r in &st.records {
            let status = r.status.as_ref().unwrap();
            assert_eq!(status.executor, st.executor, "{}", r.id);
        }
    }
    for r in &record.steps[1].records {
        assert_eq!(r.attempts[0].target.as_deref(), Some(FUNCTION));
    }
    // Each step priced where it ran.
    let by: Vec<(&str, &str)> = s
        .report
        .cost
        .by_step
        .iter()
        .map(|b| (b.step.as_str(), b.executor.as_str()))
        .collect();
    assert_eq!(
        by,
        [
            ("preprocess", "batch"),
            ("windows", "lambda"),
            ("merge", "local")
        ]
    );
    assert!(s.report.cost.by_step[..2].iter().all(|b| b.usd > 0.0));
    assert!(s.report.summary_text().contains("as run: $"));

    // The archive is the sentinel-cogs layout, and the products equal the local run's.
    for key in [
        "archive/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A/B04_B08.tif",
        "archive/29/R/KH/2022/3/S2B_29RKH_20220321_0_L2A/S2B_29RKH_20220321_0_L2A.json",
    ] {
        assert!(store.exists(&format!("{out}/{key}")).unwrap(), "{key}");
    }
    for name in ["ndvi_before.tif", "ndvi_after.tif", "ndvi_diff.tif"] {
        common::assert_same_raster(
            &store,
            &format!("{out}/{name}"),
            &format!("{local_out}/{name}"),
        );
    }
    assert_eq!(
        store.get(&format!("{out}/ndvi_diff.png")).unwrap(),
        store.get(&format!("{local_out}/ndvi_diff.png")).unwrap()
    );
    // The later product's offset reached the windows: the NDVI differs wherever it is valid
    // (reflectance (DN − 1000) / 10000 against DN / 10000 for the same DNs).
    let diff: cog::Raster<f32> =
        cog::read_band(&store, &format!("{out}/ndvi_diff.tif"), 1).unwrap();
    let valid: Vec<f32> = diff.data.iter().copied().filter(|v| !v.is_nan()).collect();
    assert!(valid.len() > 1_000_000, "{}", valid.len());
    assert!(
        valid.iter().filter(|v| **v != 0.0).count() > valid.len() * 9 / 10,
        "the offset was lost"
    );

    // Again: everything is done; nothing is submitted or invoked.
    let s = run_pipeline(&mut products(&before, &after, &out), &mix, &store, &config).unwrap();
    assert_eq!(submitted.lock().unwrap().len(), 1);
    assert!(
        s.report.tasks.iter().all(|t| t.skipped),
        "{:?}",
        s.report.tasks
    );
}
