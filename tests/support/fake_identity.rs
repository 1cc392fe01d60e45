//! Fake identity endpoints on loopback, for driving azure_identity's real
//! credential code from the azml binary:
//! - an Entra token endpoint (`POST /{tenant}/oauth2/v2.0/token`) over https
//!   with a throwaway self-signed certificate (azure_identity refuses a plain
//!   http authority); the child trusts it through `SSL_CERT_FILE`, which only
//!   the test process sets;
//! - an App Service style managed-identity endpoint (`IDENTITY_ENDPOINT` +
//!   `IDENTITY_HEADER`, plain http on loopback as on App Service).
//!
//! Both issue `token`, answer a wrong secret/assertion/header like the real
//! services do, and log every request so tests can count them and check scopes.

#![allow(dead_code)]

use axum::extract::{Form, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio_rustls::rustls;

/// What the fakes accept and hand out.
#[derive(Debug, Clone)]
pub struct IdentityOptions {
    /// The access token both endpoints issue.
    pub token: String,
    /// The service principal's secret the Entra fake accepts.
    pub client_secret: String,
    /// The workload-identity assertion (federated token file content) it accepts.
    pub assertion: String,
    /// The `X-IDENTITY-HEADER` value the managed-identity fake accepts.
    pub identity_header: String,
    pub expires_in: i64,
}

impl Default for IdentityOptions {
    fn default() -> Self {
        IdentityOptions {
            token: format!("issued-by-fake-identity-{}", uuid::Uuid::new_v4().simple()),
            client_secret: "sp-SECRET-value-123".into(),
            assertion: "eyJfederated.ASSERTION.sig".into(),
            identity_header: "msi-HEADER-secret-456".into(),
            expires_in: 3600,
        }
    }
}

/// One token request as a fake saw it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// `entra` or `msi`.
    pub endpoint: &'static str,
    /// The tenant path segment (Entra) or empty.
    pub tenant: String,
    /// Form fields (Entra) or query pairs (managed identity).
    pub fields: HashMap<String, String>,
    pub identity_header: Option<String>,
    pub issued: bool,
}

struct Shared {
    options: IdentityOptions,
    log: Mutex<Vec<TokenRequest>>,
}

pub struct FakeIdentity {
    /// `https://127.0.0.1:PORT`: the value for `AZURE_AUTHORITY_HOST`.
    pub authority: String,
    /// `http://127.0.0.1:PORT/msi/token`: the value for `IDENTITY_ENDPOINT`.
    pub msi_endpoint: String,
    /// PEM of the Entra fake's certificate: the value for `SSL_CERT_FILE`.
    pub ca_file: PathBuf,
    pub options: IdentityOptions,
    shared: Arc<Shared>,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeIdentity {
    pub fn start(options: IdentityOptions) -> FakeIdentity {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
            .expect("self-signed certificate");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_file = dir.path().join("fake-entra-ca.pem");
        std::fs::write(&ca_file, certified.cert.pem()).expect("write ca");
        let tls = tls_config(
            certified.cert.der().to_vec(),
            certified.signing_key.serialize_der(),
        );
        let entra = bind();
        let msi = bind();
        let authority = format!("https://{}", entra.local_addr().expect("addr"));
        let msi_endpoint = format!("http://{}/msi/token", msi.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            options: options.clone(),
            log: Mutex::new(Vec::new()),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app_state = shared.clone();
        let thread = std::thread::spawn(move || serve(entra, msi, tls, app_state, rx));
        FakeIdentity {
            authority,
            msi_endpoint,
            ca_file,
            options,
            shared,
            _dir: dir,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for FakeIdentity {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn bind() -> std::net::TcpListener {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.set_nonblocking(true).expect("nonblocking");
    listener
}

fn tls_config(cert: Vec<u8>, key: Vec<u8>) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .expect("server certificate");
    Arc::new(config)
}

fn serve(
    entra: std::net::TcpListener,
    msi: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let entra = TlsListener {
            tcp: tokio::net::TcpListener::from_std(entra).expect("listener"),
            acceptor: tokio_rustls::TlsAcceptor::from(tls),
        };
        let msi = tokio::net::TcpListener::from_std(msi).expect("listener");
        let entra_app = axum::Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(entra_token))
            .with_state(shared.clone());
        let msi_app = axum::Router::new()
            .route("/msi/token", get(msi_token))
            .with_state(shared);
        let (stop_msi_tx, stop_msi_rx) = tokio::sync::oneshot::channel::<()>();
        let msi_server = tokio::spawn(async move {
            let _ = axum::serve(msi, msi_app)
                .with_graceful_shutdown(async {
                    let _ = stop_msi_rx.await;
                })
                .await;
        });
        let _ = axum::serve(entra, entra_app)
            .with_graceful_shutdown(async {
                let _ = stop.await;
            })
            .await;
        let _ = stop_msi_tx.send(());
        let _ = msi_server.await;
    });
}

/// TCP accept + TLS handshake; failed handshakes are skipped.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

fn log(shared: &Shared, request: TokenRequest) {
    shared
        .log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(request);
}

/// Client credentials grant, with a secret or a JWT-bearer assertion.
async fn entra_token(
    AxState(shared): AxState<Arc<Shared>>,
    axum::extract::Path(tenant): axum::extract::Path<String>,
    Form(fields): Form<HashMap<String, String>>,
) -> Response {
    let o = &shared.options;
    let field = |k: &str| fields.get(k).map(String::as_str);
    let by_secret = field("client_secret") == Some(o.client_secret.as_str());
    let by_assertion = field("client_assertion") == Some(o.assertion.as_str())
        && field("client_assertion_type")
            == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    let issued = field("grant_type") == Some("client_credentials")
        && field("client_id").is_some_and(|c| !c.is_empty())
        && (by_secret || by_assertion);
    log(
        &shared,
        TokenRequest {
            endpoint: "entra",
            tenant,
            fields: fields.clone(),
            identity_header: None,
            issued,
        },
    );
    if !issued {
        let body = json!({
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.",
            "error_codes": [7000215],
        });
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let body = json!({
        "token_type": "Bearer",
        "expires_in": o.expires_in,
        "ext_expires_in": o.expires_in,
        "access_token": o.token,
    });
    axum::Json(body).into_response()
}

/// App Service managed identity (api-version 2019-08-01): `resource` in the query,
/// the secret in `X-IDENTITY-HEADER`, `expires_on` as a string of unix seconds.
async fn msi_token(
    AxState(shared): AxState<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let o = &shared.options;
    let header = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let issued = header.as_deref() == Some(o.identity_header.as_str())
        && query.get("api-version").map(String::as_str) == Some("2019-08-01")
        && query.contains_key("resource");
    log(
        &shared,
        TokenRequest {
            endpoint: "msi",
            tenant: String::new(),
            fields: query.clone(),
            identity_header: header,
            issued,
        },
    );
    if !issued {
        return (
            StatusCode::UNAUTHORIZED,
            "missing or wrong X-IDENTITY-HEADER",
        )
            .into_response();
    }
    let expires_on = chrono::Utc::now().timestamp() + o.expires_in;
    let body = json!({
        "access_token": o.token,
        "expires_on": expires_on.to_string(),
        "resource": query.get("resource"),
        "token_type": "Bearer",
    });
    axum::Json(body).into_response()
}
