//! Per-plot tables of a run over many tiles and days: the rows the tiles of one day wrote
//! ([`crate::crops::stats_csv`]) added up per plot ([`merge_tiles`], [`day_csv`]), and the
//! days of a season added up ([`season_totals`], [`season_csv`]), with the irrigated-area
//! columns of an NDVI product ([`crate::irrigation`]) when one is given.
//!
//! A plot cut by tile edges has a row in each tile it reaches: pixels, covered area and
//! water volume add up; the means are weighted by pixels.

use std::collections::BTreeMap;

use cloud::{Store, StoreError};

use crate::crops::PlotStats;
use crate::irrigation::PlotNdvi;

/// The columns of a tile's per-plot table and of a day's merged one.
pub const PLOT_COLUMNS: [&str; 10] = [
    "plot_id",
    "uso_sigpac",
    "kc",
    "area_m2",
    "pixels",
    "covered_m2",
    "complete",
    "et0_mean_mm",
    "etc_mean_mm",
    "volume_m3_day",
];

/// The columns of a season's table (before the NDVI ones).
pub const SEASON_COLUMNS: [&str; 10] = [
    "plot_id",
    "uso_sigpac",
    "kc",
    "area_m2",
    "covered_m2",
    "complete",
    "days",
    "et0_mm",
    "etc_mm",
    "volume_m3",
];

/// The columns of the irrigated-plot rule, after the others when an NDVI product is given.
pub const NDVI_COLUMNS: [&str; 3] = ["ndvi_mean", "irrigated_m2", "irrigated"];

/// Largest per-plot table of a tile that [`merge_tiles`] reads, bytes.
pub const MAX_TABLE_BYTES: u64 = 1 << 30;

/// Errors reading or writing per-plot tables.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotTableError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A tile's table that cannot be read: a missing column, a value that is not a number.
    #[error("{uri}: {message}")]
    Invalid { uri: String, message: String },
    #[error("{what}: {message}")]
    Encode { what: &'static str, message: String },
}

/// One plot over the tiles of one day.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotTotal {
    pub uso_sigpac: String,
    pub kc: Option<f64>,
    /// Polygon area, m².
    pub area_m2: f64,
    /// Pixels with an ET0 whose centre is in the plot, in every tile.
    pub pixels: u64,
    /// Their area, m².
    pub covered_m2: f64,
    /// True when one tile holds the whole plot.
    pub complete: bool,
    /// Σ ET0 × pixels and Σ ETc × pixels (for pixel-weighted means).
    et0_sum: f64,
    etc_sum: f64,
    etc_pixels: u64,
    /// Water use, m³/day.
    pub volume: Option<f64>,
}

impl PlotTotal {
    /// Mean ET0 over the plot's pixels, mm/day.
    pub fn et0_mean(&self) -> Option<f64> {
        (self.pixels > 0).then(|| self.et0_sum / self.pixels as f64)
    }
    /// Mean ETc over the plot's pixels with a Kc, mm/day.
    pub fn etc_mean(&self) -> Option<f64> {
        (self.etc_pixels > 0).then(|| self.etc_sum / self.etc_pixels as f64)
    }
}

/// The row of `s` in a per-plot table ([`PLOT_COLUMNS`]).
pub fn stats_row(s: &PlotStats) -> [String; 10] {
    let o = |v: Option<f64>, d: usize| v.map_or(String::new(), |v| format!("{v:.d$}"));
    [
        s.plot_id.clone(),
        s.uso_sigpac.clone(),
        o(s.kc, 2),
        format!("{:.1}", s.area_m2),
        s.pixels.to_string(),
        format!("{:.1}", s.covered_m2),
        s.complete.to_string(),
        o(s.et0_mean_mm, 3),
        o(s.etc_mean_mm, 3),
        o(s.volume_m3_day, 3),
    ]
}

