//! Share links: made by a session's owner, found by the hash of their
//! token, revoked by the owner alone, and live only while neither revoked
//! nor expired by the backend's clock and their session runs.

use std::sync::Arc;

use store::{MAX_SHARE_TTL_MS, SessionState, ShareRecord, Store, StoreError};

use super::{
    HOUR_MS, ID_A, ID_B, ID_C, assert_duplicate, assert_not_found, record, session_id,
    wait_for_clock_after, wait_for_clock_past,
};

/// A share id as the directory makes them: 32 lowercase hex digits.
fn share_id(n: u64) -> String {
    format!("{n:032x}")
}

/// A token's hash as the directory makes them: 64 lowercase hex digits.
fn token_hash(n: u64) -> String {
    format!("{:064x}", n + 0xabc)
}

async fn share(store: &dyn Store, n: u64, session: &str, owner: &str, ttl_ms: u64) -> ShareRecord {
    store
        .create_share(
            &share_id(n),
            &token_hash(n),
            session,
            owner,
            n.is_multiple_of(2),
            ttl_ms,
        )
        .await
        .unwrap()
}

pub async fn a_share_is_found_by_its_tokens_hash(store: Arc<dyn Store>) {
    store.create_session(&record(ID_A, "ada")).await.unwrap();
    assert_eq!(store.share_by_token(&token_hash(1)).await.unwrap(), None);

    let before = store.now().await.unwrap();
    let made = store
        .create_share(&share_id(1), &token_hash(1), ID_A, "ada", true, HOUR_MS)
        .await
        .unwrap();
    let after = store.now().await.unwrap();
    assert_eq!(
        (
            made.id.as_str(),
            made.token_hash.as_str(),
            made.session.as_str(),
            made.owner.as_str(),
            made.may_type,
            made.revoked
        ),
        (
            share_id(1).as_str(),
            token_hash(1).as_str(),
            ID_A,
            "ada",
            true,
            false
        )
    );
    assert!((before..=after).contains(&made.created_at), "{made:?}");
    assert_eq!(made.expires_at - made.created_at, 3_600_000);
    assert_eq!(
        store.share_by_token(&token_hash(1)).await.unwrap(),
        Some(made.clone())
    );
    // The id is no token: nothing is found by it.
    assert_eq!(store.share_by_token(&share_id(1)).await.unwrap(), None);

    // Ids and token hashes are unique; the first share is kept.
    assert_duplicate(
        store
            .create_share(&share_id(1), &token_hash(2), ID_A, "ada", false, HOUR_MS)
            .await,
        &share_id(1),
    );
    assert_duplicate(
        store
            .create_share(&share_id(2), &token_hash(1), ID_A, "ada", false, HOUR_MS)
            .await,
        &share_id(2),
    );
    assert_eq!(
        store.share_by_token(&token_hash(1)).await.unwrap(),
        Some(made)
    );
    assert_eq!(store.share_by_token(&token_hash(2)).await.unwrap(), None);

    // An absurd ttl is cut to the longest a share may last.
    let long = share(&*store, 3, ID_A, "ada", u64::MAX).await;
    assert_eq!(
        long.expires_at - long.created_at,
        i64::try_from(MAX_SHARE_TTL_MS).unwrap()
    );
}

pub async fn only_the_owner_shares_a_running_session(store: Arc<dyn Store>) {
    store.create_session(&record(ID_A, "ada")).await.unwrap();
    store.create_session(&record(ID_B, "ada")).await.unwrap();
    // Another user's session answers as an unknown one.
    assert_not_found(
        store
            .create_share(&share_id(1), &token_hash(1), ID_A, "bob", false, HOUR_MS)
            .await,
        ID_A,
    );
    assert_not_found(
        store
            .create_share(&share_id(1), &token_hash(1), ID_C, "ada", false, HOUR_MS)
            .await,
        ID_C,
    );
    // An ended session has nothing left to watch.
    store.end_session(ID_B).await.unwrap();
    match store
        .create_share(&share_id(1), &token_hash(1), ID_B, "ada", false, HOUR_MS)
        .await
    {
        Err(StoreError::SessionEnded(session)) => assert_eq!(session, ID_B),
        other => panic!("expected session ended, got {other:?}"),
    }
    // None of them wrote anything.
    assert!(store.list_shares("ada").await.unwrap().is_empty());
    assert!(store.list_shares("bob").await.unwrap().is_empty());
    assert_eq!(store.share_by_token(&token_hash(1)).await.unwrap(), None);
}

