//! Tasks, their errors and their status records (the stage contract of DESIGN.md §2).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::StoreError;
use crate::fingerprint::{Fingerprint, Rerun};

/// What kind of failure ended a task; also the Lambda `errorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The task JSON itself is malformed, names another stage, or has unknown fields.
    InvalidTask,
    /// The task's input data is unusable (corrupt file, wrong CRS, empty input, ...).
    InvalidInput,
    /// An input object does not exist.
    NotFound,
    /// Storage refused access.
    AccessDenied,
    /// Storage failed (network, server or disk), after retries.
    Storage,
    /// A limit was hit (memory budget, size caps).
    ResourceLimit,
    /// A bug: a panic or an impossible state.
    Internal,
    /// The task's deadline passed before it finished.
    Timeout,
}

impl ErrorKind {
    /// The name used as Lambda `errorType` and in status files.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidTask => "InvalidTask",
            ErrorKind::InvalidInput => "InvalidInput",
            ErrorKind::NotFound => "NotFound",
            ErrorKind::AccessDenied => "AccessDenied",
            ErrorKind::Storage => "StorageError",
            ErrorKind::ResourceLimit => "ResourceLimit",
            ErrorKind::Internal => "InternalError",
            ErrorKind::Timeout => "Timeout",
        }
    }

    /// Every kind, for lookups by name.
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::InvalidTask,
        ErrorKind::InvalidInput,
        ErrorKind::NotFound,
        ErrorKind::AccessDenied,
        ErrorKind::Storage,
        ErrorKind::ResourceLimit,
        ErrorKind::Internal,
        ErrorKind::Timeout,
    ];

    /// The kind whose [`ErrorKind::as_str`] is `name` (a Lambda `errorType`), if any.
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether running the same task again, unchanged, may succeed (executors' retries):
    /// transient storage failures, a deadline passed on a busy machine, and internal
    /// failures. A [`ErrorKind::ResourceLimit`] is deterministic (a memory budget, a size
    /// cap, a full disk): it is retried only with more memory
    /// ([`ErrorKind::is_retryable_with_more_memory`]).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Storage | ErrorKind::Internal | ErrorKind::Timeout
        )
    }

    /// Whether a retry with more memory than the failed attempt had may succeed.
    pub fn is_retryable_with_more_memory(self) -> bool {
        self.is_retryable() || self == ErrorKind::ResourceLimit
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed task: a kind and a message naming the file and the problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct TaskError {
    pub kind: ErrorKind,
    pub message: String,
}

impl TaskError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        TaskError {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid_task(message: impl Into<String>) -> Self {
        TaskError::new(ErrorKind::InvalidTask, message)
    }
    pub fn invalid_input(message: impl Into<String>) -> Self {
        TaskError::new(ErrorKind::InvalidInput, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        TaskError::new(ErrorKind::Internal, message)
    }
}

/// Errors that know which [`ErrorKind`] they are; stage error enums implement it.
pub trait Classify: std::error::Error {
    fn kind(&self) -> ErrorKind;
}

impl<E: Classify> From<E> for TaskError {
    fn from(e: E) -> Self {
        TaskError::new(e.kind(), error_chain(&e))
    }
}

/// `e` and its sources, joined with `": "` (skipping sources already in the message).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}

impl Classify for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::InvalidUri { .. } => ErrorKind::InvalidTask,
            StoreError::NotFound { .. } => ErrorKind::NotFound,
            StoreError::AccessDenied { .. } => ErrorKind::AccessDenied,
            StoreError::RangePastEnd { .. } => ErrorKind::InvalidInput,
            StoreError::Unsupported { .. } => ErrorKind::InvalidTask,
            StoreError::NotAFile { .. } | StoreError::TooLarge { .. } => ErrorKind::InvalidInput,
            StoreError::Refused { .. } => ErrorKind::InvalidInput,
            StoreError::WrongRegion { .. } => ErrorKind::Storage,
            StoreError::Deadline { .. } => ErrorKind::Timeout,
            StoreError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::NotADirectory => {
                    ErrorKind::InvalidInput
                }
                std::io::ErrorKind::StorageFull
                | std::io::ErrorKind::QuotaExceeded
                | std::io::ErrorKind::FileTooLarge => ErrorKind::ResourceLimit,
                std::io::ErrorKind::ReadOnlyFilesystem => ErrorKind::AccessDenied,
                _ => ErrorKind::Storage,
            },
            StoreError::Remote { .. } | StoreError::Source { .. } => ErrorKind::Storage,
        }
    }
}

