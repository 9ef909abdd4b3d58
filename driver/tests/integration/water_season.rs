//! `geobutton run water --dates FIRST/LAST`: a season in one run, a task per tile per day,
//! each tile's days added up, per-plot season totals; and the irrigated-plot rule from an
//! NDVI product. The season's products must equal the sums of single-day runs of the same
//! days, and the plots' NDVI what the raster holds under them.

use crate::common;

use std::path::Path;
use std::process::Command;

use cloud::Store;
use cog::{CogWriteOptions, Crs, GeoTransform, Raster};

const DAYS: [&str; 3] = ["2022-05-15", "2022-05-16", "2022-05-17"];

fn geobutton(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_geobutton"))
        .args(args)
        .output()
        .unwrap()
}

/// The SIAM table of 2022-05-15, made `warmer` °C warmer (a different day's weather).
fn siam_day(warmer: f64) -> String {
    let text = std::fs::read_to_string(common::data("water/siam_data.csv")).unwrap();
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for line in lines {
        let mut f: Vec<String> = line.split(',').map(str::to_string).collect();
        for i in [3, 8] {
            if let Ok(t) = f[i].parse::<f64>() {
                f[i] = format!("{:.1}", t + warmer);
            }
        }
        out.push_str(&f.join(","));
        out.push('\n');
    }
    out
}

/// Rows of a CSV by its first column, as column → value maps.
fn csv_rows(
    path: &str,
) -> std::collections::BTreeMap<String, std::collections::HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let head = r.headers().unwrap().clone();
    r.records()
        .map(|row| {
            let row = row.unwrap();
            let map: std::collections::HashMap<String, String> = head
                .iter()
                .zip(row.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect();
            (row[0].to_string(), map)
        })
        .collect()
}

fn num(row: &std::collections::HashMap<String, String>, col: &str) -> f64 {
    row[col].parse().unwrap()
}

