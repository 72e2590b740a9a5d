//! A fault-injecting TCP proxy on loopback, for outage tests.
//!
//! These machines have no `tc netem`, and stopping a shared PostgreSQL or
//! killing a live host would not show what a broken path does, so a test
//! puts this proxy between a client and the service it depends on and
//! breaks the path instead: it can cut every live connection (a Wi-Fi
//! blip), refuse new ones (accept and reset at once), black-hole them
//! (accept and never answer), stall live ones (keep them open but forward
//! nothing), point new connections elsewhere, delay every byte by a fixed
//! time each way (a slow link: a satellite, a phone on the other side of
//! the world), and go back to plain forwarding.
//!
//! Everything is bounded: it listens and connects on loopback only, holds
//! at most [`MAX_CONNECTIONS`] connections (more are reset), gives a
//! connection to the target [`CONNECT_TIMEOUT`], and copies through fixed
//! buffers. Dropping the proxy closes every connection it holds.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Connections held at once (forwarded or black-holed); beyond this new
/// ones are reset, so a runaway client cannot exhaust the test machine.
pub const MAX_CONNECTIONS: usize = 1024;

/// How long the proxy tries to reach the target for one connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes copied per read, per direction.
const BUFFER: usize = 16 * 1024;

/// What happens to connections that arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewConnections {
    /// Connect them to the target and copy both ways.
    Forward,
    /// Accept and reset at once: the client sees its connection fail.
    Refuse,
    /// Accept and never answer nor forward: the client waits, as behind a
    /// silent partition, until it gives up or the proxy is restored (which
    /// drops these connections).
    BlackHole,
}

#[derive(Clone, Copy, Debug)]
struct Faults {
    new: NewConnections,
    /// Where new connections go; `None` resets them, like a port nobody
    /// listens on.
    target: Option<SocketAddr>,
    /// Live connections keep their sockets but forward nothing.
    stalled: bool,
    /// Bumped to close every connection open at that moment.
    generation: u64,
    /// Bumped to close the black-holed connections only.
    holes: u64,
    /// How long every byte takes through the proxy, each way.
    delay: Duration,
}

#[derive(Default)]
struct Counters {
    live: AtomicUsize,
    accepted: AtomicU64,
}

/// A running proxy; see the module comment.
pub struct FaultProxy {
    /// The loopback port clients connect to.
    pub port: u16,
    faults: watch::Sender<Faults>,
    counters: Arc<Counters>,
    accept_task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts forwarding a fresh loopback port to `target`, which must be a
    /// loopback address too.
    pub async fn start(target: SocketAddr) -> Result<FaultProxy> {
        let proxy = Self::start_without_target().await?;
        proxy.retarget(target)?;
        Ok(proxy)
    }

