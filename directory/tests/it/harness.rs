//! What the directory tests stand on: a database per test (SQLite file or
//! a fresh PostgreSQL database), directories served on real loopback
//! listeners, answers read through the workspace's one HTTP test client
//! (`testkit::http`), signed-in users, and fake hosts that answer
//! `/healthz` and record the sessions they are told to end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth::login::{LoginId, LoginToken};
use auth::ticket::{Claims, TicketPublicKey, TicketVerifier};
use axum::body::Bytes;
use directory::{AppState, DirectoryConfig};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use serde_json::Value;
use store::{PgStore, SessionRecord, SessionState, SqliteStore, Store};
use testkit::http::Request;
use testkit::pg::FreshDatabase;

/// One test's database.
pub enum Db {
    Sqlite {
        // Kept so the file outlives the test.
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
    },
    /// Dropped (with everything in it) when the value is.
    Postgres(FreshDatabase),
}

impl Db {
    pub async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        Db::Sqlite { _dir: dir, path }
    }

    /// A fresh database, or `None` without `DATABASE_URL`.
    pub async fn postgres() -> Option<Db> {
        FreshDatabase::from_env("directory_it")
            .await
            .unwrap()
            .map(Db::Postgres)
    }

    /// A new store over this database; each call is a separate pool, as a
    /// separate directory replica would have.
    pub async fn open(&self) -> Arc<dyn Store> {
        match self {
            Db::Sqlite { path, .. } => Arc::new(SqliteStore::open(path).await.unwrap()),
            Db::Postgres(db) => Arc::new(PgStore::connect(&db.url()).await.unwrap()),
        }
    }

    /// Ends the test's use of the database: a PostgreSQL one is dropped
    /// with this value (after a failed test too), a SQLite file with its
    /// folder.
    pub async fn finish(self) {}
}

/// A directory served on a loopback port until dropped. Its public url
/// (and so its allowed origin) is where it listens, unless the test set one.
pub struct Directory {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub public_key: TicketPublicKey,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Directory {
    pub async fn start(store: Arc<dyn Store>, mut config: DirectoryConfig) -> Directory {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        if config.public_url.is_none() {
            config.public_url = Some(base.clone());
        }
        let public_key = config.ticket_signer.public_key();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let state = AppState::new(store.clone(), config).unwrap();
        tokio::spawn(async move {
            directory::run(listener, None, state, async {
                let _ = stop.await;
            })
            .await
            .unwrap();
        });
        Directory {
            base,
            store,
            public_key,
            _shutdown: shutdown,
        }
    }

