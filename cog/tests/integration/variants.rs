//! TIFF variants GDAL writes (planar, BigTIFF, big-endian, PackBits, LZW/ZSTD with
//! predictors, 8..64-bit integer and float types, internal masks, sparse files, rotated and
//! PixelIsPoint georeferencing, scale/offset) read by us equal GDAL's own reading.

use crate::common::*;
use cloud::Store;
use cog::{CogReader, OpenOptions, Pixel, Window};

fn store() -> Store {
    Store::new(cloud::StoreOptions::default())
}

/// Every band of `path` read by us equals `gdal_translate -of ENVI`; returns the reader.
fn assert_same_as_gdal(path: &str) -> CogReader {
    let r = CogReader::open(&store(), path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let info = r.info().clone();
    for band in 1..=info.bands {
        let ours = r
            .read_band::<f64>(band)
            .unwrap_or_else(|e| panic!("{path} band {band}: {e}"));
        let (theirs, w, h) = gdal_envi(path, band, None, None);
        assert_eq!((w, h), (info.width, info.height));
        let ours: Vec<f64> = ours.data.iter().copied().collect();
        let diff = ours
            .iter()
            .zip(&theirs)
            .position(|(a, b)| !(a == b || (a.is_nan() && b.is_nan())));
        assert!(
            diff.is_none(),
            "{path} band {band}: pixel {diff:?} differs: {:?} vs {:?}",
            diff.map(|i| ours[i]),
            diff.map(|i| theirs[i])
        );
    }
    let j = gdalinfo_json(path);
    if let Some(gt) = j.get("geoTransform") {
        let gt: Vec<f64> = gt
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (a, b) in gt.iter().zip(info.geotransform.0.iter()) {
            assert!(
                (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                "{path}: gt {gt:?} vs {:?}",
                info.geotransform
            );
        }
    }
    r
}

const RGB: &str = "raster/rasterio/RGB.byte.tif";
const DEM: &str = "raster/georust-gdal/dem-hills.tiff";
const U16: &str = "raster/rio-cogeo/image_north.tif";
const I16: &str = "raster/rio-cogeo/image_nodata.tif";

#[test]
fn layouts_codecs_and_byte_orders() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "planar_tiled.tif",
            RGB,
            &[
                "-co",
                "INTERLEAVE=BAND",
                "-co",
                "TILED=YES",
                "-co",
                "COMPRESS=DEFLATE",
            ],
        ),
        (
            "planar_strips.tif",
            RGB,
            &[
                "-co",
                "INTERLEAVE=BAND",
                "-co",
                "COMPRESS=LZW",
                "-co",
                "PREDICTOR=2",
            ],
        ),
        (
            "bigtiff.tif",
            RGB,
            &[
                "-co",
                "BIGTIFF=YES",
                "-co",
                "TILED=YES",
                "-co",
                "BLOCKXSIZE=128",
                "-co",
                "BLOCKYSIZE=64",
                "-co",
                "COMPRESS=ZSTD",
            ],
        ),
        (
            "bigtiff_strips_be.tif",
            U16,
            &[
                "-co",
                "BIGTIFF=YES",
                "-co",
                "ENDIANNESS=BIG",
                "-co",
                "COMPRESS=DEFLATE",
                "-co",
                "PREDICTOR=2",
            ],
        ),
        ("packbits.tif", RGB, &["-co", "COMPRESS=PACKBITS"]),
        (
            "packbits_tiled.tif",
            I16,
            &["-co", "COMPRESS=PACKBITS", "-co", "TILED=YES"],
        ),
        (
            "be_lzw_pred2.tif",
            U16,
            &[
                "-co",
                "ENDIANNESS=BIG",
                "-co",
                "COMPRESS=LZW",
                "-co",
                "PREDICTOR=2",
                "-co",
                "TILED=YES",
            ],
        ),
        (
            "be_f32_pred3.tif",
            DEM,
            &[
                "-co",
                "ENDIANNESS=BIG",
                "-co",
                "COMPRESS=DEFLATE",
                "-co",
                "PREDICTOR=3",
            ],
        ),
        (
            "lzw_f32_pred3_tiled.tif",
            DEM,
            &[
                "-co",
                "COMPRESS=LZW",
                "-co",
                "PREDICTOR=3",
                "-co",
                "TILED=YES",
                "-co",
                "BLOCKXSIZE=64",
                "-co",
                "BLOCKYSIZE=32",
            ],
        ),
        (
            "zstd_f64_pred3.tif",
            DEM,
            &[
                "-ot",
                "Float64",
                "-co",
                "COMPRESS=ZSTD",
                "-co",
                "PREDICTOR=3",
            ],
        ),
        (
            "zstd_f64_pred2_be.tif",
            DEM,
            &[
                "-ot",
                "Float64",
                "-co",
                "COMPRESS=DEFLATE",
                "-co",
                "ENDIANNESS=BIG",
            ],
        ),
        (
            "u32.tif",
            U16,
            &[
                "-ot",
                "UInt32",
                "-scale",
                "0",
                "8000",
                "0",
                "4000000000",
                "-co",
                "COMPRESS=DEFLATE",
                "-co",
                "PREDICTOR=2",
                "-co",
                "TILED=YES",
            ],
        ),
        (
            "i32.tif",
            I16,
            &[
                "-ot",
                "Int32",
                "-scale",
                "-2000",
                "8028",
                "-2000000000",
                "2000000000",
                "-co",
                "COMPRESS=LZW",
                "-co",
                "PREDICTOR=2",
            ],
        ),
        (
            "i16_be_tiled.tif",
            I16,
            &[
                "-co",
                "ENDIANNESS=BIG",
                "-co",
                "TILED=YES",
                "-co",
                "BLOCKXSIZE=96",
                "-co",
                "BLOCKYSIZE=80",
            ],
        ),
        (
            "rgb_pred2_chunky.tif",
            RGB,
            &[
                "-co",
                "COMPRESS=DEFLATE",
                "-co",
                "PREDICTOR=2",
                "-co",
                "TILED=YES",
            ],
        ),
        (
            "u16_uncompressed_tiled.tif",
            U16,
            &[
                "-co",
                "TILED=YES",
                "-co",
                "BLOCKXSIZE=512",
                "-co",
                "BLOCKYSIZE=256",
            ],
        ),
        ("u16_single_strip.tif", U16, &["-co", "BLOCKYSIZE=100000"]),
    ];
    for (name, src, args) in cases {
        let p = gdal_make(d, name, &data_str(src), args);
        let r = assert_same_as_gdal(&p);
        let info = r.info();
        if name.contains("bigtiff") {
            assert!(info.bigtiff, "{name}");
        }
        if name.contains("planar") {
            assert_eq!(info.interleave, "band", "{name}");
        }
    }
}

