//! Splitting points into tiles when their x/y are in memory.
//!
//! **Density** (the original's algorithm, a port of PDAL's `filters.chipper`): with
//! `num = ceil(N / capacity)` tiles and boundaries `b_k = lround(k·N/num)`, a node holding
//! boundaries `b_l..b_r` (`k = r − l` parts) is cut across its wider axis (compared in scaled
//! units; equal extents cut across y) so that the first `b_{l+k/2} − b_l` points in
//! (coordinate, input index) order go left (PDAL stable-sorts by coordinate, so ties at the
//! cut value are taken in input order); each side recurses; leaves come out depth first
//! (left before right). Every tile therefore holds `b_{k+1} − b_k` points: counts differ by
//! at most one.
//!
//! The cut is found without sorting: a histogram of the node's coordinates (up to 2^17 bins,
//! refined while a bin is wider than one raw unit and crowded) locates the cut value `v`,
//! then one stable pass sends `coord < v` left, `coord > v` right and the first
//! `c − #(coord < v)` points equal to `v` left. The root pass runs in parallel over chunks;
//! sibling nodes run in parallel.
//!
//! **Grid**: the naive equal-area tiling used for comparison: `nx × ny ≥ num` equal cells
//! over the bounding box, as square as the box allows; empty cells give no tile.

use rayon::prelude::*;

use crate::error::{PartitionError, Result};

/// An inclusive bounding box in raw (stored integer) x/y.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawBox {
    pub min: [i32; 2],
    pub max: [i32; 2],
}

impl RawBox {
    pub const EMPTY: RawBox = RawBox {
        min: [i32::MAX; 2],
        max: [i32::MIN; 2],
    };

    #[inline]
    pub fn add(&mut self, p: [i32; 2]) {
        self.min[0] = self.min[0].min(p[0]);
        self.min[1] = self.min[1].min(p[1]);
        self.max[0] = self.max[0].max(p[0]);
        self.max[1] = self.max[1].max(p[1]);
    }

    #[inline]
    pub fn contains(&self, p: [i32; 2]) -> bool {
        p[0] >= self.min[0] && p[0] <= self.max[0] && p[1] >= self.min[1] && p[1] <= self.max[1]
    }

    pub fn merge(mut self, o: &RawBox) -> RawBox {
        for a in 0..2 {
            self.min[a] = self.min[a].min(o.min[a]);
            self.max[a] = self.max[a].max(o.max[a]);
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.min[0] > self.max[0]
    }
}

/// Scale and offset of x and y, to compare extents in CRS units as the original did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tf {
    pub scale: [f64; 2],
    pub offset: [f64; 2],
}

impl Tf {
    #[inline]
    pub fn scaled(&self, axis: usize, raw: i32) -> f64 {
        f64::from(raw) * self.scale[axis] + self.offset[axis]
    }

    /// The axis to cut: x when its scaled extent is strictly wider, else y.
    pub fn wider_axis(&self, b: &RawBox) -> usize {
        let xr = self.scaled(0, b.max[0]) - self.scaled(0, b.min[0]);
        let yr = self.scaled(1, b.max[1]) - self.scaled(1, b.min[1]);
        if xr > yr { 0 } else { 1 }
    }
}

/// Points grouped by tile: `order[ranges[t]]` are tile `t`'s point indices, ascending.
#[derive(Debug)]
pub(crate) struct Leaves {
    pub order: Vec<u32>,
    pub ranges: Vec<(usize, usize)>,
    pub boxes: Vec<RawBox>,
}

/// Tile boundaries `lround(k·n/num)`, `k = 0..=num`, `num = ceil(n / capacity)`.
pub(crate) fn boundaries(n: u64, capacity: u64) -> Vec<u64> {
    let num = n.div_ceil(capacity.max(1)).max(1);
    let size = n as f64 / num as f64;
    (0..=num)
        .map(|k| (size * k as f64 + 0.5).floor() as u64)
        .collect()
}

