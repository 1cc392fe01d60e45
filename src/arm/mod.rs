//! Azure Resource Manager client for Microsoft.MachineLearningServices:
//! credentials, retries, long-running operations, typed resources.
pub mod blob;
pub mod code_upload;
pub mod environment;
pub mod jobs;

use crate::workspace::{RunFilter, Workspace, WorkspaceError, WsResult};
use serde_json::Value;

/// An Azure ML workspace reached through ARM.
#[derive(Debug, Clone)]
pub struct AzureWorkspace {
    pub workspace: crate::config::AzureWorkspaceRef,
}

fn not_yet(what: &str) -> WorkspaceError {
    WorkspaceError::Unsupported {
        what: what.into(),
        backend: "Azure",
        hint: None,
    }
}

impl Workspace for AzureWorkspace {
    async fn show_workspace(&self) -> WsResult<Value> {
        Err(not_yet("workspace show"))
    }
    async fn list_computes(&self) -> WsResult<Vec<Value>> {
        Err(not_yet("computetarget list"))
    }
    async fn show_compute(&self, _name: &str) -> WsResult<Value> {
        Err(not_yet("computetarget show"))
    }
    async fn list_experiments(&self) -> WsResult<Vec<Value>> {
        Err(not_yet("experiment list"))
    }
    async fn create_experiment(&self, _name: &str) -> WsResult<(Value, bool)> {
        Err(not_yet("experiment create"))
    }
    async fn list_runs(&self, _filter: &RunFilter) -> WsResult<Vec<Value>> {
        Err(not_yet("run list"))
    }
    async fn show_run(&self, _run_id: &str) -> WsResult<Value> {
        Err(not_yet("run show"))
    }
    async fn cancel_run(&self, _run_id: &str) -> WsResult<Value> {
        Err(not_yet("run cancel"))
    }
    async fn add_run_tags(&self, _run_id: &str, _tags: &[(String, String)]) -> WsResult<Value> {
        Err(not_yet("run update"))
    }
    async fn run_metrics(&self, _run_id: &str) -> WsResult<Value> {
        Err(not_yet("run metrics"))
    }
}
