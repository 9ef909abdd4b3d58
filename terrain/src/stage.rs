//! The `terrain` stage: tasks (one per partition for `models`), their parameters and
//! outputs, and the command line.
//!
//! A task's params are one of `{"models": {...}}`, `{"ground": {...}}`,
//! `{"slope": {...}}`, `{"aspect": {...}}`, `{"mosaic": {...}}`. Outputs are float32 COGs
//! (nodata −9999) named `<output>/<name>_<product>.tif`.

use std::collections::BTreeMap;

use cloud::{Ctx, Stage, TaskError, uri};
use cog::{CogWriteOptions, Compression, Raster};
use serde::{Deserialize, Serialize};

use crate::derivatives::{AspectOptions, SlopeOptions, aspect, check_units, slope};
use crate::error::{Result, TerrainError};
use crate::grid::Grid;
use crate::las_io::{read_las, write_reclassified};
use crate::models::{GroundSource, ModelOptions, ModelStats, classify, compute_models};
use crate::noise::{ElmParams, OutlierParams};
use crate::products::Product;
use crate::smrf::SmrfParams;

#[cfg(feature = "cli")]
pub mod cli;

/// How rasters are laid out in their files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Cloud-Optimized GeoTIFF: tiles, compression, overviews.
    #[default]
    Cog,
    /// Plain GeoTIFF strips, uncompressed, no overviews: what `gdaldem` writes by default.
    Strips,
}

/// How rasters are written (defaults: DEFLATE, 512 tiles, overviews — a COG).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RasterOutput {
    pub compression: Compression,
    pub blocksize: u32,
    pub overviews: bool,
    pub layout: Layout,
}

impl Default for RasterOutput {
    fn default() -> Self {
        RasterOutput {
            compression: Compression::Deflate,
            blocksize: 512,
            overviews: true,
            layout: Layout::Cog,
        }
    }
}

impl RasterOutput {
    /// Checks the block size (a multiple of 16 in 16..=4096), so a bad one is refused when
    /// the run is planned, not when its last step writes.
    pub fn validate(&self) -> std::result::Result<(), TaskError> {
        if self.blocksize < 16 || !self.blocksize.is_multiple_of(16) || self.blocksize > 4096 {
            return Err(TaskError::invalid_task(format!(
                "blocksize must be a multiple of 16 between 16 and 4096, not {}",
                self.blocksize
            )));
        }
        Ok(())
    }

    fn options(&self) -> CogWriteOptions {
        CogWriteOptions {
            compression: self.compression,
            blocksize: self.blocksize,
            overviews: self.overviews,
            ..Default::default()
        }
    }

    /// A writer by rows of a float32 raster of `info`'s grid and CRS at `uri`, in this
    /// layout.
    pub fn row_writer(
        &self,
        store: &cloud::Store,
        uri: &str,
        info: &cog::CogInfo,
        nodata: Option<f32>,
    ) -> Result<cog::RowWriter<f32>> {
        let size = (info.width, info.height);
        let geokeys = cog::geo::GeoKeys::from_crs(&info.crs, false);
        let nodata = nodata.map(f64::from);
        Ok(match self.layout {
            Layout::Cog => cog::RowWriter::Cog(cog::CogRowWriter::new(
                uri,
                size,
                &info.geotransform,
                &geokeys,
                nodata,
                &self.options(),
            )?),
            Layout::Strips => cog::RowWriter::Strips(cog::StripRowWriter::new(
                store,
                uri,
                size,
                &info.geotransform,
                &geokeys,
                nodata,
            )?),
        })
    }
}

