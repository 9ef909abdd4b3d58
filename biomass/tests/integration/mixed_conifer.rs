//! Real-tree sanity: lidR's MixedConifer stand (205 reference trees in the `treeID` extra
//! bytes), CHM at 0.5 m by a simple maximum grid, NEON tree tops.

use std::collections::HashMap;

use biomass::grid::{cell_of, max_grid_chm};
use biomass::{SegmentParams, segment};
use las::Reader;

const LAZ: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/lidar/lidR/MixedConifer.laz"
);

#[test]
fn mixed_conifer_tops_vs_reference_trees() {
    let mut reader = Reader::from_path(LAZ).unwrap();
    let mut pts = Vec::new();
    let mut ids = Vec::new();
    let data = reader.read_all().unwrap();
    for p in data.points() {
        let p = p.unwrap();
        // treeID: the only extra-bytes attribute, float64; DBL_MAX = not a tree.
        let id = f64::from_le_bytes(p.extra_bytes[..8].try_into().unwrap());
        pts.push((p.x, p.y, p.z));
        ids.push(if id < 1e300 { Some(id as u32) } else { None });
    }
    assert_eq!(pts.len(), 37_657);
    let mut trees: Vec<u32> = ids.iter().flatten().copied().collect();
    trees.sort();
    trees.dedup();
    assert_eq!(trees.len(), 205);

    let chm = max_grid_chm(&pts, 0.5, cog::Crs::epsg(26912)).unwrap();
    assert_eq!(chm.data.dim(), (180, 180)); // 90 m x 90 m at 0.5 m
    let seg = segment(chm.data.view(), &SegmentParams::default()).unwrap();

    // The tree of a top: the treeID of the highest point in the top's cell.
    let mut highest: HashMap<(usize, usize), (f64, Option<u32>)> = HashMap::new();
    for (&(x, y, z), &id) in pts.iter().zip(&ids) {
        let cell = cell_of(&chm.transform, chm.data.dim(), x, y).unwrap();
        let e = highest.entry(cell).or_insert((f64::MIN, None));
        if z > e.0 {
            *e = (z, id);
        }
    }
    let mut tops_per_tree: HashMap<u32, usize> = HashMap::new();
    let mut off_tree = 0;
    for t in &seg.tops {
        match highest.get(&(t.row, t.col)).and_then(|e| e.1) {
            Some(id) => *tops_per_tree.entry(id).or_default() += 1,
            None => off_tree += 1,
        }
    }
    let exactly_one = trees
        .iter()
        .filter(|id| tops_per_tree.get(id) == Some(&1))
        .count();
    let missed = trees
        .iter()
        .filter(|id| !tops_per_tree.contains_key(id))
        .count();
    let several = trees.len() - exactly_one - missed;
    println!(
        "MixedConifer: {} tops; of 205 reference trees {exactly_one} get exactly one top, \
         {several} several, {missed} none; {off_tree} tops on non-tree points",
        seg.tops.len()
    );
    // lidR's lmf(ws = 5 m) finds 177 tops on the points and 167 on a 1 m CHM; the NEON
    // settings (σ = 1 m, 2.5 m footprint at 0.5 m) are finer, so expect a comparable count.
    assert!(
        (150..=200).contains(&seg.tops.len()),
        "{} tops",
        seg.tops.len()
    );
    assert!(
        exactly_one >= 130,
        "only {exactly_one} trees have exactly one top"
    );
    assert!(
        off_tree * 10 <= seg.tops.len(),
        "{off_tree} tops off the trees"
    );
}
