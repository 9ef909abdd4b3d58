//! Point clouds in columns, as the terrain algorithms use them.

use rayon::prelude::*;

use crate::grid::{Bounds, Grid};

/// LAS classification of ground points.
pub const CLASS_GROUND: u8 = 2;
/// LAS classification of unclassified ("other") points.
pub const CLASS_OTHER: u8 = 1;
/// LAS classification of low points (noise).
pub const CLASS_LOW_NOISE: u8 = 7;

/// Flag bit: synthetic point.
pub const FLAG_SYNTHETIC: u8 = 1;
/// Flag bit: key point.
pub const FLAG_KEYPOINT: u8 = 2;
/// Flag bit: withheld (a buffer point of a partition written by lidar-partitioner).
pub const FLAG_WITHHELD: u8 = 4;
/// Flag bit: overlap (LAS 1.4 formats 6–10).
pub const FLAG_OVERLAP: u8 = 8;

/// A point cloud stored by column. Coordinates are in CRS units (x, y) and z units.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointCloud {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub z: Vec<f64>,
    /// LAS classification (0–255; 0–31 for point formats 0–5).
    pub class: Vec<u8>,
    /// Return number in the low nibble, number of returns in the high nibble.
    pub returns: Vec<u8>,
    /// `FLAG_*` bits.
    pub flags: Vec<u8>,
    /// Position of each point in its source file (kept through reorderings).
    pub index: Vec<u32>,
}

impl PointCloud {
    /// An empty cloud with room for `n` points.
    pub fn with_capacity(n: usize) -> Self {
        PointCloud {
            x: Vec::with_capacity(n),
            y: Vec::with_capacity(n),
            z: Vec::with_capacity(n),
            class: Vec::with_capacity(n),
            returns: Vec::with_capacity(n),
            flags: Vec::with_capacity(n),
            index: Vec::with_capacity(n),
        }
    }

    /// A cloud of unclassified single returns at the given coordinates (tests, ISPRS samples).
    pub fn from_xyz(x: Vec<f64>, y: Vec<f64>, z: Vec<f64>) -> Self {
        let n = x.len();
        assert!(
            y.len() == n && z.len() == n,
            "x, y and z must have one length"
        );
        PointCloud {
            x,
            y,
            z,
            class: vec![CLASS_OTHER; n],
            returns: vec![0x11; n],
            flags: vec![0; n],
            index: (0..n as u32).collect(),
        }
    }

    /// Appends a point.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        x: f64,
        y: f64,
        z: f64,
        class: u8,
        return_number: u8,
        number_of_returns: u8,
        flags: u8,
    ) {
        let i = self.x.len() as u32;
        self.x.push(x);
        self.y.push(y);
        self.z.push(z);
        self.class.push(class);
        self.returns
            .push((return_number & 15) | (number_of_returns << 4));
        self.flags.push(flags);
        self.index.push(i);
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.x.len()
    }

    /// True when there are no points.
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// Return number of point `i` (0 when the file does not record it).
    #[inline]
    pub fn return_number(&self, i: usize) -> u8 {
        self.returns[i] & 15
    }

    /// Number of returns of the pulse of point `i` (0 when not recorded).
    #[inline]
    pub fn number_of_returns(&self, i: usize) -> u8 {
        self.returns[i] >> 4
    }

    /// True for the last return of its pulse, or its only one. Points whose return fields
    /// are 0 (not recorded) count as only returns.
    #[inline]
    pub fn is_last_or_only(&self, i: usize) -> bool {
        let (rn, nr) = (self.return_number(i), self.number_of_returns(i));
        rn == 0 || nr == 0 || rn >= nr
    }

    /// True for the first return of its pulse (only returns included); points whose return
    /// number is 0 (not recorded) count as first returns.
    #[inline]
    pub fn is_first(&self, i: usize) -> bool {
        self.return_number(i) <= 1
    }

    /// True for a buffer point (withheld flag set).
    #[inline]
    pub fn is_withheld(&self, i: usize) -> bool {
        self.flags[i] & FLAG_WITHHELD != 0
    }

    /// Bounds of the points for which `keep(i)` holds; `None` if there are none.
    pub fn bounds_where(&self, keep: impl Fn(usize) -> bool + Sync) -> Option<Bounds> {
        (0..self.len())
            .into_par_iter()
            .filter(|&i| keep(i))
            .fold(
                || None::<Bounds>,
                |b, i| {
                    let (x, y) = (self.x[i], self.y[i]);
                    Some(match b {
                        None => Bounds::point(x, y),
                        Some(mut b) => {
                            b.include(x, y);
                            b
                        }
                    })
                },
            )
            .reduce(
                || None,
                |a, b| match (a, b) {
                    (Some(a), Some(b)) => Some(a.union(&b)),
                    (a, None) => a,
                    (None, b) => b,
                },
            )
    }

    /// Bounds of all points.
    pub fn bounds(&self) -> Option<Bounds> {
        self.bounds_where(|_| true)
    }

    /// Reorders every column by `perm` (new position k holds old point `perm[k]`).
    pub fn permute(&mut self, perm: &[u32]) {
        fn apply<T: Copy + Send + Sync>(v: &mut Vec<T>, perm: &[u32]) {
            let new: Vec<T> = perm.par_iter().map(|&i| v[i as usize]).collect();
            *v = new;
        }
        apply(&mut self.x, perm);
        apply(&mut self.y, perm);
        apply(&mut self.z, perm);
        apply(&mut self.class, perm);
        apply(&mut self.returns, perm);
        apply(&mut self.flags, perm);
        apply(&mut self.index, perm);
    }

    /// Sorts the cloud by the cells of `grid` (row-major from the top-left cell), and within a
    /// cell by (x, y, z), so that the result does not depend on the order of the points in
    /// the file. Points outside the grid go last. Returns the cell start offsets
    /// (`grid.cells() + 1` entries).
    pub fn sort_by_cells(&mut self, grid: &Grid) -> CellIndex {
        let n = self.len();
        let cells = grid.cells();
        let cell_ids: Vec<u32> = (0..n)
            .into_par_iter()
            .map(|i| match grid.cell_of(self.x[i], self.y[i]) {
                Some((c, r)) => (r * grid.cols + c) as u32,
                None => u32::MAX,
            })
            .collect();
        // Counting sort (stable), outside points in an extra last bucket.
        let mut counts = vec![0u32; cells + 2];
        for &c in &cell_ids {
            let k = if c == u32::MAX { cells } else { c as usize };
            counts[k + 1] += 1;
        }
        for k in 1..counts.len() {
            counts[k] += counts[k - 1];
        }
        let starts: Vec<u32> = counts[..=cells].to_vec();
        let mut next = counts;
        let mut perm = vec![0u32; n];
        for (i, &c) in cell_ids.iter().enumerate() {
            let k = if c == u32::MAX { cells } else { c as usize };
            perm[next[k] as usize] = i as u32;
            next[k] += 1;
        }
        drop(cell_ids);
        // Canonical order inside each cell.
        {
            let (x, y, z) = (&self.x, &self.y, &self.z);
            let mut rest: &mut [u32] = &mut perm;
            let mut slices: Vec<&mut [u32]> = Vec::new();
            let mut bounds: Vec<u32> = starts.clone();
            bounds.push(n as u32);
            for w in bounds.windows(2) {
                let len = (w[1] - w[0]) as usize;
                let (head, tail) = rest.split_at_mut(len);
                if len > 1 {
                    slices.push(head);
                }
                rest = tail;
            }
            slices.par_iter_mut().for_each(|s| {
                s.sort_unstable_by(|&a, &b| {
                    let (a, b) = (a as usize, b as usize);
                    x[a].total_cmp(&x[b])
                        .then(y[a].total_cmp(&y[b]))
                        .then(z[a].total_cmp(&z[b]))
                        .then(a.cmp(&b))
                })
            });
        }
        self.permute(&perm);
        CellIndex {
            grid: *grid,
            starts,
        }
    }
}

