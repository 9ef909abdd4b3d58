//! Partition invariants on every LAS/LAZ fixture under `../shared/data/lidar/` and
//! `../shared/data/cnig/`, checked with our reader and independently with laspy (see
//! `common::check_partition`).

use crate::common;

use std::path::Path;

use crate::common::{Laspy, buffer_for, check_partition, fixtures, store};
use lidar_partitioner::{Manifest, Method, Mode, OutputFormat, Params, PointRecords};

/// Partitions `input` into about `tiles` tiles with a buffer of 4 % of its smaller extent.
fn run(input: &Path, tiles: u64, f: impl FnOnce(&mut Params)) -> (tempfile::TempDir, Manifest) {
    let s = store();
    let uri = input.to_str().unwrap();
    let pts = PointRecords::read(&s, uri).unwrap();
    let n = pts.len() as u64;
    let mut p = Params::capacity(n.div_ceil(tiles).max(1), buffer_for(&pts, 0.04));
    f(&mut p);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiles");
    let m = lidar_partitioner::partition(uri, out.to_str().unwrap(), &p).unwrap();
    (dir, m)
}

fn check_all(dir: &str, tiles: u64) {
    let mut laspy = Laspy::default();
    for f in fixtures(dir) {
        let (d, m) = run(&f, tiles, |_| {});
        assert_eq!(m.mode, Mode::Exact);
        let laz_in = m.input.compressed;
        assert_eq!(m.output_format, if laz_in { "laz" } else { "las" });
        let c = check_partition(&f, &m, true);
        println!(
            "{}: {} tiles, {} core + {} buffer points",
            f.display(),
            c.tiles,
            c.core,
            c.buffer
        );
        laspy.add(&f, m, Some(d));
    }
    laspy.finish();
}

#[test]
fn every_lidar_fixture_exact() {
    check_all("lidar", 5);
}

#[test]
fn every_cnig_partition_fixture_exact() {
    check_all("cnig/partitions", 4);
}

#[test]
fn every_cnig_murcia_fixture_exact() {
    check_all("cnig/murcia_tiles", 6);
}

/// LAZ → LAS and LAS → LAZ, across point formats 0, 1, 3, 6, 7 and 10 (waveform), LAS 1.0
/// to 1.4, COPC, EVLRs and extra bytes.
#[test]
fn format_conversions_keep_everything() {
    let mut laspy = Laspy::default();
    for (file, format) in [
        ("lidar/pdal/autzen_trim.laz", OutputFormat::Las),
        ("lidar/laspy/fullwave.laz", OutputFormat::Las),
        ("lidar/laspy/simple.copc.laz", OutputFormat::Las),
        ("lidar/laspy/1_4_w_evlr.laz", OutputFormat::Las),
        ("lidar/lidR/MixedConifer.laz", OutputFormat::Las),
        ("lidar/pdal/autzen_trim_7.las", OutputFormat::Laz),
        ("lidar/pdal/hexbin-crop.las", OutputFormat::Laz),
        ("lidar/pdal/1.0_0.las", OutputFormat::Laz),
        (
            "lidar/laspy/file_with_both_wkt_and_geotiff_vlrs.las",
            OutputFormat::Laz,
        ),
        ("lidar/laz-rs/point10.las", OutputFormat::Laz),
    ] {
        let f = common::data(file);
        let (d, m) = run(&f, 3, |p| p.format = format);
        assert_eq!(
            m.output_format,
            if format == OutputFormat::Laz {
                "laz"
            } else {
                "las"
            },
            "{file}"
        );
        assert!(
            m.tiles
                .iter()
                .all(|t| t.file.ends_with(&format!(".{}", m.output_format)))
        );
        check_partition(&f, &m, true);
        laspy.add(&f, m, Some(d));
    }
    laspy.finish();
}

