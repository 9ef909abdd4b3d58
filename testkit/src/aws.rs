//! The environment of a child process that talks to the loopback AWS emulators (S3 on
//! moto, the Lambda runtime emulator): test credentials, no instance metadata service, and
//! none of the variables that would send it elsewhere or change its mode.

use std::process::Command;

/// The emulators' fixed credentials and no instance metadata service (which is off
/// loopback); no profile from the developer's `~/.aws`.
pub fn test_credentials(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
}

/// `cmd` pointed at the S3 server at `endpoint` (a loopback URL) in `us-east-1`, with
/// [`test_credentials`], run as a command line: the Lambda and Batch variables a stage
/// binary reads are removed, and so is a service-specific S3 endpoint.
///
/// ```
/// let mut cmd = std::process::Command::new("true");
/// testkit::aws::s3_env(&mut cmd, "http://127.0.0.1:5000");
/// let env: Vec<_> = cmd.get_envs().collect();
/// assert!(env.contains(&("AWS_ENDPOINT_URL".as_ref(), Some("http://127.0.0.1:5000".as_ref()))));
/// assert!(env.contains(&("AWS_LAMBDA_RUNTIME_API".as_ref(), None)));
/// ```
pub fn s3_env<'a>(cmd: &'a mut Command, endpoint: &str) -> &'a mut Command {
    test_credentials(cmd)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AWS_BATCH_JOB_ARRAY_INDEX")
        .env_remove("GEOBUTTON_MANIFEST")
}
