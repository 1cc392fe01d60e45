//! A fake Azure Resource Manager for Microsoft.MachineLearningServices computes.
//!
//! Answers like the real service (201 + Azure-AsyncOperation with InProgress
//! polls, 202 + Location, 404 ResourceNotFound, lists paged 2 at a time),
//! checks the bearer token and api-version on every request, validates every
//! body against `tests/fixtures/schema-2025-12-01.json` (the operation's
//! `…Request` model), and injects 429/500/503 and dropped connections.

#![allow(dead_code)]

#[path = "schema.rs"]
pub mod schema;

use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub const SUB: &str = "00000000-1111-2222-3333-444444444444";
pub const RG: &str = "rg";
pub const WS: &str = "ws-main";
pub const TOKEN: &str = "fake-bearer-SECRETTOKEN123";
pub const API_VERSION: &str = "2025-12-01";
const PROVIDER: &str = "Microsoft.MachineLearningServices";

/// A fault the fake can inject into one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After` (the options' value).
    Throttle,
    ServerError,
    Unavailable,
    /// Do the work, then cut the connection before the body arrives.
    DropAfterWork,
    /// Any other status, e.g. 408/502/504 (forced only, never random).
    Status(u16),
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Share of requests answered with a random fault.
    pub fault_rate: f64,
    pub seed: u64,
    /// How many polls an operation stays InProgress.
    pub polls: u32,
    /// `Retry-After` value sent with 429s.
    pub retry_after: String,
    /// The only bearer token accepted (a fake identity endpoint's, in credential tests).
    pub token: String,
    /// Send Azure-AsyncOperation/Location on creates; without them the client
    /// must poll the resource's provisioningState.
    pub lro_headers: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            fault_rate: 0.0,
            seed: 7,
            polls: 2,
            retry_after: "0".into(),
            token: TOKEN.into(),
            lro_headers: true,
        }
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
}

#[derive(Debug)]
enum OpKind {
    Provision,
    Update,
    Remove { action: String },
    Power { action: String },
}

#[derive(Debug)]
struct Op {
    compute: String,
    kind: OpKind,
    polls_left: u32,
    done: bool,
    failed: bool,
}

/// Everything the fake knows; tests read it through `FakeArm::state()`.
#[derive(Debug, Default)]
pub struct State {
    pub computes: BTreeMap<String, Value>,
    /// Secrets split off attach bodies, served only by listKeys.
    pub secrets: HashMap<String, Value>,
    pub log: Vec<Logged>,
    /// PUTs that created a compute (not updates), per name.
    pub creations: HashMap<String, u32>,
    /// (name, underlyingResourceAction) of completed deletes/detaches.
    pub removals: Vec<(String, String)>,
    pub violations: Vec<String>,
    pub faults_injected: u32,
    pub forced_faults: VecDeque<Fault>,
    ops: HashMap<String, Op>,
    next_op: u64,
    /// Computes that poll their own provisioning state: name → polls left.
    settling: HashMap<String, u32>,
}

struct Shared {
    state: Mutex<State>,
    rng: Mutex<ChaCha8Rng>,
    options: Options,
    base: String,
}

pub struct FakeArm {
    pub base: String,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeArm {
    pub fn start(options: Options) -> FakeArm {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(options.seed)),
            options,
            base: base.clone(),
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
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .expect("serve");
            });
        });
        FakeArm {
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
        format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/{PROVIDER}/workspaces/{WS}")
    }

    /// Put a compute in place as if it existed already (no request logged).
    pub fn seed_compute(&self, name: &str, kind: &str, extra: Value) {
        let mut resource = compute_envelope(name, kind);
        merge(&mut resource, &extra);
        self.state().computes.insert(name.to_string(), resource);
    }

    /// The next responses get exactly these faults, in order.
    pub fn force_faults(&self, faults: &[Fault]) {
        self.state().forced_faults.extend(faults.iter().copied());
    }
}

