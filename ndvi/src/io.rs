//! Reading scenes window by window through `cog` range reads.

use cloud::Store;
use cog::{CogReader, Raster, SampleType, Window};
use ndarray::Array2;

use crate::compute::{Grid, NdviOptions, SclMapping, apply_scl_mask, check_same_grid, ndvi_array};
use crate::error::NdviError;
use crate::scene::SceneBands;

/// The grid of an opened COG's full-resolution image.
pub fn grid_of(reader: &CogReader) -> Grid {
    let info = reader.info();
    Grid {
        width: info.width,
        height: info.height,
        transform: info.geotransform,
        crs: info.crs.clone(),
    }
}

fn reject_jp2(uri: &str) -> Result<(), NdviError> {
    let lower = uri.to_ascii_lowercase();
    if lower.ends_with(".jp2") || lower.ends_with(".j2k") {
        return Err(NdviError::Jp2Unsupported {
            uri: uri.to_string(),
        });
    }
    Ok(())
}

/// Opens a COG (one header read), refusing JPEG 2000 with a clear message.
pub fn open(store: &Store, uri: &str) -> Result<CogReader, NdviError> {
    reject_jp2(uri)?;
    Ok(CogReader::open(store, uri)?)
}

/// The opened bands of one scene (date): red, NIR and optionally the SCL, with their grids
/// checked against each other.
pub struct SceneReader {
    /// What was opened.
    pub bands: SceneBands,
    pub red: CogReader,
    pub nir: CogReader,
    /// The SCL and its mapping onto the band grid, when masking.
    pub scl: Option<(CogReader, SclMapping)>,
    /// Radiometry and nodata of the bands.
    pub options: NdviOptions,
    /// SCL classes to mask (empty: none).
    pub mask_classes: Vec<u8>,
}

impl SceneReader {
    /// Opens `bands` (header reads run concurrently). With `mask_classes` non-empty the
    /// scene's SCL is opened too and must map onto the band grid by an integer factor.
    pub fn open(store: &Store, bands: &SceneBands, mask_classes: &[u8]) -> Result<Self, NdviError> {
        bands.radiometry.red.validate(&bands.red)?;
        bands.radiometry.nir.validate(&bands.nir)?;
        let scl_uri = if mask_classes.is_empty() {
            None
        } else {
            Some(
                bands
                    .scl
                    .as_deref()
                    .ok_or_else(|| NdviError::MissingAsset {
                        scene: bands.label().to_string(),
                        what: "cloud masking needs the SCL layer, and none is given".to_string(),
                    })?,
            )
        };
        let ((red, nir), scl) = rayon::join(
            || rayon::join(|| open(store, &bands.red), || open(store, &bands.nir)),
            || scl_uri.map(|u| open(store, u)).transpose(),
        );
        let (red, nir, scl) = (red?, nir?, scl?);
        let grid = grid_of(&red);
        check_same_grid(&bands.red, &grid, &bands.nir, &grid_of(&nir))?;
        let scl = match scl {
            Some(r) => {
                let map = SclMapping::new(&bands.red, &grid, r.uri(), &grid_of(&r))?;
                Some((r, map))
            }
            None => None,
        };
        Ok(SceneReader {
            options: NdviOptions {
                red: bands.radiometry.red,
                nir: bands.radiometry.nir,
                nodata_dn: Some(0.0),
            },
            bands: bands.clone(),
            red,
            nir,
            scl,
            mask_classes: mask_classes.to_vec(),
        })
    }

    /// The band grid.
    pub fn grid(&self) -> Grid {
        grid_of(&self.red)
    }

    /// NDVI of `window` (band pixels), SCL-masked when configured. Returns the NDVI and the
    /// number of pixels the SCL mask removed.
    pub fn ndvi_window(&self, window: Window) -> Result<(Array2<f32>, u64), NdviError> {
        let (ndvi, scl) = rayon::join(
            || match self.red.info().dtype {
                SampleType::U8 | SampleType::U16 => self.ndvi_typed::<u16>(window),
                SampleType::F32 => self.ndvi_typed::<f32>(window),
                SampleType::F64 => self.ndvi_typed::<f64>(window),
                _ => self.ndvi_typed::<i32>(window),
            },
            || {
                self.scl
                    .as_ref()
                    .map(|(r, map)| r.read_window::<u8>(1, map.scl_window(&window), 0))
                    .transpose()
            },
        );
        let mut ndvi = ndvi?;
        let masked = match scl? {
            Some(scl) => {
                let mut raster = Raster {
                    data: ndvi,
                    transform: self
                        .red
                        .info()
                        .geotransform
                        .window(window.col_off, window.row_off),
                    crs: self.red.info().crs.clone(),
                    nodata: Some(crate::compute::NODATA),
                };
                let scl_uri = self.scl.as_ref().map_or("", |(r, _)| r.uri());
                let n = apply_scl_mask(
                    &mut raster,
                    &self.bands.red,
                    &scl,
                    scl_uri,
                    &self.mask_classes,
                )?;
                ndvi = raster.data;
                n
            }
            None => 0,
        };
        Ok((ndvi, masked))
    }

    fn ndvi_typed<T: cog::Pixel + crate::compute::Sample>(
        &self,
        window: Window,
    ) -> Result<Array2<f32>, NdviError> {
        let (red, nir) = rayon::join(
            || self.red.read_window::<T>(1, window, 0),
            || self.nir.read_window::<T>(1, window, 0),
        );
        let (red, nir) = (red?, nir?);
        ndvi_array(
            red.data.view(),
            red.nodata,
            nir.data.view(),
            nir.nodata,
            &self.options,
        )
    }
}

/// Checks that two dates share their band grid.
pub fn check_dates(before: &SceneReader, after: &SceneReader) -> Result<(), NdviError> {
    check_same_grid(
        &format!("before ({})", before.bands.red),
        &before.grid(),
        &format!("after ({})", after.bands.red),
        &after.grid(),
    )
}
