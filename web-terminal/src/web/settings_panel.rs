//! Changing settings (the panel's `set_setting`, the zoom keys) and
//! applying them to the page: colours, font, cursor, bell. What the
//! settings are and how saves are ordered is `crate::settings`; the panel
//! itself is `static/settings.js`, loaded on its first opening, which
//! hands each change to `window.thinline.set_setting` and reads the
//! settings in use back with `window.thinline.settings()`.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::HtmlElement;

use gloo_timers::callback::Timeout;

use super::{App, with_app};
use crate::action::{HttpOutcome, HttpRequest};
use crate::render::Theme;
use crate::settings::PageSettings;
use crate::settings::{STORAGE_KEY, Zoom};

/// Fetch ids of the settings' requests, far above the connection's, which
/// count up from zero, and below 2^53: ids travel through JavaScript
/// numbers.
pub(super) const GET_ID: u64 = 1 << 50;
pub(super) const PUT_ID: u64 = GET_ID + 1;

impl App {
    /// A change from the panel: `value` is text, or a boolean for a
    /// yes-or-no field. Whether the settings took it.
    pub(super) fn set_setting(&mut self, name: &str, value: &JsValue) -> bool {
        let mut taken = false;
        let put = self.settings.change(|s| {
            taken = match value.as_bool() {
                Some(on) => s.set_flag(name, on),
                None => s.set(name, &value.as_string().unwrap_or_default()),
            };
            taken
        });
        if taken {
            self.settings_changed(put);
        }
        taken
    }

    /// Says how saving went in the panel, if it is open.
    fn settings_status(&self, text: &str) {
        if let Some(status) = self.dom.document.get_element_by_id("settings-status") {
            status.set_text_content(Some(text));
        }
    }

    /// Tells the panel, if it was ever loaded, that the settings changed.
    fn settings_shown(&self) {
        if let Ok(event) = web_sys::Event::new("thinline-settings") {
            let _ = self.dom.window.dispatch_event(&event);
        }
    }

    /// Ctrl+= / Ctrl+- / Ctrl+0.
    pub(super) fn zoom(&mut self, zoom: Zoom) {
        let put = self.settings.change(|s| s.zoom(zoom));
        if put.is_some() || self.settings.settings().font_size != self.painter.font_px {
            self.settings_changed(put);
        }
        let size = self.settings.settings().font_size;
        self.notice(format!("font size {size} px (Ctrl+0 resets)"));
    }

    /// After a change made on this page: apply, keep a copy here, save.
    fn settings_changed(&mut self, put: Option<String>) {
        self.apply_settings();
        self.cache_settings();
        self.settings_shown();
        if let Some(body) = put {
            self.settings_status("saving…");
            self.settings_request(PUT_ID, "PUT", Some(body));
        }
    }

    fn cache_settings(&self) {
        if let Some(storage) = &self.dom.storage {
            let _ = storage.set_item(STORAGE_KEY, &self.settings.settings().to_json());
        }
    }

    /// Asks the page's own directory for the account's settings.
    pub(super) fn fetch_settings(&mut self) {
        self.settings_request(GET_ID, "GET", None);
    }

    fn settings_request(&mut self, id: u64, method: &'static str, body: Option<String>) {
        self.start_fetch(HttpRequest {
            id,
            method,
            url: "/v1/settings".to_owned(),
            body,
            same_origin: true,
        });
    }

    /// The answer to one of the settings' requests.
    pub(super) fn on_settings_answer(&mut self, id: u64, outcome: HttpOutcome) {
        if id == GET_ID {
            if self.settings.fetched(&outcome) {
                self.apply_settings();
                self.cache_settings();
                self.settings_shown();
            }
            return;
        }
        let answer = self.settings.saved(&outcome);
        self.settings_status(&answer.status);
        if let Some(body) = answer.send {
            self.settings_request(PUT_ID, "PUT", Some(body));
        }
        if let Some(wait) = answer.retry_in_ms {
            let me = self.me.clone();
            self.settings_retry = Some(Timeout::new(wait, move || {
                if let Some(app) = me.upgrade() {
                    with_app(&app, |a| {
                        if let Some(body) = a.settings.retry() {
                            a.settings_request(PUT_ID, "PUT", Some(body));
                        }
                    });
                }
            }));
        }
    }

    /// Makes the page look and behave as the settings say.
    pub(super) fn apply_settings(&mut self) {
        let settings = self.settings.settings();
        let theme = Theme::named(settings.theme);
        if let Some(root) = self
            .dom
            .document
            .document_element()
            .and_then(|e| e.dyn_into::<HtmlElement>().ok())
        {
            let style = root.style();
            let _ = style.set_property("--bg", &theme.background.hex());
            let _ = style.set_property("--fg", &theme.foreground.hex());
        }
        let families = settings.font_families();
        let font_changed =
            self.painter.font_px != settings.font_size || self.painter.font_families != families;
        self.painter.font_px = settings.font_size;
        self.painter.font_families = families;
        self.painter.theme = theme;
        self.predictor.set_mode(settings.prediction);
        if font_changed {
            // New metrics, a new grid size for the host, and glyphs drawn
            // afresh (layout_canvas resets the atlas for a new face).
            self.layout_canvas();
        }
        self.full_clear = true;
        self.screen.mark_all_dirty();
        self.request_frame();
    }
}
