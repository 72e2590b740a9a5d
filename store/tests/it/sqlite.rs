//! What only the SQLite backend has: a file several processes share.

use std::sync::Arc;

use store::{SqliteStore, Store, StoreError};

use crate::fixture::{Fixture, SqliteDb};

#[tokio::test]
async fn opening_twice_migrates_once() {
    let db = SqliteDb::create().await.unwrap();
    let first = SqliteStore::open(&db.path).await.unwrap();
    let second = SqliteStore::open(&db.path).await.unwrap();
    assert_eq!(first.kind(), "sqlite");
    assert!(second.list_sessions(None).await.unwrap().is_empty());

    let mut conn = raw_connection(&db).await;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(applied, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_racing_to_open_a_fresh_file_all_succeed() {
    let db = SqliteDb::create().await.unwrap();
    let path = Arc::new(db.path.clone());
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            tokio::spawn(async move { SqliteStore::open(&path).await })
        })
        .collect();
    for opener in openers {
        let store = opener.await.unwrap().unwrap();
        assert!(store.list_sessions(None).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_file_that_cannot_be_created_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("store.db");
    match SqliteStore::open(&path).await {
        Err(error @ StoreError::Unavailable(_)) => assert!(error.is_transient()),
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_closed_store_is_unavailable() {
    let db = SqliteDb::create().await.unwrap();
    let store = SqliteStore::open(&db.path).await.unwrap();
    store.close().await;
    assert!(matches!(store.now().await, Err(StoreError::Unavailable(_))));
}

#[tokio::test]
async fn open_url_names_the_same_file() {
    let db = SqliteDb::create().await.unwrap();
    let by_path = db.open().await;
    by_path
        .put_user(&store::User {
            id: "ada".to_owned(),
            name: "Ada".to_owned(),
        })
        .await
        .unwrap();
    let url = format!("sqlite://{}", db.path.display());
    let by_url = SqliteStore::open_url(&url).await.unwrap();
    assert_eq!(by_url.get_user("ada").await.unwrap().unwrap().name, "Ada");
}

async fn raw_connection(db: &SqliteDb) -> sqlx::SqliteConnection {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}", db.path.display());
    sqlx::SqliteConnection::connect(&url).await.unwrap()
}

/// Before migration 0004 a SIGTERM drain was stored like an operator's
/// and never cleared, so every host stopped once stayed drained. Opening
/// such a database lifts those drains (they cannot be told apart).
#[tokio::test]
async fn migration_0004_lifts_the_drains_stored_before_it() {
    let db = SqliteDb::create().await.unwrap();
    let store = SqliteStore::open(&db.path).await.unwrap();
    store
        .renew_lease("h1", None, "http://127.0.0.1:8081", 5_000, 0, false)
        .await
        .unwrap();
    store.close().await;
    // Back to the schema before 0004, with a drain stored the old way.
    let mut conn = raw_connection(&db).await;
    for statement in [
        "ALTER TABLE hosts DROP COLUMN shutting_down",
        "ALTER TABLE screens DROP COLUMN epoch",
        "DELETE FROM _sqlx_migrations WHERE version = 4",
        "UPDATE hosts SET draining = 1",
    ] {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    drop(conn);

    let store = SqliteStore::open(&db.path).await.unwrap();
    let host = store.get_host("h1").await.unwrap().unwrap();
    assert_eq!(host.drain(), None, "{host:?}");
    assert!(!host.shutting_down);
}
