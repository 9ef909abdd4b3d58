//! The local executor: every task in this process on a rayon pool, through the same task
//! adapter as the stage binaries (`cloud::run_task`: manifest reference resolved, status
//! written). No cloud account is needed; the store may still be S3.
//!
//! Deadlines are cooperative (a thread cannot be stopped safely): a task past its deadline
//! fails at its next storage call with `Timeout`. Retryable failures are retried after a
//! jittered exponential back-off. Peak RSS in the statuses is the process's, shared by the
//! tasks running at the same time.

use std::thread::JoinHandle;

use chrono::Utc;
use cloud::{Ctx, ProgressMode, RunOptions, Store};
use rayon::prelude::*;

use super::{
    Attempt, Executor, Failure, RetryPolicy, StepJob, StepOutcome, Submission, TaskObserver,
    TaskRecord, status_failure,
};
use crate::error::DriverError;
use crate::plan::manifest_ref;

/// Runs tasks on a rayon pool of `concurrency` threads (0: one per core).
#[derive(Debug, Clone, Default)]
pub struct LocalExecutor {
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// Each attempt's deadline (`None`: none).
    pub timeout: Option<std::time::Duration>,
}

/// The wait before attempt `attempt + 1` (1-based `attempt`): 0.5 s doubling, at most
/// 30 s, with full jitter down to half.
pub fn backoff(attempt: u32) -> std::time::Duration {
    cloud::RetryPolicy {
        max_attempts: u32::MAX,
        initial_backoff: std::time::Duration::from_millis(500),
        max_backoff: std::time::Duration::from_secs(30),
    }
    .backoff(attempt)
}

struct LocalSubmission {
    handle: JoinHandle<Result<StepOutcome, DriverError>>,
}

impl Submission for LocalSubmission {
    fn wait(self: Box<Self>) -> Result<StepOutcome, DriverError> {
        self.handle
            .join()
            .unwrap_or_else(|_| Err(DriverError::Invalid("the local worker panicked".into())))
    }
}

/// Runs one task with retries, filling `record`.
fn run_one(
    job: &StepJob,
    record: &mut TaskRecord,
    ctx: &Ctx,
    retry: &RetryPolicy,
    timeout: Option<std::time::Duration>,
) {
    for attempt in 1..=retry.max_attempts.max(1) {
        if attempt > 1 {
            std::thread::sleep(backoff(attempt - 1));
        }
        // The driver decided this task runs: force it past the resume check.
        let options = RunOptions {
            force: true,
            executor: "local".to_string(),
            deadline: timeout.map(|t| std::time::Instant::now() + t),
        };
        let start = Utc::now();
        let result = job.step.stage.run_task(
            manifest_ref(&job.manifest, record.index, false),
            ctx,
            &options,
        );
        let (status, failure) = match result {
            Ok(status) => {
                let failure = status_failure(&status);
                (Some(status), failure)
            }
            Err(e) => (None, Some(Failure::Task(e))),
        };
        let retryable = failure.as_ref().is_some_and(Failure::is_retryable);
        record.attempts.push(Attempt {
            start,
            end: Utc::now(),
            memory_mb: None,
            target: Some("local".to_string()),
            failure,
        });
        record.status = status;
        if record.ok() || !retryable {
            return;
        }
        tracing::warn!(task = %record.id, attempt, "task failed; retrying");
    }
}

impl Executor for LocalExecutor {
    fn name(&self) -> &'static str {
        "local"
    }

    fn submit(
        &self,
        job: StepJob,
        store: &Store,
        observe: TaskObserver,
    ) -> Result<Box<dyn Submission>, DriverError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.concurrency)
            .thread_name(|i| format!("geobutton-task-{i}"))
            .build()
            .map_err(|e| DriverError::Invalid(format!("cannot start the worker pool: {e}")))?;
        let ctx = Ctx::new(store.clone()).with_progress(ProgressMode::Silent);
        let retry = self.retry;
        let timeout = self.timeout;
        let handle = std::thread::Builder::new()
            .name(format!("geobutton-step-{}", job.step.name))
            .spawn(move || {
                let start = Utc::now();
                let mut records = job.records.clone();
                pool.install(|| {
                    records
                        .par_iter_mut()
                        .with_max_len(1)
                        .filter(|r| !r.skipped)
                        .for_each(|r| {
                            run_one(&job, r, &ctx, &retry, timeout);
                            observe(r);
                        });
                });
                Ok(StepOutcome {
                    step: job.step.name.clone(),
                    stage: job.step.stage,
                    manifest: job.manifest.clone(),
                    executor: "local".to_string(),
                    start,
                    end: Utc::now(),
                    records,
                    in_flight: None,
                })
            })
            .map_err(|e| DriverError::Invalid(format!("cannot start the step thread: {e}")))?;
        Ok(Box::new(LocalSubmission { handle }))
    }
}
