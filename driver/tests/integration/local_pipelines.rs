//! Each pipeline end to end with the local executor on real fixtures, checked against the
//! stage crates' own results.

use crate::common;

use crate::common::{assert_same_raster, ctx, data};
use cloud::{ProgressMode, Store};
use driver::exec::local::LocalExecutor;
use driver::pipeline::biomass::BiomassPipeline;
use driver::pipeline::lidar::LidarPipeline;
use driver::pipeline::ndvi::{NdviInput, NdviPipeline};
use driver::pipeline::water::WaterPipeline;
use driver::run::{RunConfig, run_pipeline};

fn config(out: &str) -> RunConfig {
    RunConfig {
        progress: ProgressMode::Silent,
        ..RunConfig::new(out)
    }
}

fn local() -> LocalExecutor {
    LocalExecutor {
        concurrency: 2,
        ..Default::default()
    }
}

#[test]
fn lidar_pipeline_equals_the_whole_tile_models() {
    // CNIG PNOA Murcia tile, 2 m models (the terrain crate's seam test settings): the
    // pipeline's mosaics of buffered partitions equal terrain's models of the whole tile.
    let tile = data("cnig/murcia_tiles/out_-1_-8.laz");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let store = Store::from_env();
    let mut options = terrain::ModelOptions {
        resolution: 2.0,
        ..Default::default()
    };
    options.smrf.cell = 2.0;
    options.products = vec![
        terrain::Product::Dem,
        terrain::Product::Chm,
        terrain::Product::Slope,
    ];
    let mut p = LidarPipeline::new(vec![tile.clone()], &format!("{d}/run"));
    p.capacity = Some(45_000);
    p.buffer_m = 2.0 * options.smrf.window + 3.0 * options.smrf.cell + 2.0;
    p.epsg = Some(25830);
    p.models = options.clone();
    let s = run_pipeline(&mut p, &local(), &store, &config(&format!("{d}/run"))).unwrap();
    let steps: Vec<(&str, usize)> = s
        .report
        .steps
        .iter()
        .map(|st| (st.step.as_str(), st.tasks))
        .collect();
    assert_eq!(steps[0], ("partition", 1));
    assert_eq!(steps[1].0, "terrain");
    assert!(steps[1].1 >= 4, "{steps:?}");
    assert_eq!(steps[2], ("mosaic", 3));

    let whole = terrain::stage::run_models(
        &terrain::stage::ModelsParams {
            input: tile,
            output: format!("{d}/whole"),
            name: Some("whole".into()),
            epsg: Some(25830),
            options,
            ground_output: None,
            raster: Default::default(),
        },
        &ctx(&store),
    )
    .unwrap();
    for name in ["dem", "chm", "slope"] {
        let m: cog::Raster<f32> =
            cog::read_band(&store, &format!("{d}/run/{name}.tif"), 1).unwrap();
        let w: cog::Raster<f32> = cog::read_band(&store, &whole.products[name], 1).unwrap();
        let dc = ((m.transform.0[0] - w.transform.0[0]) / 2.0).round() as usize;
        let dr = ((w.transform.0[3] - m.transform.0[3]) / 2.0).round() as usize;
        let mut valid = 0;
        for ((r, c), &mv) in m.data.indexed_iter() {
            assert_eq!(
                mv.to_bits(),
                w.data[(r + dr, c + dc)].to_bits(),
                "{name} ({r},{c})"
            );
            valid += (mv != -9999.0) as usize;
        }
        assert!(valid > m.data.len() / 2, "{name}: mostly valid");
    }
    // Every product carries the CRS (given for this tile, which records none): no warning.
    assert!(s.report.warnings.is_empty(), "{:?}", s.report.warnings);
    // The report names every task with its figures.
    assert_eq!(
        s.report.tasks.len(),
        s.report.steps.iter().map(|s| s.tasks).sum::<usize>()
    );
    assert!(
        s.report
            .tasks
            .iter()
            .all(|t| t.state == "ok" && t.duration_s.is_some())
    );
    assert!(s.report.tasks.iter().all(|t| t.bytes_written > 0));
    assert!(
        s.report
            .figures
            .iter()
            .all(|f| std::fs::metadata(f).unwrap().len() > 1000)
    );
}

