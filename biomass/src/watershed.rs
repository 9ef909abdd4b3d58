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
//! The NEON tutorial floods the smoothed CHM itself (`watershed(chm_smooth, markers,
//! mask)`): since the queue pops the *lowest* values first and markers sit on crown tops,
//! each marker runs downhill first and the lowest tree top claims whatever low canopy it
//! reaches before higher tops start. [`Flood::Inverted`] floods `-smoothed` instead, the
//! textbook crown segmentation (tops are basins, crowns meet along valleys of the canopy).

use ndarray::{Array2, ArrayView2};

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
    let all_f32 = img.iter().all(|&v| (v as f32) as f64 == v);
    if all_f32 && n < (u32::MAX as usize) / 2 {
        let keys: Vec<u32> = img.iter().map(|&v| ordered_bits(v as f32)).collect();
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
}
