//! Marker-controlled watershed, identical to `skimage.segmentation.watershed` (0.25,
//! `compactness=0`, `watershed_line=False`).
//!
//! skimage's priority flood: every marker pixel (markers outside the mask are dropped) is
//! pushed in raster order with its image value and age 0; then the lowest (value, age) item
//! is popped and each of its unlabelled in-mask neighbours (in the order up, left, right,
//! down, then for 8-connectivity up-left, up-right, down-left, down-right) is labelled at once
//! with the popped pixel's label and pushed with its own value and a fresh, increasing age.
//! Ties are thus broken by insertion order. Items of equal value and age (markers) come out
//! in the order of skimage's own binary heap (`heap_general.pxi`), which this module
//! reproduces operation for operation, so labels are identical even then.
//!
//! Implementations (all give skimage's labels; tests compare them on tie-heavy images):
//! float32-exact images flood on a two-level queue (coarse key buckets, the current one
//! sorted, a small heap for items pushed into it later), which pops in skimage's order
//! whenever every (value, age) key is distinct;
//! markers of equal value pop in an order set by skimage's heap shape, so the flood proves,
//! tie by tie, that the order cannot change a label (see `flood_buckets`) and otherwise
//! reruns on skimage's binary heap with packed (value bits, age) keys. Other images use that
//! heap on (f64, age, index) items.
//!
//! The NEON tutorial floods the smoothed CHM itself (`watershed(chm_smooth, markers,
//! mask)`): since the queue pops the *lowest* values first and markers sit on crown tops,
//! each marker runs downhill first and the lowest tree top claims whatever low canopy it
//! reaches before higher tops start. [`Flood::Inverted`] floods `-smoothed` instead, the
//! textbook crown segmentation (tops are basins, crowns meet along valleys of the canopy).

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::error::BiomassError;
use crate::peaks::Connectivity;

/// Which surface is flooded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flood {
    /// The NEON tutorial's call: flood the smoothed CHM as it is.
    #[default]
    Neon,
    /// Flood the negated smoothed CHM (tree tops are minima): canonical crown delineation.
    Inverted,
}

/// A heap entry: its order key and the pixel index.
trait Entry: Copy {
    fn smaller(&self, other: &Self) -> bool;
}

#[derive(Clone, Copy, Debug)]
struct Item {
    value: f64,
    age: u64,
    index: usize,
}

impl Entry for Item {
    #[inline(always)]
    fn smaller(&self, b: &Self) -> bool {
        if self.value != b.value {
            return self.value < b.value;
        }
        self.age < b.age
    }
}

/// The fast entry when every value is a float32 and there are fewer than 2³² pushes: the key
/// packs the value's order-preserving bits (high 32) and the age (low 32), so one integer
/// comparison orders entries exactly as (value, age) does.
#[derive(Clone, Copy, Debug)]
struct Packed {
    key: u64,
    index: u32,
}

impl Entry for Packed {
    #[inline(always)]
    fn smaller(&self, b: &Self) -> bool {
        self.key < b.key
    }
}

