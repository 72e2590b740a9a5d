//! The canvas renderer: one row at a time, glyphs from a cache.
//!
//! `fillText` is the slow part of drawing text on a canvas, and a terminal
//! draws the same few hundred glyphs over and over. So each glyph is drawn
//! once into an offscreen atlas canvas, keyed by its text, font variant and
//! colour, and rows are painted with `drawImage` from there. Rows are
//! repainted whole (backgrounds, glyphs, decorations, cursor) so that a row
//! never depends on what its neighbours drew.

use protocol::{CursorShape, StyleFlags};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CanvasRenderingContext2d, Document, HtmlCanvasElement};

use crate::numbers::fixed;
use crate::render::{CellMetrics, Rgb, Theme};
use crate::screen::{CellWidth, Row};

/// Line height as a multiple of the font size.
pub const LINE_HEIGHT: f64 = 1.2;
/// The atlas is a square of this many device pixels; when it fills up it is
/// cleared and refilled on demand.
const ATLAS_PX: u32 = 2048;

pub fn context_2d(canvas: &HtmlCanvasElement) -> Result<CanvasRenderingContext2d, JsValue> {
    canvas
        .get_context("2d")?
        .ok_or_else(|| JsValue::from_str("no 2d canvas context"))?
        .dyn_into::<CanvasRenderingContext2d>()
        .map_err(|_| JsValue::from_str("no 2d canvas context"))
}

/// The font the settings chose, in device pixels: no downloaded web
/// fonts, the user's own face if named, then the platform's monospace.
#[derive(Clone, Debug, PartialEq)]
pub struct Face {
    pub px: f64,
    pub families: String,
}

impl Face {
    fn css(&self, bold: bool, italic: bool) -> String {
        format!(
            "{}{}{}px {}",
            if italic { "italic " } else { "" },
            if bold { "bold " } else { "" },
            fixed(self.px, 0),
            self.families,
        )
    }
}

/// Measures the font at the given device pixel ratio.
/// Whether this canvas can space letters (Chromium 99+, Firefox 115+).
pub fn supports_letter_spacing(ctx: &CanvasRenderingContext2d) -> bool {
    js_sys::Reflect::has(ctx, &"letterSpacing".into()).unwrap_or(false)
}

