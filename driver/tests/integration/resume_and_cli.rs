//! The `geobutton` binary: resume after a killed run, `status`, `report`, and `demo`.

use crate::common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_geobutton");

fn status_ids(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| {
                let name = e.ok()?.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json").map(str::to_string)
            })
            .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_killed_run_resumes_with_only_the_unfinished_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("in")).unwrap();
    let mut dtms = Vec::new();
    for i in 0..12 {
        let p = d.join(format!("in/sheet{i:02}.asc"));
        std::fs::write(
            &p,
            common::synthetic_dtm(630_000.0 + 3_000.0 * i as f64, 4_200_000.0, 25.0, 120, 120),
        )
        .unwrap();
        dtms.push(p.display().to_string());
    }
    let out = d.join("run");
    let args = |cmd: &mut Command| {
        cmd.args(["run", "water", "--output", out.to_str().unwrap()])
            .args([
                "--stations",
                &common::data("water/siam_data.csv"),
                "--date",
                "2022-05-15",
            ])
            .args(["--windows", "1", "--concurrency", "1", "--input"])
            .args(&dtms);
    };
    let mut cmd = Command::new(BIN);
    args(&mut cmd);
    let mut child = common::ChildGuard(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let statuses = out.join("tiles/status");
    let deadline = Instant::now() + Duration::from_secs(300);
    while status_ids(&statuses).len() < 2 {
        assert!(Instant::now() < deadline, "no task finished in 300 s");
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let killed_at = chrono::Utc::now();
    let done = status_ids(&statuses);
    assert!(
        done.len() >= 2 && done.len() < 12,
        "{} of 12 done when killed",
        done.len()
    );

    // `status` shows the unfinished run (exit status 1).
    let st = Command::new(BIN)
        .args(["status", out.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&st.stdout);
    assert_eq!(st.status.code(), Some(1), "{text}");
    assert!(
        text.contains("not finished") && text.contains(&format!("{} ok", done.len())),
        "{text}"
    );

    // The same command again runs only what was not finished.
    let mut cmd = Command::new(BIN);
    args(&mut cmd);
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let tiles = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["step"] == "tiles");
    let (mut skipped, mut ran) = (BTreeSet::new(), 0);
    for t in tiles {
        let id = t["id"].as_str().unwrap().to_string();
        if t["skipped"] == true {
            assert_eq!(t["attempts"], 0);
            skipped.insert(id);
        } else {
            ran += 1;
            let start: chrono::DateTime<chrono::Utc> =
                serde_json::from_value(t["start"].clone()).unwrap();
            assert!(start >= killed_at, "{id} ran before the kill: {start}");
        }
    }
    assert_eq!(skipped, done);
    assert_eq!(ran, 12 - done.len());
    let st = Command::new(BIN)
        .args(["status", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stdout)
    );

    // `report` rebuilds the report and figures elsewhere.
    let figs = d.join("figs");
    let r = Command::new(BIN)
        .args([
            "report",
            out.to_str().unwrap(),
            "--png",
            figs.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    for f in ["timeline.png", "durations.png"] {
        let bytes = std::fs::read(figs.join(f)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    }
}

#[test]
fn bad_arguments_and_inputs_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    // A missing input: named at plan time, before any task runs.
    let o = Command::new(BIN)
        .args([
            "run",
            "biomass",
            "--input",
            "/nonexistent/chm.tif",
            "--output",
            out.to_str().unwrap(),
            "--training",
        ])
        .arg(common::data("biomass/sjer/SJER_Biomass_Training.csv"))
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("/nonexistent/chm.tif"), "{e}");
    // Without a training table or a model, biomass is an error, not NaN kilograms.
    let o = Command::new(BIN)
        .args([
            "run",
            "biomass",
            "--output",
            out.to_str().unwrap(),
            "--input",
        ])
        .arg(common::data(
            "biomass/sjer/NEON_D17_SJER_DP3_256000_4106000_CHM.tif",
        ))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("no training table and no model"), "{e}");
    assert!(!out.exists(), "nothing is written");
    // NDVI bands: four are needed.
    let o = Command::new(BIN)
        .args([
            "run",
            "ndvi",
            "--input",
            "a.tif",
            "b.tif",
            "--output",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("four bands"));
    // `status` of a folder without a run.
    let o = Command::new(BIN)
        .args(["status", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds no geobutton run"));
    // deploy --dry-run prints the plan; without a bucket it refuses.
    let o = Command::new(BIN)
        .args([
            "deploy",
            "--dry-run",
            "--bucket",
            "b",
            "--lambda-role",
            "arn:aws:iam::1:role/r",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan.as_array().unwrap().len(), 2 + 5);
}

#[test]
fn demo_writes_valid_cogs_pngs_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let o = Command::new(BIN)
        .args(["demo", "-o", out.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut cogs = 0;
    let mut pngs = 0;
    for line in stdout.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["cog", path, ..] => {
                let g = Command::new("gdalinfo").arg(path).output().unwrap();
                let info = String::from_utf8_lossy(&g.stdout);
                assert!(g.status.success(), "gdalinfo {path}");
                assert!(info.contains("LAYOUT=COG"), "{path} is not a COG: {info}");
                cogs += 1;
            }
            ["png", path, ..] => {
                let bytes = std::fs::read(path).unwrap();
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{path}");
                pngs += 1;
            }
            ["report", path] => {
                let r: driver::report::Report =
                    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
                assert_eq!(r.state, "ok");
                assert!(r.cost.lambda_gb_seconds > 0.0);
            }
            _ => {}
        }
    }
    // lidar: 6 mosaics; water (one tile): ET0, ETc; biomass: smoothed CHM, crowns, biomass;
    // ndvi: before, after, difference.
    assert!(cogs >= 14, "{cogs} COGs listed:\n{stdout}");
    assert!(pngs >= 12, "{pngs} PNGs listed");
    let csv = std::fs::read_to_string(out.join("water/plots.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7, "{csv}");
    let trees = std::fs::read_to_string(out.join("biomass/trees.csv")).unwrap();
    assert!(
        trees.lines().count() > 60,
        "trees found in the synthetic stand"
    );
    // The DEM recovers the synthetic terrain: compare with ground_z at a few cell centres.
    let store = cloud::Store::from_env();
    let dem: cog::Raster<f32> =
        cog::read_band(&store, out.join("lidar/dem.tif").to_str().unwrap(), 1).unwrap();
    let g = dem.transform.0;
    let mut worst: f64 = 0.0;
    for (r, c) in [
        (50usize, 50usize),
        (150, 150),
        (250, 40),
        (40, 250),
        (200, 260),
    ] {
        let (x, y) = (
            g[0] + (c as f64 + 0.5) * g[1],
            g[3] + (r as f64 + 0.5) * g[5],
        );
        worst = worst.max((dem.data[(r, c)] as f64 - driver::demo::ground_z(x, y)).abs());
    }
    assert!(worst < 0.3, "DEM off the synthetic ground by {worst} m");
}

/// Issue 15, item 1: `deploy --apply` creates its bucket in the region asked for, as S3
/// requires outside us-east-1 (moto refuses a CreateBucket without the location constraint
/// there, as AWS does); a bucket already ours is no error; `--existing-bucket` creates
/// nothing. Checked through GetBucketLocation.
#[test]
fn deploy_creates_its_bucket_in_its_region() {
    let ep = cloud::testing::s3_endpoint();
    let deploy = |bucket: &str, region: &str, extra: &[&str]| {
        common::test_credentials(&mut Command::new(BIN))
            .args(["deploy", "--apply", "--bucket", bucket, "--endpoint", &ep])
            .args(["--region", region])
            .args(extra)
            .output()
            .unwrap()
    };
    let location = |bucket: &str| {
        let py = r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
print(s3.get_bucket_location(Bucket=sys.argv[2]).get("LocationConstraint"))
"#;
        let o = Command::new("python3")
            .args(["-c", py, &ep, bucket])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let suffix = format!("{:08x}", rand_suffix());
    for region in ["eu-west-1", "eu-south-2"] {
        let bucket = format!("gb-deploy-{region}-{suffix}");
        for attempt in 0..2 {
            let o = deploy(&bucket, region, &[]);
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(
                o.status.success(),
                "{region} attempt {attempt}: {text}{}",
                String::from_utf8_lossy(&o.stderr)
            );
            let says = if attempt == 0 {
                "created bucket"
            } else {
                "exists"
            };
            assert!(text.contains(says), "{text}");
        }
        assert_eq!(location(&bucket), region);
    }
    // An existing bucket: nothing created; a missing one is then an error naming it.
    let missing = format!("gb-deploy-missing-{suffix}");
    let o = deploy(&missing, "eu-west-1", &["--existing-bucket"]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains(&missing), "{e}");
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id()
}

/// Issue 15, item 2: `deploy --apply --create-roles` makes the three roles with the trust
/// each service needs (read back through GetRole), least-privilege permissions scoped to
/// the output prefix and the named input bucket (GetRolePolicy), the managed execution
/// policy on the Fargate execution role, and uses them for the functions and the job
/// definitions; a second deploy adopts them; `undeploy` leaves nothing deploy made. In
/// eu-west-1 and then eu-south-2, against moto.
#[test]
fn deploy_creates_roles_with_their_trust_and_scoped_permissions() {
    let (_moto, ep) = common::start_moto();
    // One region after the other on one account: the second deploy finds no roles left
    // by the first (undeployed), and its bucket needs its own location constraint.
    for region in ["eu-west-1", "eu-south-2"] {
        deploy_and_undeploy_in(&ep, region);
    }
}

fn deploy_and_undeploy_in(ep: &str, region: &str) {
    let ep = ep.to_string();
    let bucket = format!("gb-roles-{region}-{:08x}", rand_suffix());
    let zips = tempfile::tempdir().unwrap();
    // Stand-in zips, the default VPC's network (deploy must find it by itself), and a
    // service role for the compute environment (AWS would use its service-linked role;
    // moto requires one).
    let setup = r##"
import json, os, sys, zipfile, boto3
ep, region, zips = sys.argv[1], sys.argv[2], sys.argv[3]
kw = dict(endpoint_url=ep, region_name=region, aws_access_key_id="testing",
          aws_secret_access_key="testing")
for stage in ["lidar-partitioner", "terrain", "ndvi", "water", "biomass"]:
    os.makedirs(os.path.join(zips, stage), exist_ok=True)
    with zipfile.ZipFile(os.path.join(zips, stage, "bootstrap.zip"), "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
ec2 = boto3.client("ec2", **kw)
vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
subnets = sorted(s["SubnetId"] for s in
                 ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"])
sg = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
    {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]["GroupId"]
iam = boto3.client("iam", **kw)
trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
    "Principal": {"Service": "batch.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
try:
    service = iam.create_role(RoleName="batch-service", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
except iam.exceptions.EntityAlreadyExistsException:
    service = iam.get_role(RoleName="batch-service")["Role"]["Arn"]
print(",".join(subnets)); print(sg); print(service)
"##;
    let o = Command::new("python3")
        .args(["-c", setup, &ep, region, zips.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let [subnets, sg, service] = out.lines().collect::<Vec<_>>()[..] else {
        panic!("{out}")
    };
    let output_prefix = format!("s3://{bucket}/geobutton");
    let deploy = || {
        common::test_credentials(&mut Command::new(BIN))
            .args(["deploy", "--apply", "--create-roles", "--bucket", &bucket])
            .args(["--endpoint", &ep, "--region", region, "--memory", "1024"])
            .args(["--zips", zips.path().to_str().unwrap()])
            .args([
                "--output-prefix",
                &output_prefix,
                "--input-bucket",
                "cnig-copy",
            ])
            .args([
                "--batch-image",
                "geobutton:1",
                "--batch-service-role",
                service,
            ])
            .args(["--compute-environment", &format!("{bucket}-ce")])
            .args(["--job-queue", &format!("{bucket}-q")])
            .output()
            .unwrap()
    };
    let o = deploy();
    let text = common::succeeded(&o);
    for line in [
        "created role geobutton-lambda (trust: lambda.amazonaws.com), permissions put",
        "created role geobutton-batch-job (trust: ecs-tasks.amazonaws.com), permissions put",
        "role geobutton-batch-execution (trust: ecs-tasks.amazonaws.com), arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy attached",
        "created function geobutton-water-1024",
        &format!(
            "subnets ({}), security group {sg}",
            subnets.replace(',', ", ")
        ),
        &format!("created compute environment {bucket}-ce (Fargate"),
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    // Read back through the IAM, Lambda and Batch APIs.
    let read = r#"
import json, sys, boto3
ep, region, bucket = sys.argv[1], sys.argv[2], sys.argv[3]
kw = dict(endpoint_url=ep, region_name=region, aws_access_key_id="testing",
          aws_secret_access_key="testing")
iam = boto3.client("iam", **kw)
out = {}
for r in ["geobutton-lambda", "geobutton-batch-job", "geobutton-batch-execution"]:
    role = iam.get_role(RoleName=r)["Role"]
    out[r] = {"arn": role["Arn"], "trust": role["AssumeRolePolicyDocument"],
              "inline": iam.list_role_policies(RoleName=r)["PolicyNames"],
              "managed": [p["PolicyArn"] for p in
                          iam.list_attached_role_policies(RoleName=r)["AttachedPolicies"]]}
out["policy"] = iam.get_role_policy(RoleName="geobutton-lambda", PolicyName="geobutton")["PolicyDocument"]
out["function_role"] = boto3.client("lambda", **kw).get_function(
    FunctionName="geobutton-water-1024")["Configuration"]["Role"]
d = boto3.client("batch", **kw).describe_job_definitions(
    jobDefinitionName="geobutton-water", status="ACTIVE")["jobDefinitions"][-1]["containerProperties"]
out["job_role"], out["execution_role"] = d.get("jobRoleArn"), d.get("executionRoleArn")
ce = boto3.client("batch", **kw).describe_compute_environments(
    computeEnvironments=[bucket + "-ce"])["computeEnvironments"][0]["computeResources"]
out["ce_subnets"], out["ce_groups"] = sorted(ce["subnets"]), ce["securityGroupIds"]
print(json.dumps(out))
"#;
    let o = Command::new("python3")
        .args(["-c", read, &ep, region, &bucket])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let service_of = |r: &str| got[r]["trust"]["Statement"][0]["Principal"]["Service"].clone();
    assert_eq!(service_of("geobutton-lambda"), "lambda.amazonaws.com");
    assert_eq!(service_of("geobutton-batch-job"), "ecs-tasks.amazonaws.com");
    assert_eq!(
        service_of("geobutton-batch-execution"),
        "ecs-tasks.amazonaws.com"
    );
    assert_eq!(
        got["geobutton-lambda"]["inline"],
        serde_json::json!(["geobutton"])
    );
    assert_eq!(
        got["geobutton-batch-execution"]["managed"],
        serde_json::json!([driver::deploy::iam::ECS_EXECUTION_POLICY])
    );
    assert_eq!(got["function_role"], got["geobutton-lambda"]["arn"]);
    assert_eq!(got["job_role"], got["geobutton-batch-job"]["arn"]);
    assert_eq!(
        got["execution_role"],
        got["geobutton-batch-execution"]["arn"]
    );
    // The compute environment is in the default VPC: all its subnets, its default group.
    assert_eq!(
        got["ce_subnets"],
        serde_json::json!(subnets.split(',').collect::<Vec<_>>())
    );
    assert_eq!(got["ce_groups"], serde_json::json!([sg]));
    // The permissions: the output prefix and the input bucket, nothing more.
    let policy = &got["policy"];
    let allows = |a: &str, r: &str| driver::deploy::iam::allows(policy, a, r);
    assert!(allows(
        "s3:PutObject",
        &format!("arn:aws:s3:::{bucket}/geobutton/runs/w/et0.tif")
    ));
    assert!(!allows(
        "s3:PutObject",
        &format!("arn:aws:s3:::{bucket}/elsewhere/x")
    ));
    assert!(allows("s3:GetObject", "arn:aws:s3:::cnig-copy/PNOA/x.laz"));
    assert!(!allows("s3:PutObject", "arn:aws:s3:::cnig-copy/x"));
    assert!(!allows(
        "iam:CreateRole",
        "arn:aws:iam::123456789012:role/x"
    ));

    // Again: the roles are adopted, their trust and permissions put again, and a function
    // whose configuration drifted is set back (here its timeout, changed by hand).
    let timeout = |set: Option<u32>| {
        let py = r#"
import sys, boto3
ep, region, value = sys.argv[1:4]
l = boto3.client("lambda", endpoint_url=ep, region_name=region, aws_access_key_id="testing",
                 aws_secret_access_key="testing")
if value != "-":
    l.update_function_configuration(FunctionName="geobutton-water-1024", Timeout=int(value))
print(l.get_function_configuration(FunctionName="geobutton-water-1024")["Timeout"])
"#;
        let value = set.map_or("-".to_string(), |v| v.to_string());
        let o = Command::new("python3")
            .args(["-c", py, &ep, region, &value])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(timeout(Some(3)), "3");
    let o = deploy();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert_eq!(timeout(None), "900");
    assert!(
        text.contains("role geobutton-lambda exists (trust: lambda.amazonaws.com)"),
        "{text}"
    );

    // `undeploy` removes what deploy made and nothing else: a function of the same name
    // pattern made by hand stays, and so does the bucket.
    let by_hand = r#"
import sys, boto3
ep, region, role, zip_path = sys.argv[1:5]
kw = dict(endpoint_url=ep, region_name=region, aws_access_key_id="testing",
          aws_secret_access_key="testing")
boto3.client("lambda", **kw).create_function(FunctionName="geobutton-biomass-999",
    Runtime="provided.al2023", Role=role, Handler="bootstrap",
    Code={"ZipFile": open(zip_path, "rb").read()})
"#;
    let zip = zips.path().join("biomass/bootstrap.zip");
    let o = Command::new("python3")
        .args(["-c", by_hand, &ep, region, service, zip.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let undeploy = |mode: &str| {
        common::test_credentials(&mut Command::new(BIN))
            .args(["undeploy", mode, "--bucket", &bucket, "--endpoint", &ep])
            .args(["--region", region])
            .args(["--compute-environment", &format!("{bucket}-ce")])
            .args(["--job-queue", &format!("{bucket}-q")])
            .output()
            .unwrap()
    };
    let o = undeploy("--dry-run");
    let listed = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{listed}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for line in [
        "would delete function geobutton-water-1024",
        &format!("would delete job queue {bucket}-q"),
        &format!("would delete compute environment {bucket}-ce"),
        "would deregister job definition geobutton-water:",
        "would delete role geobutton-batch-execution",
        "would delete 1 object(s)",
    ] {
        assert!(listed.contains(line), "{line}: {listed}");
    }
    assert!(!listed.contains("geobutton-biomass-999"), "{listed}");
    let o = undeploy("--apply");
    let text = common::succeeded(&o);
    assert_eq!(
        text.matches("deleted function").count(),
        listed.matches("would delete function").count()
    );
    let left = r#"
import json, sys, boto3
ep, region, bucket = sys.argv[1:4]
kw = dict(endpoint_url=ep, region_name=region, aws_access_key_id="testing",
          aws_secret_access_key="testing")
iam = boto3.client("iam", **kw)
b = boto3.client("batch", **kw)
print(json.dumps({
  "functions": [f["FunctionName"] for f in boto3.client("lambda", **kw).list_functions()["Functions"]],
  "roles": [r["RoleName"] for r in iam.list_roles()["Roles"]],
  "definitions": [d["jobDefinitionName"] for d in b.describe_job_definitions(status="ACTIVE")["jobDefinitions"]],
  "queues": [q["jobQueueName"] for q in b.describe_job_queues()["jobQueues"] if q["status"] != "DELETED"],
  "envs": [c["computeEnvironmentName"] for c in b.describe_compute_environments()["computeEnvironments"]],
  "objects": [o["Key"] for o in boto3.client("s3", **kw).list_objects_v2(Bucket=bucket).get("Contents", [])],
}))
"#;
    let o = Command::new("python3")
        .args(["-c", left, &ep, region, &bucket])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let left: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        left["functions"],
        serde_json::json!(["geobutton-biomass-999"])
    );
    assert_eq!(left["roles"], serde_json::json!(["batch-service"]));
    assert_eq!(left["definitions"], serde_json::json!([]));
    assert_eq!(left["queues"], serde_json::json!([]));
    assert_eq!(left["envs"], serde_json::json!([]));
    assert_eq!(left["objects"], serde_json::json!([]));
}

/// Every `s3://my-bucket/…` location the documentation shows is allowed by the policies
/// `geobutton deploy --bucket my-bucket --iam` prints: the roles' (read and write) and the
/// driver's.
#[test]
fn documented_locations_are_allowed_by_the_printed_policies() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = vec![root.join("README.md"), root.join("driver/README.md")];
    for dir in ["docs", "notebooks"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "md" || x == "ipynb") {
                files.push(p);
            }
        }
    }
    let config = driver::deploy::DeployConfig {
        bucket: "my-bucket".into(),
        ..Default::default()
    };
    let roles = driver::deploy::role_policy(&config).unwrap();
    let driver_policy = driver::deploy::driver_policy("my-bucket", "geobutton", "eu-west-1", "1");
    let mut seen = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, _) in text.match_indices("s3://my-bucket/") {
            let uri: String = text[i..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !"\"'`),\\".contains(*c))
                .collect();
            let key = uri
                .trim_start_matches("s3://my-bucket/")
                .trim_end_matches('/');
            let object = format!("arn:aws:s3:::my-bucket/{key}/x.tif");
            for (who, p) in [("role", &roles), ("driver", &driver_policy)] {
                for action in ["s3:GetObject", "s3:PutObject"] {
                    assert!(
                        driver::deploy::iam::allows(p, action, &object),
                        "{}: {uri}: the {who} policy does not allow {action}",
                        f.display()
                    );
                }
            }
            seen += 1;
        }
    }
    assert!(seen >= 5, "only {seen} documented locations found");

    // docs/deploy.md's `--iam` command prints the role policy with the input bucket, both
    // trust policies and the driver policy, and makes nothing (a dry run asks no service).
    let o = Command::new(BIN)
        .args([
            "deploy",
            "--dry-run",
            "--bucket",
            "my-bucket",
            "--region",
            "eu-west-1",
        ])
        .args(["--create-roles", "--input-bucket", "my-cnig-copy", "--iam"])
        .args(["--endpoint", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    let text = common::succeeded(&o);
    for part in [
        "\"action\": \"create_role\"",
        "arn:aws:s3:::my-cnig-copy/*",
        "arn:aws:s3:::my-bucket/geobutton/*",
        "trust policy of the functions' role",
        "lambda.amazonaws.com",
        "ecs-tasks.amazonaws.com",
        "driver policy",
        "lambda:GetAccountSettings",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
}
