//! Azure backend II: v1 runconfig/hdconfig → v2 Command/Sweep job bodies.
//! Every body produced is validated against the 2025-12-01 schema's request
//! model for `Jobs_CreateOrUpdate` (additionalProperties: false) and pinned
//! with an insta snapshot.

use azml::arm::environment::{self, EnvironmentPlan};
use azml::arm::jobs::{self, JobContext, JobSpecError};
use azml::config::AzureWorkspaceRef;
use azml::model::hdconfig::{self, HyperDriveConfig};
use azml::model::runconfig::{self, RunConfig};
use azml::sweep::policy::Slack;
use azml::sweep::{Expression, Parameter, PolicySpec, SamplingKind};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

use fake_jobs::schema;

/// Validate `body` against `$defs/<model>` of the schema; panics listing every violation.
fn assert_schema_valid(model: &str, body: &Value) {
    let errors = schema::violations(model, body);
    assert!(
        errors.is_empty(),
        "body is not a valid {model}:\n{}\n{body:#}",
        errors.join("\n")
    );
}

/// The request model `x-operations` names for an operation's body.
fn request_model(operation: &str) -> String {
    schema::request_model(operation).unwrap_or_else(|| panic!("{operation} has a request schema"))
}

fn workspace() -> AzureWorkspaceRef {
    AzureWorkspaceRef {
        subscription_id: "00000000-0000-0000-0000-000000000000".into(),
        resource_group: "rg".into(),
        workspace_name: "ws".into(),
    }
}

fn context(rc: &RunConfig, experiment: &str) -> JobContext {
    let ws = workspace();
    let ws_id = jobs::workspace_id(&ws);
    JobContext {
        run_id: jobs::new_run_id(experiment, 1_764_000_000, 0x1234abcd),
        experiment: experiment.into(),
        display_name: None,
        code_id: Some(format!("{ws_id}/codes/3f1c/versions/1")),
        environment_id: environment::environment_id(&ws_id, "CliV2AnonymousEnvironment", "abc"),
        compute_id: jobs::compute_id(&ws, &rc.target).expect("compute target"),
        tags: BTreeMap::new(),
        properties: BTreeMap::new(),
        seed: None,
    }
}

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-examples")
}

/// Load a runconfig from the shared v1 examples, the way `-c` does.
fn load_rc(rel: &str) -> RunConfig {
    let mut warnings = Vec::new();
    runconfig::load(&examples_dir().join(rel), &mut warnings)
        .unwrap_or_else(|e| panic!("{rel} loads: {e}"))
}

fn load_hd(rel: &str) -> HyperDriveConfig {
    let mut warnings = Vec::new();
    hdconfig::load(&examples_dir().join(rel), &mut warnings)
        .unwrap_or_else(|e| panic!("{rel} loads: {e}"))
}

/// What `--ct cpu-cluster` does to a runconfig whose target is `local`.
fn on_cluster(mut rc: RunConfig) -> RunConfig {
    if rc.target.eq_ignore_ascii_case("local") {
        rc.target = "cpu-cluster".into();
    }
    rc
}

fn env_vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runconfigs from the examples that Azure ML v2 can run, by snapshot name.
const TRANSLATABLE: &[(&str, &str)] = &[
    ("csiebler_train_aml", "csiebler-train-aml.runconfig"),
    ("csiebler_hyperdrive", "csiebler-hyperdrive.runconfig"),
    ("mlops_local", "mlops-cli-train-deploy-local.runconfig"),
    (
        "generated_local",
        "generated-azureml-core-1.57.0/.azureml/local",
    ),
    (
        "generated_docker",
        "generated-azureml-core-1.57.0/.azureml/docker",
    ),
];

/// Runconfigs from the examples v2 cannot express, and the field the error must name.
const REFUSED: &[(&str, &str)] = &[
    ("mlops-imagenet-docker.runconfig", "framework"),
    (
        "mlops-cli-train-deploy-mnist.runconfig",
        "data.mnist.dataLocation.dataset.id",
    ),
];

const HDCONFIGS: &[(&str, &str)] = &[
    ("csiebler", "csiebler-hyperdrive_config.hdconfig.yml"),
    ("azure_docs", "azure-docs-hdconfig.yml"),
];

fn job_model() -> String {
    request_model("Jobs_CreateOrUpdate")
}

/// The runconfig with a script when the file has none (the CLI supplies it).
fn with_script(mut rc: RunConfig) -> RunConfig {
    if rc.script.as_deref().unwrap_or_default().is_empty()
        && rc.command.as_deref().unwrap_or_default().is_empty()
    {
        rc.script = Some("train.py".into());
    }
    rc
}

#[test]
fn every_example_runconfig_becomes_a_schema_valid_command_job() {
    for (name, file) in TRANSLATABLE {
        let rc = with_script(on_cluster(load_rc(file)));
        let job = jobs::command_job(&rc, &context(&rc, "examples"))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_schema_valid(&job_model(), &job.body);
        insta::assert_json_snapshot!(format!("command_job_{name}"), job.body);
    }
}

#[test]
fn every_example_runconfig_and_hdconfig_pair_becomes_a_schema_valid_sweep_job() {
    for (rc_name, rc_file) in TRANSLATABLE {
        for (hd_name, hd_file) in HDCONFIGS {
            let rc = with_script(on_cluster(load_rc(rc_file)));
            let hd = load_hd(hd_file);
            let mut ctx = context(&rc, "sweeps");
            ctx.seed = Some(7);
            let job = jobs::sweep_job(&rc, &hd, &ctx)
                .unwrap_or_else(|e| panic!("{rc_file} + {hd_file}: {e}"));
            assert_schema_valid(&job_model(), &job.body);
            insta::assert_json_snapshot!(format!("sweep_job_{rc_name}__{hd_name}"), job.body);
        }
    }
}

#[test]
fn example_runconfigs_v2_cannot_run_are_errors_naming_the_field() {
    for (file, field) in REFUSED {
        let rc = with_script(on_cluster(load_rc(file)));
        let err = jobs::command_job(&rc, &context(&rc, "x"))
            .err()
            .unwrap_or_else(|| panic!("{file} should be refused"));
        assert!(err.to_string().contains(field), "{file}: {err}");
        let (code, hint) = azml::error::exit_code_of(&anyhow::Error::new(err));
        assert_eq!(code, 1);
        assert!(hint.is_some(), "{file}: the error carries a hint");
    }
}

#[test]
fn train_aml_dataset_argument_becomes_the_input_path() {
    let rc = load_rc("csiebler-train-aml.runconfig");
    let job = jobs::command_job(&rc, &context(&rc, "cli-training")).expect("translates");
    let props = &job.body["properties"];
    assert_eq!(
        props["command"],
        "export training_dataset=${{inputs.training_dataset}}; \
         python train.py --data-path ${{inputs.training_dataset}}"
    );
    assert_eq!(
        props["inputs"]["training_dataset"]["uri"],
        "azureml:cli-training-tutorial:1"
    );
    assert_eq!(props["inputs"]["training_dataset"]["mode"], "Download");
    assert_eq!(
        job.warnings.len(),
        1,
        "the pathOnCompute rewrite is announced"
    );
}

#[test]
fn hyperdrive_pair_appends_one_search_space_reference_per_parameter() {
    let rc = load_rc("csiebler-hyperdrive.runconfig");
    let hd = load_hd("csiebler-hyperdrive_config.hdconfig.yml");
    let job = jobs::sweep_job(&rc, &hd, &context(&rc, "hyperdrive-test")).expect("translates");
    let props = &job.body["properties"];
    assert_eq!(
        props["trial"]["command"],
        "export training_dataset=${{inputs.training_dataset}}; \
         python train.py --data-path ${{inputs.training_dataset}} --c ${{search_space.c}}"
    );
    assert_eq!(
        props["searchSpace"],
        json!({"c": ["choice", [[0.5, 1, 1.5]]]})
    );
    assert_eq!(props["limits"]["timeout"], "PT1H");
    assert_eq!(props["limits"]["maxTotalTrials"], 8);
    assert_eq!(
        props["earlyTermination"],
        json!({"policyType": "Bandit", "evaluationInterval": 1, "delayEvaluation": 0, "slackFactor": 0.2})
    );
}

