//! The `ndvi` pipeline: NDVI of two dates and their difference over one Sentinel-2 tile.
//!
//! 1. `windows`: one `ndvi` window task per tile-aligned window (1024 px by default), each
//!    reading both dates' B04/B08 windows by range requests and writing its NDVI before,
//!    after and difference.
//! 2. `merge`: one task assembles `ndvi_before.tif`, `ndvi_after.tif`, `ndvi_diff.tif`
//!    (float32 COGs) and the `ndvi_diff.png` quicklook.
//!
//! With `--preprocess` ([`NdviProducts`]) a first step, `preprocess`, converts the two
//! products (`.SAFE` folders, Level-1C through Sen2Cor) to COGs in the `sentinel-cogs` layout
//! under an archive root, one task per product (minutes each: the seed ran it on Batch,
//! `--executor preprocess=batch,windows=lambda`); the windows read the archive.
//!
//! Scenes are given as scene references (dates with an MGRS tile, scene ids, STAC items;
//! `ndvi::plan_tile`), as explicit band URIs, or found by place and time in a STAC API
//! ([`NdviSearch`]: the least-cloudy scene of each tile in each period; every tile found in
//! both periods is run, its products under `OUT/<tile>/`, its task ids prefixed with it).

use cloud::Store;
use ndvi::NdviStage;
use ndvi::scene::SceneBands;
use ndvi::tile::{TilePlan, TileRequest};
use serde_json::Value;

use super::{Pipeline, Product, Results, outcome};
use crate::error::DriverError;
use crate::exec::StepOutcome;
use crate::plan::{Step, TaskSpec};
use crate::stage::StageKind;

/// What the two dates are.
#[derive(Debug, Clone)]
pub enum NdviInput {
    /// Scene references resolved by the `ndvi` crate.
    Request(TileRequest),
    /// Explicit bands of each date, with the output settings.
    Bands {
        before: SceneBands,
        after: SceneBands,
        out: String,
        window: u64,
        blocksize: u32,
        quicklook: bool,
    },
    /// Scenes found by place and time in a STAC API.
    Search(NdviSearch),
    /// Two Sentinel-2 products, preprocessed first (step `preprocess`).
    Products(NdviProducts),
}

/// Two Sentinel-2 products to preprocess, then compare.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NdviProducts {
    /// The earlier and later products: `.SAFE` folders (or folders of `B04`/`B08`/`SCL`
    /// GeoTIFFs named by scene id), local or on S3.
    pub before: String,
    pub after: String,
    /// Where the COGs and STAC items go, in the `sentinel-cogs` layout (default `OUT/archive`).
    pub archive: String,
    /// Convert Level-1C top-of-atmosphere bands when Sen2Cor is not installed.
    pub allow_l1c: bool,
    /// Sen2Cor's `L2A_Process`, when not on `PATH`.
    pub sen2cor: Option<String>,
    pub out: String,
    pub window: u64,
    pub blocksize: u32,
    pub quicklook: bool,
    /// Mask the SCL classes of [`ndvi::DEFAULT_SCL_MASK`] (cloud, shadow, cirrus).
    pub mask_scl: bool,
}

impl NdviProducts {
    /// The preprocessing task of `product`.
    fn task(&self, product: &str) -> ndvi::preprocess::PreprocessTask {
        ndvi::preprocess::PreprocessTask {
            product: product.to_string(),
            out: self.archive.clone(),
            allow_l1c: self.allow_l1c,
            sen2cor: self.sen2cor.clone(),
            blocksize: 1024,
        }
    }

    /// Checks the products' names (scene ids: one tile) and the tasks, before anything runs.
    fn validate(&self) -> Result<(), DriverError> {
        let id = |product: &str| {
            ndvi::preprocess::scene_id_of_product(cloud::uri::file_name(product)).ok_or_else(|| {
                DriverError::Invalid(format!(
                    "ndvi: {product} is not named as a Sentinel-2 product \
                         (S2A_MSIL2A_…_T29RKH_….SAFE) or a scene id (S2A_29RKH_20200219_0_L2A)"
                ))
            })
        };
        let (b, a) = (id(&self.before)?, id(&self.after)?);
        if b.tile != a.tile {
            return Err(DriverError::Invalid(format!(
                "ndvi: the products are of two tiles ({} and {}): give two products of one tile",
                b.tile, a.tile
            )));
        }
        for p in [&self.before, &self.after] {
            ndvi::stage::Params::Preprocess(self.task(p))
                .validate()
                .map_err(|e| DriverError::Invalid(format!("ndvi: {}", e.message)))?;
        }
        Ok(())
    }
}

