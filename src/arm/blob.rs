//! A minimal Azure Blob Storage client for snapshot uploads through a SAS URL:
//! Put Blob, Put Block + Put Block List, synchronous server-side copy and
//! Set Blob Metadata, each retried on throttling and transient failures.
//!
//! Only what code upload needs; the SAS (which is a secret) is never logged or
//! put in an error message: URLs are shown without their query.

use reqwest::{Method, StatusCode, Url};
use std::time::Duration;

/// The storage REST version we speak (supported by Azure and Azurite).
const STORAGE_VERSION: &str = "2021-08-06";

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("invalid SAS URL for the upload container")]
    BadSasUrl,
    #[error("blob storage answered {status} for {operation} {blob}: {message}")]
    Status {
        operation: &'static str,
        blob: String,
        status: u16,
        message: String,
    },
    #[error("blob storage unreachable during {operation} {blob}: {message}")]
    Transport {
        operation: &'static str,
        blob: String,
        message: String,
    },
}

impl BlobError {
    /// The server refused the copy source (e.g. the SAS can't read it): upload instead.
    pub fn is_copy_refused(&self) -> bool {
        matches!(self, BlobError::Status { status, .. } if (400..500).contains(status))
    }
}

/// How hard to retry; tests shorten the delays with `AZML_RETRY_BASE_MS`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Defaults, with `AZML_RETRY_BASE_MS` (shared with the ARM client) for the first delay.
    pub fn from_env() -> Self {
        let base_ms = std::env::var("AZML_RETRY_BASE_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(500);
        RetryPolicy {
            attempts: 6,
            base: Duration::from_millis(base_ms),
            max_delay: Duration::from_secs(30),
        }
    }

    fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(16));
        let capped = exp.min(self.max_delay);
        let jitter = rand::random::<f64>() * 0.5 + 0.75;
        capped.mul_f64(jitter)
    }
}

/// A container (or folder in one) reached with a SAS URL.
#[derive(Debug, Clone)]
pub struct BlobFolder {
    http: reqwest::Client,
    /// Base URL without query: `https://acct.blob…/container/prefix`.
    base: Url,
    /// The SAS query string (secret).
    sas: String,
    retry: RetryPolicy,
}

impl BlobFolder {
    /// `sas_uri` is `…/container[/prefix]?<sas>` as startPendingUpload returns it.
    pub fn new(
        http: reqwest::Client,
        sas_uri: &str,
        retry: RetryPolicy,
    ) -> Result<Self, BlobError> {
        let mut base = Url::parse(sas_uri).map_err(|_| BlobError::BadSasUrl)?;
        let sas = base.query().unwrap_or_default().to_string();
        base.set_query(None);
        if base.cannot_be_a_base() {
            return Err(BlobError::BadSasUrl);
        }
        Ok(BlobFolder {
            http,
            base,
            sas,
            retry,
        })
    }

    /// Another folder reached with the same SAS (an earlier upload in the same
    /// container, as a copy source). None when `url` is not a URL.
    pub fn sibling(&self, url: &str) -> Option<BlobFolder> {
        let mut base = Url::parse(url).ok()?;
        base.set_query(None);
        Some(BlobFolder {
            http: self.http.clone(),
            base,
            sas: self.sas.clone(),
            retry: self.retry,
        })
    }

    /// The folder's URL without SAS (what `codeUri` records).
    pub fn url_without_sas(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    /// URL of `rel` (a `/`-separated relative path) inside the folder, with SAS.
    fn blob_url(&self, rel: &str, extra_query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            segments.extend(rel.split('/'));
        }
        let mut query = self.sas.clone();
        for (k, v) in extra_query {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(&format!("{k}={v}"));
        }
        url.set_query(if query.is_empty() { None } else { Some(&query) });
        url
    }

    /// Readable URL of a blob in this folder, for another folder's server-side copy.
    pub fn source_url(&self, rel: &str) -> String {
        self.blob_url(rel, &[]).to_string()
    }

    /// Put Blob: the whole file in one request.
    pub async fn put_blob(&self, rel: &str, body: Vec<u8>) -> Result<(), BlobError> {
        let url = self.blob_url(rel, &[]);
        self.send(
            "Put Blob",
            rel,
            Method::PUT,
            url,
            Some(body),
            &[("x-ms-blob-type", "BlockBlob")],
        )
        .await
    }

    /// Put Block: one staged block of a large file.
    pub async fn put_block(
        &self,
        rel: &str,
        block_id: &str,
        body: Vec<u8>,
    ) -> Result<(), BlobError> {
        let encoded = percent_encode_query(block_id);
        let url = self.blob_url(rel, &[("comp", "block"), ("blockid", &encoded)]);
        self.send("Put Block", rel, Method::PUT, url, Some(body), &[])
            .await
    }

