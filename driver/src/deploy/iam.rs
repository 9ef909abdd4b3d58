//! IAM for `geobutton deploy`: the roles the functions and containers run as, with the trust
//! each service needs and least-privilege permissions (the output prefixes given, read
//! access to the named input buckets, their own logs), and `deploy --create-roles` making
//! or updating them.
//!
//! Roles (names start with `geobutton-`, which the driver policy may pass):
//! - [`LAMBDA_ROLE`]: trusted by `lambda.amazonaws.com`, the functions' execution role;
//! - [`BATCH_JOB_ROLE`]: trusted by `ecs-tasks.amazonaws.com`, what the containers may do;
//! - [`BATCH_EXECUTION_ROLE`]: trusted by `ecs-tasks.amazonaws.com`, how Fargate pulls the
//!   image and writes logs (AWS's managed `AmazonECSTaskExecutionRolePolicy`).

use serde_json::{Value, json};

use crate::error::DriverError;

/// The functions' execution role.
pub const LAMBDA_ROLE: &str = "geobutton-lambda";
/// The Batch containers' job role.
pub const BATCH_JOB_ROLE: &str = "geobutton-batch-job";
/// The Batch (Fargate) execution role.
pub const BATCH_EXECUTION_ROLE: &str = "geobutton-batch-execution";
/// Name of the inline permission policy put on the roles.
pub const INLINE_POLICY: &str = "geobutton";
/// AWS's managed policy for Fargate execution roles (ECR pulls, CloudWatch logs).
pub const ECS_EXECUTION_POLICY: &str =
    "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";

/// An S3 location the roles may write: a bucket and a key prefix (no `/` at either end;
/// empty: the whole bucket).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct S3Prefix {
    pub bucket: String,
    pub prefix: String,
}

