//! `geobutton demo`: a deterministic synthetic scene, made inside the output folder, and
//! every pipeline run on it locally.
//!
//! The scene (fixed seeds, no download, no fixture):
//! - `scene/lidar/demo.las`: a 300 m × 300 m LAS 1.2 tile (point format 1, EPSG:25830 in a
//!   GeoTIFF-keys VLR, centimetre scale) near Murcia: rolling terrain with a slope, ~120
//!   trees of 4–22 m with round crowns, first/last returns through the canopy, and uneven
//!   density — 3 points/m² in general, 9 in a flight-line overlap strip, 1 in a shadowed
//!   corner;
//! - `scene/s2/{before,after}/B04.tif|B08.tif`: Sentinel-2-shaped uint16 COGs (10 m pixels,
//!   EPSG:32630, DN = reflectance × 10⁴, 0 = nodata), 1536 × 1536 px in 512 px blocks: field
//!   parcels whose vegetation changes between the dates (harvest, green-up), a river, a
//!   village, and a no-data wedge outside the swath;
//! - `scene/water/stations.csv` (generic station table, 2022-05-15, six stations around the
//!   tile) and `scene/water/plots.geojson` (six SIGPAC plots: vineyard, olive, fruit, nuts,
//!   citrus, and a plot crossing the tile edge);
//! - `scene/biomass/training.csv`: a headerless training table (biomass kg then the 11 NEON
//!   predictors) made from an allometric rule `biomass = 0.0673 (ρ D² H)^0.976` (Chave et
//!   al. 2014, with D from crown width), for the demo only.
//!
//! The runs: `lidar` on the tile (DEM, DSM, CHM, FCC, slope, aspect), then `water` on the
//! lidar DEM with the stations and plots, `biomass` on the lidar CHM, and `ndvi` on the band
//! pairs — each in its own folder with `report.json` and figures.

use std::f64::consts::PI;

use bytes::Bytes;
use cloud::{ProgressMode, Store};
use cog::{CogWriteOptions, Crs, GeoTransform, Raster};
use ndarray::Array2;
use serde::Serialize;

use crate::error::DriverError;
use crate::exec::Executor;
use crate::pipeline::Pipeline;
use crate::pipeline::biomass::BiomassPipeline;
use crate::pipeline::lidar::LidarPipeline;
use crate::pipeline::ndvi::{NdviInput, NdviPipeline};
use crate::pipeline::water::WaterPipeline;
use crate::run::{RunConfig, RunSummary, run_pipeline};

/// SplitMix64: a small deterministic generator (same numbers on every platform).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [a, b).
    pub fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.f64()
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.f64().max(1e-12);
        let v = self.f64();
        (-2.0 * u.ln()).sqrt() * (2.0 * PI * v).cos()
    }
}

/// Where the synthetic scene's files are.
#[derive(Debug, Clone, Serialize)]
pub struct Scene {
    pub las: String,
    pub points: u64,
    pub trees: usize,
    pub b04_before: String,
    pub b08_before: String,
    pub b04_after: String,
    pub b08_after: String,
    pub stations: String,
    pub plots: String,
    pub training: String,
    pub date: String,
}

/// Lower-left corner of the LiDAR tile, EPSG:25830 (m).
pub const LIDAR_X0: f64 = 645_000.0;
pub const LIDAR_Y0: f64 = 4_185_000.0;
/// Side of the LiDAR tile, m.
pub const LIDAR_SIDE: f64 = 300.0;

/// Ground elevation of the synthetic terrain at (x, y), m.
pub fn ground_z(x: f64, y: f64) -> f64 {
    let (u, v) = (x - LIDAR_X0, y - LIDAR_Y0);
    210.0
        + 0.06 * u
        + 0.02 * v
        + 6.0 * (u / 47.0).sin() * (v / 61.0).cos()
        + 2.5 * ((u + v) / 23.0).sin()
}

/// A synthetic tree.
#[derive(Debug, Clone, Copy)]
struct Tree {
    x: f64,
    y: f64,
    height: f64,
    radius: f64,
}

