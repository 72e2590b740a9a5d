//! The host's edge: hot desking, the connection cap per address, ending a
//! session on the directory's word, and HTTPS/WSS.

use std::sync::Arc;

use futures_util::SinkExt;
use protocol::{Hello, ServerToClientMsg, encode_hello};
use testkit::cert::SelfSigned;
use testkit::http::Request;
use testkit::wait_until;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{
    Client, Host, HostOptions, PATIENCE, SIZE, Socket, close_code, contains, sqlite, start,
    start_host,
};

#[tokio::test]
async fn a_second_terminal_takes_the_session_and_the_first_is_told() {
    let host = start_host().await;
    let mut first = Client::connect(&host, None).await;
    first
        .wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    first.type_text("echo desk-$((3*3))\r").await;
    first
        .wait_screen("the echo", |rows| rows.iter().any(|r| r == "desk-9"))
        .await;
    let id = first.welcome.session;

    // The same user opens the session in another browser.
    let mut second = Client::connect(&host, Some(id)).await;
    assert!(!second.welcome.created);
    assert_eq!(close_code(&mut first.socket).await, 4005, "Replaced");
    second
        .wait_screen("the same screen", |rows| rows.iter().any(|r| r == "desk-9"))
        .await;
    second.type_text("echo second-ok\r").await;
    second
        .wait_screen("the new echo", |rows| contains(rows, "second-ok"))
        .await;

    // Taking it back is one more attach, which replaces the second.
    let mut back = Client::connect(&host, Some(id)).await;
    assert_eq!(close_code(&mut second.socket).await, 4005);
    back.wait_screen("the screen", |rows| contains(rows, "second-ok"))
        .await;
    assert_eq!(host.registry.len(), 1);
}

