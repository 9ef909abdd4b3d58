//! Mosaics of any size (issue 14, item 4): written by bands of rows, so peak memory does not
//! grow with the mosaic's height; the COG and the VRT outputs read back (through GDAL for
//! the VRT) to the first-input-wins union of the tiles; GDAL's COG validator accepts the COG.

use std::path::Path;
use std::process::Command;

use cloud::{Store, TaskStatus};
use cog::{Crs, GeoTransform, Raster};
use ndarray::Array2;

const BIN: &str = env!("CARGO_BIN_EXE_terrain");
const NODATA: f32 = -9999.0;

/// A `w`×`h` tile whose top-left pixel is (`col`, `row`) of a 2 m lattice at (500 000,
/// 4 300 000), EPSG:25830: smooth values of the global pixel position, with a nodata hole
/// where `hole` says.
fn tile(
    col: u64,
    row: u64,
    w: usize,
    h: usize,
    hole: impl Fn(usize, usize) -> bool,
) -> Raster<f32> {
    let data = Array2::from_shape_fn((h, w), |(i, j)| {
        if hole(i, j) {
            NODATA
        } else {
            let (gr, gc) = ((row as usize + i) as f32, (col as usize + j) as f32);
            100.0 + (gr * 0.013).sin() * 20.0 + gc * 0.01
        }
    });
    Raster {
        data,
        transform: GeoTransform::north_up(
            500_000.0 + 2.0 * col as f64,
            4_300_000.0 - 2.0 * row as f64,
            2.0,
        ),
        crs: Crs::epsg(25830),
        nodata: Some(NODATA),
    }
}

fn write(store: &Store, path: &str, r: &Raster<f32>) {
    cog::write_cog(store, path, r, &cog::CogWriteOptions::default()).unwrap();
}