/// One unit of work for a stage: `{ "id", "stage", "params" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task<P> {
    /// Unique within a run; names the status file. Letters, digits, `.`, `_`, `-`.
    pub id: String,
    /// The stage (binary) that runs it.
    pub stage: String,
    pub params: P,
}

/// The JSON-lines manifest of `tasks` (task JSON or typed tasks), one task per line: what a
/// [`ManifestRef`] names a line of (a Batch array job's children, Lambda invocations, the
/// driver, `ndvi tile --plan-only`).
pub fn manifest_text<T: Serialize>(
    tasks: impl IntoIterator<Item = T>,
) -> Result<String, serde_json::Error> {
    let mut text = String::new();
    for task in tasks {
        text.push_str(&serde_json::to_string(&task)?);
        text.push('\n');
    }
    Ok(text)
}

/// A reference to line `index` (0-based, blank lines skipped) of a JSON-lines manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestRef {
    pub manifest: String,
    pub index: usize,
    /// Run the task even when an earlier run finished it with the same fingerprint (what
    /// `--force` sends to Lambda functions and Batch children).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// Whether a task succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    Ok,
    Error,
}

/// The record every task writes to `status/<id>.json` beside its outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub id: String,
    pub stage: String,
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TaskError>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Wall time, seconds.
    pub duration_s: f64,
    /// Peak resident set size of the process during the task, bytes (Linux).
    #[serde(default)]
    pub peak_rss_bytes: Option<u64>,
    /// URIs of the objects the task wrote.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// The stage's output record.
    #[serde(default)]
    pub output: Option<Value>,
    /// Bytes the task read from and wrote to storage, and its storage requests.
    #[serde(default)]
    pub bytes_read: u64,
    #[serde(default)]
    pub bytes_written: u64,
    #[serde(default)]
    pub requests: u64,
    /// Waits on a throttled storage service (S3 `SlowDown`): not failures.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled: u64,
    /// S3 requests and bytes by bucket region and payer (what the cost of requests and
    /// of transfer between regions is computed from).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub s3: Vec<crate::S3Traffic>,
    /// Where it ran: `cli`, `local`, `lambda` or `batch`.
    pub executor: String,
    /// True in a response when the task was already done and was not run again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    /// What the result was computed from (set when the task succeeded); a later run skips
    /// the task only while it is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// Why the task ran rather than being skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran_because: Option<Rerun>,
    /// What the user must know about the result ([`crate::Stage::warnings`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl TaskStatus {
    /// The status of task `id` of `stage` started at `start` on `executor`: an error until
    /// the task says otherwise, with nothing read, written or output yet.
    pub fn started(id: &str, stage: &str, executor: &str, start: DateTime<Utc>) -> TaskStatus {
        TaskStatus {
            id: id.to_string(),
            stage: stage.to_string(),
            state: TaskState::Error,
            error: None,
            start,
            end: start,
            duration_s: 0.0,
            peak_rss_bytes: None,
            outputs: Vec::new(),
            output: None,
            bytes_read: 0,
            bytes_written: 0,
            requests: 0,
            throttled: 0,
            s3: Vec::new(),
            executor: executor.to_string(),
            skipped: false,
            fingerprint: None,
            ran_because: None,
            warnings: Vec::new(),
        }
    }
}

/// Checks a task id: 1–128 characters of `[A-Za-z0-9._-]`, not starting with `.`.
pub fn validate_task_id(id: &str) -> Result<(), TaskError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(TaskError::invalid_task(format!(
            "task id {id:?} must be 1-128 characters of letters, digits, '.', '_' or '-'"
        )))
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_storage_failures_are_not_retried() {
        let io = |k: std::io::ErrorKind| StoreError::Io {
            op: crate::Op::Put,
            uri: "/x".into(),
            source: std::io::Error::from(k),
        };
        // A full disk fails the same way again: not a transient storage error.
        let full = TaskError::from(io(std::io::ErrorKind::StorageFull));
        assert_eq!(full.kind, ErrorKind::ResourceLimit);
        assert!(!full.kind.is_retryable());
        assert!(
            !TaskError::from(io(std::io::ErrorKind::NotADirectory))
                .kind
                .is_retryable()
        );
        assert!(
            TaskError::from(io(std::io::ErrorKind::TimedOut))
                .kind
                .is_retryable()
        );
        // A directory given as a file is bad input.
        let dir = StoreError::NotAFile {
            op: crate::Op::Get,
            uri: "/tmp".into(),
            what: "a directory",
        };
        assert_eq!(TaskError::from(dir).kind, ErrorKind::InvalidInput);
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(k.as_str()), Some(k));
        }
    }
}
