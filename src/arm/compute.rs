//! `computetarget` on Azure: v1 specs turned into `ComputeResource` bodies,
//! and the create/attach/power/delete/update calls with their waits.

use super::AzureWorkspace;
use super::client::FinalState;
use super::error::ArmError;
use crate::model::compute::{
    AksSpec, AksSsl, AmlComputeSpec, AttachSpec, ComputeInstanceSpec, IdentitySpec, ScaleUpdate,
    SshCredentials, SubnetRef, iso8601_duration, normalize_remote_login,
};
use reqwest::Method;
use serde_json::{Map, Value, json};

/// `computeinstance start|stop|restart` (and the `computetarget` spellings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    Start,
    Stop,
    Restart,
}

impl PowerAction {
    fn path(self) -> &'static str {
        match self {
            PowerAction::Start => "start",
            PowerAction::Stop => "stop",
            PowerAction::Restart => "restart",
        }
    }
}

fn invalid(e: crate::model::compute::SpecError) -> ArmError {
    ArmError::Invalid(e.0)
}

/// A JSON object without the `None`/null members: the schema refuses nulls.
fn object(entries: Vec<(&str, Option<Value>)>) -> Value {
    let map: Map<String, Value> = entries
        .into_iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_null()).map(|v| (k.to_string(), v)))
        .collect();
    Value::Object(map)
}

