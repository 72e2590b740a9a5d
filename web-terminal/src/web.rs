//! Browser glue: DOM, WebSocket, canvas, timers and events around the core.
//!
//! This module only translates between web-sys and the natively tested
//! modules (`screen`, `keys`, `selection`, `connection`, `render`, `api`);
//! anything that needs a decision lives there.
//!
//! # Page contract
//!
//! End-to-end tests depend on exactly this; `static/index.html` repeats it.
//!
//! - A directory replica serves the built page (`static/dist`, from
//!   `static/` by `cargo xtask build`) at `/` to signed-in users (others
//!   are sent to its server-rendered `/login` form). `index.html` loads
//!   `assets/loader.<hash>.js`, which does `import init, { start } from
//!   './web_terminal.<hash>.js'; await init(); start();` (`wasm-bindgen
//!   --target web --out-name web_terminal`, its wasm renamed
//!   `web_terminal_bg.<hash>.wasm`); every asset has a content-hashed name.
//!   No inline scripts or style attributes: the CSP is `script-src 'self'
//!   'wasm-unsafe-eval'; style-src 'self'`.
//! - Sign-in: every directory request carries the sign-in cookie
//!   (`credentials: "same-origin"` to the page's origin, `"include"` to a
//!   peer replica). `start()` first fetches `/v1/me`; a 401 from it or any
//!   later directory request sends the browser to `/login` (to
//!   `{replica}/login` when a peer replica answered 401).
//! - Directory: then `/v1/config` lists the replicas (404 or not JSON: the
//!   page's origin is the only one); placement and failover go through them
//!   (`POST /v1/placement`, `POST /v1/sessions/{id}/unreachable`), whose
//!   answers carry a ticket; the WebSocket goes to `ws[s]://` + the
//!   host:port of the url they return + `/ws`, and the hello carries the
//!   ticket (never a URL). See `connection/recovery.rs` and
//!   `connection/tickets.rs`.
//! - Session choice: `?session=ID` (32 hex digits), else `?new=1`, else
//!   the id in localStorage `thinline.session`, else none (the directory
//!   picks the user's most recently active running session, or starts
//!   one). Once placed, the address becomes `/?session=ID`
//!   (`history.replaceState`) and the id is stored; both are cleared after
//!   `SessionEnded` (4004). A share link (`/#share=TOKEN`) is redeemed by
//!   `static/share.js` before `start()` and arrives as `?session=ID`; the
//!   welcome's role makes the page a viewer (no size sent, keys only with
//!   "may type", the owner's grid fitted by font size).
//! - Hot desking: close 4005 stops every retry; `#replaced` (with the advice
//!   in `#replaced-text`) shows a `#take-back` button that fetches a fresh
//!   ticket and reconnects, replacing the other terminal in turn.
//! - DOM ids: `#screen` (canvas), `#keyboard` (hidden textarea holding the
//!   focus), `#status` (state, host, RTT), `#user` (signed-in user),
//!   `#sessions` (link to `/sessions`), `#sign-out` (form POSTing to
//!   `/logout`) with `#sign-out-button`, `#mirror` (role=log; one child per
//!   visible row, textContent = row text without trailing blanks),
//!   `#overlay` (what failover is doing and for how long, refreshed every
//!   250 ms; error advice; notices such as undelivered keystrokes),
//!   `#replaced`, `#replaced-text`, `#take-back`.
//! - `window.thinline`, installed by `start()`, with functions returning
//!   JSON strings: `state()` -> `{"connection":"connecting|live|backoff|
//!   closed|replaced|signed_out","host":..|null,"session":"hex"|null,
//!   "epoch":n|null,"rtt_ms":n|null,"cols":n,"rows":n,"error":..|null,
//!   "frames":n,"stage":"overlay text or empty","undelivered":n,
//!   "directory":"url in use"|null,"user":"name"|null}`, where
//!   `undelivered` counts input messages reported as never delivered;
//!   `cell(row, col)` ->
//!   `{"text","fg":"#rrggbb","bg","fg_spec":"default|indexed:N|rgb:R,G,B",
//!   "bg_spec","bold","dim","italic","underline","inverse","strike","wide"}`
//!   (colours through the palette, before inverse; `null` off the grid);
//!   `text()` -> visible rows joined by "\n" (a plain string, not JSON);
//!   `scrollback_len()` and `view_offset()` -> numbers; `take_back()`
//!   does what the `#take-back` button does. Beyond the contract,
//!   `bench_repaint()` forces a full repaint and returns its duration in ms.
//! - Settings: `#settings-button` opens the `#settings` form (built by
//!   `static/settings.js`, loaded on first use), one control
//!   per field of `GET`/`PUT /v1/settings` named by its `data-setting`;
//!   `#settings-status` says whether a change was saved; `#settings-close`
//!   or Esc closes it. The page applies localStorage `thinline.settings`
//!   at once and then the directory's copy. `thinline.settings()` returns
//!   the settings in use, as `PUT` takes them.
//! - Keys: Ctrl+= / Ctrl+- / Ctrl+0 (Cmd on macOS) change the font size;
//!   Ctrl+Shift+C / Ctrl+Shift+V (Cmd+C / Cmd+V) copy and paste;
//!   Shift+PageUp / Shift+PageDown scroll the scrollback; Shift+drag selects
//!   even when the program reports the mouse; Enter after a "closed" notice
//!   reconnects (a new session after the program exited), but never takes
//!   a replaced session back.

