//! `azml run …`. Submission loads and checks the v1 files before any backend
//! is touched, applies v1's command-line overrides, then hands a resolved
//! request to the backend.

use super::{Backend, Context, print};
use crate::cli::KeyValue;
use crate::cli::run::*;
use crate::config::ResolvedWorkspace;
use crate::error::{UserError, exit};
use crate::model::runconfig::{self, RunConfig};
use crate::model::{ModelError, Warning, hdconfig};
use crate::output::Printer;
use crate::workspace::{LogSink, RunFilter, RunOutcome, SubmitHyperdrive, SubmitScript, Workspace};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

pub async fn dispatch(ctx: &Context, command: RunCommand) -> anyhow::Result<i32> {
    match command {
        RunCommand::SubmitScript(args) => submit_script(ctx, &args).await,
        RunCommand::SubmitHyperdrive(args) => submit_hyperdrive(ctx, &args).await,
        RunCommand::List(args) => list(ctx, &args).await,
        RunCommand::Show(args) => show(ctx, &args).await,
        RunCommand::Cancel(args) => cancel(ctx, &args).await,
        RunCommand::MonitorLogs(args) => monitor_logs(ctx, &args).await,
        RunCommand::DownloadLogs(args) => download_logs(ctx, &args).await,
        RunCommand::Update(args) => update(ctx, &args).await,
        RunCommand::Metrics(args) => metrics(ctx, &args).await,
    }
}

/// Resolve the workspace of a run command (validates `-e` when given).
fn open(ctx: &Context, common: &RunCommonArgs) -> anyhow::Result<(ResolvedWorkspace, Backend)> {
    let resolved = ctx.resolve(&common.workspace, common.experiment_name.as_deref())?;
    let backend = Backend::open(&resolved);
    Ok((resolved, backend))
}

async fn list(ctx: &Context, args: &RunListArgs) -> anyhow::Result<i32> {
    if args.pipeline_run_id.is_some() && args.common.experiment_name.is_some() {
        return Err(UserError::usage(
            "cannot provide both --experiment-name and --pipeline-run-id",
        )
        .with_hint("a pipeline run names its experiment; drop -e")
        .into());
    }
    let (resolved, backend) = open(ctx, &args.common)?;
    let filter = RunFilter {
        experiment: resolved.experiment.clone(),
        last: args.last,
        status: args.status.map(|s| s.as_str().to_string()),
        tags: args.tags.clone(),
        // A pipeline run's steps are its children.
        parent_run_id: args
            .parent_run_id
            .clone()
            .or_else(|| args.pipeline_run_id.clone()),
        compute_target: args.compute_target_name.clone(),
    };
    let mut runs = backend.list_runs(&filter).await?;
    if args.minimal {
        runs = runs.iter().map(minimal_run).collect();
    }
    print(&ctx.printer, &Value::Array(runs))
}

async fn show(ctx: &Context, args: &RunIdArgs) -> anyhow::Result<i32> {
    let (_, backend) = open(ctx, &args.common)?;
    let run = backend.show_run(&args.run).await?;
    print(&ctx.printer, &run)
}

async fn cancel(ctx: &Context, args: &RunIdArgs) -> anyhow::Result<i32> {
    let (_, backend) = open(ctx, &args.common)?;
    let run = backend.cancel_run(&args.run).await?;
    print(&ctx.printer, &run)
}

async fn update(ctx: &Context, args: &RunUpdateArgs) -> anyhow::Result<i32> {
    if args.add_tag.is_empty() {
        return Err(UserError::usage("nothing to update")
            .with_hint("pass --add-tag key[=value] (repeatable)")
            .into());
    }
    let (_, backend) = open(ctx, &args.run.common)?;
    let run = backend
        .add_run_tags(&args.run.run, &pairs(&args.add_tag))
        .await?;
    print(&ctx.printer, &run)
}

async fn metrics(ctx: &Context, args: &RunIdArgs) -> anyhow::Result<i32> {
    let (_, backend) = open(ctx, &args.common)?;
    let metrics = backend.run_metrics(&args.run).await?;
    print(&ctx.printer, &metrics)
}

