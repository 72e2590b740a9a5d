//! The client's model of the terminal screen, fed by protocol frames.
//!
//! The host runs the emulator and sends state, so this is not an emulator:
//! it stores the grid the host described, the lines that scrolled off it
//! (a bounded ring, so a flood cannot exhaust the tab's memory), and a view
//! offset that lets the user read the scrollback while the program keeps
//! writing. Which visible rows changed is tracked here so the renderer
//! repaints only those.
//!
//! Scrollback lines carry the host's numbers (`protocol::HistorySpan`). An
//! attach brings only the screen; the history arrives afterwards, fetched
//! backwards a block at a time (`history_wanted`, `apply_history`), and a
//! reattach to the same host and epoch keeps every line already held. When
//! the lines held no longer continue into the screen (output while
//! detached), they wait aside (`stash`) until the fetched ones reach them.
//!
//! Over the host's grid lies the predicted echo (`crate::predict`): cells
//! and a cursor shown before the host confirms them. Everything that shows
//! the screen (`visible_row`, `cursor`, `text`) shows them; the predictor
//! itself reads the host's own grid (`host_cell`, `host_cursor`).

use std::borrow::Cow;
use std::collections::VecDeque;

use protocol::{CellLayout, Cursor, Frame, HistorySpan, Line, Modes, Size, Style, TtyModes};

/// How many scrolled-off lines the client keeps.
pub const SCROLLBACK_LINES: usize = 10_000;

/// How a cell relates to its neighbours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CellWidth {
    #[default]
    Narrow,
    /// The first half of a double-width character; the next cell is its
    /// `Spacer`.
    Wide,
    /// The second half of a wide character: holds no text of its own.
    Spacer,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cell {
    /// The grapheme shown in this cell. Empty for a blank cell and for the
    /// spacer half of a wide character.
    pub text: String,
    pub style: Style,
    pub width: CellWidth,
}

impl Cell {
    pub fn is_blank(&self) -> bool {
        self.text.is_empty() || self.text == " "
    }
}

/// Predicted cells shown over the grid: grid row, column and what to show.
pub type Predicted = Vec<(u16, u16, Cell)>;

/// One row of cells; always exactly as wide as the grid it belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    pub cells: Vec<Cell>,
    /// The row continues on the next (soft wrap).
    pub wrapped: bool,
    /// OSC 8 hyperlinks the host sent with the row, while it is on the
    /// screen (history rows have none; `links` finds their addresses).
    pub links: Vec<protocol::Hyperlink>,
}

impl Row {
    pub fn blank(cols: usize) -> Row {
        Row {
            cells: vec![Cell::default(); cols],
            wrapped: false,
            links: Vec::new(),
        }
    }

    /// Lays a protocol line out on `cols` cells. A wide character that would
    /// straddle the right edge is dropped rather than split.
    pub fn from_line(line: &Line, cols: usize) -> Row {
        let mut cells = Vec::with_capacity(cols);
        'runs: for run in &line.runs {
            let place = |text: String, wide: bool, cells: &mut Vec<Cell>| -> bool {
                let need = 1 + usize::from(wide);
                if cells.len() + need > cols {
                    return false;
                }
                cells.push(Cell {
                    text,
                    style: run.style,
                    width: if wide {
                        CellWidth::Wide
                    } else {
                        CellWidth::Narrow
                    },
                });
                if wide {
                    cells.push(Cell {
                        text: String::new(),
                        style: run.style,
                        width: CellWidth::Spacer,
                    });
                }
                true
            };
            match run.layout {
                CellLayout::Narrow | CellLayout::Wide => {
                    let wide = run.layout == CellLayout::Wide;
                    for ch in run.text.chars() {
                        if !place(ch.to_string(), wide, &mut cells) {
                            break 'runs;
                        }
                    }
                }
                CellLayout::Cluster { wide } => {
                    if !place(run.text.clone(), wide, &mut cells) {
                        break 'runs;
                    }
                }
            }
        }
        cells.resize(cols, Cell::default());
        Row {
            cells,
            wrapped: line.wrapped,
            links: Vec::new(),
        }
    }

    /// The row's text cell by cell, with each cell's column: blank cells
    /// read as a space and the spacer half of a wide character is skipped.
    pub fn text_cells(&self) -> impl Iterator<Item = (u16, &str)> {
        self.cells.iter().enumerate().filter_map(|(col, cell)| {
            let col = u16::try_from(col).unwrap_or(u16::MAX);
            match cell.width {
                CellWidth::Spacer => None,
                _ if cell.text.is_empty() => Some((col, " ")),
                _ => Some((col, cell.text.as_str())),
            }
        })
    }

    /// The row's characters without trailing blanks (`text_cells`).
    pub fn text(&self) -> String {
        let mut out: String = self.text_cells().map(|(_, text)| text).collect();
        out.truncate(out.trim_end().len());
        out
    }

    fn set_width(&mut self, cols: usize) {
        self.cells.resize(cols, Cell::default());
        // A wide character cut in half by the new edge becomes a blank.
        if let Some(last) = self.cells.last_mut()
            && last.width == CellWidth::Wide
        {
            *last = Cell::default();
        }
    }
}

