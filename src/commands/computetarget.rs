//! `azml computetarget …`. `list`/`show` go through the `Workspace` trait;
//! the rest manage Azure resources: each has one `azure_*` function below that
//! the ARM work fills in, and on the local workspace they say Azure is needed.

use super::{Backend, Context, print};
use crate::arm::{AzureWorkspace, PowerAction};
use crate::cli::computetarget::*;
use crate::error::{UserError, exit};
use crate::local::LocalWorkspace;
use crate::local::ssh::attach as ssh_attach;
use crate::model::compute as spec;
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
        C::Attach(AttachCommand::Adla(a)) => &a.resource.common,
        C::Attach(
            AttachCommand::Aks(a)
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
        C::Delete(a) | C::Detach(a) | C::Show(a) | C::ListNodes(a) => &a.common,
        C::GetCredentials(a) => &a.target.common,
        C::List(a) => a,
        C::Update(UpdateCommand::Amlcompute(a)) => &a.common,
        C::Update(UpdateCommand::Aks(a)) => &a.common,
    }
}

async fn list(ctx: &Context, args: &ComputeWorkspaceArgs) -> anyhow::Result<i32> {
    let backend = ctx.backend(&args.workspace)?;
    let computes = Value::Array(backend.list_computes().await?);
    // `-o table` shows v1's columns; a query and the other formats see the resources.
    let rows = |computes: &Value| {
        let list = computes.as_array().map(Vec::as_slice).unwrap_or_default();
        Value::Array(list.iter().map(crate::arm::compute::list_row).collect())
    };
    ctx.printer.result_with_table(&computes, Some(&rows))?;
    Ok(crate::error::exit::SUCCESS)
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
        AttachCommand::Adla(args) => {
            let ws = azure_backend(ctx, &args.resource.common, "computetarget attach adla")?;
            let attach = spec::AttachSpec::Adla {
                resource_id: args.resource.compute_resource_id.clone(),
                store_account: args.store_account_name.clone(),
            };
            ws.attach(&args.resource.name, &attach).await?
        }
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
        // Unset means ssh picks the user (`User` in ~/.ssh/config, else the login name).
        username: args.username.clone(),
        private_key_file: args.private_key_file.clone(),
    };
    let store = ws.store()?;
    // Compute commands run on a one-thread runtime (see `commands::single_thread_runtime`):
    // nothing else runs meanwhile, so the blocking ssh probe may hold the thread.
    let (record, info) = ssh_attach::attach(&store, request)?;
    ctx.printer.info(format!(
        "Connected to {} ({}); Python {} at {}",
        args.address, info.system, info.python_version, info.python_path
    ));
    Ok(ws.show_compute(&record.name).await?)
}

/// `attach aks|synapse|batch|datafactory`: attach an existing Azure resource by id.
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
    print_unless_null(ctx, &value)
}