/// Opens a WebSocket and sends alice's hello for a new session: the
/// socket once welcomed, or the close code.
async fn try_terminal(host: &Host) -> Result<Socket, u16> {
    let id = host_server::registry::new_session_id();
    let ticket = host.alice.ticket(&host.name, id, 1);
    Client::open(host, ticket, id).await.map(|c| c.socket)
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_with_4010_and_counted_out_when_gone() {
    let mut options = HostOptions::new("h-cap");
    options.max_connections_per_address = 2;
    let host = start(options).await;
    let first = try_terminal(&host).await.unwrap();
    let mut second = try_terminal(&host).await.unwrap();
    assert_eq!(try_terminal(&host).await.err(), Some(4010));

    // Closing one makes room again (the slot is given back however the
    // connection ends: here the client goes away).
    drop(first);
    let third = wait_until(
        PATIENCE,
        "the closed connection to be counted out",
        || async {
            match try_terminal(&host).await {
                Ok(socket) => Ok(Ok(socket)),
                Err(4010) => Ok(Err("refused with 4010".to_owned())),
                Err(code) => panic!("refused with {code}"),
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(try_terminal(&host).await.err(), Some(4010));

    // A connection the host refuses (a bad hello) is counted out too.
    let _ = second.close(None).await;
    drop(second);
    wait_until(
        PATIENCE,
        "room for a connection after the close",
        || async {
            let mut socket = host.socket().await;
            socket
                .send(Message::Text("not a hello".into()))
                .await
                .unwrap();
            let code = close_code(&mut socket).await;
            if code == 4010 {
                return Ok(Err("refused with 4010".to_owned()));
            }
            assert_eq!(code, 4000, "BadHello");
            Ok(Ok(()))
        },
    )
    .await
    .unwrap();
    wait_until(PATIENCE, "the refused hello to be counted out", || async {
        Ok(try_terminal(&host)
            .await
            .map_err(|code| format!("refused with {code}")))
    })
    .await
    .unwrap();
    drop(third);
}

const HOST_TOKEN: &str = "test-host-token";

/// `POST /v1/sessions/{id}/end` as the directory calls it.
async fn end(host: &Host, token: Option<&str>, id: &str) -> Result<(), u16> {
    let mut request = Request::local("POST", host.port, &format!("/v1/sessions/{id}/end"));
    if let Some(token) = token {
        request = request.header("authorization", &format!("Bearer {token}"));
    }
    match request.send().await.unwrap().status {
        204 => Ok(()),
        status => Err(status),
    }
}

#[tokio::test]
async fn the_directory_ends_a_session_with_the_host_token() {
    let mut options = HostOptions::new("h-end");
    options.host_token = Some(HOST_TOKEN.into());
    let host = start(options).await;
    let mut client = Client::connect(&host, None).await;
    client
        .wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    let id = client.welcome.session.to_string();

    assert_eq!(end(&host, None, &id).await, Err(401));
    assert_eq!(end(&host, Some("test-host-tokeN"), &id).await, Err(401));
    let unknown = host_server::registry::new_session_id().to_string();
    assert_eq!(end(&host, Some(HOST_TOKEN), &unknown).await, Err(404));
    assert_eq!(end(&host, Some(HOST_TOKEN), "not-an-id").await, Err(404));
    assert!(host.registry.get(&client.welcome.session).is_some());

    assert_eq!(end(&host, Some(HOST_TOKEN), &id).await, Ok(()));
    assert_eq!(close_code(&mut client.socket).await, 4004, "SessionEnded");
    let session = client.welcome.session;
    host.wait_session_gone(session, "the session to end").await;
}

/// Every host holds the hosts' token, so the token alone must not end a
/// session: the host ends one only once the store says it is over.
#[tokio::test]
async fn the_token_alone_ends_no_session_the_store_says_is_live() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    let mut options = HostOptions::new("h-end-store").store(host_server::registry::StoreConfig {
        store: store.clone(),
        home_root: None,
        adopt: false,
    });
    options.host_token = Some(HOST_TOKEN.into());
    let host = start(options).await;
    let mut client = Client::connect(&host, None).await;
    client
        .wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    let id = client.welcome.session.to_string();

    // Another host (or anyone with the token) asking: refused, still live.
    assert_eq!(end(&host, Some(HOST_TOKEN), &id).await, Err(409));
    assert!(host.registry.get(&client.welcome.session).is_some());
    // The directory ends it in the store first; then the request ends it.
    store.end_session(&id).await.unwrap();
    assert_eq!(end(&host, Some(HOST_TOKEN), &id).await, Ok(()));
    assert_eq!(close_code(&mut client.socket).await, 4004, "SessionEnded");
}

#[tokio::test]
async fn without_a_host_token_nothing_is_ended_on_request() {
    let host = start_host().await;
    let client = Client::connect(&host, None).await;
    let id = client.welcome.session.to_string();
    assert_eq!(end(&host, Some(HOST_TOKEN), &id).await, Err(401));
    assert!(host.registry.get(&client.welcome.session).is_some());
}

#[tokio::test]
async fn health_and_metrics_carry_the_security_headers_and_no_page_is_served() {
    let host = start_host().await;
    for (path, status) in [
        ("/healthz", 200),
        ("/metrics", 200),
        ("/", 404),
        ("/index.html", 404),
    ] {
        let answer = Request::local("GET", host.port, path).send().await.unwrap();
        assert_eq!(answer.status, status, "{path}: {answer:?}");
        let headers: String = answer
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {}\n", value.to_ascii_lowercase()))
            .collect();
        assert!(
            headers.contains("content-security-policy: default-src 'none'; frame-ancestors 'none'"),
            "{path}: {headers}"
        );
        assert!(
            headers.contains("x-content-type-options: nosniff"),
            "{path}"
        );
        assert!(headers.contains("x-frame-options: deny"), "{path}");
    }
}

#[tokio::test]
async fn a_tls_host_serves_wss_and_its_health_to_an_https_client() {
    let pki = SelfSigned::for_names(&["localhost"]).unwrap();
    let mut options = HostOptions::new("h-tls");
    options.tls = Some(auth::tls::server_config(&pki.cert, &pki.key).unwrap());
    let host = start(options).await;
    let trust = auth::tls::client_config(&pki.cert).unwrap();

    // The host's health over https, checked against the CA.
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", host.port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(trust.clone())
        .connect(name, tcp)
        .await
        .unwrap();
    let answer = Request::new("GET", &format!("https://localhost:{}/healthz", host.port))
        .unwrap()
        .send_over(tls)
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let health: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(health["host"], "h-tls");
    // A client that does not trust the CA gets no answer.
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", host.port))
        .await
        .unwrap();
    let empty = rustls::RootCertStore::empty();
    let untrusting = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(empty)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    assert!(
        tokio_rustls::TlsConnector::from(Arc::new(untrusting))
            .connect(name, tcp)
            .await
            .is_err(),
        "a certificate from an unknown CA was accepted"
    );

    // A terminal over WSS.
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", host.port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(trust)
        .connect(name, tcp)
        .await
        .unwrap();
    let mut request = format!("wss://localhost:{}/ws", host.port)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "origin",
        format!("https://127.0.0.1:{}", host.port).parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::client_async(request, tls).await.unwrap();
    let id = host_server::registry::new_session_id();
    let hello = Hello {
        ticket: host.alice.ticket(&host.name, id, 1),
        session: id,
        size: SIZE,
    };
    socket
        .send(Message::Binary(encode_hello(&hello).into()))
        .await
        .unwrap();
    let welcome = loop {
        use futures_util::StreamExt;
        match socket.next().await {
            Some(Ok(Message::Binary(bytes))) => match protocol::decode_server(&bytes).unwrap() {
                ServerToClientMsg::Welcome(welcome) => break welcome,
                other => panic!("expected a welcome, got {other:?}"),
            },
            Some(Ok(_)) => continue,
            other => panic!("no welcome over wss: {other:?}"),
        }
    };
    assert_eq!(welcome.session, id);
    assert!(welcome.created);
}

/// The file routes: nothing without a token from the session's socket, a
/// download never for a foreign page, and CORS only for the allowed
/// origins; every answer with the host's headers.
#[tokio::test]
async fn file_routes_want_a_token_and_grant_only_the_pages_origin() {
    let host = start_host().await;
    let page = format!("http://127.0.0.1:{}", host.port);
    let upload = Request::local("PUT", host.port, "/files/upload")
        .header("Authorization", "Bearer 00")
        .header("Content-Range", "bytes 0-0/1")
        .body("application/octet-stream", b"x".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status, 404, "{upload:?}");
    assert_eq!(upload.header("x-content-type-options"), Some("nosniff"));
    let unknown = Request::local("POST", host.port, "/files/download")
        .header("Origin", &page)
        .form("token=00")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status, 410, "{unknown:?}");
    assert!(
        unknown.body.contains("tl-download again"),
        "{}",
        unknown.body
    );
    let foreign = Request::local("POST", host.port, "/files/download")
        .header("Origin", "https://evil.example")
        .form("token=00")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status, 403, "{foreign:?}");
    for (origin, granted) in [(page.as_str(), true), ("https://evil.example", false)] {
        let preflight = Request::local("OPTIONS", host.port, "/files/upload")
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "PUT")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-range",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            preflight.header("access-control-allow-origin") == Some(origin),
            granted,
            "{origin}: {preflight:?}"
        );
    }
}
