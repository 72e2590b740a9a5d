//! The conformance suite proper: what every backend must do, written once.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use store::{
    Account, Drain, Login, Millis, ScreenWrite, ScrollbackBlock, SessionRecord, SessionState,
    SessionUpdate, Store, StoreError, UidRange, UnixIdentity, User,
};
use tokio::sync::Barrier;

mod recordings;
mod shares;
pub use recordings::*;
pub use shares::*;

const ID_A: &str = "0123456789abcdef0123456789abcdef";
const ID_B: &str = "fedcba9876543210fedcba9876543210";
const ID_C: &str = "00000000000000000000000000000001";

fn record(id: &str, owner: &str) -> SessionRecord {
    SessionRecord {
        id: id.to_owned(),
        owner: owner.to_owned(),
        program: "/bin/bash".to_owned(),
        args: vec!["-l".to_owned(), "it's \"quoted\" ✓".to_owned()],
        cwd: "/home/ada/projets/été".to_owned(),
        env: vec![
            ("LANG".to_owned(), "C.UTF-8".to_owned()),
            ("WEIRD".to_owned(), "a=b; c\nd".to_owned()),
        ],
        cols: 200,
        rows: 60,
        title: Some("ada@box: ~".to_owned()),
        foreground: None,
        state: SessionState::Running,
        owner_host: "host-1".to_owned(),
        epoch: 0,
        // Ignored by the store, which stamps its own clock.
        created_at: 1,
        last_active: 2,
    }
}

fn block(seq: u64, lines: u32) -> ScrollbackBlock {
    ScrollbackBlock {
        seq,
        lines,
        data: format!("block {seq} with {lines} lines").into_bytes(),
    }
}

fn write(screen: &str, new_blocks: Vec<ScrollbackBlock>, keep_lines: u32) -> ScreenWrite {
    ScreenWrite {
        screen: screen.as_bytes().to_vec(),
        new_blocks,
        keep_lines,
        recording: Vec::new(),
    }
}

fn system_now() -> Millis {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    Millis::try_from(elapsed.as_millis()).unwrap()
}

/// Waits until the backend's clock has moved past `after`, so the next
/// write gets a strictly later timestamp.
async fn wait_for_clock_past(store: &dyn Store, after: Millis) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while store.now().await.unwrap() <= after {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the backend clock is stuck"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn assert_fenced(result: Result<impl std::fmt::Debug, StoreError>, id: &str, epoch: u64) {
    match result {
        Err(StoreError::Fenced { session, epoch: e }) => {
            assert_eq!((session.as_str(), e), (id, epoch));
        }
        other => panic!("expected fenced at epoch {epoch}, got {other:?}"),
    }
}

fn assert_not_found(result: Result<impl std::fmt::Debug, StoreError>, id: &str) {
    match result {
        Err(StoreError::NotFound(session)) => assert_eq!(session, id),
        other => panic!("expected not found, got {other:?}"),
    }
}

pub async fn fresh_database_is_empty(store: Arc<dyn Store>) {
    assert!(["sqlite", "postgres", "memory"].contains(&store.kind()));
    assert!(store.list_sessions(None).await.unwrap().is_empty());
    assert_eq!(store.get_user("ada").await.unwrap(), None);
    assert_eq!(store.get_session(ID_A).await.unwrap(), None);
    assert_eq!(store.load_screen(ID_A).await.unwrap(), None);
    assert!(store.list_accounts().await.unwrap().is_empty());
    assert_eq!(store.get_account("ada").await.unwrap(), None);
    assert_eq!(store.get_login(&login_id(1)).await.unwrap(), None);
}

pub async fn users_round_trip(store: Arc<dyn Store>) {
    let ada = User {
        id: "ada".to_owned(),
        name: "Ada Lovelace".to_owned(),
    };
    store.put_user(&ada).await.unwrap();
    assert_eq!(store.get_user("ada").await.unwrap(), Some(ada.clone()));

    let renamed = User {
        name: "Augusta Ada King".to_owned(),
        ..ada
    };
    store.put_user(&renamed).await.unwrap();
    assert_eq!(store.get_user("ada").await.unwrap(), Some(renamed));
    assert_eq!(store.get_user("bob").await.unwrap(), None);
}

pub async fn sessions_round_trip(store: Arc<dyn Store>) {
    let before = store.now().await.unwrap();
    let sent = record(ID_A, "ada");
    store.create_session(&sent).await.unwrap();
    let after = store.now().await.unwrap();

    let got = store.get_session(ID_A).await.unwrap().unwrap();
    assert!((before..=after).contains(&got.created_at), "{got:?}");
    assert_eq!(got.last_active, got.created_at);
    assert_eq!(
        got,
        SessionRecord {
            created_at: got.created_at,
            last_active: got.last_active,
            ..sent
        }
    );
}

pub async fn list_is_newest_first_and_filters_by_owner(store: Arc<dyn Store>) {
    for (id, owner) in [(ID_A, "ada"), (ID_B, "bob"), (ID_C, "ada")] {
        store.create_session(&record(id, owner)).await.unwrap();
        let created = store.get_session(id).await.unwrap().unwrap().created_at;
        wait_for_clock_past(&*store, created).await;
    }
    let ids = |sessions: Vec<SessionRecord>| -> Vec<String> {
        sessions.into_iter().map(|session| session.id).collect()
    };
    assert_eq!(
        ids(store.list_sessions(None).await.unwrap()),
        [ID_C, ID_B, ID_A]
    );
    assert_eq!(
        ids(store.list_sessions(Some("ada")).await.unwrap()),
        [ID_C, ID_A]
    );
    assert_eq!(ids(store.list_sessions(Some("bob")).await.unwrap()), [ID_B]);
    assert!(store.list_sessions(Some("eve")).await.unwrap().is_empty());
}

pub async fn duplicate_create_is_refused(store: Arc<dyn Store>) {
    store.create_session(&record(ID_A, "ada")).await.unwrap();
    let impostor = SessionRecord {
        owner_host: "host-2".to_owned(),
        epoch: 7,
        ..record(ID_A, "eve")
    };
    match store.create_session(&impostor).await {
        Err(StoreError::Duplicate(id)) => assert_eq!(id, ID_A),
        other => panic!("expected duplicate, got {other:?}"),
    }
    let kept = store.get_session(ID_A).await.unwrap().unwrap();
    assert_eq!((kept.owner.as_str(), kept.epoch), ("ada", 0));
}

pub async fn update_is_fenced_by_epoch(store: Arc<dyn Store>) {
    store.create_session(&record(ID_A, "ada")).await.unwrap();
    let created = store.get_session(ID_A).await.unwrap().unwrap();
    wait_for_clock_past(&*store, created.last_active).await;

    let update = SessionUpdate {
        cwd: Some("/tmp".to_owned()),
        cols: Some(80),
        rows: None,
        title: Some(None),
        foreground: Some(Some("vim notes.txt".to_owned())),
        state: None,
    };
    store.update_session(ID_A, 0, &update).await.unwrap();
    let updated = store.get_session(ID_A).await.unwrap().unwrap();
    assert!(updated.last_active > created.last_active);
    assert_eq!(
        updated,
        SessionRecord {
            cwd: "/tmp".to_owned(),
            cols: 80,
            title: None,
            foreground: Some("vim notes.txt".to_owned()),
            last_active: updated.last_active,
            ..created.clone()
        }
    );

    // An empty update only bumps last_active.
    store
        .update_session(ID_A, 0, &SessionUpdate::default())
        .await
        .unwrap();
    let same = store.get_session(ID_A).await.unwrap().unwrap();
    assert_eq!(
        same,
        SessionRecord {
            last_active: same.last_active,
            ..updated.clone()
        }
    );

    let ended = SessionUpdate {
        state: Some(SessionState::Ended),
        rows: Some(24),
        ..SessionUpdate::default()
    };
    assert_fenced(store.update_session(ID_A, 1, &ended).await, ID_A, 1);
    assert_fenced(
        store.update_session(ID_A, u64::MAX, &ended).await,
        ID_A,
        u64::MAX,
    );
    assert_eq!(store.get_session(ID_A).await.unwrap().unwrap(), same);

    store.update_session(ID_A, 0, &ended).await.unwrap();
    let ended = store.get_session(ID_A).await.unwrap().unwrap();
    assert_eq!((ended.state, ended.rows), (SessionState::Ended, 24));
}

