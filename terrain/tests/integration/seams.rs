//! Buffered partitions: models computed per partition (lidar-partitioner tiles with a
//! buffer ≥ 2·SMRF window + 3 cells) and mosaicked equal the models of the whole tile.

use std::collections::BTreeMap;

use cloud::{Ctx, ProgressMode, Store};
use cog::Raster;
use terrain::noise::{ElmParams, OutlierParams};
use terrain::smrf::SmrfParams;
use terrain::stage::{ModelsParams, MosaicParams, RasterOutput, run_models, run_mosaic};
use terrain::{DemMethod, ModelOptions, Product};

const TILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/cnig/murcia_tiles/out_-1_-8.laz"
);

fn ctx() -> Ctx {
    Ctx::new(Store::from_env()).with_progress(ProgressMode::Silent)
}

#[test]
fn partition_mosaics_equal_the_whole_tile() {
    seams(ModelOptions {
        resolution: 2.0,
        smrf: SmrfParams {
            cell: 2.0,
            ..Default::default()
        },
        elm: Some(ElmParams::default()),
        // PNOA 2016 has ~0.5 points/m²: CloudButton's 1 m radius would flag most points.
        outlier: Some(OutlierParams {
            radius: 3.0,
            min_neighbours: 4,
            ..OutlierParams::cloudbutton_radius()
        }),
        ..Default::default()
    });
}

#[test]
fn tin_partition_mosaics_equal_the_whole_tile() {
    seams(ModelOptions {
        resolution: 2.0,
        smrf: SmrfParams {
            cell: 2.0,
            ..Default::default()
        },
        dem_method: DemMethod::Tin,
        tin_max_edge: Some(20.0),
        products: vec![Product::Dem, Product::Slope],
        ..Default::default()
    });
}

/// With a buffer of only one SMRF window (the issue's minimum), SMRF near a partition's
/// buffered edge sees less than the whole tile: the models may differ there, and only there
/// — within 2·window + 3·cell of an inner partition edge.
#[test]
fn a_narrow_buffer_differs_only_near_partition_edges() {
    let options = ModelOptions {
        resolution: 2.0,
        smrf: SmrfParams {
            cell: 2.0,
            ..Default::default()
        },
        products: vec![Product::Dem],
        ..Default::default()
    };
    let reach = 2.0 * options.smrf.window + 3.0 * options.smrf.cell;
    let (diffs, total, manifest) = compare(&options, options.smrf.window);
    let dem = &diffs["dem"];
    eprintln!("buffer = window: {} of {total} DEM cells differ", dem.len());
    for &(x, y, _) in dem {
        let near = manifest.tiles.iter().any(|t| {
            let b = &t.core_bbox;
            let inside = |v: f64, lo: f64, hi: f64| v >= lo - reach && v <= hi + reach;
            let near_x = (x - b.min_x).abs() <= reach || (x - b.max_x).abs() <= reach;
            let near_y = (y - b.min_y).abs() <= reach || (y - b.max_y).abs() <= reach;
            (near_x && inside(y, b.min_y, b.max_y)) || (near_y && inside(x, b.min_x, b.max_x))
        });
        assert!(
            near,
            "cell at ({x}, {y}) differs far from every partition edge"
        );
    }
}

/// Per product, the cells where the mosaic differs from the whole tile: centre x, y and |Δ|
/// (infinite where one has a value and the other none).
type Diffs = BTreeMap<String, Vec<(f64, f64, f32)>>;

fn seams(options: ModelOptions) {
    let buffer = 2.0 * options.smrf.window + 3.0 * options.smrf.cell + 2.0;
    let (diffs, _, _) = compare(&options, buffer);
    for (name, d) in diffs {
        assert!(d.is_empty(), "{name}: {} cells differ", d.len());
    }
}

