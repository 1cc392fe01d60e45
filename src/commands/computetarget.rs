//! `azml computetarget …`. `list`/`show` go through the `Workspace` trait;
//! the rest manage Azure resources: each has one `azure_*` function below that
//! the ARM work fills in, and on the local workspace they say Azure is needed.

use super::{Backend, Context, print};
use crate::arm::AzureWorkspace;
use crate::cli::computetarget::*;
use crate::error::{UserError, exit};
use crate::local::LocalWorkspace;
use crate::local::ssh::attach as ssh_attach;
use crate::workspace::{Workspace, WorkspaceError};
use serde_json::Value;

pub async fn dispatch(ctx: &Context, command: ComputetargetCommand) -> anyhow::Result<i32> {
    use ComputetargetCommand as C;
    // The group's own `-v` means what `--verbose` means.
    let verbose;
    let ctx = if common_of(&command).verbosity_flag {
        verbose = ctx.verbose();
        &verbose
    } else {
        ctx
    };
    match command {
        C::Create(cmd) => create(ctx, cmd).await,
        C::Attach(cmd) => attach(ctx, cmd).await,
        C::Computeinstance(cmd) => match cmd {
            ComputeinstanceCommand::Start(args) => lifecycle(ctx, Lifecycle::Start, &args).await,
            ComputeinstanceCommand::Stop(args) => lifecycle(ctx, Lifecycle::Stop, &args).await,
            ComputeinstanceCommand::Restart(args) => {
                lifecycle(ctx, Lifecycle::Restart, &args).await
            }
        },
        C::Amlcompute(AmlcomputeCommand::Identity(cmd)) => identity(ctx, cmd).await,
        C::Start(args) => lifecycle(ctx, Lifecycle::Start, &args).await,
        C::Stop(args) => lifecycle(ctx, Lifecycle::Stop, &args).await,
        C::Restart(args) => lifecycle(ctx, Lifecycle::Restart, &args).await,
        C::Delete(args) => delete(ctx, &args).await,
        C::Detach(args) => detach(ctx, &args).await,
        C::Show(args) => show(ctx, &args).await,
        C::List(args) => list(ctx, &args).await,
        C::Update(cmd) => update(ctx, cmd).await,
        C::ListNodes(args) => list_nodes(ctx, &args).await,
        C::GetCredentials(args) => get_credentials(ctx, &args).await,
    }
}

/// The workspace flags (and `-v`) of any computetarget command.
fn common_of(command: &ComputetargetCommand) -> &ComputeWorkspaceArgs {
    use ComputetargetCommand as C;
    match command {
        C::Create(CreateCommand::Amlcompute(a)) => &a.common,
        C::Create(CreateCommand::Computeinstance(a)) => &a.common,
        C::Create(CreateCommand::Aks(a)) => &a.common,
        C::Create(CreateCommand::Datafactory(a)) => &a.common,
        C::Attach(AttachCommand::Remote(a) | AttachCommand::Hdi(a)) => &a.common,
        C::Attach(AttachCommand::Kubernetes(a)) => &a.resource.common,
        C::Attach(AttachCommand::Databricks(a)) => &a.resource.common,
        C::Attach(
            AttachCommand::Aks(a)
            | AttachCommand::Adla(a)
            | AttachCommand::Synapse(a)
            | AttachCommand::Batch(a)
            | AttachCommand::Datafactory(a),
        ) => &a.common,
        C::Computeinstance(
            ComputeinstanceCommand::Start(a)
            | ComputeinstanceCommand::Stop(a)
            | ComputeinstanceCommand::Restart(a),
        )
        | C::Start(a)
        | C::Stop(a)
        | C::Restart(a) => &a.target.common,
        C::Amlcompute(AmlcomputeCommand::Identity(
            IdentityCommand::Assign(a) | IdentityCommand::Remove(a),
        )) => &a.target.common,
        C::Amlcompute(AmlcomputeCommand::Identity(IdentityCommand::Show(a))) => &a.common,
        C::Delete(a) | C::Detach(a) | C::Show(a) | C::ListNodes(a) | C::GetCredentials(a) => {
            &a.common
        }
        C::List(a) => a,
        C::Update(UpdateCommand::Amlcompute(a)) => &a.common,
        C::Update(UpdateCommand::Aks(a)) => &a.common,
    }
}

