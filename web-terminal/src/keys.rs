//! Turning keyboard, paste, mouse and wheel events into terminal input bytes.
//!
//! What a key sends depends on the modes the program set (application
//! cursor keys, bracketed paste, mouse reporting...), and getting one byte
//! wrong breaks vim or readline in ways that are hard to see. So encoding is
//! a set of pure functions of an event description and the current `Modes`,
//! tested natively, and the browser glue only fills in the description.

use protocol::Modes;

use crate::numbers::fixed;
use crate::settings::Zoom;

const ESC: u8 = 0x1b;

/// A key press, described with the fields of a DOM `KeyboardEvent`.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyPress<'a> {
    /// `KeyboardEvent.key`: `"a"`, `"A"`, `"Enter"`, `"ArrowUp"`...
    pub key: &'a str,
    /// `KeyboardEvent.code`: the physical key, `"KeyA"`, `"Digit2"`...
    pub code: &'a str,
    pub ctrl: bool,
    pub alt: bool,
    pub shift: bool,
    pub meta: bool,
}

/// What the client does with a key press.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyAction {
    /// Send these bytes to the program.
    Send(Vec<u8>),
    /// Copy the selection to the clipboard (Ctrl+Shift+C, Cmd+C).
    Copy,
    /// Let the browser paste (Ctrl+Shift+V, Cmd+V); the paste event follows.
    Paste,
    /// Open the search bar over the scrollback (Ctrl+Shift+F, Cmd+F).
    Search,
    /// Change the font size (Ctrl+= or Ctrl++, Ctrl+-, Ctrl+0; Cmd on
    /// macOS), instead of the browser's zoom, and save it in the settings.
    Zoom(Zoom),
    /// Scroll the client's scrollback view by pages (Shift+PageUp/Down);
    /// positive goes back in history.
    ScrollPages(i8),
    /// Not for the terminal: leave it to the browser.
    Ignore,
}

impl KeyPress<'_> {
    /// The xterm modifier parameter: 1 + shift + 2*alt + 4*ctrl + 8*meta.
    fn modifier_param(&self) -> u8 {
        1 + u8::from(self.shift)
            + 2 * u8::from(self.alt)
            + 4 * u8::from(self.ctrl)
            + 8 * u8::from(self.meta)
    }

    fn single_char(&self) -> Option<char> {
        let mut chars = self.key.chars();
        let c = chars.next()?;
        chars.next().is_none().then_some(c)
    }

    /// Whether this press produces text that the browser will deliver
    /// through an `input` event (so IME and dead keys work): a single
    /// character with no Ctrl, Alt or Meta held.
    pub fn is_text(&self) -> bool {
        self.single_char().is_some() && !self.ctrl && !self.alt && !self.meta
    }
}

/// Encodes a key press for the program.
pub fn encode_key(key: &KeyPress<'_>, modes: Modes) -> KeyAction {
    let letter = key
        .single_char()
        .map(|c| c.to_ascii_lowercase())
        .filter(char::is_ascii_lowercase)
        .or_else(|| code_letter(key.code));
    // Clipboard shortcuts: Ctrl+Shift+C/V everywhere, Cmd+C/V on macOS.
    // Plain Ctrl+C stays an interrupt for the program.
    let ctrl_shift = key.ctrl && key.shift;
    let cmd = key.meta && !key.ctrl;
    if !key.alt && (ctrl_shift || cmd) {
        match letter {
            Some('c') => return KeyAction::Copy,
            Some('v') => return KeyAction::Paste,
            Some('f') => return KeyAction::Search,
            _ => {}
        }
    }
    // Zoom keys, unshifted but for the "+" that needs Shift on many
    // layouts; Ctrl+_ (Ctrl+Shift+-) stays readline's undo.
    if (key.ctrl ^ key.meta) && !key.alt {
        let zoom = match (key.key, key.shift) {
            ("=" | "+", _) => Some(Zoom::In),
            ("-", false) => Some(Zoom::Out),
            ("0", false) => Some(Zoom::Reset),
            _ => None,
        };
        if let Some(zoom) = zoom {
            return KeyAction::Zoom(zoom);
        }
    }
    if key.meta
        && !matches!(
            key.key,
            "ArrowUp" | "ArrowDown" | "ArrowLeft" | "ArrowRight"
        )
    {
        // Cmd combinations belong to the browser and the OS.
        return KeyAction::Ignore;
    }
    if key.shift && !key.ctrl && !key.alt {
        match key.key {
            "PageUp" => return KeyAction::ScrollPages(1),
            "PageDown" => return KeyAction::ScrollPages(-1),
            _ => {}
        }
    }
    if let Some(bytes) = special_key(key, modes) {
        return KeyAction::Send(bytes);
    }
    let Some(ch) = key.single_char() else {
        return KeyAction::Ignore;
    };
    let mut out = Vec::with_capacity(4);
    if key.alt {
        out.push(ESC);
    }
    if key.ctrl {
        match ctrl_byte(ch, letter, key.code) {
            Some(b) => out.push(b),
            None => return KeyAction::Ignore,
        }
    } else {
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }
    KeyAction::Send(out)
}

