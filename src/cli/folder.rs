//! `azml folder …`
use super::{MetadataArgs, WorkspaceArgs};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum FolderCommand {
    /// Attach a folder to an AzureML workspace and optionally a specific experiment to use by default.
    /// If experiment name is not specified, it defaults to the folder name.
    #[command(after_help = "Examples:\n  \
        # Attach this folder to the local workspace (no Azure account needed)\n  \
        azml folder attach -e mnist\n\n  \
        # Attach a project folder to an Azure ML workspace\n  \
        azml folder attach --path ./project -w my-ws -g my-rg --subscription-id 00000000-0000-0000-0000-000000000000")]
    Attach(FolderAttachArgs),
}

#[derive(Debug, Args)]
pub struct FolderAttachArgs {
    #[command(flatten)]
    pub workspace: WorkspaceArgs,
    /// Experiment name.
    #[arg(short = 'e', long = "experiment-name", value_name = "NAME")]
    pub experiment_name: Option<String>,
    #[command(flatten)]
    pub metadata: MetadataArgs,
}
