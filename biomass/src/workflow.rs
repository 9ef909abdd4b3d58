//! The biomass workflow over URIs: whole-image runs, chunk tasks and the merge task.
//!
//! Outputs in the output directory (`out`):
//! `smoothed_chm.tif` (float32 COG, m), `treetops.csv`, `crowns.tif` (uint32 COG, 0 = no
//! crown), `trees.csv`, `biomass.tif` (float32 COG: each crown pixel holds its tree's biomass
//! divided by the crown area, kg per pixel, so the raster sums to the total), `model.json`,
//! `summary.json`, and PNG maps `chm.png` (CHM with tree tops), `crowns.png`, `biomass.png`.
//! An all-zero CHM gives zero trees, empty CSVs (header only), all-zero rasters and a summary
//! with `trees: 0` — documented empty outputs, not an error.

use std::ops::Range;

use bytes::Bytes;
use cloud::{Ctx, Store};
use cog::{CogWriteOptions, Raster, Resampling, Window};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::error::BiomassError;
use crate::forest::{BiomassModel, ForestParams, TrainingTable, r2_score};
use crate::output;
use crate::peaks::Candidate;
use crate::predictors::{Crown, crowns};
use crate::segment::{
    ChmSource, ChunkResult, ChunkWindow, Sanitised, SegmentParams, Segmentation, chunk_grid,
    merge_chunks, sanitise_chm, segment, segment_chunk, segment_chunked,
};

/// Largest CHM (pixels) a whole-image task loads: 1.5 G pixels (≈ 6 GB as float32).
pub const MAX_PIXELS: u64 = 1_500_000_000;

/// Default chunk halo for the watershed, pixels.
pub const DEFAULT_HALO: usize = 64;

fn default_halo() -> usize {
    DEFAULT_HALO
}
fn default_true() -> bool {
    true
}

/// Parameters of a whole workflow run (one task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunParams {
    /// The CHM (GeoTIFF/COG, band 1, metres).
    pub chm: String,
    /// Training CSV (headerless; biomass kg then the 11 predictors). Without it (and without
    /// `model`) only tops and crowns are produced.
    #[serde(default)]
    pub training: Option<String>,
    /// A fitted model (`model.json` of an earlier run) used instead of training.
    #[serde(default)]
    pub model: Option<String>,
    /// Output directory URI.
    pub out: String,
    /// Segmentation settings.
    #[serde(default)]
    pub segment: SegmentParams,
    /// Random forest settings.
    #[serde(default)]
    pub forest: ForestParams,
    /// Process as `n × n` chunks (in parallel in this process); `None` = whole image.
    #[serde(default)]
    pub chunks: Option<usize>,
    /// Watershed halo of each chunk, pixels.
    #[serde(default = "default_halo")]
    pub halo: usize,
    /// Write the PNG maps.
    #[serde(default = "default_true")]
    pub maps: bool,
}

/// What a run produced (also `summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutput {
    /// The CHM.
    pub chm: String,
    /// Number of tree tops (markers).
    pub tops: usize,
    /// Number of crowns (trees with predictors).
    pub trees: usize,
    /// Total predicted biomass, kg (`None` without a model).
    pub total_biomass_kg: Option<f64>,
    /// Mean biomass per tree, kg.
    pub mean_biomass_kg: Option<f64>,
    /// Standard deviation of biomass per tree (population), kg.
    pub std_biomass_kg: Option<f64>,
    /// R² of the forest on its own training rows.
    pub training_r2: Option<f64>,
    /// What sanitising the CHM changed.
    pub sanitised: Sanitised,
    /// The segmentation settings used.
    pub segment: SegmentParams,
    /// Objects written.
    pub outputs: Vec<String>,
}

/// Reads band 1 of a CHM as float32 metres and sanitises it (see [`sanitise_chm`]).
pub fn load_chm(store: &Store, uri: &str) -> Result<(Raster<f32>, Sanitised), BiomassError> {
    let mut r: Raster<f32> = cog::read_band(store, uri, 1)?;
    let n = r.data.len() as u64;
    if n > MAX_PIXELS {
        return Err(BiomassError::BadChm {
            uri: uri.into(),
            message: format!("{n} pixels is more than the {MAX_PIXELS} a task loads; use chunks"),
        });
    }
    if r.data.is_empty() {
        return Err(BiomassError::BadChm {
            uri: uri.into(),
            message: "the CHM has no pixels".into(),
        });
    }
    let s = sanitise_chm(&mut r.data, r.nodata, uri)?;
    if s.nodata_pixels > 0 || s.negative_pixels > 0 {
        tracing::warn!(
            uri,
            nodata = s.nodata_pixels,
            negative = s.negative_pixels,
            "CHM nodata/NaN and negative pixels set to 0 m"
        );
    }
    Ok((r, s))
}

