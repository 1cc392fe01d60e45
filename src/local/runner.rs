//! Runs one job (a training script) to completion and records it in the store.
//!
//! *How* the process starts is a [`Launcher`]: [`LocalLauncher`] spawns it on
//! this machine in its own process group; the SSH runner provides one that
//! spawns `ssh …` and knows how to stop the remote group and bring `outputs/`
//! back. Everything else is shared: status transitions, live output into
//! `user_logs/std_log.txt` (and optionally the terminal), v1 offline metric
//! lines, `maxRunDurationSeconds`, cancellation (Ctrl-C, `run cancel` from
//! another process, a sweep policy) and the final status.

use super::process;
use super::store::{MetricPoint, RunEnd, RunStatus, Store, StoreError, now_ms};
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

/// Where a run's combined stdout/stderr is kept, relative to its folder.
pub const STD_LOG: &str = "user_logs/std_log.txt";

/// Why running a job failed outright (as opposed to the script failing).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("cannot start '{program}': {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("cannot write the run log {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Launch(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything needed to start a run's process.
#[derive(Debug, Clone)]
pub struct Job {
    pub run_id: String,
    /// The workspace root holding the store.
    pub workspace_root: PathBuf,
    /// Executable (interpreter, or `/bin/sh` for a runconfig `command`).
    pub program: String,
    pub args: Vec<String>,
    /// Variables added to the inherited environment.
    pub env: BTreeMap<String, String>,
    /// The run folder: the snapshot, and where `outputs/` and `logs/` appear.
    pub working_dir: PathBuf,
    /// The snapshot the run folder was made from (`ContentSnapshotId`), when
    /// known: remote launchers find its saved manifest (and the host's copy) by it.
    pub snapshot_id: Option<String>,
}

/// A started process plus the way to stop it.
pub struct Launched {
    /// The job's output; the runner reads both to the end.
    pub stdout: Option<Box<dyn AsyncRead + Unpin + Send>>,
    pub stderr: Option<Box<dyn AsyncRead + Unpin + Send>>,
    /// How the job ends.
    pub exit: JobExit,
    /// Stops the job's processes: `force = false` asks politely (SIGTERM),
    /// `true` kills (SIGKILL). Must be safe to call after the process exited.
    pub stop: Box<dyn Fn(bool) + Send + Sync>,
    /// Local process group to record for orphan cleanup, if there is one.
    pub pgid: Option<u32>,
}

impl Launched {
    /// A job that is a local child process with stdout and stderr piped.
    pub fn from_child(
        mut child: tokio::process::Child,
        stop: Box<dyn Fn(bool) + Send + Sync>,
        pgid: Option<u32>,
    ) -> Self {
        Launched {
            stdout: child.stdout.take().map(|s| Box::new(s) as _),
            stderr: child.stderr.take().map(|s| Box::new(s) as _),
            exit: JobExit::of_child(child),
            stop,
            pgid,
        }
    }
}

type ExitFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = std::io::Result<std::process::ExitStatus>> + Send>,
>;

/// The end of a job, awaitable any number of times (the runner waits again
/// after a cancel): a local child, or a session on ssh's shared connection
/// that no local process stands for.
pub struct JobExit {
    pending: ExitFuture,
    ended: Option<std::process::ExitStatus>,
}

impl JobExit {
    /// The child's exit; dropping the `JobExit` before then kills it if it
    /// was spawned with `kill_on_drop`.
    pub fn of_child(mut child: tokio::process::Child) -> Self {
        Self::of(Box::pin(async move { child.wait().await }))
    }

    pub fn of(pending: ExitFuture) -> Self {
        JobExit {
            pending,
            ended: None,
        }
    }

    /// Cancel-safe: dropping a pending `wait` loses nothing.
    pub async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        if let Some(status) = self.ended {
            return Ok(status);
        }
        let status = self.pending.as_mut().await?;
        self.ended = Some(status);
        Ok(status)
    }
}