/// Screen state as the host last described it, plus the client's scrollback.
#[derive(Debug)]
pub struct Screen {
    size: Size,
    grid: Vec<Row>,
    /// Oldest line first, continuing into the grid. Bounded, with `stash`,
    /// by `capacity`.
    scrollback: VecDeque<Line>,
    capacity: usize,
    /// The host's number of `scrollback[0]`; grid row `r` is line
    /// `first + scrollback.len() + r`. The selection refers to lines by
    /// these numbers, which fetching older lines leaves unchanged.
    first: u64,
    /// The oldest line the host holds, as far as this screen knows: history
    /// is complete once `first` reaches it.
    host_start: u64,
    /// Lines held from before a gap (numbered from `.0`), older than
    /// `scrollback`: rejoined once fetched lines reach them, so a reattach
    /// after output never fetches what it already had.
    stash: Option<(u64, VecDeque<Line>)>,
    /// How many lines the view is scrolled back from the bottom; at most
    /// `scrollback.len()`. Zero follows the program's output.
    view_offset: usize,
    cursor: Cursor,
    modes: Modes,
    title: String,
    title_changed: bool,
    bell: bool,
    /// Clipboard text a program sent (OSC 52), until the page takes it.
    clipboard: Option<String>,
    /// A notification a program asked for (OSC 9 / 777), until taken.
    notification: Option<protocol::Notification>,
    /// Visible rows that need a repaint, indexed by view row.
    dirty: Vec<bool>,
    /// Set by `begin_attach` until the connection's first frame: history
    /// is fetched only once the screen is live.
    awaiting_frame: bool,
    frames: u64,
    /// Connections welcomed since the page loaded.
    attaches: u64,
    /// The last frame's `echo_ack` and `tty`.
    echo_ack: u64,
    tty: TtyModes,
    /// Predicted cells shown over the grid, by grid row and column.
    predicted: Predicted,
    /// Where the cursor is shown instead of the host's, if predicted.
    predicted_cursor: Option<(u16, u16)>,
}

impl Screen {
    pub fn new(size: Size) -> Screen {
        Screen::with_capacity(size, SCROLLBACK_LINES)
    }

    pub fn with_capacity(size: Size, capacity: usize) -> Screen {
        let size = size.clamped();
        Screen {
            size,
            grid: vec![Row::blank(usize::from(size.cols)); usize::from(size.rows)],
            scrollback: VecDeque::new(),
            capacity,
            first: 0,
            host_start: 0,
            stash: None,
            view_offset: 0,
            cursor: Cursor {
                visible: true,
                ..Cursor::default()
            },
            modes: Modes::default(),
            title: String::new(),
            title_changed: false,
            bell: false,
            clipboard: None,
            notification: None,
            dirty: vec![true; usize::from(size.rows)],
            awaiting_frame: false,
            frames: 0,
            attaches: 0,
            echo_ack: 0,
            tty: TtyModes::default(),
            predicted: Vec::new(),
            predicted_cursor: None,
        }
    }

