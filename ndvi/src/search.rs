//! Sentinel-2 scenes by place and time from a STAC API (Earth Search v1 `sentinel-2-l2a` by
//! default): the `POST /search` bodies, and the choice of the least-cloudy scene per MGRS
//! tile and period. Pure planning, no I/O: the driver sends the requests.
//!
//! The API filters by `bbox`, `datetime` and the `query` extension (`eo:cloud_cover`,
//! `grid:code`); [`candidate`] and [`pick`] check every item again, so an API that ignores
//! part of a request cannot slip a cloudy, late or foreign scene in.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::error::NdviError;
use crate::scene::MgrsTile;

/// Earth Search v1, Element 84's STAC API over the `sentinel-cogs` archive.
pub const EARTH_SEARCH: &str = "https://earth-search.aws.element84.com/v1";
/// The collection of Sentinel-2 L2A COGs there.
pub const COLLECTION: &str = "sentinel-2-l2a";
/// Items asked for per page.
pub const PAGE_LIMIT: u32 = 100;

fn invalid(what: &'static str, input: &str, reason: impl Into<String>) -> NdviError {
    NdviError::InvalidName {
        what,
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// A period of days, both ends included: `2022-05-01/2022-05-31` (one day: `2022-05-15`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Period {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

impl FromStr for Period {
    type Err = NdviError;

    fn from_str(s: &str) -> Result<Period, NdviError> {
        let (a, b) = s.split_once('/').unwrap_or((s, s));
        let day = |d: &str| {
            NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                .map_err(|_| invalid("period", s, "expected YYYY-MM-DD/YYYY-MM-DD"))
        };
        let (first, last) = (day(a)?, day(b)?);
        if last < first {
            return Err(invalid("period", s, "the period ends before it starts"));
        }
        if (last - first).num_days() > 366 {
            return Err(invalid("period", s, "a period is at most a year"));
        }
        Ok(Period { first, last })
    }
}

impl Period {
    /// The STAC `datetime` interval: the first day's start to the last day's end, UTC.
    pub fn interval(&self) -> String {
        format!("{}T00:00:00Z/{}T23:59:59Z", self.first, self.last)
    }

    /// Whether `t` falls on one of the period's days (UTC).
    pub fn contains(&self, t: &DateTime<Utc>) -> bool {
        let d = t.date_naive();
        self.first <= d && d <= self.last
    }
}

/// Where to look: a bounding box or MGRS tiles.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    /// West, south, east, north in degrees (WGS 84).
    Bbox([f64; 4]),
    /// MGRS tiles such as `29RKH`.
    Tiles(Vec<MgrsTile>),
}

impl Area {
    /// `W,S,E,N` in degrees, checked: longitudes in −180..180, latitudes in −90..90,
    /// south below north, west below east (no antimeridian crossing), at most 10° a side.
    pub fn bbox(s: &str) -> Result<Area, NdviError> {
        let v: Vec<f64> = s
            .split(',')
            .map(|x| x.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| invalid("bbox", s, "expected four numbers W,S,E,N (degrees)"))?;
        let [w, south, e, n] = v[..] else {
            return Err(invalid(
                "bbox",
                s,
                "expected four numbers W,S,E,N (degrees)",
            ));
        };
        let lon = |x: f64| (-180.0..=180.0).contains(&x);
        let lat = |x: f64| (-90.0..=90.0).contains(&x);
        if !(lon(w) && lon(e) && lat(south) && lat(n)) {
            return Err(invalid(
                "bbox",
                s,
                "longitudes are in -180..180, latitudes in -90..90",
            ));
        }
        if w >= e || south >= n {
            return Err(invalid(
                "bbox",
                s,
                "west must be below east and south below north",
            ));
        }
        if e - w > 10.0 || n - south > 10.0 {
            return Err(invalid(
                "bbox",
                s,
                "at most 10 degrees a side (split larger regions)",
            ));
        }
        Ok(Area::Bbox([w, south, e, n]))
    }

    /// `29RKH,30SXG`: MGRS tiles.
    pub fn tiles(s: &str) -> Result<Area, NdviError> {
        let tiles = s
            .split(',')
            .filter(|t| !t.trim().is_empty())
            .map(|t| t.trim().parse::<MgrsTile>())
            .collect::<Result<Vec<_>, _>>()?;
        if tiles.is_empty() {
            return Err(invalid("MGRS tiles", s, "no tile given"));
        }
        Ok(Area::Tiles(tiles))
    }
}

/// A search: where, the two periods, the cloud limit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SearchRequest {
    pub collection: String,
    pub area: Area,
    pub before: Period,
    pub after: Period,
    /// Largest `eo:cloud_cover` accepted, percent (0–100).
    pub max_cloud: f64,
}

