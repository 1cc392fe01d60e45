//! Code upload benchmark (issue 6): 2,000 files / 200 MB into Azurite.
//!
//! `cargo bench --bench code_upload` (release profile) measures, on one
//! Azurite (in-memory, as the tests run it) and one source folder:
//! 1. Azurite's own ingest floor: 2,000 Put Blob of bodies already in memory
//!    from a bare HTTP client, at several concurrencies (what no uploader can beat);
//! 2. azml's library in phases: list, SDK-compatible hash, then upload, in-process;
//! 3. the Python SDK (azure-ai-ml's `get_content_hash` + `BlobStorageClient.upload`,
//!    what `ml_client.code.create_or_update` runs), at its default thread count
//!    and with more threads, when `AZML_BENCH_PYTHON` names a Python with azure-ai-ml;
//! 4. the real `azml run submit-script --async` against the test suite's fake
//!    Azure ML service: a first submission (whole process: list, hash alongside
//!    the upload, register the code and the job) and unchanged resubmits.
//!
//! For each it prints wall time and CPU time (user+sys) of the uploader and of
//! Azurite: CPU time barely moves with machine load, wall time does. Medians
//! of `AZML_BENCH_REPS` runs (default 3). Needs `azurite-blob` (`cd .ci && npm install`).
//! For an A/B of two builds: `AZML_BENCH_BIN=/path/to/azml` submits with that
//! binary, and `AZML_BENCH_ONLY=submit` measures only row 4.
//! 5. the uploads of 2 and 3 against a null blob server (a process that reads
//!    each body and answers 201): each uploader's own speed, without Azurite's
//!    ingest as the ceiling (`AZML_BENCH_ONLY=sink` for these rows alone).

#[path = "../tests/common/azurite.rs"]
mod azurite;
#[path = "../tests/common/fake_jobs.rs"]
mod fake_jobs;

use azml::arm::blob::{BlobFolder, RetryPolicy};
use azml::arm::code_upload;
use std::path::Path;
use std::time::{Duration, Instant};

/// Where uploads go: an Azurite, or the null blob server (`--sink` below).
struct Endpoint {
    account_url: String,
    sas: String,
    /// The server's process, whose CPU is reported.
    pid: u32,
}

impl Endpoint {
    fn of(azurite: &azurite::Azurite) -> Endpoint {
        Endpoint {
            account_url: azurite.account_url(),
            sas: azurite.sas.clone(),
            pid: azurite.pid(),
        }
    }
}

const FILES: usize = 2_000;
const FILE_SIZE: usize = 100 * 1024;

/// What one measured run cost.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    wall: Duration,
    /// CPU of the uploader (this process or the Python child).
    cpu: Duration,
    /// CPU Azurite spent serving it.
    azurite_cpu: Duration,
}

