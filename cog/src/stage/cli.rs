//! The command line of the `cog` binary (feature `cli`).

use clap::{Parser, Subcommand};

use std::path::PathBuf;

use super::*;
use crate::reader::OpenOptions;

/// `cog`: GeoTIFF/COG inspection, windowed reads and conversion to COG, on local paths,
/// `s3://` and `https://` URIs.
#[derive(Debug, Parser)]
#[command(name = "cog", version, about)]
pub struct CogCli {
    #[command(subcommand)]
    pub command: CogCommand,
}

#[derive(Debug, Subcommand)]
pub enum CogCommand {
    /// Prints the structure and georeferencing of a raster as JSON.
    Info {
        uri: String,
        /// Also print the request statistics of the open.
        #[arg(long)]
        stats: bool,
    },
    /// Reads a window of a raster and writes it as a COG.
    Read {
        uri: String,
        /// COL,ROW,WIDTH,HEIGHT in pixels of the chosen level.
        #[arg(long, value_parser = parse_window)]
        window: Window,
        /// Band (1-based); default all bands.
        #[arg(long)]
        band: Option<usize>,
        /// Overview level (0 = full resolution).
        #[arg(long, default_value_t = 0)]
        overview: usize,
        /// Output COG.
        #[arg(short, long)]
        output: String,
    },
    /// Converts any readable raster (GeoTIFF, COG, ESRI ASCII grid) into a COG.
    Translate {
        input: String,
        output: String,
        /// Tile size in pixels.
        #[arg(long, default_value_t = 512)]
        blocksize: u32,
        /// NONE, DEFLATE, LZW or ZSTD.
        #[arg(long, default_value = "DEFLATE", value_parser = parse_compression)]
        compression: crate::Compression,
        /// Do not build overviews.
        #[arg(long)]
        no_overviews: bool,
        /// Read options as JSON from this file (overrides the flags above).
        #[arg(long)]
        options: Option<PathBuf>,
    },
}

fn parse_window(s: &str) -> Result<Window, String> {
    let v: Vec<u64> = s
        .split(',')
        .map(|x| {
            x.trim()
                .parse::<u64>()
                .map_err(|_| format!("{x:?} is not a number"))
        })
        .collect::<Result<_, _>>()?;
    match v[..] {
        [c, r, w, h] if w > 0 && h > 0 => Ok(Window::new(c, r, w, h)),
        _ => Err(format!(
            "{s:?} is not COL,ROW,WIDTH,HEIGHT with a non-empty size"
        )),
    }
}

fn parse_compression(s: &str) -> Result<crate::Compression, String> {
    crate::Compression::parse(s).ok_or_else(|| format!("{s:?}: use NONE, DEFLATE, LZW or ZSTD"))
}

impl cloud::StageCli for CogCli {
    type Stage = CogStage;

    fn run(self, ctx: &Ctx) -> Result<(), TaskError> {
        let store = &ctx.store;
        match self.command {
            CogCommand::Info { uri, stats } => {
                let before = store.stats();
                let r = CogReader::open_with(
                    store,
                    &uri,
                    &OpenOptions {
                        external_overviews: true,
                        ..Default::default()
                    },
                )?;
                let mut v = serde_json::to_value(r.info())
                    .map_err(|e| TaskError::internal(format!("info JSON: {e}")))?;
                if stats {
                    let after = store.stats();
                    v["requests"] = serde_json::json!({
                        "requests": after.requests - before.requests,
                        "get_requests": after.get_requests - before.get_requests,
                        "bytes_read": after.bytes_read - before.bytes_read,
                    });
                }
                let text = serde_json::to_string_pretty(&v)
                    .map_err(|e| TaskError::internal(format!("info JSON: {e}")))?;
                println!("{text}");
            }
            CogCommand::Read {
                uri,
                window,
                band,
                overview,
                output,
            } => {
                let params = TranslateParams {
                    input: uri,
                    output,
                    bands: band.into_iter().collect(),
                    window: Some(window),
                    overview,
                    options: CogWriteOptions::default(),
                };
                let out = translate(store, &params)?;
                eprintln!(
                    "wrote {}x{} ({} band(s), {} bytes) to {}",
                    out.width, out.height, out.bands, out.bytes, out.output
                );
            }
            CogCommand::Translate {
                input,
                output,
                blocksize,
                compression,
                no_overviews,
                options,
            } => {
                let options = match options {
                    Some(path) => {
                        let bytes = store
                            .get_capped(&path.display().to_string(), 1 << 20)
                            .map_err(TaskError::from)?;
                        let text = String::from_utf8_lossy(&bytes);
                        serde_json::from_str(&text).map_err(|e| {
                            TaskError::invalid_input(format!("{}: {e}", path.display()))
                        })?
                    }
                    None => CogWriteOptions {
                        blocksize,
                        compression,
                        overviews: !no_overviews,
                        ..Default::default()
                    },
                };
                let params = TranslateParams {
                    input,
                    output,
                    bands: Vec::new(),
                    window: None,
                    overview: 0,
                    options,
                };
                params.validate()?;
                let out = CogStage::run(&params, ctx)?;
                eprintln!(
                    "wrote {}x{} ({} band(s), {} bytes) to {}",
                    out.width, out.height, out.bands, out.bytes, out.output
                );
            }
        }
        Ok(())
    }
}
