//! `geobutton deploy`: the AWS resources the `lambda` and `batch` executors use.
//!
//! - an S3 layout under `s3://BUCKET/PREFIX/`: `inputs/`, `runs/` (one output location per
//!   run) and a `README.txt` describing it;
//! - one Lambda function per stage and memory size, `geobutton-{stage}-{memory}`, runtime
//!   `provided.al2023`, handler `bootstrap`, from the zips of
//!   `cargo lambda build --release --output-format zip` (x86_64; `--arm64` where the
//!   aarch64 target is installed), timeout 900 s;
//! - one AWS Batch job definition per stage, `geobutton-{stage}`, with the command
//!   `[STAGE]` for the image the repository's `Dockerfile` builds, whose ENTRYPOINT
//!   (`docker/geobutton-entry`) runs the stage binary named first (the children get
//!   `GEOBUTTON_MANIFEST` and `AWS_BATCH_JOB_ARRAY_INDEX`); for Fargate (the default) with
//!   `platformCapabilities: FARGATE`, the network and platform configuration, the
//!   execution role and a vCPU/memory pair Fargate runs ([`fargate::check_size`]);
//! - a managed Fargate compute environment (`geobutton-fargate`) in the `--subnets` and
//!   `--security-groups` given, else in the default VPC's ([`vpc`]), and the job queue the
//!   `batch` executor submits to (`geobutton`) on it, created or adopted; with
//!   `--existing-job-queue` (and for EC2) the queue must exist instead. See `docs/deploy.md`.
//!
//! [`plan`] lists what would be done (`--dry-run` prints it); [`apply`] does it, creating
//! what is missing and updating code/definitions that exist. [`role_policy`] and
//! [`driver_policy`] are the IAM permissions needed.

pub mod fargate;
pub mod iam;
pub mod undeploy;
pub mod vpc;

/// Tag (key, value) on every resource `deploy` creates: `undeploy` removes only these.
pub const MADE_BY: (&str, &str) = ("made-by", "geobutton-deploy");

use std::path::PathBuf;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, FunctionCode, Runtime};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::DriverError;
use crate::exec::lambda::function_name;
use crate::stage::StageKind;

/// What to deploy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployConfig {
    pub bucket: String,
    /// Key prefix of the layout (no leading or trailing `/`).
    pub prefix: String,
    pub region: Option<String>,
    /// Endpoint of S3, Lambda and Batch (a loopback emulator in tests).
    pub endpoint: Option<String>,
    pub stages: Vec<StageKind>,
    /// Lambda function name template (`{stage}`, `{memory}`).
    pub function_template: String,
    /// Memory sizes to deploy each stage function at, MB.
    pub memories: Vec<u32>,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    /// Folder of `cargo lambda build --output-format zip` (`target/lambda`): `<stage>/bootstrap.zip`.
    pub zips: PathBuf,
    /// Execution role of the functions (see [`role_policy`]).
    pub lambda_role_arn: Option<String>,
    pub lambda_timeout_s: i32,
    /// Container image holding the stage binaries, for the Batch job definitions.
    pub batch_image: Option<String>,
    pub batch_job_role_arn: Option<String>,
    pub batch_execution_role_arn: Option<String>,
    pub batch_definition_template: String,
    pub batch_vcpus: f32,
    pub batch_memory_mb: u32,
    /// What the job definitions run on: Fargate (default) or EC2 instances.
    pub batch_platform: BatchPlatform,
    /// Fargate: give the containers a public IP (needed to pull the image from ECR in a
    /// public subnet without a NAT gateway, as in the default VPC).
    pub batch_assign_public_ip: bool,
    /// Subnets of the Fargate compute environment to create (none: the default VPC's).
    pub batch_subnets: Vec<String>,
    pub batch_security_groups: Vec<String>,
    /// Name of the compute environment created or adopted.
    pub batch_compute_environment: String,
    /// Name of the job queue created, adopted or required.
    pub batch_job_queue: String,
    /// The job queue exists (on a compute environment of one's own): require it, create no
    /// compute environment.
    pub batch_existing_queue: bool,
    /// Most vCPUs the compute environment runs at once.
    pub batch_max_vcpus: u32,
    /// Service role of the compute environment; `None` uses the account's service-linked
    /// role `AWSServiceRoleForBatch` (made by AWS on first use), as AWS recommends.
    pub batch_service_role_arn: Option<String>,
    /// The bucket exists (perhaps owned by another team or made by hand): do not create it.
    pub existing_bucket: bool,
    /// Create (or update) the roles the functions and containers run as ([`iam`]), and use
    /// them where no role ARN is given.
    pub create_roles: bool,
    /// Where the roles may write (`s3://bucket/prefix`); empty: the layout,
    /// `s3://BUCKET/PREFIX`.
    pub output_prefixes: Vec<String>,
    /// Buckets the roles may read (inputs such as a requester-pays copy of CNIG data).
    pub input_buckets: Vec<String>,
}

