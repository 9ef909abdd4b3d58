//! The work of the `ndvi` stage: window tasks, the merge, tile planning, and whole-raster
//! NDVI / difference products.
//!
//! A tile run is one [`WindowTask`] per window of the tile (1024 px by default, aligned to
//! the COG tiles by `cog::plan_windows`), each reading both dates' B04/B08 (and SCL) windows
//! with range requests and writing its NDVI before, after and difference as small float32
//! COGs under `{out}/windows/`, then one [`MergeTask`] assembling the tile's
//! `ndvi_before.tif`, `ndvi_after.tif` and `ndvi_diff.tif` COGs and `ndvi_diff.png`.

use std::sync::Mutex;

use cloud::{Ctx, Store};
use cog::{CogWriteOptions, Raster, Window};
use ndarray::{Array2, s};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::compute::{Grid, NODATA, Stats, check_same_grid, diff_array, stats};
use crate::error::NdviError;
use crate::io::{SceneReader, check_dates};
use crate::quicklook::{QuicklookOptions, write_quicklook};
use crate::scene::{AssetLocation, MgrsTile, ResolveOptions, SceneBands, SceneRef, resolve_scene};

/// Default window (task) size in pixels: 1024, the block size of the `sentinel-cogs` COGs.
pub const DEFAULT_WINDOW: u64 = 1024;

/// Output file names under a tile run's output root.
pub const NDVI_BEFORE: &str = "ndvi_before.tif";
/// See [`NDVI_BEFORE`].
pub const NDVI_AFTER: &str = "ndvi_after.tif";
/// See [`NDVI_BEFORE`].
pub const NDVI_DIFF: &str = "ndvi_diff.tif";
/// See [`NDVI_BEFORE`].
pub const QUICKLOOK: &str = "ndvi_diff.png";

/// DEFLATE level of NDVI COGs unless told otherwise: float32 NDVI mantissas hardly compress,
/// and on the 29RKH fixture level 1 even gave a 0.7 % smaller file than level 6, ~30 % faster.
pub const DEFAULT_LEVEL: i32 = 1;

/// COG options of the final products: float32, DEFLATE with predictor 3, `blocksize`
/// tiles, overviews, and DEFLATE `level` (1–12; `None`: [`DEFAULT_LEVEL`]).
pub fn product_cog_options(blocksize: u32, level: Option<i32>) -> CogWriteOptions {
    CogWriteOptions {
        blocksize,
        level: Some(level.unwrap_or(DEFAULT_LEVEL)),
        ..CogWriteOptions::default()
    }
}

/// COG options of window results (no overviews: they are merged, not viewed).
fn window_cog_options() -> CogWriteOptions {
    CogWriteOptions {
        overviews: false,
        level: Some(DEFAULT_LEVEL),
        ..CogWriteOptions::default()
    }
}

fn default_blocksize() -> u32 {
    512
}

/// One serverless task: the NDVI of both dates and their difference over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowTask {
    pub before: SceneBands,
    pub after: SceneBands,
    /// Window of the band grid (10 m pixels).
    pub window: Window,
    /// Output root of the tile run.
    pub out: String,
    /// SCL classes to mask (empty: no masking).
    #[serde(default)]
    pub scl_mask: Vec<u8>,
}

/// What a [`WindowTask`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowOutput {
    pub window: Window,
    pub ndvi_before: String,
    pub ndvi_after: String,
    pub ndvi_diff: String,
    /// Valid pixels of each product.
    pub valid_before: u64,
    pub valid_after: u64,
    pub valid_diff: u64,
    /// Pixels removed by the SCL mask, per date.
    pub masked_before: u64,
    pub masked_after: u64,
}

/// URI of a window's result `name` (`ndvi_before.tif`, ...) under `out`.
pub fn window_uri(out: &str, window: &Window, name: &str) -> String {
    cloud::uri::join(
        out,
        &format!(
            "windows/r{:05}_c{:05}/{name}",
            window.row_off, window.col_off
        ),
    )
}

/// The task id of a window: `window-r{row}-c{col}`.
pub fn window_task_id(window: &Window) -> String {
    format!("window-r{:05}-c{:05}", window.row_off, window.col_off)
}

fn count_valid(a: &Array2<f32>) -> u64 {
    a.iter().filter(|v| !v.is_nan()).count() as u64
}

/// The NDVI before, after and their difference over one window of two opened scenes.
pub struct WindowResult {
    pub before: Array2<f32>,
    pub after: Array2<f32>,
    pub diff: Array2<f32>,
    pub masked_before: u64,
    pub masked_after: u64,
}

