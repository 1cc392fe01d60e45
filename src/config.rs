//! Which workspace a command talks to: flags, then `.azureml/config.json`
//! (both v1 forms) found by walking up from `--path`, then environment; and
//! when nothing names an Azure workspace, the embedded local workspace.
//!
//! Config file forms accepted (in every discovery location):
//! - SDK form: `{"subscription_id": …, "resource_group": …, "workspace_name": …}`
//!   (an optional `"experiment_name"` is honoured too);
//! - v1 project form: `{"Id": "<experiment>", "Scope": "/subscriptions/<s>/resourceGroups/<g>/
//!   providers/Microsoft.MachineLearningServices/workspaces/<w>/projects/<experiment>"}`;
//! - azml's local form, written by `folder attach` without Azure flags:
//!   `{"local_workspace": true, "experiment_name": "<experiment>"}`.

use crate::error::{ExitCoded, exit};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// An Azure ML workspace named by subscription, resource group and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureWorkspaceRef {
    pub subscription_id: String,
    pub resource_group: String,
    pub workspace_name: String,
}

impl AzureWorkspaceRef {
    /// The ARM id of the workspace, as v1's `Scope` started.
    pub fn arm_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.MachineLearningServices/workspaces/{}",
            self.subscription_id, self.resource_group, self.workspace_name
        )
    }
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

/// What the command line said about the workspace (all optional).
#[derive(Debug, Clone, Default)]
pub struct WorkspaceSelection {
    pub path: PathBuf,
    pub subscription_id: Option<String>,
    pub resource_group: Option<String>,
    pub workspace_name: Option<String>,
    pub experiment: Option<String>,
}

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}:{line}:{column}: invalid JSON: {message}")]
    Malformed {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
    #[error("cannot read {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("the Azure workspace is only partly specified: missing {missing}")]
    Incomplete { missing: String },
    #[error("invalid {kind} name '{name}': {rule}")]
    BadName {
        kind: &'static str,
        name: String,
        rule: &'static str,
    },
    #[error("--path {0} is not a directory")]
    BadPath(PathBuf),
}

impl ExitCoded for ConfigError {
    fn exit_code(&self) -> i32 {
        match self {
            ConfigError::Incomplete { .. }
            | ConfigError::BadName { .. }
            | ConfigError::BadPath(_) => exit::USAGE,
            _ => exit::ERROR,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Incomplete { .. } => Some(
                "pass -w NAME -g GROUP --subscription-id ID (or set AZML_WORKSPACE_NAME, \
                 AZML_RESOURCE_GROUP, AZURE_SUBSCRIPTION_ID), or none of them for the local workspace"
                    .into(),
            ),
            ConfigError::BadName { kind, .. } => Some(format!(
                "{kind} names start with a letter or digit and continue with letters, digits, '_' or '-'"
            )),
            ConfigError::Malformed { .. } | ConfigError::Invalid { .. } => Some(
                "fix the file, or run `azml folder attach` in a fresh folder to see a valid one".into(),
            ),
            _ => None,
        }
    }
}

/// The files v1 looked for in each folder, in order.
pub const CONFIG_CANDIDATES: [&str; 6] = [
    ".azureml/config.json",
    ".azureml/project.json",
    "aml_config/config.json",
    "aml_config/project.json",
    "config.json",
    "project.json",
];

/// What one config file said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FileSettings {
    local: bool,
    subscription_id: Option<String>,
    resource_group: Option<String>,
    workspace_name: Option<String>,
    experiment: Option<String>,
}

/// Resolve with the process environment.
pub fn resolve(selection: &WorkspaceSelection) -> Result<ResolvedWorkspace, ConfigError> {
    resolve_with_env(selection, &|name| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    })
}

/// Resolve with `env` standing in for the environment (tests pass their own).
pub fn resolve_with_env(
    selection: &WorkspaceSelection,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ResolvedWorkspace, ConfigError> {
    let start = absolute(&selection.path)?;
    let (file_settings, project_dir, config_file) = match discover(&start)? {
        Some((file, project_dir, settings)) => (settings, project_dir, Some(file)),
        None => (FileSettings::default(), start.clone(), None),
    };
    let target = choose_target(selection, &file_settings, &project_dir, env)?;
    let experiment = selection.experiment.clone().or(file_settings.experiment);
    if let Some(name) = &experiment {
        validate_experiment_name(name)?;
    }
    Ok(ResolvedWorkspace {
        target,
        experiment,
        project_dir,
        config_file,
    })
}

fn absolute(path: &Path) -> Result<PathBuf, ConfigError> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| ConfigError::Read {
                file: path.into(),
                source: e,
            })?
            .join(path)
    };
    if !joined.is_dir() {
        return Err(ConfigError::BadPath(path.into()));
    }
    // Canonical paths make `Project path` and parent walking predictable.
    Ok(joined.canonicalize().unwrap_or(joined))
}

