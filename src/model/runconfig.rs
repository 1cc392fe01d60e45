//! The v1 runconfig file (`.azureml/*.runconfig`, `-c NAME`).
//!
//! Every field of the azureml-core 1.57 format (plus the older ones real files
//! still carry) is read with its v1 default. Keys may be camelCase or
//! snake_case; unknown keys become warnings with the closest known key.

use super::yaml::{self, Doc, Fields, Node, Pos, Value};
use super::{ModelError, Warning};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The base image azureml-core 1.57 writes for new runconfigs.
pub const DEFAULT_BASE_IMAGE: &str =
    "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:20240709.v1";

/// Frameworks v1 accepted (canonical spelling; input is matched without case).
pub const FRAMEWORKS: &[&str] = &["Python", "PySpark", "CNTK", "TensorFlow", "PyTorch"];

/// Communicators v1 accepted across SDK versions.
pub const COMMUNICATORS: &[&str] = &[
    "None",
    "ParameterServer",
    "OpenMpi",
    "IntelMpi",
    "Mpi",
    "Gloo",
    "Nccl",
    "ParallelTask",
];

/// A parsed runconfig with v1 defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// Where it was read from (None when built in memory).
    pub source_file: Option<PathBuf>,
    pub script: Option<String>,
    pub arguments: Vec<String>,
    /// Alternative to `script` + `arguments`: a whole command line.
    pub command: Option<String>,
    pub target: String,
    /// Canonical spelling, one of [`FRAMEWORKS`].
    pub framework: String,
    /// Canonical spelling, one of [`COMMUNICATORS`].
    pub communicator: String,
    pub node_count: u32,
    pub max_run_duration_seconds: Option<u64>,
    /// Top-level `environmentVariables` (SDK ≥ 1.30), merged over the environment's.
    pub environment_variables: BTreeMap<String, String>,
    pub environment: Environment,
    pub priority: Option<i64>,
    pub history: HistorySection,
    pub spark: SparkConfiguration,
    /// The legacy top-level `docker` section (superseded by `environment.docker`).
    pub docker: LegacyDockerSection,
    pub hdi: HdiSection,
    pub tensorflow: TensorflowSection,
    pub mpi: MpiSection,
    pub pytorch: PyTorchSection,
    pub parallel_task: ParallelTaskSection,
    pub data_references: BTreeMap<String, DataReference>,
    pub data: BTreeMap<String, DataSpec>,
    /// `datacaches`, kept verbatim (only meaningful to the Azure service).
    pub datacaches: Vec<serde_json::Value>,
    pub output_data: BTreeMap<String, OutputDataSpec>,
    pub source_directory_data_store: Option<String>,
    pub amlcompute: AmlComputeSection,
    pub auto_cluster_compute_specification: Option<serde_json::Value>,
    pub kubernetes_compute: KubernetesComputeSection,
    pub credential_passthrough: bool,
    pub application_endpoints: BTreeMap<String, serde_json::Value>,
    /// Pre-1.0 keys real files still carry (`autoPrepareEnvironment`, `containerInstance`,
    /// …): accepted and kept verbatim, used by nothing.
    pub legacy: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Environment {
    pub name: Option<String>,
    pub version: Option<String>,
    pub environment_variables: BTreeMap<String, String>,
    pub python: PythonSection,
    pub docker: DockerSection,
    pub spark: SparkSection,
    pub databricks: DatabricksSection,
    /// The `r` section, kept verbatim.
    pub r: Option<serde_json::Value>,
    pub inferencing_stack_version: Option<String>,
    pub asset_id: Option<String>,
    /// The separate file, when `environment:` named one instead of a mapping.
    pub source_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PythonSection {
    pub interpreter_path: String,
    pub user_managed_dependencies: bool,
    pub conda_dependencies_file: Option<String>,
    pub base_conda_environment: Option<String>,
    /// Inline `condaDependencies` (2019 schema), kept verbatim.
    pub conda_dependencies: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DockerSection {
    pub enabled: bool,
    pub base_image: Option<String>,
    pub base_dockerfile: Option<String>,
    pub build_context: Option<String>,
    pub shared_volumes: bool,
    pub shm_size: Option<String>,
    pub arguments: Vec<String>,
    pub base_image_registry: ContainerRegistry,
    pub platform: Option<Platform>,
    /// Pre-1.0 `gpuSupport`.
    pub gpu_support: bool,
}

/// A private registry for the base image. The password is a [`Secret`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerRegistry {
    pub address: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub registry_identity: Option<serde_json::Value>,
}

/// A value that must never be printed: `Debug` shows `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself, for the one place that needs to send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SparkSection {
    pub repositories: Vec<String>,
    pub packages: Vec<SparkPackage>,
    pub precache_packages: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SparkPackage {
    pub group: Option<String>,
    pub artifact: Option<String>,
    pub version: Option<String>,
}

/// Databricks libraries, kept verbatim (strings or objects depending on kind).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatabricksSection {
    pub maven_libraries: Vec<serde_json::Value>,
    pub pypi_libraries: Vec<serde_json::Value>,
    pub rcran_libraries: Vec<serde_json::Value>,
    pub jar_libraries: Vec<serde_json::Value>,
    pub egg_libraries: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistorySection {
    pub output_collection: bool,
    pub snapshot_project: bool,
    pub directories_to_watch: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SparkConfiguration {
    pub configuration: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LegacyDockerSection {
    pub use_docker: bool,
    pub shared_volumes: bool,
    pub arguments: Vec<String>,
    pub shm_size: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HdiSection {
    /// `cluster` or `client`.
    pub yarn_deploy_mode: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TensorflowSection {
    pub worker_count: u32,
    pub parameter_server_count: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MpiSection {
    pub process_count_per_node: u32,
    pub node_count: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PyTorchSection {
    pub communication_backend: String,
    pub process_count: Option<u32>,
    pub node_count: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParallelTaskSection {
    pub max_retries_per_worker: u32,
    pub worker_count_per_node: u32,
    pub terminal_exit_codes: Vec<i64>,
}

/// A `dataReferences` entry: a datastore path mounted/downloaded for the run.
#[derive(Debug, Clone, PartialEq)]
pub struct DataReference {
    pub data_store_name: Option<String>,
    /// `mount`, `download` or `upload`.
    pub mode: String,
    pub path_on_data_store: Option<String>,
    pub path_on_compute: Option<String>,
    pub overwrite: bool,
}

/// A `data` entry: a dataset or datastore path given to the run.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    pub data_location: DataLocation,
    /// `direct`, `mount`, `download` or `hdfs`.
    pub mechanism: String,
    /// Defaults to the entry's name, as v1 did.
    pub environment_variable_name: String,
    pub path_on_compute: Option<String>,
    pub overwrite: bool,
    pub create_output_directories: bool,
    pub options: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataLocation {
    pub dataset: Option<DatasetRef>,
    pub datapath: Option<DataPath>,
    pub uri: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetRef {
    pub id: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataPath {
    pub datastore_name: Option<String>,
    pub relative_path: Option<String>,
}

/// An `outputData` entry; the location is kept verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputDataSpec {
    pub output_location: serde_json::Value,
    pub mechanism: Option<String>,
    pub additional_options: serde_json::Value,
    pub environment_variable_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AmlComputeSection {
    pub vm_size: Option<String>,
    pub vm_priority: Option<String>,
    pub retain_cluster: bool,
    pub name: Option<String>,
    pub cluster_max_node_count: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct KubernetesComputeSection {
    pub instance_type: Option<String>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            source_file: None,
            script: None,
            arguments: Vec::new(),
            command: None,
            target: "local".into(),
            framework: "Python".into(),
            communicator: "None".into(),
            node_count: 1,
            max_run_duration_seconds: None,
            environment_variables: BTreeMap::new(),
            environment: Environment::default(),
            priority: None,
            history: HistorySection::default(),
            spark: SparkConfiguration::default(),
            docker: LegacyDockerSection::default(),
            hdi: HdiSection::default(),
            tensorflow: TensorflowSection::default(),
            mpi: MpiSection::default(),
            pytorch: PyTorchSection::default(),
            parallel_task: ParallelTaskSection::default(),
            data_references: BTreeMap::new(),
            data: BTreeMap::new(),
            datacaches: Vec::new(),
            output_data: BTreeMap::new(),
            source_directory_data_store: None,
            amlcompute: AmlComputeSection::default(),
            auto_cluster_compute_specification: None,
            kubernetes_compute: KubernetesComputeSection::default(),
            credential_passthrough: false,
            application_endpoints: BTreeMap::new(),
            legacy: BTreeMap::new(),
        }
    }
}

impl RunConfig {
    /// The runconfig `folder attach` writes for the local workspace: runs as
    /// written with `interpreter` and the user's own packages.
    pub fn default_local(interpreter: &str) -> Self {
        let mut rc = RunConfig::default();
        rc.environment.python.interpreter_path = interpreter.to_string();
        rc.environment.python.user_managed_dependencies = true;
        rc
    }

    /// Environment variables for the run: the environment's, then the
    /// top-level ones on top (the SDK merges them the same way).
    pub fn merged_environment_variables(&self) -> BTreeMap<String, String> {
        let mut vars = self.environment.environment_variables.clone();
        vars.extend(self.environment_variables.clone());
        vars
    }

    /// The conda file, resolved against the project folder (v1 paths are
    /// relative to the source directory, not to the runconfig).
    pub fn conda_file_path(&self, project_dir: &Path) -> Option<PathBuf> {
        let file = self.environment.python.conda_dependencies_file.as_deref()?;
        Some(project_dir.join(file))
    }
}

impl Default for PythonSection {
    fn default() -> Self {
        PythonSection {
            interpreter_path: "python".into(),
            user_managed_dependencies: false,
            conda_dependencies_file: None,
            base_conda_environment: None,
            conda_dependencies: None,
        }
    }
}

impl Default for DockerSection {
    fn default() -> Self {
        DockerSection {
            enabled: false,
            base_image: Some(DEFAULT_BASE_IMAGE.into()),
            base_dockerfile: None,
            build_context: None,
            shared_volumes: true,
            shm_size: Some("2g".into()),
            arguments: Vec::new(),
            base_image_registry: ContainerRegistry::default(),
            platform: Some(Platform {
                os: "Linux".into(),
                architecture: "amd64".into(),
            }),
            gpu_support: false,
        }
    }
}

impl Default for SparkSection {
    fn default() -> Self {
        SparkSection {
            repositories: Vec::new(),
            packages: Vec::new(),
            precache_packages: true,
        }
    }
}

impl Default for HistorySection {
    fn default() -> Self {
        HistorySection {
            output_collection: true,
            snapshot_project: true,
            directories_to_watch: vec!["logs".into()],
        }
    }
}

impl Default for SparkConfiguration {
    fn default() -> Self {
        let configuration = [
            ("spark.app.name", "Azure ML Experiment"),
            ("spark.yarn.maxAppAttempts", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        SparkConfiguration { configuration }
    }
}

impl Default for LegacyDockerSection {
    fn default() -> Self {
        LegacyDockerSection {
            use_docker: false,
            shared_volumes: true,
            arguments: Vec::new(),
            shm_size: Some("2g".into()),
        }
    }
}

impl Default for HdiSection {
    fn default() -> Self {
        HdiSection {
            yarn_deploy_mode: "cluster".into(),
        }
    }
}

impl Default for TensorflowSection {
    fn default() -> Self {
        TensorflowSection {
            worker_count: 1,
            parameter_server_count: 1,
        }
    }
}

impl Default for MpiSection {
    fn default() -> Self {
        MpiSection {
            process_count_per_node: 1,
            node_count: 1,
        }
    }
}

impl Default for PyTorchSection {
    fn default() -> Self {
        PyTorchSection {
            communication_backend: "nccl".into(),
            process_count: None,
            node_count: 1,
        }
    }
}

impl Default for ParallelTaskSection {
    fn default() -> Self {
        ParallelTaskSection {
            max_retries_per_worker: 0,
            worker_count_per_node: 1,
            terminal_exit_codes: Vec::new(),
        }
    }
}

/// Find the file `-c NAME` means: a path, else `<project>/.azureml/NAME`,
/// `<project>/.azureml/NAME.runconfig`, `<project>/NAME.runconfig` (also `aml_config/`).
pub fn resolve_path(name: &str, project_dir: &Path) -> Result<PathBuf, ModelError> {
    let tried = candidates(name, project_dir);
    if let Some(found) = tried.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(ModelError::NotFound {
        message: format!(
            "run configuration '{name}' not found; tried: {}",
            list.join(", ")
        ),
        hint: Some(
            "pass a path to the file with -c, or run `azml folder attach` to create .azureml/local and .azureml/docker"
                .into(),
        ),
    })
}

/// Every place v1 looked for `-c NAME`, in order, without duplicates.
fn candidates(name: &str, project_dir: &Path) -> Vec<PathBuf> {
    let mut list = vec![PathBuf::from(name)];
    if Path::new(name).is_relative() {
        list.push(project_dir.join(name));
        for dir in [".azureml", "aml_config"] {
            list.push(project_dir.join(dir).join(name));
            list.push(project_dir.join(dir).join(format!("{name}.runconfig")));
        }
        list.push(project_dir.join(format!("{name}.runconfig")));
    }
    let mut unique = Vec::new();
    for path in list {
        if !unique.contains(&path) {
            unique.push(path);
        }
    }
    unique
}

/// Parse and validate a runconfig file, pushing non-fatal findings to `warnings`.
pub fn load(path: &Path, warnings: &mut Vec<Warning>) -> Result<RunConfig, ModelError> {
    let (root, _) = yaml::read_file(path)?;
    let start = warnings.len();
    let mut doc = Doc {
        file: path.into(),
        warnings,
    };
    let mut rc = parse_root(&mut doc, &root, path)?;
    rc.source_file = Some(path.into());
    yaml::sort_warnings(warnings, start);
    Ok(rc)
}

/// Parse runconfig text (used by tests and fuzzing); `path` names it in messages
/// and anchors a separate environment file.
pub fn parse_str(
    text: &str,
    path: &Path,
    warnings: &mut Vec<Warning>,
) -> Result<RunConfig, ModelError> {
    let root = yaml::parse_str(text, path)?;
    let start = warnings.len();
    let mut doc = Doc {
        file: path.into(),
        warnings,
    };
    let rc = parse_root(&mut doc, &root, path)?;
    yaml::sort_warnings(warnings, start);
    Ok(rc)
}

const TOP_LEVEL: &[&str] = &[
    "script",
    "arguments",
    "target",
    "framework",
    "communicator",
    "maxRunDurationSeconds",
    "nodeCount",
    "priority",
    "environment",
    "history",
    "spark",
    "docker",
    "hdi",
    "tensorflow",
    "mpi",
    "pytorch",
    "paralleltask",
    "dataReferences",
    "data",
    "datacaches",
    "outputData",
    "sourceDirectoryDataStore",
    "amlcompute",
    "autoClusterComputeSpecification",
    "kubernetescompute",
    "credentialPassthrough",
    "command",
    "environmentVariables",
    "applicationEndpoints",
];

/// Keys of the 2018–2019 format that later SDKs dropped; accepted and kept.
const LEGACY_TOP_LEVEL: &[&str] = &[
    "autoPrepareEnvironment",
    "prepareEnvironment",
    "jobName",
    "exposedPorts",
    "batchAi",
    "containerInstance",
    "identity",
];

fn parse_root(doc: &mut Doc, root: &Node, path: &Path) -> Result<RunConfig, ModelError> {
    reject_v2_job(doc, root, "run configuration")?;
    let mut f = Fields::of(
        doc,
        root,
        "",
        "a runconfig is a YAML mapping; run `azml folder attach` for a template",
    )?;
    if root.is_null() {
        return Err(ModelError::InFile {
            file: doc.file.clone(),
            message: "the run configuration is empty".into(),
            hint: Some("run `azml folder attach` to write .azureml/local as a template".into()),
        });
    }
    let Some(env_node) = f.get(doc, "environment")? else {
        if let Some(err) = f.misspelt_required(doc, "environment") {
            return Err(err);
        }
        return Err(pre_2018_error(doc, root));
    };
    let mut rc = RunConfig {
        environment: parse_environment(doc, env_node, path)?,
        ..RunConfig::default()
    };
    read_program(doc, &mut f, &mut rc)?;
    read_execution(doc, &mut f, &mut rc)?;
    read_sections(doc, &mut f, &mut rc)?;
    read_data(doc, &mut f, &mut rc)?;
    for key in LEGACY_TOP_LEVEL {
        if let Some(node) = f.get(doc, key)? {
            rc.legacy.insert((*key).to_string(), node.to_json());
        }
    }
    let known: Vec<&str> = TOP_LEVEL.iter().chain(LEGACY_TOP_LEVEL).copied().collect();
    f.finish(doc, &known);
    Ok(rc)
}

/// Keys only the Azure ML Workbench (2017) runconfig format used.
const WORKBENCH_KEYS: &[&str] = &[
    "ArgumentVector",
    "CondaDependenciesFile",
    "SparkDependenciesFile",
    "PrepareEnvironment",
    "TrackedRun",
    "UseSampling",
];

fn pre_2018_error(doc: &Doc, root: &Node) -> ModelError {
    let workbench: Vec<String> = match &root.value {
        Value::Map(entries) => entries
            .iter()
            .filter(|e| WORKBENCH_KEYS.contains(&e.key.as_str()))
            .map(|e| format!("`{}`", e.key))
            .collect(),
        _ => Vec::new(),
    };
    let origin = if workbench.is_empty() {
        String::new()
    } else {
        format!(" of Azure ML Workbench ({})", workbench.join(", "))
    };
    ModelError::InFile {
        file: doc.file.clone(),
        message: format!(
            "no `environment` section: this is the pre-2018 runconfig format{origin}, which v1 no longer accepted either"
        ),
        hint: Some(
            "add an `environment:` section (e.g. `environment: {python: {interpreterPath: python, userManagedDependencies: true}}`), or recreate the file with `azml folder attach`"
                .into(),
        ),
    }
}

/// A v2 job YAML passed where a v1 file is expected gets a clear error rather
/// than a wall of unknown-key warnings.
pub(crate) fn reject_v2_job(doc: &Doc, root: &Node, expected: &str) -> Result<(), ModelError> {
    let Value::Map(entries) = &root.value else {
        return Ok(());
    };
    let schema = entries
        .iter()
        .find(|e| e.key == "$schema")
        .and_then(|e| e.value.scalar_text());
    let job_type = entries
        .iter()
        .find(|e| e.key == "type")
        .and_then(|e| e.value.scalar_text());
    let v2_keys = [
        "trial",
        "search_space",
        "sampling_algorithm",
        "compute",
        "code",
    ];
    let is_v2 = schema
        .as_deref()
        .is_some_and(|s| s.contains("azuremlschemas") || s.contains("Job.schema"))
        || (matches!(job_type.as_deref(), Some("sweep" | "command" | "pipeline"))
            && entries.iter().any(|e| v2_keys.contains(&e.key.as_str())));
    if !is_v2 {
        return Ok(());
    }
    let kind = job_type.unwrap_or_else(|| "job".into());
    Err(ModelError::At {
        location: doc.location(root.pos),
        message: format!("this is an Azure ML CLI v2 `{kind}` job YAML, not a v1 {expected}"),
        hint: Some(format!(
            "azml reads the v1 formats: a runconfig (`-c`) and an hdconfig (`--hyperdrive-configuration-name`); submit v2 job files with `az ml job create -f`, or write the v1 {expected} (see README.md)"
        )),
    })
}

/// `script`, `arguments`, `command`: what runs.
fn read_program(doc: &mut Doc, f: &mut Fields, rc: &mut RunConfig) -> Result<(), ModelError> {
    if let Some(node) = f.get(doc, "script")? {
        rc.script = doc.string(node, "script")?.filter(|s| !s.is_empty());
    }
    if let Some(node) = f.get(doc, "arguments")? {
        rc.arguments = doc.string_list(node, "arguments")?;
    }
    let Some(node) = f.get(doc, "command")? else {
        return Ok(());
    };
    rc.command = match &node.value {
        Value::Seq(_) => Some(join_command(&doc.string_list(node, "command")?)),
        _ => doc.string(node, "command")?,
    }
    .filter(|c| !c.trim().is_empty());
    if rc.command.is_some() && (rc.script.is_some() || !rc.arguments.is_empty()) {
        let other = if rc.script.is_some() {
            "script"
        } else {
            "arguments"
        };
        return Err(doc.error(
            node.pos,
            format!("both `command` and `{other}` are set; a runconfig runs either a command or a script with arguments"),
            "remove `command`, or remove `script` and `arguments` and put the whole command line in `command`",
        ));
    }
    Ok(())
}

/// A list-form `command` as one shell line (items with spaces are quoted).
fn join_command(parts: &[String]) -> String {
    parts
        .iter()
        .map(|p| {
            if !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
            {
                p.clone()
            } else {
                format!("'{}'", p.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `target`, `framework`, `communicator`, counts and limits.
fn read_execution(doc: &mut Doc, f: &mut Fields, rc: &mut RunConfig) -> Result<(), ModelError> {
    if let Some(node) = f.get_some(doc, "target")? {
        rc.target = doc
            .string(node, "target")?
            .unwrap_or_else(|| "local".into());
    }
    if let Some(node) = f.get_some(doc, "framework")? {
        rc.framework = canonical(doc, node, "framework", FRAMEWORKS)?;
    }
    if let Some(node) = f.get_some(doc, "communicator")? {
        rc.communicator = canonical(doc, node, "communicator", COMMUNICATORS)?;
    }
    if let Some(node) = f.get_some(doc, "nodeCount")? {
        rc.node_count = count(doc, node, "nodeCount", 1)?;
    }
    if let Some(node) = f.get_some(doc, "maxRunDurationSeconds")? {
        rc.max_run_duration_seconds =
            Some(doc.int(node, "maxRunDurationSeconds", 1, i64::MAX)? as u64);
    }
    if let Some(node) = f.get_some(doc, "priority")? {
        rc.priority = Some(doc.int(node, "priority", i64::MIN, i64::MAX)?);
    }
    if let Some(node) = f.get(doc, "environmentVariables")? {
        rc.environment_variables = doc.string_map(node, "environmentVariables")?;
    }
    if let Some(node) = f.get_some(doc, "credentialPassthrough")? {
        rc.credential_passthrough = doc.bool(node, "credentialPassthrough")?;
    }
    if let Some(node) = f.get_some(doc, "sourceDirectoryDataStore")? {
        rc.source_directory_data_store = doc.string(node, "sourceDirectoryDataStore")?;
    }
    Ok(())
}

/// One of `allowed`, matched without case, returned in its canonical spelling.
fn canonical(doc: &Doc, node: &Node, path: &str, allowed: &[&str]) -> Result<String, ModelError> {
    let text = doc.string(node, path)?.unwrap_or_default();
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(text.trim()))
        .map(|a| (*a).to_string())
        .ok_or_else(|| {
            doc.expected(
                node,
                path,
                &format!("one of {}", allowed.join(", ")),
                &match yaml::closest(&text, allowed) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => format!("use one of {}", allowed.join(", ")),
                },
            )
        })
}

/// A count in `min..=u32::MAX`.
fn count(doc: &Doc, node: &Node, path: &str, min: i64) -> Result<u32, ModelError> {
    Ok(doc.int(node, path, min, i64::from(u32::MAX))? as u32)
}

fn opt_count(doc: &Doc, f: &mut Fields, name: &str, min: i64) -> Result<Option<u32>, ModelError> {
    match f.get_some(doc, name)? {
        Some(node) => Ok(Some(count(doc, node, &f.path_of(name), min)?)),
        None => Ok(None),
    }
}

fn opt_string(doc: &Doc, f: &mut Fields, name: &str) -> Result<Option<String>, ModelError> {
    match f.get(doc, name)? {
        Some(node) => doc.string(node, &f.path_of(name)),
        None => Ok(None),
    }
}

fn opt_bool(doc: &Doc, f: &mut Fields, name: &str) -> Result<Option<bool>, ModelError> {
    match f.get_some(doc, name)? {
        Some(node) => Ok(Some(doc.bool(node, &f.path_of(name))?)),
        None => Ok(None),
    }
}

fn opt_list(doc: &Doc, f: &mut Fields, name: &str) -> Result<Option<Vec<String>>, ModelError> {
    match f.get(doc, name)? {
        Some(node) => Ok(Some(doc.string_list(node, &f.path_of(name))?)),
        None => Ok(None),
    }
}

/// A list kept verbatim as JSON values.
fn opt_json_list(
    doc: &Doc,
    f: &mut Fields,
    name: &str,
) -> Result<Vec<serde_json::Value>, ModelError> {
    let Some(node) = f.get(doc, name)? else {
        return Ok(Vec::new());
    };
    match &node.value {
        Value::Null => Ok(Vec::new()),
        Value::Seq(items) => Ok(items.iter().map(Node::to_json).collect()),
        _ => Err(doc.expected(
            node,
            &f.path_of(name),
            "a list",
            "write a YAML list (`[]` when empty)",
        )),
    }
}

/// A section that must be a mapping when present (absent/null → default).
fn section<'n>(
    doc: &Doc,
    f: &mut Fields<'n>,
    name: &str,
) -> Result<Option<Fields<'n>>, ModelError> {
    match f.get_some(doc, name)? {
        Some(node) => Ok(Some(Fields::of(
            doc,
            node,
            &f.path_of(name),
            &format!("indent the `{name}` settings under `{name}:`"),
        )?)),
        None => Ok(None),
    }
}

fn read_sections(doc: &mut Doc, f: &mut Fields, rc: &mut RunConfig) -> Result<(), ModelError> {
    if let Some(mut s) = section(doc, f, "history")? {
        let h = &mut rc.history;
        h.output_collection =
            opt_bool(doc, &mut s, "outputCollection")?.unwrap_or(h.output_collection);
        h.snapshot_project =
            opt_bool(doc, &mut s, "snapshotProject")?.unwrap_or(h.snapshot_project);
        h.directories_to_watch = opt_list(doc, &mut s, "directoriesToWatch")?
            .unwrap_or_else(|| h.directories_to_watch.clone());
        s.finish(
            doc,
            &["outputCollection", "snapshotProject", "directoriesToWatch"],
        );
    }
    if let Some(mut s) = section(doc, f, "spark")? {
        if let Some(node) = s.get(doc, "configuration")? {
            rc.spark.configuration = doc.string_map(node, "spark.configuration")?;
        }
        s.finish(doc, &["configuration"]);
    }
    if let Some(mut s) = section(doc, f, "docker")? {
        let d = &mut rc.docker;
        d.use_docker = opt_bool(doc, &mut s, "useDocker")?.unwrap_or(d.use_docker);
        d.shared_volumes = opt_bool(doc, &mut s, "sharedVolumes")?.unwrap_or(d.shared_volumes);
        d.arguments = opt_list(doc, &mut s, "arguments")?.unwrap_or_default();
        if s.key_pos("shmSize").is_some() {
            d.shm_size = opt_string(doc, &mut s, "shmSize")?;
        }
        s.finish(doc, &["useDocker", "sharedVolumes", "arguments", "shmSize"]);
    }
    if let Some(mut s) = section(doc, f, "hdi")? {
        if let Some(node) = s.get_some(doc, "yarnDeployMode")? {
            rc.hdi.yarn_deploy_mode =
                canonical(doc, node, "hdi.yarnDeployMode", &["cluster", "client"])?;
        }
        s.finish(doc, &["yarnDeployMode"]);
    }
    read_distribution(doc, f, rc)?;
    read_compute(doc, f, rc)
}

/// `tensorflow`, `mpi`, `pytorch`, `paralleltask`.
fn read_distribution(doc: &mut Doc, f: &mut Fields, rc: &mut RunConfig) -> Result<(), ModelError> {
    if let Some(mut s) = section(doc, f, "tensorflow")? {
        let t = &mut rc.tensorflow;
        t.worker_count = opt_count(doc, &mut s, "workerCount", 0)?.unwrap_or(t.worker_count);
        t.parameter_server_count =
            opt_count(doc, &mut s, "parameterServerCount", 0)?.unwrap_or(t.parameter_server_count);
        s.finish(doc, &["workerCount", "parameterServerCount"]);
    }
    if let Some(mut s) = section(doc, f, "mpi")? {
        let m = &mut rc.mpi;
        m.process_count_per_node =
            opt_count(doc, &mut s, "processCountPerNode", 1)?.unwrap_or(m.process_count_per_node);
        m.node_count = opt_count(doc, &mut s, "nodeCount", 1)?.unwrap_or(m.node_count);
        s.finish(doc, &["processCountPerNode", "nodeCount"]);
    }
    if let Some(mut s) = section(doc, f, "pytorch")? {
        let p = &mut rc.pytorch;
        if let Some(backend) = opt_string(doc, &mut s, "communicationBackend")? {
            p.communication_backend = backend;
        }
        p.process_count = opt_count(doc, &mut s, "processCount", 1)?;
        p.node_count = opt_count(doc, &mut s, "nodeCount", 1)?.unwrap_or(p.node_count);
        s.finish(doc, &["communicationBackend", "processCount", "nodeCount"]);
    }
    if let Some(mut s) = section(doc, f, "paralleltask")? {
        let p = &mut rc.parallel_task;
        p.max_retries_per_worker =
            opt_count(doc, &mut s, "maxRetriesPerWorker", 0)?.unwrap_or(p.max_retries_per_worker);
        p.worker_count_per_node =
            opt_count(doc, &mut s, "workerCountPerNode", 1)?.unwrap_or(p.worker_count_per_node);
        if let Some(node) = s.get_some(doc, "terminalExitCodes")? {
            p.terminal_exit_codes = int_list(doc, node, "paralleltask.terminalExitCodes")?;
        }
        s.finish(
            doc,
            &[
                "maxRetriesPerWorker",
                "workerCountPerNode",
                "terminalExitCodes",
            ],
        );
    }
    Ok(())
}

fn int_list(doc: &Doc, node: &Node, path: &str) -> Result<Vec<i64>, ModelError> {
    let Value::Seq(items) = &node.value else {
        return Err(doc.expected(node, path, "a list of whole numbers", "e.g. `[1, 2]`"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| doc.int(item, &format!("{path}[{i}]"), i64::MIN, i64::MAX))
        .collect()
}

/// `amlcompute`, `kubernetescompute`, `autoClusterComputeSpecification`, `applicationEndpoints`.
fn read_compute(doc: &mut Doc, f: &mut Fields, rc: &mut RunConfig) -> Result<(), ModelError> {
    if let Some(mut s) = section(doc, f, "amlcompute")? {
        let a = &mut rc.amlcompute;
        a.vm_size = opt_string(doc, &mut s, "vmSize")?;
        a.vm_priority = opt_string(doc, &mut s, "vmPriority")?;
        a.retain_cluster = opt_bool(doc, &mut s, "retainCluster")?.unwrap_or(false);
        a.name = opt_string(doc, &mut s, "name")?;
        a.cluster_max_node_count = opt_count(doc, &mut s, "clusterMaxNodeCount", 1)?;
        s.finish(
            doc,
            &[
                "vmSize",
                "vmPriority",
                "retainCluster",
                "name",
                "clusterMaxNodeCount",
            ],
        );
    }
    if let Some(mut s) = section(doc, f, "kubernetescompute")? {
        rc.kubernetes_compute.instance_type = opt_string(doc, &mut s, "instanceType")?;
        s.finish(doc, &["instanceType"]);
    }
    if let Some(node) = f.get_some(doc, "autoClusterComputeSpecification")? {
        rc.auto_cluster_compute_specification = Some(node.to_json());
    }
    if let Some(node) = f.get_some(doc, "applicationEndpoints")? {
        let Value::Map(entries) = &node.value else {
            return Err(doc.expected(
                node,
                "applicationEndpoints",
                "a mapping",
                "use `{}` when there are none",
            ));
        };
        for entry in entries {
            rc.application_endpoints
                .insert(entry.key.clone(), entry.value.to_json());
        }
    }
    Ok(())
}

/// `dataReferences`, `data`, `datacaches`, `outputData`.
fn read_data(doc: &mut Doc, f: &mut Fields, rc: &mut RunConfig) -> Result<(), ModelError> {
    for (name, node) in named_entries(doc, f, "dataReferences")? {
        let path = format!("dataReferences.{name}");
        let reference = parse_data_reference(doc, node, &path)?;
        rc.data_references.insert(name, reference);
    }
    for (name, node) in named_entries(doc, f, "data")? {
        let path = format!("data.{name}");
        let spec = parse_data_spec(doc, node, &path, &name)?;
        rc.data.insert(name, spec);
    }
    rc.datacaches = opt_json_list(doc, f, "datacaches")?;
    for (name, node) in named_entries(doc, f, "outputData")? {
        let path = format!("outputData.{name}");
        let spec = parse_output_data(doc, node, &path)?;
        rc.output_data.insert(name, spec);
    }
    Ok(())
}

/// The `name: {…}` entries of a mapping section (absent/null → none).
fn named_entries<'n>(
    doc: &Doc,
    f: &mut Fields<'n>,
    name: &str,
) -> Result<Vec<(String, &'n Node)>, ModelError> {
    let Some(node) = f.get_some(doc, name)? else {
        return Ok(Vec::new());
    };
    let Value::Map(entries) = &node.value else {
        return Err(doc.expected(
            node,
            name,
            "a mapping of names to settings",
            &format!("write `{name}: {{}}` when there are none"),
        ));
    };
    Ok(entries.iter().map(|e| (e.key.clone(), &e.value)).collect())
}

const DATA_REFERENCE_KEYS: &[&str] = &[
    "dataStoreName",
    "mode",
    "pathOnDataStore",
    "pathOnCompute",
    "overwrite",
];

fn parse_data_reference(
    doc: &mut Doc,
    node: &Node,
    path: &str,
) -> Result<DataReference, ModelError> {
    let mut s = Fields::of(
        doc,
        node,
        path,
        "each data reference is a mapping with dataStoreName, mode, …",
    )?;
    let mode = match s.get_some(doc, "mode")? {
        Some(m) => canonical(doc, m, &s.path_of("mode"), &["mount", "download", "upload"])?,
        None => "mount".into(),
    };
    let reference = DataReference {
        data_store_name: opt_string(doc, &mut s, "dataStoreName")?,
        mode,
        path_on_data_store: opt_string(doc, &mut s, "pathOnDataStore")?,
        path_on_compute: opt_string(doc, &mut s, "pathOnCompute")?,
        overwrite: opt_bool(doc, &mut s, "overwrite")?.unwrap_or(false),
    };
    s.finish(doc, DATA_REFERENCE_KEYS);
    Ok(reference)
}

const DATA_SPEC_KEYS: &[&str] = &[
    "dataLocation",
    "mechanism",
    "environmentVariableName",
    "pathOnCompute",
    "overwrite",
    "createOutputDirectories",
    "options",
];

fn parse_data_spec(
    doc: &mut Doc,
    node: &Node,
    path: &str,
    name: &str,
) -> Result<DataSpec, ModelError> {
    let mut s = Fields::of(
        doc,
        node,
        path,
        "each data entry is a mapping with dataLocation, mechanism, …",
    )?;
    let mechanism = match s.get_some(doc, "mechanism")? {
        Some(m) => canonical(
            doc,
            m,
            &s.path_of("mechanism"),
            &["direct", "mount", "download", "hdfs"],
        )?,
        None => "direct".into(),
    };
    let data_location = match s.get_some(doc, "dataLocation")? {
        Some(loc) => parse_data_location(doc, loc, &s.path_of("dataLocation"))?,
        None => DataLocation::default(),
    };
    let spec = DataSpec {
        data_location,
        mechanism,
        environment_variable_name: opt_string(doc, &mut s, "environmentVariableName")?
            .unwrap_or_else(|| name.to_string()),
        path_on_compute: opt_string(doc, &mut s, "pathOnCompute")?,
        overwrite: opt_bool(doc, &mut s, "overwrite")?.unwrap_or(false),
        create_output_directories: opt_bool(doc, &mut s, "createOutputDirectories")?
            .unwrap_or(false),
        options: s.get_some(doc, "options")?.map(Node::to_json),
    };
    s.finish(doc, DATA_SPEC_KEYS);
    Ok(spec)
}

fn parse_data_location(doc: &mut Doc, node: &Node, path: &str) -> Result<DataLocation, ModelError> {
    let mut s = Fields::of(
        doc,
        node,
        path,
        "dataLocation holds `dataset:`, `datapath:` or `uri:`",
    )?;
    let mut location = DataLocation::default();
    if let Some(mut d) = section(doc, &mut s, "dataset")? {
        location.dataset = Some(DatasetRef {
            id: opt_string(doc, &mut d, "id")?,
            name: opt_string(doc, &mut d, "name")?,
            version: opt_string(doc, &mut d, "version")?,
        });
        d.finish(doc, &["id", "name", "version"]);
    }
    if let Some(mut d) = section(doc, &mut s, "datapath")? {
        location.datapath = Some(DataPath {
            datastore_name: opt_string(doc, &mut d, "datastoreName")?,
            relative_path: opt_string(doc, &mut d, "relativePath")?,
        });
        d.finish(doc, &["datastoreName", "relativePath"]);
    }
    location.uri = s.get_some(doc, "uri")?.map(Node::to_json);
    s.finish(doc, &["dataset", "datapath", "uri"]);
    Ok(location)
}

fn parse_output_data(doc: &mut Doc, node: &Node, path: &str) -> Result<OutputDataSpec, ModelError> {
    let mut s = Fields::of(
        doc,
        node,
        path,
        "each output is a mapping with outputLocation, mechanism, …",
    )?;
    let spec = OutputDataSpec {
        output_location: s
            .get(doc, "outputLocation")?
            .map_or(serde_json::Value::Null, Node::to_json),
        mechanism: match s.get_some(doc, "mechanism")? {
            Some(m) => Some(canonical(
                doc,
                m,
                &s.path_of("mechanism"),
                &["upload", "mount", "direct"],
            )?),
            None => None,
        },
        additional_options: s
            .get(doc, "additionalOptions")?
            .map_or(serde_json::Value::Null, Node::to_json),
        environment_variable_name: opt_string(doc, &mut s, "environmentVariableName")?,
    };
    s.finish(
        doc,
        &[
            "outputLocation",
            "mechanism",
            "additionalOptions",
            "environmentVariableName",
        ],
    );
    Ok(spec)
}

const ENVIRONMENT_KEYS: &[&str] = &[
    "name",
    "version",
    "environmentVariables",
    "python",
    "docker",
    "spark",
    "databricks",
    "r",
    "inferencingStackVersion",
    "assetId",
];

/// `environment:` — a mapping, or the path of a separate YAML file holding one
/// (resolved relative to the runconfig, as v1 did).
fn parse_environment(
    doc: &mut Doc,
    node: &Node,
    runconfig: &Path,
) -> Result<Environment, ModelError> {
    if let Value::Str(reference) = &node.value {
        return load_environment_file(doc, node.pos, reference, runconfig);
    }
    let mut s = Fields::of(
        doc,
        node,
        "environment",
        "`environment` is a mapping (python, docker, …) or the path of a YAML file holding one",
    )?;
    let mut env = Environment {
        name: opt_string(doc, &mut s, "name")?,
        version: opt_string(doc, &mut s, "version")?,
        ..Environment::default()
    };
    if let Some(vars) = s.get(doc, "environmentVariables")? {
        env.environment_variables = doc.string_map(vars, "environment.environmentVariables")?;
    }
    if let Some(python) = section(doc, &mut s, "python")? {
        env.python = parse_python(doc, python)?;
    }
    if let Some(docker) = section(doc, &mut s, "docker")? {
        env.docker = parse_docker(doc, docker)?;
    }
    if let Some(spark) = section(doc, &mut s, "spark")? {
        env.spark = parse_spark(doc, spark)?;
    }
    if let Some(mut d) = section(doc, &mut s, "databricks")? {
        let db = &mut env.databricks;
        db.maven_libraries = opt_json_list(doc, &mut d, "mavenLibraries")?;
        db.pypi_libraries = opt_json_list(doc, &mut d, "pypiLibraries")?;
        db.rcran_libraries = opt_json_list(doc, &mut d, "rcranLibraries")?;
        db.jar_libraries = opt_json_list(doc, &mut d, "jarLibraries")?;
        db.egg_libraries = opt_json_list(doc, &mut d, "eggLibraries")?;
        d.finish(
            doc,
            &[
                "mavenLibraries",
                "pypiLibraries",
                "rcranLibraries",
                "jarLibraries",
                "eggLibraries",
            ],
        );
    }
    env.r = s.get_some(doc, "r")?.map(Node::to_json);
    env.inferencing_stack_version = opt_string(doc, &mut s, "inferencingStackVersion")?;
    env.asset_id = opt_string(doc, &mut s, "assetId")?;
    s.finish(doc, ENVIRONMENT_KEYS);
    Ok(env)
}

fn load_environment_file(
    doc: &mut Doc,
    pos: Pos,
    reference: &str,
    runconfig: &Path,
) -> Result<Environment, ModelError> {
    let base = runconfig.parent().unwrap_or(Path::new("."));
    let path = base.join(reference);
    if !path.is_file() {
        return Err(doc.error(
            pos,
            format!("environment file `{}` not found", path.display()),
            "`environment:` as text names a YAML file relative to the runconfig; fix the path or write the environment inline",
        ));
    }
    let (root, _) = yaml::read_file(&path)?;
    let mut env_doc = Doc {
        file: path.clone(),
        warnings: &mut *doc.warnings,
    };
    if matches!(root.value, Value::Str(_)) {
        return Err(env_doc.expected(
            &root,
            "environment",
            "a mapping",
            "the environment file must hold the environment mapping itself",
        ));
    }
    let mut env = parse_environment(&mut env_doc, &root, &path)?;
    env.source_file = Some(path);
    Ok(env)
}

const PYTHON_KEYS: &[&str] = &[
    "userManagedDependencies",
    "interpreterPath",
    "condaDependenciesFile",
    "baseCondaEnvironment",
    "condaDependencies",
];

fn parse_python(doc: &mut Doc, mut s: Fields) -> Result<PythonSection, ModelError> {
    let mut python = PythonSection::default();
    if let Some(node) = s.get_some(doc, "interpreterPath")? {
        python.interpreter_path = doc
            .string(node, "environment.python.interpreterPath")?
            .unwrap_or_else(|| "python".into());
    }
    python.user_managed_dependencies =
        opt_bool(doc, &mut s, "userManagedDependencies")?.unwrap_or(false);
    python.conda_dependencies_file = opt_string(doc, &mut s, "condaDependenciesFile")?;
    python.base_conda_environment = opt_string(doc, &mut s, "baseCondaEnvironment")?;
    python.conda_dependencies = s.get_some(doc, "condaDependencies")?.map(Node::to_json);
    s.finish(doc, PYTHON_KEYS);
    Ok(python)
}

const DOCKER_KEYS: &[&str] = &[
    "enabled",
    "baseImage",
    "baseDockerfile",
    "buildContext",
    "sharedVolumes",
    "shmSize",
    "arguments",
    "baseImageRegistry",
    "platform",
    "gpuSupport",
];

fn parse_docker(doc: &mut Doc, mut s: Fields) -> Result<DockerSection, ModelError> {
    let mut docker = DockerSection {
        enabled: opt_bool(doc, &mut s, "enabled")?.unwrap_or(false),
        base_dockerfile: opt_string(doc, &mut s, "baseDockerfile")?,
        build_context: opt_string(doc, &mut s, "buildContext")?,
        shared_volumes: opt_bool(doc, &mut s, "sharedVolumes")?.unwrap_or(true),
        arguments: opt_list(doc, &mut s, "arguments")?.unwrap_or_default(),
        gpu_support: opt_bool(doc, &mut s, "gpuSupport")?.unwrap_or(false),
        ..DockerSection::default()
    };
    // An absent baseImage means v1's default image, unless a Dockerfile replaces it.
    match s.get(doc, "baseImage")? {
        Some(node) => docker.base_image = doc.string(node, "environment.docker.baseImage")?,
        None if docker.base_dockerfile.is_some() => docker.base_image = None,
        None => {}
    }
    if docker.base_image.is_some() && docker.base_dockerfile.is_some() {
        let pos = s.key_pos("baseDockerfile").unwrap_or(s.pos);
        return Err(doc.error(
            pos,
            "`environment.docker.baseImage` and `baseDockerfile` are both set; they are mutually exclusive",
            "keep one: set the other to null or remove it",
        ));
    }
    if s.key_pos("shmSize").is_some() {
        docker.shm_size = opt_string(doc, &mut s, "shmSize")?;
    }
    if let Some(registry) = section(doc, &mut s, "baseImageRegistry")? {
        docker.base_image_registry = parse_registry(doc, registry)?;
    }
    if let Some(mut p) = section(doc, &mut s, "platform")? {
        docker.platform = Some(Platform {
            os: opt_string(doc, &mut p, "os")?.unwrap_or_else(|| "Linux".into()),
            architecture: opt_string(doc, &mut p, "architecture")?
                .unwrap_or_else(|| "amd64".into()),
        });
        p.finish(doc, &["os", "architecture"]);
    }
    s.accept(&["preparation"]);
    s.finish(doc, DOCKER_KEYS);
    Ok(docker)
}

fn parse_registry(doc: &mut Doc, mut s: Fields) -> Result<ContainerRegistry, ModelError> {
    let registry = ContainerRegistry {
        address: opt_string(doc, &mut s, "address")?,
        username: opt_string(doc, &mut s, "username")?,
        password: opt_string(doc, &mut s, "password")?.map(Secret),
        registry_identity: s.get_some(doc, "registryIdentity")?.map(Node::to_json),
    };
    s.finish(
        doc,
        &["address", "username", "password", "registryIdentity"],
    );
    Ok(registry)
}

fn parse_spark(doc: &mut Doc, mut s: Fields) -> Result<SparkSection, ModelError> {
    let mut spark = SparkSection {
        repositories: opt_list(doc, &mut s, "repositories")?.unwrap_or_default(),
        precache_packages: opt_bool(doc, &mut s, "precachePackages")?.unwrap_or(true),
        ..SparkSection::default()
    };
    if let Some(node) = s.get_some(doc, "packages")? {
        let Value::Seq(items) = &node.value else {
            return Err(doc.expected(
                node,
                "environment.spark.packages",
                "a list",
                "one `- group: …` entry per package",
            ));
        };
        for (i, item) in items.iter().enumerate() {
            let path = format!("environment.spark.packages[{i}]");
            let mut p = Fields::of(
                doc,
                item,
                &path,
                "each package is a mapping with group, artifact, version",
            )?;
            spark.packages.push(SparkPackage {
                group: opt_string(doc, &mut p, "group")?,
                artifact: opt_string(doc, &mut p, "artifact")?,
                version: opt_string(doc, &mut p, "version")?,
            });
            p.finish(doc, &["group", "artifact", "version"]);
        }
    }
    s.finish(doc, &["repositories", "packages", "precachePackages"]);
    Ok(spark)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Result<RunConfig, ModelError>, Vec<Warning>) {
        let mut warnings = Vec::new();
        let rc = parse_str(text, Path::new("rc.yml"), &mut warnings);
        (rc, warnings)
    }

    #[test]
    fn minimal_file_gets_v1_defaults() {
        let (rc, warnings) = parse("script: train.py\nenvironment: {}\n");
        let rc = rc.expect("parses");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(rc.target, "local");
        assert_eq!(rc.framework, "Python");
        assert_eq!(rc.node_count, 1);
        assert_eq!(rc.environment.python.interpreter_path, "python");
        assert_eq!(
            rc.environment.docker.base_image.as_deref(),
            Some(DEFAULT_BASE_IMAGE)
        );
        assert_eq!(rc.history.directories_to_watch, vec!["logs"]);
    }

    #[test]
    fn snake_case_and_camel_case_name_the_same_field() {
        let (rc, warnings) = parse(
            "script: a.py\nnode_count: 3\nenvironment:\n  python:\n    interpreter_path: /usr/bin/python3\n    userManagedDependencies: true\n",
        );
        let rc = rc.expect("parses");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(rc.node_count, 3);
        assert_eq!(rc.environment.python.interpreter_path, "/usr/bin/python3");
        assert!(rc.environment.python.user_managed_dependencies);
    }

    #[test]
    fn numeric_arguments_keep_their_spelling() {
        let (rc, _) = parse(
            "script: a.py\narguments: [--lr, 0.10, --epochs, 5, --flag, true]\nenvironment: {}\n",
        );
        assert_eq!(
            rc.expect("parses").arguments,
            vec!["--lr", "0.10", "--epochs", "5", "--flag", "true"]
        );
    }

    #[test]
    fn unknown_key_warns_with_closest_known_key_and_line() {
        let (rc, warnings) = parse("script: a.py\nenvironment:\n  pyhton: {}\nnodeCuont: 2\n");
        rc.expect("parses");
        let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].starts_with("rc.yml:3:3:"), "{text:?}");
        assert!(
            text[0].contains("`environment.pyhton`") && text[0].contains("`python`"),
            "{text:?}"
        );
        assert!(text[1].contains("did you mean `nodeCount`"), "{text:?}");
    }

    #[test]
    fn command_and_script_together_is_an_error() {
        let (rc, _) = parse("script: a.py\ncommand: python b.py\nenvironment: {}\n");
        let err = rc.unwrap_err().to_string();
        assert!(err.starts_with("rc.yml:2:10:"), "{err}");
        assert!(err.contains("both `command` and `script`"), "{err}");
    }

    #[test]
    fn empty_command_next_to_script_is_fine() {
        let (rc, _) = parse("script: a.py\ncommand: ''\nenvironment: {}\n");
        assert_eq!(rc.expect("parses").command, None);
    }

    #[test]
    fn list_command_is_joined_with_quoting() {
        let (rc, _) = parse("command: [python, train.py, --name, 'a b']\nenvironment: {}\n");
        assert_eq!(
            rc.expect("parses").command.as_deref(),
            Some("python train.py --name 'a b'")
        );
    }

    #[test]
    fn missing_environment_is_the_pre_2018_format() {
        let (rc, _) = parse("script: a.py\ntarget: local\n");
        assert!(rc.unwrap_err().to_string().contains("pre-2018"));
    }

    #[test]
    fn registry_password_is_not_in_debug_output() {
        let (rc, _) = parse(
            "environment:\n  docker:\n    baseImageRegistry:\n      address: r.io\n      password: hunter2\n",
        );
        let rc = rc.expect("parses");
        assert_eq!(
            rc.environment
                .docker
                .base_image_registry
                .password
                .as_ref()
                .map(Secret::expose),
            Some("hunter2")
        );
        assert!(!format!("{rc:?}").contains("hunter2"));
    }

    #[test]
    fn framework_is_matched_without_case() {
        let (rc, _) = parse("framework: pytorch\nenvironment: {}\n");
        assert_eq!(rc.expect("parses").framework, "PyTorch");
        let (rc, _) = parse("framework: Pyton\nenvironment: {}\n");
        let err = rc.unwrap_err();
        assert!(err.to_string().contains("framework"), "{err}");
        assert!(crate::error::ExitCoded::hint(&err).is_some_and(|h| h.contains("Python")));
    }

    #[test]
    fn data_entry_defaults_env_var_to_its_name() {
        let (rc, _) = parse(
            "environment: {}\ndata:\n  train:\n    dataLocation:\n      dataset: {name: ds, version: 2}\n    mechanism: Download\n",
        );
        let rc = rc.expect("parses");
        let train = &rc.data["train"];
        assert_eq!(train.environment_variable_name, "train");
        assert_eq!(train.mechanism, "download");
        assert_eq!(
            train
                .data_location
                .dataset
                .as_ref()
                .and_then(|d| d.version.as_deref()),
            Some("2")
        );
    }
}
