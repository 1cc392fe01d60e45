//! SSH hosts as compute targets of the local workspace.
//!
//! Everything goes through the system `ssh` so the user's `~/.ssh/config`
//! (aliases, ProxyJump, IdentityFile), agent and known_hosts just work; the
//! host needs only `sshd`, a POSIX shell, `tar` and Python.
//!
//! - `command`: the `ssh` argv (batch mode, connection sharing, host keys).
//! - `quote`: POSIX quoting of everything put into a remote command line.
//! - `sync`: content-addressed snapshot sync into `~/.azml/runs/<runId>/`.
//! - `remote`: start, stream, cancel and collect a run on the host.
//! - `launcher`: the runner's `Launcher` for SSH targets (uses all of the above).
//! - `attach`: `computetarget attach remote|detach` on the local workspace.

pub mod attach;
pub mod command;
pub mod launcher;
pub mod mux;
pub mod remote;
pub mod sync;

pub use command::{Ssh, SshContext};
pub use remote::{RemoteOutcome, RemoteRunSpec, StreamKind};
pub use sync::{SyncEntry, SyncReport};

use crate::error::{ExitCoded, exit};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A registered SSH host: what `computetarget attach remote` stores.
/// Never holds key contents or passphrases, only where the key file is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SshTarget {
    pub name: String,
    /// Host name, IP address or an alias from `~/.ssh/config`.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_file: Option<PathBuf>,
}

impl SshTarget {
    /// Refuse values that `ssh` would read as options or that no host can have.
    pub fn validate(&self) -> Result<(), SshError> {
        check_word("address", &self.address)?;
        if let Some(user) = &self.username {
            check_word("username", user)?;
        }
        if self.port == Some(0) {
            return Err(SshError::Invalid {
                what: "ssh port".into(),
                detail: "0 is not a port".into(),
            });
        }
        Ok(())
    }

    /// `user@host:port` as a person would write it, for messages.
    pub fn display(&self) -> String {
        let mut s = String::new();
        if let Some(user) = &self.username {
            s.push_str(user);
            s.push('@');
        }
        s.push_str(&self.address);
        if let Some(port) = self.port {
            s.push_str(&format!(":{port}"));
        }
        s
    }
}

fn check_word(what: &str, value: &str) -> Result<(), SshError> {
    let bad = value.is_empty()
        || value.starts_with('-')
        || value.chars().any(|c| c.is_whitespace() || c.is_control());
    if bad {
        return Err(SshError::Invalid {
            what: what.into(),
            detail: format!("'{value}' is empty, starts with '-' or contains whitespace"),
        });
    }
    Ok(())
}

/// What `attach` learned about a host: proof the connection and Python work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostInfo {
    /// `uname -sm` of the host, e.g. `Linux x86_64`.
    pub system: String,
    /// The interpreter as the host resolves it, e.g. `/usr/bin/python3`.
    pub python_path: String,
    /// `sys.version` up to the first space, e.g. `3.11.2`.
    pub python_version: String,
    /// The remote home folder that holds `~/.azml`.
    pub home: String,
}

/// Why talking to an SSH host failed, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("could not run `ssh`: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("cannot connect to {host}: {detail}")]
    Connect { host: String, detail: String },
    #[error("{what} failed on {host}: {detail}")]
    Remote {
        host: String,
        what: String,
        detail: String,
    },
    #[error("{host} has no usable Python ({interpreter}): {detail}")]
    NoPython {
        host: String,
        interpreter: String,
        detail: String,
    },
    #[error("connection to {host} lost: {detail}")]
    ConnectionLost { host: String, detail: String },
    #[error("invalid {what}: {detail}")]
    Invalid { what: String, detail: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl SshError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        SshError::Io {
            what: what.into(),
            source,
        }
    }
}

impl ExitCoded for SshError {
    fn exit_code(&self) -> i32 {
        exit::ERROR
    }
    fn hint(&self) -> Option<String> {
        match self {
            SshError::Spawn(_) => Some("install the OpenSSH client (`ssh`) and put it on PATH".into()),
            SshError::Connect { .. } => Some(
                "azml runs `ssh` with BatchMode=yes: check that `ssh -o BatchMode=yes HOST true` works \
                 (key in ssh-agent or --private-key-file, host reachable, user allowed)"
                    .into(),
            ),
            SshError::NoPython { .. } => Some(
                "install Python 3 on the host, or set environment.python.interpreterPath in the runconfig"
                    .into(),
            ),
            SshError::ConnectionLost { .. } => {
                Some("the run's files stay on the host under ~/.azml/runs/<runId>/".into())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(address: &str, user: Option<&str>) -> SshTarget {
        SshTarget {
            name: "t".into(),
            address: address.into(),
            port: None,
            username: user.map(str::to_string),
            private_key_file: None,
        }
    }

    #[test]
    fn addresses_that_ssh_would_read_as_options_are_refused() {
        assert!(target("-oProxyCommand=evil", None).validate().is_err());
        assert!(target("host name", None).validate().is_err());
        assert!(target("", None).validate().is_err());
        assert!(target("h", Some("-x")).validate().is_err());
        assert!(target("gpu-box", Some("alice")).validate().is_ok());
    }

    #[test]
    fn stored_target_json_has_no_empty_fields() {
        let json = serde_json::to_value(target("h", None)).expect("serializes");
        assert_eq!(json, serde_json::json!({"name": "t", "address": "h"}));
    }
}
