//! What only the PostgreSQL backend has: a server that may be unreachable,
//! schemas, and the roles of `store/roles/postgres.sql`.

use std::sync::Arc;
use std::time::Duration;

use store::{PgStore, Store, StoreError};

use testkit::pg::FreshDatabase;

use crate::fixture::fresh_database;

/// The schema the store is opened in, inside each test's own database.
const SCHEMA: &str = "thinline_it";

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
    let Some(db) = fresh_database().await else {
        return;
    };
    let (url, schema) = (db.url(), SCHEMA);
    let connects: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PgStore::connect_in_schema(&url, schema).await })
        })
        .collect();
    for connect in connects {
        let store = connect.await.unwrap().unwrap();
        assert_eq!(store.kind(), "postgres");
        assert!(store.list_sessions(None).await.unwrap().is_empty());
    }
    let again = PgStore::connect_in_schema(&url, schema).await.unwrap();
    assert!(again.list_sessions(None).await.unwrap().is_empty());

    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let applied: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM \"{schema}\"._sqlx_migrations"
    )))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(applied, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    again.close().await;
}

/// A sign-in that races a password change waits for it, so it can never
/// slip in between the change's deleting the user's logins and its commit
/// and survive as a login made with the old password. (SQLite needs no
/// test: `BEGIN IMMEDIATE` runs one writer at a time.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_waits_for_a_password_change_in_progress() {
    use sqlx::Connection as _;
    let Some(db) = fresh_database().await else {
        return;
    };
    let (url, schema) = (db.url(), SCHEMA);
    let store = Arc::new(PgStore::connect_in_schema(&url, schema).await.unwrap());
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
}

/// The PostgreSQL twin of the SQLite test: opening a database from before
/// migration 0004 lifts the drains stored the old way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_0004_lifts_the_drains_stored_before_it() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let (url, schema) = (db.url(), SCHEMA);
    let store = PgStore::connect_in_schema(&url, schema).await.unwrap();
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

    let store = PgStore::connect_in_schema(&url, schema).await.unwrap();
    let host = store.get_host("h1").await.unwrap().unwrap();
    assert_eq!(host.drain(), None, "{host:?}");
    store.close().await;
}

