//! DEM gridding against PDAL `writers.gdal` (output_type idw, 5 m, radius 5·√2, power 1) on
//! two PNOA-LiDAR Murcia tiles: CloudButton's own DEM files.

use cloud::Store;
use terrain::gridding::{IdwParams, idw};
use terrain::las_io::read_las;
use terrain::points::{CLASS_GROUND, PointCloud};
use terrain::{Bounds, Grid};

const CNIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/cnig");

/// The ground points of a tile, gridded like PDAL: returns (ours, golden, golden nodata).
fn grid_like_pdal(tile: &str) -> (ndarray::Array2<f64>, ndarray::Array2<f64>, Option<f64>) {
    let store = Store::from_env();
    let las = read_las(&store, &format!("{CNIG}/murcia_tiles/{tile}.laz"), false).unwrap();
    let c = &las.cloud;
    let keep: Vec<usize> = (0..c.len())
        .filter(|&i| c.class[i] == CLASS_GROUND)
        .collect();
    let mut ground = PointCloud::from_xyz(
        keep.iter().map(|&i| c.x[i]).collect(),
        keep.iter().map(|&i| c.y[i]).collect(),
        keep.iter().map(|&i| c.z[i]).collect(),
    );
    let b: Bounds = ground.bounds().unwrap();
    let grid = Grid::pdal(&b, 5.0).unwrap();
    let index = ground.sort_by_cells(&grid);
    let all = vec![true; ground.len()];
    let ours = idw(&ground, &index, &all, &IdwParams::default());

    let golden =
        cog::read_band::<f64>(&store, &format!("{CNIG}/pdal_idw_dem/dem_{tile}.tif"), 1).unwrap();
    assert_eq!(
        golden.transform.0,
        grid.transform().0,
        "{tile}: same grid as PDAL"
    );
    assert_eq!(golden.data.dim(), ours.dim(), "{tile}: same size as PDAL");
    (ours, golden.data, golden.nodata)
}

fn check(tile: &str, interior_only: bool) {
    let (ours, golden, nodata) = grid_like_pdal(tile);
    let (rows, cols) = ours.dim();
    let mut compared = 0;
    let mut max = 0.0f64;
    for r in 0..rows {
        for c in 0..cols {
            let interior = r > 0 && c > 0 && r + 1 < rows && c + 1 < cols;
            if interior_only && !interior {
                continue;
            }
            let g = golden[(r, c)];
            let o = ours[(r, c)];
            if Some(g) == nodata || g.is_nan() {
                assert!(o.is_nan(), "{tile} ({r},{c}): PDAL empty, ours {o}");
                continue;
            }
            assert!(!o.is_nan(), "{tile} ({r},{c}): ours empty, PDAL {g}");
            let d = (o - g).abs();
            assert!(d <= 1e-6, "{tile} ({r},{c}): ours {o}, PDAL {g}");
            max = max.max(d);
            compared += 1;
        }
    }
    eprintln!("{tile}: {compared} cells equal to PDAL, max |diff| {max:e} m");
    assert!(compared > 0);
}

#[test]
fn out_1_9_interior_cells_equal_pdal() {
    check("out_1_-9", true);
}

#[test]
fn out_2_6_equals_pdal() {
    // A 50×1 raster has no interior; PDAL 1.8's edge rule does not bite on it: every cell.
    check("out_2_-6", false);
}
