//! The `biomass` pipeline: a CHM → tree tops, crowns and random-forest biomass.
//!
//! 1. `chunks`: one `biomass` chunk task per chunk of an n×n grid (each reads its window
//!    plus a halo, finds peak candidates and floods its core); `biomass::workflow::plan`.
//! 2. `merge`: one task stitches the chunks (flooding the crowns that cross them), computes
//!    the predictors, fits or loads the forest, and writes every output; the result equals
//!    the whole-image run.

use biomass::stage::{BiomassStage, Params};
use biomass::workflow::{MergeParams, RunOutput, RunParams};
use cloud::Store;
use serde_json::Value;

use super::{Pipeline, Product, Results, outcome};
use crate::error::DriverError;
use crate::exec::StepOutcome;
use crate::plan::{Step, TaskSpec};
use crate::stage::StageKind;

/// Settings of a biomass run.
#[derive(Debug, Clone)]
pub struct BiomassPipeline {
    /// The workflow settings (`chm`, `training`/`model`, `out`, segmentation, forest, halo).
    pub run: RunParams,
    /// Chunks per side.
    pub chunks: usize,
    merge: Option<MergeParams>,
}

impl BiomassPipeline {
    /// A pipeline of `chunks`×`chunks` chunk tasks then the merge.
    pub fn new(run: RunParams, chunks: usize) -> BiomassPipeline {
        BiomassPipeline {
            run,
            chunks,
            merge: None,
        }
    }
}

impl Pipeline for BiomassPipeline {
    fn name(&self) -> &'static str {
        "biomass"
    }

    fn steps(&self) -> Vec<&'static str> {
        vec!["chunks", "merge"]
    }

    fn describe(&self) -> Value {
        serde_json::json!({ "run": self.run, "chunks": self.chunks })
    }

    fn validate(&self) -> Result<(), DriverError> {
        let mut run = self.run.clone();
        run.chunks = Some(self.chunks);
        Params::Run(run)
            .validate()
            .map_err(|e| DriverError::Invalid(format!("biomass: {}", e.message)))
    }

    fn plan_next(
        &mut self,
        store: &Store,
        done: &[StepOutcome],
    ) -> Result<Option<Step>, DriverError> {
        match done.len() {
            0 => {
                self.validate()?;
                let (chunks, merge) = biomass::workflow::plan(store, &self.run, self.chunks)
                    .map_err(|e| DriverError::plan("biomass", e))?;
                self.merge = Some(merge);
                let tasks = chunks
                    .into_iter()
                    .map(|c| {
                        TaskSpec::new::<BiomassStage>(
                            &format!("chunk-{:05}", c.index),
                            &Params::Chunk(c),
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(Step::new("chunks", StageKind::Biomass, tasks)?))
            }
            1 => {
                let merge = self
                    .merge
                    .clone()
                    .ok_or_else(|| DriverError::Invalid("biomass: merge not planned".into()))?;
                let task = TaskSpec::new::<BiomassStage>("merge", &Params::Merge(merge))?;
                Ok(Some(Step::new("merge", StageKind::Biomass, vec![task])?))
            }
            _ => Ok(None),
        }
    }

    fn results(&self, _store: &Store, done: &[StepOutcome]) -> Result<Results, DriverError> {
        let out: Vec<biomass::stage::Output> = outcome("biomass", done, "merge")?.outputs()?;
        let Some(biomass::stage::Output::Merge(run)) = out.into_iter().next() else {
            return Err(DriverError::Invalid(
                "biomass: the merge task returned no merge output".into(),
            ));
        };
        Ok(results_of(&run))
    }
}

/// Products and figures of a biomass run output.
pub fn results_of(run: &RunOutput) -> Results {
    let describe = |uri: &str| match cloud::uri::file_name(uri) {
        "smoothed_chm.tif" => "smoothed CHM, m",
        "treetops.csv" => "tree tops",
        "crowns.tif" => "crown labels",
        "trees.csv" => "trees: position, height, predictors, biomass (kg)",
        "biomass.tif" => "biomass, kg per pixel",
        "model.json" => "fitted random forest",
        "summary.json" => "summary",
        "chm.png" => "CHM with tree tops",
        "crowns.png" => "crowns map",
        "biomass.png" => "biomass map",
        _ => "output",
    };
    Results {
        products: run
            .outputs
            .iter()
            .map(|u| Product::new(u, describe(u)))
            .collect(),
        summary: serde_json::json!({
            "tops": run.tops,
            "trees": run.trees,
            "total_biomass_kg": run.total_biomass_kg,
            "mean_biomass_kg": run.mean_biomass_kg,
            "training_r2": run.training_r2,
        }),
    }
}
