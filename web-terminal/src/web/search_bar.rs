//! The search bar over the scrollback: its elements, their events, and
//! the browser's `RegExp` as the finder for regular expressions (no regex
//! engine is shipped in the wasm). What is found and where the view goes
//! is `crate::search`.

use wasm_bindgen::prelude::*;
use web_sys::{Document, HtmlElement, HtmlInputElement, KeyboardEvent, MouseEvent};

use super::{App, Shared, element, listen};
use crate::search::{self, Search};

#[wasm_bindgen]
extern "C" {
    /// `new RegExp(pattern, flags)`, which throws on a bad pattern.
    #[wasm_bindgen(catch, js_namespace = globalThis, js_name = RegExp)]
    pub(super) fn new_regexp(pattern: &str, flags: &str) -> Result<js_sys::RegExp, JsValue>;
}

pub(super) struct SearchDom {
    bar: HtmlElement,
    text: HtmlInputElement,
    case: HtmlInputElement,
    regex: HtmlInputElement,
    count: HtmlElement,
    older: HtmlElement,
    newer: HtmlElement,
    close: HtmlElement,
}

impl SearchDom {
    pub(super) fn find(document: &Document) -> Result<SearchDom, JsValue> {
        Ok(SearchDom {
            bar: element(document, "search")?,
            text: element(document, "search-text")?,
            case: element(document, "search-case")?,
            regex: element(document, "search-regex")?,
            count: element(document, "search-count")?,
            older: element(document, "search-older")?,
            newer: element(document, "search-newer")?,
            close: element(document, "search-close")?,
        })
    }
}

pub(super) fn install(app: &Shared) -> Result<(), JsValue> {
    let (text, case, regex, older, newer, close) = {
        let a = app.borrow();
        let s = &a.dom.search;
        (
            s.text.clone(),
            s.case.clone(),
            s.regex.clone(),
            s.older.clone(),
            s.newer.clone(),
            s.close.clone(),
        )
    };
    listen(&text, "input", app, |a, _: web_sys::Event| a.run_search())?;
    listen(&case, "change", app, |a, _: web_sys::Event| a.run_search())?;
    listen(&regex, "change", app, |a, _: web_sys::Event| a.run_search())?;
    listen(&text, "keydown", app, App::on_search_key)?;
    listen(&older, "click", app, |a, _: MouseEvent| a.step_search(true))?;
    listen(&newer, "click", app, |a, _: MouseEvent| {
        a.step_search(false)
    })?;
    listen(&close, "click", app, |a, _: MouseEvent| a.close_search())?;
    Ok(())
}

impl App {
    pub(super) fn open_search(&mut self) {
        let dom = &self.dom.search;
        dom.bar.set_hidden(false);
        let _ = dom.text.focus();
        dom.text.select();
        if !dom.text.value().is_empty() {
            self.run_search();
        }
    }

    pub(super) fn close_search(&mut self) {
        self.dom.search.bar.set_hidden(true);
        self.search = None;
        self.screen.mark_all_dirty();
        self.request_frame();
        let _ = self.dom.keyboard.focus();
    }

    fn on_search_key(&mut self, ev: KeyboardEvent) {
        match ev.key().as_str() {
            "Enter" => {
                ev.prevent_default();
                self.step_search(!ev.shift_key());
            }
            "Escape" => {
                ev.prevent_default();
                self.close_search();
            }
            _ => {}
        }
    }

    /// Searches everything held for what the bar says, and shows the
    /// newest match.
    fn run_search(&mut self) {
        let dom = &self.dom.search;
        let query = dom.text.value();
        let case = dom.case.checked();
        let regex = dom.regex.checked();
        let empty = query.is_empty();
        let result = if empty {
            Ok(Search::default())
        } else {
            let pattern = if regex {
                query
            } else {
                search::regex_literal(&query)
            };
            let flags = if case { "g" } else { "gi" };
            new_regexp(&pattern, flags)
                .map(|re| Search::run(&self.screen, |hay| regexp_spans(&re, hay)))
                .map_err(|_| "not a valid regular expression".to_owned())
        };
        match result {
            Ok(found) => {
                let summary = if empty {
                    String::new()
                } else {
                    found.summary()
                };
                self.dom.search.count.set_text_content(Some(&summary));
                self.search = Some(found);
                self.reveal_match();
            }
            Err(problem) => {
                self.dom.search.count.set_text_content(Some(&problem));
                self.search = None;
            }
        }
        self.screen.mark_all_dirty();
        self.request_frame();
    }

    /// Moves to the next older (or newer) match.
    fn step_search(&mut self, older: bool) {
        let Some(search) = &mut self.search else {
            return self.run_search();
        };
        if older {
            search.older();
        } else {
            search.newer();
        }
        let summary = search.summary();
        self.dom.search.count.set_text_content(Some(&summary));
        self.reveal_match();
        self.request_frame();
    }

    /// Scrolls the view so the current match is on screen.
    fn reveal_match(&mut self) {
        let Some(found) = self.search.as_ref().and_then(Search::current) else {
            return;
        };
        let (_, end) = self.screen.line_range();
        let rows = self.screen.size().rows;
        let offset = self.screen.view_offset();
        if let Some(wanted) = search::offset_showing(found.line, end, rows, offset) {
            let by = wanted as isize - offset as isize;
            self.screen.scroll_view(by);
        }
        self.screen.mark_all_dirty();
    }
}

/// Every match of `re` (a global `RegExp`) in `hay`, in UTF-16 units;
/// empty matches are skipped.
pub(super) fn regexp_spans(re: &js_sys::RegExp, hay: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    re.set_last_index(0);
    while let Some(found) = re.exec(hay) {
        let start = js_sys::Reflect::get(&found, &JsValue::from_str("index"))
            .ok()
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0) as usize;
        let len = found
            .get(0)
            .as_string()
            .map_or(0, |m| m.encode_utf16().count());
        if len == 0 {
            // An empty match would find itself again forever; past the
            // end, `exec` finds nothing and the loop ends.
            re.set_last_index(re.last_index() + 1);
            continue;
        }
        spans.push((start, start + len));
    }
    spans
}
