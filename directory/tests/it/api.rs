//! The tests proper, each over one database.

use std::sync::Arc;
use std::time::Duration;

use directory::DirectoryConfig;
use hyper::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::harness::{
    Answer, Body, Db, Directory, FakeHost, User, call_authorized, create_session, dead_url,
    wait_until,
};
use hyper::Method;

const SESSION: &str = "0123456789abcdef0123456789abcdef";
const OTHER_SESSION: &str = "fedcba9876543210fedcba9876543210";
/// Long enough that no test's lease runs out by accident.
const LONG_TTL: u64 = 60_000;
const SHORT_TTL: u64 = 1_000;

/// The operators' token of [`directory`]'s directories.
const OPERATOR_TOKEN: &str = "operator s3cret";

async fn directory(db: &Db) -> Directory {
    let config = DirectoryConfig {
        operator_token: Some(directory::HostToken(OPERATOR_TOKEN.into())),
        ..DirectoryConfig::default()
    };
    Directory::start(db.open().await, config).await
}

/// An operator's drain (`POST`) or its lifting (`DELETE`) of host `id`.
async fn operator_drain(dir: &Directory, method: Method, id: &str) -> Answer {
    let url = format!("{}/v1/hosts/{id}/drain", dir.base);
    let bearer = format!("Bearer {OPERATOR_TOKEN}");
    call_authorized(method, &url, Some(json!({})), Some(&bearer)).await
}

async fn epoch_of(directory: &Directory, id: &str) -> (String, u64) {
    let record = directory.store.get_session(id).await.unwrap().unwrap();
    (record.owner_host, record.epoch)
}

pub async fn report(user: &User, id: &str, host: &str, epoch: u64) -> crate::harness::Answer {
    user.post(
        &format!("/v1/sessions/{id}/unreachable"),
        json!({ "host": host, "epoch": epoch }),
    )
    .await
}

/// An answer without its ticket, after checking the ticket names what the
/// answer says.
pub fn verified(
    dir: &Directory,
    answer: &crate::harness::Answer,
    user: &User,
    session: &str,
) -> Value {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let mut value = answer.json();
    dir.check_ticket(&value, user, session);
    let object = value.as_object_mut().unwrap();
    object.remove("ticket");
    object.remove("ticket_expires_in_ms");
    value
}

pub async fn the_host_list_shows_leases_loads_and_expiry(db: &Db) {
    let dir = directory(db).await;
    let first = dir.lease("h1", "http://127.0.0.1:8081", SHORT_TTL, 3).await;
    assert!(dir.is_live("h1").await);
    let renewed = dir.lease("h1", "http://127.0.0.1:8091", SHORT_TTL, 7).await;
    assert!(renewed.lease_expires_at >= first.lease_expires_at);

    let hosts = dir.get("/v1/hosts").await.json();
    assert_eq!(
        hosts,
        json!([{
            "id": "h1",
            "url": "http://127.0.0.1:8091",
            "load": 7,
            "draining": false,
            "drain": null,
            "lease_expires_at": renewed.lease_expires_at,
            "live": true,
        }])
    );

    wait_until(Duration::from_secs(5), "the lease to expire", || async {
        !dir.is_live("h1").await
    })
    .await;
    // A renewal after expiry brings the host back.
    dir.lease("h1", "http://127.0.0.1:8091", SHORT_TTL, 0).await;
    assert!(dir.is_live("h1").await);
}

/// Hosts keep their leases in the store; the directory takes none, so
/// nobody who can reach a directory can register a host or move one's url
/// (and with it the next users' sessions and tickets).
pub async fn no_host_registers_through_the_directory(db: &Db) {
    let dir = directory(db).await;
    let lease = json!({ "url": "http://127.0.0.1:8081", "ttl_ms": 5000, "load": 0 });
    let refused = dir.put("/v1/hosts/h1/lease", lease).await;
    assert!(
        refused.status == StatusCode::NOT_FOUND || refused.status == StatusCode::METHOD_NOT_ALLOWED,
        "{} {}",
        refused.status,
        refused.text()
    );
    assert_eq!(dir.store.list_hosts().await.unwrap(), []);
}

pub async fn a_new_session_goes_to_the_least_loaded_host(db: &Db) {
    let dir = directory(db).await;
    let ada = dir.sign_in_as("ada").await;
    dir.lease("h1", "http://127.0.0.1:8081", LONG_TTL, 5).await;
    dir.lease("h2", "http://127.0.0.1:8082", LONG_TTL, 1).await;
    dir.lease("h3", "http://127.0.0.1:8083", LONG_TTL, 3).await;

    let placed = ada.post("/v1/placement", json!({ "session": null })).await;
    let session = placed.json()["session"].as_str().unwrap().to_owned();
    assert_eq!(session.len(), 32);
    assert!(
        session
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(
        verified(&dir, &placed, &ada, &session),
        json!({ "session": session, "host": "h2", "url": "http://127.0.0.1:8082", "epoch": 1 })
    );
    // An empty body and `new` are new sessions too, each with its own id.
    for body in [json!({}), json!({ "new": true })] {
        let again = ada.post("/v1/placement", body).await.json();
        assert_eq!(again["host"], "h2");
        assert_eq!(again["epoch"], 1);
        assert_ne!(again["session"], session.as_str());
    }
    // A session that does not exist (yet) is not made up.
    let unknown = ada
        .post("/v1/placement", json!({ "session": SESSION }))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Loads change with renewals.
    dir.lease("h1", "http://127.0.0.1:8081", LONG_TTL, 0).await;
    assert_eq!(
        ada.post("/v1/placement", json!({ "new": true }))
            .await
            .json()["host"],
        "h1"
    );

    let bad = ada.post("/v1/placement", json!({ "session": "xyz" })).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.error().contains("32 hex digits"));
    let both = ada
        .post("/v1/placement", json!({ "session": SESSION, "new": true }))
        .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
}

