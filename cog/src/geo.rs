//! GeoTIFF georeferencing (GeoKeys, ModelPixelScale/Tiepoint/Transformation) and GDAL's
//! private tags (GDAL_NODATA, GDAL_METADATA), both directions.

use serde::{Deserialize, Serialize};

use crate::raster::{Crs, GeoTransform};

/// GeoKey ids used here.
pub mod key {
    pub const GT_MODEL_TYPE: u16 = 1024;
    pub const GT_RASTER_TYPE: u16 = 1025;
    pub const GT_CITATION: u16 = 1026;
    pub const GEOGRAPHIC_TYPE: u16 = 2048;
    pub const GEOG_CITATION: u16 = 2049;
    pub const GEOG_GEODETIC_DATUM: u16 = 2050;
    pub const GEOG_PRIME_MERIDIAN: u16 = 2051;
    pub const GEOG_ANGULAR_UNITS: u16 = 2054;
    pub const GEOG_ELLIPSOID: u16 = 2056;
    pub const GEOG_SEMI_MAJOR_AXIS: u16 = 2057;
    pub const GEOG_SEMI_MINOR_AXIS: u16 = 2058;
    pub const GEOG_INV_FLATTENING: u16 = 2059;
    pub const GEOG_PRIME_MERIDIAN_LONG: u16 = 2061;
    pub const PROJECTED_CS_TYPE: u16 = 3072;
    pub const PCS_CITATION: u16 = 3073;
    pub const PROJ_LINEAR_UNITS: u16 = 3076;
}

/// The value of one GeoKey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GeoKeyValue {
    Short(Vec<u16>),
    Double(Vec<f64>),
    Ascii(String),
}

/// One GeoKey: id and value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeoKey {
    pub id: u16,
    pub value: GeoKeyValue,
}

/// A GeoKey directory, kept verbatim so a copy of a file keeps its CRS exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GeoKeys {
    pub keys: Vec<GeoKey>,
}

impl GeoKeys {
    /// Parses the GeoKeyDirectory (`dir`, SHORTs) with its double and ASCII parameter
    /// tags. Malformed entries are skipped (with the reason returned as warnings).
    pub fn parse(dir: &[u64], doubles: &[f64], ascii: &str) -> (GeoKeys, Vec<String>) {
        let mut keys = Vec::new();
        let mut warnings = Vec::new();
        if dir.len() < 4 {
            if !dir.is_empty() {
                warnings.push("GeoKeyDirectory shorter than its header".to_string());
            }
            return (GeoKeys { keys }, warnings);
        }
        let n = dir[3] as usize;
        for i in 0..n {
            let Some(e) = dir.get(4 + i * 4..8 + i * 4) else {
                warnings.push(format!("GeoKeyDirectory declares {n} keys but holds {i}"));
                break;
            };
            let (id, loc, count, off) = (e[0] as u16, e[1], e[2] as usize, e[3] as usize);
            let value = match loc {
                0 => GeoKeyValue::Short(vec![e[3] as u16]),
                34735 => match dir.get(off..off.saturating_add(count)) {
                    Some(v) => GeoKeyValue::Short(v.iter().map(|&x| x as u16).collect()),
                    None => {
                        warnings.push(format!("GeoKey {id}: SHORT values out of range"));
                        continue;
                    }
                },
                34736 => match doubles.get(off..off.saturating_add(count)) {
                    Some(v) => GeoKeyValue::Double(v.to_vec()),
                    None => {
                        warnings.push(format!("GeoKey {id}: DOUBLE values out of range"));
                        continue;
                    }
                },
                34737 => {
                    let s: Vec<char> = ascii.chars().collect();
                    match s.get(off..off.saturating_add(count)) {
                        Some(v) => {
                            let t: String = v.iter().collect();
                            GeoKeyValue::Ascii(t.trim_end_matches(['|', '\0']).to_string())
                        }
                        None => {
                            warnings.push(format!("GeoKey {id}: ASCII value out of range"));
                            continue;
                        }
                    }
                }
                other => {
                    warnings.push(format!("GeoKey {id}: unknown location tag {other}"));
                    continue;
                }
            };
            keys.push(GeoKey { id, value });
        }
        (GeoKeys { keys }, warnings)
    }

