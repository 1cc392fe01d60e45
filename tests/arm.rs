//! The Azure backend against a fake ARM on loopback: every request body is
//! checked against the 2025-12-01 schema, faults are injected, and the
//! computetarget flows must end in the right state.

#[path = "support/fake_arm.rs"]
mod fake_arm;
#[path = "support/fake_az.rs"]
mod fake_az;

use fake_az::{az_spawns, fake_az};

use azml::arm::auth::Credentials;
use azml::arm::cloud::Cloud;
use azml::arm::{ArmClient, AzureWorkspace, PowerAction, Timing};
use azml::config::AzureWorkspaceRef;
use azml::model::compute::{AmlComputeSpec, ScaleUpdate, VmPriority};
use fake_arm::{FakeArm, Options};
use std::time::Duration;

fn fast_timing() -> Timing {
    Timing {
        retry_base: Duration::from_millis(1),
        max_attempts: 10,
        retry_budget: Duration::from_secs(30),
        poll_interval: Duration::from_millis(1),
        lro_timeout: Duration::from_secs(30),
    }
}

fn workspace(fake: &FakeArm) -> AzureWorkspace {
    let client = ArmClient::with_parts(
        fake.base.parse().unwrap(),
        fake_arm::API_VERSION.into(),
        Credentials::from_token(Cloud::public(), fake_arm::TOKEN),
        fast_timing(),
    )
    .unwrap();
    AzureWorkspace::with_client(
        AzureWorkspaceRef {
            subscription_id: fake_arm::SUB.into(),
            resource_group: fake_arm::RG.into(),
            workspace_name: fake_arm::WS.into(),
        },
        client,
    )
}

fn aml_spec(name: &str) -> AmlComputeSpec {
    AmlComputeSpec {
        name: name.into(),
        vm_size: "STANDARD_D2_V2".into(),
        vm_priority: VmPriority::Dedicated,
        min_nodes: 0,
        max_nodes: 4,
        idle_seconds_before_scaledown: 1800,
        admin: None,
        remote_login_port_public_access: None,
        enable_node_public_ip: None,
        subnet: None,
        identity: None,
        location: None,
        description: None,
        tags: vec![],
    }
}

#[tokio::test]
async fn library_create_update_list_delete_round_trip() {
    let fake = FakeArm::start(Options::default());
    let ws = workspace(&fake);
    let created = ws.create_amlcompute(&aml_spec("cpu"), false).await.unwrap();
    assert_eq!(created["properties"]["provisioningState"], "Succeeded");
    let updated = ws
        .update_amlcompute(
            "cpu",
            &ScaleUpdate {
                max_nodes: Some(8),
                ..Default::default()
            },
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        updated["properties"]["properties"]["scaleSettings"]["maxNodeCount"],
        8
    );
    for i in 0..4 {
        ws.create_amlcompute(&aml_spec(&format!("c{i}")), true)
            .await
            .unwrap();
    }
    assert_eq!(ws.list_compute_resources().await.unwrap().len(), 5);
    ws.delete_compute("cpu", false).await.unwrap();
    let state = fake.state();
    assert_eq!(
        state.removals,
        vec![("cpu".to_string(), "Delete".to_string())]
    );
    assert!(state.violations.is_empty(), "{:?}", state.violations);
}

#[tokio::test]
async fn library_power_actions_wait_for_the_location_poll() {
    let fake = FakeArm::start(Options::default());
    fake.seed_compute(
        "ci",
        "ComputeInstance",
        serde_json::json!({"properties": {"properties": {"state": "Running"}}}),
    );
    let ws = workspace(&fake);
    let after = ws
        .power("ci", PowerAction::Stop, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after["properties"]["properties"]["state"], "Stopped");
}

// ---- through the real binary ------------------------------------------------

use assert_cmd::Command;
use serde_json::{Value, json};
use std::path::Path;

/// Environment a test must not inherit: credentials, clouds, config locations.
const SCRUBBED_ENV: &[&str] = &[
    "AZML_ACCESS_TOKEN",
    "AZML_AUTH",
    "AZML_ARM_API_VERSION",
    "AZURE_CLOUD",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_CONFIG_DIR",
    "AZML_SSH_PASSWORD",
    "AZML_LOCAL_WORKSPACE",
];

/// `azml` pointed at the fake with fast retries, in an empty folder with its own HOME.
fn azml_cmd(fake: &FakeArm, home: &Path) -> Command {
    let mut cmd = Command::cargo_bin("azml").unwrap();
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd.current_dir(home)
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("AZML_ARM_ENDPOINT", &fake.base)
        .env("AZML_ACCESS_TOKEN", fake_arm::TOKEN)
        .env("AZML_RETRY_BASE_MS", "1")
        .env("AZML_LRO_POLL_MS", "1");
    cmd
}

