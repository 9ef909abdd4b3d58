//! Weather-station tables for the spatial workflow.
//!
//! Two forms:
//! - **SIAM** (IMIDA, Región de Murcia), the table CloudButton used:
//!   `X,Y,Cota,temp,hr,tdet,v,COD,temp,hr,v,dir,rad,dir_deg` with X/Y in the DTM's CRS
//!   (EPSG:25830), `Cota` elevation (m), `temp` daily mean air temperature (°C), `hr` mean
//!   relative humidity (%), `v` mean wind speed at 2 m (m/s), `COD` station code and `rad`
//!   mean global irradiance (W/m², × 0.0864 → MJ m⁻² day⁻¹). The table has no date: the
//!   date is given on the command line. `tdet` (temperature reduced to 2000 m by the original
//!   scripts) is recomputed, not read; the repeated columns are ignored (first one wins).
//! - **Generic CSV** (header names): `id,x,y,elev_m` and optional `date` (YYYY-MM-DD; only rows
//!   of the requested date are used); temperature `tmax_c`+`tmin_c` or `tmean_c`; humidity
//!   `ea_kpa` | `tdew_c` | `rhmax_pct`+`rhmin_pct` | `rhmean_pct`; wind `u2_m_s` |
//!   `uz_m_s`+`z_wind_m`; radiation `rs_mj_m2` (optional). Coordinates in the DTM's CRS.
//!
//! Each station becomes a [`Station`] with ea (kPa), u2 (m/s) and Rs (MJ m⁻² day⁻¹) already
//! derived with FAO-56; a station whose value is missing or invalid simply does not take part
//! in interpolating that variable (with a warning).

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::et0::{Humidity, Wind, actual_vapour_pressure, limits, wind_2m};

/// One weather station's observations for the day.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Station {
    pub id: String,
    /// Easting and northing in the DTM's CRS (m).
    pub x: f64,
    pub y: f64,
    /// Elevation (m).
    pub elev_m: f64,
    /// Daily max/min air temperature (°C); both equal the mean when only a mean is known.
    pub tmax_c: Option<f64>,
    pub tmin_c: Option<f64>,
    /// True when `tmax_c`/`tmin_c` are really a daily mean (SIAM).
    pub mean_only: bool,
    /// Actual vapour pressure (kPa).
    pub ea_kpa: Option<f64>,
    /// Wind speed at 2 m (m/s).
    pub u2_m_s: Option<f64>,
    /// Global radiation (MJ m⁻² day⁻¹).
    pub rs_mj_m2: Option<f64>,
}

/// Station table form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum StationFormat {
    /// Detect from the header (`X,Y,Cota,...` is SIAM).
    #[default]
    Auto,
    Siam,
    Generic,
}

/// Errors reading a station table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StationError {
    #[error("{uri}: CSV error: {source}")]
    Csv {
        uri: String,
        #[source]
        source: csv::Error,
    },
    #[error("{uri}: missing column(s): {what}")]
    MissingColumns { uri: String, what: String },
    #[error("{uri}: no usable station{why}")]
    Empty { uri: String, why: String },
    #[error("{uri}: more than {max} rows")]
    TooLarge { uri: String, max: usize },
    #[error("{uri}: {message}")]
    Invalid { uri: String, message: String },
}

/// Columns the SIAM table repeats by design (the second block of the row); any other
/// repeated column is an error, as in a generic table.
const SIAM_REPEATED: [&str; 3] = ["temp", "hr", "v"];

/// Relative humidity columns (percent).
const RH_COLUMNS: [&str; 4] = ["hr", "rhmax_pct", "rhmin_pct", "rhmean_pct"];

/// Refuses a header naming one column twice (which column a reader takes is then a guess),
/// except the SIAM table's known repeats.
fn check_duplicate_columns(
    uri: &str,
    head: &csv::StringRecord,
    siam: bool,
) -> Result<(), StationError> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, h) in head.iter().enumerate() {
        let name = h.trim().trim_start_matches('\u{feff}').to_string();
        if name.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(name.clone(), i)
            && !(siam && SIAM_REPEATED.contains(&name.as_str()))
        {
            return Err(StationError::Invalid {
                uri: uri.to_string(),
                message: format!(
                    "column {name:?} appears twice (columns {} and {}); remove one",
                    first + 1,
                    i + 1
                ),
            });
        }
    }
    Ok(())
}

/// Largest station table accepted (rows).
pub const MAX_ROWS: usize = 1_000_000;

