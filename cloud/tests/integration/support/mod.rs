//! Helpers for tests that start local servers (all on 127.0.0.1).

use std::path::PathBuf;
use std::process::Child;

pub use testkit::process::{ChildGuard, find_program};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    testkit::process::free_port().expect("a free loopback port")
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    testkit::process::wait_for_port(port, child, what, std::time::Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
}

/// `../shared/data` beside the repository.
pub fn shared_data() -> PathBuf {
    let p = testkit::fixtures::shared_data();
    assert!(p.is_dir(), "fixtures not found at {}", p.display());
    p
}

/// Starts `cargo lambda watch --only-lambda-apis` (the Lambda runtime API and Invoke API
/// emulator from the `cargo-lambda` PyPI package) on a free loopback port.
pub fn start_lambda_emulator() -> (ChildGuard, u16) {
    testkit::lambda::start_emulator(&[]).unwrap_or_else(|e| panic!("{e}"))
}
