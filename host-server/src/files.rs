//! Files in and out of a session.
//!
//! **Uploads.** The page asks over the session's WebSocket (`Upload`);
//! the session's task creates a hidden partial file in the program's
//! working directory as the session's user (`access`) and answers with a
//! token. The bytes go over HTTP (`PUT /files/upload`, `http.rs`), on a
//! connection of their own, so a big file never queues in front of the
//! terminal's frames; each `PUT` says where it starts (`Content-Range`), so
//! an upload cut off (a dropped link, a lost host) goes on from what the
//! file already holds: after a failover the page names the partial file
//! to the new host, whose sandbox sees the same home. The last byte in,
//! the file gets its name without replacing any (`report (1).pdf`).
//!
//! **Downloads.** `tl-download FILE…` in the session writes an OSC 8445
//! sequence with the session's download key (from its environment, so
//! text that is merely shown, `cat`-ed, cannot ask); the host opens the
//! file as the user, inside the sandbox's tree, and offers it to the page
//! with a one-time token. The user's click posts the token in a form
//! (`POST /files/download`, never in a URL), and the browser's own
//! download manager saves the stream, with its progress.
//!
//! Neither end holds a whole file: the host writes and reads in chunks of
//! at most [`CHUNK`], the browser reads the upload from disk and writes the
//! download to disk.

pub mod access;
pub mod http;
pub mod names;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol::{ServerToClientMsg, SessionId, UploadRequest};
use serde_json::json;

use self::access::{Offered, Partial, Who};

/// Default of `--max-upload-bytes`.
pub const DEFAULT_MAX_UPLOAD: u64 = 16 << 30;
/// Default of `--max-download-bytes`.
pub const DEFAULT_MAX_DOWNLOAD: u64 = 16 << 30;
/// The most bytes the host holds of one transfer at a time.
pub const CHUNK: usize = 1 << 20;
/// An upload token lives this long after its last use.
const UPLOAD_IDLE: Duration = Duration::from_secs(3600);
/// A download token lives this long unused.
const DOWNLOAD_IDLE: Duration = Duration::from_secs(600);
/// Transfers a session may have open at once.
const PER_SESSION: usize = 16;
/// Transfers the host keeps at once.
const PER_HOST: usize = 4096;

/// The host's transfers in progress, by token.
pub struct Transfers {
    entries: Mutex<HashMap<String, Entry>>,
    pub max_upload: u64,
    pub max_download: u64,
}

enum Entry {
    Upload {
        session: SessionId,
        job: Arc<tokio::sync::Mutex<UploadJob>>,
        expires: Instant,
    },
    Download {
        session: SessionId,
        offered: Offered,
        expires: Instant,
    },
}

impl Entry {
    fn session(&self) -> SessionId {
        match self {
            Entry::Upload { session, .. } | Entry::Download { session, .. } => *session,
        }
    }

    fn expires(&self) -> Instant {
        match self {
            Entry::Upload { expires, .. } | Entry::Download { expires, .. } => *expires,
        }
    }
}

/// An upload the host has a partial file for.
pub struct UploadJob {
    pub who: Who,
    pub name: String,
    pub size: u64,
    pub partial: Partial,
}

impl Transfers {
    pub fn new(max_upload: u64, max_download: u64) -> Arc<Transfers> {
        Arc::new(Transfers {
            entries: Mutex::new(HashMap::new()),
            max_upload,
            max_download,
        })
    }

