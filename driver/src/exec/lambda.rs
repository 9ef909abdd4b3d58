//! The AWS Lambda executor: each task is one synchronous `Invoke` of its stage's function
//! with the payload `{"manifest": URI, "index": n}`.
//!
//! - Functions are named from a template, by default `geobutton-{stage}-{memory}` (e.g.
//!   `geobutton-terrain-2048`): Lambda memory is a property of the function, so "retry with
//!   more memory" invokes the same binary deployed at a larger size (`geobutton deploy`
//!   creates every size asked for).
//! - At most `concurrency` invocations are in flight, capped by the account's unreserved
//!   concurrency (`GetAccountSettings`) and lowered while the service throttles
//!   ([`super::throttle`]).
//! - Throttling is not failure: a 429 (`TooManyRequestsException`) means nothing ran; the
//!   invocation waits with jittered exponential backoff (up to a minute per wait,
//!   `throttle.max_wait` in all) and goes again without using an attempt. Throttles are
//!   counted per task and per step, apart from failures.
//! - SDK retries are disabled: a failed invocation must not run again behind our back.
//!   A response with `X-Amz-Function-Error`, an HTTP 500 from the service (what the
//!   emulator and the service return for an unhandled function error), a transport error
//!   and a deadline passed all count as a failed attempt; the driver retries failed tasks
//!   only, when the failure is retryable, up to `retry.max_attempts`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use chrono::Utc;
use cloud::{Store, TaskError, TaskStatus};
use futures::StreamExt;
use serde_json::Value;

use super::throttle::{InFlightLimit, ThrottlePolicy};
use super::{
    Attempt, Executor, Failure, RetryPolicy, StepJob, StepOutcome, Submission, TaskObserver,
    TaskRecord, error_kind_named, status_failure,
};
use crate::error::DriverError;
use crate::plan::{manifest_ref, read_status};
use crate::stage::StageKind;

/// Default function name template.
pub const DEFAULT_FUNCTION_TEMPLATE: &str = "geobutton-{stage}-{memory}";

/// Settings of the Lambda executor.
#[derive(Debug, Clone)]
pub struct LambdaConfig {
    /// Function name template with `{stage}` and `{memory}` placeholders.
    pub function_template: String,
    /// Memory of the functions invoked first, MB.
    pub memory_mb: u32,
    /// Invocations in flight at once, at most (capped by the account's limit; lowered
    /// while throttled).
    pub concurrency: usize,
    /// A task still running after this long counts as failed.
    pub deadline: Duration,
    pub retry: RetryPolicy,
    /// How throttled invocations wait.
    pub throttle: ThrottlePolicy,
    /// Lambda API endpoint (default: the AWS environment's, e.g. `AWS_ENDPOINT_URL_LAMBDA`).
    pub endpoint: Option<String>,
    /// Region (default: the AWS environment's).
    pub region: Option<String>,
    /// `x86_64` or `arm64`: priced differently in the cost estimate.
    pub architecture: String,
}

impl Default for LambdaConfig {
    fn default() -> Self {
        LambdaConfig {
            function_template: DEFAULT_FUNCTION_TEMPLATE.to_string(),
            memory_mb: 2048,
            concurrency: 64,
            deadline: Duration::from_secs(900),
            retry: RetryPolicy::default(),
            throttle: ThrottlePolicy::default(),
            endpoint: None,
            region: None,
            architecture: "x86_64".to_string(),
        }
    }
}

impl LambdaConfig {
    /// The function that runs `stage` with `memory_mb`.
    pub fn function_name(&self, stage: StageKind, memory_mb: u32) -> String {
        function_name(&self.function_template, stage, memory_mb)
    }

    /// Memory of attempt `n` (1-based).
    pub fn memory_for_attempt(&self, attempt: u32) -> u32 {
        match self.retry.retry_memory_mb {
            Some(m) if attempt > 1 => m.max(self.memory_mb),
            _ => self.memory_mb,
        }
    }
}

/// `template` with `{stage}` and `{memory}` filled in.
pub fn function_name(template: &str, stage: StageKind, memory_mb: u32) -> String {
    template
        .replace("{stage}", stage.name())
        .replace("{memory}", &memory_mb.to_string())
}

