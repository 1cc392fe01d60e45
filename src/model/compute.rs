//! Compute target specs built from `computetarget create|attach|update` flags.
//! Backend-neutral: `arm` turns them into ARM bodies, `local` into stored targets.
//! Parsing here catches bad flag values before any network call.

use std::fmt;
use std::io::BufRead;

/// A secret string (password, access token, private key): never printed by `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A flag value that does not make sense; the message names the flag.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

impl crate::error::ExitCoded for SpecError {
    fn exit_code(&self) -> i32 {
        crate::error::exit::USAGE
    }
}

/// `--vm-priority`: v1 spelled them `dedicated`/`lowpriority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VmPriority {
    #[default]
    Dedicated,
    LowPriority,
}

impl VmPriority {
    pub fn parse(value: &str) -> Result<VmPriority, SpecError> {
        match value.to_ascii_lowercase().as_str() {
            "dedicated" => Ok(VmPriority::Dedicated),
            "lowpriority" | "low_priority" | "low-priority" => Ok(VmPriority::LowPriority),
            _ => Err(SpecError(format!(
                "--vm-priority '{value}' is not valid: use dedicated or lowpriority"
            ))),
        }
    }
    pub fn arm_name(self) -> &'static str {
        match self {
            VmPriority::Dedicated => "Dedicated",
            VmPriority::LowPriority => "LowPriority",
        }
    }
}

/// `--vnet-name/--subnet-name/--vnet-resourcegroup-name` (the group defaults to the workspace's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetRef {
    pub vnet_name: String,
    pub subnet_name: String,
    pub vnet_resource_group: Option<String>,
}

impl SubnetRef {
    /// Both or neither of vnet and subnet; the group alone is an error.
    pub fn from_flags(
        vnet: Option<String>,
        subnet: Option<String>,
        group: Option<String>,
    ) -> Result<Option<SubnetRef>, SpecError> {
        match (vnet, subnet) {
            (Some(vnet_name), Some(subnet_name)) => Ok(Some(SubnetRef {
                vnet_name,
                subnet_name,
                vnet_resource_group: group,
            })),
            (None, None) if group.is_none() => Ok(None),
            _ => Err(SpecError(
                "--vnet-name and --subnet-name must be given together \
                 (--vnet-resourcegroup-name only with them)"
                    .into(),
            )),
        }
    }
}

/// `--assign-identity`: `[system]`, resource ids separated by commas, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySpec {
    pub system: bool,
    pub user_assigned: Vec<String>,
}

impl IdentitySpec {
    pub fn parse(value: &str) -> Result<IdentitySpec, SpecError> {
        let mut spec = IdentitySpec {
            system: false,
            user_assigned: Vec::new(),
        };
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item.eq_ignore_ascii_case("[system]") {
                spec.system = true;
            } else if item.starts_with("/subscriptions/") {
                spec.user_assigned.push(item.to_string());
            } else {
                return Err(SpecError(format!(
                    "--assign-identity item '{item}' is neither [system] nor a resource id \
                     (/subscriptions/…/userAssignedIdentities/NAME)"
                )));
            }
        }
        if !spec.system && spec.user_assigned.is_empty() {
            return Err(SpecError("--assign-identity is empty".into()));
        }
        Ok(spec)
    }

    /// The ARM `ManagedServiceIdentity.type` for this combination.
    pub fn arm_type(&self) -> &'static str {
        match (self.system, self.user_assigned.is_empty()) {
            (true, true) => "SystemAssigned",
            (true, false) => "SystemAssigned,UserAssigned",
            _ => "UserAssigned",
        }
    }
}

/// Admin account for AmlCompute nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUser {
    pub username: String,
    pub password: Option<Secret>,
    pub ssh_public_key: Option<String>,
}

/// `computetarget create amlcompute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmlComputeSpec {
    pub name: String,
    pub vm_size: String,
    pub vm_priority: VmPriority,
    pub min_nodes: u32,
    pub max_nodes: u32,
    pub idle_seconds_before_scaledown: u64,
    pub admin: Option<AdminUser>,
    /// `Enabled`, `Disabled` or `NotSpecified`.
    pub remote_login_port_public_access: Option<String>,
    pub enable_node_public_ip: Option<bool>,
    pub subnet: Option<SubnetRef>,
    pub identity: Option<IdentitySpec>,
    pub location: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// v1's defaults, except the VM size: v1's Standard_NC6 is retired in Azure.
pub const DEFAULT_AML_VM_SIZE: &str = "STANDARD_DS3_V2";
pub const DEFAULT_MAX_NODES: u32 = 4;
pub const DEFAULT_IDLE_SECONDS: u64 = 1800;

