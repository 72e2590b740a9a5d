//! Keyboard, IME, clipboard, mouse and wheel events, turned into input for
//! the program (through `keys`) or into selection and scrolling.

use wasm_bindgen::prelude::*;
use web_sys::{ClipboardEvent, KeyboardEvent, MouseEvent, WheelEvent};

use super::App;
use crate::connection::{Phase, TYPING_REFUSED};
use crate::keys::{self, KeyAction, KeyPress, MouseButton, MouseKind, MouseReport, WheelAction};
use crate::links;
use crate::selection::{Granularity, Point, Selection};

impl App {
    pub(super) fn send_input(&mut self, bytes: &[u8]) {
        if self.screen.scroll_to_bottom() {
            self.request_frame();
        }
        self.blink_on = true;
        self.screen.mark_cursor_dirty();
        if !self.conn.send_input(bytes) {
            self.predictor.reset();
            if !self.conn.role().may_type() {
                self.notice("you are watching: your keys do not reach this terminal".to_owned());
            } else if !matches!(self.conn.phase(), Phase::Closed(_)) {
                self.notice(TYPING_REFUSED.to_owned());
            }
        } else {
            let t = self.now();
            let seq = self.conn.input_sent_as();
            // Shown by `after_event`, which every input event ends with.
            self.predictor.typed(bytes, seq, &self.screen, t);
        }
    }

    pub(super) fn on_keydown(&mut self, ev: KeyboardEvent) {
        let key = ev.key();
        if ev.is_composing() || matches!(key.as_str(), "Process" | "Dead" | "Unidentified") {
            return;
        }
        if self.answer_paste_question(&key) {
            ev.prevent_default();
            return;
        }
        if key == "Escape" && self.conn.input_waiting() > 0 {
            ev.prevent_default();
            let dropped = self.conn.discard_waiting_input();
            self.notice(format!(
                "paste stopped: the last {} were not sent",
                keys::human_bytes(dropped)
            ));
            self.update_status();
            return;
        }
        if key == "Enter" {
            let t = self.now();
            if self.conn.enter_on_notice(t) {
                ev.prevent_default();
                return;
            }
        }
        if ev.get_modifier_state("AltGraph") {
            return; // AltGr composes text: the input event brings it
        }
        let code = ev.code();
        let press = KeyPress {
            key: &key,
            code: &code,
            ctrl: ev.ctrl_key(),
            alt: ev.alt_key(),
            shift: ev.shift_key(),
            meta: ev.meta_key(),
        };
        if press.is_text() {
            return; // delivered by the `input` event, so IME and dead keys work
        }
        match keys::encode_key(&press, self.screen.modes()) {
            KeyAction::Send(bytes) => {
                ev.prevent_default();
                self.send_input(&bytes);
            }
            KeyAction::Copy => {
                ev.prevent_default();
                self.copy_selection();
            }
            KeyAction::Paste => {} // the browser fires `paste`
            KeyAction::Search => {
                ev.prevent_default();
                self.open_search();
            }
            KeyAction::Zoom(zoom) => {
                ev.prevent_default();
                self.zoom(zoom);
            }
            KeyAction::ScrollPages(pages) => {
                ev.prevent_default();
                let page = self.screen.size().rows.saturating_sub(1).max(1) as isize;
                self.screen.scroll_view(isize::from(pages) * page);
            }
            KeyAction::Ignore => {}
        }
    }

    /// Text the textarea received from typing or an IME.
    pub(super) fn take_typed_text(&mut self) {
        let text = self.dom.keyboard.value();
        self.dom.keyboard.set_value("");
        if !text.is_empty() && !self.typed_with_held(&text) {
            self.send_input(&keys::encode_text(&text));
        }
    }

    pub(super) fn on_paste(&mut self, ev: ClipboardEvent) {
        ev.prevent_default();
        let text = ev
            .clipboard_data()
            .and_then(|d| d.get_data("text/plain").ok())
            .unwrap_or_default();
        self.paste_text(&text);
    }

    /// Right-click: the browser's menu, unless the program takes the mouse
    /// (then the click was reported) or the user chose right-click paste,
    /// which reads the clipboard (the browser asks once for leave).
    pub(super) fn on_context_menu(&mut self, ev: MouseEvent) {
        if self.touch.selecting {
            // A long press selects; it neither pastes nor opens a menu.
            ev.prevent_default();
            return;
        }
        if ev.shift_key() {
            return;
        }
        if self.screen.modes().mouse_reporting() {
            ev.prevent_default();
            return;
        }
        if !self.settings.settings().right_click_paste {
            return;
        }
        ev.prevent_default();
        let me = self.me.clone();
        let pasted = Closure::once_into_js(move |text: JsValue| {
            let Some(app) = me.upgrade() else { return };
            let text = text.as_string().unwrap_or_default();
            super::with_app(&app, |a| {
                a.paste_text(&text);
                a.after_event();
            });
        });
        let me = self.me.clone();
        let refused = Closure::once_into_js(move |_: JsValue| {
            let Some(app) = me.upgrade() else { return };
            super::with_app(&app, |a| {
                a.notice(
                    "the browser would not read the clipboard: allow it for this site, or paste with Ctrl+Shift+V"
                        .to_owned(),
                );
                a.after_event();
            });
        });
        let read = self.dom.window.navigator().clipboard().read_text();
        super::fetch::then_call(&read, pasted, refused);
        let _ = self.dom.keyboard.focus();
    }

