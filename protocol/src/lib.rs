//! The wire contract between the Thinline browser client and a session host.
//!
//! Everything both ends must agree on lives here and nowhere else: the message
//! types (named by direction), the binary codec, the version handshake, the
//! close codes a host uses to refuse a connection, and the size limits.
//! The crate does no IO so that the WebAssembly client and the native host
//! compile the very same definitions; `docs/protocol.md`-style prose lives in
//! `protocol/PROTOCOL.md` next to this file and changes in the same commit.

mod close;
mod codec;
mod limits;
mod lines;
mod msg;
mod screen;

pub use close::CloseCode;
pub use codec::{
    MAGIC, PROTOCOL_VERSION, decode_client, decode_hello, decode_server, encode_client,
    encode_hello, encode_hello_with_version, encode_server,
};
pub use limits::{
    DecodeError, HISTORY_FETCH_LINES, INPUT_WINDOW, MAX_CLIENT_MESSAGE, MAX_CLIPBOARD,
    MAX_HISTORY_RAW, MAX_INPUT_CHUNK, MAX_SERVER_MESSAGE,
};
pub use lines::{CompressedLines, compress_lines, decompress_lines};
pub use msg::{
    ClientToServerMsg, Hello, HistorySpan, Role, ServerToClientMsg, SessionId, UploadRequest,
    Welcome,
};
pub use screen::{
    CellLayout, Color, Cursor, CursorShape, ECHO_SILENT_MS, ECHO_WAIT_MS, Frame, Hyperlink, Line,
    MAX_LINK, Modes, Notification, RowUpdate, Run, Size, Style, StyleFlags, TtyModes, linkable,
};

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