/// Reads and parses a training CSV.
pub fn load_training(store: &Store, uri: &str) -> Result<TrainingTable, BiomassError> {
    let bytes = store.get_capped(uri, 256 << 20)?;
    TrainingTable::from_csv(uri, &bytes)
}

/// The model a run uses: loaded from `model`, or fitted on `training`; with its training R².
pub fn load_or_fit_model(
    store: &Store,
    training: Option<&str>,
    model: Option<&str>,
    forest: &ForestParams,
) -> Result<Option<(BiomassModel, Option<f64>)>, BiomassError> {
    if let Some(m) = model {
        let bytes = store.get_capped(m, 1 << 30)?;
        let s = std::str::from_utf8(&bytes).map_err(|_| BiomassError::BadTraining {
            uri: m.into(),
            message: "the model file is not UTF-8 JSON".into(),
        })?;
        let model = BiomassModel::from_json(s).map_err(|e| BiomassError::BadTraining {
            uri: m.into(),
            message: e.to_string(),
        })?;
        return Ok(Some((model, None)));
    }
    let Some(t) = training else {
        return Ok(None);
    };
    let table = load_training(store, t)?;
    let model = BiomassModel::fit(&table, forest)?;
    let fit = model.predict(&table.predictors)?;
    Ok(Some((model, Some(r2_score(&table.biomass, &fit)))))
}

fn like<T: Copy>(chm: &Raster<f32>, data: Array2<T>, nodata: Option<T>) -> Raster<T> {
    Raster {
        data,
        transform: chm.transform,
        crs: chm.crs.clone(),
        nodata,
    }
}

fn put(
    store: &Store,
    uri: String,
    bytes: Vec<u8>,
    outputs: &mut Vec<String>,
) -> Result<(), BiomassError> {
    store.put(&uri, Bytes::from(bytes))?;
    outputs.push(uri);
    Ok(())
}

