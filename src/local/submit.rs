//! `run submit-script` on the local workspace, in three reusable steps:
//!
//! 1. [`LocalWorkspace::prepare_script_run`] — create the run record, snapshot
//!    the source folder into the run folder, record git facts, and store a
//!    [`LaunchSpec`] (what to execute, with which environment);
//! 2. [`run_prepared`] — register the run with a [`TrackingServer`], add the
//!    MLflow variables, and [`execute`] it with the target's [`Launcher`](super::runner::Launcher);
//! 3. for `--async`, [`spawn_detached_supervisor`] re-executes azml as a
//!    detached supervisor that does step 2 and outlives the command.
//!
//! The sweep driver uses 1 and 2 directly (one tracking server, many children).

use super::runner::{CancelToken, ExecOptions, Job, execute_with_store};
use super::store::{NewRun, RunEnd, RunRecord, RunStatus, Store};
use super::tracking::{TrackingServer, mlflow_env};
use super::{LocalWorkspace, git, new_run_id};
use crate::model::runconfig::RunConfig;
use crate::workspace::{LogSink, RunOutcome, SubmitScript, WorkspaceError, WsResult};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to run: a resolved runconfig (script/arguments from the command line
/// already applied, see [`apply_command_line`]) plus where and as what.
#[derive(Debug, Clone, Default)]
pub struct ScriptSubmission {
    pub experiment: String,
    pub run_config: RunConfig,
    pub source_dir: PathBuf,
    /// Where `.azureml/` lives; relative `interpreterPath`s start here (default: `source_dir`).
    pub project_dir: Option<PathBuf>,
    /// `--ct`: overrides `run_config.target` when set.
    pub target: Option<String>,
    /// Preset id (sweep children); a v1-style id is generated otherwise.
    pub run_id: Option<String>,
    pub parent_run_id: Option<String>,
    /// Default `azureml.scriptrun`.
    pub run_type: Option<String>,
    pub display_name: Option<String>,
    /// Appended after the runconfig arguments (a sweep's `--name value` pairs).
    pub extra_args: Vec<String>,
    /// Added last to the script's environment (e.g. `AZUREML_PARAMETER_*`).
    pub extra_env: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub properties: Map<String, Value>,
    /// Git facts already computed (a sweep computes them once for all children);
    /// `None` runs `git` in the source directory.
    pub git_properties: Option<Map<String, Value>>,
    /// The source folder already snapshotted (a sweep takes one snapshot for
    /// all its children, as v1 HyperDrive did); `None` snapshots it now.
    pub snapshot: Option<Arc<SourceSnapshot>>,
}

/// A snapshot of a source folder in the workspace's content store, ready to
/// be materialized into any number of run folders.
#[derive(Debug, Clone)]
pub struct SourceSnapshot {
    store: crate::snapshot::Store,
    taken: crate::snapshot::Snapshot,
}

impl SourceSnapshot {
    /// The `ContentSnapshotId` runs made from it record.
    pub fn id(&self) -> String {
        self.taken.manifest.id()
    }

    /// Keep the manifest in the store, for targets that sync it later.
    fn save_manifest(&self, source_dir: &Path) -> WsResult<()> {
        self.store
            .save_manifest(&self.taken.manifest)
            .map_err(|e| snapshot_err(source_dir, e))
    }
}

/// v1's rule: a script on the command line replaces the runconfig's script and
/// arguments; arguments alone replace the runconfig's arguments.
pub fn apply_command_line(rc: &mut RunConfig, script: Option<String>, arguments: Vec<String>) {
    match script {
        Some(script) => {
            rc.script = Some(script);
            rc.arguments = arguments;
        }
        None if !arguments.is_empty() => rc.arguments = arguments,
        None => {}
    }
}

/// How to start a prepared run, stored with it so a detached supervisor can start it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LaunchSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub target: String,
    pub max_duration_seconds: Option<u64>,
}

