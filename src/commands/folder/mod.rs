//! `azml folder attach`: write what v1 wrote into a project folder —
//! `.azureml/config.json`, the `local` and `docker` runconfigs,
//! `conda_dependencies.yml` and `.amlignore` — without clobbering user files.

use super::{Context, print};
use crate::cli::folder::{FolderAttachArgs, FolderCommand};
use crate::config::{self, AzureWorkspaceRef, WorkspaceTarget};
use crate::error::UserError;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The files azureml-core 1.57.0 wrote (see tests/fixtures/generated-azureml-core-1.57.0).
const LOCAL_RUNCONFIG: &str = include_str!("templates/local");
const DOCKER_RUNCONFIG: &str = include_str!("templates/docker");
const CONDA_DEPENDENCIES: &str = include_str!("templates/conda_dependencies.yml");
const AMLIGNORE: &str = include_str!("templates/amlignore");

/// The two lines of the v1 `local` runconfig that make it build a conda env.
const V1_PYTHON_LINES: &str = "    userManagedDependencies: false\n    interpreterPath: python\n";

pub async fn dispatch(ctx: &Context, command: FolderCommand) -> anyhow::Result<i32> {
    match command {
        FolderCommand::Attach(args) => attach(ctx, &args).await,
    }
}

async fn attach(ctx: &Context, args: &FolderAttachArgs) -> anyhow::Result<i32> {
    create_missing_folder(ctx, &args.workspace.path)?;
    let resolved = ctx.resolve(&args.workspace, None)?;
    let folder =
        args.workspace.path.canonicalize().map_err(|e| {
            UserError::usage(format!("--path {}: {e}", args.workspace.path.display()))
        })?;
    let experiment = experiment_name(args.experiment_name.as_deref(), &folder)?;
    let files = plan_files(&resolved.target, &experiment)?;
    let written = write_files(ctx, &folder, &files)?;
    tracing::info!(?written, "folder attach wrote files");
    let summary = summary(&resolved.target, &experiment, &folder);
    print(&ctx.printer, &summary)
}

/// v1 created a `--path` that did not exist yet ("Creating non-existent
/// path"); only a path that is a file is an error.
fn create_missing_folder(ctx: &Context, path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(path)
        .map_err(|e| UserError::failed(format!("cannot create --path {}: {e}", path.display())))?;
    ctx.printer
        .info(format!("Created the folder {}", path.display()));
    Ok(())
}

/// `-e`, else the folder's own name (v1's default), checked against v1's rule.
fn experiment_name(flag: Option<&str>, folder: &Path) -> anyhow::Result<String> {
    let name = match flag {
        Some(name) => name.to_string(),
        None => folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    config::validate_experiment_name(&name).map_err(|e| {
        let hint = if flag.is_none() {
            "the folder name is the default experiment name; pass -e NAME to choose another"
        } else {
            "experiment names start with a letter or digit and continue with letters, digits, '_' or '-'"
        };
        UserError::usage(e.to_string()).with_hint(hint)
    })?;
    Ok(name)
}

/// One file `folder attach` writes, relative to the folder.
struct PlannedFile {
    relative: &'static str,
    contents: String,
    /// config.json is replaced (after a backup) when it differs; the rest are
    /// written only when absent.
    replace: bool,
}

fn plan_files(target: &WorkspaceTarget, experiment: &str) -> anyhow::Result<Vec<PlannedFile>> {
    let local_runconfig = match target {
        WorkspaceTarget::Azure(_) => LOCAL_RUNCONFIG.to_string(),
        WorkspaceTarget::Local { .. } => local_workspace_runconfig()?,
    };
    let file = |relative, contents: String, replace| PlannedFile {
        relative,
        contents,
        replace,
    };
    Ok(vec![
        file(
            ".azureml/config.json",
            config_json(target, experiment),
            true,
        ),
        file(".azureml/local", local_runconfig, false),
        file(".azureml/docker", DOCKER_RUNCONFIG.to_string(), false),
        file(
            ".azureml/conda_dependencies.yml",
            CONDA_DEPENDENCIES.to_string(),
            false,
        ),
        file(".amlignore", AMLIGNORE.to_string(), false),
    ])
}

/// v1 wrote `json.dumps({"Id": exp, "Scope": …})`: one line, Python's separators.
/// For the local workspace azml writes its documented local form.
pub fn config_json(target: &WorkspaceTarget, experiment: &str) -> String {
    let quoted = |s: &str| Value::String(s.to_string()).to_string();
    match target {
        WorkspaceTarget::Azure(workspace) => format!(
            "{{\"Id\": {}, \"Scope\": {}}}",
            quoted(experiment),
            quoted(&scope(workspace, experiment))
        ),
        WorkspaceTarget::Local { .. } => format!(
            "{{\"local_workspace\": true, \"experiment_name\": {}}}\n",
            quoted(experiment)
        ),
    }
}

fn scope(workspace: &AzureWorkspaceRef, experiment: &str) -> String {
    format!("{}/projects/{experiment}", workspace.arm_id())
}

/// The v1 `local` runconfig, changed to run with this machine's Python as-is.
fn local_workspace_runconfig() -> anyhow::Result<String> {
    let python = python_on_path().ok_or_else(|| {
        UserError::failed("no python3 or python found on PATH").with_hint(
            "install Python 3, or edit interpreterPath in .azureml/local after attaching",
        )
    })?;
    let lines = format!(
        "    userManagedDependencies: true\n    interpreterPath: {}\n",
        yaml_scalar(&python.display().to_string())
    );
    Ok(LOCAL_RUNCONFIG.replacen(V1_PYTHON_LINES, &lines, 1))
}

/// A plain YAML scalar when safe, else single-quoted.
fn yaml_scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "''"))
    }
}

