//! The session core's interleavings, with a fake clock: time is whatever
//! the test says it is, so floods, windows, timeouts and endings are
//! exact, and no PTY, channel or store is involved.

use super::*;
use crate::emulator::SCROLLBACK_LINES;
use crate::pacer::FLOOD_COALESCE;
use protocol::Run;

const MS: Duration = Duration::from_millis(1);
const PERSIST_EVERY: Duration = Duration::from_millis(100);
const IDLE: Duration = Duration::from_secs(60);

/// A core and the fake clock it is fed.
struct Bench {
    core: SessionCore,
    now: Instant,
}

/// Session 7 of host h1 at epoch 1, default size, nothing restored.
fn setup(budget: CellBudget, persist: bool) -> CoreSetup {
    CoreSetup {
        id: SessionId([7; 16]),
        host: "h1".into(),
        epoch: 1,
        size: Size::default(),
        budget,
        idle_timeout: IDLE,
        persist_interval: persist.then_some(PERSIST_EVERY),
        restored: None,
        rerun: None,
        recording: None,
        metrics: Arc::new(Metrics::default()),
    }
}

impl Bench {
    fn new(budget: CellBudget, persist: bool) -> Bench {
        Bench::of(setup(budget, persist))
    }

    fn of(setup: CoreSetup) -> Bench {
        let now = Instant::now();
        Bench {
            core: SessionCore::new(setup, now),
            now,
        }
    }

    fn plain() -> Bench {
        Bench::new(CellBudget::default(), false)
    }

    /// A persisting core with client 1 attached, shown `text` since its
    /// last snapshot.
    fn persisting_and_showing(text: &[u8]) -> Bench {
        let mut bench = Bench::persisting();
        bench.attach(1);
        bench.effects();
        bench.advance(MS);
        bench.output(text);
        bench.effects();
        bench
    }

    /// A core without a store, client 1 attached and its welcome taken.
    fn attached() -> Bench {
        let mut bench = Bench::plain();
        bench.attach(1);
        acked_frames(&mut bench, 1);
        bench
    }

    /// A persisting core whose first snapshot has been taken.
    fn persisting() -> Bench {
        let mut bench = Bench::new(CellBudget::default(), true);
        bench.timeout();
        bench.effects();
        bench
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    fn effects(&mut self) -> Vec<Effect> {
        std::iter::from_fn(|| self.core.poll_effect()).collect()
    }

    fn command(&mut self, command: Command) {
        self.core.handle_command(command, self.now);
    }

    fn attach(&mut self, conn: u64) {
        self.core
            .handle_attach(conn, false, Size::default(), self.now);
    }

    fn client(&mut self, conn: u64, msg: ClientToServerMsg) {
        self.command(Command::Client { conn, msg });
    }

    fn ack(&mut self, conn: u64, frame: u64) {
        self.client(conn, ClientToServerMsg::Ack { frame });
    }

    fn input(&mut self, conn: u64, seq: u64, data: &[u8]) {
        let data = data.to_vec();
        self.client(conn, ClientToServerMsg::Input { seq, data });
    }

    /// The program writes `bytes` in one read, and nothing more is ready.
    fn output(&mut self, bytes: &[u8]) {
        self.core.handle_output(bytes, self.now);
        self.core.reads_on(self.now);
        self.core.handle_output_paused(self.now);
    }

    fn timeout(&mut self) {
        self.core.handle_timeout(self.now);
    }

    /// The acknowledgements sent once `ACK_HOLD` has passed with nothing
    /// to travel with.
    fn acks_after_hold(&mut self) -> Vec<u64> {
        self.advance(ACK_HOLD);
        self.timeout();
        acks(&self.effects())
    }

    /// Writes everything the core has for the program, as a PTY that takes
    /// it all would.
    fn write_all_input(&mut self) -> Vec<u8> {
        let mut written = Vec::new();
        while let Some(bytes) = self.core.input_to_write() {
            let bytes = bytes.to_vec();
            written.extend_from_slice(&bytes);
            self.core.handle_written(bytes.len(), self.now);
        }
        written
    }
}

/// The messages `effects` send to `conn`.
fn sent_to(effects: &[Effect], conn: u64) -> Vec<&ServerToClientMsg> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Send { conn: to, msg } if *to == conn => Some(msg),
            _ => None,
        })
        .collect()
}

fn frames(effects: &[Effect]) -> Vec<&Frame> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Send {
                msg: ServerToClientMsg::Frame(frame),
                ..
            } => Some(frame),
            _ => None,
        })
        .collect()
}

fn acks(effects: &[Effect]) -> Vec<u64> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Send {
                msg: ServerToClientMsg::InputAck { seq },
                ..
            } => Some(*seq),
            _ => None,
        })
        .collect()
}

/// The frames sent so far, acknowledged as client `conn` would, with every
/// other effect.
fn acked_frames(bench: &mut Bench, conn: u64) -> (Vec<Frame>, Vec<Effect>) {
    let effects = bench.effects();
    let sent: Vec<Frame> = frames(&effects).into_iter().cloned().collect();
    for frame in &sent {
        bench.ack(conn, frame.seq);
    }
    (sent, effects)
}

/// The text of the lines the frames added to the client's scrollback.
fn scrolled_text(frames: &[Frame]) -> String {
    frames
        .iter()
        .flat_map(|frame| &frame.scrolled)
        .flat_map(|line| &line.runs)
        .map(|run| run.text.as_str())
        .collect()
}

