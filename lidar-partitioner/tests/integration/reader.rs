//! The raw-record reader against laspy's reference summary of every LAS/LAZ fixture
//! (`../shared/data/lidar/REFERENCE_LASPY_SUMMARY.tsv`, laspy 2.7 + lazrs), LAZ against the
//! same points as LAS, and write/read round trips.

use std::collections::BTreeMap;

use crate::common::{data, fixtures, store};
use lidar_partitioner::{LasFile, PointRecords};

fn counts(s: &str) -> BTreeMap<u32, u64> {
    s.split(';')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once(':').unwrap();
            (k.parse().unwrap(), v.parse().unwrap())
        })
        .collect()
}

fn floats(s: &str) -> Vec<f64> {
    s.split(',').map(|v| v.parse().unwrap()).collect()
}

#[test]
fn matches_the_laspy_reference_summary() {
    let tsv = std::fs::read_to_string(data("lidar/REFERENCE_LASPY_SUMMARY.tsv")).unwrap();
    let mut lines = tsv.lines();
    let cols: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let s = store();
    let mut checked = 0;
    for line in lines {
        let v: Vec<&str> = line.split('\t').collect();
        let f = |name: &str| v[cols.iter().position(|c| *c == name).unwrap()];
        let path = data(&format!("lidar/{}", f("file")));
        let pr = PointRecords::read(&s, path.to_str().unwrap()).unwrap();
        let h = pr.header();
        let what = f("file");
        assert_eq!(
            format!("{}.{}", h.version().0, h.version().1),
            f("las_version"),
            "{what}"
        );
        assert_eq!(
            h.point_format().id().to_string(),
            f("point_format"),
            "{what}"
        );
        assert_eq!(pr.len().to_string(), f("point_count"), "{what}");
        assert_eq!(h.is_compressed(), f("compressed") == "True", "{what}");
        for (a, b) in h.scale().iter().zip(floats(f("scale_xyz"))) {
            assert!((a - b).abs() <= 1e-9 * b.abs(), "{what}: scale {a} {b}");
        }
        for (a, b) in h.offset().iter().zip(floats(f("offset_xyz"))) {
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                "{what}: offset {a} {b}"
            );
        }
        let mut lo = [f64::MAX; 3];
        let mut hi = [f64::MIN; 3];
        let mut classes = BTreeMap::new();
        let mut returns = BTreeMap::new();
        for p in pr.iter() {
            let xyz = p.xyz();
            for a in 0..3 {
                lo[a] = lo[a].min(xyz[a]);
                hi[a] = hi[a].max(xyz[a]);
            }
            *classes.entry(u32::from(p.classification())).or_insert(0u64) += 1;
            *returns.entry(u32::from(p.return_number())).or_insert(0u64) += 1;
        }
        let fmt3 = |x: [f64; 3]| format!("{:.3},{:.3},{:.3}", x[0], x[1], x[2]);
        assert_eq!(fmt3(lo), f("min_xyz"), "{what}");
        assert_eq!(fmt3(hi), f("max_xyz"), "{what}");
        assert_eq!(classes, counts(f("classification_counts")), "{what}");
        assert_eq!(returns, counts(f("return_number_counts")), "{what}");
        let fmt = h.point_format();
        assert_eq!(fmt.rgb_offset().is_some(), f("has_rgb") == "True", "{what}");
        assert_eq!(
            fmt.gps_time_offset().is_some(),
            f("has_gps_time") == "True",
            "{what}"
        );
        assert_eq!(h.extra_bytes() > 0, !f("extra_dims").is_empty(), "{what}");
        assert_eq!(pr.meta().evlrs.len().to_string(), f("evlrs"), "{what}");
        if let Ok(code) = f("crs_epsg").parse::<u32>() {
            // pyproj also identifies a WKT without an EPSG authority by matching its
            // definition; without a CRS database we report no code for such a WKT.
            let crs = pr.meta().crs();
            let wkt_only = h.global_encoding() & 0x10 != 0 && crs.wkt.is_some();
            assert!(
                crs.epsg == Some(code) || (crs.epsg.is_none() && wkt_only),
                "{what}: EPSG {:?}, laspy {code}",
                crs.epsg
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 25);
}

#[test]
fn laz_decodes_to_the_same_records_as_las() {
    let s = store();
    for (las, laz) in [
        ("lidar/pdal/autzen_trim.las", "lidar/pdal/autzen_trim.laz"),
        ("lidar/laz-rs/point10.las", "lidar/laz-rs/point10.laz"),
        ("lidar/laspy/simple.las", "lidar/laspy/simple.laz"),
    ] {
        let a = PointRecords::read(&s, data(las).to_str().unwrap()).unwrap();
        let b = PointRecords::read(&s, data(laz).to_str().unwrap()).unwrap();
        assert_eq!(a.len(), b.len());
        assert!(a.as_bytes() == b.as_bytes(), "{las} and {laz} differ");
    }
}

/// Every fixture written back as LAS and as LAZ reads to the same records, header fields and
/// VLRs (LASzip/COPC records aside), with recomputed bounds.
#[test]
fn write_read_round_trip() {
    let s = store();
    let dir = tempfile::tempdir().unwrap();
    for f in fixtures("lidar") {
        let pr = PointRecords::read(&s, f.to_str().unwrap()).unwrap();
        for laz in [false, true] {
            let out = dir.path().join(if laz { "x.laz" } else { "x.las" });
            let out = out.to_str().unwrap();
            let bytes = pr.write(&s, out, laz).unwrap();
            assert_eq!(bytes, std::fs::metadata(out).unwrap().len());
            let back = PointRecords::read(&s, out).unwrap();
            let what = format!("{} as {}", f.display(), if laz { "LAZ" } else { "LAS" });
            assert!(back.as_bytes() == pr.as_bytes(), "{what}: records differ");
            let (h0, h1) = (pr.header(), back.header());
            assert_eq!(h1.is_compressed(), laz, "{what}");
            assert_eq!(h1.version(), h0.version(), "{what}");
            assert_eq!(h1.point_format(), h0.point_format(), "{what}");
            assert_eq!(h1.scale(), h0.scale(), "{what}");
            assert_eq!(h1.offset(), h0.offset(), "{what}");
            assert_eq!(h1.global_encoding(), h0.global_encoding(), "{what}");
            assert_eq!(h1.system_identifier(), h0.system_identifier(), "{what}");
            // Who wrote the file and when are ours now, as PDAL writes its own.
            assert_eq!(
                h1.generating_software(),
                pointcloud::header::GENERATING_SOFTWARE,
                "{what}"
            );
            let (day, year) = pointcloud::header::creation_date();
            assert_eq!(
                &h1.raw()[90..94],
                &[day.to_le_bytes(), year.to_le_bytes()].concat()[..],
                "{what}"
            );
            assert_eq!(h1.point_count(), pr.len() as u64, "{what}");
            assert_eq!(
                &h1.raw()[4..24],
                &h0.raw()[4..24],
                "{what}: source id, encoding, GUID"
            );
            let keep = |v: &&lidar_partitioner::Vlr| !v.is_laszip() && !v.is_copc();
            let v0: Vec<_> = pr.meta().vlrs.iter().filter(keep).collect();
            let v1: Vec<_> = back.meta().vlrs.iter().filter(keep).collect();
            assert_eq!(v0, v1, "{what}: VLRs");
            let e0: Vec<_> = pr.meta().evlrs.iter().filter(keep).collect();
            let e1: Vec<_> = back.meta().evlrs.iter().filter(keep).collect();
            assert_eq!(e0, e1, "{what}: EVLRs");
            assert_eq!(
                back.meta().gap,
                pr.meta().gap,
                "{what}: bytes before the points"
            );
            let file = LasFile::open(&s, out).unwrap();
            assert_eq!(file.file_len(), bytes);
            if !pr.is_empty() {
                let mut lo = [f64::MAX; 3];
                let mut hi = [f64::MIN; 3];
                for p in pr.iter() {
                    let xyz = p.xyz();
                    for a in 0..3 {
                        lo[a] = lo[a].min(xyz[a]);
                        hi[a] = hi[a].max(xyz[a]);
                    }
                }
                assert_eq!(h1.min(), lo, "{what}");
                assert_eq!(h1.max(), hi, "{what}");
            }
        }
    }
}
