//! Sessions belong to their users: ownership, tickets, hot desking, the
//! per-user cap, the sessions page and ending a session, each over one
//! database.

use std::time::Duration;

use auth::ticket::{TicketSigner, TicketVerifier};
use directory::DirectoryConfig;
use directory::edge::FORM_PAGE_POLICY;
use hyper::{Method, StatusCode};
use serde_json::json;
use store::{SessionState, SessionUpdate};

use crate::api::{report, verified};
use crate::harness::{Body, Db, Directory, EndCall, FakeHost, create_session_of, wait_until};

const ADAS: &str = "0123456789abcdef0123456789abcdef";
const BOBS: &str = "fedcba9876543210fedcba9876543210";
const NOBODYS: &str = "00000000000000000000000000000000";
const LONG_TTL: u64 = 60_000;

async fn directory(db: &Db, config: DirectoryConfig) -> Directory {
    Directory::start(db.open().await, config).await
}

pub async fn other_users_sessions_look_unknown(db: &Db) {
    let dir = directory(db, DirectoryConfig::default()).await;
    let host = FakeHost::start("h1").await;
    dir.lease("h1", &host.url, LONG_TTL, 0).await;
    dir.lease("h2", "http://127.0.0.1:8082", LONG_TTL, 0).await;
    create_session_of(&*dir.store, "ada", ADAS, "h1", 1).await;
    let bob = dir.sign_in_as("bob").await;

    let calls = |id: &'static str| {
        let bob = bob.clone();
        async move {
            [
                bob.post("/v1/placement", json!({ "session": id })).await,
                report(&bob, id, "h1", 1).await,
                bob.post(&format!("/v1/sessions/{id}/end"), json!({})).await,
            ]
        }
    };
    let foreign = calls(ADAS).await;
    let unknown = calls(NOBODYS).await;
    for (foreign, unknown) in foreign.iter().zip(&unknown) {
        assert_eq!(foreign.status, StatusCode::NOT_FOUND);
        assert_eq!(foreign.status, unknown.status);
        assert_eq!(
            foreign.text().replace(ADAS, "ID"),
            unknown.text().replace(NOBODYS, "ID"),
            "a foreign session answers exactly like an unknown one"
        );
        assert!(!foreign.text().contains("ticket"));
    }
    let form = bob
        .send(Method::POST, &format!("/sessions/{ADAS}/end"), Body::None)
        .await;
    assert_eq!(form.status, StatusCode::NOT_FOUND);
    // Nothing moved, ended or was told to the host.
    let record = dir.store.get_session(ADAS).await.unwrap().unwrap();
    assert_eq!(
        (record.state, record.owner_host.as_str(), record.epoch),
        (SessionState::Running, "h1", 1)
    );
    assert!(host.ended.lock().unwrap().is_empty());
    // Bob's hot desking never lands on ada's session.
    let placed = bob.post("/v1/placement", json!({})).await.json();
    assert_ne!(placed["session"], ADAS);
    assert_eq!(placed["epoch"], 1);
}

pub async fn tickets_are_signed_for_the_user_session_host_and_epoch(db: &Db) {
    let dir = directory(db, DirectoryConfig::default()).await;
    let host = FakeHost::start("h1").await;
    dir.lease("h1", &host.url, LONG_TTL, 0).await;
    create_session_of(&*dir.store, "ada", ADAS, "h1", 3).await;
    let ada = dir.sign_in_as("ada").await;

    let placed = ada.post("/v1/placement", json!({ "session": ADAS })).await;
    let answer = placed.json();
    let claims = dir.check_ticket(&answer, &ada, ADAS);
    assert_eq!(
        (claims.user.as_str(), claims.host.as_str(), claims.epoch),
        ("ada", "h1", 3)
    );
    assert_eq!(claims.login, ada.login.0);
    let now = auth::ticket::now_ms();
    assert!(claims.issued_at_ms <= now && now < claims.expires_at_ms);
    // Only the directory's key vouches for it.
    let ticket = answer["ticket"].as_str().unwrap();
    let stranger = TicketVerifier::new(vec![TicketSigner::generate().public_key()]);
    assert!(stranger.verify(ticket, now).is_err());
    let verifier = TicketVerifier::new(vec![dir.public_key.clone()]);
    assert!(
        verifier.verify(ticket, now + 70_000).is_err(),
        "a minute, no more"
    );
}

