//! The bar of extra keys (Esc, Tab, Ctrl, Alt, arrows, | ~ / -) for touch
//! screens, and the finger on the screen: dragged, it scrolls the history;
//! held still for a moment, it selects a word, dragging on extends the
//! selection, and lifting copies it. Which key a button sends and how
//! Ctrl and Alt are held is `crate::keybar`.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Document, Element, HtmlElement, MouseEvent, PointerEvent, TouchEvent};

use super::{App, Shared, element, listen};
use crate::keybar::{BarKey, Held, bar_key};
use crate::keys::{self, KeyAction};
use crate::selection::{Granularity, Point, Selection};

/// How long a finger rests before it selects instead of scrolling.
const LONG_PRESS_MS: u64 = 450;
/// How far (CSS pixels) a finger may wander and still be resting.
const REST_PX: f64 = 8.0;

/// The finger on the screen. A long press is judged when the finger
/// first moves or lifts (no timer: one closure less in the wasm).
#[derive(Default)]
pub(super) struct Touch {
    /// Where and when it went down, and where it was last.
    start: Option<(f64, f64)>,
    since: u64,
    last_y: f64,
    /// It moved before resting long enough: a scroll.
    scrolling: bool,
    /// A long press started a selection that the finger now extends.
    pub(super) selecting: bool,
}

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
    listen(&canvas, "touchstart", app, App::on_touch_start)?;
    listen(&canvas, "touchmove", app, App::on_touch_move)?;
    listen(&canvas, "touchend", app, App::on_touch_end)?;
    listen(&canvas, "touchcancel", app, App::on_touch_end)?;
    Ok(())
}

/// The one finger of a touch event (none for two or more: a pinch).
fn finger(ev: &TouchEvent) -> Option<(f64, f64)> {
    let touches = ev.touches();
    (touches.length() == 1)
        .then(|| touches.get(0))
        .flatten()
        .map(|t| (f64::from(t.client_x()), f64::from(t.client_y())))
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

    fn on_touch_start(&mut self, ev: TouchEvent) {
        if self.dom.keybar.bar.hidden() {
            self.dom.keybar.bar.set_hidden(false);
            self.schedule_resize();
        }
        let Some(at) = finger(&ev) else {
            self.touch = Touch::default();
            return;
        };
        self.touch = Touch {
            start: Some(at),
            since: self.now(),
            last_y: at.1,
            ..Touch::default()
        };
    }

    /// Whether the finger has rested long enough to select.
    fn rested(&self) -> bool {
        !self.touch.scrolling && self.now().saturating_sub(self.touch.since) >= LONG_PRESS_MS
    }

    /// A finger held still: select the word under it.
    fn long_press(&mut self, (x, y): (f64, f64)) {
        let cell = self.cell_at_client(x, y);
        let point = Point {
            line: self.screen.line_number_of_view_row(cell.0),
            col: cell.1,
        };
        self.selection = Some(Selection::new(point, Granularity::Word));
        self.touch.selecting = true;
        self.screen.mark_all_dirty();
    }

    /// A finger dragged over the screen scrolls, as the wheel does, or
    /// extends the selection a long press began.
    fn on_touch_move(&mut self, ev: TouchEvent) {
        let (Some(start), Some((x, y))) = (self.touch.start, finger(&ev)) else {
            return;
        };
        ev.prevent_default();
        if !self.touch.selecting && self.rested() {
            self.long_press(start);
        }
        if self.touch.selecting {
            let cell = self.cell_at_client(x, y);
            let point = Point {
                line: self.screen.line_number_of_view_row(cell.0),
                col: cell.1,
            };
            if let Some(selection) = &mut self.selection {
                selection.extend(point);
                self.screen.mark_all_dirty();
            }
            return;
        }
        if (x - start.0).hypot(y - start.1) > REST_PX {
            self.touch.scrolling = true;
        }
        let last = std::mem::replace(&mut self.touch.last_y, y);
        let m = self.painter.metrics();
        let line_css = f64::from(m.height) / m.dpr;
        // A finger moving up shows newer lines, as a wheel turned down.
        self.scroll_lines((last - y) / line_css, (0, 0), false);
    }

    /// The finger lifted: a selection it made is copied.
    fn on_touch_end(&mut self, ev: TouchEvent) {
        if !self.touch.selecting
            && self.rested()
            && let Some(start) = self.touch.start
        {
            self.long_press(start);
        }
        let selected = std::mem::take(&mut self.touch).selecting;
        if selected {
            // No mouse events made up from the touch: they would start a
            // selection of their own.
            ev.prevent_default();
        }
        if selected && self.selection.is_some_and(|s| !s.is_empty()) {
            self.copy_selection();
            self.notice("copied the selection".to_owned());
        }
    }
}
