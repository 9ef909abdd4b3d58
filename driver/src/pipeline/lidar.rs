//! The `lidar` pipeline: point clouds → terrain models.
//!
//! 1. `partition`: one `lidar-partitioner` task per input LAS/LAZ: balanced tiles with a
//!    buffer of withheld neighbour points (`partitions/<stem>/`).
//! 2. `terrain`: one `terrain` models task per partition tile: SMRF ground, DEM/DSM/CHM/FCC,
//!    slope, aspect on core + buffer, cropped to the core, on grids snapped to the
//!    resolution (`tiles/<tile>_<product>.tif`).
//! 3. `mosaic` (unless turned off): one `terrain` mosaic task per product (`<product>.tif`,
//!    written by bands of rows, or `<product>.vrt` over the tiles): tiles on one pixel
//!    lattice, no seams.

use cloud::Store;
use lidar_partitioner::params::{Method, OutputFormat};
use lidar_partitioner::{Manifest, PartitionStage, PartitionTask};
use serde_json::Value;
use terrain::stage::{
    ModelsOutput, ModelsParams, MosaicFormat, MosaicParams, RasterOutput, TerrainOutput,
    TerrainParams,
};
use terrain::{ModelOptions, TerrainStage};

use super::{Pipeline, Product, Results, id_part, outcome, unique_ids};
use crate::error::DriverError;
use crate::exec::StepOutcome;
use crate::plan::{Step, TaskSpec};
use crate::stage::StageKind;

/// Settings of a lidar run.
#[derive(Debug, Clone)]
pub struct LidarPipeline {
    /// LAS/LAZ/COPC inputs.
    pub inputs: Vec<String>,
    pub out: String,
    /// Core points per partition tile (or `target_mb`).
    pub capacity: Option<u64>,
    pub target_mb: Option<f64>,
    /// Buffer around each tile's core, CRS units (m).
    pub buffer_m: f64,
    pub method: Method,
    pub format: OutputFormat,
    /// Terrain model settings (resolution, products, SMRF, ...).
    pub models: ModelOptions,
    /// EPSG of the coordinates when the files record no CRS.
    pub epsg: Option<u32>,
    pub raster: RasterOutput,
    /// How the products are mosaicked; `None`: not at all (the tiles are the products).
    pub mosaic: Option<MosaicFormat>,
}

impl LidarPipeline {
    /// Defaults: capacity or target as given, 20 m buffer, density method, all products at
    /// 1 m.
    pub fn new(inputs: Vec<String>, out: &str) -> LidarPipeline {
        LidarPipeline {
            inputs,
            out: out.trim_end_matches('/').to_string(),
            capacity: None,
            target_mb: Some(50.0),
            buffer_m: 20.0,
            method: Method::Density,
            format: OutputFormat::Same,
            models: ModelOptions::default(),
            epsg: None,
            raster: RasterOutput::default(),
            mosaic: Some(MosaicFormat::Cog),
        }
    }
}

impl LidarPipeline {
    fn partition_task(&self, input: &str, stem: &str) -> PartitionTask {
        PartitionTask {
            input: input.to_string(),
            output: cloud::uri::join(&self.out, &format!("partitions/{stem}")),
            capacity: self.capacity,
            target_mb: if self.capacity.is_some() {
                None
            } else {
                self.target_mb
            },
            buffer_m: self.buffer_m,
            method: self.method,
            format: self.format,
            max_memory_mb: None,
            epsg: self.epsg,
        }
    }

    fn models_params(&self, tile: &str, name: &str) -> ModelsParams {
        ModelsParams {
            input: tile.to_string(),
            output: cloud::uri::join(&self.out, "tiles"),
            name: Some(name.to_string()),
            epsg: self.epsg,
            options: self.models.clone(),
            ground_output: None,
            raster: self.raster,
        }
    }

    fn mosaic_params(&self, name: &str, inputs: Vec<String>, format: MosaicFormat) -> MosaicParams {
        MosaicParams {
            inputs,
            output: cloud::uri::join(&self.out, &format!("{name}{}", format.extension())),
            format,
            raster: self.raster,
        }
    }
}

