//! Pinned bytes, round trips and hostile input for the codec.

use crate::codec::encode_hello_with_version;
use crate::*;

fn hello() -> Hello {
    Hello {
        ticket: "t".into(),
        session: SessionId([7; 16]),
        size: Size { cols: 80, rows: 24 },
    }
}

fn sample_frame() -> Frame {
    Frame {
        seq: 1,
        size: Size { cols: 80, rows: 24 },
        full: false,
        scrolled: vec![],
        rows: vec![RowUpdate {
            row: 0,
            line: Line {
                runs: vec![Run {
                    style: Style::default(),
                    layout: CellLayout::Narrow,
                    text: "hi".into(),
                }],
                wrapped: false,
            },
            links: vec![],
        }],
        cursor: Cursor {
            row: 0,
            col: 2,
            shape: CursorShape::Block,
            visible: true,
            blink: false,
        },
        modes: Modes(0),
        title: None,
        bell: false,
        clipboard: None,
        notification: None,
        echo_ack: 300,
        tty: TtyModes(TtyModes::ECHO | TtyModes::CANONICAL),
    }
}

fn rich_frame() -> Frame {
    let styled = Style {
        fg: Color::Rgb(255, 128, 0),
        bg: Color::Indexed(4),
        flags: StyleFlags(StyleFlags::BOLD | StyleFlags::UNDERLINE),
    };
    let line = Line {
        runs: vec![
            Run {
                style: styled,
                layout: CellLayout::Narrow,
                text: "ok ".into(),
            },
            Run {
                style: Style::default(),
                layout: CellLayout::Wide,
                text: "漢字".into(),
            },
            Run {
                style: Style::default(),
                layout: CellLayout::Cluster { wide: false },
                text: "e\u{301}".into(),
            },
        ],
        wrapped: true,
    };
    Frame {
        seq: u64::MAX,
        size: Size {
            cols: 200,
            rows: 60,
        },
        full: true,
        scrolled: vec![line.clone(), Line::default()],
        rows: vec![RowUpdate {
            row: 59,
            line,
            links: vec![Hyperlink {
                start: 3,
                end: 12,
                uri: "https://example.com/ü".into(),
            }],
        }],
        cursor: Cursor {
            row: 59,
            col: 199,
            shape: CursorShape::Beam,
            visible: false,
            blink: true,
        },
        modes: Modes(Modes::APP_CURSOR | Modes::SGR_MOUSE),
        title: Some("vim — ü".into()),
        bell: true,
        clipboard: Some("yanked\nlines — ü".into()),
        notification: Some(Notification {
            title: "make".into(),
            body: "done ✓".into(),
        }),
        echo_ack: u64::MAX,
        tty: TtyModes(TtyModes::CANONICAL),
    }
}

#[test]
fn client_messages_have_pinned_bytes() {
    let cases: [(ClientToServerMsg, &[u8]); 6] = [
        (
            ClientToServerMsg::Input {
                seq: 1,
                data: b"a".to_vec(),
            },
            &[0x00, 0x01, 0x01, b'a'],
        ),
        (
            ClientToServerMsg::Resize(Size { cols: 80, rows: 24 }),
            &[0x01, 80, 24],
        ),
        (ClientToServerMsg::Ack { frame: 300 }, &[0x02, 0xac, 0x02]),
        (ClientToServerMsg::Ping { id: 7 }, &[0x03, 0x07]),
        (
            ClientToServerMsg::FetchHistory {
                before: 300,
                from: 1,
            },
            &[0x04, 0xac, 0x02, 0x01],
        ),
        (
            ClientToServerMsg::Upload("2\x003\x00\x00a".into()),
            &[0x05, 0x06, b'2', 0, b'3', 0, 0, b'a'],
        ),
    ];
    for (msg, bytes) in cases {
        assert_eq!(encode_client(&msg), bytes, "{msg:?}");
        assert_eq!(decode_client(bytes), Ok(msg));
    }
}

#[test]
fn hello_has_pinned_bytes() {
    let bytes = encode_hello(&hello());
    let mut expected = vec![b'T', b'L', 0x07, 0x00, 0x01, b't'];
    expected.extend_from_slice(&[7; 16]);
    expected.extend_from_slice(&[80, 24]);
    assert_eq!(bytes, expected);
    assert_eq!(decode_hello(&bytes), Ok(hello()));
}

#[test]
fn viewers_messages_have_pinned_bytes() {
    let watchers = ServerToClientMsg::Watchers {
        names: vec!["bob".into()],
    };
    assert_eq!(
        encode_server(&watchers),
        [0x08, 0x01, 0x03, b'b', b'o', b'b']
    );
    let role = Role::Viewer {
        owner: "al".into(),
        may_type: true,
    };
    assert_eq!(
        postcard::to_allocvec(&role).unwrap(),
        [0x01, 0x02, b'a', b'l', 0x01]
    );
    assert_eq!(postcard::to_allocvec(&Role::Owner).unwrap(), [0x00]);
    assert!(!Role::Owner.is_viewer() && Role::Owner.may_type());
    assert!(role.is_viewer() && role.may_type());
}

