//! The AWS Batch executor: one array job per step (per ≤ 10 000 tasks), whose children run
//! the stage's container with `GEOBUTTON_MANIFEST` set; each child picks its task by
//! `AWS_BATCH_JOB_ARRAY_INDEX` (the stage binaries' entry adapter does this). A step of one
//! task is a plain job whose command is `STAGE batch --manifest URI --index 0` (variables
//! starting with `AWS_BATCH` cannot be overridden). The command override replaces the job
//! definition's whole command (`[STAGE]`, see `deploy`) and follows the image's ENTRYPOINT
//! (`docker/geobutton-entry`, which dispatches on the stage name), exactly as ECS runs it.
//!
//! Only pending tasks are submitted: each attempt writes a manifest of just those tasks
//! (`tasks/<step>.batch-<attempt>-<part>.jsonl`). `DescribeJobs` is polled until the job is
//! `SUCCEEDED` or `FAILED`; then every task's status object says how it went. A child that
//! ended without writing a status (container killed, out of memory, timed out by the job's
//! `attemptDurationSeconds`, spot reclaim) is described for its reason and counts as a
//! retryable failure. Retries are new array jobs of the failed tasks only, with
//! `retry.retry_memory_mb` of memory if given.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_batch::types::{
    ArrayProperties, ContainerOverrides, JobStatus, JobTimeout, KeyValuePair, ResourceRequirement,
    ResourceType,
};
use chrono::{DateTime, Utc};
use cloud::Store;
use serde::{Deserialize, Serialize};

use super::{
    Attempt, Executor, Failure, RetryPolicy, StepJob, StepOutcome, Submission, TaskObserver,
    TaskRecord, status_failure,
};
use crate::error::DriverError;
use crate::plan::{manifest_uri, read_status, write_manifest};
use crate::stage::StageKind;

/// Largest array job AWS Batch accepts.
pub const MAX_ARRAY_SIZE: usize = 10_000;

/// Default job definition name template.
pub const DEFAULT_DEFINITION_TEMPLATE: &str = "geobutton-{stage}";

/// Called after every SubmitJob with what was submitted (logging, dashboards; the tests use
/// it to play the compute environment).
pub type SubmitHook = Arc<dyn Fn(&SubmittedJob) + Send + Sync>;

/// Settings of the Batch executor.
#[derive(Clone)]
pub struct BatchConfig {
    /// Job queue name or ARN.
    pub job_queue: String,
    /// Job definition name template with `{stage}`.
    pub definition_template: String,
    /// Memory override of the containers, MB (default: the job definition's).
    pub memory_mb: Option<u32>,
    /// vCPUs of the job definitions (for the cost estimate).
    pub vcpus: f32,
    /// `attemptDurationSeconds` of each job (≥ 60): Batch stops a child past it.
    pub deadline: Duration,
    pub retry: RetryPolicy,
    /// Pause between DescribeJobs calls.
    pub poll_interval: Duration,
    /// Batch API endpoint (default: the AWS environment's, e.g. `AWS_ENDPOINT_URL_BATCH`).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub on_submit: Option<SubmitHook>,
}

impl std::fmt::Debug for BatchConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchConfig")
            .field("job_queue", &self.job_queue)
            .field("definition_template", &self.definition_template)
            .field("memory_mb", &self.memory_mb)
            .field("deadline", &self.deadline)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            job_queue: "geobutton".to_string(),
            definition_template: DEFAULT_DEFINITION_TEMPLATE.to_string(),
            memory_mb: None,
            vcpus: 1.0,
            deadline: Duration::from_secs(3600),
            retry: RetryPolicy::default(),
            poll_interval: Duration::from_secs(10),
            endpoint: None,
            region: None,
            on_submit: None,
        }
    }
}

/// One SubmitJob request, as data (what [`BatchExecutor`] sends).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRequest {
    pub job_name: String,
    pub job_queue: String,
    pub job_definition: String,
    /// `None` for a single task (not an array job).
    pub array_size: Option<usize>,
    /// Container environment overrides.
    pub environment: Vec<(String, String)>,
    /// Command override (single-task jobs).
    pub command: Option<Vec<String>>,
    pub memory_mb: Option<u32>,
    pub attempt_duration_s: u64,
}

/// A submitted job: the request, the job id, and the manifest indices of its tasks (child
/// `i` runs line `i` of `manifest`, which is task `tasks[i]` of the step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmittedJob {
    pub request: JobRequest,
    pub job_id: String,
    pub manifest: String,
    pub tasks: Vec<usize>,
    pub submitted: DateTime<Utc>,
}

/// Sanitises a job name: letters, digits, `-` and `_`, at most 128 characters.
fn job_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect()
}

impl BatchConfig {
    /// The job definition of `stage`.
    pub fn definition(&self, stage: StageKind) -> String {
        self.definition_template.replace("{stage}", stage.name())
    }

