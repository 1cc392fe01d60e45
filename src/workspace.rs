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
    /// A failure with advice for the user.
    #[error("{message}")]
    Failed {
        message: String,
        hint: Option<String>,
    },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl ExitCoded for WorkspaceError {
    fn exit_code(&self) -> i32 {
        match self {
            WorkspaceError::NotFound { .. } => exit::NOT_FOUND,
            // A backend error inside decides (e.g. an ARM 404 → 3).
            WorkspaceError::Other(inner) => crate::error::exit_code_of(inner).0,
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
            WorkspaceError::Unsupported { hint, .. } | WorkspaceError::Failed { hint, .. } => {
                hint.clone()
            }
            WorkspaceError::Other(inner) => crate::error::exit_code_of(inner).1,
            _ => None,
        }
    }
}

pub type WsResult<T> = Result<T, WorkspaceError>;

/// Filters of `run list`, as v1 named them.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub experiment: Option<String>,
    /// At most this many, newest first: v1's `runs[:last]`, so 0 lists none.
    pub last: usize,
    pub status: Option<String>,
    pub tags: Vec<TagFilter>,
    pub parent_run_id: Option<String>,
    pub compute_target: Option<String>,
}

/// One `--tags` term of `run list`: `key` matches a run that has the tag,
/// whatever its value (as the v1 SDK's `get_runs(tags="key")`); `key=value`
/// only that value, `key=` only the empty one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter {
    pub key: String,
    pub value: Option<String>,
}

impl TagFilter {
    pub fn matches(&self, value: Option<&str>) -> bool {
        match (&self.value, value) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(wanted), Some(value)) => wanted == value,
        }
    }
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

    // Run submission and logs: the defaults say "not supported"; each backend
    // overrides what it can do.

    async fn submit_script(
        &self,
        request: &SubmitScript,
        logs: &dyn LogSink,
    ) -> WsResult<RunOutcome> {
        let _ = (request, logs);
        Err(not_supported("run submit-script"))
    }
    async fn submit_hyperdrive(
        &self,
        request: &SubmitHyperdrive,
        logs: &dyn LogSink,
    ) -> WsResult<RunOutcome> {
        let _ = (request, logs);
        Err(not_supported("run submit-hyperdrive"))
    }
    /// Follow a run's logs until it ends.
    async fn monitor_logs(&self, run_id: &str, logs: &dyn LogSink) -> WsResult<RunOutcome> {
        let _ = (run_id, logs);
        Err(not_supported("run monitor-logs"))
    }
    /// Copy a run's log files into `output_dir` (created if missing); returns what was written.
    async fn download_logs(&self, run_id: &str, output_dir: &std::path::Path) -> WsResult<Value> {
        let _ = (run_id, output_dir);
        Err(not_supported("run download-logs"))
    }
}

/// The error of a trait method a backend has not overridden.
fn not_supported(what: &str) -> WorkspaceError {
    WorkspaceError::Unsupported {
        what: what.into(),
        backend: "selected",
        hint: Some("see README.md for what each backend supports today".into()),
    }
}

/// Where a backend writes the output of a run it follows (`submit-*` without
/// `--async`, `monitor-logs`). The command layer routes it through the printer.
pub trait LogSink: Send + Sync {
    /// A chunk of log text, written as it arrives (not necessarily whole lines).
    fn write(&self, chunk: &str);

    /// One of azml's own lines about the run (run id, snapshot, upload summary):
    /// unlike the run's output, `--only-show-errors` silences it.
    fn info(&self, message: &str) {
        self.write(&format!("{message}\n"));
    }

    /// A warning about the run; `--only-show-errors` silences it.
    fn warn(&self, message: &str) {
        self.write(&format!("warning: {message}\n"));
    }
}

/// `run submit-script`, fully resolved: the runconfig after v1's CLI overrides.
#[derive(Debug, Clone)]
pub struct SubmitScript {
    /// The runconfig after CLI overrides (script/arguments, `--ct`, `-d`).
    pub run_config: crate::model::runconfig::RunConfig,
    /// `--source-directory`, else `--path` (v1): what gets snapshotted; the script is relative to it.
    pub source_dir: std::path::PathBuf,
    /// The project folder (where `.azureml/` lives).
    pub project_dir: std::path::PathBuf,
    pub experiment: String,
    /// `--async`: return once submitted instead of following the run.
    pub asynchronous: bool,
}

/// `run submit-hyperdrive`: the per-child script submission plus the sweep.
#[derive(Debug, Clone)]
pub struct SubmitHyperdrive {
    pub script: SubmitScript,
    pub hyperdrive: crate::model::hdconfig::HyperDriveConfig,
    /// `--seed`: same seed, same proposals.
    pub seed: Option<u64>,
}

/// What a followed (or submitted) run ended as.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run JSON (v1 RunDto keys: `runId`, `status`, …).
    pub run: Value,
    /// True when the user pressed Ctrl-C while azml followed the run (exit 130).
    pub interrupted: bool,
}

impl RunOutcome {
    pub fn status(&self) -> Option<&str> {
        self.run.get("status").and_then(Value::as_str)
    }
}
