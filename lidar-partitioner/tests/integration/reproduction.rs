//! Reproduction of CloudButton's own partitioner output (`../shared/data/cnig/partitions/`,
//! capacity 30,000, buffer 5 m): the input is rebuilt from the tiles' non-withheld points,
//! partitioned again, and compared tile by tile.

use std::collections::{HashMap, HashSet};

use crate::common::{Laspy, check_partition, data, store};
use lidar_partitioner::{Params, PointRecords};

fn key(p: &lidar_partitioner::PointRef<'_>) -> Vec<u8> {
    let mut r = p.bytes().to_vec();
    r[15] &= 0x7F; // format 3: withheld is bit 7 of the classification byte
    r
}

/// Partitions the original input rebuilt with the tiles concatenated in `tile_order`;
/// returns (core points whose tile differs from the original's, buffer points differing).
fn reproduce(originals: &[PointRecords], tile_order: &[usize]) -> (usize, usize) {
    let s = store();
    let meta = originals[0].meta().clone();
    let rec = originals[0].record_len();
    let mut input = Vec::new();
    for &i in tile_order {
        for p in originals[i].iter().filter(|p| !p.withheld()) {
            input.extend_from_slice(&key(&p));
        }
    }
    assert_eq!(input.len() / rec, 343_306);
    let dir = tempfile::tempdir().unwrap();
    let input_path = dir.path().join("lasfile.las");
    let input_uri = input_path.to_str().unwrap();
    PointRecords::from_parts(meta, input)
        .unwrap()
        .write(&s, input_uri, false)
        .unwrap();

    let out = dir.path().join("parts");
    let m = lidar_partitioner::partition(
        input_uri,
        out.to_str().unwrap(),
        &Params::capacity(30_000, 5.0),
    )
    .unwrap();
    assert_eq!(m.tiles.len(), 12);
    let names: Vec<&str> = m.tiles.iter().map(|t| t.file.as_str()).collect();
    assert_eq!(names[0], "lasfile-0000.las");
    assert_eq!(names[11], "lasfile-0011.las");
    check_partition(&input_path, &m, true);
    let mut laspy = Laspy::default();
    laspy.add(&input_path, m.clone(), None);
    laspy.finish();

    // Tile by tile: same core counts; core and buffer point sets compared.
    let mut report = Vec::new();
    let (mut moved_core, mut diff_buffer) = (0usize, 0usize);
    for (i, (orig, t)) in originals.iter().zip(&m.tiles).enumerate() {
        let ours = PointRecords::read(&s, &t.uri).unwrap();
        let split = |pr: &PointRecords| {
            let mut core: HashMap<Vec<u8>, usize> = HashMap::new();
            let mut buf: HashSet<Vec<u8>> = HashSet::new();
            for p in pr.iter() {
                if p.withheld() {
                    buf.insert(key(&p));
                } else {
                    *core.entry(key(&p)).or_default() += 1;
                }
            }
            (core, buf)
        };
        let (oc, ob) = split(orig);
        let (wc, wb) = split(&ours);
        let ocount: usize = oc.values().sum();
        assert_eq!(t.core_points as usize, ocount, "tile {i}: core count");
        let core_only_orig = oc.keys().filter(|k| !wc.contains_key(*k)).count();
        let buf_sym = ob.symmetric_difference(&wb).count();
        moved_core += core_only_orig;
        diff_buffer += buf_sym;
        report.push(format!(
            "tile {i:2}: core {} (original {ocount}), withheld {} (original {}), original core \
             points elsewhere {core_only_orig}, buffer points differing {buf_sym}",
            t.core_points,
            t.buffer_points,
            ob.len()
        ));
    }
    println!("input order {tile_order:?}:\n{}", report.join("\n"));
    println!(
        "core points in another tile than the original: {moved_core}; buffer points differing: {diff_buffer}"
    );
    (moved_core, diff_buffer)
}

/// Points of the original tiles lying on a cut line shared with another tile (the same x or
/// y value on both sides of a cut): the only points whose side depends on tie order.
fn tie_points(originals: &[PointRecords]) -> usize {
    let boxes: Vec<[f64; 4]> = originals
        .iter()
        .map(|t| {
            t.iter().filter(|p| !p.withheld()).fold(
                [f64::MAX, f64::MAX, f64::MIN, f64::MIN],
                |b, p| {
                    [
                        b[0].min(p.x()),
                        b[1].min(p.y()),
                        b[2].max(p.x()),
                        b[3].max(p.y()),
                    ]
                },
            )
        })
        .collect();
    let mut ties = 0;
    for (a, t) in originals.iter().enumerate() {
        for p in t.iter().filter(|p| !p.withheld()) {
            let shared = boxes.iter().enumerate().any(|(b, bx)| {
                b != a
                    && ((p.x() == boxes[a][2] && p.x() == bx[0])
                        || (p.x() == boxes[a][0] && p.x() == bx[2])
                        || (p.y() == boxes[a][3] && p.y() == bx[1])
                        || (p.y() == boxes[a][1] && p.y() == bx[3]))
            });
            ties += usize::from(shared);
        }
    }
    ties
}

#[test]
fn reproduces_the_original_twelve_tiles() {
    let s = store();
    let originals: Vec<PointRecords> = (0..12)
        .map(|i| {
            let p = data(&format!("cnig/partitions/lasfile-{i:04}.las"));
            PointRecords::read(&s, p.to_str().unwrap()).unwrap()
        })
        .collect();
    let ties = tie_points(&originals);
    println!("original core points on a cut line shared by two tiles: {ties}");
    assert!(ties > 0 && ties < 200, "{ties}");

    // The original input's point order is lost (tiles keep input order within themselves
    // only). Concatenated in tile order, every tie point falls on the original's side, and
    // all 12 tiles come out identical: core and withheld points alike.
    let forward: Vec<usize> = (0..12).collect();
    assert_eq!(reproduce(&originals, &forward), (0, 0));

    // In reverse order the tie points at the cut lines take the other side first: only they
    // (and the buffer points their boxes reach) may differ.
    let backward: Vec<usize> = (0..12).rev().collect();
    let (moved, buffer) = reproduce(&originals, &backward);
    assert!(
        moved <= ties,
        "{moved} moved core points, {ties} tie points"
    );
    assert!(buffer <= 20 * ties.max(1), "{buffer} buffer points differ");
}