/// Partitions the tile with `buffer`, computes the models of the whole tile and of each
/// partition, mosaics the partitions, and returns per product the cells that differ, the
/// number of cells, and the manifest.
fn compare(options: &ModelOptions, buffer: f64) -> (Diffs, usize, lidar_partitioner::Manifest) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (diffs, total, mut manifests) =
        compare_files(d, options, &[(TILE.to_string(), Vec::new())], buffer);
    let manifest = manifests.remove(0);
    assert!(manifest.tiles.len() >= 4, "{} tiles", manifest.tiles.len());
    (diffs, total, manifest)
}

/// Partitions each file (with the points of its neighbours within `buffer`), computes the
/// models of every partition, mosaics them, and compares with the models of the whole tile
/// [`TILE`]: per product the cells that differ, the number of cells, the manifests.
fn compare_files(
    d: &str,
    options: &ModelOptions,
    files: &[(String, Vec<String>)],
    buffer: f64,
) -> (Diffs, usize, Vec<lidar_partitioner::Manifest>) {
    let ctx = ctx();
    let manifests: Vec<lidar_partitioner::Manifest> = files
        .iter()
        .enumerate()
        .map(|(i, (file, neighbours))| {
            let params = lidar_partitioner::Params {
                neighbours: neighbours.clone(),
                ..lidar_partitioner::Params::capacity(45_000, buffer)
            };
            lidar_partitioner::partition(file, &format!("{d}/parts{i}"), &params).unwrap()
        })
        .collect();
    let whole = run_models(
        &ModelsParams {
            input: TILE.to_string(),
            output: format!("{d}/whole"),
            name: Some("whole".into()),
            epsg: Some(25830),
            options: options.clone(),
            ground_output: None,
            raster: RasterOutput::default(),
        },
        &ctx,
    )
    .unwrap();
    let mut per_product: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, manifest) in manifests.iter().enumerate() {
        for t in &manifest.tiles {
            let out = run_models(
                &ModelsParams {
                    input: t.uri.clone(),
                    output: format!("{d}/tiles"),
                    name: Some(format!("f{i}t{}", t.index)),
                    epsg: Some(25830),
                    options: options.clone(),
                    ground_output: None,
                    raster: RasterOutput::default(),
                },
                &ctx,
            )
            .unwrap();
            assert_eq!(out.stats.buffer_points, t.buffer_points);
            for (p, u) in out.products {
                per_product.entry(p).or_default().push(u);
            }
        }
    }
    let mut diffs = BTreeMap::new();
    let mut total = 0;
    for p in options.products.iter().copied() {
        let name = p.name();
        let mosaic_uri = format!("{d}/mosaic_{name}.tif");
        run_mosaic(
            &MosaicParams {
                inputs: per_product[name].clone(),
                output: mosaic_uri.clone(),
                format: Default::default(),
                raster: RasterOutput::default(),
                combine: Default::default(),
            },
            &ctx,
        )
        .unwrap();
        let m: Raster<f32> = cog::read_band(&ctx.store, &mosaic_uri, 1).unwrap();
        let w: Raster<f32> = cog::read_band(&ctx.store, &whole.products[name], 1).unwrap();
        // The mosaic lies on the whole tile's lattice, inside it.
        let dc = ((m.transform.0[0] - w.transform.0[0]) / 2.0).round() as usize;
        let dr = ((w.transform.0[3] - m.transform.0[3]) / 2.0).round() as usize;
        let (mut same, mut valid) = (0usize, 0usize);
        let mut differ = Vec::new();
        for ((r, c), &mv) in m.data.indexed_iter() {
            let wv = w.data[(r + dr, c + dc)];
            if mv.to_bits() == wv.to_bits() {
                same += 1;
            } else {
                let (x, y) = m.transform.apply(c as f64 + 0.5, r as f64 + 0.5);
                let delta = if mv == -9999.0 || wv == -9999.0 {
                    f32::INFINITY
                } else {
                    (mv - wv).abs()
                };
                differ.push((x, y, delta));
            }
            valid += (mv != -9999.0) as usize;
        }
        eprintln!(
            "{name}: {same} identical, {} different, {valid} valid cells in the mosaic",
            differ.len()
        );
        assert!(valid > m.data.len() / 2, "{name}: mostly valid");
        total = m.data.len();
        diffs.insert(name.to_string(), differ);
    }
    (diffs, total, manifests)
}

