//! The workspace a command talks to, chosen by discovery. Both variants
//! implement `Workspace`; `Backend` forwards to whichever one was chosen so
//! commands stay backend-agnostic.

use crate::arm::AzureWorkspace;
use crate::config::{ResolvedWorkspace, WorkspaceTarget};
use crate::local::LocalWorkspace;
use crate::workspace::{
    LogSink, RunFilter, RunOutcome, SubmitHyperdrive, SubmitScript, Workspace, WsResult,
};
use serde_json::Value;
use std::path::Path;

#[derive(Debug)]
pub enum Backend {
    Local(LocalWorkspace),
    Azure(AzureWorkspace),
}

impl Backend {
    pub fn open(resolved: &ResolvedWorkspace) -> Self {
        match &resolved.target {
            WorkspaceTarget::Local { root } => Backend::Local(LocalWorkspace::new(root.clone())),
            WorkspaceTarget::Azure(workspace) => {
                Backend::Azure(AzureWorkspace::new(workspace.clone()))
            }
        }
    }
}

/// Forward a trait call to the chosen backend.
macro_rules! forward {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            Backend::Local(ws) => ws.$method($($arg),*).await,
            Backend::Azure(ws) => ws.$method($($arg),*).await,
        }
    };
}

impl Workspace for Backend {
    async fn show_workspace(&self) -> WsResult<Value> {
        forward!(self.show_workspace())
    }
    async fn list_computes(&self) -> WsResult<Vec<Value>> {
        forward!(self.list_computes())
    }
    async fn show_compute(&self, name: &str) -> WsResult<Value> {
        forward!(self.show_compute(name))
    }
    async fn list_experiments(&self) -> WsResult<Vec<Value>> {
        forward!(self.list_experiments())
    }
    async fn create_experiment(&self, name: &str) -> WsResult<(Value, bool)> {
        forward!(self.create_experiment(name))
    }
    async fn list_runs(&self, filter: &RunFilter) -> WsResult<Vec<Value>> {
        forward!(self.list_runs(filter))
    }
    async fn show_run(&self, run_id: &str) -> WsResult<Value> {
        forward!(self.show_run(run_id))
    }
    async fn cancel_run(&self, run_id: &str) -> WsResult<Value> {
        forward!(self.cancel_run(run_id))
    }
    async fn add_run_tags(&self, run_id: &str, tags: &[(String, String)]) -> WsResult<Value> {
        forward!(self.add_run_tags(run_id, tags))
    }
    async fn run_metrics(&self, run_id: &str) -> WsResult<Value> {
        forward!(self.run_metrics(run_id))
    }
    async fn submit_script(
        &self,
        request: &SubmitScript,
        logs: &dyn LogSink,
    ) -> WsResult<RunOutcome> {
        forward!(self.submit_script(request, logs))
    }
    async fn submit_hyperdrive(
        &self,
        request: &SubmitHyperdrive,
        logs: &dyn LogSink,
    ) -> WsResult<RunOutcome> {
        forward!(self.submit_hyperdrive(request, logs))
    }
    async fn monitor_logs(&self, run_id: &str, logs: &dyn LogSink) -> WsResult<RunOutcome> {
        forward!(self.monitor_logs(run_id, logs))
    }
    async fn download_logs(&self, run_id: &str, output_dir: &Path) -> WsResult<Value> {
        forward!(self.download_logs(run_id, output_dir))
    }
}
