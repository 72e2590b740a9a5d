//! An in-process store with the same semantics as the SQL backends, for
//! unit tests of the host and directory that need a [`Store`] but no
//! database. It passes the same conformance suite; its clock is the
//! system clock, and everything is lost when it is dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::enrolment::{Enrolled, check_renewal};
use crate::{
    Account, HostEnrolment, HostRecord, LeaseRenewal, Login, MAX_LEASE_TTL_MS, MAX_LOGIN_TTL_MS,
    MAX_SHARE_TTL_MS, Millis, RecordingBlock, RecordingRecord, Result, ScreenWrite,
    ScrollbackBlock, SessionRecord, SessionState, SessionUpdate, ShareRecord, Store, StoreError,
    StoredScreen, UidRange, UnixIdentity, User, check_unix_ids, check_user_name, hash_host_secret,
};

/// A session store in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

#[derive(Debug, Default)]
struct Tables {
    users: HashMap<String, User>,
    sessions: HashMap<String, SessionRecord>,
    screens: HashMap<String, ScreenRow>,
    /// Keyed and therefore listed by id, like the SQL backends' `ORDER BY id`.
    hosts: BTreeMap<String, HostRecord>,
    /// Keyed and therefore listed by name, bytewise like the SQL backends.
    accounts: BTreeMap<String, Account>,
    logins: HashMap<String, Login>,
    /// Keyed and therefore listed by name, bytewise like the SQL backends.
    identities: BTreeMap<String, UnixIdentity>,
    /// By id: the enrolment and the secret's hash.
    enrolments: BTreeMap<String, (HostEnrolment, String)>,
    /// By account: the settings document.
    settings: HashMap<String, String>,
    /// By id.
    shares: HashMap<String, ShareRecord>,
    /// By session id. Not removed with the session: a recording outlives
    /// it, as in the SQL backends (no foreign key to `sessions`).
    recordings: HashMap<String, RecordingRow>,
    /// The accounts that opted in to recording (`accounts.record_sessions`
    /// in the SQL backends). Accounts are never deleted, so no name here
    /// outlives its account.
    record_sessions: BTreeSet<String>,
}

/// A recording and its blocks, kept together so that, like the SQL
/// foreign key, blocks never outlive their recording.
#[derive(Debug)]
struct RecordingRow {
    record: RecordingRecord,
    /// Keyed by `seq`, so iteration is in `seq` order.
    blocks: BTreeMap<u64, RecordingBlock>,
}

/// A session's screen and its blocks, kept together so that, like the SQL
/// foreign keys, blocks never exist without the screen written with them.
#[derive(Debug)]
struct ScreenRow {
    screen: Vec<u8>,
    saved_at: Millis,
    saved_by: String,
    epoch: u64,
    /// Keyed by `seq`, so iteration is oldest first.
    blocks: BTreeMap<u64, ScrollbackBlock>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        // Every write below leaves the tables consistent before anything
        // that could panic, so a poisoned lock holds usable data.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn system_now() -> Millis {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Millis::try_from(since_epoch.as_millis()).unwrap_or(Millis::MAX)
}

impl Tables {
    /// The session a fenced write may change, or why it may not.
    fn fenced(&mut self, id: &str, epoch: u64) -> Result<&mut SessionRecord> {
        match self.sessions.get_mut(id) {
            Some(record) if record.epoch == epoch => Ok(record),
            Some(_) => Err(StoreError::Fenced {
                session: id.to_owned(),
                epoch,
            }),
            None => Err(StoreError::NotFound(id.to_owned())),
        }
    }

    /// As the SQL backends' `get_login` decides it: not expired by `now`,
    /// and its account exists and is enabled.
    fn login_is_live(&self, login: &Login, now: Millis) -> bool {
        login.expires_at > now
            && self
                .accounts
                .get(&login.user)
                .is_some_and(|account| !account.disabled)
    }

    /// As the SQL backends' `live_shares` decides it: the share is live
    /// and its session still runs.
    fn share_is_live(&self, share: &ShareRecord, now: Millis) -> bool {
        share.is_live(now)
            && self
                .sessions
                .get(&share.session)
                .is_some_and(|session| session.state == SessionState::Running)
    }

