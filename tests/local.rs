//! The local workspace end to end, through the real binary: runs on this
//! machine, run history, the MLflow-compatible endpoint with the real MLflow
//! client, cancellation, detached supervisors.
//!
//! Needs a Python with `mlflow-skinny` in `AZML_TEST_PYTHON` for the MLflow
//! tests (they skip without it, and fail when `AZML_TEST_REQUIRE_ALL=1`).

use assert_cmd::Command;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A throwaway project folder with its own local workspace.
struct Project {
    dir: tempfile::TempDir,
    python: PathBuf,
}

/// The Python the tests use: `AZML_TEST_PYTHON`, else `python3` on PATH for
/// tests that do not need MLflow. `None` (after printing why) means skip.
fn python(needs_mlflow: bool) -> Option<PathBuf> {
    let require_all = std::env::var("AZML_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1");
    if let Some(p) = std::env::var_os("AZML_TEST_PYTHON") {
        return Some(PathBuf::from(p));
    }
    if !needs_mlflow && let Some(p) = which("python3") {
        return Some(p);
    }
    assert!(
        !require_all,
        "AZML_TEST_PYTHON is not set but AZML_TEST_REQUIRE_ALL=1"
    );
    eprintln!("skipped: set AZML_TEST_PYTHON to a Python with mlflow-skinny");
    None
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

impl Project {
    fn new(python: PathBuf) -> Project {
        Project {
            dir: tempfile::tempdir().unwrap(),
            python,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn root(&self) -> PathBuf {
        self.path().join(".azureml/localws")
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// The binary, run in the project, with the test Python first on PATH
    /// (the default runconfig uses the `python3` found there).
    fn azml(&self) -> Command {
        Command::from_std(self.std_azml())
    }

    fn std_azml(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("azml"));
        self.prepare(&mut cmd);
        cmd
    }

    fn prepare(&self, cmd: &mut std::process::Command) {
        let bin = self.python.parent().unwrap().to_path_buf();
        let path = std::env::join_paths(
            std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
        )
        .unwrap();
        cmd.current_dir(self.path())
            .env("PATH", path)
            .env_remove("AZML_LOCAL_WORKSPACE")
            .env_remove("MLFLOW_TRACKING_URI")
            .env_remove("MLFLOW_RUN_ID");
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.azml().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "azml {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn show(&self, run_id: &str) -> Value {
        self.json(&["run", "show", "-r", run_id])
    }

    fn only_run_id(&self) -> String {
        let runs = self.json(&["run", "list"]);
        assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
        runs[0]["runId"].as_str().unwrap().to_string()
    }

    fn run_dir(&self, run_id: &str) -> PathBuf {
        self.root().join("runs").join(run_id)
    }

    /// Poll `run show` until the run reached a final status.
    fn wait_finished(&self, run_id: &str, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let run = self.show(run_id);
            if ["Completed", "Failed", "Canceled"].contains(&run["status"].as_str().unwrap()) {
                return run;
            }
            assert!(
                start.elapsed() < limit,
                "run {run_id} did not finish: {run}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn wait_for_file(path: &Path, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(start.elapsed() < limit, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pid_alive(pid: i32) -> bool {
    // A zombie is dead for our purposes.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

fn submit_json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

const MLFLOW_SCRIPT: &str = r#"
import os, sys, mlflow
print("args", sys.argv[1:])
mlflow.log_metric("accuracy", 0.5, step=0)
mlflow.log_metric("accuracy", 0.75, step=1)
mlflow.log_metrics({"loss": 0.25})
mlflow.log_param("lr", "0.01")
mlflow.set_tag("team", "vision")
with open("model.txt", "w") as f:
    f.write("weights")
mlflow.log_artifact("model.txt")
print("Attempted to log scalar metric v1_metric:")
print(42)
"#;

#[test]
fn an_mlflow_script_lands_metrics_params_tags_and_artifacts_exactly() {
    let Some(py) = python(true) else { return };
    let p = Project::new(py);
    p.write("train.py", MLFLOW_SCRIPT);
    let out = p
        .azml()
        .args([
            "run",
            "submit-script",
            "-e",
            "mnist",
            "train.py",
            "--epochs",
            "2",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("args ['--epochs', '2']"),
        "output is streamed: {stderr}"
    );
    let run = submit_json(&out);
    let run_id = run["runId"].as_str().unwrap();
    assert!(run_id.starts_with("mnist_"), "{run_id}");
    assert_eq!(run["status"], "Completed");
    assert_eq!(run["target"], "local");
    assert_eq!(run["experimentName"], "mnist");
    assert_eq!(run["runType"], "azureml.scriptrun");

    let shown = p.show(run_id);
    assert_eq!(
        shown["metrics"],
        json!({"accuracy": [0.5, 0.75], "loss": 0.25, "v1_metric": 42.0})
    );
    assert_eq!(shown["params"], json!({"lr": "0.01"}));
    assert_eq!(shown["tags"]["team"], "vision");
    assert!(shown["startTimeUtc"].as_str().unwrap().ends_with('Z'));
    assert!(shown["endTimeUtc"].as_str().is_some());
    assert_eq!(
        p.json(&["run", "metrics", "-r", run_id]),
        json!({"accuracy": [0.5, 0.75], "loss": 0.25, "v1_metric": 42.0})
    );
    let artifact = p.run_dir(run_id).join("outputs/model.txt");
    assert_eq!(std::fs::read_to_string(artifact).unwrap(), "weights");
    let log = std::fs::read_to_string(p.run_dir(run_id).join("user_logs/std_log.txt")).unwrap();
    assert!(log.contains("args ['--epochs', '2']"), "{log}");
}

#[test]
fn a_failing_script_is_failed_and_azml_exits_1() {
    let Some(py) = python(false) else { return };
    let p = Project::new(py);
    p.write(
        "fail.py",
        "import sys\nprint('about to fail')\nsys.exit(3)\n",
    );
    let out = p
        .azml()
        .args(["run", "submit-script", "-e", "e", "fail.py"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let run = submit_json(&out);
    assert_eq!(run["status"], "Failed");
    assert!(
        run["error"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("code 3"),
        "{run}"
    );
}

#[test]
fn ctrl_c_kills_the_script_process_group_and_records_canceled_with_exit_130() {
    let Some(py) = python(false) else { return };
    let p = Project::new(py);
    // The script starts a grandchild; both must die.
    p.write(
        "sleepy.py",
        "import subprocess, time, os\n\
         child = subprocess.Popen(['sleep', '300'])\n\
         open(os.environ['PIDS_FILE'], 'w').write(f'{os.getpid()} {child.pid}\\n')\n\
         time.sleep(300)\n",
    );
    let pids_file = p.path().join("pids.txt");
    let azml = p
        .std_azml()
        .args(["run", "submit-script", "-e", "e", "sleepy.py"])
        .env("PIDS_FILE", &pids_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pids: Vec<i32> = wait_for_file(&pids_file, Duration::from_secs(30))
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(azml.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = azml.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let run = submit_json(&out);
    assert_eq!(run["status"], "Canceled");
    for pid in pids {
        assert!(!pid_alive(pid), "process {pid} of the run survived");
    }
}

#[test]
fn async_submit_returns_at_once_and_monitor_logs_streams_to_the_end() {
    let Some(py) = python(false) else { return };
    let p = Project::new(py);
    p.write(
        "slow.py",
        "import time\nfor i in range(3):\n    print('tick', i, flush=True)\n    time.sleep(0.5)\nprint('all done')\n",
    );
    let out = p
        .azml()
        .args(["run", "submit-script", "-e", "e", "--async", "slow.py"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let run = submit_json(&out);
    let run_id = run["runId"].as_str().unwrap();
    assert_ne!(
        run["status"], "Completed",
        "--async returned only after the run: {run}"
    );
    let out = p
        .azml()
        .args(["run", "monitor-logs", "-r", run_id])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(
        logs.contains("tick 0") && logs.contains("all done"),
        "{logs}"
    );
    assert_eq!(p.show(run_id)["status"], "Completed");
}

#[test]
fn two_runs_at_once_both_record_all_their_metrics() {
    let Some(py) = python(true) else { return };
    let p = Project::new(py);
    p.write(
        "many.py",
        "import mlflow\nfor i in range(40):\n    mlflow.log_metric('m', i, step=i)\n",
    );
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let out = p
                .azml()
                .args(["run", "submit-script", "-e", "e", "--async", "many.py"])
                .output()
                .unwrap();
            submit_json(&out)["runId"].as_str().unwrap().to_string()
        })
        .collect();
    for id in &ids {
        let run = p.wait_finished(id, Duration::from_secs(120));
        assert_eq!(run["status"], "Completed", "{run}");
        let expected: Vec<f64> = (0..40).map(f64::from).collect();
        assert_eq!(run["metrics"]["m"], json!(expected));
    }
}

#[test]
fn a_run_whose_supervisor_was_killed_is_marked_failed_by_the_next_command() {
    let Some(py) = python(false) else { return };
    let p = Project::new(py);
    p.write("long.py", "import time\ntime.sleep(300)\n");
    let out = p
        .azml()
        .args(["run", "submit-script", "-e", "e", "--async", "long.py"])
        .output()
        .unwrap();
    let run_id = submit_json(&out)["runId"].as_str().unwrap().to_string();
    let store = azml::local::store::Store::open(&p.root()).unwrap();
    let start = Instant::now();
    let (supervisor, child) = loop {
        let run = store.run(&run_id).unwrap();
        if let (Some(s), Some(c)) = (run.supervisor_pid, run.child_pid) {
            break (s as i32, c as i32);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "run never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    while pid_alive(supervisor) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = p.show(&run_id);
    assert_eq!(run["status"], "Failed");
    assert_eq!(run["error"]["error"]["code"], "SupervisorLost", "{run}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(!pid_alive(child), "the orphaned script was left running");
}

#[test]
fn run_cancel_from_another_shell_cancels_a_running_run() {
    let Some(py) = python(false) else { return };
    let p = Project::new(py);
    p.write(
        "long.py",
        "import time\nprint('started', flush=True)\ntime.sleep(300)\n",
    );
    let out = p
        .azml()
        .args(["run", "submit-script", "-e", "e", "--async", "long.py"])
        .output()
        .unwrap();
    let run_id = submit_json(&out)["runId"].as_str().unwrap().to_string();
    wait_for_file(
        &p.run_dir(&run_id).join("user_logs/std_log.txt"),
        Duration::from_secs(30),
    );
    let run = p.json(&["run", "cancel", "-r", &run_id]);
    assert_eq!(run["status"], "Canceled", "{run}");
}

#[test]
fn a_tracking_request_without_the_run_token_is_refused_with_401() {
    let Some(py) = python(false) else { return };
    let p = Project::new(py);
    p.write(
        "probe.py",
        r#"
import os, urllib.request, urllib.error, json
uri = os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/get?run_id=" + os.environ["MLFLOW_RUN_ID"]
def status(headers):
    try:
        with urllib.request.urlopen(urllib.request.Request(uri, headers=headers)) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
code, body = status({})
print("no-token", code, body["error_code"])
code, body = status({"Authorization": "Bearer wrong"})
print("wrong-token", code, body["error_code"])
auth = {"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]}
code, body = status(auth)
print("token", code, body["run"]["info"]["status"])
base = os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/"
def call(path, payload=None):
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(base + path, data=data, headers={**auth, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r).get("error_code", "-")
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)["error_code"]
run = os.environ["MLFLOW_RUN_ID"]
print("missing-run", *call("runs/get?run_id=nope_1_00000000"))
print("param-once", *call("runs/log-parameter", {"run_id": run, "key": "k", "value": "1"}))
print("param-changed", *call("runs/log-parameter", {"run_id": run, "key": "k", "value": "2"}))
print("bad-metric", *call("runs/log-metric", {"run_id": run, "key": "m", "value": "high"}))
print("unknown-endpoint", *call("runs/frobnicate", {}))
"#,
    );
    let out = p
        .azml()
        .args(["run", "submit-script", "-e", "e", "probe.py"])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    assert!(logs.contains("no-token 401 UNAUTHENTICATED"), "{logs}");
    assert!(logs.contains("wrong-token 401 UNAUTHENTICATED"), "{logs}");
    assert!(logs.contains("token 200 RUNNING"), "{logs}");
    for expected in [
        "missing-run 404 RESOURCE_DOES_NOT_EXIST",
        "param-once 200 -",
        "param-changed 400 INVALID_PARAMETER_VALUE",
        "bad-metric 400 INVALID_PARAMETER_VALUE",
        "unknown-endpoint 404 ENDPOINT_NOT_FOUND",
    ] {
        assert!(logs.contains(expected), "missing {expected:?} in {logs}");
    }
    // The token never shows up in the run's recorded output or properties.
    let run_id = p.only_run_id();
    let shown = p.show(&run_id).to_string();
    assert!(!shown.contains("MLFLOW_TRACKING_TOKEN"));
}

#[test]
fn run_list_and_update_and_download_logs_work_on_the_local_store() {
    let Some(py) = python(false) else { return };
    let p = Project::new(py);
    p.write("ok.py", "print('fine')\n");
    for _ in 0..2 {
        p.azml()
            .args(["run", "submit-script", "-e", "e", "ok.py"])
            .assert()
            .success();
    }
    let runs = p.json(&["run", "list", "--last", "1"]);
    assert_eq!(runs.as_array().unwrap().len(), 1);
    let run_id = runs[0]["runId"].as_str().unwrap().to_string();
    let updated = p.json(&["run", "update", "-r", &run_id, "--add-tag", "stage=prod"]);
    assert_eq!(updated["tags"]["stage"], "prod");
    let tagged = p.json(&["run", "list", "--tags", "stage=prod"]);
    assert_eq!(tagged.as_array().unwrap().len(), 1);
    assert_eq!(tagged[0]["runId"], run_id.as_str());
    // A key alone matches any value, as v1's get_runs(tags="stage").
    let any_stage = p.json(&["run", "list", "--tags", "stage"]);
    assert_eq!(any_stage.as_array().unwrap().len(), 1);
    assert!(
        p.json(&["run", "list", "--tags", "stage=dev"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let completed = p.json(&["run", "list", "--status", "Completed"]);
    assert_eq!(completed.as_array().unwrap().len(), 2);
    // v1's `_get_minimal_run` keys (az's JSON sorts them); `runs[:0]` is none.
    let minimal = p.json(&["run", "list", "--minimal", "--last", "1"]);
    let keys: Vec<&String> = minimal[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "EndTime",
            "RunId",
            "RunType",
            "StartTime",
            "Status",
            "Tags",
            "Target"
        ]
    );
    assert_eq!(minimal[0]["RunId"], run_id.as_str());
    assert_eq!(
        p.json(&["run", "list", "--last", "0"]),
        serde_json::json!([])
    );
    let both = p
        .azml()
        .args(["run", "list", "-e", "e", "--pipeline-run-id", "x"])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
    let orphan = p
        .azml()
        .args(["run", "list", "--parent-run-id", "nope"])
        .output()
        .unwrap();
    assert_eq!(orphan.status.code(), Some(3));
    let dest = p.path().join("downloaded");
    p.azml()
        .args(["run", "download-logs", "-r", &run_id, "-d"])
        .arg(&dest)
        .assert()
        .success();
    let log = std::fs::read_to_string(dest.join("user_logs/std_log.txt")).unwrap();
    assert_eq!(log, "fine\n");
    p.azml()
        .args(["run", "show", "-r", "nope_1_deadbeef"])
        .assert()
        .code(3);
}

#[test]
fn local_compute_and_experiments_have_azure_shapes() {
    let Some(py) = python(false) else { return };
    let p = Project::new(py);
    let computes = p.json(&["computetarget", "list"]);
    assert_eq!(computes[0]["name"], "local");
    assert_eq!(computes[0]["properties"]["computeType"], "Local");
    assert_eq!(computes[0]["properties"]["provisioningState"], "Succeeded");
    let shown = p.json(&["computetarget", "show", "-n", "local"]);
    assert_eq!(shown["name"], "local");
    let out = p
        .azml()
        .args(["experiment", "create", "-e", "exp1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let again = p
        .azml()
        .args(["experiment", "create", "-e", "exp1"])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let list = p.json(&["experiment", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "exp1");
}

#[test]
fn max_run_duration_cancels_the_run_with_that_reason() {
    let Some(py) = python(false) else { return };
    let p = Project::new(py.clone());
    p.write(
        "sleepy.py",
        "import time\nprint('sleeping', flush=True)\ntime.sleep(120)\n",
    );
    p.write(
        ".azureml/timeout.runconfig",
        &format!(
            "script: sleepy.py\ntarget: local\nmaxRunDurationSeconds: 2\nenvironment:\n  python:\n    userManagedDependencies: true\n    interpreterPath: {}\n",
            py.display()
        ),
    );
    let out = p
        .azml()
        .args(["run", "submit-script", "-c", "timeout", "-e", "e"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let run = submit_json(&out);
    assert_eq!(run["status"], "Canceled");
    let reason = run["error"]["error"]["message"].as_str().unwrap();
    assert!(reason.contains("maxRunDurationSeconds (2 s)"), "{reason}");
}

#[test]
fn the_script_gets_runconfig_variables_and_the_azure_ml_ones() {
    let Some(py) = python(false) else { return };
    let p = Project::new(py.clone());
    p.write(
        "env.py",
        "import os, sys\nfor k in ['EXAMPLE_ENV_VAR', 'TOP_LEVEL', 'AZUREML_RUN_ID', 'AZUREML_ARM_PROJECT_NAME', 'AZUREML_OUTPUT_DIRECTORY', 'MLFLOW_RUN_ID', 'MLFLOW_EXPERIMENT_NAME']:\n    print(k, '=', os.environ.get(k))\nprint('argv', sys.argv[1:])\n",
    );
    p.write(
        ".azureml/env.runconfig",
        &format!(
            "script: env.py\narguments: [--from-config, '1']\ntarget: local\nenvironmentVariables:\n  TOP_LEVEL: top\nenvironment:\n  environmentVariables:\n    EXAMPLE_ENV_VAR: from-env-section\n  python:\n    userManagedDependencies: false\n    interpreterPath: {}\n",
            py.display()
        ),
    );
    let out = p
        .azml()
        .args(["run", "submit-script", "-c", "env", "-e", "envexp"])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    let run_id = submit_json(&out)["runId"].as_str().unwrap().to_string();
    for expected in [
        "EXAMPLE_ENV_VAR = from-env-section".to_string(),
        "TOP_LEVEL = top".into(),
        format!("AZUREML_RUN_ID = {run_id}"),
        "AZUREML_ARM_PROJECT_NAME = envexp".into(),
        "AZUREML_OUTPUT_DIRECTORY = outputs".into(),
        format!("MLFLOW_RUN_ID = {run_id}"),
        "MLFLOW_EXPERIMENT_NAME = envexp".into(),
        "argv ['--from-config', '1']".into(),
    ] {
        assert!(logs.contains(&expected), "missing {expected:?} in {logs}");
    }
    assert_eq!(
        logs.matches("userManagedDependencies is false").count(),
        1,
        "warned once: {logs}"
    );
}

#[test]
fn a_missing_interpreter_fails_before_any_run_is_created() {
    let Some(py) = python(false) else { return };
    let p = Project::new(py);
    p.write("ok.py", "print('never')\n");
    p.write(
        ".azureml/broken.runconfig",
        "script: ok.py\ntarget: local\nenvironment:\n  python:\n    userManagedDependencies: true\n    interpreterPath: /nonexistent/bin/python\n",
    );
    let out = p
        .azml()
        .args(["run", "submit-script", "-c", "broken", "-e", "e"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/bin/python"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    assert_eq!(p.json(&["run", "list"]), json!([]));
}

#[test]
fn nested_mlflow_runs_become_child_runs_and_search_and_history_work() {
    let Some(py) = python(true) else { return };
    let p = Project::new(py);
    p.write(
        "nested.py",
        r#"
import mlflow
from mlflow.tracking import MlflowClient
mlflow.log_metric("outer", 1.0)
mlflow.log_metric("outer", 2.0)
with mlflow.start_run(nested=True, run_name="child-a"):
    mlflow.log_metric("inner", 2.0)
    mlflow.log_params({"a": 1, "b": "x"})
run_id = mlflow.active_run().info.run_id
print("history", [m.value for m in MlflowClient().get_metric_history(run_id, "outer")])
found = mlflow.search_runs(filter_string="metrics.inner > 1", output_format="list")
print("search", [r.info.run_name for r in found])
mlflow.log_metric("not_a_number", float("nan"))
"#,
    );
    let out = p
        .azml()
        .args(["run", "submit-script", "-e", "nest", "nested.py"])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    assert!(logs.contains("history [1.0, 2.0]"), "{logs}");
    assert!(logs.contains("search ['child-a']"), "{logs}");
    let parent = submit_json(&out);
    let parent_id = parent["runId"].as_str().unwrap();
    assert_eq!(p.show(parent_id)["metrics"]["not_a_number"], "NaN");
    let children = p.json(&["run", "list", "--parent-run-id", parent_id]);
    assert_eq!(children.as_array().unwrap().len(), 1, "{children}");
    let child = p.show(children[0]["runId"].as_str().unwrap());
    assert_eq!(child["displayName"], "child-a");
    assert_eq!(child["runType"], "mlflow");
    assert_eq!(child["status"], "Completed");
    assert_eq!(child["metrics"], json!({"inner": 2.0}));
    assert_eq!(child["params"], json!({"a": "1", "b": "x"}));
}

#[test]
fn a_relative_azml_local_workspace_still_gives_absolute_artifact_uris() {
    let Some(py) = python(false) else { return };
    let p = Project::new(py);
    p.write(
        "uri.py",
        "import os\nprint('URI', os.environ['MLFLOW_ARTIFACT_URI'])\n",
    );
    let out = p
        .azml()
        .env("AZML_LOCAL_WORKSPACE", "ws")
        .args(["run", "submit-script", "-e", "e", "uri.py"])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    let run_id = submit_json(&out)["runId"].as_str().unwrap().to_string();
    let expected = format!(
        "URI file://{}/ws/runs/{run_id}/outputs",
        p.path().canonicalize().unwrap().display()
    );
    assert!(logs.contains(&expected), "want {expected:?} in {logs}");
    // The workspace sits inside the source folder but is never snapshotted into runs.
    let run_dir = p.path().join("ws/runs").join(&run_id);
    assert!(run_dir.join("uri.py").is_file());
    assert!(!run_dir.join("ws").exists());
}
#[test]
fn the_projects_default_workspace_is_never_snapshotted_when_another_is_in_use() {
    let Some(py) = python(false) else { return };
    let p = Project::new(py);
    p.write("job.py", "print('ok')\n");
    // Run history of the default workspace, from before AZML_LOCAL_WORKSPACE was set.
    p.write(".azureml/localws/runs/old_run/outputs/model.bin", "weights");
    let elsewhere = tempfile::tempdir().unwrap();
    let out = p
        .azml()
        .env("AZML_LOCAL_WORKSPACE", elsewhere.path())
        .args(["run", "submit-script", "-e", "e", "job.py"])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    let run_id = submit_json(&out)["runId"].as_str().unwrap().to_string();
    let run_dir = elsewhere.path().join("runs").join(&run_id);
    assert!(run_dir.join("job.py").is_file());
    assert!(
        !run_dir.join(".azureml/localws").exists(),
        "the old workspace was copied into the run"
    );
}

/// Files the script sees in its working directory (minus what the run itself writes).
const LIST_FILES: &str = r#"
import os
seen = []
for d, dirs, files in os.walk("."):
    dirs[:] = [x for x in dirs if x not in ("user_logs", "logs", "outputs")]
    seen += [os.path.relpath(os.path.join(d, f)).replace(os.sep, "/") for f in files]
print("SEEN", sorted(seen))
"#;

fn files_seen_by_script(p: &Project) -> Vec<String> {
    let out = p
        .azml()
        .args(["run", "submit-script", "-e", "snap", "list_files.py"])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{logs}");
    let line = logs
        .lines()
        .find_map(|l| l.strip_prefix("SEEN "))
        .unwrap_or_else(|| panic!("no SEEN line in {logs}"));
    line.trim_matches(|c| c == '[' || c == ']')
        .split(", ")
        .map(|s| s.trim_matches('\'').to_string())
        .collect()
}

#[test]
fn the_snapshot_follows_amlignore_else_gitignore_and_the_script_cannot_see_ignored_files() {
    let Some(py) = python(false) else { return };
    // (files in the project, expected visible to the script)
    type Files<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Files, &[&str]); 3] = [
        (
            &[
                (".amlignore", "data/\n*.log\n"),
                (".gitignore", "keep.txt\n"),
                ("data/secret.csv", "x"),
                ("a.log", "x"),
                ("keep.txt", "x"),
            ],
            &[".amlignore", ".gitignore", "keep.txt", "list_files.py"],
        ),
        (
            &[(".gitignore", "*.log\n"), ("a.log", "x"), ("keep.txt", "x")],
            &[".gitignore", "keep.txt", "list_files.py"],
        ),
        (
            &[("a.log", "x"), ("sub/b.txt", "x")],
            &["a.log", "list_files.py", "sub/b.txt"],
        ),
    ];
    for (files, expected) in cases {
        let p = Project::new(py.clone());
        p.write("list_files.py", LIST_FILES);
        for (name, text) in files {
            p.write(name, text);
        }
        let mut seen = files_seen_by_script(&p);
        // The project's own .azureml folder (runconfigs) is not part of these cases.
        seen.retain(|f| !f.starts_with(".azureml/"));
        assert_eq!(seen, *expected, "project files {files:?}");
    }
}

#[test]
fn a_run_records_the_git_commit_branch_dirty_flag_and_remote_without_credentials() {
    let Some(py) = python(false) else { return };
    let p = Project::new(py);
    p.write("ok.py", "print('ok')\n");
    p.write(".gitignore", ".azureml/\n");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .current_dir(p.path())
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !git(&["init", "-q", "-b", "feature"]) {
        let required = std::env::var("AZML_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "git is not installed but AZML_TEST_REQUIRE_ALL=1"
        );
        eprintln!("skipped: git is not installed");
        return;
    }
    assert!(git(&["add", "."]) && git(&["commit", "-qm", "first"]));
    assert!(git(&[
        "remote",
        "add",
        "origin",
        "https://me:hunter2@example.com/team/repo.git"
    ]));
    let out = p
        .azml()
        .args(["run", "submit-script", "-e", "g", "ok.py"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let props = &submit_json(&out)["properties"];
    assert_eq!(props["mlflow.source.git.branch"], "feature");
    assert_eq!(props["azureml.git.dirty"], "False");
    assert_eq!(
        props["mlflow.source.git.commit"].as_str().unwrap().len(),
        40
    );
    assert_eq!(
        props["mlflow.source.git.repoURL"],
        "https://example.com/team/repo.git"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));
}

#[test]
fn a_script_editing_its_source_files_never_changes_later_runs_snapshots() {
    let Some(py) = python(false) else { return };
    let p = Project::new(py);
    p.write("data.txt", "original\n");
    p.write(
        "edit.py",
        "try:\n    open('data.txt', 'w').write('changed by run\\n')\nexcept PermissionError:\n    print('read-only snapshot')\n",
    );
    p.write(
        "show.py",
        "print('DATA', open('data.txt').read().strip())\n",
    );
    let edited = p
        .azml()
        .args(["run", "submit-script", "-e", "e", "edit.py"])
        .output()
        .unwrap();
    let edit_logs = String::from_utf8_lossy(&edited.stderr);
    assert_eq!(edited.status.code(), Some(0), "{edit_logs}");
    assert!(
        !edit_logs.contains("read-only snapshot"),
        "v1 let a script rewrite its own source files in its run folder: {edit_logs}"
    );
    let out = p
        .azml()
        .args(["run", "submit-script", "-e", "e", "show.py"])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("DATA original"), "{logs}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("data.txt")).unwrap(),
        "original\n"
    );
}

#[test]
fn only_show_errors_silences_azmls_own_lines_but_not_the_run_output() {
    let Some(py) = python(false) else { return };
    let p = Project::new(py);
    p.write("hello.py", "print('hello from the run')\n");
    let noisy = p
        .azml()
        .args(["run", "submit-script", "-e", "quiet", "hello.py"])
        .output()
        .unwrap();
    let noisy_logs = String::from_utf8_lossy(&noisy.stderr);
    assert_eq!(noisy.status.code(), Some(0), "{noisy_logs}");
    assert!(noisy_logs.contains("RunId: quiet_"), "{noisy_logs}");

    let quiet = p
        .azml()
        .args([
            "run",
            "submit-script",
            "-e",
            "quiet",
            "--only-show-errors",
            "hello.py",
        ])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&quiet.stderr);
    assert_eq!(quiet.status.code(), Some(0), "{logs}");
    assert_eq!(
        logs.trim(),
        "hello from the run",
        "only the run's output: {logs}"
    );
    assert_eq!(submit_json(&quiet)["status"], "Completed");
}

#[test]
fn mlflow_search_runs_filters_with_like_and_orders_by_a_metric() {
    let Some(py) = python(true) else { return };
    let p = Project::new(py);
    p.write(
        "pick.py",
        r#"
import mlflow
for name, acc in [("trial-1", 0.7), ("trial-2", 0.9), ("other", 0.8), ("trial-3", 0.8)]:
    with mlflow.start_run(nested=True, run_name=name):
        mlflow.log_metric("val acc", acc)
ranked = mlflow.search_runs(
    filter_string="tags.mlflow.runName LIKE 'trial-%'",
    order_by=["metrics.`val acc` DESC"],
    output_format="list",
)
print("ranked", [r.info.run_name for r in ranked])
low = mlflow.search_runs(
    filter_string="attributes.run_name ILIKE 'TRIAL-%' and metrics.`val acc` < 0.8",
    output_format="list",
)
print("low", [r.info.run_name for r in low])
try:
    mlflow.search_runs(filter_string="metrics.acc > 1 OR metrics.acc < 0")
except mlflow.exceptions.MlflowException as e:
    print("refused", "OR" in str(e))
"#,
    );
    let out = p
        .azml()
        .args(["run", "submit-script", "-e", "pick", "pick.py"])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    assert!(
        logs.contains("ranked ['trial-2', 'trial-3', 'trial-1']"),
        "{logs}"
    );
    assert!(logs.contains("low ['trial-1']"), "{logs}");
    assert!(logs.contains("refused True"), "{logs}");
}

/// MLflow 3's `log_model` creates a logged model first (`logged-models`), and
/// listing `runs:/<id>/model` searches them: both were 404 here, so every
/// `mlflow.<flavor>.log_model` failed.
#[test]
fn an_mlflow3_logged_model_is_created_stored_with_the_run_found_and_downloaded() {
    let Some(py) = python(true) else { return };
    let p = Project::new(py);
    p.write(
        "lm.py",
        r#"
import os, types
import mlflow
from mlflow import MlflowClient
from mlflow.models import Model
flavor = types.ModuleType("tinyflavor")
def save_model(path, mlflow_model=None, **kw):
    os.makedirs(path, exist_ok=True)
    open(os.path.join(path, "weights.bin"), "w").write("w")
    mlflow_model.add_flavor("tinyflavor", data="weights.bin")
    mlflow_model.save(os.path.join(path, "MLmodel"))
flavor.save_model = save_model
mlflow.log_param("lr", "0.1")
info = Model.log(artifact_path="model", flavor=flavor)
client = MlflowClient()
run_id = mlflow.active_run().info.run_id
m = client.get_logged_model(info.model_id)
print("model", m.status, m.params, m.name, m.source_run_id == run_id)
print("files", sorted(a.path for a in mlflow.artifacts.list_artifacts(artifact_uri=f"models:/{info.model_id}")))
print("listing", sorted(a.path for a in mlflow.artifacts.list_artifacts(run_id=run_id, artifact_path="model")))
print("downloaded", sorted(os.listdir(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/model"))))
found = mlflow.search_logged_models(filter_string="name = 'model' AND params.lr = '0.1' AND status = 'READY'", output_format="list")
print("search", [x.model_id == info.model_id for x in found], len(mlflow.search_logged_models(filter_string="name = 'other'", output_format="list")))
client.set_logged_model_tags(info.model_id, {"stage": "dev"})
print("tagged", client.get_logged_model(info.model_id).tags.get("stage"))
client.delete_logged_model_tag(info.model_id, "stage")
print("untagged", "stage" in client.get_logged_model(info.model_id).tags)
print("outputs", [o.model_id == info.model_id for o in client.get_run(run_id).outputs.model_outputs])
# Metrics linked to the model (MLflow 3) were kept only in the run.
mlflow.log_metric("val_acc", 0.8, step=1, model_id=info.model_id)
mlflow.log_metric("val_acc", 0.9, step=2, model_id=info.model_id)
print("model metrics", [(x.key, x.value) for x in client.get_logged_model(info.model_id).metrics])
print("by metric", len(mlflow.search_logged_models(filter_string="metrics.val_acc > 0.85", output_format="list")))
"#,
    );
    let out = p
        .azml()
        .args(["run", "submit-script", "-e", "models", "lm.py"])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    for line in [
        "model READY {'lr': '0.1'} model True",
        "files ['MLmodel', 'weights.bin']",
        "listing ['model/MLmodel', 'model/weights.bin']",
        "downloaded ['MLmodel', 'weights.bin']",
        "search [True] 0",
        "tagged dev",
        "untagged False",
        "outputs [True]",
        "model metrics [('val_acc', 0.9)]",
        "by metric 1",
    ] {
        assert!(logs.contains(line), "missing {line:?} in:\n{logs}");
    }
    assert!(
        !logs.contains("View run"),
        "the client printed a UI link:\n{logs}"
    );
    let run_id = submit_json(&out)["runId"].as_str().unwrap().to_string();
    let models = p.run_dir(&run_id).join("outputs/models");
    let model_dir = std::fs::read_dir(&models)
        .expect("models folder in the run's outputs")
        .flatten()
        .next()
        .expect("one model")
        .path();
    assert!(
        model_dir.join("artifacts/MLmodel").is_file(),
        "{model_dir:?}"
    );
}

/// What a real MLflow server refuses or cuts was stored as sent, so a script
/// that worked here failed on Azure ML; and an ended child's status could not
/// be changed (`set_terminated` on a FINISHED run was silently ignored).
#[test]
fn mlflow_limits_are_mlflows_and_an_ended_child_run_takes_a_new_status() {
    let Some(py) = python(true) else { return };
    let p = Project::new(py);
    p.write(
        "limits.py",
        r#"
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
client = MlflowClient()
run_id = mlflow.start_run().info.run_id
mlflow.log_param("long", "p" * 6001)
mlflow.set_tag("long", "t" * 9000)
for bad in ["bad$key", "k" * 300, "../escape", "a//b"]:
    try:
        mlflow.log_metric(bad, 1.0)
        print("accepted", bad[:10])
    except MlflowException as e:
        print("refused", bad[:10], e.error_code)
data = client.get_run(run_id).data
print("lengths", len(data.params["long"]), len(data.tags["long"]))
with mlflow.start_run(nested=True) as child:
    pass
client.set_terminated(child.info.run_id, "FAILED")
print("child", client.get_run(child.info.run_id).info.status)
"#,
    );
    let out = p
        .azml()
        .args(["run", "submit-script", "-e", "limits", "limits.py"])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    assert!(!logs.contains("accepted"), "{logs}");
    assert_eq!(logs.matches("INVALID_PARAMETER_VALUE").count(), 4, "{logs}");
    assert!(logs.contains("lengths 6000 8000"), "{logs}");
    assert!(logs.contains("child FAILED"), "{logs}");
}

/// `experiments/search` returned every experiment whatever the filter, and
/// experiment tags were dropped (`set_experiment_tag` was a 404).
#[test]
fn mlflow_experiments_are_searched_with_filters_order_and_paging_and_keep_their_tags() {
    let Some(py) = python(true) else { return };
    let p = Project::new(py);
    p.write(
        "exps.py",
        r#"
import time
import mlflow
from mlflow import MlflowClient
client = MlflowClient()
for name in ["zeta", "alpha", "beta"]:
    client.create_experiment(name, tags={"team": "a" if name != "beta" else "b"})
    time.sleep(0.01)
client.set_experiment_tag(client.get_experiment_by_name("beta").experiment_id, "stage", "prod")
names = lambda exps: [e.name for e in exps]
print("by name", names(mlflow.search_experiments(filter_string="name = 'alpha'")))
print("like", names(mlflow.search_experiments(filter_string="name LIKE '%eta'", order_by=["name ASC"])))
print("tag", names(mlflow.search_experiments(filter_string="tags.team = 'a'", order_by=["name DESC"])))
print("first", names(mlflow.search_experiments(max_results=1)))
print("stage", sorted(client.get_experiment_by_name("beta").tags.items()))
page = client.search_experiments(max_results=2)
rest = client.search_experiments(max_results=2, page_token=page.token)
print("pages", len(page), page.token is not None, len(rest))
# rename/delete/restore were 404 (ENDPOINT_NOT_FOUND).
from mlflow.entities import ViewType
zeta = client.get_experiment_by_name("zeta").experiment_id
client.rename_experiment(zeta, "omega")
print("renamed", client.get_experiment(zeta).name)
client.delete_experiment(zeta)
print("deleted", client.get_experiment(zeta).lifecycle_stage, "omega" in names(mlflow.search_experiments()),
      names(mlflow.search_experiments(view_type=ViewType.DELETED_ONLY)))
try:
    client.create_run(zeta)
except mlflow.exceptions.MlflowException as e:
    print("no runs in a deleted experiment", e.error_code)
client.restore_experiment(zeta)
print("restored", client.get_experiment(zeta).lifecycle_stage)
"#,
    );
    let out = p
        .azml()
        .args(["run", "submit-script", "-e", "exps", "exps.py"])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    for line in [
        "by name ['alpha']",
        "like ['beta', 'zeta']",
        "tag ['zeta', 'alpha']",
        // Newest first, as MLflow's default order.
        "first ['beta']",
        "stage [('stage', 'prod'), ('team', 'b')]",
        // exps (the run's own), zeta, alpha, beta.
        "pages 2 True 2",
        "renamed omega",
        "deleted deleted False ['omega']",
        "no runs in a deleted experiment INVALID_PARAMETER_VALUE",
        "restored active",
    ] {
        assert!(logs.contains(line), "missing {line:?} in:\n{logs}");
    }
}

/// A run nested two levels deep was filed under the top run (its
/// `mlflow.parentRunId` tag said the middle one), and a third level could
/// not be written to at all.
#[test]
fn mlflow_runs_nested_three_deep_keep_their_tree_and_stay_writable() {
    let Some(py) = python(true) else { return };
    let p = Project::new(py);
    p.write(
        "deep.py",
        r#"
import mlflow
with mlflow.start_run():  # the azml run (MLFLOW_RUN_ID)
    with mlflow.start_run(nested=True, run_name="middle") as middle:
        with mlflow.start_run(nested=True, run_name="inner") as inner:
            with mlflow.start_run(nested=True, run_name="innermost"):
                mlflow.log_metric("depth", 3)
            mlflow.log_metric("depth", 2)
        print("parent of inner is middle", mlflow.get_parent_run(inner.info.run_id).info.run_id == middle.info.run_id)
"#,
    );
    let out = p
        .azml()
        .args(["run", "submit-script", "-e", "deep", "deep.py"])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    assert!(logs.contains("parent of inner is middle True"), "{logs}");
    let top = submit_json(&out)["runId"].as_str().unwrap().to_string();
    let only_child = |parent: &str| {
        let children = p.json(&["run", "list", "--parent-run-id", parent]);
        assert_eq!(children.as_array().unwrap().len(), 1, "{children}");
        children[0].clone()
    };
    let middle = only_child(&top);
    assert_eq!(middle["displayName"], "middle");
    let inner = only_child(middle["runId"].as_str().unwrap());
    assert_eq!(inner["displayName"], "inner");
    let innermost = only_child(inner["runId"].as_str().unwrap());
    assert_eq!(innermost["displayName"], "innermost");
    let metrics = p.show(innermost["runId"].as_str().unwrap())["metrics"].clone();
    assert_eq!(metrics, json!({"depth": 3.0}));
}

/// `mlflow.delete_run` was a 404 here. A deleted run leaves MLflow's searches
/// (unless they ask for deleted runs), refuses new values like MLflow, and
/// comes back with `restore_run`; azml's own history keeps it throughout.
#[test]
fn mlflow_delete_run_hides_the_run_from_searches_until_restored() {
    let Some(py) = python(true) else { return };
    let p = Project::new(py);
    p.write(
        "prune.py",
        r#"
import mlflow
from mlflow.entities import ViewType
client = mlflow.MlflowClient()
mlflow.start_run()  # the azml run (MLFLOW_RUN_ID)
with mlflow.start_run(nested=True, run_name="keep") as keep:
    mlflow.log_metric("acc", 0.9)
with mlflow.start_run(nested=True, run_name="drop") as drop:
    mlflow.log_metric("acc", 0.1)
mlflow.delete_run(drop.info.run_id)
names = lambda view: sorted(r.info.run_name for r in mlflow.search_runs(
    filter_string="metrics.acc >= 0", run_view_type=view, output_format="list"))
print("active", names(ViewType.ACTIVE_ONLY), "deleted", names(ViewType.DELETED_ONLY), "all", names(ViewType.ALL))
print("stage", client.get_run(drop.info.run_id).info.lifecycle_stage)
try:
    client.log_metric(drop.info.run_id, "acc", 0.2)
except mlflow.exceptions.MlflowException as e:
    print("refused", e.error_code, "'active' state" in str(e))
client.restore_run(drop.info.run_id)
client.log_metric(drop.info.run_id, "acc", 0.3)
print("restored", names(ViewType.ACTIVE_ONLY), client.get_run(drop.info.run_id).info.lifecycle_stage)
"#,
    );
    let out = p
        .azml()
        .args(["run", "submit-script", "-e", "prune", "prune.py"])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    assert!(
        logs.contains("active ['keep'] deleted ['drop'] all ['drop', 'keep']"),
        "{logs}"
    );
    assert!(logs.contains("stage deleted"), "{logs}");
    assert!(
        logs.contains("refused INVALID_PARAMETER_VALUE True"),
        "{logs}"
    );
    assert!(logs.contains("restored ['drop', 'keep'] active"), "{logs}");
    let runs = p.json(&["run", "list", "-e", "prune"]);
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    let parent = runs[0]["runId"].as_str().unwrap();
    let children = p.json(&["run", "list", "--parent-run-id", parent]);
    assert_eq!(children.as_array().unwrap().len(), 2, "{children}");
}

/// A trial's script that logged its own hyperparameters failed: the sweep had
/// stored them as params first (`0.00001`), and MLflow's "params cannot
/// change" refused the script's `1e-05`. A nested run's metric also counted
/// as the trial's primary metric.
#[test]
fn a_sweep_trial_may_log_its_own_hyperparameters_and_nested_metrics_stay_nested() {
    let Some(py) = python(true) else { return };
    let p = Project::new(py);
    p.write(
        "trial.py",
        r#"
import argparse, mlflow
ap = argparse.ArgumentParser()
ap.add_argument("--batch_size", type=int)
ap.add_argument("--lr", type=float)
a = ap.parse_args()
mlflow.start_run()
mlflow.log_params({"batch_size": a.batch_size, "lr": a.lr})
mlflow.log_metric("acc", 0.5)
with mlflow.start_run(nested=True):
    mlflow.log_metric("acc", 0.99)
"#,
    );
    p.write(
        "hd.yml",
        "sampling:\n  type: grid\n  parameter_space:\n    - name: batch_size\n      expression: choice\n      values: [16]\n    - name: lr\n      expression: choice\n      values: [0.00001]\npolicy:\n  type: NoTermination\nprimary_metric_name: acc\nprimary_metric_goal: maximize\nmax_total_runs: 1\nmax_concurrent_runs: 1\n",
    );
    let out = p
        .azml()
        .args(["run", "submit-hyperdrive", "-e", "hp"])
        .args(["--hyperdrive-configuration-name", "hd.yml", "trial.py"])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    let parent: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let child = parent["properties"]["best_child_run_id"]
        .as_str()
        .expect("best child");
    let metrics = p.json(&["run", "metrics", "-r", child]);
    assert_eq!(metrics["acc"], 0.5, "{metrics}");
    assert!(
        logs.contains("(acc 0.5)"),
        "the trial is ranked by its own acc: {logs}"
    );
    let shown = p.json(&["run", "show", "-r", child]);
    assert_eq!(shown["status"], "Completed", "{shown}");
}

/// Found by an MLflow-compatibility pass: each line of the script checks
/// one call a real MLflow server answers differently from what azml did.
#[test]
fn mlflow_parentage_renames_big_batches_bad_steps_and_names_answer_like_mlflow() {
    let Some(py) = python(true) else { return };
    let p = Project::new(py);
    p.write(
        "compat.py",
        r#"
import mlflow, pandas
from mlflow.exceptions import MlflowException
c = mlflow.MlflowClient()
outer = mlflow.start_run()
with mlflow.start_run(nested=True, run_name="child-1") as kid:
    pass
kid_id = kid.info.run_id
# Parentage is a tag in MLflow; azml's own children carry it too.
found = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{outer.info.run_id}'", output_format="list")
print("children", len(found), mlflow.get_parent_run(kid_id).info.run_id == outer.info.run_id)
print("user", bool(c.get_run(kid_id).info.user_id))
c.update_run(kid_id, name="renamed")
print("renamed", c.get_run(kid_id).data.tags["mlflow.runName"])
# More than axum's 2 MiB default in one request.
mlflow.set_tags({f"t{i}": "\u65e5" * 8000 for i in range(100)})
print("big batch", len(c.get_run(outer.info.run_id).data.tags) >= 100)
# A step that is no integer was stored as step 0 with a 200.
import os, requests
for step in ("abc", 1.5, "7"):
    r = requests.post(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric",
        headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]},
        json={"run_id": outer.info.run_id, "key": "m", "value": 1.0, "timestamp": 0, "step": step})
    print("step", step, r.status_code, r.json().get("error_code"))
# An empty experiment list searched every experiment; a bad id was skipped.
for ids in ([], ["abc"]):
    r = requests.post(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/search",
        headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]},
        json={"experiment_ids": ids})
    print("ids", ids, r.status_code, len(r.json().get("runs", [])))
try:
    c.create_experiment("team/proj v2")
    print("created")
except MlflowException as e:
    print("name refused", e.error_code)
# Times a client gives were replaced by the server's clock.
dated = c.create_run(outer.info.experiment_id, start_time=1000000000000,
                     tags={"mlflow.parentRunId": outer.info.run_id})
c.set_terminated(dated.info.run_id, "FINISHED", end_time=1000000005000)
info = c.get_run(dated.info.run_id).info
print("times", info.start_time, info.end_time)
ds = mlflow.data.from_pandas(pandas.DataFrame({"a": [1]}), name="d")
mlflow.log_input(ds, context="training")
mlflow.log_input(ds, context="training")
print("inputs", len(c.get_run(outer.info.run_id).inputs.dataset_inputs))
"#,
    );
    let out = p
        .azml()
        .args(["run", "submit-script", "-e", "compat", "compat.py"])
        // As in many containers: user_id came only from $USER.
        .env_remove("USER")
        .env_remove("LOGNAME")
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    assert!(logs.contains("children 1 True"), "{logs}");
    assert!(logs.contains("renamed renamed"), "{logs}");
    assert!(logs.contains("user True"), "{logs}");
    assert!(logs.contains("big batch True"), "{logs}");
    assert!(
        logs.contains("name refused INVALID_PARAMETER_VALUE"),
        "{logs}"
    );
    assert!(logs.contains("inputs 1"), "{logs}");
    assert!(logs.contains("times 1000000000000 1000000005000"), "{logs}");
    assert!(
        logs.contains("step abc 400 INVALID_PARAMETER_VALUE"),
        "{logs}"
    );
    assert!(
        logs.contains("step 1.5 400 INVALID_PARAMETER_VALUE"),
        "{logs}"
    );
    assert!(logs.contains("step 7 200 None"), "{logs}");
    assert!(logs.contains("ids [] 200 0"), "{logs}");
    assert!(logs.contains("ids ['abc'] 400 0"), "{logs}");
}

/// `registered_model_name=` and `mlflow.register_model` failed with 404 on
/// `registered-models/create` (after the model's files were written), and
/// `models:/name/1` or `@alias` could not be loaded.
#[test]
fn mlflow_registers_model_versions_and_loads_them_by_version_alias_and_latest() {
    let Some(py) = python(true) else { return };
    let p = Project::new(py);
    p.write(
        "register.py",
        r#"
import mlflow, mlflow.pyfunc
from mlflow import MlflowClient
class M(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [len(str(model_input))]
mlflow.start_run()
info = mlflow.pyfunc.log_model(name="m", python_model=M(), registered_model_name="churn")
print("registered", info.registered_model_version)
c = MlflowClient()
v2 = mlflow.register_model(info.model_uri, "churn")
print("v2", v2.version, v2.status)
c.set_registered_model_alias("churn", "champion", "1")
for uri in ("models:/churn@champion", "models:/churn/2", "models:/churn/latest"):
    print(uri, mlflow.pyfunc.load_model(uri).predict("abc"))
print("search", [r.name for r in c.search_registered_models(filter_string="name LIKE 'ch%'")])
print("versions", sorted(v.version for v in c.search_model_versions("name='churn'")))
model = c.get_registered_model("churn")
print("model", model.aliases, [v.version for v in model.latest_versions])
c.delete_model_version("churn", "1")
try:
    c.get_model_version_by_alias("churn", "champion")
except mlflow.exceptions.MlflowException as e:
    print("alias gone", e.error_code)
"#,
    );
    let out = p
        .azml()
        .args(["run", "submit-script", "-e", "reg", "register.py"])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{logs}");
    for line in [
        "registered 1",
        "v2 2 READY",
        "models:/churn@champion [3]",
        "models:/churn/2 [3]",
        "models:/churn/latest [3]",
        "search ['churn']",
        "versions ['1', '2']",
        "model {'champion': '1'} ['2']",
        "alias gone RESOURCE_DOES_NOT_EXIST",
    ] {
        assert!(logs.contains(line), "{line}: {logs}");
    }
}
