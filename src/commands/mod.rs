//! One file per command group. Each command resolves its settings, calls the
//! core through the `Workspace` trait, and hands a serde value to the printer.

mod backend;
mod computetarget;
mod experiment;
mod folder;
mod run;
mod workspace;

pub use backend::Backend;

use crate::cli::{Cli, Command, GlobalArgs, WorkspaceArgs};
use crate::config::{self, ResolvedWorkspace, WorkspaceSelection};
use crate::error::{UserError, exit, exit_code_of};
use crate::output::{Printer, Verbosity};
use clap::{CommandFactory, FromArgMatches};
use serde_json::Value;
use std::path::PathBuf;

/// Parse argv, run the command, print errors; returns the exit code.
pub fn main() -> i32 {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            };
            let _ = e.print();
            return code;
        }
    };
    init_tracing(&cli.global);
    crate::arm::ArmSettings {
        cloud: cli.global.cloud.clone(),
        auth: cli.global.auth.clone(),
    }
    .install();
    let mut ctx = Context::new(cli.global.clone());
    ctx.printer.metadata_file = metadata_file(&matches);
    if let Some(path) = ctx.printer.metadata_file.as_ref().filter(|p| p.exists()) {
        // Refuse before doing anything, not after a run was submitted.
        let err = UserError::failed(format!(
            "output metadata file {} already exists",
            path.display()
        ))
        .with_hint("remove it or pass another path to -t/--output-metadata-file");
        ctx.printer.error(&err, err.hint.as_deref());
        return exit::ERROR;
    }
    let runtime = match single_thread_runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            ctx.printer
                .error(format!("cannot start the async runtime: {e}"), None);
            return exit::ERROR;
        }
    };
    match runtime.block_on(dispatch(&ctx, cli.command)) {
        Ok(code) => code,
        Err(err) => {
            let (code, hint) = exit_code_of(&err);
            ctx.printer
                .error(crate::error::describe(&err), hint.as_deref());
            code
        }
    }
}

/// Every command runs on one thread. Compute and workspace commands are a few
/// sequential ARM (or SQLite) calls; runs and sweeps supervise processes and
/// serve MLflow, but what they do per event is short, and on one thread each
/// event costs no cross-thread wake-up: a local sweep's own CPU per child
/// fell by about a quarter (≈ 1.0 → 0.75 ms, docs/perf.md). Hashing and file
/// reads go to tokio's blocking pool; an SSH launch holds the thread while it
/// talks to the host (tens of ms), as the `--async` supervisor always did.
fn single_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// `-t/--output-metadata-file` of the (sub)command that runs, if it has one.
/// The detached sweep supervisor re-runs the user's command line: the file is
/// the launcher's to write, so the supervisor must not try again (and fail).
fn metadata_file(matches: &clap::ArgMatches) -> Option<PathBuf> {
    if std::env::var_os(crate::local::sweep::DETACHED_PARENT_ENV).is_some() {
        return None;
    }
    let mut current = matches;
    while let Some((_, sub)) = current.subcommand() {
        current = sub;
    }
    current
        .try_get_one::<PathBuf>("output_metadata_file")
        .ok()
        .flatten()
        .cloned()
}

/// `--debug`/`--verbose` turn on azml's own tracing on stderr.
fn init_tracing(global: &GlobalArgs) {
    let filter = if global.debug {
        "azml=debug"
    } else if global.verbose {
        "azml=info"
    } else {
        return;
    };
    // Colour only on a terminal, as knack: CI logs must not fill with escapes.
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal()
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .try_init();
}

/// What every command gets: the global flags and the printer they configure
/// (including `-t FILE`, read from whichever subcommand runs).
pub struct Context {
    pub global: GlobalArgs,
    pub printer: Printer,
}

impl Context {
    pub fn new(global: GlobalArgs) -> Self {
        let verbosity = if global.debug {
            Verbosity::Debug
        } else if global.verbose {
            Verbosity::Verbose
        } else if global.only_show_errors {
            Verbosity::ErrorsOnly
        } else {
            Verbosity::Normal
        };
        let printer = Printer {
            format: global.output,
            query: global.query.clone(),
            verbosity,
            metadata_file: None,
        };
        Self { global, printer }
    }

    /// The same context with `--verbose` turned on (for per-command `-v` flags).
    pub fn verbose(&self) -> Context {
        let mut global = self.global.clone();
        global.verbose = true;
        let mut printer = self.printer.clone();
        printer.verbosity = printer.verbosity.max(Verbosity::Verbose);
        Context { global, printer }
    }

    /// Workspace discovery for these flags (`--subscription` counts as `--subscription-id`).
    pub fn resolve(
        &self,
        workspace: &WorkspaceArgs,
        experiment: Option<&str>,
    ) -> anyhow::Result<ResolvedWorkspace> {
        let selection = WorkspaceSelection {
            path: workspace.path.clone(),
            subscription_id: (workspace.subscription_id.clone())
                .or_else(|| self.global.subscription.clone()),
            resource_group: workspace.resource_group.clone(),
            workspace_name: workspace.workspace_name.clone(),
            experiment: experiment.map(str::to_string),
        };
        let resolved = config::resolve(&selection)?;
        tracing::debug!(?resolved, "workspace resolved");
        Ok(resolved)
    }

    /// Resolve and open the backend in one step.
    pub fn backend(&self, workspace: &WorkspaceArgs) -> anyhow::Result<Backend> {
        let resolved = self.resolve(workspace, None)?;
        Ok(Backend::open(&resolved))
    }
}

/// Print `value` with `printer`; the command then exits 0.
pub fn print(printer: &Printer, value: &Value) -> anyhow::Result<i32> {
    printer.result(value)?;
    Ok(exit::SUCCESS)
}

async fn dispatch(ctx: &Context, command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Folder(cmd) => folder::dispatch(ctx, cmd).await,
        Command::Experiment(cmd) => experiment::dispatch(ctx, cmd).await,
        Command::Workspace(cmd) => workspace::dispatch(ctx, cmd).await,
        Command::Computetarget(cmd) => computetarget::dispatch(ctx, cmd).await,
        Command::Run(cmd) => run::dispatch(ctx, cmd).await,
    }
}
