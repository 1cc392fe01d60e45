//! An MLflow-compatible tracking endpoint on 127.0.0.1, so unmodified scripts
//! calling `mlflow.log_metric/log_param/set_tag/log_artifact` record into the
//! local store while they run.
//!
//! Serves the REST subset the MLflow client uses (`/api/2.0/mlflow/…`) with
//! MLflow's JSON conventions and error codes. Every request needs the bearer
//! token of a registered run (`MLFLOW_TRACKING_TOKEN`); a token may write only
//! to its own run and to runs the script creates under it. One server serves
//! many runs at once (the sweep driver registers each child).

mod logged_models;
mod registry;

use super::mlflow_search;
use super::runner::MetricHook;
use super::store::{MetricPoint, NewRun, RunRecord, RunStatus, Store, StoreError, now_ms};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Why the tracking server could not start.
#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    #[error("cannot listen on 127.0.0.1 for the tracking endpoint: {0}")]
    Bind(std::io::Error),
    #[error("cannot start the tracking endpoint's thread: {0}")]
    Start(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a token may do.
struct Grant {
    run_id: String,
    on_metric: Option<MetricHook>,
}

struct Shared {
    root: PathBuf,
    store: Arc<Mutex<Store>>,
    grants: Mutex<HashMap<String, Arc<Grant>>>,
}

/// A running tracking endpoint. Dropping it without `shutdown` also stops it.
pub struct TrackingServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// Fires when the server's thread has finished serving.
    done: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl TrackingServer {
    /// Bind a random loopback port and serve the workspace at `root`.
    pub async fn start(root: &Path) -> Result<TrackingServer, TrackingError> {
        let store = Arc::new(Mutex::new(Store::open(root)?));
        Self::start_with_store(root, store).await
    }

    /// [`TrackingServer::start`] through a store connection the caller shares
    /// (a run or sweep process then opens the database once).
    pub async fn start_with_store(
        root: &Path,
        store: Arc<Mutex<Store>>,
    ) -> Result<TrackingServer, TrackingError> {
        let root = &std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let shared = Arc::new(Shared {
            root: root.clone(),
            store,
            grants: Mutex::new(HashMap::new()),
        });
        let listener =
            std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(TrackingError::Bind)?;
        listener
            .set_nonblocking(true)
            .map_err(TrackingError::Bind)?;
        let addr = listener.local_addr().map_err(TrackingError::Bind)?;
        let app = Router::new()
            .route("/api/2.0/mlflow/{*endpoint}", axum::routing::any(handle))
            .route(
                "/ajax-api/2.0/mlflow/{*endpoint}",
                axum::routing::any(handle),
            )
            .fallback(|| async {
                mlflow_error(
                    StatusCode::NOT_FOUND,
                    "ENDPOINT_NOT_FOUND",
                    "no such endpoint",
                )
            })
            // axum's 2 MiB default refused a batch of long CJK tags with a
            // plain-text 413; MLflow's own limits (per value) apply instead.
            .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BYTES))
            .with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (finished, done) = tokio::sync::oneshot::channel::<()>();
        // A thread of its own: a script's MLflow call is answered (and a
        // sweep's policy decides) even while the caller's single-threaded
        // runtime is busy preparing the next child or fitting a GP.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(TrackingError::Start)?;
        std::thread::Builder::new()
            .name("azml-tracking".into())
            .spawn(move || {
                runtime.block_on(async move {
                    if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                        let _ = axum::serve(listener, app)
                            .with_graceful_shutdown(async {
                                let _ = stopped.await;
                            })
                            .await;
                    }
                });
                let _ = finished.send(());
            })
            .map_err(TrackingError::Start)?;
        Ok(TrackingServer {
            addr,
            shared,
            stop: Some(stop),
            done: Some(done),
        })
    }

    /// `http://127.0.0.1:PORT`, the value of `MLFLOW_TRACKING_URI` for local scripts.
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Allow a run's script to track; returns its bearer token. `on_metric`
    /// fires after each stored metric value of the run (or runs it creates).
    pub fn register_run(&self, run_id: &str, on_metric: Option<MetricHook>) -> String {
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let grant = Arc::new(Grant {
            run_id: run_id.into(),
            on_metric,
        });
        lock(&self.shared.grants).insert(token.clone(), grant);
        token
    }

    /// Revoke a token (the run ended).
    pub fn unregister(&self, token: &str) {
        lock(&self.shared.grants).remove(token);
    }

    /// Stop serving and wait for in-flight requests.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

