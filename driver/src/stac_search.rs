//! A STAC API client for searches: `POST {api}/search` and its `next` pages, bounded in pages,
//! bytes and time. What to ask and how to choose among the answers is `ndvi::search`'s.

use std::time::Duration;

use serde_json::Value;

use crate::error::DriverError;

/// Most pages followed for one search.
pub const MAX_PAGES: usize = 100;
/// Largest answer read, bytes.
pub const MAX_ANSWER_BYTES: usize = 64 << 20;
/// Longest time one search may take, pages included.
pub const SEARCH_DEADLINE: Duration = Duration::from_secs(300);

fn failed(url: &str, reason: impl std::fmt::Display) -> DriverError {
    DriverError::Invalid(format!("STAC search {url}: {reason}"))
}

/// Every feature of the search `body` at the STAC API rooted at `api`, following `next`
/// links (POST with their body, or GET) up to [`MAX_PAGES`] pages and [`SEARCH_DEADLINE`].
pub fn search(api: &str, body: &Value) -> Result<Vec<Value>, DriverError> {
    let url = format!("{}/search", api.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| failed(&url, e))?;
    let body = body.clone();
    cloud::runtime::block_on(async move {
        // One deadline for the whole search: every wait below ends at it.
        let deadline = tokio::time::Instant::now() + SEARCH_DEADLINE;
        let mut features = Vec::new();
        let mut request = ("POST".to_string(), url.clone(), Some(body));
        for page in 1..=MAX_PAGES {
            let (method, href, page_body) = request;
            let send = match &page_body {
                Some(b) => client
                    .post(&href)
                    .header("content-type", "application/json")
                    .header("accept", "application/geo+json, application/json")
                    .body(b.to_string()),
                None => client.get(&href),
            };
            let mut resp = tokio::time::timeout_at(deadline, send.send())
                .await
                .map_err(|_| failed(&href, "the search took too long"))?
                .map_err(|e| failed(&href, e))?;
            let status = resp.status();
            if resp
                .content_length()
                .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
            {
                return Err(failed(&href, "the answer is larger than 64 MiB"));
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = tokio::time::timeout_at(deadline, resp.chunk())
                .await
                .map_err(|_| failed(&href, "the search took too long"))?
                .map_err(|e| failed(&href, e))?
            {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_ANSWER_BYTES {
                    return Err(failed(&href, "the answer is larger than 64 MiB"));
                }
            }
            if !status.is_success() {
                let text = String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).to_string();
                return Err(failed(&href, format!("{method} answered {status}: {text}")));
            }
            let answer: Value = serde_json::from_slice(&bytes)
                .map_err(|e| failed(&href, format!("the answer is not JSON: {e}")))?;
            let Some(page_features) = answer["features"].as_array() else {
                return Err(failed(
                    &href,
                    "the answer has no features (not a FeatureCollection)",
                ));
            };
            features.extend(page_features.iter().cloned());
            let previous = page_body.unwrap_or(Value::Null);
            match ndvi::search::next_page(&answer, &previous) {
                // An empty page ends the search too (some APIs link past the last one).
                Some(next) if !page_features.is_empty() => request = next,
                _ => return Ok(features),
            }
            if page == MAX_PAGES {
                return Err(failed(
                    &href,
                    format!("more than {MAX_PAGES} pages: narrow the area or the periods"),
                ));
            }
        }
        Ok(features)
    })
}
