//! `azml computetarget …`: create, attach, lifecycle and inspection of compute targets.
use super::{KeyValue, WorkspaceArgs, parse_key_value};
use clap::builder::BoolishValueParser;
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ComputetargetCommand {
    /// Create a compute target (aks or amlcompute or computeinstance).
    #[command(subcommand)]
    Create(CreateCommand),
    /// Attach a compute target.
    #[command(subcommand)]
    Attach(AttachCommand),
    /// AzureML compute instance commands.
    #[command(subcommand)]
    Computeinstance(ComputeinstanceCommand),
    /// AzureML compute target commands.
    #[command(subcommand)]
    Amlcompute(AmlcomputeCommand),
    /// Start a compute instance (short for `computeinstance start`).
    #[command(after_help = "Examples:\n  azml computetarget start -n my-ci")]
    Start(LifecycleArgs),
    /// Stop a compute instance (short for `computeinstance stop`).
    #[command(after_help = "Examples:\n  azml computetarget stop -n my-ci --no-wait")]
    Stop(LifecycleArgs),
    /// Restart a compute instance (short for `computeinstance restart`).
    #[command(after_help = "Examples:\n  azml computetarget restart -n my-ci")]
    Restart(LifecycleArgs),
    /// Delete a compute target (aks or amlcompute or computeinstance).
    #[command(after_help = "Examples:\n  azml computetarget delete -n cpu-cluster")]
    Delete(TargetNameArgs),
    /// Detach a compute target (aks or remote) from a workspace.
    #[command(after_help = "Examples:\n  azml computetarget detach -n my-vm")]
    Detach(TargetNameArgs),
    /// Show details of a specific compute target.
    #[command(
        after_help = "Examples:\n  azml computetarget show -n cpu-cluster\n  azml computetarget show -n my-vm -o yaml"
    )]
    Show(TargetNameArgs),
    /// List all the compute targets attached to a workspace.
    #[command(after_help = "Examples:\n  azml computetarget list -o table")]
    List(ComputeWorkspaceArgs),
    /// Update a compute target (aks or amlcompute).
    #[command(subcommand)]
    Update(UpdateCommand),
    /// List the nodes of an AzureML compute cluster.
    #[command(after_help = "Examples:\n  azml computetarget list-nodes -n cpu-cluster -o table")]
    ListNodes(TargetNameArgs),
    /// Get credentials for a compute target (aks or remote).
    #[command(after_help = "Examples:\n  azml computetarget get-credentials -n my-aks")]
    GetCredentials(GetCredentialsArgs),
}

// `get-credentials`: secrets are masked unless asked for.
#[derive(Debug, Args, Clone)]
pub struct GetCredentialsArgs {
    #[command(flatten)]
    pub target: TargetNameArgs,
    /// Print passwords, keys and tokens in clear instead of `***`.
    #[arg(long)]
    pub show_secrets: bool,
}

// The workspace flags of the computetarget group, plus its `-v` verbosity flag.
#[derive(Debug, Args, Clone, Default)]
pub struct ComputeWorkspaceArgs {
    #[command(flatten)]
    pub workspace: WorkspaceArgs,
    /// Verbosity flag.
    #[arg(short = 'v')]
    pub verbosity_flag: bool,
}

// `-n/--name` of an existing compute target.
#[derive(Debug, Args, Clone)]
pub struct TargetNameArgs {
    /// Name of the compute target.
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: String,
    #[command(flatten)]
    pub common: ComputeWorkspaceArgs,
}

// start/stop/restart of a compute instance.
#[derive(Debug, Args, Clone)]
pub struct LifecycleArgs {
    #[command(flatten)]
    pub target: TargetNameArgs,
    /// Flag to not wait for asynchronous calls.
    #[arg(long)]
    pub no_wait: bool,
}