fn ws_flags() -> [&'static str; 6] {
    [
        "-w",
        fake_arm::WS,
        "-g",
        fake_arm::RG,
        "--subscription-id",
        fake_arm::SUB,
    ]
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

fn run(fake: &FakeArm, home: &Path, args: &[&str]) -> Run {
    run_with(azml_cmd(fake, home), args)
}

fn run_with(mut cmd: Command, args: &[&str]) -> Run {
    let out = cmd.args(args).args(ws_flags()).output().unwrap();
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

fn assert_schema_clean(fake: &FakeArm) {
    let state = fake.state();
    assert!(
        state.violations.is_empty(),
        "schema/api-version violations: {:?}",
        state.violations
    );
}

#[test]
fn create_amlcompute_gets_first_takes_the_workspace_location_and_waits() {
    let fake = FakeArm::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let r = ok(run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "create",
            "amlcompute",
            "-n",
            "cpu",
            "-s",
            "STANDARD_D2_V2",
            "--max-nodes",
            "4",
            "-p",
            "lowpriority",
            "--idle-seconds-before-scaledown",
            "600",
            "--tag",
            "team=ml",
            "--assign-identity",
            "[system]",
            "--remote-login-port-public-access",
            "Disabled",
        ],
    ));
    let v = r.json();
    assert_eq!(v["properties"]["provisioningState"], "Succeeded");
    let state = fake.state();
    assert_eq!(state.creations.get("cpu"), Some(&1));
    let calls: Vec<String> = state
        .log
        .iter()
        .map(|l| format!("{} {}", l.method, l.path))
        .collect();
    let compute_path = format!("{}/computes/cpu", FakeArm::workspace_path());
    // Both GETs (must be absent; the workspace's location) before the PUT, in either order.
    let put_at = calls.iter().position(|c| c.starts_with("PUT")).unwrap();
    let mut before = calls[..put_at].to_vec();
    before.sort();
    let mut expected = vec![
        format!("GET {compute_path}"),
        format!("GET {}", FakeArm::workspace_path()),
    ];
    expected.sort();
    assert_eq!(before, expected, "GETs before PUT: {calls:?}");
    let put = state.log.iter().find(|l| l.method == "PUT").unwrap();
    let body: Value = serde_json::from_str(&put.body).unwrap();
    assert_eq!(body["location"], "westeurope");
    assert_eq!(
        body["properties"]["properties"]["vmPriority"],
        "LowPriority"
    );
    assert_eq!(
        body["properties"]["properties"]["scaleSettings"]["nodeIdleTimeBeforeScaleDown"],
        "PT10M"
    );
    assert!(
        calls.iter().any(|c| c.starts_with("GET /_ops/")),
        "polled the async operation: {calls:?}"
    );
    for l in &state.log {
        assert!(l.headers["user-agent"].starts_with("azml/"));
        assert!(!l.headers["x-ms-client-request-id"].is_empty());
    }
    drop(state);
    assert_schema_clean(&fake);
}

#[test]
fn create_over_an_existing_compute_is_refused_without_a_put() {
    let fake = FakeArm::start(Options::default());
    fake.seed_compute("cpu", "AmlCompute", json!({}));
    let home = tempfile::tempdir().unwrap();
    let r = run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "create",
            "amlcompute",
            "-n",
            "cpu",
            "-s",
            "S",
            "--max-nodes",
            "2",
        ],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert!(fake.state().log.iter().all(|l| l.method != "PUT"));
}

#[test]
fn no_wait_returns_the_creating_resource_without_polling() {
    let fake = FakeArm::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let r = ok(run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "create",
            "computeinstance",
            "-n",
            "ci",
            "-s",
            "STANDARD_DS3_V2",
            "--no-wait",
            "--user-object-id",
            "oid",
            "--user-tenant-id",
            "tid",
            "--ssh-public-access",
            "false",
        ],
    ));
    assert_eq!(r.json()["properties"]["provisioningState"], "Creating");
    assert!(
        fake.state()
            .log
            .iter()
            .all(|l| !l.path.starts_with("/_ops/"))
    );
    assert_schema_clean(&fake);
}

/// The PUT went out with `sshPublicAccess: Enabled` and no key, which the
/// service refuses after a round trip; v1's SDK refused it up front.
#[test]
fn a_compute_instance_with_ssh_but_no_key_is_refused_before_any_request() {
    let fake = FakeArm::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let r = run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "create",
            "computeinstance",
            "-n",
            "ci",
            "-s",
            "STANDARD_DS3_V2",
            "--ssh-public-access",
            "true",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--admin-user-ssh-public-key"),
        "{}",
        r.stderr
    );
    assert!(fake.state().log.iter().all(|l| l.method != "PUT"));
}