/// Walk from `start` up through all parents; in each folder the first candidate
/// that is a workspace config wins. Returns the file, the project folder it
/// belongs to, and what it said.
///
/// A bare `config.json`/`project.json` is a common file name for other tools,
/// so one that is not JSON or names none of our keys is passed over; inside
/// `.azureml/` or `aml_config/` any problem is reported.
fn discover(start: &Path) -> Result<Option<(PathBuf, PathBuf, FileSettings)>, ConfigError> {
    for dir in start.ancestors() {
        for candidate in CONFIG_CANDIDATES {
            let file = dir.join(candidate);
            if !file.is_file() {
                continue;
            }
            let bare = !candidate.contains('/');
            match read_config(&file) {
                Ok(Some(settings)) => return Ok(Some((file, dir.to_path_buf(), settings))),
                Ok(None) if bare => tracing::debug!(?file, "not a workspace config; skipped"),
                Err(e) if bare => tracing::debug!(?file, error = %e, "unreadable config; skipped"),
                Ok(None) => return Ok(Some((file, dir.to_path_buf(), FileSettings::default()))),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(None)
}

/// The settings in `file`, or `None` when it names none of the keys we know.
fn read_config(file: &Path) -> Result<Option<FileSettings>, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError::Read {
        file: file.into(),
        source: e,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| ConfigError::Malformed {
        file: file.into(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let Value::Object(map) = value else {
        return Err(invalid(file, "expected a JSON object"));
    };
    if !KNOWN_KEYS.iter().any(|k| map.contains_key(*k)) {
        return Ok(None);
    }
    parse_settings(file, &map).map(Some)
}

/// Keys that make a JSON file a workspace config.
const KNOWN_KEYS: [&str; 7] = [
    "Scope",
    "Id",
    "subscription_id",
    "resource_group",
    "workspace_name",
    "experiment_name",
    "local_workspace",
];

fn invalid(file: &Path, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        file: file.into(),
        message: message.into(),
    }
}

fn string_key(
    file: &Path,
    map: &Map<String, Value>,
    key: &str,
) -> Result<Option<String>, ConfigError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(
            file,
            format!("\"{key}\" must be a string, found {other}"),
        )),
    }
}

fn parse_settings(file: &Path, map: &Map<String, Value>) -> Result<FileSettings, ConfigError> {
    if let Some(scope) = string_key(file, map, "Scope")? {
        let mut settings = parse_scope(file, &scope)?;
        if settings.experiment.is_none() {
            settings.experiment = string_key(file, map, "Id")?;
        }
        return Ok(settings);
    }
    let local = match map.get("local_workspace") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(invalid(
                file,
                format!("\"local_workspace\" must be true or false, found {other}"),
            ));
        }
    };
    Ok(FileSettings {
        local,
        subscription_id: string_key(file, map, "subscription_id")?,
        resource_group: string_key(file, map, "resource_group")?,
        workspace_name: string_key(file, map, "workspace_name")?,
        // v1's project form names the experiment `Id`, also without a `Scope`.
        experiment: match string_key(file, map, "experiment_name")? {
            Some(name) => Some(name),
            None => string_key(file, map, "Id")?,
        },
    })
}

/// `/subscriptions/<s>/resourceGroups/<g>/providers/Microsoft.MachineLearningServices/workspaces/<w>[/projects/<e>]`
fn parse_scope(file: &Path, scope: &str) -> Result<FileSettings, ConfigError> {
    let pieces: Vec<&str> = scope.trim_matches('/').split('/').collect();
    let segment = |name: &str| {
        pieces
            .iter()
            .position(|p| p.eq_ignore_ascii_case(name))
            .and_then(|i| pieces.get(i + 1))
            .filter(|v| !v.is_empty())
            .map(|v| v.to_string())
    };
    let (Some(subscription_id), Some(resource_group), Some(workspace_name)) = (
        segment("subscriptions"),
        segment("resourceGroups"),
        segment("workspaces"),
    ) else {
        return Err(invalid(
            file,
            format!(
                "\"Scope\" must look like /subscriptions/<id>/resourceGroups/<group>/providers/\
                 Microsoft.MachineLearningServices/workspaces/<name>/projects/<experiment>, found '{scope}'"
            ),
        ));
    };
    Ok(FileSettings {
        local: false,
        subscription_id: Some(subscription_id),
        resource_group: Some(resource_group),
        workspace_name: Some(workspace_name),
        experiment: segment("projects"),
    })
}