    /// The first SHORT value of key `id`.
    pub fn short(&self, id: u16) -> Option<u16> {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .and_then(|k| match &k.value {
                GeoKeyValue::Short(v) => v.first().copied(),
                _ => None,
            })
    }

    /// The first DOUBLE value of key `id`.
    pub fn double(&self, id: u16) -> Option<f64> {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .and_then(|k| match &k.value {
                GeoKeyValue::Double(v) => v.first().copied(),
                _ => None,
            })
    }

    /// The ASCII value of key `id`.
    pub fn ascii(&self, id: u16) -> Option<&str> {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .and_then(|k| match &k.value {
                GeoKeyValue::Ascii(s) => Some(s.as_str()),
                _ => None,
            })
    }

    /// True when GTRasterTypeGeoKey says PixelIsPoint.
    pub fn pixel_is_point(&self) -> bool {
        self.short(key::GT_RASTER_TYPE) == Some(2)
    }

    /// The CRS these keys describe: an EPSG code when the file names one, the WKT of an
    /// "ESRI PE String" citation when present.
    pub fn crs(&self) -> Crs {
        let model = self.short(key::GT_MODEL_TYPE);
        let pcs = self
            .short(key::PROJECTED_CS_TYPE)
            .filter(|&c| (1..32767).contains(&c));
        let gcs = self
            .short(key::GEOGRAPHIC_TYPE)
            .filter(|&c| (1..32767).contains(&c));
        let epsg = match model {
            Some(1) => pcs,
            Some(2) => gcs,
            _ => pcs.or(gcs),
        }
        .map(u32::from);
        let wkt = [key::GT_CITATION, key::PCS_CITATION, key::GEOG_CITATION]
            .iter()
            .filter_map(|&k| self.ascii(k))
            .find_map(|c| c.strip_prefix("ESRI PE String = ").map(str::to_string))
            .or_else(|| {
                if epsg.is_none() {
                    self.user_geographic_wkt()
                } else {
                    None
                }
            });
        Crs { epsg, wkt }
    }

    /// WKT1 of a user-defined geographic CRS given by its ellipsoid (GeoKeys 2057/2059 or
    /// 2058), with names from the GeogCitation as GDAL writes it.
    fn user_geographic_wkt(&self) -> Option<String> {
        if self.short(key::GT_MODEL_TYPE) != Some(2) {
            return None;
        }
        let a = self.double(key::GEOG_SEMI_MAJOR_AXIS)?;
        let inv_f = match self.double(key::GEOG_INV_FLATTENING) {
            Some(f) => f,
            None => {
                let b = self.double(key::GEOG_SEMI_MINOR_AXIS)?;
                if a == b { 0.0 } else { a / (a - b) }
            }
        };
        let cit = self.ascii(key::GEOG_CITATION).unwrap_or("");
        let field = |name: &str| {
            cit.split('|')
                .find_map(|p| p.trim().strip_prefix(name).map(|v| v.trim().to_string()))
        };
        let gcs = field("GCS Name = ").unwrap_or_else(|| "unknown".into());
        let datum = field("Datum = ").unwrap_or_else(|| "unknown".into());
        let ell = field("Ellipsoid = ").unwrap_or_else(|| "unknown".into());
        let pm = field("Primem = ").unwrap_or_else(|| "Greenwich".into());
        let pm_lon = self.double(key::GEOG_PRIME_MERIDIAN_LONG).unwrap_or(0.0);
        Some(format!(
            "GEOGCS[\"{gcs}\",DATUM[\"{datum}\",SPHEROID[\"{ell}\",{a},{inv_f}]],PRIMEM[\"{pm}\",{pm_lon}],UNIT[\"degree\",0.0174532925199433,AUTHORITY[\"EPSG\",\"9122\"]],AXIS[\"Latitude\",NORTH],AXIS[\"Longitude\",EAST]]"
        ))
    }