impl Default for DeployConfig {
    fn default() -> Self {
        DeployConfig {
            bucket: String::new(),
            prefix: "geobutton".into(),
            region: None,
            endpoint: None,
            stages: StageKind::ALL.to_vec(),
            function_template: crate::exec::lambda::DEFAULT_FUNCTION_TEMPLATE.into(),
            memories: vec![2048],
            architecture: "x86_64".into(),
            zips: PathBuf::from("target/lambda"),
            lambda_role_arn: None,
            lambda_timeout_s: 900,
            batch_image: None,
            batch_job_role_arn: None,
            batch_execution_role_arn: None,
            batch_definition_template: crate::exec::batch::DEFAULT_DEFINITION_TEMPLATE.into(),
            batch_vcpus: 1.0,
            batch_memory_mb: 4096,
            batch_platform: BatchPlatform::Fargate,
            batch_assign_public_ip: true,
            batch_subnets: Vec::new(),
            batch_security_groups: Vec::new(),
            batch_compute_environment: "geobutton-fargate".into(),
            batch_job_queue: "geobutton".into(),
            batch_existing_queue: false,
            batch_max_vcpus: 256,
            batch_service_role_arn: None,
            existing_bucket: false,
            create_roles: false,
            output_prefixes: Vec::new(),
            input_buckets: Vec::new(),
        }
    }
}

/// What AWS Batch runs the containers on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BatchPlatform {
    /// Serverless containers at fixed vCPU/memory pairs, billed per second.
    Fargate,
    /// The EC2 instances of a compute environment of one's own.
    Ec2,
}

/// One deployment action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Create the role trusted by `service`, or update its trust; put `policy` as its
    /// inline permissions and attach the `managed` policies.
    CreateRole {
        name: String,
        service: String,
        policy: Option<Value>,
        managed: Vec<String>,
    },
    CreateBucket {
        bucket: String,
    },
    PutObject {
        uri: String,
        bytes: usize,
    },
    /// Create the function, or update its code and configuration if it exists.
    DeployFunction {
        name: String,
        stage: StageKind,
        memory_mb: u32,
        architecture: String,
        zip: PathBuf,
        role: String,
        timeout_s: i32,
    },
    RegisterJobDefinition {
        name: String,
        stage: StageKind,
        image: String,
        vcpus: f32,
        memory_mb: u32,
        job_role: Option<String>,
        execution_role: Option<String>,
        platform: BatchPlatform,
        assign_public_ip: bool,
    },
    /// Create the managed Fargate compute environment, or adopt it; wait until `VALID`.
    CreateComputeEnvironment {
        name: String,
        /// Empty: the default VPC's subnets and `default` security group, looked up then.
        subnets: Vec<String>,
        security_groups: Vec<String>,
        max_vcpus: u32,
        service_role: Option<String>,
    },
    /// Create the job queue on the compute environment, or adopt it; wait until `VALID`.
    CreateJobQueue {
        name: String,
        compute_environment: String,
    },
    /// The job queue must exist, `VALID` and enabled (no compute environment was asked for).
    RequireJobQueue {
        name: String,
    },
}

fn layout_readme(c: &DeployConfig) -> String {
    format!(
        "geobutton layout of s3://{b}/{p}/\n\
         inputs/   input data (LAS/LAZ, COGs, station tables, plots)\n\
         runs/     one output location per run: products, tasks/*.jsonl manifests,\n\
         \x20         tasks/run.json, status/<task>.json, report.json, report/*.png\n\
         Lambda functions: {t} for stages {s}\n\
         Batch job definitions: {d}\n",
        b = c.bucket,
        p = c.prefix,
        t = c.function_template,
        s = c
            .stages
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", "),
        d = c.batch_definition_template,
    )
}

