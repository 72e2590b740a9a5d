//! Signing in and out, the cookie, rate limits and device cookies,
//! disabled accounts, the Origin check and the trusted proxy, each over one
//! database.

use auth::device::DeviceKey;
use auth::limit::LoginLimits;
use directory::DirectoryConfig;
use directory::accounts;
use directory::edge::FORM_PAGE_POLICY;
use hyper::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Answer, Body, Db, Directory, User, call_with, create_session};

const SESSION: &str = "0123456789abcdef0123456789abcdef";
const PASSWORD: &str = "correct-horse";

async fn directory_with(db: &Db, config: DirectoryConfig) -> Directory {
    let dir = Directory::start(db.open().await, config).await;
    accounts::add(&*dir.store, "ada", PASSWORD).await.unwrap();
    dir
}

/// The user a successful sign-in answer made.
fn signed_in(dir: &Directory, name: &str, answer: &Answer) -> User {
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    assert_eq!(answer.header("location"), "/");
    let cookie = answer.cookie();
    let token = auth::login::LoginToken::parse(cookie.trim_start_matches("thinline_login="))
        .expect("a login token in the cookie");
    User {
        name: name.to_owned(),
        base: dir.base.clone(),
        cookie,
        login: token.id(),
    }
}

async fn me(user: &User) -> Answer {
    user.get("/v1/me").await
}

/// The whole `Set-Cookie` line for cookie `name`, if the answer sets it.
fn set_cookie_line<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|line| line.starts_with(&format!("{name}=")))
}

/// The `thinline_device=...` pair a sign-in answer set.
fn device_cookie(answer: &Answer) -> String {
    let line = set_cookie_line(answer, "thinline_device")
        .unwrap_or_else(|| panic!("no device cookie: {:?}", answer.headers));
    line.split(';').next().unwrap().to_owned()
}

/// The value of a `name=value` pair.
fn value(pair: &str) -> &str {
    pair.split_once('=').unwrap().1
}

/// A config whose sign-in attempts count against the client address in
/// `X-Forwarded-For`: every test connection is from 127.0.0.1, which this
/// makes a trusted proxy (with no user header, it names no one).
fn behind_proxy(login_limits: LoginLimits) -> DirectoryConfig {
    DirectoryConfig {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        login_limits,
        ..DirectoryConfig::default()
    }
}

/// `POST /login` as ada from `client`, with `cookie` (a `Cookie` header) if
/// given.
async fn login_from(dir: &Directory, client: &str, password: &str, cookie: Option<&str>) -> Answer {
    let mut headers = vec![("origin", dir.base.as_str()), ("x-forwarded-for", client)];
    if let Some(cookie) = cookie {
        headers.push(("cookie", cookie));
    }
    dir.send(
        Method::POST,
        "/login",
        Body::Form(format!("user=ada&password={password}")),
        &headers,
    )
    .await
}

pub async fn signing_in_sets_a_strict_cookie(db: &Db) {
    let dir = directory_with(db, DirectoryConfig::default()).await;
    let form = dir.get("/login").await;
    assert_eq!(form.status, StatusCode::OK);
    // It posts to its own URL (/login), keeping a share link's fragment.
    assert!(form.text().contains("<form method=\"post\">"));
    assert!(form.text().contains("name=\"password\" type=\"password\""));
    assert_eq!(form.header("content-security-policy"), FORM_PAGE_POLICY);
    assert_eq!(form.header("cross-origin-opener-policy"), "same-origin");
    assert_eq!(form.header("x-frame-options"), "DENY");

    let answer = dir.login("ada", PASSWORD).await;
    let set_cookie = answer.header("set-cookie").to_owned();
    let flags: Vec<&str> = set_cookie.split("; ").skip(1).collect();
    assert_eq!(
        flags,
        ["Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=43200"],
        "no Secure without TLS: {set_cookie}"
    );
    let device = set_cookie_line(&answer, "thinline_device").expect("a device cookie");
    let flags: Vec<&str> = device.split("; ").skip(1).collect();
    assert_eq!(
        flags,
        [
            "Path=/login",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=31536000"
        ],
        "{device}"
    );
    let ada = signed_in(&dir, "ada", &answer);
    let who = me(&ada).await;
    assert_eq!(who.status, StatusCode::OK);
    assert_eq!(who.json(), json!({ "user": "ada" }));
    // The store keeps the cookie's hash, never the cookie.
    let login = dir
        .store
        .get_login(&ada.login.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(login.user, "ada");
    assert_eq!(login.expires_at - login.created_at, 12 * 3600 * 1000);

    let stranger = dir.get("/v1/me").await;
    assert_eq!(stranger.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        stranger.json(),
        json!({ "error": "not signed in; open /login" })
    );
    let forged = User {
        cookie: "thinline_login=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        ..ada.clone()
    };
    assert_eq!(me(&forged).await.status, StatusCode::UNAUTHORIZED);
}

pub async fn wrong_passwords_and_unknown_users_answer_alike(db: &Db) {
    let dir = directory_with(db, DirectoryConfig::default()).await;
    let wrong = dir.login("ada", "not-the-password").await;
    let unknown = dir.login("nobody", "not-the-password").await;
    let impossible = dir.login("Not%20A%20Name", "not-the-password").await;
    for answer in [&wrong, &unknown, &impossible] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(answer.text().contains("wrong user or password"));
        assert!(!answer.headers.contains_key("set-cookie"));
        assert_eq!(answer.header("content-security-policy"), FORM_PAGE_POLICY);
    }
    assert_eq!(wrong.text(), unknown.text());
    assert_eq!(wrong.text(), impossible.text());
    let incomplete = dir
        .send(
            Method::POST,
            "/login",
            Body::Form("user=ada".to_owned()),
            &[("origin", &dir.base)],
        )
        .await;
    assert_eq!(incomplete.status, StatusCode::BAD_REQUEST);
}

