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
//! - The host serves `static/` at `/`. `index.html` loads `./loader.js`, which
//!   does `import init, { start } from './pkg/web_terminal.js'; await init();
//!   start();` (`wasm-bindgen --target web --out-name web_terminal`). No
//!   inline scripts or style attributes: the CSP is `script-src 'self'
//!   'wasm-unsafe-eval'; style-src 'self'`.
//! - WebSocket: same origin, path `/ws`, `wss:` when the page is `https:`.
//! - Token: `<form id="login">` with `<input id="token" type="password">` and
//!   `<button id="connect" type="submit">`, shown when no token is stored or
//!   after close code 4001 (advice in `#login-error`). The token is kept in
//!   localStorage `thinline.token`, never in a URL. The session id (hex) is
//!   kept in localStorage `thinline.session` and sent in `Hello.session`, so
//!   a reload reattaches; it is removed after `SessionEnded` (4004).
//! - DOM ids: `#screen` (canvas), `#keyboard` (hidden textarea holding the
//!   focus), `#status` (state, host, RTT), `#mirror` (role=log; one child per
//!   visible row, textContent = row text without trailing blanks),
//!   `#overlay` (disconnected / error advice).
//! - `window.thinline`, installed by `start()`, with functions returning
//!   JSON strings: `state()` -> `{"connection":"connecting|live|backoff|closed",
//!   "host":..|null,"session":"hex"|null,"epoch":n|null,"rtt_ms":n|null,
//!   "cols":n,"rows":n,"error":..|null,"frames":n}`; `cell(row, col)` ->
//!   `{"text","fg":"#rrggbb","bg","fg_spec":"default|indexed:N|rgb:R,G,B",
//!   "bg_spec","bold","dim","italic","underline","inverse","strike","wide"}`
//!   (colours through the palette, before inverse; `null` off the grid);
//!   `text()` -> visible rows joined by "\n" (a plain string, not JSON);
//!   `scrollback_len()` and `view_offset()` -> numbers.
//! - Keys: Ctrl+Shift+C / Ctrl+Shift+V (Cmd+C / Cmd+V) copy and paste;
//!   Shift+PageUp / Shift+PageDown scroll the scrollback; Shift+drag selects
//!   even when the program reports the mouse; Enter after a "closed" notice
//!   reconnects (a new session after the program exited).

mod draw;

use std::cell::{Cell as StdCell, RefCell};
use std::rc::{Rc, Weak};

use gloo_timers::callback::{Interval, Timeout};
use protocol::{SessionId, Size};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{
    BinaryType, ClipboardEvent, CloseEvent, CompositionEvent, Document, Element, HtmlCanvasElement,
    HtmlElement, HtmlFormElement, HtmlInputElement, HtmlTextAreaElement, InputEvent, KeyboardEvent,
    MessageEvent, MouseEvent, Storage, WebSocket, WheelEvent, Window,
};

use self::draw::{CursorPaint, GlyphAtlas, Painter};
use crate::api;
use crate::connection::{Action, ClosedBecause, Connection, Delivery, Phase};
use crate::keys::{self, KeyAction, KeyPress, MouseButton, MouseKind, MouseReport, WheelAction};
use crate::render::{CellMetrics, Theme};
use crate::screen::Screen;
use crate::selection::{Granularity, Point, Selection};

const TOKEN_KEY: &str = "thinline.token";
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
    login: HtmlFormElement,
    token: HtmlInputElement,
    login_error: HtmlElement,
    storage: Option<Storage>,
}

struct App {
    me: Weak<RefCell<App>>,
    dom: Dom,
    painter: Painter,
    screen: Screen,
    conn: Connection,
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
    raf: Option<Closure<dyn FnMut()>>,
    frame_requested: bool,
    focused: Rc<StdCell<bool>>,
    drawn_focus: bool,
    blink_on: bool,
    drawn_cursor_row: Option<u16>,
    mirror_rows: Vec<(Element, String)>,
    status_text: String,
    overlay_text: String,
    notice: Option<(String, f64)>,
    /// The canvas must be cleared before the next paint (new layout).
    full_clear: bool,
}

