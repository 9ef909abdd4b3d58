//! The command line of the `terrain` binary (feature `cli`).

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::*;
use crate::derivatives::GradientAlg;
use crate::models::DemMethod;
use crate::noise::OutlierMethod;

/// `terrain`: terrain models from LiDAR (SMRF ground, DEM, DSM, CHM, FCC, slope, aspect).
#[derive(Debug, Parser)]
#[command(name = "terrain", version, about)]
pub struct TerrainCli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Terrain models of a LAS/LAZ partition, cropped to its core (non-withheld points).
    Models(ModelsArgs),
    /// Classifies ground with SMRF and writes the point cloud back: last and only returns
    /// outside the ignored classes become 2 (ground) or 1 (other), points flagged by --elm or
    /// --outlier become 7, and every other point keeps its class.
    Ground(GroundArgs),
    /// Slope of a DEM, identical to `gdaldem slope -alg Horn -compute_edges`.
    Slope(SlopeArgs),
    /// Aspect of a DEM, identical to `gdaldem aspect -alg Horn -compute_edges`.
    Aspect(AspectArgs),
    /// Slope and aspect of a DEM in one pass over it (each as `slope` and `aspect` give it).
    SlopeAspect(SlopeAspectArgs),
    /// Mosaics rasters on one pixel lattice: `terrain mosaic TILE... -o OUT.tif`.
    Mosaic(MosaicArgs),
}

/// SMRF options.
#[derive(Debug, Clone, Args)]
pub struct SmrfArgs {
    /// Start from PDAL's defaults (slope 0.15, window 18, threshold 0.5, scalar 1.25)
    /// instead of CloudButton's (0.2, 16, 0.45, 1.2).
    #[arg(long)]
    pub smrf_pdal_defaults: bool,
    /// Cell size of the minimum surface, m.
    #[arg(long)]
    pub smrf_cell: Option<f64>,
    /// Slope tolerance (rise/run).
    #[arg(long)]
    pub smrf_slope: Option<f64>,
    /// Largest window radius, m.
    #[arg(long)]
    pub smrf_window: Option<f64>,
    /// Elevation threshold, m.
    #[arg(long)]
    pub smrf_threshold: Option<f64>,
    /// Elevation scalar.
    #[arg(long)]
    pub smrf_scalar: Option<f64>,
    /// Net-cut spacing, m (0 = off).
    #[arg(long)]
    pub smrf_cut: Option<f64>,
    /// Classes SMRF ignores (default 7 and 18: low and high noise).
    #[arg(long, value_delimiter = ',')]
    pub smrf_ignore: Option<Vec<u8>>,
    /// Use every return, not only last and only returns.
    #[arg(long)]
    pub smrf_all_returns: bool,
}

impl SmrfArgs {
    /// The SMRF parameters these options give.
    pub fn params(&self) -> Result<SmrfParams> {
        let mut p = if self.smrf_pdal_defaults {
            SmrfParams::pdal_defaults()
        } else {
            SmrfParams::default()
        };
        if let Some(v) = self.smrf_cell {
            p.cell = v;
        }
        if let Some(v) = self.smrf_slope {
            p.slope = v;
        }
        if let Some(v) = self.smrf_window {
            p.window = v;
        }
        if let Some(v) = self.smrf_threshold {
            p.threshold = v;
        }
        if let Some(v) = self.smrf_scalar {
            p.scalar = v;
        }
        if let Some(v) = self.smrf_cut {
            p.cut = v;
        }
        if let Some(v) = &self.smrf_ignore {
            p.ignore_classes = v.clone();
        }
        p.last_returns = !self.smrf_all_returns;
        p.validate()?;
        Ok(p)
    }
}

