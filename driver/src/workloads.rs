//! The seed's three region-scale runs at their task counts, on synthetic data made here (no
//! download, fixed seeds), for the tests and `driver_bench seed` that put them through the
//! real control plane (planning, executors, statuses, resume):
//!
//! - [`lidar_catalog`]: `cols × rows` adjacent LAZ files, one per sheet as CNIG publishes
//!   them (the seed partitioned [`SEED_LIDAR_FILES`] of them: `geobutton run lidar
//!   --partition-only`);
//! - [`s2_catalog`]: Sentinel-2-shaped red/NIR COGs of several MGRS tiles on two dates, with
//!   their STAC items (the seed ran [`SEED_NDVI_TILES`] tiles × [`SEED_WINDOWS_PER_TILE`]
//!   windows; [`serve_stac_api`] answers the searches of `geobutton run ndvi --mgrs`);
//! - [`water_catalog`]: `cols × rows` DTM tiles with a station table and plots (the seed's
//!   Murcia run had [`SEED_WATER_TILES`]).
//!
//! The files are small (a task takes milliseconds), so that what is measured is the control
//! plane: per-task overhead, requests per task, scaling with concurrency.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use cloud::Store;
use cog::{CogWriteOptions, GeoTransform};
use rayon::prelude::*;
use serde_json::{Value, json};

use crate::demo::{Rng, ground_z};
use crate::error::DriverError;

/// LAZ files of the seed's LiDAR run (CNIG PNOA, 80 GB as LAS).
pub const SEED_LIDAR_FILES: usize = 516;
/// Sentinel-2 tiles of the seed's NDVI run.
pub const SEED_NDVI_TILES: usize = 8;
/// Windows per tile in the seed's NDVI run (11 × 11 windows of 1024 px over 10980 px).
pub const SEED_WINDOWS_PER_TILE: usize = 121;
/// DTM tiles of the seed's Murcia water run.
pub const SEED_WATER_TILES: usize = 36;

/// Lower-left corner of the first LiDAR sheet, EPSG:25830 (m).
const SHEET_X0: f64 = 600_000.0;
const SHEET_Y0: f64 = 4_150_000.0;

/// Adjacent LAZ sheets.
#[derive(Debug, Clone)]
pub struct LidarCatalog {
    /// The files, row by row from the south-west.
    pub inputs: Vec<String>,
    /// Points in all of them.
    pub points: u64,
}

/// The LAZ (or LAS) bytes of the sheet with lower-left corner (`x0`, `y0`) and side `side`
/// m: ground points of the synthetic terrain, `density` points per m², a few canopy
/// returns; point format 1, EPSG:25830 in a GeoKeys VLR, centimetre scale. Returns the
/// bytes and the point count.
pub fn lidar_sheet(
    x0: f64,
    y0: f64,
    side: f64,
    density: f64,
    seed: u64,
    laz: bool,
) -> Result<(Vec<u8>, u64), DriverError> {
    let enc = |e: las::Error| DriverError::encode("synthetic sheet", e);
    if !(side > 0.0 && density > 0.0 && side * side * density <= 5e7) {
        return Err(DriverError::Invalid(format!(
            "synthetic sheet: side {side} m at {density} points/m² (at most 50 M points)"
        )));
    }
    let mut rng = Rng::new(seed);
    let mut builder = las::Builder::from((1, 2));
    builder.point_format = las::point::Format::new(1).map_err(enc)?;
    builder.point_format.is_compressed = laz;
    builder.generating_software = "geobutton workloads (synthetic)".to_string();
    let t = |offset: f64| las::Transform {
        scale: 0.01,
        offset,
    };
    builder.transforms = las::Vector {
        x: t(x0),
        y: t(y0),
        z: t(0.0),
    };
    builder.vlrs.push(las::Vlr {
        user_id: "LASF_Projection".to_string(),
        record_id: 34735,
        description: "GeoKeyDirectoryTag".to_string(),
        data: crate::demo::geokeys(25830),
    });
    let header = builder.into_header().map_err(enc)?;
    let mut w = las::Writer::new(std::io::Cursor::new(Vec::new()), header).map_err(enc)?;
    let n = (side * side * density).round() as u64;
    for i in 0..n {
        let (x, y) = (x0 + side * rng.f64(), y0 + side * rng.f64());
        let g = ground_z(x, y) + 0.03 * rng.normal();
        // One point in eight is a canopy return 2–15 m up.
        let canopy = rng.f64() < 0.125;
        w.write_point(las::Point {
            x,
            y,
            z: if canopy { g + rng.range(2.0, 15.0) } else { g },
            gps_time: Some(seed as f64 * 100.0 + i as f64 * 1e-5),
            intensity: if canopy { 120 } else { 200 },
            return_number: 1,
            number_of_returns: 1,
            ..Default::default()
        })
        .map_err(enc)?;
    }
    w.close().map_err(enc)?;
    let bytes = w.into_inner().map_err(enc)?.into_inner();
    Ok((bytes, n))
}

