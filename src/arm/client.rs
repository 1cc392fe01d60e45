//! The HTTP side of ARM: signed requests, retries with backoff, `nextLink`
//! paging, long-running operations, error bodies, and redacted `--debug` traces.

use super::auth::Credentials;
use super::cloud::{Cloud, arm_endpoint};
use super::error::ArmError;
use super::redact;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use std::time::{Duration, Instant};

pub const DEFAULT_API_VERSION: &str = "2025-12-01";
const USER_AGENT: &str = concat!("azml/", env!("CARGO_PKG_VERSION"));

/// What the global flags contribute to the ARM backend (everything else comes from the environment).
#[derive(Debug, Clone, Default)]
pub struct ArmSettings {
    /// `--cloud` (else `AZURE_CLOUD`).
    pub cloud: Option<String>,
    /// `--auth` (else `AZML_AUTH`).
    pub auth: Option<String>,
}

static INSTALLED: std::sync::OnceLock<ArmSettings> = std::sync::OnceLock::new();

impl ArmSettings {
    /// Make these the settings of every Azure backend opened in this process
    /// (`main` calls it once after parsing the global flags).
    pub fn install(self) {
        let _ = INSTALLED.set(self);
    }

    /// The installed settings, or the defaults (environment only).
    pub fn current() -> ArmSettings {
        INSTALLED.get().cloned().unwrap_or_default()
    }
}

/// Retry and polling knobs. Defaults suit Azure; the environment shortens them for tests.
#[derive(Debug, Clone)]
pub struct Timing {
    /// First backoff step (`AZML_RETRY_BASE_MS`, default 800 ms), doubled per attempt.
    pub retry_base: Duration,
    /// Attempts per request (`AZML_RETRY_MAX_ATTEMPTS`, default 8).
    pub max_attempts: u32,
    /// Total time one request may spend retrying (`AZML_RETRY_MAX_SECS`, default 120 s).
    pub retry_budget: Duration,
    /// Poll interval when the service sends no Retry-After (`AZML_LRO_POLL_MS`, default 30 s as ARMPolling).
    pub poll_interval: Duration,
    /// Give up waiting for an operation after this long (`AZML_LRO_TIMEOUT_SECS`, default 1 h).
    pub lro_timeout: Duration,
}

impl Timing {
    pub fn from_env() -> Timing {
        let num = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(default)
        };
        Timing {
            retry_base: Duration::from_millis(num("AZML_RETRY_BASE_MS", 800)),
            max_attempts: num("AZML_RETRY_MAX_ATTEMPTS", 8).max(1) as u32,
            retry_budget: Duration::from_secs(num("AZML_RETRY_MAX_SECS", 120)),
            poll_interval: Duration::from_millis(num("AZML_LRO_POLL_MS", 30_000)),
            lro_timeout: Duration::from_secs(num("AZML_LRO_TIMEOUT_SECS", 3600)),
        }
    }
}

/// One ARM answer. `body` is `Value::Null` when the response had none.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What an operation's result is once polling says it is done (`lro.final_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalState {
    /// GET the URL the operation was started on (PUT/PATCH).
    OriginalUrl,
    /// GET the initial Location header if there was one (POST start/stop/restart).
    LocationIfAny,
    /// Nothing to fetch (DELETE).
    Nothing,
}

/// A client for one cloud's ARM endpoint.
#[derive(Debug)]
pub struct ArmClient {
    http: reqwest::Client,
    base: Url,
    api_version: String,
    credentials: Credentials,
    timing: Timing,
}