    /// Keys that describe `crs`: EPSG codes as GDAL writes them, else WKT in an
    /// "ESRI PE String" citation (which GDAL reads back). `pixel_is_point` sets
    /// GTRasterTypeGeoKey.
    pub fn from_crs(crs: &Crs, pixel_is_point: bool) -> GeoKeys {
        let mut keys = Vec::new();
        let raster = GeoKey {
            id: key::GT_RASTER_TYPE,
            value: GeoKeyValue::Short(vec![if pixel_is_point { 2 } else { 1 }]),
        };
        let short = |id, v| GeoKey {
            id,
            value: GeoKeyValue::Short(vec![v]),
        };
        if let Some(code) = crs.epsg.filter(|&c| c > 0 && c < 32767) {
            if crs.is_geographic() {
                keys.push(short(key::GT_MODEL_TYPE, 2));
                keys.push(raster);
                keys.push(short(key::GEOGRAPHIC_TYPE, code as u16));
                keys.push(short(key::GEOG_ANGULAR_UNITS, 9102));
            } else {
                keys.push(short(key::GT_MODEL_TYPE, 1));
                keys.push(raster);
                keys.push(short(key::PROJECTED_CS_TYPE, code as u16));
            }
        } else if let Some(g) = crs
            .wkt
            .as_deref()
            .and_then(|w| user_geographic_keys(w, pixel_is_point))
        {
            return g;
        } else if let Some(w) = &crs.wkt {
            let geographic = crs.is_geographic();
            keys.push(short(key::GT_MODEL_TYPE, if geographic { 2 } else { 1 }));
            keys.push(raster);
            keys.push(GeoKey {
                id: key::GT_CITATION,
                value: GeoKeyValue::Ascii(format!("ESRI PE String = {w}")),
            });
            keys.push(short(
                if geographic {
                    key::GEOGRAPHIC_TYPE
                } else {
                    key::PROJECTED_CS_TYPE
                },
                32767,
            ));
        }
        GeoKeys { keys }
    }

    /// Serialises into the three GeoTIFF tags: (directory SHORTs, doubles, ASCII).
    pub fn encode(&self) -> (Vec<u16>, Vec<f64>, String) {
        let mut keys = self.keys.clone();
        keys.sort_by_key(|k| k.id);
        let mut dir = vec![1u16, 1, 0, keys.len() as u16];
        let mut doubles = Vec::new();
        let mut ascii = String::new();
        let mut extra_shorts: Vec<(usize, Vec<u16>)> = Vec::new();
        for k in &keys {
            match &k.value {
                GeoKeyValue::Short(v) if v.len() == 1 => dir.extend([k.id, 0, 1, v[0]]),
                GeoKeyValue::Short(v) => {
                    let at = dir.len();
                    dir.extend([k.id, 34735, v.len() as u16, 0]);
                    extra_shorts.push((at, v.clone()));
                }
                GeoKeyValue::Double(v) => {
                    dir.extend([k.id, 34736, v.len() as u16, doubles.len() as u16]);
                    doubles.extend_from_slice(v);
                }
                GeoKeyValue::Ascii(s) => {
                    let start = ascii.chars().count();
                    ascii.push_str(s);
                    ascii.push('|');
                    dir.extend([k.id, 34737, (s.chars().count() + 1) as u16, start as u16]);
                }
            }
        }
        for (at, v) in extra_shorts {
            dir[at + 3] = dir.len() as u16;
            dir.extend(v);
        }
        (dir, doubles, ascii)
    }
}

