//! The command line of the `ndvi` binary (feature `cli`).

use clap::{Args, Parser, Subcommand};

use super::*;
use crate::compute::DEFAULT_SCL_MASK;
use crate::error::NdviError;
use crate::scene::{
    AssetLocation, MgrsTile, ResolveOptions, SENTINEL_COGS_ROOT, SceneRef, resolve_scene,
};
use crate::tile::{DEFAULT_WINDOW, TileRequest, plan_tile};

/// `ndvi`: NDVI and NDVI change of Sentinel-2 L2A scenes as float32 COGs.
#[derive(Parser, Debug)]
#[command(name = "ndvi", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands (`task` and `batch` are added by the task adapter).
#[derive(Subcommand, Debug)]
pub enum Command {
    /// NDVI of one scene → float32 COG (NaN nodata).
    Compute(ComputeArgs),
    /// NDVI difference (after − before) of two scenes → float32 COG.
    Diff(DiffArgs),
    /// NDVI before, after and difference of an MGRS tile, one task per window, then a merge.
    Tile(TileArgs),
    /// Sentinel-2 product (.SAFE or band folder) → COGs in the sentinel-cogs layout.
    Preprocess(PreprocessArgs),
}

/// Cloud-mask options shared by the subcommands.
#[derive(Args, Debug, Clone)]
pub struct MaskArgs {
    /// Mask pixels whose scene class (SCL, nearest neighbour onto the 10 m grid) is cloud or
    /// shadow.
    #[arg(long)]
    pub mask_scl: bool,
    /// SCL classes masked with --mask-scl.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_SCL_MASK.to_vec())]
    pub scl_classes: Vec<u8>,
}

impl MaskArgs {
    fn classes(&self) -> Vec<u8> {
        if self.mask_scl {
            self.scl_classes.clone()
        } else {
            Vec::new()
        }
    }
}

/// Output layout options shared by `compute` and `diff`.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Output COG (path or URI).
    #[arg(short, long)]
    pub out: String,
    /// Also write a PNG quicklook with a diverging colormap and a legend.
    #[arg(long)]
    pub png: Option<String>,
    /// Processing window in pixels (rounded up to whole input blocks).
    #[arg(long, default_value_t = DEFAULT_WINDOW)]
    pub window: u64,
    /// Block size of the output COG.
    #[arg(long, default_value_t = 512)]
    pub blocksize: u32,
    /// DEFLATE level of the output COGs (1 fastest … 12 smallest; default 1).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=12))]
    pub level: Option<i32>,
}

/// One date given by band URIs or a STAC item.
#[derive(Debug, Clone, Default)]
struct SceneArgs {
    red: Option<String>,
    nir: Option<String>,
    scl: Option<String>,
    stac: Option<String>,
    offset_dn: Option<f64>,
}

impl SceneArgs {
    fn resolve(
        &self,
        ctx: &Ctx,
        which: &str,
        assets: AssetLocation,
    ) -> Result<SceneBands, NdviError> {
        if let Some(item) = &self.stac {
            let mut bands = resolve_scene(
                &ctx.store,
                SENTINEL_COGS_ROOT,
                None,
                &SceneRef::StacItem(item.clone()),
                &ResolveOptions {
                    offset_dn: self.offset_dn,
                    assets,
                },
            )?;
            if let Some(r) = &self.red {
                bands.red = r.clone();
            }
            if let Some(n) = &self.nir {
                bands.nir = n.clone();
            }
            if self.scl.is_some() {
                bands.scl = self.scl.clone();
            }
            return Ok(bands);
        }
        let (Some(red), Some(nir)) = (&self.red, &self.nir) else {
            let scene = match which.trim_end_matches('-') {
                "" => String::new(),
                w => format!("the {w} scene: "),
            };
            return Err(NdviError::InvalidParameter(format!(
                "{scene}give the red and NIR bands (--{which}red and --{which}nir) or a STAC \
                 item (--{which}stac)"
            )));
        };
        let offset = self.offset_dn.unwrap_or_else(|| {
            tracing::info!(
                red = %red,
                "no STAC item and no --{which}offset-dn: assuming DNs without offset (processing \
                 baseline before 04.00, or offset already removed)"
            );
            0.0
        });
        Ok(SceneBands::from_uris(red, nir, self.scl.as_deref(), offset))
    }
}