impl ArmClient {
    /// The client for `settings` plus the environment (`AZML_ARM_ENDPOINT`,
    /// `AZML_ARM_API_VERSION`, `AZURE_CLOUD`, `AZML_AUTH`, retry knobs).
    pub fn new(settings: &ArmSettings) -> Result<ArmClient, ArmError> {
        let cloud = Cloud::resolve(settings.cloud.as_deref())?;
        let base = arm_endpoint(&cloud)?;
        let api_version = std::env::var("AZML_ARM_API_VERSION")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_API_VERSION.to_string());
        let credentials = Credentials::new(cloud, settings.auth.as_deref())?;
        ArmClient::with_parts(base, api_version, credentials, Timing::from_env())
    }

    /// A client from explicit parts (embedders and tests that must not touch the environment).
    pub fn with_parts(
        base: Url,
        api_version: String,
        mut credentials: Credentials,
        timing: Timing,
    ) -> Result<ArmClient, ArmError> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(20))
            .timeout(Duration::from_secs(120))
            // Token requests share this client: a 307/308 would re-send their form
            // body (a client secret or assertion) to wherever it points. Neither
            // ARM nor Entra redirects these calls, so a redirect is an error.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ArmError::Config(format!("cannot build the HTTP client: {e}")))?;
        credentials.use_transport(http.clone());
        Ok(ArmClient {
            http,
            base,
            api_version,
            credentials,
            timing,
        })
    }

    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// `base + path` with `api-version` and the given query pairs.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        let base_path = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base_path}{path}"));
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("api-version", &self.api_version);
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    /// GET that must succeed; returns the body.
    pub async fn get(&self, url: Url) -> Result<Value, ArmError> {
        Ok(self.call(Method::GET, url, None).await?.body)
    }

    /// GET that may answer 404: `Ok(None)` then.
    pub async fn get_optional(&self, url: Url) -> Result<Option<Value>, ArmError> {
        match self.call(Method::GET, url, None).await {
            Ok(r) => Ok(Some(r.body)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Send and turn any non-2xx answer into `ArmError::Service`.
    pub async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Response, ArmError> {
        let response = self.send(method, url, body).await?;
        if response.status.is_success() {
            Ok(response)
        } else {
            Err(service_error(&response))
        }
    }

    /// Every item of a paged list, following `nextLink` (its query kept, our api-version set).
    pub async fn list(
        &self,
        first: Url,
        method: Method,
        item_key: &str,
    ) -> Result<Vec<Value>, ArmError> {
        let mut items = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut page = self.call(method, first, None).await?.body;
        loop {
            if let Some(values) = page.get(item_key).and_then(|v| v.as_array()) {
                items.extend(values.iter().cloned());
            }
            let Some(next) = page
                .get("nextLink")
                .and_then(|n| n.as_str())
                .filter(|n| !n.is_empty())
            else {
                return Ok(items);
            };
            if !seen.insert(next.to_string()) {
                return Err(ArmError::BadResponse {
                    url: redact::text(next),
                    reason: "the service sent the same nextLink twice".into(),
                });
            }
            let next = self.same_origin(next)?;
            page = self.get(self.with_our_api_version(next)).await?;
        }
    }

    /// Send with retries on 408/429/5xx and dropped connections, honouring
    /// `x-ms-retry-after-ms`/`retry-after-ms`/`Retry-After`, within the time budget.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Response, ArmError> {
        let started = Instant::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = self.send_once(&method, &url, body, &request_id).await;
            let wait = match &outcome {
                Ok(r) if is_retryable_status(r.status) => {
                    Some(retry_after(r).unwrap_or_else(|| self.backoff(attempt)))
                }
                Ok(_) | Err(AttemptError::Fatal(_)) => None,
                Err(AttemptError::Transient(_)) => Some(self.backoff(attempt)),
            };
            let give_up = match wait {
                None => true,
                Some(wait) => {
                    attempt >= self.timing.max_attempts
                        || started.elapsed() + wait > self.timing.retry_budget
                }
            };
            if give_up {
                return match outcome {
                    Ok(r) => Ok(r),
                    Err(AttemptError::Fatal(e)) => Err(e),
                    Err(AttemptError::Transient(reason)) => {
                        Err(transport_error(&url, attempt, reason))
                    }
                };
            }
            let wait = wait.unwrap_or_default();
            tracing::debug!("retrying in {} ms (attempt {attempt})", wait.as_millis());
            tokio::time::sleep(wait).await;
        }
    }

    /// Exponential backoff with ±25% jitter, capped at 30 s per step.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .timing
            .retry_base
            .saturating_mul(1u32 << (attempt - 1).min(10));
        let capped = exp.min(Duration::from_secs(30));
        let jitter = 0.75 + rand::random::<f64>() * 0.5;
        capped.mul_f64(jitter)
    }

    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&Value>,
        request_id: &str,
    ) -> Result<Response, AttemptError> {
        let token = self
            .credentials
            .token()
            .await
            .map_err(AttemptError::Fatal)?;
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(&token.secret)
            .header("x-ms-client-request-id", request_id)
            .header("Accept", "application/json");
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        trace_request(method, url, request_id, body);
        let response = request
            .send()
            .await
            .map_err(|e| AttemptError::Transient(describe_reqwest(e)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| AttemptError::Transient(describe_reqwest(e)))?;
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        let response = Response {
            status,
            headers,
            body,
        };
        trace_response(&response);
        Ok(response)
    }

    /// Absolute URLs from the service (polling, nextLink) must stay on our ARM
    /// host: the bearer token goes with every request.
    fn same_origin(&self, raw: &str) -> Result<Url, ArmError> {
        let url = Url::parse(raw).map_err(|e| ArmError::BadResponse {
            url: raw.to_string(),
            reason: format!("not a URL: {e}"),
        })?;
        if url.origin() != self.base.origin() {
            return Err(ArmError::BadResponse {
                url: redact::text(raw),
                reason: format!(
                    "refusing to send credentials to a host other than {}",
                    self.base
                ),
            });
        }
        Ok(url)
    }

    fn with_our_api_version(&self, mut url: Url) -> Url {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "api-version")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(kept)
            .append_pair("api-version", &self.api_version);
        url
    }

    /// Wait for a long-running operation started by `initial`, exactly as
    /// azure.mgmt.core's ARMPolling does (see `x-lro-polling` in the schema).
    pub async fn wait(
        &self,
        method: &Method,
        original: &Url,
        initial: Response,
        final_state: FinalState,
    ) -> Result<Option<Value>, ArmError> {
        let deadline = Instant::now() + self.timing.lro_timeout;
        if let Some(op) = initial.header("azure-asyncoperation") {
            let op = self.same_origin(op)?;
            let done = self.poll_async_operation(op, &initial, deadline).await?;
            if let Some(loc) = done.body.get("resourceLocation").and_then(|l| l.as_str()) {
                return Ok(Some(self.get(self.same_origin(loc)?).await?));
            }
            return self.final_get(original, &initial, final_state).await;
        }
        if let Some(location) = initial.header("location") {
            let location = self.same_origin(location)?;
            return self
                .poll_location(location, &initial, deadline)
                .await
                .map(Some);
        }
        if *method == Method::PUT || *method == Method::PATCH {
            return self
                .poll_provisioning_state(original, initial, deadline)
                .await
                .map(Some);
        }
        Ok(Some(initial.body))
    }

    async fn final_get(
        &self,
        original: &Url,
        initial: &Response,
        final_state: FinalState,
    ) -> Result<Option<Value>, ArmError> {
        match final_state {
            FinalState::OriginalUrl => Ok(Some(self.get(original.clone()).await?)),
            FinalState::LocationIfAny => match initial.header("location") {
                Some(loc) => Ok(Some(self.get(self.same_origin(loc)?).await?)),
                None => Ok(None),
            },
            FinalState::Nothing => Ok(None),
        }
    }

    async fn poll_async_operation(
        &self,
        op: Url,
        initial: &Response,
        deadline: Instant,
    ) -> Result<Response, ArmError> {
        let mut last_delay = self.poll_delay(initial);
        loop {
            self.sleep_before_poll(last_delay, deadline).await?;
            let r = self.call(Method::GET, op.clone(), None).await?;
            let status = r.body.get("status").and_then(|s| s.as_str()).unwrap_or("");
            match terminal(status) {
                Some(true) => return Ok(r),
                Some(false) => return Err(operation_failed(status, &r.body)),
                None => last_delay = self.poll_delay(&r),
            }
        }
    }

    async fn poll_location(
        &self,
        location: Url,
        initial: &Response,
        deadline: Instant,
    ) -> Result<Value, ArmError> {
        let mut last_delay = self.poll_delay(initial);
        loop {
            self.sleep_before_poll(last_delay, deadline).await?;
            let r = self.send(Method::GET, location.clone(), None).await?;
            if r.status != StatusCode::ACCEPTED {
                return if r.status.is_success() {
                    Ok(r.body)
                } else {
                    Err(service_error(&r))
                };
            }
            last_delay = self.poll_delay(&r);
        }
    }

    async fn poll_provisioning_state(
        &self,
        original: &Url,
        initial: Response,
        deadline: Instant,
    ) -> Result<Value, ArmError> {
        let mut current = initial;
        loop {
            let state = provisioning_state(&current.body);
            match terminal(&state) {
                Some(true) => return Ok(current.body),
                Some(false) => return Err(operation_failed(&state, &current.body)),
                None => {}
            }
            self.sleep_before_poll(self.poll_delay(&current), deadline)
                .await?;
            current = self.call(Method::GET, original.clone(), None).await?;
        }
    }

    fn poll_delay(&self, r: &Response) -> Duration {
        retry_after(r).unwrap_or(self.timing.poll_interval)
    }

    async fn sleep_before_poll(&self, delay: Duration, deadline: Instant) -> Result<(), ArmError> {
        if Instant::now() + delay > deadline {
            return Err(ArmError::LroTimeout(self.timing.lro_timeout.as_secs()));
        }
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

/// Why one attempt produced no response: worth retrying (network) or not (credentials).
enum AttemptError {
    Transient(String),
    Fatal(ArmError),
}

/// `Some(true)` succeeded, `Some(false)` failed/canceled, `None` still running.
fn terminal(status: &str) -> Option<bool> {
    match status.to_ascii_lowercase().as_str() {
        "succeeded" => Some(true),
        "failed" | "canceled" | "cancelled" => Some(false),
        _ => None,
    }
}

/// `properties.provisioningState`, absent meaning Succeeded (ARMPolling's rule).
fn provisioning_state(body: &Value) -> String {
    body.pointer("/properties/provisioningState")
        .and_then(|s| s.as_str())
        .unwrap_or("Succeeded")
        .to_string()
}

fn operation_failed(status: &str, body: &Value) -> ArmError {
    let error = body
        .get("error")
        .or_else(|| body.pointer("/properties/provisioningErrors/0/error"));
    let field = |k: &str| {
        error
            .and_then(|e| e.get(k))
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    ArmError::OperationFailed {
        status: status.to_string(),
        code: Some(field("code"))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| status.to_string()),
        message: Some(field("message"))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "the service gave no reason".into()),
    }
}

fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// The service's requested delay: `x-ms-retry-after-ms`, `retry-after-ms`, then `Retry-After` (seconds or HTTP date).
fn retry_after(r: &Response) -> Option<Duration> {
    for name in ["x-ms-retry-after-ms", "retry-after-ms"] {
        if let Some(ms) = r.header(name).and_then(|v| v.trim().parse::<u64>().ok()) {
            return Some(Duration::from_millis(ms));
        }
    }
    let value = r.header("retry-after")?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let secs = (when.timestamp() - chrono::Utc::now().timestamp()).max(0) as u64;
    Some(Duration::from_secs(secs))
}

/// An ARM error body `{"error": {"code", "message", "details": [...]}}` as a typed error.
pub fn service_error(r: &Response) -> ArmError {
    let error = r.body.get("error").unwrap_or(&r.body);
    let text = |v: &Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let code = text(error, "code").unwrap_or_else(|| {
        r.status
            .canonical_reason()
            .unwrap_or("HttpError")
            .replace(' ', "")
    });
    let message = text(error, "message").unwrap_or_else(|| match &r.body {
        Value::String(s) => redact::text(s),
        _ => format!("HTTP {}", r.status.as_u16()),
    });
    let details = error
        .get("details")
        .and_then(|d| d.as_array())
        .map(|items| {
            items
                .iter()
                .map(|d| {
                    format!(
                        "({}) {}",
                        text(d, "code").unwrap_or_default(),
                        text(d, "message").unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ArmError::Service {
        status: r.status.as_u16(),
        code,
        message,
        details,
    }
}

fn transport_error(url: &Url, attempts: u32, reason: String) -> ArmError {
    ArmError::Transport {
        url: redact::text(url.as_str()),
        attempts,
        reason,
    }
}

/// reqwest's message plus its source chain (the useful part: "connection refused"),
/// with URLs scrubbed.
fn describe_reqwest(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    redact::text(&text)
}

fn trace_request(method: &Method, url: &Url, request_id: &str, body: Option<&Value>) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    tracing::debug!("Request URL: '{method} {}'", redact::text(url.as_str()));
    tracing::debug!("    'Authorization': '***'");
    tracing::debug!("    'x-ms-client-request-id': '{request_id}'");
    tracing::debug!("    'User-Agent': '{USER_AGENT}'");
    if let Some(body) = body {
        tracing::debug!("Request body: {}", redact::json(body));
    }
}

fn trace_response(r: &Response) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    tracing::debug!("Response status: {}", r.status.as_u16());
    for (name, value) in &r.headers {
        let value = value.to_str().unwrap_or("<binary>");
        tracing::debug!(
            "    '{name}': '{}'",
            redact::header_value(name.as_str(), value)
        );
    }
    if !r.body.is_null() {
        tracing::debug!("Response content: {}", redact::json(&r.body));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn response(status: u16, headers: &[(&'static str, &str)], body: Value) -> Response {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body,
        }
    }

    #[test]
    fn retry_after_ms_header_wins_over_seconds() {
        let r = response(
            429,
            &[("retry-after", "7"), ("x-ms-retry-after-ms", "15")],
            Value::Null,
        );
        assert_eq!(retry_after(&r), Some(Duration::from_millis(15)));
        let r = response(429, &[("retry-after", "2")], Value::Null);
        assert_eq!(retry_after(&r), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(&response(503, &[], Value::Null)), None);
    }

    #[test]
    fn arm_error_body_becomes_code_message_and_details() {
        let body = serde_json::json!({"error": {"code": "BadRequest", "message": "Invalid vmSize",
            "details": [{"code": "InvalidField", "message": "vmSize Standard_XX is unknown"}]}});
        let e = service_error(&response(400, &[], body));
        assert_eq!(
            e.to_string(),
            "(BadRequest) Invalid vmSize\n  (InvalidField) vmSize Standard_XX is unknown"
        );
    }

    #[test]
    fn bodyless_404_still_says_not_found() {
        let e = service_error(&response(404, &[], Value::Null));
        assert!(e.is_not_found());
        assert_eq!(e.to_string(), "(NotFound) HTTP 404");
    }

    #[test]
    fn provisioning_state_absent_counts_as_succeeded() {
        assert_eq!(provisioning_state(&serde_json::json!({})), "Succeeded");
        assert_eq!(terminal("InProgress"), None);
        assert_eq!(terminal("canceled"), Some(false));
    }
}
