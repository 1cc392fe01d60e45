//! `run submit-script` / `run submit-hyperdrive` on an Azure workspace: upload
//! the code (reusing what the workspace already has), resolve the
//! environment, PUT the v2 job, then (unless `--async`) follow it and stream
//! its user logs from Run History until it ends.

use super::blob::{BlobFolder, RetryPolicy};
use super::code_upload::{self, PreviousUpload, UploadCache};
use super::conda;
use super::environment::{self, AnonymousEnvironment, EnvironmentPlan};
use super::history::data_plane_url_at;
use super::jobs::{self, JobBody, JobContext};
use super::runs::{compute_name, history_base, run_dto, studio_url};
use super::{ArmClient, ArmError, AzureWorkspace, encode_segment};
use crate::model::runconfig::RunConfig;
use crate::workspace::{
    LogSink, RunOutcome, SubmitHyperdrive, SubmitScript, WorkspaceError, WsResult,
};
use reqwest::{Method, Url};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Job statuses after which nothing changes any more.
const TERMINAL: &[&str] = &["Completed", "Failed", "Canceled", "NotResponding", "Paused"];

fn arm(e: ArmError) -> WorkspaceError {
    WorkspaceError::Other(anyhow::Error::new(e))
}

fn other<E: std::error::Error + Send + Sync + 'static>(e: E) -> WorkspaceError {
    WorkspaceError::Other(anyhow::Error::new(e))
}

/// `run submit-script`.
pub async fn submit_script(
    ws: &AzureWorkspace,
    request: &SubmitScript,
    logs: &dyn LogSink,
) -> WsResult<RunOutcome> {
    // Refuse what v2 can't run before uploading anything.
    jobs::command_job(&request.run_config, &preflight_context(ws, request)?).map_err(other)?;
    let ctx = prepare(ws, request, None, logs).await?;
    let job = jobs::command_job(&request.run_config, &ctx).map_err(other)?;
    submit_and_follow(ws, &ctx, job, request.asynchronous, logs).await
}

/// `run submit-hyperdrive`.
pub async fn submit_hyperdrive(
    ws: &AzureWorkspace,
    request: &SubmitHyperdrive,
    logs: &dyn LogSink,
) -> WsResult<RunOutcome> {
    let preflight = preflight_context(ws, &request.script)?;
    jobs::sweep_job(&request.script.run_config, &request.hyperdrive, &preflight).map_err(other)?;
    let ctx = prepare(ws, &request.script, request.seed, logs).await?;
    let job =
        jobs::sweep_job(&request.script.run_config, &request.hyperdrive, &ctx).map_err(other)?;
    submit_and_follow(ws, &ctx, job, request.script.asynchronous, logs).await
}

/// `run monitor-logs`: follow an existing job.
pub async fn monitor(
    ws: &AzureWorkspace,
    run_id: &str,
    logs: &dyn LogSink,
) -> WsResult<RunOutcome> {
    follow(ws, run_id, logs).await
}

/// Placeholder ids: translating with them finds every inexpressible field
/// before any upload or resource creation happens.
fn preflight_context(ws: &AzureWorkspace, request: &SubmitScript) -> WsResult<JobContext> {
    Ok(JobContext {
        run_id: "preflight".into(),
        experiment: request.experiment.clone(),
        environment_id: "preflight".into(),
        compute_id: jobs::compute_id(&ws.workspace, &request.run_config.target).map_err(other)?,
        ..JobContext::default()
    })
}

/// Everything the job body refers to: compute, code, environment, run id, provenance.
async fn prepare(
    ws: &AzureWorkspace,
    request: &SubmitScript,
    seed: Option<u64>,
    logs: &dyn LogSink,
) -> WsResult<JobContext> {
    let rc = &request.run_config;
    let compute_id = jobs::compute_id(&ws.workspace, &rc.target).map_err(other)?;
    // Independent round trips and processes: overlap them.
    let source_dir = request.source_dir.clone();
    let git = tokio::task::spawn_blocking(move || git_properties(&source_dir));
    let (code_id, environment_id) = tokio::try_join!(
        upload_code(ws, &request.source_dir, &request.project_dir, logs),
        resolve_environment(ws, rc, &request.project_dir, logs),
    )?;
    let properties = git.await.map_err(other)?;
    let run_id = jobs::new_run_id(&request.experiment, unix_now(), rand::random::<u32>());
    Ok(JobContext {
        run_id,
        experiment: request.experiment.clone(),
        display_name: None,
        code_id: Some(code_id),
        environment_id,
        compute_id,
        tags: BTreeMap::new(),
        properties,
        seed,
    })
}

