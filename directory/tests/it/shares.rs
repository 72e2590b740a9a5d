//! Share links: made by a session's owner only, redeemed by anyone signed
//! in for an HttpOnly cookie scoped to `/v1`, which opens exactly that
//! session to its holder as a viewer (tickets naming the viewer and
//! carrying the grant) until the link is revoked, expires or its session
//! ends; and the token never in a URL or a log line.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use auth::share::{ShareId, ShareToken};
use auth::ticket::ShareGrant;
use directory::DirectoryConfig;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use store::SessionState;

use crate::api::report;
use crate::harness::{Answer, Body, Db, Directory, FakeHost, User, call_with, create_session_of};

const ADAS: &str = "0123456789abcdef0123456789abcdef";
const ADAS_OTHER: &str = "11111111111111111111111111111111";
const BOBS: &str = "fedcba9876543210fedcba9876543210";
const NOBODYS: &str = "00000000000000000000000000000000";
const LONG_TTL: u64 = 60_000;
const TWELVE_HOURS_MS: i64 = 12 * 3600 * 1000;

async fn share(user: &User, session: &str, may_type: bool) -> Answer {
    user.post(
        &format!("/v1/sessions/{session}/shares"),
        json!({ "may_type": may_type }),
    )
    .await
}

/// A share link of `session` made by its owner, as the answer shows it.
async fn shared(user: &User, session: &str, may_type: bool) -> Value {
    let made = share(user, session, may_type).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text());
    made.json()
}

async fn redeem(user: &User, token: &str) -> Answer {
    user.post("/v1/shares/redeem", json!({ "token": token }))
        .await
}

/// The same browser, also sending the cookie `pair` (`name=value`).
fn with_cookie(user: &User, pair: &str) -> User {
    User {
        cookie: format!("{}; {pair}", user.cookie),
        ..user.clone()
    }
}

/// `user` after redeeming `token`: the browser now sends its cookie.
async fn viewer(user: &User, token: &str) -> User {
    let redeemed = redeem(user, token).await;
    assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.text());
    with_cookie(user, &redeemed.cookie())
}

async fn place(user: &User, session: &str) -> Answer {
    user.post("/v1/placement", json!({ "session": session }))
        .await
}

/// The grant a ticket for share `id` must carry.
fn grant(id: &Value, owner: &str, may_type: bool) -> Option<ShareGrant> {
    let id: ShareId = id.as_str().unwrap().parse().unwrap();
    Some(ShareGrant {
        id: id.0,
        owner: owner.to_owned(),
        may_type,
    })
}

/// Asserts `answer` is exactly the refusal of a session nobody has.
fn assert_unknown(answer: &Answer, id: &str, unknown: &Answer) {
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text());
    assert_eq!(
        answer.text().replace(id, "ID"),
        unknown.text().replace(NOBODYS, "ID"),
        "answers exactly as an unknown session"
    );
}

