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
use cloud::{Progress, ProgressMode, Rerun, Store, TaskStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::DriverError;
use crate::exec::{Executor, Failure, StepJob, StepOutcome, TaskRecord};
use crate::pipeline::{Pipeline, Results};
use crate::plan::{Step, manifest_uri, read_status, write_manifest};
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
    /// What a dry run predicts beyond its task list (wall time at N Lambdas).
    pub forecast: ForecastOptions,
}

/// Settings of a dry run's prediction of wall time and cost on Lambda.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastOptions {
    /// Concurrent functions to predict for (`None`: no prediction).
    pub lambdas: Option<usize>,
    /// Seconds each invocation adds to its task's wall time (round trip, a share of cold
    /// starts); not billed.
    pub overhead_s: f64,
    /// Task seconds by step, measured elsewhere (e.g. one seed-size task timed on its own),
    /// in place of the plan's estimates.
    pub task_seconds: std::collections::BTreeMap<String, f64>,
}

impl Default for ForecastOptions {
    /// No prediction; 0.2 s per invocation when asked for one (a warm invoke's round trip
    /// of tens of milliseconds, plus a Rust function's cold start of ~0.1–0.3 s on a share
    /// of them).
    fn default() -> ForecastOptions {
        ForecastOptions {
            lambdas: None,
            overhead_s: 0.2,
            task_seconds: Default::default(),
        }
    }
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
            forecast: ForecastOptions::default(),
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
                .map(Failure::describe)
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
            .map(Failure::describe)
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

/// What the plan decides for one task.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Finished by an earlier run with the same fingerprint: its status.
    Skip(Box<TaskStatus>),
    /// To run, and why.
    Run(Rerun),
}

/// Validates every task of `step` and decides which run: a task is skipped only when its
/// status says ok, its outputs exist and its fingerprint (parameters, algorithm version,
/// input identities) is unchanged. Invalid parameters and missing inputs are errors here,
/// before anything is submitted.
pub fn decide_step(store: &Store, step: &Step, force: bool) -> Result<Vec<Decision>, DriverError> {
    use rayon::prelude::*;
    let cache = cloud::InfoCache::new();
    step.tasks
        .par_iter()
        .map(|t| {
            let fp = t.stage.prepare(&t.task, store, &cache).map_err(|e| {
                DriverError::Invalid(format!(
                    "step {} task {}: {}: {}",
                    step.name, t.id, e.kind, e.message
                ))
            })?;
            if force {
                return Ok(Decision::Run(Rerun::Forced));
            }
            let previous = cloud::entry::previous_status(store, &t.status_uri);
            Ok(
                match cloud::fingerprint::skip_decision(store, previous.as_ref(), &fp) {
                    Ok(()) => match previous {
                        Some(p) => Decision::Skip(Box::new(p)),
                        None => Decision::Run(Rerun::New),
                    },
                    Err(why) => Decision::Run(why),
                },
            )
        })
        .collect()
}

/// Counts of the reasons tasks run, by [`Rerun::summary`] (e.g. `parameters changed: 4`).
pub fn rerun_counts<'a>(
    reasons: impl IntoIterator<Item = &'a Rerun>,
) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for r in reasons {
        *counts.entry(r.summary().to_string()).or_insert(0) += 1;
    }
    counts
}

/// Runs one step: validation and resume decisions, manifest, submit, wait.
pub fn run_step(
    store: &Store,
    executor: &dyn Executor,
    config: &RunConfig,
    step: Step,
    record: &mut RunRecord,
) -> Result<StepOutcome, DriverError> {
    let executor = crate::exec::for_step(executor, &step.name);
    let decisions = decide_step(store, &step, config.force)?;
    let manifest = manifest_uri(&config.output, &step.name, None);
    write_manifest(store, &manifest, &step.tasks)?;
    let records: Vec<TaskRecord> = step
        .tasks
        .iter()
        .enumerate()
        .zip(decisions)
        .map(|((i, t), decision)| {
            let mut r = TaskRecord::new(i, t);
            match decision {
                Decision::Skip(s) => {
                    r.skipped = true;
                    r.status = Some(*s);
                }
                Decision::Run(why) => r.ran_because = Some(why),
            }
            r
        })
        .collect();
    let reruns: Vec<String> = rerun_counts(
        records
            .iter()
            .filter_map(|r| r.ran_because.as_ref())
            .filter(|w| !matches!(w, Rerun::New)),
    )
    .into_iter()
    .map(|(why, n)| format!("{n} {why}"))
    .collect();
    if !reruns.is_empty() {
        tracing::info!(step = %step.name, "rerun: {}", reruns.join(", "));
    }
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
        in_flight: None,
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
        force: config.force,
    };
    let outcome = executor
        .submit(job, store, observer(progress.clone()))?
        .wait()?;
    progress.finish();
    record.running = None;
    Ok(outcome)
}

