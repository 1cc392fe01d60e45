//! Run a synced snapshot on the host: own process group, environment via
//! stdin (never argv), live stdout/stderr, cancel, lost-connection handling,
//! and fetching `outputs/` and `logs/` back.
//!
//! Host layout: `~/.azml/runs/<runId>/` is the snapshot and the working
//! folder; `~/.azml/state/<runId>.pid` (the process group) and
//! `~/.azml/state/<runId>.exit` (the exit status) are azml's own, so a later
//! connection can tell what happened while it was away.

use super::SshError;
use super::command::{SSH_FAILURE, Ssh};
use super::sync::check_run_id;
use crate::shell::{is_env_name, quote, quote_all};
use std::future::Future;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reconnect attempts after the run's connection drops, and the pause before each.
pub const RECONNECT_DELAYS: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];
/// How long the ssh client may take to notice the remote end after a cancel.
const CANCEL_DRAIN: Duration = Duration::from_secs(15);

/// Which of the run's streams a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Stdout,
    Stderr,
}

/// Receives the run's output as it arrives (terminal, log file, metric parser…).
pub type OutputSink = Arc<dyn Fn(StreamKind, &[u8]) + Send + Sync>;

/// What to run on the host, in `~/.azml/runs/<run_id>/` after a sync.
#[derive(Debug, Clone, Default)]
pub struct RemoteRunSpec {
    pub run_id: String,
    /// The command: interpreter, script, arguments; each arrives verbatim.
    pub argv: Vec<String>,
    /// Exported before the command starts; sent over stdin, never in argv.
    pub env: Vec<(String, String)>,
    /// Local port of the tracking server: forwarded from a loopback port on the
    /// host, and `MLFLOW_TRACKING_URI` then points at the host end.
    pub tracking_port: Option<u16>,
}

/// How a remote run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteOutcome {
    /// The command exited with this status (128+N for signal N).
    Exited(i32),
    /// Stopped on request; the remote process group was killed.
    Canceled(String),
    /// The connection dropped and the run could not be followed to its end.
    Lost(String),
}

/// Run `spec` on the host, streaming output to `sink`, until it exits or
/// `cancel` resolves (with the reason to record).
pub async fn run(
    ssh: &Ssh,
    spec: &RemoteRunSpec,
    sink: OutputSink,
    cancel: impl Future<Output = String>,
) -> Result<RemoteOutcome, SshError> {
    check_run_id(&spec.run_id)?;
    if spec.argv.is_empty() {
        return Err(SshError::Invalid {
            what: "remote command".into(),
            detail: "nothing to run".into(),
        });
    }
    let forward = match spec.tracking_port {
        Some(local) => Some((
            blocking(ssh, move |s| s.forward_remote(local)).await?,
            local,
        )),
        None => None,
    };
    let env = env_script(&spec.env, forward.map(|(remote, _)| remote))?;
    let outcome = run_launched(ssh, spec, &env, sink, cancel).await;
    if let Some((_, local)) = forward {
        let _ = blocking(ssh, move |s| {
            s.cancel_forward(local);
            Ok(())
        })
        .await;
    }
    outcome
}

async fn run_launched(
    ssh: &Ssh,
    spec: &RemoteRunSpec,
    env: &str,
    sink: OutputSink,
    cancel: impl Future<Output = String>,
) -> Result<RemoteOutcome, SshError> {
    ssh.ensure_known_hosts_dir()?;
    let mut child = ssh
        .tokio_command(&launch_script(&spec.run_id, &spec.argv))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(SshError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A failed write shows up as the connection failing below.
        let _ = stdin.write_all(env.as_bytes()).await;
    }
    let pumps = [
        child
            .stdout
            .take()
            .map(|r| pump(r, StreamKind::Stdout, sink.clone())),
        child
            .stderr
            .take()
            .map(|r| pump(r, StreamKind::Stderr, sink.clone())),
    ];
    let ended = tokio::select! {
        status = child.wait() => Ok(status),
        reason = cancel => Err(reason),
    };
    let outcome = match ended {
        Ok(status) => {
            let status = status.map_err(|e| SshError::io("waiting for ssh", e))?;
            drain(pumps).await;
            after_exit(ssh, &spec.run_id, status.code()).await
        }
        Err(reason) => {
            let stopped = blocking(ssh, {
                let run_id = spec.run_id.clone();
                move |s| stop_remote(s, &run_id)
            })
            .await;
            if tokio::time::timeout(CANCEL_DRAIN, child.wait())
                .await
                .is_err()
            {
                let _ = child.start_kill();
            }
            drain(pumps).await;
            match stopped {
                Ok(()) => RemoteOutcome::Canceled(reason),
                Err(e) => RemoteOutcome::Canceled(format!(
                    "{reason} (the remote process may still run: {e})"
                )),
            }
        }
    };
    Ok(outcome)
}

/// The `export` lines the launcher evaluates; values are quoted, names checked.
pub fn env_script(
    env: &[(String, String)],
    tracking_remote_port: Option<u16>,
) -> Result<String, SshError> {
    let mut out = String::new();
    for (name, value) in env {
        if !is_env_name(name) {
            return Err(SshError::Invalid {
                what: "environment variable name".into(),
                detail: format!("'{name}' is not a valid shell variable name"),
            });
        }
        if tracking_remote_port.is_some() && name == "MLFLOW_TRACKING_URI" {
            continue;
        }
        out.push_str(&format!("export {name}={}\n", quote(value)));
    }
    if let Some(port) = tracking_remote_port {
        out.push_str(&format!(
            "export MLFLOW_TRACKING_URI=http://127.0.0.1:{port}\n"
        ));
    }
    Ok(out)
}

