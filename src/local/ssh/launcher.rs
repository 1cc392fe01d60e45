//! The runner's [`Launcher`] for SSH targets: the shared runner keeps doing
//! statuses, logs, metrics, timeouts and cancellation; this decides how the
//! process starts (sync + `ssh`), how it stops (kill the remote process
//! group) and what happens after (fetch `outputs/`/`logs/`, notice a lost
//! connection and fail the run with the reason).

use super::remote::{self, Finish, HostRunState, LaunchStatus, LaunchTrailer};
use super::sync::{self, SyncEntry};
use super::{Ssh, SshContext, SshError, SshTarget};
use crate::local::runner::{Job, JobExit, Launched, Launcher, RunnerError, STD_LOG};
use crate::local::store::{ComputeRecord, Store};
use crate::local::tracking::ARTIFACT_URI_PROPERTY;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long stopping the remote group may hold up the runner.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Interpreter for azml's own helper on the host (the sync program).
const HELPER_PYTHON: &str = "python3";
/// Variables that describe this machine and mean nothing on the host (set
/// again for the host where they have a counterpart there).
const LOCAL_ONLY_ENV: &[&str] = &["MLFLOW_ARTIFACT_URI"];

/// Launches jobs on one SSH host.
pub struct SshLauncher {
    ssh: Ssh,
    /// The host's `$HOME` as `attach` found it, for artifact locations.
    remote_home: Option<String>,
    /// The workspace's local snapshot store (manifests and objects to send).
    snapshots: std::path::PathBuf,
    /// One empty file per snapshot tree this host is known to have: lets the
    /// common path skip asking. A hint only: a host without the tree says so
    /// and the launcher syncs and launches again.
    known_trees: std::path::PathBuf,
    jobs: Mutex<HashMap<String, Arc<Mutex<JobState>>>>,
}

/// What the launcher learns about one job while it runs.
#[derive(Debug, Default)]
struct JobState {
    /// (host port, local port) of the tracking forward.
    forward: Option<(u16, u16)>,
    /// The runner asked for a polite stop: a cancel, not a lost connection.
    stop_requested: bool,
    /// Why the connection is considered lost, if it is.
    lost: Option<String>,
    /// The host could not be reached when the run's ssh ended.
    unreachable: bool,
    /// `outputs/` and `logs/` are back already.
    fetched: bool,
    /// How the launch session's stderr ended (its trailer), once it has.
    trailer: Option<std::sync::mpsc::Receiver<LaunchTrailer>>,
}

/// An ssh launch session waiting for its script.
struct Session {
    link: Link,
    /// The session's stdin: the script, then the environment.
    stdin: std::io::PipeWriter,
    /// The session's raw stderr (marker lines still in).
    stderr: std::io::PipeReader,
    nonce: String,
}

/// What carries a launch session. Dropping it ends the session.
enum Link {
    /// A session the shared connection's master runs for azml directly.
    Mux {
        session: super::mux::MuxSession,
        stdout: std::io::PipeReader,
    },
    /// An `ssh` client (no live shared connection to ask, or it refused).
    Client(tokio::process::Child),
}

/// Sessions opened by [`SshLauncher::prewarm`], by host, for the next launch.
static PREWARMED: Mutex<Option<HashMap<String, Session>>> = Mutex::new(None);

/// A launch session that reported `ready`.
struct Started {
    stdout: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>,
    stderr: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    exit: JobExit,
    trailer: std::sync::mpsc::Receiver<LaunchTrailer>,
}

/// The environment's body for the host, computed once per launch.
type EnvBody<'a> = dyn FnMut() -> Result<String, SshError> + 'a;

fn join_forward(
    handle: Option<std::thread::ScopedJoinHandle<'_, Result<Option<u16>, SshError>>>,
) -> Result<Option<u16>, SshError> {
    match handle {
        Some(h) => h
            .join()
            .unwrap_or_else(|_| Err(panicked("tracking forward"))),
        None => Ok(None),
    }
}

