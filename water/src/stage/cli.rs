//! The command line of the `water` binary (feature `cli`).

use clap::{Args, Parser, Subcommand};

use super::*;

/// The `water` command line.
#[derive(Debug, Parser)]
#[command(
    name = "water",
    about = "FAO-56 reference and crop evapotranspiration: station tables and DTM tiles"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Daily ET0 for every row of a station CSV (see the crate docs for the columns).
    Et0 {
        /// Input CSV URI.
        input: String,
        /// Output CSV URI (input rows with `et0_mm` appended).
        #[arg(short, long)]
        output: String,
    },
    /// The spatial workflow over DTM tiles (one task per tile).
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// DTM tiles (GeoTIFF or ESRI ASCII .asc): files, folders, globs (`dtm/*.asc`) or
    /// `@list.txt`.
    #[arg(long, num_args = 1.., required = true)]
    pub dtm: Vec<String>,
    /// Station table URI (SIAM form or generic CSV).
    #[arg(long)]
    pub stations: String,
    #[arg(long, value_enum, default_value_t = StationFormat::Auto)]
    pub station_format: StationFormat,
    /// Day (YYYY-MM-DD).
    #[arg(long)]
    pub date: NaiveDate,
    /// Land plots (GeoJSON or .shp) with `uso_sigpac`.
    #[arg(long)]
    pub plots: Option<String>,
    /// Kc overrides CSV (`uso_sigpac,kc`).
    #[arg(long)]
    pub kc: Option<String>,
    /// Output directory URI.
    #[arg(short, long)]
    pub out: String,
    /// k: windows per side of a tile.
    #[arg(long, default_value_t = 3)]
    pub windows: u32,
    /// Area of influence (m).
    #[arg(long, default_value_t = 16_000.0)]
    pub influence_m: f64,
    /// IDW power.
    #[arg(long, default_value_t = 1.0)]
    pub idw_power: f64,
    /// Horizon shading with this many azimuths (0 = off).
    #[arg(long, default_value_t = 0)]
    pub horizon_dirs: u32,
    /// Horizon search distance (m).
    #[arg(long, default_value_t = 2000.0)]
    pub horizon_max_dist_m: f64,
    /// EPSG assumed when a DTM has no CRS.
    #[arg(long, default_value_t = 25830)]
    pub dtm_epsg: u32,
    /// Write the interpolated inputs too.
    #[arg(long)]
    pub write_inputs: bool,
    /// Skip the PNG map.
    #[arg(long)]
    pub no_png: bool,
}

impl RunArgs {
    /// The task parameters for one DTM.
    pub fn params(&self, dtm: &str) -> Params {
        Params {
            dtm: dtm.to_string(),
            dtm_epsg: self.dtm_epsg,
            stations: self.stations.clone(),
            station_format: self.station_format,
            date: self.date,
            plots: self.plots.clone(),
            kc: self.kc.clone(),
            out: self.out.clone(),
            plots_owned_elsewhere: Vec::new(),
            write_inputs: self.write_inputs,
            png: !self.no_png,
            options: Options {
                windows: self.windows,
                influence_m: self.influence_m,
                idw_power: self.idw_power,
                horizon_dirs: self.horizon_dirs,
                horizon_max_dist_m: self.horizon_max_dist_m,
                ..Options::default()
            },
        }
    }
}

impl cloud::StageCli for Cli {
    type Stage = WaterStage;

    fn run(self, ctx: &Ctx) -> Result<(), TaskError> {
        match self.command {
            Command::Et0 { input, output } => {
                let r = crate::table::run(&ctx.store, &input, &output)?;
                eprintln!(
                    "water et0: {} rows, {} with ET0, {} left empty -> {output}",
                    r.rows,
                    r.computed,
                    r.warnings.len()
                );
                for w in &r.warnings {
                    eprintln!("  warning: {input}: line {}: {}", w.line, w.message);
                }
                Ok(())
            }
            Command::Run(args) => {
                let dtms = cloud::Expansion::new(&[".tif", ".tiff", ".asc"])
                    .excluding(&args.out)
                    .expand(&ctx.store, &args.dtm)?;
                for dtm in &dtms.uris() {
                    let params = args.params(dtm);
                    params.validate()?;
                    let o = run_tile(&params, ctx)?;
                    println!(
                        "{}",
                        serde_json::to_string(&o)
                            .map_err(|e| TaskError::internal(e.to_string()))?
                    );
                }
                Ok(())
            }
        }
    }
}