async fn submit_and_follow(
    ws: &AzureWorkspace,
    ctx: &JobContext,
    job: JobBody,
    asynchronous: bool,
    logs: &dyn LogSink,
) -> WsResult<RunOutcome> {
    for warning in &job.warnings {
        logs.warn(&warning.to_string());
    }
    let client = ws.client().map_err(arm)?;
    let url = client.url(&format!("{}/jobs/{}", ws.workspace_path(), ctx.run_id), &[]);
    let created = client
        .call(Method::PUT, url, Some(&job.body))
        .await
        .map_err(arm)?
        .body;
    logs.info(&format!(
        "Submitted {} to {}\nWeb View: {}",
        ctx.run_id,
        compute_name(&ctx.compute_id),
        studio_url(ws, &ctx.run_id, &created)
    ));
    if asynchronous {
        return Ok(RunOutcome {
            run: run_dto(ws, &ctx.run_id, &created, &Value::Null),
            interrupted: false,
        });
    }
    follow(ws, &ctx.run_id, logs).await
}

// ---- code ---------------------------------------------------------------

/// The code version id for `source_dir`: found by content hash when the
/// workspace has it (no blob traffic), else uploaded (incrementally when the
/// folder was uploaded before) and registered.
///
/// A folder this machine never uploaded to the workspace is most likely new
/// to it, so its upload starts while the hash is still being computed
/// instead of after it (hashing 200 MB is a sizeable part of the time). If
/// the hash then turns out to be known (e.g. the SDK uploaded the same
/// folder), the upload is abandoned: at most the bytes sent while hashing
/// were wasted.
async fn upload_code(
    ws: &AzureWorkspace,
    source_dir: &Path,
    project_dir: &Path,
    logs: &dyn LogSink,
) -> WsResult<String> {
    let ws_path = ws.workspace_path();
    let cache_path =
        UploadCache::default_root().map(|root| UploadCache::path_for(&root, &ws_path, source_dir));
    let cache = cache_path
        .as_deref()
        .map(UploadCache::load)
        .unwrap_or_default();
    let files = list_in_background(source_dir, project_dir).await?;
    let client = ws.client().map_err(arm)?;
    let name = uuid::Uuid::new_v4().to_string();
    let version = "1";
    let total: u64 = files.iter().map(|f| f.size).sum();
    let hashing = hash_in_background(source_dir, files.clone(), cache.clone());
    let speculative = if cache.content_hash.is_empty() && total >= SPECULATIVE_UPLOAD_BYTES {
        let target = start_pending_upload(client, &ws_path, &name, version).await?;
        let unhashed = code_upload::Snapshot::unhashed(source_dir, files);
        let upload = spawn_upload(unhashed, target.folder.clone(), None, &name, version);
        Some((target, AbortOnDrop(upload)))
    } else {
        None
    };
    let snapshot = hashing.await?;
    if let Some(id) = find_code_by_hash(client, &ws_path, &name, &snapshot.content_hash).await? {
        drop(speculative); // abandons the upload
        save_cache(
            cache_path.as_deref(),
            &snapshot,
            cache.uploaded_to.clone(),
            Some(id.clone()),
        );
        return Ok(id);
    }
    let (target, mut upload) = match speculative {
        Some(started) => started,
        None => {
            let target = start_pending_upload(client, &ws_path, &name, version).await?;
            let previous = cache
                .uploaded_to
                .as_deref()
                .and_then(|url| target.folder.sibling(url))
                .map(|prev| PreviousUpload {
                    folder: prev,
                    files: cache.files.clone(),
                });
            let upload = spawn_upload(
                snapshot.clone(),
                target.folder.clone(),
                previous,
                &name,
                version,
            );
            (target, AbortOnDrop(upload))
        }
    };
    let report = (&mut upload.0).await.map_err(other)?.map_err(other)?;
    logs.info(&format!(
        "Uploaded code: {} files sent, {} unchanged files copied in the workspace storage",
        report.files_uploaded, report.files_copied
    ));
    let versions = format!("{ws_path}/codes/{name}/versions/{version}");
    let body = json!({"properties": {
        "codeUri": target.blob_uri,
        "isAnonymous": true,
        "properties": {"hash_sha256": snapshot.content_hash, "hash_version": code_upload::HASH_VERSION},
    }});
    let created = client
        .call(Method::PUT, client.url(&versions, &[]), Some(&body))
        .await
        .map_err(arm)?
        .body;
    let id = created["id"].as_str().map(String::from).unwrap_or(versions);
    save_cache(
        cache_path.as_deref(),
        &snapshot,
        Some(target.folder.url_without_sas()),
        Some(id.clone()),
    );
    Ok(id)
}