    pub fn size(&self) -> Size {
        self.size
    }

    pub fn modes(&self) -> Modes {
        self.modes
    }

    /// The cursor as shown: where the host put it, or where the
    /// predicted echo moves it.
    pub fn cursor(&self) -> Cursor {
        let mut cursor = self.cursor;
        if let Some((row, col)) = self.predicted_cursor {
            cursor.row = row;
            cursor.col = col;
        }
        cursor
    }

    /// The cursor as the host last described it.
    pub fn host_cursor(&self) -> Cursor {
        self.cursor
    }

    /// A cell of the grid as the host last described it.
    pub fn host_cell(&self, row: u16, col: u16) -> Option<&Cell> {
        self.grid.get(usize::from(row))?.cells.get(usize::from(col))
    }

    /// Whether grid row `row` continues on the next one (soft wrap).
    pub fn host_row_wrapped(&self, row: u16) -> bool {
        self.grid.get(usize::from(row)).is_some_and(|r| r.wrapped)
    }

    /// The number of the line at the top of the grid: it grows by one for
    /// every line that scrolls off.
    pub fn grid_top(&self) -> u64 {
        self.history_end()
    }

    /// The last frame's `echo_ack`: input up to it has had its echo drawn.
    pub fn echo_ack(&self) -> u64 {
        self.echo_ack
    }

    /// The program's terminal settings as of the last frame.
    pub fn tty(&self) -> TtyModes {
        self.tty
    }

    /// Shows `cells` (by grid row and column) and the cursor at
    /// `cursor` over the host's grid until the next call; rows whose
    /// prediction changed are repainted.
    pub fn set_prediction(&mut self, cells: Predicted, cursor: Option<(u16, u16)>) {
        if cells.is_empty() && self.predicted.is_empty() && cursor == self.predicted_cursor {
            return;
        }
        let old = std::mem::replace(&mut self.predicted, cells);
        for (row, ..) in old {
            self.mark_grid_row_dirty(usize::from(row));
        }
        for i in 0..self.predicted.len() {
            self.mark_grid_row_dirty(usize::from(self.predicted[i].0));
        }
        self.mark_cursor_dirty();
        self.predicted_cursor = cursor;
        self.mark_cursor_dirty();
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    /// Frames applied since the page loaded.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Connections welcomed since the page loaded: a new one (a
    /// reconnect, a failover) may show another host's screen.
    pub fn attaches(&self) -> u64 {
        self.attaches
    }

    pub fn scrollback_len(&self) -> usize {
        self.scrollback.len()
    }

    /// The lines scrolled into history that are kept, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &Line> {
        self.scrollback.iter()
    }

    pub fn view_offset(&self) -> usize {
        self.view_offset
    }

    /// A new connection was welcomed; the host holds history `span`.
    /// `same_history`: it is the same session on the same host and epoch
    /// as before, so the lines held keep their numbers; otherwise they are
    /// dropped (a restore numbers on from what the store had).
    pub fn begin_attach(&mut self, same_history: bool, span: HistorySpan) {
        self.awaiting_frame = true;
        self.attaches += 1;
        self.host_start = span.start;
        let end = self.history_end();
        if same_history && end == span.end {
            return;
        }
        if same_history && end < span.end && !self.scrollback.is_empty() {
            // Output while detached: what is held waits for the fetched
            // lines to reach it.
            let held = std::mem::take(&mut self.scrollback);
            self.stash = Some((self.first, held));
        } else if !same_history || end > span.end {
            self.scrollback.clear();
            self.stash = None;
        }
        self.first = span.end;
        self.view_offset = 0;
        self.mark_all_dirty();
    }

    /// One past the number of the newest scrollback line held.
    fn history_end(&self) -> u64 {
        self.first + self.scrollback.len() as u64
    }