/// The letter printed on a key, for layouts whose `key` is not Latin.
fn code_letter(code: &str) -> Option<char> {
    let c = code.strip_prefix("Key")?.chars().next()?;
    (code.len() == 4).then(|| c.to_ascii_lowercase())
}

/// The control character Ctrl plus this key sends, as xterm does.
fn ctrl_byte(ch: char, letter: Option<char>, code: &str) -> Option<u8> {
    if let Some(l) = letter {
        return Some(l as u8 - b'a' + 1);
    }
    Some(match ch {
        '@' | ' ' | '2' | '`' => 0,
        '[' | '3' | '{' => 0x1b,
        '\\' | '4' | '|' => 0x1c,
        ']' | '5' | '}' => 0x1d,
        '^' | '6' | '~' => 0x1e,
        '_' | '-' | '/' | '7' | '?' => 0x1f,
        '8' => 0x7f,
        _ if code == "Space" => 0,
        _ => return None,
    })
}

/// Keys with a name rather than a character.
fn special_key(key: &KeyPress<'_>, modes: Modes) -> Option<Vec<u8>> {
    let m = key.modifier_param();
    let app_cursor = modes.has(Modes::APP_CURSOR);
    let alt_prefix = |bytes: &[u8]| {
        let mut out = Vec::with_capacity(bytes.len() + 1);
        if key.alt {
            out.push(ESC);
        }
        out.extend_from_slice(bytes);
        out
    };
    // `CSI 1;m X` with modifiers, else `CSI X` or `SS3 X`.
    let letter_key = |final_byte: u8, ss3: bool| -> Vec<u8> {
        if m > 1 {
            format!("\x1b[1;{m}{}", final_byte as char).into_bytes()
        } else if ss3 {
            vec![ESC, b'O', final_byte]
        } else {
            vec![ESC, b'[', final_byte]
        }
    };
    // `CSI n;m ~` with modifiers, else `CSI n ~`.
    let tilde_key = |n: u8| -> Vec<u8> {
        if m > 1 {
            format!("\x1b[{n};{m}~").into_bytes()
        } else {
            format!("\x1b[{n}~").into_bytes()
        }
    };
    if modes.has(Modes::APP_KEYPAD)
        && !key.ctrl
        && !key.alt
        && !key.shift
        && let Some(b) = keypad_app(key.code)
    {
        return Some(vec![ESC, b'O', b]);
    }
    let bytes = match key.key {
        "Enter" => {
            if modes.has(Modes::LINE_FEED_NEW_LINE) {
                alt_prefix(b"\r\n")
            } else {
                alt_prefix(b"\r")
            }
        }
        "Backspace" => alt_prefix(if key.ctrl { b"\x08" } else { b"\x7f" }),
        "Tab" if key.shift => b"\x1b[Z".to_vec(),
        "Tab" => alt_prefix(b"\t"),
        "Escape" => alt_prefix(b"\x1b"),
        "ArrowUp" => letter_key(b'A', app_cursor),
        "ArrowDown" => letter_key(b'B', app_cursor),
        "ArrowRight" => letter_key(b'C', app_cursor),
        "ArrowLeft" => letter_key(b'D', app_cursor),
        "Home" => letter_key(b'H', app_cursor),
        "End" => letter_key(b'F', app_cursor),
        "Insert" => tilde_key(2),
        "Delete" => tilde_key(3),
        "PageUp" => tilde_key(5),
        "PageDown" => tilde_key(6),
        "F1" => letter_key(b'P', true),
        "F2" => letter_key(b'Q', true),
        "F3" => letter_key(b'R', true),
        "F4" => letter_key(b'S', true),
        "F5" => tilde_key(15),
        "F6" => tilde_key(17),
        "F7" => tilde_key(18),
        "F8" => tilde_key(19),
        "F9" => tilde_key(20),
        "F10" => tilde_key(21),
        "F11" => tilde_key(23),
        "F12" => tilde_key(24),
        _ => return None,
    };
    Some(bytes)
}

