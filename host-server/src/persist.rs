//! Keeping a session's state in the shared store.
//!
//! The session task hands snapshots to a `PersistQueue` (latest screen wins,
//! sealed scrollback blocks accumulate) and a per-session persister task
//! writes them, fenced by the session's epoch. When the store is down the
//! persister keeps only the newest state, retries with backoff and reports
//! the host degraded; when a write is fenced the session has moved to
//! another host and is ended here. What a saved screen is, and how it is
//! drawn again, is `persist::saved`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use store::{
    RecordingBlock, ScreenWrite, ScrollbackBlock, SessionRecord, SessionUpdate, Store, StoreError,
};
use tokio::sync::{Notify, oneshot};

use crate::emulator::SCROLLBACK_LINES;
use crate::metrics::Metrics;

pub mod saved;

pub use saved::{
    SavedScreen, decode_block, decode_screen, encode_block, encode_screen, render_ansi,
};

/// What the session task has not yet seen written.
#[derive(Default)]
struct Pending {
    /// The record to create before anything else is written.
    create: Option<SessionRecord>,
    /// The recording to make, after the record and before its blocks.
    create_recording: Option<NewRecording>,
    screen: Option<Vec<u8>>,
    blocks: Vec<ScrollbackBlock>,
    recording: RecordingQueue,
    update: SessionUpdate,
    /// When the oldest change in here happened, for the lag measurement.
    changed_at: Option<Instant>,
    /// Callers waiting for everything queued so far to be durable.
    flushed: Vec<oneshot::Sender<bool>>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.create.is_none()
            && self.create_recording.is_none()
            && self.screen.is_none()
            && self.blocks.is_empty()
            && self.recording.is_empty()
            && self.update == SessionUpdate::default()
    }
}

/// A recording to make in the store (`Store::create_recording`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRecording {
    pub owner: String,
    pub size: protocol::Size,
    pub max_bytes: u64,
}

/// Recording block bytes a session keeps waiting for a store that does not
/// answer. Past this, newer blocks are dropped and one marker block (under
/// the first dropped block's number) says what the recording misses.
pub const MAX_PENDING_RECORDING: usize = 32 << 20;

/// Shared between a session task and its persister.
pub struct PersistQueue {
    pending: Mutex<Pending>,
    wake: Notify,
    /// Scrollback lines the store keeps for the session: as many as its
    /// scrollback does at its current size (`Emulator::history_limit`).
    keep_lines: AtomicUsize,
}

impl Default for PersistQueue {
    fn default() -> Self {
        PersistQueue {
            pending: Mutex::default(),
            wake: Notify::new(),
            keep_lines: AtomicUsize::new(SCROLLBACK_LINES),
        }
    }
}

impl PersistQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets how many scrollback lines the store keeps, from the next write
    /// on (the session was resized).
    pub fn set_keep_lines(&self, lines: usize) {
        self.keep_lines.store(lines, Ordering::Relaxed);
    }

    pub fn keep_lines(&self) -> usize {
        self.keep_lines.load(Ordering::Relaxed)
    }

    pub fn create(&self, record: SessionRecord) {
        self.lock().create = Some(record);
        self.wake.notify_one();
    }

    /// Makes the session's recording, before any of its blocks is written.
    pub fn create_recording(&self, recording: NewRecording) {
        self.lock().create_recording = Some(recording);
        self.wake.notify_one();
    }

    /// Queues a snapshot; an older unwritten screen is replaced, blocks are
    /// kept (scrollback bounded by what the scrollback holds, recording by
    /// `MAX_PENDING_RECORDING`).
    pub fn push(
        &self,
        screen: Vec<u8>,
        blocks: Vec<ScrollbackBlock>,
        recording: Vec<RecordingBlock>,
        update: SessionUpdate,
        changed_at: Instant,
    ) {
        let mut pending = self.lock();
        pending.screen = Some(screen);
        pending.blocks.extend(blocks);
        for block in recording {
            pending.recording.push(block);
        }
        let max_blocks = self.keep_lines() / crate::scrollback::BLOCK_LINES + 2;
        let excess = pending.blocks.len().saturating_sub(max_blocks);
        pending.blocks.drain(..excess);
        merge_update(&mut pending.update, update);
        pending.changed_at.get_or_insert(changed_at);
        drop(pending);
        self.wake.notify_one();
    }

    /// Resolves when everything queued so far is written (true) or the
    /// persister gave up (false).
    pub fn flush(&self) -> oneshot::Receiver<bool> {
        let (tx, rx) = oneshot::channel();
        let mut pending = self.lock();
        if pending.is_empty() {
            let _ = tx.send(true);
        } else {
            pending.flushed.push(tx);
        }
        drop(pending);
        self.wake.notify_one();
        rx
    }
}

