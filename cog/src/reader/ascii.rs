//! The ESRI ASCII grid source: a grid is read whole when opened (it has no blocks to fetch)
//! and windows are cut from it in memory, behind the same [`CogReader`] API as a GeoTIFF.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use cloud::Store;
use ndarray::Array2;

use super::{BandInfo, CogInfo, CogReader};
use crate::asc::AscGrid;
use crate::error::CogError;
use crate::geo::GeoKeys;
use crate::pixel::{Pixel, SampleType};
use crate::raster::{Raster, Window};

impl CogReader {
    /// A reader over grid `g`, read from `uri`.
    pub(super) fn from_asc(store: &Store, uri: &str, g: AscGrid) -> CogReader {
        let info = CogInfo {
            uri: uri.to_string(),
            width: g.width,
            height: g.height,
            bands: 1,
            dtype: g.dtype,
            block: [g.width, 1],
            tiled: false,
            compression: "NONE".into(),
            predictor: 1,
            interleave: "pixel".into(),
            photometric: 1,
            bigtiff: false,
            overviews: Vec::new(),
            mask: false,
            geotransform: g.transform,
            georeferenced: true,
            crs: g.crs.clone(),
            nodata: g.nodata,
            band_info: vec![BandInfo::default()],
            metadata: BTreeMap::new(),
            geokeys: GeoKeys::default(),
            cog_layout: false,
            external_overviews: None,
        };
        CogReader {
            store: store.clone(),
            files: Vec::new(),
            levels: Vec::new(),
            masks: Vec::new(),
            info,
            metadata_items: Vec::new(),
            asc: Some(Arc::new(g)),
            ahead: Mutex::default(),
        }
    }

    /// Cuts `window` of band 1 (the only one) out of grid `g`, once per entry of `bands`.
    pub(super) fn read_asc<T: Pixel>(
        &self,
        g: &AscGrid,
        bands: &[usize],
        window: Window,
        overview: usize,
    ) -> Result<Vec<Raster<T>>, CogError> {
        if overview != 0 {
            return Err(CogError::request(
                self.uri(),
                "an ASCII grid has no overviews",
            ));
        }
        if let Some(&b) = bands.iter().find(|&&b| b != 1) {
            return Err(CogError::request(
                self.uri(),
                format!("band {b} does not exist (an ASCII grid has 1 band)"),
            ));
        }
        if window.is_empty()
            || window
                .col_off
                .checked_add(window.width)
                .is_none_or(|e| e > g.width)
            || window
                .row_off
                .checked_add(window.height)
                .is_none_or(|e| e > g.height)
        {
            return Err(CogError::request(
                self.uri(),
                format!(
                    "window {window:?} is empty or not inside the {}x{} grid",
                    g.width, g.height
                ),
            ));
        }
        let float = g.dtype == SampleType::F32;
        let conv = |v: f64| {
            if float {
                T::from_f32(v as f32)
            } else {
                T::from_i32(v as i32)
            }
        };
        let data =
            Array2::from_shape_fn((window.height as usize, window.width as usize), |(r, c)| {
                let i =
                    (window.row_off as usize + r) * g.width as usize + window.col_off as usize + c;
                conv(g.values[i])
            });
        let raster = Raster {
            data,
            transform: g.transform.window(window.col_off, window.row_off),
            crs: g.crs.clone(),
            nodata: g.nodata.map(conv),
        };
        Ok(vec![raster; bands.len()])
    }
}
