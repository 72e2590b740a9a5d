//! Session recordings: one per session, made by its host, appended to in
//! the fenced screen write (each block counted once however often it is
//! written), read back in `seq` order page by page, deleted by the owner
//! alone or by the retention, and the accounts' choice to be recorded.

use std::sync::Arc;

use store::{Millis, RecordingBlock, RecordingRecord, ScreenWrite, Store};

use super::{
    ID_A, ID_B, ID_C, assert_duplicate, assert_fenced, assert_not_found, block, record, session_id,
    wait_for_clock_past,
};

/// A recording block's number as hosts make them: `epoch << 32 | n`.
fn seq(epoch: u64, n: u64) -> u64 {
    epoch << 32 | n
}

/// A block of `len` bytes (all of them telling of its `seq`, and some
/// that are not text) ending at `end_ms`.
fn chunk(seq: u64, len: usize, end_ms: u64) -> RecordingBlock {
    let mut data = format!("{seq:x}:\0\u{1b}[0m\u{ff}").into_bytes();
    data.resize(len, 0xfe);
    RecordingBlock {
        seq,
        start_ms: end_ms.saturating_sub(10),
        end_ms,
        data,
    }
}

/// A screen write carrying `recording`'s blocks, and a scrollback block
/// so the screen part is seen to be written too.
fn with_recording(screen: &str, recording: Vec<RecordingBlock>) -> ScreenWrite {
    ScreenWrite {
        screen: screen.as_bytes().to_vec(),
        new_blocks: vec![block(0, 5)],
        keep_lines: 1000,
        recording,
    }
}

async fn record_session(store: &dyn Store, id: &str, owner: &str) -> RecordingRecord {
    store
        .create_recording(id, owner, 120, 40, 1 << 20)
        .await
        .unwrap();
    store.get_recording(id).await.unwrap().unwrap()
}

async fn all_blocks(store: &dyn Store, id: &str) -> Vec<RecordingBlock> {
    store.recording_blocks(id, None, u32::MAX).await.unwrap()
}

async fn seqs(store: &dyn Store, id: &str) -> Vec<u64> {
    all_blocks(store, id).await.iter().map(|b| b.seq).collect()
}

pub async fn recordings_round_trip_and_list_newest_first(store: Arc<dyn Store>) {
    assert_eq!(store.get_recording(ID_A).await.unwrap(), None);
    assert!(store.list_recordings("ada").await.unwrap().is_empty());

    let before = store.now().await.unwrap();
    store
        .create_recording(ID_A, "ada", 132, 43, 5_000_000)
        .await
        .unwrap();
    let after = store.now().await.unwrap();
    let first = store.get_recording(ID_A).await.unwrap().unwrap();
    assert!((before..=after).contains(&first.started_at), "{first:?}");
    assert_eq!(
        first,
        RecordingRecord {
            session: ID_A.to_owned(),
            owner: "ada".to_owned(),
            started_at: first.started_at,
            updated_at: first.started_at,
            cols: 132,
            rows: 43,
            max_bytes: 5_000_000,
            bytes: 0,
            blocks: 0,
            duration_ms: 0,
        }
    );

    // A second one of the session is refused, and the first one kept.
    assert_duplicate(store.create_recording(ID_A, "bob", 80, 24, 1).await, ID_A);
    assert_eq!(
        store.get_recording(ID_A).await.unwrap(),
        Some(first.clone())
    );

    wait_for_clock_past(&*store, first.started_at).await;
    let bobs = record_session(&*store, ID_B, "bob").await;
    // No session row is needed: a recording outlives its session's.
    let second = record_session(&*store, ID_C, "ada").await;
    assert!(second.started_at > first.started_at);
    assert_eq!(store.get_session(ID_C).await.unwrap(), None);

    assert_eq!(store.list_recordings("ada").await.unwrap(), [second, first]);
    assert_eq!(store.list_recordings("bob").await.unwrap(), [bobs]);
    assert!(store.list_recordings("eve").await.unwrap().is_empty());

    // "No limit" is kept as the largest limit every backend stores.
    let unlimited = session_id(9);
    store
        .create_recording(&unlimited, "ada", 80, 24, u64::MAX)
        .await
        .unwrap();
    let found = store.get_recording(&unlimited).await.unwrap().unwrap();
    assert_eq!(found.max_bytes, i64::MAX.unsigned_abs());
}

