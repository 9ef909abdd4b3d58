//! `geobutton undeploy`: removes what `geobutton deploy` made — and only that, as told by
//! the [`super::MADE_BY`] tag every created resource carries: the functions, the job queue
//! (disabled first, as AWS requires) and then the compute environment, the job definitions'
//! revisions, the roles (their inline and attached policies first) and the layout's
//! `README.txt`; the data under the prefix only with `delete_data`. Resources of the same
//! names made by hand, or adopted by `deploy`, stay. The bucket stays.

use std::time::{Duration, Instant};

use aws_sdk_batch::types::{CeState, JqState};

use super::{DeployConfig, MADE_BY, failed, fargate::READY_WAIT, iam, sdk_config};
use crate::error::DriverError;

fn err(service: &'static str, what: String, e: impl std::fmt::Display) -> DriverError {
    DriverError::Aws {
        service,
        message: format!("{what}: {e}"),
    }
}

fn made_by_deploy<'a>(mut tags: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    tags.any(|(k, v)| k == MADE_BY.0 && v == MADE_BY.1)
}

/// Removes (with `apply`; else lists) what `deploy` made for `c`; `delete_data` also
/// removes every object under `s3://BUCKET/PREFIX/`. Returns one line per resource.
pub fn undeploy(
    c: &DeployConfig,
    apply: bool,
    delete_data: bool,
) -> Result<Vec<String>, DriverError> {
    let c = c.clone();
    cloud::runtime::block_on(async move {
        let sdk = sdk_config(&c).await;
        let lambda = aws_sdk_lambda::Client::new(&sdk);
        let batch = aws_sdk_batch::Client::new(&sdk);
        let iam_client = aws_sdk_iam::Client::new(&sdk);
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(c.endpoint.is_some())
                .build(),
        );
        let verb = if apply { "deleted" } else { "would delete" };
        let mut done = Vec::new();
        functions(&lambda, &c, apply, verb, &mut done).await?;
        batch_resources(&batch, &c, apply, verb, &mut done).await?;
        roles(&iam_client, apply, verb, &mut done).await?;
        layout(&s3, &c, apply, delete_data, verb, &mut done).await?;
        Ok(done)
    })
}