/// Lines the effects add to the client's scrollback: a frame's own, or
/// history blocks ahead of it for a big scroll.
fn scrolled_count(effects: &[Effect]) -> usize {
    effects
        .iter()
        .map(|effect| match effect {
            Effect::Send {
                msg: ServerToClientMsg::History { lines, .. },
                ..
            } => lines.count as usize,
            Effect::Send {
                msg: ServerToClientMsg::Frame(frame),
                ..
            } => frame.scrolled.len(),
            _ => 0,
        })
        .sum()
}

use crate::session::rows_text;

/// Kinds of effects, in order, for comparing sequences.
fn kinds(effects: &[Effect]) -> Vec<&'static str> {
    effects
        .iter()
        .map(|effect| match effect {
            Effect::Reply(_) => "reply",
            Effect::Resize(_) => "resize",
            Effect::Send { msg, .. } => match msg {
                ServerToClientMsg::Frame(_) => "frame",
                ServerToClientMsg::InputAck { .. } => "ack",
                ServerToClientMsg::Exited { .. } => "exited",
                ServerToClientMsg::Welcome(_) => "welcome",
                ServerToClientMsg::History { .. } => "history",
                ServerToClientMsg::Notice { .. } => "notice",
                _ => "other message",
            },
            Effect::Close { .. } => "close",
            Effect::Persist(_) => "persist",
            Effect::KeepLines(_) => "keep lines",
            Effect::PersistEnded { .. } => "persist ended",
            Effect::Flush => "flush",
            Effect::HangUp => "hang up",
            Effect::Ended => "ended",
            Effect::Upload { .. } => "upload",
            Effect::Download { .. } => "download",
        })
        .collect()
}

/// How a session that lives on elsewhere, or is lost, ends here: client 1
/// sees the last screen and is closed with `code`; nothing reaches the
/// store and no exit status is shown.
fn assert_ended_here_only(effects: &[Effect], code: CloseCode) {
    assert_eq!(kinds(effects), ["frame", "close", "ended"]);
    assert!(matches!(effects[1], Effect::Close { conn: 1, code: closed } if closed == code));
}

fn numbered_lines(count: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|i| format!("line {i}\r\n").into_bytes())
        .collect()
}

#[test]
fn a_size_beyond_the_budget_is_clamped_and_the_client_told_once() {
    let budget = CellBudget::new(300_000);
    let mut bench = Bench::new(budget, false);
    let asked = Size {
        cols: 600,
        rows: 200,
    };
    let granted = budget.fit(asked).granted;
    assert!(granted.cols < asked.cols && granted.rows < asked.rows);
    bench.core.handle_attach(1, true, asked, bench.now);
    let (sent, effects) = acked_frames(&mut bench, 1);
    assert_eq!(sent.last().map(|frame| frame.size), Some(granted));
    assert!(
        effects
            .iter()
            .any(|effect| matches!(effect, Effect::Resize(size) if *size == granted)),
        "the program gets it too"
    );
    let told = notices(&effects);
    assert!(
        told.contains("limited to 300000 cells on this host")
            && told.contains(&format!("the window's {asked} was clamped to {granted}")),
        "{told}"
    );
    assert!(
        bench.core.scrollback.is_empty() && scrolled_text(&sent).is_empty(),
        "the notice is beside the screen, never in the history"
    );

    // Dragging the window further is not told again...
    bench.client(
        1,
        ClientToServerMsg::Resize(Size {
            cols: 660,
            rows: 220,
        }),
    );
    assert_eq!(notices(&acked_frames(&mut bench, 1).1), "");
    // ...until a size that fits comes between.
    bench.client(1, ClientToServerMsg::Resize(Size::default()));
    let (sent, effects) = acked_frames(&mut bench, 1);
    assert_eq!(sent.last().map(|frame| frame.size), Some(Size::default()));
    assert_eq!(notices(&effects), "");
    bench.client(1, ClientToServerMsg::Resize(asked));
    assert!(notices(&acked_frames(&mut bench, 1).1).contains("was clamped"));
}

/// The text of the notices the effects send.
fn notices(effects: &[Effect]) -> String {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Send {
                msg: ServerToClientMsg::Notice { text },
                ..
            } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// The numbered history blocks the effects send, decompressed.
fn history_blocks(effects: &[Effect]) -> Vec<(u64, Vec<String>)> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Send {
                msg: ServerToClientMsg::History { start, lines },
                ..
            } => Some((
                *start,
                protocol::decompress_lines(lines)
                    .unwrap()
                    .iter()
                    .map(Line::text)
                    .collect(),
            )),
            _ => None,
        })
        .collect()
}

/// A core restored with the offer to run `make test` again.
fn offering_rerun() -> Bench {
    let mut bench = Bench::plain();
    bench.core.rerun = Some(RerunOffer {
        keys: b"make test\r".to_vec(),
        shown_in: None,
        seen: false,
    });
    bench
}

fn written(bench: &mut Bench) -> Vec<u8> {
    bench.write_all_input()
}

#[test]
fn enter_after_the_offer_was_seen_runs_the_lost_command_again() {
    let mut bench = offering_rerun();
    bench.attach(1);
    // Input typed before the page showed the offer (resent after the
    // failover) passes untouched, Enter included.
    bench.input(1, 1, b"\r");
    assert_eq!(written(&mut bench), b"\r");
    let (frames, _) = acked_frames(&mut bench, 1);
    assert!(!frames.is_empty());
    bench.input(1, 2, b"\r");
    assert_eq!(written(&mut bench), b"make test\r");
    // Asked once: the next Enter is an Enter.
    bench.input(1, 3, b"\r");
    assert_eq!(written(&mut bench), b"\r");
}