// The player's build keeps only what `player.rs` draws with.
#![cfg_attr(feature = "player", allow(dead_code, unused_imports))]

mod draw;
mod fetch;
mod full_screen;
mod input;
mod keybar;
mod paint;
mod panels;
#[cfg(feature = "player")]
mod player;
mod search_bar;
mod settings_panel;

use std::cell::{Cell as StdCell, RefCell};
use std::rc::{Rc, Weak};

use gloo_timers::callback::{Interval, Timeout};
use protocol::Size;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{
    BinaryType, CloseEvent, CompositionEvent, Document, Element, HtmlCanvasElement, HtmlElement,
    HtmlTextAreaElement, InputEvent, MessageEvent, Storage, WebSocket, Window,
};

use self::draw::{GlyphAtlas, Painter};
use self::fetch::Fetcher;
use crate::api;
use crate::connection::{Action, Connection, Delivery, SessionChoice};
use crate::keys::MouseButton;
use crate::predict::Predictor;
use crate::render::{CellMetrics, Theme};
use crate::screen::Screen;
use crate::selection::Selection;
use crate::settings::PageSettings;
use crate::settings::SettingsSync;

const SESSION_KEY: &str = "thinline.session";
const RESIZE_DEBOUNCE_MS: u32 = 120;
const BLINK_MS: u32 = 530;
const NOTICE_MS: f64 = 6_000.0;

type Shared = Rc<RefCell<App>>;

fn js_err(msg: &str) -> JsValue {
    JsValue::from_str(msg)
}

fn element<T: JsCast>(document: &Document, id: &str) -> Result<T, JsValue> {
    document
        .get_element_by_id(id)
        .ok_or_else(|| js_err(&format!("#{id} is missing from the page")))?
        .dyn_into::<T>()
        .map_err(|_| js_err(&format!("#{id} is not the expected element")))
}

/// An open (or opening) WebSocket and the handlers that keep it alive.
struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    fn detach(&self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
    }
}

struct Dom {
    window: Window,
    document: Document,
    canvas: HtmlCanvasElement,
    keyboard: HtmlTextAreaElement,
    status: HtmlElement,
    mirror: HtmlElement,
    overlay: HtmlElement,
    user: HtmlElement,
    /// The hot-desking panel: advice and the "Take it back" button.
    replaced: HtmlElement,
    replaced_text: HtmlElement,
    take_back: HtmlElement,
    search: search_bar::SearchDom,
    keybar: keybar::KeybarDom,
    storage: Option<Storage>,
}

