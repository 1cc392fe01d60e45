//! The v1 file models against real files: every shared v1 example parses
//! with the values v1 gave it, and every malformed input fails with a
//! positioned, actionable message instead of a panic.

use azml::error::ExitCoded;
use azml::model::hdconfig::{self, HyperDriveConfig};
use azml::model::runconfig::{self, RunConfig};
use azml::model::{ModelError, Warning};
use azml::sweep::{Expression, Goal, PolicySpec, SamplingKind};
use std::path::{Path, PathBuf};

const EXAMPLES: &str = "tests/fixtures/v1-examples";
const MALFORMED: &str = "tests/fixtures/malformed";

fn example(name: &str) -> PathBuf {
    Path::new(EXAMPLES).join(name)
}

fn load_rc(path: &Path) -> (RunConfig, Vec<Warning>) {
    let mut warnings = Vec::new();
    let rc = runconfig::load(path, &mut warnings)
        .unwrap_or_else(|e| panic!("{} should parse: {e}", path.display()));
    (rc, warnings)
}

fn load_hd(path: &Path) -> (HyperDriveConfig, Vec<Warning>) {
    let mut warnings = Vec::new();
    let hd = hdconfig::load(path, &mut warnings)
        .unwrap_or_else(|e| panic!("{} should parse: {e}", path.display()));
    (hd, warnings)
}

#[test]
fn every_v1_example_runconfig_parses_without_warnings() {
    let files = [
        "csiebler-hyperdrive.runconfig",
        "csiebler-train-aml.runconfig",
        "mlops-cli-train-deploy-local.runconfig",
        "mlops-cli-train-deploy-mnist.runconfig",
        "mlops-imagenet-docker.runconfig",
        "generated-azureml-core-1.57.0/.azureml/local",
        "generated-azureml-core-1.57.0/.azureml/docker",
    ];
    for file in files {
        let (rc, warnings) = load_rc(&example(file));
        assert!(warnings.is_empty(), "{file}: {warnings:?}");
        assert_eq!(rc.source_file.as_deref(), Some(example(file).as_path()));
    }
}

#[test]
fn every_v1_example_hdconfig_parses_without_warnings() {
    for file in [
        "azure-docs-hdconfig.yml",
        "csiebler-hyperdrive_config.hdconfig.yml",
    ] {
        let (hd, warnings) = load_hd(&example(file));
        assert!(warnings.is_empty(), "{file}: {warnings:?}");
        assert_eq!(hd.sampling, SamplingKind::Random);
        assert_eq!(hd.primary_metric_goal, Goal::Maximize);
    }
}

#[test]
fn generated_local_runconfig_has_the_v1_values() {
    let (rc, _) = load_rc(&example("generated-azureml-core-1.57.0/.azureml/local"));
    assert_eq!(rc.script, None);
    assert!(rc.arguments.is_empty());
    assert_eq!(rc.command, None, "`command: ''` means no command");
    assert_eq!(rc.target, "local");
    assert_eq!(rc.framework, "Python");
    assert_eq!(rc.communicator, "None");
    assert_eq!(rc.node_count, 1);
    assert_eq!(rc.max_run_duration_seconds, None);
    let env = &rc.environment;
    assert_eq!(env.name.as_deref(), Some("default-environment"));
    assert_eq!(
        env.environment_variables["EXAMPLE_ENV_VAR"],
        "EXAMPLE_VALUE"
    );
    assert_eq!(env.python.interpreter_path, "python");
    assert!(!env.python.user_managed_dependencies);
    assert_eq!(
        env.python.conda_dependencies_file.as_deref(),
        Some(".azureml/conda_dependencies.yml")
    );
    assert!(!env.docker.enabled);
    assert_eq!(
        env.docker.base_image.as_deref(),
        Some(runconfig::DEFAULT_BASE_IMAGE)
    );
    assert_eq!(env.docker.shm_size.as_deref(), Some("2g"));
    let platform = env.docker.platform.as_ref().expect("platform");
    assert_eq!(
        (platform.os.as_str(), platform.architecture.as_str()),
        ("Linux", "amd64")
    );
    assert!(env.spark.precache_packages);
    assert_eq!(rc.history.directories_to_watch, vec!["logs"]);
    assert_eq!(rc.spark.configuration["spark.yarn.maxAppAttempts"], "1");
    assert_eq!(rc.pytorch.communication_backend, "nccl");
    assert_eq!(rc.mpi.process_count_per_node, 1);
    assert_eq!(rc.tensorflow.parameter_server_count, 1);
    assert_eq!(rc.hdi.yarn_deploy_mode, "cluster");
    assert!(!rc.credential_passthrough);
    assert!(rc.data.is_empty() && rc.data_references.is_empty() && rc.output_data.is_empty());
}

#[test]
fn generated_docker_runconfig_differs_from_local_only_in_docker_enabled() {
    let (local, _) = load_rc(&example("generated-azureml-core-1.57.0/.azureml/local"));
    let (mut docker, _) = load_rc(&example("generated-azureml-core-1.57.0/.azureml/docker"));
    assert!(docker.environment.docker.enabled);
    docker.environment.docker.enabled = false;
    docker.source_file = local.source_file.clone();
    assert_eq!(docker, local);
}

