//! Which text is a link, where it starts and ends, and what never is.

use protocol::Line;

use super::*;
use crate::testutil::{narrow, wide};

fn row(text: &str) -> Row {
    Row::from_line(&crate::testutil::line(text), 80)
}

fn urls(text: &str) -> Vec<String> {
    links_in_row(&row(text))
        .into_iter()
        .map(|l| l.url)
        .collect()
}

#[test]
fn addresses_are_found_with_their_columns() {
    let links = links_in_row(&row("see https://example.com/a?b=1 now"));
    assert_eq!(
        links,
        vec![Link {
            start: 4,
            end: 29,
            url: "https://example.com/a?b=1".into()
        }]
    );
    assert_eq!(
        link_at(&row("see https://example.com/a?b=1 now"), 4),
        Some("https://example.com/a?b=1".into())
    );
    assert_eq!(link_at(&row("see https://example.com/a?b=1 now"), 29), None);
    assert_eq!(link_at(&row("see https://example.com/a?b=1 now"), 3), None);
}

#[test]
fn sentence_punctuation_and_brackets_around_are_not_part_of_it() {
    assert_eq!(urls("go to http://x.org/docs."), vec!["http://x.org/docs"]);
    assert_eq!(urls("(http://x.org/a_(b))"), vec!["http://x.org/a_(b)"]);
    assert_eq!(urls("[https://x.org/]"), vec!["https://x.org/"]);
    assert_eq!(urls("<https://x.org/q>"), vec!["https://x.org/q"]);
    assert_eq!(urls("\"mailto:a@b.org\","), vec!["mailto:a@b.org"]);
}

#[test]
fn several_links_and_any_case_scheme() {
    assert_eq!(
        urls("HTTPS://A.org and http://b.org"),
        vec!["HTTPS://A.org", "http://b.org"]
    );
}

#[test]
fn only_web_and_mail_schemes_are_links() {
    assert!(urls("javascript:alert(1) data:text/html,x file:///etc/passwd ftp://x").is_empty());
    assert!(urls("https:// alone").is_empty());
    assert!(urls("nothing here").is_empty());
}

#[test]
fn wide_characters_keep_columns_right() {
    let line = Line {
        runs: vec![wide("日本"), narrow(" https://x.jp/")],
        wrapped: false,
    };
    let links = links_in_row(&Row::from_line(&line, 40));
    assert_eq!(links.len(), 1);
    assert_eq!((links[0].start, links[0].end), (5, 18));
}

#[test]
fn a_programs_hyperlink_comes_first_and_only_for_safe_schemes() {
    let mut r = row("see the docs at https://example.com/text");
    r.links = vec![
        protocol::Hyperlink {
            start: 4,
            end: 12,
            uri: "https://example.com/osc8".into(),
        },
        protocol::Hyperlink {
            start: 0,
            end: 3,
            uri: "javascript:alert(1)".into(),
        },
    ];
    assert_eq!(link_at(&r, 4).as_deref(), Some("https://example.com/osc8"));
    assert_eq!(link_at(&r, 11).as_deref(), Some("https://example.com/osc8"));
    assert_eq!(link_at(&r, 12), None);
    // A scheme the page never opens is no link, even if a host sent it.
    assert_eq!(link_at(&r, 1), None);
    // The text's own address still works beside it.
    assert_eq!(link_at(&r, 20).as_deref(), Some("https://example.com/text"));
}
