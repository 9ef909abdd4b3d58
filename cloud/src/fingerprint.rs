//! Task fingerprints: what a finished task was computed from, so that a resumed run skips a
//! task only when nothing it depends on has changed.
//!
//! A fingerprint hashes (SHA-256) the stage name, the stage's algorithm version
//! ([`crate::Stage::VERSION`]), the task's parameters as canonical JSON (object keys sorted,
//! as `serde_json` writes them) and the identity of each input object ([`ObjectInfo`]: size
//! and ETag on S3/HTTP, size and modification time locally). The status of a finished task
//! records it; [`skip_decision`] compares it with the one a new run computes and says why a
//! task must run again ([`Rerun`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::task::{TaskState, TaskStatus};
use crate::{ObjectInfo, Store};

/// One input of a task and the version of it the task read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputIdentity {
    pub uri: String,
    #[serde(flatten)]
    pub info: ObjectInfo,
}

/// What a task's result depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// SHA-256 (hex) of everything below: equal hashes mean nothing changed.
    pub hash: String,
    /// The stage's algorithm version.
    pub version: u32,
    /// SHA-256 (hex) of the parameters' canonical JSON.
    pub params: String,
    /// Every input, in the order the stage lists them.
    pub inputs: Vec<InputIdentity>,
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Fingerprint {
    /// The fingerprint of a task of stage `stage` at `version` with parameters `params`
    /// (any serialisable value) and inputs `inputs`.
    pub fn new<P: Serialize>(
        stage: &str,
        version: u32,
        params: &P,
        inputs: Vec<InputIdentity>,
    ) -> Result<Fingerprint, serde_json::Error> {
        // Through `Value`: its maps are sorted by key, so equal parameters give equal text
        // whatever order a struct or a hand-written task lists them in.
        let canonical = serde_json::to_string(&serde_json::to_value(params)?)?;
        let params_hash = hex(&Sha256::digest(canonical.as_bytes()));
        let mut h = Sha256::new();
        h.update(b"geobutton-fingerprint-1\0");
        h.update(stage.as_bytes());
        h.update(b"\0");
        h.update(version.to_le_bytes());
        h.update(params_hash.as_bytes());
        for i in &inputs {
            h.update(b"\0");
            h.update(serde_json::to_string(i)?.as_bytes());
        }
        Ok(Fingerprint {
            hash: hex(&h.finalize()),
            version,
            params: params_hash,
            inputs,
        })
    }

    /// Why `self` (now) differs from `previous` (recorded), or `None` when they are equal.
    pub fn change_from(&self, previous: &Fingerprint) -> Option<Rerun> {
        if self.hash == previous.hash {
            return None;
        }
        if self.version != previous.version {
            return Some(Rerun::VersionChanged {
                was: previous.version,
                now: self.version,
            });
        }
        if self.params != previous.params {
            return Some(Rerun::ParamsChanged);
        }
        let before: HashMap<&str, &ObjectInfo> = previous
            .inputs
            .iter()
            .map(|i| (i.uri.as_str(), &i.info))
            .collect();
        for i in &self.inputs {
            match before.get(i.uri.as_str()) {
                Some(info) if **info == i.info => {}
                _ => return Some(Rerun::InputChanged(i.uri.clone())),
            }
        }
        Some(Rerun::InputsChanged)
    }
}

/// Why a task runs (again) rather than being skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", content = "detail", rename_all = "snake_case")]
pub enum Rerun {
    /// No earlier status.
    New,
    /// `--force`.
    Forced,
    /// The earlier attempt failed.
    PreviousFailed,
    /// An output the earlier run listed is gone.
    OutputMissing(String),
    /// The earlier status has no fingerprint (written by an older geobutton).
    NoFingerprint,
    /// The stage's algorithms changed.
    VersionChanged { was: u32, now: u32 },
    /// The parameters changed.
    ParamsChanged,
    /// This input changed (size, ETag or modification time) or is new.
    InputChanged(String),
    /// The set of inputs changed.
    InputsChanged,
}

impl Rerun {
    /// A short reason, the same for every task it applies to (for summaries: "4 rerun:
    /// parameters changed").
    pub fn summary(&self) -> &'static str {
        match self {
            Rerun::New => "new",
            Rerun::Forced => "forced",
            Rerun::PreviousFailed => "failed before",
            Rerun::OutputMissing(_) => "output missing",
            Rerun::NoFingerprint => "no fingerprint recorded",
            Rerun::VersionChanged { .. } => "algorithm version changed",
            Rerun::ParamsChanged => "parameters changed",
            Rerun::InputChanged(_) | Rerun::InputsChanged => "input changed",
        }
    }
}