/// Reads the per-plot tables the tiles of one day wrote and adds up each plot's rows.
pub fn merge_tiles(
    store: &Store,
    uris: &[String],
) -> Result<BTreeMap<String, PlotTotal>, PlotTableError> {
    let mut out: BTreeMap<String, PlotTotal> = BTreeMap::new();
    for uri in uris {
        let bytes = store.get_capped(uri, MAX_TABLE_BYTES)?;
        let mut r = csv::Reader::from_reader(bytes.as_ref());
        let bad = |message: String| PlotTableError::Invalid {
            uri: uri.clone(),
            message,
        };
        let headers = r.headers().map_err(|e| bad(e.to_string()))?.clone();
        let mut col = [0usize; PLOT_COLUMNS.len()];
        for (c, name) in col.iter_mut().zip(PLOT_COLUMNS) {
            *c = headers
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| bad(format!("no column {name}")))?;
        }
        let [id, uso, kc, area, pixels, covered, complete, et0, etc, vol] = col;
        for (line, row) in r.records().enumerate() {
            let row = row.map_err(|e| bad(e.to_string()))?;
            let num = |i: usize| -> Result<Option<f64>, PlotTableError> {
                let s = row.get(i).unwrap_or("").trim();
                if s.is_empty() {
                    return Ok(None);
                }
                s.parse::<f64>()
                    .map(Some)
                    .map_err(|_| bad(format!("line {}: {s:?} is not a number", line + 2)))
            };
            let n = num(pixels)?.unwrap_or(0.0) as u64;
            let e = out
                .entry(row.get(id).unwrap_or("").to_string())
                .or_insert_with(|| PlotTotal {
                    uso_sigpac: row.get(uso).unwrap_or("").to_string(),
                    kc: None,
                    area_m2: 0.0,
                    pixels: 0,
                    covered_m2: 0.0,
                    complete: false,
                    et0_sum: 0.0,
                    etc_sum: 0.0,
                    etc_pixels: 0,
                    volume: None,
                });
            e.kc = e.kc.or(num(kc)?);
            e.area_m2 = num(area)?.unwrap_or(e.area_m2);
            e.pixels += n;
            e.covered_m2 += num(covered)?.unwrap_or(0.0);
            e.complete |= row.get(complete).is_some_and(|s| s == "true");
            if let Some(v) = num(et0)? {
                e.et0_sum += v * n as f64;
            }
            if let Some(v) = num(etc)? {
                e.etc_sum += v * n as f64;
                e.etc_pixels += n;
            }
            if let Some(v) = num(vol)? {
                e.volume = Some(e.volume.unwrap_or(0.0) + v);
            }
        }
    }
    Ok(out)
}

fn ndvi_values(ndvi: Option<&BTreeMap<String, PlotNdvi>>, id: &str) -> Vec<String> {
    let Some(ndvi) = ndvi else {
        return Vec::new();
    };
    match ndvi.get(id) {
        Some(n) => vec![
            n.ndvi_mean.map_or(String::new(), |m| format!("{m:.4}")),
            format!("{:.1}", n.irrigated_m2),
            n.irrigated.to_string(),
        ],
        None => vec![String::new(), String::new(), "false".to_string()],
    }
}