pub async fn hot_desking_picks_the_most_recently_active_running_session(db: &Db) {
    let dir = directory(db, DirectoryConfig::default()).await;
    dir.lease("h1", "http://127.0.0.1:8081", LONG_TTL, 0).await;
    dir.lease("h2", "http://127.0.0.1:8082", LONG_TTL, 0).await;
    let ada = dir.sign_in_as("ada").await;
    let newest_ended = "11111111111111111111111111111111";
    create_session_of(&*dir.store, "ada", ADAS, "h1", 1).await;
    create_session_of(&*dir.store, "ada", BOBS, "h2", 1).await;
    // ADAS was used last, though BOBS was started later...
    wait_until(
        Duration::from_secs(5),
        "ADAS to be the most recent",
        || async {
            dir.store
                .update_session(ADAS, 1, &SessionUpdate::default())
                .await
                .unwrap();
            let a = dir.store.get_session(ADAS).await.unwrap().unwrap();
            let b = dir.store.get_session(BOBS).await.unwrap().unwrap();
            a.last_active > b.last_active
        },
    )
    .await;
    // ...and an ended session is never picked, however recent.
    create_session_of(&*dir.store, "ada", newest_ended, "h2", 1).await;
    dir.store.end_session(newest_ended).await.unwrap();

    let placed = ada.post("/v1/placement", json!({})).await;
    assert_eq!(
        verified(&dir, &placed, &ada, ADAS),
        json!({ "session": ADAS, "host": "h1", "url": "http://127.0.0.1:8081", "epoch": 1 })
    );
    assert_eq!(
        ada.post("/v1/placement", json!({ "session": null }))
            .await
            .json()["session"],
        ADAS
    );
    // Asking for a new one still gets a new one.
    let fresh = ada
        .post("/v1/placement", json!({ "new": true }))
        .await
        .json();
    assert_ne!(fresh["session"], ADAS);
    assert_ne!(fresh["session"], BOBS);
}

pub async fn the_session_cap_refuses_new_sessions(db: &Db) {
    let dir = directory(
        db,
        DirectoryConfig {
            max_sessions_per_user: 2,
            ..DirectoryConfig::default()
        },
    )
    .await;
    dir.lease("h1", "http://127.0.0.1:8081", LONG_TTL, 0).await;
    let ada = dir.sign_in_as("ada").await;
    let bob = dir.sign_in_as("bob").await;
    create_session_of(&*dir.store, "ada", ADAS, "h1", 1).await;
    create_session_of(&*dir.store, "ada", BOBS, "h1", 1).await;

    let capped = ada.post("/v1/placement", json!({ "new": true })).await;
    assert_eq!(capped.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        capped.error(),
        "you already run 2 sessions, the most allowed; end one on /sessions"
    );
    // Reaching the running ones is still fine, and others are not capped.
    assert_eq!(
        ada.post("/v1/placement", json!({})).await.status,
        StatusCode::OK
    );
    assert_eq!(
        bob.post("/v1/placement", json!({ "new": true }))
            .await
            .status,
        StatusCode::OK
    );
    let ended = ada
        .post(&format!("/v1/sessions/{BOBS}/end"), json!({}))
        .await;
    assert_eq!(ended.status, StatusCode::OK);
    let placed = ada.post("/v1/placement", json!({ "new": true })).await;
    assert_eq!(placed.status, StatusCode::OK, "{}", placed.text());
}

