//! The entry adapter every stage binary uses: one `main`, three front ends.
//!
//! - `AWS_LAMBDA_RUNTIME_API` set: the `lambda_runtime` loop; each event is a task
//!   (`{id, stage, params}` or `{manifest, index}`); the response is the task's status, a
//!   failure is a Lambda error whose `errorType` is the [`ErrorKind`].
//! - `AWS_BATCH_JOB_ARRAY_INDEX` set: runs that line of the manifest named by
//!   `GEOBUTTON_MANIFEST` (or `batch --manifest URI`); exit status 0 on success.
//! - otherwise the stage's clap CLI; `task FILE|-` and `batch --manifest URI --index N`
//!   run task JSON from the command line.
//!
//! Every task writes `status/<id>.json` under its stage's status root; a task whose status
//! says ok and whose outputs all exist is skipped (resume).

use std::io::Read;
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::time::Instant;

use chrono::Utc;
use clap::{CommandFactory, FromArgMatches, Parser};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::progress::{Progress, ProgressMode};
use crate::rss;
use crate::store::Store;
use crate::task::{
    ErrorKind, ManifestRef, Task, TaskError, TaskState, TaskStatus, validate_task_id,
};
use crate::uri;

/// A stage of a pipeline: typed parameters in, a typed output record out.
pub trait Stage: 'static {
    /// The stage name carried by tasks (also the binary name).
    const NAME: &'static str;
    /// Task parameters; use `#[serde(deny_unknown_fields)]`.
    type Params: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What a successful task returns (stored in its status).
    type Output: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The command-line interface of the binary.
    type Cli: Parser;

    /// The location under which `status/<id>.json` is written (the task's output root).
    fn status_root(params: &Self::Params) -> String;
    /// Does the work of one task.
    fn run(params: &Self::Params, ctx: &Ctx) -> Result<Self::Output, TaskError>;
    /// The objects a finished task wrote (checked for existence before skipping it).
    fn output_uris(output: &Self::Output) -> Vec<String>;
    /// Runs the command line.
    fn cli(cli: Self::Cli, ctx: &Ctx) -> Result<(), TaskError>;
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

    /// Starts a progress report of `total` units of `what`.
    pub fn progress(&self, what: &str, total: u64) -> Progress {
        Progress::new(self.progress_mode, what, total)
    }
}

/// Options of [`run_task`].
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run even if a previous ok status and its outputs exist.
    pub force: bool,
    /// Recorded in the status as where the task ran.
    pub executor: String,
}

/// Resolves a task value: a task, or a reference to a line of a manifest.
pub fn resolve_task(store: &Store, value: Value) -> Result<Value, TaskError> {
    let is_ref = value
        .as_object()
        .is_some_and(|o| o.contains_key("manifest"));
    if !is_ref {
        return Ok(value);
    }
    let r: ManifestRef = serde_json::from_value(value)
        .map_err(|e| TaskError::invalid_task(format!("invalid manifest reference: {e}")))?;
    let bytes = store.get(&r.manifest)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        TaskError::invalid_task(format!("manifest {} is not UTF-8 text", r.manifest))
    })?;
    let line = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .nth(r.index)
        .ok_or_else(|| {
            TaskError::invalid_task(format!(
                "manifest {} has no task at index {}",
                r.manifest, r.index
            ))
        })?;
    serde_json::from_str(line).map_err(|e| {
        TaskError::invalid_task(format!(
            "manifest {} line {}: invalid JSON: {e}",
            r.manifest, r.index
        ))
    })
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