/// Every log line of this test process, from the first call on: the
/// directories under test run in it. Tests run in parallel, so it holds
/// theirs too, which only makes the check stricter.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer: Arc<Mutex<Vec<u8>>> = Arc::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test sets a subscriber");
        buffer
    })
    .clone()
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub async fn only_the_owner_shares_a_running_session(db: &Db) {
    let dir = Directory::start(db.open().await, DirectoryConfig::default()).await;
    dir.lease("h1", "http://127.0.0.1:8081", LONG_TTL, 0).await;
    create_session_of(&*dir.store, "ada", ADAS, "h1", 1).await;
    create_session_of(&*dir.store, "ada", ADAS_OTHER, "h1", 1).await;
    create_session_of(&*dir.store, "bob", BOBS, "h1", 1).await;
    let ada = dir.sign_in_as("ada").await;
    let bob = dir.sign_in_as("bob").await;

    let before = dir.store.now().await.unwrap();
    let made = shared(&ada, ADAS, true).await;
    let after = dir.store.now().await.unwrap();
    let token = made["token"].as_str().unwrap();
    let id = made["id"].as_str().unwrap();
    assert!(directory_api::valid_share_id(id), "{made}");
    assert_eq!(made["link_fragment"], format!("#share={token}"));
    assert_eq!(made["may_type"], true);
    let expires_at = made["expires_at"].as_i64().unwrap();
    assert!(
        (before + TWELVE_HOURS_MS..=after + TWELVE_HOURS_MS).contains(&expires_at),
        "{made}"
    );
    // The store holds the token's hash, never the token.
    let parsed = ShareToken::parse(token).expect("a canonical token");
    let stored = dir.store.list_shares("ada").await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].token_hash, parsed.hash().to_string());
    assert_eq!(
        (stored[0].id.as_str(), stored[0].session.as_str()),
        (id, ADAS)
    );

    // Another user's session, or none, answers alike; nothing is made.
    let unknown = share(&bob, NOBODYS, false).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_unknown(&share(&bob, ADAS, false).await, ADAS, &unknown);
    assert_unknown(&share(&ada, BOBS, false).await, BOBS, &unknown);
    // The Origin check guards it as every POST.
    let no_origin = call_with(
        Method::POST,
        &format!("{}/v1/sessions/{ADAS}/shares", dir.base),
        Body::Json(json!({ "may_type": true })),
        &[("cookie", &ada.cookie)],
    )
    .await;
    assert_eq!(no_origin.status, StatusCode::FORBIDDEN);
    let bad = share(&ada, "zz", false).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let extra = ada
        .post(&format!("/v1/sessions/{ADAS}/shares"), json!({ "x": 1 }))
        .await;
    assert_eq!(extra.status, StatusCode::BAD_REQUEST);
    // An ended session has nothing to watch.
    dir.store.end_session(ADAS_OTHER).await.unwrap();
    let ended = share(&ada, ADAS_OTHER, false).await;
    assert_eq!(ended.status, StatusCode::CONFLICT);
    assert!(ended.error().contains("has ended"), "{}", ended.error());
    assert_eq!(dir.store.list_shares("ada").await.unwrap().len(), 1);
    assert!(dir.store.list_shares("bob").await.unwrap().is_empty());

    // The sessions page: a form per running session, the link shown once.
    let form = ada
        .send(
            Method::POST,
            &format!("/sessions/{ADAS}/share"),
            Body::Form("may_type=on".to_owned()),
        )
        .await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text());
    assert_eq!(form.header("cache-control"), "no-store");
    let page = form.text();
    let prefix = format!("readonly value=\"{}/#share=", dir.base);
    let at = page.find(&prefix).unwrap_or_else(|| panic!("{page}"));
    let from_page = &page[at + prefix.len()..at + prefix.len() + 43];
    assert!(ShareToken::parse(from_page).is_some(), "{page}");
    assert!(page.contains("shown only once"));
    assert!(page.contains("may type into it"));
    assert!(page.contains("Only users signed in"));
    let watch_only = ada
        .send(
            Method::POST,
            &format!("/sessions/{ADAS}/share"),
            Body::Form(String::new()),
        )
        .await;
    assert_eq!(watch_only.status, StatusCode::OK);
    assert!(watch_only.text().contains("without typing"));
    let foreign = bob
        .send(
            Method::POST,
            &format!("/sessions/{ADAS}/share"),
            Body::Form("may_type=on".to_owned()),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);

    // Listed newest first, live, and never with a token.
    let listed = ada.get("/v1/shares").await;
    assert_eq!(listed.status, StatusCode::OK);
    let shares = listed.json();
    let shares = shares.as_array().unwrap();
    assert_eq!(shares.len(), 3);
    assert_eq!(shares[2]["id"], id);
    assert!(
        shares
            .iter()
            .all(|share| share["state"] == "live" && share["session"] == ADAS)
    );
    assert_eq!(
        shares
            .iter()
            .map(|s| s["may_type"].clone())
            .collect::<Vec<_>>(),
        [json!(false), json!(true), json!(true)]
    );
    let text = listed.text();
    assert!(!text.contains(token) && !text.contains(from_page));
    assert!(!text.contains("token"), "{text}");
    assert_eq!(bob.get("/v1/shares").await.json(), json!([]));

    // And on the sessions page, under their session, with a Revoke button.
    let page = ada.get("/sessions").await.text();
    assert!(page.contains(&format!("action=\"/sessions/{ADAS}/share\"")));
    assert!(!page.contains(&format!("action=\"/sessions/{ADAS_OTHER}/share\"")));
    for share in shares {
        let revoke = format!(
            "action=\"/shares/{}/revoke\"",
            share["id"].as_str().unwrap()
        );
        assert!(page.contains(&revoke), "{page}");
    }
    assert!(page.contains("watch only") && page.contains("may type"));
    assert!(!page.contains(token));
}

