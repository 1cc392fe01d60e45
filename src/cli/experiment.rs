//! `azml experiment …`
use super::{MetadataArgs, WorkspaceArgs};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ExperimentCommand {
    /// List experiments in a workspace.
    #[command(
        after_help = "Examples:\n  azml experiment list -o table\n  azml experiment list -w my-ws -g my-rg --query \"[].name\""
    )]
    List(ExperimentListArgs),
    /// Create an experiment (an azml addition; v1 created experiments on first submit).
    /// Succeeds when it already exists.
    #[command(after_help = "Examples:\n  azml experiment create -e mnist")]
    Create(ExperimentCreateArgs),
}

#[derive(Debug, Args)]
pub struct ExperimentListArgs {
    #[command(flatten)]
    pub workspace: WorkspaceArgs,
    #[command(flatten)]
    pub metadata: MetadataArgs,
}

#[derive(Debug, Args)]
pub struct ExperimentCreateArgs {
    /// Experiment name. Defaults to the experiment of the attached folder.
    #[arg(short = 'e', long = "experiment-name", value_name = "NAME")]
    pub experiment_name: Option<String>,
    #[command(flatten)]
    pub workspace: WorkspaceArgs,
    #[command(flatten)]
    pub metadata: MetadataArgs,
}
