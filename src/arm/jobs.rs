//! Pure translation of v1 files into Azure ML v2 job bodies: a runconfig (after
//! CLI overrides) becomes a `CommandJob`, a runconfig + hdconfig a `SweepJob`.
//!
//! No I/O here: the caller uploads the code, resolves the environment and hands
//! in their ARM ids; this module only decides what the PUT body says. Anything
//! v1 could say that v2 cannot is an error naming the field, never dropped.

use crate::model::hdconfig::HyperDriveConfig;
use crate::model::runconfig::RunConfig;
use crate::shell::quote;
use crate::sweep::policy::Slack;
use crate::sweep::{Expression, Goal, Parameter, PolicySpec, SamplingKind};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Why a v1 configuration cannot become a v2 job.
#[derive(Debug, thiserror::Error)]
pub enum JobSpecError {
    /// A v1 field whose meaning the current API has no way to express.
    #[error("runconfig field `{field}` = {value:?} cannot be expressed as an Azure ML v2 job")]
    Unsupported {
        field: String,
        value: String,
        hint: String,
    },
    /// A value that is well-formed v1 but unusable here (bad run id, clashing names…).
    #[error("{message}")]
    Invalid {
        message: String,
        hint: Option<String>,
    },
}

impl crate::error::ExitCoded for JobSpecError {
    fn exit_code(&self) -> i32 {
        crate::error::exit::ERROR
    }
    fn hint(&self) -> Option<String> {
        match self {
            JobSpecError::Unsupported { hint, .. } => Some(hint.clone()),
            JobSpecError::Invalid { hint, .. } => hint.clone(),
        }
    }
}

pub type SpecResult<T> = Result<T, JobSpecError>;

/// How a job input reaches the trial's compute (v1 `mechanism` / `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    Mount,
    Download,
    Direct,
}

impl DeliveryMode {
    fn wire(self) -> &'static str {
        match self {
            DeliveryMode::Mount => "ReadOnlyMount",
            DeliveryMode::Download => "Download",
            DeliveryMode::Direct => "Direct",
        }
    }
}

/// Where one v1 `data:` / `dataReferences:` entry points.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// A registered dataset by name (version None = latest).
    Dataset {
        name: String,
        version: Option<String>,
    },
    /// A dataset consumed by its saved id only: v2 has no way to reference it.
    DatasetId(String),
    /// A path on a datastore (`dataReferences`).
    Datastore { datastore: String, path: String },
}

/// One v1 data entry the trial consumes, with every name v1 let the script use
/// to find it (so the command can be rewritten to `${{inputs.<name>}}`).
#[derive(Debug, Clone, PartialEq)]
pub struct DataInput {
    pub name: String,
    /// The runconfig key path, for messages (`data.mnist`, `dataReferences.raw`).
    pub field: String,
    pub source: DataSource,
    pub mode: DeliveryMode,
    /// `environmentVariableName` (data) — `$NAME` in arguments means this input.
    pub env_var: Option<String>,
    /// `pathOnCompute`: v2 decides the path itself; arguments equal to it are rewritten.
    pub path_on_compute: Option<String>,
}

/// The distributed-training settings of a runconfig (`mpi`, `pytorch`, `tensorflow`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DistributionSettings {
    pub mpi_process_count_per_node: Option<u32>,
    pub pytorch_process_count: Option<u32>,
    pub tensorflow_worker_count: Option<u32>,
    pub tensorflow_parameter_server_count: Option<u32>,
}

impl DistributionSettings {
    pub fn from_run_config(rc: &RunConfig) -> Self {
        DistributionSettings {
            mpi_process_count_per_node: Some(rc.mpi.process_count_per_node),
            pytorch_process_count: rc.pytorch.process_count,
            tensorflow_worker_count: Some(rc.tensorflow.worker_count),
            tensorflow_parameter_server_count: Some(rc.tensorflow.parameter_server_count),
        }
    }
}

/// Everything the caller resolved that the job body refers to.
#[derive(Debug, Clone, Default)]
pub struct JobContext {
    pub run_id: String,
    pub experiment: String,
    pub display_name: Option<String>,
    /// ARM id of the uploaded code version (None: no code, e.g. a `command` using only the image).
    pub code_id: Option<String>,
    /// ARM id (or `azureml://registries/…` id) of the environment.
    pub environment_id: String,
    /// ARM id of the compute; the caller maps `target` to it (see [`compute_id`]).
    pub compute_id: String,
    pub tags: BTreeMap<String, String>,
    /// Job properties (git provenance as the SDK sets it, …).
    pub properties: BTreeMap<String, String>,
    /// `--seed` of submit-hyperdrive (Random sampling only).
    pub seed: Option<u64>,
}

/// A translated job and what the user should hear about it.
#[derive(Debug, Clone)]
pub struct JobBody {
    pub body: Value,
    pub warnings: Vec<String>,
}