#[test]
fn any_other_key_goes_on_without_the_lost_command() {
    let mut bench = offering_rerun();
    bench.attach(1);
    acked_frames(&mut bench, 1);
    bench.input(1, 1, b"ls");
    bench.input(1, 2, b"\r");
    assert_eq!(written(&mut bench), b"ls\r");
}

#[test]
fn a_client_that_leaves_without_answering_takes_the_offer_along() {
    let mut bench = offering_rerun();
    bench.attach(1);
    acked_frames(&mut bench, 1);
    bench.command(Command::Detach { conn: 1 });
    bench.attach(2);
    acked_frames(&mut bench, 2);
    bench.input(2, 1, b"\r");
    assert_eq!(written(&mut bench), b"\r");
}

#[test]
fn file_requests_reach_the_task_only_from_the_attached_client() {
    let mut bench = Bench::attached();
    acked_frames(&mut bench, 1);
    bench.client(
        1,
        ClientToServerMsg::Upload("1\u{0}5\u{0}\u{0}a.txt".into()),
    );
    let effects = bench.effects();
    assert!(
        matches!(&effects[..], [Effect::Upload { conn: 1, request }] if request.ends_with("a.txt")),
        "{effects:?}"
    );
    // tl-download's sequence, split across reads, becomes one request
    // for the client looking at the session.
    bench.output(b"\x1b]8445;download;k;2f");
    bench.output(b"61\x07");
    let effects = bench.effects();
    let downloads: Vec<_> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Download { conn, key, path } => Some((*conn, key.as_str(), path.as_slice())),
            _ => None,
        })
        .collect();
    assert_eq!(downloads, [(1, "k", &b"/a"[..])]);
    // A replaced connection's last words, and requests with nobody
    // attached, go nowhere.
    bench.client(
        7,
        ClientToServerMsg::Upload("1\u{0}5\u{0}\u{0}a.txt".into()),
    );
    bench.command(Command::Detach { conn: 1 });
    bench.output(b"\x1b]8445;download;k;2f61\x07");
    let effects = bench.effects();
    assert!(
        !kinds(&effects)
            .iter()
            .any(|k| *k == "upload" || *k == "download"),
        "{effects:?}"
    );
}

#[test]
fn an_attach_sends_the_screen_and_where_history_ends_but_no_history() {
    let mut bench = Bench::attached();
    bench.output(&numbered_lines(3000));
    acked_frames(&mut bench, 1);
    bench.command(Command::Detach { conn: 1 });
    bench.advance(MS);
    bench
        .core
        .handle_attach(2, false, Size::default(), bench.now);
    let effects = bench.effects();
    assert_eq!(kinds(&effects), ["welcome", "frame"], "the screen at once");
    let Some(ServerToClientMsg::Welcome(welcome)) = sent_to(&effects, 2).first().copied() else {
        panic!("no welcome first: {effects:?}");
    };
    assert_eq!(welcome.history, bench.core.scrollback.span());
    // The screen shows the last 23 lines and the prompt row; the rest of
    // the 3000 lines scrolled into the history.
    assert_eq!(welcome.history.end, 3000 - 23);

    // The client fetches, newest block first, and gets exactly what it asks.
    bench.client(
        2,
        ClientToServerMsg::FetchHistory {
            before: welcome.history.end,
            from: 0,
        },
    );
    let blocks = history_blocks(&bench.effects());
    let [(start, lines)] = &blocks[..] else {
        panic!("one block per fetch: {blocks:?}");
    };
    assert_eq!(start + lines.len() as u64, welcome.history.end);
    assert_eq!(lines.last().map(String::as_str), Some("line 2976"));
    bench.client(
        2,
        ClientToServerMsg::FetchHistory {
            before: *start,
            from: 0,
        },
    );
    let blocks = history_blocks(&bench.effects());
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].0 + blocks[0].1.len() as u64, *start);
    assert_eq!(blocks[0].1.len(), BLOCK_LINES);
}

#[test]
fn scrolled_lines_continue_the_numbers_the_client_holds() {
    let mut bench = Bench::attached();
    let end = bench.core.scrollback.span().end;
    bench.output(b"a\r\nb\r\n");
    let effects = acked_frames(&mut bench, 1).1;
    assert!(
        history_blocks(&effects).is_empty(),
        "a few lines ride the frame"
    );
    // Whatever scrolled is numbered from where the welcome said.
    assert_eq!(
        bench.core.scrollback.span().end,
        end + scrolled_count(&effects) as u64
    );
    // A flood the emulator keeps only the end of: the lines it kept are
    // numbered on from there, in blocks ahead of the frame.
    let limit = bench.core.scrollback.limit();
    let before = bench.core.scrollback.span().end;
    bench.output(&numbered_lines(limit + 3 * BLOCK_LINES));
    bench.advance(FLOOD_QUIET * 2);
    bench.timeout();
    let effects = acked_frames(&mut bench, 1).1;
    let blocks = history_blocks(&effects);
    assert_eq!(blocks.first().map(|(start, _)| *start), Some(before));
    let mut next = before;
    for (start, lines) in &blocks {
        assert_eq!(*start, next, "blocks follow each other");
        next += lines.len() as u64;
    }
    let in_frames: usize = frames(&effects).iter().map(|f| f.scrolled.len()).sum();
    assert_eq!(next + in_frames as u64, bench.core.scrollback.span().end);
}

