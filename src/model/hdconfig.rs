//! The v1 HyperDrive configuration (`--hyperdrive-configuration-name`).

use crate::sweep::{Goal, Parameter, PolicySpec, SamplingKind};
use std::path::PathBuf;

/// A validated hdconfig with v1 defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct HyperDriveConfig {
    pub source_file: Option<PathBuf>,
    pub sampling: SamplingKind,
    /// In file order: children receive `<name> <value>` in this order.
    pub parameter_space: Vec<Parameter>,
    pub policy: PolicySpec,
    pub primary_metric_name: String,
    pub primary_metric_goal: Goal,
    pub max_total_runs: u32,
    pub max_concurrent_runs: u32,
    pub max_duration_minutes: u32,
}

use super::{ModelError, Warning};
use std::path::Path;

/// Find the file `--hyperdrive-configuration-name NAME` means: a path, else the
/// last file under `project_dir` whose name ends with NAME (v1's rule).
pub fn resolve_path(name: &str, project_dir: &Path) -> Result<PathBuf, ModelError> {
    let _ = project_dir;
    Err(ModelError::NotFound {
        message: format!("hyperdrive configuration '{name}' not found"),
        hint: None,
    })
}

/// Parse and validate an hdconfig file, pushing non-fatal findings to `warnings`.
pub fn load(path: &Path, warnings: &mut Vec<Warning>) -> Result<HyperDriveConfig, ModelError> {
    let _ = warnings;
    Err(ModelError::InFile {
        file: path.into(),
        message: "hdconfig parsing is not available yet".into(),
        hint: None,
    })
}
