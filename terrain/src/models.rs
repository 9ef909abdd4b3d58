//! The terrain models of one partition: noise filtering, ground classification, DEM, DSM,
//! CHM, FCC, slope and aspect, computed over core and buffer points and cropped to the core.
//!
//! Grids are snapped to multiples of the resolution. The work grid covers every point plus
//! a margin (the IDW reach and one cell for the 3×3 windows of slope, aspect and FCC), so the
//! cells of the core grid see the same neighbourhood in a partition as in the whole tile:
//! per-partition rasters mosaic into the whole-tile result without seams when the buffer is
//! wide enough (see [`crate::smrf`] for SMRF's requirement, 2·window + 3·cell).

use std::collections::BTreeMap;

use cog::{Crs, Raster};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::derivatives::{AspectOptions, SlopeOptions, aspect, slope};
use crate::error::{Result, TerrainError};
use crate::grid::{Bounds, Grid, check_resolution};
use crate::gridding::{IdwParams, idw, max_z, tin};
use crate::noise::{ElmParams, OutlierParams, elm, outliers};
use crate::points::{CLASS_GROUND, CLASS_LOW_NOISE, CLASS_OTHER, PointCloud};
use crate::products::{NODATA, Product, chm, crop, fcc, from_raster, to_raster};
use crate::smrf::{SmrfParams, candidates, smrf};

/// LAS class of high noise (LAS 1.4), dropped from the DSM like low noise.
pub const CLASS_HIGH_NOISE: u8 = 18;

/// Default canopy height threshold of the FCC, m (Korhonen et al. 2011; lidR's
/// `pzabove2`).
pub const DEFAULT_FCC_HEIGHT: f64 = 2.0;

/// Where the ground points come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroundSource {
    /// Classify with SMRF.
    #[default]
    Smrf,
    /// Use the points already classified as ground (class 2) in the file.
    Existing,
}

/// How the DEM is interpolated from the ground points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DemMethod {
    /// PDAL `writers.gdal` IDW (power 1, radius resolution·√2).
    #[default]
    Idw,
    /// Linear interpolation on the Delaunay TIN.
    Tin,
}

/// Everything that decides the models of a partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelOptions {
    /// Cell size of every output, CRS units (m).
    pub resolution: f64,
    /// Products to compute.
    pub products: Vec<Product>,
    /// Ground from SMRF or from the file's classes.
    pub ground: GroundSource,
    pub smrf: SmrfParams,
    /// Extended-local-minimum noise filter (off unless given).
    pub elm: Option<ElmParams>,
    /// Outlier filter before ground classification (off unless given): flagged points
    /// become class 7, which SMRF ignores.
    pub outlier: Option<OutlierParams>,
    /// Outliers left out of the surface models (DSM, CHM, FCC) only: isolated returns such
    /// as birds and air points (off unless given; their classes are not changed). Off by
    /// default because PDAL's statistical threshold is a statistic of the whole task: a
    /// partition and the whole tile would flag different points near a seam.
    pub surface_outliers: Option<OutlierParams>,
    /// Height above the ground from which a first return counts as canopy in the FCC, m.
    pub fcc_height: f64,
    pub dem_method: DemMethod,
    /// IDW settings of the DEM (and the radius of the DSM).
    pub idw: IdwParams,
    /// Longest TIN edge kept, CRS units (`None`: no limit).
    pub tin_max_edge: Option<f64>,
    /// Slope settings (units, scale, algorithm); edges are always computed (the work grid
    /// extends past the core).
    pub slope: SlopeOptions,
    /// Aspect settings.
    pub aspect: AspectOptions,
    /// Crop to this box instead of the bounds of the non-withheld points.
    pub core: Option<Bounds>,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            resolution: 1.0,
            products: Product::ALL.to_vec(),
            ground: GroundSource::Smrf,
            smrf: SmrfParams::default(),
            elm: None,
            outlier: None,
            surface_outliers: None,
            fcc_height: DEFAULT_FCC_HEIGHT,
            dem_method: DemMethod::Idw,
            idw: IdwParams::default(),
            tin_max_edge: None,
            slope: SlopeOptions::default(),
            aspect: AspectOptions {
                compute_edges: true,
                ..Default::default()
            },
            core: None,
        }
    }
}

