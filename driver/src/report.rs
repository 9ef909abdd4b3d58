//! The run report: `report.json` with every task (stage, start, end, duration, peak RSS,
//! bytes in/out, retries), per-step summaries, and an estimated cost.
//!
//! Cost model (list prices, see [`PriceTable::AWS_US_EAST_1`]): Lambda bills GB-seconds
//! (memory × duration, per ms) plus requests; AWS Batch on Fargate bills vCPU-hours and
//! GB-hours of the containers for as long as they run. The estimate prices every attempt
//! this run made (failed ones cost too), at the executor's memory or the given one.

use chrono::{DateTime, Utc};
use cloud::{TaskState, TaskStatus};
use serde::{Deserialize, Serialize};

use crate::exec::{Failure, StepOutcome};
use crate::pipeline::Results;

/// Prices used by the cost estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceTable {
    /// Where the prices come from and when they were taken.
    pub source: String,
    pub region: String,
    /// Lambda compute, USD per GB-second (x86_64, first tier).
    pub lambda_gb_s_x86_64: f64,
    /// Lambda compute, USD per GB-second (arm64, first tier).
    pub lambda_gb_s_arm64: f64,
    /// Lambda requests, USD per million.
    pub lambda_requests_per_million: f64,
    /// Fargate (AWS Batch) USD per vCPU-hour (Linux/x86_64).
    pub fargate_vcpu_hour: f64,
    /// Fargate USD per GB-hour of memory.
    pub fargate_gb_hour: f64,
}

impl PriceTable {
    /// AWS list prices for us-east-1 as published on the AWS Lambda and AWS Fargate pricing
    /// pages (unchanged from 2022 through 2024; taken 2024-11).
    pub fn aws_us_east_1() -> PriceTable {
        PriceTable {
            source: "AWS Lambda and AWS Fargate pricing pages, us-east-1 list prices, 2024-11"
                .to_string(),
            region: "us-east-1".to_string(),
            lambda_gb_s_x86_64: 0.000_016_666_7,
            lambda_gb_s_arm64: 0.000_013_333_4,
            lambda_requests_per_million: 0.20,
            fargate_vcpu_hour: 0.040_48,
            fargate_gb_hour: 0.004_445,
        }
    }
}

/// What the run's attempts would cost (or cost) on Lambda and on Batch/Fargate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    pub prices: PriceTable,
    /// Memory per task the estimate assumes, MB.
    pub memory_mb: u32,
    /// vCPUs per Batch task the estimate assumes.
    pub vcpus: f32,
    pub lambda_architecture: String,
    /// Σ over attempts of memory (GB) × billed duration (s, rounded up to 1 ms).
    pub lambda_gb_seconds: f64,
    pub lambda_requests: u64,
    pub lambda_usd: f64,
    /// Σ over attempts of vCPUs × hours.
    pub batch_vcpu_hours: f64,
    pub batch_gb_hours: f64,
    pub batch_usd: f64,
    pub note: String,
}

/// One task in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    pub step: String,
    pub id: String,
    pub stage: String,
    /// `ok`, `error`, or `not_run`.
    pub state: String,
    /// Finished by an earlier run (its times are that run's).
    pub skipped: bool,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// Wall time of the successful (or last) run of the task, seconds.
    pub duration_s: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub requests: u64,
    /// Attempts beyond the first.
    pub retries: u32,
    /// Invocations the service throttled (not attempts: nothing ran).
    #[serde(default)]
    pub throttles: u32,
    /// Waits of the task on throttled storage (S3 `SlowDown`), from its status.
    #[serde(default)]
    pub storage_throttled: u64,
    /// Attempts this run made and their wall time, seconds (billed time).
    pub attempts: u32,
    pub attempt_seconds: f64,
    /// Memory of each attempt, MB, when the executor set it.
    pub attempt_memory_mb: Vec<Option<u32>>,
    pub error: Option<String>,
    pub status: String,
}

