//! The secret a directory shows a host to end a session there
//! (`THINLINE_HOST_TOKEN`, `POST /v1/sessions/{id}/end`), and the host's
//! own enrolment secret, which it shows the store.

/// The hosts' shared secret; its `Debug` never shows it.
#[derive(Clone)]
pub struct HostToken(pub String);

impl HostToken {
    /// Whether `presented` is this secret, in time independent of where
    /// the two differ (only the length can be learned by timing).
    pub fn matches(&self, presented: &str) -> bool {
        auth::constant_time_eq(presented.as_bytes(), self.0.as_bytes())
    }
}

impl std::fmt::Debug for HostToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostToken(..)")
    }
}

/// This host's own enrolment secret (`THINLINE_HOST_SECRET`, from
/// `directory host add`), which the store asks for at every renewal of the
/// lease; its `Debug` never shows it.
#[derive(Clone)]
pub struct HostSecret(pub String);

impl std::fmt::Debug for HostSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostSecret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_token_matches_only_itself() {
        let token = HostToken("s3cret-token".into());
        assert!(token.matches("s3cret-token"));
        assert!(!token.matches("s3cret-tokeN"));
        assert!(!token.matches("s3cret-token "));
        assert!(!token.matches(""));
        assert_eq!(format!("{token:?}"), "HostToken(..)");
        let secret = HostSecret("s3cret-secret".into());
        assert_eq!(format!("{secret:?}"), "HostSecret(..)");
    }
}