pub async fn update_of_missing_session_is_not_found(store: Arc<dyn Store>) {
    let result = store
        .update_session(ID_A, 0, &SessionUpdate::default())
        .await;
    assert_not_found(result, ID_A);
}

pub async fn save_and_load_screen_appends_blocks(store: Arc<dyn Store>) {
    store.create_session(&record(ID_A, "ada")).await.unwrap();
    let before = store.now().await.unwrap();
    store
        .save_screen(
            ID_A,
            0,
            "host-1",
            &write("first", vec![block(0, 10), block(1, 20)], 1000),
        )
        .await
        .unwrap();
    store
        .save_screen(
            ID_A,
            0,
            "host-1b",
            &write("second", vec![block(2, 5)], 1000),
        )
        .await
        .unwrap();
    let after = store.now().await.unwrap();

    let loaded = store.load_screen(ID_A).await.unwrap().unwrap();
    assert_eq!(loaded.screen, b"second");
    assert_eq!(loaded.blocks, [block(0, 10), block(1, 20), block(2, 5)]);
    assert_eq!(loaded.saved_by, "host-1b");
    assert_eq!(loaded.epoch, 0, "the epoch the write was fenced by");
    assert!((before..=after).contains(&loaded.saved_at));
    let session = store.get_session(ID_A).await.unwrap().unwrap();
    assert!(session.last_active >= before);

    // A write with no new blocks replaces only the screen.
    store
        .save_screen(ID_A, 0, "host-1", &write("third", vec![], 1000))
        .await
        .unwrap();
    let loaded = store.load_screen(ID_A).await.unwrap().unwrap();
    assert_eq!(loaded.screen, b"third");
    assert_eq!(loaded.blocks.len(), 3);
}

pub async fn reappending_a_block_is_a_no_op(store: Arc<dyn Store>) {
    store.create_session(&record(ID_A, "ada")).await.unwrap();
    let first = write("screen", vec![block(0, 10), block(1, 10)], 1000);
    store.save_screen(ID_A, 0, "host-1", &first).await.unwrap();
    // A retry of the same write, and a write that repeats block 1 with
    // other contents next to a new block 2.
    store.save_screen(ID_A, 0, "host-1", &first).await.unwrap();
    let clash = ScrollbackBlock {
        data: b"not the original".to_vec(),
        ..block(1, 99)
    };
    store
        .save_screen(
            ID_A,
            0,
            "host-1",
            &write("screen", vec![clash, block(2, 10)], 1000),
        )
        .await
        .unwrap();
    let loaded = store.load_screen(ID_A).await.unwrap().unwrap();
    assert_eq!(loaded.blocks, [block(0, 10), block(1, 10), block(2, 10)]);
}

pub async fn trimming_keeps_at_least_keep_lines(store: Arc<dyn Store>) {
    store.create_session(&record(ID_A, "ada")).await.unwrap();
    let seqs = |blocks: &[ScrollbackBlock]| blocks.iter().map(|b| b.seq).collect::<Vec<_>>();

    // 5 blocks of 10 lines, keep 25: dropping block 0 leaves 40, block 1
    // leaves 30, block 2 would leave 20 < 25, so blocks 2..=4 stay.
    let blocks = (0..5).map(|seq| block(seq, 10)).collect();
    store
        .save_screen(ID_A, 0, "host-1", &write("s", blocks, 25))
        .await
        .unwrap();
    let loaded = store.load_screen(ID_A).await.unwrap().unwrap();
    assert_eq!(seqs(&loaded.blocks), [2, 3, 4]);

    // Exactly enough: 30 lines in 2..=4, keep 20 drops block 2 (leaves 20).
    store
        .save_screen(ID_A, 0, "host-1", &write("s", vec![], 20))
        .await
        .unwrap();
    let loaded = store.load_screen(ID_A).await.unwrap().unwrap();
    assert_eq!(seqs(&loaded.blocks), [3, 4]);

    // Uneven blocks: a big new block can push out several small ones.
    store
        .save_screen(ID_A, 0, "host-1", &write("s", vec![block(5, 100)], 100))
        .await
        .unwrap();
    let loaded = store.load_screen(ID_A).await.unwrap().unwrap();
    assert_eq!(seqs(&loaded.blocks), [5]);

    // Never below keep_lines: one block holding less than asked stays.
    store
        .save_screen(ID_A, 0, "host-1", &write("s", vec![], 1000))
        .await
        .unwrap();
    let loaded = store.load_screen(ID_A).await.unwrap().unwrap();
    assert_eq!(seqs(&loaded.blocks), [5]);

    // keep_lines 0 keeps no scrollback at all.
    store
        .save_screen(ID_A, 0, "host-1", &write("s", vec![block(6, 1)], 0))
        .await
        .unwrap();
    let loaded = store.load_screen(ID_A).await.unwrap().unwrap();
    assert!(loaded.blocks.is_empty());
}

pub async fn fenced_save_writes_nothing(store: Arc<dyn Store>) {
    store.create_session(&record(ID_A, "ada")).await.unwrap();
    store
        .save_screen(ID_A, 0, "host-1", &write("mine", vec![block(0, 10)], 1000))
        .await
        .unwrap();
    assert_eq!(store.take_over(ID_A, 0, "host-2").await.unwrap(), 1);
    let screen_before = store.load_screen(ID_A).await.unwrap().unwrap();
    let session_before = store.get_session(ID_A).await.unwrap().unwrap();
    wait_for_clock_past(&*store, session_before.last_active).await;

    let stale = write("stale", vec![block(1, 10), block(2, 10)], 0);
    assert_fenced(store.save_screen(ID_A, 0, "host-1", &stale).await, ID_A, 0);

    assert_eq!(
        store.load_screen(ID_A).await.unwrap().unwrap(),
        screen_before
    );
    assert_eq!(
        store.get_session(ID_A).await.unwrap().unwrap(),
        session_before
    );
}

pub async fn save_to_missing_session_is_not_found(store: Arc<dyn Store>) {
    let result = store
        .save_screen(ID_A, 0, "host-1", &write("s", vec![block(0, 1)], 10))
        .await;
    assert_not_found(result, ID_A);
    assert_eq!(store.load_screen(ID_A).await.unwrap(), None);
}

pub async fn take_over_moves_the_session(store: Arc<dyn Store>) {
    store.create_session(&record(ID_A, "ada")).await.unwrap();
    assert_eq!(store.take_over(ID_A, 0, "host-2").await.unwrap(), 1);
    let moved = store.get_session(ID_A).await.unwrap().unwrap();
    assert_eq!((moved.owner_host.as_str(), moved.epoch), ("host-2", 1));

    // The old owner is fenced everywhere; the new one may write.
    let update = SessionUpdate::default();
    assert_fenced(store.update_session(ID_A, 0, &update).await, ID_A, 0);
    assert_fenced(
        store
            .save_screen(ID_A, 0, "host-1", &write("old", vec![], 10))
            .await,
        ID_A,
        0,
    );
    assert_fenced(store.take_over(ID_A, 0, "host-3").await, ID_A, 0);
    store.update_session(ID_A, 1, &update).await.unwrap();
    store
        .save_screen(ID_A, 1, "host-2", &write("new", vec![], 10))
        .await
        .unwrap();

    assert_eq!(store.take_over(ID_A, 1, "host-3").await.unwrap(), 2);
    assert_eq!(store.get_session(ID_A).await.unwrap().unwrap().epoch, 2);
    assert_not_found(store.take_over(ID_B, 0, "host-3").await, ID_B);
}

