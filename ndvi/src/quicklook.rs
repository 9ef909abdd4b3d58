//! PNG quicklooks of NDVI and NDVI-difference rasters: a block-averaged map in a diverging
//! colormap (ColorBrewer BrBG: brown = decrease, white = no change, blue-green = increase)
//! with a legend (colour bar, tick values, title and a nodata swatch).
//!
//! Text is drawn with a built-in 5×7 bitmap font so the quicklook needs no system fonts
//! (Lambda images have none).

use cloud::Store;
use cog::Raster;
pub use cog::legend::{draw_text, format_tick, glyph};
use image::{Rgb, RgbImage};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::NdviError;

/// ColorBrewer BrBG, 11 classes, from most negative to most positive.
pub const BRBG: [[u8; 3]; 11] = [
    [84, 48, 5],
    [140, 81, 10],
    [191, 129, 45],
    [223, 194, 125],
    [246, 232, 195],
    [245, 245, 245],
    [199, 234, 229],
    [128, 205, 193],
    [53, 151, 143],
    [1, 102, 94],
    [0, 60, 48],
];

/// Colour of nodata pixels.
pub const NODATA_COLOR: [u8; 3] = [64, 64, 64];

/// Options of a quicklook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuicklookOptions {
    /// Longest side of the map in pixels; the raster is block-averaged down to fit.
    pub max_size: u32,
    /// Value at the ends of the colour scale (symmetric, −vmax … +vmax); `None` picks the
    /// 98th percentile of |value| rounded up to a round number.
    pub vmax: Option<f32>,
    /// First legend line (upper case reads best in the built-in font).
    pub title: String,
    /// Second legend line.
    pub subtitle: Option<String>,
}

impl Default for QuicklookOptions {
    fn default() -> Self {
        QuicklookOptions {
            max_size: 1024,
            vmax: None,
            title: "NDVI CHANGE".to_string(),
            subtitle: Some("AFTER - BEFORE".to_string()),
        }
    }
}

/// Colour of `v` on the diverging scale −`vmax` … +`vmax` (clamped; NaN → nodata colour).
pub fn diverging_color(v: f32, vmax: f32) -> [u8; 3] {
    if v.is_nan() {
        return NODATA_COLOR;
    }
    let t = ((v / vmax).clamp(-1.0, 1.0) + 1.0) * 0.5 * (BRBG.len() - 1) as f32;
    let i = (t.floor() as usize).min(BRBG.len() - 2);
    let f = t - i as f32;
    let (a, b) = (BRBG[i], BRBG[i + 1]);
    let mix = |x: u8, y: u8| (x as f32 + (y as f32 - x as f32) * f).round() as u8;
    [mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2])]
}

/// Block-averages `raster` by an integer factor so its longest side is at most `max_size`;
/// blocks without valid pixels are NaN. Returns (values, width, height, factor).
pub fn downsample(raster: &Raster<f32>, max_size: u32) -> (Vec<f32>, usize, usize, usize) {
    let (h, w) = raster.data.dim();
    let max_size = max_size.max(1) as usize;
    let f = w.max(h).div_ceil(max_size).max(1);
    let (ow, oh) = (w.div_ceil(f), h.div_ceil(f));
    let nodata = raster.nodata;
    let valid = |v: f32| !v.is_nan() && nodata.is_none_or(|nd| v != nd);
    let mut out = vec![f32::NAN; ow * oh];
    out.par_chunks_mut(ow.max(1))
        .enumerate()
        .for_each(|(orow, line)| {
            let mut sum = vec![0f64; ow];
            let mut cnt = vec![0u32; ow];
            for r in orow * f..((orow + 1) * f).min(h) {
                let row = raster.data.row(r);
                for (c, &v) in row.iter().enumerate() {
                    if valid(v) {
                        sum[c / f] += v as f64;
                        cnt[c / f] += 1;
                    }
                }
            }
            for (o, (s, n)) in line.iter_mut().zip(sum.iter().zip(&cnt)) {
                if *n > 0 {
                    *o = (*s / *n as f64) as f32;
                }
            }
        });
    (out, ow, oh, f)
}

/// A round colour-scale end at or above the 98th percentile of |values| (0.1 if none).
pub fn auto_vmax(values: &[f32]) -> f32 {
    let mut abs: Vec<f32> = values
        .iter()
        .filter(|v| !v.is_nan())
        .map(|v| v.abs())
        .collect();
    if abs.is_empty() {
        return 0.1;
    }
    let k = ((abs.len() - 1) as f64 * 0.98).round() as usize;
    let (_, p, _) = abs.select_nth_unstable_by(k, f32::total_cmp);
    let p = *p;
    const NICE: [f32; 12] = [
        0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0,
    ];
    NICE.iter().copied().find(|&n| n >= p).unwrap_or(2.0)
}

/// Renders the quicklook of `raster`: the map with a legend panel on its right
/// ([`cog::legend`]: title, subtitle, the diverging bar from +vmax to −vmax, no data).
pub fn render(raster: &Raster<f32>, options: &QuicklookOptions) -> RgbImage {
    let (values, mw, mh, _) = downsample(raster, options.max_size);
    let vmax = match options.vmax {
        Some(v) if v.is_finite() && v > 0.0 => v,
        _ => auto_vmax(&values),
    };
    let mut map = RgbImage::new(mw as u32, mh as u32);
    for (i, &v) in values.iter().enumerate() {
        let (x, y) = ((i % mw) as u32, (i / mw) as u32);
        map.put_pixel(x, y, Rgb(diverging_color(v, vmax)));
    }
    cog::legend::with_legend(
        &map,
        &cog::legend::Legend {
            title: options.title.clone(),
            unit: options.subtitle.clone().unwrap_or_default(),
            lo: -(vmax as f64),
            hi: vmax as f64,
            colour: |t| diverging_color((2.0 * t - 1.0) as f32, 1.0),
            nodata: Some(NODATA_COLOR),
            ticks: |v| format_tick(v as f32),
        },
    )
}

