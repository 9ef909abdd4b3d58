//! How ECS (and so AWS Batch) starts a container of the project's `Dockerfile`, played with
//! local processes: argv = the image's ENTRYPOINT + (the job's command override, else the
//! job definition's command, else the image's CMD) — an override replaces the whole command,
//! and a shell-form ENTRYPOINT ignores every command. The image's files are the ones its
//! final stage COPYs: the stage binaries built by `cargo build --release` map to this
//! build's binaries, files of the build context to the repository's. Anything else the argv
//! names is not in the image, and the child fails as it would on AWS.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The final stage of a Dockerfile, as far as starting a container goes.
#[derive(Debug)]
pub struct Image {
    /// ENTRYPOINT in exec form, or `["/bin/sh", "-c", text]` for the shell form.
    pub entrypoint: Vec<String>,
    /// Whether the ENTRYPOINT is in shell form (then commands are ignored).
    pub shell_entrypoint: bool,
    pub cmd: Vec<String>,
    /// Image path → host file.
    pub files: HashMap<String, PathBuf>,
    /// A folder laid out as the image's `/usr/local/bin` (symbolic links to `files`).
    root: tempfile::TempDir,
}

/// Logical lines of a Dockerfile (continuations joined, comments dropped).
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (op, rest) = current.split_once(char::is_whitespace).unwrap();
        out.push((op.to_ascii_uppercase(), rest.trim().to_string()));
        current.clear();
    }
    out
}

/// An exec-form (JSON array) or shell-form instruction argument.
fn exec_or_shell(arg: &str) -> (Vec<String>, bool) {
    match serde_json::from_str::<Vec<String>>(arg) {
        Ok(v) => (v, false),
        Err(_) => (vec!["/bin/sh".into(), "-c".into(), arg.to_string()], true),
    }
}

impl Image {
    /// Reads `dockerfile` (whose build context is its folder); `release_bins` maps the file
    /// names of `target/release/NAME` to the binaries to run for them.
    pub fn from_dockerfile(dockerfile: &Path, release_bins: &HashMap<String, PathBuf>) -> Image {
        let text = std::fs::read_to_string(dockerfile).unwrap();
        let context = dockerfile.parent().unwrap();
        let all = instructions(&text);
        let last_from = all.iter().rposition(|(op, _)| op == "FROM").unwrap();
        let mut image = Image {
            entrypoint: Vec::new(),
            shell_entrypoint: false,
            cmd: Vec::new(),
            files: HashMap::new(),
            root: tempfile::tempdir().unwrap(),
        };
        for (op, rest) in &all[last_from + 1..] {
            match op.as_str() {
                "ENTRYPOINT" => {
                    (image.entrypoint, image.shell_entrypoint) = exec_or_shell(rest);
                    image.cmd.clear(); // Docker resets CMD when ENTRYPOINT is set
                }
                "CMD" => image.cmd = exec_or_shell(rest).0,
                "COPY" => {
                    let words: Vec<&str> = rest.split_whitespace().collect();
                    let from = words
                        .iter()
                        .find_map(|w| w.strip_prefix("--from="))
                        .map(str::to_string);
                    let paths: Vec<&str> = words
                        .iter()
                        .copied()
                        .filter(|w| !w.starts_with("--"))
                        .collect();
                    let (dest, sources) = paths.split_last().unwrap();
                    for src in sources {
                        let name = Path::new(src).file_name().unwrap().to_str().unwrap();
                        let target = if dest.ends_with('/') || sources.len() > 1 {
                            format!("{}/{name}", dest.trim_end_matches('/'))
                        } else {
                            dest.to_string()
                        };
                        let host = match &from {
                            Some(_) if src.contains("/target/release/") => {
                                match release_bins.get(name) {
                                    Some(p) => p.clone(),
                                    None => continue, // not needed by this test
                                }
                            }
                            Some(stage) => panic!("COPY --from={stage} {src}: not played"),
                            None => context.join(src),
                        };
                        assert!(host.is_file(), "{}: not a file", host.display());
                        image.files.insert(target, host);
                    }
                }
                _ => {}
            }
        }
        let bin = image.root.path().join("usr/local/bin");
        std::fs::create_dir_all(&bin).unwrap();
        for (path, host) in &image.files {
            if let Some(name) = path.strip_prefix("/usr/local/bin/") {
                std::os::unix::fs::symlink(host, bin.join(name)).unwrap();
            }
        }
        image
    }

    /// The argv ECS starts: ENTRYPOINT + (override, else the definition's command, else CMD).
    pub fn argv(&self, definition: &[String], command_override: Option<&[String]>) -> Vec<String> {
        let command = match command_override {
            Some(c) => c.to_vec(),
            None if !definition.is_empty() => definition.to_vec(),
            None => self.cmd.clone(),
        };
        let mut argv = self.entrypoint.clone();
        if !self.shell_entrypoint {
            argv.extend(command);
        }
        assert!(!argv.is_empty(), "neither ENTRYPOINT nor a command");
        argv
    }

    /// A process for `argv` inside the image: its program resolved among the image's files
    /// (absolute, or through the image's PATH, whose `/usr/local/bin` holds only what the
    /// image copied there).
    pub fn command(&self, argv: &[String]) -> Command {
        let bin = self.root.path().join("usr/local/bin");
        let program = &argv[0];
        let host = if program.starts_with('/') {
            match self.files.get(program) {
                Some(p) => p.clone(),
                None if program.starts_with("/bin/") || program.starts_with("/usr/bin/") => {
                    PathBuf::from(program) // the base image's own programs (sh)
                }
                None => bin.join("no-such-file-in-the-image").join(program),
            }
        } else {
            bin.join(program)
        };
        let mut cmd = Command::new(host);
        cmd.args(&argv[1..])
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("HOME", self.root.path());
        cmd
    }
}