/// The actions a deployment takes, in order; errors name what is missing.
pub fn plan(c: &DeployConfig) -> Result<Vec<Action>, DriverError> {
    if c.bucket.is_empty() {
        return Err(DriverError::Invalid("deploy: --bucket is required".into()));
    }
    if !matches!(c.architecture.as_str(), "x86_64" | "arm64") {
        return Err(DriverError::Invalid(format!(
            "deploy: architecture {:?} is not x86_64 or arm64",
            c.architecture
        )));
    }
    let mut out = Vec::new();
    if !c.existing_bucket {
        out.push(Action::CreateBucket {
            bucket: c.bucket.clone(),
        });
    }
    out.push(Action::PutObject {
        uri: format!("s3://{}/{}/README.txt", c.bucket, c.prefix),
        bytes: layout_readme(c).len(),
    });
    let created = |name: &str| c.create_roles.then(|| name.to_string());
    if c.create_roles {
        let permissions = role_policy(c)?;
        let role = |name: &str, service: &str, policy: Option<&Value>, managed: &[&str]| {
            Action::CreateRole {
                name: name.to_string(),
                service: service.to_string(),
                policy: policy.cloned(),
                managed: managed.iter().map(|m| m.to_string()).collect(),
            }
        };
        if c.lambda_role_arn.is_none() {
            out.push(role(
                iam::LAMBDA_ROLE,
                "lambda.amazonaws.com",
                Some(&permissions),
                &[],
            ));
        }
        if c.batch_image.is_some() {
            if c.batch_job_role_arn.is_none() {
                out.push(role(
                    iam::BATCH_JOB_ROLE,
                    "ecs-tasks.amazonaws.com",
                    Some(&permissions),
                    &[],
                ));
            }
            if c.batch_execution_role_arn.is_none() {
                out.push(role(
                    iam::BATCH_EXECUTION_ROLE,
                    "ecs-tasks.amazonaws.com",
                    None,
                    &[iam::ECS_EXECUTION_POLICY],
                ));
            }
        }
    }
    if let Some(role) = c
        .lambda_role_arn
        .clone()
        .or_else(|| created(iam::LAMBDA_ROLE))
    {
        for &stage in &c.stages {
            for &m in &c.memories {
                if !(128..=10_240).contains(&m) {
                    return Err(DriverError::Invalid(format!(
                        "deploy: Lambda memory {m} MB is outside 128..=10240"
                    )));
                }
                out.push(Action::DeployFunction {
                    name: function_name(&c.function_template, stage, m),
                    stage,
                    memory_mb: m,
                    architecture: c.architecture.clone(),
                    zip: c.zips.join(stage.name()).join("bootstrap.zip"),
                    role: role.clone(),
                    timeout_s: c.lambda_timeout_s,
                });
            }
        }
    }
    if let Some(image) = &c.batch_image {
        check_batch(c)?;
        for &stage in &c.stages {
            out.push(Action::RegisterJobDefinition {
                name: c.batch_definition_template.replace("{stage}", stage.name()),
                stage,
                image: image.clone(),
                vcpus: c.batch_vcpus,
                memory_mb: c.batch_memory_mb,
                job_role: c
                    .batch_job_role_arn
                    .clone()
                    .or_else(|| created(iam::BATCH_JOB_ROLE)),
                execution_role: c
                    .batch_execution_role_arn
                    .clone()
                    .or_else(|| created(iam::BATCH_EXECUTION_ROLE)),
                platform: c.batch_platform,
                assign_public_ip: c.batch_assign_public_ip,
            });
        }
        let queue = if c.batch_existing_queue || c.batch_platform == BatchPlatform::Ec2 {
            vec![Action::RequireJobQueue {
                name: c.batch_job_queue.clone(),
            }]
        } else {
            vec![
                Action::CreateComputeEnvironment {
                    name: c.batch_compute_environment.clone(),
                    subnets: c.batch_subnets.clone(),
                    security_groups: c.batch_security_groups.clone(),
                    max_vcpus: c.batch_max_vcpus,
                    service_role: c.batch_service_role_arn.clone(),
                },
                Action::CreateJobQueue {
                    name: c.batch_job_queue.clone(),
                    compute_environment: c.batch_compute_environment.clone(),
                },
            ]
        };
        out.extend(queue);
    }
    // Roles first (a compute environment or function may name one), then the queue (a
    // missing one stops the deployment before anything else is made), then the rest.
    out.sort_by_key(|a| match a {
        Action::CreateRole { .. } => 0,
        Action::RequireJobQueue { .. }
        | Action::CreateComputeEnvironment { .. }
        | Action::CreateJobQueue { .. } => 1,
        _ => 2,
    });
    Ok(out)
}