/// Writes `cols × rows` adjacent sheets of `side` m at `density` points/m² under `prefix`
/// (`sheet_<col>_<row>.laz`, or `.las` when not `laz`), in parallel.
pub fn lidar_catalog(
    store: &Store,
    prefix: &str,
    cols: usize,
    rows: usize,
    side: f64,
    density: f64,
    laz: bool,
) -> Result<LidarCatalog, DriverError> {
    let ext = if laz { "laz" } else { "las" };
    let sheets: Vec<(usize, usize)> = (0..rows)
        .flat_map(|r| (0..cols).map(move |c| (c, r)))
        .collect();
    let written: Vec<(String, u64)> = sheets
        .par_iter()
        .map(|&(c, r)| {
            let (x0, y0) = (SHEET_X0 + side * c as f64, SHEET_Y0 + side * r as f64);
            let (bytes, n) = lidar_sheet(x0, y0, side, density, (r * cols + c) as u64, laz)?;
            let uri = cloud::uri::join(prefix, &format!("sheet_{c:03}_{r:03}.{ext}"));
            store.put(&uri, Bytes::from(bytes))?;
            Ok((uri, n))
        })
        .collect::<Result<_, DriverError>>()?;
    Ok(LidarCatalog {
        points: written.iter().map(|w| w.1).sum(),
        inputs: written.into_iter().map(|w| w.0).collect(),
    })
}

/// Sentinel-2-shaped scenes of several MGRS tiles, with their STAC items.
#[derive(Debug, Clone)]
pub struct S2Catalog {
    /// The tiles (e.g. `30SXG`).
    pub tiles: Vec<String>,
    /// One item per tile per date (`datetime` on [`S2_DATES`]), its `self` link the item's
    /// JSON under the catalog prefix, its `red`/`nir` assets the band COGs beside it.
    pub items: Vec<Value>,
    /// Side of each band, pixels (10 m).
    pub size_px: usize,
}

/// The two dates of [`s2_catalog`]'s scenes (before 2022-01-25: no DN offset).
pub const S2_DATES: [&str; 2] = ["2021-05-15", "2021-08-13"];

/// The first `n` tiles of a run of MGRS squares in UTM zone 30 (30SWG, 30SWH, 30SXG, ...).
pub fn mgrs_tiles(n: usize) -> Vec<String> {
    let cols = ["W", "X", "Y", "V", "U", "T", "B", "C"];
    let rows = ["G", "H", "J", "F"];
    cols.iter()
        .flat_map(|c| rows.iter().map(move |r| format!("30S{c}{r}")))
        .take(n)
        .collect()
}

