//! Requests a program makes of the user's browser that alacritty's parser
//! drops as unknown OSCs: desktop notifications, OSC 9 (iTerm2's `ESC ] 9
//! ; text BEL`) and OSC 777 (`ESC ] 777 ; notify ; title ; body BEL`, as
//! rxvt and foot take it), so a long job can say it finished; and
//! Thinline's own OSC 8445 (`ESC ] 8445 ; download ; KEY ; HEX-PATH BEL`),
//! which `tl-download` writes to hand the user a file (`crate::files`).
//!
//! This scan runs beside
//! it over the same bytes. It costs one `memchr` for ESC per chunk on the
//! common path (output without escape sequences), keeps at most
//! [`MAX_OSC`] bytes of a sequence that starts like one of the two, and
//! only skips to the terminator of any other, so a flood pays next to
//! nothing and a sequence split across reads is still found.

use protocol::Notification;

/// Longest sequence kept (a download's path is 4096 bytes at most, twice
/// that in hex); a longer one is dropped.
pub const MAX_OSC: usize = 8448;
/// Longest path a download request names, in bytes (Linux's `PATH_MAX`).
const MAX_PATH: usize = 4096;

/// What a program asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Notify(Notification),
    /// Hand the user the file at `path` (as the program sees it), if `key`
    /// is the session's download key.
    Download {
        key: String,
        path: Vec<u8>,
    },
}
/// Longest title or body passed on, in characters.
const MAX_TEXT: usize = 512;

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Outside any escape sequence.
    Ground,
    /// After ESC.
    Escape,
    /// Inside an OSC that may be a notification: bytes go to the buffer.
    Keep,
    /// Inside an OSC that is not one (or grew too long): bytes are skipped.
    Skip,
    /// After ESC inside an OSC: `\` ends it (ST), anything else aborts it.
    KeepEscape,
    SkipEscape,
}

/// Finds notification requests in a program's output, across reads.
#[derive(Debug)]
pub struct NotifyScanner {
    state: State,
    buf: Vec<u8>,
}

impl Default for NotifyScanner {
    fn default() -> Self {
        NotifyScanner {
            state: State::Ground,
            buf: Vec::new(),
        }
    }
}

impl NotifyScanner {
    /// Scans the next `bytes` of output, adding each notification they
    /// complete to `out`.
    pub fn scan(&mut self, bytes: &[u8], out: &mut Vec<Request>) {
        let mut i = 0;
        while i < bytes.len() {
            if self.state == State::Ground {
                match memchr::memchr(ESC, &bytes[i..]) {
                    Some(at) => {
                        i += at + 1;
                        self.state = State::Escape;
                    }
                    None => return,
                }
                continue;
            }
            let byte = bytes[i];
            i += 1;
            self.state = match self.state {
                State::Ground => State::Ground,
                State::Escape => match byte {
                    b']' => {
                        self.buf.clear();
                        State::Keep
                    }
                    ESC => State::Escape,
                    _ => State::Ground,
                },
                State::Keep | State::Skip => match byte {
                    BEL => self.end(out),
                    ESC if self.state == State::Keep => State::KeepEscape,
                    ESC => State::SkipEscape,
                    CAN | SUB => State::Ground,
                    _ if self.state == State::Skip => State::Skip,
                    _ => {
                        self.buf.push(byte);
                        if self.may_notify() {
                            State::Keep
                        } else {
                            State::Skip
                        }
                    }
                },
                State::KeepEscape | State::SkipEscape => match byte {
                    b'\\' => self.end(out),
                    // ESC ends the OSC unfinished and starts a new sequence.
                    b']' => {
                        self.buf.clear();
                        State::Keep
                    }
                    ESC => State::Escape,
                    _ => State::Ground,
                },
            };
        }
    }

    /// Whether the OSC collected so far can still be a request.
    fn may_notify(&self) -> bool {
        let buf = &self.buf[..];
        buf.len() <= MAX_OSC
            && ["9;", "777;notify;", "8445;download;"]
                .iter()
                .any(|prefix| {
                    let n = buf.len().min(prefix.len());
                    buf[..n] == prefix.as_bytes()[..n]
                })
    }

    /// The OSC ended: a notification if it is one.
    fn end(&mut self, out: &mut Vec<Request>) -> State {
        if self.state == State::Keep || self.state == State::KeepEscape {
            out.extend(parse(&self.buf));
        }
        self.buf.clear();
        self.buf.shrink_to(64);
        State::Ground
    }
}

/// A whole OSC body (between `ESC ]` and its terminator) as a request,
/// if it is one.
fn parse(osc: &[u8]) -> Option<Request> {
    if let Some(rest) = osc.strip_prefix(b"8445;download;") {
        let text = std::str::from_utf8(rest).ok()?;
        let (key, hex) = text.split_once(';')?;
        let path = unhex(hex)?;
        return (!key.is_empty() && !path.is_empty() && path.len() <= MAX_PATH).then(|| {
            Request::Download {
                key: key.to_owned(),
                path,
            }
        });
    }
    parse_notification(osc).map(Request::Notify)
}

/// `hex` (two digits a byte, either case) as bytes.
fn unhex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
        .collect()
}