/// The face of `css_px` CSS pixels at the device pixel ratio, and the
/// cell it gives.
pub fn measure(
    ctx: &CanvasRenderingContext2d,
    dpr: f64,
    css_px: u8,
    families: &str,
) -> (CellMetrics, Face) {
    let face = Face {
        px: (f64::from(css_px) * dpr).round(),
        families: families.to_owned(),
    };
    let px = face.px;
    ctx.set_font(&face.css(false, false));
    let advance = ctx
        .measure_text("MMMMMMMMMM")
        .map(|m| m.width() / 10.0)
        .unwrap_or(px * 0.6);
    (CellMetrics::new(advance, px, LINE_HEIGHT, dpr), face)
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct GlyphKey {
    text: String,
    bold: bool,
    italic: bool,
    fg: Rgb,
}

/// Offscreen canvas of pre-drawn glyphs; every slot is two cells wide so
/// wide characters and emoji fit.
pub struct GlyphAtlas {
    canvas: HtmlCanvasElement,
    ctx: CanvasRenderingContext2d,
    /// Where each glyph drawn so far is, sorted by key: a binary search
    /// per lookup. A `HashMap` cost 4 KB of wasm (SipHash and hashbrown)
    /// for no measurable speed at the few hundred glyphs a screen uses.
    slots: Vec<(GlyphKey, (f64, f64))>,
    next: (u32, u32),
    metrics: CellMetrics,
    face: Face,
}

impl GlyphAtlas {
    pub fn new(
        document: &Document,
        metrics: CellMetrics,
        face: Face,
    ) -> Result<GlyphAtlas, JsValue> {
        let canvas: HtmlCanvasElement = document.create_element("canvas")?.dyn_into()?;
        canvas.set_width(ATLAS_PX);
        canvas.set_height(ATLAS_PX);
        let ctx = context_2d(&canvas)?;
        Ok(GlyphAtlas {
            canvas,
            ctx,
            slots: Vec::new(),
            next: (0, 0),
            metrics,
            face,
        })
    }

    pub fn face(&self) -> &Face {
        &self.face
    }

    /// Forgets every glyph (a new face or a full atlas).
    pub fn reset(&mut self, metrics: CellMetrics, face: Face) {
        self.metrics = metrics;
        self.face = face;
        self.slots.clear();
        self.next = (0, 0);
        self.ctx
            .clear_rect(0.0, 0.0, f64::from(ATLAS_PX), f64::from(ATLAS_PX));
    }

    fn slot(&mut self, key: GlyphKey) -> (f64, f64) {
        let place = match self.slots.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(found) => return self.slots[found].1,
            Err(place) => place,
        };
        let m = self.metrics;
        let slot_w = 2 * m.width;
        if self.next.0 + slot_w > ATLAS_PX {
            self.next = (0, self.next.1 + m.height);
        }
        let mut place = place;
        if self.next.1 + m.height > ATLAS_PX {
            let (metrics, face) = (self.metrics, self.face.clone());
            self.reset(metrics, face);
            place = 0;
        }
        let (x, y) = (f64::from(self.next.0), f64::from(self.next.1));
        self.next.0 += slot_w;
        let (w, h) = (f64::from(slot_w), f64::from(m.height));
        let ctx = &self.ctx;
        ctx.save();
        ctx.begin_path();
        ctx.rect(x, y, w, h);
        ctx.clip();
        ctx.set_font(&self.face.css(key.bold, key.italic));
        ctx.set_text_baseline("alphabetic");
        ctx.set_fill_style_str(&key.fg.hex());
        let _ = ctx.fill_text(&key.text, x, y + f64::from(m.baseline));
        ctx.restore();
        self.slots.insert(place, (key, (x, y)));
        (x, y)
    }
}

/// Consecutive ASCII cells drawn with one `fillText`.
#[derive(Default)]
struct TextRun {
    key: Option<GlyphKey>,
    x: f64,
    end: usize,
    text: String,
}

impl TextRun {
    fn continues(&self, key: &GlyphKey, col: usize) -> bool {
        self.key.as_ref() == Some(key) && self.end == col
    }

    fn start(&mut self, key: GlyphKey, col: usize, x: f64) {
        self.key = Some(key);
        self.x = x;
        self.end = col;
        self.text.clear();
    }

    fn flush(&mut self, ctx: &CanvasRenderingContext2d, atlas: &GlyphAtlas, y: f64) {
        let Some(key) = self.key.take() else {
            return;
        };
        let m = &atlas.metrics;
        ctx.set_font(&atlas.face.css(key.bold, key.italic));
        let _ = js_sys::Reflect::set(
            ctx,
            &"letterSpacing".into(),
            &format!("{}px", fixed(m.letter_spacing(), 3)).into(),
        );
        ctx.set_fill_style_str(&key.fg.hex());
        let _ = ctx.fill_text(&self.text, self.x, y + f64::from(m.baseline));
        self.text.clear();
    }
}

/// What the renderer needs to know about the cursor on a row.
#[derive(Clone, Copy)]
pub struct CursorPaint {
    pub col: u16,
    pub shape: CursorShape,
    /// Drawn hollow: the terminal does not have the keyboard focus.
    pub hollow: bool,
}

/// The main canvas's context with the atlas and colours it paints with.
pub struct Painter {
    pub ctx: CanvasRenderingContext2d,
    pub atlas: GlyphAtlas,
    pub theme: Theme,
    /// The canvas supports `letterSpacing`, so ASCII runs can be drawn with
    /// one `fillText` each; without it every glyph comes from the atlas.
    pub text_runs: bool,
    /// The font the settings ask for, in CSS pixels, and its families;
    /// `atlas` holds the face measured from them.
    pub font_px: u8,
    pub font_families: String,
}