/// A recording's blocks that race its deletion wait for it, then are
/// dropped like any block of a deleted recording: the screen write goes
/// through, and no block is left without its recording. (SQLite needs no
/// test: `BEGIN IMMEDIATE` runs one writer at a time.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recording_write_waits_for_a_delete_in_progress() {
    use sqlx::Connection as _;
    use store::{RecordingBlock, ScreenWrite};
    let Some(db) = fresh_database().await else {
        return;
    };
    let (url, schema) = (db.url(), SCHEMA);
    let store = Arc::new(PgStore::connect_in_schema(&url, schema).await.unwrap());
    store
        .create_session(&session(SESSION, "ada", "h1"))
        .await
        .unwrap();
    store
        .create_recording(SESSION, "ada", 80, 24, 1 << 20)
        .await
        .unwrap();
    let write = |screen: &str, seq: u64| ScreenWrite {
        screen: screen.as_bytes().to_vec(),
        new_blocks: Vec::new(),
        keep_lines: 0,
        recording: vec![RecordingBlock {
            seq,
            start_ms: 0,
            end_ms: 10,
            data: vec![1, 2, 3],
        }],
    };
    store
        .save_screen(SESSION, 0, "h1", &write("before", 0))
        .await
        .unwrap();

    // The owner's delete, stopped before it commits, as
    // `delete_recording` runs it.
    let mut delete = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("SELECT set_config('search_path', $1, false)")
        .bind(format!("\"{schema}\""))
        .execute(&mut delete)
        .await
        .unwrap();
    let delete_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut delete)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut delete).await.unwrap();
    sqlx::query("DELETE FROM recordings WHERE session_id = $1 AND owner = 'ada'")
        .bind(SESSION)
        .execute(&mut delete)
        .await
        .unwrap();

    let saving = tokio::spawn({
        let (store, write) = (store.clone(), write("during", 1));
        async move { store.save_screen(SESSION, 0, "h1", &write).await }
    });
    let mut observer = sqlx::PgConnection::connect(&url).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let blocked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))",
        )
        .bind(delete_pid)
        .fetch_one(&mut observer)
        .await
        .unwrap();
        if blocked > 0 {
            break;
        }
        assert!(
            !saving.is_finished(),
            "the write did not wait for the delete"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the write never ran"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    sqlx::query("COMMIT").execute(&mut delete).await.unwrap();
    // Not a foreign-key violation: the write found no recording.
    saving.await.unwrap().unwrap();
    assert_eq!(store.get_recording(SESSION).await.unwrap(), None);
    assert!(
        store
            .recording_blocks(SESSION, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM recording_blocks")
        .fetch_one(&mut delete)
        .await
        .unwrap();
    assert_eq!(left, 0, "no block outlived its recording");
    let screen = store.load_screen(SESSION).await.unwrap().unwrap();
    assert_eq!(screen.screen, b"during");

    store.close().await;
}

// Least privilege: the roles of `store/roles/postgres.sql`, applied to a
// schema in a database of their own with role names of their own, so that
// these tests run in parallel; they drop their roles even when they fail,
// since roles belong to the whole cluster.

/// The roles script as an operator's psql runs it with `-v schema=...
/// -v owner=...`: its psql lines (`\set`, `\if`, all of them setting the
/// variables' defaults) are dropped, and its variables replaced by literals.
fn roles_script(names: &RoleNames) -> String {
    let mut script: String = include_str!("../../roles/postgres.sql")
        .lines()
        .filter(|line| !line.starts_with('\\'))
        .map(|line| format!("{line}\n"))
        .collect();
    for (variable, value) in [
        ("schema", &names.schema),
        ("owner", &names.owner),
        ("directory", &names.directory),
        ("host", &names.host),
    ] {
        script = script.replace(&format!(":'{variable}'"), &format!("'{value}'"));
    }
    assert!(
        !script.contains(":'"),
        "the roles script uses a psql variable the tests do not set"
    );
    script
}

/// One deployment's schema and group roles.
struct RoleNames {
    schema: String,
    owner: String,
    directory: String,
    host: String,
}

impl RoleNames {
    fn fresh() -> RoleNames {
        // Role names are the whole server's: unique, and short enough for
        // PostgreSQL's 63 bytes with their suffixes.
        let schema = testkit::unique_marker("store_it_");
        RoleNames {
            owner: format!("{schema}_owner"),
            directory: format!("{schema}_directory"),
            host: format!("{schema}_host"),
            schema,
        }
    }
}

/// A deployment under test: the roles script applied to a fresh schema,
/// and LOGIN roles in those groups, as an operator would make them.
struct Deployment {
    url: String,
    names: RoleNames,
    /// The LOGIN roles made so far, and the urls that log in as them.
    logins: Vec<(String, String)>,
    /// Dropped after the roles are (fields drop after `drop` has run).
    _db: FreshDatabase,
}

impl Deployment {
    /// The roles and the schema, not migrated; `None` without
    /// `DATABASE_URL`, or when its role may not create roles.
    async fn unmigrated() -> Option<Deployment> {
        let db = fresh_database().await?;
        let url = db.url();
        if !may_create_roles(&url).await {
            return None;
        }
        let deployment = Deployment {
            url,
            names: RoleNames::fresh(),
            logins: Vec::new(),
            _db: db,
        };
        deployment.apply_roles().await.unwrap();
        Some(deployment)
    }

    /// The documented order: roles and schema, migrations as the owner,
    /// the roles script again for the tables.
    async fn migrated() -> Option<Deployment> {
        let mut deployment = Deployment::unmigrated().await?;
        let owner_url = deployment.migrator().await;
        deployment.open(&owner_url).await.close().await;
        deployment.apply_roles().await.unwrap();
        Some(deployment)
    }

    async fn apply_roles(&self) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(roles_script(&self.names)))
            .execute(&mut admin(&self.url).await)
            .await
            .map(|_| ())
    }

    /// A new LOGIN role in `group`, and the url that logs in as it.
    async fn login(&mut self, suffix: &str, group: &str) -> String {
        let name = format!("{}_{suffix}", self.names.schema);
        let password = format!("{:016x}", rand::random::<u64>());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}' IN ROLE \"{group}\""
        )))
        .execute(&mut admin(&self.url).await)
        .await
        .unwrap();
        let url = url_as(&self.url, &name, &password);
        self.logins.push((name, url.clone()));
        url
    }

    /// The url of the LOGIN role made with `suffix`.
    fn url_of(&self, suffix: &str) -> String {
        let name = format!("{}_{suffix}", self.names.schema);
        let found = self.logins.iter().find(|(login, _)| *login == name);
        found.expect("a login made before").1.clone()
    }

    /// The operator's migrating login: a member of the owner group that
    /// acts as it (`SET role`), so the tables it creates are the group's.
    async fn migrator(&mut self) -> String {
        let owner = self.names.owner.clone();
        let url = self.login("migrator", &owner).await;
        let name = format!("{}_migrator", self.names.schema);
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER ROLE \"{name}\" SET role = '{owner}'"
        )))
        .execute(&mut admin(&self.url).await)
        .await
        .unwrap();
        url
    }

    async fn host(&mut self) -> PgStore {
        let host = self.names.host.clone();
        let url = self.login("h1", &host).await;
        self.open(&url).await
    }

    async fn directory(&mut self) -> PgStore {
        let directory = self.names.directory.clone();
        let url = self.login("dir", &directory).await;
        self.open(&url).await
    }

    async fn open(&self, url: &str) -> PgStore {
        PgStore::connect_in_schema(url, &self.names.schema)
            .await
            .expect("open the store as a login role")
    }

    /// A connection as `url`'s role with this deployment's search_path,
    /// for statements the store never runs.
    async fn raw(&self, url: &str) -> sqlx::PgConnection {
        let mut conn = admin(url).await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SET search_path TO \"{}\"",
            self.names.schema
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        conn
    }

    /// Drops the schema and every role the deployment made (the database
    /// goes with the value).
    async fn finish(mut self) {
        let (url, cleanup) = (self.url.clone(), self.cleanup());
        self.logins.clear();
        self.names.schema.clear();
        sqlx::raw_sql(sqlx::AssertSqlSafe(cleanup))
            .execute(&mut admin(&url).await)
            .await
            .unwrap();
    }

    fn cleanup(&self) -> String {
        let roles = self
            .logins
            .iter()
            .map(|(login, _)| login)
            .chain([&self.names.owner, &self.names.directory, &self.names.host])
            .map(|role| format!("\"{role}\""))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE; DROP OWNED BY {roles}; DROP ROLE {roles}",
            self.names.schema
        )
    }
}

