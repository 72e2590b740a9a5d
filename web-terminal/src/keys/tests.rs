//! Key, paste, mouse and wheel encodings, byte for byte.

use super::*;

fn key(k: &str) -> KeyPress<'_> {
    KeyPress {
        key: k,
        ..KeyPress::default()
    }
}

fn send(k: &KeyPress<'_>, modes: u32) -> Vec<u8> {
    match encode_key(k, Modes(modes)) {
        KeyAction::Send(b) => b,
        other => panic!("{k:?} gave {other:?}"),
    }
}

#[test]
fn printable_characters() {
    assert_eq!(send(&key("a"), 0), b"a");
    assert_eq!(send(&key("é"), 0), "é".as_bytes());
    assert!(key("a").is_text());
    assert!(!key("Enter").is_text());
    assert!(
        !KeyPress {
            ctrl: true,
            ..key("a")
        }
        .is_text()
    );
}

#[test]
fn enter_backspace_tab_escape() {
    assert_eq!(send(&key("Enter"), 0), b"\r");
    assert_eq!(send(&key("Enter"), Modes::LINE_FEED_NEW_LINE), b"\r\n");
    assert_eq!(send(&key("Backspace"), 0), b"\x7f");
    assert_eq!(
        send(
            &KeyPress {
                ctrl: true,
                ..key("Backspace")
            },
            0
        ),
        b"\x08"
    );
    assert_eq!(send(&key("Tab"), 0), b"\t");
    assert_eq!(
        send(
            &KeyPress {
                shift: true,
                ..key("Tab")
            },
            0
        ),
        b"\x1b[Z"
    );
    assert_eq!(send(&key("Escape"), 0), b"\x1b");
}

#[test]
fn ctrl_letters_and_symbols() {
    let ctrl = |k: &'static str, code: &'static str| KeyPress {
        key: k,
        code,
        ctrl: true,
        ..KeyPress::default()
    };
    assert_eq!(send(&ctrl("c", "KeyC"), 0), [3]);
    assert_eq!(send(&ctrl("a", "KeyA"), 0), [1]);
    assert_eq!(send(&ctrl("z", "KeyZ"), 0), [26]);
    // A non-Latin layout still gets Ctrl+C through the physical key.
    assert_eq!(send(&ctrl("с", "KeyC"), 0), [3]);
    assert_eq!(send(&ctrl("[", "BracketLeft"), 0), [0x1b]);
    assert_eq!(send(&ctrl("\\", "Backslash"), 0), [0x1c]);
    assert_eq!(send(&ctrl("]", "BracketRight"), 0), [0x1d]);
    assert_eq!(send(&ctrl("^", "Digit6"), 0), [0x1e]);
    assert_eq!(send(&ctrl("_", "Minus"), 0), [0x1f]);
    assert_eq!(send(&ctrl("@", "Digit2"), 0), [0]);
    assert_eq!(send(&ctrl(" ", "Space"), 0), [0]);
    assert_eq!(
        encode_key(&ctrl("Control", "ControlLeft"), Modes(0)),
        KeyAction::Ignore
    );
}

#[test]
fn alt_prefixes_escape() {
    let alt = |k| KeyPress {
        alt: true,
        ..key(k)
    };
    assert_eq!(send(&alt("x"), 0), b"\x1bx");
    assert_eq!(send(&alt("Enter"), 0), b"\x1b\r");
    assert_eq!(send(&alt("Backspace"), 0), b"\x1b\x7f");
    let ctrl_alt = KeyPress {
        ctrl: true,
        code: "KeyB",
        ..alt("b")
    };
    assert_eq!(send(&ctrl_alt, 0), b"\x1b\x02");
}

