//! The session's scrollback, kept compressed.
//!
//! Lines arrive in order from the emulator and are sealed into LZ4 blocks of
//! `BLOCK_LINES`, so ten thousand lines of history cost a fraction of their
//! text in memory, and a reattaching client (or, later, the store) receives
//! the sealed blocks as they are, without recompressing anything.
//!
//! Lines are numbered from 0 over the session's life (`protocol::HistorySpan`):
//! block `seq` holds lines `seq * BLOCK_LINES ..`, and the open tail follows
//! the last block, so a number survives trimming and restores. Clients
//! fetch history by number, one block at a time (`lines_before`).

use std::collections::VecDeque;

use protocol::{CompressedLines, HistorySpan, Line, compress_lines, decompress_lines};

/// Lines per sealed block: small enough that one block is a modest message,
/// large enough that LZ4 finds repetition.
pub const BLOCK_LINES: usize = 256;

pub struct Scrollback {
    /// Sealed blocks with their sequence numbers, which count up from 0 over
    /// the session's life (across restores) so the store can append them
    /// idempotently.
    sealed: VecDeque<(u64, CompressedLines)>,
    next_seq: u64,
    /// Lines in `sealed`, kept so `len` needs no walk.
    sealed_lines: usize,
    open: Vec<Line>,
    /// At least this many of the newest lines are kept: as many as the
    /// emulator can hand over at the session's size, which is bounded in
    /// cells (`Emulator::history_limit`).
    limit: usize,
}

impl Scrollback {
    pub fn new(limit: usize) -> Scrollback {
        Scrollback {
            sealed: VecDeque::new(),
            next_seq: 0,
            sealed_lines: 0,
            open: Vec::new(),
            limit,
        }
    }

    pub fn len(&self) -> usize {
        self.sealed_lines + self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Changes how many lines are kept (the session was resized), dropping
    /// whole blocks the new limit no longer covers.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
        self.trim();
    }

    pub fn push(&mut self, lines: &[Line]) {
        self.open.extend_from_slice(lines);
        while self.open.len() >= BLOCK_LINES {
            let rest = self.open.split_off(BLOCK_LINES);
            let block = std::mem::replace(&mut self.open, rest);
            self.sealed_lines += block.len();
            self.sealed
                .push_back((self.next_seq, compress_lines(&block)));
            self.next_seq += 1;
        }
        self.trim();
    }

    fn trim(&mut self) {
        // Drop whole blocks while what remains still covers the limit.
        while let Some((_, front)) = self.sealed.front() {
            let count = front.count as usize;
            if self.len() - count < self.limit {
                break;
            }
            self.sealed_lines -= count;
            self.sealed.pop_front();
        }
    }

    /// The numbers of the lines held: `[start, end)`.
    pub fn span(&self) -> HistorySpan {
        let tail_start = self.tail_start();
        let start = self
            .sealed
            .front()
            .map_or(tail_start, |(seq, _)| seq * BLOCK_LINES as u64);
        HistorySpan {
            start,
            end: tail_start + self.open.len() as u64,
        }
    }

    /// Number of the first line of the open tail.
    fn tail_start(&self) -> u64 {
        self.next_seq * BLOCK_LINES as u64
    }

    /// The lines held below number `before` and from `from` on, at most
    /// one block's worth, ending at `before` (or at the end, if `before` is
    /// beyond it): the answer to a client's `FetchHistory`. Empty, numbered `before`, when
    /// nothing below it is held. A sealed block asked for whole is sent as
    /// it is kept; only a request that cuts one is recompressed.
    pub fn lines_before(&self, before: u64, from: u64) -> (u64, CompressedLines) {
        let span = self.span();
        let before = before.min(span.end);
        let empty = || (before, compress_lines(&[]));
        if before <= span.start || before <= from {
            return empty();
        }
        let tail_start = self.tail_start();
        if before > tail_start {
            let start = tail_start.max(from);
            let lines = &self.open[(start - tail_start) as usize..(before - tail_start) as usize];
            return (start, compress_lines(lines));
        }
        let block_lines = BLOCK_LINES as u64;
        let seq = (before - 1) / block_lines;
        let Some((_, block)) = self.sealed.iter().find(|(s, _)| *s == seq) else {
            return empty();
        };
        let block_start = seq * block_lines;
        if before == block_start + u64::from(block.count) && from <= block_start {
            return (block_start, block.clone());
        }
        match decompress_lines(block) {
            Ok(lines) => {
                let start = block_start.max(from);
                let upto = ((before - block_start) as usize).min(lines.len());
                let skip = ((start - block_start) as usize).min(upto);
                (start, compress_lines(&lines[skip..upto]))
            }
            // Blocks are sealed here from lines this process encoded; one
            // that does not decompress is a bug, reported rather than sent.
            Err(err) => {
                tracing::error!(%err, seq, "a sealed scrollback block does not decompress");
                empty()
            }
        }
    }