async fn list(ctx: &Context, args: &ComputeWorkspaceArgs) -> anyhow::Result<i32> {
    let backend = ctx.backend(&args.workspace)?;
    let computes = backend.list_computes().await?;
    print(&ctx.printer, &Value::Array(computes))
}

async fn show(ctx: &Context, args: &TargetNameArgs) -> anyhow::Result<i32> {
    let backend = ctx.backend(&args.common.workspace)?;
    let compute = backend.show_compute(&args.name).await?;
    print(&ctx.printer, &compute)
}

/// Open the backend and insist it is Azure.
fn azure_backend(
    ctx: &Context,
    common: &ComputeWorkspaceArgs,
    what: &str,
) -> anyhow::Result<AzureWorkspace> {
    match ctx.backend(&common.workspace)? {
        Backend::Azure(ws) => Ok(ws),
        Backend::Local(_) => Err(WorkspaceError::NeedsAzure { what: what.into() }.into()),
    }
}

async fn create(ctx: &Context, command: CreateCommand) -> anyhow::Result<i32> {
    let value = match &command {
        CreateCommand::Amlcompute(args) => {
            let ws = azure_backend(ctx, &args.common, "computetarget create amlcompute")?;
            azure_create_amlcompute(ctx, &ws, args).await?
        }
        CreateCommand::Computeinstance(args) => {
            let ws = azure_backend(ctx, &args.common, "computetarget create computeinstance")?;
            azure_create_computeinstance(ctx, &ws, args).await?
        }
        CreateCommand::Aks(args) => {
            let ws = azure_backend(ctx, &args.common, "computetarget create aks")?;
            azure_create_aks(ctx, &ws, args).await?
        }
        CreateCommand::Datafactory(args) => {
            let ws = azure_backend(ctx, &args.common, "computetarget create datafactory")?;
            azure_create_datafactory(ctx, &ws, args).await?
        }
    };
    print(&ctx.printer, &value)
}

async fn attach(ctx: &Context, command: AttachCommand) -> anyhow::Result<i32> {
    let value = match &command {
        AttachCommand::Remote(args) => attach_remote(ctx, args).await?,
        AttachCommand::Hdi(args) => {
            let ws = azure_backend(ctx, &args.common, "computetarget attach hdi")?;
            azure_attach_hdi(ctx, &ws, args).await?
        }
        AttachCommand::Kubernetes(args) => {
            let ws = azure_backend(
                ctx,
                &args.resource.common,
                "computetarget attach kubernetes",
            )?;
            azure_attach_kubernetes(ctx, &ws, args).await?
        }
        AttachCommand::Databricks(args) => {
            let ws = azure_backend(
                ctx,
                &args.resource.common,
                "computetarget attach databricks",
            )?;
            azure_attach_databricks(ctx, &ws, args).await?
        }
        AttachCommand::Aks(args) => attach_resource(ctx, "aks", args).await?,
        AttachCommand::Adla(args) => attach_resource(ctx, "adla", args).await?,
        AttachCommand::Synapse(args) => attach_resource(ctx, "synapse", args).await?,
        AttachCommand::Batch(args) => attach_resource(ctx, "batch", args).await?,
        AttachCommand::Datafactory(args) => attach_resource(ctx, "datafactory", args).await?,
    };
    print(&ctx.printer, &value)
}

/// `attach remote` works on both backends: an SSH host.
async fn attach_remote(ctx: &Context, args: &AttachSshArgs) -> anyhow::Result<Value> {
    match ctx.backend(&args.common.workspace)? {
        Backend::Azure(ws) => azure_attach_remote(ctx, &ws, args).await,
        Backend::Local(ws) => local_attach_remote(ctx, &ws, args).await,
    }
}

/// Local workspace: check the SSH host (connection, host key, Python) and
/// store it as a target; no password and no key contents are stored.
async fn local_attach_remote(
    ctx: &Context,
    ws: &LocalWorkspace,
    args: &AttachSshArgs,
) -> anyhow::Result<Value> {
    if args.password.is_some() {
        return Err(
            UserError::failed("azml does not use or store passwords for SSH targets")
                .with_hint(
                    "use a key: load it into ssh-agent (`ssh-add`) or pass --private-key-file",
                )
                .into(),
        );
    }
    if args.private_key_passphrase.is_some() {
        ctx.printer.warn(
            "--private-key-passphrase is not stored; add the key to ssh-agent (`ssh-add FILE`) \
             so azml's non-interactive ssh can use it",
        );
    }
    let request = ssh_attach::AttachRequest {
        name: args.name.clone(),
        address: args.address.clone(),
        // 22 is ssh's default: leave it unset so a `~/.ssh/config` Port still applies.
        port: (args.ssh_port != 22).then_some(args.ssh_port),
        username: Some(args.username.clone()),
        private_key_file: args.private_key_file.clone(),
    };
    let store = ws.store()?;
    let (record, info) = tokio::task::block_in_place(|| ssh_attach::attach(&store, request))?;
    ctx.printer.info(format!(
        "Connected to {} ({}); Python {} at {}",
        args.address, info.system, info.python_version, info.python_path
    ));
    Ok(ws.show_compute(&record.name).await?)
}