/// A run that exists in the store, with its snapshot in place, ready to execute.
#[derive(Debug, Clone)]
pub struct PreparedRun {
    pub run: RunRecord,
    pub launch: LaunchSpec,
    pub snapshot: crate::snapshot::Summary,
}

/// Messages submit shows while it works (the command layer routes them to the printer).
pub trait SubmitUi {
    fn warn(&self, message: &str);
    fn info(&self, message: &str);
}

/// A [`SubmitUi`] that shows nothing (sweep children, tests).
pub struct QuietUi;

impl SubmitUi for QuietUi {
    fn warn(&self, _: &str) {}
    fn info(&self, _: &str) {}
}

fn failed(message: impl Into<String>, hint: Option<&str>) -> WorkspaceError {
    WorkspaceError::Failed {
        message: message.into(),
        hint: hint.map(str::to_string),
    }
}

impl LocalWorkspace {
    /// Step 1: validate, create the run (NotStarted), snapshot, git facts, launch spec.
    pub fn prepare_script_run(
        &self,
        sub: &ScriptSubmission,
        ui: &dyn SubmitUi,
    ) -> WsResult<PreparedRun> {
        let store = self.store()?;
        self.prepare_script_run_in(&store, sub, ui)
    }

    /// [`Self::prepare_script_run`] through a store connection the caller
    /// holds (a sweep prepares all its children through one).
    pub fn prepare_script_run_in(
        &self,
        store: &Store,
        sub: &ScriptSubmission,
        ui: &dyn SubmitUi,
    ) -> WsResult<PreparedRun> {
        let target = sub
            .target
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| sub.run_config.target.clone());
        let target = if target.is_empty() {
            "local".to_string()
        } else {
            target
        };
        super::launchers::check_target(store, &target)?;
        let (program, args) = command_line(sub, &target)?;
        for warning in not_honoured_locally(&sub.run_config) {
            ui.warn(&warning);
        }
        let run_id = sub
            .run_id
            .clone()
            .unwrap_or_else(|| new_run_id(&sub.experiment));
        let mut properties = match &sub.git_properties {
            Some(props) => props.clone(),
            None => git::git_properties(&sub.source_dir),
        };
        properties.insert("azureml.runsource".into(), "experiment".into());
        if let Some(snapshot) = &sub.snapshot {
            properties.insert("ContentSnapshotId".into(), Value::String(snapshot.id()));
        }
        properties.extend(sub.properties.clone());
        let run = store
            .create_run(&NewRun {
                run_id: run_id.clone(),
                experiment: sub.experiment.clone(),
                parent_run_id: sub.parent_run_id.clone(),
                run_type: sub
                    .run_type
                    .clone()
                    .unwrap_or_else(|| "azureml.scriptrun".into()),
                target: target.clone(),
                display_name: sub.display_name.clone(),
                properties,
                tags: sub.tags.clone(),
            })
            .map_err(store_err)?;
        // Until a supervisor takes over, this process answers for the run: if it
        // dies (Ctrl-C during a long snapshot), the run is reaped, not stuck.
        store
            .set_supervisor(&run_id, std::process::id())
            .map_err(store_err)?;
        let snapshot = match &sub.snapshot {
            Some(snapshot) => snapshot.clone(),
            None => {
                let snapshot = self.take_snapshot(&sub.source_dir, ui)?;
                let mut id = Map::new();
                id.insert("ContentSnapshotId".into(), Value::String(snapshot.id()));
                store.add_properties(&run_id, &id).map_err(store_err)?;
                Arc::new(snapshot)
            }
        };
        materialize(&snapshot, &sub.source_dir, &store.run_dir(&run_id))?;
        // Other targets sync from the manifest later (maybe in another process).
        if target != super::launchers::LOCAL_TARGET {
            snapshot.save_manifest(&sub.source_dir)?;
        }
        let launch = LaunchSpec {
            program,
            args,
            env: script_env(sub, &run),
            target,
            max_duration_seconds: sub.run_config.max_run_duration_seconds,
        };
        tracing::debug!(run_id, files = snapshot.taken.summary.files, "run prepared");
        let spec = serde_json::to_value(&launch).map_err(|e| failed(e.to_string(), None))?;
        store.set_launch(&run_id, &spec).map_err(store_err)?;
        Ok(PreparedRun {
            run: store.run(&run_id).map_err(store_err)?,
            launch,
            snapshot: snapshot.taken.summary,
        })
    }

    /// Snapshot `source_dir` with v1's ignore rules into the workspace's
    /// content-addressed store, telling `ui` what it holds. Workspace data is
    /// never code: this workspace, nor the project's default one when
    /// `AZML_LOCAL_WORKSPACE` points elsewhere (its run folders would be
    /// copied into every run, each run adding to the next).
    pub fn take_snapshot(&self, source_dir: &Path, ui: &dyn SubmitUi) -> WsResult<SourceSnapshot> {
        let store = crate::snapshot::Store::open(self.root.join("snapshots"))
            .map_err(|e| snapshot_err(source_dir, e))?;
        let workspaces = [
            self.root.clone(),
            crate::config::default_local_workspace(source_dir),
        ];
        let snap = store
            .snapshot(source_dir, &workspaces)
            .map_err(|e| snapshot_err(source_dir, e))?;
        let rules = match &snap.ignore_file {
            Some(file) => format!(
                " (ignoring what {} lists)",
                file.file_name().unwrap_or_default().to_string_lossy()
            ),
            None => String::new(),
        };
        ui.info(&format!("{}{rules}", snap.summary));
        for warning in &snap.warnings {
            ui.warn(&warning.to_string());
        }
        if !snap.skipped.is_empty() {
            ui.info(&format!(
                "{} symlinked folders, dangling links or special files were left out of the snapshot",
                snap.skipped.len()
            ));
        }
        Ok(SourceSnapshot { store, taken: snap })
    }
}

