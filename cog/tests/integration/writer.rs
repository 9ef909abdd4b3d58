//! Our COGs: GDAL reads them with identical pixels and georeferencing, GDAL's COG validator
//! (`validate_cloud_optimized_geotiff.py`, full check of leaders/trailers) passes, and we
//! read them back identically, for every sample type and codec, locally and on S3.

use crate::common::*;
use cloud::Store;
use cog::{
    CogReader, CogWriteOptions, Compression, Crs, GeoTransform, Pixel, Raster, Window, write_cog,
};
use ndarray::Array2;

fn store() -> Store {
    Store::new(cloud::StoreOptions::default())
}

/// A deterministic test image with structure (gradients, noise, a nodata hole).
fn synth<T: Pixel>(w: usize, h: usize, nodata: Option<T>) -> Raster<T> {
    let mut s: u64 = 0x9E3779B97F4A7C15;
    let data = Array2::from_shape_fn((h, w), |(r, c)| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let noise = (s % 17) as f64;
        let v = (r as f64 * 0.37 + c as f64 * 0.11).sin() * 60.0 + 61.0 + noise;
        match nodata {
            Some(nd) if (r / 37 + c / 53) % 11 == 3 => nd,
            _ => T::from_f64(if T::TYPE.is_float() {
                v * 1.37 - 20.0
            } else {
                v
            }),
        }
    });
    Raster {
        data,
        transform: GeoTransform::north_up(440720.0, 3751320.0, 30.0),
        crs: Crs::epsg(32611),
        nodata,
    }
}

fn check_written<T: Pixel>(path: &str, raster: &Raster<T>, opts: &CogWriteOptions) {
    let errors = cog_validate(path);
    assert!(errors.is_empty(), "{path}: {errors:?}");
    let (h, w) = raster.data.dim();
    let j = gdalinfo_json(path);
    assert_eq!(j["size"][0].as_u64().unwrap(), w as u64);
    let gt: Vec<f64> = j["geoTransform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(gt, raster.transform.0.to_vec());
    let wkt = j["coordinateSystem"]["wkt"].as_str().unwrap();
    if let Some(code) = raster.crs.epsg {
        assert!(wkt.ends_with(&format!("ID[\"EPSG\",{code}]]")), "{wkt}");
    }
    let nd = j["bands"][0].get("noDataValue");
    assert_eq!(nd.is_some(), raster.nodata.is_some());
    assert_eq!(
        j["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"].as_str(),
        Some("COG")
    );
    let block = &j["bands"][0]["block"];
    assert_eq!(block[0].as_u64().unwrap(), opts.blocksize as u64);
    let ovr = j["bands"][0]["overviews"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    let expect_ovr = if opts.overviews {
        cog::writer::overview_sizes(w as u64, h as u64, opts.blocksize as u64).len()
    } else {
        0
    };
    assert_eq!(ovr, expect_ovr, "{path}: overview count");
    // GDAL's pixels equal ours.
    let (theirs, _, _) = gdal_envi(path, 1, None, None);
    let ours: Vec<f64> = raster.data.iter().map(|v| v.to_f64()).collect();
    let same = |a: &f64, b: &f64| a == b || (a.is_nan() && b.is_nan());
    if T::TYPE == cog::SampleType::I8 {
        // GDAL 3.6 shows signed bytes as Byte: same bits.
        assert!(
            ours.iter()
                .zip(&theirs)
                .all(|(a, b)| *a as i8 == *b as u8 as i8)
        );
    } else {
        assert!(
            ours.iter().zip(&theirs).all(|(a, b)| same(a, b)),
            "{path}: pixels differ"
        );
    }
    // GDAL's first overview equals ours.
    if expect_ovr > 0 {
        let r = CogReader::open(&store(), path).unwrap();
        let (ow, oh) = r.level_size(1).unwrap();
        let o = r
            .read_window::<f64>(1, Window::new(0, 0, ow, oh), 1)
            .unwrap();
        let theirs = gdal_window(path, 1, 0, 0, ow, oh, Some(1));
        if T::TYPE != cog::SampleType::I8 {
            assert!(
                o.data.iter().zip(&theirs).all(|(a, b)| same(a, b)),
                "{path}: overview differs"
            );
        }
    }
    // And we read back exactly what we wrote.
    let back = cog::read_band::<T>(&store(), path, 1).unwrap();
    assert_eq!(back.transform, raster.transform);
    assert_eq!(back.crs.epsg, raster.crs.epsg);
    assert!(
        back.data
            .iter()
            .zip(raster.data.iter())
            .all(|(a, b)| a == b || (a.is_nan() && b.is_nan()))
    );
    match (back.nodata, raster.nodata) {
        (Some(a), Some(b)) => assert!(a == b || (a.is_nan() && b.is_nan())),
        (a, b) => assert_eq!(a, b),
    }
}

fn roundtrip<T: Pixel>(name: &str, nodata: Option<T>, opts: &CogWriteOptions) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name).to_string_lossy().into_owned();
    let r = synth::<T>(700, 530, nodata);
    write_cog(&store(), &path, &r, opts).unwrap();
    check_written(&path, &r, opts);
}