pub async fn drained_hosts_get_no_new_sessions(db: &Db) {
    let dir = directory(db).await;
    let ada = dir.sign_in_as("ada").await;
    dir.lease("h1", "http://127.0.0.1:8081", LONG_TTL, 0).await;
    dir.lease("h2", "http://127.0.0.1:8082", LONG_TTL, 9).await;

    let drained = operator_drain(&dir, Method::POST, "h1").await;
    assert_eq!(drained.status, StatusCode::OK);
    assert_eq!(
        drained.json(),
        json!({ "id": "h1", "drain_requested": true })
    );
    let placed = ada.post("/v1/placement", json!({ "session": null })).await;
    assert_eq!(placed.json()["host"], "h2");

    // The host learns it on its next renewal, which keeps it, and the list
    // says whose drain it is.
    let record = dir.lease("h1", "http://127.0.0.1:8081", LONG_TTL, 0).await;
    assert!(record.drain_requested);
    let hosts = dir.get("/v1/hosts").await.json();
    assert_eq!(hosts[0]["draining"], true);
    assert_eq!(hosts[0]["drain"], "operator");

    // Lifted, the host takes sessions again.
    let lifted = operator_drain(&dir, Method::DELETE, "h1").await;
    assert_eq!(lifted.status, StatusCode::OK);
    assert_eq!(
        lifted.json(),
        json!({ "id": "h1", "drain_requested": false })
    );
    let hosts = dir.get("/v1/hosts").await.json();
    assert_eq!(
        (&hosts[0]["draining"], &hosts[0]["drain"]),
        (&json!(false), &Value::Null)
    );
    let placed = ada.post("/v1/placement", json!({ "new": true })).await;
    assert_eq!(placed.json()["host"], "h1", "the least loaded again");

    // A host shutting down drains too, on its own word, and the list says so.
    dir.store
        .renew_lease(
            "h2",
            Some("secret of h2"),
            "http://127.0.0.1:8082",
            LONG_TTL,
            9,
            true,
        )
        .await
        .unwrap();
    let hosts = dir.get("/v1/hosts").await.json();
    assert_eq!(hosts[1]["drain"], "shutdown");

    let unknown = operator_drain(&dir, Method::POST, "h9").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.error().contains("h9"));
    let unknown = operator_drain(&dir, Method::DELETE, "h9").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

