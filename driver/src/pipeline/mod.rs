//! Pipelines: sequences of steps, each planned from the results of the previous ones.
//!
//! The driver calls [`Pipeline::plan_next`] until it returns `None`, running each step with
//! the chosen executor (`plan → submit → wait`), then [`Pipeline::results`].

pub mod biomass;
pub mod lidar;
pub mod ndvi;
pub mod water;

use cloud::Store;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::DriverError;
use crate::exec::StepOutcome;
use crate::plan::Step;

/// A product of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// `cog`, `csv`, `png`, `json`, `las` or `laz`.
    pub kind: String,
    pub uri: String,
    pub description: String,
}

impl Product {
    /// A product whose kind comes from the URI's extension.
    pub fn new(uri: &str, description: impl Into<String>) -> Product {
        let ext = uri.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
        let kind = match ext.as_str() {
            "tif" | "tiff" => "cog",
            other => other,
        };
        Product {
            kind: kind.to_string(),
            uri: uri.to_string(),
            description: description.into(),
        }
    }
}

/// What a finished pipeline produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub products: Vec<Product>,
    /// Pipeline-specific figures (tile counts, totals, statistics).
    pub summary: Value,
}

/// A workflow of steps over stage tasks.
pub trait Pipeline: Send {
    /// `lidar`, `ndvi`, `water` or `biomass`.
    fn name(&self) -> &'static str;
    /// The names of the steps it runs, in order (`--executor STEP=KIND` is checked
    /// against them).
    fn steps(&self) -> Vec<&'static str>;
    /// The parameters, for the run record.
    fn describe(&self) -> Value;
    /// The next step, given the (successful) outcomes of the steps so far; `None` when done.
    fn plan_next(
        &mut self,
        store: &Store,
        done: &[StepOutcome],
    ) -> Result<Option<Step>, DriverError>;
    /// The products, after the last step.
    fn results(&self, store: &Store, done: &[StepOutcome]) -> Result<Results, DriverError>;
    /// Checks every setting of every step before the first runs (so that a bad option of
    /// the last step does not fail the run after all the work of the first).
    fn validate(&self) -> Result<(), DriverError> {
        Ok(())
    }
}

/// A task id fragment from a file name: letters, digits, `.`, `_`, `-` kept, others `_`.
pub fn id_part(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    while out.starts_with('.') {
        out.replace_range(0..1, "_");
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// A file name without its (last) extension.
pub fn file_stem(uri: &str) -> String {
    let name = cloud::uri::file_name(uri);
    name.rsplit_once('.').map_or(name, |(s, _)| s).to_string()
}

/// Distinct ids for `names`: `name`, or `name-2`, `name-3`... when repeated.
pub fn unique_ids(names: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    names
        .iter()
        .map(|n| {
            let c = seen.entry(n.clone()).or_insert(0);
            *c += 1;
            if *c == 1 {
                n.clone()
            } else {
                format!("{n}-{c}")
            }
        })
        .collect()
}

/// The outcome of step `name`, or an error naming the pipeline.
pub fn outcome<'a>(
    pipeline: &str,
    done: &'a [StepOutcome],
    name: &str,
) -> Result<&'a StepOutcome, DriverError> {
    done.iter()
        .find(|o| o.step == name)
        .ok_or_else(|| DriverError::Invalid(format!("{pipeline}: step {name} has not run")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_products() {
        assert_eq!(id_part("out_-1_-9 (copy).laz"), "out_-1_-9__copy_.laz");
        assert_eq!(id_part(".hidden"), "_hidden");
        assert_eq!(file_stem("s3://b/x/out_1_-9.laz"), "out_1_-9");
        assert_eq!(
            unique_ids(&["a".into(), "b".into(), "a".into()]),
            ["a", "b", "a-2"]
        );
        assert_eq!(Product::new("/x/dem.tif", "").kind, "cog");
        assert_eq!(Product::new("/x/trees.csv", "").kind, "csv");
    }
}
