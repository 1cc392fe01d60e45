//! The command surface, driven through the real binary: help for every
//! command, every v1 flag from the reference, workspace discovery,
//! `folder attach`, `-t`, and exit codes.

use assert_cmd::Command;
use azml::cli::Cli;
use clap::{CommandFactory, Parser};
use serde_json::Value;
use std::path::{Path, PathBuf};

const REFERENCE_DIR: &str = "tests/fixtures/cli-reference";

/// The binary with a clean environment: no workspace variables leak in from the host.
fn azml() -> Command {
    let mut cmd = Command::cargo_bin("azml").expect("azml binary");
    for var in [
        "AZURE_SUBSCRIPTION_ID",
        "AZML_RESOURCE_GROUP",
        "AZML_WORKSPACE_NAME",
        "AZML_LOCAL_WORKSPACE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("COLUMNS", "100");
    cmd
}

/// Every leaf command as its path of names, e.g. `["run", "submit-script"]`.
fn leaf_commands() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands() {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_string());
            if sub.has_subcommands() {
                walk(sub, &path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), &[], &mut out);
    out
}

fn find_command<'a>(root: &'a clap::Command, path: &[&str]) -> Option<&'a clap::Command> {
    path.iter()
        .try_fold(root, |cmd, name| cmd.find_subcommand(name))
}

/// Help text with the "Global Arguments:" section elided, so adding a global
/// flag changes one snapshot (the root's), not every command's.
fn without_globals(help: &str) -> String {
    let Some((before, rest)) = help.split_once("Global Arguments:\n") else {
        return help.to_string();
    };
    let after = rest.find("\nExamples:").map(|i| &rest[i..]).unwrap_or("\n");
    format!("{before}Global Arguments: (see `azml --help`)\n{after}")
}

#[test]
fn every_command_help_renders_and_has_an_example() {
    let commands = leaf_commands();
    assert!(commands.len() > 40, "only {} commands", commands.len());
    for path in commands {
        let output = azml().args(&path).arg("--help").output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{path:?} --help failed");
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(help.contains("Examples:\n  "), "{path:?} has no example");
        insta::assert_snapshot!(format!("help__{}", path.join("_")), without_globals(&help));
    }
}

#[test]
fn group_help_renders() {
    for group in [
        vec![],
        vec!["folder"],
        vec!["experiment"],
        vec!["workspace"],
        vec!["computetarget"],
        vec!["computetarget", "create"],
        vec!["computetarget", "attach"],
        vec!["run"],
    ] {
        let output = azml().args(&group).arg("--help").output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{group:?}");
        let name = if group.is_empty() {
            "root".to_string()
        } else {
            group.join("_")
        };
        insta::assert_snapshot!(
            format!("group_help__{name}"),
            String::from_utf8(output.stdout).unwrap()
        );
    }
}

/// v1 commands azml deliberately does not offer (outside the product's scope).
/// v1-required flags azml makes optional at parse level because the local
/// workspace has a sensible default (the Azure backend still insists).
const OPTIONAL_IN_AZML: &[(&str, &str)] = &[("az ml computetarget attach remote", "--username -u")];

const NOT_OFFERED: &[&str] = &[
    "workspace create",
    "workspace delete",
    "workspace diagnose",
    "workspace list-keys",
    "workspace share",
    "workspace sync-keys",
    "workspace update",
    "workspace update-dependencies",
    "run submit-pipeline",
    "run monitor-tensorboard",
];

/// One command of the v1 reference and its parameters.
struct RefCommand {
    name: String,
    params: Vec<Value>,
}