/// Invokes stage functions on AWS Lambda (or an endpoint that speaks its API).
#[derive(Clone)]
pub struct LambdaExecutor {
    config: Arc<LambdaConfig>,
    client: aws_sdk_lambda::Client,
    /// The account's unreserved concurrency, asked once per executor (`Some(None)`: asked,
    /// not known).
    account_limit: Arc<std::sync::Mutex<Option<Option<usize>>>>,
}

impl std::fmt::Debug for LambdaExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaExecutor")
            .field("config", &self.config)
            .finish()
    }
}

impl LambdaExecutor {
    /// A client from the standard AWS environment, with SDK retries disabled.
    pub fn new(config: LambdaConfig) -> LambdaExecutor {
        let endpoint = config.endpoint.clone();
        let region = config.region.clone();
        let client = cloud::runtime::block_on(async move {
            let sdk = super::aws_sdk_config(region, None).await;
            let mut b = aws_sdk_lambda::config::Builder::from(&sdk)
                .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
                .timeout_config(
                    aws_sdk_lambda::config::timeout::TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(10))
                        .build(),
                );
            // On the client: it wins over AWS_ENDPOINT_URL_LAMBDA and AWS_ENDPOINT_URL.
            if let Some(e) = endpoint {
                b = b.endpoint_url(e);
            }
            aws_sdk_lambda::Client::from_conf(b.build())
        });
        LambdaExecutor {
            config: Arc::new(config),
            client,
            account_limit: Arc::default(),
        }
    }

    /// The executor's settings.
    pub fn config(&self) -> &LambdaConfig {
        &self.config
    }
}

/// The outcome of one invocation.
enum Invoked {
    Status(Box<TaskStatus>),
    Failed(Failure),
    /// 429: the service did not run the function.
    Throttled(String),
}

/// Parses `{"errorType", "errorMessage"}` into a failure.
fn error_payload(bytes: &[u8], fallback: &str) -> Failure {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let error_type = v["errorType"].as_str().unwrap_or(fallback).to_string();
    let message = v["errorMessage"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).chars().take(2000).collect());
    match error_kind_named(&error_type) {
        Some(kind) => Failure::Task(TaskError::new(kind, message)),
        None => Failure::Runtime {
            error_type,
            message,
        },
    }
}

async fn invoke_once(
    client: &aws_sdk_lambda::Client,
    function: &str,
    payload: Vec<u8>,
    deadline: Duration,
) -> Invoked {
    let call = client
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload))
        .send();
    let result = match tokio::time::timeout(deadline, call).await {
        Err(_) => {
            return Invoked::Failed(Failure::Deadline {
                seconds: deadline.as_secs_f64(),
            });
        }
        Ok(r) => r,
    };
    match result {
        Ok(out) => {
            let bytes = out
                .payload()
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default();
            if let Some(kind) = out.function_error() {
                return Invoked::Failed(error_payload(&bytes, kind));
            }
            match serde_json::from_slice::<TaskStatus>(&bytes) {
                Ok(s) => Invoked::Status(Box::new(s)),
                Err(e) => Invoked::Failed(Failure::Runtime {
                    error_type: "InvalidResponse".into(),
                    message: format!(
                        "{function} answered something that is not a task status: {e}"
                    ),
                }),
            }
        }
        Err(e) => {
            if let Some(raw) = e.raw_response()
                && raw.status().as_u16() == 429
            {
                let body = raw.body().bytes().unwrap_or_default();
                return Invoked::Throttled(
                    String::from_utf8_lossy(body).chars().take(300).collect(),
                );
            }
            if let Some(raw) = e.raw_response()
                && raw.status().as_u16() == 500
            {
                let body = raw.body().bytes().unwrap_or_default();
                return Invoked::Failed(error_payload(body, "ServiceException"));
            }
            if let Some(raw) = e.raw_response() {
                let body = raw.body().bytes().unwrap_or_default();
                let text: String = String::from_utf8_lossy(body).chars().take(500).collect();
                return Invoked::Failed(Failure::Invoke(format!(
                    "{function}: HTTP {}: {text}",
                    raw.status().as_u16()
                )));
            }
            Invoked::Failed(Failure::Invoke(format!(
                "{function}: {}",
                aws_sdk_lambda::error::DisplayErrorContext(&e)
            )))
        }
    }
}