/// Parameters of a `models` task: the terrain models of one partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsParams {
    /// LAS/LAZ partition (withheld points are its buffer).
    pub input: String,
    /// Output directory (URI).
    pub output: String,
    /// Base name of the outputs (default: the input's file name without extension).
    #[serde(default)]
    pub name: Option<String>,
    /// EPSG code of the coordinates, when the file does not record its CRS.
    #[serde(default)]
    pub epsg: Option<u32>,
    #[serde(default)]
    pub options: ModelOptions,
    /// Also write the classified point cloud here (LAS, or LAZ for a `.laz` name).
    #[serde(default)]
    pub ground_output: Option<String>,
    #[serde(default)]
    pub raster: RasterOutput,
}

/// What a `models` task wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelsOutput {
    /// Product name → raster URI.
    pub products: BTreeMap<String, String>,
    #[serde(default)]
    pub ground_output: Option<String>,
    /// The output grid (core bounds snapped to the resolution).
    pub grid: Grid,
    pub stats: ModelStats,
}

/// Parameters of a `ground` task: classify a point cloud and write it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroundParams {
    pub input: String,
    /// Output LAS/LAZ (compressed when it ends in `.laz`).
    pub output: String,
    #[serde(default)]
    pub smrf: SmrfParams,
    #[serde(default)]
    pub elm: Option<ElmParams>,
    #[serde(default)]
    pub outlier: Option<OutlierParams>,
    /// Only set ground points to 2 (and noise to 7); leave every other class as it was.
    #[serde(default)]
    pub preserve_classes: bool,
}

/// What a `ground` task wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundOutput {
    pub output: String,
    pub stats: ModelStats,
}

/// Parameters of a `slope` task (gdaldem slope).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlopeParams {
    pub input: String,
    pub output: String,
    #[serde(default)]
    pub options: SlopeOptions,
    /// True when `options.scale` was chosen for the data (required for geographic CRSs).
    #[serde(default)]
    pub scale_given: bool,
    #[serde(default)]
    pub raster: RasterOutput,
}

/// Parameters of an `aspect` task (gdaldem aspect).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AspectParams {
    pub input: String,
    pub output: String,
    #[serde(default)]
    pub options: AspectOptions,
    #[serde(default)]
    pub raster: RasterOutput,
}

/// Parameters of a `slope-aspect` task: both products of one DEM in one pass over it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlopeAspectParams {
    pub input: String,
    pub slope_output: String,
    pub aspect_output: String,
    #[serde(default)]
    pub slope: SlopeOptions,
    #[serde(default)]
    pub aspect: AspectOptions,
    /// True when `slope.scale` was chosen for the data (required for geographic CRSs).
    #[serde(default)]
    pub scale_given: bool,
    #[serde(default)]
    pub raster: RasterOutput,
}

/// What a `mosaic` task writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum MosaicFormat {
    /// A float32 COG, written by bands of rows (memory independent of its height).
    #[default]
    Cog,
    /// A GDAL VRT over the inputs, copying nothing (the inputs must stay where they are).
    Vrt,
}

impl MosaicFormat {
    /// The file extension of this format, with its dot.
    pub fn extension(self) -> &'static str {
        match self {
            MosaicFormat::Cog => ".tif",
            MosaicFormat::Vrt => ".vrt",
        }
    }
}

/// Parameters of a `mosaic` task: inputs on one pixel lattice (see [`cog::mosaic`]); where
/// they overlap, the first with a value wins, or with `combine: sum` they add up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MosaicParams {
    pub inputs: Vec<String>,
    pub output: String,
    #[serde(default)]
    pub format: MosaicFormat,
    #[serde(default)]
    pub raster: RasterOutput,
    /// How overlapping inputs combine (left out when `first`: the fingerprints of tasks
    /// written before the field existed stay the same).
    #[serde(default, skip_serializing_if = "is_first")]
    pub combine: cog::Combine,
}

fn is_first(c: &cog::Combine) -> bool {
    *c == cog::Combine::First
}

/// One `terrain` task.
// One value per task, parsed once: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TerrainParams {
    Models(ModelsParams),
    Ground(GroundParams),
    Slope(SlopeParams),
    Aspect(AspectParams),
    SlopeAspect(SlopeAspectParams),
    Mosaic(MosaicParams),
}