impl Tree {
    /// Canopy height above ground at horizontal distance `d` (m): an ellipsoidal crown
    /// over the upper 60 % of the tree.
    fn canopy(&self, d: f64) -> Option<f64> {
        let r = d / self.radius;
        (r < 1.0).then(|| self.height * (0.4 + 0.6 * (1.0 - r * r).sqrt()))
    }
}

fn trees(rng: &mut Rng) -> Vec<Tree> {
    let mut out: Vec<Tree> = Vec::new();
    let mut tries = 0;
    while out.len() < 120 && tries < 20_000 {
        tries += 1;
        // A stand in the north-east two thirds, a few scattered trees elsewhere.
        let (u, v) = (
            rng.range(8.0, LIDAR_SIDE - 8.0),
            rng.range(8.0, LIDAR_SIDE - 8.0),
        );
        let in_stand = u > 90.0 && v > 80.0;
        if !in_stand && rng.f64() > 0.15 {
            continue;
        }
        let height = rng.range(4.0, 22.0);
        let radius = 1.2 + height * rng.range(0.12, 0.2);
        let (x, y) = (LIDAR_X0 + u, LIDAR_Y0 + v);
        let clear = out.iter().all(|t| {
            let d = ((t.x - x).powi(2) + (t.y - y).powi(2)).sqrt();
            d > 0.8 * (t.radius + radius)
        });
        if clear {
            out.push(Tree {
                x,
                y,
                height,
                radius,
            });
        }
    }
    out
}

/// Points per m² at (u, v) metres from the tile's corner: uneven on purpose.
fn density(u: f64, v: f64) -> f64 {
    if (120.0..170.0).contains(&u) {
        9.0 // flight-line overlap
    } else if u < 60.0 && v < 60.0 {
        1.0 // shadowed corner
    } else {
        3.0
    }
}

/// GeoKeyDirectoryTag of a projected EPSG code (LASF_Projection 34735).
pub(crate) fn geokeys(epsg: u16) -> Vec<u8> {
    let keys: [[u16; 4]; 5] = [
        [1, 1, 0, 4],
        [1024, 0, 1, 1],    // GTModelType: projected
        [1025, 0, 1, 1],    // GTRasterType: PixelIsArea
        [3072, 0, 1, epsg], // ProjectedCSType
        [3076, 0, 1, 9001], // ProjLinearUnits: metre
    ];
    keys.iter()
        .flatten()
        .flat_map(|k| k.to_le_bytes())
        .collect()
}