pub async fn recording_blocks_come_in_seq_order_page_by_page(store: Arc<dyn Store>) {
    store.create_session(&record(ID_A, "ada")).await.unwrap();
    store.create_session(&record(ID_B, "bob")).await.unwrap();
    record_session(&*store, ID_A, "ada").await;
    record_session(&*store, ID_B, "bob").await;
    assert!(all_blocks(&*store, ID_A).await.is_empty());

    // Written out of order, over two writes, from three epochs: numbers
    // past 2^32 sort by epoch first, not as text nor as signed numbers.
    let order = [
        seq(0, 0),
        seq(0, 3),
        seq(1, 5),
        seq(1, 6),
        seq(2, 0),
        seq(0x7fff_ffff, 1),
    ];
    let first = vec![
        chunk(order[4], 40, 900),
        chunk(order[2], 50, 500),
        chunk(order[0], 60, 100),
    ];
    let second = vec![
        chunk(order[5], 7, 1000),
        chunk(order[3], 70, 600),
        chunk(order[1], 80, 300),
    ];
    store
        .save_screen(ID_A, 0, "h1", &with_recording("one", first))
        .await
        .unwrap();
    store
        .save_screen(ID_A, 0, "h1", &with_recording("two", second))
        .await
        .unwrap();
    store
        .save_screen(
            ID_B,
            0,
            "h1",
            &with_recording("bob's", vec![chunk(seq(1, 1), 9, 9)]),
        )
        .await
        .unwrap();

    let everything = all_blocks(&*store, ID_A).await;
    let expected: Vec<RecordingBlock> = [(0, 60, 100), (1, 80, 300), (2, 50, 500)]
        .into_iter()
        .chain([(3, 70, 600), (4, 40, 900), (5, 7, 1000)])
        .map(|(i, len, end)| chunk(order[i], len, end))
        .collect();
    assert_eq!(everything, expected, "every byte back, in seq order");
    assert_eq!(seqs(&*store, ID_B).await, [seq(1, 1)]);

    // Pages: `after` is exclusive, `limit` the most returned.
    let page = |after: Option<u64>, limit: u32| {
        let store = store.clone();
        async move {
            let blocks = store.recording_blocks(ID_A, after, limit).await.unwrap();
            blocks.into_iter().map(|b| b.seq).collect::<Vec<_>>()
        }
    };
    assert_eq!(page(None, 2).await, order[..2]);
    assert_eq!(page(Some(order[2]), 1).await, [order[3]]);
    assert_eq!(page(Some(seq(1, 5)), 2).await, [seq(1, 6), seq(2, 0)]);
    // Between two stored numbers, and before the first.
    assert_eq!(page(Some(seq(1, 0)), 1).await, [seq(1, 5)]);
    assert_eq!(page(Some(0), 100).await, order[1..]);
    assert!(page(Some(order[5]), 10).await.is_empty());
    assert!(page(Some(u64::MAX), 10).await.is_empty());
    assert!(page(None, 0).await.is_empty());
    // Paging through, two at a time, gives every block once, in order.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let next = page(after, 2).await;
        let Some(&last) = next.last() else { break };
        paged.extend(next);
        after = Some(last);
    }
    assert_eq!(paged, order);
    // A session with no recording has no blocks.
    assert!(all_blocks(&*store, ID_C).await.is_empty());
}

