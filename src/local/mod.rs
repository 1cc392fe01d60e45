//! The embedded local workspace: SQLite store, process runner, SSH runner,
//! MLflow-compatible tracking server, sweep driver.
//!
//! Layout under the workspace root (default `<project>/.azureml/localws`,
//! or `$AZML_LOCAL_WORKSPACE`): `azml.db` (run history) and `runs/<runId>/`
//! (snapshot = working directory, `outputs/`, `logs/`, `user_logs/std_log.txt`).
//!
//! For other modules: [`store::Store`] is the run history,
//! [`submit`] prepares and executes script runs ([`LocalWorkspace::prepare_script_run`]
//! then [`submit::run_prepared`]), [`runner`] has the [`runner::Launcher`]
//! abstraction, [`runner::CancelToken`] and [`runner::MetricHook`], and
//! [`tracking::TrackingServer`] is the MLflow endpoint.
//!
//! How a driver that runs many children (the sweep) uses them:
//!
//! ```text
//! let tracking = TrackingServer::start(&ws.root).await?;           // one for all children
//! let prepared = ws.prepare_script_run(&ScriptSubmission {          // NotStarted, snapshot taken
//!     run_id: Some(format!("{parent}_{n}")), parent_run_id: Some(parent.clone()),
//!     extra_args, extra_env, git_properties: Some(git.clone()), ..base.clone() }, &QuietUi)?;
//! let cancel = CancelToken::new();                                  // keep it to cancel the child
//! let hook: MetricHook = Arc::new(move |run_id, point| { /* evaluate policy; maybe cancel */ });
//! let opts = ExecOptions { cancel: cancel.clone(), on_metric: Some(hook), ..Default::default() };
//! let end = run_prepared(&ws.root, &prepared.run.run_id, &tracking, &opts).await?;
//! ```
//!
//! The hook fires after each stored metric value (MLflow or v1 offline-log
//! lines), inside the request, so a policy decision lands before the script's
//! next call returns. `cancel.cancel(reason)` stops the child's process group and
//! records it Canceled with that reason.

pub mod git;
pub mod launchers;
mod mlflow_search;
pub mod process;
pub mod runner;
pub mod ssh;
pub mod store;
pub mod submit;
pub mod sweep;
pub mod tracking;

use crate::workspace::{
    LogSink, RunFilter, RunOutcome, SubmitScript, Workspace, WorkspaceError, WsResult,
};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use store::{MetricPoint, RunEnd, RunQuery, RunRecord, RunStatus, Store};
use submit::store_err;

/// The embedded workspace rooted at `root` (SQLite store + a folder per run).
#[derive(Debug, Clone)]
pub struct LocalWorkspace {
    pub root: PathBuf,
}

/// A v1-style run id: `<experiment>_<unix seconds>_<8 hex>`.
pub fn new_run_id(experiment: &str) -> String {
    let secs = chrono::Utc::now().timestamp();
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{experiment}_{secs}_{}", &hex[..8])
}