pub async fn no_healthy_host_is_a_503_with_advice(db: &Db) {
    let dir = directory(db).await;
    let ada = dir.sign_in_as("ada").await;
    let none = ada.post("/v1/placement", json!({ "session": null })).await;
    assert_eq!(none.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        none.json(),
        json!({ "error": "no healthy host is available; start a host or wait for one to come back" })
    );

    dir.lease("h1", "http://127.0.0.1:8081", LONG_TTL, 0).await;
    operator_drain(&dir, Method::POST, "h1").await;
    let drained = ada.post("/v1/placement", json!({ "session": null })).await;
    assert_eq!(drained.status, StatusCode::SERVICE_UNAVAILABLE);

    // A session whose owner is proven dead, with nowhere to go.
    dir.lease("h2", &dead_url(), LONG_TTL, 0).await;
    create_session(&*dir.store, SESSION, "h2", 1).await;
    let stuck = report(&ada, SESSION, "h2", 1).await;
    assert_eq!(stuck.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(stuck.error().contains("start a host"));
    assert_eq!(epoch_of(&dir, SESSION).await, ("h2".to_owned(), 1));
}

pub async fn a_live_owner_is_retried_not_replaced(db: &Db) {
    let dir = directory(db).await;
    let ada = dir.sign_in_as("ada").await;
    let owner = FakeHost::start("h1").await;
    dir.lease("h1", &owner.url, LONG_TTL, 0).await;
    dir.lease("h2", "http://127.0.0.1:8082", LONG_TTL, 0).await;
    create_session(&*dir.store, SESSION, "h1", 1).await;

    let answer = report(&ada, SESSION, "h1", 1).await;
    assert_eq!(
        verified(&dir, &answer, &ada, SESSION),
        json!({ "decision": "retry_owner", "host": "h1", "url": owner.url, "epoch": 1, "retry_after_ms": 250 })
    );
    assert_eq!(epoch_of(&dir, SESSION).await, ("h1".to_owned(), 1));

    let placed = ada
        .post("/v1/placement", json!({ "session": SESSION }))
        .await;
    assert_eq!(
        verified(&dir, &placed, &ada, SESSION),
        json!({ "session": SESSION, "host": "h1", "url": owner.url, "epoch": 1 })
    );
}

pub async fn a_silent_owner_is_waited_for_until_its_lease_expires(db: &Db) {
    let dir = directory(db).await;
    let ada = dir.sign_in_as("ada").await;
    // Accepts connections (the kernel does, from the backlog) and never
    // answers: a stopped or partitioned host. A timeout is no evidence.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    dir.lease("h1", &silent_url, SHORT_TTL, 0).await;
    dir.lease("h2", "http://127.0.0.1:8082", LONG_TTL, 4).await;
    dir.lease("h3", "http://127.0.0.1:8083", LONG_TTL, 2).await;
    create_session(&*dir.store, SESSION, "h1", 3).await;

    let first = report(&ada, SESSION, "h1", 3).await.json();
    if dir.is_live("h1").await {
        // Still within the lease after the probe timed out.
        assert_eq!(first["decision"], "retry_owner", "{first}");
        assert_eq!(epoch_of(&dir, SESSION).await, ("h1".to_owned(), 3));
    }
    wait_until(Duration::from_secs(5), "h1's lease to expire", || async {
        !dir.is_live("h1").await
    })
    .await;

    let moved = verified(&dir, &report(&ada, SESSION, "h1", 3).await, &ada, SESSION);
    assert_eq!(
        moved,
        json!({ "decision": "moved", "host": "h3", "url": "http://127.0.0.1:8083", "epoch": 4 })
    );
    assert_eq!(epoch_of(&dir, SESSION).await, ("h3".to_owned(), 4));
    // A client that still knew the old owner gets the same answer, and
    // nothing moves again.
    let again = verified(&dir, &report(&ada, SESSION, "h1", 3).await, &ada, SESSION);
    assert_eq!(again, moved);
    assert_eq!(epoch_of(&dir, SESSION).await, ("h3".to_owned(), 4));
    drop(silent);
}

pub async fn an_owner_proven_dead_is_replaced_at_once(db: &Db) {
    let dir = directory(db).await;
    let ada = dir.sign_in_as("ada").await;
    dir.lease("h1", &dead_url(), LONG_TTL, 0).await;
    dir.lease("h2", "http://127.0.0.1:8082", LONG_TTL, 5).await;
    create_session(&*dir.store, SESSION, "h1", 1).await;

    let moved = report(&ada, SESSION, "h1", 1).await;
    assert_eq!(
        verified(&dir, &moved, &ada, SESSION),
        json!({ "decision": "moved", "host": "h2", "url": "http://127.0.0.1:8082", "epoch": 2 })
    );
    assert!(dir.is_live("h1").await, "moved before the lease ran out");
    assert_eq!(epoch_of(&dir, SESSION).await, ("h2".to_owned(), 2));
}

pub async fn another_host_answering_proves_the_owner_gone(db: &Db) {
    let dir = directory(db).await;
    let ada = dir.sign_in_as("ada").await;
    // h1's port now belongs to a process that calls itself h9.
    let impostor = FakeHost::start("h9").await;
    dir.lease("h1", &impostor.url, LONG_TTL, 0).await;
    dir.lease("h2", "http://127.0.0.1:8082", LONG_TTL, 0).await;
    create_session(&*dir.store, SESSION, "h1", 1).await;

    let moved = report(&ada, SESSION, "h1", 1).await.json();
    assert_eq!(moved["decision"], "moved");
    assert_eq!(moved["host"], "h2");
    assert_eq!(epoch_of(&dir, SESSION).await, ("h2".to_owned(), 2));
}

pub async fn placement_moves_a_session_whose_owner_expired(db: &Db) {
    let dir = directory(db).await;
    let ada = dir.sign_in_as("ada").await;
    dir.lease("h1", "http://127.0.0.1:8081", SHORT_TTL, 0).await;
    dir.lease("h2", "http://127.0.0.1:8082", LONG_TTL, 8).await;
    create_session(&*dir.store, SESSION, "h1", 5).await;
    wait_until(Duration::from_secs(5), "h1's lease to expire", || async {
        !dir.is_live("h1").await
    })
    .await;

    let placed = ada
        .post("/v1/placement", json!({ "session": SESSION }))
        .await;
    assert_eq!(
        verified(&dir, &placed, &ada, SESSION),
        json!({ "session": SESSION, "host": "h2", "url": "http://127.0.0.1:8082", "epoch": 6 })
    );
    assert_eq!(epoch_of(&dir, SESSION).await, ("h2".to_owned(), 6));
}

/// A live page renews its ticket naming the host it is attached to. The
/// owner's lease has lapsed (a busy store took its renewal late), but the
/// page's working connection outweighs it: the renewal names the same host
/// at the same epoch and moves nothing, where a placement would move the
/// session and restart its programs.
pub async fn a_renewal_keeps_the_session_on_the_host_it_is_attached_to(db: &Db) {
    let dir = directory(db).await;
    let ada = dir.sign_in_as("ada").await;
    dir.lease("h1", "http://127.0.0.1:8081", SHORT_TTL, 0).await;
    dir.lease("h2", "http://127.0.0.1:8082", LONG_TTL, 8).await;
    create_session(&*dir.store, SESSION, "h1", 5).await;
    wait_until(Duration::from_secs(5), "h1's lease to expire", || async {
        !dir.is_live("h1").await
    })
    .await;
    let renew = |host: &'static str, epoch: u64| {
        let ada = &ada;
        async move {
            ada.post(
                &format!("/v1/sessions/{SESSION}/ticket"),
                json!({ "host": host, "epoch": epoch }),
            )
            .await
        }
    };

    for _ in 0..2 {
        let renewed = renew("h1", 5).await;
        assert_eq!(
            verified(&dir, &renewed, &ada, SESSION),
            json!({ "session": SESSION, "host": "h1", "url": "http://127.0.0.1:8081", "epoch": 5 })
        );
        assert_eq!(epoch_of(&dir, SESSION).await, ("h1".to_owned(), 5));
    }

    // A claim the record does not bear out is a placement: the session
    // moves off the lapsed owner, once, and later renewals naming the old
    // attachment are sent to the new owner.
    let moved = renew("h1", 4).await;
    assert_eq!(
        verified(&dir, &moved, &ada, SESSION),
        json!({ "session": SESSION, "host": "h2", "url": "http://127.0.0.1:8082", "epoch": 6 })
    );
    let stale = renew("h1", 5).await;
    assert_eq!(
        verified(&dir, &stale, &ada, SESSION),
        json!({ "session": SESSION, "host": "h2", "url": "http://127.0.0.1:8082", "epoch": 6 })
    );
    assert_eq!(epoch_of(&dir, SESSION).await, ("h2".to_owned(), 6));

    // Refusals like the other session routes: others' and unknown
    // sessions alike, ended ones, and bodies that are not a renewal.
    let bob = dir.sign_in_as("bob").await;
    let hers = bob
        .post(
            &format!("/v1/sessions/{SESSION}/ticket"),
            json!({ "host": "h2", "epoch": 6 }),
        )
        .await;
    assert_eq!(hers.status, StatusCode::NOT_FOUND, "{}", hers.text());
    for body in [
        json!({ "host": "h2" }),
        json!({ "host": "h 2", "epoch": 6 }),
        json!({ "host": "h2", "epoch": 6, "new": true }),
    ] {
        let bad = ada
            .post(&format!("/v1/sessions/{SESSION}/ticket"), body.clone())
            .await;
        assert_eq!(
            bad.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            bad.text()
        );
    }
    let ended = ada
        .post(&format!("/v1/sessions/{SESSION}/end"), json!({}))
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.text());
    let after = ada
        .post(
            &format!("/v1/sessions/{SESSION}/ticket"),
            json!({ "host": "h2", "epoch": 7 }),
        )
        .await;
    assert_eq!(after.status, StatusCode::CONFLICT, "{}", after.text());
}

