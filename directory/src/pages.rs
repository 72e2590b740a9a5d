//! The server-rendered pages: sign-in, the user's sessions, and errors.
//!
//! They are plain HTML with no script and no inline style (their policy,
//! [`edge::FORM_PAGE_POLICY`], allows neither), styled by the static
//! `style.css`. Everything interpolated into them (user names, titles,
//! commands a program set, messages) goes through [`escape`]: a session's
//! title is whatever its program printed, so it is attacker-controlled.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use store::{Millis, SessionRecord, SessionState};

use crate::error::AppError;
use crate::signin::SignedIn;
use crate::{AppState, edge, sessions};

/// An HTML answer with the form pages' policy; never cached, since it is
/// about one signed-in person.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(edge::FORM_PAGE_POLICY),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An error as a page, with the same status and words as the JSON answer.
pub fn error(error: AppError) -> Response {
    let (status, text, _) = error.status_and_message();
    html(status, message("Thinline", &text))
}

/// `&`, `<`, `>`, `"` and `'` as entities: safe in text and in quoted
/// attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<link rel=\"stylesheet\" href=\"/style.css\">\n</head>\n\
         <body class=\"page\">\n<main>\n{body}</main>\n</body>\n</html>\n",
        escape(title)
    )
}

/// The sign-in form, with a notice above it if there is one.
pub fn login(notice: Option<&str>) -> String {
    let notice = notice
        .map(|text| format!("<p class=\"notice\" role=\"alert\">{}</p>\n", escape(text)))
        .unwrap_or_default();
    document(
        "Sign in · Thinline",
        &format!(
            "<h1>Thinline</h1>\n{notice}<form method=\"post\" action=\"/login\">\n\
             <label>User <input name=\"user\" autocomplete=\"username\" autocapitalize=\"none\" \
             spellcheck=\"false\" required autofocus></label>\n\
             <label>Password <input name=\"password\" type=\"password\" \
             autocomplete=\"current-password\" required></label>\n\
             <button type=\"submit\">Sign in</button>\n</form>\n"
        ),
    )
}

/// A page that only says something, with a way back.
pub fn message(title: &str, text: &str) -> String {
    document(
        title,
        &format!(
            "<h1>{}</h1>\n<p class=\"notice\">{}</p>\n<p><a href=\"/sessions\">Your sessions</a> · \
             <a href=\"/login\">Sign in</a></p>\n",
            escape(title),
            escape(text)
        ),
    )
}

/// The sessions page's body for `user`.
pub fn sessions_list(user: &str, sessions: &[SessionRecord]) -> String {
    let mut rows = String::new();
    for session in sessions {
        let id = escape(&session.id);
        // The foreground command, else the title, else the session's own
        // program (a shell waiting at its prompt has no other foreground).
        let program = session.program.rsplit('/').next().unwrap_or_default();
        let running = session
            .foreground
            .as_deref()
            .or(session.title.as_deref())
            .unwrap_or(program);
        let (state, actions) = match session.state {
            SessionState::Running => (
                "running",
                format!(
                    "<a href=\"/?session={id}\">Open</a> \
                     <form method=\"post\" action=\"/sessions/{id}/end\">\
                     <button type=\"submit\">End</button></form>"
                ),
            ),
            SessionState::Ended => ("ended", String::new()),
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{state}</td><td>{actions}</td></tr>\n",
            escape(&session.owner_host),
            utc_minute(session.created_at),
            utc_minute(session.last_active),
            escape(running),
        ));
    }
    let table = if sessions.is_empty() {
        "<p>You have no sessions yet.</p>\n".to_owned()
    } else {
        format!(
            "<table>\n<thead><tr><th>Host</th><th>Started (UTC)</th><th>Last active (UTC)</th>\
             <th>Running</th><th>State</th><th></th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n"
        )
    };
    document(
        "Sessions · Thinline",
        &format!(
            "<header><h1>Sessions of {}</h1>\n<nav><a href=\"/\">Terminal</a> \
             <form method=\"post\" action=\"/logout\"><button type=\"submit\">Sign out</button></form>\
             </nav></header>\n{table}<p><a href=\"/?new=1\">Start a new session</a></p>\n",
            escape(user)
        ),
    )
}

/// `GET /sessions`
pub async fn sessions_page(State(state): State<AppState>, signed_in: Option<SignedIn>) -> Response {
    let Some(signed_in) = signed_in else {
        return Redirect::to("/login").into_response();
    };
    match state.store.list_sessions(Some(&signed_in.user)).await {
        Ok(sessions) => {
            let own: Vec<SessionRecord> = sessions
                .into_iter()
                .filter(|s| s.owner == signed_in.user)
                .collect();
            html(StatusCode::OK, sessions_list(&signed_in.user, &own))
        }
        Err(store_error) => error(store_error.into()),
    }
}

/// `POST /sessions/{id}/end`: the form twin of `POST /v1/sessions/{id}/end`,
/// 303 back to `/sessions`.
pub async fn end_form(
    State(state): State<AppState>,
    signed_in: Option<SignedIn>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(why) = edge::check_origin(&state, &headers) {
        return html(StatusCode::FORBIDDEN, message("Refused", &why));
    }
    let Some(signed_in) = signed_in else {
        return Redirect::to("/login").into_response();
    };
    match sessions::end_own_session(&state, &signed_in.user, &id).await {
        Ok(_) => Redirect::to("/sessions").into_response(),
        Err(app_error) => error(app_error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape(r#"<img src=x onerror="a('&')">"#),
            "&lt;img src=x onerror=&quot;a(&#39;&amp;&#39;)&quot;&gt;"
        );
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
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
        let record = SessionRecord {
            id: "0123456789abcdef0123456789abcdef".to_owned(),
            owner: "ada".to_owned(),
            program: "/bin/sh".to_owned(),
            args: Vec::new(),
            cwd: "/".to_owned(),
            env: Vec::new(),
            cols: 80,
            rows: 24,
            title: Some("<script>alert(1)</script>".to_owned()),
            foreground: None,
            state: SessionState::Running,
            owner_host: "h<1>".to_owned(),
            epoch: 1,
            created_at: 0,
            last_active: 60_000,
        };
        let page = sessions_list("ada<", &[record]);
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
        let mut record = SessionRecord {
            id: "0123456789abcdef0123456789abcdef".to_owned(),
            owner: "ada".to_owned(),
            program: "/usr/bin/bash".to_owned(),
            args: Vec::new(),
            cwd: "/".to_owned(),
            env: Vec::new(),
            cols: 80,
            rows: 24,
            title: None,
            foreground: None,
            state: SessionState::Running,
            owner_host: "h1".to_owned(),
            epoch: 1,
            created_at: 0,
            last_active: 0,
        };
        assert!(sessions_list("ada", std::slice::from_ref(&record)).contains("<td>bash</td>"));
        record.title = Some("notes".to_owned());
        assert!(sessions_list("ada", std::slice::from_ref(&record)).contains("<td>notes</td>"));
        record.foreground = Some("vim notes.txt".to_owned());
        assert!(sessions_list("ada", &[record]).contains("<td>vim notes.txt</td>"));
    }
}