/// Per-step figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub step: String,
    pub stage: String,
    pub manifest: String,
    pub tasks: usize,
    pub ok: usize,
    pub failed: usize,
    pub skipped: usize,
    pub retries: u32,
    /// Invocations the service throttled, apart from failures (they ran nothing).
    #[serde(default)]
    pub throttles: u64,
    /// Waits of the step's tasks on throttled storage (S3 `SlowDown`).
    #[serde(default)]
    pub storage_throttled: u64,
    /// How many invocations were in flight (Lambda: the ceiling after the account's limit,
    /// the lowest after throttles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<crate::exec::throttle::InFlightSummary>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub wall_s: f64,
    /// Σ of task durations of the tasks run now (not skipped), seconds.
    pub task_seconds: f64,
    /// Why the tasks that ran were not skipped, as counts of reasons (`parameters changed`,
    /// `input changed`, ...); tasks new to this location are not counted.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub rerun: std::collections::BTreeMap<String, usize>,
}

/// `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub pipeline: String,
    pub executor: String,
    pub output: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub wall_s: f64,
    /// `ok`, or `failed` with the failing step.
    pub state: String,
    pub steps: Vec<StepReport>,
    pub tasks: Vec<TaskReport>,
    pub cost: CostEstimate,
    #[serde(default)]
    pub results: Option<Results>,
    /// Warnings of the tasks' results (`<task>: <warning>`), e.g. a product without a CRS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// PNG figures written with the report.
    #[serde(default)]
    pub figures: Vec<String>,
}

/// Options of the cost estimate.
#[derive(Debug, Clone)]
pub struct CostOptions {
    pub prices: PriceTable,
    /// Memory when an attempt did not record its own, MB.
    pub memory_mb: u32,
    pub vcpus: f32,
    pub lambda_architecture: String,
}

impl Default for CostOptions {
    fn default() -> Self {
        CostOptions {
            prices: PriceTable::aws_us_east_1(),
            memory_mb: 2048,
            vcpus: 1.0,
            lambda_architecture: "x86_64".to_string(),
        }
    }
}

fn task_report(step: &StepOutcome, r: &crate::exec::TaskRecord) -> TaskReport {
    let s: Option<&TaskStatus> = r.status.as_ref();
    let state = match s.map(|s| s.state) {
        Some(TaskState::Ok) => "ok",
        Some(TaskState::Error) => "error",
        None if r.attempts.is_empty() => "not_run",
        None => "error",
    };
    let error = r
        .failure()
        .map(Failure::describe)
        .or_else(|| s.and_then(|s| s.error.as_ref()).map(|e| e.to_string()));
    let attempt_seconds = r
        .attempts
        .iter()
        .map(|a| (a.end - a.start).num_milliseconds().max(0) as f64 / 1000.0)
        .sum();
    TaskReport {
        step: step.step.clone(),
        id: r.id.clone(),
        stage: r.stage.name().to_string(),
        state: state.to_string(),
        skipped: r.skipped,
        start: s.map(|s| s.start),
        end: s.map(|s| s.end),
        duration_s: s.map(|s| s.duration_s),
        peak_rss_bytes: s.and_then(|s| s.peak_rss_bytes),
        bytes_read: s.map_or(0, |s| s.bytes_read),
        bytes_written: s.map_or(0, |s| s.bytes_written),
        requests: s.map_or(0, |s| s.requests),
        retries: r.retries(),
        throttles: r.throttles,
        storage_throttled: s.map_or(0, |s| s.throttled),
        attempts: r.attempts.len() as u32,
        attempt_seconds,
        attempt_memory_mb: r.attempts.iter().map(|a| a.memory_mb).collect(),
        error,
        status: r.status_uri.clone(),
    }
}

