//! The exact JSON of every type, as the directory has always written it
//! (the wire must not change), and the round trip back.

use protocol::SessionId;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::*;

const ID: SessionId = SessionId([0xab; 16]);
const ID_TEXT: &str = "abababababababababababababababab";

/// `value` serialises to exactly `expected` and reads back as itself.
fn pins<T: Serialize + DeserializeOwned + PartialEq + core::fmt::Debug>(value: T, expected: Value) {
    assert_eq!(serde_json::to_value(&value).unwrap(), expected);
    assert_eq!(serde_json::from_value::<T>(expected).unwrap(), value);
}

#[test]
fn placements_are_written_as_they_always_were() {
    pins(PlacementRequest::default(), json!({}));
    pins(
        PlacementRequest {
            session: None,
            new: true,
        },
        json!({ "new": true }),
    );
    pins(
        PlacementRequest {
            session: Some(ID),
            new: false,
        },
        json!({ "session": ID_TEXT }),
    );
    pins(
        Placement {
            session: ID,
            host: "h1".into(),
            url: "http://127.0.0.1:8081".into(),
            epoch: 1,
            ticket: "AQID".into(),
            ticket_expires_in_ms: 60_000,
        },
        json!({
            "session": ID_TEXT, "host": "h1", "url": "http://127.0.0.1:8081",
            "epoch": 1, "ticket": "AQID", "ticket_expires_in_ms": 60000
        }),
    );
}

#[test]
fn placement_requests_take_what_clients_send_and_nothing_else() {
    let read = |body: Value| serde_json::from_value::<PlacementRequest>(body);
    assert_eq!(
        read(json!({ "session": null, "new": false })).unwrap(),
        PlacementRequest::default()
    );
    // Either case is accepted; the id is the same.
    assert_eq!(
        read(json!({ "session": ID_TEXT.to_ascii_uppercase() }))
            .unwrap()
            .session,
        Some(ID)
    );
    for bad in [
        json!({ "x": 1 }),
        json!({ "session": "abc" }),
        json!({ "session": "+b".repeat(16) }),
        json!({ "session": 7 }),
        json!({ "new": "yes" }),
    ] {
        assert!(read(bad.clone()).is_err(), "{bad}");
    }
    let error = read(json!({ "session": "zz" })).unwrap_err().to_string();
    assert!(
        error.contains("invalid session id \"zz\": expected 32 hex digits"),
        "{error}"
    );
}

#[test]
fn a_renewal_names_the_host_and_epoch_the_client_is_attached_at() {
    pins(
        RenewalRequest {
            host: "h1".into(),
            epoch: 3,
        },
        json!({ "host": "h1", "epoch": 3 }),
    );
    assert!(
        serde_json::from_value::<RenewalRequest>(json!({ "host": "h1", "epoch": 3, "new": true }))
            .is_err(),
        "a renewal is not a placement"
    );
}

#[test]
fn unreachable_reports_and_decisions_are_written_as_they_always_were() {
    pins(
        UnreachableRequest {
            host: "h1".into(),
            epoch: 3,
        },
        json!({ "host": "h1", "epoch": 3 }),
    );
    assert!(
        serde_json::from_value::<UnreachableRequest>(json!({ "host": "h1", "epoch": 3, "x": 1 }))
            .is_err()
    );
    pins(
        UnreachableAnswer::RetryOwner {
            host: "h1".into(),
            url: "http://h1".into(),
            epoch: 3,
            retry_after_ms: 250,
            ticket: "T".into(),
            ticket_expires_in_ms: 60_000,
        },
        json!({
            "decision": "retry_owner", "host": "h1", "url": "http://h1", "epoch": 3,
            "retry_after_ms": 250, "ticket": "T", "ticket_expires_in_ms": 60000
        }),
    );
    pins(
        UnreachableAnswer::Moved {
            host: "h2".into(),
            url: "http://h2".into(),
            epoch: 4,
            ticket: "T".into(),
            ticket_expires_in_ms: 60_000,
        },
        json!({
            "decision": "moved", "host": "h2", "url": "http://h2", "epoch": 4,
            "ticket": "T", "ticket_expires_in_ms": 60000
        }),
    );
}

