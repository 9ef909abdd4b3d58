//! Sentinel-2 scene addressing: MGRS tile ids, Earth Search scene ids, the `sentinel-cogs`
//! key layout, STAC items (Earth Search v0 and v1), and resolution of a tile + date (or
//! scene id, or STAC item) to the URIs and radiometry of its B04, B08 and SCL COGs.
//!
//! Layout of the AWS Open Data bucket (anonymous, us-west-2):
//! `s3://sentinel-cogs/sentinel-s2-l2a-cogs/{zone}/{band}/{square}/{yyyy}/{m}/{id}/B04.tif`
//! with the zone and month not zero-padded and
//! `id = {S2A|S2B|S2C}_{zone}{band}{square}_{yyyymmdd}_{sequence}_L2A`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use cloud::Store;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::NdviError;
use crate::radiometry::{ProcessingBaseline, Radiometry, s2_offset_dn};

/// Root of the Sentinel-2 L2A COG archive on AWS Open Data.
pub const SENTINEL_COGS_ROOT: &str = "s3://sentinel-cogs/sentinel-s2-l2a-cogs";

/// A 100 km MGRS grid tile as used by Sentinel-2, e.g. `29RKH`: UTM zone 29, latitude band
/// R, 100 km square KH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MgrsTile {
    /// UTM zone, 1–60.
    pub zone: u8,
    /// Latitude band letter, C–X without I and O.
    pub band: char,
    /// 100 km square letters (column A–Z, row A–V, without I and O).
    pub square: [char; 2],
}

impl MgrsTile {
    /// `{zone}/{band}/{square}`, the tile's part of a `sentinel-cogs` key.
    pub fn key_path(&self) -> String {
        format!(
            "{}/{}/{}{}",
            self.zone, self.band, self.square[0], self.square[1]
        )
    }

    /// EPSG code of the tile's WGS 84 / UTM projection (326zz north of the equator, 327zz
    /// south), as used by the Sentinel-2 products.
    pub fn epsg(&self) -> u32 {
        if self.band >= 'N' {
            32600 + self.zone as u32
        } else {
            32700 + self.zone as u32
        }
    }
}

impl fmt::Display for MgrsTile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}{}",
            self.zone, self.band, self.square[0], self.square[1]
        )
    }
}

impl FromStr for MgrsTile {
    type Err = NdviError;

    /// Parses `29RKH`, `T29RKH`, `09UWA`, `9UWA` (case-insensitive, `MGRS-` prefix allowed).
    fn from_str(input: &str) -> Result<Self, NdviError> {
        let err = |reason: &str| NdviError::InvalidName {
            what: "MGRS tile id",
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let s = input.trim().to_ascii_uppercase();
        let s = s.strip_prefix("MGRS-").unwrap_or(&s);
        let s = s.strip_prefix('T').unwrap_or(s);
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 2 {
            return Err(err(
                "expected a UTM zone of 1 or 2 digits first, as in 29RKH",
            ));
        }
        let zone: u8 = s[..digits].parse().map_err(|_| err("bad UTM zone"))?;
        if !(1..=60).contains(&zone) {
            return Err(err("UTM zone must be 1-60"));
        }
        let letters: Vec<char> = s[digits..].chars().collect();
        if letters.len() != 3 {
            return Err(err(
                "expected a latitude band and two square letters after the zone",
            ));
        }
        let band = letters[0];
        if !('C'..='X').contains(&band) || band == 'I' || band == 'O' {
            return Err(err("latitude band must be a letter C-X other than I and O"));
        }
        let (col, row) = (letters[1], letters[2]);
        if !col.is_ascii_uppercase() || col == 'I' || col == 'O' {
            return Err(err("100 km column letter must be A-Z other than I and O"));
        }
        if !('A'..='V').contains(&row) || row == 'I' || row == 'O' {
            return Err(err("100 km row letter must be A-V other than I and O"));
        }
        Ok(MgrsTile {
            zone,
            band,
            square: [col, row],
        })
    }
}

impl Serialize for MgrsTile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MgrsTile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An Earth Search Sentinel-2 scene id, e.g. `S2A_29RKH_20200219_0_L2A`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SceneId {
    /// `S2A`, `S2B`, `S2C`, ...
    pub satellite: String,
    pub tile: MgrsTile,
    /// Acquisition date (UTC).
    pub date: NaiveDate,
    /// Sequence number of scenes of the same tile and date (usually 0).
    pub sequence: u32,
    /// Processing level, `L2A` (or `L1C`).
    pub level: String,
}

impl SceneId {
    /// The scene's folder under `root`: `{root}/{zone}/{band}/{square}/{yyyy}/{m}/{id}`.
    pub fn folder(&self, root: &str) -> String {
        cloud::uri::join(
            &month_prefix(root, &self.tile, self.date),
            &self.to_string(),
        )
    }