const MAX_BINS: u64 = 1 << 17;
const COLLECT_MAX: usize = 1 << 16;
/// Nodes smaller than this split their children sequentially.
const PAR_NODE: usize = 1 << 15;
/// Chunk of the parallel root passes.
const ROOT_CHUNK: usize = 1 << 18;

/// Finds the cut value `v`, `#(coord < v)` and `#(coord == v)` such that the `c`-th smallest
/// coordinate (1-based) equals `v`. `hist(lo, shift, nb)` counts the node's coordinates in
/// `lo..lo + (nb << shift)` into `nb` bins of `2^shift` values; `collect(a, b)` returns the
/// coordinates in `a..=b`.
fn find_cut(
    lo: i32,
    hi: i32,
    c: usize,
    hist: &(dyn Fn(i32, u32, usize) -> Vec<u32> + Sync),
    collect: &(dyn Fn(i32, i32) -> Vec<i32> + Sync),
) -> (i32, usize, usize) {
    let (mut lo, mut hi, mut below) = (lo, hi, 0usize);
    loop {
        let span = (i64::from(hi) - i64::from(lo) + 1) as u64;
        let mut shift = 0u32;
        while span > MAX_BINS << shift {
            shift += 1;
        }
        let nb = span.div_ceil(1 << shift) as usize;
        let h = hist(lo, shift, nb);
        let mut cum = below;
        let mut b = 0usize;
        while b + 1 < h.len() && cum + (h[b] as usize) < c {
            cum += h[b] as usize;
            b += 1;
        }
        let blo = (i64::from(lo) + ((b as i64) << shift)) as i32;
        let bhi = (i64::from(blo) + (1i64 << shift) - 1).min(i64::from(hi)) as i32;
        if blo == bhi {
            return (blo, cum, h[b] as usize);
        }
        if h[b] as usize <= COLLECT_MAX {
            let mut vals = collect(blo, bhi);
            let k = c - cum - 1;
            let (_, v, _) = vals.select_nth_unstable(k);
            let v = *v;
            let less = vals.iter().filter(|&&t| t < v).count();
            let eq = vals.iter().filter(|&&t| t == v).count();
            return (v, cum + less, eq);
        }
        lo = blo;
        hi = bhi;
        below = cum;
    }
}

fn hist_slice(vals: impl Iterator<Item = i32>, lo: i32, shift: u32, nb: usize) -> Vec<u32> {
    let mut h = vec![0u32; nb];
    add_hist(&mut h, vals, lo, shift);
    h
}

fn add_hist(h: &mut [u32], vals: impl Iterator<Item = i32>, lo: i32, shift: u32) {
    for v in vals {
        // Values below lo wrap to huge offsets and fall out like those above the range.
        let d = (v as u32).wrapping_sub(lo as u32) >> shift;
        if let Some(slot) = h.get_mut(d as usize) {
            *slot += 1;
        }
    }
}

