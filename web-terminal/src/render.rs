//! Colour and layout arithmetic for the canvas renderer.
//!
//! The host sends colours as the emulator stored them (default, indexed or
//! RGB) and leaves the palette to the client. Resolving them, together with
//! the attributes that change colour (bold-is-bright, dim, inverse, hidden),
//! and turning element sizes into a grid size are pure functions; keeping
//! them here means they are tested natively instead of by looking at pixels.

use directory_api::ThemeName;
use protocol::{Color, Size, Style, StyleFlags};

/// A colour ready to paint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// `#rrggbb`, the form CSS and the test API use.
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// Mixes `self` toward `other`; `weight` is the share of `other` out of 256.
    pub fn mix(self, other: Rgb, weight: u16) -> Rgb {
        let w = u32::from(weight.min(256));
        let m = |a: u8, b: u8| ((u32::from(a) * (256 - w) + u32::from(b) * w) / 256) as u8;
        Rgb(m(self.0, other.0), m(self.1, other.1), m(self.2, other.2))
    }
}

/// The client's colour theme: default colours plus the 16 ANSI colours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Theme {
    pub foreground: Rgb,
    pub background: Rgb,
    pub cursor: Rgb,
    pub selection: Rgb,
    pub ansi: [Rgb; 16],
}

impl Default for Theme {
    /// A dark theme with readable contrast for all 16 colours (close to
    /// the Tango / GNOME terminal defaults, which most programs expect).
    fn default() -> Self {
        Theme {
            foreground: Rgb(0xd8, 0xd8, 0xd8),
            background: Rgb(0x1a, 0x1b, 0x1e),
            cursor: Rgb(0xe8, 0xe8, 0xe8),
            selection: Rgb(0x3a, 0x5a, 0x8a),
            ansi: [
                Rgb(0x2e, 0x34, 0x36),
                Rgb(0xcc, 0x00, 0x00),
                Rgb(0x4e, 0x9a, 0x06),
                Rgb(0xc4, 0xa0, 0x00),
                Rgb(0x34, 0x65, 0xa4),
                Rgb(0x75, 0x50, 0x7b),
                Rgb(0x06, 0x98, 0x9a),
                Rgb(0xd3, 0xd7, 0xcf),
                Rgb(0x55, 0x57, 0x53),
                Rgb(0xef, 0x29, 0x29),
                Rgb(0x8a, 0xe2, 0x34),
                Rgb(0xfc, 0xe9, 0x4f),
                Rgb(0x72, 0x9f, 0xcf),
                Rgb(0xad, 0x7f, 0xa8),
                Rgb(0x34, 0xe2, 0xe2),
                Rgb(0xee, 0xee, 0xec),
            ],
        }
    }
}

impl Theme {
    /// One of the schemes the settings offer, by name.
    pub fn named(name: ThemeName) -> Theme {
        // Foreground, background, cursor, selection, then the 16 colours.
        const TANGO: [u32; 16] = [
            0x2e3436, 0xcc0000, 0x4e9a06, 0xc4a000, 0x3465a4, 0x75507b, 0x06989a, 0xd3d7cf,
            0x555753, 0xef2929, 0x8ae234, 0xfce94f, 0x729fcf, 0xad7fa8, 0x34e2e2, 0xeeeeec,
        ];
        const SOLARIZED: [u32; 16] = [
            0x073642, 0xdc322f, 0x859900, 0xb58900, 0x268bd2, 0xd33682, 0x2aa198, 0xeee8d5,
            0x002b36, 0xcb4b16, 0x586e75, 0x657b83, 0x839496, 0x6c71c4, 0x93a1a1, 0xfdf6e3,
        ];
        const GRUVBOX: [u32; 16] = [
            0x282828, 0xcc241d, 0x98971a, 0xd79921, 0x458588, 0xb16286, 0x689d6a, 0xa89984,
            0x928374, 0xfb4934, 0xb8bb26, 0xfabd2f, 0x83a598, 0xd3869b, 0x8ec07c, 0xebdbb2,
        ];
        let ([fg, bg, cursor, selection], ansi) = match name {
            ThemeName::Dark => return Theme::default(),
            ThemeName::Light => ([0x1e1e1e, 0xfafafa, 0x1e1e1e, 0xb4d5fe], TANGO),
            ThemeName::SolarizedDark => ([0x839496, 0x002b36, 0x93a1a1, 0x073642], SOLARIZED),
            ThemeName::SolarizedLight => ([0x586e75, 0xfdf6e3, 0x073642, 0xeee8d5], SOLARIZED),
            ThemeName::GruvboxDark => ([0xebdbb2, 0x282828, 0xebdbb2, 0x504945], GRUVBOX),
        };
        let rgb = |v: u32| Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8);
        Theme {
            foreground: rgb(fg),
            background: rgb(bg),
            cursor: rgb(cursor),
            selection: rgb(selection),
            ansi: ansi.map(rgb),
        }
    }

    /// The xterm 256-colour palette with this theme's first 16 entries.
    pub fn indexed(&self, index: u8) -> Rgb {
        match index {
            0..=15 => self.ansi[usize::from(index)],
            16..=231 => {
                let i = index - 16;
                let level = |v: u8| if v == 0 { 0 } else { 55 + 40 * v };
                Rgb(level(i / 36), level((i / 6) % 6), level(i % 6))
            }
            232..=255 => {
                let v = 8 + 10 * (index - 232);
                Rgb(v, v, v)
            }
        }
    }

    /// A colour as the foreground would use it, before any attribute.
    pub fn foreground_of(&self, color: Color) -> Rgb {
        match color {
            Color::Default => self.foreground,
            Color::Indexed(i) => self.indexed(i),
            Color::Rgb(r, g, b) => Rgb(r, g, b),
        }
    }

    /// A colour as the background would use it, before any attribute.
    pub fn background_of(&self, color: Color) -> Rgb {
        match color {
            Color::Default => self.background,
            other => self.foreground_of(other),
        }
    }

    /// The colours a cell is painted with, all attributes applied.
    pub fn paint(&self, style: &Style) -> CellPaint {
        let flags = style.flags;
        // Bold text in one of the 8 normal colours is shown in its bright
        // variant, as xterm and most programs' colour schemes assume.
        let fg_color = match style.fg {
            Color::Indexed(i) if i < 8 && flags.has(StyleFlags::BOLD) => Color::Indexed(i + 8),
            other => other,
        };
        let mut fg = self.foreground_of(fg_color);
        let mut bg = self.background_of(style.bg);
        if flags.has(StyleFlags::INVERSE) {
            core::mem::swap(&mut fg, &mut bg);
        }
        if flags.has(StyleFlags::DIM) {
            fg = fg.mix(bg, 96);
        }
        if flags.has(StyleFlags::HIDDEN) {
            fg = bg;
        }
        CellPaint { fg, bg }
    }
}