/// Below this, hashing is too quick for uploading alongside it to matter,
/// and a found hash should cost no pending-upload request.
const SPECULATIVE_UPLOAD_BYTES: u64 = 1 << 20;

/// Where startPendingUpload says to put the files.
struct PendingTarget {
    blob_uri: String,
    folder: BlobFolder,
}

async fn start_pending_upload(
    client: &ArmClient,
    ws_path: &str,
    name: &str,
    version: &str,
) -> WsResult<PendingTarget> {
    let url = client.url(
        &format!("{ws_path}/codes/{name}/versions/{version}/startPendingUpload"),
        &[],
    );
    let pending = client
        .call(
            Method::POST,
            url,
            Some(&json!({"pendingUploadType": "TemporaryBlobReference"})),
        )
        .await
        .map_err(arm)?
        .body;
    let (blob_uri, sas_uri) = pending_target(&pending)?;
    let folder = BlobFolder::new(blob_http()?, &sas_uri, RetryPolicy::from_env()).map_err(other)?;
    Ok(PendingTarget { blob_uri, folder })
}

/// An upload task that stops when its handle is dropped (the code was found
/// by hash, or the submission failed elsewhere), rather than running on.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Upload on its own task, so it can run while the hash is computed and be
/// abandoned if the workspace turns out to have the code already.
fn spawn_upload(
    snapshot: code_upload::Snapshot,
    folder: BlobFolder,
    previous: Option<PreviousUpload>,
    name: &str,
    version: &str,
) -> tokio::task::JoinHandle<Result<code_upload::UploadReport, code_upload::UploadError>> {
    let (name, version) = (name.to_string(), version.to_string());
    tokio::spawn(async move {
        let bar = code_upload::progress_bar(snapshot.total_bytes(), false);
        let report = code_upload::upload_snapshot(
            &snapshot,
            &folder,
            previous.as_ref(),
            (&name, &version),
            &bar,
        )
        .await;
        bar.finish_and_clear();
        report
    })
}

/// Listing stats the whole tree: keep it off the async threads.
async fn list_in_background(
    source_dir: &Path,
    project_dir: &Path,
) -> WsResult<Vec<code_upload::SourceFile>> {
    let root = source_dir.to_path_buf();
    let exclude = crate::config::local_workspace_dirs(project_dir);
    tokio::task::spawn_blocking(move || code_upload::list_source_files(&root, &exclude))
        .await
        .map_err(other)?
        .map_err(other)
}

/// Hashing reads the whole tree (unless the cache vouches for it): on a
/// blocking thread, started now and awaited later.
fn hash_in_background(
    source_dir: &Path,
    files: Vec<code_upload::SourceFile>,
    cache: UploadCache,
) -> impl std::future::Future<Output = WsResult<code_upload::Snapshot>> {
    let root = source_dir.to_path_buf();
    let task =
        tokio::task::spawn_blocking(move || code_upload::hash_snapshot(&root, files, Some(&cache)));
    async move { task.await.map_err(other)?.map_err(other) }
}

/// The embedded local workspace lives in the project; it is never code.
async fn find_code_by_hash(
    client: &ArmClient,
    ws_path: &str,
    name: &str,
    hash: &str,
) -> WsResult<Option<String>> {
    let url = client.url(
        &format!("{ws_path}/codes/{name}/versions"),
        &[("hash", hash), ("hashVersion", code_upload::HASH_VERSION)],
    );
    let found = client.get(url).await.map_err(arm)?;
    Ok(found["value"]
        .as_array()
        .and_then(|items| items.iter().find_map(|item| item["id"].as_str()))
        .map(String::from))
}

/// `blobUri` and the SAS URL from a startPendingUpload answer.
fn pending_target(pending: &Value) -> WsResult<(String, String)> {
    let reference = &pending["blobReferenceForConsumption"];
    let blob_uri = reference["blobUri"].as_str();
    let sas_uri = reference["credential"]["sasUri"].as_str();
    match (blob_uri, sas_uri) {
        (Some(blob), Some(sas)) => Ok((blob.to_string(), sas.to_string())),
        _ => Err(WorkspaceError::Invalid(
            "startPendingUpload answered without a blob URI and SAS credential".into(),
        )),
    }
}

