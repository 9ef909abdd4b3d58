//! Tabular mode: daily ET0 for every row of a station CSV (`water et0 IN.csv -o OUT.csv`).
//!
//! Input columns (header names, any order, extra columns kept as they are):
//! - `date` (YYYY-MM-DD), `lat_deg` (degrees north), `elev_m` (m), `tmax_c`, `tmin_c` (°C);
//! - humidity, one of (first usable in this order, per row): `ea_kpa`, `tdew_c`,
//!   `rhmax_pct`+`rhmin_pct`, `rhmean_pct`;
//! - wind: `u2_m_s`, or `uz_m_s`+`z_wind_m` (converted with FAO-56 eq. 47);
//! - radiation: `rs_mj_m2` (MJ m⁻² day⁻¹), or `sunshine_h` (Ångström, as 0.25, bs 0.50);
//! - optional `g_mj_m2` (soil heat flux, default 0).
//!
//! The output repeats every input row with `et0_mm` (mm/day, 3 decimals) appended. A row with
//! missing or invalid values gets an empty `et0_mm` and a warning naming its line and the
//! problem; the file as a whole fails only when its header lacks a required column group.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};

use crate::et0::{self, DailyInput, Humidity, SoilHeat, Solar, Wind};
use crate::fao56::{ALBEDO_GRASS, ANGSTROM_AS, ANGSTROM_BS};

/// Why a whole table cannot be processed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    #[error("{uri}: {source}")]
    Store {
        uri: String,
        #[source]
        source: cloud::StoreError,
    },
    #[error("{uri}: CSV error: {source}")]
    Csv {
        uri: String,
        #[source]
        source: csv::Error,
    },
    #[error("{uri}: missing column(s): {what}")]
    MissingColumns { uri: String, what: String },
    #[error("{uri}: the header already has an `et0_mm` column")]
    HasOutputColumn { uri: String },
}

impl cloud::Classify for TableError {
    fn kind(&self) -> cloud::ErrorKind {
        match self {
            TableError::Store { source, .. } => source.kind(),
            _ => cloud::ErrorKind::InvalidInput,
        }
    }
}

/// A row that got no ET0, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RowWarning {
    /// 1-based line number in the input file (the header is line 1).
    pub line: u64,
    pub message: String,
}

/// What a table run did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TableReport {
    /// Data rows read.
    pub rows: u64,
    /// Rows that got an ET0.
    pub computed: u64,
    /// Rows left empty, with the reason.
    pub warnings: Vec<RowWarning>,
}

struct Columns {
    idx: HashMap<String, usize>,
}

impl Columns {
    fn get<'r>(&self, rec: &'r csv::StringRecord, name: &str) -> Option<&'r str> {
        let i = *self.idx.get(name)?;
        rec.get(i).map(str::trim).filter(|s| !s.is_empty())
    }
    fn has(&self, name: &str) -> bool {
        self.idx.contains_key(name)
    }
}

fn num(cols: &Columns, rec: &csv::StringRecord, name: &str) -> Result<Option<f64>, String> {
    match cols.get(rec, name) {
        None => Ok(None),
        Some(s) => match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(format!("{name} = {s:?} is not a number")),
        },
    }
}

fn required(cols: &Columns, rec: &csv::StringRecord, name: &str) -> Result<f64, String> {
    num(cols, rec, name)?.ok_or_else(|| format!("{name} is empty"))
}

