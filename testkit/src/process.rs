//! Child processes that serve on a loopback port.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Kills (and reaps) a child process when dropped.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until something accepts connections on 127.0.0.1:`port`, at most `within`; an
/// error when `child` (`what`) exits first or the time is up.
pub fn wait_for_port(port: u16, child: &mut Child, what: &str, within: Duration) -> io::Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::other(format!(
                "{what} exited before listening on port {port}: {status}"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{what} did not listen on port {port} within {within:?}"),
    ))
}

/// Runs `cmd` to its end: its standard output when it succeeds, else an error with its exit
/// status and standard error.
///
/// ```
/// let out = testkit::process::stdout_of(std::process::Command::new("echo").arg("hi")).unwrap();
/// assert_eq!(out, "hi\n");
/// let err = testkit::process::stdout_of(&mut std::process::Command::new("false")).unwrap_err();
/// assert!(err.to_string().contains("failed"));
/// ```
pub fn stdout_of(cmd: &mut Command) -> io::Result<String> {
    let out = cmd
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("{cmd:?} cannot run: {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `name` on `PATH` or in the usual system directories (`/usr/sbin`, `/usr/local/sbin`,
/// `/sbin`).
///
/// ```
/// assert!(testkit::process::find_program("sh").is_some());
/// assert!(testkit::process::find_program("no-such-program-here").is_none());
/// ```
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_a_listener_and_reports_an_early_exit() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        let mut sleeper = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        wait_for_port(port, &mut sleeper, "sleep", Duration::from_secs(5)).expect("listening");
        let _guard = ChildGuard(sleeper);

        let mut quitter = std::process::Command::new("true").spawn().expect("true");
        let closed = free_port().expect("a free port");
        let err = wait_for_port(closed, &mut quitter, "true", Duration::from_secs(5))
            .expect_err("nothing listens");
        assert!(err.to_string().contains("exited before listening"), "{err}");
    }
}
