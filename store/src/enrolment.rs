//! Which hosts may hold a lease: the operator's enrolments.
//!
//! An operator enrols a host once (`directory host add h1 --url URL`): the
//! store keeps its id, the url clients will be sent to, and the sha256 of a
//! random secret given to that host alone. A renewal is admitted in the
//! same transaction that writes the lease, only if its secret hashes to
//! the enrolled one and it announces the enrolled url; so a host can renew
//! and drain only its own id, cannot take another's or move its url, and
//! one host's leaked secret is revoked by enrolling it again (a new
//! secret) or removing it, without touching the others.
//!
//! With no host enrolled at all, registration is open as before, but only
//! to loopback urls: a single-machine demo needs no ceremony, and a stray
//! process cannot send users anywhere but to the machine they are on.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::{Millis, StoreError};

/// An enrolled host as `directory host list` shows it (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostEnrolment {
    pub id: String,
    /// The only url the host may announce.
    pub url: String,
    /// Backend time of the (last) enrolment.
    pub enrolled_at: Millis,
}

/// The stored form of a host secret: lowercase hex sha256. The secret is
/// 256 random bits, so no slow hash is needed.
pub fn hash_host_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// What the renewing transaction found about the host.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Enrolled<'a> {
    /// The host's own enrolment: its url and secret hash.
    pub own: Option<(&'a str, &'a str)>,
    /// Whether any host is enrolled (open registration ends with the first).
    pub any: bool,
}

/// Admits or refuses a renewal of `id` announcing `url` with `secret`.
pub(crate) fn check_renewal(
    id: &str,
    url: &str,
    secret: Option<&str>,
    enrolled: Enrolled<'_>,
) -> Result<(), StoreError> {
    let refuse = |why: String| {
        Err(StoreError::NotEnrolled {
            host: id.to_owned(),
            why,
        })
    };
    match enrolled.own {
        Some((enrolled_url, secret_hash)) => {
            let Some(secret) = secret else {
                return refuse(
                    "it is enrolled, so it must present its secret (THINLINE_HOST_SECRET)".into(),
                );
            };
            if hash_host_secret(secret) != secret_hash {
                return refuse(
                    "its secret is not the one it was enrolled with; \
                     run `directory host add` again and give the host the new secret"
                        .into(),
                );
            }
            if url != enrolled_url {
                return refuse(format!(
                    "it announced {url} but is enrolled at {enrolled_url}; \
                     fix its --public-url or enrol it again with the new url"
                ));
            }
            Ok(())
        }
        None if enrolled.any => refuse(format!(
            "it is not enrolled; run `directory host add {id} --url {url}` and give it the secret"
        )),
        None if secret.is_some() => refuse(format!(
            "it presents a secret but no host is enrolled; run `directory host add {id} --url {url}`"
        )),
        None if !is_loopback_url(url) => refuse(format!(
            "no host is enrolled, and without enrolment only loopback urls may register; \
             run `directory host add {id} --url {url}` and give it the secret"
        )),
        None => Ok(()),
    }
}

/// Whether `url` (`http[s]://HOST[:PORT][/...]`) names this machine.
pub fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, _)) => host,
            None => return false,
        },
        None => authority.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cret";

    fn why(result: Result<(), StoreError>) -> String {
        match result {
            Err(StoreError::NotEnrolled { why, .. }) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn an_enrolled_host_renews_only_with_its_secret_and_url() {
        let hash = hash_host_secret(SECRET);
        let own = Enrolled {
            own: Some(("https://h1.example", &hash)),
            any: true,
        };
        assert!(check_renewal("h1", "https://h1.example", Some(SECRET), own).is_ok());
        assert!(why(check_renewal("h1", "https://h1.example", None, own)).contains("secret"));
        assert!(
            why(check_renewal(
                "h1",
                "https://h1.example",
                Some("guess"),
                own
            ))
            .contains("not the one")
        );
        assert!(
            why(check_renewal(
                "h1",
                "https://evil.example",
                Some(SECRET),
                own
            ))
            .contains("enrolled at")
        );
    }

    #[test]
    fn once_one_host_is_enrolled_no_other_registers() {
        let others = Enrolled {
            own: None,
            any: true,
        };
        let refusal = why(check_renewal(
            "h9",
            "http://127.0.0.1:1",
            Some(SECRET),
            others,
        ));
        assert!(refusal.contains("directory host add h9"), "{refusal}");
        assert!(check_renewal("h9", "http://127.0.0.1:1", None, others).is_err());
    }

    #[test]
    fn open_registration_is_for_loopback_only() {
        let open = Enrolled {
            own: None,
            any: false,
        };
        for url in [
            "http://127.0.0.1:8081",
            "http://localhost:1",
            "https://[::1]:443/",
            "http://127.1.2.3",
        ] {
            assert!(check_renewal("h1", url, None, open).is_ok(), "{url}");
        }
        for url in [
            "http://10.0.0.1:8081",
            "https://h1.example",
            "http://127.0.0.1.evil.example",
            "http://localhost@evil.example",
            "ftp://127.0.0.1",
            "http://[::1",
            "",
        ] {
            assert!(
                why(check_renewal("h1", url, None, open)).contains("loopback"),
                "{url}"
            );
        }
        // A secret with nothing enrolled is a misconfiguration, said so.
        assert!(
            why(check_renewal(
                "h1",
                "http://127.0.0.1:1",
                Some(SECRET),
                open
            ))
            .contains("no host is enrolled")
        );
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        assert_eq!(
            hash_host_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