/// The cost of the attempts in `steps`.
pub fn estimate_cost(steps: &[StepOutcome], o: &CostOptions) -> CostEstimate {
    let (mut gb_s, mut requests, mut vcpu_h, mut gb_h) = (0.0, 0u64, 0.0, 0.0);
    for st in steps {
        for r in &st.records {
            for a in &r.attempts {
                let ms = (a.end - a.start).num_milliseconds().max(1) as f64;
                let gb = a.memory_mb.unwrap_or(o.memory_mb) as f64 / 1024.0;
                gb_s += gb * ms / 1000.0;
                requests += 1;
                let hours = ms / 3_600_000.0;
                vcpu_h += o.vcpus as f64 * hours;
                gb_h += gb * hours;
            }
        }
    }
    let p = &o.prices;
    let rate = if o.lambda_architecture == "arm64" {
        p.lambda_gb_s_arm64
    } else {
        p.lambda_gb_s_x86_64
    };
    CostEstimate {
        prices: p.clone(),
        memory_mb: o.memory_mb,
        vcpus: o.vcpus,
        lambda_architecture: o.lambda_architecture.clone(),
        lambda_gb_seconds: gb_s,
        lambda_requests: requests,
        lambda_usd: gb_s * rate + requests as f64 * p.lambda_requests_per_million / 1e6,
        batch_vcpu_hours: vcpu_h,
        batch_gb_hours: gb_h,
        batch_usd: vcpu_h * p.fargate_vcpu_hour + gb_h * p.fargate_gb_hour,
        note: "every attempt of this run priced by its wall time (failed attempts included; \
               tasks skipped as already done cost nothing); free tiers, storage and data \
               transfer not included; Batch assumes Fargate billing of the task time only \
               (no container start-up)"
            .to_string(),
    }
}

/// Builds the report of a run from its step outcomes.
#[allow(clippy::too_many_arguments)]
pub fn build(
    pipeline: &str,
    executor: &str,
    output: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    steps: &[StepOutcome],
    failed_step: Option<&str>,
    cost: &CostOptions,
) -> Report {
    let mut tasks = Vec::new();
    let mut step_reports = Vec::new();
    for st in steps {
        let reports: Vec<TaskReport> = st.records.iter().map(|r| task_report(st, r)).collect();
        step_reports.push(StepReport {
            step: st.step.clone(),
            stage: st.stage.name().to_string(),
            manifest: st.manifest.clone(),
            tasks: reports.len(),
            ok: reports.iter().filter(|t| t.state == "ok").count(),
            failed: reports.iter().filter(|t| t.state != "ok").count(),
            skipped: reports.iter().filter(|t| t.skipped).count(),
            retries: reports.iter().map(|t| t.retries).sum(),
            throttles: reports.iter().map(|t| u64::from(t.throttles)).sum(),
            storage_throttled: reports
                .iter()
                .filter(|t| !t.skipped)
                .map(|t| t.storage_throttled)
                .sum(),
            in_flight: st.in_flight,
            start: st.start,
            end: st.end,
            wall_s: (st.end - st.start).num_milliseconds().max(0) as f64 / 1000.0,
            // `+ 0.0`: an empty f64 sum is -0.0, printed "-0.00".
            task_seconds: reports
                .iter()
                .filter(|t| !t.skipped)
                .filter_map(|t| t.duration_s)
                .sum::<f64>()
                + 0.0,
            rerun: crate::run::rerun_counts(
                st.records
                    .iter()
                    .filter_map(|r| r.ran_because.as_ref())
                    .filter(|w| !matches!(w, cloud::Rerun::New)),
            ),
        });
        tasks.extend(reports);
    }
    Report {
        pipeline: pipeline.to_string(),
        executor: executor.to_string(),
        output: output.to_string(),
        start,
        end,
        wall_s: (end - start).num_milliseconds().max(0) as f64 / 1000.0,
        state: match failed_step {
            None => "ok".to_string(),
            Some(s) => format!("failed in step {s}"),
        },
        steps: step_reports,
        tasks,
        cost: estimate_cost(steps, cost),
        results: None,
        figures: Vec::new(),
        warnings: steps
            .iter()
            .flat_map(|st| st.records.iter())
            .filter_map(|r| r.status.as_ref().map(|s| (r, s)))
            .flat_map(|(r, s)| s.warnings.iter().map(move |w| format!("{}: {w}", r.id)))
            .collect(),
    }
}

