//! Bad input: clear errors naming the file, or documented empty outputs — never a panic.

use std::path::Path;

use cloud::{Classify, Ctx, ErrorKind, ProgressMode, Store};
use las::point::{Classification, Format};
use terrain::stage::{ModelsParams, RasterOutput, SlopeParams, run_models, run_slope};
use terrain::{ModelOptions, NODATA, Product, TerrainError};

fn ctx() -> Ctx {
    Ctx::new(Store::from_env()).with_progress(ProgressMode::Silent)
}

/// (x, y, z, class, return number, number of returns)
type Pt = (f64, f64, f64, u8, u8, u8);

fn write_las(path: &Path, pts: &[Pt], wkt: Option<&str>) {
    let mut b = las::Builder::from((1, 4));
    b.point_format = Format::new(6).unwrap();
    let t = |offset| las::Transform {
        scale: 0.01,
        offset,
    };
    b.transforms = las::Vector {
        x: t(pts.first().map_or(0.0, |p| p.0.floor())),
        y: t(pts.first().map_or(0.0, |p| p.1.floor())),
        z: t(0.0),
    };
    let mut header = b.into_header().unwrap();
    if let Some(w) = wkt {
        header.set_wkt_crs(w.as_bytes().to_vec()).unwrap();
    }
    let mut w = las::Writer::from_path(path, header).unwrap();
    for &(x, y, z, c, rn, nr) in pts {
        w.write_point(las::Point {
            x,
            y,
            z,
            classification: Classification::new(c).unwrap(),
            return_number: rn,
            number_of_returns: nr,
            gps_time: Some(0.0),
            ..Default::default()
        })
        .unwrap();
    }
    w.close().unwrap();
}

fn models(
    input: &str,
    out: &str,
    options: ModelOptions,
) -> Result<terrain::stage::ModelsOutput, TerrainError> {
    run_models(
        &ModelsParams {
            input: input.to_string(),
            output: out.to_string(),
            name: None,
            epsg: None,
            options,
            ground_output: None,
            raster: RasterOutput::default(),
        },
        &ctx(),
    )
}

fn grid_points(n: usize, class: u8) -> Vec<Pt> {
    let mut v = Vec::new();
    for i in 0..n {
        for j in 0..n {
            let (x, y) = (500_000.0 + i as f64 * 0.7, 4_200_000.0 + j as f64 * 0.7);
            v.push((x, y, 100.0 + 0.01 * i as f64, class, 1, 1));
        }
    }
    v
}

#[test]
fn empty_and_garbage_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for (name, bytes) in [
        ("empty.las", &b""[..]),
        ("text.laz", &b"x y z\n1 2 3\n"[..]),
        ("zeros.las", &[0u8; 1000][..]),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = models(
            p.to_str().unwrap(),
            out.to_str().unwrap(),
            ModelOptions::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    }
    // Nothing was written.
    assert!(!out.exists());
}

#[test]
fn a_file_with_no_points() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("none.las");
    write_las(&p, &[], None);
    let e = models(
        p.to_str().unwrap(),
        dir.path().to_str().unwrap(),
        ModelOptions::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("no points") && e.to_string().contains("none.las"),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cut.las");
    write_las(&p, &grid_points(10, 2), None);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 300]).unwrap();
    let e = models(
        p.to_str().unwrap(),
        dir.path().to_str().unwrap(),
        ModelOptions::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("truncated") && e.to_string().contains("cut.las"),
        "{e}"
    );
}

#[test]
fn a_missing_file() {
    let e = models(
        "/nonexistent/dir/x.laz",
        "/tmp/never",
        ModelOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("/nonexistent/dir/x.laz"));
}

#[test]
fn no_ground_points_give_nodata_dem_products_and_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("veg.las");
    write_las(&p, &grid_points(20, 5), None);
    let out = dir.path().join("out");
    let r = models(
        p.to_str().unwrap(),
        out.to_str().unwrap(),
        ModelOptions {
            ground: terrain::GroundSource::Existing,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.stats.ground_points, 0);
    assert!(
        r.stats.warnings.iter().any(|w| w.contains("no ground")),
        "{:?}",
        r.stats.warnings
    );
    let store = Store::from_env();
    for p in Product::ALL {
        let raster = cog::read_band::<f32>(&store, &r.products[p.name()], 1).unwrap();
        let valid = raster.data.iter().filter(|&&v| v != NODATA).count();
        if p == Product::Dsm {
            assert!(valid > 0);
        } else {
            assert_eq!(valid, 0, "{}", p.name());
        }
    }
    // SMRF with every point in an ignored class: no candidate, same outcome.
    let q = dir.path().join("noise.las");
    write_las(&q, &grid_points(5, 7), None);
    let r = models(
        q.to_str().unwrap(),
        out.to_str().unwrap(),
        ModelOptions::default(),
    )
    .unwrap();
    assert_eq!(r.stats.smrf_candidates, 0);
    assert_eq!(r.stats.ground_points, 0);
}

#[test]
fn all_points_in_one_cell() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("one.las");
    let pts: Vec<Pt> = (0..20)
        .map(|k| {
            (
                10.1 + 0.04 * k as f64,
                20.2 + 0.03 * k as f64,
                5.0 + 0.01 * k as f64,
                2,
                1,
                1,
            )
        })
        .collect();
    write_las(&p, &pts, None);
    let r = models(
        p.to_str().unwrap(),
        dir.path().join("o").to_str().unwrap(),
        ModelOptions::default(),
    )
    .unwrap();
    assert_eq!((r.grid.cols, r.grid.rows), (1, 1));
    let store = Store::from_env();
    let dem = cog::read_band::<f32>(&store, &r.products["dem"], 1).unwrap();
    assert_eq!(dem.data.dim(), (1, 1));
    assert!(
        (5.0..5.2).contains(&dem.data[(0, 0)]),
        "{}",
        dem.data[(0, 0)]
    );
    assert_eq!(r.stats.ground_points, 20);
}