async fn functions(
    lambda: &aws_sdk_lambda::Client,
    c: &DeployConfig,
    apply: bool,
    verb: &str,
    done: &mut Vec<String>,
) -> Result<(), DriverError> {
    use aws_sdk_lambda::error::DisplayErrorContext;
    let mut marker: Option<String> = None;
    let mut names = Vec::new();
    loop {
        let page = lambda
            .list_functions()
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| err("lambda", "ListFunctions".into(), DisplayErrorContext(&e)))?;
        for f in page.functions() {
            let (Some(name), Some(arn)) = (f.function_name(), f.function_arn()) else {
                continue;
            };
            // Names the template makes for one of the stages.
            let ours = c.stages.iter().any(|s| {
                let head = c.function_template.replace("{stage}", s.name());
                let head = head.split("{memory}").next().unwrap_or(&head);
                name.starts_with(head)
            });
            if ours {
                names.push((name.to_string(), arn.to_string()));
            }
        }
        marker = page.next_marker().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    for (name, arn) in names {
        let tags = lambda
            .list_tags()
            .resource(&arn)
            .send()
            .await
            .map_err(|e| {
                err(
                    "lambda",
                    format!("ListTags {name}"),
                    DisplayErrorContext(&e),
                )
            })?;
        let tagged = tags
            .tags()
            .is_some_and(|t| made_by_deploy(t.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
        if !tagged {
            continue;
        }
        if apply {
            lambda
                .delete_function()
                .function_name(&name)
                .send()
                .await
                .map_err(|e| {
                    err(
                        "lambda",
                        format!("DeleteFunction {name}"),
                        DisplayErrorContext(&e),
                    )
                })?;
        }
        done.push(format!("{verb} function {name}"));
    }
    Ok(())
}

/// `(state, status)` of job queue `name` (`None`: there is none), and whether
/// [`MADE_BY`] tags it.
async fn queue_state(
    batch: &aws_sdk_batch::Client,
    name: &str,
) -> Result<Option<(String, String, bool)>, DriverError> {
    let out = batch
        .describe_job_queues()
        .job_queues(name)
        .send()
        .await
        .map_err(failed("batch", format!("DescribeJobQueues {name}")))?;
    Ok(out.job_queues().first().map(|q| {
        (
            q.state().map_or("", |s| s.as_str()).to_string(),
            q.status().map_or("", |s| s.as_str()).to_string(),
            q.tags()
                .is_some_and(|t| made_by_deploy(t.iter().map(|(k, v)| (k.as_str(), v.as_str())))),
        )
    }))
}

/// `(state, status)` of compute environment `name` (`None`: there is none), and whether
/// [`MADE_BY`] tags it.
async fn environment_state(
    batch: &aws_sdk_batch::Client,
    name: &str,
) -> Result<Option<(String, String, bool)>, DriverError> {
    let out = batch
        .describe_compute_environments()
        .compute_environments(name)
        .send()
        .await
        .map_err(failed(
            "batch",
            format!("DescribeComputeEnvironments {name}"),
        ))?;
    Ok(out.compute_environments().first().map(|e| {
        (
            e.state().map_or("", |s| s.as_str()).to_string(),
            e.status().map_or("", |s| s.as_str()).to_string(),
            e.tags()
                .is_some_and(|t| made_by_deploy(t.iter().map(|(k, v)| (k.as_str(), v.as_str())))),
        )
    }))
}

/// Disabled and no longer updating (what a deletion needs), or gone.
fn disabled(s: &Option<(String, String, bool)>) -> bool {
    s.as_ref()
        .is_none_or(|(state, status, _)| state == "DISABLED" && status != "UPDATING")
}

/// Gone (or on its way: `DELETED`).
fn deleted(s: &Option<(String, String, bool)>) -> bool {
    s.as_ref().is_none_or(|(_, status, _)| status == "DELETED")
}

async fn batch_resources(
    batch: &aws_sdk_batch::Client,
    c: &DeployConfig,
    apply: bool,
    verb: &str,
    done: &mut Vec<String>,
) -> Result<(), DriverError> {
    // The queue first: a compute environment a queue uses cannot be deleted.
    let queue = &c.batch_job_queue;
    if let Some((_, _, true)) = queue_state(batch, queue).await? {
        if apply {
            batch
                .update_job_queue()
                .job_queue(queue)
                .state(JqState::Disabled)
                .send()
                .await
                .map_err(failed("batch", format!("UpdateJobQueue {queue}")))?;
            wait(|| async { Ok(disabled(&queue_state(batch, queue).await?)) }).await?;
            batch
                .delete_job_queue()
                .job_queue(queue)
                .send()
                .await
                .map_err(failed("batch", format!("DeleteJobQueue {queue}")))?;
            wait(|| async { Ok(deleted(&queue_state(batch, queue).await?)) }).await?;
        }
        done.push(format!("{verb} job queue {queue}"));
    }
    let ce = &c.batch_compute_environment;
    if let Some((_, _, true)) = environment_state(batch, ce).await? {
        if apply {
            batch
                .update_compute_environment()
                .compute_environment(ce)
                .state(CeState::Disabled)
                .send()
                .await
                .map_err(failed("batch", format!("UpdateComputeEnvironment {ce}")))?;
            wait(|| async { Ok(disabled(&environment_state(batch, ce).await?)) }).await?;
            batch
                .delete_compute_environment()
                .compute_environment(ce)
                .send()
                .await
                .map_err(failed("batch", format!("DeleteComputeEnvironment {ce}")))?;
        }
        done.push(format!("{verb} compute environment {ce}"));
    }
    for stage in &c.stages {
        let name = c.batch_definition_template.replace("{stage}", stage.name());
        let defs = batch
            .describe_job_definitions()
            .job_definition_name(&name)
            .status("ACTIVE")
            .send()
            .await
            .map_err(failed("batch", format!("DescribeJobDefinitions {name}")))?;
        for d in defs.job_definitions() {
            let tagged = d
                .tags()
                .is_some_and(|t| made_by_deploy(t.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
            let Some(arn) = d.job_definition_arn().filter(|_| tagged) else {
                continue;
            };
            if apply {
                batch
                    .deregister_job_definition()
                    .job_definition(arn)
                    .send()
                    .await
                    .map_err(failed("batch", format!("DeregisterJobDefinition {arn}")))?;
            }
            done.push(format!(
                "{} job definition {name}:{}",
                if apply {
                    "deregistered"
                } else {
                    "would deregister"
                },
                d.revision().unwrap_or(0)
            ));
        }
    }
    Ok(())
}

/// Polls `done` every 2 s until it says so, at most [`READY_WAIT`].
async fn wait<F, Fut>(done: F) -> Result<(), DriverError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<bool, DriverError>>,
{
    let deadline = Instant::now() + READY_WAIT;
    while !done().await? {
        if Instant::now() >= deadline {
            return Err(DriverError::Aws {
                service: "batch",
                message: format!(
                    "still updating after {} s; run undeploy again later",
                    READY_WAIT.as_secs()
                ),
            });
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(())
}

async fn roles(
    client: &aws_sdk_iam::Client,
    apply: bool,
    verb: &str,
    done: &mut Vec<String>,
) -> Result<(), DriverError> {
    for name in [
        iam::LAMBDA_ROLE,
        iam::BATCH_JOB_ROLE,
        iam::BATCH_EXECUTION_ROLE,
    ] {
        let tags = match client.list_role_tags().role_name(name).send().await {
            Ok(t) => t,
            Err(x)
                if x.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                continue;
            }
            Err(x) => return Err(failed("iam", format!("ListRoleTags {name}"))(x)),
        };
        if !made_by_deploy(tags.tags().iter().map(|t| (t.key(), t.value()))) {
            continue;
        }
        if apply {
            let inline = client
                .list_role_policies()
                .role_name(name)
                .send()
                .await
                .map_err(failed("iam", format!("ListRolePolicies {name}")))?;
            for p in inline.policy_names() {
                client
                    .delete_role_policy()
                    .role_name(name)
                    .policy_name(p)
                    .send()
                    .await
                    .map_err(failed("iam", format!("DeleteRolePolicy {name}")))?;
            }
            let attached = client
                .list_attached_role_policies()
                .role_name(name)
                .send()
                .await
                .map_err(failed("iam", format!("ListAttachedRolePolicies {name}")))?;
            for p in attached.attached_policies() {
                if let Some(arn) = p.policy_arn() {
                    client
                        .detach_role_policy()
                        .role_name(name)
                        .policy_arn(arn)
                        .send()
                        .await
                        .map_err(failed("iam", format!("DetachRolePolicy {name}")))?;
                }
            }
            client
                .delete_role()
                .role_name(name)
                .send()
                .await
                .map_err(failed("iam", format!("DeleteRole {name}")))?;
        }
        done.push(format!("{verb} role {name}"));
    }
    Ok(())
}

async fn layout(
    s3: &aws_sdk_s3::Client,
    c: &DeployConfig,
    apply: bool,
    delete_data: bool,
    verb: &str,
    done: &mut Vec<String>,
) -> Result<(), DriverError> {
    use aws_sdk_s3::error::DisplayErrorContext;
    let prefix = format!("{}/", c.prefix.trim_matches('/'));
    let readme = format!("{prefix}README.txt");
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = match s3
            .list_objects_v2()
            .bucket(&c.bucket)
            .prefix(if delete_data { &prefix } else { &readme })
            .set_continuation_token(token.clone())
            .send()
            .await
        {
            Ok(p) => p,
            Err(x) if x.as_service_error().is_some_and(|s| s.is_no_such_bucket()) => {
                return Ok(());
            }
            Err(x) => {
                return Err(err(
                    "s3",
                    format!("ListObjectsV2 s3://{}/{prefix}", c.bucket),
                    DisplayErrorContext(&x),
                ));
            }
        };
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    for key in &keys {
        if apply {
            s3.delete_object()
                .bucket(&c.bucket)
                .key(key)
                .send()
                .await
                .map_err(|x| {
                    err(
                        "s3",
                        format!("DeleteObject s3://{}/{key}", c.bucket),
                        DisplayErrorContext(&x),
                    )
                })?;
        }
    }
    if !keys.is_empty() {
        done.push(format!(
            "{verb} {} object(s) under s3://{}/{prefix}{}",
            keys.len(),
            c.bucket,
            if delete_data {
                ""
            } else {
                " (the layout's README; --delete-data for the rest)"
            }
        ));
    }
    done.push(format!(
        "kept bucket {} (delete it yourself once empty)",
        c.bucket
    ));
    Ok(())
}