    /// A directory like [`Directory::start`]'s that also records every
    /// request's method and URL (path and query) as it arrives, for tests
    /// of what never appears in one.
    pub async fn start_recording(
        store: Arc<dyn Store>,
        mut config: DirectoryConfig,
    ) -> (Directory, Arc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        if config.public_url.is_none() {
            config.public_url = Some(base.clone());
        }
        let public_key = config.ticket_signer.public_key();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let state = AppState::new(store.clone(), config).unwrap();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = seen.clone();
        let app = directory::app(state).layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                record
                    .lock()
                    .unwrap()
                    .push(format!("{} {}", request.method(), request.uri()));
                next.run(request)
            },
        ));
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await
                .unwrap();
        });
        let directory = Directory {
            base,
            store,
            public_key,
            _shutdown: shutdown,
        };
        (directory, seen)
    }

    pub async fn get(&self, path: &str) -> Answer {
        call(Method::GET, &format!("{}{path}", self.base), None).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        call(Method::PUT, &format!("{}{path}", self.base), Some(body)).await
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Answer {
        call_with(method, &format!("{}{path}", self.base), body, headers).await
    }

    /// `POST /login` from this directory's origin.
    pub async fn login(&self, user: &str, password: &str) -> Answer {
        let form = format!("user={user}&password={password}");
        self.send(
            Method::POST,
            "/login",
            Body::Form(form),
            &[("origin", &self.base)],
        )
        .await
    }

    /// A live login for `name`, made straight in the store (creating the
    /// account if needed; its password hash is no use, so this is fast).
    pub async fn sign_in_as(&self, name: &str) -> User {
        match self.store.create_account(name, "not-a-hash").await {
            Ok(()) | Err(store::StoreError::Duplicate(_)) => {}
            Err(error) => panic!("{error}"),
        }
        let token = LoginToken::generate();
        self.store
            .create_login(&token.id().to_string(), name, 3_600_000)
            .await
            .unwrap();
        User {
            name: name.to_owned(),
            base: self.base.clone(),
            cookie: format!("thinline_login={}", token.as_str()),
            login: token.id(),
        }
    }

    /// The claims of a ticket this directory signed, after checking it
    /// names what the answer around it says.
    pub fn check_ticket(&self, answer: &Value, user: &User, session: &str) -> Claims {
        let ticket = answer["ticket"]
            .as_str()
            .unwrap_or_else(|| panic!("no ticket in {answer}"));
        assert_eq!(answer["ticket_expires_in_ms"], 60_000, "{answer}");
        let claims = TicketVerifier::new(vec![self.public_key.clone()])
            .verify(ticket, auth::ticket::now_ms())
            .unwrap();
        assert_eq!(claims.user, user.name);
        assert_eq!(protocol::SessionId(claims.session).to_string(), session);
        assert_eq!(claims.host, answer["host"].as_str().unwrap());
        assert_eq!(claims.epoch, answer["epoch"].as_u64().unwrap());
        assert_eq!(claims.login, user.login.0);
        assert_eq!(claims.expires_at_ms - claims.issued_at_ms, 60_000);
        claims
    }

    /// Registers or renews a host in the store, as hosts do themselves
    /// (no directory is involved in a lease), enrolled first at `url` as
    /// an operator would, if it is not yet.
    pub async fn lease(&self, id: &str, url: &str, ttl_ms: u64, load: u32) -> store::HostRecord {
        let secret = format!("secret of {id}");
        let enrolled = self.store.list_host_enrolments().await.unwrap();
        if !enrolled.iter().any(|e| e.id == id && e.url == url) {
            self.store.enrol_host(id, url, &secret).await.unwrap();
        }
        self.store
            .renew_lease(id, Some(&secret), url, ttl_ms, load, false)
            .await
            .unwrap()
            .host
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

/// A signed-in browser: its cookie, calling from its directory's origin.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub base: String,
    /// `thinline_login=...`, as a `Cookie` header.
    pub cookie: String,
    pub login: LoginId,
}

impl User {
    /// The same browser calling another replica (from that one's origin).
    pub fn at(&self, directory: &Directory) -> User {
        User {
            base: directory.base.clone(),
            ..self.clone()
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, Body::None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Body::Json(body)).await
    }

    /// A GET with the sign-in cookie and more headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut all = vec![("cookie", self.cookie.as_str())];
        all.extend_from_slice(headers);
        call_with(
            Method::GET,
            &format!("{}{path}", self.base),
            Body::None,
            &all,
        )
        .await
    }

    pub async fn send(&self, method: Method, path: &str, body: Body) -> Answer {
        call_with(
            method,
            &format!("{}{path}", self.base),
            body,
            &[("cookie", &self.cookie), ("origin", &self.base)],
        )
        .await
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

    /// The `name=value` of the `Set-Cookie` this answer carries.
    pub fn cookie(&self) -> String {
        let set = self.header("set-cookie");
        set.split(';').next().unwrap().to_owned()
    }
}

/// What a request carries.
pub enum Body {
    None,
    Json(Value),
    /// `application/x-www-form-urlencoded`, already encoded.
    Form(String),
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
    let body = body.map_or(Body::None, Body::Json);
    match authorization {
        Some(authorization) => {
            call_with(method, url, body, &[("authorization", authorization)]).await
        }
        None => call_with(method, url, body, &[]).await,
    }
}

/// One request on a fresh connection, with these headers.
pub async fn call_with(method: Method, url: &str, body: Body, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::new(method.as_str(), url).unwrap().headers(headers);
    request = match body {
        Body::Json(body) => request.json(&body),
        Body::Form(form) => request.form(&form),
        Body::None => request,
    };
    let answer = request.send().await.unwrap();
    let mut headers = HeaderMap::new();
    for (name, value) in &answer.headers {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    Answer {
        status: StatusCode::from_u16(answer.status).unwrap(),
        headers,
        body: Bytes::from(answer.bytes),
    }
}

/// A stand-in for a host process: answers `/healthz` as `id`, and records
/// each `POST /v1/sessions/{id}/end` with its `Authorization` header.
pub struct FakeHost {
    pub url: String,
    pub ended: Arc<Mutex<Vec<EndCall>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeHost {
    pub async fn start(id: &str) -> FakeHost {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let health = serde_json::json!({ "status": "ok", "host": id, "sessions": 0 });
        let ended: Arc<Mutex<Vec<EndCall>>> = Arc::default();
        let record = ended.clone();
        let app = axum::Router::new()
            .route(
                "/healthz",
                axum::routing::get(move || async move { axum::Json(health) }),
            )
            .route(
                "/v1/sessions/{id}/end",
                axum::routing::post(
                    move |axum::extract::Path(session): axum::extract::Path<String>,
                          headers: HeaderMap| async move {
                        let authorization = headers
                            .get(hyper::header::AUTHORIZATION)
                            .map(|v| v.to_str().unwrap().to_owned());
                        record.lock().unwrap().push(EndCall {
                            session,
                            authorization,
                        });
                        StatusCode::NO_CONTENT
                    },
                ),
            );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeHost { url, ended, task }
    }
}

/// A `POST /v1/sessions/{id}/end` a fake host received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndCall {
    pub session: String,
    pub authorization: Option<String>,
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

/// Stores a running session of ada's owned by `host` at `epoch`.
pub async fn create_session(store: &dyn Store, id: &str, host: &str, epoch: u64) {
    create_session_of(store, "ada", id, host, epoch).await;
}

/// Stores a running session of `owner`'s owned by `host` at `epoch`.
pub async fn create_session_of(store: &dyn Store, owner: &str, id: &str, host: &str, epoch: u64) {
    store
        .create_session(&SessionRecord {
            id: id.to_owned(),
            owner: owner.to_owned(),
            program: "/bin/bash".to_owned(),
            args: vec!["-l".to_owned()],
            cwd: format!("/home/{owner}"),
            env: Vec::new(),
            cols: 80,
            rows: 24,
            title: Some(format!("{owner}@box: ~")),
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

/// Waits until `check` holds, failing the test after `within`: the
/// workspace's one `testkit::wait_until`, for checks that only hold or not.
pub async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    testkit::wait_until(within, what, || {
        let holds = check();
        async move {
            Ok(if holds.await {
                Ok(())
            } else {
                Err("not yet".to_owned())
            })
        }
    })
    .await
    .unwrap();
}
