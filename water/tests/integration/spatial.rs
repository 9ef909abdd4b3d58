//! The spatial workflow: window split/merge equality, radiation checks (flat = FAO-56 eq. 21,
//! south vs north slopes, GRASS r.sun), the Murcia end-to-end run and bad inputs.

use chrono::{Datelike, NaiveDate};
use cloud::{Ctx, ErrorKind, Stage, Store, TaskError};
use cog::{GeoTransform, Raster};
use ndarray::Array2;
use water::fao56;
use water::proj::Projection;
use water::stage::{Params, WaterStage};
use water::stations::{self, Station, StationFormat};
use water::synth;
use water::workflow::{self, Options, StationSet};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/water/");

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2022, 5, 15).unwrap()
}

fn siam() -> Vec<Station> {
    let bytes = std::fs::read(format!("{DATA}siam_data.csv")).unwrap();
    stations::parse("siam_data.csv", &bytes, StationFormat::Auto, date()).unwrap()
}

fn p25830() -> Projection {
    Projection::from_epsg(25830).unwrap()
}

fn same(a: &Array2<f32>, b: &Array2<f32>) -> bool {
    a.dim() == b.dim()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn siam_table_reads_all_47_stations() {
    let s = siam();
    assert_eq!(s.len(), 47);
    let al31 = &s[0];
    assert_eq!(al31.id, "AL31");
    assert_eq!((al31.x, al31.y, al31.elev_m), (631023.0, 4177172.0, 236.0));
    assert_eq!(al31.tmax_c, Some(13.3));
    assert!(al31.mean_only);
    assert!((al31.ea_kpa.unwrap() - 0.555 * fao56::sat_vapour_pressure(13.3)).abs() < 1e-12);
    assert!((al31.rs_mj_m2.unwrap() - 155.9 * 0.0864).abs() < 1e-9);
    // The original's `tdet` is the temperature reduced to 2000 m with −0.0056 °C/m.
    assert!((13.3f64 - 0.0056 * (2000.0 - 236.0) - 3.4216).abs() < 1e-9);
}

/// A 150×120 DTM at 100 m over Totana/Alhama with nodata cells, and its stations.
fn small_tile() -> (Raster<f32>, StationSet) {
    let all = siam();
    let mut dtm = synth::dtm(&all, 625_000.0, 4_190_000.0, 100.0, 150, 120, None);
    for c in 40..60 {
        dtm.data[[70, c]] = synth::DTM_NODATA;
    }
    let e = workflow::extent(&dtm.transform, 150, 120);
    let set =
        StationSet::for_tile(&all, e, &p25830(), date().ordinal(), &Options::default()).unwrap();
    (dtm, set)
}

#[test]
fn nine_windows_equal_one_window() {
    let (dtm, set) = small_tile();
    assert!(set.stations.len() > 5 && !set.fallback);
    for horizon in [0, 8] {
        let mut opts = Options {
            windows: 1,
            horizon_dirs: horizon,
            horizon_max_dist_m: 1500.0,
            ..Options::default()
        };
        let one = workflow::process_tile(&dtm, &set, &p25830(), 135, &opts, |_| {}).unwrap();
        opts.windows = 3;
        let mut transforms = Vec::new();
        let nine = workflow::process_tile(&dtm, &set, &p25830(), 135, &opts, |w| {
            transforms.push((w.window, w.transform));
        })
        .unwrap();
        assert_eq!(transforms.len(), 9);
        for (w, t) in &transforms {
            // Each window's own georeferencing: its top-left corner, not the tile's.
            let expect = GeoTransform::north_up(
                625_000.0 + 100.0 * w.col_off as f64,
                4_190_000.0 - 100.0 * w.row_off as f64,
                100.0,
            );
            assert_eq!(*t, expect);
        }
        for (name, a, b) in [
            ("et0", &one.et0, &nine.et0),
            ("tmax", &one.tmax, &nine.tmax),
            ("tmin", &one.tmin, &nine.tmin),
            ("ea", &one.ea, &nine.ea),
            ("u2", &one.u2, &nine.u2),
            ("rs", &one.rs, &nine.rs),
            ("ra", &one.ra, &nine.ra),
        ] {
            assert!(
                same(a, b),
                "{name} differs between 1 and 9 windows (horizon {horizon})"
            );
        }
        // Nodata DTM cells are NaN in every output, land cells are finite and positive.
        assert!(one.et0[[70, 45]].is_nan() && one.tmax[[70, 45]].is_nan());
        assert!(
            one.et0
                .iter()
                .filter(|v| !v.is_nan())
                .all(|&v| v > 0.0 && v < 15.0)
        );
        assert_eq!(one.et0.iter().filter(|v| v.is_nan()).count(), 20);
    }
}

#[test]
fn interpolated_fields_honour_stations_and_lapse_rate() {
    let (dtm, set) = small_tile();
    let r = workflow::process_window(
        &dtm,
        cog::Window::new(0, 0, 150, 120),
        &set,
        &p25830(),
        135,
        &Options::default(),
    )
    .unwrap();
    // Pixel containing station AL41 (639400, 4183940): its wind is near the station's.
    let st = set.stations.iter().find(|s| s.id == "AL41").unwrap();
    let (c, rr) = dtm.transform.invert(st.x, st.y).unwrap();
    let (c, rr) = (c as usize, rr as usize);
    assert!((r.u2[[rr, c]] as f64 - st.u2_m_s.unwrap()).abs() < 0.2);
    // Temperature: at the station's own elevation the pixel would read the station's value;
    // the pixel's elevation differs, so the lapse rate shifts it accordingly.
    let z = dtm.data[[rr, c]] as f64;
    let t_at_station_elev = r.tmax[[rr, c]] as f64 + 0.0056 * (z - st.elev_m);
    assert!(
        (t_at_station_elev - st.tmax_c.unwrap()).abs() < 0.5,
        "{t_at_station_elev}"
    );
    // Higher pixels are cooler: T + 0.0056 z is smooth (IDW only), T is not.
    let hi = dtm.data.iter().cloned().fold(f32::MIN, f32::max);
    assert!(hi > 300.0);
}

/// A flat DTM and two 30° planes (facing south and north) at about 38° N, EPSG:25830.
fn planes() -> [(String, Raster<f32>); 3] {
    let n = 60;
    let res = 25.0;
    let t = 30f64.to_radians().tan();
    let mk = |f: &dyn Fn(usize) -> f64| {
        let data = Array2::from_shape_fn((n, n), |(r, _)| f(r) as f32);
        Raster {
            data,
            transform: GeoTransform::north_up(600_000.0, 4_210_000.0, res),
            crs: cog::Crs::epsg(25830),
            nodata: None,
        }
    };
    [
        ("flat".into(), mk(&|_| 500.0)),
        (
            "south".into(),
            mk(&|r| 500.0 + t * res * (n - 1 - r) as f64),
        ),
        ("north".into(), mk(&|r| 500.0 + t * res * r as f64)),
    ]
}

/// Global radiation (MJ m⁻² day⁻¹) at the centre of a plane with horizontal Rs `rs_h`.
fn plane_rs(dtm: &Raster<f32>, doy: u32, rs_h: f64) -> (f64, f64) {
    let p = p25830();
    let (lat, _) = p.to_lat_lon(600_750.0, 4_209_250.0);
    let ra = fao56::extraterrestrial_radiation(lat.to_radians(), doy as f64);
    let rso = fao56::clear_sky_radiation(ra, 500.0);
    // One station at the centre, reporting Rs = rs_h.
    let st = Station {
        id: "S".into(),
        x: 600_750.0,
        y: 4_209_250.0,
        elev_m: 500.0,
        tmax_c: Some(15.0),
        tmin_c: Some(5.0),
        mean_only: false,
        ea_kpa: Some(0.8),
        u2_m_s: Some(2.0),
        rs_mj_m2: Some(rs_h.min(rso)),
    };
    let set = StationSet::for_tile(
        &[st],
        workflow::extent(&dtm.transform, 60, 60),
        &p,
        doy,
        &Options::default(),
    )
    .unwrap();
    let r = workflow::process_window(
        dtm,
        cog::Window::new(0, 0, 60, 60),
        &set,
        &p,
        doy,
        &Options::default(),
    )
    .unwrap();
    (r.rs[[30, 30]] as f64, r.ra[[30, 30]] as f64)
}

#[test]
fn radiation_flat_is_eq_21_and_south_beats_north_in_winter() {
    let [(_, flat), (_, south), (_, north)] = planes();
    let p = p25830();
    let opts = Options::default();
    let st = siam();
    let set = StationSet::for_tile(
        &st,
        workflow::extent(&flat.transform, 60, 60),
        &p,
        355,
        &opts,
    )
    .unwrap();
    let r = workflow::process_window(&flat, cog::Window::new(0, 0, 60, 60), &set, &p, 355, &opts)
        .unwrap();
    for ((row, col), &v) in r.ra.indexed_iter() {
        let (x, y) = flat.transform.apply(col as f64 + 0.5, row as f64 + 0.5);
        let lat = p.to_lat_lon(x, y).0.to_radians();
        let eq21 = fao56::extraterrestrial_radiation(lat, 355.0);
        assert!((v as f64 - eq21).abs() < 1e-4, "{row},{col}: {v} vs {eq21}");
    }
    // On flat ground the surface radiation is the horizontal Rs itself.
    let (rs_flat, _) = plane_rs(&flat, 355, 10.0);
    assert!((rs_flat - 10.0).abs() < 1e-4, "{rs_flat}");
    // Winter solstice at 38° N: south-facing slope ≫ flat ≫ north-facing slope.
    let (rs_s, _) = plane_rs(&south, 355, 10.0);
    let (rs_n, _) = plane_rs(&north, 355, 10.0);
    eprintln!("day 355, Rs_h 10: south {rs_s:.2}, flat {rs_flat:.2}, north {rs_n:.2} MJ/m²/day");
    assert!(
        rs_s > 1.5 * rs_flat && rs_n < 0.5 * rs_flat,
        "{rs_s} {rs_n}"
    );
}

/// GRASS GIS 8.2.1 `r.sun` (Debian grass-core; Linke turbidity 3.0, albedo 0.2, step 0.25 h),
/// mean `glob_rad` (Wh m⁻² day⁻¹) over 60×60 planes at 25 m, EPSG:25830, top-left corner
/// (600000, 4210000) (≈ 38.03° N): flat, 30° facing south, 30° facing north, recorded with
/// `r.in.gdal; g.region raster=..; r.slope.aspect; r.sun elevation slope aspect day step=0.25
/// glob_rad=..; r.univar -g` in a `grass --tmp-location EPSG:25830` session.
const RSUN_WH: [(u32, f64, f64, f64); 2] = [
    (355, 2772.51660657014, 5322.06797095626, 567.167145283412),
    (172, 9009.85719050749, 8341.91139611279, 7957.40930190296),
];

#[test]
fn radiation_agrees_with_grass_r_sun() {
    let [(_, _), (_, south), (_, north)] = planes();
    for (doy, flat_wh, south_wh, north_wh) in RSUN_WH {
        // r.sun's clear-sky horizontal global radiation is our "station" Rs; the terrain
        // model then distributes it over the slopes, compared with r.sun's slopes.
        let rs_h = flat_wh * 0.0036;
        let (s, _) = plane_rs(&south, doy, rs_h);
        let (n, _) = plane_rs(&north, doy, rs_h);
        let (gs, gn) = (south_wh * 0.0036, north_wh * 0.0036);
        eprintln!(
            "day {doy}: flat {rs_h:.2}; south ours {s:.2} r.sun {gs:.2} ({:+.1}%); north ours {n:.2} r.sun {gn:.2} ({:+.1}%)",
            100.0 * (s / gs - 1.0),
            100.0 * (n / gn - 1.0)
        );
        assert!((s / gs - 1.0).abs() < 0.10, "south day {doy}: {s} vs {gs}");
        assert!((n / gn - 1.0).abs() < 0.15, "north day {doy}: {n} vs {gn}");
    }
}

fn tmpdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Plots: every 7th 1:5000 sheet of the Murcia sheet grid, with SIGPAC uses assigned in turn
/// (the sheet grid has no `uso_sigpac`; the codes are synthetic).
fn sheet_plots_geojson() -> String {
    let mut reader =
        shapefile::Reader::from_path(format!("{DATA}murcia_sheets/03_Hojas05_Murcia.shp")).unwrap();
    let uses = ["OV", "VI", "FY", "FS", "CI", "TA"];
    let mut feats = Vec::new();
    for (i, item) in reader.iter_shapes_and_records().enumerate() {
        if i % 7 != 0 {
            continue;
        }
        let (shape, _) = item.unwrap();
        let shapefile::Shape::Polygon(p) = shape else {
            panic!("not a polygon")
        };
        let rings: Vec<String> = p
            .rings()
            .iter()
            .map(|r| {
                let pts: Vec<String> = r
                    .points()
                    .iter()
                    .map(|q| format!("[{},{}]", q.x, q.y))
                    .collect();
                format!("[{}]", pts.join(","))
            })
            .collect();
        feats.push(format!(
            r#"{{"type":"Feature","properties":{{"id":"sheet{i}","uso_sigpac":"{}"}},"geometry":{{"type":"Polygon","coordinates":[{}]}}}}"#,
            uses[(i / 7) % uses.len()],
            rings.join(",")
        ));
    }
    format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        feats.join(",")
    )
}