#[test]
fn real_world_runconfigs_keep_their_specific_values() {
    let (rc, _) = load_rc(&example("csiebler-hyperdrive.runconfig"));
    assert_eq!(rc.script.as_deref(), Some("train.py"));
    assert_eq!(rc.arguments, vec!["--data-path", "/data"]);
    assert_eq!(rc.target, "cpu-cluster");
    assert!(rc.environment.docker.enabled);
    let data = &rc.data["training_dataset"];
    assert_eq!(data.mechanism, "download");
    assert_eq!(data.path_on_compute.as_deref(), Some("/data"));
    let dataset = data.data_location.dataset.as_ref().expect("dataset");
    assert_eq!(
        dataset.name.as_deref(),
        Some("german-credit-train-tutorial")
    );
    assert_eq!(dataset.version.as_deref(), Some("1"));

    let (rc, _) = load_rc(&example("mlops-cli-train-deploy-mnist.runconfig"));
    assert_eq!(rc.framework, "Python", "lower-case `python` is accepted");
    assert_eq!(rc.node_count, 4);
    assert_eq!(
        rc.arguments,
        vec!["--data-folder", "DatasetConsumptionConfig:mnist"]
    );
    let mnist = &rc.data["mnist"];
    assert_eq!(mnist.mechanism, "mount");
    assert_eq!(
        mnist
            .data_location
            .dataset
            .as_ref()
            .and_then(|d| d.id.as_deref()),
        Some("ed4b4117-8eec-4a5f-afb6-481bd5ef0017")
    );

    let (rc, _) = load_rc(&example("mlops-imagenet-docker.runconfig"));
    assert_eq!(rc.framework, "PySpark");
    assert_eq!(rc.legacy["autoPrepareEnvironment"], serde_json::json!(true));
    assert_eq!(rc.environment.docker.shm_size.as_deref(), Some("1g"));
    let package = &rc.environment.spark.packages[0];
    assert_eq!(package.version.as_deref(), Some("0.12"));
    assert_eq!(rc.amlcompute.cluster_max_node_count, Some(1));
}

#[test]
fn docs_hdconfig_template_has_the_documented_values() {
    let (hd, _) = load_hd(&example("azure-docs-hdconfig.yml"));
    assert_eq!(hd.parameter_space.len(), 1);
    assert_eq!(hd.parameter_space[0].name, "--penalty");
    assert_eq!(
        hd.parameter_space[0].expression,
        Expression::Choice(vec![
            serde_json::json!(0.5),
            serde_json::json!(1),
            serde_json::json!(1.5)
        ])
    );
    assert!(matches!(
        hd.policy,
        PolicySpec::Bandit {
            evaluation_interval: 1,
            delay_evaluation: 0,
            ..
        }
    ));
    assert_eq!(hd.primary_metric_name, "Accuracy");
    assert_eq!(
        (
            hd.max_total_runs,
            hd.max_concurrent_runs,
            hd.max_duration_minutes
        ),
        (8, 2, 100)
    );
}

#[test]
fn v2_sweep_job_yaml_is_refused_as_v2() {
    let mut warnings = Vec::new();
    let err = hdconfig::load(&example("csiebler-cli-v2-sweep.yml"), &mut warnings).unwrap_err();
    assert!(err.to_string().contains("v2 `sweep` job YAML"), "{err}");
    let err = runconfig::load(&example("csiebler-cli-v2-sweep.yml"), &mut warnings).unwrap_err();
    assert!(err.to_string().contains("v2 `sweep` job YAML"), "{err}");
}

/// (file, expected line:col or None when the error is about the whole file, message snippet)
type MalformedCase = (&'static str, Option<(usize, usize)>, &'static str);