/// Roles belong to the whole cluster, not to the test's schema: a test
/// that fails drops them too, rather than leaving them for ever.
impl Drop for Deployment {
    fn drop(&mut self) {
        if self.names.schema.is_empty() {
            return;
        }
        let (url, cleanup) = (self.url.clone(), self.cleanup());
        let cleaned = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                sqlx::raw_sql(sqlx::AssertSqlSafe(cleanup))
                    .execute(&mut admin(&url).await)
                    .await
                    .map(|_| ())
            })
        })
        .join();
        if !matches!(cleaned, Ok(Ok(()))) {
            eprintln!("could not drop the roles of schema {}", self.names.schema);
        }
    }
}

/// Whether `url`'s role may make the roles these tests need.
async fn may_create_roles(url: &str) -> bool {
    let may: bool = sqlx::query_scalar(
        "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut admin(url).await)
    .await
    .unwrap();
    if !may {
        eprintln!("DATABASE_URL's role may not create roles: skipping the roles tests");
    }
    may
}

async fn admin(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection as _;
    sqlx::PgConnection::connect(url).await.unwrap()
}

/// `url` with its user and password replaced.
fn url_as(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// url");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}{path}")
}

/// The store's answer to a statement the role's grants do not allow: the
/// permission error itself, not any failure.
#[track_caller]
fn assert_denied<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Denied(message)) => {
            assert!(message.contains("permission denied"), "{what}: {message}");
        }
        other => panic!("{what}: expected permission denied (42501), got {other:?}"),
    }
}

/// The same for a statement sent as it is.
async fn assert_sql_denied(conn: &mut sqlx::PgConnection, statement: &str) {
    match sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(conn)
        .await
    {
        Err(sqlx::Error::Database(db)) => {
            assert_eq!(db.code().as_deref(), Some("42501"), "{statement}: {db}");
        }
        other => panic!("{statement}: expected permission denied (42501), got {other:?}"),
    }
}

fn session(id: &str, owner: &str, host: &str) -> store::SessionRecord {
    store::SessionRecord {
        id: id.to_owned(),
        owner: owner.to_owned(),
        program: "/bin/bash".to_owned(),
        args: vec!["-l".to_owned()],
        cwd: "/home/ada".to_owned(),
        env: vec![("LANG".to_owned(), "C.UTF-8".to_owned())],
        cols: 80,
        rows: 24,
        title: None,
        foreground: None,
        state: store::SessionState::Running,
        owner_host: host.to_owned(),
        epoch: 0,
        created_at: 0,
        last_active: 0,
    }
}

const SESSION: &str = "0123456789abcdef0123456789abcdef";
const H1_URL: &str = "https://h1.example";