/// GeoKeys of a WKT1 `GEOGCS[name, DATUM[name, SPHEROID[name, a, 1/f]], PRIMEM[name, lon],
/// UNIT["degree", ...]]` as a user-defined geographic CRS (what GDAL writes for one).
fn user_geographic_keys(wkt: &str, pixel_is_point: bool) -> Option<GeoKeys> {
    let t = wkt.trim_start();
    if !t.starts_with("GEOGCS[") || t.contains("AUTHORITY[\"EPSG\",\"4") {
        return None;
    }
    let quoted = |after: &str| -> Option<(String, &str)> {
        let i = t.find(after)? + after.len();
        let rest = &t[i..];
        let q0 = rest.find('"')? + 1;
        let q1 = q0 + rest[q0..].find('"')?;
        Some((rest[q0..q1].to_string(), &rest[q1 + 1..]))
    };
    let (gcs, _) = quoted("GEOGCS[")?;
    let (datum, _) = quoted("DATUM[")?;
    let (ell, rest) = quoted("SPHEROID[")?;
    let nums: Vec<f64> = rest
        .trim_start_matches(',')
        .split([',', ']'])
        .take(2)
        .map(|x| x.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .ok()?;
    let (pm, pm_rest) = quoted("PRIMEM[").unwrap_or(("Greenwich".into(), ",0]"));
    let pm_lon: f64 = pm_rest
        .trim_start_matches(',')
        .split([',', ']'])
        .next()
        .and_then(|x| x.trim().parse().ok())
        .unwrap_or(0.0);
    if !t.contains("UNIT[\"degree\"") || nums.len() != 2 {
        return None;
    }
    let short = |id, v| GeoKey {
        id,
        value: GeoKeyValue::Short(vec![v]),
    };
    let dbl = |id, v| GeoKey {
        id,
        value: GeoKeyValue::Double(vec![v]),
    };
    Some(GeoKeys {
        keys: vec![
            short(key::GT_MODEL_TYPE, 2),
            short(key::GT_RASTER_TYPE, if pixel_is_point { 2 } else { 1 }),
            short(key::GEOGRAPHIC_TYPE, 32767),
            GeoKey {
                id: key::GEOG_CITATION,
                value: GeoKeyValue::Ascii(format!(
                    "GCS Name = {gcs}|Datum = {datum}|Ellipsoid = {ell}|Primem = {pm}"
                )),
            },
            short(key::GEOG_GEODETIC_DATUM, 32767),
            short(key::GEOG_ANGULAR_UNITS, 9102),
            short(key::GEOG_ELLIPSOID, 32767),
            dbl(key::GEOG_SEMI_MAJOR_AXIS, nums[0]),
            dbl(key::GEOG_INV_FLATTENING, nums[1]),
            dbl(key::GEOG_PRIME_MERIDIAN_LONG, pm_lon),
        ],
    })
}

/// The geotransform from ModelTransformation, or ModelTiepoint + ModelPixelScale; `None`
/// when the file has neither (or only GCPs). PixelIsPoint files are shifted by half a pixel
/// as GDAL does by default.
pub fn transform_from_tags(
    pixel_scale: Option<&[f64]>,
    tiepoints: Option<&[f64]>,
    model: Option<&[f64]>,
    pixel_is_point: bool,
) -> Option<GeoTransform> {
    let mut gt = if let Some(m) = model.filter(|m| m.len() >= 16) {
        GeoTransform([m[3], m[0], m[1], m[7], m[4], m[5]])
    } else {
        let s = pixel_scale.filter(|s| s.len() >= 2)?;
        let t = tiepoints.filter(|t| t.len() >= 6)?;
        let (i, j, x, y) = (t[0], t[1], t[3], t[4]);
        GeoTransform([x - i * s[0], s[0], 0.0, y + j * s[1], 0.0, -s[1]])
    };
    if pixel_is_point {
        let g = &mut gt.0;
        g[0] -= 0.5 * g[1] + 0.5 * g[2];
        g[3] -= 0.5 * g[4] + 0.5 * g[5];
    }
    Some(gt)
}

/// Parses GDAL_NODATA text ("-9999", "nan", "-3.4e+38", "inf").
pub fn parse_nodata(s: &str) -> Option<f64> {
    let t = s.trim().trim_end_matches('\0').trim();
    let l = t.to_ascii_lowercase();
    match l.as_str() {
        "nan" | "-nan" | "+nan" | "1.#qnan" | "-1.#qnan" | "-1.#ind" => Some(f64::NAN),
        _ => l.parse::<f64>().ok(),
    }
}

/// Formats a nodata value for GDAL_NODATA (integers without a fraction, floats exactly).
pub fn format_nodata(v: f64) -> String {
    if v.is_nan() {
        "nan".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:e}")
    }
}

/// One `<Item>` of GDAL_METADATA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataItem {
    pub name: String,
    /// 0-based band index for band items, `None` for dataset items.
    pub sample: Option<u32>,
    /// `scale`, `offset`, `description`, `unittype`, ... for band properties.
    pub role: Option<String>,
    pub domain: Option<String>,
    pub value: String,
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let pat = format!("{name}=\"");
    let mut from = 0;
    while let Some(i) = tag[from..].find(&pat) {
        let at = from + i;
        let ok = at == 0 || tag.as_bytes()[at - 1].is_ascii_whitespace();
        let start = at + pat.len();
        let end = start + tag[start..].find('"')?;
        if ok {
            return Some(unescape(&tag[start..end]));
        }
        from = end;
    }
    None
}

