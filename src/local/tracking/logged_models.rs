//! MLflow 3's logged models (`mlflow.<flavor>.log_model` creates one, writes
//! its files to the model's `artifact_uri`, and links it to the run) and a
//! run's inputs and outputs (`runs/log-inputs`, `runs/outputs`).
//!
//! A model logged from a run keeps its files in that run's `outputs/`
//! (`outputs/models/<model_id>/artifacts`), so they stay with the run like
//! everything else the script produced; a model without a run goes under the
//! workspace's `models/`.

use super::{ApiError, ApiResult, Call, invalid, not_found};
use crate::local::mlflow_search;
use crate::local::store::now_ms;
use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Kinds of a run's recorded inputs and outputs, as the run JSON names them.
const DATASET_INPUTS: &str = "dataset_inputs";
const MODEL_INPUTS: &str = "model_inputs";
const MODEL_OUTPUTS: &str = "model_outputs";

/// `logged-models[/…]`: which call, by method and the rest of the path.
pub(super) fn route(call: &Call<'_>, method: &Method, endpoint: &str) -> ApiResult {
    let rest = endpoint.trim_start_matches("logged-models");
    let parts: Vec<&str> = rest.trim_start_matches('/').splitn(3, '/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("POST", [""]) => call.create_logged_model(),
        ("POST", ["search"]) => call.search_logged_models(),
        ("GET", [id]) => Ok(json!({"model": call.logged_model(id)?})),
        ("PATCH", [id]) => call.finalize_logged_model(id),
        ("DELETE", [id]) => call.delete_logged_model(id),
        ("POST", [id, "params"]) => call.log_logged_model_params(id),
        ("PATCH", [id, "tags"]) => call.set_logged_model_tags(id),
        ("DELETE", [id, "tags", key]) => call.delete_logged_model_tag(id, key),
        _ => Err(ApiError(
            StatusCode::NOT_FOUND,
            "ENDPOINT_NOT_FOUND",
            format!("{method} /api/2.0/mlflow/{endpoint} is not supported by azml"),
        )),
    }
}

/// `[{key, value}]` with `items`' keys set (an existing key replaced).
fn merge_key_values(list: &mut Value, items: &[(String, String)]) {
    let mut current: Vec<Value> = list.as_array().cloned().unwrap_or_default();
    for (key, value) in items {
        current.retain(|kv| kv["key"] != key.as_str());
        current.push(json!({"key": key, "value": value}));
    }
    *list = Value::Array(current);
}

/// The API's status names, and the short ones filters use (`status = 'READY'`).
fn model_status(text: &str) -> Option<(&'static str, &'static str)> {
    match text.trim_start_matches("LOGGED_MODEL_") {
        "PENDING" => Some(("LOGGED_MODEL_PENDING", "PENDING")),
        "READY" => Some(("LOGGED_MODEL_READY", "READY")),
        "UPLOAD_FAILED" | "FAILED" => Some(("LOGGED_MODEL_UPLOAD_FAILED", "FAILED")),
        _ => None,
    }
}

/// A model in the shape `mlflow_search` filters and sorts: attributes in
/// `info`, tags beside params and metrics in `data`.
fn search_view(model: &Value) -> Value {
    let info = &model["info"];
    let status = info["status"]
        .as_str()
        .and_then(model_status)
        .map_or("UNSPECIFIED", |(_, short)| short);
    json!({
        "info": {
            "name": info["name"],
            "model_id": info["model_id"],
            "model_type": info["model_type"],
            "status": status,
            "source_run_id": info["source_run_id"],
            "creation_timestamp": info["creation_timestamp_ms"],
            "creation_time": info["creation_timestamp_ms"],
            "last_updated_timestamp": info["last_updated_timestamp_ms"],
            "last_updated_time": info["last_updated_timestamp_ms"],
        },
        "data": {
            "params": model["data"]["params"],
            "metrics": model["data"]["metrics"],
            "tags": info["tags"],
        },
    })
}