    /// URI of an asset file of the scene (`B04.tif`, `SCL.tif`, `{id}.json`).
    pub fn asset_uri(&self, root: &str, file: &str) -> String {
        cloud::uri::join(&self.folder(root), file)
    }
}

impl fmt::Display for SceneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}_{}_{}_{}_{}",
            self.satellite,
            self.tile,
            self.date.format("%Y%m%d"),
            self.sequence,
            self.level
        )
    }
}

impl FromStr for SceneId {
    type Err = NdviError;

    fn from_str(input: &str) -> Result<Self, NdviError> {
        let err = |reason: &str| NdviError::InvalidName {
            what: "Sentinel-2 scene id",
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = input.split('_').collect();
        let [sat, tile, date, seq, level] = parts[..] else {
            return Err(err(
                "expected SAT_TILE_YYYYMMDD_SEQ_LEVEL, as in S2A_29RKH_20200219_0_L2A",
            ));
        };
        if sat.len() != 3 || !sat.starts_with("S2") || !sat.as_bytes()[2].is_ascii_uppercase() {
            return Err(err("satellite must be S2A, S2B, S2C, ..."));
        }
        let tile: MgrsTile = tile.parse().map_err(|_| err("bad MGRS tile"))?;
        if date.len() != 8 {
            return Err(err("date must be YYYYMMDD"));
        }
        let date = NaiveDate::parse_from_str(date, "%Y%m%d").map_err(|_| err("bad date"))?;
        let sequence = seq.parse().map_err(|_| err("bad sequence number"))?;
        if level != "L2A" && level != "L1C" {
            return Err(err("level must be L2A or L1C"));
        }
        Ok(SceneId {
            satellite: sat.to_string(),
            tile,
            date,
            sequence,
            level: level.to_string(),
        })
    }
}

/// `{root}/{zone}/{band}/{square}/{yyyy}/{m}` (month not zero-padded): where all scenes of
/// a tile in a month live.
pub fn month_prefix(root: &str, tile: &MgrsTile, date: NaiveDate) -> String {
    cloud::uri::join(
        root,
        &format!("{}/{}/{}", tile.key_path(), date.year(), date.month()),
    )
}

/// Parses a date as `YYYY-MM-DD` or `YYYYMMDD`.
pub fn parse_date(input: &str) -> Result<NaiveDate, NdviError> {
    let s = input.trim();
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| {
            if s.len() == 8 {
                NaiveDate::parse_from_str(s, "%Y%m%d")
            } else {
                NaiveDate::parse_from_str("", "%Y")
            }
        })
        .map_err(|_| NdviError::InvalidName {
            what: "date",
            input: input.to_string(),
            reason: "expected YYYY-MM-DD".to_string(),
        })
}

/// A band (or the SCL) of a resolved scene, with its URI.
pub const RED: &str = "B04.tif";
/// NIR band file of a scene folder.
pub const NIR: &str = "B08.tif";
/// Scene classification file of a scene folder.
pub const SCL: &str = "SCL.tif";

/// A resolved scene: the COGs NDVI needs and how to turn their DNs into reflectance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SceneBands {
    /// Scene id or another label for messages and metadata.
    #[serde(default)]
    pub id: Option<String>,
    /// Red band (B04, 10 m) URI.
    pub red: String,
    /// Near-infrared band (B08, 10 m) URI.
    pub nir: String,
    /// Scene classification (SCL, 20 m) URI, needed only for cloud masking.
    #[serde(default)]
    pub scl: Option<String>,
    /// DN → reflectance of both bands (scale 0.0001 and the baseline's offset).
    #[serde(default)]
    pub radiometry: BandRadiometry,
    /// Processing baseline (`04.00`), when known.
    #[serde(default)]
    pub processing_baseline: Option<String>,
}

impl SceneBands {
    /// A scene from explicit band URIs with Sentinel-2 radiometry of `offset_dn`.
    pub fn from_uris(red: &str, nir: &str, scl: Option<&str>, offset_dn: f64) -> Self {
        SceneBands {
            id: None,
            red: red.to_string(),
            nir: nir.to_string(),
            scl: scl.map(str::to_string),
            radiometry: BandRadiometry::sentinel2(offset_dn),
            processing_baseline: None,
        }
    }

    /// A name for messages: the id, else the red band's URI.
    pub fn label(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.red)
    }
}

/// Radiometry of the red and NIR bands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandRadiometry {
    pub red: Radiometry,
    pub nir: Radiometry,
}