const MALFORMED_CASES: &[MalformedCase] = &[
    (
        "hd-bad-policy-type.hdconfig.yml",
        Some((8, 9)),
        "`policy.type`: expected BanditPolicy, MedianStoppingPolicy,",
    ),
    (
        "hd-bad-yaml.hdconfig.yml",
        Some((5, 4)),
        "invalid YAML: while parsing a block mapping, did not find",
    ),
    (
        "hd-bayesian-with-bandit.hdconfig.yml",
        Some((8, 9)),
        "bayesian sampling does not support early termination; the",
    ),
    (
        "hd-bayesian-with-normal.hdconfig.yml",
        Some((5, 17)),
        "`sampling.parameter_space[0].expression`: bayesian sampling",
    ),
    (
        "hd-choice-empty.hdconfig.yml",
        Some((6, 13)),
        "`sampling.parameter_space[0].values`: choice needs at least",
    ),
    (
        "hd-choice-nested.hdconfig.yml",
        Some((6, 14)),
        "`sampling.parameter_space[0].values[0]`: expected a number,",
    ),
    (
        "hd-delay-negative.hdconfig.yml",
        Some((9, 21)),
        "`policy.delay_evaluation` is -1; it must be at least",
    ),
    (
        "hd-duplicate-parameter.hdconfig.yml",
        Some((5, 12)),
        "`sampling.parameter_space` names parameter `--lr` twice",
    ),
    (
        "hd-duration-zero.hdconfig.yml",
        Some((10, 23)),
        "`max_duration_minutes` is 0; it must be at least",
    ),
    (
        "hd-empty-space.hdconfig.yml",
        Some((3, 20)),
        "`sampling.parameter_space` is empty; a sweep needs at least",
    ),
    (
        "hd-evaluation-interval-zero.hdconfig.yml",
        Some((9, 24)),
        "`policy.evaluation_interval` is 0; it must be at least",
    ),
    (
        "hd-goal-bad.hdconfig.yml",
        Some((8, 22)),
        "`primary_metric_goal`: expected maximize or minimize, found",
    ),
    (
        "hd-goal-missing.hdconfig.yml",
        None,
        "`primary_metric_goal` is required but",
    ),
    (
        "hd-grid-with-uniform.hdconfig.yml",
        Some((5, 17)),
        "`sampling.parameter_space[0].expression`: grid sampling",
    ),
    (
        "hd-lognormal-one-value.hdconfig.yml",
        Some((6, 13)),
        "`sampling.parameter_space[0].values`: lognormal takes 2",
    ),
    (
        "hd-max-concurrent-zero.hdconfig.yml",
        Some((10, 22)),
        "`max_concurrent_runs` is 0; it must be at least",
    ),
    (
        "hd-max-total-1001.hdconfig.yml",
        Some((9, 17)),
        "`max_total_runs` is 1001; it must be between 1 and",
    ),
    (
        "hd-max-total-missing.hdconfig.yml",
        None,
        "`max_total_runs` is required but",
    ),
    (
        "hd-max-total-zero.hdconfig.yml",
        Some((9, 17)),
        "`max_total_runs` is 0; it must be between 1 and",
    ),
    (
        "hd-metric-empty.hdconfig.yml",
        Some((7, 22)),
        "`primary_metric_name`: expected a non-empty text value,",
    ),
    (
        "hd-metric-missing.hdconfig.yml",
        None,
        "`primary_metric_name` is required but",
    ),
    (
        "hd-normal-sigma-zero.hdconfig.yml",
        Some((6, 17)),
        "`sampling.parameter_space[0].values`: normal needs sigma >",
    ),
    (
        "hd-parameter-without-name.hdconfig.yml",
        Some((4, 5)),
        "`sampling.parameter_space[0].name` is required but",
    ),
    (
        "hd-policy-is-text.hdconfig.yml",
        Some((7, 9)),
        "`policy`: expected a mapping of `key: value` lines, found a",
    ),
    (
        "hd-quniform-q-zero.hdconfig.yml",
        Some((6, 21)),
        "`sampling.parameter_space[0].values`: quniform needs q > 0,",
    ),
    (
        "hd-randint-fraction.hdconfig.yml",
        Some((6, 14)),
        "`sampling.parameter_space[0].values[0] (upper)`: expected a",
    ),
    (
        "hd-randint-two-values.hdconfig.yml",
        Some((6, 13)),
        "`sampling.parameter_space[0].values`: randint takes 1 value",
    ),
    (
        "hd-randint-zero.hdconfig.yml",
        Some((6, 14)),
        "`sampling.parameter_space[0].values[0] (upper)` is 0; it",
    ),
    (
        "hd-root-is-list.hdconfig.yml",
        Some((1, 1)),
        "the file: expected a mapping of `key: value` lines, found a",
    ),
    (
        "hd-sampling-missing.hdconfig.yml",
        None,
        "`sampling` is required but",
    ),
    (
        "hd-sampling-type-bad.hdconfig.yml",
        Some((2, 9)),
        "`sampling.type`: expected random, grid or bayesian, found a",
    ),
    (
        "hd-slack-both.hdconfig.yml",
        Some((10, 17)),
        "BanditPolicy takes `slack_factor` or `slack_amount`, not",
    ),
    (
        "hd-slack-negative.hdconfig.yml",
        Some((9, 17)),
        "`policy.slack_amount` is -0.1; it must be greater than",
    ),
    (
        "hd-slack-neither.hdconfig.yml",
        Some((8, 3)),
        "BanditPolicy needs `slack_factor` or",
    ),
    (
        "hd-space-is-text.hdconfig.yml",
        Some((3, 20)),
        "`sampling.parameter_space`: expected a list of parameters,",
    ),
    (
        "hd-space-missing.hdconfig.yml",
        Some((2, 3)),
        "`sampling.parameter_space` is required but",
    ),
    (
        "hd-truncation-hundred.hdconfig.yml",
        Some((9, 26)),
        "`policy.truncation_percentage` is 100; it must be between 1",
    ),
    (
        "hd-truncation-missing.hdconfig.yml",
        Some((8, 3)),
        "`policy.truncation_percentage` is required but",
    ),
    (
        "hd-truncation-zero.hdconfig.yml",
        Some((9, 26)),
        "`policy.truncation_percentage` is 0; it must be between 1",
    ),
    // A misspelt required key was "missing", with no word of the typo (or,
    // for `environment`, taken for the pre-2018 format).
    (
        "hd-expression-misspelt.hdconfig.yml",
        Some((5, 5)),
        "`sampling.parameter_space[0].expression` is required but missing; `expresion` looks like",
    ),
    (
        "hd-metric-name-misspelt.hdconfig.yml",
        Some((7, 1)),
        "`primary_metric_name` is required but missing; `primary_metric_nam` looks like",
    ),
    (
        "hd-values-quoted.hdconfig.yml",
        Some((6, 13)),
        "`sampling.parameter_space[0].values`: expected a list of 2 numbers (min, max), found the text `0, 1`",
    ),
    (
        "hd-space-misspelt.hdconfig.yml",
        Some((3, 3)),
        "`sampling.parameter_space` is required but missing; `parameter_spaces` looks like",
    ),
    (
        "rc-environment-misspelt.runconfig",
        Some((3, 1)),
        "`environment` is required but missing; `enviroment` looks like a misspelling",
    ),
    // min + (max - min) · u and mu + sigma · z past f64::MAX: the script got `None`.
    (
        "hd-uniform-range-overflow.hdconfig.yml",
        Some((6, 14)),
        "`sampling.parameter_space[0].values`: uniform needs max - min to be a finite number, found min -1e308",
    ),
    (
        "hd-normal-sigma-overflow.hdconfig.yml",
        Some((6, 17)),
        "`sampling.parameter_space[0].values`: normal with sigma 1e308 reaches beyond",
    ),
    // exp() past f64::MAX, or round(x / q) past it: the script was handed `None`.
    (
        "hd-loguniform-overflow.hdconfig.yml",
        Some((6, 19)),
        "`sampling.parameter_space[0].values`: loguniform samples exp() of its values, and exp(720)",
    ),
    (
        "hd-qloguniform-overflow.hdconfig.yml",
        Some((6, 17)),
        "`sampling.parameter_space[0].values`: qloguniform samples exp() of its values, and exp(710)",
    ),
    (
        "hd-quniform-q-tiny.hdconfig.yml",
        Some((6, 20)),
        "`sampling.parameter_space[0].values`: quniform rounds to multiples of q = 1e-320, and 1 / q",
    ),
    (
        "hd-lognormal-overflow.hdconfig.yml",
        Some((6, 14)),
        "`sampling.parameter_space[0].values`: lognormal samples exp() of its values, and exp(710)",
    ),
    (
        "hd-uniform-reversed.hdconfig.yml",
        Some((6, 14)),
        "`sampling.parameter_space[0].values`: uniform needs min <",
    ),
    (
        "hd-uniform-text-bound.hdconfig.yml",
        Some((6, 14)),
        "`sampling.parameter_space[0].values[0] (min)`: expected a",
    ),
    (
        "hd-unknown-expression.hdconfig.yml",
        Some((5, 17)),
        "`sampling.parameter_space[0].expression`: expected one of",
    ),
    (
        "hd-v2-sweep-job.hdconfig.yml",
        Some((1, 1)),
        "this is an Azure ML CLI v2 `sweep` job YAML, not a v1",
    ),
    (
        "rc-alias-bomb.runconfig",
        Some((5, 8)),
        "invalid YAML: alias replay limit exceeded:",
    ),
    (
        "rc-arguments-nested.runconfig",
        Some((4, 3)),
        "`arguments[1]`: expected a text value, found a",
    ),
    (
        "rc-arguments-not-list.runconfig",
        Some((2, 12)),
        "`arguments`: expected a list, found a string `--lr",
    ),
    (
        "rc-bad-indent.runconfig",
        Some((5, 4)),
        "invalid YAML: while parsing a block mapping, did not find",
    ),
    (
        "rc-both-spellings.runconfig",
        Some((3, 1)),
        "`nodeCount` is given twice (as `nodeCount` at line 2 and as",
    ),
    (
        "rc-command-and-arguments.runconfig",
        Some((2, 10)),
        "both `command` and `arguments` are set; a runconfig runs",
    ),
    (
        "rc-command-and-script.runconfig",
        Some((2, 10)),
        "both `command` and `script` are set; a runconfig runs",
    ),
    (
        "rc-communicator-unknown.runconfig",
        Some((2, 15)),
        "`communicator`: expected one of None, ParameterServer,",
    ),
    (
        "rc-credential-text.runconfig",
        Some((2, 24)),
        "`credentialPassthrough`: expected true or false, found a",
    ),
    (
        "rc-data-mechanism.runconfig",
        Some((9, 16)),
        "`data.train.mechanism`: expected one of direct, mount,",
    ),
    (
        "rc-datareference-mode.runconfig",
        Some((8, 11)),
        "`dataReferences.ref.mode`: expected one of mount, download,",
    ),
    (
        "rc-duplicate-key.runconfig",
        Some((3, 1)),
        "invalid YAML: duplicate mapping key:",
    ),
    ("rc-empty.runconfig", None, "the run configuration is"),
    (
        "rc-environment-file-missing.runconfig",
        Some((2, 14)),
        "environment file",
    ),
    (
        "rc-environment-number.runconfig",
        Some((2, 14)),
        "`environment`: expected a mapping of `key: value` lines,",
    ),
    (
        "rc-envvars-list.runconfig",
        Some((3, 25)),
        "`environment.environmentVariables`: expected a mapping of",
    ),
    (
        "rc-framework-unknown.runconfig",
        Some((2, 12)),
        "`framework`: expected one of Python, PySpark, CNTK,",
    ),
    (
        "rc-history-list.runconfig",
        Some((5, 10)),
        "`history`: expected a mapping of `key: value` lines, found",
    ),
    (
        "rc-image-and-dockerfile.runconfig",
        Some((5, 5)),
        "`environment.docker.baseImage` and `baseDockerfile` are",
    ),
    // A JSON runconfig was given YAML's indentation advice.
    (
        "rc-json-missing-comma.runconfig",
        Some((3, 3)),
        "invalid JSON: while parsing a flow mapping, did not find expected ',' or '}'",
    ),
    (
        "rc-number-infinite.runconfig",
        Some((3, 24)),
        "invalid YAML: a number is infinite or not a number",
    ),
    (
        "rc-json-unclosed.runconfig",
        Some((3, 18)),
        "invalid JSON: unclosed bracket",
    ),
    (
        "rc-max-run-negative.runconfig",
        Some((2, 24)),
        "`maxRunDurationSeconds` is -5; it must be at least",
    ),
    (
        "rc-mpi-zero-processes.runconfig",
        Some((6, 24)),
        "`mpi.processCountPerNode` is 0; it must be at least",
    ),
    (
        "rc-nodecount-text.runconfig",
        Some((2, 12)),
        "`nodeCount`: expected a whole number, found a string",
    ),
    (
        "rc-nodecount-zero.runconfig",
        Some((2, 12)),
        "`nodeCount` is 0; it must be at least",
    ),
    (
        "rc-not-utf8.runconfig",
        None,
        "not UTF-8 text (invalid byte at offset",
    ),
    (
        "rc-pre-2018.runconfig",
        None,
        "no `environment` section: this is the pre-2018 runconfig",
    ),
    (
        "rc-root-is-list.runconfig",
        Some((1, 1)),
        "the file: expected a mapping of `key: value` lines, found a",
    ),
    (
        "rc-root-is-scalar.runconfig",
        Some((1, 1)),
        "the file: expected a mapping of `key: value` lines, found a",
    ),
    (
        "rc-spark-packages-map.runconfig",
        Some((4, 15)),
        "`environment.spark.packages`: expected a list, found a",
    ),
    (
        "rc-tensorflow-text.runconfig",
        Some((6, 16)),
        "`tensorflow.workerCount`: expected a whole number, found a",
    ),
    (
        "rc-two-documents.runconfig",
        Some((5, 1)),
        "invalid YAML: the file holds more than one YAML document",
    ),
    (
        "rc-unclosed-bracket.runconfig",
        Some((3, 12)),
        "invalid YAML: illegal placement of ':'",
    ),
    (
        "rc-unknown-anchor.runconfig",
        Some((2, 12)),
        "invalid YAML: alias references unknown",
    ),
    (
        "rc-user-managed-text.runconfig",
        Some((4, 30)),
        "`environment.python.userManagedDependencies`: expected true",
    ),
    (
        "rc-v2-command-job.runconfig",
        Some((1, 1)),
        "this is an Azure ML CLI v2 `command` job YAML, not a v1 run",
    ),
    (
        "rc-workbench-2017.runconfig",
        None,
        "pre-2018 runconfig format of Azure ML Workbench (`ArgumentVector`",
    ),
];

