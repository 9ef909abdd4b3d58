//! Geometry shared by the exact and bounded methods: buffered boxes in raw units with the
//! original's floating-point semantics, neighbour search, output names.

use crate::format::Header;
use crate::params::{BBox, Bounds};
use crate::split::RawBox;
use crate::writer::Stats;

/// Flag bit of a selected point index: the point is a buffer point (withheld).
pub(crate) const BUFFER_FLAG: u32 = 1 << 31;

/// The core box grown by the buffer, as inclusive raw ranges: a raw `X` is inside exactly
/// when `min_x − b <= X·scale + offset <= max_x + b` in f64, as the original (NumPy on
/// laspy's scaled coordinates) tests it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grown {
    pub lo: [i64; 2],
    pub hi: [i64; 2],
}

impl Grown {
    pub fn new(core: &RawBox, buffer: f64, h: &Header) -> Grown {
        let mut lo = [0i64; 2];
        let mut hi = [0i64; 2];
        for a in 0..2 {
            let f = |r: i64| r as f64 * h.scale()[a] + h.offset()[a];
            let lo_f = h.scaled(a, core.min[a]) - buffer;
            let hi_f = h.scaled(a, core.max[a]) + buffer;
            let mut r = ((lo_f - h.offset()[a]) / h.scale()[a]).floor() as i64 - 2;
            r = r.clamp(i64::from(i32::MIN) - 1, i64::from(core.min[a]));
            while f(r) < lo_f && r < i64::from(core.min[a]) {
                r += 1;
            }
            while r > i64::from(i32::MIN) - 1 && f(r - 1) >= lo_f {
                r -= 1;
            }
            lo[a] = r;
            let mut r = ((hi_f - h.offset()[a]) / h.scale()[a]).ceil() as i64 + 2;
            r = r.clamp(i64::from(core.max[a]), i64::from(i32::MAX) + 1);
            while f(r) > hi_f && r > i64::from(core.max[a]) {
                r -= 1;
            }
            while r < i64::from(i32::MAX) + 1 && f(r + 1) <= hi_f {
                r += 1;
            }
            hi[a] = r;
        }
        Grown { lo, hi }
    }

    #[inline]
    pub fn contains(&self, p: [i32; 2]) -> bool {
        let (x, y) = (i64::from(p[0]), i64::from(p[1]));
        x >= self.lo[0] && x <= self.hi[0] && y >= self.lo[1] && y <= self.hi[1]
    }

    pub fn intersects(&self, b: &RawBox) -> bool {
        !b.is_empty()
            && i64::from(b.max[0]) >= self.lo[0]
            && i64::from(b.min[0]) <= self.hi[0]
            && i64::from(b.max[1]) >= self.lo[1]
            && i64::from(b.min[1]) <= self.hi[1]
    }
}

/// For each tile `t`, the other boxes (`boxes[l]`, `l != t`) that meet `grown[t]`.
pub(crate) fn neighbours(boxes: &[RawBox], grown: &[Grown]) -> Vec<Vec<u32>> {
    let k = boxes.len();
    let all = boxes
        .iter()
        .filter(|b| !b.is_empty())
        .fold(RawBox::EMPTY, |a, b| a.merge(b));
    if k <= 64 || all.is_empty() {
        return (0..k)
            .map(|t| {
                (0..k)
                    .filter(|&l| l != t && grown[t].intersects(&boxes[l]))
                    .map(|l| l as u32)
                    .collect()
            })
            .collect();
    }
    // A bucket grid of about k cells; every box registered in the cells it overlaps.
    let g = (k as f64).sqrt().ceil() as i64;
    let span = [
        i64::from(all.max[0]) - i64::from(all.min[0]) + 1,
        i64::from(all.max[1]) - i64::from(all.min[1]) + 1,
    ];
    let cell = |a: usize, v: i64| -> i64 {
        ((v - i64::from(all.min[a])).clamp(0, span[a] - 1) * g / span[a]).clamp(0, g - 1)
    };
    let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); (g * g) as usize];
    for (l, b) in boxes.iter().enumerate() {
        if b.is_empty() {
            continue;
        }
        for cy in cell(1, b.min[1].into())..=cell(1, b.max[1].into()) {
            for cx in cell(0, b.min[0].into())..=cell(0, b.max[0].into()) {
                buckets[(cy * g + cx) as usize].push(l as u32);
            }
        }
    }
    let mut seen = vec![usize::MAX; k];
    (0..k)
        .map(|t| {
            let q = &grown[t];
            let mut out = Vec::new();
            for cy in cell(1, q.lo[1])..=cell(1, q.hi[1]) {
                for cx in cell(0, q.lo[0])..=cell(0, q.hi[0]) {
                    for &l in &buckets[(cy * g + cx) as usize] {
                        let l = l as usize;
                        if l != t && seen[l] != t && q.intersects(&boxes[l]) {
                            seen[l] = t;
                            out.push(l as u32);
                        }
                    }
                }
            }
            out.sort_unstable();
            out
        })
        .collect()
}

/// Raw margin per axis beyond which a point of a box cannot be within `buffer` of any other
/// (disjoint) box: a point farther than this inside its own box is nobody's buffer point.
pub(crate) fn margin(buffer: f64, h: &Header) -> [i64; 2] {
    [0, 1].map(|a| ((buffer / h.scale()[a]).floor().min(1e15) as i64).saturating_add(2))
}

