//! The restore recipe: what a session whose host was lost comes back as
//! here. The saved screen is redrawn and its scrollback restored, a new
//! program of the record's kind starts in the record's working directory
//! with its variables, and a dim notice says which host was lost, when its
//! screen was saved and what was not restarted.

use std::path::Path;
use std::sync::Arc;

use protocol::{CompressedLines, SessionId, Size};
use store::{SessionRecord, StoreError};

use super::{Registry, StartError, bounded};
use crate::emulator::SCROLLBACK_LINES;
use crate::persist::{self, PersistQueue};
use crate::pty::ProgramSpec;
use crate::sandbox::Identity;
use crate::scrollback::Scrollback;
use crate::session::core::record::RecordingSetup;
use crate::session::{SessionHandle, SessionStart};

impl Registry {
    /// Restores a session this host does not run from its store `record`:
    /// one the directory moved here (the record names this host), or, with
    /// `take_over`, one taken over from its previous host. Admission has
    /// checked the ticket against the record already.
    pub(super) async fn restore(
        self: &Arc<Self>,
        record: SessionRecord,
        take_over: bool,
        size: Size,
        identity: Identity,
    ) -> Result<SessionHandle, StartError> {
        let Some(store_config) = self.store.as_ref() else {
            return Err(StoreError::NotFound(record.id).into());
        };
        let store = store_config.store.clone();
        let key = record.id.clone();
        let id: SessionId = key
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("session id {key:?} is not 32 hex digits")))?;
        self.check_room()?;
        let epoch = if take_over {
            bounded(store.take_over(&key, record.epoch, &self.config.host)).await?
        } else {
            // The directory already moved it here and bumped the epoch.
            record.epoch
        };
        // One round trip's wait for all three: the recording, if there is
        // one, goes on from the store's clock, as every time that matters.
        let (saved, recording, now) = tokio::join!(
            bounded(store.load_screen(&key)),
            bounded(store.get_recording(&key)),
            bounded(store.now()),
        );
        let saved = saved?;
        // The record may already name this host (the directory moved it);
        // the host that last saved the screen is the one that was lost.
        let from = saved
            .as_ref()
            .map_or(record.owner_host.as_str(), |s| s.saved_by.as_str());
        tracing::info!(session = %id, %from, epoch, "restoring a session from the store");
        let (scrollback, mut preface) = match &saved {
            Some(stored) => restored_view(stored)?,
            None => (Scrollback::new(SCROLLBACK_LINES), Vec::new()),
        };
        let base = self.program_for(&identity)?;
        let cwd_exists = !record.cwd.is_empty() && Path::new(&record.cwd).is_dir();
        let program = restored_program(base, &self.config.program, &record, cwd_exists);
        let rerun = rerun_keys(record.foreground.as_deref(), &program);
        preface.extend_from_slice(
            notice_for(&record, saved.as_ref(), &program, rerun.is_some()).as_bytes(),
        );
        // A recording goes on where its session does, or the session does
        // not come back yet: under an audit policy a restore that could
        // not read it must not go on unrecorded. The store answered the
        // screen a moment ago, so the page's next try will do.
        let recording = match recording? {
            Some(r) => Some(recording_after_move(
                &r,
                now?,
                from,
                &self.config.host,
                epoch,
            )),
            None => None,
        };
        let queue = Arc::new(PersistQueue::default());
        let persistence = self.persister(store, id, epoch, queue);
        self.launch(SessionStart {
            id,
            owner: record.owner.clone(),
            identity,
            size,
            program,
            epoch,
            persistence: Some(persistence),
            restored: Some((scrollback, preface)),
            rerun,
            recording,
        })
    }
}

/// Where `recording` goes on after its session moved from host `from` to
/// `host` at `epoch`, `now` by the store's clock: after the last moment its
/// blocks hold, and after as much time as has passed since it started
/// (the gap the move took shows on the player's timeline), with a marker
/// naming both hosts.
fn recording_after_move(
    recording: &store::RecordingRecord,
    now: store::Millis,
    from: &str,
    host: &str,
    epoch: u64,
) -> RecordingSetup {
    let since_start = u64::try_from(now.saturating_sub(recording.started_at)).unwrap_or(0);
    RecordingSetup {
        at_ms: since_start.max(recording.duration_ms),
        bytes: recording.bytes,
        max_bytes: recording.max_bytes,
        marker: format!(
            "moved from host {from} to host {host} (epoch {epoch}); the screen saved on {from} is drawn again"
        ),
    }
}