fn tags_value(tags: &[(String, String)]) -> Option<Value> {
    (!tags.is_empty()).then(|| {
        Value::Object(
            tags.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    })
}

fn identity_value(identity: &IdentitySpec) -> Value {
    let users: Map<String, Value> = identity
        .user_assigned
        .iter()
        .map(|id| (id.clone(), json!({})))
        .collect();
    object(vec![
        ("type", Some(json!(identity.arm_type()))),
        (
            "userAssignedIdentities",
            (!users.is_empty()).then_some(Value::Object(users)),
        ),
    ])
}

/// The `AmlCompute` PUT body.
pub fn amlcompute_body(
    spec: &AmlComputeSpec,
    location: &str,
    subnet_id: Option<String>,
) -> Result<Value, ArmError> {
    spec.validate().map_err(invalid)?;
    let remote_login = spec
        .remote_login_port_public_access
        .as_deref()
        .map(normalize_remote_login)
        .transpose()
        .map_err(invalid)?;
    let credentials = spec.admin.as_ref().map(|a| {
        object(vec![
            ("adminUserName", Some(json!(a.username))),
            (
                "adminUserPassword",
                a.password.as_ref().map(|p| json!(p.expose())),
            ),
            (
                "adminUserSshPublicKey",
                a.ssh_public_key.as_ref().map(|k| json!(k)),
            ),
        ])
    });
    let scale = json!({
        "maxNodeCount": spec.max_nodes,
        "minNodeCount": spec.min_nodes,
        "nodeIdleTimeBeforeScaleDown": iso8601_duration(spec.idle_seconds_before_scaledown),
    });
    let inner = object(vec![
        ("vmSize", Some(json!(spec.vm_size))),
        ("vmPriority", Some(json!(spec.vm_priority.arm_name()))),
        ("scaleSettings", Some(scale)),
        ("userAccountCredentials", credentials),
        ("subnet", subnet_id.map(|id| json!({ "id": id }))),
        (
            "remoteLoginPortPublicAccess",
            remote_login.map(|r| json!(r)),
        ),
        (
            "enableNodePublicIp",
            spec.enable_node_public_ip.map(|b| json!(b)),
        ),
    ]);
    Ok(resource_body(
        "AmlCompute",
        location,
        spec.description.as_deref(),
        None,
        Some(inner),
        &spec.tags,
        spec.identity.as_ref(),
    ))
}

/// The `ComputeInstance` PUT body.
pub fn compute_instance_body(
    spec: &ComputeInstanceSpec,
    location: &str,
    subnet_id: Option<String>,
) -> Value {
    let ssh = match (spec.ssh_public_access, &spec.admin_ssh_public_key) {
        (None, None) => None,
        (access, key) => Some(object(vec![
            (
                "sshPublicAccess",
                access.map(|a| json!(if a { "Enabled" } else { "Disabled" })),
            ),
            ("adminPublicKey", key.as_ref().map(|k| json!(k))),
        ])),
    };
    let personal = spec.assigned_user.as_ref().map(|(object_id, tenant_id)| {
        json!({"assignedUser": {"objectId": object_id, "tenantId": tenant_id}})
    });
    let inner = object(vec![
        ("vmSize", Some(json!(spec.vm_size))),
        ("subnet", subnet_id.map(|id| json!({ "id": id }))),
        ("sshSettings", ssh),
        ("personalComputeInstanceSettings", personal),
    ]);
    resource_body(
        "ComputeInstance",
        location,
        spec.description.as_deref(),
        None,
        Some(inner),
        &spec.tags,
        None,
    )
}

/// The `AKS` PUT body (creating a cluster; the service still models it).
pub fn aks_body(spec: &AksSpec, location: &str, subnet_id: Option<String>) -> Value {
    let networking = object(vec![
        ("subnetId", subnet_id.map(|s| json!(s))),
        ("serviceCidr", spec.service_cidr.as_ref().map(|v| json!(v))),
        (
            "dnsServiceIP",
            spec.dns_service_ip.as_ref().map(|v| json!(v)),
        ),
        (
            "dockerBridgeCidr",
            spec.docker_bridge_cidr.as_ref().map(|v| json!(v)),
        ),
    ]);
    let ssl = spec.ssl.as_ref().map(ssl_configuration);
    let has_networking = networking.as_object().is_some_and(|m| !m.is_empty());
    let inner = object(vec![
        ("agentCount", spec.agent_count.map(|n| json!(n))),
        ("agentVmSize", spec.vm_size.as_ref().map(|v| json!(v))),
        (
            "clusterPurpose",
            spec.cluster_purpose.as_ref().map(|v| json!(v)),
        ),
        (
            "loadBalancerType",
            spec.load_balancer_type.as_ref().map(|v| json!(v)),
        ),
        (
            "loadBalancerSubnet",
            spec.load_balancer_subnet.as_ref().map(|v| json!(v)),
        ),
        (
            "aksNetworkingConfiguration",
            has_networking.then_some(networking),
        ),
        ("sslConfiguration", ssl),
    ]);
    resource_body("AKS", location, None, None, Some(inner), &[], None)
}

/// As v1 sent it: your own certificate is `Enabled` with cname, cert and key;
/// a leaf domain label asks the service for a certificate (`Auto`).
fn ssl_configuration(ssl: &AksSsl) -> Value {
    match &ssl.leaf_domain_label {
        Some(label) if ssl.cname.is_none() => json!({
            "status": "Auto",
            "leafDomainLabel": label,
            "overwriteExistingDomain": ssl.overwrite_existing_domain,
        }),
        _ => object(vec![
            ("status", Some(json!("Enabled"))),
            ("cert", ssl.cert_pem.as_ref().map(|v| json!(v))),
            ("key", ssl.key_pem.as_ref().map(|v| json!(v.expose()))),
            ("cname", ssl.cname.as_ref().map(|v| json!(v))),
        ]),
    }
}

/// The body of `attach <kind>`: the existing resource, described to the workspace.
pub fn attach_body(spec: &AttachSpec, location: &str) -> Result<Value, ArmError> {
    let (kind, resource_id, inner) = match spec {
        AttachSpec::Remote {
            address,
            ssh_port,
            credentials,
        } => (
            "VirtualMachine",
            None,
            Some(ssh_properties(address, *ssh_port, credentials)),
        ),
        AttachSpec::Hdi {
            address,
            ssh_port,
            credentials,
        } => (
            "HDInsight",
            None,
            Some(ssh_properties(address, *ssh_port, credentials)),
        ),
        AttachSpec::Kubernetes {
            resource_id,
            namespace,
        } => (
            "Kubernetes",
            Some(resource_id),
            Some(object(vec![(
                "namespace",
                namespace.as_ref().map(|n| json!(n)),
            )])),
        ),
        AttachSpec::Aks { resource_id } => ("AKS", Some(resource_id), None),
        AttachSpec::Databricks {
            resource_id,
            access_token,
        } => (
            "Databricks",
            Some(resource_id),
            Some(json!({ "databricksAccessToken": access_token.expose() })),
        ),
        AttachSpec::Adla {
            resource_id,
            store_account,
        } => (
            "DataLakeAnalytics",
            Some(resource_id),
            Some(object(vec![(
                "dataLakeStoreAccountName",
                store_account.as_ref().map(|s| json!(s)),
            )])),
        ),
        AttachSpec::Synapse { resource_id } => ("SynapseSpark", Some(resource_id), None),
        AttachSpec::DataFactory { resource_id } => ("DataFactory", Some(resource_id), None),
        AttachSpec::Batch { .. } => {
            return Err(ArmError::Invalid(
                "Azure Batch compute targets no longer exist in the Azure ML API (2025-12-01); \
                 use an AmlCompute cluster (`azml computetarget create amlcompute`) instead"
                    .into(),
            ));
        }
    };
    let inner = inner.filter(|v| v.as_object().is_some_and(|m| !m.is_empty()));
    Ok(resource_body(
        kind,
        location,
        None,
        resource_id.map(String::as_str),
        inner,
        &[],
        None,
    ))
}

fn ssh_properties(address: &str, ssh_port: u16, c: &SshCredentials) -> Value {
    let account = object(vec![
        ("username", Some(json!(c.username))),
        ("password", c.password.as_ref().map(|p| json!(p.expose()))),
        (
            "privateKeyData",
            c.private_key.as_ref().map(|k| json!(k.expose())),
        ),
        ("publicKeyData", c.public_key.as_ref().map(|k| json!(k))),
    ]);
    json!({"address": address, "sshPort": ssh_port, "administratorAccount": account})
}

/// The `ComputeResource` envelope shared by every kind.
fn resource_body(
    kind: &str,
    location: &str,
    description: Option<&str>,
    resource_id: Option<&str>,
    inner: Option<Value>,
    tags: &[(String, String)],
    identity: Option<&IdentitySpec>,
) -> Value {
    let properties = object(vec![
        ("computeType", Some(json!(kind))),
        ("computeLocation", Some(json!(location))),
        ("description", description.map(|d| json!(d))),
        ("resourceId", resource_id.map(|r| json!(r))),
        ("properties", inner),
    ]);
    object(vec![
        ("location", Some(json!(location))),
        ("properties", Some(properties)),
        ("tags", tags_value(tags)),
        ("identity", identity.map(identity_value)),
    ])
}

/// A copy without nulls anywhere (responses carry them; request models refuse them).
fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

fn pick(source: &Value, keys: &[&str]) -> Vec<(String, Value)> {
    keys.iter()
        .filter_map(|k| {
            let v = source.get(*k).filter(|v| !v.is_null())?;
            Some((k.to_string(), strip_nulls(v)))
        })
        .collect()
}

/// The writable part of an AmlCompute resource as returned, for a PUT that
/// changes one thing (identity) and keeps everything else.
pub fn amlcompute_put_from(resource: &Value, identity: Value) -> Value {
    let outer = &resource["properties"];
    let inner = &outer["properties"];
    let mut inner_body: Map<String, Value> = pick(
        inner,
        &[
            "osType",
            "vmSize",
            "vmPriority",
            "virtualMachineImage",
            "isolatedNetwork",
            "scaleSettings",
            "subnet",
            "remoteLoginPortPublicAccess",
            "enableNodePublicIp",
        ],
    )
    .into_iter()
    .collect();
    let credentials = pick(
        &inner["userAccountCredentials"],
        &["adminUserName", "adminUserSshPublicKey"],
    );
    if credentials.iter().any(|(k, _)| k == "adminUserName") {
        inner_body.insert(
            "userAccountCredentials".into(),
            Value::Object(credentials.into_iter().collect()),
        );
    }
    let mut props: Map<String, Value> = pick(
        outer,
        &[
            "computeType",
            "computeLocation",
            "description",
            "resourceId",
            "disableLocalAuth",
        ],
    )
    .into_iter()
    .collect();
    props.insert("properties".into(), Value::Object(inner_body));
    let mut body: Map<String, Value> = pick(resource, &["location", "tags"]).into_iter().collect();
    body.insert("properties".into(), Value::Object(props));
    body.insert("identity".into(), identity);
    Value::Object(body)
}

/// The compute's identities after `identity assign|remove` of `change`.
pub fn changed_identity(current: &Value, change: &IdentitySpec, assign: bool) -> Value {
    let kind = current
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("None");
    let mut system = kind.contains("SystemAssigned");
    let mut users: std::collections::BTreeSet<String> = current
        .get("userAssignedIdentities")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    if change.system {
        system = assign;
    }
    for id in &change.user_assigned {
        if assign {
            users.insert(id.clone());
        } else {
            users.retain(|u| !u.eq_ignore_ascii_case(id));
        }
    }
    if !system && users.is_empty() {
        return json!({"type": "None"});
    }
    identity_value(&IdentitySpec {
        system,
        user_assigned: users.into_iter().collect(),
    })
}

/// `listKeys` output with every secret string masked, unless `--show-secrets`.
pub fn mask_secrets(value: &Value) -> Value {
    const PLAIN: [&str; 4] = [
        "computeType",
        "username",
        "adminUserName",
        "imagePullSecretName",
    ];
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let masked = match v {
                        Value::String(_) if !PLAIN.contains(&k.as_str()) => json!("***"),
                        other => mask_secrets(other),
                    };
                    (k.clone(), masked)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask_secrets).collect()),
        other => other.clone(),
    }
}

