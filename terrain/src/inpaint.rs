//! Filling voids (NaN cells) of a grid by harmonic ("springs") inpainting.
//!
//! Every NaN cell is tied by springs to its 4 neighbours; minimising the springs' energy
//! makes each filled cell the mean of its in-grid neighbours (a discrete Laplace equation
//! with the known cells as boundary values) — D'Errico's `inpaint_nans` method 4 that
//! Pingel's SMRF uses. Each 4-connected void is solved on its own (conjugate gradients,
//! sequential and deterministic), so a void's values depend only on the void and the cells
//! around it: two grids that both hold the void and its rim fill it identically.

use std::collections::VecDeque;

use ndarray::Array2;
use rayon::prelude::*;

/// Fills the NaN cells of `a`; returns false (leaving `a` unchanged) when `a` has no known
/// cell at all.
pub fn inpaint(a: &mut Array2<f64>) -> bool {
    let (rows, cols) = a.dim();
    let n = rows * cols;
    if n == 0 {
        return true;
    }
    if a.iter().all(|v| v.is_nan()) {
        return false;
    }
    // Label 4-connected voids.
    let mut label = vec![u32::MAX; n];
    let mut voids: Vec<Vec<u32>> = Vec::new();
    let mut queue = VecDeque::new();
    for start in 0..n {
        if label[start] != u32::MAX || !a[(start / cols, start % cols)].is_nan() {
            continue;
        }
        let id = voids.len() as u32;
        let mut cells = Vec::new();
        label[start] = id;
        queue.push_back(start);
        while let Some(p) = queue.pop_front() {
            cells.push(p as u32);
            let (r, c) = (p / cols, p % cols);
            let mut visit = |q: usize| {
                if label[q] == u32::MAX && a[(q / cols, q % cols)].is_nan() {
                    label[q] = id;
                    queue.push_back(q);
                }
            };
            if r > 0 {
                visit(p - cols);
            }
            if r + 1 < rows {
                visit(p + cols);
            }
            if c > 0 {
                visit(p - 1);
            }
            if c + 1 < cols {
                visit(p + 1);
            }
        }
        cells.sort_unstable();
        voids.push(cells);
    }
    let src = &*a;
    let filled: Vec<(Vec<u32>, Vec<f64>)> = voids
        .into_par_iter()
        .map(|cells| {
            let values = solve_void(src, &cells);
            (cells, values)
        })
        .collect();
    for (cells, values) in filled {
        for (p, v) in cells.into_iter().zip(values) {
            let p = p as usize;
            a[(p / cols, p % cols)] = v;
        }
    }
    true
}

