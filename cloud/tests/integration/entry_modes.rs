//! The entry adapter in its three modes, with the real `cloud` binary:
//! Lambda (behind the cargo-lambda runtime emulator, invoked through aws-sdk-lambda),
//! Batch (`AWS_BATCH_JOB_ARRAY_INDEX` over a manifest on the loopback S3 server), and CLI.

use crate::support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::support::{ChildGuard, start_lambda_emulator};
use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_lambda::primitives::Blob;
use bytes::Bytes;
use cloud::{TaskState, TaskStatus, testing};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_cloud");

/// Environment that points the binary at the loopback S3 server.
fn s3_env(cmd: &mut Command) -> &mut Command {
    testkit::aws::s3_env(cmd, &testing::s3_endpoint())
}

fn copy_task(id: &str, src: &str, dst: &str) -> Value {
    json!({ "id": id, "stage": "cloud", "params": { "src": src, "dst": dst } })
}

/// Invokes function `_` on the emulator; `Ok(payload)` or `Err((errorType, message))`.
fn invoke(port: u16, payload: &Value) -> Result<Value, (String, String)> {
    let conf = aws_sdk_lambda::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        // The emulator answers a failed function with HTTP 500: never retry it.
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
        .build();
    let client = aws_sdk_lambda::Client::from_conf(conf);
    let body = serde_json::to_vec(payload).unwrap();
    cloud::runtime::block_on(async move {
        let parse_error = |bytes: &[u8]| {
            let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
            (
                v["errorType"].as_str().unwrap_or("?").to_string(),
                v["errorMessage"].as_str().unwrap_or("?").to_string(),
            )
        };
        match client
            .invoke()
            .function_name("_")
            .payload(Blob::new(body))
            .send()
            .await
        {
            Ok(out) => {
                let bytes = out
                    .payload()
                    .map(|b| b.as_ref().to_vec())
                    .unwrap_or_default();
                if out.function_error().is_some() {
                    Err(parse_error(&bytes))
                } else {
                    Ok(serde_json::from_slice(&bytes).unwrap())
                }
            }
            Err(e) => {
                let raw = e.raw_response().expect("the emulator answered");
                assert_eq!(raw.status().as_u16(), 500, "{e:?}");
                Err(parse_error(raw.body().bytes().unwrap_or_default()))
            }
        }
    })
}