/// One row of `computetarget list -o table`: name, compute type, state, size, nodes.
pub fn list_row(compute: &Value) -> Value {
    let p = |ptr: &str| compute.pointer(ptr).cloned().unwrap_or(Value::Null);
    let state = compute
        .pointer("/properties/properties/state")
        .cloned()
        .unwrap_or_else(|| p("/properties/provisioningState"));
    let nodes = compute
        .pointer("/properties/properties/currentNodeCount")
        .cloned()
        .unwrap_or(Value::Null);
    json!({
        "name": p("/name"),
        // az's table drops a key named `type`, so the column is `computeType`.
        "computeType": p("/properties/computeType"),
        "state": state,
        "size": p("/properties/properties/vmSize"),
        "nodes": nodes,
    })
}

fn is_attached(compute: &Value) -> bool {
    compute
        .pointer("/properties/isAttachedCompute")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

impl AzureWorkspace {
    fn subnet_id(&self, subnet: Option<&SubnetRef>) -> Option<String> {
        subnet.map(|s| {
            format!(
                "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/virtualNetworks/{}/subnets/{}",
                self.workspace.subscription_id,
                s.vnet_resource_group.as_deref().unwrap_or(&self.workspace.resource_group),
                s.vnet_name,
                s.subnet_name
            )
        })
    }

    /// The flag's location, else the workspace's (one GET).
    async fn location_or_workspace(&self, location: Option<&str>) -> Result<String, ArmError> {
        if let Some(l) = location.filter(|l| !l.is_empty()) {
            return Ok(l.to_string());
        }
        let ws = self.get_workspace().await?;
        ws.get("location")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ArmError::BadResponse {
                url: self.workspace_path(),
                reason: "the workspace has no location; pass --location".into(),
            })
    }

    /// What every create needs before its PUT: the compute must not exist, and
    /// the location (given, else the workspace's). The two GETs are independent,
    /// so they run concurrently: one round trip instead of two.
    async fn absent_and_location(
        &self,
        name: &str,
        location: Option<&str>,
    ) -> Result<(reqwest::Url, String), ArmError> {
        tokio::try_join!(
            self.ensure_absent(name),
            self.location_or_workspace(location)
        )
    }

    /// A PUT would silently overwrite, so creation GETs first: an existing compute is an error.
    async fn ensure_absent(&self, name: &str) -> Result<reqwest::Url, ArmError> {
        let url = self.compute_url(name, "")?;
        if self.client()?.get_optional(url.clone()).await?.is_some() {
            return Err(ArmError::AlreadyExists(name.to_string()));
        }
        Ok(url)
    }

    /// PUT or PATCH a compute, then (unless `no_wait`) poll until the service settles
    /// and return the resource as it ends up.
    async fn send_and_wait(
        &self,
        method: Method,
        url: reqwest::Url,
        body: Value,
        no_wait: bool,
    ) -> Result<Value, ArmError> {
        let initial = self
            .client()?
            .call(method.clone(), url.clone(), Some(&body))
            .await?;
        if no_wait {
            return Ok(initial.body);
        }
        let done = self
            .client()?
            .wait(&method, &url, initial, FinalState::OriginalUrl)
            .await?;
        Ok(done.unwrap_or(Value::Null))
    }

    /// `computetarget create amlcompute`.
    pub async fn create_amlcompute(
        &self,
        spec: &AmlComputeSpec,
        no_wait: bool,
    ) -> Result<Value, ArmError> {
        spec.validate().map_err(invalid)?;
        let (url, location) = self
            .absent_and_location(&spec.name, spec.location.as_deref())
            .await?;
        let body = amlcompute_body(spec, &location, self.subnet_id(spec.subnet.as_ref()))?;
        self.send_and_wait(Method::PUT, url, body, no_wait).await
    }

    /// `computetarget create computeinstance`.
    pub async fn create_compute_instance(
        &self,
        spec: &ComputeInstanceSpec,
        no_wait: bool,
    ) -> Result<Value, ArmError> {
        let (url, location) = self
            .absent_and_location(&spec.name, spec.location.as_deref())
            .await?;
        let body = compute_instance_body(spec, &location, self.subnet_id(spec.subnet.as_ref()));
        self.send_and_wait(Method::PUT, url, body, no_wait).await
    }

    /// `computetarget create aks`.
    pub async fn create_aks(&self, spec: &AksSpec, no_wait: bool) -> Result<Value, ArmError> {
        spec.validate().map_err(invalid)?;
        let (url, location) = self
            .absent_and_location(&spec.name, spec.location.as_deref())
            .await?;
        let body = aks_body(spec, &location, self.subnet_id(spec.subnet.as_ref()));
        self.send_and_wait(Method::PUT, url, body, no_wait).await
    }

    /// `computetarget create datafactory`.
    pub async fn create_datafactory(
        &self,
        name: &str,
        location: Option<&str>,
        no_wait: bool,
    ) -> Result<Value, ArmError> {
        let (url, location) = self.absent_and_location(name, location).await?;
        let body = resource_body("DataFactory", &location, None, None, None, &[], None);
        self.send_and_wait(Method::PUT, url, body, no_wait).await
    }

    /// `computetarget attach <kind>`.
    pub async fn attach(&self, name: &str, spec: &AttachSpec) -> Result<Value, ArmError> {
        // Refuse kinds the API lacks before any request.
        attach_body(spec, "")?;
        let (url, location) = self.absent_and_location(name, None).await?;
        let body = attach_body(spec, &location)?;
        self.send_and_wait(Method::PUT, url, body, false).await
    }

    /// `start|stop|restart`: POST, then wait for the Location poll; returns the compute afterwards.
    pub async fn power(
        &self,
        name: &str,
        action: PowerAction,
        no_wait: bool,
    ) -> Result<Option<Value>, ArmError> {
        let url = self.compute_url(name, action.path())?;
        let initial = self.client()?.call(Method::POST, url.clone(), None).await?;
        if no_wait {
            return Ok(None);
        }
        self.client()?
            .wait(&Method::POST, &url, initial, FinalState::LocationIfAny)
            .await?;
        Ok(Some(self.client()?.get(self.compute_url(name, "")?).await?))
    }

    /// `computetarget delete`: removes the compute and what Azure ML created for it.
    pub async fn delete_compute(&self, name: &str, no_wait: bool) -> Result<(), ArmError> {
        let compute = self.client()?.get(self.compute_url(name, "")?).await?;
        if is_attached(&compute) {
            return Err(ArmError::Invalid(format!(
                "'{name}' is an attached compute target: delete would remove the underlying \
                 resource, so azml refuses; use `azml computetarget detach -n {name}`"
            )));
        }
        self.remove(name, "Delete", no_wait).await
    }

    /// `computetarget detach`: forgets an attached compute, leaving the resource itself alone.
    pub async fn detach_compute(&self, name: &str, no_wait: bool) -> Result<(), ArmError> {
        let compute = self.client()?.get(self.compute_url(name, "")?).await?;
        if !is_attached(&compute) {
            return Err(ArmError::Invalid(format!(
                "'{name}' was created by Azure ML, not attached; use `azml computetarget delete -n {name}`"
            )));
        }
        self.remove(name, "Detach", no_wait).await
    }

    async fn remove(&self, name: &str, action: &str, no_wait: bool) -> Result<(), ArmError> {
        let mut url = self.compute_url(name, "")?;
        url.query_pairs_mut()
            .append_pair("underlyingResourceAction", action);
        let initial = self
            .client()?
            .call(Method::DELETE, url.clone(), None)
            .await?;
        if !no_wait {
            self.client()?
                .wait(&Method::DELETE, &url, initial, FinalState::Nothing)
                .await?;
        }
        Ok(())
    }

    /// `computetarget update amlcompute`: PATCH the scale settings, keeping what was not given.
    pub async fn update_amlcompute(
        &self,
        name: &str,
        update: &ScaleUpdate,
        no_wait: bool,
    ) -> Result<Value, ArmError> {
        update.validate().map_err(invalid)?;
        let url = self.compute_url(name, "")?;
        let current = self.client()?.get(url.clone()).await?;
        let kind = current
            .pointer("/properties/computeType")
            .and_then(Value::as_str);
        if kind != Some("AmlCompute") {
            return Err(ArmError::Invalid(format!(
                "'{name}' is a {} compute, not AmlCompute; only AmlCompute clusters scale",
                kind.unwrap_or("unknown")
            )));
        }
        let body = json!({"properties": {"properties": {"scaleSettings": merged_scale(&current, update)?}}});
        self.send_and_wait(Method::PATCH, url, body, no_wait).await
    }

    /// `amlcompute identity assign|remove`: PUT the cluster back with its identities changed.
    pub async fn change_identity(
        &self,
        name: &str,
        change: &IdentitySpec,
        assign: bool,
    ) -> Result<Value, ArmError> {
        let url = self.compute_url(name, "")?;
        let current = self.client()?.get(url.clone()).await?;
        let kind = current
            .pointer("/properties/computeType")
            .and_then(Value::as_str);
        if kind != Some("AmlCompute") {
            return Err(ArmError::Invalid(format!(
                "'{name}' is a {} compute; identities are managed here only for AmlCompute",
                kind.unwrap_or("unknown")
            )));
        }
        let identity = changed_identity(
            current.get("identity").unwrap_or(&Value::Null),
            change,
            assign,
        );
        let body = amlcompute_put_from(&current, identity);
        let done = self.send_and_wait(Method::PUT, url, body, false).await?;
        Ok(done.get("identity").cloned().unwrap_or(Value::Null))
    }

    /// `computetarget list-nodes`.
    pub async fn list_nodes(&self, name: &str) -> Result<Vec<Value>, ArmError> {
        self.client()?
            .list(self.compute_url(name, "listNodes")?, Method::POST, "nodes")
            .await
    }

    /// `computetarget get-credentials`: masked unless `show_secrets`.
    pub async fn get_credentials(&self, name: &str, show_secrets: bool) -> Result<Value, ArmError> {
        let url = self.compute_url(name, "listKeys")?;
        let keys = self.client()?.call(Method::POST, url, None).await?.body;
        Ok(if show_secrets {
            keys
        } else {
            mask_secrets(&keys)
        })
    }
}