impl Default for BandRadiometry {
    fn default() -> Self {
        BandRadiometry::sentinel2(0.0)
    }
}

impl BandRadiometry {
    /// Both bands Sentinel-2 with DN offset `offset_dn`.
    pub fn sentinel2(offset_dn: f64) -> Self {
        BandRadiometry {
            red: Radiometry::sentinel2(offset_dn),
            nir: Radiometry::sentinel2(offset_dn),
        }
    }
}

/// One asset of a STAC item.
#[derive(Debug, Clone, PartialEq)]
pub struct StacAsset {
    /// Resolved URI (S3 objects of AWS HTTPS URLs become `s3://bucket/key`; relative hrefs
    /// are resolved against the item's location).
    pub uri: String,
    /// `raster:bands[0].scale`.
    pub scale: Option<f64>,
    /// `raster:bands[0].offset`, reflectance units.
    pub offset: Option<f64>,
    /// `raster:bands[0].nodata`.
    pub nodata: Option<f64>,
}

/// What this crate needs from a Sentinel-2 L2A STAC item (Earth Search v1 or v0).
#[derive(Debug, Clone, PartialEq)]
pub struct StacItem {
    /// Where the item was read from.
    pub uri: String,
    pub id: String,
    /// Acquisition date from `datetime`.
    pub date: Option<NaiveDate>,
    /// From `mgrs:*` (v1), `sentinel:*` (v0) or the id.
    pub tile: Option<MgrsTile>,
    /// `s2:processing_baseline` (v1) or `sentinel:processing_baseline`, else from the product
    /// id's `N0214` part.
    pub processing_baseline: Option<ProcessingBaseline>,
    /// `earthsearch:boa_offset_applied` or `sentinel:boa_offset_applied`.
    pub boa_offset_applied: Option<bool>,
    /// `proj:epsg`.
    pub epsg: Option<u32>,
    /// COG assets by key (`red`, `nir`, `scl` in v1; `B04`, `B08`, `SCL` in v0).
    pub assets: BTreeMap<String, StacAsset>,
}

/// Where to take a STAC item's band files from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetLocation {
    /// The asset hrefs (AWS HTTPS URLs read as `s3://` objects).
    #[default]
    Href,
    /// Files of the same name next to the item (a downloaded scene folder).
    NextToItem,
}

