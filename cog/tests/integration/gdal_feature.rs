//! The optional `gdal` feature: formats our reader does not handle go through GDAL.

use crate::common::*;

#[test]
fn translate_reads_non_tiff_formats_through_gdal() {
    let dir = tempfile::tempdir().unwrap();
    // An ERDAS Imagine file: not TIFF, not ASCII grid.
    let src = gdal_make(
        dir.path(),
        "dem.img",
        &data_str("raster/georust-gdal/dem-hills.tiff"),
        &["-of", "HFA"],
    );
    let out = dir.path().join("out.tif").to_string_lossy().into_owned();
    let store = cloud::Store::new(cloud::StoreOptions::default());
    cog::stage::translate(
        &store,
        &cog::stage::TranslateParams {
            input: src.clone(),
            output: out.clone(),
            bands: vec![],
            window: None,
            overview: 0,
            options: cog::CogWriteOptions {
                blocksize: 128,
                ..Default::default()
            },
        },
    )
    .unwrap();
    assert!(cog_validate(&out).is_empty());
    assert_eq!(
        gdal_envi(&out, 1, None, None).0,
        gdal_envi(&src, 1, None, None).0
    );
    let r = cog::gdal_io::read_band::<f32>(&src, 1).unwrap();
    assert_eq!(r.nodata, Some(-999999.0));
}