#[test]
fn lines_the_client_could_not_be_sent_leave_a_numbered_gap() {
    // Snapshots take the scrolled lines out of the emulator while no frame
    // can carry them.
    let mut bench = Bench::persisting();
    bench.attach(1);
    acked_frames(&mut bench, 1);
    // The client stops acknowledging: the window fills.
    for _ in 0..FRAME_WINDOW + 2 {
        bench.advance(MS * 20);
        bench.output(b"x");
    }
    bench.effects();
    // Two floods scroll more than the scrollback keeps while no frame can
    // go: only the newest lines wait for the client.
    let limit = bench.core.scrollback.limit();
    let before = bench.core.scrollback.span().end;
    for _ in 0..2 {
        bench.output(&numbered_lines(limit));
        bench.advance(Duration::from_secs(1));
        bench.timeout();
    }
    assert!(frames(&bench.effects()).is_empty(), "the window is full");
    assert_eq!(
        bench.core.client.as_ref().map(|c| c.history_end),
        Some(before)
    );
    let end = bench.core.scrollback.span().end;
    assert!(end - before > limit as u64);
    // Once it acknowledges, the lines come numbered: after a gap.
    for seq in 1..=FRAME_WINDOW + 2 {
        bench.ack(1, seq);
    }
    let blocks = history_blocks(&bench.effects());
    let first = blocks.first().map(|(start, _)| *start);
    assert!(
        first.is_some_and(|first| first > before),
        "{first:?} after {before}"
    );
    let last = blocks
        .last()
        .map(|(start, lines)| start + lines.len() as u64);
    assert_eq!(last, Some(end));
}

#[test]
fn the_history_kept_follows_what_the_emulator_holds() {
    let mut bench = Bench::persisting();
    let lines: Vec<Line> = (0..SCROLLBACK_LINES)
        .map(|i| Line {
            runs: vec![Run {
                text: i.to_string(),
                ..Run::default()
            }],
            wrapped: false,
        })
        .collect();
    bench.core.scrollback.push(&lines);
    assert_eq!(bench.core.scrollback.len(), SCROLLBACK_LINES);
    let kept = |effects: Vec<Effect>| {
        effects.iter().rev().find_map(|effect| match effect {
            Effect::KeepLines(lines) => Some(*lines),
            _ => None,
        })
    };

    let now = bench.now;
    bench.core.apply_size(
        Size {
            cols: 1000,
            rows: 500,
        },
        now,
    );
    let wide = bench.core.emulator.history_limit();
    assert!(wide < SCROLLBACK_LINES);
    assert_eq!(bench.core.scrollback.limit(), wide);
    assert!(bench.core.scrollback.len() < wide + BLOCK_LINES);
    assert_eq!(kept(bench.effects()), Some(wide), "the store keeps as many");

    bench.core.apply_size(Size::default(), now);
    assert_eq!(bench.core.scrollback.limit(), SCROLLBACK_LINES);
    assert_eq!(kept(bench.effects()), Some(SCROLLBACK_LINES));
}

#[test]
fn a_flood_is_read_greedily_and_coalesced_into_one_frame_per_refresh() {
    let mut bench = Bench::attached();

    // Reads keep coming: the core reads on until a display refresh has
    // passed since the first, then one frame shows all of it.
    let start = bench.now;
    bench.core.handle_output(b"a", bench.now);
    assert!(bench.core.reads_on(bench.now));
    for chunk in [b"b", b"c", b"d"] {
        bench.advance(FLOOD_COALESCE / 4);
        bench.core.handle_output(chunk, bench.now);
        assert!(bench.core.reads_on(bench.now), "within one refresh");
    }
    bench.advance(FLOOD_COALESCE / 4);
    bench.core.handle_output(b"e", bench.now);
    assert!(!bench.core.reads_on(bench.now), "a refresh has passed");
    assert_eq!(bench.now - start, FLOOD_COALESCE);
    assert!(
        frames(&bench.effects()).is_empty(),
        "nothing before the pause"
    );
    bench.core.handle_output_paused(bench.now);
    let effects = bench.effects();
    let sent = frames(&effects);
    assert_eq!(sent.len(), 1);
    assert!(rows_text(sent[0]).contains("abcde"));

    // The clock starts again with the next burst.
    bench.advance(MS);
    bench.core.handle_output(b"f", bench.now);
    assert!(bench.core.reads_on(bench.now));
}

#[test]
fn a_flood_read_a_little_at_a_time_gets_one_frame_per_refresh() {
    let mut bench = Bench::attached();
    bench.advance(FLOOD_DRAIN_EVERY);

    // The host keeps up with the program: every read of 4 KiB is all
    // there is, so each ends a burst. Only the first one's frame goes at
    // once; the rest wait for the next refresh.
    let flood = numbered_lines(4000);
    let mut chunks = flood.chunks(4096);
    let started = bench.now;
    bench.output(chunks.next().unwrap_or_default());
    assert_eq!(acked_frames(&mut bench, 1).0.len(), 1);
    let due = started + FLOOD_COALESCE;
    for chunk in chunks.by_ref().take(3) {
        bench.advance(MS / 10);
        bench.output(chunk);
        assert!(frames(&bench.effects()).is_empty(), "within the refresh");
        assert_eq!(bench.core.poll_timeout(), Some(due));
    }
    bench.now = due;
    bench.timeout();
    let (sent, _) = acked_frames(&mut bench, 1);
    assert_eq!(sent.len(), 1, "one frame at the refresh");
    // It shows everything read until then.
    let fed = &flood[..4 * 4096];
    let last = fed.windows(2).filter(|w| w == b"\r\n").count() - 1;
    let shown = rows_text(&sent[0]);
    assert!(shown.contains(&format!("line {last}")), "{shown}");

    // The flood ends: quiet for a while, then an echo goes at once.
    bench.advance(FLOOD_COALESCE * 4);
    bench.timeout();
    bench.effects();
    bench.output(b"x");
    assert_eq!(frames(&bench.effects()).len(), 1);
}

