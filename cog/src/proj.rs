//! Geographic coordinates of projected pixels: inverse transverse Mercator for the UTM CRSs
//! the Spanish and other national DTMs use (EPSG 258zz ETRS89, 326zz/327zz WGS 84, 230zz
//! ED50), and plain geographic EPSG:4326/4258. Latitude drives FAO-56 Ra per pixel (water);
//! longitude and latitude bound the STAC items of a run's products (driver).
//!
//! Coordinates stay on their own datum: ETRS89 and WGS 84 agree to about a metre, ED50
//! differs by about 100 m.

use crate::raster::Crs;

/// A reference ellipsoid: semi-major axis (m) and inverse flattening.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ellipsoid {
    pub a: f64,
    pub inv_f: f64,
}

/// GRS 1980 (ETRS89).
pub const GRS80: Ellipsoid = Ellipsoid {
    a: 6_378_137.0,
    inv_f: 298.257_222_101,
};
/// WGS 84.
pub const WGS84: Ellipsoid = Ellipsoid {
    a: 6_378_137.0,
    inv_f: 298.257_223_563,
};
/// International 1924 (ED50).
pub const INTL1924: Ellipsoid = Ellipsoid {
    a: 6_378_388.0,
    inv_f: 297.0,
};

/// How to turn raster CRS coordinates into latitude/longitude.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Projection {
    /// Universal Transverse Mercator zone `zone` (1..=60), northern or southern hemisphere.
    Utm {
        zone: u8,
        north: bool,
        ellipsoid: Ellipsoid,
    },
    /// Coordinates are already longitude (x) and latitude (y) in degrees.
    Geographic,
}

/// The CRS is not one this crate can compute latitudes for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported CRS {0}: geographic coordinates need a UTM CRS (EPSG 258zz, 326zz, 327zz, 230zz) or EPSG:4326/4258"
)]
pub struct UnsupportedCrs(pub String);

impl Projection {
    /// From an EPSG code.
    pub fn from_epsg(code: u32) -> Result<Self, UnsupportedCrs> {
        let zone = (code % 100) as u8;
        let utm = |north, ellipsoid| {
            Ok(Projection::Utm {
                zone,
                north,
                ellipsoid,
            })
        };
        match code {
            4326 | 4258 | 4230 => Ok(Projection::Geographic),
            25801..=25860 => utm(true, GRS80),
            32601..=32660 => utm(true, WGS84),
            32701..=32760 => utm(false, WGS84),
            23001..=23060 => utm(true, INTL1924),
            _ => Err(UnsupportedCrs(format!("EPSG:{code}"))),
        }
    }

    /// From a raster's CRS: its EPSG code, else a "UTM zone NN[N|S]" name in its WKT, else
    /// `fallback_epsg` (the DTM's documented CRS when the file carries none, e.g. `.asc`).
    pub fn from_crs(crs: &Crs, fallback_epsg: Option<u32>) -> Result<Self, UnsupportedCrs> {
        if let Some(code) = crs.epsg {
            return Self::from_epsg(code);
        }
        if let Some(wkt) = &crs.wkt {
            return Self::from_wkt(wkt);
        }
        match fallback_epsg {
            Some(code) => Self::from_epsg(code),
            None => Err(UnsupportedCrs(
                "(none: the DTM has no CRS and no fallback EPSG was given)".into(),
            )),
        }
    }