/// The LAS bytes of the synthetic tile, with its point and tree counts.
pub fn lidar_tile(seed: u64) -> Result<(Vec<u8>, u64, usize), DriverError> {
    let enc = |e: las::Error| DriverError::encode("demo.las", e);
    let mut rng = Rng::new(seed);
    let trees = trees(&mut rng);
    // Trees by 10 m cell, for the crown lookups.
    let cells = (LIDAR_SIDE / 10.0).ceil() as usize;
    let mut grid: Vec<Vec<usize>> = vec![Vec::new(); cells * cells];
    for (i, t) in trees.iter().enumerate() {
        let (u, v) = (t.x - LIDAR_X0, t.y - LIDAR_Y0);
        let (c0, c1) = (
            ((u - t.radius) / 10.0).floor().max(0.0) as usize,
            ((u + t.radius) / 10.0) as usize,
        );
        let (r0, r1) = (
            ((v - t.radius) / 10.0).floor().max(0.0) as usize,
            ((v + t.radius) / 10.0) as usize,
        );
        for r in r0..=r1.min(cells - 1) {
            for c in c0..=c1.min(cells - 1) {
                grid[r * cells + c].push(i);
            }
        }
    }
    let mut builder = las::Builder::from((1, 2));
    builder.point_format = las::point::Format::new(1).map_err(enc)?;
    builder.system_identifier = "geobutton demo".to_string();
    builder.generating_software = "geobutton demo (synthetic)".to_string();
    builder.transforms = las::Vector {
        x: las::Transform {
            scale: 0.01,
            offset: LIDAR_X0,
        },
        y: las::Transform {
            scale: 0.01,
            offset: LIDAR_Y0,
        },
        z: las::Transform {
            scale: 0.01,
            offset: 0.0,
        },
    };
    builder.vlrs.push(las::Vlr {
        user_id: "LASF_Projection".to_string(),
        record_id: 34735,
        description: "GeoKeyDirectoryTag".to_string(),
        data: geokeys(25830),
    });
    let header = builder.into_header().map_err(enc)?;
    let mut w = las::Writer::new(std::io::Cursor::new(Vec::new()), header).map_err(enc)?;
    let mut n = 0u64;
    let mut t = 0.0f64;
    // Points in 1 m cells, as many as the density asks (fractional part by chance).
    for cv in 0..LIDAR_SIDE as usize {
        for cu in 0..LIDAR_SIDE as usize {
            let want = density(cu as f64 + 0.5, cv as f64 + 0.5);
            let k = want.floor() as usize + (rng.f64() < want.fract()) as usize;
            for _ in 0..k {
                let (u, v) = (cu as f64 + rng.f64(), cv as f64 + rng.f64());
                let (x, y) = (LIDAR_X0 + u, LIDAR_Y0 + v);
                let g = ground_z(x, y) + 0.03 * rng.normal();
                let cell = (v / 10.0) as usize * cells + (u / 10.0) as usize;
                let canopy = grid[cell]
                    .iter()
                    .filter_map(|&i| {
                        let tr = &trees[i];
                        tr.canopy(((tr.x - x).powi(2) + (tr.y - y).powi(2)).sqrt())
                    })
                    .fold(None, |m: Option<f64>, h| Some(m.map_or(h, |m| m.max(h))));
                t += 1e-5;
                let base = las::Point {
                    x,
                    y,
                    gps_time: Some(t),
                    intensity: 200,
                    ..Default::default()
                };
                match canopy {
                    Some(h) => {
                        let through = rng.f64() < 0.45;
                        let top = g + h - rng.range(0.0, 0.6);
                        w.write_point(las::Point {
                            z: top,
                            return_number: 1,
                            number_of_returns: if through { 2 } else { 1 },
                            intensity: 120,
                            ..base.clone()
                        })
                        .map_err(enc)?;
                        n += 1;
                        if through {
                            w.write_point(las::Point {
                                z: g,
                                return_number: 2,
                                number_of_returns: 2,
                                ..base
                            })
                            .map_err(enc)?;
                            n += 1;
                        }
                    }
                    None => {
                        w.write_point(las::Point {
                            z: g,
                            return_number: 1,
                            number_of_returns: 1,
                            ..base
                        })
                        .map_err(enc)?;
                        n += 1;
                    }
                }
            }
        }
    }
    w.close().map_err(enc)?;
    let bytes = w.into_inner().map_err(enc)?.into_inner();
    Ok((bytes, n, trees.len()))
}

/// Size of the Sentinel-2-shaped rasters, pixels.
pub const S2_SIZE: usize = 1536;

/// Red and NIR reflectances (×10⁴) of the synthetic scene at pixel (r, c) on `date` (0 or 1).
fn s2_pixel(r: usize, c: usize, date: usize, noise: f64) -> (u16, u16) {
    // No-data wedge outside the swath (both dates).
    if c + r / 3 < 160 {
        return (0, 0);
    }
    let (fr, fc) = (r / 128, c / 128);
    let parcel = (fr * 12 + fc) as u64;
    let h = parcel.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56;
    let river = ((c as f64 - 700.0 - 120.0 * (r as f64 / 200.0).sin()).abs()) < 9.0;
    let village = (900..1020).contains(&r) && (300..430).contains(&c);
    let (mut red, mut nir) = if river {
        (0.03, 0.02)
    } else if village {
        (0.16, 0.22)
    } else {
        // Vegetation fraction of the parcel, changed on the later date for a third of them.
        let mut f = (h % 100) as f64 / 100.0;
        if date == 1 {
            match h % 3 {
                0 => f = (f - 0.5).max(0.05), // harvest
                1 => f = (f + 0.3).min(0.95), // green-up
                _ => {}
            }
        }
        (0.12 - 0.08 * f, 0.18 + 0.32 * f)
    };
    red *= 1.0 + 0.03 * noise;
    nir *= 1.0 + 0.03 * noise;
    let dn = |v: f64| (v * 10_000.0).round().clamp(1.0, 65_535.0) as u16;
    (dn(red), dn(nir))
}