pub async fn a_recording_counts_each_block_once(store: Arc<dyn Store>) {
    store.create_session(&record(ID_A, "ada")).await.unwrap();
    let made = record_session(&*store, ID_A, "ada").await;
    wait_for_clock_past(&*store, made.started_at).await;

    let before = store.now().await.unwrap();
    let write = with_recording(
        "s",
        vec![chunk(seq(0, 0), 10, 100), chunk(seq(0, 1), 5, 250)],
    );
    store.save_screen(ID_A, 0, "h1", &write).await.unwrap();
    let after = store.now().await.unwrap();
    let counted = store.get_recording(ID_A).await.unwrap().unwrap();
    assert!(
        (before..=after).contains(&counted.updated_at),
        "{counted:?}"
    );
    assert_eq!(
        counted,
        RecordingRecord {
            bytes: 15,
            blocks: 2,
            duration_ms: 250,
            updated_at: counted.updated_at,
            ..made.clone()
        }
    );

    // The same write again (a retry after a lost answer) counts nothing,
    // and writes nothing, so the recording was not written to.
    wait_for_clock_past(&*store, counted.updated_at).await;
    store.save_screen(ID_A, 0, "h1", &write).await.unwrap();
    assert_eq!(
        store.get_recording(ID_A).await.unwrap(),
        Some(counted.clone())
    );
    assert_eq!(seqs(&*store, ID_A).await, [seq(0, 0), seq(0, 1)]);

    // One old block and one new one: only the new one counts. A block
    // that ends earlier than the longest leaves the duration alone, and a
    // block twice in one write counts once.
    let write = with_recording(
        "s",
        vec![
            chunk(seq(0, 1), 5, 250),
            chunk(seq(0, 2), 7, 200),
            chunk(seq(0, 2), 7, 200),
        ],
    );
    store.save_screen(ID_A, 0, "h1", &write).await.unwrap();
    let grown = store.get_recording(ID_A).await.unwrap().unwrap();
    assert!(grown.updated_at > counted.updated_at, "{grown:?}");
    assert_eq!((grown.bytes, grown.blocks, grown.duration_ms), (22, 3, 250));

    // A new host (epoch 1) goes on where the last one stopped.
    assert_eq!(store.take_over(ID_A, 0, "h2").await.unwrap(), 1);
    let write = with_recording("s", vec![chunk(seq(1, 0), 1000, 4000)]);
    store.save_screen(ID_A, 1, "h2", &write).await.unwrap();
    let moved = store.get_recording(ID_A).await.unwrap().unwrap();
    assert_eq!(
        (moved.bytes, moved.blocks, moved.duration_ms),
        (1022, 4, 4000)
    );
    assert_eq!(moved.started_at, made.started_at);
    assert_eq!(
        seqs(&*store, ID_A).await,
        [seq(0, 0), seq(0, 1), seq(0, 2), seq(1, 0)]
    );
}

pub async fn a_fenced_write_records_nothing(store: Arc<dyn Store>) {
    store.create_session(&record(ID_A, "ada")).await.unwrap();
    let made = record_session(&*store, ID_A, "ada").await;
    assert_eq!(store.take_over(ID_A, 0, "h2").await.unwrap(), 1);

    // The host that lost the session (epoch 0) records nothing more.
    let stale = with_recording("stale", vec![chunk(seq(0, 0), 10, 100)]);
    assert_fenced(store.save_screen(ID_A, 0, "h1", &stale).await, ID_A, 0);
    assert!(all_blocks(&*store, ID_A).await.is_empty());
    assert_eq!(store.get_recording(ID_A).await.unwrap(), Some(made.clone()));
    // Nor does a write to a session that does not exist, recording or
    // not.
    record_session(&*store, ID_B, "ada").await;
    assert_not_found(store.save_screen(ID_B, 0, "h1", &stale).await, ID_B);
    assert!(all_blocks(&*store, ID_B).await.is_empty());

    // The new owner's write is recorded.
    let current = with_recording("current", vec![chunk(seq(1, 0), 10, 100)]);
    store.save_screen(ID_A, 1, "h2", &current).await.unwrap();
    assert_eq!(seqs(&*store, ID_A).await, [seq(1, 0)]);
    assert_eq!(store.get_recording(ID_A).await.unwrap().unwrap().blocks, 1);
}