fn save_cache(
    path: Option<&Path>,
    snapshot: &code_upload::Snapshot,
    uploaded_to: Option<String>,
    code_id: Option<String>,
) {
    if let Some(path) = path {
        let cache = UploadCache::after_upload(snapshot, uploaded_to, code_id);
        if let Err(e) = cache.save(path) {
            tracing::debug!("could not save the upload cache {}: {e}", path.display());
        }
    }
}

fn blob_http() -> WsResult<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("azml/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(20))
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(other)
}

// ---- environment ----------------------------------------------------------

/// The environment id the job runs in (see `environment::plan`).
async fn resolve_environment(
    ws: &AzureWorkspace,
    rc: &RunConfig,
    project_dir: &Path,
    logs: &dyn LogSink,
) -> WsResult<String> {
    let conda = read_conda_file(rc, project_dir)?;
    let plan = environment::plan(&rc.environment, conda.as_deref()).map_err(other)?;
    let client = ws.client().map_err(arm)?;
    let ws_path = ws.workspace_path();
    match plan {
        EnvironmentPlan::Asset(id) => Ok(id),
        EnvironmentPlan::Curated {
            name,
            version: Some(version),
        } => Ok(environment::environment_id(&ws_path, &name, &version)),
        EnvironmentPlan::Curated {
            name,
            version: None,
        } => {
            let url = client.url(&format!("{ws_path}/environments/{name}"), &[]);
            match client.get_optional(url).await.map_err(arm)? {
                Some(container) => match container["properties"]["latestVersion"].as_str() {
                    Some(latest) => Ok(environment::environment_id(&ws_path, &name, latest)),
                    None => Ok(registry_curated_id(&name)),
                },
                None => Ok(registry_curated_id(&name)),
            }
        }
        EnvironmentPlan::Registered {
            name,
            version,
            fallback,
        } => {
            let id = environment::environment_id(&ws_path, &name, &version);
            match client
                .get_optional(client.url(&id, &[]))
                .await
                .map_err(arm)?
            {
                Some(_) => Ok(id),
                // A runconfig that describes nothing but the name would run
                // on the bare default image: say the environment is missing.
                None if describes_nothing(rc, conda.as_deref()) => Err(WorkspaceError::Failed {
                    message: format!(
                        "environment {name} version {version} does not exist in the workspace"
                    ),
                    hint: Some(
                        "register it (`az ml environment create`), name an existing version, \
                             or describe it in the runconfig (docker.baseImage, a conda file)"
                            .into(),
                    ),
                }),
                None => {
                    logs.warn(&format!(
                        "environment {name} version {version} is not registered in the workspace; \
                         the runconfig's image and conda file are used instead"
                    ));
                    ensure_anonymous(client, &ws_path, &fallback).await
                }
            }
        }
        EnvironmentPlan::Anonymous(anonymous) => {
            ensure_anonymous(client, &ws_path, &anonymous).await
        }
    }
}

/// A runconfig environment that is only a name: no image of its own (the
/// v1 default is what the parser fills in) and no conda file.
fn describes_nothing(rc: &RunConfig, conda: Option<&str>) -> bool {
    let image = rc.environment.docker.base_image.as_deref().map(str::trim);
    conda.is_none()
        && image.is_none_or(|i| i.is_empty() || i == crate::model::runconfig::DEFAULT_BASE_IMAGE)
}

/// Curated environments also live in the `azureml` registry.
fn registry_curated_id(name: &str) -> String {
    format!("azureml://registries/azureml/environments/{name}/labels/latest")
}

/// Reuse the content-addressed version when it exists; create it otherwise.
async fn ensure_anonymous(
    client: &ArmClient,
    ws_path: &str,
    env: &AnonymousEnvironment,
) -> WsResult<String> {
    let id = environment::environment_id(ws_path, &env.name, &env.version);
    if client
        .get_optional(client.url(&id, &[]))
        .await
        .map_err(arm)?
        .is_none()
    {
        client
            .call(Method::PUT, client.url(&id, &[]), Some(&env.body))
            .await
            .map_err(arm)?;
    }
    Ok(id)
}