    /// Starts listening before the target is known (a host whose public url
    /// must name the proxy before the host starts): connections are reset
    /// until [`FaultProxy::retarget`].
    pub async fn start_without_target() -> Result<FaultProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("binding the fault proxy")?;
        let port = listener.local_addr()?.port();
        let (faults, _) = watch::channel(Faults {
            new: NewConnections::Forward,
            target: None,
            stalled: false,
            generation: 0,
            holes: 0,
            delay: Duration::ZERO,
        });
        let counters = Arc::new(Counters::default());
        let accept_task = tokio::spawn(accept_loop(listener, faults.subscribe(), counters.clone()));
        Ok(FaultProxy {
            port,
            faults,
            counters,
            accept_task,
        })
    }

    /// `http://127.0.0.1:PORT`: what a server behind the proxy registers
    /// as its url.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends connections that arrive from now on to `target` (loopback
    /// only); open ones stay where they are.
    pub fn retarget(&self, target: SocketAddr) -> Result<()> {
        ensure!(
            target.ip().is_loopback(),
            "the fault proxy only forwards to loopback, not {target}"
        );
        self.faults.send_modify(|f| f.target = Some(target));
        Ok(())
    }

    /// [`FaultProxy::retarget`] to a loopback port.
    pub fn retarget_port(&self, port: u16) -> Result<()> {
        self.retarget(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    }

    /// Closes every connection open now (forwarded, stalled or
    /// black-holed) and returns how many there were; what arrives later is
    /// treated as the mode says.
    pub fn cut_all(&self) -> usize {
        let open = self.live_connections();
        self.faults.send_modify(|f| f.generation += 1);
        open
    }

    /// Decides what happens to connections that arrive from now on.
    pub fn set_new_connections(&self, new: NewConnections) {
        self.faults.send_modify(|f| f.new = new);
    }

    /// A hard outage: every live connection is cut and new ones are reset.
    pub fn fail_refusing(&self) {
        self.faults.send_modify(|f| {
            f.new = NewConnections::Refuse;
            f.generation += 1;
        });
    }

    /// A silent outage: every live connection is cut and new ones hang.
    pub fn fail_black_holing(&self) {
        self.faults.send_modify(|f| {
            f.new = NewConnections::BlackHole;
            f.generation += 1;
        });
    }

    /// Live connections stop forwarding but stay open, like a network that
    /// silently drops everything on established paths.
    pub fn stall(&self) {
        self.faults.send_modify(|f| f.stalled = true);
    }

    /// Delays every byte read from now on by `each_way` before it is
    /// passed on, in both directions and in order, as a link with that
    /// one-way latency does (its bandwidth stays the loopback's).
    pub fn set_delay(&self, each_way: Duration) {
        self.faults.send_modify(|f| f.delay = each_way);
    }

    /// Back to plain forwarding (a delay stays). Black-holed connections are dropped (their
    /// clients would never recover them), stalled ones resume.
    pub fn restore(&self) {
        self.faults.send_modify(|f| {
            f.new = NewConnections::Forward;
            f.stalled = false;
            f.holes += 1;
        });
    }

    /// Connections held right now.
    pub fn live_connections(&self) -> usize {
        self.counters.live.load(Ordering::Relaxed)
    }

    /// Connections accepted since the start, whatever happened to them.
    pub fn accepted_total(&self) -> u64 {
        self.counters.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Connection tasks end when the sender goes away (see `cut`).
        self.accept_task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    faults: watch::Receiver<Faults>,
    counters: Arc<Counters>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        let now = *faults.borrow();
        let target = match (now.new, now.target) {
            (NewConnections::Refuse, _) | (NewConnections::Forward, None) => None,
            (_, target) => Some(target),
        };
        if target.is_none() || counters.live.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            reset(client);
            continue;
        }
        counters.live.fetch_add(1, Ordering::Relaxed);
        let counters = counters.clone();
        let mut faults = faults.clone();
        tokio::spawn(async move {
            match (now.new, now.target) {
                (NewConnections::Forward, Some(target)) => {
                    forward(client, target, faults, now.generation).await;
                }
                _ => {
                    // Hold the socket, unread, until it is cut or restored.
                    let _ = faults
                        .wait_for(|f| f.generation != now.generation || f.holes != now.holes)
                        .await;
                    reset(client);
                }
            }
            counters.live.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Closes with a reset, so the peer learns at once rather than at its next
/// write.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Resolves when the connections of `generation` are to be closed, or the
/// proxy is gone.
async fn cut(faults: &mut watch::Receiver<Faults>, generation: u64) {
    let _ = faults.wait_for(|f| f.generation != generation).await;
}

async fn forward(
    client: TcpStream,
    target: SocketAddr,
    mut faults: watch::Receiver<Faults>,
    generation: u64,
) {
    let upstream = tokio::select! {
        connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)) => connected,
        _ = cut(&mut faults, generation) => {
            reset(client);
            return;
        }
    };
    let Ok(Ok(upstream)) = upstream else {
        reset(client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let up = pump(client_read, upstream_write, faults.clone());
    let down = pump(upstream_read, client_write, faults.clone());
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        _ = cut(&mut faults, generation) => {}
    }
    // Both halves of both sockets are dropped here, which closes them.
}

/// Chunks read and not yet written, per direction: what a delayed link
/// holds in flight before the reader waits.
const IN_FLIGHT: usize = 256;

/// Copies one direction until end of file or an error: each chunk read is
/// written once the delay has passed since it was read, and held back
/// while the proxy is stalled.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    faults: watch::Receiver<Faults>,
) {
    let (chunks, mut in_flight) = tokio::sync::mpsc::channel(IN_FLIGHT);
    let delays = faults.clone();
    let read = async move {
        let mut buf = vec![0u8; BUFFER];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let due = tokio::time::Instant::now() + delays.borrow().delay;
            if chunks.send((due, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
        // Dropping the sender lets the writer finish what is in flight.
    };
    let write = async move {
        let mut faults = faults;
        while let Some((due, chunk)) = in_flight.recv().await {
            tokio::time::sleep_until(due).await;
            if faults.wait_for(|f| !f.stalled).await.is_err() {
                return;
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback; returns its address.
    async fn echo_server() -> Result<SocketAddr> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        Ok(addr)
    }

    /// Writes `text` and reads the echo, or reports what happened instead
    /// within `wait`.
    async fn round_trip(stream: &mut TcpStream, text: &[u8], wait: Duration) -> Result<Vec<u8>> {
        stream.write_all(text).await?;
        let mut got = vec![0u8; text.len()];
        tokio::time::timeout(wait, stream.read_exact(&mut got))
            .await
            .context("no answer in time")??;
        Ok(got)
    }

    async fn connect(proxy: &FaultProxy) -> Result<TcpStream> {
        Ok(TcpStream::connect((Ipv4Addr::LOCALHOST, proxy.port)).await?)
    }

    /// Whether the connection ends (end of file or reset) within `wait`
    /// instead of answering.
    async fn ends(stream: &mut TcpStream, wait: Duration) -> Result<bool> {
        let mut buf = [0u8; 8];
        let after = tokio::time::timeout(wait, async {
            let _ = stream.write_all(b"x").await;
            stream.read(&mut buf).await
        })
        .await
        .context("the connection stayed open")?;
        Ok(matches!(after, Ok(0) | Err(_)))
    }

    const PATIENCE: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn forwards_cuts_refuses_and_restores() -> Result<()> {
        let proxy = FaultProxy::start(echo_server().await?).await?;
        let mut live = connect(&proxy).await?;
        assert_eq!(round_trip(&mut live, b"one", PATIENCE).await?, b"one");

        proxy.fail_refusing();
        assert!(
            ends(&mut live, PATIENCE).await?,
            "the cut connection answered"
        );
        let mut refused = connect(&proxy).await?;
        assert!(
            ends(&mut refused, PATIENCE).await?,
            "a refused one answered"
        );

        proxy.restore();
        let mut again = connect(&proxy).await?;
        assert_eq!(round_trip(&mut again, b"two", PATIENCE).await?, b"two");
        Ok(())
    }

    #[tokio::test]
    async fn cuts_count_the_connections_they_end() -> Result<()> {
        let proxy = FaultProxy::start(echo_server().await?).await?;
        let mut first = connect(&proxy).await?;
        let mut second = connect(&proxy).await?;
        assert_eq!(round_trip(&mut first, b"a", PATIENCE).await?, b"a");
        assert_eq!(round_trip(&mut second, b"b", PATIENCE).await?, b"b");
        assert_eq!(proxy.cut_all(), 2);
        assert!(ends(&mut first, PATIENCE).await?);
        assert!(ends(&mut second, PATIENCE).await?);
        // New connections are forwarded as before.
        let mut third = connect(&proxy).await?;
        assert_eq!(round_trip(&mut third, b"c", PATIENCE).await?, b"c");
        assert_eq!(proxy.accepted_total(), 3);
        Ok(())
    }

    #[tokio::test]
    async fn black_holes_and_stalls_until_restored() -> Result<()> {
        let proxy = FaultProxy::start(echo_server().await?).await?;
        let mut stalled = connect(&proxy).await?;
        assert_eq!(round_trip(&mut stalled, b"a", PATIENCE).await?, b"a");

        proxy.stall();
        stalled.write_all(b"b").await?;
        proxy.set_new_connections(NewConnections::BlackHole);
        let mut hole = connect(&proxy).await?;
        hole.write_all(b"c").await?;
        // Nothing comes back while the faults last; a short look suffices
        // because a forwarding proxy answers in well under a millisecond.
        let mut buf = [0u8; 1];
        let look = Duration::from_millis(300);
        assert!(
            tokio::time::timeout(look, stalled.read(&mut buf))
                .await
                .is_err()
        );
        assert!(
            tokio::time::timeout(look, hole.read(&mut buf))
                .await
                .is_err()
        );
        assert_eq!(proxy.live_connections(), 2);

        proxy.restore();
        // The stalled connection delivers what it held back; the
        // black-holed one is dropped.
        let mut got = [0u8; 1];
        tokio::time::timeout(PATIENCE, stalled.read_exact(&mut got)).await??;
        assert_eq!(&got, b"b");
        let dropped = tokio::time::timeout(PATIENCE, hole.read(&mut buf)).await?;
        assert!(matches!(dropped, Ok(0) | Err(_)), "{dropped:?}");
        Ok(())
    }

    #[tokio::test]
    async fn resets_until_given_a_target_then_follows_retargets() -> Result<()> {
        let proxy = FaultProxy::start_without_target().await?;
        let mut early = connect(&proxy).await?;
        assert!(ends(&mut early, PATIENCE).await?, "forwarded to nowhere");

        let first = echo_server().await?;
        proxy.retarget(first)?;
        let mut to_first = connect(&proxy).await?;
        assert_eq!(round_trip(&mut to_first, b"1", PATIENCE).await?, b"1");

        // A server that says who it is, to tell where connections went.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let second = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(b"2").await;
            }
        });
        proxy.retarget_port(second.port())?;
        let mut to_second = connect(&proxy).await?;
        let mut got = [0u8; 1];
        tokio::time::timeout(PATIENCE, to_second.read_exact(&mut got)).await??;
        assert_eq!(&got, b"2");
        // The connection opened before the retarget still reaches the first.
        assert_eq!(round_trip(&mut to_first, b"3", PATIENCE).await?, b"3");
        Ok(())
    }

    #[tokio::test]
    async fn a_delay_holds_every_byte_each_way_and_keeps_the_order() -> Result<()> {
        let proxy = FaultProxy::start(echo_server().await?).await?;
        let each_way = Duration::from_millis(150);
        proxy.set_delay(each_way);
        let mut stream = connect(&proxy).await?;
        let started = std::time::Instant::now();
        stream.write_all(b"one").await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
        stream.write_all(b"two").await?;
        let mut got = [0u8; 6];
        tokio::time::timeout(PATIENCE, stream.read_exact(&mut got)).await??;
        assert_eq!(&got, b"onetwo");
        // Through the proxy twice: out to the echo and back.
        assert!(started.elapsed() >= 2 * each_way, "{:?}", started.elapsed());
        proxy.set_delay(Duration::ZERO);
        assert_eq!(round_trip(&mut stream, b"3", PATIENCE).await?, b"3");
        Ok(())
    }

    #[tokio::test]
    async fn refuses_to_forward_off_loopback() {
        let outside = SocketAddr::from(([192, 0, 2, 1], 5432));
        assert!(FaultProxy::start(outside).await.is_err());
    }
}
