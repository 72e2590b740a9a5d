//! The messages, named by the direction they travel.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::lines::CompressedLines;
use crate::screen::{Frame, Size};

/// A session's identity: 128 random bits, shown as 32 hex digits.
///
/// Knowing an id grants nothing by itself: a connection is authorised by
/// the ticket in its hello, which names the one session it may reach.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionId(pub [u8; 16]);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

impl FromStr for SessionId {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        // `from_str_radix` alone would also take a sign: "+a" is 10.
        if bytes.len() != 32 || !bytes.iter().all(u8::is_ascii_hexdigit) {
            return Err("a session id is 32 hex digits");
        }
        let mut out = [0u8; 16];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hex = core::str::from_utf8(pair).map_err(|_| "a session id is 32 hex digits")?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| "a session id is 32 hex digits")?;
        }
        Ok(SessionId(out))
    }
}

/// The first message of every connection, sent by the client.
///
/// It travels behind the `MAGIC` and version prefix (see `encode_hello`) so a
/// host can tell a version mismatch from garbage before parsing the body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The directory-signed ticket (see the `auth` crate): user, session,
    /// host and epoch, valid for a minute at most. Never put in a URL or a
    /// log line.
    pub ticket: String,
    /// The session to attach to, or to start when the ticket says it is
    /// new. Must be the ticket's session; the socket reaches no other.
    pub session: SessionId,
    /// The client's terminal size.
    pub size: Size,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientToServerMsg {
    /// Bytes for the program, numbered per session from 1 so that a resend
    /// after a reconnect is applied exactly once.
    Input {
        seq: u64,
        data: Vec<u8>,
    },
    Resize(Size),
    /// The client has applied every frame up to and including `frame`.
    Ack {
        frame: u64,
    },
    /// Heartbeat and round-trip measurement; answered with `Pong`.
    Ping {
        id: u32,
    },
    /// Asks for the scrollback lines numbered below `before` and from
    /// `from` on (see [`HistorySpan`]): `from` is what the client already
    /// holds further back, 0 if nothing. The host answers with exactly one
    /// `History` block that ends at `before`, at most `HISTORY_FETCH_LINES`
    /// lines long, starting no earlier than `from`, and empty when it holds
    /// nothing below `before`. Clients keep one fetch in flight, and only
    /// once the screen is live: history never travels in front of the
    /// prompt.
    FetchHistory {
        before: u64,
        from: u64,
    },
    /// Asks to upload a file into the program's working directory
    /// (version 5): an [`UploadRequest`] in its text form, which the
    /// page's files module writes and the client only carries. The host
    /// answers with `Files`; the bytes themselves go over HTTP (`PUT
    /// /files/upload`), so a big file never queues in front of the
    /// terminal's frames.
    Upload(String),
}

/// A file the page wants to send, or to go on sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRequest {
    /// The page's number for the file, repeated in the answer.
    pub id: u32,
    /// The file's name as the user's machine has it; the host keeps only
    /// a safe last component of it.
    pub name: String,
    pub size: u64,
    /// To go on with an upload a host (this one or a lost one) began: the
    /// `partial` path of its earlier answer.
    pub partial: Option<String>,
}

impl UploadRequest {
    /// The text form: `id`, `size`, `partial` (empty for a new upload)
    /// and the name, separated by NUL, which no file name or path holds.
    pub fn to_text(&self) -> String {
        let partial = self.partial.as_deref().unwrap_or("");
        format!("{}\0{}\0{partial}\0{}", self.id, self.size, self.name)
    }

    /// Reads the text form; `None` for anything else.
    pub fn parse(text: &str) -> Option<UploadRequest> {
        let mut fields = text.splitn(4, '\0');
        let id = fields.next()?.parse().ok()?;
        let size = fields.next()?.parse().ok()?;
        let partial = fields.next()?;
        let name = fields.next()?;
        Some(UploadRequest {
            id,
            name: name.to_owned(),
            size,
            partial: (!partial.is_empty()).then(|| partial.to_owned()),
        })
    }
}

/// The host's answer to a valid hello.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub session: SessionId,
    /// The serving host's name, shown to the user.
    pub host: String,
    /// Ownership epoch of the session on this host.
    pub epoch: u64,
    /// True when this connection started the session, false on a reattach.
    pub created: bool,
    /// Highest input sequence number the session has applied; the client
    /// resends anything newer it still holds and numbers new input after it.
    pub input_seq: u64,
    /// The scrollback the host holds. None of it is sent on attach: the
    /// client keeps what it already has and fetches the rest.
    pub history: HistorySpan,
    /// Whose terminal this is to the client (version 7).
    pub role: Role,
}

/// What a connection may do with the session it attached to (version 7).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// The session's user: types, resizes, uploads.
    #[default]
    Owner,
    /// Someone the owner shared the session with: sees it live, at the
    /// owner's size, and never resizes it; input reaches the program only
    /// with `may_type`.
    Viewer { owner: String, may_type: bool },
}

impl Role {
    pub fn is_viewer(&self) -> bool {
        matches!(self, Role::Viewer { .. })
    }

    /// Whether this connection's keys reach the program.
    pub fn may_type(&self) -> bool {
        match self {
            Role::Owner => true,
            Role::Viewer { may_type, .. } => *may_type,
        }
    }
}

/// Scrollback lines the host holds, by number.
///
/// Every line that leaves the top of a session's primary screen gets the
/// next number, counted from 0 over the session's life; the host keeps the
/// newest ones, `[start, end)`, and the first `scrolled` line of the next
/// frame is number `end`. Within one epoch on one host a number always
/// names the same line, so a client that reattaches to the same `host` and
/// `epoch` keeps the lines it holds. A restore elsewhere (a new epoch)
/// numbers on from what the store had, which may differ from what the lost
/// host sent: clients drop what they hold and fetch again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistorySpan {
    pub start: u64,
    pub end: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerToClientMsg {
    Welcome(Welcome),
    /// Scrollback lines numbered from `start` (see [`HistorySpan`]): the
    /// answer to a `FetchHistory`, or lines that scrolled off faster than
    /// frames carry them (a flood catching up), sent before the frame
    /// that follows them. A block that does not continue the numbers the
    /// client holds tells it that lines in between are gone.
    History {
        start: u64,
        lines: CompressedLines,
    },
    Frame(Frame),
    /// Every input up to and including `seq` reached the program.
    InputAck {
        seq: u64,
    },
    Pong {
        id: u32,
    },
    /// The program exited; the host closes the connection after this.
    Exited {
        status: Option<i32>,
    },
    /// Something the user should read that is not the program's output
    /// (the window's size was clamped); shown by the client next to the
    /// screen, never in it, so the numbered history stays the session's.
    Notice {
        text: String,
    },
    /// About files (version 5): the answer to an `Upload` request, or a
    /// file a program offers the user (`tl-download`). A JSON object, for
    /// the page's files module to read; the client passes it on unread
    /// (see PROTOCOL.md for its fields).
    Files(String),
    /// Who watches the session through share links, by user name, each
    /// once (version 7): sent to the owner when it changes and on attach
    /// (empty when nobody does).
    Watchers {
        names: Vec<String>,
    },
}
