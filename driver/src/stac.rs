//! A STAC catalog of every run's products, for pystac, QGIS and STAC browsers.
//!
//! `OUT/stac/collection.json` is a STAC 1.0 collection whose extent covers the products
//! (bounding box in WGS 84 longitude/latitude, the run's start and end as its interval). Each
//! raster product (COG or VRT) is an item `OUT/stac/<id>/<id>.json` with the projection
//! extension (`proj:epsg`, `proj:shape`, `proj:transform`), a footprint in longitude/latitude
//! and one `data` asset; the other products (CSV tables, PNG maps, partition manifests) and
//! `report.json` are assets of the collection. Every link and asset href inside the output
//! location is relative, so the folder (or prefix) can be copied elsewhere whole.
//!
//! Footprints come from [`cog::proj`] (UTM and geographic CRSs); a product in another or no
//! CRS gets no footprint (`geometry: null`), as STAC allows.

use chrono::{DateTime, SecondsFormat, Utc};
use cloud::Store;
use cog::proj::Projection;
use serde_json::{Value, json};

use crate::error::DriverError;
use crate::pipeline::Product;

/// The STAC version written.
pub const STAC_VERSION: &str = "1.0.0";
/// The projection extension's schema.
pub const PROJECTION_EXTENSION: &str =
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json";
/// Where the collection goes under the output location.
pub const COLLECTION: &str = "stac/collection.json";

/// The grid of one raster product.
#[derive(Debug, Clone, PartialEq)]
pub struct RasterGrid {
    pub width: u64,
    pub height: u64,
    pub transform: cog::GeoTransform,
    pub crs: cog::Crs,
}

/// Reads the grid of a COG (its header) or of a VRT this crate wrote.
pub fn raster_grid(store: &Store, uri: &str) -> Result<RasterGrid, DriverError> {
    if uri.to_ascii_lowercase().ends_with(".vrt") {
        let m = cog::mosaic::read_vrt_grid(store, uri)?;
        return Ok(RasterGrid {
            width: m.0,
            height: m.1,
            transform: m.2,
            crs: m.3,
        });
    }
    let r = cog::CogReader::open(store, uri)?;
    let i = r.info();
    Ok(RasterGrid {
        width: i.width,
        height: i.height,
        transform: i.geotransform,
        crs: i.crs.clone(),
    })
}

/// The longitude/latitude box `[west, south, east, north]` of a grid, from points along its
/// edges (a projected rectangle's edges curve in longitude/latitude); `None` when its CRS
/// cannot be converted.
pub fn lon_lat_bbox(g: &RasterGrid) -> Option<[f64; 4]> {
    let p = Projection::from_crs(&g.crs, None).ok()?;
    const STEPS: u32 = 16;
    let (w, h) = (g.width as f64, g.height as f64);
    let mut bbox = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for k in 0..=STEPS {
        let f = k as f64 / STEPS as f64;
        for (c, r) in [(f * w, 0.0), (f * w, h), (0.0, f * h), (w, f * h)] {
            let (x, y) = g.transform.apply(c, r);
            let (lat, lon) = p.to_lat_lon(x, y);
            if !(lat.is_finite() && lon.is_finite()) {
                return None;
            }
            bbox = [
                bbox[0].min(lon),
                bbox[1].min(lat),
                bbox[2].max(lon),
                bbox[3].max(lat),
            ];
        }
    }
    (bbox[1] >= -90.0 && bbox[3] <= 90.0).then_some(bbox)
}

/// `href` of `uri` as seen from a document `depth` folders below the output location:
/// relative when `uri` lies under `output`, as it is otherwise.
fn href(uri: &str, output: &str, depth: usize) -> String {
    let root = format!("{}/", output.trim_end_matches('/'));
    match uri.strip_prefix(&root) {
        Some(rel) => format!("{}{rel}", "../".repeat(depth)),
        None => uri.to_string(),
    }
}

/// The media type of a product, from its extension.
fn media_type(uri: &str) -> &'static str {
    let lower = uri.to_ascii_lowercase();
    let ext = lower.rsplit('.').next().unwrap_or("");
    match ext {
        "tif" | "tiff" => "image/tiff; application=geotiff; profile=cloud-optimized",
        "vrt" => "application/xml",
        "png" => "image/png",
        "csv" => "text/csv",
        "json" => "application/json",
        "prj" => "text/plain",
        "las" => "application/vnd.las",
        "laz" => "application/vnd.laszip",
        _ => "application/octet-stream",
    }
}

