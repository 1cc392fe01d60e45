//! A fake Azure ML service for job submission: the ARM routes azml needs to
//! submit a v1 run as a v2 job (workspace, code versions + startPendingUpload,
//! environments, jobs) and the Run History data plane (run details with log
//! SAS URLs), plus the log blobs themselves, which grow while the job "runs".
//!
//! Like the real service it checks the bearer token and api-version, and it
//! validates every request body against the schema's request model for the
//! operation (`x-operations`), recording violations for the test to assert on.
#![allow(dead_code)]

#[path = "../support/schema.rs"]
pub mod schema;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub const SUB: &str = "00000000-1111-2222-3333-444444444444";
pub const RG: &str = "rg";
pub const WS: &str = "ws-jobs";
pub const TOKEN: &str = "fake-bearer-SECRETTOKEN123";
pub const API_VERSION: &str = "2025-12-01";
/// The signature the fake puts on log SAS URLs: it must never reach output.
pub const LOG_SIG: &str = "LOGSIGSECRET";

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
}

#[derive(Debug, Default)]
pub struct State {
    pub log: Vec<Logged>,
    pub violations: Vec<String>,
    /// `name/version` → stored CodeVersion resource.
    pub codes: BTreeMap<String, Value>,
    pub environments: BTreeMap<String, Value>,
    pub jobs: BTreeMap<String, Value>,
    /// Job id → how many status GETs it has had.
    pub polls: BTreeMap<String, u32>,
    /// Job id → log lines written so far.
    pub logs: BTreeMap<String, Vec<String>>,
    /// The status jobs end in.
    pub final_status: String,
    /// Blob folder (with SAS) handed out by startPendingUpload, per call.
    pub pending_uploads: Vec<String>,
    /// Run History experiments by name (ExperimentResponse bodies).
    pub experiments: BTreeMap<String, Value>,
    /// Run id → logged metric points `(name, value)` in logging order.
    pub metrics: BTreeMap<String, Vec<(String, Value)>>,
}

struct Shared {
    state: Mutex<State>,
    base: String,
    /// `<account url>/<container>` and the SAS for pending uploads.
    blob_container: String,
    blob_sas: String,
}

pub struct FakeJobs {
    pub base: String,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeJobs {
    /// Start on a free loopback port; pending uploads go to `blob_container` (URL) with `blob_sas`.
    pub fn start(blob_container: &str, blob_sas: &str) -> FakeJobs {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                final_status: "Completed".into(),
                ..State::default()
            }),
            base: base.clone(),
            blob_container: blob_container.to_string(),
            blob_sas: blob_sas.to_string(),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app_state = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().fallback(handle).with_state(app_state);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        });
        FakeJobs {
            base,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn workspace_path() -> String {
        format!(
            "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices/workspaces/{WS}"
        )
    }

    /// Requests whose path contains `needle`, in order.
    pub fn requests(&self, method: &str, needle: &str) -> Vec<Logged> {
        self.state()
            .log
            .iter()
            .filter(|l| l.method == method && l.path.contains(needle))
            .cloned()
            .collect()
    }
}