#[test]
fn biomass_pipeline_equals_the_whole_image_run() {
    let store = Store::from_env();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let chm = data("biomass/sjer/NEON_D17_SJER_DP3_256000_4106000_CHM.tif");
    let training = data("biomass/sjer/SJER_Biomass_Training.csv");
    let params = |out: &str| -> biomass::RunParams {
        serde_json::from_value(serde_json::json!({
            "chm": chm, "training": training, "out": out, "maps": false
        }))
        .unwrap()
    };
    let mut p = BiomassPipeline::new(params(&format!("{d}/run")), 2);
    let s = run_pipeline(&mut p, &local(), &store, &config(&format!("{d}/run"))).unwrap();
    assert_eq!(s.report.steps[0].tasks, 4);
    assert_eq!(s.report.steps[1].tasks, 1);
    let whole = biomass::run(&params(&format!("{d}/whole")), &ctx(&store)).unwrap();
    assert_eq!(s.results.summary["trees"], whole.trees);
    assert_eq!(
        s.results.summary["total_biomass_kg"],
        serde_json::json!(whole.total_biomass_kg)
    );
    for f in ["trees.csv", "treetops.csv"] {
        assert_eq!(
            std::fs::read_to_string(format!("{d}/run/{f}")).unwrap(),
            std::fs::read_to_string(format!("{d}/whole/{f}")).unwrap(),
            "{f}"
        );
    }
    let a: cog::Raster<u32> = cog::read_band(&store, &format!("{d}/run/crowns.tif"), 1).unwrap();
    let b: cog::Raster<u32> = cog::read_band(&store, &format!("{d}/whole/crowns.tif"), 1).unwrap();
    assert_eq!(a.data, b.data);
    assert_same_raster(
        &store,
        &format!("{d}/run/biomass.tif"),
        &format!("{d}/whole/biomass.tif"),
    );
}

#[test]
fn ndvi_pipeline_equals_the_stage_product() {
    // Real Sentinel-2 29RKH bands (2020-02-19) as the earlier date; the later date is the
    // same scene with NIR raised 10 % over the northern half (a green-up), written as COGs.
    let store = Store::from_env();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let red = data("sentinel/s2_l2a_cogs_29RKH_20200219/B04.tif");
    let nir = data("sentinel/s2_l2a_cogs_29RKH_20200219/B08.tif");
    let mut later: cog::Raster<u16> = cog::read_band(&store, &nir, 1).unwrap();
    let half = later.height() / 2;
    for ((r, _), v) in later.data.indexed_iter_mut() {
        if r < half && *v != 0 {
            *v = (*v as f64 * 1.1).min(65535.0) as u16;
        }
    }
    let nir2 = format!("{d}/after_B08.tif");
    cog::write_cog(
        &store,
        &nir2,
        &later,
        &cog::CogWriteOptions {
            blocksize: 256,
            ..Default::default()
        },
    )
    .unwrap();
    let before = ndvi::SceneBands::from_uris(&red, &nir, None, 0.0);
    let after = ndvi::SceneBands::from_uris(&red, &nir2, None, 0.0);
    let mut p = NdviPipeline::new(NdviInput::Bands {
        before: before.clone(),
        after: after.clone(),
        out: format!("{d}/run"),
        window: 512,
        blocksize: 512,
        quicklook: true,
    });
    let s = run_pipeline(&mut p, &local(), &store, &config(&format!("{d}/run"))).unwrap();
    assert!(s.report.steps[0].tasks >= 4, "{:?}", s.report.steps[0]);
    let product = ndvi::tile::run_product(
        &store,
        &ndvi::tile::ProductTask {
            before,
            after: Some(after),
            out: format!("{d}/stage/diff.tif"),
            ndvi_before: Some(format!("{d}/stage/before.tif")),
            ndvi_after: Some(format!("{d}/stage/after.tif")),
            png: None,
            scl_mask: Vec::new(),
            window: 1024,
            blocksize: 512,
            level: None,
        },
        None,
    )
    .unwrap();
    assert_same_raster(&store, &format!("{d}/run/ndvi_diff.tif"), &product.out);
    assert_same_raster(
        &store,
        &format!("{d}/run/ndvi_before.tif"),
        &format!("{d}/stage/before.tif"),
    );
    assert_same_raster(
        &store,
        &format!("{d}/run/ndvi_after.tif"),
        &format!("{d}/stage/after.tif"),
    );
    let diff: cog::Raster<f32> = cog::read_band(&store, &product.out, 1).unwrap();
    let north = diff.data.row(10).iter().filter(|v| **v > 0.0).count();
    assert!(north > 100, "green-up shows in the north");
    assert!(
        std::fs::metadata(format!("{d}/run/ndvi_diff.png"))
            .unwrap()
            .len()
            > 1000
    );
}

