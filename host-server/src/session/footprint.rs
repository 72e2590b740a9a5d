//! Where an idle session's bytes go on the host's heap, part by part, as
//! jemalloc counts them for the test's thread: `cargo xtask bench memory`
//! measures the whole host, this says which part is which. Run with
//! `--nocapture` to see the table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alacritty_terminal::term::cell::Cell;
use protocol::{SessionId, Size};

use super::core::{CoreSetup, SessionCore};
use super::task::READ_BUFFER;
use super::{COMMAND_CAPACITY, SessionCmd, outgoing_channel};
use crate::emulator::tests::heap;
use crate::emulator::{CellBudget, Emulator};
use crate::metrics::Metrics;
use crate::scrollback::Scrollback;

/// What the parser reserves for synchronized updates (vte's
/// `SYNC_BUFFER_SIZE`): address space, never touched unless a program
/// buffers that much, so it is not resident in an idle session.
const SYNC_BUFFER: i64 = 2 * 1024 * 1024;

/// Heap allocated while `make` runs and what it returns lives.
fn held<T>(make: impl FnOnce() -> T) -> (i64, T) {
    let before = heap::live();
    let value = make();
    (heap::live() - before, value)
}

#[test]
fn idle_session_heap() {
    let size = Size { cols: 80, rows: 24 };
    let (row, cells) = held(|| vec![Cell::default(); usize::from(size.cols)]);
    drop(cells);
    // Both screens: alacritty allocates the alternate one in full from
    // the start, whether a program uses it or not.
    let screens = 2 * i64::from(size.rows) * row;

    let (emulator, mut emu) = held(|| Emulator::new(size));
    let (prompt, ()) = held(|| emu.feed(b"$ "));
    drop(emu);
    let (scrollback, lines) = held(|| Scrollback::new(CellBudget::default().history_lines(size)));
    drop(lines);
    let now = Instant::now();
    let (core, mut core_value) = held(|| {
        SessionCore::new(
            CoreSetup {
                id: SessionId([7; 16]),
                host: "h1".into(),
                epoch: 1,
                size,
                budget: CellBudget::default(),
                idle_timeout: Duration::from_secs(60),
                persist_interval: Some(Duration::from_millis(100)),
                restored: None,
                rerun: None,
                recording: None,
                metrics: Arc::new(Metrics::default()),
            },
            now,
        )
    });
    let (attached, ()) = held(|| {
        core_value.handle_attach(1, true, size, now);
        while core_value.poll_effect().is_some() {}
    });
    drop(core_value);
    let (commands, channel) = held(|| tokio::sync::mpsc::channel::<SessionCmd>(COMMAND_CAPACITY));
    drop(channel);
    let (outgoing, channel) = held(outgoing_channel);
    drop(channel);
    let (read_buffer, buffer) = held(|| vec![0u8; READ_BUFFER]);
    drop(buffer);

    let kib = |bytes: i64| bytes as f64 / 1024.0;
    eprintln!("one idle 80x24 session's heap:");
    eprintln!(
        "  emulator          {:7.1} KiB ({:.1} KiB of it both screens' rows, {:.0} KiB the parser's sync buffer, address space only)",
        kib(emulator),
        kib(screens),
        kib(SYNC_BUFFER)
    );
    eprintln!("  a prompt drawn    {:7.1} KiB", kib(prompt));
    eprintln!("  scrollback        {:7.1} KiB", kib(scrollback));
    eprintln!("  core (all above)  {:7.1} KiB", kib(core));
    eprintln!("  attach + welcome  {:7.1} KiB", kib(attached));
    eprintln!("  command channel   {:7.1} KiB", kib(commands));
    eprintln!("  outgoing channel  {:7.1} KiB", kib(outgoing));
    eprintln!("  PTY read buffer   {:7.1} KiB", kib(read_buffer));

    // An idle session's core is its two screens and little more: a
    // preallocation added anywhere in it shows here.
    let rest = core - SYNC_BUFFER - screens;
    assert!(
        rest <= 16 * 1024,
        "an idle core holds {:.1} KiB besides its screens",
        kib(rest)
    );
    assert!(
        attached <= 16 * 1024,
        "attaching holds {:.1} KiB",
        kib(attached)
    );
    assert!(
        commands + outgoing <= 16 * 1024,
        "the channels hold {:.1} KiB",
        kib(commands + outgoing)
    );
}