fn reference_commands() -> Vec<RefCommand> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(REFERENCE_DIR)
        .expect("reference copied into tests/fixtures/cli-reference")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let doc: Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let direct = doc["directCommands"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for c in direct {
            let params = [
                c["requiredParameters"].clone(),
                c["optionalParameters"].clone(),
            ]
            .into_iter()
            .filter_map(|v| v.as_array().cloned())
            .flatten()
            .collect();
            out.push(RefCommand {
                name: c["name"].as_str().unwrap().into(),
                params,
            });
        }
        // The 2019 reference lists commands as `items` with `parameters`.
        for item in doc["items"].as_array().cloned().unwrap_or_default() {
            if let Some(params) = item["parameters"].as_array() {
                out.push(RefCommand {
                    name: item["name"].as_str().unwrap().into(),
                    params: params.clone(),
                });
            }
        }
    }
    out
}

/// The clap arg that answers to `--long`, if any (aliases included).
fn arg_by_long<'a>(cmd: &'a clap::Command, long: &str) -> Option<&'a clap::Arg> {
    cmd.get_arguments().find(|a| {
        a.get_long() == Some(long)
            || a.get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&long))
    })
}

#[test]
fn every_v1_flag_in_the_reference_exists_with_its_short_and_default() {
    let mut root = Cli::command();
    root.build();
    let commands = reference_commands();
    assert!(
        commands.len() > 40,
        "reference parsed only {} commands",
        commands.len()
    );
    let mut checked = 0;
    for rc in &commands {
        let words: Vec<&str> = rc.name.trim_start_matches("az ml ").split(' ').collect();
        if NOT_OFFERED.contains(&words.join(" ").as_str()) {
            continue;
        }
        let cmd =
            find_command(&root, &words).unwrap_or_else(|| panic!("missing command {}", rc.name));
        for param in &rc.params {
            check_param(cmd, &rc.name, param);
            checked += 1;
        }
    }
    assert!(checked > 300, "only {checked} flags checked");
}

fn check_param(cmd: &clap::Command, command: &str, param: &Value) {
    let name = param["name"].as_str().unwrap();
    if name.starts_with('<') {
        // `<USER_SCRIPT_AND_ARGUMENTS>`: the trailing positional.
        assert!(
            cmd.get_positionals().any(|a| a.is_trailing_var_arg_set()),
            "{command}: no trailing script"
        );
        return;
    }
    let longs: Vec<&str> = name
        .split(' ')
        .filter_map(|t| t.strip_prefix("--"))
        .collect();
    let short = name
        .split(' ')
        .find(|t| t.len() == 2 && t.starts_with('-'))
        .and_then(|t| t.chars().nth(1));
    let arg = match longs.first() {
        Some(long) => arg_by_long(cmd, long).unwrap_or_else(|| panic!("{command}: no --{long}")),
        None => cmd
            .get_arguments()
            .find(|a| a.get_short() == short)
            .unwrap_or_else(|| panic!("{command}: no {name}")),
    };
    for long in &longs {
        assert!(
            arg_by_long(cmd, long).is_some_and(|a| a.get_id() == arg.get_id()),
            "{command}: --{long}"
        );
    }
    assert_eq!(arg.get_short(), short, "{command}: short of {name}");
    if let Some(default) = param["defaultValue"].as_str()
        && !matches!(default, "True" | "False" | "[]")
    {
        let ours: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into())
            .collect();
        assert_eq!(ours, [default], "{command}: default of {name}");
    }
    let required = param["isRequired"].as_bool().unwrap_or(false)
        && param["defaultValue"].is_null()
        && !OPTIONAL_IN_AZML.contains(&(command, name));
    assert_eq!(
        arg.is_required_set(),
        required,
        "{command}: required-ness of {name}"
    );
}

