//! The `lidar` pipeline: point clouds → terrain models.
//!
//! 1. `partition`: one `lidar-partitioner` task per input LAS/LAZ: balanced tiles with a
//!    buffer of withheld neighbour points (`partitions/<stem>/`), taken across the input's
//!    border from the neighbouring inputs too (found from the headers' bounds when the run is
//!    planned), so that a run over adjacent files equals a run over their merge.
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
    /// Partition buffers take the points of neighbouring inputs (default true).
    pub neighbours: bool,
    /// Stop after the partitioning (the tiles are the products; no terrain models).
    pub partition_only: bool,
    /// Each input's neighbours (indices into `inputs`), found when the run is planned.
    neighbour_lists: Vec<Vec<usize>>,
}

/// The buffer with which partitioned models equal the models of the whole data: SMRF's
/// reach (twice its largest window) plus three cells, and two output cells for the
/// snapping of tile grids (what the seam tests show), in metres.
pub fn seamless_buffer(models: &ModelOptions) -> f64 {
    let cell = models.smrf.cell.max(models.resolution);
    2.0 * models.smrf.window + 3.0 * cell + 2.0 * models.resolution
}

impl LidarPipeline {
    /// Defaults: 50 MB partition tiles, the [`seamless_buffer`] of the default models (37 m),
    /// density method, all products at 1 m, neighbouring inputs in the buffers, COG mosaics.
    pub fn new(inputs: Vec<String>, out: &str) -> LidarPipeline {
        LidarPipeline {
            inputs,
            out: out.trim_end_matches('/').to_string(),
            capacity: None,
            target_mb: Some(50.0),
            buffer_m: seamless_buffer(&ModelOptions::default()),
            method: Method::Density,
            format: OutputFormat::Same,
            models: ModelOptions::default(),
            epsg: None,
            raster: RasterOutput::default(),
            mosaic: Some(MosaicFormat::Cog),
            neighbours: true,
            partition_only: false,
            neighbour_lists: Vec::new(),
        }
    }
}

impl LidarPipeline {
    fn partition_task(&self, input: &str, stem: &str) -> PartitionTask {
        let neighbours = self
            .inputs
            .iter()
            .position(|i| i == input)
            .and_then(|k| self.neighbour_lists.get(k))
            .map(|l| l.iter().map(|&j| self.inputs[j].clone()).collect())
            .unwrap_or_default();
        PartitionTask {
            input: input.to_string(),
            output: cloud::uri::join(&self.out, &format!("partitions/{stem}")),
            params: lidar_partitioner::Params {
                neighbours,
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
            },
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
            combine: Default::default(),
        }
    }
}

impl Pipeline for LidarPipeline {
    fn name(&self) -> &'static str {
        "lidar"
    }

    fn steps(&self) -> Vec<&'static str> {
        if self.partition_only {
            vec!["partition"]
        } else {
            vec!["partition", "terrain", "mosaic"]
        }
    }

    fn describe(&self) -> Value {
        serde_json::json!({
            "inputs": self.inputs, "out": self.out, "capacity": self.capacity,
            "target_mb": self.target_mb, "buffer_m": self.buffer_m, "method": self.method,
            "models": self.models, "epsg": self.epsg, "mosaic": self.mosaic,
            "neighbours": self.neighbours, "partition_only": self.partition_only,
        })
    }

    fn validate(&self) -> Result<(), DriverError> {
        let Some(first) = self.inputs.first() else {
            return Err(DriverError::Invalid("lidar: no input point cloud".into()));
        };
        let invalid = |what: &str, e: cloud::TaskError| {
            DriverError::Invalid(format!("lidar: {what}: {}", e.message))
        };
        // The models first: the default buffer derives from them. The later steps' settings
        // are checked on stand-in tasks before anything runs.
        TerrainParams::Models(self.models_params(first, "t"))
            .validate()
            .map_err(|e| invalid("terrain models", e))?;
        for input in &self.inputs {
            self.partition_task(input, "p")
                .validate()
                .map_err(|e| invalid("partition", e))?;
        }
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
        store: &Store,
        done: &[StepOutcome],
    ) -> Result<Option<Step>, DriverError> {
        match done.len() {
            0 => {
                self.validate()?;
                let seamless = seamless_buffer(&self.models);
                if self.buffer_m < seamless {
                    tracing::warn!(
                        "a buffer of {} m is less than the {seamless} m these models reach: cells within that distance of partition and file borders may differ from a run over the whole data",
                        self.buffer_m
                    );
                }
                self.neighbour_lists = if self.neighbours && self.inputs.len() > 1 {
                    find_neighbours(store, &self.inputs, self.buffer_m)?
                } else {
                    Vec::new()
                };
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
            1 if self.partition_only => Ok(None),
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
        if self.partition_only {
            return Ok(partition_results(&manifests));
        }
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

/// The results of a partition-only run: each input's manifest, points and tiles.
fn partition_results(manifests: &[Manifest]) -> Results {
    let products = manifests
        .iter()
        .map(|m| Product::new(&m.manifest_uri, format!("partitions of {}", m.input.uri)))
        .collect();
    let points: u64 = manifests.iter().map(|m| m.input.points).sum();
    let tiles: usize = manifests.iter().map(|m| m.tiles.len()).sum();
    Results {
        products,
        summary: serde_json::json!({
            "inputs": manifests.len(),
            "points": points,
            "partition_tiles": tiles,
            "buffer_fraction": manifests.iter().map(|m| m.buffer_fraction()).collect::<Vec<_>>(),
        }),
    }
}

/// For each input, the other inputs whose header bounds come within `buffer` (CRS units)
/// of its own: the files whose points its partition buffers need. Headers are read
/// concurrently (one small read each).
pub fn find_neighbours(
    store: &Store,
    inputs: &[String],
    buffer: f64,
) -> Result<Vec<Vec<usize>>, DriverError> {
    use rayon::prelude::*;
    let boxes: Vec<([f64; 3], [f64; 3])> = inputs
        .par_iter()
        .map(|u| {
            let f = lidar_partitioner::LasFile::open(store, u)
                .map_err(|e| DriverError::plan("lidar", e))?;
            Ok((f.header().min(), f.header().max()))
        })
        .collect::<Result<_, DriverError>>()?;
    Ok((0..inputs.len())
        .map(|i| {
            let (lo, hi) = boxes[i];
            (0..inputs.len())
                .filter(|&j| {
                    let (a, b) = boxes[j];
                    j != i
                        && inputs[j] != inputs[i]
                        && a[0] <= hi[0] + buffer
                        && b[0] >= lo[0] - buffer
                        && a[1] <= hi[1] + buffer
                        && b[1] >= lo[1] - buffer
                })
                .collect()
        })
        .collect())
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