fn load_any(path: &Path) -> Result<(), ModelError> {
    let mut warnings = Vec::new();
    if path.to_string_lossy().ends_with(".runconfig") {
        runconfig::load(path, &mut warnings).map(|_| ())
    } else {
        hdconfig::load(path, &mut warnings).map(|_| ())
    }
}

#[test]
fn every_malformed_input_fails_with_position_message_and_hint() {
    let mut failures = Vec::new();
    for (file, location, snippet) in MALFORMED_CASES {
        let path = Path::new(MALFORMED).join(file);
        let err = match load_any(&path) {
            Ok(()) => {
                failures.push(format!("{file}: parsed, expected an error"));
                continue;
            }
            Err(err) => err,
        };
        let text = err.to_string();
        let prefix = match location {
            Some((line, col)) => format!("{}:{line}:{col}: ", path.display()),
            None => format!("{}: ", path.display()),
        };
        if !text.starts_with(&prefix) || !text.contains(snippet) {
            failures.push(format!(
                "{file}: got `{text}`, want prefix `{prefix}` and `{snippet}`"
            ));
        }
        if err.hint().is_none_or(|h| h.is_empty()) {
            failures.push(format!("{file}: no hint in `{text}`"));
        }
        if err.exit_code() != 1 {
            failures.push(format!("{file}: exit code {}", err.exit_code()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn malformed_table_covers_every_fixture() {
    let mut on_disk: Vec<String> = std::fs::read_dir(MALFORMED)
        .expect("malformed dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = MALFORMED_CASES.iter().map(|c| c.0.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    assert!(listed.len() >= 40);
}

#[test]
fn unknown_keys_warn_with_file_line_and_closest_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("typos.runconfig");
    std::fs::write(
        &path,
        "script: train.py\nnodecuont: 2\nenvironment:\n  python:\n    interpeterPath: python3\n  zzz: 1\n",
    )
    .expect("write");
    let (rc, warnings) = load_rc(&path);
    assert_eq!(rc.node_count, 1, "a misspelt key is not applied");
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 3, "{text:?}");
    let at = |line: usize, col: usize| format!("{}:{line}:{col}: ", path.display());
    assert!(
        text[0].starts_with(&at(2, 1)) && text[0].contains("did you mean `nodeCount`"),
        "{text:?}"
    );
    assert!(
        text[1].starts_with(&at(5, 5))
            && text[1].contains("`environment.python.interpeterPath`")
            && text[1].contains("`interpreterPath`"),
        "{text:?}"
    );
    assert!(
        text[2].starts_with(&at(6, 3)) && !text[2].contains("did you mean"),
        "{text:?}"
    );

    let hd_path = dir.path().join("hd.yml");
    std::fs::write(
        &hd_path,
        "sampling: {type: random, parameter_space: [{name: a, expression: choice, values: [1]}]}\nprimary_metric_name: m\nprimary_metric_goal: maximize\nmax_total_run: 3\nmax_total_runs: 3\npolicy: {type: MedianStopping, slack_factor: 0.1}\n",
    )
    .expect("write");
    let (_, warnings) = load_hd(&hd_path);
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|w| w.contains("did you mean `max_total_runs`")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|w| w.contains("`policy.slack_factor` does not apply to MedianStoppingPolicy")),
        "{text:?}"
    );
}

#[test]
fn environment_given_as_a_file_is_read_relative_to_the_runconfig() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("config/envs")).expect("mkdir");
    std::fs::write(
        dir.path().join("config/train.runconfig"),
        "script: train.py\nenvironment: envs/env.yml\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("config/envs/env.yml"),
        "name: my-env\npython:\n  userManagedDependencies: true\n  interpreterPath: /opt/py/bin/python\n  bogus: 1\n",
    )
    .expect("write");
    let (rc, warnings) = load_rc(&dir.path().join("config/train.runconfig"));
    assert_eq!(rc.environment.name.as_deref(), Some("my-env"));
    assert_eq!(rc.environment.python.interpreter_path, "/opt/py/bin/python");
    assert!(rc.environment.python.user_managed_dependencies);
    assert!(
        rc.environment
            .source_file
            .as_deref()
            .is_some_and(|p| p.ends_with("config/envs/env.yml"))
    );
    // Positions in the environment file name that file.
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].to_string().contains("env.yml:5:3:"),
        "{warnings:?}"
    );
}

