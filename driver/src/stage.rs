//! The stages a pipeline can run, and static dispatch to their `cloud::Stage` impls.

use std::fmt;

use biomass::stage::BiomassStage;
use cloud::{Ctx, RunOptions, Stage, TaskError, TaskStatus};
use lidar_partitioner::PartitionStage;
use ndvi::NdviStage;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use terrain::TerrainStage;
use water::WaterStage;

/// A stage binary (also its Lambda function and Batch job definition, by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum StageKind {
    #[serde(rename = "lidar-partitioner")]
    LidarPartitioner,
    #[serde(rename = "terrain")]
    Terrain,
    #[serde(rename = "ndvi")]
    Ndvi,
    #[serde(rename = "water")]
    Water,
    #[serde(rename = "biomass")]
    Biomass,
}

impl StageKind {
    /// Every stage, in pipeline order.
    pub const ALL: [StageKind; 5] = [
        StageKind::LidarPartitioner,
        StageKind::Terrain,
        StageKind::Ndvi,
        StageKind::Water,
        StageKind::Biomass,
    ];

    /// The stage (and binary) name: `Stage::NAME`.
    pub fn name(self) -> &'static str {
        match self {
            StageKind::LidarPartitioner => PartitionStage::NAME,
            StageKind::Terrain => TerrainStage::NAME,
            StageKind::Ndvi => NdviStage::NAME,
            StageKind::Water => WaterStage::NAME,
            StageKind::Biomass => BiomassStage::NAME,
        }
    }

    /// The stage called `name`.
    pub fn from_name(name: &str) -> Option<StageKind> {
        StageKind::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Runs one task (`{id, stage, params}` or `{manifest, index}`) of this stage in this
    /// process, through the same adapter as the binaries (status written, resume honoured).
    pub fn run_task(
        self,
        value: Value,
        ctx: &Ctx,
        options: &RunOptions,
    ) -> Result<TaskStatus, TaskError> {
        match self {
            StageKind::LidarPartitioner => cloud::run_task::<PartitionStage>(value, ctx, options),
            StageKind::Terrain => cloud::run_task::<TerrainStage>(value, ctx, options),
            StageKind::Ndvi => cloud::run_task::<NdviStage>(value, ctx, options),
            StageKind::Water => cloud::run_task::<WaterStage>(value, ctx, options),
            StageKind::Biomass => cloud::run_task::<BiomassStage>(value, ctx, options),
        }
    }

    /// The URIs a finished task's output record names (for the resume check).
    pub fn output_uris(self, output: &Value) -> Result<Vec<String>, serde_json::Error> {
        fn uris<S: Stage>(v: &Value) -> Result<Vec<String>, serde_json::Error> {
            Ok(S::output_uris(&S::Output::deserialize(v)?))
        }
        match self {
            StageKind::LidarPartitioner => uris::<PartitionStage>(output),
            StageKind::Terrain => uris::<TerrainStage>(output),
            StageKind::Ndvi => uris::<NdviStage>(output),
            StageKind::Water => uris::<WaterStage>(output),
            StageKind::Biomass => uris::<BiomassStage>(output),
        }
    }
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