struct App {
    me: Weak<RefCell<App>>,
    dom: Dom,
    painter: Painter,
    screen: Screen,
    conn: Connection,
    /// The echo of typing shown before the host's (`crate::predict`).
    predictor: Predictor,
    selection: Option<Selection>,
    /// A selection drag is in progress.
    selecting: bool,
    /// Mouse button held while the program gets reports, and the last cell
    /// reported, so motion is reported once per cell.
    reporting: Option<(MouseButton, (u16, u16))>,
    wheel_rest: f64,
    socket: Option<Socket>,
    timer: Option<Timeout>,
    resize_timer: Option<Timeout>,
    /// The next try of a settings save no directory took.
    settings_retry: Option<Timeout>,
    /// Refreshes the overlay's elapsed time while failover is under way.
    stage_tick: Option<Interval>,
    fetcher: Fetcher,
    raf: Option<Closure<dyn FnMut()>>,
    frame_requested: bool,
    focused: Rc<StdCell<bool>>,
    drawn_focus: bool,
    blink_on: bool,
    drawn_cursor_row: Option<u16>,
    /// Where the hidden textarea was last placed, in CSS pixels.
    keyboard_at: (f64, f64),
    mirror_rows: Vec<(Element, String)>,
    status_text: String,
    overlay_text: String,
    notice: Option<(String, f64)>,
    /// For a viewer: the owner's grid the font was last fitted to.
    viewer_grid: Size,
    /// A paste that would run as typed, waiting for Enter (or Esc): the
    /// question shown, and the bytes it would send.
    paste_question: Option<(String, Vec<u8>)>,
    /// The search bar's matches while it is open.
    search: Option<crate::search::Search>,
    /// The user's settings, and their saving.
    settings: SettingsSync,
    /// Ctrl and Alt held by the key bar for the next key.
    held: crate::keybar::Held,
    /// A finger on the screen: scrolling, or selecting after a long press.
    touch: keybar::Touch,
    /// The pointer shows a link can be opened (Ctrl or Cmd over one).
    pointer_on_link: bool,
    /// The canvas must be cleared before the next paint (new layout).
    full_clear: bool,
}

fn now(window: &Window) -> u64 {
    window.performance().map_or(0.0, |p| p.now()) as u64
}

#[wasm_bindgen]
extern "C" {
    /// `static/loader.js`'s hook into the files module.
    #[wasm_bindgen(js_namespace = window, js_name = thinlineFiles)]
    fn thinline_files(event: &str, socket_url: &str);
}

/// Installs the client on the page. Called by `static/loader.js`. Not in
/// the player's build, which draws recordings only (`player.rs`).
#[cfg_attr(not(feature = "player"), wasm_bindgen)]
pub fn start() -> Result<(), JsValue> {
    let window = web_sys::window().ok_or_else(|| js_err("no window"))?;
    let document = window.document().ok_or_else(|| js_err("no document"))?;
    let dom = Dom {
        canvas: element(&document, "screen")?,
        keyboard: element(&document, "keyboard")?,
        status: element(&document, "status")?,
        mirror: element(&document, "mirror")?,
        overlay: element(&document, "overlay")?,
        user: element(&document, "user")?,
        replaced: element(&document, "replaced")?,
        replaced_text: element(&document, "replaced-text")?,
        take_back: element(&document, "take-back")?,
        search: search_bar::SearchDom::find(&document)?,
        keybar: keybar::KeybarDom::find(&document)?,
        storage: window.local_storage().ok().flatten(),
        window,
        document,
    };
    // This browser's copy of the settings, until the directory answers.
    let cached = dom
        .storage
        .as_ref()
        .and_then(|s| s.get_item(crate::settings::STORAGE_KEY).ok().flatten());
    let settings = SettingsSync::new(cached.as_deref());
    let (font_px, font_families) = (
        settings.settings().font_size,
        settings.settings().font_families(),
    );
    let ctx = draw::context_2d(&dom.canvas)?;
    let dpr = dom.window.device_pixel_ratio();
    let (metrics, face) = draw::measure(&ctx, dpr, font_px, &font_families);
    let atlas = GlyphAtlas::new(&dom.document, metrics, face)?;
    let size = fit(&dom.canvas, &metrics);
    let t = now(&dom.window);
    let seed = (js_sys::Math::random() * 2f64.powi(53)) as u64;
    let remembered = dom
        .storage
        .as_ref()
        .and_then(|s| s.get_item(SESSION_KEY).ok().flatten());
    let location = dom.window.location();
    let search = location.search().unwrap_or_default();
    let choice = SessionChoice::from_page(&search, remembered.as_deref());
    let origin = location.origin().unwrap_or_default();
    let conn = Connection::start(choice, size, t, seed, origin);
    let app = Rc::new_cyclic(|me| {
        RefCell::new(App {
            me: me.clone(),
            dom,
            painter: Painter {
                text_runs: draw::supports_letter_spacing(&ctx),
                ctx,
                atlas,
                theme: Theme::named(settings.settings().theme),
                font_px,
                font_families,
            },
            screen: Screen::new(size),
            conn,
            predictor: Predictor::new(settings.settings().prediction),
            selection: None,
            selecting: false,
            reporting: None,
            wheel_rest: 0.0,
            socket: None,
            timer: None,
            resize_timer: None,
            settings_retry: None,
            stage_tick: None,
            fetcher: Fetcher::default(),
            raf: None,
            frame_requested: false,
            focused: Rc::new(StdCell::new(false)),
            drawn_focus: false,
            blink_on: true,
            drawn_cursor_row: None,
            keyboard_at: (-1.0, -1.0),
            mirror_rows: Vec::new(),
            status_text: String::new(),
            overlay_text: String::new(),
            notice: None,
            viewer_grid: Size::default(),
            paste_question: None,
            search: None,
            settings,
            held: crate::keybar::Held::default(),
            touch: keybar::Touch::default(),
            pointer_on_link: false,
            full_clear: true,
        })
    });
    {
        let mut a = app.borrow_mut();
        a.fetcher = Fetcher::new(&a.me);
        a.install_raf();
        a.apply_settings();
        a.layout_canvas();
        a.fetch_settings();
        let _ = a.dom.keyboard.focus();
    }
    install_handlers(&app)?;
    install_test_api(&app)?;
    with_app(&app, App::after_event);
    Ok(())
}

