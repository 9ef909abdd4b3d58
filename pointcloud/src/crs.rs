//! The CRS records of LAS files: the CRS a file declares ([`CrsInfo::from_records`]), and
//! the record to write for a CRS known by its EPSG code ([`crs_record`]). WKT and EPSG codes
//! are read by the `crs` crate, as rasters' are.

use serde::{Deserialize, Serialize};

use crate::header::le_u16;

pub use ::crs::wkt_of_epsg;

/// The `LASF_Projection` user id of CRS records.
const PROJECTION_USER: &str = "LASF_Projection";
/// GeoKeyDirectoryTag record (GeoTIFF keys, LAS 1.0–1.4).
const GEOKEY_DIRECTORY: u16 = 34735;
/// OGC coordinate system WKT record (LAS 1.4).
const OGC_CS_WKT: u16 = 2112;

/// The CRS a LAS file declares, as far as its CRS records say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrsInfo {
    /// EPSG code: when the header's WKT bit is set and there is a WKT (LAS 1.4: the WKT is
    /// then the CRS), the WKT root's own `AUTHORITY["EPSG",...]`/`ID["EPSG",...]` (none if it
    /// has none); else the GeoKeyDirectory's ProjectedCSTypeGeoKey or GeographicTypeGeoKey,
    /// falling back to the WKT's.
    pub epsg: Option<u32>,
    /// The OGC WKT of the coordinate system VLR/EVLR (2112), up to its first NUL, trimmed.
    pub wkt: Option<String>,
}

impl CrsInfo {
    /// Reads the CRS records among `records` (VLRs then EVLRs, as `(user id, record id,
    /// data)`); `wkt_bit`: global encoding bit 4. Records of other users and ids are skipped.
    pub fn from_records<'a, U: AsRef<str>>(
        records: impl IntoIterator<Item = (U, u16, &'a [u8])>,
        wkt_bit: bool,
    ) -> CrsInfo {
        let mut info = CrsInfo::default();
        let mut geokey_epsg = None;
        for (user, record_id, data) in records {
            if user.as_ref() != PROJECTION_USER {
                continue;
            }
            match record_id {
                GEOKEY_DIRECTORY => geokey_epsg = geokeys_epsg(data),
                OGC_CS_WKT => {
                    let end = data.iter().position(|&c| c == 0).unwrap_or(data.len());
                    let wkt = String::from_utf8_lossy(&data[..end]).trim().to_string();
                    if !wkt.is_empty() {
                        info.wkt = Some(wkt);
                    }
                }
                _ => {}
            }
        }
        let wkt_code = info.wkt.as_deref().and_then(::crs::epsg_from_wkt);
        info.epsg = if wkt_bit && info.wkt.is_some() {
            wkt_code
        } else {
            geokey_epsg.or(wkt_code)
        };
        info
    }
}

/// EPSG code of a GeoKeyDirectory (key 3072, else 2048), ignoring user-defined 32767.
fn geokeys_epsg(data: &[u8]) -> Option<u32> {
    if data.len() < 8 {
        return None;
    }
    let n = le_u16(data, 6) as usize;
    let mut projected = None;
    let mut geographic = None;
    for k in 0..n {
        let at = 8 + 8 * k;
        if at + 8 > data.len() {
            break;
        }
        let (id, loc, value) = (le_u16(data, at), le_u16(data, at + 2), le_u16(data, at + 6));
        if loc != 0 || value == 0 || value == 32767 {
            continue;
        }
        match id {
            3072 => projected = Some(u32::from(value)),
            2048 => geographic = Some(u32::from(value)),
            _ => {}
        }
    }
    projected.or(geographic)
}