/// Refuses an executor naming steps `pipeline` does not have (`--executor tile=lambda` for
/// the water pipeline's `tiles`), before anything runs.
pub fn check_executor_steps(
    pipeline: &dyn Pipeline,
    executor: &dyn Executor,
) -> Result<(), DriverError> {
    let known = pipeline.steps();
    for step in executor.steps_named() {
        if !known.contains(&step) {
            return Err(DriverError::Invalid(format!(
                "the executor names step {step:?}, which the {} pipeline does not have (its \
                 steps: {})",
                pipeline.name(),
                known.join(", ")
            )));
        }
    }
    Ok(())
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
    config.cost.region = executor.region();
    check_executor_steps(pipeline, executor)?;
    pipeline.validate()?;
    // The previous run in this location, if any: what it wrote that this run no longer
    // plans is removed once this run has finished.
    let previous = read_record(store, &config.output).ok();
    let mut record = RunRecord {
        pipeline: pipeline.name().to_string(),
        params: pipeline.describe(),
        executor: executor.describe(),
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
    let mut results = pipeline.results(store, &record.steps)?;
    // Only an earlier run of the same pipeline: another pipeline's products in the same
    // location are not this run's to remove.
    if let Some(previous) = previous.as_ref().filter(|p| p.pipeline == record.pipeline) {
        remove_dropped_tasks(store, &config.output, previous, &record);
    }
    record.end = Some(Utc::now());
    let stac = crate::stac::write_catalog(
        store,
        &config.output,
        &record.pipeline,
        &results.products,
        (record.start, record.end.unwrap_or_else(Utc::now)),
    )?;
    results.products.push(crate::pipeline::Product::new(
        &stac,
        "STAC collection of this run's products (pystac, QGIS)",
    ));
    write_record(store, &config.output, &record)?;
    let report = write_report(store, &config, &record, Some(results.clone()))?;
    Ok(RunSummary {
        report,
        report_uri: cloud::uri::join(&config.output, REPORT),
        results,
    })
}

/// Removes the outputs and statuses of tasks an earlier run in `output` had and this
/// finished run no longer plans (a partition tile that no longer exists, a product no longer
/// asked for), so that the output location holds only this run's products. Only objects
/// under `output` are touched.
pub fn remove_dropped_tasks(store: &Store, output: &str, previous: &RunRecord, now: &RunRecord) {
    let root = format!("{}/", output.trim_end_matches('/'));
    let kept: std::collections::HashSet<(&str, &str)> = now
        .steps
        .iter()
        .flat_map(|s| {
            s.records
                .iter()
                .map(move |r| (s.step.as_str(), r.status_uri.as_str()))
        })
        .collect();
    let kept_outputs: std::collections::HashSet<&str> = now
        .steps
        .iter()
        .flat_map(|s| s.records.iter())
        .filter_map(|r| r.status.as_ref())
        .flat_map(|s| s.outputs.iter().map(String::as_str))
        .collect();
    for st in previous.steps.iter().chain(previous.running.iter()) {
        for r in &st.records {
            if kept.contains(&(st.step.as_str(), r.status_uri.as_str())) {
                continue;
            }
            let status = read_status(store, &r.status_uri).or_else(|| r.status.clone());
            let outputs = status.map(|s| s.outputs).unwrap_or_default();
            for uri in outputs.iter().chain(std::iter::once(&r.status_uri)) {
                if !uri.starts_with(&root) || kept_outputs.contains(uri.as_str()) {
                    continue;
                }
                match store.delete(uri) {
                    Ok(()) => {
                        tracing::info!(task = %r.id, %uri, "removed what a dropped task wrote")
                    }
                    Err(e) => tracing::warn!(%uri, error = %e, "could not remove a stale output"),
                }
            }
        }
    }
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
        config.cost.region = p.cost.storage.compute_region.clone();
    }
    write_report(store, &config, &record, previous.and_then(|p| p.results))
}

