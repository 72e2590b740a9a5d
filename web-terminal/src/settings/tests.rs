use directory_api::{Bell, CursorStyle, Prediction, ThemeName};
use protocol::CursorShape;

use super::*;

/// What the directory writes, serialised by its own types.
fn from_directory(settings: &directory_api::Settings) -> String {
    serde_json::to_string(settings).unwrap()
}

#[test]
fn the_page_reads_what_the_directory_writes_and_writes_what_it_reads() {
    let sent = directory_api::Settings {
        font_size: 22,
        font_family: "Noto Sans Mono CJK JP".into(),
        theme: ThemeName::SolarizedLight,
        cursor: CursorStyle::Underline,
        cursor_blink: false,
        copy_on_select: true,
        right_click_paste: true,
        bell: Bell::Notify,
        clipboard_write: true,
        prediction: Prediction::Never,
    };
    let read = Settings::parse(&from_directory(&sent)).unwrap();
    assert_eq!(read.font_size, 22);
    assert_eq!(read.font_family, "Noto Sans Mono CJK JP");
    assert_eq!(read.theme, ThemeName::SolarizedLight);
    assert_eq!(read.cursor, CursorStyle::Underline);
    assert!(!read.cursor_blink && read.copy_on_select && read.right_click_paste);
    assert_eq!(read.bell, Bell::Notify);
    assert!(read.clipboard_write);
    assert_eq!(read.prediction, Prediction::Never);
    // The page's document is one the directory takes, field for field.
    let written: directory_api::Settings = serde_json::from_str(&read.to_json()).unwrap();
    assert_eq!(written, sent);
    assert_eq!(
        Settings::parse(&from_directory(&directory_api::Settings::default())).unwrap(),
        Settings::default()
    );
}

#[test]
fn a_field_the_page_cannot_read_keeps_its_default_and_the_rest_still_apply() {
    let read = Settings::parse(
        r#"{"theme":"nord","font_size":99,"bell":"off","cursor":7,"ligatures":true,"copy_on_select":"yes","font_family":"a\"b"}"#,
    )
    .unwrap();
    assert_eq!(
        read,
        Settings {
            bell: Bell::Off,
            ..Settings::default()
        }
    );
    assert_eq!(Settings::parse("[]"), None);
    assert_eq!(Settings::parse("not json"), None);
    assert_eq!(Settings::parse("{}"), Some(Settings::default()));
}

#[test]
fn the_panel_sets_and_shows_every_field() {
    let mut settings = Settings::default();
    assert!(settings.set("theme", "gruvbox-dark"));
    assert!(settings.set("font_size", "18"));
    assert!(settings.set("font_family", "  Fira Code "));
    assert!(settings.set("cursor", "bar"));
    assert!(settings.set("bell", "notify"));
    assert!(settings.set("prediction", "always"));
    assert_eq!(settings.get("prediction"), Some(Ok("always".into())));
    assert!(settings.set_flag("clipboard_write", true));
    assert!(settings.set_flag("cursor_blink", false));
    assert_eq!(settings.font_family, "Fira Code");
    assert_eq!(settings.get("theme"), Some(Ok("gruvbox-dark".into())));
    assert_eq!(settings.get("font_size"), Some(Ok("18".into())));
    assert_eq!(settings.get("clipboard_write"), Some(Err(true)));
    assert_eq!(settings.get("cursor_blink"), Some(Err(false)));
    assert_eq!(settings.get("nothing"), None);
    // What the directory would refuse changes nothing here either.
    let before = settings.clone();
    for (name, value) in [
        ("theme", "nord"),
        ("font_size", "7"),
        ("font_size", "33"),
        ("font_size", "x"),
        ("font_family", "a, serif"),
        ("cursor", "beam"),
        ("bell", "loud"),
        ("prediction", "sometimes"),
        ("clipboard_write", "true"),
        ("nothing", "1"),
    ] {
        assert!(!settings.set(name, value), "{name}={value}");
    }
    assert!(!settings.set_flag("theme", true));
    assert_eq!(settings, before);
    // Every field the panel can show, it can set, and the JSON names them all.
    let json = settings.to_json();
    for name in [
        "font_size",
        "font_family",
        "theme",
        "cursor",
        "cursor_blink",
        "copy_on_select",
        "right_click_paste",
        "bell",
        "clipboard_write",
        "prediction",
    ] {
        assert!(settings.get(name).is_some(), "{name}");
        assert!(json.contains(&format!("\"{name}\":")), "{name} in {json}");
    }
}