/// The bounded-memory method keeps every invariant except exact balance; its tiles stay close
/// to the exact method's.
#[test]
fn bounded_memory_method() {
    let mut laspy = Laspy::default();
    for file in [
        "lidar/pdal/autzen_trim.laz",
        "lidar/laspy/fullwave.laz",
        "lidar/lidR/Megaplot.laz",
        "lidar/pdal/epsg_4326.las",
        "cnig/partitions/lasfile-0003.las",
        "lidar/laspy/1_4_w_evlr.laz",
    ] {
        let f = common::data(file);
        let (_d1, exact) = run(&f, 6, |_| {});
        // 1 MiB is below what the exact method needs for any input: bounded mode.
        let (d2, bounded) = run(&f, 6, |p| p.max_memory_mb = Some(1));
        assert_eq!(bounded.mode, Mode::Bounded, "{file}");
        check_partition(&f, &bounded, false);
        let cap = exact.capacity as f64;
        let worst = exact
            .tiles
            .iter()
            .zip(&bounded.tiles)
            .map(|(a, b)| (a.core_points as f64 - b.core_points as f64).abs() / cap)
            .fold(0.0, f64::max);
        println!(
            "{file}: bounded tiles {} vs exact {}, worst core count deviation {:.2} % of capacity, \
             max/min {:.3}",
            bounded.tiles.len(),
            exact.tiles.len(),
            100.0 * worst,
            bounded.core_ratio()
        );
        assert_eq!(bounded.tiles.len(), exact.tiles.len(), "{file}");
        assert!(
            worst < 0.05,
            "{file}: bounded tiles deviate {worst} of capacity"
        );
        laspy.add(&f, bounded, Some(d2));
    }
    laspy.finish();
}

#[test]
fn grid_method_keeps_the_invariants() {
    let mut laspy = Laspy::default();
    for file in [
        "lidar/pdal/autzen_trim.las",
        "lidar/lidR/MixedConifer.laz",
        "cnig/murcia_tiles/out_-1_-8.laz",
    ] {
        let f = common::data(file);
        let (d, m) = run(&f, 6, |p| p.method = Method::Grid);
        assert_eq!(m.method, Method::Grid);
        check_partition(&f, &m, false);
        // The bounded-memory grid is the same grid.
        let (d2, b) = run(&f, 6, |p| {
            p.method = Method::Grid;
            p.max_memory_mb = Some(1);
        });
        let counts = |m: &Manifest| m.tiles.iter().map(|t| t.core_points).collect::<Vec<_>>();
        assert_eq!(counts(&b), counts(&m), "{file}: bounded grid");
        check_partition(&f, &b, false);
        laspy.add(&f, m, Some(d));
        laspy.add(&f, b, Some(d2));
    }
    laspy.finish();
}

/// Target size instead of capacity, zero buffer, and one tile for everything.
#[test]
fn target_mb_zero_buffer_and_single_tile() {
    let f = common::data("lidar/pdal/autzen_trim.las");
    let uri = f.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a");
    // 110,000 PF3 records of 34 bytes; 0.5 MB → 14,705 points per tile → 8 tiles.
    let mut p = Params::capacity(1, 0.0);
    p.capacity = None;
    p.target_mb = Some(0.5);
    let m = lidar_partitioner::partition(uri, out.to_str().unwrap(), &p).unwrap();
    assert_eq!(m.capacity, 14_705);
    assert_eq!(m.tiles.len(), 8);
    check_partition(&f, &m, true);
    let mut laspy = Laspy::default();
    laspy.add(&f, m, None);

    let out = dir.path().join("b");
    let m = lidar_partitioner::partition(
        uri,
        out.to_str().unwrap(),
        &Params::capacity(1_000_000, 25.0),
    )
    .unwrap();
    assert_eq!(m.tiles.len(), 1);
    assert_eq!(m.tiles[0].core_points, 110_000);
    assert_eq!(m.tiles[0].buffer_points, 0);
    check_partition(&f, &m, true);
    laspy.add(&f, m, None);
    laspy.finish();
}