#[test]
fn arrows_follow_app_cursor_mode_and_modifiers() {
    assert_eq!(send(&key("ArrowUp"), 0), b"\x1b[A");
    assert_eq!(send(&key("ArrowDown"), 0), b"\x1b[B");
    assert_eq!(send(&key("ArrowRight"), 0), b"\x1b[C");
    assert_eq!(send(&key("ArrowLeft"), 0), b"\x1b[D");
    assert_eq!(send(&key("ArrowUp"), Modes::APP_CURSOR), b"\x1bOA");
    let ctrl_up = KeyPress {
        ctrl: true,
        ..key("ArrowUp")
    };
    assert_eq!(send(&ctrl_up, 0), b"\x1b[1;5A");
    assert_eq!(send(&ctrl_up, Modes::APP_CURSOR), b"\x1b[1;5A");
    let shift_alt_left = KeyPress {
        shift: true,
        alt: true,
        ..key("ArrowLeft")
    };
    assert_eq!(send(&shift_alt_left, 0), b"\x1b[1;4D");
}

#[test]
fn home_end_insert_delete_pages() {
    assert_eq!(send(&key("Home"), 0), b"\x1b[H");
    assert_eq!(send(&key("End"), 0), b"\x1b[F");
    assert_eq!(send(&key("Home"), Modes::APP_CURSOR), b"\x1bOH");
    assert_eq!(send(&key("Insert"), 0), b"\x1b[2~");
    assert_eq!(send(&key("Delete"), 0), b"\x1b[3~");
    assert_eq!(send(&key("PageUp"), 0), b"\x1b[5~");
    assert_eq!(send(&key("PageDown"), 0), b"\x1b[6~");
    let ctrl_del = KeyPress {
        ctrl: true,
        ..key("Delete")
    };
    assert_eq!(send(&ctrl_del, 0), b"\x1b[3;5~");
}

#[test]
fn function_keys() {
    let expect: [(&str, &[u8]); 12] = [
        ("F1", b"\x1bOP"),
        ("F2", b"\x1bOQ"),
        ("F3", b"\x1bOR"),
        ("F4", b"\x1bOS"),
        ("F5", b"\x1b[15~"),
        ("F6", b"\x1b[17~"),
        ("F7", b"\x1b[18~"),
        ("F8", b"\x1b[19~"),
        ("F9", b"\x1b[20~"),
        ("F10", b"\x1b[21~"),
        ("F11", b"\x1b[23~"),
        ("F12", b"\x1b[24~"),
    ];
    for (k, bytes) in expect {
        assert_eq!(send(&key(k), 0), bytes, "{k}");
    }
    let shift_f1 = KeyPress {
        shift: true,
        ..key("F1")
    };
    assert_eq!(send(&shift_f1, 0), b"\x1b[1;2P");
    let ctrl_f5 = KeyPress {
        ctrl: true,
        ..key("F5")
    };
    assert_eq!(send(&ctrl_f5, 0), b"\x1b[15;5~");
}

#[test]
fn keypad_application_mode() {
    let kp = KeyPress {
        key: "1",
        code: "Numpad1",
        ..KeyPress::default()
    };
    assert_eq!(send(&kp, Modes::APP_KEYPAD), b"\x1bOq");
    assert_eq!(send(&kp, 0), b"1");
}

#[test]
fn shift_page_scrolls_the_view_and_clipboard_shortcuts() {
    let shift = |k| KeyPress {
        shift: true,
        ..key(k)
    };
    assert_eq!(
        encode_key(&shift("PageUp"), Modes(0)),
        KeyAction::ScrollPages(1)
    );
    assert_eq!(
        encode_key(&shift("PageDown"), Modes(0)),
        KeyAction::ScrollPages(-1)
    );
    let ctrl_shift = |k, code| KeyPress {
        key: k,
        code,
        ctrl: true,
        shift: true,
        ..KeyPress::default()
    };
    assert_eq!(
        encode_key(&ctrl_shift("C", "KeyC"), Modes(0)),
        KeyAction::Copy
    );
    assert_eq!(
        encode_key(&ctrl_shift("V", "KeyV"), Modes(0)),
        KeyAction::Paste
    );
    let cmd = |k, code| KeyPress {
        key: k,
        code,
        meta: true,
        ..KeyPress::default()
    };
    assert_eq!(encode_key(&cmd("c", "KeyC"), Modes(0)), KeyAction::Copy);
    assert_eq!(encode_key(&cmd("v", "KeyV"), Modes(0)), KeyAction::Paste);
    assert_eq!(encode_key(&cmd("t", "KeyT"), Modes(0)), KeyAction::Ignore);
    // Ctrl+Shift+other letters are still control characters.
    assert_eq!(send(&ctrl_shift("A", "KeyA"), 0), [1]);
}

