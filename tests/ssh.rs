//! SSH hosts as compute targets, against a real private `sshd` on loopback.

#[path = "common/sshd.rs"]
mod sshd;

use azml::local::ssh::command::default_control_dir;
use azml::local::ssh::remote::{
    self, HostRunState, OutputSink, RemoteOutcome, RemoteRunSpec, StreamKind,
};
use azml::local::ssh::sync::{self, SyncEntry};
use azml::local::ssh::{Ssh, SshContext, SshError, SshTarget};
use sshd::Sshd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A workspace folder, an isolated `$HOME` for the client, and the ssh handle.
struct Client {
    ws: tempfile::TempDir,
    ssh: Ssh,
}

fn client(server: &Sshd) -> Client {
    let ws = tempfile::tempdir().expect("ws");
    let home = ws.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let target = SshTarget {
        name: "box".into(),
        address: "127.0.0.1".into(),
        port: Some(server.port),
        username: None,
        private_key_file: Some(server.client_key.clone()),
    };
    let ctx = SshContext {
        known_hosts: ws.path().join("ssh/known_hosts"),
        control_dir: default_control_dir(),
        home: Some(home),
    };
    let ssh = Ssh::new(target, ctx).expect("valid target");
    Client { ws, ssh }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.ssh.close();
    }
}

/// Output collected from a run, by stream.
#[derive(Default)]
struct Collected {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

fn collector() -> (Arc<Mutex<Collected>>, OutputSink) {
    let seen = Arc::new(Mutex::new(Collected::default()));
    let sink_seen = seen.clone();
    let sink: OutputSink = Arc::new(move |kind, bytes| {
        let mut c = sink_seen.lock().expect("lock");
        match kind {
            StreamKind::Stdout => c.stdout.extend_from_slice(bytes),
            StreamKind::Stderr => c.stderr.extend_from_slice(bytes),
        }
    });
    (seen, sink)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Write `files` (relative path → content) under a new temp folder.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("src");
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }
    dir
}

fn sync_dir(c: &Client, run_id: &str, dir: &Path) -> sync::SyncReport {
    let entries = SyncEntry::from_dir(dir).expect("scan");
    sync::sync(&c.ssh, run_id, "python3", &entries).expect("sync")
}

fn remote_run_dir(server: &Sshd, run_id: &str) -> PathBuf {
    server.remote_home.join(".azml/runs").join(run_id)
}

fn spec(run_id: &str, argv: &[&str]) -> RemoteRunSpec {
    RemoteRunSpec {
        run_id: run_id.into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        tracking_port: None,
    }
}

async fn run_to_end(c: &Client, spec: &RemoteRunSpec) -> (RemoteOutcome, Arc<Mutex<Collected>>) {
    let (seen, sink) = collector();
    let outcome = remote::run(&c.ssh, spec, sink, std::future::pending())
        .await
        .expect("run");
    (outcome, seen)
}

#[test]
fn probe_reports_python_and_remembers_the_host_key_in_the_workspace() {
    let Some(server) = Sshd::start() else { return };
    let c = client(&server);
    let info = c.ssh.probe("python3").expect("probe");
    assert!(info.python_version.starts_with('3'), "{info:?}");
    assert!(!info.python_path.is_empty());
    assert_eq!(info.home, server.remote_home.display().to_string());
    let known =
        std::fs::read_to_string(c.ws.path().join("ssh/known_hosts")).expect("known_hosts written");
    let key_body = server
        .host_key_pub
        .split_whitespace()
        .nth(1)
        .expect("key body");
    assert!(known.contains(key_body), "{known}");
}

#[test]
fn a_changed_host_key_is_refused() {
    let Some(server) = Sshd::start() else { return };
    let c = client(&server);
    let kh = c.ws.path().join("ssh/known_hosts");
    std::fs::create_dir_all(kh.parent().expect("parent")).expect("mkdir");
    // A different key recorded for this host: a man in the middle, as ssh sees it.
    let other = Sshd::start().expect("second server");
    std::fs::write(
        &kh,
        format!("[127.0.0.1]:{} {}\n", server.port, other.host_key_pub),
    )
    .expect("write");
    c.ssh.close();
    let err = c
        .ssh
        .probe("python3")
        .expect_err("must refuse a changed host key");
    assert!(matches!(err, SshError::Connect { .. }), "{err:?}");
}

#[test]
fn a_missing_interpreter_is_reported_as_no_python() {
    let Some(server) = Sshd::start() else { return };
    let c = client(&server);
    let err = c
        .ssh
        .probe("/nonexistent/python9")
        .expect_err("no such python");
    assert!(matches!(err, SshError::NoPython { .. }), "{err:?}");
}

#[test]
fn an_ssh_config_alias_under_home_is_honoured() {
    let Some(server) = Sshd::start() else { return };
    let ws = tempfile::tempdir().expect("ws");
    let home = ws.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).expect("mkdir");
    std::fs::write(
        home.join(".ssh/config"),
        format!(
            "Host gpu-box-alias\n  HostName 127.0.0.1\n  Port {}\n  IdentityFile {}\n",
            server.port,
            server.client_key.display()
        ),
    )
    .expect("config");
    let target = SshTarget {
        name: "alias".into(),
        address: "gpu-box-alias".into(),
        port: None,
        username: None,
        private_key_file: None,
    };
    let ctx = SshContext {
        known_hosts: ws.path().join("ssh/known_hosts"),
        control_dir: default_control_dir(),
        home: Some(home),
    };
    let ssh = Ssh::new(target, ctx).expect("valid");
    let info = ssh
        .probe("python3")
        .expect("alias resolves through $HOME/.ssh/config");
    ssh.close();
    assert_eq!(info.home, server.remote_home.display().to_string());
}

