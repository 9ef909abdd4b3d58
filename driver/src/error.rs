//! Errors of the driver.

use cloud::{StoreError, TaskError};

/// What can stop a run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// Storage failed (manifests, statuses, reports).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stage refused to plan (bad input named in the message).
    #[error("planning {pipeline}: {source}")]
    Plan {
        pipeline: String,
        #[source]
        source: TaskError,
    },
    /// Invalid options or inputs given to the driver.
    #[error("{0}")]
    Invalid(String),
    /// Tasks of a step failed after their retries; the message lists them.
    #[error("{summary}")]
    StepFailed {
        step: String,
        failed: usize,
        total: usize,
        summary: String,
    },
    /// An AWS service call (Lambda, Batch, S3 control plane) failed.
    #[error("{service}: {message}")]
    Aws {
        service: &'static str,
        message: String,
    },
    /// A product could not be read back (the STAC catalog reads the rasters' grids).
    #[error(transparent)]
    Raster(#[from] cog::CogError),
    /// Encoding a report, a plot or a manifest failed.
    #[error("{what}: {message}")]
    Encode { what: String, message: String },
}

impl DriverError {
    pub(crate) fn plan(pipeline: &str, e: impl Into<TaskError>) -> Self {
        DriverError::Plan {
            pipeline: pipeline.to_string(),
            source: e.into(),
        }
    }
    pub(crate) fn encode(what: impl Into<String>, message: impl ToString) -> Self {
        DriverError::Encode {
            what: what.into(),
            message: message.to_string(),
        }
    }
}

impl From<water::plots::PlotTableError> for DriverError {
    fn from(e: water::plots::PlotTableError) -> Self {
        use water::plots::PlotTableError as E;
        match e {
            E::Store(e) => DriverError::Store(e),
            E::Encode { what, message } => DriverError::encode(what, message),
            other => DriverError::Invalid(other.to_string()),
        }
    }
}