/// Whether `p` lies deeper than `m` inside `b` (so it cannot be a buffer point elsewhere).
#[inline]
pub(crate) fn deep_inside(p: [i32; 2], b: &RawBox, m: [i64; 2]) -> bool {
    let (x, y) = (i64::from(p[0]), i64::from(p[1]));
    x > i64::from(b.min[0]) + m[0]
        && x < i64::from(b.max[0]) - m[0]
        && y > i64::from(b.min[1]) + m[1]
        && y < i64::from(b.max[1]) - m[1]
}

/// The core box in CRS units.
pub(crate) fn scaled_box(b: &RawBox, h: &Header) -> BBox {
    BBox {
        min_x: h.scaled(0, b.min[0]),
        min_y: h.scaled(1, b.min[1]),
        max_x: h.scaled(0, b.max[0]),
        max_y: h.scaled(1, b.max[1]),
    }
}

/// Header bounds of written records.
pub(crate) fn stats_bounds(s: &Stats, h: &Header) -> Bounds {
    let (min, max) = s.bounds(h);
    Bounds { min, max }
}

/// The file stem of an input URI: its name without `.las`, `.laz` or `.copc.laz`.
pub(crate) fn stem_of(uri: &str) -> String {
    let name = cloud::uri::file_name(uri);
    let lower = name.to_ascii_lowercase();
    for ext in [".copc.laz", ".las", ".laz"] {
        if lower.ends_with(ext) && name.len() > ext.len() {
            return name[..name.len() - ext.len()].to_string();
        }
    }
    match name.rfind('.') {
        Some(p) if p > 0 => name[..p].to_string(),
        _ if name.is_empty() => "points".to_string(),
        _ => name.to_string(),
    }
}

/// `<stem>-NNNN.<las|laz>`.
pub(crate) fn tile_name(stem: &str, index: usize, laz: bool) -> String {
    format!("{stem}-{index:04}.{}", if laz { "laz" } else { "las" })
}

/// Whether `name` is a tile name of `stem` ([`tile_name`] for some index, LAS or LAZ).
pub(crate) fn is_tile_name(stem: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(stem).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    let Some((digits, ext)) = rest.split_once('.') else {
        return false;
    };
    digits.len() >= 4 && digits.bytes().all(|b| b.is_ascii_digit()) && matches!(ext, "las" | "laz")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tile_names() {
        assert_eq!(tile_name("a_1", 3, true), "a_1-0003.laz");
        assert!(is_tile_name("a_1", "a_1-0003.laz"));
        assert!(is_tile_name("a_1", "a_1-12345.las"));
        assert!(!is_tile_name("a_1", "a_1-003.las"));
        assert!(!is_tile_name("a_1", "a_1-0003.tif"));
        assert!(!is_tile_name("a", "a_1-0003.las"));
        assert!(!is_tile_name("a_1", "a_1-0003.las.bak"));
    }

    fn header(rel: &str) -> Header {
        let path = format!("{}/../../shared/data/{rel}", env!("CARGO_MANIFEST_DIR"));
        let b = std::fs::read(path).unwrap();
        Header::parse(&b[..Header::needed_len(&b)]).unwrap()
    }

    /// The raw ranges answer exactly like the original's f64 test on scaled coordinates.
    #[test]
    fn grown_box_matches_the_float_test() {
        for rel in [
            "lidar/pdal/autzen_trim.las",
            "lidar/laspy/test1_4.las",
            "lidar/pdal/hexbin-crop.las",
        ] {
            let h = header(rel);
            for &(min, max) in &[
                ([1000, -500], [2000, 700]),
                ([-7, 3], [-7, 3]),
                ([123_457, 99], [123_999, 100]),
            ] {
                let core = RawBox { min, max };
                for b in [0.0, 0.1, 0.3, 5.0, 10.0, 0.01, 1e-3, 7.77] {
                    let g = Grown::new(&core, b, &h);
                    for a in 0..2 {
                        let lo_f = h.scaled(a, core.min[a]) - b;
                        let hi_f = h.scaled(a, core.max[a]) + b;
                        for r in [
                            g.lo[a] - 2,
                            g.lo[a] - 1,
                            g.lo[a],
                            g.lo[a] + 1,
                            g.hi[a] - 1,
                            g.hi[a],
                            g.hi[a] + 1,
                            g.hi[a] + 2,
                        ] {
                            let v = r as f64 * h.scale()[a] + h.offset()[a];
                            let inside = v >= lo_f && v <= hi_f;
                            assert_eq!(
                                (g.lo[a]..=g.hi[a]).contains(&r),
                                inside,
                                "{rel} axis {a} b {b} raw {r}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn stems() {
        assert_eq!(stem_of("s3://b/dir/lasfile.las"), "lasfile");
        assert_eq!(stem_of("/d/simple.copc.laz"), "simple");
        assert_eq!(stem_of("1.2-with-color.LAS"), "1.2-with-color");
        assert_eq!(stem_of("out_-1_-6.laz"), "out_-1_-6");
        assert_eq!(tile_name("a", 3, true), "a-0003.laz");
        assert_eq!(tile_name("a", 12345, false), "a-12345.las");
    }
}