impl fmt::Display for Rerun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rerun::OutputMissing(u) => write!(f, "output missing: {u}"),
            Rerun::VersionChanged { was, now } => {
                write!(f, "algorithm version changed ({was} -> {now})")
            }
            Rerun::InputChanged(u) => write!(f, "input changed: {u}"),
            other => f.write_str(other.summary()),
        }
    }
}

/// Whether a task whose previous status is `previous` and whose fingerprint is now `now`
/// may be skipped: `Ok(())` when the status says ok, every output it lists exists and the
/// fingerprints are equal; otherwise why it must run.
pub fn skip_decision(
    store: &Store,
    previous: Option<&TaskStatus>,
    now: &Fingerprint,
) -> Result<(), Rerun> {
    let Some(previous) = previous else {
        return Err(Rerun::New);
    };
    if previous.state != TaskState::Ok {
        return Err(Rerun::PreviousFailed);
    }
    let Some(recorded) = &previous.fingerprint else {
        return Err(Rerun::NoFingerprint);
    };
    if let Some(change) = now.change_from(recorded) {
        return Err(change);
    }
    for out in &previous.outputs {
        if !store.exists(out).unwrap_or(false) {
            return Err(Rerun::OutputMissing(out.clone()));
        }
    }
    Ok(())
}

/// Input identities looked up once per URI: a plan of many tasks over few inputs (the
/// windows of one Sentinel-2 tile) heads each input once.
#[derive(Debug, Default)]
pub struct InfoCache {
    seen: Mutex<HashMap<String, ObjectInfo>>,
}

impl InfoCache {
    pub fn new() -> InfoCache {
        InfoCache::default()
    }

    /// The identity of `uri`, from the cache or a `head`.
    pub fn info(&self, store: &Store, uri: &str) -> Result<ObjectInfo, StoreError> {
        if let Ok(seen) = self.seen.lock()
            && let Some(i) = seen.get(uri)
        {
            return Ok(i.clone());
        }
        let info = store.info(uri)?;
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(uri.to_string(), info.clone());
        }
        Ok(info)
    }

    /// The identities of `uris`, in order.
    pub fn identities(
        &self,
        store: &Store,
        uris: &[String],
    ) -> Result<Vec<InputIdentity>, StoreError> {
        uris.iter()
            .map(|u| {
                Ok(InputIdentity {
                    uri: u.clone(),
                    info: self.info(store, u)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn input(uri: &str, size: u64, etag: &str) -> InputIdentity {
        InputIdentity {
            uri: uri.into(),
            info: ObjectInfo {
                size,
                etag: Some(etag.into()),
                modified_ns: None,
            },
        }
    }

    #[test]
    fn equal_parameters_hash_equal_whatever_their_key_order() {
        let a = serde_json::json!({"resolution": 1.0, "input": "a.laz"});
        let b: serde_json::Value =
            serde_json::from_str(r#"{"input": "a.laz", "resolution": 1.0}"#).unwrap();
        let fa = Fingerprint::new("terrain", 1, &a, vec![input("a.laz", 10, "x")]).unwrap();
        let fb = Fingerprint::new("terrain", 1, &b, vec![input("a.laz", 10, "x")]).unwrap();
        assert_eq!(fa, fb);
        assert_eq!(fa.change_from(&fb), None);
    }

    #[test]
    fn each_kind_of_change_is_named() {
        let p = serde_json::json!({"resolution": 1.0});
        let base = Fingerprint::new("terrain", 1, &p, vec![input("a", 10, "x")]).unwrap();
        let version = Fingerprint::new("terrain", 2, &p, vec![input("a", 10, "x")]).unwrap();
        assert_eq!(
            version.change_from(&base),
            Some(Rerun::VersionChanged { was: 1, now: 2 })
        );
        let params = Fingerprint::new(
            "terrain",
            1,
            &serde_json::json!({"resolution": 5.0}),
            vec![input("a", 10, "x")],
        )
        .unwrap();
        assert_eq!(params.change_from(&base), Some(Rerun::ParamsChanged));
        assert_eq!(
            params.change_from(&base).unwrap().summary(),
            "parameters changed"
        );
        let etag = Fingerprint::new("terrain", 1, &p, vec![input("a", 10, "y")]).unwrap();
        assert_eq!(
            etag.change_from(&base),
            Some(Rerun::InputChanged("a".into()))
        );
        let size = Fingerprint::new("terrain", 1, &p, vec![input("a", 11, "x")]).unwrap();
        assert_eq!(
            size.change_from(&base),
            Some(Rerun::InputChanged("a".into()))
        );
        let fewer = Fingerprint::new("terrain", 1, &p, vec![]).unwrap();
        assert_eq!(fewer.change_from(&base), Some(Rerun::InputsChanged));
        let other_stage = Fingerprint::new("water", 1, &p, vec![input("a", 10, "x")]).unwrap();
        assert!(other_stage.change_from(&base).is_some());
    }
}