/// Computes one window of both dates (reads run concurrently).
pub fn compute_window(
    before: &SceneReader,
    after: &SceneReader,
    window: Window,
) -> Result<WindowResult, NdviError> {
    let (b, a) = rayon::join(|| before.ndvi_window(window), || after.ndvi_window(window));
    let ((before, masked_before), (after, masked_after)) = (b?, a?);
    let diff = diff_array(before.view(), Some(NODATA), after.view(), Some(NODATA));
    Ok(WindowResult {
        before,
        after,
        diff,
        masked_before,
        masked_after,
    })
}

fn check_window(grid: &Grid, window: &Window) -> Result<(), NdviError> {
    if window.is_empty()
        || window.col_off + window.width > grid.width
        || window.row_off + window.height > grid.height
    {
        return Err(NdviError::InvalidParameter(format!(
            "window {window:?} is empty or not inside the {}x{} band grid",
            grid.width, grid.height
        )));
    }
    Ok(())
}

/// Runs a window task: reads, computes, writes the three window COGs.
pub fn run_window(store: &Store, task: &WindowTask) -> Result<WindowOutput, NdviError> {
    let (before, after) = rayon::join(
        || SceneReader::open(store, &task.before, &task.scl_mask),
        || SceneReader::open(store, &task.after, &task.scl_mask),
    );
    let (before, after) = (before?, after?);
    check_dates(&before, &after)?;
    let grid = before.grid();
    check_window(&grid, &task.window)?;
    let r = compute_window(&before, &after, task.window)?;
    let transform = grid
        .transform
        .window(task.window.col_off, task.window.row_off);
    let raster = |data: Array2<f32>| Raster {
        data,
        transform,
        crs: grid.crs.clone(),
        nodata: Some(NODATA),
    };
    let uris = [NDVI_BEFORE, NDVI_AFTER, NDVI_DIFF].map(|n| window_uri(&task.out, &task.window, n));
    let valid = [
        count_valid(&r.before),
        count_valid(&r.after),
        count_valid(&r.diff),
    ];
    let opts = window_cog_options();
    [r.before, r.after, r.diff]
        .into_par_iter()
        .zip(uris.par_iter())
        .try_for_each(|(data, uri)| cog::write_cog(store, uri, &raster(data), &opts))?;
    let [ndvi_before, ndvi_after, ndvi_diff] = uris;
    Ok(WindowOutput {
        window: task.window,
        ndvi_before,
        ndvi_after,
        ndvi_diff,
        valid_before: valid[0],
        valid_after: valid[1],
        valid_diff: valid[2],
        masked_before: r.masked_before,
        masked_after: r.masked_after,
    })
}

/// The task assembling a tile's window results into its products.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeTask {
    /// Output root of the tile run (window results under `windows/`).
    pub out: String,
    /// The band grid of the tile.
    pub grid: Grid,
    /// Every window of the plan; each must have its results.
    pub windows: Vec<Window>,
    /// Block size of the product COGs.
    #[serde(default = "default_blocksize")]
    pub blocksize: u32,
    /// DEFLATE level of the product COGs (1–12; `None`: [`DEFAULT_LEVEL`]).
    #[serde(default)]
    pub level: Option<i32>,
    /// Quicklook of the difference (`None`: no PNG).
    #[serde(default)]
    pub quicklook: Option<QuicklookOptions>,
}

/// What the merge wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeOutput {
    pub ndvi_before: String,
    pub ndvi_after: String,
    pub ndvi_diff: String,
    #[serde(default)]
    pub quicklook: Option<String>,
    pub stats_before: Stats,
    pub stats_after: Stats,
    pub stats_diff: Stats,
}

/// Most pixels a merge assembles (8 GiB of float32; a Sentinel-2 tile has 1.2e8).
pub const MAX_TILE_PIXELS: u64 = 1 << 31;

/// Most windows a plan may have (a 10980² tile has 121 of 1024 px, 1849 of 256 px).
pub const MAX_WINDOWS: usize = 100_000;

