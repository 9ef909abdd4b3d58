//! The NEON segmentation pipeline on a whole CHM or on chunks of it.
//!
//! Whole image ([`segment()`]): sanitise → [`smooth_chm`] →
//! [`peak_local_max`](crate::peak_local_max) candidates → markers labelled with
//! [`label_mask`] → [`watershed()`](crate::watershed::watershed) of the
//! smoothed CHM (or its negation) masked to CHM > 0.
//!
//! Chunked ([`segment_chunked`], the serverless form): each chunk reads its core window grown
//! by a halo, smooths it, finds the peak candidates of its core (exact: the halo covers the
//! gaussian radius plus the footprint reach) and floods the window. The flood of a
//! mask-connected component depends only on that component and the marker pixels in it, so a
//! component lying wholly inside the window (not touching a window edge that is not an image
//! edge) gets exactly the whole-image labels; those core pixels are "resolved". Crown labels
//! are carried as the tree-top pixel that flooded them, and the merge maps each top pixel to
//! its global marker label (crown-aware merge). Core pixels of components that cross the
//! window edge are resolved by the merge with a flood over a window grown until their
//! components close. The result equals the whole-image result (exactly, apart from the order
//! in which equal-valued tree-top pixels of one plateau leave skimage's heap, which can only
//! matter on exact ties between different crowns).

use std::ops::Range;

use ndarray::{Array2, ArrayView2, s};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::BiomassError;
use crate::gaussian::{GaussianParams, smooth_chm};
use crate::peaks::{
    Candidate, Connectivity, PeakParams, label_mask, label_points, peak_threshold, peaks_to_mask,
    select_peaks, window_candidates,
};
use crate::watershed::{Flood, flood_f32};

/// Segmentation settings (defaults: the NEON SJER tutorial).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentParams {
    /// Smoothing (σ = 2 px, truncate 2, constant 0).
    pub gaussian: GaussianParams,
    /// Peak detection (5×5 footprint, min_distance 1, border 1 px). Its thresholds are not
    /// used by the pipeline: see `min_height`.
    pub peaks: PeakParams,
    /// Tree tops must have a smoothed height above this (metres); it is skimage's
    /// `threshold_abs`. `None` = skimage's default, the smoothed image's minimum (0 on any
    /// CHM with ground pixels, as in the tutorial); chunked runs need a value (they use 0).
    pub min_height: Option<f32>,
    /// Connectivity of tree-top plateaus into markers (`ndi.label` default: 4).
    pub marker_connectivity: Connectivity,
    /// Watershed connectivity (skimage default: 4).
    pub connectivity: Connectivity,
    /// Which surface is flooded.
    pub flood: Flood,
    /// The watershed floods only where the smoothed CHM is above this height (metres):
    /// scikit-image's `watershed(…, mask=smoothed > h)`. `None`: where the CHM is above 0
    /// (NEON). Whole-image runs only.
    pub mask_above: Option<f32>,
    /// Keep the smoothed heights where the CHM is 0 (scikit-image's `gaussian` alone); the
    /// NEON step sets them to 0 ([`smooth_chm`]). Whole-image runs only.
    pub smooth_ground: bool,
}

impl Default for SegmentParams {
    fn default() -> Self {
        SegmentParams {
            gaussian: GaussianParams::default(),
            peaks: PeakParams::default(),
            min_height: None,
            marker_connectivity: Connectivity::Four,
            connectivity: Connectivity::Four,
            flood: Flood::Neon,
            mask_above: None,
            smooth_ground: false,
        }
    }
}

impl SegmentParams {
    /// Halo (pixels) a chunk needs for exact tree tops: gaussian radius + footprint reach.
    pub fn tops_halo(&self) -> usize {
        self.gaussian.radius() + self.peaks.reach()
    }

    /// Checks the settings (peaks, thresholds, gaussian).
    pub fn validate(&self) -> Result<(), BiomassError> {
        self.peaks.validate()?;
        self.gaussian.validate()?;
        if self.peaks.threshold_abs.is_some() || self.peaks.threshold_rel.is_some() {
            return Err(BiomassError::Param(
                "the pipeline thresholds tree tops with min_height; leave peaks.threshold_abs/rel unset"
                    .into(),
            ));
        }
        for (what, v) in [
            ("min_height", self.min_height),
            ("mask_above", self.mask_above),
        ] {
            if let Some(m) = v
                && !(m.is_finite() && m >= 0.0)
            {
                return Err(BiomassError::Param(format!(
                    "{what} must be a height >= 0 m, got {m}"
                )));
            }
        }
        Ok(())
    }
}

