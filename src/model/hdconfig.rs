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