fn s2_band(date: usize, nir: bool, seed: u64) -> Raster<u16> {
    s2_band_at(
        date,
        nir,
        seed,
        S2_SIZE,
        GeoTransform::north_up(600_000.0, 4_200_000.0, 10.0),
    )
}

/// A `size`² band of the synthetic scene (red or NIR DN, date 0 or 1) on `transform`
/// (EPSG:32630, 10 m).
pub(crate) fn s2_band_at(
    date: usize,
    nir: bool,
    seed: u64,
    size: usize,
    transform: GeoTransform,
) -> Raster<u16> {
    let mut rng = Rng::new(seed);
    let mut data = Array2::<u16>::zeros((size, size));
    for ((r, c), v) in data.indexed_iter_mut() {
        let (red, n) = s2_pixel(r, c, date, rng.normal());
        *v = if nir { n } else { red };
    }
    Raster {
        data,
        transform,
        crs: Crs::epsg(32630),
        nodata: Some(0),
    }
}

pub(crate) fn stations_csv() -> String {
    // id, x, y (EPSG:25830), elevation, then the day's observations.
    let rows = [
        (
            "DM01",
            640_100.0,
            4_181_200.0,
            185.0,
            29.8,
            14.1,
            88.0,
            31.0,
            1.9,
            27.4,
        ),
        (
            "DM02",
            651_800.0,
            4_182_600.0,
            240.0,
            28.9,
            13.2,
            85.0,
            33.0,
            2.3,
            27.9,
        ),
        (
            "DM03",
            648_900.0,
            4_192_400.0,
            320.0,
            27.6,
            12.0,
            90.0,
            35.0,
            2.8,
            28.3,
        ),
        (
            "DM04",
            639_400.0,
            4_190_800.0,
            270.0,
            28.2,
            12.7,
            87.0,
            34.0,
            2.1,
            27.6,
        ),
        (
            "DM05",
            656_300.0,
            4_188_900.0,
            410.0,
            26.5,
            11.4,
            92.0,
            38.0,
            3.1,
            28.8,
        ),
        (
            "DM06",
            645_700.0,
            4_176_900.0,
            150.0,
            30.4,
            14.8,
            84.0,
            29.0,
            1.7,
            27.1,
        ),
    ];
    let mut s =
        String::from("id,x,y,elev_m,date,tmax_c,tmin_c,rhmax_pct,rhmin_pct,u2_m_s,rs_mj_m2\n");
    for (id, x, y, z, tx, tn, rx, rn, u2, rs) in rows {
        s.push_str(&format!(
            "{id},{x},{y},{z},2022-05-15,{tx},{tn},{rx},{rn},{u2},{rs}\n"
        ));
    }
    s
}

pub(crate) fn plots_geojson() -> String {
    let rect = |id: &str, uso: &str, u0: f64, v0: f64, u1: f64, v1: f64| {
        let (x0, y0, x1, y1) = (LIDAR_X0 + u0, LIDAR_Y0 + v0, LIDAR_X0 + u1, LIDAR_Y0 + v1);
        serde_json::json!({
            "type": "Feature",
            "properties": { "id": id, "uso_sigpac": uso },
            "geometry": { "type": "Polygon", "coordinates": [[
                [x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]
            ]]}
        })
    };
    serde_json::json!({
        "type": "FeatureCollection",
        "features": [
            rect("P1", "VI", 10.0, 10.0, 80.0, 70.0),
            rect("P2", "OV", 100.0, 10.0, 170.0, 60.0),
            rect("P3", "FY", 190.0, 15.0, 280.0, 70.0),
            rect("P4", "FS", 15.0, 100.0, 75.0, 180.0),
            rect("P5", "CI", 15.0, 200.0, 80.0, 260.0),
            rect("P6", "VI", 260.0, 240.0, 340.0, 290.0),
        ]
    })
    .to_string()
}

