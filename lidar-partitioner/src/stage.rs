//! The `lidar-partitioner` stage: one task partitions one input file (as CloudButton's
//! original did); the same binary is the CLI, the AWS Lambda handler and the AWS Batch worker.

use cloud::{Ctx, Stage, TaskError};
use serde::{Deserialize, Serialize};

use crate::params::{Manifest, Params};

#[cfg(feature = "cli")]
pub mod cli;

/// The stage (see [`cloud::Stage`]).
#[derive(Debug, Clone, Copy)]
pub struct PartitionStage;

/// Parameters of one task: partition `input` into `output`.
///
/// Task JSON: `{"id": "t1", "stage": "lidar-partitioner", "params": {"input":
/// "s3://b/in/tile.laz", "output": "s3://b/parts/tile", "capacity": 1600000, "buffer_m": 10}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Map<String, serde_json::Value>")]
pub struct PartitionTask {
    /// Input LAS/LAZ/COPC URI (path, `file://`, `s3://`, `https://`).
    pub input: String,
    /// Output directory or prefix URI; tiles, `partitions.json` and `status/` go there.
    pub output: String,
    /// How to partition, in the same JSON object as `input` and `output`.
    #[serde(flatten)]
    pub params: Params,
}

/// Reads a task object: `input` and `output`, and every other field as [`Params`], whose
/// `deny_unknown_fields` then refuses what neither knows (serde's `flatten` alone would let
/// an unknown field through).
impl TryFrom<serde_json::Map<String, serde_json::Value>> for PartitionTask {
    type Error = String;

    fn try_from(
        mut fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, Self::Error> {
        let mut take = |name: &str| match fields.remove(name) {
            Some(serde_json::Value::String(s)) => Ok(s),
            Some(other) => Err(format!(
                "invalid type: {other}, expected a string for `{name}`"
            )),
            None => Err(format!("missing field `{name}`")),
        };
        let input = take("input")?;
        let output = take("output")?;
        let params =
            Params::deserialize(serde_json::Value::Object(fields)).map_err(|e| e.to_string())?;
        Ok(PartitionTask {
            input,
            output,
            params,
        })
    }
}

impl PartitionTask {
    /// Checks the task's parameters and locations (see [`cloud::Stage::validate`]).
    pub fn validate(&self) -> Result<(), TaskError> {
        use cloud::validate;
        validate::uri("input", &self.input)?;
        validate::location("output", &self.output)?;
        validate::count(
            "number of neighbours",
            self.params.neighbours.len(),
            0..=MAX_NEIGHBOURS,
        )?;
        for n in &self.params.neighbours {
            validate::uri("neighbour", n)?;
            if n == &self.input {
                return Err(TaskError::invalid_task(format!(
                    "neighbour {n} is the input itself"
                )));
            }
        }
        self.params
            .validate()
            .map_err(|e| TaskError::invalid_task(e.to_string()))?;
        validate::number("buffer_m", self.params.buffer_m, 0.0..=MAX_BUFFER_M)?;
        validate::opt_number("target_mb", self.params.target_mb, 1e-3..=1e6)?;
        if let Some(c) = self.params.capacity {
            validate::count("capacity", c, 1..=MAX_CAPACITY)?;
        }
        if let Some(m) = self.params.max_memory_mb {
            validate::count("max_memory_mb", m, 1..=(1 << 24))?;
        }
        if let Some(e) = self.params.epsg {
            validate::count("epsg", e, 1024..=999_999)?;
            if pointcloud::crs::wkt_of_epsg(e).is_none() {
                return Err(TaskError::invalid_task(format!(
                    "epsg: EPSG:{e} is not in the built-in EPSG table"
                )));
            }
        }
        Ok(())
    }
}

/// Widest buffer accepted: 10 km (a tile's buffer wider than that copies most of a
/// region into every tile).
pub const MAX_BUFFER_M: f64 = 10_000.0;

/// Most neighbouring files one task reads (a file has 8 neighbours on a sheet grid; more
/// means a region's worth of files in every task).
pub const MAX_NEIGHBOURS: usize = 64;

/// Most core points per tile accepted: 2³¹ (a tile's records must fit one allocation).
pub const MAX_CAPACITY: u64 = 1 << 31;

impl Stage for PartitionStage {
    const NAME: &'static str = "lidar-partitioner";
    const VERSION: u32 = 1;
    type Params = PartitionTask;
    type Output = Manifest;

    fn status_root(params: &PartitionTask) -> String {
        params.output.clone()
    }

    fn validate(params: &PartitionTask) -> Result<(), TaskError> {
        params.validate()
    }

    fn input_uris(params: &PartitionTask) -> Vec<String> {
        let mut v = vec![params.input.clone()];
        v.extend(params.params.neighbours.iter().cloned());
        v
    }

    fn run(params: &PartitionTask, ctx: &Ctx) -> Result<Manifest, TaskError> {
        Ok(crate::partition_with(
            ctx,
            &params.input,
            &params.output,
            &params.params,
        )?)
    }

    fn output_uris(output: &Manifest) -> Vec<String> {
        output.output_uris()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn task_json_is_one_flat_object_and_refuses_what_it_does_not_know() {
        let text = r#"{"input":"s3://b/in.laz","output":"s3://b/out","capacity":1000,"target_mb":null,"buffer_m":10.0,"method":"density","format":"same","max_memory_mb":null,"neighbours":["s3://b/n.laz"]}"#;
        let task: PartitionTask = serde_json::from_str(text).unwrap();
        assert_eq!(task.input, "s3://b/in.laz");
        assert_eq!(task.params.capacity, Some(1000));
        assert_eq!(task.params.neighbours, ["s3://b/n.laz"]);
        // Written back field for field, in the same order (fingerprints hash this text).
        assert_eq!(serde_json::to_string(&task).unwrap(), text);
        // Defaults as before: only the buffer is required besides the locations.
        let t: PartitionTask =
            serde_json::from_str(r#"{"input":"a.las","output":"o","buffer_m":1}"#).unwrap();
        assert_eq!((t.params.method, t.params.format), Default::default());
        for (bad, says) in [
            (
                r#"{"input":"a","output":"o","buffer_m":1,"colour":1}"#,
                "unknown field `colour`",
            ),
            (r#"{"output":"o","buffer_m":1}"#, "missing field `input`"),
            (
                r#"{"input":3,"output":"o","buffer_m":1}"#,
                "expected a string for `input`",
            ),
            (r#"{"input":"a","output":"o"}"#, "missing field `buffer_m`"),
            (
                r#"{"input":"a","output":"o","buffer_m":"x"}"#,
                "invalid type",
            ),
        ] {
            let e = serde_json::from_str::<PartitionTask>(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