/// The grid that fits the canvas's CSS box.
fn fit(canvas: &HtmlCanvasElement, metrics: &CellMetrics) -> Size {
    let rect = canvas.get_bounding_client_rect();
    metrics.grid_size(rect.width(), rect.height())
}

/// Runs `f` on the app unless it is already borrowed (a handler re-entered
/// from inside another, e.g. `focus()` firing a focus event synchronously).
fn with_app(app: &Shared, f: impl FnOnce(&mut App)) {
    if let Ok(mut a) = app.try_borrow_mut() {
        f(&mut a);
    }
}

/// Calls `handler` with the app on every `kind` event at `target`, then
/// `after_event`. Handlers are plain functions, and the one closure the
/// browser holds is made by `listen_event`, which is not generic: a
/// closure per handler would put a copy of wasm-bindgen's glue for each
/// into the wasm, about half a kilobyte apiece.
fn listen<E: JsCast + 'static>(
    target: &web_sys::EventTarget,
    kind: &str,
    app: &Shared,
    handler: fn(&mut App, E),
) -> Result<(), JsValue> {
    let cast = move |a: &mut App, ev: web_sys::Event| {
        if let Ok(ev) = ev.dyn_into::<E>() {
            handler(a, ev);
        }
    };
    listen_event(target, kind, app, Box::new(cast))
}

type Handler = Box<dyn Fn(&mut App, web_sys::Event)>;

fn listen_event(
    target: &web_sys::EventTarget,
    kind: &str,
    app: &Shared,
    handler: Handler,
) -> Result<(), JsValue> {
    let app = Rc::downgrade(app);
    let closure = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
        let Some(app) = app.upgrade() else { return };
        with_app(&app, |a| {
            handler(a, ev);
            a.after_event();
        });
    });
    target.add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref())?;
    // Handlers live as long as the page.
    closure.forget();
    Ok(())
}