/// Order-preserving map of a (non-NaN) float32 to u32; -0.0 and +0.0 map alike.
#[inline(always)]
fn ordered_bits(v: f32) -> u32 {
    let v = if v == 0.0 { 0.0f32 } else { v };
    let b = v.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// skimage's binary heap (`heap_general.pxi`), same sift rules so ties pop in the same order.
struct Heap<T: Entry> {
    items: Vec<T>,
}

impl<T: Entry> Heap<T> {
    fn push(&mut self, it: T) {
        let mut child = self.items.len();
        self.items.push(it);
        let v = &mut self.items;
        while child > 0 {
            // skimage's `(child + 1) // 2 - 1`.
            let parent = child.div_ceil(2) - 1;
            if v[child].smaller(&v[parent]) {
                v.swap(parent, child);
                child = parent;
            } else {
                break;
            }
        }
    }

    fn pop(&mut self) -> Option<T> {
        let n = self.items.len();
        if n == 0 {
            return None;
        }
        let top = self.items[0];
        let last = n - 1;
        if last == 0 {
            self.items.pop();
            return Some(top);
        }
        self.items.swap(0, last);
        self.items.pop();
        let v = &mut self.items;
        let len = v.len();
        let mut i = 0;
        let mut smallest = 0;
        loop {
            let l = 2 * i + 1;
            let r = 2 * i + 2;
            if l < len {
                if v[l].smaller(&v[i]) {
                    smallest = l;
                }
                if r < len && v[r].smaller(&v[smallest]) {
                    smallest = r;
                }
            } else {
                break;
            }
            if smallest == i {
                break;
            }
            v.swap(i, smallest);
            i = smallest;
        }
        Some(top)
    }
}

/// `skimage.segmentation.watershed(image, markers, connectivity, mask=mask)` with
/// `compactness=0` and no watershed line. `markers` are label numbers (0 = none); marker pixels
/// outside `mask` are dropped as skimage does. Returns the labels (0 outside the mask and where
/// no marker floods). NaN image values are not allowed.
pub fn watershed(
    image: ArrayView2<'_, f64>,
    markers: ArrayView2<'_, u32>,
    mask: ArrayView2<'_, bool>,
    connectivity: Connectivity,
) -> Result<Array2<u32>, BiomassError> {
    let (h, w) = image.dim();
    if markers.dim() != (h, w) || mask.dim() != (h, w) {
        return Err(BiomassError::Shape(format!(
            "watershed: image {:?}, markers {:?}, mask {:?}",
            image.dim(),
            markers.dim(),
            mask.dim()
        )));
    }
    let img: Vec<f64> = image.iter().copied().collect();
    if img.iter().any(|v| v.is_nan()) {
        return Err(BiomassError::Param(
            "watershed: the image has NaN pixels".into(),
        ));
    }
    let msk: Vec<bool> = mask.iter().copied().collect();
    let mut out: Vec<u32> = markers
        .iter()
        .zip(&msk)
        .map(|(&m, &k)| if k { m } else { 0 })
        .collect();
    flood(&img, &msk, &mut out, h, w, connectivity);
    Array2::from_shape_vec((h, w), out).map_err(|e| BiomassError::Shape(e.to_string()))
}

/// The flood on raveled buffers (`out` holds the markers on entry, the labels on return).
pub(crate) fn flood(
    img: &[f64],
    mask: &[bool],
    out: &mut [u32],
    h: usize,
    w: usize,
    connectivity: Connectivity,
) {
    let neigh = neighbours(connectivity);
    let n = img.len();
    let all_f32 = img.par_iter().all(|&v| (v as f32) as f64 == v);
    if all_f32 && n < (u32::MAX as usize) / 2 {
        let cells = pixel_cells(n, |i| ordered_bits(img[i] as f32), mask, out);
        flood_cells(cells, mask, out, h, w, neigh);
        return;
    }
    let mut heap: Heap<Item> = Heap {
        items: Vec::with_capacity(1000),
    };
    for (index, &m) in out.iter().enumerate() {
        if m != 0 {
            heap.push(Item {
                value: img[index],
                age: 0,
                index,
            });
        }
    }
    let mut age: u64 = 1;
    let (hi, wi) = (h as isize, w as isize);
    while let Some(elem) = heap.pop() {
        let r = (elem.index / w) as isize;
        let c = (elem.index % w) as isize;
        let label = out[elem.index];
        for &(dr, dc) in neigh {
            let (nr, nc) = (r + dr, c + dc);
            if nr < 0 || nc < 0 || nr >= hi || nc >= wi {
                continue;
            }
            let ni = nr as usize * w + nc as usize;
            if !mask[ni] || out[ni] != 0 {
                continue;
            }
            age += 1;
            out[ni] = label;
            heap.push(Item {
                value: img[ni],
                age,
                index: ni,
            });
        }
    }
}

/// Neighbour offsets in skimage's order (sorted by distance, then raster order).
fn neighbours(connectivity: Connectivity) -> &'static [(isize, isize)] {
    const N4: [(isize, isize); 4] = [(-1, 0), (0, -1), (0, 1), (1, 0)];
    const N8: [(isize, isize); 8] = [
        (-1, 0),
        (0, -1),
        (0, 1),
        (1, 0),
        (-1, -1),
        (-1, 1),
        (1, -1),
        (1, 1),
    ];
    match connectivity {
        Connectivity::Four => &N4,
        Connectivity::Eight => &N8,
    }
}

/// [`flood`] of a float32 surface (the smoothed CHM, negated for [`Flood::Inverted`]) without
/// an f64 copy: the same labels as `flood` on the surface's f64 values.
pub(crate) fn flood_f32(
    smoothed: ArrayView2<'_, f32>,
    how: Flood,
    mask: &[bool],
    out: &mut [u32],
    connectivity: Connectivity,
) {
    let (h, w) = smoothed.dim();
    let sign = match how {
        Flood::Neon => 1.0f32,
        Flood::Inverted => -1.0,
    };
    let standard = smoothed.as_standard_layout();
    let values = standard.as_slice().unwrap_or_default();
    if values.len() != h * w
        || values.len() >= (u32::MAX as usize) / 2
        || values.par_iter().any(|v| v.is_nan())
    {
        let img: Vec<f64> = smoothed.iter().map(|&v| (sign * v) as f64).collect();
        flood(&img, mask, out, h, w, connectivity);
        return;
    }
    let cells = pixel_cells(values.len(), |i| ordered_bits(sign * values[i]), mask, out);
    flood_cells(cells, mask, out, h, w, neighbours(connectivity));
}

