//! Which workspace a command talks to: flags, then `.azureml/config.json`
//! (both v1 forms) found by walking up from `--path`, then environment; and
//! when nothing names an Azure workspace, the embedded local workspace.

use std::path::PathBuf;

/// An Azure ML workspace named by subscription, resource group and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureWorkspaceRef {
    pub subscription_id: String,
    pub resource_group: String,
    pub workspace_name: String,
}

/// The backend a command runs against, after discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkspaceTarget {
    Azure(AzureWorkspaceRef),
    /// The embedded workspace; `root` is the folder holding its SQLite store and runs.
    Local {
        root: PathBuf,
    },
}

/// Everything discovery resolved for one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedWorkspace {
    pub target: WorkspaceTarget,
    /// Experiment from `-e`, else the config's `/projects/<exp>` (v1 Scope form), if any.
    pub experiment: Option<String>,
    /// The project root: the folder that holds the config file found (or `--path`).
    pub project_dir: PathBuf,
    /// The config file discovery used, if any.
    pub config_file: Option<PathBuf>,
}