pub async fn too_many_attempts_are_refused_before_hashing(db: &Db) {
    let per_user = LoginLimits {
        per_user_at_address_burst: 2,
        per_user_at_address_per_minute: 1,
        per_address_burst: 100,
        per_address_per_minute: 100,
        ..LoginLimits::default()
    };
    let dir = directory_with(
        db,
        DirectoryConfig {
            login_limits: per_user,
            ..DirectoryConfig::default()
        },
    )
    .await;
    for _ in 0..2 {
        assert_eq!(
            dir.login("ada", "guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Even the right password is refused once the user's budget at this
    // address is spent.
    let limited = dir.login("ada", PASSWORD).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        limited
            .text()
            .contains("too many sign-in attempts; try again in "),
        "{}",
        limited.text()
    );
    let wait: u64 = limited.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(!limited.headers.contains_key("set-cookie"));
    // Another user from the same address is not held back by ada's limit.
    accounts::add(&*dir.store, "bob", PASSWORD).await.unwrap();
    assert_eq!(
        dir.login("bob", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );

    // Per address: every name counts against the one client.
    let per_address = LoginLimits {
        per_user_at_address_burst: 100,
        per_user_at_address_per_minute: 100,
        per_address_burst: 2,
        per_address_per_minute: 1,
        ..LoginLimits::default()
    };
    let dir = Directory::start(
        db.open().await,
        DirectoryConfig {
            login_limits: per_address,
            ..DirectoryConfig::default()
        },
    )
    .await;
    assert_eq!(
        dir.login("x1", "guess").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        dir.login("x2", "guess").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        dir.login("ada", PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

pub async fn disabled_users_are_refused_and_signed_out(db: &Db) {
    let dir = directory_with(db, DirectoryConfig::default()).await;
    let ada = signed_in(&dir, "ada", &dir.login("ada", PASSWORD).await);
    assert_eq!(me(&ada).await.status, StatusCode::OK);

    accounts::set_disabled(&*dir.store, "ada", true)
        .await
        .unwrap();
    assert_eq!(me(&ada).await.status, StatusCode::UNAUTHORIZED);
    let placed = ada.post("/v1/placement", json!({})).await;
    assert_eq!(placed.status, StatusCode::UNAUTHORIZED);
    let refused = dir.login("ada", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.text(),
        dir.login("ada", "not-the-password").await.text(),
        "a disabled account is just a wrong user or password"
    );

    accounts::set_disabled(&*dir.store, "ada", false)
        .await
        .unwrap();
    assert_eq!(
        me(&ada).await.status,
        StatusCode::UNAUTHORIZED,
        "disabling ended the old login for good"
    );
    let again = signed_in(&dir, "ada", &dir.login("ada", PASSWORD).await);
    assert_eq!(me(&again).await.status, StatusCode::OK);

    // A new password signs the user out everywhere too.
    accounts::reset(&*dir.store, "ada", "a-new-password")
        .await
        .unwrap();
    assert_eq!(me(&again).await.status, StatusCode::UNAUTHORIZED);
}

pub async fn signing_out_ends_the_login(db: &Db) {
    let dir = directory_with(db, DirectoryConfig::default()).await;
    let ada = signed_in(&dir, "ada", &dir.login("ada", PASSWORD).await);
    let other_browser = signed_in(&dir, "ada", &dir.login("ada", PASSWORD).await);

    let out = ada.send(Method::POST, "/logout", Body::None).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.header("location"), "/login");
    assert_eq!(
        out.header("set-cookie"),
        "thinline_login=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    );
    // The browser stays a known device: only the login cookie is touched.
    assert_eq!(out.headers.get_all("set-cookie").iter().count(), 1);
    // The old cookie is dead everywhere, not just forgotten by the browser.
    assert_eq!(me(&ada).await.status, StatusCode::UNAUTHORIZED);
    let placed = ada.post("/v1/placement", json!({ "new": true })).await;
    assert_eq!(placed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(placed.error(), "not signed in; open /login");
    let page = ada.get("/sessions").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    // Only that browser's login ended.
    assert_eq!(me(&other_browser).await.status, StatusCode::OK);
    // Signing out twice, or without a cookie, is harmless.
    assert_eq!(
        ada.send(Method::POST, "/logout", Body::None).await.status,
        StatusCode::SEE_OTHER
    );
}

pub async fn foreign_and_null_origins_are_refused(db: &Db) {
    let dir = directory_with(
        db,
        DirectoryConfig {
            peers: vec!["http://127.0.0.1:9".to_owned()],
            ..DirectoryConfig::default()
        },
    )
    .await;
    let ada = dir.sign_in_as("ada").await;
    create_session(&*dir.store, SESSION, "h1", 1).await;
    // Same port, another name for the same machine: still another origin.
    let other_name = dir.base.replace("127.0.0.1", "localhost");
    let other_scheme = dir.base.replace("http:", "https:");
    let origins: [Option<&str>; 6] = [
        Some("http://evil.example"),
        Some("null"),
        None,
        Some(other_name.as_str()),
        Some(other_scheme.as_str()),
        Some("http://127.0.0.1"),
    ];
    for origin in origins {
        let mut headers = vec![("cookie", ada.cookie.as_str())];
        if let Some(origin) = origin {
            headers.push(("origin", origin));
        }
        let url = |path: &str| format!("{}{path}", dir.base);
        for (path, body) in [
            ("/v1/placement", Body::Json(json!({ "new": true }))),
            (
                &format!("/v1/sessions/{SESSION}/unreachable")[..],
                Body::Json(json!({ "host": "h1", "epoch": 1 })),
            ),
            (&format!("/v1/sessions/{SESSION}/end")[..], Body::None),
        ] {
            let refused = call_with(Method::POST, &url(path), body, &headers).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{origin:?} {path}");
            assert!(refused.error().contains("refused"), "{}", refused.error());
        }
        for (path, body) in [
            (
                "/login",
                Body::Form(format!("user=ada&password={PASSWORD}")),
            ),
            ("/logout", Body::None),
            (&format!("/sessions/{SESSION}/end")[..], Body::None),
        ] {
            let refused = call_with(Method::POST, &url(path), body, &headers).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{origin:?} {path}");
            assert!(!refused.headers.contains_key("set-cookie"));
            assert_eq!(refused.header("content-security-policy"), FORM_PAGE_POLICY);
        }
    }
    // Nothing happened: still signed in, the session still running.
    assert_eq!(me(&ada).await.status, StatusCode::OK);
    let record = dir.store.get_session(SESSION).await.unwrap().unwrap();
    assert_eq!(record.state, store::SessionState::Running);
    assert_eq!(record.epoch, 1);
    // A peer replica's page may call (it finds no healthy host here).
    let from_peer = call_with(
        Method::POST,
        &format!("{}/v1/placement", dir.base),
        Body::Json(json!({ "new": true })),
        &[("cookie", &ada.cookie), ("origin", "http://127.0.0.1:9")],
    )
    .await;
    assert_eq!(from_peer.status, StatusCode::SERVICE_UNAVAILABLE);
}

pub async fn a_trusted_proxy_names_the_user_and_no_one_else_can(db: &Db) {
    let config = DirectoryConfig {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        proxy_user_header: Some(hyper::header::HeaderName::from_static("x-remote-user")),
        login_limits: LoginLimits {
            per_address_burst: 1,
            per_address_per_minute: 1,
            ..LoginLimits::default()
        },
        ..DirectoryConfig::default()
    };
    let dir = directory_with(db, config.clone()).await;
    accounts::add(&*dir.store, "eve", PASSWORD).await.unwrap();
    accounts::set_disabled(&*dir.store, "eve", true)
        .await
        .unwrap();
    let as_proxy = async |user: &str| {
        call_with(
            Method::GET,
            &format!("{}/v1/me", dir.base),
            Body::None,
            &[("x-remote-user", user)],
        )
        .await
    };
    let vouched = as_proxy("ada").await;
    assert_eq!(vouched.status, StatusCode::OK);
    assert_eq!(vouched.json(), json!({ "user": "ada" }));
    // The proxy's word became a login with a cookie, as a password would.
    let cookie = vouched.cookie();
    let with_cookie = call_with(
        Method::GET,
        &format!("{}/v1/me", dir.base),
        Body::None,
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(with_cookie.json(), json!({ "user": "ada" }));
    for nobody in ["nobody", "eve", "Bad Name"] {
        assert_eq!(
            as_proxy(nobody).await.status,
            StatusCode::UNAUTHORIZED,
            "{nobody}"
        );
    }
    // Behind the proxy, sign-in attempts count per forwarded client.
    let attempt = async |client: &str| {
        dir.send(
            Method::POST,
            "/login",
            Body::Form("user=ada&password=guess".to_owned()),
            &[("origin", &dir.base), ("x-forwarded-for", client)],
        )
        .await
        .status
    };
    assert_eq!(attempt("10.0.0.1").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        attempt("192.0.2.7, 10.0.0.2").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(attempt("10.0.0.1").await, StatusCode::TOO_MANY_REQUESTS);

    // From any other address the header is only a header.
    let untrusted = Directory::start(
        db.open().await,
        DirectoryConfig {
            trusted_proxies: vec!["10.9.8.7".parse().unwrap()],
            ..config
        },
    )
    .await;
    let ignored = call_with(
        Method::GET,
        &format!("{}/v1/me", untrusted.base),
        Body::None,
        &[("x-remote-user", "ada")],
    )
    .await;
    assert_eq!(ignored.status, StatusCode::UNAUTHORIZED);
    assert!(!ignored.headers.contains_key("set-cookie"));
    // And forwarded addresses are not believed: one client, one budget.
    let login = async |client: &str| {
        untrusted
            .send(
                Method::POST,
                "/login",
                Body::Form("user=ada&password=guess".to_owned()),
                &[("origin", &untrusted.base), ("x-forwarded-for", client)],
            )
            .await
            .status
    };
    assert_eq!(login("10.0.0.1").await, StatusCode::UNAUTHORIZED);
    assert_eq!(login("10.0.0.2").await, StatusCode::TOO_MANY_REQUESTS);
}

pub async fn a_stranger_cannot_lock_the_owners_browser_out(db: &Db) {
    let config = behind_proxy(LoginLimits::default());
    let devices = DeviceKey::from_ticket_signer(&config.ticket_signer);
    let dir = directory_with(db, config).await;
    let (home, attacker, elsewhere) = ("192.0.2.10", "203.0.113.66", "198.51.100.20");

    // Ada signs in once at home; her browser is now a known device.
    let first = login_from(&dir, home, PASSWORD, None).await;
    signed_in(&dir, "ada", &first);
    let device = device_cookie(&first);
    let id = devices
        .verify(value(&device), "ada", auth::ticket::now_ms())
        .unwrap();

    // One address guessing gets five tries, then waits.
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let answer = login_from(&dir, attacker, "guess", None).await;
        assert!(set_cookie_line(&answer, "thinline_device").is_none());
        statuses.push(answer.status);
    }
    assert_eq!(statuses[..5], [StatusCode::UNAUTHORIZED; 5], "{statuses:?}");
    assert!(
        statuses[5..]
            .iter()
            .all(|status| *status == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // That spent only its own budget for ada: from another address even a
    // browser she never used signs in (one address cannot spend the budget
    // all strangers share).
    signed_in(
        &dir,
        "ada",
        &login_from(&dir, elsewhere, PASSWORD, None).await,
    );

    // Many addresses guessing together do spend it: then browsers without
    // ada's device cookie wait, whoever they are.
    let mut refused = None;
    for n in 1..=40 {
        let answer = login_from(&dir, &format!("203.0.113.{n}"), "guess", None).await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some((n, answer));
            break;
        }
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "address {n}");
    }
    let (n, refused) = refused.expect("forty addresses guessing were never limited");
    assert!(n > 10, "limited after only {n} addresses");
    assert!(
        refused
            .text()
            .contains("or from a browser you have signed in from before"),
        "{}",
        refused.text()
    );

    // Her browser gets in all the same, at home and anywhere else, and
    // keeps its device id under a renewed cookie.
    let cookie = device.as_str();
    for client in [home, "198.51.100.99", attacker.replace("66", "67").as_str()] {
        let answer = login_from(&dir, client, PASSWORD, Some(cookie)).await;
        signed_in(&dir, "ada", &answer);
        let renewed = device_cookie(&answer);
        assert_eq!(
            devices.verify(value(&renewed), "ada", auth::ticket::now_ms()),
            Ok(id)
        );
    }

    // Whoever holds the cookie still guesses slowly: the device has a
    // budget of its own, and then even the right password waits.
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(login_from(&dir, home, "guess", Some(cookie)).await.status);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let limited = login_from(&dir, "198.51.100.100", PASSWORD, Some(cookie)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        !limited.text().contains("signed in from before"),
        "{}",
        limited.text()
    );
}

pub async fn a_forged_or_foreign_device_cookie_is_no_exemption(db: &Db) {
    let config = behind_proxy(LoginLimits {
        per_user_untrusted_burst: 2,
        per_user_untrusted_per_minute: 1,
        ..LoginLimits::default()
    });
    let signer = config.ticket_signer.clone();
    let dir = directory_with(db, config).await;
    accounts::add(&*dir.store, "bob", PASSWORD).await.unwrap();
    let ada_device = device_cookie(&login_from(&dir, "192.0.2.10", PASSWORD, None).await);
    let bob_device = {
        let answer = dir
            .send(
                Method::POST,
                "/login",
                Body::Form(format!("user=bob&password={PASSWORD}")),
                &[("origin", &dir.base), ("x-forwarded-for", "192.0.2.11")],
            )
            .await;
        device_cookie(&answer)
    };
    // Strangers spend the rest of ada's shared budget.
    assert_eq!(
        login_from(&dir, "203.0.113.1", "guess", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from(&dir, "203.0.113.2", PASSWORD, None).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    let ada_value = value(&ada_device);
    let mut tampered = ada_value.as_bytes().to_vec();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let other_key = DeviceKey::from_ticket_signer(&auth::ticket::TicketSigner::generate())
        .issue(
            "ada",
            auth::device::DeviceId::generate(),
            auth::ticket::now_ms(),
        )
        .unwrap();
    let now = auth::ticket::now_ms();
    // A ticket is signed with this directory's key too, and for ada.
    let ticket = signer
        .sign(&auth::ticket::Claims {
            user: "ada".to_owned(),
            session: [1; 16],
            host: "h1".to_owned(),
            epoch: 1,
            login: [2; 32],
            max_sessions: 10,
            share: None,
            record: None,
            issued_at_ms: now,
            expires_at_ms: now + 60_000,
        })
        .unwrap();
    let huge = "A".repeat(10_000);
    let no_exemption = [
        bob_device.clone(),
        format!("thinline_device={tampered}"),
        format!("thinline_device={}", other_key.as_str()),
        format!("thinline_device={huge}"),
        "thinline_device=".to_owned(),
        format!("thinline_device={ticket}"),
        // The right value under another name is not a device cookie.
        format!("thinline_login={ada_value}"),
    ];
    for (n, cookie) in no_exemption.iter().enumerate() {
        let answer = login_from(&dir, &format!("198.51.100.{n}"), PASSWORD, Some(cookie)).await;
        assert_eq!(
            answer.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{cookie:.80}: {}",
            answer.text()
        );
        assert!(answer.headers.get("set-cookie").is_none());
    }
    // Bob's cookie is no use as ada, but ada's own works, even among junk.
    let among_junk = format!("thinline_device=junk; {bob_device}; {ada_device}");
    signed_in(
        &dir,
        "ada",
        &login_from(&dir, "198.51.100.50", PASSWORD, Some(&among_junk)).await,
    );
}