/// Every call host-server makes (persist.rs, registry.rs, renewal.rs,
/// logins.rs, ws.rs), made as a host's role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_role_does_all_a_host_does() {
    use store::{
        RecordingBlock, ScreenWrite, ScrollbackBlock, SessionState, SessionUpdate, UidRange, User,
    };
    let Some(mut deployment) = Deployment::migrated().await else {
        return;
    };
    let directory = deployment.directory().await;
    directory
        .enrol_host("h1", H1_URL, "h1's secret")
        .await
        .unwrap();
    directory
        .create_account("ada", "argon2 hash")
        .await
        .unwrap();
    let login = "ab".repeat(32);
    directory.create_login(&login, "ada", 60_000).await.unwrap();

    let host = deployment.host().await;
    host.now().await.unwrap();
    // Its lease, first taken then renewed (the upsert's two paths).
    for _ in 0..2 {
        let renewal = host
            .renew_lease("h1", Some("h1's secret"), H1_URL, 5_000, 1, false)
            .await
            .unwrap();
        assert!(!renewal.lapsed);
        assert_eq!(renewal.host.url, H1_URL);
    }
    assert!(matches!(
        host.renew_lease("h1", Some("wrong"), H1_URL, 5_000, 1, false)
            .await,
        Err(StoreError::NotEnrolled { .. })
    ));

    // A new session, as persist.rs writes it, twice (a retried write).
    let user = User {
        id: "ada".to_owned(),
        name: "ada".to_owned(),
    };
    for _ in 0..2 {
        host.put_user(&user).await.unwrap();
    }
    host.create_session(&session(SESSION, "ada", "h1"))
        .await
        .unwrap();
    assert!(matches!(
        host.create_session(&session(SESSION, "ada", "h1")).await,
        Err(StoreError::Duplicate(_))
    ));
    let ended_share = "12".repeat(16);
    directory
        .create_share(&ended_share, &"78".repeat(32), SESSION, "ada", true, 60_000)
        .await
        .unwrap();
    let update = SessionUpdate {
        cwd: Some("/tmp".to_owned()),
        cols: Some(100),
        rows: Some(30),
        title: Some(Some("vim".to_owned())),
        foreground: Some(Some("vim notes".to_owned())),
        state: None,
    };
    host.update_session(SESSION, 0, &update).await.unwrap();
    let blocks = |from: u64| {
        (from..from + 3)
            .map(|seq| ScrollbackBlock {
                seq,
                lines: 10,
                data: vec![1, 2, 3],
            })
            .collect::<Vec<_>>()
    };
    for from in [0, 3] {
        let write = ScreenWrite {
            screen: b"screen".to_vec(),
            new_blocks: blocks(from),
            keep_lines: 20,
            recording: Vec::new(),
        };
        host.save_screen(SESSION, 0, "h1", &write).await.unwrap();
    }
    let saved = host.load_screen(SESSION).await.unwrap().unwrap();
    assert_eq!(saved.saved_by, "h1");
    assert_eq!(saved.blocks.len(), 2, "the trim ran");

    // Its recording: made (again, as a retried write would), read, and
    // appended to by the screen write (again: a retry counts nothing).
    for made in [true, false] {
        let created = host.create_recording(SESSION, "ada", 80, 24, 1 << 20).await;
        assert_eq!(created.is_ok(), made, "{created:?}");
    }
    let recorded = ScreenWrite {
        screen: b"screen".to_vec(),
        new_blocks: Vec::new(),
        keep_lines: 20,
        recording: vec![RecordingBlock {
            seq: 1 << 32,
            start_ms: 0,
            end_ms: 500,
            data: vec![1, 2, 3],
        }],
    };
    for _ in 0..2 {
        host.save_screen(SESSION, 0, "h1", &recorded).await.unwrap();
    }
    let recording = host.get_recording(SESSION).await.unwrap().unwrap();
    assert_eq!(
        (recording.bytes, recording.blocks, recording.duration_ms),
        (3, 1, 500)
    );

    // A restore: read the record, claim it, read its screen.
    let record = host.get_session(SESSION).await.unwrap().unwrap();
    assert_eq!(record.cwd, "/tmp");
    let epoch = host.take_over(SESSION, record.epoch, "h1").await.unwrap();
    assert_eq!(epoch, 1);
    assert!(matches!(
        host.update_session(SESSION, 0, &update).await,
        Err(StoreError::Fenced { .. })
    ));
    let ended = SessionUpdate {
        state: Some(SessionState::Ended),
        ..SessionUpdate::default()
    };
    host.update_session(SESSION, 1, &ended).await.unwrap();

    // Unix identities: given once, then listed.
    let range: UidRange = "200000-200009".parse().unwrap();
    let ada = host.unix_identity("ada", range).await.unwrap();
    assert_eq!(ada.uid, 200000);
    assert_eq!(host.unix_identity("ada", range).await.unwrap(), ada);
    assert_eq!(host.list_unix_identities().await.unwrap().len(), 1);

    // Sign-ins, checked at connect and rechecked behind open sockets.
    assert!(host.get_login(&login).await.unwrap().is_some());
    assert_eq!(
        host.live_logins(&[login.clone(), "cd".repeat(32)])
            .await
            .unwrap(),
        [login.as_str()]
    );
    assert_eq!(host.account_disabled("ada").await.unwrap(), Some(false));
    // Share links, rechecked behind viewers' sockets: the one of the
    // session that ended above is no longer live.
    let running = "fe".repeat(16);
    host.create_session(&session(&running, "ada", "h1"))
        .await
        .unwrap();
    let live = "34".repeat(16);
    directory
        .create_share(&live, &"56".repeat(32), &running, "ada", false, 60_000)
        .await
        .unwrap();
    assert_eq!(
        host.live_shares(&[ended_share, live.clone(), "9a".repeat(16)])
            .await
            .unwrap(),
        [live]
    );
    directory.set_disabled("ada", true).await.unwrap();
    assert!(host.get_login(&login).await.unwrap().is_none());
    // Why a terminal closed: the flag, and nothing else of the account.
    assert_eq!(host.account_disabled("ada").await.unwrap(), Some(true));

    host.close().await;
    directory.close().await;
    deployment.finish().await;
}

