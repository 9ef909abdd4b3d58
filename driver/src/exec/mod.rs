//! Executors: where a step's tasks run.
//!
//! Every executor is handed a [`StepJob`]: the step, its manifest, and which tasks are still
//! to run (the run resumes from the tasks' status objects before submitting). It returns a
//! [`TaskRecord`] per task: the attempts it made, the task's final status, and the failure
//! if it never succeeded. Failed tasks are retried — only those, and only when the failure
//! is retryable ([`Failure::is_retryable`]: the stage's `ErrorKind::is_retryable`, a
//! deadline passed, the function/container died or could not be reached) — up to
//! [`RetryPolicy::max_attempts`], optionally with more memory.

#[cfg(feature = "aws")]
pub mod batch;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod local;
pub mod mix;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cloud::{ErrorKind, Rerun, Store, TaskError, TaskState, TaskStatus};
use serde::{Deserialize, Serialize};

use crate::error::DriverError;
use crate::plan::{Step, TaskSpec};
use crate::stage::StageKind;

/// How failed tasks are retried.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts per task, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Memory (MB) for retries, when larger than the first attempt's (Lambda, Batch).
    pub retry_memory_mb: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            retry_memory_mb: None,
        }
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "type", content = "detail", rename_all = "snake_case")]
pub enum Failure {
    /// The task ran and failed; its status records the error. (Shown as its message: the
    /// kind is [`Failure::kind_name`], which reports put in front.)
    #[error("{}", .0.message)]
    Task(TaskError),
    /// The task was still running at its deadline.
    #[error("no result after the {seconds} s deadline")]
    Deadline { seconds: f64 },
    /// The function or container failed outside the task (Lambda `errorType` such as
    /// `Runtime.ExitError`, a Batch child that ended without writing its status).
    #[error("{error_type}: {message}")]
    Runtime { error_type: String, message: String },
    /// The service could not be called (network, permissions).
    #[error("invoke failed: {0}")]
    Invoke(String),
    /// The service kept answering "too many requests" past the throttling wait
    /// ([`throttle::ThrottlePolicy::max_wait`]); nothing ran.
    #[error("throttled {throttles} times; gave up after waiting {waited_s:.0} s")]
    Throttled { throttles: u32, waited_s: f64 },
}

impl Failure {
    /// Whether another attempt with the same resources may succeed: transient storage
    /// failures, deadlines, crashed functions and failed invocations — not invalid input,
    /// missing objects or a deterministic resource limit.
    pub fn is_retryable(&self) -> bool {
        self.is_retryable_with(false)
    }

    /// Whether another attempt may succeed, when it gets more memory (`more_memory`) or not:
    /// a [`ErrorKind::ResourceLimit`] is retried only with more memory.
    pub fn is_retryable_with(&self, more_memory: bool) -> bool {
        match self {
            Failure::Task(e) if more_memory => e.kind.is_retryable_with_more_memory(),
            Failure::Task(e) => e.kind.is_retryable(),
            Failure::Deadline { .. } | Failure::Runtime { .. } | Failure::Invoke(_) => true,
            // The wait was bounded on purpose: another attempt would only wait again.
            Failure::Throttled { .. } => false,
        }
    }

    /// `Kind: message`, the kind named once.
    pub fn describe(&self) -> String {
        format!("{}: {self}", self.kind_name())
    }

    /// A short name of the failure kind (`NotFound`, `Deadline`, `Runtime.ExitError`, ...).
    pub fn kind_name(&self) -> String {
        match self {
            Failure::Task(e) => e.kind.as_str().to_string(),
            Failure::Deadline { .. } => "Deadline".to_string(),
            Failure::Runtime { error_type, .. } => error_type.clone(),
            Failure::Invoke(_) => "Invoke".to_string(),
            Failure::Throttled { .. } => "Throttled".to_string(),
        }
    }
}

/// The `ErrorKind` whose `as_str` is `name` (a Lambda `errorType`), if any.
pub fn error_kind_named(name: &str) -> Option<ErrorKind> {
    ErrorKind::from_name(name)
}