/// Density split of the points `xy` (bounding box `bbox`) into `bounds.len() − 1` tiles.
pub(crate) fn density(xy: &[[i32; 2]], bbox: RawBox, bounds: &[u64], tf: &Tf) -> Result<Leaves> {
    let n = xy.len();
    if n > u32::MAX as usize {
        return Err(PartitionError::Internal(
            "too many points for the exact split".into(),
        ));
    }
    let k = bounds.len() - 1;
    if k <= 1 || n < 2 {
        let order: Vec<u32> = (0..n as u32).collect();
        return Ok(Leaves {
            order,
            ranges: vec![(0, n)],
            boxes: vec![bbox],
        });
    }
    let mut order = vec![0u32; n];
    let axis = tf.wider_axis(&bbox);
    let c = bounds[k / 2] as usize;
    let hist = |lo: i32, shift: u32, nb: usize| -> Vec<u32> {
        xy.par_chunks(ROOT_CHUNK)
            .fold(
                || vec![0u32; nb],
                |mut h, ch| {
                    add_hist(&mut h, ch.iter().map(|p| p[axis]), lo, shift);
                    h
                },
            )
            .reduce(
                || vec![0u32; nb],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    a
                },
            )
    };
    let collect = |a: i32, b: i32| -> Vec<i32> {
        xy.par_chunks(ROOT_CHUNK)
            .flat_map_iter(|ch| {
                ch.iter()
                    .map(|p| p[axis])
                    .filter(move |&v| v >= a && v <= b)
            })
            .collect()
    };
    let (v, less, _) = find_cut(bbox.min[axis], bbox.max[axis], c, &hist, &collect);
    let (lbox, rbox) = root_partition(xy, axis, v, c - less, c, &mut order);

    let (left, right) = order.split_at_mut(c);
    let lb: Vec<u64> = bounds[..=k / 2].to_vec();
    let rb: Vec<u64> = bounds[k / 2..].iter().map(|b| b - c as u64).collect();
    // Scratch for the stable partitions below: a node of m points needs at most m/2 + 1,
    // and its children share its part.
    let mut scratch = vec![0u32; n / 2 + 2];
    let (ls, rs) = scratch.split_at_mut(c / 2 + 1);
    let (mut ll, rl) = rayon::join(
        || split_node(xy, left, ls, 0, lbox, &lb, tf),
        || split_node(xy, right, rs, c, rbox, &rb, tf),
    );
    ll.extend(rl);
    let (ranges, boxes) = ll.into_iter().unzip();
    Ok(Leaves {
        order,
        ranges,
        boxes,
    })
}

/// The root cut from the identity order, written into `order` (left part first), in
/// parallel: per-chunk counts, then each chunk scatters into its own slices.
fn root_partition(
    xy: &[[i32; 2]],
    axis: usize,
    v: i32,
    ties: usize,
    c: usize,
    order: &mut [u32],
) -> (RawBox, RawBox) {
    let counts: Vec<(usize, usize)> = xy
        .par_chunks(ROOT_CHUNK)
        .map(|ch| {
            let mut less = 0;
            let mut eq = 0;
            for p in ch {
                less += usize::from(p[axis] < v);
                eq += usize::from(p[axis] == v);
            }
            (less, eq)
        })
        .collect();
    let mut remaining = ties;
    let (left_region, right_region) = order.split_at_mut(c);
    let mut lrest: &mut [u32] = left_region;
    let mut rrest: &mut [u32] = right_region;
    let mut jobs = Vec::with_capacity(counts.len());
    for (k, &(less, eq)) in counts.iter().enumerate() {
        let t = eq.min(remaining);
        remaining -= t;
        let len = ROOT_CHUNK.min(xy.len() - k * ROOT_CHUNK);
        let nl = less + t;
        let (l, lr) = lrest.split_at_mut(nl);
        let (r, rr) = rrest.split_at_mut(len - nl);
        lrest = lr;
        rrest = rr;
        jobs.push((k, t, l, r));
    }
    jobs.into_par_iter()
        .map(|(k, mut t, l, r)| {
            let base = k * ROOT_CHUNK;
            let ch = &xy[base..(base + ROOT_CHUNK).min(xy.len())];
            let (mut lb, mut rb) = (RawBox::EMPTY, RawBox::EMPTY);
            let (mut li, mut ri) = (0, 0);
            for (j, p) in ch.iter().enumerate() {
                let cv = p[axis];
                let left = cv < v || (cv == v && t > 0);
                if cv == v && t > 0 {
                    t -= 1;
                }
                let idx = (base + j) as u32;
                if left {
                    l[li] = idx;
                    li += 1;
                    lb.add(*p);
                } else {
                    r[ri] = idx;
                    ri += 1;
                    rb.add(*p);
                }
            }
            (lb, rb)
        })
        .reduce(
            || (RawBox::EMPTY, RawBox::EMPTY),
            |a, b| (a.0.merge(&b.0), a.1.merge(&b.1)),
        )
}

