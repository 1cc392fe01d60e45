//! `azml experiment list|create`.
use super::{Context, print};
use crate::cli::experiment::{ExperimentCommand, ExperimentCreateArgs, ExperimentListArgs};
use crate::error::UserError;
use crate::workspace::Workspace;
use serde_json::Value;

pub async fn dispatch(ctx: &Context, command: ExperimentCommand) -> anyhow::Result<i32> {
    match command {
        ExperimentCommand::List(args) => list(ctx, &args).await,
        ExperimentCommand::Create(args) => create(ctx, &args).await,
    }
}

async fn list(ctx: &Context, args: &ExperimentListArgs) -> anyhow::Result<i32> {
    let backend = ctx.backend(&args.workspace)?;
    let experiments = backend.list_experiments().await?;
    print(&ctx.printer, &Value::Array(experiments))
}

async fn create(ctx: &Context, args: &ExperimentCreateArgs) -> anyhow::Result<i32> {
    let resolved = ctx.resolve(&args.workspace, args.experiment_name.as_deref())?;
    let Some(name) = resolved.experiment.clone() else {
        return Err(UserError::usage("no experiment name given")
            .with_hint("pass -e NAME, or run `azml folder attach -e NAME` first")
            .into());
    };
    let backend = super::Backend::open(&resolved);
    let (experiment, created) = backend.create_experiment(&name).await?;
    if created {
        ctx.printer.info(format!("Created experiment '{name}'."));
    } else {
        ctx.printer
            .info(format!("Experiment '{name}' already exists."));
    }
    print(&ctx.printer, &experiment)
}
