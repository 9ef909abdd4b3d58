//! AWS Batch on moto's server (its "simple batch" mode, where SubmitJob records jobs and
//! runs nothing): an account set up as `deploy` needs it, and the children of each submitted
//! job run as local processes started as ECS starts them from the project's `Dockerfile`
//! ([`super::ecs`]), with the job's environment and `AWS_BATCH_JOB_ARRAY_INDEX`.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Mutex;

use driver::exec::batch::SubmittedJob;

use super::{ecs, s3_env};

pub const SETUP: &str = r##"
import json, sys, urllib.request, zipfile, os, boto3
ep, zips = sys.argv[1], sys.argv[2]
urllib.request.urlopen(urllib.request.Request(
    ep + "/moto-api/config", data=json.dumps({"batch": {"use_docker": False}}).encode(),
    method="POST")).read()
kw = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id="testing",
          aws_secret_access_key="testing")
iam = boto3.client("iam", **kw)
trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
    "Principal": {"Service": ["lambda.amazonaws.com", "ecs-tasks.amazonaws.com",
                              "batch.amazonaws.com"]},
    "Action": "sts:AssumeRole"}]})
role = iam.create_role(RoleName="geobutton-test", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
# The account's default VPC: its subnets and default security group, for Fargate.
ec2 = boto3.client("ec2", **kw)
vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
subnets = [s["SubnetId"] for s in
           ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
sg = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
    {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]["GroupId"]
for stage in ["lidar-partitioner", "terrain", "ndvi", "water", "biomass"]:
    os.makedirs(os.path.join(zips, stage), exist_ok=True)
    with zipfile.ZipFile(os.path.join(zips, stage, "bootstrap.zip"), "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\necho stand-in for the " + stage + " binary\n")
print(role)
print(",".join(subnets[:2]))
print(sg)
"##;

/// Every child started: its argv and exit status.
pub type Runs = Mutex<Vec<(Vec<String>, Option<i32>)>>;

/// Runs the children of `job` as local processes in `image`, except the indices in `skip`.
pub fn run_children(
    client: &aws_sdk_batch::Client,
    image: &ecs::Image,
    job: &SubmittedJob,
    skip: &[usize],
    runs: &Runs,
) {
    let id = job.job_id.clone();
    let c = client.clone();
    let described =
        cloud::runtime::block_on(async move { c.describe_jobs().jobs(id).send().await.unwrap() });
    let d = &described.jobs()[0];
    let container = d.container().unwrap();
    // The job definition's command, as `deploy` registered it.
    let arn = d.job_definition().unwrap().to_string();
    let c = client.clone();
    let definitions = cloud::runtime::block_on(async move {
        c.describe_job_definitions()
            .job_definitions(arn)
            .send()
            .await
            .unwrap()
    });
    let definition: Vec<String> = definitions.job_definitions()[0]
        .container_properties()
        .unwrap()
        .command()
        .to_vec();
    let argv = image.argv(&definition, job.request.command.as_deref());
    let env: HashMap<String, String> = container
        .environment()
        .iter()
        .map(|kv| {
            (
                kv.name().unwrap().to_string(),
                kv.value().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(env["GEOBUTTON_MANIFEST"], job.manifest);
    assert!(
        d.job_definition()
            .unwrap()
            .contains(&job.request.job_definition)
    );
    let size = d
        .array_properties()
        .and_then(|a| a.size())
        .map(|s| s as usize);
    assert_eq!(size, job.request.array_size);
    let children: Vec<Option<usize>> = match size {
        Some(n) => (0..n).map(Some).collect(),
        None => vec![None],
    };
    for (i, child) in children.into_iter().enumerate() {
        if skip.contains(&i) {
            continue; // this container was reclaimed before it could write anything
        }
        let mut cmd = image.command(&argv);
        s3_env(&mut cmd);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        if let Some(index) = child {
            cmd.env("AWS_BATCH_JOB_ARRAY_INDEX", index.to_string());
        }
        let out = cmd.output().unwrap();
        // Failures are reported through the task's status; one that never started is
        // reported by its exit status alone.
        runs.lock().unwrap().push((argv.clone(), out.status.code()));
    }
}

/// Sets the account of moto's server at `ep` up for Batch (simple mode, a role trusted by
/// Lambda, ECS tasks and Batch, stand-in function zips under `zips`): (role ARN, two
/// subnets of the default VPC joined by commas, its default security group).
pub fn setup_account(ep: &str, zips: &std::path::Path) -> (String, String, String) {
    let out = Command::new("python3")
        .args(["-c", SETUP, ep, zips.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let setup = String::from_utf8(out.stdout).unwrap();
    let [role, subnets, sg] = setup.lines().collect::<Vec<_>>()[..] else {
        panic!("{setup}")
    };
    (role.to_string(), subnets.to_string(), sg.to_string())
}

/// `geobutton deploy --apply` against moto's server at `ep` in us-east-1 (layout bucket
/// `geobutton-deploy`, functions of 1024 and 4096 MB from the stand-in `zips`, Fargate job
/// definitions), with `extra` arguments.
pub fn deploy(
    ep: &str,
    role: &str,
    zips: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    super::test_credentials(&mut Command::new(env!("CARGO_BIN_EXE_geobutton")))
        .args([
            "deploy",
            "--apply",
            "--bucket",
            "geobutton-deploy",
            "--endpoint",
            ep,
        ])
        .args([
            "--region",
            "us-east-1",
            "--memory",
            "1024,4096",
            "--lambda-role",
            role,
            "--batch-execution-role",
            role,
            // moto requires the service role AWS makes optional.
            "--batch-service-role",
            role,
        ])
        .args([
            "--batch-image",
            "geobutton:test",
            "--zips",
            zips.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap()
}

/// A Batch client of moto's server at `ep` (us-east-1).
pub fn client(ep: &str) -> aws_sdk_batch::Client {
    let sdk = cloud::runtime::block_on({
        let ep = ep.to_string();
        async move {
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(ep)
                .region(aws_config::Region::new("us-east-1"))
                .load()
                .await
        }
    });
    aws_sdk_batch::Client::new(&sdk)
}
