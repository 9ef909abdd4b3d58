//! Sentinel-2 → COG preprocessing (serverful, for AWS Batch): converts a product's B04, B08
//! and SCL to COGs laid out like the `sentinel-cogs` archive, with a STAC item, so the NDVI
//! stage can address them by tile and date.
//!
//! Input: a `.SAFE` product folder (Level-2A, or Level-1C which is first run through Sen2Cor's
//! `L2A_Process` when it is on `PATH`) or a folder of band files (`B04.tif`, `B08.tif`,
//! `SCL.tif`). SAFE bands are JPEG 2000, read through GDAL when this crate is built with the
//! `gdal` feature (`cog/gdal`); without it JPEG 2000 is a clear error (GeoTIFF band files
//! convert either way).
//!
//! Output under `out`: `{zone}/{band}/{square}/{yyyy}/{m}/{id}/{B04,B08,SCL}.tif`, the
//! two-band stack `B04_B08.tif` and
//! `{id}.json`, the layout of `s3://sentinel-cogs/sentinel-s2-l2a-cogs`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::NaiveDate;
use cloud::Store;
use cog::geo::GeoKeys;
use cog::{CogWriteOptions, Raster};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::NdviError;
use crate::radiometry::{ProcessingBaseline, S2_BOA_ADD_OFFSET_DN};
use crate::scene::{MgrsTile, NIR, RED, SCL, SceneId};

/// File name of the two-band (B04, B08) stack written next to the bands.
pub const STACK: &str = "B04_B08.tif";

/// Name of Sen2Cor's command-line program.
pub const SEN2COR_PROGRAM: &str = "L2A_Process";

fn default_blocksize() -> u32 {
    1024
}

/// Parameters of a preprocessing task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreprocessTask {
    /// Product folder: a `.SAFE` directory or a folder of band files (path or URI).
    pub product: String,
    /// Output archive root.
    pub out: String,
    /// Convert a Level-1C product's top-of-atmosphere bands when Sen2Cor is not installed.
    #[serde(default)]
    pub allow_l1c: bool,
    /// Sen2Cor's `L2A_Process` to use instead of looking it up on `PATH`.
    #[serde(default)]
    pub sen2cor: Option<String>,
    /// Block size of the COGs (1024, as in `sentinel-cogs`).
    #[serde(default = "default_blocksize")]
    pub blocksize: u32,
}

/// What preprocessing wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreprocessOutput {
    pub scene_id: String,
    /// `L2A` or `L1C`.
    pub level: String,
    #[serde(default)]
    pub processing_baseline: Option<String>,
    /// DN offset of the written bands (reflectance = (DN + offset) / 10000).
    pub offset_dn: f64,
    /// What happened about Sen2Cor.
    pub sen2cor: String,
    /// Written COGs by name (`B04`, `B08`, `SCL`, and the two-band stack `B04_B08`).
    pub assets: BTreeMap<String, String>,
    /// The STAC item describing them.
    pub stac_item: String,
}

/// Band files found in a product.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProductFiles {
    /// `L2A` or `L1C`, from the product or metadata file name.
    pub level: Option<String>,
    /// Metadata XML (`MTD_MSIL2A.xml` / `MTD_MSIL1C.xml`).
    pub metadata: Option<String>,
    pub red: Option<String>,
    pub nir: Option<String>,
    pub scl: Option<String>,
}

/// The token after the last `_` of a band file stem that names a resolution (`10m`).
fn resolution_of(stem: &str) -> Option<u32> {
    stem.rsplit('_')
        .next()
        .and_then(|t| t.strip_suffix('m'))
        .and_then(|t| t.parse().ok())
}

fn is_raster_name(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    l.ends_with(".tif") || l.ends_with(".tiff") || l.ends_with(".jp2")
}