pub async fn concurrent_reports_on_two_replicas_agree(db: &Db) {
    const CLIENTS: usize = 8;
    // Two replicas, each with its own pool over the same database, and the
    // same ticket key.
    let config = DirectoryConfig::default();
    let replicas = [
        Arc::new(Directory::start(db.open().await, config.clone()).await),
        Arc::new(Directory::start(db.open().await, config).await),
    ];
    let dir = &replicas[0];
    let ada = dir.sign_in_as("ada").await;
    dir.lease("h1", &dead_url(), LONG_TTL, 0).await;
    dir.lease("h2", "http://127.0.0.1:8082", LONG_TTL, 3).await;
    dir.lease("h3", "http://127.0.0.1:8083", LONG_TTL, 3).await;
    create_session(&*dir.store, SESSION, "h1", 7).await;

    let barrier = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            // The same browser, calling both replicas.
            let user = ada.at(&replicas[n % 2]);
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                report(&user, SESSION, "h1", 7).await
            })
        })
        .collect();
    let mut answers: Vec<Value> = Vec::new();
    for client in clients {
        let answer = client.await.unwrap();
        answers.push(verified(dir, &answer, &ada, SESSION));
    }
    for answer in &answers {
        assert_eq!(answer, &answers[0]);
    }
    assert_eq!(answers[0]["decision"], "moved");
    assert_eq!(answers[0]["epoch"], 8);
    let (owner, epoch) = epoch_of(dir, SESSION).await;
    assert_eq!(epoch, 8, "the epoch rose by exactly one");
    assert_eq!(answers[0]["host"], owner.as_str());
    assert!(owner == "h2" || owner == "h3");
}

pub async fn unknown_and_ended_sessions_are_refused(db: &Db) {
    let dir = directory(db).await;
    let ada = dir.sign_in_as("ada").await;
    dir.lease("h1", &dead_url(), LONG_TTL, 5).await;
    dir.lease("h2", "http://127.0.0.1:8082", LONG_TTL, 0).await;

    let unknown = report(&ada, SESSION, "h1", 1).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.error().contains(SESSION));

    create_session(&*dir.store, SESSION, "h1", 1).await;
    dir.store
        .update_session(
            SESSION,
            1,
            &store::SessionUpdate {
                state: Some(store::SessionState::Ended),
                ..store::SessionUpdate::default()
            },
        )
        .await
        .unwrap();
    let ended = report(&ada, SESSION, "h1", 1).await;
    assert_eq!(ended.status, StatusCode::CONFLICT);
    assert!(ended.error().contains("ended"));
    assert_eq!(epoch_of(&dir, SESSION).await, ("h1".to_owned(), 1));
    let placed = ada
        .post("/v1/placement", json!({ "session": SESSION }))
        .await;
    assert_eq!(placed.status, StatusCode::CONFLICT);
    assert!(
        placed.error().contains("\"new\": true"),
        "{}",
        placed.error()
    );
    // Hot desking passes it over for a new one.
    let placed = ada.post("/v1/placement", json!({})).await.json();
    assert_ne!(placed["session"], SESSION);
    assert_eq!(placed["host"], "h2");
    assert_eq!(placed["epoch"], 1);

    let malformed = report(&ada, "not-a-session", "h1", 1).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let bad_body = ada
        .post(
            &format!("/v1/sessions/{SESSION}/unreachable"),
            json!({ "host": "h1" }),
        )
        .await;
    assert_eq!(bad_body.status, StatusCode::BAD_REQUEST);
    assert!(bad_body.error().contains("epoch"));
}

pub async fn sessions_are_listed(db: &Db) {
    let dir = directory(db).await;
    let ada = dir.sign_in_as("ada").await;
    let bob = dir.sign_in_as("bob").await;
    create_session(&*dir.store, SESSION, "h1", 2).await;
    let sessions = ada.get("/v1/sessions").await.json();
    let listed = &sessions.as_array().unwrap()[0];
    let record = dir.store.get_session(SESSION).await.unwrap().unwrap();
    assert_eq!(
        listed,
        &json!({
            "id": SESSION,
            "owner": "ada",
            "owner_host": "h1",
            "epoch": 2,
            "state": "running",
            "title": "ada@box: ~",
            "foreground": null,
            "cwd": "/home/ada",
            "created_at": record.created_at,
            "last_active": record.last_active,
        })
    );
    dir.store
        .create_session(&store::SessionRecord {
            owner: "bob".to_owned(),
            id: OTHER_SESSION.to_owned(),
            ..record
        })
        .await
        .unwrap();
    // Each sees only their own, whatever they ask for.
    let adas = ada.get("/v1/sessions?owner=bob").await.json();
    assert_eq!(adas.as_array().unwrap().len(), 1);
    assert_eq!(adas[0]["id"], SESSION);
    let bobs = bob.get("/v1/sessions").await.json();
    assert_eq!(bobs.as_array().unwrap().len(), 1);
    assert_eq!(bobs[0]["id"], OTHER_SESSION);
    let nobody = dir.get("/v1/sessions").await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        nobody.json(),
        json!({ "error": "not signed in; open /login" })
    );
}

