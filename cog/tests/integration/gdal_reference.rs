//! Every raster under shared/data/{raster,sentinel,biomass} read by us equals GDAL 3.6.2:
//! checksums and statistics from REFERENCE_GDAL_STATS.tsv, windows against
//! `gdal_translate -srcwin`, geotransform/CRS/nodata against `gdalinfo -json`.
#![allow(clippy::type_complexity)]

use std::collections::BTreeMap;

use crate::common::*;
use cloud::Store;
use cog::{CogReader, OpenOptions, Window};

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-9) || (a.is_nan() && b.is_nan())
}

/// JPEG is lossy and decoders differ from libjpeg-turbo's IDCT/upsampling by a few levels:
/// those files are compared with a tolerance instead of checksums.
fn is_jpeg(compression: &str) -> bool {
    compression.contains("JPEG")
}

fn open(store: &Store, path: &str) -> CogReader {
    let opts = OpenOptions {
        external_overviews: true,
        ..Default::default()
    };
    CogReader::open_with(store, path, &opts).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn all_rows() -> BTreeMap<String, Vec<RefRow>> {
    let mut files: BTreeMap<String, Vec<RefRow>> = BTreeMap::new();
    for dir in ["raster", "sentinel", "biomass"] {
        for row in reference_rows(dir) {
            files
                .entry(format!("{dir}/{}", row.file))
                .or_default()
                .push(row);
        }
    }
    files
}

#[test]
fn every_fixture_band_matches_gdal_checksums_and_stats() {
    let store = Store::new(cloud::StoreOptions::default());
    let mut failures = Vec::new();
    let mut checked = 0;
    let files = all_rows();
    assert!(files.len() >= 40, "{} files", files.len());
    for (rel, rows) in &files {
        let path = data_str(rel);
        let r = open(&store, &path);
        let info = r.info().clone();
        let bands: Vec<usize> = rows.iter().map(|r| r.band).collect();
        let full = Window::new(0, 0, info.width, info.height);
        // Read in the stored type (memory), summarise as f64.
        fn summarise<T: cog::Pixel>(
            r: &CogReader,
            bands: &[usize],
            full: Window,
            nodata: Option<f64>,
            float: bool,
            width: usize,
        ) -> Result<Vec<(u32, (u64, f64, f64, f64, f64))>, cog::CogError> {
            let rasters = r.read_bands::<T>(bands, full, 0)?;
            Ok(rasters
                .iter()
                .map(|b| {
                    let it = || b.data.iter().map(|v| v.to_f64());
                    (gdal_checksum(it(), width, float), stats(it(), nodata))
                })
                .collect())
        }
        let float = info.dtype.is_float();
        let read = cog::dispatch_sample_type!(info.dtype, T => summarise::<T>(&r, &bands, full, info.nodata, float, info.width as usize));
        for (i, row) in rows.iter().enumerate() {
            let mut problems = Vec::new();
            if (info.width, info.height) != (row.width, row.height) {
                problems.push(format!("size {}x{}", info.width, info.height));
            }
            if info.dtype.gdal_name() != row.dtype {
                problems.push(format!("type {}", info.dtype));
            }
            if (info.block[0], info.block[1]) != row.block {
                problems.push(format!("block {:?}", info.block));
            }
            let ovr: Vec<(u64, u64)> = info.overviews.iter().map(|o| (o[0], o[1])).collect();
            if ovr != row.overviews {
                problems.push(format!("overviews {ovr:?} vs {:?}", row.overviews));
            }
            let comp_ok = match row.compression.as_str() {
                "" => info.compression == "NONE",
                "YCbCr JPEG" => info.compression == "JPEG" && info.photometric == 6,
                c => info.compression == c,
            };
            if !comp_ok {
                problems.push(format!(
                    "compression {} vs {}",
                    info.compression, row.compression
                ));
            }
            let pred = if row.predictor.is_empty() {
                1
            } else {
                row.predictor.parse().unwrap()
            };
            if info.predictor != pred {
                problems.push(format!("predictor {} vs {pred}", info.predictor));
            }
            match (info.nodata, row.nodata) {
                (None, None) => {}
                (Some(a), Some(b)) if a == b || (a.is_nan() && b.is_nan()) => {}
                (a, b) => problems.push(format!("nodata {a:?} vs {b:?}")),
            }
            match &read {
                Err(e) => problems.push(format!("read: {e}")),
                Ok(summaries) => {
                    let (ck, (n, min, max, mean, std)) = summaries[i];
                    if is_jpeg(&row.compression) {
                        // Lossy: same extent of valid pixels within 0.2 %, mean within 0.5.
                        let dv = (n as f64 - row.valid as f64).abs() / row.valid as f64;
                        if dv > 0.002 || (mean - row.mean.unwrap()).abs() > 0.5 {
                            problems.push(format!(
                                "JPEG valid {n} mean {mean} vs {} {:?}",
                                row.valid, row.mean
                            ));
                        }
                    } else {
                        if ck != row.checksum {
                            problems.push(format!("checksum {ck} vs {}", row.checksum));
                        }
                        if n != row.valid {
                            problems.push(format!("valid {n} vs {}", row.valid));
                        }
                        if let (Some(rmin), Some(rmax), Some(rmean), Some(rstd)) =
                            (row.min, row.max, row.mean, row.std)
                            && (!close(min, rmin, 1e-8)
                                || !close(max, rmax, 1e-8)
                                || !close(mean, rmean, 1e-8)
                                || !close(std, rstd, 1e-7))
                        {
                            problems.push(format!(
                                "stats {min} {max} {mean} {std} vs {rmin} {rmax} {rmean} {rstd}"
                            ));
                        }
                    }
                }
            }
            checked += 1;
            if !problems.is_empty() {
                failures.push(format!("{rel} band {}: {}", row.band, problems.join("; ")));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} bands differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 80, "only {checked} bands checked");
}

/// Windows (tile-crossing, edge, and an overview window) read by us and by
/// `gdal_translate -srcwin` give the same pixels (JPEG: within a few levels).
#[test]
fn windows_equal_gdal_translate_srcwin() {
    let store = Store::new(cloud::StoreOptions::default());
    let mut failures = Vec::new();
    let mut compared = 0;
    for (rel, rows) in &all_rows() {
        let path = data_str(rel);
        let r = open(&store, &path);
        let info = r.info().clone();
        let (w, h) = (info.width, info.height);
        let jpeg = is_jpeg(&rows[0].compression);
        // A window crossing block boundaries near the middle, and one at the bottom-right edge.
        let bw = info.block[0].min(w);
        let bh = info.block[1].min(h);
        let mut wins = vec![
            (
                0usize,
                Window::new(
                    (bw.saturating_sub(7)).min(w - 1),
                    (bh.saturating_sub(5)).min(h - 1),
                    17.min(w - (bw.saturating_sub(7)).min(w - 1)),
                    13.min(h - (bh.saturating_sub(5)).min(h - 1)),
                ),
            ),
            (
                0,
                Window::new(w - w.min(23), h - h.min(19), w.min(23), h.min(19)),
            ),
        ];
        if !info.overviews.is_empty() {
            let [ow, oh] = info.overviews[0];
            wins.push((
                1,
                Window::new(ow / 3, oh / 3, (ow / 3).clamp(1, 40), (oh / 3).clamp(1, 40)),
            ));
        }
        let band = rows.last().unwrap().band;
        for (ovr, win) in wins {
            let ours = match r.read_window::<f64>(band, win, ovr) {
                Ok(x) => x,
                Err(e) => {
                    failures.push(format!("{rel} {win:?} ovr {ovr}: {e}"));
                    continue;
                }
            };
            let theirs = gdal_window(
                &path,
                band,
                win.col_off,
                win.row_off,
                win.width,
                win.height,
                (ovr > 0).then_some(ovr),
            );
            let ours: Vec<f64> = ours.data.iter().copied().collect();
            compared += 1;
            let max_diff = ours
                .iter()
                .zip(&theirs)
                .map(|(a, b)| {
                    if a.is_nan() && b.is_nan() {
                        0.0
                    } else {
                        (a - b).abs()
                    }
                })
                .fold(
                    0.0f64,
                    |m, d| if d.is_nan() { f64::INFINITY } else { m.max(d) },
                );
            let tol = if jpeg { 40.0 } else { 0.0 };
            let mean_diff = ours
                .iter()
                .zip(&theirs)
                .map(|(a, b)| (a - b).abs())
                .sum::<f64>()
                / ours.len() as f64;
            if max_diff > tol || (jpeg && mean_diff > 3.0) {
                failures.push(format!(
                    "{rel} band {band} {win:?} ovr {ovr}: max diff {max_diff}, mean diff {mean_diff}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared >= 90, "only {compared} windows compared");
}

/// Geotransform, CRS (EPSG code) and nodata as `gdalinfo -json` reports them.
#[test]
fn georeferencing_equals_gdalinfo_json() {
    let store = Store::new(cloud::StoreOptions::default());
    let mut failures = Vec::new();
    for rel in all_rows().keys() {
        let path = data_str(rel);
        let r = open(&store, &path);
        let info = r.info();
        let j = gdalinfo_json(&path);
        if let Some(gt) = j.get("geoTransform") {
            let gt: Vec<f64> = gt
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let ok = gt
                .iter()
                .zip(info.geotransform.0.iter())
                .all(|(a, b)| (a - b).abs() <= 1e-9 * a.abs().max(1.0));
            if !ok || !info.georeferenced {
                failures.push(format!(
                    "{rel}: geotransform {:?} vs {gt:?}",
                    info.geotransform.0
                ));
            }
        } else if info.georeferenced {
            failures.push(format!("{rel}: we see a geotransform GDAL does not"));
        }
        // GDAL's CRS: the EPSG id of the WKT2's outermost ID, if any.
        let wkt = j["coordinateSystem"]["wkt"].as_str().unwrap_or("");
        let gdal_epsg = crate_epsg_of_wkt2(wkt);
        if gdal_epsg != info.crs.epsg {
            failures.push(format!(
                "{rel}: EPSG {:?} vs GDAL {gdal_epsg:?}",
                info.crs.epsg
            ));
        }
        if wkt.is_empty() != (info.crs.is_unknown() && info.geokeys.keys.is_empty()) {
            failures.push(format!(
                "{rel}: CRS presence differs (GDAL wkt empty = {})",
                wkt.is_empty()
            ));
        }
        let nd = j["bands"][0].get("noDataValue").map(|v| match v {
            serde_json::Value::String(s) => cog::geo::parse_nodata(s).unwrap(),
            v => v.as_f64().unwrap(),
        });
        // gdalinfo prints a Float32 band's nodata with 9 digits.
        let same = match (nd, info.nodata) {
            (None, None) => true,
            (Some(a), Some(b)) => a == b || (a.is_nan() && b.is_nan()) || (a as f32 == b as f32),
            _ => false,
        };
        if !same {
            failures.push(format!("{rel}: nodata {:?} vs GDAL {nd:?}", info.nodata));
        }
        let scale = j["bands"][0].get("scale").and_then(|v| v.as_f64());
        let offset = j["bands"][0].get("offset").and_then(|v| v.as_f64());
        if scale != info.band_info[0].scale
            && !(scale == Some(1.0) && info.band_info[0].scale.is_none())
        {
            failures.push(format!(
                "{rel}: scale {:?} vs GDAL {scale:?}",
                info.band_info[0].scale
            ));
        }
        if offset != info.band_info[0].offset
            && !(offset == Some(0.0) && info.band_info[0].offset.is_none())
        {
            failures.push(format!(
                "{rel}: offset {:?} vs GDAL {offset:?}",
                info.band_info[0].offset
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The EPSG code of the outermost `ID["EPSG",n]` of a WKT2 string (GDAL's identification).
fn crate_epsg_of_wkt2(wkt: &str) -> Option<u32> {
    let mut depth = 0i32;
    let mut found = None;
    let b = wkt.as_bytes();
    for i in 0..b.len() {
        match b[i] {
            b'[' => depth += 1,
            b']' => depth -= 1,
            _ if depth == 1 && wkt[i..].starts_with("ID[\"EPSG\",") => {
                let rest = &wkt[i + 10..];
                let end = rest.find(']').unwrap();
                found = rest[..end].trim().parse().ok();
            }
            _ => {}
        }
    }
    found
}