/// `<experiment>_<unix seconds>_<8 hex>`, the v1 run id shape users' scripts parse.
pub fn new_run_id(experiment: &str, unix_seconds: u64, random: u32) -> String {
    format!("{experiment}_{unix_seconds}_{random:08x}")
}

/// The ARM id of a workspace's compute: v2 references computes by id, v1 by name.
pub fn compute_id(ws: &crate::config::AzureWorkspaceRef, target: &str) -> SpecResult<String> {
    if target.eq_ignore_ascii_case("local") {
        return Err(JobSpecError::Unsupported {
            field: "target".into(),
            value: target.into(),
            hint: "an Azure workspace runs jobs on its computes: pass `--ct <compute name>`, \
                   or run locally against the local workspace (no .azureml/config.json)"
                .into(),
        });
    }
    if target.is_empty() {
        return Err(JobSpecError::Invalid {
            message: "no compute target: the runconfig has no `target`".into(),
            hint: Some("pass `--ct <compute name>`".into()),
        });
    }
    Ok(format!("{}/computes/{target}", workspace_id(ws)))
}

/// The ARM id of the workspace, the prefix of every asset id.
pub fn workspace_id(ws: &crate::config::AzureWorkspaceRef) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.MachineLearningServices/workspaces/{}",
        ws.subscription_id, ws.resource_group, ws.workspace_name
    )
}

/// ISO 8601 duration the service accepts (`PT1H30M`, `P1DT2H`, `PT0S`).
pub fn iso8601_duration(total_seconds: u64) -> String {
    let days = total_seconds / 86_400;
    let hours = total_seconds % 86_400 / 3_600;
    let minutes = total_seconds % 3_600 / 60;
    let seconds = total_seconds % 60;
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if hours + minutes + seconds > 0 || days == 0 {
        out.push('T');
        if hours > 0 {
            out.push_str(&format!("{hours}H"));
        }
        if minutes > 0 {
            out.push_str(&format!("{minutes}M"));
        }
        if seconds > 0 || total_seconds == 0 {
            out.push_str(&format!("{seconds}S"));
        }
    }
    out
}

/// `PUT …/jobs/{runId}` body for `run submit-script`.
pub fn command_job(rc: &RunConfig, ctx: &JobContext) -> SpecResult<JobBody> {
    let mut warnings = Vec::new();
    let pieces = trial_pieces(rc, ctx, &mut warnings)?;
    let mut props = job_common(rc, ctx, "Command");
    props.insert("command".into(), json!(pieces.command));
    merge_trial(&mut props, pieces.trial);
    if let Some(seconds) = rc.max_run_duration_seconds {
        props.insert(
            "limits".into(),
            json!({"jobLimitsType": "Command", "timeout": iso8601_duration(seconds)}),
        );
    }
    insert_io(&mut props, pieces.inputs, pieces.outputs);
    Ok(JobBody {
        body: json!({ "properties": Value::Object(props) }),
        warnings,
    })
}

/// `PUT …/jobs/{runId}` body for `run submit-hyperdrive`.
pub fn sweep_job(rc: &RunConfig, hd: &HyperDriveConfig, ctx: &JobContext) -> SpecResult<JobBody> {
    let mut warnings = Vec::new();
    let pieces = trial_pieces(rc, ctx, &mut warnings)?;
    let space = search_space(&hd.parameter_space)?;
    let mut command = pieces.command;
    for ((flag, key), parameter) in space.keys.iter().zip(&hd.parameter_space) {
        let placeholder = quoted_placeholder(parameter, &format!("${{{{search_space.{key}}}}}"))?;
        command.push_str(&format!(" {} {placeholder}", quote(flag)));
    }
    let mut trial = pieces.trial;
    trial.insert("command".into(), json!(command));

    let mut props = job_common(rc, ctx, "Sweep");
    props.insert("trial".into(), Value::Object(trial));
    props.insert("searchSpace".into(), space.encoded);
    props.insert("samplingAlgorithm".into(), sampling(hd.sampling, ctx.seed));
    props.insert(
        "objective".into(),
        json!({"primaryMetric": hd.primary_metric_name, "goal": goal(hd.primary_metric_goal)}),
    );
    if let Some(policy) = early_termination(&hd.policy) {
        props.insert("earlyTermination".into(), policy);
    }
    props.insert("limits".into(), sweep_limits(rc, hd));
    insert_io(&mut props, pieces.inputs, pieces.outputs);
    Ok(JobBody {
        body: json!({ "properties": Value::Object(props) }),
        warnings,
    })
}