#[test]
fn paste_normalises_newlines_and_brackets_safely() {
    assert_eq!(encode_paste("a\r\nb\nc", Modes(0)), b"a\rb\rc");
    assert_eq!(
        encode_paste("ls\n\x1b[201~rm -rf /\n", Modes(Modes::BRACKETED_PASTE)),
        b"\x1b[200~ls\r[201~rm -rf /\r\x1b[201~"
    );
    assert_eq!(encode_text("x\ny"), b"x\ry");
}

#[test]
fn focus_reports_only_when_asked() {
    assert_eq!(encode_focus(true, Modes(0)), None);
    assert_eq!(
        encode_focus(true, Modes(Modes::FOCUS_EVENTS)),
        Some(b"\x1b[I".to_vec())
    );
    assert_eq!(
        encode_focus(false, Modes(Modes::FOCUS_EVENTS)),
        Some(b"\x1b[O".to_vec())
    );
}

fn report(kind: MouseKind, button: MouseButton, row: u16, col: u16) -> MouseReport {
    MouseReport {
        kind,
        button,
        row,
        col,
        shift: false,
        alt: false,
        ctrl: false,
    }
}

#[test]
fn mouse_sgr() {
    let m = Modes(Modes::MOUSE_CLICK | Modes::SGR_MOUSE);
    let press = report(MouseKind::Press, MouseButton::Left, 4, 9);
    assert_eq!(encode_mouse(&press, m), Some(b"\x1b[<0;10;5M".to_vec()));
    let release = report(MouseKind::Release, MouseButton::Right, 0, 0);
    assert_eq!(encode_mouse(&release, m), Some(b"\x1b[<2;1;1m".to_vec()));
    let ctrl_middle = MouseReport {
        ctrl: true,
        ..report(MouseKind::Press, MouseButton::Middle, 0, 299)
    };
    assert_eq!(
        encode_mouse(&ctrl_middle, m),
        Some(b"\x1b[<17;300;1M".to_vec())
    );
    // Click mode does not report drags; drag mode does.
    let drag = report(MouseKind::Motion, MouseButton::Left, 1, 1);
    assert_eq!(encode_mouse(&drag, m), None);
    let m_drag = Modes(Modes::MOUSE_DRAG | Modes::SGR_MOUSE);
    assert_eq!(encode_mouse(&drag, m_drag), Some(b"\x1b[<32;2;2M".to_vec()));
    let hover = report(MouseKind::Motion, MouseButton::None, 1, 1);
    assert_eq!(encode_mouse(&hover, m_drag), None);
    let m_any = Modes(Modes::MOUSE_MOTION | Modes::SGR_MOUSE);
    assert_eq!(encode_mouse(&hover, m_any), Some(b"\x1b[<35;2;2M".to_vec()));
    // Nothing at all without a reporting mode.
    assert_eq!(encode_mouse(&press, Modes(Modes::SGR_MOUSE)), None);
}

#[test]
fn mouse_legacy_and_utf8() {
    let m = Modes(Modes::MOUSE_CLICK);
    let press = report(MouseKind::Press, MouseButton::Left, 0, 0);
    assert_eq!(encode_mouse(&press, m), Some(b"\x1b[M !!".to_vec()));
    let release = report(MouseKind::Release, MouseButton::Left, 2, 3);
    assert_eq!(encode_mouse(&release, m), Some(b"\x1b[M#$#".to_vec()));
    let far = report(MouseKind::Press, MouseButton::Left, 0, 250);
    assert_eq!(encode_mouse(&far, m), None);
    let m8 = Modes(Modes::MOUSE_CLICK | Modes::UTF8_MOUSE);
    // Column 250 is 250 + 1 + 32 = 283 = U+011B, two bytes in UTF-8.
    assert_eq!(
        encode_mouse(&report(MouseKind::Press, MouseButton::Left, 0, 250), m8),
        Some(b"\x1b[M \xc4\x9b!".to_vec())
    );
}