/// The host-side script that starts the command in its own session (so the
/// whole process group can be killed), records its pid and exit status, and
/// reads the environment from stdin so secrets never sit in argv or on disk.
/// The run folder must have been synced already (see [`tree_launch_script`]
/// for the one-round-trip launch the runner uses).
pub fn launch_script(run_id: &str, argv: &[String]) -> String {
    let (pick_python, cmd) = command_line(argv);
    format!(
        r#"S="$HOME/.azml/state/"{run}; R="$HOME/.azml/runs/"{run}
{pick_python}
mkdir -p "$HOME/.azml/state" && cd "$R" || {{ echo "azml: run folder $R is missing on the host" >&2; exit 125; }}
eval "$(cat)" || exit 125
mkdir -p outputs logs
rm -f "$S.exit"
{start}
exit "$rc""#,
        run = quote(run_id),
        start = START.replace("CMD", &cmd),
    )
}

/// The whole remote run in one ssh session, the runner's common path:
/// make the run folder from the host's pristine tree of the snapshot (no
/// Python start), report `ready`, read the environment from stdin, run the
/// command in its own session, KILL what is left of its process group, and
/// send `outputs/` and `logs/` back as a tar stream on stderr after a marker
/// line. Marker lines are `<nonce> <word>` on stderr (see
/// [`filter_launch_stderr`]): `notree` (the host lacks the tree: sync and
/// launch again), `ready`, then `tar` + the archive or `none`. It reaches the
/// host on stdin, through [`launch_bootstrap`].
///
/// The run folder is a spare copy of the tree renamed into place when there
/// is one (`~/.azml/spare/<tree>/<id>/`; a rename is atomic, so two launches
/// never get the same spare), else a `cp -R` of the tree. Copying costs time
/// in proportion to the tree (a 2,000-file project: tens of milliseconds)
/// before the command can start, so each run leaves a spare behind after
/// its own end ([`REFILL_SPARE`]).
pub fn tree_launch_script(run_id: &str, tree: &str, nonce: &str, argv: &[String]) -> String {
    let (pick_python, cmd) = command_line(argv);
    format!(
        r#"S="$HOME/.azml/state/"{run}; R="$HOME/.azml/runs/"{run}; T="$HOME/.azml/trees/"{tree}; N={nonce}
SP="$HOME/.azml/spare/"{tree}
[ -d "$T" ] || {{ printf '%s notree\n' "$N" >&2; exit 0; }}
touch "$T" 2>/dev/null
[ -d "$HOME/.azml/state" ] || mkdir -p "$HOME/.azml/state"
spare=
if [ ! -e "$R" ]; then
  for c in "$SP"/*/; do [ -d "$c" ] && mv "${{c%/}}" "$R" 2>/dev/null && {{ spare=1; break; }}; done
fi
if [ -n "$spare" ] || {{ [ ! -e "$R" ] && cp -R "$T" "$R" 2>/dev/null; }}; then :; else mkdir -p "$R" && cp -R "$T/." "$R/"; fi && cd "$R" || {{ echo "azml: cannot create the run folder $R on the host" >&2; exit 125; }}
[ -d outputs ] && [ -d logs ] || mkdir -p outputs logs
printf '%s ready\n' "$N" >&2
{pick_python}
env=; while IFS= read -r line; do env="$env$line
"; done
eval "$env" || exit 125
[ "$AZML_LAUNCH" = "$N" ] || {{ echo "azml: the run's environment did not arrive" >&2; exit 125; }}
unset AZML_LAUNCH
{start}
kill -KILL -$pid 2>/dev/null
has=; for f in outputs/* outputs/.[!.]* logs/* logs/.[!.]*; do [ -e "$f" ] && {{ has=1; break; }}; done
if [ -n "$has" ]; then printf '%s tar\n' "$N" >&2; tar cf - outputs logs >&2; else printf '%s none\n' "$N" >&2; fi
{refill}
{prune}
exit "$rc""#,
        run = quote(run_id),
        tree = quote(tree),
        nonce = quote(nonce),
        start = START.replace("CMD", &cmd),
        refill = REFILL_SPARE,
        prune = PRUNE_HOST,
    )
}

/// After the trailer, detached from the session (its output goes nowhere, so
/// the session ends without waiting for it): unless a spare of the tree is
/// left, copy the tree into a new one, under a dot name first so a half-made
/// copy is never taken.
const REFILL_SPARE: &str = r#"(
  for c in "$SP"/*/; do [ -d "$c" ] && exit 0; done
  { [ -d "$SP" ] || mkdir -p "$SP"; } && cp -R "$T" "$SP/.$N" && mv "$SP/.$N" "$SP/$N" || rm -rf "$SP/.$N"
) </dev/null >/dev/null 2>&1 &"#;

/// After the trailer, detached like [`REFILL_SPARE`]: keep the host's
/// `~/.azml` from growing with every run. Run folders (a full copy of the
/// tree each) and state files of ended runs go, except the newest 20 ended
/// (their `outputs/` and `logs/` came back already; the rest is left for a
/// look on the host). Trees and their spares go when they are not among the
/// 10 most recently launched and were not launched for an hour (each launch
/// touches its tree); a launch that finds its tree gone syncs it again.
/// The content cache (`objects/`, one copy per distinct file) is kept: a
/// sync plans against it before it builds.
const PRUNE_HOST: &str = r#"(
  A="$HOME/.azml"
  cd "$A/state" 2>/dev/null && ls -1t -- *.exit 2>/dev/null | tail -n +21 | while IFS= read -r f; do
    r=${f%.exit}; rm -rf "$A/runs/$r" && rm -f "$r.pid" "$r.exit"
  done
  cd "$A/trees" 2>/dev/null && ls -1t 2>/dev/null | tail -n +11 | while IFS= read -r t; do
    [ -n "$(find "$t" -maxdepth 0 -mmin +60 2>/dev/null)" ] || continue
    mv "$t" ".gc.$t.$$" 2>/dev/null && rm -rf ".gc.$t.$$" "$A/spare/$t" ".$t.manifest"
  done
) </dev/null >/dev/null 2>&1 &"#;

