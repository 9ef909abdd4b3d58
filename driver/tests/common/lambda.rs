//! The Lambda runtime emulator of `cargo lambda watch --only-lambda-apis` (PyPI
//! `cargo-lambda`) and the real stage binaries as its function instances.
//!
//! The emulator routes function names: a name is accepted when the Cargo project it watches
//! has a binary of that name (a throw-away project declaring the functions), and a runtime
//! polls the function `NAME` at `AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:PORT/.rt/NAME`. One
//! emulator serves every function; several processes may poll one function (instances).
#![allow(dead_code, clippy::unwrap_used)]

use std::process::{Command, Stdio};

use super::{ChildGuard, free_port, s3_env, wait_for_port};

/// Starts `cargo lambda watch --only-lambda-apis` on a free loopback port, routing the
/// function names `functions`.
pub fn start_emulator(functions: &[&str]) -> (ChildGuard, u16) {
    let port = free_port();
    let cargo_lambda = super::find_program("cargo-lambda").expect(
        "cargo-lambda is not installed: pip install cargo-lambda (scripts/requirements-test.txt)",
    );
    let dir = tempfile::tempdir().unwrap().keep();
    let mut manifest = String::from(
        "[package]\nname = \"emulated\"\nversion = \"0.0.0\"\nedition = \"2021\"\n[workspace]\n",
    );
    for f in functions {
        manifest.push_str(&format!(
            "[[bin]]\nname = \"{f}\"\npath = \"src/main.rs\"\n"
        ));
    }
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
    let mut child = Command::new(cargo_lambda)
        .args([
            "lambda",
            "watch",
            "--only-lambda-apis",
            "-A",
            "127.0.0.1",
            "-P",
        ])
        .arg(port.to_string())
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child, "cargo lambda watch");
    (ChildGuard(child), port)
}

/// Starts one instance of `function`: the stage binary `bin` in Lambda mode, polling the
/// emulator on `port`, with the loopback S3 settings.
pub fn instance(bin: &std::path::Path, port: u16, function: &str) -> ChildGuard {
    let memory = function.rsplit('-').next().unwrap();
    let mut cmd = Command::new(bin);
    s3_env(&mut cmd)
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{port}/.rt/{function}"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    ChildGuard(cmd.spawn().unwrap())
}
