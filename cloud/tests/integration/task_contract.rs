//! The task contract of `cloud::run_task` (DESIGN.md §2), with a test stage that writes
//! files and fails on request:
//! - resume skips a task only when its fingerprint (parameters, algorithm version, input
//!   identities) is unchanged, and says why it reruns otherwise;
//! - a rerun that writes fewer outputs removes the ones it no longer writes;
//! - a failing task leaves none of its outputs (and a failing CLI command none of its files);
//! - parameters are validated before anything is read or written;
//! - manifests with duplicate task ids are refused;
//! - local reads refuse what is not a regular file and cap what they read;
//! - temporary files of killed writes are removed by the next write.

use bytes::Bytes;
use cloud::{
    Ctx, ErrorKind, ProgressMode, Rerun, RunOptions, Stage, Store, StoreError, TaskError,
    TaskState, TaskStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Writes `files` (each the content `content`) under `out`, copying `input`'s size into the
/// output record; fails after writing `fail_after` files when set.
struct Writer;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriterParams {
    out: String,
    input: String,
    files: Vec<String>,
    #[serde(default)]
    fail_after: Option<usize>,
    #[serde(default = "one")]
    scale: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WriterOutput {
    written: Vec<String>,
    input_bytes: u64,
}

impl Stage for Writer {
    const NAME: &'static str = "writer";
    const VERSION: u32 = 1;
    type Params = WriterParams;
    type Output = WriterOutput;

    fn status_root(p: &WriterParams) -> String {
        p.out.clone()
    }

    fn validate(p: &WriterParams) -> Result<(), TaskError> {
        cloud::validate::number("scale", p.scale, 0.0..=10.0)
    }

    fn input_uris(p: &WriterParams) -> Vec<String> {
        vec![p.input.clone()]
    }

    fn run(p: &WriterParams, ctx: &Ctx) -> Result<WriterOutput, TaskError> {
        let input_bytes = ctx.store.head(&p.input)?;
        let mut written = Vec::new();
        for (i, f) in p.files.iter().enumerate() {
            if p.fail_after == Some(i) {
                return Err(TaskError::invalid_input(format!("failing after {i} files")));
            }
            let uri = cloud::uri::join(&p.out, f);
            ctx.store
                .put(&uri, Bytes::from(format!("{f} {}", p.scale)))?;
            written.push(uri);
        }
        if p.fail_after == Some(p.files.len()) {
            return Err(TaskError::invalid_input("failing after every file"));
        }
        Ok(WriterOutput {
            written,
            input_bytes,
        })
    }

    fn output_uris(o: &WriterOutput) -> Vec<String> {
        o.written.clone()
    }
}

fn ctx() -> Ctx {
    Ctx::new(Store::default()).with_progress(ProgressMode::Silent)
}

fn task(out: &str, input: &str, files: &[&str]) -> Value {
    json!({
        "id": "t1",
        "stage": "writer",
        "params": { "out": out, "input": input, "files": files },
    })
}

fn run(value: Value) -> TaskStatus {
    cloud::run_task::<Writer>(value, &ctx(), &RunOptions::default()).unwrap()
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            e.file_type()
                .unwrap()
                .is_file()
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn resume_skips_only_unchanged_tasks_and_says_why_it_reruns() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let input = dir.path().join("in.bin");
    std::fs::write(&input, b"12345").unwrap();
    let input = input.to_str().unwrap();

    let first = run(task(out, input, &["a", "b"]));
    assert_eq!(first.state, TaskState::Ok, "{first:?}");
    assert_eq!(first.ran_because, Some(Rerun::New));
    let fp = first.fingerprint.clone().unwrap();
    assert_eq!(fp.inputs.len(), 1);
    assert_eq!(fp.inputs[0].info.size, 5);
    assert!(fp.inputs[0].info.modified_ns.is_some());

    // Unchanged: skipped.
    let again = run(task(out, input, &["a", "b"]));
    assert!(again.skipped);
    assert_eq!(again.fingerprint, first.fingerprint);

    // Changed parameters: rerun, and the status says why.
    let mut changed = task(out, input, &["a", "b"]);
    changed["params"]["scale"] = json!(2.0);
    let s = run(changed.clone());
    assert!(!s.skipped);
    assert_eq!(s.ran_because, Some(Rerun::ParamsChanged));
    assert_eq!(std::fs::read_to_string(format!("{out}/a")).unwrap(), "a 2");
    assert!(run(changed.clone()).skipped);

    // A changed input (new size and mtime): rerun.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(input, b"123456").unwrap();
    let s = run(changed.clone());
    assert_eq!(s.ran_because, Some(Rerun::InputChanged(input.to_string())));
    assert_eq!(s.output.unwrap()["input_bytes"], 6);

    // A deleted output: rerun.
    std::fs::remove_file(format!("{out}/b")).unwrap();
    let s = run(changed.clone());
    assert_eq!(
        s.ran_because,
        Some(Rerun::OutputMissing(format!("{out}/b")))
    );

    // A status written before fingerprints existed: rerun once, then skipped.
    let status_uri = format!("{out}/status/t1.json");
    let mut old: Value = serde_json::from_slice(&std::fs::read(&status_uri).unwrap()).unwrap();
    old.as_object_mut().unwrap().remove("fingerprint");
    std::fs::write(&status_uri, old.to_string()).unwrap();
    assert_eq!(run(changed.clone()).ran_because, Some(Rerun::NoFingerprint));
    assert!(run(changed.clone()).skipped);

    // --force runs it whatever the fingerprint says.
    let forced = cloud::run_task::<Writer>(
        changed,
        &ctx(),
        &RunOptions {
            force: true,
            ..RunOptions::default()
        },
    )
    .unwrap();
    assert_eq!(forced.ran_because, Some(Rerun::Forced));
}

#[test]
fn a_rerun_with_fewer_outputs_removes_the_stale_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let input = dir.path().join("in.bin");
    std::fs::write(&input, b"x").unwrap();
    let (o, i) = (out.to_str().unwrap(), input.to_str().unwrap());
    // Something in the folder the task never wrote stays.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("mine.txt"), b"user file").unwrap();
    assert_eq!(
        run(task(o, i, &["t1", "t2", "t3", "t4"])).state,
        TaskState::Ok
    );
    assert_eq!(files_in(&out), ["mine.txt", "t1", "t2", "t3", "t4"]);
    let s = run(task(o, i, &["t1", "t2"]));
    assert_eq!(s.ran_because, Some(Rerun::ParamsChanged));
    assert_eq!(files_in(&out), ["mine.txt", "t1", "t2"]);
}

#[test]
fn a_failing_task_leaves_none_of_its_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let input = dir.path().join("in.bin");
    std::fs::write(&input, b"x").unwrap();
    let (o, i) = (out.to_str().unwrap(), input.to_str().unwrap());
    let mut t = task(o, i, &["a", "b", "c"]);
    t["params"]["fail_after"] = json!(2);
    let s = run(t);
    assert_eq!(s.state, TaskState::Error);
    assert_eq!(s.error.unwrap().kind, ErrorKind::InvalidInput);
    // `a` and `b` were written, then removed: nothing looks complete.
    assert!(!out.join("a").exists() && !out.join("b").exists());
    assert!(out.join("status/t1.json").exists());
}

