//! Bad inputs and bad parameters give a clear error naming the file and the problem, never a
//! panic, and leave no output that looks complete.

use std::path::{Path, PathBuf};

use crate::common::data;
use cloud::{Classify, ErrorKind};
use lidar_partitioner::{Params, PartitionError};

fn bytes(rel: &str) -> Vec<u8> {
    std::fs::read(data(rel)).unwrap()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Writes `content` as `name` in a new directory and partitions it into `<dir>/out`;
/// returns the error and checks that nothing was written.
fn fails(name: &str, content: &[u8], params: &Params) -> (PartitionError, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join(name);
    std::fs::write(&input, content).unwrap();
    let out = dir.path().join("out");
    let err = lidar_partitioner::partition(input.to_str().unwrap(), out.to_str().unwrap(), params)
        .expect_err("the partition should fail");
    assert_no_output(&out);
    (err, input)
}

fn assert_no_output(out: &Path) {
    if out.exists() {
        let left: Vec<_> = std::fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "output left behind: {left:?}");
    }
}

fn expect(err: &PartitionError, input: &Path, words: &[&str], kind: ErrorKind) {
    let msg = err.to_string();
    println!("{msg}");
    assert!(
        msg.contains(input.to_str().unwrap()),
        "the error does not name the file: {msg}"
    );
    for w in words {
        assert!(msg.contains(w), "{msg:?} lacks {w:?}");
    }
    assert_eq!(err.kind(), kind, "{msg}");
}

fn params() -> Params {
    Params::capacity(20_000, 5.0)
}

#[test]
fn truncated_las() {
    let b = bytes("lidar/pdal/autzen_trim.las");
    let (e, p) = fails("cut.las", &b[..2_000_000], &params());
    expect(
        &e,
        &p,
        &["truncated file or wrong point count", "110000 points"],
        ErrorKind::InvalidInput,
    );
    let (e, p) = fails("head.las", &b[..150], &params());
    expect(&e, &p, &["too short"], ErrorKind::InvalidInput);
    let (e, p) = fails("vlrs.las", &b[..300], &params());
    expect(&e, &p, &["truncated"], ErrorKind::InvalidInput);
    let (e, p) = fails("empty.las", &[], &params());
    expect(&e, &p, &["too short"], ErrorKind::InvalidInput);
    let (e, p) = fails("text.las", &b"x,y,z\n1,2,3\n".repeat(40), &params());
    expect(&e, &p, &["not a LAS/LAZ file"], ErrorKind::InvalidInput);
}

#[test]
fn truncated_laz() {
    for rel in [
        "lidar/pdal/autzen_trim.laz",
        "lidar/laspy/1_4_w_evlr.laz",
        "lidar/laspy/simple.copc.laz",
    ] {
        let b = bytes(rel);
        let (e, p) = fails("cut.laz", &b[..b.len() * 2 / 3], &params());
        expect(&e, &p, &["truncated"], ErrorKind::InvalidInput);
    }
}

#[test]
fn header_count_larger_than_the_data() {
    let mut b = bytes("lidar/pdal/autzen_trim.las");
    b[107..111].copy_from_slice(&200_000u32.to_le_bytes());
    let (e, p) = fails("count.las", &b, &params());
    expect(
        &e,
        &p,
        &["200000 points", "truncated file or wrong point count"],
        ErrorKind::InvalidInput,
    );

    // LAS 1.4: the 64-bit count.
    let mut b = bytes("lidar/pdal/autzen_trim_7.las");
    b[247..255].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let (e, p) = fails("count14.las", &b, &params());
    expect(&e, &p, &["1099511627776 points"], ErrorKind::InvalidInput);

    // LAZ: the chunk table does not hold that many points.
    let mut b = bytes("lidar/pdal/autzen_trim.laz");
    b[107..111].copy_from_slice(&5_000_000u32.to_le_bytes());
    let (e, p) = fails("count.laz", &b, &params());
    expect(
        &e,
        &p,
        &["chunk table", "5000000 points"],
        ErrorKind::InvalidInput,
    );
}

#[test]
fn unknown_point_format() {
    let mut b = bytes("lidar/pdal/autzen_trim.las");
    b[104] = 11;
    let (e, p) = fails("pf11.las", &b, &params());
    expect(
        &e,
        &p,
        &["unknown point data record format 11"],
        ErrorKind::InvalidInput,
    );
    b[104] = 42;
    let (e, p) = fails("pf42.las", &b, &params());
    expect(
        &e,
        &p,
        &["unknown point data record format 42"],
        ErrorKind::InvalidInput,
    );
    // A record length too short for the format.
    let mut b = bytes("lidar/pdal/autzen_trim.las");
    b[105..107].copy_from_slice(&20u16.to_le_bytes());
    let (e, p) = fails("short.las", &b, &params());
    expect(&e, &p, &["record length 20"], ErrorKind::InvalidInput);
    // LAS 2.0.
    let mut b = bytes("lidar/pdal/autzen_trim.las");
    b[24] = 2;
    let (e, p) = fails("v2.las", &b, &params());
    expect(
        &e,
        &p,
        &["unsupported LAS version 2.2"],
        ErrorKind::InvalidInput,
    );
}