pub async fn shares_are_listed_newest_first_by_owner(store: Arc<dyn Store>) {
    store.create_session(&record(ID_A, "ada")).await.unwrap();
    store.create_session(&record(ID_B, "bob")).await.unwrap();
    assert!(store.list_shares("ada").await.unwrap().is_empty());

    let first = share(&*store, 1, ID_A, "ada", HOUR_MS).await;
    wait_for_clock_past(&*store, first.created_at).await;
    let bobs = share(&*store, 2, ID_B, "bob", HOUR_MS).await;
    let second = share(&*store, 3, ID_A, "ada", HOUR_MS).await;
    wait_for_clock_past(&*store, second.created_at).await;
    let third = share(&*store, 4, ID_A, "ada", 1).await;
    store.revoke_share("ada", &second.id).await.unwrap();
    wait_for_clock_after(&*store, third.expires_at, "the share never expired").await;

    // Revoked and expired shares are listed too: the caller filters.
    let revoked = ShareRecord {
        revoked: true,
        ..second
    };
    assert_eq!(
        store.list_shares("ada").await.unwrap(),
        [third, revoked, first]
    );
    assert_eq!(store.list_shares("bob").await.unwrap(), [bobs]);
    assert!(store.list_shares("eve").await.unwrap().is_empty());
}

pub async fn only_the_owner_revokes_a_share(store: Arc<dyn Store>) {
    store.create_session(&record(ID_A, "ada")).await.unwrap();
    let made = share(&*store, 1, ID_A, "ada", HOUR_MS).await;

    // Someone else's revoke, or one of no share, finds nothing.
    assert_not_found(store.revoke_share("bob", &made.id).await, &made.id);
    assert_not_found(store.revoke_share("ada", &share_id(9)).await, &share_id(9));
    assert_eq!(
        store
            .live_shares(std::slice::from_ref(&made.id))
            .await
            .unwrap(),
        [made.id.as_str()]
    );

    store.revoke_share("ada", &made.id).await.unwrap();
    // Revoking again is no error, and a revoked share stays revoked.
    store.revoke_share("ada", &made.id).await.unwrap();
    let found = store.share_by_token(&made.token_hash).await.unwrap();
    assert_eq!(
        found,
        Some(ShareRecord {
            revoked: true,
            ..made.clone()
        })
    );
    assert!(store.live_shares(&[made.id]).await.unwrap().is_empty());
}

pub async fn live_shares_leaves_out_revoked_expired_and_ended(store: Arc<dyn Store>) {
    assert_eq!(store.live_shares(&[]).await.unwrap(), Vec::<String>::new());
    store.create_session(&record(ID_A, "ada")).await.unwrap();
    store.create_session(&record(ID_B, "bob")).await.unwrap();
    let ended = session_id(7);
    store.create_session(&record(&ended, "ada")).await.unwrap();
    // More than one query's worth, so the chunks are joined.
    let many = store::LIVE_LOGINS_CHUNK as u64 + 2;
    for n in 1..=many {
        share(&*store, n, ID_A, "ada", HOUR_MS).await;
    }
    share(&*store, 10_000, ID_B, "bob", HOUR_MS).await;
    let short = share(&*store, 10_001, ID_B, "bob", 200).await;
    share(&*store, 10_002, &ended, "ada", HOUR_MS).await;
    store.revoke_share("ada", &share_id(2)).await.unwrap();
    // Ending a session ends its shares with it.
    store.end_session(&ended).await.unwrap();
    assert_eq!(
        store.get_session(&ended).await.unwrap().unwrap().state,
        SessionState::Ended
    );
    wait_for_clock_after(&*store, short.expires_at - 1, "the share never expired").await;

    let mut asked: Vec<String> = (1..=many).map(share_id).collect();
    asked.extend([10_000, 10_001, 10_002, 99_999].map(share_id));
    asked.push(share_id(1)); // asked twice, answered once
    asked.push("not an id".to_owned());
    let mut expected: Vec<String> = (1..=many).filter(|n| *n != 2).map(share_id).collect();
    expected.push(share_id(10_000));
    expected.sort();
    assert_eq!(store.live_shares(&asked).await.unwrap(), expected);
}