/// DECKPAM: the numeric keypad's application sequences (`SS3 x`).
fn keypad_app(code: &str) -> Option<u8> {
    Some(match code {
        "Numpad0" => b'p',
        "Numpad1" => b'q',
        "Numpad2" => b'r',
        "Numpad3" => b's',
        "Numpad4" => b't',
        "Numpad5" => b'u',
        "Numpad6" => b'v',
        "Numpad7" => b'w',
        "Numpad8" => b'x',
        "Numpad9" => b'y',
        "NumpadMultiply" => b'j',
        "NumpadAdd" => b'k',
        "NumpadSubtract" => b'm',
        "NumpadDecimal" => b'n',
        "NumpadDivide" => b'o',
        "NumpadEnter" => b'M',
        _ => return None,
    })
}

/// Text typed or composed (IME): newlines become CR, as a key would send.
pub fn encode_text(text: &str) -> Vec<u8> {
    normalise_newlines(text).into_bytes()
}

fn normalise_newlines(text: &str) -> String {
    text.replace("\r\n", "\r").replace('\n', "\r")
}

/// A paste. With bracketed paste on, the text is wrapped so the program can
/// tell it from typing, and every ESC inside is removed so pasted text can
/// never end the bracket early and smuggle in commands.
pub fn encode_paste(text: &str, modes: Modes) -> Vec<u8> {
    let text = normalise_newlines(text);
    if modes.has(Modes::BRACKETED_PASTE) {
        let mut out = Vec::with_capacity(text.len() + 12);
        out.extend_from_slice(b"\x1b[200~");
        out.extend(text.bytes().filter(|&b| b != ESC));
        out.extend_from_slice(b"\x1b[201~");
        out
    } else {
        text.into_bytes()
    }
}

/// Lines in a paste that a program which did not ask for bracketed paste
/// would take as typed, Enter included: `Some(lines)` when the page should
/// ask before pasting (a shell runs every one of them at once).
pub fn paste_needs_consent(text: &str, modes: Modes) -> Option<usize> {
    if modes.has(Modes::BRACKETED_PASTE) {
        return None;
    }
    let breaks = normalise_newlines(text)
        .bytes()
        .filter(|&b| b == b'\r')
        .count();
    (breaks > 0).then(|| {
        // "ls\n" is one line that runs; "a\nb" two lines, one still open.
        breaks + usize::from(!text.ends_with(['\n', '\r']))
    })
}

/// What the page asks before such a paste.
pub fn paste_question(lines: usize, bytes: usize) -> String {
    let what = if lines == 1 {
        "1 line ending in Enter".to_owned()
    } else {
        format!("{lines} lines")
    };
    format!(
        "Paste {what} ({}) into a program that did not ask for pasted text? It takes them as typed. Enter pastes, Esc cancels.",
        human_bytes(bytes)
    )
}

/// What the page shows while a long paste streams to the program.
pub fn paste_progress(waiting: usize) -> String {
    format!("pasting: {} to go (Esc stops)", human_bytes(waiting))
}

/// `bytes` for people: "812 B", "3.4 KB", "1.2 MB".
pub fn human_bytes(bytes: usize) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{} KB", fixed(bytes as f64 / 1e3, 1)),
        _ => format!("{} MB", fixed(bytes as f64 / 1e6, 1)),
    }
}