fn choose_target(
    selection: &WorkspaceSelection,
    file: &FileSettings,
    project_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<WorkspaceTarget, ConfigError> {
    let flags_name_azure = selection.subscription_id.is_some()
        || selection.resource_group.is_some()
        || selection.workspace_name.is_some();
    if file.local && !flags_name_azure {
        return Ok(local_target(project_dir, env));
    }
    let subscription_id = (selection.subscription_id.clone())
        .or_else(|| file.subscription_id.clone())
        .or_else(|| env("AZURE_SUBSCRIPTION_ID"));
    let resource_group = (selection.resource_group.clone())
        .or_else(|| file.resource_group.clone())
        .or_else(|| env("AZML_RESOURCE_GROUP"));
    let workspace_name = (selection.workspace_name.clone())
        .or_else(|| file.workspace_name.clone())
        .or_else(|| env("AZML_WORKSPACE_NAME"));
    // Like az: with the group and workspace named, the az CLI's default subscription completes them.
    let subscription_id = subscription_id.or_else(|| {
        (resource_group.is_some() && workspace_name.is_some())
            .then(|| az_cli_default_subscription(env))
            .flatten()
    });
    match (subscription_id, resource_group, workspace_name) {
        (None, None, None) => Ok(local_target(project_dir, env)),
        (Some(subscription_id), Some(resource_group), Some(workspace_name)) => {
            validate_workspace_name(&workspace_name)?;
            Ok(WorkspaceTarget::Azure(AzureWorkspaceRef {
                subscription_id,
                resource_group,
                workspace_name,
            }))
        }
        (s, g, w) => {
            let missing: Vec<&str> = [
                (s.is_none(), "subscription id (--subscription-id)"),
                (g.is_none(), "resource group (-g)"),
                (w.is_none(), "workspace name (-w)"),
            ]
            .into_iter()
            .filter_map(|(absent, what)| absent.then_some(what))
            .collect();
            Err(ConfigError::Incomplete {
                missing: missing.join(", "),
            })
        }
    }
}

/// The `isDefault` subscription in `$AZURE_CONFIG_DIR` (else `~/.azure`)`/azureProfile.json`.
fn az_cli_default_subscription(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let dir = env("AZURE_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".azure")))?;
    crate::arm::subscription::az_cli_default_subscription(&dir.join("azureProfile.json"))
}

/// `AZML_LOCAL_WORKSPACE`, else `<project>/.azureml/localws`.
fn local_target(project_dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> WorkspaceTarget {
    let root = env("AZML_LOCAL_WORKSPACE")
        .map(PathBuf::from)
        .unwrap_or_else(|| default_local_workspace(project_dir));
    WorkspaceTarget::Local { root }
}

/// Where a project's embedded local workspace lives unless
/// `AZML_LOCAL_WORKSPACE` says otherwise. Never code: snapshots leave it out.
pub fn default_local_workspace(project_dir: &Path) -> PathBuf {
    project_dir.join(".azureml").join("localws")
}

/// Every folder that may hold local workspace data for this project (the
/// default one and `$AZML_LOCAL_WORKSPACE`): never part of a snapshot, and
/// never searched for the user's files (run folders hold old copies of them).
pub fn local_workspace_dirs(project_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![default_local_workspace(project_dir)];
    if let Some(custom) = std::env::var_os("AZML_LOCAL_WORKSPACE").filter(|v| !v.is_empty()) {
        dirs.push(PathBuf::from(custom));
    }
    dirs
}

/// v1's experiment rule: `^[a-zA-Z0-9][\w\-]{0,254}$`.
pub fn validate_experiment_name(name: &str) -> Result<(), ConfigError> {
    check_name(name, "experiment", 1, 255).map_err(|rule| ConfigError::BadName {
        kind: "experiment",
        name: name.into(),
        rule,
    })
}

/// v1's workspace rule: `^[a-zA-Z0-9][\w\-]{2,32}$`.
pub fn validate_workspace_name(name: &str) -> Result<(), ConfigError> {
    check_name(name, "workspace", 3, 33).map_err(|rule| ConfigError::BadName {
        kind: "workspace",
        name: name.into(),
        rule,
    })
}

fn check_name(name: &str, _kind: &str, min: usize, max: usize) -> Result<(), &'static str> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err("it is empty");
    };
    if !first.is_ascii_alphanumeric() {
        return Err("it must start with a letter or digit (a-z, A-Z, 0-9)");
    }
    // Python's `\w` on str patterns: any Unicode letter or digit, or '_'.
    if !chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
        return Err("only letters, digits, '_' and '-' are allowed");
    }
    let len = name.chars().count();
    if len < min || len > max {
        return Err(if min == 1 {
            "it must be at most 255 characters long"
        } else {
            "it must be 3 to 33 characters long"
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules_match_v1_regexes() {
        assert!(validate_experiment_name("a").is_ok());
        assert!(validate_experiment_name("mnist-2_x").is_ok());
        assert!(validate_experiment_name("-x").is_err());
        assert!(validate_experiment_name("a b").is_err());
        assert!(validate_experiment_name(&"a".repeat(255)).is_ok());
        assert!(validate_experiment_name(&"a".repeat(256)).is_err());
        assert!(validate_workspace_name("ab").is_err());
        assert!(validate_workspace_name("abc").is_ok());
        assert!(validate_workspace_name(&"a".repeat(33)).is_ok());
        assert!(validate_workspace_name(&"a".repeat(34)).is_err());
        assert!(validate_workspace_name("_ws").is_err());
    }

    #[test]
    fn scope_gives_workspace_and_experiment() {
        let s = parse_scope(
            Path::new("c.json"),
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/projects/exp",
        )
        .unwrap();
        assert_eq!(s.subscription_id.as_deref(), Some("s1"));
        assert_eq!(s.resource_group.as_deref(), Some("rg"));
        assert_eq!(s.workspace_name.as_deref(), Some("ws"));
        assert_eq!(s.experiment.as_deref(), Some("exp"));
        assert!(parse_scope(Path::new("c.json"), "/subscriptions/s1").is_err());
    }
}

#[cfg(test)]
mod discovery_tests {
    use super::*;
    use std::collections::HashMap;

    const SCOPE: &str = "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.MachineLearningServices/workspaces/ws1/projects/exp1";

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn selection(path: &Path) -> WorkspaceSelection {
        WorkspaceSelection {
            path: path.into(),
            ..WorkspaceSelection::default()
        }
    }

    fn resolve_in(
        sel: &WorkspaceSelection,
        vars: &[(&str, &str)],
    ) -> Result<ResolvedWorkspace, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve_with_env(sel, &move |name| vars.get(name).cloned())
    }

    fn azure(s: &str, g: &str, w: &str) -> WorkspaceTarget {
        WorkspaceTarget::Azure(AzureWorkspaceRef {
            subscription_id: s.into(),
            resource_group: g.into(),
            workspace_name: w.into(),
        })
    }

    fn canonical(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().canonicalize().unwrap()
    }

    #[test]
    fn every_v1_location_is_found_in_both_forms() {
        for location in CONFIG_CANDIDATES {
            for scope_form in [true, false] {
                let dir = tempfile::tempdir().unwrap();
                let text = if scope_form {
                    format!("{{\"Id\": \"exp1\", \"Scope\": \"{SCOPE}\"}}")
                } else {
                    r#"{"subscription_id": "s1", "resource_group": "rg1", "workspace_name": "ws1"}"#
                        .into()
                };
                write(&dir.path().join(location), &text);
                let resolved = resolve_in(&selection(dir.path()), &[]).unwrap();
                assert_eq!(resolved.target, azure("s1", "rg1", "ws1"), "{location}");
                assert_eq!(resolved.project_dir, canonical(&dir), "{location}");
                assert_eq!(resolved.config_file, Some(canonical(&dir).join(location)));
                let expected_exp = scope_form.then(|| "exp1".to_string());
                assert_eq!(resolved.experiment, expected_exp, "{location}");
            }
        }
    }

    #[test]
    fn first_candidate_in_a_folder_wins() {
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join("config.json"),
            r#"{"subscription_id": "late", "resource_group": "g", "workspace_name": "www"}"#,
        );
        write(
            &dir.path().join("aml_config/project.json"),
            r#"{"subscription_id": "early", "resource_group": "g", "workspace_name": "www"}"#,
        );
        let resolved = resolve_in(&selection(dir.path()), &[]).unwrap();
        assert_eq!(resolved.target, azure("early", "g", "www"));
    }

    #[test]
    fn discovery_walks_up_through_parents() {
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join(".azureml/config.json"),
            &format!("{{\"Scope\": \"{SCOPE}\"}}"),
        );
        let deep = dir.path().join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        let resolved = resolve_in(&selection(&deep), &[]).unwrap();
        assert_eq!(resolved.target, azure("s1", "rg1", "ws1"));
        assert_eq!(resolved.project_dir, canonical(&dir));
        assert_eq!(resolved.experiment.as_deref(), Some("exp1"));
    }

    #[test]
    fn flags_win_over_config_and_env() {
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join(".azureml/config.json"),
            &format!("{{\"Scope\": \"{SCOPE}\"}}"),
        );
        let mut sel = selection(dir.path());
        sel.workspace_name = Some("flagws".into());
        sel.experiment = Some("flagexp".into());
        let resolved = resolve_in(&sel, &[("AZML_WORKSPACE_NAME", "envws")]).unwrap();
        assert_eq!(resolved.target, azure("s1", "rg1", "flagws"));
        assert_eq!(resolved.experiment.as_deref(), Some("flagexp"));
    }

    #[test]
    fn environment_fills_in_when_nothing_else_names_a_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("AZURE_SUBSCRIPTION_ID", "es"),
            ("AZML_RESOURCE_GROUP", "eg"),
            ("AZML_WORKSPACE_NAME", "ews"),
        ];
        let resolved = resolve_in(&selection(dir.path()), &env).unwrap();
        assert_eq!(resolved.target, azure("es", "eg", "ews"));
        // Flags plus env: -w/-g given, subscription from the environment.
        let mut sel = selection(dir.path());
        sel.workspace_name = Some("fws".into());
        sel.resource_group = Some("fg".into());
        let resolved = resolve_in(&sel, &env[..1]).unwrap();
        assert_eq!(resolved.target, azure("es", "fg", "fws"));
    }

    #[test]
    fn nothing_named_means_the_local_workspace_under_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let resolved = resolve_in(&selection(dir.path()), &[]).unwrap();
        assert_eq!(
            resolved.target,
            WorkspaceTarget::Local {
                root: canonical(&dir).join(".azureml/localws")
            }
        );
        assert_eq!(resolved.config_file, None);
        let resolved = resolve_in(
            &selection(dir.path()),
            &[("AZML_LOCAL_WORKSPACE", "/tmp/elsewhere")],
        )
        .unwrap();
        assert_eq!(
            resolved.target,
            WorkspaceTarget::Local {
                root: "/tmp/elsewhere".into()
            }
        );
    }

    #[test]
    fn local_form_config_means_local_even_with_azure_env() {
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join(".azureml/config.json"),
            r#"{"local_workspace": true, "experiment_name": "mine"}"#,
        );
        let sub = dir.path().join("src");
        std::fs::create_dir(&sub).unwrap();
        let env = [
            ("AZURE_SUBSCRIPTION_ID", "es"),
            ("AZML_RESOURCE_GROUP", "eg"),
            ("AZML_WORKSPACE_NAME", "ews"),
        ];
        let resolved = resolve_in(&selection(&sub), &env).unwrap();
        assert_eq!(
            resolved.target,
            WorkspaceTarget::Local {
                root: canonical(&dir).join(".azureml/localws")
            }
        );
        assert_eq!(resolved.experiment.as_deref(), Some("mine"));
    }

    /// A v1 project file without `Scope` named no workspace (the local one is
    /// used) but its `Id` was dropped rather than taken as the experiment.
    #[test]
    fn a_project_file_without_scope_still_names_the_experiment() {
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join(".azureml/project.json"),
            r#"{"Id": "exp7"}"#,
        );
        let resolved = resolve_in(&selection(dir.path()), &[]).unwrap();
        assert_eq!(resolved.experiment.as_deref(), Some("exp7"));
        assert!(matches!(resolved.target, WorkspaceTarget::Local { .. }));
    }

    #[test]
    fn partly_named_workspace_is_a_usage_error_naming_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let mut sel = selection(dir.path());
        sel.workspace_name = Some("ws1".into());
        let err = resolve_in(&sel, &[]).unwrap_err();
        assert_eq!(err.exit_code(), exit::USAGE);
        let text = err.to_string();
        assert!(
            text.contains("subscription") && text.contains("resource group"),
            "{text}"
        );
        assert!(!text.contains("workspace name"), "{text}");
    }

    #[test]
    fn malformed_json_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".azureml/config.json");
        write(&file, "{\n  \"subscription_id\": \"s\",\n  oops\n}");
        let err = resolve_in(&selection(dir.path()), &[]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("config.json:3:3"), "{text}");
        assert_eq!(err.exit_code(), exit::ERROR);
        assert!(err.hint().is_some());
    }

    #[test]
    fn wrong_types_and_bad_scope_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".azureml/config.json");
        write(&file, r#"{"subscription_id": 5}"#);
        let text = resolve_in(&selection(dir.path()), &[])
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("\"subscription_id\" must be a string"),
            "{text}"
        );
        write(&file, r#"{"Scope": "/subscriptions/only"}"#);
        let text = resolve_in(&selection(dir.path()), &[])
            .unwrap_err()
            .to_string();
        assert!(text.contains("Scope"), "{text}");
        write(&file, "[1, 2]");
        let text = resolve_in(&selection(dir.path()), &[])
            .unwrap_err()
            .to_string();
        assert!(text.contains("expected a JSON object"), "{text}");
    }

    #[test]
    fn bad_names_are_usage_errors_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let mut sel = selection(dir.path());
        sel.experiment = Some("bad name".into());
        let err = resolve_in(&sel, &[]).unwrap_err();
        assert_eq!(err.exit_code(), exit::USAGE);
        assert!(err.hint().is_some());
        let mut sel = selection(dir.path());
        sel.workspace_name = Some("w".into());
        sel.resource_group = Some("g".into());
        sel.subscription_id = Some("s".into());
        let err = resolve_in(&sel, &[]).unwrap_err();
        assert!(
            err.to_string().contains("invalid workspace name 'w'"),
            "{err}"
        );
    }

    #[test]
    fn az_cli_default_subscription_completes_group_and_workspace_only() {
        let dir = tempfile::tempdir().unwrap();
        let az = dir.path().join("az");
        write(
            &az.join("azureProfile.json"),
            "\u{feff}{\"subscriptions\": [{\"id\": \"azdefault\", \"isDefault\": true}]}",
        );
        let az_dir = az.to_str().unwrap();
        let mut sel = selection(dir.path());
        sel.workspace_name = Some("ws1".into());
        sel.resource_group = Some("rg1".into());
        let resolved = resolve_in(&sel, &[("AZURE_CONFIG_DIR", az_dir)]).unwrap();
        assert_eq!(resolved.target, azure("azdefault", "rg1", "ws1"));
        // Nothing named: still the local workspace, whatever az is logged into.
        let resolved = resolve_in(&selection(dir.path()), &[("AZURE_CONFIG_DIR", az_dir)]).unwrap();
        assert!(matches!(resolved.target, WorkspaceTarget::Local { .. }));
    }

    #[test]
    fn missing_path_is_a_usage_error() {
        let err = resolve_in(&selection(Path::new("/definitely/not/here")), &[]).unwrap_err();
        assert_eq!(err.exit_code(), exit::USAGE);
    }
}

#[cfg(test)]
mod foreign_file_tests {
    use super::*;

    /// Another tool's `config.json` in a parent folder must not hijack discovery.
    #[test]
    fn bare_config_json_of_another_tool_is_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"theme": "dark"}"#).unwrap();
        let project = dir.path().join("p");
        std::fs::create_dir_all(project.join("sub")).unwrap();
        std::fs::write(project.join("project.json"), "not json at all").unwrap();
        let sel = WorkspaceSelection {
            path: project.join("sub"),
            ..WorkspaceSelection::default()
        };
        let resolved = resolve_with_env(&sel, &|_| None).unwrap();
        assert_eq!(resolved.config_file, None);
        let root = project
            .join("sub")
            .canonicalize()
            .unwrap()
            .join(".azureml/localws");
        assert_eq!(resolved.target, WorkspaceTarget::Local { root });
    }
}