/// Checks that `windows` cover every pixel of a `width`×`height` grid exactly once: each is
/// non-empty and inside, no two overlap, and their areas add up to the grid's.
pub fn check_coverage(windows: &[Window], width: u64, height: u64) -> Result<(), NdviError> {
    if windows.len() > MAX_WINDOWS {
        return Err(NdviError::InvalidParameter(format!(
            "{} windows is more than the {MAX_WINDOWS} a plan may have",
            windows.len()
        )));
    }
    let mut area: u128 = 0;
    for w in windows {
        let inside = w.col_off.checked_add(w.width).is_some_and(|e| e <= width)
            && w.row_off.checked_add(w.height).is_some_and(|e| e <= height);
        if w.is_empty() || !inside {
            return Err(NdviError::InvalidParameter(format!(
                "window {w:?} is empty or outside the {width}x{height} grid"
            )));
        }
        area += w.width as u128 * w.height as u128;
    }
    let mut sorted: Vec<&Window> = windows.iter().collect();
    sorted.sort_by_key(|w| (w.row_off, w.col_off));
    for (i, a) in sorted.iter().enumerate() {
        for b in &sorted[i + 1..] {
            if b.row_off >= a.row_off + a.height {
                break;
            }
            let cols = b.col_off < a.col_off + a.width && a.col_off < b.col_off + b.width;
            if cols {
                return Err(NdviError::InvalidParameter(format!(
                    "windows {a:?} and {b:?} overlap"
                )));
            }
        }
    }
    let total = width as u128 * height as u128;
    if area != total {
        return Err(NdviError::InvalidParameter(format!(
            "the windows cover {area} of the {total} pixels of the {width}x{height} grid"
        )));
    }
    Ok(())
}

/// Reads every window's `name` result into one tile-sized array, checking each window's
/// size and georeferencing against the grid.
fn assemble(
    store: &Store,
    task: &MergeTask,
    name: &str,
    ctx: Option<&Ctx>,
) -> Result<Raster<f32>, NdviError> {
    let grid = &task.grid;
    let full = Mutex::new(Array2::<f32>::from_elem(
        (grid.height as usize, grid.width as usize),
        NODATA,
    ));
    let progress = ctx.map(|c| c.progress(&format!("merge {name}"), task.windows.len() as u64));
    task.windows
        .par_iter()
        .try_for_each(|w| -> Result<(), NdviError> {
            let uri = window_uri(&task.out, w, name);
            let r: Raster<f32> = cog::read_band(store, &uri, 1)?;
            let bad = |reason: String| NdviError::WindowResult {
                uri: uri.clone(),
                reason,
            };
            if r.width() as u64 != w.width || r.height() as u64 != w.height {
                return Err(bad(format!(
                    "{}x{} px, but the window is {}x{}",
                    r.width(),
                    r.height(),
                    w.width,
                    w.height
                )));
            }
            check_same_grid(
                &format!("window {w:?} of the tile grid"),
                &grid.window(w),
                &uri,
                &Grid::of(&r),
            )?;
            let (c0, r0) = (w.col_off as usize, w.row_off as usize);
            let (cw, rh) = (w.width as usize, w.height as usize);
            full.lock()
                .unwrap_or_else(|p| p.into_inner())
                .slice_mut(s![r0..r0 + rh, c0..c0 + cw])
                .assign(&r.data);
            if let Some(p) = &progress {
                p.inc(1);
            }
            Ok(())
        })?;
    if let Some(p) = progress {
        p.finish();
    }
    Ok(Raster {
        data: full.into_inner().unwrap_or_else(|p| p.into_inner()),
        transform: grid.transform,
        crs: grid.crs.clone(),
        nodata: Some(NODATA),
    })
}

/// Runs the merge: the three product COGs (one in memory at a time) and the quicklook.
pub fn run_merge(
    store: &Store,
    task: &MergeTask,
    ctx: Option<&Ctx>,
) -> Result<MergeOutput, NdviError> {
    check_coverage(&task.windows, task.grid.width, task.grid.height)?;
    let opts = product_cog_options(task.blocksize, task.level);
    let mut out = Vec::new();
    let mut quicklook = None;
    for name in [NDVI_BEFORE, NDVI_AFTER, NDVI_DIFF] {
        let raster = assemble(store, task, name, ctx)?;
        let st = stats(&raster);
        let uri = cloud::uri::join(&task.out, name);
        cog::write_cog(store, &uri, &raster, &opts)?;
        tracing::info!(uri = %uri, valid = st.valid, mean = ?st.mean, "wrote");
        if name == NDVI_DIFF
            && let Some(q) = &task.quicklook
        {
            let png = cloud::uri::join(&task.out, QUICKLOOK);
            write_quicklook(store, &png, &raster, q)?;
            quicklook = Some(png);
        }
        out.push((uri, st));
    }
    let mut it = out.into_iter();
    let mut next = || {
        it.next()
            .ok_or_else(|| NdviError::InvalidParameter("merge produced fewer outputs".into()))
    };
    let (ndvi_before, stats_before) = next()?;
    let (ndvi_after, stats_after) = next()?;
    let (ndvi_diff, stats_diff) = next()?;
    Ok(MergeOutput {
        ndvi_before,
        ndvi_after,
        ndvi_diff,
        quicklook,
        stats_before,
        stats_after,
        stats_diff,
    })
}