#[test]
fn parameters_are_validated_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (o, i) = (out.to_str().unwrap(), "/nonexistent/input.bin");
    let mut t = task(o, i, &["a"]);
    t["params"]["scale"] = json!(50.0);
    let s = run(t);
    let e = s.error.unwrap();
    assert_eq!(e.kind, ErrorKind::InvalidTask);
    assert!(e.message.contains("scale must be between 0 and 10"), "{e}");
    assert!(!out.join("a").exists());
    // Valid parameters but a missing input: NotFound before the stage runs, naming it.
    let s = run(task(o, i, &["a"]));
    let e = s.error.unwrap();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(
        e.message.contains("/nonexistent/input.bin") && e.message.contains("no such file"),
        "{e}"
    );
    assert!(e.message.contains("no directory /nonexistent"), "{e}");
}

#[test]
fn manifests_with_duplicate_task_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let input = dir.path().join("in.bin");
    std::fs::write(&input, b"x").unwrap();
    let (o, i) = (out.to_str().unwrap(), input.to_str().unwrap());
    let manifest = dir.path().join("tasks.jsonl");
    let line = task(o, i, &["a"]).to_string();
    std::fs::write(&manifest, format!("{line}\n\n{line}\n")).unwrap();
    for index in [0, 1] {
        let e = cloud::run_task::<Writer>(
            json!({"manifest": manifest.to_str().unwrap(), "index": index}),
            &ctx(),
            &RunOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidTask);
        assert!(e.message.contains("share the id \"t1\""), "{e}");
    }
    assert!(!out.exists(), "nothing ran");
}

