//! ESRI ASCII grids (`.asc`, GDAL's AAIGrid), the format CNIG ships its DTMs in.

use cloud::Store;

use crate::error::CogError;
use crate::pixel::SampleType;
use crate::raster::{Crs, GeoTransform};

/// Largest grid read (cells); an ASCII cell takes at least 2 bytes, so the file size
/// bounds this anyway.
const MAX_CELLS: u64 = 1 << 31;

/// A parsed ESRI ASCII grid.
#[derive(Debug, Clone)]
pub struct AscGrid {
    pub width: u64,
    pub height: u64,
    /// Int32 when every value is an integer, else Float32 (GDAL's rule).
    pub dtype: SampleType,
    pub transform: GeoTransform,
    pub nodata: Option<f64>,
    pub crs: Crs,
    /// Row-major values.
    pub values: Vec<f64>,
}

/// The header of an ESRI ASCII grid: size and georeferencing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AscHeader {
    pub width: u64,
    pub height: u64,
    pub transform: GeoTransform,
    pub nodata: Option<f64>,
}

/// Parses the header keywords at the front of `tokens` (consuming them).
fn parse_header<'a>(
    uri: &str,
    tokens: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>,
) -> Result<AscHeader, CogError> {
    let mut ncols = None;
    let mut nrows = None;
    let (mut xll, mut yll, mut center_x, mut center_y) = (None, None, false, false);
    let (mut cell, mut dx, mut dy, mut nodata) = (None, None, None, None);
    while let Some(&t) = tokens.peek() {
        let key = t.to_ascii_lowercase();
        let known = matches!(
            key.as_str(),
            "ncols"
                | "nrows"
                | "xllcorner"
                | "yllcorner"
                | "xllcenter"
                | "yllcenter"
                | "cellsize"
                | "dx"
                | "dy"
                | "nodata_value"
        );
        if !known {
            break;
        }
        tokens.next();
        let v = tokens.next().ok_or_else(|| {
            CogError::invalid(uri, format!("ASCII grid header: {t} has no value"))
        })?;
        let num = || {
            v.parse::<f64>().map_err(|_| {
                CogError::invalid(uri, format!("ASCII grid header: bad {t} value {v:?}"))
            })
        };
        match key.as_str() {
            "ncols" => ncols = Some(num()?),
            "nrows" => nrows = Some(num()?),
            "xllcorner" => xll = Some(num()?),
            "yllcorner" => yll = Some(num()?),
            "xllcenter" => {
                xll = Some(num()?);
                center_x = true
            }
            "yllcenter" => {
                yll = Some(num()?);
                center_y = true
            }
            "cellsize" => cell = Some(num()?),
            "dx" => dx = Some(num()?),
            "dy" => dy = Some(num()?),
            _ => {
                nodata = Some(crate::geo::parse_nodata(v).ok_or_else(|| {
                    CogError::invalid(uri, format!("ASCII grid header: bad NODATA_value {v:?}"))
                })?)
            }
        }
    }
    let dim = |v: Option<f64>, what: &str| -> Result<u64, CogError> {
        match v {
            Some(x) if x >= 1.0 && x.fract() == 0.0 && x < 1e10 => Ok(x as u64),
            Some(x) => Err(CogError::invalid(
                uri,
                format!("ASCII grid: bad {what} {x}"),
            )),
            None => Err(CogError::invalid(
                uri,
                format!("not an ASCII grid (no {what})"),
            )),
        }
    };
    let width = dim(ncols, "ncols")?;
    let height = dim(nrows, "nrows")?;
    let (px, py) = match (cell, dx, dy) {
        (Some(c), _, _) => (c, c),
        (None, Some(x), Some(y)) => (x, y),
        _ => return Err(CogError::invalid(uri, "ASCII grid: no cellsize")),
    };
    let xll = xll.ok_or_else(|| CogError::invalid(uri, "ASCII grid: no xllcorner"))?;
    let yll = yll.ok_or_else(|| CogError::invalid(uri, "ASCII grid: no yllcorner"))?;
    let x0 = if center_x { xll - 0.5 * px } else { xll };
    let y0 = if center_y { yll - 0.5 * py } else { yll };
    Ok(AscHeader {
        width,
        height,
        transform: GeoTransform([x0, px, 0.0, y0 + py * height as f64, 0.0, -py]),
        nodata,
    })
}

/// Reads only the header of the ASCII grid at `uri` (its first 4 KiB).
pub fn read_header(store: &Store, uri: &str) -> Result<AscHeader, CogError> {
    let size = store.head(uri).map_err(|e| CogError::store(uri, e))?;
    let prefix = store
        .get_range(uri, 0..size.min(4096))
        .map_err(|e| CogError::store(uri, e))?;
    let text = String::from_utf8_lossy(&prefix);
    parse_header(uri, &mut text.split_ascii_whitespace().peekable())
}