/// Writes, for each of `tiles`, red (B04) and NIR (B08) uint16 COGs of `size_px`² pixels
/// on the two [`S2_DATES`] (the demo scene's parcels, harvest and green-up) and their STAC
/// items (Earth Search v1 shape: `grid:code`, `eo:cloud_cover`, `proj:epsg`, assets with
/// `raster:bands` scale 0.0001 and offset 0) under `prefix/<tile>/<date>/`.
pub fn s2_catalog(
    store: &Store,
    prefix: &str,
    tiles: &[String],
    size_px: usize,
    blocksize: u32,
) -> Result<S2Catalog, DriverError> {
    if !(64..=4096).contains(&size_px) {
        return Err(DriverError::Invalid(format!(
            "synthetic Sentinel-2 tiles of {size_px} px: 64 to 4096"
        )));
    }
    let opts = CogWriteOptions {
        blocksize,
        ..CogWriteOptions::default()
    };
    let jobs: Vec<(usize, usize)> = (0..tiles.len())
        .flat_map(|t| (0..S2_DATES.len()).map(move |d| (t, d)))
        .collect();
    let items = jobs
        .par_iter()
        .map(|&(t, d)| {
            let tile = &tiles[t];
            let day = S2_DATES[d];
            let dir = cloud::uri::join(prefix, &format!("{tile}/{day}"));
            // Tiles side by side, 10 km apart.
            let (x0, y0) = (500_000.0 + 10_000.0 * t as f64, 4_200_000.0);
            let transform = GeoTransform::north_up(x0, y0, 10.0);
            let mut bands = Vec::new();
            for (name, nir) in [("B04", false), ("B08", true)] {
                let seed = (t * 4 + d * 2 + nir as usize) as u64 + 101;
                let raster = crate::demo::s2_band_at(d, nir, seed, size_px, transform);
                let uri = cloud::uri::join(&dir, &format!("{name}.tif"));
                cog::write_cog(store, &uri, &raster, &opts)
                    .map_err(|e| DriverError::encode(uri.clone(), e))?;
                bands.push(uri);
            }
            let id = format!("S2A_{tile}_{}_0_L2A", day.replace('-', ""));
            let self_uri = cloud::uri::join(&dir, &format!("{id}.json"));
            let side = size_px as f64 * 10.0;
            // A rough footprint (one hundredth of a degree per km from 3° W, 37.9° N).
            let (lon, lat) = (-3.0 + (x0 - 500_000.0) / 88_000.0, 37.9);
            let band = |href: &str| {
                json!({"href": href, "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                    "roles": ["data"], "raster:bands": [{"nodata": 0, "data_type": "uint16",
                    "scale": 0.0001, "offset": 0, "spatial_resolution": 10}]})
            };
            let item = json!({
                "type": "Feature", "stac_version": "1.0.0", "id": id,
                "collection": "sentinel-2-l2a",
                "bbox": [lon, lat, lon + side / 88_000.0, lat + side / 111_000.0],
                "geometry": {"type": "Polygon", "coordinates": [[
                    [lon, lat], [lon + side / 88_000.0, lat],
                    [lon + side / 88_000.0, lat + side / 111_000.0],
                    [lon, lat + side / 111_000.0], [lon, lat]]]},
                "properties": {
                    "datetime": format!("{day}T11:04:12.000000Z"),
                    "eo:cloud_cover": 5.0 + (t * 7 + d * 3) as f64 % 10.0,
                    "grid:code": format!("MGRS-{tile}"),
                    "proj:epsg": 32630,
                    "platform": "sentinel-2a",
                },
                "assets": {"red": band(&bands[0]), "nir": band(&bands[1])},
                "links": [{"rel": "self", "type": "application/geo+json", "href": self_uri}],
            });
            store.put(&self_uri, Bytes::from(item.to_string()))?;
            Ok(item)
        })
        .collect::<Result<Vec<Value>, DriverError>>()?;
    Ok(S2Catalog {
        tiles: tiles.to_vec(),
        items,
        size_px,
    })
}

/// DTM tiles with the station table and plots of a water run.
#[derive(Debug, Clone)]
pub struct WaterCatalog {
    pub dtms: Vec<String>,
    /// The demo's generic station table (six stations, one day).
    pub stations: String,
    pub plots: String,
    /// The stations' day, `YYYY-MM-DD`.
    pub date: String,
}