/// Writes every output of a segmented CHM (and biomass if a model is given).
#[allow(clippy::too_many_arguments)]
pub fn write_outputs(
    store: &Store,
    out: &str,
    chm: &Raster<f32>,
    sanitised: Sanitised,
    seg: &Segmentation,
    model: Option<(BiomassModel, Option<f64>)>,
    params: &SegmentParams,
    maps: bool,
) -> Result<RunOutput, BiomassError> {
    let j = |name: &str| cloud::uri::join(out, name);
    let mut outputs = Vec::new();
    let float_opts = CogWriteOptions::default();
    let label_opts = CogWriteOptions {
        resampling: Resampling::Nearest,
        ..Default::default()
    };
    cog::write_cog(
        store,
        &j("smoothed_chm.tif"),
        &like(chm, seg.smoothed.clone(), None),
        &float_opts,
    )?;
    outputs.push(j("smoothed_chm.tif"));
    put(
        store,
        j("treetops.csv"),
        output::tops_csv(&seg.tops, chm.data.view(), &chm.transform).into_bytes(),
        &mut outputs,
    )?;
    // The tables' x/y are in the CHM's CRS: said by a .prj beside each.
    for table in ["treetops.csv", "trees.csv"] {
        if let Some(prj) = cog::write_prj(store, &j(table), &chm.crs)? {
            outputs.push(prj);
        }
    }
    cog::write_cog(
        store,
        &j("crowns.tif"),
        &like(chm, seg.labels.clone(), Some(0)),
        &label_opts,
    )?;
    outputs.push(j("crowns.tif"));
    let crowns: Vec<Crown> = crowns(seg.labels.view(), chm.data.view(), (0, 0))?;
    let (biomass, r2) = match &model {
        Some((m, r2)) => {
            let rows: Vec<_> = crowns.iter().map(|c| c.predictors).collect();
            (Some(m.predict(&rows)?), *r2)
        }
        None => (None, None),
    };
    let zeros = vec![f64::NAN; crowns.len()];
    put(
        store,
        j("trees.csv"),
        output::trees_csv(
            &crowns,
            &seg.tops,
            biomass.as_deref().unwrap_or(&zeros),
            chm.data.view(),
            &chm.transform,
        )
        .into_bytes(),
        &mut outputs,
    )?;
    let mut stats = (None, None, None);
    if let (Some(b), Some((m, _))) = (&biomass, &model) {
        // Per-pixel share of each tree's biomass.
        let max = seg.labels.iter().copied().max().unwrap_or(0) as usize;
        let mut per_px = vec![0f32; max + 1];
        for (c, &kg) in crowns.iter().zip(b) {
            per_px[c.label as usize] = (kg / c.predictors[0]) as f32;
        }
        let bio = seg.labels.mapv(|l| per_px[l as usize]);
        cog::write_cog(
            store,
            &j("biomass.tif"),
            &like(chm, bio.clone(), None),
            &float_opts,
        )?;
        outputs.push(j("biomass.tif"));
        if maps {
            let png = output::field_png(bio.view(), &[], 2048, "BIOMASS", "KG PER TREE")
                .map_err(|e| enc(&j("biomass.png"), e))?;
            put(store, j("biomass.png"), png, &mut outputs)?;
        }
        put(
            store,
            j("model.json"),
            m.to_json()?.into_bytes(),
            &mut outputs,
        )?;
        let n = b.len() as f64;
        let total: f64 = b.iter().sum();
        let (mean, std) = if b.is_empty() {
            (0.0, 0.0)
        } else {
            let mean = total / n;
            (
                mean,
                (b.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt(),
            )
        };
        stats = (Some(total), Some(mean), Some(std));
    }
    if maps {
        let png = output::field_png(chm.data.view(), &seg.tops, 2048, "CHM, TREE TOPS", "M")
            .map_err(|e| enc(&j("chm.png"), e))?;
        put(store, j("chm.png"), png, &mut outputs)?;
        let png =
            output::labels_png(seg.labels.view(), 2048).map_err(|e| enc(&j("crowns.png"), e))?;
        put(store, j("crowns.png"), png, &mut outputs)?;
    }
    outputs.push(j("summary.json"));
    let summary = RunOutput {
        chm: String::new(),
        tops: seg.tops.len(),
        trees: crowns.len(),
        total_biomass_kg: stats.0,
        mean_biomass_kg: stats.1,
        std_biomass_kg: stats.2,
        training_r2: r2,
        sanitised,
        segment: *params,
        outputs,
    };
    Ok(summary)
}

fn enc(uri: &str, message: String) -> BiomassError {
    BiomassError::Encode {
        uri: uri.into(),
        message,
    }
}

fn finish_summary(
    store: &Store,
    out: &str,
    mut s: RunOutput,
    chm: &str,
) -> Result<RunOutput, BiomassError> {
    s.chm = chm.to_string();
    store.put_json(&cloud::uri::join(out, "summary.json"), &s)?;
    Ok(s)
}

/// Runs the whole workflow as one task (chunks, if asked, run in parallel in this process).
pub fn run(params: &RunParams, ctx: &Ctx) -> Result<RunOutput, BiomassError> {
    let store = &ctx.store;
    let progress = ctx.progress("biomass", 4);
    let (chm, sanitised) = load_chm(store, &params.chm)?;
    progress.inc(1);
    // Fail on a bad training table before the expensive part.
    let model = load_or_fit_model(
        store,
        params.training.as_deref(),
        params.model.as_deref(),
        &params.forest,
    )?;
    progress.inc(1);
    let seg = match params.chunks {
        Some(n) if n > 1 => segment_chunked(chm.data.view(), n, n, params.halo, &params.segment)?,
        _ => segment(chm.data.view(), &params.segment)?,
    };
    tracing::info!(tops = seg.tops.len(), "segmented");
    progress.inc(1);
    let s = write_outputs(
        store,
        &params.out,
        &chm,
        sanitised,
        &seg,
        model,
        &params.segment,
        params.maps,
    )?;
    progress.inc(1);
    progress.finish();
    finish_summary(store, &params.out, s, &params.chm)
}

// ---------------------------------------------------------------------------------------
// Serverless form: one task per chunk, then one merge task.

/// A CHM read by windows through the store (for chunk and merge tasks).
pub struct StoreSource {
    store: Store,
    uri: String,
    shape: (usize, usize),
    nodata: Option<f32>,
}

impl StoreSource {
    /// Opens the CHM's header.
    pub fn open(store: &Store, uri: &str) -> Result<StoreSource, BiomassError> {
        let reader = cog::CogReader::open(store, uri)?;
        let info = reader.info();
        if info.bands == 0 {
            return Err(BiomassError::BadChm {
                uri: uri.into(),
                message: "no bands".into(),
            });
        }
        Ok(StoreSource {
            store: store.clone(),
            uri: uri.into(),
            shape: (info.height as usize, info.width as usize),
            nodata: info.nodata.map(|v| v as f32),
        })
    }
}

impl ChmSource for StoreSource {
    fn shape(&self) -> (usize, usize) {
        self.shape
    }
    fn read(&self, rows: Range<usize>, cols: Range<usize>) -> Result<Array2<f32>, BiomassError> {
        let w = Window::new(
            cols.start as u64,
            rows.start as u64,
            cols.len() as u64,
            rows.len() as u64,
        );
        let mut r: Raster<f32> = cog::read_window(&self.store, &self.uri, 1, w)?;
        sanitise_chm(&mut r.data, self.nodata.or(r.nodata), &self.uri).or_else(|e| match e {
            // A window with no valid pixel is fine inside a larger CHM: it is all ground.
            BiomassError::BadChm { .. } => {
                r.data.fill(0.0);
                Ok(Sanitised::default())
            }
            other => Err(other),
        })?;
        Ok(r.data)
    }
}

/// Parameters of one chunk task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkParams {
    /// The CHM.
    pub chm: String,
    /// The chunk's core window.
    pub window: ChunkWindow,
    /// Watershed halo, pixels.
    #[serde(default = "default_halo")]
    pub halo: usize,
    /// Segmentation settings (must equal the merge task's).
    #[serde(default)]
    pub segment: SegmentParams,
    /// Where the chunk writes `chunk-<index>.json` and `chunk-<index>-smoothed.tif`.
    pub out: String,
    /// Chunk number (names the files).
    pub index: usize,
}