/// Picks the band files of a product from a listing of its files (URIs). Bands are
/// recognised by a `B04` / `B08` / `SCL` token in the file name; of several resolutions the
/// 10 m band (20 m SCL) is taken.
pub fn find_product_files(files: &[String]) -> ProductFiles {
    let mut out = ProductFiles::default();
    let mut best: BTreeMap<&str, (u32, String)> = BTreeMap::new();
    for uri in files {
        let name = cloud::uri::file_name(uri);
        if name.starts_with("MTD_MSIL2A") || name.starts_with("MTD_MSIL1C") {
            if name.ends_with(".xml") {
                out.metadata = Some(uri.clone());
                out.level = Some(if name.contains("L2A") { "L2A" } else { "L1C" }.to_string());
            }
            continue;
        }
        if !is_raster_name(name) || uri.contains("/QI_DATA/") {
            continue;
        }
        let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
        let tokens: Vec<&str> = stem.split('_').collect();
        for (band, want) in [("B04", 10), ("B08", 10), ("SCL", 20)] {
            if tokens.contains(&band) {
                // Distance from the wanted resolution; no resolution token counts as exact.
                let d = resolution_of(stem).map_or(0, |r| r.abs_diff(want));
                let better = best.get(band).is_none_or(|(bd, _)| d < *bd);
                if better {
                    best.insert(band, (d, uri.clone()));
                }
            }
        }
    }
    out.red = best.remove("B04").map(|(_, u)| u);
    out.nir = best.remove("B08").map(|(_, u)| u);
    out.scl = best.remove("SCL").map(|(_, u)| u);
    if out.level.is_none()
        && let Some(l) = files.iter().find_map(|f| {
            if f.contains("MSIL2A") {
                Some("L2A")
            } else if f.contains("MSIL1C") {
                Some("L1C")
            } else {
                None
            }
        })
    {
        out.level = Some(l.to_string());
    }
    out
}

/// The scene id of a product folder name: `S2A_MSIL2A_20200219T112111_N0214_R037_T29RKH_…`
/// → `S2A_29RKH_20200219_0_L2A`; a folder named like a scene id is taken as is.
pub fn scene_id_of_product(name: &str) -> Option<SceneId> {
    let name = name.trim_end_matches('/').trim_end_matches(".SAFE");
    if let Ok(id) = name.parse::<SceneId>() {
        return Some(id);
    }
    let parts: Vec<&str> = name.split('_').collect();
    if parts.len() < 6 || !parts[0].starts_with("S2") {
        return None;
    }
    let level = match parts[1] {
        "MSIL2A" => "L2A",
        "MSIL1C" => "L1C",
        _ => return None,
    };
    let date = NaiveDate::parse_from_str(parts[2].get(..8)?, "%Y%m%d").ok()?;
    let tile: MgrsTile = parts.iter().find_map(|p| {
        p.strip_prefix('T')
            .filter(|t| t.len() == 5)
            .and_then(|t| t.parse().ok())
    })?;
    Some(SceneId {
        satellite: parts[0].to_string(),
        tile,
        date,
        sequence: 0,
        level: level.to_string(),
    })
}

/// What the product metadata XML says about radiometry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProductMetadata {
    pub processing_baseline: Option<ProcessingBaseline>,
    /// `BOA_ADD_OFFSET` (L2A) or `RADIO_ADD_OFFSET` (L1C) of B04 (band_id 3), DN.
    pub red_offset_dn: Option<f64>,
    /// Same for B08 (band_id 7).
    pub nir_offset_dn: Option<f64>,
    /// `BOA_QUANTIFICATION_VALUE` / `QUANTIFICATION_VALUE` (10000).
    pub quantification: Option<f64>,
}

fn tag_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}");
    let start = xml.find(&open)?;
    let rest = &xml[start + open.len()..];
    let gt = rest.find('>')?;
    let body = &rest[gt + 1..];
    let end = body.find('<')?;
    Some(body[..end].trim())
}

fn offset_for_band(xml: &str, tag: &str, band_id: u32) -> Option<f64> {
    let open = format!("<{tag} band_id=\"{band_id}\"");
    let start = xml.find(&open)?;
    let rest = &xml[start + open.len()..];
    let body = &rest[rest.find('>')? + 1..];
    body[..body.find('<')?].trim().parse().ok()
}