struct Cols(HashMap<String, usize>);

impl Cols {
    fn new(head: &csv::StringRecord) -> Self {
        let mut m = HashMap::new();
        for (i, h) in head.iter().enumerate() {
            m.entry(h.trim().trim_start_matches('\u{feff}').to_string())
                .or_insert(i);
        }
        Cols(m)
    }
    fn has(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }
    fn str<'r>(&self, rec: &'r csv::StringRecord, k: &str) -> Option<&'r str> {
        rec.get(*self.0.get(k)?)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
    fn num(&self, rec: &csv::StringRecord, k: &str) -> Option<f64> {
        self.str(rec, k)?
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
    }
}

/// Whether a station table (its bytes) has a `date` column: a generic table of many days.
/// A SIAM table has none (its date is the one asked for).
///
/// ```
/// assert!(water::stations::has_date_column(b"id,x,y,elev_m,date,tmean_c\n"));
/// assert!(!water::stations::has_date_column(b"X,Y,Cota,temp,hr\n"));
/// ```
pub fn has_date_column(bytes: &[u8]) -> bool {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    reader.headers().is_ok_and(|h| Cols::new(h).has("date"))
}

/// Reads a station table (`uri` names it in messages). `date` selects the rows of a generic
/// table that has a `date` column.
pub fn parse(
    uri: &str,
    bytes: &[u8],
    format: StationFormat,
    date: NaiveDate,
) -> Result<Vec<Station>, StationError> {
    let csv_err = |source| StationError::Csv {
        uri: uri.to_string(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let head = reader.headers().map_err(csv_err)?.clone();
    let cols = Cols::new(&head);
    let format = match format {
        StationFormat::Auto if cols.has("X") && cols.has("Y") && cols.has("Cota") => {
            StationFormat::Siam
        }
        StationFormat::Auto => StationFormat::Generic,
        f => f,
    };
    check_duplicate_columns(uri, &head, format == StationFormat::Siam)?;
    let need: &[&str] = match format {
        StationFormat::Siam => &["X", "Y", "Cota", "temp", "hr", "v"],
        _ => &["id", "x", "y", "elev_m"],
    };
    let mut missing: Vec<String> = need
        .iter()
        .filter(|c| !cols.has(c))
        .map(|c| c.to_string())
        .collect();
    if format == StationFormat::Generic {
        if !(cols.has("tmax_c") && cols.has("tmin_c") || cols.has("tmean_c")) {
            missing.push("temperature (tmax_c+tmin_c | tmean_c)".into());
        }
        let hum = ["ea_kpa", "tdew_c", "rhmean_pct"]
            .iter()
            .any(|c| cols.has(c))
            || cols.has("rhmax_pct") && cols.has("rhmin_pct");
        if !hum {
            missing.push("humidity (ea_kpa | tdew_c | rhmax_pct+rhmin_pct | rhmean_pct)".into());
        }
        if !(cols.has("u2_m_s") || cols.has("uz_m_s") && cols.has("z_wind_m")) {
            missing.push("wind (u2_m_s | uz_m_s+z_wind_m)".into());
        }
    }
    if !missing.is_empty() {
        return Err(StationError::MissingColumns {
            uri: uri.to_string(),
            what: missing.join(", "),
        });
    }
    let date_s = date.format("%Y-%m-%d").to_string();
    let mut out = Vec::new();
    // The largest relative humidity seen (%): a column of fractions (0.84 for 84 %) would
    // pass every range check as a desert-dry day.
    let mut rh_max: Option<(f64, &str)> = None;
    for (n, rec) in reader.records().enumerate() {
        if n >= MAX_ROWS {
            return Err(StationError::TooLarge {
                uri: uri.to_string(),
                max: MAX_ROWS,
            });
        }
        let rec = rec.map_err(csv_err)?;
        let line = rec.position().map_or(n as u64 + 2, |p| p.line());
        if format == StationFormat::Generic
            && cols.has("date")
            && cols.str(&rec, "date") != Some(date_s.as_str())
        {
            continue;
        }
        for c in RH_COLUMNS {
            if let Some(v) = cols.num(&rec, c)
                && rh_max.is_none_or(|(m, _)| v > m)
            {
                rh_max = Some((v, c));
            }
        }
        let st = match format {
            StationFormat::Siam => siam_row(&cols, &rec, line),
            _ => generic_row(&cols, &rec, line),
        };
        match st {
            Ok(s) => out.push(s),
            Err(msg) => tracing::warn!("{uri}: line {line}: station skipped: {msg}"),
        }
    }
    if let Some((m, c)) = rh_max
        && m <= 1.5
    {
        return Err(StationError::Invalid {
            uri: uri.to_string(),
            message: format!(
                "relative humidity {c:?} is at most {m} in every row: it looks like a fraction; \
                 give percent (84 for 84 %)"
            ),
        });
    }
    if out.is_empty() {
        let why = if format == StationFormat::Generic && cols.has("date") {
            format!(" for {date_s}")
        } else {
            String::new()
        };
        return Err(StationError::Empty {
            uri: uri.to_string(),
            why,
        });
    }
    Ok(out)
}

fn coords(x: Option<f64>, y: Option<f64>, z: Option<f64>) -> Result<(f64, f64, f64), String> {
    let x = x.ok_or("x is missing or not a number")?;
    let y = y.ok_or("y is missing or not a number")?;
    let z = z.ok_or("elevation is missing or not a number")?;
    if !(limits::ELEV.0..=limits::ELEV.1).contains(&z) {
        return Err(format!("elevation {z} m is implausible"));
    }
    Ok((x, y, z))
}

fn temp_ok(t: Option<f64>) -> Option<f64> {
    t.filter(|t| (limits::T.0..=limits::T.1).contains(t))
}

fn siam_row(cols: &Cols, rec: &csv::StringRecord, line: u64) -> Result<Station, String> {
    let (x, y, z) = coords(
        cols.num(rec, "X"),
        cols.num(rec, "Y"),
        cols.num(rec, "Cota"),
    )?;
    let id = cols
        .str(rec, "COD")
        .map_or_else(|| format!("line{line}"), str::to_string);
    let t = temp_ok(cols.num(rec, "temp"));
    let ea = match (t, cols.num(rec, "hr")) {
        (Some(t), Some(h)) => actual_vapour_pressure(Humidity::RhMean(h), t, t).ok(),
        _ => None,
    };
    let u2 = cols.num(rec, "v").and_then(|v| wind_2m(Wind::U2(v)).ok());
    let rs = cols
        .num(rec, "rad")
        .filter(|r| (0.0..=600.0).contains(r))
        .map(|w| w * 0.0864);
    Ok(Station {
        id,
        x,
        y,
        elev_m: z,
        tmax_c: t,
        tmin_c: t,
        mean_only: true,
        ea_kpa: ea,
        u2_m_s: u2,
        rs_mj_m2: rs,
    })
}

fn generic_row(cols: &Cols, rec: &csv::StringRecord, line: u64) -> Result<Station, String> {
    let (x, y, z) = coords(
        cols.num(rec, "x"),
        cols.num(rec, "y"),
        cols.num(rec, "elev_m"),
    )?;
    let id = cols
        .str(rec, "id")
        .map_or_else(|| format!("line{line}"), str::to_string);
    let (tmax, tmin, mean_only) = match (
        temp_ok(cols.num(rec, "tmax_c")),
        temp_ok(cols.num(rec, "tmin_c")),
    ) {
        (Some(a), Some(b)) if a >= b => (Some(a), Some(b), false),
        _ => {
            let m = temp_ok(cols.num(rec, "tmean_c"));
            (m, m, true)
        }
    };
    let humidity = if let Some(v) = cols.num(rec, "ea_kpa") {
        Some(Humidity::Ea(v))
    } else if let Some(v) = cols.num(rec, "tdew_c") {
        Some(Humidity::Tdew(v))
    } else if let (Some(a), Some(b)) = (cols.num(rec, "rhmax_pct"), cols.num(rec, "rhmin_pct")) {
        Some(Humidity::RhMaxMin {
            rhmax_pct: a,
            rhmin_pct: b,
        })
    } else {
        cols.num(rec, "rhmean_pct").map(Humidity::RhMean)
    };
    let ea = match (humidity, tmax, tmin) {
        (Some(h @ (Humidity::Ea(_) | Humidity::Tdew(_))), _, _) => {
            actual_vapour_pressure(h, 0.0, 0.0).ok()
        }
        (Some(h), Some(a), Some(b)) => actual_vapour_pressure(h, a, b).ok(),
        _ => None,
    };
    let wind = if let Some(u) = cols.num(rec, "u2_m_s") {
        Some(Wind::U2(u))
    } else if let (Some(u), Some(h)) = (cols.num(rec, "uz_m_s"), cols.num(rec, "z_wind_m")) {
        Some(Wind::Uz {
            speed: u,
            height_m: h,
        })
    } else {
        None
    };
    let u2 = wind.and_then(|w| wind_2m(w).ok());
    let rs = cols
        .num(rec, "rs_mj_m2")
        .filter(|r| (limits::RS_DAILY.0..=limits::RS_DAILY.1).contains(r));
    Ok(Station {
        id,
        x,
        y,
        elev_m: z,
        tmax_c: tmax,
        tmin_c: tmin,
        mean_only,
        ea_kpa: ea,
        u2_m_s: u2,
        rs_mj_m2: rs,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn d() -> NaiveDate {
        NaiveDate::from_ymd_opt(2022, 5, 15).unwrap()
    }

    #[test]
    fn generic_table_filters_dates_and_derives() {
        let t = "id,x,y,elev_m,date,tmax_c,tmin_c,rhmax_pct,rhmin_pct,uz_m_s,z_wind_m,rs_mj_m2\n\
                 A,1,2,100,2022-05-15,25,18,82,54,3,10,20\n\
                 B,1,2,100,2022-05-16,25,18,82,54,3,10,20\n\
                 C,5,6,200,2022-05-15,25,18,,,x,10,\n";
        let s = parse("g.csv", t.as_bytes(), StationFormat::Auto, d()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].id, "A");
        assert!((s[0].ea_kpa.unwrap() - 1.7015).abs() < 1e-3); // FAO-56 Ex. 5
        assert!((s[0].u2_m_s.unwrap() - 3.0 * 0.748).abs() < 1e-3);
        assert_eq!(s[1].id, "C");
        assert_eq!(
            (s[1].ea_kpa, s[1].u2_m_s, s[1].rs_mj_m2),
            (None, None, None)
        );
        let e = parse(
            "g.csv",
            t.as_bytes(),
            StationFormat::Generic,
            NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(),
        );
        assert!(e.unwrap_err().to_string().contains("for 2000-01-01"));
    }

    #[test]
    fn missing_columns_are_named() {
        let t = "id,x,y,tmax_c,tmin_c,u2_m_s\nA,1,2,25,18,2\n";
        let e = parse("s.csv", t.as_bytes(), StationFormat::Auto, d())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("s.csv") && e.contains("elev_m") && e.contains("humidity"),
            "{e}"
        );
        let t = "X,Y,Cota,temp,hr\n1,2,3,4,5\n";
        let e = parse("siam.csv", t.as_bytes(), StationFormat::Auto, d())
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing column(s): v"), "{e}");
    }

    #[test]
    fn humidity_fractions_and_repeated_columns_are_refused() {
        // RH given as fractions (0.84 for 84 %).
        let t =
            "id,x,y,elev_m,tmean_c,rhmean_pct,u2_m_s\nA,1,2,100,20,0.84,2\nB,3,4,90,21,0.61,2\n";
        let e = parse("f.csv", t.as_bytes(), StationFormat::Auto, d())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("looks like a fraction") && e.contains("rhmean_pct"),
            "{e}"
        );
        // The same in percent is fine.
        let t = "id,x,y,elev_m,tmean_c,rhmean_pct,u2_m_s\nA,1,2,100,20,84,2\nB,3,4,90,21,61,2\n";
        assert_eq!(
            parse("p.csv", t.as_bytes(), StationFormat::Auto, d())
                .unwrap()
                .len(),
            2
        );
        // A repeated column in a generic table: which one would be read?
        let t = "id,x,y,elev_m,tmean_c,u2_m_s,rhmean_pct,tmean_c\nA,1,2,100,20,2,60,35\n";
        let e = parse("d.csv", t.as_bytes(), StationFormat::Auto, d())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"tmean_c\" appears twice (columns 5 and 8)"),
            "{e}"
        );
        // SIAM repeats temp, hr and v by design; another repeat is refused.
        let ok = "X,Y,Cota,temp,hr,tdet,v,COD,temp,hr,v\n1,2,3,20,50,9,2,A,20,50,2\n";
        assert!(parse("s.csv", ok.as_bytes(), StationFormat::Auto, d()).is_ok());
        let bad = "X,Y,Cota,temp,hr,v,Cota\n1,2,3,20,50,2,9\n";
        assert!(parse("s.csv", bad.as_bytes(), StationFormat::Auto, d()).is_err());
    }
}