    /// Ends a host's lease at `now`, if it has one running.
    fn end_lease(&mut self, id: &str, now: Millis) {
        if let Some(host) = self.hosts.get_mut(id) {
            host.lease_expires_at = host.lease_expires_at.min(now);
        }
    }

    /// Deletes every login of `user` (what the SQL backends' cascade and
    /// `DELETE FROM logins WHERE user_name` do).
    fn end_logins_of(&mut self, user: &str) {
        self.logins.retain(|_, login| login.user != user);
    }
}

/// Deletes the oldest blocks while the remaining ones hold at least
/// `keep_lines` lines.
fn trim(blocks: &mut BTreeMap<u64, ScrollbackBlock>, keep_lines: u32) {
    let mut total: u64 = blocks.values().map(|block| u64::from(block.lines)).sum();
    while let Some(entry) = blocks.first_entry() {
        let remaining = total - u64::from(entry.get().lines);
        if remaining < u64::from(keep_lines) {
            break;
        }
        total = remaining;
        entry.remove();
    }
}

/// Appends the blocks a recording does not hold yet and counts them, as
/// the SQL backends' `save_screen` does: a block already stored is not
/// counted again.
fn append_recording(recording: &mut RecordingRow, blocks: &[RecordingBlock], now: Millis) {
    let mut written = false;
    for block in blocks {
        if recording.blocks.contains_key(&block.seq) {
            continue;
        }
        let record = &mut recording.record;
        record.bytes = record
            .bytes
            .saturating_add(u64::try_from(block.data.len()).unwrap_or(u64::MAX));
        record.blocks = record.blocks.saturating_add(1);
        record.duration_ms = record.duration_ms.max(block.end_ms);
        recording.blocks.insert(block.seq, block.clone());
        written = true;
    }
    if written {
        recording.record.updated_at = now;
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn now(&self) -> Result<Millis> {
        Ok(system_now())
    }

    async fn put_user(&self, user: &User) -> Result<()> {
        self.tables().users.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>> {
        Ok(self.tables().users.get(id).cloned())
    }

    async fn create_session(&self, record: &SessionRecord) -> Result<()> {
        self.claim_session(record, u32::MAX).await
    }

    async fn claim_session(&self, record: &SessionRecord, max_running: u32) -> Result<()> {
        let mut tables = self.tables();
        let running = tables
            .sessions
            .values()
            .filter(|s| {
                s.owner == record.owner && s.state == SessionState::Running && s.id != record.id
            })
            .count();
        if running >= usize::try_from(max_running).unwrap_or(usize::MAX) {
            return Err(StoreError::TooManySessions {
                owner: record.owner.clone(),
                running: u64::try_from(running).unwrap_or(u64::MAX),
                max: max_running,
            });
        }
        if tables.sessions.contains_key(&record.id) {
            return Err(StoreError::Duplicate(record.id.clone()));
        }
        tables.users.insert(
            record.owner.clone(),
            User {
                id: record.owner.clone(),
                name: record.owner.clone(),
            },
        );
        let now = system_now();
        let record = SessionRecord {
            created_at: now,
            last_active: now,
            ..record.clone()
        };
        tables.sessions.insert(record.id.clone(), record);
        Ok(())
    }

    async fn get_session(&self, id: &str) -> Result<Option<SessionRecord>> {
        Ok(self.tables().sessions.get(id).cloned())
    }

    async fn list_sessions(&self, owner: Option<&str>) -> Result<Vec<SessionRecord>> {
        let mut sessions: Vec<SessionRecord> = self
            .tables()
            .sessions
            .values()
            .filter(|record| owner.is_none_or(|owner| record.owner == owner))
            .cloned()
            .collect();
        // Newest first, ties broken by id as the SQL backends do.
        sessions.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(sessions)
    }

    async fn update_session(&self, id: &str, epoch: u64, update: &SessionUpdate) -> Result<()> {
        let mut tables = self.tables();
        let record = tables.fenced(id, epoch)?;
        if let Some(cwd) = &update.cwd {
            record.cwd.clone_from(cwd);
        }
        if let Some(cols) = update.cols {
            record.cols = cols;
        }
        if let Some(rows) = update.rows {
            record.rows = rows;
        }
        if let Some(title) = &update.title {
            record.title.clone_from(title);
        }
        if let Some(foreground) = &update.foreground {
            record.foreground.clone_from(foreground);
        }
        if let Some(state) = update.state {
            record.state = state;
        }
        record.last_active = system_now();
        Ok(())
    }

    async fn save_screen(
        &self,
        id: &str,
        epoch: u64,
        host: &str,
        write: &ScreenWrite,
    ) -> Result<()> {
        let mut tables = self.tables();
        let now = system_now();
        tables.fenced(id, epoch)?.last_active = now;
        let row = tables
            .screens
            .entry(id.to_owned())
            .or_insert_with(|| ScreenRow {
                screen: Vec::new(),
                saved_at: now,
                saved_by: String::new(),
                epoch,
                blocks: BTreeMap::new(),
            });
        row.screen.clone_from(&write.screen);
        row.saved_at = now;
        row.saved_by = host.to_owned();
        row.epoch = epoch;
        for block in &write.new_blocks {
            row.blocks.entry(block.seq).or_insert_with(|| block.clone());
        }
        trim(&mut row.blocks, write.keep_lines);
        if let Some(recording) = tables.recordings.get_mut(id) {
            append_recording(recording, &write.recording, now);
        }
        Ok(())
    }

    async fn load_screen(&self, id: &str) -> Result<Option<StoredScreen>> {
        Ok(self.tables().screens.get(id).map(|row| StoredScreen {
            screen: row.screen.clone(),
            blocks: row.blocks.values().cloned().collect(),
            saved_at: row.saved_at,
            saved_by: row.saved_by.clone(),
            epoch: row.epoch,
        }))
    }

    async fn take_over(&self, id: &str, expected_epoch: u64, new_host: &str) -> Result<u64> {
        let mut tables = self.tables();
        let record = tables.fenced(id, expected_epoch)?;
        record.epoch = record.epoch.checked_add(1).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "session {id}: epoch cannot grow past {expected_epoch}"
            ))
        })?;
        record.owner_host = new_host.to_owned();
        Ok(record.epoch)
    }

    async fn renew_lease(
        &self,
        id: &str,
        secret: Option<&str>,
        url: &str,
        ttl_ms: u64,
        load: u32,
        shutting_down: bool,
    ) -> Result<LeaseRenewal> {
        let now = system_now();
        let ttl = Millis::try_from(ttl_ms.min(MAX_LEASE_TTL_MS)).unwrap_or(Millis::MAX);
        let mut tables = self.tables();
        let own = tables
            .enrolments
            .get(id)
            .map(|(enrolment, hash)| (enrolment.url.as_str(), hash.as_str()));
        let enrolled = Enrolled {
            own,
            any: !tables.enrolments.is_empty(),
        };
        check_renewal(id, url, secret, enrolled)?;
        let lapsed = tables
            .hosts
            .get(id)
            .is_some_and(|host| host.lease_expires_at <= now);
        let host = tables
            .hosts
            .entry(id.to_owned())
            .or_insert_with(|| HostRecord {
                id: id.to_owned(),
                url: String::new(),
                load: 0,
                drain_requested: false,
                shutting_down: false,
                lease_expires_at: now,
                registered_at: now,
            });
        host.url = url.to_owned();
        host.load = load;
        host.shutting_down = shutting_down;
        host.lease_expires_at = now.saturating_add(ttl);
        Ok(LeaseRenewal {
            host: host.clone(),
            lapsed,
        })
    }

    async fn enrol_host(&self, id: &str, url: &str, secret: &str) -> Result<()> {
        let now = system_now();
        let mut tables = self.tables();
        let enrolment = HostEnrolment {
            id: id.to_owned(),
            url: url.to_owned(),
            enrolled_at: now,
        };
        tables
            .enrolments
            .insert(id.to_owned(), (enrolment, hash_host_secret(secret)));
        tables.end_lease(id, now);
        Ok(())
    }

    async fn remove_host_enrolment(&self, id: &str) -> Result<()> {
        let now = system_now();
        let mut tables = self.tables();
        if tables.enrolments.remove(id).is_none() {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        tables.end_lease(id, now);
        Ok(())
    }

    async fn list_host_enrolments(&self) -> Result<Vec<HostEnrolment>> {
        let tables = self.tables();
        Ok(tables
            .enrolments
            .values()
            .map(|(enrolment, _)| enrolment.clone())
            .collect())
    }

    async fn list_hosts(&self) -> Result<Vec<HostRecord>> {
        Ok(self.tables().hosts.values().cloned().collect())
    }

    async fn get_host(&self, id: &str) -> Result<Option<HostRecord>> {
        Ok(self.tables().hosts.get(id).cloned())
    }

    async fn set_drain_requested(&self, id: &str, requested: bool) -> Result<()> {
        match self.tables().hosts.get_mut(id) {
            Some(host) => {
                host.drain_requested = requested;
                Ok(())
            }
            None => Err(StoreError::NotFound(id.to_owned())),
        }
    }

    async fn create_account(&self, name: &str, password_hash: &str) -> Result<()> {
        let mut tables = self.tables();
        if tables.accounts.contains_key(name) {
            return Err(StoreError::Duplicate(name.to_owned()));
        }
        let account = Account {
            name: name.to_owned(),
            password_hash: password_hash.to_owned(),
            disabled: false,
            created_at: system_now(),
        };
        tables.accounts.insert(name.to_owned(), account);
        Ok(())
    }

    async fn get_account(&self, name: &str) -> Result<Option<Account>> {
        Ok(self.tables().accounts.get(name).cloned())
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        Ok(self.tables().accounts.values().cloned().collect())
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> Result<()> {
        let mut tables = self.tables();
        let account = tables
            .accounts
            .get_mut(name)
            .ok_or_else(|| StoreError::NotFound(name.to_owned()))?;
        account.password_hash = password_hash.to_owned();
        tables.end_logins_of(name);
        Ok(())
    }

    async fn set_disabled(&self, name: &str, disabled: bool) -> Result<()> {
        let mut tables = self.tables();
        let account = tables
            .accounts
            .get_mut(name)
            .ok_or_else(|| StoreError::NotFound(name.to_owned()))?;
        account.disabled = disabled;
        if disabled {
            tables.end_logins_of(name);
        }
        Ok(())
    }

    async fn create_login(&self, id: &str, user: &str, ttl_ms: u64) -> Result<Login> {
        let now = system_now();
        let ttl = Millis::try_from(ttl_ms.min(MAX_LOGIN_TTL_MS)).unwrap_or(Millis::MAX);
        let mut tables = self.tables();
        if !tables.accounts.contains_key(user) {
            return Err(StoreError::NotFound(user.to_owned()));
        }
        tables
            .logins
            .retain(|_, login| login.user != user || login.expires_at > now);
        if tables.logins.contains_key(id) {
            return Err(StoreError::Duplicate(id.to_owned()));
        }
        let login = Login {
            id: id.to_owned(),
            user: user.to_owned(),
            created_at: now,
            expires_at: now.saturating_add(ttl),
        };
        tables.logins.insert(id.to_owned(), login.clone());
        Ok(login)
    }

    async fn get_login(&self, id: &str) -> Result<Option<Login>> {
        let now = system_now();
        let tables = self.tables();
        let live = tables
            .logins
            .get(id)
            .filter(|login| tables.login_is_live(login, now));
        Ok(live.cloned())
    }

    async fn live_logins(&self, ids: &[String]) -> Result<Vec<String>> {
        let now = system_now();
        let tables = self.tables();
        let mut live: Vec<String> = ids
            .iter()
            .filter(|id| {
                tables
                    .logins
                    .get(id.as_str())
                    .is_some_and(|login| tables.login_is_live(login, now))
            })
            .cloned()
            .collect();
        live.sort_unstable();
        live.dedup();
        Ok(live)
    }

    async fn account_disabled(&self, name: &str) -> Result<Option<bool>> {
        Ok(self
            .tables()
            .accounts
            .get(name)
            .map(|account| account.disabled))
    }

    async fn end_login(&self, id: &str) -> Result<()> {
        self.tables().logins.remove(id);
        Ok(())
    }

    async fn get_settings(&self, account: &str) -> Result<Option<String>> {
        Ok(self.tables().settings.get(account).cloned())
    }

    async fn put_settings(&self, account: &str, body: &str) -> Result<()> {
        let mut tables = self.tables();
        if !tables.accounts.contains_key(account) {
            return Err(StoreError::NotFound(account.to_owned()));
        }
        tables.settings.insert(account.to_owned(), body.to_owned());
        Ok(())
    }

    async fn end_session(&self, id: &str) -> Result<u64> {
        let mut tables = self.tables();
        let record = tables
            .sessions
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
        let epoch = record.epoch.checked_add(1).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "session {id}: epoch cannot grow past {}",
                record.epoch
            ))
        })?;
        record.epoch = epoch;
        record.state = SessionState::Ended;
        Ok(epoch)
    }

    async fn unix_identity(&self, name: &str, range: UidRange) -> Result<UnixIdentity> {
        check_user_name(name)?;
        let range = range.checked()?;
        let mut tables = self.tables();
        if let Some(identity) = tables.identities.get(name) {
            return Ok(*identity);
        }
        let taken: BTreeSet<u32> = tables.identities.values().map(|i| i.uid).collect();
        let uid = (range.first..=range.last)
            .find(|uid| !taken.contains(uid))
            .ok_or(StoreError::UidRangeExhausted { range })?;
        let identity = UnixIdentity {
            uid,
            gid: uid,
            mapped: false,
        };
        tables.identities.insert(name.to_owned(), identity);
        Ok(identity)
    }

    async fn map_unix_identity(&self, name: &str, uid: u32, gid: u32) -> Result<()> {
        check_user_name(name)?;
        check_unix_ids(uid, gid)?;
        let mut tables = self.tables();
        let holder = tables
            .identities
            .iter()
            .find(|(holder, identity)| identity.uid == uid && holder.as_str() != name);
        if let Some((holder, _)) = holder {
            return Err(StoreError::UidTaken {
                uid,
                name: holder.clone(),
            });
        }
        let identity = UnixIdentity {
            uid,
            gid,
            mapped: true,
        };
        tables.identities.insert(name.to_owned(), identity);
        Ok(())
    }

    async fn list_unix_identities(&self) -> Result<Vec<(String, UnixIdentity)>> {
        Ok(self
            .tables()
            .identities
            .iter()
            .map(|(name, identity)| (name.clone(), *identity))
            .collect())
    }

    async fn create_share(
        &self,
        id: &str,
        token_hash: &str,
        session: &str,
        owner: &str,
        may_type: bool,
        ttl_ms: u64,
    ) -> Result<ShareRecord> {
        let now = system_now();
        let ttl = Millis::try_from(ttl_ms.min(MAX_SHARE_TTL_MS)).unwrap_or(Millis::MAX);
        let mut tables = self.tables();
        match tables.sessions.get(session) {
            Some(record) if record.owner == owner => {
                if record.state == SessionState::Ended {
                    return Err(StoreError::SessionEnded(session.to_owned()));
                }
            }
            _ => return Err(StoreError::NotFound(session.to_owned())),
        }
        let taken = tables.shares.contains_key(id)
            || tables
                .shares
                .values()
                .any(|share| share.token_hash == token_hash);
        if taken {
            return Err(StoreError::Duplicate(id.to_owned()));
        }
        let share = ShareRecord {
            id: id.to_owned(),
            token_hash: token_hash.to_owned(),
            session: session.to_owned(),
            owner: owner.to_owned(),
            may_type,
            created_at: now,
            expires_at: now.saturating_add(ttl),
            revoked: false,
        };
        tables.shares.insert(id.to_owned(), share.clone());
        Ok(share)
    }

    async fn share_by_token(&self, token_hash: &str) -> Result<Option<ShareRecord>> {
        Ok(self
            .tables()
            .shares
            .values()
            .find(|share| share.token_hash == token_hash)
            .cloned())
    }

    async fn list_shares(&self, owner: &str) -> Result<Vec<ShareRecord>> {
        let mut shares: Vec<ShareRecord> = self
            .tables()
            .shares
            .values()
            .filter(|share| share.owner == owner)
            .cloned()
            .collect();
        // Newest first, ties by id descending, like the SQL backends.
        shares.sort_unstable_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(shares)
    }

    async fn revoke_share(&self, owner: &str, id: &str) -> Result<()> {
        let mut tables = self.tables();
        match tables.shares.get_mut(id) {
            Some(share) if share.owner == owner => {
                share.revoked = true;
                Ok(())
            }
            _ => Err(StoreError::NotFound(id.to_owned())),
        }
    }

    async fn live_shares(&self, ids: &[String]) -> Result<Vec<String>> {
        let now = system_now();
        let tables = self.tables();
        let mut live: Vec<String> = ids
            .iter()
            .filter(|id| {
                tables
                    .shares
                    .get(id.as_str())
                    .is_some_and(|share| tables.share_is_live(share, now))
            })
            .cloned()
            .collect();
        live.sort_unstable();
        live.dedup();
        Ok(live)
    }

    async fn create_recording(
        &self,
        session: &str,
        owner: &str,
        cols: u16,
        rows: u16,
        max_bytes: u64,
    ) -> Result<()> {
        let now = system_now();
        let mut tables = self.tables();
        if tables.recordings.contains_key(session) {
            return Err(StoreError::Duplicate(session.to_owned()));
        }
        let record = RecordingRecord {
            session: session.to_owned(),
            owner: owner.to_owned(),
            started_at: now,
            updated_at: now,
            cols,
            rows,
            // Capped as the SQL backends store it (`sql::max_bytes_param`).
            max_bytes: max_bytes.min(i64::MAX.unsigned_abs()),
            bytes: 0,
            blocks: 0,
            duration_ms: 0,
        };
        let row = RecordingRow {
            record,
            blocks: BTreeMap::new(),
        };
        tables.recordings.insert(session.to_owned(), row);
        Ok(())
    }

    async fn get_recording(&self, session: &str) -> Result<Option<RecordingRecord>> {
        Ok(self
            .tables()
            .recordings
            .get(session)
            .map(|row| row.record.clone()))
    }

    async fn list_recordings(&self, owner: &str) -> Result<Vec<RecordingRecord>> {
        let mut recordings: Vec<RecordingRecord> = self
            .tables()
            .recordings
            .values()
            .filter(|row| row.record.owner == owner)
            .map(|row| row.record.clone())
            .collect();
        // Newest first, ties by session id descending, like the SQL
        // backends.
        recordings
            .sort_unstable_by(|a, b| (b.started_at, &b.session).cmp(&(a.started_at, &a.session)));
        Ok(recordings)
    }

    async fn recording_blocks(
        &self,
        session: &str,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<RecordingBlock>> {
        let tables = self.tables();
        let Some(row) = tables.recordings.get(session) else {
            return Ok(Vec::new());
        };
        let from = match after {
            Some(after) => std::ops::Bound::Excluded(after),
            None => std::ops::Bound::Unbounded,
        };
        Ok(row
            .blocks
            .range((from, std::ops::Bound::Unbounded))
            .map(|(_, block)| block.clone())
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect())
    }

    async fn delete_recording(&self, owner: &str, session: &str) -> Result<()> {
        let mut tables = self.tables();
        match tables.recordings.get(session) {
            Some(row) if row.record.owner == owner => {
                tables.recordings.remove(session);
                Ok(())
            }
            _ => Err(StoreError::NotFound(session.to_owned())),
        }
    }

    async fn delete_recordings_before(&self, cutoff: Millis) -> Result<u64> {
        let mut tables = self.tables();
        let before = tables.recordings.len();
        tables
            .recordings
            .retain(|_, row| row.record.updated_at >= cutoff);
        Ok(u64::try_from(before - tables.recordings.len()).unwrap_or(u64::MAX))
    }

    async fn recording_opt_in(&self, name: &str) -> Result<bool> {
        Ok(self.tables().record_sessions.contains(name))
    }

    async fn set_recording_opt_in(&self, name: &str, on: bool) -> Result<()> {
        let mut tables = self.tables();
        if !tables.accounts.contains_key(name) {
            return Err(StoreError::NotFound(name.to_owned()));
        }
        if on {
            tables.record_sessions.insert(name.to_owned());
        } else {
            tables.record_sessions.remove(name);
        }
        Ok(())
    }
}
