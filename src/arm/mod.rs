//! Azure Resource Manager client for Microsoft.MachineLearningServices:
//! credentials (`auth`), clouds and endpoint (`cloud`), retries, paging and
//! long-running operations (`client`), compute targets (`compute`), and
//! secret scrubbing for `--debug` (`redact`); jobs, environments and code
//! upload build on the same client.

pub mod auth;
pub mod blob;
pub mod client;
pub mod cloud;
pub mod code_upload;
pub mod compute;
pub mod conda;
pub mod environment;
pub mod error;
pub mod history;
pub mod jobs;
pub mod redact;
pub mod runs;
pub mod submit;
pub mod subscription;

pub use client::{ArmClient, ArmSettings, Timing};
pub use compute::PowerAction;
pub use error::ArmError;

use crate::config::AzureWorkspaceRef;
use crate::workspace::{RunFilter, Workspace, WorkspaceError, WsResult};
use reqwest::Method;
use serde_json::Value;
use std::sync::Arc;

/// An Azure ML workspace reached through ARM.
#[derive(Debug, Clone)]
pub struct AzureWorkspace {
    pub workspace: AzureWorkspaceRef,
    /// Built when the workspace is opened; a configuration error (bad
    /// `AZML_ARM_ENDPOINT`, unknown cloud) surfaces at the first ARM call.
    client: Arc<Result<ArmClient, String>>,
}

impl AzureWorkspace {
    /// The workspace with the process's installed settings (`ArmSettings::install`).
    pub fn new(workspace: AzureWorkspaceRef) -> AzureWorkspace {
        let client = ArmClient::new(&ArmSettings::current()).map_err(|e| e.to_string());
        AzureWorkspace {
            workspace,
            client: Arc::new(client),
        }
    }

    /// Set up credentials and the endpoint for explicit settings; no network call yet.
    pub fn connect(
        workspace: AzureWorkspaceRef,
        settings: &ArmSettings,
    ) -> Result<AzureWorkspace, ArmError> {
        Ok(AzureWorkspace {
            workspace,
            client: Arc::new(Ok(ArmClient::new(settings)?)),
        })
    }

    /// A workspace over an already configured client.
    pub fn with_client(workspace: AzureWorkspaceRef, client: ArmClient) -> AzureWorkspace {
        AzureWorkspace {
            workspace,
            client: Arc::new(Ok(client)),
        }
    }

    /// The ARM client, for other Azure features (jobs, datastores) built on it.
    pub fn client(&self) -> Result<&ArmClient, ArmError> {
        self.client
            .as_ref()
            .as_ref()
            .map_err(|e| ArmError::Config(e.clone()))
    }

    /// `/subscriptions/…/workspaces/NAME` (no host, no query).
    pub fn workspace_path(&self) -> String {
        let w = &self.workspace;
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.MachineLearningServices/workspaces/{}",
            w.subscription_id, w.resource_group, w.workspace_name
        )
    }

    /// `…/computes/NAME[/suffix]?api-version=…`.
    fn compute_url(&self, name: &str, suffix: &str) -> Result<reqwest::Url, ArmError> {
        let mut path = format!(
            "{}/computes/{}",
            self.workspace_path(),
            encode_segment(name)
        );
        if !suffix.is_empty() {
            path.push('/');
            path.push_str(suffix);
        }
        Ok(self.client()?.url(&path, &[]))
    }

    /// `workspace show`: the ARM workspace resource.
    pub async fn get_workspace(&self) -> Result<Value, ArmError> {
        let client = self.client()?;
        client.get(client.url(&self.workspace_path(), &[])).await
    }

    pub async fn get_compute(&self, name: &str) -> Result<Value, ArmError> {
        self.client()?.get(self.compute_url(name, "")?).await
    }

    pub async fn list_compute_resources(&self) -> Result<Vec<Value>, ArmError> {
        let client = self.client()?;
        let url = client.url(&format!("{}/computes", self.workspace_path()), &[]);
        client.list(url, Method::GET, "value").await
    }
}

/// A name as one URL path segment: `/`, `?`, `#` and spaces cannot escape into the path.
fn encode_segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `workspace list`: the workspaces of a resource group, or of the whole subscription.
pub async fn list_workspaces(
    settings: &ArmSettings,
    subscription_id: &str,
    resource_group: Option<&str>,
) -> Result<Vec<Value>, ArmError> {
    let client = ArmClient::new(settings)?;
    let path = match resource_group {
        Some(rg) => format!(
            "/subscriptions/{subscription_id}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces"
        ),
        None => format!(
            "/subscriptions/{subscription_id}/providers/Microsoft.MachineLearningServices/workspaces"
        ),
    };
    client
        .list(client.url(&path, &[]), Method::GET, "value")
        .await
}

/// ARM errors keep their exit code (404 → 3) through the trait's error type.
fn ws_err(e: ArmError) -> WorkspaceError {
    WorkspaceError::Other(anyhow::Error::new(e))
}

impl Workspace for AzureWorkspace {
    async fn show_workspace(&self) -> WsResult<Value> {
        self.get_workspace().await.map_err(ws_err)
    }
    async fn list_computes(&self) -> WsResult<Vec<Value>> {
        self.list_compute_resources().await.map_err(ws_err)
    }
    async fn show_compute(&self, name: &str) -> WsResult<Value> {
        self.get_compute(name).await.map_err(ws_err)
    }
    async fn list_experiments(&self) -> WsResult<Vec<Value>> {
        history::list_experiments(self).await
    }
    async fn create_experiment(&self, name: &str) -> WsResult<(Value, bool)> {
        history::create_experiment(self, name).await
    }
    async fn list_runs(&self, filter: &RunFilter) -> WsResult<Vec<Value>> {
        runs::list_runs(self, filter).await
    }
    async fn show_run(&self, run_id: &str) -> WsResult<Value> {
        runs::show_run(self, run_id).await
    }
    async fn cancel_run(&self, run_id: &str) -> WsResult<Value> {
        runs::cancel_run(self, run_id).await
    }
    async fn add_run_tags(&self, run_id: &str, tags: &[(String, String)]) -> WsResult<Value> {
        runs::add_run_tags(self, run_id, tags).await
    }
    async fn run_metrics(&self, run_id: &str) -> WsResult<Value> {
        history::run_metrics(self, run_id).await
    }
    async fn submit_script(
        &self,
        request: &crate::workspace::SubmitScript,
        logs: &dyn crate::workspace::LogSink,
    ) -> WsResult<crate::workspace::RunOutcome> {
        submit::submit_script(self, request, logs).await
    }
    async fn submit_hyperdrive(
        &self,
        request: &crate::workspace::SubmitHyperdrive,
        logs: &dyn crate::workspace::LogSink,
    ) -> WsResult<crate::workspace::RunOutcome> {
        submit::submit_hyperdrive(self, request, logs).await
    }
    async fn monitor_logs(
        &self,
        run_id: &str,
        logs: &dyn crate::workspace::LogSink,
    ) -> WsResult<crate::workspace::RunOutcome> {
        submit::monitor(self, run_id, logs).await
    }
    async fn download_logs(&self, run_id: &str, output_dir: &std::path::Path) -> WsResult<Value> {
        runs::download_logs(self, run_id, output_dir).await
    }
}