#[test]
fn show_of_a_missing_compute_prints_the_arm_error_and_exits_3() {
    let fake = FakeArm::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let r = run(&fake, home.path(), &["computetarget", "show", "-n", "nope"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("error: (ResourceNotFound)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("hint:"), "{}", r.stderr);
}

#[test]
fn list_follows_next_links_and_the_table_has_v1_columns() {
    let fake = FakeArm::start(Options::default());
    for i in 0..5 {
        fake.seed_compute(&format!("c{i}"), "AmlCompute", json!({"properties": {"properties": {"vmSize": "STANDARD_D2_V2", "currentNodeCount": i}}}));
    }
    let home = tempfile::tempdir().unwrap();
    let r = ok(run(&fake, home.path(), &["computetarget", "list"]));
    assert_eq!(r.json().as_array().unwrap().len(), 5);
    let pages = fake
        .state()
        .log
        .iter()
        .filter(|l| l.path.ends_with("/computes"))
        .count();
    assert_eq!(pages, 3, "2 per page");
    assert_schema_clean(&fake);
    let table = ok(run(
        &fake,
        home.path(),
        &["computetarget", "list", "-o", "table"],
    ));
    for column in ["Name", "Type", "State", "Size", "Nodes"] {
        assert!(
            table.stdout.to_lowercase().contains(&column.to_lowercase()),
            "{}",
            table.stdout
        );
    }
    assert!(table.stdout.contains("STANDARD_D2_V2"));
}

#[test]
fn compute_instance_stop_start_restart_wait_for_the_operation() {
    let fake = FakeArm::start(Options::default());
    fake.seed_compute(
        "ci",
        "ComputeInstance",
        json!({"properties": {"properties": {"state": "Running"}}}),
    );
    let home = tempfile::tempdir().unwrap();
    let stopped = ok(run(
        &fake,
        home.path(),
        &["computetarget", "computeinstance", "stop", "-n", "ci"],
    ));
    assert_eq!(
        stopped.json()["properties"]["properties"]["state"],
        "Stopped"
    );
    let started = ok(run(
        &fake,
        home.path(),
        &["computetarget", "start", "-n", "ci"],
    ));
    assert_eq!(
        started.json()["properties"]["properties"]["state"],
        "Running"
    );
    let restart = ok(run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "computeinstance",
            "restart",
            "-n",
            "ci",
            "--no-wait",
        ],
    ));
    assert!(
        restart.stdout.trim().is_empty(),
        "--no-wait prints no resource: {}",
        restart.stdout
    );
    assert_eq!(
        fake.state().computes["ci"]["properties"]["properties"]["state"],
        "Restarting"
    );
    assert_schema_clean(&fake);
}

#[test]
fn delete_removes_created_computes_and_refuses_attached_ones() {
    let fake = FakeArm::start(Options::default());
    fake.seed_compute("cpu", "AmlCompute", json!({}));
    fake.seed_compute(
        "vm",
        "VirtualMachine",
        json!({"properties": {"isAttachedCompute": true}}),
    );
    let home = tempfile::tempdir().unwrap();
    ok(run(
        &fake,
        home.path(),
        &["computetarget", "delete", "-n", "cpu"],
    ));
    let refused = run(&fake, home.path(), &["computetarget", "delete", "-n", "vm"]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("detach"), "{}", refused.stderr);
    ok(run(
        &fake,
        home.path(),
        &["computetarget", "detach", "-n", "vm"],
    ));
    let state = fake.state();
    assert_eq!(
        state.removals,
        vec![
            ("cpu".to_string(), "Delete".to_string()),
            ("vm".to_string(), "Detach".to_string())
        ]
    );
    drop(state);
    assert_eq!(
        run(
            &fake,
            home.path(),
            &["computetarget", "delete", "-n", "gone"]
        )
        .code,
        3
    );
    assert_schema_clean(&fake);
}

#[test]
fn update_amlcompute_patches_scale_settings_and_keeps_the_rest() {
    let fake = FakeArm::start(Options::default());
    fake.seed_compute(
        "cpu",
        "AmlCompute",
        json!({"properties": {"properties": {"scaleSettings":
        {"maxNodeCount": 4, "minNodeCount": 1, "nodeIdleTimeBeforeScaleDown": "PT30M"}}}}),
    );
    let home = tempfile::tempdir().unwrap();
    let r = ok(run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "update",
            "amlcompute",
            "-n",
            "cpu",
            "--max-nodes",
            "10",
        ],
    ));
    assert_eq!(
        r.json()["properties"]["properties"]["scaleSettings"],
        json!({"maxNodeCount": 10, "minNodeCount": 1, "nodeIdleTimeBeforeScaleDown": "PT30M"})
    );
    assert!(fake.state().log.iter().any(|l| l.method == "PATCH"));
    assert_schema_clean(&fake);
    let bad = run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "update",
            "amlcompute",
            "-n",
            "cpu",
            "--min-nodes",
            "20",
        ],
    );
    assert_eq!(bad.code, 1, "{}", bad.stderr);
}

#[test]
fn list_nodes_pages_through_all_nodes() {
    let fake = FakeArm::start(Options::default());
    fake.seed_compute("cpu", "AmlCompute", json!({}));
    let home = tempfile::tempdir().unwrap();
    let r = ok(run(
        &fake,
        home.path(),
        &["computetarget", "list-nodes", "-n", "cpu"],
    ));
    assert_eq!(r.json().as_array().unwrap().len(), 3);
    assert_schema_clean(&fake);
}

#[test]
fn attach_remote_on_azure_requires_username_with_a_hint() {
    let fake = FakeArm::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let r = run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "attach",
            "remote",
            "-n",
            "vm",
            "-a",
            "10.0.0.4",
            "-p",
            "pw",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--username") && r.stderr.contains("hint:"),
        "{}",
        r.stderr
    );
}

