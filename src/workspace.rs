//! The backend-agnostic face of a workspace. Commands call these methods and
//! print what they return; `local::LocalWorkspace` and `arm::AzureWorkspace`
//! implement them. Values are the JSON the user sees (ARM resource shapes for
//! computes, v1 RunDto keys for runs), so both backends print alike.

use crate::error::{ExitCoded, exit};
use serde_json::Value;

/// Why a workspace operation failed, in terms the user can act on.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{kind} '{name}' was not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{what} needs an Azure workspace")]
    NeedsAzure { what: String },
    #[error("{what} is not supported by the {backend} workspace")]
    Unsupported {
        what: String,
        backend: &'static str,
        hint: Option<String>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl ExitCoded for WorkspaceError {
    fn exit_code(&self) -> i32 {
        match self {
            WorkspaceError::NotFound { .. } => exit::NOT_FOUND,
            _ => exit::ERROR,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            WorkspaceError::NeedsAzure { .. } => Some(
                "attach an Azure workspace with `azml folder attach -w NAME -g GROUP` \
                 (or pass -w/-g/--subscription-id)"
                    .into(),
            ),
            WorkspaceError::Unsupported { hint, .. } => hint.clone(),
            _ => None,
        }
    }
}

pub type WsResult<T> = Result<T, WorkspaceError>;

/// Filters of `run list`, as v1 named them.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub experiment: Option<String>,
    pub last: usize,
    pub status: Option<String>,
    pub tags: Vec<(String, String)>,
    pub parent_run_id: Option<String>,
    pub compute_target: Option<String>,
    pub minimal: bool,
}

/// Computes, experiments and runs of one workspace.
#[allow(async_fn_in_trait)]
pub trait Workspace {
    /// `workspace show`.
    async fn show_workspace(&self) -> WsResult<Value>;
    async fn list_computes(&self) -> WsResult<Vec<Value>>;
    async fn show_compute(&self, name: &str) -> WsResult<Value>;
    async fn list_experiments(&self) -> WsResult<Vec<Value>>;
    /// Returns the experiment and whether it was newly created.
    async fn create_experiment(&self, name: &str) -> WsResult<(Value, bool)>;
    async fn list_runs(&self, filter: &RunFilter) -> WsResult<Vec<Value>>;
    async fn show_run(&self, run_id: &str) -> WsResult<Value>;
    async fn cancel_run(&self, run_id: &str) -> WsResult<Value>;
    async fn add_run_tags(&self, run_id: &str, tags: &[(String, String)]) -> WsResult<Value>;
    /// `{name: value}` for one logged value, `{name: [values…]}` for several.
    async fn run_metrics(&self, run_id: &str) -> WsResult<Value>;
}