/// The conda file's text as the SDK sends it: `condaDependenciesFile`, else
/// the inline `condaDependencies` (which v1 saved runconfigs carry too).
fn read_conda_file(rc: &RunConfig, project_dir: &Path) -> WsResult<Option<String>> {
    let python = &rc.environment.python;
    if python.user_managed_dependencies {
        return Ok(None);
    }
    let (raw, origin) = match rc.conda_file_path(project_dir) {
        Some(path) => {
            let raw = std::fs::read_to_string(&path).map_err(|e| {
                WorkspaceError::Invalid(format!(
                    "cannot read the conda file {} (environment.python.condaDependenciesFile): {e}",
                    path.display()
                ))
            })?;
            (raw, path.display().to_string())
        }
        None => match python.conda_dependencies.as_ref().filter(|c| !c.is_null()) {
            // JSON is YAML: the SDK's re-dump below gives the file it would send.
            Some(inline) => (
                inline.to_string(),
                "environment.python.condaDependencies".to_string(),
            ),
            None => return Ok(None),
        },
    };
    // The SDK sends (and hashes) its PyYAML re-dump, not the raw text: doing
    // the same maps a conda file to the same anonymous environment either way.
    conda::sdk_conda_text(&raw).map_err(|e| WorkspaceError::Failed {
        message: format!(
            "{}:{}:{}: conda file: {}",
            origin, e.line, e.column, e.message
        ),
        hint: Some(
            "fix the YAML (environment.python.condaDependenciesFile), or set \
             userManagedDependencies: true to use the image's Python as is"
                .into(),
        ),
    })
}

// ---- following ----------------------------------------------------------

/// Poll the job until it ends, streaming new log bytes exactly once.
async fn follow(ws: &AzureWorkspace, run_id: &str, logs: &dyn LogSink) -> WsResult<RunOutcome> {
    let client = ws.client().map_err(arm)?;
    let job_url = client.url(&format!("{}/jobs/{run_id}", ws.workspace_path()), &[]);
    let history = history_base(ws).await;
    let mut streamer = LogStreamer::new(blob_http()?);
    let interval = poll_interval();
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let job = client.get(job_url.clone()).await.map_err(arm)?;
        let status = job["properties"]["status"]
            .as_str()
            .unwrap_or("Unknown")
            .to_string();
        let details = match &history {
            Some(base) => {
                let details = streamer
                    .stream(client, base, &ws.workspace_path(), run_id, logs)
                    .await;
                if job["properties"]["jobType"] == "Sweep" {
                    streamer
                        .stream_latest_child(client, base, &ws.workspace_path(), run_id, logs)
                        .await;
                }
                details
            }
            None => Value::Null,
        };
        if TERMINAL.contains(&status.as_str()) {
            logs.write(&format!(
                "\nExecution Summary\n=================\nRunId: {run_id}\nStatus: {status}\nWeb View: {}\n",
                studio_url(ws, run_id, &job)
            ));
            return Ok(RunOutcome {
                run: run_dto(ws, run_id, &job, &details),
                interrupted: false,
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = &mut ctrl_c => {
                logs.write(&format!(
                    "\nStopped watching {run_id}; the job keeps running. \
                     Cancel it with `azml run cancel -r {run_id}`.\n"
                ));
                return Ok(RunOutcome { run: run_dto(ws, run_id, &job, &details), interrupted: true });
            }
        }
    }
}

/// `AZML_JOB_POLL_MS` (tests), else 10 s like the SDK's stream_logs.
fn poll_interval() -> Duration {
    let ms = std::env::var("AZML_JOB_POLL_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(10_000);
    Duration::from_millis(ms)
}

/// Remembers how much of each log file was already shown.
struct LogStreamer {
    http: reqwest::Client,
    /// `<run id>/<log name>` → bytes already shown.
    offsets: BTreeMap<String, usize>,
    current_child: Option<String>,
}

impl LogStreamer {
    fn new(http: reqwest::Client) -> Self {
        LogStreamer {
            http,
            offsets: BTreeMap::new(),
            current_child: None,
        }
    }

    /// A sweep's own logs say little: follow its most recently started trial.
    async fn stream_latest_child(
        &mut self,
        client: &ArmClient,
        base: &Url,
        ws_path: &str,
        parent: &str,
        logs: &dyn LogSink,
    ) {
        let suffix = format!("/runs/{}/children", encode_segment(parent));
        let Some(url) = data_plane_url_at(base, "history/v1.0", ws_path, &suffix) else {
            return;
        };
        let Ok(children) = client.get(url).await else {
            return;
        };
        let latest = children["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some((
                    c["startTimeUtc"].as_str().unwrap_or_default(),
                    c["runId"].as_str()?,
                ))
            })
            .max()
            .map(|(_, id)| id.to_string());
        let Some(child) = latest else {
            return;
        };
        if self.current_child.as_deref() != Some(child.as_str()) {
            logs.write(&format!("\n[trial {child}]\n"));
            self.current_child = Some(child.clone());
        }
        self.stream(client, base, ws_path, &child, logs).await;
    }

    /// Fetch run details, then the new bytes of each user log. Returns the details.
    async fn stream(
        &mut self,
        client: &ArmClient,
        base: &Url,
        ws_path: &str,
        run_id: &str,
        logs: &dyn LogSink,
    ) -> Value {
        let suffix = format!("/runs/{}/details", encode_segment(run_id));
        let Some(url) = data_plane_url_at(base, "history/v1.0", ws_path, &suffix) else {
            return Value::Null;
        };
        let details = match client.get(url).await {
            Ok(details) => details,
            Err(e) => {
                tracing::debug!("run details unavailable: {e}");
                return Value::Null;
            }
        };
        if let Some(files) = details["logFiles"].as_object() {
            for (name, sas) in files.iter().filter(|(name, _)| is_user_log(name)) {
                if let Some(sas) = sas.as_str() {
                    self.stream_file(&format!("{run_id}/{name}"), sas, logs)
                        .await;
                }
            }
        }
        details
    }

    async fn stream_file(&mut self, name: &str, sas_url: &str, logs: &dyn LogSink) {
        let offset = self.offsets.get(name).copied().unwrap_or(0);
        let request = self
            .http
            .get(sas_url)
            .header("Range", format!("bytes={offset}-"));
        let Ok(response) = request.send().await else {
            return;
        };
        let status = response.status().as_u16();
        if !(status == 200 || status == 206) {
            return;
        }
        let Ok(bytes) = response.bytes().await else {
            return;
        };
        // A server that ignores Range sends everything again: skip what was shown.
        let fresh = if status == 200 {
            bytes.get(offset..).unwrap_or_default()
        } else {
            &bytes[..]
        };
        if !fresh.is_empty() {
            logs.write(&String::from_utf8_lossy(fresh));
            self.offsets.insert(name.to_string(), offset + fresh.len());
        }
    }
}