pub async fn clock_is_monotone_and_close_to_system_time(store: Arc<dyn Store>) {
    let mut last = store.now().await.unwrap();
    for _ in 0..20 {
        let now = store.now().await.unwrap();
        assert!(now >= last, "clock went back from {last} to {now}");
        last = now;
    }
    // The database runs on this machine, so its clock agrees with ours.
    let skew = (last - system_now()).abs();
    assert!(skew < 5_000, "backend clock is {skew} ms away from ours");
}

pub async fn two_instances_see_each_others_writes(first: Arc<dyn Store>, second: Arc<dyn Store>) {
    first.create_session(&record(ID_A, "ada")).await.unwrap();
    first
        .save_screen(ID_A, 0, "host-1", &write("one", vec![block(0, 3)], 10))
        .await
        .unwrap();
    let seen = second.load_screen(ID_A).await.unwrap().unwrap();
    assert_eq!(seen.screen, b"one");
    assert!(matches!(
        second.create_session(&record(ID_A, "ada")).await,
        Err(StoreError::Duplicate(_))
    ));

    assert_eq!(second.take_over(ID_A, 0, "host-2").await.unwrap(), 1);
    assert_fenced(
        first
            .save_screen(ID_A, 0, "host-1", &write("late", vec![], 10))
            .await,
        ID_A,
        0,
    );
    assert_eq!(
        first.get_session(ID_A).await.unwrap().unwrap().owner_host,
        "host-2"
    );
}

fn session_id(n: u64) -> String {
    format!("{n:032x}")
}

pub async fn claiming_a_session_keeps_the_owners_cap(store: Arc<dyn Store>) {
    for n in 1..=3 {
        store
            .claim_session(&record(&session_id(n), "ada"), 3)
            .await
            .unwrap();
    }
    match store.claim_session(&record(&session_id(4), "ada"), 3).await {
        Err(StoreError::TooManySessions {
            owner,
            running,
            max,
        }) => {
            assert_eq!((owner.as_str(), running, max), ("ada", 3, 3));
        }
        other => panic!("a fourth session within a cap of 3: {other:?}"),
    }
    // Nothing of the refused claim was written.
    assert_eq!(store.get_session(&session_id(4)).await.unwrap(), None);
    // Another owner has a cap of their own.
    store
        .claim_session(&record(&session_id(5), "bob"), 3)
        .await
        .unwrap();
    // A claimed id is still unique.
    assert_duplicate(
        store.claim_session(&record(&session_id(5), "bob"), 3).await,
        &session_id(5),
    );
    // An ended session frees its place.
    store.end_session(&session_id(1)).await.unwrap();
    store
        .claim_session(&record(&session_id(4), "ada"), 3)
        .await
        .unwrap();
    assert_eq!(
        store.get_user("ada").await.unwrap().map(|u| u.name),
        Some("ada".to_owned())
    );
}

pub async fn concurrent_claims_never_pass_the_cap(first: Arc<dyn Store>, second: Arc<dyn Store>) {
    const CAP: u32 = 3;
    const RACERS: u64 = 10;
    // Several rounds, so a lucky interleaving cannot hide a race; each
    // round ends the sessions of the one before.
    for round in 0..3u64 {
        let barrier = Arc::new(Barrier::new(usize::try_from(RACERS).unwrap()));
        let tasks: Vec<_> = (0..RACERS)
            .map(|racer| {
                let store = if racer % 2 == 0 { &first } else { &second }.clone();
                let barrier = barrier.clone();
                let id = session_id(round * 100 + racer + 1);
                tokio::spawn(async move {
                    barrier.wait().await;
                    let claimed = store.claim_session(&record(&id, "ada"), CAP).await;
                    (id, claimed)
                })
            })
            .collect();
        let mut won = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (id, Ok(())) => won.push(id),
                (_, Err(StoreError::TooManySessions { max: CAP, .. })) => {}
                (id, Err(other)) => panic!("round {round}: {id}: {other:?}"),
            }
        }
        assert_eq!(won.len(), CAP as usize, "round {round}: {won:?}");
        let running: Vec<String> = first
            .list_sessions(Some("ada"))
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.state == SessionState::Running)
            .map(|s| s.id)
            .collect();
        assert_eq!(running.len(), CAP as usize, "round {round}: {running:?}");
        for id in won {
            first.end_session(&id).await.unwrap();
        }
    }
}