#[test]
fn sessions_and_their_end_are_written_as_they_always_were() {
    pins(
        Session {
            id: ID,
            owner: "ada".into(),
            owner_host: "h1".into(),
            epoch: 2,
            state: SessionState::Running,
            title: None,
            foreground: Some("vim".into()),
            cwd: "/home/ada".into(),
            created_at: 5,
            last_active: 6,
        },
        json!({
            "id": ID_TEXT, "owner": "ada", "owner_host": "h1", "epoch": 2, "state": "running",
            "title": null, "foreground": "vim", "cwd": "/home/ada",
            "created_at": 5, "last_active": 6
        }),
    );
    pins(
        EndAnswer {
            session: ID,
            state: EndedState::Ended,
            epoch: 3,
        },
        json!({ "session": ID_TEXT, "state": "ended", "epoch": 3 }),
    );
}

#[test]
fn hosts_and_drains_are_written_as_they_always_were() {
    pins(
        Host {
            id: "h1".into(),
            url: "http://h1".into(),
            load: 2,
            draining: true,
            drain: Some(DrainOwner::Operator),
            lease_expires_at: 9,
            live: true,
        },
        json!({
            "id": "h1", "url": "http://h1", "load": 2, "draining": true, "drain": "operator",
            "lease_expires_at": 9, "live": true
        }),
    );
    assert_eq!(
        serde_json::to_value(DrainOwner::Shutdown).unwrap(),
        "shutdown"
    );
    pins(
        DrainAnswer {
            id: "h1".into(),
            drain_requested: false,
        },
        json!({ "id": "h1", "drain_requested": false }),
    );
}

#[test]
fn the_rest_is_written_as_it_always_was() {
    pins(ErrorAnswer { error: "no".into() }, json!({ "error": "no" }));
    pins(Me { user: "ada".into() }, json!({ "user": "ada" }));
    pins(
        ClientConfig {
            directories: vec!["http://a".into()],
        },
        json!({ "directories": ["http://a"] }),
    );
    pins(
        Healthy {
            status: HealthyStatus::Ok,
            store: StoreKind::Sqlite,
        },
        json!({ "status": "ok", "store": "sqlite" }),
    );
    pins(
        Degraded {
            status: DegradedStatus::Degraded,
            store: StoreKind::Postgres,
            error: "down".into(),
        },
        json!({ "status": "degraded", "store": "postgres", "error": "down" }),
    );
    // A host's whole health answer reads as the part the directory needs.
    let health: HostHealth =
        serde_json::from_value(json!({ "status": "ok", "host": "h1", "sessions": 2 })).unwrap();
    assert_eq!(health.host, "h1");
}

#[test]
fn store_kinds_are_read_from_the_names_stores_give_themselves() {
    assert_eq!(StoreKind::from_name("sqlite"), Some(StoreKind::Sqlite));
    assert_eq!(StoreKind::from_name("postgres"), Some(StoreKind::Postgres));
    assert_eq!(StoreKind::from_name("memory"), Some(StoreKind::Memory));
    assert_eq!(StoreKind::from_name("oracle"), None);
}

#[test]
fn the_login_form_names_its_fields_as_it_reads_them_and_hides_the_password() {
    let form = LoginForm {
        user: "ada".into(),
        password: "s3cret-pass".into(),
    };
    let value = serde_json::to_value(&form).unwrap();
    assert_eq!(value[LoginForm::USER], "ada");
    assert_eq!(value[LoginForm::PASSWORD], "s3cret-pass");
    assert_eq!(value.as_object().unwrap().len(), 2);
    assert!(!format!("{form:?}").contains("s3cret"));
}

#[test]
fn host_ids_are_plain() {
    for good in ["h1", "host-2.eu_west", "a", &"x".repeat(64)] {
        assert!(valid_host_id(good), "{good}");
    }
    let long = "x".repeat(65);
    for bad in ["", "h 1", "h/1", "h;1", "hé", long.as_str()] {
        assert!(!valid_host_id(bad), "{bad}");
    }
}

