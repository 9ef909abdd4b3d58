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

use std::sync::OnceLock;

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
    /// The forest as flat node arrays, built from `rf` on first use.
    #[serde(skip)]
    flat: OnceLock<Result<FlatForest, String>>,
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
            flat: OnceLock::new(),
        })
    }

    /// Predicted biomass (kg) per row, in parallel over row blocks; bit-identical to
    /// smartcore's `predict` (see [`FlatForest`]).
    pub fn predict(&self, rows: &[[f64; N_PREDICTORS]]) -> Result<Vec<f64>, BiomassError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let flat = self
            .flat
            .get_or_init(|| FlatForest::from_smartcore(&self.rf).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| BiomassError::Model(e.clone()))?;
        flat.predict(rows.as_flattened(), N_PREDICTORS)
    }

    /// smartcore's own prediction (the reference [`BiomassModel::predict`] reproduces).
    pub fn predict_smartcore(
        &self,
        rows: &[[f64; N_PREDICTORS]],
    ) -> Result<Vec<f64>, BiomassError> {
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

    /// A model from [`BiomassModel::to_json`] output, with its structure checked: every
    /// tree acyclic (children point forward, none to its own node), child and feature
    /// indices in range, and as many features as there are predictors.
    pub fn from_json(s: &str) -> Result<BiomassModel, BiomassError> {
        let m: BiomassModel =
            serde_json::from_str(s).map_err(|e| BiomassError::Model(format!("model JSON: {e}")))?;
        if m.n_features != N_PREDICTORS {
            return Err(BiomassError::Model(format!(
                "model JSON: n_features is {}, but biomass has {N_PREDICTORS} predictors",
                m.n_features
            )));
        }
        let flat = FlatForest::from_smartcore(&m.rf)?;
        if flat.n_features() != N_PREDICTORS {
            return Err(BiomassError::Model(format!(
                "model JSON: the forest takes {} features, not the {N_PREDICTORS} predictors",
                flat.n_features()
            )));
        }
        let _ = m.flat.set(Ok(flat));
        Ok(m)
    }
}

/// A fitted smartcore regression forest as flat node arrays, for fast prediction.
///
/// Built from the forest's serde representation (smartcore's tree internals are private):
/// per tree a `nodes` list of `{output, split_feature, split_value, true_child, false_child}`.
/// Evaluation follows smartcore's `predict_mean` exactly: a row goes to the true child when
/// `x[feature] <= split_value` (a missing split value is NaN: never true), a node without
/// children is a leaf, the leaf outputs are summed in tree order and the sum divided by the
/// number of trees — so predictions are bit-identical. Rows are evaluated in blocks (tree
/// by tree within a block, so each tree stays in cache) and blocks in parallel.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatForest {
    n_features: usize,
    /// Index of each tree's root in the node arrays.
    roots: Vec<u32>,
    /// Each tree's depth (edges on its longest root-to-leaf path).
    depths: Vec<u32>,
    nodes: Vec<FlatNode>,
    /// Leaf outputs, by node (0 for split nodes).
    outputs: Vec<f64>,
}

/// One node. A leaf points to itself on both sides, so a walk of a tree's depth in steps,
/// without a test for leaves, ends at the row's leaf (branch-free, several rows in lockstep).
#[derive(Debug, Clone, Copy, PartialEq)]
struct FlatNode {
    threshold: f64,
    feature: u32,
    true_child: u32,
    false_child: u32,
}

impl FlatNode {
    fn is_leaf(&self, at: usize) -> bool {
        self.true_child as usize == at
    }
}

fn json_usize(v: &serde_json::Value, what: &str) -> Result<Option<usize>, BiomassError> {
    match v {
        serde_json::Value::Null => Ok(None),
        _ => v
            .as_u64()
            .and_then(|u| usize::try_from(u).ok())
            .map(Some)
            .ok_or_else(|| BiomassError::Model(format!("forest JSON: {what} is not an index"))),
    }
}

