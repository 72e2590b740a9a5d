//! The host's control socket: a Unix socket through which a process on the
//! same machine, under the host's own uid, asks it to drain and waits until
//! the drain is done. `host-server drain` is that process; Kubernetes runs
//! it as the host container's `preStop` hook (infra/k8s/hosts.yaml), so a
//! pod's sessions are persisted and sent on before the pod is stopped, and
//! the hook's end says when that happened.
//!
//! The drain is the very one SIGTERM starts (`crate::drain`): it belongs to
//! this process and ends with it. The process goes on serving afterwards
//! (its `/healthz` says `draining`, it takes no session) until the signal
//! that follows the hook stops it, which then has nothing left to do.
//!
//! The socket is opt-in (`--control-socket`): tests run several hosts
//! under one name on one machine, and a default path would be shared. Only
//! the host's uid may use it, checked on every connection by the peer's
//! credentials (the file's mode 0600 is a second lock). Sessions never see
//! it: a sandbox has a `/run` and a `/tmp` of its own.
//!
//! The exchange is one line each way: `drain SECONDS` (how long the asker
//! waits for the sessions to leave), answered `drained` or `not drained:
//! ...` with what is left; anything else is answered `error: ...`.

use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::registry::Registry;

/// Longest request line accepted: `drain` and a number.
const MAX_REQUEST: u64 = 64;

/// Longest a drain may be asked to wait; beyond it Kubernetes' grace
/// period would have ended long before.
const MAX_DRAIN_WAIT: Duration = Duration::from_secs(3600);

/// Binds the control socket at `path`, mode 0600. A socket file left by a
/// host that is gone is replaced; one a live host answers on is not.
pub async fn bind(path: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::other(format!(
                "{} exists and is not a socket; remove it or give another --control-socket",
                path.display()
            )));
        }
        if UnixStream::connect(path).await.is_ok() {
            return Err(io::Error::other(format!(
                "another process serves the control socket {}; give this host another --control-socket",
                path.display()
            )));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Answers control requests until the task is dropped. `drain` starts the
/// shutdown drain (or joins one under way) and completes when it has.
pub async fn serve<D, F>(listener: UnixListener, registry: Arc<Registry>, drain: D)
where
    D: Fn() -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send,
{
    let owner = rustix::process::geteuid().as_raw();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "control socket: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let registry = registry.clone();
        let drain = drain.clone();
        tokio::spawn(async move {
            if let Err(error) = answer(stream, owner, &registry, drain).await {
                tracing::warn!(%error, "control socket: a request failed");
            }
        });
    }
}

async fn answer<D, F>(
    stream: UnixStream,
    owner: u32,
    registry: &Registry,
    drain: D,
) -> io::Result<()>
where
    D: Fn() -> F,
    F: Future<Output = ()>,
{
    let peer = stream.peer_cred()?.uid();
    let (read, mut write) = stream.into_split();
    if peer != owner {
        tracing::warn!(peer, "control socket: refused a process of another uid");
        let refusal = format!("error: only uid {owner} may control this host\n");
        return write.write_all(refusal.as_bytes()).await;
    }
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST));
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request within 10 s"))??;
    let reply = match parse_request(&line) {
        Ok(patience) => {
            tracing::info!(
                sessions = registry.len(),
                "drain asked for on the control socket (a preStop hook, say)"
            );
            drain().await;
            let deadline = tokio::time::Instant::now() + patience;
            while !registry.is_empty() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            match registry.len() {
                0 => "drained\n".to_string(),
                left => format!(
                    "not drained: {left} sessions still persisting after {}s\n",
                    patience.as_secs()
                ),
            }
        }
        Err(why) => format!("error: {why}\n"),
    };
    write.write_all(reply.as_bytes()).await
}

/// How long `drain SECONDS` may wait for the sessions to leave.
fn parse_request(line: &str) -> Result<Duration, String> {
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("drain"), Some(seconds), None) => seconds
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
            .filter(|wait| *wait <= MAX_DRAIN_WAIT)
            .ok_or_else(|| format!("{seconds:?} is not a number of seconds up to 3600")),
        _ => Err(format!(
            "unknown request {:?}: the only one is `drain SECONDS`",
            line.trim_end()
        )),
    }
}

/// The outcome of `host-server drain`.
#[derive(Debug, PartialEq, Eq)]
pub enum DrainOutcome {
    /// Every session persisted and left.
    Drained,
    /// The host answered something else: what it said.
    NotDrained(String),
}

/// Asks the host serving the control socket at `path` to drain and waits
/// until it has (at most `patience` for the sessions, plus the drain's own
/// bounded steps).
pub async fn request_drain(path: &Path, patience: Duration) -> Result<DrainOutcome, String> {
    let mut stream = UnixStream::connect(path).await.map_err(|error| {
        format!(
            "no host answers on {} ({error}); is `host-server serve` running with this --control-socket?",
            path.display()
        )
    })?;
    let request = format!("drain {}\n", patience.as_secs());
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|error| format!("writing to {}: {error}", path.display()))?;
    // The drain's own steps are bounded (the store's shutdown renewal, the
    // sessions' hang-up): give them a minute beyond the patience asked for.
    let mut reply = String::new();
    let mut reader = BufReader::new(stream.take(4096));
    tokio::time::timeout(
        patience + Duration::from_secs(60),
        reader.read_line(&mut reply),
    )
    .await
    .map_err(|_| format!("the host on {} did not answer in time", path.display()))?
    .map_err(|error| format!("reading from {}: {error}", path.display()))?;
    Ok(match reply.trim_end() {
        "drained" => DrainOutcome::Drained,
        "" => DrainOutcome::NotDrained("the host closed the socket without an answer".into()),
        other => DrainOutcome::NotDrained(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_drain_and_a_bounded_number_of_seconds() {
        assert_eq!(parse_request("drain 50\n"), Ok(Duration::from_secs(50)));
        assert_eq!(parse_request("drain 0"), Ok(Duration::ZERO));
        for bad in [
            "",
            "drain",
            "drain x",
            "drain 3601",
            "drain 5 now",
            "stop 5",
        ] {
            assert!(parse_request(bad).is_err(), "{bad:?}");
        }
    }
}