#[test]
fn az_global_flags_exist_everywhere() {
    for path in leaf_commands() {
        let mut args: Vec<String> = path.clone();
        args.extend(
            [
                "--help",
                "-o",
                "tsv",
                "--query",
                "x",
                "--debug",
                "--verbose",
                "--only-show-errors",
            ]
            .map(String::from),
        );
        let output = azml().args(&args).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{path:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    azml()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicates::str::contains("azml"));
}

#[test]
fn usage_errors_exit_2() {
    azml().args(["run", "show"]).assert().code(2);
    azml()
        .args(["run", "list", "--status", "Bogus"])
        .assert()
        .code(2);
    azml()
        .args(["computetarget", "create", "amlcompute", "-n", "x"])
        .assert()
        .code(2);
    azml().args(["nonsense"]).assert().code(2);
    azml()
        .args(["run", "update", "-r", "x", "--add-tag", "=v"])
        .assert()
        .code(2);
    // Port 0 was accepted by the parser and refused later with exit 1, 70000 with 2.
    for port in ["0", "70000"] {
        azml()
            .args([
                "computetarget",
                "attach",
                "remote",
                "-n",
                "box",
                "-a",
                "host",
            ])
            .args(["--ssh-port", port])
            .assert()
            .code(2);
    }
}

/// az's argparse takes `-o JSON`, a repeated flag's last value and any
/// unambiguous prefix of a long flag; azml refused all three (exit 2).
#[test]
fn flags_parse_as_leniently_as_az() {
    let dir = tempdir();
    let run = |args: &[&str]| run_in(dir.path(), args);
    let upper = run(&["computetarget", "list", "-o", "TSV", "--query", "[].name"]);
    assert_eq!(String::from_utf8_lossy(&upper.stdout), "local\n");
    let twice = run(&[
        "computetarget",
        "list",
        "-o",
        "json",
        "-o",
        "tsv",
        "--query",
        "[].name",
    ]);
    assert_eq!(String::from_utf8_lossy(&twice.stdout), "local\n");
    let prefix = run(&["run", "list", "--exp", "x", "--las", "1"]);
    assert_eq!(
        prefix.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&prefix.stderr)
    );
    // An ambiguous prefix still is a usage error.
    assert_eq!(
        run(&["computetarget", "list", "--s", "x"]).status.code(),
        Some(2)
    );
}