/// How long a finished launch session's stderr may take to deliver its trailer.
const TRAILER_WAIT: Duration = Duration::from_secs(2);

impl SshLauncher {
    pub fn new(
        target: SshTarget,
        workspace_root: &Path,
        remote_home: Option<String>,
    ) -> Result<Self, SshError> {
        let ssh = Ssh::new(target, SshContext::for_workspace(workspace_root))?;
        let known_trees = workspace_root
            .join("ssh")
            .join("hosts")
            .join(ssh.host_id())
            .join("trees");
        Ok(SshLauncher {
            ssh,
            remote_home,
            snapshots: workspace_root.join("snapshots"),
            known_trees,
            jobs: Mutex::new(HashMap::new()),
        })
    }

    /// The launcher for a stored SSH target (`attach` recorded the host's home).
    pub fn from_record(record: &ComputeRecord, workspace_root: &Path) -> Result<Self, SshError> {
        let home = record
            .properties
            .get("hostCheck")
            .and_then(|c| c.get("home"))
            .and_then(|h| h.as_str())
            .filter(|h| h.starts_with('/'))
            .map(str::to_string);
        Self::new(super::attach::from_record(record)?, workspace_root, home)
    }

    /// `mlflow.log_artifact` on the host writes into the run's `outputs/`
    /// there (copied back at the end), not to this machine's path.
    fn point_artifacts_at_the_host(&self, job: &Job) -> Option<String> {
        let home = self.remote_home.as_deref()?;
        let uri = format!("file://{home}/.azml/runs/{}/outputs", job.run_id);
        let props = serde_json::Map::from_iter([(
            ARTIFACT_URI_PROPERTY.to_string(),
            serde_json::Value::String(uri.clone()),
        )]);
        let stored =
            Store::open(&job.workspace_root).and_then(|s| s.add_properties(&job.run_id, &props));
        if let Err(e) = stored {
            tracing::warn!("cannot record the artifact location of {}: {e}", job.run_id);
            return None;
        }
        Some(uri)
    }

    fn state(&self, run_id: &str) -> Arc<Mutex<JobState>> {
        lock(&self.jobs)
            .entry(run_id.to_string())
            .or_default()
            .clone()
    }

    /// Start the job in one ssh session (see [`remote::tree_launch_script`]).
    /// Everything else overlaps with it: the tracking forward and the local
    /// artifact-location record run alongside; a sync happens first only when
    /// this host is not known to have the snapshot's tree.
    fn launch(&self, job: &Job, state: &Mutex<JobState>) -> Result<Launched, SshError> {
        self.ssh.ensure_master_quick()?;
        self.ssh.ensure_known_hosts_dir()?;
        let local_tracking = tracking_port(&job.env);
        let (started, forward) = std::thread::scope(|s| {
            let mut forwarding = Some(s.spawn(|| {
                local_tracking
                    .map(|port| self.ssh.forward_remote(port))
                    .transpose()
            }));
            let mut artifacts = Some(s.spawn(|| self.point_artifacts_at_the_host(job)));
            let mut forward = None;
            let mut cached: Option<String> = None;
            // Called by `start` right after the session is opened: the forward
            // and the artifact record overlap with the session's set-up.
            let mut env_body = || -> Result<String, SshError> {
                if let Some(env) = &cached {
                    return Ok(env.clone());
                }
                let remote = join_forward(forwarding.take())?;
                tracing::debug!(?remote, "tracking forward ready");
                forward = remote.zip(local_tracking);
                let uri = artifacts.take().and_then(|h| h.join().ok()).flatten();
                tracing::debug!("artifact location recorded");
                let env = self.env_script(job, uri, remote)?;
                cached = Some(env.clone());
                Ok(env)
            };
            let started = self.start_with_tree(job, &mut env_body);
            // A launch that failed before asking for the environment.
            if let Ok(Some(remote)) = join_forward(forwarding.take()) {
                forward = local_tracking.map(|local| (remote, local));
            }
            (started, forward)
        });
        let Started {
            stdout,
            stderr,
            exit,
            trailer,
        } = match started {
            Ok(started) => started,
            Err(e) => {
                if let Some((_, local)) = forward {
                    self.ssh.cancel_forward_detached(local);
                }
                return Err(e);
            }
        };
        let mut st = lock(state);
        st.forward = forward;
        st.trailer = Some(trailer);
        Ok(Launched {
            stdout,
            stderr: Some(stderr),
            exit,
            stop: Box::new(|_| {}),
            pgid: None,
        })
    }

