//! The recording player's drawing: the same screen model and painter as
//! the live terminal, fed the frames the directory replays from a
//! recording (`host_server::recording::replay`) instead of a host's.
//!
//! Built only into the player's own wasm (`--features player`, see
//! `xtask/src/build.rs`), which `static/player.js` loads on the player
//! page: the terminal's first visit does not download a byte of it, and
//! the player does not carry the terminal's connection, keys or panels.
//! Everything about time (play, pause, speed, seeking) is the script's;
//! this only draws what it is given.

use protocol::{ServerToClientMsg, Size, decode_server};
use wasm_bindgen::prelude::*;
use web_sys::HtmlCanvasElement;

use super::draw::{self, CursorPaint, GlyphAtlas, Painter};
use super::{element, js_err};
use crate::render::Theme;
use crate::screen::Screen;
use crate::settings::{PageSettings, STORAGE_KEY, SettingsSync};

/// Draws a recording's frames on a canvas.
#[wasm_bindgen]
pub struct Player {
    canvas: HtmlCanvasElement,
    painter: Painter,
    screen: Screen,
    /// The whole canvas is painted afresh on the next frame (a new size).
    clear: bool,
    /// Where the cursor was drawn, to paint that row again when it moves.
    drawn_cursor_row: Option<u16>,
}

#[wasm_bindgen]
impl Player {
    /// A player drawing on the canvas `canvas_id`, in the user's font and
    /// theme as this browser last had them.
    #[wasm_bindgen(constructor)]
    pub fn new(canvas_id: &str) -> Result<Player, JsValue> {
        let window = web_sys::window().ok_or_else(|| js_err("no window"))?;
        let document = window.document().ok_or_else(|| js_err("no document"))?;
        let canvas: HtmlCanvasElement = element(&document, canvas_id)?;
        let cached = window
            .local_storage()
            .ok()
            .flatten()
            .and_then(|s| s.get_item(STORAGE_KEY).ok().flatten());
        let sync = SettingsSync::new(cached.as_deref());
        let settings = sync.settings();
        let ctx = draw::context_2d(&canvas)?;
        let dpr = window.device_pixel_ratio();
        let font_families = settings.font_families();
        let (metrics, face) = draw::measure(&ctx, dpr, settings.font_size, &font_families);
        let atlas = GlyphAtlas::new(&document, metrics, face)?;
        Ok(Player {
            canvas,
            painter: Painter {
                text_runs: draw::supports_letter_spacing(&ctx),
                ctx,
                atlas,
                theme: Theme::named(settings.theme),
                font_px: settings.font_size,
                font_families,
            },
            screen: Screen::new(Size::default()),
            clear: true,
            drawn_cursor_row: None,
        })
    }

    /// Applies one frame (`ServerToClientMsg::Frame` as the protocol
    /// encodes it) and paints what it changed. False if `bytes` is not a
    /// frame; nothing changes then.
    pub fn frame(&mut self, bytes: &[u8]) -> bool {
        let Ok(ServerToClientMsg::Frame(frame)) = decode_server(bytes) else {
            return false;
        };
        if frame.size != self.screen.size() {
            self.screen = Screen::new(frame.size);
            self.drawn_cursor_row = None;
            self.fit_canvas(frame.size);
        }
        self.screen.apply_frame(frame);
        self.paint();
        true
    }

    /// The visible rows' text joined by "\n", as the terminal page's
    /// `thinline.text()` gives it (the end-to-end tests compare them).
    pub fn text(&self) -> String {
        let rows = self.screen.size().rows;
        let mut lines = Vec::with_capacity(usize::from(rows));
        for r in 0..rows {
            let text = self
                .screen
                .visible_row(r)
                .map(|row| row.text())
                .unwrap_or_default();
            lines.push(text.trim_end().to_owned());
        }
        lines.join("\n")
    }

    /// Columns and rows of the screen shown.
    pub fn cols(&self) -> u16 {
        self.screen.size().cols
    }

    pub fn rows(&self) -> u16 {
        self.screen.size().rows
    }
}

impl Player {
    /// Sizes the canvas to `size` cells of the current font; the page's
    /// stylesheet shows it scaled down to fit, its shape kept.
    fn fit_canvas(&mut self, size: Size) {
        let metrics = self.painter.metrics();
        self.canvas
            .set_width((u32::from(size.cols) * metrics.width).max(1));
        self.canvas
            .set_height((u32::from(size.rows) * metrics.height).max(1));
        self.clear = true;
    }

    fn paint(&mut self) {
        if std::mem::take(&mut self.clear) {
            let ctx = &self.painter.ctx;
            ctx.set_fill_style_str(&self.painter.theme.background.hex());
            ctx.fill_rect(
                0.0,
                0.0,
                f64::from(self.canvas.width()),
                f64::from(self.canvas.height()),
            );
            self.screen.mark_all_dirty();
        }
        let cursor = self.screen.cursor();
        let cursor_row = self.screen.cursor_view_row();
        if cursor_row != self.drawn_cursor_row {
            if let Some(old) = self.drawn_cursor_row {
                self.screen.mark_row_dirty(old);
            }
            self.screen.mark_cursor_dirty();
            self.drawn_cursor_row = cursor_row;
        }
        let width = f64::from(self.canvas.width());
        for r in self.screen.take_dirty_rows() {
            let Some(row) = self.screen.visible_row(r) else {
                continue;
            };
            let paint = (cursor.visible && cursor_row == Some(r)).then_some(CursorPaint {
                col: cursor.col,
                shape: cursor.shape,
                hollow: false,
            });
            self.painter.draw_row(&row, r, width, paint, &|_| false);
        }
    }
}