    /// The SubmitJob request for `n` tasks of `stage` listed in `manifest`.
    pub fn request(
        &self,
        stage: StageKind,
        name: &str,
        manifest: &str,
        n: usize,
        memory_mb: Option<u32>,
        force: bool,
    ) -> JobRequest {
        let (array_size, mut environment, command) = if n == 1 {
            (
                None,
                vec![("GEOBUTTON_MANIFEST".to_string(), manifest.to_string())],
                Some(vec![
                    stage.name().to_string(),
                    "batch".to_string(),
                    "--manifest".to_string(),
                    manifest.to_string(),
                    "--index".to_string(),
                    "0".to_string(),
                ]),
            )
        } else {
            (
                Some(n),
                vec![("GEOBUTTON_MANIFEST".to_string(), manifest.to_string())],
                None,
            )
        };
        if force {
            // Run even where an earlier run finished the task unchanged (`--force`).
            environment.push(("GEOBUTTON_FORCE".to_string(), "1".to_string()));
        }
        JobRequest {
            job_name: job_name(name),
            job_queue: self.job_queue.clone(),
            job_definition: self.definition(stage),
            array_size,
            environment,
            command,
            memory_mb,
            attempt_duration_s: self.deadline.as_secs().max(60),
        }
    }

    fn memory_for_attempt(&self, attempt: u32) -> Option<u32> {
        match (self.retry.retry_memory_mb, self.memory_mb) {
            (Some(r), m) if attempt > 1 => Some(m.map_or(r, |m| m.max(r))),
            (_, m) => m,
        }
    }
}

/// Runs steps as AWS Batch array jobs.
#[derive(Clone)]
pub struct BatchExecutor {
    config: Arc<BatchConfig>,
    client: aws_sdk_batch::Client,
}

impl BatchExecutor {
    /// A client from the standard AWS environment.
    pub fn new(config: BatchConfig) -> BatchExecutor {
        let endpoint = config.endpoint.clone();
        let region = config.region.clone();
        let client = cloud::runtime::block_on(async move {
            let sdk = super::aws_sdk_config(region, None).await;
            let mut b = aws_sdk_batch::config::Builder::from(&sdk);
            // On the client: it wins over AWS_ENDPOINT_URL_BATCH and AWS_ENDPOINT_URL.
            if let Some(e) = endpoint {
                b = b.endpoint_url(e);
            }
            aws_sdk_batch::Client::from_conf(b.build())
        });
        BatchExecutor {
            config: Arc::new(config),
            client,
        }
    }

    /// The executor's settings.
    pub fn config(&self) -> &BatchConfig {
        &self.config
    }

    /// Sends one SubmitJob.
    pub fn submit_request(&self, r: &JobRequest) -> Result<String, DriverError> {
        let client = self.client.clone();
        let r = r.clone();
        cloud::runtime::block_on(async move {
            let mut overrides = ContainerOverrides::builder();
            for (k, v) in &r.environment {
                overrides = overrides.environment(KeyValuePair::builder().name(k).value(v).build());
            }
            if let Some(c) = &r.command {
                overrides = overrides.set_command(Some(c.clone()));
            }
            if let Some(m) = r.memory_mb {
                let req = ResourceRequirement::builder()
                    .r#type(ResourceType::Memory)
                    .value(m.to_string())
                    .build();
                overrides = overrides.resource_requirements(req);
            }
            let mut call = client
                .submit_job()
                .job_name(&r.job_name)
                .job_queue(&r.job_queue)
                .job_definition(&r.job_definition)
                .container_overrides(overrides.build())
                .timeout(
                    JobTimeout::builder()
                        .attempt_duration_seconds(r.attempt_duration_s.min(i32::MAX as u64) as i32)
                        .build(),
                );
            if let Some(n) = r.array_size {
                call = call.array_properties(ArrayProperties::builder().size(n as i32).build());
            }
            let out = call.send().await.map_err(|e| {
                aws_err(format!(
                    "SubmitJob {}: {}",
                    r.job_name,
                    aws_sdk_batch::error::DisplayErrorContext(&e)
                ))
            })?;
            out.job_id()
                .map(str::to_string)
                .ok_or_else(|| aws_err(format!("SubmitJob {}: no job id", r.job_name)))
        })
    }

