//! Which credential signs ARM requests, and caching its tokens.
//!
//! Order (first that works wins): `AZML_ACCESS_TOKEN` → service principal
//! (`AZURE_TENANT_ID` + `AZURE_CLIENT_ID` + `AZURE_CLIENT_SECRET`) → workload
//! identity (`AZURE_FEDERATED_TOKEN_FILE`) → the Azure CLI login. Managed
//! identity only when asked (`--auth msi`), since probing IMDS off Azure hangs.
//! `AZML_AUTH`/`--auth` forces exactly one. The azure_identity types do the
//! token protocols; the order, the az CLI call and the caches are ours.
//!
//! The Entra authority is the cloud's (`login.microsoftonline.com`, `.us`,
//! `.chinacloudapi.cn`) unless `AZURE_AUTHORITY_HOST` names another, as every
//! Azure SDK honours it (AKS workload identity sets it); it must be https.
//! The token protocols go through the ARM client's own HTTP client, so a
//! process sets up TLS once.

use super::cloud::Cloud;
use super::error::ArmError;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, Transport};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A token is reused until this many seconds before it expires.
const EXPIRY_MARGIN_SECS: i64 = 300;
const DEFAULT_AZ_TIMEOUT_SECS: u64 = 30;
/// Overrides the cloud's Entra authority, as in every Azure SDK.
const AUTHORITY_HOST_ENV: &str = "AZURE_AUTHORITY_HOST";

/// The credential kinds, as `AZML_AUTH`/`--auth` name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    Token,
    ServicePrincipal,
    Workload,
    ManagedIdentity,
    AzCli,
}

impl AuthKind {
    pub fn parse(name: &str) -> Result<AuthKind, ArmError> {
        match name.to_ascii_lowercase().as_str() {
            "token" => Ok(AuthKind::Token),
            "sp" => Ok(AuthKind::ServicePrincipal),
            "workload" => Ok(AuthKind::Workload),
            "msi" => Ok(AuthKind::ManagedIdentity),
            "cli" => Ok(AuthKind::AzCli),
            _ => Err(ArmError::Config(format!(
                "unknown auth method '{name}': use token, sp, workload, msi or cli"
            ))),
        }
    }

    fn label(self) -> &'static str {
        match self {
            AuthKind::Token => "AZML_ACCESS_TOKEN",
            AuthKind::ServicePrincipal => "service principal (AZURE_CLIENT_SECRET)",
            AuthKind::Workload => "workload identity (AZURE_FEDERATED_TOKEN_FILE)",
            AuthKind::ManagedIdentity => "managed identity",
            AuthKind::AzCli => "Azure CLI (az account get-access-token)",
        }
    }
}

/// A bearer token and when it stops being valid (unix seconds; None = unknown).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct AccessToken {
    #[serde(rename = "accessToken")]
    pub secret: String,
    #[serde(rename = "expiresOn")]
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"***")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl AccessToken {
    fn is_fresh(&self) -> bool {
        match self.expires_at {
            None => true,
            Some(exp) => chrono::Utc::now().timestamp() < exp - EXPIRY_MARGIN_SECS,
        }
    }
}

/// Hands out tokens for one cloud, remembering the last good one.
#[derive(Debug)]
pub struct Credentials {
    cloud: Cloud,
    forced: Option<AuthKind>,
    cached: tokio::sync::Mutex<Option<AccessToken>>,
    /// The ARM client's HTTP client, lent to azure_identity so a process
    /// builds one TLS configuration and one connection pool, not two.
    transport: Option<reqwest::Client>,
}

/// Why one credential gave no token: not set up here, or set up but failing.
type Attempt = Result<AccessToken, String>;

impl Credentials {
    /// `flag` is `--auth`; `AZML_AUTH` is the fallback.
    pub fn new(cloud: Cloud, flag: Option<&str>) -> Result<Credentials, ArmError> {
        let env = std::env::var("AZML_AUTH").ok();
        let forced = flag
            .or(env.as_deref())
            .filter(|s| !s.is_empty())
            .map(AuthKind::parse)
            .transpose()?;
        Ok(Credentials {
            cloud,
            forced,
            cached: tokio::sync::Mutex::new(None),
            transport: None,
        })
    }

