//! The bar of extra keys for touch screens, whose on-screen keyboards have
//! no Esc, Tab, Ctrl, Alt or arrows: what each button sends, and Ctrl and
//! Alt held for the next key, tapped or typed.

use crate::keys::KeyPress;

/// A modifier the bar can hold for the next key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Modifier {
    Ctrl,
    Alt,
}

/// What a button of the bar does, by its `data-key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKey {
    /// Held for the next key (tapped again: let go).
    Hold(Modifier),
    /// A key, as `KeyboardEvent.key` names it.
    Key(&'static str),
}

/// The buttons' `data-key`s, in the order `static/index.html` shows them
/// (a test holds the page to it).
pub const BUTTONS: [&str; 12] = [
    "Escape",
    "Tab",
    "ctrl",
    "alt",
    "ArrowLeft",
    "ArrowUp",
    "ArrowDown",
    "ArrowRight",
    "|",
    "~",
    "/",
    "-",
];

/// The button named `data-key`, if the bar has it.
pub fn bar_key(name: &str) -> Option<BarKey> {
    match name {
        "ctrl" => Some(BarKey::Hold(Modifier::Ctrl)),
        "alt" => Some(BarKey::Hold(Modifier::Alt)),
        _ => BUTTONS
            .iter()
            .find(|key| **key == name)
            .map(|key| BarKey::Key(key)),
    }
}

/// Ctrl and Alt held by the bar until the next key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held {
    pub ctrl: bool,
    pub alt: bool,
}

impl Held {
    /// A tap on a modifier's button: held, or let go if it was.
    pub fn toggle(&mut self, modifier: Modifier) {
        match modifier {
            Modifier::Ctrl => self.ctrl = !self.ctrl,
            Modifier::Alt => self.alt = !self.alt,
        }
    }

    pub fn any(self) -> bool {
        self.ctrl || self.alt
    }

    /// `key` pressed with what is held, which is let go.
    pub fn press<'a>(&mut self, key: &'a str) -> KeyPress<'a> {
        let held = std::mem::take(self);
        KeyPress {
            key,
            code: "",
            ctrl: held.ctrl,
            alt: held.alt,
            shift: false,
            meta: false,
        }
    }

    /// Text typed on the on-screen keyboard while a modifier is held: one
    /// character is a key press with it (Ctrl + c is ^C); anything longer
    /// (a word from autocorrect) is typed as it is, and lets go.
    pub fn typed<'a>(&mut self, text: &'a str) -> Option<KeyPress<'a>> {
        if !self.any() {
            return None;
        }
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(_), None) => Some(self.press(text)),
            _ => {
                *self = Held::default();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use protocol::Modes;

    use super::*;
    use crate::keys::{KeyAction, encode_key};

    fn sent(press: &KeyPress<'_>) -> Vec<u8> {
        match encode_key(press, Modes(0)) {
            KeyAction::Send(bytes) => bytes,
            other => panic!("{press:?} gave {other:?}"),
        }
    }

    #[test]
    fn every_button_is_a_key_or_a_modifier_and_sends_what_its_key_does() {
        for name in BUTTONS {
            let key = bar_key(name).unwrap_or_else(|| panic!("{name}"));
            if let BarKey::Key(key) = key {
                assert!(!sent(&Held::default().press(key)).is_empty(), "{name}");
            }
        }
        assert_eq!(bar_key("nothing"), None);
        assert_eq!(sent(&Held::default().press("Escape")), b"\x1b");
        assert_eq!(sent(&Held::default().press("Tab")), b"\t");
        assert_eq!(sent(&Held::default().press("ArrowUp")), b"\x1b[A");
        assert_eq!(sent(&Held::default().press("|")), b"|");
    }

    #[test]
    fn the_pages_bar_has_exactly_these_buttons_in_this_order() {
        let page = include_str!("../../static/index.html");
        let bar = page
            .split("<div id=\"keybar\"")
            .nth(1)
            .and_then(|rest| rest.split("</div>").next())
            .expect("index.html has a #keybar");
        let keys: Vec<&str> = bar
            .split("data-key=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert_eq!(keys, BUTTONS);
    }

    #[test]
    fn a_held_modifier_applies_to_the_next_key_only() {
        let mut held = Held::default();
        held.toggle(Modifier::Ctrl);
        assert!(held.any());
        // Ctrl + c typed on the on-screen keyboard: an interrupt.
        let press = held.typed("c").unwrap();
        assert_eq!(sent(&press), b"\x03");
        assert!(!held.any());
        assert!(held.typed("c").is_none());
        // Alt + arrow from the bar, then nothing held.
        held.toggle(Modifier::Alt);
        assert_eq!(sent(&held.press("ArrowLeft")), b"\x1b[1;3D");
        assert!(!held.any());
        // Tapped twice: let go.
        held.toggle(Modifier::Ctrl);
        held.toggle(Modifier::Ctrl);
        assert!(!held.any());
        // A word from autocorrect is text; the modifier lets go.
        held.toggle(Modifier::Ctrl);
        assert!(held.typed("hello").is_none());
        assert!(!held.any());
    }
}