async fn monitor_logs(ctx: &Context, args: &RunIdArgs) -> anyhow::Result<i32> {
    let (_, backend) = open(ctx, &args.common)?;
    let sink = StderrLogs::new(&ctx.printer);
    let outcome = backend.monitor_logs(&args.run, &sink).await?;
    finish(&ctx.printer, &outcome, false)
}

async fn download_logs(ctx: &Context, args: &DownloadLogsArgs) -> anyhow::Result<i32> {
    let (_, backend) = open(ctx, &args.run.common)?;
    let files = backend
        .download_logs(&args.run.run, &args.output_dir)
        .await?;
    print(&ctx.printer, &files)
}

async fn submit_script(ctx: &Context, args: &SubmitScriptArgs) -> anyhow::Result<i32> {
    let (resolved, request) = prepare_submission(ctx, &args.submit)?;
    let backend = Backend::open(&resolved);
    let sink = StderrLogs::new(&ctx.printer);
    let outcome = backend.submit_script(&request, &sink).await?;
    finish(&ctx.printer, &outcome, request.asynchronous)
}

async fn submit_hyperdrive(ctx: &Context, args: &SubmitHyperdriveArgs) -> anyhow::Result<i32> {
    let (resolved, script) = prepare_submission(ctx, &args.submit)?;
    let name = &args.hyperdrive_configuration_name;
    let skip = crate::config::local_workspace_dirs(&resolved.project_dir);
    let path = hdconfig::resolve_path(name, &resolved.project_dir, &skip)?;
    // Found by searching the project: say which file, there may be several.
    if path != Path::new(name) && path != resolved.project_dir.join(name) {
        ctx.printer
            .info(format!("Hyperdrive configuration: {}", path.display()));
    }
    let mut warnings = Vec::new();
    let hyperdrive = hdconfig::load(&path, &mut warnings);
    show_warnings(&ctx.printer, &warnings);
    let request = SubmitHyperdrive {
        script,
        hyperdrive: hyperdrive?,
        seed: args.seed,
    };
    let backend = Backend::open(&resolved);
    let sink = StderrLogs::new(&ctx.printer);
    let outcome = backend.submit_hyperdrive(&request, &sink).await?;
    finish(&ctx.printer, &outcome, request.script.asynchronous)
}

/// Print the run and pick the exit code: 0 only for `Completed` (or a run
/// submitted with `--async`), 130 after Ctrl-C, else 1.
fn finish(printer: &Printer, outcome: &RunOutcome, asynchronous: bool) -> anyhow::Result<i32> {
    printer.result(&outcome.run)?;
    if outcome.interrupted {
        return Ok(exit::INTERRUPTED);
    }
    match outcome.status() {
        Some("Completed") => Ok(exit::SUCCESS),
        _ if asynchronous => Ok(exit::SUCCESS),
        status => {
            let run_id = outcome
                .run
                .get("runId")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let reason = outcome.run["error"]["error"]["message"]
                .as_str()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            printer.error(
                format!(
                    "run {run_id} ended with status {}{reason}",
                    status.unwrap_or("unknown")
                ),
                Some(&format!(
                    "see its logs with `azml run download-logs -r {run_id} -d logs`"
                )),
            );
            Ok(exit::ERROR)
        }
    }
}

/// Everything before the backend: workspace, experiment, runconfig and v1 overrides.
fn prepare_submission(
    ctx: &Context,
    args: &SubmitArgs,
) -> anyhow::Result<(ResolvedWorkspace, SubmitScript)> {
    let resolved = ctx.resolve(
        &args.common.workspace,
        args.common.experiment_name.as_deref(),
    )?;
    let Some(experiment) = resolved.experiment.clone() else {
        return Err(UserError::usage("no experiment name given")
            .with_hint(
                "pass -e NAME, or run `azml folder attach -e NAME` once in the project folder",
            )
            .into());
    };
    let mut warnings = Vec::new();
    let loaded = load_run_config(
        args.run_configuration_name.as_deref(),
        &resolved.project_dir,
        &mut warnings,
    );
    show_warnings(&ctx.printer, &warnings);
    let mut run_config = loaded?;
    apply_overrides(&mut run_config, args)?;
    let source_dir = source_dir(args)?;
    let request = SubmitScript {
        run_config,
        source_dir,
        project_dir: resolved.project_dir.clone(),
        experiment,
        asynchronous: args.asynchronous,
    };
    Ok((resolved, request))
}