/// A request for the NDVI change of one tile between two dates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TileRequest {
    /// MGRS tile (needed when a scene is given by date).
    pub tile: Option<MgrsTile>,
    pub before: SceneRef,
    pub after: SceneRef,
    /// Archive root, default `s3://sentinel-cogs/sentinel-s2-l2a-cogs`.
    pub root: String,
    /// Output root.
    pub out: String,
    /// Window (task) size in pixels, rounded up to whole COG blocks.
    pub window: u64,
    /// SCL classes to mask (empty: none).
    #[serde(default)]
    pub scl_mask: Vec<u8>,
    /// DN offsets overriding the scenes' metadata.
    #[serde(default)]
    pub before_offset_dn: Option<f64>,
    #[serde(default)]
    pub after_offset_dn: Option<f64>,
    /// Where STAC items' band files are.
    #[serde(default)]
    pub assets: AssetLocation,
    /// Block size of the product COGs.
    #[serde(default = "default_blocksize")]
    pub blocksize: u32,
    /// DEFLATE level of the product COGs (1–12; `None`: [`DEFAULT_LEVEL`]).
    #[serde(default)]
    pub level: Option<i32>,
    /// Write the quicklook PNG.
    #[serde(default)]
    pub quicklook: bool,
}

/// A planned tile run: the resolved scenes, the grid, the window tasks and the merge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TilePlan {
    pub before: SceneBands,
    pub after: SceneBands,
    pub grid: Grid,
    pub windows: Vec<WindowTask>,
    pub merge: MergeTask,
}

/// A window side of at least 1 px.
fn check_window_size(window: u64) -> Result<(), NdviError> {
    if window == 0 {
        return Err(NdviError::InvalidParameter(
            "the window size must be at least 1 px".into(),
        ));
    }
    Ok(())
}

/// Resolves the scenes, checks every band grid (and SCL mapping) and plans the windows.
pub fn plan_tile(store: &Store, request: &TileRequest) -> Result<TilePlan, NdviError> {
    check_window_size(request.window)?;
    let resolve = |r: &SceneRef, offset: Option<f64>| {
        resolve_scene(
            store,
            &request.root,
            request.tile.as_ref(),
            r,
            &ResolveOptions {
                offset_dn: offset,
                assets: request.assets,
            },
        )
    };
    let before = resolve(&request.before, request.before_offset_dn)?;
    let after = resolve(&request.after, request.after_offset_dn)?;
    let quicklook = request.quicklook.then(|| QuicklookOptions {
        subtitle: Some(diff_subtitle(&before, &after)),
        ..QuicklookOptions::default()
    });
    let layout = TileLayout {
        out: request.out.clone(),
        window: request.window,
        scl_mask: request.scl_mask.clone(),
        blocksize: request.blocksize,
        level: request.level,
        quicklook,
    };
    plan_scenes(store, before, after, &layout)
}

/// How a tile of two known scenes is cut and written (see [`plan_scenes`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TileLayout {
    /// Output location of the products.
    pub out: String,
    /// Window side, pixels (at least 1; rounded up to whole blocks).
    pub window: u64,
    /// SCL classes masked out (empty: no mask).
    pub scl_mask: Vec<u8>,
    /// Block size and DEFLATE level of the product COGs.
    pub blocksize: u32,
    pub level: Option<i32>,
    /// The merge's quicklook PNG, if any.
    pub quicklook: Option<QuicklookOptions>,
}

