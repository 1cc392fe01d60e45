//! `azml workspace …`
use super::{MetadataArgs, WorkspaceArgs};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum WorkspaceCommand {
    /// Show a workspace.
    #[command(
        after_help = "Examples:\n  azml workspace show\n  azml workspace show -w my-ws -g my-rg -o table"
    )]
    Show(WorkspaceShowArgs),
    /// List workspaces.
    #[command(after_help = "Examples:\n  azml workspace list -g my-rg -o table")]
    List(WorkspaceListArgs),
}

#[derive(Debug, Args)]
pub struct WorkspaceShowArgs {
    #[command(flatten)]
    pub workspace: WorkspaceArgs,
    #[command(flatten)]
    pub metadata: MetadataArgs,
}

#[derive(Debug, Args)]
pub struct WorkspaceListArgs {
    /// Resource group name.
    #[arg(short = 'g', long = "resource-group", value_name = "GROUP")]
    pub resource_group: Option<String>,
    /// Specifies the subscription Id.
    #[arg(long = "subscription-id", value_name = "ID")]
    pub subscription_id: Option<String>,
    /// Path to a project folder (used to find the subscription in `.azureml/config.json`).
    #[arg(long, value_name = "PATH", default_value = ".")]
    pub path: std::path::PathBuf,
}
