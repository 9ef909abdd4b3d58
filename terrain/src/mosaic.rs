//! Mosaicking per-partition rasters into one.
//!
//! The tiles must share the CRS (when known), a north-up pixel size and one pixel lattice
//! (origins a whole number of pixels apart, within 10⁻⁶ pixel). The output covers
//! their union; each pixel takes the first tile, in the order given, that has a value there
//! (tiles written by `terrain models` agree where they overlap).

use cog::{GeoTransform, Raster};
use ndarray::Array2;

use crate::error::{Result, TerrainError};
use crate::grid::MAX_CELLS;
use crate::products::NODATA;

/// Mosaics `tiles` (with their URIs, for messages) into one float32 raster, nodata −9999.
pub fn mosaic(tiles: &[(String, Raster<f32>)]) -> Result<Raster<f32>> {
    let Some((first_uri, first)) = tiles.first() else {
        return Err(TerrainError::param("mosaic: no input raster"));
    };
    let g0 = first.transform.0;
    let (px, py) = (g0[1], -g0[5]);
    if !(first.transform.is_north_up() && px > 0.0 && py > 0.0) {
        return Err(TerrainError::input(
            first_uri.as_str(),
            format!("mosaic needs north-up rasters, got geotransform {g0:?}"),
        ));
    }
    // Pixel offsets of every tile relative to the first.
    let mut placed = Vec::with_capacity(tiles.len());
    let (mut c_min, mut r_min, mut c_max, mut r_max) = (0i64, 0i64, 0i64, 0i64);
    for (uri, t) in tiles {
        let g = t.transform.0;
        if !t.transform.is_north_up()
            || (g[1] - px).abs() > 1e-9 * px
            || (-g[5] - py).abs() > 1e-9 * py
        {
            return Err(TerrainError::input(
                uri.as_str(),
                format!(
                    "pixel size {}×{} differs from {px}×{py} ({first_uri})",
                    g[1], -g[5]
                ),
            ));
        }
        if !first.crs.is_unknown() && !t.crs.is_unknown() && !same_crs(&first.crs, &t.crs) {
            return Err(TerrainError::input(
                uri.as_str(),
                format!("CRS {:?} differs from {:?} ({first_uri})", t.crs, first.crs),
            ));
        }
        let fc = (g[0] - g0[0]) / px;
        let fr = (g0[3] - g[3]) / py;
        let (c, r) = (fc.round(), fr.round());
        if (fc - c).abs() > 1e-6 || (fr - r).abs() > 1e-6 {
            return Err(TerrainError::input(
                uri.as_str(),
                format!(
                    "origin ({}, {}) is not on the pixel lattice of {first_uri} (offset {fc:.6}, {fr:.6} pixels)",
                    g[0], g[3]
                ),
            ));
        }
        let (c, r) = (c as i64, r as i64);
        c_min = c_min.min(c);
        r_min = r_min.min(r);
        c_max = c_max.max(c + t.width() as i64);
        r_max = r_max.max(r + t.height() as i64);
        placed.push((c, r));
    }
    let (cols, rows) = ((c_max - c_min) as u64, (r_max - r_min) as u64);
    if cols.saturating_mul(rows) > MAX_CELLS {
        return Err(TerrainError::TooLarge(format!(
            "the mosaic would be {cols}×{rows} pixels, over the limit of {MAX_CELLS}"
        )));
    }
    let mut out = Array2::from_elem((rows as usize, cols as usize), NODATA);
    let mut set = Array2::from_elem((rows as usize, cols as usize), false);
    for ((_, t), &(c, r)) in tiles.iter().zip(&placed) {
        let (c0, r0) = ((c - c_min) as usize, (r - r_min) as usize);
        for ((i, j), &v) in t.data.indexed_iter() {
            if t.is_nodata(v) || v.is_nan() {
                continue;
            }
            let (ri, cj) = (r0 + i, c0 + j);
            if !set[(ri, cj)] {
                out[(ri, cj)] = v;
                set[(ri, cj)] = true;
            }
        }
    }
    let crs = tiles
        .iter()
        .map(|(_, t)| &t.crs)
        .find(|c| !c.is_unknown())
        .cloned()
        .unwrap_or_default();
    Ok(Raster {
        data: out,
        transform: GeoTransform([
            g0[0] + c_min as f64 * px,
            px,
            0.0,
            g0[3] - r_min as f64 * py,
            0.0,
            -py,
        ]),
        crs,
        nodata: Some(NODATA),
    })
}

fn same_crs(a: &cog::Crs, b: &cog::Crs) -> bool {
    match (a.epsg, b.epsg) {
        (Some(x), Some(y)) => x == y,
        _ => a.wkt == b.wkt,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cog::Crs;
    use ndarray::array;

    fn tile(x0: f64, y0: f64, data: Array2<f32>) -> Raster<f32> {
        Raster {
            data,
            transform: GeoTransform::north_up(x0, y0, 2.0),
            crs: Crs::epsg(25830),
            nodata: Some(NODATA),
        }
    }

    #[test]
    fn union_first_wins() {
        let a = tile(0.0, 10.0, array![[1.0, 2.0], [3.0, NODATA]]);
        let b = tile(2.0, 8.0, array![[9.0, 5.0], [6.0, 7.0]]);
        let m = mosaic(&[("a".into(), a), ("b".into(), b)]).unwrap();
        assert_eq!(m.transform.0, [0.0, 2.0, 0.0, 10.0, 0.0, -2.0]);
        assert_eq!(
            m.data,
            array![[1.0, 2.0, NODATA], [3.0, 9.0, 5.0], [NODATA, 6.0, 7.0]]
        );
    }

    #[test]
    fn misaligned_or_mixed_tiles_are_errors() {
        let a = tile(0.0, 10.0, array![[1.0]]);
        let b = tile(1.0, 10.0, array![[1.0]]);
        let e = mosaic(&[("a".into(), a.clone()), ("b.tif".into(), b)]).unwrap_err();
        assert!(e.to_string().contains("b.tif"), "{e}");
        let mut c = tile(2.0, 10.0, array![[1.0]]);
        c.crs = Crs::epsg(25831);
        assert!(mosaic(&[("a".into(), a.clone()), ("c".into(), c)]).is_err());
        assert!(mosaic(&[]).is_err());
    }
}
