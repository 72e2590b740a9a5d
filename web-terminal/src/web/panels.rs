//! The page around the canvas: token form, status line, overlay notices and
//! the bell.

use gloo_timers::callback::{Interval, Timeout};

use super::{App, NOTICE_MS, TOKEN_KEY, with_app};

/// How often the overlay's "(1.6 s)" moves on.
const STAGE_TICK_MS: u32 = 250;
use crate::connection::{ClosedBecause, Phase};

impl App {
    pub(super) fn on_login(&mut self, ev: web_sys::Event) {
        ev.prevent_default();
        let token = self.dom.token.value().trim().to_owned();
        if token.is_empty() {
            self.show_login(Some("enter the token the host printed"));
            return;
        }
        if let Some(storage) = &self.dom.storage {
            let _ = storage.set_item(TOKEN_KEY, &token);
        }
        self.dom.token.set_value("");
        self.hide_login();
        let t = self.now();
        self.conn.set_token(token, t);
        let _ = self.dom.keyboard.focus();
    }

    pub(super) fn show_login(&mut self, advice: Option<&str>) {
        if let Some(storage) = &self.dom.storage {
            let _ = storage.remove_item(TOKEN_KEY);
        }
        self.dom.login_error.set_text_content(advice);
        self.dom.login.set_hidden(false);
        let _ = self.dom.token.focus();
    }

    pub(super) fn hide_login(&mut self) {
        self.dom.login.set_hidden(true);
    }

    pub(super) fn notice(&mut self, text: String) {
        let until = self.now() as f64 + NOTICE_MS;
        self.notice = Some((text, until));
        let me = self.me.clone();
        Timeout::new(NOTICE_MS as u32 + 50, move || {
            if let Some(app) = me.upgrade() {
                with_app(&app, App::request_frame);
            }
        })
        .forget();
    }

    pub(super) fn flash_bell(&mut self) {
        let list = self.dom.canvas.class_list();
        let _ = list.remove_1("bell");
        // Reading a layout property restarts the CSS animation.
        let _ = self.dom.canvas.offset_width();
        let _ = list.add_1("bell");
    }

    pub(super) fn update_status(&mut self) {
        let conn = &self.conn;
        let mut text = match conn.phase() {
            Phase::Live => "live".to_owned(),
            Phase::Locating | Phase::Connecting | Phase::Handshaking => "connecting".to_owned(),
            Phase::Backoff => {
                let wait = conn.retry_at().unwrap_or(0).saturating_sub(self.now());
                format!("reconnecting in {:.1} s", wait as f64 / 1000.0)
            }
            Phase::Closed(_) => "closed".to_owned(),
        };
        if let Some(host) = conn.host() {
            text.push_str(" · ");
            text.push_str(host);
        }
        if let (Phase::Live, Some(rtt)) = (conn.phase(), conn.rtt_ms()) {
            text.push_str(&format!(" · {rtt} ms"));
        }
        if text != self.status_text {
            self.dom.status.set_text_content(Some(&text));
            self.dom
                .status
                .set_class_name(&format!("state-{}", conn.phase_name()));
            self.status_text = text;
        }
        let t = self.now();
        let now = t as f64;
        if self.notice.as_ref().is_some_and(|(_, until)| *until <= now) {
            self.notice = None;
        }
        // Failover in progress says what it is doing, above all else.
        let stage = conn.stage(t);
        let overlay = match (conn.phase(), &self.notice) {
            _ if !stage.is_empty() => stage,
            (Phase::Live, Some((n, _))) => n.clone(),
            (Phase::Live, None) => String::new(),
            (Phase::Closed(ClosedBecause::Unauthorized), _) => String::new(),
            (Phase::Closed(why), _) => {
                let advice = conn.error().unwrap_or("the connection was closed");
                match why {
                    ClosedBecause::SessionEnded => advice.to_owned(),
                    _ => format!("{advice} (press Enter to reconnect)"),
                }
            }
            (_, _) if self.screen.frames() == 0 && conn.error().is_none() => String::new(),
            _ => format!(
                "disconnected: {}",
                conn.error().unwrap_or("connecting to the host")
            ),
        };
        if overlay != self.overlay_text {
            self.dom.overlay.set_text_content(Some(&overlay));
            self.dom.overlay.set_hidden(overlay.is_empty());
            self.overlay_text = overlay;
        }
        self.tick_stage();
    }

    /// Keeps the overlay's elapsed time moving while failover is under way.
    fn tick_stage(&mut self) {
        let running = !self.conn.stage(self.now()).is_empty();
        if !running {
            self.stage_tick = None;
        } else if self.stage_tick.is_none() {
            let me = self.me.clone();
            self.stage_tick = Some(Interval::new(STAGE_TICK_MS, move || {
                if let Some(app) = me.upgrade() {
                    with_app(&app, App::update_status);
                }
            }));
        }
    }
}