/// Noise filter options.
#[derive(Debug, Clone, Args)]
pub struct NoiseArgs {
    /// Run the extended-local-minimum filter (PDAL filters.elm).
    #[arg(long)]
    pub elm: bool,
    /// ELM cell size, m.
    #[arg(long, default_value_t = 10.0)]
    pub elm_cell: f64,
    /// ELM threshold, m.
    #[arg(long, default_value_t = 1.0)]
    pub elm_threshold: f64,
    /// Run the outlier filter before ground classification (PDAL filters.outlier; flagged
    /// points become class 7, which SMRF ignores).
    #[arg(long)]
    pub outlier: bool,
    /// Outlier method: statistical (PDAL's default) or radius (CloudButton's pipelines).
    #[arg(long, value_enum, default_value_t = OutlierMethodArg::Statistical)]
    pub outlier_method: OutlierMethodArg,
    /// Statistical: neighbours whose mean distance is taken (PDAL mean_k).
    #[arg(long, default_value_t = 8)]
    pub outlier_mean_k: usize,
    /// Statistical: standard deviations above the mean distance (PDAL multiplier).
    #[arg(long, default_value_t = 2.0)]
    pub outlier_multiplier: f64,
    /// Radius: search radius (3D), m.
    #[arg(long, default_value_t = 1.0)]
    pub outlier_radius: f64,
    /// Radius: fewer other points than this within the radius make a point noise (PDAL
    /// min_k).
    #[arg(long, default_value_t = 2)]
    pub outlier_min_neighbours: usize,
}

/// `--outlier-method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutlierMethodArg {
    Statistical,
    Radius,
}

impl NoiseArgs {
    fn elm(&self) -> Option<ElmParams> {
        self.elm.then_some(ElmParams {
            cell: self.elm_cell,
            threshold: self.elm_threshold,
        })
    }
    fn outlier(&self) -> Option<OutlierParams> {
        self.outlier.then_some(OutlierParams {
            method: match self.outlier_method {
                OutlierMethodArg::Statistical => OutlierMethod::Statistical,
                OutlierMethodArg::Radius => OutlierMethod::Radius,
            },
            mean_k: self.outlier_mean_k,
            multiplier: self.outlier_multiplier,
            radius: self.outlier_radius,
            min_neighbours: self.outlier_min_neighbours,
        })
    }
}

/// Raster writing options.
#[derive(Debug, Clone, Args)]
pub struct RasterArgs {
    /// Block compression.
    #[arg(long, value_enum, default_value_t = CompressArg::Deflate)]
    pub compress: CompressArg,
    /// Tile size in pixels.
    #[arg(long, default_value_t = 512)]
    pub blocksize: u32,
    /// Do not build overviews.
    #[arg(long)]
    pub no_overviews: bool,
    /// cog: tiled, compressed, with overviews; strips: plain uncompressed GeoTIFF strips
    /// (gdaldem's default output, to compare like for like).
    #[arg(long, value_enum, default_value_t = Layout::Cog)]
    pub layout: Layout,
}

/// Compression of written rasters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressArg {
    None,
    Deflate,
    Lzw,
    Zstd,
}

impl From<RasterArgs> for RasterOutput {
    fn from(a: RasterArgs) -> Self {
        RasterOutput {
            compression: match a.compress {
                CompressArg::None => Compression::None,
                CompressArg::Deflate => Compression::Deflate,
                CompressArg::Lzw => Compression::Lzw,
                CompressArg::Zstd => Compression::Zstd,
            },
            blocksize: a.blocksize,
            overviews: !a.no_overviews,
            layout: a.layout,
        }
    }
}

/// `-alg` of gdaldem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlgArg {
    Horn,
    #[value(name = "zevenbergen-thorne", alias = "ZevenbergenThorne")]
    ZevenbergenThorne,
}