#[test]
fn local_reads_refuse_non_files_and_cap_what_they_read() {
    let store = Store::default();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    match store.get("/dev/zero") {
        Err(StoreError::NotAFile { what, .. }) => assert_eq!(what, "a character device"),
        other => panic!("/dev/zero: {other:?}"),
    }
    let e = store.get(d).unwrap_err();
    assert!(
        e.to_string().contains("a directory, not a regular file"),
        "{e}"
    );
    assert_eq!(TaskError::from(e).kind, ErrorKind::InvalidInput);
    let e = store.head(d).unwrap_err();
    assert!(matches!(e, StoreError::NotAFile { .. }), "{e}");
    assert!(!store.exists(d).unwrap());
    let big = dir.path().join("big.json");
    std::fs::write(&big, vec![b' '; 4096]).unwrap();
    let e = store.get_capped(big.to_str().unwrap(), 1000).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::TooLarge {
                size: Some(4096),
                limit: 1000,
                ..
            }
        ),
        "{e}"
    );
    assert!(store.get_capped(big.to_str().unwrap(), 4096).is_ok());
    // A missing file says so, and which directory is missing.
    let e = store.get(&format!("{d}/nope/x.json")).unwrap_err();
    assert!(e.to_string().contains("no such file (no directory"), "{e}");
}

#[test]
fn temp_files_of_killed_writes_are_removed_by_the_next_write() {
    let store = Store::default();
    let dir = tempfile::tempdir().unwrap();
    // A process id that does not exist (above the kernel's pid_max of 2^22).
    let stale = dir
        .path()
        .join(".x.tif.geobutton-tmp.99999999.00000000deadbeef");
    std::fs::write(&stale, b"partial").unwrap();
    // One of a live process (this one) is another write in progress: kept.
    let live = dir.path().join(format!(
        ".x.tif.geobutton-tmp.{}.00000000cafebabe",
        std::process::id()
    ));
    std::fs::write(&live, b"in progress").unwrap();
    store
        .put(
            dir.path().join("x.tif").to_str().unwrap(),
            Bytes::from_static(b"whole"),
        )
        .unwrap();
    assert!(!stale.exists());
    assert!(live.exists());
    assert_eq!(std::fs::read(dir.path().join("x.tif")).unwrap(), b"whole");
}

#[test]
fn a_task_store_stops_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, b"x").unwrap();
    let store = Store::default().for_task(Some(std::time::Instant::now()));
    let e = store.get(f.to_str().unwrap()).unwrap_err();
    assert!(matches!(e, StoreError::Deadline { .. }), "{e}");
    assert_eq!(TaskError::from(e).kind, ErrorKind::Timeout);
}

#[test]
fn listings_follow_symbolic_links_without_looping() {
    // An archive whose scene folder and one band are links to files elsewhere (what made
    // NDVI-by-date miss scenes that NDVI-by-id found), plus a link loop.
    let store = Store::default();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("elsewhere/scene")).unwrap();
    std::fs::write(d.join("elsewhere/scene/B04.tif"), b"red").unwrap();
    std::fs::write(d.join("elsewhere/B08.tif"), b"nir!").unwrap();
    std::fs::create_dir_all(d.join("archive/2022")).unwrap();
    std::os::unix::fs::symlink(d.join("elsewhere/scene"), d.join("archive/2022/S2A")).unwrap();
    std::os::unix::fs::symlink(d.join("elsewhere/B08.tif"), d.join("archive/2022/B08.tif"))
        .unwrap();
    std::os::unix::fs::symlink(d.join("archive"), d.join("archive/2022/loop")).unwrap();
    std::os::unix::fs::symlink(d.join("nowhere"), d.join("archive/dangling")).unwrap();
    let root = d.join("archive");
    let listed = store.list(&format!("{}/", root.display())).unwrap();
    let names: Vec<(String, u64)> = listed
        .iter()
        .map(|o| {
            (
                o.uri
                    .strip_prefix(&format!("{}/", root.display()))
                    .unwrap()
                    .to_string(),
                o.size,
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("2022/B08.tif".to_string(), 4),
            ("2022/S2A/B04.tif".to_string(), 3)
        ]
    );
}