/// Runs one task of stage `S`, writing its status; returns the status (ok or error).
///
/// `Err` only when no status can be written: an invalid task, or a storage failure writing
/// the status itself.
pub fn run_task<S: Stage>(
    value: Value,
    ctx: &Ctx,
    options: &RunOptions,
) -> Result<TaskStatus, TaskError> {
    let value = resolve_task(&ctx.store, value)?;
    let task = parse_task::<S>(value)?;
    let status_uri = status_uri(&S::status_root(&task.params), &task.id);

    if !options.force
        && let Some(previous) = finished_status(&ctx.store, &status_uri)
    {
        tracing::info!(task = %task.id, status = %status_uri, "already done; skipping");
        return Ok(TaskStatus {
            skipped: true,
            ..previous
        });
    }

    let task_store = ctx.store.with_own_counters();
    let task_ctx = Ctx {
        store: task_store.clone(),
        progress_mode: ctx.progress_mode,
        task_id: Some(task.id.clone()),
    };
    rss::reset_peak();
    let start = Utc::now();
    let clock = Instant::now();
    tracing::info!(task = %task.id, stage = S::NAME, "task started");
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| S::run(&task.params, &task_ctx)))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(TaskError::internal(format!("the stage panicked: {what}")))
        });
    let stats = task_store.stats();
    let (state, error, outputs, output) = match result {
        Ok(out) => {
            let outputs = S::output_uris(&out);
            let output = serde_json::to_value(&out)
                .map_err(|e| TaskError::internal(format!("cannot serialise the output: {e}")))?;
            (TaskState::Ok, None, outputs, Some(output))
        }
        Err(e) => (TaskState::Error, Some(e), Vec::new(), None),
    };
    let status = TaskStatus {
        id: task.id.clone(),
        stage: S::NAME.to_string(),
        state,
        error,
        start,
        end: Utc::now(),
        duration_s: clock.elapsed().as_secs_f64(),
        peak_rss_bytes: rss::peak_rss_bytes(),
        outputs,
        output,
        bytes_read: stats.bytes_read,
        bytes_written: stats.bytes_written,
        requests: stats.requests,
        executor: options.executor.clone(),
        skipped: false,
    };
    match &status.error {
        None => tracing::info!(task = %task.id, duration_s = status.duration_s, "task ok"),
        Some(e) => {
            tracing::error!(task = %task.id, kind = %e.kind, message = %e.message, "task failed")
        }
    }
    ctx.store.put_json(&status_uri, &status)?;
    Ok(status)
}

/// The previous status at `status_uri` if it says ok and all its outputs exist.
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

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().without_time().try_init()
    };
}

/// The `main` of a stage binary: chooses Lambda, Batch or the CLI from the environment.
pub fn main<S: Stage>() -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        init_logging(true);
        return lambda_main::<S>();
    }
    if let Ok(index) = std::env::var("AWS_BATCH_JOB_ARRAY_INDEX") {
        init_logging(true);
        let Some(manifest) = std::env::var("GEOBUTTON_MANIFEST").ok() else {
            eprintln!(
                "{}: AWS_BATCH_JOB_ARRAY_INDEX is set but GEOBUTTON_MANIFEST (the task manifest URI) is not",
                S::NAME
            );
            return ExitCode::from(2);
        };
        let Ok(index) = index.trim().parse::<usize>() else {
            eprintln!(
                "{}: AWS_BATCH_JOB_ARRAY_INDEX={index:?} is not an index",
                S::NAME
            );
            return ExitCode::from(2);
        };
        return batch_main::<S>(&manifest, index, "batch");
    }
    init_logging(false);
    cli_main::<S>()
}

/// `task` and `batch` subcommands every stage binary accepts before its own.
#[derive(Parser, Debug)]
enum Builtin {
    /// Runs one task given as JSON (a file, a URI, or `-` for standard input).
    Task {
        /// Task JSON: `{id, stage, params}` or `{manifest, index}`.
        source: String,
        /// Run even when a previous run finished it.
        #[arg(long)]
        force: bool,
    },
    /// Runs line INDEX of a task manifest (what an AWS Batch array child does).
    Batch {
        /// JSON-lines manifest URI.
        #[arg(long)]
        manifest: String,
        /// Task index (default: $AWS_BATCH_JOB_ARRAY_INDEX).
        #[arg(long)]
        index: usize,
    },
}

