//! The page around the canvas: status bar, overlay notices, the
//! hot-desking panel and the bell.

use directory_api::Bell;
use gloo_timers::callback::{Interval, Timeout};
use wasm_bindgen::JsCast;

use super::{App, NOTICE_MS, with_app};
use crate::connection::{ClosedBecause, Phase};
use crate::keys;

/// How often the overlay's "(1.6 s)" moves on.
const STAGE_TICK_MS: u32 = 250;

impl App {
    /// The "Take it back" button: attach the replaced session here again.
    pub(super) fn take_back(&mut self) {
        let t = self.now();
        self.conn.take_back(t);
        let _ = self.dom.keyboard.focus();
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

    /// BEL, as the settings say: nothing, a flash, or a flash and, while
    /// the tab is hidden, a browser notification (if the user allowed
    /// them), so a long job that rings at its end is noticed.
    pub(super) fn ring_bell(&mut self) {
        let bell = self.settings.settings().bell;
        if bell == Bell::Off {
            return;
        }
        self.flash_bell();
        if bell == Bell::Notify && self.dom.document.hidden() {
            let title = self.dom.document.title();
            notify(&title, "the terminal rang its bell");
        }
    }

    /// A program's OSC 9 / 777 notification ("build finished"): as the
    /// bell setting says, nothing, a notice over the screen, or a browser
    /// notification while the tab is hidden (a notice while it is seen).
    pub(super) fn program_notified(&mut self, notification: protocol::Notification) {
        let bell = self.settings.settings().bell;
        if bell == Bell::Off {
            return;
        }
        let title = if notification.title.is_empty() {
            self.dom.document.title()
        } else {
            notification.title
        };
        if bell == Bell::Notify && self.dom.document.hidden() {
            notify(&title, &notification.body);
        } else {
            self.notice(format!("{title}: {}", notification.body));
        }
    }

    fn flash_bell(&mut self) {
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
                let secs = crate::numbers::fixed(wait as f64 / 1000.0, 1);
                format!("reconnecting in {secs} s")
            }
            Phase::Closed(ClosedBecause::Replaced) => "opened on another terminal".to_owned(),
            Phase::Closed(ClosedBecause::SignedOut) => "signed out".to_owned(),
            Phase::Closed(_) => "closed".to_owned(),
        };
        if let Some(host) = conn.host() {
            text.push_str(" · ");
            text.push_str(host);
        }
        if let (Phase::Live, Some(rtt)) = (conn.phase(), conn.rtt_ms()) {
            text.push_str(&format!(" · {rtt} ms"));
        }
        // Whose terminal it is: a viewer is told it watches, an owner who
        // watches it.
        if let protocol::Role::Viewer { owner, may_type } = conn.role() {
            let mode = if *may_type { "may type" } else { "read-only" };
            text.push_str(&format!(" · watching {owner}'s terminal, {mode}"));
        } else if !conn.watchers().is_empty() {
            text.push_str(" · watched by ");
            text.push_str(conn.watchers());
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
        if conn.phase() != Phase::Live {
            // Asked while live: the answer must be given in view of it.
            self.paste_question = None;
        }
        let paste = match (&self.paste_question, conn.input_waiting()) {
            (Some((question, _)), _) => Some(question.clone()),
            (None, 0) => None,
            (None, waiting) => Some(keys::paste_progress(waiting)),
        };
        let overlay = match (conn.phase(), &self.notice) {
            _ if !stage.is_empty() => stage,
            (Phase::Live, _) if paste.is_some() => paste.unwrap_or_default(),
            (Phase::Live, Some((n, _))) => n.clone(),
            (Phase::Live, None) => String::new(),
            // The panel says it, with its button.
            (Phase::Closed(ClosedBecause::Replaced), _) => String::new(),
            (Phase::Closed(why), _) => {
                let advice = conn.error().unwrap_or("the connection was closed");
                match why {
                    ClosedBecause::SessionEnded | ClosedBecause::SignedOut => advice.to_owned(),
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
        self.update_replaced();
        let user = self.conn.user().unwrap_or("");
        if self.dom.user.text_content().as_deref() != Some(user) {
            self.dom.user.set_text_content(Some(user));
        }
        self.tick_stage();
    }

    /// Shows the hot-desking panel while the session is replaced, with the
    /// button focused so that Enter there takes it back.
    fn update_replaced(&mut self) {
        let replaced = self.conn.phase() == Phase::Closed(ClosedBecause::Replaced);
        let shown = !self.dom.replaced.hidden();
        if replaced == shown {
            return;
        }
        self.dom.replaced.set_hidden(!replaced);
        if replaced {
            self.dom.replaced_text.set_text_content(self.conn.error());
            let _ = self.dom.take_back.focus();
        }
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

/// Shows a browser notification, if the user allowed them; one at a time
/// (a new one replaces the last, by its tag).
fn notify(title: &str, body: &str) {
    let global = js_sys::global();
    let Ok(notification) = js_sys::Reflect::get(&global, &"Notification".into()) else {
        return;
    };
    let granted = js_sys::Reflect::get(&notification, &"permission".into())
        .ok()
        .and_then(|p| p.as_string());
    let Ok(constructor) = notification.dyn_into::<js_sys::Function>() else {
        return;
    };
    if granted.as_deref() != Some("granted") {
        return;
    }
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"body".into(), &body.into());
    let _ = js_sys::Reflect::set(&options, &"tag".into(), &"thinline-bell".into());
    let args = js_sys::Array::of2(&title.into(), &options);
    let _ = js_sys::Reflect::construct(&constructor, &args);
}
