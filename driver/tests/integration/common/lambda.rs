//! The Lambda runtime emulator (`testkit::lambda`) for the driver's tests.

use super::{ChildGuard, s3_env};

/// Starts `cargo lambda watch --only-lambda-apis` on a free loopback port, routing the
/// function names `functions`.
pub fn start_emulator(functions: &[&str]) -> (ChildGuard, u16) {
    testkit::lambda::start_emulator(functions).unwrap_or_else(|e| panic!("{e}"))
}

/// Starts one instance of `function`: the stage binary `bin` in Lambda mode, polling the
/// emulator on `port`, with the loopback S3 settings.
pub fn instance(bin: &std::path::Path, port: u16, function: &str) -> ChildGuard {
    let mut cmd = std::process::Command::new(bin);
    s3_env(&mut cmd);
    ChildGuard(
        testkit::lambda::as_instance(&mut cmd, port, function)
            .spawn()
            .unwrap(),
    )
}