/// Runs a mosaic task through `terrain task` and returns its status (with its peak RSS).
fn mosaic_task(dir: &Path, id: &str, inputs: &[String], output: &str, format: &str) -> TaskStatus {
    let task = serde_json::json!({
        "id": id,
        "stage": "terrain",
        "params": {"mosaic": {"inputs": inputs, "output": output, "format": format}}
    });
    let file = dir.join(format!("{id}.json"));
    std::fs::write(&file, task.to_string()).unwrap();
    let o = Command::new(BIN)
        .args(["task", file.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let status = Path::new(output)
        .parent()
        .unwrap()
        .join(format!("status/{id}.json"));
    serde_json::from_slice(&std::fs::read(status).unwrap()).unwrap()
}

#[test]
fn cog_and_vrt_mosaics_are_the_first_wins_union_as_gdal_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let store = Store::from_env();
    // Three tiles off the 512 block grid, overlapping, with holes: a (0,0) 700×600 with a
    // hole; b (650, 100) 500×900; c (-30, 580) 400×300, west of a (the origin moves).
    let a = tile(30, 0, 700, 600, |i, j| {
        (200..260).contains(&i) && (600..700).contains(&j)
    });
    let b = tile(680, 100, 500, 900, |i, _| i % 97 == 0);
    let c = tile(0, 580, 400, 300, |_, _| false);
    let inputs: Vec<String> = ["a", "b", "c"]
        .iter()
        .zip([&a, &b, &c])
        .map(|(n, r)| {
            let p = format!("{d}/{n}.tif");
            write(&store, &p, r);
            p
        })
        .collect();
    // The expected union: first tile with a value wins.
    let (w, h) = (1180usize, 1000usize);
    let mut want = Array2::from_elem((h, w), NODATA);
    for (r, (c0, r0)) in [&a, &b, &c]
        .iter()
        .zip([(30usize, 0usize), (680, 100), (0, 580)])
    {
        for ((i, j), &v) in r.data.indexed_iter() {
            if v != NODATA && want[(r0 + i, c0 + j)] == NODATA {
                want[(r0 + i, c0 + j)] = v;
            }
        }
    }
    let out = format!("{d}/m.tif");
    mosaic_task(dir.path(), "m", &inputs, &out, "cog");
    let got: Raster<f32> = cog::read_band(&store, &out, 1).unwrap();
    assert_eq!(
        got.transform.0,
        [500_000.0, 2.0, 0.0, 4_300_000.0, 0.0, -2.0]
    );
    assert_eq!(got.crs.epsg, Some(25830));
    assert_eq!(got.nodata, Some(NODATA));
    assert!(got.data == want, "the COG mosaic is not the union");
    // GDAL's validator accepts it, overviews included.
    let py = "from osgeo_utils.samples.validate_cloud_optimized_geotiff import validate\n\
              import sys\nw, e, d = validate(sys.argv[1], full_check=True)\nprint(len(e), d.get('ifd_offsets', {}))";
    let o = Command::new("/usr/bin/python3")
        .args(["-c", py, &out])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.starts_with("0 "),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("overview_1"), "{text}");

    // The VRT: GDAL reads the same pixels and georeferencing without any copy.
    let vrt = format!("{d}/m.vrt");
    mosaic_task(dir.path(), "v", &inputs, &vrt, "vrt");
    let from_vrt = format!("{d}/from_vrt.tif");
    let o = Command::new("gdal_translate")
        .args(["-q", &vrt, &from_vrt])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let g: Raster<f32> = cog::read_band(&store, &from_vrt, 1).unwrap();
    assert_eq!(g.transform, got.transform);
    assert_eq!(g.crs.epsg, Some(25830), "{:?}", g.crs);
    assert_eq!(g.nodata, Some(NODATA));
    assert!(g.data == want, "GDAL reads another mosaic from the VRT");
    // The VRT names its tiles relative to itself: the folder can move.
    let text = std::fs::read_to_string(&vrt).unwrap();
    assert!(text.contains("relativeToVRT=\"1\">a.tif<"), "{text}");

    // A VRT output must say so, and a .vrt must be a VRT.
    for (output, format) in [(format!("{d}/x.tif"), "vrt"), (format!("{d}/x.vrt"), "cog")] {
        let o = Command::new(BIN)
            .args(["mosaic", &inputs[0], "-o", &output, "--format", format])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{output} {format}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(".vrt"));
    }
}

#[test]
fn mosaic_memory_does_not_grow_with_its_height() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let store = Store::from_env();
    // A column of 1024×1024 tiles (4 MiB each as float32).
    let tiles: Vec<String> = (0..12u64)
        .map(|k| {
            let p = format!("{d}/t{k:02}.tif");
            write(
                &store,
                &p,
                &tile(0, 1024 * k, 1024, 1024, |i, j| (i + j) % 501 == 0),
            );
            p
        })
        .collect();
    let small = mosaic_task(
        dir.path(),
        "small",
        &tiles[..2],
        &format!("{d}/small.tif"),
        "cog",
    );
    let tall = mosaic_task(dir.path(), "tall", &tiles, &format!("{d}/tall.tif"), "cog");
    let (s, t) = (small.peak_rss_bytes.unwrap(), tall.peak_rss_bytes.unwrap());
    const MIB: u64 = 1 << 20;
    eprintln!(
        "mosaic peak RSS: 2 tiles {} MiB, 12 tiles {} MiB",
        s / MIB,
        t / MIB
    );
    // Six times the rows (48 MiB of pixels, 40 MiB more than the small one): the peak
    // stays within a few bands of rows of the small mosaic's.
    assert!(
        t < s + 12 * MIB,
        "peak RSS {} MiB for 12 tiles, {} MiB for 2",
        t / MIB,
        s / MIB
    );
    let m: Raster<f32> = cog::read_band(&store, &format!("{d}/tall.tif"), 1).unwrap();
    assert_eq!(m.data.dim(), (12 * 1024, 1024));
    let last: Raster<f32> = cog::read_band(&store, &tiles[11], 1).unwrap();
    assert!(m.data.slice(ndarray::s![11 * 1024.., ..]) == last.data);
}