/// One task of a dry-run plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedTask {
    pub id: String,
    /// `run` or `skip`.
    pub action: String,
    /// Why it runs (`new`, `parameters changed`, `input changed: URI`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The objects it reads.
    pub inputs: Vec<String>,
    /// Its status object (its outputs are written beside it).
    pub status: String,
    /// The outputs an earlier run of the task wrote, when there was one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    /// Estimated wall time of the task, seconds: the figure given for its step, else an
    /// earlier run's, else the mean of its step's tasks an earlier run timed, else a
    /// typical figure of its stage.
    pub estimated_s: f64,
    /// S3 requests (GET class, PUT class) and bytes read, from an earlier run of the task
    /// or the mean of its step's (`None`: no earlier figures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<TaskTraffic>,
}

/// Storage traffic of one task, as an earlier run measured it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskTraffic {
    pub get_class: f64,
    pub put_class: f64,
    pub bytes_read: f64,
}

impl TaskTraffic {
    fn of(status: &cloud::TaskStatus) -> TaskTraffic {
        let s3 = |f: fn(&cloud::S3Traffic) -> u64| status.s3.iter().map(f).sum::<u64>() as f64;
        TaskTraffic {
            get_class: s3(|t| t.get_class),
            put_class: s3(|t| t.put_class),
            bytes_read: status.bytes_read as f64,
        }
    }

    fn mean(all: &[TaskTraffic]) -> Option<TaskTraffic> {
        let n = all.len() as f64;
        (!all.is_empty()).then(|| TaskTraffic {
            get_class: all.iter().map(|t| t.get_class).sum::<f64>() / n,
            put_class: all.iter().map(|t| t.put_class).sum::<f64>() / n,
            bytes_read: all.iter().map(|t| t.bytes_read).sum::<f64>() / n,
        })
    }
}

/// A dry run's prediction for its tasks to run on `lambdas` concurrent functions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    pub lambdas: usize,
    /// Seconds each invocation adds to its task's wall time.
    pub overhead_s: f64,
    /// Wall time by planned step (tasks to run, longest first, each to the function free
    /// first), seconds.
    pub steps: Vec<(String, usize, f64)>,
    /// The steps one after the other, seconds.
    pub wall_s: f64,
    /// Billed Lambda GB-seconds (task time × memory).
    pub gb_s: f64,
    /// Lambda compute and requests, USD.
    pub lambda_usd: f64,
    /// S3 requests of the tasks (earlier runs' counts; tasks without one count none).
    pub s3_get_class: u64,
    pub s3_put_class: u64,
    pub s3_usd: f64,
    /// Bytes the tasks read (earlier runs' counts), and that over the wall time, bytes/s.
    pub bytes_read: u64,
    pub read_rate: f64,
    /// Lambda and S3, USD.
    pub usd: f64,
    /// Whether later steps are left out (planned only once this one has run).
    pub partial: bool,
}

/// Wall time of `tasks` (seconds each) on `slots` workers, longest first, each to the worker
/// free first (LPT), with `overhead` seconds added to each task.
pub fn makespan(tasks: &[f64], slots: usize, overhead: f64) -> f64 {
    let slots = slots.max(1);
    let mut sorted: Vec<f64> = tasks.iter().map(|t| t + overhead).collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    if sorted.len() <= slots {
        return sorted.first().copied().unwrap_or(0.0);
    }
    // A min-heap of the workers' finishing times (in nanoseconds, for a total order).
    let mut free: std::collections::BinaryHeap<std::cmp::Reverse<u64>> =
        (0..slots).map(|_| std::cmp::Reverse(0)).collect();
    let mut end = 0u64;
    for t in sorted {
        let std::cmp::Reverse(at) = free.pop().unwrap_or(std::cmp::Reverse(0));
        let done = at + (t * 1e9).round() as u64;
        end = end.max(done);
        free.push(std::cmp::Reverse(done));
    }
    end as f64 / 1e9
}