fn show_warnings(printer: &Printer, warnings: &[Warning]) {
    for warning in warnings {
        printer.warn(warning);
    }
}

/// `-c NAME` as v1 resolved it; without `-c`, the project's `local` runconfig
/// if there is one, else v1's default runconfig running on this machine.
fn load_run_config(
    name: Option<&str>,
    project_dir: &Path,
    warnings: &mut Vec<Warning>,
) -> Result<RunConfig, ModelError> {
    let path = match name {
        Some(name) => runconfig::resolve_path(name, project_dir)?,
        None => match runconfig::resolve_path("local", project_dir) {
            Ok(path) => path,
            Err(ModelError::NotFound { .. }) => return Ok(default_run_config()),
            Err(e) => return Err(e),
        },
    };
    runconfig::load(&path, warnings)
}

/// v1's default runconfig (target `local`, Python), using the Python found on
/// PATH as-is instead of building a conda environment.
pub fn default_run_config() -> RunConfig {
    let interpreter = super::folder::python_on_path()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "python".into());
    RunConfig::default_local(&interpreter)
}

/// v1's precedence: the script and arguments on the command line replace the
/// runconfig's; `--ct` replaces `target`; `-d` replaces the conda file.
fn apply_overrides(run_config: &mut RunConfig, args: &SubmitArgs) -> anyhow::Result<()> {
    if let Some((script, arguments)) = args.script_and_arguments.split_first() {
        run_config.script = Some(script.clone());
        run_config.arguments = arguments.to_vec();
        run_config.command = None;
    }
    if run_config.script.is_none() && run_config.command.is_none() {
        return Err(UserError::usage("no script to run")
            .with_hint("put the script after the flags (`azml run submit-script train.py --epochs 3`) or set `script`/`command` in the runconfig")
            .into());
    }
    if let Some(target) = &args.target {
        run_config.target = target.clone();
    }
    if let Some(conda) = &args.conda_dependencies {
        if !conda.is_file() {
            // A missing file is an error (1), as for -c and the script; 2 is for the syntax.
            return Err(UserError::failed(format!(
                "conda dependencies file {} not found",
                conda.display()
            ))
            .with_hint("-d/--conda-dependencies takes a path relative to the current folder")
            .into());
        }
        let absolute = conda.canonicalize().unwrap_or_else(|_| conda.clone());
        run_config.environment.python.conda_dependencies_file =
            Some(absolute.display().to_string());
    }
    Ok(())
}

/// `--source-directory`, else `--path` (v1's default; discovery already checked it exists).
fn source_dir(args: &SubmitArgs) -> anyhow::Result<PathBuf> {
    let path = &args.common.workspace.path;
    let dir = args.source_directory.as_ref().unwrap_or(path);
    if !dir.is_dir() {
        return Err(UserError::usage(format!(
            "--source-directory {} is not a directory",
            dir.display()
        ))
        .into());
    }
    Ok(dir.canonicalize().unwrap_or_else(|_| dir.clone()))
}

/// `run list --minimal`: the keys and order of v1's `_get_minimal_run`.
fn minimal_run(run: &Value) -> Value {
    serde_json::json!({
        "RunId": run["runId"],
        "RunType": run["runType"],
        "Status": run["status"],
        "StartTime": run["startTimeUtc"],
        "EndTime": run["endTimeUtc"],
        "Target": run["target"],
        "Tags": run["tags"],
    })
}

fn pairs(tags: &[KeyValue]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect()
}

/// Streams a followed run's output to stderr, so stdout stays the result
/// document that scripts parse.
/// azml's own lines go through the printer, so `--only-show-errors` applies.
struct StderrLogs {
    printer: Printer,
}

impl StderrLogs {
    fn new(printer: &Printer) -> Self {
        StderrLogs {
            printer: printer.clone(),
        }
    }
}

impl LogSink for StderrLogs {
    fn write(&self, chunk: &str) {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(chunk.as_bytes());
        let _ = err.flush();
    }

    fn info(&self, message: &str) {
        self.printer.info(message);
    }

    fn warn(&self, message: &str) {
        self.printer.warn(message);
    }
}