pub async fn a_redeemed_link_opens_exactly_its_session_to_a_viewer(db: &Db) {
    let logs = logs();
    let (dir, seen) = Directory::start_recording(db.open().await, DirectoryConfig::default()).await;
    let host = FakeHost::start("h1").await;
    dir.lease("h1", &host.url, LONG_TTL, 0).await;
    create_session_of(&*dir.store, "ada", ADAS, "h1", 1).await;
    create_session_of(&*dir.store, "ada", ADAS_OTHER, "h1", 1).await;
    let ada = dir.sign_in_as("ada").await;
    let bob = dir.sign_in_as("bob").await;
    let made = shared(&ada, ADAS, false).await;
    let token = made["token"].as_str().unwrap();
    let unknown = place(&bob, NOBODYS).await;

    // Only for someone signed in, from an allowed origin.
    let signed_out = call_with(
        Method::POST,
        &format!("{}/v1/shares/redeem", dir.base),
        Body::Json(json!({ "token": token })),
        &[("origin", &dir.base)],
    )
    .await;
    assert_eq!(signed_out.status, StatusCode::UNAUTHORIZED);
    assert_eq!(signed_out.error(), "not signed in; open /login");
    assert!(signed_out.headers.get("set-cookie").is_none());
    let no_origin = call_with(
        Method::POST,
        &format!("{}/v1/shares/redeem", dir.base),
        Body::Json(json!({ "token": token })),
        &[("cookie", &bob.cookie)],
    )
    .await;
    assert_eq!(no_origin.status, StatusCode::FORBIDDEN);
    // A mangled or made-up token is no link at all.
    for wrong in [&token[1..], ShareToken::generate().as_str(), ""] {
        let refused = redeem(&bob, wrong).await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{wrong:?}");
        assert!(refused.error().contains("not valid"), "{}", refused.error());
    }

    let before = dir.store.now().await.unwrap();
    let redeemed = redeem(&bob, token).await;
    assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.text());
    assert_eq!(
        redeemed.json(),
        json!({ "session": ADAS, "owner": "ada", "may_type": false })
    );
    let cookie = redeemed.header("set-cookie");
    let (fixed, max_age) = cookie.rsplit_once("; Max-Age=").unwrap();
    assert_eq!(
        fixed,
        format!("thinline_share_{ADAS}={token}; HttpOnly; SameSite=Strict; Path=/v1")
    );
    let max_age: i64 = max_age.parse().unwrap();
    let left = (made["expires_at"].as_i64().unwrap() - before) / 1000;
    assert!((left - 5..=left + 1).contains(&max_age), "{cookie}");
    let bob_viewing = with_cookie(&bob, &redeemed.cookie());

    // Without the cookie, ada's session is unknown to bob; with it, bob
    // gets tickets naming him, his login and the grant.
    assert_unknown(&place(&bob, ADAS).await, ADAS, &unknown);
    let placed = place(&bob_viewing, ADAS).await;
    assert_eq!(placed.status, StatusCode::OK, "{}", placed.text());
    let claims = dir.check_ticket(&placed.json(), &bob, ADAS);
    assert_eq!(claims.share, grant(&made["id"], "ada", false));
    let renewed = bob_viewing
        .post(
            &format!("/v1/sessions/{ADAS}/ticket"),
            json!({ "host": "h1", "epoch": 1 }),
        )
        .await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text());
    let claims = dir.check_ticket(&renewed.json(), &bob, ADAS);
    assert_eq!(claims.share, grant(&made["id"], "ada", false));
    // The owner answers its probe, so the viewer is told to retry it.
    let reported = report(&bob_viewing, ADAS, "h1", 1).await;
    assert_eq!(reported.status, StatusCode::OK, "{}", reported.text());
    let answer = reported.json();
    assert_eq!(answer["decision"], "retry_owner");
    let claims = dir.check_ticket(&answer, &bob, ADAS);
    assert_eq!(claims.share, grant(&made["id"], "ada", false));

    // The cookie opens that session and no other: not ada's other one,
    // under its own name or under the other session's.
    let unknown_other = |answer: &Answer| assert_unknown(answer, ADAS_OTHER, &unknown);
    unknown_other(&place(&bob_viewing, ADAS_OTHER).await);
    let misnamed = with_cookie(&bob, &format!("thinline_share_{ADAS_OTHER}={token}"));
    unknown_other(&place(&misnamed, ADAS_OTHER).await);
    unknown_other(&report(&misnamed, ADAS_OTHER, "h1", 1).await);

    // A viewer ends nothing, lists and revokes nothing of the owner's,
    // and shares nothing further.
    let end = bob_viewing
        .post(&format!("/v1/sessions/{ADAS}/end"), json!({}))
        .await;
    assert_eq!(end.status, StatusCode::NOT_FOUND);
    let end_form = bob_viewing
        .send(Method::POST, &format!("/sessions/{ADAS}/end"), Body::None)
        .await;
    assert_eq!(end_form.status, StatusCode::NOT_FOUND);
    let record = dir.store.get_session(ADAS).await.unwrap().unwrap();
    assert_eq!(record.state, SessionState::Running);
    assert!(host.ended.lock().unwrap().is_empty());
    assert_eq!(bob_viewing.get("/v1/shares").await.json(), json!([]));
    let revoke = bob_viewing
        .post(
            &format!("/v1/shares/{}/revoke", made["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NOT_FOUND);
    assert_unknown(&share(&bob_viewing, ADAS, true).await, ADAS, &unknown);
    // Hot desking and new sessions are the viewer's own.
    for request in [json!({}), json!({ "new": true })] {
        let own = bob_viewing.post("/v1/placement", request).await;
        assert_eq!(own.status, StatusCode::OK, "{}", own.text());
        let own = own.json();
        assert_ne!(own["session"], ADAS);
        let session = own["session"].as_str().unwrap().to_owned();
        assert_eq!(dir.check_ticket(&own, &bob, &session).share, None);
    }
    // The owner may redeem too, and still opens the session as its owner.
    let ada_redeems = redeem(&ada, token).await;
    assert_eq!(ada_redeems.status, StatusCode::OK);
    let ada_viewing = with_cookie(&ada, &ada_redeems.cookie());
    let own = place(&ada_viewing, ADAS).await;
    assert_eq!(dir.check_ticket(&own.json(), &ada, ADAS).share, None);

    // The token was in no URL the directory saw, nor in any Location it
    // answered, nor in any log line.
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|line| line == "POST /v1/shares/redeem"),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|line| line.contains(token)), "{seen:?}");
    for answer in [&redeemed, &placed, &renewed, &reported] {
        assert!(answer.headers.get("location").is_none());
    }
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        logged.contains("redeemed a share link"),
        "the capture works"
    );
    assert!(!logged.contains(token), "the token was logged");
}