/// The cell structure of a cloud sorted by [`PointCloud::sort_by_cells`]: the points of cell
/// `k` (row-major from the top-left) are `starts[k]..starts[k+1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CellIndex {
    pub grid: Grid,
    pub starts: Vec<u32>,
}

impl CellIndex {
    /// The range of point positions in cell (col, row).
    #[inline]
    pub fn cell(&self, col: usize, row: usize) -> std::ops::Range<usize> {
        let k = row * self.grid.cols + col;
        self.starts[k] as usize..self.starts[k + 1] as usize
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn returns_and_flags() {
        let mut c = PointCloud::default();
        c.push(0.0, 0.0, 1.0, 2, 1, 3, 0);
        c.push(0.0, 0.0, 1.0, 2, 3, 3, FLAG_WITHHELD);
        c.push(0.0, 0.0, 1.0, 2, 1, 1, 0);
        c.push(0.0, 0.0, 1.0, 2, 0, 0, 0);
        assert!(c.is_first(0) && !c.is_last_or_only(0));
        assert!(!c.is_first(1) && c.is_last_or_only(1) && c.is_withheld(1));
        assert!(c.is_first(2) && c.is_last_or_only(2));
        assert!(c.is_first(3) && c.is_last_or_only(3));
    }

    #[test]
    fn sort_by_cells_is_canonical() {
        let xs = vec![1.5, 0.2, 0.7, 3.0, 0.2];
        let ys = vec![0.5, 0.5, 0.5, 9.0, 0.4];
        let zs = vec![1.0, 2.0, 3.0, 4.0, 5.0];
        let mut a = PointCloud::from_xyz(xs.clone(), ys.clone(), zs.clone());
        let g = Grid::snapped(
            &Bounds {
                min_x: 0.0,
                min_y: 0.0,
                max_x: 1.9,
                max_y: 0.9,
            },
            1.0,
        )
        .unwrap();
        let idx = a.sort_by_cells(&g);
        assert_eq!(idx.starts, vec![0, 3, 4]);
        assert_eq!(a.z, vec![5.0, 2.0, 3.0, 1.0, 4.0]);
        assert_eq!(a.index, vec![4, 1, 2, 0, 3]);
        // Another file order gives the same result.
        let order = [3usize, 0, 4, 2, 1];
        let mut b = PointCloud::from_xyz(
            order.iter().map(|&i| xs[i]).collect(),
            order.iter().map(|&i| ys[i]).collect(),
            order.iter().map(|&i| zs[i]).collect(),
        );
        b.sort_by_cells(&g);
        assert_eq!(a.x, b.x);
        assert_eq!(a.z, b.z);
    }
}
