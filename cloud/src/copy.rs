//! The `copy` stage and the `cloud` command line: object copies between any two locations,
//! listing, heads, and a self-check of a storage location.

use std::io::Write;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};

use crate::entry::{Ctx, Stage};
use crate::store::Store;
use crate::task::{ErrorKind, TaskError};
use crate::uri;

/// Parameters of a `copy` task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyParams {
    /// Source URI.
    pub src: String,
    /// Destination URI (written atomically).
    pub dst: String,
}

/// Result of a `copy` task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyOutput {
    pub dst: String,
    /// Bytes copied.
    pub bytes: u64,
}

/// Copies one object; the stage behind the `cloud` binary.
pub struct CopyStage;

/// `cloud`: storage utilities over local paths, `s3://` and `https://`.
#[derive(Debug, Parser)]
#[command(name = "cloud", version, about)]
pub struct CloudCli {
    #[command(subcommand)]
    pub command: CloudCommand,
}

#[derive(Debug, Subcommand)]
pub enum CloudCommand {
    /// Copies SRC to DST (atomically).
    Cp { src: String, dst: String },
    /// Lists the objects under PREFIX (size and URI).
    Ls { prefix: String },
    /// Prints the size of an object in bytes.
    Head { uri: String },
    /// Writes an object, or a byte range of it, to standard output.
    Cat {
        uri: String,
        /// Byte range START..END (END exclusive).
        #[arg(long, value_parser = parse_range)]
        range: Option<std::ops::Range<u64>>,
    },
    /// Checks that a location works: atomic put, get, range reads, list and delete.
    Selfcheck {
        /// Where to write the check's objects (default: a new temporary local directory).
        #[arg(long)]
        at: Option<String>,
    },
}

fn parse_range(s: &str) -> Result<std::ops::Range<u64>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("{s:?} is not START..END"))?;
    let a: u64 = a.parse().map_err(|_| format!("bad start {a:?}"))?;
    let b: u64 = b.parse().map_err(|_| format!("bad end {b:?}"))?;
    if b < a {
        return Err(format!("end {b} is before start {a}"));
    }
    Ok(a..b)
}

impl Stage for CopyStage {
    const NAME: &'static str = "cloud";
    const VERSION: u32 = 1;
    type Params = CopyParams;
    type Output = CopyOutput;
    type Cli = CloudCli;

    fn status_root(params: &CopyParams) -> String {
        uri::parent(&params.dst)
    }

    fn validate(params: &CopyParams) -> Result<(), TaskError> {
        crate::validate::distinct_outputs(&[params.src.as_str()], &[params.dst.as_str()])
    }

    fn input_uris(params: &CopyParams) -> Vec<String> {
        vec![params.src.clone()]
    }

    fn run(params: &CopyParams, ctx: &Ctx) -> Result<CopyOutput, TaskError> {
        let data = ctx.store.get(&params.src)?;
        let bytes = data.len() as u64;
        ctx.store.put(&params.dst, data)?;
        Ok(CopyOutput {
            dst: params.dst.clone(),
            bytes,
        })
    }

    fn output_uris(output: &CopyOutput) -> Vec<String> {
        vec![output.dst.clone()]
    }

    fn cli(cli: CloudCli, ctx: &Ctx) -> Result<(), TaskError> {
        let store = &ctx.store;
        let stdout_err = |e: std::io::Error| {
            TaskError::new(ErrorKind::Internal, format!("standard output: {e}"))
        };
        match cli.command {
            CloudCommand::Cp { src, dst } => {
                let out = CopyStage::run(&CopyParams { src, dst }, ctx)?;
                eprintln!("copied {} bytes to {}", out.bytes, out.dst);
            }
            CloudCommand::Ls { prefix } => {
                let mut out = std::io::stdout().lock();
                for obj in store.list(&prefix)? {
                    writeln!(out, "{:>14} {}", obj.size, obj.uri).map_err(stdout_err)?;
                }
            }
            CloudCommand::Head { uri } => println!("{}", store.head(&uri)?),
            CloudCommand::Cat { uri, range } => {
                let data = match range {
                    Some(r) => store.get_range(&uri, r)?,
                    None => store.get(&uri)?,
                };
                std::io::stdout()
                    .lock()
                    .write_all(&data)
                    .map_err(stdout_err)?;
            }
            CloudCommand::Selfcheck { at } => {
                let report = selfcheck(store, at.as_deref())?;
                println!("{report}");
            }
        }
        Ok(())
    }
}

/// Exercises put, head, get, get_ranges, list and delete at `at` (or a new temporary local
/// directory) and returns a one-paragraph report; any mismatch is an error.
pub fn selfcheck(store: &Store, at: Option<&str>) -> Result<String, TaskError> {
    let tmp;
    let root = match at {
        Some(r) => r.to_string(),
        None => {
            tmp = std::env::temp_dir().join(format!("geobutton-selfcheck-{}", std::process::id()));
            tmp.display().to_string()
        }
    };
    let fail =
        |what: String| TaskError::new(ErrorKind::Internal, format!("selfcheck at {root}: {what}"));
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let obj = uri::join(&root, "selfcheck/object.bin");
    let before = store.stats();
    store.put(&obj, Bytes::from(data.clone()))?;
    let size = store.head(&obj)?;
    if size != data.len() as u64 {
        return Err(fail(format!(
            "head says {size} bytes, wrote {}",
            data.len()
        )));
    }
    if store.get(&obj)?.as_ref() != data.as_slice() {
        return Err(fail("get returned different bytes".into()));
    }
    let ranges = [0..10u64, 1_000_000..1_000_100, 2_999_990..3_000_000, 20..30];
    let got = store.get_ranges(&obj, &ranges)?;
    for (r, b) in ranges.iter().zip(&got) {
        if b.as_ref() != &data[r.start as usize..r.end as usize] {
            return Err(fail(format!("range {r:?} returned different bytes")));
        }
    }
    match store.get_range(&obj, 2_999_990..3_000_010) {
        Err(crate::StoreError::RangePastEnd { .. }) => {}
        other => return Err(fail(format!("a range past the end gave {other:?}"))),
    }
    let listed = store.list(&uri::join(&root, "selfcheck/"))?;
    if !listed
        .iter()
        .any(|o| o.uri.ends_with("selfcheck/object.bin") && o.size == size)
    {
        return Err(fail(format!("list did not show the object: {listed:?}")));
    }
    store.delete(&obj)?;
    if store.exists(&obj)? {
        return Err(fail("the object still exists after delete".into()));
    }
    if at.is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }
    let after = store.stats();
    Ok(format!(
        "selfcheck ok at {root}: put/head/get/get_ranges/list/delete of a {size}-byte object; \
         {} requests, {} bytes read, {} bytes written",
        after.requests - before.requests,
        after.bytes_read - before.bytes_read,
        after.bytes_written - before.bytes_written
    ))
}
