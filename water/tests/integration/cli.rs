//! The `water` binary: `water et0 IN.csv -o OUT.csv` on the FAO-56 Brussels example and bad
//! rows; `water run` on a small generated DTM.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_water");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/water/");

#[test]
fn et0_table_mode() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let output = dir.path().join("out.csv");
    std::fs::write(
        &input,
        "date,lat_deg,elev_m,tmax_c,tmin_c,rhmax_pct,rhmin_pct,rhmean_pct,u2_m_s,rs_mj_m2,sunshine_h\n\
         2024-07-05,50.8,100,21.5,12.3,84,63,,2.078,,9.25\n\
         2023-04-15,13.7333,2,34.8,25.6,,,abc,2,,8.5\n\
         2022-05-15,38,100,28,14,,,55,2,27,\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args([
            "et0",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("3 rows, 2 with ET0, 1 left empty"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 3") && stderr.contains("rhmean_pct"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].ends_with(",sunshine_h,et0_mm"));
    assert!(lines[1].ends_with(",9.25,3.880"), "{}", lines[1]); // FAO-56 Example 18
    assert!(lines[2].ends_with(",8.5,"), "{}", lines[2]);
    let last: f64 = lines[3].rsplit(',').next().unwrap().parse().unwrap();
    assert!(last > 4.0 && last < 8.0);

    // A header without the required columns fails with exit status 1 and a clear message.
    std::fs::write(&input, "date,tmax_c\n2024-01-01,3\n").unwrap();
    let out = Command::new(BIN)
        .args([
            "et0",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in.csv") && stderr.contains("lat_deg") && stderr.contains("humidity"),
        "{stderr}"
    );
}

#[test]
fn run_mode_on_a_generated_tile() {
    let dir = tempfile::tempdir().unwrap();
    let store = cloud::Store::from_env();
    let bytes = std::fs::read(format!("{DATA}siam_data.csv")).unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2022, 5, 15).unwrap();
    let st =
        water::stations::parse("siam", &bytes, water::stations::StationFormat::Auto, date).unwrap();
    let dtm = water::synth::dtm(&st, 640_000.0, 4_200_000.0, 100.0, 60, 40, None);
    let asc = dir.path().join("tile.asc");
    std::fs::write(&asc, water::synth::to_asc(&dtm)).unwrap();
    let out_dir = dir.path().join("out");
    let out = Command::new(BIN)
        .args([
            "run",
            "--dtm",
            asc.to_str().unwrap(),
            "--stations",
            &format!("{DATA}siam_data.csv"),
            "--date",
            "2022-05-15",
        ])
        .args(["-o", out_dir.to_str().unwrap(), "--windows", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let o: water::Output = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(o.window_seconds.len(), 4);
    let et0: cog::Raster<f32> = cog::read_band(&store, &o.et0, 1).unwrap();
    assert_eq!(et0.data.dim(), (40, 60));
    assert!(et0.data.iter().all(|&v| v > 0.0));
    assert!(out_dir.join("tile_et0.png").exists());
}

#[test]
fn a_failing_run_leaves_none_of_its_outputs() {
    // Plots as a shapefile whose .dbf is missing: the ET0 COG is written before the plots
    // are read, and must not stay under its final name (nor any temporary file).
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(format!("{DATA}siam_data.csv")).unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2022, 5, 15).unwrap();
    let st =
        water::stations::parse("siam", &bytes, water::stations::StationFormat::Auto, date).unwrap();
    let dtm = water::synth::dtm(&st, 625_000.0, 4_190_000.0, 200.0, 30, 20, None);
    let asc = dir.path().join("dem.asc");
    std::fs::write(&asc, water::synth::to_asc(&dtm)).unwrap();
    let shp = dir.path().join("plots.shp");
    std::fs::write(&shp, b"not really a shapefile").unwrap();
    let out_dir = dir.path().join("out");
    let out = Command::new(BIN)
        .args(["run", "--dtm", asc.to_str().unwrap()])
        .args(["--stations", &format!("{DATA}siam_data.csv")])
        .args(["--date", "2022-05-15", "--plots", shp.to_str().unwrap()])
        .args(["-o", out_dir.to_str().unwrap()])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(e.contains("plots.dbf"), "{e}");
    let left: Vec<String> = std::fs::read_dir(&out_dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    // The ET0 COG was written (before the plots were read) and removed.
    assert!(left.is_empty(), "left behind: {left:?}");
}