impl Drop for TrackingServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The environment a script needs to track into `run` through a server at `uri`.
pub fn mlflow_env(
    uri: &str,
    run: &RunRecord,
    token: &str,
    root: &Path,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("MLFLOW_TRACKING_URI".into(), uri.into()),
        ("MLFLOW_TRACKING_TOKEN".into(), token.into()),
        ("MLFLOW_RUN_ID".into(), run.run_id.clone()),
        // The client would print "View run at <server>/#/…": this server has no UI.
        (
            "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT".into(),
            "true".into(),
        ),
        ("MLFLOW_EXPERIMENT_ID".into(), run.experiment_id.to_string()),
        ("MLFLOW_EXPERIMENT_NAME".into(), run.experiment_name.clone()),
        (
            "MLFLOW_ARTIFACT_URI".into(),
            artifact_uri(root, &run.run_id),
        ),
    ])
}

/// Run property naming where the run's artifacts go when not in the local run
/// folder (set by the SSH launcher: the run's `outputs/` on the host).
pub const ARTIFACT_URI_PROPERTY: &str = "azml.artifactUri";

/// The run's artifact URI: its [`ARTIFACT_URI_PROPERTY`], else the local `outputs/`.
fn run_artifact_uri(root: &Path, run: &RunRecord) -> String {
    match run
        .properties
        .get(ARTIFACT_URI_PROPERTY)
        .and_then(Value::as_str)
    {
        Some(uri) => uri.to_string(),
        None => artifact_uri(root, &run.run_id),
    }
}

/// `file://…/runs/<id>/outputs`: `mlflow.log_artifact` writes there, v1's `./outputs`.
pub fn artifact_uri(root: &Path, run_id: &str) -> String {
    let dir = super::store::run_dir(root, run_id).join("outputs");
    format!("file://{}", dir.display())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---- request handling ------------------------------------------------------

/// An MLflow-style failure: HTTP status + `error_code` + message.
struct ApiError(StatusCode, &'static str, String);

type ApiResult = Result<Value, ApiError>;

fn mlflow_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error_code": code, "message": message})),
    )
        .into_response()
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError(
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
        message.into(),
    )
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
        message.into(),
    )
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::RunNotFound(id) => not_found(format!("Run '{id}' not found")),
            StoreError::ExperimentNotFound(n) => not_found(format!("Experiment '{n}' not found")),
            StoreError::ParamConflict { .. } => invalid(e.to_string()),
            other => ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                other.to_string(),
            ),
        }
    }
}

/// One request's inputs, merged: query string for GET, JSON body otherwise.
struct Call<'a> {
    shared: &'a Shared,
    grant: Arc<Grant>,
    args: Map<String, Value>,
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    UrlPath(endpoint): UrlPath<String>,
    method: Method,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    tracing::debug!(%method, endpoint, "tracking request");
    let Some(grant) = authorize(&shared, &headers) else {
        return mlflow_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "a valid bearer token (MLFLOW_TRACKING_TOKEN) is required",
        );
    };
    let mut args: Map<String, Value> = query
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    if method != Method::GET && !body.is_empty() {
        match parse_lenient_json(&body) {
            Some(Value::Object(map)) => args.extend(map),
            _ => {
                return mlflow_error(
                    StatusCode::BAD_REQUEST,
                    "MALFORMED_REQUEST",
                    "the request body is not a JSON object",
                );
            }
        }
    }
    let call = Call {
        shared: &shared,
        grant,
        args,
    };
    match route(&call, &method, &endpoint) {
        Ok(value) => axum::Json(value).into_response(),
        Err(ApiError(status, code, message)) => {
            tracing::debug!(%status, code, message, "tracking request refused");
            mlflow_error(status, code, &message)
        }
    }
}

fn authorize(shared: &Shared, headers: &HeaderMap) -> Option<Arc<Grant>> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    lock(&shared.grants).get(token.trim()).cloned()
}

fn route(call: &Call<'_>, method: &Method, endpoint: &str) -> ApiResult {
    let get = method == Method::GET;
    match (get, endpoint) {
        (true, "experiments/get-by-name") => call.experiment_by_name(),
        (true, "experiments/get") => call.experiment_by_id(),
        (false, "experiments/create") => call.create_experiment(),
        (_, "experiments/search") => call.search_experiments(),
        (false, "experiments/set-experiment-tag") => call.set_experiment_tag(),
        (false, "experiments/delete-experiment-tag") => call.delete_experiment_tag(),
        (false, "experiments/update") => call.rename_experiment(),
        (false, "experiments/delete") => call.delete_experiment(true),
        (false, "experiments/restore") => call.delete_experiment(false),
        (false, "runs/create") => call.create_run(),
        (true, "runs/get") => call.get_run(),
        (false, "runs/update") => call.update_run(),
        (false, "runs/delete") => call.delete_run(),
        (false, "runs/restore") => call.restore_run(),
        (false, "runs/log-metric") => call.log_metric(),
        (false, "runs/log-parameter") => call.log_param(),
        (false, "runs/set-tag") => call.set_tag(),
        (false, "runs/delete-tag") => call.delete_tag(),
        (false, "runs/log-batch") => call.log_batch(),
        (false, "runs/search") => call.search_runs(),
        (true, "metrics/get-history") => call.metric_history(),
        (false, "runs/log-inputs") => call.log_inputs(),
        (false, "runs/outputs") => call.log_outputs(),
        (false, "runs/log-model") => call.log_model_history(),
        _ if endpoint == "logged-models" || endpoint.starts_with("logged-models/") => {
            logged_models::route(call, method, endpoint)
        }
        _ if endpoint.starts_with("registered-models/")
            || endpoint.starts_with("model-versions/") =>
        {
            registry::route(call, method, endpoint)
        }
        _ => Err(ApiError(
            StatusCode::NOT_FOUND,
            "ENDPOINT_NOT_FOUND",
            format!("{method} /api/2.0/mlflow/{endpoint} is not supported by azml"),
        )),
    }
}

