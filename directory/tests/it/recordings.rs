//! Session recordings, for their owners alone: listed with their titles
//! and markers, replayed into frames, exported as asciicast and text,
//! deleted with every block; the choice to be recorded where the policy
//! leaves one; tickets that tell hosts to record as the policy says (and
//! never a viewer's); and the retention sweep.
//!
//! Recordings are written here as hosts write them: a row made with
//! `create_recording` and blocks of `host_server::recording::encode_block`
//! appended in a fenced screen write.

use std::time::Duration;

use directory::{DirectoryConfig, RecordingConfig};
use directory_api::RecordingPolicy;
use host_server::recording::replay::decode_window;
use host_server::recording::{Event, TimedEvent, encode_block};
use hyper::{Method, StatusCode};
use protocol::Size;
use serde_json::{Value, json};
use store::{RecordingBlock, ScreenWrite, Store};

use crate::harness::{Answer, Body, Db, Directory, User, call_with, create_session_of, wait_until};

const ADAS: &str = "0123456789abcdef0123456789abcdef";
const ADAS_OLD: &str = "22222222222222222222222222222222";
const BOBS: &str = "fedcba9876543210fedcba9876543210";
const NOBODYS: &str = "00000000000000000000000000000000";
const LONG_TTL: u64 = 60_000;
const MIB: u64 = 1 << 20;

fn at(at_ms: u64, event: Event) -> TimedEvent {
    TimedEvent { at_ms, event }
}

fn output(at_ms: u64, text: &str) -> TimedEvent {
    at(at_ms, Event::Output(text.as_bytes().to_vec()))
}

/// A block of `events` as a host seals it, numbered `seq`.
fn block(seq: u64, events: &[TimedEvent]) -> RecordingBlock {
    RecordingBlock {
        seq,
        start_ms: events.first().map_or(0, |e| e.at_ms),
        end_ms: events.last().map_or(0, |e| e.at_ms),
        data: encode_block(events),
    }
}

/// Appends `blocks` to the recording of session `id` (at `epoch`), in a
/// screen write, as its host does.
async fn append(store: &dyn Store, id: &str, epoch: u64, blocks: Vec<RecordingBlock>) {
    store
        .save_screen(
            id,
            epoch,
            "h1",
            &ScreenWrite {
                screen: b"screen".to_vec(),
                new_blocks: Vec::new(),
                keep_lines: 1000,
                recording: blocks,
            },
        )
        .await
        .unwrap();
}

/// What ada's running session `ADAS` recorded: a prompt, a command and
/// its output, a failover's marker, a resize, more output, and a block
/// that no host could have written (skipped, not fatal).
async fn record_adas_session(store: &dyn Store) {
    create_session_of(store, "ada", ADAS, "h1", 1).await;
    store
        .create_recording(ADAS, "ada", 80, 24, 64 * MIB)
        .await
        .unwrap();
    let damaged = RecordingBlock {
        seq: 2,
        start_ms: 1_500,
        end_ms: 1_500,
        data: vec![1, 0xff, 0xff, 0xff, 0x7f, 0, 0],
    };
    append(
        store,
        ADAS,
        1,
        vec![
            block(
                1,
                &[
                    output(0, "$ "),
                    output(1_000, "echo hello\r\n"),
                    output(1_200, "hello\r\n$ "),
                ],
            ),
            damaged,
            block(
                3,
                &[
                    at(
                        61_250,
                        Event::Marker("restored on h2 after h1 was lost".into()),
                    ),
                    at(
                        61_300,
                        Event::Resize(Size {
                            cols: 100,
                            rows: 30,
                        }),
                    ),
                    output(62_000, "ls\r\nnotes.txt\r\n$ "),
                ],
            ),
        ],
    )
    .await;
}

async fn directory_with(db: &Db, recording: RecordingConfig) -> Directory {
    let dir = Directory::start(
        db.open().await,
        DirectoryConfig {
            recording,
            ..DirectoryConfig::default()
        },
    )
    .await;
    dir.lease("h1", "http://127.0.0.1:8081", LONG_TTL, 0).await;
    dir
}

fn policy(policy: RecordingPolicy) -> RecordingConfig {
    RecordingConfig {
        policy,
        ..RecordingConfig::default()
    }
}

/// Asserts `answer` is exactly the refusal of a recording nobody has.
fn assert_unknown(answer: &Answer, id: &str, unknown: &Answer) {
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text());
    assert_eq!(
        answer.text().replace(id, "ID"),
        unknown.text().replace(NOBODYS, "ID"),
        "answers exactly as an unknown recording"
    );
}