    /// The whole scrollback as blocks, oldest first.
    #[cfg(test)]
    pub fn blocks(&self) -> Vec<CompressedLines> {
        let mut blocks: Vec<CompressedLines> =
            self.sealed.iter().map(|(_, block)| block.clone()).collect();
        if !self.open.is_empty() {
            blocks.push(compress_lines(&self.open));
        }
        blocks
    }

    /// Sealed blocks numbered `from` and later, for persistence.
    pub fn sealed_since(&self, from: u64) -> impl Iterator<Item = (u64, &CompressedLines)> {
        self.sealed
            .iter()
            .filter(move |(seq, _)| *seq >= from)
            .map(|(seq, block)| (*seq, block))
    }

    /// Sequence number the next sealed block will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Lines not yet sealed into a block.
    pub fn open_tail(&self) -> &[Line] {
        &self.open
    }

    /// Rebuilds a scrollback from persisted blocks and tail.
    pub fn restore(
        limit: usize,
        blocks: Vec<(u64, CompressedLines)>,
        next_seq: u64,
        tail: Vec<Line>,
    ) -> Scrollback {
        let sealed_lines = blocks.iter().map(|(_, b)| b.count as usize).sum();
        let mut scrollback = Scrollback {
            sealed: blocks.into(),
            next_seq,
            sealed_lines,
            open: tail,
            limit,
        };
        scrollback.trim();
        scrollback
    }