impl Drop for FakeJobs {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---- schema checks ------------------------------------------------------

/// Violations of the operation's request model (empty when valid).
pub fn request_violations(operation: &str, body: &Value) -> Vec<String> {
    match schema::request_model(operation) {
        Some(model) => schema::violations(&model, body)
            .into_iter()
            .map(|e| format!("{operation}: {e}"))
            .collect(),
        None => vec![format!("{operation} has no request model")],
    }
}

// ---- routing ------------------------------------------------------------

async fn handle(
    AxState(shared): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    state.log.push(Logged {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let path = uri.path().to_string();
    if let Some(rest) = path.strip_prefix("/logs/") {
        return serve_log(&state, rest, &uri, &headers);
    }
    if path == "/discovery" {
        return (StatusCode::OK, axum::Json(json!({"api": shared.base}))).into_response();
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        return error(401, "AuthenticationFailed", "missing or wrong bearer token");
    }
    if let Some(rest) = path.strip_prefix("/history/v1.0") {
        if rest.contains("/experiments") && !rest.contains("/runs/") {
            return data_plane(&mut state, &uri, |state| {
                experiments(state, &method, rest, &body)
            });
        }
        if method == Method::PATCH {
            return data_plane(&mut state, &uri, |state| patch_tags(state, rest, &body));
        }
        return data_plane(&mut state, &uri, |state| run_history(state, &shared, rest));
    }
    if let Some(rest) = path.strip_prefix("/metric/v2.0") {
        return data_plane(&mut state, &uri, |state| metrics(state, rest, &body));
    }
    let api = query(&uri, "api-version");
    if api.as_deref() != Some(API_VERSION) {
        state
            .violations
            .push(format!("{method} {path}: api-version {api:?}"));
        return error(400, "InvalidApiVersionParameter", "unsupported api-version");
    }
    let ws = FakeJobs::workspace_path();
    if path == ws && method == Method::GET {
        return ok(json!({
            "id": ws, "name": WS, "location": "westeurope",
            "properties": {"discoveryUrl": format!("{}/discovery", shared.base)},
        }));
    }
    let Some(rest) = path.strip_prefix(&format!("{ws}/")) else {
        return error(404, "NotFound", &format!("no route for {path}"));
    };
    let parts: Vec<String> = rest.split('/').map(String::from).collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                state
                    .violations
                    .push(format!("{method} {path}: body is not JSON: {e}"));
                return error(400, "BadRequest", "body is not JSON");
            }
        }
    };
    route(&mut state, &shared, &method, &uri, &parts, body)
}

fn route(
    state: &mut State,
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    parts: &[&str],
    body: Value,
) -> Response {
    let ws = FakeJobs::workspace_path();
    match (method.clone(), parts) {
        (Method::GET, ["codes", _name, "versions"]) => {
            let hash = query(uri, "hash");
            if query(uri, "hashVersion").as_deref() != Some("202208") {
                state
                    .violations
                    .push("code lookup without hashVersion=202208".into());
            }
            let found: Vec<Value> = state
                .codes
                .values()
                .filter(|c| {
                    c["properties"]["properties"]["hash_sha256"].as_str() == hash.as_deref()
                })
                .cloned()
                .collect();
            ok(json!({"value": found}))
        }
        (Method::POST, ["codes", _name, "versions", _version, "startPendingUpload"]) => {
            check(state, "CodeVersions_CreateOrGetStartPendingUpload", &body);
            let folder = format!(
                "{}/LocalUpload/{}",
                shared.blob_container,
                uuid::Uuid::new_v4().simple()
            );
            state.pending_uploads.push(folder.clone());
            ok(json!({
                "blobReferenceForConsumption": {
                    "blobUri": folder,
                    "credential": {"credentialType": "SAS", "sasUri": format!("{folder}?{}", shared.blob_sas)},
                },
                "pendingUploadId": "p1",
                "pendingUploadType": "TemporaryBlobReference",
            }))
        }
        (Method::PUT, ["codes", name, "versions", version]) => {
            check(state, "CodeVersions_CreateOrUpdate", &body);
            let mut resource = body.clone();
            resource["id"] = json!(format!("{ws}/codes/{name}/versions/{version}"));
            resource["name"] = json!(version);
            state
                .codes
                .insert(format!("{name}/{version}"), resource.clone());
            (StatusCode::CREATED, axum::Json(resource)).into_response()
        }
        (Method::GET, ["environments", name]) => {
            let latest = state
                .environments
                .keys()
                .filter_map(|k| k.strip_prefix(&format!("{name}/")))
                .max()
                .map(String::from);
            match latest {
                Some(v) => ok(
                    json!({"id": format!("{ws}/environments/{name}"), "name": name, "properties": {"latestVersion": v}}),
                ),
                None => error(404, "ResourceNotFound", "environment not found"),
            }
        }
        (Method::GET, ["environments", name, "versions", version]) => {
            match state.environments.get(&format!("{name}/{version}")) {
                Some(v) => ok(v.clone()),
                None => error(404, "ResourceNotFound", "environment version not found"),
            }
        }
        (Method::PUT, ["environments", name, "versions", version]) => {
            check(state, "EnvironmentVersions_CreateOrUpdate", &body);
            let mut resource = body.clone();
            resource["id"] = json!(format!("{ws}/environments/{name}/versions/{version}"));
            state
                .environments
                .insert(format!("{name}/{version}"), resource.clone());
            (StatusCode::CREATED, axum::Json(resource)).into_response()
        }
        (Method::PUT, ["jobs", id]) => {
            check(state, "Jobs_CreateOrUpdate", &body);
            let mut resource = body.clone();
            resource["id"] = json!(format!("{ws}/jobs/{id}"));
            resource["name"] = json!(id);
            resource["properties"]["status"] = json!("NotStarted");
            let seq = state.jobs.len();
            resource["systemData"] =
                json!({"createdAt": format!("2026-11-25T08:{:02}:{:02}Z", seq / 60, seq % 60)});
            state.jobs.insert(id.to_string(), resource.clone());
            state.polls.insert(id.to_string(), 0);
            (StatusCode::CREATED, axum::Json(resource)).into_response()
        }
        (Method::GET, ["jobs"]) => {
            ok(json!({"value": state.jobs.values().cloned().collect::<Vec<_>>()}))
        }
        (Method::GET, ["jobs", id]) => job_status(state, id),
        (Method::POST, ["jobs", id, "cancel"]) => match state.jobs.get_mut(*id) {
            Some(job) => {
                job["properties"]["status"] = json!("Canceled");
                StatusCode::ACCEPTED.into_response()
            }
            None => error(404, "ResourceNotFound", "job not found"),
        },
        _ => error(
            404,
            "NotFound",
            &format!("no route for {method} {}", parts.join("/")),
        ),
    }
}

