//! Links in the output: addresses found in a row's text, opened with
//! Ctrl+click (Cmd+click on macOS) in a new tab without an opener.
//!
//! Only `http:`, `https:` and `mailto:` are links: nothing a program prints
//! can make the page open `javascript:`, `data:` or a local file.

use crate::screen::Row;

/// Schemes that make a link, as they start one in the text.
const SCHEMES: [&str; 3] = ["https://", "http://", "mailto:"];

/// A link in a row: columns `start..end` and the address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub start: u16,
    pub end: u16,
    pub url: String,
}

/// Characters that end an address: whitespace, quotes, angle brackets
/// and the like, which people put around addresses rather than in them.
fn ends_address(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '<' | '>' | '`' | '{' | '}' | '|' | '\\' | '^'
        )
}

/// Every link in `row`, left to right.
pub fn links_in_row(row: &Row) -> Vec<Link> {
    // The row's characters with their columns.
    let chars: Vec<(char, u16)> = row
        .text_cells()
        .flat_map(|(col, text)| text.chars().map(move |c| (c, col)))
        .collect();
    let text: String = chars.iter().map(|(c, _)| *c).collect();
    let lower = text.to_ascii_lowercase();
    // Byte offset in `text` -> index in `chars`.
    let mut index_of = vec![0usize; text.len() + 1];
    for (i, (at, c)) in text.char_indices().enumerate() {
        for slot in &mut index_of[at..at + c.len_utf8()] {
            *slot = i;
        }
    }
    index_of[text.len()] = chars.len();

    let mut links = Vec::new();
    let mut from = 0;
    while from < text.len() {
        let Some((at, scheme)) = SCHEMES
            .iter()
            .filter_map(|s| lower[from..].find(s).map(|i| (from + i, *s)))
            .min_by_key(|(i, _)| *i)
        else {
            break;
        };
        let rest = &text[at..];
        let mut len = rest.find(ends_address).unwrap_or(rest.len());
        len = trim_trailing(&rest[..len]);
        if len > scheme.len() {
            let url = rest[..len].to_owned();
            let first = index_of[at];
            let last = index_of[at + len] - 1;
            links.push(Link {
                start: chars[first].1,
                end: chars[last].1 + 1,
                url,
            });
        }
        from = at + len.max(scheme.len());
    }
    links
}

/// The link covering column `col` of `row`, if any: an OSC 8 hyperlink
/// the program made (of the schemes above, checked again here), else an
/// address in the text.
pub fn link_at(row: &Row, col: u16) -> Option<String> {
    if let Some(link) = row
        .links
        .iter()
        .find(|l| (l.start..l.end).contains(&col) && protocol::linkable(&l.uri))
    {
        return Some(link.uri.clone());
    }
    links_in_row(row)
        .into_iter()
        .find(|l| (l.start..l.end).contains(&col))
        .map(|l| l.url)
}

/// The length of `candidate` without the punctuation that ends sentences
/// around addresses: a trailing `.`, `,`, `;`, `:`, `!`, `?`, and closing
/// brackets that do not close one opened inside the address.
fn trim_trailing(candidate: &str) -> usize {
    let mut end = candidate.len();
    loop {
        let Some(last) = candidate[..end].chars().next_back() else {
            return end;
        };
        let open = match last {
            ')' => Some('('),
            ']' => Some('['),
            _ => None,
        };
        let trim = match open {
            Some(open) => {
                let inside = &candidate[..end];
                inside.matches(open).count() < inside.matches(last).count()
            }
            None => matches!(last, '.' | ',' | ';' | ':' | '!' | '?'),
        };
        if !trim {
            return end;
        }
        end -= last.len_utf8();
    }
}

#[cfg(test)]
mod tests;