fn parse_notification(osc: &[u8]) -> Option<Notification> {
    let text = String::from_utf8_lossy(osc);
    if let Some(rest) = text.strip_prefix("777;notify;") {
        let (title, body) = rest.split_once(';').unwrap_or((rest, ""));
        return Some(Notification {
            title: clean(title),
            body: clean(body),
        });
    }
    let body = text.strip_prefix("9;")?;
    // ConEmu's and Windows Terminal's OSC 9 subcommands (9;4;... is a
    // progress bar, 9;9;... the working directory) are numbers then ';'.
    let subcommand = body
        .split_once(';')
        .is_some_and(|(head, _)| !head.is_empty() && head.bytes().all(|b| b.is_ascii_digit()));
    if subcommand || body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Notification {
        title: String::new(),
        body: clean(body),
    })
}

/// Control characters out, length bounded: the text is shown by the
/// browser, never fed to a terminal, but it should read as one line.
fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_requests(chunks: &[&[u8]]) -> Vec<Request> {
        let mut scanner = NotifyScanner::default();
        let mut out = Vec::new();
        for chunk in chunks {
            scanner.scan(chunk, &mut out);
        }
        out
    }

    fn scan_all(chunks: &[&[u8]]) -> Vec<Notification> {
        scan_requests(chunks)
            .into_iter()
            .map(|request| match request {
                Request::Notify(note) => note,
                other => panic!("not a notification: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn download_requests_carry_their_key_and_path() {
        // What tl-download writes for /home/ada/r é.pdf.
        let path = "/home/ada/r é.pdf";
        let hex: String = path.bytes().map(|b| format!("{b:02x}")).collect();
        let osc = format!("ls\r\n\x1b]8445;download;k3y;{hex}\x07$ ");
        let chunks: Vec<&[u8]> = osc.as_bytes().chunks(3).collect();
        assert_eq!(
            scan_requests(&chunks),
            [Request::Download {
                key: "k3y".into(),
                path: path.as_bytes().to_vec(),
            }]
        );
        for bad in [
            &b"\x1b]8445;download;k3y;2f6\x07"[..],
            b"\x1b]8445;download;k3y;zz\x07",
            b"\x1b]8445;download;;2f\x07",
            b"\x1b]8445;download;k3y;\x07",
            b"\x1b]8445;downloads;k;2f\x07",
        ] {
            assert_eq!(scan_requests(&[bad]), [], "{bad:?}");
        }
        let mut long = b"\x1b]8445;download;k;".to_vec();
        long.extend(std::iter::repeat_n(b'2', 2 * MAX_PATH + 2));
        long.push(BEL);
        assert_eq!(scan_requests(&[&long]), []);
    }

    fn note(title: &str, body: &str) -> Notification {
        Notification {
            title: title.into(),
            body: body.into(),
        }
    }

    #[test]
    fn both_forms_with_both_terminators() {
        assert_eq!(
            scan_all(&[b"make: done\x1b]9;build finished\x07$ "]),
            [note("", "build finished")]
        );
        assert_eq!(
            scan_all(&[b"\x1b]777;notify;make;all 12 targets built\x1b\\"]),
            [note("make", "all 12 targets built")]
        );
        assert_eq!(
            scan_all(&[b"\x1b]777;notify;only a title\x07"]),
            [note("only a title", "")]
        );
    }

    #[test]
    fn a_sequence_split_across_reads_is_found_byte_by_byte() {
        let whole = b"out\x1b]777;notify;tests;green \xe2\x9c\x93\x1b\\more\x1b]9;x\x07";
        let chunks: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(
            scan_all(&chunks),
            [note("tests", "green \u{2713}"), note("", "x")]
        );
    }

    #[test]
    fn other_sequences_and_subcommands_are_not_notifications() {
        for output in [
            &b"\x1b]0;a title\x07"[..],
            b"\x1b]52;c;eWFuaw==\x07",
            b"\x1b]9;4;1;50\x07",
            b"\x1b]9;9;/home/ada\x07",
            b"\x1b]9;12\x07",
            b"\x1b]777;preexec\x07",
            b"\x1b[31mred\x1b[0m \x1b]8;;http://x\x07link\x1b]8;;\x07",
            // Cancelled, or cut short by a new sequence.
            b"\x1b]9;never\x18\x1b]9;nor\x1b[1m",
        ] {
            assert_eq!(scan_all(&[output]), [], "{output:?}");
        }
    }

    #[test]
    fn control_characters_go_and_text_is_bounded() {
        let mut long = b"\x1b]9;".to_vec();
        long.extend(std::iter::repeat_n(b'a', 1000));
        long.push(BEL);
        let found = scan_all(&[b"\x1b]9;two\tparts\x07", &long]);
        assert_eq!(found[0], note("", "twoparts"));
        assert_eq!(found[1].body.len(), MAX_TEXT);
        // Beyond MAX_OSC: dropped, and the scan goes on after it.
        let mut huge = b"\x1b]9;".to_vec();
        huge.extend(std::iter::repeat_n(b'b', MAX_OSC + 10));
        huge.extend_from_slice(b"\x07\x1b]9;after\x07");
        assert_eq!(scan_all(&[&huge]), [note("", "after")]);
    }

    #[test]
    fn a_long_other_sequence_is_skipped_without_being_kept() {
        let mut scanner = NotifyScanner::default();
        let mut out = Vec::new();
        let mut title = b"\x1b]2;".to_vec();
        title.extend(std::iter::repeat_n(b't', 100_000));
        scanner.scan(&title, &mut out);
        assert!(scanner.buf.len() <= 2, "kept {} bytes", scanner.buf.len());
        scanner.scan(b"\x07\x1b]9;next\x07", &mut out);
        assert_eq!(out, [Request::Notify(note("", "next"))]);
    }
}