#[test]
fn settings_are_written_as_they_always_were_and_default_field_by_field() {
    pins(
        Settings::default(),
        json!({
            "font_size": 15, "font_family": "", "theme": "dark", "cursor": "block",
            "cursor_blink": false, "copy_on_select": false, "right_click_paste": false,
            "bell": "visual", "clipboard_write": false, "prediction": "auto"
        }),
    );
    // A page that sets one thing, or a newer build's field, reads as the
    // defaults for the rest.
    let partial: Settings =
        serde_json::from_value(json!({ "theme": "solarized-light", "ligatures": true })).unwrap();
    assert_eq!(
        partial,
        Settings {
            theme: ThemeName::SolarizedLight,
            ..Settings::default()
        }
    );
    for theme in ThemeName::ALL {
        assert_eq!(serde_json::to_value(theme).unwrap(), json!(theme.as_str()));
    }
    for cursor in CursorStyle::ALL {
        assert_eq!(
            serde_json::to_value(cursor).unwrap(),
            json!(cursor.as_str())
        );
    }
    for bell in Bell::ALL {
        assert_eq!(serde_json::to_value(bell).unwrap(), json!(bell.as_str()));
    }
    for prediction in Prediction::ALL {
        assert_eq!(
            serde_json::to_value(prediction).unwrap(),
            json!(prediction.as_str())
        );
    }
}

#[test]
fn settings_out_of_range_are_refused_with_the_reason() {
    assert_eq!(Settings::default().invalid(), None);
    let small = Settings {
        font_size: 7,
        ..Settings::default()
    };
    assert!(small.invalid().unwrap().contains("8 to 32"));
    let large = Settings {
        font_size: 33,
        ..Settings::default()
    };
    assert!(large.invalid().is_some());
    for good in [
        "",
        "DejaVu Sans Mono",
        "Noto_Sans.Mono-2",
        "Noto Sans Mono CJK JP",
    ] {
        assert!(valid_font_family(good), "{good:?}");
    }
    let long = "a".repeat(MAX_FONT_FAMILY_LEN + 1);
    for bad in [
        "a\"b",
        "x'; y",
        "mono, serif",
        "a;b",
        " lead",
        "trail ",
        "a\nb",
        "Ｍｏｎｏ 日本語",
        &long,
    ] {
        assert!(!valid_font_family(bad), "{bad:?}");
        let settings = Settings {
            font_family: bad.to_owned(),
            ..Settings::default()
        };
        assert!(settings.invalid().unwrap().contains("font family"));
    }
}