/// Parses one row into FAO-56 inputs.
fn row_input(cols: &Columns, rec: &csv::StringRecord) -> Result<DailyInput, String> {
    let date = cols.get(rec, "date").ok_or("date is empty")?;
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| format!("date {date:?} is not YYYY-MM-DD"))?;
    let lat_deg = required(cols, rec, "lat_deg")?;
    let elev_m = required(cols, rec, "elev_m")?;
    let tmax_c = required(cols, rec, "tmax_c")?;
    let tmin_c = required(cols, rec, "tmin_c")?;
    let humidity = if let Some(ea) = num(cols, rec, "ea_kpa")? {
        Humidity::Ea(ea)
    } else if let Some(t) = num(cols, rec, "tdew_c")? {
        Humidity::Tdew(t)
    } else if let (Some(hi), Some(lo)) =
        (num(cols, rec, "rhmax_pct")?, num(cols, rec, "rhmin_pct")?)
    {
        Humidity::RhMaxMin {
            rhmax_pct: hi,
            rhmin_pct: lo,
        }
    } else if let Some(m) = num(cols, rec, "rhmean_pct")? {
        Humidity::RhMean(m)
    } else {
        return Err("no humidity value (ea_kpa, tdew_c, rhmax_pct+rhmin_pct or rhmean_pct)".into());
    };
    let wind = if let Some(u2) = num(cols, rec, "u2_m_s")? {
        Wind::U2(u2)
    } else if let (Some(uz), Some(z)) = (num(cols, rec, "uz_m_s")?, num(cols, rec, "z_wind_m")?) {
        Wind::Uz {
            speed: uz,
            height_m: z,
        }
    } else {
        return Err("no wind value (u2_m_s or uz_m_s+z_wind_m)".into());
    };
    let solar = if let Some(rs) = num(cols, rec, "rs_mj_m2")? {
        Solar::Rs(rs)
    } else if let Some(n) = num(cols, rec, "sunshine_h")? {
        Solar::Sunshine {
            hours: n,
            a_s: ANGSTROM_AS,
            b_s: ANGSTROM_BS,
        }
    } else {
        return Err("no radiation value (rs_mj_m2 or sunshine_h)".into());
    };
    let soil_heat = match num(cols, rec, "g_mj_m2")? {
        Some(g) => SoilHeat::Given(g),
        None => SoilHeat::Zero,
    };
    Ok(DailyInput {
        lat_deg,
        elev_m,
        doy: date.ordinal(),
        tmax_c,
        tmin_c,
        humidity,
        wind,
        solar,
        soil_heat,
        albedo: ALBEDO_GRASS,
    })
}

fn check_header(uri: &str, cols: &Columns) -> Result<(), TableError> {
    let mut missing = Vec::new();
    for c in ["date", "lat_deg", "elev_m", "tmax_c", "tmin_c"] {
        if !cols.has(c) {
            missing.push(c.to_string());
        }
    }
    let groups: [(&str, &[&[&str]]); 3] = [
        (
            "humidity (ea_kpa | tdew_c | rhmax_pct+rhmin_pct | rhmean_pct)",
            &[
                &["ea_kpa"],
                &["tdew_c"],
                &["rhmax_pct", "rhmin_pct"],
                &["rhmean_pct"],
            ],
        ),
        (
            "wind (u2_m_s | uz_m_s+z_wind_m)",
            &[&["u2_m_s"], &["uz_m_s", "z_wind_m"]],
        ),
        (
            "radiation (rs_mj_m2 | sunshine_h)",
            &[&["rs_mj_m2"], &["sunshine_h"]],
        ),
    ];
    for (what, alternatives) in groups {
        if !alternatives
            .iter()
            .any(|alt| alt.iter().all(|c| cols.has(c)))
        {
            missing.push(what.to_string());
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(TableError::MissingColumns {
            uri: uri.to_string(),
            what: missing.join(", "),
        })
    }
}

/// Computes ET0 for every row of the CSV text `input` (named `uri` in messages); returns the
/// output CSV bytes and a report. Never fails on a bad row, only on a bad header.
pub fn compute_csv(uri: &str, input: &[u8]) -> Result<(Vec<u8>, TableReport), TableError> {
    let csv_err = |source| TableError::Csv {
        uri: uri.to_string(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::Headers)
        .from_reader(input);
    let header = reader.headers().map_err(csv_err)?.clone();
    let idx: HashMap<String, usize> = header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().trim_start_matches('\u{feff}').to_string(), i))
        .collect();
    let cols = Columns { idx };
    if cols.has("et0_mm") {
        return Err(TableError::HasOutputColumn {
            uri: uri.to_string(),
        });
    }
    check_header(uri, &cols)?;

    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    let mut out_header = header.clone();
    out_header.push_field("et0_mm");
    writer.write_record(&out_header).map_err(csv_err)?;

    let mut report = TableReport::default();
    for rec in reader.records() {
        let rec = rec.map_err(csv_err)?;
        report.rows += 1;
        let line = rec.position().map(|p| p.line()).unwrap_or(report.rows + 1);
        let result = if rec.len() != header.len() {
            Err(format!(
                "has {} fields, the header has {}",
                rec.len(),
                header.len()
            ))
        } else {
            row_input(&cols, &rec).and_then(|i| et0::daily(&i).map_err(|e| e.to_string()))
        };
        let mut out = rec.clone();
        match result {
            Ok(r) if r.et0.is_finite() => {
                report.computed += 1;
                out.push_field(&format!("{:.3}", r.et0));
            }
            Ok(r) => {
                report.warnings.push(RowWarning {
                    line,
                    message: format!("ET0 is {}", r.et0),
                });
                out.push_field("");
            }
            Err(message) => {
                tracing::warn!("{uri}: line {line}: no ET0: {message}");
                report.warnings.push(RowWarning { line, message });
                out.push_field("");
            }
        }
        writer.write_record(&out).map_err(csv_err)?;
    }
    let bytes = writer.into_inner().map_err(|e| TableError::Csv {
        uri: uri.to_string(),
        source: csv::Error::from(e.into_error()),
    })?;
    Ok((bytes, report))
}

