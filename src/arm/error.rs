//! What can go wrong talking to ARM, in terms the user can act on.

use crate::error::{ExitCoded, exit};

/// One failure of the ARM backend. `Service` is an answer from Azure; the rest
/// happen on this side (configuration, credentials, network).
#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    /// ARM answered with an error body: shown as az does, `(Code) message`.
    #[error("({code}) {message}{}", format_details(.details))]
    Service {
        status: u16,
        code: String,
        message: String,
        details: Vec<String>,
    },
    /// A long-running operation ended in Failed or Canceled.
    #[error("operation {status}: ({code}) {message}")]
    OperationFailed {
        status: String,
        code: String,
        message: String,
    },
    /// No credential could produce a token; lists each one tried and why.
    #[error("could not get an Azure access token; tried:\n{}", .tried.iter().map(|t| format!("  - {t}")).collect::<Vec<_>>().join("\n"))]
    NoCredential { tried: Vec<String> },
    #[error("{0}")]
    Config(String),
    /// The network failed and retries did not help.
    #[error("request to {url} failed after {attempts} attempt(s): {reason}")]
    Transport {
        url: String,
        attempts: u32,
        reason: String,
    },
    #[error("unexpected response from {url}: {reason}")]
    BadResponse { url: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    /// A compute with this name exists already (create never overwrites).
    #[error("a compute target named '{0}' already exists in this workspace")]
    AlreadyExists(String),
    #[error("gave up waiting for the operation after {0} s")]
    LroTimeout(u64),
}

fn format_details(details: &[String]) -> String {
    details.iter().map(|d| format!("\n  {d}")).collect()
}

impl ArmError {
    /// True for an ARM 404 (resource or parent not found).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ArmError::Service { status: 404, .. })
    }
}

impl ExitCoded for ArmError {
    fn exit_code(&self) -> i32 {
        if self.is_not_found() {
            exit::NOT_FOUND
        } else {
            exit::ERROR
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ArmError::Service { status: 404, .. } => Some(
                "check the workspace (-w/-g/--subscription-id) and the name; \
                 `azml computetarget list` shows what exists"
                    .into(),
            ),
            ArmError::Service {
                status: 401 | 403, ..
            } => Some(
                "log in with `az login` (or set AZML_ACCESS_TOKEN / a service principal) \
                 with an identity that has access to the workspace"
                    .into(),
            ),
            ArmError::NoCredential { .. } => Some(
                "run `az login`, or export AZML_ACCESS_TOKEN=$(az account get-access-token \
                 --query accessToken -o tsv), or set AZURE_TENANT_ID, AZURE_CLIENT_ID and \
                 AZURE_CLIENT_SECRET for a service principal"
                    .into(),
            ),
            ArmError::AlreadyExists(_) => Some(
                "pick another name, or change the existing one with `azml computetarget update amlcompute`"
                    .into(),
            ),
            ArmError::Transport { .. } => {
                Some("check the network; AZML_ARM_ENDPOINT overrides the ARM endpoint".into())
            }
            _ => None,
        }
    }
}
