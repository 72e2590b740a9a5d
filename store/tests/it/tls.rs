//! The store speaks TLS to PostgreSQL: a deployment's URL asks for it
//! with `sslmode` (`verify-full` and `sslrootcert` in production), and the
//! servers must connect rather than fail for want of a TLS stack.

use sqlx::Connection as _;

use crate::fixture::fresh_database;

/// `url` with `sslmode=require` added to its query.
fn with_tls(url: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode=require")
}

#[tokio::test]
async fn a_store_url_that_requires_tls_connects_over_tls() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let tls_url = with_tls(&db.url());
    let store = store::PgStore::connect_in_schema(&tls_url, "thinline_it")
        .await
        .expect("a store over TLS (is the workspace's sqlx built with a TLS feature?)");
    use store::Store as _;
    store.now().await.expect("a query over TLS");

    // The server agrees that the connection is encrypted.
    let mut conn = sqlx::PgConnection::connect(&tls_url).await.unwrap();
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(encrypted, "sslmode=require connected without TLS");
}