impl AmlComputeSpec {
    /// Checks that need no network: node counts and the remote login value.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_nodes(Some(self.min_nodes), Some(self.max_nodes))?;
        if let Some(access) = &self.remote_login_port_public_access {
            normalize_remote_login(access)?;
        }
        if let Some(admin) = &self.admin
            && admin.password.is_none()
            && admin.ssh_public_key.is_none()
        {
            return Err(SpecError(
                "--admin-username needs --admin-user-password (or --password-stdin / \
                 AZML_SSH_PASSWORD) or --admin-user-ssh-key"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// `--remote-login-port-public-access` in the API's spelling.
pub fn normalize_remote_login(value: &str) -> Result<&'static str, SpecError> {
    match value.to_ascii_lowercase().as_str() {
        "enabled" | "true" => Ok("Enabled"),
        "disabled" | "false" => Ok("Disabled"),
        "notspecified" => Ok("NotSpecified"),
        _ => Err(SpecError(format!(
            "--remote-login-port-public-access '{value}' is not valid: use Enabled, Disabled or NotSpecified"
        ))),
    }
}

fn check_nodes(min: Option<u32>, max: Option<u32>) -> Result<(), SpecError> {
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        return Err(SpecError(format!(
            "--min-nodes ({min}) is larger than --max-nodes ({max})"
        )));
    }
    if max == Some(0) {
        return Err(SpecError("--max-nodes must be at least 1".into()));
    }
    Ok(())
}

/// `computetarget create computeinstance`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputeInstanceSpec {
    pub name: String,
    pub vm_size: String,
    pub ssh_public_access: Option<bool>,
    pub admin_ssh_public_key: Option<String>,
    /// `--user-object-id` and `--user-tenant-id`, both or neither.
    pub assigned_user: Option<(String, String)>,
    pub subnet: Option<SubnetRef>,
    pub location: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<(String, String)>,
}

pub const DEFAULT_INSTANCE_VM_SIZE: &str = "STANDARD_DS3_V2";

/// `computetarget create aks`, as far as the current API models AKS creation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AksSpec {
    pub name: String,
    pub agent_count: Option<u32>,
    pub vm_size: Option<String>,
    /// `DevTest`, `DenseProd` or `FastProd`.
    pub cluster_purpose: Option<String>,
    pub load_balancer_type: Option<String>,
    pub load_balancer_subnet: Option<String>,
    pub service_cidr: Option<String>,
    pub dns_service_ip: Option<String>,
    pub docker_bridge_cidr: Option<String>,
    pub subnet: Option<SubnetRef>,
    pub ssl: Option<AksSsl>,
    pub location: Option<String>,
}

/// SSL settings of `create aks`: either your own cert/key/cname or a generated leaf domain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AksSsl {
    pub cert_pem: Option<String>,
    pub key_pem: Option<Secret>,
    pub cname: Option<String>,
    pub leaf_domain_label: Option<String>,
    pub overwrite_existing_domain: bool,
}

impl AksSpec {
    /// v1's `AksProvisioningConfiguration.validate_configuration`, plus the
    /// load balancer rule its docs state: caught before any request.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.agent_count == Some(0) {
            return Err(SpecError("--agent-count must be a positive integer".into()));
        }
        if let Some(ssl) = &self.ssl {
            ssl.validate()?;
        }
        let networking = [
            &self.service_cidr,
            &self.dns_service_ip,
            &self.docker_bridge_cidr,
        ];
        if (self.subnet.is_some() || networking.iter().any(|v| v.is_some()))
            && (self.subnet.is_none() || networking.iter().any(|v| v.is_none()))
        {
            return Err(SpecError(
                "not all virtual network settings given: a custom vnet for AKS needs --vnet-name, \
                 --subnet-name, --service-cidr, --dns-service-ip and --docker-bridge-cidr"
                    .into(),
            ));
        }
        if self.load_balancer_subnet.is_some()
            && self.load_balancer_type.as_deref() != Some("InternalLoadBalancer")
        {
            return Err(SpecError(
                "--load-balancer-subnet applies only with --load-balancer-type InternalLoadBalancer"
                    .into(),
            ));
        }
        Ok(())
    }
}