/// The service puts a sampled value into the command as it is, before the
/// shell reads it: a `choice` of texts with spaces or shell characters
/// (`"sgd momentum"`) must be quoted there to stay one argument, as v1
/// passed it. Quotes are chosen so that every value survives.
fn quoted_placeholder(parameter: &Parameter, placeholder: &str) -> SpecResult<String> {
    let Expression::Choice(values) = &parameter.expression else {
        return Ok(placeholder.to_string());
    };
    let texts: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
    if texts.iter().all(|t| crate::shell::is_plain(t)) {
        return Ok(placeholder.to_string());
    }
    if !texts.iter().any(|t| t.contains('\'')) {
        return Ok(format!("'{placeholder}'"));
    }
    if !texts.iter().any(|t| t.contains(['"', '$', '`', '\\'])) {
        return Ok(format!("\"{placeholder}\""));
    }
    Err(JobSpecError::Invalid {
        message: format!(
            "hdconfig parameter '{}': a choice holds both a single quote and a shell \
             character (\", $, `, \\), which cannot reach the script unchanged on Azure",
            parameter.name
        ),
        hint: Some("use values without quotes, e.g. names the script maps to the real text".into()),
    })
}

/// The parts a Command job and a Sweep trial share.
struct TrialPieces {
    command: String,
    /// codeId, environmentId, environmentVariables, resources, distribution.
    trial: Map<String, Value>,
    inputs: Map<String, Value>,
    outputs: Map<String, Value>,
}

fn trial_pieces(
    rc: &RunConfig,
    ctx: &JobContext,
    warnings: &mut Vec<String>,
) -> SpecResult<TrialPieces> {
    reject_framework(rc)?;
    reject_inexpressible(rc)?;
    warn_unsent(rc, warnings);
    let (data, outputs, output_rewrites) = data_inputs(rc)?;
    let (inputs, mut rewrites) = data_bindings(&data, warnings)?;
    rewrites.extend(output_rewrites);
    let command = with_data_environment(base_command(rc, &rewrites, warnings)?, &data, &outputs);
    let mut trial = Map::new();
    if let Some(code) = &ctx.code_id {
        trial.insert("codeId".into(), json!(code));
    }
    trial.insert("environmentId".into(), json!(ctx.environment_id));
    let env_vars = rc.merged_environment_variables();
    if !env_vars.is_empty() {
        trial.insert("environmentVariables".into(), json!(env_vars));
    }
    let settings = DistributionSettings::from_run_config(rc);
    if let Some(distribution) = distribution(rc, &settings)? {
        trial.insert("distribution".into(), distribution);
    }

    trial.insert("resources".into(), resources(rc));
    Ok(TrialPieces {
        command,
        trial,
        inputs,
        outputs,
    })
}

/// Keys every job kind carries (jobType, names, compute, identity, tags, properties).
fn job_common(rc: &RunConfig, ctx: &JobContext, job_type: &str) -> Map<String, Value> {
    let mut props = Map::new();
    if rc.credential_passthrough {
        props.insert("identity".into(), json!({"identityType": "UserIdentity"}));
    }
    props.insert("jobType".into(), json!(job_type));
    props.insert("experimentName".into(), json!(ctx.experiment));
    props.insert(
        "displayName".into(),
        json!(
            ctx.display_name
                .clone()
                .unwrap_or_else(|| ctx.run_id.clone())
        ),
    );
    props.insert("computeId".into(), json!(ctx.compute_id));
    if !ctx.tags.is_empty() {
        props.insert("tags".into(), json!(ctx.tags));
    }
    if !ctx.properties.is_empty() {
        props.insert("properties".into(), json!(ctx.properties));
    }
    props
}

fn merge_trial(props: &mut Map<String, Value>, trial: Map<String, Value>) {
    for (key, value) in trial {
        props.insert(key, value);
    }
}

fn insert_io(
    props: &mut Map<String, Value>,
    inputs: Map<String, Value>,
    outputs: Map<String, Value>,
) {
    if !inputs.is_empty() {
        props.insert("inputs".into(), Value::Object(inputs));
    }
    if !outputs.is_empty() {
        props.insert("outputs".into(), Value::Object(outputs));
    }
}

/// Frameworks whose runtime v2 Command jobs do not have.
fn reject_framework(rc: &RunConfig) -> SpecResult<()> {
    let framework = rc.framework.to_ascii_lowercase();
    match framework.as_str() {
        "" | "python" | "pytorch" | "tensorflow" => Ok(()),
        "pyspark" => Err(JobSpecError::Unsupported {
            field: "framework".into(),
            value: rc.framework.clone(),
            hint: "v2 runs Spark code as Spark jobs (`az ml job create` with `type: spark`); \
                   azml submits Command and Sweep jobs only — use framework: Python"
                .into(),
        }),
        _ => Err(JobSpecError::Unsupported {
            field: "framework".into(),
            value: rc.framework.clone(),
            hint: "Azure ML v2 supports Python, PyTorch and TensorFlow jobs".into(),
        }),
    }
}