fn install_handlers(app: &Shared) -> Result<(), JsValue> {
    let (window, document, canvas, keyboard, take_back) = {
        let a = app.borrow();
        (
            a.dom.window.clone(),
            a.dom.document.clone(),
            a.dom.canvas.clone(),
            a.dom.keyboard.clone(),
            a.dom.take_back.clone(),
        )
    };
    listen(&keyboard, "keydown", app, App::on_keydown)?;
    listen(&keyboard, "input", app, |a, ev: InputEvent| {
        if !ev.is_composing() {
            a.take_typed_text();
        }
    })?;
    listen(
        &keyboard,
        "compositionend",
        app,
        |a, _: CompositionEvent| {
            a.take_typed_text();
        },
    )?;
    listen(&keyboard, "paste", app, App::on_paste)?;
    search_bar::install(app)?;
    keybar::install(app)?;
    full_screen::install(app, &document)?;
    listen(&document, "copy", app, App::on_copy)?;
    listen(&canvas, "mousedown", app, App::on_mouse_down)?;
    listen(&window, "mousemove", app, App::on_mouse_move)?;
    listen(&window, "mouseup", app, App::on_mouse_up)?;
    listen(&canvas, "contextmenu", app, App::on_context_menu)?;
    listen(&canvas, "wheel", app, App::on_wheel)?;
    listen(&window, "resize", app, |a, _: web_sys::Event| {
        a.schedule_resize()
    })?;
    listen(&take_back, "click", app, |a, _: web_sys::Event| {
        a.take_back()
    })?;

    // Focus lives outside the RefCell: `focus()` fires these synchronously
    // from inside other handlers.
    let focused = app.borrow().focused.clone();
    for (kind, value) in [("focus", true), ("blur", false)] {
        let focused = focused.clone();
        let app = Rc::downgrade(app);
        let closure = Closure::<dyn FnMut()>::new(move || {
            focused.set(value);
            if let Some(app) = app.upgrade() {
                with_app(&app, App::request_frame);
            }
        });
        keyboard.add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref())?;
        closure.forget();
    }
    let weak = Rc::downgrade(app);
    let blink = Interval::new(BLINK_MS, move || {
        if let Some(app) = weak.upgrade() {
            with_app(&app, App::on_blink);
        }
    });
    blink.forget();
    Ok(())
}

/// `window.thinline`: the JSON test API described at the top of this file.
fn install_test_api(app: &Shared) -> Result<(), JsValue> {
    let api = js_sys::Object::new();
    let set = |name: &str, f: JsValue| js_sys::Reflect::set(&api, &JsValue::from_str(name), &f);
    let getter = |f: fn(&App) -> String| {
        let app = app.clone();
        Closure::<dyn Fn() -> JsValue>::new(move || {
            app.try_borrow()
                .map_or(JsValue::NULL, |a| JsValue::from_str(&f(&a)))
        })
        .into_js_value()
    };
    set(
        "state",
        getter(|a| api::state_json(&a.conn, &a.screen, a.now())),
    )?;
    set("text", getter(|a| a.screen.text()))?;
    let number = |f: fn(&App) -> usize| {
        let app = app.clone();
        Closure::<dyn Fn() -> JsValue>::new(move || {
            app.try_borrow()
                .map_or(JsValue::NULL, |a| JsValue::from_f64(f(&a) as f64))
        })
        .into_js_value()
    };
    set("scrollback_len", number(|a| a.screen.scrollback_len()))?;
    set("view_offset", number(|a| a.screen.view_offset()))?;
    let cell_app = app.clone();
    let cell = Closure::<dyn Fn(f64, f64) -> JsValue>::new(move |row: f64, col: f64| {
        let Ok(a) = cell_app.try_borrow() else {
            return JsValue::NULL;
        };
        let in_range = |v: f64| (0.0..65_536.0).contains(&v);
        let cell = (in_range(row) && in_range(col))
            .then(|| a.screen.cell(row as u16, col as u16))
            .flatten();
        JsValue::from_str(&api::cell_json(cell.as_ref(), &a.painter.theme))
    })
    .into_js_value();
    set("cell", cell)?;
    // Not part of the contract: a forced full repaint, timed in ms, for the
    // "full repaint of a 200x60 screen" benchmark.
    let bench_app = app.clone();
    let bench = Closure::<dyn Fn() -> JsValue>::new(move || {
        let Ok(mut a) = bench_app.try_borrow_mut() else {
            return JsValue::NULL;
        };
        let perf = a.dom.window.performance();
        let start = perf.as_ref().map_or(0.0, |p| p.now());
        a.full_clear = true;
        a.paint();
        JsValue::from_f64(perf.as_ref().map_or(0.0, |p| p.now()) - start)
    })
    .into_js_value();
    set("bench_repaint", bench)?;
    // Not part of the contract either: one case-blind search for `query`
    // over everything held, timed, for `bench page`.
    let search_app = app.clone();
    let bench_search = Closure::<dyn Fn(String) -> JsValue>::new(move |query: String| {
        let Ok(a) = search_app.try_borrow() else {
            return JsValue::NULL;
        };
        let perf = a.dom.window.performance();
        let start = perf.as_ref().map_or(0.0, |p| p.now());
        let Ok(re) = search_bar::new_regexp(&crate::search::regex_literal(&query), "gi") else {
            return JsValue::NULL;
        };
        let found = crate::search::Search::run(&a.screen, |hay| search_bar::regexp_spans(&re, hay));
        // Whole microseconds: formatting a float here would link the
        // shortest-float printer into the wasm for a test hook.
        let us = ((perf.as_ref().map_or(0.0, |p| p.now()) - start) * 1000.0) as u64;
        let (first, end) = a.screen.line_range();
        JsValue::from_str(&format!(
            "{{\"us\":{us},\"matches\":{},\"lines\":{}}}",
            found.len(),
            end - first
        ))
    })
    .into_js_value();
    // For files.js: asks the host for a place to upload to (a request in
    // `protocol::UploadRequest`'s text form); false while the session is
    // not live.
    let upload_app = app.clone();
    let upload = Closure::<dyn Fn(String) -> JsValue>::new(move |request: String| {
        let Ok(mut a) = upload_app.try_borrow_mut() else {
            return JsValue::FALSE;
        };
        let sent = a.conn.request_upload(request);
        a.after_event();
        JsValue::from_bool(sent)
    })
    .into_js_value();
    set("upload", upload)?;
    set("bench_search", bench_search)?;
    let take_app = Rc::downgrade(app);
    let take_back = Closure::<dyn Fn()>::new(move || {
        if let Some(app) = take_app.upgrade() {
            with_app(&app, |a| {
                a.take_back();
                a.after_event();
            });
        }
    })
    .into_js_value();
    set("take_back", take_back)?;
    set("settings", getter(|a| a.settings.settings().to_json()))?;
    // For settings.js: one change from the panel; "" when taken.
    let set_app = app.clone();
    let set_setting =
        Closure::<dyn Fn(String, JsValue) -> JsValue>::new(move |name: String, value: JsValue| {
            let Ok(mut a) = set_app.try_borrow_mut() else {
                return JsValue::from_str("busy");
            };
            let taken = a.set_setting(&name, &value);
            a.after_event();
            JsValue::from_str(if taken { "" } else { "refused" })
        })
        .into_js_value();
    set("set_setting", set_setting)?;
    // Not part of the contract: one cell's size on the canvas, in device
    // pixels, for tests that read the canvas's pixels.
    set(
        "cell_size",
        getter(|a| {
            let m = a.painter.metrics();
            format!("[{},{}]", m.width, m.height)
        }),
    )?;
    let window = app.borrow().dom.window.clone();
    js_sys::Reflect::set(&window, &JsValue::from_str("thinline"), &api)?;
    Ok(())
}