impl ModelOptions {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        check_resolution(self.resolution, "resolution")?;
        if self.products.is_empty() {
            return Err(TerrainError::param("no product asked for"));
        }
        for (i, p) in self.products.iter().enumerate() {
            if self.products[..i].contains(p) {
                return Err(TerrainError::param(format!(
                    "product {} is asked for twice",
                    p.name()
                )));
            }
        }
        if self.ground == GroundSource::Smrf {
            self.smrf.validate()?;
        }
        if !(self.idw.power.is_finite() && self.idw.power > 0.0) {
            return Err(TerrainError::param(format!(
                "IDW power must be > 0, got {}",
                self.idw.power
            )));
        }
        if let Some(r) = self.idw.radius {
            check_resolution(r, "IDW radius")?;
        }
        if let Some(m) = self.tin_max_edge {
            check_resolution(m, "TIN max edge")?;
        }
        if !(self.slope.scale.is_finite() && self.slope.scale > 0.0) {
            return Err(TerrainError::param(format!(
                "slope scale must be > 0, got {}",
                self.slope.scale
            )));
        }
        if let Some(c) = &self.core
            && !c.is_valid()
        {
            return Err(TerrainError::param(format!("invalid core bounds {c:?}")));
        }
        Ok(())
    }
}

/// Point counts and notes of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelStats {
    pub points: u64,
    /// Non-withheld points.
    pub core_points: u64,
    /// Withheld (buffer) points.
    pub buffer_points: u64,
    /// Points flagged by the noise filters.
    pub noise_points: u64,
    /// Points SMRF classified (last/only returns outside ignored classes).
    pub smrf_candidates: u64,
    pub ground_points: u64,
    /// Points used for the DSM.
    pub dsm_points: u64,
    /// Points the surface outlier filter left out of the DSM, CHM and FCC.
    #[serde(default)]
    pub surface_outliers: u64,
    /// Things a user should know (e.g. no ground point: DEM-based outputs are all nodata).
    pub warnings: Vec<String>,
}

/// The models of a partition.
#[derive(Debug, Clone)]
pub struct Models {
    /// The output grid (the snapped core bounds).
    pub grid: Grid,
    /// Float32 rasters, nodata −9999, on `grid`.
    pub rasters: BTreeMap<Product, Raster<f32>>,
    /// The DEM before conversion to float32 (on `grid`), when computed.
    pub dem_f64: Option<Array2<f64>>,
    /// Per point (file order): the class the point ends with (2 ground, 1 other among SMRF
    /// candidates, 7 noise, unchanged otherwise).
    pub classes: Vec<u8>,
    pub stats: ModelStats,
}

/// Noise flags (file order) from the configured filters.
pub fn noise_flags(cloud: &PointCloud, opts: &ModelOptions) -> Result<Vec<bool>> {
    let mut noise = vec![false; cloud.len()];
    let all = vec![true; cloud.len()];
    if let Some(p) = &opts.elm {
        for (n, f) in noise.iter_mut().zip(elm(cloud, &all, p)?) {
            *n |= f;
        }
    }
    if let Some(p) = &opts.outlier {
        for (n, f) in noise.iter_mut().zip(outliers(cloud, &all, p)?) {
            *n |= f;
        }
    }
    Ok(noise)
}