/// The key of pixels that can never be queued (outside the mask, not a marker); no float32
/// other than NaN maps to it.
const OUTSIDE: u32 = u32::MAX;

/// One word per pixel, key << 32 | label (key [`OUTSIDE`] where nothing can be queued), in
/// 2 MiB pages: the flood visits pixels in value order, all over the image, so nearly every
/// visit misses the cache and the TLB; this way a neighbour's key, mask and label come in one
/// miss.
fn pixel_cells(
    n: usize,
    key: impl Fn(usize) -> u32 + Sync,
    mask: &[bool],
    out: &[u32],
) -> Vec<u64> {
    let mut cells: Vec<u64> = Vec::with_capacity(n);
    cloud::mem::advise_huge_pages(&cells);
    cells.par_extend((0..n).into_par_iter().map(|i| {
        let o = out[i];
        let k = if mask[i] || o != 0 { key(i) } else { OUTSIDE };
        ((k as u64) << 32) | o as u64
    }));
    cells
}

/// The flood of float32-exact values given as [`pixel_cells`] (fewer than 2³¹ pixels): the
/// two-level queue, or skimage's heap when tied markers might pop in an order that matters.
fn flood_cells(
    mut cells: Vec<u64>,
    mask: &[bool],
    out: &mut [u32],
    h: usize,
    w: usize,
    neigh: &[(isize, isize)],
) {
    let tied = tied_markers(&cells, out);
    if flood_buckets(&mut cells, out, h, w, neigh, &tied) == TieOrder::Irrelevant {
        return;
    }
    tracing::debug!(
        tied = tied.len(),
        "watershed: tied markers might pop in an order that matters; flooding on skimage's heap"
    );
    let keys: Vec<u32> = cells.par_iter().map(|&c| (c >> 32) as u32).collect();
    drop(cells);
    flood_packed(&keys, mask, out, h, w, neigh);
}

/// The marker pixels whose key another marker shares (sorted). Markers all have age 0, so
/// such ties pop in the order of skimage's binary heap, which only [`flood_packed`]
/// reproduces in general; [`flood_buckets`] proves, tie by tie, when that order cannot change
/// the labels.
fn tied_markers(cells: &[u64], out: &[u32]) -> Vec<u32> {
    let mut mk: Vec<u64> = out
        .iter()
        .zip(cells)
        .enumerate()
        .filter(|(_, (m, _))| **m != 0)
        .map(|(i, (_, &c))| (c & !0xFFFF_FFFF) | i as u64)
        .collect();
    mk.par_sort_unstable();
    let mut tied = Vec::new();
    for (j, &e) in mk.iter().enumerate() {
        let k = e >> 32;
        let before = j > 0 && mk[j - 1] >> 32 == k;
        let after = mk.get(j + 1).is_some_and(|&n| n >> 32 == k);
        if before || after {
            tied.push((e & 0xFFFF_FFFF) as u32);
        }
    }
    tied.sort_unstable();
    tied
}

/// Whether the order in which tied markers pop can change the labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TieOrder {
    /// No marker ties, or every tie was proven not to matter: the labels are skimage's.
    Irrelevant,
    /// A tie might matter: only skimage's own heap ([`flood_packed`]) gives its labels.
    MayMatter,
}

/// skimage's flood with its own binary heap (exact even when markers tie).
fn flood_packed(
    keys: &[u32],
    mask: &[bool],
    out: &mut [u32],
    h: usize,
    w: usize,
    neigh: &[(isize, isize)],
) {
    let mut heap: Heap<Packed> = Heap {
        items: Vec::with_capacity(1000),
    };
    for (index, &m) in out.iter().enumerate() {
        if m != 0 {
            heap.push(Packed {
                key: (keys[index] as u64) << 32,
                index: index as u32,
            });
        }
    }
    let mut age: u64 = 1;
    let (hi, wi) = (h as isize, w as isize);
    while let Some(elem) = heap.pop() {
        let idx = elem.index as usize;
        let r = (idx / w) as isize;
        let c = (idx % w) as isize;
        let label = out[idx];
        for &(dr, dc) in neigh {
            let (nr, nc) = (r + dr, c + dc);
            if nr < 0 || nc < 0 || nr >= hi || nc >= wi {
                continue;
            }
            let ni = nr as usize * w + nc as usize;
            if !mask[ni] || out[ni] != 0 {
                continue;
            }
            age += 1;
            out[ni] = label;
            heap.push(Packed {
                key: ((keys[ni] as u64) << 32) | age,
                index: ni as u32,
            });
        }
    }
}

/// A set of bucket numbers with O(log₆₄) insert, remove and minimum (a bit tree).
struct MinSet {
    /// `levels[0]` has one bit per bucket; each upper level one bit per non-zero word below.
    levels: Vec<Vec<u64>>,
}

