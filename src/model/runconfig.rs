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
