//! The `ssh` argv azml uses, and blocking helpers to run remote scripts.
//!
//! Options, and why each one:
//! - `BatchMode=yes`: never prompt (CI, sweeps); a missing key fails fast.
//! - `ControlMaster=auto` + `ControlPath` + `ControlPersist`: one TCP/auth
//!   handshake shared by sync, run, cancel and fetch (and the next command).
//! - `StrictHostKeyChecking=accept-new` with the workspace known_hosts first in
//!   `UserKnownHostsFile`: a new host is trusted on first use and remembered in
//!   the workspace, a changed key is refused, and the user's own known_hosts
//!   still count.
//! - `LogLevel=ERROR`: no "Permanently added" chatter in the run's stderr.
//! - `ServerAliveInterval`/`ConnectTimeout`: a dead network ends in bounded time.

use super::{HostInfo, SshError, SshTarget};
use crate::shell::quote;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `-R` spec of the tracking forward: any free loopback port on the host.
fn forward_spec(local_port: u16) -> String {
    format!("127.0.0.1:0:127.0.0.1:{local_port}")
}

/// Seconds an idle shared connection stays up after the last command.
pub const CONTROL_PERSIST_SECS: u32 = 60;
/// Seconds `ssh` waits for a TCP connection before giving up.
pub const CONNECT_TIMEOUT_SECS: u32 = 10;
/// `ssh` exits with this when it (not the remote command) failed.
pub const SSH_FAILURE: i32 = 255;

/// The command line the host's login shell gets for `script`: it runs under
/// a POSIX `sh` whatever that shell is.
pub fn remote_command(script: &str) -> String {
    format!("sh -c {}", quote(script))
}

/// Where the shared pieces of every `ssh` call live.
#[derive(Debug, Clone)]
pub struct SshContext {
    /// Host keys accepted on first use are added here (the workspace's file).
    pub known_hosts: PathBuf,
    /// Folder of ControlMaster sockets; `None` disables connection sharing.
    pub control_dir: Option<PathBuf>,
    /// The user's home as the environment says (`$HOME`), for `~/.ssh/*`.
    pub home: Option<PathBuf>,
}