/// `ndvi compute`.
#[derive(Args, Debug)]
pub struct ComputeArgs {
    /// Red band (Sentinel-2 B04) COG.
    #[arg(long)]
    pub red: Option<String>,
    /// Near-infrared band (Sentinel-2 B08) COG.
    #[arg(long)]
    pub nir: Option<String>,
    /// Scene classification (SCL) COG, for --mask-scl.
    #[arg(long)]
    pub scl: Option<String>,
    /// STAC item of the scene (bands, processing baseline); --red/--nir/--scl override.
    #[arg(long)]
    pub stac: Option<String>,
    /// Take the STAC item's band files from the item's folder instead of their hrefs.
    #[arg(long)]
    pub local_assets: bool,
    /// DN offset of the bands (−1000 for baseline 04.00 DNs), overriding the STAC item.
    #[arg(long, allow_hyphen_values = true)]
    pub offset_dn: Option<f64>,
    #[command(flatten)]
    pub mask: MaskArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn assets(local: bool) -> AssetLocation {
    if local {
        AssetLocation::NextToItem
    } else {
        AssetLocation::Href
    }
}

impl ComputeArgs {
    /// The task this command runs.
    pub fn task(&self, ctx: &Ctx) -> Result<ProductTask, NdviError> {
        let scene = SceneArgs {
            red: self.red.clone(),
            nir: self.nir.clone(),
            scl: self.scl.clone(),
            stac: self.stac.clone(),
            offset_dn: self.offset_dn,
        }
        .resolve(ctx, "", assets(self.local_assets))?;
        Ok(ProductTask {
            before: scene,
            after: None,
            out: self.output.out.clone(),
            ndvi_before: None,
            ndvi_after: None,
            png: self.output.png.clone(),
            scl_mask: self.mask.classes(),
            window: self.output.window,
            blocksize: self.output.blocksize,
            level: self.output.level,
        })
    }
}

/// `ndvi diff`.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// Red band (B04) COG of the earlier scene.
    #[arg(long)]
    pub before_red: Option<String>,
    /// NIR band (B08) COG of the earlier scene.
    #[arg(long)]
    pub before_nir: Option<String>,
    /// Scene classification (SCL) COG of the earlier scene, for --mask-scl.
    #[arg(long)]
    pub before_scl: Option<String>,
    /// STAC item of the earlier scene.
    #[arg(long)]
    pub before_stac: Option<String>,
    /// DN offset of the earlier scene's bands (−1000 for baseline 04.00 DNs), overriding its
    /// metadata.
    #[arg(long, allow_hyphen_values = true)]
    pub before_offset_dn: Option<f64>,
    /// Red band (B04) COG of the later scene.
    #[arg(long)]
    pub after_red: Option<String>,
    /// NIR band (B08) COG of the later scene.
    #[arg(long)]
    pub after_nir: Option<String>,
    /// Scene classification (SCL) COG of the later scene, for --mask-scl.
    #[arg(long)]
    pub after_scl: Option<String>,
    /// STAC item of the later scene.
    #[arg(long)]
    pub after_stac: Option<String>,
    /// DN offset of the later scene's bands (−1000 for baseline 04.00 DNs), overriding its
    /// metadata.
    #[arg(long, allow_hyphen_values = true)]
    pub after_offset_dn: Option<f64>,
    /// Take STAC items' band files from the items' folders instead of their hrefs.
    #[arg(long)]
    pub local_assets: bool,
    /// Also write the earlier scene's NDVI COG here.
    #[arg(long)]
    pub ndvi_before: Option<String>,
    /// Also write the later scene's NDVI COG here.
    #[arg(long)]
    pub ndvi_after: Option<String>,
    #[command(flatten)]
    pub mask: MaskArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl DiffArgs {
    /// The task this command runs.
    pub fn task(&self, ctx: &Ctx) -> Result<ProductTask, NdviError> {
        let a = assets(self.local_assets);
        let before = SceneArgs {
            red: self.before_red.clone(),
            nir: self.before_nir.clone(),
            scl: self.before_scl.clone(),
            stac: self.before_stac.clone(),
            offset_dn: self.before_offset_dn,
        }
        .resolve(ctx, "before-", a)?;
        let after = SceneArgs {
            red: self.after_red.clone(),
            nir: self.after_nir.clone(),
            scl: self.after_scl.clone(),
            stac: self.after_stac.clone(),
            offset_dn: self.after_offset_dn,
        }
        .resolve(ctx, "after-", a)?;
        Ok(ProductTask {
            before,
            after: Some(after),
            out: self.output.out.clone(),
            ndvi_before: self.ndvi_before.clone(),
            ndvi_after: self.ndvi_after.clone(),
            png: self.output.png.clone(),
            scl_mask: self.mask.classes(),
            window: self.output.window,
            blocksize: self.output.blocksize,
            level: self.output.level,
        })
    }
}

/// `ndvi tile`.
#[derive(Args, Debug)]
pub struct TileArgs {
    /// MGRS tile id, e.g. 29RKH (needed when a scene is given by date).
    #[arg(long)]
    pub mgrs: Option<String>,
    /// Earlier scene: a date (YYYY-MM-DD), a scene id (S2A_29RKH_20200219_0_L2A) or a STAC
    /// item URI.
    #[arg(long)]
    pub before: String,
    /// Later scene, as --before.
    #[arg(long)]
    pub after: String,
    /// Output root (path or URI): ndvi_before.tif, ndvi_after.tif, ndvi_diff.tif,
    /// ndvi_diff.png, windows/, status/.
    #[arg(short, long)]
    pub out: String,
    /// Window (task) size in pixels, rounded up to whole COG blocks.
    #[arg(long, default_value_t = DEFAULT_WINDOW)]
    pub window: u64,
    /// Archive root in the sentinel-cogs layout.
    #[arg(long, default_value = SENTINEL_COGS_ROOT)]
    pub root: String,
    #[command(flatten)]
    pub mask: MaskArgs,
    /// DN offset of the earlier scene's bands (−1000 for baseline 04.00 DNs), overriding its
    /// metadata.
    #[arg(long, allow_hyphen_values = true)]
    pub before_offset_dn: Option<f64>,
    /// DN offset of the later scene's bands (−1000 for baseline 04.00 DNs), overriding its
    /// metadata.
    #[arg(long, allow_hyphen_values = true)]
    pub after_offset_dn: Option<f64>,
    /// Take STAC items' band files from the items' folders instead of their hrefs.
    #[arg(long)]
    pub local_assets: bool,
    /// Block size of the product COGs.
    #[arg(long, default_value_t = 512)]
    pub blocksize: u32,
    /// DEFLATE level of the product COGs (1 fastest … 12 smallest; default 1).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=12))]
    pub level: Option<i32>,
    /// Do not write the PNG quicklook.
    #[arg(long)]
    pub no_quicklook: bool,
    /// Window tasks run at once (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
    /// Run window tasks again even if an earlier run finished them.
    #[arg(long)]
    pub force: bool,
    /// Only write the task manifest (tasks/windows.jsonl) and merge task (tasks/merge.json).
    #[arg(long)]
    pub plan_only: bool,
}

impl TileArgs {
    /// The tile request this command makes.
    pub fn request(&self) -> Result<TileRequest, NdviError> {
        let tile: Option<MgrsTile> = self.mgrs.as_deref().map(str::parse).transpose()?;
        Ok(TileRequest {
            tile,
            before: self.before.parse()?,
            after: self.after.parse()?,
            root: self.root.clone(),
            out: self.out.clone(),
            window: self.window,
            scl_mask: self.mask.classes(),
            before_offset_dn: self.before_offset_dn,
            after_offset_dn: self.after_offset_dn,
            assets: assets(self.local_assets),
            blocksize: self.blocksize,
            level: self.level,
            quicklook: !self.no_quicklook,
        })
    }
}

/// `ndvi preprocess`.
#[derive(Args, Debug)]
pub struct PreprocessArgs {
    /// Product folder: a .SAFE directory or a folder of B04/B08/SCL band files.
    pub product: String,
    /// Output archive root (sentinel-cogs layout).
    #[arg(short, long)]
    pub out: String,
    /// Without Sen2Cor, convert a Level-1C product's top-of-atmosphere bands anyway.
    #[arg(long)]
    pub allow_l1c: bool,
    /// Sen2Cor's L2A_Process (default: looked up on PATH).
    #[arg(long)]
    pub sen2cor: Option<String>,
    /// Block size of the COGs.
    #[arg(long, default_value_t = 1024)]
    pub blocksize: u32,
}

impl cloud::StageCli for Cli {
    type Stage = NdviStage;

