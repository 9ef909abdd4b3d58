//! PNG maps: colour ramps ([`ramp`]), a built-in 5×7 bitmap font (no system fonts in
//! Lambda), tick labels, a legend panel — title, unit, colour bar with value ticks, no-data
//! swatch — beside a map ([`with_legend`]), and PNG encoding ([`encode_png`]). Used by the
//! NDVI quicklook, the water ET maps, the biomass maps and the driver's run plots.

use image::{Rgb, RgbImage};

/// The colour at `t` (0..=1, clamped; NaN is 0) of a piecewise-linear ramp through `stops`
/// (`(position, colour)`, positions increasing from 0 to 1), each channel rounded.
///
/// ```
/// const GREY: [(f64, [u8; 3]); 2] = [(0.0, [0, 0, 0]), (1.0, [255, 255, 255])];
/// assert_eq!(cog::legend::ramp(&GREY, 0.5), [128, 128, 128]);
/// assert_eq!(cog::legend::ramp(&GREY, 7.0), [255, 255, 255]);
/// assert_eq!(cog::legend::ramp(&GREY, f64::NAN), [0, 0, 0]);
/// ```
pub fn ramp(stops: &[(f64, [u8; 3])], t: f64) -> [u8; 3] {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    for w in stops.windows(2) {
        let ((a, ca), (b, cb)) = (w[0], w[1]);
        if t <= b {
            let f = if b > a { (t - a) / (b - a) } else { 1.0 };
            let mix = |i: usize| (ca[i] as f64 + f * (cb[i] as f64 - ca[i] as f64)).round() as u8;
            return [mix(0), mix(1), mix(2)];
        }
    }
    stops.last().map_or([0; 3], |s| s.1)
}

/// `img` encoded as PNG.
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

/// Panel background and ink.
pub const BACKGROUND: [u8; 3] = [255, 255, 255];
pub const INK: [u8; 3] = [0, 0, 0];

/// What a legend says.
#[derive(Debug, Clone)]
pub struct Legend {
    /// First line (upper case reads best in the built-in font), e.g. `ET0`.
    pub title: String,
    /// Second line: the unit, e.g. `MM/DAY`.
    pub unit: String,
    /// Values at the bottom and top of the colour bar.
    pub lo: f64,
    pub hi: f64,
    /// The colour of a value of the bar, as a fraction 0 (lo) ..= 1 (hi).
    pub colour: fn(f64) -> [u8; 3],
    /// The no-data colour, when the map has no-data pixels.
    pub nodata: Option<[u8; 3]>,
    /// How tick values are written ([`format_value`], or [`format_tick`] for signed
    /// scales).
    pub ticks: fn(f64) -> String,
}

