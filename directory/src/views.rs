//! The server-rendered pages' HTML: the sign-in form, the user's sessions
//! (with their share links), a new share link, the user's recordings, and
//! errors.
//!
//! They are plain HTML with no script and no inline style (their policy,
//! [`FORM_PAGE_POLICY`], allows neither), styled by the static
//! `style.css`. They are written with maud, which escapes every value it
//! splices in unless told otherwise (`PreEscaped`, which nothing here
//! uses): a session's title is whatever its program printed, so it is
//! attacker-controlled, and a page that had to remember an `escape` call
//! at each value would one day forget one.
//!
//! Views only draw: they know no route and read no store, so the handlers
//! that answer with them (`signin`, `pages`) sit above them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use directory_api::{
    ExportFormat, LoginForm, RecordingPolicy, RecordingPreferenceForm, Recordings, ShareForm,
};
use maud::{DOCTYPE, Markup, html};
use store::{Millis, SessionRecord, SessionState, ShareRecord};

use crate::edge::FORM_PAGE_POLICY;
use crate::error::AppError;

/// An HTML answer with the form pages' policy; never cached, since it is
/// about one signed-in person.
pub fn page(status: StatusCode, body: Markup) -> Response {
    let mut response = (status, body.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(FORM_PAGE_POLICY),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An error as a page, with the same status and words as the JSON answer.
pub fn error(error: AppError) -> Response {
    let (status, text, _) = error.status_and_message();
    page(status, message("Thinline", &text))
}

/// Milliseconds since the Unix epoch as UTC `YYYY-MM-DD HH:MM`.
pub fn utc_minute(ms: Millis) -> String {
    let minutes = ms.div_euclid(60_000);
    let (days, minute_of_day) = (minutes.div_euclid(1440), minutes.rem_euclid(1440));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        minute_of_day / 60,
        minute_of_day % 60
    )
}

fn document(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href="/style.css";
            }
            body class="page" {
                main { (body) }
            }
        }
    }
}