/// What a chunk task wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkOutput {
    /// The chunk result (JSON).
    pub result: String,
    /// The smoothed core (float32 COG).
    pub smoothed: String,
    /// Peak candidates in the core.
    pub candidates: usize,
    /// Core pixels left for the merge to flood.
    pub unresolved: usize,
}

/// The JSON file of a chunk result (labels run-length encoded; smoothed values in the COG).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkFile {
    /// Core window.
    pub window: ChunkWindow,
    /// Peak candidates of the core.
    pub candidates: Vec<Candidate>,
    /// skimage's trivial-image test over the core.
    pub core_trivial: bool,
    /// Tree-top pixels referenced by the labels.
    pub seeds: Vec<(usize, usize)>,
    /// `flooded_by` as (value, run length) pairs, row-major.
    pub flooded_by_rle: Vec<(u32, u32)>,
    /// The smoothed core COG.
    pub smoothed: String,
}

fn rle(v: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &x in v {
        match out.last_mut() {
            Some((val, n)) if *val == x && *n < u32::MAX => *n += 1,
            _ => out.push((x, 1)),
        }
    }
    out
}

fn unrle(uri: &str, r: &[(u32, u32)], expect: usize) -> Result<Vec<u32>, BiomassError> {
    let total: u64 = r.iter().map(|&(_, n)| n as u64).sum();
    if total != expect as u64 {
        return Err(BiomassError::BadChunk {
            uri: uri.into(),
            message: format!("labels cover {total} pixels, the window has {expect}"),
        });
    }
    let mut v = Vec::with_capacity(expect);
    for &(x, n) in r {
        v.extend(std::iter::repeat_n(x, n as usize));
    }
    Ok(v)
}