#[test]
fn resubmit_sends_only_the_changed_file() {
    let Some(server) = Sshd::start() else { return };
    let c = client(&server);
    let files: Vec<(String, String)> = (0..40)
        .map(|i| {
            (
                format!("pkg/mod{i}.py"),
                format!("# module {i}\n{}\n", "x = 1\n".repeat(200)),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let src = tree(&refs);
    let first = sync_dir(&c, "run_1", src.path());
    assert_eq!((first.files, first.objects_sent), (40, 40));
    let total: u64 = files.iter().map(|(_, c)| c.len() as u64).sum();
    assert!(first.bytes_sent >= total, "{first:?}");

    std::fs::write(src.path().join("pkg/mod7.py"), "changed = True\n").expect("edit");
    let second = sync_dir(&c, "run_2", src.path());
    assert_eq!((second.files, second.objects_sent), (40, 1), "{second:?}");
    // One small object: a tar header, the content, the end-of-archive blocks.
    assert!(second.bytes_sent <= 512 * 2 + 10 * 1024, "{second:?}");

    let unchanged = sync_dir(&c, "run_3", src.path());
    assert_eq!((unchanged.objects_sent, unchanged.bytes_sent), (0, 0));
    for run in ["run_2", "run_3"] {
        let got = std::fs::read_to_string(remote_run_dir(&server, run).join("pkg/mod7.py"))
            .expect("synced");
        assert_eq!(got, "changed = True\n");
        let same = std::fs::read_to_string(remote_run_dir(&server, run).join("pkg/mod3.py"))
            .expect("synced");
        assert_eq!(same, files[3].1);
    }
}

#[test]
fn sync_copies_so_a_run_editing_its_files_cannot_corrupt_the_cache() {
    let Some(server) = Sshd::start() else { return };
    let c = client(&server);
    let src = tree(&[("data.txt", "original\n")]);
    sync_dir(&c, "run_a", src.path());
    std::fs::write(
        remote_run_dir(&server, "run_a").join("data.txt"),
        "scribbled\n",
    )
    .expect("edit on host");
    sync_dir(&c, "run_b", src.path());
    let got =
        std::fs::read_to_string(remote_run_dir(&server, "run_b").join("data.txt")).expect("synced");
    assert_eq!(got, "original\n");
}

const ARGV_SCRIPT: &str = "import json, sys, os\nprint(json.dumps({'argv': sys.argv[1:], 'files': sorted(os.listdir('odd dir'))}))\n";

#[tokio::test]
async fn arguments_and_file_names_with_shell_characters_arrive_verbatim() {
    let Some(server) = Sshd::start() else { return };
    let c = client(&server);
    let odd_names = [
        "a b.txt",
        "it's.txt",
        "$(touch pwned).txt",
        "x;y.txt",
        "\"q\".txt",
    ];
    let mut files: Vec<(String, String)> = vec![("show argv.py".into(), ARGV_SCRIPT.into())];
    files.extend(
        odd_names
            .iter()
            .map(|n| (format!("odd dir/{n}"), n.to_string())),
    );
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let src = tree(&refs);
    sync_dir(&c, "run_odd", src.path());
    let args = [
        "with space",
        "it's",
        "$(touch pwned)",
        "a;b",
        "`id`",
        "",
        "--flag=\"x\"",
    ];
    let mut argv = vec!["python3", "show argv.py"];
    argv.extend(args);
    let (outcome, seen) = run_to_end(&c, &spec("run_odd", &argv)).await;
    assert_eq!(
        outcome,
        RemoteOutcome::Exited(0),
        "{}",
        text(&seen.lock().expect("lock").stderr)
    );
    let out: serde_json::Value =
        serde_json::from_slice(&seen.lock().expect("lock").stdout).expect("json from script");
    assert_eq!(out["argv"], serde_json::json!(args));
    let mut want: Vec<&str> = odd_names.to_vec();
    want.sort();
    assert_eq!(out["files"], serde_json::json!(want));
    assert!(!remote_run_dir(&server, "run_odd").join("pwned").exists());
    assert!(!server.remote_home.join("pwned").exists());
}

const STREAM_SCRIPT: &str = r#"
import sys, time, os
print("first line", flush=True)
print("to stderr", file=sys.stderr, flush=True)
time.sleep(float(sys.argv[1]))
print("after pause", flush=True)
os.makedirs("outputs/sub", exist_ok=True)
open("outputs/sub/model.txt", "w").write("weights")
open("logs/train.log", "w").write("log line")
sys.exit(int(sys.argv[2]))
"#;

#[tokio::test]
async fn output_streams_live_and_outputs_come_back() {
    let Some(server) = Sshd::start() else { return };
    let c = client(&server);
    let src = tree(&[("train.py", STREAM_SCRIPT)]);
    sync_dir(&c, "run_stream", src.path());
    let (seen, sink) = collector();
    let spec = spec("run_stream", &["python3", "train.py", "1.5", "0"]);
    let watcher = {
        let seen = seen.clone();
        async move {
            // The first line must be visible while the script still sleeps.
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let stdout = text(&seen.lock().expect("lock").stdout);
                if stdout.contains("first line") {
                    return !stdout.contains("after pause");
                }
                assert!(Instant::now() < deadline, "no live output");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let (outcome, live) = tokio::join!(
        remote::run(&c.ssh, &spec, sink, std::future::pending()),
        watcher
    );
    assert_eq!(outcome.expect("run"), RemoteOutcome::Exited(0));
    assert!(live, "first line arrived only at the end");
    let collected = seen.lock().expect("lock");
    assert_eq!(text(&collected.stdout), "first line\nafter pause\n");
    assert_eq!(text(&collected.stderr), "to stderr\n");
    drop(collected);

    let dest = c.ws.path().join("runs/run_stream");
    let bytes = remote::fetch_outputs(&c.ssh, "run_stream", &dest).expect("fetch");
    assert!(bytes > 0);
    assert_eq!(
        std::fs::read_to_string(dest.join("outputs/sub/model.txt")).expect("output"),
        "weights"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("logs/train.log")).expect("log"),
        "log line"
    );
}

#[tokio::test]
async fn a_failing_script_reports_its_exit_status() {
    let Some(server) = Sshd::start() else { return };
    let c = client(&server);
    let src = tree(&[("train.py", STREAM_SCRIPT)]);
    sync_dir(&c, "run_fail", src.path());
    let (outcome, _) = run_to_end(&c, &spec("run_fail", &["python3", "train.py", "0", "3"])).await;
    assert_eq!(outcome, RemoteOutcome::Exited(3));
    // A genuine exit 255 is not mistaken for ssh failing.
    let (outcome, _) =
        run_to_end(&c, &spec("run_fail", &["python3", "train.py", "0", "255"])).await;
    assert_eq!(outcome, RemoteOutcome::Exited(255));
    assert_eq!(
        remote::host_run_state(&c.ssh, "run_fail").expect("state"),
        HostRunState::Exited(255)
    );
}

const SECRET_ENV_SCRIPT: &str = r#"
import os, socket, sys, glob
secret = os.environ["MLFLOW_TRACKING_TOKEN"]
leaks = []
for f in glob.glob("/proc/[0-9]*/cmdline"):
    try:
        if secret.encode() in open(f, "rb").read():
            leaks.append(f)
    except OSError:
        pass
uri = os.environ["MLFLOW_TRACKING_URI"]
host, port = uri.rsplit("/", 1)[-1].split(":")
s = socket.create_connection((host, int(port)), timeout=10)
s.sendall(b"hello through the tunnel " + os.environ["SPACED"].encode() + b"\n")
s.close()
print("leaks", leaks)
"#;

#[tokio::test]
async fn environment_goes_through_stdin_and_tracking_through_a_reverse_forward() {
    let Some(server) = Sshd::start() else { return };
    let c = client(&server);
    let src = tree(&[("env.py", SECRET_ENV_SCRIPT)]);
    sync_dir(&c, "run_env", src.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let local_port = listener.local_addr().expect("addr").port();
    let accept = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut conn, _) = listener.accept().await.expect("accept");
        let mut got = String::new();
        conn.read_to_string(&mut got).await.expect("read");
        got
    });
    let secret = format!("tok-{}", std::process::id());
    let mut spec = spec("run_env", &["python3", "env.py"]);
    spec.env = vec![
        ("MLFLOW_TRACKING_TOKEN".into(), secret.clone()),
        (
            "MLFLOW_TRACKING_URI".into(),
            format!("http://127.0.0.1:{local_port}"),
        ),
        ("SPACED".into(), "v a l'u\"e $(x)".into()),
    ];
    spec.tracking_port = Some(local_port);
    let (outcome, seen) = run_to_end(&c, &spec).await;
    let (stdout, stderr) = {
        let collected = seen.lock().expect("lock");
        (text(&collected.stdout), text(&collected.stderr))
    };
    assert_eq!(outcome, RemoteOutcome::Exited(0), "{stderr}");
    assert_eq!(stdout, "leaks []\n");
    let got = tokio::time::timeout(Duration::from_secs(10), accept)
        .await
        .expect("tunnel used")
        .expect("task");
    assert_eq!(got, "hello through the tunnel v a l'u\"e $(x)\n");
}

const CANCEL_SCRIPT: &str = r#"
import subprocess, time
child = subprocess.Popen(["sleep", "8765431"])
print("started", flush=True)
time.sleep(600)
"#;

#[tokio::test]
async fn cancel_kills_the_whole_remote_process_group() {
    let Some(server) = Sshd::start() else { return };
    let c = client(&server);
    let src = tree(&[("cancel_me.py", CANCEL_SCRIPT)]);
    sync_dir(&c, "run_cancel", src.path());
    let (seen, sink) = collector();
    let started = {
        let seen = seen.clone();
        async move {
            loop {
                if text(&seen.lock().expect("lock").stdout).contains("started") {
                    return "canceled by the test".to_string();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let spec = spec("run_cancel", &["python3", "cancel_me.py"]);
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        remote::run(&c.ssh, &spec, sink, started),
    )
    .await
    .expect("cancel does not hang")
    .expect("run");
    assert_eq!(
        outcome,
        RemoteOutcome::Canceled("canceled by the test".into())
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sshd::pids_with("8765431").is_empty() {
        assert!(
            Instant::now() < deadline,
            "remote grandchild survived the cancel"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ne!(
        remote::host_run_state(&c.ssh, "run_cancel").expect("state"),
        HostRunState::Running
    );
}

const LONG_SCRIPT: &str = r#"
import time
print("started", flush=True)
time.sleep(120)
"#;

#[tokio::test]
async fn a_lost_connection_fails_the_run_with_a_reason_and_does_not_hang() {
    let Some(mut server) = Sshd::start() else {
        return;
    };
    let c = client(&server);
    let src = tree(&[("long_4242.py", LONG_SCRIPT)]);
    sync_dir(&c, "run_lost", src.path());
    let (seen, sink) = collector();
    let spec = spec("run_lost", &["python3", "long_4242.py"]);
    let run = remote::run(&c.ssh, &spec, sink, std::future::pending());
    let killer = async {
        loop {
            if text(&seen.lock().expect("lock").stdout).contains("started") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.kill_server();
    };
    let started = Instant::now();
    let (outcome, ()) =
        tokio::time::timeout(Duration::from_secs(90), async { tokio::join!(run, killer) })
            .await
            .expect("a lost connection must not hang the run");
    let outcome = outcome.expect("run");
    match outcome {
        RemoteOutcome::Lost(reason) => assert!(reason.contains("lost"), "{reason}"),
        other => panic!("expected Lost, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(60));
}

// ---- through the binary: attach, submit-script on the host ----------------

/// A project folder with its own local workspace and `$HOME`, talking to `server`.
struct Project {
    dir: tempfile::TempDir,
    port: u16,
    key: PathBuf,
}

impl Project {
    fn new(server: &Sshd) -> Project {
        let dir = tempfile::tempdir().expect("project");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        Project {
            dir,
            port: server.port,
            key: server.client_key.clone(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    fn azml(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("azml"));
        cmd.current_dir(self.path())
            .env("HOME", self.home())
            .env_remove("AZML_LOCAL_WORKSPACE")
            .env_remove("MLFLOW_TRACKING_URI")
            .env_remove("MLFLOW_RUN_ID");
        cmd
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.azml().args(args).output().expect("azml runs")
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "azml {args:?} failed: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    }

    /// `computetarget attach remote -n box` with the test key.
    fn attach(&self, name: &str) -> std::process::Output {
        let port = self.port.to_string();
        let key = self.key.display().to_string();
        self.run(&[
            "computetarget",
            "attach",
            "remote",
            "-n",
            name,
            "-a",
            "127.0.0.1",
            "--ssh-port",
            &port,
            "-u",
            &current_user(),
            "--private-key-file",
            &key,
        ])
    }

    /// A runconfig that runs on `target` with `python`.
    fn runconfig(&self, name: &str, target: &str, python: &str) {
        self.write(
            &format!(".azureml/{name}.runconfig"),
            &format!(
                "target: {target}\nenvironment:\n  python:\n    userManagedDependencies: true\n    interpreterPath: {python}\n"
            ),
        );
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        // Close the shared connection this project opened (it would idle for a minute).
        let target = SshTarget {
            name: "box".into(),
            address: "127.0.0.1".into(),
            port: Some(self.port),
            username: Some(current_user()),
            private_key_file: Some(self.key.clone()),
        };
        let ctx = SshContext::for_workspace(&self.path().join(".azureml/localws"));
        if let Ok(ssh) = Ssh::new(target, ctx) {
            ssh.close();
        }
    }
}

fn current_user() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("id");
    text(&out.stdout).trim().to_string()
}

fn submit_output_json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

/// The Python with mlflow-skinny, or skip (fail under AZML_TEST_REQUIRE_ALL=1).
fn mlflow_python() -> Option<String> {
    match std::env::var("AZML_TEST_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => sshd::skip_or_fail("AZML_TEST_PYTHON (a Python with mlflow-skinny) is not set"),
    }
}

#[test]
fn attach_show_list_delete_detach_on_the_local_workspace() {
    let Some(server) = Sshd::start() else { return };
    let p = Project::new(&server);
    let out = p.attach("box");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let attached = submit_output_json(&out);
    assert_eq!(attached["name"], "box");
    assert_eq!(attached["properties"]["computeType"], "VirtualMachine");
    assert_eq!(attached["properties"]["properties"]["address"], "127.0.0.1");
    assert_eq!(attached["properties"]["properties"]["sshPort"], server.port);
    assert_eq!(stored_username(&attached), Some(current_user()));
    assert!(
        text(&out.stderr).contains("Python 3"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        attached["properties"]["hostCheck"]["pythonVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with('3'))
    );

    let shown = p.json(&["computetarget", "show", "-n", "box"]);
    assert_eq!(shown["properties"]["computeType"], "VirtualMachine");
    let names: Vec<String> = p
        .json(&["computetarget", "list"])
        .as_array()
        .expect("list")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ["local", "box"]);

    // No key contents anywhere in the workspace.
    let key = std::fs::read_to_string(&server.client_key).expect("key");
    let key_body = key.lines().nth(1).expect("key line");
    for entry in walk(&p.path().join(".azureml")) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !text(&bytes).contains(key_body),
            "key material in {}",
            entry.display()
        );
    }

    let delete = p.run(&["computetarget", "delete", "-n", "box"]);
    assert_eq!(delete.status.code(), Some(1));
    assert!(
        text(&delete.stderr).contains("computetarget detach -n box"),
        "{}",
        text(&delete.stderr)
    );

    let detach = p.run(&["computetarget", "detach", "-n", "box"]);
    assert!(detach.status.success(), "{}", text(&detach.stderr));
    assert_eq!(
        p.run(&["computetarget", "show", "-n", "box"]).status.code(),
        Some(3)
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path)
            } else {
                files.push(path)
            }
        }
    }
    files
}

#[test]
fn attach_through_an_ssh_config_alias_and_refuse_passwords() {
    let Some(server) = Sshd::start() else { return };
    let p = Project::new(&server);
    std::fs::create_dir_all(p.home().join(".ssh")).expect("mkdir");
    std::fs::write(
        p.home().join(".ssh/config"),
        format!(
            "Host lab-gpu\n  HostName 127.0.0.1\n  Port {}\n  IdentityFile {}\n",
            server.port,
            server.client_key.display()
        ),
    )
    .expect("config");
    let out = p.run(&[
        "computetarget",
        "attach",
        "remote",
        "-n",
        "lab",
        "-a",
        "lab-gpu",
        "-u",
        &current_user(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let attached = submit_output_json(&out);
    assert_eq!(attached["properties"]["properties"]["address"], "lab-gpu");
    assert!(
        attached["properties"]["properties"]
            .get("sshPort")
            .is_none(),
        "{attached}"
    );

    let pw = p.run(&[
        "computetarget",
        "attach",
        "remote",
        "-n",
        "pw",
        "-a",
        "lab-gpu",
        "-u",
        "x",
        "-p",
        "hunter2",
    ]);
    assert_eq!(pw.status.code(), Some(1));
    assert!(!text(&pw.stderr).contains("hunter2") && !text(&pw.stdout).contains("hunter2"));
    assert_eq!(
        p.run(&["computetarget", "show", "-n", "pw"]).status.code(),
        Some(3)
    );

    let unreachable = p.run(&[
        "computetarget",
        "attach",
        "remote",
        "-n",
        "nope",
        "-a",
        "127.0.0.1",
        "--ssh-port",
        "1",
        "-u",
        "x",
    ]);
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(
        text(&unreachable.stderr).contains("hint:"),
        "{}",
        text(&unreachable.stderr)
    );
    assert_eq!(
        p.run(&["computetarget", "show", "-n", "nope"])
            .status
            .code(),
        Some(3)
    );
}

/// Whether the stored target pins a user (`administratorAccount.username`).
fn stored_username(attached: &serde_json::Value) -> Option<String> {
    attached["properties"]["properties"]["administratorAccount"]["username"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn attach_without_username_lets_ssh_pick_the_login_user() {
    let Some(server) = Sshd::start() else { return };
    let p = Project::new(&server);
    let port = server.port.to_string();
    let key = server.client_key.display().to_string();
    let out = p.run(&[
        "computetarget",
        "attach",
        "remote",
        "-n",
        "box",
        "-a",
        "127.0.0.1",
        "--ssh-port",
        &port,
        "--private-key-file",
        &key,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let attached = submit_output_json(&out);
    assert_eq!(stored_username(&attached), None, "{attached}");
    let shown = p.json(&["computetarget", "show", "-n", "box"]);
    assert_eq!(stored_username(&shown), None, "{shown}");
}

#[test]
fn attach_without_username_uses_the_user_of_an_ssh_config_alias() {
    let Some(server) = Sshd::start() else { return };
    let p = Project::new(&server);
    std::fs::create_dir_all(p.home().join(".ssh")).expect("mkdir");
    let host = |alias: &str, user: &str| {
        format!(
            "Host {alias}\n  HostName 127.0.0.1\n  Port {}\n  User {user}\n  IdentityFile {}\n",
            server.port,
            server.client_key.display()
        )
    };
    let config = host("as-me", &current_user()) + &host("as-nobody", "azml-no-such-user");
    std::fs::write(p.home().join(".ssh/config"), config).expect("config");

    let out = p.run(&[
        "computetarget",
        "attach",
        "remote",
        "-n",
        "me",
        "-a",
        "as-me",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(stored_username(&submit_output_json(&out)), None);

    // The alias's User is what ssh logs in as: a user the host lacks is refused,
    // which proves azml did not override it with the local login name.
    let wrong = p.run(&[
        "computetarget",
        "attach",
        "remote",
        "-n",
        "nobody",
        "-a",
        "as-nobody",
    ]);
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong.stderr));
    assert_eq!(
        p.run(&["computetarget", "show", "-n", "nobody"])
            .status
            .code(),
        Some(3)
    );
}

const MLFLOW_REMOTE_SCRIPT: &str = r#"
import os, sys, mlflow
print("args", sys.argv[1:], flush=True)
print("cwd", os.getcwd(), flush=True)
mlflow.log_metric("accuracy", 0.5, step=0)
mlflow.log_metric("accuracy", 0.75, step=1)
mlflow.log_metrics({"loss": 0.25})
mlflow.log_param("lr", "0.01")
mlflow.set_tag("team", "vision")
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.txt", "w") as f:
    f.write("weights from " + os.environ["AZUREML_RUN_ID"])
with open("report.txt", "w") as f:
    f.write("logged as an artifact")
mlflow.log_artifact("report.txt")
print("Attempted to log scalar metric v1_metric:")
print(42)
"#;

#[test]
fn submit_script_on_an_ssh_target_streams_tracks_and_brings_outputs_back() {
    let Some(server) = Sshd::start() else { return };
    let Some(python) = mlflow_python() else {
        return;
    };
    let p = Project::new(&server);
    assert!(p.attach("box").status.success());
    p.runconfig("box", "box", &python);
    p.write("train.py", MLFLOW_REMOTE_SCRIPT);
    let out = p.run(&[
        "run",
        "submit-script",
        "-c",
        "box",
        "-e",
        "mnist",
        "train.py",
        "--epochs",
        "2 3",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("args ['--epochs', '2 3']"),
        "output is streamed: {stderr}"
    );
    let run = submit_output_json(&out);
    let run_id = run["runId"].as_str().expect("runId").to_string();
    assert_eq!(run["status"], "Completed");
    assert_eq!(run["target"], "box");
    let remote_dir = server.remote_home.join(".azml/runs").join(&run_id);
    assert!(
        stderr.contains(&format!("cwd {}", remote_dir.display())),
        "runs on the host: {stderr}"
    );

    let shown = p.json(&["run", "show", "-r", &run_id]);
    assert_eq!(
        shown["metrics"],
        serde_json::json!({"accuracy": [0.5, 0.75], "loss": 0.25, "v1_metric": 42.0})
    );
    assert_eq!(shown["params"], serde_json::json!({"lr": "0.01"}));
    assert_eq!(shown["tags"]["team"], "vision");
    let local_run = p.path().join(".azureml/localws/runs").join(&run_id);
    assert_eq!(
        std::fs::read_to_string(local_run.join("outputs/model.txt")).expect("outputs copied back"),
        format!("weights from {run_id}")
    );
    // mlflow.log_artifact wrote into the run's outputs/ on the host, which came back.
    assert!(
        remote_dir.join("outputs/report.txt").is_file(),
        "artifact not on the host"
    );
    assert_eq!(
        std::fs::read_to_string(local_run.join("outputs/report.txt"))
            .expect("artifact copied back"),
        "logged as an artifact"
    );
    let log = std::fs::read_to_string(local_run.join("user_logs/std_log.txt")).expect("log");
    assert!(log.contains("args ['--epochs', '2 3']"), "{log}");
}

#[test]
fn a_failing_script_on_an_ssh_target_is_failed_and_azml_exits_1() {
    let Some(server) = Sshd::start() else { return };
    let p = Project::new(&server);
    assert!(p.attach("box").status.success());
    p.write(
        "fail.py",
        "import sys\nprint('about to fail')\nsys.exit(3)\n",
    );
    let out = p.run(&["run", "submit-script", "--ct", "box", "-e", "e", "fail.py"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let run = submit_output_json(&out);
    assert_eq!(run["status"], "Failed");
    assert_eq!(run["target"], "box");
    assert!(text(&out.stderr).contains("about to fail"));
    let message = run["error"]["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("code 3"), "{run}");
}

/// `ssh -O cancel -R 127.0.0.1:<port the host gave>:…` never matched the
/// master's forward (it keeps the requested spec, port 0), so every remote
/// run left a listening forward on the host until the shared connection ended.
#[test]
fn the_tracking_forward_is_closed_on_the_host_when_the_run_ends() {
    let Some(server) = Sshd::start() else { return };
    let p = Project::new(&server);
    assert!(p.attach("box").status.success());
    p.write(
        "probe.py",
        "import os, socket, urllib.parse\n\
         port = urllib.parse.urlparse(os.environ['MLFLOW_TRACKING_URI']).port\n\
         socket.create_connection(('127.0.0.1', port), 5).close()\n\
         print('forward-port', port)\n",
    );
    for _ in 0..2 {
        let out = p.run(&["run", "submit-script", "--ct", "box", "-e", "e", "probe.py"]);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "reachable during the run: {stderr}"
        );
        let port: u16 = stderr
            .split("forward-port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {stderr}"));
        // The master answers the close at once and tells sshd after
        // (`cancel-tcpip-forward`), so the listener goes a moment later; a
        // leaked forward stays until the shared connection ends (60 s).
        let closed = (0..60).any(|_| {
            let gone = std::net::TcpStream::connect(("127.0.0.1", port)).is_err();
            if !gone {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            gone
        });
        assert!(
            closed,
            "port {port} still listens on the host 3 s after the run"
        );
    }
}

/// With the shared connection up, a run asks its master for the session
/// itself: no `ssh` client process starts (each costs ≈ 3 ms before the host
/// sees anything), yet output, exit status, locale variables and outputs/
/// work as before.
#[test]
fn a_warm_run_starts_no_ssh_client_and_still_streams_and_reports_its_exit() {
    let Some(server) = Sshd::start() else { return };
    let p = Project::new(&server);
    assert!(p.attach("box").status.success());
    p.write(
        "job.py",
        "import os, sys\nprint('hello from the host', os.environ.get('LC_AZML_PROBE'))\n\
         open('outputs/o.txt', 'w').write('x')\nsys.exit(int(sys.argv[1]))\n",
    );
    let warm_up = p.run(&[
        "run",
        "submit-script",
        "--ct",
        "box",
        "-e",
        "e",
        "job.py",
        "0",
    ]);
    assert!(warm_up.status.success(), "{}", text(&warm_up.stderr));
    // An `ssh` first on PATH that records every start, then runs the real one.
    let real_ssh = which("ssh");
    let spy_dir = tempfile::tempdir().expect("spy"); // outside the snapshot
    let bin = spy_dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let log = spy_dir.path().join("ssh-starts.log");
    let spy = bin.join("ssh");
    std::fs::write(
        &spy,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real_ssh.display()
        ),
    )
    .expect("spy");
    std::fs::set_permissions(&spy, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (arg, want) in [("0", Some(0)), ("3", Some(1))] {
        let out = p
            .azml()
            .env("PATH", &path)
            .env("LC_AZML_PROBE", "offered")
            .args([
                "run",
                "submit-script",
                "--ct",
                "box",
                "-e",
                "e",
                "job.py",
                arg,
            ])
            .output()
            .expect("azml");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), want, "{stderr}");
        // LANG/LC_* are offered to the host as ssh's stock `SendEnv LANG LC_*` does.
        assert!(stderr.contains("hello from the host offered"), "{stderr}");
    }
    let starts = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(starts, "", "ssh clients started by warm runs");
    let runs = p.json(&["run", "list", "-e", "e", "-o", "json"]);
    let statuses: Vec<&str> = runs
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "Failed").count(),
        1,
        "{statuses:?}"
    );
}

fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

/// The common path: an unchanged snapshot is launched straight from the
/// host's tree (no sync session); a host whose cache was wiped behind azml's
/// back is synced again and the run still works.
#[test]
fn an_unchanged_resubmit_launches_from_the_hosts_tree_and_a_wiped_cache_is_resynced() {
    let Some(server) = Sshd::start() else { return };
    let p = Project::new(&server);
    assert!(p.attach("box").status.success());
    p.write("data/input.txt", "payload\n");
    p.write(
        "read.py",
        "import glob, os\n\
         token = os.environ['MLFLOW_TRACKING_TOKEN'].encode()\n\
         def argv(f):\n\
         \x20   try:\n\
         \x20       return open(f, 'rb').read()\n\
         \x20   except OSError:\n\
         \x20       return b''  # the process exited since the glob\n\
         leaks = [f for f in glob.glob('/proc/[0-9]*/cmdline') if token in argv(f)]\n\
         print(open('data/input.txt').read().strip(), os.access('read.py', os.W_OK), 'leaks', leaks)\n\
         open('outputs/o.txt', 'w').write('x')\n",
    );
    let submit = || {
        let out = p.run(&[
            "--verbose",
            "run",
            "submit-script",
            "--ct",
            "box",
            "-e",
            "e",
            "read.py",
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        (submit_output_json(&out), stderr)
    };
    let (_, first) = submit();
    assert!(first.contains("synced "), "{first}");
    let (run, second) = submit();
    assert!(second.contains("already on"), "{second}");
    assert!(!second.contains("synced"), "{second}");
    assert!(second.contains("payload True leaks []"), "{second}");
    let run_id = run["runId"].as_str().expect("runId");
    let local_output = walk(p.path())
        .into_iter()
        .find(|f| f.ends_with(format!("{run_id}/outputs/o.txt")));
    assert!(
        local_output.is_some(),
        "outputs of {run_id} did not come back"
    );
    // The run before left a spare copy of the tree behind, in the background;
    // wipe once it is made, or the wipe races its `cp -R`.
    wait_for_settled_spare(&server.remote_home.join(".azml/spare"));
    std::fs::remove_dir_all(server.remote_home.join(".azml")).expect("wipe the host cache");
    let (_, third) = submit();
    assert!(third.contains("synced "), "{third}");
    assert!(third.contains("payload True"), "{third}");
}

#[test]
fn ctrl_c_cancels_the_run_and_kills_the_remote_process_group() {
    let Some(server) = Sshd::start() else { return };
    let p = Project::new(&server);
    assert!(p.attach("box").status.success());
    p.write(
        "sleepy.py",
        "import subprocess, time\nsubprocess.Popen(['sleep', '7654321'])\nprint('started', flush=True)\ntime.sleep(300)\n",
    );
    let mut azml = p
        .azml()
        .args([
            "run",
            "submit-script",
            "--ct",
            "box",
            "-e",
            "e",
            "sleepy.py",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while sshd::pids_with("7654321").is_empty() {
        assert!(Instant::now() < deadline, "the remote script never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = nix::unistd::Pid::from_raw(azml.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let status = azml.wait().expect("wait");
    let mut stdout = Vec::new();
    std::io::Read::read_to_end(azml.stdout.as_mut().expect("stdout"), &mut stdout).expect("read");
    assert_eq!(status.code(), Some(130));
    let run: serde_json::Value = serde_json::from_slice(&stdout).expect("run json");
    assert_eq!(run["status"], "Canceled");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sshd::pids_with("7654321").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the remote grandchild survived the cancel"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until no host process carries `marker` (the remote group is gone).
fn assert_remote_processes_end(marker: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !sshd::pids_with(marker).is_empty() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until a spare exists under `spare/<tree>/` and none is half made
/// (a half-made one has a dot name until its copy is done).
fn wait_for_settled_spare(spare: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let names: Vec<String> = std::fs::read_dir(spare)
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|tree| {
                std::fs::read_dir(tree.path())
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        if !names.is_empty() && names.iter().all(|n| !n.starts_with('.')) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no settled spare in {}: {names:?}",
            spare.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for_remote_process(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while sshd::pids_with(marker).is_empty() {
        assert!(Instant::now() < deadline, "the remote script never started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `--async` hands the run to a detached supervisor (a single-threaded
/// runtime); `run cancel` from another azml process reaches the host.
#[test]
fn run_cancel_of_an_async_run_kills_the_remote_process_group() {
    let Some(server) = Sshd::start() else { return };
    let p = Project::new(&server);
    assert!(p.attach("box").status.success());
    p.write(
        "sleepy.py",
        "import subprocess, time\nsubprocess.Popen(['sleep', '7654329'])\ntime.sleep(300)\n",
    );
    let submitted = p.json(&[
        "run",
        "submit-script",
        "--ct",
        "box",
        "-e",
        "e",
        "--async",
        "sleepy.py",
    ]);
    let run_id = submitted["runId"].as_str().expect("runId").to_string();
    wait_for_remote_process("7654329");
    let out = p.run(&["run", "cancel", "-r", &run_id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_remote_processes_end("7654329", "the remote grandchild survived run cancel");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run = p.json(&["run", "show", "-r", &run_id]);
        if run["status"] == "Canceled" {
            break;
        }
        assert!(Instant::now() < deadline, "{run}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn max_run_duration_cancels_the_remote_run() {
    let Some(server) = Sshd::start() else { return };
    let p = Project::new(&server);
    assert!(p.attach("box").status.success());
    p.write(
        ".azureml/slow.runconfig",
        "target: box\nmaxRunDurationSeconds: 2\nenvironment:\n  python:\n    userManagedDependencies: true\n    interpreterPath: python3\n",
    );
    p.write(
        "sleepy.py",
        "import subprocess, time\nsubprocess.Popen(['sleep', '7654327'])\ntime.sleep(300)\n",
    );
    let out = p.run(&["run", "submit-script", "-c", "slow", "-e", "e", "sleepy.py"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let run = submit_output_json(&out);
    assert_eq!(run["status"], "Canceled", "{run}");
    let reason = run["error"]["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("maxRunDurationSeconds (2 s)"), "{run}");
    assert_remote_processes_end("7654327", "the remote grandchild outlived the time limit");
}

#[test]
fn a_lost_connection_fails_the_run_with_the_reason() {
    let Some(mut server) = Sshd::start() else {
        return;
    };
    let p = Project::new(&server);
    assert!(p.attach("box").status.success());
    // The script marks its start in the host's $HOME: unambiguous, unlike process names.
    p.write(
        "long.py",
        "import os, time\nopen(os.path.expanduser('~/long-started'), 'w').close()\ntime.sleep(600)\n",
    );
    let azml = p
        .azml()
        .args(["run", "submit-script", "--ct", "box", "-e", "e", "long.py"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.remote_home.join("long-started").exists() {
        assert!(Instant::now() < deadline, "the remote script never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.kill_server();
    let started = Instant::now();
    let out = azml.wait_with_output().expect("azml ends");
    assert!(started.elapsed() < Duration::from_secs(90));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("lost"), "{stderr}");
    // The foreground submit still prints the run, Failed with the reason, like a failed script.
    let printed = submit_output_json(&out);
    assert_eq!(printed["status"], "Failed", "{printed}\n{stderr}");
    let message = printed["error"]["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("lost"), "{printed}");
    let runs = p.json(&["run", "list"]);
    assert_eq!(runs[0]["status"], "Failed", "{}", runs[0]);
    assert_eq!(runs[0]["runId"], printed["runId"]);
}

/// v1 offline-log metric lines; the weak child starts late and logs slowly so
/// the strong ones are always ahead when the policy looks at it.
const SWEEP_SCRIPT: &str = r#"
import argparse, time
ap = argparse.ArgumentParser()
ap.add_argument("--quality", type=float)
q = ap.parse_args().quality
pause = 0.3 if q > 0.5 else 1.5
for shape in [0.5, 0.8, 0.9, 1.0]:
    time.sleep(pause)
    print("Attempted to log scalar metric acc:")
    print(round(q * shape, 6), flush=True)
"#;

const SWEEP_HDCONFIG: &str = r#"
sampling:
  type: grid
  parameter_space:
  - name: quality
    expression: choice
    values: [0.9, 0.3, 0.85]
policy:
  type: BanditPolicy
  evaluation_interval: 1
  slack_factor: 0.2
primary_metric_name: acc
primary_metric_goal: maximize
max_total_runs: 3
max_concurrent_runs: 3
"#;

#[test]
fn a_bandit_sweep_runs_its_children_on_the_host_at_once() {
    let Some(server) = Sshd::start() else {
        return;
    };
    let p = Project::new(&server);
    assert!(p.attach("box").status.success());
    p.runconfig("box", "box", "python3");
    p.write("curve.py", SWEEP_SCRIPT);
    p.write("hd.yml", SWEEP_HDCONFIG);
    let out = p.run(&[
        "run",
        "submit-hyperdrive",
        "-e",
        "sweep",
        "-c",
        "box",
        "--hyperdrive-configuration-name",
        "hd.yml",
        "curve.py",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let parent = submit_output_json(&out);
    let parent_id = parent["runId"].as_str().expect("runId").to_string();
    let child = |i: usize| p.json(&["run", "show", "-r", &format!("{parent_id}_{i}")]);
    let children: Vec<serde_json::Value> = (0..3).map(child).collect();
    let statuses: Vec<&str> = children
        .iter()
        .map(|c| c["status"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        statuses,
        ["Completed", "Canceled", "Completed"],
        "{}",
        text(&out.stderr)
    );
    for c in &children {
        assert_eq!(c["target"], "box");
        let run_id = c["runId"].as_str().expect("runId");
        assert!(
            server
                .remote_home
                .join(".azml/runs")
                .join(run_id)
                .join("curve.py")
                .is_file()
        );
    }
    assert_eq!(
        children[0]["metrics"]["acc"],
        serde_json::json!([0.45, 0.72, 0.81, 0.9])
    );
    // Children 0 and 2 ran on the host at the same time.
    let time = |c: &serde_json::Value, k: &str| c[k].as_str().unwrap_or_default().to_string();
    assert!(
        time(&children[2], "startTimeUtc") < time(&children[0], "endTimeUtc"),
        "{children:?}"
    );
    assert_eq!(
        parent["properties"]["best_child_run_id"],
        format!("{parent_id}_0")
    );
}