/// Plans a tile whose two scenes are known (resolved, or given band by band): opens every
/// band (and SCL band when masking), checks their grids and dates, and cuts the tile into
/// block-aligned windows covering it once, one window task each, and the merge task.
pub fn plan_scenes(
    store: &Store,
    before: SceneBands,
    after: SceneBands,
    layout: &TileLayout,
) -> Result<TilePlan, NdviError> {
    check_window_size(layout.window)?;
    let (b, a) = rayon::join(
        || SceneReader::open(store, &before, &layout.scl_mask),
        || SceneReader::open(store, &after, &layout.scl_mask),
    );
    let (b, a) = (b?, a?);
    check_dates(&b, &a)?;
    let grid = b.grid();
    let windows = b.red.plan_windows(layout.window);
    check_coverage(&windows, grid.width, grid.height)?;
    let merge = MergeTask {
        out: layout.out.clone(),
        grid: grid.clone(),
        windows: windows.clone(),
        blocksize: layout.blocksize,
        level: layout.level,
        quicklook: layout.quicklook.clone(),
    };
    let windows = windows
        .into_iter()
        .map(|window| WindowTask {
            before: before.clone(),
            after: after.clone(),
            window,
            out: layout.out.clone(),
            scl_mask: layout.scl_mask.clone(),
        })
        .collect();
    Ok(TilePlan {
        before,
        after,
        grid,
        windows,
        merge,
    })
}

fn scene_date(s: &SceneBands) -> Option<String> {
    s.id.as_deref()
        .and_then(|id| id.parse::<crate::scene::SceneId>().ok())
        .map(|id| id.date.to_string())
}

/// Quicklook subtitle of a difference: `2020-02-19 TO 2022-03-21` when both scene dates are
/// known, else `AFTER - BEFORE`.
fn diff_subtitle(before: &SceneBands, after: &SceneBands) -> String {
    match (scene_date(before), scene_date(after)) {
        (Some(b), Some(a)) => format!("{b} TO {a}"),
        _ => "AFTER - BEFORE".to_string(),
    }
}

/// A whole-raster NDVI (one date) or NDVI difference (two dates) written as COGs; the
/// in-process path of `ndvi compute` and `ndvi diff`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductTask {
    /// The scene (`compute`) or the earlier scene (`diff`).
    pub before: SceneBands,
    /// The later scene: with it the product is the difference, without it the NDVI.
    #[serde(default)]
    pub after: Option<SceneBands>,
    /// Output COG: the NDVI (`compute`) or the difference (`diff`).
    pub out: String,
    /// Also write the NDVI of each date (for `diff`).
    #[serde(default)]
    pub ndvi_before: Option<String>,
    #[serde(default)]
    pub ndvi_after: Option<String>,
    /// Quicklook PNG of the output.
    #[serde(default)]
    pub png: Option<String>,
    /// SCL classes to mask (empty: none).
    #[serde(default)]
    pub scl_mask: Vec<u8>,
    /// Processing window in pixels (memory per concurrent window).
    #[serde(default = "default_window")]
    pub window: u64,
    /// Block size of the output COGs.
    #[serde(default = "default_blocksize")]
    pub blocksize: u32,
    /// DEFLATE level of the product COGs (1–12; `None`: [`DEFAULT_LEVEL`]).
    #[serde(default)]
    pub level: Option<i32>,
}

fn default_window() -> u64 {
    DEFAULT_WINDOW
}

/// What a [`ProductTask`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductOutput {
    pub out: String,
    pub stats: Stats,
    #[serde(default)]
    pub ndvi_before: Option<String>,
    #[serde(default)]
    pub ndvi_after: Option<String>,
    #[serde(default)]
    pub png: Option<String>,
}