/// Encodes the quicklook of `raster` as PNG bytes.
pub fn png_bytes(raster: &Raster<f32>, options: &QuicklookOptions) -> Result<Vec<u8>, String> {
    cog::legend::encode_png(&render(raster, options)).map_err(|e| e.to_string())
}

/// Writes the quicklook PNG of `raster` to `uri` (atomically).
pub fn write_quicklook(
    store: &Store,
    uri: &str,
    raster: &Raster<f32>,
    options: &QuicklookOptions,
) -> Result<(), NdviError> {
    let png = png_bytes(raster, options).map_err(|reason| NdviError::Quicklook {
        uri: uri.to_string(),
        reason,
    })?;
    store.put(uri, bytes::Bytes::from(png))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cog::{Crs, GeoTransform};
    use ndarray::Array2;

    fn raster(data: Array2<f32>) -> Raster<f32> {
        Raster {
            data,
            transform: GeoTransform::north_up(0.0, 0.0, 10.0),
            crs: Crs::epsg(32629),
            nodata: Some(f32::NAN),
        }
    }

    #[test]
    fn colormap_is_diverging() {
        assert_eq!(diverging_color(0.0, 0.5), BRBG[5]);
        assert_eq!(diverging_color(-0.5, 0.5), BRBG[0]);
        assert_eq!(diverging_color(9.0, 0.5), BRBG[10]);
        assert_eq!(diverging_color(f32::NAN, 0.5), NODATA_COLOR);
        // A quarter of the way from class 6 to class 7.
        assert_eq!(diverging_color(0.25, 1.0), [181, 227, 220]);
        // Negative values are brown (red > blue), positive blue-green (blue > red).
        let n = diverging_color(-0.3, 0.5);
        let p = diverging_color(0.3, 0.5);
        assert!(n[0] > n[2] && p[2] > p[0]);
    }

    #[test]
    fn downsampling_averages_valid_pixels() {
        let mut d = Array2::from_shape_fn((5, 7), |(r, c)| (r * 7 + c) as f32);
        d[[0, 0]] = f32::NAN;
        for r in 3..5 {
            for c in 6..7 {
                d[[r, c]] = f32::NAN;
            }
        }
        let (v, w, h, f) = downsample(&raster(d), 3);
        assert_eq!((w, h, f), (3, 2, 3));
        // Block (0,0): rows 0-2, cols 0-2 without (0,0).
        let expect = [1.0, 2.0, 7.0, 8.0, 9.0, 14.0, 15.0, 16.0];
        assert_eq!(v[0], expect.iter().sum::<f32>() / 8.0);
        // Block (1,2): rows 3-4, col 6 only, all nodata.
        assert!(v[5].is_nan());
        // Block (1,1): rows 3-4, cols 3-5.
        assert_eq!(v[4], (24.0 + 25.0 + 26.0 + 31.0 + 32.0 + 33.0) / 6.0);
    }

    #[test]
    fn vmax_and_ticks() {
        let v: Vec<f32> = (0..100).map(|i| (i as f32 - 50.0) / 150.0).collect();
        assert_eq!(auto_vmax(&v), 0.4);
        assert_eq!(auto_vmax(&[f32::NAN]), 0.1);
        assert_eq!(format_tick(0.5), "+0.50");
        assert_eq!(format_tick(-0.125), "-0.125");
        assert_eq!(format_tick(0.0), "0.00");
    }

    #[test]
    fn glyphs_and_text() {
        // Every glyph fits in 5 bits, and letters and digits are distinct.
        let chars: Vec<char> = ('A'..='Z').chain('0'..='9').collect();
        for &c in &chars {
            assert!(glyph(c).iter().all(|b| *b < 32), "{c}");
        }
        for (i, &a) in chars.iter().enumerate() {
            for &b in &chars[i + 1..] {
                assert_ne!(glyph(a), glyph(b), "{a} {b}");
            }
        }
        let mut img = RgbImage::from_pixel(20, 10, Rgb([255, 255, 255]));
        draw_text(&mut img, 1, 1, "-", 1, [0, 0, 0]);
        // The minus sign is row 3, columns 0-4.
        for x in 0..20 {
            for y in 0..10 {
                let ink = img.get_pixel(x, y).0 == [0, 0, 0];
                assert_eq!(ink, y == 4 && (1..=5).contains(&x), "({x}, {y})");
            }
        }
    }

    #[test]
    fn renders_map_and_legend() {
        let d = Array2::from_shape_fn((300, 400), |(r, c)| {
            if r < 10 {
                f32::NAN
            } else {
                (c as f32 - 200.0) / 400.0
            }
        });
        let img = render(
            &raster(d),
            &QuicklookOptions {
                vmax: Some(0.5),
                ..Default::default()
            },
        );
        assert!(img.width() > 400 + 24 && img.height() >= 300 + 24);
        // Map pixels: nodata row, the left (most negative) and right ends.
        assert_eq!(img.get_pixel(12 + 5, 12 + 5).0, NODATA_COLOR);
        assert_eq!(img.get_pixel(12, 12 + 100).0, diverging_color(-0.5, 0.5));
        assert_eq!(
            img.get_pixel(12 + 399, 12 + 100).0,
            diverging_color(199.0 / 400.0, 0.5)
        );
        // Legend bar: top is +vmax colour, bottom -vmax.
        let png = png_bytes(&raster(Array2::zeros((4, 4))), &QuicklookOptions::default()).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let back = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(back.get_pixel(12, 12).0, BRBG[5]);
    }
}