#[test]
fn zoom_steps_within_the_limits_and_resets() {
    let mut settings = Settings::default();
    assert!(settings.zoom(Zoom::In));
    assert_eq!(settings.font_size, 16);
    for _ in 0..40 {
        settings.zoom(Zoom::In);
    }
    assert_eq!(settings.font_size, 32);
    assert!(!settings.zoom(Zoom::In));
    assert!(settings.zoom(Zoom::Out));
    assert_eq!(settings.font_size, 30);
    for _ in 0..40 {
        settings.zoom(Zoom::Out);
    }
    assert_eq!(settings.font_size, 8);
    assert!(!settings.zoom(Zoom::Out));
    assert!(settings.zoom(Zoom::Reset));
    assert_eq!(settings.font_size, directory_api::DEFAULT_FONT_SIZE);
    assert!(!settings.zoom(Zoom::Reset));
}

#[test]
fn the_users_font_comes_first_and_monospace_last() {
    let mut settings = Settings::default();
    assert!(settings.font_families().ends_with("monospace"));
    assert!(!settings.font_families().starts_with('"'));
    settings.set("font_family", "JetBrains Mono");
    assert!(settings.font_families().starts_with("\"JetBrains Mono\", "));
    assert!(settings.font_families().ends_with("monospace"));
}

#[test]
fn a_program_that_asks_for_a_cursor_shape_gets_it_otherwise_the_user_chooses() {
    let mut settings = Settings::default();
    assert_eq!(
        settings.cursor_shape(CursorShape::Block),
        CursorShape::Block
    );
    settings.set("cursor", "bar");
    assert_eq!(settings.cursor_shape(CursorShape::Block), CursorShape::Beam);
    settings.set("cursor", "underline");
    assert_eq!(
        settings.cursor_shape(CursorShape::Block),
        CursorShape::Underline
    );
    // vim's insert mode asks for a beam; an unfocused cursor is hollow.
    assert_eq!(settings.cursor_shape(CursorShape::Beam), CursorShape::Beam);
    assert_eq!(
        settings.cursor_shape(CursorShape::HollowBlock),
        CursorShape::HollowBlock
    );
}

fn answer(status: u16, body: &str) -> HttpOutcome {
    HttpOutcome::Response {
        status,
        body: body.to_owned(),
    }
}

