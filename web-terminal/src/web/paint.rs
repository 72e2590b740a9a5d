//! Layout (canvas size, font metrics, grid size) and painting on animation
//! frames: dirty rows only, then the accessible mirror and the status line.

use gloo_timers::callback::Timeout;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use super::draw::{self, CursorPaint};
use super::{App, RESIZE_DEBOUNCE_MS, with_app};
use crate::keys;
use crate::numbers::fixed;
use crate::settings::PageSettings;

impl App {
    pub(super) fn schedule_resize(&mut self) {
        let me = self.me.clone();
        self.resize_timer = Some(Timeout::new(RESIZE_DEBOUNCE_MS, move || {
            if let Some(app) = me.upgrade() {
                with_app(&app, |a| {
                    a.resize_timer = None;
                    a.layout_canvas();
                    a.after_event();
                });
            }
        }));
    }

    /// Sizes the canvas backing store to its CSS box times the device
    /// pixel ratio, re-measures the font and asks the host for the grid
    /// that fits.
    pub(super) fn layout_canvas(&mut self) {
        let dpr = self.dom.window.device_pixel_ratio();
        let rect = self.dom.canvas.get_bounding_client_rect();
        let width = (rect.width() * dpr).round().max(1.0) as u32;
        let height = (rect.height() * dpr).round().max(1.0) as u32;
        if self.dom.canvas.width() != width || self.dom.canvas.height() != height {
            self.dom.canvas.set_width(width);
            self.dom.canvas.set_height(height);
        }
        let (mut metrics, mut face) = draw::measure(
            &self.painter.ctx,
            dpr,
            self.painter.font_px,
            &self.painter.font_families,
        );
        if self.conn.role().is_viewer() {
            // A viewer sees the owner's grid whole, never resizing it: a
            // window too small for it gets a smaller font.
            let host = self.screen.size();
            let fits = metrics.grid_size(rect.width(), rect.height());
            let scale = (f64::from(fits.cols) / f64::from(host.cols.max(1)))
                .min(f64::from(fits.rows) / f64::from(host.rows.max(1)));
            if scale < 1.0 {
                let px = (f64::from(self.painter.font_px) * scale).floor().max(4.0) as u8;
                (metrics, face) =
                    draw::measure(&self.painter.ctx, dpr, px, &self.painter.font_families);
            }
            self.viewer_grid = host;
        }
        if metrics != self.painter.metrics() || face != *self.painter.atlas.face() {
            self.painter.atlas.reset(metrics, face);
        }
        // Guesses go when the host's frame of the new size comes.
        self.conn
            .resize(metrics.grid_size(rect.width(), rect.height()));
        self.full_clear = true;
        self.screen.mark_all_dirty();
    }

    pub(super) fn install_raf(&mut self) {
        let me = self.me.clone();
        self.raf = Some(Closure::<dyn FnMut()>::new(move || {
            if let Some(app) = me.upgrade() {
                with_app(&app, |a| {
                    a.frame_requested = false;
                    a.paint();
                });
            }
        }));
    }

    pub(super) fn request_frame(&mut self) {
        if self.frame_requested {
            return;
        }
        if let Some(raf) = &self.raf
            && self
                .dom
                .window
                .request_animation_frame(raf.as_ref().unchecked_ref())
                .is_ok()
        {
            self.frame_requested = true;
        }
    }

    pub(super) fn on_blink(&mut self) {
        if (self.dom.window.device_pixel_ratio() - self.painter.metrics().dpr).abs() > f64::EPSILON
        {
            // Zoom or a move to another screen: re-layout for crisp text.
            self.layout_canvas();
        }
        self.update_status();
        let blink = self.screen.cursor().blink || self.settings.settings().cursor_blink;
        if blink && self.screen.cursor().visible && self.focused.get() {
            self.blink_on = !self.blink_on;
            self.screen.mark_cursor_dirty();
            self.request_frame();
        } else if !self.blink_on {
            self.blink_on = true;
            self.screen.mark_cursor_dirty();
            self.request_frame();
        }
    }

