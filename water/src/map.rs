//! PNG quicklook maps of ET rasters: a viridis-like ramp stretched between the 2nd and 98th
//! percentiles, nodata grey, a legend panel with the title, unit and values
//! ([`cog::legend`]), at most 1024 pixels on the long side (nearest-neighbour downsampling).

use ndarray::Array2;

const RAMP: [(f64, [u8; 3]); 6] = [
    (0.0, [68, 1, 84]),
    (0.2, [65, 68, 135]),
    (0.4, [42, 120, 142]),
    (0.6, [34, 168, 132]),
    (0.8, [122, 209, 81]),
    (1.0, [253, 231, 37]),
];

/// The colour of nodata pixels.
const NODATA_GREY: [u8; 3] = [200, 200, 200];

fn colour(t: f64) -> [u8; 3] {
    cog::legend::ramp(&RAMP, t)
}

/// The stretch (low, high) used for `data`: 2nd and 98th percentiles of the finite values.
pub fn stretch(data: &Array2<f32>) -> Option<(f32, f32)> {
    let mut v: Vec<f32> = data.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    let step = (v.len() / 1_000_000).max(1);
    let mut v: Vec<f32> = v.drain(..).step_by(step).collect();
    v.sort_by(f32::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    let (lo, hi) = (q(0.02), q(0.98));
    Some(if hi > lo { (lo, hi) } else { (lo, lo + 1.0) })
}

/// Encodes a PNG map of `data` with a legend panel: `title` and `unit` (`ET0`, `MM/DAY`),
/// the colour bar with the stretch's values, nodata in grey.
pub fn png(data: &Array2<f32>, title: &str, unit: &str) -> Result<Vec<u8>, image::ImageError> {
    let (rows, cols) = data.dim();
    let scale = (rows.max(cols) as f64 / 1024.0).max(1.0);
    let w = ((cols as f64 / scale).round() as u32).max(1);
    let h = ((rows as f64 / scale).round() as u32).max(1);
    let (lo, hi) = stretch(data).unwrap_or((0.0, 1.0));
    let mut map = image::RgbImage::new(w, h);
    let mut any_nodata = false;
    for y in 0..h {
        let r = ((y as f64 + 0.5) * scale) as usize;
        for x in 0..w {
            let c = ((x as f64 + 0.5) * scale) as usize;
            let v = data[[r.min(rows - 1), c.min(cols - 1)]];
            let px = if v.is_finite() {
                colour(((v - lo) / (hi - lo)) as f64)
            } else {
                any_nodata = true;
                NODATA_GREY
            };
            map.put_pixel(x, y, image::Rgb(px));
        }
    }
    let img = cog::legend::with_legend(
        &map,
        &cog::legend::Legend {
            title: title.to_string(),
            unit: unit.to_string(),
            lo: lo as f64,
            hi: hi as f64,
            colour,
            nodata: any_nodata.then_some(NODATA_GREY),

            ticks: cog::legend::format_value,
        },
    );
    cog::legend::encode_png(&img)
}