#[test]
fn water_pipeline_equals_the_stage_per_tile_and_merges_plots() {
    // Two adjacent synthetic 100 m DTM sheets through the real SIAM stations (2022-05-15),
    // plots inside one sheet and across both.
    let store = Store::from_env();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let west = format!("{d}/in/west.asc");
    let east = format!("{d}/in/east.asc");
    std::fs::create_dir_all(format!("{d}/in")).unwrap();
    std::fs::write(
        &west,
        common::synthetic_dtm(640_000.0, 4_200_000.0, 100.0, 60, 40),
    )
    .unwrap();
    std::fs::write(
        &east,
        common::synthetic_dtm(646_000.0, 4_200_000.0, 100.0, 60, 40),
    )
    .unwrap();
    let plots = format!("{d}/in/plots.geojson");
    std::fs::write(&plots, common::plots_geojson()).unwrap();
    let template: water::Params = serde_json::from_value(serde_json::json!({
        "dtm": "", "stations": data("water/siam_data.csv"), "date": "2022-05-15",
        "plots": plots, "out": "", "options": { "windows": 2 }
    }))
    .unwrap();
    let mut p = WaterPipeline::new(
        vec![west.clone(), east.clone()],
        template.clone(),
        &format!("{d}/run"),
    );
    let s = run_pipeline(&mut p, &local(), &store, &config(&format!("{d}/run"))).unwrap();
    assert_eq!(s.report.steps.len(), 2);
    let mut volume = 0.0;
    for dtm in [&west, &east] {
        let own = water::stage::run_tile(
            &water::Params {
                dtm: dtm.clone(),
                out: format!("{d}/stage"),
                ..template.clone()
            },
            &ctx(&store),
        )
        .unwrap();
        let stem = if dtm == &west { "west" } else { "east" };
        assert_same_raster(&store, &format!("{d}/run/tiles/{stem}_et0.tif"), &own.et0);
        assert_same_raster(
            &store,
            &format!("{d}/run/tiles/{stem}_etc.tif"),
            own.etc.as_ref().unwrap(),
        );
        let text = std::fs::read_to_string(own.plots_csv.unwrap()).unwrap();
        for line in text.lines().skip(1).filter(|l| l.starts_with("across")) {
            volume += line.rsplit(',').next().unwrap().parse::<f64>().unwrap();
        }
    }
    // The mosaic is the two sheets side by side.
    let m: cog::Raster<f32> = cog::read_band(&store, &format!("{d}/run/et0.tif"), 1).unwrap();
    assert_eq!(m.data.dim(), (40, 120));
    let w: cog::Raster<f32> =
        cog::read_band(&store, &format!("{d}/run/tiles/east_et0.tif"), 1).unwrap();
    assert_eq!(m.data[(7, 60 + 9)].to_bits(), w.data[(7, 9)].to_bits());
    // The plot across both sheets: its volume is the sum of the sheets' parts.
    let merged = std::fs::read_to_string(format!("{d}/run/plots.csv")).unwrap();
    let across = merged.lines().find(|l| l.starts_with("across,")).unwrap();
    let v: f64 = across.rsplit(',').next().unwrap().parse().unwrap();
    assert!((v - volume).abs() < 2e-3, "{v} vs {volume}: {merged}");
    assert!(volume > 0.0);
    assert_eq!(s.results.summary["plots"], 2);
}