impl FlatForest {
    /// Converts a fitted smartcore forest.
    pub fn from_smartcore(rf: &Rf) -> Result<FlatForest, BiomassError> {
        let bad = |m: &str| BiomassError::Model(format!("forest JSON: {m}"));
        let v = serde_json::to_value(rf).map_err(|e| BiomassError::Model(e.to_string()))?;
        let forest = v
            .get("forest_regressor")
            .filter(|f| !f.is_null())
            .ok_or_else(|| bad("the forest is not fitted"))?;
        let n_features = json_usize(
            forest
                .get("num_features")
                .unwrap_or(&serde_json::Value::Null),
            "num_features",
        )?
        .ok_or_else(|| bad("no num_features"))?;
        let trees = forest
            .get("trees")
            .and_then(|t| t.as_array())
            .ok_or_else(|| bad("no trees"))?;
        if trees.is_empty() {
            return Err(bad("no trees"));
        }
        let mut roots = Vec::with_capacity(trees.len());
        let mut nodes: Vec<FlatNode> = Vec::new();
        let mut outputs: Vec<f64> = Vec::new();
        for tree in trees {
            let tn = tree
                .get("nodes")
                .and_then(|n| n.as_array())
                .filter(|n| !n.is_empty())
                .ok_or_else(|| bad("a tree without nodes"))?;
            let base = nodes.len();
            let child = |c: Option<usize>| -> Result<Option<u32>, BiomassError> {
                match c {
                    None => Ok(None),
                    Some(c) if c < tn.len() => u32::try_from(base + c)
                        .map(Some)
                        .map_err(|_| bad("too many nodes")),
                    Some(_) => Err(bad("a child index out of range")),
                }
            };
            roots.push(u32::try_from(base).map_err(|_| bad("too many nodes"))?);
            for (k, node) in tn.iter().enumerate() {
                let here = u32::try_from(base + k).map_err(|_| bad("too many nodes"))?;
                let field = |k: &str| node.get(k).unwrap_or(&serde_json::Value::Null);
                let output = field("output")
                    .as_f64()
                    .ok_or_else(|| bad("a node output is not a number"))?;
                let t = child(json_usize(field("true_child"), "true_child")?)?;
                let f = child(json_usize(field("false_child"), "false_child")?)?;
                let n = match (t, f) {
                    (None, _) => FlatNode {
                        threshold: 0.0,
                        feature: 0,
                        true_child: here,
                        false_child: here,
                    },
                    (Some(t), Some(f)) if t == here || f == here => {
                        return Err(bad("a node is its own child (a cycle)"));
                    }
                    (Some(t), Some(f)) => {
                        let feature = json_usize(field("split_feature"), "split_feature")?
                            .filter(|&k| k < n_features)
                            .ok_or_else(|| bad("a split feature out of range"))?;
                        let threshold = match field("split_value") {
                            serde_json::Value::Null => f64::NAN,
                            s => s
                                .as_f64()
                                .ok_or_else(|| bad("a split value is not a number"))?,
                        };
                        FlatNode {
                            threshold,
                            feature: feature as u32,
                            true_child: t,
                            false_child: f,
                        }
                    }
                    (Some(_), None) => return Err(bad("a node with one child")),
                };
                outputs.push(if n.is_leaf(here as usize) {
                    output
                } else {
                    0.0
                });
                nodes.push(n);
            }
        }
        // Every path must end at a leaf: children point forward or the walk could loop.
        for (i, n) in nodes.iter().enumerate() {
            if !n.is_leaf(i) && (n.true_child as usize <= i || n.false_child as usize <= i) {
                return Err(bad("a child index does not point forward"));
            }
        }
        // Depth of each node's subtree, from the last node back (children come later).
        let mut below = vec![0u32; nodes.len()];
        for i in (0..nodes.len()).rev() {
            let n = nodes[i];
            if !n.is_leaf(i) {
                below[i] = 1 + below[n.true_child as usize].max(below[n.false_child as usize]);
            }
        }
        let depths = roots.iter().map(|&r| below[r as usize]).collect();
        Ok(FlatForest {
            n_features,
            roots,
            depths,
            nodes,
            outputs,
        })
    }