#[test]
fn int8_samples_read_as_signed() {
    let dir = tempfile::tempdir().unwrap();
    let p = gdal_make(
        dir.path(),
        "i8.tif",
        &data_str("raster/rasterio/byte.tif"),
        &["-co", "PIXELTYPE=SIGNEDBYTE", "-co", "COMPRESS=DEFLATE"],
    );
    let r = CogReader::open(&store(), &p).unwrap();
    assert_eq!(r.info().dtype, cog::SampleType::I8);
    let ours = r.read_band::<i8>(1).unwrap();
    // GDAL 3.6 exposes signed bytes as Byte with PIXELTYPE=SIGNEDBYTE: same bits.
    let (theirs, _, _) = gdal_envi(&p, 1, None, None);
    for (a, b) in ours.data.iter().zip(&theirs) {
        assert_eq!(*a, *b as u8 as i8);
    }
    assert!(
        ours.data.iter().any(|&v| v < 0),
        "byte.tif has values > 127"
    );
    // `as` conversion of the stored type: i8 -> u16 like `-1i8 as u16`.
    let as_u16 = r.read_band::<u16>(1).unwrap();
    for (a, b) in as_u16.data.iter().zip(ours.data.iter()) {
        assert_eq!(*a, *b as u16);
    }
}

#[test]
fn internal_mask_equals_gdal_mask_band() {
    let dir = tempfile::tempdir().unwrap();
    let p = gdal_make(
        dir.path(),
        "masked.tif",
        &data_str(RGB),
        &[
            "-b",
            "1",
            "-b",
            "2",
            "-mask",
            "3",
            "--config",
            "GDAL_TIFF_INTERNAL_MASK",
            "YES",
            "-co",
            "TILED=YES",
            "-co",
            "COMPRESS=DEFLATE",
            "-a_nodata",
            "none",
        ],
    );
    run(
        "gdaladdo",
        &[
            "-q",
            "--config",
            "GDAL_TIFF_INTERNAL_MASK",
            "YES",
            &p,
            "2",
            "4",
        ],
    );
    let r = CogReader::open(&store(), &p).unwrap();
    assert!(r.info().mask, "mask not detected");
    assert_eq!(r.overview_count(), 2);
    let (w, h) = (r.info().width, r.info().height);
    let ours = r.read_mask(Window::new(0, 0, w, h), 0).unwrap();
    let theirs = gdal_mask(&p);
    let ours: Vec<f64> = ours.iter().map(|&v| v as f64).collect();
    assert_eq!(ours, theirs);
    assert!(ours.contains(&0.0) && ours.contains(&255.0));
    // Overview mask exists and reads.
    let (ow, oh) = r.level_size(1).unwrap();
    let m1 = r.read_mask(Window::new(0, 0, ow, oh), 1).unwrap();
    assert_eq!(m1.dim(), (oh as usize, ow as usize));
    // Image bands still equal GDAL.
    assert_same_as_gdal(&p);
}

