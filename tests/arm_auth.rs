//! Credentials end to end: the azml binary gets its ARM token from fake Entra
//! and managed-identity endpoints on loopback through azure_identity's real
//! code (service principal, workload identity, managed identity), and the fake
//! ARM only accepts the token those fakes issued.

#[path = "support/fake_arm.rs"]
mod fake_arm;
#[path = "support/fake_az.rs"]
mod fake_az;
#[path = "support/fake_identity.rs"]
mod fake_identity;

use fake_az::{az_spawns, fake_az};

use assert_cmd::Command;
use fake_arm::{FakeArm, Options};
use fake_identity::{FakeIdentity, IdentityOptions, TokenRequest};
use serde_json::json;
use std::path::PathBuf;

/// Environment a test must not inherit: credentials, identity endpoints, clouds.
const SCRUBBED_ENV: &[&str] = &[
    "AZML_ACCESS_TOKEN",
    "AZML_AUTH",
    "AZML_ARM_API_VERSION",
    "AZURE_CLOUD",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_CONFIG_DIR",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "AZML_LOCAL_WORKSPACE",
];

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";

struct Env {
    identity: FakeIdentity,
    arm: FakeArm,
    home: tempfile::TempDir,
    /// A fake `az` first on PATH that counts its spawns and always fails.
    az_bin: PathBuf,
}

fn start(options: IdentityOptions) -> Env {
    let identity = FakeIdentity::start(options);
    let arm = FakeArm::start(Options {
        token: identity.options.token.clone(),
        ..Options::default()
    });
    arm.seed_compute("cpu", "AmlCompute", json!({}));
    let home = tempfile::tempdir().unwrap();
    let az_bin = fake_az(home.path(), None);
    Env {
        identity,
        arm,
        home,
        az_bin,
    }
}

