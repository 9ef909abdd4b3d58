//! Typed tasks, steps and their manifests.
//!
//! A [`Step`] is a map: tasks of one stage that may run in any order and concurrently. Its
//! tasks are written as a JSON-lines manifest (`<output>/tasks/<step>.jsonl`, one
//! `{id, stage, params}` per line, blank lines skipped) and an invocation carries only
//! `{"manifest": URI, "index": n}` (Batch overrides are capped at 8 KiB and async Lambda
//! payloads at 1 MB; a task list is not).

use bytes::Bytes;
use cloud::{Stage, Store, TaskStatus};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::DriverError;
use crate::stage::StageKind;

/// One task, serialised from a stage's own `Params` type, with where its status goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Unique within its status root; names `status/<id>.json`.
    pub id: String,
    pub stage: StageKind,
    /// The task JSON, `{id, stage, params}`.
    pub task: Value,
    /// `<status_root>/status/<id>.json` (from `Stage::status_root`).
    pub status_uri: String,
}

impl TaskSpec {
    /// A task of stage `S` with parameters `params`; `id` must be 1–128 characters of
    /// `[A-Za-z0-9._-]`.
    pub fn new<S: Stage>(id: &str, params: &S::Params) -> Result<TaskSpec, DriverError> {
        cloud::task::validate_task_id(id).map_err(|e| DriverError::Invalid(e.message))?;
        let stage = StageKind::from_name(S::NAME).ok_or_else(|| {
            DriverError::Invalid(format!("stage {:?} is not one the driver runs", S::NAME))
        })?;
        let task = cloud::Task {
            id: id.to_string(),
            stage: S::NAME.to_string(),
            params,
        };
        let task = serde_json::to_value(&task)
            .map_err(|e| DriverError::encode(format!("task {id}"), e))?;
        Ok(TaskSpec {
            id: id.to_string(),
            stage,
            task,
            status_uri: cloud::entry::status_uri(&S::status_root(params), id),
        })
    }
}

/// Tasks of one stage that may run concurrently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Step name (`partition`, `terrain`, `mosaic`, ...); names the manifest.
    pub name: String,
    pub stage: StageKind,
    pub tasks: Vec<TaskSpec>,
}

impl Step {
    /// A step of `tasks`, which must all be of `stage` and have distinct status URIs.
    pub fn new(name: &str, stage: StageKind, tasks: Vec<TaskSpec>) -> Result<Step, DriverError> {
        let mut seen = std::collections::HashSet::new();
        let mut ids = std::collections::HashSet::new();
        for t in &tasks {
            if !ids.insert(t.id.as_str()) {
                return Err(DriverError::Invalid(format!(
                    "step {name}: two tasks share the id {}",
                    t.id
                )));
            }
            if t.stage != stage {
                return Err(DriverError::Invalid(format!(
                    "step {name}: task {} is of stage {}, not {stage}",
                    t.id, t.stage
                )));
            }
            if !seen.insert(t.status_uri.as_str()) {
                return Err(DriverError::Invalid(format!(
                    "step {name}: two tasks share the status {}",
                    t.status_uri
                )));
            }
        }
        Ok(Step {
            name: name.to_string(),
            stage,
            tasks,
        })
    }
}

/// URI of the manifest of `step` (with an optional suffix such as `attempt-2`) under `output`.
pub fn manifest_uri(output: &str, step: &str, suffix: Option<&str>) -> String {
    let name = match suffix {
        Some(s) => format!("tasks/{step}.{s}.jsonl"),
        None => format!("tasks/{step}.jsonl"),
    };
    cloud::uri::join(output, &name)
}

/// Writes `tasks` as a manifest at `uri` (atomically; [`cloud::task::manifest_text`]).
pub fn write_manifest<'a>(
    store: &Store,
    uri: &str,
    tasks: impl IntoIterator<Item = &'a TaskSpec>,
) -> Result<(), DriverError> {
    let text = cloud::task::manifest_text(tasks.into_iter().map(|t| &t.task))
        .map_err(|e| DriverError::encode(format!("manifest {uri}"), e))?;
    store.put(uri, Bytes::from(text))?;
    Ok(())
}

/// The reference an invocation carries (`force`: run even if finished unchanged).
pub fn manifest_ref(manifest: &str, index: usize, force: bool) -> Value {
    serde_json::to_value(cloud::task::ManifestRef {
        manifest: manifest.to_string(),
        index,
        force,
    })
    .unwrap_or(Value::Null)
}

/// The task's status object, if any (a missing or unreadable status is `None`).
pub fn read_status(store: &Store, status_uri: &str) -> Option<TaskStatus> {
    store.get_json::<TaskStatus>(status_uri).ok()
}

/// The status of a task that is done: its status says ok and every output it lists exists.
pub use cloud::entry::finished_status;

/// [`finished_status`] of every task of a step, read concurrently.
pub fn finished_statuses(store: &Store, tasks: &[TaskSpec]) -> Vec<Option<TaskStatus>> {
    tasks
        .par_iter()
        .map(|t| finished_status(store, &t.status_uri))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use water::WaterStage;

    fn water_params(dtm: &str, out: &str) -> water::Params {
        serde_json::from_value(serde_json::json!({
            "dtm": dtm, "stations": "st.csv", "date": "2022-05-15", "out": out
        }))
        .unwrap()
    }

    #[test]
    fn typed_tasks_round_trip_through_a_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().to_str().unwrap();
        let store = Store::from_env();
        let tasks: Vec<TaskSpec> = ["a", "b"]
            .iter()
            .map(|n| {
                TaskSpec::new::<WaterStage>(&format!("tile-{n}"), &water_params(n, out)).unwrap()
            })
            .collect();
        assert_eq!(tasks[0].status_uri, format!("{out}/status/tile-a.json"));
        let step = Step::new("tiles", StageKind::Water, tasks).unwrap();
        let uri = manifest_uri(out, &step.name, None);
        write_manifest(&store, &uri, &step.tasks).unwrap();
        // What an invocation resolves is exactly the typed task.
        let resolved = cloud::entry::resolve_task(&store, manifest_ref(&uri, 1, false)).unwrap();
        let task = cloud::entry::parse_task::<WaterStage>(resolved).unwrap();
        assert_eq!(task.id, "tile-b");
        assert_eq!(task.params, water_params("b", out));
        // No status yet: nothing is finished.
        assert!(
            finished_statuses(&store, &step.tasks)
                .iter()
                .all(Option::is_none)
        );
    }

    #[test]
    fn bad_ids_and_duplicate_ids_are_refused() {
        let p = water_params("a", "/tmp/x");
        assert!(TaskSpec::new::<WaterStage>("../x", &p).is_err());
        let t = TaskSpec::new::<WaterStage>("t", &p).unwrap();
        let e = Step::new("s", StageKind::Water, vec![t.clone(), t]).unwrap_err();
        assert!(e.to_string().contains("share the id"), "{e}");
        // Same id under another output root: still one id in one manifest.
        let q = water_params("a", "/tmp/y");
        let (a, b) = (
            TaskSpec::new::<WaterStage>("t", &p).unwrap(),
            TaskSpec::new::<WaterStage>("t", &q).unwrap(),
        );
        assert!(Step::new("s", StageKind::Water, vec![a, b]).is_err());
    }
}