pub async fn revoked_expired_and_ended_links_open_nothing(db: &Db) {
    let dir = Directory::start(db.open().await, DirectoryConfig::default()).await;
    // A replica over the same store whose links last a moment.
    let brief = Directory::start(
        dir.store.clone(),
        DirectoryConfig {
            share_ttl: Duration::from_millis(300),
            ..DirectoryConfig::default()
        },
    )
    .await;
    dir.lease("h1", "http://127.0.0.1:8081", LONG_TTL, 0).await;
    create_session_of(&*dir.store, "ada", ADAS, "h1", 1).await;
    create_session_of(&*dir.store, "ada", ADAS_OTHER, "h1", 1).await;
    let ada = dir.sign_in_as("ada").await;
    let bob = dir.sign_in_as("bob").await;
    let unknown = place(&bob, NOBODYS).await;

    // Revoked: at once, for the cookie already given too.
    let revoked = shared(&ada, ADAS, true).await;
    let revoked_token = revoked["token"].as_str().unwrap();
    let bob_viewing = viewer(&bob, revoked_token).await;
    assert_eq!(place(&bob_viewing, ADAS).await.status, StatusCode::OK);
    let path = format!("/v1/shares/{}/revoke", revoked["id"].as_str().unwrap());
    let answer = ada.post(&path, json!({})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["state"], "revoked");
    assert_eq!(ada.post(&path, json!({})).await.json()["state"], "revoked");
    assert_unknown(&place(&bob_viewing, ADAS).await, ADAS, &unknown);
    let refused = redeem(&bob, revoked_token).await;
    assert_eq!(refused.status, StatusCode::GONE);
    assert_eq!(
        refused.error(),
        "this share link was revoked by its owner; ask them for a new one"
    );
    assert!(refused.headers.get("set-cookie").is_none());
    // The form does the same and goes back to the list, which no longer
    // shows it.
    let other = shared(&ada, ADAS, false).await;
    let other_id = other["id"].as_str().unwrap();
    let form = ada
        .send(
            Method::POST,
            &format!("/shares/{other_id}/revoke"),
            Body::None,
        )
        .await;
    assert_eq!(form.status, StatusCode::SEE_OTHER);
    assert_eq!(form.header("location"), "/sessions");
    assert!(!ada.get("/sessions").await.text().contains(other_id));
    let malformed = ada.post("/v1/shares/ZZ/revoke", json!({})).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let nobodys = ada
        .post(&format!("/v1/shares/{NOBODYS}/revoke"), json!({}))
        .await;
    assert_eq!(nobodys.status, StatusCode::NOT_FOUND);

    // Expired, by the store's clock.
    let ada_at_brief = ada.at(&brief);
    let bob_at_brief = bob.at(&brief);
    let expiring = shared(&ada_at_brief, ADAS, false).await;
    let expires_at = expiring["expires_at"].as_i64().unwrap();
    let expiring_token = expiring["token"].as_str().unwrap();
    let bob_viewing = viewer(&bob_at_brief, expiring_token).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while dir.store.now().await.unwrap() <= expires_at {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the link never expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = redeem(&bob_at_brief, expiring_token).await;
    assert_eq!(refused.status, StatusCode::GONE);
    assert!(
        refused.error().starts_with("this share link expired at "),
        "{}",
        refused.error()
    );
    assert!(refused.error().ends_with("; ask its owner for a new one"));
    assert_unknown(&place(&bob_viewing, ADAS).await, ADAS, &unknown);
    let states: Vec<Value> = ada
        .get("/v1/shares")
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|share| share["state"].clone())
        .collect();
    assert_eq!(
        states,
        [json!("expired"), json!("revoked"), json!("revoked")]
    );

    // Ended: the session is gone for its viewers as an unknown one.
    let ending = shared(&ada, ADAS_OTHER, false).await;
    let ending_token = ending["token"].as_str().unwrap();
    let bob_viewing = viewer(&bob, ending_token).await;
    assert_eq!(place(&bob_viewing, ADAS_OTHER).await.status, StatusCode::OK);
    let ended = ada
        .post(&format!("/v1/sessions/{ADAS_OTHER}/end"), json!({}))
        .await;
    assert_eq!(ended.status, StatusCode::OK);
    assert_unknown(&place(&bob_viewing, ADAS_OTHER).await, ADAS_OTHER, &unknown);
    let refused = redeem(&bob, ending_token).await;
    assert_eq!(refused.status, StatusCode::GONE);
    assert!(refused.error().contains("has ended"), "{}", refused.error());
    assert_eq!(
        share(&ada, ADAS_OTHER, false).await.status,
        StatusCode::CONFLICT
    );
}

/// A link opened while signed out (`/#share=TOKEN`) must survive signing
/// in. Browsers keep a URL's fragment across a redirect whose Location has
/// none, so every step here answers without one: `/` sends a stranger to
/// `/login`, whose form posts back to the page's own URL (no `action`,
/// so the fragment rides along), and a sign-in sends the browser to `/`.
pub async fn a_link_opened_signed_out_survives_signing_in(db: &Db) {
    let dir = Directory::start(db.open().await, DirectoryConfig::default()).await;
    directory::accounts::add(&*dir.store, "bob", "correct-horse")
        .await
        .unwrap();
    let page = dir.get("/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.header("location"), "/login");
    let form = dir.get("/login").await.text();
    assert!(form.contains("<form method=\"post\">"), "{form}");
    let signed_in = dir.login("bob", "correct-horse").await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.header("location"), "/");
    // A failed attempt answers the form again, at the same URL.
    let wrong = dir.login("bob", "wrong-horse-1").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text().contains("<form method=\"post\">"));
}
