//! What the directory tests stand on: a database per test (SQLite file or
//! PostgreSQL schema), directories served on real loopback listeners, a
//! tiny HTTP client, and fake hosts that answer `/healthz`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use directory::{AppState, DirectoryConfig};
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use store::{PgStore, SessionRecord, SessionState, SqliteStore, Store};

/// One test's database.
pub enum Db {
    Sqlite {
        // Kept so the file outlives the test.
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

impl Db {
    pub async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        Db::Sqlite { _dir: dir, path }
    }

    /// A fresh schema, or `None` without `DATABASE_URL`.
    pub async fn postgres() -> Option<Db> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => Some(Db::Postgres {
                url,
                schema: format!("directory_it_{:016x}", rand::random::<u64>()),
            }),
            _ => {
                eprintln!("DATABASE_URL is not set: skipping the PostgreSQL backend");
                None
            }
        }
    }

    /// A new store over this database; each call is a separate pool, as a
    /// separate directory replica would have.
    pub async fn open(&self) -> Arc<dyn Store> {
        match self {
            Db::Sqlite { path, .. } => Arc::new(SqliteStore::open(path).await.unwrap()),
            Db::Postgres { url, schema } => {
                Arc::new(PgStore::connect_in_schema(url, schema).await.unwrap())
            }
        }
    }

    /// Cleans up after a test that passed.
    pub async fn finish(self) {
        if let Db::Postgres { url, schema } = self {
            use sqlx::Connection as _;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
            )))
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
}

/// A directory served on a loopback port until dropped.
pub struct Directory {
    pub base: String,
    pub store: Arc<dyn Store>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Directory {
    pub async fn start(store: Arc<dyn Store>, config: DirectoryConfig) -> Directory {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let state = AppState::new(store.clone(), config);
        tokio::spawn(async move {
            directory::run(listener, state, async {
                let _ = stop.await;
            })
            .await
            .unwrap();
        });
        Directory {
            base,
            store,
            _shutdown: shutdown,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        call(Method::GET, &format!("{}{path}", self.base), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        call(Method::POST, &format!("{}{path}", self.base), Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        call(Method::PUT, &format!("{}{path}", self.base), Some(body)).await
    }

    /// Registers or renews a host; panics unless the directory agrees.
    pub async fn lease(&self, id: &str, url: &str, ttl_ms: u64, load: u32) -> Value {
        let answer = self
            .put(
                &format!("/v1/hosts/{id}/lease"),
                serde_json::json!({ "url": url, "ttl_ms": ttl_ms, "load": load, "draining": null }),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.text());
        answer.json()
    }

    /// Whether `GET /v1/hosts` calls host `id` live.
    pub async fn is_live(&self, id: &str) -> bool {
        let hosts = self.get("/v1/hosts").await.json();
        hosts
            .as_array()
            .unwrap()
            .iter()
            .find(|host| host["id"] == id)
            .map(|host| host["live"].as_bool().unwrap())
            .unwrap()
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not json ({e}): {:?}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    /// The `error` message of a failed request.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap().to_owned()
    }
}

/// One request on a fresh connection.
pub async fn call(method: Method, url: &str, body: Option<Value>) -> Answer {
    call_authorized(method, url, body, None).await
}

/// One request on a fresh connection, with an `Authorization` header.
pub async fn call_authorized(
    method: Method,
    url: &str,
    body: Option<Value>,
    authorization: Option<&str>,
) -> Answer {
    let uri: hyper::Uri = url.parse().unwrap();
    let authority = uri.authority().unwrap().clone();
    let stream = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(uri.path_and_query().unwrap().as_str())
        .header(hyper::header::HOST, authority.as_str());
    if let Some(authorization) = authorization {
        request = request.header(hyper::header::AUTHORIZATION, authorization);
    }
    let body = match body {
        Some(body) => {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
            Full::new(Bytes::from(body.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    let response = sender
        .send_request(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

/// A stand-in for a host process: answers `/healthz` as `id`.
pub struct FakeHost {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl FakeHost {
    pub async fn start(id: &str) -> FakeHost {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let health = serde_json::json!({ "status": "ok", "host": id, "sessions": 0 });
        let app = axum::Router::new().route(
            "/healthz",
            axum::routing::get(move || async move { axum::Json(health) }),
        );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeHost { url, task }
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The url of a loopback port nothing listens on: a host killed with -9.
pub fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// Stores a running session owned by `host` at `epoch`.
pub async fn create_session(store: &dyn Store, id: &str, host: &str, epoch: u64) {
    store
        .create_session(&SessionRecord {
            id: id.to_owned(),
            owner: "ada".to_owned(),
            program: "/bin/bash".to_owned(),
            args: vec!["-l".to_owned()],
            cwd: "/home/ada".to_owned(),
            env: Vec::new(),
            cols: 80,
            rows: 24,
            title: Some("ada@box: ~".to_owned()),
            foreground: None,
            state: SessionState::Running,
            owner_host: host.to_owned(),
            epoch,
            created_at: 0,
            last_active: 0,
        })
        .await
        .unwrap();
}

/// Waits until `check` holds, failing the test after `within`.
pub async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
