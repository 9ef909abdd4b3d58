//! Running a pipeline: plan a step, write its manifest, skip what earlier runs finished,
//! submit the rest to the executor, wait, record, and go on to the next step; then the
//! results, `report.json` and the figures.
//!
//! Layout of an output location:
//! ```text
//! OUT/tasks/<step>.jsonl       manifests (one task per line)
//! OUT/tasks/run.json           the run record: steps, task records (attempts, statuses)
//! OUT/report.json              the run report (tasks, steps, cost)
//! OUT/report/timeline.png      figures (or under --png DIR)
//! OUT/report/durations.png
//! OUT/...                      the pipeline's products; status/<id>.json beside them
//! ```

use std::sync::Arc;

use chrono::{DateTime, Utc};
use cloud::{Progress, ProgressMode, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::DriverError;
use crate::exec::{Executor, StepJob, StepOutcome, TaskRecord};
use crate::pipeline::{Pipeline, Results};
use crate::plan::{Step, finished_statuses, manifest_uri, read_status, write_manifest};
use crate::report::{self, CostOptions, Report};

/// Name of the run record under `tasks/`.
pub const RUN_RECORD: &str = "tasks/run.json";
/// Name of the report.
pub const REPORT: &str = "report.json";

/// How a run is done.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Output location (directory or S3 prefix).
    pub output: String,
    /// Run every task again, even those an earlier run finished.
    pub force: bool,
    /// Progress display.
    pub progress: ProgressMode,
    /// Where the figures go (default `OUT/report`); `None` in [`RunConfig::figures`] skips them.
    pub figures: Option<String>,
    /// Cost estimate settings (memory defaults to the executor's).
    pub cost: CostOptions,
}

impl RunConfig {
    /// Defaults for `output`: resume, figures under `OUT/report`.
    pub fn new(output: &str) -> RunConfig {
        RunConfig {
            output: output.trim_end_matches('/').to_string(),
            force: false,
            progress: ProgressMode::detect(),
            figures: Some(cloud::uri::join(output, "report")),
            cost: CostOptions::default(),
        }
    }
}

/// The run record (`tasks/run.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub pipeline: String,
    pub params: Value,
    pub executor: String,
    pub output: String,
    pub start: DateTime<Utc>,
    #[serde(default)]
    pub end: Option<DateTime<Utc>>,
    /// Finished steps.
    pub steps: Vec<StepOutcome>,
    /// The step being run, if any (with the records known when it was submitted).
    #[serde(default)]
    pub running: Option<StepOutcome>,
    #[serde(default)]
    pub failed_step: Option<String>,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub report: Report,
    pub report_uri: String,
    pub results: Results,
}

fn observer(progress: Arc<Progress>) -> crate::exec::TaskObserver {
    Arc::new(move |r: &TaskRecord| {
        progress.inc(1);
        if !r.ok() {
            let why = r
                .failure()
                .map(|f| f.to_string())
                .unwrap_or_else(|| "failed".to_string());
            tracing::warn!(task = %r.id, "{why}");
        }
    })
}

/// A one-paragraph account of a failed step.
pub fn failure_summary(output: &str, outcome: &StepOutcome) -> String {
    let failed = outcome.failed();
    let total = outcome.records.len();
    let mut s = format!(
        "step {} ({}): {} of {} tasks failed; the {} other tasks' outputs and statuses are kept under {}; run the same command again to retry only the unfinished tasks.",
        outcome.step,
        outcome.stage,
        failed.len(),
        total,
        total - failed.len(),
        output
    );
    for r in failed.iter().take(10) {
        let why = r
            .failure()
            .map(|f| format!("{}: {f}", f.kind_name()))
            .or_else(|| {
                r.status
                    .as_ref()
                    .and_then(|s| s.error.as_ref())
                    .map(|e| e.to_string())
            })
            .unwrap_or_else(|| "not run".to_string());
        s.push_str(&format!(
            "\n  {} ({} attempt{}): {why} [status {}]",
            r.id,
            r.attempts.len(),
            if r.attempts.len() == 1 { "" } else { "s" },
            r.status_uri
        ));
    }
    if failed.len() > 10 {
        s.push_str(&format!("\n  ... and {} more", failed.len() - 10));
    }
    s
}