/// Solves the Laplace equation on one void (cells sorted row-major).
fn solve_void(a: &Array2<f64>, cells: &[u32]) -> Vec<f64> {
    let (rows, cols) = a.dim();
    let m = cells.len();
    let pos = |p: u32| cells.binary_search(&p).ok();
    // Sparse rows: diagonal (number of in-grid neighbours), unknown neighbours, rhs.
    let mut diag = vec![0.0f64; m];
    let mut nbr: Vec<[u32; 4]> = vec![[u32::MAX; 4]; m];
    let mut rhs = vec![0.0f64; m];
    for (k, &p) in cells.iter().enumerate() {
        let p = p as usize;
        let (r, c) = (p / cols, p % cols);
        let mut qs = [usize::MAX; 4];
        if r > 0 {
            qs[0] = p - cols;
        }
        if c > 0 {
            qs[1] = p - 1;
        }
        if c + 1 < cols {
            qs[2] = p + 1;
        }
        if r + 1 < rows {
            qs[3] = p + cols;
        }
        let mut slot = 0;
        for q in qs.into_iter().filter(|&q| q != usize::MAX) {
            diag[k] += 1.0;
            let v = a[(q / cols, q % cols)];
            if v.is_nan() {
                if let Some(j) = pos(q as u32) {
                    nbr[k][slot] = j as u32;
                    slot += 1;
                }
            } else {
                rhs[k] += v;
            }
        }
    }
    let known: f64 = rhs.iter().sum::<f64>();
    let nknown: f64 = (0..m)
        .map(|k| diag[k] - nbr[k].iter().filter(|&&j| j != u32::MAX).count() as f64)
        .sum();
    let mean = if nknown > 0.0 { known / nknown } else { 0.0 };
    let matvec = |x: &[f64], y: &mut [f64]| {
        for k in 0..m {
            let mut s = diag[k] * x[k];
            for &j in &nbr[k] {
                if j != u32::MAX {
                    s -= x[j as usize];
                }
            }
            y[k] = s;
        }
    };
    // Solve for u − mean (better conditioned sums), Jacobi-preconditioned CG.
    let mut x = vec![0.0f64; m];
    let mut b = rhs;
    {
        let mut ones = vec![0.0; m];
        matvec(&vec![mean; m], &mut ones);
        for k in 0..m {
            b[k] -= ones[k];
        }
    }
    let bnorm = b.iter().map(|v| v * v).sum::<f64>().sqrt();
    if bnorm > 0.0 {
        let mut r = b.clone();
        let mut z: Vec<f64> = (0..m).map(|k| r[k] / diag[k]).collect();
        let mut p = z.clone();
        let mut rz: f64 = r.iter().zip(&z).map(|(a, b)| a * b).sum();
        let mut ap = vec![0.0; m];
        let max_iter = (4 * m).clamp(50, 200_000);
        for _ in 0..max_iter {
            matvec(&p, &mut ap);
            let pap: f64 = p.iter().zip(&ap).map(|(a, b)| a * b).sum();
            if pap <= 0.0 || !pap.is_finite() {
                break;
            }
            let alpha = rz / pap;
            for k in 0..m {
                x[k] += alpha * p[k];
                r[k] -= alpha * ap[k];
            }
            let rnorm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
            if rnorm <= 1e-12 * bnorm {
                break;
            }
            for k in 0..m {
                z[k] = r[k] / diag[k];
            }
            let rz_new: f64 = r.iter().zip(&z).map(|(a, b)| a * b).sum();
            let beta = rz_new / rz;
            rz = rz_new;
            for k in 0..m {
                p[k] = z[k] + beta * p[k];
            }
        }
    }
    x.into_iter().map(|v| v + mean).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fills_with_neighbour_means() {
        // A linear ramp is harmonic: inpainting a hole restores it.
        let full = Array2::from_shape_fn((9, 12), |(r, c)| 2.0 * r as f64 + 0.5 * c as f64 + 100.0);
        let mut a = full.clone();
        for r in 2..6 {
            for c in 3..9 {
                a[(r, c)] = f64::NAN;
            }
        }
        assert!(inpaint(&mut a));
        for (x, y) in a.iter().zip(full.iter()) {
            assert!((x - y).abs() < 1e-9, "{x} {y}");
        }
        // A single hole is the mean of its 4 neighbours.
        let mut b = Array2::from_shape_fn((3, 3), |(r, c)| (r * 3 + c) as f64);
        b[(1, 1)] = f64::NAN;
        assert!(inpaint(&mut b));
        assert_eq!(b[(1, 1)], (1.0 + 3.0 + 5.0 + 7.0) / 4.0);
        // A corner hole next to the grid edge uses its 2 in-grid neighbours.
        let mut c = Array2::from_shape_fn((3, 3), |(r, c)| (r * 3 + c) as f64);
        c[(0, 0)] = f64::NAN;
        assert!(inpaint(&mut c));
        assert_eq!(c[(0, 0)], 2.0);
        let mut d = Array2::from_elem((2, 2), f64::NAN);
        assert!(!inpaint(&mut d));
    }

    #[test]
    fn a_void_fills_the_same_in_a_bigger_grid() {
        let f = |r: usize, c: usize| ((r * 7 + c * 13) % 17) as f64;
        let mut small = Array2::from_shape_fn((10, 10), |(r, c)| f(r, c));
        let mut big = Array2::from_shape_fn((20, 30), |(r, c)| f(r, c));
        for r in 3..7 {
            for c in 2..8 {
                small[(r, c)] = f64::NAN;
                big[(r + 5, c + 10)] = f64::NAN;
            }
        }
        // Same rim values around both voids.
        for r in 2..8 {
            for c in 1..9 {
                if !small[(r, c)].is_nan() {
                    big[(r + 5, c + 10)] = small[(r, c)];
                }
            }
        }
        inpaint(&mut small);
        inpaint(&mut big);
        for r in 3..7 {
            for c in 2..8 {
                assert_eq!(small[(r, c)].to_bits(), big[(r + 5, c + 10)].to_bits());
            }
        }
    }
}