impl Painter {
    pub fn metrics(&self) -> CellMetrics {
        self.atlas.metrics
    }

    /// Paints one row of the grid at view row `y_row`; `selected(col)` says
    /// whether a cell is highlighted.
    pub fn draw_row(
        &mut self,
        row: &Row,
        y_row: u16,
        canvas_width: f64,
        cursor: Option<CursorPaint>,
        selected: &dyn Fn(u16) -> bool,
    ) {
        let Painter {
            ctx,
            atlas,
            theme,
            text_runs,
            ..
        } = self;
        draw_row(
            ctx,
            atlas,
            theme,
            *text_runs,
            row,
            y_row,
            canvas_width,
            cursor,
            selected,
        );
    }
}

#[allow(clippy::too_many_arguments)] // the fields of `Painter`, split for borrowing
fn draw_row(
    ctx: &CanvasRenderingContext2d,
    atlas: &mut GlyphAtlas,
    theme: &Theme,
    text_runs: bool,
    row: &Row,
    y_row: u16,
    canvas_width: f64,
    cursor: Option<CursorPaint>,
    selected: &dyn Fn(u16) -> bool,
) {
    let m = atlas.metrics;
    let (cw, ch) = (f64::from(m.width), f64::from(m.height));
    let y = f64::from(y_row) * ch;
    ctx.set_fill_style_str(&theme.background.hex());
    ctx.fill_rect(0.0, y, canvas_width, ch);

    let block_cursor = cursor.filter(|c| c.shape == CursorShape::Block && !c.hollow);
    let colours = |col: usize| {
        let cell = &row.cells[col];
        let mut paint = theme.paint(&cell.style);
        if selected(col as u16) {
            paint.bg = theme.selection;
        }
        let under_cursor = block_cursor.is_some_and(|c| {
            let c = usize::from(c.col);
            c == col || (cell.width == CellWidth::Spacer && c + 1 == col)
        });
        if under_cursor {
            paint.fg = theme.background;
            paint.bg = theme.cursor;
        }
        paint
    };

    // Backgrounds, merged into runs of one colour.
    let mut col = 0;
    while col < row.cells.len() {
        let bg = colours(col).bg;
        let start = col;
        while col < row.cells.len() && colours(col).bg == bg {
            col += 1;
        }
        if bg != theme.background {
            ctx.set_fill_style_str(&bg.hex());
            ctx.fill_rect(start as f64 * cw, y, (col - start) as f64 * cw, ch);
        }
    }

    // Glyphs and decorations. Runs of plain ASCII in one colour and font
    // variant are drawn with one `fillText` (letter spacing pins every
    // character to its cell); wide characters, clusters and other scripts
    // come from the atlas, where each is rasterised once.
    let mut run = TextRun::default();
    for (col, cell) in row.cells.iter().enumerate() {
        if cell.width == CellWidth::Spacer {
            continue;
        }
        let flags = cell.style.flags;
        let paint = colours(col);
        let x = col as f64 * cw;
        let span = if cell.width == CellWidth::Wide {
            2.0
        } else {
            1.0
        };
        let visible = !cell.is_blank() && !flags.has(StyleFlags::HIDDEN);
        let key = GlyphKey {
            text: String::new(),
            bold: flags.has(StyleFlags::BOLD),
            italic: flags.has(StyleFlags::ITALIC),
            fg: paint.fg,
        };
        let ascii = text_runs
            && cell.width == CellWidth::Narrow
            && cell.text.len() == 1
            && cell.text.as_bytes()[0].is_ascii_graphic();
        if visible && ascii {
            if !run.continues(&key, col) {
                run.flush(ctx, atlas, y);
                run.start(key, col, x);
            }
            run.text.push_str(&cell.text);
            run.end = col + 1;
        } else if visible {
            run.flush(ctx, atlas, y);
            let (sx, sy) = atlas.slot(GlyphKey {
                text: cell.text.clone(),
                ..key
            });
            // Copy only the cells the glyph owns.
            let w = span * cw;
            let _ = ctx
                .draw_image_with_html_canvas_element_and_sw_and_sh_and_dx_and_dy_and_dw_and_dh(
                    &atlas.canvas,
                    sx,
                    sy,
                    w,
                    ch,
                    x,
                    y,
                    w,
                    ch,
                );
        }
        decorate(ctx, &m, flags, paint.fg, x, y, span * cw);
    }
    run.flush(ctx, atlas, y);

    if let Some(c) = cursor {
        draw_cursor(ctx, &m, theme, row, c, y);
    }
}