#[test]
fn wheel_reports_arrows_or_scrolls() {
    let sgr = Modes(Modes::MOUSE_CLICK | Modes::SGR_MOUSE);
    assert_eq!(
        wheel_action(1, 0, 0, false, sgr),
        WheelAction::Send(b"\x1b[<64;1;1M".to_vec())
    );
    assert_eq!(
        wheel_action(-2, 1, 1, false, sgr),
        WheelAction::Send(b"\x1b[<65;2;2M\x1b[<65;2;2M".to_vec())
    );
    let alt = Modes(Modes::ALT_SCREEN | Modes::ALTERNATE_SCROLL);
    assert_eq!(
        wheel_action(2, 0, 0, false, alt),
        WheelAction::Send(b"\x1b[A\x1b[A".to_vec())
    );
    let alt_app = Modes(alt.0 | Modes::APP_CURSOR);
    assert_eq!(
        wheel_action(-1, 0, 0, false, alt_app),
        WheelAction::Send(b"\x1bOB".to_vec())
    );
    assert_eq!(
        wheel_action(3, 0, 0, false, Modes(0)),
        WheelAction::ScrollView(3)
    );
    assert_eq!(
        wheel_action(3, 0, 0, false, Modes(Modes::ALT_SCREEN)),
        WheelAction::ScrollView(3)
    );
    assert_eq!(
        wheel_action(-3, 0, 0, true, sgr),
        WheelAction::ScrollView(-3)
    );
}

#[test]
fn a_paste_that_would_run_commands_asks_first_unless_bracketed() {
    let plain = Modes(0);
    assert_eq!(paste_needs_consent("just words", plain), None);
    assert_eq!(paste_needs_consent("ls\n", plain), Some(1));
    assert_eq!(paste_needs_consent("ls\r\n", plain), Some(1));
    assert_eq!(paste_needs_consent("a\nb", plain), Some(2));
    assert_eq!(paste_needs_consent("a\r\nb\rc\n", plain), Some(3));
    let bracketed = Modes(Modes::BRACKETED_PASTE);
    assert_eq!(paste_needs_consent("a\nb\nc\n", bracketed), None);
}

#[test]
fn paste_texts_say_how_much() {
    assert!(paste_question(1, 3).starts_with("Paste 1 line ending in Enter (3 B)"));
    assert!(paste_question(100_000, 1_088_890).starts_with("Paste 100000 lines (1.1 MB)"));
    assert_eq!(paste_progress(4_200), "pasting: 4.2 KB to go (Esc stops)");
    assert_eq!(human_bytes(999), "999 B");
    assert_eq!(human_bytes(1_000), "1.0 KB");
    assert_eq!(human_bytes(2_500_000), "2.5 MB");
}

#[test]
fn zoom_keys_change_the_font_and_their_neighbours_still_reach_the_program() {
    let ctrl = |k| KeyPress {
        ctrl: true,
        ..key(k)
    };
    let zoom = |press: &KeyPress<'_>| match encode_key(press, Modes(0)) {
        KeyAction::Zoom(z) => Some(z),
        _ => None,
    };
    assert_eq!(zoom(&ctrl("=")), Some(Zoom::In));
    assert_eq!(
        zoom(&KeyPress {
            shift: true,
            ..ctrl("+")
        }),
        Some(Zoom::In)
    );
    assert_eq!(zoom(&ctrl("-")), Some(Zoom::Out));
    assert_eq!(zoom(&ctrl("0")), Some(Zoom::Reset));
    let cmd = KeyPress {
        meta: true,
        ..key("=")
    };
    assert_eq!(zoom(&cmd), Some(Zoom::In));
    // Ctrl+_ is readline's undo; Ctrl+Alt and plain keys are text or keys.
    assert_eq!(
        send(
            &KeyPress {
                shift: true,
                ..ctrl("_")
            },
            0
        ),
        b"\x1f"
    );
    assert_eq!(
        zoom(&KeyPress {
            shift: true,
            ..ctrl("-")
        }),
        None
    );
    assert_eq!(
        zoom(&KeyPress {
            alt: true,
            ..ctrl("=")
        }),
        None
    );
    assert_eq!(zoom(&key("=")), None);
    assert_eq!(zoom(&key("0")), None);
}
