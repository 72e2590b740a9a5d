//! The settings panel, the zoom keys, and applying settings to the page:
//! colours, font, cursor, bell. What the settings are and how saves are
//! ordered is `crate::settings`; this only reads and writes the controls
//! (each names its field in `data-setting`) and carries the requests.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Document, Element, HtmlElement, KeyboardEvent, MouseEvent};

use gloo_timers::callback::Timeout;

use super::{App, Shared, element, listen, with_app};
use crate::action::{HttpOutcome, HttpRequest};
use crate::render::Theme;
use crate::settings::PageSettings;
use crate::settings::{STORAGE_KEY, Zoom};

/// Fetch ids of the settings' requests, far above the connection's, which
/// count up from zero, and below 2^53: ids travel through JavaScript
/// numbers.
pub(super) const GET_ID: u64 = 1 << 50;
pub(super) const PUT_ID: u64 = GET_ID + 1;

pub(super) struct SettingsDom {
    panel: HtmlElement,
    button: HtmlElement,
    close: HtmlElement,
    status: HtmlElement,
}

impl SettingsDom {
    pub(super) fn find(document: &Document) -> Result<SettingsDom, JsValue> {
        Ok(SettingsDom {
            panel: element(document, "settings")?,
            button: element(document, "settings-button")?,
            close: element(document, "settings-close")?,
            status: element(document, "settings-status")?,
        })
    }
}

pub(super) fn install(app: &Shared) -> Result<(), JsValue> {
    let (panel, button, close) = {
        let a = app.borrow();
        let s = &a.dom.settings;
        (s.panel.clone(), s.button.clone(), s.close.clone())
    };
    listen(&button, "click", app, |a, _: MouseEvent| {
        if a.dom.settings.panel.hidden() {
            a.open_settings();
        } else {
            a.close_settings();
        }
    })?;
    listen(&close, "click", app, |a, _: MouseEvent| a.close_settings())?;
    listen(&panel, "change", app, App::on_setting_changed)?;
    listen(&panel, "submit", app, |_, ev: web_sys::Event| {
        ev.prevent_default()
    })?;
    listen(&panel, "keydown", app, |a, ev: KeyboardEvent| {
        if ev.key() == "Escape" {
            ev.prevent_default();
            a.close_settings();
        }
    })?;
    Ok(())
}

fn js_get(target: &JsValue, name: &str) -> JsValue {
    js_sys::Reflect::get(target, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

fn js_set(target: &JsValue, name: &str, value: &JsValue) {
    let _ = js_sys::Reflect::set(target, &JsValue::from_str(name), value);
}

impl App {
    fn open_settings(&mut self) {
        self.fill_settings_panel();
        self.dom.settings.status.set_text_content(None);
        self.dom.settings.panel.set_hidden(false);
        if let Ok(Some(first)) = self.dom.settings.panel.query_selector("[data-setting]")
            && let Ok(first) = first.dyn_into::<HtmlElement>()
        {
            let _ = first.focus();
        }
    }

    fn close_settings(&mut self) {
        self.dom.settings.panel.set_hidden(true);
        let _ = self.dom.keyboard.focus();
    }

    /// Shows the settings in use in the panel's controls.
    fn fill_settings_panel(&self) {
        let Ok(controls) = self.dom.settings.panel.query_selector_all("[data-setting]") else {
            return;
        };
        for i in 0..controls.length() {
            let Some(control) = controls.get(i) else {
                continue;
            };
            let Some(name) = control
                .dyn_ref::<Element>()
                .and_then(|e| e.get_attribute("data-setting"))
            else {
                continue;
            };
            match self.settings.settings().get(&name) {
                Some(Ok(text)) => js_set(&control, "value", &JsValue::from_str(&text)),
                Some(Err(on)) => js_set(&control, "checked", &JsValue::from_bool(on)),
                None => {}
            }
        }
    }

    fn on_setting_changed(&mut self, ev: web_sys::Event) {
        let Some(control) = ev.target() else { return };
        let Some(name) = control
            .dyn_ref::<Element>()
            .and_then(|e| e.get_attribute("data-setting"))
        else {
            return;
        };
        let checkbox = js_get(&control, "type").as_string().as_deref() == Some("checkbox");
        let value = js_get(&control, "value").as_string().unwrap_or_default();
        let on = js_get(&control, "checked").as_bool().unwrap_or(false);
        let mut taken = false;
        let put = self.settings.change(|s| {
            taken = if checkbox {
                s.set_flag(&name, on)
            } else {
                s.set(&name, &value)
            };
            taken
        });
        if !taken {
            let why = if name == "font_size" {
                "a font size from 8 to 32".to_owned()
            } else {
                "a font name: letters, digits, spaces, '-', '_' and '.'".to_owned()
            };
            self.dom
                .settings
                .status
                .set_text_content(Some(&format!("not changed: choose {why}")));
            self.fill_settings_panel();
            return;
        }
        if name == "bell" && value == "notify" {
            ask_to_notify();
        }
        self.settings_changed(put);
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
        self.fill_settings_panel();
        if let Some(body) = put {
            self.dom.settings.status.set_text_content(Some("saving…"));
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
                self.fill_settings_panel();
            }
            return;
        }
        let answer = self.settings.saved(&outcome);
        self.dom
            .settings
            .status
            .set_text_content(Some(&answer.status));
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
        self.show_prediction();
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

/// Asks the browser for leave to show notifications, once the user chose
/// them (the request needs the user's gesture, which the change is).
fn ask_to_notify() {
    let notification = js_get(&js_sys::global(), "Notification");
    if notification.is_undefined() {
        return;
    }
    if let Ok(request) = js_get(&notification, "requestPermission").dyn_into::<js_sys::Function>() {
        let _ = request.call0(&notification);
    }
}