/// Sentinel-2 scenes by place and time: the tiles of `request.area`, the least-cloudy scene
/// of each in each period.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NdviSearch {
    /// Root of the STAC API (`ndvi::search::EARTH_SEARCH` by default).
    pub stac: String,
    pub request: ndvi::search::SearchRequest,
    /// Output root: each tile's products go to `OUT/<tile>/`.
    pub out: String,
    pub window: u64,
    pub blocksize: u32,
    pub quicklook: bool,
    /// Mask the SCL classes of [`ndvi::DEFAULT_SCL_MASK`] (cloud, shadow, cirrus).
    pub mask_scl: bool,
}

/// The scenes a search chose for one tile.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChosenScenes {
    pub tile: String,
    pub before: String,
    pub before_cloud: f64,
    pub after: String,
    pub after_cloud: f64,
}

/// Settings of an NDVI run.
#[derive(Debug, Clone)]
pub struct NdviPipeline {
    pub input: NdviInput,
    /// The planned tiles: (task id prefix, plan); the prefix is empty for one tile.
    plans: Vec<(String, TilePlan)>,
    /// What a search chose, and the tiles it left out (with why).
    chosen: Vec<ChosenScenes>,
    left_out: Vec<String>,
}

impl NdviPipeline {
    pub fn new(input: NdviInput) -> NdviPipeline {
        NdviPipeline {
            input,
            plans: Vec::new(),
            chosen: Vec::new(),
            left_out: Vec::new(),
        }
    }

    /// Searches both periods, chooses each tile's scenes and plans every tile found in both.
    fn plan_search(&mut self, store: &Store, s: &NdviSearch) -> Result<(), DriverError> {
        use ndvi::search::{candidate, pick};
        let plan_err = |e: ndvi::NdviError| DriverError::plan("ndvi", e);
        s.request.validate().map_err(plan_err)?;
        let mut chosen = Vec::new();
        for period in [&s.request.before, &s.request.after] {
            let found = crate::stac_search::search(&s.stac, &s.request.body(period))?;
            let mut candidates = Vec::new();
            for item in &found {
                match candidate(item) {
                    Ok(c) => candidates.push(c),
                    Err(e) => tracing::warn!("STAC search: item left out: {e}"),
                }
            }
            chosen.push(pick(
                &candidates,
                period,
                s.request.max_cloud,
                &s.request.area,
            ));
        }
        let (before, after) = (&chosen[0], &chosen[1]);
        for (tile, b) in before {
            let Some(a) = after.get(tile) else {
                self.left_out
                    .push(format!("{tile}: no scene in the after period"));
                continue;
            };
            let href = |c: &ndvi::search::Candidate| -> Result<String, DriverError> {
                c.item["links"]
                    .as_array()
                    .and_then(|l| l.iter().find(|l| l["rel"] == "self"))
                    .and_then(|l| l["href"].as_str())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        DriverError::Invalid(format!(
                            "ndvi: STAC item {} has no self link to read it from",
                            c.id
                        ))
                    })
            };
            let request = TileRequest {
                tile: Some(*tile),
                before: ndvi::SceneRef::StacItem(href(b)?),
                after: ndvi::SceneRef::StacItem(href(a)?),
                root: ndvi::scene::SENTINEL_COGS_ROOT.to_string(),
                out: cloud::uri::join(&s.out, &tile.to_string()),
                window: s.window,
                scl_mask: if s.mask_scl {
                    ndvi::DEFAULT_SCL_MASK.to_vec()
                } else {
                    Vec::new()
                },
                before_offset_dn: None,
                after_offset_dn: None,
                assets: Default::default(),
                blocksize: s.blocksize,
                level: None,
                quicklook: s.quicklook,
            };
            let plan = ndvi::plan_tile(store, &request).map_err(plan_err)?;
            self.plans.push((format!("{tile}-"), plan));
            self.chosen.push(ChosenScenes {
                tile: tile.to_string(),
                before: b.id.clone(),
                before_cloud: b.cloud,
                after: a.id.clone(),
                after_cloud: a.cloud,
            });
        }
        for tile in after.keys().filter(|t| !before.contains_key(t)) {
            self.left_out
                .push(format!("{tile}: no scene in the before period"));
        }
        if self.plans.is_empty() {
            return Err(DriverError::Invalid(format!(
                "ndvi: the STAC search at {} found no tile with a scene at most {} % cloudy in \
                 both periods{}",
                s.stac,
                s.request.max_cloud,
                if self.left_out.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", self.left_out.join("; "))
                }
            )));
        }
        Ok(())
    }
}