#[test]
fn runconfig_name_resolves_like_v1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for rel in [
        ".azureml/local",
        ".azureml/gpu.runconfig",
        "aml_config/old.runconfig",
        "config/train-aml.runconfig",
        "top.runconfig",
    ] {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, "environment: {}\n").expect("write");
    }
    let resolve = |name: &str| {
        runconfig::resolve_path(name, root)
            .map(|p| p.strip_prefix(root).map(Path::to_path_buf).unwrap_or(p))
    };
    assert_eq!(
        resolve("local").expect("local"),
        Path::new(".azureml/local")
    );
    assert_eq!(
        resolve("gpu").expect("gpu"),
        Path::new(".azureml/gpu.runconfig")
    );
    assert_eq!(
        resolve("old").expect("old"),
        Path::new("aml_config/old.runconfig")
    );
    assert_eq!(
        resolve("config/train-aml").expect("csiebler form"),
        Path::new("config/train-aml.runconfig")
    );
    assert_eq!(resolve("top").expect("top"), Path::new("top.runconfig"));
    let absolute = root.join("top.runconfig");
    assert_eq!(
        runconfig::resolve_path(&absolute.to_string_lossy(), Path::new("/nonexistent"))
            .expect("absolute"),
        absolute
    );
    let err = runconfig::resolve_path("missing", root).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(".azureml/missing.runconfig") && text.contains("missing.runconfig"),
        "{text}"
    );
    assert!(err.hint().is_some());
}