impl MinSet {
    fn new(n: usize) -> MinSet {
        let mut levels = Vec::new();
        let mut len = n;
        loop {
            let words = len.div_ceil(64).max(1);
            levels.push(vec![0u64; words]);
            if words == 1 {
                break;
            }
            len = words;
        }
        MinSet { levels }
    }

    #[inline]
    fn insert(&mut self, mut i: usize) {
        for l in &mut self.levels {
            let word = &mut l[i / 64];
            let was = *word;
            *word |= 1u64 << (i % 64);
            if was != 0 {
                break;
            }
            i /= 64;
        }
    }

    #[inline]
    fn remove(&mut self, mut i: usize) {
        for l in &mut self.levels {
            let word = &mut l[i / 64];
            *word &= !(1u64 << (i % 64));
            if *word != 0 {
                break;
            }
            i /= 64;
        }
    }

    #[inline]
    fn first(&self) -> Option<usize> {
        let mut i = 0usize;
        for l in self.levels.iter().rev() {
            let word = l[i];
            if word == 0 {
                return None;
            }
            i = i * 64 + word.trailing_zeros() as usize;
        }
        Some(i)
    }
}

/// Coarse buckets of [`TwoLevelQueue`]: 2^12 ranges of the ordered key bits, few enough that
/// the buckets' growing ends stay in cache.
const COARSE_BITS: u32 = 12;

/// An exact priority queue of pixels by (key, age, pixel) for [`flood_buckets`]: the key
/// range is cut into coarse buckets; items of buckets above the current one wait unordered in
/// their bucket. The current bucket is sorted when it is reached (a run popped in order, so
/// the pixels to come are known and can be fetched ahead); items pushed later into it or
/// below it go to a small heap merged with the run.
struct TwoLevelQueue {
    kmin: u32,
    shift: u32,
    /// Waiting items of each bucket above `cur`, as (key << 64 | age << 32 | pixel).
    waiting: Vec<Vec<u128>>,
    /// The buckets with waiting items.
    set: MinSet,
    /// The current bucket's items as it was reached, sorted; `run[pos..]` are still queued.
    run: Vec<u128>,
    pos: usize,
    /// Items pushed into a bucket ≤ `cur` since it was reached.
    side: std::collections::BinaryHeap<std::cmp::Reverse<u128>>,
    /// Every queued item of a bucket ≤ `cur` is in `run[pos..]` or `side`, every other one in
    /// `waiting`.
    cur: usize,
}

impl TwoLevelQueue {
    /// A queue for keys in `kmin..=kmax`.
    fn new(kmin: u32, kmax: u32) -> Self {
        let span = (kmax - kmin) as u64;
        let shift = (64 - span.leading_zeros()).saturating_sub(COARSE_BITS);
        let nb = ((kmax - kmin) >> shift) as usize + 1;
        TwoLevelQueue {
            kmin,
            shift,
            waiting: vec![Vec::new(); nb],
            set: MinSet::new(nb),
            run: Vec::new(),
            pos: 0,
            side: std::collections::BinaryHeap::new(),
            cur: 0,
        }
    }

    #[inline(always)]
    fn push(&mut self, p: usize, key: u32, age: u32) {
        let e = ((key as u128) << 64) | ((age as u128) << 32) | p as u128;
        let b = ((key - self.kmin) >> self.shift) as usize;
        if b <= self.cur {
            self.side.push(std::cmp::Reverse(e));
        } else {
            if self.waiting[b].is_empty() {
                self.set.insert(b);
            }
            self.waiting[b].push(e);
        }
    }

    /// The least item, as (pixel, key, age).
    #[inline(always)]
    fn pop(&mut self) -> Option<(usize, u32, u32)> {
        loop {
            let from_run = self.run.get(self.pos).copied();
            let e = match (from_run, self.side.peek()) {
                (Some(a), Some(&std::cmp::Reverse(b))) if b < a => {
                    self.side.pop();
                    b
                }
                (Some(a), _) => {
                    self.pos += 1;
                    a
                }
                (None, Some(&std::cmp::Reverse(b))) => {
                    self.side.pop();
                    b
                }
                (None, None) => {
                    let b = self.set.first()?;
                    self.set.remove(b);
                    self.cur = b;
                    // The spent run's buffer becomes the bucket's, the bucket's items the run.
                    let mut spare = std::mem::take(&mut self.run);
                    spare.clear();
                    self.run = std::mem::replace(&mut self.waiting[b], spare);
                    self.run.sort_unstable();
                    self.pos = 0;
                    continue;
                }
            };
            return Some(((e as u32) as usize, (e >> 64) as u32, (e >> 32) as u32));
        }
    }

    /// The pixel `k` places ahead in the current run (it pops then unless smaller items are
    /// pushed first).
    #[inline(always)]
    fn ahead(&self, k: usize) -> Option<usize> {
        self.run.get(self.pos + k).map(|&e| (e as u32) as usize)
    }
}