/// What the launch session's ssh runs: read the script from stdin up to the
/// nonce line, then run it (which goes on reading the environment from the
/// same stdin). Carrying nothing of the run, it can start before the run is
/// prepared. A script cut short (azml gone) never runs.
pub fn launch_bootstrap(nonce: &str) -> String {
    format!(
        r#"N={nonce}; s=; ok=
while IFS= read -r l; do [ "$l" = "$N" ] && {{ ok=1; break; }}; s="$s$l
"; done
[ -n "$ok" ] && eval "$s""#,
        nonce = quote(nonce)
    )
}

/// The script as [`launch_bootstrap`] reads it.
pub fn launch_payload(script: &str, nonce: &str) -> String {
    format!("{script}\n{nonce}\n")
}

/// The last line of the environment the tree launch reads: proves the
/// environment arrived whole (a launcher that gave up sends nothing).
pub fn launch_env_end(nonce: &str) -> String {
    format!("AZML_LAUNCH={}\n", quote(nonce))
}

/// Start `$cmd` in its own session, record its pid, wait, record `$rc`.
const START: &str = r#"if command -v setsid >/dev/null 2>&1; then
  setsid CMD </dev/null &
else
  python3 -c 'import os, sys; os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])' CMD </dev/null &
fi
pid=$!
echo "$pid" > "$S.pid"
wait "$pid"; rc=$?
echo "$rc" > "$S.exit""#;

/// The `$PY` picking lines and the quoted command line for `argv`.
fn command_line(argv: &[String]) -> (String, String) {
    // v1's default interpreter `python` may be called `python3` on the host.
    match argv.split_first() {
        Some((first, rest)) if is_python(first) => (
            pick_python_script(first),
            format!("\"$PY\" {}", quote_all(rest))
                .trim_end()
                .to_string(),
        ),
        _ => (String::new(), quote_all(argv)),
    }
}

/// What the launch session reported before the command started.
#[derive(Debug)]
pub enum LaunchStatus {
    /// The run folder is in place; the launch waits for the environment.
    Ready,
    /// The host lacks the snapshot's tree: nothing was started.
    NoTree,
    /// The session ended before saying anything (what it printed, for the error).
    Ended(Vec<u8>),
}

/// How the launch session ended, as its stderr told.
#[derive(Debug, Default)]
pub struct LaunchTrailer {
    /// `Some` when the trailer arrived: the command ended on the host, its
    /// leftovers were killed and outputs/logs are back (bytes of tar), or why
    /// unpacking them failed.
    pub outputs: Option<Result<u64, String>>,
}

/// Passes the launch session's stderr (`raw`) through to `out` (the run's
/// stderr as the runner sees it) minus the marker lines: reports the status
/// on `status`, and unpacks the trailer's tar of outputs/logs into `dest`.
pub fn filter_launch_stderr(
    mut raw: impl std::io::Read,
    mut out: impl std::io::Write,
    nonce: &str,
    dest: &Path,
    status: std::sync::mpsc::Sender<LaunchStatus>,
) -> LaunchTrailer {
    let marker = format!("{nonce} ").into_bytes();
    let mut trailer = LaunchTrailer::default();
    let mut early: Option<Vec<u8>> = Some(Vec::new());
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8192];
    let mut emit = |bytes: &[u8], early: &mut Option<Vec<u8>>| {
        if let Some(e) = early.as_mut().filter(|e| e.len() < 8192) {
            e.extend_from_slice(bytes);
        }
        // The runner may have stopped reading; the bytes are in the run log anyway.
        let _ = out.write_all(bytes);
    };
    loop {
        let n = match raw.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        pending.extend_from_slice(&buf[..n]);
        loop {
            let (before, line) = take_marker_line(&mut pending, &marker);
            emit(&before, &mut early);
            let Some(line) = line else { break };
            match line.word.as_slice() {
                b"ready" | b"notree" => {
                    let word = if line.word == b"ready" {
                        LaunchStatus::Ready
                    } else {
                        LaunchStatus::NoTree
                    };
                    early = None;
                    let _ = status.send(word);
                }
                b"none" => {
                    let made = ["outputs", "logs"]
                        .iter()
                        .try_for_each(|d| std::fs::create_dir_all(dest.join(d)));
                    trailer.outputs = Some(made.map(|_| 0).map_err(|e| e.to_string()));
                }
                b"tar" => {
                    let rest = std::io::Cursor::new(std::mem::take(&mut pending));
                    let mut stream = std::io::Read::chain(rest, &mut raw);
                    let unpacked = unpack(&mut stream, dest).map_err(|e| e.to_string());
                    let _ = std::io::copy(&mut stream, &mut std::io::sink());
                    trailer.outputs = Some(unpacked);
                    return trailer;
                }
                _ => {}
            }
        }
    }
    emit(&std::mem::take(&mut pending), &mut early);
    if let Some(said) = early {
        let _ = status.send(LaunchStatus::Ended(said));
    }
    trailer
}