/// How to start a job's process (local, SSH, …).
pub trait Launcher: Send + Sync {
    /// Start the process with stdout and stderr piped and stdin closed.
    fn spawn(&self, job: &Job) -> Result<Launched, RunnerError>;
    /// Called once after the process ended, whatever the outcome, before the
    /// final status is recorded (the SSH runner copies `outputs/` back here).
    fn collect(&self, _job: &Job) -> Result<(), RunnerError> {
        Ok(())
    }
}

/// Spawns jobs on this machine, each in a new process group so that
/// cancelling kills the script and everything it started, and Ctrl-C at the
/// terminal reaches azml (which then cancels) rather than the script directly.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalLauncher;

/// Variables azml never passes to scripts (credentials meant for azml only).
const WITHHELD_ENV: &[&str] = &["AZML_ACCESS_TOKEN"];

impl Launcher for LocalLauncher {
    fn spawn(&self, job: &Job) -> Result<Launched, RunnerError> {
        let mut cmd = tokio::process::Command::new(&job.program);
        cmd.args(&job.args)
            .current_dir(&job.working_dir)
            .envs(&job.env)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        for var in WITHHELD_ENV {
            cmd.env_remove(var);
        }
        let child = cmd.spawn().map_err(|source| RunnerError::Spawn {
            program: job.program.clone(),
            source,
        })?;
        let pgid = child.id();
        let stop = Box::new(move |force: bool| {
            if let Some(pgid) = pgid {
                let sig = if force {
                    Signal::SIGKILL
                } else {
                    Signal::SIGTERM
                };
                process::signal_group(pgid, sig);
            }
        });
        Ok(Launched::from_child(child, stop, pgid))
    }
}

