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
    solve_void_with(a, cells, cells.len() > MULTIGRID_MIN_CELLS).0
}

/// [`solve_void`] with or without the multigrid preconditioner; also returns the CG
/// iterations made.
fn solve_void_with(a: &Array2<f64>, cells: &[u32], use_multigrid: bool) -> (Vec<f64>, usize) {
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
    // Solve for u − mean (better conditioned sums) by preconditioned CG: Jacobi for small
    // voids, a multigrid V-cycle for large ones (Jacobi-CG needs iterations in proportion
    // to the void's diameter: a 400 m void took seconds; multigrid a few dozen).
    let mut x = vec![0.0f64; m];
    let mut b = rhs;
    {
        let mut ones = vec![0.0; m];
        matvec(&vec![mean; m], &mut ones);
        for k in 0..m {
            b[k] -= ones[k];
        }
    }
    let multigrid = use_multigrid.then(|| Multigrid::new(cells, &diag, &nbr, rows, cols));
    let mut iterations = 0;
    let precondition = |r: &[f64], z: &mut [f64]| match &multigrid {
        Some(mg) => mg.vcycle(r, z),
        None => {
            for k in 0..m {
                z[k] = r[k] / diag[k];
            }
        }
    };
    let bnorm = b.iter().map(|v| v * v).sum::<f64>().sqrt();
    if bnorm > 0.0 {
        let mut r = b.clone();
        let mut z = vec![0.0; m];
        precondition(&r, &mut z);
        let mut p = z.clone();
        let mut rz: f64 = r.iter().zip(&z).map(|(a, b)| a * b).sum();
        let mut ap = vec![0.0; m];
        let max_iter = (4 * m).clamp(50, 200_000);
        for _ in 0..max_iter {
            iterations += 1;
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
            precondition(&r, &mut z);
            let rz_new: f64 = r.iter().zip(&z).map(|(a, b)| a * b).sum();
            if !(rz_new.is_finite() && rz != 0.0) {
                break;
            }
            let beta = rz_new / rz;
            rz = rz_new;
            for k in 0..m {
                p[k] = z[k] + beta * p[k];
            }
        }
    }
    (x.into_iter().map(|v| v + mean).collect(), iterations)
}

/// Voids of more cells than this are solved with the multigrid preconditioner.
const MULTIGRID_MIN_CELLS: usize = 1024;

/// One level of the multigrid hierarchy of a void: its unknown cells (level `l` coordinates
/// are the grid's divided by 2^l) and the 5-point operator on them.
struct Level {
    /// Number of in-grid neighbours of each cell, times the level's scale.
    diag: Vec<f64>,
    /// Unknown neighbours (indices into this level), `u32::MAX` for none.
    nbr: Vec<[u32; 4]>,
    /// The operator's off-diagonal weight (−scale for an unknown neighbour).
    scale: f64,
    /// For each cell, its cell in the next (coarser) level.
    parent: Vec<u32>,
}

/// A geometric multigrid V-cycle for the Laplace system of one void, used as the
/// preconditioner of CG. Coarse cells are 2×2 blocks of the grid holding an unknown cell;
/// the coarse operator is the 5-point Laplacian scaled by 2 per level (the Galerkin product
/// for piecewise-constant prolongation and summing restriction); damped Jacobi smoothing
/// before and after, equal in number, so the preconditioner is symmetric positive definite.
struct Multigrid {
    levels: Vec<Level>,
}

const SMOOTHING_SWEEPS: usize = 2;
const JACOBI_DAMPING: f64 = 0.8;
const COARSEST_SWEEPS: usize = 60;

impl Multigrid {
    fn new(cells: &[u32], diag: &[f64], nbr: &[[u32; 4]], rows: usize, cols: usize) -> Multigrid {
        // Level 0: the system itself.
        let mut coords: Vec<(usize, usize)> = cells
            .iter()
            .map(|&p| (p as usize / cols, p as usize % cols))
            .collect();
        let mut levels = vec![Level {
            diag: diag.to_vec(),
            nbr: nbr.to_vec(),
            scale: 1.0,
            parent: Vec::new(),
        }];
        let (mut lrows, mut lcols) = (rows, cols);
        while coords.len() > 64 && levels.len() < 24 {
            // Coarse cells: the distinct parents, row-major.
            let mut coarse: Vec<(usize, usize)> =
                coords.iter().map(|&(r, c)| (r / 2, c / 2)).collect();
            coarse.sort_unstable();
            coarse.dedup();
            if coarse.len() == coords.len() {
                break;
            }
            let index = |rc: (usize, usize)| coarse.binary_search(&rc).ok();
            let parent: Vec<u32> = coords
                .iter()
                .map(|&(r, c)| index((r / 2, c / 2)).map_or(u32::MAX, |i| i as u32))
                .collect();
            let (crows, ccols) = (lrows.div_ceil(2), lcols.div_ceil(2));
            let scale = levels.last().map_or(1.0, |l| l.scale) * 2.0;
            let mut cdiag = vec![0.0; coarse.len()];
            let mut cnbr = vec![[u32::MAX; 4]; coarse.len()];
            for (k, &(r, c)) in coarse.iter().enumerate() {
                let mut slot = 0;
                let around = [
                    (r > 0).then(|| (r - 1, c)),
                    (c > 0).then(|| (r, c - 1)),
                    (c + 1 < ccols).then_some((r, c + 1)),
                    (r + 1 < crows).then_some((r + 1, c)),
                ];
                for q in around.into_iter().flatten() {
                    cdiag[k] += scale;
                    if let Some(j) = index(q) {
                        cnbr[k][slot] = j as u32;
                        slot += 1;
                    }
                }
            }
            if let Some(last) = levels.last_mut() {
                last.parent = parent;
            }
            levels.push(Level {
                diag: cdiag,
                nbr: cnbr,
                scale,
                parent: Vec::new(),
            });
            coords = coarse;
            lrows = crows;
            lcols = ccols;
        }
        Multigrid { levels }
    }