impl Pipeline for LidarPipeline {
    fn name(&self) -> &'static str {
        "lidar"
    }

    fn describe(&self) -> Value {
        serde_json::json!({
            "inputs": self.inputs, "out": self.out, "capacity": self.capacity,
            "target_mb": self.target_mb, "buffer_m": self.buffer_m, "method": self.method,
            "models": self.models, "epsg": self.epsg, "mosaic": self.mosaic,
        })
    }

    fn validate(&self) -> Result<(), DriverError> {
        let Some(first) = self.inputs.first() else {
            return Err(DriverError::Invalid("lidar: no input point cloud".into()));
        };
        let invalid = |what: &str, e: cloud::TaskError| {
            DriverError::Invalid(format!("lidar: {what}: {}", e.message))
        };
        for input in &self.inputs {
            self.partition_task(input, "p")
                .validate()
                .map_err(|e| invalid("partition", e))?;
        }
        // The later steps' settings, checked on stand-in tasks before anything runs.
        TerrainParams::Models(self.models_params(first, "t"))
            .validate()
            .map_err(|e| invalid("terrain models", e))?;
        match self.mosaic {
            Some(format) => {
                TerrainParams::Mosaic(self.mosaic_params("dem", vec![first.clone()], format))
                    .validate()
                    .map_err(|e| invalid("mosaic", e))
            }
            None => Ok(()),
        }
    }

    fn plan_next(
        &mut self,
        _store: &Store,
        done: &[StepOutcome],
    ) -> Result<Option<Step>, DriverError> {
        match done.len() {
            0 => {
                self.validate()?;
                let stems = unique_ids(
                    &self
                        .inputs
                        .iter()
                        .map(|i| id_part(&terrain::stage::stem(i)))
                        .collect::<Vec<_>>(),
                );
                let tasks = self
                    .inputs
                    .iter()
                    .zip(stems)
                    .map(|(input, stem)| {
                        let p = self.partition_task(input, &stem);
                        TaskSpec::new::<PartitionStage>(&format!("partition-{stem}"), &p)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(Step::new(
                    "partition",
                    StageKind::LidarPartitioner,
                    tasks,
                )?))
            }
            1 => {
                let manifests: Vec<Manifest> = outcome("lidar", done, "partition")?.outputs()?;
                let tiles: Vec<String> = manifests
                    .iter()
                    .flat_map(|m| m.tiles.iter().map(|t| t.uri.clone()))
                    .collect();
                let names = unique_ids(
                    &tiles
                        .iter()
                        .map(|t| id_part(&terrain::stage::stem(t)))
                        .collect::<Vec<_>>(),
                );
                let tasks = tiles
                    .iter()
                    .zip(names)
                    .map(|(tile, name)| {
                        let p = TerrainParams::Models(self.models_params(tile, &name));
                        TaskSpec::new::<TerrainStage>(&format!("models-{name}"), &p)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(Step::new("terrain", StageKind::Terrain, tasks)?))
            }
            2 => {
                let Some(format) = self.mosaic else {
                    return Ok(None);
                };
                let models = models_outputs(outcome("lidar", done, "terrain")?)?;
                let tasks = self
                    .models
                    .products
                    .iter()
                    .map(|p| {
                        let name = p.name();
                        let inputs: Vec<String> = models
                            .iter()
                            .filter_map(|m| m.products.get(name).cloned())
                            .collect();
                        let params =
                            TerrainParams::Mosaic(self.mosaic_params(name, inputs, format));
                        TaskSpec::new::<TerrainStage>(&format!("mosaic-{name}"), &params)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(Step::new("mosaic", StageKind::Terrain, tasks)?))
            }
            _ => Ok(None),
        }
    }

    fn results(&self, _store: &Store, done: &[StepOutcome]) -> Result<Results, DriverError> {
        let manifests: Vec<Manifest> = outcome("lidar", done, "partition")?.outputs()?;
        let models = models_outputs(outcome("lidar", done, "terrain")?)?;
        let mut products: Vec<Product> = match self.mosaic {
            Some(format) => self
                .models
                .products
                .iter()
                .map(|p| {
                    Product::new(
                        &cloud::uri::join(
                            &self.out,
                            &format!("{}{}", p.name(), format.extension()),
                        ),
                        format!("{} mosaic", p.name()),
                    )
                })
                .collect(),
            None => models
                .iter()
                .flat_map(|m| m.products.iter())
                .map(|(name, uri)| Product::new(uri, format!("{name} of one partition tile")))
                .collect(),
        };
        for m in &manifests {
            products.push(Product::new(
                &m.manifest_uri,
                format!("partitions of {}", m.input.uri),
            ));
        }
        let points: u64 = manifests.iter().map(|m| m.input.points).sum();
        let ground: u64 = models.iter().map(|m| m.stats.ground_points).sum();
        Ok(Results {
            products,
            summary: serde_json::json!({
                "inputs": manifests.len(),
                "points": points,
                "partition_tiles": models.len(),
                "ground_points": ground,
                "resolution_m": self.models.resolution,
                "buffer_fraction": manifests.iter().map(|m| m.buffer_fraction()).collect::<Vec<_>>(),
            }),
        })
    }
}

fn models_outputs(step: &StepOutcome) -> Result<Vec<ModelsOutput>, DriverError> {
    step.outputs::<TerrainOutput>()?
        .into_iter()
        .map(|o| match o {
            TerrainOutput::Models(m) => Ok(m),
            _ => Err(DriverError::Invalid(
                "lidar: a terrain task returned no models".into(),
            )),
        })
        .collect()
}