/// One step of a dry-run plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub step: String,
    pub stage: String,
    pub to_run: usize,
    pub to_skip: usize,
    /// Counts of the reasons tasks run.
    pub why: std::collections::BTreeMap<String, usize>,
    pub tasks: Vec<PlannedTask>,
}

/// What `geobutton run … --dry-run` prints: the tasks each step would run or skip and why,
/// and what running them would cost. Nothing is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub pipeline: String,
    pub executor: String,
    pub output: String,
    pub steps: Vec<PlannedStep>,
    /// Why planning stopped before the last step (later steps depend on outputs of a step
    /// that has tasks to run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_planned: Option<String>,
    /// Σ of the estimated task seconds of the tasks to run.
    pub task_seconds: f64,
    /// Tasks to run whose time comes from an earlier run (the others use typical figures).
    pub estimated_from_earlier_runs: usize,
    pub memory_mb: u32,
    pub vcpus: f32,
    /// Estimated Lambda cost of the tasks to run, USD (GB-seconds + requests).
    pub lambda_usd: f64,
    /// Estimated Batch/Fargate cost, USD (vCPU-hours + GB-hours).
    pub batch_usd: f64,
    pub prices: String,
    /// The AWS region the executor runs tasks in (`None`: local, or not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Buckets in other regions than the executor's that the tasks to run read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cross_region: Vec<CrossRegionRead>,
    /// Wall time and cost at N Lambdas (`--lambdas N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<Forecast>,
}

/// Reads of one bucket from another region, as a dry run foresees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossRegionRead {
    pub bucket: String,
    /// The bucket's region.
    pub region: String,
    /// Tasks to run that read it.
    pub tasks: usize,
    /// Bytes they read: an earlier run's figures where there is one, else the whole size
    /// of the objects (an upper bound for windowed reads).
    pub bytes: u64,
    /// Whether the requester pays the transfer (signed requests); unsigned reads of public
    /// open-data buckets are paid by their owner.
    pub billed: bool,
    /// Transfer cost, USD (0 when not billed).
    pub usd: f64,
}

impl Plan {
    /// A few lines for the terminal.
    pub fn summary_text(&self) -> String {
        let mut s = format!(
            "dry run of the {} pipeline ({} executor) into {}: nothing written\n",
            self.pipeline, self.executor, self.output
        );
        for st in &self.steps {
            s.push_str(&format!(
                "  {:<10} {:>5} tasks: {:>5} to run, {:>5} to skip\n",
                st.step,
                st.tasks.len(),
                st.to_run,
                st.to_skip
            ));
            for (why, n) in &st.why {
                s.push_str(&format!("      {n} run: {why}\n"));
            }
            for t in st.tasks.iter().filter(|t| t.action == "run").take(20) {
                s.push_str(&format!(
                    "      run  {} ({}; ~{:.1} s; {} input(s))\n",
                    t.id,
                    t.why.as_deref().unwrap_or("new"),
                    t.estimated_s,
                    t.inputs.len()
                ));
            }
            if st.to_run > 20 {
                s.push_str(&format!("      ... and {} more\n", st.to_run - 20));
            }
        }
        if let Some(n) = &self.not_planned {
            s.push_str(&format!("  later steps: {n}\n"));
        }
        for c in &self.cross_region {
            s.push_str(&format!(
                "  across regions: {} task(s) in {} read s3://{} in {}: up to {:.3} GB, {}; slower than in-region reads\n",
                c.tasks,
                self.region.as_deref().unwrap_or("?"),
                c.bucket,
                c.region,
                c.bytes as f64 / 1e9,
                if c.billed {
                    format!("${:.6} of inter-region transfer", c.usd)
                } else {
                    "no transfer charge (open-data bucket, its owner pays)".to_string()
                }
            ));
        }
        s.push_str(&format!(
            "  estimate for the tasks to run: {:.1} task-seconds ({} from earlier runs); Lambda {} MB ${:.6}; Batch/Fargate {} vCPU ${:.6} ({})\n",
            self.task_seconds,
            self.estimated_from_earlier_runs,
            self.memory_mb,
            self.lambda_usd,
            self.vcpus,
            self.batch_usd,
            self.prices
        ));
        if let Some(f) = &self.forecast {
            s.push_str(&format!(
                "  at {} Lambdas ({:.2} s per invocation): wall {:.1} s{}; {:.0} GB-s, Lambda ${:.4}, S3 {} GET + {} PUT requests ${:.4}, ${:.4} in all; {:.3} GB read ({:.2} GB/s)\n",
                f.lambdas,
                f.overhead_s,
                f.wall_s,
                if f.partial { " for the steps planned" } else { "" },
                f.gb_s,
                f.lambda_usd,
                f.s3_get_class,
                f.s3_put_class,
                f.s3_usd,
                f.usd,
                f.bytes_read as f64 / 1e9,
                f.read_rate / 1e9
            ));
            for (step, n, wall) in &f.steps {
                s.push_str(&format!("      {step:<10} {n:>6} tasks {wall:>9.1} s\n"));
            }
        }
        s
    }
}