#[test]
fn overlapping_dtm_tiles_count_each_plot_cell_once() {
    // Two 100 m sheets overlapping by 10 columns (x 645 000..646 000), and a plot of
    // 25×10 cells across the overlap: 2 500 000 m², not 3 500 000.
    let store = Store::from_env();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    std::fs::create_dir_all(format!("{d}/in")).unwrap();
    let west = format!("{d}/in/west.asc");
    let east = format!("{d}/in/east.asc");
    std::fs::write(
        &west,
        common::synthetic_dtm(640_000.0, 4_200_000.0, 100.0, 60, 40),
    )
    .unwrap();
    std::fs::write(
        &east,
        common::synthetic_dtm(645_000.0, 4_200_000.0, 100.0, 60, 40),
    )
    .unwrap();
    let plots = format!("{d}/in/plots.geojson");
    std::fs::write(&plots, common::plots_geojson()).unwrap();
    let template: water::Params = serde_json::from_value(serde_json::json!({
        "dtm": "", "stations": data("water/siam_data.csv"), "date": "2022-05-15",
        "plots": plots, "out": "", "png": false, "options": { "windows": 1 }
    }))
    .unwrap();
    let out = format!("{d}/run");
    let mut p = WaterPipeline::new(vec![west, east], template, &out);
    run_pipeline(&mut p, &local(), &store, &config(&out)).unwrap();
    let merged = std::fs::read_to_string(format!("{out}/plots.csv")).unwrap();
    let header: Vec<&str> = merged.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let across: Vec<&str> = merged
        .lines()
        .find(|l| l.starts_with("across,"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(across[col("pixels")], "250", "{merged}");
    let covered: f64 = across[col("covered_m2")].parse().unwrap();
    assert!((covered - 2_500_000.0).abs() < 1e-6, "{merged}");
    let area: f64 = across[col("area_m2")].parse().unwrap();
    assert!((covered - area).abs() < 1e-6);
}

/// Neighbouring inputs are found from the headers' bounds (issue 14, item 3): CNIG tiles
/// that touch or overlap within the buffer lend each other points; a tile 1.5 km away does
/// not. Each partition task then names its neighbours (and fingerprints them as inputs).
#[test]
fn neighbouring_inputs_are_found_from_their_headers() {
    let inputs: Vec<String> = ["out_-1_-8", "out_-1_-7", "out_2_-8", "out_2_-7"]
        .iter()
        .map(|n| data(&format!("cnig/murcia_tiles/{n}.laz")))
        .collect();
    let lists =
        driver::pipeline::lidar::find_neighbours(&Store::from_env(), &inputs, 37.0).unwrap();
    assert_eq!(lists, vec![vec![1], vec![0], vec![3], vec![2]]);
    let mut p = LidarPipeline::new(inputs.clone(), "/nonexistent/out");
    assert_eq!(
        p.buffer_m, 37.0,
        "the seamless buffer of the default models"
    );
    let step = driver::Pipeline::plan_next(&mut p, &Store::from_env(), &[])
        .unwrap()
        .unwrap();
    let first: lidar_partitioner::PartitionTask =
        serde_json::from_value(step.tasks[0].task["params"].clone()).unwrap();
    assert_eq!(first.params.neighbours, vec![inputs[1].clone()]);
    p.neighbours = false;
    let step = driver::Pipeline::plan_next(&mut p, &Store::from_env(), &[])
        .unwrap()
        .unwrap();
    let first: lidar_partitioner::PartitionTask =
        serde_json::from_value(step.tasks[0].task["params"].clone()).unwrap();
    assert!(first.params.neighbours.is_empty());
}