/// What a `terrain` task produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TerrainOutput {
    Models(ModelsOutput),
    Ground(GroundOutput),
    /// The raster written (slope, aspect, mosaic).
    Raster {
        output: String,
    },
    /// The rasters written (slope-aspect).
    Rasters {
        outputs: Vec<String>,
    },
}

/// The base name of a point cloud URI: its file name without `.las`/`.laz`/`.copc.laz`.
pub fn stem(input: &str) -> String {
    let name = uri::file_name(input);
    let lower = name.to_ascii_lowercase();
    for ext in [".copc.laz", ".laz", ".las"] {
        if lower.ends_with(ext) {
            return name[..name.len() - ext.len()].to_string();
        }
    }
    name.to_string()
}

/// The URI of `product` for a models task.
pub fn product_uri(output: &str, name: &str, product: Product) -> String {
    uri::join(output, &format!("{name}_{}.tif", product.name()))
}

fn is_laz(path: &str) -> bool {
    path.to_ascii_lowercase().ends_with(".laz")
}

fn write_raster(ctx: &Ctx, uri: &str, r: &Raster<f32>, out: &RasterOutput) -> Result<()> {
    match out.layout {
        Layout::Cog => cog::write_cog(&ctx.store, uri, r, &out.options())?,
        Layout::Strips => {
            let mut w = cog::StripRowWriter::<f32>::new(
                &ctx.store,
                uri,
                (r.width() as u64, r.height() as u64),
                &r.transform,
                &cog::geo::GeoKeys::from_crs(&r.crs, false),
                r.nodata.map(f64::from),
            )?;
            w.push_rows(r.data.view())?;
            w.finish()?;
        }
    }
    Ok(())
}

/// Runs a `models` task.
pub fn run_models(p: &ModelsParams, ctx: &Ctx) -> Result<ModelsOutput> {
    p.options.validate()?;
    let progress = ctx.progress("terrain models", 10);
    let mut file = read_las(&ctx.store, &p.input, p.ground_output.is_some())?;
    progress.inc(1);
    let crs = file
        .crs
        .or_assumed(p.epsg)
        .map_err(|m| TerrainError::input(&p.input, m))?;
    let name = p.name.clone().unwrap_or_else(|| stem(&p.input));
    let cloud = std::mem::take(&mut file.cloud);
    let mut models = compute_models(cloud, &crs, &p.options, &p.input, &mut |step| {
        tracing::info!(input = %p.input, step, "terrain");
        progress.inc(1);
    })?;
    if crs.is_unknown() {
        models.stats.warnings.push(format!(
            "{}: the point cloud records no CRS, so its rasters carry none; give the EPSG \
             code of its coordinates (--epsg)",
            p.input
        ));
    }
    for w in &models.stats.warnings {
        tracing::warn!(input = %p.input, "{w}");
    }
    let mut products = BTreeMap::new();
    for (product, raster) in &models.rasters {
        let u = product_uri(&p.output, &name, *product);
        write_raster(ctx, &u, raster, &p.raster)?;
        products.insert(product.name().to_string(), u);
    }
    let ground_output = match &p.ground_output {
        Some(out) => {
            let bytes = write_reclassified(&file, &models.classes, is_laz(out))?;
            ctx.store.put(out, bytes.into())?;
            Some(out.clone())
        }
        None => None,
    };
    progress.finish();
    Ok(ModelsOutput {
        products,
        ground_output,
        grid: models.grid,
        stats: models.stats,
    })
}