/// Distribution from v1 framework + communicator.
fn distribution(rc: &RunConfig, settings: &DistributionSettings) -> SpecResult<Option<Value>> {
    let framework = rc.framework.to_ascii_lowercase();
    let communicator = rc.communicator.to_ascii_lowercase();
    let per_node = |count: Option<u32>| count.unwrap_or(1).max(1);
    let value = match (framework.as_str(), communicator.as_str()) {
        (_, "mpi" | "openmpi" | "intelmpi") => Some(json!({
            "distributionType": "Mpi",
            "processCountPerInstance": per_node(settings.mpi_process_count_per_node),
        })),
        ("pytorch", _) => {
            let nodes = instance_count(rc);
            let total = settings.pytorch_process_count.unwrap_or(nodes);
            if !total.is_multiple_of(nodes) {
                return Err(JobSpecError::Unsupported {
                    field: "pytorch.processCount".into(),
                    value: total.to_string(),
                    hint: format!(
                        "v2 starts the same number of processes on each of the {nodes} nodes: \
                         use a multiple of {nodes}"
                    ),
                });
            }
            Some(json!({
                "distributionType": "PyTorch",
                "processCountPerInstance": (total / nodes).max(1),
            }))
        }
        ("tensorflow", "parameterserver") => Some(json!({
            "distributionType": "TensorFlow",
            "workerCount": settings.tensorflow_worker_count.unwrap_or(1),
            "parameterServerCount": settings.tensorflow_parameter_server_count.unwrap_or(1),
        })),
        (_, "" | "none") => None,
        (_, "parameterserver") => {
            return Err(JobSpecError::Unsupported {
                field: "communicator".into(),
                value: rc.communicator.clone(),
                hint: "ParameterServer needs framework: TensorFlow".into(),
            });
        }
        (_, "nccl" | "gloo") => {
            return Err(JobSpecError::Unsupported {
                field: "communicator".into(),
                value: rc.communicator.clone(),
                hint: "Nccl/Gloo are PyTorch backends: use framework: PyTorch".into(),
            });
        }
        _ => {
            return Err(JobSpecError::Unsupported {
                field: "communicator".into(),
                value: rc.communicator.clone(),
                hint: "use None, Mpi, OpenMpi, IntelMpi or ParameterServer".into(),
            });
        }
    };
    Ok(value)
}

/// The job's node count: `nodeCount`, else the older `mpi.nodeCount` /
/// `pytorch.nodeCount` of the runconfig's distribution (v1 read those when
/// the top-level count was left at 1).
fn instance_count(rc: &RunConfig) -> u32 {
    if rc.node_count > 1 {
        return rc.node_count;
    }
    let framework = rc.framework.to_ascii_lowercase();
    let communicator = rc.communicator.to_ascii_lowercase();
    let section = if matches!(communicator.as_str(), "mpi" | "openmpi" | "intelmpi") {
        rc.mpi.node_count
    } else if framework == "pytorch" {
        rc.pytorch.node_count
    } else {
        1
    };
    section.max(1)
}

/// `resources`: node count, and the docker/kubernetes settings v2 keeps there.
fn resources(rc: &RunConfig) -> Value {
    let mut resources = json!({"instanceCount": instance_count(rc)});
    let docker = &rc.environment.docker;
    let shm = docker.shm_size.as_deref().or(rc.docker.shm_size.as_deref());
    if let Some(shm) = shm.filter(|s| !s.is_empty()) {
        resources["shmSize"] = json!(shm);
    }
    let mut args = docker.arguments.clone();
    args.extend(rc.docker.arguments.iter().cloned());
    if !args.is_empty() {
        resources["dockerArgsList"] = json!(args);
    }
    if let Some(instance_type) = rc
        .kubernetes_compute
        .instance_type
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        resources["instanceType"] = json!(instance_type);
    }
    resources
}

/// Settings v2 jobs have no field for but that do not change what runs:
/// said once, not dropped in silence.
fn warn_unsent(rc: &RunConfig, warnings: &mut Vec<String>) {
    if let Some(priority) = rc.priority {
        warnings.push(format!(
            "priority ({priority}) is not sent: v2 jobs have no job priority (the cluster's \
             queue decides)"
        ));
    }
    if !rc.history.output_collection {
        warnings.push(
            "history.outputCollection: false is not sent: v2 always uploads ./outputs".into(),
        );
    }
}