    /// The variables for the host: the job's, minus what only means something
    /// here, with tracking and artifacts pointed at the host's ends.
    fn env_script(
        &self,
        job: &Job,
        artifact_uri: Option<String>,
        remote_tracking: Option<u16>,
    ) -> Result<String, SshError> {
        let mut env: Vec<(String, String)> = job
            .env
            .iter()
            .filter(|(k, _)| !LOCAL_ONLY_ENV.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(uri) = artifact_uri {
            env.push(("MLFLOW_ARTIFACT_URI".into(), uri));
        }
        remote::env_script(&env, remote_tracking)
    }

    /// Launch from the snapshot's tree; sync first when the host is not known
    /// to have it, and again (once) when the host turns out not to.
    fn start_with_tree(&self, job: &Job, env: &mut EnvBody) -> Result<Started, SshError> {
        let known = job
            .snapshot_id
            .as_deref()
            .filter(|id| sync::check_tree_id(id).is_ok() && self.known_tree(id).exists());
        let tree = match known {
            Some(id) => {
                tracing::info!(
                    "snapshot {} is already on {}: nothing to send",
                    &id[..12],
                    self.ssh.target.display()
                );
                id.to_string()
            }
            None => self.sync_tree(job)?,
        };
        if let Some(started) = self.start(job, &tree, env)? {
            return Ok(started);
        }
        // The host lost it (its ~/.azml was cleaned): forget, sync, launch again.
        let _ = std::fs::remove_file(self.known_tree(&tree));
        let tree = self.sync_tree(job)?;
        self.start(job, &tree, env)?
            .ok_or_else(|| SshError::Remote {
                host: self.ssh.target.display(),
                what: "preparing the run folder".into(),
                detail: format!("snapshot tree {tree} is still missing after a sync"),
            })
    }

    /// Send what the host lacks of the job's snapshot and build its tree there.
    fn sync_tree(&self, job: &Job) -> Result<String, SshError> {
        let (tree, entries) = self.snapshot_entries(job)?;
        let report = sync::ensure_tree(&self.ssh, &tree, HELPER_PYTHON, &entries)?;
        tracing::info!(
            "synced {} files to {} ({} new, {} bytes sent)",
            report.files,
            self.ssh.target.display(),
            report.objects_sent,
            report.bytes_sent
        );
        let marker = self.known_tree(&tree);
        if let Some(dir) = marker.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(&marker, b"");
        Ok(tree)
    }

    /// The snapshot's files from its saved manifest (nothing hashed again);
    /// a run prepared without one falls back to hashing its folder.
    fn snapshot_entries(&self, job: &Job) -> Result<(String, Vec<SyncEntry>), SshError> {
        let saved = job.snapshot_id.as_deref().and_then(|id| {
            let store = crate::snapshot::Store::open(&self.snapshots).ok()?;
            let manifest = store.load_manifest(id)?;
            Some((id.to_string(), SyncEntry::from_manifest(&store, &manifest)))
        });
        if let Some(found) = saved {
            return Ok(found);
        }
        let entries = folder_entries(&job.working_dir)?;
        Ok((sync::tree_id(&entries), entries))
    }

    fn known_tree(&self, tree: &str) -> std::path::PathBuf {
        self.known_trees.join(tree)
    }

    /// Start the ssh session of this process's next launch on the host now,
    /// before the run is prepared: the ssh client's start, the session and the
    /// host's shell overlap with azml's own preparation (store, snapshot,
    /// tracking endpoint). The session waits for its script on stdin; unused
    /// (the run failed before launching), it ends when azml exits.
    /// Only with a live shared connection: a first connection is made once, by the launch.
    pub fn prewarm(&self) {
        if !self.ssh.control_socket().is_some_and(|s| s.exists()) {
            return;
        }
        match self.open_session() {
            Ok(session) => {
                let mut all = lock(&PREWARMED);
                all.get_or_insert_with(HashMap::new)
                    .insert(self.ssh.host_id(), session);
            }
            Err(e) => tracing::debug!("no early launch session: {e}"),
        }
    }

    /// A launch session running the bootstrap that reads the run's script
    /// from stdin (see [`remote::launch_bootstrap`]): asked of the shared
    /// connection's master directly when it is up, else an `ssh` client.
    fn open_session(&self) -> Result<Session, SshError> {
        let nonce = format!("azml-{}", uuid::Uuid::new_v4().simple());
        let bootstrap = remote::launch_bootstrap(&nonce);
        if let Some(socket) = self.ssh.control_socket().filter(|s| s.exists()) {
            match open_mux_session(&socket, &bootstrap) {
                Ok((link, stdin, stderr)) => {
                    return Ok(Session {
                        link,
                        stdin,
                        stderr,
                        nonce,
                    });
                }
                Err(e) => {
                    tracing::debug!("no session from the shared connection ({e}); starting ssh")
                }
            }
        }
        let pipe_err = |e| SshError::io("creating a pipe for the launch session", e);
        let (raw_read, raw_write) = std::io::pipe().map_err(pipe_err)?;
        // A plain pipe, written with blocking writes: the launch must not
        // depend on the async runtime getting to a writer task (a detached
        // supervisor's runtime has a single thread, blocked here meanwhile).
        let (stdin_read, stdin_write) = std::io::pipe().map_err(pipe_err)?;
        let mut command = self.ssh.tokio_command(&bootstrap);
        command
            .stdin(stdin_read)
            .stdout(Stdio::piped())
            .stderr(raw_write)
            .kill_on_drop(true);
        let child = command.spawn().map_err(SshError::Spawn);
        drop(command); // our copies of the pipes' child ends: EOF must mean ssh ended
        Ok(Session {
            link: Link::Client(child?),
            stdin: stdin_write,
            stderr: raw_read,
            nonce,
        })
    }

    /// Open the launch session and wait for it to report. `None`: the host
    /// lacks the tree and nothing was started.
    fn start(&self, job: &Job, tree: &str, env: &mut EnvBody) -> Result<Option<Started>, SshError> {
        let early = lock(&PREWARMED)
            .as_mut()
            .and_then(|all| all.remove(&self.ssh.host_id()));
        let Session {
            link,
            mut stdin,
            stderr: raw_read,
            nonce,
        } = match early {
            Some(session) => session,
            None => self.open_session()?,
        };
        let mut argv = vec![job.program.clone()];
        argv.extend(job.args.iter().cloned());
        let script = remote::tree_launch_script(&job.run_id, tree, &nonce, &argv);
        let (seen_read, seen_write) =
            std::io::pipe().map_err(|e| SshError::io("creating a pipe for the run's stderr", e))?;
        let (status_tx, status_rx) = std::sync::mpsc::channel();
        let (trailer_tx, trailer_rx) = std::sync::mpsc::channel();
        let filter_nonce = nonce.clone();
        let dest = job.working_dir.clone();
        std::thread::spawn(move || {
            let trailer =
                remote::filter_launch_stderr(raw_read, seen_write, &filter_nonce, &dest, status_tx);
            let _ = trailer_tx.send(trailer);
        });
        // The script goes at once; the environment (with the tracking token)
        // follows as soon as it is known, then EOF. The host never waits for
        // azml's answer to `ready`. Dropping the child on an error closes the
        // session before the command starts. A write error means ssh ended:
        // its stderr says why.
        let _ = stdin.write_all(remote::launch_payload(&script, &nonce).as_bytes());
        let env_script = env()? + &remote::launch_env_end(&nonce);
        let _ = stdin.write_all(env_script.as_bytes());
        drop(stdin);
        let status = status_rx.recv();
        tracing::debug!(?status, "launch session answered");
        match status {
            Ok(LaunchStatus::Ready) => {
                let stderr = std::process::ChildStderr::from(std::os::fd::OwnedFd::from(seen_read));
                let stderr = tokio::process::ChildStderr::from_std(stderr)
                    .map_err(|e| SshError::io("reading the run's stderr", e))?;
                let (stdout, exit) = watch(link)?;
                Ok(Some(Started {
                    stdout,
                    stderr: Box::new(stderr),
                    exit,
                    trailer: trailer_rx,
                }))
            }
            Ok(LaunchStatus::NoTree) => Ok(None),
            Ok(LaunchStatus::Ended(said)) => {
                Err(self
                    .ssh
                    .failure("starting the run", Some(super::command::SSH_FAILURE), &said))
            }
            Err(_) => Err(panicked("reading the run's stderr")),
        }
    }
}

/// A session from the shared connection's master, with the pipes azml
/// keeps: (link, stdin to write, raw stderr to read).
fn open_mux_session(
    socket: &Path,
    bootstrap: &str,
) -> Result<(Link, std::io::PipeWriter, std::io::PipeReader), SshError> {
    let pipe_err = |e| SshError::io("creating a pipe for the launch session", e);
    let (stdin_read, stdin_write) = std::io::pipe().map_err(pipe_err)?;
    let (stdout_read, stdout_write) = std::io::pipe().map_err(pipe_err)?;
    let (stderr_read, stderr_write) = std::io::pipe().map_err(pipe_err)?;
    let session = super::mux::open_session(
        socket,
        &super::command::remote_command(bootstrap),
        &locale_env(),
        stdin_read.into(),
        stdout_write.into(),
        stderr_write.into(),
    )
    .map_err(|e| {
        SshError::io(
            "opening a session on the shared connection",
            std::io::Error::other(e),
        )
    })?;
    let link = Link::Mux {
        session,
        stdout: stdout_read,
    };
    Ok((link, stdin_write, stderr_read))
}

/// `LANG` and `LC_*`, which an ssh client offers the host under the stock
/// `SendEnv LANG LC_*` of Debian's and Red Hat's `ssh_config`: a session
/// asked of the master directly gets what `ssh host cmd` would.
fn locale_env() -> Vec<String> {
    std::env::vars()
        .filter(|(name, _)| name == "LANG" || name.starts_with("LC_"))
        .map(|(name, value)| format!("{name}={value}"))
        .collect()
}

/// The session's stdout and end, as the runner watches them. A mux session's
/// end is read on a thread of its own; dropping the [`JobExit`] before it
/// ends closes the session, as dropping an ssh client kills it.
fn watch(
    link: Link,
) -> Result<
    (
        Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>,
        JobExit,
    ),
    SshError,
> {
    match link {
        Link::Client(mut child) => {
            let stdout = child.stdout.take().map(|s| Box::new(s) as _);
            Ok((stdout, JobExit::of_child(child)))
        }
        Link::Mux { session, stdout } => {
            let stdout = std::process::ChildStdout::from(std::os::fd::OwnedFd::from(stdout));
            let stdout = tokio::process::ChildStdout::from_std(stdout)
                .map_err(|e| SshError::io("reading the run's output", e))?;
            let closer = session
                .closer()
                .map_err(|e| SshError::io("watching the run's session", e))?;
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let _ = tx.send(session.wait());
            });
            // Owned by the future from the start: dropped unpolled, it still closes.
            let close_if_dropped = CloseOnDrop(closer);
            let exit = async move {
                let _close_if_dropped = close_if_dropped;
                let code = rx.await.unwrap_or(super::mux::NO_EXIT_STATUS);
                Ok(std::os::unix::process::ExitStatusExt::from_raw(
                    (code & 0xff) << 8,
                ))
            };
            Ok((Some(Box::new(stdout)), JobExit::of(Box::pin(exit))))
        }
    }
}