/// The issue's test: a host's role cannot sign anyone in, nor end a
/// sign-in, whether through the store or with SQL of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_role_cannot_insert_a_sign_in() {
    let Some(mut deployment) = Deployment::migrated().await else {
        return;
    };
    let directory = deployment.directory().await;
    directory
        .create_account("ada", "argon2 hash")
        .await
        .unwrap();
    let login = "ab".repeat(32);
    directory.create_login(&login, "ada", 60_000).await.unwrap();
    let host = deployment.host().await;

    assert_denied(
        host.create_login(&"cd".repeat(32), "ada", 60_000).await,
        "create_login",
    );
    assert_denied(host.end_login(&login).await, "end_login");
    let mut sql = deployment.raw(&deployment.url_of("h1")).await;
    assert_sql_denied(
        &mut sql,
        "INSERT INTO logins (id, user_name, created_at, expires_at) \
         VALUES ('forged', 'ada', 0, 9223372036854775807)",
    )
    .await;
    assert_sql_denied(
        &mut sql,
        "UPDATE logins SET expires_at = 9223372036854775807",
    )
    .await;
    assert_sql_denied(&mut sql, "DELETE FROM logins").await;
    // The sign-in is untouched, and no other was made.
    assert!(directory.get_login(&login).await.unwrap().is_some());
    assert!(
        directory
            .get_login(&"cd".repeat(32))
            .await
            .unwrap()
            .is_none()
    );

    host.close().await;
    directory.close().await;
    deployment.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_role_cannot_touch_accounts_or_read_password_hashes() {
    let Some(mut deployment) = Deployment::migrated().await else {
        return;
    };
    let directory = deployment.directory().await;
    directory
        .create_account("ada", "argon2 hash")
        .await
        .unwrap();
    let host = deployment.host().await;

    assert_denied(host.create_account("eve", "hash").await, "create_account");
    assert_denied(host.set_password("ada", "hash").await, "set_password");
    assert_denied(host.set_disabled("ada", false).await, "set_disabled");
    assert_denied(host.get_account("ada").await, "get_account");
    assert_denied(host.list_accounts().await, "list_accounts");
    // The page's settings are the directories' business alone.
    assert_denied(host.get_settings("ada").await, "get_settings");
    assert_denied(host.put_settings("ada", "{}").await, "put_settings");
    // Nor whether the account wants its sessions recorded: the directory
    // applies that choice to the tickets it signs.
    assert_denied(host.recording_opt_in("ada").await, "recording_opt_in");
    assert_denied(
        host.set_recording_opt_in("ada", true).await,
        "set_recording_opt_in",
    );
    let mut sql = deployment.raw(&deployment.url_of("h1")).await;
    assert_sql_denied(&mut sql, "SELECT password_hash FROM accounts").await;
    assert_sql_denied(&mut sql, "SELECT * FROM accounts").await;
    assert_sql_denied(&mut sql, "UPDATE accounts SET disabled = FALSE").await;
    assert_sql_denied(&mut sql, "UPDATE accounts SET record_sessions = TRUE").await;
    assert_sql_denied(&mut sql, "DELETE FROM accounts").await;
    let ada = directory.get_account("ada").await.unwrap().unwrap();
    assert_eq!(ada.password_hash, "argon2 hash");

    host.close().await;
    directory.close().await;
    deployment.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_role_cannot_enrol_drain_or_map() {
    let Some(mut deployment) = Deployment::migrated().await else {
        return;
    };
    let directory = deployment.directory().await;
    directory.enrol_host("h1", H1_URL, "secret").await.unwrap();
    let host = deployment.host().await;
    host.renew_lease("h1", Some("secret"), H1_URL, 5_000, 0, false)
        .await
        .unwrap();

    assert_denied(
        host.enrol_host("h2", "https://h2.example", "mine").await,
        "enrol_host",
    );
    assert_denied(
        host.remove_host_enrolment("h1").await,
        "remove_host_enrolment",
    );
    assert_denied(host.list_host_enrolments().await, "list_host_enrolments");
    assert_denied(
        host.set_drain_requested("h1", false).await,
        "set_drain_requested",
    );
    assert_denied(host.end_login("any").await, "end_login");
    // Share links are made, listed and revoked by directories only.
    host.create_session(&session(SESSION, "ada", "h1"))
        .await
        .unwrap();
    assert_denied(
        host.create_share(
            &"12".repeat(16),
            &"34".repeat(32),
            SESSION,
            "ada",
            true,
            60_000,
        )
        .await,
        "create_share",
    );
    assert_denied(
        host.share_by_token(&"34".repeat(32)).await,
        "share_by_token",
    );
    assert_denied(host.list_shares("ada").await, "list_shares");
    assert_denied(
        host.revoke_share("ada", &"12".repeat(16)).await,
        "revoke_share",
    );
    assert_denied(
        host.map_unix_identity("ada", 1000, 1000).await,
        "map_unix_identity",
    );
    // Recordings are played back and deleted through directories only:
    // a host appends, and never reads a block back.
    host.create_recording(SESSION, "ada", 80, 24, 1000)
        .await
        .unwrap();
    assert_denied(
        host.recording_blocks(SESSION, None, 10).await,
        "recording_blocks",
    );
    assert_denied(
        host.delete_recording("ada", SESSION).await,
        "delete_recording",
    );
    assert_denied(
        host.delete_recordings_before(i64::MAX).await,
        "delete_recordings_before",
    );
    let mut sql = deployment.raw(&deployment.url_of("h1")).await;
    for statement in [
        "UPDATE recordings SET owner = 'eve'",
        "UPDATE recordings SET max_bytes = 9223372036854775807",
        "UPDATE recording_blocks SET data = ''",
        "DELETE FROM recording_blocks",
        "DELETE FROM recordings",
        "INSERT INTO host_enrolments (id, url, secret_hash, enrolled_at) VALUES ('h2', 'x', 'y', 0)",
        "UPDATE host_enrolments SET url = 'https://evil.example'",
        "DELETE FROM host_enrolments",
        "UPDATE hosts SET draining = FALSE",
        "UPDATE sessions SET program = '/bin/evil'",
        "UPDATE unix_identities SET uid = 1",
        "CREATE TABLE mine (x int)",
    ] {
        assert_sql_denied(&mut sql, statement).await;
    }

    host.close().await;
    directory.close().await;
    deployment.finish().await;
}

/// Every call the directory makes (accounts.rs, signin.rs, sessions.rs,
/// hosts.rs, identities.rs, web.rs), made as a directory's role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directorys_role_does_all_a_directory_does() {
    let Some(mut deployment) = Deployment::migrated().await else {
        return;
    };
    let host = deployment.host().await;
    let directory = deployment.directory().await;
    directory.now().await.unwrap();

    directory.create_account("ada", "one").await.unwrap();
    assert!(matches!(
        directory.create_account("ada", "two").await,
        Err(StoreError::Duplicate(_))
    ));
    directory.set_password("ada", "two").await.unwrap();
    directory.set_disabled("ada", true).await.unwrap();
    directory.set_disabled("ada", false).await.unwrap();
    assert_eq!(
        directory
            .get_account("ada")
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "two"
    );
    assert_eq!(directory.list_accounts().await.unwrap().len(), 1);
    let login = "ab".repeat(32);
    directory.create_login(&login, "ada", 60_000).await.unwrap();
    assert!(directory.get_login(&login).await.unwrap().is_some());
    assert_eq!(
        directory
            .live_logins(std::slice::from_ref(&login))
            .await
            .unwrap(),
        [login.as_str()]
    );
    directory.end_login(&login).await.unwrap();
    assert!(directory.get_login(&login).await.unwrap().is_none());
    // Settings, twice (the upsert's two paths).
    for body in ["{}", r#"{"font_size":15}"#] {
        directory.put_settings("ada", body).await.unwrap();
    }
    assert_eq!(
        directory.get_settings("ada").await.unwrap().as_deref(),
        Some(r#"{"font_size":15}"#)
    );

    // Enrolments, twice (the upsert's two paths), and what follows.
    for secret in ["one", "two"] {
        directory.enrol_host("h1", H1_URL, secret).await.unwrap();
    }
    host.renew_lease("h1", Some("two"), H1_URL, 5_000, 0, false)
        .await
        .unwrap();
    assert_eq!(directory.list_host_enrolments().await.unwrap().len(), 1);
    assert_eq!(directory.list_hosts().await.unwrap().len(), 1);
    directory.set_drain_requested("h1", true).await.unwrap();
    assert!(
        directory
            .get_host("h1")
            .await
            .unwrap()
            .unwrap()
            .drain_requested
    );
    directory
        .enrol_host("h2", "https://h2.example", "x")
        .await
        .unwrap();
    directory.remove_host_enrolment("h2").await.unwrap();

    // Placement and failover over a session a host made.
    host.create_session(&session(SESSION, "ada", "h1"))
        .await
        .unwrap();
    assert_eq!(directory.list_sessions(Some("ada")).await.unwrap().len(), 1);
    let record = directory.get_session(SESSION).await.unwrap().unwrap();
    assert_eq!(
        directory
            .take_over(SESSION, record.epoch, "h2")
            .await
            .unwrap(),
        1
    );
    // Share links of it: made, found by the token's hash, listed,
    // checked and revoked (twice: the second changes nothing).
    let share = "12".repeat(16);
    let token_hash = "34".repeat(32);
    let made = directory
        .create_share(&share, &token_hash, SESSION, "ada", true, 60_000)
        .await
        .unwrap();
    assert_eq!(
        directory.share_by_token(&token_hash).await.unwrap(),
        Some(made)
    );
    assert_eq!(directory.list_shares("ada").await.unwrap().len(), 1);
    assert_eq!(
        directory
            .live_shares(std::slice::from_ref(&share))
            .await
            .unwrap(),
        [share.as_str()]
    );
    for _ in 0..2 {
        directory.revoke_share("ada", &share).await.unwrap();
    }
    assert!(directory.live_shares(&[share]).await.unwrap().is_empty());

    // Recordings a host made and wrote to: listed, played back, deleted
    // by their owner and by the retention, blocks and all.
    for on in [true, false, true] {
        directory.set_recording_opt_in("ada", on).await.unwrap();
        assert_eq!(directory.recording_opt_in("ada").await.unwrap(), on);
    }
    let other = "fe".repeat(16);
    host.create_session(&session(&other, "ada", "h1"))
        .await
        .unwrap();
    for (id, epoch) in [(SESSION, 1), (other.as_str(), 0)] {
        host.create_recording(id, "ada", 80, 24, 1000)
            .await
            .unwrap();
        let write = store::ScreenWrite {
            screen: b"screen".to_vec(),
            new_blocks: Vec::new(),
            keep_lines: 0,
            recording: (0..2)
                .map(|n| store::RecordingBlock {
                    seq: n,
                    start_ms: 0,
                    end_ms: 10,
                    data: vec![1],
                })
                .collect(),
        };
        host.save_screen(id, epoch, "h1", &write).await.unwrap();
    }
    assert_eq!(directory.list_recordings("ada").await.unwrap().len(), 2);
    assert_eq!(
        directory
            .get_recording(SESSION)
            .await
            .unwrap()
            .unwrap()
            .blocks,
        2
    );
    let played = directory
        .recording_blocks(SESSION, Some(0), 10)
        .await
        .unwrap();
    assert_eq!(played.len(), 1);
    directory.delete_recording("ada", SESSION).await.unwrap();
    assert!(
        directory
            .recording_blocks(SESSION, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let later = directory.now().await.unwrap() + 1;
    assert_eq!(directory.delete_recordings_before(later).await.unwrap(), 1);
    assert!(
        directory
            .recording_blocks(&other, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(directory.list_recordings("ada").await.unwrap().is_empty());

    assert_eq!(directory.end_session(SESSION).await.unwrap(), 2);
    assert!(matches!(
        directory
            .create_share(
                &"56".repeat(16),
                &"78".repeat(32),
                SESSION,
                "ada",
                true,
                60_000
            )
            .await,
        Err(StoreError::SessionEnded(_))
    ));

    directory
        .map_unix_identity("ada", 1000, 1000)
        .await
        .unwrap();
    directory.map_unix_identity("ada", 1001, 100).await.unwrap();
    assert!(matches!(
        directory.map_unix_identity("bob", 1001, 100).await,
        Err(StoreError::UidTaken { .. })
    ));
    assert_eq!(directory.list_unix_identities().await.unwrap().len(), 1);

    host.close().await;
    directory.close().await;
    deployment.finish().await;
}

/// Directories place sessions; they never run, save or restore one, and
/// never hold a lease or read an enrolment secret's hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directorys_role_cannot_write_screens_or_leases() {
    use store::{ScreenWrite, User};
    let Some(mut deployment) = Deployment::migrated().await else {
        return;
    };
    let host = deployment.host().await;
    host.create_session(&session(SESSION, "ada", "h1"))
        .await
        .unwrap();
    let directory = deployment.directory().await;
    directory.enrol_host("h1", H1_URL, "secret").await.unwrap();

    assert_denied(
        directory
            .create_session(&session(&"1".repeat(32), "ada", "h1"))
            .await,
        "create_session",
    );
    let write = ScreenWrite {
        screen: b"forged".to_vec(),
        new_blocks: Vec::new(),
        keep_lines: 0,
        recording: Vec::new(),
    };
    assert_denied(
        directory.save_screen(SESSION, 0, "dir", &write).await,
        "save_screen",
    );
    assert_denied(directory.load_screen(SESSION).await, "load_screen");
    // Nor make or write to a recording.
    assert_denied(
        directory
            .create_recording(SESSION, "ada", 80, 24, 1000)
            .await,
        "create_recording",
    );
    assert_denied(
        directory
            .renew_lease("h1", Some("secret"), H1_URL, 5_000, 0, false)
            .await,
        "renew_lease",
    );
    let user = User {
        id: "ada".to_owned(),
        name: "ada".to_owned(),
    };
    assert_denied(directory.put_user(&user).await, "put_user");
    let mut sql = deployment.raw(&deployment.url_of("dir")).await;
    for statement in [
        "SELECT secret_hash FROM host_enrolments",
        "UPDATE sessions SET program = '/bin/evil'",
        "DELETE FROM sessions",
        "DELETE FROM accounts",
        "UPDATE hosts SET url = 'https://evil.example'",
        "UPDATE recordings SET bytes = 0",
        "INSERT INTO recording_blocks (session_id, seq, start_ms, end_ms, data) \
         VALUES ('x', 0, 0, 0, '')",
        "DELETE FROM recording_blocks",
        "CREATE TABLE mine (x int)",
    ] {
        assert_sql_denied(&mut sql, statement).await;
    }

    host.close().await;
    directory.close().await;
    deployment.finish().await;
}

/// A host started before anyone migrated the schema says what to do, and
/// changes nothing; once the owner migrates, it opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_may_not_migrate_says_so_and_writes_nothing() {
    let Some(mut deployment) = Deployment::unmigrated().await else {
        return;
    };
    let host = deployment.names.host.clone();
    let host_url = deployment.login("h1", &host).await;
    let refused = PgStore::connect_in_schema(&host_url, &deployment.names.schema).await;
    match refused {
        Err(StoreError::Unavailable(message)) => {
            for part in ["is empty", "needs version 9", "may not migrate", "owner"] {
                assert!(message.contains(part), "{part:?} in {message}");
            }
        }
        other => panic!("expected a refusal to migrate, got {other:?}"),
    }
    let migrations_table: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT to_regclass('\"{}\"._sqlx_migrations')::text",
        deployment.names.schema
    )))
    .fetch_one(&mut admin(&deployment.url).await)
    .await
    .unwrap();
    assert_eq!(migrations_table, None, "the host created nothing");

    let owner_url = deployment.migrator().await;
    deployment.open(&owner_url).await.close().await;
    deployment.apply_roles().await.unwrap();
    let host = deployment.open(&host_url).await;
    assert!(host.list_unix_identities().await.unwrap().is_empty());

    // Behind again (a newer build's migration missing): said so too.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM \"{}\"._sqlx_migrations WHERE version = 9",
        deployment.names.schema
    )))
    .execute(&mut admin(&deployment.url).await)
    .await
    .unwrap();
    match PgStore::connect_in_schema(&host_url, &deployment.names.schema).await {
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains("is at version 8"), "{message}");
            assert!(message.contains("needs version 9"), "{message}");
        }
        other => panic!("expected a refusal to migrate, got {other:?}"),
    }

    host.close().await;
    deployment.finish().await;
}

