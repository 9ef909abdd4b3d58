//! Density (balanced counts) versus grid (equal areas) on files of uneven point density:
//! the Murcia PNOA tiles were cut by `pdal tile` with a 250 m buffer, so their coverage and
//! density vary across the bounding box.

use crate::common::{Laspy, check_partition, data};
use lidar_partitioner::{Manifest, Method, Params};

fn run(rel: &str, method: Method) -> (tempfile::TempDir, Manifest) {
    let dir = tempfile::tempdir().unwrap();
    let p = Params {
        method,
        ..Params::capacity(30_000, 5.0)
    };
    let input = data(rel);
    let out = dir.path().join("out");
    let m =
        lidar_partitioner::partition(input.to_str().unwrap(), out.to_str().unwrap(), &p).unwrap();
    (dir, m)
}

#[test]
fn density_tiles_are_balanced_where_grid_tiles_are_not() {
    let mut laspy = Laspy::default();
    let mut dirs = Vec::new();
    for (rel, min_grid_ratio) in [
        ("cnig/murcia_tiles/out_1_-9.laz", 3.0),
        ("cnig/murcia_tiles/out_-1_-7.laz", 100.0),
    ] {
        let (_a, d) = run(rel, Method::Density);
        let (b, g) = run(rel, Method::Grid);
        dirs.push(b);
        let sizes = |m: &Manifest| m.tiles.iter().map(|t| t.core_points).collect::<Vec<_>>();
        println!(
            "{rel}: density {} tiles, max/min core points {:.4} {:?}; grid {} tiles, max/min {:.2} {:?}",
            d.tiles.len(),
            d.core_ratio(),
            sizes(&d),
            g.tiles.len(),
            g.core_ratio(),
            sizes(&g)
        );
        // ceil(N / capacity) tiles whose counts differ by at most one.
        assert!(
            d.core_ratio() <= 30_001.0 / 29_999.0,
            "{rel}: density {}",
            d.core_ratio()
        );
        assert!(
            g.core_ratio() >= min_grid_ratio,
            "{rel}: grid {}",
            g.core_ratio()
        );
        assert_eq!(
            d.tiles.iter().map(|t| t.core_points).sum::<u64>(),
            d.input.points
        );
        assert_eq!(
            g.tiles.iter().map(|t| t.core_points).sum::<u64>(),
            g.input.points
        );
        check_partition(&data(rel), &g, false);
        laspy.add(&data(rel), g, None);
    }
    laspy.finish();
}
