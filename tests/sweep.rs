//! `run submit-hyperdrive` on the local workspace, through the real binary:
//! the seed's documented hdconfig with the quickstart script, a Bandit sweep
//! over scripts with known curves, and sweeps that must fail or warn.
//!
//! Uses `AZML_TEST_PYTHON` (with mlflow-skinny: the quickstart logs through
//! MLflow when it can) or `python3`; skips without Python unless
//! `AZML_TEST_REQUIRE_ALL=1`, where a missing component fails.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Output;

const QUICKSTART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart");

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AZML_TEST_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let found = std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("python3"))
        .find(|p| p.is_file());
    let require_all = std::env::var("AZML_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1");
    assert!(
        !require_all || std::env::var_os("AZML_TEST_PYTHON").is_some(),
        "AZML_TEST_PYTHON is not set but AZML_TEST_REQUIRE_ALL=1"
    );
    if found.is_none() {
        eprintln!("skipped: no python3 and no AZML_TEST_PYTHON");
    }
    found
}

/// A throwaway project folder with its own local workspace.
struct Project {
    dir: tempfile::TempDir,
    python: PathBuf,
}

impl Project {
    fn new(python: PathBuf) -> Project {
        Project {
            dir: tempfile::tempdir().expect("tempdir"),
            python,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path().join(name), text).expect("write");
    }

    fn copy_quickstart(&self, name: &str) {
        std::fs::copy(Path::new(QUICKSTART).join(name), self.path().join(name)).expect("copy");
    }

    fn azml(&self, args: &[&str]) -> Output {
        let bin = self.python.parent().expect("python dir").to_path_buf();
        let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))
        .expect("PATH");
        std::process::Command::new(assert_cmd::cargo::cargo_bin("azml"))
            .args(args)
            .current_dir(self.path())
            .env("PATH", path)
            .env_remove("AZML_LOCAL_WORKSPACE")
            .env_remove("MLFLOW_TRACKING_URI")
            .env_remove("MLFLOW_RUN_ID")
            .output()
            .expect("run azml")
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.azml(args);
        assert!(out.status.success(), "azml {args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("JSON on stdout")
    }

    fn children(&self, parent: &str) -> Vec<Value> {
        let mut runs = self
            .json(&[
                "run",
                "list",
                "--parent-run-id",
                parent,
                "--last",
                "1000000",
            ])
            .as_array()
            .cloned()
            .unwrap_or_default();
        runs.sort_by_key(|r| child_index(r["runId"].as_str().unwrap_or("")));
        runs
    }
}

fn child_index(run_id: &str) -> usize {
    run_id
        .rsplit('_')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn submit(p: &Project, extra: &[&str]) -> (Output, Value) {
    let mut args = vec!["run", "submit-hyperdrive", "-e", "sweep"];
    args.extend_from_slice(extra);
    let out = p.azml(&args);
    let run = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, run)
}

/// The hdconfig of the docs the product was specified from, verbatim.
const DOCUMENTED_HDCONFIG: &str = include_str!("fixtures/sweep/documented-hdconfig.yml");

