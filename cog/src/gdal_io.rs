//! Optional (`gdal` feature): read anything GDAL reads (JPEG 2000 Sentinel-2 products, HDF,
//! NetCDF, ...) into [`Raster`]s, for conversion to COG. Needs libgdal (Debian
//! `libgdal-dev`); the default build does not use it.

use gdal::Dataset;
use ndarray::Array2;

use crate::error::CogError;
use crate::pixel::{Pixel, SampleType};
use crate::raster::{Crs, GeoTransform, Raster};

/// A GDAL path for a URI: `s3://b/k` → `/vsis3/b/k`, `https://...` → `/vsicurl/https://...`.
pub fn gdal_path(uri: &str) -> String {
    if let Some(rest) = uri.strip_prefix("s3://") {
        format!("/vsis3/{rest}")
    } else if uri.starts_with("http://") || uri.starts_with("https://") {
        format!("/vsicurl/{uri}")
    } else if let Some(p) = uri.strip_prefix("file://") {
        p.to_string()
    } else {
        uri.to_string()
    }
}

/// All bands of a raster GDAL can open, in the stored type of band 1.
#[derive(Debug, Clone)]
pub struct GdalRaster {
    pub dtype: SampleType,
    pub bands: Vec<Array2<f64>>,
    pub transform: GeoTransform,
    pub crs: Crs,
    pub nodata: Option<f64>,
}

fn err(uri: &str, e: impl std::fmt::Display) -> CogError {
    CogError::invalid(uri, format!("GDAL: {e}"))
}

/// Reads every band of `uri` with GDAL (values as f64, exact for every GDAL type we map).
pub fn read_all(uri: &str) -> Result<GdalRaster, CogError> {
    let ds = Dataset::open(gdal_path(uri)).map_err(|e| err(uri, e))?;
    let (w, h) = ds.raster_size();
    let n = ds.raster_count();
    if n == 0 {
        return Err(CogError::invalid(uri, "GDAL: the dataset has no bands"));
    }
    let transform = ds.geo_transform().map(GeoTransform).unwrap_or_default();
    let crs = match ds.spatial_ref() {
        Ok(sr) => Crs {
            epsg: sr.auth_code().ok().map(|c| c as u32),
            wkt: sr.to_wkt().ok(),
        },
        Err(_) => Crs::default(),
    };
    let mut bands = Vec::with_capacity(n);
    let mut dtype = SampleType::F64;
    let mut nodata = None;
    for i in 1..=n {
        let b = ds.rasterband(i).map_err(|e| err(uri, e))?;
        if i == 1 {
            nodata = b.no_data_value();
            dtype = SampleType::parse(&b.band_type().name()).unwrap_or(SampleType::F64);
        }
        let buf = b
            .read_as::<f64>((0, 0), (w, h), (w, h), None)
            .map_err(|e| err(uri, e))?;
        let (_, data) = buf.into_shape_and_vec();
        bands.push(Array2::from_shape_vec((h, w), data).map_err(|e| err(uri, e))?);
    }
    Ok(GdalRaster {
        dtype,
        bands,
        transform,
        crs,
        nodata,
    })
}

/// Band `band` (1-based) of `uri` through GDAL, converted to `T` like an `as` cast.
pub fn read_band<T: Pixel>(uri: &str, band: usize) -> Result<Raster<T>, CogError> {
    let g = read_all(uri)?;
    let data = g
        .bands
        .get(band.wrapping_sub(1))
        .ok_or_else(|| CogError::request(uri, format!("band {band} does not exist")))?
        .mapv(T::from_f64);
    Ok(Raster {
        data,
        transform: g.transform,
        crs: g.crs,
        nodata: g.nodata.map(T::from_f64),
    })
}