/// Final foreground and background of one cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellPaint {
    pub fg: Rgb,
    pub bg: Rgb,
}

/// How a colour was specified, in the test API's words:
/// `default`, `indexed:N` or `rgb:R,G,B`.
pub fn color_spec(color: Color) -> String {
    match color {
        Color::Default => "default".to_owned(),
        Color::Indexed(i) => format!("indexed:{i}"),
        Color::Rgb(r, g, b) => format!("rgb:{r},{g},{b}"),
    }
}

/// Cell size in device pixels, derived from measured font metrics.
///
/// Cells are whole device pixels so that rows and columns never blur into
/// each other on the canvas, whatever the device pixel ratio.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CellMetrics {
    pub width: u32,
    pub height: u32,
    /// Distance from the top of the cell to the text baseline.
    pub baseline: u32,
    /// The device pixel ratio the metrics were computed for.
    pub dpr: f64,
    /// The font's own advance per character, in device pixels; text drawn
    /// in runs gets `letter_spacing()` added so each character lands on
    /// its cell.
    pub advance: f64,
}

impl CellMetrics {
    /// `advance` is the measured width of one character at `font_px`, both
    /// in device pixels; `line_height` is a multiple of the font size.
    pub fn new(advance: f64, font_px: f64, line_height: f64, dpr: f64) -> CellMetrics {
        let width = advance.ceil().max(1.0) as u32;
        let height = (font_px * line_height).ceil().max(1.0) as u32;
        // Put the baseline so that descenders fit: roughly 80 % of the font
        // size below the top plus half of the extra leading.
        let leading = f64::from(height) - font_px;
        let baseline = (font_px * 0.8 + leading / 2.0).round().max(1.0) as u32;
        CellMetrics {
            width,
            height,
            baseline: baseline.min(height),
            dpr,
            advance,
        }
    }

    /// Extra spacing that makes the font's advance equal the cell width.
    pub fn letter_spacing(&self) -> f64 {
        f64::from(self.width) - self.advance
    }

    /// The grid that fits into an element of `css_width` x `css_height`
    /// CSS pixels, clamped to what the protocol allows.
    pub fn grid_size(&self, css_width: f64, css_height: f64) -> Size {
        let cols = (css_width * self.dpr / f64::from(self.width)).floor();
        let rows = (css_height * self.dpr / f64::from(self.height)).floor();
        let clamp = |v: f64| v.clamp(0.0, f64::from(u16::MAX)) as u16;
        Size {
            cols: clamp(cols),
            rows: clamp(rows),
        }
        .clamped()
    }