impl Call<'_> {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        lock(&self.shared.store)
    }

    fn str_arg(&self, name: &str) -> Result<String, ApiError> {
        match self.args.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(invalid(format!(
                "Missing value for required parameter '{name}'"
            ))),
        }
    }

    fn opt_str(&self, name: &str) -> Option<String> {
        self.str_arg(name).ok()
    }

    fn run_id_arg(&self) -> Result<String, ApiError> {
        self.str_arg("run_id").or_else(|_| self.str_arg("run_uuid"))
    }

    /// The run, if this token may write to it (its own run or one it created)
    /// and it is not deleted: MLflow refuses to log to a deleted run.
    fn writable_run(&self) -> Result<RunRecord, ApiError> {
        let run = self.check_writable(&self.run_id_arg()?)?;
        if run.deleted_ms.is_some() {
            return Err(invalid(format!(
                "The run {} must be in the 'active' state. Current state is deleted.",
                run.run_id
            )));
        }
        Ok(run)
    }

    /// Run `run_id`, if this token may write to it.
    /// A token may write to its own run and to every run below it (runs a
    /// script nests, at any depth), never to a sibling or a parent.
    fn check_writable(&self, run_id: &str) -> Result<RunRecord, ApiError> {
        /// Deeper nesting than any script makes; bounds the walk up.
        const MAX_DEPTH: usize = 64;
        let store = self.store();
        let run = store.run(run_id)?;
        let mut current = Some(run.run_id.clone());
        for _ in 0..MAX_DEPTH {
            let Some(id) = current else { break };
            if id == self.grant.run_id {
                return Ok(run);
            }
            current = store.run(&id)?.parent_run_id;
        }
        Err(ApiError(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            format!("this token may not write to run '{run_id}'"),
        ))
    }

    fn experiment_json(&self, exp: &super::store::Experiment) -> Result<Value, ApiError> {
        let tags: Vec<Value> = self
            .store()
            .experiment_tags(exp.id)?
            .into_iter()
            .map(|(key, value)| json!({"key": key, "value": value}))
            .collect();
        Ok(json!({
            "experiment_id": exp.id.to_string(),
            "name": exp.name,
            "artifact_location": format!("file://{}", self.shared.root.join("runs").display()),
            "lifecycle_stage": if exp.deleted_ms.is_some() { "deleted" } else { "active" },
            "creation_time": exp.created_ms,
            "last_update_time": exp.created_ms,
            "tags": tags,
        }))
    }

    /// The experiment named by the `experiment_id` argument.
    fn experiment_arg(&self) -> Result<super::store::Experiment, ApiError> {
        let id = self.str_arg("experiment_id")?;
        id.parse::<i64>()
            .ok()
            .and_then(|n| self.store().experiment_by_id(n).ok().flatten())
            .ok_or_else(|| not_found(format!("No Experiment with id={id} exists")))
    }

    fn experiment_by_name(&self) -> ApiResult {
        let name = self.str_arg("experiment_name")?;
        let exp = self
            .store()
            .experiment_by_name(&name)?
            .ok_or_else(|| not_found(format!("Could not find experiment with name '{name}'")))?;
        Ok(json!({"experiment": self.experiment_json(&exp)?}))
    }

    fn experiment_by_id(&self) -> ApiResult {
        let exp = self.experiment_arg()?;
        Ok(json!({"experiment": self.experiment_json(&exp)?}))
    }

    /// `experiments/update`: MLflow's `rename_experiment` (its runs follow).
    fn rename_experiment(&self) -> ApiResult {
        let exp = self.experiment_arg()?;
        let name = self.str_arg("new_name")?;
        crate::config::validate_experiment_name(&name)
            .map_err(|e| invalid(format!("Invalid experiment name: {e}")))?;
        if !self.store().rename_experiment(exp.id, &name)? {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "RESOURCE_ALREADY_EXISTS",
                format!("Experiment '{name}' already exists."),
            ));
        }
        Ok(json!({}))
    }

    /// `experiments/delete` (soft: searches skip it, its runs stay) and `restore`.
    fn delete_experiment(&self, delete: bool) -> ApiResult {
        let exp = self.experiment_arg()?;
        let stamp = delete.then(|| exp.deleted_ms.unwrap_or_else(now_ms));
        self.store().set_experiment_deleted(exp.id, stamp)?;
        Ok(json!({}))
    }

    fn set_experiment_tag(&self) -> ApiResult {
        let exp = self.experiment_arg()?;
        let (key, value) = tag(self.str_arg("key")?, self.str_arg("value")?)?;
        self.store().set_experiment_tag(exp.id, &key, &value)?;
        Ok(json!({}))
    }

    fn delete_experiment_tag(&self) -> ApiResult {
        let exp = self.experiment_arg()?;
        let key = self.str_arg("key")?;
        if !self.store().delete_experiment_tag(exp.id, &key)? {
            return Err(not_found(format!(
                "No tag with name: {key} in experiment with id {}",
                exp.id
            )));
        }
        Ok(json!({}))
    }

    fn create_experiment(&self) -> ApiResult {
        let name = self.str_arg("name")?;
        // Run ids and folders are made from the name, so it follows the rule
        // `-e` does (Azure ML's): `team/proj v2` or `../x` would not.
        crate::config::validate_experiment_name(&name)
            .map_err(|e| invalid(format!("Invalid experiment name: {e}")))?;
        let tags = self.checked_key_values("tags", tag)?;
        let store = self.store();
        let (exp, created) = store.ensure_experiment(&name)?;
        if !created {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "RESOURCE_ALREADY_EXISTS",
                format!("Experiment '{name}' already exists."),
            ));
        }
        for (key, value) in &tags {
            store.set_experiment_tag(exp.id, key, value)?;
        }
        Ok(json!({"experiment_id": exp.id.to_string()}))
    }

    /// `experiments/search`: MLflow's filter (`name`, `creation_time`,
    /// `tags.x` …), `order_by`, `max_results` and paging.
    fn search_experiments(&self) -> ApiResult {
        let filter =
            mlflow_search::parse_experiment_filter(&self.opt_str("filter").unwrap_or_default())
                .map_err(invalid)?;
        let order_by = self.order_by_arg();
        let view_type = ViewType::parse(self.args.get("view_type"))?;
        let all = self.store().list_experiments()?;
        let mut matched = Vec::new();
        for exp in all
            .iter()
            .filter(|e| view_type.shows(e.deleted_ms.is_some()))
        {
            let json = self.experiment_json(exp)?;
            let view = json!({
                "info": {
                    "name": json["name"],
                    "experiment_id": json["experiment_id"],
                    "creation_time": json["creation_time"],
                    "last_update_time": json["last_update_time"],
                },
                "data": {"tags": json["tags"]},
                "experiment": json,
            });
            if filter.matches(&view) {
                matched.push(view);
            }
        }
        mlflow_search::sort_experiments(&mut matched, &order_by).map_err(invalid)?;
        let (page, next) = self.page_of(matched, 1000);
        let experiments: Vec<Value> = page.into_iter().map(|v| v["experiment"].clone()).collect();
        Ok(page_response("experiments", experiments, next))
    }

    /// The `order_by` argument: a list of terms (or one, as a string).
    fn order_by_arg(&self) -> Vec<String> {
        self.string_list_arg("order_by")
    }

    /// A list-of-strings argument (a query string repeats it, or gives one).
    fn string_list_arg(&self, name: &str) -> Vec<String> {
        match self.args.get(name) {
            Some(Value::Array(terms)) => terms
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(term)) => vec![term.clone()],
            _ => Vec::new(),
        }
    }

    /// One page of `items` by the `max_results` and `page_token` arguments,
    /// and the token of the next page when there is one.
    fn page_of(&self, items: Vec<Value>, default_size: usize) -> (Vec<Value>, Option<String>) {
        let size = self
            .args
            .get("max_results")
            .and_then(number_of)
            .map_or(default_size, |n| n as usize)
            .max(1);
        let offset: usize = self
            .opt_str("page_token")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let total = items.len();
        let page = items.into_iter().skip(offset).take(size).collect();
        let next = (offset + size < total).then(|| (offset + size).to_string());
        (page, next)
    }

    fn run_json(&self, run: &RunRecord) -> Result<Value, ApiError> {
        let store = self.store();
        let metrics = store.latest_metrics(&run.run_id)?;
        let params = store.params(&run.run_id)?;
        // MLflow keeps the `mlflow.runName` tag equal to the run name (a run renamed
        // through runs/update included), and scripts filter on it. Parentage is
        // the `mlflow.parentRunId` tag there (`get_parent_run`, the UI's nesting),
        // also for the children azml makes (sweep trials).
        let mut tags = run.tags.clone();
        if let Some(name) = &run.display_name {
            tags.insert("mlflow.runName".into(), name.clone());
        }
        if let Some(parent) = &run.parent_run_id {
            tags.entry("mlflow.parentRunId".into())
                .or_insert_with(|| parent.clone());
        }
        let kv = |m: &BTreeMap<String, String>| -> Vec<Value> {
            m.iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect()
        };
        drop(store);
        let (inputs, outputs) = self.run_io_json(&run.run_id)?;
        Ok(json!({
            "info": self.run_info(run),
            "data": {
                "metrics": metrics.iter().map(metric_json).collect::<Vec<_>>(),
                "params": kv(&params),
                "tags": kv(&tags),
            },
            "inputs": inputs,
            "outputs": outputs,
        }))
    }

    fn run_info(&self, run: &RunRecord) -> Value {
        let mut info = json!({
            "run_id": run.run_id,
            "run_uuid": run.run_id,
            "run_name": run.display_name.clone().unwrap_or_else(|| run.run_id.clone()),
            "experiment_id": run.experiment_id.to_string(),
            // The client's own `mlflow.user` (from getpass), else the
            // environment's: `$USER` is unset in many containers.
            "user_id": run.tags.get("mlflow.user").cloned()
                .or_else(|| std::env::var("USER").ok())
                .or_else(|| std::env::var("LOGNAME").ok())
                .unwrap_or_default(),
            "status": mlflow_status(run.status),
            "artifact_uri": run_artifact_uri(&self.shared.root, run),
            "lifecycle_stage": lifecycle_stage(run),
        });
        if let Some(start) = run.start_ms {
            info["start_time"] = json!(start);
        }
        if let Some(end) = run.end_ms {
            info["end_time"] = json!(end);
        }
        info
    }

    /// `runs/delete`: MLflow's soft delete. The run and everything it logged
    /// stay; MLflow's searches skip it until `runs/restore`.
    fn delete_run(&self) -> ApiResult {
        let run = self.check_writable(&self.run_id_arg()?)?;
        if run.deleted_ms.is_none() {
            self.store().set_run_deleted(&run.run_id, Some(now_ms()))?;
        }
        Ok(json!({}))
    }

    fn restore_run(&self) -> ApiResult {
        let run = self.check_writable(&self.run_id_arg()?)?;
        self.store().set_run_deleted(&run.run_id, None)?;
        Ok(json!({}))
    }

    fn get_run(&self) -> ApiResult {
        let run_id = self.run_id_arg()?;
        let run = self.store().run(&run_id)?;
        Ok(json!({"run": self.run_json(&run)?}))
    }

    /// A script's `mlflow.start_run()` without `MLFLOW_RUN_ID` (or a nested
    /// run) becomes a child run: of the run its `mlflow.parentRunId` tag names
    /// when the token may write there (nesting keeps its shape), else of the
    /// azml run that owns the token.
    fn create_run(&self) -> ApiResult {
        let tags = self.checked_key_values("tags", tag)?;
        let nested_in = tags
            .iter()
            .find(|(k, _)| k == "mlflow.parentRunId")
            .and_then(|(_, parent)| self.check_writable(parent).ok());
        let parent = match nested_in {
            Some(run) => run,
            None => self.store().run(&self.grant.run_id)?,
        };
        let experiment = match self.opt_str("experiment_id") {
            Some(_) => {
                let exp = self.experiment_arg()?;
                if exp.deleted_ms.is_some() {
                    return Err(invalid(format!(
                        "The experiment {} must be in the 'active' state. Current state is deleted.",
                        exp.id
                    )));
                }
                exp.name
            }
            None => parent.experiment_name.clone(),
        };
        let new = NewRun {
            run_id: super::new_run_id(&experiment),
            experiment,
            parent_run_id: Some(parent.run_id.clone()),
            run_type: "mlflow".into(),
            target: parent.target.clone(),
            display_name: self.opt_str("run_name"),
            properties: Map::new(),
            tags: tags.into_iter().collect(),
        };
        let store = self.store();
        let created = store.create_run(&new)?;
        store.mark_running(&created.run_id, std::process::id())?;
        // A client may date the run itself (`create_run(start_time=…)`).
        if let Some(start) = self
            .opt_str("start_time")
            .and_then(|t| t.parse::<i64>().ok())
        {
            store.set_run_times(&created.run_id, Some(start), None)?;
        }
        let run = store.run(&created.run_id)?;
        drop(store);
        Ok(json!({"run": self.run_json(&run)?}))
    }

    /// Scripts report RUNNING/FINISHED for the run azml supervises; azml decides
    /// that run's status from the exit code, so only runs the script created
    /// take the status it sends.
    fn update_run(&self) -> ApiResult {
        let run = self.writable_run()?;
        let store = self.store();
        if let Some(name) = self.opt_str("run_name") {
            store.set_display_name(&run.run_id, &name)?;
        }
        if run.run_id != self.grant.run_id
            && let Some(status) = self.opt_str("status").and_then(|s| status_from_mlflow(&s))
        {
            let end = super::store::RunEnd {
                status,
                exit_code: None,
                error: None,
            };
            // MLflow lets a client change an ended run's status (set_terminated
            // on a FINISHED child marks it FAILED); finish_run keeps the first end.
            if !store.finish_run(&run.run_id, &end)? && status.is_terminal() {
                store.restate_ended_run(&run.run_id, status)?;
            }
            // `set_terminated(…, end_time=…)` dates the end itself.
            if status.is_terminal()
                && let Some(end) = self.opt_str("end_time").and_then(|t| t.parse::<i64>().ok())
            {
                store.set_run_times(&run.run_id, None, Some(end))?;
            }
        }
        let run = store.run(&run.run_id)?;
        drop(store);
        Ok(json!({"run_info": self.run_info(&run)}))
    }

    fn metric_from(&self, m: &Map<String, Value>) -> Result<MetricPoint, ApiError> {
        let name = match m.get("key") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(invalid("Missing value for required parameter 'key'")),
        };
        check_key("Metric name", &name)?;
        let value = m
            .get("value")
            .and_then(number_of)
            .ok_or_else(|| invalid(format!("Got invalid value for metric '{name}'")))?;
        let timestamp_ms = integer_field(m, "timestamp", &name)?.unwrap_or_else(now_ms);
        let step = integer_field(m, "step", &name)?.unwrap_or(0);
        Ok(MetricPoint {
            name,
            value,
            step,
            timestamp_ms,
        })
    }

    /// Stores the points; only the token's own run feeds the hook (a sweep's
    /// policy and ranking): a nested run's metrics are not the trial's.
    fn store_metrics(&self, run_id: &str, points: &[MetricPoint]) -> Result<(), ApiError> {
        self.store().log_metrics(run_id, points)?;
        if run_id != self.grant.run_id {
            return Ok(());
        }
        if let Some(hook) = &self.grant.on_metric {
            for p in points {
                hook(run_id, p);
            }
        }
        Ok(())
    }

    fn log_metric(&self) -> ApiResult {
        let run = self.writable_run()?;
        let point = self.metric_from(&self.args)?;
        self.store_metrics(&run.run_id, std::slice::from_ref(&point))?;
        self.link_model_metrics(&run.run_id, &[(&self.args, &point)])?;
        Ok(json!({}))
    }

    fn log_param(&self) -> ApiResult {
        let run = self.writable_run()?;
        let (key, value) = param(self.str_arg("key")?, self.str_arg("value")?)?;
        log_param_over_sweep(&self.store(), &run, &key, &value)?;
        Ok(json!({}))
    }

    fn set_tag(&self) -> ApiResult {
        let run = self.writable_run()?;
        let (key, value) = tag(self.str_arg("key")?, self.str_arg("value")?)?;
        let store = self.store();
        store.set_tag(&run.run_id, &key, &value)?;
        if key == "mlflow.runName" {
            store.set_display_name(&run.run_id, &value)?;
        }
        Ok(json!({}))
    }

    fn delete_tag(&self) -> ApiResult {
        let run = self.writable_run()?;
        let key = self.str_arg("key")?;
        if !self.store().delete_tag(&run.run_id, &key)? {
            return Err(not_found(format!(
                "No tag with name: {key} in run with id {}",
                run.run_id
            )));
        }
        Ok(json!({}))
    }

    fn key_values(&self, field: &str) -> Result<Vec<(String, String)>, ApiError> {
        let Some(items) = self.args.get(field) else {
            return Ok(Vec::new());
        };
        let items = items
            .as_array()
            .ok_or_else(|| invalid(format!("'{field}' must be a list")))?;
        items
            .iter()
            .map(|item| {
                let key = item.get("key").and_then(Value::as_str);
                let value = item.get("value").map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                match (key, value) {
                    (Some(k), Some(v)) => Ok((k.to_string(), v)),
                    _ => Err(invalid(format!(
                        "each entry of '{field}' needs 'key' and 'value'"
                    ))),
                }
            })
            .collect()
    }

    /// `key_values(field)`, each pair checked (and cut) by `check`.
    fn checked_key_values(
        &self,
        field: &str,
        check: fn(String, String) -> Result<(String, String), ApiError>,
    ) -> Result<Vec<(String, String)>, ApiError> {
        self.key_values(field)?
            .into_iter()
            .map(|(k, v)| check(k, v))
            .collect()
    }

    fn log_batch(&self) -> ApiResult {
        let run = self.writable_run()?;
        let raw: Vec<&Map<String, Value>> = match self.args.get("metrics") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|m| {
                    m.as_object()
                        .ok_or_else(|| invalid("each metric must be an object"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("'metrics' must be a list")),
            None => Vec::new(),
        };
        let metrics = raw
            .iter()
            .map(|m| self.metric_from(m))
            .collect::<Result<Vec<_>, _>>()?;
        let params = self.checked_key_values("params", param)?;
        let tags = self.checked_key_values("tags", tag)?;
        {
            let store = self.store();
            for (k, v) in &params {
                log_param_over_sweep(&store, &run, k, v)?;
            }
            for (k, v) in &tags {
                store.set_tag(&run.run_id, k, v)?;
            }
        }
        self.store_metrics(&run.run_id, &metrics)?;
        let linked: Vec<_> = raw.iter().copied().zip(&metrics).collect();
        self.link_model_metrics(&run.run_id, &linked)?;
        Ok(json!({}))
    }

    fn metric_history(&self) -> ApiResult {
        let run_id = self.run_id_arg()?;
        let key = self.str_arg("metric_key")?;
        let store = self.store();
        store.run(&run_id)?;
        let history = store.metric_history(&run_id, &key)?;
        Ok(json!({"metrics": history.iter().map(metric_json).collect::<Vec<_>>()}))
    }

    fn search_runs(&self) -> ApiResult {
        // A list limits the search to those experiments (an empty one to
        // none, as MLflow); without one every experiment is searched.
        let experiment_ids: Option<Vec<i64>> = match self.args.get("experiment_ids") {
            Some(Value::Array(ids)) => Some(
                ids.iter()
                    .map(|v| {
                        number_of(v)
                            .filter(|n| n.fract() == 0.0)
                            .map(|n| n as i64)
                            .ok_or_else(|| invalid(format!("Invalid experiment id {v}")))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => None,
        };
        let filter = mlflow_search::parse_filter(&self.opt_str("filter").unwrap_or_default())
            .map_err(invalid)?;
        let order_by = self.order_by_arg();
        let view = ViewType::parse(self.args.get("run_view_type"))?;
        let runs = self.store().list_runs(&Default::default())?;
        let mut matched = Vec::new();
        for run in runs {
            if experiment_ids
                .as_ref()
                .is_some_and(|ids| !ids.contains(&run.experiment_id))
            {
                continue;
            }
            if !view.shows(run.deleted_ms.is_some()) {
                continue;
            }
            let json = self.run_json(&run)?;
            if filter.matches(&json) {
                matched.push(json);
            }
        }
        mlflow_search::sort_runs(&mut matched, &order_by).map_err(invalid)?;
        let (page, next) = self.page_of(matched, 1000);
        Ok(page_response("runs", page, next))
    }
}

/// MLflow's `log_param`, except that a value a sweep recorded for its trial
/// (a key of the run's `hyperparameters` tag) yields to the script's own:
/// a script logging `lr` as Python prints it (`1e-05`, not the sweep's
/// `0.00001`) must not fail its trial, and on Azure ML it would not.
fn log_param_over_sweep(
    store: &Store,
    run: &RunRecord,
    key: &str,
    value: &str,
) -> Result<(), ApiError> {
    match store.log_param(&run.run_id, key, value) {
        Err(StoreError::ParamConflict { .. }) if is_sweep_parameter(run, key) => {
            Ok(store.replace_param(&run.run_id, key, value)?)
        }
        other => Ok(other?),
    }
}

fn is_sweep_parameter(run: &RunRecord, key: &str) -> bool {
    run.tags
        .get("hyperparameters")
        .and_then(|text| serde_json::from_str::<Map<String, Value>>(text).ok())
        .is_some_and(|sampled| sampled.contains_key(key))
}

/// A search's answer: the page under `key`, and the next page's token if any.
fn page_response(key: &str, page: Vec<Value>, next: Option<String>) -> Value {
    let mut out = json!({ key: page });
    if let Some(token) = next {
        out["next_page_token"] = json!(token);
    }
    out
}

fn lifecycle_stage(run: &RunRecord) -> &'static str {
    if run.deleted_ms.is_some() {
        "deleted"
    } else {
        "active"
    }
}

/// MLflow's `ViewType` of a search: which lifecycle stages it returns.
/// Clients send the enum's name; its number (1, 2, 3) is taken too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ViewType {
    ActiveOnly,
    DeletedOnly,
    All,
}

impl ViewType {
    fn parse(value: Option<&Value>) -> Result<ViewType, ApiError> {
        let text = match value {
            None | Some(Value::Null) => return Ok(ViewType::ActiveOnly),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        match text.as_str() {
            "ACTIVE_ONLY" | "1" => Ok(ViewType::ActiveOnly),
            "DELETED_ONLY" | "2" => Ok(ViewType::DeletedOnly),
            "ALL" | "3" => Ok(ViewType::All),
            _ => Err(invalid(format!(
                "Invalid value {text} for parameter 'run_view_type' supplied; \
                 expected ACTIVE_ONLY, DELETED_ONLY or ALL"
            ))),
        }
    }

    fn shows(self, deleted: bool) -> bool {
        match self {
            ViewType::ActiveOnly => !deleted,
            ViewType::DeletedOnly => deleted,
            ViewType::All => true,
        }
    }
}

/// The largest request body taken: a log-batch of MLflow's maximum (1,000
/// metrics, 100 params of 6,000 and 100 tags of 8,000 characters, 4 bytes
/// each in UTF-8) is about 6 MiB.
const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// MLflow's limits (`mlflow.utils.validation`), so a script that logs here
/// also logs on a real MLflow server or Azure ML: keys up to 250 characters
/// of letters, digits and `_-. :/`, not a path that resolves to another name.
const MAX_KEY_LENGTH: usize = 250;
/// Longer param and tag values are cut to these lengths, as MLflow does by default.
const MAX_PARAM_VALUE_LENGTH: usize = 6000;
const MAX_TAG_VALUE_LENGTH: usize = 8000;

fn check_key(what: &str, key: &str) -> Result<(), ApiError> {
    let allowed = |c: char| c.is_alphanumeric() || "_-. :/".contains(c);
    if !key.chars().all(allowed) {
        return Err(invalid(format!(
            "Invalid value \"{key}\" for parameter 'key' supplied: Names may only contain \
             alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        )));
    }
    if key.starts_with('/')
        || key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(invalid(format!(
            "Invalid value \"{key}\" for parameter 'key' supplied: Names may be treated as files \
             in certain cases, and must not resolve to other names when treated as such."
        )));
    }
    if key.chars().count() > MAX_KEY_LENGTH {
        return Err(invalid(format!(
            "{what} '{}...' exceeds the maximum length of {MAX_KEY_LENGTH}",
            key.chars().take(100).collect::<String>()
        )));
    }
    Ok(())
}

fn truncated(value: String, limit: usize) -> String {
    match value.char_indices().nth(limit) {
        Some((cut, _)) => value[..cut].to_string(),
        None => value,
    }
}

fn param(key: String, value: String) -> Result<(String, String), ApiError> {
    check_key("Param key", &key)?;
    Ok((key, truncated(value, MAX_PARAM_VALUE_LENGTH)))
}

fn tag(key: String, value: String) -> Result<(String, String), ApiError> {
    check_key("Tag key", &key)?;
    Ok((key, truncated(value, MAX_TAG_VALUE_LENGTH)))
}

/// MLflow's run status names for v1's.
fn mlflow_status(status: RunStatus) -> &'static str {
    match status {
        RunStatus::NotStarted => "SCHEDULED",
        RunStatus::Running => "RUNNING",
        RunStatus::Completed => "FINISHED",
        RunStatus::Failed => "FAILED",
        RunStatus::Canceled => "KILLED",
    }
}

fn status_from_mlflow(status: &str) -> Option<RunStatus> {
    match status {
        "FINISHED" => Some(RunStatus::Completed),
        "FAILED" => Some(RunStatus::Failed),
        "KILLED" => Some(RunStatus::Canceled),
        _ => None,
    }
}

fn metric_json(p: &MetricPoint) -> Value {
    let value = if p.value.is_finite() {
        json!(p.value)
    } else if p.value.is_nan() {
        json!("NaN")
    } else if p.value > 0.0 {
        json!("Infinity")
    } else {
        json!("-Infinity")
    };
    json!({"key": p.name, "value": value, "timestamp": p.timestamp_ms, "step": p.step})
}

/// Numbers arrive as JSON numbers or (int64, NaN, Infinity) as strings.
/// A metric's `step`/`timestamp`: absent is `None`; an int64 (a number or
/// its text, as proto JSON writes it) is taken; anything else is a 400, as
/// MLflow refuses it, not a silent 0.
fn integer_field(
    m: &Map<String, Value>,
    field: &str,
    metric: &str,
) -> Result<Option<i64>, ApiError> {
    let value = match m.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let parsed = match value {
        // An integral float (`1.0`) is an integer to proto JSON too.
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed.map(Some).ok_or_else(|| {
        invalid(format!(
            "Invalid value {value} for parameter '{field}' of metric '{metric}': expected an integer"
        ))
    })
}

pub(super) fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            _ => s.parse().ok(),
        },
        _ => None,
    }
}

/// JSON as Python's `json.dumps` writes it: bare `NaN`/`Infinity` allowed
/// (they become strings, which [`number_of`] understands).
fn parse_lenient_json(body: &[u8]) -> Option<Value> {
    if let Ok(v) = serde_json::from_slice(body) {
        return Some(v);
    }
    let text = std::str::from_utf8(body).ok()?;
    serde_json::from_str(&quote_bare_non_finite(text)).ok()
}

fn quote_bare_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        let token = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t));
        match token {
            Some(t) => {
                out.push('"');
                out.push_str(t);
                out.push('"');
                rest = &rest[t.len()..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_style_nan_in_a_body_is_understood() {
        let v = parse_lenient_json(br#"{"key": "loss", "value": NaN, "name": "a NaN b"}"#).unwrap();
        assert!(number_of(&v["value"]).unwrap().is_nan());
        assert_eq!(v["name"], "a NaN b");
    }
}