/// Reads `in_uri`, computes ET0 per row and writes `out_uri` atomically.
pub fn run(store: &cloud::Store, in_uri: &str, out_uri: &str) -> Result<TableReport, TableError> {
    let input = store
        .get_capped(in_uri, 1 << 30)
        .map_err(|source| TableError::Store {
            uri: in_uri.to_string(),
            source,
        })?;
    let (bytes, report) = compute_csv(in_uri, &input)?;
    store
        .put(out_uri, bytes.into())
        .map_err(|source| TableError::Store {
            uri: out_uri.to_string(),
            source,
        })?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const HEAD: &str =
        "date,lat_deg,elev_m,tmax_c,tmin_c,rhmax_pct,rhmin_pct,uz_m_s,z_wind_m,sunshine_h,note\n";

    #[test]
    fn brussels_row_and_bad_rows() {
        let text = format!(
            "{HEAD}2024-07-05,50.8,100,21.5,12.3,84,63,2.778,10,9.25,ok\n\
             2024-07-05,50.8,100,,12.3,84,63,2.778,10,9.25,no tmax\n\
             2024-07-05,50.8,100,21.5,12.3,84,63,abc,10,9.25,bad wind\n\
             2024-13-05,50.8,100,21.5,12.3,84,63,2.778,10,9.25,bad date\n\
             2024-07-05,50.8,100,12.3,21.5,84,63,2.778,10,9.25,swapped\n"
        );
        let (out, report) = compute_csv("mem.csv", text.as_bytes()).unwrap();
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], format!("{},et0_mm", HEAD.trim_end()));
        // 2024-07-05 is day 187 in a leap year, as FAO-56 Example 18 (6 July, J = 187).
        assert!(lines[1].ends_with(",ok,3.880"), "{}", lines[1]);
        for l in &lines[2..] {
            assert!(l.ends_with(','), "{l}");
        }
        assert_eq!(report.rows, 5);
        assert_eq!(report.computed, 1);
        let lines: Vec<u64> = report.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6]);
        assert!(report.warnings[0].message.contains("tmax_c"));
        assert!(report.warnings[1].message.contains("uz_m_s"));
        assert!(report.warnings[2].message.contains("date"));
        assert!(report.warnings[3].message.contains("below"));
    }

    #[test]
    fn missing_column_groups_fail_with_names() {
        let text = "date,lat_deg,elev_m,tmax_c,tmin_c,u2_m_s\n2024-07-05,50.8,100,21.5,12.3,2\n";
        let err = compute_csv("x.csv", text.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.csv") && err.contains("humidity") && err.contains("radiation"),
            "{err}"
        );
        assert!(!err.contains("wind"), "{err}");
    }
}