#[test]
fn a_season_equals_the_sum_of_its_days_and_plots_get_their_ndvi() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).display().to_string();
    let mut dtms = Vec::new();
    for i in 0..2 {
        let uri = at(&format!("sheet{i}.asc"));
        let dtm = common::synthetic_dtm(640_000.0 + 6_000.0 * i as f64, 4_200_000.0, 100.0, 60, 40);
        std::fs::write(&uri, dtm).unwrap();
        dtms.push(uri);
    }
    std::fs::create_dir(dir.path().join("siam")).unwrap();
    for (k, day) in DAYS.iter().enumerate() {
        std::fs::write(at(&format!("siam/{day}.csv")), siam_day(1.5 * k as f64)).unwrap();
    }
    let plots = at("plots.geojson");
    std::fs::write(&plots, common::plots_geojson()).unwrap();
    // An NDVI product in WGS 84 / UTM 30N over the plots (which are in ETRS89 / UTM 30N):
    // 0.8 west of x = 644 000 (plot "inside"), 0.1 east of it (plot "across").
    let ndvi = at("ndvi_after.tif");
    let raster = Raster {
        data: ndarray::Array2::from_shape_fn(
            (400, 1200),
            |(_, c)| {
                if c < 400 { 0.8f32 } else { 0.1 }
            },
        ),
        transform: GeoTransform::north_up(640_000.0, 4_200_000.0, 10.0),
        crs: Crs::epsg(32630),
        nodata: None,
    };
    cog::write_cog(
        &Store::default(),
        &ndvi,
        &raster,
        &CogWriteOptions::default(),
    )
    .unwrap();

    let stations = at("siam/{date}.csv");
    let season = at("season");
    let mut args = vec!["run", "water", "-q", "-i", &dtms[0], &dtms[1]];
    args.extend(["--stations", &stations, "--plots", &plots, "-o", &season]);
    let mut season_args = args.clone();
    season_args.extend(["--dates", "2022-05-15/2022-05-17", "--ndvi", &ndvi]);
    let text = common::succeeded(&geobutton(&season_args));
    assert!(text.contains("et0_season.tif"), "{text}");
    // A task per tile per day, then a sum per tile and product, then the mosaics.
    let record: driver::run::RunRecord = Store::default()
        .get_json(&format!("{season}/tasks/run.json"))
        .unwrap();
    let steps: Vec<(&str, usize)> = record
        .steps
        .iter()
        .map(|s| (s.step.as_str(), s.records.len()))
        .collect();
    assert_eq!(steps, [("tiles", 6), ("season", 4), ("mosaic", 2)]);
    assert_eq!(record.steps[0].records[1].id, "tile-sheet0-2022-05-16");

    // The same days one by one.
    let mut et0_days: Vec<Raster<f32>> = Vec::new();
    let mut plot_days = Vec::new();
    for day in DAYS {
        let out = at(&format!("day-{day}"));
        let mut a = args.clone();
        let last = a.len() - 1;
        a[last] = &out;
        a.extend(["--date", day]);
        common::succeeded(&geobutton(&a));
        et0_days.push(cog::read_band(&Store::default(), &format!("{out}/et0.tif"), 1).unwrap());
        plot_days.push(csv_rows(&format!("{out}/plots.csv")));
    }
    // The season's ET0 is the sum of the days', pixel for pixel (added in f64).
    for name in ["et0", "etc"] {
        let total: Raster<f32> =
            cog::read_band(&Store::default(), &format!("{season}/{name}_season.tif"), 1).unwrap();
        let days: Vec<Raster<f32>> = DAYS
            .iter()
            .map(|d| {
                cog::read_band(&Store::default(), &at(&format!("day-{d}/{name}.tif")), 1).unwrap()
            })
            .collect();
        assert_eq!(total.transform, days[0].transform);
        let mut valid = 0;
        for (idx, &v) in total.data.indexed_iter() {
            let terms: Vec<f32> = days.iter().map(|r| r.data[idx]).collect();
            if terms.iter().any(|t| *t == -9999.0) {
                assert_eq!(v, -9999.0, "{name} {idx:?}");
                continue;
            }
            let sum = terms.iter().map(|t| *t as f64).sum::<f64>() as f32;
            assert_eq!(
                v.to_bits(),
                sum.to_bits(),
                "{name} {idx:?}: {v} vs {terms:?}"
            );
            valid += 1;
        }
        assert!(valid > 100, "{name}: {valid} pixels");
    }
    // Warmer days evaporate more: the days differ, so the sum is not three times one day.
    let mean = |r: &Raster<f32>| {
        let v: Vec<f64> = r
            .data
            .iter()
            .filter(|v| **v != -9999.0)
            .map(|v| *v as f64)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(mean(&et0_days[2]) > mean(&et0_days[0]) + 0.05);

    // Per plot: the days' figures add up; the NDVI columns say what lies under each plot.
    let season_plots = csv_rows(&format!("{season}/plots_season.csv"));
    assert_eq!(season_plots.len(), 2);
    for (id, row) in &season_plots {
        assert_eq!(row["days"], "3");
        let days: Vec<_> = plot_days.iter().map(|d| &d[id]).collect();
        let sum = |col: &str| days.iter().map(|d| num(d, col)).sum::<f64>();
        assert!(
            (num(row, "volume_m3") - sum("volume_m3_day")).abs() < 0.002,
            "{id}"
        );
        assert!(
            (num(row, "et0_mm") - sum("et0_mean_mm")).abs() < 0.002,
            "{id}"
        );
        assert!(
            (num(row, "etc_mm") - sum("etc_mean_mm")).abs() < 0.002,
            "{id}"
        );
        assert!(num(row, "volume_m3") > 0.0);
    }
    let inside = &season_plots["inside"];
    assert_eq!(inside["irrigated"], "true");
    assert!((num(inside, "ndvi_mean") - 0.8).abs() < 1e-4);
    // 1 km² of 10 m pixels above the threshold.
    assert!((num(inside, "irrigated_m2") - 1_000_000.0).abs() < 1.0);
    let across = &season_plots["across"];
    assert_eq!(across["irrigated"], "false");
    assert!((num(across, "ndvi_mean") - 0.1).abs() < 1e-4);
    assert_eq!(num(across, "irrigated_m2"), 0.0);

    // Refused before anything runs: a day without its table, a dateless table for a season.
    std::fs::remove_file(at("siam/2022-05-17.csv")).unwrap();
    let mut a = args.clone();
    let out = at("refused");
    let last = a.len() - 1;
    a[last] = &out;
    let mut missing = a.clone();
    missing.extend(["--dates", "2022-05-15/2022-05-17"]);
    let o = geobutton(&missing);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("1 day(s) have no station table") && err.contains("2022-05-17.csv"),
        "{err}"
    );
    let one_table = common::data("water/siam_data.csv");
    let mut dateless = a.clone();
    let i = dateless
        .iter()
        .position(|s| *s == stations.as_str())
        .unwrap();
    dateless[i] = &one_table;
    dateless.extend(["--dates", "2022-05-15/2022-05-16"]);
    let o = geobutton(&dateless);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("has no date column"), "{err}");
    assert!(!Path::new(&out).join("tasks").exists());
    for bad in [
        "2022-05-16/2022-05-15",
        "2022-05-15",
        "2022-01-01/2023-12-31",
    ] {
        let mut b = a.clone();
        b.extend(["--dates", bad]);
        assert!(!geobutton(&b).status.success(), "{bad}");
    }
}