/// Runs a [`ProductTask`]: windows are read and computed in parallel into whole arrays, then
/// written as COGs.
pub fn run_product(
    store: &Store,
    task: &ProductTask,
    ctx: Option<&Ctx>,
) -> Result<ProductOutput, NdviError> {
    check_window_size(task.window)?;
    let (b, a) = rayon::join(
        || SceneReader::open(store, &task.before, &task.scl_mask),
        || {
            task.after
                .as_ref()
                .map(|s| SceneReader::open(store, s, &task.scl_mask))
                .transpose()
        },
    );
    let (b, a) = (b?, a?);
    if let Some(a) = &a {
        check_dates(&b, a)?;
    }
    let grid = b.grid();
    let shape = (grid.height as usize, grid.width as usize);
    let windows = b.red.plan_windows(task.window);
    let want_before = a.is_none() || task.ndvi_before.is_some();
    let want_after = a.is_some() && task.ndvi_after.is_some();
    let alloc = |want: bool| want.then(|| Mutex::new(Array2::<f32>::from_elem(shape, NODATA)));
    let (full_before, full_after) = (alloc(want_before), alloc(want_after));
    let full_diff = alloc(a.is_some());
    let progress = ctx.map(|c| c.progress("windows", windows.len() as u64));
    windows
        .par_iter()
        .try_for_each(|w| -> Result<(), NdviError> {
            let (c0, r0) = (w.col_off as usize, w.row_off as usize);
            let sl = s![r0..r0 + w.height as usize, c0..c0 + w.width as usize];
            let put = |full: &Option<Mutex<Array2<f32>>>, data: &Array2<f32>| {
                if let Some(m) = full {
                    m.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .slice_mut(sl)
                        .assign(data);
                }
            };
            match &a {
                Some(a) => {
                    let r = compute_window(&b, a, *w)?;
                    put(&full_before, &r.before);
                    put(&full_after, &r.after);
                    put(&full_diff, &r.diff);
                }
                None => {
                    let (v, _) = b.ndvi_window(*w)?;
                    put(&full_before, &v);
                }
            }
            if let Some(p) = &progress {
                p.inc(1);
            }
            Ok(())
        })?;
    if let Some(p) = progress {
        p.finish();
    }
    let raster = |m: Mutex<Array2<f32>>| Raster {
        data: m.into_inner().unwrap_or_else(|p| p.into_inner()),
        transform: grid.transform,
        crs: grid.crs.clone(),
        nodata: Some(NODATA),
    };
    let opts = product_cog_options(task.blocksize, task.level);
    let main = match (full_diff, &task.ndvi_before, full_before) {
        (Some(d), Some(uri), Some(fb)) => {
            cog::write_cog(store, uri, &raster(fb), &opts)?;
            d
        }
        (Some(d), _, _) => d,
        (None, _, Some(fb)) => fb,
        (None, _, None) => {
            return Err(NdviError::InvalidParameter("nothing to compute".into()));
        }
    };
    if let (Some(uri), Some(fa)) = (&task.ndvi_after, full_after) {
        cog::write_cog(store, uri, &raster(fa), &opts)?;
    }
    let main = raster(main);
    let st = stats(&main);
    cog::write_cog(store, &task.out, &main, &opts)?;
    if let Some(png) = &task.png {
        let q = if let Some(after) = &task.after {
            QuicklookOptions {
                subtitle: Some(diff_subtitle(&task.before, after)),
                ..QuicklookOptions::default()
            }
        } else {
            QuicklookOptions {
                title: "NDVI".to_string(),
                subtitle: task.before.id.clone(),
                vmax: Some(1.0),
                ..QuicklookOptions::default()
            }
        };
        write_quicklook(store, png, &main, &q)?;
    }
    Ok(ProductOutput {
        out: task.out.clone(),
        stats: st,
        ndvi_before: task.ndvi_before.clone().filter(|_| a.is_some()),
        ndvi_after: task.ndvi_after.clone().filter(|_| a.is_some()),
        png: task.png.clone(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn coverage_check() {
        let ws = [
            Window::new(0, 0, 4, 3),
            Window::new(4, 0, 2, 3),
            Window::new(0, 3, 6, 1),
        ];
        check_coverage(&ws, 6, 4).unwrap();
        let e = check_coverage(&ws[..2], 6, 4).unwrap_err().to_string();
        assert!(e.contains("cover 18 of the 24 pixels"), "{e}");
        let overlap = [Window::new(0, 0, 6, 4), Window::new(5, 3, 1, 1)];
        assert!(
            check_coverage(&overlap, 6, 4)
                .unwrap_err()
                .to_string()
                .contains("overlap")
        );
        // Overlap and gap of equal area: the areas add up, the overlap is caught.
        let tricky = [Window::new(0, 0, 3, 4), Window::new(2, 0, 3, 4)];
        assert!(
            check_coverage(&tricky, 6, 4)
                .unwrap_err()
                .to_string()
                .contains("overlap")
        );
        // Overlap found even when the windows are not adjacent in row order.
        let rows = [
            Window::new(0, 0, 2, 4),
            Window::new(2, 0, 4, 2),
            Window::new(1, 2, 5, 2),
        ];
        assert!(
            check_coverage(&rows, 6, 4)
                .unwrap_err()
                .to_string()
                .contains("overlap")
        );
        let outside = [Window::new(0, 0, 7, 4)];
        assert!(check_coverage(&outside, 6, 4).is_err());
    }

    #[test]
    fn window_names() {
        let w = Window::new(1024, 2048, 1024, 1024);
        assert_eq!(
            window_uri("s3://b/out", &w, NDVI_DIFF),
            "s3://b/out/windows/r02048_c01024/ndvi_diff.tif"
        );
        assert_eq!(window_task_id(&w), "window-r02048-c01024");
    }
}