/// Splits a node whose (ascending) point indices are `idx`, at global offset `base`.
fn split_node(
    xy: &[[i32; 2]],
    idx: &mut [u32],
    scratch: &mut [u32],
    base: usize,
    bbox: RawBox,
    bounds: &[u64],
    tf: &Tf,
) -> Vec<((usize, usize), RawBox)> {
    let k = bounds.len() - 1;
    if k <= 1 {
        return vec![((base, base + idx.len()), bbox)];
    }
    let axis = tf.wider_axis(&bbox);
    let c = bounds[k / 2] as usize;
    let ids: &[u32] = idx;
    let hist = |lo: i32, shift: u32, nb: usize| -> Vec<u32> {
        hist_slice(ids.iter().map(|&i| xy[i as usize][axis]), lo, shift, nb)
    };
    let collect = |a: i32, b: i32| -> Vec<i32> {
        ids.iter()
            .map(|&i| xy[i as usize][axis])
            .filter(|&v| v >= a && v <= b)
            .collect()
    };
    let (v, less, eq) = find_cut(bbox.min[axis], bbox.max[axis], c, &hist, &collect);
    let (lbox, rbox) = partition_stable(xy, idx, scratch, axis, v, c - less, eq, c);
    let (left, right) = idx.split_at_mut(c);
    let lb: Vec<u64> = bounds[..=k / 2].to_vec();
    let rb: Vec<u64> = bounds[k / 2..].iter().map(|b| b - c as u64).collect();
    let (ls, rs) = scratch.split_at_mut((c / 2 + 1).min(scratch.len()));
    if left.len() + right.len() >= PAR_NODE {
        let (mut l, r) = rayon::join(
            || split_node(xy, left, ls, base, lbox, &lb, tf),
            || split_node(xy, right, rs, base + c, rbox, &rb, tf),
        );
        l.extend(r);
        l
    } else {
        let mut l = split_node(xy, left, ls, base, lbox, &lb, tf);
        l.extend(split_node(xy, right, rs, base + c, rbox, &rb, tf));
        l
    }
}

/// Stable in-place partition: coordinate < v, then the first `ties` (of `eq`) equal to v, go
/// left. The smaller side goes through `scratch` (a forward pass when the right side is the
/// smaller, a backward one otherwise), so a node of m points needs m/2 of scratch.
#[allow(clippy::too_many_arguments)]
fn partition_stable(
    xy: &[[i32; 2]],
    idx: &mut [u32],
    scratch: &mut [u32],
    axis: usize,
    v: i32,
    ties: usize,
    eq: usize,
    c: usize,
) -> (RawBox, RawBox) {
    let m = idx.len();
    let small = c.min(m - c);
    let mut owned = Vec::new();
    let tmp: &mut [u32] = if scratch.len() >= small {
        &mut scratch[..small]
    } else {
        owned.resize(small, 0);
        &mut owned
    };
    let (mut lb, mut rb) = (RawBox::EMPTY, RawBox::EMPTY);
    if m - c <= c {
        // Forward: left compacted in place, right to the scratch.
        let (mut w, mut ri, mut ties) = (0, 0, ties);
        for r in 0..m {
            let i = idx[r];
            let p = xy[i as usize];
            let cv = p[axis];
            let left = cv < v || (cv == v && ties > 0);
            if cv == v && ties > 0 {
                ties -= 1;
            }
            if left {
                idx[w] = i;
                w += 1;
                lb.add(p);
            } else {
                tmp[ri] = i;
                ri += 1;
                rb.add(p);
            }
        }
        debug_assert_eq!(w, c);
        idx[c..].copy_from_slice(tmp);
    } else {
        // Backward: right compacted in place from the end, left to the scratch; the ties that
        // go right are the last eq − ties in index order, met first.
        let (mut w, mut li, mut right_ties) = (m, 0, eq - ties);
        for r in (0..m).rev() {
            let i = idx[r];
            let p = xy[i as usize];
            let cv = p[axis];
            let right = cv > v || (cv == v && right_ties > 0);
            if cv == v && right_ties > 0 {
                right_ties -= 1;
            }
            if right {
                w -= 1;
                idx[w] = i;
                rb.add(p);
            } else {
                tmp[li] = i;
                li += 1;
                lb.add(p);
            }
        }
        debug_assert_eq!(w, c);
        for (j, &i) in tmp.iter().rev().enumerate() {
            idx[j] = i;
        }
    }
    (lb, rb)
}