#[test]
fn hdconfig_name_resolves_to_the_last_matching_file_under_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for rel in [
        "a/hyperdrive_config.yml",
        "z/deep/hyperdrive_config.yml",
        "m/my_hyperdrive_config.yml",
    ] {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, "x").expect("write");
    }
    let found = hdconfig::resolve_path("hyperdrive_config.yml", root, &[]).expect("found");
    assert!(
        found.ends_with("z/deep/hyperdrive_config.yml"),
        "{}",
        found.display()
    );
    let direct = hdconfig::resolve_path("m/my_hyperdrive_config.yml", root, &[])
        .expect("relative to --path");
    assert!(direct.ends_with("m/my_hyperdrive_config.yml"));
    assert!(hdconfig::resolve_path("nothing.yml", root, &[]).is_err());
}

/// A cheap, deterministic stand-in for the cargo-fuzz targets (which CI does
/// not run): mutated versions of every fixture must parse or fail cleanly.
#[test]
fn mutated_fixtures_never_panic() {
    let mut files = Vec::new();
    for dir in [EXAMPLES, MALFORMED] {
        for entry in std::fs::read_dir(dir).expect("fixture dir") {
            let path = entry.expect("entry").path();
            if path.is_file() && !path.ends_with("SOURCES.md") {
                files.push(path);
            }
        }
    }
    files.push(example("generated-azureml-core-1.57.0/.azureml/local"));
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move |bound: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % bound.max(1) as u64) as usize
    };
    const TOKENS: &[&str] = &[
        ":", "- ", "[", "]", "{", "}", "&a ", "*a", "\n  ", "\t", "'", "\"", "#", "!!int ", "~",
        "-1", "1e999", "null", "---\n", "? ", "|\n", ">-\n", "\u{FEFF}", "é",
    ];
    let mut round_trips = 0;
    for path in &files {
        let original = std::fs::read(path).expect("read fixture");
        let text = String::from_utf8_lossy(&original).into_owned();
        for _ in 0..20 {
            let mut mutated = text.clone();
            for _ in 0..1 + next(3) {
                let mut at = next(mutated.len() + 1);
                while !mutated.is_char_boundary(at) {
                    at -= 1;
                }
                match next(3) {
                    0 => mutated.insert_str(at, TOKENS[next(TOKENS.len())]),
                    1 => {
                        let mut end = (at + next(12)).min(mutated.len());
                        while !mutated.is_char_boundary(end) {
                            end -= 1;
                        }
                        mutated.replace_range(at..end, "");
                    }
                    _ => mutated.truncate(at),
                }
            }
            let fake = Path::new("/nonexistent-azml-test/mutated.runconfig");
            let result = std::panic::catch_unwind(|| {
                let mut warnings = Vec::new();
                let _ = hdconfig::parse_str(&mutated, fake, &mut warnings);
                let rc = runconfig::parse_str(&mutated, fake, &mut warnings).ok()?;
                let written = rc.to_v1_yaml();
                let again = runconfig::parse_str(&written, fake, &mut warnings);
                Some((rc, again.map_err(|e| e.to_string()), written))
            });
            let Ok(outcome) = result else {
                panic!("panic on a mutation of {}:\n{mutated}", path.display());
            };
            if let Some((rc, again, written)) = outcome {
                round_trips += 1;
                assert_eq!(
                    again.as_ref(),
                    Ok(&rc),
                    "write/reparse differs for:\n{mutated}\nwritten:\n{written}"
                );
            }
        }
    }
    assert!(
        round_trips >= 50,
        "only {round_trips} mutations parsed as runconfigs"
    );
}

