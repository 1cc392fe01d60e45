//! The v1 runconfig file (`.azureml/*.runconfig`, `-c NAME`).
//!
//! Field names other modules rely on are fixed here; parsing, defaults,
//! warnings and resolution of `-c NAME` fill in around them.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A parsed runconfig with v1 defaults applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunConfig {
    /// Where it was read from (None when built in memory).
    pub source_file: Option<PathBuf>,
    pub script: Option<String>,
    pub arguments: Vec<String>,
    /// Alternative to `script` + `arguments`: a whole command line.
    pub command: Option<String>,
    pub target: String,
    pub framework: String,
    pub communicator: String,
    pub node_count: u32,
    pub max_run_duration_seconds: Option<u64>,
    pub environment_variables: BTreeMap<String, String>,
    pub environment: Environment,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Environment {
    pub name: Option<String>,
    pub version: Option<String>,
    pub environment_variables: BTreeMap<String, String>,
    pub python: PythonSection,
    pub docker: DockerSection,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PythonSection {
    pub interpreter_path: String,
    pub user_managed_dependencies: bool,
    pub conda_dependencies_file: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DockerSection {
    pub enabled: bool,
    pub base_image: Option<String>,
    pub base_dockerfile: Option<String>,
}

use super::{ModelError, Warning};
use std::path::Path;

/// Find the file `-c NAME` means: a path, else `<project>/.azureml/NAME`,
/// `<project>/.azureml/NAME.runconfig`, `<project>/NAME.runconfig` (also `aml_config/`).
pub fn resolve_path(name: &str, project_dir: &Path) -> Result<PathBuf, ModelError> {
    let _ = project_dir;
    Err(ModelError::NotFound {
        message: format!("run configuration '{name}' not found"),
        hint: None,
    })
}

/// Parse and validate a runconfig file, pushing non-fatal findings to `warnings`.
pub fn load(path: &Path, warnings: &mut Vec<Warning>) -> Result<RunConfig, ModelError> {
    let _ = warnings;
    Err(ModelError::InFile {
        file: path.into(),
        message: "runconfig parsing is not available yet".into(),
        hint: None,
    })
}
