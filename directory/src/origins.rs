//! Urls reduced to origins, for the Origin allowlist and the page's
//! Content-Security-Policy.
//!
//! Host urls are what hosts wrote into the store and peer urls what an
//! operator typed, so before either enters a header it is reduced to a
//! scheme and a plain authority; anything else is dropped. Pure functions
//! at the bottom of the directory's layers: the configuration, the edge and
//! the page all use them.

/// `scheme://authority` of an http(s) url, or `None` if it is anything
/// else or its authority is not plain.
pub fn origin(url: &str) -> Option<String> {
    let uri: hyper::Uri = url.parse().ok()?;
    let scheme = uri
        .scheme_str()
        .filter(|s| matches!(*s, "http" | "https"))?;
    let authority = uri.authority()?.as_str();
    plain_authority(authority).then(|| format!("{scheme}://{authority}"))
}

/// A host's origin and its WebSocket form (`ws://` for `http://`, `wss://`
/// for `https://`).
pub fn host_sources(url: &str) -> Vec<String> {
    let Some(origin) = origin(url) else {
        return Vec::new();
    };
    let socket = match origin.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}"),
        None => format!("ws://{}", origin.trim_start_matches("http://")),
    };
    vec![origin, socket]
}

/// Letters, digits, dots, dashes, colons and brackets: enough for names,
/// IPv4, `[IPv6]` and ports; nothing that could end a CSP directive.
pub fn plain_authority(authority: &str) -> bool {
    !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// An operator's `--connect-src` entry must not break the header.
pub fn plain_source(source: &str) -> bool {
    !source.is_empty()
        && source
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'\'' | b'"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_become_http_and_ws_origins() {
        assert_eq!(
            host_sources("http://127.0.0.1:8081/"),
            ["http://127.0.0.1:8081", "ws://127.0.0.1:8081"]
        );
        assert_eq!(
            host_sources("https://h1.example.com/terminal"),
            ["https://h1.example.com", "wss://h1.example.com"]
        );
        assert_eq!(
            host_sources("http://[::1]:9000"),
            ["http://[::1]:9000", "ws://[::1]:9000"]
        );
    }

    #[test]
    fn urls_that_could_inject_into_the_policy_are_dropped() {
        for bad in [
            "http://h1;script-src",
            "javascript:alert(1)",
            "http://a b",
            "",
        ] {
            assert!(host_sources(bad).is_empty(), "{bad}");
        }
        assert!(plain_source("https://*.example.com"));
        assert!(!plain_source("'unsafe-inline'"));
        assert!(!plain_source("a; script-src *"));
    }
}