/// One attempt at a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Memory the attempt ran with (MB), when the executor sets it.
    #[serde(default)]
    pub memory_mb: Option<u32>,
    /// Where it ran: Lambda function name, Batch job id, `local`.
    #[serde(default)]
    pub target: Option<String>,
    /// `None` when the attempt succeeded.
    #[serde(default)]
    pub failure: Option<Failure>,
}

/// What happened to one task of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: String,
    pub stage: StageKind,
    /// Index in the step's manifest.
    pub index: usize,
    pub status_uri: String,
    /// Finished by an earlier run: not run again.
    #[serde(default)]
    pub skipped: bool,
    /// Why the task runs in this run (new, failed before, parameters or an input changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran_because: Option<Rerun>,
    /// Attempts made by this run (empty when skipped).
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// Invocations of this run the service throttled: nothing ran, and they are not
    /// attempts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttles: u32,
    /// The task's status (from the response or its status object).
    #[serde(default)]
    pub status: Option<TaskStatus>,
}

impl TaskRecord {
    /// A record for `task` with nothing run yet.
    pub fn new(index: usize, task: &TaskSpec) -> TaskRecord {
        TaskRecord {
            id: task.id.clone(),
            stage: task.stage,
            index,
            status_uri: task.status_uri.clone(),
            skipped: false,
            ran_because: None,
            attempts: Vec::new(),
            throttles: 0,
            status: None,
        }
    }

    /// True when the task's status says ok.
    pub fn ok(&self) -> bool {
        self.status
            .as_ref()
            .is_some_and(|s| s.state == TaskState::Ok)
    }

    /// Attempts beyond the first.
    pub fn retries(&self) -> u32 {
        self.attempts.len().saturating_sub(1) as u32
    }

    /// Why the task has not succeeded: the last attempt's failure.
    pub fn failure(&self) -> Option<&Failure> {
        if self.ok() {
            return None;
        }
        self.attempts.last().and_then(|a| a.failure.as_ref())
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The tasks of one step, as run by an executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    pub step: String,
    pub stage: StageKind,
    pub manifest: String,
    pub executor: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub records: Vec<TaskRecord>,
    /// How many invocations were in flight, for executors that adapt it (Lambda).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<throttle::InFlightSummary>,
}

impl StepOutcome {
    /// Records of tasks that did not succeed.
    pub fn failed(&self) -> Vec<&TaskRecord> {
        self.records.iter().filter(|r| !r.ok()).collect()
    }

    /// True when every task succeeded.
    pub fn all_ok(&self) -> bool {
        self.records.iter().all(TaskRecord::ok)
    }