/// A manifest written by `manifest_text` and a job of its tasks run by `run_tasks`: each
/// task's outputs and status, a resumed job that skips the finished tasks, and a job with
/// failing tasks that says how many failed and which, and keeps none of their outputs.
#[test]
fn a_job_of_manifest_tasks_runs_resumes_and_reports_its_failures() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    std::fs::write(&input, b"abc").unwrap();
    let i = input.to_str().unwrap();
    let root = dir.path().to_str().unwrap();
    let tasks: Vec<Value> = (0..5)
        .map(|k| {
            let mut t = task(&format!("{root}/out{k}"), i, &["a", "b"]);
            t["id"] = json!(format!("t{k}"));
            t
        })
        .collect();
    let manifest = format!("{root}/tasks.jsonl");
    let text = cloud::task::manifest_text(&tasks).unwrap();
    assert_eq!(text.lines().count(), 5);
    // Typed tasks make a manifest of the same tasks, one line each, read back by
    // `manifest_lines` (the reader of manifest references).
    let typed: Vec<cloud::Task<WriterParams>> = tasks
        .iter()
        .map(|t| serde_json::from_value(t.clone()).unwrap())
        .collect();
    let typed_text = cloud::task::manifest_text(&typed).unwrap();
    let lines = cloud::entry::manifest_lines("typed", &typed_text).unwrap();
    assert_eq!(lines.len(), 5);
    for (line, t) in lines.iter().zip(&typed) {
        let back: cloud::Task<WriterParams> = serde_json::from_str(line).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(t).unwrap()
        );
    }
    Store::default().put(&manifest, Bytes::from(text)).unwrap();
    let refs: Vec<Value> = (0..5)
        .map(|index| json!({"manifest": manifest, "index": index}))
        .collect();

    let options = RunOptions::default();
    let first = cloud::entry::run_tasks::<Writer>(&refs, &ctx(), &options, 2, "tasks").unwrap();
    let ids: Vec<&str> = first.statuses.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        ["t0", "t1", "t2", "t3", "t4"],
        "statuses in task order"
    );
    assert_eq!(first.skipped(), 0);
    let [min, median, max] = first.seconds();
    assert!(
        0.0 <= min && min <= median && median <= max,
        "{min} {median} {max}"
    );
    for k in 0..5 {
        assert_eq!(files_in(&dir.path().join(format!("out{k}"))), ["a", "b"]);
    }

    let again = cloud::entry::run_tasks::<Writer>(&refs, &ctx(), &options, 0, "tasks").unwrap();
    assert_eq!(again.skipped(), 5);
    assert_eq!(again.seconds(), [0.0; 3], "no task ran");

    // Tasks 1 and 3 fail (a new parameter: they run again); the others are skipped.
    let failing: Vec<Value> = tasks
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let mut t = t.clone();
            if k % 2 == 1 {
                t["params"]["fail_after"] = json!(1);
                t["params"]["files"] = json!(["c", "d"]);
            }
            t
        })
        .collect();
    let e = cloud::entry::run_tasks::<Writer>(&failing, &ctx(), &options, 2, "tasks").unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(
        e.message
            .starts_with("2 of 5 tasks failed; t1: failing after 1 files"),
        "{e}"
    );
    let status: TaskStatus = Store::default()
        .get_json(&format!("{root}/out3/status/t3.json"))
        .unwrap();
    assert_eq!(status.state, TaskState::Error);
    assert!(
        !dir.path().join("out3/c").exists(),
        "a failed task keeps no output"
    );

    // A task that cannot be read has no status: the error names it by its id.
    let unreadable = [json!({"id": "odd", "stage": "writer", "params": {"nope": 1}})];
    let e =
        cloud::entry::run_tasks::<Writer>(&unreadable, &ctx(), &options, 1, "tasks").unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidTask);
    assert!(e.message.starts_with("1 of 1 tasks failed; odd: "), "{e}");
}
