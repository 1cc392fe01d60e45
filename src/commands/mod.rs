//! One file per command group. Each command resolves its settings, calls the
//! core through the `Workspace` trait, and hands a serde value to the printer.

mod backend;
mod computetarget;
mod experiment;
mod folder;
mod run;
mod workspace;

pub use backend::Backend;

use crate::cli::{Cli, Command, GlobalArgs, MetadataArgs, WorkspaceArgs};
use crate::config::{self, ResolvedWorkspace, WorkspaceSelection};
use crate::error::{exit, exit_code_of};
use crate::output::{Printer, Verbosity};
use clap::Parser;
use serde_json::Value;

/// Parse argv, run the command, print errors; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
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
    let ctx = Context::new(cli.global.clone());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
            ctx.printer.error(format!("{err:#}"), hint.as_deref());
            code
        }
    }
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
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .try_init();
}

/// What every command gets: the global flags and the printer they configure.
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

    /// The printer, also writing the result to `-t FILE` when given.
    pub fn printer_with(&self, metadata: &MetadataArgs) -> Printer {
        let mut printer = self.printer.clone();
        printer.metadata_file = metadata.output_metadata_file.clone();
        printer
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
