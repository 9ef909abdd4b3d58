//! The run report: `report.json` with every task (stage, start, end, duration, peak RSS,
//! bytes in/out, retries), per-step summaries, and an estimated cost.
//!
//! Cost model (list prices, see [`PriceTable::aws_us_east_1`]): Lambda bills GB-seconds
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
    /// S3 Standard GET-class requests (GET, HEAD), USD per 1,000.
    #[serde(default)]
    pub s3_get_per_1000: f64,
    /// S3 Standard PUT-class requests (PUT, COPY, POST, LIST), USD per 1,000.
    #[serde(default)]
    pub s3_put_per_1000: f64,
    /// Data transfer from one AWS region to another, USD per GB.
    #[serde(default)]
    pub transfer_inter_region_gb: f64,
    /// Data transfer out of AWS to the internet (first 10 TB/month tier), USD per GB.
    #[serde(default)]
    pub transfer_internet_gb: f64,
}

impl PriceTable {
    /// AWS list prices for us-east-1 as published on the AWS Lambda, AWS Fargate and Amazon
    /// S3 pricing pages (unchanged from 2022 through 2024; taken 2024-11).
    pub fn aws_us_east_1() -> PriceTable {
        PriceTable {
            source: "AWS Lambda, AWS Fargate and Amazon S3 pricing pages, us-east-1 list prices, 2024-11"
                .to_string(),
            region: "us-east-1".to_string(),
            lambda_gb_s_x86_64: 0.000_016_666_7,
            lambda_gb_s_arm64: 0.000_013_333_4,
            lambda_requests_per_million: 0.20,
            fargate_vcpu_hour: 0.040_48,
            fargate_gb_hour: 0.004_445,
            s3_get_per_1000: 0.000_4,
            s3_put_per_1000: 0.005,
            transfer_inter_region_gb: 0.02,
            transfer_internet_gb: 0.09,
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
    /// S3 requests and transfer of the tasks run, billed to the requester (apart from the
    /// compute above, whichever executor runs it).
    #[serde(default)]
    pub storage: StorageCost,
    /// Each step priced where it ran (Lambda or Batch/Fargate compute; local steps cost
    /// nothing here), when steps ran on different executors (`--executor
    /// preprocess=batch,windows=lambda`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_step: Vec<StepCost>,
    pub note: String,
}

/// The compute cost of one step on the executor that ran it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepCost {
    pub step: String,
    pub executor: String,
    pub usd: f64,
}

/// What the S3 requests and transfers of a run's tasks cost their requester.
///
/// Requests are billed to the requester when signed (own buckets, requester-pays buckets);
/// unsigned reads of public open-data buckets are paid by the buckets' owner, wherever they
/// are read from. Transfer: reads of billed buckets in another region than the one the
/// tasks ran in, and writes to another region, are inter-region transfer; reads of billed
/// buckets by tasks outside AWS are transfer out to the internet; the rest is free.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StorageCost {
    /// The AWS region the tasks ran in; `None` outside AWS (the local executor).
    pub compute_region: Option<String>,
    /// Billed GET-class (GET, HEAD) and PUT-class (PUT, POST, LIST) requests.
    pub get_requests: u64,
    pub put_requests: u64,
    pub requests_usd: f64,
    /// Bytes moved between the compute region and buckets of other regions, billed.
    pub inter_region_bytes: u64,
    /// Bytes read out of AWS from billed buckets (tasks that ran outside AWS).
    pub internet_bytes: u64,
    pub transfer_usd: f64,
    /// Bytes read from public open-data buckets across regions or out of AWS: no charge to
    /// the requester (the sponsor pays), but slower than reading in the bucket's region.
    pub sponsored_cross_region_bytes: u64,
    /// Bytes read from each bucket region other than the compute region (or from every
    /// region, outside AWS), billed or not.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub cross_region_reads: std::collections::BTreeMap<String, u64>,
    pub usd: f64,
}