    /// Number of features a row must have.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Predictions for row-major `x` with `n_features` columns, bit-identical to smartcore's
    /// `RandomForestRegressor::predict`.
    pub fn predict(&self, x: &[f64], n_features: usize) -> Result<Vec<f64>, BiomassError> {
        if n_features != self.n_features || !x.len().is_multiple_of(n_features.max(1)) {
            return Err(BiomassError::Shape(format!(
                "forest predict: {} values in rows of {n_features}, the forest expects {} features",
                x.len(),
                self.n_features
            )));
        }
        let n = x.len() / n_features;
        let mut out = vec![0.0f64; n];
        const BLOCK: usize = 256;
        const LANES: usize = 8;
        let n_trees = self.roots.len() as f64;
        let nodes = &self.nodes[..];
        out.par_chunks_mut(BLOCK)
            .zip(x.par_chunks(BLOCK * n_features))
            .for_each(|(sums, rows)| {
                for (&root, &depth) in self.roots.iter().zip(&self.depths) {
                    for (s, rows) in sums.chunks_mut(LANES).zip(rows.chunks(LANES * n_features)) {
                        let lanes = s.len();
                        let mut at = [root as usize; LANES];
                        for _ in 0..depth {
                            for (k, a) in at.iter_mut().enumerate().take(lanes) {
                                let node = &nodes[*a];
                                let v = rows[k * n_features + node.feature as usize];
                                *a = if v <= node.threshold {
                                    node.true_child
                                } else {
                                    node.false_child
                                } as usize;
                            }
                        }
                        for (s, &a) in s.iter_mut().zip(&at) {
                            *s += self.outputs[a];
                        }
                    }
                }
                for s in sums.iter_mut() {
                    *s /= n_trees;
                }
            });
        Ok(out)
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

    /// The flat forest predicts bit-identically to smartcore, on training rows, on random
    /// rows and on rows equal to split thresholds (the `<=` edge), also after a JSON trip.
    #[test]
    fn flat_forest_equals_smartcore() {
        let t = toy();
        let params = ForestParams {
            n_trees: 30,
            max_features: Some(4),
            ..Default::default()
        };
        let m = BiomassModel::fit(&t, &params).unwrap();
        let mut rows = t.predictors.clone();
        let mut s: u64 = 12345;
        for _ in 0..3000 {
            let mut p = [0.0; N_PREDICTORS];
            for v in p.iter_mut() {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *v = (s >> 11) as f64 / (1u64 << 53) as f64 * 700.0 - 20.0;
            }
            rows.push(p);
        }
        let flat = FlatForest::from_smartcore(&m.rf).unwrap();
        assert_eq!(flat.n_features(), N_PREDICTORS);
        assert_eq!(flat.roots.len(), 30);
        // Rows sitting exactly on thresholds.
        assert!(flat.depths.iter().all(|&d| d >= 2));
        for (_, n) in flat
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| !n.is_leaf(*i))
        {
            let mut p = t.predictors[rows.len() % t.len()];
            p[n.feature as usize] = n.threshold;
            rows.push(p);
        }
        let want = m.predict_smartcore(&rows).unwrap();
        let got = m.predict(&rows).unwrap();
        assert_eq!(got.len(), rows.len());
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "row {i}: {a} vs {b}");
        }
        let m2 = BiomassModel::from_json(&m.to_json().unwrap()).unwrap();
        assert_eq!(m2.predict(&rows).unwrap(), want);
        assert!(flat.predict(&[1.0; 5], 5).is_err());
        assert!(flat.predict(&[1.0; 13], N_PREDICTORS).is_err());
    }

    #[test]
    fn hostile_model_json_is_refused() {
        let t = toy();
        let m = BiomassModel::fit(
            &t,
            &ForestParams {
                n_trees: 3,
                ..Default::default()
            },
        )
        .unwrap();
        let good: serde_json::Value = serde_json::from_str(&m.to_json().unwrap()).unwrap();
        assert!(BiomassModel::from_json(&good.to_string()).is_ok());
        let edit = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = good.clone();
            f(&mut v);
            BiomassModel::from_json(&v.to_string())
                .unwrap_err()
                .to_string()
        };
        fn nodes(v: &mut serde_json::Value) -> &mut serde_json::Value {
            &mut v["rf"]["forest_regressor"]["trees"][0]["nodes"]
        }
        // The root's true child is the root itself: once read as a leaf (every tree gave
        // the root's output).
        let e = edit(&|v| nodes(v)[0]["true_child"] = serde_json::json!(0));
        assert!(e.contains("its own child"), "{e}");
        // A deeper node points back to the root: a loop.
        let e = edit(&|v| {
            let n = nodes(v);
            let k = n
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
                .skip(1)
                .find(|(_, x)| !x["true_child"].is_null())
                .map(|(k, _)| k)
                .unwrap();
            n[k]["false_child"] = serde_json::json!(0);
        });
        assert!(e.contains("does not point forward"), "{e}");
        let e = edit(&|v| nodes(v)[0]["true_child"] = serde_json::json!(100_000));
        assert!(e.contains("out of range"), "{e}");
        let e = edit(&|v| v["n_features"] = serde_json::json!(5));
        assert!(e.contains("n_features is 5"), "{e}");
        let e = edit(&|v| v["rf"]["forest_regressor"]["num_features"] = serde_json::json!(5));
        assert!(
            e.contains("out of range") || e.contains("takes 5 features"),
            "{e}"
        );
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