/// az-style UTC timestamp of a store time.
pub fn utc(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

impl LocalWorkspace {
    /// The root is made absolute: it ends up in URIs (`file://…` artifact
    /// locations) and in processes started from other directories.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        LocalWorkspace {
            root: std::path::absolute(&root).unwrap_or(root),
        }
    }

    /// Open the store and mark runs whose supervisor died as Failed: every
    /// command that touches the store does this, so no run stays "Running" forever.
    pub fn store(&self) -> WsResult<Store> {
        let store = Store::open(&self.root).map_err(store_err)?;
        store.reap_orphans().map_err(store_err)?;
        Ok(store)
    }

    /// The store for a command that only reads: the workspace's own when it
    /// exists, else an empty one in memory, so looking creates no files.
    pub fn read_store(&self) -> WsResult<Store> {
        if Store::exists(&self.root) {
            return self.store();
        }
        Store::empty_in_memory(&self.root).map_err(store_err)
    }

    /// The v1 RunDto of a run (plus `metrics` and MLflow `params` for `run show`).
    pub fn run_json(&self, store: &Store, run: &RunRecord, with_metrics: bool) -> WsResult<Value> {
        let mut out = Map::new();
        out.insert("runId".into(), json!(run.run_id));
        out.insert("parentRunId".into(), json!(run.parent_run_id));
        out.insert("experimentName".into(), json!(run.experiment_name));
        out.insert(
            "displayName".into(),
            json!(
                run.display_name
                    .clone()
                    .unwrap_or_else(|| run.run_id.clone())
            ),
        );
        out.insert("runType".into(), json!(run.run_type));
        out.insert("target".into(), json!(run.target));
        out.insert("status".into(), json!(run.status.as_str()));
        out.insert("createdUtc".into(), json!(utc(run.created_ms)));
        out.insert("startTimeUtc".into(), json!(run.start_ms.and_then(utc)));
        out.insert("endTimeUtc".into(), json!(run.end_ms.and_then(utc)));
        if let (Some(code), Some(message)) = (&run.error_code, &run.error_message) {
            out.insert(
                "error".into(),
                json!({"error": {"code": code, "message": message}}),
            );
        }
        out.insert("properties".into(), Value::Object(run.properties.clone()));
        out.insert("tags".into(), json!(run.tags));
        out.insert("logFiles".into(), json!(self.log_files(&run.run_id)));
        if with_metrics {
            let metrics = store.metrics(&run.run_id).map_err(store_err)?;
            out.insert("metrics".into(), metrics_json(&metrics));
            let params = store.params(&run.run_id).map_err(store_err)?;
            out.insert("params".into(), json!(params));
        }
        Ok(Value::Object(out))
    }

    /// `{relative name: absolute path}` of the run's log files.
    fn log_files(&self, run_id: &str) -> BTreeMap<String, String> {
        let dir = store::run_dir(&self.root, run_id);
        let mut files = BTreeMap::new();
        for sub in ["user_logs", "logs"] {
            collect_files(&dir, &dir.join(sub), &mut files);
        }
        files
            .into_iter()
            .map(|(rel, abs)| (rel, abs.display().to_string()))
            .collect()
    }

    /// `run download-logs -d DIR`: copy the run's log files into `dir`, keeping
    /// their relative paths. Returns the files written.
    pub fn copy_logs(&self, run_id: &str, dir: &Path) -> WsResult<Vec<PathBuf>> {
        self.read_store()?.run(run_id).map_err(store_err)?;
        let mut written = Vec::new();
        for (rel, abs) in self.log_files(run_id) {
            let dest = dir.join(&rel);
            let copy = dest
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::copy(&abs, &dest));
            copy.map_err(|e| WorkspaceError::Failed {
                message: format!("cannot write {}: {e}", dest.display()),
                hint: Some("check that the destination folder is writable".into()),
            })?;
            written.push(dest);
        }
        Ok(written)
    }

    /// `run monitor-logs`: stream the run's `user_logs/std_log.txt` into `sink`
    /// from the start until the run ends; returns the finished run.
    pub async fn follow_logs(
        &self,
        run_id: &str,
        sink: &(dyn Fn(&[u8]) + Sync),
    ) -> WsResult<RunRecord> {
        let path = store::run_dir(&self.root, run_id).join(runner::STD_LOG);
        let mut offset = 0u64;
        loop {
            // Read the status before the file, so the last bytes are never missed.
            let run = self.read_store()?.run(run_id).map_err(store_err)?;
            offset += copy_new_bytes(&path, offset, sink);
            if run.status.is_terminal() {
                copy_new_bytes(&path, offset, sink);
                return Ok(run);
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// `run cancel`: ask the run's supervisor to cancel and wait (bounded) for
    /// it to record Canceled; if the supervisor is gone, cancel directly.
    pub async fn cancel_and_wait(&self, run_id: &str, wait: Duration) -> WsResult<Value> {
        // A run that exists means the workspace does: the store is the real one.
        let store = self.read_store()?;
        let run = store.run(run_id).map_err(store_err)?;
        if !run.status.is_terminal() {
            store
                .request_cancel(run_id, "canceled by user (run cancel)")
                .map_err(store_err)?;
            let supervised = run
                .supervisor_pid
                .is_some_and(|pid| process::is_same_process_alive(pid as u32, None));
            if !supervised {
                cancel_directly(&store, &run)?;
            }
            let deadline = tokio::time::Instant::now() + wait;
            while tokio::time::Instant::now() < deadline {
                if self
                    .store()?
                    .run(run_id)
                    .map_err(store_err)?
                    .status
                    .is_terminal()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let store = self.store()?;
        let run = store.run(run_id).map_err(store_err)?;
        self.run_json(&store, &run, false)
    }
}

fn cancel_directly(store: &Store, run: &RunRecord) -> WsResult<()> {
    store.kill_script(&run.run_id).map_err(store_err)?;
    store
        .finish_run(
            &run.run_id,
            &RunEnd {
                status: RunStatus::Canceled,
                exit_code: None,
                error: Some(("Canceled".into(), "canceled by user (run cancel)".into())),
            },
        )
        .map_err(store_err)?;
    Ok(())
}

/// Appends bytes of `path` past `offset` to `sink`; returns how many.
fn copy_new_bytes(path: &Path, offset: u64, sink: &(dyn Fn(&[u8]) + Sync)) -> u64 {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return 0;
    };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return 0;
    }
    let mut buf = Vec::new();
    let n = file.read_to_end(&mut buf).unwrap_or(0);
    if n > 0 {
        sink(&buf[..n]);
    }
    n as u64
}

fn collect_files(base: &Path, dir: &Path, out: &mut BTreeMap<String, PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_files(base, &path, out),
            Ok(t) if t.is_file() => {
                if let Ok(rel) = path.strip_prefix(base) {
                    out.insert(rel.to_string_lossy().into_owned(), path);
                }
            }
            _ => {}
        }
    }
}