#[test]
fn corrupt_laz_chunk_table() {
    for rel in [
        "lidar/pdal/autzen_trim.laz",
        "lidar/laspy/1_4_w_evlr.laz",
        "cnig/murcia_tiles/out_1_-9.laz",
    ] {
        let orig = bytes(rel);
        let data_start = u32_at(&orig, 96) as usize;
        let table = u64_at(&orig, data_start) as usize;

        // Entries garbled (the table ends at the first EVLR, if any).
        let evlr = if orig[25] >= 4 && u32_at(&orig, 243) > 0 {
            u64_at(&orig, 235) as usize
        } else {
            orig.len()
        };
        let mut b = orig.clone();
        for x in &mut b[table + 8..(table + 40).min(evlr)] {
            *x ^= 0x5A;
        }
        let (e, p) = fails("entries.laz", &b, &params());
        expect(
            &e,
            &p,
            &["corrupt LAZ chunk table"],
            ErrorKind::InvalidInput,
        );

        // A chunk count no file could hold.
        let mut b = orig.clone();
        b[table + 4..table + 8].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
        let (e, p) = fails("count.laz", &b, &params());
        expect(
            &e,
            &p,
            &["corrupt LAZ chunk table", "2147483647 chunks"],
            ErrorKind::InvalidInput,
        );

        // The offset to the table points past the end, and inside the header.
        let mut b = orig.clone();
        b[data_start..data_start + 8].copy_from_slice(&(orig.len() as u64 * 2).to_le_bytes());
        let (e, p) = fails("offset.laz", &b, &params());
        expect(&e, &p, &["chunk table"], ErrorKind::InvalidInput);
        let mut b = orig.clone();
        b[data_start..data_start + 8].copy_from_slice(&(data_start as u64 + 9).to_le_bytes());
        let (e, p) = fails("offset2.laz", &b, &params());
        expect(
            &e,
            &p,
            &["corrupt LAZ chunk table"],
            ErrorKind::InvalidInput,
        );
    }
}

#[test]
fn corrupt_laz_chunk_data() {
    // Layered chunks (format 6): the layer sizes of the first chunk say more than it holds.
    let orig = bytes("lidar/laspy/1_4_w_evlr.laz");
    let data_start = u32_at(&orig, 96) as usize;
    let rec = u16::from_le_bytes([orig[105], orig[106]]) as usize;
    let mut b = orig.clone();
    let sizes = data_start + 8 + rec + 4;
    b[sizes + 4..sizes + 8].copy_from_slice(&0x7FFF_0000u32.to_le_bytes());
    let (e, p) = fails("layers.laz", &b, &params());
    expect(&e, &p, &["corrupt LAZ chunk 0"], ErrorKind::InvalidInput);

    // A missing LASzip VLR on compressed data.
    let mut b = bytes("lidar/pdal/autzen_trim.laz");
    let at = b.windows(14).position(|w| w == b"laszip encoded").unwrap();
    b[at..at + 6].copy_from_slice(b"nozip!");
    let (e, p) = fails("novlr.laz", &b, &params());
    expect(&e, &p, &["no LASzip VLR"], ErrorKind::InvalidInput);
}

#[test]
fn bad_parameters() {
    let input = data("lidar/pdal/autzen_trim.las");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = |p: &Params| {
        lidar_partitioner::partition(input.to_str().unwrap(), out.to_str().unwrap(), p).unwrap_err()
    };
    let cases: Vec<(Params, &str)> = vec![
        (Params::capacity(0, 5.0), "capacity must be at least 1"),
        (
            Params::capacity(100, -5.0),
            "buffer_m must be a non-negative number",
        ),
        (
            Params::capacity(100, f64::NAN),
            "buffer_m must be a non-negative number",
        ),
        (
            Params {
                target_mb: Some(10.0),
                ..Params::capacity(100, 1.0)
            },
            "either capacity or target_mb",
        ),
        (
            Params {
                capacity: None,
                ..Params::capacity(100, 1.0)
            },
            "give capacity",
        ),
        (
            Params {
                capacity: None,
                target_mb: Some(-1.0),
                ..Params::capacity(100, 1.0)
            },
            "target_mb must be a positive number",
        ),
        (
            Params {
                max_memory_mb: Some(0),
                ..Params::capacity(100, 1.0)
            },
            "max_memory_mb",
        ),
    ];
    for (p, words) in cases {
        let e = run(&p);
        assert!(e.to_string().contains(words), "{e}");
        assert_eq!(e.kind(), ErrorKind::InvalidTask);
        assert_no_output(&out);
    }
    // Missing input.
    let e = lidar_partitioner::partition("/nonexistent/x.las", out.to_str().unwrap(), &params())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("/nonexistent/x.las"), "{e}");
}

#[test]
fn no_points() {
    let mut b = bytes("lidar/pdal/autzen_trim.las");
    let start = u32_at(&b, 96) as usize;
    b.truncate(start);
    b[107..111].copy_from_slice(&0u32.to_le_bytes());
    let (e, p) = fails("none.las", &b, &params());
    expect(&e, &p, &["no points"], ErrorKind::InvalidInput);
}

/// A failure after some tiles were written removes them, and a previous run's manifest is
/// gone: nothing in the directory looks like a finished partition.
#[test]
fn failure_mid_write_leaves_nothing_complete() {
    let input = data("lidar/pdal/autzen_trim.las");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("autzen_trim-0003.las")).unwrap();
    std::fs::write(out.join("partitions.json"), b"{\"stale\": true}").unwrap();
    let e = lidar_partitioner::partition(input.to_str().unwrap(), out.to_str().unwrap(), &params())
        .unwrap_err();
    println!("{e}");
    assert!(e.to_string().contains("autzen_trim-0003.las"), "{e}");
    let mut left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec!["autzen_trim-0003.las".to_string()],
        "only the blocking directory remains"
    );
}