fn is_user_log(name: &str) -> bool {
    name.starts_with("user_logs/std_log") || name == "azureml-logs/hyperdrive.txt"
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

// ---- git provenance -------------------------------------------------------

/// The properties the SDK records when the source folder is a git checkout.
pub fn git_properties(source_dir: &Path) -> BTreeMap<String, String> {
    let git = |args: &[&str]| -> Option<String> {
        let output = std::process::Command::new("git")
            .arg("-C")
            .arg(source_dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    let mut props = BTreeMap::new();
    let Some(commit) = git(&["rev-parse", "HEAD"]) else {
        return props;
    };
    props.insert("mlflow.source.git.commit".into(), commit);
    if let Some(branch) = git(&["rev-parse", "--abbrev-ref", "HEAD"]) {
        props.insert("mlflow.source.git.branch".into(), branch);
    }
    if let Some(url) = git(&["config", "--get", "remote.origin.url"]).filter(|u| !u.is_empty()) {
        props.insert(
            "mlflow.source.git.repoURL".into(),
            without_credentials(&url),
        );
    }
    if let Some(status) = git(&["status", "--porcelain"]) {
        let dirty = if status.is_empty() { "False" } else { "True" };
        props.insert("azureml.git.dirty".into(), dirty.into());
    }
    props
}

/// `https://user:token@host/repo` → `https://host/repo`: a token must not end up in job properties.
fn without_credentials(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_urls_lose_embedded_tokens() {
        assert_eq!(
            without_credentials("https://user:ghp_SECRET@github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(
            without_credentials("git@github.com:o/r.git"),
            "git@github.com:o/r.git"
        );
    }

    #[test]
    fn only_user_logs_are_streamed() {
        assert!(is_user_log("user_logs/std_log.txt"));
        assert!(is_user_log("user_logs/std_log_process_0.txt"));
        assert!(!is_user_log("system_logs/lifecycler/execution-wrapper.log"));
    }
}
