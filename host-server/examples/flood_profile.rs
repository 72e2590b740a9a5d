//! Where a session host spends its time in a flood, without a PTY.
//!
//! `cargo xtask bench flood-profile` runs this (under callgrind with
//! `--callgrind`). It feeds a `SessionCore` the same output as
//! `cargo xtask bench throughput` (`cat` of lines of 98 bytes) into a
//! 200x50 terminal, the way the session task does: reads of `--read` bytes
//! fed one after another while the core reads on (`reads_on`), then
//! `handle_output_paused`, deadlines when they are due. A client attached
//! from the start acknowledges every frame `--ack-us` after it was sent,
//! and every message to it is encoded as the WebSocket edge encodes it.
//!
//! Time is simulated: each read takes as long as it would at `--rate`
//! MB/s (the DESIGN target, 100, by default), so the frame, flood and
//! persistence deadlines fire at the same points of the input on every
//! run and under callgrind's slowdown alike, and the work measured is the
//! work the host does at that rate. The MB/s printed is wall-clock time
//! over the bytes fed.
//!
//! `--only parser` measures alacritty alone (`Processor::advance` into a
//! `Term` with 10,000 lines of history), `--only emulator` our `Emulator`
//! without the core: the ceilings the whole session is compared with.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alacritty_terminal::event::VoidListener;
use alacritty_terminal::grid::Dimensions;
use alacritty_terminal::term::{Config, Term};
use alacritty_terminal::vte::ansi::Processor;
use host_server::emulator::{CellBudget, Emulator, SCROLLBACK_LINES};
use host_server::metrics::Metrics;
use host_server::session::core::{Command, CoreSetup, Effect, SessionCore};
use protocol::{ClientToServerMsg, ServerToClientMsg, SessionId, Size};

/// A line of the flood after its 9-digit number, as the throughput
/// benchmark writes it: 98 bytes a line with the number.
const FLOOD_LINE: &str =
    " the quick brown fox jumps over the lazy dog 9e3779b97f4a7c15 lorem ipsum dolor sit amet\n";

const SIZE: Size = Size {
    cols: 200,
    rows: 50,
};