impl Drop for FakeArm {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn compute_envelope(name: &str, kind: &str) -> Value {
    json!({
        "id": format!("{}/computes/{name}", FakeArm::workspace_path()),
        "name": name,
        "type": format!("{PROVIDER}/workspaces/computes"),
        "location": "westeurope",
        "properties": {"computeType": kind, "provisioningState": "Succeeded",
                        "isAttachedCompute": false, "computeLocation": "westeurope"},
    })
}

// ---- request handling ---------------------------------------------------

struct Reply {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: Option<Value>,
}

fn reply(status: u16, body: Option<Value>) -> Reply {
    Reply {
        status: StatusCode::from_u16(status).expect("status"),
        headers: Vec::new(),
        body,
    }
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    reply(
        status,
        Some(json!({"error": {"code": code, "message": message}})),
    )
}

impl Reply {
    fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

async fn handle(
    AxState(shared): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = pick_fault(&shared);
    if let Some(
        f @ (Fault::Throttle | Fault::ServerError | Fault::Unavailable | Fault::Status(_)),
    ) = fault
    {
        log_request(&shared, &method, &uri, &headers, &body);
        return fault_response(f, &shared.options.retry_after);
    }
    let reply = {
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.log.push(logged(&method, &uri, &headers, &body));
        process(&mut state, &shared, &method, &uri, &headers, &body)
    };
    if fault == Some(Fault::DropAfterWork) {
        return dropped_response();
    }
    to_response(reply)
}

fn pick_fault(shared: &Shared) -> Option<Fault> {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(f) = state.forced_faults.pop_front() {
        state.faults_injected += 1;
        return Some(f);
    }
    let mut rng = shared.rng.lock().unwrap_or_else(|e| e.into_inner());
    if shared.options.fault_rate <= 0.0 || rng.random::<f64>() >= shared.options.fault_rate {
        return None;
    }
    state.faults_injected += 1;
    Some(match rng.random_range(0..4) {
        0 => Fault::Throttle,
        1 => Fault::ServerError,
        2 => Fault::Unavailable,
        _ => Fault::DropAfterWork,
    })
}

fn logged(method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Logged {
    Logged {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: String::from_utf8_lossy(body).into_owned(),
        at: Instant::now(),
    }
}

fn log_request(shared: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    state.log.push(logged(method, uri, headers, body));
}

fn fault_response(fault: Fault, retry_after: &str) -> Response {
    let (status, code) = match fault {
        Fault::Throttle => (429, "TooManyRequests"),
        Fault::ServerError => (500, "InternalServerError"),
        Fault::Status(status) => (status, "InjectedStatus"),
        _ => (503, "ServiceUnavailable"),
    };
    let mut r = error(status, code, "injected fault");
    if fault == Fault::Throttle {
        r = r.header("Retry-After", retry_after);
    }
    to_response(r)
}

/// Headers go out, then the body stream fails: the client sees a cut connection.
fn dropped_response() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("injected connection drop"))
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .expect("response")
}

fn to_response(r: Reply) -> Response {
    let mut builder = Response::builder()
        .status(r.status)
        .header("x-ms-request-id", "fake-req")
        .header("x-ms-ratelimit-remaining-subscription-reads", "11999");
    for (k, v) in &r.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let body = match r.body {
        Some(v) => {
            builder = builder.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    builder.body(body).expect("response")
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.replace("%24", "$") == name).then(|| v.replace("%24", "$"))
    })
}

fn process(
    state: &mut State,
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Reply {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {}", shared.options.token)) {
        return error(401, "AuthenticationFailed", "missing or wrong bearer token");
    }
    let api = query_param(uri, "api-version");
    if api.as_deref() != Some(API_VERSION) {
        state
            .violations
            .push(format!("{method} {}: api-version {api:?}", uri.path()));
        return error(400, "InvalidApiVersionParameter", "unsupported api-version");
    }
    let path = uri.path().to_string();
    if let Some(rest) = path.strip_prefix("/_ops/") {
        return poll_op(state, rest);
    }
    let ws_prefix = FakeArm::workspace_path();
    if path == ws_prefix && method == Method::GET {
        return reply(200, Some(workspace_json(WS)));
    }
    if path.ends_with(&format!("/providers/{PROVIDER}/workspaces")) && method == Method::GET {
        let all: Vec<Value> = [WS, "ws-two", "ws-three"]
            .iter()
            .map(|n| workspace_json(n))
            .collect();
        return page(shared, uri, &path, all, "value");
    }
    let Some(rest) = path.strip_prefix(&format!("{ws_prefix}/computes")) else {
        if path.starts_with(&format!(
            "/subscriptions/{SUB}/resourceGroups/{RG}/providers/{PROVIDER}/workspaces/"
        )) {
            return error(
                404,
                "ResourceNotFound",
                "The Resource 'Microsoft.MachineLearningServices/workspaces' was not found.",
            );
        }
        return error(404, "NotFound", &format!("no route for {path}"));
    };
    let parts: Vec<&str> = rest
        .trim_start_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    match (method.clone(), parts.as_slice()) {
        (Method::GET, []) => {
            let all: Vec<Value> = state.computes.values().cloned().collect();
            page(shared, uri, &path, all, "value")
        }
        (Method::GET, [name]) => get_compute(state, name),
        (Method::PUT, [name]) => put_compute(state, shared, name, body),
        (Method::PATCH, [name]) => patch_compute(state, shared, name, body),
        (Method::DELETE, [name]) => delete_compute(state, shared, uri, name, body),
        (Method::POST, [name, action @ ("start" | "stop" | "restart")]) => {
            power(state, shared, name, action, body)
        }
        (Method::POST | Method::GET, [name, "listNodes"]) => {
            list_nodes(state, shared, uri, &path, name)
        }
        (Method::POST, [name, "listKeys"]) => list_keys(state, name),
        _ => error(404, "NotFound", &format!("no route for {method} {path}")),
    }
}