impl Env {
    /// azml against the fakes: no token of its own, the Entra fake as authority
    /// (trusted through `SSL_CERT_FILE`), the counting `az` first on PATH.
    fn azml(&self) -> Command {
        let mut cmd = Command::cargo_bin("azml").unwrap();
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        let path = format!(
            "{}:{}",
            self.az_bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.current_dir(self.home.path())
            .env("HOME", self.home.path())
            .env("XDG_CACHE_HOME", self.home.path().join("cache"))
            .env("PATH", path)
            .env("AZML_ARM_ENDPOINT", &self.arm.base)
            .env("AZURE_AUTHORITY_HOST", &self.identity.authority)
            .env("SSL_CERT_FILE", &self.identity.ca_file)
            .env("AZML_RETRY_BASE_MS", "1")
            .env("AZML_LRO_POLL_MS", "1");
        cmd
    }

    fn service_principal(&self, secret: &str) -> Command {
        let mut cmd = self.azml();
        cmd.env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_ID", CLIENT)
            .env("AZURE_CLIENT_SECRET", secret);
        cmd
    }

    fn managed_identity(&self) -> Command {
        let mut cmd = self.azml();
        cmd.env("IDENTITY_ENDPOINT", &self.identity.msi_endpoint)
            .env("IDENTITY_HEADER", &self.identity.options.identity_header);
        cmd
    }

    /// Every ARM request carried exactly the identity fake's token (the fake
    /// answers 401 otherwise), and there was at least one.
    fn assert_arm_saw_only_the_issued_token(&self) {
        let state = self.arm.state();
        assert!(!state.log.is_empty(), "no ARM request");
        let expected = format!("Bearer {}", self.identity.options.token);
        for l in &state.log {
            assert_eq!(l.headers.get("authorization"), Some(&expected), "{l:?}");
        }
    }

    fn secrets(&self) -> [&str; 4] {
        let o = &self.identity.options;
        [&o.token, &o.client_secret, &o.assertion, &o.identity_header]
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(mut cmd: Command, args: &[&str]) -> Run {
    let out = cmd
        .args(args)
        .args([
            "-w",
            fake_arm::WS,
            "-g",
            fake_arm::RG,
            "--subscription-id",
            fake_arm::SUB,
        ])
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(r: Run) -> Run {
    assert_eq!(r.code, 0, "stderr: {}\nstdout: {}", r.stderr, r.stdout);
    r
}

fn assert_no_secret(env: &Env, r: &Run) {
    for secret in env.secrets() {
        assert!(
            !r.stdout.contains(secret) && !r.stderr.contains(secret),
            "secret {secret:?} leaked:\nstdout: {}\nstderr: {}",
            r.stdout,
            r.stderr
        );
    }
}

fn only_request(env: &Env) -> TokenRequest {
    let requests = env.identity.requests();
    assert_eq!(requests.len(), 1, "one token request: {requests:?}");
    requests[0].clone()
}

/// A create makes several ARM calls (GET, GET workspace, PUT, polls, GET): one token for all.
const CREATE: &[&str] = &[
    "computetarget",
    "create",
    "amlcompute",
    "-n",
    "gpu",
    "-s",
    "STANDARD_D2_V2",
    "--max-nodes",
    "2",
    "--debug",
];

#[test]
fn service_principal_token_from_entra_signs_every_arm_request_with_one_token_request() {
    let env = start(IdentityOptions::default());
    let secret = env.identity.options.client_secret.clone();
    let r = ok(run(env.service_principal(&secret), CREATE));
    assert!(env.arm.state().log.len() >= 5, "several ARM calls");
    env.assert_arm_saw_only_the_issued_token();
    let request = only_request(&env);
    assert!(request.issued && request.endpoint == "entra");
    assert_eq!(request.tenant, TENANT);
    assert_eq!(request.fields["client_id"], CLIENT);
    assert_eq!(
        request.fields["scope"],
        "https://management.azure.com/.default"
    );
    assert!(r.stderr.contains("using credential: service principal"));
    assert_no_secret(&env, &r);
    assert_eq!(az_spawns(env.home.path()), 0, "az never needed");
}

#[test]
fn workload_identity_sends_the_federated_token_file_as_assertion() {
    let env = start(IdentityOptions::default());
    let token_file = env.home.path().join("federated-token");
    std::fs::write(&token_file, &env.identity.options.assertion).unwrap();
    let mut cmd = env.azml();
    cmd.env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT)
        .env("AZURE_FEDERATED_TOKEN_FILE", &token_file);
    let r = ok(run(cmd, CREATE));
    env.assert_arm_saw_only_the_issued_token();
    let request = only_request(&env);
    assert!(request.issued);
    assert_eq!(request.tenant, TENANT);
    assert_eq!(
        request.fields["client_assertion"],
        env.identity.options.assertion
    );
    assert!(!request.fields.contains_key("client_secret"));
    assert_eq!(
        request.fields["scope"],
        "https://management.azure.com/.default"
    );
    assert!(r.stderr.contains("using credential: workload identity"));
    assert_no_secret(&env, &r);
    assert_eq!(az_spawns(env.home.path()), 0);
}

#[test]
fn managed_identity_is_used_only_when_asked() {
    let env = start(IdentityOptions::default());
    // Not asked: the identity endpoint is never probed, the error says how to ask.
    let r = run(
        env.managed_identity(),
        &["computetarget", "show", "-n", "cpu"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("not tried unless asked (--auth msi"));
    assert!(env.identity.requests().is_empty());
    assert!(env.arm.state().log.is_empty());

    let mut cmd = env.managed_identity();
    cmd.args(["--auth", "msi"]);
    let r = ok(run(cmd, CREATE));
    env.assert_arm_saw_only_the_issued_token();
    let request = only_request(&env);
    assert!(request.issued && request.endpoint == "msi");
    assert_eq!(request.fields["resource"], "https://management.azure.com");
    assert!(!request.fields.contains_key("client_id"), "system-assigned");
    assert!(r.stderr.contains("using credential: managed identity"));
    assert_no_secret(&env, &r);

    // AZML_AUTH=msi asks too; AZURE_CLIENT_ID picks a user-assigned identity.
    let mut cmd = env.managed_identity();
    cmd.env("AZML_AUTH", "msi").env("AZURE_CLIENT_ID", CLIENT);
    ok(run(cmd, &["computetarget", "show", "-n", "cpu"]));
    let requests = env.identity.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].fields["client_id"], CLIENT);
    assert_eq!(
        az_spawns(env.home.path()),
        1,
        "only the unasked run fell through to az"
    );
}

#[test]
fn sovereign_clouds_ask_for_their_own_arm_scope() {
    let cases = [
        ("AzureChinaCloud", "https://management.chinacloudapi.cn"),
        ("AzureUSGovernment", "https://management.usgovcloudapi.net"),
    ];
    for (cloud, audience) in cases {
        let env = start(IdentityOptions::default());
        let secret = env.identity.options.client_secret.clone();
        // --cloud for the service principal…
        let mut cmd = env.service_principal(&secret);
        cmd.args(["--cloud", cloud]);
        ok(run(cmd, &["computetarget", "show", "-n", "cpu"]));
        // …AZURE_CLOUD for the managed identity.
        let mut cmd = env.managed_identity();
        cmd.env("AZURE_CLOUD", cloud).env("AZML_AUTH", "msi");
        ok(run(cmd, &["computetarget", "show", "-n", "cpu"]));
        env.assert_arm_saw_only_the_issued_token();
        let requests = env.identity.requests();
        assert_eq!(requests.len(), 2, "{requests:?}");
        assert_eq!(requests[0].fields["scope"], format!("{audience}/.default"));
        assert_eq!(requests[1].fields["resource"], audience);
    }
}

#[test]
fn rejected_service_principal_falls_through_to_the_az_cli() {
    let env = start(IdentityOptions::default());
    let bin = fake_az(env.home.path(), Some(&env.identity.options.token));
    let mut cmd = env.service_principal("wrong-SECRET-999");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    cmd.env("PATH", path);
    let r = ok(run(cmd, &["computetarget", "show", "-n", "cpu", "--debug"]));
    let request = only_request(&env);
    assert!(!request.issued, "Entra refused the wrong secret");
    assert_eq!(az_spawns(env.home.path()), 1, "then az was asked");
    assert!(r.stderr.contains("using credential: Azure CLI"));
    assert!(!r.stderr.contains("wrong-SECRET-999"));
    env.assert_arm_saw_only_the_issued_token();
}

#[test]
fn when_every_credential_fails_the_error_lists_each_reason_in_order_without_secrets() {
    let env = start(IdentityOptions::default());
    let r = run(
        env.service_principal("wrong-SECRET-999"),
        &["computetarget", "show", "-n", "cpu", "--debug"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let tried = [
        "AZML_ACCESS_TOKEN: not set",
        "service principal (AZURE_CLIENT_SECRET): ClientSecretCredential authentication failed. AADSTS7000215",
        "workload identity (AZURE_FEDERATED_TOKEN_FILE): AZURE_FEDERATED_TOKEN_FILE is not set",
        "Azure CLI (az account get-access-token): az failed: ERROR: Please run 'az login'",
        "managed identity: not tried unless asked",
    ];
    let mut last = 0;
    for line in tried {
        let at = r
            .stderr
            .find(line)
            .unwrap_or_else(|| panic!("missing {line:?} in:\n{}", r.stderr));
        assert!(at >= last, "out of order: {line:?} in:\n{}", r.stderr);
        last = at;
    }
    assert!(!r.stderr.contains("wrong-SECRET-999"));
    assert_eq!(az_spawns(env.home.path()), 1);
    assert!(
        env.arm.state().log.is_empty(),
        "no ARM call without a token"
    );

    // A forced credential is the only one tried.
    let mut cmd = env.service_principal("wrong-SECRET-999");
    cmd.args(["--auth", "sp"]);
    let r = run(cmd, &["computetarget", "show", "-n", "cpu"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("AADSTS7000215"));
    assert!(!r.stderr.contains("Azure CLI"), "{}", r.stderr);
    assert_eq!(az_spawns(env.home.path()), 1, "az not spawned again");
}

#[test]
fn a_plain_http_authority_host_is_refused() {
    let env = start(IdentityOptions::default());
    let secret = env.identity.options.client_secret.clone();
    let mut cmd = env.service_principal(&secret);
    cmd.env("AZURE_AUTHORITY_HOST", "http://127.0.0.1:9")
        .args(["--auth", "sp"]);
    let r = run(cmd, &["computetarget", "show", "-n", "cpu"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("must use https"), "{}", r.stderr);
    assert!(env.identity.requests().is_empty());
    assert!(!r.stderr.contains(&secret));
}

#[test]
fn the_az_cli_is_asked_for_the_sovereign_clouds_arm_resource() {
    use std::os::unix::fs::PermissionsExt;
    let env = start(IdentityOptions::default());
    let bin = env.home.path().join("bin-args");
    std::fs::create_dir_all(&bin).unwrap();
    let args_file = env.home.path().join("az-args");
    let script = format!(
        "#!/bin/sh\necho \"$@\" > '{}'\nprintf '{{\"accessToken\": \"{}\", \"expires_on\": %s}}' $(( $(date +%s) + 3600 ))\n",
        args_file.display(),
        env.identity.options.token
    );
    std::fs::write(bin.join("az"), script).unwrap();
    std::fs::set_permissions(bin.join("az"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = env.azml();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    cmd.env("PATH", path)
        .args(["--cloud", "AzureChinaCloud", "--auth", "cli"]);
    ok(run(cmd, &["computetarget", "show", "-n", "cpu"]));
    let args = std::fs::read_to_string(&args_file).unwrap();
    assert!(
        args.contains(
            "account get-access-token --resource https://management.core.chinacloudapi.cn/"
        ),
        "{args}"
    );
    env.assert_arm_saw_only_the_issued_token();
    let cache = env
        .home
        .path()
        .join("cache/azml/az-cli-token-AzureChinaCloud.json");
    assert!(cache.exists(), "cached per cloud");
}

/// A loopback listener that answers every request with `response` and counts
/// the connections it got.
fn canned_http(response: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 8192];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(response.as_bytes());
        }
    });
    (base, hits)
}

#[test]
fn a_redirecting_identity_endpoint_never_gets_the_identity_header_forwarded() {
    let env = start(IdentityOptions::default());
    let (elsewhere, elsewhere_hits) =
        canned_http("HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into());
    let (redirector, _) = canned_http(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {elsewhere}/msi\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ));
    let mut cmd = env.azml();
    cmd.env("IDENTITY_ENDPOINT", format!("{redirector}/msi"))
        .env("IDENTITY_HEADER", &env.identity.options.identity_header)
        .args(["--auth", "msi"]);
    let r = run(cmd, &["computetarget", "show", "-n", "cpu"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        elsewhere_hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the redirect was followed with the identity header"
    );
    assert!(env.arm.state().log.is_empty());
    assert_no_secret(&env, &r);
}