impl SearchRequest {
    /// Checks the request: the cloud limit in 0..=100, the periods in order.
    pub fn validate(&self) -> Result<(), NdviError> {
        if !(0.0..=100.0).contains(&self.max_cloud) {
            return Err(invalid(
                "cloud limit",
                &self.max_cloud.to_string(),
                "a percentage, 0 to 100",
            ));
        }
        if self.after.first <= self.before.last {
            return Err(invalid(
                "periods",
                &format!("{}..{}", self.before.last, self.after.first),
                "the after period must start after the before period ends",
            ));
        }
        Ok(())
    }

    /// The `POST /search` body for one period.
    pub fn body(&self, period: &Period) -> Value {
        let mut query = json!({ "eo:cloud_cover": { "lte": self.max_cloud } });
        let mut body = json!({
            "collections": [self.collection],
            "datetime": period.interval(),
            "limit": PAGE_LIMIT,
        });
        match &self.area {
            Area::Bbox(b) => body["bbox"] = json!(b),
            Area::Tiles(t) => {
                let codes: Vec<String> = t.iter().map(|t| format!("MGRS-{t}")).collect();
                query["grid:code"] = json!({ "in": codes });
            }
        }
        body["query"] = query;
        body
    }
}

/// A scene a search found.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Candidate {
    pub id: String,
    pub tile: MgrsTile,
    pub datetime: DateTime<Utc>,
    /// `eo:cloud_cover`, percent.
    pub cloud: f64,
    /// The item as the API gave it.
    pub item: Value,
}

/// The candidate an item is, or why it is not one: it needs an id, a `datetime`, an
/// `eo:cloud_cover` and its MGRS tile (`grid:code` `MGRS-29RKH`, or the `mgrs:*` fields).
pub fn candidate(item: &Value) -> Result<Candidate, NdviError> {
    let id = item["id"].as_str().unwrap_or("").to_string();
    let bad = |reason: &str| NdviError::Stac {
        uri: format!("search result {id:?}"),
        reason: reason.to_string(),
    };
    if id.is_empty() {
        return Err(bad("an item without an id"));
    }
    let p = &item["properties"];
    let datetime = p["datetime"]
        .as_str()
        .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
        .ok_or_else(|| bad("no RFC 3339 datetime"))?
        .with_timezone(&Utc);
    let cloud = p["eo:cloud_cover"]
        .as_f64()
        .filter(|c| (0.0..=100.0).contains(c))
        .ok_or_else(|| bad("no eo:cloud_cover in 0..100"))?;
    let code = match p["grid:code"].as_str() {
        Some(c) => c.strip_prefix("MGRS-").unwrap_or(c).to_string(),
        None => format!(
            "{}{}{}",
            p["mgrs:utm_zone"].as_u64().unwrap_or(0),
            p["mgrs:latitude_band"].as_str().unwrap_or(""),
            p["mgrs:grid_square"].as_str().unwrap_or("")
        ),
    };
    let tile = code
        .parse::<MgrsTile>()
        .map_err(|_| bad(&format!("no MGRS tile (grid:code or mgrs:*): {code:?}")))?;
    Ok(Candidate {
        id,
        tile,
        datetime,
        cloud,
        item: item.clone(),
    })
}

/// The least-cloudy scene of each tile among `candidates` that fall in `period`, are at most
/// `max_cloud` and (for [`Area::Tiles`]) are of the tiles asked for; ties go to the later
/// scene, then to the greater id, so the choice does not depend on the API's order.
pub fn pick(
    candidates: &[Candidate],
    period: &Period,
    max_cloud: f64,
    area: &Area,
) -> BTreeMap<MgrsTile, Candidate> {
    let mut best: BTreeMap<MgrsTile, Candidate> = BTreeMap::new();
    for c in candidates {
        let wanted = match area {
            Area::Tiles(t) => t.contains(&c.tile),
            Area::Bbox(_) => true,
        };
        if !wanted || !period.contains(&c.datetime) || c.cloud > max_cloud {
            continue;
        }
        let better = match best.get(&c.tile) {
            None => true,
            Some(b) => {
                (
                    c.cloud,
                    std::cmp::Reverse(c.datetime),
                    std::cmp::Reverse(&c.id),
                ) < (
                    b.cloud,
                    std::cmp::Reverse(b.datetime),
                    std::cmp::Reverse(&b.id),
                )
            }
        };
        if better {
            best.insert(c.tile, c.clone());
        }
    }
    best
}