/// Writes `cols × rows` adjacent DTM tiles (`water::synth`, through the demo's stations) of
/// `px`² pixels of `pixel` m as ESRI ASCII grids, and the demo's stations and plots, under
/// `prefix`.
pub fn water_catalog(
    store: &Store,
    prefix: &str,
    cols: usize,
    rows: usize,
    px: usize,
    pixel: f64,
) -> Result<WaterCatalog, DriverError> {
    let date = "2022-05-15";
    let stations_text = crate::demo::stations_csv();
    let day = chrono::NaiveDate::from_ymd_opt(2022, 5, 15)
        .ok_or_else(|| DriverError::Invalid("water workload date".into()))?;
    let stations = water::stations::parse(
        "stations.csv",
        stations_text.as_bytes(),
        water::stations::StationFormat::Auto,
        day,
    )
    .map_err(|e| DriverError::Invalid(format!("water workload stations: {e}")))?;
    let side = px as f64 * pixel;
    // The tiles around the stations (x 639–657 km, y 4177–4193 km), from the north-west.
    let (x0, y0) = (
        648_000.0 - side * cols as f64 / 2.0,
        4_185_000.0 + side * rows as f64 / 2.0,
    );
    let sheets: Vec<(usize, usize)> = (0..rows)
        .flat_map(|r| (0..cols).map(move |c| (c, r)))
        .collect();
    let dtms = sheets
        .par_iter()
        .map(|&(c, r)| {
            let dtm = water::synth::dtm(
                &stations,
                x0 + side * c as f64,
                y0 - side * r as f64,
                pixel,
                px,
                px,
                None,
            );
            let uri = cloud::uri::join(prefix, &format!("dtm_{c:02}_{r:02}.asc"));
            store.put(&uri, Bytes::from(water::synth::to_asc(&dtm)))?;
            Ok(uri)
        })
        .collect::<Result<Vec<String>, DriverError>>()?;
    let stations_uri = cloud::uri::join(prefix, "stations.csv");
    store.put(&stations_uri, Bytes::from(stations_text))?;
    let plots = cloud::uri::join(prefix, "plots.geojson");
    store.put(&plots, Bytes::from(crate::demo::plots_geojson()))?;
    Ok(WaterCatalog {
        dtms,
        stations: stations_uri,
        plots,
        date: date.to_string(),
    })
}

/// Whether the STAC item `item` answers the search `body` (`collections`, `bbox`,
/// `datetime`, `query` on `eo:cloud_cover` (`lte`) and `grid:code` (`in`)).
pub fn stac_matches(item: &Value, body: &Value) -> bool {
    if let Some(c) = body["collections"].as_array()
        && !c.iter().any(|c| c == &item["collection"])
        && !(item["collection"].is_null() && c.contains(&json!("sentinel-2-l2a")))
    {
        return false;
    }
    let floats =
        |v: &Value| -> Option<Vec<f64>> { v.as_array()?.iter().map(Value::as_f64).collect() };
    if let Some(q) = floats(&body["bbox"]) {
        let Some(i) = floats(&item["bbox"]) else {
            return false;
        };
        if q.len() < 4 || i.len() < 4 || q[0] > i[2] || q[2] < i[0] || q[1] > i[3] || q[3] < i[1] {
            return false;
        }
    }
    let p = &item["properties"];
    if let Some((a, b)) = body["datetime"].as_str().and_then(|d| d.split_once('/')) {
        let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
        let (Some(t), Some(a), Some(b)) =
            (p["datetime"].as_str().and_then(parse), parse(a), parse(b))
        else {
            return false;
        };
        if t < a || t > b {
            return false;
        }
    }
    if let Some(lte) = body["query"]["eo:cloud_cover"]["lte"].as_f64()
        && p["eo:cloud_cover"].as_f64().is_none_or(|c| c > lte)
    {
        return false;
    }
    if let Some(codes) = body["query"]["grid:code"]["in"].as_array()
        && !codes.contains(&p["grid:code"])
    {
        return false;
    }
    true
}

