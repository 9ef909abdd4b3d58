//! The `cog` stage: `translate` (any readable raster → COG) as a serverless task, and the
//! `cog` command line (`info`, `read`, `translate`).

use cloud::{Ctx, Stage, TaskError};
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::error::CogError;
use crate::geo::GeoKeys;
use crate::pixel::Pixel;
use crate::raster::Window;
use crate::reader::CogReader;
use crate::writer::{CogWriteOptions, write_cog_bands};

#[cfg(feature = "cli")]
pub mod cli;

/// Parameters of a `translate` task: one input raster to one COG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranslateParams {
    /// Input URI (GeoTIFF/COG or ESRI ASCII grid).
    pub input: String,
    /// Output COG URI (written atomically).
    pub output: String,
    /// Bands to copy (1-based); empty = all.
    #[serde(default)]
    pub bands: Vec<usize>,
    /// Source window in full-resolution pixels; `None` = the whole image.
    #[serde(default)]
    pub window: Option<Window>,
    /// Overview level of the input to read (0 = full resolution).
    #[serde(default)]
    pub overview: usize,
    /// COG options.
    #[serde(default)]
    pub options: CogWriteOptions,
}

/// What a `translate` task wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranslateOutput {
    pub output: String,
    pub width: u64,
    pub height: u64,
    pub bands: usize,
    /// Bytes of the written file.
    pub bytes: u64,
}

/// Copies `params.input` (bands, window, overview) into a COG at `params.output`, keeping
/// georeferencing (GeoKeys verbatim), nodata, scale/offset and dataset metadata.
pub fn translate(
    store: &cloud::Store,
    params: &TranslateParams,
) -> Result<TranslateOutput, CogError> {
    let reader = match CogReader::open(store, &params.input) {
        Ok(r) => r,
        #[cfg(feature = "gdal")]
        Err(CogError::Invalid { .. } | CogError::Unsupported { .. }) => {
            return translate_with_gdal(store, params);
        }
        Err(e) => return Err(e),
    };
    let info = reader.info().clone();
    let bands: Vec<usize> = if params.bands.is_empty() {
        (1..=info.bands).collect()
    } else {
        params.bands.clone()
    };
    let (lw, lh) = reader.level_size(params.overview)?;
    let window = params.window.unwrap_or(Window::new(0, 0, lw, lh));
    let mut options = params.options.clone();
    if options.scale_offset.is_none()
        && let Some(b) = info.band_info.get(bands[0] - 1)
        && (b.scale.is_some() || b.offset.is_some())
    {
        options.scale_offset = Some((b.scale.unwrap_or(1.0), b.offset.unwrap_or(0.0)));
    }
    if options.metadata.is_empty() {
        options.metadata = info.metadata.clone();
    }
    if options.photometric.is_none() && info.photometric == 2 && bands.len() >= 3 {
        options.photometric = Some(2);
    }
    let geokeys = if info.geokeys.keys.is_empty() {
        GeoKeys::from_crs(&info.crs, false)
    } else {
        info.geokeys.clone()
    };
    let transform = reader
        .level_transform(params.overview)?
        .window(window.col_off, window.row_off);
    #[allow(clippy::too_many_arguments)]
    fn go<T: Pixel>(
        store: &cloud::Store,
        reader: &CogReader,
        bands: &[usize],
        window: Window,
        overview: usize,
        out: &str,
        transform: &crate::GeoTransform,
        geokeys: &GeoKeys,
        nodata: Option<f64>,
        options: &CogWriteOptions,
    ) -> Result<(), CogError> {
        let rasters = reader.read_bands::<T>(bands, window, overview)?;
        let views: Vec<ArrayView2<'_, T>> = rasters.iter().map(|r| r.data.view()).collect();
        write_cog_bands(store, out, &views, transform, geokeys, nodata, options)
    }
    // GeoKeys that say PixelIsPoint were already shifted to area by the reader.
    let geokeys = strip_pixel_is_point(geokeys);
    crate::dispatch_sample_type!(info.dtype, T => go::<T>(
        store, &reader, &bands, window, params.overview, &params.output, &transform, &geokeys,
        info.nodata, &options,
    ))?;
    written(store, params, window, bands.len())
}