/// Parses ASCII grid text; `uri` names the file in errors.
pub fn parse(uri: &str, text: &[u8]) -> Result<AscGrid, CogError> {
    let text = std::str::from_utf8(text)
        .map_err(|_| CogError::invalid(uri, "ASCII grid is not valid text"))?;
    let mut tokens = text.split_ascii_whitespace().peekable();
    let AscHeader {
        width,
        height,
        transform,
        nodata,
    } = parse_header(uri, &mut tokens)?;
    let cells = width
        .checked_mul(height)
        .filter(|&c| c <= MAX_CELLS && c <= text.len() as u64)
        .ok_or_else(|| {
            CogError::invalid(
                uri,
                format!(
                    "ASCII grid: {width}x{height} cells cannot fit in {} bytes",
                    text.len()
                ),
            )
        })?;
    let mut values = Vec::with_capacity(cells as usize);
    let mut float = false;
    for t in tokens.by_ref().take(cells as usize) {
        if !float && t.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
            float = true;
        }
        let v = crate::geo::parse_nodata(t)
            .ok_or_else(|| CogError::invalid(uri, format!("ASCII grid: bad value {t:?}")))?;
        values.push(v);
    }
    if (values.len() as u64) < cells {
        return Err(CogError::invalid(
            uri,
            format!(
                "ASCII grid: {} values for {width}x{height} cells",
                values.len()
            ),
        ));
    }
    let dtype = if float {
        SampleType::F32
    } else {
        SampleType::I32
    };
    Ok(AscGrid {
        width,
        height,
        dtype,
        transform,
        nodata,
        crs: Crs::default(),
        values,
    })
}

/// Reads `uri` and its `.prj` side file (WKT, when present).
pub fn read(store: &Store, uri: &str) -> Result<AscGrid, CogError> {
    let text = store.get(uri).map_err(|e| CogError::store(uri, e))?;
    let mut g = parse(uri, &text)?;
    let prj = match uri.rfind('.') {
        Some(i) if !uri[i..].contains('/') => format!("{}.prj", &uri[..i]),
        _ => format!("{uri}.prj"),
    };
    match store.get(&prj) {
        Ok(b) => {
            let wkt = String::from_utf8_lossy(&b).trim().to_string();
            if !wkt.is_empty() {
                g.crs = crs_from_wkt(&wkt);
            }
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(CogError::store(&prj, e)),
    }
    Ok(g)
}

/// A CRS from WKT text: the root's `AUTHORITY["EPSG", n]`/`ID["EPSG", n]` gives the code.
pub fn crs_from_wkt(wkt: &str) -> Crs {
    Crs {
        epsg: ::crs::epsg_from_wkt(wkt),
        wkt: Some(wkt.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_corner_and_center_headers() {
        let g = parse(
            "t.asc",
            b"ncols 3\nnrows 2\nxllcorner 100\nyllcorner 200\ncellsize 5\nNODATA_value -9999\n1 2 3\n4 -9999 6\n",
        )
        .unwrap();
        assert_eq!((g.width, g.height), (3, 2));
        assert_eq!(g.transform.0, [100.0, 5.0, 0.0, 210.0, 0.0, -5.0]);
        assert_eq!(g.dtype, SampleType::I32);
        assert_eq!(g.values, vec![1.0, 2.0, 3.0, 4.0, -9999.0, 6.0]);
        let c = parse(
            "t.asc",
            b"NCOLS 1\nNROWS 1\nXLLCENTER 10\nYLLCENTER 20\nCELLSIZE 2\n1.5\n",
        )
        .unwrap();
        assert_eq!(c.transform.0, [9.0, 2.0, 0.0, 21.0, 0.0, -2.0]);
        assert_eq!(c.dtype, SampleType::F32);
        assert!(
            parse(
                "t.asc",
                b"ncols 1000000\nnrows 1000000\nxllcorner 0\nyllcorner 0\ncellsize 1\n1\n"
            )
            .is_err()
        );
        assert!(
            parse(
                "t.asc",
                b"ncols 2\nnrows 1\nxllcorner 0\nyllcorner 0\ncellsize 1\n1\n"
            )
            .is_err()
        );
    }

    #[test]
    fn wkt_top_level_authority() {
        let w = r#"PROJCS["ETRS89 / UTM zone 30N",GEOGCS["ETRS89",AUTHORITY["EPSG","4258"]],AUTHORITY["EPSG","25830"]]"#;
        assert_eq!(crs_from_wkt(w).epsg, Some(25830));
    }
}