pub async fn ending_a_session_fences_it_and_tells_its_host(db: &Db) {
    let dir = directory(
        db,
        DirectoryConfig {
            host_token: Some(directory::HostToken("s3cret".into())),
            ..DirectoryConfig::default()
        },
    )
    .await;
    let host = FakeHost::start("h1").await;
    dir.lease("h1", &host.url, LONG_TTL, 0).await;
    create_session_of(&*dir.store, "ada", ADAS, "h1", 1).await;
    create_session_of(&*dir.store, "ada", BOBS, "h1", 4).await;
    let ada = dir.sign_in_as("ada").await;

    let ended = ada
        .post(&format!("/v1/sessions/{ADAS}/end"), json!({}))
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.text());
    assert_eq!(
        ended.json(),
        json!({ "session": ADAS, "state": "ended", "epoch": 2 })
    );
    let record = dir.store.get_session(ADAS).await.unwrap().unwrap();
    assert_eq!((record.state, record.epoch), (SessionState::Ended, 2));
    assert_eq!(
        *host.ended.lock().unwrap(),
        [EndCall {
            session: ADAS.to_owned(),
            authorization: Some("Bearer s3cret".to_owned()),
        }]
    );
    // Again: nothing more happens.
    let again = ada
        .post(&format!("/v1/sessions/{ADAS}/end"), json!({}))
        .await;
    assert_eq!(again.json()["epoch"], 2);
    assert_eq!(host.ended.lock().unwrap().len(), 1);
    let placed = ada.post("/v1/placement", json!({ "session": ADAS })).await;
    assert_eq!(placed.status, StatusCode::CONFLICT);

    // The form does the same and goes back to the list.
    let form = ada
        .send(Method::POST, &format!("/sessions/{BOBS}/end"), Body::None)
        .await;
    assert_eq!(form.status, StatusCode::SEE_OTHER);
    assert_eq!(form.header("location"), "/sessions");
    let record = dir.store.get_session(BOBS).await.unwrap().unwrap();
    assert_eq!((record.state, record.epoch), (SessionState::Ended, 5));
    assert_eq!(host.ended.lock().unwrap().len(), 2);

    // A host that is gone does not stop the session from ending.
    dir.lease("h9", &crate::harness::dead_url(), LONG_TTL, 0)
        .await;
    create_session_of(&*dir.store, "ada", NOBODYS, "h9", 1).await;
    let ended = ada
        .post(&format!("/v1/sessions/{NOBODYS}/end"), json!({}))
        .await;
    assert_eq!(ended.status, StatusCode::OK);
}

pub async fn the_sessions_page_lists_only_ones_own_escaped(db: &Db) {
    let dir = directory(db, DirectoryConfig::default()).await;
    let ada = dir.sign_in_as("ada").await;
    create_session_of(&*dir.store, "ada", ADAS, "h1", 1).await;
    create_session_of(&*dir.store, "bob", BOBS, "h1", 1).await;
    dir.store
        .update_session(
            ADAS,
            1,
            &SessionUpdate {
                title: Some(Some("<script>alert('x')</script>".to_owned())),
                ..SessionUpdate::default()
            },
        )
        .await
        .unwrap();

    let page = ada.get("/sessions").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("content-security-policy"), FORM_PAGE_POLICY);
    assert_eq!(page.header("cache-control"), "no-store");
    let text = page.text();
    assert!(
        text.contains(&format!("href=\"/?session={ADAS}\"")),
        "{text}"
    );
    assert!(text.contains(&format!("action=\"/sessions/{ADAS}/end\"")));
    // maud escapes what could open markup or end a `"`-quoted attribute;
    // an apostrophe in text is neither, so it stays as it is.
    assert!(text.contains("&lt;script&gt;alert('x')&lt;/script&gt;"));
    assert!(!text.contains("<script"));
    assert!(!text.contains(BOBS), "bob's session is not listed");
    assert!(text.contains("href=\"/?new=1\""));
    assert!(text.contains("action=\"/logout\""));
    let record = dir.store.get_session(ADAS).await.unwrap().unwrap();
    assert!(text.contains(&directory::views::utc_minute(record.created_at)));
}