/// Parses GDAL_METADATA XML (`<GDALMetadata><Item name=.. sample=.. role=..>v</Item>..`).
pub fn parse_gdal_metadata(xml: &str) -> Vec<MetadataItem> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<Item") {
        rest = &rest[i + 5..];
        let Some(close) = rest.find('>') else { break };
        let tag = &rest[..close];
        let self_closing = tag.ends_with('/');
        rest = &rest[close + 1..];
        let value = if self_closing {
            String::new()
        } else {
            let Some(end) = rest.find("</Item>") else {
                break;
            };
            let v = unescape(&rest[..end]);
            rest = &rest[end + 7..];
            v
        };
        let Some(name) = attr(tag, "name") else {
            continue;
        };
        out.push(MetadataItem {
            name,
            sample: attr(tag, "sample").and_then(|s| s.trim().parse().ok()),
            role: attr(tag, "role"),
            domain: attr(tag, "domain"),
            value,
        });
    }
    out
}

/// Serialises items as GDAL_METADATA XML.
pub fn format_gdal_metadata(items: &[MetadataItem]) -> String {
    let mut s = String::from("<GDALMetadata>\n");
    for it in items {
        s.push_str(&format!("  <Item name=\"{}\"", escape(&it.name)));
        if let Some(b) = it.sample {
            s.push_str(&format!(" sample=\"{b}\""));
        }
        if let Some(r) = &it.role {
            s.push_str(&format!(" role=\"{}\"", escape(r)));
        }
        if let Some(d) = &it.domain {
            s.push_str(&format!(" domain=\"{}\"", escape(d)));
        }
        s.push_str(&format!(">{}</Item>\n", escape(&it.value)));
    }
    s.push_str("</GDALMetadata>\n");
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn geokeys_round_trip() {
        let gk = GeoKeys::from_crs(&Crs::epsg(25830), false);
        let (dir, d, a) = gk.encode();
        let dir64: Vec<u64> = dir.iter().map(|&x| x as u64).collect();
        let (back, w) = GeoKeys::parse(&dir64, &d, &a);
        assert!(w.is_empty());
        assert_eq!(back.crs(), Crs::epsg(25830));
        let g = GeoKeys::from_crs(&Crs::epsg(4326), false);
        assert_eq!(g.short(key::GT_MODEL_TYPE), Some(2));
        let wkt = Crs {
            epsg: None,
            wkt: Some("PROJCS[\"x\"]".into()),
        };
        let (dir, d, a) = GeoKeys::from_crs(&wkt, false).encode();
        let dir64: Vec<u64> = dir.iter().map(|&x| x as u64).collect();
        assert_eq!(GeoKeys::parse(&dir64, &d, &a).0.crs(), wkt);
    }

    #[test]
    fn metadata_xml() {
        let xml = "<GDALMetadata>\n  <Item name=\"OFFSET\" sample=\"0\" role=\"offset\">-0.1</Item>\n  <Item name=\"SCALE\" sample=\"0\" role=\"scale\">0.0001</Item>\n  <Item name=\"A&amp;B\">x&lt;y</Item>\n</GDALMetadata>";
        let items = parse_gdal_metadata(xml);
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].role.as_deref(), Some("scale"));
        assert_eq!(items[1].value, "0.0001");
        assert_eq!(items[2].name, "A&B");
        assert_eq!(items[2].value, "x<y");
        assert_eq!(parse_gdal_metadata(&format_gdal_metadata(&items)), items);
    }

    #[test]
    fn nodata_text() {
        assert!(parse_nodata("nan").unwrap().is_nan());
        assert_eq!(
            parse_nodata("-3.3999999521443642e+38"),
            Some(-3.3999999521443642e38)
        );
        assert_eq!(
            parse_nodata(&format_nodata(-3.3999999521443642e38)),
            Some(-3.3999999521443642e38)
        );
        assert_eq!(format_nodata(-9999.0), "-9999");
    }
}