/// GDAL's mask band of `p` (`gdal_translate -b mask`), 0/255.
fn gdal_mask(p: &str) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.img");
    run(
        "gdal_translate",
        &["-q", "-of", "ENVI", "-b", "mask", p, out.to_str().unwrap()],
    );
    std::fs::read(&out)
        .unwrap()
        .iter()
        .map(|&b| b as f64)
        .collect()
}

/// Band 1 of RGB.byte.tif with nodata 7 and its top 400 rows set to 7, tiled 256² DEFLATE
/// with GDAL's SPARSE_OK: the blocks that are all nodata are left out of the file.
fn sparse_rgb_band(dir: &std::path::Path) -> String {
    let src = gdal_make(
        dir,
        "src.tif",
        &data_str(RGB),
        &["-b", "1", "-a_nodata", "7"],
    );
    gdal_python(&format!(
        "from osgeo import gdal\nds = gdal.Open({src:?}, gdal.GA_Update)\nb = ds.GetRasterBand(1)\na = b.ReadAsArray()\na[:400, :] = 7\nb.WriteArray(a)\nds = None"
    ));
    gdal_make(
        dir,
        "sparse.tif",
        &src,
        &[
            "-co",
            "SPARSE_OK=TRUE",
            "-co",
            "TILED=YES",
            "-co",
            "COMPRESS=DEFLATE",
        ],
    )
}

#[test]
fn sparse_blocks_read_as_nodata() {
    let dir = tempfile::tempdir().unwrap();
    let p = sparse_rgb_band(dir.path());
    let r = assert_same_as_gdal(&p);
    let top = r
        .read_window::<u8>(1, Window::new(0, 0, 256, 256), 0)
        .unwrap();
    assert!(top.data.iter().all(|&v| v == 7));
}