    fn insert(
        &self,
        session: SessionId,
        make: impl FnOnce(Instant) -> Entry,
    ) -> Result<String, String> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, entry| entry.expires() > now);
        let mine = entries.values().filter(|e| e.session() == session).count();
        if mine >= PER_SESSION || entries.len() >= PER_HOST {
            return Err("too many files are on their way; wait for some to finish".into());
        }
        let token = new_token();
        entries.insert(token.clone(), make(now));
        Ok(token)
    }

    /// The upload `token` names, kept alive for another while.
    pub fn upload(&self, token: &str) -> Option<Arc<tokio::sync::Mutex<UploadJob>>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get_mut(token) {
            Some(Entry::Upload { job, expires, .. }) if *expires > Instant::now() => {
                *expires = Instant::now() + UPLOAD_IDLE;
                Some(job.clone())
            }
            _ => None,
        }
    }

    /// Takes the download `token` names: it is good once.
    pub fn take_download(&self, token: &str) -> Option<Offered> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.remove(token) {
            Some(Entry::Download {
                offered, expires, ..
            }) if expires > Instant::now() => Some(offered),
            Some(other @ Entry::Upload { .. }) => {
                entries.insert(token.to_owned(), other);
                None
            }
            _ => None,
        }
    }

    pub fn forget(&self, token: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(token);
    }

    /// Forgets every transfer of `session`, which has ended here: its
    /// tokens are good no more (a partial upload stays on disk, for a
    /// request naming it to go on from).
    pub fn end_session(&self, session: SessionId) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, entry| entry.session() != session);
    }

    /// Transfers in progress, for `/metrics`-style readings and tests.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// 256 random bits, URL-safe.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new session's download key, for its program's environment.
pub fn new_download_key() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where an upload goes and how to send it: the host's answer.
struct UploadPlace {
    /// The capability for `PUT /files/upload`, good for this file on
    /// this host only.
    token: String,
    /// The directory the file goes to, as the session's programs see it.
    dir: String,
    /// The file the bytes go to until the last one is in, as the
    /// session's programs see it: what a request names to go on after a
    /// failover.
    partial: String,
    /// Bytes the host already has: the next `PUT` starts here.
    offset: u64,
}

/// How an answer reaches the client that asked (the task hands over a
/// send on that connection's channel, which never waits).
pub trait Reply: FnOnce(ServerToClientMsg) + Send + 'static {}
impl<F: FnOnce(ServerToClientMsg) + Send + 'static> Reply for F {}

/// What a session's task needs to move its files.
#[derive(Clone)]
pub struct SessionFiles {
    pub session: SessionId,
    pub transfers: Arc<Transfers>,
    pub who: Who,
    /// What `tl-download` must show to be believed.
    pub download_key: String,
}

impl SessionFiles {
    /// Answers the page's `Upload` request with `reply`, once the partial file
    /// is there (or why it cannot be). `pid` is the program's.
    pub fn upload(&self, pid: Option<u32>, request: &str, reply: impl Reply) {
        let Some(request) = UploadRequest::parse(request) else {
            tracing::info!(session = %self.session, "ignored an unreadable upload request");
            return;
        };
        let files = self.clone();
        tokio::spawn(async move {
            let id = request.id;
            let answer = match files.open_upload(pid, request).await {
                Ok(place) => json!({
                    "kind": "upload",
                    "id": id,
                    "token": place.token,
                    "dir": place.dir,
                    "partial": place.partial,
                    "offset": place.offset,
                }),
                Err(reason) => {
                    tracing::info!(session = %files.session, %reason, "upload refused");
                    json!({ "kind": "upload", "id": id, "error": reason })
                }
            };
            reply(ServerToClientMsg::Files(answer.to_string()));
        });
    }

    async fn open_upload(
        &self,
        pid: Option<u32>,
        request: UploadRequest,
    ) -> Result<UploadPlace, String> {
        let Some(pid) = pid else {
            return Err("the session's program is not running; try again once it is".into());
        };
        let name = names::safe_name(&request.name)?;
        if request.size > self.transfers.max_upload {
            return Err(format!(
                "{name} is {}; this host takes files up to {} (--max-upload-bytes)",
                names::human_size(request.size),
                names::human_size(self.transfers.max_upload)
            ));
        }
        let (size, resume) = (request.size, request.partial.clone());
        let opened_name = name.clone();
        let partial = access::as_user(self.who, Some(pid), move |place| {
            let place = place.ok_or("no place")?;
            match &resume {
                Some(path) => access::reopen_partial(place, path, &opened_name, size),
                None => access::create_partial(place, &opened_name),
            }
        })
        .await?;
        let place = UploadPlace {
            token: String::new(),
            dir: partial.dir_shown.clone(),
            partial: format!(
                "{}/{}",
                partial.dir_shown.trim_end_matches('/'),
                partial.partial
            ),
            offset: partial.len,
        };
        let job = UploadJob {
            who: self.who,
            name,
            size,
            partial,
        };
        let job = Arc::new(tokio::sync::Mutex::new(job));
        let kept = job.clone();
        let token = self
            .transfers
            .insert(self.session, move |now| Entry::Upload {
                session: self.session,
                job: kept,
                expires: now + UPLOAD_IDLE,
            });
        match token {
            Ok(token) => Ok(UploadPlace { token, ..place }),
            Err(reason) => {
                // The refused entry's closure is gone with its handle on the
                // job, so this one is the last.
                if request.partial.is_none()
                    && let Ok(job) = Arc::try_unwrap(job)
                {
                    let job = job.into_inner();
                    let _ = access::as_user(self.who, None, move |_| {
                        access::discard(&job.partial);
                        Ok(())
                    })
                    .await;
                }
                Err(reason)
            }
        }
    }

