//! The directory over HTTPS, and probing hosts that serve HTTPS, with a
//! throwaway self-signed certificate (`testkit::cert`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use directory::failover::ProbeOutcome;
use directory::{AppState, DirectoryConfig, accounts};
use rustls::pki_types::ServerName;
use testkit::cert::SelfSigned;
use testkit::http::{Request, Response};

fn pki() -> SelfSigned {
    SelfSigned::localhost().unwrap()
}

/// One HTTPS request trusting `pki`; returns status, headers, body.
async fn https(pki: &SelfSigned, addr: SocketAddr, request: Request) -> Response {
    let config = auth::tls::client_config(&pki.cert).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    request.send_over(tls).await.unwrap()
}

#[tokio::test]
async fn over_tls_the_cookie_is_secure_and_transport_security_is_strict() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn store::Store> = Arc::new(
        store::SqliteStore::open(&dir.path().join("store.db"))
            .await
            .unwrap(),
    );
    accounts::add(&*store, "ada", "correct-horse")
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let origin = format!("https://localhost:{}", addr.port());
    let state = AppState::new(
        store,
        DirectoryConfig {
            public_url: Some(origin.clone()),
            tls: true,
            ..DirectoryConfig::default()
        },
    )
    .unwrap();
    let server_config = auth::tls::server_config(&pki.cert, &pki.key).unwrap();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(directory::run(
        listener,
        Some(server_config),
        state,
        async {
            let _ = stopped.await;
        },
    ));

    let login = Request::new("POST", &format!("{origin}/login"))
        .unwrap()
        .header("origin", &origin)
        .form("user=ada&password=correct-horse");
    let answer = https(&pki, addr, login).await;
    assert_eq!(answer.status, 303);
    let cookie = answer.header("set-cookie").unwrap();
    assert!(
        cookie.ends_with("; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200; Secure"),
        "{cookie}"
    );
    assert_eq!(
        answer.header("strict-transport-security"),
        Some("max-age=31536000")
    );

    let health = Request::new("GET", "https://localhost/healthz").unwrap();
    let answer = https(&pki, addr, health).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("strict-transport-security"),
        Some("max-age=31536000")
    );
}

#[tokio::test]
async fn https_hosts_are_probed_with_their_ca() {
    let pki = pki();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/healthz",
        axum::routing::get(|| async { axum::Json(serde_json::json!({ "host": "h1" })) }),
    );
    let server_config = auth::tls::server_config(&pki.cert, &pki.key).unwrap();
    let task = tokio::spawn(async move {
        axum::serve(auth::tls::TlsListener::new(listener, server_config), app)
            .await
            .unwrap();
    });
    let url = format!("https://localhost:{port}");
    let trust = auth::tls::client_config(&pki.cert).unwrap();
    let timeout = Duration::from_secs(5);
    assert_eq!(
        directory::probe::probe_owner(&url, "h1", timeout, Some(&trust)).await,
        ProbeOutcome::Alive
    );
    // Without the CA there is no evidence either way.
    assert_eq!(
        directory::probe::probe_owner(&url, "h1", timeout, None).await,
        ProbeOutcome::Inconclusive
    );
    task.abort();
}