/// Ends a mux session when its watcher is dropped (harmless once it ended).
struct CloseOnDrop(super::mux::SessionCloser);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

fn panicked(what: &str) -> SshError {
    SshError::io(what, std::io::Error::other("thread panicked"))
}

impl Launcher for SshLauncher {
    fn spawn(&self, job: &Job) -> Result<Launched, RunnerError> {
        let state = self.state(&job.run_id);
        let mut launched = blocking_section(|| self.launch(job, &state)).map_err(launch_err)?;
        let ssh = self.ssh.clone();
        let target = StopTarget {
            run_id: job.run_id.clone(),
            working_dir: job.working_dir.clone(),
        };
        launched.stop = Box::new(move |force: bool| stop(&ssh, &target, &state, force));
        Ok(launched)
    }

    fn collect(&self, job: &Job) -> Result<(), RunnerError> {
        let state = lock(&self.jobs).remove(&job.run_id).unwrap_or_default();
        let state = std::mem::take(&mut *lock(&state));
        blocking_section(|| self.collect_blocking(job, state))
    }
}

impl SshLauncher {
    fn collect_blocking(&self, job: &Job, state: JobState) -> Result<(), RunnerError> {
        let lost = match (state.lost, state.unreachable) {
            (Some(reason), true) => self.recheck_after_reconnect(&job.run_id, reason),
            (lost, _) => lost,
        };
        if let Some((_, local)) = state.forward {
            // Nothing waits for this: the run is over either way.
            self.ssh.cancel_forward_detached(local);
        }
        let fetched = match state.fetched {
            true => Ok(0),
            false => remote::fetch_outputs(&self.ssh, &job.run_id, &job.working_dir),
        };
        if let Some(reason) = lost {
            return Err(RunnerError::Launch(reason));
        }
        fetched.map(|_| ()).map_err(|e| {
            RunnerError::Launch(format!(
                "the run ended but its outputs could not be copied back: {e}"
            ))
        })
    }