#[test]
fn bad_parameters_are_rejected_before_reading() {
    for options in [
        ModelOptions {
            resolution: 0.0,
            ..Default::default()
        },
        ModelOptions {
            resolution: -1.0,
            ..Default::default()
        },
        ModelOptions {
            resolution: f64::NAN,
            ..Default::default()
        },
        ModelOptions {
            products: vec![],
            ..Default::default()
        },
    ] {
        let e = models("/nonexistent.laz", "/tmp/x", options).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidTask, "{e}");
    }
    // A resolution so fine the grid would not fit a task.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("wide.las");
    write_las(
        &p,
        &[(0.0, 0.0, 1.0, 2, 1, 1), (10_000.0, 10_000.0, 1.0, 2, 1, 1)],
        None,
    );
    let e = models(
        p.to_str().unwrap(),
        dir.path().to_str().unwrap(),
        ModelOptions {
            resolution: 0.01,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ResourceLimit, "{e}");
}

#[test]
fn geographic_crs_needs_a_scale() {
    let dem = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/raster/georust-gdal/dem-hills.tiff"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("slope.tif");
    let mut params = SlopeParams {
        input: dem.to_string(),
        output: out.to_str().unwrap().to_string(),
        options: Default::default(),
        scale_given: false,
        raster: RasterOutput::default(),
    };
    let e = run_slope(&params, &ctx()).unwrap_err();
    assert!(
        e.to_string().contains("--scale") && e.to_string().contains("dem-hills.tiff"),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(!out.exists());
    params.options.scale = 111120.0;
    params.scale_given = true;
    run_slope(&params, &ctx()).unwrap();
    assert!(out.exists());

    // Point clouds in degrees are refused too.
    let p = dir.path().join("geo.las");
    let wkt = r#"GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433],AUTHORITY["EPSG","4326"]]"#;
    write_las(&p, &[(-3.1, 40.1, 600.0, 2, 1, 1)], Some(wkt));
    let e = models(
        p.to_str().unwrap(),
        dir.path().to_str().unwrap(),
        ModelOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("geographic"), "{e}");
}

#[test]
fn las_headers_the_partitioner_refuses_are_refused_here_too() {
    let store = Store::from_env();
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/lidar/laspy/simple.las"
    ))
    .unwrap();
    let patch = |at: usize, bytes: &[u8]| {
        let mut b = good.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        b
    };
    for (name, bytes, says) in [
        (
            "zero_scale.las",
            patch(131, &0.0f64.to_le_bytes()),
            "x scale factor 0",
        ),
        (
            "negative_scale.las",
            patch(147, &(-0.01f64).to_le_bytes()),
            "z scale factor -0.01",
        ),
        (
            "header_10.las",
            patch(94, &10u16.to_le_bytes()),
            "header size 10",
        ),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, &bytes).unwrap();
        let uri = p.to_str().unwrap();
        let e = terrain::las_io::read_las(&store, uri, false)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(name) && e.contains(says), "{e}");
        // The same message as the partitioner's: one validation.
        let pe = lidar_partitioner::LasFile::open(&store, uri)
            .err()
            .unwrap()
            .to_string();
        assert!(pe.contains(says), "{pe}");
    }
}

#[test]
fn grids_absurd_for_their_points_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = |input: &str, resolution: f64, smrf_cell: f64| {
        let mut options = ModelOptions {
            resolution,
            products: vec![Product::Dem],
            ..Default::default()
        };
        options.smrf.cell = smrf_cell;
        options.smrf.window = options.smrf.window.max(smrf_cell);
        let p = ModelsParams {
            input: input.to_string(),
            output: out.to_str().unwrap().to_string(),
            name: None,
            epsg: None,
            options,
            ground_output: None,
            raster: RasterOutput::default(),
        };
        run_models(&p, &ctx())
    };
    // 1 065 points over 3.4 × 4.6 km at 1 m (once > 10 min at 1.4 GB of inpainting).
    let copc = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/lidar/laspy/simple.copc.laz"
    );
    // Refused before any gridding or inpainting.
    let e = run(copc, 1.0, 1.0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let m = e.to_string();
    assert!(m.contains("simple.copc.laz") && m.contains("absurd"), "{m}");
    assert!(m.contains("--resolution"), "{m}");
    // A coarse output grid but SMRF's 1 m cells: the SMRF grid is the absurd one.
    let m = run(copc, 250.0, 1.0).unwrap_err().to_string();
    assert!(m.contains("--smrf-cell"), "{m}");
    // Two points 1 km apart (once > 100 s).
    let two = dir.path().join("two.las");
    write_las(
        &two,
        &[
            (500_000.0, 4_000_000.0, 10.0, 2, 1, 1),
            (501_000.0, 4_001_000.0, 12.0, 2, 1, 1),
        ],
        None,
    );
    let m = run(two.to_str().unwrap(), 1.0, 1.0)
        .unwrap_err()
        .to_string();
    assert!(m.contains("2 points over") && m.contains("absurd"), "{m}");
}