#[test]
fn attach_remote_password_from_stdin_is_masked_until_show_secrets() {
    let fake = FakeArm::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let mut cmd = azml_cmd(&fake, home.path());
    cmd.write_stdin("s3cret-pw\n");
    let r = ok(run_with(
        cmd,
        &[
            "computetarget",
            "attach",
            "remote",
            "-n",
            "vm",
            "-a",
            "10.0.0.4",
            "-u",
            "azureuser",
            "--password-stdin",
        ],
    ));
    assert!(!r.stdout.contains("s3cret-pw") && !r.stderr.contains("s3cret-pw"));
    assert_schema_clean(&fake);
    let masked = ok(run(
        &fake,
        home.path(),
        &["computetarget", "get-credentials", "-n", "vm"],
    ));
    assert!(!masked.stdout.contains("s3cret-pw"));
    assert_eq!(
        masked.json()["administratorAccount"]["username"],
        "azureuser"
    );
    assert_eq!(masked.json()["administratorAccount"]["password"], "***");
    let shown = ok(run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "get-credentials",
            "-n",
            "vm",
            "--show-secrets",
        ],
    ));
    assert_eq!(
        shown.json()["administratorAccount"]["password"],
        "s3cret-pw"
    );
}

#[test]
fn every_attach_kind_sends_a_schema_valid_body_and_batch_is_explained() {
    let fake = FakeArm::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let key = home.path().join("id_rsa");
    std::fs::write(
        &key,
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    let rid = "/subscriptions/s/resourceGroups/r/providers/P/x/y";
    let key_arg = key.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "hdi",
            "-n",
            "hdi",
            "-a",
            "hdi.example.net",
            "-u",
            "sshuser",
            "--private-key-file",
            key_arg,
        ],
        vec!["kubernetes", "-n", "k8s", "-i", rid, "--namespace", "ml"],
        vec!["aks", "-n", "aks", "-i", rid],
        vec!["databricks", "-n", "dbx", "-i", rid, "-a", "dapi-TOKEN"],
        vec![
            "adla",
            "-n",
            "adla",
            "-i",
            rid,
            "--store-account-name",
            "mystore",
        ],
        vec!["synapse", "-n", "syn", "-i", rid],
        vec!["datafactory", "-n", "adf", "-i", rid],
    ];
    for case in &cases {
        let mut args = vec!["computetarget", "attach"];
        args.extend(case.iter());
        let r = ok(run(&fake, home.path(), &args));
        assert!(!r.stdout.contains("dapi-TOKEN") && !r.stdout.contains("BEGIN OPENSSH"));
    }
    assert_eq!(fake.state().computes.len(), cases.len());
    assert_eq!(
        fake.state().computes["adla"]["properties"]["properties"]["dataLakeStoreAccountName"],
        "mystore"
    );
    assert_schema_clean(&fake);
    let batch = run(
        &fake,
        home.path(),
        &["computetarget", "attach", "batch", "-n", "b", "-i", rid],
    );
    assert_eq!(batch.code, 1);
    assert!(batch.stderr.contains("Batch"), "{}", batch.stderr);
    assert!(!fake.state().computes.contains_key("b"));
}

#[test]
fn debug_trace_shows_requests_but_no_token_or_password() {
    let fake = FakeArm::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let r = ok(run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "create",
            "amlcompute",
            "-n",
            "cpu",
            "-s",
            "S",
            "--max-nodes",
            "2",
            "--admin-username",
            "azureuser",
            "--admin-user-password",
            "Hunter2-pw",
            "--debug",
        ],
    ));
    assert!(r.stderr.contains("Request URL: 'PUT"), "{}", r.stderr);
    assert!(r.stderr.contains("azureuser"));
    assert!(!r.stderr.contains(fake_arm::TOKEN), "token leaked");
    assert!(!r.stderr.contains("Hunter2-pw"), "password leaked");
    assert!(!r.stdout.contains("Hunter2-pw"));
}

#[test]
fn throttling_waits_for_retry_after_then_succeeds() {
    let fake = FakeArm::start(Options {
        retry_after: "1".into(),
        ..Options::default()
    });
    fake.seed_compute("cpu", "AmlCompute", json!({}));
    fake.force_faults(&[
        fake_arm::Fault::Throttle,
        fake_arm::Fault::ServerError,
        fake_arm::Fault::DropAfterWork,
    ]);
    let home = tempfile::tempdir().unwrap();
    let r = ok(run(
        &fake,
        home.path(),
        &["computetarget", "show", "-n", "cpu"],
    ));
    assert_eq!(r.json()["name"], "cpu");
    let state = fake.state();
    let gets: Vec<_> = state.log.iter().filter(|l| l.method == "GET").collect();
    assert_eq!(gets.len(), 4, "429, 500, dropped, then the answer");
    let waited = gets[1].at.duration_since(gets[0].at);
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 honoured, waited {waited:?}"
    );
}

