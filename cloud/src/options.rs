//! [`StoreOptions`]: how a [`crate::Store`] reaches its backends (endpoint, region, signing,
//! range coalescing, part sizes, retries, timeouts), from code or the environment.

use std::time::Duration;

use crate::retry::RetryPolicy;

/// Settings of a [`crate::Store`]. [`StoreOptions::from_env`] reads them from the environment.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// S3-compatible endpoint (e.g. `http://127.0.0.1:5000`); path-style addressing is used
    /// with it. `None` reads `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, else AWS itself.
    pub endpoint: Option<String>,
    /// AWS region; `None` uses the standard chain, falling back to `us-east-1`.
    pub region: Option<String>,
    /// Send every S3 request unsigned (anonymous access to public buckets).
    pub no_sign_request: bool,
    /// Buckets always read anonymously (public open-data buckets), default `sentinel-cogs`.
    pub anonymous_buckets: Vec<String>,
    /// Add `x-amz-request-payer: requester` to S3 requests.
    pub requester_pays: bool,
    /// Fixed S3 credentials `(access key id, secret access key)` instead of the standard
    /// chain (environment, profile, SSO, container/instance roles).
    pub static_credentials: Option<(String, String)>,
    /// Ranges whose gap is at most this many bytes are fetched in one request.
    pub coalesce_gap: u64,
    /// Upper bound of one merged range request, in bytes.
    pub max_request: u64,
    /// Requests in flight at once for `get_ranges` and multipart uploads.
    pub concurrency: usize,
    /// Part size of multipart uploads (at least 5 MiB); smaller objects use one PUT.
    pub part_size: usize,
    /// Retries of throttled and transient failures, per request (the S3 SDK's and the
    /// HTTP client's own loop).
    pub retry: RetryPolicy,
    /// Throttling is not failure: a request still throttled after `retry` (S3 `SlowDown`,
    /// HTTP 503/429) waits `throttle.backoff(n)` (jittered, growing to a minute) and goes
    /// again, up to `throttle.max_attempts` rounds and never past the task's deadline; each
    /// wait is counted in [`crate::StoreStats::throttled`]. Whole-object and ranged reads, heads,
    /// listings and deletes wait; a streamed upload cannot be replayed and fails instead.
    pub throttle: RetryPolicy,
    /// TCP connect timeout for remote stores.
    pub connect_timeout: Duration,
    /// Time without receiving data after which a remote read fails (and may be retried).
    pub read_timeout: Duration,
    /// Overall limit of one remote request attempt, body included: a server that trickles
    /// bytes slower than `read_timeout` cannot hold a read open past it.
    pub request_deadline: Duration,
    /// Largest object a whole-object `get` reads (bytes); larger ones, and bodies that go on
    /// past it, are [`crate::StoreError::TooLarge`].
    pub max_get_bytes: u64,
}

/// Minimum S3 multipart part size.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            endpoint: None,
            region: None,
            no_sign_request: false,
            anonymous_buckets: vec!["sentinel-cogs".to_string()],
            requester_pays: false,
            static_credentials: None,
            coalesce_gap: 1024 * 1024,
            max_request: 16 * 1024 * 1024,
            concurrency: 8,
            part_size: 8 * 1024 * 1024,
            retry: RetryPolicy::default(),
            // 1, 2, 4, … 60 s: about five minutes in all.
            throttle: RetryPolicy {
                max_attempts: 10,
                initial_backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(60),
            },
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
            request_deadline: Duration::from_secs(300),
            max_get_bytes: 8 << 30,
        }
    }
}

impl StoreOptions {
    /// Defaults plus `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL`, `AWS_REGION`, unsigned
    /// requests (`AWS_NO_SIGN_REQUEST=YES`, GDAL's name, or `GEOBUTTON_NO_SIGN_REQUEST=1`)
    /// and requester pays (`AWS_REQUEST_PAYER=requester`, GDAL's name, or
    /// `GEOBUTTON_REQUESTER_PAYS=1`). A value these variables cannot take is logged and
    /// ignored; [`StoreOptions::try_from_env`] refuses it instead.
    pub fn from_env() -> Self {
        Self::try_from_env().unwrap_or_else(|problem| {
            tracing::warn!("{problem}; ignored");
            Self::from_vars(|k| std::env::var(k).ok(), true)
                .unwrap_or_else(|_| StoreOptions::default())
        })
    }

    /// [`StoreOptions::from_env`], refusing a value the variables cannot take (e.g.
    /// `AWS_REQUEST_PAYER=bucket-owner`) with a message naming the variable.
    pub fn try_from_env() -> Result<Self, String> {
        Self::from_vars(|k| std::env::var(k).ok(), false)
    }