/// One `<marker><word>\n` line found in the stream.
#[derive(Debug, PartialEq, Eq)]
struct MarkerLine {
    word: Vec<u8>,
}

/// Take the output that precedes a complete marker line, and the line (the
/// rest stays in `pending`); without one, take all but a tail that could be
/// the start of a marker split across reads.
fn take_marker_line(pending: &mut Vec<u8>, marker: &[u8]) -> (Vec<u8>, Option<MarkerLine>) {
    if let Some(at) = find(pending, marker) {
        let before: Vec<u8> = pending.drain(..at).collect();
        let Some(nl) = pending[marker.len()..].iter().position(|&b| b == b'\n') else {
            return (before, None);
        };
        let word = pending[marker.len()..marker.len() + nl].to_vec();
        pending.drain(..marker.len() + nl + 1);
        return (before, Some(MarkerLine { word }));
    }
    let keep = (1..marker.len().min(pending.len() + 1))
        .rev()
        .find(|&k| pending.ends_with(&marker[..k]))
        .unwrap_or(0);
    let cut = pending.len() - keep;
    (pending.drain(..cut).collect(), None)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `python`, `python3` or an absolute path to one: the interpreter may be
/// named differently on the host.
fn is_python(program: &str) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    name == "python" || (program.starts_with('/') && name.starts_with("python"))
}

/// Sets `$PY` on the host: v1's default `python` falls back to `python3`;
/// an absolute path (a runconfig written on another machine, or the local
/// default interpreter) that the host lacks falls back to `python3` with a
/// warning in the run's output.
fn pick_python_script(program: &str) -> String {
    if program == "python" {
        return "PY=python; command -v python >/dev/null 2>&1 || PY=python3".into();
    }
    format!(
        "PY={}; [ -x \"$PY\" ] || {{ echo \"azml: $PY is not on this host; using python3\" >&2; PY=python3; }}",
        quote(program)
    )
}

/// TERM the run's process group, give it 5 s, then KILL what is left.
fn stop_script(run_id: &str) -> String {
    format!(
        r#"S="$HOME/.azml/state/"{run}
i=0; while [ ! -s "$S.pid" ] && [ $i -lt 20 ]; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done
[ -s "$S.pid" ] || exit 0
pg=$(cat "$S.pid")
kill -TERM -$pg 2>/dev/null || kill -TERM $pg 2>/dev/null
i=0; while [ $i -lt 50 ]; do
  kill -0 -$pg 2>/dev/null || kill -0 $pg 2>/dev/null || exit 0
  sleep 0.1 2>/dev/null || sleep 1; i=$((i+1))
done
kill -KILL -$pg 2>/dev/null; kill -KILL $pg 2>/dev/null; exit 0"#,
        run = quote(run_id)
    )
}

/// Send `signal` (TERM, KILL) to the run's process group once. Prints
/// `exited` when the run had already recorded its exit status (leftovers
/// were signalled), `signalled` when it was still running, `gone` when it
/// ended without an exit status, `nopid` when it never started.
pub fn signal_script(run_id: &str, signal: &str) -> String {
    format!(
        r#"S="$HOME/.azml/state/"{run}
i=0; while [ ! -s "$S.pid" ] && [ $i -lt 20 ]; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done
[ -s "$S.pid" ] || {{ echo nopid; exit 0; }}
pg=$(cat "$S.pid")
state=signalled; [ -s "$S.exit" ] && state=exited
if kill -{sig} -$pg 2>/dev/null || kill -{sig} $pg 2>/dev/null; then echo $state; elif [ $state = exited ]; then echo exited; else echo gone; fi"#,
        run = quote(run_id),
        sig = quote(signal)
    )
}

/// Kill the remote process group of `run_id` (TERM, then KILL).
pub fn stop_remote(ssh: &Ssh, run_id: &str) -> Result<(), SshError> {
    check_run_id(run_id)?;
    ssh.run("stopping the run", &stop_script(run_id), b"")
        .map(|_| ())
}

/// What the host says about a run: its exit status, or whether it still runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRunState {
    Exited(i32),
    Running,
    Gone,
}

/// Ask the host how the run is doing (through a fresh connection if needed).
pub fn host_run_state(ssh: &Ssh, run_id: &str) -> Result<HostRunState, SshError> {
    check_run_id(run_id)?;
    let script = format!(
        r#"S="$HOME/.azml/state/"{run}
if [ -s "$S.exit" ]; then echo "exit $(cat "$S.exit")"; exit 0; fi
pg=$(cat "$S.pid" 2>/dev/null)
if [ -n "$pg" ] && kill -0 -$pg 2>/dev/null; then echo running; else echo gone; fi"#,
        run = quote(run_id)
    );
    let out = ssh.run("checking the run", &script, b"")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let text = text.trim();
    Ok(match text.strip_prefix("exit ") {
        Some(code) => code
            .trim()
            .parse()
            .map(HostRunState::Exited)
            .unwrap_or(HostRunState::Gone),
        None if text == "running" => HostRunState::Running,
        None => HostRunState::Gone,
    })
}