impl Call<'_> {
    fn logged_model(&self, model_id: &str) -> Result<Value, ApiError> {
        self.store()
            .logged_model(model_id)?
            .ok_or_else(|| not_found(format!("Logged model with ID '{model_id}' not found.")))
    }

    /// Write a model back, bumping its update time; only the token's own run
    /// (or one it created) may change a model logged from a run.
    fn save_logged_model(&self, mut model: Value) -> Result<Value, ApiError> {
        if let Some(run_id) = model["info"]["source_run_id"]
            .as_str()
            .filter(|r| !r.is_empty())
        {
            self.check_writable(run_id)?;
        }
        model["info"]["last_updated_timestamp_ms"] = json!(now_ms());
        let info = &model["info"];
        let model_id = info["model_id"].as_str().unwrap_or_default();
        let experiment_id = info["experiment_id"]
            .as_str()
            .and_then(|e| e.parse::<i64>().ok())
            .unwrap_or_default();
        let created = info["creation_timestamp_ms"].as_i64().unwrap_or_default();
        self.store()
            .put_logged_model(model_id, experiment_id, created, &model)?;
        Ok(model)
    }

    /// MLflow 3 links a metric to a logged model (`log_metric(…, model_id=)`,
    /// or the active model): the model then carries it, and
    /// `search_logged_models("metrics.acc > 0.9")` finds it. The model keeps
    /// each key's latest value per dataset.
    pub(super) fn link_model_metrics(
        &self,
        run_id: &str,
        metrics: &[(&Map<String, Value>, &crate::local::store::MetricPoint)],
    ) -> Result<(), ApiError> {
        for (raw, point) in metrics {
            let Some(model_id) = raw
                .get("model_id")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
            else {
                continue;
            };
            // The value is the run's whatever the id names; an unknown model
            // links nothing rather than failing the metric already stored.
            let Some(mut model) = self.store().logged_model(model_id)? else {
                continue;
            };
            let mut entry = json!({
                "key": point.name,
                "value": super::metric_json(point)["value"],
                "timestamp": point.timestamp_ms,
                "step": point.step,
                "run_id": run_id,
                "model_id": model_id,
            });
            for field in ["dataset_name", "dataset_digest"] {
                if let Some(v) = raw.get(field).filter(|v| v.is_string()) {
                    entry[field] = v.clone();
                }
            }
            let same = |m: &Value| {
                m["key"] == entry["key"]
                    && m["dataset_name"] == entry["dataset_name"]
                    && m["dataset_digest"] == entry["dataset_digest"]
            };
            let mut list: Vec<Value> = model["data"]["metrics"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let newer = |m: &Value| {
                (m["step"].as_i64(), m["timestamp"].as_i64())
                    > (Some(point.step), Some(point.timestamp_ms))
            };
            if list.iter().any(|m| same(m) && newer(m)) {
                continue;
            }
            list.retain(|m| !same(m));
            list.push(entry);
            model["data"]["metrics"] = Value::Array(list);
            // Any run may score a model (an evaluation run), so no write check here.
            let experiment_id = model["info"]["experiment_id"]
                .as_str()
                .and_then(|e| e.parse::<i64>().ok())
                .unwrap_or_default();
            let created = model["info"]["creation_timestamp_ms"]
                .as_i64()
                .unwrap_or_default();
            self.store()
                .put_logged_model(model_id, experiment_id, created, &model)?;
        }
        Ok(())
    }

    fn create_logged_model(&self) -> ApiResult {
        let experiment_id = self.str_arg("experiment_id")?;
        let experiment = experiment_id
            .parse::<i64>()
            .ok()
            .and_then(|n| self.store().experiment_by_id(n).ok().flatten())
            .ok_or_else(|| not_found(format!("No Experiment with id={experiment_id} exists")))?;
        let source_run = self.opt_str("source_run_id").filter(|r| !r.is_empty());
        let model_id = format!("m-{}", uuid::Uuid::new_v4().simple());
        let artifact_dir = match &source_run {
            Some(run_id) => {
                let run = self.check_writable(run_id)?;
                format!(
                    "{}/models/{model_id}/artifacts",
                    super::run_artifact_uri(&self.shared.root, &run)
                )
            }
            None => format!(
                "file://{}",
                self.shared
                    .root
                    .join("models")
                    .join(&model_id)
                    .join("artifacts")
                    .display()
            ),
        };
        let name = self
            .opt_str("name")
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("model-{}", &model_id[2..10]));
        let now = now_ms();
        let mut model = json!({
            "info": {
                "model_id": model_id,
                "experiment_id": experiment.id.to_string(),
                "name": name,
                "creation_timestamp_ms": now,
                "last_updated_timestamp_ms": now,
                "artifact_uri": artifact_dir,
                "status": "LOGGED_MODEL_PENDING",
                "tags": [],
                "registrations": [],
            },
            "data": {"params": [], "metrics": []},
        });
        if let Some(model_type) = self.opt_str("model_type") {
            model["info"]["model_type"] = json!(model_type);
        }
        if let Some(run_id) = &source_run {
            model["info"]["source_run_id"] = json!(run_id);
        }
        merge_key_values(&mut model["info"]["tags"], &self.key_values("tags")?);
        merge_key_values(&mut model["data"]["params"], &self.key_values("params")?);
        Ok(json!({"model": self.save_logged_model(model)?}))
    }

    fn finalize_logged_model(&self, model_id: &str) -> ApiResult {
        let mut model = self.logged_model(model_id)?;
        let status = self.str_arg("status")?;
        let (status, _) = model_status(&status)
            .ok_or_else(|| invalid(format!("Invalid logged model status '{status}'")))?;
        model["info"]["status"] = json!(status);
        Ok(json!({"model": self.save_logged_model(model)?}))
    }

    fn delete_logged_model(&self, model_id: &str) -> ApiResult {
        let model = self.logged_model(model_id)?;
        if let Some(run_id) = model["info"]["source_run_id"].as_str() {
            self.check_writable(run_id)?;
        }
        self.store().delete_logged_model(model_id)?;
        Ok(json!({}))
    }

    fn log_logged_model_params(&self, model_id: &str) -> ApiResult {
        let mut model = self.logged_model(model_id)?;
        merge_key_values(&mut model["data"]["params"], &self.key_values("params")?);
        self.save_logged_model(model)?;
        Ok(json!({}))
    }

    fn set_logged_model_tags(&self, model_id: &str) -> ApiResult {
        let mut model = self.logged_model(model_id)?;
        merge_key_values(&mut model["info"]["tags"], &self.key_values("tags")?);
        self.save_logged_model(model)?;
        Ok(json!({}))
    }

    fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> ApiResult {
        let mut model = self.logged_model(model_id)?;
        let tags = model["info"]["tags"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !tags.iter().any(|t| t["key"] == key) {
            return Err(not_found(format!(
                "No tag with key '{key}' on logged model '{model_id}'"
            )));
        }
        model["info"]["tags"] =
            Value::Array(tags.into_iter().filter(|t| t["key"] != key).collect());
        self.save_logged_model(model)?;
        Ok(json!({}))
    }

    fn search_logged_models(&self) -> ApiResult {
        let experiment_ids: Vec<i64> = match self.args.get("experiment_ids") {
            Some(Value::Array(ids)) => ids
                .iter()
                .filter_map(|v| super::number_of(v).map(|n| n as i64))
                .collect(),
            _ => {
                return Err(invalid(
                    "Missing value for required parameter 'experiment_ids'",
                ));
            }
        };
        let filter = mlflow_search::parse_model_filter(&self.opt_str("filter").unwrap_or_default())
            .map_err(invalid)?;
        let order_by: Vec<(String, bool)> = match self.args.get("order_by") {
            Some(Value::Array(terms)) => terms
                .iter()
                .filter_map(|t| {
                    let field = t["field_name"].as_str()?.to_string();
                    Some((field, t["ascending"].as_bool().unwrap_or(true)))
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut by_id: HashMap<String, Value> = HashMap::new();
        let mut views = Vec::new();
        for model in self.store().logged_models(&experiment_ids)? {
            let view = search_view(&model);
            if filter.matches(&view) {
                let id = model["info"]["model_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                by_id.insert(id, model);
                views.push(view);
            }
        }
        mlflow_search::sort_models(&mut views, &order_by).map_err(invalid)?;
        let (page, next) = self.page_of(views, 100);
        let models: Vec<Value> = page
            .iter()
            .filter_map(|view| by_id.remove(view["info"]["model_id"].as_str()?))
            .collect();
        Ok(super::page_response("models", models, next))
    }

    /// `runs/log-inputs`: datasets (`{dataset, tags}`) and models (`{model_id}`).
    pub(super) fn log_inputs(&self) -> ApiResult {
        let run = self.writable_run()?;
        let store = self.store();
        for (field, kind) in [("datasets", DATASET_INPUTS), ("models", MODEL_INPUTS)] {
            for item in self.list_arg(field)? {
                store.add_run_io(&run.run_id, kind, &item)?;
            }
        }
        Ok(json!({}))
    }

    /// `runs/outputs`: models (`{model_id, step}`) the run produced.
    pub(super) fn log_outputs(&self) -> ApiResult {
        let run = self.writable_run()?;
        let store = self.store();
        for item in self.list_arg("models")? {
            store.add_run_io(&run.run_id, MODEL_OUTPUTS, &item)?;
        }
        Ok(json!({}))
    }

    /// `runs/log-model` (MLflow 2's model record): appended to the run's
    /// `mlflow.log-model.history` tag, as MLflow's own stores do.
    pub(super) fn log_model_history(&self) -> ApiResult {
        let run = self.writable_run()?;
        let model_json = self.str_arg("model_json")?;
        let model: Value = serde_json::from_str(&model_json)
            .map_err(|e| invalid(format!("model_json is not JSON: {e}")))?;
        let store = self.store();
        let mut history: Vec<Value> = store
            .tags(&run.run_id)?
            .get(HISTORY_TAG)
            .and_then(|h| serde_json::from_str(h).ok())
            .unwrap_or_default();
        history.push(model);
        store.set_tag(&run.run_id, HISTORY_TAG, &Value::Array(history).to_string())?;
        Ok(json!({}))
    }

    /// The run JSON's `inputs` and `outputs` sections.
    pub(super) fn run_io_json(&self, run_id: &str) -> Result<(Value, Value), ApiError> {
        let mut sections: Map<String, Value> = Map::new();
        for kind in [DATASET_INPUTS, MODEL_INPUTS, MODEL_OUTPUTS] {
            sections.insert(kind.into(), json!([]));
        }
        for (kind, doc) in self.store().run_io(run_id)? {
            if let Some(Value::Array(items)) = sections.get_mut(&kind) {
                items.push(doc);
            }
        }
        let take =
            |sections: &mut Map<String, Value>, k: &str| sections.remove(k).unwrap_or(json!([]));
        let inputs = json!({
            DATASET_INPUTS: take(&mut sections, DATASET_INPUTS),
            MODEL_INPUTS: take(&mut sections, MODEL_INPUTS),
        });
        let outputs = json!({MODEL_OUTPUTS: take(&mut sections, MODEL_OUTPUTS)});
        Ok((inputs, outputs))
    }

    fn list_arg(&self, field: &str) -> Result<Vec<Value>, ApiError> {
        match self.args.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items.clone()),
            Some(_) => Err(invalid(format!("'{field}' must be a list"))),
        }
    }
}

/// The tag MLflow keeps each `runs/log-model` record in.
const HISTORY_TAG: &str = "mlflow.log-model.history";
