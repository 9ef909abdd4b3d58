//! The `main` of every stage binary: one function, three front ends (feature `cli`).
//!
//! - `AWS_LAMBDA_RUNTIME_API` set: the `lambda_runtime` loop; each event is a task
//!   (`{id, stage, params}` or `{manifest, index}`); the response is the task's status, a
//!   failure is a Lambda error whose `errorType` is the [`ErrorKind`].
//! - `AWS_BATCH_JOB_ARRAY_INDEX` set: runs that line of the manifest named by
//!   `GEOBUTTON_MANIFEST` (or `batch --manifest URI`); exit status 0 on success.
//! - otherwise the stage's command line ([`StageCli`]); `task FILE|-` and
//!   `batch --manifest URI --index N` run task JSON from the command line.
//!
//! Only binaries need this module, and with it clap: a library or notebook user of a stage
//! crate builds it without the `cli` feature.

use std::io::Read;
use std::process::ExitCode;
#[cfg(feature = "remote")]
use std::time::Instant;

use chrono::Utc;
use clap::Parser;
use serde_json::Value;

use crate::entry::{
    Ctx, MAX_MANIFEST_BYTES, RunOptions, Stage, child_error_uri, init_logging, remove_written,
    run_task,
};
use crate::progress::ProgressMode;
use crate::rss;
use crate::store::Store;
use crate::task::{ErrorKind, TaskError, TaskStatus};

/// The command line of a stage's binary: a clap parser whose commands run on local files
/// (or any URI), next to the `task` and `batch` subcommands every stage binary has.
pub trait StageCli: Parser {
    /// The stage the binary serves as AWS Lambda handler and AWS Batch worker.
    type Stage: Stage;
    /// Runs the parsed command line. What a failed command wrote is removed.
    fn run(self, ctx: &Ctx) -> Result<(), TaskError>;
}

/// The `main` of a stage binary: chooses Lambda, Batch or the CLI from the environment.
pub fn main<C: StageCli>() -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        init_logging(true, false);
        return lambda_main::<C::Stage>();
    }
    if let Ok(index) = std::env::var("AWS_BATCH_JOB_ARRAY_INDEX") {
        init_logging(true, false);
        let Some(manifest) = std::env::var("GEOBUTTON_MANIFEST").ok() else {
            eprintln!(
                "{}: AWS_BATCH_JOB_ARRAY_INDEX is set but GEOBUTTON_MANIFEST (the task manifest URI) is not",
                <C::Stage as Stage>::NAME
            );
            return ExitCode::from(2);
        };
        let Ok(index) = index.trim().parse::<usize>() else {
            eprintln!(
                "{}: AWS_BATCH_JOB_ARRAY_INDEX={index:?} is not an index",
                <C::Stage as Stage>::NAME
            );
            return ExitCode::from(2);
        };
        return batch_main::<C::Stage>(&manifest, index, "batch");
    }
    cli_main::<C>()
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

/// The store of the environment, or the exit code of a variable it cannot take (named).
fn env_store() -> Result<Store, ExitCode> {
    Store::try_from_env().map_err(|problem| {
        eprintln!("error: {problem}");
        ExitCode::from(exit_code(ErrorKind::InvalidTask))
    })
}