impl S3Prefix {
    /// `s3://bucket/some/prefix` (a trailing `/` is dropped).
    pub fn parse(uri: &str) -> Result<S3Prefix, String> {
        let rest = uri
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{uri:?} is not an s3:// location"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || bucket.contains(['*', '?']) || prefix.contains(['*', '?']) {
            return Err(format!("{uri:?}: no bucket, or a wildcard in it"));
        }
        Ok(S3Prefix {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// The ARN of the objects under the prefix.
    fn objects_arn(&self) -> String {
        match self.prefix.as_str() {
            "" => format!("arn:aws:s3:::{}/*", self.bucket),
            p => format!("arn:aws:s3:::{}/{p}/*", self.bucket),
        }
    }
}

/// The trust policy that lets `service` (`lambda.amazonaws.com`, `ecs-tasks.amazonaws.com`)
/// assume a role.
pub fn trust_policy(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": service },
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The permissions of the functions' and containers' roles: read, write and delete objects
/// under each of `outputs` (and list those prefixes), read every object of `input_buckets`
/// (requester-pays copies included), write their own logs. Public open-data buckets
/// (`sentinel-cogs`) are read unsigned and need nothing.
pub fn role_policy(outputs: &[S3Prefix], input_buckets: &[String]) -> Value {
    let mut statements = vec![json!({
        "Sid": "Outputs",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
        "Resource": outputs.iter().map(S3Prefix::objects_arn).collect::<Vec<_>>()
    })];
    for o in outputs {
        let prefixes = match o.prefix.as_str() {
            "" => vec!["*".to_string()],
            p => vec![p.to_string(), format!("{p}/*")],
        };
        statements.push(json!({
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": format!("arn:aws:s3:::{}", o.bucket),
            "Condition": { "StringLike": { "s3:prefix": prefixes } }
        }));
    }
    if !input_buckets.is_empty() {
        statements.push(json!({
            "Sid": "Inputs",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": input_buckets
                .iter()
                .flat_map(|b| [format!("arn:aws:s3:::{b}"), format!("arn:aws:s3:::{b}/*")])
                .collect::<Vec<_>>()
        }));
    }
    statements.push(json!({
        "Sid": "Logs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [
            "arn:aws:logs:*:*:log-group:/aws/lambda/geobutton-*",
            "arn:aws:logs:*:*:log-group:/aws/lambda/geobutton-*:*",
            "arn:aws:logs:*:*:log-group:/aws/batch/job:*"
        ]
    }));
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// Whether an `Allow` statement of `policy` grants `action` on `resource`, matching `*` and
/// `?` wildcards as IAM does. Conditions are taken as met and `Deny` is not evaluated: an
/// upper bound of what the policy allows, for checking that examples are allowed.
///
/// ```
/// use driver::deploy::iam::{S3Prefix, allows, role_policy};
/// let out = S3Prefix::parse("s3://my-bucket/geobutton").unwrap();
/// let p = role_policy(&[out], &[]);
/// assert!(allows(&p, "s3:PutObject", "arn:aws:s3:::my-bucket/geobutton/runs/a.tif"));
/// assert!(!allows(&p, "s3:PutObject", "arn:aws:s3:::my-bucket/ndvi/a.tif"));
/// ```
pub fn allows(policy: &Value, action: &str, resource: &str) -> bool {
    let list = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let statements = match &policy["Statement"] {
        Value::Array(a) => a.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    };
    statements.iter().any(|s| {
        s["Effect"] == "Allow"
            && list(&s["Action"])
                .iter()
                .any(|a| wildcard(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
            && list(&s["Resource"]).iter().any(|r| wildcard(r, resource))
    })
}

/// IAM's wildcard match: `*` any run of characters, `?` any one.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Positions of the last `*` seen in the pattern and the text then, for backtracking.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

fn iam_error(what: String, e: impl std::fmt::Display) -> DriverError {
    DriverError::Aws {
        service: "iam",
        message: format!("{what}: {e}"),
    }
}

/// Creates role `name` trusted by `service`, or brings an existing one's trust up to date;
/// puts `inline` as its [`INLINE_POLICY`] and attaches the `managed` policies. Returns its
/// ARN and a line saying what was done.
pub async fn ensure_role(
    iam: &aws_sdk_iam::Client,
    name: &str,
    service: &str,
    inline: Option<&Value>,
    managed: &[&str],
) -> Result<(String, String), DriverError> {
    use aws_sdk_iam::error::DisplayErrorContext;
    let trust = trust_policy(service).to_string();
    let existing = iam.get_role().role_name(name).send().await;
    let (arn, mut line) = match existing {
        Ok(out) => {
            let arn = out.role().map(|r| r.arn().to_string()).unwrap_or_default();
            iam.update_assume_role_policy()
                .role_name(name)
                .policy_document(&trust)
                .send()
                .await
                .map_err(|e| {
                    iam_error(
                        format!("UpdateAssumeRolePolicy {name}"),
                        DisplayErrorContext(&e),
                    )
                })?;
            (arn, format!("role {name} exists (trust: {service})"))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            let out = iam
                .create_role()
                .role_name(name)
                .assume_role_policy_document(&trust)
                .description("geobutton (made by geobutton deploy --create-roles)")
                .tags(
                    aws_sdk_iam::types::Tag::builder()
                        .key(super::MADE_BY.0)
                        .value(super::MADE_BY.1)
                        .build()
                        .map_err(|e| iam_error(format!("CreateRole {name}"), e))?,
                )
                .send()
                .await
                .map_err(|e| iam_error(format!("CreateRole {name}"), DisplayErrorContext(&e)))?;
            let arn = out.role().map(|r| r.arn().to_string()).unwrap_or_default();
            (arn, format!("created role {name} (trust: {service})"))
        }
        Err(e) => {
            return Err(iam_error(
                format!("GetRole {name}"),
                DisplayErrorContext(&e),
            ));
        }
    };
    if arn.is_empty() {
        return Err(iam_error(
            format!("role {name}"),
            "IAM answered without an ARN",
        ));
    }
    if let Some(policy) = inline {
        iam.put_role_policy()
            .role_name(name)
            .policy_name(INLINE_POLICY)
            .policy_document(policy.to_string())
            .send()
            .await
            .map_err(|e| iam_error(format!("PutRolePolicy {name}"), DisplayErrorContext(&e)))?;
        line.push_str(", permissions put");
    }
    for m in managed {
        iam.attach_role_policy()
            .role_name(name)
            .policy_arn(*m)
            .send()
            .await
            .map_err(|e| {
                iam_error(
                    format!("AttachRolePolicy {name} {m}"),
                    DisplayErrorContext(&e),
                )
            })?;
        line.push_str(&format!(", {m} attached"));
    }
    Ok((arn, line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_iam_matches() {
        assert!(wildcard("arn:aws:s3:::b/p/*", "arn:aws:s3:::b/p/x/y.tif"));
        assert!(!wildcard("arn:aws:s3:::b/p/*", "arn:aws:s3:::b/q/x"));
        assert!(!wildcard("arn:aws:s3:::b/p/*", "arn:aws:s3:::b/p"));
        assert!(wildcard("s3:*", "s3:getobject"));
        assert!(wildcard("a?c*", "abcdef"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("a*b*c", "acb"));
    }

    #[test]
    fn roles_are_scoped_to_their_outputs_and_inputs() {
        let outs = [
            S3Prefix::parse("s3://my-bucket/geobutton/").unwrap(),
            S3Prefix::parse("s3://results").unwrap(),
        ];
        assert_eq!(outs[0].prefix, "geobutton");
        assert_eq!(outs[1].prefix, "");
        let p = role_policy(&outs, &["cnig-lidar".to_string()]);
        let put = |r: &str| allows(&p, "s3:PutObject", r);
        assert!(put("arn:aws:s3:::my-bucket/geobutton/runs/w/et0.tif"));
        assert!(put("arn:aws:s3:::results/anything"));
        assert!(!put("arn:aws:s3:::my-bucket/ndvi/x.tif"));
        assert!(!put("arn:aws:s3:::cnig-lidar/x.laz"));
        assert!(allows(
            &p,
            "s3:GetObject",
            "arn:aws:s3:::cnig-lidar/PNOA/x.laz"
        ));
        assert!(!allows(
            &p,
            "s3:DeleteObject",
            "arn:aws:s3:::cnig-lidar/x.laz"
        ));
        assert!(!allows(&p, "iam:PassRole", "arn:aws:iam::1:role/x"));
        assert!(allows(
            &p,
            "logs:PutLogEvents",
            "arn:aws:logs:eu-west-1:1:log-group:/aws/lambda/geobutton-water-2048:log-stream:x"
        ));
        assert!(S3Prefix::parse("my-bucket/x").is_err());
        assert!(S3Prefix::parse("s3://b/*").is_err());
        let t = trust_policy("ecs-tasks.amazonaws.com");
        assert_eq!(
            t["Statement"][0]["Principal"]["Service"],
            "ecs-tasks.amazonaws.com"
        );
    }
}
