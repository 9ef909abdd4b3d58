//! Grayscale morphology with disk structuring elements (scikit-image `disk(r)`: the cells
//! with dx² + dy² ≤ r²), cells outside the grid ignored.
//!
//! Each disk is decomposed into horizontal segments; a running minimum (maximum) of a
//! segment of any length costs O(1) per cell (van Herk / Gil–Werman), so an erosion of
//! radius r costs O(r) per cell instead of O(r²).

use ndarray::{Array2, Axis};
use rayon::prelude::*;

/// Half-widths of the rows of `disk(r)`, for dy = 0..=r.
fn half_widths(r: usize) -> Vec<usize> {
    (0..=r)
        .map(|dy| {
            let m = (r * r - dy * dy) as f64;
            let mut w = m.sqrt() as usize;
            while (w + 1) * (w + 1) <= r * r - dy * dy {
                w += 1;
            }
            while w * w > r * r - dy * dy {
                w -= 1;
            }
            w
        })
        .collect()
}

/// out[c] = op over row[c−hw ..= c+hw] (clipped to the row), with `ident` outside.
fn running(
    row: &[f64],
    hw: usize,
    out: &mut [f64],
    g: &mut Vec<f64>,
    h: &mut Vec<f64>,
    is_min: bool,
) {
    let n = row.len();
    if hw == 0 {
        out.copy_from_slice(row);
        return;
    }
    let op = |a: f64, b: f64| if is_min { a.min(b) } else { a.max(b) };
    let ident = if is_min {
        f64::INFINITY
    } else {
        f64::NEG_INFINITY
    };
    let k = 2 * hw + 1;
    let len = n + 2 * hw;
    g.clear();
    h.clear();
    g.resize(len, ident);
    h.resize(len, ident);
    let at = |p: usize| {
        if p < hw || p >= hw + n {
            ident
        } else {
            row[p - hw]
        }
    };
    // g: running op from the start of each block; h: from the end of each block.
    for p in 0..len {
        let v = at(p);
        g[p] = if p % k == 0 { v } else { op(g[p - 1], v) };
    }
    for p in (0..len).rev() {
        let v = at(p);
        h[p] = if p % k == k - 1 || p == len - 1 {
            v
        } else {
            op(h[p + 1], v)
        };
    }
    for (c, o) in out.iter_mut().enumerate() {
        // Window [c, c + k − 1] in padded coordinates.
        *o = op(h[c], g[c + k - 1]);
    }
}

fn disk_op(a: &Array2<f64>, r: usize, is_min: bool) -> Array2<f64> {
    let (rows, cols) = a.dim();
    let ident = if is_min {
        f64::INFINITY
    } else {
        f64::NEG_INFINITY
    };
    let mut out = Array2::from_elem((rows, cols), ident);
    if r == 0 {
        out.assign(a);
        return out;
    }
    let hw = half_widths(r);
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each_init(
            || (vec![0.0; cols], Vec::new(), Vec::new()),
            |(tmp, g, h), (i, mut line)| {
                let line = line
                    .as_slice_mut()
                    .expect("rows of a standard array are contiguous");
                for dy in -(r as isize)..=(r as isize) {
                    let src = i as isize + dy;
                    if src < 0 || src >= rows as isize {
                        continue;
                    }
                    let srow = a.row(src as usize);
                    let srow = srow
                        .as_slice()
                        .expect("rows of a standard array are contiguous");
                    running(srow, hw[dy.unsigned_abs()], tmp, g, h, is_min);
                    for (o, &v) in line.iter_mut().zip(tmp.iter()) {
                        *o = if is_min { o.min(v) } else { o.max(v) };
                    }
                }
            },
        );
    out
}

/// Grayscale erosion (minimum) by `disk(r)`.
pub fn erode_disk(a: &Array2<f64>, r: usize) -> Array2<f64> {
    disk_op(&a.as_standard_layout().to_owned(), r, true)
}

/// Grayscale dilation (maximum) by `disk(r)`.
pub fn dilate_disk(a: &Array2<f64>, r: usize) -> Array2<f64> {
    disk_op(&a.as_standard_layout().to_owned(), r, false)
}

/// Grayscale opening (erosion then dilation) by `disk(r)`.
pub fn open_disk(a: &Array2<f64>, r: usize) -> Array2<f64> {
    dilate_disk(&erode_disk(a, r), r)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn naive(a: &Array2<f64>, r: usize, is_min: bool) -> Array2<f64> {
        let (rows, cols) = a.dim();
        let r = r as isize;
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            let mut m = if is_min {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            };
            for dy in -r..=r {
                for dx in -r..=r {
                    if dx * dx + dy * dy > r * r {
                        continue;
                    }
                    let (y, x) = (i as isize + dy, j as isize + dx);
                    if y < 0 || x < 0 || y >= rows as isize || x >= cols as isize {
                        continue;
                    }
                    let v = a[(y as usize, x as usize)];
                    m = if is_min { m.min(v) } else { m.max(v) };
                }
            }
            m
        })
    }

    #[test]
    fn matches_the_definition() {
        let mut s = 7u64;
        let a = Array2::from_shape_fn((23, 31), |_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            (s >> 40) as f64
        });
        for r in [1, 2, 3, 5, 8, 16] {
            assert_eq!(erode_disk(&a, r), naive(&a, r, true), "erode r={r}");
            assert_eq!(dilate_disk(&a, r), naive(&a, r, false), "dilate r={r}");
        }
        assert_eq!(half_widths(1), vec![1, 0]);
        assert_eq!(half_widths(3), vec![3, 2, 2, 0]);
    }
}