/// Counts of what sanitising changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sanitised {
    /// Pixels equal to the nodata value or NaN, set to 0 m (no canopy).
    pub nodata_pixels: u64,
    /// Negative heights, set to 0 m.
    pub negative_pixels: u64,
}

/// Prepares a CHM: nodata and NaN pixels become 0 m (no canopy: never in a crown), negative
/// heights become 0 m (as a CHM clamped at the ground). Infinite heights are an error.
pub fn sanitise_chm(
    chm: &mut Array2<f32>,
    nodata: Option<f32>,
    uri: &str,
) -> Result<Sanitised, BiomassError> {
    let mut s = Sanitised::default();
    for v in chm.iter_mut() {
        let is_nodata = v.is_nan() || nodata.is_some_and(|nd| *v == nd);
        if is_nodata {
            s.nodata_pixels += 1;
            *v = 0.0;
        } else if v.is_infinite() {
            return Err(BiomassError::BadChm {
                uri: uri.to_string(),
                message: "the CHM has infinite heights".into(),
            });
        } else if *v < 0.0 {
            s.negative_pixels += 1;
            *v = 0.0;
        }
    }
    if !chm.is_empty() && s.nodata_pixels == chm.len() as u64 {
        return Err(BiomassError::BadChm {
            uri: uri.to_string(),
            message: format!(
                "every one of its {} pixels is nodata or NaN: there is no canopy height to segment",
                chm.len()
            ),
        });
    }
    Ok(s)
}

/// One tree top (a marker: a 4-connected plateau of peak pixels).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeTop {
    /// Marker label = crown label (1..).
    pub id: u32,
    /// Row of the marker's first pixel (raster order), whole image.
    pub row: usize,
    /// Column of that pixel.
    pub col: usize,
    /// Number of pixels in the marker (plateau size).
    pub pixels: usize,
    /// Smoothed CHM at the top, metres.
    pub smoothed: f32,
}

/// The result of segmenting a CHM.
#[derive(Debug, Clone)]
pub struct Segmentation {
    /// Smoothed CHM (metres; 0 where the CHM is 0).
    pub smoothed: Array2<f32>,
    /// Peak pixels in skimage's order (highest first).
    pub peaks: Vec<Candidate>,
    /// Tree tops by id.
    pub tops: Vec<TreeTop>,
    /// Marker image (label at each peak pixel).
    pub markers: Array2<u32>,
    /// Crown labels (0 = no crown).
    pub labels: Array2<u32>,
}

fn tops_from_peaks(peaks: &[Candidate], connectivity: Connectivity) -> (Vec<TreeTop>, Vec<u32>) {
    let pts: Vec<(usize, usize)> = peaks.iter().map(|p| (p.row, p.col)).collect();
    let (lab, n) = label_points(&pts, connectivity);
    let mut tops: Vec<Option<TreeTop>> = vec![None; n as usize];
    for (p, &l) in peaks.iter().zip(&lab) {
        let t = &mut tops[l as usize - 1];
        match t {
            None => {
                *t = Some(TreeTop {
                    id: l,
                    row: p.row,
                    col: p.col,
                    pixels: 1,
                    smoothed: p.value,
                })
            }
            Some(t) => {
                t.pixels += 1;
                if (p.row, p.col) < (t.row, t.col) {
                    t.row = p.row;
                    t.col = p.col;
                    t.smoothed = p.value;
                }
            }
        }
    }
    (tops.into_iter().flatten().collect(), lab)
}