#[test]
fn rotated_pixel_is_point_and_scale_offset_georeferencing() {
    let dir = tempfile::tempdir().unwrap();
    let rot = dir.path().join("rot.tif").to_string_lossy().into_owned();
    let src = data_str("raster/rasterio/byte.tif");
    gdal_python(&format!(
        "from osgeo import gdal\nds = gdal.Translate({rot:?}, {src:?})\nds.SetGeoTransform([440720.0, 60.0, 5.0, 3751320.0, 4.0, -60.0])\nds = None"
    ));
    // ENVI cannot hold a rotation: compare pixels with the source, the transform with gdalinfo.
    let r = CogReader::open(&store(), &rot).unwrap();
    let (theirs, _, _) = gdal_envi(&src, 1, None, None);
    assert_eq!(
        r.read_band::<f64>(1)
            .unwrap()
            .data
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        theirs
    );
    let j = gdalinfo_json(&rot);
    let gt: Vec<f64> = j["geoTransform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(gt, r.info().geotransform.0.to_vec());
    assert_eq!(
        r.info().geotransform.0,
        [440720.0, 60.0, 5.0, 3751320.0, 4.0, -60.0]
    );
    assert_eq!(r.info().crs.epsg, Some(26711));

    let pip = gdal_make(
        dir.path(),
        "point.tif",
        &src,
        &["-mo", "AREA_OR_POINT=Point"],
    );
    let r = assert_same_as_gdal(&pip);
    assert!(r.info().geokeys.pixel_is_point());

    let so = gdal_make(
        dir.path(),
        "so.tif",
        &data_str(U16),
        &[
            "-a_scale",
            "0.0001",
            "-a_offset",
            "-0.1",
            "-co",
            "TILED=YES",
        ],
    );
    let r = CogReader::open(&store(), &so).unwrap();
    assert_eq!(r.info().band_info[0].scale, Some(0.0001));
    assert_eq!(r.info().band_info[0].offset, Some(-0.1));
}

#[test]
fn sample_type_conversion_is_an_as_cast_nodata_included() {
    let s = store();
    let p = data_str(DEM);
    let f = cog::read_band::<f32>(&s, &p, 1).unwrap();
    let i = cog::read_band::<i16>(&s, &p, 1).unwrap();
    for (a, b) in f.data.iter().zip(i.data.iter()) {
        assert_eq!(*b, *a as i16);
    }
    assert_eq!(f.nodata, Some(-999999.0));
    assert_eq!(i.nodata, Some(-999999.0f64 as i16));
    let u = cog::read_band::<u8>(&s, &p, 1).unwrap();
    assert_eq!(u.nodata, Some(<u8 as Pixel>::from_f64(-999999.0)));
}

#[test]
fn ascii_grid_reads_like_gdal() {
    let dir = tempfile::tempdir().unwrap();
    for (src, name) in [(DEM, "dem.asc"), (I16, "int.asc")] {
        let p = gdal_make(dir.path(), name, &data_str(src), &["-of", "AAIGrid"]);
        let r = assert_same_as_gdal(&p);
        let info = r.info();
        let j = gdalinfo_json(&p);
        assert_eq!(
            info.dtype.gdal_name(),
            j["bands"][0]["type"].as_str().unwrap(),
            "{name}"
        );
        let nd = j["bands"][0]["noDataValue"].as_f64();
        assert_eq!(info.nodata.map(|v| v as f32), nd.map(|v| v as f32));
        // The .prj side file gives the CRS.
        assert!(info.crs.wkt.is_some(), "{name}");
        // Windows too.
        let w = r
            .read_window::<f64>(1, Window::new(10, 20, 30, 40), 0)
            .unwrap();
        let theirs = gdal_window(&p, 1, 10, 20, 30, 40, None);
        assert_eq!(w.data.iter().copied().collect::<Vec<_>>(), theirs);
    }
}

#[test]
fn external_ovr_overviews_are_optional() {
    let s = store();
    let p = data_str("raster/rasterio/red.tif");
    let plain = CogReader::open(&s, &p).unwrap();
    assert_eq!(plain.overview_count(), 0);
    let with = CogReader::open_with(
        &s,
        &p,
        &OpenOptions {
            external_overviews: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(with.info().overviews, vec![[32, 32], [16, 16]]);
    let o = with
        .read_window::<f64>(1, Window::new(0, 0, 32, 32), 1)
        .unwrap();
    let theirs = gdal_window(&p, 1, 0, 0, 32, 32, Some(1));
    assert_eq!(o.data.iter().copied().collect::<Vec<_>>(), theirs);
    assert_eq!(o.transform.0[1], with.info().geotransform.0[1] * 2.0);
}

/// Every block of `path` fetched alone ([`CogReader::fetch_block`]) and decoded alone
/// ([`CogReader::decode_block`]) holds the pixels a window read of that block returns, for
/// 8-bit files (`spp` samples per pixel in a pixel-interleaved block, one in a planar one).
fn assert_blocks_decode_like_windows(path: &str) -> usize {
    let r = CogReader::open(&store(), path).unwrap();
    let info = r.info().clone();
    let planar = info.interleave == "band";
    let spp = if planar { 1 } else { info.bands };
    let layout = r.block_layout(0).unwrap();
    for (i, b) in layout.iter().enumerate() {
        let block = r.fetch_block(0, i).unwrap();
        assert_eq!(block.info, *b);
        assert_eq!(block.data.len() as u64, b.bytes, "{path}: block {i}");
        let decoded = r.decode_block(&block).unwrap();
        if b.bytes == 0 {
            // Left out of a sparse file: nothing to decode; a read gives nodata.
            assert!(decoded.is_empty());
            let nodata = info.nodata.unwrap() as u8;
            let w = r.read_window::<u8>(b.plane + 1, b.window, 0).unwrap();
            assert!(w.data.iter().all(|&v| v == nodata));
            continue;
        }
        let row_bytes = info.block[0] as usize * spp;
        assert!(decoded.len() >= b.window.height as usize * row_bytes);
        let bands: Vec<usize> = if planar {
            vec![b.plane + 1]
        } else {
            (1..=info.bands).collect()
        };
        let windows = r.read_bands::<u8>(&bands, b.window, 0).unwrap();
        for (s, w) in windows.iter().enumerate() {
            for ((y, x), &v) in w.data.indexed_iter() {
                assert_eq!(
                    decoded[y * row_bytes + x * spp + s],
                    v,
                    "{path}: block {i}, pixel ({x}, {y}), sample {s}"
                );
            }
        }
    }
    let e = r.fetch_block(0, layout.len()).unwrap_err().to_string();
    assert!(e.contains(&format!("has {} blocks", layout.len())), "{e}");
    layout.len()
}

#[test]
fn fetched_and_decoded_blocks_equal_window_reads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rgb = data_str(RGB);
    let planar = gdal_make(
        d,
        "planar.tif",
        &rgb,
        &[
            "-co",
            "INTERLEAVE=BAND",
            "-co",
            "TILED=YES",
            "-co",
            "COMPRESS=DEFLATE",
        ],
    );
    // 791x718 in 256x256 tiles: 4x3 tiles per band, 3 bands.
    assert_eq!(assert_blocks_decode_like_windows(&planar), 36);
    let strips = gdal_make(
        d,
        "strips.tif",
        &rgb,
        &[
            "-co",
            "COMPRESS=LZW",
            "-co",
            "PREDICTOR=2",
            "-co",
            "BLOCKYSIZE=100",
        ],
    );
    // 718 rows in strips of 100: the last strip is short (18 rows).
    assert_eq!(assert_blocks_decode_like_windows(&strips), 8);
    // A block left out of a sparse file has no bytes and decodes to nothing.
    let sparse = sparse_rgb_band(d);
    let r = CogReader::open(&store(), &sparse).unwrap();
    let block = r.fetch_block(0, 0).unwrap();
    assert_eq!((block.info.offset, block.info.bytes), (0, 0));
    assert!(block.data.is_empty() && r.decode_block(&block).unwrap().is_empty());
    assert_blocks_decode_like_windows(&sparse);
}