fn main() {
    if let Ok(port) = std::env::var(SINK_PORT_ENV) {
        serve_sink(port.parse().expect("sink port"));
        return;
    }
    // In-memory Azurite keeps every upload, and a bigger heap costs it more
    // CPU per request: each measured run gets a fresh instance so no row
    // pays for the ones before it.
    let Some(probe) = azurite::start() else {
        eprintln!("code_upload bench skipped: azurite-blob not found");
        return;
    };
    drop(probe);
    let reps: usize = std::env::var("AZML_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let fresh = || {
        let azurite = azurite::start().expect("azurite starts");
        rt.block_on(azurite.create_container("bench"));
        azurite
    };
    let src = tempfile::tempdir().expect("tempdir");
    make_tree(src.path());
    println!(
        "tree: {FILES} files x {} KiB = {} MB; load average {}; {reps} runs each, medians",
        FILE_SIZE / 1024,
        FILES * FILE_SIZE / 1_000_000,
        load_average()
    );
    println!(
        "{:<44} {:>9} {:>9} {:>12}",
        "what", "wall ms", "cpu ms", "azurite cpu"
    );
    let mut run = 0;
    let mut prefix = || {
        run += 1;
        format!("run{run}")
    };

    let only = std::env::var("AZML_BENCH_ONLY").unwrap_or_default();
    if only == "sink" {
        let mut n = 0;
        sink_rows(&rt, src.path(), reps, &mut || {
            n += 1;
            format!("run{n}")
        });
        return;
    }
    if only == "submit" {
        let (first_submit, resubmit) =
            submissions_through_the_binary(&rt, &fresh, src.path(), reps, reps.max(5));
        report("azml first submit, whole process", first_submit);
        report("unchanged resubmit, whole azml process", resubmit);
        return;
    }
    let bodies: Vec<bytes::Bytes> = (0..FILES).map(|i| file_content(i).into()).collect();
    for concurrency in [4, 8, 16, 32, 64] {
        let cost = median(reps, || {
            let azurite = fresh();
            measure(azurite.pid(), || {
                rt.block_on(floor(&azurite, &prefix(), &bodies, concurrency))
            })
        });
        report(
            &format!("azurite floor: Put Blob from memory, c={concurrency}"),
            cost,
        );
    }

    let azml = median(reps, || {
        let azurite = fresh();
        measure(azurite.pid(), || {
            rt.block_on(azml_upload(&Endpoint::of(&azurite), src.path(), &prefix()))
        })
    });
    report(
        &format!(
            "azml hash, then upload (c={}), in-process",
            code_upload::PARALLEL_REQUESTS
        ),
        azml,
    );

    let mut best_sdk: Option<Cost> = None;
    for threads in [None, Some(16)] {
        let label = match threads {
            None => "python SDK upload (default: 2 x cores threads)".to_string(),
            Some(n) => format!("python SDK upload ({n} threads)"),
        };
        let runs: Vec<Cost> = (0..reps)
            .filter_map(|_| {
                let azurite = fresh();
                python_sdk_upload(&Endpoint::of(&azurite), src.path(), &prefix(), threads)
            })
            .collect();
        if runs.is_empty() {
            println!("{label:<44} skipped (set AZML_BENCH_PYTHON to a python with azure-ai-ml)");
            break;
        }
        let cost = median_of(runs);
        report(&label, cost);
        if best_sdk.is_none_or(|b| cost.wall < b.wall) {
            best_sdk = Some(cost);
        }
    }
    if let Some(sdk) = best_sdk {
        println!(
            "azml vs the faster SDK setting: {:.1}x less wall time, {:.1}x less uploader CPU, {:.1}x less Azurite CPU",
            ratio(sdk.wall, azml.wall),
            ratio(sdk.cpu, azml.cpu),
            ratio(sdk.azurite_cpu, azml.azurite_cpu)
        );
    }

    sink_rows(&rt, src.path(), reps, &mut prefix);

    let (first_submit, resubmit) =
        submissions_through_the_binary(&rt, &fresh, src.path(), reps, reps.max(5));
    report("azml first submit, whole process", first_submit);
    if let Some(sdk) = best_sdk {
        println!(
            "azml (whole first submit) vs the faster SDK setting: {:.1}x less wall time, {:.1}x less uploader CPU",
            ratio(sdk.wall, first_submit.wall),
            ratio(sdk.cpu, first_submit.cpu),
        );
    }
    report("unchanged resubmit, whole azml process", resubmit);
    println!("load average at the end {}", load_average());
}

