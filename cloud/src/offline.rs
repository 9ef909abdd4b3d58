//! Stand-ins for the S3 and HTTP backends when `cloud` is built without its `remote`
//! feature (e.g. for fuzzing the raster parsers): every remote operation is
//! [`StoreError::Unsupported`]; local files work as usual.

use std::io::Read;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use crate::backend::{Backend, ObjectInfo, ObjectMeta, Shared};
use crate::error::{Op, StoreError};

const REASON: &str = "this build of geobutton has no remote storage (the `remote` feature is off)";

fn unsupported<T>(op: Op, uri: &str) -> Result<T, StoreError> {
    Err(StoreError::Unsupported {
        op,
        uri: uri.to_string(),
        reason: REASON,
    })
}

/// A remote location in a build without remote storage.
pub(crate) struct Offline {
    /// An `s3://` location (which has a bucket region to ask for), not an HTTP one.
    pub(crate) s3: bool,
}

impl Backend for Offline {
    fn head(&self, _: &Arc<Shared>, uri: &str) -> Result<ObjectInfo, StoreError> {
        unsupported(Op::Head, uri)
    }
    fn get(&self, _: &Arc<Shared>, uri: &str, _: u64) -> Result<Bytes, StoreError> {
        unsupported(Op::Get, uri)
    }
    fn get_ranges(
        &self,
        _: &Arc<Shared>,
        uri: &str,
        _: &[Range<u64>],
    ) -> Result<Vec<Bytes>, StoreError> {
        unsupported(Op::GetRange, uri)
    }
    fn put_reader(&self, _: &Arc<Shared>, uri: &str, _: &mut dyn Read) -> Result<u64, StoreError> {
        unsupported(Op::Put, uri)
    }
    fn list(&self, _: &Arc<Shared>, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        unsupported(Op::List, prefix)
    }
    fn delete(&self, _: &Arc<Shared>, uri: &str) -> Result<(), StoreError> {
        unsupported(Op::Delete, uri)
    }
    fn bucket_region(&self, _: &Arc<Shared>, uri: &str) -> Result<Option<String>, StoreError> {
        if self.s3 {
            unsupported(Op::Head, uri)
        } else {
            Ok(None)
        }
    }
}

pub(crate) mod s3 {
    /// No S3 clients to keep.
    #[derive(Default)]
    pub(crate) struct Clients;
}

pub(crate) mod http {
    use crate::options::StoreOptions;

    /// No HTTP client to keep.
    #[derive(Clone)]
    pub(crate) struct Client;

    impl Client {
        pub(crate) fn new(_: &StoreOptions) -> Self {
            Client
        }
    }
}