/// Issue 14, item 3: the tile cut into four files along its x and y medians (laspy), each
/// partitioned with the points of the other three within the buffer, gives the models of
/// the whole tile, bit for bit, seams included; each partitioned alone, it does not.
#[test]
fn adjacent_files_with_their_neighbours_equal_the_merged_tile() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let split = r#"
import sys, laspy, numpy as np
las = laspy.read(sys.argv[1])
xm, ym = np.median(las.x), np.median(las.y)
for k, m in enumerate([(las.x < xm) & (las.y < ym), (las.x >= xm) & (las.y < ym),
                       (las.x < xm) & (las.y >= ym), (las.x >= xm) & (las.y >= ym)]):
    part = laspy.LasData(las.header)
    part.points = las.points[m].copy()
    part.write(f"{sys.argv[2]}/part{k}.las")
"#;
    let o = std::process::Command::new("python3")
        .args(["-c", split, TILE, d])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let parts: Vec<String> = (0..4).map(|k| format!("{d}/part{k}.las")).collect();
    let options = ModelOptions {
        resolution: 2.0,
        smrf: SmrfParams {
            cell: 2.0,
            ..Default::default()
        },
        products: vec![Product::Dem, Product::Slope],
        ..Default::default()
    };
    let buffer = 2.0 * options.smrf.window + 3.0 * options.smrf.cell + 2.0;
    let with: Vec<(String, Vec<String>)> = parts
        .iter()
        .map(|p| {
            (
                p.clone(),
                parts.iter().filter(|q| *q != p).cloned().collect(),
            )
        })
        .collect();
    let (diffs, total, manifests) = compare_files(&format!("{d}/with"), &options, &with, buffer);
    for m in &manifests {
        // Every file's points are core once; the neighbours' only buffer.
        let core: u64 = m.tiles.iter().map(|t| t.core_points).sum();
        assert_eq!(core, m.input.points);
    }
    // Away from the outer border: cells whose centre lies in one of the files' boxes (where
    // a file's points stop short of the tile's box, the whole tile's grid reaches beyond).
    let inside = |x: f64, y: f64| {
        manifests.iter().any(|m| {
            let b = &m.input.bounds;
            x >= b.min[0] && x <= b.max[0] && y >= b.min[1] && y <= b.max[1]
        })
    };
    for (name, dd) in &diffs {
        let interior: Vec<_> = dd.iter().filter(|c| inside(c.0, c.1)).collect();
        eprintln!(
            "with neighbours, {name}: {} of {total} cells differ, {} inside the files' boxes",
            dd.len(),
            interior.len()
        );
        assert!(interior.is_empty(), "{name}: {interior:?}");
    }
    let alone: Vec<(String, Vec<String>)> = parts.iter().map(|p| (p.clone(), Vec::new())).collect();
    let (diffs, _, _) = compare_files(&format!("{d}/alone"), &options, &alone, buffer);
    let max = |name: &str| {
        diffs[name]
            .iter()
            .filter(|c| inside(c.0, c.1))
            .map(|c| c.2)
            .filter(|v| v.is_finite())
            .fold(0.0f32, f32::max)
    };
    let count = |name: &str| diffs[name].iter().filter(|c| inside(c.0, c.1)).count();
    eprintln!(
        "files alone: {} DEM cells differ (max |Δ| {} m), {} slope cells (max |Δ| {}°)",
        count("dem"),
        max("dem"),
        count("slope"),
        max("slope")
    );
    assert!(count("dem") > 0 && count("slope") > 0);
}
