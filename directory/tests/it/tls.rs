//! The directory over HTTPS, and probing hosts that serve HTTPS, with a
//! throwaway certificate authority made by rcgen.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use directory::failover::ProbeOutcome;
use directory::{AppState, DirectoryConfig, accounts};
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

/// A self-signed certificate for `localhost` and `127.0.0.1`, in PEM files.
struct Pki {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    Pki {
        _dir: dir,
        cert,
        key,
    }
}

/// One HTTPS request trusting `pki`; returns status, headers, body.
async fn https(
    pki: &Pki,
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
) -> (StatusCode, hyper::HeaderMap, Bytes) {
    let config = auth::tls::client_config(&pki.cert).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
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

    let login = Request::post("/login")
        .header("host", format!("localhost:{}", addr.port()))
        .header("origin", &origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from("user=ada&password=correct-horse")))
        .unwrap();
    let (status, headers, _) = https(&pki, addr, login).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.ends_with("; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200; Secure"),
        "{cookie}"
    );
    assert_eq!(headers["strict-transport-security"], "max-age=31536000");

    let health = Request::get("/healthz")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, headers, _) = https(&pki, addr, health).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["strict-transport-security"], "max-age=31536000");
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