/// Plans `pipeline` as [`run_pipeline`] would run it, reading statuses and input identities
/// but writing nothing: every step whose tasks are all finished is followed by the next;
/// planning stops at the first step with tasks to run (the steps after it are planned from
/// its outputs).
pub fn plan_pipeline(
    pipeline: &mut dyn Pipeline,
    executor: &dyn Executor,
    store: &Store,
    config: &RunConfig,
) -> Result<Plan, DriverError> {
    check_executor_steps(pipeline, executor)?;
    pipeline.validate()?;
    let memory_mb = executor.memory_mb().unwrap_or(config.cost.memory_mb);
    let vcpus = executor.vcpus().unwrap_or(config.cost.vcpus);
    let mut done: Vec<StepOutcome> = Vec::new();
    let mut steps = Vec::new();
    let mut not_planned = None;
    let (mut task_seconds, mut from_earlier) = (0.0, 0usize);
    let mut to_run_total = 0usize;
    let region = executor.region();
    let mut cross = CrossRegion::new(store, region.clone());
    while let Some(step) = pipeline.plan_next(store, &done)? {
        let decisions = decide_step(store, &step, config.force)?;
        let mut tasks = Vec::new();
        let mut records = Vec::new();
        let mut reasons = Vec::new();
        let previous: Vec<Option<cloud::TaskStatus>> = step
            .tasks
            .iter()
            .map(|t| cloud::entry::previous_status(store, &t.status_uri))
            .collect();
        let timed: Vec<f64> = previous.iter().flatten().map(|p| p.duration_s).collect();
        let step_mean = (!timed.is_empty()).then(|| timed.iter().sum::<f64>() / timed.len() as f64);
        let traffic_mean = TaskTraffic::mean(
            &previous
                .iter()
                .flatten()
                .map(TaskTraffic::of)
                .collect::<Vec<_>>(),
        );
        let given = config.forecast.task_seconds.get(&step.name).copied();
        for (i, ((t, d), previous)) in step.tasks.iter().zip(decisions).zip(previous).enumerate() {
            let earlier = previous.as_ref().map(|p| p.duration_s);
            let estimated_s = given
                .or(earlier)
                .or(step_mean)
                .unwrap_or_else(|| t.stage.typical_task_seconds());
            let s3 = previous.as_ref().map(TaskTraffic::of).or(traffic_mean);
            let inputs = t.stage.input_uris(&t.task).unwrap_or_default();
            let outputs = previous
                .as_ref()
                .map(|p| p.outputs.clone())
                .unwrap_or_default();
            let mut r = TaskRecord::new(i, t);
            let (action, why) = match d {
                Decision::Skip(s) => {
                    r.skipped = true;
                    r.status = Some(*s);
                    ("skip", None)
                }
                Decision::Run(why) => {
                    cross.task(&inputs, previous.as_ref());
                    task_seconds += estimated_s;
                    from_earlier += usize::from(earlier.is_some());
                    to_run_total += 1;
                    let text = why.to_string();
                    reasons.push(why);
                    ("run", Some(text))
                }
            };
            records.push(r);
            tasks.push(PlannedTask {
                id: t.id.clone(),
                action: action.to_string(),
                why,
                inputs,
                status: t.status_uri.clone(),
                outputs,
                estimated_s,
                s3,
            });
        }
        let to_run = reasons.len();
        steps.push(PlannedStep {
            step: step.name.clone(),
            stage: step.stage.name().to_string(),
            to_run,
            to_skip: tasks.len() - to_run,
            why: rerun_counts(&reasons),
            tasks,
        });
        if to_run > 0 {
            not_planned = Some(format!(
                "planned once step {} has run (they depend on its outputs)",
                step.name
            ));
            break;
        }
        let now = Utc::now();
        done.push(StepOutcome {
            step: step.name.clone(),
            stage: step.stage,
            manifest: manifest_uri(&config.output, &step.name, None),
            executor: crate::exec::for_step(executor, &step.name)
                .name()
                .to_string(),
            start: now,
            end: now,
            records,
            in_flight: None,
        });
    }
    if not_planned.is_some() && steps.last().is_some_and(|s| s.to_run == 0) {
        not_planned = None;
    }
    let p = &config.cost.prices;
    let gb = memory_mb as f64 / 1024.0;
    let rate = if config.cost.lambda_architecture == "arm64" {
        p.lambda_gb_s_arm64
    } else {
        p.lambda_gb_s_x86_64
    };
    let hours = task_seconds / 3600.0;
    let forecast = config.forecast.lambdas.map(|n| {
        forecast(
            &steps,
            n,
            &config.forecast,
            memory_mb,
            rate,
            p,
            not_planned.is_some(),
        )
    });
    Ok(Plan {
        pipeline: pipeline.name().to_string(),
        executor: executor.describe(),
        output: config.output.clone(),
        steps,
        not_planned,
        task_seconds,
        estimated_from_earlier_runs: from_earlier,
        memory_mb,
        vcpus,
        lambda_usd: gb * task_seconds * rate
            + to_run_total as f64 * p.lambda_requests_per_million / 1e6,
        batch_usd: hours * (vcpus as f64 * p.fargate_vcpu_hour + gb * p.fargate_gb_hour),
        prices: p.source.clone(),
        cross_region: cross.finish(p),
        region,
        forecast,
    })
}