/// The cost of `traffic` (the tasks' [`cloud::S3Traffic`]) for tasks that ran in
/// `compute_region` (`None`: outside AWS), at `p`'s prices.
pub fn storage_cost<'a>(
    traffic: impl IntoIterator<Item = &'a cloud::S3Traffic>,
    compute_region: Option<&str>,
    p: &PriceTable,
) -> StorageCost {
    let mut c = StorageCost {
        compute_region: compute_region.map(str::to_string),
        ..StorageCost::default()
    };
    for t in traffic {
        let elsewhere = compute_region != Some(t.region.as_str());
        if t.billed {
            c.get_requests += t.get_class;
            c.put_requests += t.put_class;
        }
        if elsewhere && t.bytes_read > 0 {
            *c.cross_region_reads.entry(t.region.clone()).or_insert(0) += t.bytes_read;
        }
        match (compute_region, elsewhere) {
            (_, false) => {}
            // Tasks outside AWS: reads of billed buckets leave AWS; uploads are free.
            (None, true) if t.billed => c.internet_bytes += t.bytes_read,
            (None, true) => c.sponsored_cross_region_bytes += t.bytes_read,
            // Writes leave the compute region, billed to whoever runs the tasks.
            (Some(_), true) if t.billed => c.inter_region_bytes += t.bytes_read + t.bytes_written,
            (Some(_), true) => {
                c.sponsored_cross_region_bytes += t.bytes_read;
                c.inter_region_bytes += t.bytes_written;
            }
        }
    }
    let gb = |b: u64| b as f64 / 1e9;
    c.requests_usd = c.get_requests as f64 * p.s3_get_per_1000 / 1000.0
        + c.put_requests as f64 * p.s3_put_per_1000 / 1000.0;
    c.transfer_usd = gb(c.inter_region_bytes) * p.transfer_inter_region_gb
        + gb(c.internet_bytes) * p.transfer_internet_gb;
    c.usd = c.requests_usd + c.transfer_usd;
    c
}

impl StorageCost {
    /// One line for the terminal, with the reads across regions named.
    pub fn summary_line(&self) -> String {
        let gb = |b: u64| b as f64 / 1e9;
        let mut s = format!(
            "S3 {} GET + {} PUT-class requests = ${:.6}; transfer {:.3} GB between regions + {:.3} GB to the internet = ${:.6}",
            self.get_requests,
            self.put_requests,
            self.requests_usd,
            gb(self.inter_region_bytes),
            gb(self.internet_bytes),
            self.transfer_usd
        );
        if !self.cross_region_reads.is_empty() {
            let from: Vec<String> = self
                .cross_region_reads
                .iter()
                .map(|(r, b)| format!("{r} {:.3} GB", gb(*b)))
                .collect();
            s.push_str(&format!(
                "; read across regions from {} (tasks in {}{})",
                from.join(", "),
                self.compute_region.as_deref().unwrap_or("no AWS region"),
                if self.sponsored_cross_region_bytes > 0 {
                    format!(
                        "; {:.3} GB of it from open-data buckets, no charge",
                        gb(self.sponsored_cross_region_bytes)
                    )
                } else {
                    String::new()
                }
            ));
        }
        s
    }
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
    /// The AWS region the tasks run in (`None`: outside AWS), for S3 transfer.
    pub region: Option<String>,
}