    /// The host was unreachable when the run's ssh ended: try again a few
    /// times (bounded) to learn how the run ended there.
    fn recheck_after_reconnect(&self, run_id: &str, reason: String) -> Option<String> {
        let mut last = reason;
        for delay in remote::RECONNECT_DELAYS {
            std::thread::sleep(delay);
            match remote::host_run_state(&self.ssh, run_id) {
                Ok(HostRunState::Exited(_)) => return None,
                Ok(HostRunState::Running) => {
                    let _ = remote::stop_remote(&self.ssh, run_id);
                    return Some(lost_message(
                        &self.ssh.target.display(),
                        "the remote process was stopped",
                    ));
                }
                Ok(HostRunState::Gone) => {
                    return Some(lost_message(
                        &self.ssh.target.display(),
                        "the remote process ended without an exit status",
                    ));
                }
                Err(e) => last = e.to_string(),
            }
        }
        Some(format!(
            "connection to {} lost; {} reconnect attempts failed (last: {last})",
            self.ssh.target.display(),
            remote::RECONNECT_DELAYS.len()
        ))
    }
}

fn lost_message(host: &str, what: &str) -> String {
    format!("connection to {host} lost during the run; {what}")
}

/// The runner's stop: polite (TERM) or forced (KILL) on the remote group.
/// The forced stop right after the ssh client ended also brings the outputs
/// back (one round trip), and, when no polite stop came before it, tells a
/// run that really ended from a connection that dropped.
fn stop(ssh: &Ssh, job: &StopTarget, state: &Mutex<JobState>, force: bool) {
    if !force {
        lock(state).stop_requested = true;
        let script = remote::signal_script(&job.run_id, "TERM");
        let ssh = ssh.clone();
        blocking_section(|| {
            bounded(STOP_TIMEOUT, move || {
                ssh.run("stopping the run", &script, b"")
            })
        });
        return;
    }
    if lock(state).fetched || trailer_arrived(state) {
        return;
    }
    let host = ssh.target.display();
    let answer = {
        let (ssh, run_id, dir) = (ssh.clone(), job.run_id.clone(), job.working_dir.clone());
        blocking_section(|| bounded(STOP_TIMEOUT, move || remote::finish(&ssh, &run_id, &dir)))
    };
    let mut st = lock(state);
    let (lost, unreachable) = match answer {
        Some(Ok(Finish::Exited { .. })) => {
            st.fetched = true;
            (None, false)
        }
        Some(Ok(Finish::NeverStarted)) => (None, false),
        Some(Ok(Finish::Killed)) => (
            Some(lost_message(&host, "the remote process was stopped")),
            false,
        ),
        Some(Ok(Finish::Gone)) => (
            Some(lost_message(
                &host,
                "the remote process ended without an exit status",
            )),
            false,
        ),
        Some(Err(e)) => (Some(e.to_string()), true),
        None => (Some("the host did not answer in time".into()), true),
    };
    // After a cancel, a killed or unreachable run is expected, not "lost".
    if !st.stop_requested && st.lost.is_none() {
        st.lost = lost;
        st.unreachable = unreachable;
    }
}

