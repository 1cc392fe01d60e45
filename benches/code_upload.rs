//! Code upload benchmark (issue 6): 2,000 files / 200 MB into Azurite.
//!
//! `cargo bench --bench code_upload` measures, with the release build:
//! 1. azml's first upload (list + SDK hash + parallel Put Blob) of the folder;
//! 2. the Python SDK (azure-ai-ml's own `get_content_hash` + `BlobStorageClient.upload`)
//!    on the same folder and the same Azurite, when `AZML_BENCH_PYTHON` names a
//!    Python with `azure-ai-ml` installed (skipped otherwise);
//! 3. an unchanged resubmit end to end: the real `azml run submit-script --async`
//!    against the test suite's fake Azure ML service (second of two submissions).
//!
//! Needs `azurite-blob` (`cd .ci && npm install`). Results go to stdout; record them in docs/perf.md.

#[path = "../tests/common/azurite.rs"]
mod azurite;
#[path = "../tests/common/fake_jobs.rs"]
mod fake_jobs;

use azml::arm::blob::{BlobFolder, RetryPolicy};
use azml::arm::code_upload;
use std::path::Path;
use std::time::{Duration, Instant};

const FILES: usize = 2_000;
const FILE_SIZE: usize = 100 * 1024;

fn main() {
    let Some(azurite) = azurite::start() else {
        eprintln!("code_upload bench skipped: azurite-blob not found");
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(azurite.create_container("bench"));
    let src = tempfile::tempdir().expect("tempdir");
    make_tree(src.path());
    println!("tree: {FILES} files, {} MB", FILES * FILE_SIZE / 1_000_000);

    let azml_first = rt.block_on(azml_upload(&azurite, src.path()));
    println!("azml first upload:           {:>8.0} ms", ms(azml_first));

    match python_sdk_upload(&azurite, src.path()) {
        Some(sdk) => println!(
            "python SDK upload:           {:>8.0} ms  (azml {:.1}x faster)",
            ms(sdk),
            sdk.as_secs_f64() / azml_first.as_secs_f64()
        ),
        None => println!(
            "python SDK upload:           skipped (set AZML_BENCH_PYTHON to a python with azure-ai-ml)"
        ),
    }

    let unchanged = unchanged_resubmit(&rt, &azurite, src.path());
    println!("unchanged resubmit (binary): {:>8.0} ms", ms(unchanged));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// 2,000 files of 100 KiB in 20 folders, distinct content.
fn make_tree(root: &Path) {
    for i in 0..FILES {
        let dir = root.join(format!("pkg{:02}", i % 20));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let byte = (i % 251) as u8;
        let mut content = vec![byte; FILE_SIZE];
        content[..8].copy_from_slice(&(i as u64).to_le_bytes());
        std::fs::write(dir.join(format!("m{i:04}.py")), content).expect("write");
    }
    std::fs::write(root.join("train.py"), "print('bench')\n").expect("write");
}

async fn azml_upload(azurite: &azurite::Azurite, root: &Path) -> Duration {
    let started = Instant::now();
    let files = code_upload::list_source_files(root, &[]).expect("list");
    let snapshot = code_upload::hash_snapshot(root, files, None).expect("hash");
    let sas_uri = format!("{}/bench/azml?{}", azurite.account_url(), azurite.sas);
    let folder =
        BlobFolder::new(reqwest::Client::new(), &sas_uri, RetryPolicy::from_env()).expect("sas");
    let bar = indicatif::ProgressBar::hidden();
    code_upload::upload_snapshot(&snapshot, &folder, None, ("bench", "1"), &bar)
        .await
        .expect("upload");
    started.elapsed()
}

/// The SDK's own hash + upload path with a SAS, as `ml_client.code.create_or_update` runs it.
fn python_sdk_upload(azurite: &azurite::Azurite, root: &Path) -> Option<Duration> {
    let python = std::env::var("AZML_BENCH_PYTHON").ok()?;
    let sas_uri = format!("{}/bench/sdk?{}", azurite.account_url(), azurite.sas);
    let script = r#"
import sys, time
from azure.ai.ml._utils._asset_utils import get_content_hash, get_ignore_file
from azure.ai.ml._artifacts._blob_storage_helper import BlobStorageClient
root, sas = sys.argv[1], sys.argv[2]
t = time.perf_counter()
ignore = get_ignore_file(root)
h = get_content_hash(root, ignore)
client = BlobStorageClient(credential=None, account_url=sas)
client.upload(root, name="bench", version="1", ignore_file=ignore, asset_hash=h, show_progress=False)
print(time.perf_counter() - t)
"#;
    let output = std::process::Command::new(python)
        .args(["-c", script])
        .arg(root)
        .arg(sas_uri)
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "python SDK upload failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let seconds: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .lines()
        .last()?
        .parse()
        .ok()?;
    Some(Duration::from_secs_f64(seconds))
}

/// Submit twice through the real binary; the second is the unchanged resubmit.
fn unchanged_resubmit(
    rt: &tokio::runtime::Runtime,
    azurite: &azurite::Azurite,
    root: &Path,
) -> Duration {
    let _guard = rt.enter();
    let container = format!("{}/bench", azurite.account_url());
    let fake = fake_jobs::FakeJobs::start(&container, &azurite.sas);
    let project = tempfile::tempdir().expect("project");
    let azureml = project.path().join(".azureml");
    std::fs::create_dir_all(&azureml).expect("mkdir");
    let config = format!(
        r#"{{"subscription_id": "{}", "resource_group": "{}", "workspace_name": "{}"}}"#,
        fake_jobs::SUB,
        fake_jobs::RG,
        fake_jobs::WS
    );
    std::fs::write(azureml.join("config.json"), config).expect("config");
    std::fs::write(
        azureml.join("bench.runconfig"),
        "script: train.py\ntarget: cpu-cluster\nenvironment:\n  python:\n    userManagedDependencies: true\n",
    )
    .expect("runconfig");
    let cache = tempfile::tempdir().expect("cache");
    let submit = || {
        let started = Instant::now();
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_azml"))
            .args(["run", "submit-script", "--path"])
            .arg(project.path())
            .arg("--source-directory")
            .arg(root)
            .args(["-c", "bench", "-e", "bench", "--async", "train.py"])
            .env("AZML_ARM_ENDPOINT", &fake.base)
            .env("AZML_ACCESS_TOKEN", fake_jobs::TOKEN)
            .env("AZML_CACHE_DIR", cache.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("azml runs");
        assert!(status.success(), "azml submit failed");
        started.elapsed()
    };
    submit();
    submit()
}
