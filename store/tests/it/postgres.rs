//! What only the PostgreSQL backend has: a server that may be unreachable,
//! and schemas.

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
    assert_eq!(applied, [1, 2]);
    again.close().await;
    drop_schema(&url, &schema).await;
}
