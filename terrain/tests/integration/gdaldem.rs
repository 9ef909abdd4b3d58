//! Slope and aspect against GDAL 3.6.2 `gdaldem`: the published per-pixel references of
//! `dem-hills.tiff`, and gdaldem itself run here on two more DEMs (Int16 with a −9999
//! nodata, and Float64 with NaN nodata in EPSG:4326).

use std::path::Path;
use std::process::Command;

use cloud::Store;
use cog::Raster;
use terrain::derivatives::{AspectOptions, GradientAlg, SlopeOptions, aspect, slope};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/raster");

fn read(path: &str) -> Raster<f32> {
    cog::read_band::<f32>(&Store::from_env(), path, 1).unwrap()
}

/// Compares two rasters pixel by pixel: nodata in the same places, values within `tol`.
/// Returns (max abs difference, number of bit-identical pixels).
fn compare(ours: &Raster<f32>, want: &Raster<f32>, what: &str, tol: f32) -> (f32, usize) {
    assert_eq!(ours.data.dim(), want.data.dim(), "{what}: size");
    assert_eq!(ours.nodata, want.nodata, "{what}: nodata value");
    let mut max = 0.0f32;
    let mut same = 0;
    for ((idx, &a), &b) in ours.data.indexed_iter().zip(want.data.iter()) {
        let (na, nb) = (ours.is_nodata(a), want.is_nodata(b));
        assert_eq!(
            na, nb,
            "{what}: nodata mismatch at {idx:?}: ours {a}, gdaldem {b}"
        );
        if a.to_bits() == b.to_bits() {
            same += 1;
        }
        if !na {
            let d = (a - b).abs();
            assert!(d <= tol, "{what}: {idx:?}: ours {a}, gdaldem {b}");
            max = max.max(d);
        }
    }
    eprintln!(
        "{what}: max |diff| {max:e}, {same} of {} pixels bit-identical",
        ours.data.len()
    );
    (max, same)
}

#[test]
fn dem_hills_equals_published_gdaldem_outputs() {
    let dem = read(&format!("{DATA}/georust-gdal/dem-hills.tiff"));
    let exp = format!("{DATA}/expected_gdaldem_gdal362");

    // gdaldem slope -alg Horn -s 98473.2947 -p (no -compute_edges)
    let s = slope(
        &dem,
        &SlopeOptions {
            alg: GradientAlg::Horn,
            percent: true,
            scale: 98473.2947,
            compute_edges: false,
        },
    )
    .unwrap();
    let want = read(&format!(
        "{exp}/dem_hills_slope_horn_percent_s98473.2947.tif"
    ));
    let (_, same) = compare(&s, &want, "slope % s98473.2947", 1e-4);
    assert_eq!(same, s.data.len(), "every pixel bit-identical");

    // gdaldem slope -alg Horn -s 111120 (degrees)
    let s = slope(
        &dem,
        &SlopeOptions {
            alg: GradientAlg::Horn,
            percent: false,
            scale: 111120.0,
            compute_edges: false,
        },
    )
    .unwrap();
    let want = read(&format!("{exp}/dem_hills_slope_horn_degrees_s111120.tif"));
    let (_, same) = compare(&s, &want, "slope degrees s111120", 1e-4);
    assert_eq!(same, s.data.len());

    // gdaldem aspect -alg Horn -zero_for_flat
    let a = aspect(
        &dem,
        &AspectOptions {
            alg: GradientAlg::Horn,
            zero_for_flat: true,
            trigonometric: false,
            compute_edges: false,
        },
    )
    .unwrap();
    let want = read(&format!("{exp}/dem_hills_aspect_horn_zero_for_flat.tif"));
    let (_, same) = compare(&a, &want, "aspect zero_for_flat", 1e-4);
    assert_eq!(same, a.data.len());

    // The published statistics (georust/gdal tests) of the percent slope.
    let s = slope(
        &dem,
        &SlopeOptions {
            percent: true,
            scale: 98473.2947,
            compute_edges: false,
            ..Default::default()
        },
    )
    .unwrap();
    let valid: Vec<f64> = s
        .data
        .iter()
        .filter(|&&v| v != -9999.0)
        .map(|&v| v as f64)
        .collect();
    let max = valid.iter().cloned().fold(f64::MIN, f64::max);
    let mean = valid.iter().sum::<f64>() / valid.len() as f64;
    assert!((max - 65.440422058105).abs() < 1e-9, "{max}");
    assert!((mean - 6.1710967990449).abs() < 1e-9, "{mean}");
}