/// Runconfig sections with content that v2 jobs have no place for.
fn reject_inexpressible(rc: &RunConfig) -> SpecResult<()> {
    let unsupported = |field: &str, value: String, hint: &str| {
        Err(JobSpecError::Unsupported {
            field: field.into(),
            value,
            hint: hint.into(),
        })
    };
    let spark = &rc.environment.spark;
    if !spark.packages.is_empty() || !spark.repositories.is_empty() {
        return unsupported(
            "environment.spark",
            format!("{} packages", spark.packages.len()),
            "Spark packages need a v2 Spark job; remove the section for a Python job",
        );
    }
    let databricks = &rc.environment.databricks;
    let libraries = databricks.maven_libraries.len()
        + databricks.pypi_libraries.len()
        + databricks.rcran_libraries.len()
        + databricks.jar_libraries.len()
        + databricks.egg_libraries.len();
    if libraries > 0 {
        return unsupported(
            "environment.databricks",
            format!("{libraries} libraries"),
            "Databricks computes are not job targets in v2",
        );
    }
    if rc.environment.r.as_ref().is_some_and(|r| !r.is_null()) {
        return unsupported(
            "environment.r",
            "R section".into(),
            "v2 environments are docker images + conda: install R in the image",
        );
    }
    if rc.target.eq_ignore_ascii_case("amlcompute") {
        return unsupported(
            "target",
            rc.target.clone(),
            "`amlcompute` was v1's run-scoped cluster, which v2 does not have: create a cluster \
             (`azml computetarget create amlcompute`) and pass `--ct <name>`",
        );
    }
    if let Some(vm) = rc.amlcompute.vm_size.as_deref().filter(|v| !v.is_empty()) {
        return unsupported(
            "amlcompute.vmSize",
            vm.into(),
            "v2 has no run-scoped clusters: create one (`azml computetarget create amlcompute`) and pass `--ct`",
        );
    }
    if !rc.datacaches.is_empty() {
        return unsupported(
            "datacaches",
            format!("{} entries", rc.datacaches.len()),
            "remove datacaches; v2 mounts inputs directly",
        );
    }
    if let Some((name, _)) = rc.output_data.iter().next() {
        return unsupported(
            &format!("outputData.{name}"),
            "output dataset".into(),
            "use a dataReferences entry with mode: upload (it becomes a v2 job output)",
        );
    }
    let registry = &rc.environment.docker.base_image_registry;
    if registry.username.as_deref().is_some_and(|u| !u.is_empty()) || registry.password.is_some() {
        return unsupported(
            "environment.docker.baseImageRegistry",
            registry.address.clone().unwrap_or_default(),
            "v2 pulls private images through the workspace's registry connection; \
             push the image to the workspace ACR or register the environment",
        );
    }
    Ok(())
}

/// v1 `data` and `dataReferences` as inputs; upload references as outputs.
fn data_inputs(rc: &RunConfig) -> SpecResult<(Vec<DataInput>, Map<String, Value>, Rewrites)> {
    let mut inputs = Vec::new();
    for (name, spec) in &rc.data {
        inputs.push(data_entry(name, spec)?);
    }
    let mut outputs = Map::new();
    let mut rewrites = Vec::new();
    for (name, reference) in &rc.data_references {
        let field = format!("dataReferences.{name}");
        if rc.data.contains_key(name) {
            return Err(JobSpecError::Invalid {
                message: format!("data.{name} and {field} would both be job input '{name}'"),
                hint: Some("rename one of them (and its references in the arguments)".into()),
            });
        }
        let datastore = reference
            .data_store_name
            .clone()
            .unwrap_or_else(|| "workspaceblobstore".into());
        let path = reference.path_on_data_store.clone().unwrap_or_default();
        let mode = reference.mode.to_ascii_lowercase();
        if mode == "upload" {
            let uri = format!(
                "azureml://datastores/{datastore}/paths/{}",
                path.trim_start_matches('/')
            );
            outputs.insert(
                name.clone(),
                json!({"jobOutputType": "uri_folder", "uri": uri, "mode": "Upload"}),
            );
            rewrites.push((
                format!("$AZUREML_DATAREFERENCE_{name}"),
                format!("${{{{outputs.{name}}}}}"),
            ));
            continue;
        }
        inputs.push(DataInput {
            name: name.clone(),
            source: DataSource::Datastore { datastore, path },
            mode: delivery_mode(&field, &mode)?,
            env_var: None,
            path_on_compute: reference.path_on_compute.clone(),
            field,
        });
    }
    Ok((inputs, outputs, rewrites))
}

fn data_entry(name: &str, spec: &crate::model::runconfig::DataSpec) -> SpecResult<DataInput> {
    let field = format!("data.{name}");
    let location = &spec.data_location;
    let source = if let Some(dataset) = &location.dataset {
        match (&dataset.name, &dataset.id) {
            (Some(dataset_name), _) => DataSource::Dataset {
                name: dataset_name.clone(),
                version: dataset
                    .version
                    .clone()
                    .filter(|v| !v.is_empty() && v != "latest"),
            },
            (None, Some(id)) => DataSource::DatasetId(id.clone()),
            (None, None) => {
                return Err(JobSpecError::Invalid {
                    message: format!("{field}.dataLocation.dataset has neither name nor id"),
                    hint: Some("name the registered dataset (and version)".into()),
                });
            }
        }
    } else if let Some(path) = &location.datapath {
        DataSource::Datastore {
            datastore: path
                .datastore_name
                .clone()
                .unwrap_or_else(|| "workspaceblobstore".into()),
            path: path.relative_path.clone().unwrap_or_default(),
        }
    } else {
        return Err(JobSpecError::Unsupported {
            field: format!("{field}.dataLocation"),
            value: location
                .uri
                .as_ref()
                .map(|u| u.to_string())
                .unwrap_or_default(),
            hint: "give a dataset (name + version) or a datapath (datastoreName + relativePath)"
                .into(),
        });
    };
    Ok(DataInput {
        name: name.to_string(),
        source,
        mode: delivery_mode(
            &format!("{field}.mechanism"),
            &spec.mechanism.to_ascii_lowercase(),
        )?,
        env_var: Some(spec.environment_variable_name.clone()),
        path_on_compute: spec.path_on_compute.clone(),
        field,
    })
}