fn small() -> CogWriteOptions {
    CogWriteOptions {
        blocksize: 256,
        ..Default::default()
    }
}

#[test]
fn every_sample_type_default_options() {
    roundtrip::<u8>("u8.tif", Some(0), &small());
    roundtrip::<i8>("i8.tif", Some(-128), &small());
    roundtrip::<u16>("u16.tif", None, &small());
    roundtrip::<i16>("i16.tif", Some(-9999), &small());
    roundtrip::<u32>("u32.tif", Some(u32::MAX), &small());
    roundtrip::<i32>("i32.tif", Some(-1), &small());
    roundtrip::<f32>("f32.tif", Some(-9999.0), &small());
    roundtrip::<f64>("f64.tif", Some(f64::NAN), &small());
}

#[test]
fn default_options_are_the_documented_ones() {
    let o = CogWriteOptions::default();
    assert_eq!(o.blocksize, 512);
    assert_eq!(o.compression, Compression::Deflate);
    assert!(o.overviews);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d.tif").to_string_lossy().into_owned();
    let r = synth::<f32>(1100, 600, Some(-9999.0));
    write_cog(&store(), &p, &r, &o).unwrap();
    check_written(&p, &r, &o);
    let info = CogReader::open(&store(), &p).unwrap().info().clone();
    assert_eq!(
        (info.block, info.predictor, info.compression.as_str()),
        ([512, 512], 3, "DEFLATE")
    );
    assert_eq!(info.overviews, vec![[550, 300], [275, 150]]);
    assert!(info.cog_layout);
    let pi = dir.path().join("i.tif").to_string_lossy().into_owned();
    write_cog(&store(), &pi, &synth::<u16>(600, 600, None), &o).unwrap();
    assert_eq!(CogReader::open(&store(), &pi).unwrap().info().predictor, 2);
}

#[test]
fn codecs_predictors_bigtiff_and_no_overviews() {
    for (i, (c, p)) in [
        (Compression::None, None),
        (Compression::Lzw, Some(2)),
        (Compression::Zstd, None),
        (Compression::Deflate, Some(1)),
    ]
    .into_iter()
    .enumerate()
    {
        let o = CogWriteOptions {
            compression: c,
            predictor: p,
            ..small()
        };
        roundtrip::<i16>(&format!("c{i}.tif"), Some(-9999), &o);
        roundtrip::<f32>(
            &format!("f{i}.tif"),
            None,
            &CogWriteOptions {
                predictor: p.map(|_| 1),
                ..o.clone()
            },
        );
    }
    let big = CogWriteOptions {
        bigtiff: Some(true),
        ..small()
    };
    roundtrip::<u16>("big.tif", Some(0), &big);
    let none = CogWriteOptions {
        overviews: false,
        ..small()
    };
    roundtrip::<u8>("noovr.tif", None, &none);
}

