//! In-memory rasters: pixels, georeferencing (GDAL geotransform), CRS and nodata.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// GDAL's six-number affine geotransform:
/// `x = gt[0] + col*gt[1] + row*gt[2]`, `y = gt[3] + col*gt[4] + row*gt[5]`,
/// where (col, row) is a pixel corner position and (x, y) is in the raster's CRS units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoTransform(pub [f64; 6]);

impl Default for GeoTransform {
    /// GDAL's default for ungeoreferenced images: origin 0, 1 unit pixels, y down.
    fn default() -> Self {
        GeoTransform([0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    }
}

impl GeoTransform {
    /// North-up transform with top-left corner (`x0`, `y0`) and square `pixel` size.
    pub fn north_up(x0: f64, y0: f64, pixel: f64) -> Self {
        GeoTransform([x0, pixel, 0.0, y0, 0.0, -pixel])
    }

    /// CRS coordinates of the pixel-corner position (`col`, `row`) (fractional allowed;
    /// add 0.5 to each for a pixel centre).
    pub fn apply(&self, col: f64, row: f64) -> (f64, f64) {
        let g = &self.0;
        (
            g[0] + col * g[1] + row * g[2],
            g[3] + col * g[4] + row * g[5],
        )
    }

    /// Pixel-corner position (col, row) of CRS coordinates (x, y); `None` if not invertible.
    pub fn invert(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let g = &self.0;
        let det = g[1] * g[5] - g[2] * g[4];
        if det == 0.0 || !det.is_finite() {
            return None;
        }
        let dx = x - g[0];
        let dy = y - g[3];
        Some((
            (g[5] * dx - g[2] * dy) / det,
            (-g[4] * dx + g[1] * dy) / det,
        ))
    }

    /// The transform of a window whose top-left pixel is (`col_off`, `row_off`).
    pub fn window(&self, col_off: u64, row_off: u64) -> GeoTransform {
        let (x, y) = self.apply(col_off as f64, row_off as f64);
        let g = self.0;
        GeoTransform([x, g[1], g[2], y, g[4], g[5]])
    }

    /// True when there is no rotation/shear term.
    pub fn is_north_up(&self) -> bool {
        self.0[2] == 0.0 && self.0[4] == 0.0
    }
}

/// A coordinate reference system, kept as an EPSG code and/or WKT text verbatim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crs {
    /// EPSG code (e.g. 25830 for ETRS89 / UTM 30N), when known.
    pub epsg: Option<u32>,
    /// WKT as found in the file, when present.
    pub wkt: Option<String>,
}

impl Crs {
    /// Whether two CRSs are the same as far as their records tell: equal EPSG codes when
    /// both have one, equal WKT otherwise.
    pub fn same_as(&self, other: &Crs) -> bool {
        match (self.epsg, other.epsg) {
            (Some(a), Some(b)) => a == b,
            _ => self.wkt == other.wkt,
        }
    }

    /// A CRS known only by its EPSG code.
    pub fn epsg(code: u32) -> Self {
        Crs {
            epsg: Some(code),
            wkt: None,
        }
    }

    /// True when neither an EPSG code nor WKT is known.
    pub fn is_unknown(&self) -> bool {
        self.epsg.is_none() && self.wkt.is_none()
    }

    /// The CRS of data whose file records `self`, given a user's `assumed` EPSG code (an
    /// `--epsg` option): the file's own CRS when it has one, the assumed one otherwise.
    ///
    /// An assumed code is never used to relabel data: a file that says EPSG:25831 given
    /// `--epsg 25830` is an error. A file with only WKT (no code) keeps its WKT.
    ///
    /// ```
    /// use cog::Crs;
    /// assert_eq!(Crs::default().or_assumed(Some(25830)).unwrap(), Crs::epsg(25830));
    /// assert_eq!(Crs::epsg(25830).or_assumed(Some(25830)).unwrap(), Crs::epsg(25830));
    /// assert!(Crs::epsg(25831).or_assumed(Some(25830)).is_err());
    /// ```
    pub fn or_assumed(&self, assumed: Option<u32>) -> Result<Crs, String> {
        match (assumed, self.epsg) {
            (None, _) => Ok(self.clone()),
            (Some(a), _) if self.is_unknown() => Ok(Crs::epsg(a)),
            (Some(a), Some(own)) if own != a => Err(format!(
                "the data's CRS is EPSG:{own}, not the EPSG:{a} given; an EPSG option applies \
                 only to data that records no CRS (reproject to change a CRS)"
            )),
            _ => Ok(self.clone()),
        }
    }