/// The tile request over what the `preprocess` step wrote: the two scenes' STAC items.
fn preprocessed_request(
    p: &NdviProducts,
    preprocess: &StepOutcome,
) -> Result<TileRequest, DriverError> {
    let outputs: Vec<ndvi::stage::Output> = preprocess.outputs()?;
    let items: Vec<&ndvi::preprocess::PreprocessOutput> = outputs
        .iter()
        .filter_map(|o| match o {
            ndvi::stage::Output::Preprocess(o) => Some(o),
            _ => None,
        })
        .collect();
    let [before, after] = items[..] else {
        return Err(DriverError::Invalid(format!(
            "ndvi: the preprocess step returned {} scene(s), not the two products'",
            items.len()
        )));
    };
    for o in [before, after] {
        if o.level != "L2A" {
            tracing::warn!(
                scene = %o.scene_id,
                "top-of-atmosphere (Level-1C) reflectance: {}", o.sen2cor
            );
        }
    }
    // Level-1C products converted without Sen2Cor have no scene classification.
    let has_scl = [before, after].iter().all(|o| o.assets.contains_key("SCL"));
    if p.mask_scl && !has_scl {
        tracing::warn!("a scene has no SCL band: clouds are not masked");
    }
    Ok(TileRequest {
        tile: None,
        before: ndvi::SceneRef::StacItem(before.stac_item.clone()),
        after: ndvi::SceneRef::StacItem(after.stac_item.clone()),
        root: p.archive.clone(),
        out: p.out.clone(),
        window: p.window,
        scl_mask: if p.mask_scl && has_scl {
            ndvi::DEFAULT_SCL_MASK.to_vec()
        } else {
            Vec::new()
        },
        before_offset_dn: None,
        after_offset_dn: None,
        assets: Default::default(),
        blocksize: p.blocksize,
        level: None,
        quicklook: p.quicklook,
    })
}

/// Plans a tile from explicit bands (no SCL mask; a quicklook without subtitle).
pub fn plan_bands(
    store: &Store,
    before: &SceneBands,
    after: &SceneBands,
    out: &str,
    window: u64,
    blocksize: u32,
    quicklook: bool,
) -> Result<TilePlan, DriverError> {
    let layout = ndvi::tile::TileLayout {
        out: out.to_string(),
        window,
        scl_mask: Vec::new(),
        blocksize,
        level: None,
        quicklook: quicklook.then(ndvi::quicklook::QuicklookOptions::default),
    };
    ndvi::tile::plan_scenes(store, before.clone(), after.clone(), &layout)
        .map_err(|e| DriverError::plan("ndvi", e))
}