/// The same uploads against a server that costs (almost) nothing: what each
/// uploader does on its own, where Azurite's ingest is the ceiling.
fn sink_rows(
    rt: &tokio::runtime::Runtime,
    root: &Path,
    reps: usize,
    prefix: &mut dyn FnMut() -> String,
) {
    let sink = Sink::start();
    let endpoint = sink.endpoint();
    let azml_sink = median(reps, || {
        measure(sink.pid(), || {
            rt.block_on(azml_upload(&endpoint, root, &prefix()))
        })
    });
    report("null blob server: azml hash, then upload", azml_sink);
    let sdk_sink: Vec<Cost> = (0..reps)
        .filter_map(|_| python_sdk_upload(&endpoint, root, &prefix(), None))
        .collect();
    if !sdk_sink.is_empty() {
        let sdk_sink = median_of(sdk_sink);
        report("null blob server: python SDK (default)", sdk_sink);
        println!(
            "against the null blob server azml is {:.1}x faster (wall) with {:.1}x less CPU",
            ratio(sdk_sink.wall, azml_sink.wall),
            ratio(sdk_sink.cpu, azml_sink.cpu)
        );
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn report(label: &str, cost: Cost) {
    println!(
        "{label:<44} {:>9.0} {:>9.0} {:>12.0}",
        ms(cost.wall),
        ms(cost.cpu),
        ms(cost.azurite_cpu)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(reps: usize, mut f: impl FnMut() -> Cost) -> Cost {
    median_of((0..reps).map(|_| f()).collect())
}

/// The run with the median wall time.
fn median_of(mut runs: Vec<Cost>) -> Cost {
    runs.sort_by_key(|c| c.wall);
    runs[runs.len() / 2]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// user+sys CPU of this process (`who = RUSAGE_SELF`) or of its reaped children.
fn rusage_cpu(who: i32) -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe { libc::getrusage(who, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// utime+stime of another process, from /proc/PID/stat.
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / per_second)
}

/// Wall and CPU of `f` run in this process, and Azurite's CPU meanwhile.
fn measure(azurite_pid: u32, f: impl FnOnce()) -> Cost {
    let (cpu0, az0) = (rusage_cpu(libc::RUSAGE_SELF), process_cpu(azurite_pid));
    let started = Instant::now();
    f();
    Cost {
        wall: started.elapsed(),
        cpu: rusage_cpu(libc::RUSAGE_SELF).saturating_sub(cpu0),
        azurite_cpu: process_cpu(azurite_pid).saturating_sub(az0),
    }
}

fn file_content(i: usize) -> Vec<u8> {
    let mut content = vec![(i % 251) as u8; FILE_SIZE];
    content[..8].copy_from_slice(&(i as u64).to_le_bytes());
    content
}

/// 2,000 files of 100 KiB in 20 folders, distinct content.
fn make_tree(root: &Path) {
    for i in 0..FILES {
        let dir = root.join(format!("pkg{:02}", i % 20));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(format!("m{i:04}.py")), file_content(i)).expect("write");
    }
    std::fs::write(root.join("train.py"), "print('bench')\n").expect("write");
}

/// The floor: Put Blob of in-memory bodies, `concurrency` in flight, nothing else.
async fn floor(
    azurite: &azurite::Azurite,
    prefix: &str,
    bodies: &[bytes::Bytes],
    concurrency: usize,
) {
    use futures_util::StreamExt;
    let client = reqwest::Client::new();
    let base = format!("{}/bench/floor-{prefix}", azurite.account_url());
    futures_util::stream::iter(bodies.iter().enumerate())
        .for_each_concurrent(concurrency, |(i, body)| {
            let url = format!("{base}/m{i:04}.py?{}", azurite.sas);
            let request = client
                .put(url)
                .header("x-ms-version", "2021-08-06")
                .header("x-ms-blob-type", "BlockBlob")
                .body(body.clone());
            async move {
                let response = request.send().await.expect("azurite reachable");
                assert!(response.status().is_success(), "{}", response.status());
            }
        })
        .await;
}

async fn azml_upload(endpoint: &Endpoint, root: &Path, prefix: &str) {
    let files = code_upload::list_source_files(root, &[]).expect("list");
    let snapshot = code_upload::hash_snapshot(root, files, None).expect("hash");
    let sas_uri = format!(
        "{}/bench/azml-{prefix}?{}",
        endpoint.account_url, endpoint.sas
    );
    let folder =
        BlobFolder::new(reqwest::Client::new(), &sas_uri, RetryPolicy::from_env()).expect("sas");
    let bar = indicatif::ProgressBar::hidden();
    code_upload::upload_snapshot(&snapshot, &folder, None, ("bench", "1"), &bar)
        .await
        .expect("upload");
}

/// The SDK's own hash + upload path with a SAS, as `ml_client.code.create_or_update`
/// runs it; `threads` overrides its `PROCESSES_PER_CORE` pool sizing.
/// Wall time is the SDK's own hash+upload (interpreter start and imports excluded).
fn python_sdk_upload(
    endpoint: &Endpoint,
    root: &Path,
    prefix: &str,
    threads: Option<usize>,
) -> Option<Cost> {
    let python = std::env::var("AZML_BENCH_PYTHON").ok()?;
    let azurite_pid = endpoint.pid;
    let sas_uri = format!(
        "{}/bench/sdk-{prefix}?{}",
        endpoint.account_url, endpoint.sas
    );
    let script = r#"
import os, sys, time
import azure.ai.ml._utils._asset_utils as asset_utils
from azure.ai.ml._utils._asset_utils import get_content_hash, get_ignore_file
from azure.ai.ml._artifacts._blob_storage_helper import BlobStorageClient
root, sas, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
if threads:
    asset_utils.PROCESSES_PER_CORE = max(1, threads // os.cpu_count())
c0, t = time.process_time(), time.perf_counter()
ignore = get_ignore_file(root)
h = get_content_hash(root, ignore)
client = BlobStorageClient(credential=None, account_url=sas)
client.upload(root, name="bench", version="1", ignore_file=ignore, asset_hash=h, show_progress=False)
print(time.perf_counter() - t, time.process_time() - c0)
"#;
    let az0 = process_cpu(azurite_pid);
    let output = std::process::Command::new(python)
        .args(["-c", script])
        .arg(root)
        .arg(sas_uri)
        .arg(threads.unwrap_or(0).to_string())
        .output()
        .ok()?;
    let azurite_cpu = process_cpu(azurite_pid).saturating_sub(az0);
    if !output.status.success() {
        eprintln!(
            "python SDK upload failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut numbers = stdout.trim().lines().last()?.split_whitespace();
    let wall: f64 = numbers.next()?.parse().ok()?;
    let cpu: f64 = numbers.next()?.parse().ok()?;
    Some(Cost {
        wall: Duration::from_secs_f64(wall),
        cpu: Duration::from_secs_f64(cpu),
        azurite_cpu,
    })
}

/// The real binary against the test suite's fake Azure ML service: the
/// median of `firsts` first submissions (each to a fresh workspace, so the
/// upload runs alongside hashing), then of `reps` unchanged resubmits.
fn submissions_through_the_binary(
    rt: &tokio::runtime::Runtime,
    fresh: &dyn Fn() -> azurite::Azurite,
    root: &Path,
    firsts: usize,
    reps: usize,
) -> (Cost, Cost) {
    let _guard = rt.enter();
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
    let submit = |azurite: &azurite::Azurite, fake: &fake_jobs::FakeJobs, cache: &Path| {
        let pid = azurite.pid();
        let (cpu0, az0) = (rusage_cpu(libc::RUSAGE_CHILDREN), process_cpu(pid));
        let started = Instant::now();
        let bin = std::env::var_os("AZML_BENCH_BIN").unwrap_or(env!("CARGO_BIN_EXE_azml").into());
        let status = std::process::Command::new(bin)
            .args(["run", "submit-script", "--path"])
            .arg(project.path())
            .arg("--source-directory")
            .arg(root)
            .args(["-c", "bench", "-e", "bench", "--async", "train.py"])
            .env("AZML_ARM_ENDPOINT", &fake.base)
            .env("AZML_ACCESS_TOKEN", fake_jobs::TOKEN)
            .env("AZML_CACHE_DIR", cache)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("azml runs");
        assert!(status.success(), "azml submit failed");
        Cost {
            wall: started.elapsed(),
            cpu: rusage_cpu(libc::RUSAGE_CHILDREN).saturating_sub(cpu0),
            azurite_cpu: process_cpu(pid).saturating_sub(az0),
        }
    };
    let mut first_runs = Vec::new();
    let mut last = None;
    for _ in 0..firsts {
        let azurite = fresh();
        let container = format!("{}/bench", azurite.account_url());
        let fake = fake_jobs::FakeJobs::start(&container, &azurite.sas);
        let cache = tempfile::tempdir().expect("cache");
        first_runs.push(submit(&azurite, &fake, cache.path()));
        last = Some((azurite, fake, cache));
    }
    let (azurite, fake, cache) = last.expect("at least one first submit");
    let resubmit = median(reps, || submit(&azurite, &fake, cache.path()));
    (median_of(first_runs), resubmit)
}

/// Set in the bench's own child process: serve the null blob server on this port.
const SINK_PORT_ENV: &str = "AZML_BENCH_SINK_PORT";

/// A null blob server in a process of its own (this bench binary re-run with
/// [`SINK_PORT_ENV`]), so its CPU is measured apart from the uploader's.
/// It reads every body and answers as Blob storage does: 201 for a Put Blob,
/// 200 for Set Blob Metadata, 404 BlobNotFound for a properties read.
struct Sink {
    child: std::process::Child,
    port: u16,
}

impl Sink {
    fn start() -> Sink {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = std::process::Command::new(std::env::current_exe().expect("bench binary"))
            .env(SINK_PORT_ENV, port.to_string())
            .spawn()
            .expect("start the null blob server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "null blob server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Sink { child, port }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            account_url: format!("http://127.0.0.1:{}/devstoreaccount1", self.port),
            sas: "sv=2021-08-06&ss=b&srt=co&sp=rwdlac&se=2099-01-01T00:00:00Z&sig=bench".into(),
            pid: self.pid(),
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_sink(port: u16) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        let app = axum::Router::new().fallback(sink_answer);
        axum::serve(listener, app).await.expect("serve");
    });
}

async fn sink_answer(
    method: axum::http::Method,
    uri: axum::http::Uri,
    body: axum::body::Body,
) -> axum::response::Response {
    use axum::http::{Method, StatusCode};
    let _ = axum::body::to_bytes(body, usize::MAX).await;
    let query = uri.query().unwrap_or("");
    let status = match method {
        Method::PUT if query.contains("comp=metadata") => StatusCode::OK,
        Method::PUT => StatusCode::CREATED,
        _ => StatusCode::NOT_FOUND,
    };
    let mut response = axum::response::Response::builder()
        .status(status)
        .header("x-ms-request-id", "00000000-0000-0000-0000-000000000000")
        .header("x-ms-version", "2021-08-06")
        .header("date", "Wed, 25 Nov 2026 00:00:00 GMT");
    response = if status == StatusCode::NOT_FOUND {
        response
            .header("x-ms-error-code", "BlobNotFound")
            .header("content-type", "application/xml")
    } else {
        response
            .header("etag", "\"0x8DD00000000000\"")
            .header("last-modified", "Wed, 25 Nov 2026 00:00:00 GMT")
            .header("x-ms-request-server-encrypted", "true")
    };
    let body = if status == StatusCode::NOT_FOUND && method != Method::HEAD {
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>BlobNotFound</Code><Message>The specified blob does not exist.</Message></Error>"
    } else {
        ""
    };
    response
        .body(axum::body::Body::from(body))
        .expect("response")
}