fn workspace_json(name: &str) -> Value {
    json!({
        "id": format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/{PROVIDER}/workspaces/{name}"),
        "name": name,
        "type": format!("{PROVIDER}/workspaces"),
        "location": "westeurope",
        "properties": {"friendlyName": name, "provisioningState": "Succeeded"},
    })
}

/// Lists come 2 per page; `nextLink` carries a stale api-version the client must replace.
fn page(shared: &Shared, uri: &Uri, path: &str, all: Vec<Value>, key: &str) -> Reply {
    let skip: usize = query_param(uri, "$skip")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let items: Vec<Value> = all.iter().skip(skip).take(2).cloned().collect();
    let mut body = json!({ key: items });
    if skip + 2 < all.len() {
        body["nextLink"] = json!(format!(
            "{}{path}?api-version=2000-01-01&$skip={}",
            shared.base,
            skip + 2
        ));
    }
    reply(200, Some(body))
}

fn not_found(name: &str) -> Reply {
    error(
        404,
        "ResourceNotFound",
        &format!(
            "The Resource '{PROVIDER}/workspaces/{WS}/computes/{name}' under resource group '{RG}' was not found."
        ),
    )
}

fn get_compute(state: &mut State, name: &str) -> Reply {
    if let Some(left) = state.settling.get_mut(name) {
        if *left > 0 {
            *left -= 1;
        } else {
            state.settling.remove(name);
            if let Some(c) = state.computes.get_mut(name) {
                finish_provisioning(c);
            }
        }
    }
    match state.computes.get(name) {
        Some(c) => reply(200, Some(c.clone())),
        None => not_found(name),
    }
}

fn validate(state: &mut State, model: &str, body: &Bytes) -> Result<Value, Reply> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        state
            .violations
            .push(format!("{model}: body is not JSON: {e}"));
        error(400, "InvalidRequestContent", "body is not JSON")
    })?;
    let errors = schema::violations(&format!("{model}Request"), &value);
    if !errors.is_empty() {
        let message = errors.join("; ");
        state.violations.push(format!("{model}: {message}"));
        return Err(error(400, "InvalidRequestContent", &message));
    }
    Ok(value)
}

fn require_empty(state: &mut State, what: &str, body: &Bytes) {
    if !body.is_empty() {
        state.violations.push(format!("{what}: unexpected body"));
    }
}

fn new_op(state: &mut State, shared: &Shared, compute: &str, kind: OpKind) -> String {
    state.next_op += 1;
    let id = format!("op{}", state.next_op);
    state.ops.insert(
        id.clone(),
        Op {
            compute: compute.to_string(),
            kind,
            polls_left: shared.options.polls,
            done: false,
            failed: false,
        },
    );
    id
}

fn op_url(shared: &Shared, id: &str, suffix: &str) -> String {
    format!(
        "{}/_ops/{id}{suffix}?api-version={API_VERSION}",
        shared.base
    )
}