/// Invokes `function` until it is not throttled, waiting between throttles; a throttled
/// invocation ran nothing and is not an attempt. Past `policy.max_wait` of waiting it gives
/// up with [`Failure::Throttled`].
async fn invoke_unthrottled(
    client: &aws_sdk_lambda::Client,
    limit: &Arc<InFlightLimit>,
    config: &LambdaConfig,
    function: &str,
    payload: &[u8],
    record: &mut TaskRecord,
) -> (Invoked, chrono::DateTime<Utc>) {
    let policy = config.throttle;
    let mut waited = Duration::ZERO;
    let mut throttles = 0u32;
    loop {
        let permit = limit.acquire().await;
        let start = Utc::now();
        match invoke_once(client, function, payload.to_vec(), config.deadline).await {
            Invoked::Throttled(body) => {
                permit.throttled();
                throttles += 1;
                record.throttles += 1;
                let pause = policy.backoff(throttles);
                if waited + pause > policy.max_wait {
                    tracing::warn!(task = %record.id, %function, throttles, "still throttled: giving up");
                    let failure = Failure::Throttled {
                        throttles,
                        waited_s: waited.as_secs_f64(),
                    };
                    return (Invoked::Failed(failure), start);
                }
                tracing::debug!(task = %record.id, %function, throttles, pause_s = pause.as_secs_f64(), body, "throttled");
                tokio::time::sleep(pause).await;
                waited += pause;
            }
            other => {
                permit.answered();
                return (other, start);
            }
        }
    }
}