#[test]
fn keystroke_echo_frame_is_small_and_pinned() {
    let bytes = encode_server(&ServerToClientMsg::Frame(sample_frame()));
    assert_eq!(
        bytes,
        [
            0x02, // Frame
            0x01, 80, 24, 0x00, // seq, size, full
            0x00, // no scrolled lines
            0x01, 0x00, // one row update, row 0
            0x01, 0x00, 0x00, 0x00, 0x00, 0x02, b'h', b'i', 0x00, // one run "hi"
            0x00, // no links
            0x00, 0x02, 0x00, 0x01, 0x00, // cursor
            0x00, 0x00, 0x00, 0x00, 0x00, // modes, title, bell, clipboard, notification
            0xac, 0x02, 0x03, // echo_ack 300, tty ECHO | CANONICAL
        ]
    );
    assert_eq!(
        encode_server(&ServerToClientMsg::InputAck { seq: 5 }),
        [0x03, 0x05]
    );
}

#[test]
fn server_messages_round_trip() {
    let id: SessionId = "000102030405060708090a0b0c0d0eff".parse().unwrap();
    let messages = [
        ServerToClientMsg::Welcome(Welcome {
            session: id,
            host: "h1".into(),
            epoch: 3,
            created: true,
            input_seq: 42,
            history: HistorySpan {
                start: 256,
                end: 10_300,
            },
            role: Role::Owner,
        }),
        ServerToClientMsg::Welcome(Welcome {
            session: id,
            host: "h2".into(),
            epoch: 4,
            created: false,
            input_seq: 0,
            history: HistorySpan::default(),
            role: Role::Viewer {
                owner: "alice".into(),
                may_type: false,
            },
        }),
        ServerToClientMsg::Watchers {
            names: vec!["bob".into(), "carol".into()],
        },
        ServerToClientMsg::History {
            start: 10_000,
            lines: compress_lines(&rich_frame().scrolled),
        },
        ServerToClientMsg::Frame(rich_frame()),
        ServerToClientMsg::Pong { id: u32::MAX },
        ServerToClientMsg::Exited { status: Some(-1) },
        ServerToClientMsg::Notice {
            text: "the window was clamped".into(),
        },
        ServerToClientMsg::Files(r#"{"kind":"download","token":"k","name":"r é","size":5}"#.into()),
    ];
    for msg in messages {
        let bytes = encode_server(&msg);
        assert_eq!(decode_server(&bytes), Ok(msg));
    }
}

#[test]
fn upload_requests_have_a_text_form() {
    let request = UploadRequest {
        id: 3,
        name: "a\u{0}b é.txt".into(),
        size: 1 << 40,
        partial: Some("/home/a/.x.thinline-00000001.part".into()),
    };
    assert_eq!(UploadRequest::parse(&request.to_text()), Some(request));
    let new = UploadRequest::parse("4\u{0}10\u{0}\u{0}x").unwrap();
    assert_eq!(
        (new.id, new.size, new.partial, new.name.as_str()),
        (4, 10, None, "x")
    );
    for bad in [
        "",
        "1",
        "x\u{0}1\u{0}\u{0}n",
        "1\u{0}-1\u{0}\u{0}n",
        "1\u{0}2\u{0}p",
    ] {
        assert_eq!(UploadRequest::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn session_ids_print_and_parse() {
    let id = SessionId([0xab; 16]);
    assert_eq!(id.to_string(), "ab".repeat(16));
    assert_eq!(id.to_string().parse::<SessionId>(), Ok(id));
    assert!("abc".parse::<SessionId>().is_err());
    assert!("zz".repeat(16).parse::<SessionId>().is_err());
    assert!("é".repeat(16).parse::<SessionId>().is_err());
    assert!("+a".repeat(16).parse::<SessionId>().is_err());
    assert_eq!("AB".repeat(16).parse::<SessionId>(), Ok(id));
}

#[test]
fn hello_errors_are_specific() {
    assert_eq!(decode_hello(&[]), Err(DecodeError::Empty));
    assert_eq!(decode_hello(b"GET / HTTP/1.1"), Err(DecodeError::BadMagic));
    assert_eq!(decode_hello(b"TL"), Err(DecodeError::BadMagic));
    let future = encode_hello_with_version(&hello(), PROTOCOL_VERSION + 1);
    let err = decode_hello(&future).unwrap_err();
    assert_eq!(
        err,
        DecodeError::VersionMismatch {
            client: PROTOCOL_VERSION + 1,
            host: PROTOCOL_VERSION
        }
    );
    assert!(err.to_string().contains("reload the page"), "{err}");
    let huge = vec![b'T'; MAX_CLIENT_MESSAGE + 1];
    assert!(matches!(
        decode_hello(&huge),
        Err(DecodeError::TooLarge { .. })
    ));
    let mut trailing = encode_hello(&hello());
    trailing.push(0);
    assert_eq!(decode_hello(&trailing), Err(DecodeError::TrailingBytes(1)));
}

#[test]
fn oversized_client_message_is_refused_before_parsing() {
    let bytes = vec![0u8; MAX_CLIENT_MESSAGE + 1];
    assert_eq!(
        decode_client(&bytes),
        Err(DecodeError::TooLarge {
            len: MAX_CLIENT_MESSAGE + 1,
            max: MAX_CLIENT_MESSAGE
        })
    );
}

#[test]
fn close_codes_map_both_ways() {
    for code in [
        CloseCode::Normal,
        CloseCode::GoingAway,
        CloseCode::TooBig,
        CloseCode::BadHello,
        CloseCode::Unauthorized,
        CloseCode::VersionMismatch,
        CloseCode::Malformed,
        CloseCode::SessionEnded,
        CloseCode::Replaced,
        CloseCode::HandshakeTimeout,
        CloseCode::Overloaded,
        CloseCode::SessionLost,
        CloseCode::SpawnFailed,
        CloseCode::TooManyConnections,
    ] {
        assert_eq!(CloseCode::from_code(code.code()), Some(code));
        assert!(code.advice().len() < 123, "close reasons must fit a frame");
    }
    assert_eq!(CloseCode::TooBig.code(), 1009);
    assert_eq!(CloseCode::from_code(4999), None);
}

#[test]
fn history_blocks_round_trip_and_reject_lies() {
    let lines: Vec<Line> = (0..500)
        .map(|i| Line {
            runs: vec![Run {
                text: format!("line {i} of the scrollback"),
                ..Run::default()
            }],
            wrapped: false,
        })
        .collect();
    let block = compress_lines(&lines);
    assert!(block.data.len() < block.raw_len as usize / 2, "compresses");
    assert_eq!(decompress_lines(&block), Ok(lines));

    let mut wrong_count = block.clone();
    wrong_count.count += 1;
    assert!(decompress_lines(&wrong_count).is_err());
    let mut bomb = block.clone();
    bomb.raw_len = u32::MAX;
    assert!(matches!(
        decompress_lines(&bomb),
        Err(DecodeError::TooLarge { .. })
    ));
    let mut garbage = block;
    garbage.data.truncate(garbage.data.len() / 2);
    assert!(decompress_lines(&garbage).is_err());
}

#[test]
fn sizes_clamp_to_the_protocol_limits_and_print_columns_first() {
    let hostile = Size {
        cols: u16::MAX,
        rows: 0,
    };
    assert_eq!(
        hostile.clamped(),
        Size {
            cols: Size::MAX.cols,
            rows: Size::MIN.rows
        }
    );
    assert_eq!(Size::MAX.cells(), 1000 * 500);
    assert_eq!(Size { cols: 80, rows: 24 }.to_string(), "80×24");
}

#[test]
fn line_geometry_counts_wide_and_clusters() {
    let line = &rich_frame().rows[0].line;
    assert_eq!(line.columns(), 3 + 4 + 1);
    assert_eq!(line.text(), "ok 漢字e\u{301}");
}

/// A tiny deterministic generator so the fuzz-style tests need no extra crate
/// and reproduce exactly.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_bytes_never_panic_the_decoders() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..50_000 {
        let len = (rng.next() % 96) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = decode_client(&bytes);
        let _ = decode_server(&bytes);
        let mut hello = b"TL\x01\x00".to_vec();
        hello.extend_from_slice(&bytes);
        let _ = decode_hello(&hello);
    }
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let server = [
        encode_server(&ServerToClientMsg::Frame(rich_frame())),
        encode_server(&ServerToClientMsg::History {
            start: 7,
            lines: compress_lines(&rich_frame().scrolled),
        }),
    ];
    for bytes in &server {
        for cut in 0..bytes.len() {
            assert!(decode_server(&bytes[..cut]).is_err(), "prefix {cut}");
        }
    }
    let hello = encode_hello(&hello());
    for cut in 0..hello.len() {
        assert!(decode_hello(&hello[..cut]).is_err(), "prefix {cut}");
    }
}

#[test]
fn flipped_bits_never_panic() {
    let mut rng = XorShift(42);
    let original = encode_server(&ServerToClientMsg::Frame(rich_frame()));
    for _ in 0..20_000 {
        let mut bytes = original.clone();
        let flips = 1 + rng.next() % 4;
        for _ in 0..flips {
            let i = (rng.next() as usize) % bytes.len();
            bytes[i] ^= 1 << (rng.next() % 8);
        }
        if let Ok(ServerToClientMsg::History { lines, .. }) = decode_server(&bytes) {
            let _ = decompress_lines(&lines);
        }
    }
}

#[test]
fn only_web_and_mail_addresses_are_links() {
    for good in [
        "https://example.com/a?b#c",
        "HTTP://EXAMPLE.COM",
        "mailto:ada@example.com",
    ] {
        assert!(linkable(good), "{good}");
    }
    let long = format!("https://example.com/{}", "a".repeat(MAX_LINK));
    for bad in [
        "javascript:alert(1)",
        "data:text/html,x",
        "file:///etc/passwd",
        "ftp://example.com",
        "https://example.com/\nnext",
        "http",
        "",
        long.as_str(),
    ] {
        assert!(!linkable(bad), "{bad:?}");
    }
}