    /// The CRS as OGC WKT: the text the data carried, else the WKT of its EPSG code from the
    /// built-in EPSG table; `None` when unknown.
    pub fn wkt_text(&self) -> Option<String> {
        if let Some(w) = &self.wkt {
            return Some(w.clone());
        }
        ::crs::wkt_of_epsg(self.epsg?).map(str::to_string)
    }

    /// Whether coordinates are angular (degrees): the WKT's kind when it has a known one,
    /// else the EPSG code's; `false` when neither tells ([`::crs::is_geographic`]).
    pub fn is_geographic(&self) -> bool {
        ::crs::is_geographic(self.epsg, self.wkt.as_deref())
    }

    /// A short name: `EPSG:25830`, `WKT "ETRS89 / UTM zone 30N"`, or `unknown`.
    pub fn label(&self) -> String {
        match (&self.epsg, &self.wkt) {
            (Some(c), _) => format!("EPSG:{c}"),
            (None, Some(w)) => {
                let name = w.split('"').nth(1).unwrap_or("custom");
                format!("WKT \"{name}\"")
            }
            (None, None) => "unknown".to_string(),
        }
    }
}

/// A rectangle of pixels: offsets and size, in pixels of the full-resolution image
/// (or of the chosen overview level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    pub col_off: u64,
    pub row_off: u64,
    pub width: u64,
    pub height: u64,
}

impl Window {
    pub fn new(col_off: u64, row_off: u64, width: u64, height: u64) -> Self {
        Window {
            col_off,
            row_off,
            width,
            height,
        }
    }

    /// Number of pixels.
    pub fn len(&self) -> u64 {
        self.width * self.height
    }

    /// True when the window has no pixels.
    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// The part of this window inside a `width`×`height` image, if any.
    pub fn clip(&self, width: u64, height: u64) -> Option<Window> {
        let c1 = (self.col_off + self.width).min(width);
        let r1 = (self.row_off + self.height).min(height);
        (c1 > self.col_off && r1 > self.row_off).then(|| Window {
            col_off: self.col_off,
            row_off: self.row_off,
            width: c1 - self.col_off,
            height: r1 - self.row_off,
        })
    }
}

/// One band of pixels with its georeferencing. `data` is indexed `[row, col]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Raster<T> {
    pub data: Array2<T>,
    pub transform: GeoTransform,
    pub crs: Crs,
    pub nodata: Option<T>,
}

impl<T> Raster<T> {
    /// Width in pixels (columns).
    pub fn width(&self) -> usize {
        self.data.ncols()
    }

    /// Height in pixels (rows).
    pub fn height(&self) -> usize {
        self.data.nrows()
    }
}

impl<T: Copy + PartialEq> Raster<T> {
    /// True when `v` is this raster's nodata value (NaN counts as nodata for a NaN nodata).
    #[allow(clippy::eq_op)] // `x != x` is the NaN test for a generic PartialEq type
    pub fn is_nodata(&self, v: T) -> bool {
        match self.nodata {
            Some(nd) => v == nd || (nd != nd && v != v),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn transform_round_trips() {
        let gt = GeoTransform([440720.0, 60.0, 0.5, 3751320.0, 0.25, -60.0]);
        let (x, y) = gt.apply(10.5, 20.25);
        let (c, r) = gt.invert(x, y).unwrap();
        assert!((c - 10.5).abs() < 1e-9 && (r - 20.25).abs() < 1e-9);
        let w = gt.window(3, 4);
        assert_eq!(w.apply(0.0, 0.0), gt.apply(3.0, 4.0));
    }

    #[test]
    fn window_clip() {
        let w = Window::new(900, 900, 200, 200);
        assert_eq!(w.clip(1000, 1050), Some(Window::new(900, 900, 100, 150)));
        assert_eq!(Window::new(1000, 0, 5, 5).clip(1000, 1000), None);
    }
}