    /// Always this token (what `AZML_ACCESS_TOKEN` does, for callers that hold one).
    pub fn from_token(cloud: Cloud, token: impl Into<String>) -> Credentials {
        Credentials {
            cloud,
            forced: Some(AuthKind::Token),
            cached: tokio::sync::Mutex::new(Some(AccessToken {
                secret: token.into(),
                expires_at: None,
            })),
            transport: None,
        }
    }

    /// Send token requests through `http` (the ARM client's) instead of a
    /// client azure_identity would build, with its own TLS root store.
    pub fn use_transport(&mut self, http: reqwest::Client) {
        self.transport = Some(http);
    }

    fn order(&self) -> Vec<AuthKind> {
        match self.forced {
            Some(kind) => vec![kind],
            None => vec![
                AuthKind::Token,
                AuthKind::ServicePrincipal,
                AuthKind::Workload,
                AuthKind::AzCli,
            ],
        }
    }

    /// A fresh token, from memory when possible. Holding the lock while
    /// acquiring means concurrent requests never spawn `az` twice.
    pub async fn token(&self) -> Result<AccessToken, ArmError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.is_fresh()) {
            return Ok(token.clone());
        }
        let mut tried = Vec::new();
        for kind in self.order() {
            match self.try_kind(kind).await {
                Ok(token) => {
                    tracing::debug!("using credential: {}", kind.label());
                    *cached = Some(token.clone());
                    return Ok(token);
                }
                Err(reason) => tried.push(format!("{}: {reason}", kind.label())),
            }
        }
        if self.forced.is_none() {
            tried.push(
                "managed identity: not tried unless asked (--auth msi or AZML_AUTH=msi)".into(),
            );
        }
        Err(ArmError::NoCredential { tried })
    }

    /// Forget the in-memory token (after a 401, so the next call fetches anew).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn try_kind(&self, kind: AuthKind) -> Attempt {
        match kind {
            AuthKind::Token => from_env_token(),
            AuthKind::ServicePrincipal => self.service_principal().await,
            AuthKind::Workload => self.workload_identity().await,
            AuthKind::ManagedIdentity => self.managed_identity().await,
            AuthKind::AzCli => az_cli_token(&self.cloud).await,
        }
    }

    fn client_options(&self) -> Result<ClientOptions, String> {
        Ok(ClientOptions {
            cloud: Some(Arc::new(identity_cloud(
                &self.cloud,
                env_nonempty(AUTHORITY_HOST_ENV),
            )?)),
            transport: self
                .transport
                .clone()
                .map(|http| Transport::new(Arc::new(http))),
            ..Default::default()
        })
    }

    async fn service_principal(&self) -> Attempt {
        let (Some(tenant), Some(client), Some(secret)) = (
            env_nonempty("AZURE_TENANT_ID"),
            env_nonempty("AZURE_CLIENT_ID"),
            env_nonempty("AZURE_CLIENT_SECRET"),
        ) else {
            return Err(
                "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET are not all set".into(),
            );
        };
        let options = azure_identity::ClientSecretCredentialOptions {
            client_options: self.client_options()?,
        };
        let credential = azure_identity::ClientSecretCredential::new(
            &tenant,
            client,
            secret.into(),
            Some(options),
        )
        .map_err(|e| e.to_string())?;
        sdk_token(credential.as_ref(), &self.cloud).await
    }

    async fn workload_identity(&self) -> Attempt {
        if env_nonempty("AZURE_FEDERATED_TOKEN_FILE").is_none() {
            return Err("AZURE_FEDERATED_TOKEN_FILE is not set".into());
        }
        let options = azure_identity::WorkloadIdentityCredentialOptions {
            credential_options: azure_identity::ClientAssertionCredentialOptions {
                client_options: self.client_options()?,
            },
            ..Default::default()
        };
        let credential = azure_identity::WorkloadIdentityCredential::new(Some(options))
            .map_err(|e| e.to_string())?;
        sdk_token(credential.as_ref(), &self.cloud).await
    }

    async fn managed_identity(&self) -> Attempt {
        let options = azure_identity::ManagedIdentityCredentialOptions {
            user_assigned_id: env_nonempty("AZURE_CLIENT_ID")
                .map(azure_identity::UserAssignedId::ClientId),
            client_options: self.client_options()?,
        };
        let credential = azure_identity::ManagedIdentityCredential::new(Some(options))
            .map_err(|e| e.to_string())?;
        sdk_token(credential.as_ref(), &self.cloud).await
    }
}