/// Recreate the snapshot's files as `run_dir` (see [`materialize_mode`]).
fn materialize(snapshot: &SourceSnapshot, source_dir: &Path, run_dir: &Path) -> WsResult<()> {
    snapshot
        .store
        .materialize(&snapshot.taken.manifest, run_dir, materialize_mode())
        .map_err(|e| snapshot_err(source_dir, e))
}

fn snapshot_err(source_dir: &Path, e: crate::snapshot::SnapshotError) -> WorkspaceError {
    use crate::error::ExitCoded;
    failed(
        format!("cannot snapshot {}: {e}", source_dir.display()),
        e.hint().as_deref(),
    )
}

/// Hard links share the store's read-only objects, so a script cannot change
/// them in place — except as root, where permissions do not stop it and an
/// edit would silently change every later run's snapshot: root gets private
/// copies. Others get copies of small files (v1 scripts may rewrite their own
/// sources) and links for big ones.
fn materialize_mode() -> crate::snapshot::Materialize {
    if nix::unistd::geteuid().is_root() {
        crate::snapshot::Materialize::Copy
    } else {
        crate::snapshot::Materialize::CopySmall
    }
}

/// What a runconfig asks for that a run on this machine or an SSH host does
/// not do: said once per submission, so nothing is ignored silently.
pub fn not_honoured_locally(rc: &RunConfig) -> Vec<String> {
    let mut out = Vec::new();
    if !rc.environment.python.user_managed_dependencies {
        out.push(
            "userManagedDependencies is false, but azml does not build environments yet; \
             the run uses the runconfig's interpreter as is"
                .to_string(),
        );
    }
    if rc.environment.docker.enabled || rc.docker.use_docker {
        out.push(
            "Docker is enabled in the runconfig, but local and SSH runs do not use containers; \
             the script runs directly with the runconfig's interpreter"
                .to_string(),
        );
    }
    if !rc.framework.eq_ignore_ascii_case("python") {
        out.push(format!(
            "framework {} is not applied locally: the script runs once, as one process, \
             without a distributed launcher",
            rc.framework
        ));
    }
    if rc.node_count > 1 {
        out.push(format!(
            "nodeCount is {}, but a local or SSH run is one process on one machine",
            rc.node_count
        ));
    }
    for (name, data) in &rc.data {
        let variable = Some(data.environment_variable_name.as_str())
            .filter(|v| !v.is_empty())
            .unwrap_or(name);
        out.push(format!(
            "data input '{name}' is not provided locally: ${variable} is unset and an argument \
             DatasetConsumptionConfig:{name} reaches the script as that text"
        ));
    }
    for name in rc.data_references.keys() {
        out.push(format!(
            "dataReferences '{name}' is not mounted or downloaded locally: \
             $AZUREML_DATAREFERENCE_{name} is unset"
        ));
    }
    out
}

