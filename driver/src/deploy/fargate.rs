//! AWS Batch on Fargate: the resource sizes Fargate accepts, and the compute environment and
//! job queue `geobutton deploy` creates or adopts.
//!
//! Fargate runs a container only at one of its fixed vCPU/memory pairs (AWS Batch user
//! guide, "resourceRequirements" for Fargate): a job definition with any other pair is
//! registered but its jobs never start.

use std::time::{Duration, Instant};

use aws_sdk_batch::types::{
    CeState, CeStatus, CeType, ComputeEnvironmentOrder, ComputeResource, CrType, JqState, JqStatus,
};

use crate::error::DriverError;

/// vCPUs Fargate offers, with the memory sizes (MiB) each accepts: `(vcpus, first, last,
/// step)`.
const FARGATE_SIZES: &[(f32, u32, u32, u32)] = &[
    (0.25, 512, 2048, 512),
    (0.5, 1024, 4096, 1024),
    (1.0, 2048, 8192, 1024),
    (2.0, 4096, 16384, 1024),
    (4.0, 8192, 30720, 1024),
    (8.0, 16384, 61440, 4096),
    (16.0, 32768, 122_880, 8192),
];

/// Checks that Fargate runs containers of `vcpus` vCPUs and `memory_mb` MiB; the error
/// lists the sizes it would take.
///
/// ```
/// use driver::deploy::fargate::check_size;
/// assert!(check_size(1.0, 4096).is_ok());
/// assert!(check_size(1.0, 1024).unwrap_err().contains("2048, 3072, 4096"));
/// assert!(check_size(0.25, 1536).is_err()); // 512, 1024 or 2048 only
/// assert!(check_size(3.0, 8192).unwrap_err().contains("0.25, 0.5, 1, 2, 4, 8, 16"));
/// ```
pub fn check_size(vcpus: f32, memory_mb: u32) -> Result<(), String> {
    let Some(&(_, first, last, step)) = FARGATE_SIZES.iter().find(|s| s.0 == vcpus) else {
        let offered: Vec<String> = FARGATE_SIZES.iter().map(|s| s.0.to_string()).collect();
        return Err(format!(
            "Fargate has no {vcpus} vCPU size: it offers {} vCPUs",
            offered.join(", ")
        ));
    };
    // 0.25 vCPU takes 512, 1024, 2048 (not 1536).
    let sizes: Vec<u32> = if vcpus == 0.25 {
        vec![512, 1024, 2048]
    } else {
        (first..=last).step_by(step as usize).collect()
    };
    if sizes.contains(&memory_mb) {
        return Ok(());
    }
    let list: Vec<String> = if sizes.len() <= 8 {
        sizes.iter().map(u32::to_string).collect()
    } else {
        vec![format!("{first} to {last} in steps of {step}")]
    };
    Err(format!(
        "Fargate runs {vcpus} vCPU with {} MiB of memory, not {memory_mb}",
        list.join(", ")
    ))
}

/// Longest wait for a compute environment or job queue to become `VALID`.
pub const READY_WAIT: Duration = Duration::from_secs(300);

fn aws(e: impl std::fmt::Display) -> DriverError {
    DriverError::Aws {
        service: "batch",
        message: e.to_string(),
    }
}

/// Where the containers of a compute environment run.
#[derive(Debug, Clone, Copy)]
pub struct Network<'a> {
    pub subnets: &'a [String],
    pub security_groups: &'a [String],
}

