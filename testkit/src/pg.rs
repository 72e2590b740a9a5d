//! A fresh PostgreSQL database per test.
//!
//! Tests run in parallel against one server (`DATABASE_URL`), fill it with
//! sessions, cut processes off from it and run the roles script in it, so
//! none may see another's rows or leave the shared `test` database dirty.
//! Each gets a database of its own, created on `DATABASE_URL`'s server and
//! dropped (forcibly, best effort) when the value is dropped; a test that
//! needs a schema or roles of its own makes them inside it.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The variable naming the PostgreSQL server tests use (`cargo xtask
/// test` sets it).
pub const DATABASE_URL_VAR: &str = "DATABASE_URL";

/// How long creating or dropping a database may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(20);

/// `DATABASE_URL`, if set and not empty.
pub fn database_url() -> Option<String> {
    std::env::var(DATABASE_URL_VAR)
        .ok()
        .filter(|url| !url.is_empty())
}

/// The parts of a `postgres://user@host:port/db?query` URL this module
/// rewrites. IPv6 hosts are not supported (the tests run on 127.0.0.1).
#[derive(Clone, Debug, PartialEq, Eq)]
struct PgUrl {
    scheme: String,
    userinfo: Option<String>,
    host: String,
    port: u16,
    database: String,
    query: Option<String>,
}

impl PgUrl {
    fn parse(url: &str) -> Result<PgUrl> {
        let (scheme, rest) = url
            .split_once("://")
            .with_context(|| format!("{url:?} is not a URL"))?;
        if scheme != "postgres" && scheme != "postgresql" {
            bail!("{url:?} is not a postgres:// URL");
        }
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query.to_string())),
            None => (rest, None),
        };
        let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo.to_string()), hostport),
            None => (None, authority),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse()
                    .with_context(|| format!("bad port in {url:?}"))?,
            ),
            None => (hostport, 5432),
        };
        Ok(PgUrl {
            scheme: scheme.to_string(),
            userinfo,
            host: host.to_string(),
            port,
            database: database.to_string(),
            query,
        })
    }

    fn render(&self) -> String {
        let mut url = format!("{}://", self.scheme);
        if let Some(userinfo) = &self.userinfo {
            url.push_str(userinfo);
            url.push('@');
        }
        url.push_str(&format!("{}:{}/{}", self.host, self.port, self.database));
        if let Some(query) = &self.query {
            url.push('?');
            url.push_str(query);
        }
        url
    }
}

/// A database that exists until this value is dropped.
#[derive(Debug)]
pub struct FreshDatabase {
    name: String,
    /// The server's URL with the original database, for administration.
    admin: PgUrl,
}

impl FreshDatabase {
    /// Creates `<prefix>_<unique>` on the server of `base_url`.
    pub async fn create(base_url: &str, prefix: &str) -> Result<FreshDatabase> {
        let admin = PgUrl::parse(base_url)?;
        let name = crate::unique_marker(&format!("{prefix}_")).to_ascii_lowercase();
        let mut conn = admin_connection(&admin.render()).await?;
        tokio::time::timeout(
            ADMIN_TIMEOUT,
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut conn),
        )
        .await
        .context("CREATE DATABASE took too long")?
        .with_context(|| format!("creating database {name}"))?;
        let _ = conn.close().await;
        Ok(FreshDatabase { name, admin })
    }

    /// A fresh database on `DATABASE_URL`'s server, or `None` (with a note
    /// on stderr) when it is not set: the PostgreSQL half of a suite is then
    /// skipped on a developer machine, and `cargo xtask test` always sets it.
    pub async fn from_env(prefix: &str) -> Result<Option<FreshDatabase>> {
        match database_url() {
            Some(url) => Self::create(&url, prefix).await.map(Some),
            None => {
                eprintln!("{DATABASE_URL_VAR} is not set: skipping the PostgreSQL backend");
                Ok(None)
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of this database on its own server.
    pub fn url(&self) -> String {
        PgUrl {
            database: self.name.clone(),
            ..self.admin.clone()
        }
        .render()
    }

    /// The URL of this database reached through `127.0.0.1:port` (a proxy
    /// in front of the server).
    pub fn url_through(&self, port: u16) -> String {
        PgUrl {
            database: self.name.clone(),
            host: "127.0.0.1".into(),
            port,
            ..self.admin.clone()
        }
        .render()
    }

    /// The server's address, for a proxy to forward to.
    pub fn server_addr(&self) -> Result<SocketAddr> {
        let host = if self.admin.host == "localhost" {
            "127.0.0.1"
        } else {
            self.admin.host.as_str()
        };
        let ip: std::net::IpAddr = host
            .parse()
            .with_context(|| format!("PostgreSQL host {host:?} is not an IP address"))?;
        Ok(SocketAddr::new(ip, self.admin.port))
    }

    /// A plain connection to this database, for statements a test runs
    /// itself.
    pub async fn connect(&self) -> Result<PgConnection> {
        admin_connection(&self.url()).await
    }
}

async fn admin_connection(url: &str) -> Result<PgConnection> {
    tokio::time::timeout(ADMIN_TIMEOUT, PgConnection::connect(url))
        .await
        .context("connecting to PostgreSQL took too long")?
        .with_context(|| format!("connecting to {url}"))
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        // Drop may run inside a test's runtime, which cannot be blocked on;
        // a short-lived thread with its own runtime does the cleanup.
        let admin = self.admin.render();
        let name = self.name.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let Ok(mut conn) = admin_connection(&admin).await else {
                    return;
                };
                let drop_it = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = tokio::time::timeout(
                    ADMIN_TIMEOUT,
                    sqlx::query(sqlx::AssertSqlSafe(drop_it)).execute(&mut conn),
                )
                .await;
                let _ = conn.close().await;
            });
        });
        let _ = cleanup.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_database_and_port() -> Result<()> {
        let url = PgUrl::parse("postgres://postgres@127.0.0.1:5432/test")?;
        assert_eq!(url.host, "127.0.0.1");
        assert_eq!(url.port, 5432);
        assert_eq!(url.database, "test");
        let moved = PgUrl {
            port: 40001,
            database: "other".into(),
            ..url
        };
        assert_eq!(moved.render(), "postgres://postgres@127.0.0.1:40001/other");

        let bare = PgUrl::parse("postgresql://localhost/db?sslmode=disable")?;
        assert_eq!(bare.port, 5432);
        assert_eq!(bare.userinfo, None);
        assert_eq!(
            bare.render(),
            "postgresql://localhost:5432/db?sslmode=disable"
        );
        assert!(PgUrl::parse("sqlite:/tmp/x").is_err());
        Ok(())
    }

    #[tokio::test]
    async fn a_fresh_database_is_there_until_dropped() -> Result<()> {
        let Some(db) = FreshDatabase::from_env("testkit").await? else {
            return Ok(());
        };
        let name = db.name().to_owned();
        let mut conn = db.connect().await?;
        let (current,): (String,) = sqlx::query_as("SELECT current_database()")
            .fetch_one(&mut conn)
            .await?;
        assert_eq!(current, name);
        conn.close().await?;
        let admin = db.admin.render();
        drop(db);
        let mut conn = admin_connection(&admin).await?;
        let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
        assert_eq!(left, 0, "{name} outlived its value");
        Ok(())
    }
}
