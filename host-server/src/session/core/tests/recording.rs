//! A recorded session: its output, sizes and restores reach the store in
//! the snapshots' blocks, and a replay of them draws the session's screen.

use super::*;
use crate::recording::replay::final_screen;
use crate::recording::{Event, TimedEvent, decode_block};
use crate::session::core::record::RecordingSetup;

fn recording(at_ms: u64) -> Option<RecordingSetup> {
    Some(RecordingSetup {
        at_ms,
        bytes: 0,
        max_bytes: 1 << 20,
        marker: "moved from host h1 to host h2 (epoch 4)".into(),
    })
}

/// A recorded session of host h2 at epoch 4, persisting.
fn recorded(restored: Option<(Scrollback, Vec<u8>)>, at_ms: u64) -> Bench {
    Bench::of(CoreSetup {
        host: "h2".into(),
        epoch: 4,
        restored,
        recording: recording(at_ms),
        ..setup(CellBudget::default(), true)
    })
}

impl Bench {
    /// The recording blocks of every snapshot in the effects so far.
    fn recorded_blocks(&mut self) -> Vec<store::RecordingBlock> {
        self.effects()
            .into_iter()
            .flat_map(|effect| match effect {
                Effect::Persist(snapshot) => snapshot.recording,
                _ => Vec::new(),
            })
            .collect()
    }
}

fn events(blocks: &[store::RecordingBlock]) -> Vec<TimedEvent> {
    blocks
        .iter()
        .flat_map(|b| decode_block(&b.data).expect("the core's block"))
        .collect()
}

#[test]
fn output_and_sizes_travel_with_the_snapshots_and_replay_to_the_screen() {
    let mut bench = recorded(None, 0);
    bench.attach(1);
    bench.advance(MS * 5);
    bench.output(b"\x1b[1;31mred\x1b[0m\r\n$ ");
    bench.advance(PERSIST_EVERY);
    bench.timeout();
    let first = bench.recorded_blocks();
    assert_eq!(first.len(), 1, "one block per snapshot");
    assert_eq!(first[0].seq, 4 << 32, "numbered after the epoch");

    bench.client(
        1,
        ClientToServerMsg::Resize(Size {
            cols: 100,
            rows: 30,
        }),
    );
    bench.advance(MS * 40);
    bench.output(b"ls\r\nfile\r\n$ ");
    bench.advance(PERSIST_EVERY);
    bench.timeout();
    let second = bench.recorded_blocks();
    assert_eq!(second[0].seq, (4 << 32) | 1);

    let all: Vec<_> = first.into_iter().chain(second).collect();
    let events = events(&all);
    assert!(
        matches!(&events[0].event, Event::Marker(m) if m.contains("h1 to host h2")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e.event
            == Event::Resize(Size {
                cols: 100,
                rows: 30
            })),
        "{events:?}"
    );
    assert_eq!(
        final_screen(Size::default(), &events),
        bench.core.emulator.screen_text(),
        "the recording replays to the session's screen"
    );
}

#[test]
fn a_restored_session_records_a_reset_then_the_screen_drawn_again() {
    let preface = b"old output\r\nmore old output\r\n-- restored --\r\n".to_vec();
    let mut bench = recorded(Some((Scrollback::new(SCROLLBACK_LINES), preface)), 61_000);
    bench.advance(MS);
    bench.output(b"$ ");
    bench.timeout();
    bench.advance(PERSIST_EVERY);
    bench.timeout();
    let events = events(&bench.recorded_blocks());
    assert!(events.iter().all(|e| e.at_ms >= 61_000), "{events:?}");
    let drawn = events
        .iter()
        .find_map(|e| match &e.event {
            Event::Output(bytes) => Some(bytes.clone()),
            _ => None,
        })
        .expect("output");
    assert!(drawn.starts_with(b"\x1bcold output"), "{drawn:?}");
    // Whatever the recording showed before, the replay ends as the new
    // host's screen does.
    let mut before = vec![TimedEvent {
        at_ms: 0,
        event: Event::Output(b"\x1b[?1049h\x1b[5;10rvim's screen".to_vec()),
    }];
    before.extend(events);
    assert_eq!(
        final_screen(Size::default(), &before),
        bench.core.emulator.screen_text()
    );
}

#[test]
fn a_recorded_session_says_so_first_and_a_restored_one_redraws_what_it_said() {
    let bench = recorded(None, 0);
    let first = bench.core.emulator.screen_text()[0].clone();
    assert!(first.contains("this session is recorded"), "{first:?}");
    // A restore draws the saved screen, which holds the notice already.
    let preface = b"old output\r\n".to_vec();
    let restored = recorded(Some((Scrollback::new(SCROLLBACK_LINES), preface)), 9);
    assert_eq!(restored.core.emulator.screen_text()[0], "old output");
}

#[test]
fn a_session_without_a_store_records_nothing() {
    let bench = Bench::of(CoreSetup {
        recording: recording(0),
        ..setup(CellBudget::default(), false)
    });
    assert!(bench.core.recorder.is_none());
}