/// The Batch settings, checked as AWS would check them, before anything is made.
fn check_batch(c: &DeployConfig) -> Result<(), DriverError> {
    let bad = |m: String| Err(DriverError::Invalid(format!("deploy: {m}")));
    match c.batch_platform {
        BatchPlatform::Fargate => {
            if let Err(m) = fargate::check_size(c.batch_vcpus, c.batch_memory_mb) {
                return bad(format!("{m} (--batch-vcpus, --batch-memory)"));
            }
            // Fargate pulls the image and writes logs as the execution role.
            if c.batch_execution_role_arn.is_none() && !c.create_roles {
                return bad(
                    "Fargate job definitions need an execution role (--batch-execution-role, \
                     or --create-roles) to pull the image and write logs"
                        .into(),
                );
            }
        }
        BatchPlatform::Ec2 => {
            if c.batch_vcpus < 1.0 || c.batch_vcpus.fract() != 0.0 || c.batch_memory_mb < 4 {
                return bad(format!(
                    "EC2 job definitions take whole vCPUs (≥ 1) and at least 4 MiB, not {} vCPU and {} MiB",
                    c.batch_vcpus, c.batch_memory_mb
                ));
            }
            if !c.batch_subnets.is_empty() {
                return bad(
                    "deploy creates Fargate compute environments only: for EC2, make the \
                     compute environment and queue yourself and name the queue with --job-queue"
                        .into(),
                );
            }
        }
    }
    if c.batch_existing_queue && !c.batch_subnets.is_empty() {
        return bad(
            "--existing-job-queue uses a queue of your own: --subnets and --security-groups \
             are for the compute environment deploy would make"
                .into(),
        );
    }
    if !c.batch_subnets.is_empty() && c.batch_security_groups.is_empty() {
        return bad("--subnets needs --security-groups (the containers' security groups)".into());
    }
    if c.batch_subnets.is_empty() && !c.batch_security_groups.is_empty() {
        return bad("--security-groups needs --subnets".into());
    }
    if !(1..=100_000).contains(&c.batch_max_vcpus) {
        return bad(format!(
            "--max-vcpus {} is outside 1..=100000",
            c.batch_max_vcpus
        ));
    }
    Ok(())
}

/// Longest wait for a role just made to become assumable by Lambda (IAM is eventually
/// consistent).
pub const ROLE_PROPAGATION_WAIT: std::time::Duration = std::time::Duration::from_secs(90);