/// Runs a `ground` task.
pub fn run_ground(p: &GroundParams, ctx: &Ctx) -> Result<GroundOutput> {
    let opts = ModelOptions {
        ground: GroundSource::Smrf,
        smrf: p.smrf.clone(),
        elm: p.elm,
        outlier: p.outlier,
        ..Default::default()
    };
    opts.smrf.validate()?;
    let file = read_las(&ctx.store, &p.input, true)?;
    if file.cloud.is_empty() {
        return Err(TerrainError::input(&p.input, "the file holds no points"));
    }
    let mut stats = ModelStats {
        points: file.cloud.len() as u64,
        ..Default::default()
    };
    stats.buffer_points = (0..file.cloud.len())
        .filter(|&i| file.cloud.is_withheld(i))
        .count() as u64;
    stats.core_points = stats.points - stats.buffer_points;
    let (_, classes) = classify(&file.cloud, &opts, p.preserve_classes, &mut stats)?;
    let bytes = write_reclassified(&file, &classes, is_laz(&p.output))?;
    ctx.store.put(&p.output, bytes.into())?;
    Ok(GroundOutput {
        output: p.output.clone(),
        stats,
    })
}

/// Runs a `slope` task.
pub fn run_slope(p: &SlopeParams, ctx: &Ctx) -> Result<String> {
    let reader = cog::CogReader::open(&ctx.store, &p.input)?;
    check_units(
        &reader.info().crs,
        p.scale_given.then_some(p.options.scale),
        &p.input,
    )?;
    let writer = p.raster.row_writer(
        &ctx.store,
        &p.output,
        reader.info(),
        Some(crate::derivatives::DERIVATIVE_NODATA),
    )?;
    crate::bands::derive_by_bands(&ctx.store, &reader, writer, |band| slope(band, &p.options))?;
    Ok(p.output.clone())
}

/// Runs an `aspect` task.
pub fn run_aspect(p: &AspectParams, ctx: &Ctx) -> Result<String> {
    let reader = cog::CogReader::open(&ctx.store, &p.input)?;
    let writer = p.raster.row_writer(
        &ctx.store,
        &p.output,
        reader.info(),
        (!p.options.zero_for_flat).then_some(crate::derivatives::DERIVATIVE_NODATA),
    )?;
    crate::bands::derive_by_bands(&ctx.store, &reader, writer, |band| aspect(band, &p.options))?;
    Ok(p.output.clone())
}

/// Runs a `slope-aspect` task: one read of the DEM, by bands of rows, for both products.
pub fn run_slope_aspect(p: &SlopeAspectParams, ctx: &Ctx) -> Result<Vec<String>> {
    use crate::derivatives::DERIVATIVE_NODATA;
    let reader = cog::CogReader::open(&ctx.store, &p.input)?;
    let info = reader.info();
    check_units(&info.crs, p.scale_given.then_some(p.slope.scale), &p.input)?;
    let writer =
        |uri: &str, nodata: Option<f32>| p.raster.row_writer(&ctx.store, uri, info, nodata);
    let mut ws = writer(&p.slope_output, Some(DERIVATIVE_NODATA))?;
    let mut wa = writer(
        &p.aspect_output,
        (!p.aspect.zero_for_flat).then_some(DERIVATIVE_NODATA),
    )?;
    crate::bands::for_each_band(&reader, |band, first, rows| {
        let (s, a) = rayon::join(|| slope(band, &p.slope), || aspect(band, &p.aspect));
        ws.push_rows(s?.data.slice(ndarray::s![first..first + rows, ..]))?;
        wa.push_rows(a?.data.slice(ndarray::s![first..first + rows, ..]))?;
        Ok(())
    })?;
    ws.finish(&ctx.store)?;
    wa.finish(&ctx.store)?;
    Ok(vec![p.slope_output.clone(), p.aspect_output.clone()])
}