    /// Whether requests to `bucket` go unsigned (everything with `no_sign_request`, else the
    /// public buckets of `anonymous_buckets`): the bucket's owner pays for them.
    pub fn is_anonymous(&self, bucket: &str) -> bool {
        self.no_sign_request || self.anonymous_buckets.iter().any(|b| b == bucket)
    }

    /// The options from the variables `var` gives; `lenient` ignores invalid values.
    fn from_vars(var: impl Fn(&str) -> Option<String>, lenient: bool) -> Result<Self, String> {
        let var = |k: &str| {
            var(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let check = |r: Result<bool, String>| match r {
            Err(_) if lenient => Ok(false),
            other => other,
        };
        // Ours: 1/true/0/false. GDAL's AWS_NO_SIGN_REQUEST: YES/NO, TRUE/FALSE, ON/OFF, 1/0.
        let boolean = |k: &str| -> Result<bool, String> {
            match var(k).map(|v| v.to_ascii_lowercase()).as_deref() {
                None => Ok(false),
                Some("1" | "true" | "yes" | "on") => Ok(true),
                Some("0" | "false" | "no" | "off") => Ok(false),
                Some(other) => Err(format!(
                    "{k}={other:?}: expected YES or NO (also TRUE/FALSE, ON/OFF, 1/0)"
                )),
            }
        };
        // GDAL passes AWS_REQUEST_PAYER as the x-amz-request-payer header, whose one value
        // is `requester`.
        let payer = || -> Result<bool, String> {
            match var("AWS_REQUEST_PAYER") {
                None => Ok(false),
                Some(v) if v.eq_ignore_ascii_case("requester") => Ok(true),
                Some(v) => Err(format!(
                    "AWS_REQUEST_PAYER={v:?}: the only value S3 takes is `requester`"
                )),
            }
        };
        Ok(StoreOptions {
            endpoint: var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL")),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            no_sign_request: check(boolean("GEOBUTTON_NO_SIGN_REQUEST"))?
                | check(boolean("AWS_NO_SIGN_REQUEST"))?,
            requester_pays: check(boolean("GEOBUTTON_REQUESTER_PAYS"))? | check(payer())?,
            ..StoreOptions::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)], lenient: bool) -> Result<StoreOptions, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        StoreOptions::from_vars(
            |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            lenient,
        )
    }

    #[test]
    fn gdal_and_geobutton_variable_names() {
        let o = from(&[], false).unwrap();
        assert!(!o.no_sign_request && !o.requester_pays);
        for yes in ["YES", "yes", "TRUE", "On", "1"] {
            let o = from(&[("AWS_NO_SIGN_REQUEST", yes)], false).unwrap();
            assert!(o.no_sign_request, "{yes}");
        }
        for no in ["NO", "false", "OFF", "0", ""] {
            let o = from(&[("AWS_NO_SIGN_REQUEST", no)], false).unwrap();
            assert!(!o.no_sign_request, "{no}");
        }
        assert!(
            from(&[("GEOBUTTON_NO_SIGN_REQUEST", "1")], false)
                .unwrap()
                .no_sign_request
        );
        let o = from(&[("AWS_REQUEST_PAYER", "requester")], false).unwrap();
        assert!(o.requester_pays);
        let o = from(&[("AWS_REQUEST_PAYER", "Requester")], false).unwrap();
        assert!(o.requester_pays);
        assert!(
            from(&[("GEOBUTTON_REQUESTER_PAYS", "true")], false)
                .unwrap()
                .requester_pays
        );
        let o = from(
            &[
                ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9"),
                ("AWS_DEFAULT_REGION", "eu-south-2"),
            ],
            false,
        )
        .unwrap();
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(o.region.as_deref(), Some("eu-south-2"));
    }

    #[test]
    fn values_the_variables_cannot_take_are_refused_by_name() {
        let e = from(&[("AWS_REQUEST_PAYER", "bucket-owner")], false).unwrap_err();
        assert!(
            e.contains("AWS_REQUEST_PAYER") && e.contains("requester"),
            "{e}"
        );
        let e = from(&[("AWS_NO_SIGN_REQUEST", "maybe")], false).unwrap_err();
        assert!(e.contains("AWS_NO_SIGN_REQUEST=\"maybe\""), "{e}");
        // Leniently, a bad value counts as unset and the others still apply.
        let o = from(
            &[
                ("AWS_NO_SIGN_REQUEST", "maybe"),
                ("AWS_REQUEST_PAYER", "requester"),
            ],
            true,
        )
        .unwrap();
        assert!(!o.no_sign_request && o.requester_pays);
    }
}
