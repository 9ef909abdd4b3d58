//! The Lambda runtime emulator of `cargo lambda watch --only-lambda-apis` (PyPI
//! `cargo-lambda`) and the real stage binaries as its function instances.
//!
//! The emulator routes function names: a name is accepted when the Cargo project it watches
//! has a binary of that name (a throw-away project declaring the functions), and a runtime
//! polls the function `NAME` at `AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:PORT/.rt/NAME`. One
//! emulator serves every function; several processes may poll one function (instances).

use std::io;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{ChildGuard, find_program, free_port, wait_for_port};

/// How long the emulator may take to listen.
const START_WITHIN: Duration = Duration::from_secs(60);

/// Starts `cargo lambda watch --only-lambda-apis` on a free loopback port, routing the
/// function names `functions`; returns it and its port.
pub fn start_emulator(functions: &[&str]) -> io::Result<(ChildGuard, u16)> {
    let cargo_lambda = find_program("cargo-lambda").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "cargo-lambda is not installed: pip install cargo-lambda (scripts/requirements-test.txt)",
        )
    })?;
    let dir = tempfile::tempdir()?.keep();
    let mut manifest = String::from(
        "[package]\nname = \"emulated\"\nversion = \"0.0.0\"\nedition = \"2021\"\n[workspace]\n",
    );
    for f in functions {
        manifest.push_str(&format!(
            "[[bin]]\nname = \"{f}\"\npath = \"src/main.rs\"\n"
        ));
    }
    std::fs::write(dir.join("Cargo.toml"), manifest)?;
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(dir.join("src/main.rs"), "fn main() {}\n")?;
    let port = free_port()?;
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
        .spawn()?;
    if let Err(e) = wait_for_port(port, &mut child, "cargo lambda watch", START_WITHIN) {
        drop(ChildGuard(child));
        return Err(e);
    }
    Ok((ChildGuard(child), port))
}

/// Makes `cmd` (a stage binary, its other settings already made) one instance of
/// `function`: in Lambda mode, polling the emulator on `port`, with the memory size the
/// function's name ends with (`…-1024`; else 1024 MB), its output discarded. Call it last:
/// it sets the Lambda variables over whatever `cmd` had.
pub fn as_instance<'a>(cmd: &'a mut Command, port: u16, function: &str) -> &'a mut Command {
    let memory = function
        .rsplit('-')
        .next()
        .filter(|m| m.parse::<u32>().is_ok())
        .unwrap_or("1024");
    cmd.env(
        "AWS_LAMBDA_RUNTIME_API",
        format!("http://127.0.0.1:{port}/.rt/{function}"),
    )
    .env("AWS_LAMBDA_FUNCTION_NAME", function)
    .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
    .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory)
    .stdout(Stdio::null())
    .stderr(Stdio::null())
}