#[test]
fn hundred_operations_under_twenty_percent_faults_end_in_the_right_state() {
    let fake = FakeArm::start(Options {
        fault_rate: 0.2,
        seed: 42,
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let n = 25;
    for i in 0..n {
        let name = format!("ci{i}");
        ok(run(
            &fake,
            home.path(),
            &[
                "computetarget",
                "create",
                "computeinstance",
                "-n",
                &name,
                "-s",
                "STANDARD_DS3_V2",
            ],
        ));
        ok(run(
            &fake,
            home.path(),
            &["computetarget", "stop", "-n", &name],
        ));
        ok(run(
            &fake,
            home.path(),
            &["computetarget", "start", "-n", &name],
        ));
        ok(run(
            &fake,
            home.path(),
            &["computetarget", "delete", "-n", &name],
        ));
    }
    let state = fake.state();
    assert!(
        state.faults_injected >= 20,
        "faults were injected: {}",
        state.faults_injected
    );
    assert!(
        state.computes.is_empty(),
        "left over: {:?}",
        state.computes.keys()
    );
    assert_eq!(state.creations.len(), n);
    assert!(
        state.creations.values().all(|c| *c == 1),
        "created twice: {:?}",
        state.creations
    );
    assert_eq!(state.removals.len(), n);
    drop(state);
    assert_schema_clean(&fake);
}

#[test]
fn workspace_show_and_list_come_from_arm() {
    let fake = FakeArm::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let show = ok(run(&fake, home.path(), &["workspace", "show"]));
    assert_eq!(show.json()["location"], "westeurope");
    let out = azml_cmd(&fake, home.path())
        .args(["workspace", "list", "--subscription-id", fake_arm::SUB])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3, "both pages");
    assert_schema_clean(&fake);
}

#[test]
fn api_version_override_and_plain_http_rules_are_applied() {
    let fake = FakeArm::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let mut cmd = azml_cmd(&fake, home.path());
    cmd.env("AZML_ARM_API_VERSION", "2099-01-01");
    let r = run_with(cmd, &["computetarget", "show", "-n", "x"]);
    assert!(
        r.stderr.contains("InvalidApiVersionParameter"),
        "{}",
        r.stderr
    );
    let mut cmd = azml_cmd(&fake, home.path());
    cmd.env("AZML_ARM_ENDPOINT", "http://example.com");
    let r = run_with(cmd, &["computetarget", "show", "-n", "x"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("plain http"), "{}", r.stderr);
}

// ---- credentials ---------------------------------------------------------------

fn with_path(mut cmd: Command, bin: &Path) -> Command {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path);
    cmd
}

#[test]
fn az_cli_token_is_cached_on_disk_with_owner_only_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let fake = FakeArm::start(Options::default());
    fake.seed_compute("cpu", "AmlCompute", json!({}));
    let home = tempfile::tempdir().unwrap();
    let bin = fake_az(home.path(), Some(fake_arm::TOKEN));
    for _ in 0..3 {
        let mut cmd = with_path(azml_cmd(&fake, home.path()), &bin);
        cmd.env_remove("AZML_ACCESS_TOKEN");
        ok(run_with(cmd, &["computetarget", "show", "-n", "cpu"]));
    }
    assert_eq!(az_spawns(home.path()), 1, "az spawned once, then the cache");
    let cache = home.path().join("cache/azml/az-cli-token-AzureCloud.json");
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn access_token_env_wins_over_service_principal_and_az() {
    let fake = FakeArm::start(Options::default());
    fake.seed_compute("cpu", "AmlCompute", json!({}));
    let home = tempfile::tempdir().unwrap();
    let bin = fake_az(home.path(), Some(fake_arm::TOKEN));
    let mut cmd = with_path(azml_cmd(&fake, home.path()), &bin);
    cmd.env("AZURE_TENANT_ID", "t")
        .env("AZURE_CLIENT_ID", "c")
        .env("AZURE_CLIENT_SECRET", "s");
    ok(run_with(cmd, &["computetarget", "show", "-n", "cpu"]));
    assert_eq!(az_spawns(home.path()), 0);
    // Forcing the CLI skips the env token.
    let mut cmd = with_path(azml_cmd(&fake, home.path()), &bin);
    cmd.args(["--auth", "cli"]);
    ok(run_with(cmd, &["computetarget", "show", "-n", "cpu"]));
    assert_eq!(az_spawns(home.path()), 1);
}

#[test]
fn when_no_credential_works_one_error_lists_everything_tried() {
    let fake = FakeArm::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let bin = fake_az(home.path(), None);
    let mut cmd = with_path(azml_cmd(&fake, home.path()), &bin);
    cmd.env_remove("AZML_ACCESS_TOKEN");
    let r = run_with(cmd, &["computetarget", "show", "-n", "cpu"]);
    assert_eq!(r.code, 1);
    for tried in [
        "AZML_ACCESS_TOKEN",
        "service principal",
        "workload identity",
        "Azure CLI",
        "az login",
        "managed identity",
    ] {
        assert!(
            r.stderr.contains(tried),
            "missing {tried:?} in: {}",
            r.stderr
        );
    }
    assert!(fake.state().log.is_empty(), "no request without a token");
}

#[test]
fn identity_assign_and_remove_put_the_cluster_back_schema_valid() {
    let fake = FakeArm::start(Options::default());
    fake.seed_compute(
        "cpu",
        "AmlCompute",
        json!({"properties": {"properties": {"vmSize": "STANDARD_D2_V2", "currentNodeCount": 0,
            "allocationState": "Steady", "scaleSettings": {"maxNodeCount": 4, "minNodeCount": 0}}}}),
    );
    let home = tempfile::tempdir().unwrap();
    let uid = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u";
    let assigned = ok(run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "amlcompute",
            "identity",
            "assign",
            "-n",
            "cpu",
            "--identities",
            &format!("[system],{uid}"),
        ],
    ));
    assert_eq!(assigned.json()["type"], "SystemAssigned,UserAssigned");
    let removed = ok(run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "amlcompute",
            "identity",
            "remove",
            "-n",
            "cpu",
            "--identities",
            "[system]",
        ],
    ));
    assert_eq!(removed.json()["type"], "UserAssigned");
    let shown = ok(run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "amlcompute",
            "identity",
            "show",
            "-n",
            "cpu",
        ],
    ));
    assert_eq!(shown.json()["type"], "UserAssigned");
    assert_eq!(
        fake.state().creations.get("cpu"),
        None,
        "an update, not a create"
    );
    assert_schema_clean(&fake);
}