/// The absolute path of `python3` (else `python`) on PATH.
pub fn python_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["python3", "python"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Write the planned files; returns the ones written. Existing runconfigs,
/// conda file and `.amlignore` are kept; a different config.json is backed up.
fn write_files(
    ctx: &Context,
    folder: &Path,
    files: &[PlannedFile],
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for file in files {
        let path = folder.join(file.relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                UserError::failed(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        match std::fs::read(&path) {
            Ok(existing) if existing == file.contents.as_bytes() => continue,
            Ok(_) if !file.replace => {
                ctx.printer.info(format!("Kept existing {}", file.relative));
                continue;
            }
            Ok(_) => backup(ctx, &path)?,
            Err(_) => {}
        }
        write_atomically(&path, &file.contents)?;
        written.push(path);
    }
    Ok(written)
}

/// Write via a temporary file and a rename, so an interrupted attach never
/// leaves a truncated file behind.
fn write_atomically(path: &Path, contents: &str) -> anyhow::Result<()> {
    let temporary = with_suffix(path, ".azml-tmp");
    let result =
        std::fs::write(&temporary, contents).and_then(|()| std::fs::rename(&temporary, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temporary);
        return Err(UserError::failed(format!("cannot write {}: {e}", path.display())).into());
    }
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Copy a user's config.json aside before replacing it.
fn backup(ctx: &Context, path: &Path) -> anyhow::Result<()> {
    let backup = std::fs::read(path)
        .and_then(|current| write_backup(path, &current))
        .map_err(|e| UserError::failed(format!("cannot back up {}: {e}", path.display())))?;
    ctx.printer.warn(format!(
        "replaced {}; the previous one is in {}",
        path.display(),
        backup.display()
    ));
    Ok(())
}

/// Keep `contents` of `path` in `path.bak`, else the first free `path.bak.N`
/// (attaching A, then B, then C keeps both A's and B's); a backup that holds
/// the same bytes already is reused. Never overwrites a file.
fn write_backup(path: &Path, contents: &[u8]) -> std::io::Result<PathBuf> {
    use std::io::Write;
    for n in 0..u32::MAX {
        let backup = match n {
            0 => with_suffix(path, ".bak"),
            n => with_suffix(path, &format!(".bak.{n}")),
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&backup)
        {
            Ok(mut file) => return file.write_all(contents).map(|()| backup),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if std::fs::read(&backup).is_ok_and(|old| old == contents) {
                    return Ok(backup);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free backup name"))
}

/// v1's output keys.
fn summary(target: &WorkspaceTarget, experiment: &str, folder: &Path) -> Value {
    let path = folder.display().to_string();
    match target {
        WorkspaceTarget::Azure(w) => json!({
            "Experiment name": experiment,
            "Project path": path,
            "Resource group": w.resource_group,
            "Subscription id": w.subscription_id,
            "Workspace name": w.workspace_name,
        }),
        WorkspaceTarget::Local { root } => json!({
            "Experiment name": experiment,
            "Project path": path,
            "Resource group": null,
            "Subscription id": null,
            "Workspace name": "local",
            "Local workspace": root.display().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_local_template_has_the_lines_we_replace() {
        assert!(LOCAL_RUNCONFIG.contains(V1_PYTHON_LINES));
    }

    #[test]
    fn yaml_scalar_quotes_unusual_paths() {
        assert_eq!(yaml_scalar("/usr/bin/python3"), "/usr/bin/python3");
        assert_eq!(yaml_scalar("/opt/my py/python"), "'/opt/my py/python'");
        assert_eq!(yaml_scalar("/o'k/python"), "'/o''k/python'");
    }

    #[test]
    fn azure_config_json_is_v1_one_line_scope_form() {
        let target = WorkspaceTarget::Azure(AzureWorkspaceRef {
            subscription_id: "sub".into(),
            resource_group: "rg".into(),
            workspace_name: "ws".into(),
        });
        assert_eq!(
            config_json(&target, "exp"),
            "{\"Id\": \"exp\", \"Scope\": \"/subscriptions/sub/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/projects/exp\"}"
        );
    }
}