/// The ssh client ended: a normal exit, or (255 / signal) a dropped
/// connection, which is checked by reconnecting a bounded number of times.
async fn after_exit(ssh: &Ssh, run_id: &str, code: Option<i32>) -> RemoteOutcome {
    match code {
        Some(c) if c != SSH_FAILURE => return RemoteOutcome::Exited(c),
        _ => {}
    }
    let host = ssh.target.display();
    let mut last_error = String::new();
    for delay in RECONNECT_DELAYS {
        tokio::time::sleep(delay).await;
        let run = run_id.to_string();
        match blocking(ssh, move |s| host_run_state(s, &run)).await {
            Ok(HostRunState::Exited(c)) => return RemoteOutcome::Exited(c),
            Ok(HostRunState::Running) => {
                let run = run_id.to_string();
                let _ = blocking(ssh, move |s| stop_remote(s, &run)).await;
                return RemoteOutcome::Lost(format!(
                    "connection to {host} lost during the run; the remote process was stopped"
                ));
            }
            Ok(HostRunState::Gone) => {
                return RemoteOutcome::Lost(format!(
                    "connection to {host} lost and the remote process ended without an exit status"
                ));
            }
            Err(e) => last_error = e.to_string(),
        }
    }
    RemoteOutcome::Lost(format!(
        "connection to {host} lost; {} reconnect attempts failed (last: {last_error})",
        RECONNECT_DELAYS.len()
    ))
}

/// Copy `outputs/` and `logs/` of the run from the host into `dest`.
/// Returns the number of bytes received. Paths escaping `dest` are refused.
pub fn fetch_outputs(ssh: &Ssh, run_id: &str, dest: &Path) -> Result<u64, SshError> {
    check_run_id(run_id)?;
    let script = format!(
        r#"cd "$HOME/.azml/runs/"{run} || exit 0
{TAR_OUTPUTS}"#,
        run = quote(run_id)
    );
    match stream_tar(ssh, "fetching outputs", &script, dest)? {
        (0, bytes) => Ok(bytes),
        (code, _) => Err(ssh.failure("fetching outputs", Some(code), b"")),
    }
}

/// Shell lines that write a tar of `outputs/` and `logs/` (those that exist) to stdout.
const TAR_OUTPUTS: &str = r#"set --; for d in outputs logs; do [ -e "$d" ] && set -- "$@" "$d"; done
[ $# -eq 0 ] || exec tar cf - "$@"
exit 0"#;

/// How [`finish`] found the run on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// It had recorded its exit status; outputs came back (this many bytes).
    Exited { bytes: u64 },
    /// It was still running and has been killed.
    Killed,
    /// It ended without recording an exit status.
    Gone,
    /// It never started (no pid recorded).
    NeverStarted,
}

/// After the run's ssh ended (or to force a cancel): KILL what is left of the
/// process group and, when the run recorded its exit, bring `outputs/` and
/// `logs/` back into `dest` in the same round trip.
pub fn finish(ssh: &Ssh, run_id: &str, dest: &Path) -> Result<Finish, SshError> {
    check_run_id(run_id)?;
    let script = format!(
        r#"S="$HOME/.azml/state/"{run}; R="$HOME/.azml/runs/"{run}
i=0; while [ ! -s "$S.pid" ] && [ $i -lt 20 ]; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done
[ -s "$S.pid" ] || exit 5
pg=$(cat "$S.pid")
if [ -s "$S.exit" ]; then
  kill -KILL -$pg 2>/dev/null
  cd "$R" || exit 0
{TAR_OUTPUTS}
fi
if kill -KILL -$pg 2>/dev/null || kill -KILL $pg 2>/dev/null; then exit 3; fi
[ -s "$S.exit" ] && exit 0
exit 4"#,
        run = quote(run_id)
    );
    match stream_tar(ssh, "finishing the run", &script, dest)? {
        (0, bytes) => Ok(Finish::Exited { bytes }),
        (3, _) => Ok(Finish::Killed),
        (4, _) => Ok(Finish::Gone),
        (5, _) => Ok(Finish::NeverStarted),
        (code, _) => Err(ssh.failure("finishing the run", Some(code), b"")),
    }
}

/// Run `script` on the host and unpack the tar it writes to stdout into
/// `dest`. Returns the script's exit status and the bytes received; ssh
/// failing (255, signal) is an error.
fn stream_tar(ssh: &Ssh, what: &str, script: &str, dest: &Path) -> Result<(i32, u64), SshError> {
    ssh.ensure_known_hosts_dir()?;
    let mut child = ssh
        .std_command(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(SshError::Spawn)?;
    let stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(r) = stderr.as_mut() {
            let _ = std::io::Read::read_to_end(r, &mut buf);
        }
        buf
    });
    let unpacked = stdout.map(|out| unpack(out, dest)).unwrap_or(Ok(0));
    let status = child
        .wait()
        .map_err(|e| SshError::io("waiting for ssh", e))?;
    let stderr = err_reader.join().unwrap_or_default();
    match status.code() {
        Some(code) if code != SSH_FAILURE => {
            let bytes = unpacked.map_err(|e| {
                SshError::io(format!("unpacking outputs into {}", dest.display()), e)
            })?;
            Ok((code, bytes))
        }
        code => Err(ssh.failure(what, code, &stderr)),
    }
}