    /// Approximate heap bytes held, for the memory benchmark.
    pub fn heap_bytes(&self) -> usize {
        self.sealed.iter().map(|(_, b)| b.data.len()).sum::<usize>()
            + self
                .open
                .iter()
                .map(|l| l.runs.iter().map(|r| r.text.len() + 16).sum::<usize>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Run, decompress_lines};

    fn line(i: usize) -> Line {
        Line {
            runs: vec![Run {
                text: format!("line {i}"),
                ..Run::default()
            }],
            wrapped: false,
        }
    }

    fn all_text(scrollback: &Scrollback) -> Vec<String> {
        scrollback
            .blocks()
            .iter()
            .flat_map(|b| decompress_lines(b).unwrap_or_default())
            .map(|l| l.text())
            .collect()
    }

    #[test]
    fn keeps_order_across_blocks() {
        let mut scrollback = Scrollback::new(10_000);
        for chunk in (0..1000).collect::<Vec<_>>().chunks(37) {
            let lines: Vec<Line> = chunk.iter().map(|&i| line(i)).collect();
            scrollback.push(&lines);
        }
        assert_eq!(scrollback.len(), 1000);
        let expected: Vec<String> = (0..1000).map(|i| format!("line {i}")).collect();
        assert_eq!(all_text(&scrollback), expected);
    }

    #[test]
    fn trims_to_the_limit_keeping_the_newest() {
        let mut scrollback = Scrollback::new(1000);
        let lines: Vec<Line> = (0..5000).map(line).collect();
        scrollback.push(&lines);
        assert!(scrollback.len() >= 1000);
        assert!(scrollback.len() < 1000 + BLOCK_LINES);
        let text = all_text(&scrollback);
        assert_eq!(text.last().map(String::as_str), Some("line 4999"));
        assert_eq!(text.len(), scrollback.len());
    }

    #[test]
    fn a_lower_limit_drops_old_blocks_at_once() {
        let mut scrollback = Scrollback::new(10_000);
        let lines: Vec<Line> = (0..5000).map(line).collect();
        scrollback.push(&lines);
        assert_eq!(scrollback.len(), 5000);
        scrollback.set_limit(1000);
        assert_eq!(scrollback.limit(), 1000);
        assert!(scrollback.len() >= 1000);
        assert!(scrollback.len() < 1000 + BLOCK_LINES);
        let text = all_text(&scrollback);
        assert_eq!(text.last().map(String::as_str), Some("line 4999"));
        // Raising the limit again keeps what is left and lets it grow.
        scrollback.set_limit(10_000);
        scrollback.push(&lines);
        assert_eq!(scrollback.len(), text.len() + 5000);
    }

    /// Fetches everything below `end` block by block, as a client does,
    /// checking that every answer ends where it was asked to.
    fn fetch_all(scrollback: &Scrollback) -> Vec<String> {
        let mut before = scrollback.span().end;
        let mut fetched: Vec<Vec<String>> = Vec::new();
        loop {
            let (start, block) = scrollback.lines_before(before, 0);
            let lines = decompress_lines(&block).unwrap();
            assert_eq!(start + lines.len() as u64, before, "ends at before");
            assert!(lines.len() <= protocol::HISTORY_FETCH_LINES);
            if lines.is_empty() {
                break;
            }
            fetched.push(lines.iter().map(Line::text).collect());
            before = start;
        }
        assert_eq!(before, scrollback.span().start, "down to the start");
        fetched.into_iter().rev().flatten().collect()
    }

    #[test]
    fn lines_are_numbered_over_the_session_and_fetched_by_number() {
        let mut scrollback = Scrollback::new(1000);
        let lines: Vec<Line> = (0..3000).map(line).collect();
        scrollback.push(&lines);
        let span = scrollback.span();
        assert_eq!(span.end, 3000);
        assert_eq!(span.start % BLOCK_LINES as u64, 0);
        assert!(span.end - span.start >= 1000);
        let expected: Vec<String> = (span.start..3000).map(|i| format!("line {i}")).collect();
        assert_eq!(fetch_all(&scrollback), expected);

        // A request that cuts a block gets the lines below it, exactly.
        let (start, block) = scrollback.lines_before(2900, 0);
        let cut = decompress_lines(&block).unwrap();
        assert_eq!(start, 2816);
        assert_eq!(cut.len(), 84);
        assert_eq!(cut.last().map(Line::text).as_deref(), Some("line 2899"));
        // Beyond the end is the end; below the start is nothing.
        assert_eq!(scrollback.lines_before(u64::MAX, 0).0, 2816);
        let (start, block) = scrollback.lines_before(2816, 0);
        assert_eq!((start, block.count), (2560, 256), "a whole sealed block");
        let (start, block) = scrollback.lines_before(span.start, 0);
        assert_eq!((start, block.count), (span.start, 0));
        assert_eq!(scrollback.lines_before(0, 0).1.count, 0);
        // Only the gap above what the client holds: from the tail and from
        // inside a sealed block.
        let (start, block) = scrollback.lines_before(3000, 2990);
        assert_eq!((start, block.count), (2990, 10));
        let (start, block) = scrollback.lines_before(2816, 2800);
        let gap = decompress_lines(&block).unwrap();
        assert_eq!((start, gap.len()), (2800, 16));
        assert_eq!(gap.first().map(Line::text).as_deref(), Some("line 2800"));
        assert_eq!(scrollback.lines_before(2816, 2816).1.count, 0);
    }

    #[test]
    fn numbers_survive_a_restore() {
        let mut scrollback = Scrollback::new(10_000);
        let lines: Vec<Line> = (0..700).map(line).collect();
        scrollback.push(&lines);
        let sealed: Vec<(u64, CompressedLines)> = scrollback
            .sealed_since(0)
            .map(|(seq, block)| (seq, block.clone()))
            .collect();
        let restored = Scrollback::restore(
            10_000,
            sealed,
            scrollback.next_seq(),
            scrollback.open_tail().to_vec(),
        );
        assert_eq!(restored.span(), scrollback.span());
        assert_eq!(fetch_all(&restored), fetch_all(&scrollback));
    }

    #[test]
    fn compresses_repetitive_history() {
        let mut scrollback = Scrollback::new(10_000);
        let lines: Vec<Line> = (0..10_000).map(line).collect();
        scrollback.push(&lines);
        let raw: usize = lines.iter().map(|l| l.text().len()).sum();
        assert!(
            scrollback.heap_bytes() < raw,
            "{} vs {raw}",
            scrollback.heap_bytes()
        );
    }
}