/// The wall time and cost of the planned steps' tasks to run on `lambdas` functions.
fn forecast(
    steps: &[PlannedStep],
    lambdas: usize,
    options: &ForecastOptions,
    memory_mb: u32,
    gb_s_rate: f64,
    prices: &crate::report::PriceTable,
    partial: bool,
) -> Forecast {
    let mut f = Forecast {
        lambdas,
        overhead_s: options.overhead_s,
        steps: Vec::new(),
        wall_s: 0.0,
        gb_s: 0.0,
        lambda_usd: 0.0,
        s3_get_class: 0,
        s3_put_class: 0,
        s3_usd: 0.0,
        bytes_read: 0,
        read_rate: 0.0,
        usd: 0.0,
        partial,
    };
    let (mut gets, mut puts, mut bytes, mut invocations) = (0.0, 0.0, 0.0, 0usize);
    for st in steps {
        let run: Vec<&PlannedTask> = st.tasks.iter().filter(|t| t.action == "run").collect();
        if run.is_empty() {
            continue;
        }
        let seconds: Vec<f64> = run.iter().map(|t| t.estimated_s).collect();
        let wall = makespan(&seconds, lambdas, options.overhead_s);
        f.steps.push((st.step.clone(), run.len(), wall));
        f.wall_s += wall;
        f.gb_s += seconds.iter().sum::<f64>() * memory_mb as f64 / 1024.0;
        invocations += run.len();
        for t in run.iter().filter_map(|t| t.s3) {
            gets += t.get_class;
            puts += t.put_class;
            bytes += t.bytes_read;
        }
    }
    f.lambda_usd =
        f.gb_s * gb_s_rate + invocations as f64 * prices.lambda_requests_per_million / 1e6;
    f.s3_get_class = gets.round() as u64;
    f.s3_put_class = puts.round() as u64;
    f.s3_usd = gets / 1000.0 * prices.s3_get_per_1000 + puts / 1000.0 * prices.s3_put_per_1000;
    f.bytes_read = bytes.round() as u64;
    f.read_rate = if f.wall_s > 0.0 {
        bytes / f.wall_s
    } else {
        0.0
    };
    f.usd = f.lambda_usd + f.s3_usd;
    f
}