/// The `next` page of a search answer: `(method, href, body)` from its `rel: next` link
/// (a POST link's body merged into `previous` when it says `merge: true`).
pub fn next_page(answer: &Value, previous: &Value) -> Option<(String, String, Option<Value>)> {
    let link = answer["links"]
        .as_array()?
        .iter()
        .find(|l| l["rel"] == "next")?;
    let href = link["href"].as_str()?.to_string();
    let method = link["method"]
        .as_str()
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let body = (method == "POST").then(|| {
        let mut body = if link["merge"] == true {
            previous.clone()
        } else {
            json!({})
        };
        if let (Some(b), Some(extra)) = (body.as_object_mut(), link["body"].as_object()) {
            for (k, v) in extra {
                b.insert(k.clone(), v.clone());
            }
        }
        body
    });
    Some((method, href, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, code: &str, day: &str, cloud: f64) -> Value {
        json!({"type": "Feature", "id": id, "properties": {
            "datetime": format!("{day}T11:00:00.123Z"), "eo:cloud_cover": cloud,
            "grid:code": format!("MGRS-{code}")}})
    }

    #[test]
    fn periods_areas_and_bodies() {
        let p: Period = "2022-05-01/2022-05-31".parse().unwrap();
        assert_eq!(p.interval(), "2022-05-01T00:00:00Z/2022-05-31T23:59:59Z");
        let day: Period = "2022-05-15".parse().unwrap();
        assert_eq!(day.first, day.last);
        assert!("2022-06-01/2022-05-01".parse::<Period>().is_err());
        assert!("2022-05-01/2024-05-01".parse::<Period>().is_err());
        assert!(Area::bbox("-7,37,-6,38").is_ok());
        for bad in [
            "-7,37,-6",
            "-7,38,-6,37",
            "-190,37,-6,38",
            "0,0,20,1",
            "a,b,c,d",
        ] {
            assert!(Area::bbox(bad).is_err(), "{bad}");
        }
        let r = SearchRequest {
            collection: COLLECTION.into(),
            area: Area::tiles("29RKH, 30SXG").unwrap(),
            before: p,
            after: "2022-08-01/2022-08-31".parse().unwrap(),
            max_cloud: 20.0,
        };
        r.validate().unwrap();
        let b = r.body(&r.before);
        assert_eq!(
            b["query"]["grid:code"]["in"],
            json!(["MGRS-29RKH", "MGRS-30SXG"])
        );
        assert_eq!(b["query"]["eo:cloud_cover"]["lte"], 20.0);
        assert_eq!(b["collections"], json!(["sentinel-2-l2a"]));
        let swapped = SearchRequest {
            after: r.before,
            before: r.after,
            ..r.clone()
        };
        assert!(swapped.validate().is_err());
        assert!(
            SearchRequest {
                max_cloud: 101.0,
                ..r
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn the_least_cloudy_scene_of_each_tile_whatever_the_order() {
        let p: Period = "2022-05-01/2022-05-31".parse().unwrap();
        let items = [
            item("A1", "29RKH", "2022-05-03", 12.0),
            item("A2", "29RKH", "2022-05-13", 3.5),
            item("A3", "29RKH", "2022-05-23", 3.5), // tie: the later wins
            item("A4", "29RKH", "2022-06-02", 0.0), // outside the period
            item("B1", "30SXG", "2022-05-10", 25.0), // over the limit
            item("C1", "31TCF", "2022-05-10", 1.0), // not asked for
        ];
        let mut cands: Vec<Candidate> = items.iter().map(|i| candidate(i).unwrap()).collect();
        let area = Area::tiles("29RKH,30SXG").unwrap();
        let best = pick(&cands, &p, 20.0, &area);
        assert_eq!(best.len(), 1);
        assert_eq!(best.values().next().unwrap().id, "A3");
        cands.reverse();
        assert_eq!(
            pick(&cands, &p, 20.0, &area).values().next().unwrap().id,
            "A3"
        );
        // A bbox search takes every tile it returns.
        let all = pick(&cands, &p, 20.0, &Area::bbox("-5,20,5,30").unwrap());
        assert_eq!(all.len(), 2);
        // Items the choice cannot use are named.
        let mut no_cloud = item("X", "29RKH", "2022-05-03", 1.0);
        no_cloud["properties"]
            .as_object_mut()
            .unwrap()
            .remove("eo:cloud_cover");
        assert!(
            candidate(&no_cloud)
                .unwrap_err()
                .to_string()
                .contains("eo:cloud_cover")
        );
    }

    #[test]
    fn next_pages_follow_post_and_get_links() {
        let prev = json!({"collections": ["c"], "limit": 100});
        let a = json!({"links": [{"rel": "next", "href": "http://x/search", "method": "POST",
            "body": {"next": "tok"}, "merge": true}]});
        let (m, h, b) = next_page(&a, &prev).unwrap();
        assert_eq!((m.as_str(), h.as_str()), ("POST", "http://x/search"));
        assert_eq!(
            b.unwrap(),
            json!({"collections": ["c"], "limit": 100, "next": "tok"})
        );
        let g = json!({"links": [{"rel": "next", "href": "http://x/search?page=2"}]});
        assert_eq!(next_page(&g, &prev).unwrap().0, "GET");
        assert!(next_page(&json!({"links": []}), &prev).is_none());
    }
}
