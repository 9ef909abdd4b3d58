//! The stage contract: the [`Stage`] trait, the [`Ctx`] a task runs in, and [`run_task`],
//! which runs one task with its status, fingerprint and resume.
//!
//! Every task writes `status/<id>.json` under its stage's status root; a task whose status
//! says ok, whose outputs all exist and whose fingerprint (parameters, algorithm version,
//! input identities) is unchanged is skipped (resume). A stage's binary serves the command
//! line, AWS Lambda and AWS Batch through `cloud::binary::main` (feature `cli`).

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use chrono::Utc;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::fingerprint::{Fingerprint, InfoCache, Rerun, skip_decision};
use crate::progress::{Progress, ProgressMode};
use crate::rss;
use crate::store::Store;
use crate::task::{
    ErrorKind, ManifestRef, Task, TaskError, TaskState, TaskStatus, validate_task_id,
};
use crate::uri;

/// A stage of a pipeline: typed parameters in, a typed output record out.
///
/// The contract every stage crate implements (DESIGN.md §2): parameters are checked by
/// [`Stage::validate`] when a run is planned and again before a task runs; a task's result
/// depends only on its parameters, the stage's [`Stage::VERSION`] and the objects named by
/// [`Stage::input_uris`] (its fingerprint); it writes only the objects its output lists.
pub trait Stage: 'static {
    /// The stage name carried by tasks (also the binary name).
    const NAME: &'static str;
    /// The version of the stage's algorithms: raise it whenever the same parameters and
    /// inputs give different outputs, so that resumed runs recompute earlier results.
    const VERSION: u32;
    /// Task parameters; use `#[serde(deny_unknown_fields)]`.
    type Params: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What a successful task returns (stored in its status).
    type Output: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The location under which `status/<id>.json` is written (the task's output root).
    fn status_root(params: &Self::Params) -> String;
    /// Checks the parameters without reading any input: every number within its bounds and
    /// finite, names well formed, no output that is also an input. Called at plan time by
    /// the driver and again before a task runs; an error is [`crate::ErrorKind::InvalidTask`].
    fn validate(params: &Self::Params) -> Result<(), TaskError>;
    /// The objects the task reads: their identities (size + ETag, or size + mtime) go into
    /// its fingerprint, and a missing one fails the task before any work.
    fn input_uris(params: &Self::Params) -> Vec<String>;
    /// Folders the task reads whole, such as a Sentinel-2 `.SAFE` product: every object under
    /// each (listed with [`Store::list`], in URI order) goes into the fingerprint as an
    /// input, and a folder with no object in it fails the task before any work.
    fn input_folders(_params: &Self::Params) -> Vec<String> {
        Vec::new()
    }
    /// Does the work of one task.
    fn run(params: &Self::Params, ctx: &Ctx) -> Result<Self::Output, TaskError>;
    /// The objects a finished task wrote (checked for existence before skipping it).
    fn output_uris(output: &Self::Output) -> Vec<String>;
    /// What a user must know about a successful result (a product without a CRS, a
    /// clamped value): recorded in the task's status and gathered by run reports.
    fn warnings(_output: &Self::Output) -> Vec<String> {
        Vec::new()
    }
}

/// What a stage's work gets besides its parameters.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Storage, with request counters of its own for this task.
    pub store: Store,
    /// How progress is shown.
    pub progress_mode: ProgressMode,
    /// The id of the task being run, if any.
    pub task_id: Option<String>,
}

impl Ctx {
    /// A context over `store`, with progress shown as fits the terminal.
    pub fn new(store: Store) -> Self {
        Ctx {
            store,
            progress_mode: ProgressMode::detect(),
            task_id: None,
        }
    }

    /// This context with progress shown as `mode`.
    pub fn with_progress(mut self, mode: ProgressMode) -> Self {
        self.progress_mode = mode;
        self
    }

    /// This context for task `id`.
    pub fn with_task_id(mut self, id: &str) -> Self {
        self.task_id = Some(id.to_string());
        self
    }

    /// Starts a progress report of `total` units of `what`.
    pub fn progress(&self, what: &str, total: u64) -> Progress {
        Progress::new(self.progress_mode, what, total)
    }
}

/// Options of [`run_task`].
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run even if a previous ok status, its outputs and an equal fingerprint exist.
    pub force: bool,
    /// Recorded in the status as where the task ran.
    pub executor: String,
    /// After this instant the task's storage calls fail ([`crate::ErrorKind::Timeout`]).
    pub deadline: Option<std::time::Instant>,
}