/// Runs a `mosaic` task: a COG written by bands of rows, or a VRT over the inputs.
pub fn run_mosaic(p: &MosaicParams, ctx: &Ctx) -> Result<String> {
    let mut m = cog::Mosaic::plan(&ctx.store, &p.inputs)?;
    m.combine = p.combine;
    match p.format {
        MosaicFormat::Cog => {
            let progress = ctx.progress("mosaic rows", m.height);
            m.write_cog(
                &ctx.store,
                &p.output,
                crate::NODATA,
                &p.raster.options(),
                |n| progress.inc(n),
            )?;
            progress.finish();
        }
        MosaicFormat::Vrt => m.write_vrt(&ctx.store, &p.output, crate::NODATA)?,
    }
    Ok(p.output.clone())
}

/// The terrain stage (binary `terrain`).
pub struct TerrainStage;

impl TerrainParams {
    /// Checks the parameters and locations without reading anything (see
    /// [`cloud::Stage::validate`]).
    pub fn validate(&self) -> std::result::Result<(), TaskError> {
        use cloud::validate;
        let param = |e: TerrainError| TaskError::invalid_task(e.to_string());
        match self {
            TerrainParams::Models(p) => {
                validate::uri("input", &p.input)?;
                validate::location("output", &p.output)?;
                p.options.validate().map_err(param)?;
                validate_options(&p.options)?;
                if let Some(e) = p.epsg {
                    validate::count("epsg", e, 1024..=999_999)?;
                }
                if let Some(g) = &p.ground_output {
                    validate::uri("ground_output", g)?;
                    validate::distinct_outputs(&[&p.input], &[g])?;
                }
                if let Some(n) = &p.name {
                    cloud::task::validate_task_id(n).map_err(|_| {
                        TaskError::invalid_task(format!(
                            "name {n:?}: use 1-128 letters, digits, '.', '_' or '-'"
                        ))
                    })?;
                }
                p.raster.validate()
            }
            TerrainParams::Ground(p) => {
                validate::uri("input", &p.input)?;
                validate::uri("output", &p.output)?;
                p.smrf.validate().map_err(param)?;
                validate_noise(p.elm.as_ref(), p.outlier.as_ref())?;
                validate::distinct_outputs(&[&p.input], &[&p.output])
            }
            TerrainParams::Slope(p) => {
                validate::uri("input", &p.input)?;
                validate::uri("output", &p.output)?;
                validate::number("scale", p.options.scale, 1e-9..=1e12)?;
                validate::distinct_outputs(&[&p.input], &[&p.output])?;
                p.raster.validate()
            }
            TerrainParams::Aspect(p) => {
                validate::uri("input", &p.input)?;
                validate::uri("output", &p.output)?;
                validate::distinct_outputs(&[&p.input], &[&p.output])?;
                p.raster.validate()
            }
            TerrainParams::SlopeAspect(p) => {
                validate::uri("input", &p.input)?;
                validate::uri("slope_output", &p.slope_output)?;
                validate::uri("aspect_output", &p.aspect_output)?;
                validate::number("scale", p.slope.scale, 1e-9..=1e12)?;
                if p.slope_output == p.aspect_output {
                    return Err(TaskError::invalid_task(format!(
                        "slope and aspect both go to {}",
                        p.slope_output
                    )));
                }
                validate::distinct_outputs(&[&p.input], &[&p.slope_output, &p.aspect_output])?;
                p.raster.validate()
            }
            TerrainParams::Mosaic(p) => {
                if p.inputs.is_empty() {
                    return Err(TaskError::invalid_task("mosaic: no input raster"));
                }
                validate::count(
                    "number of mosaic inputs",
                    p.inputs.len(),
                    1..=MAX_MOSAIC_INPUTS,
                )?;
                for i in &p.inputs {
                    validate::uri("input", i)?;
                }
                validate::uri("output", &p.output)?;
                if (p.format == MosaicFormat::Vrt)
                    != p.output.to_ascii_lowercase().ends_with(".vrt")
                {
                    return Err(TaskError::invalid_task(format!(
                        "output {}: a VRT mosaic is named .vrt, and only a VRT mosaic is",
                        p.output
                    )));
                }
                if p.raster.layout != Layout::Cog {
                    return Err(TaskError::invalid_task(
                        "a mosaic is written as a COG or a VRT (--format), not in strips",
                    ));
                }
                if p.combine != cog::Combine::First && p.format == MosaicFormat::Vrt {
                    return Err(TaskError::invalid_task(
                        "a VRT shows the first input where they overlap: --sum needs --format cog",
                    ));
                }
                let inputs: Vec<&str> = p.inputs.iter().map(String::as_str).collect();
                validate::distinct_outputs(&inputs, &[&p.output])?;
                p.raster.validate()
            }
        }
    }