/// `map` with a legend panel on its right, on a white background.
pub fn with_legend(map: &RgbImage, legend: &Legend) -> RgbImage {
    const SCALE: u32 = 2;
    const PAD: u32 = 12;
    let line_h = 9 * SCALE;
    let ticks: Vec<String> = (0..5)
        .map(|k| {
            let t = 1.0 - k as f64 / 4.0;
            (legend.ticks)(legend.lo + t * (legend.hi - legend.lo))
        })
        .collect();
    let text_w = |s: &str| s.chars().count() as u32 * 6 * SCALE;
    let bar_w = 24;
    let legend_w = [
        text_w(&legend.title),
        text_w(&legend.unit),
        bar_w + 8 + ticks.iter().map(|l| text_w(l)).max().unwrap_or(0),
        bar_w + 8 + text_w("NO DATA"),
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
        + 2 * PAD;
    let bar_h = 200u32;
    let header = PAD + 2 * line_h + PAD;
    let legend_h = header + bar_h + 7 * SCALE + PAD + line_h + PAD;
    let (mw, mh) = (map.width(), map.height());
    let width = PAD + mw + PAD + legend_w;
    let height = (PAD + mh + PAD).max(legend_h);
    let mut img = RgbImage::from_pixel(width, height, Rgb(BACKGROUND));
    for (x, y, p) in map.enumerate_pixels() {
        img.put_pixel(PAD + x, PAD + y, *p);
    }
    let lx = PAD + mw + PAD + PAD;
    draw_text(&mut img, lx, PAD, &legend.title, SCALE, INK);
    draw_text(&mut img, lx, PAD + line_h, &legend.unit, SCALE, INK);
    let bar_top = header + 7 * SCALE / 2;
    for j in 0..bar_h {
        let c = Rgb((legend.colour)(1.0 - j as f64 / (bar_h - 1) as f64));
        for i in 0..bar_w {
            img.put_pixel(lx + i, bar_top + j, c);
        }
    }
    draw_rect_outline(&mut img, lx, bar_top, bar_w, bar_h, INK);
    for (k, label) in ticks.iter().enumerate() {
        let ty = bar_top + (bar_h - 1) * k as u32 / 4;
        for i in 0..6 {
            img.put_pixel(lx + bar_w + i, ty, Rgb(INK));
        }
        draw_text(
            &mut img,
            lx + bar_w + 8,
            ty.saturating_sub(7 * SCALE / 2),
            label,
            SCALE,
            INK,
        );
    }
    if let Some(nd) = legend.nodata {
        let sy = bar_top + bar_h + PAD + 7 * SCALE / 2;
        for j in 0..7 * SCALE {
            for i in 0..bar_w {
                img.put_pixel(lx + i, sy + j, Rgb(nd));
            }
        }
        draw_rect_outline(&mut img, lx, sy, bar_w, 7 * SCALE, INK);
        draw_text(&mut img, lx + bar_w + 8, sy, "NO DATA", SCALE, INK);
    }
    img
}

/// A value label with three significant digits (`0.125`, `4.56`, `1234`, `1.2E+06`).
pub fn format_value(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || !v.is_finite() {
        return "0".to_string();
    }
    if !(1e-3..1e6).contains(&a) {
        return format!("{v:.1E}");
    }
    let decimals = (2 - a.log10().floor() as i32).clamp(0, 3) as usize;
    format!("{v:.decimals$}")
}

pub fn draw_rect_outline(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, color: [u8; 3]) {
    for i in 0..w {
        img.put_pixel(x + i, y, Rgb(color));
        img.put_pixel(x + i, y + h - 1, Rgb(color));
    }
    for j in 0..h {
        img.put_pixel(x, y + j, Rgb(color));
        img.put_pixel(x + w - 1, y + j, Rgb(color));
    }
}

/// Tick label: sign and two or three decimals (`+0.50`, `0.00`, `-0.125`).
pub fn format_tick(v: f32) -> String {
    let v = if v.abs() < 1e-9 { 0.0 } else { v };
    let s = if (v * 100.0 - (v * 100.0).round()).abs() > 1e-4 {
        format!("{:.3}", v.abs())
    } else {
        format!("{:.2}", v.abs())
    };
    match v {
        v if v > 0.0 => format!("+{s}"),
        v if v < 0.0 => format!("-{s}"),
        _ => s,
    }
}

/// Draws `text` with the built-in 5×7 font, each font pixel a `scale`×`scale` square, top-left
/// at (`x`, `y`); characters advance 6 font pixels. Lower case is drawn as upper case,
/// characters without a glyph as `?`. Pixels outside the image are skipped.
pub fn draw_text(img: &mut RgbImage, x: u32, y: u32, text: &str, scale: u32, color: [u8; 3]) {
    for (n, ch) in text.chars().enumerate() {
        let rows = glyph(ch);
        let x0 = x + n as u32 * 6 * scale;
        for (r, bits) in rows.iter().enumerate() {
            for c in 0..5u32 {
                if bits & (0x10 >> c) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (px, py) = (x0 + c * scale + dx, y + r as u32 * scale + dy);
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, Rgb(color));
                        }
                    }
                }
            }
        }
    }
}

/// Rows (top to bottom, 5 low bits, MSB = leftmost) of the 5×7 glyph of `ch`.
pub fn glyph(ch: char) -> [u8; 7] {
    match ch.to_ascii_uppercase() {
        ' ' => [0; 7],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        '=' => [0, 0, 0x1F, 0, 0x1F, 0, 0],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn values_and_panel() {
        assert_eq!(format_value(4.5678), "4.57");
        assert_eq!(format_value(0.1234), "0.123");
        assert_eq!(format_value(1234.4), "1234");
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_tick(0.5), "+0.50");
        let map = RgbImage::from_pixel(40, 30, Rgb([10, 200, 10]));
        let img = with_legend(
            &map,
            &Legend {
                title: "ET0".into(),
                unit: "MM/DAY".into(),
                lo: 1.0,
                hi: 6.5,
                colour: |t| [(255.0 * t) as u8, 0, 0],
                nodata: Some([64, 64, 64]),
                ticks: format_value,
            },
        );
        assert!(img.width() > 40 + 24 && img.height() >= 200);
        // The map is there, and the legend has ink (text) right of it.
        assert_eq!(img.get_pixel(12 + 5, 12 + 5), &Rgb([10, 200, 10]));
        let ink = img
            .enumerate_pixels()
            .filter(|(x, _, p)| *x > 12 + 40 + 12 && **p == Rgb(INK))
            .count();
        assert!(ink > 100, "{ink}");
    }
}
