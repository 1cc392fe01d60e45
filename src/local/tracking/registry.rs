//! MLflow's model registry: `registered_model_name=` on `log_model`,
//! `mlflow.register_model`, and loading `models:/<name>/<version>`,
//! `models:/<name>@<alias>` or `models:/<name>/latest`.
//!
//! Registered models and their versions belong to the workspace (any run may
//! register, as on Azure ML) and are kept as the JSON documents the API
//! returns; `latest_versions` and each version's `aliases` are derived on
//! read. A version's files are not copied: it points at its `source` (the
//! logged model or run artifacts), which stays with the run that made it.

use super::{ApiError, ApiResult, Call, invalid, mlflow_search, not_found};
use crate::local::store::now_ms;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

/// `registered-models/…` and `model-versions/…`: which call, by method and path.
pub(super) fn route(call: &Call<'_>, method: &Method, endpoint: &str) -> ApiResult {
    match (method.as_str(), endpoint) {
        ("POST", "registered-models/create") => call.create_registered_model(),
        ("GET", "registered-models/get") => call.get_registered_model(),
        ("PATCH", "registered-models/update") => call.update_registered_model(),
        ("POST", "registered-models/rename") => call.rename_registered_model(),
        ("DELETE", "registered-models/delete") => call.delete_registered_model(),
        ("GET" | "POST", "registered-models/search") => call.search_registered_models(),
        ("GET" | "POST", "registered-models/get-latest-versions") => call.latest_versions(),
        ("POST", "registered-models/set-tag") => call.set_registered_model_tag(),
        ("DELETE", "registered-models/delete-tag") => call.delete_registered_model_tag(),
        ("POST", "registered-models/alias") => call.set_alias(),
        ("DELETE", "registered-models/alias") => call.delete_alias(),
        ("GET", "registered-models/alias") => call.version_by_alias(),
        ("POST", "model-versions/create") => call.create_model_version(),
        ("GET", "model-versions/get") => call.get_model_version(),
        ("PATCH", "model-versions/update") => call.update_model_version(),
        ("DELETE", "model-versions/delete") => call.delete_model_version(),
        ("GET" | "POST", "model-versions/search") => call.search_model_versions(),
        ("GET", "model-versions/get-download-uri") => call.download_uri(),
        ("POST", "model-versions/set-tag") => call.set_model_version_tag(),
        ("DELETE", "model-versions/delete-tag") => call.delete_model_version_tag(),
        ("POST", "model-versions/transition-stage") => call.transition_stage(),
        _ => Err(ApiError(
            StatusCode::NOT_FOUND,
            "ENDPOINT_NOT_FOUND",
            format!("{method} /api/2.0/mlflow/{endpoint} is not supported by azml"),
        )),
    }
}

/// The stages MLflow's (deprecated, still used) stage API knows.
const STAGES: &[&str] = &["None", "Staging", "Production", "Archived"];

fn set_tag(list: &mut Value, key: &str, value: &str) {
    remove_tag(list, key);
    if let Value::Array(items) = list {
        items.push(json!({"key": key, "value": value}));
    } else {
        *list = json!([{"key": key, "value": value}]);
    }
}

fn remove_tag(list: &mut Value, key: &str) {
    if let Value::Array(items) = list {
        items.retain(|kv| kv["key"] != key);
    }
}

/// MLflow keeps prompts in the registry under this tag, and its client adds
/// `` tag.`mlflow.prompt.is_prompt` != 'true' `` to every model search.
const IS_PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

/// A model or version in the shape `mlflow_search` filters: attributes in
/// `info`, tags in `data`. A model without the prompt tag is searched as
/// `'false'`, as MLflow's stores treat it (else the client's own clause
/// would hide every model).
fn search_view(doc: &Value) -> Value {
    let mut info = doc.clone();
    if let Some(version) = doc["version"].as_str() {
        info["version_number"] = json!(version.parse::<f64>().unwrap_or_default());
        info["source_path"] = doc["source"].clone();
    }
    let mut tags = doc["tags"].clone();
    let tagged = tags
        .as_array()
        .is_some_and(|t| t.iter().any(|kv| kv["key"] == IS_PROMPT_TAG));
    if !tagged {
        set_tag(&mut tags, IS_PROMPT_TAG, "false");
    }
    json!({"info": info, "data": {"tags": tags}})
}