/// Segments a whole (sanitised) CHM, exactly as the NEON tutorial with scipy/scikit-image.
pub fn segment(
    chm: ArrayView2<'_, f32>,
    params: &SegmentParams,
) -> Result<Segmentation, BiomassError> {
    params.validate()?;
    let (h, w) = chm.dim();
    let smoothed = if params.smooth_ground {
        crate::gaussian::gaussian_filter(chm, &params.gaussian)?
    } else {
        smooth_chm(chm, &params.gaussian)?
    };
    let peak_params = PeakParams {
        threshold_abs: params.min_height,
        ..params.peaks
    };
    let threshold = peak_threshold(smoothed.view(), &peak_params);
    let (cands, trivial) = window_candidates(
        smoothed.view(),
        (0..h, 0..w),
        (0, 0),
        (h, w),
        threshold,
        &peak_params,
    );
    let peaks = if trivial || h == 0 || w == 0 {
        Vec::new()
    } else {
        select_peaks(cands, &peak_params)
    };
    let (markers, _n) = label_mask(
        peaks_to_mask((h, w), &peaks).view(),
        params.marker_connectivity,
    )?;
    let (tops, _) = tops_from_peaks(&peaks, params.marker_connectivity);
    let mask: Vec<bool> = match params.mask_above {
        Some(h) => smoothed.iter().map(|&v| v > h).collect(),
        None => chm.iter().map(|&v| v > 0.0).collect(),
    };
    let mut out: Vec<u32> = markers
        .iter()
        .zip(&mask)
        .map(|(&m, &k)| if k { m } else { 0 })
        .collect();
    flood_f32(
        smoothed.view(),
        params.flood,
        &mask,
        &mut out,
        params.connectivity,
    );
    let labels =
        Array2::from_shape_vec((h, w), out).map_err(|e| BiomassError::Shape(e.to_string()))?;
    Ok(Segmentation {
        smoothed,
        peaks,
        tops,
        markers,
        labels,
    })
}

// ---------------------------------------------------------------------------------------
// Chunked form

/// Read access to a (sanitised) CHM by windows, for chunked segmentation.
pub trait ChmSource: Sync {
    /// (rows, cols) of the whole CHM.
    fn shape(&self) -> (usize, usize);
    /// The CHM over `rows × cols` (whole-image pixel ranges, within the shape), sanitised.
    fn read(&self, rows: Range<usize>, cols: Range<usize>) -> Result<Array2<f32>, BiomassError>;
}

/// An in-memory CHM as a [`ChmSource`].
pub struct ArraySource<'a>(pub ArrayView2<'a, f32>);

impl ChmSource for ArraySource<'_> {
    fn shape(&self) -> (usize, usize) {
        self.0.dim()
    }
    fn read(&self, rows: Range<usize>, cols: Range<usize>) -> Result<Array2<f32>, BiomassError> {
        Ok(self.0.slice(s![rows, cols]).to_owned())
    }
}

/// A chunk's core window (whole-image pixel ranges).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkWindow {
    /// Rows of the core.
    pub rows: Range<usize>,
    /// Columns of the core.
    pub cols: Range<usize>,
}

/// Splits a `shape` image into `ny × nx` near-equal core windows, row-major.
pub fn chunk_grid(shape: (usize, usize), ny: usize, nx: usize) -> Vec<ChunkWindow> {
    let split = |n: usize, k: usize| -> Vec<Range<usize>> {
        let k = k.clamp(1, n.max(1));
        (0..k).map(|i| (i * n / k)..((i + 1) * n / k)).collect()
    };
    let mut out = Vec::new();
    for r in split(shape.0, ny) {
        for c in split(shape.1, nx) {
            out.push(ChunkWindow {
                rows: r.clone(),
                cols: c,
            });
        }
    }
    out
}

/// What one chunk task produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkResult {
    /// The core window.
    pub window: ChunkWindow,
    /// Peak candidates of the core (whole-image coordinates, raster order).
    pub candidates: Vec<Candidate>,
    /// Every core pixel equals its local maximum (skimage's trivial-image test, per chunk).
    pub core_trivial: bool,
    /// Smoothed CHM of the core (row-major), metres.
    pub smoothed: Vec<f32>,
    /// Per core pixel (row-major): 0 = no crown, `u32::MAX` = unresolved, otherwise
    /// 1 + index into `seeds` of the tree-top pixel whose flood reached it.
    pub flooded_by: Vec<u32>,
    /// Tree-top pixels (whole-image (row, col)) referenced by `flooded_by`.
    pub seeds: Vec<(usize, usize)>,
}

/// Marker for an unresolved pixel in [`ChunkResult::flooded_by`].
pub const UNRESOLVED: u32 = u32::MAX;

/// Smooths, finds peaks over, and floods the window `rows × cols` of the source (grown by the
/// tops halo for exact smoothing and peaks), returning for each window pixel the flooding seed
/// (index+1 into the returned seeds), or `UNRESOLVED` where the mask component crosses a
/// window edge inside the image. Also returns the window's smoothed values and candidates.
struct Flooded {
    smoothed: Array2<f32>,
    candidates: Vec<Candidate>,
    trivial: bool,
    flooded_by: Array2<u32>,
    seeds: Vec<(usize, usize)>,
}

