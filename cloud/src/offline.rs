//! Stand-ins for the S3 and HTTP backends when `cloud` is built without its `remote`
//! feature (e.g. for fuzzing the raster parsers): every remote operation is
//! [`StoreError::Unsupported`]; local files work as usual.

use crate::error::{Op, StoreError};

const REASON: &str = "this build of geobutton has no remote storage (the `remote` feature is off)";

fn unsupported<T>(op: Op, uri: &str) -> Result<T, StoreError> {
    Err(StoreError::Unsupported {
        op,
        uri: uri.to_string(),
        reason: REASON,
    })
}

pub(crate) mod s3 {
    use std::io::Read;
    use std::ops::Range;

    use bytes::Bytes;

    use super::unsupported;
    use crate::error::{Op, StoreError};
    use crate::store::{Inner, ObjectInfo, ObjectMeta};

    #[derive(Default)]
    pub(crate) struct Clients;

    pub(crate) async fn head(
        _: &Inner,
        uri: &str,
        _: &str,
        _: &str,
    ) -> Result<ObjectInfo, StoreError> {
        unsupported(Op::Head, uri)
    }
    pub(crate) async fn get(
        _: &Inner,
        uri: &str,
        _: &str,
        _: &str,
        _: Option<Range<u64>>,
        _: Option<u64>,
    ) -> Result<Bytes, StoreError> {
        unsupported(Op::Get, uri)
    }
    pub(crate) async fn get_ranges(
        _: &Inner,
        uri: &str,
        _: &str,
        _: &str,
        _: Vec<Range<u64>>,
    ) -> Result<Vec<Bytes>, StoreError> {
        unsupported(Op::GetRange, uri)
    }
    pub(crate) async fn list(
        _: &Inner,
        uri: &str,
        _: &str,
        _: &str,
    ) -> Result<Vec<ObjectMeta>, StoreError> {
        unsupported(Op::List, uri)
    }
    pub(crate) async fn delete(_: &Inner, uri: &str, _: &str, _: &str) -> Result<(), StoreError> {
        unsupported(Op::Delete, uri)
    }
    pub(crate) async fn bucket_region(_: &Inner, bucket: &str) -> Result<String, StoreError> {
        unsupported(Op::Head, &format!("s3://{bucket}"))
    }
    pub(crate) fn put_reader(
        _: &std::sync::Arc<Inner>,
        uri: &str,
        _: &str,
        _: &str,
        _: impl Read,
    ) -> Result<u64, StoreError> {
        unsupported(Op::Put, uri)
    }
}

pub(crate) mod http {
    use std::ops::Range;

    use bytes::Bytes;

    use super::unsupported;
    use crate::error::{Op, StoreError};
    use crate::store::{Inner, ObjectInfo, StoreOptions};

    #[derive(Clone)]
    pub(crate) struct Client;

    impl Client {
        pub(crate) fn new(_: &StoreOptions) -> Self {
            Client
        }
        pub(crate) async fn head(&self, _: &Inner, url: &str) -> Result<ObjectInfo, StoreError> {
            unsupported(Op::Head, url)
        }
        pub(crate) async fn get(
            &self,
            _: &Inner,
            url: &str,
            _: Option<Range<u64>>,
            _: Option<u64>,
        ) -> Result<Bytes, StoreError> {
            unsupported(Op::Get, url)
        }
    }

    pub(crate) async fn get_ranges(
        _: &Inner,
        url: &str,
        _: Vec<Range<u64>>,
    ) -> Result<Vec<Bytes>, StoreError> {
        unsupported(Op::GetRange, url)
    }
}