#[test]
fn a_flood_holds_scrolled_lines_back_and_catches_up_when_it_pauses() {
    let mut bench = Bench::attached();
    bench.advance(FLOOD_DRAIN_EVERY);

    // A first burst over the backlog drains (the last drain was long ago);
    // a second one within FLOOD_DRAIN_EVERY is held back in the emulator.
    bench.output(&numbered_lines(FLOOD_BACKLOG + 200));
    let first = scrolled_count(&acked_frames(&mut bench, 1).1);
    assert!(first > FLOOD_BACKLOG, "{first} lines");
    // A refresh later (sooner, the flood's frame would wait for it).
    bench.advance(FLOOD_COALESCE);
    bench.output(&numbered_lines(FLOOD_BACKLOG + 200));
    let (sent, effects) = acked_frames(&mut bench, 1);
    assert_eq!(sent.len(), 1, "the screen still changes");
    assert_eq!(scrolled_count(&effects), 0, "the lines wait");
    assert!(bench.core.flood.flooding);
    let quiet = bench.now + FLOOD_QUIET;
    assert_eq!(bench.core.poll_timeout(), Some(quiet));

    // Before the quiet time nothing happens; at it the held lines go out.
    bench.advance(FLOOD_QUIET - MS);
    bench.timeout();
    assert!(frames(&bench.effects()).is_empty());
    bench.advance(MS);
    bench.timeout();
    assert_eq!(scrolled_count(&bench.effects()), FLOOD_BACKLOG + 200);
    assert!(!bench.core.flood.flooding);
    assert_eq!(bench.core.poll_timeout(), None, "attached, and no flood");
}

#[test]
fn the_frame_window_fills_and_an_ack_reopens_it() {
    let mut bench = Bench::plain();
    bench.attach(1);
    let welcome = bench.effects();
    let first = frames(&welcome)[0].seq;

    // The welcome's frame and two more fill the window of three.
    for text in [b"one ", b"two "] {
        bench.advance(MS);
        bench.output(text);
    }
    let sent = frames(&bench.effects()).len();
    assert_eq!(sent as u64, FRAME_WINDOW - 1);
    bench.advance(MS);
    bench.output(b"three");
    assert!(
        frames(&bench.effects()).is_empty(),
        "no frame beyond the window"
    );

    // A stale ack does nothing; acknowledging the first frame releases
    // one frame with everything that changed meanwhile.
    bench.ack(1, 0);
    assert!(frames(&bench.effects()).is_empty());
    bench.ack(1, first);
    let effects = bench.effects();
    let released = frames(&effects);
    assert_eq!(released.len(), 1);
    assert!(rows_text(released[0]).contains("one two three"));
    assert_eq!(released[0].seq, first + FRAME_WINDOW);
}

#[test]
fn input_is_written_in_order_and_acknowledged() {
    let mut bench = Bench::attached();
    bench.input(1, 1, b"ls");
    bench.input(1, 2, b"\r");
    assert_eq!(bench.core.input_to_write(), Some(&b"ls"[..]));

    // A partial write acknowledges nothing; the rest follows.
    bench.core.handle_written(1, bench.now);
    assert_eq!(bench.core.input_to_write(), Some(&b"s"[..]));
    assert!(acks(&bench.effects()).is_empty());
    assert_eq!(bench.write_all_input(), b"s\r");
    // Held for a frame to travel with; none comes, so it goes alone, and
    // one acknowledgement covers both chunks.
    assert!(acks(&bench.effects()).is_empty());
    assert_eq!(bench.acks_after_hold(), [2]);
    assert_eq!(bench.core.input_to_write(), None);
}

#[test]
fn an_acknowledgement_travels_just_ahead_of_the_echo() {
    let mut bench = Bench::attached();
    bench.input(1, 1, b"a");
    bench.write_all_input();
    assert_eq!(bench.core.poll_timeout(), Some(bench.now + ACK_HOLD));
    bench.advance(MS);
    bench.output(b"a");
    let effects = bench.effects();
    assert_eq!(kinds(&effects), ["ack", "frame"]);
    assert_eq!(acks(&effects), [1]);
    // Sent: nothing more is due for it.
    bench.advance(ACK_HOLD);
    bench.timeout();
    assert!(acks(&bench.effects()).is_empty());
}

#[test]
fn a_held_acknowledgement_dies_with_a_stalled_client() {
    let mut bench = Bench::attached();
    bench.input(1, 1, b"a");
    bench.write_all_input();
    bench.core.handle_client_stalled(1, bench.now);
    bench.effects();
    // Nothing is left due: a deadline in the past would spin the task.
    assert_eq!(bench.core.poll_timeout(), Some(bench.now + IDLE));
    bench.advance(ACK_HOLD);
    bench.timeout();
    assert!(acks(&bench.effects()).is_empty());
}

#[test]
fn a_held_acknowledgement_is_not_sent_to_the_next_client() {
    let mut bench = Bench::attached();
    bench.input(1, 1, b"a");
    bench.write_all_input();
    bench.attach(2);
    let effects = bench.effects();
    assert!(acks(&effects).is_empty(), "{:?}", kinds(&effects));
    assert!(matches!(
        sent_to(&effects, 2).first(),
        Some(ServerToClientMsg::Welcome(Welcome { input_seq: 1, .. }))
    ));
}