/// `https://{bucket}.s3[.{region}].amazonaws.com/{key}` and
/// `https://s3[.{region}].amazonaws.com/{bucket}/{key}` → `s3://{bucket}/{key}`; anything
/// else unchanged.
pub fn s3_uri_of_href(href: &str) -> String {
    let Some(rest) = href
        .strip_prefix("https://")
        .or_else(|| href.strip_prefix("http://"))
    else {
        return href.to_string();
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !host.ends_with(".amazonaws.com") || path.is_empty() {
        return href.to_string();
    }
    let labels: Vec<&str> = host.split('.').collect();
    // Path style: s3.amazonaws.com / s3.{region}.amazonaws.com / s3-{region}.amazonaws.com.
    if labels[0] == "s3" || labels[0].starts_with("s3-") {
        if let Some((bucket, key)) = path.split_once('/') {
            return format!("s3://{bucket}/{key}");
        }
        return href.to_string();
    }
    // Virtual-host style: {bucket}.s3[.region].amazonaws.com (bucket may contain dots).
    if let Some(i) = labels
        .iter()
        .position(|l| *l == "s3" || l.starts_with("s3-"))
        && i > 0
    {
        let bucket = labels[..i].join(".");
        return format!("s3://{bucket}/{path}");
    }
    href.to_string()
}

fn is_absolute_uri(s: &str) -> bool {
    s.contains("://") || s.starts_with('/')
}

/// Parses a Sentinel-2 STAC item read from `uri`.
pub fn parse_stac_item(uri: &str, json: &[u8]) -> Result<StacItem, NdviError> {
    let err = |reason: String| NdviError::Stac {
        uri: uri.to_string(),
        reason,
    };
    let v: Value = serde_json::from_slice(json).map_err(|e| err(format!("invalid JSON: {e}")))?;
    if v.get("type").and_then(Value::as_str) != Some("Feature") {
        return Err(err("not a STAC item (type is not \"Feature\")".into()));
    }
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| err("no \"id\"".into()))?
        .to_string();
    let props = v
        .get("properties")
        .and_then(Value::as_object)
        .ok_or_else(|| err("no \"properties\" object".into()))?;
    let prop_str = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| props.get(*k).and_then(Value::as_str).map(str::to_string))
    };
    let prop_u64 = |keys: &[&str]| {
        keys.iter().find_map(|k| {
            let p = props.get(*k)?;
            p.as_u64().or_else(|| p.as_str()?.parse().ok())
        })
    };
    let date = prop_str(&["datetime"]).and_then(|d| {
        d.get(..10)
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
    });
    let tile_from_props = || -> Option<MgrsTile> {
        let zone = prop_u64(&["mgrs:utm_zone", "sentinel:utm_zone"])?;
        let band = prop_str(&["mgrs:latitude_band", "sentinel:latitude_band"])?;
        let square = prop_str(&["mgrs:grid_square", "sentinel:grid_square"])?;
        format!("{zone}{band}{square}").parse().ok()
    };
    let tile = tile_from_props()
        .or_else(|| {
            prop_str(&["grid:code"])
                .and_then(|g| g.strip_prefix("MGRS-").and_then(|t| t.parse().ok()))
        })
        .or_else(|| id.parse::<SceneId>().ok().map(|s| s.tile));
    let processing_baseline =
        match prop_str(&["s2:processing_baseline", "sentinel:processing_baseline"]) {
            Some(s) => Some(ProcessingBaseline::parse(&s).ok_or_else(|| {
                err(format!(
                    "processing baseline {s:?} is not of the form 04.00"
                ))
            })?),
            None => prop_str(&["s2:product_uri", "sentinel:product_id"]).and_then(|p| {
                p.split('_')
                    .find(|part| part.len() == 5 && part.starts_with('N'))
                    .and_then(ProcessingBaseline::parse)
            }),
        };
    let boa_offset_applied = [
        "earthsearch:boa_offset_applied",
        "sentinel:boa_offset_applied",
    ]
    .iter()
    .find_map(|k| props.get(*k).and_then(Value::as_bool));
    let epsg = prop_u64(&["proj:epsg"]).and_then(|e| u32::try_from(e).ok());

    let base = cloud::uri::parent(uri);
    let remote_item = !matches!(
        cloud::uri::Location::parse(uri),
        Ok(cloud::uri::Location::Local(_))
    );
    let mut assets = BTreeMap::new();
    if let Some(obj) = v.get("assets").and_then(Value::as_object) {
        for (key, a) in obj {
            let Some(href) = a.get("href").and_then(Value::as_str) else {
                continue;
            };
            let resolved = if is_absolute_uri(href) {
                s3_uri_of_href(href)
            } else {
                cloud::uri::join(&base, href.trim_start_matches("./"))
            };
            // An item from S3 or the web resolves its assets there: it cannot make this
            // machine read its own files (`file://`, `/etc/...`).
            if remote_item
                && matches!(
                    cloud::uri::Location::parse(&resolved),
                    Ok(cloud::uri::Location::Local(_)) | Err(_)
                )
            {
                return Err(err(format!(
                    "asset {key:?}: href {href:?} names a local file, which an item read from \
                     {uri} cannot do"
                )));
            }
            let band0 = a
                .get("raster:bands")
                .and_then(Value::as_array)
                .and_then(|b| b.first());
            let num = |k: &str| band0.and_then(|b| b.get(k)).and_then(Value::as_f64);
            assets.insert(
                key.clone(),
                StacAsset {
                    uri: resolved,
                    scale: num("scale"),
                    offset: num("offset"),
                    nodata: num("nodata"),
                },
            );
        }
    }
    Ok(StacItem {
        uri: uri.to_string(),
        id,
        date,
        tile,
        processing_baseline,
        boa_offset_applied,
        epsg,
        assets,
    })
}

/// Largest STAC item read: 16 MiB (real ones are a few KiB).
pub const MAX_STAC_ITEM_BYTES: u64 = 16 << 20;

/// Reads and parses the STAC item at `uri`.
pub fn read_stac_item(store: &Store, uri: &str) -> Result<StacItem, NdviError> {
    let bytes = store.get_capped(uri, MAX_STAC_ITEM_BYTES)?;
    parse_stac_item(uri, &bytes)
}

impl StacItem {
    /// The first asset among `keys`.
    pub fn asset(&self, keys: &[&str]) -> Option<&StacAsset> {
        keys.iter().find_map(|k| self.assets.get(*k))
    }

    /// The DN offset of the bands from the processing baseline, the boa-offset flag, the
    /// assets' `raster:bands` offset and the date (see [`s2_offset_dn`]).
    pub fn offset_dn(&self) -> Result<f64, NdviError> {
        let asset_offset = self.asset(&["red", "B04"]).and_then(|a| {
            let o = a.offset?;
            Some(o / a.scale.unwrap_or(crate::radiometry::S2_SCALE))
        });
        s2_offset_dn(
            self.processing_baseline,
            self.boa_offset_applied,
            asset_offset.map(|o| o.round()),
            self.date,
        )
        .ok_or_else(|| NdviError::UnknownOffset {
            scene: format!("{} ({})", self.id, self.uri),
            reason: "the item gives neither the processing baseline nor the offset and the \
                     acquisition is not before 25 January 2022"
                .to_string(),
        })
    }