/// Program and argv: `interpreter script args…`, or `/bin/sh -c command`.
fn command_line(sub: &ScriptSubmission, target: &str) -> WsResult<(String, Vec<String>)> {
    let rc = &sub.run_config;
    if let Some(script) = rc.script.as_deref().filter(|s| !s.is_empty()) {
        if !sub.source_dir.join(script).is_file() {
            return Err(failed(
                format!(
                    "script '{script}' not found in the source directory {}",
                    sub.source_dir.display()
                ),
                Some("paths are relative to --source-directory (default: the project folder)"),
            ));
        }
        let mut args = vec![script.to_string()];
        args.extend(rc.arguments.iter().cloned());
        args.extend(sub.extra_args.iter().cloned());
        return Ok((interpreter(sub, target)?, args));
    }
    if let Some(command) = rc.command.as_deref().filter(|c| !c.trim().is_empty()) {
        let mut line = command.to_string();
        for extra in &sub.extra_args {
            line.push(' ');
            line.push_str(&crate::shell::quote(extra));
        }
        return Ok(("/bin/sh".into(), vec!["-c".into(), line]));
    }
    Err(failed(
        "nothing to run: no script and no command",
        Some(
            "name the script on the command line (`azml run submit-script -c CONFIG train.py`) or set `script` in the runconfig",
        ),
    ))
}

/// On this machine, `interpreterPath` resolved as v1 meant it (see
/// `model::conda::resolve_interpreter`); other targets resolve it on the host.
fn interpreter(sub: &ScriptSubmission, target: &str) -> WsResult<String> {
    let python = &sub.run_config.environment.python;
    if target != super::launchers::LOCAL_TARGET {
        return Ok(python.interpreter_path.clone());
    }
    let project_dir = sub.project_dir.as_deref().unwrap_or(&sub.source_dir);
    let path_var = std::env::var_os("PATH");
    let found = sub
        .run_config
        .local_interpreter(project_dir, path_var.as_deref())
        .map_err(|e| {
            use crate::error::ExitCoded;
            failed(e.to_string(), e.hint().as_deref())
        })?;
    Ok(found.program.display().to_string())
}

/// Environment layers, later wins: runconfig environment's variables, the
/// runconfig's own variables, what Azure ML sets, the caller's extras.
/// (MLflow variables are added at execution time: the token is per execution.)
fn script_env(sub: &ScriptSubmission, run: &RunRecord) -> BTreeMap<String, String> {
    let rc = &sub.run_config;
    let mut env = BTreeMap::from([("PYTHONUNBUFFERED".to_string(), "1".to_string())]);
    env.extend(rc.environment.environment_variables.clone());
    env.extend(rc.environment_variables.clone());
    let azureml = [
        ("AZUREML_RUN_ID", run.run_id.clone()),
        ("AZUREML_ARM_PROJECT_NAME", run.experiment_name.clone()),
        ("AZUREML_ARM_WORKSPACE_NAME", "local".to_string()),
        ("AZUREML_EXPERIMENT_ID", run.experiment_id.to_string()),
        ("AZUREML_EXPERIMENT_NAME", run.experiment_name.clone()),
        ("AZUREML_OUTPUT_DIRECTORY", "outputs".into()),
        ("AZUREML_COMPUTE_TARGET", run.target.clone()),
        ("AZUREML_RUN_TYPE", run.run_type.clone()),
    ];
    for (k, v) in azureml {
        env.insert(k.into(), v);
    }
    if let Some(parent) = &run.parent_run_id {
        env.insert("AZUREML_ROOT_RUN_ID".into(), parent.clone());
    }
    env.extend(sub.extra_env.clone());
    env
}

