//! clap definitions only: v1 command names, flags, short forms and defaults.
//! Nothing here resolves settings or touches a backend.

use crate::output::Format;
use clap::{Args, Parser, Subcommand};

/// `azml` — the Azure ML v1 CLI (`az ml …`), alive: the same commands and files,
/// sent to the current Azure ML REST API or run on this machine.
#[derive(Debug, Parser)]
#[command(name = "azml", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// az's global flags, accepted anywhere on the command line.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Json)]
    pub output: Format,
    /// JMESPath query string, applied to the result before formatting.
    #[arg(long, global = true, value_name = "JMESPATH")]
    pub query: Option<String>,
    /// Increase logging verbosity to show all debug logs (secrets redacted).
    #[arg(long, global = true)]
    pub debug: bool,
    /// Increase logging verbosity.
    #[arg(long, global = true)]
    pub verbose: bool,
    /// Only show errors, suppressing warnings.
    #[arg(long, global = true)]
    pub only_show_errors: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Folder subgroup commands.
    #[command(subcommand)]
    Folder(FolderCommand),
}

#[derive(Debug, Subcommand)]
pub enum FolderCommand {
    /// Attach a folder to an Azure ML workspace and optionally a specific experiment.
    Attach,
}