fn decorate(
    ctx: &CanvasRenderingContext2d,
    m: &CellMetrics,
    flags: StyleFlags,
    fg: Rgb,
    x: f64,
    y: f64,
    w: f64,
) {
    let lines = StyleFlags::UNDERLINE
        | StyleFlags::DOUBLE_UNDERLINE
        | StyleFlags::UNDERCURL
        | StyleFlags::STRIKE;
    if !flags.has(lines) {
        return;
    }
    let t = m.dpr.round().max(1.0);
    let ch = f64::from(m.height);
    let under = (y + f64::from(m.baseline) + t).min(y + ch - t);
    ctx.set_fill_style_str(&fg.hex());
    if flags.has(StyleFlags::UNDERCURL) {
        ctx.set_stroke_style_str(&fg.hex());
        ctx.set_line_width(t);
        ctx.begin_path();
        let amp = t.max(1.5);
        let step = (w / 4.0).max(2.0);
        ctx.move_to(x, under + amp);
        let mut px = x;
        let mut up = true;
        while px < x + w {
            let nx = (px + step).min(x + w);
            ctx.line_to(nx, if up { under - amp } else { under + amp });
            up = !up;
            px = nx;
        }
        ctx.stroke();
    } else if flags.has(StyleFlags::DOUBLE_UNDERLINE) {
        ctx.fill_rect(x, under - t, w, t);
        ctx.fill_rect(x, (under + t).min(y + ch - t), w, t);
    } else if flags.has(StyleFlags::UNDERLINE) {
        ctx.fill_rect(x, under, w, t);
    }
    if flags.has(StyleFlags::STRIKE) {
        ctx.fill_rect(x, y + (ch / 2.0).round(), w, t);
    }
}

fn draw_cursor(
    ctx: &CanvasRenderingContext2d,
    m: &CellMetrics,
    theme: &Theme,
    row: &Row,
    c: CursorPaint,
    y: f64,
) {
    let (cw, ch) = (f64::from(m.width), f64::from(m.height));
    let col = usize::from(c.col);
    let wide = row
        .cells
        .get(col)
        .is_some_and(|cell| cell.width == CellWidth::Wide);
    let x = col as f64 * cw;
    let w = if wide { 2.0 * cw } else { cw };
    let t = m.dpr.round().max(1.0);
    ctx.set_fill_style_str(&theme.cursor.hex());
    match (c.shape, c.hollow) {
        (CursorShape::Block, false) => {} // drawn as inverted colours
        (CursorShape::Underline, _) => ctx.fill_rect(x, y + ch - 2.0 * t, w, 2.0 * t),
        (CursorShape::Beam, _) => ctx.fill_rect(x, y, 2.0 * t, ch),
        (CursorShape::Block | CursorShape::HollowBlock, _) => {
            ctx.set_stroke_style_str(&theme.cursor.hex());
            ctx.set_line_width(t);
            ctx.stroke_rect(x + t / 2.0, y + t / 2.0, w - t, ch - t);
        }
    }
}