/// How many pops ahead [`flood_buckets`] asks for a pixel's rows.
const PREFETCH_AHEAD: usize = 8;

/// Asks the CPU to start loading `cells[i]` (a hint; no effect elsewhere than x86-64).
#[inline(always)]
fn prefetch(cells: &[u64], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(c) = cells.get(i) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch is a hint that never faults, and SSE is part of x86-64.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((c as *const u64).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (cells, i);
}

/// The same flood as [`flood_packed`] on a [`TwoLevelQueue`]. With every (value, age) key
/// distinct, any exact priority queue pops in skimage's order, so the labels are skimage's.
///
/// Markers of equal value (`tied`, sorted pixel indices) all have age 0: skimage pops them in
/// the order its heap's shape gives, this queue in raster order. That order cannot change a
/// label when, for every group of tied markers of value v:
/// 1. no member queues a neighbour below v: nothing below v is queued when the group's first
///    member pops and queued items of value v have ages > 0, so the group pops as one block;
/// 2. no two members reach the same unlabelled pixel: every child gets the same label in
///    either order;
/// 3. children of different members have different values.
///
/// After the block both orders then hold the same pixels with the same values and labels;
/// their ages differ only between children of different members, whose values differ, so no
/// comparison ever depends on them and every later pop is the same. When a check fails the
/// flood stops with [`TieOrder::MayMatter`], `out` untouched (the labels are written to `out`
/// only at the end; `cells` keep their keys either way).
fn flood_buckets(
    cells: &mut [u64],
    out: &mut [u32],
    h: usize,
    w: usize,
    neigh: &[(isize, isize)],
    tied: &[u32],
) -> TieOrder {
    debug_assert!(cells.len() < (u32::MAX as usize) / 2);
    let (kmin, kmax) = cells
        .par_iter()
        .map(|&c| (c >> 32) as u32)
        .filter(|&k| k != OUTSIDE)
        .map(|k| (k, k))
        .reduce(|| (u32::MAX, 0), |a, b| (a.0.min(b.0), a.1.max(b.1)));
    if kmin > kmax {
        return TieOrder::Irrelevant;
    }
    let mut queue = TwoLevelQueue::new(kmin, kmax);
    for (index, &m) in out.iter().enumerate() {
        if m != 0 {
            queue.push(index, (cells[index] >> 32) as u32, 0);
        }
    }
    let mut age: u32 = 0;
    // For the block being popped: which member labelled a pixel, which member queued a value.
    let mut labelled_by: std::collections::HashMap<u32, (u32, u32)> = Default::default();
    let mut value_of: std::collections::HashMap<(u32, u32), u32> = Default::default();
    let (hi, wi) = (h as isize, w as isize);
    while let Some((p, group, p_age)) = queue.pop() {
        // Start loading the rows of a pixel a few pops ahead while this one is processed.
        if let Some(q) = queue.ahead(PREFETCH_AHEAD) {
            prefetch(cells, q.wrapping_sub(w));
            prefetch(cells, q);
            prefetch(cells, q + w);
        }
        let member = p_age == 0 && !tied.is_empty() && tied.binary_search(&(p as u32)).is_ok();
        let r = (p / w) as isize;
        let c = (p % w) as isize;
        let label = cells[p] as u32;
        for &(dr, dc) in neigh {
            let (nr, nc) = (r + dr, c + dc);
            if nr < 0 || nc < 0 || nr >= hi || nc >= wi {
                continue;
            }
            let ni = nr as usize * w + nc as usize;
            let cell = cells[ni];
            let key = (cell >> 32) as u32;
            if cell as u32 != 0 {
                if member
                    && labelled_by
                        .get(&(ni as u32))
                        .is_some_and(|&(g, m)| g == group && m != p as u32)
                {
                    return TieOrder::MayMatter; // check 2
                }
                continue;
            }
            if key == OUTSIDE {
                continue;
            }
            if member {
                if key < group {
                    return TieOrder::MayMatter; // check 1
                }
                match value_of.insert((group, key), p as u32) {
                    Some(m) if m != p as u32 => return TieOrder::MayMatter, // check 3
                    _ => {}
                }
                labelled_by.insert(ni as u32, (group, p as u32));
            }
            cells[ni] = cell | label as u64;
            age += 1;
            queue.push(ni, key, age);
        }
    }
    out.par_iter_mut()
        .zip(cells.par_iter())
        .for_each(|(o, &c)| *o = c as u32);
    TieOrder::Irrelevant
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ndarray::array;

    /// A deterministic xorshift64 generator.
    fn xorshift(mut s: u64) -> impl FnMut() -> u64 {
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    /// [`flood_buckets`] on keys (the cells built as `flood` builds them).
    fn buckets(
        keys: &[u32],
        mask: &[bool],
        out: &mut [u32],
        h: usize,
        w: usize,
        neigh: &[(isize, isize)],
        tied: &[u32],
    ) -> TieOrder {
        let mut cells = pixel_cells(keys.len(), |i| keys[i], mask, out);
        flood_buckets(&mut cells, out, h, w, neigh, tied)
    }

    /// [`tied_markers`] of markers with these keys.
    fn tied_of(keys: &[u32], markers: &[u32]) -> Vec<u32> {
        let none = vec![false; keys.len()];
        tied_markers(
            &pixel_cells(keys.len(), |i| keys[i], &none, markers),
            markers,
        )
    }

    #[test]
    fn two_basins() {
        let img = array![
            [0.0, 1.0, 2.0, 1.0, 0.0],
            [0.0, 1.0, 3.0, 1.0, 0.0],
            [0.0, 1.0, 2.0, 1.0, 0.0]
        ];
        let mut markers = Array2::<u32>::zeros((3, 5));
        markers[[1, 0]] = 1;
        markers[[1, 4]] = 2;
        let mask = Array2::from_elem((3, 5), true);
        let l = watershed(img.view(), markers.view(), mask.view(), Connectivity::Four).unwrap();
        assert_eq!(l.column(0).to_vec(), vec![1, 1, 1]);
        assert_eq!(l.column(1).to_vec(), vec![1, 1, 1]);
        assert_eq!(l.column(3).to_vec(), vec![2, 2, 2]);
        assert!(l.iter().all(|&v| v > 0));
    }

    #[test]
    fn mask_blocks_and_drops_markers() {
        let img = Array2::<f64>::zeros((3, 3));
        let mut markers = Array2::<u32>::zeros((3, 3));
        markers[[0, 0]] = 1;
        markers[[2, 2]] = 2;
        let mut mask = Array2::from_elem((3, 3), true);
        mask[[2, 2]] = false;
        let l = watershed(img.view(), markers.view(), mask.view(), Connectivity::Four).unwrap();
        assert_eq!(l[[2, 2]], 0);
        assert!(l.iter().enumerate().all(|(i, &v)| i == 8 || v == 1));
    }

    #[test]
    fn heap_pops_sorted() {
        let mut h: Heap<Item> = Heap { items: Vec::new() };
        let vals = [5.0, 1.0, 3.0, 1.0, 4.0, 0.5, 9.0, 2.0];
        for (i, v) in vals.iter().enumerate() {
            h.push(Item {
                value: *v,
                age: i as u64,
                index: i,
            });
        }
        let mut got = Vec::new();
        while let Some(it) = h.pop() {
            got.push((it.value, it.age));
        }
        let mut want: Vec<_> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| (*v, i as u64))
            .collect();
        want.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(got, want);
    }

    #[test]
    fn ordered_bits_is_monotone() {
        let v = [
            f32::NEG_INFINITY,
            -3.5,
            -1e-30,
            -0.0,
            0.0,
            1e-30,
            2.0,
            f32::INFINITY,
        ];
        for w in v.windows(2) {
            assert!(ordered_bits(w[0]) <= ordered_bits(w[1]), "{w:?}");
        }
        assert_eq!(ordered_bits(-0.0), ordered_bits(0.0));
    }

    #[test]
    fn packed_and_general_paths_agree() {
        // Same image as f32-exact values (packed path) and with a non-f32 value (general path).
        let mut img =
            Array2::<f64>::from_shape_fn((30, 30), |(r, c)| ((r * 7 + c * 13) % 11) as f64 * 0.5);
        let mut markers = Array2::<u32>::zeros((30, 30));
        markers[[3, 3]] = 1;
        markers[[20, 25]] = 2;
        markers[[25, 4]] = 3;
        let mask = Array2::from_elem((30, 30), true);
        let a = watershed(img.view(), markers.view(), mask.view(), Connectivity::Four).unwrap();
        // Not float32 values (forces the general path), same order: identical labels.
        img.mapv_inplace(|v| v + 1e-12);
        let b = watershed(img.view(), markers.view(), mask.view(), Connectivity::Four).unwrap();
        assert_eq!(a, b);
    }
    /// Pseudo-random image quantised to a few levels (many exact ties), markers at distinct
    /// values, irregular mask: the bucket queue and skimage's heap give identical labels.
    #[test]
    fn bucket_queue_equals_skimage_heap_with_many_ties() {
        let mut rnd = xorshift(0x2545_F491_4F6C_DD1D);
        for (case, &(h, w, levels)) in [(40, 50, 3u64), (64, 64, 7), (97, 31, 2), (120, 150, 25)]
            .iter()
            .enumerate()
        {
            let n = h * w;
            let keys: Vec<u32> = (0..n)
                .map(|_| ordered_bits(-((rnd() % levels) as f32) * 0.5))
                .collect();
            let mask: Vec<bool> = (0..n).map(|_| !rnd().is_multiple_of(10)).collect();
            // Markers on distinct key values (in the mask); one extra tied marker makes
            // `tied_markers` non-empty.
            let mut markers = vec![0u32; n];
            let mut used = std::collections::HashSet::new();
            let mut label = 0;
            for _ in 0..4 * n {
                let i = (rnd() % n as u64) as usize;
                if mask[i] && markers[i] == 0 && used.insert(keys[i]) {
                    label += 1;
                    markers[i] = label;
                }
            }
            assert!(label >= 2, "case {case}: {label} markers");
            assert!(tied_of(&keys, &markers).is_empty());
            for neigh in [
                neighbours(Connectivity::Four),
                neighbours(Connectivity::Eight),
            ] {
                let mut a = markers.clone();
                flood_packed(&keys, &mask, &mut a, h, w, neigh);
                let mut b = markers.clone();
                let proof = buckets(&keys, &mask, &mut b, h, w, neigh, &[]);
                assert_eq!(proof, TieOrder::Irrelevant);
                assert_eq!(a, b, "case {case}, {} neighbours", neigh.len());
                // Every marker's label is present and something beyond the markers was flooded.
                assert!(a.iter().filter(|&&v| v != 0).count() > label as usize);
            }
            let mut tied = markers.clone();
            let j = (0..n)
                .find(|&j| mask[j] && tied[j] == 0 && used.contains(&keys[j]))
                .unwrap();
            tied[j] = label + 1;
            assert_eq!(tied_of(&keys, &tied).len(), 2);
        }
    }

    /// Many markers on few values (ties among markers, which pop in skimage's heap order):
    /// the packed heap reproduces the (f64, age, index) heap exactly.
    #[test]
    fn packed_heap_equals_general_heap_with_tied_markers() {
        let mut rnd = xorshift(0x9E37_79B9_7F4A_7C15);
        let mut differs_from_buckets = false;
        let mut may_matter = false;
        for &(h, w, levels, every) in &[(40, 50, 3u64, 7u64), (80, 64, 5, 13), (33, 120, 2, 5)] {
            let n = h * w;
            let vals: Vec<f32> = (0..n).map(|_| (rnd() % levels) as f32 * 0.25).collect();
            let keys: Vec<u32> = vals.iter().map(|&v| ordered_bits(v)).collect();
            // Same order and ties, not float32-exact: `flood` takes the general heap.
            let img: Vec<f64> = vals.iter().map(|&v| v as f64 + 1e-12).collect();
            let mask: Vec<bool> = (0..n).map(|_| !rnd().is_multiple_of(8)).collect();
            let mut markers = vec![0u32; n];
            let mut label = 0;
            for i in 0..n {
                if mask[i] && rnd().is_multiple_of(every) {
                    label += 1;
                    markers[i] = label;
                }
            }
            let tied = tied_of(&keys, &markers);
            assert!(!tied.is_empty());
            for neigh in [
                neighbours(Connectivity::Four),
                neighbours(Connectivity::Eight),
            ] {
                let mut a = markers.clone();
                flood_packed(&keys, &mask, &mut a, h, w, neigh);
                let mut b = markers.clone();
                let conn = if neigh.len() == 4 {
                    Connectivity::Four
                } else {
                    Connectivity::Eight
                };
                flood(&img, &mask, &mut b, h, w, conn);
                assert_eq!(a, b, "{h}x{w}, {} neighbours", neigh.len());
                // Ties ignored (raster order): not skimage's labels here.
                let mut c = markers.clone();
                buckets(&keys, &mask, &mut c, h, w, neigh, &[]);
                differs_from_buckets |= a != c;
                // Ties checked: the proof fails on these dense ties, so `flood` takes the heap.
                let mut d = markers.clone();
                let proof = buckets(&keys, &mask, &mut d, h, w, neigh, &tied);
                assert!(proof == TieOrder::MayMatter || a == d);
                may_matter |= proof == TieOrder::MayMatter;
            }
        }
        // The tie order matters: a plain priority queue would not reproduce skimage here.
        assert!(differs_from_buckets);
        assert!(may_matter);
    }

    /// Markers on a jittered grid (2 to 5 pixels apart, so some share neighbours), many at
    /// equal values, below or amid the other values, on images with few or many levels:
    /// wherever `flood_buckets` proves the tie order irrelevant its labels are skimage's
    /// heap's, and `flood` always gives the heap's labels. Dropping any one of the three
    /// checks makes this fail.
    #[test]
    fn tie_proof_is_sound() {
        let mut rnd = xorshift(0xD1B5_4A32_D192_ED03);
        let (mut proven, mut refused) = (0, 0);
        for case in 0..72 {
            let (h, w) = (24 + (case % 7) * 9, 30 + (case % 5) * 11);
            let n = h * w;
            let levels = [4u64, 40, 100_000][(case / 3) % 3];
            // Markers below every other value (tree tops), or amid them (checks 1 and 3).
            let amid = (case / 9) % 2 == 1;
            let tie_levels = [3u64, 60][(case / 18) % 2];
            let mut vals: Vec<f32> = (0..n).map(|_| (rnd() % levels) as f32).collect();
            let mask: Vec<bool> = (0..n).map(|_| !rnd().is_multiple_of(12)).collect();
            let mut markers = vec![0u32; n];
            let mut label = 0;
            let spacing = [2usize, 4, 5][case % 3];
            for r in (1..h - 1).step_by(spacing) {
                for c in (1..w - 1).step_by(spacing) {
                    let (r, c) = (r + (rnd() % 2) as usize, c + (rnd() % 2) as usize);
                    let i = r.min(h - 1) * w + c.min(w - 1);
                    if mask[i] && markers[i] == 0 {
                        label += 1;
                        markers[i] = label;
                        // On one of a few levels: many ties.
                        let tie = (rnd() % tie_levels) as f32;
                        vals[i] = if amid {
                            (levels / 2) as f32 + tie
                        } else {
                            -1.0 - tie
                        };
                    }
                }
            }
            let keys: Vec<u32> = vals.iter().map(|&v| ordered_bits(v)).collect();
            let img: Vec<f64> = vals.iter().map(|&v| v as f64).collect();
            let tied = tied_of(&keys, &markers);
            assert!(!tied.is_empty());
            for conn in [Connectivity::Four, Connectivity::Eight] {
                let neigh = neighbours(conn);
                let mut heap = markers.clone();
                flood_packed(&keys, &mask, &mut heap, h, w, neigh);
                let mut queued = markers.clone();
                match buckets(&keys, &mask, &mut queued, h, w, neigh, &tied) {
                    TieOrder::Irrelevant => {
                        proven += 1;
                        assert_eq!(heap, queued, "case {case}, {conn:?}");
                    }
                    TieOrder::MayMatter => {
                        refused += 1;
                        assert_eq!(queued, markers, "refused, yet `out` changed");
                    }
                }
                let mut public = markers.clone();
                flood(&img, &mask, &mut public, h, w, conn);
                assert_eq!(heap, public, "case {case}, {conn:?}");
            }
        }
        // Both outcomes occur, so the equality above is exercised.
        assert!(
            proven >= 10 && refused >= 10,
            "{proven} proven, {refused} refused"
        );
    }

    /// The float32 entry floods exactly what `flood` floods on the same values as f64, both
    /// ways up.
    #[test]
    fn flood_f32_equals_flood_on_f64() {
        let sm = Array2::<f32>::from_shape_fn((40, 50), |(r, c)| {
            let (x, y) = (c as f32 * 0.37, r as f32 * 0.29);
            3.0 + 2.0 * (x.sin() * y.cos()) + ((r * 31 + c * 17) % 7) as f32 * 0.125
        });
        let mask: Vec<bool> = sm.iter().map(|&v| v > 2.0).collect();
        let mut markers = vec![0u32; 40 * 50];
        for (k, i) in [
            (1u32, 5 * 50 + 7),
            (2, 20 * 50 + 30),
            (3, 33 * 50 + 12),
            (4, 8 * 50 + 44),
        ] {
            markers[i] = k;
        }
        for (how, sign) in [(Flood::Neon, 1.0f64), (Flood::Inverted, -1.0)] {
            for conn in [Connectivity::Four, Connectivity::Eight] {
                let img: Vec<f64> = sm.iter().map(|&v| sign * v as f64).collect();
                let mut a = markers.clone();
                flood(&img, &mask, &mut a, 40, 50, conn);
                let mut b = markers.clone();
                flood_f32(sm.view(), how, &mask, &mut b, conn);
                assert_eq!(a, b, "{how:?} {conn:?}");
                assert!(a.iter().filter(|&&l| l != 0).count() > 100);
            }
        }
    }

    #[test]
    fn min_set_tracks_minimum() {
        let mut s = MinSet::new(300_000);
        assert_eq!(s.first(), None);
        for i in [299_999, 70_000, 4096, 64, 65] {
            s.insert(i);
        }
        assert_eq!(s.first(), Some(64));
        s.remove(64);
        assert_eq!(s.first(), Some(65));
        s.remove(65);
        s.remove(4096);
        assert_eq!(s.first(), Some(70_000));
        s.remove(70_000);
        assert_eq!(s.first(), Some(299_999));
        s.remove(299_999);
        assert_eq!(s.first(), None);
        s.insert(0);
        assert_eq!(s.first(), Some(0));
    }
}