/// A STAC id from a product's path under the output: `tiles/sheet0_et0.tif` →
/// `tiles-sheet0_et0`.
fn item_id(uri: &str, output: &str) -> String {
    let root = format!("{}/", output.trim_end_matches('/'));
    let rel = uri
        .strip_prefix(&root)
        .unwrap_or(cloud::uri::file_name(uri));
    let stem = rel.rsplit_once('.').map_or(rel, |(s, _)| s);
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Writes the run's STAC collection and items under `output` (see the module
/// documentation), removes the items an earlier catalog there had and this one has not, and
/// returns the collection's URI.
pub fn write_catalog(
    store: &Store,
    output: &str,
    pipeline: &str,
    products: &[Product],
    (start, end): (DateTime<Utc>, DateTime<Utc>),
) -> Result<String, DriverError> {
    let collection_uri = cloud::uri::join(output, COLLECTION);
    let collection_id = format!("geobutton-{pipeline}");
    let mut item_links = Vec::new();
    let mut collection_assets = serde_json::Map::new();
    let mut written = Vec::new();
    let mut union: Option<[f64; 4]> = None;
    let mut seen = std::collections::HashSet::new();
    // The rasters' grids, read concurrently (one header read each).
    let grids: Vec<Option<RasterGrid>> = {
        use rayon::prelude::*;
        products
            .par_iter()
            .map(|p| {
                matches!(p.kind.as_str(), "cog" | "vrt")
                    .then(|| raster_grid(store, &p.uri))
                    .transpose()
            })
            .collect::<Result<_, DriverError>>()?
    };
    for (p, grid) in products.iter().zip(grids) {
        let id = item_id(&p.uri, output);
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some(grid) = grid else {
            collection_assets.insert(
                id,
                json!({
                    "href": href(&p.uri, output, 1),
                    "type": media_type(&p.uri),
                    "title": p.description,
                    "roles": [if p.kind == "png" { "overview" } else { "data" }],
                }),
            );
            continue;
        };
        let bbox = lon_lat_bbox(&grid);
        if let Some(b) = bbox {
            union = Some(match union {
                None => b,
                Some(u) => [
                    u[0].min(b[0]),
                    u[1].min(b[1]),
                    u[2].max(b[2]),
                    u[3].max(b[3]),
                ],
            });
        }
        let g = grid.transform.0;
        let mut item = json!({
            "type": "Feature",
            "stac_version": STAC_VERSION,
            "stac_extensions": [PROJECTION_EXTENSION],
            "id": id,
            "collection": collection_id,
            "geometry": bbox.map(|b| json!({
                "type": "Polygon",
                "coordinates": [[[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]], [b[0], b[1]]]],
            })),
            "properties": {
                "title": p.description,
                "datetime": rfc3339(end),
                "start_datetime": rfc3339(start),
                "end_datetime": rfc3339(end),
                "proj:epsg": grid.crs.epsg,
                "proj:shape": [grid.height, grid.width],
                "proj:transform": [g[1], g[2], g[0], g[4], g[5], g[3]],
            },
            "links": [
                {"rel": "root", "href": "../collection.json", "type": "application/json"},
                {"rel": "parent", "href": "../collection.json", "type": "application/json"},
                {"rel": "collection", "href": "../collection.json", "type": "application/json"},
            ],
            "assets": {
                "data": {
                    "href": href(&p.uri, output, 2),
                    "type": media_type(&p.uri),
                    "title": p.description,
                    "roles": ["data"],
                }
            },
        });
        if let (Some(b), Some(obj)) = (bbox, item.as_object_mut()) {
            obj.insert("bbox".into(), json!(b));
        }
        let item_uri = cloud::uri::join(output, &format!("stac/{id}/{id}.json"));
        store.put_json(&item_uri, &item)?;
        item_links.push(json!({
            "rel": "item",
            "href": format!("./{id}/{id}.json"),
            "type": "application/json",
            "title": p.description,
        }));
        written.push(item_uri);
    }
    collection_assets.insert(
        "report".into(),
        json!({
            "href": href(&cloud::uri::join(output, crate::run::REPORT), output, 1),
            "type": "application/json",
            "title": "run report: tasks, timings, cost estimate",
            "roles": ["metadata"],
        }),
    );
    let mut links = vec![json!({
        "rel": "root", "href": "./collection.json", "type": "application/json",
    })];
    links.extend(item_links);
    let collection = json!({
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "id": collection_id,
        "title": format!("geobutton {pipeline} run"),
        "description": format!("Products of a geobutton {pipeline} run written to {output}."),
        "license": "other",
        "extent": {
            "spatial": {"bbox": [union.unwrap_or([-180.0, -90.0, 180.0, 90.0])]},
            "temporal": {"interval": [[rfc3339(start), rfc3339(end)]]},
        },
        "links": links,
        "assets": Value::Object(collection_assets),
    });
    store.put_json(&collection_uri, &collection)?;
    written.push(collection_uri.clone());
    // Items of an earlier catalog that this run no longer has.
    if let Ok(old) = store.list(&format!("{}/", cloud::uri::join(output, "stac"))) {
        for o in old {
            if o.uri.ends_with(".json") && !written.contains(&o.uri) {
                let _ = store.delete(&o.uri);
            }
        }
    }
    Ok(collection_uri)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hrefs_ids_and_types() {
        assert_eq!(href("out/tiles/a.tif", "out", 2), "../../tiles/a.tif");
        assert_eq!(href("s3://b/out/dem.tif", "s3://b/out/", 1), "../dem.tif");
        assert_eq!(href("s3://b/in/x.tif", "s3://b/out", 1), "s3://b/in/x.tif");
        assert_eq!(
            item_id("out/tiles/sheet 0_et0.tif", "out"),
            "tiles-sheet-0_et0"
        );
        assert_eq!(item_id("out/dem.vrt", "out/"), "dem");
        assert_eq!(
            media_type("a.TIF"),
            "image/tiff; application=geotiff; profile=cloud-optimized"
        );
        assert_eq!(media_type("a.csv"), "text/csv");
    }

    #[test]
    fn footprints_are_in_longitude_latitude() {
        // A 10 km square in EPSG:25830 near Murcia; its corners by `gdaltransform -s_srs
        // EPSG:25830 -t_srs EPSG:4326` (GDAL 3.6.2): the box is theirs (edges are all but
        // straight in longitude/latitude at this size).
        let g = RasterGrid {
            width: 1000,
            height: 1000,
            transform: cog::GeoTransform::north_up(640_000.0, 4_210_000.0, 10.0),
            crs: cog::Crs::epsg(25830),
        };
        let b = lon_lat_bbox(&g).unwrap();
        let want = [
            -1.40683534027269,
            37.9352071593488,
            -1.29099424636801,
            38.0268969861127,
        ];
        for (got, want) in b.iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{b:?}");
        }
        let unknown = RasterGrid {
            crs: cog::Crs::default(),
            ..g
        };
        assert_eq!(lon_lat_bbox(&unknown), None);
    }
}