/// A cancellation request shared between whoever may cancel (Ctrl-C handler,
/// sweep policy, timer) and the runner. The first reason wins.
#[derive(Debug, Clone)]
pub struct CancelToken(Arc<watch::Sender<Option<String>>>);

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelToken {
    pub fn new() -> Self {
        CancelToken(Arc::new(watch::channel(None).0))
    }

    /// Ask for cancellation; later reasons are ignored.
    pub fn cancel(&self, reason: impl Into<String>) {
        let reason = reason.into();
        self.0.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    pub fn reason(&self) -> Option<String> {
        self.0.borrow().clone()
    }

    /// Resolves with the reason once cancelled.
    pub async fn cancelled(&self) -> String {
        let mut rx = self.0.subscribe();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return reason;
            }
            // The sender lives in `self`, so this only fails if it is dropped mid-wait.
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Called for every metric value logged for a run (MLflow endpoint or v1
/// offline-log lines), after it is stored. The sweep driver evaluates its
/// early-termination policy here and may cancel the run's [`CancelToken`].
pub type MetricHook = Arc<dyn Fn(&str, &MetricPoint) + Send + Sync>;

/// Receives the script's output bytes live (the terminal, for a foreground run).
pub type OutputSink = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// Knobs of one execution.
#[derive(Clone, Default)]
pub struct ExecOptions {
    /// `maxRunDurationSeconds`: past it the run is Canceled with that reason.
    pub max_duration: Option<Duration>,
    pub cancel: CancelToken,
    pub echo: Option<OutputSink>,
    pub on_metric: Option<MetricHook>,
    /// Time between SIGTERM and SIGKILL when cancelling (default 5 s).
    pub grace: Option<Duration>,
    /// Called once the script's processes are gone, before the run's
    /// bookkeeping: a sweep starts its next child then.
    pub on_exit: Option<Arc<dyn Fn() + Send + Sync>>,
}

/// How often the runner looks for a `run cancel` issued by another azml process.
const CANCEL_POLL: Duration = Duration::from_millis(300);
const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// Run `job` to the end: NotStarted → Running → Completed | Failed | Canceled.
/// Returns how it ended (also recorded in the store). An `Err` means azml
/// itself could not do its part; the run is then recorded Failed when possible.
pub async fn execute(
    launcher: &dyn Launcher,
    job: &Job,
    opts: &ExecOptions,
) -> Result<RunEnd, RunnerError> {
    let store = Arc::new(Mutex::new(Store::open(&job.workspace_root)?));
    execute_with_store(launcher, job, opts, &store).await
}

/// [`execute`] through a connection the caller already holds (a sweep shares
/// one among all its children rather than opening one per child).
pub async fn execute_with_store(
    launcher: &dyn Launcher,
    job: &Job,
    opts: &ExecOptions,
    store: &Arc<Mutex<Store>>,
) -> Result<RunEnd, RunnerError> {
    let store = store.clone();
    let exited = std::sync::OnceLock::new();
    let result = supervise(launcher, job, opts, &store, &exited).await;
    let end = match &result {
        Ok(end) => end.clone(),
        Err(e) => RunEnd {
            status: RunStatus::Failed,
            exit_code: None,
            error: Some(("ExecutionFailed".into(), e.to_string())),
        },
    };
    let ended_ms = exited
        .get()
        .copied()
        .unwrap_or_else(crate::local::store::now_ms);
    with_store(&store, |s| s.finish_run_at(&job.run_id, &end, ended_ms))?;
    // Someone else may have ended it first (e.g. the reaper); report what is stored.
    let stored = with_store(&store, |s| s.run(&job.run_id))?;
    result?;
    Ok(RunEnd {
        status: stored.status,
        exit_code: stored.exit_code,
        error: stored.error_code.zip(stored.error_message),
    })
}

fn with_store<T>(
    store: &Mutex<Store>,
    f: impl FnOnce(&Store) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let guard = store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    f(&guard)
}

/// Note the moment the script's processes are gone (`exited`) and tell
/// `opts.on_exit`.
fn script_gone(opts: &ExecOptions, exited: &std::sync::OnceLock<i64>) {
    if exited.set(crate::local::store::now_ms()).is_ok()
        && let Some(on_exit) = &opts.on_exit
    {
        on_exit();
    }
}

async fn supervise(
    launcher: &dyn Launcher,
    job: &Job,
    opts: &ExecOptions,
    store: &Arc<Mutex<Store>>,
    exited: &std::sync::OnceLock<i64>,
) -> Result<RunEnd, RunnerError> {
    // `run cancel` may have come while the run was still queued (sweeps) or being prepared.
    if let Some(reason) = with_store(store, |s| s.cancel_request(&job.run_id))? {
        return Ok(canceled(reason));
    }
    let log = open_log(&job.working_dir)?;
    let Launched {
        stdout,
        stderr,
        exit: mut child,
        stop,
        pgid,
    } = launcher.spawn(job)?;
    tracing::debug!(run_id = job.run_id, pgid, "script started");
    with_store(store, |s| {
        s.mark_started(&job.run_id, std::process::id(), pgid)
    })?;
    let readers = spawn_readers([stdout, stderr], job, opts, store, &log);
    let cancel_reason = tokio::select! {
        status = child.wait() => {
            let status = status.map_err(|e| RunnerError::Launch(format!("waiting for the script: {e}")));
            tracing::debug!(run_id = job.run_id, ?status, "script exited");
            stop(true); // leftovers in the group would keep the pipes open
            script_gone(opts, exited);
            if opts.on_exit.is_some() {
                // On one thread, let whoever was told act before this run's
                // bookkeeping: a sweep picks the slot up (first yield) and
                // its next child's task starts the process (second).
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
            }
            finish_readers(readers).await;
            let end = end_from_exit(status?);
            return Ok(collected(launcher, job, end));
        }
        reason = opts.cancel.cancelled() => reason,
        reason = deadline(opts.max_duration) => reason,
        reason = poll_cancel_request(store, &job.run_id) => reason,
    };
    opts.cancel.cancel(cancel_reason.clone());
    stop(false);
    let grace = opts.grace.unwrap_or(DEFAULT_GRACE);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        stop(true);
    }
    stop(true);
    let _ = child.wait().await;
    script_gone(opts, exited);
    finish_readers(readers).await;
    Ok(collected(launcher, job, canceled(cancel_reason)))
}

/// The launcher's last word on a run that got started: when it cannot
/// account for the run (an SSH connection lost mid-run, outputs that never
/// came back), the run is Failed with that reason, and it is still a run
/// with a final status the caller reports, not an azml error.
fn collected(launcher: &dyn Launcher, job: &Job, end: RunEnd) -> RunEnd {
    match launcher.collect(job) {
        Ok(()) => end,
        Err(e) => RunEnd {
            status: RunStatus::Failed,
            exit_code: end.exit_code,
            error: Some(("ExecutionFailed".into(), e.to_string())),
        },
    }
}

fn canceled(reason: String) -> RunEnd {
    RunEnd {
        status: RunStatus::Canceled,
        exit_code: None,
        error: Some(("Canceled".into(), reason)),
    }
}

async fn deadline(limit: Option<Duration>) -> String {
    match limit {
        Some(limit) => {
            tokio::time::sleep(limit).await;
            format!(
                "the run exceeded maxRunDurationSeconds ({} s)",
                limit.as_secs()
            )
        }
        None => std::future::pending().await,
    }
}

/// Notices a `run cancel` issued by another azml process (it sets a flag in the store).
async fn poll_cancel_request(store: &Arc<Mutex<Store>>, run_id: &str) -> String {
    loop {
        tokio::time::sleep(CANCEL_POLL).await;
        if let Ok(Some(reason)) = with_store(store, |s| s.cancel_request(run_id)) {
            return reason;
        }
    }
}

fn end_from_exit(status: std::process::ExitStatus) -> RunEnd {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => RunEnd {
            status: RunStatus::Completed,
            exit_code: Some(0),
            error: None,
        },
        (Some(code), _) => RunEnd {
            status: RunStatus::Failed,
            exit_code: Some(code as i64),
            error: Some((
                "UserError".into(),
                format!("the script exited with code {code}; see {STD_LOG}"),
            )),
        },
        (None, signal) => RunEnd {
            status: RunStatus::Failed,
            exit_code: None,
            error: Some((
                "UserError".into(),
                format!(
                    "the script was killed by signal {}; see {STD_LOG}",
                    signal.unwrap_or(0)
                ),
            )),
        },
    }
}

type SharedLog = Arc<Mutex<std::fs::File>>;

fn open_log(working_dir: &Path) -> Result<SharedLog, RunnerError> {
    let path = working_dir.join(STD_LOG);
    let err = |source| RunnerError::Log {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(err)?;
    Ok(Arc::new(Mutex::new(file)))
}

fn spawn_readers(
    streams: [Option<Box<dyn AsyncRead + Unpin + Send>>; 2],
    job: &Job,
    opts: &ExecOptions,
    store: &Arc<Mutex<Store>>,
    log: &SharedLog,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut readers = Vec::new();
    for stream in streams.into_iter().flatten() {
        let pump = OutputPump {
            run_id: job.run_id.clone(),
            log: log.clone(),
            echo: opts.echo.clone(),
            on_metric: opts.on_metric.clone(),
            store: store.clone(),
            parser: OfflineMetricParser::default(),
        };
        readers.push(tokio::spawn(pump.run(stream)));
    }
    readers
}

/// Waits for the output readers, but not forever: a grandchild that escaped
/// the process group could hold a pipe open.
async fn finish_readers(readers: Vec<tokio::task::JoinHandle<()>>) {
    for reader in readers {
        let abort = reader.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), reader)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

const MAX_PENDING_LINE: usize = 64 * 1024;

/// Copies one output stream to the log (and terminal) and feeds the v1 metric parser.
struct OutputPump {
    run_id: String,
    log: SharedLog,
    echo: Option<OutputSink>,
    on_metric: Option<MetricHook>,
    store: Arc<Mutex<Store>>,
    parser: OfflineMetricParser,
}

impl OutputPump {
    async fn run(mut self, mut stream: Box<dyn AsyncRead + Unpin + Send>) {
        let mut buf = vec![0u8; 16 * 1024];
        let mut pending_line = Vec::new();
        loop {
            let n = match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            if let Ok(mut file) = self.log.lock() {
                let _ = file.write_all(chunk);
            }
            if let Some(echo) = &self.echo {
                echo(chunk);
            }
            pending_line.extend_from_slice(chunk);
            while let Some(pos) = pending_line.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending_line.drain(..=pos).collect();
                self.feed(&String::from_utf8_lossy(&line));
            }
            // A progress bar redrawn with `\r` for hours never ends a line; metric
            // lines are short, so a huge unfinished line can be dropped.
            if pending_line.len() > MAX_PENDING_LINE {
                pending_line.clear();
            }
        }
        if !pending_line.is_empty() {
            let line = String::from_utf8_lossy(&pending_line).into_owned();
            self.feed(&line);
        }
    }

    fn feed(&mut self, line: &str) {
        let points = self.parser.feed(line, now_ms());
        if points.is_empty() {
            return;
        }
        let stored = with_store(&self.store, |s| s.log_metrics(&self.run_id, &points));
        if stored.is_ok()
            && let Some(hook) = &self.on_metric
        {
            for p in &points {
                hook(&self.run_id, p);
            }
        }
    }
}

/// Recognizes what azureml-core prints when a v1 script logs offline
/// (`Run.get_context().log(name, value)` outside Azure):
/// `Attempted to log scalar metric NAME:` and the value on the next line
/// (`list` metrics print a Python list). Steps count per metric name.
#[derive(Debug, Default)]
pub struct OfflineMetricParser {
    pending: Option<String>,
    steps: BTreeMap<String, i64>,
}

impl OfflineMetricParser {
    /// Feed one line (with or without its newline); returns the metric values it completes.
    pub fn feed(&mut self, line: &str, timestamp_ms: i64) -> Vec<MetricPoint> {
        let line = line.trim_end_matches(['\n', '\r']);
        if let Some(name) = self.pending.take() {
            let values = parse_metric_values(line);
            return values
                .into_iter()
                .map(|value| {
                    let step = self.steps.entry(name.clone()).or_insert(0);
                    let point = MetricPoint {
                        name: name.clone(),
                        value,
                        step: *step,
                        timestamp_ms,
                    };
                    *step += 1;
                    point
                })
                .collect();
        }
        self.pending = offline_metric_name(line);
        Vec::new()
    }
}

fn offline_metric_name(line: &str) -> Option<String> {
    let rest = line.strip_prefix("Attempted to log ")?;
    let (kind, rest) = rest.split_once(" metric ")?;
    if kind != "scalar" && kind != "list" {
        return None;
    }
    let name = rest.strip_suffix(':')?;
    (!name.is_empty()).then(|| name.to_string())
}

/// A number, `nan`/`inf`, Python `True`/`False`, or a list of those.
fn parse_metric_values(text: &str) -> Vec<f64> {
    let text = text.trim();
    let items: Vec<&str> = match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(inner) => inner.split(',').map(str::trim).collect(),
        None => vec![text],
    };
    items.into_iter().filter_map(parse_number).collect()
}