impl Call<'_> {
    fn model_name_arg(&self) -> Result<String, ApiError> {
        let name = self.str_arg("name")?;
        if name.trim().is_empty() {
            return Err(invalid("Registered model name cannot be empty."));
        }
        Ok(name)
    }

    fn version_arg(&self) -> Result<i64, ApiError> {
        let text = self.str_arg("version")?;
        text.trim()
            .parse::<i64>()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| {
                invalid(format!(
                    "Model version must be a positive integer, got '{text}'"
                ))
            })
    }

    fn stored_model(&self, name: &str) -> Result<Value, ApiError> {
        self.store()
            .registered_model(name)?
            .ok_or_else(|| not_found(format!("Registered Model with name={name} not found")))
    }

    fn stored_version(&self, name: &str, version: i64) -> Result<Value, ApiError> {
        self.stored_model(name)?;
        self.store().model_version(name, version)?.ok_or_else(|| {
            not_found(format!(
                "Model Version (name={name}, version={version}) not found"
            ))
        })
    }

    fn touch_model(&self, name: &str) -> Result<(), ApiError> {
        let mut model = self.stored_model(name)?;
        model["last_updated_timestamp"] = json!(now_ms());
        self.store().put_registered_model(name, &model)?;
        Ok(())
    }

    /// The model as the API returns it: its latest version per stage.
    fn model_json(&self, model: &Value) -> Result<Value, ApiError> {
        let name = model["name"].as_str().unwrap_or_default();
        let versions = self.store().model_versions(Some(name))?;
        let mut out = model.clone();
        out["latest_versions"] = json!(self.latest_per_stage(&versions, &[])?);
        Ok(out)
    }

    /// A version as the API returns it: with the aliases pointing at it.
    fn version_json(&self, version: &Value) -> Result<Value, ApiError> {
        let name = version["name"].as_str().unwrap_or_default();
        let model = self.stored_model(name)?;
        let aliases: Vec<Value> = model["aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["version"] == version["version"])
            .map(|a| a["alias"].clone())
            .collect();
        let mut out = version.clone();
        out["aliases"] = json!(aliases);
        Ok(out)
    }

    /// Newest version of each stage (`stages` empty = every stage), newest first.
    fn latest_per_stage(
        &self,
        versions: &[Value],
        stages: &[String],
    ) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        for stage in STAGES {
            if !stages.is_empty() && !stages.iter().any(|s| s.eq_ignore_ascii_case(stage)) {
                continue;
            }
            // `versions` are newest first.
            if let Some(v) = versions.iter().find(|v| v["current_stage"] == *stage) {
                out.push(self.version_json(v)?);
            }
        }
        Ok(out)
    }

    fn create_registered_model(&self) -> ApiResult {
        let name = self.model_name_arg()?;
        if self.store().registered_model(&name)?.is_some() {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "RESOURCE_ALREADY_EXISTS",
                format!("Registered Model (name={name}) already exists."),
            ));
        }
        let now = now_ms();
        let mut model = json!({
            "name": name,
            "creation_timestamp": now,
            "last_updated_timestamp": now,
            "tags": [],
            "aliases": [],
        });
        if let Some(description) = self.opt_str("description") {
            model["description"] = json!(description);
        }
        for (key, value) in self.key_values("tags")? {
            set_tag(&mut model["tags"], &key, &value);
        }
        self.store().put_registered_model(&name, &model)?;
        Ok(json!({"registered_model": self.model_json(&model)?}))
    }

    fn get_registered_model(&self) -> ApiResult {
        let model = self.stored_model(&self.model_name_arg()?)?;
        Ok(json!({"registered_model": self.model_json(&model)?}))
    }

    fn update_registered_model(&self) -> ApiResult {
        let name = self.model_name_arg()?;
        let mut model = self.stored_model(&name)?;
        if let Some(description) = self.opt_str("description") {
            model["description"] = json!(description);
        }
        model["last_updated_timestamp"] = json!(now_ms());
        self.store().put_registered_model(&name, &model)?;
        Ok(json!({"registered_model": self.model_json(&model)?}))
    }

    fn rename_registered_model(&self) -> ApiResult {
        let name = self.model_name_arg()?;
        let new_name = self.str_arg("new_name")?;
        if new_name.trim().is_empty() {
            return Err(invalid("Registered model name cannot be empty."));
        }
        let mut model = self.stored_model(&name)?;
        if self.store().registered_model(&new_name)?.is_some() {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "RESOURCE_ALREADY_EXISTS",
                format!("Registered Model (name={new_name}) already exists."),
            ));
        }
        let versions = self.store().model_versions(Some(&name))?;
        model["name"] = json!(new_name);
        model["last_updated_timestamp"] = json!(now_ms());
        let store = self.store();
        store.put_registered_model(&new_name, &model)?;
        for mut version in versions {
            let number = version["version"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            version["name"] = json!(new_name);
            store.put_model_version(&new_name, number, &version)?;
        }
        store.delete_registered_model(&name)?;
        drop(store);
        Ok(json!({"registered_model": self.model_json(&model)?}))
    }

    fn delete_registered_model(&self) -> ApiResult {
        let name = self.model_name_arg()?;
        self.stored_model(&name)?;
        self.store().delete_registered_model(&name)?;
        Ok(json!({}))
    }

    fn search_registered_models(&self) -> ApiResult {
        let filter = mlflow_search::parse_registered_model_filter(
            &self.opt_str("filter").unwrap_or_default(),
        )
        .map_err(invalid)?;
        // Collected first: the store's lock must not be held across the loop.
        let models = self.store().registered_models()?;
        let mut matched = Vec::new();
        for model in models {
            if filter.matches(&search_view(&model)) {
                matched.push(self.model_json(&model)?);
            }
        }
        let (page, next) = self.page_of(matched, 100);
        Ok(super::page_response("registered_models", page, next))
    }

    fn latest_versions(&self) -> ApiResult {
        let name = self.model_name_arg()?;
        self.stored_model(&name)?;
        let stages = self.string_list_arg("stages");
        let versions = self.store().model_versions(Some(&name))?;
        Ok(json!({"model_versions": self.latest_per_stage(&versions, &stages)?}))
    }

    fn set_registered_model_tag(&self) -> ApiResult {
        let name = self.model_name_arg()?;
        let mut model = self.stored_model(&name)?;
        let (key, value) = super::tag(self.str_arg("key")?, self.str_arg("value")?)?;
        set_tag(&mut model["tags"], &key, &value);
        self.store().put_registered_model(&name, &model)?;
        Ok(json!({}))
    }

    fn delete_registered_model_tag(&self) -> ApiResult {
        let name = self.model_name_arg()?;
        let mut model = self.stored_model(&name)?;
        remove_tag(&mut model["tags"], &self.str_arg("key")?);
        self.store().put_registered_model(&name, &model)?;
        Ok(json!({}))
    }

    fn set_alias(&self) -> ApiResult {
        let name = self.model_name_arg()?;
        let alias = self.str_arg("alias")?;
        let version = self.version_arg()?;
        self.stored_version(&name, version)?;
        let mut model = self.stored_model(&name)?;
        let mut aliases: Vec<Value> = model["aliases"].as_array().cloned().unwrap_or_default();
        aliases.retain(|a| a["alias"] != alias.as_str());
        aliases.push(json!({"alias": alias, "version": version.to_string()}));
        model["aliases"] = json!(aliases);
        self.store().put_registered_model(&name, &model)?;
        Ok(json!({}))
    }

    fn delete_alias(&self) -> ApiResult {
        let name = self.model_name_arg()?;
        let alias = self.str_arg("alias")?;
        let mut model = self.stored_model(&name)?;
        if let Value::Array(aliases) = &mut model["aliases"] {
            aliases.retain(|a| a["alias"] != alias.as_str());
        }
        self.store().put_registered_model(&name, &model)?;
        Ok(json!({}))
    }

    fn version_by_alias(&self) -> ApiResult {
        let name = self.model_name_arg()?;
        let alias = self.str_arg("alias")?;
        let model = self.stored_model(&name)?;
        let version = model["aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["alias"] == alias.as_str())
            .and_then(|a| a["version"].as_str().and_then(|v| v.parse::<i64>().ok()))
            .ok_or_else(|| not_found(format!("Registered model alias {alias} not found.")))?;
        let doc = self.stored_version(&name, version)?;
        Ok(json!({"model_version": self.version_json(&doc)?}))
    }

    /// A new version, READY at once: its files already exist where `source`
    /// points, so there is nothing to copy or wait for.
    fn create_model_version(&self) -> ApiResult {
        let name = self.model_name_arg()?;
        self.stored_model(&name)?;
        let source = self.str_arg("source")?;
        let version = self.store().next_model_version(&name)?;
        let now = now_ms();
        let mut doc = json!({
            "name": name,
            "version": version.to_string(),
            "creation_timestamp": now,
            "last_updated_timestamp": now,
            "current_stage": "None",
            "source": source,
            "status": "READY",
            "tags": [],
        });
        for field in ["run_id", "run_link", "description", "model_id"] {
            if let Some(value) = self.opt_str(field).filter(|v| !v.is_empty()) {
                doc[field] = json!(value);
            }
        }
        for (key, value) in self.key_values("tags")? {
            set_tag(&mut doc["tags"], &key, &value);
        }
        self.store().put_model_version(&name, version, &doc)?;
        self.touch_model(&name)?;
        Ok(json!({"model_version": self.version_json(&doc)?}))
    }

    fn get_model_version(&self) -> ApiResult {
        let doc = self.stored_version(&self.model_name_arg()?, self.version_arg()?)?;
        Ok(json!({"model_version": self.version_json(&doc)?}))
    }

    fn save_version(&self, mut doc: Value) -> ApiResult {
        let name = doc["name"].as_str().unwrap_or_default().to_string();
        let version = doc["version"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        doc["last_updated_timestamp"] = json!(now_ms());
        self.store().put_model_version(&name, version, &doc)?;
        Ok(json!({"model_version": self.version_json(&doc)?}))
    }

    fn update_model_version(&self) -> ApiResult {
        let mut doc = self.stored_version(&self.model_name_arg()?, self.version_arg()?)?;
        if let Some(description) = self.opt_str("description") {
            doc["description"] = json!(description);
        }
        self.save_version(doc)
    }

    fn transition_stage(&self) -> ApiResult {
        let name = self.model_name_arg()?;
        let version = self.version_arg()?;
        let doc = self.stored_version(&name, version)?;
        let wanted = self.str_arg("stage")?;
        let stage = STAGES
            .iter()
            .find(|s| s.eq_ignore_ascii_case(&wanted))
            .ok_or_else(|| invalid(format!("Invalid Model Version stage: {wanted}")))?;
        let archive_others = self
            .args
            .get("archive_existing_versions")
            .is_some_and(|v| v == true || v == "true");
        if archive_others && *stage != "None" && *stage != "Archived" {
            let versions = self.store().model_versions(Some(&name))?;
            for mut other in versions {
                if other["version"] != doc["version"] && other["current_stage"] == *stage {
                    other["current_stage"] = json!("Archived");
                    self.save_version(other)?;
                }
            }
        }
        let mut doc = doc;
        doc["current_stage"] = json!(stage);
        self.save_version(doc)
    }

    fn delete_model_version(&self) -> ApiResult {
        let name = self.model_name_arg()?;
        let version = self.version_arg()?;
        self.stored_version(&name, version)?;
        self.store().delete_model_version(&name, version)?;
        // An alias to a deleted version goes with it, as in MLflow.
        let mut model = self.stored_model(&name)?;
        if let Value::Array(aliases) = &mut model["aliases"] {
            aliases.retain(|a| a["version"] != version.to_string().as_str());
        }
        self.store().put_registered_model(&name, &model)?;
        Ok(json!({}))
    }

    fn search_model_versions(&self) -> ApiResult {
        let filter =
            mlflow_search::parse_model_version_filter(&self.opt_str("filter").unwrap_or_default())
                .map_err(invalid)?;
        let versions = self.store().model_versions(None)?;
        let mut matched = Vec::new();
        for doc in versions {
            if filter.matches(&search_view(&doc)) {
                matched.push(self.version_json(&doc)?);
            }
        }
        let (page, next) = self.page_of(matched, 200_000);
        Ok(super::page_response("model_versions", page, next))
    }

    /// Where the version's files are: a logged model's (`models:/<model_id>`)
    /// or a run's (`runs:/<run id>/<path>`) artifact location, else `source`.
    fn download_uri(&self) -> ApiResult {
        let doc = self.stored_version(&self.model_name_arg()?, self.version_arg()?)?;
        let source = doc["source"].as_str().unwrap_or_default();
        let uri = if let Some(model_id) = source
            .strip_prefix("models:/")
            .filter(|id| id.starts_with("m-"))
        {
            let model = self.store().logged_model(model_id.trim_end_matches('/'))?;
            model
                .and_then(|m| m["info"]["artifact_uri"].as_str().map(str::to_string))
                .unwrap_or_else(|| source.to_string())
        } else if let Some(rest) = source.strip_prefix("runs:/") {
            let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
            let run = self.store().run(run_id)?;
            let base = super::run_artifact_uri(&self.shared.root, &run);
            if path.is_empty() {
                base
            } else {
                format!("{base}/{path}")
            }
        } else {
            source.to_string()
        };
        Ok(json!({"artifact_uri": uri}))
    }

    fn set_model_version_tag(&self) -> ApiResult {
        let mut doc = self.stored_version(&self.model_name_arg()?, self.version_arg()?)?;
        let (key, value) = super::tag(self.str_arg("key")?, self.str_arg("value")?)?;
        set_tag(&mut doc["tags"], &key, &value);
        self.save_version(doc)?;
        Ok(json!({}))
    }

    fn delete_model_version_tag(&self) -> ApiResult {
        let mut doc = self.stored_version(&self.model_name_arg()?, self.version_arg()?)?;
        remove_tag(&mut doc["tags"], &self.str_arg("key")?);
        self.save_version(doc)?;
        Ok(json!({}))
    }
}
