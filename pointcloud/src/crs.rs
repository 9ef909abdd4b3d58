//! CRS records of LAS files written for a CRS known by its EPSG code.

/// The OGC WKT (WKT1) of EPSG `code`, when the code is in the built-in EPSG table.
pub fn wkt_of_epsg(code: u32) -> Option<&'static str> {
    let code = u16::try_from(code).ok()?;
    crs_definitions::from_code(code).map(|d| d.wkt)
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
        return Ok(("LASF_Projection", 2112, data, true));
    }
    let code = u16::try_from(epsg).map_err(|_| format!("EPSG:{epsg} does not fit a GeoKey"))?;
    let geographic = wkt.starts_with("GEOGCS");
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
    Ok(("LASF_Projection", 34735, data, false))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