/// The scrollback and the bytes that redraw the saved screen.
fn restored_view(stored: &store::StoredScreen) -> Result<(Scrollback, Vec<u8>), StoreError> {
    let saved = persist::decode_screen(&stored.screen).map_err(StoreError::Corrupt)?;
    let blocks: Vec<(u64, CompressedLines)> = stored
        .blocks
        .iter()
        .map(|b| persist::decode_block(&b.data).map(|block| (b.seq, block)))
        .collect::<Result<_, _>>()
        .map_err(StoreError::Corrupt)?;
    let scrollback =
        Scrollback::restore(SCROLLBACK_LINES, blocks, saved.next_block_seq, saved.tail);
    // Redraw the screen down to the last non-blank row (or the cursor), so
    // the notice and the new prompt follow the old output directly.
    let last_used = saved
        .rows
        .iter()
        .rposition(|line| !line.runs.is_empty())
        .map_or(0, |i| i + 1)
        .max(usize::from(saved.cursor.row));
    let preface = persist::render_ansi(&saved.rows[..last_used.min(saved.rows.len())]);
    Ok((scrollback, preface))
}

/// The program a restored session runs: the record's program and
/// arguments, set up for its user as a new session's would be (`base`:
/// home, `HOME`, the history setting), with the record's own variables
/// where the host set none, in the record's working directory if it still
/// exists. It is a login shell only if it is the host's default program
/// and that one is.
fn restored_program(
    mut program: ProgramSpec,
    default: &ProgramSpec,
    record: &SessionRecord,
    cwd_exists: bool,
) -> ProgramSpec {
    program.program = record.program.clone().into();
    program.args = record.args.clone();
    program.login = default.login && program.program == default.program;
    for (key, value) in &record.env {
        if !program.env.iter().any(|(k, _)| k == key) {
            program.env.push((key.clone(), value.clone()));
        }
    }
    if cwd_exists {
        program.cwd = Some(record.cwd.clone().into());
    }
    program
}

/// The notice drawn above the restored session's new `program`: the host
/// that last saved the screen (the record's owner when none was saved) is
/// the one that was lost.
fn notice_for(
    record: &SessionRecord,
    saved: Option<&store::StoredScreen>,
    program: &ProgramSpec,
    offer_rerun: bool,
) -> String {
    let program_name = program
        .program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cwd = program
        .cwd
        .as_ref()
        .map(|c| c.display().to_string())
        .unwrap_or_default();
    restore_notice(
        saved.map_or(record.owner_host.as_str(), |s| s.saved_by.as_str()),
        saved.map_or(record.last_active, |s| s.saved_at),
        record.foreground.as_deref(),
        &program_name,
        &cwd,
        offer_rerun,
    )
}

/// Shells, into which a command can be typed again.
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "ash"];

/// What Enter types to run `foreground` again in the restored `program`:
/// only into a shell, and only a command line that reads back as what ran
/// (no control characters, nothing lost to UTF-8).
fn rerun_keys(foreground: Option<&str>, program: &ProgramSpec) -> Option<Vec<u8>> {
    let command = foreground?;
    let name = program.program.file_name()?.to_str()?;
    let clean = !command.chars().any(|c| c.is_control() || c == '\u{fffd}');
    (SHELLS.contains(&name) && clean).then(|| format!("{command}\r").into_bytes())
}

/// The dim line shown above the new program after a restore, and with
/// `offer_rerun` the offer to run `foreground` again (the session's core
/// takes the answer).
pub fn restore_notice(
    from_host: &str,
    saved_at: store::Millis,
    foreground: Option<&str>,
    program: &str,
    cwd: &str,
    offer_rerun: bool,
) -> String {
    let when = format_utc(saved_at);
    let running = match foreground {
        Some(command) => format!("`{command}` was running and was not restarted; "),
        None => String::new(),
    };
    let mut notice = format!(
        "\x1b[0m\r\n\x1b[2m── thinline: restored from host {from_host} (saved {when}); {running}a new {program} started in {cwd} ──\x1b[0m\r\n"
    );
    if let (true, Some(command)) = (offer_rerun, foreground) {
        notice.push_str(&format!(
            "\x1b[1m── Press Enter to run `{command}` again in {cwd}, or type anything else to go on without it. ──\x1b[0m\r\n"
        ));
    }
    notice
}