fn delivery_mode(field: &str, mode: &str) -> SpecResult<DeliveryMode> {
    match mode {
        "mount" | "" => Ok(DeliveryMode::Mount),
        "download" => Ok(DeliveryMode::Download),
        "direct" => Ok(DeliveryMode::Direct),
        other => Err(JobSpecError::Unsupported {
            field: field.into(),
            value: other.into(),
            hint: "v2 inputs are mounted, downloaded or passed directly".into(),
        }),
    }
}

/// Text in v1 arguments that means a data input, and what replaces it.
type Rewrites = Vec<(String, String)>;

/// v1 data entries → v2 inputs/outputs, plus argument rewrites.
fn data_bindings(
    data: &[DataInput],
    warnings: &mut Vec<String>,
) -> SpecResult<(Map<String, Value>, Rewrites)> {
    let mut inputs = Map::new();
    let mut rewrites = Vec::new();
    for entry in data {
        check_input_name(entry)?;
        let placeholder = format!("${{{{inputs.{}}}}}", entry.name);
        let uri = match &entry.source {
            DataSource::Dataset { name, version } => match version {
                Some(v) => format!("azureml:{name}:{v}"),
                None => format!("azureml:{name}@latest"),
            },
            DataSource::Datastore { datastore, path } => {
                format!(
                    "azureml://datastores/{datastore}/paths/{}",
                    path.trim_start_matches('/')
                )
            }
            DataSource::DatasetId(id) => {
                return Err(JobSpecError::Unsupported {
                    field: format!("{}.dataLocation.dataset.id", entry.field),
                    value: id.clone(),
                    hint: "v2 jobs reference data by name and version: register the dataset \
                           and write `dataset: {name: …, version: …}`"
                        .into(),
                });
            }
        };
        inputs.insert(
            entry.name.clone(),
            json!({"jobInputType": "uri_folder", "uri": uri, "mode": entry.mode.wire()}),
        );
        rewrites.push((
            format!("DatasetConsumptionConfig:{}", entry.name),
            placeholder.clone(),
        ));
        rewrites.push((
            format!("$AZUREML_DATAREFERENCE_{}", entry.name),
            placeholder.clone(),
        ));
        if let Some(var) = entry.env_var.as_deref().filter(|v| !v.is_empty()) {
            rewrites.push((format!("${{{var}}}"), placeholder.clone()));
            rewrites.push((format!("${var}"), placeholder.clone()));
        }
        if let Some(path) = entry.path_on_compute.as_deref().filter(|p| !p.is_empty()) {
            warnings.push(format!(
                "{}.pathOnCompute ({path}) is chosen by Azure ML v2; arguments equal to it now \
                 receive the input's path (${{{{inputs.{}}}}})",
                entry.field, entry.name
            ));
            rewrites.push((format!("\0exact:{path}"), placeholder));
        }
    }
    Ok((inputs, rewrites))
}

fn check_input_name(entry: &DataInput) -> SpecResult<()> {
    let mut chars = entry.name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(JobSpecError::Invalid {
            message: format!(
                "{}: data name '{}' is not a valid v2 input name",
                entry.field, entry.name
            ),
            hint: Some("use letters, digits and underscores, starting with a letter".into()),
        })
    }
}

/// `python <script> <args…>` (or the runconfig's `command`), with data references rewritten.
fn base_command(
    rc: &RunConfig,
    rewrites: &Rewrites,
    warnings: &mut Vec<String>,
) -> SpecResult<String> {
    if let Some(command) = rc.command.as_deref().filter(|c| !c.trim().is_empty()) {
        return Ok(apply_rewrites_in_text(command, rewrites));
    }
    let Some(script) = rc.script.as_deref().filter(|s| !s.is_empty()) else {
        return Err(JobSpecError::Invalid {
            message: "nothing to run: the runconfig has neither `script` nor `command`".into(),
            hint: Some("pass the script: `azml run submit-script train.py …`".into()),
        });
    };
    let _ = warnings;
    let mut parts = vec![interpreter(rc), quote(script)];
    for arg in &rc.arguments {
        parts.push(quote_with_placeholders(&rewrite_argument(arg, rewrites)));
    }
    Ok(parts.join(" "))
}

