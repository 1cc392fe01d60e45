//! Azurite (the Azure Storage emulator, npm `azurite`) as a real blob store
//! for upload tests: started on a free 127.0.0.1 port with in-memory storage,
//! killed on drop. Missing Azurite skips the test with a reason, unless
//! `AZML_TEST_REQUIRE_ALL=1` (CI), where it fails.
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Azurite's well-known development account.
pub const ACCOUNT: &str = "devstoreaccount1";
const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const SAS_VERSION: &str = "2021-08-06";

pub struct Azurite {
    child: Child,
    pub addr: SocketAddr,
    /// Account SAS query (read/write/list/create/delete), for tests' own requests.
    pub sas: String,
    _workdir: tempfile::TempDir,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where `azurite-blob` is: PATH, else the repo's `.ci/node_modules/.bin`.
fn find_binary() -> Option<PathBuf> {
    let local =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/node_modules/.bin/azurite-blob");
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("azurite-blob"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| local.is_file().then_some(local))
}

/// Start Azurite, or explain why not (None = skip; panics when CI requires it).
pub fn start() -> Option<Azurite> {
    let Some(binary) = find_binary() else {
        let reason = "azurite-blob not found (run `cd .ci && npm install`)";
        if std::env::var("AZML_TEST_REQUIRE_ALL").as_deref() == Ok("1") {
            panic!("AZML_TEST_REQUIRE_ALL=1 but {reason}");
        }
        eprintln!("skipping: {reason}");
        return None;
    };
    for _ in 0..3 {
        if let Some(azurite) = try_start(&binary) {
            return Some(azurite);
        }
    }
    panic!("azurite-blob did not start on 127.0.0.1 after 3 attempts");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn try_start(binary: &PathBuf) -> Option<Azurite> {
    let workdir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut child = Command::new(binary)
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .args([
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
            // Azurite's telemetry (Application Insights on OpenTelemetry) costs CPU on
            // every request and phones home: off, for the tests and the benchmarks alike.
            "--disableTelemetry",
        ])
        .current_dir(workdir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn azurite-blob");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Some(Azurite {
                child,
                addr,
                sas: account_sas(),
                _workdir: workdir,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl Azurite {
    /// The Azurite process id (benchmarks read its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT/devstoreaccount1`.
    pub fn account_url(&self) -> String {
        format!("http://{}/{ACCOUNT}", self.addr)
    }

    /// Create a container (idempotent).
    pub async fn create_container(&self, name: &str) {
        let url = format!(
            "{}/{name}?restype=container&{}",
            self.account_url(),
            self.sas
        );
        let response = reqwest::Client::new()
            .put(url)
            .header("x-ms-version", SAS_VERSION)
            .header("content-length", "0")
            .send()
            .await
            .expect("azurite reachable");
        let status = response.status().as_u16();
        assert!(
            status == 201 || status == 409,
            "create container: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// A blob's bytes (None when absent).
    pub async fn get_blob(&self, container: &str, name: &str) -> Option<Vec<u8>> {
        let url = format!("{}/{container}/{name}?{}", self.account_url(), self.sas);
        let response = reqwest::Client::new()
            .get(url)
            .header("x-ms-version", SAS_VERSION)
            .send()
            .await
            .expect("azurite reachable");
        if response.status().as_u16() == 404 {
            return None;
        }
        assert!(
            response.status().is_success(),
            "get blob {name}: {}",
            response.status()
        );
        Some(response.bytes().await.expect("blob body").to_vec())
    }

    /// A blob's `x-ms-meta-*` headers as (key, value).
    pub async fn blob_metadata(&self, container: &str, name: &str) -> Vec<(String, String)> {
        let url = format!(
            "{}/{container}/{name}?comp=metadata&{}",
            self.account_url(),
            self.sas
        );
        let response = reqwest::Client::new()
            .get(url)
            .header("x-ms-version", SAS_VERSION)
            .send()
            .await
            .expect("azurite reachable");
        let mut out: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                let key = k.as_str().strip_prefix("x-ms-meta-")?;
                Some((key.to_string(), v.to_str().ok()?.to_string()))
            })
            .collect();
        out.sort();
        out
    }
}

/// An account SAS for Azurite's dev account (HMAC-SHA256 over the v2020-12-06+ string-to-sign).
fn account_sas() -> String {
    let permissions = "rwdlacup";
    let expiry = "2099-01-01T00:00:00Z";
    let string_to_sign =
        format!("{ACCOUNT}\n{permissions}\nb\nsco\n\n{expiry}\n\nhttps,http\n{SAS_VERSION}\n\n");
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine.decode(ACCOUNT_KEY).expect("account key is base64");
    let signature = engine.encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    format!(
        "sv={SAS_VERSION}&ss=b&srt=sco&sp={permissions}&se={}&spr=https,http&sig={}",
        encode(expiry),
        encode(&signature)
    )
}

/// A service SAS scoped to one container (`sr=c`), the kind Azure ML's
/// startPendingUpload hands out, with the given permissions (e.g. `rcwl`).
pub fn container_sas(container: &str, permissions: &str) -> String {
    let expiry = "2099-01-01T00:00:00Z";
    let resource = format!("/blob/{ACCOUNT}/{container}");
    // Version 2020-12-06+ string-to-sign: permissions, start, expiry, resource,
    // identifier, IP, protocol, version, resource type, snapshot time,
    // encryption scope, then the five response-header overrides.
    let string_to_sign = format!(
        "{permissions}\n\n{expiry}\n{resource}\n\n\nhttps,http\n{SAS_VERSION}\nc\n\n\n\n\n\n\n"
    );
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine.decode(ACCOUNT_KEY).expect("account key is base64");
    let signature = engine.encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    format!(
        "sv={SAS_VERSION}&sr=c&sp={permissions}&se={}&spr=https,http&sig={}",
        encode(expiry),
        encode(&signature)
    )
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.iter().map(|b| b ^ 0x36).collect::<Vec<_>>());
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.iter().map(|b| b ^ 0x5c).collect::<Vec<_>>());
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A loopback HTTP proxy in front of Azurite that counts requests and bytes
/// and can answer every n-th PUT with 503 (to prove retries), so tests see
/// exactly what azml sent.
pub struct BlobProxy {
    pub addr: SocketAddr,
    pub stats: std::sync::Arc<ProxyStats>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Default)]
pub struct ProxyStats {
    pub requests: std::sync::atomic::AtomicU64,
    pub put_body_bytes: std::sync::atomic::AtomicU64,
    pub puts: std::sync::atomic::AtomicU64,
    pub injected_503: std::sync::atomic::AtomicU64,
    /// 0 = never; n = fail PUT number n, 2n, 3n… once each.
    pub fail_every_nth_put: std::sync::atomic::AtomicU64,
    /// Answer every Copy Blob with 403 CannotVerifyCopySource, as Azure does
    /// when the SAS cannot read the source (Azurite never checks it).
    pub refuse_copies: std::sync::atomic::AtomicBool,
    pub refused_copies: std::sync::atomic::AtomicU64,
}

impl ProxyStats {
    pub fn get(counter: &std::sync::atomic::AtomicU64) -> u64 {
        counter.load(std::sync::atomic::Ordering::SeqCst)
    }
    pub fn reset(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.requests.store(0, SeqCst);
        self.put_body_bytes.store(0, SeqCst);
        self.puts.store(0, SeqCst);
        self.injected_503.store(0, SeqCst);
        self.refused_copies.store(0, SeqCst);
    }
}

impl Drop for BlobProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Clone)]
struct ProxyState {
    upstream: SocketAddr,
    client: reqwest::Client,
    stats: std::sync::Arc<ProxyStats>,
}