/// The buckets of other regions that a dry run's tasks read, gathered task by task.
struct CrossRegion<'a> {
    store: &'a Store,
    /// The executor's region; nothing is gathered without one.
    region: Option<String>,
    /// Bucket → its region (`None`: could not be found).
    regions: std::collections::HashMap<String, Option<String>>,
    sizes: cloud::InfoCache,
    reads: std::collections::BTreeMap<String, CrossRegionRead>,
}

impl<'a> CrossRegion<'a> {
    fn new(store: &'a Store, region: Option<String>) -> Self {
        CrossRegion {
            store,
            region,
            regions: Default::default(),
            sizes: cloud::InfoCache::new(),
            reads: Default::default(),
        }
    }

    /// A task to run reading `inputs`; `previous` is its earlier run's status, if any.
    fn task(&mut self, inputs: &[String], previous: Option<&TaskStatus>) {
        let Some(home) = self.region.clone() else {
            return;
        };
        // Regions whose earlier bytes are counted, buckets whose task is counted.
        let mut counted = std::collections::BTreeSet::<String>::new();
        let mut buckets = std::collections::BTreeSet::<String>::new();
        for uri in inputs {
            let Ok(cloud::Location::S3 { bucket, .. }) = cloud::Location::parse(uri) else {
                continue;
            };
            let region = self
                .regions
                .entry(bucket.clone())
                .or_insert_with(|| match self.store.bucket_region(uri) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(%bucket, "the bucket's region is not known: {e}");
                        None
                    }
                })
                .clone();
            let Some(region) = region.filter(|r| *r != home) else {
                continue;
            };
            // An earlier run's bytes from that region, once per task; else the object's size.
            let earlier = previous.map(|p| {
                p.s3.iter()
                    .filter(|t| t.region == region)
                    .map(|t| t.bytes_read)
                    .sum::<u64>()
            });
            let bytes = match earlier {
                Some(b) if counted.insert(region.clone()) => b,
                Some(_) => 0,
                None => self.sizes.info(self.store, uri).map_or(0, |i| i.size),
            };
            let r = self
                .reads
                .entry(bucket.clone())
                .or_insert_with(|| CrossRegionRead {
                    billed: !self.store.options().is_anonymous(&bucket),
                    bucket: bucket.clone(),
                    region: region.clone(),
                    tasks: 0,
                    bytes: 0,
                    usd: 0.0,
                });
            r.tasks += usize::from(buckets.insert(bucket));
            r.bytes += bytes;
        }
    }

    fn finish(self, p: &crate::report::PriceTable) -> Vec<CrossRegionRead> {
        self.reads
            .into_values()
            .map(|mut r| {
                if r.billed {
                    r.usd = r.bytes as f64 / 1e9 * p.transfer_inter_region_gb;
                }
                r
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::makespan;

    #[test]
    fn makespan_schedules_longest_first() {
        // Fewer tasks than functions: the longest task, plus the overhead.
        assert_eq!(makespan(&[1.0, 3.0, 2.0], 8, 0.5), 3.5);
        assert_eq!(makespan(&[], 8, 0.5), 0.0);
        // One function: the sum.
        assert!((makespan(&[1.0, 3.0, 2.0], 1, 0.0) - 6.0).abs() < 1e-9);
        // LPT on two workers: 5 | 4; then 3 → 4+3=7 on the second; 3 → 5+3=8 on the first.
        assert!((makespan(&[3.0, 5.0, 3.0, 4.0], 2, 0.0) - 8.0).abs() < 1e-9);
        // 968 equal tasks on 1000 functions take one task's time; on 100, ten rounds.
        assert!((makespan(&[1.0; 968], 1000, 0.1) - 1.1).abs() < 1e-9);
        assert!((makespan(&[1.0; 968], 100, 0.0) - 10.0).abs() < 1e-9);
        // Zero functions are taken as one.
        assert!((makespan(&[1.0, 1.0], 0, 0.0) - 2.0).abs() < 1e-9);
    }
}