/// The current scale settings with the update applied; `maxNodeCount` is required by the API.
fn merged_scale(current: &Value, update: &ScaleUpdate) -> Result<Value, ArmError> {
    let now = current
        .pointer("/properties/properties/scaleSettings")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let get = |k: &str| now.get(k).and_then(Value::as_u64);
    let max = update
        .max_nodes
        .map(u64::from)
        .or_else(|| get("maxNodeCount"))
        .ok_or_else(|| {
            ArmError::Invalid("the cluster reports no maxNodeCount; pass --max-nodes".into())
        })?;
    let min = update
        .min_nodes
        .map(u64::from)
        .or_else(|| get("minNodeCount"))
        .unwrap_or(0);
    if min > max {
        return Err(ArmError::Invalid(format!(
            "--min-nodes ({min}) would exceed the cluster's max nodes ({max})"
        )));
    }
    let idle = update
        .idle_seconds_before_scaledown
        .map(iso8601_duration)
        .or_else(|| {
            now.get("nodeIdleTimeBeforeScaleDown")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    Ok(object(vec![
        ("maxNodeCount", Some(json!(max))),
        ("minNodeCount", Some(json!(min))),
        ("nodeIdleTimeBeforeScaleDown", idle.map(Value::String)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::compute::{AdminUser, Secret, VmPriority};

    fn spec() -> AmlComputeSpec {
        AmlComputeSpec {
            name: "cpu".into(),
            vm_size: "STANDARD_D2_V2".into(),
            vm_priority: VmPriority::LowPriority,
            min_nodes: 0,
            max_nodes: 4,
            idle_seconds_before_scaledown: 1800,
            admin: Some(AdminUser {
                username: "azureuser".into(),
                password: Some(Secret::new("pw")),
                ssh_public_key: None,
            }),
            remote_login_port_public_access: Some("disabled".into()),
            enable_node_public_ip: None,
            subnet: None,
            identity: Some(IdentitySpec::parse("[system]").unwrap()),
            location: None,
            description: Some("d".into()),
            tags: vec![("team".into(), "ml".into())],
        }
    }

    #[test]
    fn amlcompute_body_uses_arm_spellings() {
        let body = amlcompute_body(&spec(), "westeurope", None).unwrap();
        assert_eq!(body["properties"]["computeType"], "AmlCompute");
        let inner = &body["properties"]["properties"];
        assert_eq!(inner["vmPriority"], "LowPriority");
        assert_eq!(
            inner["scaleSettings"]["nodeIdleTimeBeforeScaleDown"],
            "PT30M"
        );
        assert_eq!(inner["remoteLoginPortPublicAccess"], "Disabled");
        assert_eq!(body["identity"]["type"], "SystemAssigned");
        assert_eq!(body["tags"]["team"], "ml");
    }

    #[test]
    fn identity_assign_and_remove_combine_with_what_exists() {
        let uid = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u";
        let current = json!({"type": "SystemAssigned", "principalId": "p"});
        let added = changed_identity(&current, &IdentitySpec::parse(uid).unwrap(), true);
        assert_eq!(added["type"], "SystemAssigned,UserAssigned");
        let removed = changed_identity(&added, &IdentitySpec::parse("[system]").unwrap(), false);
        assert_eq!(removed["type"], "UserAssigned");
        let none = changed_identity(&removed, &IdentitySpec::parse(uid).unwrap(), false);
        assert_eq!(none, json!({"type": "None"}));
    }

    #[test]
    fn put_body_from_a_response_drops_read_only_fields_and_nulls() {
        let resource = json!({"id": "x", "name": "cpu", "location": "westeurope", "tags": null,
            "properties": {"computeType": "AmlCompute", "provisioningState": "Succeeded",
                "isAttachedCompute": false, "description": null,
                "properties": {"vmSize": "S", "currentNodeCount": 0, "allocationState": "Steady",
                    "scaleSettings": {"maxNodeCount": 4, "minNodeCount": 0, "nodeIdleTimeBeforeScaleDown": null},
                    "userAccountCredentials": {"adminUserName": "u", "adminUserPassword": null}}}});
        let body = amlcompute_put_from(&resource, json!({"type": "SystemAssigned"}));
        assert_eq!(
            body,
            json!({"location": "westeurope", "identity": {"type": "SystemAssigned"},
                "properties": {"computeType": "AmlCompute", "properties": {"vmSize": "S",
                    "scaleSettings": {"maxNodeCount": 4, "minNodeCount": 0},
                    "userAccountCredentials": {"adminUserName": "u"}}}})
        );
    }

    #[test]
    fn batch_attach_is_refused_with_a_reason() {
        let err = attach_body(
            &AttachSpec::Batch {
                resource_id: "x".into(),
            },
            "l",
        )
        .unwrap_err();
        assert!(err.to_string().contains("Batch"));
    }

    #[test]
    fn scale_update_keeps_unspecified_values() {
        let current = json!({"properties": {"properties": {"scaleSettings":
            {"maxNodeCount": 8, "minNodeCount": 1, "nodeIdleTimeBeforeScaleDown": "PT2M"}}}});
        let update = ScaleUpdate {
            min_nodes: Some(2),
            ..Default::default()
        };
        assert_eq!(
            merged_scale(&current, &update).unwrap(),
            json!({"maxNodeCount": 8, "minNodeCount": 2, "nodeIdleTimeBeforeScaleDown": "PT2M"})
        );
        let too_big = ScaleUpdate {
            min_nodes: Some(9),
            ..Default::default()
        };
        assert!(merged_scale(&current, &too_big).is_err());
    }

    #[test]
    fn credentials_are_masked_but_usernames_kept() {
        let keys = json!({"computeType": "VirtualMachine", "administratorAccount":
            {"username": "u", "password": "p", "privateKeyData": "k"}});
        let masked = mask_secrets(&keys).to_string();
        assert!(masked.contains("\"u\"") && !masked.contains("\"p\"") && !masked.contains("\"k\""));
    }
}
