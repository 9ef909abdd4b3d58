//! `cloud`: storage utilities on the command line, and the `copy` stage as CLI, AWS Lambda
//! handler and AWS Batch worker.

use std::io::Write;

use clap::{Parser, Subcommand};
use cloud::copy::{CopyParams, CopyStage, selfcheck};
use cloud::{Ctx, ErrorKind, Stage, StageCli, TaskError};

/// `cloud`: storage utilities over local paths, `s3://` and `https://`.
#[derive(Debug, Parser)]
#[command(name = "cloud", version, about)]
struct CloudCli {
    #[command(subcommand)]
    command: CloudCommand,
}

#[derive(Debug, Subcommand)]
enum CloudCommand {
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

impl StageCli for CloudCli {
    type Stage = CopyStage;

    fn run(self, ctx: &Ctx) -> Result<(), TaskError> {
        let store = &ctx.store;
        let stdout_err = |e: std::io::Error| {
            TaskError::new(ErrorKind::Internal, format!("standard output: {e}"))
        };
        match self.command {
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

fn main() -> std::process::ExitCode {
    cloud::binary::main::<CloudCli>()
}