// Where a new compute goes on the network.
#[derive(Debug, Args, Clone, Default)]
pub struct VnetArgs {
    /// Name of the virtual network.
    #[arg(long, value_name = "NAME")]
    pub vnet_name: Option<String>,
    /// Name of the resource group where the virtual network is located.
    #[arg(long = "vnet-resourcegroup-name", value_name = "GROUP")]
    pub vnet_resourcegroup_name: Option<String>,
    /// Name of the subnet inside the vnet.
    #[arg(long, value_name = "NAME")]
    pub subnet_name: Option<String>,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum CreateCommand {
    /// Create an AzureML compute target.
    #[command(after_help = "Examples:\n  \
        azml computetarget create amlcompute -n cpu-cluster -s STANDARD_D2_V2 --max-nodes 4\n  \
        azml computetarget create amlcompute -n gpu -s Standard_NC6 --min-nodes 0 --max-nodes 2 -p lowpriority --tag team=vision")]
    Amlcompute(CreateAmlcomputeArgs),
    /// Create an AzureML compute instance target.
    #[command(
        after_help = "Examples:\n  azml computetarget create computeinstance -n my-ci -s STANDARD_DS3_V2"
    )]
    Computeinstance(CreateComputeinstanceArgs),
    /// Create an AKS compute target.
    #[command(
        after_help = "Examples:\n  azml computetarget create aks -n my-aks -a 3 -s Standard_D3_v2"
    )]
    Aks(CreateAksArgs),
    /// Create a data factory compute target.
    #[command(
        after_help = "Examples:\n  azml computetarget create datafactory -n my-adf -l westeurope"
    )]
    Datafactory(CreateDatafactoryArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VmPriority {
    Dedicated,
    Lowpriority,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PortAccess {
    Enabled,
    Disabled,
    #[value(name = "NotSpecified")]
    NotSpecified,
}

#[derive(Debug, Args)]
pub struct CreateAmlcomputeArgs {
    /// Name of compute target to provision.
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: String,
    /// VM size to use for the compute target (https://aka.ms/azureml-vm-details).
    #[arg(short = 's', long = "vm-size", value_name = "SIZE")]
    pub vm_size: String,
    /// Maximum number of nodes to use.
    #[arg(long, value_name = "N")]
    pub max_nodes: u32,
    /// Minimum number of nodes to use. Default: 0.
    #[arg(long, value_name = "N")]
    pub min_nodes: Option<u32>,
    /// Node idle time in seconds before scaling down the cluster.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub idle_seconds_before_scaledown: u64,
    /// VM priority to use for the compute target. Default: dedicated.
    #[arg(short = 'p', long = "vm-priority", value_enum, ignore_case = true)]
    pub vm_priority: Option<VmPriority>,
    /// Name of the administrator user account which can be used to SSH into nodes.
    #[arg(long, value_name = "USER")]
    pub admin_username: Option<String>,
    /// Password of the administrator user account (else --password-stdin or AZML_SSH_PASSWORD).
    #[arg(long, value_name = "PASSWORD")]
    pub admin_user_password: Option<String>,
    /// Read the administrator password from the first line of stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// SSH public key of the administrator user account.
    #[arg(long, value_name = "KEY")]
    pub admin_user_ssh_key: Option<String>,
    /// Use '[system]' to set a system assigned identity else resource IDs separated by commas.
    #[arg(long, value_name = "IDENTITIES")]
    pub assign_identity: Option<String>,
    /// Description of the compute target.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Enable Node Public IP (true/false). Default: true.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub enable_node_public_ip: Option<bool>,
    /// Location to provision cluster in. Defaults to the workspace location.
    #[arg(short = 'l', long, value_name = "LOCATION")]
    pub location: Option<String>,
    /// State of the public SSH port.
    #[arg(long, value_enum, ignore_case = true)]
    pub remote_login_port_public_access: Option<PortAccess>,
    /// Key/value tag to add (e.g. key=value). Repeat for several tags.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub tags: Vec<KeyValue>,
    #[command(flatten)]
    pub vnet: VnetArgs,
    /// Flag to not wait for asynchronous calls.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub common: ComputeWorkspaceArgs,
}

#[derive(Debug, Args)]
pub struct CreateComputeinstanceArgs {
    /// Name of compute instance to create.
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: String,
    /// VM size to use for the compute target (https://aka.ms/azureml-vm-details).
    #[arg(short = 's', long = "vm-size", value_name = "SIZE")]
    pub vm_size: String,
    /// SSH public key of the administrator user account.
    #[arg(long, value_name = "KEY")]
    pub admin_user_ssh_public_key: Option<String>,
    /// Description of the compute target.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// State of the public SSH port (true/false).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub ssh_public_access: Option<bool>,
    /// Key/value tag to add (e.g. key=value). Repeat for several tags.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub tags: Vec<KeyValue>,
    /// The AAD Object ID of the assigned user of this compute instance.
    #[arg(long, value_name = "ID")]
    pub user_object_id: Option<String>,
    /// The AAD Tenant ID of the assigned user of this compute instance.
    #[arg(long, value_name = "ID")]
    pub user_tenant_id: Option<String>,
    #[command(flatten)]
    pub vnet: VnetArgs,
    /// Flag to not wait for asynchronous calls.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub common: ComputeWorkspaceArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClusterPurpose {
    #[value(name = "FastProd")]
    FastProd,
    #[value(name = "DevTest")]
    DevTest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoadBalancerType {
    #[value(name = "PublicIp")]
    PublicIp,
    #[value(name = "InternalLoadBalancer")]
    InternalLoadBalancer,
}

// SSL settings shared by `create aks` and `update aks`.
#[derive(Debug, Args, Clone, Default)]
pub struct SslArgs {
    /// Cert pem file to use for SSL validation. Needs --ssl-cname and --ssl-key-file.
    #[arg(long, value_name = "FILE")]
    pub ssl_cert_file: Option<PathBuf>,
    /// Cname to use for SSL validation. Needs --ssl-cert-file and --ssl-key-file.
    #[arg(long, value_name = "CNAME")]
    pub ssl_cname: Option<String>,
    /// Key pem file to use for SSL validation. Needs --ssl-cname and --ssl-cert-file.
    #[arg(long, value_name = "FILE")]
    pub ssl_key_file: Option<PathBuf>,
    /// Leaf domain label to use for the auto generated certificate.
    #[arg(long, value_name = "LABEL")]
    pub ssl_leaf_domain_label: Option<String>,
    /// When set overwrites the existing leaf domain label.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub ssl_overwrite_domain: Option<bool>,
}

// Load balancer settings shared by `create aks` and `update aks`.
#[derive(Debug, Args, Clone, Default)]
pub struct LoadBalancerArgs {
    /// Subnet for the AKS cluster when Internal Load Balancer is used. Default: "aks-subnet".
    #[arg(long, value_name = "SUBNET")]
    pub load_balancer_subnet: Option<String>,
    /// Public IP or Internal Load Balancer. Default: PublicIp.
    #[arg(long, value_enum, ignore_case = true)]
    pub load_balancer_type: Option<LoadBalancerType>,
}

#[derive(Debug, Args)]
pub struct CreateAksArgs {
    /// Name of compute target to provision.
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: String,
    /// Number of agents to provision with the AKS cluster. Default: 3.
    #[arg(short = 'a', long, value_name = "N")]
    pub agent_count: Option<u32>,
    /// Targeted purpose of the cluster (FastProd or DevTest).
    #[arg(long, value_enum, ignore_case = true)]
    pub cluster_purpose: Option<ClusterPurpose>,
    /// Containers DNS server IP address.
    #[arg(long, value_name = "IP")]
    pub dns_service_ip: Option<String>,
    /// A CIDR notation IP for Docker bridge.
    #[arg(long, value_name = "CIDR")]
    pub docker_bridge_cidr: Option<String>,
    /// A CIDR notation IP range from which to assign service cluster IPs.
    #[arg(long, value_name = "CIDR")]
    pub service_cidr: Option<String>,
    /// Location to provision cluster in. Defaults to the workspace location.
    #[arg(short = 'l', long, value_name = "LOCATION")]
    pub location: Option<String>,
    /// VM size to use for the compute target. Default: Standard_D3_v2.
    #[arg(short = 's', long = "vm-size", value_name = "SIZE")]
    pub vm_size: Option<String>,
    #[command(flatten)]
    pub load_balancer: LoadBalancerArgs,
    #[command(flatten)]
    pub ssl: SslArgs,
    #[command(flatten)]
    pub vnet: VnetArgs,
    /// Flag to not wait for asynchronous calls.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub common: ComputeWorkspaceArgs,
}

#[derive(Debug, Args)]
pub struct CreateDatafactoryArgs {
    /// Name of compute target to provision.
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: String,
    /// Location to provision the data factory in. Defaults to the workspace location.
    #[arg(short = 'l', long, value_name = "LOCATION")]
    pub location: Option<String>,
    /// Flag to not wait for asynchronous calls.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub common: ComputeWorkspaceArgs,
}

#[derive(Debug, Subcommand)]
pub enum AttachCommand {
    /// Attach a remote machine without Docker as a compute target to the workspace (SSH).
    #[command(after_help = "Examples:\n  \
        azml computetarget attach remote -n my-vm -a 10.0.0.4 -u azureuser --private-key-file ~/.ssh/id_rsa\n  \
        azml computetarget attach remote -n box -a box.example.com --ssh-port 2222 -u me -p \"$PASSWORD\"\n  \
        azml computetarget attach remote -n lab -a lab-gpu   # user, port, key from ~/.ssh/config")]
    Remote(AttachSshArgs),
    /// Attach a KubernetesCompute as a compute target to the workspace.
    #[command(
        after_help = "Examples:\n  azml computetarget attach kubernetes -n k8s -i /subscriptions/…/providers/Microsoft.Kubernetes/connectedClusters/my-arc --namespace ml"
    )]
    Kubernetes(AttachKubernetesArgs),
    /// Attach an AKS cluster to the workspace.
    #[command(
        after_help = "Examples:\n  azml computetarget attach aks -n my-aks -i /subscriptions/…/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/my-aks"
    )]
    Aks(AttachResourceArgs),
    /// Attach HDI cluster to the workspace.
    #[command(
        after_help = "Examples:\n  azml computetarget attach hdi -n my-hdi -a my-hdi-ssh.azurehdinsight.net -u sshuser -p \"$PASSWORD\"",
        // HDInsight is Azure-only, where the user is always required (as in v1).
        mut_arg("username", |a| a.required(true))
    )]
    Hdi(AttachSshArgs),
    /// Attach a Databricks workspace to the workspace.
    #[command(
        after_help = "Examples:\n  azml computetarget attach databricks -n dbx -i /subscriptions/…/providers/Microsoft.Databricks/workspaces/dbx -a \"$DATABRICKS_TOKEN\""
    )]
    Databricks(AttachDatabricksArgs),
    /// Attach Data Lake Analytics to the workspace.
    #[command(
        after_help = "Examples:\n  azml computetarget attach adla -n my-adla -i /subscriptions/…/providers/Microsoft.DataLakeAnalytics/accounts/my-adla"
    )]
    Adla(AttachAdlaArgs),
    /// Attach a Synapse Spark pool to the workspace.
    #[command(
        after_help = "Examples:\n  azml computetarget attach synapse -n spark -i /subscriptions/…/providers/Microsoft.Synapse/workspaces/syn/bigDataPools/pool1"
    )]
    Synapse(AttachResourceArgs),
    /// Attach a Batch account to the workspace.
    #[command(
        after_help = "Examples:\n  azml computetarget attach batch -n my-batch -i /subscriptions/…/providers/Microsoft.Batch/batchAccounts/my-batch"
    )]
    Batch(AttachResourceArgs),
    /// Attach a data factory to the workspace.
    #[command(
        after_help = "Examples:\n  azml computetarget attach datafactory -n my-adf -i /subscriptions/…/providers/Microsoft.DataFactory/factories/my-adf"
    )]
    Datafactory(AttachResourceArgs),
}