impl AksSsl {
    /// Your own certificate (cname + cert + key, all three) or a generated one
    /// (leaf domain label), never both.
    fn validate(&self) -> Result<(), SpecError> {
        let own = [
            self.cname.is_some(),
            self.cert_pem.is_some(),
            self.key_pem.is_some(),
        ];
        if own.iter().any(|&given| given) {
            if !own.iter().all(|&given| given) {
                return Err(SpecError(
                    "not all SSL settings given: your own certificate needs --ssl-cname, \
                     --ssl-cert-file and --ssl-key-file"
                        .into(),
                ));
            }
            if self.leaf_domain_label.is_some() || self.overwrite_existing_domain {
                return Err(SpecError(
                    "--ssl-leaf-domain-label/--ssl-overwrite-domain are for a generated \
                     certificate: drop them when giving --ssl-cname, --ssl-cert-file and --ssl-key-file"
                        .into(),
                ));
            }
        } else if self.leaf_domain_label.is_none() {
            return Err(SpecError(
                "--ssl-overwrite-domain needs --ssl-leaf-domain-label".into(),
            ));
        }
        Ok(())
    }
}

/// Credentials for attaching an SSH-reachable machine (remote VM, HDInsight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshCredentials {
    pub username: String,
    pub password: Option<Secret>,
    /// Contents of `--private-key-file` (read, never echoed).
    pub private_key: Option<Secret>,
    pub public_key: Option<String>,
}

/// `computetarget attach <kind>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachSpec {
    Remote {
        address: String,
        ssh_port: u16,
        credentials: SshCredentials,
    },
    Hdi {
        address: String,
        ssh_port: u16,
        credentials: SshCredentials,
    },
    Kubernetes {
        resource_id: String,
        namespace: Option<String>,
    },
    Aks {
        resource_id: String,
    },
    Databricks {
        resource_id: String,
        access_token: Secret,
    },
    Adla {
        resource_id: String,
        store_account: Option<String>,
    },
    Synapse {
        resource_id: String,
    },
    DataFactory {
        resource_id: String,
    },
    /// Azure Batch: the current API has no such compute type.
    Batch {
        resource_id: String,
    },
}

/// `computetarget update amlcompute`: only what is given changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScaleUpdate {
    pub min_nodes: Option<u32>,
    pub max_nodes: Option<u32>,
    pub idle_seconds_before_scaledown: Option<u64>,
}

impl ScaleUpdate {
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.min_nodes.is_none()
            && self.max_nodes.is_none()
            && self.idle_seconds_before_scaledown.is_none()
        {
            return Err(SpecError(
                "nothing to update: give --min-nodes, --max-nodes or --idle-seconds-before-scaledown"
                    .into(),
            ));
        }
        check_nodes(self.min_nodes, self.max_nodes)
    }
}

/// Seconds as the ISO 8601 duration ARM wants (`1800` → `PT30M`).
pub fn iso8601_duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    let mut out = String::from("PT");
    if h > 0 {
        out.push_str(&format!("{h}H"));
    }
    if m > 0 {
        out.push_str(&format!("{m}M"));
    }
    if s > 0 || seconds == 0 {
        out.push_str(&format!("{s}S"));
    }
    out
}

/// `--tag key=value` pairs (a bare `key` means an empty value, as az does).
pub fn parse_tags(tags: &[String]) -> Result<Vec<(String, String)>, SpecError> {
    tags.iter()
        .map(|t| {
            let (k, v) = t.split_once('=').unwrap_or((t.as_str(), ""));
            if k.trim().is_empty() {
                Err(SpecError(format!("--tag '{t}' has no key: use key=value")))
            } else {
                Ok((k.trim().to_string(), v.to_string()))
            }
        })
        .collect()
}

