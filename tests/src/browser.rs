//! Headless Chromium driven over WebDriver, for tests of the real page.
//!
//! Debian's `chromium` and `chromium-driver` are used because nothing can
//! be downloaded at test time. Each [`Browser`] has its own chromedriver on
//! a free loopback port and a fresh profile directory, so tests share no
//! cookies or localStorage unless they reuse one browser on purpose.
//! chromedriver runs in its own process group, which is killed on drop so a
//! failing test leaves no Chromium behind.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use fantoccini::actions::{
    Actions, InputSource, KeyAction, KeyActions, MOUSE_BUTTON_LEFT, MOUSE_BUTTON_RIGHT,
    MouseActions, PointerAction, TouchActions,
};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use testkit::process::{OnDrop, Process};

use crate::wait_until;

/// Whether the browser tests must run (`cargo xtask test` sets
/// `THINLINE_E2E=1`). Without it they are skipped with a note, because a
/// plain `cargo test` on a developer machine may have no Chromium or no
/// built page in `static/dist`; CI always sets it.
pub fn e2e_enabled() -> bool {
    std::env::var("THINLINE_E2E").is_ok_and(|v| v == "1")
}

fn tool(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(default), PathBuf::from)
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

pub struct Browser {
    pub client: Client,
    /// chromedriver, whose process group (its Chromium too) is killed
    /// when the browser is dropped.
    _driver: Process,
    _profile: tempfile::TempDir,
    /// Where Chromium saves downloads, without asking.
    pub downloads: tempfile::TempDir,
    /// chromedriver's address, for its Chromium-only commands.
    webdriver: String,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a window of
    /// `width`×`height` CSS pixels.
    pub async fn start(width: u32, height: u32) -> Result<Browser> {
        Browser::start_with(width, height, "normal").await
    }