pub(super) fn unpack(stream: impl std::io::Read, dest: &Path) -> std::io::Result<u64> {
    let mut counted = CountingReader {
        inner: stream,
        count: 0,
    };
    let empty = {
        let mut archive = tar::Archive::new(&mut counted);
        archive.set_overwrite(true);
        std::fs::create_dir_all(dest)?;
        archive.unpack(dest)
    };
    // An empty stream (no outputs) is not a tar archive; that is fine.
    match empty {
        Ok(()) => Ok(counted.count),
        Err(_) if counted.count == 0 => Ok(0),
        Err(e) => Err(e),
    }
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Forward a child stream to the sink chunk by chunk, as it arrives.
fn pump(
    mut reader: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    kind: StreamKind,
    sink: OutputSink,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink(kind, &buf[..n]);
        }
    })
}

async fn drain(pumps: [Option<tokio::task::JoinHandle<()>>; 2]) {
    for p in pumps.into_iter().flatten() {
        let _ = p.await;
    }
}

/// Run a blocking ssh helper off the async runtime's worker threads.
async fn blocking<T: Send + 'static>(
    ssh: &Ssh,
    f: impl FnOnce(&Ssh) -> Result<T, SshError> + Send + 'static,
) -> Result<T, SshError> {
    let ssh = ssh.clone();
    tokio::task::spawn_blocking(move || f(&ssh))
        .await
        .map_err(|e| SshError::io("ssh helper task", std::io::Error::other(e.to_string())))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bootstrap_with(stdin: &[u8]) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(launch_bootstrap("azml-n0nce"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin)
            .expect("write");
        let out = child.wait_with_output().expect("wait");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn the_bootstrap_runs_the_script_then_leaves_the_rest_of_stdin_to_it() {
        // Backslashes and leading blanks of the script survive the trip.
        let script =
            "echo \"one $1\"\n  x='a\\b'; printf '%s\\n' \"$x\"\nread -r e; echo \"env: $e\"";
        let stdin = launch_payload(script, "azml-n0nce") + "A=1\n";
        assert_eq!(bootstrap_with(stdin.as_bytes()), "one \na\\b\nenv: A=1\n");
    }

    /// Run the tree launch of `run` under `sh` with `home` as `$HOME`; the
    /// command records its working directory in `outputs/pwd.txt` and leaves a
    /// file of its own, `mark-<pid>.txt`.
    fn tree_launch_in(home: &std::path::Path, run: &str) -> std::process::Output {
        let argv: Vec<String> = [
            "/bin/sh",
            "-c",
            "pwd -P > outputs/pwd.txt; echo run > mark-$$.txt",
        ]
        .map(String::from)
        .to_vec();
        let nonce = format!("azml-{run}");
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(tree_launch_script(run, "t1", &nonce, &argv))
            .env("HOME", home)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let stdin = launch_env_end(&nonce);
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), stdin.as_bytes())
            .expect("write");
        child.wait_with_output().expect("wait")
    }

    /// The spares of tree `t1` under `home`, once the background refill is done.
    fn spares(home: &std::path::Path) -> Vec<String> {
        let dir = home.join(".azml/spare/t1");
        for _ in 0..200 {
            let names: Vec<String> = std::fs::read_dir(&dir)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            if !names.is_empty() && names.iter().all(|n| !n.starts_with('.')) {
                return names;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("no spare of the tree appeared in {}", dir.display());
    }

    fn home_with_tree() -> tempfile::TempDir {
        let home = tempfile::tempdir().expect("home");
        let tree = home.path().join(".azml/trees/t1");
        for dir in ["outputs", "logs", "pkg"] {
            std::fs::create_dir_all(tree.join(dir)).expect("tree");
        }
        std::fs::write(tree.join("pkg/a.py"), "A = 1\n").expect("file");
        home
    }

    /// Set a file's or folder's modification time `ago` in the past.
    fn age(path: &std::path::Path, ago: std::time::Duration) {
        let when = std::time::SystemTime::now() - ago;
        std::fs::File::open(path)
            .and_then(|f| f.set_modified(when))
            .expect("set mtime");
    }

    /// Without pruning, every run left a full copy of its tree on the host,
    /// and every snapshot a tree and a spare, forever.
    #[test]
    fn the_host_keeps_the_newest_ended_runs_and_recently_launched_trees() {
        use std::time::Duration;
        let home = home_with_tree();
        let azml = home.path().join(".azml");
        for dir in ["runs", "state", "spare"] {
            std::fs::create_dir_all(azml.join(dir)).expect("dir");
        }
        for i in 0..25u64 {
            let run = azml.join(format!("runs/old{i}"));
            std::fs::create_dir_all(&run).expect("run");
            std::fs::write(run.join("big.bin"), "x").expect("file");
            let exit = azml.join(format!("state/old{i}.exit"));
            std::fs::write(&exit, "0\n").expect("exit");
            std::fs::write(azml.join(format!("state/old{i}.pid")), "1\n").expect("pid");
            age(&exit, Duration::from_secs(1000 - i));
        }
        // Still running: no exit status yet.
        std::fs::create_dir_all(azml.join("runs/live")).expect("live");
        std::fs::write(azml.join("state/live.pid"), "1\n").expect("pid");
        for i in 0..12u64 {
            let tree = azml.join(format!("trees/u{i}"));
            std::fs::create_dir_all(&tree).expect("tree");
            std::fs::create_dir_all(azml.join(format!("spare/u{i}/s"))).expect("spare");
            std::fs::write(azml.join(format!("trees/.u{i}.manifest")), "m").expect("manifest");
            age(&tree, Duration::from_secs(7200 + 60 * i));
        }
        std::fs::create_dir_all(azml.join("trees/fresh")).expect("tree");
        age(&azml.join("trees/t1"), Duration::from_secs(9999));

        let out = tree_launch_in(home.path(), "r1");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let gone = |p: &str| !azml.join(p).exists();
        let gc_leftovers = || {
            std::fs::read_dir(azml.join("trees"))
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.file_name().to_string_lossy().starts_with(".gc."))
                        .count()
                })
                .unwrap_or(0)
        };
        // The prune runs in the background and removes one entry after the
        // other (runs newest first, then trees): wait for the last of each.
        for _ in 0..250 {
            if gone("runs/old0") && gone("trees/.u11.manifest") && gc_leftovers() == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // 26 ended runs (r1 the newest): the 20 newest stay.
        for i in 0..6 {
            assert!(gone(&format!("runs/old{i}")), "old{i} kept");
            assert!(gone(&format!("state/old{i}.exit")) && gone(&format!("state/old{i}.pid")));
        }
        for i in 6..25 {
            assert!(
                azml.join(format!("runs/old{i}/big.bin")).exists(),
                "old{i} pruned"
            );
        }
        assert!(azml.join("runs/r1").is_dir() && azml.join("runs/live").is_dir());
        assert!(azml.join("state/live.pid").exists());
        // t1 was just launched (touched), `fresh` is recent, u0..u7 are the
        // next newest: 10 kept; u8..u11 are older and unused for an hour.
        for kept in ["t1", "fresh", "u0", "u7"] {
            assert!(azml.join("trees").join(kept).is_dir(), "{kept} pruned");
        }
        assert!(azml.join("spare/u7/s").is_dir() && azml.join("trees/.u7.manifest").exists());
        for i in 8..12 {
            assert!(gone(&format!("trees/u{i}")), "u{i} kept");
            assert!(gone(&format!("spare/u{i}")) && gone(&format!("trees/.u{i}.manifest")));
        }
        let leftovers: Vec<_> = std::fs::read_dir(azml.join("trees"))
            .expect("trees")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".gc."))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_run_takes_the_spare_left_by_the_run_before_and_the_tree_stays_pristine() {
        let home = home_with_tree();
        let first = tree_launch_in(home.path(), "r1");
        assert!(
            first.status.success(),
            "{}",
            String::from_utf8_lossy(&first.stderr)
        );
        let spare = spares(home.path());
        assert_eq!(spare.len(), 1, "{spare:?}");
        let second = tree_launch_in(home.path(), "r2");
        assert!(
            second.status.success(),
            "{}",
            String::from_utf8_lossy(&second.stderr)
        );
        let run2 = home.path().join(".azml/runs/r2");
        // The spare became run r2's folder, and the command ran in it under that name.
        assert!(!home.path().join(".azml/spare/t1").join(&spare[0]).exists());
        let pwd = std::fs::read_to_string(run2.join("outputs/pwd.txt")).expect("pwd");
        assert_eq!(
            pwd.trim(),
            run2.canonicalize().expect("run2").to_string_lossy()
        );
        assert_eq!(
            std::fs::read_to_string(run2.join("pkg/a.py")).expect("a"),
            "A = 1\n"
        );
        // What run r1 wrote reached neither the tree nor the spare r2 got.
        let marks = |dir: &std::path::Path| {
            std::fs::read_dir(dir)
                .expect("dir")
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("mark-"))
                .count()
        };
        let tree = home.path().join(".azml/trees/t1");
        assert_eq!(marks(&tree), 0);
        assert!(!tree.join("outputs/pwd.txt").exists());
        assert_eq!(marks(&run2), 1, "r2 sees only its own mark");
        // And r2 left a new spare behind.
        assert_eq!(spares(home.path()).len(), 1);
    }

    #[test]
    fn two_launches_racing_for_one_spare_both_get_a_whole_run_folder() {
        let home = home_with_tree();
        assert!(tree_launch_in(home.path(), "r0").status.success());
        spares(home.path());
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| tree_launch_in(home.path(), "ra"));
            let b = scope.spawn(|| tree_launch_in(home.path(), "rb"));
            (a.join().expect("a"), b.join().expect("b"))
        });
        for (run, out) in [("ra", a), ("rb", b)] {
            assert!(
                out.status.success(),
                "{run}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let folder = home.path().join(".azml/runs").join(run);
            assert!(folder.join("pkg/a.py").is_file(), "{run} lacks the tree");
            let pwd = std::fs::read_to_string(folder.join("outputs/pwd.txt"));
            assert!(pwd.is_ok(), "{run}'s command did not run in it");
        }
    }

    #[test]
    fn a_script_cut_short_never_runs() {
        assert_eq!(bootstrap_with(b"echo ran\necho also\n"), "");
    }

    #[test]
    fn env_values_are_quoted_and_bad_names_refused() {
        let env = vec![("A".to_string(), "x $(id); 'q'".to_string())];
        assert_eq!(
            env_script(&env, None).expect("ok"),
            "export A='x $(id); '\\''q'\\'''\n"
        );
        let bad = vec![("A-B".to_string(), "1".to_string())];
        assert!(env_script(&bad, None).is_err());
    }

    #[test]
    fn tracking_uri_points_at_the_host_end_of_the_forward() {
        let env = vec![(
            "MLFLOW_TRACKING_URI".to_string(),
            "http://127.0.0.1:5000".to_string(),
        )];
        let script = env_script(&env, Some(41000)).expect("ok");
        assert_eq!(
            script,
            "export MLFLOW_TRACKING_URI=http://127.0.0.1:41000\n"
        );
    }

    /// Hands out its bytes a few at a time, like a pipe under load.
    struct Trickle(Vec<u8>, usize);

    impl std::io::Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }

    fn filter(stream: Vec<u8>, step: usize, dest: &Path) -> (Vec<u8>, Vec<String>, LaunchTrailer) {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut seen = Vec::new();
        let trailer =
            filter_launch_stderr(Trickle(stream, step), &mut seen, "azml-n0nce", dest, tx);
        let statuses = rx
            .try_iter()
            .map(|s| match s {
                LaunchStatus::Ended(said) => format!("Ended: {}", String::from_utf8_lossy(&said)),
                other => format!("{other:?}"),
            })
            .collect();
        (seen, statuses, trailer)
    }

    #[test]
    fn launch_markers_split_across_reads_are_recognised_and_removed() {
        let dest = tempfile::tempdir().expect("tmp");
        let stream =
            b"warn\nazml-n0nce ready\npartial azml-n0 line\nno newline at the endazml-n0nce none\n";
        for step in [1, 3, 7, 4096] {
            let (seen, statuses, trailer) = filter(stream.to_vec(), step, dest.path());
            assert_eq!(
                String::from_utf8_lossy(&seen),
                "warn\npartial azml-n0 line\nno newline at the end",
                "step {step}"
            );
            assert_eq!(statuses, ["Ready"], "step {step}");
            assert_eq!(trailer.outputs, Some(Ok(0)), "step {step}");
            assert!(dest.path().join("outputs").is_dir());
        }
    }

    #[test]
    fn the_trailer_tar_lands_in_the_run_folder_and_a_silent_session_is_ended() {
        let dest = tempfile::tempdir().expect("tmp");
        let mut archive = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(5);
        header.set_mode(0o644);
        header.set_cksum();
        archive
            .append_data(&mut header, "outputs/model.txt", &b"hello"[..])
            .expect("append");
        let tar = archive.into_inner().expect("tar");
        let mut stream = b"azml-n0nce ready\nbye\nazml-n0nce tar\n".to_vec();
        stream.extend_from_slice(&tar);
        let (seen, _, trailer) = filter(stream, 512, dest.path());
        assert_eq!(String::from_utf8_lossy(&seen), "bye\n");
        assert!(matches!(trailer.outputs, Some(Ok(n)) if n >= 512));
        let model = std::fs::read_to_string(dest.path().join("outputs/model.txt")).expect("model");
        assert_eq!(model, "hello");
        let (_, statuses, trailer) = filter(b"ssh: connect refused\n".to_vec(), 5, dest.path());
        assert_eq!(statuses.len(), 1);
        assert!(statuses[0].contains("connect refused"), "{statuses:?}");
        assert!(trailer.outputs.is_none());
    }

    #[test]
    fn tree_launch_copies_the_tree_and_checks_the_environment_arrived() {
        let script = tree_launch_script("r1", "ab12", "azml-x", &["python3".into(), "t.py".into()]);
        assert!(script.contains(r#"T="$HOME/.azml/trees/"ab12"#), "{script}");
        assert!(script.contains(r#"cp -R "$T/." "$R/""#), "{script}");
        assert!(script.contains(r#"[ "$AZML_LAUNCH" = "$N" ]"#), "{script}");
        assert!(
            script.contains("setsid python3 t.py </dev/null &"),
            "{script}"
        );
        assert_eq!(launch_env_end("azml-x"), "AZML_LAUNCH=azml-x\n");
    }

    #[test]
    fn launcher_runs_the_command_quoted_in_its_own_session() {
        let script = launch_script("r1", &["python3".into(), "a b.py".into(), "$(x)".into()]);
        assert!(
            script.contains("setsid python3 'a b.py' '$(x)' </dev/null &"),
            "{script}"
        );
        assert!(script.contains("eval \"$(cat)\""));
        let script = launch_script("r1", &["/opt/conda/bin/python".into(), "t.py".into()]);
        assert!(
            script.contains("PY=/opt/conda/bin/python; [ -x \"$PY\" ]"),
            "{script}"
        );
        assert!(
            script.contains("setsid \"$PY\" t.py </dev/null &"),
            "{script}"
        );
        let script = launch_script("r1", &["/bin/sh".into(), "-c".into(), "echo hi".into()]);
        assert!(
            script.contains("setsid /bin/sh -c 'echo hi' </dev/null &"),
            "{script}"
        );
    }
}
