//! The bar of extra keys (Esc, Tab, Ctrl, Alt, arrows, | ~ / -) for touch
//! screens, and scrolling the history with a finger. Which key a button
//! sends and how Ctrl and Alt are held is `crate::keybar`.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Document, Element, HtmlElement, MouseEvent, PointerEvent, TouchEvent};

use super::{App, Shared, element, listen};
use crate::keybar::{BarKey, Held, bar_key};
use crate::keys::{self, KeyAction};

pub(super) struct KeybarDom {
    bar: HtmlElement,
    toggle: HtmlElement,
}

impl KeybarDom {
    pub(super) fn find(document: &Document) -> Result<KeybarDom, JsValue> {
        Ok(KeybarDom {
            bar: element(document, "keybar")?,
            toggle: element(document, "keys-button")?,
        })
    }
}

pub(super) fn install(app: &Shared) -> Result<(), JsValue> {
    let (bar, toggle, canvas, window) = {
        let a = app.borrow();
        (
            a.dom.keybar.bar.clone(),
            a.dom.keybar.toggle.clone(),
            a.dom.canvas.clone(),
            a.dom.window.clone(),
        )
    };
    // On a touch screen the bar shows itself; the button shows or hides it
    // anywhere (a tablet's keyboard may lack Esc too).
    let coarse = window
        .match_media("(pointer: coarse)")
        .ok()
        .flatten()
        .is_some_and(|m| m.matches());
    bar.set_hidden(!coarse);
    listen(&toggle, "click", app, |a, _: MouseEvent| {
        let bar = &a.dom.keybar.bar;
        bar.set_hidden(!bar.hidden());
        a.schedule_resize();
        let _ = a.dom.keyboard.focus();
    })?;
    // pointerdown, not click: the textarea keeps the focus, so an
    // on-screen keyboard stays up while keys are tapped.
    listen(&bar, "pointerdown", app, App::on_keybar)?;
    listen(&canvas, "touchstart", app, |a, ev: TouchEvent| {
        if a.dom.keybar.bar.hidden() {
            a.dom.keybar.bar.set_hidden(false);
            a.schedule_resize();
        }
        a.touch_y = touch_y(&ev);
    })?;
    listen(&canvas, "touchmove", app, App::on_touch_move)?;
    Ok(())
}

fn touch_y(ev: &TouchEvent) -> Option<f64> {
    let touches = ev.touches();
    (touches.length() == 1)
        .then(|| touches.get(0))
        .flatten()
        .map(|t| f64::from(t.client_y()))
}

impl App {
    fn on_keybar(&mut self, ev: PointerEvent) {
        let Some(name) = ev
            .target()
            .and_then(|t| t.dyn_into::<Element>().ok())
            .and_then(|e| e.closest("[data-key]").ok().flatten())
            .and_then(|e| e.get_attribute("data-key"))
        else {
            return;
        };
        ev.prevent_default();
        match bar_key(&name) {
            Some(BarKey::Hold(modifier)) => self.held.toggle(modifier),
            Some(BarKey::Key(key)) => {
                let press = self.held.press(key);
                if let KeyAction::Send(bytes) = keys::encode_key(&press, self.screen.modes()) {
                    self.send_input(&bytes);
                }
            }
            None => {}
        }
        self.show_held();
    }

    /// Text typed while the bar holds Ctrl or Alt: the key with them.
    /// Returns whether it was taken.
    pub(super) fn typed_with_held(&mut self, text: &str) -> bool {
        let Some(press) = self.held.typed(text) else {
            self.show_held();
            return false;
        };
        if let KeyAction::Send(bytes) = keys::encode_key(&press, self.screen.modes()) {
            self.send_input(&bytes);
        }
        self.show_held();
        true
    }

    /// The Ctrl and Alt buttons show whether they are held.
    fn show_held(&self) {
        let Held { ctrl, alt } = self.held;
        for (name, on) in [("ctrl", ctrl), ("alt", alt)] {
            if let Ok(Some(button)) = self
                .dom
                .keybar
                .bar
                .query_selector(&format!("[data-key={name}]"))
            {
                let _ = button.set_attribute("aria-pressed", if on { "true" } else { "false" });
            }
        }
    }

    /// A finger dragged over the screen scrolls, as the wheel does.
    fn on_touch_move(&mut self, ev: TouchEvent) {
        let (Some(last), Some(y)) = (self.touch_y, touch_y(&ev)) else {
            return;
        };
        ev.prevent_default();
        self.touch_y = Some(y);
        let m = self.painter.metrics();
        let line_css = f64::from(m.height) / m.dpr;
        // A finger moving up shows newer lines, as a wheel turned down.
        self.scroll_lines((last - y) / line_css, (0, 0), false);
    }
}
