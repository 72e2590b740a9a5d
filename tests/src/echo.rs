//! Typing over a slow link, timed as the user sees it: the page in
//! Chromium behind a proxy that delays every byte [`ONE_WAY`] each way, and
//! a watcher in the page that notes when each key went down (`keydown`)
//! and when the page first showed it on the prompt line (the `#mirror`
//! row the page updates as it paints the canvas). Shared by the browser
//! test of predictive echo and `cargo xtask bench echo`.

use std::time::Duration;

use anyhow::{Result, ensure};
use serde_json::Value;
use testkit::proxy::FaultProxy;

use crate::browser::{Browser, SettingChange};
use crate::cluster::Cluster;
use crate::wait_until;

/// The link's latency each way: a round trip of 400 ms, a phone on the
/// other side of the world.
pub const ONE_WAY: Duration = Duration::from_millis(200);

/// How long anything here waits before it reports a failure.
const PATIENCE: Duration = Duration::from_secs(30);

/// A cluster whose one host the page reaches only through a delaying
/// proxy, and the page signed in at a prompt, knowing the link is slow.
pub struct SlowLink {
    pub cluster: Cluster,
    pub browser: Browser,
    pub proxy: FaultProxy,
}

impl SlowLink {
    pub async fn start() -> Result<SlowLink> {
        let (cluster, proxy) = Cluster::start_behind_proxy().await?;
        proxy.set_delay(ONE_WAY);
        let browser = Browser::start(1000, 700).await?;
        let link = SlowLink {
            cluster,
            browser,
            proxy,
        };
        let opened = async {
            link.browser
                .open_at_prompt(&link.cluster.directory_url(0), PATIENCE)
                .await?;
            // The page measures the round trip with a ping a second.
            wait_until(
                PATIENCE,
                "the page to measure the slow round trip",
                || async {
                    let state = link.browser.state().await?;
                    let rtt = state["rtt_ms"].as_u64().unwrap_or(0);
                    Ok(if rtt >= 2 * ONE_WAY.as_millis() as u64 {
                        Ok(())
                    } else {
                        Err(format!("{state}"))
                    })
                },
            )
            .await
        }
        .await;
        match opened {
            Ok(()) => Ok(link),
            Err(err) => {
                eprintln!("{}", link.cluster.logs());
                link.browser.close().await;
                Err(err)
            }
        }
    }

    pub async fn close(self) {
        self.browser.close().await;
    }
}

/// The page's watcher: `window.__echo` collects key-down times, the time
/// each character of `target` first showed after the prompt line's text
/// at the start (`base`), and every text `#mirror` showed meanwhile.
const WATCHER: &str = r#"(() => {
  const mirror = document.getElementById('mirror');
  const old = window.__echo;
  if (old) { old.observer.disconnect(); document.removeEventListener('keydown', old.listener, true); }
  const w = { down: [], shown: [], target: TARGET, texts: [] };
  const promptLine = () => {
    const rows = Array.from(mirror.children, row => row.textContent);
    for (let i = rows.length - 1; i >= 0; i--) {
      if (rows[i] === '$' || rows[i].startsWith('$ ')) return rows[i].slice(2);
    }
    return '';
  };
  w.base = promptLine();
  const look = () => {
    const t = performance.now();
    const text = Array.from(mirror.children, row => row.textContent).join('\n');
    if (w.texts.length < 20000 && w.texts[w.texts.length - 1] !== text) w.texts.push(text);
    const line = promptLine();
    if (!line.startsWith(w.base)) return;
    // The row's text has no trailing blanks: a space typed last shows
    // with the key after it.
    let typed = line.slice(w.base.length);
    if (!w.target.startsWith(' ')) typed = typed.trimStart();
    let k = 0;
    while (k < typed.length && k < w.target.length && typed[k] === w.target[k]) k++;
    while (w.shown.length < k) w.shown.push(t);
  };
  w.observer = new MutationObserver(look);
  w.observer.observe(mirror, { subtree: true, childList: true, characterData: true });
  w.listener = e => { if (e.key.length === 1) w.down.push(performance.now()); };
  document.addEventListener('keydown', w.listener, true);
  window.__echo = w;
  return w.base;
})()"#;

/// Starts watching for `target` to be typed after what the prompt line
/// shows now; returns what it shows now.
pub async fn watch(browser: &Browser, target: &str) -> Result<String> {
    let script = WATCHER.replace("TARGET", &serde_json::to_string(target)?);
    let base = browser.eval(&script).await?;
    Ok(base.as_str().unwrap_or_default().to_owned())
}

/// Every text `#mirror` showed since `watch`, in order.
pub async fn texts_seen(browser: &Browser) -> Result<Vec<String>> {
    let texts = browser
        .eval("window.__echo ? window.__echo.texts : []")
        .await?;
    Ok(texts
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// Types `text` (printable characters, no trailing space) one key every
/// `gap` as a person does, waits until the page shows all of it, and
/// returns each key's time from key-down to the page showing it.
pub async fn type_and_time(browser: &Browser, text: &str, gap: Duration) -> Result<Vec<Duration>> {
    watch(browser, text).await?;
    for ch in text.chars() {
        browser.type_keys(&ch.to_string()).await?;
        tokio::time::sleep(gap).await;
    }
    let count = text.chars().count();
    let (down, shown) = wait_until(PATIENCE, "the page to show every key typed", || async {
        let w = browser
            .eval("window.__echo && { down: window.__echo.down, shown: window.__echo.shown }")
            .await?;
        let times = |name: &str| -> Vec<f64> {
            w[name]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        let (down, shown) = (times("down"), times("shown"));
        Ok(if down.len() == count && shown.len() == count {
            Ok((down, shown))
        } else {
            Err(format!(
                "{} keys down, {} shown of {count}",
                down.len(),
                shown.len()
            ))
        })
    })
    .await?;
    ensure!(down.len() == shown.len(), "keys and echoes do not pair up");
    Ok(shown
        .iter()
        .zip(&down)
        .map(|(s, d)| Duration::from_secs_f64((s - d).max(0.0) / 1000.0))
        .collect())
}

/// Chooses the page's prediction setting in its settings panel and waits
/// until the account has it.
pub async fn set_prediction(browser: &Browser, value: &str) -> Result<()> {
    browser
        .change_settings(&[SettingChange::Choose("prediction", value)])
        .await
}