#[test]
fn every_search_space_expression_and_policy_is_schema_valid() {
    let rc = load_rc("csiebler-hyperdrive.runconfig");
    let expressions = [
        Expression::RandInt { upper: 10 },
        Expression::Uniform { min: 0.0, max: 1.0 },
        Expression::QUniform {
            min: 1.0,
            max: 9.0,
            q: 2.0,
        },
        Expression::LogUniform {
            min: -6.0,
            max: -1.0,
        },
        Expression::QLogUniform {
            min: 0.0,
            max: 4.0,
            q: 1.0,
        },
        Expression::Normal {
            mu: 0.0,
            sigma: 1.0,
        },
        Expression::QNormal {
            mu: 5.0,
            sigma: 2.0,
            q: 1.0,
        },
        Expression::LogNormal {
            mu: 0.0,
            sigma: 0.5,
        },
        Expression::QLogNormal {
            mu: 1.0,
            sigma: 0.5,
            q: 1.0,
        },
        Expression::Choice(vec![json!("adam"), json!("sgd")]),
    ];
    let policies = [
        PolicySpec::Bandit {
            evaluation_interval: 2,
            delay_evaluation: 5,
            slack: Slack::Amount(0.1),
        },
        PolicySpec::MedianStopping {
            evaluation_interval: 1,
            delay_evaluation: 3,
        },
        PolicySpec::TruncationSelection {
            evaluation_interval: 1,
            delay_evaluation: 0,
            truncation_percentage: 20,
        },
        PolicySpec::NoTermination,
    ];
    let mut hd = load_hd("csiebler-hyperdrive_config.hdconfig.yml");
    hd.parameter_space = expressions
        .iter()
        .enumerate()
        .map(|(i, e)| Parameter {
            name: format!("--p-{i}"),
            expression: e.clone(),
        })
        .collect();
    let mut policies_seen = Vec::new();
    for policy in policies {
        hd.policy = policy;
        let mut ctx = context(&rc, "all");
        ctx.seed = Some(42);
        let job = jobs::sweep_job(&rc, &hd, &ctx).expect("translates");
        assert_schema_valid(&job_model(), &job.body);
        if policies_seen.is_empty() {
            insta::assert_json_snapshot!(
                "sweep_search_space_all_expressions",
                job.body["properties"]["searchSpace"]
            );
        }
        policies_seen.push(json!({"earlyTermination": job.body["properties"]["earlyTermination"]}));
    }
    insta::assert_json_snapshot!("sweep_policies", policies_seen);
}

#[test]
fn grid_and_bayesian_sampling_are_schema_valid() {
    let rc = load_rc("csiebler-hyperdrive.runconfig");
    for sampling in [SamplingKind::Grid, SamplingKind::Bayesian] {
        let mut hd = load_hd("azure-docs-hdconfig.yml");
        hd.sampling = sampling;
        hd.policy = PolicySpec::NoTermination;
        let job = jobs::sweep_job(&rc, &hd, &context(&rc, "s")).expect("translates");
        assert_schema_valid(&job_model(), &job.body);
        assert!(job.body["properties"].get("earlyTermination").is_none());
    }
}

#[test]
fn distributed_frameworks_map_to_v2_distributions() {
    let cases = [
        (
            "Python",
            "OpenMpi",
            json!({"distributionType": "Mpi", "processCountPerInstance": 2}),
        ),
        (
            "Python",
            "IntelMpi",
            json!({"distributionType": "Mpi", "processCountPerInstance": 2}),
        ),
        (
            "PyTorch",
            "Nccl",
            json!({"distributionType": "PyTorch", "processCountPerInstance": 4}),
        ),
        (
            "TensorFlow",
            "ParameterServer",
            json!({"distributionType": "TensorFlow", "workerCount": 3, "parameterServerCount": 1}),
        ),
    ];
    for (framework, communicator, expected) in cases {
        let mut rc = load_rc("csiebler-hyperdrive.runconfig");
        rc.framework = framework.into();
        rc.communicator = communicator.into();
        rc.node_count = 2;
        rc.mpi.process_count_per_node = 2;
        rc.pytorch.process_count = Some(8);
        rc.tensorflow.worker_count = 3;
        rc.tensorflow.parameter_server_count = 1;
        let job = jobs::command_job(&rc, &context(&rc, "dist")).expect("translates");
        assert_schema_valid(&job_model(), &job.body);
        assert_eq!(
            job.body["properties"]["distribution"], expected,
            "{framework}/{communicator}"
        );
        assert_eq!(job.body["properties"]["resources"]["instanceCount"], 2);
    }
}

#[test]
fn spark_and_databricks_content_is_an_error_naming_the_section() {
    let mut rc = load_rc("csiebler-hyperdrive.runconfig");
    rc.environment.databricks.pypi_libraries = vec![json!({"package": "x"})];
    let err = jobs::command_job(&rc, &context(&rc, "x")).unwrap_err();
    assert!(
        matches!(err, JobSpecError::Unsupported { ref field, .. } if field == "environment.databricks")
    );
    let rc = with_script(on_cluster(load_rc("mlops-imagenet-docker.runconfig")));
    let mut rc = rc;
    rc.framework = "Python".into();
    let err = jobs::command_job(&rc, &context(&rc, "x")).unwrap_err();
    assert!(err.to_string().contains("environment.spark"), "{err}");
}

#[test]
fn dataset_consumption_argument_and_datastore_references_are_rewritten() {
    let mut rc = load_rc("csiebler-hyperdrive.runconfig");
    rc.data.clear();
    rc.arguments = vec![
        "--raw=$AZUREML_DATAREFERENCE_raw".into(),
        "--out".into(),
        "$AZUREML_DATAREFERENCE_results".into(),
    ];
    let text = "script: train.py\nenvironment: {}\ndataReferences:\n  raw:\n    dataStoreName: workspaceblobstore\n    mode: download\n    pathOnDataStore: /raw/images\n  results:\n    dataStoreName: workspaceblobstore\n    mode: upload\n    pathOnDataStore: results/run1\n";
    let mut warnings = Vec::new();
    let parsed = runconfig::parse_str(text, std::path::Path::new("refs.runconfig"), &mut warnings)
        .expect("parses");
    rc.data_references = parsed.data_references;
    let job = jobs::command_job(&rc, &context(&rc, "refs")).expect("translates");
    assert_schema_valid(&job_model(), &job.body);
    let props = &job.body["properties"];
    assert_eq!(
        props["command"],
        "export AZUREML_DATAREFERENCE_raw=${{inputs.raw}} \
         AZUREML_DATAREFERENCE_results=${{outputs.results}}; \
         python train.py --raw=${{inputs.raw}} --out ${{outputs.results}}"
    );
    assert_eq!(
        props["inputs"]["raw"],
        json!({"jobInputType": "uri_folder", "uri": "azureml://datastores/workspaceblobstore/paths/raw/images", "mode": "Download"})
    );
    assert_eq!(props["outputs"]["results"]["mode"], "Upload");
}

/// References were replaced by prefix: with inputs `data` and `data2`,
/// `$AZUREML_DATAREFERENCE_data2` became `${{inputs.data}}2`.
#[test]
fn references_to_inputs_whose_names_share_a_prefix_reach_the_right_input() {
    let mut rc = load_rc("csiebler-hyperdrive.runconfig");
    rc.data.clear();
    rc.arguments = vec![
        "$AZUREML_DATAREFERENCE_data2".into(),
        "--in=$AZUREML_DATAREFERENCE_data".into(),
        "$AZUREML_DATAREFERENCE_data_other".into(),
    ];
    let text = "script: train.py\nenvironment: {}\ndataReferences:\n  data:\n    pathOnDataStore: a\n  data2:\n    pathOnDataStore: b\n";
    let mut warnings = Vec::new();
    let parsed = runconfig::parse_str(text, std::path::Path::new("refs.runconfig"), &mut warnings)
        .expect("parses");
    rc.data_references = parsed.data_references;
    let job = jobs::command_job(&rc, &context(&rc, "refs")).expect("translates");
    assert_eq!(
        job.body["properties"]["command"],
        "export AZUREML_DATAREFERENCE_data=${{inputs.data}} AZUREML_DATAREFERENCE_data2=${{inputs.data2}}; \
         python train.py ${{inputs.data2}} --in=${{inputs.data}} '$AZUREML_DATAREFERENCE_data_other'"
    );
}

/// A bare hdconfig name (`learning_rate`) reached the Azure trial as a
/// positional argument, where a local sweep passes `--learning_rate`.
#[test]
fn a_bare_parameter_name_becomes_a_double_dash_flag_on_azure_as_locally() {
    let rc = load_rc("csiebler-hyperdrive.runconfig");
    let text = "sampling:\n  type: random\n  parameter_space:\n    - name: learning_rate\n      expression: uniform\n      values: [0.01, 0.1]\n    - name: -k\n      expression: choice\n      values: [1, 2]\npolicy:\n  type: NoTermination\nprimary_metric_name: acc\nprimary_metric_goal: maximize\nmax_total_runs: 4\n";
    let mut warnings = Vec::new();
    let hd =
        hdconfig::parse_str(text, std::path::Path::new("hd.yml"), &mut warnings).expect("parses");
    let job = jobs::sweep_job(&rc, &hd, &context(&rc, "bare")).expect("translates");
    assert_eq!(
        job.body["properties"]["trial"]["command"],
        "export training_dataset=${{inputs.training_dataset}}; \
         python train.py --data-path ${{inputs.training_dataset}} \
         --learning_rate ${{search_space.learning_rate}} -k ${{search_space.k}}"
    );
}