async fn run_task(
    client: aws_sdk_lambda::Client,
    config: Arc<LambdaConfig>,
    limit: Arc<InFlightLimit>,
    stage: StageKind,
    manifest: String,
    force: bool,
    mut record: TaskRecord,
) -> TaskRecord {
    let payload = manifest_ref(&manifest, record.index, force)
        .to_string()
        .into_bytes();
    for attempt in 1..=config.retry.max_attempts.max(1) {
        if attempt > 1 {
            // Back off a little: transient service errors clear with time.
            let ms = (250u64 << (attempt - 2).min(6)).min(10_000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let memory = config.memory_for_attempt(attempt);
        let function = config.function_name(stage, memory);
        let clock = Instant::now();
        let (invoked, start) =
            invoke_unthrottled(&client, &limit, &config, &function, &payload, &mut record).await;
        let (status, failure) = match invoked {
            Invoked::Status(s) => {
                let failure = status_failure(&s);
                (Some(*s), failure)
            }
            Invoked::Failed(f) => (None, Some(f)),
            // (invoke_unthrottled waits throttles out or turns them into a failure)
            Invoked::Throttled(body) => (None, Some(Failure::Invoke(format!("throttled: {body}")))),
        };
        tracing::debug!(task = %record.id, %function, seconds = clock.elapsed().as_secs_f64(), "invoked");
        let more_memory = config.memory_for_attempt(attempt + 1) > memory;
        let retryable = failure
            .as_ref()
            .is_some_and(|f| f.is_retryable_with(more_memory));
        if let Some(f) = &failure {
            tracing::warn!(task = %record.id, %function, attempt, failure = %f, retryable, "attempt failed");
        }
        record.attempts.push(Attempt {
            start,
            end: Utc::now(),
            memory_mb: Some(memory),
            target: Some(function),
            failure,
        });
        if status.is_some() {
            record.status = status;
        }
        if record.ok() || !retryable {
            break;
        }
    }
    record
}

/// The account's unreserved concurrency (what functions without reserved concurrency
/// share), from `GetAccountSettings`; `None` when it cannot be read (permissions, an
/// emulator without that API) within 3 s. Asked once per executor (the first step with
/// tasks to run).
async fn account_concurrency(client: &aws_sdk_lambda::Client) -> Option<usize> {
    let call = client.get_account_settings().send();
    match tokio::time::timeout(Duration::from_secs(3), call).await {
        Ok(Ok(out)) => {
            let limit = out.account_limit()?;
            let n = limit
                .unreserved_concurrent_executions()
                .unwrap_or(limit.concurrent_executions());
            (n > 0).then_some(n as usize)
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %aws_sdk_lambda::error::DisplayErrorContext(&e), "GetAccountSettings: the account's concurrency is not known");
            None
        }
        Err(_) => None,
    }
}

struct LambdaSubmission {
    handle: tokio::task::JoinHandle<StepOutcome>,
    store: Store,
}

impl Submission for LambdaSubmission {
    fn wait(self: Box<Self>) -> Result<StepOutcome, DriverError> {
        let mut outcome = futures::executor::block_on(self.handle)
            .map_err(|e| DriverError::Invalid(format!("the Lambda step failed: {e}")))?;
        // Failed attempts without a response body: the status object may say more.
        for r in outcome
            .records
            .iter_mut()
            .filter(|r| !r.skipped && r.status.is_none())
        {
            r.status = read_status(&self.store, &r.status_uri);
        }
        Ok(outcome)
    }
}

impl Executor for LambdaExecutor {
    fn name(&self) -> &'static str {
        "lambda"
    }

    fn submit(
        &self,
        job: StepJob,
        store: &Store,
        observe: TaskObserver,
    ) -> Result<Box<dyn Submission>, DriverError> {
        let client = self.client.clone();
        let config = self.config.clone();
        let known_limit = self.account_limit.clone();
        let requested = config.concurrency.max(1);
        let handle = cloud::runtime::io_runtime().spawn(async move {
            let start = Utc::now();
            let stage = job.step.stage;
            let mut records = job.records.clone();
            let pending: Vec<TaskRecord> = records.iter().filter(|r| !r.skipped).cloned().collect();
            let asked = *known_limit.lock().unwrap_or_else(|e| e.into_inner());
            let account_limit = match asked {
                _ if pending.is_empty() => None,
                Some(limit) => limit,
                None => {
                    let limit = account_concurrency(&client).await;
                    *known_limit.lock().unwrap_or_else(|e| e.into_inner()) = Some(limit);
                    limit
                }
            };
            let ceiling = match account_limit {
                Some(a) if a < requested => {
                    tracing::warn!(
                        requested,
                        account_limit = a,
                        "the concurrency asked for is above the account's unreserved concurrency; using the account's"
                    );
                    a
                }
                _ => requested,
            };
            let limit = InFlightLimit::new(ceiling);
            let mut done = futures::stream::iter(pending.into_iter().map(|r| {
                run_task(
                    client.clone(),
                    config.clone(),
                    limit.clone(),
                    stage,
                    job.manifest.clone(),
                    job.force,
                    r,
                )
            }))
            .buffer_unordered(ceiling);
            while let Some(r) = done.next().await {
                observe(&r);
                let i = r.index;
                records[i] = r;
            }
            StepOutcome {
                step: job.step.name.clone(),
                stage,
                manifest: job.manifest.clone(),
                executor: "lambda".to_string(),
                start,
                end: Utc::now(),
                records,
                in_flight: Some(limit.summary(requested, account_limit)),
            }
        });
        Ok(Box::new(LambdaSubmission {
            handle,
            store: store.clone(),
        }))
    }

    fn memory_mb(&self) -> Option<u32> {
        Some(self.config.memory_mb)
    }

    fn region(&self) -> Option<String> {
        self.client.config().region().map(|r| r.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloud::ErrorKind;

    #[test]
    fn names_and_memory_ladder() {
        let c = LambdaConfig {
            memory_mb: 1024,
            retry: RetryPolicy {
                max_attempts: 3,
                retry_memory_mb: Some(4096),
            },
            ..LambdaConfig::default()
        };
        assert_eq!(
            c.function_name(StageKind::Terrain, c.memory_for_attempt(1)),
            "geobutton-terrain-1024"
        );
        assert_eq!(
            c.function_name(StageKind::LidarPartitioner, c.memory_for_attempt(2)),
            "geobutton-lidar-partitioner-4096"
        );
    }

    #[test]
    fn error_payloads() {
        let f = error_payload(
            br#"{"errorType":"NotFound","errorMessage":"get s3://b/k"}"#,
            "x",
        );
        assert_eq!(
            f,
            Failure::Task(TaskError::new(ErrorKind::NotFound, "get s3://b/k"))
        );
        assert!(!f.is_retryable());
        let f = error_payload(
            br#"{"errorType":"Runtime.ExitError","errorMessage":"signal: killed"}"#,
            "x",
        );
        assert_eq!(f.kind_name(), "Runtime.ExitError");
        assert!(f.is_retryable());
        let f = error_payload(b"<html>oops</html>", "Unhandled");
        assert_eq!(f.kind_name(), "Unhandled");
    }
}