/// `azml` run in a scratch project with `train.py`, using a scratch local workspace.
fn azml_in_project() -> (assert_cmd::Command, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("train.py"), "print('hi')\n").expect("write");
    let mut cmd = assert_cmd::Command::cargo_bin("azml").expect("binary");
    cmd.current_dir(dir.path())
        .env("AZML_LOCAL_WORKSPACE", dir.path().join(".ws"))
        .env_remove("AZURE_SUBSCRIPTION_ID")
        .env_remove("AZML_RESOURCE_GROUP")
        .env_remove("AZML_WORKSPACE_NAME");
    (cmd, dir)
}

fn absolute(rel: &str) -> String {
    std::env::current_dir()
        .expect("cwd")
        .join(rel)
        .display()
        .to_string()
}

#[test]
fn submit_script_with_a_malformed_runconfig_exits_1_with_the_position_on_stderr() {
    let cases = [
        ("rc-nodecount-zero.runconfig", ":2:12: `nodeCount` is 0"),
        (
            "rc-command-and-script.runconfig",
            ":2:10: both `command` and `script`",
        ),
        ("rc-bad-indent.runconfig", ":5:4: invalid YAML"),
        ("rc-pre-2018.runconfig", ": no `environment` section"),
    ];
    for (file, expected) in cases {
        let path = absolute(&format!("{MALFORMED}/{file}"));
        let (mut cmd, _dir) = azml_in_project();
        let output = cmd
            .args(["run", "submit-script", "-e", "exp", "-c", &path, "train.py"])
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{file}: {stderr}");
        assert!(
            stderr.contains(&format!("{path}{expected}")),
            "{file}: {stderr}"
        );
        assert!(stderr.contains("hint: "), "{file}: {stderr}");
        assert!(output.stdout.is_empty(), "{file}: results only on success");
    }
}

#[test]
fn submit_hyperdrive_with_a_malformed_hdconfig_exits_1_before_any_run() {
    let runconfig = absolute(&format!(
        "{EXAMPLES}/generated-azureml-core-1.57.0/.azureml/local"
    ));
    for (file, expected) in [
        (
            "hd-grid-with-uniform.hdconfig.yml",
            ":5:17: `sampling.parameter_space[0].expression`: grid sampling",
        ),
        (
            "hd-truncation-zero.hdconfig.yml",
            ":9:26: `policy.truncation_percentage` is 0",
        ),
    ] {
        let path = absolute(&format!("{MALFORMED}/{file}"));
        let (mut cmd, _dir) = azml_in_project();
        let output = cmd
            .args(["run", "submit-hyperdrive", "-e", "exp", "-c", &runconfig])
            .args(["--hyperdrive-configuration-name", &path, "train.py"])
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{file}: {stderr}");
        assert!(
            stderr.contains(&format!("{path}{expected}")),
            "{file}: {stderr}"
        );
    }
}