/// Recording blocks waiting for the store, in order. Unlike scrollback
/// none is redundant, so they are dropped only past
/// `MAX_PENDING_RECORDING`, and then one marker block (under the first
/// dropped block's number) says what the recording misses.
#[derive(Default)]
struct RecordingQueue {
    blocks: Vec<RecordingBlock>,
    /// Bytes of `blocks`.
    held: usize,
    /// The last block is the gap marker, for the gap that began then.
    gap_from: Option<u64>,
}

impl RecordingQueue {
    fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    fn push(&mut self, block: RecordingBlock) {
        if self.held + block.data.len() <= MAX_PENDING_RECORDING {
            self.held += block.data.len();
            self.blocks.push(block);
            self.gap_from = None;
            return;
        }
        // One marker for the whole gap, under its first block's number.
        let (seq, from) = match self.gap_from {
            Some(from) => {
                let marker = self.blocks.pop();
                let seq = marker.as_ref().map_or(block.seq, |m| m.seq);
                self.held -= marker.map_or(0, |m| m.data.len());
                (seq, from)
            }
            None => (block.seq, block.start_ms),
        };
        let text = format!(
            "output not recorded from {:.1} s to {:.1} s: the store did not answer and the host could hold no more",
            from as f64 / 1000.0,
            block.end_ms as f64 / 1000.0
        );
        let data = crate::recording::encode_block(&[crate::recording::TimedEvent {
            at_ms: from,
            event: crate::recording::Event::Marker(text),
        }]);
        self.held += data.len();
        self.blocks.push(RecordingBlock {
            seq,
            start_ms: from,
            end_ms: block.end_ms,
            data,
        });
        self.gap_from = Some(from);
    }

    /// This queue (older), then `newer`.
    fn then(mut self, newer: RecordingQueue) -> RecordingQueue {
        for block in newer.blocks {
            self.push(block);
        }
        self
    }
}

fn merge_update(into: &mut SessionUpdate, newer: SessionUpdate) {
    let SessionUpdate {
        cwd,
        cols,
        rows,
        title,
        foreground,
        state,
    } = newer;
    into.cwd = cwd.or(into.cwd.take());
    into.cols = cols.or(into.cols);
    into.rows = rows.or(into.rows);
    into.title = title.or(into.title.take());
    into.foreground = foreground.or(into.foreground.take());
    into.state = state.or(into.state);
}

/// Why a persister stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum PersistEnd {
    /// The session moved to another host (its epoch was superseded).
    Lost,
    /// The session task is gone and everything was written.
    Done,
}

pub struct Persister {
    pub store: Arc<dyn Store>,
    pub session: String,
    pub epoch: u64,
    pub host: String,
    pub queue: Arc<PersistQueue>,
    pub metrics: Arc<Metrics>,
}

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Longest one write may take before the store counts as unreachable. A
/// connection that silently stops answering (a partition, a frozen server)
/// never fails by itself, and the host must still report itself degraded
/// and keep retrying rather than wait on it forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