/// A CRS record to add to a LAS file that records none: `(user id, record id, data,
/// set the WKT bit)`. Point formats 6–10 (LAS 1.4) take an OGC WKT record (2112) and the
/// global-encoding WKT bit, as the specification requires; formats 0–5 a GeoTIFF
/// GeoKeyDirectory (34735) naming the projected or geographic EPSG code.
pub fn crs_record(
    epsg: u32,
    point_format: u8,
) -> Result<(&'static str, u16, Vec<u8>, bool), String> {
    let wkt = wkt_of_epsg(epsg)
        .ok_or_else(|| format!("EPSG:{epsg} is not in the built-in EPSG table"))?;
    if point_format >= 6 {
        let mut data = wkt.as_bytes().to_vec();
        data.push(0);
        return Ok((PROJECTION_USER, OGC_CS_WKT, data, true));
    }
    let code = u16::try_from(epsg).map_err(|_| format!("EPSG:{epsg} does not fit a GeoKey"))?;
    let geographic = ::crs::is_geographic_wkt(wkt) == Some(true);
    // Header (version 1.1.0, 3 keys), model type, raster type (PixelIsArea), the code.
    let keys: [u16; 16] = [
        1,
        1,
        0,
        3,
        1024,
        0,
        1,
        if geographic { 2 } else { 1 },
        1025,
        0,
        1,
        1,
        if geographic { 2048 } else { 3072 },
        0,
        1,
        code,
    ];
    let data = keys.iter().flat_map(|k| k.to_le_bytes()).collect();
    Ok((PROJECTION_USER, GEOKEY_DIRECTORY, data, false))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A GeoKeyDirectory record: header (1.1.0, `keys` keys), then (id, location 0, 1, value).
    fn geokeys(keys: &[(u16, u16)]) -> Vec<u8> {
        let mut d = vec![1u16, 1, 0, keys.len() as u16];
        for &(id, value) in keys {
            d.extend([id, 0, 1, value]);
        }
        d.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn geokeys_prefer_projected() {
        let d = geokeys(&[(2048, 4326), (3072, 25831)]);
        assert_eq!(geokeys_epsg(&d), Some(25831));
        assert_eq!(geokeys_epsg(&d[..16]), Some(4326));
        assert_eq!(geokeys_epsg(&geokeys(&[(3072, 32767)])), None);
        assert_eq!(geokeys_epsg(&d[..7]), None);
    }

    #[test]
    fn the_wkt_bit_makes_the_wkt_the_crs() {
        let keys = geokeys(&[(3072, 25830)]);
        let wkt = b"PROJCS[\"ETRS89 / UTM 31N\",AUTHORITY[\"EPSG\",\"25831\"]]\0\0junk";
        let records = [
            (PROJECTION_USER, GEOKEY_DIRECTORY, &keys[..]),
            (PROJECTION_USER, OGC_CS_WKT, &wkt[..]),
            ("other", GEOKEY_DIRECTORY, &geokeys(&[(3072, 1)])[..]),
        ];
        let with_bit = CrsInfo::from_records(records.iter().copied(), true);
        assert_eq!(with_bit.epsg, Some(25831));
        assert_eq!(
            with_bit.wkt.as_deref(),
            Some("PROJCS[\"ETRS89 / UTM 31N\",AUTHORITY[\"EPSG\",\"25831\"]]")
        );
        // Without the bit (LAS 1.0-1.3, formats 0-5) the GeoKeys are the CRS.
        let without = CrsInfo::from_records(records.iter().copied(), false);
        assert_eq!(without.epsg, Some(25830));
        // A WKT without a code, with the bit: no code, even with GeoKeys.
        let bare = [
            (PROJECTION_USER, GEOKEY_DIRECTORY, &keys[..]),
            (PROJECTION_USER, OGC_CS_WKT, &b"LOCAL_CS[\"x\"]"[..]),
        ];
        assert_eq!(CrsInfo::from_records(bare, true).epsg, None);
        assert_eq!(CrsInfo::from_records(bare, false).epsg, Some(25830));
        // Only a WKT, no bit: its code.
        assert_eq!(
            CrsInfo::from_records(records[1..2].iter().copied(), false).epsg,
            Some(25831)
        );
        assert_eq!(CrsInfo::from_records::<&str>([], true), CrsInfo::default());
    }

    #[test]
    fn records_for_each_point_format_family() {
        assert!(
            wkt_of_epsg(25830)
                .unwrap()
                .contains("ETRS89 / UTM zone 30N")
        );
        assert!(wkt_of_epsg(1).is_none());
        let (_, id, data, bit) = crs_record(25830, 6).unwrap();
        assert_eq!((id, bit), (2112, true));
        assert!(String::from_utf8_lossy(&data).contains("AUTHORITY[\"EPSG\",\"25830\"]"));
        let (_, id, data, bit) = crs_record(25830, 1).unwrap();
        assert_eq!((id, bit), (34735, false));
        // The last key: ProjectedCSTypeGeoKey (3072) = 25830.
        let last: Vec<u16> = data[24..32]
            .chunks(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(last, [3072, 0, 1, 25830]);
        let (_, _, data, _) = crs_record(4326, 3).unwrap();
        assert_eq!(u16::from_le_bytes([data[24], data[25]]), 2048);
    }
}
