//! HTTPS and WSS without a proxy in front.
//!
//! rustls is a memory-safe TLS implementation, so the code that parses bytes
//! from anyone on the network is not C. It uses the `ring` provider, which
//! builds with a C compiler alone; the default `aws-lc-rs` provider needs
//! cmake and NASM, which these machines do not have. We serve HTTP/1.1 only
//! (WebSocket upgrades need it), so ALPN offers nothing else.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::{self, PemObject as _};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in flight at once. Beyond it the listener stops accepting
/// until some finish, so a flood of silent connections costs bounded memory
/// (each holds a socket and a rustls state) instead of exhausting the host.
const MAX_PENDING_HANDSHAKES: usize = 1024;

const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read the certificate file {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a valid PEM file", path.display()))?;
    if certs.is_empty() {
        bail!(
            "{} holds no PEM certificate (a -----BEGIN CERTIFICATE----- block)",
            path.display()
        );
    }
    Ok(certs)
}

/// Loads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8,
/// PKCS#1 or SEC1; the two may share one file) into a server configuration
/// that offers ALPN "http/1.1" only.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let certs = read_certificates(cert)?;
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
        pem::Error::NoItemsFound => anyhow!(
            "{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
            key.display()
        ),
        other => anyhow!(
            "cannot read the private key file {}: {other}",
            key.display()
        ),
    })?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("the TLS provider supports no safe protocol version")?
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .with_context(|| {
            format!(
                "the certificate in {} and the key in {} cannot be used together",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration that trusts exactly the PEM CA certificates in
/// `ca` (a self-signed server certificate is its own CA).
pub fn client_config(ca: &Path) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in read_certificates(ca)? {
        roots
            .add(cert)
            .with_context(|| format!("{} holds a certificate rustls cannot use", ca.display()))?;
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("the TLS provider supports no safe protocol version")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(Arc::new(config))
}

type Handshake = Option<(TlsStream<TcpStream>, SocketAddr)>;

/// An `axum::serve::Listener` for HTTPS. Each handshake runs in its own task
/// with a `HANDSHAKE_TIMEOUT`, so a client that connects and says nothing
/// never holds up anyone else; finished streams are yielded in the order
/// they finish. `Addr` is the peer's `SocketAddr`.
///
/// axum hands `ConnectInfo<SocketAddr>` to handlers only for its own
/// `TcpListener` and for a `TapIo` (and the orphan rule stops this crate
/// from adding a third), so wrap it in a tap that does nothing:
///
/// ```no_run
/// # async fn run(tcp: tokio::net::TcpListener, config: std::sync::Arc<rustls::ServerConfig>, app: axum::Router) {
/// use axum::serve::ListenerExt as _;
/// let listener = auth::tls::TlsListener::new(tcp, config).tap_io(|_| {});
/// let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
/// axum::serve(listener, service).await.unwrap();
/// # }
/// ```
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    /// Tasks owned by the listener: dropping it aborts handshakes in flight.
    handshakes: JoinSet<Handshake>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> TlsListener {
        TlsListener::with_handshake_timeout(tcp, config, HANDSHAKE_TIMEOUT)
    }

    fn with_handshake_timeout(
        tcp: TcpListener,
        config: Arc<ServerConfig>,
        handshake_timeout: Duration,
    ) -> TlsListener {
        TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(config),
            handshake_timeout,
            handshakes: JoinSet::new(),
        }
    }

    fn start_handshake(&mut self, stream: TcpStream, peer: SocketAddr) {
        // Keystrokes are tiny writes that must not wait for Nagle.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, "cannot set TCP_NODELAY: {e}");
        }
        let acceptor = self.acceptor.clone();
        let timeout = self.handshake_timeout;
        self.handshakes.spawn(async move {
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => Some((tls, peer)),
                // Scanners and clients that distrust the certificate end
                // up here all day long; that is not worth a warning.
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    None
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out after {timeout:?}");
                    None
                }
            }
        });
    }
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local_addr", &self.tcp.local_addr().ok())
            .field("handshakes_in_flight", &self.handshakes.len())
            .finish_non_exhaustive()
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    // Cancel-safe, as axum's graceful shutdown needs: both awaited futures
    // are, and every other piece of state lives in `self`.
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let may_accept = self.handshakes.len() < MAX_PENDING_HANDSHAKES;
            tokio::select! {
                // Finished handshakes first: they are clients already waiting.
                biased;
                Some(finished) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(connection)) = finished {
                        return connection;
                    }
                }
                accepted = self.tcp.accept(), if may_accept => match accepted {
                    Ok((stream, peer)) => self.start_handshake(stream, peer),
                    Err(e) => handle_accept_error(e).await,
                },
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// What axum's own TCP listener does: a connection that died before it was
/// accepted is nobody's problem; anything else (out of file descriptors) is
/// logged and retried after a pause instead of spinning.
async fn handle_accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!("cannot accept a connection: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests;