fn write_record(store: &Store, output: &str, record: &RunRecord) -> Result<(), DriverError> {
    store.put_json(&cloud::uri::join(output, RUN_RECORD), record)?;
    Ok(())
}

/// Writes `report.json` (and the figures); returns the report with its figure URIs.
pub fn write_report(
    store: &Store,
    config: &RunConfig,
    record: &RunRecord,
    results: Option<Results>,
) -> Result<Report, DriverError> {
    let mut report = report::build(
        &record.pipeline,
        &record.executor,
        &record.output,
        record.start,
        record.end.unwrap_or_else(Utc::now),
        &record.steps,
        record.failed_step.as_deref(),
        &config.cost,
    );
    report.results = results;
    if let Some(dir) = &config.figures {
        report.figures = crate::plot::write_figures(store, &report, dir)?;
    }
    store.put_json(&cloud::uri::join(&config.output, REPORT), &report)?;
    Ok(report)
}

/// Runs one step: manifest, resume check, submit, wait.
pub fn run_step(
    store: &Store,
    executor: &dyn Executor,
    config: &RunConfig,
    step: Step,
    record: &mut RunRecord,
) -> Result<StepOutcome, DriverError> {
    let manifest = manifest_uri(&config.output, &step.name, None);
    write_manifest(store, &manifest, &step.tasks)?;
    let finished = if config.force {
        vec![None; step.tasks.len()]
    } else {
        finished_statuses(store, &step.tasks)
    };
    let records: Vec<TaskRecord> = step
        .tasks
        .iter()
        .enumerate()
        .zip(finished)
        .map(|((i, t), done)| {
            let mut r = TaskRecord::new(i, t);
            if let Some(s) = done {
                r.skipped = true;
                r.status = Some(s);
            }
            r
        })
        .collect();
    let skipped = records.iter().filter(|r| r.skipped).count();
    tracing::info!(
        step = %step.name,
        stage = %step.stage,
        tasks = step.tasks.len(),
        skipped,
        executor = executor.name(),
        "running step"
    );
    let now = Utc::now();
    record.running = Some(StepOutcome {
        step: step.name.clone(),
        stage: step.stage,
        manifest: manifest.clone(),
        executor: executor.name().to_string(),
        start: now,
        end: now,
        records: records.clone(),
    });
    write_record(store, &config.output, record)?;
    let progress = Arc::new(Progress::new(
        config.progress,
        &format!("{} tasks", step.name),
        (step.tasks.len() - skipped) as u64,
    ));
    let job = StepJob {
        step,
        manifest,
        output: config.output.clone(),
        records,
    };
    let outcome = executor
        .submit(job, store, observer(progress.clone()))?
        .wait()?;
    progress.finish();
    record.running = None;
    Ok(outcome)
}