    /// A program asked (OSC 8445) to hand the user the file at `path`:
    /// offers it with `reply` if `key` is the session's and the file can be
    /// read by the user; says why not otherwise.
    pub fn download(&self, pid: Option<u32>, key: &str, path: Vec<u8>, reply: impl Reply) {
        if !constant_time_eq(key.as_bytes(), self.download_key.as_bytes()) {
            // Debug only: any output can carry one, as often as it likes.
            tracing::debug!(session = %self.session, "ignored a download request without the session's key");
            return;
        }
        let Some(pid) = pid else {
            return;
        };
        let files = self.clone();
        tokio::spawn(async move {
            let path = String::from_utf8_lossy(&path).into_owned();
            let max = files.transfers.max_download;
            let shown = path.clone();
            let opened = access::as_user(files.who, Some(pid), move |place| {
                access::open_offered(place.ok_or("no place")?, &path, max)
            })
            .await;
            let msg = match opened {
                Ok(offered) => {
                    let (name, size) = (offered.name.clone(), offered.size);
                    let session = files.session;
                    let token = files.transfers.insert(session, move |now| Entry::Download {
                        session,
                        offered,
                        expires: now + DOWNLOAD_IDLE,
                    });
                    match token {
                        Ok(token) => ServerToClientMsg::Files(
                            json!({ "kind": "download", "token": token, "name": name, "size": size })
                                .to_string(),
                        ),
                        Err(reason) => ServerToClientMsg::Notice {
                            text: format!("tl-download {shown}: {reason}"),
                        },
                    }
                }
                Err(reason) => ServerToClientMsg::Notice {
                    text: format!("tl-download: {reason}"),
                },
            };
            reply(msg);
        });
    }
}

/// Compares secrets without telling by its time how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offers an empty file to `session`'s user: the token, or why not.
    fn offer(transfers: &Transfers, session: SessionId) -> Result<String, String> {
        let file = tempfile::tempfile().unwrap();
        transfers.insert(session, |now| Entry::Download {
            session,
            offered: Offered {
                file,
                name: "a".into(),
                size: 0,
            },
            expires: now + DOWNLOAD_IDLE,
        })
    }

    #[test]
    fn download_tokens_are_good_once_and_uploads_are_not_downloads() {
        let transfers = Transfers::new(10, 10);
        let token = offer(&transfers, SessionId([1; 16])).unwrap();
        assert_eq!(token.len(), 64);
        assert!(transfers.upload(&token).is_none());
        assert!(transfers.take_download(&token).is_some());
        assert!(transfers.take_download(&token).is_none());
        assert!(transfers.is_empty());
    }

    #[test]
    fn an_ended_session_takes_its_tokens_with_it() {
        let transfers = Transfers::new(10, 10);
        let (ended, running) = (SessionId([3; 16]), SessionId([4; 16]));
        let gone = offer(&transfers, ended).unwrap();
        let kept = offer(&transfers, running).unwrap();
        transfers.end_session(ended);
        assert!(transfers.take_download(&gone).is_none());
        assert!(transfers.take_download(&kept).is_some());
    }

    #[test]
    fn a_session_holds_a_bounded_number_of_transfers() {
        let transfers = Transfers::new(10, 10);
        let session = SessionId([2; 16]);
        for _ in 0..PER_SESSION {
            offer(&transfers, session).unwrap();
        }
        assert!(offer(&transfers, session).is_err());
        assert!(offer(&transfers, SessionId([5; 16])).is_ok());
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
