//! Random-forest biomass regression (smartcore), trained on the NEON training table.
//!
//! The NEON tutorial fits `RandomForestRegressor(max_depth=30, random_state=2)` with
//! 100 trees, bootstrap, and every feature tried at each split (`max_features` 1.0 /
//! the old `'auto'` for regressors). [`ForestParams::default`] is the same with smartcore's
//! forest and a fixed seed (random streams differ from scikit-learn's, so individual trees
//! differ; the fit quality and totals are compared in the tests).
//!
//! The model serialises to JSON (serde_json with `float_roundtrip`, so thresholds and leaf
//! values round-trip bit-exactly).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;

use crate::error::BiomassError;
use crate::predictors::N_PREDICTORS;

/// The largest training table accepted (rows).
pub const MAX_TRAINING_ROWS: usize = 10_000_000;

/// A training table: biomass (kg) and the 11 predictors per row.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainingTable {
    /// Column 0: biomass, kg.
    pub biomass: Vec<f64>,
    /// Columns 1..=11, in [`crate::PREDICTOR_NAMES`] order.
    pub predictors: Vec<[f64; N_PREDICTORS]>,
}

impl TrainingTable {
    /// Parses a headerless CSV of 12 numeric columns (biomass kg, then the 11 predictors).
    /// Errors name `uri`, the line and the column.
    pub fn from_csv(uri: &str, bytes: &[u8]) -> Result<TrainingTable, BiomassError> {
        let bad = |message: String| BiomassError::BadTraining {
            uri: uri.to_string(),
            message,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(bytes);
        let mut t = TrainingTable::default();
        for (i, rec) in rdr.records().enumerate() {
            let line = i + 1;
            let rec = rec.map_err(|e| bad(format!("line {line}: {e}")))?;
            if rec.len() == 1 && rec.get(0).is_some_and(str::is_empty) {
                continue;
            }
            if rec.len() != N_PREDICTORS + 1 {
                return Err(bad(format!(
                    "line {line}: {} columns, expected {} (biomass kg then the 11 predictors)",
                    rec.len(),
                    N_PREDICTORS + 1
                )));
            }
            let mut row = [0f64; N_PREDICTORS + 1];
            for (j, cell) in rec.iter().enumerate() {
                let v: f64 = cell.parse().map_err(|_| {
                    bad(format!(
                        "line {line}, column {}: {cell:?} is not a number",
                        j + 1
                    ))
                })?;
                if !v.is_finite() {
                    return Err(bad(format!(
                        "line {line}, column {}: {cell:?} is not finite",
                        j + 1
                    )));
                }
                row[j] = v;
            }
            if t.biomass.len() >= MAX_TRAINING_ROWS {
                return Err(bad(format!("more than {MAX_TRAINING_ROWS} rows")));
            }
            t.biomass.push(row[0]);
            let mut p = [0f64; N_PREDICTORS];
            p.copy_from_slice(&row[1..]);
            t.predictors.push(p);
        }
        if t.biomass.len() < 2 {
            return Err(bad(format!(
                "{} data rows; a random forest needs at least 2",
                t.biomass.len()
            )));
        }
        Ok(t)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.biomass.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.biomass.is_empty()
    }
}

/// Random forest settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForestParams {
    /// Number of trees (NEON: 100).
    pub n_trees: usize,
    /// Maximum tree depth (NEON: 30).
    pub max_depth: u16,
    /// Features tried per split; `None` = all (scikit-learn's regressor default).
    pub max_features: Option<usize>,
    /// Minimum samples in a leaf (1).
    pub min_samples_leaf: usize,
    /// Minimum samples to split a node (2).
    pub min_samples_split: usize,
    /// Seed of the bootstrap and feature sampling (NEON's `random_state=2`).
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            n_trees: 100,
            max_depth: 30,
            max_features: None,
            min_samples_leaf: 1,
            min_samples_split: 2,
            seed: 2,
        }
    }
}

type Rf = RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;

/// A fitted biomass model.
#[derive(Debug, Serialize, Deserialize)]
pub struct BiomassModel {
    /// The settings it was fitted with.
    pub params: ForestParams,
    /// Number of predictors it expects.
    pub n_features: usize,
    rf: Rf,
}

fn matrix(rows: &[[f64; N_PREDICTORS]]) -> Result<DenseMatrix<f64>, BiomassError> {
    let n = rows.len();
    let mut values = Vec::with_capacity(n * N_PREDICTORS);
    for r in rows {
        values.extend_from_slice(r);
    }
    DenseMatrix::new(n, N_PREDICTORS, values, false).map_err(|e| BiomassError::Model(e.to_string()))
}