/// A table of `head` (then the NDVI columns when `ndvi` is given) and `rows`.
fn table<'a>(
    what: &'static str,
    head: &[&str],
    rows: impl Iterator<Item = (&'a String, Vec<String>)>,
    ndvi: Option<&BTreeMap<String, PlotNdvi>>,
) -> Result<Vec<u8>, PlotTableError> {
    let err = |e: &dyn std::fmt::Display| PlotTableError::Encode {
        what,
        message: e.to_string(),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut head = head.to_vec();
    if ndvi.is_some() {
        head.extend(NDVI_COLUMNS);
    }
    w.write_record(&head).map_err(|e| err(&e))?;
    for (id, mut row) in rows {
        row.extend(ndvi_values(ndvi, id));
        w.write_record(&row).map_err(|e| err(&e))?;
    }
    w.into_inner().map_err(|e| err(&e))
}

/// `plots.csv`: one day's plots over every tile ([`PLOT_COLUMNS`], then the NDVI columns
/// when given).
pub fn day_csv(
    plots: &BTreeMap<String, PlotTotal>,
    ndvi: Option<&BTreeMap<String, PlotNdvi>>,
) -> Result<Vec<u8>, PlotTableError> {
    let rows = plots.iter().map(|(id, p)| {
        let stats = PlotStats {
            plot_id: id.clone(),
            uso_sigpac: p.uso_sigpac.clone(),
            kc: p.kc,
            area_m2: p.area_m2,
            pixels: p.pixels,
            covered_m2: p.covered_m2,
            complete: p.complete,
            et0_mean_mm: p.et0_mean(),
            etc_mean_mm: p.etc_mean(),
            volume_m3_day: p.volume,
        };
        (id, stats_row(&stats).to_vec())
    });
    table("plots.csv", &PLOT_COLUMNS, rows, ndvi)
}

/// One plot's figures over a season.
#[derive(Debug, Clone, PartialEq)]
pub struct SeasonTotal {
    pub uso_sigpac: String,
    pub kc: Option<f64>,
    pub area_m2: f64,
    pub covered_m2: f64,
    pub complete: bool,
    /// Days with a value.
    pub days: u32,
    /// Σ over the days of the plot's mean ET0 and ETc, mm.
    pub et0_mm: f64,
    pub etc_mm: f64,
    /// Σ over the days of its water volume, m³.
    pub volume_m3: f64,
}

/// Adds each plot's days up (`days`: each day's tiles already merged by [`merge_tiles`]).
pub fn season_totals(days: &[BTreeMap<String, PlotTotal>]) -> BTreeMap<String, SeasonTotal> {
    let mut out: BTreeMap<String, SeasonTotal> = BTreeMap::new();
    for day in days {
        for (id, p) in day {
            let e = out.entry(id.clone()).or_insert_with(|| SeasonTotal {
                uso_sigpac: p.uso_sigpac.clone(),
                kc: p.kc,
                area_m2: p.area_m2,
                covered_m2: p.covered_m2,
                complete: p.complete,
                days: 0,
                et0_mm: 0.0,
                etc_mm: 0.0,
                volume_m3: 0.0,
            });
            let Some(et0) = p.et0_mean() else { continue };
            e.days += 1;
            e.et0_mm += et0;
            e.etc_mm += p.etc_mean().unwrap_or(0.0);
            e.volume_m3 += p.volume.unwrap_or(0.0);
        }
    }
    out
}

/// `plots_season.csv`: each plot's season totals ([`SEASON_COLUMNS`], then the NDVI columns
/// when given).
pub fn season_csv(
    plots: &BTreeMap<String, SeasonTotal>,
    ndvi: Option<&BTreeMap<String, PlotNdvi>>,
) -> Result<Vec<u8>, PlotTableError> {
    let rows = plots.iter().map(|(id, p)| {
        let row = vec![
            id.clone(),
            p.uso_sigpac.clone(),
            p.kc.map_or(String::new(), |k| format!("{k:.2}")),
            format!("{:.1}", p.area_m2),
            format!("{:.1}", p.covered_m2),
            p.complete.to_string(),
            p.days.to_string(),
            format!("{:.3}", p.et0_mm),
            format!("{:.3}", p.etc_mm),
            format!("{:.3}", p.volume_m3),
        ];
        (id, row)
    });
    table("plots_season.csv", &SEASON_COLUMNS, rows, ndvi)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plot_rows_add_up_across_tiles() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::default();
        let head = format!("{}\n", PLOT_COLUMNS.join(","));
        let a = dir.path().join("a.csv").display().to_string();
        let b = dir.path().join("b.csv").display().to_string();
        std::fs::write(&a, format!("{head}p1,VI,0.70,1000.0,30,750.0,false,5.000,3.500,2.625\np2,OV,0.70,100.0,4,100.0,true,6.000,4.200,0.420\n")).unwrap();
        std::fs::write(
            &b,
            format!("{head}p1,VI,0.70,1000.0,10,250.0,false,7.000,4.900,1.225\n"),
        )
        .unwrap();
        let m = merge_tiles(&store, &[a.clone(), b]).unwrap();
        let p1 = &m["p1"];
        assert_eq!(p1.pixels, 40);
        assert!((p1.covered_m2 - 1000.0).abs() < 1e-9);
        assert!((p1.volume.unwrap() - 3.85).abs() < 1e-9);
        assert!((p1.et0_mean().unwrap() - 5.5).abs() < 1e-9); // (30·5 + 10·7) / 40
        assert!(m["p2"].complete);
        let text = String::from_utf8(day_csv(&m, None).unwrap()).unwrap();
        assert!(text.starts_with(&head), "{text}");
        assert!(
            text.contains("p1,VI,0.70,1000.0,40,1000.0,false,5.500,3.850,3.850"),
            "{text}"
        );
        // Two days of the same tiles: a season of twice each day.
        let season = season_totals(&[m.clone(), m]);
        assert_eq!(season["p1"].days, 2);
        assert!((season["p1"].volume_m3 - 7.7).abs() < 1e-9);
        let text = String::from_utf8(season_csv(&season, None).unwrap()).unwrap();
        assert!(
            text.contains("p1,VI,0.70,1000.0,1000.0,false,2,11.000,7.700,7.700"),
            "{text}"
        );
        // A table without a column is refused, naming the file and the column.
        std::fs::write(&a, "plot_id,pixels\np1,3\n").unwrap();
        let e = merge_tiles(&store, std::slice::from_ref(&a))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&a) && e.contains("no column uso_sigpac"), "{e}");
    }
}