#[test]
fn murcia_end_to_end() {
    let dir = tmpdir();
    let d = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let store = Store::from_env();
    let all = siam();
    // Over all stations' extent at 500 m, sea in the south-east corner.
    let dtm = synth::dtm(
        &all,
        570_000.0,
        4_290_000.0,
        500.0,
        270,
        310,
        Some((690_000.0, 4_160_000.0)),
    );
    cog::write_cog(
        &store,
        &d("murcia.tif"),
        &dtm,
        &cog::CogWriteOptions::default(),
    )
    .unwrap();
    std::fs::write(d("murcia.asc"), synth::to_asc(&dtm)).unwrap();
    std::fs::write(d("plots.geojson"), sheet_plots_geojson()).unwrap();
    std::fs::write(d("kc.csv"), "uso_sigpac,kc\nTA,1.15\n").unwrap();
    let params = Params {
        dtm: d("murcia.tif"),
        dtm_epsg: 25830,
        stations: format!("{DATA}siam_data.csv"),
        station_format: StationFormat::Auto,
        date: date(),
        plots: Some(d("plots.geojson")),
        kc: Some(d("kc.csv")),
        out: d("out"),
        plots_owned_elsewhere: Vec::new(),
        write_inputs: true,
        png: true,
        options: Options::default(),
    };
    let ctx = Ctx::new(store.clone());
    let out = WaterStage::run(&params, &ctx).unwrap();
    assert_eq!(out.stations_used.len(), 47);
    assert!(!out.fallback);
    let sea = dtm.data.iter().filter(|&&v| v == synth::DTM_NODATA).count() as u64;
    assert!(sea > 100);
    assert_eq!(out.land_pixels, 270 * 310 - sea);
    assert!(out.et0_min.unwrap() > 0.0, "ET0 min {:?}", out.et0_min);
    assert!(out.et0_max.unwrap() < 10.0);
    eprintln!(
        "Murcia 2022-05-15: ET0 min {:?} mean {:?} max {:?}",
        out.et0_min, out.et0_mean, out.et0_max
    );

    // Read the COG back: positive ET everywhere on land, nodata at sea, same grid.
    let et0: Raster<f32> = cog::read_band(&store, &out.et0, 1).unwrap();
    assert_eq!(et0.transform, dtm.transform);
    assert_eq!(et0.crs.epsg, Some(25830));
    assert_eq!(et0.nodata, Some(-9999.0));
    for (v, z) in et0.data.iter().zip(dtm.data.iter()) {
        if *z == synth::DTM_NODATA {
            assert_eq!(*v, -9999.0);
        } else {
            assert!(*v > 0.0 && v.is_finite(), "{v}");
        }
    }
    // ETc = Kc · ET0 in plots.
    let etc: Raster<f32> = cog::read_band(&store, out.etc.as_ref().unwrap(), 1).unwrap();
    let in_plots = etc.data.iter().filter(|&&v| v != -9999.0).count();
    assert!(in_plots > 1000, "{in_plots}");
    for (e, t) in etc.data.iter().zip(et0.data.iter()) {
        if *e != -9999.0 {
            let k = e / t;
            assert!(
                [0.7f32, 0.95, 0.9, 0.65, 1.15]
                    .iter()
                    .any(|kc| (k - kc).abs() < 1e-4),
                "{k}"
            );
        }
    }
    // Per-plot CSV: volumes = mean ETc × area / 1000.
    let text = std::fs::read_to_string(out.plots_csv.as_ref().unwrap()).unwrap();
    // The table's coordinates are the DTM's: a .prj beside it says which.
    let prj = std::fs::read_to_string(out.plots_prj.as_ref().unwrap()).unwrap();
    assert!(prj.starts_with("PROJCS[\"ETRS89 / UTM zone 30N\""), "{prj}");
    assert!(out.plots_prj.as_ref().unwrap().ends_with("_plots.prj"));
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let mut n = 0;
    for rec in r.records() {
        let rec = rec.unwrap();
        let (area, etc_mean, vol): (f64, f64, f64) = (
            rec[3].parse().unwrap(),
            rec[8].parse().unwrap(),
            rec[9].parse().unwrap(),
        );
        if &rec[6] == "true" {
            assert!(
                (vol - etc_mean * area / 1000.0).abs() < 0.01 * vol.max(1.0),
                "{rec:?}"
            );
        }
        assert!(vol > 0.0);
        n += 1;
    }
    assert!(n > 100, "{n}");
    // The PNG decodes: the 270-pixel-wide map (the DTM's aspect ratio) with a margin, and the
    // legend panel beside it.
    let png = image::load_from_memory(&std::fs::read(out.png.as_ref().unwrap()).unwrap()).unwrap();
    assert!(png.width() > 12 + 270 + 12 + 100, "{}", png.width());
    assert!(png.height() > 310);
    assert_eq!(out.inputs.len(), 6);

    // The same DTM as ESRI ASCII (no CRS: EPSG:25830 assumed) gives the same ET0.
    let params_asc = Params {
        dtm: d("murcia.asc"),
        plots: None,
        kc: None,
        write_inputs: false,
        png: false,
        ..params.clone()
    };
    let out_asc = WaterStage::run(&params_asc, &ctx).unwrap();
    let et0_asc: Raster<f32> = cog::read_band(&store, &out_asc.et0, 1).unwrap();
    let max_diff = et0_asc
        .data
        .iter()
        .zip(et0.data.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max_diff < 1e-3, "asc vs tif: {max_diff}");

    // Through the task adapter: status written, second run skipped (resume).
    let task = serde_json::json!({"id": "murcia-t1", "stage": "water", "params": params_asc});
    let s1 =
        cloud::run_task::<WaterStage>(task.clone(), &ctx, &cloud::RunOptions::default()).unwrap();
    assert!(s1.error.is_none() && !s1.skipped);
    let s2 = cloud::run_task::<WaterStage>(task, &ctx, &cloud::RunOptions::default()).unwrap();
    assert!(s2.skipped);
}

