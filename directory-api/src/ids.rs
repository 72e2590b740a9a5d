//! What a host id, a session id and a share id look like on the API, next to the
//! patterns the OpenAPI document publishes for them, so the check a
//! handler applies and the constraint a client reads cannot part.

/// The longest host id: ids appear in URLs, logs and every answer about
/// sessions.
pub const MAX_HOST_ID_LEN: usize = 64;

/// [`valid_host_id`] as a regular expression, for the document.
pub const HOST_ID_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";

/// What the directory accepts as a session id in a path or a body: 32 hex
/// digits of either case (`SessionId::from_str`). It answers in lowercase
/// only ([`SESSION_ID_ANSWER_PATTERN`]).
pub const SESSION_ID_PATTERN: &str = "^[0-9a-fA-F]{32}$";

/// How the directory writes a session id: `SessionId`'s `Display`.
pub const SESSION_ID_ANSWER_PATTERN: &str = "^[0-9a-f]{32}$";

/// Whether `id` is a host id: 1 to [`MAX_HOST_ID_LEN`] letters, digits,
/// '-', '_' or '.'.
pub fn valid_host_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_HOST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A share link's id, as the directory writes it and takes it back: 32
/// lowercase hex digits (`auth::share::ShareId`).
pub const SHARE_ID_PATTERN: &str = "^[0-9a-f]{32}$";

/// Whether `id` is a share id: 32 lowercase hex digits.
pub fn valid_share_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