fn flood_window(
    src: &dyn ChmSource,
    rows: Range<usize>,
    cols: Range<usize>,
    params: &SegmentParams,
    threshold: f32,
    globally_trivial: Option<bool>,
) -> Result<Flooded, BiomassError> {
    let (fh, fw) = src.shape();
    let halo = params.tops_halo();
    let rr = rows.start.saturating_sub(halo)..(rows.end + halo).min(fh);
    let cc = cols.start.saturating_sub(halo)..(cols.end + halo).min(fw);
    let chm = src.read(rr.clone(), cc.clone())?;
    let smooth_all = smooth_chm(chm.view(), &params.gaussian)?;
    let (r0, c0) = (rows.start - rr.start, cols.start - cc.start);
    let (h, w) = (rows.len(), cols.len());
    let peak_params = PeakParams {
        threshold_abs: Some(threshold),
        ..params.peaks
    };
    let (cands, trivial) = window_candidates(
        smooth_all.view(),
        (r0..r0 + h, c0..c0 + w),
        (rr.start, cc.start),
        (fh, fw),
        threshold,
        &peak_params,
    );
    let smoothed = smooth_all.slice(s![r0..r0 + h, c0..c0 + w]).to_owned();
    let chm_w = chm.slice(s![r0..r0 + h, c0..c0 + w]);
    let mask: Vec<bool> = chm_w.iter().map(|&v| v > 0.0).collect();
    // Mask components that touch a window edge lying inside the image are unresolved.
    let mask_arr = Array2::from_shape_vec((h, w), mask.clone())
        .map_err(|e| BiomassError::Shape(e.to_string()))?;
    let (comp, ncomp) = label_mask(mask_arr.view(), params.connectivity)?;
    let mut open = vec![false; ncomp as usize + 1];
    let mut mark_edge = |r: usize, c: usize| {
        open[comp[[r, c]] as usize] = true;
    };
    if h > 0 && w > 0 {
        if rows.start > 0 {
            (0..w).for_each(|c| mark_edge(0, c));
        }
        if rows.end < fh {
            (0..w).for_each(|c| mark_edge(h - 1, c));
        }
        if cols.start > 0 {
            (0..h).for_each(|r| mark_edge(r, 0));
        }
        if cols.end < fw {
            (0..h).for_each(|r| mark_edge(r, w - 1));
        }
    }
    open[0] = false;
    let no_peaks = globally_trivial.unwrap_or(false);
    let seeds: Vec<(usize, usize)> = if no_peaks {
        Vec::new()
    } else {
        cands.iter().map(|c| (c.row, c.col)).collect()
    };
    let mut out = vec![0u32; h * w];
    for (k, &(r, c)) in seeds.iter().enumerate() {
        let i = (r - rows.start) * w + (c - cols.start);
        if mask[i] {
            out[i] = k as u32 + 1;
        }
    }
    flood_f32(
        smoothed.view(),
        params.flood,
        &mask,
        &mut out,
        params.connectivity,
    );
    for (o, &k) in out.iter_mut().zip(comp.iter()) {
        if open[k as usize] {
            *o = UNRESOLVED;
        }
    }
    let flooded_by =
        Array2::from_shape_vec((h, w), out).map_err(|e| BiomassError::Shape(e.to_string()))?;
    Ok(Flooded {
        smoothed,
        candidates: cands,
        trivial,
        flooded_by,
        seeds,
    })
}

fn chunked_threshold(params: &SegmentParams) -> f32 {
    params.min_height.unwrap_or(0.0)
}

fn check_chunkable(params: &SegmentParams) -> Result<(), BiomassError> {
    params.validate()?;
    if params.mask_above.is_some() || params.smooth_ground {
        return Err(BiomassError::Param(
            "chunked segmentation smooths and floods as NEON does; mask_above and smooth_ground need the whole image".into(),
        ));
    }
    if params.peaks.min_distance > 1 || params.peaks.num_peaks.is_some() {
        return Err(BiomassError::Param(
            "chunked segmentation needs min_distance = 1 and no num_peaks (both are global greedy selections); run the whole image instead".into(),
        ));
    }
    Ok(())
}