/// The 11 NEON predictors of an idealised crown of `height` m and `radius` m on a 1 m grid,
/// and its biomass from the allometric rule.
fn training_row(height: f64, radius: f64) -> [f64; 12] {
    let t = Tree {
        x: 0.0,
        y: 0.0,
        height,
        radius,
    };
    let mut hs = Vec::new();
    let r = radius.ceil() as i64;
    for i in -r..=r {
        for j in -r..=r {
            if let Some(h) = t.canopy(((i * i + j * j) as f64).sqrt()) {
                hs.push(h);
            }
        }
    }
    hs.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        let pos = q / 100.0 * (hs.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        hs[lo] + (hs[hi] - hs[lo]) * (pos - lo as f64)
    };
    let (min, max) = (hs[0], hs[hs.len() - 1]);
    let (p50, p60, p70) = (pct(50.0), pct(60.0), pct(70.0));
    let sum_to = |cap: f64| hs.iter().map(|h| h.min(cap) - min).sum::<f64>();
    // Chave et al. 2014 pantropical rule with wood density 0.5 g/cm³ and a diameter from the
    // crown width (D ≈ 2.8 × crown diameter, cm) — synthetic, for the demo's forest only.
    let d_cm = 2.8 * 2.0 * radius;
    let biomass = 0.0673 * (0.5 * d_cm * d_cm * height).powf(0.976);
    [
        biomass,
        hs.len() as f64,
        2.0 * radius,
        max,
        min,
        p50,
        p60,
        p70,
        sum_to(f64::INFINITY),
        sum_to(p50),
        sum_to(p60),
        sum_to(p70),
    ]
}

fn training_csv(seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut s = String::new();
    for _ in 0..48 {
        let h = rng.range(4.0, 22.0);
        let radius = 1.2 + h * rng.range(0.12, 0.2);
        let row = training_row(h, radius);
        let line: Vec<String> = row.iter().map(|v| format!("{v:.4}")).collect();
        s.push_str(&line.join(","));
        s.push('\n');
    }
    s
}

/// Writes the synthetic scene under `<out>/scene`.
pub fn generate_scene(store: &Store, out: &str) -> Result<Scene, DriverError> {
    let j = |p: &str| cloud::uri::join(out, &format!("scene/{p}"));
    let (las_bytes, points, n_trees) = lidar_tile(7)?;
    let las = j("lidar/demo.las");
    store.put(&las, Bytes::from(las_bytes))?;
    let opts = CogWriteOptions {
        blocksize: 512,
        ..CogWriteOptions::default()
    };
    let bands = [
        ("s2/before/B04.tif", 0, false, 11),
        ("s2/before/B08.tif", 0, true, 12),
        ("s2/after/B04.tif", 1, false, 13),
        ("s2/after/B08.tif", 1, true, 14),
    ];
    use rayon::prelude::*;
    bands.par_iter().try_for_each(|&(name, date, nir, seed)| {
        let uri = j(name);
        cog::write_cog(store, &uri, &s2_band(date, nir, seed), &opts)
            .map_err(|e| DriverError::encode(uri.clone(), e))
    })?;
    let stations = j("water/stations.csv");
    store.put(&stations, Bytes::from(stations_csv()))?;
    let plots = j("water/plots.geojson");
    store.put(&plots, Bytes::from(plots_geojson()))?;
    let training = j("biomass/training.csv");
    store.put(&training, Bytes::from(training_csv(21)))?;
    Ok(Scene {
        las,
        points,
        trees: n_trees,
        b04_before: j(bands[0].0),
        b08_before: j(bands[1].0),
        b04_after: j(bands[2].0),
        b08_after: j(bands[3].0),
        stations,
        plots,
        training,
        date: "2022-05-15".to_string(),
    })
}