/// Step 2: execute a prepared run (by id) through `tracking`, recording the
/// outcome. `opts.on_metric` is also registered with the tracking server, so
/// one hook sees MLflow metrics and v1 offline-log metrics alike.
pub async fn run_prepared(
    root: &Path,
    run_id: &str,
    tracking: &TrackingServer,
    opts: &ExecOptions,
) -> WsResult<RunEnd> {
    let store = Arc::new(Mutex::new(Store::open(root).map_err(store_err)?));
    run_prepared_with_store(root, &store, run_id, tracking, opts).await
}

/// [`run_prepared`] through a store connection shared with the caller (a
/// sweep's children all use the driver's).
pub async fn run_prepared_with_store(
    root: &Path,
    shared_store: &Arc<Mutex<Store>>,
    run_id: &str,
    tracking: &TrackingServer,
    opts: &ExecOptions,
) -> WsResult<RunEnd> {
    let ready = {
        let store = lock_store(shared_store);
        ready_to_execute(&store, root, run_id, tracking, opts)?
    };
    let result = execute_with_store(
        ready.launcher.as_ref(),
        &ready.job,
        &ready.opts,
        shared_store,
    )
    .await;
    tracking.unregister(&ready.token);
    let end = result.map_err(|e| failed(e.to_string(), None))?;
    finish_script_created_runs(&lock_store(shared_store), run_id, &end)?;
    Ok(end)
}

