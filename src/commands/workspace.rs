//! `azml workspace show|list`.
use super::{Backend, Context, print};
use crate::cli::WorkspaceArgs;
use crate::cli::workspace::{WorkspaceCommand, WorkspaceListArgs, WorkspaceShowArgs};
use crate::config::WorkspaceTarget;
use crate::workspace::Workspace;
use serde_json::Value;

pub async fn dispatch(ctx: &Context, command: WorkspaceCommand) -> anyhow::Result<i32> {
    match command {
        WorkspaceCommand::Show(args) => show(ctx, &args).await,
        WorkspaceCommand::List(args) => list(ctx, &args).await,
    }
}

async fn show(ctx: &Context, args: &WorkspaceShowArgs) -> anyhow::Result<i32> {
    let backend = ctx.backend(&args.workspace)?;
    let workspace = backend.show_workspace().await?;
    print(&ctx.printer, &workspace)
}

/// On Azure: the workspaces of the subscription (or resource group). On the
/// local backend there is exactly one workspace, so the list holds it.
async fn list(ctx: &Context, args: &WorkspaceListArgs) -> anyhow::Result<i32> {
    let flags = WorkspaceArgs {
        path: args.path.clone(),
        ..WorkspaceArgs::default()
    };
    let resolved = ctx.resolve(&flags, None)?;
    let subscription = (args.subscription_id.clone())
        .or_else(|| ctx.global.subscription.clone())
        .or_else(|| match &resolved.target {
            WorkspaceTarget::Azure(r) => Some(r.subscription_id.clone()),
            WorkspaceTarget::Local { .. } => crate::arm::subscription::default_subscription(),
        });
    match subscription {
        Some(subscription) => {
            let workspaces =
                azure_list_workspaces(&subscription, args.resource_group.as_deref()).await?;
            print(&ctx.printer, &workspaces)
        }
        None => {
            let backend = Backend::open(&resolved);
            let workspace = backend.show_workspace().await?;
            print(&ctx.printer, &Value::Array(vec![workspace]))
        }
    }
}

/// Lists workspaces through ARM: the resource group's, else the subscription's.
async fn azure_list_workspaces(
    subscription: &str,
    resource_group: Option<&str>,
) -> anyhow::Result<Value> {
    let settings = crate::arm::ArmSettings::current();
    let list = crate::arm::list_workspaces(&settings, subscription, resource_group).await?;
    Ok(Value::Array(list))
}
