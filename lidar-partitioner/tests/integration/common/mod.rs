//! Helpers shared by the integration tests: fixture paths, the laspy cross-check and the
//! partition invariants.

use std::path::{Path, PathBuf};
use std::process::Command;

use lidar_partitioner::{Manifest, PointRecords};
use serde_json::Value;

pub use testkit::fixtures::data;

/// Every `.las`/`.laz` below `../shared/data/<dir>`, sorted.
pub fn fixtures(dir: &str) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("las") || e.eq_ignore_ascii_case("laz"))
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&data(dir), &mut out);
    out.sort();
    assert!(!out.is_empty(), "no fixtures under {dir}");
    out
}

pub fn store() -> cloud::Store {
    cloud::Store::default()
}

/// Runs `tests/laspy_summary.py` (laspy with the lazrs backend) and parses its JSON lines.
fn laspy_with_input(args: &[String], stdin: Option<String>) -> Vec<Value> {
    use std::io::Write;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/laspy_summary.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with laspy[lazrs] is needed (scripts/requirements-test.txt)");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "laspy_summary.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn withheld_mask(fmt: u8) -> u8 {
    if fmt >= 6 { 0x04 } else { 0x80 }
}

/// Partitions waiting for the laspy cross-check, run in one Python process by
/// [`Laspy::finish`] (Python start-up dominates otherwise).
#[derive(Default)]
pub struct Laspy {
    items: Vec<(PathBuf, Manifest, Option<tempfile::TempDir>)>,
}

impl Laspy {
    /// Queues `m` (a partition of `input`); `dir` keeps its tiles alive until the check.
    pub fn add(&mut self, input: &Path, m: Manifest, dir: Option<tempfile::TempDir>) {
        self.items.push((input.to_path_buf(), m, dir));
    }

    /// Checks every queued partition with laspy:
    /// - laspy reads every tile: header count = points, header bounds = point bounds, points
    ///   by return = header, withheld count = buffer points, version/format/scales/offsets/
    ///   global encoding as the input, VLRs (CRS included) and EVLRs identical to the input's
    ///   apart from the LASzip/COPC records; the LASzip VLR and compressed bit exactly when
    ///   LAZ;
    /// - the multiset of the tiles' non-withheld records equals the input's records
    ///   (withheld cleared), by laspy's own decoding.
    pub fn finish(self) {
        if self.items.is_empty() {
            return;
        }
        let groups: Vec<Value> = self
            .items
            .iter()
            .map(|(i, m, _)| {
                serde_json::json!({
                    "input": i.display().to_string(),
                    "tiles": m.tiles.iter().map(|t| t.uri.clone()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let lines = laspy_with_input(
            &["--groups".to_string()],
            Some(Value::Array(groups).to_string()),
        );
        assert_eq!(lines.len(), self.items.len());
        for ((input, m, _), g) in self.items.iter().zip(&lines) {
            laspy_check(input, m, &g["summaries"], &g["digest"]);
        }
    }
}

fn laspy_check(input: &Path, m: &Manifest, sums: &Value, d: &Value) {
    let store = store();
    let name = input.display();
    let sums = sums.as_array().unwrap();
    assert_eq!(sums.len(), m.tiles.len() + 1);
    // Independent reading with laspy.
    let inp_s = &sums[0];
    assert!(
        inp_s.get("error").is_none(),
        "laspy cannot read {name}: {inp_s}"
    );
    let strip = |v: &Value, drop_copc: bool| -> Vec<Value> {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                let u = r[0].as_str().unwrap();
                u != "laszip encoded" && !(drop_copc && u == "copc")
            })
            .cloned()
            .collect()
    };
    for (t, s) in m.tiles.iter().zip(&sums[1..=m.tiles.len()]) {
        assert!(s.get("error").is_none(), "laspy cannot read {}: {s}", t.uri);
        let n = t.core_points + t.buffer_points;
        assert_eq!(s["count"].as_u64().unwrap(), n, "{}", t.uri);
        assert_eq!(s["header_count"].as_u64().unwrap(), n, "{}", t.uri);
        assert_eq!(
            s["withheld"].as_u64().unwrap(),
            t.buffer_points,
            "{}",
            t.uri
        );
        assert_eq!(s["min"], s["header_min"], "{} header min", t.uri);
        assert_eq!(s["max"], s["header_max"], "{} header max", t.uri);
        assert_eq!(
            s["by_return"], s["header_by_return"],
            "{} points by return",
            t.uri
        );
        let laz = t.uri.ends_with(".laz");
        assert_eq!(
            s["compressed"].as_bool().unwrap(),
            laz,
            "{} compression",
            t.uri
        );
        for k in [
            "version",
            "point_format",
            "scales",
            "offsets",
            "global_encoding",
        ] {
            assert_eq!(s[k], inp_s[k], "{}: {k}", t.uri);
        }
        assert_eq!(
            strip(&s["vlrs"], false),
            strip(&inp_s["vlrs"], true),
            "{} VLRs",
            t.uri
        );
        assert_eq!(
            strip(&s["evlrs"], false),
            strip(&inp_s["evlrs"], true),
            "{} EVLRs",
            t.uri
        );
        // laspy hides the LASzip VLR: count it in the file itself.
        let f = lidar_partitioner::LasFile::open(&store, &t.uri).unwrap();
        let laszip = f.meta().vlrs.iter().filter(|v| v.is_laszip()).count();
        assert_eq!(laszip, usize::from(laz), "{}: LASzip VLRs", t.uri);
        assert_eq!(f.header().is_compressed(), laz, "{}: compressed bit", t.uri);
        let b = &t.bounds;
        let hm: Vec<f64> = serde_json::from_value(s["header_min"].clone()).unwrap();
        let hx: Vec<f64> = serde_json::from_value(s["header_max"].clone()).unwrap();
        assert_eq!(hm, b.min.to_vec(), "{} manifest bounds", t.uri);
        assert_eq!(hx, b.max.to_vec(), "{} manifest bounds", t.uri);
    }
    assert_eq!(d["input_n"], d["core_n"], "{name}: laspy core count");
    assert_eq!(
        d["input_digest"], d["core_digest"],
        "{name}: laspy multiset of core points"
    );
}

/// What [`check_partition`] found, for reports.
#[derive(Debug, Default)]
pub struct Checked {
    pub tiles: usize,
    pub core: u64,
    pub buffer: u64,
}

/// Asserts the partition invariants of a finished run (with our reader; queue it on a
/// [`Laspy`] for the independent checks):
/// - the non-withheld records of all tiles are, as a multiset, the input's records (withheld
///   cleared) byte for byte;
/// - each tile's core box is the box of its non-withheld points; every withheld point lies
///   within the buffer of that box and is a core point of another tile; every input point in
///   the buffered box is in the tile (the buffer is complete);
/// - `exact`: core counts are the `lround` boundaries' differences (differ by at most 1).
pub fn check_partition(input: &Path, m: &Manifest, exact: bool) -> Checked {
    let store = store();
    let inp = PointRecords::read(&store, input.to_str().unwrap()).unwrap();
    let h = inp.header();
    let rec = inp.record_len();
    let fmt = h.point_format().id();
    let mask = withheld_mask(fmt);
    let b = m.buffer_m;
    let name = input.display();

    // Input records with the withheld bit cleared, sorted; and their scaled x/y.
    let masked = |data: &[u8]| -> Vec<u8> {
        let mut v = data.to_vec();
        for r in v.chunks_exact_mut(rec) {
            r[15] &= !mask;
        }
        v
    };
    let sorted = |data: &[u8]| -> Vec<u32> {
        let mut idx: Vec<u32> = (0..(data.len() / rec) as u32).collect();
        idx.sort_unstable_by(|&a, &b| {
            data[a as usize * rec..(a as usize + 1) * rec]
                .cmp(&data[b as usize * rec..(b as usize + 1) * rec])
        });
        idx
    };
    let row = |data: &'_ [u8], i: u32| -> Vec<u8> {
        data[i as usize * rec..(i as usize + 1) * rec].to_vec()
    };
    let input_rows = masked(inp.as_bytes());
    let input_order = sorted(&input_rows);
    let input_xy: Vec<(f64, f64)> = inp.iter().map(|p| (p.x(), p.y())).collect();

    // Core records of every tile (withheld bit clear), with their tile.
    let mut core_rows: Vec<u8> = Vec::new();
    let mut core_tile: Vec<usize> = Vec::new();
    let mut tiles = Vec::new();
    for t in &m.tiles {
        let pr = PointRecords::read(&store, &t.uri).unwrap();
        assert_eq!(pr.record_len(), rec, "{name}: {} record length", t.file);
        let mut core = 0u64;
        let mut buf = 0u64;
        for p in pr.iter() {
            if p.withheld() {
                buf += 1;
            } else {
                core += 1;
                core_rows.extend_from_slice(p.bytes());
                core_tile.push(t.index);
            }
        }
        assert_eq!(core, t.core_points, "{name}: {} core count", t.file);
        assert_eq!(buf, t.buffer_points, "{name}: {} buffer count", t.file);
        tiles.push(pr);
    }
    let core_order = sorted(&core_rows);
    assert_eq!(
        core_order.len(),
        input_order.len(),
        "{name}: core points vs input points"
    );
    for (&a, &b) in input_order.iter().zip(&core_order) {
        assert!(
            row(&input_rows, a) == row(&core_rows, b),
            "{name}: the tiles' core points are not the input points"
        );
    }
    // The tiles whose core holds a record.
    let owners = |r: &[u8]| -> Vec<usize> {
        let key = |i: u32| &core_rows[i as usize * rec..(i as usize + 1) * rec];
        let lo = core_order.partition_point(|&i| key(i) < r);
        let hi = core_order.partition_point(|&i| key(i) <= r);
        core_order[lo..hi]
            .iter()
            .map(|&i| core_tile[i as usize])
            .collect()
    };

    for (t, pr) in m.tiles.iter().zip(&tiles) {
        let cb = t.core_bbox;
        // The core box is the box of the core points.
        let mut bx = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for p in pr.iter().filter(|p| !p.withheld()) {
            bx = (
                bx.0.min(p.x()),
                bx.1.min(p.y()),
                bx.2.max(p.x()),
                bx.3.max(p.y()),
            );
        }
        assert_eq!(
            bx,
            (cb.min_x, cb.min_y, cb.max_x, cb.max_y),
            "{name}: {} core box",
            t.file
        );
        let inside = |x: f64, y: f64| {
            x >= cb.min_x - b && x <= cb.max_x + b && y >= cb.min_y - b && y <= cb.max_y + b
        };
        for p in pr.iter().filter(|p| p.withheld()) {
            assert!(
                inside(p.x(), p.y()),
                "{name}: {} buffer point outside the buffer",
                t.file
            );
            let mut r = p.bytes().to_vec();
            r[15] &= !mask;
            let o = owners(&r);
            assert!(
                !o.is_empty(),
                "{name}: {} has a buffer point that is nobody's core point",
                t.file
            );
            assert!(
                o.iter().any(|&x| x != t.index),
                "{name}: {} buffer point is only its own core point",
                t.file
            );
        }
        // Completeness: every input point in the buffered box is in the tile.
        let in_box = input_xy.iter().filter(|(x, y)| inside(*x, *y)).count() as u64;
        assert_eq!(
            in_box,
            t.core_points + t.buffer_points,
            "{name}: {} holds {} points, the buffered box {in_box}",
            t.file,
            t.core_points + t.buffer_points
        );
    }

    if exact && m.method == lidar_partitioner::Method::Density {
        let n = inp.len() as u64;
        let num = n.div_ceil(m.capacity);
        assert_eq!(m.tiles.len() as u64, num, "{name}: tile count");
        let size = n as f64 / num as f64;
        let mut counts: Vec<u64> = m.tiles.iter().map(|t| t.core_points).collect();
        counts.sort_unstable();
        assert!(
            counts[counts.len() - 1] - counts[0] <= 1,
            "{name}: core counts {counts:?}"
        );
        let lo = size.floor() as u64;
        assert!(
            counts[0] >= lo && counts[counts.len() - 1] <= lo + 1,
            "{name}: {counts:?}"
        );
    }

    Checked {
        tiles: m.tiles.len(),
        core: m.tiles.iter().map(|t| t.core_points).sum(),
        buffer: m.tiles.iter().map(|t| t.buffer_points).sum(),
    }
}

/// A buffer of `frac` of the input's smaller horizontal extent.
pub fn buffer_for(m_in: &PointRecords, frac: f64) -> f64 {
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for p in m_in.iter() {
        x0 = x0.min(p.x());
        y0 = y0.min(p.y());
        x1 = x1.max(p.x());
        y1 = y1.max(p.y());
    }
    ((x1 - x0).min(y1 - y0) * frac).max(0.0)
}