/// `target: amlcompute` (v1's run-scoped cluster) became a computeId for a
/// cluster named `amlcompute`, which the service answered with not-found.
#[test]
fn the_run_scoped_amlcompute_target_is_refused_by_name() {
    let mut rc = load_rc("csiebler-hyperdrive.runconfig");
    rc.target = "amlcompute".into();
    let err = jobs::command_job(&rc, &context(&rc, "x")).unwrap_err();
    assert!(
        matches!(err, JobSpecError::Unsupported { ref field, .. } if field == "target"),
        "{err}"
    );
}

/// A `data` and a `dataReferences` entry of one name overwrote each other.
#[test]
fn data_and_a_data_reference_of_one_name_are_refused() {
    let mut rc = load_rc("csiebler-hyperdrive.runconfig");
    let name = rc.data.keys().next().expect("the example has data").clone();
    let text = format!(
        "script: train.py\nenvironment: {{}}\ndataReferences:\n  {name}:\n    pathOnDataStore: a\n"
    );
    let mut warnings = Vec::new();
    let parsed = runconfig::parse_str(&text, std::path::Path::new("refs.runconfig"), &mut warnings)
        .expect("parses");
    rc.data_references = parsed.data_references;
    let err = jobs::command_job(&rc, &context(&rc, "x")).unwrap_err();
    assert!(err.to_string().contains("would both be job input"), "{err}");
}