#[test]
fn a_resent_input_is_applied_once() {
    let mut bench = Bench::attached();
    bench.input(1, 1, b"echo hi\r");
    // Resent before it was written: the duplicate is dropped and what is
    // applied (nothing yet) is acknowledged.
    bench.input(1, 1, b"echo hi\r");
    assert_eq!(acks(&bench.effects()), [0]);
    assert_eq!(bench.write_all_input(), b"echo hi\r");
    assert_eq!(bench.acks_after_hold(), [1]);

    // Resent after a reconnect: acknowledged again, never written again.
    bench.attach(2);
    let welcome = bench.effects();
    assert!(matches!(
        sent_to(&welcome, 2).first(),
        Some(ServerToClientMsg::Welcome(Welcome { input_seq: 1, .. }))
    ));
    bench.input(2, 1, b"echo hi\r");
    assert_eq!(acks(&bench.effects()), [1]);
    assert_eq!(bench.core.input_to_write(), None);
    bench.input(2, 2, b"x");
    assert_eq!(bench.write_all_input(), b"x");
}

#[test]
fn input_past_the_limit_stops_commands_until_it_is_written() {
    let mut bench = Bench::attached();
    let chunk = vec![b'y'; MAX_PENDING_INPUT / 4];
    for seq in 1..=4 {
        assert!(bench.core.takes_commands());
        bench.input(1, seq, &chunk);
    }
    assert!(!bench.core.takes_commands(), "the channel pushes back");
    bench.core.handle_written(chunk.len(), bench.now);
    assert!(bench.core.takes_commands());
}

#[test]
fn terminal_replies_go_to_the_program_before_the_frame() {
    let mut bench = Bench::attached();
    // A cursor position query: the terminal answers for the program.
    bench.output(b"ab\x1b[6n");
    let effects = bench.effects();
    assert_eq!(kinds(&effects), ["reply", "frame"]);
    assert!(matches!(&effects[0], Effect::Reply(reply) if reply == b"\x1b[1;3R"));
}

#[test]
fn a_synchronized_update_is_shown_when_it_ends_or_when_its_time_is_up() {
    let mut bench = Bench::attached();

    let began = bench.now;
    bench.output(b"\x1b[?2026hhidden");
    let (sent, _) = acked_frames(&mut bench, 1);
    assert!(
        sent.iter()
            .all(|frame| !rows_text(frame).contains("hidden"))
    );
    let due = bench.core.poll_timeout().expect("the update's deadline");
    let wait = due - began;
    assert!(wait > Duration::ZERO);
    // More output of the same update does not move its deadline.
    bench.advance(MS * 10);
    bench.output(b" still");
    assert_eq!(bench.core.poll_timeout(), Some(due));

    let (sent, _) = acked_frames(&mut bench, 1);
    assert!(sent.iter().all(|frame| !rows_text(frame).contains("still")));
    bench.now = due;
    bench.timeout();
    let (sent, _) = acked_frames(&mut bench, 1);
    assert_eq!(sent.len(), 1);
    assert!(rows_text(&sent[0]).contains("hidden still"));
    assert_eq!(bench.core.sync_due, None);

    // The next update is timed from its own start.
    bench.advance(MS * 500);
    bench.output(b"\x1b[?2026hagain");
    assert_eq!(bench.core.poll_timeout(), Some(bench.now + wait));
    // Ended by the program: shown at once, and no deadline is left.
    bench.output(b"\x1b[?2026l");
    let (sent, _) = acked_frames(&mut bench, 1);
    let last = sent.last().expect("a frame when the update ends");
    assert!(rows_text(last).contains("again"));
    assert_eq!(bench.core.poll_timeout(), None);
}

#[test]
fn a_second_attach_replaces_the_first_with_4005() {
    let mut bench = Bench::attached();
    bench.attach(2);
    let effects = bench.effects();
    assert!(matches!(
        effects.first(),
        Some(Effect::Close {
            conn: 1,
            code: CloseCode::Replaced
        })
    ));
    assert_eq!(CloseCode::Replaced.code(), 4005);
    assert!(matches!(
        sent_to(&effects, 2).first(),
        Some(ServerToClientMsg::Welcome(_))
    ));
    assert!(sent_to(&effects, 1).is_empty());

    // The replaced connection's last words reach nothing; its detach does
    // not detach the new client.
    bench.input(1, 1, b"rm -rf ~\r");
    bench.command(Command::Detach { conn: 1 });
    assert_eq!(bench.core.input_to_write(), None);
    bench.output(b"still here");
    assert_eq!(frames(&bench.effects()).len(), 1);
}

#[test]
fn a_client_that_stops_reading_is_cut_off_and_nothing_queues_behind_it() {
    let mut bench = Bench::plain();
    bench.attach(1);
    // The welcome, its history and frame: the task finds the channel full
    // at the first message.
    assert!(!bench.effects().is_empty());
    bench.output(b"more");
    bench.core.handle_client_stalled(1, bench.now);
    let effects = bench.effects();
    assert_eq!(
        kinds(&effects),
        ["close"],
        "queued messages for it are dropped"
    );
    assert!(matches!(
        effects[0],
        Effect::Close {
            conn: 1,
            code: CloseCode::GoingAway
        }
    ));

    // Output goes on without it, and nothing is sent to anyone.
    for _ in 0..10 {
        bench.advance(MS);
        bench.output(&numbered_lines(100));
    }
    assert!(bench.effects().is_empty());
    // A detached session counts towards its idle timeout from the cut.
    let cut = bench.now - MS * 10;
    assert_eq!(bench.core.poll_timeout(), Some(cut + IDLE));
}