impl Default for CostOptions {
    fn default() -> Self {
        CostOptions {
            prices: PriceTable::aws_us_east_1(),
            memory_mb: 2048,
            vcpus: 1.0,
            lambda_architecture: "x86_64".to_string(),
            region: None,
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
    let mut traffic = Vec::new();
    let p = &o.prices;
    let rate = if o.lambda_architecture == "arm64" {
        p.lambda_gb_s_arm64
    } else {
        p.lambda_gb_s_x86_64
    };
    let mut by_step = Vec::new();
    for st in steps {
        let before = (gb_s, requests, vcpu_h, gb_h);
        for r in &st.records {
            if !r.skipped
                && let Some(s) = &r.status
            {
                traffic.extend(s.s3.iter());
            }
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
        let usd = match st.executor.as_str() {
            "lambda" => {
                (gb_s - before.0) * rate
                    + (requests - before.1) as f64 * p.lambda_requests_per_million / 1e6
            }
            "batch" => {
                (vcpu_h - before.2) * p.fargate_vcpu_hour + (gb_h - before.3) * p.fargate_gb_hour
            }
            _ => 0.0,
        };
        by_step.push(StepCost {
            step: st.step.clone(),
            executor: st.executor.clone(),
            usd,
        });
    }
    // Only a mixed run needs it: otherwise it is the Lambda or Batch figure.
    if by_step.windows(2).all(|w| w[0].executor == w[1].executor) {
        by_step.clear();
    }
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
        storage: storage_cost(traffic, o.region.as_deref(), p),
        by_step,
        note: "every attempt of this run priced by its wall time (failed attempts included; \
               tasks skipped as already done cost nothing); S3 requests and transfer from the \
               tasks' final statuses, priced where the tasks ran; free tiers and storage not \
               included; Batch assumes Fargate billing of the task time only (no container \
               start-up)"
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
        if !c.by_step.is_empty() {
            let steps: Vec<String> = c
                .by_step
                .iter()
                .map(|b| format!("{} on {} ${:.6}", b.step, b.executor, b.usd))
                .collect();
            s.push_str(&format!(
                "  as run: ${:.6} ({})\n",
                c.by_step.iter().map(|b| b.usd).sum::<f64>(),
                steps.join(", ")
            ));
        }
        let st = &c.storage;
        if st.get_requests + st.put_requests > 0 || !st.cross_region_reads.is_empty() {
            s.push_str(&format!("  {}\n", st.summary_line()));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn traffic(
        region: &str,
        billed: bool,
        get: u64,
        put: u64,
        read: u64,
        written: u64,
    ) -> cloud::S3Traffic {
        cloud::S3Traffic {
            region: region.to_string(),
            billed,
            get_class: get,
            put_class: put,
            bytes_read: read,
            bytes_written: written,
        }
    }

    #[test]
    fn storage_is_priced_where_the_tasks_ran() {
        let p = PriceTable::aws_us_east_1();
        let t = [
            // The run's own bucket, in the functions' region: requests only.
            traffic(
                "eu-south-2",
                true,
                10_000,
                2_000,
                5_000_000_000,
                1_000_000_000,
            ),
            // A requester-pays bucket elsewhere: requests and transfer.
            traffic("eu-west-1", true, 1_000, 0, 2_000_000_000, 0),
            // sentinel-cogs, unsigned: the sponsor pays; counted as read across regions.
            traffic("us-west-2", false, 50_000, 0, 8_000_000_000, 0),
        ];
        let c = storage_cost(&t, Some("eu-south-2"), &p);
        assert_eq!((c.get_requests, c.put_requests), (11_000, 2_000));
        // 11 × $0.0004 + 2 × $0.005.
        assert!(
            (c.requests_usd - 0.0144).abs() < 1e-12,
            "{}",
            c.requests_usd
        );
        assert_eq!(c.inter_region_bytes, 2_000_000_000);
        assert_eq!(c.internet_bytes, 0);
        assert!((c.transfer_usd - 0.04).abs() < 1e-12, "{}", c.transfer_usd);
        assert_eq!(c.sponsored_cross_region_bytes, 8_000_000_000);
        assert_eq!(
            c.cross_region_reads.keys().collect::<Vec<_>>(),
            ["eu-west-1", "us-west-2"]
        );
        assert!((c.usd - 0.0544).abs() < 1e-12);
        let line = c.summary_line();
        assert!(
            line.contains("us-west-2 8.000 GB") && line.contains("no charge"),
            "{line}"
        );

        // The same traffic from outside AWS: billed reads leave AWS at internet prices.
        let c = storage_cost(&t, None, &p);
        assert_eq!(c.internet_bytes, 7_000_000_000);
        assert_eq!(c.inter_region_bytes, 0);
        assert!((c.transfer_usd - 0.63).abs() < 1e-9, "{}", c.transfer_usd);
        // Functions in us-west-2 read sentinel-cogs in region; the others are elsewhere,
        // and writes to eu-south-2 leave us-west-2.
        let c = storage_cost(&t, Some("us-west-2"), &p);
        assert_eq!(c.inter_region_bytes, 8_000_000_000);
        assert_eq!(c.sponsored_cross_region_bytes, 0);
    }
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
        // A step on Batch then the same on Lambda, then one locally: each priced where it ran.
        let mixed = [
            StepOutcome {
                step: "preprocess".into(),
                executor: "batch".into(),
                ..st.clone()
            },
            st.clone(),
            StepOutcome {
                step: "merge".into(),
                executor: "local".into(),
                ..st.clone()
            },
        ];
        let c = estimate_cost(&mixed, &CostOptions::default());
        let by: Vec<(&str, &str)> = c
            .by_step
            .iter()
            .map(|b| (b.step.as_str(), b.executor.as_str()))
            .collect();
        assert_eq!(
            by,
            [
                ("preprocess", "batch"),
                ("tiles", "lambda"),
                ("merge", "local")
            ]
        );
        // 15 s at 1 vCPU and (10 s × 1 GB + 5 s × 4 GB) on Fargate; 30 GB-s and 2 requests.
        let fargate = 15.0 / 3600.0 * 0.040_48 + 30.0 / 3600.0 * 0.004_445;
        assert!(
            (c.by_step[0].usd - fargate).abs() < 1e-12,
            "{:?}",
            c.by_step
        );
        let lambda = 30.0 * 0.000_016_666_7 + 2.0 * 0.2 / 1e6;
        assert!((c.by_step[1].usd - lambda).abs() < 1e-12);
        assert_eq!(c.by_step[2].usd, 0.0);
        let c = estimate_cost(std::slice::from_ref(&st), &CostOptions::default());
        assert!(c.by_step.is_empty(), "one executor: no per-step figures");
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