fn lock_store(store: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A prepared run about to execute.
struct ReadyRun {
    job: Job,
    launcher: Box<dyn super::runner::Launcher>,
    /// The caller's options plus the run's own time limit.
    opts: ExecOptions,
    /// Its tracking token (registered; revoke it when the run ends).
    token: String,
}

fn ready_to_execute(
    store: &Store,
    root: &Path,
    run_id: &str,
    tracking: &TrackingServer,
    opts: &ExecOptions,
) -> WsResult<ReadyRun> {
    let run = store.run(run_id).map_err(store_err)?;
    let launch: LaunchSpec = store
        .launch(run_id)
        .map_err(store_err)?
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| failed(format!("run '{run_id}' has no launch information"), None))?;
    let launcher = super::launchers::launcher_for(store, &launch.target)?;
    let mut opts = opts.clone();
    if opts.max_duration.is_none() {
        opts.max_duration = launch.max_duration_seconds.map(Duration::from_secs);
    }
    let token = tracking.register_run(run_id, opts.on_metric.clone());
    let mut env = launch.env;
    env.extend(mlflow_env(&tracking.uri(), &run, &token, root));
    let job = Job {
        run_id: run_id.into(),
        workspace_root: root.into(),
        program: launch.program,
        args: launch.args,
        env,
        working_dir: store.run_dir(run_id),
        snapshot_id: run
            .properties
            .get("ContentSnapshotId")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    Ok(ReadyRun {
        job,
        launcher,
        opts,
        token,
    })
}

/// Runs the script created through MLflow (`mlflow.start_run()` without our id)
/// and left open end with their parent.
fn finish_script_created_runs(store: &Store, run_id: &str, end: &RunEnd) -> WsResult<()> {
    let children = store.child_runs(run_id).map_err(store_err)?;
    for child in children {
        if child.run_type == "mlflow" && !child.status.is_terminal() {
            let child_end = RunEnd {
                status: end.status,
                exit_code: None,
                error: None,
            };
            store
                .finish_run(&child.run_id, &child_end)
                .map_err(store_err)?;
        }
    }
    Ok(())
}

/// Run a prepared run in this process with its own tracking server: the
/// foreground `submit-script` and the detached supervisor both come here.
pub async fn run_with_own_tracking(
    root: &Path,
    run_id: &str,
    opts: &ExecOptions,
) -> WsResult<RunEnd> {
    let store = Arc::new(Mutex::new(Store::open(root).map_err(store_err)?));
    run_with_own_tracking_in(root, &store, run_id, opts).await
}

/// [`run_with_own_tracking`] through the caller's store connection, shared
/// with the tracking server: one database open per process.
pub async fn run_with_own_tracking_in(
    root: &Path,
    store: &Arc<Mutex<Store>>,
    run_id: &str,
    opts: &ExecOptions,
) -> WsResult<RunEnd> {
    let tracking = TrackingServer::start_with_store(root, store.clone())
        .await
        .map_err(|e| failed(e.to_string(), None))?;
    tracing::debug!(uri = tracking.uri(), "tracking endpoint started");
    let end = run_prepared_with_store(root, store, run_id, &tracking, opts).await;
    tracking.shutdown().await;
    tracing::debug!(run_id, "run finished");
    end
}

/// The hidden argv the detached supervisor is started with.
pub const SUPERVISE_ARG: &str = "__azml-supervise-run";

/// Step 3 (`--async`): start `azml __azml-supervise-run ROOT RUN_ID` in a new
/// session (no terminal, no Ctrl-C from the shell), record its pid so a dead
/// supervisor is noticed, and return without waiting.
pub fn spawn_detached_supervisor(root: &Path, run_id: &str) -> WsResult<u32> {
    let exe = std::env::current_exe()
        .map_err(|e| failed(format!("cannot find the azml executable: {e}"), None))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg(SUPERVISE_ARG)
        .arg(root)
        .arg(run_id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let child = super::process::spawn_in_new_session(&mut cmd)
        .map_err(|e| failed(format!("cannot start the run supervisor: {e}"), None))?;
    let pid = child.id();
    let store = Store::open(root).map_err(store_err)?;
    store.set_supervisor(run_id, pid).map_err(store_err)?;
    // Dropping a Child neither kills nor waits: the supervisor outlives us.
    drop(child);
    Ok(pid)
}

/// Entry point of the detached supervisor, recognised before normal argument
/// parsing. Returns `None` when argv is not a supervisor invocation.
pub fn supervise_from_argv() -> Option<i32> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() != 4 || args[1] != SUPERVISE_ARG {
        return None;
    }
    let root = PathBuf::from(&args[2]);
    let run_id = args[3].to_string_lossy().into_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let code = runtime.block_on(async move {
        let cancel = CancelToken::new();
        cancel_on_terminate(&cancel, "the run supervisor was asked to stop (SIGTERM)");
        let opts = ExecOptions {
            cancel,
            ..Default::default()
        };
        match run_with_own_tracking(&root, &run_id, &opts).await {
            Ok(end) if end.status == RunStatus::Completed => 0,
            _ => 1,
        }
    });
    Some(code)
}

/// Turn SIGTERM (and SIGHUP: the terminal went away) into a cancellation with `reason`.
pub fn cancel_on_terminate(cancel: &CancelToken, reason: &'static str) {
    use tokio::signal::unix::{SignalKind, signal};
    for kind in [SignalKind::terminate(), SignalKind::hangup()] {
        if let Ok(mut sig) = signal(kind) {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                if sig.recv().await.is_some() {
                    cancel.cancel(reason);
                }
            });
        }
    }
}