impl SshContext {
    /// The context for a local workspace rooted at `root`.
    pub fn for_workspace(root: &Path) -> Self {
        SshContext {
            known_hosts: root.join("ssh").join("known_hosts"),
            control_dir: default_control_dir(),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

/// A short private folder for ControlMaster sockets (Unix socket paths are
/// limited to ~104 bytes, so not inside the workspace). `None` when it cannot
/// be made private, and then connections are simply not shared.
pub fn default_control_dir() -> Option<PathBuf> {
    let uid = nix::unistd::geteuid().as_raw();
    let mut base = std::env::temp_dir();
    if base.as_os_str().len() > 40 {
        base = PathBuf::from("/tmp");
    }
    let dir = base.join(format!("azml-ssh-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    let private = meta.is_dir() && meta.uid() == uid && meta.permissions().mode() & 0o077 == 0;
    if !private {
        tracing::warn!(
            "{} is not a private folder; ssh connections will not be shared",
            dir.display()
        );
        return None;
    }
    Some(dir)
}

/// What a finished remote command printed.
#[derive(Debug, Clone)]
pub struct RemoteOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// One SSH host plus the context: builds and runs `ssh` commands.
#[derive(Debug, Clone)]
pub struct Ssh {
    pub target: SshTarget,
    pub ctx: SshContext,
}

impl Ssh {
    pub fn new(target: SshTarget, ctx: SshContext) -> Result<Self, SshError> {
        target.validate()?;
        Ok(Ssh { target, ctx })
    }

    /// Every option before the host name.
    pub fn options(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut opt = |s: String| {
            args.push("-o".into());
            args.push(s.into());
        };
        opt("BatchMode=yes".into());
        opt("LogLevel=ERROR".into());
        opt("StrictHostKeyChecking=accept-new".into());
        opt(format!("UserKnownHostsFile={}", self.known_hosts_files()));
        opt(format!("ConnectTimeout={CONNECT_TIMEOUT_SECS}"));
        opt("ServerAliveInterval=5".into());
        opt("ServerAliveCountMax=3".into());
        match self.control_socket() {
            Some(socket) => {
                opt("ControlMaster=auto".into());
                opt(format!(
                    "ControlPath={}",
                    escape_percent(&socket.to_string_lossy())
                ));
                opt(format!("ControlPersist={CONTROL_PERSIST_SECS}"));
            }
            None => opt("ControlMaster=no".into()),
        }
        if let Some(config) = self.user_config_override() {
            args.push("-F".into());
            args.push(config.into_os_string());
        }
        if let Some(port) = self.target.port {
            args.push("-p".into());
            args.push(port.to_string().into());
        }
        if let Some(user) = &self.target.username {
            args.push("-l".into());
            args.push(user.into());
        }
        if let Some(key) = &self.target.private_key_file {
            args.push("-i".into());
            args.push(escape_percent(&key.to_string_lossy()).into());
        }
        args
    }

    /// A short stable name for this host as azml addresses it (address, port,
    /// user): names its shared-connection socket and the workspace's record of
    /// what the host has cached.
    pub fn host_id(&self) -> String {
        let t = &self.target;
        let mut hasher = blake3::Hasher::new();
        hasher.update(t.address.as_bytes());
        hasher.update(&[0]);
        hasher.update(t.port.map(|p| p.to_string()).unwrap_or_default().as_bytes());
        hasher.update(&[0]);
        hasher.update(t.username.as_deref().unwrap_or_default().as_bytes());
        hasher.finalize().to_hex()[..16].to_string()
    }

    /// The ControlMaster socket. Named by azml (not ssh's `%C`) so that azml
    /// can tell without running `ssh -O check` (a process start) whether a
    /// shared connection is up.
    pub fn control_socket(&self) -> Option<PathBuf> {
        let dir = self.ctx.control_dir.as_ref()?;
        Some(dir.join(self.host_id()))
    }

    /// `ssh <options> -- <host> sh -c '<script>'`: the script runs under a
    /// POSIX `sh` whatever the user's login shell is.
    pub fn argv(&self, script: &str) -> Vec<OsString> {
        let mut args = self.options();
        args.push("--".into());
        args.push(self.target.address.clone().into());
        args.push(remote_command(script).into());
        args
    }

    /// `ssh <options> -O <op> [extra] <host>`: talk to the shared connection.
    pub fn control_argv(&self, op: &str, extra: &[String]) -> Vec<OsString> {
        let mut args = self.options();
        args.push("-O".into());
        args.push(op.into());
        args.extend(extra.iter().map(OsString::from));
        args.push("--".into());
        args.push(self.target.address.clone().into());
        args
    }

    /// A blocking `ssh` command for `script`, in its own process group so the
    /// terminal's Ctrl-C reaches azml (which then cancels remotely) and not ssh.
    pub fn std_command(&self, script: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(self.argv(script)).process_group(0);
        cmd
    }

    /// The async twin of [`Ssh::std_command`], for streaming runs.
    pub fn tokio_command(&self, script: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args(self.argv(script)).process_group(0);
        cmd
    }

    /// Run `script` on the host, feeding `stdin`; fails unless it exits 0.
    pub fn run(&self, what: &str, script: &str, stdin: &[u8]) -> Result<RemoteOutput, SshError> {
        self.run_streaming_stdin(what, script, |w| w.write_all(stdin))
    }

    /// Run `script` while `feed` writes its stdin (e.g. a tar stream), reading
    /// output concurrently so neither side blocks on a full pipe.
    pub fn run_streaming_stdin(
        &self,
        what: &str,
        script: &str,
        feed: impl FnOnce(&mut dyn Write) -> std::io::Result<()> + Send,
    ) -> Result<RemoteOutput, SshError> {
        self.ensure_known_hosts_dir()?;
        let started = std::time::Instant::now();
        let mut child = self
            .std_command(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(SshError::Spawn)?;
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let (fed, out, err) = std::thread::scope(|s| {
            let feeder = s.spawn(move || match stdin.as_mut() {
                Some(w) => feed(w),
                None => Ok(()),
            });
            let err_reader = s.spawn(move || read_all(stderr.as_mut()));
            let out = read_all(stdout.as_mut());
            let err = err_reader.join().unwrap_or_default();
            (feeder.join(), out, err)
        });
        let status = child
            .wait()
            .map_err(|e| SshError::io("waiting for ssh", e))?;
        tracing::debug!(
            "ssh {}: {what} took {:?}",
            self.target.display(),
            started.elapsed()
        );
        let output = RemoteOutput {
            stdout: out,
            stderr: err,
        };
        if !status.success() {
            return Err(self.failure(what, status.code(), &output.stderr));
        }
        if let Ok(Err(e)) | Err(e) = fed.map_err(|_| std::io::Error::other("stdin writer panicked"))
        {
            return Err(SshError::io(
                format!("sending {what} to {}", self.target.display()),
                e,
            ));
        }
        Ok(output)
    }

    /// The typed error for a failed `ssh` call: 255 means ssh itself failed.
    pub fn failure(&self, what: &str, code: Option<i32>, stderr: &[u8]) -> SshError {
        let detail = last_lines(stderr);
        if code == Some(SSH_FAILURE) {
            return SshError::Connect {
                host: self.target.display(),
                detail,
            };
        }
        let detail = match (code, detail.is_empty()) {
            (Some(c), true) => format!("exit status {c}"),
            (Some(c), false) => format!("exit status {c}: {detail}"),
            (None, _) => format!("killed by a signal {detail}"),
        };
        SshError::Remote {
            host: self.target.display(),
            what: what.into(),
            detail,
        }
    }

    /// Connect, and check the interpreter runs: what `attach` reports.
    pub fn probe(&self, interpreter: &str) -> Result<HostInfo, SshError> {
        let script = format!(
            "uname -sm; printf '%s\\n' \"$HOME\"; command -v tar >/dev/null || echo 'azml:no-tar'; \
             {} -c 'import sys; print(sys.executable); print(sys.version.split()[0])' 2>&1 || echo azml:no-python",
            quote(interpreter)
        );
        let out = self.run("checking the host", &script, b"")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        if lines.contains(&"azml:no-tar") {
            return Err(SshError::Remote {
                host: self.target.display(),
                what: "checking the host".into(),
                detail: "`tar` is not installed".into(),
            });
        }
        match lines.as_slice() {
            [system, home, path, version] if !version.contains("azml:no-python") => Ok(HostInfo {
                system: system.to_string(),
                home: home.to_string(),
                python_path: path.to_string(),
                python_version: version.to_string(),
            }),
            _ => Err(SshError::NoPython {
                host: self.target.display(),
                interpreter: interpreter.into(),
                detail: lines.get(2..).map(|l| l.join(" ")).unwrap_or_default(),
            }),
        }
    }

    /// Make the shared connection exist (the first command starts it).
    pub fn ensure_master(&self) -> Result<(), SshError> {
        if self.ctx.control_dir.is_none() || self.control_ok("check") {
            return Ok(());
        }
        self.connect()
    }

    /// Like [`Ssh::ensure_master`], but trusts an existing socket instead of
    /// asking the master (saves an `ssh` start per run). A stale socket is
    /// harmless: the next `ssh` with `ControlMaster=auto` replaces it.
    pub fn ensure_master_quick(&self) -> Result<(), SshError> {
        match self.control_socket() {
            Some(socket) if !socket.exists() => self.connect(),
            _ => Ok(()),
        }
    }

    fn connect(&self) -> Result<(), SshError> {
        self.run("connecting", "true", b"").map(|_| ())
    }

    /// Open a reverse forward from a free loopback port on the host to
    /// `127.0.0.1:local_port` here; returns the host's port. Goes through the
    /// shared connection so it outlives this call until [`Ssh::cancel_forward`].
    /// Callers in one process that forward the same local port share one
    /// forward (see [`super::mux`]).
    pub fn forward_remote(&self, local_port: u16) -> Result<u16, SshError> {
        let Some(socket) = self.control_socket() else {
            return Err(SshError::Invalid {
                what: "reverse forward".into(),
                detail: "needs connection sharing (no private socket folder)".into(),
            });
        };
        self.ensure_master_quick()?;
        super::mux::acquire(
            &socket,
            local_port,
            || match super::mux::open_remote_forward(&socket, local_port) {
                Ok(port) => Ok(port),
                Err(e) => {
                    tracing::debug!("mux forward failed ({e}); asking through ssh -O forward");
                    self.forward_remote_by_ssh(local_port)
                }
            },
        )
    }

    /// [`Ssh::forward_remote`] through an `ssh -O forward` process: reconnects
    /// when the master died.
    fn forward_remote_by_ssh(&self, local_port: u16) -> Result<u16, SshError> {
        let args = ["-R".to_string(), forward_spec(local_port)];
        let out = match self.control_output("forward", &args) {
            Ok(out) => out,
            Err(_) => {
                self.connect()?;
                self.control_output("forward", &args)?
            }
        };
        let text = String::from_utf8_lossy(&out);
        text.trim().parse::<u16>().map_err(|_| SshError::Remote {
            host: self.target.display(),
            what: "opening the tracking forward".into(),
            detail: format!("unexpected answer {text:?}"),
        })
    }

    /// Close a forward opened by [`Ssh::forward_remote`] (once its last user
    /// in this process is done). Best effort.
    pub fn cancel_forward(&self, local_port: u16) {
        self.release_forward(local_port, false);
    }

    /// [`Ssh::cancel_forward`] that never waits for an `ssh -O cancel`
    /// process (the fallback when the socket cannot be spoken to directly):
    /// it finishes on its own even if azml exits first.
    pub fn cancel_forward_detached(&self, local_port: u16) {
        self.release_forward(local_port, true);
    }

    fn release_forward(&self, local_port: u16, detached: bool) {
        let Some(socket) = self.control_socket() else {
            return;
        };
        super::mux::release(&socket, local_port, || {
            if super::mux::close_remote_forward(&socket, local_port).is_ok() {
                return;
            }
            // The master keeps the forward under the spec it was asked for
            // (host port 0), so that is what cancels it.
            let args = ["-R".to_string(), forward_spec(local_port)];
            if !detached {
                let _ = self.control_output("cancel", &args);
                return;
            }
            let spawned = Command::new("ssh")
                .args(self.control_argv("cancel", &args))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn();
            if let Ok(mut child) = spawned {
                // Reap it in the background; it never holds azml's output pipes.
                std::thread::spawn(move || child.wait());
            }
        });
    }

    /// Stop the shared connection now instead of after `ControlPersist`.
    pub fn close(&self) {
        if self.ctx.control_dir.is_some() {
            let _ = self.control_output("exit", &[]);
        }
    }

    fn control_ok(&self, op: &str) -> bool {
        self.control_output(op, &[]).is_ok()
    }

    fn control_output(&self, op: &str, extra: &[String]) -> Result<Vec<u8>, SshError> {
        let out = Command::new("ssh")
            .args(self.control_argv(op, extra))
            .stdin(Stdio::null())
            .process_group(0)
            .output()
            .map_err(SshError::Spawn)?;
        if !out.status.success() {
            return Err(self.failure(&format!("ssh -O {op}"), out.status.code(), &out.stderr));
        }
        Ok(out.stdout)
    }

    /// ssh creates the known_hosts file but not its folder.
    pub fn ensure_known_hosts_dir(&self) -> Result<(), SshError> {
        if let Some(dir) = self.ctx.known_hosts.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| SshError::io(format!("creating {}", dir.display()), e))?;
        }
        Ok(())
    }

    /// The workspace file first (ssh adds new keys to the first file), then
    /// the user's own files, resolved from `$HOME` (ssh's `~` would use the
    /// passwd home, which differs when HOME is overridden).
    fn known_hosts_files(&self) -> String {
        let mut files = vec![self.ctx.known_hosts.clone()];
        if let Some(home) = &self.ctx.home {
            files.push(home.join(".ssh/known_hosts"));
            files.push(home.join(".ssh/known_hosts2"));
        }
        files
            .iter()
            .map(|f| format!("\"{}\"", escape_percent(&f.to_string_lossy())))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// ssh reads `~/.ssh/config` from the passwd home, not `$HOME`. When the
    /// two differ and `$HOME/.ssh/config` exists, pass it with `-F` so the
    /// user's aliases are honoured the way they expect.
    fn user_config_override(&self) -> Option<PathBuf> {
        let home = self.ctx.home.as_ref()?;
        let config = home.join(".ssh/config");
        if !config.is_file() {
            return None;
        }
        let passwd_home = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.dir);
        match passwd_home {
            Some(dir) if same_dir(&dir, home) => None,
            _ => Some(config),
        }
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// ssh expands `%` tokens in paths; a literal `%` is written `%%`.
fn escape_percent(s: &str) -> String {
    s.replace('%', "%%")
}

fn read_all(r: Option<&mut impl Read>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(r) = r {
        let _ = r.read_to_end(&mut buf);
    }
    buf
}

/// The last few non-empty stderr lines: what ssh or the script complained about.
pub fn last_lines(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(3);
    lines[start..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssh(port: Option<u16>, control: bool) -> Ssh {
        let target = SshTarget {
            name: "box".into(),
            address: "gpu-box".into(),
            port,
            username: Some("alice".into()),
            private_key_file: Some("/keys/id 50%".into()),
        };
        let ctx = SshContext {
            known_hosts: "/ws/ssh/known_hosts".into(),
            control_dir: control.then(|| PathBuf::from("/tmp/azml-ssh-1")),
            home: Some("/home/alice-nonexistent".into()),
        };
        Ssh::new(target, ctx).expect("valid")
    }

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn argv_has_batch_mode_sharing_and_host_key_policy() {
        let box_ssh = ssh(Some(2222), true);
        let argv = strings(box_ssh.argv("echo hi"));
        let control_path = format!("ControlPath=/tmp/azml-ssh-1/{}", box_ssh.host_id());
        for want in [
            "BatchMode=yes",
            "StrictHostKeyChecking=accept-new",
            "ControlMaster=auto",
            control_path.as_str(),
            "UserKnownHostsFile=\"/ws/ssh/known_hosts\" \"/home/alice-nonexistent/.ssh/known_hosts\" \"/home/alice-nonexistent/.ssh/known_hosts2\"",
        ] {
            assert!(
                argv.contains(&want.to_string()),
                "{want} missing from {argv:?}"
            );
        }
        let tail = &argv[argv.len() - 9..];
        assert_eq!(
            tail,
            [
                "-p",
                "2222",
                "-l",
                "alice",
                "-i",
                "/keys/id 50%%",
                "--",
                "gpu-box",
                "sh -c 'echo hi'"
            ]
        );
    }

    #[test]
    fn host_ids_differ_by_port_and_user_and_stay_short() {
        let a = ssh(Some(2222), true).host_id();
        assert_eq!(a.len(), 16);
        assert_ne!(a, ssh(None, true).host_id());
        let mut other_user = ssh(Some(2222), true);
        other_user.target.username = Some("bob".into());
        assert_ne!(a, other_user.host_id());
        assert_eq!(a, ssh(Some(2222), false).host_id());
    }

    #[test]
    fn without_a_socket_folder_connections_are_not_shared() {
        let argv = strings(ssh(None, false).argv("true"));
        assert!(argv.contains(&"ControlMaster=no".to_string()));
        assert!(!argv.iter().any(|a| a.starts_with("ControlPath")));
        assert!(!argv.contains(&"-p".to_string()));
    }

    #[test]
    fn stderr_summary_keeps_the_last_lines() {
        assert_eq!(last_lines(b"a\n\nb\nc\nd\n"), "b | c | d");
        assert_eq!(last_lines(b""), "");
    }
}
