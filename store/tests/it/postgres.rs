//! What only the PostgreSQL backend has: a server that may be unreachable,
//! and schemas.

use std::sync::Arc;
use std::time::Duration;

use store::{PgStore, Store, StoreError};

use crate::fixture::{database_url, drop_schema, fresh_schema};

/// Runs without `DATABASE_URL`: nothing listens on a port we just freed.
#[tokio::test]
async fn an_unreachable_server_is_unavailable_not_a_hang() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("postgres://postgres@127.0.0.1:{port}/test");

    let connect = PgStore::builder(&url)
        .acquire_timeout(Duration::from_secs(2))
        .connect();
    // The bound is generous: the point is that it ends, with an error.
    let result = tokio::time::timeout(Duration::from_secs(30), connect)
        .await
        .expect("connecting to a closed port must give up");
    match result {
        Err(error @ StoreError::Unavailable(_)) => assert!(error.is_transient()),
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_bad_schema_name_is_refused() {
    let result = PgStore::connect_in_schema("postgres://127.0.0.1:1/test", "x\"; DROP").await;
    assert!(matches!(result, Err(StoreError::Unavailable(message)) if message.contains("schema")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connecting_twice_and_concurrently_migrates_once() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let connects: Vec<_> = (0..4)
        .map(|_| {
            let (url, schema) = (url.clone(), schema.clone());
            tokio::spawn(async move { PgStore::connect_in_schema(&url, &schema).await })
        })
        .collect();
    for connect in connects {
        let store = connect.await.unwrap().unwrap();
        assert_eq!(store.kind(), "postgres");
        assert!(store.list_sessions(None).await.unwrap().is_empty());
    }
    let again = PgStore::connect_in_schema(&url, &schema).await.unwrap();
    assert!(again.list_sessions(None).await.unwrap().is_empty());

    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let applied: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM \"{schema}\"._sqlx_migrations"
    )))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(applied, [1, 2, 3, 4, 5, 6]);
    again.close().await;
    drop_schema(&url, &schema).await;
}

/// A sign-in that races a password change waits for it, so it can never
/// slip in between the change's deleting the user's logins and its commit
/// and survive as a login made with the old password. (SQLite needs no
/// test: `BEGIN IMMEDIATE` runs one writer at a time.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_waits_for_a_password_change_in_progress() {
    use sqlx::Connection as _;
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = Arc::new(PgStore::connect_in_schema(&url, &schema).await.unwrap());
    store.create_account("ada", "old hash").await.unwrap();

    // A password change, stopped after it ended the logins but before it
    // commits, as `set_password` runs it.
    let mut change = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("SELECT set_config('search_path', $1, false)")
        .bind(format!("\"{schema}\""))
        .execute(&mut change)
        .await
        .unwrap();
    let change_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut change)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut change).await.unwrap();
    sqlx::query("UPDATE accounts SET password_hash = 'new hash' WHERE name = 'ada'")
        .execute(&mut change)
        .await
        .unwrap();
    sqlx::query("DELETE FROM logins WHERE user_name = 'ada'")
        .execute(&mut change)
        .await
        .unwrap();

    let login_id = "ab".repeat(32);
    let sign_in = tokio::spawn({
        let (store, login_id) = (store.clone(), login_id.clone());
        async move { store.create_login(&login_id, "ada", 60_000).await }
    });
    // The sign-in must block on the change's row lock.
    let mut observer = sqlx::PgConnection::connect(&url).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let blocked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))",
        )
        .bind(change_pid)
        .fetch_one(&mut observer)
        .await
        .unwrap();
        if blocked > 0 {
            break;
        }
        assert!(
            !sign_in.is_finished(),
            "the sign-in did not wait for the password change"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sign-in never ran"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!sign_in.is_finished());

    sqlx::query("COMMIT").execute(&mut change).await.unwrap();
    let login = sign_in.await.unwrap().unwrap();
    // It was made after the change, so it stands.
    assert_eq!(store.get_login(&login_id).await.unwrap(), Some(login));
    let ada = store.get_account("ada").await.unwrap().unwrap();
    assert_eq!(ada.password_hash, "new hash");

    store.close().await;
    drop_schema(&url, &schema).await;
}

/// The PostgreSQL twin of the SQLite test: opening a database from before
/// migration 0004 lifts the drains stored the old way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_0004_lifts_the_drains_stored_before_it() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = PgStore::connect_in_schema(&url, &schema).await.unwrap();
    store
        .renew_lease("h1", None, "http://127.0.0.1:8081", 5_000, 0, false)
        .await
        .unwrap();
    store.close().await;
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET search_path TO \"{schema}\""
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    for statement in [
        "ALTER TABLE hosts DROP COLUMN shutting_down",
        "ALTER TABLE screens DROP COLUMN epoch",
        "DELETE FROM _sqlx_migrations WHERE version = 4",
        "UPDATE hosts SET draining = TRUE",
    ] {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    let store = PgStore::connect_in_schema(&url, &schema).await.unwrap();
    let host = store.get_host("h1").await.unwrap().unwrap();
    assert_eq!(host.drain(), None, "{host:?}");
    store.close().await;
    drop_schema(&url, &schema).await;
}
