//! Buffered partitions: models computed per partition (lidar-partitioner tiles with a
//! buffer ≥ 2·SMRF window + 3 cells) and mosaicked equal the models of the whole tile.
#![allow(clippy::unwrap_used)]

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
    Ctx {
        store: Store::from_env(),
        progress_mode: ProgressMode::Silent,
        task_id: None,
    }
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

/// With a buffer of only one SMRF window (the minimum), SMRF near a partition's
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
    for &(x, y) in dem {
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

/// Per product, the centres of the cells where the mosaic differs from the whole tile.
type Diffs = BTreeMap<String, Vec<(f64, f64)>>;

fn seams(options: ModelOptions) {
    let buffer = 2.0 * options.smrf.window + 3.0 * options.smrf.cell + 2.0;
    let (diffs, _, _) = compare(&options, buffer);
    for (name, d) in diffs {
        assert!(d.is_empty(), "{name}: {} cells differ", d.len());
    }
}

/// Partitions the tile with `buffer`, computes the models of the whole tile and of each
/// partition, mosaics the partitions, and returns per product the centres of the cells
/// that differ, the number of cells, and the manifest.
fn compare(options: &ModelOptions, buffer: f64) -> (Diffs, usize, lidar_partitioner::Manifest) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let ctx = ctx();
    let manifest = lidar_partitioner::partition(
        TILE,
        &format!("{d}/parts"),
        &lidar_partitioner::Params::capacity(45_000, buffer),
    )
    .unwrap();
    assert!(manifest.tiles.len() >= 4, "{} tiles", manifest.tiles.len());

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
    for t in &manifest.tiles {
        let out = run_models(
            &ModelsParams {
                input: t.uri.clone(),
                output: format!("{d}/tiles"),
                name: Some(format!("t{}", t.index)),
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
                differ.push((x, y));
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
    (diffs, total, manifest)
}