// ---- create aks / datafactory ---------------------------------------------------

fn put_body(fake: &FakeArm, name: &str) -> Value {
    let state = fake.state();
    let put = state
        .log
        .iter()
        .find(|l| l.method == "PUT" && l.path.ends_with(&format!("/computes/{name}")))
        .unwrap_or_else(|| panic!("no PUT for {name}"));
    serde_json::from_str(&put.body).unwrap()
}

#[test]
fn create_aks_with_own_certificate_and_vnet_sends_a_schema_valid_body_and_waits() {
    let fake = FakeArm::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let cert = home.path().join("cert.pem");
    let key = home.path().join("key.pem");
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nCERTDATA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nKEYDATA-s3cret\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let r = ok(run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "create",
            "aks",
            "-n",
            "aks-prod",
            "-a",
            "3",
            "-s",
            "Standard_D3_v2",
            "--cluster-purpose",
            "DevTest",
            "--load-balancer-type",
            "InternalLoadBalancer",
            "--load-balancer-subnet",
            "lb-subnet",
            "--ssl-cname",
            "www.contoso.com",
            "--ssl-cert-file",
            cert.to_str().unwrap(),
            "--ssl-key-file",
            key.to_str().unwrap(),
            "--vnet-name",
            "vnet1",
            "--subnet-name",
            "aks",
            "--vnet-resourcegroup-name",
            "net-rg",
            "--service-cidr",
            "10.0.0.0/16",
            "--dns-service-ip",
            "10.0.0.10",
            "--docker-bridge-cidr",
            "172.17.0.1/16",
            "-l",
            "eastus",
            "--debug",
        ],
    ));
    let v = r.json();
    assert_eq!(v["properties"]["provisioningState"], "Succeeded");
    assert_eq!(v["properties"]["isAttachedCompute"], false);
    let body = put_body(&fake, "aks-prod");
    assert_eq!(body["location"], "eastus");
    assert_eq!(body["properties"]["computeType"], "AKS");
    let inner = &body["properties"]["properties"];
    assert_eq!(inner["agentCount"], 3);
    assert_eq!(inner["agentVmSize"], "Standard_D3_v2");
    assert_eq!(inner["clusterPurpose"], "DevTest");
    assert_eq!(inner["loadBalancerType"], "InternalLoadBalancer");
    assert_eq!(inner["loadBalancerSubnet"], "lb-subnet");
    let ssl = &inner["sslConfiguration"];
    assert_eq!(ssl["status"], "Enabled");
    assert_eq!(ssl["cname"], "www.contoso.com");
    assert!(ssl["cert"].as_str().unwrap().contains("CERTDATA"));
    assert!(ssl["key"].as_str().unwrap().contains("KEYDATA-s3cret"));
    assert!(ssl.get("leafDomainLabel").is_none());
    let net = &inner["aksNetworkingConfiguration"];
    assert_eq!(
        net["subnetId"],
        format!(
            "/subscriptions/{}/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/aks",
            fake_arm::SUB
        )
    );
    assert_eq!(net["serviceCidr"], "10.0.0.0/16");
    assert_eq!(net["dnsServiceIP"], "10.0.0.10");
    assert_eq!(net["dockerBridgeCidr"], "172.17.0.1/16");
    assert_eq!(fake.state().creations.get("aks-prod"), Some(&1));
    assert!(
        !r.stdout.contains("KEYDATA-s3cret") && !r.stderr.contains("KEYDATA-s3cret"),
        "the TLS key leaked"
    );
    assert!(r.stderr.contains("Request URL: 'PUT"), "{}", r.stderr);
    assert_schema_clean(&fake);
}

