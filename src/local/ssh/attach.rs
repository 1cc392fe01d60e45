//! `computetarget attach remote|detach` on the local workspace: SSH hosts
//! stored in the computes table, in the ARM `VirtualMachine` shape, without
//! key contents or passwords (only where the key file is).

use super::{HostInfo, Ssh, SshContext, SshError, SshTarget};
use crate::local::store::{ComputeRecord, Store, now_ms};
use crate::workspace::{WorkspaceError, WsResult};
use serde_json::{Map, Value, json};
use std::path::PathBuf;

/// The ARM compute type of an attached remote machine.
pub const COMPUTE_TYPE: &str = "VirtualMachine";
/// The interpreter `attach` checks on the host (runs may name another).
pub const DEFAULT_PYTHON: &str = "python3";

impl From<SshError> for WorkspaceError {
    fn from(e: SshError) -> Self {
        use crate::error::ExitCoded;
        WorkspaceError::Failed {
            hint: e.hint(),
            message: e.to_string(),
        }
    }
}

/// What the user asked to attach.
#[derive(Debug, Clone)]
pub struct AttachRequest {
    pub name: String,
    pub address: String,
    pub port: Option<u16>,
    pub username: Option<String>,
    pub private_key_file: Option<PathBuf>,
}

/// Check the host (connection, host key, Python) and store it as a target.
/// Returns the stored record and what the check found.
pub fn attach(store: &Store, req: AttachRequest) -> WsResult<(ComputeRecord, HostInfo)> {
    check_name(store, &req.name)?;
    let private_key_file = match req.private_key_file {
        Some(file) => Some(file.canonicalize().map_err(|e| WorkspaceError::Failed {
            message: format!("private key file {}: {e}", file.display()),
            hint: Some(
                "give the path of an existing private key (its contents are never stored)".into(),
            ),
        })?),
        None => None,
    };
    let target = SshTarget {
        name: req.name,
        address: req.address,
        port: req.port,
        username: req.username,
        private_key_file,
    };
    let ssh = Ssh::new(target, SshContext::for_workspace(store.root()))?;
    let info = ssh.probe(DEFAULT_PYTHON)?;
    let record = ComputeRecord {
        name: ssh.target.name.clone(),
        compute_type: COMPUTE_TYPE.into(),
        properties: to_properties(&ssh.target, &info),
        created_ms: now_ms(),
    };
    store
        .put_compute(&record)
        .map_err(crate::local::submit::store_err)?;
    Ok((record, info))
}

/// `local` is built in; a name taken by another kind of target is not ours to replace.
fn check_name(store: &Store, name: &str) -> WsResult<()> {
    if name.is_empty() || name == crate::local::launchers::LOCAL_TARGET {
        return Err(WorkspaceError::Invalid(format!(
            "'{name}' cannot name an SSH target (`local` is this machine)"
        )));
    }
    match store
        .compute(name)
        .map_err(crate::local::submit::store_err)?
    {
        Some(existing) if existing.compute_type != COMPUTE_TYPE => Err(WorkspaceError::Failed {
            message: format!(
                "compute target '{name}' already exists ({})",
                existing.compute_type
            ),
            hint: Some("pick another name".into()),
        }),
        _ => Ok(()),
    }
}

/// Forget an SSH target. Errors when it does not exist or is not an SSH host.
pub fn detach(store: &Store, name: &str) -> WsResult<SshTarget> {
    let record = ssh_record(store, name)?;
    let target = from_record(&record)?;
    if let Ok(ssh) = Ssh::new(target.clone(), SshContext::for_workspace(store.root())) {
        ssh.close();
    }
    store
        .delete_compute(name)
        .map_err(crate::local::submit::store_err)?;
    Ok(target)
}

/// The stored record of SSH target `name`.
pub fn ssh_record(store: &Store, name: &str) -> WsResult<ComputeRecord> {
    match store
        .compute(name)
        .map_err(crate::local::submit::store_err)?
    {
        Some(r) if r.compute_type == COMPUTE_TYPE => Ok(r),
        Some(r) => Err(WorkspaceError::Invalid(format!(
            "compute target '{name}' is a {}, not an SSH host",
            r.compute_type
        ))),
        None => Err(WorkspaceError::NotFound {
            kind: "compute target",
            name: name.into(),
        }),
    }
}

/// The stored properties: ARM's `VirtualMachine` fields plus the check result.
pub fn to_properties(target: &SshTarget, info: &HostInfo) -> Map<String, Value> {
    let mut vm = Map::new();
    vm.insert("address".into(), json!(target.address));
    if let Some(port) = target.port {
        vm.insert("sshPort".into(), json!(port));
    }
    if let Some(user) = &target.username {
        vm.insert("administratorAccount".into(), json!({ "username": user }));
    }
    if let Some(key) = &target.private_key_file {
        vm.insert("privateKeyFile".into(), json!(key.display().to_string()));
    }
    let mut props = Map::new();
    props.insert(
        "description".into(),
        json!("SSH host: runs execute in ~/.azml/runs/<runId> on the host"),
    );
    props.insert("properties".into(), Value::Object(vm));
    props.insert(
        "hostCheck".into(),
        serde_json::to_value(info).unwrap_or(Value::Null),
    );
    props
}

/// Rebuild the target from a stored record.
pub fn from_record(record: &ComputeRecord) -> Result<SshTarget, SshError> {
    let vm = record
        .properties
        .get("properties")
        .and_then(Value::as_object);
    let field = |k: &str| vm.and_then(|m| m.get(k));
    let address = field("address")
        .and_then(Value::as_str)
        .ok_or_else(|| SshError::Invalid {
            what: format!("stored target '{}'", record.name),
            detail: "it has no address; attach it again".into(),
        })?;
    let target = SshTarget {
        name: record.name.clone(),
        address: address.into(),
        port: field("sshPort")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok()),
        username: field("administratorAccount")
            .and_then(|a| a.get("username"))
            .and_then(Value::as_str)
            .map(str::to_string),
        private_key_file: field("privateKeyFile")
            .and_then(Value::as_str)
            .map(PathBuf::from),
    };
    target.validate()?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_properties_round_trip_without_secrets() {
        let target = SshTarget {
            name: "gpu".into(),
            address: "10.0.0.5".into(),
            port: Some(2222),
            username: Some("alice".into()),
            private_key_file: Some("/home/alice/.ssh/id_ed25519".into()),
        };
        let info = HostInfo {
            system: "Linux x86_64".into(),
            python_path: "/usr/bin/python3".into(),
            python_version: "3.11.2".into(),
            home: "/home/alice".into(),
        };
        let record = ComputeRecord {
            name: "gpu".into(),
            compute_type: COMPUTE_TYPE.into(),
            properties: to_properties(&target, &info),
            created_ms: 0,
        };
        assert_eq!(from_record(&record).expect("valid"), target);
        let text = Value::Object(record.properties).to_string();
        assert!(
            !text.contains("password") && !text.contains("PRIVATE KEY"),
            "{text}"
        );
    }
}
