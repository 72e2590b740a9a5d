//! `bench echo`: issue 16's "share of keystrokes displayed at once and
//! perceived echo latency p50/p99 on a 200 ms link, with prediction on and
//! off". The page in Chromium reaches its host through a proxy that
//! delays every byte 200 ms each way; a person's typing is played into it
//! (a key every [`GAP`], words and spaces, Backspace to fix a typo), and
//! each key's time from `keydown` to the page showing it is taken in the
//! page itself (`echo::type_and_time`). A key counts as displayed at once
//! when it showed within [`AT_ONCE`] (mosh's figure: about 70 % at once
//! and under 5 ms median on 3G).

use std::time::Duration;

use anyhow::Result;
use fantoccini::key::Key;

use crate::Figure;
use crate::echo::{self, ONE_WAY, SlowLink};
use crate::percentile;

/// Between keys: about 75 words a minute.
const GAP: Duration = Duration::from_millis(130);
/// Shown within this counts as at once: under a display refresh or three,
/// and far under the 400 ms the host's echo takes.
const AT_ONCE: Duration = Duration::from_millis(50);
/// Lines typed per setting, each run as a command.
const LINES: [&str; 4] = [
    "echo the-quick-brown-fox",
    "grep -c jumps over.txt",
    "ls -la lazy/dogs",
    "cat notes/monday.md",
];

pub async fn echo(progress: &dyn Fn(&str), figures: &mut Vec<Figure>) -> Result<()> {
    crate::paths::built_page()?;
    let link = SlowLink::start().await?;
    let outcome = measure(&link, progress, figures).await;
    if outcome.is_err() {
        eprintln!("{}", link.cluster.logs());
    }
    link.close().await;
    outcome
}

async fn measure(
    link: &SlowLink,
    progress: &dyn Fn(&str),
    figures: &mut Vec<Figure>,
) -> Result<()> {
    let browser = &link.browser;
    for setting in ["auto", "never"] {
        if setting != "auto" {
            echo::set_prediction(browser, setting).await?;
        }
        progress(&format!(
            "echo: typing {} lines over a {} ms link, prediction {setting}",
            LINES.len(),
            ONE_WAY.as_millis() * 2
        ));
        let mut all = Vec::new();
        for line in LINES {
            // Each line as typed at a prompt, the first key included: the
            // host must confirm a guess of a new line before the page
            // shows the rest of it at once.
            let mut words = line.split(' ');
            let first = words.next().unwrap_or_default();
            all.extend(echo::type_and_time(browser, first, GAP).await?);
            for word in words {
                browser.type_keys(" ").await?;
                tokio::time::sleep(GAP).await;
                all.extend(echo::type_and_time(browser, word, GAP).await?);
            }
            browser.type_keys(&Key::Enter.to_string()).await?;
            // Until the command has run and the next prompt is up.
            tokio::time::sleep(4 * ONE_WAY).await;
            browser
                .wait_mirror_line(Duration::from_secs(30), "a prompt", |l| l == "$")
                .await?;
        }
        all.sort();
        let at_once = all.iter().filter(|&&t| t <= AT_ONCE).count();
        let share = 100.0 * at_once as f64 / all.len().max(1) as f64;
        figures.push(Figure {
            what: format!("keys shown at once (<= 50 ms), 400 ms RTT, prediction {setting}"),
            measured: format!("{share:.0} % of {}", all.len()),
            target: if setting == "auto" {
                "about 70 % (mosh)"
            } else {
                ""
            },
            met: (setting == "auto").then_some(share >= 70.0),
        });
        figures.push(Figure {
            what: format!("key to screen p50 / p99, 400 ms RTT, prediction {setting}"),
            measured: format!(
                "{:.1} / {:.1} ms",
                ms(percentile(&all, 50.0)),
                ms(percentile(&all, 99.0))
            ),
            target: if setting == "auto" {
                "< 5 ms median (mosh)"
            } else {
                ""
            },
            met: (setting == "auto").then_some(percentile(&all, 50.0) < Duration::from_millis(5)),
        });
    }
    Ok(())
}

fn ms(t: Duration) -> f64 {
    t.as_secs_f64() * 1000.0
}