#[test]
fn create_aks_with_a_leaf_domain_asks_for_a_generated_certificate_and_no_wait_returns_early() {
    let fake = FakeArm::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let r = ok(run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "create",
            "aks",
            "-n",
            "aks-dev",
            "--ssl-leaf-domain-label",
            "myml",
            "--ssl-overwrite-domain",
            "--no-wait",
        ],
    ));
    assert_eq!(r.json()["properties"]["provisioningState"], "Creating");
    let body = put_body(&fake, "aks-dev");
    assert_eq!(body["location"], "westeurope", "the workspace's location");
    assert_eq!(
        body["properties"]["properties"]["sslConfiguration"],
        json!({"status": "Auto", "leafDomainLabel": "myml", "overwriteExistingDomain": true})
    );
    assert!(
        !fake
            .state()
            .log
            .iter()
            .any(|l| l.path.starts_with("/_ops/")),
        "--no-wait never polls"
    );
    assert_schema_clean(&fake);
}

#[test]
fn create_aks_refuses_half_given_ssl_or_vnet_settings_before_any_request() {
    let fake = FakeArm::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--ssl-cname", "www.contoso.com"], "--ssl-cert-file"),
        (&["--service-cidr", "10.0.0.0/16"], "--dns-service-ip"),
        (&["--load-balancer-subnet", "s"], "InternalLoadBalancer"),
        (&["-a", "0"], "--agent-count"),
    ];
    for (flags, mentions) in cases {
        let mut args = vec!["computetarget", "create", "aks", "-n", "aks-bad"];
        args.extend(flags);
        let r = run(&fake, home.path(), &args);
        assert_eq!(r.code, 1, "{flags:?}: {}", r.stderr);
        assert!(r.stderr.contains(mentions), "{flags:?}: {}", r.stderr);
    }
    assert!(fake.state().log.is_empty(), "no request for invalid input");
}

#[test]
fn create_datafactory_puts_a_datafactory_in_the_workspace_location() {
    let fake = FakeArm::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let r = ok(run(
        &fake,
        home.path(),
        &["computetarget", "create", "datafactory", "-n", "adf"],
    ));
    assert_eq!(r.json()["properties"]["provisioningState"], "Succeeded");
    let body = put_body(&fake, "adf");
    assert_eq!(
        body,
        json!({"location": "westeurope",
               "properties": {"computeType": "DataFactory", "computeLocation": "westeurope"}})
    );
    let r = ok(run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "create",
            "datafactory",
            "-n",
            "adf2",
            "-l",
            "northeurope",
            "--no-wait",
        ],
    ));
    assert_eq!(r.json()["properties"]["provisioningState"], "Creating");
    assert_eq!(put_body(&fake, "adf2")["location"], "northeurope");
    let again = run(
        &fake,
        home.path(),
        &["computetarget", "create", "datafactory", "-n", "adf"],
    );
    assert_eq!(
        again.code, 1,
        "an existing name is refused: {}",
        again.stderr
    );
    assert_eq!(fake.state().creations.get("adf"), Some(&1));
    assert_schema_clean(&fake);
}

// ---- issue 5 items pinned: subscription defaults, secrets, retries, LRO modes, az timeout ----