fn gdaldem() -> String {
    // gdaldem --version prints the version but exits 1 in GDAL 3.6; spawning is the test.
    let ok = Command::new("gdaldem")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("GDAL"))
        .unwrap_or(false);
    assert!(
        ok,
        "gdaldem not found: install Debian's gdal-bin (listed in scripts/apt-packages.txt)"
    );
    "gdaldem".to_string()
}

fn run_gdaldem(args: &[&str], input: &str, out: &Path) -> Raster<f32> {
    let mut cmd = Command::new(gdaldem());
    cmd.arg(args[0])
        .arg(input)
        .arg(out)
        .args(&args[1..])
        .arg("-q");
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "gdaldem {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    read(out.to_str().unwrap())
}

/// gdaldem run here, on an Int16 DEM with nodata (rio-cogeo image_nodata.tif, 300 m pixels)
/// and a Float64 one with NaN nodata in EPSG:4326 (image_nan.tif), every option combination
/// the terrain CLI offers.
#[test]
fn gdaldem_run_here_on_other_dems() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, &str)> = vec![
        ("rio-cogeo/image_nodata.tif", "1"),
        ("rio-cogeo/image_nan.tif", "111120"),
    ];
    for (file, scale) in cases {
        let input = format!("{DATA}/{file}");
        let dem = read(&input);
        let sc: f64 = scale.parse().unwrap();
        for alg in [GradientAlg::Horn, GradientAlg::ZevenbergenThorne] {
            let alg_name = match alg {
                GradientAlg::Horn => "Horn",
                GradientAlg::ZevenbergenThorne => "ZevenbergenThorne",
            };
            for edges in [true, false] {
                for percent in [false, true] {
                    let mut args = vec!["slope", "-alg", alg_name, "-s", scale];
                    if edges {
                        args.push("-compute_edges");
                    }
                    if percent {
                        args.push("-p");
                    }
                    let out = dir.path().join("slope.tif");
                    let want = run_gdaldem(&args, &input, &out);
                    let ours = slope(
                        &dem,
                        &SlopeOptions {
                            alg,
                            percent,
                            scale: sc,
                            compute_edges: edges,
                        },
                    )
                    .unwrap();
                    let (_, same) = compare(&ours, &want, &format!("{file} {args:?}"), 1e-4);
                    assert_eq!(same, ours.data.len(), "{file} {args:?}");
                }
                for zero in [false, true] {
                    let mut args = vec!["aspect", "-alg", alg_name];
                    if edges {
                        args.push("-compute_edges");
                    }
                    if zero {
                        args.push("-zero_for_flat");
                    }
                    let out = dir.path().join("aspect.tif");
                    let want = run_gdaldem(&args, &input, &out);
                    let ours = aspect(
                        &dem,
                        &AspectOptions {
                            alg,
                            zero_for_flat: zero,
                            trigonometric: false,
                            compute_edges: edges,
                        },
                    )
                    .unwrap();
                    let (_, same) = compare(&ours, &want, &format!("{file} {args:?}"), 1e-4);
                    assert_eq!(same, ours.data.len(), "{file} {args:?}");
                }
            }
        }
        // -trigonometric
        let out = dir.path().join("trig.tif");
        let want = run_gdaldem(
            &["aspect", "-trigonometric", "-compute_edges"],
            &input,
            &out,
        );
        let ours = aspect(
            &dem,
            &AspectOptions {
                trigonometric: true,
                compute_edges: true,
                ..Default::default()
            },
        )
        .unwrap();
        let (_, same) = compare(&ours, &want, &format!("{file} trigonometric"), 1e-4);
        assert_eq!(same, ours.data.len());
    }
}