    /// The cell under a point given in CSS pixels relative to the canvas,
    /// clamped into a grid of `size`.
    pub fn cell_at(&self, css_x: f64, css_y: f64, size: Size) -> (u16, u16) {
        let col = (css_x * self.dpr / f64::from(self.width)).floor();
        let row = (css_y * self.dpr / f64::from(self.height)).floor();
        let clamp = |v: f64, n: u16| v.clamp(0.0, f64::from(n.saturating_sub(1))) as u16;
        (clamp(row, size.rows), clamp(col, size.cols))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_theme_is_readable_and_its_own() {
        // WCAG's relative luminance, to judge contrast as people see it.
        let luminance = |c: Rgb| {
            let lin = |v: u8| {
                let v = f64::from(v) / 255.0;
                if v <= 0.039_28 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * lin(c.0) + 0.7152 * lin(c.1) + 0.0722 * lin(c.2)
        };
        let contrast = |a: Rgb, b: Rgb| {
            let (hi, lo) = (
                luminance(a).max(luminance(b)),
                luminance(a).min(luminance(b)),
            );
            (hi + 0.05) / (lo + 0.05)
        };
        assert_eq!(Theme::named(ThemeName::Dark), Theme::default());
        let themes: Vec<Theme> = ThemeName::ALL.into_iter().map(Theme::named).collect();
        for (name, theme) in ThemeName::ALL.iter().zip(&themes) {
            let text = contrast(theme.foreground, theme.background);
            assert!(text >= 4.5, "{name:?}: text contrast {text:.2}");
            let cursor = contrast(theme.cursor, theme.background);
            assert!(cursor >= 3.0, "{name:?}: cursor contrast {cursor:.2}");
            assert_ne!(theme.selection, theme.background, "{name:?}");
        }
        for (i, a) in themes.iter().enumerate() {
            for b in &themes[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn palette_matches_xterm() {
        let t = Theme::default();
        assert_eq!(t.indexed(1), t.ansi[1]);
        assert_eq!(t.indexed(16), Rgb(0, 0, 0));
        assert_eq!(t.indexed(21), Rgb(0, 0, 255));
        assert_eq!(t.indexed(196), Rgb(255, 0, 0));
        assert_eq!(t.indexed(231), Rgb(255, 255, 255));
        assert_eq!(t.indexed(67), Rgb(0x5f, 0x87, 0xaf));
        assert_eq!(t.indexed(232), Rgb(8, 8, 8));
        assert_eq!(t.indexed(255), Rgb(238, 238, 238));
    }

    #[test]
    fn bold_brightens_only_the_first_eight() {
        let t = Theme::default();
        let bold = |fg| Style {
            fg,
            bg: Color::Default,
            flags: StyleFlags(StyleFlags::BOLD),
        };
        assert_eq!(t.paint(&bold(Color::Indexed(1))).fg, t.ansi[9]);
        assert_eq!(t.paint(&bold(Color::Indexed(9))).fg, t.ansi[9]);
        assert_eq!(t.paint(&bold(Color::Indexed(100))).fg, t.indexed(100));
        assert_eq!(t.paint(&bold(Color::Default)).fg, t.foreground);
    }

    #[test]
    fn inverse_dim_hidden() {
        let t = Theme::default();
        let style = |flags| Style {
            fg: Color::Rgb(200, 0, 0),
            bg: Color::Default,
            flags: StyleFlags(flags),
        };
        let inv = t.paint(&style(StyleFlags::INVERSE));
        assert_eq!(inv.fg, t.background);
        assert_eq!(inv.bg, Rgb(200, 0, 0));
        let dim = t.paint(&style(StyleFlags::DIM));
        assert!(dim.fg.0 < 200 && dim.fg.0 > t.background.0);
        let hidden = t.paint(&style(StyleFlags::HIDDEN));
        assert_eq!(hidden.fg, hidden.bg);
    }

    #[test]
    fn specs_and_hex() {
        assert_eq!(color_spec(Color::Default), "default");
        assert_eq!(color_spec(Color::Indexed(42)), "indexed:42");
        assert_eq!(color_spec(Color::Rgb(1, 2, 3)), "rgb:1,2,3");
        assert_eq!(Rgb(255, 0, 16).hex(), "#ff0010");
    }

    #[test]
    fn metrics_give_whole_device_pixels_and_clamped_grids() {
        let m = CellMetrics::new(16.8, 28.0, 1.2, 2.0);
        assert_eq!((m.width, m.height), (17, 34));
        assert!(m.baseline < m.height && m.baseline > 20);
        assert!((m.letter_spacing() - 0.2).abs() < 1e-9);
        // 850 CSS px at DPR 2 is 1700 device px: 100 columns of 17.
        let size = m.grid_size(850.0, 340.0);
        assert_eq!(
            size,
            Size {
                cols: 100,
                rows: 20
            }
        );
        assert_eq!(m.grid_size(0.0, 0.0), Size::MIN);
        assert_eq!(m.cell_at(17.0 / 2.0 * 3.5, 1.0, size), (0, 3));
        assert_eq!(m.cell_at(-5.0, 1e9, size), (19, 0));
    }
}
