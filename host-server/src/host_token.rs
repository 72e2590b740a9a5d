//! The secret a directory shows a host to end a session there
//! (`THINLINE_HOST_TOKEN`, `POST /v1/sessions/{id}/end`).

/// The hosts' shared secret; its `Debug` never shows it.
#[derive(Clone)]
pub struct HostToken(pub String);

impl HostToken {
    /// Whether `presented` is this secret, in time independent of where
    /// the two differ (only the length can be learned by timing).
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for HostToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostToken(..)")
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
    }
}