/// `attach aks|adla|synapse|batch|datafactory`: attach an existing Azure resource by id.
async fn attach_resource(
    ctx: &Context,
    kind: &str,
    args: &AttachResourceArgs,
) -> anyhow::Result<Value> {
    let ws = azure_backend(ctx, &args.common, &format!("computetarget attach {kind}"))?;
    azure_attach_resource(ctx, &ws, kind, args).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Start,
    Stop,
    Restart,
}

impl Lifecycle {
    fn verb(self) -> &'static str {
        match self {
            Lifecycle::Start => "start",
            Lifecycle::Stop => "stop",
            Lifecycle::Restart => "restart",
        }
    }
}

async fn lifecycle(ctx: &Context, action: Lifecycle, args: &LifecycleArgs) -> anyhow::Result<i32> {
    let what = format!("computetarget computeinstance {}", action.verb());
    let ws = azure_backend(ctx, &args.target.common, &what)?;
    let value = azure_lifecycle(ctx, &ws, action, args).await?;
    print(&ctx.printer, &value)
}

async fn delete(ctx: &Context, args: &TargetNameArgs) -> anyhow::Result<i32> {
    if let Backend::Local(ws) = ctx.backend(&args.common.workspace)? {
        if ssh_attach::ssh_record(&ws.store()?, &args.name).is_ok() {
            return Err(UserError::failed(format!(
                "'{}' is an attached SSH host: azml never deletes machines it did not create",
                args.name
            ))
            .with_hint(format!(
                "to forget it, run `azml computetarget detach -n {}`",
                args.name
            ))
            .into());
        }
    }
    let ws = azure_backend(ctx, &args.common, "computetarget delete")?;
    let value = azure_delete(ctx, &ws, args).await?;
    print(&ctx.printer, &value)
}

/// `detach` works on both backends (local: forget an SSH target).
async fn detach(ctx: &Context, args: &TargetNameArgs) -> anyhow::Result<i32> {
    let value = match ctx.backend(&args.common.workspace)? {
        Backend::Azure(ws) => azure_detach(ctx, &ws, args).await?,
        Backend::Local(ws) => {
            let target = ssh_attach::detach(&ws.store()?, &args.name)?;
            ctx.printer
                .info(format!("Detached '{}' ({})", args.name, target.display()));
            return Ok(exit::SUCCESS);
        }
    };
    print(&ctx.printer, &value)
}

async fn update(ctx: &Context, command: UpdateCommand) -> anyhow::Result<i32> {
    let value = match &command {
        UpdateCommand::Amlcompute(args) => {
            let ws = azure_backend(ctx, &args.common, "computetarget update amlcompute")?;
            azure_update_amlcompute(ctx, &ws, args).await?
        }
        UpdateCommand::Aks(args) => {
            let ws = azure_backend(ctx, &args.common, "computetarget update aks")?;
            azure_update_aks(ctx, &ws, args).await?
        }
    };
    print(&ctx.printer, &value)
}

async fn list_nodes(ctx: &Context, args: &TargetNameArgs) -> anyhow::Result<i32> {
    let ws = azure_backend(ctx, &args.common, "computetarget list-nodes")?;
    let value = azure_list_nodes(ctx, &ws, args).await?;
    print(&ctx.printer, &value)
}

async fn get_credentials(ctx: &Context, args: &TargetNameArgs) -> anyhow::Result<i32> {
    let ws = azure_backend(ctx, &args.common, "computetarget get-credentials")?;
    let value = azure_get_credentials(ctx, &ws, args).await?;
    print(&ctx.printer, &value)
}