fn run_err(params: &Params) -> TaskError {
    WaterStage::run(params, &Ctx::new(Store::from_env())).unwrap_err()
}

#[test]
fn bad_inputs() {
    let dir = tmpdir();
    let d = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let store = Store::from_env();
    let all = siam();
    let dtm = synth::dtm(&all, 625_000.0, 4_190_000.0, 200.0, 40, 30, None);
    cog::write_cog(&store, &d("t.tif"), &dtm, &cog::CogWriteOptions::default()).unwrap();
    let base = Params {
        dtm: d("t.tif"),
        dtm_epsg: 25830,
        stations: format!("{DATA}siam_data.csv"),
        station_format: StationFormat::Auto,
        date: date(),
        plots: None,
        kc: None,
        out: d("out"),
        plots_owned_elsewhere: Vec::new(),
        write_inputs: false,
        png: false,
        options: Options::default(),
    };

    // Station CSV with missing columns: InvalidInput naming the file and the columns.
    std::fs::write(
        d("st.csv"),
        "id,x,y,tmax_c,tmin_c\nA,630000,4185000,25,12\n",
    )
    .unwrap();
    let e = run_err(&Params {
        stations: d("st.csv"),
        ..base.clone()
    });
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(
        e.message.contains("st.csv") && e.message.contains("elev_m") && e.message.contains("wind"),
        "{}",
        e.message
    );

    // Stations all far outside the tile: documented fallback to the 3 nearest, flagged.
    std::fs::write(
        d("far.csv"),
        "id,x,y,elev_m,tmax_c,tmin_c,rhmean_pct,u2_m_s,rs_mj_m2\n\
         N1,630000,4400000,300,25,12,50,2,25\n\
         N2,700000,4400000,300,24,11,55,2,25\n\
         N3,500000,4400000,300,23,10,60,2,25\n\
         N4,500000,4500000,300,23,10,60,2,25\n",
    )
    .unwrap();
    let out = WaterStage::run(
        &Params {
            stations: d("far.csv"),
            ..base.clone()
        },
        &Ctx::new(store.clone()),
    )
    .unwrap();
    assert!(out.fallback);
    assert_eq!(out.stations_used, ["N1", "N2", "N3"]);
    assert!(out.et0_min.unwrap() > 0.0);

    // ... and with the fallback disabled, a clear error instead of a dropped tile.
    let e = run_err(&Params {
        stations: d("far.csv"),
        options: Options {
            fallback_stations: 0,
            ..Options::default()
        },
        ..base.clone()
    });
    assert!(
        e.message.contains("no station within 16000 m"),
        "{}",
        e.message
    );

    // Nodata DTM cells: nodata in the output; an all-nodata DTM gives an all-nodata tile.
    let mut holes = dtm.clone();
    holes
        .data
        .slice_mut(ndarray::s![5..10, 5..10])
        .fill(synth::DTM_NODATA);
    cog::write_cog(
        &store,
        &d("holes.tif"),
        &holes,
        &cog::CogWriteOptions::default(),
    )
    .unwrap();
    let out = WaterStage::run(
        &Params {
            dtm: d("holes.tif"),
            ..base.clone()
        },
        &Ctx::new(store.clone()),
    )
    .unwrap();
    assert_eq!(out.land_pixels, 40 * 30 - 25);
    let et0: Raster<f32> = cog::read_band(&store, &out.et0, 1).unwrap();
    assert_eq!(et0.data[[7, 7]], -9999.0);
    assert!(et0.data[[0, 0]] > 0.0);

    // Missing DTM file: NotFound naming it.
    let e = run_err(&Params {
        dtm: d("missing.tif"),
        ..base.clone()
    });
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("missing.tif"), "{}", e.message);

    // A station table with a value missing at one station: that station sits out only that
    // variable.
    std::fs::write(
        d("gap.csv"),
        "id,x,y,elev_m,tmax_c,tmin_c,rhmean_pct,u2_m_s,rs_mj_m2\n\
         A,630000,4185000,300,25,12,50,,25\n\
         B,632000,4186000,300,24,11,55,2,\n",
    )
    .unwrap();
    let out = WaterStage::run(
        &Params {
            stations: d("gap.csv"),
            ..base.clone()
        },
        &Ctx::new(store.clone()),
    )
    .unwrap();
    assert_eq!(out.stations_used.len(), 2);
    assert!(out.et0_min.unwrap() > 0.0);

    // Plots without `uso_sigpac` (the Murcia sheet grid itself): an error naming the file.
    let e = run_err(&Params {
        plots: Some(format!("{DATA}murcia_sheets/03_Hojas05_Murcia.shp")),
        ..base.clone()
    });
    assert!(
        e.message.contains("03_Hojas05_Murcia.shp") && e.message.contains("uso_sigpac"),
        "{}",
        e.message
    );

    // Unknown params field: the task is rejected.
    let v = serde_json::json!({"id": "x", "stage": "water", "params": {"dtm": "a", "stations": "b", "date": "2022-05-15", "out": "c", "bogus": 1}});
    assert!(cloud::entry::parse_task::<WaterStage>(v).is_err());
}