impl Pipeline for NdviPipeline {
    fn name(&self) -> &'static str {
        "ndvi"
    }

    fn steps(&self) -> Vec<&'static str> {
        match self.input {
            NdviInput::Products(_) => vec!["preprocess", "windows", "merge"],
            _ => vec!["windows", "merge"],
        }
    }

    fn describe(&self) -> Value {
        match &self.input {
            NdviInput::Request(r) => serde_json::json!({ "request": r }),
            NdviInput::Search(s) => serde_json::json!({ "search": s }),
            NdviInput::Products(p) => serde_json::json!({ "products": p }),
            NdviInput::Bands {
                before,
                after,
                out,
                window,
                blocksize,
                quicklook,
            } => serde_json::json!({
                "before": before, "after": after, "out": out, "window": window,
                "blocksize": blocksize, "quicklook": quicklook
            }),
        }
    }

    fn validate(&self) -> Result<(), DriverError> {
        let invalid = |e: cloud::TaskError| DriverError::Invalid(format!("ndvi: {}", e.message));
        let (window, blocksize, level) = match &self.input {
            NdviInput::Request(r) => (r.window, r.blocksize, r.level),
            NdviInput::Search(s) => {
                s.request
                    .validate()
                    .map_err(|e| DriverError::Invalid(format!("ndvi: {e}")))?;
                (s.window, s.blocksize, None)
            }
            NdviInput::Products(p) => {
                p.validate()?;
                (p.window, p.blocksize, None)
            }
            NdviInput::Bands {
                window, blocksize, ..
            } => (*window, *blocksize, None),
        };
        cloud::validate::count("window", window, 16..=ndvi::stage::MAX_WINDOW_SIDE)
            .map_err(invalid)?;
        ndvi::stage::validate_cog(blocksize, level).map_err(invalid)
    }

    fn plan_next(
        &mut self,
        store: &Store,
        done: &[StepOutcome],
    ) -> Result<Option<Step>, DriverError> {
        // With products to preprocess, the windows and merge come one step later.
        let first = usize::from(matches!(self.input, NdviInput::Products(_)));
        if let (NdviInput::Products(p), 0) = (&self.input, done.len()) {
            self.validate()?;
            let tasks = [
                ("preprocess-before", &p.before),
                ("preprocess-after", &p.after),
            ]
            .into_iter()
            .map(|(id, product)| {
                TaskSpec::new::<NdviStage>(id, &ndvi::stage::Params::Preprocess(p.task(product)))
            })
            .collect::<Result<Vec<_>, _>>()?;
            return Ok(Some(Step::new("preprocess", StageKind::Ndvi, tasks)?));
        }
        match done.len() - first.min(done.len()) {
            0 => {
                if first == 0 {
                    self.validate()?;
                }
                (self.plans, self.chosen, self.left_out) = (Vec::new(), Vec::new(), Vec::new());
                let input = self.input.clone();
                match &input {
                    NdviInput::Request(r) => {
                        let plan =
                            ndvi::plan_tile(store, r).map_err(|e| DriverError::plan("ndvi", e))?;
                        self.plans.push((String::new(), plan));
                    }
                    NdviInput::Bands {
                        before,
                        after,
                        out,
                        window,
                        blocksize,
                        quicklook,
                    } => {
                        let plan =
                            plan_bands(store, before, after, out, *window, *blocksize, *quicklook)?;
                        self.plans.push((String::new(), plan));
                    }
                    NdviInput::Search(s) => self.plan_search(store, s)?,
                    NdviInput::Products(p) => {
                        let request =
                            preprocessed_request(p, outcome("ndvi", done, "preprocess")?)?;
                        let plan = ndvi::plan_tile(store, &request)
                            .map_err(|e| DriverError::plan("ndvi", e))?;
                        self.plans.push((String::new(), plan));
                    }
                }
                let mut tasks = Vec::new();
                for (prefix, plan) in &self.plans {
                    for t in plan.window_tasks() {
                        tasks.push(TaskSpec::new::<NdviStage>(
                            &format!("{prefix}{}", t.id),
                            &t.params,
                        )?);
                    }
                }
                Ok(Some(Step::new("windows", StageKind::Ndvi, tasks)?))
            }
            1 => {
                if self.plans.is_empty() {
                    return Err(DriverError::Invalid("ndvi: not planned".into()));
                }
                let tasks = self
                    .plans
                    .iter()
                    .map(|(prefix, plan)| {
                        let t = plan.merge_task();
                        TaskSpec::new::<NdviStage>(&format!("{prefix}{}", t.id), &t.params)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(Step::new("merge", StageKind::Ndvi, tasks)?))
            }
            _ => Ok(None),
        }
    }

    fn results(&self, _store: &Store, done: &[StepOutcome]) -> Result<Results, DriverError> {
        let out: Vec<ndvi::stage::Output> = outcome("ndvi", done, "merge")?.outputs()?;
        let merges: Vec<_> = out
            .into_iter()
            .filter_map(|o| match o {
                ndvi::stage::Output::Merge(m) => Some(m),
                _ => None,
            })
            .collect();
        if merges.is_empty() {
            return Err(DriverError::Invalid(
                "ndvi: the merge task returned no merge output".into(),
            ));
        }
        let mut products = Vec::new();
        for m in &merges {
            products.push(Product::new(&m.ndvi_before, "NDVI of the earlier date"));
            products.push(Product::new(&m.ndvi_after, "NDVI of the later date"));
            products.push(Product::new(
                &m.ndvi_diff,
                "NDVI difference, later − earlier",
            ));
            if let Some(q) = &m.quicklook {
                products.push(Product::new(q, "quicklook of the difference"));
            }
        }
        let windows = outcome("ndvi", done, "windows")?.records.len();
        let summary = match &merges[..] {
            [m] if self.chosen.is_empty() => serde_json::json!({
                "windows": windows,
                "stats_before": m.stats_before,
                "stats_after": m.stats_after,
                "stats_diff": m.stats_diff,
            }),
            _ => serde_json::json!({
                "windows": windows,
                "tiles": self.chosen,
                "left_out": self.left_out,
                "stats_diff": merges.iter().map(|m| &m.stats_diff).collect::<Vec<_>>(),
            }),
        };
        Ok(Results { products, summary })
    }
}