#[test]
fn a_detached_session_ends_at_its_idle_timeout() {
    let mut bench = Bench::persisting();
    let start = bench.now;
    assert_eq!(bench.core.poll_timeout(), Some(start + IDLE));
    bench.attach(1);
    bench.effects();
    assert_eq!(bench.core.poll_timeout(), None, "attached: no idle clock");
    bench.advance(IDLE * 2);
    bench.command(Command::Detach { conn: 1 });
    let detached = bench.now;
    assert_eq!(bench.core.poll_timeout(), Some(detached + IDLE));

    bench.advance(IDLE - MS);
    bench.timeout();
    assert!(bench.effects().is_empty());
    assert!(bench.core.is_running());
    bench.advance(MS);
    bench.timeout();
    assert_eq!(kinds(&bench.effects()), ["hang up"]);
    assert!(!bench.core.is_running());
    assert!(!bench.core.takes_commands());

    // The program goes; the session is over everywhere.
    bench.core.handle_exit(Some(129), bench.now);
    assert_eq!(
        kinds(&bench.effects()),
        ["persist", "persist ended", "flush", "ended"]
    );
    assert!(bench.core.has_ended());
}

#[test]
fn a_drain_persists_the_last_screen_before_the_hang_up() {
    let mut bench = Bench::persisting_and_showing(b"unsaved work");

    bench.command(Command::Terminate {
        close: CloseCode::GoingAway,
    });
    let effects = bench.effects();
    assert_eq!(kinds(&effects), ["persist", "flush", "hang up"]);
    let Effect::Persist(snapshot) = &effects[0] else {
        unreachable!("checked above")
    };
    let saved = crate::persist::decode_screen(&snapshot.screen).expect("a saved screen");
    let text: String = saved
        .rows
        .iter()
        .flat_map(|line| &line.runs)
        .map(|run| run.text.as_str())
        .collect();
    assert!(text.contains("unsaved work"), "{text}");

    // It lives on elsewhere: no exit status, no ended record.
    bench.core.handle_output(b"logout", bench.now);
    bench.core.handle_exit(Some(0), bench.now);
    assert_ended_here_only(&bench.effects(), CloseCode::GoingAway);
}

#[test]
fn a_lost_session_writes_nothing() {
    let mut bench = Bench::persisting_and_showing(b"changed");
    assert!(bench.core.poll_timeout().is_some(), "a snapshot is due");

    bench.command(Command::Terminate {
        close: CloseCode::SessionLost,
    });
    assert_eq!(kinds(&bench.effects()), ["hang up"]);
    assert_eq!(bench.core.poll_timeout(), None);
    bench.advance(PERSIST_EVERY * 10);
    bench.timeout();
    bench.core.handle_output(b"last words", bench.now);
    bench.core.handle_exit(None, bench.now);
    assert_ended_here_only(&bench.effects(), CloseCode::SessionLost);
}

#[test]
fn a_program_that_ends_by_itself_ends_the_session_and_shows_its_status() {
    let mut bench = Bench::persisting();
    bench.attach(1);
    bench.effects();
    bench.output(b"bye");
    bench.effects();
    bench.core.handle_program_gone(bench.now);
    assert!(!bench.core.is_running());
    assert!(bench.effects().is_empty(), "nothing to hang up");
    bench.core.handle_exit(Some(3), bench.now);
    let effects = bench.effects();
    assert_eq!(
        kinds(&effects),
        [
            "frame",
            "persist",
            "persist ended",
            "flush",
            "exited",
            "close",
            "ended"
        ]
    );
    assert!(matches!(
        sent_to(&effects, 1)[..],
        [
            ServerToClientMsg::Frame(_),
            ServerToClientMsg::Exited { status: Some(3) }
        ]
    ));
    assert!(matches!(
        effects[5],
        Effect::Close {
            conn: 1,
            code: CloseCode::SessionEnded
        }
    ));
    // Exit is reported once.
    bench.core.handle_exit(Some(3), bench.now);
    assert!(bench.effects().is_empty());
}

#[test]
fn changes_are_persisted_at_most_one_interval_late() {
    let mut bench = Bench::new(CellBudget::default(), true);
    let start = bench.now;
    assert!(matches!(
        bench.effects()[..],
        [Effect::KeepLines(SCROLLBACK_LINES)]
    ));
    assert_eq!(bench.core.poll_timeout(), Some(start), "the first at once");
    bench.timeout();
    assert_eq!(kinds(&bench.effects()), ["persist"]);
    assert_eq!(
        bench.core.poll_timeout(),
        Some(start + IDLE),
        "nothing changed"
    );

    bench.advance(MS * 5);
    let changed = bench.now;
    bench.output(b"x");
    bench.advance(MS * 5);
    bench.output(b"y");
    assert_eq!(bench.core.poll_timeout(), Some(changed + PERSIST_EVERY));
    bench.now = changed + PERSIST_EVERY;
    bench.timeout();
    let effects = bench.effects();
    let [Effect::Persist(snapshot)] = &effects[..] else {
        panic!("one snapshot: {:?}", kinds(&effects));
    };
    assert_eq!(
        snapshot.changed_at, changed,
        "the lag counts from the first"
    );
}

#[test]
fn a_host_going_down_without_a_drain_hangs_up() {
    let mut bench = Bench::plain();
    bench.core.handle_commands_closed(bench.now);
    assert_eq!(kinds(&bench.effects()), ["hang up"]);
    bench.core.handle_exit(None, bench.now);
    assert_eq!(kinds(&bench.effects()), ["ended"], "no store, no client");
}