/// Largest task or manifest document read: 64 MiB.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Resolves a task value: a task, or a reference to a line of a manifest; also says
/// whether the reference asked to force the run.
pub fn resolve_task(store: &Store, value: Value) -> Result<Value, TaskError> {
    resolve_task_ref(store, value).map(|(v, _)| v)
}

fn resolve_task_ref(store: &Store, value: Value) -> Result<(Value, bool), TaskError> {
    let is_ref = value
        .as_object()
        .is_some_and(|o| o.contains_key("manifest"));
    if !is_ref {
        return Ok((value, false));
    }
    let r: ManifestRef = serde_json::from_value(value)
        .map_err(|e| TaskError::invalid_task(format!("invalid manifest reference: {e}")))?;
    let bytes = store.get_capped(&r.manifest, MAX_MANIFEST_BYTES)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        TaskError::invalid_task(format!("manifest {} is not UTF-8 text", r.manifest))
    })?;
    let lines = manifest_lines(&r.manifest, text)?;
    let line = lines.get(r.index).ok_or_else(|| {
        TaskError::invalid_task(format!(
            "manifest {} has no task at index {} ({} tasks)",
            r.manifest,
            r.index,
            lines.len()
        ))
    })?;
    let value = serde_json::from_str(line).map_err(|e| {
        TaskError::invalid_task(format!(
            "manifest {} line {}: invalid JSON: {e}",
            r.manifest, r.index
        ))
    })?;
    Ok((value, r.force))
}

/// The non-blank lines of a JSON-lines manifest, refused when two tasks share an id (the
/// second would find the first's status and never run).
pub fn manifest_lines<'a>(manifest: &str, text: &'a str) -> Result<Vec<&'a str>, TaskError> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        #[serde(default)]
        id: Option<String>,
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut seen = std::collections::HashMap::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let Ok(IdOnly { id: Some(id) }) = serde_json::from_str::<IdOnly>(line) else {
            continue;
        };
        if let Some(first) = seen.insert(id.clone(), i) {
            return Err(TaskError::invalid_task(format!(
                "manifest {manifest}: tasks {first} and {i} share the id {id:?}; task ids must \
                 be unique within a manifest"
            )));
        }
    }
    Ok(lines)
}

/// Parses a task for stage `S`.
pub fn parse_task<S: Stage>(value: Value) -> Result<Task<S::Params>, TaskError> {
    let task: Task<S::Params> = serde_json::from_value(value)
        .map_err(|e| TaskError::invalid_task(format!("invalid {} task: {e}", S::NAME)))?;
    if task.stage != S::NAME {
        return Err(TaskError::invalid_task(format!(
            "task {} is for stage {:?}, but this is {:?}",
            task.id,
            task.stage,
            S::NAME
        )));
    }
    validate_task_id(&task.id)?;
    Ok(task)
}

/// The status URI of task `id` under `root`.
pub fn status_uri(root: &str, id: &str) -> String {
    uri::join(root, &format!("status/{id}.json"))
}

/// Where a Batch child writes its error when it cannot write its task's status (its manifest
/// line could not be read, so the task and its status location are unknown):
/// `MANIFEST.errors/INDEX.json`, a [`TaskStatus`] whose id is the index. The driver reads it
/// for a child that ended without a status.
pub fn child_error_uri(manifest: &str, index: usize) -> String {
    format!("{manifest}.errors/{index}.json")
}

/// The fingerprint of a task of stage `S` with `params`, heading its inputs through `cache`.
pub fn fingerprint<S: Stage>(
    store: &Store,
    params: &S::Params,
    cache: &InfoCache,
) -> Result<Fingerprint, TaskError> {
    let mut uris = S::input_uris(params);
    for folder in S::input_folders(params) {
        let objects = store.list(&folder)?;
        if objects.is_empty() {
            return Err(TaskError::new(
                ErrorKind::NotFound,
                format!("input folder {folder}: no object in it"),
            ));
        }
        uris.extend(objects.into_iter().map(|o| o.uri));
    }
    let inputs = cache.identities(store, &uris)?;
    Fingerprint::new(S::NAME, S::VERSION, params, inputs)
        .map_err(|e| TaskError::internal(format!("cannot encode the parameters: {e}")))
}

/// Validates `params` and computes the fingerprint: what is decided before a task runs.
pub fn prepare<S: Stage>(
    store: &Store,
    params: &S::Params,
    cache: &InfoCache,
) -> Result<Fingerprint, TaskError> {
    S::validate(params).map_err(|e| TaskError::new(e.kind, e.message))?;
    fingerprint::<S>(store, params, cache)
}