impl BlobProxy {
    pub async fn start(upstream: SocketAddr) -> BlobProxy {
        let stats = std::sync::Arc::new(ProxyStats::default());
        let state = ProxyState {
            upstream,
            client: reqwest::Client::new(),
            stats: stats.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        BlobProxy {
            addr,
            stats,
            shutdown: Some(tx),
        }
    }

    /// `http://127.0.0.1:PROXY/devstoreaccount1`.
    pub fn account_url(&self) -> String {
        format!("http://{}/{ACCOUNT}", self.addr)
    }
}

async fn forward(
    axum::extract::State(state): axum::extract::State<ProxyState>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use std::sync::atomic::Ordering::SeqCst;
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return (axum::http::StatusCode::BAD_REQUEST, "unreadable body").into_response();
    };
    let stats = &state.stats;
    stats.requests.fetch_add(1, SeqCst);
    if parts.method == axum::http::Method::PUT {
        let n = stats.puts.fetch_add(1, SeqCst) + 1;
        let every = stats.fail_every_nth_put.load(SeqCst);
        if every > 0 && n % every == 0 {
            stats.injected_503.fetch_add(1, SeqCst);
            return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "injected").into_response();
        }
        if parts.headers.contains_key("x-ms-copy-source") && stats.refuse_copies.load(SeqCst) {
            stats.refused_copies.fetch_add(1, SeqCst);
            let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>CannotVerifyCopySource</Code><Message>This request is not authorized to perform this operation.</Message></Error>";
            return (axum::http::StatusCode::FORBIDDEN, body).into_response();
        }
        stats.put_body_bytes.fetch_add(bytes.len() as u64, SeqCst);
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("http://{}{path}", state.upstream);
    let mut upstream = state.client.request(parts.method.clone(), url);
    for (name, value) in &parts.headers {
        if name != axum::http::header::HOST {
            upstream = upstream.header(name, value);
        }
    }
    match upstream.body(bytes).send().await {
        Ok(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.unwrap_or_default();
            let mut out = (status, body).into_response();
            for (name, value) in &headers {
                if name != axum::http::header::CONTENT_LENGTH
                    && name != axum::http::header::TRANSFER_ENCODING
                {
                    out.headers_mut().insert(name, value.clone());
                }
            }
            out
        }
        Err(_) => (axum::http::StatusCode::BAD_GATEWAY, "upstream failed").into_response(),
    }
}