impl Report {
    /// A few lines for the terminal.
    pub fn summary_text(&self) -> String {
        let mut s = format!(
            "{} pipeline, {} executor: {} in {:.2} s\n",
            self.pipeline, self.executor, self.state, self.wall_s
        );
        for st in &self.steps {
            s.push_str(&format!(
                "  {:<10} {:>5} tasks  {:>5} ok  {:>3} failed  {:>5} skipped  {:>3} retries  {:>8.2} s wall  {:>9.2} s in tasks\n",
                st.step, st.tasks, st.ok, st.failed, st.skipped, st.retries, st.wall_s, st.task_seconds
            ));
            for (why, n) in &st.rerun {
                s.push_str(&format!("             {n} rerun: {why}\n"));
            }
            if let Some(f) = &st.in_flight
                && f.ceiling < f.requested
            {
                s.push_str(&format!(
                    "             at most {} in flight (the account's unreserved concurrency; {} asked)\n",
                    f.ceiling, f.requested
                ));
            }
            if st.throttles > 0 {
                let lowest = st
                    .in_flight
                    .map(|f| format!("; in flight went as low as {}", f.lowest))
                    .unwrap_or_default();
                s.push_str(&format!(
                    "             {} invocations throttled and sent again (not failures{lowest})\n",
                    st.throttles
                ));
            }
            if st.storage_throttled > 0 {
                s.push_str(&format!(
                    "             {} waits on throttled storage (S3 SlowDown; not failures)\n",
                    st.storage_throttled
                ));
            }
        }
        if !self.warnings.is_empty() {
            s.push_str(&format!("  {} warning(s):\n", self.warnings.len()));
            for w in self.warnings.iter().take(10) {
                s.push_str(&format!("    {w}\n"));
            }
            if self.warnings.len() > 10 {
                s.push_str(&format!(
                    "    ... and {} more in report.json\n",
                    self.warnings.len() - 10
                ));
            }
        }
        let c = &self.cost;
        s.push_str(&format!(
            "  estimated cost: Lambda {:.1} GB-s + {} requests = ${:.6} ({} MB, {}); Batch/Fargate {:.4} vCPU-h = ${:.6} ({})\n",
            c.lambda_gb_seconds,
            c.lambda_requests,
            c.lambda_usd,
            c.memory_mb,
            c.lambda_architecture,
            c.batch_vcpu_hours,
            c.batch_usd,
            c.prices.source
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::exec::{Attempt, TaskRecord};
    use crate::stage::StageKind;

    #[test]
    fn cost_of_attempts() {
        let t0 = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let attempt = |secs: i64, mem| Attempt {
            start: t0,
            end: t0 + chrono::Duration::seconds(secs),
            memory_mb: mem,
            target: None,
            failure: None,
        };
        let mut r = TaskRecord {
            id: "a".into(),
            stage: StageKind::Water,
            index: 0,
            status_uri: "s".into(),
            skipped: false,
            ran_because: None,
            attempts: vec![attempt(10, Some(1024)), attempt(5, Some(4096))],
            throttles: 0,
            status: None,
        };
        let st = StepOutcome {
            step: "tiles".into(),
            stage: StageKind::Water,
            manifest: "m".into(),
            executor: "lambda".into(),
            start: t0,
            end: t0,
            records: vec![r.clone()],
            in_flight: None,
        };
        let c = estimate_cost(std::slice::from_ref(&st), &CostOptions::default());
        // 10 s at 1 GB + 5 s at 4 GB = 30 GB-s; 2 requests.
        assert!((c.lambda_gb_seconds - 30.0).abs() < 1e-9);
        assert_eq!(c.lambda_requests, 2);
        let want = 30.0 * 0.000_016_666_7 + 2.0 * 0.2 / 1e6;
        assert!((c.lambda_usd - want).abs() < 1e-12);
        // 15 s at 1 vCPU.
        assert!((c.batch_vcpu_hours - 15.0 / 3600.0).abs() < 1e-12);
        r.attempts.clear();
        r.skipped = true;
        let st = StepOutcome {
            records: vec![r],
            ..st
        };
        let c = estimate_cost(&[st], &CostOptions::default());
        assert_eq!(c.lambda_requests, 0);
    }
}
