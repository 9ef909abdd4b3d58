//! The `copy` stage behind the `cloud` binary (object copies between any two locations) and
//! the self-check of a storage location.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::entry::{Ctx, Stage};
use crate::store::Store;
use crate::task::{ErrorKind, TaskError};
use crate::uri;

/// Parameters of a `copy` task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyParams {
    /// Source URI.
    pub src: String,
    /// Destination URI (written atomically).
    pub dst: String,
}

/// Result of a `copy` task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyOutput {
    pub dst: String,
    /// Bytes copied.
    pub bytes: u64,
}

/// Copies one object; the stage behind the `cloud` binary.
pub struct CopyStage;

impl Stage for CopyStage {
    const NAME: &'static str = "cloud";
    const VERSION: u32 = 1;
    type Params = CopyParams;
    type Output = CopyOutput;

    fn status_root(params: &CopyParams) -> String {
        uri::parent(&params.dst)
    }

    fn validate(params: &CopyParams) -> Result<(), TaskError> {
        crate::validate::distinct_outputs(&[params.src.as_str()], &[params.dst.as_str()])
    }

    fn input_uris(params: &CopyParams) -> Vec<String> {
        vec![params.src.clone()]
    }

    fn run(params: &CopyParams, ctx: &Ctx) -> Result<CopyOutput, TaskError> {
        let data = ctx.store.get(&params.src)?;
        let bytes = data.len() as u64;
        ctx.store.put(&params.dst, data)?;
        Ok(CopyOutput {
            dst: params.dst.clone(),
            bytes,
        })
    }

    fn output_uris(output: &CopyOutput) -> Vec<String> {
        vec![output.dst.clone()]
    }
}

/// Exercises put, head, get, get_ranges, list and delete at `at` (or a new temporary local
/// directory) and returns a one-paragraph report; any mismatch is an error.
pub fn selfcheck(store: &Store, at: Option<&str>) -> Result<String, TaskError> {
    let tmp;
    let root = match at {
        Some(r) => r.to_string(),
        None => {
            tmp = std::env::temp_dir().join(format!("geobutton-selfcheck-{}", std::process::id()));
            tmp.display().to_string()
        }
    };
    let fail =
        |what: String| TaskError::new(ErrorKind::Internal, format!("selfcheck at {root}: {what}"));
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let obj = uri::join(&root, "selfcheck/object.bin");
    let before = store.stats();
    store.put(&obj, Bytes::from(data.clone()))?;
    let size = store.head(&obj)?;
    if size != data.len() as u64 {
        return Err(fail(format!(
            "head says {size} bytes, wrote {}",
            data.len()
        )));
    }
    if store.get(&obj)?.as_ref() != data.as_slice() {
        return Err(fail("get returned different bytes".into()));
    }
    let ranges = [0..10u64, 1_000_000..1_000_100, 2_999_990..3_000_000, 20..30];
    let got = store.get_ranges(&obj, &ranges)?;
    for (r, b) in ranges.iter().zip(&got) {
        if b.as_ref() != &data[r.start as usize..r.end as usize] {
            return Err(fail(format!("range {r:?} returned different bytes")));
        }
    }
    match store.get_range(&obj, 2_999_990..3_000_010) {
        Err(crate::StoreError::RangePastEnd { .. }) => {}
        other => return Err(fail(format!("a range past the end gave {other:?}"))),
    }
    let listed = store.list(&uri::join(&root, "selfcheck/"))?;
    if !listed
        .iter()
        .any(|o| o.uri.ends_with("selfcheck/object.bin") && o.size == size)
    {
        return Err(fail(format!("list did not show the object: {listed:?}")));
    }
    store.delete(&obj)?;
    if store.exists(&obj)? {
        return Err(fail("the object still exists after delete".into()));
    }
    if at.is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }
    let after = store.stats();
    Ok(format!(
        "selfcheck ok at {root}: put/head/get/get_ranges/list/delete of a {size}-byte object; \
         {} requests, {} bytes read, {} bytes written",
        after.requests - before.requests,
        after.bytes_read - before.bytes_read,
        after.bytes_written - before.bytes_written
    ))
}