/// The previous status of a task, if one can be read.
pub fn previous_status(store: &Store, status_uri: &str) -> Option<TaskStatus> {
    store.get_json(status_uri).ok()
}

/// Runs one task of stage `S`, writing its status; returns the status (ok or error).
///
/// The parameters are validated and the inputs' identities read first; the task is skipped
/// when its previous status says ok, its outputs exist and its fingerprint is unchanged.
/// On success, outputs the previous run of the task listed (under its status root) and this
/// one does not are removed; on failure, every object the task wrote is removed, so a
/// task's outputs appear all or none.
///
/// `Err` only when no status can be written: an unreadable task, or a storage failure
/// writing the status itself.
pub fn run_task<S: Stage>(
    value: Value,
    ctx: &Ctx,
    options: &RunOptions,
) -> Result<TaskStatus, TaskError> {
    let (value, forced_by_ref) = resolve_task_ref(&ctx.store, value)?;
    let task = parse_task::<S>(value)?;
    let root = S::status_root(&task.params);
    let status_uri = status_uri(&root, &task.id);
    let previous = previous_status(&ctx.store, &status_uri);
    let start = Utc::now();
    let clock = Instant::now();
    let mut status = TaskStatus::started(&task.id, S::NAME, &options.executor, start);

    let fp = match prepare::<S>(&ctx.store, &task.params, &InfoCache::new()) {
        Ok(fp) => fp,
        Err(e) => {
            tracing::error!(task = %task.id, kind = %e.kind, message = %e.message, "task refused");
            status.error = Some(e);
            status.end = Utc::now();
            status.duration_s = clock.elapsed().as_secs_f64();
            ctx.store.put_json(&status_uri, &status)?;
            return Ok(status);
        }
    };
    let rerun = if options.force || forced_by_ref {
        Rerun::Forced
    } else {
        match skip_decision(&ctx.store, previous.as_ref(), &fp) {
            Ok(()) => {
                tracing::info!(task = %task.id, status = %status_uri, "already done; skipping");
                let previous = previous.ok_or_else(|| TaskError::internal("no status"))?;
                return Ok(TaskStatus {
                    skipped: true,
                    ..previous
                });
            }
            Err(r) => r,
        }
    };

    let task_store = ctx.store.for_task(options.deadline);
    let task_ctx = Ctx {
        store: task_store.clone(),
        progress_mode: ctx.progress_mode,
        task_id: Some(task.id.clone()),
    };
    rss::reset_peak();
    tracing::info!(task = %task.id, stage = S::NAME, why = %rerun, "task started");
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| S::run(&task.params, &task_ctx)))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(TaskError::internal(format!("the stage panicked: {what}")))
        });
    let result = result.and_then(|out| {
        let output = serde_json::to_value(&out)
            .map_err(|e| TaskError::internal(format!("cannot serialise the output: {e}")))?;
        Ok((S::output_uris(&out), output, S::warnings(&out)))
    });
    let stats = task_store.stats();
    match result {
        Ok((outputs, output, warnings)) => {
            for w in &warnings {
                tracing::warn!(task = %task.id, "{w}");
            }
            status.warnings = warnings;
            if let Some(prev) = previous.as_ref().filter(|p| p.state == TaskState::Ok) {
                // Every input, those of its folders included.
                let inputs: Vec<String> = fp.inputs.iter().map(|i| i.uri.clone()).collect();
                remove_stale_outputs(&ctx.store, &root, &prev.outputs, &outputs, &inputs);
            }
            status.state = TaskState::Ok;
            status.outputs = outputs;
            status.output = Some(output);
            status.fingerprint = Some(fp);
        }
        Err(e) => {
            remove_written(&ctx.store, &task.id, &task_store.written());
            status.error = Some(e);
        }
    }
    status.end = Utc::now();
    status.duration_s = clock.elapsed().as_secs_f64();
    status.peak_rss_bytes = rss::peak_rss_bytes();
    status.bytes_read = stats.bytes_read;
    status.bytes_written = stats.bytes_written;
    status.requests = stats.requests;
    status.throttled = stats.throttled;
    status.s3 = task_store.s3_traffic();
    status.ran_because = Some(rerun);
    match &status.error {
        None => tracing::info!(task = %task.id, duration_s = status.duration_s, "task ok"),
        Some(e) => {
            tracing::error!(task = %task.id, kind = %e.kind, message = %e.message, "task failed")
        }
    }
    ctx.store.put_json(&status_uri, &status)?;
    Ok(status)
}