impl From<AlgArg> for GradientAlg {
    fn from(a: AlgArg) -> Self {
        match a {
            AlgArg::Horn => GradientAlg::Horn,
            AlgArg::ZevenbergenThorne => GradientAlg::ZevenbergenThorne,
        }
    }
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Input LAS/LAZ (a partition; withheld points are its buffer).
    pub input: String,
    /// Output directory.
    pub outdir: String,
    /// Cell size, m.
    #[arg(long, default_value_t = 1.0)]
    pub resolution: f64,
    /// Products to write.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "dem,dsm,chm,fcc,slope,aspect"
    )]
    pub products: Vec<String>,
    /// Ground from SMRF, or the file's class 2 points.
    #[arg(long, value_enum, default_value_t = GroundArg::Smrf)]
    pub ground: GroundArg,
    #[command(flatten)]
    pub smrf: SmrfArgs,
    #[command(flatten)]
    pub noise: NoiseArgs,
    /// DEM interpolation.
    #[arg(long, value_enum, default_value_t = DemArg::Idw)]
    pub dem_method: DemArg,
    /// IDW power.
    #[arg(long, default_value_t = 1.0)]
    pub idw_power: f64,
    /// IDW radius, m (default resolution·√2).
    #[arg(long)]
    pub idw_radius: Option<f64>,
    /// PDAL window_size fill of empty DEM cells (0 = off).
    #[arg(long, default_value_t = 0)]
    pub idw_window_size: usize,
    /// Longest TIN edge, m (default: no limit).
    #[arg(long)]
    pub tin_max_edge: Option<f64>,
    /// Slope in percent.
    #[arg(long)]
    pub percent: bool,
    /// Slope scale (horizontal units per vertical unit).
    #[arg(long)]
    pub scale: Option<f64>,
    /// Aspect 0 for flat cells instead of nodata.
    #[arg(long)]
    pub zero_for_flat: bool,
    /// Height above the ground from which a first return counts as canopy in the FCC, m.
    #[arg(long, default_value_t = crate::models::DEFAULT_FCC_HEIGHT)]
    pub fcc_height: f64,
    /// Leave isolated returns (PDAL statistical outliers: birds, air points) out of the
    /// DSM, CHM and FCC without reclassifying them (--outlier also reclassifies them as 7,
    /// which keeps them out of the ground too).
    #[arg(long)]
    pub surface_outliers: bool,
    /// Slope/aspect algorithm.
    #[arg(long, value_enum, default_value_t = AlgArg::Horn)]
    pub alg: AlgArg,
    /// EPSG code of the coordinates when the file has no CRS.
    #[arg(long)]
    pub epsg: Option<u32>,
    /// Base name of the outputs (default: the input file name).
    #[arg(long)]
    pub name: Option<String>,
    /// Also write the classified point cloud (LAS/LAZ).
    #[arg(long)]
    pub ground_output: Option<String>,
    #[command(flatten)]
    pub raster: RasterArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroundArg {
    Smrf,
    Existing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemArg {
    Idw,
    Tin,
}

impl ModelsArgs {
    /// The task parameters these arguments give.
    pub fn params(&self) -> Result<ModelsParams> {
        let products = self
            .products
            .iter()
            .map(|s| Product::parse(s))
            .collect::<Result<Vec<_>>>()?;
        let options = ModelOptions {
            resolution: self.resolution,
            products,
            ground: match self.ground {
                GroundArg::Smrf => GroundSource::Smrf,
                GroundArg::Existing => GroundSource::Existing,
            },
            smrf: self.smrf.params()?,
            elm: self.noise.elm(),
            outlier: self.noise.outlier(),
            dem_method: match self.dem_method {
                DemArg::Idw => DemMethod::Idw,
                DemArg::Tin => DemMethod::Tin,
            },
            idw: crate::gridding::IdwParams {
                power: self.idw_power,
                radius: self.idw_radius,
                window_size: self.idw_window_size,
            },
            tin_max_edge: self.tin_max_edge,
            surface_outliers: self.surface_outliers.then(OutlierParams::default),
            fcc_height: self.fcc_height,
            slope: SlopeOptions {
                alg: self.alg.into(),
                percent: self.percent,
                scale: self.scale.unwrap_or(1.0),
                compute_edges: true,
            },
            aspect: AspectOptions {
                alg: self.alg.into(),
                zero_for_flat: self.zero_for_flat,
                trigonometric: false,
                compute_edges: true,
            },
            core: None,
        };
        options.validate()?;
        Ok(ModelsParams {
            input: self.input.clone(),
            output: self.outdir.clone(),
            name: self.name.clone(),
            epsg: self.epsg,
            options,
            ground_output: self.ground_output.clone(),
            raster: self.raster.clone().into(),
        })
    }
}

#[derive(Debug, Args)]
pub struct GroundArgs {
    /// Input LAS/LAZ.
    pub input: String,
    /// Output LAS/LAZ (LAZ when it ends in .laz).
    pub output: String,
    #[command(flatten)]
    pub smrf: SmrfArgs,
    #[command(flatten)]
    pub noise: NoiseArgs,
    /// Only set ground points to class 2 (and noise to 7); keep every other class.
    #[arg(long)]
    pub preserve_classes: bool,
}

#[derive(Debug, Args)]
pub struct SlopeArgs {
    /// Input DEM (GeoTIFF/COG or ESRI ASCII grid).
    pub dem: String,
    /// Output GeoTIFF.
    pub output: String,
    /// Percent instead of degrees (gdaldem -p).
    #[arg(long)]
    pub percent: bool,
    /// Horizontal units per vertical unit (gdaldem -s); required for geographic CRSs.
    #[arg(long)]
    pub scale: Option<f64>,
    #[arg(long, value_enum, default_value_t = AlgArg::Horn)]
    pub alg: AlgArg,
    /// Leave the edge pixels nodata (gdaldem without -compute_edges).
    #[arg(long)]
    pub no_edges: bool,
    #[command(flatten)]
    pub raster: RasterArgs,
}

#[derive(Debug, Args)]
pub struct AspectArgs {
    /// Input DEM.
    pub dem: String,
    /// Output GeoTIFF.
    pub output: String,
    /// 0 for flat pixels, and no nodata value (gdaldem -zero_for_flat).
    #[arg(long)]
    pub zero_for_flat: bool,
    /// Degrees counter-clockwise from east (gdaldem -trigonometric).
    #[arg(long)]
    pub trigonometric: bool,
    #[arg(long, value_enum, default_value_t = AlgArg::Horn)]
    pub alg: AlgArg,
    /// Leave the edge pixels nodata (gdaldem without -compute_edges).
    #[arg(long)]
    pub no_edges: bool,
    #[command(flatten)]
    pub raster: RasterArgs,
}

#[derive(Debug, Args)]
pub struct SlopeAspectArgs {
    /// Input DEM.
    pub dem: String,
    /// Output slope GeoTIFF.
    #[arg(long)]
    pub slope: String,
    /// Output aspect GeoTIFF.
    #[arg(long)]
    pub aspect: String,
    /// Slope in percent instead of degrees (gdaldem -p).
    #[arg(long)]
    pub percent: bool,
    /// Horizontal units per vertical unit (gdaldem -s); required for geographic CRSs.
    #[arg(long)]
    pub scale: Option<f64>,
    #[arg(long, value_enum, default_value_t = AlgArg::Horn)]
    pub alg: AlgArg,
    /// Aspect 0 for flat pixels, and no nodata value (gdaldem -zero_for_flat).
    #[arg(long)]
    pub zero_for_flat: bool,
    /// Aspect in degrees counter-clockwise from east (gdaldem -trigonometric).
    #[arg(long)]
    pub trigonometric: bool,
    /// Leave the edge pixels nodata (gdaldem without -compute_edges).
    #[arg(long)]
    pub no_edges: bool,
    #[command(flatten)]
    pub raster: RasterArgs,
}

#[derive(Debug, Args)]
pub struct MosaicArgs {
    /// Input rasters (on one pixel lattice): files, folders (their .tif files), globs
    /// (`dem/*.tif`) or `@list.txt`.
    #[arg(required = true, num_args = 1..)]
    pub tiles: Vec<String>,
    /// Output COG, or VRT with `--format vrt` (never one of the inputs).
    #[arg(long, short = 'o', required = true)]
    pub output: String,
    /// cog: a float32 COG written by bands of rows; vrt: a GDAL VRT over the inputs.
    #[arg(long, value_enum, default_value_t = MosaicFormat::Cog)]
    pub format: MosaicFormat,
    /// Add the inputs up where they overlap (nodata where any of them has none), e.g. a
    /// season's total from daily rasters, instead of taking the first.
    #[arg(long)]
    pub sum: bool,
    #[command(flatten)]
    pub raster: RasterArgs,
}

impl cloud::StageCli for TerrainCli {
    type Stage = TerrainStage;

    fn run(self, ctx: &Ctx) -> std::result::Result<(), TaskError> {
        let params = match self.command {
            Command::Models(a) => TerrainParams::Models(a.params()?),
            Command::Ground(a) => TerrainParams::Ground(GroundParams {
                input: a.input,
                output: a.output,
                smrf: a.smrf.params()?,
                elm: a.noise.elm(),
                outlier: a.noise.outlier(),
                preserve_classes: a.preserve_classes,
            }),
            Command::Slope(a) => TerrainParams::Slope(SlopeParams {
                input: a.dem,
                output: a.output,
                options: SlopeOptions {
                    alg: a.alg.into(),
                    percent: a.percent,
                    scale: a.scale.unwrap_or(1.0),
                    compute_edges: !a.no_edges,
                },
                scale_given: a.scale.is_some(),
                raster: a.raster.into(),
            }),
            Command::Aspect(a) => TerrainParams::Aspect(AspectParams {
                input: a.dem,
                output: a.output,
                options: AspectOptions {
                    alg: a.alg.into(),
                    zero_for_flat: a.zero_for_flat,
                    trigonometric: a.trigonometric,
                    compute_edges: !a.no_edges,
                },
                raster: a.raster.into(),
            }),
            Command::SlopeAspect(a) => TerrainParams::SlopeAspect(SlopeAspectParams {
                input: a.dem,
                slope_output: a.slope,
                aspect_output: a.aspect,
                slope: SlopeOptions {
                    alg: a.alg.into(),
                    percent: a.percent,
                    scale: a.scale.unwrap_or(1.0),
                    compute_edges: !a.no_edges,
                },
                aspect: AspectOptions {
                    alg: a.alg.into(),
                    zero_for_flat: a.zero_for_flat,
                    trigonometric: a.trigonometric,
                    compute_edges: !a.no_edges,
                },
                scale_given: a.scale.is_some(),
                raster: a.raster.into(),
            }),
            Command::Mosaic(a) => TerrainParams::Mosaic(MosaicParams {
                inputs: cloud::Expansion::new(&[".tif", ".tiff"])
                    .expand(&ctx.store, &a.tiles)?
                    .uris(),
                output: a.output,
                format: a.format,
                raster: a.raster.into(),
                combine: if a.sum {
                    cog::Combine::Sum
                } else {
                    cog::Combine::First
                },
            }),
        };
        params.validate()?;
        match TerrainStage::run(&params, ctx)? {
            TerrainOutput::Raster { output } => eprintln!("wrote {output}"),
            TerrainOutput::Rasters { outputs } => eprintln!("wrote {}", outputs.join(", ")),
            TerrainOutput::Models(m) => print_json(&m),
            TerrainOutput::Ground(g) => print_json(&g),
        }
        Ok(())
    }
}

fn print_json<T: Serialize>(v: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|e| e.to_string())
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cli_parses() {
        let cli = TerrainCli::try_parse_from([
            "terrain",
            "models",
            "in.laz",
            "out",
            "--resolution",
            "2",
            "--products",
            "dem,slope",
            "--smrf-window",
            "18",
            "--elm",
        ])
        .unwrap();
        let Command::Models(a) = cli.command else {
            panic!()
        };
        let p = a.params().unwrap();
        assert_eq!(p.options.resolution, 2.0);
        assert_eq!(p.options.products, vec![Product::Dem, Product::Slope]);
        assert_eq!(p.options.smrf.window, 18.0);
        assert!(p.options.elm.is_some() && p.options.outlier.is_none());
        let cli =
            TerrainCli::try_parse_from(["terrain", "models", "in.laz", "out", "--resolution", "0"])
                .unwrap();
        let Command::Models(a) = cli.command else {
            panic!()
        };
        assert!(a.params().is_err());
        assert!(TerrainCli::try_parse_from(["terrain", "mosaic", "only.tif"]).is_err());
        // The output is a required -o, never the last positional (which once overwrote c.tif).
        assert!(
            TerrainCli::try_parse_from(["terrain", "mosaic", "a.tif", "b.tif", "c.tif"]).is_err()
        );
        let cli =
            TerrainCli::try_parse_from(["terrain", "mosaic", "a.tif", "b.tif", "-o", "m.tif"])
                .unwrap();
        let Command::Mosaic(m) = cli.command else {
            panic!()
        };
        assert_eq!(m.tiles, ["a.tif", "b.tif"]);
        assert_eq!(m.output, "m.tif");
    }
}
