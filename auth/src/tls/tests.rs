use super::*;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::serve::ListenerExt as _;
use rustls_pki_types::ServerName;
use testkit::cert::SelfSigned;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::TlsConnector;

/// Generous bound for one request on a loaded CI machine; only reached when
/// something is broken.
const DEADLINE: Duration = Duration::from_secs(10);

/// A certificate for `localhost`, as servers of these tests present it.
fn self_signed() -> SelfSigned {
    SelfSigned::for_names(&["localhost"]).unwrap()
}

async fn serve(listener: TlsListener) -> SocketAddr {
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    let app =
        Router::new().route(
            "/",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                format!("hello {}", peer.ip())
            }),
        );
    let listener = listener.tap_io(|_| {});
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

async fn serve_https(pki: &SelfSigned) -> SocketAddr {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve(TlsListener::new(
        tcp,
        server_config(&pki.cert, &pki.key).unwrap(),
    ))
    .await
}

/// One HTTP/1.1 GET over rustls; the whole response as text.
async fn fetch(addr: SocketAddr, config: Arc<ClientConfig>) -> io::Result<String> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = TlsConnector::from(config).connect(name, tcp).await?;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(ALPN_HTTP_1_1));
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    tls.read_to_string(&mut response).await?;
    Ok(response)
}

fn assert_served(response: &str) {
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nhello 127.0.0.1"), "{response}");
}

#[tokio::test]
async fn serves_axum_over_tls_to_a_client_trusting_the_certificate() {
    let pki = self_signed();
    let addr = serve_https(&pki).await;
    let client = client_config(&pki.cert).unwrap();
    for _ in 0..3 {
        let response = tokio::time::timeout(DEADLINE, fetch(addr, client.clone()))
            .await
            .unwrap()
            .unwrap();
        assert_served(&response);
    }
}

#[tokio::test]
async fn a_silent_client_does_not_hold_up_the_next_one() {
    let pki = self_signed();
    let addr = serve_https(&pki).await;
    let mut silent = Vec::new();
    for _ in 0..5 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    // Half a handshake is worse than none: the server has answered and now
    // waits for the rest.
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    let response = tokio::time::timeout(DEADLINE, fetch(addr, client_config(&pki.cert).unwrap()))
        .await
        .expect("a silent client blocked the listener")
        .unwrap();
    assert_served(&response);
    drop((silent, half));
}

#[tokio::test]
async fn a_handshake_that_takes_too_long_is_cut_off() {
    let pki = self_signed();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = server_config(&pki.cert, &pki.key).unwrap();
    let addr = serve(TlsListener::with_handshake_timeout(
        tcp,
        config,
        Duration::from_millis(200),
    ))
    .await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(DEADLINE, silent.read(&mut buf))
        .await
        .expect("the server never closed a silent connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // The listener is still serving.
    let response = tokio::time::timeout(DEADLINE, fetch(addr, client_config(&pki.cert).unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_served(&response);
}

#[tokio::test]
async fn a_client_trusting_another_certificate_is_refused_and_the_server_carries_on() {
    let pki = self_signed();
    let other = self_signed();
    let addr = serve_https(&pki).await;
    let refused = tokio::time::timeout(DEADLINE, fetch(addr, client_config(&other.cert).unwrap()))
        .await
        .unwrap();
    let error = refused.unwrap_err().to_string();
    assert!(error.contains("certificate"), "{error}");
    let response = tokio::time::timeout(DEADLINE, fetch(addr, client_config(&pki.cert).unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_served(&response);
}

#[test]
fn certificate_and_key_may_share_one_file() {
    let pki = self_signed();
    let both = pki.dir().join("both.pem");
    let text =
        std::fs::read_to_string(&pki.key).unwrap() + &std::fs::read_to_string(&pki.cert).unwrap();
    std::fs::write(&both, text).unwrap();
    server_config(&both, &both).unwrap();
    client_config(&both).unwrap();
}

#[test]
fn unusable_files_are_named_in_the_error() {
    let pki = self_signed();
    let other = self_signed();
    let dir = pki.dir();
    let missing = dir.join("missing.pem");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let garbage = dir.join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n",
    )
    .unwrap();

    let message = |result: anyhow::Result<Arc<ServerConfig>>| format!("{:#}", result.unwrap_err());

    let e = message(server_config(&missing, &pki.key));
    assert!(
        e.contains("cannot read the certificate file") && e.contains("missing.pem"),
        "{e}"
    );
    let e = message(server_config(&empty, &pki.key));
    assert!(e.contains("empty.pem holds no PEM certificate"), "{e}");
    let e = message(server_config(&garbage, &pki.key));
    assert!(e.contains("garbage.pem is not a valid PEM file"), "{e}");
    let e = message(server_config(&pki.cert, &pki.cert));
    assert!(e.contains("cert.pem holds no PEM private key"), "{e}");
    let e = message(server_config(&pki.cert, &missing));
    assert!(
        e.contains("cannot read the private key file") && e.contains("missing.pem"),
        "{e}"
    );
    let e = message(server_config(&pki.cert, &other.key));
    assert!(e.contains("cannot be used together"), "{e}");

    let e = format!("{:#}", client_config(&empty).unwrap_err());
    assert!(e.contains("holds no PEM certificate"), "{e}");
}