/// Removes the outputs an earlier run of a task listed that this run no longer writes (a
/// partitioning into fewer tiles), when they lie under the task's status root and are not
/// among its inputs.
pub fn remove_stale_outputs(
    store: &Store,
    root: &str,
    before: &[String],
    now: &[String],
    inputs: &[String],
) {
    let root = format!("{}/", root.trim_end_matches('/'));
    for old in before {
        if !old.starts_with(&root) || now.contains(old) || inputs.contains(old) {
            continue;
        }
        match store.delete(old) {
            Ok(()) => tracing::info!(uri = %old, "removed an output the task no longer writes"),
            Err(e) => tracing::warn!(uri = %old, error = %e, "could not remove a stale output"),
        }
    }
}

/// Removes what a failed task wrote (best effort), so that no partial result looks complete.
pub fn remove_written(store: &Store, task: &str, written: &[String]) {
    for uri in written {
        if let Err(e) = store.delete(uri) {
            tracing::warn!(task, uri = %uri, error = %e, "could not remove a failed task's output");
        }
    }
}

/// The previous status at `status_uri` if it says ok and all its outputs exist (without
/// comparing fingerprints: see [`skip_decision`] for the full rule).
pub fn finished_status(store: &Store, status_uri: &str) -> Option<TaskStatus> {
    let previous: TaskStatus = store.get_json(status_uri).ok()?;
    if previous.state != TaskState::Ok {
        return None;
    }
    for out in &previous.outputs {
        if !store.exists(out).unwrap_or(false) {
            return None;
        }
    }
    Some(previous)
}

/// Logs on standard error: JSON lines in Lambda and Batch; compact text otherwise, coloured
/// only on a terminal; errors only with `quiet` (unless `RUST_LOG` says otherwise).
pub fn init_logging(json: bool, quiet: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = if quiet { "error" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(!json && std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().without_time().try_init()
    };
}

/// What [`run_tasks`] gave: every task finished ok.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalRun {
    /// The tasks' statuses, in task order.
    pub statuses: Vec<TaskStatus>,
}

impl LocalRun {
    /// How many tasks an earlier run had finished unchanged (skipped, not run again).
    pub fn skipped(&self) -> usize {
        self.statuses.iter().filter(|s| s.skipped).count()
    }

    /// Wall time of the tasks that ran, seconds: min, median, max (zeros when none ran).
    pub fn seconds(&self) -> [f64; 3] {
        let mut d: Vec<f64> = self
            .statuses
            .iter()
            .filter(|s| !s.skipped)
            .map(|s| s.duration_s)
            .collect();
        d.sort_by(f64::total_cmp);
        match d.len() {
            0 => [0.0; 3],
            n => [d[0], d[n / 2], d[n - 1]],
        }
    }
}

/// Runs `tasks` (task JSON or manifest references) of stage `S` in this process through
/// [`run_task`], `jobs` at a time on a rayon pool (0: one per core), with one progress bar
/// named `what` on `ctx` (the tasks themselves run silent): a stage's own command line
/// running a job of many tasks. The driver's local executor adds retries and run records.
///
/// `Err` when any task failed: the number that failed and the first one's id and error
/// (its kind is the error's); every task's status is written either way.
pub fn run_tasks<S: Stage>(
    tasks: &[Value],
    ctx: &Ctx,
    options: &RunOptions,
    jobs: usize,
    what: &str,
) -> Result<LocalRun, TaskError> {
    use rayon::prelude::*;
    let progress = ctx.progress(what, tasks.len() as u64);
    let quiet = ctx.clone().with_progress(ProgressMode::Silent);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| TaskError::internal(format!("cannot start the worker pool: {e}")))?;
    let results: Vec<Result<TaskStatus, TaskError>> = pool.install(|| {
        tasks
            .par_iter()
            .with_max_len(1)
            .map(|t| {
                let s = run_task::<S>(t.clone(), &quiet, options);
                progress.inc(1);
                s
            })
            .collect()
    });
    progress.finish();
    let mut statuses = Vec::with_capacity(tasks.len());
    let mut failures = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(s) if s.state == TaskState::Ok => statuses.push(s),
            Ok(s) => failures.push((
                s.id,
                s.error.unwrap_or_else(|| TaskError::internal("failed")),
            )),
            // No status could be written: the task's id as given, else its place.
            Err(e) => {
                let id = tasks[i].get("id").and_then(Value::as_str);
                failures.push((id.map_or_else(|| format!("task {i}"), str::to_string), e));
            }
        }
    }
    if let Some((id, first)) = failures.first() {
        return Err(TaskError::new(
            first.kind,
            format!(
                "{} of {} {what} failed; {id}: {}",
                failures.len(),
                tasks.len(),
                first.message
            ),
        ));
    }
    Ok(LocalRun { statuses })
}