pub async fn blocks_without_a_recording_are_dropped(store: Arc<dyn Store>) {
    store.create_session(&record(ID_A, "ada")).await.unwrap();
    let blocks = vec![chunk(seq(0, 0), 10, 100), chunk(seq(0, 1), 20, 200)];

    // No recording: the screen is written, the blocks are not, and it is
    // no error.
    store
        .save_screen(ID_A, 0, "h1", &with_recording("kept", blocks.clone()))
        .await
        .unwrap();
    let screen = store.load_screen(ID_A).await.unwrap().unwrap();
    assert_eq!(
        (screen.screen.as_slice(), screen.blocks.len()),
        (&b"kept"[..], 1)
    );
    assert_eq!(store.get_recording(ID_A).await.unwrap(), None);
    assert!(all_blocks(&*store, ID_A).await.is_empty());

    // They were dropped, not kept aside: once the recording is made, the
    // same blocks are new to it and counted.
    record_session(&*store, ID_A, "ada").await;
    assert!(all_blocks(&*store, ID_A).await.is_empty());
    // A write with an empty screen still carries its recording blocks.
    let write = ScreenWrite {
        screen: Vec::new(),
        new_blocks: Vec::new(),
        keep_lines: 1000,
        recording: blocks.clone(),
    };
    store.save_screen(ID_A, 0, "h1", &write).await.unwrap();
    assert_eq!(all_blocks(&*store, ID_A).await, blocks);
    let counted = store.get_recording(ID_A).await.unwrap().unwrap();
    assert_eq!((counted.bytes, counted.blocks), (30, 2));

    // Deleted by its owner while the session runs: later blocks are
    // dropped too, and the host's writes go on.
    store.delete_recording("ada", ID_A).await.unwrap();
    let later = with_recording("later", vec![chunk(seq(0, 2), 10, 300)]);
    store.save_screen(ID_A, 0, "h1", &later).await.unwrap();
    assert_eq!(store.get_recording(ID_A).await.unwrap(), None);
    assert!(all_blocks(&*store, ID_A).await.is_empty());
    let screen = store.load_screen(ID_A).await.unwrap().unwrap();
    assert_eq!(screen.screen, b"later");
}

pub async fn only_the_owner_deletes_a_recording(store: Arc<dyn Store>) {
    for id in [ID_A, ID_B] {
        store.create_session(&record(id, "ada")).await.unwrap();
        record_session(&*store, id, "ada").await;
        let blocks = (0..3).map(|n| chunk(seq(0, n), 10, n * 100)).collect();
        store
            .save_screen(id, 0, "h1", &with_recording("s", blocks))
            .await
            .unwrap();
    }
    let kept = store.get_recording(ID_A).await.unwrap().unwrap();

    // Someone else's delete, or one of no recording, finds nothing, and
    // removes nothing.
    assert_not_found(store.delete_recording("bob", ID_A).await, ID_A);
    assert_not_found(store.delete_recording("ada", ID_C).await, ID_C);
    assert_eq!(store.get_recording(ID_A).await.unwrap(), Some(kept));
    assert_eq!(all_blocks(&*store, ID_A).await.len(), 3);

    store.delete_recording("ada", ID_A).await.unwrap();
    assert_eq!(store.get_recording(ID_A).await.unwrap(), None);
    assert!(all_blocks(&*store, ID_A).await.is_empty());
    assert_not_found(store.delete_recording("ada", ID_A).await, ID_A);
    // The other recording, and the session itself, are untouched.
    assert_eq!(all_blocks(&*store, ID_B).await.len(), 3);
    let listed: Vec<String> = store
        .list_recordings("ada")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.session)
        .collect();
    assert_eq!(listed, [ID_B]);
    assert!(store.get_session(ID_A).await.unwrap().is_some());

    // Every block went: a recording made again starts empty, and the
    // same numbers are new to it.
    let again = record_session(&*store, ID_A, "ada").await;
    assert_eq!((again.bytes, again.blocks), (0, 0));
    assert!(all_blocks(&*store, ID_A).await.is_empty());
    let write = with_recording("s", vec![chunk(seq(0, 0), 10, 100)]);
    store.save_screen(ID_A, 0, "h1", &write).await.unwrap();
    assert_eq!(store.get_recording(ID_A).await.unwrap().unwrap().blocks, 1);
}