    /// DescribeJobs of `ids` (≤ 100): `(id, status, reason)`.
    pub fn describe(&self, ids: &[String]) -> Result<Vec<(String, String, String)>, DriverError> {
        let client = self.client.clone();
        let ids = ids.to_vec();
        cloud::runtime::block_on(async move {
            let out = client
                .describe_jobs()
                .set_jobs(Some(ids))
                .send()
                .await
                .map_err(|e| {
                    aws_err(format!(
                        "DescribeJobs: {}",
                        aws_sdk_batch::error::DisplayErrorContext(&e)
                    ))
                })?;
            Ok(out
                .jobs()
                .iter()
                .map(|j| {
                    let mut reason = j.status_reason().unwrap_or_default().to_string();
                    if let Some(c) = j.container() {
                        if let Some(r) = c.reason() {
                            reason = format!("{reason} {r}").trim().to_string();
                        }
                        if let Some(code) = c.exit_code() {
                            reason = format!("{reason} (exit code {code})").trim().to_string();
                        }
                    }
                    (
                        j.job_id().unwrap_or_default().to_string(),
                        j.status()
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_default(),
                        reason,
                    )
                })
                .collect())
        })
    }

    /// Polls until every job in `ids` is SUCCEEDED or FAILED.
    fn wait_jobs(&self, ids: &[String]) -> Result<(), DriverError> {
        let terminal = [JobStatus::Succeeded.as_str(), JobStatus::Failed.as_str()];
        let mut left: Vec<String> = ids.to_vec();
        let clock = Instant::now();
        while !left.is_empty() {
            let mut still = Vec::new();
            for chunk in left.chunks(100) {
                let described = self.describe(chunk)?;
                for id in chunk {
                    let done = described
                        .iter()
                        .any(|(j, s, _)| j == id && terminal.contains(&s.as_str()));
                    if !done {
                        still.push(id.clone());
                    }
                }
            }
            left = still;
            if !left.is_empty() {
                tracing::debug!(
                    jobs = left.len(),
                    waited_s = clock.elapsed().as_secs(),
                    "waiting for Batch jobs"
                );
                std::thread::sleep(self.config.poll_interval);
            }
        }
        Ok(())
    }
}

fn aws_err(message: String) -> DriverError {
    DriverError::Aws {
        service: "batch",
        message,
    }
}

struct BatchSubmission {
    executor: BatchExecutor,
    store: Store,
    job: StepJob,
    observe: TaskObserver,
    first: Vec<SubmittedJob>,
    start: DateTime<Utc>,
}

impl BatchExecutor {
    /// Writes attempt manifests for `indices` and submits their jobs.
    fn submit_attempt(
        &self,
        store: &Store,
        job: &StepJob,
        indices: &[usize],
        attempt: u32,
    ) -> Result<Vec<SubmittedJob>, DriverError> {
        let mut out = Vec::new();
        for (part, chunk) in indices.chunks(MAX_ARRAY_SIZE).enumerate() {
            let suffix = format!("batch-{attempt}-{part}");
            let manifest = manifest_uri(&job.output, &job.step.name, Some(&suffix));
            write_manifest(store, &manifest, chunk.iter().map(|&i| &job.step.tasks[i]))?;
            let request = self.config.request(
                job.step.stage,
                &format!("geobutton-{}-{suffix}", job.step.name),
                &manifest,
                chunk.len(),
                self.config.memory_for_attempt(attempt),
                job.force,
            );
            let submitted = Utc::now();
            let job_id = self.submit_request(&request)?;
            tracing::info!(job_id, tasks = chunk.len(), step = %job.step.name, attempt, "submitted Batch job");
            let s = SubmittedJob {
                request,
                job_id,
                manifest,
                tasks: chunk.to_vec(),
                submitted,
            };
            if let Some(hook) = &self.config.on_submit {
                hook(&s);
            }
            out.push(s);
        }
        Ok(out)
    }
}