/// Parses `MTD_MSIL2A.xml` / `MTD_MSIL1C.xml` for the baseline, offsets and quantification.
pub fn parse_product_metadata(xml: &str) -> ProductMetadata {
    let q = tag_text(xml, "BOA_QUANTIFICATION_VALUE")
        .or_else(|| tag_text(xml, "QUANTIFICATION_VALUE"))
        .and_then(|v| v.parse().ok());
    let off = |id| {
        offset_for_band(xml, "BOA_ADD_OFFSET", id)
            .or_else(|| offset_for_band(xml, "RADIO_ADD_OFFSET", id))
    };
    ProductMetadata {
        processing_baseline: tag_text(xml, "PROCESSING_BASELINE")
            .and_then(ProcessingBaseline::parse),
        red_offset_dn: off(3),
        nir_offset_dn: off(7),
        quantification: q,
    }
}

fn is_jp2(uri: &str) -> bool {
    let l = uri.to_ascii_lowercase();
    l.ends_with(".jp2") || l.ends_with(".j2k")
}

/// Reads band 1 of `uri` whole, with its GeoKeys: GeoTIFF/COG through `cog`, JPEG 2000
/// through GDAL when built with the `gdal` feature (else [`NdviError::Jp2Unsupported`]).
pub fn read_whole<T: cog::Pixel>(
    store: &Store,
    uri: &str,
) -> Result<(Raster<T>, GeoKeys), NdviError> {
    if is_jp2(uri) {
        #[cfg(feature = "gdal")]
        {
            let r = cog::gdal_io::read_band::<T>(uri, 1)?;
            let keys = GeoKeys::from_crs(&r.crs, false);
            return Ok((r, keys));
        }
        #[cfg(not(feature = "gdal"))]
        return Err(NdviError::Jp2Unsupported {
            uri: uri.to_string(),
        });
    }
    let reader = crate::io::open(store, uri)?;
    let keys = reader.info().geokeys.clone();
    Ok((reader.read_band(1)?, keys))
}

/// Looks `program` up in the `PATH`-style list `path_var`; the first executable file.
pub fn find_on_path(program: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path_var = path_var?;
    std::env::split_paths(path_var)
        .map(|d| d.join(program))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs Sen2Cor on a local L1C product; returns the L2A product folder it wrote.
pub fn run_sen2cor(program: &Path, product: &Path, work: &Path) -> Result<PathBuf, NdviError> {
    let failed = |reason: String| NdviError::Sen2CorFailed {
        program: program.display().to_string(),
        product: product.display().to_string(),
        reason,
    };
    tracing::info!(program = %program.display(), product = %product.display(), "running Sen2Cor");
    let output = Command::new(program)
        .arg("--output_dir")
        .arg(work)
        .arg(product)
        .output()
        .map_err(|e| failed(format!("cannot start it: {e}")))?;
    if !output.status.success() {
        let tail: String = String::from_utf8_lossy(&output.stderr)
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join(" | ");
        return Err(failed(format!("exited with {}: {tail}", output.status)));
    }
    let entries = std::fs::read_dir(work).map_err(|e| NdviError::io(work.display(), e))?;
    for e in entries {
        let p = e.map_err(|e| NdviError::io(work.display(), e))?.path();
        let name = p.file_name().and_then(OsStr::to_str).unwrap_or("");
        if p.is_dir() && name.contains("MSIL2A") {
            return Ok(p);
        }
    }
    Err(failed(format!(
        "no *MSIL2A*.SAFE folder appeared in {}",
        work.display()
    )))
}

/// Largest product copied to the local disk for Sen2Cor, bytes (a Level-1C product is
/// 0.5–1 GB).
pub const MAX_PRODUCT_BYTES: u64 = 16 << 30;

/// Copies the product folder `product` (an S3 prefix) under `dir`, keeping its name and
/// layout; returns the local folder. Refuses products over [`MAX_PRODUCT_BYTES`] and
/// object names that would leave the folder.
fn download_product(store: &Store, product: &str, dir: &Path) -> Result<PathBuf, NdviError> {
    let prefix = product_prefix(product);
    let product = product.trim_end_matches('/');
    let objects = store.list(&prefix)?;
    let total: u64 = objects.iter().map(|o| o.size).sum();
    if total > MAX_PRODUCT_BYTES {
        return Err(NdviError::Product {
            product: product.to_string(),
            reason: format!(
                "{total} bytes: more than the {MAX_PRODUCT_BYTES} bytes a product may have"
            ),
        });
    }
    let root = dir.join(cloud::uri::file_name(product));
    for o in &objects {
        let rel = o.uri.strip_prefix(&prefix).unwrap_or("");
        let safe = !rel.is_empty()
            && Path::new(rel)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !safe {
            return Err(NdviError::Product {
                product: product.to_string(),
                reason: format!("object {} is not a file name under the product", o.uri),
            });
        }
        let dst = root.join(rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| NdviError::io(parent.display(), e))?;
        }
        let bytes = store.get_capped(&o.uri, o.size.max(1))?;
        std::fs::write(&dst, &bytes).map_err(|e| NdviError::io(dst.display(), e))?;
    }
    Ok(root)
}