fn put_compute(state: &mut State, shared: &Shared, name: &str, body: &Bytes) -> Reply {
    let request = match validate(state, "ComputeResource", body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(existing) = state.computes.get_mut(name) {
        // An update (or a retried create): never counted as a creation.
        for key in ["identity", "tags"] {
            if let Some(v) = request.get(key) {
                existing[key] = v.clone();
            }
        }
        return reply(200, Some(existing.clone()));
    }
    *state.creations.entry(name.to_string()).or_default() += 1;
    let kind = request
        .pointer("/properties/computeType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut resource = compute_envelope(name, &kind);
    let mut props = request["properties"].clone();
    split_secrets(state, name, &mut props);
    merge(&mut resource["properties"], &props);
    for key in ["tags", "identity", "location"] {
        if let Some(v) = request.get(key) {
            resource[key] = v.clone();
        }
    }
    let attached = !matches!(
        kind.as_str(),
        "AmlCompute" | "ComputeInstance" | "AKS" | "DataFactory"
    ) || (kind == "AKS" && request.pointer("/properties/resourceId").is_some());
    resource["properties"]["isAttachedCompute"] = json!(attached);
    resource["properties"]["provisioningState"] = json!("Creating");
    state.computes.insert(name.to_string(), resource.clone());
    state
        .settling
        .insert(name.to_string(), shared.options.polls);
    if !shared.options.lro_headers {
        return reply(201, Some(resource)).header("Retry-After", "0");
    }
    let id = new_op(state, shared, name, OpKind::Provision);
    reply(201, Some(resource))
        .header("Azure-AsyncOperation", op_url(shared, &id, ""))
        .header("Retry-After", "0")
}

fn split_secrets(state: &mut State, name: &str, props: &mut Value) {
    let Some(inner) = props.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    let mut secrets = serde_json::Map::new();
    for key in ["administratorAccount", "databricksAccessToken"] {
        if let Some(v) = inner.remove(key) {
            secrets.insert(key.to_string(), v);
        }
    }
    // Like the service, never echo an AKS cluster's own TLS key.
    if let Some(ssl) = inner
        .get_mut("sslConfiguration")
        .and_then(Value::as_object_mut)
        && let Some(key) = ssl.remove("key")
    {
        secrets.insert("sslKey".into(), key);
    }
    if let Some(creds) = inner
        .get_mut("userAccountCredentials")
        .and_then(Value::as_object_mut)
        && let Some(pw) = creds.remove("adminUserPassword")
    {
        secrets.insert("adminUserPassword".into(), pw);
    }
    state
        .secrets
        .insert(name.to_string(), Value::Object(secrets));
}

fn finish_provisioning(c: &mut Value) {
    let failed = c
        .pointer("/properties/properties/vmSize")
        .and_then(Value::as_str)
        == Some("FAIL_SIZE");
    c["properties"]["provisioningState"] = json!(if failed { "Failed" } else { "Succeeded" });
    if c.pointer("/properties/computeType").and_then(Value::as_str) == Some("ComputeInstance") {
        c["properties"]["properties"]["state"] = json!("Running");
    }
    if c.pointer("/properties/computeType").and_then(Value::as_str) == Some("AmlCompute") {
        c["properties"]["properties"]["currentNodeCount"] = json!(0);
    }
}

fn patch_compute(state: &mut State, shared: &Shared, name: &str, body: &Bytes) -> Reply {
    let request = match validate(state, "ClusterUpdateParameters", body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(c) = state.computes.get_mut(name) else {
        return not_found(name);
    };
    if let Some(scale) = request.pointer("/properties/properties/scaleSettings") {
        c["properties"]["properties"]["scaleSettings"] = scale.clone();
    }
    c["properties"]["provisioningState"] = json!("Updating");
    let resource = c.clone();
    let id = new_op(state, shared, name, OpKind::Update);
    reply(200, Some(resource))
        .header("Azure-AsyncOperation", op_url(shared, &id, ""))
        .header("Location", op_url(shared, &id, "/result"))
        .header("Retry-After", "0")
}

fn delete_compute(
    state: &mut State,
    shared: &Shared,
    uri: &Uri,
    name: &str,
    body: &Bytes,
) -> Reply {
    require_empty(state, "Compute_Delete", body);
    let action = query_param(uri, "underlyingResourceAction").unwrap_or_default();
    if action != "Delete" && action != "Detach" {
        state.violations.push(format!(
            "DELETE {name}: underlyingResourceAction={action:?}"
        ));
        return error(
            400,
            "BadRequest",
            "underlyingResourceAction must be Delete or Detach",
        );
    }
    let Some(c) = state.computes.get_mut(name) else {
        return reply(204, None);
    };
    c["properties"]["provisioningState"] = json!("Deleting");
    let id = new_op(state, shared, name, OpKind::Remove { action });
    reply(202, None)
        .header("Azure-AsyncOperation", op_url(shared, &id, ""))
        .header("Location", op_url(shared, &id, "/result"))
        .header("Retry-After", "0")
}

fn power(state: &mut State, shared: &Shared, name: &str, action: &str, body: &Bytes) -> Reply {
    require_empty(state, "Compute_Start/Stop/Restart", body);
    let Some(c) = state.computes.get_mut(name) else {
        return not_found(name);
    };
    if c.pointer("/properties/computeType").and_then(Value::as_str) != Some("ComputeInstance") {
        return error(
            400,
            "BadRequest",
            &format!("{action} is only supported for ComputeInstance"),
        );
    }
    let transitional = match action {
        "start" => "Starting",
        "stop" => "Stopping",
        _ => "Restarting",
    };
    c["properties"]["properties"]["state"] = json!(transitional);
    let id = new_op(
        state,
        shared,
        name,
        OpKind::Power {
            action: action.to_string(),
        },
    );
    reply(202, None)
        .header("Location", op_url(shared, &id, "/result"))
        .header("Retry-After", "0")
}

fn poll_op(state: &mut State, rest: &str) -> Reply {
    let (id, is_location) = match rest.strip_suffix("/result") {
        Some(id) => (id.to_string(), true),
        None => (rest.to_string(), false),
    };
    let Some(op) = state.ops.get_mut(&id) else {
        return error(404, "NotFound", "no such operation");
    };
    if op.polls_left > 0 {
        op.polls_left -= 1;
        return if is_location {
            reply(202, None)
                .header("Location", format!("/_ops/{id}/result"))
                .header("Retry-After", "0")
        } else {
            reply(200, Some(json!({"id": id, "status": "InProgress"})))
        };
    }
    if !op.done {
        op.done = true;
        let compute = op.compute.clone();
        let kind = std::mem::replace(&mut op.kind, OpKind::Update);
        let failed = complete(state, &compute, kind);
        if let Some(op) = state.ops.get_mut(&id) {
            op.failed = failed;
        }
    }
    let failed = state.ops.get(&id).map(|o| o.failed).unwrap_or(false);
    if is_location {
        return reply(200, None);
    }
    if failed {
        return reply(
            200,
            Some(json!({"id": id, "status": "Failed",
                "error": {"code": "ResourceOperationFailure", "message": "The VM size FAIL_SIZE is not available."}})),
        );
    }
    reply(200, Some(json!({"id": id, "status": "Succeeded"})))
}

/// Apply a finished operation; true when it failed.
fn complete(state: &mut State, name: &str, kind: OpKind) -> bool {
    match kind {
        OpKind::Provision | OpKind::Update => {
            state.settling.remove(name);
            let Some(c) = state.computes.get_mut(name) else {
                return false;
            };
            finish_provisioning(c);
            c["properties"]["provisioningState"] == "Failed"
        }
        OpKind::Remove { action } => {
            if state.computes.remove(name).is_some() {
                state.removals.push((name.to_string(), action));
            }
            false
        }
        OpKind::Power { action } => {
            if let Some(c) = state.computes.get_mut(name) {
                let final_state = if action == "stop" {
                    "Stopped"
                } else {
                    "Running"
                };
                c["properties"]["properties"]["state"] = json!(final_state);
            }
            false
        }
    }
}

fn list_nodes(state: &mut State, shared: &Shared, uri: &Uri, path: &str, name: &str) -> Reply {
    let Some(c) = state.computes.get(name) else {
        return not_found(name);
    };
    if c.pointer("/properties/computeType").and_then(Value::as_str) != Some("AmlCompute") {
        return error(
            400,
            "BadRequest",
            "listNodes is only supported for AmlCompute",
        );
    }
    let nodes: Vec<Value> = (1..=3)
        .map(|i| json!({"nodeId": format!("tvm-{i}"), "privateIpAddress": format!("10.0.0.{i}"),
                        "publicIpAddress": format!("20.0.0.{i}"), "port": 50000 + i, "nodeState": "idle"}))
        .collect();
    page(shared, uri, path, nodes, "nodes")
}

fn list_keys(state: &mut State, name: &str) -> Reply {
    let Some(c) = state.computes.get(name) else {
        return not_found(name);
    };
    let kind = c
        .pointer("/properties/computeType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut body = json!({"computeType": kind});
    if let Some(Value::Object(secrets)) = state.secrets.get(name) {
        for (k, v) in secrets {
            body[k] = v.clone();
        }
    }
    reply(200, Some(body))
}