/// The launch session ended the normal way: the host killed what was left of
/// the run's group and sent outputs/logs back with it. Waits (bounded) for
/// the stderr filter only once; a session still running (a cancel's first
/// forced stop) simply has no trailer yet.
fn trailer_arrived(state: &Mutex<JobState>) -> bool {
    let Some(rx) = lock(state).trailer.take() else {
        return false;
    };
    let arrived = match rx.recv_timeout(TRAILER_WAIT) {
        Ok(LaunchTrailer {
            outputs: Some(Ok(bytes)),
        }) => {
            tracing::debug!("outputs came back with the run ({bytes} bytes)");
            true
        }
        Ok(LaunchTrailer {
            outputs: Some(Err(e)),
        }) => {
            tracing::warn!("unpacking the run's outputs failed: {e}; fetching them again");
            false
        }
        _ => false,
    };
    if arrived {
        lock(state).fetched = true;
    }
    arrived
}

/// What a stop closure needs to know about its job.
struct StopTarget {
    run_id: String,
    working_dir: std::path::PathBuf,
}

/// Files of the local run folder to send: the snapshot, not azml's own log.
fn folder_entries(working_dir: &Path) -> Result<Vec<SyncEntry>, SshError> {
    let mut entries = SyncEntry::from_dir(working_dir)
        .map_err(|e| SshError::io(format!("reading the snapshot {}", working_dir.display()), e))?;
    let own_log_dir = Path::new(STD_LOG).parent().unwrap_or(Path::new(""));
    entries.retain(|e| !e.path.starts_with(own_log_dir));
    Ok(entries)
}