#[test]
fn the_documented_hdconfig_runs_locally_with_the_quickstart_script() {
    let Some(py) = python() else { return };
    let p = Project::new(py);
    p.copy_quickstart("train.py");
    p.write("hdconfig.yml", DOCUMENTED_HDCONFIG);
    let (out, parent) = submit(
        &p,
        &[
            "--hyperdrive-configuration-name",
            "hdconfig.yml",
            "--seed",
            "3",
            "train.py",
            "--epochs",
            "3",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let parent_id = parent["runId"].as_str().expect("runId").to_string();
    assert!(
        parent_id.starts_with("HD_") && parent_id.len() == 39,
        "{parent_id}"
    );
    assert_eq!(parent["runType"], "hyperdrive");
    assert_eq!(parent["status"], "Completed");

    // choice(0.5, 1, 1.5) has 3 configurations: random sampling stops there
    // (never repeats) although max_total_runs is 8.
    let children = p.children(&parent_id);
    assert_eq!(children.len(), 3, "{children:?}");
    // v1 listed top-level runs only: a sweep is one entry, its children
    // come with --parent-run-id.
    let listed = p.json(&["run", "list", "--query", "[].runId"]);
    assert_eq!(listed, json!([parent_id]));
    let mut penalties = Vec::new();
    for (n, child) in children.iter().enumerate() {
        let id = child["runId"].as_str().expect("child id");
        assert_eq!(id, format!("{parent_id}_{n}"));
        assert_eq!(child["parentRunId"], parent_id.as_str());
        let shown = p.json(&["run", "show", "-r", id]);
        let penalty = shown["params"]["--penalty"]
            .as_str()
            .expect("param")
            .to_string();
        let log = std::fs::read_to_string(
            p.path()
                .join(".azureml/localws/runs")
                .join(id)
                .join("user_logs/std_log.txt"),
        )
        .expect("child log");
        assert!(
            log.contains(&format!(
                "penalty={}",
                penalty.parse::<f64>().expect("number")
            )),
            "{log}"
        );
        // Bandit (slack 0.2) may stop a weak child early, depending on which
        // children have logged by each interval: only a completed child
        // must have logged all three epochs.
        let accuracy = p.json(&["run", "metrics", "-r", id]);
        let logged = match &accuracy["Accuracy"] {
            Value::Array(values) => values.len(),
            Value::Number(_) => 1,
            other => panic!("Accuracy not logged: {other} in {accuracy}"),
        };
        match shown["status"].as_str() {
            Some("Completed") => assert_eq!(logged, 3, "{accuracy}"),
            Some("Canceled") => assert!((1..=3).contains(&logged), "{accuracy}"),
            other => panic!("child {id} ended {other:?}"),
        }
        penalties.push(penalty);
    }
    penalties.sort();
    assert_eq!(penalties, ["0.5", "1", "1.5"]);

    let shown = p.json(&["run", "show", "-r", &parent_id]);
    let props = &shown["properties"];
    assert_eq!(props["child_runs_total"], "3");
    let best = props["best_child_run_id"].as_str().expect("best child");
    assert!(best.starts_with(&parent_id));
    assert!(
        stderr(&out).contains(&format!("Best run: {best}")),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        props["primary_metric_config"],
        json!({"name": "Accuracy", "goal": "maximize"}).to_string()
    );
    assert_eq!(props["runTemplate"], "HyperDrive");
    assert_eq!(props["azureml.runsource"], "hyperdrive");
    assert_v1_parent_tags(&shown["tags"], &parent_id, &children);
}

/// The tags v1's `HyperDriveRun` read back from the parent (azureml-train-core
/// 1.57 `_get_tag_from_dict`, `get_hyperparameters`), for the documented hdconfig.
fn assert_v1_parent_tags(tags: &Value, parent_id: &str, children: &[Value]) {
    let tag_json = |key: &str| -> Value {
        let text = tags[key]
            .as_str()
            .unwrap_or_else(|| panic!("tag {key} in {tags}"));
        serde_json::from_str(text).expect("JSON tag")
    };
    assert_eq!(
        tag_json("_aml_system_generator_config"),
        json!({"name": "RANDOM", "parameter_space": {"--penalty": ["choice", [[0.5, 1, 1.5]]]}})
    );
    assert_eq!(
        tag_json("_aml_system_policy_config"),
        json!({"name": "Bandit", "properties": {"evaluation_interval": 1, "delay_evaluation": 0, "slack_factor": 0.2}})
    );
    assert_eq!(
        tag_json("_aml_system_primary_metric_config"),
        json!({"name": "Accuracy", "goal": "maximize"})
    );
    assert_eq!(tags["_aml_system_max_total_jobs"], "8");
    assert_eq!(tags["_aml_system_max_concurrent_jobs"], "2");
    assert_eq!(tags["_aml_system_max_duration_minutes"], "100");
    for child in children {
        let id = child["runId"].as_str().expect("child id");
        assert!(id.starts_with(&format!("{parent_id}_")));
        let hyperparameters = tag_json(&format!("_aml_system_{id}"));
        let penalty = &hyperparameters["--penalty"];
        assert!(
            [json!(0.5), json!(1), json!(1.5)].contains(penalty),
            "{hyperparameters}"
        );
    }
}

/// Prints a fixed curve (quality × shape) as v1 offline-log lines, slowly
/// enough that a cancellation lands before the next value.
const CURVE_SCRIPT: &str = r#"
import argparse, os, sys, time
ap = argparse.ArgumentParser()
ap.add_argument("--quality", type=float)
a = ap.parse_args()
assert os.environ["AZUREML_PARAMETER_quality"] == sys.argv[sys.argv.index("--quality") + 1]
for k, shape in enumerate([0.5, 0.8, 0.9, 1.0]):
    print("Attempted to log scalar metric acc:")
    print(round(a.quality * shape, 6), flush=True)
    time.sleep(0.4)
"#;

const BANDIT_HDCONFIG: &str = r#"
sampling:
  type: grid
  parameter_space:
  - name: quality
    expression: choice
    values: [0.9, 0.5, 0.85, 0.3]
policy:
  type: BanditPolicy
  evaluation_interval: 1
  slack_factor: 0.2
primary_metric_name: acc
primary_metric_goal: maximize
max_total_runs: 4
max_concurrent_runs: 1
"#;

/// One child at a time in grid order; by the formula (best_k / 1.2):
/// child 1 logs 0.25 < 0.45/1.2 = 0.375 at k=1 → canceled; child 2 stays
/// above (0.425, 0.68, 0.765, 0.85 vs 0.375, 0.6, 0.675, 0.75); child 3 logs
/// 0.15 < 0.375 → canceled.
#[test]
fn a_bandit_sweep_cancels_exactly_the_runs_the_formula_says() {
    let Some(py) = python() else { return };
    let p = Project::new(py);
    p.write("curve.py", CURVE_SCRIPT);
    p.write("hd.yml", BANDIT_HDCONFIG);
    let (out, parent) = submit(
        &p,
        &["--hyperdrive-configuration-name", "hd.yml", "curve.py"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let parent_id = parent["runId"].as_str().expect("runId");
    let children = p.children(parent_id);
    let statuses: Vec<&str> = children
        .iter()
        .map(|c| c["status"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(statuses, ["Completed", "Canceled", "Completed", "Canceled"]);
    // One at a time: the next child starts after the previous one's process
    // ended, and the history says so (a child's end is its exit).
    for pair in children.windows(2) {
        let (end, next_start) = (
            pair[0]["endTimeUtc"].as_str().expect("end"),
            pair[1]["startTimeUtc"].as_str().expect("start"),
        );
        assert!(end <= next_start, "{end} > {next_start}: children overlap");
    }
    let canceled = p.json(&["run", "show", "-r", &format!("{parent_id}_1")]);
    let reason = canceled["tags"]["cancel_reason"]
        .as_str()
        .expect("reason tag");
    assert!(
        reason.contains("BanditPolicy at interval 1: value 0.25 vs threshold 0.375"),
        "{reason}"
    );
    // The kill lands within the script's 0.4 s pause unless the machine is very busy.
    let acc = p.json(&["run", "metrics", "-r", &format!("{parent_id}_1")])["acc"].clone();
    assert!(acc == json!(0.25) || acc[0] == json!(0.25), "{acc}");
    assert_eq!(
        parent["properties"]["best_child_run_id"],
        format!("{parent_id}_0")
    );
    assert_eq!(parent["properties"]["score"], "0.9");
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "[{parent_id}] 4 done (2 canceled), 0 running, best acc 0.9 ({parent_id}_0)"
        )),
        "progress line: {err}"
    );
    // The children table, best first: 0.9, 0.85, then the canceled 0.25 and 0.15.
    let rows: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with(&format!("{parent_id}_")))
        .collect();
    let order: Vec<String> = rows
        .iter()
        .map(|r| r.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    let expected: Vec<String> = [0, 2, 1, 3]
        .iter()
        .map(|n| format!("{parent_id}_{n}"))
        .collect();
    assert_eq!(order, expected, "{err}");
    assert!(
        rows[0].contains("quality=0.9") && rows[0].ends_with("Completed"),
        "{err}"
    );
}

/// Sleeps `--seconds`, then logs `acc` = its seconds (so every child ranks).
const SLEEP_SCRIPT: &str = r#"
import argparse, time
ap = argparse.ArgumentParser()
ap.add_argument("--seconds", type=float)
a = ap.parse_args()
time.sleep(a.seconds)
print("Attempted to log scalar metric acc:")
print(a.seconds, flush=True)
"#;

/// Scheduling is asynchronous, not in batches: with two slots, a long child
/// 0 and a short child 1, child 2 starts when child 1 ends, long before 0 does.
#[test]
fn a_freed_slot_starts_the_next_child_without_waiting_for_the_others() {
    let Some(py) = python() else { return };
    let p = Project::new(py);
    p.write("sleep.py", SLEEP_SCRIPT);
    p.write(
        "hd.yml",
        "sampling: {type: grid, parameter_space: [{name: seconds, expression: choice, values: [6, 0.1, 0.2]}]}\n\
         primary_metric_name: acc\nprimary_metric_goal: maximize\nmax_total_runs: 3\nmax_concurrent_runs: 2\n",
    );
    let (out, parent) = submit(
        &p,
        &["--hyperdrive-configuration-name", "hd.yml", "sleep.py"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let children = p.children(parent["runId"].as_str().expect("runId"));
    assert_eq!(children.len(), 3, "{children:?}");
    let time = |c: &Value, key: &str| c[key].as_str().expect("time").to_string();
    assert!(
        time(&children[2], "startTimeUtc") < time(&children[0], "endTimeUtc"),
        "child 2 waited for child 0: {children:?}"
    );
}

/// Logs -(x - 0.3)² for its --x.
const QUADRATIC_SCRIPT: &str = r#"
import argparse
ap = argparse.ArgumentParser()
ap.add_argument("--x", type=float)
a = ap.parse_args()
print("Attempted to log scalar metric score:")
print(-(a.x - 0.3) ** 2, flush=True)
"#;

#[test]
fn a_bayesian_sweep_runs_locally_with_distinct_suggestions_and_a_best_run() {
    let Some(py) = python() else { return };
    let p = Project::new(py);
    p.write("quadratic.py", QUADRATIC_SCRIPT);
    p.write(
        "hd.yml",
        "sampling: {type: bayesian, parameter_space: [{name: x, expression: uniform, values: [0, 1]}]}\n\
         primary_metric_name: score\nprimary_metric_goal: maximize\nmax_total_runs: 6\nmax_concurrent_runs: 2\n",
    );
    let (out, parent) = submit(
        &p,
        &[
            "--hyperdrive-configuration-name",
            "hd.yml",
            "--seed",
            "5",
            "quadratic.py",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("at least 20 × the number of parameters (20); it is 6"),
        "v1's Bayesian budget warning: {err}"
    );
    let parent_id = parent["runId"].as_str().expect("runId");
    let children = p.children(parent_id);
    assert_eq!(children.len(), 6, "{children:?}");
    let mut xs = Vec::new();
    for child in &children {
        assert_eq!(child["status"], "Completed", "{child}");
        let id = child["runId"].as_str().expect("id");
        let shown = p.json(&["run", "show", "-r", id]);
        xs.push(shown["params"]["x"].as_str().expect("param x").to_string());
    }
    let mut distinct = xs.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        6,
        "concurrent suggestions must differ: {xs:?}"
    );
    let best = parent["properties"]["best_child_run_id"]
        .as_str()
        .expect("best child");
    let score: f64 = parent["properties"]["score"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("score");
    let best_x: f64 = xs[child_index(best)].parse().expect("x");
    assert!(
        (score + (best_x - 0.3).powi(2)).abs() < 1e-9,
        "{score} {best_x}"
    );
}

#[test]
fn a_metric_never_logged_finishes_with_a_warning_naming_it_and_what_was_logged() {
    let Some(py) = python() else { return };
    let p = Project::new(py);
    p.write("curve.py", CURVE_SCRIPT);
    p.write(
        "hd.yml",
        &BANDIT_HDCONFIG
            .replace("primary_metric_name: acc", "primary_metric_name: Accuracy")
            .replace("max_total_runs: 4", "max_total_runs: 1"),
    );
    let (out, parent) = submit(
        &p,
        &["--hyperdrive-configuration-name", "hd.yml", "curve.py"],
    );
    let err = stderr(&out);
    assert!(
        err.contains("no child run logged the primary metric 'Accuracy' (they logged: acc)"),
        "{err}"
    );
    assert_eq!(parent["status"], "Completed", "{err}");
}

/// The parent was created (and left Failed) before the compute target was
/// looked up; `run submit-script` already checked first.
#[test]
fn a_sweep_on_a_target_that_does_not_exist_fails_before_any_run_is_created() {
    let Some(py) = python() else { return };
    let p = Project::new(py);
    p.write("curve.py", CURVE_SCRIPT);
    p.write("hd.yml", BANDIT_HDCONFIG);
    let (out, _) = submit(
        &p,
        &[
            "--ct",
            "cpu-cluster",
            "--hyperdrive-configuration-name",
            "hd.yml",
            "curve.py",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("compute target 'cpu-cluster' does not exist"),
        "{err}"
    );
    assert!(!err.contains("RunId:"), "{err}");
    assert_eq!(
        p.json(&["run", "list", "--last", "1000000"]),
        json!([]),
        "no run may exist"
    );
}

/// A sweep's children are prepared quietly: what the runconfig asks for
/// that a local run does not do was never said for sweeps at all.
#[test]
fn a_sweep_says_once_what_its_runconfig_asks_for_that_local_runs_do_not_do() {
    let Some(py) = python() else { return };
    let p = Project::new(py.clone());
    p.write("curve.py", CURVE_SCRIPT);
    p.write(
        "hd.yml",
        &BANDIT_HDCONFIG.replace("max_total_runs: 4", "max_total_runs: 2"),
    );
    std::fs::create_dir_all(p.path().join(".azureml")).expect("mkdir");
    p.write(
        ".azureml/dist.runconfig",
        &format!(
            "framework: PyTorch\nnodeCount: 2\nenvironment:\n  docker:\n    enabled: true\n  python:\n    userManagedDependencies: false\n    interpreterPath: {}\n",
            py.display()
        ),
    );
    let (out, _) = submit(
        &p,
        &[
            "-c",
            "dist",
            "--hyperdrive-configuration-name",
            "hd.yml",
            "curve.py",
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for said in [
        "userManagedDependencies is false",
        "Docker is enabled in the runconfig",
        "framework PyTorch is not applied locally",
        "nodeCount is 2",
    ] {
        assert_eq!(err.matches(said).count(), 1, "{said:?} once in:\n{err}");
    }
}

/// When every child failed the sweep blamed the metric name ("make
/// primary_metric_name match…"), not the failures.
#[test]
fn a_sweep_whose_children_all_fail_says_so_not_that_the_metric_name_is_wrong() {
    let Some(py) = python() else { return };
    let p = Project::new(py);
    p.write("fail.py", "import sys\nsys.exit(3)\n");
    p.write(
        "hd.yml",
        &BANDIT_HDCONFIG.replace("max_total_runs: 4", "max_total_runs: 2"),
    );
    let (out, parent) = submit(
        &p,
        &["--hyperdrive-configuration-name", "hd.yml", "fail.py"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(parent["status"], "Failed", "{err}");
    assert!(err.contains("every child run failed"), "{err}");
    assert!(!err.contains("make primary_metric_name match"), "{err}");
}

#[test]
fn grid_sampling_with_uniform_fails_before_any_child_starts() {
    let Some(py) = python() else { return };
    let p = Project::new(py);
    p.write("curve.py", CURVE_SCRIPT);
    p.write(
        "hd.yml",
        &BANDIT_HDCONFIG.replace(
            "expression: choice\n    values: [0.9, 0.5, 0.85, 0.3]",
            "expression: uniform\n    values: [0, 1]",
        ),
    );
    let (out, _) = submit(
        &p,
        &["--hyperdrive-configuration-name", "hd.yml", "curve.py"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("uniform"), "{}", stderr(&out));
    let runs = p.json(&["run", "list", "--last", "1000000"]);
    assert_eq!(runs, json!([]), "no run may exist");
}

#[test]
fn an_async_sweep_returns_at_once_and_monitor_logs_follows_it_to_the_end() {
    let Some(py) = python() else { return };
    let p = Project::new(py);
    p.write("curve.py", CURVE_SCRIPT);
    p.write("hd.yml", BANDIT_HDCONFIG);
    let (out, parent) = submit(
        &p,
        &[
            "--hyperdrive-configuration-name",
            "hd.yml",
            "--async",
            "-t",
            "meta.json",
            "curve.py",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let parent_id = parent["runId"].as_str().expect("runId").to_string();
    let meta = std::fs::read_to_string(p.dir.path().join("meta.json")).expect("-t file written");
    assert!(meta.contains(&parent_id), "{meta}");
    assert!(
        ["NotStarted", "Running"].contains(&parent["status"].as_str().unwrap_or("")),
        "{parent}"
    );
    let followed = p.azml(&["run", "monitor-logs", "-r", &parent_id]);
    let log = stderr(&followed);
    assert!(
        log.contains(&format!("Best run: {parent_id}_0 (acc 0.9)")),
        "{log}"
    );
    let shown = p.json(&["run", "show", "-r", &parent_id]);
    assert_eq!(shown["status"], "Completed");
    assert_eq!(shown["properties"]["child_runs_canceled"], "2");
}

const SLOW_SCRIPT: &str = r#"
import time
for i in range(200):
    print("Attempted to log scalar metric acc:")
    print(i, flush=True)
    time.sleep(0.25)
"#;

#[test]
fn ctrl_c_cancels_the_sweep_and_its_children_and_exits_130() {
    let Some(py) = python() else { return };
    let p = Project::new(py.clone());
    p.write("slow.py", SLOW_SCRIPT);
    p.write(
        "hd.yml",
        "sampling: {type: random, parameter_space: [{name: x, expression: uniform, values: [0, 1]}]}\n\
         primary_metric_name: acc\nprimary_metric_goal: maximize\nmax_total_runs: 6\nmax_concurrent_runs: 2\n",
    );
    let bin = py.parent().expect("python dir").to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("azml"))
        .args([
            "run",
            "submit-hyperdrive",
            "-e",
            "sweep",
            "--hyperdrive-configuration-name",
            "hd.yml",
            "slow.py",
        ])
        .current_dir(p.path())
        .env("PATH", path)
        .env_remove("AZML_LOCAL_WORKSPACE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn azml");
    // Wait until both children are running (their logs have a value).
    let runs = p.path().join(".azureml/localws/runs");
    let start = std::time::Instant::now();
    loop {
        let logged = std::fs::read_dir(&runs)
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        std::fs::read_to_string(e.path().join("user_logs/std_log.txt"))
                            .is_ok_and(|t| t.contains("\n0\n"))
                    })
                    .count()
            })
            .unwrap_or(0);
        if logged >= 2 {
            break;
        }
        assert!(start.elapsed().as_secs() < 60, "children never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // SAFETY: signalling a child process we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().expect("azml ends");
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let parent: Value = serde_json::from_slice(&out.stdout).expect("parent JSON");
    assert_eq!(parent["status"], "Canceled");
    let parent_id = parent["runId"].as_str().expect("runId");
    let children = p.children(parent_id);
    assert_eq!(children.len(), 2, "no child starts after Ctrl-C");
    assert!(
        children.iter().all(|c| c["status"] == "Canceled"),
        "{children:?}"
    );
}

/// Records its pid and a grandchild's (same process group) in its run folder,
/// then logs a value every 0.25 s for `--seconds` (default: far longer than
/// any test waits).
const PID_SCRIPT: &str = r#"
import argparse, os, subprocess, time
ap = argparse.ArgumentParser()
ap.add_argument("--x", type=float)
ap.add_argument("--seconds", type=float, default=600)
a = ap.parse_args()
grandchild = subprocess.Popen(["sleep", "600"])
with open("pids.tmp", "w") as f:
    f.write(f"{os.getpid()} {grandchild.pid}\n")
os.rename("pids.tmp", "pids")
for i in range(int(a.seconds / 0.25)):
    print("Attempted to log scalar metric acc:")
    print(i, flush=True)
    time.sleep(0.25)
grandchild.kill()
"#;

fn pid_hdconfig(total: u32, minutes: u32) -> String {
    format!(
        "sampling: {{type: random, parameter_space: [{{name: x, expression: uniform, values: [0, 1]}}]}}\n\
         primary_metric_name: acc\nprimary_metric_goal: maximize\nmax_total_runs: {total}\n\
         max_concurrent_runs: 2\nmax_duration_minutes: {minutes}\n"
    )
}

/// `azml run submit-hyperdrive` in the foreground, not waited for.
fn spawn_sweep(p: &Project, extra: &[&str]) -> std::process::Child {
    let bin = p.python.parent().expect("python dir").to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let mut args = vec![
        "run",
        "submit-hyperdrive",
        "-e",
        "sweep",
        "--hyperdrive-configuration-name",
        "hd.yml",
        "pids.py",
    ];
    args.extend_from_slice(extra);
    std::process::Command::new(assert_cmd::cargo::cargo_bin("azml"))
        .args(&args)
        .current_dir(p.path())
        .env("PATH", path)
        .env_remove("AZML_LOCAL_WORKSPACE")
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("MLFLOW_RUN_ID")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn azml")
}

/// Waits until `count` children have written their pids; returns
/// (child run id, [script pid, grandchild pid]) sorted by run id.
fn started_children(p: &Project, count: usize) -> Vec<(String, Vec<i32>)> {
    let runs = p.path().join(".azureml/localws/runs");
    let start = std::time::Instant::now();
    loop {
        let mut found: Vec<(String, Vec<i32>)> = std::fs::read_dir(&runs)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        let pids = std::fs::read_to_string(e.path().join("pids")).ok()?;
                        let pids = pids.split_whitespace().filter_map(|n| n.parse().ok());
                        Some((e.file_name().to_string_lossy().into_owned(), pids.collect()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if found.len() >= count {
            found.sort_by_key(|(id, _)| child_index(id));
            return found;
        }
        assert!(start.elapsed().as_secs() < 60, "children never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Gone, or a zombie nobody reaped yet (it no longer runs).
fn process_is_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

fn assert_gone(pids: &[i32]) {
    let start = std::time::Instant::now();
    while !pids.iter().all(|&pid| process_is_gone(pid)) {
        assert!(
            start.elapsed().as_secs() < 10,
            "processes {pids:?} still run after their run was canceled"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn parent_of(child_id: &str) -> String {
    child_id
        .rsplit_once('_')
        .map(|(parent, _)| parent.to_string())
        .expect("child id")
}

#[test]
fn run_cancel_of_the_parent_from_another_shell_cancels_the_sweep_and_kills_its_children() {
    let Some(py) = python() else { return };
    let p = Project::new(py);
    p.write("pids.py", PID_SCRIPT);
    p.write("hd.yml", &pid_hdconfig(6, 100));
    let sweep = spawn_sweep(&p, &[]);
    let started = started_children(&p, 2);
    let parent_id = parent_of(&started[0].0);
    let canceled = p.azml(&["run", "cancel", "-r", &parent_id]);
    assert!(canceled.status.success(), "{}", stderr(&canceled));

    let out = sweep.wait_with_output().expect("azml ends");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let parent: Value = serde_json::from_slice(&out.stdout).expect("parent JSON on stdout");
    assert_eq!(parent["runId"], parent_id.as_str());
    assert_eq!(parent["status"], "Canceled");
    for (_, pids) in &started {
        assert_gone(pids);
    }
    let children = p.children(&parent_id);
    assert_eq!(children.len(), 2, "no child may start after the cancel");
    for child in &children {
        assert_eq!(child["status"], "Canceled", "{child}");
        assert!(
            child["tags"]["cancel_reason"].is_string(),
            "a canceled child says why: {child}"
        );
    }
}

#[test]
fn run_cancel_of_one_child_cancels_only_that_child_and_the_sweep_goes_on() {
    let Some(py) = python() else { return };
    let p = Project::new(py);
    p.write("pids.py", PID_SCRIPT);
    p.write("hd.yml", &pid_hdconfig(3, 100));
    let sweep = spawn_sweep(&p, &["--seconds", "6"]);
    let started = started_children(&p, 2);
    let (first, first_pids) = &started[0];
    let parent_id = parent_of(first);
    let canceled = p.azml(&["run", "cancel", "-r", first]);
    assert!(canceled.status.success(), "{}", stderr(&canceled));
    assert_gone(first_pids);

    let out = sweep.wait_with_output().expect("azml ends");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let parent: Value = serde_json::from_slice(&out.stdout).expect("parent JSON on stdout");
    assert_eq!(parent["status"], "Completed");
    let statuses: Vec<Value> = p
        .children(&parent_id)
        .iter()
        .map(|c| c["status"].clone())
        .collect();
    assert_eq!(statuses, ["Canceled", "Completed", "Completed"]);
}

/// v1: "Once this time is exceeded, any runs still executing are cancelled";
/// the sweep itself ends as it does at max_total_runs (Completed). Whole
/// minutes only (v1's hdconfig field is an integer), so this takes a minute.
#[test]
fn max_duration_minutes_cancels_the_running_children_and_starts_no_more() {
    let Some(py) = python() else { return };
    let p = Project::new(py);
    p.write("pids.py", PID_SCRIPT);
    p.write("hd.yml", &pid_hdconfig(6, 1));
    let sweep = spawn_sweep(&p, &[]);
    let started = started_children(&p, 2);
    let parent_id = parent_of(&started[0].0);

    let out = sweep.wait_with_output().expect("azml ends");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let parent: Value = serde_json::from_slice(&out.stdout).expect("parent JSON on stdout");
    assert_eq!(parent["status"], "Completed");
    for (_, pids) in &started {
        assert_gone(pids);
    }
    let children = p.children(&parent_id);
    assert_eq!(children.len(), 2, "no child may start after the deadline");
    for child in &children {
        assert_eq!(child["status"], "Canceled", "{child}");
        let reason = child["tags"]["cancel_reason"].as_str().unwrap_or("");
        assert!(reason.contains("max_duration_minutes (1)"), "{child}");
    }
}