/// The migrations run as the owner's login leave every table the owner
/// group's, and the script grants each of them to one server or both: a
/// migration that adds a table without grants fails here first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_is_the_owners_and_granted() {
    let Some(deployment) = Deployment::migrated().await else {
        return;
    };
    let tables: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT tablename::text, tableowner::text, \
                has_any_column_privilege($2, format('%I.%I', schemaname, tablename), \
                                         'SELECT, INSERT, UPDATE') \
             OR has_any_column_privilege($3, format('%I.%I', schemaname, tablename), \
                                         'SELECT, INSERT, UPDATE') \
         FROM pg_tables WHERE schemaname = $1 ORDER BY tablename",
    )
    .bind(&deployment.names.schema)
    .bind(&deployment.names.host)
    .bind(&deployment.names.directory)
    .fetch_all(&mut admin(&deployment.url).await)
    .await
    .unwrap();
    let names: Vec<&str> = tables.iter().map(|(name, _, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "_sqlx_migrations",
            "accounts",
            "host_enrolments",
            "hosts",
            "logins",
            "recording_blocks",
            "recordings",
            "screens",
            "scrollback_blocks",
            "sessions",
            "settings",
            "shares",
            "unix_identities",
            "users"
        ]
    );
    for (table, owner, granted) in &tables {
        assert_eq!(owner, &deployment.names.owner, "owner of {table}");
        assert!(granted, "{table} is granted to neither servers' role");
    }
    deployment.finish().await;
}