/// The local port of `MLFLOW_TRACKING_URI` (`http://127.0.0.1:PORT`), if any.
fn tracking_port(env: &BTreeMap<String, String>) -> Option<u16> {
    let uri = env.get("MLFLOW_TRACKING_URI")?;
    let rest = uri.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    matches!(host, "127.0.0.1" | "localhost").then_some(())?;
    port.parse().ok()
}

fn launch_err(e: SshError) -> RunnerError {
    use crate::error::ExitCoded;
    match e.hint() {
        Some(hint) => RunnerError::Launch(format!("{e} ({hint})")),
        None => RunnerError::Launch(e.to_string()),
    }
}

/// Run `f` on a helper thread and give up waiting after `limit`.
fn bounded<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

/// Blocking ssh work inside the async runner: let a multi-thread runtime move
/// other tasks (the tracking server) off this worker while it waits.
fn blocking_section<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_port_is_read_from_a_loopback_uri_only() {
        let env = |v: &str| BTreeMap::from([("MLFLOW_TRACKING_URI".to_string(), v.to_string())]);
        assert_eq!(tracking_port(&env("http://127.0.0.1:5123")), Some(5123));
        assert_eq!(tracking_port(&env("http://localhost:80/x")), Some(80));
        assert_eq!(tracking_port(&env("https://mlflow.example.com:443")), None);
        assert_eq!(tracking_port(&BTreeMap::new()), None);
    }
}
