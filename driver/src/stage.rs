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

/// `$f::<S>($args)` for the `cloud::Stage` type `S` of stage kind `$kind`.
macro_rules! with_stage {
    ($kind:expr, $f:ident($($arg:expr),*)) => {
        match $kind {
            StageKind::LidarPartitioner => $f::<PartitionStage>($($arg),*),
            StageKind::Terrain => $f::<TerrainStage>($($arg),*),
            StageKind::Ndvi => $f::<NdviStage>($($arg),*),
            StageKind::Water => $f::<WaterStage>($($arg),*),
            StageKind::Biomass => $f::<BiomassStage>($($arg),*),
        }
    };
}

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
        use cloud::run_task;
        with_stage!(self, run_task(value, ctx, options))
    }

    /// Checks a task (`{id, stage, params}`) and computes its fingerprint: what the driver
    /// decides at plan time, before anything runs (invalid parameters and missing inputs
    /// end the run here).
    pub fn prepare(
        self,
        task: &Value,
        store: &cloud::Store,
        cache: &cloud::InfoCache,
    ) -> Result<cloud::Fingerprint, TaskError> {
        fn go<S: Stage>(
            task: &Value,
            store: &cloud::Store,
            cache: &cloud::InfoCache,
        ) -> Result<cloud::Fingerprint, TaskError> {
            let t = cloud::entry::parse_task::<S>(task.clone())?;
            cloud::entry::prepare::<S>(store, &t.params, cache)
        }
        with_stage!(self, go(task, store, cache))
    }

    /// Checks a task's parameters without reading anything ([`Stage::validate`]).
    pub fn validate(self, task: &Value) -> Result<(), TaskError> {
        fn go<S: Stage>(task: &Value) -> Result<(), TaskError> {
            let t = cloud::entry::parse_task::<S>(task.clone())?;
            S::validate(&t.params)
        }
        with_stage!(self, go(task))
    }

    /// What a task reads: its objects ([`Stage::input_uris`]), then the folders it reads
    /// whole ([`Stage::input_folders`], such as a `.SAFE` product), each ending in `/`.
    pub fn input_uris(self, task: &Value) -> Result<Vec<String>, TaskError> {
        fn go<S: Stage>(task: &Value) -> Result<Vec<String>, TaskError> {
            let t = cloud::entry::parse_task::<S>(task.clone())?;
            let folders = S::input_folders(&t.params)
                .into_iter()
                .map(|f| format!("{}/", f.trim_end_matches('/')));
            Ok(S::input_uris(&t.params)
                .into_iter()
                .chain(folders)
                .collect())
        }
        with_stage!(self, go(task))
    }

    /// A typical wall time of one task of this stage on a 2-vCPU worker, seconds, for plans
    /// made before any task ran (from the benchmarks in the README: a 50 MB partition tile's
    /// terrain models, a 1024² NDVI window, a 5 m MDT05 water tile, a biomass chunk).
    pub fn typical_task_seconds(self) -> f64 {
        match self {
            StageKind::LidarPartitioner => 10.0,
            StageKind::Terrain => 20.0,
            StageKind::Ndvi => 1.0,
            StageKind::Water => 10.0,
            StageKind::Biomass => 5.0,
        }
    }

    /// The URIs a finished task's output record names (for the resume check).
    pub fn output_uris(self, output: &Value) -> Result<Vec<String>, serde_json::Error> {
        fn uris<S: Stage>(v: &Value) -> Result<Vec<String>, serde_json::Error> {
            Ok(S::output_uris(&S::Output::deserialize(v)?))
        }
        with_stage!(self, uris(output))
    }
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::plan::TaskSpec;

    /// A plan lists a preprocessing task's product folder among its inputs (its objects are
    /// listed only when the task's fingerprint is computed).
    #[test]
    fn inputs_include_the_folders_a_task_reads_whole() {
        let product = "s3://l1c/S2A_MSIL1C_20200219T112111_N0209_R037_T29SPC.SAFE";
        let params = ndvi::stage::Params::Preprocess(ndvi::preprocess::PreprocessTask {
            product: product.to_string(),
            out: "s3://archive/l2a".to_string(),
            allow_l1c: false,
            sen2cor: None,
            blocksize: 1024,
        });
        let spec = TaskSpec::new::<NdviStage>("p1", &params).unwrap();
        let inputs = StageKind::Ndvi.input_uris(&spec.task).unwrap();
        assert_eq!(inputs, [format!("{product}/")]);
    }
}