/// Creates the managed Fargate compute environment `name` in `network`, or adopts it when
/// it exists (refusing one that is not Fargate), and waits (at most [`READY_WAIT`]) until it
/// is `VALID`. `service_role` `None` leaves AWS to use its service-linked role. Returns the
/// ARN and a line saying what was done.
pub async fn ensure_compute_environment(
    batch: &aws_sdk_batch::Client,
    name: &str,
    network: Network<'_>,
    max_vcpus: i32,
    service_role: Option<&str>,
) -> Result<(String, String), DriverError> {
    let Network {
        subnets,
        security_groups,
    } = network;
    let existing = batch
        .describe_compute_environments()
        .compute_environments(name)
        .send()
        .await
        .map_err(|e| {
            aws(format!(
                "DescribeComputeEnvironments {name}: {}",
                aws_sdk_batch::error::DisplayErrorContext(&e)
            ))
        })?;
    let line = match existing.compute_environments().first() {
        Some(ce) => {
            let kind = ce.compute_resources().and_then(|r| r.r#type()).cloned();
            if !matches!(kind, Some(CrType::Fargate | CrType::FargateSpot)) {
                return Err(DriverError::Invalid(format!(
                    "deploy: compute environment {name} exists and is not Fargate ({}): \
                     name another with --compute-environment",
                    kind.map_or("unmanaged".to_string(), |k| k.as_str().to_string())
                )));
            }
            format!("compute environment {name} exists (Fargate)")
        }
        None => {
            batch
                .create_compute_environment()
                .compute_environment_name(name)
                .r#type(CeType::Managed)
                .state(CeState::Enabled)
                .set_service_role(service_role.map(str::to_string))
                .tags(super::MADE_BY.0, super::MADE_BY.1)
                .compute_resources(
                    ComputeResource::builder()
                        .r#type(CrType::Fargate)
                        .maxv_cpus(max_vcpus)
                        .set_subnets(Some(subnets.to_vec()))
                        .set_security_group_ids(Some(security_groups.to_vec()))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    aws(format!(
                        "CreateComputeEnvironment {name}: {}",
                        aws_sdk_batch::error::DisplayErrorContext(&e)
                    ))
                })?;
            format!(
                "created compute environment {name} (Fargate, up to {max_vcpus} vCPUs, subnets {})",
                subnets.join(",")
            )
        }
    };
    let deadline = Instant::now() + READY_WAIT;
    loop {
        let out = batch
            .describe_compute_environments()
            .compute_environments(name)
            .send()
            .await
            .map_err(|e| aws(aws_sdk_batch::error::DisplayErrorContext(&e)))?;
        let ce = out.compute_environments().first().ok_or_else(|| {
            aws(format!(
                "compute environment {name} vanished after creation"
            ))
        })?;
        match ce.status() {
            Some(CeStatus::Valid) => {
                let arn = ce.compute_environment_arn().unwrap_or(name).to_string();
                return Ok((arn, line));
            }
            Some(CeStatus::Invalid) => {
                return Err(aws(format!(
                    "compute environment {name} is INVALID: {}",
                    ce.status_reason().unwrap_or("no reason given")
                )));
            }
            _ if Instant::now() >= deadline => {
                return Err(aws(format!(
                    "compute environment {name} not VALID after {} s",
                    READY_WAIT.as_secs()
                )));
            }
            _ => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}

/// Creates job queue `name` on the compute environment `ce_arn`, or adopts it when it
/// exists, and waits (at most [`READY_WAIT`]) until it is `VALID`.
pub async fn ensure_job_queue(
    batch: &aws_sdk_batch::Client,
    name: &str,
    ce_arn: &str,
) -> Result<String, DriverError> {
    let line = if !queue_exists(batch, name).await? {
        batch
            .create_job_queue()
            .job_queue_name(name)
            .state(JqState::Enabled)
            .priority(1)
            .tags(super::MADE_BY.0, super::MADE_BY.1)
            .compute_environment_order(
                ComputeEnvironmentOrder::builder()
                    .order(1)
                    .compute_environment(ce_arn)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                aws(format!(
                    "CreateJobQueue {name}: {}",
                    aws_sdk_batch::error::DisplayErrorContext(&e)
                ))
            })?;
        format!("created job queue {name}")
    } else {
        format!("job queue {name} exists")
    };
    wait_for_queue(batch, name).await?;
    Ok(line)
}

/// Checks that job queue `name` exists, waiting (at most [`READY_WAIT`]) until it is
/// `VALID` and enabled: the queue runs were told to use when deploy makes none.
pub async fn require_job_queue(
    batch: &aws_sdk_batch::Client,
    name: &str,
) -> Result<String, DriverError> {
    if !queue_exists(batch, name).await? {
        return Err(DriverError::Invalid(format!(
            "deploy: job queue {name} does not exist: pass --subnets and --security-groups to \
             create a Fargate compute environment and the queue, or name an existing queue \
             with --job-queue"
        )));
    }
    wait_for_queue(batch, name).await?;
    Ok(format!("job queue {name} is ready"))
}

/// Whether job queue `name` exists.
async fn queue_exists(batch: &aws_sdk_batch::Client, name: &str) -> Result<bool, DriverError> {
    let out = batch
        .describe_job_queues()
        .job_queues(name)
        .send()
        .await
        .map_err(|e| {
            aws(format!(
                "DescribeJobQueues {name}: {}",
                aws_sdk_batch::error::DisplayErrorContext(&e)
            ))
        })?;
    Ok(!out.job_queues().is_empty())
}

/// Waits (at most [`READY_WAIT`]) until job queue `name` is `VALID` and enabled.
async fn wait_for_queue(batch: &aws_sdk_batch::Client, name: &str) -> Result<(), DriverError> {
    let deadline = Instant::now() + READY_WAIT;
    loop {
        let out = batch
            .describe_job_queues()
            .job_queues(name)
            .send()
            .await
            .map_err(|e| aws(aws_sdk_batch::error::DisplayErrorContext(&e)))?;
        let q = out
            .job_queues()
            .first()
            .ok_or_else(|| aws(format!("job queue {name} vanished after creation")))?;
        match (q.status(), q.state()) {
            (Some(JqStatus::Valid), Some(JqState::Enabled)) => return Ok(()),
            (Some(JqStatus::Valid), _) => {
                return Err(DriverError::Invalid(format!(
                    "deploy: job queue {name} exists but is disabled: enable it \
                     (aws batch update-job-queue --state ENABLED)"
                )));
            }
            (Some(JqStatus::Invalid), _) => {
                return Err(aws(format!(
                    "job queue {name} is INVALID: {}",
                    q.status_reason().unwrap_or("no reason given")
                )));
            }
            _ if Instant::now() >= deadline => {
                return Err(aws(format!(
                    "job queue {name} not VALID after {} s",
                    READY_WAIT.as_secs()
                )));
            }
            _ => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}