impl App {
    fn now(&self) -> u64 {
        now(&self.dom.window)
    }

    /// After every event: carry out what the connection asked for, re-arm
    /// its timer, and schedule a paint.
    fn after_event(&mut self) {
        while let Some(action) = self.conn.poll_action() {
            self.perform(action);
        }
        // The predictor judges what a new frame vouches for and shows
        // what it guesses, after whatever the event was.
        self.predictor.set_rtt(self.conn.srtt_ms());
        self.predictor
            .frame(&self.screen, self.conn.last_input_seq(), self.now());
        self.show_prediction();
        if self.conn.role().is_viewer() && self.screen.size() != self.viewer_grid {
            // The owner's size changed: fit it again.
            self.layout_canvas();
        }
        if let Some(title) = self.screen.take_title_change() {
            self.dom
                .document
                .set_title(if title.is_empty() { "Thinline" } else { &title });
        }
        if self.screen.take_bell() {
            self.ring_bell();
        }
        if let Some(text) = self.screen.take_clipboard() {
            self.program_copied(&text);
        }
        if let Some(notification) = self.screen.take_notification() {
            self.program_notified(notification);
        }
        self.arm_timer();
        self.request_frame();
    }

    /// Shows the predictor's guesses over the host's screen.
    fn show_prediction(&mut self) {
        let (cells, cursor) = self.predictor.show();
        self.screen.set_prediction(cells, cursor);
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Open(url) => self.open_socket(url),
            Action::Send(bytes) => {
                if let Some(s) = &self.socket
                    && s.ws.ready_state() == WebSocket::OPEN
                {
                    // A failed send shows up as a close event.
                    let _ = s.ws.send_with_u8_array(&bytes);
                }
            }
            Action::Close { code, reason } => {
                if let Some(s) = self.socket.take() {
                    s.detach();
                    let _ = s.ws.close_with_code_and_reason(code, reason);
                }
            }
            Action::StoreSession(session) => {
                let id = session.map(|id| id.to_string());
                if let Some(storage) = &self.dom.storage {
                    let _ = match &id {
                        Some(id) => storage.set_item(SESSION_KEY, id),
                        None => storage.remove_item(SESSION_KEY),
                    };
                }
                // The address names the session (never the ticket): a reload
                // or a bookmark comes back to it.
                let url = id.map_or_else(|| "/".to_owned(), |id| format!("/?session={id}"));
                if let Ok(history) = self.dom.window.history() {
                    let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&url));
                }
            }
            Action::SignIn(url) => {
                let _ = self.dom.window.location().set_href(&url);
            }
            Action::InputLost { notice, .. } => self.notice(notice),
            Action::Fetch(request) => self.start_fetch(request),
            Action::CancelFetch(id) => self.fetcher.cancel(id),
        }
    }

    /// Opens a WebSocket to `url`, a host's `/ws`.
    fn open_socket(&mut self, url: String) {
        if let Some(old) = self.socket.take() {
            old.detach();
            let _ = old.ws.close();
        }
        let ws = match WebSocket::new(&url) {
            Ok(ws) => ws,
            Err(_) => {
                // Treat as a failed connection: the machine backs off.
                let t = self.now();
                self.conn.handle_close(1006, t);
                return;
            }
        };
        ws.set_binary_type(BinaryType::Arraybuffer);
        let me = self.me.clone();
        let on_open = Closure::<dyn FnMut()>::new(move || {
            if let Some(app) = me.upgrade() {
                with_app(&app, |a| {
                    let t = a.now();
                    a.conn.handle_open(t);
                    a.after_event();
                });
            }
        });
        let me = self.me.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Ok(buf) = ev.data().dyn_into::<js_sys::ArrayBuffer>() else {
                return;
            };
            let bytes = js_sys::Uint8Array::new(&buf).to_vec();
            if let Some(app) = me.upgrade() {
                with_app(&app, |a| {
                    a.on_message(&bytes);
                    a.after_event();
                });
            }
        });
        let me = self.me.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |ev: CloseEvent| {
            if let Some(app) = me.upgrade() {
                with_app(&app, |a| {
                    a.socket = None;
                    let t = a.now();
                    a.conn.handle_close(ev.code(), t);
                    a.after_event();
                });
            }
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        self.socket = Some(Socket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        });
    }

    fn on_message(&mut self, bytes: &[u8]) {
        let t = self.now();
        let Some(delivery) = self.conn.handle_message(bytes, t) else {
            return;
        };
        if let Delivery::File(event) = &delivery {
            self.to_files_module(event);
            return;
        }
        if let Delivery::Welcome {
            same_history: false,
            ..
        } = &delivery
        {
            // The lines it referred to are numbered afresh.
            self.selection = None;
        }
        if let Some(notice) = self.conn.show(delivery, &mut self.screen) {
            self.notice(notice);
        }
    }

    /// Hands the host's word about files to `files.js` through the
    /// loader's `thinlineFiles`, which loads that module the first time,
    /// with the socket's URL, which names the host the bytes go to.
    fn to_files_module(&self, event: &str) {
        let url = self.socket.as_ref().map(|s| s.ws.url()).unwrap_or_default();
        thinline_files(event, &url);
    }

    /// Arms the one timer for the connection's deadline and the
    /// predictor's (when a late echo would begin).
    fn arm_timer(&mut self) {
        self.timer = None;
        let at = match (self.conn.poll_timeout(), self.predictor.poll_timeout()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(at) => at,
                None => return,
            },
        };
        let delay = at.saturating_sub(self.now()).min(60_000) as u32;
        let me = self.me.clone();
        self.timer = Some(Timeout::new(delay, move || {
            if let Some(app) = me.upgrade() {
                with_app(&app, |a| {
                    let t = a.now();
                    a.conn.handle_timeout(t);
                    a.predictor.handle_timeout(t);
                    a.after_event();
                });
            }
        }));
    }
}
