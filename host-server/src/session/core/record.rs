//! The session's recorder: output, sizes and markers as timed events,
//! sealed into numbered blocks (`crate::recording`) that each snapshot
//! hands to the persister, so a recording is as durable as the screen and
//! goes on, on the next host, after a failover.
//!
//! Blocks are numbered `epoch << 32 | n`: every host a session moves to
//! holds a later epoch, so its blocks sort after its predecessors' and no
//! two hosts ever write the same number. The recording stops, with a
//! marker saying so, when its blocks would pass the size it may keep.

use std::time::Instant;

use protocol::Size;
use store::RecordingBlock;

use crate::recording::{Event, TimedEvent, encode_block};

/// Output bytes after which a block is sealed without waiting for the
/// next snapshot, so a flood never holds more than this unwritten per
/// block, and a block never decompresses to more than a reader allows.
pub const SEAL_BYTES: usize = 1 << 20;

/// What a session's recording starts from on this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingSetup {
    /// Milliseconds since the recording started, as the core starts.
    pub at_ms: u64,
    /// Block bytes the recording holds already, and the most it may.
    pub bytes: u64,
    pub max_bytes: u64,
    /// The first event: where the recording starts, or which hosts a
    /// restore moved it between.
    pub marker: String,
}

pub(super) struct Recorder {
    /// `at_ms` of the setup at `origin`.
    base_ms: u64,
    origin: Instant,
    /// The high half of every block number.
    epoch: u64,
    next_block: u32,
    events: Vec<TimedEvent>,
    /// Output bytes in `events`.
    held: usize,
    sealed: Vec<RecordingBlock>,
    bytes: u64,
    max_bytes: u64,
    stopped: bool,
    last_ms: u64,
}

impl Recorder {
    pub(super) fn new(setup: RecordingSetup, epoch: u64, now: Instant) -> Recorder {
        let mut recorder = Recorder {
            base_ms: setup.at_ms,
            origin: now,
            epoch,
            next_block: 0,
            events: Vec::new(),
            held: 0,
            sealed: Vec::new(),
            bytes: setup.bytes,
            max_bytes: setup.max_bytes,
            stopped: setup.bytes >= setup.max_bytes,
            last_ms: setup.at_ms,
        };
        recorder.marker(setup.marker, now);
        recorder
    }

    /// Recording time at `now`, never before an earlier event's.
    fn at(&mut self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin).as_millis();
        let at = self
            .base_ms
            .saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX));
        self.last_ms = self.last_ms.max(at);
        self.last_ms
    }

    fn push(&mut self, event: Event, now: Instant) {
        if self.stopped {
            return;
        }
        let at_ms = self.at(now);
        // Reads within one millisecond are one event.
        if let (
            Event::Output(bytes),
            Some(TimedEvent {
                at_ms: last_ms,
                event: Event::Output(held),
            }),
        ) = (&event, self.events.last_mut())
            && *last_ms == at_ms
        {
            held.extend_from_slice(bytes);
        } else {
            self.events.push(TimedEvent { at_ms, event });
        }
        if self.held >= SEAL_BYTES {
            self.seal();
        }
    }

    pub(super) fn output(&mut self, bytes: &[u8], now: Instant) {
        if bytes.is_empty() || self.stopped {
            return;
        }
        self.held += bytes.len();
        self.push(Event::Output(bytes.to_vec()), now);
    }

    pub(super) fn resize(&mut self, size: Size, now: Instant) {
        self.push(Event::Resize(size), now);
    }

    pub(super) fn marker(&mut self, text: String, now: Instant) {
        self.push(Event::Marker(text), now);
    }

    /// Every block sealed so far, the events held sealed first.
    pub(super) fn take_blocks(&mut self) -> Vec<RecordingBlock> {
        self.seal();
        std::mem::take(&mut self.sealed)
    }

    fn seal(&mut self) {
        let (Some(first), Some(last)) = (self.events.first(), self.events.last()) else {
            return;
        };
        let (start_ms, end_ms) = (first.at_ms, last.at_ms);
        let mut data = encode_block(&self.events);
        self.events.clear();
        self.held = 0;
        let limit = self.max_bytes.saturating_sub(self.bytes);
        if data.len() as u64 > limit {
            // What is left of the budget always holds a marker's block:
            // the recording says why it ends instead of just ending.
            self.stopped = true;
            let text = format!(
                "recording stopped: it reached its limit of {} (the deployment's --recording-max-mb)",
                human_bytes(self.max_bytes)
            );
            data = encode_block(&[TimedEvent {
                at_ms: start_ms,
                event: Event::Marker(text),
            }]);
        }
        self.bytes += data.len() as u64;
        let seq = (self.epoch << 32) | u64::from(self.next_block);
        self.next_block = self.next_block.saturating_add(1);
        self.sealed.push(RecordingBlock {
            seq,
            start_ms,
            end_ms,
            data,
        });
    }
}