pub async fn concurrent_take_overs_have_one_winner(first: Arc<dyn Store>, second: Arc<dyn Store>) {
    const RACERS: usize = 8;
    first.create_session(&record(ID_A, "ada")).await.unwrap();
    first.take_over(ID_A, 0, "host-0").await.unwrap();

    // Several rounds, so a lucky interleaving cannot hide a race.
    for round in 1..=5u64 {
        let barrier = Arc::new(Barrier::new(RACERS));
        let tasks: Vec<_> = (0..RACERS)
            .map(|racer| {
                let store = if racer % 2 == 0 { &first } else { &second }.clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let host = format!("host-{racer}");
                    (host.clone(), store.take_over(ID_A, round, &host).await)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (host, result) = task.await.unwrap();
            match result {
                Ok(epoch) => {
                    assert_eq!(epoch, round + 1);
                    winners.push(host);
                }
                Err(error) => assert_fenced(Err::<(), _>(error), ID_A, round),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let session = second.get_session(ID_A).await.unwrap().unwrap();
        assert_eq!(session.epoch, round + 1);
        assert_eq!(session.owner_host, winners[0]);
    }
}

pub async fn concurrent_writers_only_current_epoch_succeeds(
    first: Arc<dyn Store>,
    second: Arc<dyn Store>,
) {
    first.create_session(&record(ID_A, "ada")).await.unwrap();
    // Nothing is trimmed: on a busy machine the old owner may write more
    // lines than any limit before the takeover, and a trim would then drop
    // blocks this test counts.
    const KEEP_ALL: u32 = u32::MAX;
    // The new owner's blocks, numbered past anything the old one can
    // reach however fast it writes.
    const NEW_BLOCKS: u64 = 1 << 40;

    // The old owner writes as fast as it can until it is fenced; meanwhile
    // a new owner takes over on another instance and writes too.
    let old_owner = tokio::spawn({
        let store = first.clone();
        async move {
            let mut saved = 0u64;
            loop {
                let screen = write(&format!("old {saved}"), vec![block(saved, 1)], KEEP_ALL);
                match store.save_screen(ID_A, 0, "host-1", &screen).await {
                    Ok(()) => saved += 1,
                    Err(error) => return (saved, error),
                }
            }
        }
    });
    // Let the old owner get some writes in first.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while second.load_screen(ID_A).await.unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "old owner never wrote"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(second.take_over(ID_A, 0, "host-2").await.unwrap(), 1);
    let at_takeover = second.load_screen(ID_A).await.unwrap().unwrap();

    let racers: Vec<_> = (0..4u64)
        .map(|n| {
            let store = second.clone();
            tokio::spawn(async move {
                let screen = write(
                    &format!("new {n}"),
                    vec![block(NEW_BLOCKS + n, 1)],
                    KEEP_ALL,
                );
                store.save_screen(ID_A, 1, "host-2", &screen).await
            })
        })
        .collect();
    for racer in racers {
        racer.await.unwrap().unwrap();
    }
    let (saved, error) = old_owner.await.unwrap();
    assert!(saved > 0);
    assert_fenced(Err::<(), _>(error), ID_A, 0);

    // Nothing the old owner wrote after the takeover survived: its blocks
    // are exactly those already there when the takeover committed.
    let last = second.load_screen(ID_A).await.unwrap().unwrap();
    assert!(last.screen.starts_with(b"new "), "{:?}", last.screen);
    assert_eq!(last.saved_by, "host-2");
    let current = second.get_session(ID_A).await.unwrap().unwrap().epoch;
    assert_eq!(
        last.epoch, current,
        "the last write carried the current epoch"
    );
    let old_blocks: Vec<_> = last.blocks.iter().filter(|b| b.seq < NEW_BLOCKS).collect();
    let before: Vec<_> = at_takeover.blocks.iter().collect();
    assert_eq!(old_blocks, before);
    assert_eq!(last.blocks.len(), before.len() + 4);
}

/// Waits until the backend's clock has passed `instant`.
async fn wait_for_clock_after(store: &dyn Store, instant: Millis, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.now().await.unwrap() <= instant {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn no_hosts_in_a_fresh_database(store: Arc<dyn Store>) {
    assert!(store.list_hosts().await.unwrap().is_empty());
    assert_eq!(store.get_host("h1").await.unwrap(), None);
}

pub async fn renewing_a_lease_registers_then_extends_it(store: Arc<dyn Store>) {
    let before = store.now().await.unwrap();
    let registered = store
        .renew_lease("h1", None, "http://127.0.0.1:8081", 5_000, 3, false)
        .await
        .unwrap();
    let after = store.now().await.unwrap();
    assert!(
        !registered.lapsed,
        "a first registration has no lease to lapse"
    );
    let first = registered.host;
    assert_eq!(
        (
            first.id.as_str(),
            first.url.as_str(),
            first.load,
            first.drain()
        ),
        ("h1", "http://127.0.0.1:8081", 3, None)
    );
    assert!((before..=after).contains(&first.registered_at));
    assert!((before + 5_000..=after + 5_000).contains(&first.lease_expires_at));
    assert!(first.is_live(after));
    assert_eq!(store.get_host("h1").await.unwrap(), Some(first.clone()));

    wait_for_clock_after(&*store, first.registered_at, "the backend clock is stuck").await;
    let renewed = store
        .renew_lease("h1", None, "http://127.0.0.1:9091", 8_000, 0, false)
        .await
        .unwrap();
    assert!(!renewed.lapsed, "renewed inside its lease");
    let renewed = renewed.host;
    assert_eq!(renewed.registered_at, first.registered_at);
    assert_eq!(
        (renewed.url.as_str(), renewed.load),
        ("http://127.0.0.1:9091", 0)
    );
    assert!(renewed.lease_expires_at > first.lease_expires_at);
    assert_eq!(store.get_host("h1").await.unwrap(), Some(renewed));
}

pub async fn a_lease_expires_by_the_backend_clock(store: Arc<dyn Store>) {
    let host = store
        .renew_lease("h1", None, "http://127.0.0.1:8081", 1, 0, false)
        .await
        .unwrap()
        .host;
    wait_for_clock_after(&*store, host.lease_expires_at, "the lease never expired").await;
    let now = store.now().await.unwrap();
    assert!(!store.get_host("h1").await.unwrap().unwrap().is_live(now));

    // Renewing brings it back, and says it had lapsed: the host must check
    // its sessions are still its own.
    let back = store
        .renew_lease("h1", None, "http://127.0.0.1:8081", 5_000, 0, false)
        .await
        .unwrap();
    assert!(back.lapsed);
    assert!(back.host.is_live(store.now().await.unwrap()));
    assert_eq!(back.host.registered_at, host.registered_at);
    let again = store
        .renew_lease("h1", None, "http://127.0.0.1:8081", 5_000, 0, false)
        .await
        .unwrap();
    assert!(!again.lapsed, "only the first renewal after the gap lapsed");
}

pub async fn an_absurd_ttl_is_capped_not_overflowed(store: Arc<dyn Store>) {
    let host = store
        .renew_lease("h1", None, "http://127.0.0.1:8081", u64::MAX, 0, false)
        .await
        .unwrap()
        .host;
    let now = store.now().await.unwrap();
    let cap = Millis::try_from(store::MAX_LEASE_TTL_MS).unwrap();
    assert!(host.lease_expires_at > now);
    assert!(host.lease_expires_at <= now + cap);
}

pub async fn an_operators_drain_outlives_renewals_and_restarts(store: Arc<dyn Store>) {
    store
        .renew_lease("h1", None, "http://127.0.0.1:8081", 5_000, 1, false)
        .await
        .unwrap();
    store.set_drain_requested("h1", true).await.unwrap();
    let drained = store.get_host("h1").await.unwrap().unwrap();
    assert_eq!(drained.drain(), Some(Drain::Operator));
    assert!(drained.is_draining());

    // Renewals, whatever the host says of its own shutdown, keep it: only
    // the operator lifts it.
    for shutting_down in [false, true, false] {
        let kept = store
            .renew_lease("h1", None, "http://127.0.0.1:8081", 5_000, 1, shutting_down)
            .await
            .unwrap()
            .host;
        assert!(
            kept.drain_requested,
            "renewal shutting_down={shutting_down}"
        );
        assert_eq!(kept.drain(), Some(Drain::Operator));
    }
    store.set_drain_requested("h1", false).await.unwrap();
    let lifted = store.get_host("h1").await.unwrap().unwrap();
    assert_eq!(lifted.drain(), None);
}

pub async fn a_shutdown_drain_ends_with_the_next_renewal(store: Arc<dyn Store>) {
    // SIGTERM: the host says it is shutting down...
    let stopping = store
        .renew_lease("h1", None, "http://127.0.0.1:8081", 5_000, 2, true)
        .await
        .unwrap()
        .host;
    assert_eq!(stopping.drain(), Some(Drain::Shutdown));
    // ...and the same id started again serves again: its first renewal
    // replaces the flag (the bug was that the store kept it forever).
    let restarted = store
        .renew_lease("h1", None, "http://127.0.0.1:8081", 5_000, 0, false)
        .await
        .unwrap()
        .host;
    assert_eq!(restarted.drain(), None);
    assert!(!restarted.is_draining());
    assert_eq!(store.get_host("h1").await.unwrap(), Some(restarted));
}

pub async fn draining_an_unknown_host_is_not_found(store: Arc<dyn Store>) {
    assert_not_found(store.set_drain_requested("h9", true).await, "h9");
    assert_eq!(store.get_host("h9").await.unwrap(), None);
}

pub async fn hosts_are_listed_by_id(store: Arc<dyn Store>) {
    for (id, load) in [("h3", 7), ("h1", 2), ("h2", 0)] {
        let url = format!("http://{id}.example:80");
        store
            .enrol_host(id, &url, &format!("secret-{id}"))
            .await
            .unwrap();
        store
            .renew_lease(id, Some(&format!("secret-{id}")), &url, 5_000, load, false)
            .await
            .unwrap();
    }
    let hosts = store.list_hosts().await.unwrap();
    let seen: Vec<(&str, u32)> = hosts.iter().map(|h| (h.id.as_str(), h.load)).collect();
    assert_eq!(seen, [("h1", 2), ("h2", 0), ("h3", 7)]);
    assert_eq!(hosts[2].url, "http://h3.example:80");
}

fn assert_not_enrolled(result: Result<store::LeaseRenewal, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotEnrolled { .. }) => {}
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

pub async fn only_enrolled_hosts_hold_leases_with_their_own_secret(store: Arc<dyn Store>) {
    const H1: &str = "https://h1.example";
    const H2: &str = "https://h2.example";
    // Nothing enrolled: loopback hosts register as before, others do not.
    store
        .renew_lease("local", None, "http://127.0.0.1:8081", 5_000, 0, false)
        .await
        .unwrap();
    assert_not_enrolled(
        store.renew_lease("h1", None, H1, 5_000, 0, false).await,
        "open registration of a public url",
    );
    assert!(store.get_host("h1").await.unwrap().is_none());

    store.enrol_host("h1", H1, "one").await.unwrap();
    store.enrol_host("h2", H2, "two").await.unwrap();
    store
        .renew_lease("h1", Some("one"), H1, 5_000, 3, false)
        .await
        .unwrap();
    store
        .renew_lease("h2", Some("two"), H2, 5_000, 0, false)
        .await
        .unwrap();
    let now = store.now().await.unwrap();

    // h2's secret renews neither h1 nor an id of its own making, and h1
    // cannot move its url; nothing of those attempts is written.
    assert_not_enrolled(
        store
            .renew_lease("h1", Some("two"), H1, 60_000, 0, true)
            .await,
        "h2's secret for h1",
    );
    assert_not_enrolled(
        store.renew_lease("h1", None, H1, 60_000, 0, true).await,
        "h1 without a secret",
    );
    assert_not_enrolled(
        store
            .renew_lease("h3", Some("two"), H2, 60_000, 0, false)
            .await,
        "an id nobody enrolled",
    );
    assert_not_enrolled(
        store
            .renew_lease("h1", Some("one"), "https://evil.example", 60_000, 0, false)
            .await,
        "h1 at another url",
    );
    // Now that hosts are enrolled, loopback is no exception either.
    assert_not_enrolled(
        store
            .renew_lease("local", None, "http://127.0.0.1:8081", 5_000, 0, false)
            .await,
        "an unenrolled loopback host",
    );
    let h1 = store.get_host("h1").await.unwrap().unwrap();
    assert_eq!((h1.url.as_str(), h1.load, h1.shutting_down), (H1, 3, false));
    assert!(h1.lease_expires_at <= now + 5_000, "{h1:?}");
    assert!(store.get_host("h3").await.unwrap().is_none());

    // Enrolling h1 again (a leaked secret) ends its lease now; the old
    // secret is refused and the new one renews. h2 is untouched.
    store.enrol_host("h1", H1, "one-again").await.unwrap();
    let now = store.now().await.unwrap();
    assert!(!store.get_host("h1").await.unwrap().unwrap().is_live(now));
    assert_not_enrolled(
        store
            .renew_lease("h1", Some("one"), H1, 5_000, 0, false)
            .await,
        "a revoked secret",
    );
    let renewed = store
        .renew_lease("h1", Some("one-again"), H1, 5_000, 0, false)
        .await
        .unwrap();
    assert!(
        renewed.lapsed,
        "a renewal after a revocation must check its sessions"
    );
    assert!(store.get_host("h2").await.unwrap().unwrap().is_live(now));
    store
        .renew_lease("h2", Some("two"), H2, 5_000, 0, false)
        .await
        .unwrap();

    // Removing h2 ends its lease and its secret; h1 carries on.
    store.remove_host_enrolment("h2").await.unwrap();
    let now = store.now().await.unwrap();
    assert!(!store.get_host("h2").await.unwrap().unwrap().is_live(now));
    assert_not_enrolled(
        store
            .renew_lease("h2", Some("two"), H2, 5_000, 0, false)
            .await,
        "a removed host",
    );
    assert_not_found(store.remove_host_enrolment("h2").await, "h2");
    let listed: Vec<(String, String)> = store
        .list_host_enrolments()
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.id, e.url))
        .collect();
    assert_eq!(listed, [("h1".to_owned(), H1.to_owned())]);
}

pub async fn concurrent_renewals_of_one_host_all_succeed(
    first: Arc<dyn Store>,
    second: Arc<dyn Store>,
) {
    // Two processes renewing under one host id (a misconfigured
    // duplicate, or a retry racing a slow first answer): every upsert
    // lands and none deadlocks.
    const RENEWERS: u32 = 8;
    let barrier = Arc::new(Barrier::new(RENEWERS as usize));
    let tasks: Vec<_> = (0..RENEWERS)
        .map(|n| {
            let store = if n % 2 == 0 { &first } else { &second }.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .renew_lease("h1", None, "http://127.0.0.1:8081", 5_000, n, false)
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let hosts = second.list_hosts().await.unwrap();
    assert_eq!(hosts.len(), 1);
    assert!(hosts[0].load < RENEWERS);
    assert_eq!(first.get_host("h1").await.unwrap(), Some(hosts[0].clone()));
}

// Accounts and logins.

/// What an argon2id PHC string looks like; the store never parses it.
const HASH_1: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
const HASH_2: &str = "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$bmV3bmV3bmV3bmV3bmV3bmV3";
/// A login lifetime no test outlives.
const HOUR_MS: u64 = 3_600_000;

/// A login id as the directory makes them: 64 lowercase hex digits.
fn login_id(n: u64) -> String {
    format!("{n:064x}")
}

fn assert_duplicate(result: Result<impl std::fmt::Debug, StoreError>, id: &str) {
    match result {
        Err(StoreError::Duplicate(name)) => assert_eq!(name, id),
        other => panic!("expected duplicate, got {other:?}"),
    }
}

async fn live(store: &dyn Store, id: &str) -> Option<Login> {
    store.get_login(id).await.unwrap()
}

pub async fn accounts_round_trip(store: Arc<dyn Store>) {
    let before = store.now().await.unwrap();
    store.create_account("ada", HASH_1).await.unwrap();
    let after = store.now().await.unwrap();
    let ada = store.get_account("ada").await.unwrap().unwrap();
    assert!((before..=after).contains(&ada.created_at), "{ada:?}");
    assert_eq!(
        ada,
        Account {
            name: "ada".to_owned(),
            password_hash: HASH_1.to_owned(),
            disabled: false,
            created_at: ada.created_at,
        }
    );
    // Debug never shows the hash.
    assert!(!format!("{ada:?}").contains("argon2"));

    // A taken name stays as it was, even when the account is disabled.
    assert_duplicate(store.create_account("ada", HASH_2).await, "ada");
    store.set_disabled("ada", true).await.unwrap();
    assert_duplicate(store.create_account("ada", HASH_2).await, "ada");
    let kept = store.get_account("ada").await.unwrap().unwrap();
    assert_eq!((kept.password_hash.as_str(), kept.disabled), (HASH_1, true));
    assert_eq!(store.get_account("bob").await.unwrap(), None);

    // Accounts are not session-owner records, and vice versa.
    assert_eq!(store.get_user("ada").await.unwrap(), None);

    // Listed by name, bytewise whatever the database's locale: `-` < `.`
    // < digits < `_` < letters.
    for name in ["b", "a_b", "ab", "a.b", "a0", "a-b"] {
        store.create_account(name, HASH_2).await.unwrap();
    }
    let names: Vec<String> = store
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|account| account.name)
        .collect();
    assert_eq!(names, ["a-b", "a.b", "a0", "a_b", "ab", "ada", "b"]);
    let listed = store.list_accounts().await.unwrap();
    assert_eq!(listed[5], kept);
}

pub async fn changing_an_unknown_account_is_not_found(store: Arc<dyn Store>) {
    assert_not_found(store.set_password("ghost", HASH_1).await, "ghost");
    assert_not_found(store.set_disabled("ghost", true).await, "ghost");
    assert_not_found(store.set_disabled("ghost", false).await, "ghost");
    assert_not_found(
        store.create_login(&login_id(1), "ghost", HOUR_MS).await,
        "ghost",
    );
    assert_eq!(store.get_account("ghost").await.unwrap(), None);
    assert_eq!(live(&*store, &login_id(1)).await, None);
}

pub async fn settings_follow_the_account(store: Arc<dyn Store>, other: Arc<dyn Store>) {
    store.create_account("ada", HASH_1).await.unwrap();
    store.create_account("bob", HASH_1).await.unwrap();
    assert_eq!(store.get_settings("ada").await.unwrap(), None);
    let first = r#"{"font_size":16,"theme":"light"}"#;
    store.put_settings("ada", first).await.unwrap();
    // Another process (another directory replica) reads what one saved,
    // and a second save replaces the first whole.
    assert_eq!(
        other.get_settings("ada").await.unwrap().as_deref(),
        Some(first)
    );
    let second = r#"{"font_size":12,"theme":"solarized-dark","bell":"visual"}"#;
    other.put_settings("ada", second).await.unwrap();
    assert_eq!(
        store.get_settings("ada").await.unwrap().as_deref(),
        Some(second)
    );
    // One user's settings are theirs alone.
    assert_eq!(store.get_settings("bob").await.unwrap(), None);
    // Settings need an account, and the store keeps any text whole.
    assert_not_found(store.put_settings("ghost", first).await, "ghost");
    assert_eq!(store.get_settings("ghost").await.unwrap(), None);
    let unicode = "{\"font_family\":\"Noto Sans Mono CJK 日本語 \\\" '\"}";
    store.put_settings("bob", unicode).await.unwrap();
    assert_eq!(
        other.get_settings("bob").await.unwrap().as_deref(),
        Some(unicode)
    );
}

pub async fn a_login_is_live_until_it_expires(store: Arc<dyn Store>) {
    store.create_account("ada", HASH_1).await.unwrap();
    let before = store.now().await.unwrap();
    let login = store
        .create_login(&login_id(1), "ada", HOUR_MS)
        .await
        .unwrap();
    let after = store.now().await.unwrap();
    assert_eq!(
        (login.id.as_str(), login.user.as_str()),
        (login_id(1).as_str(), "ada")
    );
    assert!((before..=after).contains(&login.created_at), "{login:?}");
    assert_eq!(login.expires_at - login.created_at, 3_600_000);
    assert_eq!(live(&*store, &login_id(1)).await, Some(login.clone()));

    // A login id is unique; the first one is kept.
    assert_duplicate(
        store.create_login(&login_id(1), "ada", 5).await,
        &login_id(1),
    );
    assert_eq!(live(&*store, &login_id(1)).await, Some(login.clone()));

    // A short one dies by the backend clock; the long one lives on.
    let short = store.create_login(&login_id(2), "ada", 200).await.unwrap();
    assert_eq!(short.expires_at - short.created_at, 200);
    wait_for_clock_after(&*store, short.expires_at - 1, "the login never expired").await;
    assert_eq!(live(&*store, &login_id(2)).await, None);
    assert_eq!(live(&*store, &login_id(1)).await, Some(login));

    // An expired login is gone for good: creating another login sweeps it,
    // so even its id is free again.
    store
        .create_login(&login_id(3), "ada", HOUR_MS)
        .await
        .unwrap();
    let again = store
        .create_login(&login_id(2), "ada", HOUR_MS)
        .await
        .unwrap();
    assert_eq!(live(&*store, &login_id(2)).await, Some(again));
}

pub async fn an_absurd_login_ttl_is_capped_not_overflowed(store: Arc<dyn Store>) {
    store.create_account("ada", HASH_1).await.unwrap();
    let login = store
        .create_login(&login_id(1), "ada", u64::MAX)
        .await
        .unwrap();
    let cap = Millis::try_from(store::MAX_LOGIN_TTL_MS).unwrap();
    assert_eq!(login.expires_at - login.created_at, cap);
    assert!(live(&*store, &login_id(1)).await.is_some());
}

pub async fn ending_a_login_is_idempotent(store: Arc<dyn Store>) {
    store.create_account("ada", HASH_1).await.unwrap();
    store
        .create_login(&login_id(1), "ada", HOUR_MS)
        .await
        .unwrap();
    let other = store
        .create_login(&login_id(2), "ada", HOUR_MS)
        .await
        .unwrap();

    store.end_login(&login_id(1)).await.unwrap();
    assert_eq!(live(&*store, &login_id(1)).await, None);
    store.end_login(&login_id(1)).await.unwrap();
    store.end_login(&login_id(99)).await.unwrap();
    // Signing out one browser leaves the others signed in.
    assert_eq!(live(&*store, &login_id(2)).await, Some(other));
}

pub async fn a_new_password_ends_the_users_logins(store: Arc<dyn Store>) {
    store.create_account("ada", HASH_1).await.unwrap();
    store.create_account("bob", HASH_1).await.unwrap();
    store
        .create_login(&login_id(1), "ada", HOUR_MS)
        .await
        .unwrap();
    store
        .create_login(&login_id(2), "ada", HOUR_MS)
        .await
        .unwrap();
    let bobs = store
        .create_login(&login_id(3), "bob", HOUR_MS)
        .await
        .unwrap();

    store.set_password("ada", HASH_2).await.unwrap();
    let ada = store.get_account("ada").await.unwrap().unwrap();
    assert_eq!((ada.password_hash.as_str(), ada.disabled), (HASH_2, false));
    assert_eq!(live(&*store, &login_id(1)).await, None);
    assert_eq!(live(&*store, &login_id(2)).await, None);
    // Only that user's logins.
    assert_eq!(live(&*store, &login_id(3)).await, Some(bobs));
    assert_eq!(
        store
            .get_account("bob")
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        HASH_1
    );

    // Signing in again with the new password works.
    let fresh = store
        .create_login(&login_id(4), "ada", HOUR_MS)
        .await
        .unwrap();
    assert_eq!(live(&*store, &login_id(4)).await, Some(fresh));
}

pub async fn disabling_ends_the_users_logins(store: Arc<dyn Store>) {
    store.create_account("ada", HASH_1).await.unwrap();
    store.create_account("bob", HASH_1).await.unwrap();
    store
        .create_login(&login_id(1), "ada", HOUR_MS)
        .await
        .unwrap();
    let bobs = store
        .create_login(&login_id(2), "bob", HOUR_MS)
        .await
        .unwrap();

    store.set_disabled("ada", true).await.unwrap();
    assert!(store.get_account("ada").await.unwrap().unwrap().disabled);
    assert_eq!(live(&*store, &login_id(1)).await, None);
    assert_eq!(live(&*store, &login_id(2)).await, Some(bobs));
    // Disabling twice is harmless.
    store.set_disabled("ada", true).await.unwrap();

    // A login made for a disabled account (a sign-in racing the operator)
    // is never live.
    store
        .create_login(&login_id(3), "ada", HOUR_MS)
        .await
        .unwrap();
    assert_eq!(live(&*store, &login_id(3)).await, None);

    // Enabling again does not bring back the logins that disabling ended.
    store.set_disabled("ada", false).await.unwrap();
    let ada = store.get_account("ada").await.unwrap().unwrap();
    assert_eq!((ada.disabled, ada.password_hash.as_str()), (false, HASH_1));
    assert_eq!(live(&*store, &login_id(1)).await, None);
    let fresh = store
        .create_login(&login_id(4), "ada", HOUR_MS)
        .await
        .unwrap();
    assert_eq!(live(&*store, &login_id(4)).await, Some(fresh));
    // Enabling an enabled account ends nothing.
    store.set_disabled("ada", false).await.unwrap();
    assert!(live(&*store, &login_id(4)).await.is_some());
}

pub async fn live_logins_answers_as_get_login_does(store: Arc<dyn Store>) {
    assert_eq!(store.live_logins(&[]).await.unwrap(), Vec::<String>::new());
    store.create_account("ada", HASH_1).await.unwrap();
    store.create_account("bob", HASH_1).await.unwrap();
    // More than one query's worth, so the chunks are joined.
    let many = store::LIVE_LOGINS_CHUNK as u64 + 2;
    for n in 1..=many {
        store
            .create_login(&login_id(n), "ada", HOUR_MS)
            .await
            .unwrap();
    }
    store
        .create_login(&login_id(10_000), "bob", HOUR_MS)
        .await
        .unwrap();
    let short = store
        .create_login(&login_id(10_001), "bob", 200)
        .await
        .unwrap();
    store.end_login(&login_id(2)).await.unwrap();
    wait_for_clock_after(&*store, short.expires_at - 1, "the login never expired").await;

    let mut asked: Vec<String> = (1..=many).map(login_id).collect();
    asked.extend([login_id(10_000), login_id(10_001), login_id(99_999)]);
    asked.push(login_id(1)); // asked twice, answered once
    asked.push("not an id".to_owned());
    let mut expected: Vec<String> = (1..=many).filter(|n| *n != 2).map(login_id).collect();
    expected.push(login_id(10_000));
    expected.sort();
    let mut found = store.live_logins(&asked).await.unwrap();
    found.sort();
    assert_eq!(found, expected);
    for id in &asked {
        let one = store.get_login(id).await.unwrap().is_some();
        assert_eq!(
            one,
            found.contains(id),
            "get_login and live_logins disagree on {id}"
        );
    }

    // Disabling bob and a new password for ada end theirs at once, and
    // the flag alone says which was which.
    assert_eq!(store.account_disabled("bob").await.unwrap(), Some(false));
    store.set_disabled("bob", true).await.unwrap();
    assert_eq!(store.account_disabled("bob").await.unwrap(), Some(true));
    assert_eq!(store.account_disabled("ghost").await.unwrap(), None);
    store.set_password("ada", HASH_2).await.unwrap();
    assert_eq!(
        store.live_logins(&asked).await.unwrap(),
        Vec::<String>::new()
    );
}

pub async fn ending_a_session_fences_its_host(store: Arc<dyn Store>) {
    store.create_session(&record(ID_A, "ada")).await.unwrap();
    assert_eq!(store.take_over(ID_A, 0, "host-2").await.unwrap(), 1);
    store
        .save_screen(ID_A, 1, "host-2", &write("before", vec![block(0, 1)], 10))
        .await
        .unwrap();
    let running = store.get_session(ID_A).await.unwrap().unwrap();

    assert_eq!(store.end_session(ID_A).await.unwrap(), 2);
    let ended = store.get_session(ID_A).await.unwrap().unwrap();
    assert_eq!(
        ended,
        SessionRecord {
            state: SessionState::Ended,
            epoch: 2,
            ..running
        }
    );

    // The host still at epoch 1 learns it from its next write.
    let screen_before = store.load_screen(ID_A).await.unwrap();
    assert_fenced(
        store
            .save_screen(ID_A, 1, "host-2", &write("late", vec![block(1, 1)], 10))
            .await,
        ID_A,
        1,
    );
    let revive = SessionUpdate {
        state: Some(SessionState::Running),
        ..SessionUpdate::default()
    };
    assert_fenced(store.update_session(ID_A, 1, &revive).await, ID_A, 1);
    assert_fenced(store.take_over(ID_A, 1, "host-3").await, ID_A, 1);
    assert_eq!(store.load_screen(ID_A).await.unwrap(), screen_before);
    assert_eq!(store.get_session(ID_A).await.unwrap().unwrap(), ended);

    // Ending again fences again; an unknown session is not found.
    assert_eq!(store.end_session(ID_A).await.unwrap(), 3);
    assert_not_found(store.end_session(ID_B).await, ID_B);
    assert_eq!(store.get_session(ID_B).await.unwrap(), None);
}

pub async fn logins_are_shared_between_instances(first: Arc<dyn Store>, second: Arc<dyn Store>) {
    first.create_account("ada", HASH_1).await.unwrap();
    assert_duplicate(second.create_account("ada", HASH_2).await, "ada");
    let login = first
        .create_login(&login_id(1), "ada", HOUR_MS)
        .await
        .unwrap();
    assert_eq!(live(&*second, &login_id(1)).await, Some(login));

    // One directory replica disables the account; the other sees at once
    // that the login is dead.
    second.set_disabled("ada", true).await.unwrap();
    assert_eq!(live(&*first, &login_id(1)).await, None);
    second.set_disabled("ada", false).await.unwrap();

    let login = first
        .create_login(&login_id(2), "ada", HOUR_MS)
        .await
        .unwrap();
    assert_eq!(live(&*second, &login_id(2)).await, Some(login));
    second.end_login(&login_id(2)).await.unwrap();
    assert_eq!(live(&*first, &login_id(2)).await, None);
}

// Unix identities.

const RANGE: UidRange = UidRange {
    first: 200_000,
    last: 299_999,
};

fn allocated(uid: u32) -> UnixIdentity {
    UnixIdentity {
        uid,
        gid: uid,
        mapped: false,
    }
}

fn mapped(uid: u32, gid: u32) -> UnixIdentity {
    UnixIdentity {
        uid,
        gid,
        mapped: true,
    }
}

async fn identities(store: &dyn Store) -> Vec<(String, UnixIdentity)> {
    store.list_unix_identities().await.unwrap()
}

pub async fn unix_identities_are_given_once_lowest_first(store: Arc<dyn Store>) {
    assert!(identities(&*store).await.is_empty());
    let ada = store.unix_identity("ada", RANGE).await.unwrap();
    assert_eq!(ada, allocated(200_000));
    // Asked again, by the same host or another, the answer is the same.
    assert_eq!(store.unix_identity("ada", RANGE).await.unwrap(), ada);
    let bob = store.unix_identity("bob", RANGE).await.unwrap();
    assert_eq!(bob, allocated(200_001));
    assert_eq!(store.unix_identity("ada", RANGE).await.unwrap(), ada);

    // Identities need no account, and are no account.
    assert_eq!(store.get_account("ada").await.unwrap(), None);

    // The lowest free uid, also when it lies between taken ones: ada
    // moves to a system user's uid and frees 200000; a user mapped into
    // the range keeps the allocator off that uid.
    store.map_unix_identity("ada", 1_000, 1_000).await.unwrap();
    store.map_unix_identity("svc", 200_002, 50).await.unwrap();
    assert_eq!(
        store.unix_identity("cy", RANGE).await.unwrap(),
        allocated(200_000)
    );
    assert_eq!(
        store.unix_identity("dee", RANGE).await.unwrap(),
        allocated(200_003)
    );

    // Listed by name, bytewise.
    assert_eq!(
        identities(&*store).await,
        [
            ("ada".to_owned(), mapped(1_000, 1_000)),
            ("bob".to_owned(), allocated(200_001)),
            ("cy".to_owned(), allocated(200_000)),
            ("dee".to_owned(), allocated(200_003)),
            ("svc".to_owned(), mapped(200_002, 50)),
        ]
    );
}

pub async fn an_identity_outlives_a_change_of_range(store: Arc<dyn Store>) {
    let ada = store.unix_identity("ada", RANGE).await.unwrap();
    let elsewhere = UidRange {
        first: 500_000,
        last: 500_009,
    };
    assert_eq!(store.unix_identity("ada", elsewhere).await.unwrap(), ada);
    assert_eq!(
        store.unix_identity("bob", elsewhere).await.unwrap(),
        allocated(500_000)
    );
    // A mapped identity, far outside any range, is kept as well.
    store.map_unix_identity("cy", 1_001, 100).await.unwrap();
    assert_eq!(
        store.unix_identity("cy", elsewhere).await.unwrap(),
        mapped(1_001, 100)
    );
}

pub async fn an_exhausted_range_is_an_error(store: Arc<dyn Store>) {
    let two = UidRange {
        first: 300_000,
        last: 300_001,
    };
    store.unix_identity("ada", two).await.unwrap();
    store.unix_identity("bob", two).await.unwrap();
    match store.unix_identity("cy", two).await {
        Err(error @ StoreError::UidRangeExhausted { range }) => {
            assert_eq!(range, two);
            assert!(!error.is_transient());
            let message = error.to_string();
            assert!(message.contains("300000-300001"), "{message}");
            assert!(message.contains("widen --uid-range"), "{message}");
        }
        other => panic!("expected an exhausted range, got {other:?}"),
    }
    // Nothing was given, and those who have an identity keep it.
    assert_eq!(identities(&*store).await.len(), 2);
    assert_eq!(
        store.unix_identity("bob", two).await.unwrap(),
        allocated(300_001)
    );
    // A range of one uid, at the very top, works.
    let top = UidRange {
        first: store::MAX_UNIX_ID,
        last: store::MAX_UNIX_ID,
    };
    assert_eq!(
        store.unix_identity("cy", top).await.unwrap(),
        allocated(store::MAX_UNIX_ID)
    );
    assert!(matches!(
        store.unix_identity("dee", top).await,
        Err(StoreError::UidRangeExhausted { .. })
    ));
}

pub async fn mapping_refuses_root_and_taken_uids(store: Arc<dyn Store>) {
    let bob = store.unix_identity("bob", RANGE).await.unwrap();
    store.map_unix_identity("ada", 1_000, 1_000).await.unwrap();
    assert_eq!(identities(&*store).await[0].1, mapped(1_000, 1_000));

    for (uid, gid, what, id) in [
        (0, 1_000, "uid", 0),
        (1_002, 0, "gid", 0),
        (u32::MAX, 1_000, "uid", u32::MAX),
        (1_002, u32::MAX, "gid", u32::MAX),
    ] {
        match store.map_unix_identity("ada", uid, gid).await {
            Err(error @ StoreError::UnusableUnixId { .. }) => {
                assert!(
                    matches!(error, StoreError::UnusableUnixId { what: w, id: i } if (w, i) == (what, id)),
                    "{error:?}"
                );
                assert!(error.to_string().contains("root"), "{error}");
            }
            other => panic!("expected {uid}:{gid} refused, got {other:?}"),
        }
    }
    // Another user's uid, allocated or mapped, is refused, for a new name
    // and for one that has an identity.
    for (name, uid, holder) in [
        ("cy", bob.uid, "bob"),
        ("cy", 1_000, "ada"),
        ("bob", 1_000, "ada"),
    ] {
        match store.map_unix_identity(name, uid, 7).await {
            Err(StoreError::UidTaken { uid: u, name: n }) => {
                assert_eq!((u, n.as_str()), (uid, holder))
            }
            other => panic!("expected uid {uid} taken, got {other:?}"),
        }
    }
    // Nothing changed.
    assert_eq!(
        identities(&*store).await,
        [
            ("ada".to_owned(), mapped(1_000, 1_000)),
            ("bob".to_owned(), bob),
        ]
    );

    // The operator may replace a user's own identity, also keeping the uid
    // and changing the gid, and map an allocated identity as it is.
    store.map_unix_identity("ada", 1_000, 100).await.unwrap();
    store.map_unix_identity("ada", 1_005, 100).await.unwrap();
    store
        .map_unix_identity("bob", bob.uid, bob.gid)
        .await
        .unwrap();
    assert_eq!(
        store.unix_identity("ada", RANGE).await.unwrap(),
        mapped(1_005, 100)
    );
    assert_eq!(
        store.unix_identity("bob", RANGE).await.unwrap(),
        mapped(bob.uid, bob.gid)
    );
    // ada's old uid is free for someone else.
    store.map_unix_identity("cy", 1_000, 1_000).await.unwrap();
}

pub async fn identity_names_and_ranges_are_checked(store: Arc<dyn Store>) {
    for name in ["", "Ada", "-rf", "ada/..", "ada lovelace"] {
        for result in [
            store.unix_identity(name, RANGE).await.map(drop),
            store.map_unix_identity(name, 1_000, 1_000).await,
        ] {
            match result {
                Err(StoreError::InvalidUserName(refused)) => assert_eq!(refused, name),
                other => panic!("expected {name:?} refused, got {other:?}"),
            }
        }
    }
    // Ranges built from their fields are checked as parsing checks them.
    for (first, last) in [(0, 10), (10, 9), (10, u32::MAX)] {
        match store.unix_identity("ada", UidRange { first, last }).await {
            Err(error @ StoreError::InvalidUidRange(_)) => {
                assert!(error.to_string().contains("FIRST-LAST"), "{error}");
            }
            other => panic!("expected {first}-{last} refused, got {other:?}"),
        }
    }
    assert!(identities(&*store).await.is_empty());
}

pub async fn unix_identities_are_shared_between_instances(
    first: Arc<dyn Store>,
    second: Arc<dyn Store>,
) {
    let ada = first.unix_identity("ada", RANGE).await.unwrap();
    assert_eq!(second.unix_identity("ada", RANGE).await.unwrap(), ada);
    let bob = second.unix_identity("bob", RANGE).await.unwrap();
    assert_ne!(bob.uid, ada.uid);
    assert_eq!(first.unix_identity("bob", RANGE).await.unwrap(), bob);

    first.map_unix_identity("ada", 1_000, 1_000).await.unwrap();
    assert_eq!(
        second.unix_identity("ada", RANGE).await.unwrap(),
        mapped(1_000, 1_000)
    );
    assert!(matches!(
        second.map_unix_identity("cy", 1_000, 1_000).await,
        Err(StoreError::UidTaken { uid: 1_000, .. })
    ));
    assert_eq!(identities(&*first).await, identities(&*second).await);
}

/// Hosts giving identities to many new users at once, from two instances
/// (two processes' pools): every user gets a uid of their own, and the
/// lowest ones, with no gap.
pub async fn concurrent_allocations_give_distinct_uids(
    first: Arc<dyn Store>,
    second: Arc<dyn Store>,
) {
    const USERS: u32 = 20;
    let barrier = Arc::new(Barrier::new(USERS as usize));
    let tasks: Vec<_> = (0..USERS)
        .map(|n| {
            let store = if n % 2 == 0 { &first } else { &second }.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let name = format!("user{n}");
                barrier.wait().await;
                let identity = store.unix_identity(&name, RANGE).await;
                (name, identity)
            })
        })
        .collect();
    let mut given = Vec::new();
    for task in tasks {
        let (name, identity) = task.await.unwrap();
        let identity = identity.unwrap();
        assert_eq!(identity.gid, identity.uid);
        assert!(!identity.mapped);
        given.push((name, identity));
    }
    let mut uids: Vec<u32> = given.iter().map(|(_, identity)| identity.uid).collect();
    uids.sort_unstable();
    let lowest: Vec<u32> = (RANGE.first..RANGE.first + USERS).collect();
    assert_eq!(uids, lowest);
    given.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(identities(&*first).await, given);
    assert_eq!(identities(&*second).await, given);
}

/// Hosts asking for one new user's identity at once all get the same one.
pub async fn concurrent_allocations_of_one_name_agree(
    first: Arc<dyn Store>,
    second: Arc<dyn Store>,
) {
    const ASKERS: usize = 20;
    let barrier = Arc::new(Barrier::new(ASKERS));
    let tasks: Vec<_> = (0..ASKERS)
        .map(|n| {
            let store = if n % 2 == 0 { &first } else { &second }.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store.unix_identity("ada", RANGE).await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), allocated(RANGE.first));
    }
    assert_eq!(
        identities(&*second).await,
        [("ada".to_owned(), allocated(RANGE.first))]
    );
}