fn cli_main<C: StageCli>() -> ExitCode {
    let name = <C::Stage as Stage>::NAME;
    let args: Vec<String> = std::env::args().collect();
    let ctx = match env_store() {
        Ok(store) => Ctx::new(store),
        Err(code) => return code,
    };
    if matches!(args.get(1).map(String::as_str), Some("task" | "batch")) {
        let builtin = match Builtin::try_parse_from(
            std::iter::once(name.to_string()).chain(args[1..].iter().cloned()),
        ) {
            Ok(b) => b,
            Err(e) => e.exit(),
        };
        return match builtin {
            Builtin::Batch { manifest, index } => batch_main::<C::Stage>(&manifest, index, "batch"),
            Builtin::Task { source, force } => {
                let text = if source == "-" {
                    let mut s = String::new();
                    let read = std::io::stdin()
                        .take(MAX_MANIFEST_BYTES + 1)
                        .read_to_string(&mut s);
                    if let Err(e) = read {
                        eprintln!("{}: cannot read the task from standard input: {e}", name);
                        return ExitCode::from(2);
                    }
                    if s.len() as u64 > MAX_MANIFEST_BYTES {
                        eprintln!(
                            "{}: the task on standard input is larger than {} MiB",
                            name,
                            MAX_MANIFEST_BYTES >> 20
                        );
                        return ExitCode::from(2);
                    }
                    s
                } else {
                    match ctx.store.get_capped(&source, MAX_MANIFEST_BYTES) {
                        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                        Err(e) => {
                            eprintln!("{}: task file: {e}", name);
                            return ExitCode::from(2);
                        }
                    }
                };
                let value = match serde_json::from_str::<Value>(&text) {
                    Ok(v) => v,
                    Err(e) => {
                        eprintln!("{}: task {source}: invalid JSON: {e}", name);
                        return ExitCode::from(2);
                    }
                };
                let options = RunOptions {
                    force,
                    executor: "local".to_string(),
                    deadline: None,
                };
                report(run_task::<C::Stage>(value, &ctx, &options))
            }
        };
    }
    let matches = C::command()
        .arg(
            clap::Arg::new(QUIET_ARG)
                .long("quiet")
                .short('q')
                .global(true)
                .action(clap::ArgAction::SetTrue)
                .help("Print errors only: no progress, no log lines"),
        )
        .get_matches();
    let quiet = matches.get_flag(QUIET_ARG);
    init_logging(false, quiet);
    let cli = match C::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    // A command's outputs appear all or none: what a failed command wrote is removed.
    let ctx = Ctx {
        store: ctx.store.for_task(None),
        progress_mode: if quiet {
            ProgressMode::Silent
        } else {
            ctx.progress_mode
        },
        task_id: None,
    };
    match cli.run(&ctx) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            remove_written(&ctx.store, name, &ctx.store.written());
            eprintln!("{}: error: {}", name, e.message);
            ExitCode::from(exit_code(e.kind))
        }
    }
}

const QUIET_ARG: &str = "geobutton-quiet";

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
    let ctx = match env_store() {
        Ok(store) => Ctx::new(store).with_progress(ProgressMode::Log),
        Err(code) => return code,
    };
    let value = serde_json::json!({ "manifest": manifest, "index": index });
    // `GEOBUTTON_FORCE=1`: the driver's `--force` (run even if finished unchanged).
    let force = std::env::var("GEOBUTTON_FORCE").is_ok_and(|v| v == "1");
    let options = RunOptions {
        force,
        executor: executor.to_string(),
        deadline: None,
    };
    let start = Utc::now();
    let result = run_task::<S>(value, &ctx, &options);
    if let Err(e) = &result {
        // No status could be written (the manifest line is unreadable, or the status write
        // failed): say why where the driver looks for it.
        let now = Utc::now();
        let status = TaskStatus {
            error: Some(e.clone()),
            end: now,
            duration_s: (now - start).num_milliseconds().max(0) as f64 / 1000.0,
            peak_rss_bytes: rss::peak_rss_bytes(),
            ..TaskStatus::started(&index.to_string(), S::NAME, executor, start)
        };
        let uri = child_error_uri(manifest, index);
        if let Err(w) = ctx.store.put_json(&uri, &status) {
            tracing::error!(%uri, "cannot write the child's error either: {w}");
        }
    }
    report(result)
}

#[cfg(not(feature = "remote"))]
fn lambda_main<S: Stage>() -> ExitCode {
    eprintln!(
        "{}: built without the `remote` feature, so it cannot serve AWS Lambda",
        S::NAME
    );
    ExitCode::from(2)
}

/// The task deadline for a Lambda invocation ending at `deadline_ms` (milliseconds since
/// the epoch): 10 s (or a tenth of the time left) before it.
#[cfg(feature = "remote")]
fn lambda_deadline(deadline_ms: u64) -> Option<Instant> {
    let now_ms = Utc::now().timestamp_millis().max(0) as u64;
    let left = deadline_ms.checked_sub(now_ms)?;
    let margin = (left / 10).min(10_000);
    Some(Instant::now() + std::time::Duration::from_millis(left - margin))
}

#[cfg(feature = "remote")]
fn lambda_main<S: Stage>() -> ExitCode {
    use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
    let store = match env_store() {
        Ok(store) => store,
        Err(code) => return code,
    };
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let store = store.clone();
        async move {
            let ctx = Ctx::new(store).with_progress(ProgressMode::Log);
            // Stop storage work a little before the function's own deadline, so that the
            // task can still write its error status.
            let deadline = lambda_deadline(event.context.deadline);
            let options = RunOptions {
                force: false,
                executor: "lambda".to_string(),
                deadline,
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
