//! The account's default VPC: its subnets and its `default` security group, where `deploy`
//! puts the Fargate compute environment when no `--subnets` are given (as the AWS console
//! does).
//!
//! Three calls of EC2's Query API (`DescribeVpcs`, `DescribeSubnets`,
//! `DescribeSecurityGroups`, API version 2016-11-15), signed with SigV4 from the same SDK
//! configuration as the other clients: the EC2 SDK crate is far larger than these calls.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;

use crate::error::DriverError;

/// EC2's Query API version.
const EC2_API_VERSION: &str = "2016-11-15";
/// Longest answer read, bytes (a region has at most a few hundred subnets).
const MAX_ANSWER_BYTES: usize = 8 << 20;
/// Longest wait for one answer.
const CALL_DEADLINE: Duration = Duration::from_secs(60);

/// The default VPC of a region, as the compute environment uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultNetwork {
    pub vpc: String,
    /// Its subnets (one per availability zone), sorted.
    pub subnets: Vec<String>,
    /// Its `default` security group.
    pub security_group: String,
}

fn ec2_error(message: String) -> DriverError {
    DriverError::Aws {
        service: "ec2",
        message,
    }
}

/// Finds the default VPC of `sdk`'s region (at `endpoint`, else EC2's regional endpoint).
pub async fn default_network(
    sdk: &aws_config::SdkConfig,
    endpoint: Option<&str>,
) -> Result<DefaultNetwork, DriverError> {
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| ec2_error("no AWS region set (AWS_REGION or --region)".into()))?;
    let url = match endpoint {
        Some(e) => format!("{}/", e.trim_end_matches('/')),
        None => format!("https://ec2.{region}.amazonaws.com/"),
    };
    let client = Ec2Query::new(sdk, &url, &region).await?;
    let vpcs = client
        .call(
            "DescribeVpcs",
            &[("Filter.1.Name", "isDefault"), ("Filter.1.Value.1", "true")],
        )
        .await?;
    let vpc = elements(&vpcs, "vpcId").into_iter().next().ok_or_else(|| {
        ec2_error(format!(
            "{region} has no default VPC: give --subnets and --security-groups (or make one \
             with `aws ec2 create-default-vpc`)"
        ))
    })?;
    let subnets = client
        .call(
            "DescribeSubnets",
            &[("Filter.1.Name", "vpc-id"), ("Filter.1.Value.1", &vpc)],
        )
        .await?;
    let mut subnets = elements(&subnets, "subnetId");
    subnets.sort();
    subnets.dedup();
    if subnets.is_empty() {
        return Err(ec2_error(format!(
            "the default VPC {vpc} of {region} has no subnets: give --subnets"
        )));
    }
    let groups = client
        .call(
            "DescribeSecurityGroups",
            &[
                ("Filter.1.Name", "vpc-id"),
                ("Filter.1.Value.1", &vpc),
                ("Filter.2.Name", "group-name"),
                ("Filter.2.Value.1", "default"),
            ],
        )
        .await?;
    // Each item's own groupId comes first (rules that name a group follow it).
    let security_group = elements(&groups, "groupId")
        .into_iter()
        .next()
        .ok_or_else(|| {
            ec2_error(format!(
                "the default VPC {vpc} of {region} has no `default` security group: give \
                 --security-groups"
            ))
        })?;
    Ok(DefaultNetwork {
        vpc,
        subnets,
        security_group,
    })
}

/// Signed calls of EC2's Query API.
struct Ec2Query {
    http: reqwest::Client,
    url: String,
    region: String,
    credentials: aws_credential_types::Credentials,
}

impl Ec2Query {
    async fn new(
        sdk: &aws_config::SdkConfig,
        url: &str,
        region: &str,
    ) -> Result<Ec2Query, DriverError> {
        let provider = sdk
            .credentials_provider()
            .ok_or_else(|| ec2_error("no AWS credentials configured".into()))?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| ec2_error(format!("no AWS credentials: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(CALL_DEADLINE)
            .build()
            .map_err(|e| ec2_error(e.to_string()))?;
        Ok(Ec2Query {
            http,
            url: url.to_string(),
            region: region.to_string(),
            credentials,
        })
    }

    /// `action` with `params`; the answer's XML, or EC2's error code and message.
    async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<String, DriverError> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let body = form_body(action, params);
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let identity = self.credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("ec2")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| ec2_error(format!("{action}: cannot sign: {e}")))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            &self.url,
            std::iter::once(("content-type", content_type)),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| ec2_error(format!("{action}: cannot sign: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| ec2_error(format!("{action}: cannot sign: {e}")))?
            .into_parts();
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", content_type)
            .body(body);
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        let answer = tokio::time::timeout(CALL_DEADLINE, async {
            let mut resp = request.send().await?;
            let status = resp.status();
            let mut bytes = Vec::new();
            while let Some(chunk) = resp.chunk().await? {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_ANSWER_BYTES {
                    break;
                }
            }
            Ok::<_, reqwest::Error>((status, bytes))
        })
        .await
        .map_err(|_| ec2_error(format!("{action}: no answer in {CALL_DEADLINE:?}")))?
        .map_err(|e| ec2_error(format!("{action}: {e}")))?;
        let (status, bytes) = answer;
        if bytes.len() > MAX_ANSWER_BYTES {
            return Err(ec2_error(format!(
                "{action}: the answer is larger than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if !status.is_success() {
            let code = elements(&text, "Code").join(", ");
            let message = elements(&text, "Message").join(" ");
            return Err(ec2_error(format!(
                "{action} answered {status}: {code}: {message}"
            )));
        }
        Ok(text)
    }
}

/// The `application/x-www-form-urlencoded` body of a Query API call.
fn form_body(action: &str, params: &[(&str, &str)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("Action", action)
        .append_pair("Version", EC2_API_VERSION);
    for (k, v) in params {
        form.append_pair(k, v);
    }
    form.finish()
}

/// The text of every `<tag>…</tag>` element in `xml`, in document order (EC2's answers
/// carry ids as plain text: no entities to decode in them).
fn elements(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(after[..end].trim().to_string());
        rest = &after[end + close.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_bodies_and_answers() {
        assert_eq!(
            form_body("DescribeSubnets", &[("Filter.1.Value.1", "vpc-1 2")]),
            "Action=DescribeSubnets&Version=2016-11-15&Filter.1.Value.1=vpc-1+2"
        );
        // The shape of EC2's answer (AWS EC2 API reference, DescribeSecurityGroups): the
        // group's own id first, then the one its rule names.
        let answer = "<DescribeSecurityGroupsResponse><securityGroupInfo><item>\
            <ownerId>1</ownerId><groupId>sg-own</groupId><groupName>default</groupName>\
            <ipPermissions><item><groups><item><groupId>sg-other</groupId></item></groups>\
            </item></ipPermissions></item></securityGroupInfo></DescribeSecurityGroupsResponse>";
        assert_eq!(elements(answer, "groupId"), ["sg-own", "sg-other"]);
        assert!(elements(answer, "vpcId").is_empty());
        let error = "<Response><Errors><Error><Code>UnauthorizedOperation</Code>\
            <Message>not allowed</Message></Error></Errors></Response>";
        assert_eq!(elements(error, "Code"), ["UnauthorizedOperation"]);
    }
}
