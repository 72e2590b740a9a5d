//! Who may use Thinline, and how a host knows without asking anyone.
//!
//! The directory signs people in (`password`, `login`, `limit`) and hands the
//! browser a short-lived signed `ticket` naming the user, the session, the
//! host and the session's epoch. A host checks that ticket with the public
//! key alone, so it needs no user table and no round trip to admit a client.
//! A sign-in also leaves a `device` cookie, so the browsers a user has
//! signed in from keep a budget of attempts strangers cannot spend.
//! `tls` lets both servers speak HTTPS and WSS without a proxy in front, and
//! `serve` serves them with deadlines on every connection (no slowloris).
//!
//! Everything here is library code with no global state; only `tls` needs a
//! tokio runtime.

pub mod device;
pub mod limit;
pub mod login;
pub mod password;
pub mod password_pool;
mod secret;
pub mod serve;
pub mod share;
pub mod ticket;
pub mod tls;

/// Whether a secret someone presented is the one we hold, in time that does
/// not depend on where the two differ: a comparison that stops at the first
/// wrong byte would let a caller find a token byte by byte from how long
/// refusals take. Only the length can be learned, and every token we
/// compare has a length that is no secret. Both the directory (operators'
/// token) and hosts (the hosts' token) compare through this one function.
pub fn constant_time_eq(presented: &[u8], expected: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    presented.ct_eq(expected).into()
}

/// Decodes base64 in either alphabet, padded or not, ignoring surrounding
/// whitespace: keys are pasted by people into env files and flags, and
/// refusing `+/` or a trailing `=` there would only cause support requests.
fn decode_base64_lenient(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let normalized: String = text
        .trim()
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(normalized)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn secrets_match_only_themselves() {
        assert!(constant_time_eq(b"s3cret-token", b"s3cret-token"));
        assert!(!constant_time_eq(b"s3cret-tokeN", b"s3cret-token"));
        assert!(!constant_time_eq(b"s3cret-token ", b"s3cret-token"));
        assert!(!constant_time_eq(b"", b"s3cret-token"));
        assert!(constant_time_eq(b"", b""));
    }
}