    /// The history to fetch next, if any, as `(before, from)`: the lines
    /// below `first`, from the end of the stash on (what is held further
    /// back is not fetched again). Once the connection's first frame is
    /// shown, until the host's oldest line or the capacity is reached.
    pub fn history_wanted(&self) -> Option<(u64, u64)> {
        let held = self.scrollback.len() + self.stash.as_ref().map_or(0, |(_, s)| s.len());
        let from = self
            .stash
            .as_ref()
            .map_or(0, |(first, stash)| first + stash.len() as u64);
        (!self.awaiting_frame && self.first > self.host_start && held < self.capacity)
            .then_some((self.first, from.min(self.first)))
    }

    /// Whether scrollback line `line` (numbered as the host numbers them)
    /// is held, in the scrollback or aside in the stash.
    pub fn holds_line(&self, line: u64) -> bool {
        let in_range = |first: u64, len: usize| line >= first && line - first < len as u64;
        in_range(self.first, self.scrollback.len())
            || self
                .stash
                .as_ref()
                .is_some_and(|(first, stash)| in_range(*first, stash.len()))
    }

    /// Whether history older than what is shown is still to come.
    pub fn history_complete(&self) -> bool {
        self.first <= self.host_start
    }

    /// Scrollback lines numbered from `start`: older ones that were
    /// fetched, or newer ones the host sent ahead of a frame. Lines that
    /// neither end at the oldest held nor follow the newest start over
    /// after a gap; anything already held is ignored.
    pub fn apply_history(&mut self, start: u64, lines: Vec<Line>) {
        let count = lines.len() as u64;
        let end = self.history_end();
        if start + count == self.first && start <= end {
            self.prepend(start, lines);
        } else if start == end {
            self.append_scrolled(lines);
        } else if start > end {
            // A gap: the host could not send some lines. What is held
            // waits aside in case the gap is fetched.
            if !self.scrollback.is_empty() {
                let held = std::mem::take(&mut self.scrollback);
                self.stash = Some((self.first, held));
            }
            self.first = start;
            self.view_offset = 0;
            self.push_lines(lines);
            self.mark_all_dirty();
        } else if start + count > end {
            let skip = (end - start) as usize;
            self.append_scrolled(lines.into_iter().skip(skip).collect());
        }
    }

    /// Fetched lines ending at `first`. Empty: the host holds nothing
    /// older, so history is complete (and a stash it cannot reach goes).
    fn prepend(&mut self, start: u64, lines: Vec<Line>) {
        if lines.is_empty() {
            self.host_start = self.first;
            self.stash = None;
            return;
        }
        for line in lines.into_iter().rev() {
            self.scrollback.push_front(line);
        }
        self.first = start;
        if let Some((stash_first, stash)) = self.stash.take() {
            let stash_end = stash_first + stash.len() as u64;
            if stash_end >= self.first && stash_first < self.first {
                // The fetched lines reached what was held: rejoin it.
                let older = (self.first - stash_first) as usize;
                for line in stash.into_iter().take(older).rev() {
                    self.scrollback.push_front(line);
                }
                self.first = stash_first;
            } else if stash_end < self.first {
                self.stash = Some((stash_first, stash));
            }
        }
        let excess = self.scrollback.len().saturating_sub(self.capacity);
        if excess > 0 {
            // Full: the oldest fetched lines go, and so does the rest.
            self.scrollback.drain(..excess);
            self.first += excess as u64;
            self.host_start = self.first;
            self.stash = None;
        }
        if self.view_offset > 0 {
            // The view shows the same lines; only what lies above grew.
            self.mark_all_dirty();
        }
    }

    /// Lines that scrolled off the top, oldest first: the view stays on
    /// the lines it shows while the program writes.
    fn append_scrolled(&mut self, lines: Vec<Line>) {
        if lines.is_empty() {
            return;
        }
        let before = self.view_offset;
        let n = lines.len();
        self.push_lines(lines);
        if before > 0 {
            let wanted = before + n;
            self.view_offset = wanted.min(self.scrollback.len());
            if self.view_offset != wanted {
                self.mark_all_dirty();
            }
        }
    }