/// One chunk task: smoothing, tree-top candidates and the window flood for `window`, reading
/// the CHM with a halo of `halo` pixels (clamped to at least the tops halo).
pub fn segment_chunk(
    src: &dyn ChmSource,
    window: &ChunkWindow,
    halo: usize,
    params: &SegmentParams,
) -> Result<ChunkResult, BiomassError> {
    check_chunkable(params)?;
    let (fh, fw) = src.shape();
    if window.rows.end > fh
        || window.cols.end > fw
        || window.rows.is_empty()
        || window.cols.is_empty()
    {
        return Err(BiomassError::Param(format!(
            "chunk window {:?}x{:?} is empty or outside the {fh}x{fw} CHM",
            window.rows, window.cols
        )));
    }
    let halo = halo.max(params.tops_halo());
    let rows = window.rows.start.saturating_sub(halo)..(window.rows.end + halo).min(fh);
    let cols = window.cols.start.saturating_sub(halo)..(window.cols.end + halo).min(fw);
    let threshold = chunked_threshold(params);
    let fl = flood_window(src, rows.clone(), cols.clone(), params, threshold, None)?;
    let (r0, c0) = (
        window.rows.start - rows.start,
        window.cols.start - cols.start,
    );
    let (h, w) = (window.rows.len(), window.cols.len());
    let core_by = fl.flooded_by.slice(s![r0..r0 + h, c0..c0 + w]);
    // Compact the seed list to the seeds the core uses.
    let mut remap = vec![0u32; fl.seeds.len() + 1];
    let mut seeds = Vec::new();
    let flooded_by: Vec<u32> = core_by
        .iter()
        .map(|&v| {
            if v == 0 || v == UNRESOLVED {
                v
            } else {
                let k = v as usize;
                if remap[k] == 0 {
                    seeds.push(fl.seeds[k - 1]);
                    remap[k] = seeds.len() as u32;
                }
                remap[k]
            }
        })
        .collect();
    let in_core = |c: &Candidate| window.rows.contains(&c.row) && window.cols.contains(&c.col);
    let candidates: Vec<Candidate> = fl.candidates.into_iter().filter(in_core).collect();
    // Triviality of the core alone (skimage's test, decided over all chunks by the merge).
    let (_, core_trivial) = window_candidates(
        fl.smoothed.view(),
        (r0..r0 + h, c0..c0 + w),
        (rows.start, cols.start),
        (fh, fw),
        f32::INFINITY,
        &params.peaks,
    );
    let _ = fl.trivial;
    Ok(ChunkResult {
        window: window.clone(),
        candidates,
        core_trivial,
        smoothed: fl
            .smoothed
            .slice(s![r0..r0 + h, c0..c0 + w])
            .iter()
            .copied()
            .collect(),
        flooded_by,
        seeds,
    })
}

