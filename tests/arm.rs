//! The Azure backend against a fake ARM on loopback: every request body is
//! checked against the 2025-12-01 schema, faults are injected, and the
//! computetarget flows must end in the right state.

#[path = "support/fake_arm.rs"]
mod fake_arm;

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