async fn identity(ctx: &Context, command: IdentityCommand) -> anyhow::Result<i32> {
    let value = match &command {
        IdentityCommand::Assign(args) => {
            let ws = azure_backend(
                ctx,
                &args.target.common,
                "computetarget amlcompute identity assign",
            )?;
            azure_identity_change(ctx, &ws, true, args).await?
        }
        IdentityCommand::Remove(args) => {
            let ws = azure_backend(
                ctx,
                &args.target.common,
                "computetarget amlcompute identity remove",
            )?;
            azure_identity_change(ctx, &ws, false, args).await?
        }
        IdentityCommand::Show(args) => {
            let ws = azure_backend(ctx, &args.common, "computetarget amlcompute identity show")?;
            azure_identity_show(ctx, &ws, args).await?
        }
    };
    print(&ctx.printer, &value)
}

// ---- Azure bodies (helper `arm` replaces these) -------------------------------

async fn azure_create_amlcompute(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    _args: &CreateAmlcomputeArgs,
) -> anyhow::Result<Value> {
    Err(UserError::not_available("computetarget create amlcompute on Azure").into())
}

async fn azure_create_computeinstance(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    _args: &CreateComputeinstanceArgs,
) -> anyhow::Result<Value> {
    Err(UserError::not_available("computetarget create computeinstance on Azure").into())
}

async fn azure_create_aks(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    _args: &CreateAksArgs,
) -> anyhow::Result<Value> {
    Err(UserError::not_available("computetarget create aks on Azure").into())
}

async fn azure_create_datafactory(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    _args: &CreateDatafactoryArgs,
) -> anyhow::Result<Value> {
    Err(UserError::not_available("computetarget create datafactory on Azure").into())
}

async fn azure_attach_remote(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    _args: &AttachSshArgs,
) -> anyhow::Result<Value> {
    Err(UserError::not_available("computetarget attach remote on Azure").into())
}

async fn azure_attach_hdi(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    _args: &AttachSshArgs,
) -> anyhow::Result<Value> {
    Err(UserError::not_available("computetarget attach hdi on Azure").into())
}

async fn azure_attach_kubernetes(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    _args: &AttachKubernetesArgs,
) -> anyhow::Result<Value> {
    Err(UserError::not_available("computetarget attach kubernetes on Azure").into())
}

async fn azure_attach_databricks(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    _args: &AttachDatabricksArgs,
) -> anyhow::Result<Value> {
    Err(UserError::not_available("computetarget attach databricks on Azure").into())
}

async fn azure_attach_resource(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    kind: &str,
    _args: &AttachResourceArgs,
) -> anyhow::Result<Value> {
    Err(UserError::not_available(&format!("computetarget attach {kind} on Azure")).into())
}

async fn azure_lifecycle(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    action: Lifecycle,
    _args: &LifecycleArgs,
) -> anyhow::Result<Value> {
    Err(UserError::not_available(&format!("computetarget {} on Azure", action.verb())).into())
}

async fn azure_delete(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    _args: &TargetNameArgs,
) -> anyhow::Result<Value> {
    Err(UserError::not_available("computetarget delete on Azure").into())
}

async fn azure_detach(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    _args: &TargetNameArgs,
) -> anyhow::Result<Value> {
    Err(UserError::not_available("computetarget detach on Azure").into())
}

async fn azure_update_amlcompute(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    _args: &UpdateAmlcomputeArgs,
) -> anyhow::Result<Value> {
    Err(UserError::not_available("computetarget update amlcompute on Azure").into())
}

async fn azure_update_aks(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    _args: &UpdateAksArgs,
) -> anyhow::Result<Value> {
    Err(UserError::not_available("computetarget update aks on Azure").into())
}

async fn azure_list_nodes(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    _args: &TargetNameArgs,
) -> anyhow::Result<Value> {
    Err(UserError::not_available("computetarget list-nodes on Azure").into())
}

async fn azure_get_credentials(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    _args: &TargetNameArgs,
) -> anyhow::Result<Value> {
    Err(UserError::not_available("computetarget get-credentials on Azure").into())
}

async fn azure_identity_change(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    assign: bool,
    _args: &IdentityChangeArgs,
) -> anyhow::Result<Value> {
    let verb = if assign { "assign" } else { "remove" };
    Err(UserError::not_available(&format!(
        "computetarget amlcompute identity {verb} on Azure"
    ))
    .into())
}

async fn azure_identity_show(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    _args: &TargetNameArgs,
) -> anyhow::Result<Value> {
    Err(UserError::not_available("computetarget amlcompute identity show on Azure").into())
}