#[test]
fn submit_script_prints_unknown_key_warnings_on_stderr() {
    let (mut cmd, dir) = azml_in_project();
    std::fs::write(
        dir.path().join("typo.runconfig"),
        "script: train.py\nnodeCuont: 1\nenvironment:\n  python:\n    userManagedDependencies: true\n",
    )
    .expect("write");
    let output = cmd
        .args([
            "run",
            "submit-script",
            "-e",
            "exp",
            "-c",
            "typo",
            "train.py",
        ])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "typo.runconfig:2:1: unknown key `nodeCuont` is ignored; did you mean `nodeCount`?"
        ),
        "{stderr}"
    );
}

#[test]
fn generated_local_runconfig_names_its_conda_file_relative_to_the_project() {
    let project = example("generated-azureml-core-1.57.0");
    let (rc, _) = load_rc(&project.join(".azureml/local"));
    let mut warnings = Vec::new();
    let deps = rc
        .managed_conda_dependencies(&project, &mut warnings)
        .expect("conda file parses")
        .expect("managed dependencies");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(deps.python_version.as_deref(), Some("3.8.13"));
    assert_eq!(deps.pip_packages, vec!["azureml-defaults"]);

    let err = rc
        .managed_conda_dependencies(Path::new("/nonexistent-project"), &mut warnings)
        .unwrap_err();
    assert!(err.to_string().contains("conda_dependencies.yml"), "{err}");
    assert!(
        err.hint()
            .is_some_and(|h| h.contains("userManagedDependencies"))
    );

    let user_managed = RunConfig::default_local("python3");
    assert_eq!(
        user_managed
            .managed_conda_dependencies(&project, &mut warnings)
            .expect("no file needed"),
        None
    );
}

#[test]
fn generated_local_and_docker_round_trip_byte_for_byte() {
    for name in ["local", "docker"] {
        let path = example(&format!("generated-azureml-core-1.57.0/.azureml/{name}"));
        let original = std::fs::read_to_string(&path).expect("read");
        let (rc, _) = load_rc(&path);
        assert_eq!(rc.to_v1_yaml(), original, "{name}");
        assert_eq!(
            RunConfig::v1_attach_template(name == "docker").to_v1_yaml(),
            original,
            "template {name}"
        );
    }
}

/// Whatever parses, written back and parsed again, is the same configuration.
#[test]
fn every_example_runconfig_survives_write_and_reparse() {
    let files = [
        "csiebler-hyperdrive.runconfig",
        "csiebler-train-aml.runconfig",
        "mlops-cli-train-deploy-local.runconfig",
        "mlops-cli-train-deploy-mnist.runconfig",
        "mlops-imagenet-docker.runconfig",
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for file in files {
        let (rc, _) = load_rc(&example(file));
        let written = dir.path().join(file);
        std::fs::write(&written, rc.to_v1_yaml()).expect("write");
        let (mut again, warnings) = load_rc(&written);
        assert!(warnings.is_empty(), "{file}: {warnings:?}");
        again.source_file = rc.source_file.clone();
        assert_eq!(again, rc, "{file}:\n{}", rc.to_v1_yaml());
    }
}

/// What `folder attach` writes must read back cleanly: no warnings, and a
/// `local` runconfig whose interpreter exists on this machine.
#[test]
fn folder_attach_writes_runconfigs_the_model_reads_without_warnings() {
    let (mut cmd, dir) = azml_in_project();
    let output = cmd
        .args(["folder", "attach", "-e", "demo"])
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (local, warnings) = load_rc(&dir.path().join(".azureml/local"));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(local.environment.python.user_managed_dependencies);
    let path_var = std::env::var_os("PATH");
    let interpreter = local
        .local_interpreter(dir.path(), path_var.as_deref())
        .expect("the attached interpreter exists");
    assert!(interpreter.program.is_file());
    let (docker, warnings) = load_rc(&dir.path().join(".azureml/docker"));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(docker.environment.docker.enabled);
    // Apart from the interpreter choice, attach writes v1's own template.
    let mut expected = RunConfig::v1_attach_template(false);
    expected.environment.python = local.environment.python.clone();
    expected.source_file = local.source_file.clone();
    assert_eq!(local, expected);
}

/// A JSON runconfig with a syntax error was told to check its indentation.
#[test]
fn a_json_syntax_error_gets_json_advice_not_yaml_indentation() {
    let path = Path::new(MALFORMED).join("rc-json-missing-comma.runconfig");
    let err = runconfig::load(&path, &mut Vec::new()).unwrap_err();
    let hint = err.hint().unwrap_or_default();
    assert!(hint.contains("missing comma"), "{hint}");
    assert!(!hint.contains("indentation"), "{hint}");
    let path = Path::new(MALFORMED).join("rc-bad-indent.runconfig");
    let err = runconfig::load(&path, &mut Vec::new()).unwrap_err();
    assert!(err.hint().unwrap_or_default().contains("indentation"));
}