/// The chunk and merge tasks of a chunked run with `n × n` chunks.
pub fn plan(
    store: &Store,
    run: &RunParams,
    n: usize,
) -> Result<(Vec<ChunkParams>, MergeParams), BiomassError> {
    let src = StoreSource::open(store, &run.chm)?;
    let (rows, cols) = src.shape();
    let side = rows.min(cols);
    if n == 0 || side / n < MIN_CHUNK_SIDE {
        return Err(BiomassError::Param(format!(
            "{n} chunks per side of a {rows}×{cols} CHM give chunks under {MIN_CHUNK_SIDE} px; \
             use at most {} chunks per side",
            (side / MIN_CHUNK_SIDE).max(1)
        )));
    }
    let windows = chunk_grid(src.shape(), n, n);
    let dir = cloud::uri::join(&run.out, "chunks");
    let chunks: Vec<ChunkParams> = windows
        .into_iter()
        .enumerate()
        .map(|(index, window)| ChunkParams {
            chm: run.chm.clone(),
            window,
            halo: run.halo,
            segment: run.segment,
            out: dir.clone(),
            index,
        })
        .collect();
    let merge = MergeParams {
        chm: run.chm.clone(),
        chunks: chunks
            .iter()
            .map(|c| cloud::uri::join(&dir, &format!("chunk-{:05}.json", c.index)))
            .collect(),
        training: run.training.clone(),
        model: run.model.clone(),
        out: run.out.clone(),
        segment: run.segment,
        forest: run.forest,
        maps: run.maps,
    };
    Ok((chunks, merge))
}

/// Smallest chunk side a plan makes, pixels: smaller chunks are mostly halo.
pub const MIN_CHUNK_SIDE: usize = 64;

/// Runs one chunk task: reads its window plus halo, writes the chunk result.
pub fn run_chunk(p: &ChunkParams, ctx: &Ctx) -> Result<ChunkOutput, BiomassError> {
    let store = &ctx.store;
    let src = StoreSource::open(store, &p.chm)?;
    let params = SegmentParams {
        min_height: Some(p.segment.min_height.unwrap_or(0.0)),
        ..p.segment
    };
    let r: ChunkResult = segment_chunk(&src, &p.window, p.halo, &params)?;
    let result_uri = cloud::uri::join(&p.out, &format!("chunk-{:05}.json", p.index));
    let sm_uri = cloud::uri::join(&p.out, &format!("chunk-{:05}-smoothed.tif", p.index));
    let (h, w) = (p.window.rows.len(), p.window.cols.len());
    let sm = Array2::from_shape_vec((h, w), r.smoothed.clone())
        .map_err(|e| BiomassError::Shape(e.to_string()))?;
    let reader = cog::CogReader::open(store, &p.chm)?;
    let t = reader
        .info()
        .geotransform
        .window(p.window.cols.start as u64, p.window.rows.start as u64);
    let raster = Raster {
        data: sm,
        transform: t,
        crs: reader.info().crs.clone(),
        nodata: None,
    };
    cog::write_cog(
        store,
        &sm_uri,
        &raster,
        &CogWriteOptions {
            overviews: false,
            ..Default::default()
        },
    )?;
    let unresolved = r
        .flooded_by
        .iter()
        .filter(|&&v| v == crate::segment::UNRESOLVED)
        .count();
    let file = ChunkFile {
        window: r.window.clone(),
        candidates: r.candidates.clone(),
        core_trivial: r.core_trivial,
        seeds: r.seeds.clone(),
        flooded_by_rle: rle(&r.flooded_by),
        smoothed: sm_uri.clone(),
    };
    store.put_json(&result_uri, &file)?;
    Ok(ChunkOutput {
        result: result_uri,
        smoothed: sm_uri,
        candidates: r.candidates.len(),
        unresolved,
    })
}

/// Parameters of the merge task (runs after every chunk task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeParams {
    /// The CHM.
    pub chm: String,
    /// The chunk result JSONs, one per chunk.
    pub chunks: Vec<String>,
    /// Training CSV.
    #[serde(default)]
    pub training: Option<String>,
    /// Or a fitted model.
    #[serde(default)]
    pub model: Option<String>,
    /// Output directory.
    pub out: String,
    /// Segmentation settings (as the chunks').
    #[serde(default)]
    pub segment: SegmentParams,
    /// Random forest settings.
    #[serde(default)]
    pub forest: ForestParams,
    /// Write the PNG maps.
    #[serde(default = "default_true")]
    pub maps: bool,
}