fn cli_main<S: Stage>() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let ctx = Ctx::new(Store::from_env());
    if matches!(args.get(1).map(String::as_str), Some("task" | "batch")) {
        let builtin = match Builtin::try_parse_from(
            std::iter::once(S::NAME.to_string()).chain(args[1..].iter().cloned()),
        ) {
            Ok(b) => b,
            Err(e) => e.exit(),
        };
        return match builtin {
            Builtin::Batch { manifest, index } => batch_main::<S>(&manifest, index, "batch"),
            Builtin::Task { source, force } => {
                let text = if source == "-" {
                    let mut s = String::new();
                    if let Err(e) = std::io::stdin().read_to_string(&mut s) {
                        eprintln!("{}: cannot read the task from standard input: {e}", S::NAME);
                        return ExitCode::from(2);
                    }
                    s
                } else {
                    match ctx.store.get(&source) {
                        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                        Err(e) => {
                            eprintln!("{}: {e}", S::NAME);
                            return ExitCode::from(2);
                        }
                    }
                };
                let value = match serde_json::from_str::<Value>(&text) {
                    Ok(v) => v,
                    Err(e) => {
                        eprintln!("{}: task {source}: invalid JSON: {e}", S::NAME);
                        return ExitCode::from(2);
                    }
                };
                let options = RunOptions {
                    force,
                    executor: "local".to_string(),
                };
                report(run_task::<S>(value, &ctx, &options))
            }
        };
    }
    let matches = S::Cli::command().get_matches();
    let cli = match S::Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match S::cli(cli, &ctx) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: error: {}", S::NAME, e.message);
            ExitCode::from(exit_code(e.kind))
        }
    }
}

fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidTask => 2,
        _ => 1,
    }
}

/// Prints a task's status as JSON on standard output and picks the exit status.
fn report(result: Result<TaskStatus, TaskError>) -> ExitCode {
    match result {
        Ok(status) => {
            match serde_json::to_string(&status) {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("cannot print the status: {e}"),
            }
            match &status.error {
                None => ExitCode::SUCCESS,
                Some(e) => {
                    eprintln!("task {} failed: {e}", status.id);
                    ExitCode::from(exit_code(e.kind))
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit_code(e.kind))
        }
    }
}

fn batch_main<S: Stage>(manifest: &str, index: usize, executor: &str) -> ExitCode {
    let ctx = Ctx {
        progress_mode: ProgressMode::Log,
        ..Ctx::new(Store::from_env())
    };
    let value = serde_json::json!({ "manifest": manifest, "index": index });
    let options = RunOptions {
        force: false,
        executor: executor.to_string(),
    };
    report(run_task::<S>(value, &ctx, &options))
}

#[cfg(not(feature = "remote"))]
fn lambda_main<S: Stage>() -> ExitCode {
    eprintln!(
        "{}: built without the `remote` feature, so it cannot serve AWS Lambda",
        S::NAME
    );
    ExitCode::from(2)
}

#[cfg(feature = "remote")]
fn lambda_main<S: Stage>() -> ExitCode {
    use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
    let store = Store::from_env();
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let store = store.clone();
        async move {
            let ctx = Ctx {
                store,
                progress_mode: ProgressMode::Log,
                task_id: None,
            };
            let options = RunOptions {
                force: false,
                executor: "lambda".to_string(),
            };
            let payload = event.payload;
            let result =
                tokio::task::spawn_blocking(move || run_task::<S>(payload, &ctx, &options))
                    .await
                    .unwrap_or_else(|e| {
                        Err(TaskError::internal(format!("task thread failed: {e}")))
                    });
            let failure = match result {
                Ok(status) => match status.error.clone() {
                    None => {
                        return serde_json::to_value(&status).map_err(|e| Diagnostic {
                            error_type: ErrorKind::Internal.as_str().to_string(),
                            error_message: format!("cannot serialise the status: {e}"),
                        });
                    }
                    Some(e) => e,
                },
                Err(e) => e,
            };
            Err(Diagnostic {
                error_type: failure.kind.as_str().to_string(),
                error_message: failure.message,
            })
        }
    });
    match crate::runtime::io_runtime().block_on(lambda_runtime::run(handler)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("the Lambda runtime loop ended: {e}");
            ExitCode::FAILURE
        }
    }
}