#[test]
fn the_accounts_settings_replace_the_cached_copy_until_the_user_changes_one() {
    let cached = r#"{"theme":"light"}"#;
    let mut sync = SettingsSync::new(Some(cached));
    assert_eq!(sync.settings().theme, ThemeName::Light);
    assert!(SettingsSync::new(Some("garbage")).settings() == &Settings::default());
    // No answer, or an error, leaves the copy in use.
    assert!(!sync.fetched(&HttpOutcome::Failed));
    assert!(!sync.fetched(&answer(503, r#"{"error":"store down"}"#)));
    assert!(!sync.fetched(&answer(200, cached)));
    assert!(sync.fetched(&answer(200, r#"{"theme":"gruvbox-dark","font_size":18}"#)));
    assert_eq!(sync.settings().theme, ThemeName::GruvboxDark);
    assert_eq!(sync.settings().font_size, 18);
    // Once the user changed something here, a late answer is not taken.
    let put = sync.change(|s| s.zoom(Zoom::In)).unwrap();
    assert!(put.contains("\"font_size\":19"));
    assert!(!sync.fetched(&answer(200, r#"{"theme":"dark"}"#)));
    assert_eq!(sync.settings().theme, ThemeName::GruvboxDark);
}

#[test]
fn one_save_flies_at_a_time_and_the_last_change_is_what_lands() {
    let mut sync = SettingsSync::new(None);
    assert_eq!(
        sync.change(|s| s.zoom(Zoom::Reset)),
        None,
        "nothing changed"
    );
    let first = sync.change(|s| s.zoom(Zoom::In)).unwrap();
    assert!(first.contains("\"font_size\":16"));
    // Two more while it flies: sent once, whole, when it is answered.
    assert_eq!(sync.change(|s| s.zoom(Zoom::In)), None);
    assert_eq!(sync.change(|s| s.set("theme", "light")), None);
    let again = sync.saved(&answer(200, "{}"));
    let second = again.send.unwrap();
    assert!(second.contains("\"font_size\":17") && second.contains("\"theme\":\"light\""));
    let done = sync.saved(&answer(200, "{}"));
    assert_eq!(done.send, None);
    assert_eq!(done.status, "saved to your account");
    // Failures say what happened and keep the change here.
    let third = sync.change(|s| s.set_flag("copy_on_select", true));
    assert!(third.is_some());
    let refused = sync.saved(&answer(400, r#"{"error":"font size 99 is out of range"}"#));
    assert!(
        refused.status.contains("font size 99 is out of range"),
        "{}",
        refused.status
    );
    assert!(
        sync.change(|s| s.set_flag("copy_on_select", false))
            .is_some()
    );
    let away = sync.saved(&HttpOutcome::Failed);
    assert!(
        away.status.contains("no directory answered"),
        "{}",
        away.status
    );
    assert_eq!(away.retry_in_ms, Some(RETRY_FIRST_MS));
    // The change is tried again until a directory takes it.
    assert!(sync.retry().unwrap().contains("\"copy_on_select\":false"));
    assert_eq!(sync.retry(), None, "one save in flight");
    assert!(
        sync.change(|s| s.set_flag("copy_on_select", true))
            .is_none(),
        "sent once the retry is answered"
    );
    let again = sync.saved(&HttpOutcome::Failed);
    assert!(again.send.unwrap().contains("\"copy_on_select\":true"));
    assert!(
        sync.saved(&answer(401, ""))
            .status
            .contains("sign in again")
    );
    assert!(sync.settings().copy_on_select);
}

#[test]
fn a_save_no_directory_takes_is_tried_again_ever_more_slowly() {
    let mut sync = SettingsSync::new(None);
    sync.change(|s| s.set("theme", "light")).unwrap();
    let mut waits = Vec::new();
    for answer_now in [HttpOutcome::Failed, answer(503, ""), HttpOutcome::Failed] {
        let told = sync.saved(&answer_now);
        assert!(told.status.contains("tries again"), "{}", told.status);
        waits.push(told.retry_in_ms.unwrap());
        assert!(sync.retry().is_some());
    }
    assert_eq!(waits, [2_000, 4_000, 8_000]);
    for _ in 0..10 {
        let wait = sync.saved(&HttpOutcome::Failed).retry_in_ms.unwrap();
        assert!(wait <= RETRY_MAX_MS);
        sync.retry();
    }
    let saved = sync.saved(&answer(200, "{}"));
    assert_eq!(saved.status, "saved to your account");
    assert_eq!(saved.retry_in_ms, None);
    assert_eq!(sync.retry(), None, "nothing left to save");
    // A refusal is final: the user is told, nothing is retried.
    sync.change(|s| s.set("theme", "dark")).unwrap();
    assert_eq!(sync.saved(&answer(400, "{}")).retry_in_ms, None);
}