/// Longest wait for a created or updated function to become ready.
pub const FUNCTION_READY_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Waits until function `name` is `Active` with its last update `Successful`: AWS creates
/// and updates functions asynchronously, and invoking one that is still `Pending` (or whose
/// update is `InProgress`) fails. Polls GetFunctionConfiguration (1 s, then up to 5 s
/// apart) until `wait` has passed; `Failed` is an error with AWS's reason.
async fn wait_until_ready(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
    wait: std::time::Duration,
) -> Result<String, DriverError> {
    use aws_sdk_lambda::types::{LastUpdateStatus, State};
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = std::time::Duration::from_secs(1);
    loop {
        let c = lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .map_err(failed("lambda", format!("GetFunctionConfiguration {name}")))?;
        let (state, update) = (c.state(), c.last_update_status());
        if state == Some(&State::Failed) || update == Some(&LastUpdateStatus::Failed) {
            return Err(aws(
                "lambda",
                format!(
                    "function {name} failed to become ready: {}",
                    c.state_reason()
                        .or(c.last_update_status_reason())
                        .unwrap_or("no reason given")
                ),
            ));
        }
        // AWS reports both for every function; a missing one is waited for like Pending.
        if state == Some(&State::Active) && update == Some(&LastUpdateStatus::Successful) {
            return Ok(format!("function {name} active"));
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Err(aws(
                "lambda",
                format!(
                    "function {name} not ready after {} s (state {state:?}, last update {update:?})",
                    wait.as_secs()
                ),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(5));
    }
}

async fn sdk_config(c: &DeployConfig) -> aws_config::SdkConfig {
    crate::exec::aws_sdk_config(c.region.clone(), c.endpoint.clone()).await
}

fn aws(service: &'static str, message: String) -> DriverError {
    DriverError::Aws { service, message }
}

/// A `map_err` for an SDK error of `service`: `what` was asked, and the error in full.
pub(crate) fn failed<E: std::error::Error>(
    service: &'static str,
    what: String,
) -> impl FnOnce(E) -> DriverError {
    move |e| {
        aws(
            service,
            format!("{what}: {}", aws_sdk_lambda::error::DisplayErrorContext(&e)),
        )
    }
}

/// Carries out `actions`; returns one line per action done.
pub fn apply(c: &DeployConfig, actions: &[Action]) -> Result<Vec<String>, DriverError> {
    let c = c.clone();
    let actions = actions.to_vec();
    cloud::runtime::block_on(async move {
        let sdk = sdk_config(&c).await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(c.endpoint.is_some())
                .build(),
        );
        let lambda = aws_sdk_lambda::Client::new(&sdk);
        let batch = aws_sdk_batch::Client::new(&sdk);
        let iam_client = aws_sdk_iam::Client::new(&sdk);
        let mut done = Vec::new();
        let mut ce_arn: Option<String> = None;
        // Roles made by this deployment: name → ARN (actions name them before AWS has ARNs).
        let mut roles = std::collections::HashMap::<String, String>::new();
        let arn_of = |roles: &std::collections::HashMap<String, String>, r: &str| {
            roles.get(r).cloned().unwrap_or_else(|| r.to_string())
        };
        for a in &actions {
            match a {
                Action::CreateRole {
                    name,
                    service,
                    policy,
                    managed,
                } => {
                    let managed: Vec<&str> = managed.iter().map(String::as_str).collect();
                    let (arn, line) =
                        iam::ensure_role(&iam_client, name, service, policy.as_ref(), &managed)
                            .await?;
                    roles.insert(name.clone(), arn);
                    done.push(line);
                }
                Action::CreateBucket { bucket } => {
                    // Outside us-east-1, S3 refuses a CreateBucket without the region's
                    // location constraint (IllegalLocationConstraintException).
                    let region = sdk.region().map(|r| r.to_string());
                    let mut request = s3.create_bucket().bucket(bucket);
                    if let Some(r) = region.as_deref().filter(|r| *r != "us-east-1") {
                        request = request.create_bucket_configuration(
                            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                                .location_constraint(
                                    aws_sdk_s3::types::BucketLocationConstraint::from(r),
                                )
                                .build(),
                        );
                    }
                    match request.send().await {
                        Ok(_) => done.push(format!("created bucket {bucket}")),
                        Err(e)
                            if e.as_service_error()
                                .is_some_and(|s| s.is_bucket_already_owned_by_you()) =>
                        {
                            done.push(format!("bucket {bucket} exists"))
                        }
                        Err(e) => {
                            return Err(failed("s3", format!("CreateBucket {bucket}"))(e));
                        }
                    }
                }
                Action::PutObject { uri, .. } => {
                    let key = format!("{}/README.txt", c.prefix);
                    s3.put_object()
                        .bucket(&c.bucket)
                        .key(&key)
                        .body(layout_readme(&c).into_bytes().into())
                        .send()
                        .await
                        .map_err(failed("s3", format!("PutObject {uri}")))?;
                    done.push(format!("wrote {uri}"));
                }
                Action::DeployFunction {
                    name,
                    memory_mb,
                    architecture,
                    zip,
                    role,
                    timeout_s,
                    ..
                } => {
                    let bytes = std::fs::read(zip).map_err(|e| {
                        DriverError::Invalid(format!(
                            "{}: {e} (build it with `cargo lambda build --release --output-format zip`)",
                            zip.display()
                        ))
                    })?;
                    let arch = Architecture::from(architecture.as_str());
                    let exists = match lambda.get_function().function_name(name).send().await {
                        Ok(_) => true,
                        Err(e)
                            if e.as_service_error()
                                .is_some_and(|s| s.is_resource_not_found_exception()) =>
                        {
                            false
                        }
                        Err(e) => {
                            return Err(failed("lambda", format!("GetFunction {name}"))(e));
                        }
                    };
                    if exists {
                        // Configuration first (role, memory, timeout, runtime), then the
                        // code: Lambda takes one update at a time, so wait in between.
                        let role = arn_of(&roles, role);
                        wait_until_ready(&lambda, name, FUNCTION_READY_WAIT).await?;
                        lambda
                            .update_function_configuration()
                            .function_name(name)
                            .role(&role)
                            .memory_size(*memory_mb as i32)
                            .timeout(*timeout_s)
                            .runtime(Runtime::Providedal2023)
                            .handler("bootstrap")
                            .send()
                            .await
                            .map_err(failed(
                                "lambda",
                                format!("UpdateFunctionConfiguration {name}"),
                            ))?;
                        wait_until_ready(&lambda, name, FUNCTION_READY_WAIT).await?;
                        lambda
                            .update_function_code()
                            .function_name(name)
                            .zip_file(Blob::new(bytes))
                            .architectures(arch)
                            .send()
                            .await
                            .map_err(failed("lambda", format!("UpdateFunctionCode {name}")))?;
                        done.push(format!("updated function {name}"));
                    } else {
                        let role = arn_of(&roles, role);
                        // A role IAM has just made cannot be assumed by Lambda for some
                        // seconds: wait for it (bounded), as AWS advises.
                        let deadline = std::time::Instant::now() + ROLE_PROPAGATION_WAIT;
                        loop {
                            let created = lambda
                                .create_function()
                                .function_name(name)
                                .runtime(Runtime::Providedal2023)
                                .handler("bootstrap")
                                .role(&role)
                                .memory_size(*memory_mb as i32)
                                .timeout(*timeout_s)
                                .architectures(arch.clone())
                                .code(
                                    FunctionCode::builder()
                                        .zip_file(Blob::new(bytes.clone()))
                                        .build(),
                                )
                                .description("geobutton stage (cloud::entry Lambda mode)")
                                .tags(MADE_BY.0, MADE_BY.1)
                                .send()
                                .await;
                            match created {
                                Ok(_) => break,
                                Err(e)
                                    if e.as_service_error().is_some_and(|s| {
                                        s.is_invalid_parameter_value_exception()
                                            && s.meta()
                                                .message()
                                                .is_some_and(|m| m.contains("cannot be assumed"))
                                    }) && std::time::Instant::now() < deadline =>
                                {
                                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                                }
                                Err(e) => {
                                    return Err(
                                        failed("lambda", format!("CreateFunction {name}"))(e),
                                    );
                                }
                            }
                        }
                        done.push(format!(
                            "created function {name} ({memory_mb} MB, {architecture})"
                        ));
                    }
                    done.push(wait_until_ready(&lambda, name, FUNCTION_READY_WAIT).await?);
                }
                Action::RegisterJobDefinition {
                    name,
                    stage,
                    image,
                    vcpus,
                    memory_mb,
                    job_role,
                    execution_role,
                    platform,
                    assign_public_ip,
                } => {
                    use aws_sdk_batch::types::{
                        AssignPublicIp, ContainerProperties, FargatePlatformConfiguration,
                        JobDefinitionType, NetworkConfiguration, PlatformCapability,
                        ResourceRequirement, ResourceType,
                    };
                    let req = |t: ResourceType, v: String| {
                        Ok::<_, DriverError>(
                            ResourceRequirement::builder().r#type(t).value(v).build(),
                        )
                    };
                    let mut props = ContainerProperties::builder()
                        .image(image)
                        .command(stage.name())
                        .resource_requirements(req(ResourceType::Vcpu, vcpus.to_string())?)
                        .resource_requirements(req(ResourceType::Memory, memory_mb.to_string())?)
                        .set_job_role_arn(job_role.as_deref().map(|r| arn_of(&roles, r)))
                        .set_execution_role_arn(
                            execution_role.as_deref().map(|r| arn_of(&roles, r)),
                        );
                    let capability = match platform {
                        BatchPlatform::Fargate => {
                            props = props
                                .network_configuration(
                                    NetworkConfiguration::builder()
                                        .assign_public_ip(if *assign_public_ip {
                                            AssignPublicIp::Enabled
                                        } else {
                                            AssignPublicIp::Disabled
                                        })
                                        .build(),
                                )
                                .fargate_platform_configuration(
                                    FargatePlatformConfiguration::builder()
                                        .platform_version("LATEST")
                                        .build(),
                                );
                            PlatformCapability::Fargate
                        }
                        BatchPlatform::Ec2 => PlatformCapability::Ec2,
                    };
                    batch
                        .register_job_definition()
                        .job_definition_name(name)
                        .r#type(JobDefinitionType::Container)
                        .platform_capabilities(capability)
                        .container_properties(props.build())
                        .tags(MADE_BY.0, MADE_BY.1)
                        .send()
                        .await
                        .map_err(failed("batch", format!("RegisterJobDefinition {name}")))?;
                    done.push(format!(
                        "registered job definition {name} ({platform:?}, {vcpus} vCPU, {memory_mb} MiB)"
                    ));
                }
                Action::CreateComputeEnvironment {
                    name,
                    subnets,
                    security_groups,
                    max_vcpus,
                    service_role,
                } => {
                    // No subnets given: the default VPC's, as the AWS console does.
                    let (subnets, security_groups) = if subnets.is_empty() {
                        let net = vpc::default_network(&sdk, c.endpoint.as_deref()).await?;
                        done.push(format!(
                            "default VPC {}: {} subnets ({}), security group {}",
                            net.vpc,
                            net.subnets.len(),
                            net.subnets.join(", "),
                            net.security_group
                        ));
                        (net.subnets, vec![net.security_group])
                    } else {
                        (subnets.clone(), security_groups.clone())
                    };
                    let (arn, line) = fargate::ensure_compute_environment(
                        &batch,
                        name,
                        fargate::Network {
                            subnets: &subnets,
                            security_groups: &security_groups,
                        },
                        i32::try_from(*max_vcpus).unwrap_or(i32::MAX),
                        service_role.as_deref(),
                    )
                    .await?;
                    ce_arn = Some(arn);
                    done.push(line);
                }
                Action::CreateJobQueue {
                    name,
                    compute_environment,
                } => {
                    let ce = ce_arn.clone().ok_or_else(|| {
                        DriverError::Invalid(format!(
                            "deploy: job queue {name} planned before its compute environment {compute_environment}"
                        ))
                    })?;
                    done.push(fargate::ensure_job_queue(&batch, name, &ce).await?);
                }
                Action::RequireJobQueue { name } => {
                    done.push(fargate::require_job_queue(&batch, name).await?);
                }
            }
        }
        Ok(done)
    })
}

/// The permissions of the functions' and containers' roles for `c`: its output prefixes
/// (default: the layout) and input buckets ([`iam::role_policy`]).
pub fn role_policy(c: &DeployConfig) -> Result<Value, DriverError> {
    let bad = |m: String| DriverError::Invalid(format!("deploy: {m}"));
    let outputs = if c.output_prefixes.is_empty() {
        vec![iam::S3Prefix {
            bucket: c.bucket.clone(),
            prefix: c.prefix.trim_matches('/').to_string(),
        }]
    } else {
        c.output_prefixes
            .iter()
            .map(|u| iam::S3Prefix::parse(u).map_err(|m| bad(format!("--output-prefix {m}"))))
            .collect::<Result<Vec<_>, _>>()?
    };
    for b in &c.input_buckets {
        if b.is_empty() || b.contains(['/', '*', '?', ':']) {
            return Err(bad(format!(
                "--input-bucket {b:?}: a bucket name (no s3://, no key, no wildcard)"
            )));
        }
    }
    Ok(iam::role_policy(&outputs, &c.input_buckets))
}

/// IAM policy of whoever runs `geobutton run`/`deploy`.
pub fn driver_policy(bucket: &str, prefix: &str, region: &str, account: &str) -> Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Data",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket",
                           "s3:CreateBucket"],
                "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/{prefix}/*")]
            },
            {
                "Sid": "Invoke",
                "Effect": "Allow",
                "Action": ["lambda:InvokeFunction", "lambda:GetFunction", "lambda:CreateFunction",
                           "lambda:UpdateFunctionCode"],
                "Resource": format!("arn:aws:lambda:{region}:{account}:function:geobutton-*")
            },
            {
                "Sid": "AccountLimits",
                "Effect": "Allow",
                "Action": "lambda:GetAccountSettings",
                "Resource": "*"
            },
            {
                "Sid": "PassRole",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": format!("arn:aws:iam::{account}:role/geobutton-*")
            },
            {
                "Sid": "CreateRoles",
                "Effect": "Allow",
                "Action": ["iam:GetRole", "iam:CreateRole", "iam:UpdateAssumeRolePolicy",
                           "iam:PutRolePolicy", "iam:AttachRolePolicy"],
                "Resource": format!("arn:aws:iam::{account}:role/geobutton-*")
            },
            {
                "Sid": "BatchServiceLinkedRole",
                "Effect": "Allow",
                "Action": "iam:CreateServiceLinkedRole",
                "Resource": format!("arn:aws:iam::{account}:role/aws-service-role/batch.amazonaws.com/*"),
                "Condition": { "StringEquals": { "iam:AWSServiceName": "batch.amazonaws.com" } }
            },
            {
                "Sid": "Batch",
                "Effect": "Allow",
                "Action": ["batch:SubmitJob", "batch:DescribeJobs", "batch:RegisterJobDefinition",
                           "batch:DescribeJobDefinitions", "batch:CreateComputeEnvironment",
                           "batch:DescribeComputeEnvironments", "batch:CreateJobQueue",
                           "batch:DescribeJobQueues", "batch:TagResource"],
                "Resource": "*"
            },
            {
                "Sid": "DefaultVpc",
                "Effect": "Allow",
                "Action": ["ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"],
                "Resource": "*"
            }
        ]
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plan_lists_every_function_size_and_definition() {
        let c = DeployConfig {
            bucket: "b".into(),
            memories: vec![1024, 4096],
            lambda_role_arn: Some("arn:aws:iam::1:role/geobutton-lambda".into()),
            batch_image: Some("123.dkr.ecr.us-east-1.amazonaws.com/geobutton:1".into()),
            batch_execution_role_arn: Some("arn:aws:iam::1:role/geobutton-batch-execution".into()),
            ..DeployConfig::default()
        };
        let p = plan(&c).unwrap();
        let functions: Vec<&str> = p
            .iter()
            .filter_map(|a| match a {
                Action::DeployFunction { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(functions.len(), 10);
        assert!(functions.contains(&"geobutton-lidar-partitioner-4096"));
        let defs = p
            .iter()
            .filter(|a| matches!(a, Action::RegisterJobDefinition { .. }))
            .count();
        assert_eq!(defs, 5);
        assert!(plan(&DeployConfig::default()).is_err(), "no bucket");
        let bad = DeployConfig {
            memories: vec![64],
            ..c
        };
        assert!(plan(&bad).unwrap_err().to_string().contains("128..=10240"));
    }

    #[test]
    fn batch_settings_are_checked_as_aws_checks_them() {
        let fargate = DeployConfig {
            bucket: "b".into(),
            batch_image: Some("img:1".into()),
            batch_execution_role_arn: Some("arn:aws:iam::1:role/geobutton-batch-execution".into()),
            ..DeployConfig::default()
        };
        // An existing queue: it must exist, checked before anything is made.
        let p = plan(&DeployConfig {
            batch_existing_queue: true,
            ..fargate.clone()
        })
        .unwrap();
        assert_eq!(
            p[0],
            Action::RequireJobQueue {
                name: "geobutton".into()
            }
        );
        // No subnets: a compute environment in the default VPC (looked up when applied).
        let p = plan(&fargate).unwrap();
        assert!(
            matches!(&p[0], Action::CreateComputeEnvironment { subnets, .. } if subnets.is_empty())
        );
        assert!(p.iter().any(|a| matches!(
            a,
            Action::RegisterJobDefinition {
                platform: BatchPlatform::Fargate,
                assign_public_ip: true,
                ..
            }
        )));
        // With subnets: the compute environment, then the queue on it.
        let with_net = DeployConfig {
            batch_subnets: vec!["subnet-1".into()],
            batch_security_groups: vec!["sg-1".into()],
            ..fargate.clone()
        };
        let p = plan(&with_net).unwrap();
        assert!(
            matches!(&p[0], Action::CreateComputeEnvironment { name, .. } if name == "geobutton-fargate")
        );
        assert!(
            matches!(&p[1], Action::CreateJobQueue { compute_environment, .. } if compute_environment == "geobutton-fargate")
        );
        let err = |c: DeployConfig| plan(&c).unwrap_err().to_string();
        assert!(
            err(DeployConfig {
                batch_execution_role_arn: None,
                ..fargate.clone()
            })
            .contains("execution role")
        );
        assert!(
            err(DeployConfig {
                batch_memory_mb: 1024,
                ..fargate.clone()
            })
            .contains("Fargate runs 1 vCPU with 2048, 3072")
        );
        assert!(
            err(DeployConfig {
                batch_subnets: vec!["subnet-1".into()],
                ..fargate.clone()
            })
            .contains("--security-groups")
        );
        assert!(
            err(DeployConfig {
                batch_platform: BatchPlatform::Ec2,
                batch_vcpus: 0.5,
                ..fargate.clone()
            })
            .contains("whole vCPUs")
        );
        // EC2 needs no execution role and takes any whole vCPU count.
        assert!(
            plan(&DeployConfig {
                batch_platform: BatchPlatform::Ec2,
                batch_execution_role_arn: None,
                batch_vcpus: 3.0,
                batch_memory_mb: 7000,
                ..fargate
            })
            .is_ok()
        );
    }
}