    /// As [`Browser::start`], with a WebDriver page load strategy:
    /// `eager` makes a navigation return at `DOMContentLoaded`, before the
    /// page's wasm has been fetched (what `bench page` times from).
    pub async fn start_with(width: u32, height: u32, page_load_strategy: &str) -> Result<Browser> {
        let chromium = tool("CHROMIUM", "/usr/bin/chromium");
        let chromedriver = tool("CHROMEDRIVER", "/usr/bin/chromedriver");
        for path in [&chromium, &chromedriver] {
            if !path.is_file() {
                bail!(
                    "{} is missing; `cargo xtask test` installs chromium and chromium-driver",
                    path.display()
                );
            }
        }
        let profile = tempfile::Builder::new()
            .prefix("thinline-chromium-")
            .tempdir()
            .context("creating a Chromium profile directory")?;
        let port = free_port()?;
        let mut command = Command::new(&chromedriver);
        command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1");
        // Killed with its group if startup fails half-way, or at the end.
        let driver = Process::spawn(command, "chromedriver", None)?.on_drop(OnDrop::KillGroup);
        let mut browser_args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--disable-quic".into(),
            format!("--window-size={width},{height}"),
        ];
        browser_args.push(format!("--user-data-dir={}", profile.path().display()));
        let downloads = tempfile::Builder::new()
            .prefix("thinline-downloads-")
            .tempdir()
            .context("creating a download directory")?;
        let capabilities = json!({
            "browserName": "chrome",
            "pageLoadStrategy": page_load_strategy,
            "goog:chromeOptions": {
                "binary": chromium,
                "args": browser_args,
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                },
            },
        });
        let Value::Object(capabilities) = capabilities else {
            bail!("capabilities are not an object");
        };
        let webdriver = format!("http://127.0.0.1:{port}");
        let client = wait_until(
            Duration::from_secs(30),
            "chromedriver to start a session",
            || {
                let capabilities = capabilities.clone();
                let webdriver = webdriver.clone();
                async move {
                    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                    match ClientBuilder::new(connector)
                        .capabilities(capabilities)
                        .connect(&webdriver)
                        .await
                    {
                        Ok(client) => Ok(Ok(client)),
                        Err(err) => Ok(Err(err.to_string())),
                    }
                }
            },
        )
        .await?;
        Ok(Browser {
            client,
            _driver: driver,
            _profile: profile,
            downloads,
            webdriver,
        })
    }

    /// Runs the Chrome DevTools Protocol command `cmd` through
    /// chromedriver (`Network.emulateNetworkConditions`, say).
    pub async fn devtools(&self, cmd: &str, params: Value) -> Result<Value> {
        let session = self
            .client
            .session_id()
            .await
            .context("asking chromedriver for its session")?
            .context("chromedriver has no session")?;
        let url = format!("{}/session/{session}/goog/cdp/execute", self.webdriver);
        let answer = crate::http::Request::new("POST", &url)?
            .json(&json!({ "cmd": cmd, "params": params }))
            .send()
            .await
            .with_context(|| format!("sending {cmd} to chromedriver"))?;
        ensure!(
            answer.status == 200,
            "{cmd}: chromedriver answered {}",
            answer.status
        );
        Ok(serde_json::from_str(&answer.body).unwrap_or(Value::Null))
    }

    /// Limits what the page may send to `bytes_per_second` (`None` lifts
    /// the limit), as a slow uplink does.
    pub async fn throttle_uploads(&self, bytes_per_second: Option<u64>) -> Result<()> {
        self.devtools("Network.enable", json!({})).await?;
        let upload = bytes_per_second.map_or(-1.0, |b| b as f64);
        self.devtools(
            "Network.emulateNetworkConditions",
            json!({
                "offline": false,
                "latency": 0,
                "downloadThroughput": -1,
                "uploadThroughput": upload,
            }),
        )
        .await?;
        Ok(())
    }

    /// Runs `return (expr)` in the page and returns the result.
    pub async fn eval(&self, expr: &str) -> Result<Value> {
        let script = format!("return ({expr});");
        self.client
            .execute(&script, Vec::new())
            .await
            .with_context(|| format!("evaluating `{expr}` in the page"))
    }

    /// Calls `window.thinline.<name>(<args>)` (which returns a JSON string)
    /// and parses the result; `null` while the page's API is not there yet.
    pub async fn thinline(&self, name: &str, args: &str) -> Result<Value> {
        let expr = format!(
            "window.thinline && typeof window.thinline.{name} === 'function' ? window.thinline.{name}({args}) : null"
        );
        let raw = self.eval(&expr).await?;
        match raw {
            Value::String(text) => serde_json::from_str(&text)
                .with_context(|| format!("thinline.{name}({args}) returned no JSON: {text}")),
            other => Ok(other),
        }
    }

    /// `thinline.state()` as JSON (`null` before the page has started).
    pub async fn state(&self) -> Result<Value> {
        self.thinline("state", "").await
    }

    /// What `#status` says (the page reports startup failures there).
    pub async fn status_text(&self) -> Result<String> {
        let value = self
            .eval("(() => { const s = document.getElementById('status'); return s ? s.textContent : '(no #status)'; })()")
            .await?;
        Ok(value.as_str().unwrap_or_default().to_string())
    }

    /// The text of every row of the `#mirror` (one child per visible row).
    pub async fn mirror_lines(&self) -> Result<Vec<String>> {
        let value = self
            .eval(
                "Array.from(document.querySelectorAll('#mirror > *')).map(e => e.textContent.replace(/\\u00a0/g, ' '))",
            )
            .await?;
        let lines = value
            .as_array()
            .context("mirror rows are not an array")?
            .iter()
            .map(|v| v.as_str().unwrap_or_default().trim_end().to_string())
            .collect();
        Ok(lines)
    }

    /// Waits until `thinline.state().connection` is `live`.
    pub async fn wait_live(&self, timeout: Duration) -> Result<Value> {
        wait_until(timeout, "the page to be live", || async {
            let state = self.state().await?;
            Ok(if state["connection"] == "live" {
                Ok(state)
            } else {
                Err(format!(
                    "state: {state}, #status: {}",
                    self.status_text().await?
                ))
            })
        })
        .await
    }

    /// Loads `url` and, if the directory sends the browser to its sign-in
    /// page, signs in as `user`; waits until the terminal is live.
    pub async fn open_and_sign_in(&self, url: &str, user: &str, password: &str) -> Result<Value> {
        self.client
            .goto(url)
            .await
            .with_context(|| format!("opening {url}"))?;
        self.sign_in_if_asked(user, password).await?;
        self.wait_live(Duration::from_secs(30)).await
    }

    /// Opens the test user's terminal at the page of the directory at
    /// `directory`, signed in, and waits for a `$` prompt.
    pub async fn open_at_prompt(&self, directory: &str, patience: Duration) -> Result<()> {
        self.open_and_sign_in(
            &format!("{directory}/"),
            crate::tickets::TEST_USER,
            crate::tickets::TEST_PASSWORD,
        )
        .await?;
        self.wait_mirror_line(patience, "a `$` prompt in #mirror", |line| line == "$")
            .await?;
        Ok(())
    }

    /// Whether the sign-in form is showing.
    pub async fn on_sign_in_page(&self) -> Result<bool> {
        let found = self
            .eval("!!document.querySelector('form input[name=\"password\"]')")
            .await?;
        Ok(found == Value::Bool(true))
    }

    /// Fills the sign-in form and submits it if it is showing; otherwise
    /// waits until the terminal page starts connecting.
    pub async fn sign_in_if_asked(&self, user: &str, password: &str) -> Result<()> {
        let needs_sign_in = wait_until(
            Duration::from_secs(20),
            "the sign-in form or a connection",
            || async {
                if self.on_sign_in_page().await? {
                    return Ok(Ok(true));
                }
                // The sign-in page has no `window.thinline`: `null` there.
                let state = self.state().await?;
                let connecting =
                    matches!(state["connection"].as_str(), Some("connecting" | "live"));
                Ok(if connecting {
                    Ok(false)
                } else {
                    Err(format!("no form and not connecting; state: {state}"))
                })
            },
        )
        .await?;
        if needs_sign_in {
            self.submit_sign_in(user, password).await?;
        }
        Ok(())
    }

    /// Types `user` and `password` into the sign-in form and submits it.
    pub async fn submit_sign_in(&self, user: &str, password: &str) -> Result<()> {
        let name = self
            .client
            .find(Locator::Css("input[name=\"user\"]"))
            .await
            .context("the user field")?;
        name.clear().await?;
        name.send_keys(user).await.context("typing the user")?;
        let secret = self
            .client
            .find(Locator::Css("input[name=\"password\"]"))
            .await
            .context("the password field")?;
        secret.clear().await?;
        secret
            .send_keys(password)
            .await
            .context("typing the password")?;
        self.client
            .find(Locator::Css(
                "form:has(input[name=\"password\"]) button[type=\"submit\"]",
            ))
            .await
            .context("the sign-in button")?
            .click()
            .await
            .context("pressing the sign-in button")?;
        Ok(())
    }

    /// Types `text` into the focused `#keyboard` as real key events
    /// (WebDriver key codes such as `fantoccini::key::Key::Enter` included).
    pub async fn type_keys(&self, text: &str) -> Result<()> {
        self.eval("(() => { const k = document.getElementById('keyboard'); if (k) k.focus(); return !!k; })()")
            .await?;
        let keyboard = self
            .client
            .find(Locator::Css("#keyboard"))
            .await
            .context("#keyboard")?;
        keyboard
            .send_keys(text)
            .await
            .with_context(|| format!("typing {text:?} into #keyboard"))
    }

    async fn find(&self, css: &str) -> Result<fantoccini::elements::Element> {
        self.client
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("finding {css}"))
    }

    /// Opens the settings panel (its module loads on first use) and waits
    /// until it shows.
    pub async fn open_settings(&self) -> Result<()> {
        self.click("#settings-button").await?;
        crate::wait_until(
            std::time::Duration::from_secs(20),
            "the settings panel to open",
            || async {
                let shown = self
                    .eval("!!document.getElementById('settings') && !document.getElementById('settings').hidden")
                    .await?;
                Ok(if shown == true { Ok(()) } else { Err(shown.to_string()) })
            },
        )
        .await
    }

    /// Opens the settings panel, makes `changes` as a person does, waits
    /// until the account has them, and closes the panel with Esc.
    pub async fn change_settings(&self, changes: &[SettingChange<'_>]) -> Result<()> {
        self.open_settings().await?;
        let mut last = String::new();
        for change in changes {
            last = match change {
                SettingChange::Choose(field, value) => {
                    let css = format!("select[data-setting={field}]");
                    self.select(&css, value).await?;
                    css
                }
                SettingChange::Tick(field) => {
                    let css = format!("input[data-setting={field}]");
                    self.click(&css).await?;
                    css
                }
            };
        }
        self.wait_for_eval(
            "the change saved",
            "document.getElementById('settings-status').textContent",
            "saved to your account".into(),
        )
        .await?;
        self.type_into(&last, &fantoccini::key::Key::Escape.to_string())
            .await?;
        self.wait_for_eval(
            "the panel closed",
            "document.getElementById('settings').hidden",
            Value::Bool(true),
        )
        .await
    }

    /// Waits until the page expression `expr` is `expected`.
    async fn wait_for_eval(&self, what: &str, expr: &str, expected: Value) -> Result<()> {
        crate::wait_until(std::time::Duration::from_secs(20), what, || async {
            let value = self.eval(expr).await?;
            Ok(if value == expected {
                Ok(())
            } else {
                Err(value.to_string())
            })
        })
        .await
    }

    /// Types `text` into the element `css` (WebDriver key codes included).
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        self.find(css)
            .await?
            .send_keys(text)
            .await
            .with_context(|| format!("typing {text:?} into {css}"))
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) -> Result<()> {
        self.find(css)
            .await?
            .click()
            .await
            .with_context(|| format!("clicking {css}"))?;
        Ok(())
    }

    /// Chooses the option `value` of the `<select>` `css`, as a person
    /// does (the page sees a `change` event).
    pub async fn select(&self, css: &str, value: &str) -> Result<()> {
        self.find(css)
            .await?
            .select_by_value(value)
            .await
            .with_context(|| format!("choosing {value:?} in {css}"))
    }

    /// Clicks at viewport point `(x, y)` with Ctrl held, as a person opens
    /// a link in a terminal.
    pub async fn ctrl_click_at(&self, x: f64, y: f64) -> Result<()> {
        let ctrl: char = fantoccini::key::Key::Control.into();
        // One tick each: Ctrl down, move, press, release, Ctrl up.
        let keys = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: ctrl })
            .pause(Duration::ZERO)
            .pause(Duration::ZERO)
            .pause(Duration::ZERO)
            .then(KeyAction::Up { value: ctrl });
        let mouse = gesture(
            MouseActions::new("mouse".into()).pause(Duration::ZERO),
            MOUSE_BUTTON_LEFT,
            (x, y),
            None,
        )
        .pause(Duration::ZERO);
        self.perform(Actions::from(keys).and(mouse), "Ctrl+click")
            .await
    }

    /// Presses the left button at `from`, drags to `to` and lets go
    /// (viewport points), as a person selects text.
    pub async fn drag(&self, from: (f64, f64), to: (f64, f64)) -> Result<()> {
        let glide = (Duration::ZERO, Duration::from_millis(100), to);
        let mouse = gesture(
            MouseActions::new("mouse".into()),
            MOUSE_BUTTON_LEFT,
            from,
            Some(glide),
        );
        self.perform(mouse, "dragging").await
    }

    /// A finger put down at `from`, held still for `hold`, dragged to `to`
    /// and lifted (WebDriver's touch pointer, which Chromium turns into
    /// touch events).
    pub async fn touch_hold_and_drag(
        &self,
        from: (f64, f64),
        hold: Duration,
        to: (f64, f64),
    ) -> Result<()> {
        let glide = (hold, Duration::from_millis(200), to);
        let finger = gesture(
            TouchActions::new("finger".into()),
            MOUSE_BUTTON_LEFT,
            from,
            Some(glide),
        );
        self.perform(finger, "touching").await
    }

    /// A right click at viewport point `(x, y)`.
    pub async fn right_click_at(&self, x: f64, y: f64) -> Result<()> {
        let mouse = gesture(
            MouseActions::new("mouse".into()),
            MOUSE_BUTTON_RIGHT,
            (x, y),
            None,
        );
        self.perform(mouse, "right click").await
    }

    /// Runs `actions`, then lets go of every key and button they left down.
    async fn perform(&self, actions: impl Into<Actions>, what: &str) -> Result<()> {
        self.client
            .perform_actions(actions)
            .await
            .with_context(|| what.to_owned())?;
        self.client
            .release_actions()
            .await
            .with_context(|| format!("letting go after {what}"))
    }

    /// The windows (tabs) open, the page's own first.
    pub async fn window_count(&self) -> Result<usize> {
        Ok(self
            .client
            .windows()
            .await
            .context("listing windows")?
            .len())
    }

    /// Switches to the newest other window, evaluates `expr` there with
    /// its address, and comes back.
    pub async fn in_other_window(&self, expr: &str) -> Result<(String, Value)> {
        let home = self.client.window().await.context("this window")?;
        let other = self
            .client
            .windows()
            .await
            .context("listing windows")?
            .into_iter()
            .rfind(|w| *w != home)
            .context("no other window is open")?;
        self.client
            .switch_to_window(other)
            .await
            .context("switching windows")?;
        let url = self.client.current_url().await.map(|u| u.to_string());
        let value = self.eval(expr).await;
        self.client
            .switch_to_window(home)
            .await
            .context("switching back")?;
        Ok((url.context("the other window's address")?, value?))
    }

    /// Types `command` and Enter into the terminal.
    pub async fn run(&self, command: &str) -> Result<()> {
        self.type_keys(&format!("{command}{}", fantoccini::key::Key::Enter))
            .await
    }

    /// Runs `echo <prefix>-$((6*7))` with a fresh marker and waits up to
    /// `timeout` for the shell's `<marker>-42` (which the echoed command
    /// line cannot match); returns that line.
    pub async fn echo_marker(&self, prefix: &str, timeout: Duration) -> Result<String> {
        let marker = crate::unique_marker(prefix);
        self.run(&format!("echo {marker}-$((6*7))")).await?;
        let expected = format!("{marker}-42");
        self.wait_mirror_line(timeout, &format!("{expected} in #mirror"), |l| {
            l == expected
        })
        .await
    }

    /// Runs `echo <marker>=<expression>` with a fresh marker and returns
    /// what the shell printed after `<marker>=` (the echoed command line,
    /// which starts with the prompt, cannot match).
    pub async fn echo_marker_output(&self, prefix: &str, expression: &str) -> Result<String> {
        let marker = format!("{}=", crate::unique_marker(prefix));
        self.run(&format!("echo {marker}{expression}")).await?;
        let line = self
            .wait_mirror_line(
                Duration::from_secs(20),
                &format!("a line starting {marker} in #mirror"),
                |l| l.starts_with(&marker),
            )
            .await?;
        Ok(line[marker.len()..].to_owned())
    }

    /// Waits until some mirror row satisfies `matches`; returns that row.
    pub async fn wait_mirror_line(
        &self,
        timeout: Duration,
        what: &str,
        matches: impl Fn(&str) -> bool,
    ) -> Result<String> {
        wait_until(timeout, what, || async {
            let lines = self.mirror_lines().await?;
            Ok(match lines.iter().find(|line| matches(line)) {
                Some(line) => Ok(line.clone()),
                None => Err(lines.join("\n")),
            })
        })
        .await
    }

    /// Ends the WebDriver session (closing Chromium) and the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// `source` moves to `at` and presses `button`; with `glide`, it rests
/// `.0`, moves to `.2` over `.1`; then it lets go.
fn gesture<S: InputSource<Action = PointerAction>>(
    source: S,
    button: u64,
    at: (f64, f64),
    glide: Option<(Duration, Duration, (f64, f64))>,
) -> S {
    let pressed = source
        .then(PointerAction::MoveTo {
            duration: None,
            x: at.0,
            y: at.1,
        })
        .then(PointerAction::Down { button });
    let moved = match glide {
        Some((rest, over, to)) => pressed.pause(rest).then(PointerAction::MoveTo {
            duration: Some(over),
            x: to.0,
            y: to.1,
        }),
        None => pressed,
    };
    moved.then(PointerAction::Up { button })
}

/// One change in the settings panel, as a person makes it.
pub enum SettingChange<'a> {
    /// The option `.1` of the select for field `.0`.
    Choose(&'a str, &'a str),
    /// A click on the checkbox for a field.
    Tick(&'a str),
}
