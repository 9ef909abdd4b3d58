//! Storage and serverless plumbing for geobutton, with no geospatial knowledge.
//!
//! - [`Store`]: `head`, `get`, `get_range`, `get_ranges` (coalesced, capped, concurrent),
//!   atomic `put`/`put_reader`/`put_file`, `list` and `delete` over local paths, `file://`,
//!   `s3://bucket/key` (AWS or any S3-compatible server) and read-only `http(s)://`.
//! - [`entry`]: the stage contract ([`Stage`], [`Ctx`], [`run_task`]): task status,
//!   fingerprints and resume.
//! - `binary` (feature `cli`): the one `main` every stage binary uses (command line, AWS
//!   Lambda, AWS Batch) and the [`binary::StageCli`] trait of a binary's command line.

mod backend;
#[cfg(feature = "cli")]
pub mod binary;
pub mod copy;
mod counters;
pub mod entry;
mod error;
pub mod fingerprint;
#[cfg(feature = "remote")]
mod http;
pub mod inputs;
mod local;
pub mod mem;
#[cfg(not(feature = "remote"))]
mod offline;
mod options;
pub mod progress;
pub mod ranges;
mod retry;
pub mod rss;
pub mod runtime;
#[cfg(feature = "remote")]
mod s3;
#[cfg(not(feature = "remote"))]
use offline::{http, s3};
mod store;
pub mod task;
#[cfg(feature = "remote")]
pub mod testing;
pub mod uri;
pub mod validate;

pub use backend::{ObjectInfo, ObjectMeta};
#[cfg(feature = "cli")]
pub use binary::StageCli;
pub use counters::{S3Traffic, StoreStats};
pub use entry::{Ctx, RunOptions, Stage, run_task};
pub use error::{Op, StoreError};
pub use fingerprint::{Fingerprint, InfoCache, InputIdentity, Rerun};
pub use inputs::{Expansion, InputError, InputSet};
pub use options::{MIN_PART_SIZE, StoreOptions};
pub use progress::{Progress, ProgressMode};
pub use retry::RetryPolicy;
pub use store::{MAX_JSON_BYTES, Store};
pub use task::{Classify, ErrorKind, Task, TaskError, TaskState, TaskStatus};
pub use uri::Location;