/// The cloud as azure_identity sees it: its own, or a custom one whose
/// authority is `AZURE_AUTHORITY_HOST` (https only: a client secret or
/// assertion must never travel in clear).
fn identity_cloud(
    cloud: &Cloud,
    authority_host: Option<String>,
) -> Result<CloudConfiguration, String> {
    let Some(host) = authority_host else {
        return Ok(cloud.sdk.clone());
    };
    let host = host.trim().trim_end_matches('/').to_string();
    match reqwest::Url::parse(&host) {
        Ok(url) if url.scheme() == "https" => {}
        Ok(_) => return Err(format!("{AUTHORITY_HOST_ENV} '{host}' must use https")),
        Err(e) => return Err(format!("{AUTHORITY_HOST_ENV} '{host}' is not a URL: {e}")),
    }
    let mut custom = CustomConfiguration::default();
    custom.authority_host = host;
    Ok(CloudConfiguration::Custom(custom))
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn from_env_token() -> Attempt {
    match env_nonempty("AZML_ACCESS_TOKEN") {
        Some(token) => Ok(AccessToken {
            secret: token.trim().to_string(),
            expires_at: None,
        }),
        None => Err("not set".into()),
    }
}

async fn sdk_token(credential: &dyn TokenCredential, cloud: &Cloud) -> Attempt {
    let scope = cloud.scope();
    let token = credential
        .get_token(&[scope.as_str()], None)
        .await
        .map_err(|e| first_line(&e.to_string()))?;
    Ok(AccessToken {
        secret: token.token.secret().to_string(),
        expires_at: Some(token.expires_on.unix_timestamp()),
    })
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("failed")
        .to_string()
}

// ---- Azure CLI ----------------------------------------------------------

/// What the disk cache stores: the token, plus a stamp of the az profile so a
/// new `az login`/`az account set` invalidates it.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedCliToken {
    #[serde(flatten)]
    token: AccessToken,
    profile_stamp: String,
}

/// The az CLI's token, from the disk cache when still fresh (spawning `az` costs seconds).
async fn az_cli_token(cloud: &Cloud) -> Attempt {
    let stamp = profile_stamp();
    let cache_file = cli_cache_file(cloud);
    if let Some(token) = cache_file
        .as_deref()
        .and_then(|f| read_cli_cache(f, &stamp))
    {
        tracing::debug!("az CLI token from the disk cache");
        return Ok(token);
    }
    let token = spawn_az(cloud).await?;
    if let Some(file) = cache_file
        && let Err(e) = write_cli_cache(&file, &token, &stamp)
    {
        tracing::debug!("could not write the token cache {}: {e}", file.display());
    }
    Ok(token)
}

fn az_config_dir() -> Option<PathBuf> {
    env_nonempty("AZURE_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".azure")))
}

/// The az login state, summarised: changes whenever az rewrites its profile.
fn profile_stamp() -> String {
    let Some(dir) = az_config_dir() else {
        return String::new();
    };
    let modified = |name: &str| {
        std::fs::metadata(dir.join(name))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos().to_string())
            .unwrap_or_default()
    };
    format!(
        "{}|{}|{}",
        dir.display(),
        modified("azureProfile.json"),
        modified("msal_token_cache.json")
    )
}

fn cli_cache_file(cloud: &Cloud) -> Option<PathBuf> {
    let base = env_nonempty("AZML_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("azml")))?;
    Some(base.join(format!("az-cli-token-{}.json", cloud.name)))
}

fn read_cli_cache(file: &Path, stamp: &str) -> Option<AccessToken> {
    let text = std::fs::read_to_string(file).ok()?;
    let cached: CachedCliToken = serde_json::from_str(&text).ok()?;
    (cached.profile_stamp == stamp && cached.token.is_fresh()).then_some(cached.token)
}

/// Write atomically with 0600 permissions: the file holds a bearer token.
fn write_cli_cache(file: &Path, token: &AccessToken, stamp: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    let entry = CachedCliToken {
        token: token.clone(),
        profile_stamp: stamp.to_string(),
    };
    let body = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&body)?;
    drop(f);
    std::fs::rename(&tmp, file)
}