    /// The outputs of the step's successful tasks, as `S::Output`, in manifest order.
    pub fn outputs<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>, DriverError> {
        self.records
            .iter()
            .map(|r| {
                let value = r
                    .status
                    .as_ref()
                    .and_then(|s| s.output.clone())
                    .ok_or_else(|| {
                        DriverError::Invalid(format!("task {} has no output record", r.id))
                    })?;
                serde_json::from_value(value).map_err(|e| {
                    DriverError::Invalid(format!("task {}: unexpected output record: {e}", r.id))
                })
            })
            .collect()
    }
}

/// What an executor is asked to run.
#[derive(Debug, Clone)]
pub struct StepJob {
    pub step: Step,
    /// The step's manifest (already written).
    pub manifest: String,
    /// The run's output root (executors write attempt manifests under `tasks/`).
    pub output: String,
    /// One record per task of the step; skipped ones are already filled in.
    pub records: Vec<TaskRecord>,
    /// Run the tasks even where an earlier run finished them unchanged (`--force`): the
    /// invocations carry it, so that functions and containers do not skip them.
    pub force: bool,
}

impl StepJob {
    /// Indices of the tasks still to run.
    pub fn pending(&self) -> Vec<usize> {
        self.records
            .iter()
            .filter(|r| !r.skipped)
            .map(|r| r.index)
            .collect()
    }
}

/// Progress of a step's tasks as they finish.
pub type TaskObserver = Arc<dyn Fn(&TaskRecord) + Send + Sync>;

/// A step handed to an executor; [`Submission::wait`] blocks until every task succeeded or
/// failed for good.
pub trait Submission: Send {
    fn wait(self: Box<Self>) -> Result<StepOutcome, DriverError>;
}

/// Where tasks run.
pub trait Executor: Send + Sync {
    /// `local`, `lambda`, `batch` (or `mix`: executors by step).
    fn name(&self) -> &'static str;
    /// What runs where, for the run record and report: the name, or for a mix the
    /// executor of each step (`local,preprocess=batch,windows=lambda`).
    fn describe(&self) -> String {
        self.name().to_string()
    }
    /// The executor that runs step `step` when it is not this one ([`mix::ExecutorMix`]).
    fn step_executor(&self, _step: &str) -> Option<&dyn Executor> {
        None
    }
    /// The steps given their own executor (checked against the pipeline's steps).
    fn steps_named(&self) -> Vec<&str> {
        Vec::new()
    }
    /// Starts the pending tasks of `job`; `observe` is called as each task finishes.
    fn submit(
        &self,
        job: StepJob,
        store: &Store,
        observe: TaskObserver,
    ) -> Result<Box<dyn Submission>, DriverError>;
    /// Memory per task (MB) used for cost estimates, when known.
    fn memory_mb(&self) -> Option<u32> {
        None
    }
    /// vCPUs per task used for cost estimates, when known.
    fn vcpus(&self) -> Option<f32> {
        None
    }
    /// The AWS region the tasks run in (`None`: outside AWS, as far as known): transfer
    /// from S3 buckets of other regions is priced from it.
    fn region(&self) -> Option<String> {
        None
    }
}

/// The executor that runs step `step` of a run on `executor`.
pub fn for_step<'a>(executor: &'a dyn Executor, step: &str) -> &'a dyn Executor {
    executor.step_executor(step).unwrap_or(executor)
}

/// Runs a step to completion: `submit` then `wait`.
pub fn run_step(
    executor: &dyn Executor,
    job: StepJob,
    store: &Store,
    observe: TaskObserver,
) -> Result<StepOutcome, DriverError> {
    executor.submit(job, store, observe)?.wait()
}

/// A failure from a task's status (error state), if it has one.
pub fn status_failure(status: &TaskStatus) -> Option<Failure> {
    (status.state != TaskState::Ok).then(|| {
        Failure::Task(
            status
                .error
                .clone()
                .unwrap_or_else(|| TaskError::internal("the status says error without one")),
        )
    })
}

/// Seconds as a `Duration`, for CLI values.
pub fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// The AWS SDK configuration of the environment (the standard credential chain), in `region`
/// and against `endpoint` when given (every service of deploy on one emulator): what every
/// AWS client of the driver (Lambda, Batch, deploy's IAM, EC2 and S3 control plane) starts
/// from.
#[cfg(feature = "aws")]
pub(crate) async fn aws_sdk_config(
    region: Option<String>,
    endpoint: Option<String>,
) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r));
    }
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e);
    }
    loader.load().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_failures() {
        let f = |k| Failure::Task(TaskError::new(k, "x"));
        assert!(!f(ErrorKind::NotFound).is_retryable());
        assert!(!f(ErrorKind::InvalidInput).is_retryable());
        assert!(f(ErrorKind::Storage).is_retryable());
        // A memory budget or a full disk fails the same way again: retried only with more
        // memory.
        assert!(!f(ErrorKind::ResourceLimit).is_retryable());
        assert!(f(ErrorKind::ResourceLimit).is_retryable_with(true));
        assert!(!f(ErrorKind::InvalidInput).is_retryable_with(true));
        assert!(Failure::Deadline { seconds: 1.0 }.is_retryable());
        assert_eq!(error_kind_named("StorageError"), Some(ErrorKind::Storage));
        // The kind is said once ("InvalidTask: InvalidTask: ..." before).
        assert_eq!(
            f(ErrorKind::InvalidTask).describe(),
            "InvalidTask: x".to_string()
        );
        assert_eq!(
            Failure::Deadline { seconds: 2.0 }.describe(),
            "Deadline: no result after the 2 s deadline"
        );
        assert_eq!(error_kind_named("Runtime.ExitError"), None);
    }
}