    /// The objects the task reads.
    pub fn input_uris(&self) -> Vec<String> {
        match self {
            TerrainParams::Models(p) => vec![p.input.clone()],
            TerrainParams::Ground(p) => vec![p.input.clone()],
            TerrainParams::Slope(p) => vec![p.input.clone()],
            TerrainParams::Aspect(p) => vec![p.input.clone()],
            TerrainParams::SlopeAspect(p) => vec![p.input.clone()],
            TerrainParams::Mosaic(p) => p.inputs.clone(),
        }
    }
}

/// Most rasters one mosaic task takes.
pub const MAX_MOSAIC_INPUTS: usize = 100_000;

/// Bounds of the model options beyond [`ModelOptions::validate`]'s positivity checks.
fn validate_options(o: &ModelOptions) -> std::result::Result<(), TaskError> {
    use cloud::validate::{count, number, opt_number};
    number("resolution", o.resolution, 0.01..=1000.0)?;
    number("idw power", o.idw.power, 1e-3..=16.0)?;
    opt_number("idw radius", o.idw.radius, 1e-3..=10_000.0)?;
    count("idw window size", o.idw.window_size, 0..=64)?;
    opt_number("tin max edge", o.tin_max_edge, 1e-3..=100_000.0)?;
    number("slope scale", o.slope.scale, 1e-9..=1e12)?;
    number("fcc height", o.fcc_height, 0.0..=100.0)?;
    if let Some(so) = &o.surface_outliers {
        validate_outlier(so)?;
    }
    validate_smrf(&o.smrf)?;
    validate_noise(o.elm.as_ref(), o.outlier.as_ref())
}

fn validate_smrf(p: &SmrfParams) -> std::result::Result<(), TaskError> {
    use cloud::validate::number;
    p.validate()
        .map_err(|e| TaskError::invalid_task(e.to_string()))?;
    number("smrf cell", p.cell, 0.01..=100.0)?;
    number("smrf slope", p.slope, 0.0..=100.0)?;
    number("smrf window", p.window, 0.0..=1000.0)?;
    number("smrf threshold", p.threshold, 0.0..=1000.0)?;
    number("smrf scalar", p.scalar, 0.0..=1000.0)?;
    number("smrf cut", p.cut, 0.0..=1000.0)
}

fn validate_noise(
    elm: Option<&ElmParams>,
    outlier: Option<&OutlierParams>,
) -> std::result::Result<(), TaskError> {
    use cloud::validate::number;
    if let Some(e) = elm {
        number("elm cell", e.cell, 0.01..=1000.0)?;
        number("elm threshold", e.threshold, 0.0..=1000.0)?;
    }
    if let Some(o) = outlier {
        validate_outlier(o)?;
    }
    Ok(())
}

fn validate_outlier(o: &OutlierParams) -> std::result::Result<(), TaskError> {
    use cloud::validate::{count, number};
    number("outlier radius", o.radius, 1e-3..=1000.0)?;
    count("outlier min neighbours", o.min_neighbours, 1..=1000)?;
    count("outlier mean_k", o.mean_k, 1..=100)?;
    number("outlier multiplier", o.multiplier, 0.0..=100.0)
}

impl Stage for TerrainStage {
    const NAME: &'static str = "terrain";
    const VERSION: u32 = 1;
    type Params = TerrainParams;
    type Output = TerrainOutput;