/// Runs the merge task: stitches the chunks' tops and crowns (flooding crowns that cross
/// chunks), computes predictors, fits/loads the forest and writes every output.
pub fn run_merge(p: &MergeParams, ctx: &Ctx) -> Result<RunOutput, BiomassError> {
    let store = &ctx.store;
    let params = SegmentParams {
        min_height: Some(p.segment.min_height.unwrap_or(0.0)),
        ..p.segment
    };
    let model = load_or_fit_model(store, p.training.as_deref(), p.model.as_deref(), &p.forest)?;
    let (chm, sanitised) = load_chm(store, &p.chm)?;
    let progress = ctx.progress("merge chunks", p.chunks.len() as u64);
    let mut results = Vec::with_capacity(p.chunks.len());
    for uri in &p.chunks {
        let f: ChunkFile = store.get_json(uri)?;
        let (h, w) = (f.window.rows.len(), f.window.cols.len());
        if f.window.rows.end > chm.height() || f.window.cols.end > chm.width() {
            return Err(BiomassError::BadChunk {
                uri: uri.clone(),
                message: format!(
                    "window {:?}x{:?} is outside the CHM",
                    f.window.rows, f.window.cols
                ),
            });
        }
        let flooded_by = unrle(uri, &f.flooded_by_rle, h * w)?;
        let sm: Raster<f32> = cog::read_band(store, &f.smoothed, 1)?;
        if sm.data.dim() != (h, w) {
            return Err(BiomassError::BadChunk {
                uri: f.smoothed.clone(),
                message: format!("{:?} pixels, the window is {h}x{w}", sm.data.dim()),
            });
        }
        results.push(ChunkResult {
            window: f.window,
            candidates: f.candidates,
            core_trivial: f.core_trivial,
            smoothed: sm.data.into_iter().collect(),
            flooded_by,
            seeds: f.seeds,
        });
        progress.inc(1);
    }
    progress.finish();
    let src = crate::segment::ArraySource(chm.data.view());
    let seg = merge_chunks(&src, &results, &params)?;
    let s = write_outputs(store, &p.out, &chm, sanitised, &seg, model, &params, p.maps)?;
    finish_summary(store, &p.out, s, &p.chm)
}

/// Tree tops only: `treetops.csv`-format text for a CHM.
pub fn treetops_csv(
    store: &Store,
    chm_uri: &str,
    params: &SegmentParams,
) -> Result<(String, usize), BiomassError> {
    let (chm, _) = load_chm(store, chm_uri)?;
    let seg = segment_tops_only(chm.data.view(), params)?;
    Ok((
        output::tops_csv(&seg, chm.data.view(), &chm.transform),
        seg.len(),
    ))
}

fn segment_tops_only(
    chm: ArrayView2<'_, f32>,
    params: &SegmentParams,
) -> Result<Vec<crate::segment::TreeTop>, BiomassError> {
    Ok(segment(chm, params)?.tops)
}

/// Crown labels only, written as a uint32 COG; returns the number of crowns.
pub fn write_crowns(
    store: &Store,
    chm_uri: &str,
    out_uri: &str,
    params: &SegmentParams,
    chunks: Option<usize>,
    halo: usize,
) -> Result<usize, BiomassError> {
    let (chm, _) = load_chm(store, chm_uri)?;
    let seg = match chunks {
        Some(n) if n > 1 => segment_chunked(chm.data.view(), n, n, halo, params)?,
        _ => segment(chm.data.view(), params)?,
    };
    let opts = CogWriteOptions {
        resampling: Resampling::Nearest,
        ..Default::default()
    };
    cog::write_cog(store, out_uri, &like(&chm, seg.labels, Some(0)), &opts)?;
    Ok(seg.tops.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rle_round_trip_and_bounds() {
        let v = vec![0, 0, 0, 5, 5, u32::MAX, 0];
        let r = rle(&v);
        assert_eq!(r, vec![(0, 3), (5, 2), (u32::MAX, 1), (0, 1)]);
        assert_eq!(unrle("c.json", &r, 7).unwrap(), v);
        let e = unrle("c.json", &[(0, u32::MAX), (1, u32::MAX)], 7).unwrap_err();
        assert!(e.to_string().starts_with("c.json: labels cover"), "{e}");
    }
}