const USAGE: &str = "\
usage: flood_profile [--mb N] [--read BYTES] [--burst BYTES] [--rate MB/S]
                     [--ack-us N] [--no-persist] [--only parser|emulator]

  --mb N         megabytes of output (default 20)
  --read BYTES   bytes one read of the PTY returns (default 4096, as Linux's tty buffer)
  --burst BYTES  output ready at once before a read would block (default: always ready)
  --rate MB/S    simulated output rate that drives the clock (default 100)
  --ack-us N     the client acknowledges a frame this long after it is sent (default 500)
  --no-persist   a host without a store (as `bench throughput` runs it)
  --only WHAT    just `parser` (alacritty) or `emulator` (ours), no session core";

struct Options {
    bytes: usize,
    read: usize,
    burst: Option<usize>,
    rate: f64,
    ack: Duration,
    persist: bool,
    only: Option<String>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        bytes: 20_000_000,
        read: 4096,
        burst: None,
        rate: 100.0,
        ack: Duration::from_micros(500),
        persist: true,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, text: String| {
            text.parse::<f64>()
                .ok()
                .filter(|n| *n > 0.0)
                .ok_or_else(|| format!("{name} wants a positive number, not `{text}`"))
        };
        match arg.as_str() {
            "--mb" => options.bytes = (number("--mb", value("--mb")?)? * 1e6) as usize,
            "--read" => options.read = number("--read", value("--read")?)? as usize,
            "--burst" => options.burst = Some(number("--burst", value("--burst")?)? as usize),
            "--rate" => options.rate = number("--rate", value("--rate")?)?,
            "--ack-us" => {
                options.ack = Duration::from_micros(number("--ack-us", value("--ack-us")?)? as u64)
            }
            "--no-persist" => options.persist = false,
            "--only" => {
                let what = value("--only")?;
                if what != "parser" && what != "emulator" {
                    return Err(format!("--only takes parser or emulator, not `{what}`"));
                }
                options.only = Some(what);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    options.read = options.read.max(1);
    Ok(options)
}

/// The flood: numbered lines, as `seq -f '%09.0f ...'` writes them.
fn flood(bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 128);
    let mut n = 0u64;
    while out.len() < bytes {
        out.extend_from_slice(format!("{n:09}{FLOOD_LINE}").as_bytes());
        n += 1;
    }
    // A PTY in its default mode turns each newline into CR LF.
    let mut crlf = Vec::with_capacity(out.len() + out.len() / 90);
    for &b in &out {
        if b == b'\n' {
            crlf.push(b'\r');
        }
        crlf.push(b);
    }
    crlf
}

/// What the session sent its client.
#[derive(Default)]
struct Sent {
    frames: u64,
    history_blocks: u64,
    messages: u64,
    encoded_bytes: u64,
    snapshots: u64,
    snapshot_bytes: u64,
}

/// The client: frames waiting for their acknowledgement, oldest first.
struct Client {
    conn: u64,
    unacked: std::collections::VecDeque<(u64, Instant)>,
}

/// Carries out the core's effects as the session task and the WebSocket
/// edge would: every message encoded, frames remembered for their ack.
fn carry_out(core: &mut SessionCore, client: &mut Client, sent: &mut Sent, now: Instant) {
    while let Some(effect) = core.poll_effect() {
        match effect {
            Effect::Send { msg, .. } => {
                let bytes = protocol::encode_server(&msg);
                sent.messages += 1;
                sent.encoded_bytes += bytes.len() as u64;
                match msg {
                    ServerToClientMsg::Frame(frame) => {
                        sent.frames += 1;
                        client.unacked.push_back((frame.seq, now));
                    }
                    ServerToClientMsg::History { .. } => sent.history_blocks += 1,
                    _ => {}
                }
                std::hint::black_box(bytes);
            }
            Effect::Persist(snapshot) => {
                sent.snapshots += 1;
                sent.snapshot_bytes += snapshot.screen.len() as u64
                    + snapshot
                        .blocks
                        .iter()
                        .map(|b| b.data.len() as u64)
                        .sum::<u64>();
            }
            _ => {}
        }
    }
}

/// Runs the whole session core over `input`; returns what it sent.
#[inline(never)]
fn run_core(input: &[u8], options: &Options) -> Sent {
    let start = Instant::now();
    let setup = CoreSetup {
        id: SessionId([7; 16]),
        host: "h1".into(),
        epoch: 1,
        size: SIZE,
        budget: CellBudget::default(),
        idle_timeout: Duration::from_secs(3600),
        persist_interval: options.persist.then_some(Duration::from_millis(100)),
        restored: None,
        rerun: None,
        recording: None,
        metrics: Arc::new(Metrics::default()),
    };
    let mut core = SessionCore::new(setup, start);
    let mut client = Client {
        conn: 1,
        unacked: Default::default(),
    };
    let mut sent = Sent::default();
    let mut now = start;
    core.handle_attach(client.conn, true, SIZE, now);
    carry_out(&mut core, &mut client, &mut sent, now);
    let per_byte = 1.0 / (options.rate * 1e6);
    let mut reads = input.chunks(options.read).peekable();
    while reads.peek().is_some() {
        // One turn of the task's loop: acknowledgements and deadlines that
        // are due, then the output that is ready.
        while let Some(&(seq, at)) = client.unacked.front() {
            if at + options.ack > now {
                break;
            }
            client.unacked.pop_front();
            let ack = Command::Client {
                conn: client.conn,
                msg: ClientToServerMsg::Ack { frame: seq },
            };
            core.handle_command(ack, now);
            carry_out(&mut core, &mut client, &mut sent, now);
        }
        if core.poll_timeout().is_some_and(|due| due <= now) {
            core.handle_timeout(now);
            carry_out(&mut core, &mut client, &mut sent, now);
        }
        let mut ready = options.burst.unwrap_or(usize::MAX);
        let mut first = true;
        while let Some(read) = reads.next_if(|_| first || core.reads_on(now)) {
            first = false;
            now += Duration::from_secs_f64(read.len() as f64 * per_byte);
            core.handle_output(read, now);
            ready = ready.saturating_sub(read.len());
            if ready == 0 {
                break;
            }
        }
        core.handle_output_paused(now);
        carry_out(&mut core, &mut client, &mut sent, now);
    }
    // The output stops: the flood ends and the client catches up.
    now += Duration::from_secs(1);
    core.handle_timeout(now);
    carry_out(&mut core, &mut client, &mut sent, now);
    sent
}

/// Our emulator alone, drained as often as the flood state would.
#[inline(never)]
fn run_emulator(input: &[u8], options: &Options) {
    let mut emulator = Emulator::new(SIZE);
    for read in input.chunks(options.read) {
        emulator.feed(read);
    }
    std::hint::black_box(emulator.drain_scrolled());
}

/// alacritty alone: the parser and its grid, nothing converted.
#[inline(never)]
fn run_parser(input: &[u8], options: &Options) {
    struct Grid;
    impl Dimensions for Grid {
        fn total_lines(&self) -> usize {
            SIZE.rows.into()
        }
        fn screen_lines(&self) -> usize {
            SIZE.rows.into()
        }
        fn columns(&self) -> usize {
            SIZE.cols.into()
        }
    }
    let config = Config {
        scrolling_history: SCROLLBACK_LINES,
        ..Config::default()
    };
    let mut term = Term::new(config, &Grid, VoidListener);
    let mut parser: Processor = Processor::new();
    for read in input.chunks(options.read) {
        parser.advance(&mut term, read);
    }
    std::hint::black_box(term.grid().history_size());
}

fn main() -> std::process::ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(error) => {
            if !error.is_empty() {
                eprintln!("flood_profile: {error}");
            }
            eprintln!("{USAGE}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let input = flood(options.bytes);
    let what = options.only.as_deref().unwrap_or("session core");
    let started = Instant::now();
    let sent = match options.only.as_deref() {
        Some("parser") => {
            run_parser(&input, &options);
            None
        }
        Some(_) => {
            run_emulator(&input, &options);
            None
        }
        None => Some(run_core(&input, &options)),
    };
    let elapsed = started.elapsed().as_secs_f64();
    let mb = input.len() as f64 / 1e6;
    println!(
        "flood_profile: {what}: {mb:.1} MB in {elapsed:.3} s: {:.1} MB/s (reads of {} bytes{})",
        mb / elapsed,
        options.read,
        options
            .burst
            .map(|b| format!(", bursts of {b}"))
            .unwrap_or_default()
    );
    if let Some(sent) = sent {
        let simulated = mb / options.rate;
        println!(
            "flood_profile: over {simulated:.2} s of simulated output at {} MB/s: {} frames ({:.0}/s), {} history blocks, {} messages of {:.2} MB encoded, {} snapshots of {:.2} MB",
            options.rate,
            sent.frames,
            sent.frames as f64 / simulated,
            sent.history_blocks,
            sent.messages,
            sent.encoded_bytes as f64 / 1e6,
            sent.snapshots,
            sent.snapshot_bytes as f64 / 1e6,
        );
    }
    std::process::ExitCode::SUCCESS
}