/// `azml` with only the workspace and group: the subscription must come from elsewhere.
fn run_without_subscription(mut cmd: Command, args: &[&str]) -> Run {
    let out = cmd
        .args(args)
        .args(["-w", fake_arm::WS, "-g", fake_arm::RG])
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn subscription_defaults_to_azure_subscription_id_then_the_az_cli_profile() {
    let fake = FakeArm::start(Options::default());
    fake.seed_compute("cpu", "AmlCompute", json!({}));
    let home = tempfile::tempdir().unwrap();
    let show = ["computetarget", "show", "-n", "cpu"];
    let mut cmd = azml_cmd(&fake, home.path());
    cmd.env("AZURE_SUBSCRIPTION_ID", fake_arm::SUB);
    ok(run_without_subscription(cmd, &show));
    // az writes its profile with a UTF-8 BOM; the default subscription is `isDefault`.
    let az_dir = home.path().join("azcfg");
    std::fs::create_dir_all(&az_dir).unwrap();
    let profile = format!(
        "\u{feff}{}",
        json!({"subscriptions": [
            {"id": "99999999-0000-0000-0000-000000000000", "isDefault": false},
            {"id": fake_arm::SUB, "isDefault": true},
        ]})
    );
    std::fs::write(az_dir.join("azureProfile.json"), profile).unwrap();
    let mut cmd = azml_cmd(&fake, home.path());
    cmd.env("AZURE_CONFIG_DIR", &az_dir);
    ok(run_without_subscription(cmd, &show));
    let state = fake.state();
    assert_eq!(state.log.len(), 2);
    assert!(state.log.iter().all(|l| {
        l.path
            .starts_with(&format!("/subscriptions/{}/", fake_arm::SUB))
    }));
}

#[test]
fn attach_remote_takes_the_password_from_azml_ssh_password_without_printing_it() {
    let fake = FakeArm::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let mut cmd = azml_cmd(&fake, home.path());
    cmd.env("AZML_SSH_PASSWORD", "env-Pa55word");
    let r = ok(run_with(
        cmd,
        &[
            "computetarget",
            "attach",
            "remote",
            "-n",
            "vm",
            "-a",
            "10.0.0.5",
            "-u",
            "azureuser",
            "--debug",
        ],
    ));
    assert!(!r.stdout.contains("env-Pa55word") && !r.stderr.contains("env-Pa55word"));
    let put = put_body(&fake, "vm");
    assert_eq!(
        put["properties"]["properties"]["administratorAccount"]["password"],
        "env-Pa55word"
    );
    assert_schema_clean(&fake);
}

#[test]
fn every_retryable_status_is_retried_and_retries_stop_at_the_attempt_limit() {
    use fake_arm::Fault;
    let fake = FakeArm::start(Options::default());
    fake.seed_compute("cpu", "AmlCompute", json!({}));
    let home = tempfile::tempdir().unwrap();
    fake.force_faults(&[
        Fault::Status(408),
        Fault::Status(502),
        Fault::Status(504),
        Fault::Throttle,
        Fault::ServerError,
        Fault::Unavailable,
    ]);
    ok(run(
        &fake,
        home.path(),
        &["computetarget", "show", "-n", "cpu"],
    ));
    assert_eq!(fake.state().log.len(), 7, "six faults, then the answer");

    // A status that is not transient is not retried.
    fake.force_faults(&[Fault::Status(409)]);
    let r = run(&fake, home.path(), &["computetarget", "show", "-n", "cpu"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(fake.state().log.len(), 8);

    // Retries are bounded: AZML_RETRY_MAX_ATTEMPTS=3 gives up after the third 503.
    fake.force_faults(&[Fault::Unavailable; 5]);
    let mut cmd = azml_cmd(&fake, home.path());
    cmd.env("AZML_RETRY_MAX_ATTEMPTS", "3");
    let r = run_with(cmd, &["computetarget", "show", "-n", "cpu"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("(ServiceUnavailable)"), "{}", r.stderr);
    assert_eq!(fake.state().log.len(), 11, "exactly three attempts");
    fake.state().forced_faults.clear();

    // …and bounded in time: a Retry-After beyond AZML_RETRY_MAX_SECS is not waited for.
    let slow = FakeArm::start(Options {
        retry_after: "30".into(),
        ..Options::default()
    });
    slow.seed_compute("cpu", "AmlCompute", json!({}));
    slow.force_faults(&[Fault::Throttle]);
    let mut cmd = azml_cmd(&slow, home.path());
    cmd.env("AZML_RETRY_MAX_SECS", "5");
    let started = std::time::Instant::now();
    let r = run_with(cmd, &["computetarget", "show", "-n", "cpu"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("(TooManyRequests)"), "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(slow.state().log.len(), 1);
}

#[test]
fn without_operation_headers_create_polls_the_provisioning_state() {
    let fake = FakeArm::start(Options {
        lro_headers: false,
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let r = ok(run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "create",
            "amlcompute",
            "-n",
            "cpu",
            "-s",
            "S",
            "--max-nodes",
            "2",
        ],
    ));
    assert_eq!(r.json()["properties"]["provisioningState"], "Succeeded");
    let state = fake.state();
    let compute_path = format!("{}/computes/cpu", FakeArm::workspace_path());
    let put_at = state.log.iter().position(|l| l.method == "PUT").unwrap();
    let polls = state.log[put_at + 1..]
        .iter()
        .filter(|l| l.method == "GET" && l.path == compute_path)
        .count();
    assert!(polls >= 2, "polled the resource until it settled: {polls}");
    assert!(!state.log.iter().any(|l| l.path.starts_with("/_ops/")));
}

#[test]
fn a_hanging_az_cli_is_killed_after_the_timeout_and_reported() {
    use std::os::unix::fs::PermissionsExt;
    let fake = FakeArm::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("az"), "#!/bin/sh\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(bin.join("az"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = with_path(azml_cmd(&fake, home.path()), &bin);
    cmd.env_remove("AZML_ACCESS_TOKEN")
        .env("AZML_AZ_TIMEOUT_SECS", "1");
    let started = std::time::Instant::now();
    let r = run_with(cmd, &["computetarget", "show", "-n", "cpu"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("az did not answer within 1 s"),
        "{}",
        r.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(fake.state().log.is_empty());
}

#[test]
fn output_is_the_arm_resource_so_query_and_tsv_pick_its_fields() {
    let fake = FakeArm::start(Options::default());
    fake.seed_compute("cpu", "AmlCompute", json!({}));
    let home = tempfile::tempdir().unwrap();
    let r = ok(run(
        &fake,
        home.path(),
        &[
            "computetarget",
            "show",
            "-n",
            "cpu",
            "--query",
            "properties.provisioningState",
            "-o",
            "tsv",
        ],
    ));
    assert_eq!(r.stdout, "Succeeded\n");
    let r = ok(run(
        &fake,
        home.path(),
        &["workspace", "show", "--query", "location", "-o", "tsv"],
    ));
    assert_eq!(r.stdout, "westeurope\n");
}