/// `translate` through GDAL (feature `gdal`) for inputs our reader does not handle.
#[cfg(feature = "gdal")]
fn translate_with_gdal(
    store: &cloud::Store,
    params: &TranslateParams,
) -> Result<TranslateOutput, CogError> {
    let g = crate::gdal_io::read_all(&params.input)?;
    let (h, w) = g.bands[0].dim();
    let bands: Vec<usize> = if params.bands.is_empty() {
        (1..=g.bands.len()).collect()
    } else {
        params.bands.clone()
    };
    let window = params
        .window
        .unwrap_or(Window::new(0, 0, w as u64, h as u64));
    if params.overview != 0 {
        return Err(CogError::request(
            &params.input,
            "overview reads need a GeoTIFF input",
        ));
    }
    if window.clip(w as u64, h as u64) != Some(window) {
        return Err(CogError::request(
            &params.input,
            "window not inside the image",
        ));
    }
    let geokeys = GeoKeys::from_crs(&g.crs, false);
    let transform = g.transform.window(window.col_off, window.row_off);
    #[allow(clippy::too_many_arguments)]
    fn go<T: Pixel>(
        store: &cloud::Store,
        g: &crate::gdal_io::GdalRaster,
        bands: &[usize],
        window: Window,
        out: &str,
        input: &str,
        transform: &crate::GeoTransform,
        geokeys: &GeoKeys,
        options: &CogWriteOptions,
    ) -> Result<(), CogError> {
        use ndarray::s;
        let mut arrays = Vec::new();
        for &b in bands {
            let a = g
                .bands
                .get(b.wrapping_sub(1))
                .ok_or_else(|| CogError::request(input, format!("band {b} does not exist")))?;
            let (r0, c0) = (window.row_off as usize, window.col_off as usize);
            arrays.push(
                a.slice(s![
                    r0..r0 + window.height as usize,
                    c0..c0 + window.width as usize
                ])
                .mapv(T::from_f64),
            );
        }
        let views: Vec<ArrayView2<'_, T>> = arrays.iter().map(|a| a.view()).collect();
        write_cog_bands(store, out, &views, transform, geokeys, g.nodata, options)
    }
    crate::dispatch_sample_type!(g.dtype, T => go::<T>(
        store, &g, &bands, window, &params.output, &params.input, &transform, &geokeys, &params.options,
    ))?;
    written(store, params, window, bands.len())
}

/// The output record of a translate that wrote `params.output` (its size read back).
fn written(
    store: &cloud::Store,
    params: &TranslateParams,
    window: Window,
    bands: usize,
) -> Result<TranslateOutput, CogError> {
    let bytes = store
        .head(&params.output)
        .map_err(|e| CogError::store(&params.output, e))?;
    Ok(TranslateOutput {
        output: params.output.clone(),
        width: window.width,
        height: window.height,
        bands,
        bytes,
    })
}

fn strip_pixel_is_point(mut g: GeoKeys) -> GeoKeys {
    for k in &mut g.keys {
        if k.id == crate::geo::key::GT_RASTER_TYPE {
            k.value = crate::geo::GeoKeyValue::Short(vec![1]);
        }
    }
    g
}

/// The `cog` stage (binary `cog`): a task converts one raster into a COG.
pub struct CogStage;

impl TranslateParams {
    /// Checks the parameters and locations without reading anything.
    pub fn validate(&self) -> Result<(), TaskError> {
        use cloud::validate;
        validate::uri("input", &self.input)?;
        validate::uri("output", &self.output)?;
        validate::distinct_outputs(&[&self.input], &[&self.output])?;
        validate::count("overview", self.overview, 0..=64)?;
        validate::count("number of bands", self.bands.len(), 0..=65535)?;
        if let Some(b) = self.bands.iter().find(|&&b| b == 0) {
            return Err(TaskError::invalid_task(format!(
                "bands are numbered from 1, not {b}"
            )));
        }
        self.options
            .validate()
            .map_err(|e| TaskError::invalid_task(e.to_string()))
    }
}

impl Stage for CogStage {
    const NAME: &'static str = "cog";
    const VERSION: u32 = 1;
    type Params = TranslateParams;
    type Output = TranslateOutput;

    fn validate(params: &TranslateParams) -> Result<(), TaskError> {
        params.validate()
    }

    fn input_uris(params: &TranslateParams) -> Vec<String> {
        vec![params.input.clone()]
    }

    fn status_root(params: &TranslateParams) -> String {
        cloud::uri::parent(&params.output)
    }

    fn run(params: &TranslateParams, ctx: &Ctx) -> Result<TranslateOutput, TaskError> {
        let p = ctx.progress("translate", 1);
        let out = translate(&ctx.store, params)?;
        p.inc(1);
        p.finish();
        Ok(out)
    }

    fn output_uris(output: &TranslateOutput) -> Vec<String> {
        vec![output.output.clone()]
    }
}