fn human_bytes(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::recording::decode_block;

    fn setup(max_bytes: u64) -> RecordingSetup {
        RecordingSetup {
            at_ms: 5_000,
            bytes: 0,
            max_bytes,
            marker: "recording started on h1".into(),
        }
    }

    fn events(blocks: &[RecordingBlock]) -> Vec<TimedEvent> {
        blocks
            .iter()
            .flat_map(|b| decode_block(&b.data).expect("a block the recorder wrote"))
            .collect()
    }

    #[test]
    fn events_are_timed_from_the_setup_and_numbered_by_epoch() {
        let t0 = Instant::now();
        let mut rec = Recorder::new(setup(1 << 20), 3, t0);
        rec.output(b"$ ", t0 + Duration::from_millis(10));
        rec.output(b"ls", t0 + Duration::from_millis(10));
        rec.resize(
            Size {
                cols: 100,
                rows: 30,
            },
            t0 + Duration::from_millis(250),
        );
        let blocks = rec.take_blocks();
        rec.output(b"\r\n", t0 + Duration::from_millis(900));
        let more = rec.take_blocks();
        assert_eq!(blocks[0].seq, 3 << 32);
        assert_eq!(more[0].seq, (3 << 32) | 1);
        assert_eq!((blocks[0].start_ms, blocks[0].end_ms), (5_000, 5_250));
        assert_eq!(
            events(&blocks),
            vec![
                TimedEvent {
                    at_ms: 5_000,
                    event: Event::Marker("recording started on h1".into())
                },
                // Two reads in one millisecond are one event.
                TimedEvent {
                    at_ms: 5_010,
                    event: Event::Output(b"$ ls".to_vec())
                },
                TimedEvent {
                    at_ms: 5_250,
                    event: Event::Resize(Size {
                        cols: 100,
                        rows: 30
                    })
                },
            ]
        );
        assert_eq!(events(&more)[0].at_ms, 5_900);
        assert!(rec.take_blocks().is_empty(), "nothing new, no block");
    }

    #[test]
    fn a_flood_is_sealed_in_bounded_blocks() {
        let t0 = Instant::now();
        let mut rec = Recorder::new(setup(u64::MAX), 1, t0);
        let chunk = vec![b'y'; 64 * 1024];
        for i in 0..40 {
            rec.output(&chunk, t0 + Duration::from_millis(i));
        }
        let blocks = rec.take_blocks();
        assert!(blocks.len() >= 2, "{} blocks", blocks.len());
        let output: usize = events(&blocks)
            .iter()
            .map(|e| match &e.event {
                Event::Output(b) => b.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(output, 40 * chunk.len(), "nothing lost between blocks");
    }

    #[test]
    fn the_recording_stops_at_its_limit_and_says_so() {
        let t0 = Instant::now();
        let mut rec = Recorder::new(setup(600), 1, t0);
        // Incompressible output, so the block outgrows the limit.
        let noise = crate::recording::testing::noise(&mut 3, 4_000);
        rec.output(&noise, t0);
        let blocks = rec.take_blocks();
        assert_eq!(blocks.len(), 1);
        let events = events(&blocks);
        assert!(
            matches!(&events[..], [TimedEvent { event: Event::Marker(text), .. }] if text.contains("limit")),
            "{events:?}"
        );
        rec.output(b"more", t0 + Duration::from_secs(1));
        assert!(rec.take_blocks().is_empty(), "nothing after the stop");
    }

    #[test]
    fn a_restored_recording_goes_on_after_its_predecessors_time() {
        let t0 = Instant::now();
        let setup = RecordingSetup {
            at_ms: 60_000,
            bytes: 100,
            max_bytes: 1 << 20,
            marker: "restored on h2 after h1 was lost".into(),
        };
        let mut rec = Recorder::new(setup, 2, t0);
        rec.output(b"x", t0 + Duration::from_millis(5));
        let blocks = rec.take_blocks();
        assert_eq!(blocks[0].seq, 2 << 32);
        assert_eq!(events(&blocks)[1].at_ms, 60_005);
    }
}