/// Every call about one recording, as `user` makes it.
async fn calls_about(user: &User, id: &str) -> Vec<Answer> {
    vec![
        user.get(&format!("/v1/recordings/{id}")).await,
        user.get(&format!("/v1/recordings/{id}/frames")).await,
        user.get(&format!("/v1/recordings/{id}/frames?from_ms=0&to_ms=5000"))
            .await,
        user.get(&format!("/v1/recordings/{id}/export")).await,
        user.get(&format!("/v1/recordings/{id}/export?format=txt"))
            .await,
        user.post(&format!("/v1/recordings/{id}/delete"), json!({}))
            .await,
    ]
}

pub async fn recordings_are_their_owners_alone(db: &Db) {
    let dir = directory_with(db, RecordingConfig::default()).await;
    record_adas_session(&*dir.store).await;
    create_session_of(&*dir.store, "bob", BOBS, "h1", 1).await;
    let ada = dir.sign_in_as("ada").await;
    let bob = dir.sign_in_as("bob").await;

    // Another user's recording answers exactly as one nobody has.
    let unknown = calls_about(&bob, NOBODYS).await;
    for (foreign, unknown) in calls_about(&bob, ADAS).await.iter().zip(&unknown) {
        assert_unknown(foreign, ADAS, unknown);
        assert!(foreign.error().contains("GET /v1/recordings lists yours"));
    }
    // So does it to a viewer holding a live share of its session: a share
    // lets its holder watch the session, nothing more.
    let made = ada
        .post(
            &format!("/v1/sessions/{ADAS}/shares"),
            json!({ "may_type": true }),
        )
        .await
        .json();
    let redeemed = bob
        .post("/v1/shares/redeem", json!({ "token": made["token"] }))
        .await;
    assert_eq!(redeemed.status, StatusCode::OK, "{}", redeemed.text());
    let viewer = User {
        cookie: format!("{}; {}", bob.cookie, redeemed.cookie()),
        ..bob.clone()
    };
    assert_eq!(
        viewer
            .post("/v1/placement", json!({ "session": ADAS }))
            .await
            .status,
        StatusCode::OK,
        "the share itself works"
    );
    for (viewing, unknown) in calls_about(&viewer, ADAS).await.iter().zip(&unknown) {
        assert_unknown(viewing, ADAS, unknown);
    }
    let listed = viewer.get("/v1/recordings").await.json();
    assert_eq!(listed["recordings"], json!([]), "bob has none of his own");
    // The forms: the same refusal, as a page.
    for user in [&bob, &viewer] {
        let form = user
            .send(
                Method::POST,
                &format!("/recordings/{ADAS}/delete"),
                Body::None,
            )
            .await;
        assert_eq!(form.status, StatusCode::NOT_FOUND);
        assert!(form.text().contains("you have no recording"));
    }
    assert!(
        !bob.get("/recordings").await.text().contains(ADAS),
        "bob's page shows none of ada's"
    );

    // Signed out: 401 from the API, to /login from the pages.
    for (method, path) in [
        (Method::GET, "/v1/recordings".to_owned()),
        (Method::PUT, "/v1/recordings/preference".to_owned()),
        (Method::GET, format!("/v1/recordings/{ADAS}")),
        (Method::GET, format!("/v1/recordings/{ADAS}/frames")),
        (Method::GET, format!("/v1/recordings/{ADAS}/export")),
        (Method::POST, format!("/v1/recordings/{ADAS}/delete")),
    ] {
        let stranger = call_with(
            method.clone(),
            &format!("{}{path}", dir.base),
            Body::Json(json!({ "record_new_sessions": true })),
            &[("origin", &dir.base)],
        )
        .await;
        assert_eq!(stranger.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(stranger.error(), "not signed in; open /login");
    }
    for (method, path, body) in [
        (Method::GET, "/recordings".to_owned(), Body::None),
        (
            Method::POST,
            "/recordings/preference".to_owned(),
            Body::Form("record_new_sessions=on".to_owned()),
        ),
        (
            Method::POST,
            format!("/recordings/{ADAS}/delete"),
            Body::None,
        ),
        (Method::GET, "/play".to_owned(), Body::None),
    ] {
        let stranger = call_with(
            method.clone(),
            &format!("{}{path}", dir.base),
            body,
            &[("origin", &dir.base)],
        )
        .await;
        assert_eq!(stranger.status, StatusCode::SEE_OTHER, "{method} {path}");
        assert_eq!(stranger.header("location"), "/login");
    }
    // Deleting needs an allowed Origin, as every POST.
    let no_origin = call_with(
        Method::POST,
        &format!("{}/v1/recordings/{ADAS}/delete", dir.base),
        Body::None,
        &[("cookie", &ada.cookie)],
    )
    .await;
    assert_eq!(no_origin.status, StatusCode::FORBIDDEN);
    let foreign_origin = call_with(
        Method::POST,
        &format!("{}/recordings/{ADAS}/delete", dir.base),
        Body::None,
        &[("cookie", &ada.cookie), ("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(foreign_origin.status, StatusCode::FORBIDDEN);
    // Nothing of the above deleted anything, and its owner still has it.
    assert!(dir.store.get_recording(ADAS).await.unwrap().is_some());
    assert_eq!(
        ada.get(&format!("/v1/recordings/{ADAS}")).await.status,
        StatusCode::OK
    );
    let malformed = ada.get("/v1/recordings/zz").await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(malformed.error().contains("32 hex digits"));
}

pub async fn recordings_are_listed_with_their_markers(db: &Db) {
    let dir = directory_with(db, RecordingConfig::default()).await;
    // An older recording whose session's record no longer exists (none
    // was ever made here): no title, not running.
    dir.store
        .create_recording(ADAS_OLD, "ada", 132, 43, 64 * MIB)
        .await
        .unwrap();
    let created = dir.store.get_recording(ADAS_OLD).await.unwrap().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while dir.store.now().await.unwrap() <= created.started_at {
        assert!(tokio::time::Instant::now() < deadline, "the clock stands");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    record_adas_session(&*dir.store).await;
    create_session_of(&*dir.store, "bob", BOBS, "h1", 1).await;
    dir.store
        .create_recording(BOBS, "bob", 80, 24, 64 * MIB)
        .await
        .unwrap();
    let ada = dir.sign_in_as("ada").await;

    let listed = ada.get("/v1/recordings").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    let listed = listed.json();
    assert_eq!(listed["policy"], "opt-in");
    assert_eq!(listed["record_new_sessions"], false);
    let recordings = listed["recordings"].as_array().unwrap();
    assert_eq!(recordings.len(), 2, "ada's only: {listed}");
    let stored = dir.store.get_recording(ADAS).await.unwrap().unwrap();
    assert_eq!(
        recordings[0],
        json!({
            "session": ADAS,
            "started_at_ms": stored.started_at,
            "updated_at_ms": stored.updated_at,
            "duration_ms": 62_000,
            "bytes": stored.bytes,
            "cols": 80,
            "rows": 24,
            "title": "ada@box: ~",
            "running": true,
        }),
        "newest first"
    );
    assert!(stored.bytes > 0 && stored.updated_at >= stored.started_at);
    assert_eq!(recordings[1]["session"], ADAS_OLD);
    assert_eq!(recordings[1]["title"], Value::Null);
    assert_eq!(recordings[1]["running"], false);
    assert_eq!(recordings[1]["duration_ms"], 0);
    // An ended session's recording is not running.
    dir.store.end_session(ADAS).await.unwrap();
    let listed = ada.get("/v1/recordings").await.json();
    assert_eq!(listed["recordings"][0]["running"], false);
    assert_eq!(listed["recordings"][0]["title"], "ada@box: ~");

    // One recording: its size, length and markers; the damaged block is
    // skipped, not fatal.
    let detail = ada.get(&format!("/v1/recordings/{ADAS}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text());
    assert_eq!(
        detail.json(),
        json!({
            "session": ADAS,
            "cols": 80,
            "rows": 24,
            "started_at_ms": stored.started_at,
            "duration_ms": 62_000,
            "bytes": stored.bytes,
            "title": "ada@box: ~",
            "markers": [{ "at_ms": 61_250, "text": "restored on h2 after h1 was lost" }],
        })
    );
    // Upper-case ids name the same recording.
    let upper = ada
        .get(&format!("/v1/recordings/{}", ADAS.to_ascii_uppercase()))
        .await;
    assert_eq!(upper.json()["session"], ADAS);
    let old = ada.get(&format!("/v1/recordings/{ADAS_OLD}")).await.json();
    assert_eq!(old["markers"], json!([]));
    assert_eq!(old["title"], Value::Null);

    // The page: the policy, the choice, each recording with its links.
    let page = ada.get("/recordings").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("cache-control"), "no-store");
    assert_eq!(
        page.header("content-security-policy"),
        directory::edge::FORM_PAGE_POLICY
    );
    let page = page.text();
    assert!(page.contains("Your new sessions are recorded if you turn it on below."));
    assert!(page.contains("action=\"/recordings/preference\""), "{page}");
    assert!(page.contains("name=\"record_new_sessions\""));
    assert!(page.contains("1 min 02 s"), "{page}");
    assert!(page.contains(&format!("href=\"/play?recording={ADAS}\"")));
    for format in ["cast", "cast3", "txt"] {
        assert!(
            page.contains(&format!(
                "href=\"/v1/recordings/{ADAS}/export?format={format}\""
            )),
            "{format}: {page}"
        );
    }
    assert!(page.contains(&format!("action=\"/recordings/{ADAS}/delete\"")));
    assert!(page.contains(&format!("action=\"/recordings/{ADAS_OLD}/delete\"")));
    assert!(!page.contains(BOBS));
    assert!(page.contains("href=\"/sessions\""));
    // And the sessions page links here.
    assert!(
        ada.get("/sessions")
            .await
            .text()
            .contains("href=\"/recordings\"")
    );
}

pub async fn frames_replay_the_recording(db: &Db) {
    let dir = directory_with(db, RecordingConfig::default()).await;
    record_adas_session(&*dir.store).await;
    let ada = dir.sign_in_as("ada").await;

    let answer = ada.get(&format!("/v1/recordings/{ADAS}/frames")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.header("content-type"), "application/octet-stream");
    assert_eq!(answer.header("cache-control"), "no-store");
    let window = decode_window(&answer.body).unwrap();
    // No window was asked for: the first two minutes, starting with the
    // whole (empty) screen.
    assert_eq!(window.end_ms, 120_000);
    let (first_at, first) = &window.frames[0];
    assert_eq!(*first_at, 0);
    assert!(first.full, "{first:?}");
    assert_eq!((first.size.cols, first.size.rows), (80, 24));
    let text = |frame: &protocol::Frame| -> String {
        frame
            .rows
            .iter()
            .map(|row| row.line.text())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let shown: String = window.frames.iter().map(|(_, f)| text(f)).collect();
    assert!(shown.contains("hello"), "{shown}");
    assert!(shown.contains("notes.txt"), "after the skipped block too");
    assert!(
        window
            .frames
            .iter()
            .any(|(_, f)| (f.size.cols, f.size.rows) == (100, 30)),
        "the resize is replayed"
    );

    // A window in the middle starts with the screen as it was then.
    let middle = ada
        .get(&format!(
            "/v1/recordings/{ADAS}/frames?from_ms=1500&to_ms=2000"
        ))
        .await;
    assert_eq!(middle.status, StatusCode::OK);
    let middle = decode_window(&middle.body).unwrap();
    assert_eq!(middle.end_ms, 2_000);
    assert_eq!(middle.frames.len(), 1, "nothing happens in it");
    let (at_ms, full) = &middle.frames[0];
    assert_eq!(*at_ms, 1_500);
    assert!(full.full);
    let screen = text(full);
    assert!(
        screen.contains("$ echo hello") && screen.contains("hello"),
        "{screen}"
    );
    assert!(!screen.contains("notes.txt"), "{screen}");
    // A longer window is cut to two minutes; a backward one is a moment.
    let long = ada
        .get(&format!(
            "/v1/recordings/{ADAS}/frames?from_ms=1000&to_ms=999999999"
        ))
        .await;
    assert_eq!(decode_window(&long.body).unwrap().end_ms, 121_000);
    let backward = ada
        .get(&format!(
            "/v1/recordings/{ADAS}/frames?from_ms=5000&to_ms=10"
        ))
        .await;
    assert_eq!(backward.status, StatusCode::OK);
    let backward = decode_window(&backward.body).unwrap();
    assert_eq!((backward.end_ms, backward.frames.len()), (5_000, 1));
    // A query that is no window is refused, in the API's words.
    for bad in [
        "from_ms=-1",
        "from_ms=soon",
        "to_ms=1.5",
        "from_ms=9223372036854775808",
        "to_ms=18446744073709551616",
    ] {
        let refused = ada
            .get(&format!("/v1/recordings/{ADAS}/frames?{bad}"))
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(refused.error().starts_with("invalid query"), "{bad}");
    }
}

/// The lines of a cast: its header and its events, each JSON.
fn cast_lines(text: &str) -> (Value, Vec<Value>) {
    let mut lines = text.lines().map(|line| {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    });
    let header = lines.next().unwrap();
    (header, lines.collect())
}

pub async fn exports_are_casts_and_text(db: &Db) {
    let dir = directory_with(db, RecordingConfig::default()).await;
    record_adas_session(&*dir.store).await;
    let ada = dir.sign_in_as("ada").await;
    let stored = dir.store.get_recording(ADAS).await.unwrap().unwrap();
    let stamp = {
        // `YYYY-MM-DD HH:MM` as the file name writes it.
        let minute = directory::views::utc_minute(stored.started_at);
        minute.replace(['-', ':'], "").replace(' ', "-")
    };

    // asciicast v2, the default: a header, then [seconds, code, data].
    for path in [
        format!("/v1/recordings/{ADAS}/export"),
        format!("/v1/recordings/{ADAS}/export?format=cast"),
    ] {
        let cast = ada.get(&path).await;
        assert_eq!(cast.status, StatusCode::OK, "{}", cast.text());
        assert_eq!(cast.header("content-type"), "application/x-asciicast");
        assert_eq!(
            cast.header("content-disposition"),
            format!("attachment; filename=\"thinline-01234567-{stamp}.cast\"")
        );
        assert_eq!(cast.header("cache-control"), "no-store");
        let (header, events) = cast_lines(&cast.text());
        assert_eq!(header["version"], 2);
        assert_eq!(
            (header["width"].clone(), header["height"].clone()),
            (json!(80), json!(24))
        );
        assert_eq!(header["timestamp"], stored.started_at / 1000);
        assert_eq!(header["title"], "ada@box: ~");
        assert_eq!(
            events,
            [
                json!([0.0, "o", "$ "]),
                json!([1.0, "o", "echo hello\r\n"]),
                json!([1.2, "o", "hello\r\n$ "]),
                json!([61.25, "m", "restored on h2 after h1 was lost"]),
                json!([61.3, "r", "100x30"]),
                json!([62.0, "o", "ls\r\nnotes.txt\r\n$ "]),
            ]
        );
    }

    // asciicast v3: times since the previous event.
    let cast3 = ada
        .get(&format!("/v1/recordings/{ADAS}/export?format=cast3"))
        .await;
    assert_eq!(cast3.status, StatusCode::OK);
    assert_eq!(cast3.header("content-type"), "application/x-asciicast");
    let (header, events) = cast_lines(&cast3.text());
    assert_eq!(header["version"], 3);
    assert_eq!(header["term"], json!({ "cols": 80, "rows": 24 }));
    assert_eq!(events.len(), 6);
    assert_eq!(events[1], json!([1.0, "o", "echo hello\r\n"]));
    assert_eq!(events[2], json!([0.2, "o", "hello\r\n$ "]));

    // Text: what the terminal showed, without escapes.
    let text = ada
        .get(&format!("/v1/recordings/{ADAS}/export?format=txt"))
        .await;
    assert_eq!(text.status, StatusCode::OK);
    assert!(text.header("content-type").starts_with("text/plain"));
    assert_eq!(
        text.header("content-disposition"),
        format!("attachment; filename=\"thinline-01234567-{stamp}.txt\"")
    );
    assert_eq!(
        text.text(),
        "$ echo hello\nhello\n$ ls\nnotes.txt\n$\n",
        "{:?}",
        text.text()
    );

    let unknown_format = ada
        .get(&format!("/v1/recordings/{ADAS}/export?format=mp4"))
        .await;
    assert_eq!(unknown_format.status, StatusCode::BAD_REQUEST);
    assert!(unknown_format.error().starts_with("invalid query"));

    // A recording of many blocks streams whole, in order.
    create_session_of(&*dir.store, "ada", ADAS_OLD, "h1", 1).await;
    dir.store
        .create_recording(ADAS_OLD, "ada", 80, 24, 64 * MIB)
        .await
        .unwrap();
    let blocks: Vec<RecordingBlock> = (0..50)
        .map(|n| block(n, &[output(n * 100, &format!("line {n}\r\n"))]))
        .collect();
    append(&*dir.store, ADAS_OLD, 1, blocks).await;
    let long = ada.get(&format!("/v1/recordings/{ADAS_OLD}/export")).await;
    let (_, events) = cast_lines(&long.text());
    let texts: Vec<String> = events
        .iter()
        .map(|event| event[2].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..50).map(|n| format!("line {n}\r\n")).collect();
    assert_eq!(texts, expected);
}

pub async fn deleting_a_recording_removes_every_block(db: &Db) {
    let dir = directory_with(db, RecordingConfig::default()).await;
    record_adas_session(&*dir.store).await;
    create_session_of(&*dir.store, "ada", ADAS_OLD, "h1", 1).await;
    dir.store
        .create_recording(ADAS_OLD, "ada", 80, 24, 64 * MIB)
        .await
        .unwrap();
    append(&*dir.store, ADAS_OLD, 1, vec![block(1, &[output(0, "x")])]).await;
    let ada = dir.sign_in_as("ada").await;
    assert_eq!(
        dir.store
            .recording_blocks(ADAS, None, 100)
            .await
            .unwrap()
            .len(),
        3
    );

    let deleted = ada
        .post(&format!("/v1/recordings/{ADAS}/delete"), json!({}))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    assert!(deleted.body.is_empty());
    assert_eq!(dir.store.get_recording(ADAS).await.unwrap(), None);
    assert!(
        dir.store
            .recording_blocks(ADAS, None, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Gone for every route; again is the unknown recording's 404.
    let unknown = calls_about(&ada, NOBODYS).await;
    for (gone, unknown) in calls_about(&ada, ADAS).await.iter().zip(&unknown) {
        assert_unknown(gone, ADAS, unknown);
    }
    // The session itself is untouched.
    assert!(dir.store.get_session(ADAS).await.unwrap().is_some());

    // The form does the same and goes back to the list.
    let form = ada
        .send(
            Method::POST,
            &format!("/recordings/{ADAS_OLD}/delete"),
            Body::None,
        )
        .await;
    assert_eq!(form.status, StatusCode::SEE_OTHER, "{}", form.text());
    assert_eq!(form.header("location"), "/recordings");
    assert_eq!(dir.store.get_recording(ADAS_OLD).await.unwrap(), None);
    assert!(
        dir.store
            .recording_blocks(ADAS_OLD, None, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let page = ada.get("/recordings").await.text();
    assert!(page.contains("No recordings yet."), "{page}");
    assert!(!page.contains(ADAS_OLD));
}

pub async fn the_choice_to_be_recorded_is_the_users_where_the_policy_allows(db: &Db) {
    let dir = directory_with(db, RecordingConfig::default()).await;
    let ada = dir.sign_in_as("ada").await;
    let bob = dir.sign_in_as("bob").await;
    assert!(!dir.store.recording_opt_in("ada").await.unwrap());
    let page = ada.get("/recordings").await.text();
    assert!(page.contains("No recordings yet."));
    assert!(page.contains("Record my new sessions"));
    assert!(!page.contains("checked"), "{page}");

    let on = ada
        .send(
            Method::PUT,
            "/v1/recordings/preference",
            Body::Json(json!({ "record_new_sessions": true })),
        )
        .await;
    assert_eq!(on.status, StatusCode::NO_CONTENT, "{}", on.text());
    assert!(dir.store.recording_opt_in("ada").await.unwrap());
    assert!(
        !dir.store.recording_opt_in("bob").await.unwrap(),
        "ada's own"
    );
    assert_eq!(
        ada.get("/v1/recordings").await.json()["record_new_sessions"],
        true
    );
    assert_eq!(
        bob.get("/v1/recordings").await.json()["record_new_sessions"],
        false
    );
    let page = ada.get("/recordings").await.text();
    assert!(page.contains("checked"), "{page}");
    for bad in [
        json!({}),
        json!({ "record_new_sessions": "yes" }),
        json!({ "record_new_sessions": true, "x": 1 }),
        json!([true]),
    ] {
        let refused = ada
            .send(
                Method::PUT,
                "/v1/recordings/preference",
                Body::Json(bad.clone()),
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let no_origin = call_with(
        Method::PUT,
        &format!("{}/v1/recordings/preference", dir.base),
        Body::Json(json!({ "record_new_sessions": false })),
        &[("cookie", &ada.cookie)],
    )
    .await;
    assert_eq!(no_origin.status, StatusCode::FORBIDDEN);
    assert!(dir.store.recording_opt_in("ada").await.unwrap());

    // The form: unticked turns it off, ticked on, back to the page.
    let off = ada
        .send(
            Method::POST,
            "/recordings/preference",
            Body::Form(String::new()),
        )
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER, "{}", off.text());
    assert_eq!(off.header("location"), "/recordings");
    assert!(!dir.store.recording_opt_in("ada").await.unwrap());
    let on = ada
        .send(
            Method::POST,
            "/recordings/preference",
            Body::Form("record_new_sessions=on".to_owned()),
        )
        .await;
    assert_eq!(on.status, StatusCode::SEE_OTHER);
    assert!(dir.store.recording_opt_in("ada").await.unwrap());

    // Where the policy is off or always, there is no choice to make.
    for (config, sentence, hint, flag) in [
        (
            RecordingPolicy::Off,
            "Recording is off on this deployment.",
            "None will be made while recording is off.",
            false,
        ),
        (
            RecordingPolicy::Always,
            "Every session is recorded on this deployment (audit).",
            "The sessions you start from now on are recorded",
            true,
        ),
    ] {
        let other = Directory::start(
            dir.store.clone(),
            DirectoryConfig {
                recording: policy(config),
                ..DirectoryConfig::default()
            },
        )
        .await;
        let bob_there = bob.at(&other);
        let refused = bob_there
            .send(
                Method::PUT,
                "/v1/recordings/preference",
                Body::Json(json!({ "record_new_sessions": !flag })),
            )
            .await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{config:?}");
        assert!(
            refused.error().contains("on this deployment"),
            "{}",
            refused.error()
        );
        let form = bob_there
            .send(
                Method::POST,
                "/recordings/preference",
                Body::Form("record_new_sessions=on".to_owned()),
            )
            .await;
        assert_eq!(form.status, StatusCode::CONFLICT, "{config:?}");
        assert!(!dir.store.recording_opt_in("bob").await.unwrap());
        let listed = bob_there.get("/v1/recordings").await.json();
        assert_eq!(
            listed["policy"],
            if flag { "always" } else { "off" },
            "{listed}"
        );
        assert_eq!(listed["record_new_sessions"], flag);
        let page = bob_there.get("/recordings").await.text();
        assert!(page.contains(sentence), "{page}");
        assert!(page.contains(hint), "{page}");
        assert!(!page.contains("action=\"/recordings/preference\""));
    }
    // Ada chose, but under `off` nothing of hers is recorded either.
    let off = Directory::start(
        dir.store.clone(),
        DirectoryConfig {
            recording: policy(RecordingPolicy::Off),
            ..DirectoryConfig::default()
        },
    )
    .await;
    assert_eq!(
        ada.at(&off).get("/v1/recordings").await.json()["record_new_sessions"],
        false
    );
}

/// The `record` of the ticket `user` gets placing `session` (or a new
/// one) at `dir`.
async fn ticket_record(dir: &Directory, user: &User, session: Option<&str>) -> Option<u64> {
    let request = match session {
        Some(session) => json!({ "session": session }),
        None => json!({ "new": true }),
    };
    let placed = user.at(dir).post("/v1/placement", request).await;
    assert_eq!(placed.status, StatusCode::OK, "{}", placed.text());
    let placed = placed.json();
    let id = placed["session"].as_str().unwrap().to_owned();
    dir.check_ticket(&placed, user, &id).record
}

pub async fn tickets_tell_hosts_to_record_as_the_policy_says(db: &Db) {
    let opt_in = directory_with(db, RecordingConfig::default()).await;
    create_session_of(&*opt_in.store, "ada", ADAS, "h1", 1).await;
    let ada = opt_in.sign_in_as("ada").await;
    let bob = opt_in.sign_in_as("bob").await;

    // Opt-in: nothing until the owner asks, then the most bytes to keep,
    // for new sessions, placements and renewals alike.
    assert_eq!(ticket_record(&opt_in, &ada, None).await, None);
    assert_eq!(ticket_record(&opt_in, &ada, Some(ADAS)).await, None);
    opt_in
        .store
        .set_recording_opt_in("ada", true)
        .await
        .unwrap();
    assert_eq!(ticket_record(&opt_in, &ada, None).await, Some(64 * MIB));
    assert_eq!(
        ticket_record(&opt_in, &ada, Some(ADAS)).await,
        Some(64 * MIB)
    );
    let renewed = ada
        .post(
            &format!("/v1/sessions/{ADAS}/ticket"),
            json!({ "host": "h1", "epoch": 1 }),
        )
        .await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text());
    assert_eq!(
        opt_in.check_ticket(&renewed.json(), &ada, ADAS).record,
        Some(64 * MIB)
    );
    // Bob did not ask.
    assert_eq!(ticket_record(&opt_in, &bob, None).await, None);

    // A viewer's ticket never records, whatever the owner chose or the
    // policy says.
    let audit = directory_with(
        db,
        RecordingConfig {
            policy: RecordingPolicy::Always,
            max_bytes: 5 * MIB,
            ..RecordingConfig::default()
        },
    )
    .await;
    for dir in [&opt_in, &audit] {
        let made = ada
            .at(dir)
            .post(
                &format!("/v1/sessions/{ADAS}/shares"),
                json!({ "may_type": false }),
            )
            .await
            .json();
        let redeemed = bob
            .at(dir)
            .post("/v1/shares/redeem", json!({ "token": made["token"] }))
            .await;
        let viewer = User {
            cookie: format!("{}; {}", bob.cookie, redeemed.cookie()),
            ..bob.at(dir)
        };
        let placed = viewer
            .post("/v1/placement", json!({ "session": ADAS }))
            .await;
        assert_eq!(placed.status, StatusCode::OK, "{}", placed.text());
        let claims = dir.check_ticket(&placed.json(), &bob, ADAS);
        assert!(claims.share.is_some());
        assert_eq!(claims.record, None, "a viewer's ticket");
    }

    // Always: every owner's ticket, with this deployment's limit.
    assert_eq!(ticket_record(&audit, &bob, None).await, Some(5 * MIB));
    assert_eq!(ticket_record(&audit, &ada, Some(ADAS)).await, Some(5 * MIB));
    // Off: none, though ada asked.
    let off = directory_with(db, policy(RecordingPolicy::Off)).await;
    assert_eq!(ticket_record(&off, &ada, Some(ADAS)).await, None);
    assert_eq!(ticket_record(&off, &ada, None).await, None);
}

pub async fn recordings_past_the_retention_are_deleted(db: &Db) {
    let store = db.open().await;
    create_session_of(&*store, "ada", ADAS, "h1", 1).await;
    store
        .create_recording(ADAS_OLD, "ada", 80, 24, MIB)
        .await
        .unwrap();
    store
        .create_recording(ADAS, "ada", 80, 24, MIB)
        .await
        .unwrap();
    append(&*store, ADAS, 1, vec![block(1, &[output(0, "x")])]).await;
    let written = store.get_recording(ADAS).await.unwrap().unwrap().updated_at;
    let retention = Duration::from_millis(400);
    // Both are older than the retention...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.now().await.unwrap() <= written + 450 {
        assert!(tokio::time::Instant::now() < deadline, "the clock stands");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...and this one is not.
    store
        .create_recording(BOBS, "bob", 80, 24, MIB)
        .await
        .unwrap();
    let swept = directory::recordings::sweep(&*store, retention)
        .await
        .unwrap();
    assert_eq!(swept, 2);
    assert_eq!(store.get_recording(ADAS).await.unwrap(), None);
    assert_eq!(store.get_recording(ADAS_OLD).await.unwrap(), None);
    assert!(
        store
            .recording_blocks(ADAS, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.get_recording(BOBS).await.unwrap().is_some());
    // Nothing more to do is no error.
    assert_eq!(
        directory::recordings::sweep(&*store, retention)
            .await
            .unwrap(),
        0
    );

    // A directory sweeps as it starts.
    let fresh = store.get_recording(BOBS).await.unwrap().unwrap();
    while store.now().await.unwrap() <= fresh.updated_at + 450 {
        assert!(tokio::time::Instant::now() < deadline, "the clock stands");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _dir = Directory::start(
        store.clone(),
        DirectoryConfig {
            recording: RecordingConfig {
                retention,
                ..RecordingConfig::default()
            },
            ..DirectoryConfig::default()
        },
    )
    .await;
    wait_until(Duration::from_secs(10), "the start's sweep", || {
        let store = store.clone();
        async move { store.get_recording(BOBS).await.unwrap().is_none() }
    })
    .await;
}

pub async fn the_player_is_served_as_the_page_is(db: &Db) {
    let pages = tempfile::tempdir().unwrap();
    let root = pages.path();
    std::fs::write(root.join("index.html"), "<!doctype html><p>terminal</p>").unwrap();
    std::fs::write(root.join("play.html"), "<!doctype html><p>player</p>").unwrap();
    std::fs::write(root.join("play.html.br"), "player as brotli").unwrap();
    let dir = Directory::start(
        db.open().await,
        DirectoryConfig {
            static_dir: Some(root.to_owned()),
            ..DirectoryConfig::default()
        },
    )
    .await;
    let ada = dir.sign_in_as("ada").await;

    let played = ada.get(&format!("/play?recording={ADAS}")).await;
    assert_eq!(played.status, StatusCode::OK);
    assert_eq!(played.text(), "<!doctype html><p>player</p>");
    assert_eq!(played.header("cache-control"), "no-cache");
    assert!(
        played
            .header("content-security-policy")
            .contains("script-src 'self' 'wasm-unsafe-eval'")
    );
    assert!(played.header("content-type").starts_with("text/html"));
    assert_eq!(played.header("x-frame-options"), "DENY");
    let tag = played.header("etag").to_owned();
    let again = ada.get_with("/play", &[("if-none-match", &tag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.header("etag"), tag);
    let br = ada.get_with("/play", &[("accept-encoding", "br")]).await;
    assert_eq!(br.text(), "player as brotli");
    assert_eq!(br.header("content-encoding"), "br");
    assert_ne!(br.header("etag"), tag);

    // The file itself, however spelt, is no way around the sign-in.
    for path in ["/play.html", "/PLAY.HTML", "/play.html.br"] {
        let direct = dir.get(path).await;
        assert_eq!(direct.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(direct.header("location"), "/play", "{path}");
        assert!(!direct.text().contains("player"));
    }

    // A build without the player: a 404 saying so, as for the page.
    std::fs::remove_file(root.join("play.html")).unwrap();
    std::fs::remove_file(root.join("play.html.br")).unwrap();
    let missing = ada.get("/play").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.error().contains("play.html"), "{}", missing.error());
    std::fs::remove_file(root.join("index.html")).unwrap();
    let missing = ada.get("/").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.error().contains("index.html"),
        "{}",
        missing.error()
    );
    let unserved = Directory::start(dir.store.clone(), DirectoryConfig::default()).await;
    let none = ada.at(&unserved).get("/play").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert!(none.error().contains("--static-dir"));
}
