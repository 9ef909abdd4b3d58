//! Output encoders: tree-top and per-tree CSVs, PNG maps.

use image::{Rgb, RgbImage};
use ndarray::ArrayView2;

use crate::predictors::{Crown, N_PREDICTORS, PREDICTOR_NAMES};
use crate::segment::TreeTop;
use cog::GeoTransform;

/// The map position (pixel centre, CRS units) of pixel (row, col).
pub fn pixel_centre(t: &GeoTransform, row: usize, col: usize) -> (f64, f64) {
    t.apply(col as f64 + 0.5, row as f64 + 0.5)
}

/// `treetops.csv`: `id,x,y,height,smoothed_height,row,col,pixels` (x, y: pixel centre of the
/// top in the CHM's CRS; height: CHM at the top, m; smoothed_height: smoothed CHM, m).
pub fn tops_csv(tops: &[TreeTop], chm: ArrayView2<'_, f32>, t: &GeoTransform) -> String {
    let mut s = String::from("id,x,y,height,smoothed_height,row,col,pixels\n");
    for top in tops {
        let (x, y) = pixel_centre(t, top.row, top.col);
        s.push_str(&format!(
            "{},{x:.3},{y:.3},{},{},{},{},{}\n",
            top.id,
            chm[[top.row, top.col]],
            top.smoothed,
            top.row,
            top.col,
            top.pixels
        ));
    }
    s
}

/// `trees.csv`: `id,x,y,height,<11 predictors>,biomass_kg` (x, y and height of the tree top;
/// predictors in training-CSV order).
pub fn trees_csv(
    crowns: &[Crown],
    tops: &[TreeTop],
    biomass: &[f64],
    chm: ArrayView2<'_, f32>,
    t: &GeoTransform,
) -> String {
    let mut s = String::from("id,x,y,height");
    for n in PREDICTOR_NAMES {
        s.push(',');
        s.push_str(n);
    }
    s.push_str(",biomass_kg\n");
    let top_of: std::collections::HashMap<u32, &TreeTop> = tops.iter().map(|t| (t.id, t)).collect();
    for (c, b) in crowns.iter().zip(biomass) {
        let (x, y, h) = match top_of.get(&c.label) {
            Some(top) => {
                let (x, y) = pixel_centre(t, top.row, top.col);
                (x, y, chm[[top.row, top.col]] as f64)
            }
            None => {
                let (x, y) = t.apply(c.centroid_col + 0.5, c.centroid_row + 0.5);
                (x, y, c.predictors[2])
            }
        };
        s.push_str(&format!("{},{x:.3},{y:.3},{h}", c.label));
        for k in 0..N_PREDICTORS {
            s.push_str(&format!(",{}", c.predictors[k]));
        }
        s.push_str(&format!(",{b}\n"));
    }
    s
}

/// Viridis-like colour ramp, `t` in 0..=1.
fn ramp(t: f64) -> Rgb<u8> {
    const STOPS: [(f64, [u8; 3]); 5] = [
        (0.0, [68, 1, 84]),
        (0.25, [59, 82, 139]),
        (0.5, [33, 145, 140]),
        (0.75, [94, 201, 98]),
        (1.0, [253, 231, 37]),
    ];
    Rgb(cog::legend::ramp(&STOPS, t))
}

/// Downsampling step so the longer side is at most `max_side` pixels.
fn step_for(h: usize, w: usize, max_side: usize) -> usize {
    h.max(w).div_ceil(max_side.max(1)).max(1)
}

fn encode(img: &RgbImage) -> Result<Vec<u8>, String> {
    cog::legend::encode_png(img).map_err(|e| e.to_string())
}

