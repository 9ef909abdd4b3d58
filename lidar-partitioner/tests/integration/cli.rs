//! The `lidar-partitioner` binary: CLI runs, `task` runs, bad arguments.

use crate::common;

use std::process::Command;

use crate::common::data;
use lidar_partitioner::Manifest;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lidar-partitioner"));
    c.env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AWS_BATCH_JOB_ARRAY_INDEX");
    c
}

#[test]
fn cli_partitions_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let input = data("lidar/pdal/autzen_trim.laz");
    let o = bin()
        .args([input.to_str().unwrap(), out.to_str().unwrap()])
        .args([
            "--capacity",
            "30000",
            "--buffer",
            "10",
            "--format",
            "las",
            "--method",
            "density",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("autzen_trim-0003.las"), "{stdout}");
    assert!(stdout.contains("4 tiles"), "{stdout}");
    let m: Manifest =
        serde_json::from_slice(&std::fs::read(out.join("partitions.json")).unwrap()).unwrap();
    assert_eq!(m.tiles.len(), 4);
    common::check_partition(&input, &m, true);
    let mut laspy = common::Laspy::default();
    laspy.add(&input, m, None);
    laspy.finish();

    // --target-mb and --json; bounded mode through --max-memory-mb.
    let out2 = dir.path().join("out2");
    let o = bin()
        .args([input.to_str().unwrap(), out2.to_str().unwrap()])
        .args([
            "--target-mb",
            "1",
            "--buffer",
            "0",
            "--max-memory-mb",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: Manifest = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m.mode, lidar_partitioner::Mode::Bounded);
    assert_eq!(m.capacity, 29_411);
    assert_eq!(m.tiles.len(), 4);
}

#[test]
fn cli_runs_a_task_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let task = serde_json::json!({
        "id": "t1",
        "stage": "lidar-partitioner",
        "params": {
            "input": data("lidar/laspy/simple.laz").to_str().unwrap(),
            "output": out.to_str().unwrap(),
            "capacity": 500,
            "buffer_m": 20.0
        }
    });
    let path = dir.path().join("task.json");
    std::fs::write(&path, task.to_string()).unwrap();
    let o = bin()
        .args(["task", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["state"], "ok");
    assert!(out.join("status/t1.json").exists());
    assert!(out.join("simple-0002.laz").exists());
}

#[test]
fn cli_rejects_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let input = data("lidar/pdal/autzen_trim.las");
    let run = |extra: &[&str]| {
        let o = bin()
            .args([input.to_str().unwrap(), out.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--capacity", "0", "--buffer", "5"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("capacity must be at least 1"), "{err}");
    let (code, err) = run(&["--capacity", "100", "--buffer", "-5"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("buffer_m must be a non-negative"), "{err}");
    let (code, err) = run(&["--buffer", "5"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--capacity"), "{err}");
    let (code, err) = run(&["--capacity", "10", "--target-mb", "1", "--buffer", "5"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&["--capacity", "10", "--buffer", "5", "--method", "kmeans"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(!out.exists());
    let o = bin()
        .args([
            "/nonexistent.las",
            out.to_str().unwrap(),
            "--capacity",
            "5",
            "--buffer",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent.las"));
}

#[test]
fn a_rerun_with_fewer_tiles_removes_the_extra_ones() {
    // The issue's case: capacity 20 000 (6 tiles), then 40 000 (3 tiles) into one folder;
    // tiles 0003..0005 of the first run must not stay beside the 3-tile manifest.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let input = data("lidar/pdal/autzen_trim.laz");
    std::fs::create_dir_all(&out).unwrap();
    // Files that are not this input's tiles stay.
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    std::fs::write(out.join("other-0009.las"), b"another input's tile").unwrap();
    let tiles = |n: &str| {
        let mut v: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.starts_with(n))
            .collect();
        v.sort();
        v
    };
    for (capacity, expect) in [("20000", 6), ("40000", 3)] {
        let o = bin()
            .args([input.to_str().unwrap(), out.to_str().unwrap()])
            .args(["--capacity", capacity, "--buffer", "5", "--format", "las"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let m: Manifest =
            serde_json::from_slice(&std::fs::read(out.join("partitions.json")).unwrap()).unwrap();
        assert_eq!(m.tiles.len(), expect);
        let names: Vec<String> = m.tiles.iter().map(|t| t.file.clone()).collect();
        assert_eq!(tiles("autzen_trim-"), names);
        let core: u64 = m.tiles.iter().map(|t| t.core_points).sum();
        assert_eq!(core, m.input.points, "every point a core point once");
    }
    assert!(out.join("notes.txt").exists() && out.join("other-0009.las").exists());
}

#[test]
fn epsg_labels_tiles_of_inputs_without_a_crs_and_never_relabels() {
    let dir = tempfile::tempdir().unwrap();
    let store = cloud::Store::default();
    // A Murcia PNOA tile records no CRS: --epsg 25830 goes into every tile.
    let murcia = data("cnig/murcia_tiles/out_2_-8.laz");
    let out = dir.path().join("murcia");
    let o = bin()
        .args([murcia.to_str().unwrap(), out.to_str().unwrap()])
        .args(["--capacity", "100000", "--buffer", "5", "--epsg", "25830"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        lidar_partitioner::LasFile::open(&store, murcia.to_str().unwrap())
            .unwrap()
            .meta()
            .crs()
            .epsg,
        None
    );
    let m: Manifest =
        serde_json::from_slice(&std::fs::read(out.join("partitions.json")).unwrap()).unwrap();
    assert!(m.tiles.len() >= 2);
    for t in &m.tiles {
        let f = lidar_partitioner::LasFile::open(&store, &t.uri).unwrap();
        assert_eq!(f.meta().crs().epsg, Some(25830), "{}", t.uri);
    }
    common::check_partition(&murcia, &m, true);
    // A Catalonia tile records EPSG:25831: --epsg 25830 is an error, nothing written.
    let cat = data("cnig/partitions/lasfile-0000.las");
    let out = dir.path().join("cat");
    let o = bin()
        .args([cat.to_str().unwrap(), out.to_str().unwrap()])
        .args(["--capacity", "10000", "--buffer", "5", "--epsg", "25830"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("EPSG:25831") && e.contains("EPSG:25830"), "{e}");
    assert!(!out.join("partitions.json").exists());
}

/// Issue 14, item 3: `--neighbour` files lend their points within the buffer, as withheld
/// buffer points, never core; where files overlap, a point both hold is kept once. Checked
/// with laspy: two halves of a CNIG tile overlapping by 20 m, one tile per half.
#[test]
fn neighbours_lend_buffer_points_once_and_never_core() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let tile = data("cnig/murcia_tiles/out_-1_-8.laz");
    let py = r#"
import sys, laspy, numpy as np
las = laspy.read(sys.argv[1]); d = sys.argv[2]
xm = np.median(las.x)
a, b = las.x < xm + 10, las.x >= xm - 10
for name, m in [("a", a), ("b", b)]:
    part = laspy.LasData(las.header); part.points = las.points[m].copy(); part.write(f"{d}/{name}.las")
# What a's tile must hold with a 30 m buffer: a's points, and b's within 30 m of a's box
# (those a holds too counted once).
ax, ay = las.x[a], las.y[a]
zone = b & (las.x >= ax.min() - 30) & (las.x <= ax.max() + 30) & (las.y >= ay.min() - 30) & (las.y <= ay.max() + 30)
print(a.sum(), (zone & ~a).sum())
bad = laspy.LasData(laspy.LasHeader(point_format=las.header.point_format, version=las.header.version))
bad.header.scales = np.array([0.005, 0.005, 0.005]); bad.header.offsets = las.header.offsets
bad.points = laspy.ScaleAwarePointRecord.zeros(int(b.sum()), header=bad.header)
bad.x, bad.y, bad.z = np.asarray(las.x[b]), np.asarray(las.y[b]), np.asarray(las.z[b])
bad.write(f"{d}/other_scale.las")
"#;
    let o = Command::new("python3")
        .args(["-c", py, tile.to_str().unwrap(), d])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let counts: Vec<u64> = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let (own, lent) = (counts[0], counts[1]);
    assert!(lent > 1000, "{lent}");
    let run = |neighbour: &str, out: &str| {
        bin()
            .args([&format!("{d}/a.las"), out, "--capacity", "10000000"])
            .args(["--buffer", "30", "--json", "--neighbour", neighbour])
            .output()
            .unwrap()
    };
    let o = run(&format!("{d}/b.las"), &format!("{d}/out"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: Manifest = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m.tiles.len(), 1);
    assert_eq!(m.tiles[0].core_points, own);
    assert_eq!(m.tiles[0].buffer_points, lent);
    // The tile as laspy reads it: the lent points are withheld, a's own are not.
    let check = r#"
import sys, laspy, numpy as np
t = laspy.read(sys.argv[1])
print(len(t.points), int(np.asarray(t.withheld).sum()))
"#;
    let o = Command::new("python3")
        .args(["-c", check, &m.tiles[0].uri])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("{} {lent}", own + lent)
    );
    // A neighbour on another coordinate lattice: an error naming it, nothing written.
    let o = run(&format!("{d}/other_scale.las"), &format!("{d}/bad"));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        e.contains("other_scale.las") && (e.contains("scale") || e.contains("point format")),
        "{e}"
    );
    assert!(!std::path::Path::new(&format!("{d}/bad/partitions.json")).exists());
}