impl BiomassModel {
    /// Fits the forest on a training table.
    pub fn fit(table: &TrainingTable, params: &ForestParams) -> Result<BiomassModel, BiomassError> {
        if params.n_trees == 0 || params.n_trees > 100_000 {
            return Err(BiomassError::Param(format!(
                "n_trees must be 1..=100000, got {}",
                params.n_trees
            )));
        }
        if table.len() < 2 {
            return Err(BiomassError::Model("need at least 2 training rows".into()));
        }
        let m = params
            .max_features
            .unwrap_or(N_PREDICTORS)
            .clamp(1, N_PREDICTORS);
        let x = matrix(&table.predictors)?;
        let p = RandomForestRegressorParameters::default()
            .with_n_trees(params.n_trees)
            .with_max_depth(params.max_depth)
            .with_m(m)
            .with_min_samples_leaf(params.min_samples_leaf.max(1))
            .with_min_samples_split(params.min_samples_split.max(2))
            .with_seed(params.seed);
        let rf = Rf::fit(&x, &table.biomass, p).map_err(|e| BiomassError::Model(e.to_string()))?;
        Ok(BiomassModel {
            params: *params,
            n_features: N_PREDICTORS,
            rf,
        })
    }

    /// Predicted biomass (kg) per row, in parallel over row blocks.
    pub fn predict(&self, rows: &[[f64; N_PREDICTORS]]) -> Result<Vec<f64>, BiomassError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let block = 4096;
        let parts: Result<Vec<Vec<f64>>, BiomassError> = rows
            .par_chunks(block)
            .map(|part| {
                let x = matrix(part)?;
                self.rf
                    .predict(&x)
                    .map_err(|e| BiomassError::Model(e.to_string()))
            })
            .collect();
        Ok(parts?.concat())
    }

    /// The model as JSON.
    pub fn to_json(&self) -> Result<String, BiomassError> {
        serde_json::to_string(self).map_err(|e| BiomassError::Model(e.to_string()))
    }

    /// A model from [`BiomassModel::to_json`] output.
    pub fn from_json(s: &str) -> Result<BiomassModel, BiomassError> {
        serde_json::from_str(s).map_err(|e| BiomassError::Model(format!("model JSON: {e}")))
    }
}

/// Coefficient of determination R² = 1 − SS_res / SS_tot (scikit-learn's `r2_score`).
pub fn r2_score(y: &[f64], pred: &[f64]) -> f64 {
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let ss_tot: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    let ss_res: f64 = y.iter().zip(pred).map(|(a, b)| (a - b).powi(2)).sum();
    if ss_tot == 0.0 {
        if ss_res == 0.0 { 1.0 } else { 0.0 }
    } else {
        1.0 - ss_res / ss_tot
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn toy() -> TrainingTable {
        let mut t = TrainingTable::default();
        for i in 0..60 {
            let x = i as f64;
            let mut p = [0.0; N_PREDICTORS];
            for (j, v) in p.iter_mut().enumerate() {
                *v = x * (j as f64 + 1.0) + ((i * 7 + j) % 5) as f64;
            }
            t.predictors.push(p);
            t.biomass.push(3.0 * x + 10.0);
        }
        t
    }

    #[test]
    fn fit_predict_roundtrip() {
        let t = toy();
        let params = ForestParams {
            n_trees: 20,
            ..Default::default()
        };
        let m = BiomassModel::fit(&t, &params).unwrap();
        let p = m.predict(&t.predictors).unwrap();
        assert!(r2_score(&t.biomass, &p) > 0.95);
        let json = m.to_json().unwrap();
        let m2 = BiomassModel::from_json(&json).unwrap();
        let p2 = m2.predict(&t.predictors).unwrap();
        assert_eq!(p, p2, "JSON round trip must predict bit-identically");
        // Same seed, same forest.
        let m3 = BiomassModel::fit(&t, &params).unwrap();
        assert_eq!(m3.predict(&t.predictors).unwrap(), p);
    }

    #[test]
    fn csv_errors_name_line_and_column() {
        let e = TrainingTable::from_csv("t.csv", b"1,2,3\n").unwrap_err();
        assert!(e.to_string().contains("t.csv: line 1: 3 columns"), "{e}");
        let row = "1,2,3,4,5,6,7,8,9,10,11,12\n";
        let bad = format!("{row}{row}1,2,x,4,5,6,7,8,9,10,11,12\n");
        let e = TrainingTable::from_csv("t.csv", bad.as_bytes()).unwrap_err();
        assert!(
            e.to_string()
                .contains("line 3, column 3: \"x\" is not a number"),
            "{e}"
        );
        let e = TrainingTable::from_csv("t.csv", row.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("1 data rows"), "{e}");
        let ok = TrainingTable::from_csv("t.csv", format!("{row}{row}").as_bytes()).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok.predictors[0][10], 12.0);
    }

    #[test]
    fn r2_basics() {
        assert_eq!(r2_score(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 1.0);
        assert!((r2_score(&[1.0, 2.0, 3.0], &[2.0, 2.0, 2.0])).abs() < 1e-12);
    }
}