/// Merges chunk results into the whole-image segmentation (the merge task). Unresolved pixels
/// are flooded here over windows grown until their mask components close.
pub fn merge_chunks(
    src: &dyn ChmSource,
    chunks: &[ChunkResult],
    params: &SegmentParams,
) -> Result<Segmentation, BiomassError> {
    check_chunkable(params)?;
    let (fh, fw) = src.shape();
    // Coverage check: the cores must tile the image exactly once.
    let mut covered = 0usize;
    for c in chunks {
        let (h, w) = (c.window.rows.len(), c.window.cols.len());
        if c.window.rows.end > fh || c.window.cols.end > fw {
            return Err(BiomassError::Param(format!(
                "chunk {:?}x{:?} lies outside the {fh}x{fw} CHM",
                c.window.rows, c.window.cols
            )));
        }
        if c.smoothed.len() != h * w || c.flooded_by.len() != h * w {
            return Err(BiomassError::Param(format!(
                "chunk {:?}x{:?}: {} smoothed / {} label values for {h}x{w} pixels",
                c.window.rows,
                c.window.cols,
                c.smoothed.len(),
                c.flooded_by.len()
            )));
        }
        covered += h * w;
    }
    let mut smoothed = Array2::<f32>::zeros((fh, fw));
    let mut seen = Array2::from_elem((fh, fw), false);
    for c in chunks {
        let mut sv = smoothed.slice_mut(s![c.window.rows.clone(), c.window.cols.clone()]);
        for (d, v) in sv.iter_mut().zip(&c.smoothed) {
            *d = *v;
        }
        seen.slice_mut(s![c.window.rows.clone(), c.window.cols.clone()])
            .fill(true);
    }
    if covered != fh * fw || seen.iter().any(|v| !v) {
        return Err(BiomassError::Param(format!(
            "the chunks cover {covered} pixels, not each of the {} pixels exactly once",
            fh * fw
        )));
    }
    let trivial = chunks.iter().all(|c| c.core_trivial);
    let mut cands: Vec<Candidate> = if trivial {
        Vec::new()
    } else {
        chunks
            .iter()
            .flat_map(|c| c.candidates.iter().copied())
            .collect()
    };
    cands.sort_by_key(|c| (c.row, c.col));
    let peak_params = params.peaks;
    let peaks = select_peaks(cands, &peak_params);
    let (tops, peak_labels) = tops_from_peaks(&peaks, params.marker_connectivity);
    let label_of: std::collections::HashMap<(usize, usize), u32> = peaks
        .iter()
        .zip(&peak_labels)
        .map(|(p, &l)| ((p.row, p.col), l))
        .collect();
    let mut markers = Array2::<u32>::zeros((fh, fw));
    for (p, &l) in peaks.iter().zip(&peak_labels) {
        markers[[p.row, p.col]] = l;
    }
    let mut labels = Array2::<u32>::zeros((fh, fw));
    let mut unresolved: Vec<(usize, usize)> = Vec::new();
    for c in chunks {
        let w = c.window.cols.len();
        for (i, &v) in c.flooded_by.iter().enumerate() {
            let (r, q) = (c.window.rows.start + i / w, c.window.cols.start + i % w);
            if v == UNRESOLVED {
                unresolved.push((r, q));
            } else if v != 0 && !trivial {
                let seed = c.seeds.get(v as usize - 1).ok_or_else(|| {
                    BiomassError::Param(format!("chunk at row {r} col {q}: seed {v} missing"))
                })?;
                labels[[r, q]] = *label_of.get(seed).ok_or_else(|| {
                    BiomassError::Param(format!(
                        "chunk seed {seed:?} is not a tree top of the merged result"
                    ))
                })?;
            }
        }
    }
    if !unresolved.is_empty() {
        tracing::info!(
            pixels = unresolved.len(),
            "merge floods pixels whose crowns cross chunks"
        );
        resolve(
            src,
            &mut unresolved,
            params,
            trivial,
            &label_of,
            &mut labels,
        )?;
    }
    Ok(Segmentation {
        smoothed,
        peaks,
        tops,
        markers,
        labels,
    })
}

fn resolve(
    src: &dyn ChmSource,
    pending: &mut Vec<(usize, usize)>,
    params: &SegmentParams,
    trivial: bool,
    label_of: &std::collections::HashMap<(usize, usize), u32>,
    labels: &mut Array2<u32>,
) -> Result<(), BiomassError> {
    let (fh, fw) = src.shape();
    let threshold = chunked_threshold(params);
    while !pending.is_empty() {
        // Start from the bounding box of the first pending pixel's neighbourhood and grow it
        // until that pixel is resolved; then settle every pending pixel it resolved.
        let (r, c) = pending[0];
        let mut grow = 64usize;
        loop {
            let rows = r.saturating_sub(grow)..(r + grow + 1).min(fh);
            let cols = c.saturating_sub(grow)..(c + grow + 1).min(fw);
            let fl = flood_window(
                src,
                rows.clone(),
                cols.clone(),
                params,
                threshold,
                Some(trivial),
            )?;
            let w = cols.len();
            let at = |rr: usize, cc: usize| fl.flooded_by[[rr - rows.start, cc - cols.start]];
            if at(r, c) != UNRESOLVED {
                let mut rest = Vec::with_capacity(pending.len());
                for &(pr, pc) in pending.iter() {
                    if rows.contains(&pr) && cols.contains(&pc) {
                        let v = at(pr, pc);
                        if v == UNRESOLVED {
                            rest.push((pr, pc));
                        } else if v != 0 {
                            let seed = fl.seeds[v as usize - 1];
                            labels[[pr, pc]] = *label_of.get(&seed).ok_or_else(|| {
                                BiomassError::Param(format!(
                                    "seed {seed:?} is not a tree top of the merged result"
                                ))
                            })?;
                        }
                    } else {
                        rest.push((pr, pc));
                    }
                }
                let _ = w;
                *pending = rest;
                break;
            }
            if rows.len() == fh && cols.len() == fw {
                return Err(BiomassError::Param(
                    "internal: a whole-image flood left pixels unresolved".into(),
                ));
            }
            grow *= 2;
        }
    }
    Ok(())
}

