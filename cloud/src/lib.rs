//! Storage and serverless plumbing for geobutton, with no geospatial knowledge.
//!
//! - [`Store`]: `head`, `get`, `get_range`, `get_ranges` (coalesced, capped, concurrent),
//!   atomic `put`/`put_reader`/`put_file`, `list` and `delete` over local paths, `file://`,
//!   `s3://bucket/key` (AWS or any S3-compatible server) and read-only `http(s)://`.
//! - [`entry`]: the stage contract ([`Stage`], [`Ctx`], [`run_task`]): task status,
//!   fingerprints and resume.
//! - `binary` (feature `cli`): the one `main` every stage binary uses (command line, AWS
//!   Lambda, AWS Batch) and the `binary::StageCli` trait of a binary's command line.
//!
//! ```
//! use bytes::Bytes;
//! use cloud::Store;
//!
//! // Any URI: a local path here; `s3://bucket/key` and `https://` work the same way.
//! let dir = std::env::temp_dir().join(format!("cloud-doc-{}", std::process::id()));
//! let uri = dir.join("digits.bin").display().to_string();
//! let store = Store::default();
//! store.put(&uri, Bytes::from_static(b"0123456789"))?; // atomic: temporary name, rename
//! assert_eq!(store.head(&uri)?, 10);
//! let parts = store.get_ranges(&uri, &[2..4, 7..10])?; // one call, coalesced requests
//! assert_eq!((&parts[0][..], &parts[1][..]), (&b"23"[..], &b"789"[..]));
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), cloud::StoreError>(())
//! ```

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