    /// Applies one frame from the host.
    pub fn apply_frame(&mut self, frame: Frame) {
        self.awaiting_frame = false;
        self.frames += 1;
        let size = frame.size.clamped();
        if size != self.size {
            self.resize(size);
        }
        if frame.full {
            for row in &mut self.grid {
                *row = Row::blank(usize::from(size.cols));
            }
            self.mark_grid_dirty();
        }
        self.append_scrolled(frame.scrolled);
        for update in &frame.rows {
            let row = usize::from(update.row);
            if let Some(slot) = self.grid.get_mut(row) {
                *slot = Row::from_line(&update.line, usize::from(size.cols));
                slot.links = update.links.clone();
                self.mark_grid_row_dirty(row);
            }
        }
        if frame.cursor != self.cursor {
            self.mark_cursor_dirty();
            self.cursor = frame.cursor;
            self.mark_cursor_dirty();
        }
        self.modes = frame.modes;
        self.echo_ack = frame.echo_ack;
        self.tty = frame.tty;
        if let Some(title) = frame.title
            && title != self.title
        {
            self.title = title;
            self.title_changed = true;
        }
        self.bell |= frame.bell;
        if let Some(text) = frame.clipboard {
            self.clipboard = Some(text);
        }
        if let Some(notification) = frame.notification {
            self.notification = Some(notification);
        }
    }

    fn push_lines(&mut self, lines: Vec<Line>) {
        for line in lines {
            self.scrollback.push_back(line);
        }
        let mut excess = self.scrollback.len().saturating_sub(self.capacity);
        if let Some((stash_first, stash)) = &mut self.stash {
            // The stash is older: it goes first.
            let from_stash = excess.min(stash.len());
            stash.drain(..from_stash);
            *stash_first += from_stash as u64;
            excess -= from_stash;
            if stash.is_empty() {
                self.stash = None;
            }
        }
        if excess > 0 {
            self.scrollback.drain(..excess);
            self.first += excess as u64;
            self.host_start = self.host_start.max(self.first);
        }
        self.view_offset = self.view_offset.min(self.scrollback.len());
    }

    fn resize(&mut self, size: Size) {
        let cols = usize::from(size.cols);
        self.grid.resize(usize::from(size.rows), Row::blank(cols));
        for row in &mut self.grid {
            row.set_width(cols);
        }
        self.size = size;
        self.dirty = vec![true; usize::from(size.rows)];
    }

    /// Scrolls the view by `lines` (positive goes back in history). Returns
    /// whether the view moved.
    pub fn scroll_view(&mut self, lines: isize) -> bool {
        let target = self
            .view_offset
            .saturating_add_signed(lines)
            .min(self.scrollback.len());
        if target == self.view_offset {
            return false;
        }
        self.view_offset = target;
        self.mark_all_dirty();
        true
    }

    /// Returns the view to the program's output (on typing).
    pub fn scroll_to_bottom(&mut self) -> bool {
        self.scroll_view(-(self.view_offset as isize))
    }