    fn run(self, ctx: &Ctx) -> Result<(), TaskError> {
        match self.command {
            Command::Compute(a) => {
                let task = a.task(ctx)?;
                Params::Product(task.clone()).validate()?;
                print_json(&run_product(&ctx.store, &task, Some(ctx))?)
            }
            Command::Diff(a) => {
                let task = a.task(ctx)?;
                Params::Product(task.clone()).validate()?;
                print_json(&run_product(&ctx.store, &task, Some(ctx))?)
            }
            Command::Tile(a) => {
                let request = a.request()?;
                let plan = plan_tile(&ctx.store, &request)?;
                if a.plan_only {
                    let (windows, merge) = write_plan(&ctx.store, &plan)?;
                    return print_json(&serde_json::json!({
                        "windows_manifest": windows,
                        "merge_task": merge,
                        "window_tasks": plan.windows.len(),
                    }));
                }
                let report = run_tile_plan(ctx, &plan, a.jobs, a.force)?;
                print_json(&report)
            }
            Command::Preprocess(a) => {
                let task = PreprocessTask {
                    product: a.product,
                    out: a.out,
                    allow_l1c: a.allow_l1c,
                    sen2cor: a.sen2cor,
                    blocksize: a.blocksize,
                };
                Params::Preprocess(task.clone()).validate()?;
                print_json(&run_preprocess(&ctx.store, &task)?)
            }
        }
    }
}

fn print_json<T: Serialize>(v: &T) -> Result<(), TaskError> {
    let s = serde_json::to_string_pretty(v)
        .map_err(|e| TaskError::internal(format!("cannot print the result: {e}")))?;
    println!("{s}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "ndvi",
            "tile",
            "--mgrs",
            "29RKH",
            "--before",
            "2020-02-19",
            "--after",
            "S2B_29RKH_20200321_0_L2A",
            "-o",
            "s3://b/out",
            "--window",
            "512",
            "--mask-scl",
            "--before-offset-dn",
            "-1000",
        ])
        .unwrap();
        let Command::Tile(t) = cli.command else {
            panic!("not tile")
        };
        let r = t.request().unwrap();
        assert_eq!(r.window, 512);
        assert_eq!(r.scl_mask, DEFAULT_SCL_MASK.to_vec());
        assert_eq!(r.before_offset_dn, Some(-1000.0));
        assert_eq!(r.root, SENTINEL_COGS_ROOT);
        assert!(matches!(r.after, SceneRef::Id(_)));
        assert!(r.quicklook);
    }
}
