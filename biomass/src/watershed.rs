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
//! float32-exact images with no two markers of equal value use a hierarchical queue (one FIFO
//! per distinct value, O(1) per pixel: with every (value, age) key distinct, any exact
//! priority queue pops in skimage's order); float32-exact images with tied markers use
//! skimage's binary heap on packed (value bits, age) keys, since the tie order then depends on
//! the heap's shape; other images use the same heap on (f64, age, index) items.
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
    // Neighbour offsets in skimage's order (sorted by distance, then raster order).
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
    let neigh: &[(isize, isize)] = match connectivity {
        Connectivity::Four => &N4,
        Connectivity::Eight => &N8,
    };
    let n = img.len();
    let all_f32 = img.par_iter().all(|&v| (v as f32) as f64 == v);
    if all_f32 && n < (u32::MAX as usize) / 2 {
        let keys: Vec<u32> = img.par_iter().map(|&v| ordered_bits(v as f32)).collect();
        if !marker_ties(&keys, out) {
            flood_buckets(&keys, mask, out, h, w, neigh);
            return;
        }
        flood_packed(&keys, mask, out, h, w, neigh);
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

/// True when two marker pixels have the same key. Markers all have age 0, so such ties pop in
/// the order of skimage's binary heap, which only [`flood_packed`] reproduces.
fn marker_ties(keys: &[u32], out: &[u32]) -> bool {
    let mut mk: Vec<u32> = out
        .iter()
        .zip(keys)
        .filter(|(m, _)| **m != 0)
        .map(|(_, &k)| k)
        .collect();
    mk.par_sort_unstable();
    mk.windows(2).any(|p| p[0] == p[1])
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

/// The same flood as [`flood_packed`] when no two markers tie: every (value, age) key is then
/// distinct, so the pop order is fixed by the keys alone and any exact priority queue yields
/// skimage's labels. This one is a hierarchical queue: one FIFO per distinct value (equal
/// values pop in push order, i.e. by age; a bucket's marker, pushed first, pops first), the
/// lowest non-empty bucket found with a [`MinSet`]. O(1) per pixel instead of O(log n).
fn flood_buckets(
    keys: &[u32],
    mask: &[bool],
    out: &mut [u32],
    h: usize,
    w: usize,
    neigh: &[(isize, isize)],
) {
    const NONE: u32 = u32::MAX;
    let n = keys.len();
    // Dense ranks of the keys of every pixel that can be queued (in the mask, or a marker).
    let mut order: Vec<u64> = (0..n)
        .into_par_iter()
        .filter(|&i| mask[i] || out[i] != 0)
        .map(|i| ((keys[i] as u64) << 32) | i as u64)
        .collect();
    order.par_sort_unstable();
    let mut rank = vec![0u32; n];
    let mut buckets = 0usize;
    let mut prev: Option<u32> = None;
    for &o in &order {
        let k = (o >> 32) as u32;
        if prev != Some(k) {
            buckets += 1;
            prev = Some(k);
        }
        rank[(o & 0xFFFF_FFFF) as usize] = (buckets - 1) as u32;
    }
    drop(order);
    if buckets == 0 {
        return;
    }
    let mut head = vec![NONE; buckets];
    let mut tail = vec![NONE; buckets];
    let mut next = vec![NONE; n];
    let mut set = MinSet::new(buckets);
    let mut cur = usize::MAX;
    let push = |p: usize,
                head: &mut [u32],
                tail: &mut [u32],
                next: &mut [u32],
                set: &mut MinSet,
                cur: &mut usize| {
        let b = rank[p] as usize;
        if head[b] == NONE {
            head[b] = p as u32;
            set.insert(b);
        } else {
            next[tail[b] as usize] = p as u32;
        }
        tail[b] = p as u32;
        if b < *cur {
            *cur = b;
        }
    };
    for (index, &m) in out.iter().enumerate() {
        if m != 0 {
            push(index, &mut head, &mut tail, &mut next, &mut set, &mut cur);
        }
    }
    if cur == usize::MAX {
        return;
    }
    let (hi, wi) = (h as isize, w as isize);
    loop {
        let p = head[cur] as usize;
        head[cur] = next[p];
        if head[cur] == NONE {
            set.remove(cur);
        }
        let r = (p / w) as isize;
        let c = (p % w) as isize;
        let label = out[p];
        for &(dr, dc) in neigh {
            let (nr, nc) = (r + dr, c + dc);
            if nr < 0 || nc < 0 || nr >= hi || nc >= wi {
                continue;
            }
            let ni = nr as usize * w + nc as usize;
            if !mask[ni] || out[ni] != 0 {
                continue;
            }
            out[ni] = label;
            push(ni, &mut head, &mut tail, &mut next, &mut set, &mut cur);
        }
        if head[cur] == NONE {
            match set.first() {
                Some(b) => cur = b,
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ndarray::array;

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
        let mut s: u64 = 0x2545_F491_4F6C_DD1D;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for (case, &(h, w, levels)) in [(40, 50, 3u64), (64, 64, 7), (97, 31, 2), (120, 150, 25)]
            .iter()
            .enumerate()
        {
            let n = h * w;
            let keys: Vec<u32> = (0..n)
                .map(|_| ordered_bits(-((rnd() % levels) as f32) * 0.5))
                .collect();
            let mask: Vec<bool> = (0..n).map(|_| rnd() % 10 != 0).collect();
            // Markers on distinct key values (in the mask); one extra tied marker makes
            // `marker_ties` true.
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
            assert!(!marker_ties(&keys, &markers));
            for neigh in [
                &[(-1, 0), (0, -1), (0, 1), (1, 0)][..],
                &[
                    (-1, 0),
                    (0, -1),
                    (0, 1),
                    (1, 0),
                    (-1, -1),
                    (-1, 1),
                    (1, -1),
                    (1, 1),
                ],
            ] {
                let mut a = markers.clone();
                flood_packed(&keys, &mask, &mut a, h, w, neigh);
                let mut b = markers.clone();
                flood_buckets(&keys, &mask, &mut b, h, w, neigh);
                assert_eq!(a, b, "case {case}, {} neighbours", neigh.len());
                // Every marker's label is present and something beyond the markers was flooded.
                assert!(a.iter().filter(|&&v| v != 0).count() > label as usize);
            }
            let mut tied = markers.clone();
            let j = (0..n)
                .find(|&j| mask[j] && tied[j] == 0 && used.contains(&keys[j]))
                .unwrap();
            tied[j] = label + 1;
            assert!(marker_ties(&keys, &tied));
        }
    }

    /// Many markers on few values (ties among markers, which pop in skimage's heap order):
    /// the packed heap reproduces the (f64, age, index) heap exactly.
    #[test]
    fn packed_heap_equals_general_heap_with_tied_markers() {
        let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut differs_from_buckets = false;
        for &(h, w, levels, every) in &[(40, 50, 3u64, 7u64), (80, 64, 5, 13), (33, 120, 2, 5)] {
            let n = h * w;
            let vals: Vec<f32> = (0..n).map(|_| (rnd() % levels) as f32 * 0.25).collect();
            let keys: Vec<u32> = vals.iter().map(|&v| ordered_bits(v)).collect();
            // Same order and ties, not float32-exact: `flood` takes the general heap.
            let img: Vec<f64> = vals.iter().map(|&v| v as f64 + 1e-12).collect();
            let mask: Vec<bool> = (0..n).map(|_| rnd() % 8 != 0).collect();
            let mut markers = vec![0u32; n];
            let mut label = 0;
            for i in 0..n {
                if mask[i] && rnd() % every == 0 {
                    label += 1;
                    markers[i] = label;
                }
            }
            assert!(marker_ties(&keys, &markers));
            for neigh in [
                &[(-1, 0), (0, -1), (0, 1), (1, 0)][..],
                &[
                    (-1, 0),
                    (0, -1),
                    (0, 1),
                    (1, 0),
                    (-1, -1),
                    (-1, 1),
                    (1, -1),
                    (1, 1),
                ],
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
                let mut c = markers.clone();
                flood_buckets(&keys, &mask, &mut c, h, w, neigh);
                differs_from_buckets |= a != c;
            }
        }
        // The tie order matters: a plain priority queue would not reproduce skimage here.
        assert!(differs_from_buckets);
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
