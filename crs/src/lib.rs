//! Coordinate reference systems as text, for every geobutton crate that reads a CRS: GeoTIFF
//! GeoKeys and `.prj` sidecars (`cog`), LAS CRS records (`pointcloud`). One answer for each
//! question, so that a file's CRS is the same CRS to every stage:
//!
//! - [`epsg_from_wkt`]: the EPSG code a WKT (WKT1 or WKT2) gives its root CRS;
//! - [`wkt_of_epsg`]: the OGC WKT of an EPSG code, from the built-in EPSG table;
//! - [`is_geographic`]: whether coordinates are angular (degrees), from the WKT's kind when
//!   it has a known one, else from the EPSG code; a CRS known by neither is not geographic.
//!
//! ```
//! let wkt = r#"PROJCS["ETRS89 / UTM zone 30N",GEOGCS["ETRS89",AUTHORITY["EPSG","4258"]],
//!     UNIT["metre",1,AUTHORITY["EPSG","9001"]],AUTHORITY["EPSG","25830"]]"#;
//! assert_eq!(crs::epsg_from_wkt(wkt), Some(25830));
//! assert!(!crs::is_geographic(Some(25830), Some(wkt)));
//! assert!(crs::is_geographic(Some(4258), None));
//! assert!(crs::wkt_of_epsg(4258).is_some_and(|w| w.starts_with("GEOGCS")));
//! ```

mod wkt;

pub use wkt::{epsg_from_wkt, is_geographic_wkt};

/// The OGC WKT (WKT1) of EPSG `code`, when the code is in the built-in EPSG table
/// (`crs-definitions`: EPSG codes below 65536).
pub fn wkt_of_epsg(code: u32) -> Option<&'static str> {
    let code = u16::try_from(code).ok()?;
    crs_definitions::from_code(code).map(|d| d.wkt)
}

/// True for EPSG codes of geographic 2D CRSs (without a CRS database: the 4000–4999 block but
/// its geocentric and 3D codes, plus common geographic CRSs elsewhere).
pub fn is_geographic_epsg(code: u32) -> bool {
    ((4000..5000).contains(&code) && !matches!(code, 4328 | 4978 | 4936 | 4918..=4920))
        || matches!(
            code,
            6318 | 6322 | 6783 | 7844 | 8086 | 9000..=9002 | 9057 | 10299
        )
}

/// Whether a CRS given by its EPSG code and/or WKT has angular (degree) coordinates: the
/// WKT's kind when it has a known one ([`is_geographic_wkt`]), else the EPSG code's
/// ([`is_geographic_epsg`]); `false` when neither tells.
pub fn is_geographic(epsg: Option<u32>, wkt: Option<&str>) -> bool {
    wkt.and_then(is_geographic_wkt)
        .unwrap_or_else(|| epsg.is_some_and(is_geographic_epsg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geographic_from_the_wkt_first_then_the_code() {
        assert!(is_geographic(Some(4326), None));
        assert!(!is_geographic(Some(25830), None));
        assert!(!is_geographic(Some(4978), None), "geocentric");
        assert!(!is_geographic(None, None));
        // The WKT's kind wins over the code; an unknown kind leaves it to the code.
        assert!(is_geographic(None, Some(r#"GEOGCS["x",DATUM["y"]]"#)));
        assert!(!is_geographic(Some(4326), Some(r#"PROJCS["x"]"#)));
        assert!(is_geographic(Some(4326), Some(r#"SOMETHING["x"]"#)));
        assert!(!is_geographic(None, Some(r#"SOMETHING["x"]"#)));
    }

    #[test]
    fn wkt_of_codes_in_the_table() {
        assert!(wkt_of_epsg(25830).is_some_and(|w| w.contains("ETRS89 / UTM zone 30N")));
        assert!(wkt_of_epsg(1).is_none());
        assert!(wkt_of_epsg(100_000).is_none());
        // Every geographic code of the table that the heuristic knows is a GEOGCS.
        for code in [4258, 4326, 4230, 6318, 9000] {
            assert!(is_geographic_epsg(code));
            if let Some(w) = wkt_of_epsg(code) {
                assert_eq!(is_geographic_wkt(w), Some(true), "EPSG:{code}");
            }
        }
    }
}