/// v1's `run metrics` shape: `{name: value}` for one value, `{name: [values]}` for several.
pub fn metrics_json(points: &[MetricPoint]) -> Value {
    let mut by_name: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for p in points {
        by_name
            .entry(&p.name)
            .or_default()
            .push(number_json(p.value));
    }
    let map: Map<String, Value> = by_name
        .into_iter()
        .map(|(name, mut values)| {
            let value = if values.len() == 1 {
                values.remove(0)
            } else {
                Value::Array(values)
            };
            (name.to_string(), value)
        })
        .collect();
    Value::Object(map)
}

/// JSON has no NaN/Infinity; print them as the strings Python would.
fn number_json(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else if v.is_nan() {
        json!("NaN")
    } else if v > 0.0 {
        json!("Infinity")
    } else {
        json!("-Infinity")
    }
}

/// The ARM-shaped JSON of a compute target.
fn compute_json(
    name: &str,
    compute_type: &str,
    props: &Map<String, Value>,
    created_ms: Option<i64>,
) -> Value {
    let mut properties = Map::new();
    properties.insert("computeType".into(), json!(compute_type));
    properties.insert("provisioningState".into(), json!("Succeeded"));
    properties.insert("isAttachedCompute".into(), json!(compute_type != "Local"));
    if let Some(created) = created_ms.and_then(utc) {
        properties.insert("createdOn".into(), json!(created));
    }
    for (k, v) in props {
        properties.insert(k.clone(), v.clone());
    }
    json!({
        "id": format!("/localWorkspace/computes/{name}"),
        "name": name,
        "type": "Microsoft.MachineLearningServices/workspaces/computes",
        "location": "local",
        "properties": properties,
    })
}

fn local_compute_json() -> Value {
    let mut props = Map::new();
    props.insert(
        "description".into(),
        json!("this machine: runs execute as local processes"),
    );
    compute_json(launchers::LOCAL_TARGET, "Local", &props, None)
}

impl Workspace for LocalWorkspace {
    async fn show_workspace(&self) -> WsResult<Value> {
        let store = self.read_store()?;
        let experiments = store.list_experiments().map_err(store_err)?.len();
        Ok(json!({
            "name": "local",
            "type": "local",
            "location": "local",
            "localWorkspacePath": self.root.display().to_string(),
            "experimentCount": experiments,
        }))
    }

    async fn list_computes(&self) -> WsResult<Vec<Value>> {
        let store = self.read_store()?;
        let mut out = vec![local_compute_json()];
        for c in store.list_computes().map_err(store_err)? {
            out.push(compute_json(
                &c.name,
                &c.compute_type,
                &c.properties,
                Some(c.created_ms),
            ));
        }
        Ok(out)
    }

    async fn show_compute(&self, name: &str) -> WsResult<Value> {
        if name == launchers::LOCAL_TARGET {
            return Ok(local_compute_json());
        }
        let store = self.read_store()?;
        match store.compute(name).map_err(store_err)? {
            Some(c) => Ok(compute_json(
                &c.name,
                &c.compute_type,
                &c.properties,
                Some(c.created_ms),
            )),
            None => Err(WorkspaceError::NotFound {
                kind: "compute target",
                name: name.into(),
            }),
        }
    }

    async fn list_experiments(&self) -> WsResult<Vec<Value>> {
        let store = self.read_store()?;
        let exps = store.list_experiments().map_err(store_err)?;
        Ok(exps.iter().map(experiment_json).collect())
    }

    async fn create_experiment(&self, name: &str) -> WsResult<(Value, bool)> {
        validate_experiment_name(name)?;
        let store = self.store()?;
        let (exp, created) = store.ensure_experiment(name).map_err(store_err)?;
        Ok((experiment_json(&exp), created))
    }