#[test]
fn a_wrong_date_and_bad_numbers_are_said_not_hidden() {
    let dir = tmpdir();
    let d = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let store = Store::from_env();
    let all = siam();
    let dtm = synth::dtm(&all, 625_000.0, 4_190_000.0, 200.0, 40, 30, None);
    cog::write_cog(&store, &d("t.tif"), &dtm, &cog::CogWriteOptions::default()).unwrap();
    let base = Params {
        dtm: d("t.tif"),
        dtm_epsg: 25830,
        stations: format!("{DATA}siam_data.csv"),
        station_format: StationFormat::Auto,
        date: NaiveDate::from_ymd_opt(2022, 12, 21).unwrap(),
        plots: None,
        kc: None,
        out: d("out"),
        plots_owned_elsewhere: Vec::new(),
        write_inputs: false,
        png: false,
        options: Options::default(),
    };
    // The SIAM table's May radiation used for the winter solstice: above clear sky. Each
    // such station is named; Rs/Rso is limited to 1 (FAO-56 eq. 39).
    let out = WaterStage::run(&base, &Ctx::new(store.clone())).unwrap();
    let text = out.warnings.join("\n");
    assert!(text.contains("above the clear-sky Rso"), "{text}");
    assert!(text.contains("wrong date or units"), "{text}");
    assert!(WaterStage::warnings(&out) == out.warnings);
    // The same table on its own date warns about nothing of the kind.
    let may = WaterStage::run(
        &Params {
            date: date(),
            ..base.clone()
        },
        &Ctx::new(store.clone()),
    )
    .unwrap();
    assert!(
        !may.warnings.iter().any(|w| w.contains("clear-sky")),
        "{:?}",
        may.warnings
    );
    // NaN and absurd numbers are refused before any work (they once gave an all-nodata
    // raster, or a 40 GB allocation).
    for (options, says) in [
        (
            Options {
                idw_power: f64::NAN,
                ..Options::default()
            },
            "idw_power",
        ),
        (
            Options {
                horizon_dirs: 1_000_000,
                ..Options::default()
            },
            "horizon_dirs",
        ),
    ] {
        let e = WaterStage::validate(&Params {
            options,
            ..base.clone()
        })
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidTask);
        assert!(e.message.contains(says), "{e}");
    }
}