    /// Put Block List: commit the staged blocks in order.
    pub async fn put_block_list(&self, rel: &str, block_ids: &[String]) -> Result<(), BlobError> {
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        for id in block_ids {
            xml.push_str(&format!("<Latest>{id}</Latest>"));
        }
        xml.push_str("</BlockList>");
        let url = self.blob_url(rel, &[("comp", "blocklist")]);
        self.send(
            "Put Block List",
            rel,
            Method::PUT,
            url,
            Some(xml.into_bytes()),
            &[],
        )
        .await
    }

    /// Copy Blob with `x-ms-requires-sync`: the service copies `source_url`'s bytes itself.
    pub async fn copy_from(&self, rel: &str, source_url: &str) -> Result<(), BlobError> {
        let url = self.blob_url(rel, &[]);
        let headers = [
            ("x-ms-copy-source", source_url),
            ("x-ms-requires-sync", "true"),
        ];
        self.send("Copy Blob", rel, Method::PUT, url, None, &headers)
            .await
    }

    /// Set Blob Metadata (`x-ms-meta-<key>`).
    pub async fn set_metadata(
        &self,
        rel: &str,
        metadata: &[(&str, &str)],
    ) -> Result<(), BlobError> {
        let url = self.blob_url(rel, &[("comp", "metadata")]);
        let headers: Vec<(String, &str)> = metadata
            .iter()
            .map(|(k, v)| (format!("x-ms-meta-{k}"), *v))
            .collect();
        let header_refs: Vec<(&str, &str)> =
            headers.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        self.send(
            "Set Blob Metadata",
            rel,
            Method::PUT,
            url,
            None,
            &header_refs,
        )
        .await
    }

    /// One request with retries on 408/429/5xx and connection errors.
    async fn send(
        &self,
        operation: &'static str,
        rel: &str,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<(), BlobError> {
        let body = body.map(bytes::Bytes::from);
        let mut attempt = 0;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header("x-ms-version", STORAGE_VERSION)
                .header("x-ms-date", http_date_now());
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            request = match &body {
                Some(bytes) => request.body(bytes.clone()),
                None => request.header("content-length", "0"),
            };
            let outcome = request.send().await;
            let retry_after = match outcome {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(&response);
                    if !is_retryable(status) || attempt + 1 >= self.retry.attempts {
                        let message = error_message(response).await;
                        return Err(BlobError::Status {
                            operation,
                            blob: rel.to_string(),
                            status: status.as_u16(),
                            message,
                        });
                    }
                    retry_after
                }
                Err(err) => {
                    if attempt + 1 >= self.retry.attempts {
                        return Err(BlobError::Transport {
                            operation,
                            blob: rel.to_string(),
                            message: redact_url(&err.without_url().to_string()),
                        });
                    }
                    None
                }
            };
            tokio::time::sleep(retry_after.unwrap_or_else(|| self.retry.delay(attempt))).await;
            attempt += 1;
        }
    }
}

fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let seconds = response
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(seconds.min(60)))
}

/// The storage error code (`<Code>…</Code>`) without echoing anything secret.
async fn error_message(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    let code = text
        .split("<Code>")
        .nth(1)
        .and_then(|rest| rest.split("</Code>").next())
        .unwrap_or("no error code");
    redact_url(code)
}

/// Drop any `sig=` value that could appear in a message.
fn redact_url(text: &str) -> String {
    match text.find("sig=") {
        Some(i) => {
            let end = text[i..]
                .find(|c: char| c == '&' || c.is_whitespace() || c == ')')
                .map_or(text.len(), |e| i + e);
            format!("{}sig=REDACTED{}", &text[..i], redact_url(&text[end..]))
        }
        None => text.to_string(),
    }
}

fn percent_encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// RFC 1123 date for `x-ms-date`.
fn http_date_now() -> String {
    chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_urls_keep_the_sas_and_encode_path_segments() {
        let folder = BlobFolder::new(
            reqwest::Client::new(),
            "http://127.0.0.1:1/devstoreaccount1/c/LocalUpload/x?sv=1&sig=abc",
            RetryPolicy::from_env(),
        )
        .unwrap();
        let url = folder.blob_url("dir/a b#.py", &[("comp", "block")]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1/devstoreaccount1/c/LocalUpload/x/dir/a%20b%23.py?sv=1&sig=abc&comp=block"
        );
        assert_eq!(
            folder.url_without_sas(),
            "http://127.0.0.1:1/devstoreaccount1/c/LocalUpload/x"
        );
    }

    #[test]
    fn signatures_never_survive_in_messages() {
        assert_eq!(
            redact_url("error for http://h/c?sv=1&sig=SECRET&se=2"),
            "error for http://h/c?sv=1&sig=REDACTED&se=2"
        );
    }
}