// Attach by ARM resource id.
#[derive(Debug, Args)]
pub struct AttachResourceArgs {
    /// Specifies the compute target name. Must be unique to the workspace.
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: String,
    /// Resource ID of the compute object to attach to the workspace.
    #[arg(short = 'i', long = "compute-resource-id", value_name = "ID")]
    pub compute_resource_id: String,
    #[command(flatten)]
    pub common: ComputeWorkspaceArgs,
}

#[derive(Debug, Args)]
pub struct AttachAdlaArgs {
    #[command(flatten)]
    pub resource: AttachResourceArgs,
    /// The Data Lake Store account the Analytics account uses (an addition: v1 had no flag for it).
    #[arg(long = "store-account-name", value_name = "ACCOUNT")]
    pub store_account_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct AttachKubernetesArgs {
    #[command(flatten)]
    pub resource: AttachResourceArgs,
    /// The Kubernetes namespace to which workloads for the compute target are submitted.
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

#[derive(Debug, Args)]
pub struct AttachDatabricksArgs {
    #[command(flatten)]
    pub resource: AttachResourceArgs,
    /// The access token for the Databricks workspace being attached (never printed or logged).
    #[arg(short = 'a', long = "access-token", value_name = "TOKEN")]
    pub access_token: String,
}

// Attach a machine reached over SSH (`remote`, `hdi`).
#[derive(Debug, Args)]
pub struct AttachSshArgs {
    /// Specifies the compute target name. Must be unique to the workspace.
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: String,
    /// DNS name or IP address of the target.
    #[arg(short = 'a', long, value_name = "ADDRESS")]
    pub address: String,
    /// Ssh port that can be use to connect to the compute.
    #[arg(long, value_name = "PORT", default_value_t = 22,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub ssh_port: u16,
    /// The username for the machine being attached (required on Azure; for an SSH host of the local
    /// workspace it defaults to what ssh would use: an alias's `User` in ~/.ssh/config, else your login).
    #[arg(short = 'u', long, value_name = "USER")]
    pub username: Option<String>,
    /// The password for the machine being attached (never printed or logged; else --password-stdin or AZML_SSH_PASSWORD).
    #[arg(short = 'p', long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Read the password from the first line of stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Path to a file containing the private key for the machine being attached.
    #[arg(long, value_name = "FILE")]
    pub private_key_file: Option<PathBuf>,
    /// Passphrase for private key specified with the --private-key-file option.
    #[arg(long, value_name = "PASSPHRASE")]
    pub private_key_passphrase: Option<String>,
    #[command(flatten)]
    pub common: ComputeWorkspaceArgs,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ComputeinstanceCommand {
    /// Start a compute instance.
    #[command(after_help = "Examples:\n  azml computetarget computeinstance start -n my-ci")]
    Start(LifecycleArgs),
    /// Stop a compute instance.
    #[command(after_help = "Examples:\n  azml computetarget computeinstance stop -n my-ci")]
    Stop(LifecycleArgs),
    /// Restart a compute instance.
    #[command(
        after_help = "Examples:\n  azml computetarget computeinstance restart -n my-ci --no-wait"
    )]
    Restart(LifecycleArgs),
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum AmlcomputeCommand {
    /// AzureML compute target identity commands.
    #[command(subcommand)]
    Identity(IdentityCommand),
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum IdentityCommand {
    /// Assign identity to an AzureML compute target.
    #[command(
        after_help = "Examples:\n  azml computetarget amlcompute identity assign -n cpu-cluster --identities '[system]'"
    )]
    Assign(IdentityChangeArgs),
    /// Remove identity from an AzureML compute target.
    #[command(
        after_help = "Examples:\n  azml computetarget amlcompute identity remove -n cpu-cluster --identities '[system]'"
    )]
    Remove(IdentityChangeArgs),
    /// Display identities of an AzureML compute target.
    #[command(
        after_help = "Examples:\n  azml computetarget amlcompute identity show -n cpu-cluster"
    )]
    Show(TargetNameArgs),
}