/// `run submit-script` on the local workspace: prepare, then either follow the
/// run in this process (streaming its output to `logs`; Ctrl-C cancels it) or,
/// with `--async`, hand it to a detached supervisor and return at once.
pub async fn submit_script(
    ws: &LocalWorkspace,
    request: &SubmitScript,
    logs: &dyn LogSink,
) -> WsResult<RunOutcome> {
    let submission = ScriptSubmission {
        experiment: request.experiment.clone(),
        run_config: request.run_config.clone(),
        source_dir: request.source_dir.clone(),
        project_dir: Some(request.project_dir.clone()),
        ..Default::default()
    };
    let ui = LogSinkUi(logs);
    let store = Arc::new(Mutex::new(ws.store()?));
    if !request.asynchronous {
        super::launchers::prewarm(&lock_store(&store), &request.run_config.target);
    }
    let prepared = ws.prepare_script_run_in(&lock_store(&store), &submission, &ui)?;
    let run_id = prepared.run.run_id.clone();
    ui.info(&format!("RunId: {run_id}"));
    if request.asynchronous {
        spawn_detached_supervisor(&ws.root, &run_id)?;
        return outcome_in(ws, &lock_store(&store), &run_id, false);
    }
    let cancel = CancelToken::new();
    let interrupted = cancel_on_interrupt(&cancel);
    cancel_on_terminate(&cancel, "canceled: azml received SIGTERM or SIGHUP");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let opts = ExecOptions {
        cancel,
        echo: Some(std::sync::Arc::new(move |chunk: &[u8]| {
            let _ = tx.send(chunk.to_vec());
        })),
        ..Default::default()
    };
    let root = ws.root.clone();
    let shared = store.clone();
    // `move`: the output channel closes when the run (and `opts`) is done.
    let run = async move { run_with_own_tracking_in(&root, &shared, &run_id, &opts).await };
    let (end, ()) = tokio::join!(run, forward_output(rx, logs));
    interrupted.abort();
    let end = end?;
    let was_interrupted = end.status == RunStatus::Canceled
        && end
            .error
            .as_ref()
            .is_some_and(|(_, reason)| reason == CTRL_C_REASON);
    outcome_in(
        ws,
        &lock_store(&store),
        &prepared.run.run_id,
        was_interrupted,
    )
}

/// `run monitor-logs`: stream the run's output from the start until it ends.
/// Ctrl-C stops following (the run itself goes on).
pub async fn monitor_logs(
    ws: &LocalWorkspace,
    run_id: &str,
    logs: &dyn LogSink,
) -> WsResult<RunOutcome> {
    ws.store()?.run(run_id).map_err(store_err)?;
    let chunker = std::sync::Mutex::new(Utf8Chunker::default());
    let sink = |bytes: &[u8]| {
        let text = chunker
            .lock()
            .map(|mut c| c.push(bytes))
            .unwrap_or_default();
        if !text.is_empty() {
            logs.write(&text);
        }
    };
    tokio::select! {
        run = ws.follow_logs(run_id, &sink) => {
            run?;
            outcome(ws, run_id, false)
        }
        _ = tokio::signal::ctrl_c() => outcome(ws, run_id, true),
    }
}

/// The run's v1 JSON as a command reports it when it ends.
pub(super) fn outcome(
    ws: &LocalWorkspace,
    run_id: &str,
    interrupted: bool,
) -> WsResult<RunOutcome> {
    outcome_in(ws, &ws.store()?, run_id, interrupted)
}

/// [`outcome`] through the caller's store connection.
pub(super) fn outcome_in(
    ws: &LocalWorkspace,
    store: &Store,
    run_id: &str,
    interrupted: bool,
) -> WsResult<RunOutcome> {
    let run = store.run(run_id).map_err(store_err)?;
    Ok(RunOutcome {
        run: ws.run_json(store, &run, false)?,
        interrupted,
    })
}

/// The cancel reason recorded when the user presses Ctrl-C.
pub const CTRL_C_REASON: &str = "canceled by user (Ctrl-C)";

/// Ctrl-C cancels the run (its whole process group), rather than killing azml
/// and orphaning the script.
fn cancel_on_interrupt(cancel: &CancelToken) -> tokio::task::JoinHandle<()> {
    let cancel = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel(CTRL_C_REASON);
        }
    })
}