    fn validate(params: &TerrainParams) -> std::result::Result<(), TaskError> {
        params.validate()
    }

    fn input_uris(params: &TerrainParams) -> Vec<String> {
        params.input_uris()
    }

    fn status_root(params: &TerrainParams) -> String {
        match params {
            TerrainParams::Models(p) => p.output.clone(),
            TerrainParams::Ground(p) => uri::parent(&p.output),
            TerrainParams::Slope(p) => uri::parent(&p.output),
            TerrainParams::Aspect(p) => uri::parent(&p.output),
            TerrainParams::SlopeAspect(p) => uri::parent(&p.slope_output),
            TerrainParams::Mosaic(p) => uri::parent(&p.output),
        }
    }

    fn run(params: &TerrainParams, ctx: &Ctx) -> std::result::Result<TerrainOutput, TaskError> {
        Ok(match params {
            TerrainParams::Models(p) => TerrainOutput::Models(run_models(p, ctx)?),
            TerrainParams::Ground(p) => TerrainOutput::Ground(run_ground(p, ctx)?),
            TerrainParams::Slope(p) => TerrainOutput::Raster {
                output: run_slope(p, ctx)?,
            },
            TerrainParams::Aspect(p) => TerrainOutput::Raster {
                output: run_aspect(p, ctx)?,
            },
            TerrainParams::SlopeAspect(p) => TerrainOutput::Rasters {
                outputs: run_slope_aspect(p, ctx)?,
            },
            TerrainParams::Mosaic(p) => TerrainOutput::Raster {
                output: run_mosaic(p, ctx)?,
            },
        })
    }

    fn warnings(output: &TerrainOutput) -> Vec<String> {
        match output {
            TerrainOutput::Models(m) => m.stats.warnings.clone(),
            TerrainOutput::Ground(g) => g.stats.warnings.clone(),
            TerrainOutput::Raster { .. } | TerrainOutput::Rasters { .. } => Vec::new(),
        }
    }

    fn output_uris(output: &TerrainOutput) -> Vec<String> {
        match output {
            TerrainOutput::Models(m) => m
                .products
                .values()
                .cloned()
                .chain(m.ground_output.clone())
                .collect(),
            TerrainOutput::Ground(g) => vec![g.output.clone()],
            TerrainOutput::Raster { output } => vec![output.clone()],
            TerrainOutput::Rasters { outputs } => outputs.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names() {
        assert_eq!(stem("s3://b/p/out_1_-9.laz"), "out_1_-9");
        assert_eq!(stem("/x/a.copc.laz"), "a");
        assert_eq!(stem("/x/a.LAS"), "a");
        assert_eq!(
            product_uri("s3://b/out", "t", Product::Dem),
            "s3://b/out/t_dem.tif"
        );
    }

    #[test]
    fn params_json_round_trip_and_unknown_fields() {
        let p = TerrainParams::Models(ModelsParams {
            input: "in.laz".into(),
            output: "out".into(),
            name: None,
            epsg: Some(25830),
            options: ModelOptions::default(),
            ground_output: None,
            raster: RasterOutput::default(),
        });
        let j = serde_json::to_value(&p).unwrap();
        let back: TerrainParams = serde_json::from_value(j).unwrap();
        assert_eq!(back, p);
        let minimal: TerrainParams =
            serde_json::from_str(r#"{"models": {"input": "a.laz", "output": "o"}}"#).unwrap();
        assert!(matches!(minimal, TerrainParams::Models(_)));
        let bad = serde_json::from_str::<TerrainParams>(
            r#"{"models": {"input": "a.laz", "output": "o", "resolutoin": 2}}"#,
        );
        assert!(bad.is_err());
        let bad = serde_json::from_str::<TerrainParams>(
            r#"{"models": {"input": "a.laz", "output": "o", "options": {"smrf": {"windw": 3}}}}"#,
        );
        assert!(bad.is_err());
    }
}