    pub(super) fn paint(&mut self) {
        let focused = self.focused.get();
        if focused != self.drawn_focus {
            self.drawn_focus = focused;
            self.screen.mark_cursor_dirty();
            if let Some(bytes) = keys::encode_focus(focused, self.screen.modes()) {
                self.conn.send_input(&bytes);
            }
        }
        let cursor_row = self.screen.cursor_view_row();
        if cursor_row != self.drawn_cursor_row {
            if let Some(old) = self.drawn_cursor_row {
                self.screen.mark_row_dirty(old);
            }
            self.screen.mark_cursor_dirty();
        }
        self.drawn_cursor_row = cursor_row;
        self.place_keyboard();
        if self.full_clear {
            self.full_clear = false;
            let (w, h) = (
                f64::from(self.dom.canvas.width()),
                f64::from(self.dom.canvas.height()),
            );
            let ctx = &self.painter.ctx;
            ctx.set_fill_style_str(&self.painter.theme.background.hex());
            ctx.fill_rect(0.0, 0.0, w, h);
            self.screen.mark_all_dirty();
        }
        let rows = self.screen.take_dirty_rows();
        let canvas_width = f64::from(self.dom.canvas.width());
        let cursor = self.screen.cursor();
        let blinks = cursor.blink || self.settings.settings().cursor_blink;
        let show_cursor = cursor.visible && (self.blink_on || !blinks || !focused);
        let selection = self.selection.map(|s| (s, s.range(&self.screen)));
        for &r in &rows {
            let Some(row) = self.screen.visible_row(r) else {
                continue;
            };
            let line = self.screen.line_number_of_view_row(r);
            let cursor_paint = (show_cursor && cursor_row == Some(r)).then_some(CursorPaint {
                col: cursor.col,
                shape: self.settings.settings().cursor_shape(cursor.shape),
                hollow: !focused,
            });
            let search = self.search.as_ref();
            let selected = |col: u16| {
                selection.is_some_and(|(s, range)| s.contains(range, line, col))
                    || search.is_some_and(|s| s.covers(line, col))
            };
            self.painter
                .draw_row(&row, r, canvas_width, cursor_paint, &selected);
        }
        self.update_mirror(&rows);
        self.update_status();
        // Focus reports queued above go out now.
        while let Some(action) = self.conn.poll_action() {
            self.perform(action);
        }
    }

    /// Keeps `#mirror` at one element per visible row holding its text.
    pub(super) fn update_mirror(&mut self, rows: &[u16]) {
        let want = usize::from(self.screen.size().rows);
        while self.mirror_rows.len() > want {
            if let Some((el, _)) = self.mirror_rows.pop() {
                el.remove();
            }
        }
        while self.mirror_rows.len() < want {
            let Ok(el) = self.dom.document.create_element("div") else {
                return;
            };
            let _ = self.dom.mirror.append_child(&el);
            self.mirror_rows.push((el, String::new()));
        }
        for &r in rows {
            let text = self.screen.row_text(r);
            if let Some((el, old)) = self.mirror_rows.get_mut(usize::from(r))
                && *old != text
            {
                el.set_text_content(Some(&text));
                *old = text;
            }
        }
    }

    /// Keeps the hidden textarea over the cursor so an IME shows its
    /// candidate window where the text will appear.
    fn place_keyboard(&mut self) {
        let m = self.painter.metrics();
        let cursor = self.screen.cursor();
        let row = self.screen.cursor_view_row().unwrap_or(cursor.row);
        let pos = (
            f64::from(cursor.col) * f64::from(m.width) / m.dpr,
            f64::from(row) * f64::from(m.height) / m.dpr,
        );
        if pos == self.keyboard_at {
            return;
        }
        self.keyboard_at = pos;
        let style = self.dom.keyboard.style();
        let canvas = &self.dom.canvas;
        let _ = style.set_property(
            "left",
            &format!("{}px", fixed(f64::from(canvas.offset_left()) + pos.0, 2)),
        );
        let _ = style.set_property(
            "top",
            &format!("{}px", fixed(f64::from(canvas.offset_top()) + pos.1, 2)),
        );
    }
}