/// v1 also told the script where its data is through environment variables
/// (a `data` entry's `environmentVariableName`, `AZUREML_DATAREFERENCE_<name>`
/// for a reference), which scripts read with `os.environ`. v2 sets neither,
/// so the command exports them from the inputs' and outputs' paths first.
fn with_data_environment(
    command: String,
    data: &[DataInput],
    outputs: &Map<String, Value>,
) -> String {
    let is_variable = crate::shell::is_env_name;
    let mut exports = Vec::new();
    for entry in data {
        let variable = match entry.env_var.as_deref() {
            Some(var) => var.to_string(),
            None => format!("AZUREML_DATAREFERENCE_{}", entry.name),
        };
        if is_variable(&variable) {
            exports.push(format!("{variable}=${{{{inputs.{}}}}}", entry.name));
        }
    }
    for name in outputs.keys() {
        let variable = format!("AZUREML_DATAREFERENCE_{name}");
        if is_variable(&variable) {
            exports.push(format!("{variable}=${{{{outputs.{name}}}}}"));
        }
    }
    if exports.is_empty() {
        command
    } else {
        format!("export {}; {command}", exports.join(" "))
    }
}

/// `python`, or the image's own interpreter when dependencies are
/// user-managed (`interpreterPath: /opt/conda/envs/x/bin/python`): v2 builds
/// no environment then, so the path v1 ran is the one that has the packages.
fn interpreter(rc: &RunConfig) -> String {
    let python = &rc.environment.python;
    let path = python.interpreter_path.trim();
    if python.user_managed_dependencies && !path.is_empty() {
        quote(path)
    } else {
        "python".into()
    }
}

/// One argument with data references replaced by `${{inputs.x}}`.
fn rewrite_argument(arg: &str, rewrites: &Rewrites) -> String {
    let exact = rewrites
        .iter()
        .find(|(from, _)| from.strip_prefix("\0exact:") == Some(arg));
    match exact {
        Some((_, to)) => to.clone(),
        None => apply_rewrites_in_text(arg, rewrites),
    }
}