fn now(window: &Window) -> u64 {
    window.performance().map_or(0.0, |p| p.now()) as u64
}

/// Installs the client on the page. Called by `static/loader.js`.
#[wasm_bindgen]
pub fn start() -> Result<(), JsValue> {
    let window = web_sys::window().ok_or_else(|| js_err("no window"))?;
    let document = window.document().ok_or_else(|| js_err("no document"))?;
    let dom = Dom {
        canvas: element(&document, "screen")?,
        keyboard: element(&document, "keyboard")?,
        status: element(&document, "status")?,
        mirror: element(&document, "mirror")?,
        overlay: element(&document, "overlay")?,
        login: element(&document, "login")?,
        token: element(&document, "token")?,
        login_error: element(&document, "login-error")?,
        storage: window.local_storage().ok().flatten(),
        window,
        document,
    };
    let ctx = draw::context_2d(&dom.canvas)?;
    let dpr = dom.window.device_pixel_ratio();
    let metrics = draw::measure(&ctx, dpr);
    let atlas = GlyphAtlas::new(&dom.document, metrics)?;
    let size = fit(&dom.canvas, &metrics);
    let t = now(&dom.window);
    let seed = (js_sys::Math::random() * 2f64.powi(53)) as u64;
    let stored = |key: &str| {
        dom.storage
            .as_ref()
            .and_then(|s| s.get_item(key).ok().flatten())
    };
    let session = stored(SESSION_KEY).and_then(|s| s.parse::<SessionId>().ok());
    let conn = match stored(TOKEN_KEY).filter(|t| !t.is_empty()) {
        Some(token) => Connection::new(token, session, size, t, seed),
        None => Connection::waiting_for_token(size, t, seed),
    };
    let waiting_for_token = matches!(conn.phase(), Phase::Closed(ClosedBecause::Unauthorized));
    let app = Rc::new_cyclic(|me| {
        RefCell::new(App {
            me: me.clone(),
            dom,
            painter: Painter {
                ctx,
                atlas,
                theme: Theme::default(),
            },
            screen: Screen::new(size),
            conn,
            selection: None,
            selecting: false,
            reporting: None,
            wheel_rest: 0.0,
            socket: None,
            timer: None,
            resize_timer: None,
            raf: None,
            frame_requested: false,
            focused: Rc::new(StdCell::new(false)),
            drawn_focus: false,
            blink_on: true,
            drawn_cursor_row: None,
            mirror_rows: Vec::new(),
            status_text: String::new(),
            overlay_text: String::new(),
            notice: None,
            full_clear: true,
        })
    });
    {
        let mut a = app.borrow_mut();
        a.install_raf();
        a.layout_canvas();
        if waiting_for_token {
            a.show_login(None);
        } else {
            a.hide_login();
            let _ = a.dom.keyboard.focus();
        }
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

fn listen<E: JsCast + 'static>(
    target: &web_sys::EventTarget,
    kind: &str,
    app: &Shared,
    handler: impl Fn(&mut App, E) + 'static,
) -> Result<(), JsValue> {
    let app = Rc::downgrade(app);
    let closure = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
        let Some(app) = app.upgrade() else { return };
        let Ok(ev) = ev.dyn_into::<E>() else { return };
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
    let (window, document, canvas, keyboard, login) = {
        let a = app.borrow();
        (
            a.dom.window.clone(),
            a.dom.document.clone(),
            a.dom.canvas.clone(),
            a.dom.keyboard.clone(),
            a.dom.login.clone(),
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
    listen(&document, "copy", app, App::on_copy)?;
    listen(&canvas, "mousedown", app, App::on_mouse_down)?;
    listen(&window, "mousemove", app, App::on_mouse_move)?;
    listen(&window, "mouseup", app, App::on_mouse_up)?;
    listen(&canvas, "contextmenu", app, |a, ev: MouseEvent| {
        if a.screen.modes().mouse_reporting() && !ev.shift_key() {
            ev.prevent_default();
        }
    })?;
    listen(&canvas, "wheel", app, App::on_wheel)?;
    listen(&window, "resize", app, |a, _: web_sys::Event| {
        a.schedule_resize()
    })?;
    listen(&login, "submit", app, App::on_login)?;

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
    set("state", getter(|a| api::state_json(&a.conn, &a.screen)))?;
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
        if let Some(title) = self.screen.take_title_change() {
            self.dom
                .document
                .set_title(if title.is_empty() { "Thinline" } else { &title });
        }
        if self.screen.take_bell() {
            self.flash_bell();
        }
        self.arm_timer();
        self.request_frame();
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Open => self.open_socket(),
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
                if let Some(storage) = &self.dom.storage {
                    let _ = match session {
                        Some(id) => storage.set_item(SESSION_KEY, &id.to_string()),
                        None => storage.remove_item(SESSION_KEY),
                    };
                }
            }
            Action::AskToken(advice) => self.show_login(Some(advice)),
            Action::InputLost { bytes } => self.notice(format!(
                "{bytes} bytes of typed input were not delivered: the session was restarted"
            )),
        }
    }

    fn open_socket(&mut self) {
        if let Some(old) = self.socket.take() {
            old.detach();
            let _ = old.ws.close();
        }
        let location = self.dom.window.location();
        let scheme = match location.protocol().as_deref() {
            Ok("https:") => "wss:",
            _ => "ws:",
        };
        let host = location.host().unwrap_or_default();
        let url = format!("{scheme}//{host}/ws");
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
        match self.conn.handle_message(bytes, t) {
            Some(Delivery::Welcome {
                welcome,
                same_session,
            }) => {
                self.screen.begin_attach(same_session);
                if welcome.created && !same_session {
                    self.selection = None;
                }
            }
            Some(Delivery::History(lines)) => self.screen.apply_history(lines),
            Some(Delivery::Frame(frame)) => self.screen.apply_frame(frame),
            Some(Delivery::Exited(status)) => self.notice(match status {
                Some(code) => format!("the program exited with status {code}"),
                None => "the program exited".to_owned(),
            }),
            None => {}
        }
    }

    fn arm_timer(&mut self) {
        self.timer = None;
        let Some(at) = self.conn.poll_timeout() else {
            return;
        };
        let delay = at.saturating_sub(self.now()).min(60_000) as u32;
        let me = self.me.clone();
        self.timer = Some(Timeout::new(delay, move || {
            if let Some(app) = me.upgrade() {
                with_app(&app, |a| {
                    let t = a.now();
                    a.conn.handle_timeout(t);
                    a.after_event();
                });
            }
        }));
    }

    // ---- input ----

    fn send_input(&mut self, bytes: &[u8]) {
        if self.screen.scroll_to_bottom() {
            self.request_frame();
        }
        self.blink_on = true;
        self.screen.mark_cursor_dirty();
        if !self.conn.send_input(bytes) && !matches!(self.conn.phase(), Phase::Closed(_)) {
            self.notice("too much input is waiting for the host; typing was refused".to_owned());
        }
    }

    fn on_keydown(&mut self, ev: KeyboardEvent) {
        let key = ev.key();
        if ev.is_composing() || matches!(key.as_str(), "Process" | "Dead" | "Unidentified") {
            return;
        }
        if key == "Enter"
            && matches!(
                self.conn.phase(),
                Phase::Closed(ClosedBecause::SessionEnded | ClosedBecause::Refused(_))
            )
        {
            ev.prevent_default();
            let t = self.now();
            self.conn.restart(t);
            return;
        }
        if ev.get_modifier_state("AltGraph") {
            return; // AltGr composes text: the input event brings it
        }
        let code = ev.code();
        let press = KeyPress {
            key: &key,
            code: &code,
            ctrl: ev.ctrl_key(),
            alt: ev.alt_key(),
            shift: ev.shift_key(),
            meta: ev.meta_key(),
        };
        if press.is_text() {
            return; // delivered by the `input` event, so IME and dead keys work
        }
        match keys::encode_key(&press, self.screen.modes()) {
            KeyAction::Send(bytes) => {
                ev.prevent_default();
                self.send_input(&bytes);
            }
            KeyAction::Copy => {
                ev.prevent_default();
                self.copy_selection();
            }
            KeyAction::Paste => {} // the browser fires `paste`
            KeyAction::ScrollPages(pages) => {
                ev.prevent_default();
                let page = self.screen.size().rows.saturating_sub(1).max(1) as isize;
                self.screen.scroll_view(isize::from(pages) * page);
            }
            KeyAction::Ignore => {}
        }
    }

    /// Text the textarea received from typing or an IME.
    fn take_typed_text(&mut self) {
        let text = self.dom.keyboard.value();
        self.dom.keyboard.set_value("");
        if !text.is_empty() {
            self.send_input(&keys::encode_text(&text));
        }
    }

    fn on_paste(&mut self, ev: ClipboardEvent) {
        ev.prevent_default();
        let text = ev
            .clipboard_data()
            .and_then(|d| d.get_data("text/plain").ok())
            .unwrap_or_default();
        if !text.is_empty() {
            let bytes = keys::encode_paste(&text, self.screen.modes());
            self.send_input(&bytes);
        }
    }

    fn selected_text(&self) -> Option<String> {
        let text = self.selection.as_ref()?.text(&self.screen);
        (!text.is_empty()).then_some(text)
    }

    fn on_copy(&mut self, ev: ClipboardEvent) {
        if let (Some(text), Some(data)) = (self.selected_text(), ev.clipboard_data()) {
            let _ = data.set_data("text/plain", &text);
            ev.prevent_default();
        }
    }

    fn copy_selection(&mut self) {
        if let Some(text) = self.selected_text() {
            let clipboard = self.dom.window.navigator().clipboard();
            // The promise rejects outside secure contexts; nothing to do then.
            let _ = clipboard.write_text(&text);
        }
    }

    // ---- mouse ----

    fn cell_at(&self, ev: &MouseEvent) -> (u16, u16) {
        let rect = self.dom.canvas.get_bounding_client_rect();
        let x = f64::from(ev.client_x()) - rect.left();
        let y = f64::from(ev.client_y()) - rect.top();
        self.painter.metrics().cell_at(x, y, self.screen.size())
    }

    fn report(&mut self, kind: MouseKind, button: MouseButton, cell: (u16, u16), ev: &MouseEvent) {
        let report = MouseReport {
            kind,
            button,
            row: cell.0,
            col: cell.1,
            shift: ev.shift_key(),
            alt: ev.alt_key(),
            ctrl: ev.ctrl_key(),
        };
        if let Some(bytes) = keys::encode_mouse(&report, self.screen.modes()) {
            // Not `send_input`: a report must not move the scrollback view.
            self.conn.send_input(&bytes);
        }
    }

    fn on_mouse_down(&mut self, ev: MouseEvent) {
        ev.prevent_default();
        // Keep the keyboard focus on the textarea; focus handlers do not
        // borrow the app, so this is safe inside a handler.
        let _ = self.dom.keyboard.focus();
        let cell = self.cell_at(&ev);
        if self.screen.modes().mouse_reporting() && !ev.shift_key() {
            let button = match ev.button() {
                0 => MouseButton::Left,
                1 => MouseButton::Middle,
                2 => MouseButton::Right,
                _ => return,
            };
            self.reporting = Some((button, cell));
            self.report(MouseKind::Press, button, cell, &ev);
            return;
        }
        if ev.button() != 0 {
            return;
        }
        let point = Point {
            line: self.screen.line_number_of_view_row(cell.0),
            col: cell.1,
        };
        let granularity = if ev.detail() >= 2 {
            Granularity::Word
        } else {
            Granularity::Cell
        };
        self.selection = Some(Selection::new(point, granularity));
        self.selecting = true;
        self.screen.mark_all_dirty();
    }

    fn on_mouse_move(&mut self, ev: MouseEvent) {
        let cell = self.cell_at(&ev);
        if self.selecting {
            let point = Point {
                line: self.screen.line_number_of_view_row(cell.0),
                col: cell.1,
            };
            if let Some(sel) = &mut self.selection {
                sel.extend(point);
                self.screen.mark_all_dirty();
            }
            return;
        }
        let modes = self.screen.modes();
        if !modes.mouse_reporting() || !self.is_over_canvas(&ev) {
            return;
        }
        match self.reporting {
            Some((button, last)) if last != cell => {
                self.reporting = Some((button, cell));
                self.report(MouseKind::Motion, button, cell, &ev);
            }
            None if modes.has(protocol::Modes::MOUSE_MOTION) => {
                self.report(MouseKind::Motion, MouseButton::None, cell, &ev);
            }
            _ => {}
        }
    }

    fn is_over_canvas(&self, ev: &MouseEvent) -> bool {
        let rect = self.dom.canvas.get_bounding_client_rect();
        let (x, y) = (f64::from(ev.client_x()), f64::from(ev.client_y()));
        x >= rect.left() && x < rect.right() && y >= rect.top() && y < rect.bottom()
    }

    fn on_mouse_up(&mut self, ev: MouseEvent) {
        if self.selecting {
            self.selecting = false;
            if self.selection.is_some_and(|s| s.is_empty()) {
                self.selection = None;
                self.screen.mark_all_dirty();
            }
            return;
        }
        if let Some((button, _)) = self.reporting.take() {
            let cell = self.cell_at(&ev);
            self.report(MouseKind::Release, button, cell, &ev);
        }
    }

    fn on_wheel(&mut self, ev: WheelEvent) {
        ev.prevent_default();
        let m = self.painter.metrics();
        let line_css = f64::from(m.height) / m.dpr;
        let lines = match ev.delta_mode() {
            WheelEvent::DOM_DELTA_LINE => ev.delta_y(),
            WheelEvent::DOM_DELTA_PAGE => ev.delta_y() * f64::from(self.screen.size().rows),
            _ => ev.delta_y() / line_css,
        };
        // Down the page is positive in DOM and negative (newer) for us.
        self.wheel_rest -= lines;
        let whole = self.wheel_rest.trunc();
        if whole == 0.0 {
            return;
        }
        self.wheel_rest -= whole;
        let cell = self.cell_at(&ev);
        let modes = self.screen.modes();
        match keys::wheel_action(whole as i32, cell.0, cell.1, ev.shift_key(), modes) {
            WheelAction::Send(bytes) => {
                self.conn.send_input(&bytes);
            }
            WheelAction::ScrollView(n) => {
                self.screen.scroll_view(n);
            }
        }
    }

    // ---- login, status, overlay ----

    fn on_login(&mut self, ev: web_sys::Event) {
        ev.prevent_default();
        let token = self.dom.token.value().trim().to_owned();
        if token.is_empty() {
            self.show_login(Some("enter the token the host printed"));
            return;
        }
        if let Some(storage) = &self.dom.storage {
            let _ = storage.set_item(TOKEN_KEY, &token);
        }
        self.dom.token.set_value("");
        self.hide_login();
        let t = self.now();
        self.conn.set_token(token, t);
        let _ = self.dom.keyboard.focus();
    }

    fn show_login(&mut self, advice: Option<&str>) {
        if let Some(storage) = &self.dom.storage {
            let _ = storage.remove_item(TOKEN_KEY);
        }
        self.dom.login_error.set_text_content(advice);
        self.dom.login.set_hidden(false);
        let _ = self.dom.token.focus();
    }

    fn hide_login(&mut self) {
        self.dom.login.set_hidden(true);
    }

    fn notice(&mut self, text: String) {
        let until = self.now() as f64 + NOTICE_MS;
        self.notice = Some((text, until));
        let me = self.me.clone();
        Timeout::new(NOTICE_MS as u32 + 50, move || {
            if let Some(app) = me.upgrade() {
                with_app(&app, App::request_frame);
            }
        })
        .forget();
    }

    fn flash_bell(&mut self) {
        let list = self.dom.canvas.class_list();
        let _ = list.remove_1("bell");
        // Reading a layout property restarts the CSS animation.
        let _ = self.dom.canvas.offset_width();
        let _ = list.add_1("bell");
    }

    fn update_status(&mut self) {
        let conn = &self.conn;
        let mut text = match conn.phase() {
            Phase::Live => "live".to_owned(),
            Phase::Connecting | Phase::Handshaking => "connecting".to_owned(),
            Phase::Backoff => {
                let wait = conn.retry_at().unwrap_or(0).saturating_sub(self.now());
                format!("reconnecting in {:.1} s", wait as f64 / 1000.0)
            }
            Phase::Closed(_) => "closed".to_owned(),
        };
        if let Some(host) = conn.host() {
            text.push_str(" · ");
            text.push_str(host);
        }
        if let (Phase::Live, Some(rtt)) = (conn.phase(), conn.rtt_ms()) {
            text.push_str(&format!(" · {rtt} ms"));
        }
        if text != self.status_text {
            self.dom.status.set_text_content(Some(&text));
            self.dom
                .status
                .set_class_name(&format!("state-{}", conn.phase_name()));
            self.status_text = text;
        }
        let now = self.now() as f64;
        if self.notice.as_ref().is_some_and(|(_, until)| *until <= now) {
            self.notice = None;
        }
        let overlay = match (conn.phase(), &self.notice) {
            (Phase::Live, Some((n, _))) => n.clone(),
            (Phase::Live, None) => String::new(),
            (Phase::Closed(ClosedBecause::Unauthorized), _) => String::new(),
            (Phase::Closed(why), _) => {
                let advice = conn.error().unwrap_or("the connection was closed");
                match why {
                    ClosedBecause::SessionEnded => advice.to_owned(),
                    _ => format!("{advice} (press Enter to reconnect)"),
                }
            }
            (_, _) if self.screen.frames() == 0 && conn.error().is_none() => String::new(),
            _ => format!(
                "disconnected: {}",
                conn.error().unwrap_or("connecting to the host")
            ),
        };
        if overlay != self.overlay_text {
            self.dom.overlay.set_text_content(Some(&overlay));
            self.dom.overlay.set_hidden(overlay.is_empty());
            self.overlay_text = overlay;
        }
    }

    // ---- layout and painting ----

    fn schedule_resize(&mut self) {
        let me = self.me.clone();
        self.resize_timer = Some(Timeout::new(RESIZE_DEBOUNCE_MS, move || {
            if let Some(app) = me.upgrade() {
                with_app(&app, |a| {
                    a.resize_timer = None;
                    a.layout_canvas();
                    a.after_event();
                });
            }
        }));
    }

    /// Sizes the canvas backing store to its CSS box times the device
    /// pixel ratio, re-measures the font and asks the host for the grid
    /// that fits.
    fn layout_canvas(&mut self) {
        let dpr = self.dom.window.device_pixel_ratio();
        let rect = self.dom.canvas.get_bounding_client_rect();
        let width = (rect.width() * dpr).round().max(1.0) as u32;
        let height = (rect.height() * dpr).round().max(1.0) as u32;
        if self.dom.canvas.width() != width || self.dom.canvas.height() != height {
            self.dom.canvas.set_width(width);
            self.dom.canvas.set_height(height);
        }
        let metrics = draw::measure(&self.painter.ctx, dpr);
        if metrics != self.painter.metrics() {
            self.painter.atlas.reset(metrics);
        }
        self.conn
            .resize(metrics.grid_size(rect.width(), rect.height()));
        self.full_clear = true;
        self.screen.mark_all_dirty();
    }

    fn install_raf(&mut self) {
        let me = self.me.clone();
        self.raf = Some(Closure::<dyn FnMut()>::new(move || {
            if let Some(app) = me.upgrade() {
                with_app(&app, |a| {
                    a.frame_requested = false;
                    a.paint();
                });
            }
        }));
    }

    fn request_frame(&mut self) {
        if self.frame_requested {
            return;
        }
        if let Some(raf) = &self.raf
            && self
                .dom
                .window
                .request_animation_frame(raf.as_ref().unchecked_ref())
                .is_ok()
        {
            self.frame_requested = true;
        }
    }

    fn on_blink(&mut self) {
        if (self.dom.window.device_pixel_ratio() - self.painter.metrics().dpr).abs() > f64::EPSILON
        {
            // Zoom or a move to another screen: re-layout for crisp text.
            self.layout_canvas();
        }
        self.update_status();
        if self.screen.cursor().blink && self.screen.cursor().visible {
            self.blink_on = !self.blink_on;
            self.screen.mark_cursor_dirty();
            self.request_frame();
        } else if !self.blink_on {
            self.blink_on = true;
            self.screen.mark_cursor_dirty();
            self.request_frame();
        }
    }

    fn paint(&mut self) {
        let focused = self.focused.get();
        if focused != self.drawn_focus {
            self.drawn_focus = focused;
            self.screen.mark_cursor_dirty();
            if let Some(bytes) = keys::encode_focus(focused, self.screen.modes()) {
                self.conn.send_input(&bytes);
            }
        }
        let cursor_row = self.screen.cursor_view_row();
        if cursor_row != self.drawn_cursor_row {
            if let Some(old) = self.drawn_cursor_row {
                self.screen.mark_row_dirty(old);
            }
            self.screen.mark_cursor_dirty();
        }
        self.drawn_cursor_row = cursor_row;
        if self.full_clear {
            self.full_clear = false;
            let (w, h) = (
                f64::from(self.dom.canvas.width()),
                f64::from(self.dom.canvas.height()),
            );
            let ctx = &self.painter.ctx;
            ctx.set_fill_style_str(&self.painter.theme.background.hex());
            ctx.fill_rect(0.0, 0.0, w, h);
            self.screen.mark_all_dirty();
        }
        let rows = self.screen.take_dirty_rows();
        let canvas_width = f64::from(self.dom.canvas.width());
        let cursor = self.screen.cursor();
        let show_cursor = cursor.visible && (self.blink_on || !cursor.blink || !focused);
        let selection = self.selection.map(|s| (s, s.range(&self.screen)));
        for &r in &rows {
            let Some(row) = self.screen.visible_row(r) else {
                continue;
            };
            let line = self.screen.line_number_of_view_row(r);
            let cursor_paint = (show_cursor && cursor_row == Some(r)).then_some(CursorPaint {
                col: cursor.col,
                shape: cursor.shape,
                hollow: !focused,
            });
            let selected =
                |col: u16| selection.is_some_and(|(s, range)| s.contains(range, line, col));
            self.painter
                .draw_row(&row, r, canvas_width, cursor_paint, &selected);
        }
        self.update_mirror(&rows);
        self.update_status();
        // Focus reports queued above go out now.
        while let Some(action) = self.conn.poll_action() {
            self.perform(action);
        }
    }

    /// Keeps `#mirror` at one element per visible row holding its text.
    fn update_mirror(&mut self, rows: &[u16]) {
        let want = usize::from(self.screen.size().rows);
        while self.mirror_rows.len() > want {
            if let Some((el, _)) = self.mirror_rows.pop() {
                el.remove();
            }
        }
        while self.mirror_rows.len() < want {
            let Ok(el) = self.dom.document.create_element("div") else {
                return;
            };
            let _ = self.dom.mirror.append_child(&el);
            self.mirror_rows.push((el, String::new()));
        }
        for &r in rows {
            let text = self.screen.row_text(r);
            if let Some((el, old)) = self.mirror_rows.get_mut(usize::from(r))
                && *old != text
            {
                el.set_text_content(Some(&text));
                *old = text;
            }
        }
    }
}
