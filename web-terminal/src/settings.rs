//! The user's terminal settings as the page holds them: read from the
//! directory's `GET /v1/settings` (and from the copy the page keeps in
//! `localStorage`, so a reload looks right before the directory answers,
//! or while no directory does), changed by the settings panel and the zoom
//! keys, and written back whole with `PUT /v1/settings`.
//!
//! The closed sets of values and the limits are `directory_api`'s, which
//! the directory checks against; this reader takes each field on its own
//! and keeps the default for one it cannot read, so a page never fails on
//! a document a newer directory wrote.

pub use directory_api::Settings;
use directory_api::{Bell, CursorStyle, DEFAULT_FONT_SIZE, FONT_SIZES, Prediction, ThemeName};
use protocol::CursorShape;

use crate::action::HttpOutcome;
use crate::json::{Json, json_string};

/// `localStorage` key of the page's copy.
pub const STORAGE_KEY: &str = "thinline.settings";

/// Which way a zoom key moves the font size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zoom {
    In,
    Out,
    Reset,
}

fn theme_named(name: &str) -> Option<ThemeName> {
    ThemeName::ALL.into_iter().find(|t| t.as_str() == name)
}

fn cursor_named(name: &str) -> Option<CursorStyle> {
    CursorStyle::ALL.into_iter().find(|c| c.as_str() == name)
}

fn bell_named(name: &str) -> Option<Bell> {
    Bell::ALL.into_iter().find(|b| b.as_str() == name)
}

fn prediction_named(name: &str) -> Option<Prediction> {
    Prediction::ALL.into_iter().find(|p| p.as_str() == name)
}

fn font_size(n: u64) -> Option<u8> {
    u8::try_from(n).ok().filter(|n| FONT_SIZES.contains(n))
}

/// What the page does with the settings, beside what the directory
/// checks: `directory_api::Settings` is the one definition of the fields.
pub trait PageSettings: Sized {
    /// Reads a settings document; a field missing or not readable keeps
    /// its default. `None` only if `text` is not a JSON object.
    fn parse(text: &str) -> Option<Self>;
    /// The document `PUT /v1/settings` takes.
    fn to_json(&self) -> String;
    /// Sets a field from text (a panel's control or the stored document):
    /// whether `name` is a field and `value` one it can take.
    fn set(&mut self, name: &str, value: &str) -> bool;
    /// Sets a yes-or-no field: whether `name` is one.
    fn set_flag(&mut self, name: &str, on: bool) -> bool;
    /// A field's value as the panel shows it: text for a select or an
    /// input, `Err(on)` for a checkbox; `None` for no such field.
    fn get(&self, name: &str) -> Option<Result<String, bool>>;
    /// Ctrl+= / Ctrl+- / Ctrl+0: one pixel at a time (two from 20 up),
    /// within the limits. Whether the size changed.
    fn zoom(&mut self, zoom: Zoom) -> bool;
    /// The CSS font families to draw with: the user's font first, then
    /// the platforms' usual monospace faces. `valid_font_family` keeps
    /// quotes and commas out of the user's name, so quoting it is enough.
    fn font_families(&self) -> String;
    /// The cursor to draw: the program's own shape if it asked for one
    /// (DECSCUSR), otherwise the user's. A program that asks for a block
    /// cannot be told from one that asked for nothing, so a block is drawn
    /// in the user's style too.
    fn cursor_shape(&self, program: CursorShape) -> CursorShape;
}

impl PageSettings for Settings {
    fn parse(text: &str) -> Option<Settings> {
        let json = Json::parse(text)?;
        let Json::Object(members) = &json else {
            return None;
        };
        let mut settings = Settings::default();
        for (name, value) in members {
            // A field this page does not know, or a value it cannot take,
            // keeps its default.
            match value {
                Json::Bool(on) => {
                    settings.set_flag(name, *on);
                }
                Json::String(text) => {
                    settings.set(name, text);
                }
                Json::Number(Some(n)) if name == "font_size" => {
                    if let Some(size) = font_size(*n) {
                        settings.font_size = size;
                    }
                }
                _ => {}
            }
        }
        Some(settings)
    }