/// Replaces each reference in one pass, taking the longest that matches and
/// only as a whole name: `$AZUREML_DATAREFERENCE_data` must not eat the start
/// of `$AZUREML_DATAREFERENCE_data2`, nor `$ds` the start of `$ds_other`.
fn apply_rewrites_in_text(text: &str, rewrites: &Rewrites) -> String {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let whole_name_at = |rest: &str, from: &str| {
        rest.starts_with(from)
            && !(from.ends_with(is_name_char) && rest[from.len()..].starts_with(is_name_char))
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let matched = rewrites
            .iter()
            .filter(|(from, _)| !from.starts_with('\0') && whole_name_at(rest, from))
            .max_by_key(|(from, _)| from.len());
        match matched {
            Some((from, to)) => {
                out.push_str(to);
                rest = &rest[from.len()..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// POSIX-shell quoting that leaves `${{…}}` placeholders readable: the service
/// substitutes them before the shell sees the line, so they may stay bare.
fn quote_with_placeholders(arg: &str) -> String {
    let stripped = strip_placeholders(arg);
    let bare_is_safe = if stripped.is_empty() {
        !arg.is_empty()
    } else {
        crate::shell::is_plain(&stripped)
    };
    if bare_is_safe {
        arg.to_string()
    } else {
        quote(arg)
    }
}

fn strip_placeholders(arg: &str) -> String {
    let mut rest = arg;
    let mut out = String::new();
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        match rest[start..].find("}}") {
            Some(end) => rest = &rest[start + end + 2..],
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The encoded search space and, in file order, each parameter's flag and key.
#[derive(Debug, Clone)]
pub struct SearchSpace {
    pub encoded: Value,
    pub keys: Vec<(String, String)>,
}

/// `{"key": ["choice", [[…]]]}`, … in the service's encoding; keys are the
/// parameter names without leading dashes, made valid identifiers.
pub fn search_space(parameters: &[Parameter]) -> SpecResult<SearchSpace> {
    let mut encoded = Map::new();
    let mut keys = Vec::new();
    for parameter in parameters {
        let key = search_space_key(&parameter.name);
        if encoded.contains_key(&key) {
            return Err(JobSpecError::Invalid {
                message: format!(
                    "hdconfig parameters '{}' and another one both become search space key '{key}'",
                    parameter.name
                ),
                hint: Some("give parameters names that differ in letters or digits".into()),
            });
        }
        encoded.insert(key.clone(), encode_expression(&parameter.expression));
        keys.push((parameter.flag(), key));
    }
    Ok(SearchSpace {
        encoded: Value::Object(encoded),
        keys,
    })
}

/// `--learning-rate` → `learning_rate`; `2nd` → `_2nd`.
pub fn search_space_key(name: &str) -> String {
    let trimmed = name.trim_start_matches('-');
    let mut key: String = trimmed
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
        key.insert(0, '_');
    }
    key
}

fn encode_expression(expression: &Expression) -> Value {
    match expression {
        Expression::Choice(values) => json!(["choice", [values]]),
        Expression::RandInt { upper } => json!(["randint", [upper]]),
        Expression::Uniform { min, max } => json!(["uniform", [min, max]]),
        Expression::QUniform { min, max, q } => json!(["quniform", [min, max, q]]),
        Expression::LogUniform { min, max } => json!(["loguniform", [min, max]]),
        Expression::QLogUniform { min, max, q } => json!(["qloguniform", [min, max, q]]),
        Expression::Normal { mu, sigma } => json!(["normal", [mu, sigma]]),
        Expression::QNormal { mu, sigma, q } => json!(["qnormal", [mu, sigma, q]]),
        Expression::LogNormal { mu, sigma } => json!(["lognormal", [mu, sigma]]),
        Expression::QLogNormal { mu, sigma, q } => json!(["qlognormal", [mu, sigma, q]]),
    }
}

fn sampling(kind: SamplingKind, seed: Option<u64>) -> Value {
    match kind {
        SamplingKind::Random => match seed {
            Some(seed) => json!({"samplingAlgorithmType": "Random", "seed": seed}),
            None => json!({"samplingAlgorithmType": "Random"}),
        },
        SamplingKind::Grid => json!({"samplingAlgorithmType": "Grid"}),
        SamplingKind::Bayesian => json!({"samplingAlgorithmType": "Bayesian"}),
    }
}

fn goal(goal: Goal) -> &'static str {
    match goal {
        Goal::Maximize => "Maximize",
        Goal::Minimize => "Minimize",
    }
}

fn early_termination(policy: &PolicySpec) -> Option<Value> {
    match policy {
        PolicySpec::Bandit {
            evaluation_interval,
            delay_evaluation,
            slack,
        } => {
            let mut value = json!({
                "policyType": "Bandit",
                "evaluationInterval": evaluation_interval,
                "delayEvaluation": delay_evaluation,
            });
            let (key, amount) = match slack {
                Slack::Factor(f) => ("slackFactor", f),
                Slack::Amount(a) => ("slackAmount", a),
            };
            value[key] = json!(amount);
            Some(value)
        }
        PolicySpec::MedianStopping {
            evaluation_interval,
            delay_evaluation,
        } => Some(json!({
            "policyType": "MedianStopping",
            "evaluationInterval": evaluation_interval,
            "delayEvaluation": delay_evaluation,
        })),
        PolicySpec::TruncationSelection {
            evaluation_interval,
            delay_evaluation,
            truncation_percentage,
        } => Some(json!({
            "policyType": "TruncationSelection",
            "evaluationInterval": evaluation_interval,
            "delayEvaluation": delay_evaluation,
            "truncationPercentage": truncation_percentage,
        })),
        PolicySpec::NoTermination => None,
    }
}

fn sweep_limits(rc: &RunConfig, hd: &HyperDriveConfig) -> Value {
    let mut limits = json!({
        "jobLimitsType": "Sweep",
        "maxTotalTrials": hd.max_total_runs,
        "maxConcurrentTrials": hd.max_concurrent_runs,
        "timeout": iso8601_duration(u64::from(hd.max_duration_minutes) * 60),
    });
    if let Some(seconds) = rc.max_run_duration_seconds {
        limits["trialTimeout"] = json!(iso8601_duration(seconds));
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_durations_match_what_the_service_parses() {
        assert_eq!(iso8601_duration(0), "PT0S");
        assert_eq!(iso8601_duration(59), "PT59S");
        assert_eq!(iso8601_duration(3600), "PT1H");
        assert_eq!(iso8601_duration(5400), "PT1H30M");
        assert_eq!(iso8601_duration(86_400), "P1D");
        assert_eq!(iso8601_duration(604_800 + 61), "P7DT1M1S");
    }

    #[test]
    fn search_space_keys_drop_dashes_and_become_identifiers() {
        assert_eq!(search_space_key("--learning-rate"), "learning_rate");
        assert_eq!(search_space_key("-c"), "c");
        assert_eq!(search_space_key("penalty"), "penalty");
        assert_eq!(search_space_key("--2nd"), "_2nd");
        assert_eq!(search_space_key("--"), "_");
    }

    #[test]
    fn placeholders_stay_bare_but_the_rest_is_quoted() {
        assert_eq!(quote_with_placeholders("${{inputs.x}}"), "${{inputs.x}}");
        assert_eq!(
            quote_with_placeholders("--d=${{inputs.x}}"),
            "--d=${{inputs.x}}"
        );
        assert_eq!(
            quote_with_placeholders("a b ${{inputs.x}}"),
            "'a b ${{inputs.x}}'"
        );
    }

    #[test]
    fn run_ids_have_the_v1_shape() {
        assert_eq!(
            new_run_id("exp", 1_700_000_000, 0xab),
            "exp_1700000000_000000ab"
        );
    }
}