impl Persister {
    /// Writes queued state until the queue is dropped by its session (and
    /// drained) or the session is found to have moved.
    pub async fn run(self) -> PersistEnd {
        let mut backoff = BACKOFF_START;
        let mut failing = false;
        loop {
            let batch = std::mem::take(&mut *self.queue.lock());
            if batch.is_empty() {
                for waiter in batch.flushed {
                    let _ = waiter.send(true);
                }
                if Arc::strong_count(&self.queue) == 1 {
                    self.set_failing(&mut failing, false);
                    return PersistEnd::Done;
                }
                // Session tasks wake us on every push; the timeout notices a
                // session that ended without a last push.
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), self.queue.wake.notified()).await;
                continue;
            }
            let written = tokio::time::timeout(WRITE_TIMEOUT, self.write(&batch))
                .await
                .unwrap_or_else(|_| {
                    Err(StoreError::Unavailable(format!(
                        "no answer from the store within {WRITE_TIMEOUT:?}"
                    )))
                });
            match written {
                Ok(()) => {
                    self.set_failing(&mut failing, false);
                    backoff = BACKOFF_START;
                    if let Some(at) = batch.changed_at {
                        self.metrics.persisted(at.elapsed());
                    }
                    for waiter in batch.flushed {
                        let _ = waiter.send(true);
                    }
                }
                Err(StoreError::Fenced { .. }) | Err(StoreError::NotFound(_)) => {
                    tracing::warn!(session = %self.session, epoch = self.epoch, "the session moved to another host; ending it here");
                    self.set_failing(&mut failing, false);
                    for waiter in batch.flushed {
                        let _ = waiter.send(false);
                    }
                    return PersistEnd::Lost;
                }
                Err(error) => {
                    if !failing {
                        tracing::warn!(session = %self.session, %error, "persisting failed; keeping the latest state and retrying");
                    }
                    self.set_failing(&mut failing, true);
                    self.requeue(batch);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    fn set_failing(&self, failing: &mut bool, now: bool) {
        if *failing != now {
            *failing = now;
            self.metrics.persister_failing(now);
        }
    }

    /// Puts a failed batch back under anything newer that arrived meanwhile.
    fn requeue(&self, batch: Pending) {
        let mut pending = self.queue.lock();
        if pending.create.is_none() {
            pending.create = batch.create;
        }
        if pending.create_recording.is_none() {
            pending.create_recording = batch.create_recording;
        }
        if pending.screen.is_none() {
            pending.screen = batch.screen;
        }
        let mut blocks = batch.blocks;
        blocks.append(&mut pending.blocks);
        pending.blocks = blocks;
        let newer = std::mem::take(&mut pending.recording);
        pending.recording = batch.recording.then(newer);
        let newer = std::mem::take(&mut pending.update);
        pending.update = batch.update;
        merge_update(&mut pending.update, newer);
        pending.changed_at = match (batch.changed_at, pending.changed_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut flushed = batch.flushed;
        flushed.append(&mut pending.flushed);
        pending.flushed = flushed;
    }

    async fn write(&self, batch: &Pending) -> Result<(), StoreError> {
        if let Some(record) = &batch.create {
            // `users` names the owner of every session (accounts, with
            // their credentials, are kept apart by the directory).
            let owner = store::User {
                id: record.owner.clone(),
                name: record.owner.clone(),
            };
            self.store.put_user(&owner).await?;
            match self.store.create_session(record).await {
                Ok(()) | Err(StoreError::Duplicate(_)) => {}
                Err(error) => return Err(error),
            }
        }
        if let Some(recording) = &batch.create_recording {
            let created = self
                .store
                .create_recording(
                    &self.session,
                    &recording.owner,
                    recording.size.cols,
                    recording.size.rows,
                    recording.max_bytes,
                )
                .await;
            match created {
                Ok(()) | Err(StoreError::Duplicate(_)) => {}
                Err(error) => return Err(error),
            }
        }
        if batch.update != SessionUpdate::default() {
            self.store
                .update_session(&self.session, self.epoch, &batch.update)
                .await?;
        }
        if batch.screen.is_some() || !batch.blocks.is_empty() || !batch.recording.is_empty() {
            let write = ScreenWrite {
                screen: batch.screen.clone().unwrap_or_default(),
                new_blocks: batch.blocks.clone(),
                keep_lines: u32::try_from(self.queue.keep_lines()).unwrap_or(u32::MAX),
                recording: batch.recording.blocks.clone(),
            };
            self.store
                .save_screen(&self.session, self.epoch, &self.host, &write)
                .await?;
            self.metrics.store_write();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritten_blocks_are_bounded_by_the_lines_kept() {
        let block = |seq| ScrollbackBlock {
            seq,
            lines: crate::scrollback::BLOCK_LINES as u32,
            data: Vec::new(),
        };
        let queue = PersistQueue::default();
        assert_eq!(queue.keep_lines(), SCROLLBACK_LINES);
        // A wide terminal keeps fewer lines; a store that is down must not
        // make the queue hold more than the scrollback would.
        queue.set_keep_lines(1000);
        queue.push(
            Vec::new(),
            (0..100).map(block).collect(),
            Vec::new(),
            SessionUpdate::default(),
            Instant::now(),
        );
        let pending = queue.lock();
        let kept: Vec<u64> = pending.blocks.iter().map(|b| b.seq).collect();
        let most = 1000 / crate::scrollback::BLOCK_LINES + 2;
        assert_eq!(kept, ((100 - most as u64)..100).collect::<Vec<_>>());
    }

    fn recording_block(seq: u64, bytes: usize) -> RecordingBlock {
        RecordingBlock {
            seq,
            start_ms: seq * 1000,
            end_ms: seq * 1000 + 999,
            data: vec![0; bytes],
        }
    }

    #[test]
    fn recording_blocks_wait_whole_and_a_store_away_too_long_leaves_one_marked_gap() {
        let queue = PersistQueue::default();
        let block = MAX_PENDING_RECORDING / 4;
        let push = |seq| {
            queue.push(
                Vec::new(),
                Vec::new(),
                vec![recording_block(seq, block)],
                SessionUpdate::default(),
                Instant::now(),
            )
        };
        for seq in 0..4 {
            push(seq);
        }
        // Full: the next blocks become one marker, under the first one's
        // number, spanning all of them.
        for seq in 4..9 {
            push(seq);
        }
        let pending = queue.lock();
        let seqs: Vec<u64> = pending.recording.blocks.iter().map(|b| b.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3, 4]);
        let gap = &pending.recording.blocks[4];
        assert_eq!((gap.start_ms, gap.end_ms), (4_000, 8_999));
        let events = crate::recording::decode_block(&gap.data).expect("a marker block");
        let [
            crate::recording::TimedEvent {
                at_ms: 4_000,
                event: crate::recording::Event::Marker(text),
            },
        ] = &events[..]
        else {
            panic!("{events:?}");
        };
        assert!(text.contains("from 4.0 s to 9.0 s"), "{text}");
        drop(pending);

        // A failed write goes back in front of what came meanwhile, and
        // the gap stays where it was in the order.
        let batch = std::mem::take(&mut queue.lock().recording);
        queue.push(
            Vec::new(),
            Vec::new(),
            vec![recording_block(9, 10)],
            SessionUpdate::default(),
            Instant::now(),
        );
        let newer = std::mem::take(&mut queue.lock().recording);
        let merged = batch.then(newer);
        let seqs: Vec<u64> = merged.blocks.iter().map(|b| b.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3, 4]);
        // Written at last, the queue takes blocks again.
        let mut fresh = RecordingQueue::default();
        fresh.push(recording_block(10, 10));
        fresh = fresh.then(RecordingQueue::default());
        assert_eq!(
            (fresh.blocks.len(), fresh.held, fresh.gap_from),
            (1, 10, None)
        );
    }
}