pub async fn retention_deletes_recordings_last_written_before_the_cutoff(store: Arc<dyn Store>) {
    let (old, idle, written, new) = (ID_A, ID_B, ID_C, session_id(7));
    for id in [old, idle, written, new.as_str()] {
        store.create_session(&record(id, "ada")).await.unwrap();
    }
    let write = |n: u64| with_recording("s", vec![chunk(seq(0, n), 10, n * 100)]);

    // Before the cutoff: `old` written, `idle` never, `written` made.
    record_session(&*store, old, "ada").await;
    record_session(&*store, idle, "ada").await;
    let written_made = record_session(&*store, written, "bob").await;
    store.save_screen(old, 0, "h1", &write(0)).await.unwrap();
    let old_written = store.get_recording(old).await.unwrap().unwrap();
    wait_for_clock_past(&*store, old_written.updated_at).await;
    let cutoff: Millis = store.now().await.unwrap();
    assert!(written_made.updated_at < cutoff);
    // None was written before the first was made.
    assert_eq!(
        store
            .delete_recordings_before(old_written.started_at)
            .await
            .unwrap(),
        0
    );
    // After it: `written` is written to, `new` made.
    store
        .save_screen(written, 0, "h1", &write(1))
        .await
        .unwrap();
    record_session(&*store, &new, "ada").await;

    assert_eq!(store.delete_recordings_before(cutoff).await.unwrap(), 2);
    for gone in [old, idle] {
        assert_eq!(store.get_recording(gone).await.unwrap(), None, "{gone}");
        assert!(all_blocks(&*store, gone).await.is_empty(), "{gone}");
    }
    assert_eq!(seqs(&*store, written).await, [seq(0, 1)]);
    assert!(store.get_recording(&new).await.unwrap().is_some());
    assert_eq!(store.delete_recordings_before(cutoff).await.unwrap(), 0);
    assert_eq!(store.list_recordings("ada").await.unwrap().len(), 1);
    assert_eq!(store.list_recordings("bob").await.unwrap().len(), 1);
}

pub async fn recording_opt_in_follows_the_account(store: Arc<dyn Store>, other: Arc<dyn Store>) {
    assert!(!store.recording_opt_in("ada").await.unwrap());
    assert_not_found(store.set_recording_opt_in("ada", true).await, "ada");
    assert!(!store.recording_opt_in("ada").await.unwrap());

    store.create_account("ada", "hash").await.unwrap();
    store.create_account("bob", "hash").await.unwrap();
    assert!(
        !store.recording_opt_in("ada").await.unwrap(),
        "off by default"
    );
    for _ in 0..2 {
        store.set_recording_opt_in("ada", true).await.unwrap();
        assert!(other.recording_opt_in("ada").await.unwrap());
    }
    assert!(!other.recording_opt_in("bob").await.unwrap());
    // The choice survives what else is done to the account.
    store.set_password("ada", "new hash").await.unwrap();
    assert!(store.recording_opt_in("ada").await.unwrap());

    other.set_recording_opt_in("ada", false).await.unwrap();
    assert!(!store.recording_opt_in("ada").await.unwrap());
    other.set_recording_opt_in("bob", true).await.unwrap();
    assert!(store.recording_opt_in("bob").await.unwrap());
    assert!(!store.recording_opt_in("ada").await.unwrap());
}