async fn forward_output(mut rx: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>, logs: &dyn LogSink) {
    let mut chunker = Utf8Chunker::default();
    while let Some(bytes) = rx.recv().await {
        let text = chunker.push(&bytes);
        if !text.is_empty() {
            logs.write(&text);
        }
    }
    let rest = chunker.finish();
    if !rest.is_empty() {
        logs.write(&rest);
    }
}

/// Turns a byte stream into text without splitting a UTF-8 character across
/// chunks (invalid bytes become U+FFFD).
#[derive(Debug, Default)]
pub struct Utf8Chunker {
    pending: Vec<u8>,
}

impl Utf8Chunker {
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // An incomplete character at the end: wait for the rest.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

/// Submit's messages go where the run output goes (stderr), so stdout stays the result.
struct LogSinkUi<'a>(&'a dyn LogSink);

impl SubmitUi for LogSinkUi<'_> {
    fn warn(&self, message: &str) {
        self.0.warn(message);
    }
    fn info(&self, message: &str) {
        self.0.info(message);
    }
}

pub(super) fn store_err(e: super::store::StoreError) -> WorkspaceError {
    match e {
        super::store::StoreError::RunNotFound(id) => WorkspaceError::NotFound {
            kind: "run",
            name: id,
        },
        super::store::StoreError::ExperimentNotFound(name) => WorkspaceError::NotFound {
            kind: "experiment",
            name,
        },
        other => failed(other.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> RunConfig {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/v1-examples")
            .join(name);
        crate::model::runconfig::load(&path, &mut Vec::new()).expect("example loads")
    }

    /// Data inputs, nodeCount and Docker were ignored by local runs without a word.
    #[test]
    fn what_local_runs_do_not_do_is_named_for_the_example_runconfigs() {
        let mnist = not_honoured_locally(&example("mlops-cli-train-deploy-mnist.runconfig"));
        assert!(
            mnist.iter().any(|w| w.starts_with("nodeCount is 4")),
            "{mnist:?}"
        );
        assert!(
            mnist.iter().any(|w| w.starts_with("data input 'mnist'")),
            "{mnist:?}"
        );
        let aml = not_honoured_locally(&example("csiebler-train-aml.runconfig"));
        assert!(
            aml.iter()
                .any(|w| w.contains("'training_dataset'") && w.contains("$training_dataset")),
            "{aml:?}"
        );
        let spark = not_honoured_locally(&example("mlops-imagenet-docker.runconfig"));
        assert!(
            spark.iter().any(|w| w.starts_with("framework PySpark")),
            "{spark:?}"
        );
        // A plain local runconfig (python framework in any case, one node, no data) says nothing.
        let mut plain = RunConfig {
            framework: "python".into(),
            ..Default::default()
        };
        plain.environment.python.user_managed_dependencies = true;
        assert_eq!(not_honoured_locally(&plain), Vec::<String>::new());
    }

    #[test]
    fn a_command_line_script_replaces_runconfig_script_and_arguments() {
        let mut rc = RunConfig {
            script: Some("a.py".into()),
            arguments: vec!["--x".into(), "1".into()],
            ..Default::default()
        };
        apply_command_line(&mut rc, Some("b.py".into()), vec![]);
        assert_eq!(rc.script.as_deref(), Some("b.py"));
        assert!(rc.arguments.is_empty());
        apply_command_line(&mut rc, None, vec!["--y".into()]);
        assert_eq!(rc.arguments, ["--y"]);
    }

    #[test]
    fn utf8_split_across_chunks_is_reassembled() {
        let mut c = Utf8Chunker::default();
        let bytes = "né✓".as_bytes();
        let mut out = c.push(&bytes[..2]);
        out += &c.push(&bytes[2..4]);
        out += &c.push(&bytes[4..]);
        assert_eq!(out, "né✓");
        assert_eq!(c.push(&[0xff, b'a']), "\u{FFFD}a");
    }
}
