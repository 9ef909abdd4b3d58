//! Benchmark of the `lidar-partitioner` binary against its peers, whole processes timed from
//! outside, runs alternated (A B A B ...) so that a drifting machine affects both, medians
//! reported with wall time and peak RSS (`/usr/bin/time -f "%e %M"`).
//!
//! Data: the 16 M-point uneven-density LAS 1.4 format-6 tile of `../shared/bench/gen_data.py`
//! and its LAZ (`python3 ../shared/bench/gen_data.py --out /tmp/bench-data --only las`).
//! Peers: `../shared/bench/partition.py` (NumPy + laspy port of CloudButton's partitioner),
//! `cp` and `io_floor.py laspy` (read + write with laspy).
//!
//!     cargo bench -p lidar-partitioner --bench partition -- [RUNS]
//!
//! Environment: `LP_BENCH_DATA` (default `/tmp/bench-data`), `LP_BENCH_OUT` (default
//! `$LP_BENCH_DATA/bench-out`; outputs are deleted after each run), `LP_BENCH_CASES`
//! (comma-separated subset of `las,laz,las-bounded,laz-bounded,las-faithful`).

use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    wall: f64,
    peak_mib: f64,
}

fn timed(cmd: &[String], out: &Path) -> Run {
    let _ = std::fs::remove_dir_all(out);
    let _ = std::fs::remove_file(out.with_extension("laz"));
    let o = Command::new("/usr/bin/time")
        .args(["-f", "TIME %e %M"])
        .args(cmd)
        .output()
        .expect("/usr/bin/time (GNU time) is needed");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{cmd:?} failed:\n{err}");
    let line = err
        .lines()
        .rev()
        .find(|l| l.starts_with("TIME "))
        .expect("no timing line");
    let f: Vec<f64> = line[5..]
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(f64::NAN))
        .collect();
    let _ = std::fs::remove_dir_all(out);
    Run {
        wall: f[0],
        peak_mib: f[1] / 1024.0,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let data =
        PathBuf::from(std::env::var("LP_BENCH_DATA").unwrap_or_else(|_| "/tmp/bench-data".into()));
    let las = data.join("cloud.las");
    let laz = data.join("cloud.laz");
    if !las.exists() || !laz.exists() {
        eprintln!(
            "benchmark data missing: run `python3 ../shared/bench/gen_data.py --out {} --only las`",
            data.display()
        );
        return;
    }
    let out = PathBuf::from(
        std::env::var("LP_BENCH_OUT")
            .unwrap_or_else(|_| data.join("bench-out").display().to_string()),
    );
    let peer_dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/bench"));
    let peer = peer_dir.join("partition.py").display().to_string();
    let floor = peer_dir.join("io_floor.py").display().to_string();
    let ours = env!("CARGO_BIN_EXE_lidar-partitioner");
    let o_ours = out.join("ours");
    let o_peer = out.join("peer");
    let cases = std::env::var("LP_BENCH_CASES")
        .unwrap_or_else(|_| "las,laz,las-bounded,laz-bounded".into());
    let (las_s, laz_s) = (las.display().to_string(), laz.display().to_string());
    let (oo, op) = (o_ours.display().to_string(), o_peer.display().to_string());
    let common = ["--capacity", "1600000", "--buffer", "10"];
    let raw_mib = 16_000_000.0 * 30.0 / 1048576.0;

    println!(
        "{:<14} {:>9} {:>9} {:>8} {:>10} {:>10} {:>9} {:>9}",
        "case", "ours s", "peer s", "peer/us", "ours MiB", "peer MiB", "cp s", "io s"
    );
    for case in cases.split(',') {
        let (input, extra): (&String, &[&str]) = match case {
            "las" | "las-faithful" => (&las_s, &[]),
            "laz" => (&laz_s, &[]),
            "las-bounded" => (&las_s, &["--max-memory-mb", "256"]),
            "laz-bounded" => (&laz_s, &["--max-memory-mb", "256"]),
            other => panic!("unknown case {other}"),
        };
        let mut a = s(&[ours, input, &oo]);
        a.extend(s(&common));
        a.extend(s(extra));
        let mut b = s(&["python3", &peer, input, &op]);
        b.extend(s(&common));
        if case == "las-faithful" {
            b.push("--faithful".into());
        }
        let ext = if input.ends_with(".laz") {
            "laz"
        } else {
            "las"
        };
        let cp_to = out.join(format!("copy.{ext}"));
        let io_to = out.join(format!("io.{ext}"));
        std::fs::create_dir_all(&out).ok();
        let cp = s(&["cp", input, &cp_to.display().to_string()]);
        let io = s(&[
            "python3",
            &floor,
            "laspy",
            input,
            &io_to.display().to_string(),
        ]);
        let (mut ta, mut tb, mut ma, mut mb, mut tc, mut ti) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..runs {
            let r = timed(&a, &o_ours);
            ta.push(r.wall);
            ma.push(r.peak_mib);
            let r = timed(&b, &o_peer);
            tb.push(r.wall);
            mb.push(r.peak_mib);
            tc.push(timed(&cp, &cp_to).wall);
            let _ = std::fs::remove_file(&cp_to);
            ti.push(timed(&io, &io_to).wall);
            let _ = std::fs::remove_file(&io_to);
        }
        let (a_s, b_s) = (median(ta), median(tb));
        let a_m = median(ma);
        println!(
            "{case:<14} {a_s:>9.2} {b_s:>9.2} {:>8.2} {a_m:>10.0} {:>10.0} {:>9.2} {:>9.2}   (ours peak {:.2} x the {raw_mib:.0} MiB of point records)",
            b_s / a_s,
            median(mb),
            median(tc),
            median(ti),
            a_m / raw_mib
        );
    }
}
