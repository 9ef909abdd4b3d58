//! `driver`: geobutton's small equivalent of Lithops. It chains the stage crates into
//! pipelines, runs their tasks on one machine or fanned out on AWS Lambda / AWS Batch, and
//! reports on the run.
//!
//! - [`pipeline`]: the four pipelines, each a sequence of steps planned one after another
//!   (`plan → submit → wait → results`): [`pipeline::lidar`] (partition → terrain models per
//!   partition → mosaic), [`pipeline::ndvi`] (windows → merge), [`pipeline::water`] (tiles,
//!   each computed as k×k windows → mosaic and per-plot merge), [`pipeline::biomass`]
//!   (chunks → merge).
//! - [`plan`]: typed tasks ([`plan::TaskSpec::new`] from a stage's own `Params`), steps, and
//!   the JSON-lines manifests written to the output location; only `{manifest, index}`
//!   travels in an invocation.
//! - [`exec`]: executors — [`exec::local::LocalExecutor`] (rayon, in process, the default);
//!   with the default feature `aws`, `exec::lambda::LambdaExecutor` (aws-sdk-lambda Invoke,
//!   bounded concurrency, retries of retryable failures with optionally more memory,
//!   deadlines) and `exec::batch::BatchExecutor` (one array job per step, DescribeJobs
//!   polling).
//! - [`run`]: runs a pipeline with an executor, resuming from the tasks' status objects;
//!   [`report`] and [`plot`]: `report.json`, the timeline and duration histogram PNGs and the
//!   cost estimate; [`stac`]: the STAC collection of every run's products; [`demo`]: the
//!   synthetic scene of `geobutton demo`; `deploy` (feature `aws`): the AWS resources
//!   (`geobutton deploy`); [`notebook`]: what every notebook uses (inline
//!   pictures and tables, the fixtures or the demo scene).
//!
//! ```
//! use driver::{Step, StageKind, TaskSpec};
//! use lidar_partitioner::{Params, PartitionStage, PartitionTask};
//!
//! // A step of one typed task: its JSON is what a Lambda invocation or a Batch manifest
//! // line carries, and its status goes beside its output.
//! let task = PartitionTask {
//!     input: "s3://my-bucket/lidar/sheet.laz".into(),
//!     output: "s3://my-bucket/runs/r1/partitions/sheet".into(),
//!     params: Params::capacity(1_600_000, 20.0),
//! };
//! let spec = TaskSpec::new::<PartitionStage>("partition-sheet", &task)?;
//! assert_eq!(spec.task["params"]["capacity"], 1_600_000);
//! assert_eq!(spec.status_uri, "s3://my-bucket/runs/r1/partitions/sheet/status/partition-sheet.json");
//! let step = Step::new("partition", StageKind::LidarPartitioner, vec![spec])?;
//! assert_eq!(step.tasks.len(), 1);
//! # Ok::<(), driver::DriverError>(())
//! ```

pub mod demo;
#[cfg(feature = "aws")]
pub mod deploy;
pub mod error;
pub mod exec;
pub mod notebook;
pub mod pipeline;
pub mod plan;
pub mod plot;
pub mod report;
pub mod run;
pub mod stac;
pub mod stac_search;
pub mod stage;
pub mod workloads;

pub use error::DriverError;
pub use exec::{Executor, StepOutcome, TaskRecord};
pub use pipeline::Pipeline;
pub use plan::{Step, TaskSpec};
pub use run::{RunConfig, RunSummary, run_pipeline};
pub use stage::StageKind;