/// A STAC API on 127.0.0.1 for tests and benchmarks: `POST /search` (filters of
/// [`stac_matches`], `page` items a page, `next` links with a POST body to merge) and
/// `GET /collections/<c>/items/<id>`. `make` gets the API's root and returns the items.
/// Returns the root and the count of searches answered; the server lives as long as the
/// process.
pub fn serve_stac_api(
    page: usize,
    make: impl FnOnce(&str) -> Vec<Value>,
) -> std::io::Result<(String, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let api = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
    let items = Arc::new(make(&api));
    let searches = Arc::new(AtomicUsize::new(0));
    let (seen, root) = (searches.clone(), api.clone());
    let page = page.max(1);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(10)));
            let Some((line, body)) = read_request(&mut c) else {
                continue;
            };
            let (status, answer) = if line.starts_with("POST /search ") {
                seen.fetch_add(1, Ordering::SeqCst);
                let body: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
                let found: Vec<&Value> = items.iter().filter(|i| stac_matches(i, &body)).collect();
                let from: usize = body["next"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let this: Vec<&Value> = found.iter().skip(from).take(page).copied().collect();
                let mut links = vec![];
                if from + page < found.len() {
                    links.push(json!({"rel": "next", "href": format!("{root}/search"),
                        "method": "POST", "body": {"next": (from + page).to_string()},
                        "merge": true}));
                }
                (
                    "200 OK",
                    json!({"type": "FeatureCollection", "features": this,
                        "links": links, "numberMatched": found.len()}),
                )
            } else if let Some(id) = line
                .strip_prefix("GET /collections/")
                .and_then(|r| r.split_once("/items/"))
                .and_then(|(_, r)| r.split(' ').next())
            {
                match items.iter().find(|i| i["id"] == id) {
                    Some(i) => ("200 OK", i.clone()),
                    None => ("404 Not Found", json!({"code": "NotFound"})),
                }
            } else {
                ("404 Not Found", json!({"code": "NotFound"}))
            };
            let text = answer.to_string();
            let _ = c.write_all(
                format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/geo+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                )
                .as_bytes(),
            );
        }
    });
    Ok((api, searches))
}

/// The request line and body of one HTTP/1.1 request (bodies of at most 1 MiB).
fn read_request(c: &mut std::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 << 10 {
            return None;
        }
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
        .min(1 << 20);
    while buf.len() < head_end + length {
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let end = buf.len().min(head_end + length);
    let line = head.lines().next().unwrap_or("").to_string();
    Some((line, buf[head_end..end].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheets_hold_their_points_inside_their_bounds() {
        let (bytes, n) = lidar_sheet(600_000.0, 4_150_000.0, 50.0, 0.5, 3, true).unwrap();
        assert_eq!(n, 1250);
        let mut r = las::Reader::new(std::io::Cursor::new(bytes)).unwrap();
        assert!(r.header().point_format().is_compressed);
        let data = r.read_all().unwrap();
        let points: Vec<las::Point> = data.points().collect::<Result<_, _>>().unwrap();
        assert_eq!(points.len(), 1250);
        assert!(points.iter().all(|p| (600_000.0..=600_050.0).contains(&p.x)
            && (4_150_000.0..=4_150_050.0).contains(&p.y)));
        assert!(lidar_sheet(0.0, 0.0, 1e5, 10.0, 0, true).is_err());
    }

    #[test]
    fn tiles_are_distinct_and_searches_match() {
        let t = mgrs_tiles(SEED_NDVI_TILES);
        assert_eq!(t.len(), 8);
        assert_eq!(t.iter().collect::<std::collections::BTreeSet<_>>().len(), 8);
        let item = json!({"collection": "sentinel-2-l2a", "bbox": [0.0, 0.0, 1.0, 1.0],
            "properties": {"datetime": "2021-05-15T11:04:12Z", "eo:cloud_cover": 5.0,
            "grid:code": "MGRS-30SWG"}});
        let yes = json!({"collections": ["sentinel-2-l2a"], "bbox": [0.5, 0.5, 2.0, 2.0],
            "datetime": "2021-05-01T00:00:00Z/2021-05-31T23:59:59Z",
            "query": {"eo:cloud_cover": {"lte": 10}, "grid:code": {"in": ["MGRS-30SWG"]}}});
        assert!(stac_matches(&item, &yes));
        for (k, v) in [
            ("bbox", json!([2.0, 2.0, 3.0, 3.0])),
            (
                "datetime",
                json!("2021-06-01T00:00:00Z/2021-06-30T00:00:00Z"),
            ),
            ("query", json!({"eo:cloud_cover": {"lte": 4}})),
            ("query", json!({"grid:code": {"in": ["MGRS-30SXG"]}})),
            ("collections", json!(["landsat"])),
        ] {
            let mut no = yes.clone();
            no[k] = v;
            assert!(!stac_matches(&item, &no), "{k}");
        }
    }
}