/// The SSH/admin password from `--password`, else `--password-stdin` (first
/// line of stdin), else `AZML_SSH_PASSWORD`. Never echoed.
pub fn resolve_password(
    flag: Option<String>,
    from_stdin: bool,
) -> Result<Option<Secret>, SpecError> {
    if flag.is_some() && from_stdin {
        return Err(SpecError(
            "give the password either as a flag or with --password-stdin, not both".into(),
        ));
    }
    if let Some(p) = flag {
        return Ok(Some(Secret(p)));
    }
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| SpecError(format!("--password-stdin: cannot read stdin: {e}")))?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        if password.is_empty() {
            return Err(SpecError("--password-stdin: stdin was empty".into()));
        }
        return Ok(Some(Secret(password)));
    }
    Ok(std::env::var("AZML_SSH_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .map(Secret))
}

/// Read a key file for attach (`--private-key-file`); the error names the file, never its contents.
pub fn read_key_file(path: &std::path::Path) -> Result<Secret, SpecError> {
    std::fs::read_to_string(path)
        .map(Secret)
        .map_err(|e| SpecError(format!("cannot read key file {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet() -> SubnetRef {
        SubnetRef {
            vnet_name: "v".into(),
            subnet_name: "s".into(),
            vnet_resource_group: None,
        }
    }

    #[test]
    fn aks_ssl_is_own_certificate_or_leaf_domain_never_half_or_both() {
        let own = AksSsl {
            cert_pem: Some("CERT".into()),
            key_pem: Some(Secret::new("KEY")),
            cname: Some("www.contoso.com".into()),
            ..AksSsl::default()
        };
        let leaf = AksSsl {
            leaf_domain_label: Some("ml".into()),
            overwrite_existing_domain: true,
            ..AksSsl::default()
        };
        assert!(own.validate().is_ok() && leaf.validate().is_ok());
        let half = AksSsl {
            key_pem: None,
            ..own.clone()
        };
        assert!(half.validate().unwrap_err().0.contains("--ssl-key-file"));
        let both = AksSsl {
            leaf_domain_label: Some("ml".into()),
            ..own
        };
        assert!(both.validate().is_err());
        let overwrite_only = AksSsl {
            overwrite_existing_domain: true,
            ..AksSsl::default()
        };
        assert!(overwrite_only.validate().is_err());
    }

    #[test]
    fn aks_vnet_needs_every_networking_setting_and_lb_subnet_needs_internal_lb() {
        let full = AksSpec {
            subnet: Some(subnet()),
            service_cidr: Some("10.0.0.0/16".into()),
            dns_service_ip: Some("10.0.0.10".into()),
            docker_bridge_cidr: Some("172.17.0.1/16".into()),
            ..AksSpec::default()
        };
        assert!(full.validate().is_ok());
        let partial = AksSpec {
            dns_service_ip: None,
            ..full.clone()
        };
        assert!(
            partial
                .validate()
                .unwrap_err()
                .0
                .contains("--dns-service-ip")
        );
        let cidr_only = AksSpec {
            service_cidr: Some("10.0.0.0/16".into()),
            ..AksSpec::default()
        };
        assert!(cidr_only.validate().is_err());
        let lb = AksSpec {
            load_balancer_subnet: Some("aks-subnet".into()),
            ..AksSpec::default()
        };
        assert!(lb.validate().is_err());
        let internal = AksSpec {
            load_balancer_type: Some("InternalLoadBalancer".into()),
            ..lb
        };
        assert!(internal.validate().is_ok());
        let zero = AksSpec {
            agent_count: Some(0),
            ..AksSpec::default()
        };
        assert!(zero.validate().is_err());
    }

    #[test]
    fn idle_seconds_become_iso_durations() {
        assert_eq!(iso8601_duration(1800), "PT30M");
        assert_eq!(iso8601_duration(0), "PT0S");
        assert_eq!(iso8601_duration(3725), "PT1H2M5S");
        assert_eq!(iso8601_duration(120), "PT2M");
    }

    #[test]
    fn v1_priority_names_map_to_arm_names() {
        assert_eq!(
            VmPriority::parse("lowpriority").unwrap().arm_name(),
            "LowPriority"
        );
        assert_eq!(
            VmPriority::parse("Dedicated").unwrap().arm_name(),
            "Dedicated"
        );
        assert!(VmPriority::parse("spot").is_err());
    }

    #[test]
    fn identity_system_and_user_assigned_combine() {
        let id = IdentitySpec::parse(
            "[system],/subscriptions/s/rg/x/providers/p/userAssignedIdentities/u",
        )
        .unwrap();
        assert_eq!(id.arm_type(), "SystemAssigned,UserAssigned");
        assert!(IdentitySpec::parse("bogus").is_err());
        assert!(IdentitySpec::parse("").is_err());
    }

    #[test]
    fn min_nodes_above_max_is_rejected() {
        let update = ScaleUpdate {
            min_nodes: Some(5),
            max_nodes: Some(2),
            ..Default::default()
        };
        assert!(update.validate().is_err());
        assert!(ScaleUpdate::default().validate().is_err());
    }

    #[test]
    fn subnet_needs_vnet_and_subnet_together() {
        assert!(SubnetRef::from_flags(Some("v".into()), None, None).is_err());
        assert!(SubnetRef::from_flags(None, None, Some("rg".into())).is_err());
        assert_eq!(SubnetRef::from_flags(None, None, None).unwrap(), None);
    }

    #[test]
    fn tags_split_on_first_equals() {
        let t = parse_tags(&["a=b=c".into(), "flag".into()]).unwrap();
        assert_eq!(
            t,
            vec![("a".into(), "b=c".into()), ("flag".into(), String::new())]
        );
        assert!(parse_tags(&["=x".into()]).is_err());
    }

    #[test]
    fn secret_debug_hides_value() {
        assert!(!format!("{:?}", Secret::new("hunter2")).contains("hunter2"));
    }
}