    /// The row shown at view row `row`: a scrollback line while scrolled
    /// back, else a grid row.
    pub fn visible_row(&self, row: u16) -> Option<Cow<'_, Row>> {
        if row >= self.size.rows {
            return None;
        }
        let index = self.scrollback.len() - self.view_offset + usize::from(row);
        self.row_at_index(index)
    }

    fn row_at_index(&self, index: usize) -> Option<Cow<'_, Row>> {
        let cols = usize::from(self.size.cols);
        match index.checked_sub(self.scrollback.len()) {
            None => self
                .scrollback
                .get(index)
                .map(|line| Cow::Owned(Row::from_line(line, cols))),
            Some(grid_row) => {
                let row = self.grid.get(grid_row)?;
                let mut shown = Cow::Borrowed(row);
                for (r, col, cell) in &self.predicted {
                    if usize::from(*r) == grid_row
                        && let Some(slot) = shown.to_mut().cells.get_mut(usize::from(*col))
                    {
                        *slot = cell.clone();
                    }
                }
                Some(shown)
            }
        }
    }

    /// The absolute number of the line at view row `row` (see `first`).
    pub fn line_number_of_view_row(&self, row: u16) -> u64 {
        let index = self.scrollback.len() - self.view_offset + usize::from(row);
        self.first + index as u64
    }

    /// The view row showing absolute line `line`, if it is on screen.
    pub fn view_row_of_line(&self, line: u64) -> Option<u16> {
        let top = self.line_number_of_view_row(0);
        let row = line.checked_sub(top)?;
        (row < u64::from(self.size.rows)).then_some(row as u16)
    }

    /// The row with absolute number `line`, from scrollback or grid.
    pub fn line(&self, line: u64) -> Option<Cow<'_, Row>> {
        let index = usize::try_from(line.checked_sub(self.first)?).ok()?;
        self.row_at_index(index)
    }

    /// Absolute numbers of the first and one past the last line held.
    pub fn line_range(&self) -> (u64, u64) {
        let end = self.history_end() + self.grid.len() as u64;
        (self.first, end)
    }

    /// The cell at a visible position.
    pub fn cell(&self, row: u16, col: u16) -> Option<Cell> {
        self.visible_row(row)?.cells.get(usize::from(col)).cloned()
    }

    /// The text of a visible row, without trailing blanks.
    pub fn row_text(&self, row: u16) -> String {
        self.visible_row(row).map(|r| r.text()).unwrap_or_default()
    }

    /// All visible rows, joined by newlines.
    pub fn text(&self) -> String {
        let rows: Vec<String> = (0..self.size.rows).map(|r| self.row_text(r)).collect();
        rows.join("\n")
    }

    /// The view row the cursor is drawn on, if the program's cursor is
    /// visible in the current view.
    pub fn cursor_view_row(&self) -> Option<u16> {
        let row = usize::from(self.cursor().row) + self.view_offset;
        (row < usize::from(self.size.rows)).then_some(row as u16)
    }

    pub fn take_title_change(&mut self) -> Option<String> {
        core::mem::take(&mut self.title_changed).then(|| self.title.clone())
    }

    pub fn take_bell(&mut self) -> bool {
        core::mem::take(&mut self.bell)
    }

    /// What a program asked to put on the clipboard since the last call.
    pub fn take_clipboard(&mut self) -> Option<String> {
        self.clipboard.take()
    }

    /// The notification a program asked for since the last call.
    pub fn take_notification(&mut self) -> Option<protocol::Notification> {
        self.notification.take()
    }

    pub fn mark_all_dirty(&mut self) {
        self.dirty.iter_mut().for_each(|d| *d = true);
    }

    pub fn mark_row_dirty(&mut self, row: u16) {
        if let Some(d) = self.dirty.get_mut(usize::from(row)) {
            *d = true;
        }
    }

    /// Marks the view row the cursor is on, e.g. when it blinks.
    pub fn mark_cursor_dirty(&mut self) {
        if let Some(row) = self.cursor_view_row() {
            self.mark_row_dirty(row);
        }
    }

    fn mark_grid_row_dirty(&mut self, grid_row: usize) {
        let row = grid_row + self.view_offset;
        if let Some(d) = self.dirty.get_mut(row) {
            *d = true;
        }
    }

    fn mark_grid_dirty(&mut self) {
        for row in 0..self.grid.len() {
            self.mark_grid_row_dirty(row);
        }
    }

    /// Visible rows changed since the last call, in order.
    pub fn take_dirty_rows(&mut self) -> Vec<u16> {
        let mut rows = Vec::new();
        for (i, d) in self.dirty.iter_mut().enumerate() {
            if core::mem::take(d) {
                rows.push(i as u16);
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests;