/// `HH:MM:SS UTC` of a millisecond timestamp, without a date library.
fn format_utc(millis: store::Millis) -> String {
    let secs = millis.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_recording_goes_on_after_its_last_moment_and_its_start_and_names_both_hosts() {
        let now = 1_750_000_000_000;
        let recording = store::RecordingRecord {
            session: "ab".repeat(16),
            owner: "alice".into(),
            started_at: now - 60_000,
            updated_at: now - 5_000,
            cols: 80,
            rows: 24,
            max_bytes: 1 << 20,
            bytes: 4_000,
            blocks: 3,
            duration_ms: 55_000,
        };
        let setup = recording_after_move(&recording, now, "h1", "h2", 3);
        // A minute after it started by the store's clock, not where its
        // last block ended: the time the move took shows.
        assert_eq!(setup.at_ms, 60_000);
        assert_eq!((setup.bytes, setup.max_bytes), (4_000, 1 << 20));
        assert!(
            setup
                .marker
                .starts_with("moved from host h1 to host h2 (epoch 3)")
        );
        // Blocks timed past the store's now are never gone back over.
        let ahead = store::RecordingRecord {
            duration_ms: 10_000_000,
            ..recording.clone()
        };
        assert_eq!(
            recording_after_move(&ahead, now, "h1", "h2", 3).at_ms,
            10_000_000
        );
        // Nor is a start the store's clock has not reached.
        let later = store::RecordingRecord {
            started_at: now + 1_000,
            duration_ms: 0,
            ..recording
        };
        assert_eq!(recording_after_move(&later, now, "h1", "h2", 3).at_ms, 0);
    }

    #[test]
    fn the_notice_names_host_time_and_command() {
        let notice = restore_notice(
            "h1",
            3_600_000 + 61_000,
            Some("vim a.txt"),
            "bash",
            "/home/u",
            false,
        );
        assert!(notice.contains("restored from host h1"));
        assert!(notice.contains("01:01:01 UTC"));
        assert!(notice.contains("`vim a.txt` was running"));
        assert!(notice.contains("/home/u"));
        assert!(!notice.contains("Press Enter"));
        let offered = restore_notice("h1", 0, Some("make test"), "bash", "/home/u/p", true);
        assert!(
            offered.contains("Press Enter to run `make test` again in /home/u/p"),
            "{offered}"
        );
    }

    #[test]
    fn only_a_shell_is_offered_a_command_that_reads_back_as_it_ran() {
        let bash = spec("/bin/bash", true, &[]);
        assert_eq!(
            rerun_keys(Some("grep 'a b' f"), &bash).as_deref(),
            Some(&b"grep 'a b' f\r"[..])
        );
        assert_eq!(rerun_keys(None, &bash), None);
        assert_eq!(
            rerun_keys(Some("make"), &spec("/usr/bin/python3", false, &[])),
            None
        );
        assert_eq!(
            rerun_keys(Some("echo '\u{1b}[2J'"), &bash),
            None,
            "control characters"
        );
        assert_eq!(
            rerun_keys(Some("cat '\u{fffd}'"), &bash),
            None,
            "not what ran"
        );
    }

    fn spec(program: &str, login: bool, env: &[(&str, &str)]) -> ProgramSpec {
        ProgramSpec {
            program: program.into(),
            args: Vec::new(),
            login,
            cwd: Some("/home/u".into()),
            home: Some("/home/u".into()),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            download_key: None,
        }
    }

    fn record(program: &str, cwd: &str, env: &[(&str, &str)]) -> SessionRecord {
        let mut record = super::super::launch::new_record(
            SessionId([1; 16]),
            "u",
            &spec(program, false, env),
            Size::default(),
            "lost-host",
        );
        record.args = vec!["-x".into()];
        record.cwd = cwd.into();
        record
    }

    #[test]
    fn the_record_names_the_program_and_the_host_keeps_its_own_variables() {
        let base = spec("/bin/bash", false, &[("HOME", "/home/u")]);
        let default = spec("/bin/bash", true, &[]);
        let saved = record(
            "/usr/bin/fish",
            "/home/u/src",
            &[("HOME", "/elsewhere"), ("EDITOR", "vi")],
        );
        let program = restored_program(base, &default, &saved, true);
        assert_eq!(program.program, std::path::Path::new("/usr/bin/fish"));
        assert_eq!(program.args, ["-x"]);
        assert!(!program.login, "not the host's login shell");
        assert_eq!(
            program.env,
            [
                ("HOME".to_string(), "/home/u".to_string()),
                ("EDITOR".into(), "vi".into())
            ],
            "HOME stays the host's; the record adds what the host did not set"
        );
        assert_eq!(program.cwd, Some("/home/u/src".into()));
    }

    #[test]
    fn the_default_shell_logs_in_and_a_vanished_directory_is_not_entered() {
        let base = spec("/bin/bash", false, &[]);
        let default = spec("/bin/bash", true, &[]);
        let saved = record("/bin/bash", "/home/u/deleted", &[]);
        let program = restored_program(base, &default, &saved, false);
        assert!(program.login);
        assert_eq!(program.cwd, Some("/home/u".into()), "the home instead");
    }

    #[test]
    fn the_notice_names_the_host_that_last_saved_the_screen() {
        let saved = record("/bin/bash", "/home/u", &[]);
        let program = spec("/bin/bash", true, &[]);
        let without_screen = notice_for(&saved, None, &program, false);
        assert!(without_screen.contains("restored from host lost-host"));
        let screen = store::StoredScreen {
            screen: Vec::new(),
            blocks: Vec::new(),
            saved_at: 0,
            saved_by: "last-writer".into(),
            epoch: 1,
        };
        let notice = notice_for(&saved, Some(&screen), &program, false);
        assert!(
            notice.contains("restored from host last-writer"),
            "{notice}"
        );
        assert!(notice.contains("a new bash started in /home/u"), "{notice}");
    }
}
