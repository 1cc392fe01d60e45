//! The runner's [`Launcher`] for SSH targets: the shared runner keeps doing
//! statuses, logs, metrics, timeouts and cancellation; this decides how the
//! process starts (sync + `ssh`), how it stops (kill the remote process
//! group) and what happens after (fetch `outputs/`/`logs/`, notice a lost
//! connection and fail the run with the reason).

use super::remote::{self, Finish, HostRunState};
use super::sync::{self, SyncEntry};
use super::{Ssh, SshContext, SshError, SshTarget};
use crate::local::runner::{Job, Launched, Launcher, RunnerError, STD_LOG};
use crate::local::store::{ComputeRecord, Store};
use crate::local::tracking::ARTIFACT_URI_PROPERTY;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

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
}

impl SshLauncher {
    pub fn new(
        target: SshTarget,
        workspace_root: &Path,
        remote_home: Option<String>,
    ) -> Result<Self, SshError> {
        Ok(SshLauncher {
            ssh: Ssh::new(target, SshContext::for_workspace(workspace_root))?,
            remote_home,
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

    fn spawn_blocking_part(&self, job: &Job) -> Result<(String, Vec<String>), SshError> {
        let entries = snapshot_entries(&job.working_dir)?;
        let local_tracking = tracking_port(&job.env);
        // Sync and the tracking forward are independent: one shared connection, both at once.
        self.ssh.ensure_master()?;
        let (report, remote_tracking) = std::thread::scope(|s| {
            let forward = s.spawn(|| {
                local_tracking
                    .map(|port| self.ssh.forward_remote(port))
                    .transpose()
            });
            let report = sync::sync(&self.ssh, &job.run_id, HELPER_PYTHON, &entries);
            let forwarded = forward.join().unwrap_or_else(|_| {
                Err(SshError::io(
                    "tracking forward",
                    std::io::Error::other("thread panicked"),
                ))
            });
            (report, forwarded)
        });
        let (report, remote_tracking) = (report?, remote_tracking?);
        tracing::info!(
            "synced {} files to {} ({} new, {} bytes sent)",
            report.files,
            self.ssh.target.display(),
            report.objects_sent,
            report.bytes_sent
        );
        if let (Some(r), Some(l)) = (remote_tracking, local_tracking) {
            lock(&self.state(&job.run_id)).forward = Some((r, l));
        }
        let artifact_uri = self.point_artifacts_at_the_host(job);
        let mut env: Vec<(String, String)> = job
            .env
            .iter()
            .filter(|(k, _)| !LOCAL_ONLY_ENV.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(uri) = artifact_uri {
            env.push(("MLFLOW_ARTIFACT_URI".into(), uri));
        }
        let env_script = remote::env_script(&env, remote_tracking)?;
        let mut argv = vec![job.program.clone()];
        argv.extend(job.args.iter().cloned());
        Ok((env_script, argv))
    }
}

impl Launcher for SshLauncher {
    fn spawn(&self, job: &Job) -> Result<Launched, RunnerError> {
        let state = self.state(&job.run_id);
        let (env_script, argv) =
            blocking_section(|| self.spawn_blocking_part(job)).map_err(launch_err)?;
        let mut child = self
            .ssh
            .tokio_command(&remote::launch_script(&job.run_id, &argv))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| RunnerError::Spawn {
                program: "ssh".into(),
                source,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // The environment (with the tracking token) goes over stdin, then EOF.
            tokio::spawn(async move {
                let _ = stdin.write_all(env_script.as_bytes()).await;
            });
        }
        let ssh = self.ssh.clone();
        let target = StopTarget {
            run_id: job.run_id.clone(),
            working_dir: job.working_dir.clone(),
        };
        let stop = Box::new(move |force: bool| stop(&ssh, &target, &state, force));
        Ok(Launched {
            child,
            stop,
            pgid: None,
        })
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
        let fetched = std::thread::scope(|s| {
            if let Some((remote, local)) = state.forward {
                s.spawn(move || self.ssh.cancel_forward(remote, local));
            }
            if state.fetched {
                return Ok(0);
            }
            remote::fetch_outputs(&self.ssh, &job.run_id, &job.working_dir)
        });
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
    if lock(state).fetched {
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

/// What a stop closure needs to know about its job.
struct StopTarget {
    run_id: String,
    working_dir: std::path::PathBuf,
}

/// Files of the local run folder to send: the snapshot, not azml's own log.
fn snapshot_entries(working_dir: &Path) -> Result<Vec<SyncEntry>, SshError> {
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