    /// The scene's B04/B08/SCL and radiometry. With [`AssetLocation::NextToItem`] the band
    /// files are taken from the item's folder under the href's file name.
    pub fn scene_bands(&self, location: AssetLocation) -> Result<SceneBands, NdviError> {
        let missing = |what: &str| NdviError::MissingAsset {
            scene: format!("{} ({})", self.id, self.uri),
            what: format!("the item has no {what} asset"),
        };
        let place = |a: &StacAsset| match location {
            AssetLocation::Href => a.uri.clone(),
            AssetLocation::NextToItem => cloud::uri::join(
                &cloud::uri::parent(&self.uri),
                cloud::uri::file_name(&a.uri),
            ),
        };
        let red = self
            .asset(&["red", "B04"])
            .ok_or_else(|| missing("red (B04)"))?;
        let nir = self
            .asset(&["nir", "B08"])
            .ok_or_else(|| missing("nir (B08)"))?;
        for a in [red, nir] {
            if a.uri.to_ascii_lowercase().ends_with(".jp2") {
                return Err(NdviError::Jp2Unsupported { uri: a.uri.clone() });
            }
        }
        let scl = self.asset(&["scl", "SCL"]).map(place);
        let offset = self.offset_dn()?;
        let radiometry = |a: &StacAsset| Radiometry {
            scale: a.scale.unwrap_or(crate::radiometry::S2_SCALE),
            offset: offset * a.scale.unwrap_or(crate::radiometry::S2_SCALE),
        };
        Ok(SceneBands {
            id: Some(self.id.clone()),
            red: place(red),
            nir: place(nir),
            scl,
            radiometry: BandRadiometry {
                red: radiometry(red),
                nir: radiometry(nir),
            },
            processing_baseline: self.processing_baseline.map(|p| p.to_string()),
        })
    }
}

/// How a scene is named on the command line or in a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SceneRef {
    /// The tile's scene on this date (found by listing the archive).
    Date(NaiveDate),
    /// A scene id such as `S2A_29RKH_20200219_0_L2A`.
    Id(String),
    /// A STAC item URI (`….json`).
    StacItem(String),
}

impl FromStr for SceneRef {
    type Err = NdviError;

    /// `2020-02-19` / `20200219` → date; `S2A_29RKH_20200219_0_L2A` → id; `….json` → item.
    fn from_str(s: &str) -> Result<Self, NdviError> {
        if let Ok(d) = parse_date(s) {
            return Ok(SceneRef::Date(d));
        }
        if let Ok(id) = s.parse::<SceneId>() {
            return Ok(SceneRef::Id(id.to_string()));
        }
        if s.ends_with(".json") {
            return Ok(SceneRef::StacItem(s.to_string()));
        }
        Err(NdviError::InvalidName {
            what: "scene",
            input: s.to_string(),
            reason: "expected a date (YYYY-MM-DD), a scene id (S2A_29RKH_20200219_0_L2A) or a \
                     STAC item URI ending in .json"
                .to_string(),
        })
    }
}

/// The scene folders (ids) of `tile` on `date` under `root`, found by listing the month's
/// prefix. Only L2A scenes that have both `B04.tif` and `B08.tif` are returned, sorted.
/// Also returns every scene id seen in the month, for error messages.
pub fn find_scenes(
    store: &Store,
    root: &str,
    tile: &MgrsTile,
    date: NaiveDate,
) -> Result<(Vec<SceneId>, Vec<String>), NdviError> {
    let prefix = month_prefix(root, tile, date);
    let listing = store.list(&format!("{}/", prefix.trim_end_matches('/')))?;
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let base = format!("{}/", prefix.trim_end_matches('/'));
    for obj in listing {
        let Some(rel) = obj.uri.strip_prefix(&base) else {
            continue;
        };
        if let Some((folder, file)) = rel.split_once('/') {
            files
                .entry(folder.to_string())
                .or_default()
                .push(file.to_string());
        }
    }
    let seen: Vec<String> = files.keys().cloned().collect();
    let mut ids: Vec<SceneId> = files
        .iter()
        .filter_map(|(folder, names)| {
            let id: SceneId = folder.parse().ok()?;
            let complete = names.iter().any(|n| n == RED) && names.iter().any(|n| n == NIR);
            (id.tile == *tile && id.date == date && id.level == "L2A" && complete).then_some(id)
        })
        .collect();
    ids.sort();
    Ok((ids, seen))
}