impl Submission for BatchSubmission {
    fn wait(self: Box<Self>) -> Result<StepOutcome, DriverError> {
        let BatchSubmission {
            executor,
            store,
            job,
            observe,
            first,
            start,
        } = *self;
        let mut records: Vec<TaskRecord> = job.records.clone();
        let mut jobs = first;
        let mut attempt = 1;
        loop {
            let ids: Vec<String> = jobs.iter().map(|j| j.job_id.clone()).collect();
            executor.wait_jobs(&ids)?;
            let mut retry = Vec::new();
            for sj in &jobs {
                for (child, &i) in sj.tasks.iter().enumerate() {
                    let r = &mut records[i];
                    // A status written by this attempt (a minute of clock skew allowed).
                    let fresh = read_status(&store, &r.status_uri)
                        .filter(|s| s.end >= sj.submitted - chrono::Duration::seconds(60));
                    // A child that could not write the task's status says why beside its
                    // manifest (`cloud::entry::child_error_uri`).
                    let said = || {
                        read_status(&store, &cloud::entry::child_error_uri(&sj.manifest, child))
                            .filter(|s| s.end >= sj.submitted - chrono::Duration::seconds(60))
                    };
                    let failure = match (&fresh, fresh.is_none().then(said).flatten()) {
                        (Some(s), _) => status_failure(s),
                        (None, Some(s)) => status_failure(&s).map(|f| match f {
                            Failure::Task(e) => Failure::Task(cloud::TaskError::new(
                                e.kind,
                                format!(
                                    "job {} child {child} could not run its task: {}",
                                    sj.job_id, e.message
                                ),
                            )),
                            other => other,
                        }),
                        (None, None) => {
                            let id = if sj.request.array_size.is_some() {
                                format!("{}:{child}", sj.job_id)
                            } else {
                                sj.job_id.clone()
                            };
                            let described = executor.describe(std::slice::from_ref(&id))?;
                            let (status, reason) = described
                                .into_iter()
                                .next()
                                .map(|(_, s, r)| (s, r))
                                .unwrap_or_else(|| ("UNKNOWN".into(), "not found".into()));
                            Some(Failure::Runtime {
                                error_type: format!("Batch.{status}"),
                                message: format!(
                                    "job {id} ended without writing {} ({reason})",
                                    r.status_uri
                                ),
                            })
                        }
                    };
                    let retryable = failure.as_ref().is_some_and(Failure::is_retryable);
                    r.attempts.push(Attempt {
                        start: sj.submitted,
                        end: fresh.as_ref().map(|s| s.end).unwrap_or_else(Utc::now),
                        memory_mb: sj.request.memory_mb,
                        target: Some(sj.job_id.clone()),
                        failure,
                    });
                    if fresh.is_some() {
                        r.status = fresh;
                    }
                    if !r.ok() && retryable && attempt < executor.config.retry.max_attempts {
                        retry.push(i);
                    } else {
                        observe(r);
                    }
                }
            }
            if retry.is_empty() {
                break;
            }
            attempt += 1;
            tracing::warn!(tasks = retry.len(), attempt, step = %job.step.name, "retrying failed tasks");
            jobs = executor.submit_attempt(&store, &job, &retry, attempt)?;
        }
        Ok(StepOutcome {
            step: job.step.name.clone(),
            stage: job.step.stage,
            manifest: job.manifest.clone(),
            executor: "batch".to_string(),
            start,
            end: Utc::now(),
            records,
            in_flight: None,
        })
    }
}

impl Executor for BatchExecutor {
    fn name(&self) -> &'static str {
        "batch"
    }

    fn submit(
        &self,
        job: StepJob,
        store: &Store,
        observe: TaskObserver,
    ) -> Result<Box<dyn Submission>, DriverError> {
        let start = Utc::now();
        let pending = job.pending();
        let first = if pending.is_empty() {
            Vec::new()
        } else {
            self.submit_attempt(store, &job, &pending, 1)?
        };
        Ok(Box::new(BatchSubmission {
            executor: self.clone(),
            store: store.clone(),
            job,
            observe,
            first,
            start,
        }))
    }

    fn memory_mb(&self) -> Option<u32> {
        self.config.memory_mb
    }

    fn vcpus(&self) -> Option<f32> {
        Some(self.config.vcpus)
    }

    fn region(&self) -> Option<String> {
        self.client.config().region().map(|r| r.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_construction() {
        let c = BatchConfig {
            job_queue: "q".into(),
            memory_mb: Some(2048),
            retry: RetryPolicy {
                max_attempts: 2,
                retry_memory_mb: Some(8192),
            },
            deadline: Duration::from_secs(10),
            ..BatchConfig::default()
        };
        let r = c.request(
            StageKind::Terrain,
            "geobutton-terrain.batch/1",
            "s3://b/m.jsonl",
            12,
            c.memory_for_attempt(1),
            false,
        );
        assert_eq!(r.job_name, "geobutton-terrain-batch-1");
        assert_eq!(r.job_definition, "geobutton-terrain");
        assert_eq!(r.array_size, Some(12));
        assert_eq!(
            r.environment,
            vec![("GEOBUTTON_MANIFEST".into(), "s3://b/m.jsonl".into())]
        );
        assert_eq!(r.command, None);
        assert_eq!(r.memory_mb, Some(2048));
        assert_eq!(r.attempt_duration_s, 60, "Batch's minimum");
        // One task: not an array (Batch needs 2..10000); the index comes on the command line.
        let r = c.request(
            StageKind::Water,
            "x",
            "s3://b/m.jsonl",
            1,
            c.memory_for_attempt(2),
            true,
        );
        assert_eq!(r.array_size, None);
        assert_eq!(
            r.command.unwrap(),
            [
                "water",
                "batch",
                "--manifest",
                "s3://b/m.jsonl",
                "--index",
                "0"
            ],
            "the override replaces the whole command: the stage comes first"
        );
        assert_eq!(r.memory_mb, Some(8192));
        assert!(
            r.environment
                .contains(&("GEOBUTTON_FORCE".into(), "1".into()))
        );
    }
}