/// Each GET moves the job along: NotStarted → Running (3 polls, one log line
/// each) → the final status.
fn job_status(state: &mut State, id: &str) -> Response {
    let Some(polls) = state.polls.get_mut(id) else {
        return error(404, "ResourceNotFound", "job not found");
    };
    *polls += 1;
    let n = *polls;
    let final_status = state.final_status.clone();
    // A sweep's output comes from its trials: one child run, `<id>_0`.
    let is_sweep = state
        .jobs
        .get(id)
        .is_some_and(|j| j["properties"]["jobType"] == "Sweep");
    let log_owner = if is_sweep {
        format!("{id}_0")
    } else {
        id.to_string()
    };
    let status = match n {
        1 => "Starting".to_string(),
        2..=4 => {
            state.logs.entry(log_owner).or_default().push(format!(
                "epoch {} loss {:.2}",
                n - 1,
                1.0 / f64::from(n)
            ));
            "Running".to_string()
        }
        _ => final_status,
    };
    let Some(job) = state.jobs.get_mut(id) else {
        return error(404, "ResourceNotFound", "job not found");
    };
    if job["properties"]["status"] != "Canceled" {
        job["properties"]["status"] = json!(status);
    }
    ok(job.clone())
}

fn run_history(state: &mut State, shared: &Shared, rest: &str) -> Response {
    let ws = FakeJobs::workspace_path();
    let Some(run_part) = rest.strip_prefix(&format!("{ws}/runs/")) else {
        return error(404, "NotFound", "no run history route");
    };
    if let Some(parent) = run_part.strip_suffix("/children") {
        let child = format!("{parent}_0");
        let children: Vec<Value> = state
            .logs
            .contains_key(&child)
            .then(|| json!({"runId": child, "parentRunId": parent, "status": "Running", "target": "cpu-cluster", "startTimeUtc": "2026-11-25T08:01:00Z"}))
            .into_iter()
            .collect();
        return ok(json!({"value": children}));
    }
    let Some(run_id) = run_part.strip_suffix("/details") else {
        return error(404, "NotFound", "no run history route");
    };
    let status = match state.jobs.get(run_id) {
        Some(job) => job["properties"]["status"].clone(),
        None if state.logs.contains_key(run_id) => json!("Running"),
        None => return error(404, "RunNotFound", "run not found"),
    };
    let mut log_files = serde_json::Map::new();
    if state.logs.contains_key(run_id) {
        log_files.insert(
            "user_logs/std_log.txt".into(),
            json!(format!(
                "{}/logs/{run_id}/std_log.txt?sv=1&sig={LOG_SIG}",
                shared.base
            )),
        );
    }
    ok(json!({
        "runId": run_id,
        "status": status,
        "target": "cpu-cluster",
        "startTimeUtc": "2026-11-25T08:00:00Z",
        "endTimeUtc": if status == "Completed" { json!("2026-11-25T08:05:00Z") } else { Value::Null },
        "logFiles": log_files,
    }))
}