    fn to_json(&self) -> String {
        format!(
            "{{\"font_size\":{},\"font_family\":{},\"theme\":\"{}\",\"cursor\":\"{}\",\"cursor_blink\":{},\"copy_on_select\":{},\"right_click_paste\":{},\"bell\":\"{}\",\"clipboard_write\":{},\"prediction\":\"{}\"}}",
            self.font_size,
            json_string(&self.font_family),
            self.theme.as_str(),
            self.cursor.as_str(),
            self.cursor_blink,
            self.copy_on_select,
            self.right_click_paste,
            self.bell.as_str(),
            self.clipboard_write,
            self.prediction.as_str(),
        )
    }

    fn set(&mut self, name: &str, value: &str) -> bool {
        match name {
            "font_size" => value
                .parse::<u64>()
                .ok()
                .and_then(font_size)
                .map(|n| self.font_size = n)
                .is_some(),
            "font_family" => {
                let family = value.trim();
                let ok = directory_api::valid_font_family(family);
                if ok {
                    self.font_family = family.to_owned();
                }
                ok
            }
            "theme" => theme_named(value).map(|t| self.theme = t).is_some(),
            "cursor" => cursor_named(value).map(|c| self.cursor = c).is_some(),
            "bell" => bell_named(value).map(|b| self.bell = b).is_some(),
            "prediction" => prediction_named(value)
                .map(|p| self.prediction = p)
                .is_some(),
            _ => false,
        }
    }

    fn set_flag(&mut self, name: &str, on: bool) -> bool {
        let field = match name {
            "cursor_blink" => &mut self.cursor_blink,
            "copy_on_select" => &mut self.copy_on_select,
            "right_click_paste" => &mut self.right_click_paste,
            "clipboard_write" => &mut self.clipboard_write,
            _ => return false,
        };
        *field = on;
        true
    }

    fn get(&self, name: &str) -> Option<Result<String, bool>> {
        Some(match name {
            "font_size" => Ok(self.font_size.to_string()),
            "font_family" => Ok(self.font_family.clone()),
            "theme" => Ok(self.theme.as_str().to_owned()),
            "cursor" => Ok(self.cursor.as_str().to_owned()),
            "bell" => Ok(self.bell.as_str().to_owned()),
            "prediction" => Ok(self.prediction.as_str().to_owned()),
            "cursor_blink" => Err(self.cursor_blink),
            "copy_on_select" => Err(self.copy_on_select),
            "right_click_paste" => Err(self.right_click_paste),
            "clipboard_write" => Err(self.clipboard_write),
            _ => return None,
        })
    }

    fn zoom(&mut self, zoom: Zoom) -> bool {
        let step = if self.font_size >= 20 { 2 } else { 1 };
        let size = match zoom {
            Zoom::In => self.font_size.saturating_add(step),
            Zoom::Out => self.font_size.saturating_sub(step),
            Zoom::Reset => DEFAULT_FONT_SIZE,
        };
        let size = size.clamp(*FONT_SIZES.start(), *FONT_SIZES.end());
        let changed = size != self.font_size;
        self.font_size = size;
        changed
    }

    fn font_families(&self) -> String {
        const STACK: &str = "ui-monospace, \"SF Mono\", Menlo, \"DejaVu Sans Mono\", \"Liberation Mono\", Consolas, \"Noto Sans Mono\", monospace";
        if self.font_family.is_empty() {
            STACK.to_owned()
        } else {
            format!("\"{}\", {STACK}", self.font_family)
        }
    }

    fn cursor_shape(&self, program: CursorShape) -> CursorShape {
        match program {
            CursorShape::Block => match self.cursor {
                CursorStyle::Block => CursorShape::Block,
                CursorStyle::Bar => CursorShape::Beam,
                CursorStyle::Underline => CursorShape::Underline,
            },
            other => other,
        }
    }
}

/// Keeps the page's settings and the account's in step: one `PUT` in
/// flight at a time carrying the whole document (so saves cannot land out
/// of order), changes made meanwhile sent once it is answered, and the
/// account's copy taken only while the page has changed nothing itself.
#[derive(Debug, Default)]
pub struct SettingsSync {
    settings: Settings,
    /// The user changed something on this page since it loaded.
    changed_here: bool,
    saving: bool,
    /// A change came while a save was in flight.
    save_again: bool,
    /// Saves in a row that found no directory (or one that could not
    /// store them): the next try waits longer.
    unsaved_tries: u32,
}