/// Ground flags and final classes of `cloud` (any order), as `terrain ground` writes them:
/// noise → 7; SMRF candidates → 2 (ground) or 1 (other), or only ground → 2 when
/// `preserve_classes`; every other point keeps its class.
pub fn classify(
    cloud: &PointCloud,
    opts: &ModelOptions,
    preserve_classes: bool,
    stats: &mut ModelStats,
) -> Result<(Vec<bool>, Vec<u8>)> {
    let noise = noise_flags(cloud, opts)?;
    stats.noise_points = noise.iter().filter(|&&n| n).count() as u64;
    let mut classes = cloud.class.clone();
    for (c, &n) in classes.iter_mut().zip(&noise) {
        if n {
            *c = CLASS_LOW_NOISE;
        }
    }
    let ground = match opts.ground {
        GroundSource::Existing => cloud
            .class
            .iter()
            .zip(&noise)
            .map(|(&c, &n)| c == CLASS_GROUND && !n)
            .collect::<Vec<bool>>(),
        GroundSource::Smrf => {
            let cand = candidates(cloud, &opts.smrf, Some(&noise));
            let ncand = cand.iter().filter(|&&c| c).count();
            stats.smrf_candidates = ncand as u64;
            if ncand == 0 {
                stats.warnings.push(
                    "no SMRF candidate (last/only return outside the ignored classes): no ground"
                        .to_string(),
                );
                vec![false; cloud.len()]
            } else {
                let r = smrf(cloud, cand, &opts.smrf)?;
                for ((c, &g), &cand) in classes.iter_mut().zip(&r.ground).zip(&r.candidate) {
                    if g {
                        *c = CLASS_GROUND;
                    } else if cand && !preserve_classes {
                        *c = CLASS_OTHER;
                    }
                }
                r.ground
            }
        }
    };
    stats.ground_points = ground.iter().filter(|&&g| g).count() as u64;
    if stats.ground_points == 0 {
        stats.warnings.push(
            "no ground point: the DEM and the products derived from it are all nodata".into(),
        );
    }
    Ok((ground, classes))
}