/// Runs `pipeline` with `executor`, writing everything under `config.output`.
///
/// A step whose tasks fail (after retries) ends the run with [`DriverError::StepFailed`]
/// once its other tasks have finished; the report and run record are written either way.
pub fn run_pipeline(
    pipeline: &mut dyn Pipeline,
    executor: &dyn Executor,
    store: &Store,
    config: &RunConfig,
) -> Result<RunSummary, DriverError> {
    let mut config = config.clone();
    if let Some(m) = executor.memory_mb() {
        config.cost.memory_mb = m;
    }
    if let Some(v) = executor.vcpus() {
        config.cost.vcpus = v;
    }
    let mut record = RunRecord {
        pipeline: pipeline.name().to_string(),
        params: pipeline.describe(),
        executor: executor.name().to_string(),
        output: config.output.clone(),
        start: Utc::now(),
        end: None,
        steps: Vec::new(),
        running: None,
        failed_step: None,
    };
    loop {
        let step = pipeline
            .plan_next(store, &record.steps)
            .map_err(|e| match e {
                DriverError::Plan { .. } => e,
                other => DriverError::Invalid(format!("planning {}: {other}", pipeline.name())),
            })?;
        let Some(step) = step else { break };
        let outcome = run_step(store, executor, &config, step, &mut record)?;
        let ok = outcome.all_ok();
        let summary = (!ok).then(|| failure_summary(&config.output, &outcome));
        let (name, failed, total) = (
            outcome.step.clone(),
            outcome.failed().len(),
            outcome.records.len(),
        );
        record.steps.push(outcome);
        if let Some(summary) = summary {
            record.failed_step = Some(name.clone());
            record.end = Some(Utc::now());
            write_record(store, &config.output, &record)?;
            if let Err(e) = write_report(store, &config, &record, None) {
                tracing::warn!("could not write the report of the failed run: {e}");
            }
            return Err(DriverError::StepFailed {
                step: name,
                failed,
                total,
                summary,
            });
        }
        write_record(store, &config.output, &record)?;
    }
    let results = pipeline.results(store, &record.steps)?;
    record.end = Some(Utc::now());
    write_record(store, &config.output, &record)?;
    let report = write_report(store, &config, &record, Some(results.clone()))?;
    Ok(RunSummary {
        report,
        report_uri: cloud::uri::join(&config.output, REPORT),
        results,
    })
}

/// Reads the run record of `output`.
pub fn read_record(store: &Store, output: &str) -> Result<RunRecord, DriverError> {
    let uri = cloud::uri::join(output, RUN_RECORD);
    store.get_json(&uri).map_err(|e| {
        if e.is_not_found() {
            DriverError::Invalid(format!("{output} holds no geobutton run ({uri} not found)"))
        } else {
            DriverError::Store(e)
        }
    })
}

/// Per-step task states of a run, from its status objects (what `geobutton status` shows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    pub step: String,
    pub stage: String,
    pub tasks: usize,
    pub ok: usize,
    pub error: usize,
    pub pending: usize,
    /// Failed tasks and their errors.
    pub errors: Vec<(String, String)>,
}

/// Reads the status object of every task of every recorded step.
pub fn status(store: &Store, output: &str) -> Result<(RunRecord, Vec<StepState>), DriverError> {
    let record = read_record(store, output)?;
    let mut out = Vec::new();
    for st in record.steps.iter().chain(record.running.iter()) {
        let statuses: Vec<_> = {
            use rayon::prelude::*;
            st.records
                .par_iter()
                .map(|r| read_status(store, &r.status_uri))
                .collect()
        };
        let mut s = StepState {
            step: st.step.clone(),
            stage: st.stage.name().to_string(),
            tasks: st.records.len(),
            ok: 0,
            error: 0,
            pending: 0,
            errors: Vec::new(),
        };
        for (r, status) in st.records.iter().zip(statuses) {
            match status {
                Some(x) if x.state == cloud::TaskState::Ok => s.ok += 1,
                Some(x) => {
                    s.error += 1;
                    s.errors.push((
                        r.id.clone(),
                        x.error.map(|e| e.to_string()).unwrap_or_default(),
                    ));
                }
                None => s.pending += 1,
            }
        }
        out.push(s);
    }
    Ok((record, out))
}

/// Rebuilds `report.json` and the figures from the run record and the status objects.
pub fn regenerate_report(
    store: &Store,
    output: &str,
    figures: Option<String>,
) -> Result<Report, DriverError> {
    let mut record = read_record(store, output)?;
    if let Some(r) = record.running.take() {
        record.steps.push(r);
    }
    for st in &mut record.steps {
        for r in &mut st.records {
            if let Some(s) = read_status(store, &r.status_uri) {
                r.status = Some(s);
            }
        }
    }
    let previous: Option<Report> = store.get_json(&cloud::uri::join(output, REPORT)).ok();
    let mut config = RunConfig::new(output);
    config.figures = figures;
    if let Some(p) = &previous {
        config.cost.memory_mb = p.cost.memory_mb;
        config.cost.vcpus = p.cost.vcpus;
        config.cost.lambda_architecture = p.cost.lambda_architecture.clone();
    }
    write_report(store, &config, &record, previous.and_then(|p| p.results))
}