/// Options of [`resolve_scene`].
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    /// DN offset to use instead of the one derived from the scene's metadata.
    pub offset_dn: Option<f64>,
    /// Where a STAC item's band files are.
    pub assets: AssetLocation,
}

/// Resolves `scene` of `tile` under the archive `root` (e.g. [`SENTINEL_COGS_ROOT`]) to its
/// band URIs and radiometry. For a date or id the scene folder's `{id}.json` STAC item, when
/// present, gives the processing baseline; without it, scenes acquired from 25 January 2022
/// need `options.offset_dn`.
pub fn resolve_scene(
    store: &Store,
    root: &str,
    tile: Option<&MgrsTile>,
    scene: &SceneRef,
    options: &ResolveOptions,
) -> Result<SceneBands, NdviError> {
    let id = match scene {
        SceneRef::StacItem(uri) => {
            let item = read_stac_item(store, uri)?;
            if let (Some(want), Some(got)) = (tile, item.tile)
                && *want != got
            {
                return Err(NdviError::Stac {
                    uri: uri.clone(),
                    reason: format!("the item is of tile {got}, not {want}"),
                });
            }
            let mut bands = item.scene_bands(options.assets)?;
            if let Some(o) = options.offset_dn {
                bands.radiometry = BandRadiometry::sentinel2(o);
            }
            return Ok(bands);
        }
        SceneRef::Id(s) => {
            let id: SceneId = s.parse()?;
            if let Some(t) = tile
                && id.tile != *t
            {
                return Err(NdviError::InvalidParameter(format!(
                    "scene {id} is of tile {}, not {t}",
                    id.tile
                )));
            }
            id
        }
        SceneRef::Date(date) => {
            let tile = tile.ok_or_else(|| {
                NdviError::InvalidParameter(format!(
                    "a scene given by date ({date}) needs the MGRS tile"
                ))
            })?;
            let (ids, seen) = find_scenes(store, root, tile, *date)?;
            let prefix = month_prefix(root, tile, *date);
            match ids.len() {
                0 => {
                    return Err(NdviError::SceneNotFound {
                        tile: tile.to_string(),
                        date: date.to_string(),
                        prefix,
                        found: seen,
                    });
                }
                1 => ids
                    .into_iter()
                    .next()
                    .ok_or_else(|| NdviError::InvalidParameter("scene list changed".to_string()))?,
                _ => {
                    return Err(NdviError::AmbiguousScene {
                        tile: tile.to_string(),
                        date: date.to_string(),
                        prefix,
                        candidates: ids.iter().map(ToString::to_string).collect(),
                    });
                }
            }
        }
    };
    let item_uri = id.asset_uri(root, &format!("{id}.json"));
    let item = match store.get_capped(&item_uri, MAX_STAC_ITEM_BYTES) {
        Ok(bytes) => Some(parse_stac_item(&item_uri, &bytes)?),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let offset = match (options.offset_dn, &item) {
        (Some(o), _) => o,
        (None, Some(item)) => item.offset_dn()?,
        (None, None) => s2_offset_dn(None, None, None, Some(id.date)).ok_or_else(|| {
            NdviError::UnknownOffset {
                scene: id.to_string(),
                reason: format!(
                    "acquired on {} (baseline 04.00 or later) and there is no STAC item at \
                     {item_uri} to say whether the offset was removed",
                    id.date
                ),
            }
        })?,
    };
    tracing::info!(scene = %id, offset_dn = offset, "resolved scene");
    let scl_uri = id.asset_uri(root, SCL);
    Ok(SceneBands {
        id: Some(id.to_string()),
        red: id.asset_uri(root, RED),
        nir: id.asset_uri(root, NIR),
        scl: Some(scl_uri),
        radiometry: BandRadiometry::sentinel2(offset),
        processing_baseline: item
            .as_ref()
            .and_then(|i| i.processing_baseline)
            .map(|p| p.to_string()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/sentinel");

    #[test]
    fn mgrs_tiles() {
        let t: MgrsTile = "29RKH".parse().unwrap();
        assert_eq!(t.zone, 29);
        assert_eq!(t.band, 'R');
        assert_eq!(t.square, ['K', 'H']);
        assert_eq!(t.key_path(), "29/R/KH");
        assert_eq!(t.epsg(), 32629);
        assert_eq!("t09uwa".parse::<MgrsTile>().unwrap().to_string(), "9UWA");
        assert_eq!(
            "MGRS-31NBJ".parse::<MgrsTile>().unwrap().key_path(),
            "31/N/BJ"
        );
        assert_eq!("56HLH".parse::<MgrsTile>().unwrap().epsg(), 32756);
        for bad in [
            "", "RKH", "61RKH", "0RKH", "29IKH", "29RKW", "29ROH", "29RK", "123RKH", "29RKHX",
        ] {
            assert!(bad.parse::<MgrsTile>().is_err(), "{bad}");
        }
    }

    #[test]
    fn scene_ids_and_keys() {
        let id: SceneId = "S2A_29RKH_20200219_0_L2A".parse().unwrap();
        assert_eq!(id.date, NaiveDate::from_ymd_opt(2020, 2, 19).unwrap());
        assert_eq!(id.to_string(), "S2A_29RKH_20200219_0_L2A");
        assert_eq!(
            id.asset_uri(SENTINEL_COGS_ROOT, RED),
            "s3://sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A/B04.tif"
        );
        let id: SceneId = "S2B_9UWA_20241206_1_L2A".parse().unwrap();
        assert_eq!(
            id.folder(SENTINEL_COGS_ROOT),
            "s3://sentinel-cogs/sentinel-s2-l2a-cogs/9/U/WA/2024/12/S2B_9UWA_20241206_1_L2A"
        );
        for bad in [
            "S2A_29RKH_2020021_0_L2A",
            "X2A_29RKH_20200219_0_L2A",
            "S2A_29RKH_20200230_0_L2A",
            "S2A_29RKH_20200219_x_L2A",
            "S2A_29RKH_20200219_0_L3",
            "S2A_29RKH_20200219_0",
        ] {
            assert!(bad.parse::<SceneId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn scene_refs() {
        let d = NaiveDate::from_ymd_opt(2020, 2, 19).unwrap();
        assert_eq!("2020-02-19".parse::<SceneRef>().unwrap(), SceneRef::Date(d));
        assert_eq!("20200219".parse::<SceneRef>().unwrap(), SceneRef::Date(d));
        assert_eq!(
            "S2A_29RKH_20200219_0_L2A".parse::<SceneRef>().unwrap(),
            SceneRef::Id("S2A_29RKH_20200219_0_L2A".into())
        );
        assert_eq!(
            "s3://b/x/item.json".parse::<SceneRef>().unwrap(),
            SceneRef::StacItem("s3://b/x/item.json".into())
        );
        assert!("2020-02-30".parse::<SceneRef>().is_err());
        assert!("yesterday".parse::<SceneRef>().is_err());
    }

    #[test]
    fn remote_items_cannot_name_local_files() {
        let item = |href: &str| {
            format!(
                r#"{{"type":"Feature","id":"S2A_29RKH_20200219_0_L2A",
                "properties":{{"datetime":"2020-02-19T11:21:00Z"}},
                "assets":{{"red":{{"href":"{href}"}}}}}}"#
            )
        };
        for href in ["file:///etc/passwd", "/etc/passwd"] {
            let e = parse_stac_item("s3://b/p/item.json", item(href).as_bytes()).unwrap_err();
            assert!(e.to_string().contains("names a local file"), "{e}");
            let e = parse_stac_item("https://example.org/item.json", item(href).as_bytes())
                .unwrap_err();
            assert!(e.to_string().contains("names a local file"), "{e}");
            // A local item may name local files.
            assert!(parse_stac_item("/data/item.json", item(href).as_bytes()).is_ok());
        }
        // Relative hrefs resolve beside the remote item.
        let ok = parse_stac_item("s3://b/p/item.json", item("B04.tif").as_bytes()).unwrap();
        assert_eq!(ok.assets["red"].uri, "s3://b/p/B04.tif");
    }

    #[test]
    fn https_hrefs_become_s3() {
        assert_eq!(
            s3_uri_of_href(
                "https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A/B04.tif"
            ),
            "s3://sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A/B04.tif"
        );
        assert_eq!(
            s3_uri_of_href("https://sentinel-cogs.s3.amazonaws.com/a/b.tif"),
            "s3://sentinel-cogs/a/b.tif"
        );
        assert_eq!(
            s3_uri_of_href("https://s3.us-west-2.amazonaws.com/bucket/a.tif"),
            "s3://bucket/a.tif"
        );
        assert_eq!(
            s3_uri_of_href("https://my.bucket.s3.eu-west-1.amazonaws.com/k"),
            "s3://my.bucket/k"
        );
        assert_eq!(
            s3_uri_of_href("https://example.org/a.tif"),
            "https://example.org/a.tif"
        );
        assert_eq!(s3_uri_of_href("s3://a/b"), "s3://a/b");
    }

    #[test]
    fn earth_search_v1_item() {
        let uri = format!("{FIXTURES}/s2_l2a_cogs_29RKH_20200219/S2A_29RKH_20200219_0_L2A.json");
        let item = read_stac_item(&Store::default(), &uri).unwrap();
        assert_eq!(item.id, "S2A_29RKH_20200219_0_L2A");
        assert_eq!(item.tile, Some("29RKH".parse().unwrap()));
        assert_eq!(item.date, NaiveDate::from_ymd_opt(2020, 2, 19));
        assert_eq!(item.processing_baseline, ProcessingBaseline::parse("02.14"));
        assert_eq!(item.boa_offset_applied, Some(false));
        assert_eq!(item.epsg, Some(32629));
        assert_eq!(item.offset_dn().unwrap(), 0.0);
        let red = item.asset(&["red"]).unwrap();
        assert_eq!(red.scale, Some(0.0001));
        assert_eq!(red.nodata, Some(0.0));
        let bands = item.scene_bands(AssetLocation::Href).unwrap();
        assert_eq!(
            bands.red,
            "s3://sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A/B04.tif"
        );
        assert!(bands.nir.ends_with("/B08.tif"));
        assert!(bands.scl.as_deref().unwrap().ends_with("/SCL.tif"));
        assert_eq!(bands.radiometry, BandRadiometry::sentinel2(0.0));
        let local = item.scene_bands(AssetLocation::NextToItem).unwrap();
        assert_eq!(
            local.red,
            format!("{FIXTURES}/s2_l2a_cogs_29RKH_20200219/B04.tif")
        );
        // The id's JPEG 2000 twins are not picked.
        assert!(item.assets.contains_key("red-jp2"));
    }

    #[test]
    fn earth_search_v0_item() {
        let uri = format!("{FIXTURES}/stac_items/S2A_31NBJ_20190524_0_L2A.json");
        let item = read_stac_item(&Store::default(), &uri).unwrap();
        assert_eq!(item.tile, Some("31NBJ".parse().unwrap()));
        // v0 has no baseline property; the product id's N0212 gives it.
        assert_eq!(item.processing_baseline, ProcessingBaseline::parse("02.12"));
        assert_eq!(item.offset_dn().unwrap(), 0.0);
        let bands = item.scene_bands(AssetLocation::Href).unwrap();
        assert_eq!(
            bands.nir,
            "s3://sentinel-cogs/sentinel-s2-l2a-cogs/31/N/BJ/2019/5/S2A_31NBJ_20190524_0_L2A/B08.tif"
        );
        assert!(bands.scl.is_some());
    }

    #[test]
    fn baseline_04_items() {
        // An Earth Search v1 item of a 2022 scene as the archive has it (offset -0.1 on the
        // assets), and the same with the offset already removed.
        let item = |pb: &str, applied: bool| {
            format!(
                r#"{{"type":"Feature","id":"S2B_52SFA_20220126_0_L2A",
                "properties":{{"datetime":"2022-01-26T02:16:11Z","s2:processing_baseline":"{pb}",
                  "earthsearch:boa_offset_applied":{applied},"mgrs:utm_zone":52,
                  "mgrs:latitude_band":"S","mgrs:grid_square":"FA"}},
                "assets":{{"red":{{"href":"https://sentinel-cogs.s3.us-west-2.amazonaws.com/x/B04.tif",
                  "raster:bands":[{{"nodata":0,"scale":0.0001,"offset":-0.1}}]}},
                  "nir":{{"href":"B08.tif","raster:bands":[{{"scale":0.0001,"offset":-0.1}}]}}}}}}"#
            )
        };
        let it = parse_stac_item("s3://b/p/item.json", item("04.00", false).as_bytes()).unwrap();
        assert_eq!(it.offset_dn().unwrap(), -1000.0);
        let bands = it.scene_bands(AssetLocation::Href).unwrap();
        assert_eq!(bands.nir, "s3://b/p/B08.tif", "relative href");
        assert_eq!(bands.radiometry.red.offset_dn(), -1000.0);
        assert!((bands.radiometry.red.offset + 0.1).abs() < 1e-12);
        assert!(bands.scl.is_none());
        let it = parse_stac_item("item.json", item("04.00", true).as_bytes()).unwrap();
        assert_eq!(it.offset_dn().unwrap(), 0.0);
        let bad = parse_stac_item("x.json", item("four", true).as_bytes()).unwrap_err();
        assert!(bad.to_string().contains("processing baseline"), "{bad}");
        let bad = parse_stac_item("x.json", b"{\"type\":\"FeatureCollection\"}").unwrap_err();
        assert!(bad.to_string().contains("x.json"), "{bad}");
    }
}