/// knack applies a table transformer only without --query: `-o table
/// --query` on computetarget list ran the query on the table rows and
/// printed nothing. Without a query the columns keep the transformer's order.
#[test]
fn computetarget_list_table_query_sees_the_resources() {
    let dir = tempdir();
    let out = azml()
        .current_dir(dir.path())
        .args(["computetarget", "list", "-o", "table"])
        .args(["--query", "[?properties.computeType=='Local'].name"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Result\n--------\nlocal\n"
    );
    let plain = azml()
        .current_dir(dir.path())
        .args(["computetarget", "list", "-o", "table"])
        .output()
        .unwrap();
    let header = String::from_utf8_lossy(&plain.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(columns, ["Name", "ComputeType", "State"], "{header}");
}

/// `--debug` wrote ANSI colour escapes into CI logs (stderr not a terminal).
#[test]
fn debug_output_has_no_colour_escapes_off_a_terminal() {
    let dir = tempdir();
    let out = azml()
        .current_dir(dir.path())
        .args(["run", "list", "--debug", "-o", "none"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEBUG"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}

/// v1 created a missing `--path` ("Creating non-existent path"); azml
/// refused it as "not a directory".
#[test]
fn folder_attach_creates_a_path_that_does_not_exist_yet() {
    let dir = tempdir();
    let target = dir.path().join("new/project");
    azml()
        .current_dir(dir.path())
        .args(["folder", "attach", "-e", "exp", "-o", "none", "--path"])
        .arg(&target)
        .assert()
        .success();
    assert!(target.join(".azureml/config.json").is_file());
    std::fs::write(dir.path().join("file"), "x").unwrap();
    azml()
        .current_dir(dir.path())
        .args(["folder", "attach", "-e", "exp", "--path", "file"])
        .assert()
        .code(2);
}

/// `-d` with a missing file exited 2 while `-c`, the script and the hdconfig
/// exit 1: a file that is not there is an error, not a syntax mistake.
#[test]
fn submit_with_a_missing_conda_file_exits_1_like_the_other_missing_files() {
    let dir = tempdir();
    let output = azml()
        .current_dir(dir.path())
        .args([
            "run",
            "submit-script",
            "-e",
            "exp",
            "-d",
            "nosuch.yml",
            "train.py",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nosuch.yml not found"), "{stderr}");
}

/// azml with `args` in `dir`, its output captured.
fn run_in(dir: &Path, args: &[&str]) -> std::process::Output {
    azml()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("azml runs")
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn stdout_json(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

const AZURE_FLAGS: [&str; 6] = ["-w", "my-ws", "-g", "my-rg", "--subscription-id", "sub-1"];

#[test]
fn azure_only_commands_on_local_workspace_say_azure_is_needed() {
    let dir = tempdir();
    let cases: &[&[&str]] = &[
        &[
            "computetarget",
            "create",
            "amlcompute",
            "-n",
            "c",
            "-s",
            "STANDARD_D2_V2",
            "--max-nodes",
            "2",
        ],
        &[
            "computetarget",
            "create",
            "computeinstance",
            "-n",
            "c",
            "-s",
            "STANDARD_D2_V2",
        ],
        &["computetarget", "create", "aks", "-n", "c"],
        &["computetarget", "create", "datafactory", "-n", "c"],
        &["computetarget", "attach", "aks", "-n", "c", "-i", "/x"],
        &[
            "computetarget",
            "attach",
            "databricks",
            "-n",
            "c",
            "-i",
            "/x",
            "-a",
            "tok",
        ],
        &["computetarget", "computeinstance", "stop", "-n", "c"],
        &["computetarget", "start", "-n", "c"],
        &["computetarget", "delete", "-n", "c"],
        &[
            "computetarget",
            "update",
            "amlcompute",
            "-n",
            "c",
            "--max-nodes",
            "3",
        ],
        &["computetarget", "list-nodes", "-n", "c"],
        &["computetarget", "get-credentials", "-n", "c"],
    ];
    for case in cases {
        let output = azml()
            .args(*case)
            .arg("--path")
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{case:?}: {stderr}");
        assert!(
            stderr.contains("needs an Azure workspace"),
            "{case:?}: {stderr}"
        );
        assert!(stderr.contains("hint:"), "{case:?}: {stderr}");
    }
}

#[test]
fn azure_commands_the_api_lacks_say_so_and_exit_1() {
    let dir = tempdir();
    let output = azml()
        .args([
            "computetarget",
            "update",
            "aks",
            "-n",
            "c",
            "--ssl-renew",
            "--path",
        ])
        .arg(dir.path())
        .args(AZURE_FLAGS)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not available")
            || stderr.contains("not supported")
            || stderr.contains("cannot update AKS"),
        "{stderr}"
    );
}

#[test]
fn secrets_given_as_flags_are_not_echoed_in_errors() {
    let dir = tempdir();
    let output = azml()
        .args([
            "computetarget",
            "attach",
            "databricks",
            "-n",
            "c",
            "-i",
            "/x",
            "-a",
            "s3cr3t-token",
            "--path",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&output.stderr).contains("s3cr3t-token"));
    assert!(!String::from_utf8_lossy(&output.stdout).contains("s3cr3t-token"));
}

// ---- folder attach ----------------------------------------------------------

const V1_DIR: &str = "tests/fixtures/generated-azureml-core-1.57.0";

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

#[test]
fn folder_attach_to_azure_writes_v1_files_byte_for_byte() {
    let dir = tempdir();
    let project = dir.path().join("mnist");
    std::fs::create_dir(&project).unwrap();
    let output = azml()
        .args(["folder", "attach", "--path"])
        .arg(&project)
        .args(AZURE_FLAGS)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in [
        ".azureml/local",
        ".azureml/docker",
        ".azureml/conda_dependencies.yml",
        ".amlignore",
    ] {
        assert_eq!(
            read(project.join(file)),
            read(Path::new(V1_DIR).join(file)),
            "{file}"
        );
    }
    assert_eq!(
        read(project.join(".azureml/config.json")),
        "{\"Id\": \"mnist\", \"Scope\": \"/subscriptions/sub-1/resourceGroups/my-rg/providers/Microsoft.MachineLearningServices/workspaces/my-ws/projects/mnist\"}"
    );
    let summary = stdout_json(&output);
    assert_eq!(summary["Experiment name"], "mnist");
    assert_eq!(summary["Subscription id"], "sub-1");
    assert_eq!(summary["Resource group"], "my-rg");
    assert_eq!(summary["Workspace name"], "my-ws");
    assert_eq!(
        summary["Project path"],
        project.canonicalize().unwrap().display().to_string()
    );
}

#[test]
fn folder_attach_locally_uses_a_python_that_exists() {
    let dir = tempdir();
    let output = azml()
        .args(["folder", "attach", "-e", "exp1", "--path"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let local = read(dir.path().join(".azureml/local"));
    let v1 = read(Path::new(V1_DIR).join(".azureml/local"));
    let differing: Vec<(&str, &str)> = local
        .lines()
        .zip(v1.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(differing.len(), 2, "{differing:?}");
    assert_eq!(differing[0].0, "    userManagedDependencies: true");
    let interpreter = differing[1]
        .0
        .trim()
        .strip_prefix("interpreterPath: ")
        .unwrap();
    assert!(
        Path::new(interpreter).is_absolute() && Path::new(interpreter).is_file(),
        "{interpreter}"
    );
    assert_eq!(
        read(dir.path().join(".azureml/docker")),
        read(Path::new(V1_DIR).join(".azureml/docker"))
    );
    let config: Value =
        serde_json::from_str(&read(dir.path().join(".azureml/config.json"))).unwrap();
    assert_eq!(
        config,
        serde_json::json!({"local_workspace": true, "experiment_name": "exp1"})
    );
    let summary = stdout_json(&output);
    assert_eq!(summary["Workspace name"], "local");
    assert_eq!(summary["Experiment name"], "exp1");
    // The runconfig loads cleanly: no warning or error names it.
    let submit = azml()
        .args(["run", "submit-script", "-c", "local", "--async", "--path"])
        .arg(dir.path())
        .arg("train.py")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&submit.stderr);
    assert!(!stderr.contains(".azureml/local"), "{stderr}");
}

#[test]
fn folder_attach_keeps_the_users_files() {
    let dir = tempdir();
    std::fs::write(dir.path().join(".amlignore"), "data/\n").unwrap();
    std::fs::create_dir(dir.path().join(".azureml")).unwrap();
    std::fs::write(dir.path().join(".azureml/local"), "mine: true\n").unwrap();
    std::fs::write(
        dir.path().join(".azureml/config.json"),
        "{\"local_workspace\": true, \"experiment_name\": \"old\"}",
    )
    .unwrap();
    azml()
        .args(["folder", "attach", "-e", "new", "--path"])
        .arg(dir.path())
        .assert()
        .success();
    assert_eq!(read(dir.path().join(".amlignore")), "data/\n");
    assert_eq!(read(dir.path().join(".azureml/local")), "mine: true\n");
    assert!(read(dir.path().join(".azureml/config.json")).contains("\"new\""));
    assert!(read(dir.path().join(".azureml/config.json.bak")).contains("\"old\""));

    // A second and third re-attach keep every earlier config (the first one
    // overwrote config.json.bak); re-attaching the same name adds nothing.
    let attach = |experiment: &str| {
        azml()
            .args(["folder", "attach", "-e", experiment, "--path"])
            .arg(dir.path())
            .assert()
            .success();
    };
    attach("newer");
    attach("newest");
    attach("newest");
    let azureml = dir.path().join(".azureml");
    assert!(read(azureml.join("config.json.bak")).contains("\"old\""));
    assert!(read(azureml.join("config.json.bak.1")).contains("\"new\""));
    assert!(read(azureml.join("config.json.bak.2")).contains("\"newer\""));
    assert!(!azureml.join("config.json.bak.3").exists());
    assert!(read(azureml.join("config.json")).contains("\"newest\""));
}

#[test]
fn folder_attach_rejects_a_bad_default_experiment_name() {
    let dir = tempdir();
    let project = dir.path().join("my project");
    std::fs::create_dir(&project).unwrap();
    let output = azml()
        .args(["folder", "attach", "--path"])
        .arg(&project)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("-e NAME"));
    assert!(!project.join(".azureml").exists());
}

#[test]
fn metadata_file_gets_the_result_and_is_never_overwritten() {
    let dir = tempdir();
    let meta = dir.path().join("meta.json");
    let project = dir.path().join("p1");
    std::fs::create_dir(&project).unwrap();
    let output = azml()
        .args(["folder", "attach", "--path"])
        .arg(&project)
        .arg("-t")
        .arg(&meta)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let written: Value = serde_json::from_str(&read(&meta)).unwrap();
    assert_eq!(written, stdout_json(&output));
    let again = azml()
        .args(["folder", "attach", "--path"])
        .arg(&project)
        .arg("-t")
        .arg(&meta)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(
        serde_json::from_str::<Value>(&read(&meta)).unwrap(),
        written
    );
}

// ---- discovery through the binary -------------------------------------------

#[test]
fn malformed_config_is_reported_with_file_line_column() {
    let dir = tempdir();
    std::fs::create_dir(dir.path().join(".azureml")).unwrap();
    std::fs::write(
        dir.path().join(".azureml/config.json"),
        "{\n  \"Scope\": ,\n}",
    )
    .unwrap();
    let output = azml()
        .args(["run", "list", "--path"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(".azureml/config.json:2:12"), "{stderr}");
}

#[test]
fn partly_specified_workspace_and_bad_names_exit_2() {
    let dir = tempdir();
    let output = azml()
        .args(["experiment", "list", "-w", "my-ws", "--path"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing subscription id"));
    let output = azml()
        .args(["run", "list", "-e", "no spaces", "--path"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid experiment name"));
}

#[test]
fn submit_without_experiment_is_a_usage_error_before_any_backend_work() {
    let dir = tempdir();
    let output = azml()
        .args(["run", "submit-script", "--path"])
        .arg(dir.path())
        .arg("train.py")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("-e NAME"));
}

/// A value clap accepts for `arg`: its first choice, else a number (every
/// value-taking flag accepts digits: names, paths, sizes, counts).
fn sample_value(arg: &clap::Arg) -> String {
    arg.get_possible_values()
        .first()
        .map(|v| v.get_name().to_string())
        .unwrap_or_else(|| "7".to_string())
}

/// Every flag of every command, given together, parses (no clashes, no bad value parsers).
#[test]
fn all_flags_of_each_command_parse_together() {
    let mut root = Cli::command();
    root.build();
    for path in leaf_commands() {
        let words: Vec<&str> = path.iter().map(String::as_str).collect();
        let cmd = find_command(&root, &words).unwrap();
        let mut argv: Vec<String> = vec!["azml".into()];
        argv.extend(path.iter().cloned());
        let mut trailing = false;
        for arg in cmd.get_arguments() {
            if arg.is_global_set() || matches!(arg.get_id().as_str(), "help" | "version") {
                continue;
            }
            if arg.is_positional() {
                trailing = true;
                continue;
            }
            let flag = match arg.get_long() {
                Some(long) => format!("--{long}"),
                None => format!("-{}", arg.get_short().unwrap()),
            };
            argv.push(flag);
            if arg.get_action().takes_values() {
                argv.push(sample_value(arg));
            }
        }
        if trailing {
            argv.extend(["train.py", "--lr", "0.1"].map(String::from));
        }
        if let Err(e) = Cli::try_parse_from(&argv) {
            panic!("{argv:?}: {e}");
        }
    }
}

// ---- submission: v1 files are checked before any backend work ---------------

#[test]
fn submit_with_missing_runconfig_says_where_it_looked() {
    let dir = tempdir();
    let output = azml()
        .args([
            "run",
            "submit-script",
            "-e",
            "exp",
            "-c",
            "nosuch",
            "--path",
        ])
        .arg(dir.path())
        .arg("train.py")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("'nosuch' not found"), "{stderr}");
}

#[test]
fn runconfig_warnings_are_printed_before_submission() {
    let dir = tempdir();
    azml()
        .args(["folder", "attach", "-e", "exp", "--path"])
        .arg(dir.path())
        .assert()
        .success();
    let local = dir.path().join(".azureml/local");
    let text = read(&local).replace("framework: Python\n", "framework: Python\nframwork: typo\n");
    std::fs::write(&local, text).unwrap();
    let output = azml()
        .args(["run", "submit-script", "-c", "local", "--async", "--path"])
        .arg(dir.path())
        .arg("train.py")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning:") && stderr.contains("framwork"),
        "{stderr}"
    );
}

#[test]
fn submit_hyperdrive_with_missing_hdconfig_fails_cleanly() {
    let dir = tempdir();
    azml()
        .args(["folder", "attach", "-e", "exp", "--path"])
        .arg(dir.path())
        .assert()
        .success();
    let output = azml()
        .args([
            "run",
            "submit-hyperdrive",
            "--hyperdrive-configuration-name",
            "nosuch.yml",
            "--path",
        ])
        .arg(dir.path())
        .arg("train.py")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("nosuch.yml"));
}

/// Every file a folder holds, relative, sorted (to see what a command wrote).
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path.strip_prefix(root).expect("under root").to_path_buf());
        }
    }
    out.sort();
    out
}

/// Looking created `.azureml/localws/azml.db` (and its WAL files) in any
/// folder a read-only command ran in, a git checkout's included.
#[test]
fn read_only_commands_in_a_folder_that_never_ran_anything_create_no_files() {
    let dir = tempdir();
    let run = |args: &[&str]| run_in(dir.path(), args);
    for (args, expected) in [
        (&["run", "list"][..], "[]"),
        (
            &["run", "list", "-e", "exp", "--status", "Completed"][..],
            "[]",
        ),
        // Beyond SQLite's signed LIMIT: was "local workspace database: datatype mismatch".
        (&["run", "list", "--last", "18446744073709551615"][..], "[]"),
        (&["experiment", "list"][..], "[]"),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert_eq!(
            stdout_json(&out),
            serde_json::from_str::<Value>(expected).unwrap()
        );
    }
    let targets = stdout_json(&run(&["computetarget", "list"]));
    assert_eq!(targets[0]["name"], "local", "{targets}");
    assert_eq!(run(&["workspace", "show"]).status.code(), Some(0));
    for args in [
        &["run", "show", "-r", "nope"][..],
        &["run", "metrics", "-r", "nope"][..],
        &["run", "cancel", "-r", "nope"][..],
        &["run", "download-logs", "-r", "nope", "-d", "logs"][..],
        &["computetarget", "show", "-n", "gpu-box"][..],
        &["computetarget", "detach", "-n", "gpu-box"][..],
    ] {
        assert_eq!(run(args).status.code(), Some(3), "{args:?}");
    }
    assert_eq!(files_under(dir.path()), Vec::<PathBuf>::new());

    // The first command that writes creates the workspace as before.
    assert_eq!(
        run(&["experiment", "create", "-e", "exp"]).status.code(),
        Some(0)
    );
    assert!(dir.path().join(".azureml/localws/azml.db").is_file());
    let listed = stdout_json(&run(&["experiment", "list"]));
    assert_eq!(listed[0]["name"], "exp", "{listed}");
}
