//! `GET /v1/settings` and `PUT /v1/settings`: how the page looks and
//! behaves for one user, kept in the shared store so it follows the user
//! to any browser, as the session does.
//!
//! Every field has a default, and a document missing a field (saved by an
//! older build, or sent by a page that sets one thing) takes the default
//! for it, so settings added later need no migration; a field this build
//! does not know is ignored. A value out of range is refused with the
//! reason. The page's reader takes each field on its own, so an old page
//! never fails on a newer document.

use serde::{Deserialize, Serialize};

/// The smallest and largest font size, in CSS pixels.
pub const FONT_SIZES: core::ops::RangeInclusive<u8> = 8..=32;
/// The font size a new user gets.
pub const DEFAULT_FONT_SIZE: u8 = 15;
/// The longest font family name.
pub const MAX_FONT_FAMILY_LEN: usize = 64;

/// One user's terminal settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Settings {
    /// CSS pixels, 8 to 32; Ctrl+= and Ctrl+- step it, Ctrl+0 resets it.
    #[cfg_attr(feature = "openapi", schema(minimum = 8, maximum = 32))]
    pub font_size: u8,
    /// A font installed on the user's machine, tried before the browser's
    /// `monospace`; empty for `monospace` alone. ASCII letters and digits,
    /// spaces, `-`, `_` and `.`, up to 64 (font families' own names are
    /// ASCII; checking Unicode classes would grow the page's wasm).
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub font_family: String,
    pub theme: ThemeName,
    pub cursor: CursorStyle,
    pub cursor_blink: bool,
    /// Selecting text copies it at once, without Ctrl+Shift+C.
    pub copy_on_select: bool,
    /// Right-click pastes the clipboard (the browser asks once for leave
    /// to read it); off, right-click opens the browser's menu.
    pub right_click_paste: bool,
    pub bell: Bell,
    /// Programs may set the local clipboard with OSC 52 (tmux's and vim's
    /// yank). Write only: a program can never read the clipboard.
    pub clipboard_write: bool,
    /// Whether typed text is shown before the host echoes it.
    pub prediction: Prediction,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            font_size: DEFAULT_FONT_SIZE,
            font_family: String::new(),
            theme: ThemeName::Dark,
            cursor: CursorStyle::Block,
            cursor_blink: false,
            copy_on_select: false,
            right_click_paste: false,
            bell: Bell::Visual,
            clipboard_write: false,
            prediction: Prediction::Auto,
        }
    }
}

impl Settings {
    /// Why these settings cannot be saved, in words for the user; `None`
    /// when they can.
    pub fn invalid(&self) -> Option<String> {
        if !FONT_SIZES.contains(&self.font_size) {
            return Some(format!(
                "font size {} is out of range: choose {} to {} pixels",
                self.font_size,
                FONT_SIZES.start(),
                FONT_SIZES.end()
            ));
        }
        if !valid_font_family(&self.font_family) {
            return Some(format!(
                "font family {:?} is not a font name: use up to {MAX_FONT_FAMILY_LEN} ASCII letters, digits, spaces, '-', '_' and '.'",
                self.font_family
            ));
        }
        None
    }
}

/// A font family name that can go into a CSS font shorthand in quotes
/// without escaping: the page builds `"<family>", monospace` from it.
pub fn valid_font_family(family: &str) -> bool {
    family.len() <= MAX_FONT_FAMILY_LEN
        && family
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'))
        && family.trim() == family
}

/// The colour schemes the page knows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum ThemeName {
    #[default]
    Dark,
    Light,
    SolarizedDark,
    SolarizedLight,
    GruvboxDark,
}

impl ThemeName {
    pub const ALL: [ThemeName; 5] = [
        ThemeName::Dark,
        ThemeName::Light,
        ThemeName::SolarizedDark,
        ThemeName::SolarizedLight,
        ThemeName::GruvboxDark,
    ];

    /// The name on the wire and in the settings panel.
    pub fn as_str(self) -> &'static str {
        match self {
            ThemeName::Dark => "dark",
            ThemeName::Light => "light",
            ThemeName::SolarizedDark => "solarized-dark",
            ThemeName::SolarizedLight => "solarized-light",
            ThemeName::GruvboxDark => "gruvbox-dark",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum CursorStyle {
    #[default]
    Block,
    Bar,
    Underline,
}

impl CursorStyle {
    pub const ALL: [CursorStyle; 3] =
        [CursorStyle::Block, CursorStyle::Bar, CursorStyle::Underline];

    pub fn as_str(self) -> &'static str {
        match self {
            CursorStyle::Block => "block",
            CursorStyle::Bar => "bar",
            CursorStyle::Underline => "underline",
        }
    }
}

/// What BEL (and OSC 9 / OSC 777 notifications) do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Bell {
    Off,
    /// The screen flashes.
    #[default]
    Visual,
    /// The screen flashes, and a browser notification says so while the
    /// tab is hidden (the browser asks the user's leave first).
    Notify,
}

impl Bell {
    pub const ALL: [Bell; 3] = [Bell::Off, Bell::Visual, Bell::Notify];

    pub fn as_str(self) -> &'static str {
        match self {
            Bell::Off => "off",
            Bell::Visual => "visual",
            Bell::Notify => "notify",
        }
    }
}

/// Predictive local echo: typed text shown before the host's echo comes
/// back, checked against it (the page's `predict`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Prediction {
    /// Shown when the link is slow enough for it to help (a smoothed
    /// round trip over about 60 ms, or an echo late by 250 ms).
    #[default]
    Auto,
    Always,
    Never,
}

impl Prediction {
    pub const ALL: [Prediction; 3] = [Prediction::Auto, Prediction::Always, Prediction::Never];

    pub fn as_str(self) -> &'static str {
        match self {
            Prediction::Auto => "auto",
            Prediction::Always => "always",
            Prediction::Never => "never",
        }
    }
}