#[test]
fn a_reattach_after_a_flood_finds_the_client_holding_every_line_numbered() {
    let mut bench = Bench::plain();
    bench.attach(1);
    let mut effects = bench.effects();
    let welcome_end = |effects: &[Effect]| {
        effects.iter().find_map(|effect| match effect {
            Effect::Send {
                msg: ServerToClientMsg::Welcome(w),
                ..
            } => Some(w.history.end),
            _ => None,
        })
    };
    let mut held = welcome_end(&effects).unwrap();
    for frame in frames(&effects) {
        bench.ack(1, frame.seq);
    }
    bench.output(b"$ ");
    for i in 0..40 {
        bench.advance(MS * 7);
        bench.output(&numbered_lines(75 + i));
        effects = bench.effects();
        held += scrolled_count(&effects) as u64;
        for frame in frames(&effects) {
            bench.ack(1, frame.seq);
        }
    }
    for _ in 0..5 {
        bench.advance(FLOOD_QUIET * 2);
        bench.timeout();
        bench.output(b"$ echo hi\r\nhi\r\n$ ");
        effects = bench.effects();
        held += scrolled_count(&effects) as u64;
        for frame in frames(&effects) {
            bench.ack(1, frame.seq);
        }
    }
    effects = bench.effects();
    held += scrolled_count(&effects) as u64;
    bench.command(Command::Detach { conn: 1 });
    bench
        .core
        .handle_attach(2, false, Size::default(), bench.now);
    let again = welcome_end(&bench.effects()).unwrap();
    assert_eq!(again, held, "the host numbers what the client holds");
}

#[test]
fn a_frame_covers_a_keystroke_once_its_echo_wait_is_over() {
    let mut bench = Bench::attached();
    bench.input(1, 1, b"a");
    bench.write_all_input();
    let written_at = bench.now;
    // The echo comes at once, in a frame that cannot vouch for it yet.
    bench.advance(MS);
    bench.output(b"a");
    let (sent, _) = acked_frames(&mut bench, 1);
    assert_eq!(sent.iter().map(|f| f.echo_ack).collect::<Vec<_>>(), [0]);
    // Nothing else changes: a frame of its own says the wait is over.
    assert_eq!(bench.core.poll_timeout(), Some(written_at + ECHO_WAIT));
    bench.now = written_at + ECHO_WAIT;
    bench.timeout();
    let (sent, _) = acked_frames(&mut bench, 1);
    assert_eq!(sent.iter().map(|f| f.echo_ack).collect::<Vec<_>>(), [1]);
    // And once only.
    assert_eq!(bench.core.poll_timeout(), None);
    bench.advance(ECHO_WAIT);
    bench.timeout();
    assert!(frames(&bench.effects()).is_empty());
}

#[test]
fn output_after_the_echo_wait_carries_the_keystroke_along() {
    let mut bench = Bench::attached();
    bench.input(1, 1, b"x");
    bench.write_all_input();
    bench.advance(ECHO_WAIT + MS);
    bench.output(b"x");
    let (sent, _) = acked_frames(&mut bench, 1);
    assert_eq!(sent.iter().map(|f| f.echo_ack).collect::<Vec<_>>(), [1]);
    bench.timeout();
    assert!(frames(&bench.effects()).is_empty(), "a second frame for it");
}

#[test]
fn the_terminal_settings_travel_with_frames_and_a_change_sends_one() {
    let mut bench = Bench::attached();
    let cooked = TtyModes(TtyModes::ECHO | TtyModes::CANONICAL);
    bench.core.handle_tty(cooked);
    bench.output(b"$ ");
    let (sent, _) = acked_frames(&mut bench, 1);
    assert_eq!(sent[0].tty, cooked);
    // `read -s`: echo goes off without a byte of output.
    let hidden = TtyModes(TtyModes::CANONICAL);
    bench.core.handle_tty(hidden);
    bench.timeout();
    let (sent, _) = acked_frames(&mut bench, 1);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].tty.hides_input());
    bench.core.handle_tty(hidden);
    bench.timeout();
    assert!(frames(&bench.effects()).is_empty(), "a frame for no change");
}

#[test]
fn an_echo_frame_waits_for_room_in_the_window() {
    let mut bench = Bench::attached();
    // Fill the window with frames the client does not acknowledge.
    for i in 0..FRAME_WINDOW {
        bench.output(format!("{i}\r\n").as_bytes());
    }
    let sent = bench.effects();
    let last = frames(&sent).last().map(|f| f.seq).unwrap_or_default();
    bench.input(1, 1, b"q");
    bench.write_all_input();
    // `q` has no echo: it settles once the program was silent long enough.
    bench.advance(ECHO_SILENT);
    bench.timeout();
    assert!(frames(&bench.effects()).is_empty(), "sent past the window");
    bench.ack(1, last);
    let effects = bench.effects();
    assert_eq!(
        frames(&effects)
            .iter()
            .map(|f| f.echo_ack)
            .collect::<Vec<_>>(),
        [1]
    );
}

#[test]
fn a_slow_programs_echo_is_waited_for_past_the_echo_wait() {
    let mut bench = Bench::attached();
    bench.input(1, 1, b"k");
    bench.write_all_input();
    let written_at = bench.now;
    // The program is slow to answer (a busy machine): no frame vouches
    // for the key while its echo may still come.
    bench.now = written_at + ECHO_WAIT;
    bench.timeout();
    let effects = bench.effects();
    assert!(frames(&effects).is_empty(), "{effects:?}");
    assert_eq!(bench.core.poll_timeout(), Some(written_at + ECHO_SILENT));
    // The echo, late: the frame that carries it also vouches for it.
    bench.advance(3 * ECHO_WAIT);
    bench.output(b"k");
    let (sent, _) = acked_frames(&mut bench, 1);
    assert_eq!(sent.iter().map(|f| f.echo_ack).collect::<Vec<_>>(), [1]);
}

mod recording;
mod viewers;