/// The demo's runs.
#[derive(Debug, Clone)]
pub struct Demo {
    pub scene: Scene,
    pub runs: Vec<(String, RunSummary)>,
}

/// Generates the scene under `out` and runs `lidar`, `water`, `biomass` and `ndvi` on it
/// with `executor`, each under `out/<pipeline>`.
pub fn run_demo(
    store: &Store,
    out: &str,
    executor: &dyn Executor,
    progress: ProgressMode,
) -> Result<Demo, DriverError> {
    let out = out.trim_end_matches('/');
    tracing::info!(out, "generating the synthetic scene");
    let scene = generate_scene(store, out)?;
    let dir = |p: &str| cloud::uri::join(out, p);
    let config = |p: &str| RunConfig {
        progress,
        ..RunConfig::new(&dir(p))
    };
    let mut runs = Vec::new();
    let mut run = |p: &mut dyn Pipeline, name: &str| -> Result<RunSummary, DriverError> {
        let s = run_pipeline(p, executor, store, &config(name))?;
        runs.push((name.to_string(), s.clone()));
        Ok(s)
    };

    let mut lidar = LidarPipeline::new(vec![scene.las.clone()], &dir("lidar"));
    lidar.capacity = Some(scene.points.div_ceil(4));
    lidar.target_mb = None;
    lidar.buffer_m = 20.0;
    run(&mut lidar, "lidar")?;
    let dem = cloud::uri::join(&dir("lidar"), "dem.tif");
    let chm = cloud::uri::join(&dir("lidar"), "chm.tif");

    let template: water::Params = serde_json::from_value(serde_json::json!({
        "dtm": "", "stations": scene.stations, "date": scene.date,
        "plots": scene.plots, "out": "", "options": { "windows": 2 }
    }))
    .map_err(|e| DriverError::Invalid(format!("demo water parameters: {e}")))?;
    run(
        &mut WaterPipeline::new(vec![dem], template, &dir("water")),
        "water",
    )?;

    let biomass_run: biomass::RunParams = serde_json::from_value(serde_json::json!({
        "chm": chm, "training": scene.training, "out": dir("biomass"),
    }))
    .map_err(|e| DriverError::Invalid(format!("demo biomass parameters: {e}")))?;
    run(&mut BiomassPipeline::new(biomass_run, 2), "biomass")?;

    let input = NdviInput::Bands {
        before: ndvi::SceneBands::from_uris(&scene.b04_before, &scene.b08_before, None, 0.0),
        after: ndvi::SceneBands::from_uris(&scene.b04_after, &scene.b08_after, None, 0.0),
        out: dir("ndvi"),
        window: 512,
        blocksize: 512,
        quicklook: true,
    };
    run(&mut NdviPipeline::new(input), "ndvi")?;
    Ok(Demo { scene, runs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic() {
        let mut a = Rng::new(3);
        let mut b = Rng::new(3);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        // SplitMix64's first output for seed 0 (reference value of the algorithm).
        assert_eq!(Rng::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn training_rows_follow_the_crown_geometry() {
        let row = training_row(10.0, 3.0);
        assert!(row[1] > 20.0 && row[1] < 40.0, "area {}", row[1]); // ≈ π 3² px
        assert!((row[3] - 10.0).abs() < 1e-9, "max height at the stem");
        assert!(row[4] >= 4.0 && row[5] >= row[4] && row[6] >= row[5] && row[7] >= row[6]);
        assert!(row[8] >= row[11] && row[11] >= row[10] && row[10] >= row[9]);
        assert!(row[0] > 10.0 && row[0] < 2000.0, "biomass {}", row[0]);
    }
}