    async fn list_runs(&self, filter: &RunFilter) -> WsResult<Vec<Value>> {
        let store = self.read_store()?;
        let status = match &filter.status {
            Some(s) => Some(RunStatus::parse(s).ok_or_else(|| WorkspaceError::Failed {
                message: format!("unknown run status '{s}'"),
                hint: Some("use one of NotStarted, Running, Completed, Failed, Canceled".into()),
            })?),
            None => None,
        };
        if let Some(parent) = &filter.parent_run_id {
            store.run(parent).map_err(store_err)?;
        }
        if filter.last == 0 {
            return Ok(Vec::new());
        }
        let runs = store
            .list_runs(&RunQuery {
                experiment: filter.experiment.clone(),
                status,
                // Without a parent, v1 listed top-level runs only
                // (`include_children=False`): a sweep is one entry.
                top_level_only: filter.parent_run_id.is_none(),
                parent_run_id: filter.parent_run_id.clone(),
                target: filter.compute_target.clone(),
                tags: filter.tags.clone(),
                last: filter.last,
            })
            .map_err(store_err)?;
        runs.iter()
            .map(|run| self.run_json(&store, run, false))
            .collect()
    }

    async fn show_run(&self, run_id: &str) -> WsResult<Value> {
        let store = self.read_store()?;
        let run = store.run(run_id).map_err(store_err)?;
        self.run_json(&store, &run, true)
    }

    async fn cancel_run(&self, run_id: &str) -> WsResult<Value> {
        self.cancel_and_wait(run_id, Duration::from_secs(15)).await
    }

    async fn add_run_tags(&self, run_id: &str, tags: &[(String, String)]) -> WsResult<Value> {
        let store = self.store()?;
        store.run(run_id).map_err(store_err)?;
        for (k, v) in tags {
            store.set_tag(run_id, k, v).map_err(store_err)?;
        }
        let run = store.run(run_id).map_err(store_err)?;
        self.run_json(&store, &run, false)
    }

    async fn run_metrics(&self, run_id: &str) -> WsResult<Value> {
        let store = self.read_store()?;
        store.run(run_id).map_err(store_err)?;
        Ok(metrics_json(&store.metrics(run_id).map_err(store_err)?))
    }

    async fn submit_script(
        &self,
        request: &SubmitScript,
        logs: &dyn LogSink,
    ) -> WsResult<RunOutcome> {
        submit::submit_script(self, request, logs).await
    }

    async fn monitor_logs(&self, run_id: &str, logs: &dyn LogSink) -> WsResult<RunOutcome> {
        submit::monitor_logs(self, run_id, logs).await
    }

    async fn submit_hyperdrive(
        &self,
        request: &crate::workspace::SubmitHyperdrive,
        logs: &dyn LogSink,
    ) -> WsResult<RunOutcome> {
        sweep::submit_hyperdrive(self, request, logs).await
    }

    async fn download_logs(&self, run_id: &str, output_dir: &Path) -> WsResult<Value> {
        let files = self.copy_logs(run_id, output_dir)?;
        Ok(json!(
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
        ))
    }
}

/// v1 experiment names: letters, digits, `_` and `-`, 1–255 characters, starting with a letter or digit.
fn validate_experiment_name(name: &str) -> WsResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(WorkspaceError::Failed {
            message: format!("invalid experiment name '{name}'"),
            hint: Some(
                "use 1-255 letters, digits, '_' or '-', starting with a letter or digit".into(),
            ),
        })
    }
}

fn experiment_json(exp: &store::Experiment) -> Value {
    json!({
        "experimentId": exp.id.to_string(),
        "name": exp.name,
        "createdUtc": utc(exp.created_ms),
        "archivedTime": null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_follow_v1_shape() {
        let id = new_run_id("exp-1");
        let parts: Vec<&str> = id.rsplitn(3, '_').collect();
        assert_eq!(parts[2], "exp-1");
        assert!(parts[1].parse::<i64>().is_ok());
        assert_eq!(parts[0].len(), 8);
        assert!(parts[0].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn metrics_with_one_value_are_scalars_and_several_are_lists() {
        let p = |n: &str, v| MetricPoint {
            name: n.into(),
            value: v,
            step: 0,
            timestamp_ms: 0,
        };
        let got = metrics_json(&[p("a", 1.0), p("b", 2.0), p("b", 3.0)]);
        assert_eq!(got, json!({"a": 1.0, "b": [2.0, 3.0]}));
    }

    #[test]
    fn experiment_names_are_validated_like_v1() {
        assert!(validate_experiment_name("my-exp_1").is_ok());
        assert!(validate_experiment_name("-bad").is_err());
        assert!(validate_experiment_name("has space").is_err());
    }
}