/// Chunked segmentation in memory: `ny × nx` chunks processed in parallel, then merged. Equals
/// [`segment`] (see the module notes).
pub fn segment_chunked(
    chm: ArrayView2<'_, f32>,
    ny: usize,
    nx: usize,
    halo: usize,
    params: &SegmentParams,
) -> Result<Segmentation, BiomassError> {
    let params = SegmentParams {
        min_height: Some(chunked_threshold(params)),
        ..*params
    };
    let src = ArraySource(chm);
    let windows = chunk_grid(chm.dim(), ny, nx);
    let chunks: Result<Vec<ChunkResult>, BiomassError> = windows
        .par_iter()
        .map(|w| segment_chunk(&src, w, halo, &params))
        .collect();
    merge_chunks(&src, &chunks?, &params)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A synthetic canopy of gaussian crowns.
    pub(crate) fn synthetic(h: usize, w: usize, seed: u64) -> Array2<f32> {
        let mut s = seed;
        let mut rnd = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 10_000) as f64 / 10_000.0
        };
        let mut chm = Array2::<f32>::zeros((h, w));
        let n = h * w / 60;
        let trees: Vec<(f64, f64, f64, f64)> = (0..n)
            .map(|_| {
                (
                    rnd() * h as f64,
                    rnd() * w as f64,
                    5.0 + 20.0 * rnd(),
                    1.5 + 3.0 * rnd(),
                )
            })
            .collect();
        for ((r, c), v) in chm.indexed_iter_mut() {
            let mut best = 0.0f64;
            for &(tr, tc, th, tw) in &trees {
                let d2 = (r as f64 - tr).powi(2) + (c as f64 - tc).powi(2);
                let z = th * (-d2 / (2.0 * tw * tw)).exp();
                if z > best {
                    best = z;
                }
            }
            *v = if best > 1.0 {
                (best * 100.0).round() as f32 / 100.0
            } else {
                0.0
            };
        }
        chm
    }

    #[test]
    fn chunked_equals_whole_on_synthetic() {
        let chm = synthetic(90, 110, 7);
        for flood in [Flood::Neon, Flood::Inverted] {
            let p = SegmentParams {
                flood,
                ..Default::default()
            };
            let whole = segment(chm.view(), &p).unwrap();
            assert!(whole.tops.len() > 20);
            for (ny, nx, halo) in [(2, 2, 8), (3, 4, 0), (5, 5, 16)] {
                let ch = segment_chunked(chm.view(), ny, nx, halo, &p).unwrap();
                assert_eq!(ch.smoothed, whole.smoothed);
                assert_eq!(ch.tops, whole.tops, "{flood:?} {ny}x{nx}");
                assert_eq!(ch.markers, whole.markers);
                assert_eq!(ch.labels, whole.labels, "{flood:?} {ny}x{nx} halo {halo}");
            }
        }
    }

    #[test]
    fn all_zero_chm_gives_no_trees() {
        let chm = Array2::<f32>::zeros((20, 20));
        let s = segment(chm.view(), &SegmentParams::default()).unwrap();
        assert!(s.tops.is_empty());
        assert!(s.labels.iter().all(|&v| v == 0));
        let c = segment_chunked(chm.view(), 2, 2, 8, &SegmentParams::default()).unwrap();
        assert!(c.tops.is_empty());
    }

    #[test]
    fn sanitise_rules() {
        let mut a = ndarray::array![[f32::NAN, -9999.0, -1.0, 3.0]];
        let s = sanitise_chm(&mut a, Some(-9999.0), "x.tif").unwrap();
        assert_eq!(s.nodata_pixels, 2);
        assert_eq!(s.negative_pixels, 1);
        assert_eq!(a, ndarray::array![[0.0, 0.0, 0.0, 3.0]]);
        let mut b = ndarray::array![[-9999.0f32, f32::NAN]];
        let e = sanitise_chm(&mut b, Some(-9999.0), "x.tif").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("x.tif: every one of its 2 pixels is nodata"),
            "{e}"
        );
        let mut c = ndarray::array![[f32::INFINITY]];
        assert!(sanitise_chm(&mut c, None, "x.tif").is_err());
    }
}