/// Focus reporting (mode 1004).
pub fn encode_focus(focused: bool, modes: Modes) -> Option<Vec<u8>> {
    modes.has(Modes::FOCUS_EVENTS).then(|| {
        if focused {
            b"\x1b[I".to_vec()
        } else {
            b"\x1b[O".to_vec()
        }
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MouseButton {
    Left,
    Middle,
    Right,
    /// Motion with no button held.
    None,
    WheelUp,
    WheelDown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MouseKind {
    Press,
    Release,
    Motion,
}

/// A mouse event on the grid; `row` and `col` count from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MouseReport {
    pub kind: MouseKind,
    pub button: MouseButton,
    pub row: u16,
    pub col: u16,
    pub shift: bool,
    pub alt: bool,
    pub ctrl: bool,
}

/// Encodes a mouse event if the program asked for that kind of event, in
/// the encoding it asked for (SGR 1006, UTF-8 1005 or legacy X10).
pub fn encode_mouse(ev: &MouseReport, modes: Modes) -> Option<Vec<u8>> {
    let wanted = match ev.kind {
        MouseKind::Press | MouseKind::Release => modes.mouse_reporting(),
        MouseKind::Motion if ev.button == MouseButton::None => modes.has(Modes::MOUSE_MOTION),
        MouseKind::Motion => modes.has(Modes::MOUSE_DRAG | Modes::MOUSE_MOTION),
    };
    let is_wheel = matches!(ev.button, MouseButton::WheelUp | MouseButton::WheelDown);
    if !wanted || (is_wheel && ev.kind != MouseKind::Press) {
        return None;
    }
    let sgr = modes.has(Modes::SGR_MOUSE);
    let mut cb: u32 = match ev.button {
        MouseButton::Left => 0,
        MouseButton::Middle => 1,
        MouseButton::Right => 2,
        MouseButton::None => 3,
        MouseButton::WheelUp => 64,
        MouseButton::WheelDown => 65,
    };
    if ev.kind == MouseKind::Release && !sgr {
        // Legacy encodings cannot say which button was released.
        cb = 3;
    }
    cb += 4 * u32::from(ev.shift) + 8 * u32::from(ev.alt) + 16 * u32::from(ev.ctrl);
    if ev.kind == MouseKind::Motion {
        cb += 32;
    }
    let x = u32::from(ev.col) + 1;
    let y = u32::from(ev.row) + 1;
    if sgr {
        let end = if ev.kind == MouseKind::Release {
            'm'
        } else {
            'M'
        };
        return Some(format!("\x1b[<{cb};{x};{y}{end}").into_bytes());
    }
    let mut out = b"\x1b[M".to_vec();
    if modes.has(Modes::UTF8_MOUSE) {
        for v in [cb + 32, x + 32, y + 32] {
            // 1005 encodes each value as one UTF-8 character, up to 2047.
            let c = char::from_u32(v).filter(|_| v < 2048)?;
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    } else {
        for v in [cb + 32, x + 32, y + 32] {
            // X10 coordinates end at 223; xterm sends nothing beyond that.
            out.push(u8::try_from(v).ok()?);
        }
    }
    Some(out)
}

/// What a wheel turn does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WheelAction {
    /// Send these bytes (mouse reports or arrow keys).
    Send(Vec<u8>),
    /// Scroll the client's scrollback view; positive goes back in history.
    ScrollView(isize),
}

/// A wheel turn of `lines` lines (positive = up, away from the user) at a
/// cell. Mouse-reporting programs get wheel buttons 64/65; a full-screen
/// program on the alternate screen with mode 1007 gets arrow keys; otherwise
/// the client scrolls its own scrollback. Shift always scrolls the view.
pub fn wheel_action(lines: i32, row: u16, col: u16, shift: bool, modes: Modes) -> WheelAction {
    let count = lines.unsigned_abs().min(100) as usize;
    if lines == 0 || shift {
        return WheelAction::ScrollView(lines as isize);
    }
    if modes.mouse_reporting() {
        let report = MouseReport {
            kind: MouseKind::Press,
            button: if lines > 0 {
                MouseButton::WheelUp
            } else {
                MouseButton::WheelDown
            },
            row,
            col,
            shift: false,
            alt: false,
            ctrl: false,
        };
        return match encode_mouse(&report, modes) {
            Some(bytes) => WheelAction::Send(bytes.repeat(count)),
            None => WheelAction::Send(Vec::new()),
        };
    }
    if modes.has(Modes::ALT_SCREEN) && modes.has(Modes::ALTERNATE_SCROLL) {
        let key = KeyPress {
            key: if lines > 0 { "ArrowUp" } else { "ArrowDown" },
            ..KeyPress::default()
        };
        let bytes = special_key(&key, modes).unwrap_or_default();
        return WheelAction::Send(bytes.repeat(count));
    }
    WheelAction::ScrollView(lines as isize)
}

#[cfg(test)]
mod tests;