/// A deployment from before the roles: one role made and migrated the
/// schema. The script hands its tables to the owner and the servers'
/// roles work at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_roles_script_takes_over_a_schema_migrated_without_roles() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let url = db.url();
    if !may_create_roles(&url).await {
        return;
    }
    let names = RoleNames::fresh();
    PgStore::connect_in_schema(&url, &names.schema)
        .await
        .unwrap()
        .close()
        .await;
    let mut deployment = Deployment {
        url,
        names,
        logins: Vec::new(),
        _db: db,
    };
    deployment.apply_roles().await.unwrap();
    let owned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tableowner = $2",
    )
    .bind(&deployment.names.schema)
    .bind(&deployment.names.owner)
    .fetch_one(&mut admin(&deployment.url).await)
    .await
    .unwrap();
    assert_eq!(owned, 14);
    let host = deployment.host().await;
    host.create_session(&session(SESSION, "ada", "h1"))
        .await
        .unwrap();
    assert_denied(
        host.create_login(&"ab".repeat(32), "ada", 1).await,
        "create_login",
    );
    host.close().await;
    deployment.finish().await;
}

/// A table a newer migration made is not silently left without grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_roles_script_refuses_a_table_it_does_not_know() {
    let Some(deployment) = Deployment::migrated().await else {
        return;
    };
    let mut conn = admin(&deployment.url).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE \"{schema}\".from_the_future (x int); \
         ALTER TABLE \"{schema}\".from_the_future OWNER TO \"{owner}\"",
        schema = deployment.names.schema,
        owner = deployment.names.owner
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    match deployment.apply_roles().await {
        Err(sqlx::Error::Database(db)) => {
            assert!(
                db.message().contains("from_the_future has no grants"),
                "{db}"
            );
        }
        other => panic!("expected the script to refuse, got {other:?}"),
    }
    deployment.finish().await;
}