/// The prefix every file of the product folder `product` starts with (`product/`).
pub fn product_prefix(product: &str) -> String {
    format!("{}/", product.trim_end_matches('/'))
}

fn list_files(store: &Store, product: &str) -> Result<Vec<String>, NdviError> {
    Ok(store
        .list(&product_prefix(product))?
        .into_iter()
        .map(|o| o.uri)
        .collect())
}

/// Runs preprocessing with Sen2Cor looked up on the process's `PATH`.
pub fn run_preprocess(store: &Store, task: &PreprocessTask) -> Result<PreprocessOutput, NdviError> {
    preprocess_with_path(store, task, std::env::var_os("PATH").as_deref())
}

/// Runs preprocessing, looking Sen2Cor up in `path_var` (a `PATH`-style list).
pub fn preprocess_with_path(
    store: &Store,
    task: &PreprocessTask,
    path_var: Option<&OsStr>,
) -> Result<PreprocessOutput, NdviError> {
    let product_err = |reason: String| NdviError::Product {
        product: task.product.clone(),
        reason,
    };
    let name = cloud::uri::file_name(&task.product).to_string();
    let mut id = scene_id_of_product(&name).ok_or_else(|| {
        product_err(
            "the folder name is neither a Sentinel-2 product name (S2A_MSIL2A_…_T29RKH_….SAFE) \
             nor a scene id (S2A_29RKH_20200219_0_L2A)"
                .into(),
        )
    })?;
    let mut files = find_product_files(&list_files(store, &task.product)?);
    let level = files.level.clone().unwrap_or_else(|| id.level.clone());
    let mut sen2cor_note = "not needed (Level-2A product)".to_string();
    let _work; // keeps Sen2Cor's output alive until the bands are converted
    if level == "L1C" {
        let program = task
            .sen2cor
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| find_on_path(SEN2COR_PROGRAM, path_var));
        match program {
            Some(program) => {
                let work = tempfile::Builder::new()
                    .prefix("ndvi-sen2cor-")
                    .tempdir()
                    .map_err(|e| NdviError::io("temporary directory", e))?;
                // Sen2Cor reads a folder on disk: a product on S3 is copied next to its output.
                let location = cloud::Location::parse(&task.product)?;
                let copied;
                let local = match location.as_local() {
                    Some(p) => p,
                    None => {
                        copied = download_product(store, &task.product, &work.path().join("in"))?;
                        copied.as_path()
                    }
                };
                let l2a = run_sen2cor(&program, local, work.path())?;
                let l2a_str = l2a.display().to_string();
                files = find_product_files(&list_files(store, &l2a_str)?);
                let l2a_name = l2a.file_name().and_then(OsStr::to_str).unwrap_or("");
                if let Some(new_id) = scene_id_of_product(l2a_name) {
                    id = new_id;
                } else {
                    id.level = "L2A".to_string();
                }
                sen2cor_note = format!("ran {} on the Level-1C product", program.display());
                _work = work;
            }
            None if task.allow_l1c => {
                tracing::warn!(
                    product = %task.product,
                    "Sen2Cor ({SEN2COR_PROGRAM}) is not on PATH: converting Level-1C \
                     top-of-atmosphere bands without atmospheric correction"
                );
                sen2cor_note = format!(
                    "absent: {SEN2COR_PROGRAM} is not on PATH; Level-1C top-of-atmosphere \
                     bands converted without atmospheric correction"
                );
                id.level = "L1C".to_string();
            }
            None => {
                return Err(NdviError::Sen2CorMissing {
                    product: task.product.clone(),
                });
            }
        }
    }
    let red = files
        .red
        .clone()
        .ok_or_else(|| product_err("no B04 band file found".into()))?;
    let nir = files
        .nir
        .clone()
        .ok_or_else(|| product_err("no B08 band file found".into()))?;
    #[cfg(not(feature = "gdal"))]
    for uri in [Some(&red), Some(&nir), files.scl.as_ref()]
        .into_iter()
        .flatten()
    {
        if is_jp2(uri) {
            return Err(NdviError::Jp2Unsupported { uri: uri.clone() });
        }
    }
    let meta = match &files.metadata {
        Some(uri) => {
            let bytes = store.get_capped(uri, 64 << 20)?;
            parse_product_metadata(&String::from_utf8_lossy(&bytes))
        }
        None => ProductMetadata::default(),
    };
    let baseline = meta.processing_baseline.or_else(|| {
        name.split('_')
            .find(|p| p.len() == 5 && p.starts_with('N'))
            .and_then(ProcessingBaseline::parse)
    });
    let offset_dn = match (meta.red_offset_dn, baseline) {
        (Some(o), _) => o,
        (None, Some(pb)) if pb.has_boa_offset() => S2_BOA_ADD_OFFSET_DN,
        (None, Some(_)) => 0.0,
        (None, None) => {
            return Err(NdviError::UnknownOffset {
                scene: format!("{id} ({})", task.product),
                reason: "neither the product metadata nor its name gives the processing \
                         baseline"
                    .into(),
            });
        }
    };
    if meta.nir_offset_dn.is_some_and(|o| o != offset_dn) {
        return Err(product_err(format!(
            "B04 and B08 have different offsets ({offset_dn} and {:?} DN), which this stage \
             does not support",
            meta.nir_offset_dn
        )));
    }
    let scale = 1.0 / meta.quantification.unwrap_or(10000.0);

    // Convert the bands.
    let folder = id.folder(&task.out);
    let opts = CogWriteOptions {
        blocksize: task.blocksize,
        ..CogWriteOptions::default()
    };
    let read_band = |uri: &str| -> Result<(Raster<u16>, GeoKeys), NdviError> {
        let (mut r, keys) = read_whole::<u16>(store, uri)?;
        if r.nodata.is_none() {
            r.nodata = Some(0);
        }
        Ok((r, keys))
    };
    let ((red_r, nir_r), scl_r) = rayon::join(
        || rayon::join(|| read_band(&red), || read_band(&nir)),
        || {
            files
                .scl
                .as_deref()
                .map(|u| read_whole::<u8>(store, u))
                .transpose()
        },
    );
    let ((red_r, red_keys), (nir_r, _), scl_r) = (red_r?, nir_r?, scl_r?);
    // The two bands must share a grid.
    crate::compute::check_same_grid(
        &red,
        &crate::compute::Grid::of(&red_r),
        &nir,
        &crate::compute::Grid::of(&nir_r),
    )?;
    let stack_uri = cloud::uri::join(&folder, STACK);
    let dst = |file: &str| cloud::uri::join(&folder, file);
    let ((w_red, w_nir), (w_stack, w_scl)) = rayon::join(
        || {
            rayon::join(
                || cog::write_cog(store, &dst(RED), &red_r, &opts),
                || cog::write_cog(store, &dst(NIR), &nir_r, &opts),
            )
        },
        || {
            rayon::join(
                || {
                    cog::writer::write_cog_bands(
                        store,
                        &stack_uri,
                        &[red_r.data.view(), nir_r.data.view()],
                        &red_r.transform,
                        &red_keys,
                        Some(0.0),
                        &opts,
                    )
                },
                || {
                    scl_r
                        .as_ref()
                        .map(|(r, _)| cog::write_cog(store, &dst(SCL), r, &opts))
                        .transpose()
                },
            )
        },
    );
    w_red?;
    w_nir?;
    w_stack?;
    w_scl?;
    tracing::info!(folder = %folder, "converted B04, B08, SCL and the B04/B08 stack");
    let grid = crate::compute::Grid::of(&red_r);
    let mut written: Vec<(String, String, crate::compute::Grid)> = vec![
        ("B04".to_string(), dst(RED), grid.clone()),
        ("B08".to_string(), dst(NIR), grid),
    ];
    if let Some((r, _)) = &scl_r {
        written.push(("SCL".to_string(), dst(SCL), crate::compute::Grid::of(r)));
    }

    let item_uri = id.asset_uri(&task.out, &format!("{id}.json"));
    let info = &written[0].2;
    let mut assets = serde_json::Map::new();
    let mut out_assets = BTreeMap::new();
    for (band, uri, i) in &written {
        let key = match band.as_str() {
            "B04" => "red",
            "B08" => "nir",
            _ => "scl",
        };
        let file = cloud::uri::file_name(uri);
        let raster_bands = if band == "SCL" {
            json!([{ "nodata": 0, "data_type": "uint8" }])
        } else {
            json!([{ "nodata": 0, "data_type": "uint16", "scale": scale, "offset": offset_dn * scale }])
        };
        assets.insert(
            key.to_string(),
            json!({
                "href": format!("./{file}"),
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data"],
                "proj:shape": [i.height, i.width],
                "proj:transform": &i.transform.0[..],
                "raster:bands": raster_bands,
            }),
        );
        out_assets.insert(band.clone(), uri.clone());
    }
    assets.insert(
        "red_nir".to_string(),
        json!({
            "href": format!("./{STACK}"),
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
            "title": "B04 (band 1) and B08 (band 2)",
            "raster:bands": [
                { "nodata": 0, "data_type": "uint16", "scale": scale, "offset": offset_dn * scale },
                { "nodata": 0, "data_type": "uint16", "scale": scale, "offset": offset_dn * scale },
            ],
        }),
    );
    out_assets.insert("B04_B08".to_string(), stack_uri.clone());
    let item = json!({
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": id.to_string(),
        "properties": {
            "datetime": format!("{}T00:00:00Z", id.date),
            "platform": format!("sentinel-{}", id.satellite.trim_start_matches('S').to_ascii_lowercase()),
            "constellation": "sentinel-2",
            "proj:epsg": info.crs.epsg,
            "mgrs:utm_zone": id.tile.zone,
            "mgrs:latitude_band": id.tile.band.to_string(),
            "mgrs:grid_square": format!("{}{}", id.tile.square[0], id.tile.square[1]),
            "grid:code": format!("MGRS-{}", id.tile),
            "s2:processing_baseline": baseline.map(|b| b.to_string()),
            "s2:product_uri": name,
            "earthsearch:boa_offset_applied": false,
            "geobutton:level": id.level,
            "geobutton:sen2cor": sen2cor_note,
        },
        "geometry": null,
        "links": [],
        "assets": assets,
    });
    store.put_json(&item_uri, &item)?;
    Ok(PreprocessOutput {
        scene_id: id.to_string(),
        level: id.level.clone(),
        processing_baseline: baseline.map(|b| b.to_string()),
        offset_dn,
        sen2cor: sen2cor_note,
        assets: out_assets,
        stac_item: item_uri,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn product_names() {
        let id = scene_id_of_product(
            "S2A_MSIL2A_20200219T112111_N0214_R037_T29RKH_20200219T123947.SAFE",
        )
        .unwrap();
        assert_eq!(id.to_string(), "S2A_29RKH_20200219_0_L2A");
        let id = scene_id_of_product(
            "S2B_MSIL1C_20220601T105619_N0400_R094_T31TCG_20220601T113914.SAFE/",
        )
        .unwrap();
        assert_eq!(id.to_string(), "S2B_31TCG_20220601_0_L1C");
        assert_eq!(
            scene_id_of_product("S2A_29RKH_20200219_0_L2A")
                .unwrap()
                .to_string(),
            "S2A_29RKH_20200219_0_L2A"
        );
        assert!(scene_id_of_product("product").is_none());
        assert!(
            scene_id_of_product("S2A_MSIL3X_20200219T112111_N0214_R037_T29RKH_x.SAFE").is_none()
        );
    }

    #[test]
    fn finds_safe_band_files() {
        let g = "S.SAFE/GRANULE/L2A_T29RKH_A1/IMG_DATA";
        let files: Vec<String> = [
            "S.SAFE/MTD_MSIL2A.xml".to_string(),
            format!("{g}/R10m/T29RKH_20200219T112111_B04_10m.jp2"),
            format!("{g}/R20m/T29RKH_20200219T112111_B04_20m.jp2"),
            format!("{g}/R60m/T29RKH_20200219T112111_B04_60m.jp2"),
            format!("{g}/R10m/T29RKH_20200219T112111_B08_10m.jp2"),
            format!("{g}/R20m/T29RKH_20200219T112111_SCL_20m.jp2"),
            format!("{g}/R60m/T29RKH_20200219T112111_SCL_60m.jp2"),
            "S.SAFE/GRANULE/L2A_T29RKH_A1/QI_DATA/MSK_CLDPRB_20m_B04.jp2".to_string(),
        ]
        .into();
        let f = find_product_files(&files);
        assert_eq!(f.level.as_deref(), Some("L2A"));
        assert_eq!(f.metadata.as_deref(), Some("S.SAFE/MTD_MSIL2A.xml"));
        assert!(f.red.unwrap().ends_with("B04_10m.jp2"));
        assert!(f.nir.unwrap().ends_with("B08_10m.jp2"));
        assert!(f.scl.unwrap().ends_with("SCL_20m.jp2"));
        let flat: Vec<String> = ["d/B04.tif", "d/B08.tif", "d/SCL.tif", "d/TCI.tif"]
            .map(String::from)
            .into();
        let f = find_product_files(&flat);
        assert_eq!(f.red.as_deref(), Some("d/B04.tif"));
        assert_eq!(f.scl.as_deref(), Some("d/SCL.tif"));
        assert_eq!(f.level, None);
    }

    #[test]
    fn product_metadata() {
        let xml = r#"<n1:Level-2A_User_Product><General_Info><Product_Info>
            <PROCESSING_BASELINE>04.00</PROCESSING_BASELINE></Product_Info>
            <Product_Image_Characteristics><QUANTIFICATION_VALUES_LIST>
            <BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>
            </QUANTIFICATION_VALUES_LIST><BOA_ADD_OFFSET_VALUES_LIST>
            <BOA_ADD_OFFSET band_id="0">-1000</BOA_ADD_OFFSET>
            <BOA_ADD_OFFSET band_id="3">-1000</BOA_ADD_OFFSET>
            <BOA_ADD_OFFSET band_id="7">-1000</BOA_ADD_OFFSET>
            </BOA_ADD_OFFSET_VALUES_LIST></Product_Image_Characteristics></General_Info>
            </n1:Level-2A_User_Product>"#;
        let m = parse_product_metadata(xml);
        assert_eq!(m.processing_baseline, ProcessingBaseline::parse("04.00"));
        assert_eq!(m.red_offset_dn, Some(-1000.0));
        assert_eq!(m.nir_offset_dn, Some(-1000.0));
        assert_eq!(m.quantification, Some(10000.0));
        let old = parse_product_metadata(
            "<PROCESSING_BASELINE>02.14</PROCESSING_BASELINE><QUANTIFICATION_VALUE>10000</QUANTIFICATION_VALUE>",
        );
        assert_eq!(old.red_offset_dn, None);
        assert_eq!(old.quantification, Some(10000.0));
    }

    #[test]
    fn path_lookup() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join(SEN2COR_PROGRAM);
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        let path = std::env::join_paths(["/nonexistent", dir.path().to_str().unwrap()]).unwrap();
        // Not executable yet.
        assert_eq!(find_on_path(SEN2COR_PROGRAM, Some(&path)), None);
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_on_path(SEN2COR_PROGRAM, Some(&path)), Some(exe));
        assert_eq!(find_on_path(SEN2COR_PROGRAM, None), None);
    }
}