#[test]
fn rotated_transform_wkt_crs_scale_offset_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rot.tif").to_string_lossy().into_owned();
    let mut r = synth::<u8>(300, 200, None);
    r.transform = GeoTransform([440720.0, 60.0, 5.0, 3751320.0, 4.0, -60.0]);
    let mut o = small();
    o.scale_offset = Some((0.0001, -0.1));
    o.metadata.insert("SOURCE".into(), "geobutton test".into());
    write_cog(&store(), &p, &r, &o).unwrap();
    assert!(cog_validate(&p).is_empty());
    let j = gdalinfo_json(&p);
    let gt: Vec<f64> = j["geoTransform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(gt, r.transform.0.to_vec());
    assert_eq!(j["bands"][0]["scale"].as_f64(), Some(0.0001));
    assert_eq!(j["bands"][0]["offset"].as_f64(), Some(-0.1));
    assert_eq!(j["metadata"][""]["SOURCE"].as_str(), Some("geobutton test"));
    let info = CogReader::open(&store(), &p).unwrap().info().clone();
    assert_eq!(info.geotransform, r.transform);
    assert_eq!(info.band_info[0].scale, Some(0.0001));

    // A user-defined geographic CRS survives read → write → GDAL.
    let dem = cog::read_band::<f32>(&store(), &data_str("raster/georust-gdal/dem-hills.tiff"), 1)
        .unwrap();
    assert!(dem.crs.wkt.as_deref().unwrap().contains("Delambre"));
    let p2 = dir.path().join("dem.tif").to_string_lossy().into_owned();
    write_cog(
        &store(),
        &p2,
        &dem,
        &CogWriteOptions {
            blocksize: 128,
            ..Default::default()
        },
    )
    .unwrap();
    let a = run(
        "gdalsrsinfo",
        &[
            "-o",
            "wkt1",
            &data_str("raster/georust-gdal/dem-hills.tiff"),
        ],
    );
    let b = run("gdalsrsinfo", &["-o", "wkt1", &p2]);
    assert_eq!(a, b);
    assert_eq!(
        cog::read_band::<f32>(&store(), &p2, 1).unwrap().crs,
        dem.crs
    );

    // A CRS known only as WKT (e.g. from a .prj) is kept as an ESRI PE string GDAL reads.
    let wkt = run(
        "gdalsrsinfo",
        &["--single-line", "-o", "wkt_esri", "EPSG:25830"],
    )
    .trim()
    .to_string();
    let mut r3 = synth::<u8>(64, 64, None);
    r3.crs = Crs {
        epsg: None,
        wkt: Some(wkt.clone()),
    };
    let p3 = dir.path().join("wkt.tif").to_string_lossy().into_owned();
    write_cog(&store(), &p3, &r3, &small()).unwrap();
    let got = run("gdalsrsinfo", &["-o", "wkt_esri", &p3]);
    assert!(got.contains("ETRS_1989_UTM_Zone_30N"), "{got}");
}

#[test]
fn cog_to_s3_and_back() {
    let s3 = cloud::testing::s3_store();
    let bucket = cloud::testing::unique_bucket(&s3, "cogw").unwrap();
    let uri = format!("s3://{bucket}/out/x.tif");
    let r = synth::<i16>(900, 700, Some(-9999));
    write_cog(&s3, &uri, &r, &small()).unwrap();
    let back = cog::read_band::<i16>(&s3, &uri, 1).unwrap();
    assert_eq!(back, r);
    let w = cog::read_window::<f32>(&s3, &uri, 1, Window::new(250, 250, 20, 30)).unwrap();
    assert_eq!(w.data[(0, 0)], r.data[(250, 250)] as f32);
}

#[test]
fn bad_requests_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.tif").to_string_lossy().into_owned();
    let r = synth::<u8>(10, 10, None);
    for o in [
        CogWriteOptions {
            blocksize: 100,
            ..Default::default()
        },
        CogWriteOptions {
            predictor: Some(3),
            ..Default::default()
        },
    ] {
        assert!(write_cog(&store(), &p, &r, &o).is_err());
    }
    assert!(!std::path::Path::new(&p).exists(), "no partial output");
    let empty = Raster {
        data: Array2::<u8>::zeros((0, 5)),
        ..r
    };
    assert!(write_cog(&store(), &p, &empty, &CogWriteOptions::default()).is_err());
}