#[test]
fn lambda_mode_runs_tasks_and_reports_errors() {
    let store = testing::s3_store();
    let bucket = testing::unique_bucket(&store, "lambda").unwrap();
    let src = format!("s3://{bucket}/in/data.bin");
    store.put(&src, Bytes::from(vec![42u8; 100_000])).unwrap();

    let (_emulator, port) = start_lambda_emulator();
    let mut function = Command::new(BIN);
    s3_env(&mut function)
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{port}/.rt"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _function = ChildGuard(function.spawn().unwrap());

    // A task that works: the object is copied and its status written.
    let dst = format!("s3://{bucket}/out/copy.bin");
    let status = invoke(port, &copy_task("t-ok", &src, &dst)).unwrap();
    assert_eq!(status["state"], "ok", "{status}");
    assert_eq!(status["executor"], "lambda");
    assert_eq!(status["output"]["bytes"], 100_000);
    assert!(status["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(store.get(&dst).unwrap().len(), 100_000);
    let stored: TaskStatus = store
        .get_json(&format!("s3://{bucket}/out/status/t-ok.json"))
        .unwrap();
    assert_eq!(stored.state, TaskState::Ok);
    assert_eq!(stored.outputs, vec![dst.clone()]);
    assert_eq!(stored.bytes_read, 100_000);
    // Its S3 traffic by region and payer, for the cost of requests and transfer.
    let [t] = &stored.s3[..] else {
        panic!("{:?}", stored.s3)
    };
    assert_eq!((t.region.as_str(), t.billed), ("us-east-1", true));
    assert_eq!((t.bytes_read, t.bytes_written), (100_000, 100_000));
    assert!(t.get_class >= 1 && t.put_class >= 1, "{t:?}");

    // The same task again is skipped (its status says ok and its output exists).
    let again = invoke(port, &copy_task("t-ok", &src, &dst)).unwrap();
    assert_eq!(again["skipped"], true, "{again}");

    // A missing input: a Lambda error of type NotFound, and an error status.
    let missing = format!("s3://{bucket}/in/missing.bin");
    let (kind, message) = invoke(
        port,
        &copy_task("t-missing", &missing, &format!("s3://{bucket}/out/m.bin")),
    )
    .unwrap_err();
    assert_eq!(kind, "NotFound");
    assert!(message.contains(&missing), "{message}");
    let failed: TaskStatus = store
        .get_json(&format!("s3://{bucket}/out/status/t-missing.json"))
        .unwrap();
    assert_eq!(failed.state, TaskState::Error);
    assert!(!store.exists(&format!("s3://{bucket}/out/m.bin")).unwrap());

    // Malformed tasks: unknown fields, wrong stage, bad id.
    let mut unknown = copy_task("t-x", &src, &dst);
    unknown["params"]["colour"] = json!("blue");
    let (kind, message) = invoke(port, &unknown).unwrap_err();
    assert_eq!(kind, "InvalidTask");
    assert!(message.contains("colour"), "{message}");
    let mut wrong_stage = copy_task("t-y", &src, &dst);
    wrong_stage["stage"] = json!("terrain");
    assert_eq!(invoke(port, &wrong_stage).unwrap_err().0, "InvalidTask");
    assert_eq!(
        invoke(port, &copy_task("../evil", &src, &dst))
            .unwrap_err()
            .0,
        "InvalidTask"
    );
    // The function survives failures and keeps serving.
    let dst2 = format!("s3://{bucket}/out/copy2.bin");
    assert_eq!(
        invoke(port, &copy_task("t-ok2", &src, &dst2)).unwrap()["state"],
        "ok"
    );
}

fn run_batch_child(manifest: &str, index: usize) -> (Output, Option<TaskStatus>) {
    let mut cmd = Command::new(BIN);
    s3_env(&mut cmd)
        .env("AWS_BATCH_JOB_ARRAY_INDEX", index.to_string())
        .env("GEOBUTTON_MANIFEST", manifest);
    let out = cmd.output().unwrap();
    let status = serde_json::from_slice(&out.stdout).ok();
    (out, status)
}

#[test]
fn batch_mode_runs_manifest_lines_and_resumes() {
    let store = testing::s3_store();
    let bucket = testing::unique_bucket(&store, "batch").unwrap();
    let src = format!("s3://{bucket}/in/a.bin");
    store.put(&src, Bytes::from_static(b"abcdef")).unwrap();
    let out = |i: usize| format!("s3://{bucket}/out/{i}.bin");
    let tasks = [
        copy_task("c0", &src, &out(0)),
        copy_task("c1", &src, &out(1)),
        copy_task("c2", &format!("s3://{bucket}/in/none.bin"), &out(2)),
    ];
    let manifest = format!("s3://{bucket}/manifest.jsonl");
    let lines: String = tasks.iter().map(|t| format!("{t}\n")).collect();
    store.put(&manifest, Bytes::from(lines)).unwrap();

    for i in 0..2 {
        let (o, status) = run_batch_child(&manifest, i);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let status = status.unwrap();
        assert_eq!(status.executor, "batch");
        assert!(!status.skipped);
        assert_eq!(store.get(&out(i)).unwrap().as_ref(), b"abcdef");
    }
    let (o, status) = run_batch_child(&manifest, 2);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        status.unwrap().error.unwrap().kind,
        cloud::ErrorKind::NotFound
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("none.bin"), "{stderr}");

    // Resume: finished tasks are skipped...
    let (o, status) = run_batch_child(&manifest, 0);
    assert!(o.status.success());
    assert!(status.unwrap().skipped);
    // ...unless an output went missing, then the task runs again.
    store.delete(&out(1)).unwrap();
    let (o, status) = run_batch_child(&manifest, 1);
    assert!(o.status.success());
    assert!(!status.unwrap().skipped);
    assert!(store.exists(&out(1)).unwrap());

    // An index past the manifest's end is a clear error, also written where the driver
    // looks for a child that could not write its task's status.
    let (o, _) = run_batch_child(&manifest, 7);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no task at index 7"));
    let said: TaskStatus = store
        .get_json(&cloud::entry::child_error_uri(&manifest, 7))
        .unwrap();
    assert_eq!(said.id, "7");
    assert_eq!(said.executor, "batch");
    assert_eq!(said.error.unwrap().kind, cloud::ErrorKind::InvalidTask);
    // A manifest that is gone: NotFound, naming it.
    let gone = format!("s3://{bucket}/gone.jsonl");
    let (o, _) = run_batch_child(&gone, 4);
    assert!(!o.status.success());
    let said: TaskStatus = store
        .get_json(&cloud::entry::child_error_uri(&gone, 4))
        .unwrap();
    let e = said.error.unwrap();
    assert_eq!(e.kind, cloud::ErrorKind::NotFound);
    assert!(e.message.contains("gone.jsonl"), "{e}");
    // A child that ran its task writes no such object.
    assert!(
        !store
            .exists(&cloud::entry::child_error_uri(&manifest, 0))
            .unwrap()
    );
}

fn run_task_cli(stdin: &str) -> Output {
    let mut cmd = Command::new(BIN);
    s3_env(&mut cmd)
        .args(["task", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn cli_rejects_bad_tasks_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.txt");
    std::fs::write(&src, "hello").unwrap();
    let dst = dir.path().join("out/b.txt");
    let (src, dst) = (src.display().to_string(), dst.display().to_string());

    let o = run_task_cli("{not json");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid JSON"));

    let mut unknown = copy_task("x", &src, &dst);
    unknown["priority"] = json!(3);
    let o = run_task_cli(&unknown.to_string());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("priority"));
    assert!(!std::path::Path::new(&dst).exists());

    let o = run_task_cli(&copy_task("x", &src, &dst).to_string());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&dst).unwrap(), "hello");

    // A value GDAL's variable cannot take is refused by name before anything runs.
    let bad = dir.path().join("out/bad.txt").display().to_string();
    let o = Command::new(BIN)
        .env("AWS_REQUEST_PAYER", "bucket-owner")
        .args(["cp", &src, &bad])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("AWS_REQUEST_PAYER") && err.contains("requester"),
        "{err}"
    );
    assert!(!std::path::Path::new(&bad).exists());

    // A stopped S3 server: non-zero exit, a message naming the object, nothing written.
    let port = support::free_port();
    let mut cmd = Command::new(BIN);
    s3_env(&mut cmd)
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_MAX_ATTEMPTS", "1")
        .args(["cp", &src, "s3://stopped/x.txt"]);
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("s3://stopped/x.txt"), "{stderr}");
}