/// The script as an operator runs it, with psql and its `-v` variables
/// (skipped where psql is not installed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_roles_script_runs_in_psql() {
    let Some(deployment) = Deployment::unmigrated().await else {
        return;
    };
    // The roles exist already; the script must run again over them.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/roles/postgres.sql");
    let names = &deployment.names;
    let psql = std::process::Command::new("psql")
        .arg(&deployment.url)
        .args(["-X", "-q", "-v", &format!("schema={}", names.schema)])
        .args(["-v", &format!("owner={}", names.owner)])
        .args(["-v", &format!("directory={}", names.directory)])
        .args(["-v", &format!("host={}", names.host)])
        .args(["-f", path])
        .output();
    let output = match psql {
        Ok(output) => output,
        Err(error) => {
            eprintln!("no psql ({error}): skipping the psql run of the roles script");
            deployment.finish().await;
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "psql failed: {stderr}");
    assert!(
        stderr.contains("has no table"),
        "the notice to migrate: {stderr}"
    );
    let usage: bool = sqlx::query_scalar("SELECT has_schema_privilege($1, $2, 'USAGE')")
        .bind(&names.host)
        .bind(&names.schema)
        .fetch_one(&mut admin(&deployment.url).await)
        .await
        .unwrap();
    assert!(usage);
    deployment.finish().await;
}