    /// Text from the clipboard, as a paste: asked about first when it
    /// would run as typed.
    pub(super) fn paste_text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let modes = self.screen.modes();
        let bytes = keys::encode_paste(text, modes);
        match keys::paste_needs_consent(text, modes) {
            Some(lines) => {
                let question = keys::paste_question(lines, bytes.len());
                self.paste_question = Some((question, bytes));
                self.update_status();
            }
            None => self.send_input(&bytes),
        }
    }

    /// While a paste waits for consent, a key answers it: Enter pastes,
    /// any other key but a lone modifier cancels (and is not typed).
    /// Returns whether the key was taken.
    fn answer_paste_question(&mut self, key: &str) -> bool {
        if self.paste_question.is_none() || matches!(key, "Shift" | "Control" | "Alt" | "Meta") {
            return false;
        }
        if let Some((_, bytes)) = self.paste_question.take() {
            if key == "Enter" {
                self.send_input(&bytes);
            } else {
                self.notice("paste cancelled: nothing was sent".to_owned());
            }
        }
        self.update_status();
        true
    }

    pub(super) fn selected_text(&self) -> Option<String> {
        let text = self.selection.as_ref()?.text(&self.screen);
        (!text.is_empty()).then_some(text)
    }

    pub(super) fn on_copy(&mut self, ev: ClipboardEvent) {
        if let (Some(text), Some(data)) = (self.selected_text(), ev.clipboard_data()) {
            let _ = data.set_data("text/plain", &text);
            ev.prevent_default();
        }
    }

    /// A program's OSC 52 write: onto the clipboard if the user allowed
    /// programs to, otherwise a notice saying where to allow it.
    pub(super) fn program_copied(&mut self, text: &str) {
        if !self.settings.settings().clipboard_write {
            self.notice(
                "a program asked to set your clipboard; allow it in Settings (OSC 52)".to_owned(),
            );
            return;
        }
        // A program's yank while the user is elsewhere is dropped, as the
        // browser wants.
        self.write_clipboard(text);
    }

    pub(super) fn copy_selection(&mut self) {
        if let Some(text) = self.selected_text() {
            self.write_clipboard(&text);
        }
    }

    /// Puts `text` on the clipboard. The promise rejects outside secure
    /// contexts and while the page is not focused; nothing to do then.
    fn write_clipboard(&self, text: &str) {
        let _ = self.dom.window.navigator().clipboard().write_text(text);
    }

    // ---- mouse ----

    pub(super) fn cell_at(&self, ev: &MouseEvent) -> (u16, u16) {
        self.cell_at_client(f64::from(ev.client_x()), f64::from(ev.client_y()))
    }

    /// The view cell under viewport point `(x, y)`.
    pub(super) fn cell_at_client(&self, x: f64, y: f64) -> (u16, u16) {
        let rect = self.dom.canvas.get_bounding_client_rect();
        self.painter
            .metrics()
            .cell_at(x - rect.left(), y - rect.top(), self.screen.size())
    }

    pub(super) fn report(
        &mut self,
        kind: MouseKind,
        button: MouseButton,
        cell: (u16, u16),
        ev: &MouseEvent,
    ) {
        let report = MouseReport {
            kind,
            button,
            row: cell.0,
            col: cell.1,
            shift: ev.shift_key(),
            alt: ev.alt_key(),
            ctrl: ev.ctrl_key(),
        };
        if let Some(bytes) = keys::encode_mouse(&report, self.screen.modes()) {
            // Not `send_input`: a report must not move the scrollback view.
            self.conn.send_input(&bytes);
        }
    }

    pub(super) fn on_mouse_down(&mut self, ev: MouseEvent) {
        ev.prevent_default();
        // Keep the keyboard focus on the textarea; focus handlers do not
        // borrow the app, so this is safe inside a handler.
        let _ = self.dom.keyboard.focus();
        let cell = self.cell_at(&ev);
        if ev.button() == 0
            && (ev.ctrl_key() || ev.meta_key())
            && let Some(url) = self.link_at(cell)
        {
            // A new tab with no handle on this page, and no referrer.
            let _ = self.dom.window.open_with_url_and_target_and_features(
                &url,
                "_blank",
                "noopener,noreferrer",
            );
            return;
        }
        if self.screen.modes().mouse_reporting() && !ev.shift_key() {
            let button = match ev.button() {
                0 => MouseButton::Left,
                1 => MouseButton::Middle,
                2 => MouseButton::Right,
                _ => return,
            };
            self.reporting = Some((button, cell));
            self.report(MouseKind::Press, button, cell, &ev);
            return;
        }
        if ev.button() != 0 {
            return;
        }
        let point = Point {
            line: self.screen.line_number_of_view_row(cell.0),
            col: cell.1,
        };
        let granularity = if ev.detail() >= 2 {
            Granularity::Word
        } else {
            Granularity::Cell
        };
        self.selection = Some(Selection::new(point, granularity));
        self.selecting = true;
        self.screen.mark_all_dirty();
    }

    /// The link shown at view cell `(row, col)`, if any.
    fn link_at(&self, (row, col): (u16, u16)) -> Option<String> {
        links::link_at(&*self.screen.visible_row(row)?, col)
    }

    pub(super) fn on_mouse_move(&mut self, ev: MouseEvent) {
        let cell = self.cell_at(&ev);
        // Ctrl (Cmd) over a link: the pointer says it can be opened.
        let over_link = (ev.ctrl_key() || ev.meta_key()) && self.link_at(cell).is_some();
        if over_link != self.pointer_on_link {
            self.pointer_on_link = over_link;
            let cursor = if over_link { "pointer" } else { "" };
            let _ = self.dom.canvas.style().set_property("cursor", cursor);
        }
        if self.selecting {
            let point = Point {
                line: self.screen.line_number_of_view_row(cell.0),
                col: cell.1,
            };
            if let Some(sel) = &mut self.selection {
                sel.extend(point);
                self.screen.mark_all_dirty();
            }
            return;
        }
        let modes = self.screen.modes();
        if !modes.mouse_reporting() || !self.is_over_canvas(&ev) {
            return;
        }
        match self.reporting {
            Some((button, last)) if last != cell => {
                self.reporting = Some((button, cell));
                self.report(MouseKind::Motion, button, cell, &ev);
            }
            None if modes.has(protocol::Modes::MOUSE_MOTION) => {
                self.report(MouseKind::Motion, MouseButton::None, cell, &ev);
            }
            _ => {}
        }
    }

    pub(super) fn is_over_canvas(&self, ev: &MouseEvent) -> bool {
        let rect = self.dom.canvas.get_bounding_client_rect();
        let (x, y) = (f64::from(ev.client_x()), f64::from(ev.client_y()));
        x >= rect.left() && x < rect.right() && y >= rect.top() && y < rect.bottom()
    }

    pub(super) fn on_mouse_up(&mut self, ev: MouseEvent) {
        if self.selecting {
            self.selecting = false;
            if self.selection.is_some_and(|s| s.is_empty()) {
                self.selection = None;
                self.screen.mark_all_dirty();
            } else if self.settings.settings().copy_on_select {
                self.copy_selection();
            }
            return;
        }
        if let Some((button, _)) = self.reporting.take() {
            let cell = self.cell_at(&ev);
            self.report(MouseKind::Release, button, cell, &ev);
        }
    }

    pub(super) fn on_wheel(&mut self, ev: WheelEvent) {
        ev.prevent_default();
        let m = self.painter.metrics();
        let line_css = f64::from(m.height) / m.dpr;
        let lines = match ev.delta_mode() {
            WheelEvent::DOM_DELTA_LINE => ev.delta_y(),
            WheelEvent::DOM_DELTA_PAGE => ev.delta_y() * f64::from(self.screen.size().rows),
            _ => ev.delta_y() / line_css,
        };
        let cell = self.cell_at(&ev);
        self.scroll_lines(lines, cell, ev.shift_key());
    }

    /// Scrolls by `lines` (positive: down the page, to newer lines), as a
    /// wheel over `cell` does: the program gets wheel reports if it asked
    /// for the mouse, otherwise the view moves through the history.
    pub(super) fn scroll_lines(&mut self, lines: f64, cell: (u16, u16), shift: bool) {
        // Down the page is positive in DOM and negative (newer) for us.
        self.wheel_rest -= lines;
        let whole = self.wheel_rest.trunc();
        if whole == 0.0 {
            return;
        }
        self.wheel_rest -= whole;
        let modes = self.screen.modes();
        match keys::wheel_action(whole as i32, cell.0, cell.1, shift, modes) {
            WheelAction::Send(bytes) => {
                self.conn.send_input(&bytes);
            }
            WheelAction::ScrollView(n) => {
                self.screen.scroll_view(n);
            }
        }
    }
}