/// What to tell the user after a save, and what to send next.
#[derive(Debug, PartialEq, Eq)]
pub struct SaveAnswer {
    pub status: String,
    /// The document to `PUT` now (changes made while the last one flew).
    pub send: Option<String>,
    /// No directory took it: call `retry` after this many milliseconds.
    pub retry_in_ms: Option<u32>,
}

/// The first wait before a save that found no directory is tried again;
/// it doubles up to [`RETRY_MAX_MS`].
pub const RETRY_FIRST_MS: u32 = 2_000;
pub const RETRY_MAX_MS: u32 = 60_000;

impl SettingsSync {
    /// Starts from the page's own copy (`localStorage`), if it has one.
    pub fn new(cached: Option<&str>) -> SettingsSync {
        SettingsSync {
            settings: cached.and_then(Settings::parse).unwrap_or_default(),
            ..SettingsSync::default()
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The answer to `GET /v1/settings`: whether the settings changed (and
    /// so must be applied and cached). Ignored once the user changed
    /// something here, whose save carries the whole document anyway.
    pub fn fetched(&mut self, outcome: &HttpOutcome) -> bool {
        let HttpOutcome::Response { status: 200, body } = outcome else {
            return false;
        };
        match Settings::parse(body) {
            Some(settings) if !self.changed_here && settings != self.settings => {
                self.settings = settings;
                true
            }
            _ => false,
        }
    }

    /// Changes the settings here with `change` (which says whether it
    /// changed anything). Returns the document to `PUT` now, if no save is
    /// in flight; otherwise it goes when that one is answered.
    pub fn change(&mut self, change: impl FnOnce(&mut Settings) -> bool) -> Option<String> {
        if !change(&mut self.settings) {
            return None;
        }
        self.changed_here = true;
        if self.saving {
            self.save_again = true;
            return None;
        }
        self.saving = true;
        Some(self.settings.to_json())
    }

    /// The answer to a `PUT`.
    pub fn saved(&mut self, outcome: &HttpOutcome) -> SaveAnswer {
        self.saving = false;
        if std::mem::take(&mut self.save_again) {
            self.saving = true;
            return SaveAnswer {
                status: "saving…".to_owned(),
                send: Some(self.settings.to_json()),
                retry_in_ms: None,
            };
        }
        // A directory that is away, or cannot reach the store, is asked
        // again until one takes the change: the account must not keep an
        // older look than the one this page shows.
        let status = match outcome {
            HttpOutcome::Response { status: 200, .. } => "saved to your account".to_owned(),
            HttpOutcome::Response { status: 401, .. } => {
                "not saved: you are signed out; sign in again to keep settings".to_owned()
            }
            HttpOutcome::Response { status, body } if *status < 500 => {
                let reason = Json::parse(body)
                    .and_then(|j| j.get("error").and_then(Json::as_str).map(str::to_owned))
                    .unwrap_or_else(|| format!("the directory answered {status}"));
                format!("not saved ({reason}); this browser keeps the change")
            }
            away => {
                let why = match away {
                    HttpOutcome::Response { status, .. } => {
                        format!("the directory answered {status}")
                    }
                    HttpOutcome::Failed => "no directory answered".to_owned(),
                };
                let wait = RETRY_FIRST_MS
                    .saturating_mul(1 << self.unsaved_tries.min(5))
                    .min(RETRY_MAX_MS);
                self.unsaved_tries += 1;
                return SaveAnswer {
                    status: format!(
                        "not saved yet: {why}; this browser keeps the change and tries again"
                    ),
                    send: None,
                    retry_in_ms: Some(wait),
                };
            }
        };
        self.unsaved_tries = 0;
        SaveAnswer {
            status,
            send: None,
            retry_in_ms: None,
        }
    }

    /// A retry `saved` asked for is due: the document to `PUT`, unless a
    /// save is already in flight (a change made meanwhile sent it).
    pub fn retry(&mut self) -> Option<String> {
        if self.saving || self.unsaved_tries == 0 {
            return None;
        }
        self.saving = true;
        Some(self.settings.to_json())
    }
}

#[cfg(test)]
mod tests;