/// Equal-area grid of at least `num` cells over `bbox`; empty cells are dropped.
pub(crate) fn grid(xy: &[[i32; 2]], bbox: RawBox, num: u64, tf: &Tf) -> Result<Leaves> {
    let n = xy.len();
    let (nx, ny) = grid_shape(&bbox, num, tf);
    let cells = nx as usize * ny as usize;
    let span = [
        i64::from(bbox.max[0]) - i64::from(bbox.min[0]) + 1,
        i64::from(bbox.max[1]) - i64::from(bbox.min[1]) + 1,
    ];
    let cell_of = |p: [i32; 2]| -> usize {
        let cx = (i64::from(p[0]) - i64::from(bbox.min[0])) * nx as i64 / span[0];
        let cy = (i64::from(p[1]) - i64::from(bbox.min[1])) * ny as i64 / span[1];
        cy as usize * nx as usize + cx as usize
    };
    let counts = xy
        .par_chunks(ROOT_CHUNK)
        .fold(
            || vec![0usize; cells],
            |mut acc, ch| {
                for p in ch {
                    acc[cell_of(*p)] += 1;
                }
                acc
            },
        )
        .reduce(
            || vec![0usize; cells],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let mut start = Vec::with_capacity(cells);
    let mut acc = 0usize;
    for c in &counts {
        start.push(acc);
        acc += c;
    }
    let mut order: Vec<u32> = Vec::new();
    order.try_reserve_exact(n).map_err(|_| {
        PartitionError::Internal(format!("cannot allocate the index of {n} points"))
    })?;
    order.resize(n, 0);
    let mut boxes = vec![RawBox::EMPTY; cells];
    let mut next = start.clone();
    for (i, p) in xy.iter().enumerate() {
        let c = cell_of(*p);
        order[next[c]] = i as u32;
        next[c] += 1;
        boxes[c].add(*p);
    }
    let mut ranges = Vec::new();
    let mut kept = Vec::new();
    for c in 0..cells {
        if counts[c] > 0 {
            ranges.push((start[c], start[c] + counts[c]));
            kept.push(boxes[c]);
        }
    }
    Ok(Leaves {
        order,
        ranges,
        boxes: kept,
    })
}

/// Columns and rows of an equal-area grid of at least `num` cells, as square as `bbox`.
pub(crate) fn grid_shape(bbox: &RawBox, num: u64, tf: &Tf) -> (u64, u64) {
    let w = (tf.scaled(0, bbox.max[0]) - tf.scaled(0, bbox.min[0])).max(0.0);
    let h = (tf.scaled(1, bbox.max[1]) - tf.scaled(1, bbox.min[1])).max(0.0);
    let num = num.max(1);
    let nx = if h <= 0.0 {
        num
    } else if w <= 0.0 {
        1
    } else {
        ((num as f64 * w / h).sqrt().round() as u64).clamp(1, num)
    };
    (nx, num.div_ceil(nx))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tf() -> Tf {
        Tf {
            scale: [0.01, 0.01],
            offset: [0.0, 0.0],
        }
    }

    fn bbox(xy: &[[i32; 2]]) -> RawBox {
        xy.iter().fold(RawBox::EMPTY, |mut b, p| {
            b.add(*p);
            b
        })
    }

    /// The reference: PDAL's chipper with stable sorts, written plainly.
    fn reference(xy: &[[i32; 2]], capacity: u64, tf: &Tf) -> Vec<Vec<u32>> {
        fn rec(xy: &[[i32; 2]], ids: Vec<u32>, bounds: &[u64], tf: &Tf, out: &mut Vec<Vec<u32>>) {
            let k = bounds.len() - 1;
            if k == 1 {
                let mut ids = ids;
                ids.sort();
                out.push(ids);
                return;
            }
            let b = ids.iter().fold(RawBox::EMPTY, |mut b, &i| {
                b.add(xy[i as usize]);
                b
            });
            let axis = tf.wider_axis(&b);
            let mut sorted = ids.clone();
            sorted.sort_by_key(|&i| (xy[i as usize][axis], i));
            let c = bounds[k / 2] as usize;
            let right = sorted.split_off(c);
            rec(xy, sorted, &bounds[..=k / 2], tf, out);
            let rb: Vec<u64> = bounds[k / 2..].iter().map(|b| b - c as u64).collect();
            rec(xy, right, &rb, tf, out);
        }
        let bounds = boundaries(xy.len() as u64, capacity);
        let mut out = Vec::new();
        rec(xy, (0..xy.len() as u32).collect(), &bounds, tf, &mut out);
        out
    }

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    #[test]
    fn boundaries_match_lround() {
        assert_eq!(boundaries(10, 3), vec![0, 3, 5, 8, 10]);
        assert_eq!(boundaries(343_306, 30_000).len(), 13);
        assert_eq!(boundaries(343_306, 30_000)[1], 28_609);
        assert_eq!(boundaries(5, 10), vec![0, 5]);
        assert_eq!(boundaries(7, 1), (0..=7).collect::<Vec<_>>());
    }

    #[test]
    fn density_equals_the_sorting_reference() {
        let mut seed = 7u64;
        for (n, cap, range, dup) in [
            (1000usize, 100u64, 100_000u64, false),
            (5000, 333, 50, true), // heavy ties: only 50 distinct values per axis
            (200_000, 7_000, 1 << 20, false), // wide bins: exercises collect/refine
            (100_000, 10_000, 3, true), // nearly all tied
            (37, 5, 1000, false),
        ] {
            let xy: Vec<[i32; 2]> = (0..n)
                .map(|_| {
                    let x = (lcg(&mut seed) % range) as i32 - (range / 2) as i32;
                    let y = if dup {
                        (lcg(&mut seed) % range) as i32
                    } else {
                        (lcg(&mut seed) % (range * 2)) as i32
                    };
                    [x, y]
                })
                .collect();
            let t = tf();
            let leaves = density(&xy, bbox(&xy), &boundaries(n as u64, cap), &t).unwrap();
            let want = reference(&xy, cap, &t);
            assert_eq!(leaves.ranges.len(), want.len(), "n={n}");
            for (k, (r, w)) in leaves.ranges.iter().zip(&want).enumerate() {
                let got = &leaves.order[r.0..r.1];
                assert_eq!(got, &w[..], "n={n} cap={cap} tile {k}");
                assert_eq!(
                    leaves.boxes[k],
                    bbox(&got.iter().map(|&i| xy[i as usize]).collect::<Vec<_>>())
                );
            }
        }
    }

    #[test]
    fn density_handles_identical_points() {
        let xy = vec![[5, 5]; 1000];
        let leaves = density(&xy, bbox(&xy), &boundaries(1000, 300), &tf()).unwrap();
        let sizes: Vec<usize> = leaves.ranges.iter().map(|r| r.1 - r.0).collect();
        assert_eq!(sizes, vec![250, 250, 250, 250]);
        let mut all = leaves.order.clone();
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<u32>>());
    }

    #[test]
    fn grid_covers_every_point_once() {
        let mut seed = 3u64;
        let xy: Vec<[i32; 2]> = (0..10_000)
            .map(|_| {
                [
                    (lcg(&mut seed) % 1000) as i32,
                    (lcg(&mut seed) % 500) as i32,
                ]
            })
            .collect();
        let leaves = grid(&xy, bbox(&xy), 8, &tf()).unwrap();
        assert_eq!(grid_shape(&bbox(&xy), 8, &tf()), (4, 2));
        assert_eq!(leaves.ranges.len(), 8);
        let mut all = leaves.order.clone();
        all.sort();
        assert_eq!(all, (0..10_000).collect::<Vec<u32>>());
        for (r, b) in leaves.ranges.iter().zip(&leaves.boxes) {
            let ids = &leaves.order[r.0..r.1];
            assert!(ids.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(
                *b,
                bbox(&ids.iter().map(|&i| xy[i as usize]).collect::<Vec<_>>())
            );
        }
    }
}