pub async fn settings_are_each_users_own_and_checked(db: &Db) {
    let dir = directory(db).await;
    let other = directory(db).await;
    let ada = dir.sign_in_as("ada").await;
    let bob = dir.sign_in_as("bob").await;
    let defaults = json!({
        "font_size": 15, "font_family": "", "theme": "dark", "cursor": "block",
        "cursor_blink": false, "copy_on_select": false, "right_click_paste": false,
        "bell": "visual", "clipboard_write": false, "prediction": "auto"
    });
    assert_eq!(ada.get("/v1/settings").await.json(), defaults);

    // A page that sets two things saves the whole document.
    let saved = ada
        .send(
            Method::PUT,
            "/v1/settings",
            Body::Json(json!({ "theme": "light", "font_size": 18 })),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text());
    let mut expected = defaults.clone();
    expected["theme"] = json!("light");
    expected["font_size"] = json!(18);
    assert_eq!(saved.json(), expected);
    // Another replica, the same account: the same settings.
    assert_eq!(ada.at(&other).get("/v1/settings").await.json(), expected);
    // Nobody else's.
    assert_eq!(bob.get("/v1/settings").await.json(), defaults);

    // Out of range or unknown: refused, saying why; nothing changes.
    for (body, why) in [
        (json!({ "font_size": 99 }), "8 to 32"),
        (
            json!({ "theme": "nord" }),
            "expected one of `dark`, `light`",
        ),
        (json!({ "font_family": "x\", serif" }), "font family"),
        (json!([1]), "invalid request body"),
    ] {
        let refused = ada
            .send(Method::PUT, "/v1/settings", Body::Json(body.clone()))
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(refused.error().contains(why), "{body}: {}", refused.error());
    }
    assert_eq!(ada.get("/v1/settings").await.json(), expected);

    // A change needs the page's origin and a sign-in.
    let url = format!("{}/v1/settings", dir.base);
    let foreign = crate::harness::call_with(
        Method::PUT,
        &url,
        Body::Json(json!({ "theme": "dark" })),
        &[("cookie", &ada.cookie), ("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert_eq!(
        dir.get("/v1/settings").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(ada.get("/v1/settings").await.json(), expected);

    // A document this build cannot read answers the defaults.
    dir.store
        .put_settings("ada", r#"{"theme":"a theme from a newer build"}"#)
        .await
        .unwrap();
    assert_eq!(ada.get("/v1/settings").await.json(), defaults);
}

pub async fn config_health_and_openapi(db: &Db) {
    let store = db.open().await;
    let kind = store.kind();
    let dir = Directory::start(
        store,
        DirectoryConfig {
            public_url: Some("http://127.0.0.1:8080/".to_owned()),
            peers: vec!["http://127.0.0.1:8090".to_owned()],
            ..DirectoryConfig::default()
        },
    )
    .await;
    assert_eq!(
        dir.get("/v1/config").await.json(),
        json!({ "directories": ["http://127.0.0.1:8080", "http://127.0.0.1:8090"] })
    );
    let health = dir.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json(), json!({ "status": "ok", "store": kind }));
    assert_eq!(health.header("x-content-type-options"), "nosniff");

    let missing = dir.get("/v1/nothing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.error().contains("openapi.json"));

    let document = dir.get("/v1/openapi.json").await;
    assert_eq!(document.status, StatusCode::OK);
    let document = document.json();
    // Generated by utoipa 5, which writes OpenAPI 3.1 (JSON Schema 2020-12
    // schemas, which a standard validator reads as they are).
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = document["paths"].as_object().unwrap();
    let routes = [
        ("/v1/hosts", "get"),
        ("/v1/hosts/{id}/drain", "post"),
        ("/v1/hosts/{id}/drain", "delete"),
        ("/v1/me", "get"),
        ("/v1/placement", "post"),
        ("/v1/sessions/{id}/unreachable", "post"),
        ("/v1/sessions/{id}/ticket", "post"),
        ("/v1/sessions/{id}/end", "post"),
        ("/v1/sessions/{id}/shares", "post"),
        ("/v1/shares", "get"),
        ("/v1/shares/{id}/revoke", "post"),
        ("/v1/shares/redeem", "post"),
        ("/v1/sessions", "get"),
        ("/v1/settings", "get"),
        ("/v1/settings", "put"),
        ("/v1/config", "get"),
        ("/v1/openapi.json", "get"),
        ("/healthz", "get"),
        ("/login", "get"),
        ("/login", "post"),
        ("/logout", "post"),
        ("/", "get"),
        ("/index.html", "get"),
        ("/sessions", "get"),
        ("/sessions/{id}/end", "post"),
        ("/sessions/{id}/share", "post"),
        ("/shares/{id}/revoke", "post"),
        ("/v1/recordings", "get"),
        ("/v1/recordings/preference", "put"),
        ("/v1/recordings/{id}", "get"),
        ("/v1/recordings/{id}/frames", "get"),
        ("/v1/recordings/{id}/export", "get"),
        ("/v1/recordings/{id}/delete", "post"),
        ("/recordings", "get"),
        ("/recordings/preference", "post"),
        ("/recordings/{id}/delete", "post"),
        ("/play", "get"),
    ];
    let listed: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(listed, routes.len());
    for (path, method) in routes {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is missing"
        );
    }
    // Every schema it refers to is defined.
    let text = document.to_string();
    for reference in text.split("#/components/schemas/").skip(1) {
        let name: String = reference
            .chars()
            .take_while(|c| c.is_alphanumeric())
            .collect();
        assert!(
            document["components"]["schemas"][&name].is_object(),
            "undefined schema {name}"
        );
    }
}

/// What schemathesis found (tests/fuzz/run.py): requests the directory
/// refuses with an answer its OpenAPI document did not list, or accepted
/// though the document forbids them. Each is now refused, and the refusal
/// is in the document.
pub async fn malformed_requests_get_the_refusals_the_document_lists(db: &Db) {
    let dir = directory(db).await;
    dir.lease("h1", "http://127.0.0.1:8081", LONG_TTL, 0).await;
    create_session(dir.store.as_ref(), SESSION, "h1", 1).await;
    let ada = dir.sign_in_as("ada").await;
    let document = dir.get("/v1/openapi.json").await.json();
    let bearer = format!("Bearer {OPERATOR_TOKEN}");
    let headers = [
        ("cookie", ada.cookie.as_str()),
        ("origin", dir.base.as_str()),
        ("authorization", bearer.as_str()),
    ];
    let unreachable = format!("/v1/sessions/{SESSION}/unreachable");
    let cases = [
        // Host and session ids outside their alphabet.
        (
            Method::POST,
            "/v1/hosts/{id}/drain",
            "/v1/hosts/h%201/drain".to_owned(),
            None,
        ),
        (
            Method::DELETE,
            "/v1/hosts/{id}/drain",
            "/v1/hosts/h%201/drain".to_owned(),
            None,
        ),
        (
            Method::POST,
            "/sessions/{id}/end",
            "/sessions/0/end".to_owned(),
            None,
        ),
        // serde takes a struct's fields as an array too: `[]` was placed
        // as a new session, `["h1", 1]` read as a report.
        (
            Method::POST,
            "/v1/placement",
            "/v1/placement".to_owned(),
            Some(json!([])),
        ),
        (
            Method::POST,
            "/v1/sessions/{id}/unreachable",
            unreachable.clone(),
            Some(json!(["h1", 1])),
        ),
        // Unknown fields, and a session with new, are refused: the
        // document says so now.
        (
            Method::POST,
            "/v1/placement",
            "/v1/placement".to_owned(),
            Some(json!({ "x": 1 })),
        ),
        (
            Method::POST,
            "/v1/placement",
            "/v1/placement".to_owned(),
            Some(json!({ "session": SESSION, "new": true })),
        ),
        (
            Method::POST,
            "/v1/sessions/{id}/unreachable",
            unreachable.clone(),
            Some(json!({ "host": "h1", "epoch": 1, "x": 1 })),
        ),
        // An epoch past u64 (the document's maximum now).
        (
            Method::POST,
            "/v1/sessions/{id}/unreachable",
            unreachable,
            Some(json!({ "host": "h1", "epoch": 445_117_822_012_160_868_352_f64 })),
        ),
    ];
    for (method, template, path, body) in cases {
        let body = body.map_or(Body::None, Body::Json);
        let answer = dir.send(method.clone(), &path, body, &headers).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{method} {path}: {}",
            answer.text()
        );
        let operation = method.as_str().to_ascii_lowercase();
        assert!(
            document["paths"][template][&operation]["responses"]["400"].is_object(),
            "{method} {template} answers 400 but its document does not say so"
        );
    }
    // Without a static folder the page is a 404, which the document lists.
    let page = dir.send(Method::GET, "/", Body::None, &headers).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(document["paths"]["/"]["get"]["responses"]["404"].is_object());

    // The document says what the handlers check, so generated requests it
    // calls valid are.
    let schemas = &document["components"]["schemas"];
    for name in ["PlacementRequest", "UnreachableRequest"] {
        assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
    }
    assert_eq!(
        schemas["PlacementRequest"]["not"]["required"],
        json!(["session", "new"])
    );
    let unreachable = &schemas["UnreachableRequest"]["properties"];
    assert_eq!(unreachable["epoch"]["maximum"], u64::MAX);
    assert_eq!(unreachable["host"]["pattern"], "^[A-Za-z0-9._-]{1,64}$");
    let host_id = &document["paths"]["/v1/hosts/{id}/drain"]["post"]["parameters"][0]["schema"];
    assert_eq!(host_id["pattern"], "^[A-Za-z0-9._-]{1,64}$");
    for path in [
        "/v1/sessions/{id}/end",
        "/v1/sessions/{id}/unreachable",
        "/sessions/{id}/end",
    ] {
        let session_id = &document["paths"][path]["post"]["parameters"][0]["schema"];
        assert_eq!(session_id["pattern"], "^[0-9a-fA-F]{32}$", "{path}");
    }
}

pub async fn the_page_is_served_with_a_policy_naming_live_hosts(db: &Db) {
    let pages = tempfile::tempdir().unwrap();
    std::fs::write(
        pages.path().join("index.html"),
        "<!doctype html><p>thinline</p>",
    )
    .unwrap();
    std::fs::write(pages.path().join("style.css"), "body { color: red }").unwrap();
    let dir = Directory::start(
        db.open().await,
        DirectoryConfig {
            static_dir: Some(pages.path().to_owned()),
            ..DirectoryConfig::default()
        },
    )
    .await;
    dir.lease("h1", "http://127.0.0.1:8081", LONG_TTL, 0).await;
    dir.lease("h2", "https://h2.example.com", LONG_TTL, 0).await;
    dir.lease("h3", "http://127.0.0.1:8083", SHORT_TTL, 0).await;
    wait_until(Duration::from_secs(5), "h3's lease to expire", || async {
        !dir.is_live("h3").await
    })
    .await;

    // Strangers are sent to sign in, however they spell the page; its
    // assets need no login (the sign-in page uses the stylesheet).
    for path in ["/", "/index.html", "/?session=0123", "/sessions"] {
        let redirected = dir.get(path).await;
        assert_eq!(redirected.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(redirected.header("location"), "/login", "{path}");
    }
    for path in ["/%69ndex.html", "/./index.html", "/pkg/../index.html"] {
        let redirected = dir.get(path).await;
        assert!(!redirected.text().contains("thinline"), "{path}");
    }
    let style = dir.get("/style.css").await;
    assert_eq!(style.status, StatusCode::OK);
    assert!(style.text().contains("color: red"));

    let ada = dir.sign_in_as("ada").await;
    let page = ada.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("thinline"));
    assert_eq!(ada.get("/index.html").await.text(), page.text());
    let policy = page.header("content-security-policy");
    assert!(
        policy.contains("script-src 'self' 'wasm-unsafe-eval'"),
        "{policy}"
    );
    assert!(
        policy.contains(
            "connect-src 'self' http://127.0.0.1:8081 ws://127.0.0.1:8081 \
             https://h2.example.com wss://h2.example.com;"
        ),
        "{policy}"
    );
    assert!(
        !policy.contains("8083"),
        "an expired host is not named: {policy}"
    );
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert_eq!(page.header("referrer-policy"), "same-origin");
    assert_eq!(page.header("cross-origin-opener-policy"), "same-origin");
    assert!(!page.headers.contains_key("strict-transport-security"));

    // The API still answers beside the page, with its own policy.
    let hosts = dir.get("/v1/hosts").await;
    assert_eq!(hosts.status, StatusCode::OK);
    assert_eq!(
        hosts.header("content-security-policy"),
        directory::edge::API_CONTENT_SECURITY_POLICY
    );
}

pub async fn the_page_and_its_assets_go_compressed_and_cached(db: &Db) {
    // A built page as `cargo xtask build` lays it out; each variant's bytes
    // say which one was sent.
    let pages = tempfile::tempdir().unwrap();
    let root = pages.path();
    let loader = "/assets/loader.0123456789abcdef.js";
    std::fs::create_dir(root.join("assets")).unwrap();
    for (name, text) in [
        ("index.html", "<!doctype html><p>thinline page</p>"),
        ("index.html.br", "page as brotli"),
        ("index.html.gz", "page as gzip"),
        (&loader[1..], "import './web_terminal.0123456789abcdef.js';"),
        (&format!("{}.br", &loader[1..]), "loader as brotli"),
        (&format!("{}.gz", &loader[1..]), "loader as gzip"),
        ("style.css", "body { color: red }"),
    ] {
        std::fs::write(root.join(name), text).unwrap();
    }
    let dir = Directory::start(
        db.open().await,
        DirectoryConfig {
            static_dir: Some(root.to_owned()),
            ..DirectoryConfig::default()
        },
    )
    .await;

    // Hashed assets: the best coding the browser accepts, kept a year.
    for (accept, body, coding) in [
        (
            Some("gzip, deflate, br, zstd"),
            "loader as brotli",
            Some("br"),
        ),
        (Some("gzip"), "loader as gzip", Some("gzip")),
        (Some("br;q=0, gzip"), "loader as gzip", Some("gzip")),
        (None, "import './web_terminal.0123456789abcdef.js';", None),
        (
            Some("identity"),
            "import './web_terminal.0123456789abcdef.js';",
            None,
        ),
    ] {
        let headers: Vec<(&str, &str)> =
            accept.map(|a| ("accept-encoding", a)).into_iter().collect();
        let answer = dir.send(Method::GET, loader, Body::None, &headers).await;
        assert_eq!(answer.status, StatusCode::OK, "{accept:?}");
        assert_eq!(answer.text(), body, "{accept:?}");
        assert_eq!(
            answer
                .headers
                .get("content-encoding")
                .map(|v| v.to_str().unwrap()),
            coding,
            "{accept:?}"
        );
        assert!(
            answer
                .header("vary")
                .to_ascii_lowercase()
                .contains("accept-encoding")
        );
        assert_eq!(answer.header("cache-control"), directory::web::IMMUTABLE);
        assert!(answer.header("content-type").starts_with("text/javascript"));
        // A subresource: opened on its own it may do nothing at all, and
        // the document-only headers stay off it (and off a first visit).
        assert_eq!(
            answer.header("content-security-policy"),
            directory::edge::API_CONTENT_SECURITY_POLICY
        );
        for document_only in [
            "x-frame-options",
            "cross-origin-opener-policy",
            "last-modified",
        ] {
            assert!(
                answer.headers.get(document_only).is_none(),
                "{document_only}"
            );
        }
        assert_eq!(answer.header("x-content-type-options"), "nosniff");
    }
    // What is not hashed, or not there, is never kept without asking.
    let style = dir.get("/style.css").await;
    assert_eq!(style.status, StatusCode::OK);
    assert_eq!(style.header("cache-control"), "no-cache");
    let missing = dir.get("/assets/loader.fedcba9876543210.js").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header("cache-control"), "no-cache");
    // The page's compressed copies are the page: for signed-in users only.
    for path in ["/index.html.br", "/index.html.gz", "/INDEX.HTML.BR"] {
        let answer = dir
            .send(Method::GET, path, Body::None, &[("accept-encoding", "br")])
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert!(!answer.text().contains("page as"), "{path}");
    }
    let stranger = dir
        .send(Method::GET, "/", Body::None, &[("if-none-match", "*")])
        .await;
    assert_eq!(stranger.status, StatusCode::SEE_OTHER);

    // The page: compressed too, never kept without asking, and a browser
    // that has it gets a 304 until it changes.
    let ada = dir.sign_in_as("ada").await;
    let br = ada.get_with("/", &[("accept-encoding", "gzip, br")]).await;
    assert_eq!(br.status, StatusCode::OK);
    assert_eq!(br.text(), "page as brotli");
    assert_eq!(br.header("content-encoding"), "br");
    assert_eq!(br.header("cache-control"), "no-cache");
    assert!(
        br.header("vary")
            .to_ascii_lowercase()
            .contains("accept-encoding")
    );
    assert!(
        br.header("content-security-policy")
            .contains("connect-src 'self'")
    );
    let gz = ada.get_with("/", &[("accept-encoding", "gzip")]).await;
    assert_eq!(gz.text(), "page as gzip");
    let plain = ada.get_with("/index.html", &[]).await;
    assert_eq!(plain.text(), "<!doctype html><p>thinline page</p>");
    assert!(plain.headers.get("content-encoding").is_none());
    let (br_tag, gz_tag, plain_tag) = (br.header("etag"), gz.header("etag"), plain.header("etag"));
    assert!(
        plain_tag.starts_with('"') && plain_tag.ends_with('"'),
        "{plain_tag}"
    );
    assert!(!plain_tag.starts_with("W/"), "a strong tag: {plain_tag}");
    assert_ne!(br_tag, plain_tag);
    assert_ne!(gz_tag, plain_tag);
    for tag in [br_tag, gz_tag, plain_tag] {
        let again = ada
            .get_with(
                "/",
                &[("accept-encoding", "gzip, br"), ("if-none-match", tag)],
            )
            .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{tag}");
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), tag);
        assert_eq!(again.header("cache-control"), "no-cache");
        assert!(
            again
                .header("content-security-policy")
                .contains("script-src 'self' 'wasm-unsafe-eval'")
        );
    }
    let listed = format!("\"0000000000000000\", W/{br_tag}");
    let weak = ada.get_with("/", &[("if-none-match", &listed)]).await;
    assert_eq!(weak.status, StatusCode::NOT_MODIFIED);
    let other = ada
        .get_with("/", &[("if-none-match", "\"0123456789abcdef\"")])
        .await;
    assert_eq!(other.status, StatusCode::OK);

    // A new build: the old tag no longer matches, even with a date that
    // would.
    std::fs::write(root.join("index.html"), "<!doctype html><p>new page</p>").unwrap();
    std::fs::remove_file(root.join("index.html.br")).unwrap();
    std::fs::remove_file(root.join("index.html.gz")).unwrap();
    let last_modified = plain.header("last-modified");
    let changed = ada
        .get_with(
            "/",
            &[
                ("accept-encoding", "br"),
                ("if-none-match", plain_tag),
                ("if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "after {last_modified}");
    assert_eq!(changed.text(), "<!doctype html><p>new page</p>");
    assert_ne!(changed.header("etag"), plain_tag);
}

pub async fn draining_needs_the_operators_token(db: &Db) {
    // Without one configured the HTTP drain API is off, whatever is sent;
    // the hosts' own token is no operator's either.
    let off = Directory::start(
        db.open().await,
        DirectoryConfig {
            host_token: Some(directory::HostToken("s3cret".into())),
            ..DirectoryConfig::default()
        },
    )
    .await;
    off.lease("h1", "http://127.0.0.1:8081", LONG_TTL, 0).await;
    let drain = format!("{}/v1/hosts/h1/drain", off.base);
    for authorization in [None, Some("Bearer s3cret")] {
        let refused = call_authorized(Method::POST, &drain, Some(json!({})), authorization).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{authorization:?}");
        assert!(
            refused.error().contains("directory host drain"),
            "{}",
            refused.error()
        );
    }
    assert_eq!(off.get("/v1/hosts").await.json()[0]["draining"], false);
    drop(off);

    let config = DirectoryConfig {
        host_token: Some(directory::HostToken("host s3cret".into())),
        operator_token: Some(directory::HostToken("s3cret".into())),
        ..DirectoryConfig::default()
    };
    let dir = Directory::start(db.open().await, config).await;
    dir.lease("h1", "http://127.0.0.1:8081", LONG_TTL, 0).await;
    let drain = format!("{}/v1/hosts/h1/drain", dir.base);
    for authorization in [
        None,
        Some("Bearer wrong"),
        Some("s3cret"),
        Some("Bearer s3cre"),
        Some("Bearer host s3cret"),
    ] {
        for method in [Method::POST, Method::DELETE] {
            let refused =
                call_authorized(method.clone(), &drain, Some(json!({})), authorization).await;
            assert_eq!(
                refused.status,
                StatusCode::UNAUTHORIZED,
                "{method} {authorization:?}"
            );
            assert!(
                refused.error().contains("THINLINE_OPERATOR_TOKEN"),
                "{}",
                refused.error()
            );
        }
    }
    assert_eq!(dir.get("/v1/hosts").await.json()[0]["draining"], false);
    let drained =
        call_authorized(Method::POST, &drain, Some(json!({})), Some("Bearer s3cret")).await;
    assert_eq!(drained.status, StatusCode::OK);
    // Clients' calls need a sign-in, not the host token.
    let ada = dir.sign_in_as("ada").await;
    let placed = ada.post("/v1/placement", json!({ "session": null })).await;
    assert_eq!(
        placed.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the only host drains"
    );
}