/// A PNG of a non-negative field (CHM metres or biomass kg): 0 black, else a colour ramp up to
/// the maximum, with optional red tree-top dots, and a legend panel (`title`, `unit`, the
/// values of the ramp). At most `max_side` pixels a side.
pub fn field_png(
    field: ArrayView2<'_, f32>,
    tops: &[TreeTop],
    max_side: usize,
    title: &str,
    unit: &str,
) -> Result<Vec<u8>, String> {
    let (h, w) = field.dim();
    let step = step_for(h, w, max_side);
    let (oh, ow) = (h.div_ceil(step).max(1), w.div_ceil(step).max(1));
    let max = field
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f32, f32::max) as f64;
    let mut img = RgbImage::new(ow as u32, oh as u32);
    for (x, y, p) in img.enumerate_pixels_mut() {
        let (r0, c0) = (y as usize * step, x as usize * step);
        let mut m = 0.0f32;
        for r in r0..(r0 + step).min(h) {
            for c in c0..(c0 + step).min(w) {
                m = m.max(field[[r, c]]);
            }
        }
        *p = if m > 0.0 && max > 0.0 {
            ramp(m as f64 / max)
        } else {
            Rgb([0, 0, 0])
        };
    }
    for t in tops {
        let (x, y) = ((t.col / step) as u32, (t.row / step) as u32);
        if x < img.width() && y < img.height() {
            img.put_pixel(x, y, Rgb([230, 30, 30]));
        }
    }
    let img = cog::legend::with_legend(
        &img,
        &cog::legend::Legend {
            title: title.to_string(),
            unit: unit.to_string(),
            lo: 0.0,
            hi: max,
            colour: |t| ramp(t).0,
            nodata: None,

            ticks: cog::legend::format_value,
        },
    );
    encode(&img)
}

/// A PNG of crown labels: each crown a stable pseudo-random colour, crown edges darkened,
/// background black.
pub fn labels_png(labels: ArrayView2<'_, u32>, max_side: usize) -> Result<Vec<u8>, String> {
    let (h, w) = labels.dim();
    let step = step_for(h, w, max_side);
    let (oh, ow) = (h.div_ceil(step).max(1), w.div_ceil(step).max(1));
    let colour = |l: u32| -> Rgb<u8> {
        let mut x = l.wrapping_mul(0x9E37_79B9) ^ 0x5bd1_e995;
        x ^= x >> 15;
        x = x.wrapping_mul(0x2c1b_3c6d);
        x ^= x >> 12;
        Rgb([
            80 + (x & 0x7f) as u8,
            80 + ((x >> 8) & 0x7f) as u8,
            80 + ((x >> 16) & 0x7f) as u8,
        ])
    };
    let mut img = RgbImage::new(ow as u32, oh as u32);
    for (x, y, p) in img.enumerate_pixels_mut() {
        let (r, c) = (y as usize * step, x as usize * step);
        let l = labels[[r, c]];
        *p = if l == 0 {
            Rgb([0, 0, 0])
        } else {
            let edge = (r + step < h && labels[[r + step, c]] != l)
                || (c + step < w && labels[[r, c + step]] != l);
            let Rgb([a, b, d]) = colour(l);
            if edge {
                Rgb([a / 3, b / 3, d / 3])
            } else {
                Rgb([a, b, d])
            }
        };
    }
    encode(&img)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pngs_decode() {
        let f = ndarray::Array2::from_shape_fn((30, 50), |(r, c)| (r + c) as f32);
        let png = field_png(f.view(), &[], 16, "CHM", "M").unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        // The 13×8 map (downsampled by 4) at (12, 12), the legend panel beside it.
        assert!(img.width() > 12 + 13 + 12 + 24 && img.height() >= 200);
        assert_eq!(img.get_pixel(12 + 12, 12 + 7), &ramp(1.0), "the maximum");
        let z = ndarray::Array2::<f32>::zeros((8, 8));
        let png = field_png(z.view(), &[], 16, "CHM", "M").unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.get_pixel(12, 12), &Rgb([0, 0, 0]), "0 m is black");
        let l = ndarray::Array2::from_shape_fn((10, 10), |(r, _)| (r / 5) as u32);
        let png = labels_png(l.view(), 100).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.get_pixel(0, 0), &Rgb([0, 0, 0]));
        assert_ne!(img.get_pixel(0, 7), &Rgb([0, 0, 0]));
    }

    #[test]
    fn ramp_ends() {
        assert_eq!(ramp(0.0), Rgb([68, 1, 84]));
        assert_eq!(ramp(1.0), Rgb([253, 231, 37]));
    }
}