async fn delete(ctx: &Context, args: &TargetNameArgs) -> anyhow::Result<i32> {
    if let Backend::Local(ws) = ctx.backend(&args.common.workspace)?
        && ssh_attach::ssh_record(&ws.read_store()?, &args.name).is_ok()
    {
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
    let ws = azure_backend(ctx, &args.common, "computetarget delete")?;
    let value = azure_delete(ctx, &ws, args).await?;
    print_unless_null(ctx, &value)
}

/// `detach` works on both backends (local: forget an SSH target).
async fn detach(ctx: &Context, args: &TargetNameArgs) -> anyhow::Result<i32> {
    let value = match ctx.backend(&args.common.workspace)? {
        Backend::Azure(ws) => azure_detach(ctx, &ws, args).await?,
        Backend::Local(ws) => {
            let target = ssh_attach::detach(&ws.read_store()?, &args.name)?;
            ctx.printer
                .info(format!("Detached '{}' ({})", args.name, target.display()));
            return Ok(exit::SUCCESS);
        }
    };
    print_unless_null(ctx, &value)
}

/// Operations with no resource to show (delete, `--no-wait`) print nothing, as v1 did.
fn print_unless_null(ctx: &Context, value: &Value) -> anyhow::Result<i32> {
    if value.is_null() {
        return Ok(exit::SUCCESS);
    }
    print(&ctx.printer, value)
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

async fn get_credentials(ctx: &Context, args: &GetCredentialsArgs) -> anyhow::Result<i32> {
    let ws = azure_backend(ctx, &args.target.common, "computetarget get-credentials")?;
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

// ---- Azure bodies: v1 flags → `model::compute` specs → `arm` calls ------------

fn tags_of(tags: &[crate::cli::KeyValue]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect()
}

fn subnet_of(vnet: &VnetArgs) -> anyhow::Result<Option<spec::SubnetRef>> {
    Ok(spec::SubnetRef::from_flags(
        vnet.vnet_name.clone(),
        vnet.subnet_name.clone(),
        vnet.vnet_resourcegroup_name.clone(),
    )?)
}

async fn azure_create_amlcompute(
    ctx: &Context,
    ws: &AzureWorkspace,
    args: &CreateAmlcomputeArgs,
) -> anyhow::Result<Value> {
    let password = spec::resolve_password(args.admin_user_password.clone(), args.password_stdin)?;
    let admin = args
        .admin_username
        .as_ref()
        .map(|username| spec::AdminUser {
            username: username.clone(),
            password: password.clone(),
            ssh_public_key: args.admin_user_ssh_key.clone(),
        });
    if admin.is_none() && (password.is_some() || args.admin_user_ssh_key.is_some()) {
        ctx.printer.warn(
            "--admin-user-password/--admin-user-ssh-key are ignored without --admin-username",
        );
    }
    let spec = spec::AmlComputeSpec {
        name: args.name.clone(),
        vm_size: args.vm_size.clone(),
        vm_priority: match args.vm_priority {
            Some(VmPriority::Lowpriority) => spec::VmPriority::LowPriority,
            _ => spec::VmPriority::Dedicated,
        },
        min_nodes: args.min_nodes.unwrap_or(0),
        max_nodes: args.max_nodes,
        idle_seconds_before_scaledown: args.idle_seconds_before_scaledown,
        admin,
        remote_login_port_public_access: args.remote_login_port_public_access.map(|p| {
            match p {
                PortAccess::Enabled => "Enabled",
                PortAccess::Disabled => "Disabled",
                PortAccess::NotSpecified => "NotSpecified",
            }
            .to_string()
        }),
        enable_node_public_ip: args.enable_node_public_ip,
        subnet: subnet_of(&args.vnet)?,
        identity: args
            .assign_identity
            .as_deref()
            .map(spec::IdentitySpec::parse)
            .transpose()?,
        location: args.location.clone(),
        description: args.description.clone(),
        tags: tags_of(&args.tags),
    };
    spec.validate()?;
    Ok(ws.create_amlcompute(&spec, args.no_wait).await?)
}

async fn azure_create_computeinstance(
    _ctx: &Context,
    ws: &AzureWorkspace,
    args: &CreateComputeinstanceArgs,
) -> anyhow::Result<Value> {
    let assigned_user = match (&args.user_object_id, &args.user_tenant_id) {
        (Some(o), Some(t)) => Some((o.clone(), t.clone())),
        (None, None) => None,
        _ => {
            return Err(UserError::usage(
                "--user-object-id and --user-tenant-id must be given together",
            )
            .into());
        }
    };
    if args.ssh_public_access == Some(true) && args.admin_user_ssh_public_key.is_none() {
        // The service (and v1's SDK) require the key; say so before the PUT.
        return Err(UserError::usage(
            "--ssh-public-access true needs --admin-user-ssh-public-key",
        )
        .with_hint(r#"pass the public key text, e.g. --admin-user-ssh-public-key "$(cat ~/.ssh/id_rsa.pub)""#)
        .into());
    }
    let spec = spec::ComputeInstanceSpec {
        name: args.name.clone(),
        vm_size: args.vm_size.clone(),
        ssh_public_access: args.ssh_public_access,
        admin_ssh_public_key: args.admin_user_ssh_public_key.clone(),
        assigned_user,
        subnet: subnet_of(&args.vnet)?,
        location: None,
        description: args.description.clone(),
        tags: tags_of(&args.tags),
    };
    Ok(ws.create_compute_instance(&spec, args.no_wait).await?)
}

async fn azure_create_aks(
    _ctx: &Context,
    ws: &AzureWorkspace,
    args: &CreateAksArgs,
) -> anyhow::Result<Value> {
    let ssl = &args.ssl;
    let any_ssl = ssl.ssl_cert_file.is_some()
        || ssl.ssl_key_file.is_some()
        || ssl.ssl_cname.is_some()
        || ssl.ssl_leaf_domain_label.is_some()
        || ssl.ssl_overwrite_domain == Some(true);
    let ssl_spec = if any_ssl {
        let read = |p: &std::path::PathBuf| {
            std::fs::read_to_string(p)
                .map_err(|e| UserError::failed(format!("cannot read {}: {e}", p.display())))
        };
        Some(spec::AksSsl {
            cert_pem: ssl.ssl_cert_file.as_ref().map(read).transpose()?,
            key_pem: ssl
                .ssl_key_file
                .as_ref()
                .map(read)
                .transpose()?
                .map(spec::Secret::new),
            cname: ssl.ssl_cname.clone(),
            leaf_domain_label: ssl.ssl_leaf_domain_label.clone(),
            overwrite_existing_domain: ssl.ssl_overwrite_domain.unwrap_or(false),
        })
    } else {
        None
    };
    let spec = spec::AksSpec {
        name: args.name.clone(),
        agent_count: args.agent_count,
        vm_size: args.vm_size.clone(),
        cluster_purpose: args.cluster_purpose.map(|p| {
            match p {
                ClusterPurpose::FastProd => "FastProd",
                ClusterPurpose::DevTest => "DevTest",
            }
            .to_string()
        }),
        load_balancer_type: args.load_balancer.load_balancer_type.map(|t| {
            match t {
                LoadBalancerType::PublicIp => "PublicIp",
                LoadBalancerType::InternalLoadBalancer => "InternalLoadBalancer",
            }
            .to_string()
        }),
        load_balancer_subnet: args.load_balancer.load_balancer_subnet.clone(),
        service_cidr: args.service_cidr.clone(),
        dns_service_ip: args.dns_service_ip.clone(),
        docker_bridge_cidr: args.docker_bridge_cidr.clone(),
        subnet: subnet_of(&args.vnet)?,
        ssl: ssl_spec,
        location: args.location.clone(),
    };
    Ok(ws.create_aks(&spec, args.no_wait).await?)
}

async fn azure_create_datafactory(
    _ctx: &Context,
    ws: &AzureWorkspace,
    args: &CreateDatafactoryArgs,
) -> anyhow::Result<Value> {
    Ok(ws
        .create_datafactory(&args.name, args.location.as_deref(), args.no_wait)
        .await?)
}

/// Username plus password or key file for remote/hdi; the passphrase has no
/// place in the current API, so an encrypted key is refused up front.
fn ssh_credentials(args: &AttachSshArgs) -> anyhow::Result<spec::SshCredentials> {
    if args.private_key_passphrase.is_some() {
        return Err(UserError::usage(
            "the Azure ML API takes no key passphrase (--private-key-passphrase)",
        )
        .with_hint("attach with an unencrypted key (`ssh-keygen -p -f FILE` removes the passphrase) or a password")
        .into());
    }
    let password = spec::resolve_password(args.password.clone(), args.password_stdin)?;
    let private_key = args
        .private_key_file
        .as_deref()
        .map(spec::read_key_file)
        .transpose()?;
    if password.is_none() && private_key.is_none() {
        return Err(UserError::usage(
            "give a password (-p, --password-stdin or AZML_SSH_PASSWORD) or --private-key-file",
        )
        .into());
    }
    let username = args.username.clone().ok_or_else(|| {
        UserError::usage("the Azure ML API needs the SSH user: --username/-u is required")
            .with_hint("add `-u USER` (the account the password or key belongs to)")
    })?;
    Ok(spec::SshCredentials {
        username,
        password,
        private_key,
        public_key: None,
    })
}

async fn azure_attach_remote(
    _ctx: &Context,
    ws: &AzureWorkspace,
    args: &AttachSshArgs,
) -> anyhow::Result<Value> {
    let attach = spec::AttachSpec::Remote {
        address: args.address.clone(),
        ssh_port: args.ssh_port,
        credentials: ssh_credentials(args)?,
    };
    Ok(ws.attach(&args.name, &attach).await?)
}

async fn azure_attach_hdi(
    _ctx: &Context,
    ws: &AzureWorkspace,
    args: &AttachSshArgs,
) -> anyhow::Result<Value> {
    let attach = spec::AttachSpec::Hdi {
        address: args.address.clone(),
        ssh_port: args.ssh_port,
        credentials: ssh_credentials(args)?,
    };
    Ok(ws.attach(&args.name, &attach).await?)
}

async fn azure_attach_kubernetes(
    _ctx: &Context,
    ws: &AzureWorkspace,
    args: &AttachKubernetesArgs,
) -> anyhow::Result<Value> {
    let attach = spec::AttachSpec::Kubernetes {
        resource_id: args.resource.compute_resource_id.clone(),
        namespace: args.namespace.clone(),
    };
    Ok(ws.attach(&args.resource.name, &attach).await?)
}

async fn azure_attach_databricks(
    _ctx: &Context,
    ws: &AzureWorkspace,
    args: &AttachDatabricksArgs,
) -> anyhow::Result<Value> {
    let attach = spec::AttachSpec::Databricks {
        resource_id: args.resource.compute_resource_id.clone(),
        access_token: spec::Secret::new(args.access_token.clone()),
    };
    Ok(ws.attach(&args.resource.name, &attach).await?)
}

async fn azure_attach_resource(
    _ctx: &Context,
    ws: &AzureWorkspace,
    kind: &str,
    args: &AttachResourceArgs,
) -> anyhow::Result<Value> {
    let resource_id = args.compute_resource_id.clone();
    let attach = match kind {
        "aks" => spec::AttachSpec::Aks { resource_id },
        "synapse" => spec::AttachSpec::Synapse { resource_id },
        "datafactory" => spec::AttachSpec::DataFactory { resource_id },
        _ => spec::AttachSpec::Batch { resource_id },
    };
    Ok(ws.attach(&args.name, &attach).await?)
}

async fn azure_lifecycle(
    ctx: &Context,
    ws: &AzureWorkspace,
    action: Lifecycle,
    args: &LifecycleArgs,
) -> anyhow::Result<Value> {
    let power = match action {
        Lifecycle::Start => PowerAction::Start,
        Lifecycle::Stop => PowerAction::Stop,
        Lifecycle::Restart => PowerAction::Restart,
    };
    let name = &args.target.name;
    match ws.power(name, power, args.no_wait).await? {
        Some(compute) => Ok(compute),
        None => {
            ctx.printer.info(format!(
                "{} of '{name}' requested (--no-wait)",
                action.verb()
            ));
            Ok(Value::Null)
        }
    }
}

async fn azure_delete(
    ctx: &Context,
    ws: &AzureWorkspace,
    args: &TargetNameArgs,
) -> anyhow::Result<Value> {
    ws.delete_compute(&args.name, false).await?;
    ctx.printer
        .info(format!("Deleted compute target '{}'", args.name));
    Ok(Value::Null)
}

async fn azure_detach(
    ctx: &Context,
    ws: &AzureWorkspace,
    args: &TargetNameArgs,
) -> anyhow::Result<Value> {
    ws.detach_compute(&args.name, false).await?;
    ctx.printer
        .info(format!("Detached compute target '{}'", args.name));
    Ok(Value::Null)
}

async fn azure_update_amlcompute(
    _ctx: &Context,
    ws: &AzureWorkspace,
    args: &UpdateAmlcomputeArgs,
) -> anyhow::Result<Value> {
    let update = spec::ScaleUpdate {
        min_nodes: args.min_nodes,
        max_nodes: args.max_nodes,
        idle_seconds_before_scaledown: args.idle_seconds_before_scaledown,
    };
    update.validate()?;
    Ok(ws.update_amlcompute(&args.name, &update, false).await?)
}

async fn azure_update_aks(
    _ctx: &Context,
    _ws: &AzureWorkspace,
    _args: &UpdateAksArgs,
) -> anyhow::Result<Value> {
    Err(UserError::failed(
        "the Azure ML API (2025-12-01) cannot update AKS compute targets: \
         its update operation carries only AmlCompute scale settings",
    )
    .with_hint("change SSL or load balancer settings in the Azure portal, or detach and attach the cluster again")
    .into())
}

async fn azure_list_nodes(
    _ctx: &Context,
    ws: &AzureWorkspace,
    args: &TargetNameArgs,
) -> anyhow::Result<Value> {
    Ok(Value::Array(ws.list_nodes(&args.name).await?))
}

async fn azure_get_credentials(
    _ctx: &Context,
    ws: &AzureWorkspace,
    args: &GetCredentialsArgs,
) -> anyhow::Result<Value> {
    Ok(ws
        .get_credentials(&args.target.name, args.show_secrets)
        .await?)
}

async fn azure_identity_change(
    _ctx: &Context,
    ws: &AzureWorkspace,
    assign: bool,
    args: &IdentityChangeArgs,
) -> anyhow::Result<Value> {
    let change = spec::IdentitySpec::parse(&args.identities)?;
    Ok(ws
        .change_identity(&args.target.name, &change, assign)
        .await?)
}

/// The compute's `identity` block (null when it has none).
async fn azure_identity_show(
    _ctx: &Context,
    ws: &AzureWorkspace,
    args: &TargetNameArgs,
) -> anyhow::Result<Value> {
    let compute = ws.get_compute(&args.name).await?;
    Ok(compute.get("identity").cloned().unwrap_or(Value::Null))
}