#[derive(Debug, Args)]
pub struct IdentityChangeArgs {
    /// '[system]' for the system assigned identity, else resource IDs separated by commas.
    #[arg(long, value_name = "IDENTITIES")]
    pub identities: String,
    #[command(flatten)]
    pub target: TargetNameArgs,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum UpdateCommand {
    /// Update an AzureML compute target.
    #[command(
        after_help = "Examples:\n  azml computetarget update amlcompute -n cpu-cluster --min-nodes 0 --max-nodes 8"
    )]
    Amlcompute(UpdateAmlcomputeArgs),
    /// Update an AKS compute target.
    #[command(after_help = "Examples:\n  azml computetarget update aks -n my-aks --ssl-renew")]
    Aks(UpdateAksArgs),
}

#[derive(Debug, Args)]
pub struct UpdateAmlcomputeArgs {
    /// Name of compute target to update.
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: String,
    /// Node idle time in seconds before scaling down the cluster.
    #[arg(long, value_name = "SECONDS")]
    pub idle_seconds_before_scaledown: Option<u64>,
    /// Maximum number of nodes to use.
    #[arg(long, value_name = "N")]
    pub max_nodes: Option<u32>,
    /// Minimum number of nodes to use.
    #[arg(long, value_name = "N")]
    pub min_nodes: Option<u32>,
    #[command(flatten)]
    pub common: ComputeWorkspaceArgs,
}

#[derive(Debug, Args)]
pub struct UpdateAksArgs {
    /// Name of compute target to update.
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: String,
    #[command(flatten)]
    pub load_balancer: LoadBalancerArgs,
    #[command(flatten)]
    pub ssl: SslArgs,
    /// Disable SSL validation.
    #[arg(long)]
    pub ssl_disable: bool,
    /// Refreshes the auto generated certificate. The existing SSL configuration must be auto.
    #[arg(long)]
    pub ssl_renew: bool,
    /// Flag to not wait for asynchronous calls.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub common: ComputeWorkspaceArgs,
}
