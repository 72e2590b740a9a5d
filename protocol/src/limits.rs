//! What a decoder refuses: the size limits both ends hold each other to,
//! and the error every decoder of this crate returns.
//!
//! They sit below the codec and the compressed history blocks, which both
//! check against them, so neither has to reach into the other.

/// Largest message a host accepts from a client. Clients split pastes into
/// `MAX_INPUT_CHUNK` pieces, so honest clients stay far below it.
pub const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// Largest input payload a client puts in one `Input` message.
pub const MAX_INPUT_CHUNK: usize = 16 * 1024;

/// Input a host holds for a session before it stops taking that session's
/// messages, and so the most a client keeps sent and unacknowledged: a
/// paste beyond it waits in the client, which sends more as input acks
/// open the window, so neither end ever buffers an unbounded paste.
pub const INPUT_WINDOW: usize = 256 * 1024;

/// Largest text a program may put on the user's clipboard with OSC 52
/// (what `tmux` and vim yank); a larger one is dropped by the host.
pub const MAX_CLIPBOARD: usize = 1024 * 1024;

/// Largest message a client accepts from a host.
pub const MAX_SERVER_MESSAGE: usize = 4 * 1024 * 1024;

/// Most lines a host puts in its answer to one `FetchHistory`: one sealed
/// scrollback block, so an answer is a block the host already holds.
pub const HISTORY_FETCH_LINES: usize = 256;

/// Largest decompressed history block.
pub const MAX_HISTORY_RAW: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty message")]
    Empty,
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("not a thinline hello (bad magic bytes)")]
    BadMagic,
    #[error(
        "protocol version mismatch: the client speaks v{client}, this host speaks v{host}; reload the page to get the matching client"
    )]
    VersionMismatch { client: u16, host: u16 },
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("{0} unexpected bytes after the message")]
    TrailingBytes(usize),
}