/// The sign-in form, with a notice above it if there is one. Its fields
/// are named as `LoginForm` reads them.
pub fn login(notice: Option<&str>) -> Markup {
    document(
        "Sign in · Thinline",
        html! {
            h1 { "Thinline" }
            @if let Some(notice) = notice {
                p class="notice" role="alert" { (notice) }
            }
            // No `action`: the form posts to the page's own URL, fragment
            // included, and the browser carries that fragment over the
            // answer's redirect to `/` (whose Location has none). So a
            // share link (`/#share=TOKEN`, sent here by `/` while signed
            // out) survives signing in, with no script: this page's
            // policy allows none, and `form-action 'self'` allows the URL.
            form method="post" {
                label {
                    "User "
                    input name=(LoginForm::USER) autocomplete="username" autocapitalize="none"
                        spellcheck="false" required autofocus;
                }
                label {
                    "Password "
                    input name=(LoginForm::PASSWORD) type="password"
                        autocomplete="current-password" required;
                }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// A page that only says something, with a way back.
pub fn message(title: &str, text: &str) -> Markup {
    document(
        title,
        html! {
            h1 { (title) }
            p class="notice" { (text) }
            p {
                a href="/sessions" { "Your sessions" }
                " · "
                a href="/login" { "Sign in" }
            }
        },
    )
}

/// What a session is busy with: the foreground command, else the title,
/// else the session's own program (a shell waiting at its prompt has no
/// other foreground).
fn running(session: &SessionRecord) -> &str {
    let program = session.program.rsplit('/').next().unwrap_or_default();
    session
        .foreground
        .as_deref()
        .or(session.title.as_deref())
        .unwrap_or(program)
}

/// The live share links of one session, each with a way to revoke it.
fn share_rows(session: &SessionRecord, shares: &[ShareRecord]) -> Markup {
    let mine: Vec<&ShareRecord> = shares
        .iter()
        .filter(|share| share.session == session.id)
        .collect();
    html! {
        @if !mine.is_empty() {
            tr class="shares" {
                td colspan="6" {
                    "Shared:"
                    ul {
                        @for share in mine {
                            li {
                                "created " (utc_minute(share.created_at))
                                ", expires " (utc_minute(share.expires_at)) " UTC, "
                                @if share.may_type { "may type" } @else { "watch only" }
                                " "
                                form method="post" action={ "/shares/" (share.id) "/revoke" } {
                                    button type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The sessions page for `user`, with the live share links of each
/// session (`shares`, already filtered by the caller).
pub fn sessions_list(user: &str, sessions: &[SessionRecord], shares: &[ShareRecord]) -> Markup {
    let table = html! {
        @if sessions.is_empty() {
            p { "You have no sessions yet." }
        } @else {
            table {
                thead {
                    tr {
                        th { "Host" } th { "Started (UTC)" } th { "Last active (UTC)" }
                        th { "Running" } th { "State" } th {}
                    }
                }
                tbody {
                    @for session in sessions {
                        tr {
                            td { (session.owner_host) }
                            td { (utc_minute(session.created_at)) }
                            td { (utc_minute(session.last_active)) }
                            td { (running(session)) }
                            @match session.state {
                                SessionState::Running => {
                                    td { "running" }
                                    td {
                                        a href={ "/?session=" (session.id) } { "Open" }
                                        " "
                                        form method="post" action={ "/sessions/" (session.id) "/end" } {
                                            button type="submit" { "End" }
                                        }
                                        " "
                                        details {
                                            summary { "Share…" }
                                            form method="post" action={ "/sessions/" (session.id) "/share" } {
                                                label {
                                                    input type="checkbox" name=(ShareForm::MAY_TYPE) value="on";
                                                    " may type"
                                                }
                                                " "
                                                button type="submit" { "Create a share link" }
                                            }
                                        }
                                    }
                                }
                                SessionState::Ended => {
                                    td { "ended" }
                                    td {}
                                }
                            }
                        }
                        (share_rows(session, shares))
                    }
                }
            }
        }
    };
    document(
        "Sessions · Thinline",
        html! {
            header {
                h1 { "Sessions of " (user) }
                nav {
                    a href="/" { "Terminal" }
                    " "
                    a href="/recordings" { "Recordings" }
                    " "
                    form method="post" action="/logout" {
                        button type="submit" { "Sign out" }
                    }
                }
            }
            (table)
            p { a href="/?new=1" { "Start a new session" } }
        },
    )
}

/// A recording's length as people say it: `42 s`, `3 min 05 s`,
/// `1 h 02 min`.
pub fn duration(ms: u64) -> String {
    let seconds = ms / 1000;
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours} h {minutes:02} min")
    } else if minutes > 0 {
        format!("{minutes} min {seconds:02} s")
    } else {
        format!("{seconds} s")
    }
}

/// A size in bytes, in binary units with one decimal: `512 B`, `1.5 KiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The deployment's recording policy in one sentence, for the user.
fn policy_sentence(policy: RecordingPolicy) -> &'static str {
    match policy {
        RecordingPolicy::Off => "Recording is off on this deployment.",
        RecordingPolicy::OptIn => "Your new sessions are recorded if you turn it on below.",
        RecordingPolicy::Always => "Every session is recorded on this deployment (audit).",
    }
}

/// What an empty list means, and what to do about it.
fn no_recordings_hint(recordings: &Recordings) -> &'static str {
    match (recordings.policy, recordings.record_new_sessions) {
        (RecordingPolicy::Off, _) => "None will be made while recording is off.",
        (RecordingPolicy::OptIn, false) => {
            "Tick \u{201c}Record my new sessions\u{201d} and save: the sessions you start from then on are recorded."
        }
        (RecordingPolicy::OptIn, true) | (RecordingPolicy::Always, _) => {
            "The sessions you start from now on are recorded and listed here."
        }
    }
}

/// The link that exports recording `id` as `format`.
fn export_link(id: &str, format: ExportFormat) -> String {
    format!("/v1/recordings/{id}/export?format={}", format.as_str())
}

/// The recordings page for `user`: the policy, the choice to be recorded
/// (under `opt-in`), and each recording with a way to play, export and
/// delete it.
pub fn recordings_list(user: &str, recordings: &Recordings) -> Markup {
    let list = &recordings.recordings;
    document(
        "Recordings · Thinline",
        html! {
            header {
                h1 { "Recordings of " (user) }
                nav {
                    a href="/" { "Terminal" }
                    " "
                    a href="/sessions" { "Sessions" }
                    " "
                    form method="post" action="/logout" {
                        button type="submit" { "Sign out" }
                    }
                }
            }
            p { (policy_sentence(recordings.policy)) }
            @if recordings.policy == RecordingPolicy::OptIn {
                form method="post" action="/recordings/preference" {
                    label {
                        input type="checkbox" name=(RecordingPreferenceForm::RECORD_NEW_SESSIONS)
                            value="on" checked[recordings.record_new_sessions];
                        " Record my new sessions"
                    }
                    " "
                    button type="submit" { "Save" }
                }
            }
            @if list.is_empty() {
                p { "No recordings yet." }
                p { (no_recordings_hint(recordings)) }
            } @else {
                table {
                    thead {
                        tr {
                            th { "Started (UTC)" } th { "Title" } th { "Duration" } th { "Size" }
                            th { "State" } th {}
                        }
                    }
                    tbody {
                        @for recording in list {
                            @let id = recording.session.to_string();
                            tr {
                                td { (utc_minute(recording.started_at_ms)) }
                                td { (recording.title.as_deref().unwrap_or("")) }
                                td { (duration(recording.duration_ms)) }
                                td { (size(recording.bytes)) }
                                td { @if recording.running { "running" } }
                                td {
                                    a href={ "/play?recording=" (id) } { "Play" }
                                    " "
                                    a href=(export_link(&id, ExportFormat::Cast)) { "asciicast" }
                                    " "
                                    a href=(export_link(&id, ExportFormat::Cast3)) { "asciicast v3" }
                                    " "
                                    a href=(export_link(&id, ExportFormat::Txt)) { "text" }
                                    " "
                                    // Two steps: a recording deleted is gone,
                                    // blocks and all.
                                    details {
                                        summary { "Delete…" }
                                        form method="post" action={ "/recordings/" (id) "/delete" } {
                                            button type="submit" { "Delete it for good" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The page that shows a new share link, once: its token is in no other
/// answer, and this one is never cached (`page`).
pub fn share_created(link: &str, expires_at: Millis, may_type: bool) -> Markup {
    document(
        "Share link · Thinline",
        html! {
            h1 { "Share link" }
            p {
                label {
                    "Link "
                    input readonly value=(link) size="80" autofocus spellcheck="false";
                }
            }
            p class="notice" role="alert" {
                "Copy it now: it is shown only once."
            }
            p {
                "Whoever opens it "
                @if may_type { "watches this session and may type into it" }
                @else { "watches this session (without typing)" }
                ", until " (utc_minute(expires_at)) " UTC or until you revoke it on your sessions page. "
                "Only users signed in to Thinline can open it."
            }
            p { a href="/sessions" { "Back to your sessions" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(title: Option<&str>, owner_host: &str) -> SessionRecord {
        SessionRecord {
            id: "0123456789abcdef0123456789abcdef".to_owned(),
            owner: "ada".to_owned(),
            program: "/usr/bin/bash".to_owned(),
            args: Vec::new(),
            cwd: "/".to_owned(),
            env: Vec::new(),
            cols: 80,
            rows: 24,
            title: title.map(str::to_owned),
            foreground: None,
            state: SessionState::Running,
            owner_host: owner_host.to_owned(),
            epoch: 1,
            created_at: 0,
            last_active: 60_000,
        }
    }

    #[test]
    fn markup_is_escaped() {
        // What the removed `escape` helper was tested with, now through a
        // page: every character that could open markup or end an
        // attribute value comes out as an entity. maud leaves `'` as it
        // is: it quotes every attribute with `"`, so `'` ends nothing.
        let page = message("t", r#"<img src=x onerror="a('&')">"#).into_string();
        assert!(
            page.contains("&lt;img src=x onerror=&quot;a('&amp;')&quot;&gt;"),
            "{page}"
        );
        assert!(!page.contains("<img"));
        let page = message("t", "plain ünïcode").into_string();
        assert!(page.contains("plain ünïcode"));
    }

    #[test]
    fn times_are_utc_minutes() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00");
        assert_eq!(utc_minute(59_999), "1970-01-01 00:00");
        // 2024-02-29T23:59:30Z, a leap day.
        assert_eq!(utc_minute(1_709_251_170_000), "2024-02-29 23:59");
        // 2000-03-01T12:34:00Z.
        assert_eq!(utc_minute(951_914_040_000), "2000-03-01 12:34");
        assert_eq!(utc_minute(-60_000), "1969-12-31 23:59");
    }

    #[test]
    fn a_hostile_title_stays_text() {
        let record = record(Some("<script>alert(1)</script>"), "h<1>");
        let page = sessions_list("ada<", &[record], &[]).into_string();
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("h&lt;1&gt;"));
        assert!(page.contains("Sessions of ada&lt;"));
        assert!(page.contains("1970-01-01 00:01"));
        assert!(page.contains("href=\"/?session=0123456789abcdef0123456789abcdef\""));
        assert!(page.contains("action=\"/sessions/0123456789abcdef0123456789abcdef/end\""));
        assert!(page.contains("href=\"/?new=1\""));
        assert!(page.contains("action=\"/logout\""));
    }

    #[test]
    fn running_falls_back_from_foreground_to_title_to_program() {
        let mut record = record(None, "h1");
        let list = |record: &SessionRecord| {
            sessions_list("ada", std::slice::from_ref(record), &[]).into_string()
        };
        assert!(list(&record).contains("<td>bash</td>"));
        record.title = Some("notes".to_owned());
        assert!(list(&record).contains("<td>notes</td>"));
        record.foreground = Some("vim notes.txt".to_owned());
        assert!(list(&record).contains("<td>vim notes.txt</td>"));
    }

    #[test]
    fn the_login_form_posts_the_fields_the_handler_reads() {
        let form = login(Some("wrong <user>")).into_string();
        // To its own URL (`/login`), fragment and all.
        assert!(form.contains("<form method=\"post\">"), "{form}");
        assert!(!form.contains("action="));
        assert!(form.contains("name=\"user\""));
        assert!(form.contains("name=\"password\" type=\"password\""));
        assert!(form.contains("wrong &lt;user&gt;"));
        assert!(form.starts_with("<!DOCTYPE html>"));
    }

    #[test]
    fn running_sessions_offer_a_share_form_and_list_their_live_shares() {
        let session = record(None, "h1");
        let share = ShareRecord {
            id: "00112233445566778899aabbccddeeff".to_owned(),
            token_hash: "ab".repeat(32),
            session: session.id.clone(),
            owner: "ada".to_owned(),
            may_type: true,
            created_at: 60_000,
            expires_at: 120_000,
            revoked: false,
        };
        let other = ShareRecord {
            session: "ffffffffffffffffffffffffffffffff".to_owned(),
            ..share.clone()
        };
        let page =
            sessions_list("ada", std::slice::from_ref(&session), &[share, other]).into_string();
        assert!(page.contains("action=\"/sessions/0123456789abcdef0123456789abcdef/share\""));
        assert!(page.contains("name=\"may_type\""));
        assert!(page.contains("Create a share link"));
        assert!(page.contains("created 1970-01-01 00:01, expires 1970-01-01 00:02 UTC, may type"));
        assert_eq!(
            page.matches("action=\"/shares/00112233445566778899aabbccddeeff/revoke\"")
                .count(),
            1,
            "only this session's shares: {page}"
        );
        let ended = SessionRecord {
            state: SessionState::Ended,
            ..session
        };
        let page = sessions_list("ada", &[ended], &[]).into_string();
        assert!(!page.contains("/share\""));
    }

    fn recordings(policy: RecordingPolicy, on: bool, titles: &[Option<&str>]) -> Recordings {
        Recordings {
            policy,
            record_new_sessions: on,
            recordings: titles
                .iter()
                .enumerate()
                .map(|(n, title)| directory_api::Recording {
                    session: protocol::SessionId([u8::try_from(n).unwrap_or(0); 16]),
                    started_at_ms: 60_000,
                    updated_at_ms: 120_000,
                    duration_ms: 3_723_000,
                    bytes: 1536,
                    cols: 80,
                    rows: 24,
                    title: title.map(str::to_owned),
                    running: n == 0,
                })
                .collect(),
        }
    }

    #[test]
    fn recordings_are_listed_escaped_with_their_links() {
        let page = recordings_list(
            "ada",
            &recordings(RecordingPolicy::OptIn, true, &[Some("<b>vim</b>"), None]),
        )
        .into_string();
        assert!(!page.contains("<b>vim"), "{page}");
        assert!(page.contains("&lt;b&gt;vim&lt;/b&gt;"));
        assert!(page.contains("Your new sessions are recorded if you turn it on below."));
        assert!(
            page.contains("name=\"record_new_sessions\" value=\"on\" checked"),
            "{page}"
        );
        assert!(page.contains("<td>1970-01-01 00:01</td>"));
        assert!(page.contains("<td>1 h 02 min</td>") && page.contains("<td>1.5 KiB</td>"));
        assert_eq!(page.matches("<td>running</td>").count(), 1, "{page}");
        let first = "00000000000000000000000000000000";
        assert!(page.contains(&format!("href=\"/play?recording={first}\"")));
        assert!(page.contains(&format!(
            "href=\"/v1/recordings/{first}/export?format=cast3\""
        )));
        assert!(page.contains(&format!("action=\"/recordings/{first}/delete\"")));
        assert!(page.contains("href=\"/sessions\""));

        let unticked =
            recordings_list("ada", &recordings(RecordingPolicy::OptIn, false, &[])).into_string();
        assert!(!unticked.contains("checked"));
        assert!(unticked.contains("No recordings yet."));
        assert!(unticked.contains("Record my new sessions"));
        for (policy, sentence) in [
            (RecordingPolicy::Off, "Recording is off on this deployment."),
            (
                RecordingPolicy::Always,
                "Every session is recorded on this deployment (audit).",
            ),
        ] {
            let page = recordings_list("ada", &recordings(policy, false, &[])).into_string();
            assert!(page.contains(sentence), "{page}");
            assert!(
                !page.contains("/recordings/preference"),
                "no choice: {page}"
            );
        }
    }

    #[test]
    fn lengths_and_sizes_read_as_people_say_them() {
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(59_999), "59 s");
        assert_eq!(duration(65_000), "1 min 05 s");
        assert_eq!(duration(3_600_000), "1 h 00 min");
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(64 << 20), "64.0 MiB");
        assert_eq!(size(u64::MAX), "16777216.0 TiB");
    }

    #[test]
    fn a_new_link_is_shown_in_a_read_only_field() {
        let page = share_created("http://x/#share=T<", 120_000, false).into_string();
        assert!(
            page.contains("readonly value=\"http://x/#share=T&lt;\""),
            "{page}"
        );
        assert!(page.contains("shown only once"));
        assert!(page.contains("1970-01-01 00:02 UTC"));
        assert!(page.contains("without typing"));
        assert!(page.contains("Only users signed in"));
    }
}