/// The service puts the sampled text into the command unquoted, so the
/// shell split `sgd momentum` into two arguments; v1 passed one.
#[test]
fn a_choice_of_texts_with_spaces_reaches_the_script_as_one_argument() {
    let rc = load_rc("csiebler-hyperdrive.runconfig");
    let hd_with = |values: &str| {
        let text = format!(
            "sampling:\n  type: grid\n  parameter_space:\n    - name: opt\n      expression: choice\n      values: {values}\npolicy:\n  type: NoTermination\nprimary_metric_name: acc\nprimary_metric_goal: maximize\nmax_total_runs: 2\n"
        );
        let mut warnings = Vec::new();
        hdconfig::parse_str(&text, std::path::Path::new("hd.yml"), &mut warnings).expect("parses")
    };
    let command = |values: &str| {
        let job = jobs::sweep_job(&rc, &hd_with(values), &context(&rc, "q")).expect("translates");
        job.body["properties"]["trial"]["command"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(command(r#"["adam", "sgd"]"#).ends_with(" --opt ${{search_space.opt}}"));
    assert!(command(r#"["adam", "sgd momentum"]"#).ends_with(" --opt '${{search_space.opt}}'"));
    assert!(command(r#"["it's", "b"]"#).ends_with(r#" --opt "${{search_space.opt}}""#));
    let err = jobs::sweep_job(&rc, &hd_with(r#"["it's", "$x"]"#), &context(&rc, "q")).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot reach the script unchanged"),
        "{err}"
    );
}

/// `mpi.nodeCount`/`pytorch.nodeCount` were read and dropped (one node), and
/// 3 PyTorch processes on 2 nodes became 1 per node.
#[test]
fn the_distribution_sections_node_count_is_the_jobs_and_uneven_processes_are_refused() {
    let mut rc = load_rc("csiebler-hyperdrive.runconfig");
    rc.data.clear();
    rc.communicator = "Mpi".into();
    rc.mpi.node_count = 3;
    let job = jobs::command_job(&rc, &context(&rc, "d")).expect("translates");
    assert_eq!(job.body["properties"]["resources"]["instanceCount"], 3);
    rc.communicator = "None".into();
    rc.framework = "PyTorch".into();
    rc.pytorch.node_count = 2;
    rc.pytorch.process_count = Some(4);
    let job = jobs::command_job(&rc, &context(&rc, "d")).expect("translates");
    assert_eq!(job.body["properties"]["resources"]["instanceCount"], 2);
    assert_eq!(
        job.body["properties"]["distribution"]["processCountPerInstance"],
        2
    );
    rc.pytorch.process_count = Some(3);
    let err = jobs::command_job(&rc, &context(&rc, "d")).unwrap_err();
    assert!(err.to_string().contains("pytorch.processCount"), "{err}");
}

/// `priority` and `history.outputCollection: false` vanished without a word.
#[test]
fn settings_v2_has_no_field_for_are_announced() {
    let mut rc = load_rc("csiebler-hyperdrive.runconfig");
    rc.priority = Some(50);
    rc.history.output_collection = false;
    let job = jobs::command_job(&rc, &context(&rc, "w")).expect("translates");
    let said = job.warnings.join("\n");
    assert!(said.contains("priority (50)"), "{said}");
    assert!(said.contains("outputCollection"), "{said}");
}

#[test]
fn local_target_on_azure_is_an_error_with_a_hint() {
    let err = jobs::compute_id(&workspace(), "local").unwrap_err();
    assert!(err.to_string().contains("`target`"), "{err}");
}

#[test]
fn arguments_with_spaces_and_quotes_reach_the_script_unchanged() {
    let mut rc = load_rc("csiebler-hyperdrive.runconfig");
    rc.data.clear();
    rc.arguments = vec!["--name".into(), "my model's run".into(), "$HOME".into()];
    let job = jobs::command_job(&rc, &context(&rc, "q")).expect("translates");
    assert_eq!(
        job.body["properties"]["command"],
        r"python train.py --name 'my model'\''s run' '$HOME'"
    );
}

#[test]
fn top_level_environment_variables_win_over_the_environment_section() {
    let mut rc = load_rc("csiebler-hyperdrive.runconfig");
    rc.environment_variables = env_vars(&[("EXAMPLE_ENV_VAR", "top"), ("OTHER", "1")]);
    let job = jobs::command_job(&rc, &context(&rc, "e")).expect("translates");
    assert_eq!(
        job.body["properties"]["environmentVariables"],
        json!({"EXAMPLE_ENV_VAR": "top", "OTHER": "1"})
    );
}

#[test]
fn max_run_duration_becomes_the_command_timeout_and_the_trial_timeout() {
    let mut rc = load_rc("csiebler-hyperdrive.runconfig");
    rc.max_run_duration_seconds = Some(7200);
    let job = jobs::command_job(&rc, &context(&rc, "t")).expect("translates");
    assert_eq!(
        job.body["properties"]["limits"],
        json!({"jobLimitsType": "Command", "timeout": "PT2H"})
    );
    let hd = load_hd("azure-docs-hdconfig.yml");
    let job = jobs::sweep_job(&rc, &hd, &context(&rc, "t")).expect("translates");
    assert_eq!(job.body["properties"]["limits"]["trialTimeout"], "PT2H");
    assert_eq!(job.body["properties"]["limits"]["timeout"], "PT1H40M");
}

#[test]
fn search_space_keys_that_collide_are_an_error() {
    let rc = load_rc("csiebler-hyperdrive.runconfig");
    let mut hd = load_hd("csiebler-hyperdrive_config.hdconfig.yml");
    hd.parameter_space.push(Parameter {
        name: "-c".into(),
        expression: Expression::Choice(vec![json!(1)]),
    });
    let err = jobs::sweep_job(&rc, &hd, &context(&rc, "c")).unwrap_err();
    assert!(err.to_string().contains("search space key 'c'"), "{err}");
}

#[test]
fn anonymous_environment_body_is_a_schema_valid_environment_version() {
    let rc = load_rc("generated-azureml-core-1.57.0/.azureml/docker");
    let conda_path =
        examples_dir().join("generated-azureml-core-1.57.0/.azureml/conda_dependencies.yml");
    let raw = std::fs::read_to_string(conda_path).expect("conda file");
    // As `run submit-script` sends it: the SDK's PyYAML re-dump.
    let conda = azml::arm::conda::sdk_conda_text(&raw)
        .expect("valid YAML")
        .expect("not empty");
    let plan = environment::plan(&rc.environment, Some(&conda)).expect("plans");
    // `name: default-environment` without a version is an inline definition, not a reference.
    let EnvironmentPlan::Anonymous(fallback) = plan else {
        panic!("expected an anonymous environment, got {plan:?}");
    };
    assert_schema_valid(
        &request_model("EnvironmentVersions_CreateOrUpdate"),
        &fallback.body,
    );
    assert_eq!(fallback.name, "CliV2AnonymousEnvironment");
    insta::assert_json_snapshot!(
        "environment_anonymous_generated_docker",
        json!({"name": fallback.name, "version": fallback.version, "body": fallback.body})
    );
}

#[test]
fn schema_check_rejects_what_the_service_would_reject() {
    // Guards the guard: an unknown key or a missing environmentId must fail validation.
    let rc = load_rc("csiebler-hyperdrive.runconfig");
    let mut job = jobs::command_job(&rc, &context(&rc, "g"))
        .expect("translates")
        .body;
    job["properties"]["scriptName"] = json!("train.py");
    let unknown = std::panic::catch_unwind(|| assert_schema_valid(&job_model(), &job));
    assert!(unknown.is_err(), "unknown key accepted");
    let mut job = jobs::command_job(&rc, &context(&rc, "g"))
        .expect("translates")
        .body;
    job["properties"]
        .as_object_mut()
        .map(|p| p.remove("environmentId"));
    let missing = std::panic::catch_unwind(|| assert_schema_valid(&job_model(), &job));
    assert!(missing.is_err(), "missing environmentId accepted");
}

// ---------------------------------------------------------------------------
// Code upload against Azurite (through a counting, fault-injecting proxy).

#[path = "common/azurite.rs"]
mod azurite;

use azml::arm::blob::{BlobFolder, RetryPolicy};
use azml::arm::code_upload::{self, PreviousUpload, UploadCache};
use azurite::{Azurite, BlobProxy, ProxyStats};

fn write_file(root: &std::path::Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, content).expect("write");
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 6,
        base: std::time::Duration::from_millis(5),
        max_delay: std::time::Duration::from_millis(50),
    }
}

/// A pending-upload folder in `container` reached through the proxy.
fn pending_folder(
    proxy: &BlobProxy,
    azurite: &Azurite,
    container: &str,
    prefix: &str,
) -> BlobFolder {
    let sas_uri = format!(
        "{}/{container}/{prefix}?{}",
        proxy.account_url(),
        azurite.sas
    );
    BlobFolder::new(reqwest::Client::new(), &sas_uri, fast_retries()).expect("SAS URL parses")
}

fn snapshot_of(root: &std::path::Path, cache: Option<&UploadCache>) -> code_upload::Snapshot {
    let files = code_upload::list_source_files(root, &[]).expect("lists");
    code_upload::hash_snapshot(root, files, cache).expect("hashes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_is_byte_exact_and_a_one_file_change_sends_only_that_file() {
    let Some(azurite) = azurite::start() else {
        return;
    };
    let proxy = BlobProxy::start(azurite.addr).await;
    azurite.create_container("code").await;
    let src = tempfile::tempdir().expect("tempdir");
    write_file(src.path(), "train.py", b"print('hello')\n");
    write_file(src.path(), "pkg/util file.py", b"X = 1\n");
    write_file(src.path(), "data/blob.bin", &vec![7u8; 300_000]);
    write_file(src.path(), ".amlignore", b"*.log\n");
    write_file(src.path(), "debug.log", b"ignored");

    let first = snapshot_of(src.path(), None);
    let folder = pending_folder(&proxy, &azurite, "code", "LocalUpload/first");
    let bar = indicatif::ProgressBar::hidden();
    let report = code_upload::upload_snapshot(&first, &folder, None, ("c1", "1"), &bar)
        .await
        .expect("uploads");
    assert_eq!(report.files_uploaded, 4);
    for rel in [
        ".amlignore",
        "data/blob.bin",
        "pkg/util file.py",
        "train.py",
    ] {
        let expected = std::fs::read(src.path().join(rel)).expect("read source");
        let blob_name = format!("LocalUpload/first/{}", rel.replace(' ', "%20"));
        let stored = azurite.get_blob("code", &blob_name).await;
        assert_eq!(stored.as_deref(), Some(expected.as_slice()), "{rel}");
    }
    assert_eq!(
        azurite
            .get_blob("code", "LocalUpload/first/debug.log")
            .await,
        None
    );
    let metadata = azurite
        .blob_metadata("code", "LocalUpload/first/.amlignore")
        .await;
    assert_eq!(
        metadata,
        [
            ("name".to_string(), "c1".to_string()),
            ("upload_status".to_string(), "completed".to_string()),
            ("version".to_string(), "1".to_string()),
        ]
    );

    // One file changes: only its bytes travel; the rest is copied server-side.
    let cache = UploadCache::after_upload(&first, Some(folder.url_without_sas()), None);
    write_file(src.path(), "train.py", b"print('hello, again')\n");
    let second = snapshot_of(src.path(), Some(&cache));
    assert!(!second.from_cache);
    assert_ne!(second.content_hash, first.content_hash);
    proxy.stats.reset();
    let next = pending_folder(&proxy, &azurite, "code", "LocalUpload/second");
    let previous = PreviousUpload {
        folder: next.sibling(&folder.url_without_sas()).expect("sibling"),
        files: cache.files.clone(),
    };
    let report = code_upload::upload_snapshot(&second, &next, Some(&previous), ("c2", "1"), &bar)
        .await
        .expect("uploads incrementally");
    assert_eq!((report.files_uploaded, report.files_copied), (1, 3));
    assert_eq!(
        ProxyStats::get(&proxy.stats.put_body_bytes),
        b"print('hello, again')\n".len() as u64
    );
    for rel in [".amlignore", "data/blob.bin", "train.py"] {
        let expected = std::fs::read(src.path().join(rel)).expect("read source");
        let stored = azurite
            .get_blob("code", &format!("LocalUpload/second/{rel}"))
            .await;
        assert_eq!(stored.as_deref(), Some(expected.as_slice()), "{rel}");
    }
}

/// Server-side copy needs a SAS that can read the previous snapshot. Azure
/// ML's pending-upload SAS is container-scoped (`sr=c`); with read permission
/// in the same container the copy works. When it cannot read the source (no
/// `r`, another container) Azure answers 403 CannotVerifyCopySource and azml
/// uploads the bytes instead, so the snapshot is complete either way. Azurite
/// never checks the copy source's authorization, so the proxy plays Azure's
/// refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_copy_needs_a_readable_source_and_falls_back_to_upload() {
    let Some(azurite) = azurite::start() else {
        return;
    };
    let proxy = BlobProxy::start(azurite.addr).await;
    azurite.create_container("wsblobs").await;
    let src = tempfile::tempdir().expect("tempdir");
    write_file(src.path(), "train.py", b"print(1)\n");
    write_file(src.path(), "lib/big.bin", &vec![3u8; 200_000]);
    let folder_with = |container: &str, prefix: &str, permissions: &str| {
        let sas = azurite::container_sas(container, permissions);
        let uri = format!("{}/{container}/{prefix}?{sas}", proxy.account_url());
        BlobFolder::new(reqwest::Client::new(), &uri, fast_retries()).expect("SAS URL parses")
    };
    let bar = indicatif::ProgressBar::hidden();
    let first = snapshot_of(src.path(), None);
    let first_folder = folder_with("wsblobs", "LocalUpload/one", "rcwl");
    code_upload::upload_snapshot(&first, &first_folder, None, ("c", "1"), &bar)
        .await
        .expect("first upload with a container SAS");
    let cache = UploadCache::after_upload(&first, Some(first_folder.url_without_sas()), None);
    write_file(src.path(), "train.py", b"print(2)\n");
    let second = snapshot_of(src.path(), Some(&cache));

    let container = "wsblobs";
    for (refused, prefix, copied) in [
        (false, "LocalUpload/two", 1),
        (true, "LocalUpload/three", 0),
    ] {
        let next = folder_with(container, prefix, "rcwl");
        let previous = PreviousUpload {
            folder: next
                .sibling(&first_folder.url_without_sas())
                .expect("sibling"),
            files: cache.files.clone(),
        };
        proxy.stats.reset();
        proxy
            .stats
            .refuse_copies
            .store(refused, std::sync::atomic::Ordering::SeqCst);
        let report =
            code_upload::upload_snapshot(&second, &next, Some(&previous), ("c", "2"), &bar)
                .await
                .unwrap_or_else(|e| panic!("copy refused: {refused}: {e}"));
        assert_eq!(
            (report.files_uploaded, report.files_copied),
            (2 - copied, copied),
            "copy refused: {refused}"
        );
        assert_eq!(
            ProxyStats::get(&proxy.stats.refused_copies),
            u64::from(refused)
        );
        let expected_bytes = if copied == 1 { 9 } else { 9 + 200_000 };
        assert_eq!(
            ProxyStats::get(&proxy.stats.put_body_bytes),
            expected_bytes,
            "copy refused: {refused}"
        );
        for rel in ["lib/big.bin", "train.py"] {
            let expected = std::fs::read(src.path().join(rel)).expect("read source");
            let stored = azurite
                .get_blob(container, &format!("{prefix}/{rel}"))
                .await;
            assert_eq!(
                stored.as_deref(),
                Some(expected.as_slice()),
                "{container} {rel}"
            );
        }
    }
}

#[test]
fn unchanged_folder_reuses_the_cached_hash_without_reading_files() {
    let src = tempfile::tempdir().expect("tempdir");
    write_file(src.path(), "train.py", b"print(1)\n");
    let first = snapshot_of(src.path(), None);
    let cache = UploadCache::after_upload(&first, Some("http://x/c/p".into()), Some("id".into()));
    // Same size, same mtime, same inode, different bytes: only a cache hit
    // (no read) can still report the old hash.
    let path = src.path().join("train.py");
    let mtime = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    std::io::Write::write_all(&mut &file, b"print(2)\n").expect("overwrite");
    file.set_modified(mtime).expect("restore mtime");
    drop(file);
    let again = snapshot_of(src.path(), Some(&cache));
    assert!(again.from_cache);
    assert_eq!(again.content_hash, first.content_hash);
    let fresh = snapshot_of(src.path(), None);
    assert_ne!(
        fresh.content_hash, first.content_hash,
        "without the cache the change is seen"
    );
}

#[test]
fn content_hash_equals_the_python_sdk_hash() {
    // Pinned by running azure-ai-ml 1.35.2's own
    // `get_content_hash(path, get_ignore_file(path))` on these committed folders.
    let tree =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/azjobs/hash-tree");
    for (folder, expected) in [
        (
            "",
            "16858812c9626f0b173779845d95355c08c9fdc2f5c3b487d4d850432954a58e",
        ),
        (
            "pkg",
            "0cb24f335c2768ac3f04865fa89b9574f9b88359eac606232d703ba34e2203c9",
        ),
        (
            "Data",
            "bac470f4c324fe20b8de9b8baa0ddad6e96778db679365c0a303aa424aefefde",
        ),
    ] {
        let root = tree.join(folder);
        assert_eq!(
            snapshot_of(&root, None).content_hash,
            expected,
            "folder '{folder}'"
        );
    }
    let files = code_upload::list_source_files(&tree, &[]).expect("lists");
    let rels: Vec<_> = files.iter().map(|f| f.rel.as_str()).collect();
    assert_eq!(
        rels,
        [
            ".amlignore",
            "Data/b.csv",
            "data2/a.csv",
            "naïve.txt",
            "pkg/__init__.py",
            "pkg/Sub/deep.txt",
            "README.md",
            "train.py"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_file_goes_through_blocks_and_injected_503s_are_retried() {
    let Some(azurite) = azurite::start() else {
        return;
    };
    let proxy = BlobProxy::start(azurite.addr).await;
    azurite.create_container("big").await;
    let src = tempfile::tempdir().expect("tempdir");
    let big: Vec<u8> = (0..50 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    write_file(src.path(), "model.bin", &big);
    for i in 0..20 {
        write_file(
            src.path(),
            &format!("src/m{i}.py"),
            format!("V = {i}\n").as_bytes(),
        );
    }
    proxy
        .stats
        .fail_every_nth_put
        .store(3, std::sync::atomic::Ordering::SeqCst);
    let snapshot = snapshot_of(src.path(), None);
    let folder = pending_folder(&proxy, &azurite, "big", "LocalUpload/x");
    let bar = indicatif::ProgressBar::hidden();
    let report = code_upload::upload_snapshot(&snapshot, &folder, None, ("n", "1"), &bar)
        .await
        .expect("uploads despite 503s");
    assert_eq!(report.files_uploaded, 21);
    assert!(
        ProxyStats::get(&proxy.stats.injected_503) >= 5,
        "503s were injected"
    );
    // 50 MiB in 8 MiB blocks = 7 Put Block + 1 Put Block List, plus 20 Put Blob + 1 metadata.
    let successful_puts =
        ProxyStats::get(&proxy.stats.puts) - ProxyStats::get(&proxy.stats.injected_503);
    assert_eq!(successful_puts, 7 + 1 + 20 + 1);
    let stored = azurite
        .get_blob("big", "LocalUpload/x/model.bin")
        .await
        .expect("model.bin stored");
    assert!(stored == big, "model.bin differs after block upload");
    for i in 0..20 {
        let stored = azurite
            .get_blob("big", &format!("LocalUpload/x/src/m{i}.py"))
            .await;
        assert_eq!(stored, Some(format!("V = {i}\n").into_bytes()));
    }
}

// ---------------------------------------------------------------------------
// Submission through the real binary: fake Azure ML service + Azurite.

#[path = "common/fake_jobs.rs"]
mod fake_jobs;

use fake_jobs::FakeJobs;

/// Azurite, the counting proxy in front of it, and the fake service, on one runtime.
struct Cloud {
    _rt: tokio::runtime::Runtime,
    azurite: Azurite,
    proxy: BlobProxy,
    fake: FakeJobs,
    cache: tempfile::TempDir,
}

fn cloud() -> Option<Cloud> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let azurite = azurite::start()?;
    let proxy = rt.block_on(BlobProxy::start(azurite.addr));
    rt.block_on(azurite.create_container("azureml-blobstore"));
    let container = format!("{}/azureml-blobstore", proxy.account_url());
    // Like the service: a SAS scoped to the workspace's blob container.
    let sas = azurite::container_sas("azureml-blobstore", "rcwl");
    let fake = FakeJobs::start(&container, &sas);
    Some(Cloud {
        _rt: rt,
        azurite,
        proxy,
        fake,
        cache: tempfile::tempdir().expect("cache dir"),
    })
}

/// A v1 project attached to the fake workspace, with a runconfig and hdconfig.
fn azure_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("project dir");
    let root = dir.path();
    let config = json!({
        "subscription_id": fake_jobs::SUB,
        "resource_group": fake_jobs::RG,
        "workspace_name": fake_jobs::WS,
    });
    write_file(root, ".azureml/config.json", config.to_string().as_bytes());
    write_file(
        root,
        ".azureml/train.runconfig",
        b"script: train.py\ntarget: cpu-cluster\nframework: Python\nenvironment:\n  python:\n    userManagedDependencies: false\n    condaDependenciesFile: conda.yml\n  docker:\n    baseImage: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04\n",
    );
    write_file(
        root,
        "conda.yml",
        b"name: train\ndependencies:\n  - python=3.10\n",
    );
    write_file(root, "train.py", b"import sys\nprint(sys.argv)\n");
    write_file(root, "lib/util.py", b"X = 1\n");
    write_file(
        root,
        "hd.yml",
        b"sampling:\n  type: random\n  parameter_space:\n  - name: --lr\n    expression: uniform\n    values: [0.01, 0.1]\npolicy:\n  type: BanditPolicy\n  slack_factor: 0.1\nprimary_metric_name: accuracy\nprimary_metric_goal: maximize\nmax_total_runs: 4\nmax_concurrent_runs: 2\nmax_duration_minutes: 30\n",
    );
    dir
}

/// `azml <group> <command> --path <project> <rest…>` (the script's own
/// arguments come last, so `--path` must precede them).
fn azml(cloud: &Cloud, project: &std::path::Path, args: &[&str]) -> std::process::Output {
    azml_with_cache(cloud, project, cloud.cache.path(), args)
}

/// `azml` with its own upload cache folder (a fresh one = another machine).
fn azml_with_cache(
    cloud: &Cloud,
    project: &std::path::Path,
    cache: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    let (command, rest) = args.split_at(2.min(args.len()));
    assert_cmd::Command::cargo_bin("azml")
        .expect("azml binary")
        .args(command)
        .arg("--path")
        .arg(project)
        .args(rest)
        .env("AZML_ARM_ENDPOINT", &cloud.fake.base)
        .env("AZML_ACCESS_TOKEN", fake_jobs::TOKEN)
        .env("AZML_CACHE_DIR", cache)
        .env("AZML_JOB_POLL_MS", "10")
        .env("AZML_RETRY_BASE_MS", "1")
        .env_remove("AZURE_SUBSCRIPTION_ID")
        .env_remove("AZML_LOCAL_WORKSPACE")
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .expect("azml runs")
}

fn stdout_json(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn assert_no_violations(fake: &FakeJobs) {
    let violations = fake.state().violations.clone();
    assert!(
        violations.is_empty(),
        "schema/protocol violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn submit_script_uploads_code_runs_the_job_and_streams_each_log_line_once() {
    let Some(cloud) = cloud() else { return };
    let project = azure_project();
    let output = azml(
        &cloud,
        project.path(),
        &[
            "run",
            "submit-script",
            "-c",
            "train",
            "-e",
            "exp",
            "train.py",
            "--lr",
            "0.1",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(0), "stderr:\n{stderr}");
    let run = stdout_json(&output);
    assert_eq!(run["status"], "Completed");
    assert_eq!(run["target"], "cpu-cluster");
    assert_eq!(run["experimentName"], "exp");
    let run_id = run["runId"].as_str().expect("runId");
    assert!(run_id.starts_with("exp_"), "{run_id}");
    for epoch in 1..=3 {
        let line = format!("epoch {epoch} loss");
        assert_eq!(
            stderr.matches(&line).count(),
            1,
            "'{line}' exactly once in:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains(fake_jobs::LOG_SIG),
        "a log SAS leaked:\n{stderr}"
    );
    assert!(!stderr.contains(fake_jobs::TOKEN), "the token leaked");
    assert_no_violations(&cloud.fake);

    let job = cloud
        .fake
        .state()
        .jobs
        .get(run_id)
        .cloned()
        .expect("job stored");
    assert_eq!(job["properties"]["command"], "python train.py --lr 0.1");
    assert!(
        job["properties"]["environmentId"]
            .as_str()
            .unwrap_or_default()
            .contains("/environments/CliV2AnonymousEnvironment/versions/")
    );
    let folder = cloud
        .fake
        .state()
        .pending_uploads
        .first()
        .cloned()
        .expect("one pending upload");
    let prefix = folder
        .split("/azureml-blobstore/")
        .nth(1)
        .expect("container path")
        .to_string();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for rel in [
        "train.py",
        "lib/util.py",
        "conda.yml",
        "hd.yml",
        ".azureml/train.runconfig",
    ] {
        let stored = rt.block_on(
            cloud
                .azurite
                .get_blob("azureml-blobstore", &format!("{prefix}/{rel}")),
        );
        let expected = std::fs::read(project.path().join(rel)).expect("source");
        assert_eq!(stored, Some(expected), "{rel}");
    }
}

#[test]
fn resubmitting_unchanged_code_sends_nothing_and_one_change_sends_one_file() {
    let Some(cloud) = cloud() else { return };
    let project = azure_project();
    let submit = |cloud: &Cloud| {
        let output = azml(
            cloud,
            project.path(),
            &[
                "run",
                "submit-script",
                "-c",
                "train",
                "-e",
                "exp",
                "--async",
                "train.py",
            ],
        );
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout_json(&output)
    };
    let first = submit(&cloud);
    assert_eq!(cloud.fake.requests("PUT", "/codes/").len(), 1);
    let code_of = |cloud: &Cloud, run: &Value| {
        let id = run["runId"].as_str().expect("runId").to_string();
        cloud.fake.state().jobs[&id]["properties"]["codeId"].clone()
    };

    cloud.proxy.stats.reset();
    let second = submit(&cloud);
    assert_eq!(
        ProxyStats::get(&cloud.proxy.stats.requests),
        0,
        "unchanged resubmit touched blob storage"
    );
    assert_eq!(
        cloud.fake.requests("PUT", "/codes/").len(),
        1,
        "no second code version"
    );
    assert_eq!(
        cloud.fake.requests("PUT", "/environments/").len(),
        1,
        "environment reused"
    );
    assert_eq!(code_of(&cloud, &second), code_of(&cloud, &first));

    let changed = b"import sys\nprint('v2', sys.argv)\n";
    write_file(project.path(), "train.py", changed);
    cloud.proxy.stats.reset();
    let third = submit(&cloud);
    assert_eq!(
        ProxyStats::get(&cloud.proxy.stats.put_body_bytes),
        changed.len() as u64
    );
    assert_ne!(code_of(&cloud, &third), code_of(&cloud, &first));
    assert_no_violations(&cloud.fake);
}

/// A folder this machine never uploaded is uploaded while it is hashed; when
/// the hash is already known (another machine, or the SDK, uploaded the same
/// folder) the code version is reused and no second one is registered.
#[test]
fn a_new_folder_uploads_while_hashing_and_a_known_one_is_reused_by_another_machine() {
    let Some(cloud) = cloud() else { return };
    let project = azure_project();
    let weights: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    write_file(project.path(), "data/weights.bin", &weights);
    let args = [
        "run",
        "submit-script",
        "-c",
        "train",
        "-e",
        "exp",
        "--async",
        "train.py",
    ];
    let first = azml(&cloud, project.path(), &args);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let folder = cloud.fake.state().pending_uploads[0].clone();
    let prefix = folder
        .split("/azureml-blobstore/")
        .nth(1)
        .expect("folder in the container")
        .to_string();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for (rel, expected) in [
        ("data/weights.bin", weights.clone()),
        (
            "train.py",
            std::fs::read(project.path().join("train.py")).expect("read"),
        ),
    ] {
        let stored = rt.block_on(
            cloud
                .azurite
                .get_blob("azureml-blobstore", &format!("{prefix}/{rel}")),
        );
        assert_eq!(stored.as_deref(), Some(expected.as_slice()), "{rel}");
    }
    let order: Vec<String> = cloud
        .fake
        .state()
        .log
        .iter()
        .filter(|l| l.path.contains("/codes/"))
        .map(|l| {
            format!(
                "{} {}",
                l.method,
                l.path.rsplit('/').next().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        order,
        ["POST startPendingUpload", "GET versions", "PUT 1"],
        "the upload starts before the hash lookup"
    );
    let codes = cloud.fake.requests("PUT", "/codes/");
    assert_eq!(codes.len(), 1);
    let code: Value = serde_json::from_str(&codes[0].body).expect("code body");
    assert_eq!(code["properties"]["codeUri"], folder.as_str());

    let elsewhere = tempfile::tempdir().expect("another cache");
    let second = azml_with_cache(&cloud, project.path(), elsewhere.path(), &args);
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(
        cloud.fake.requests("PUT", "/codes/").len(),
        1,
        "the known hash is reused"
    );
    let code_ids: Vec<Value> = cloud
        .fake
        .state()
        .jobs
        .values()
        .map(|j| j["properties"]["codeId"].clone())
        .collect();
    assert_eq!(code_ids.len(), 2);
    assert_eq!(code_ids[0], code_ids[1]);
    assert_no_violations(&cloud.fake);
}

#[test]
fn submit_hyperdrive_puts_a_schema_valid_sweep_job() {
    let Some(cloud) = cloud() else { return };
    let project = azure_project();
    let output = azml(
        &cloud,
        project.path(),
        &[
            "run",
            "submit-hyperdrive",
            "--hyperdrive-configuration-name",
            "hd.yml",
            "-c",
            "train",
            "-e",
            "sweep",
            "--async",
            "train.py",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run = stdout_json(&output);
    let job = cloud.fake.state().jobs[run["runId"].as_str().expect("runId")].clone();
    assert_eq!(job["properties"]["jobType"], "Sweep");
    assert_eq!(
        job["properties"]["trial"]["command"],
        "python train.py --lr ${{search_space.lr}}"
    );
    assert_eq!(
        job["properties"]["searchSpace"]["lr"],
        json!(["uniform", [0.01, 0.1]])
    );
    assert_no_violations(&cloud.fake);
}

#[test]
fn a_failed_job_exits_1_after_streaming_its_logs() {
    let Some(cloud) = cloud() else { return };
    cloud.fake.state().final_status = "Failed".into();
    let project = azure_project();
    let output = azml(
        &cloud,
        project.path(),
        &[
            "run",
            "submit-script",
            "-c",
            "train",
            "-e",
            "exp",
            "train.py",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stdout_json(&output)["status"], "Failed");
    assert!(stderr.contains("epoch 3 loss"), "{stderr}");
}

#[test]
fn pyspark_runconfig_on_azure_fails_before_uploading_anything() {
    let Some(cloud) = cloud() else { return };
    let project = azure_project();
    write_file(
        project.path(),
        ".azureml/spark.runconfig",
        b"script: train.py\ntarget: cpu-cluster\nframework: PySpark\nenvironment: {}\n",
    );
    let output = azml(
        &cloud,
        project.path(),
        &[
            "run",
            "submit-script",
            "-c",
            "spark",
            "-e",
            "exp",
            "train.py",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("framework"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(cloud.fake.state().pending_uploads.is_empty());
}

#[test]
fn run_show_list_cancel_and_download_logs_speak_v1_run_json() {
    let Some(cloud) = cloud() else { return };
    let project = azure_project();
    let submit = |experiment: &str| {
        let output = azml(
            &cloud,
            project.path(),
            &[
                "run",
                "submit-script",
                "-c",
                "train",
                "-e",
                experiment,
                "--async",
                "train.py",
            ],
        );
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout_json(&output)["runId"]
            .as_str()
            .expect("runId")
            .to_string()
    };
    let first = submit("exp-a");
    let second = submit("exp-a");
    let _other = submit("exp-b");

    let listed = azml(&cloud, project.path(), &["run", "list", "-e", "exp-a"]);
    assert_eq!(
        listed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let ids: Vec<String> = stdout_json(&listed)
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["runId"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        ids,
        [second.clone(), first.clone()],
        "newest first, exp-a only"
    );

    let shown = azml(&cloud, project.path(), &["run", "show", "-r", &first]);
    assert_eq!(
        shown.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let run = stdout_json(&shown);
    assert_eq!(run["runId"], first.as_str());
    assert_eq!(run["target"], "cpu-cluster");
    assert_eq!(run["startTimeUtc"], "2026-11-25T08:00:00Z");

    let tagged = azml(
        &cloud,
        project.path(),
        &[
            "run",
            "update",
            "-r",
            &first,
            "--add-tag",
            "best",
            "--add-tag",
            "lr=0.1",
        ],
    );
    assert_eq!(
        tagged.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&tagged.stderr)
    );
    assert_eq!(
        stdout_json(&tagged)["tags"],
        json!({"best": "", "lr": "0.1"})
    );

    let canceled = azml(&cloud, project.path(), &["run", "cancel", "-r", &second]);
    assert_eq!(
        canceled.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&canceled.stderr)
    );
    assert_eq!(stdout_json(&canceled)["status"], "Canceled");

    let ids_of = |args: &[&str]| -> Vec<String> {
        let output = azml(&cloud, project.path(), args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout_json(&output)
            .as_array()
            .expect("a list")
            .iter()
            .map(|r| r["runId"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        ids_of(&["run", "list", "-e", "exp-a", "--last", "1"]),
        std::slice::from_ref(&second)
    );
    assert_eq!(
        ids_of(&["run", "list", "-e", "exp-a", "--status", "Canceled"]),
        std::slice::from_ref(&second)
    );

    let missing = azml(
        &cloud,
        project.path(),
        &["run", "show", "-r", "exp-a_1_deadbeef"],
    );
    assert_eq!(
        missing.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );

    // Let the first job produce logs, then download them.
    let followed = azml(
        &cloud,
        project.path(),
        &["run", "monitor-logs", "-r", &first],
    );
    assert_eq!(
        followed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&followed.stderr)
    );
    let logs_dir = tempfile::tempdir().expect("logs dir");
    let downloaded = azml(
        &cloud,
        project.path(),
        &[
            "run",
            "download-logs",
            "-r",
            &first,
            "-d",
            logs_dir.path().to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(
        downloaded.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&downloaded.stderr)
    );
    let text = std::fs::read_to_string(logs_dir.path().join("user_logs/std_log.txt"))
        .expect("log downloaded");
    assert_eq!(text.lines().count(), 3, "{text}");
    assert_no_violations(&cloud.fake);
}

#[test]
fn following_a_sweep_streams_its_latest_trial_logs() {
    let Some(cloud) = cloud() else { return };
    let project = azure_project();
    let output = azml(
        &cloud,
        project.path(),
        &[
            "run",
            "submit-hyperdrive",
            "--hyperdrive-configuration-name",
            "hd.yml",
            "-c",
            "train",
            "-e",
            "sweep",
            "train.py",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout_json(&output)["runType"], "hyperdrive");
    assert_eq!(stderr.matches("[trial ").count(), 1, "{stderr}");
    for epoch in 1..=3 {
        assert_eq!(
            stderr.matches(&format!("epoch {epoch} loss")).count(),
            1,
            "{stderr}"
        );
    }
}

/// `git` in a test project; None (skip) when git is missing and CI does not require it.
fn git(dir: &std::path::Path, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output();
    match output {
        Ok(out) => {
            assert!(
                out.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
        Err(e) => {
            assert!(
                std::env::var("AZML_TEST_REQUIRE_ALL").as_deref() != Ok("1"),
                "AZML_TEST_REQUIRE_ALL=1 but git cannot run: {e}"
            );
            eprintln!("skipping: git cannot run: {e}");
            None
        }
    }
}

#[test]
fn a_git_checkout_gives_the_sdks_git_properties_and_the_studio_link_is_printed() {
    let Some(cloud) = cloud() else { return };
    let project = azure_project();
    let root = project.path();
    let Some(_) = git(root, &["init", "-q", "-b", "main"]) else {
        return;
    };
    git(root, &["config", "user.email", "t@example.com"]);
    git(root, &["config", "user.name", "t"]);
    git(
        root,
        &[
            "remote",
            "add",
            "origin",
            "https://user:s3cret@github.com/example/repo.git",
        ],
    );
    git(root, &["add", "-A"]);
    git(root, &["commit", "-qm", "first"]);
    let head = git(root, &["rev-parse", "HEAD"]).expect("HEAD");
    write_file(root, "train.py", b"print('uncommitted change')\n");

    let output = azml(
        &cloud,
        root,
        &[
            "run",
            "submit-script",
            "-c",
            "train",
            "-e",
            "exp",
            "train.py",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let run_id = stdout_json(&output)["runId"]
        .as_str()
        .expect("runId")
        .to_string();
    let job = cloud.fake.state().jobs[&run_id].clone();
    let props = &job["properties"]["properties"];
    assert_eq!(props["mlflow.source.git.commit"], head.as_str());
    assert_eq!(props["mlflow.source.git.branch"], "main");
    assert_eq!(
        props["mlflow.source.git.repoURL"],
        "https://github.com/example/repo.git"
    );
    assert_eq!(props["azureml.git.dirty"], "True");
    assert!(!job.to_string().contains("s3cret"), "credentials leaked");
    assert!(
        stderr.contains(&format!(
            "Web View: https://ml.azure.com/runs/{run_id}?wsid="
        )),
        "{stderr}"
    );
    // The conda file went out as the SDK re-dumps it (keys sorted, PyYAML layout).
    let env = cloud.fake.requests("PUT", "/environments/");
    let body: Value = serde_json::from_str(&env[0].body).expect("env body");
    assert_eq!(
        body["properties"]["condaFile"],
        "dependencies:\n- python=3.10\nname: train\n"
    );
    assert_no_violations(&cloud.fake);
}

#[test]
fn ctrl_c_stops_watching_says_how_to_cancel_and_leaves_the_job_running() {
    let Some(cloud) = cloud() else { return };
    cloud.fake.state().final_status = "Running".into();
    let project = azure_project();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_azml"))
        .args(["run", "submit-script", "--path"])
        .arg(project.path())
        .args(["-c", "train", "-e", "exp", "train.py"])
        .env("AZML_ARM_ENDPOINT", &cloud.fake.base)
        .env("AZML_ACCESS_TOKEN", fake_jobs::TOKEN)
        .env("AZML_CACHE_DIR", cloud.cache.path())
        .env("AZML_JOB_POLL_MS", "10")
        .env_remove("AZML_LOCAL_WORKSPACE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("azml starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !seen.iter().any(|l: &String| l.contains("epoch 3 loss")) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("no logs streamed before the deadline: {seen:?}");
            }
        }
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let status = child.wait().expect("azml exits");
    seen.extend(rx.iter());
    let stderr = seen.join("\n");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("the job keeps running"), "{stderr}");
    assert!(stderr.contains("azml run cancel -r "), "{stderr}");
    assert!(cloud.fake.requests("POST", "/cancel").is_empty());
    let state = cloud.fake.state();
    let job = state.jobs.values().next().expect("the job");
    assert_eq!(job["properties"]["status"], "Running");
}

#[test]
fn run_list_with_parent_run_id_lists_a_sweeps_trials_from_run_history() {
    let Some(cloud) = cloud() else { return };
    let project = azure_project();
    let output = azml(
        &cloud,
        project.path(),
        &[
            "run",
            "submit-hyperdrive",
            "--hyperdrive-configuration-name",
            "hd.yml",
            "-c",
            "train",
            "-e",
            "sweep",
            "train.py",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sweep = stdout_json(&output)["runId"]
        .as_str()
        .expect("runId")
        .to_string();
    let list = |extra: &[&str]| {
        let mut args = vec!["run", "list", "--parent-run-id", sweep.as_str()];
        args.extend_from_slice(extra);
        let output = azml(&cloud, project.path(), &args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout_json(&output)
    };
    let children = list(&[]);
    let trial = format!("{sweep}_0");
    assert_eq!(children.as_array().map(Vec::len), Some(1), "{children}");
    assert_eq!(children[0]["runId"], trial.as_str());
    assert_eq!(children[0]["parentRunId"], sweep.as_str());
    assert_eq!(children[0]["experimentName"], "sweep");
    assert_eq!(children[0]["status"], "Running");
    assert_eq!(children[0]["startTimeUtc"], "2026-11-25T08:01:00Z");
    assert_eq!(list(&["--status", "Completed"]), json!([]));
    let missing = azml(
        &cloud,
        project.path(),
        &["run", "list", "--parent-run-id", "sweep_1_deadbeef"],
    );
    assert_eq!(missing.status.code(), Some(3));
    let child_queries = cloud.fake.requests("GET", "/children");
    assert!(
        !child_queries.is_empty()
            && child_queries
                .iter()
                .all(|r| r.path.starts_with("/history/v1.0/")
                    && r.query.contains("api-version=v1.0")),
        "children come from Run History"
    );
    assert_no_violations(&cloud.fake);
}

#[test]
fn experiment_create_is_idempotent_and_list_follows_continuation_tokens() {
    let Some(cloud) = cloud() else { return };
    let project = azure_project();
    for name in ["exp-a", "exp-b", "exp-c"] {
        let created = azml(
            &cloud,
            project.path(),
            &["experiment", "create", "-e", name],
        );
        assert_eq!(
            created.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
        assert_eq!(stdout_json(&created)["name"], name);
        assert!(String::from_utf8_lossy(&created.stderr).contains("Created experiment"));
    }
    let again = azml(
        &cloud,
        project.path(),
        &["experiment", "create", "-e", "exp-a"],
    );
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        stdout_json(&again)["experimentId"],
        cloud.fake.state().experiments["exp-a"]["experimentId"],
        "the existing experiment, not a new one"
    );
    assert_eq!(cloud.fake.state().experiments.len(), 3);

    let listed = azml(&cloud, project.path(), &["experiment", "list"]);
    assert_eq!(
        listed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let names: Vec<Value> = stdout_json(&listed)
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| e["name"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("exp-a"), json!("exp-b"), json!("exp-c")],
        "both pages"
    );
    assert_no_violations(&cloud.fake);
}

#[test]
fn run_metrics_on_azure_prints_one_value_or_the_list_of_values_per_name() {
    let Some(cloud) = cloud() else { return };
    let project = azure_project();
    let run_id = "exp_1764000000_1234abcd";
    cloud.fake.state().metrics.insert(
        run_id.into(),
        vec![
            ("loss".into(), json!(0.9)),
            ("accuracy".into(), json!(0.5)),
            ("loss".into(), json!(0.5)),
            ("loss".into(), json!(0.25)),
            ("epochs".into(), json!(3)),
        ],
    );
    let output = azml(&cloud, project.path(), &["run", "metrics", "-r", run_id]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout_json(&output),
        json!({"accuracy": 0.5, "epochs": 3, "loss": [0.9, 0.5, 0.25]})
    );
    assert_no_violations(&cloud.fake);

    let missing = azml(
        &cloud,
        project.path(),
        &["run", "metrics", "-r", "no-such-run"],
    );
    assert_eq!(
        missing.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

/// The contract check itself must be able to fail, or every "schema-valid" test above is empty.
#[test]
fn the_schema_check_rejects_unknown_missing_and_mistyped_fields() {
    let model = request_model("Jobs_CreateOrUpdate");
    let good = json!({"properties": {
        "jobType": "Command",
        "command": "python train.py",
        "environmentId": "azureml:env:1",
    }});
    assert_eq!(schema::violations(&model, &good), Vec::<String>::new());
    for bad in [
        json!({"properties": {"jobType": "Command", "command": "x", "environmentId": "e", "bogus": 1}}),
        json!({"properties": {"jobType": "Command", "environmentId": "e"}}),
        json!({"properties": {"jobType": "Command", "command": 5, "environmentId": "e"}}),
    ] {
        assert!(!schema::violations(&model, &bad).is_empty(), "{bad}");
    }
}

/// The upload progress bar is drawn on stderr when stderr is a terminal (and
/// cleared when done), never on stdout: a CI script piping `-o json` still
/// gets clean JSON while a developer watching the terminal sees the bytes go.
#[test]
fn the_upload_progress_bar_draws_on_a_terminal_stderr_and_stdout_stays_json() {
    use std::io::Read;
    use std::os::fd::OwnedFd;
    let Some(cloud) = cloud() else { return };
    let project = azure_project();
    // Big enough that the upload is still going when the first frame is drawn.
    let big: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    write_file(project.path(), "data/weights.bin", &big);
    let pty = nix::pty::openpty(None, None).expect("a pseudo-terminal");
    let terminal: OwnedFd = pty.slave;
    let mut screen = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        // EIO once the last writer (azml's stderr) is closed.
        while let Ok(n) = screen.read(&mut chunk) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&seen).to_string()
    });
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_azml"))
        .args(["run", "submit-script", "--path"])
        .arg(project.path())
        .args(["-c", "train", "-e", "exp", "--async", "train.py"])
        .env("AZML_ARM_ENDPOINT", &cloud.fake.base)
        .env("AZML_ACCESS_TOKEN", fake_jobs::TOKEN)
        .env("AZML_CACHE_DIR", cloud.cache.path())
        .env("AZML_RETRY_BASE_MS", "1")
        .env_remove("AZURE_SUBSCRIPTION_ID")
        .env_remove("AZML_LOCAL_WORKSPACE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(terminal)
        .spawn()
        .expect("azml starts");
    let output = child.wait_with_output().expect("azml ends");
    let screen = reader.join().expect("pty reader");
    assert_eq!(output.status.code(), Some(0), "terminal:\n{screen}");
    let run = stdout_json(&output);
    assert!(
        run["runId"]
            .as_str()
            .unwrap_or_default()
            .starts_with("exp_")
    );
    assert!(
        screen.contains("Uploading code") && screen.contains("MiB"),
        "no progress bar on the terminal:\n{screen:?}"
    );
    assert!(!screen.contains("sig="), "a SAS reached the terminal");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("Uploading code"),
        "the progress bar went to stdout"
    );
}

/// Found by a translation review: the environment a runconfig names was
/// dropped or replaced without a word. Inline `condaDependencies` and
/// `assetId` were ignored, a user-managed `interpreterPath` became `python`,
/// and a name + version that is not registered ran on the bare default image.
#[test]
fn the_runconfigs_environment_is_the_one_the_job_gets() {
    let Some(cloud) = cloud() else { return };
    let project = azure_project();
    let root = project.path();
    let head = "script: train.py\ntarget: cpu-cluster\nenvironment:\n";
    write_file(
        root,
        ".azureml/inline.runconfig",
        format!("{head}  python:\n    condaDependencies:\n      name: x\n      dependencies: [python=3.11]\n").as_bytes(),
    );
    write_file(
        root,
        ".azureml/asset.runconfig",
        format!(
            "{head}  assetId: azureml://registries/azureml/environments/sklearn-1.5/versions/1\n"
        )
        .as_bytes(),
    );
    write_file(
        root,
        ".azureml/managed.runconfig",
        format!("{head}  python:\n    userManagedDependencies: true\n    interpreterPath: /opt/conda/envs/my env/bin/python\n").as_bytes(),
    );
    write_file(
        root,
        ".azureml/named.runconfig",
        format!("{head}  name: myenv\n  version: \"3\"\n").as_bytes(),
    );
    let submit = |config: &str| {
        azml(
            &cloud,
            root,
            &[
                "run",
                "submit-script",
                "-c",
                config,
                "-e",
                "env",
                "--async",
                "train.py",
            ],
        )
    };
    let job_of = |out: &std::process::Output| {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let run = stdout_json(out);
        cloud.fake.state().jobs[run["runId"].as_str().expect("runId")].clone()
    };

    job_of(&submit("inline"));
    let envs = cloud.fake.requests("PUT", "/environments/");
    let body: Value = serde_json::from_str(&envs.last().expect("an environment PUT").body).unwrap();
    assert_eq!(
        body["properties"]["condaFile"],
        "dependencies:\n- python=3.11\nname: x\n"
    );

    let job = job_of(&submit("asset"));
    assert_eq!(
        job["properties"]["environmentId"],
        "azureml://registries/azureml/environments/sklearn-1.5/versions/1"
    );

    let job = job_of(&submit("managed"));
    assert_eq!(
        job["properties"]["command"],
        "'/opt/conda/envs/my env/bin/python' train.py"
    );

    let named = submit("named");
    assert_eq!(named.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&named.stderr);
    assert!(
        stderr.contains("environment myenv version 3 does not exist"),
        "{stderr}"
    );
    assert_no_violations(&cloud.fake);
}