/// Issue 17, item 2: `terrain slope` / `terrain aspect` stream the DEM by bands of rows.
/// On a DEM four bands tall (256-row blocks), with nodata holes on band boundaries, the
/// streamed output equals the whole-image computation bit for bit, and gdaldem's values.
#[test]
fn banded_slope_and_aspect_equal_the_whole_image_and_gdaldem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let store = Store::from_env();
    let (w, h) = (300usize, 1100usize);
    let data = ndarray::Array2::from_shape_fn((h, w), |(i, j)| {
        let hole = [255, 256, 511, 512, 767].contains(&i) && (j % 7 == 0 || j > 290);
        if hole {
            -9999.0
        } else {
            let (x, y) = (j as f32, i as f32);
            400.0 + 60.0 * (x / 37.0).sin() * (y / 53.0).cos() + 0.01 * x * y / 10.0
        }
    });
    let dem = Raster {
        data,
        transform: cog::GeoTransform::north_up(600_000.0, 4_200_000.0, 5.0),
        crs: cog::Crs::epsg(25830),
        nodata: Some(-9999.0),
    };
    let dem_path = format!("{d}/dem.tif");
    cog::write_cog(
        &store,
        &dem_path,
        &dem,
        &cog::CogWriteOptions {
            blocksize: 256,
            ..Default::default()
        },
    )
    .unwrap();
    let terrain = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_terrain"))
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let gdaldem = |args: &[&str]| {
        let o = Command::new("gdaldem").args(args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (s_path, a_path) = (format!("{d}/slope.tif"), format!("{d}/aspect.tif"));
    terrain(&["slope", &dem_path, &s_path]);
    terrain(&["aspect", &dem_path, &a_path]);
    let whole_s = slope(&dem, &SlopeOptions::default()).unwrap();
    // The CLI computes edges unless told not to (gdaldem -compute_edges).
    let whole_a = aspect(
        &dem,
        &AspectOptions {
            compute_edges: true,
            ..Default::default()
        },
    )
    .unwrap();
    let (got_s, got_a) = (read(&s_path), read(&a_path));
    let same = |a: &Raster<f32>, b: &Raster<f32>| {
        a.data.dim() == b.data.dim()
            && a.data
                .iter()
                .zip(b.data.iter())
                .all(|(x, y)| x.to_bits() == y.to_bits())
    };
    assert!(
        same(&got_s, &whole_s),
        "banded slope differs from the whole image's"
    );
    assert!(
        same(&got_a, &whole_a),
        "banded aspect differs from the whole image's"
    );
    assert_eq!(got_s.transform, dem.transform);
    // gdaldem on the same file, edges computed as ours are by default.
    let (gs, ga) = (
        format!("{d}/gdal_slope.tif"),
        format!("{d}/gdal_aspect.tif"),
    );
    gdaldem(&["slope", "-q", "-compute_edges", &dem_path, &gs]);
    gdaldem(&["aspect", "-q", "-compute_edges", &dem_path, &ga]);
    compare(&got_s, &read(&gs), "banded slope vs gdaldem", 0.0);
    compare(&got_a, &read(&ga), "banded aspect vs gdaldem", 0.0);
    // Plain strips, like gdaldem's own output: the same pixels, the same georeferencing.
    let strips = format!("{d}/slope_strips.tif");
    terrain(&["slope", &dem_path, &strips, "--layout", "strips"]);
    let st = read(&strips);
    assert!(same(&st, &got_s) && st.transform == got_s.transform && st.nodata == got_s.nodata);
    let info = cog::CogReader::open(&store, &strips)
        .unwrap()
        .info()
        .clone();
    assert!(!info.tiled && info.compression == "NONE" && info.overviews.is_empty());
    assert_eq!(info.crs.epsg, Some(25830));
    // Both in one pass: the same files, byte for byte.
    let (s2, a2) = (format!("{d}/slope2.tif"), format!("{d}/aspect2.tif"));
    terrain(&["slope-aspect", &dem_path, "--slope", &s2, "--aspect", &a2]);
    assert!(std::fs::read(&s2).unwrap() == std::fs::read(&s_path).unwrap());
    assert!(std::fs::read(&a2).unwrap() == std::fs::read(&a_path).unwrap());
}