/// Computes the models of `cloud` (a partition: non-withheld points are the core). `crs` is
/// the CRS of the coordinates; `progress` is called with a short step name before each step.
pub fn compute_models(
    mut cloud: PointCloud,
    crs: &Crs,
    opts: &ModelOptions,
    uri: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<Models> {
    opts.validate()?;
    if cloud.is_empty() {
        return Err(TerrainError::input(uri, "the file holds no points"));
    }
    if crs.is_geographic() {
        return Err(TerrainError::input(
            uri,
            format!(
                "the points are in a geographic CRS ({}): resolution, radii and SMRF slopes \
                 need metres; reproject the point cloud first",
                crs.epsg
                    .map(|e| format!("EPSG:{e}"))
                    .unwrap_or_else(|| "WKT".into())
            ),
        ));
    }
    if let Some(i) = (0..cloud.len())
        .find(|&i| !(cloud.x[i].is_finite() && cloud.y[i].is_finite() && cloud.z[i].is_finite()))
    {
        return Err(TerrainError::input(
            uri,
            format!("point {i} has a non-finite coordinate"),
        ));
    }
    let res = opts.resolution;
    let mut stats = ModelStats {
        points: cloud.len() as u64,
        ..Default::default()
    };
    stats.buffer_points = (0..cloud.len()).filter(|&i| cloud.is_withheld(i)).count() as u64;
    stats.core_points = stats.points - stats.buffer_points;
    let core = match opts.core {
        Some(c) => c,
        None => cloud
            .bounds_where(|i| !cloud.is_withheld(i))
            .ok_or_else(|| {
                TerrainError::input(
                    uri,
                    "every point is withheld (a buffer point): there is no core to model",
                )
            })?,
    };
    let all = cloud
        .bounds()
        .ok_or_else(|| TerrainError::input(uri, "the file holds no points"))?;
    let out_grid = Grid::snapped(&core, res)?;
    let radius = opts.idw.radius_for(res);
    let margin = ((radius / res + 0.5).floor() as usize).max(1) + 1;
    let work = Grid::snapped(&all.union(&core), res)?.expand(margin)?;
    crate::grid::check_density(uri, cloud.len(), &work, res, "resolution (--resolution)")?;
    tracing::info!(
        points = stats.points,
        buffer = stats.buffer_points,
        cols = out_grid.cols,
        rows = out_grid.rows,
        "terrain models"
    );

    progress("sort");
    let index = cloud.sort_by_cells(&work);

    progress("ground");
    let (ground, classes_sorted) = classify(&cloud, opts, false, &mut stats)?;

    let want = |p: Product| opts.products.contains(&p);
    let need_dem = [
        Product::Dem,
        Product::Chm,
        Product::Fcc,
        Product::Slope,
        Product::Aspect,
    ]
    .into_iter()
    .any(want);
    let need_dsm = [Product::Dsm, Product::Chm, Product::Fcc]
        .into_iter()
        .any(want);

    let dem = if need_dem {
        progress("dem");
        Some(match opts.dem_method {
            DemMethod::Idw => idw(&cloud, &index, &ground, &opts.idw),
            DemMethod::Tin => tin(&cloud, &ground, &work, opts.tin_max_edge),
        })
    } else {
        None
    };
    // First returns outside the noise classes (and, by default, not statistical outliers):
    // the points of the DSM and the FCC.
    let surface: Vec<bool> = if need_dsm {
        let mut s: Vec<bool> = (0..cloud.len())
            .map(|i| {
                cloud.is_first(i)
                    && classes_sorted[i] != CLASS_LOW_NOISE
                    && classes_sorted[i] != CLASS_HIGH_NOISE
            })
            .collect();
        if let Some(p) = &opts.surface_outliers {
            progress("surface outliers");
            let eligible: Vec<bool> = classes_sorted
                .iter()
                .map(|&c| c != CLASS_LOW_NOISE && c != CLASS_HIGH_NOISE)
                .collect();
            let flags = outliers(&cloud, &eligible, p)?;
            stats.surface_outliers = flags.iter().filter(|&&f| f).count() as u64;
            for (s, f) in s.iter_mut().zip(flags) {
                *s &= !f;
            }
        }
        s
    } else {
        Vec::new()
    };
    let dsm = if need_dsm {
        progress("dsm");
        let select = &surface;
        stats.dsm_points = select.iter().filter(|&&s| s).count() as u64;
        if stats.dsm_points == 0 {
            stats
                .warnings
                .push("no first return outside the noise classes: the DSM is all nodata".into());
        }
        Some(max_z(&cloud, &index, select, radius))
    } else {
        None
    };
    drop(index);

    let mut rasters = BTreeMap::new();
    let chm_grid = match (&dsm, &dem) {
        (Some(s), Some(g)) if want(Product::Chm) => Some(chm(s, g)),
        _ => None,
    };
    if want(Product::Fcc)
        && let Some(g) = &dem
    {
        progress("fcc");
        let f = fcc(&cloud, &surface, &work, g, opts.fcc_height);
        rasters.insert(
            Product::Fcc,
            to_raster(&crop(&f, &work, &out_grid)?, &out_grid, crs),
        );
    }
    if want(Product::Chm)
        && let Some(h) = &chm_grid
    {
        rasters.insert(
            Product::Chm,
            to_raster(&crop(h, &work, &out_grid)?, &out_grid, crs),
        );
    }
    if want(Product::Dsm)
        && let Some(s) = &dsm
    {
        rasters.insert(
            Product::Dsm,
            to_raster(&crop(s, &work, &out_grid)?, &out_grid, crs),
        );
    }
    let mut dem_f64 = None;
    if let Some(g) = &dem {
        if want(Product::Slope) || want(Product::Aspect) {
            progress("slope/aspect");
            let dem_work = to_raster(g, &work, crs);
            let s_opts = SlopeOptions {
                compute_edges: true,
                ..opts.slope
            };
            let a_opts = AspectOptions {
                compute_edges: true,
                ..opts.aspect
            };
            if want(Product::Slope) {
                let s = slope(&dem_work, &s_opts)?;
                let a = crop(&from_raster(&s), &work, &out_grid)?;
                rasters.insert(Product::Slope, to_raster(&a, &out_grid, crs));
            }
            if want(Product::Aspect) {
                let a = aspect(&dem_work, &a_opts)?;
                let mut arr = crop(&a.data.mapv(f64::from), &work, &out_grid)?;
                // Source nodata stays nodata even with zero_for_flat (gdaldem would write 0).
                let dem_core = crop(g, &work, &out_grid)?;
                for (v, d) in arr.iter_mut().zip(dem_core.iter()) {
                    if d.is_nan() || (!a_opts.zero_for_flat && *v == NODATA as f64) {
                        *v = f64::NAN;
                    }
                }
                rasters.insert(Product::Aspect, to_raster(&arr, &out_grid, crs));
            }
        }
        let core_dem = crop(g, &work, &out_grid)?;
        if want(Product::Dem) {
            rasters.insert(Product::Dem, to_raster(&core_dem, &out_grid, crs));
        }
        dem_f64 = Some(core_dem);
    }
    // Classes back in file order.
    let mut classes = vec![0u8; cloud.len()];
    for (k, &i) in cloud.index.iter().enumerate() {
        classes[i as usize] = classes_sorted[k];
    }
    Ok(Models {
        grid: out_grid,
        rasters,
        dem_f64,
        classes,
        stats,
    })
}