    /// `z` ≈ A⁻¹ `r`: one V-cycle from zero.
    fn vcycle(&self, r: &[f64], z: &mut [f64]) {
        self.cycle(0, r, z);
    }

    fn apply(level: &Level, x: &[f64], y: &mut [f64]) {
        for k in 0..x.len() {
            let mut s = level.diag[k] * x[k];
            for &j in &level.nbr[k] {
                if j != u32::MAX {
                    s -= level.scale * x[j as usize];
                }
            }
            y[k] = s;
        }
    }

    fn smooth(level: &Level, r: &[f64], e: &mut [f64], sweeps: usize) {
        let mut ae = vec![0.0; e.len()];
        for _ in 0..sweeps {
            Self::apply(level, e, &mut ae);
            for k in 0..e.len() {
                e[k] += JACOBI_DAMPING * (r[k] - ae[k]) / level.diag[k];
            }
        }
    }

    fn cycle(&self, l: usize, r: &[f64], e: &mut [f64]) {
        let level = &self.levels[l];
        e.fill(0.0);
        if l + 1 == self.levels.len() {
            Self::smooth(level, r, e, COARSEST_SWEEPS);
            return;
        }
        Self::smooth(level, r, e, SMOOTHING_SWEEPS);
        let mut ae = vec![0.0; e.len()];
        Self::apply(level, e, &mut ae);
        let coarse_n = self.levels[l + 1].diag.len();
        let mut rc = vec![0.0; coarse_n];
        for k in 0..e.len() {
            let p = level.parent[k];
            if p != u32::MAX {
                rc[p as usize] += r[k] - ae[k];
            }
        }
        let mut ec = vec![0.0; coarse_n];
        self.cycle(l + 1, &rc, &mut ec);
        for (ek, &p) in e.iter_mut().zip(&level.parent) {
            if p != u32::MAX {
                *ek += ec[p as usize];
            }
        }
        // Post-smoothing, continuing from the corrected `e`.
        Self::smooth(level, r, e, SMOOTHING_SWEEPS);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn multigrid_solves_large_voids_in_few_iterations_to_the_same_values() {
        // A 160×160 void (a lake: 25 600 cells) in a surface that is not harmonic, reaching
        // the grid's top edge, with an island of known cells inside.
        let (rows, cols) = (180, 200);
        let mut a = Array2::from_shape_fn((rows, cols), |(r, c)| {
            let (x, y) = (c as f64 / 17.0, r as f64 / 23.0);
            100.0 + 3.0 * x.sin() * y.cos() + 0.01 * (r * c) as f64
        });
        let mut cells = Vec::new();
        for r in 0..160 {
            for c in 20..180 {
                let island = (70..80).contains(&r) && (90..105).contains(&c);
                if !island {
                    a[(r, c)] = f64::NAN;
                    cells.push((r * cols + c) as u32);
                }
            }
        }
        let (mg, mg_iter) = solve_void_with(&a, &cells, true);
        let (jac, jac_iter) = solve_void_with(&a, &cells, false);
        eprintln!("CG iterations: multigrid {mg_iter}, Jacobi {jac_iter}");
        assert!(
            mg_iter < 100,
            "{mg_iter} multigrid-CG iterations (Jacobi-CG: {jac_iter})"
        );
        assert!(
            jac_iter > 5 * mg_iter,
            "{jac_iter} Jacobi-CG iterations vs {mg_iter}"
        );
        let worst = mg
            .iter()
            .zip(&jac)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-8, "multigrid vs Jacobi-CG: {worst}");
        // Each filled cell is the mean of its in-grid neighbours (the discrete Laplace
        // equation), to the solver's tolerance.
        let mut b = a.clone();
        for (&p, &v) in cells.iter().zip(&mg) {
            b[(p as usize / cols, p as usize % cols)] = v;
        }
        for &p in cells.iter().step_by(97) {
            let (r, c) = (p as usize / cols, p as usize % cols);
            let mut n = 0.0;
            let mut s = 0.0;
            for (dr, dc) in [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)] {
                let (rr, cc) = (r as i64 + dr, c as i64 + dc);
                if rr >= 0 && cc >= 0 && (rr as usize) < rows && (cc as usize) < cols {
                    n += 1.0;
                    s += b[(rr as usize, cc as usize)];
                }
            }
            assert!((b[(r, c)] - s / n).abs() < 1e-7, "({r},{c})");
        }
    }

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