fn parse_number(text: &str) -> Option<f64> {
    match text {
        "True" => Some(1.0),
        "False" => Some(0.0),
        _ => text.parse::<f64>().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_scalar_metric_lines_become_metrics_with_steps() {
        let mut p = OfflineMetricParser::default();
        let mut got = Vec::new();
        for line in [
            "epoch 1\n",
            "Attempted to log scalar metric accuracy:\n",
            "0.5\n",
            "Attempted to log scalar metric accuracy:\n",
            "0.75\n",
            "Attempted to log list metric losses:\n",
            "[1.0, 0.5]\n",
        ] {
            got.extend(p.feed(line, 7));
        }
        let summary: Vec<(String, f64, i64)> =
            got.into_iter().map(|m| (m.name, m.value, m.step)).collect();
        assert_eq!(
            summary,
            [
                ("accuracy".to_string(), 0.5, 0),
                ("accuracy".to_string(), 0.75, 1),
                ("losses".to_string(), 1.0, 0),
                ("losses".to_string(), 0.5, 1),
            ]
        );
    }

    #[test]
    fn a_non_numeric_value_after_the_marker_is_not_a_metric() {
        let mut p = OfflineMetricParser::default();
        assert!(p.feed("Attempted to log scalar metric x:", 0).is_empty());
        assert!(p.feed("hello", 0).is_empty());
        assert!(p.feed("1.0", 0).is_empty());
    }

    /// A sweep hands a child's slot on from `on_exit`; the child's end time is
    /// when its process ended, not when its bookkeeping finished, so runs
    /// of a one-at-a-time sweep never overlap in the history.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_exit_comes_before_the_bookkeeping_and_the_end_time_is_the_exit() {
        let ws = tempfile::tempdir().expect("ws");
        let store = Arc::new(Mutex::new(Store::open(ws.path()).expect("store")));
        let new = crate::local::store::NewRun {
            run_id: "r1".into(),
            experiment: "e".into(),
            parent_run_id: None,
            run_type: "azureml.scriptrun".into(),
            target: "local".into(),
            display_name: None,
            properties: Default::default(),
            tags: Default::default(),
        };
        let dir = with_store(&store, |s| {
            s.create_run(&new)?;
            Ok(s.run_dir("r1"))
        })
        .expect("run");
        let seen = Arc::new(Mutex::new(None));
        let opts = ExecOptions {
            on_exit: Some({
                let (store, seen) = (store.clone(), seen.clone());
                Arc::new(move || {
                    let status = with_store(&store, |s| s.run("r1")).map(|r| r.status);
                    *seen.lock().unwrap() = Some((status.ok(), crate::local::store::now_ms()));
                    // Bookkeeping that follows must not change the recorded end.
                    std::thread::sleep(Duration::from_millis(30));
                })
            }),
            ..Default::default()
        };
        let job = Job {
            run_id: "r1".into(),
            workspace_root: ws.path().to_path_buf(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "exit 0".into()],
            env: BTreeMap::new(),
            working_dir: dir,
            snapshot_id: None,
        };
        let end = execute_with_store(&LocalLauncher, &job, &opts, &store)
            .await
            .expect("ran");
        assert_eq!(end.status, RunStatus::Completed);
        let (status_then, hook_ms) = seen.lock().unwrap().take().expect("on_exit was called");
        assert_eq!(
            status_then,
            Some(RunStatus::Running),
            "called before the run was finished"
        );
        let run = with_store(&store, |s| s.run("r1")).expect("run");
        let end_ms = run.end_ms.expect("end time");
        assert!(
            end_ms <= hook_ms,
            "end {end_ms} recorded after the exit was reported ({hook_ms})"
        );
    }

    /// `run cancel` of a run not started yet (a prepared sweep child): it
    /// ends Canceled with the reason, and its script never starts.
    #[tokio::test]
    async fn a_run_canceled_before_its_start_ends_canceled_without_starting_its_script() {
        let ws = tempfile::tempdir().expect("ws");
        let store = Arc::new(Mutex::new(Store::open(ws.path()).expect("store")));
        let new = crate::local::store::NewRun {
            run_id: "r1".into(),
            experiment: "e".into(),
            parent_run_id: None,
            run_type: "azureml.scriptrun".into(),
            target: "local".into(),
            display_name: None,
            properties: Default::default(),
            tags: Default::default(),
        };
        let dir = with_store(&store, |s| {
            s.create_run(&new)?;
            s.request_cancel("r1", "not needed any more")?;
            Ok(s.run_dir("r1"))
        })
        .expect("run");
        std::fs::create_dir_all(&dir).expect("dir");
        let marker = dir.join("ran");
        let job = Job {
            run_id: "r1".into(),
            workspace_root: ws.path().to_path_buf(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), format!("touch '{}'", marker.display())],
            env: BTreeMap::new(),
            working_dir: dir,
            snapshot_id: None,
        };
        let end = execute_with_store(&LocalLauncher, &job, &ExecOptions::default(), &store)
            .await
            .expect("ran");
        assert_eq!(end.status, RunStatus::Canceled);
        assert!(!marker.exists(), "the script started");
        let run = with_store(&store, |s| s.run("r1")).expect("run");
        assert_eq!(run.status, RunStatus::Canceled);
        assert_eq!(run.error_message.as_deref(), Some("not needed any more"));
    }

    #[tokio::test]
    async fn cancel_token_keeps_the_first_reason() {
        let t = CancelToken::new();
        t.cancel("first");
        t.cancel("second");
        assert_eq!(t.cancelled().await, "first");
    }
}