#[test]
fn share_links_are_written_as_pinned() {
    let share_id = "0123456789abcdef0123456789abcdef";
    let token = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    pins(ShareRequest { may_type: true }, json!({ "may_type": true }));
    pins(ShareRequest::default(), json!({ "may_type": false }));
    // Watching only is what an empty request asks for.
    assert_eq!(
        serde_json::from_value::<ShareRequest>(json!({})).unwrap(),
        ShareRequest::default()
    );
    for bad in [
        json!({ "may_type": "yes" }),
        json!({ "may_type": true, "x": 1 }),
    ] {
        assert!(
            serde_json::from_value::<ShareRequest>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    let created = ShareCreated {
        id: share_id.into(),
        token: token.into(),
        link_fragment: ShareCreated::fragment(token),
        expires_at: 1_700_000_000_000,
        may_type: false,
    };
    assert!(!format!("{created:?}").contains(token));
    pins(
        created,
        json!({
            "id": share_id, "token": token, "link_fragment": format!("#share={token}"),
            "expires_at": 1_700_000_000_000_i64, "may_type": false
        }),
    );
    for (state, text) in [
        (ShareState::Live, "live"),
        (ShareState::Revoked, "revoked"),
        (ShareState::Expired, "expired"),
        (ShareState::Ended, "ended"),
    ] {
        pins(
            Share {
                id: share_id.into(),
                session: ID,
                may_type: true,
                created_at: 1,
                expires_at: 2,
                state,
            },
            json!({
                "id": share_id, "session": ID_TEXT, "may_type": true,
                "created_at": 1, "expires_at": 2, "state": text
            }),
        );
    }
    let redeem = RedeemRequest {
        token: token.into(),
    };
    assert!(!format!("{redeem:?}").contains(token));
    pins(redeem, json!({ "token": token }));
    assert!(
        serde_json::from_value::<RedeemRequest>(json!({ "token": token, "session": ID_TEXT }))
            .is_err()
    );
    pins(
        Redeemed {
            session: ID,
            owner: "ada".into(),
            may_type: false,
        },
        json!({ "session": ID_TEXT, "owner": "ada", "may_type": false }),
    );
    pins(ShareForm::default(), json!({}));
    pins(
        ShareForm {
            may_type: Some("on".into()),
        },
        json!({ ShareForm::MAY_TYPE: "on" }),
    );
}

#[test]
fn share_ids_are_lowercase_hex() {
    assert!(valid_share_id("0123456789abcdef0123456789abcdef"));
    for bad in [
        "",
        "0123456789ABCDEF0123456789abcdef",
        "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0",
        "g123456789abcdef0123456789abcdef",
    ] {
        assert!(!valid_share_id(bad), "{bad}");
    }
}

#[test]
fn recordings_are_written_as_pinned() {
    for (policy, text) in [
        (RecordingPolicy::Off, "off"),
        (RecordingPolicy::OptIn, "opt-in"),
        (RecordingPolicy::Always, "always"),
    ] {
        pins(policy, json!(text));
    }
    let listed = Recording {
        session: ID,
        started_at_ms: 1_700_000_000_000,
        updated_at_ms: 1_700_000_060_000,
        duration_ms: 59_000,
        bytes: 4096,
        cols: 80,
        rows: 24,
        title: None,
        running: true,
    };
    pins(
        Recordings {
            policy: RecordingPolicy::OptIn,
            record_new_sessions: false,
            recordings: vec![listed],
        },
        json!({
            "policy": "opt-in",
            "record_new_sessions": false,
            "recordings": [{
                "session": ID_TEXT, "started_at_ms": 1_700_000_000_000_i64,
                "updated_at_ms": 1_700_000_060_000_i64, "duration_ms": 59_000,
                "bytes": 4096, "cols": 80, "rows": 24, "title": null, "running": true
            }]
        }),
    );
    pins(
        RecordingDetail {
            session: ID,
            cols: 100,
            rows: 30,
            started_at_ms: 5,
            duration_ms: 61_300,
            bytes: 10,
            title: Some("vim".into()),
            markers: vec![RecordingMarker {
                at_ms: 61_250,
                text: "restored on h2".into(),
            }],
        },
        json!({
            "session": ID_TEXT, "cols": 100, "rows": 30, "started_at_ms": 5,
            "duration_ms": 61_300, "bytes": 10, "title": "vim",
            "markers": [{ "at_ms": 61_250, "text": "restored on h2" }]
        }),
    );
    pins(
        RecordingPreference {
            record_new_sessions: true,
        },
        json!({ "record_new_sessions": true }),
    );
    for bad in [
        json!({}),
        json!({ "record_new_sessions": "yes" }),
        json!({ "record_new_sessions": true, "x": 1 }),
    ] {
        assert!(
            serde_json::from_value::<RecordingPreference>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    pins(RecordingPreferenceForm::default(), json!({}));
    pins(
        RecordingPreferenceForm {
            record_new_sessions: Some("on".into()),
        },
        json!({ RecordingPreferenceForm::RECORD_NEW_SESSIONS: "on" }),
    );
    for format in ExportFormat::ALL {
        pins(format, json!(format.as_str()));
    }
    pins(
        ExportQuery {
            format: Some(ExportFormat::Cast3),
        },
        json!({ "format": "cast3" }),
    );
}

#[test]
fn frame_windows_are_ordered_and_cut_to_two_minutes() {
    let window = |from_ms, to_ms| FramesQuery { from_ms, to_ms }.window();
    assert_eq!(window(None, None), (0, MAX_FRAME_WINDOW_MS));
    assert_eq!(window(Some(1_000), Some(5_000)), (1_000, 5_000));
    assert_eq!(window(Some(1_000), None), (1_000, 121_000));
    assert_eq!(window(Some(1_000), Some(500_000)), (1_000, 121_000));
    // Backwards is the one moment at from_ms, never a refusal.
    assert_eq!(window(Some(9_000), Some(5_000)), (9_000, 9_000));
    assert_eq!(window(Some(u64::MAX), None), (u64::MAX, u64::MAX));
    // What the document's int64 cannot say is refused.
    let query = |from_ms, to_ms| FramesQuery { from_ms, to_ms };
    assert_eq!(query(Some(MAX_RECORDING_MS), Some(0)).invalid(), None);
    assert_eq!(query(None, None).invalid(), None);
    let beyond = query(None, Some(MAX_RECORDING_MS + 1)).invalid().unwrap();
    assert!(beyond.starts_with("to_ms is beyond"), "{beyond}");
    assert!(query(Some(u64::MAX), None).invalid().is_some());
}