/// `az account get-access-token`, killed after `AZML_AZ_TIMEOUT_SECS` (default 30).
async fn spawn_az(cloud: &Cloud) -> Attempt {
    let timeout = env_nonempty("AZML_AZ_TIMEOUT_SECS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_AZ_TIMEOUT_SECS);
    let child = tokio::process::Command::new("az")
        .args([
            "account",
            "get-access-token",
            "--resource",
            cloud.cli_resource,
        ])
        .args(["-o", "json"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "az is not installed (not on PATH)".to_string(),
            _ => format!("could not run az: {e}"),
        })?;
    let output = tokio::time::timeout(Duration::from_secs(timeout), child.wait_with_output())
        .await
        .map_err(|_| format!("az did not answer within {timeout} s (AZML_AZ_TIMEOUT_SECS)"))?
        .map_err(|e| format!("could not run az: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("az failed: {}", first_line(&stderr)));
    }
    parse_az_token(&output.stdout)
}

/// az prints `accessToken` plus `expires_on` (unix, az ≥ 2.54) or the older
/// local-time `expiresOn` string.
fn parse_az_token(stdout: &[u8]) -> Attempt {
    let v: serde_json::Value = serde_json::from_slice(stdout)
        .map_err(|e| format!("az printed something that is not JSON: {e}"))?;
    let secret = v
        .get("accessToken")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or("az output has no accessToken")?
        .to_string();
    let expires_at = v
        .get("expires_on")
        .and_then(|e| e.as_i64().or_else(|| e.as_str()?.parse().ok()))
        .or_else(|| parse_local_time(v.get("expiresOn")?.as_str()?));
    Ok(AccessToken { secret, expires_at })
}

fn parse_local_time(s: &str) -> Option<i64> {
    use chrono::TimeZone;
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    chrono::Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn az_output_new_and_old_expiry_forms_parse() {
        let new = br#"{"accessToken":"t","expires_on":1700000000,"expiresOn":"2023-11-14 22:13:20.000000"}"#;
        assert_eq!(parse_az_token(new).unwrap().expires_at, Some(1700000000));
        let old = br#"{"accessToken":"t","expiresOn":"2030-01-01 00:00:00.000000"}"#;
        assert!(parse_az_token(old).unwrap().expires_at.is_some());
        assert!(parse_az_token(b"{}").is_err());
        assert!(parse_az_token(b"not json").is_err());
    }

    #[test]
    fn token_is_stale_five_minutes_before_expiry() {
        let now = chrono::Utc::now().timestamp();
        let t = |exp| AccessToken {
            secret: "x".into(),
            expires_at: Some(exp),
        };
        assert!(t(now + 3600).is_fresh());
        assert!(!t(now + 200).is_fresh());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = AccessToken {
            secret: "eyJsecret".into(),
            expires_at: None,
        };
        assert!(!format!("{t:?}").contains("eyJsecret"));
    }

    #[test]
    fn authority_host_override_must_be_https() {
        let public = Cloud::public();
        assert_eq!(identity_cloud(&public, None).unwrap(), public.sdk);
        let custom = identity_cloud(&public, Some("https://login.example.net/".into())).unwrap();
        let CloudConfiguration::Custom(custom) = custom else {
            panic!("expected a custom cloud");
        };
        assert_eq!(custom.authority_host, "https://login.example.net");
        let clear = identity_cloud(&public, Some("http://login.example.net".into()));
        assert!(clear.unwrap_err().contains("must use https"));
        assert!(identity_cloud(&public, Some("not a url".into())).is_err());
    }

    #[test]
    fn unknown_auth_kind_is_a_config_error() {
        assert!(AuthKind::parse("kerberos").is_err());
        assert_eq!(AuthKind::parse("MSI").unwrap(), AuthKind::ManagedIdentity);
    }
}