    fn from_wkt(wkt: &str) -> Result<Self, UnsupportedCrs> {
        let upper = wkt.to_ascii_uppercase();
        let bad = || UnsupportedCrs(format!("WKT {:.80}", wkt));
        let pos = upper
            .find("UTM ZONE ")
            .or_else(|| upper.find("UTM_ZONE_"))
            .ok_or_else(bad)?;
        let rest = &upper[pos + 9..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let zone: u8 = digits.parse().map_err(|_| bad())?;
        if !(1..=60).contains(&zone) {
            return Err(bad());
        }
        let north = !rest[digits.len()..].starts_with('S');
        let ellipsoid = if upper.contains("ED50")
            || upper.contains("EUROPEAN_DATUM_1950")
            || upper.contains("INTERNATIONAL 1924")
        {
            INTL1924
        } else if upper.contains("ETRS") || upper.contains("GRS 1980") || upper.contains("GRS_1980")
        {
            GRS80
        } else {
            WGS84
        };
        Ok(Projection::Utm {
            zone,
            north,
            ellipsoid,
        })
    }

    /// (latitude, longitude) in degrees of the CRS point (`x`, `y`).
    pub fn to_lat_lon(&self, x: f64, y: f64) -> (f64, f64) {
        match *self {
            Projection::Geographic => (y, x),
            Projection::Utm {
                zone,
                north,
                ellipsoid,
            } => {
                let lon0 = (zone as f64 * 6.0 - 183.0).to_radians();
                let fn_ = if north { 0.0 } else { 10_000_000.0 };
                let (lat, lon) = inverse_tm(x - 500_000.0, y - fn_, lon0, 0.9996, ellipsoid);
                (lat.to_degrees(), lon.to_degrees())
            }
        }
    }
}

/// Inverse transverse Mercator (Snyder 1987, eq. 8-18 to 8-25; mm-level within a UTM zone).
/// `x`, `y` relative to the false origin; returns (lat, lon) in radians.
fn inverse_tm(x: f64, y: f64, lon0: f64, k0: f64, el: Ellipsoid) -> (f64, f64) {
    let a = el.a;
    let f = 1.0 / el.inv_f;
    let e2 = f * (2.0 - f);
    let ep2 = e2 / (1.0 - e2);
    let m = y / k0;
    let mu = m / (a * (1.0 - e2 / 4.0 - 3.0 * e2 * e2 / 64.0 - 5.0 * e2 * e2 * e2 / 256.0));
    let s = (1.0 - e2).sqrt();
    let e1 = (1.0 - s) / (1.0 + s);
    let phi1 = mu
        + (3.0 * e1 / 2.0 - 27.0 * e1.powi(3) / 32.0) * (2.0 * mu).sin()
        + (21.0 * e1 * e1 / 16.0 - 55.0 * e1.powi(4) / 32.0) * (4.0 * mu).sin()
        + (151.0 * e1.powi(3) / 96.0) * (6.0 * mu).sin()
        + (1097.0 * e1.powi(4) / 512.0) * (8.0 * mu).sin();
    let (sp, cp) = phi1.sin_cos();
    let tp = sp / cp;
    let c1 = ep2 * cp * cp;
    let t1 = tp * tp;
    let w = 1.0 - e2 * sp * sp;
    let n1 = a / w.sqrt();
    let r1 = a * (1.0 - e2) / w.powf(1.5);
    let d = x / (n1 * k0);
    let lat = phi1
        - (n1 * tp / r1)
            * (d * d / 2.0
                - (5.0 + 3.0 * t1 + 10.0 * c1 - 4.0 * c1 * c1 - 9.0 * ep2) * d.powi(4) / 24.0
                + (61.0 + 90.0 * t1 + 298.0 * c1 + 45.0 * t1 * t1 - 252.0 * ep2 - 3.0 * c1 * c1)
                    * d.powi(6)
                    / 720.0);
    let lon = lon0
        + (d - (1.0 + 2.0 * t1 + c1) * d.powi(3) / 6.0
            + (5.0 - 2.0 * c1 + 28.0 * t1 - 3.0 * c1 * c1 + 8.0 * ep2 + 24.0 * t1 * t1)
                * d.powi(5)
                / 120.0)
            / cp;
    (lat, lon)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn matches_gdaltransform() {
        // `gdaltransform -s_srs EPSG:25830 -t_srs EPSG:4326 -output_xy` (GDAL 3.6.2, PROJ).
        let p = Projection::from_epsg(25830).unwrap();
        for (x, y, lon, lat) in [
            (631023.0, 4177172.0, -1.51309339189262, 37.7324587494433),
            (560000.0, 4206000.0, -2.31661482048087, 37.999681664885),
            (700000.0, 4120000.0, -0.746295172599675, 37.2050610804526),
        ] {
            let (la, lo) = p.to_lat_lon(x, y);
            assert!(
                (la - lat).abs() < 1e-7 && (lo - lon).abs() < 1e-7,
                "{la} {lo}"
            );
        }
        // ED50 UTM 30N → ED50 geographic.
        let (la, lo) = Projection::from_epsg(23030)
            .unwrap()
            .to_lat_lon(631023.0, 4177172.0);
        assert!((la - 37.7318379547722).abs() < 1e-7 && (lo + 1.51317221428803).abs() < 1e-7);
    }

    #[test]
    fn wkt_and_fallback() {
        let wkt = r#"PROJCS["ETRS89 / UTM zone 30N",GEOGCS["ETRS89",DATUM["European_Terrestrial_Reference_System_1989",SPHEROID["GRS 1980",6378137,298.257222101]]]]"#;
        let crs = Crs {
            epsg: None,
            wkt: Some(wkt.into()),
        };
        assert_eq!(
            Projection::from_crs(&crs, None).unwrap(),
            Projection::Utm {
                zone: 30,
                north: true,
                ellipsoid: GRS80
            }
        );
        let esri = r#"PROJCS["ETRS_1989_UTM_Zone_30N",GEOGCS["GCS_ETRS_1989"]]"#;
        let crs = Crs {
            epsg: None,
            wkt: Some(esri.into()),
        };
        assert!(matches!(
            Projection::from_crs(&crs, None).unwrap(),
            Projection::Utm {
                zone: 30,
                north: true,
                ..
            }
        ));
        assert!(Projection::from_crs(&Crs::default(), None).is_err());
        assert!(Projection::from_crs(&Crs::default(), Some(25830)).is_ok());
        assert!(Projection::from_epsg(3857).is_err());
    }
}