/// Every Run History and metric route takes `api-version=v1.0` (a required
/// query parameter of each `RunHistory.*` operation in the schema).
fn data_plane(
    state: &mut State,
    uri: &Uri,
    answer: impl FnOnce(&mut State) -> Response,
) -> Response {
    let api = query(uri, "api-version");
    if api.as_deref() != Some("v1.0") {
        state
            .violations
            .push(format!("{}: Run History api-version {api:?}", uri.path()));
        return error(400, "InvalidApiVersionParameter", "unsupported api-version");
    }
    answer(state)
}

/// Items from `continuationToken` (an index), two per page, with the next token.
fn page(items: Vec<Value>, request: &Value) -> Value {
    let start: usize = request["continuationToken"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let end = (start + 2).min(items.len());
    let token = (end < items.len()).then(|| end.to_string());
    json!({"value": items.get(start..end).unwrap_or_default(), "continuationToken": token})
}

fn json_body(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// Experiments_GetByQuery (POST `experiments:query`), Experiments_Get and
/// Experiments_Create (POST `experiments/{name}`: 409 when it exists).
fn experiments(state: &mut State, method: &Method, rest: &str, body: &Bytes) -> Response {
    let ws = FakeJobs::workspace_path();
    let Some(tail) = rest.strip_prefix(&format!("{ws}/experiments")) else {
        return error(404, "NotFound", "no experiments route");
    };
    if tail == ":query" && method == Method::POST {
        let request = json_body(body);
        check(state, "RunHistory.Experiments_GetByQuery", &request);
        let items = state.experiments.values().cloned().collect();
        return ok(page(items, &request));
    }
    let Some(name) = tail.strip_prefix('/').filter(|n| !n.contains('/')) else {
        return error(404, "NotFound", "no experiments route");
    };
    match (method, state.experiments.get(name)) {
        (&Method::GET, Some(exp)) => ok(exp.clone()),
        (&Method::GET, None) => error(404, "ExperimentNotFound", "experiment not found"),
        (&Method::POST, Some(_)) => error(409, "Conflict", "experiment already exists"),
        (&Method::POST, None) => {
            let exp = json!({
                "experimentId": format!("00000000-0000-0000-0000-{:012}", state.experiments.len() + 1),
                "name": name,
                "createdUtc": "2026-11-25T08:00:00Z",
                "archivedTime": null,
                "tags": {},
            });
            state.experiments.insert(name.to_string(), exp.clone());
            ok(exp)
        }
        _ => error(405, "MethodNotAllowed", "method not allowed"),
    }
}

/// Metrics_ListMetric (`runs/{id}/list`) and Metrics_GetFullFidelityMetric (`runs/{id}/full`).
fn metrics(state: &mut State, rest: &str, body: &Bytes) -> Response {
    let ws = FakeJobs::workspace_path();
    let request = json_body(body);
    let Some(run_part) = rest.strip_prefix(&format!("{ws}/runs/")) else {
        return error(404, "NotFound", "no metric route");
    };
    let (run_id, operation) = match run_part.rsplit_once('/') {
        Some((id, "list")) => (id, "RunHistory.Metrics_ListMetric"),
        Some((id, "full")) => (id, "RunHistory.Metrics_GetFullFidelityMetric"),
        _ => return error(404, "NotFound", "no metric route"),
    };
    check(state, operation, &request);
    if !state.jobs.contains_key(run_id) && !state.metrics.contains_key(run_id) {
        return error(404, "RunNotFound", "run not found");
    }
    let points = state.metrics.get(run_id).cloned().unwrap_or_default();
    if operation.ends_with("ListMetric") {
        let mut names: Vec<&String> = points.iter().map(|(n, _)| n).collect();
        names.dedup();
        names.sort();
        names.dedup();
        let definitions = names
            .into_iter()
            .map(|n| json!({"metricKey": {"namespace": "", "name": n, "labels": [], "columnNames": [n]}, "columns": {n: "Double"}}))
            .collect();
        return ok(page(definitions, &request));
    }
    let wanted = request["metricName"].as_str().unwrap_or_default();
    let values = points
        .iter()
        .filter(|(n, _)| n == wanted)
        .enumerate()
        .map(|(step, (n, v))| json!({"metricId": format!("m{step}"), "step": step, "createdUtc": "2026-11-25T08:01:00Z", "data": {n: v}}))
        .collect();
    let mut answer = page(values, &request);
    answer["name"] = json!(wanted);
    ok(answer)
}

/// Run History `experiments/{exp}/runs/{id}/tags`: v2 jobs keep tags there too.
fn patch_tags(state: &mut State, rest: &str, body: &Bytes) -> Response {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    check(
        state,
        "RunHistory.Runs_ModifyOrDeleteTagsByExperimentName",
        &body,
    );
    let Some(run_id) = rest
        .strip_suffix("/tags")
        .and_then(|r| r.rsplit_once("/runs/"))
        .map(|(_, id)| id.to_string())
    else {
        return error(404, "NotFound", "no tags route");
    };
    let Some(job) = state.jobs.get_mut(&run_id) else {
        return error(404, "RunNotFound", "run not found");
    };
    if let Some(tags) = body["tagsToModify"].as_object() {
        for (k, v) in tags {
            job["properties"]["tags"][k] = v.clone();
        }
    }
    ok(json!({"runId": run_id, "tags": job["properties"]["tags"]}))
}

/// The log blob: all lines so far, honouring `Range: bytes=N-`.
fn serve_log(state: &State, rest: &str, uri: &Uri, headers: &HeaderMap) -> Response {
    if query(uri, "sig").as_deref() != Some(LOG_SIG) {
        return error(403, "AuthenticationFailed", "bad SAS");
    }
    let run_id = rest.split('/').next().unwrap_or_default();
    let text: String = state
        .logs
        .get(run_id)
        .map(|lines| lines.iter().map(|l| format!("{l}\n")).collect())
        .unwrap_or_default();
    let start = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split('-').next())
        .and_then(|v| v.parse::<usize>().ok());
    match start {
        Some(start) if start >= text.len() => {
            (StatusCode::RANGE_NOT_SATISFIABLE, "").into_response()
        }
        Some(start) => (StatusCode::PARTIAL_CONTENT, text[start..].to_string()).into_response(),
        None => (StatusCode::OK, text).into_response(),
    }
}

fn check(state: &mut State, operation: &str, body: &Value) {
    let violations = request_violations(operation, body);
    state.violations.extend(violations);
}

fn query(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

fn ok(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn error(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}
