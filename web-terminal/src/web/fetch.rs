//! HTTP requests to the directory with the browser's `fetch`, carrying
//! the sign-in cookie.
//!
//! The connection machine decides what to ask and when to give up
//! (`Action::Fetch`, `Action::CancelFetch`); this only makes the request and
//! reports its outcome by id. Promise callbacks are three functions made
//! once for the page's lifetime and bound to each request's id (JS
//! `Function.prototype.bind`), so no closure is leaked per request and no
//! async runtime crate is needed.

use std::rc::Weak;

use js_sys::Function;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{AbortController, Headers, RequestCredentials, RequestInit, Response};

use super::{App, settings_panel, with_app};
use crate::directory::{HttpOutcome, HttpRequest};

#[wasm_bindgen]
extern "C" {
    /// A promise seen through `then(resolve, reject)` with plain functions
    /// (js-sys's own `then2` wants closures).
    type Thenable;
    #[wasm_bindgen(method)]
    fn then(this: &Thenable, resolve: &JsValue, reject: &JsValue);
}

pub(super) fn then_call(
    promise: &js_sys::Promise,
    resolve: impl Into<JsValue>,
    reject: impl Into<JsValue>,
) {
    promise
        .unchecked_ref::<Thenable>()
        .then(&resolve.into(), &reject.into());
}

#[derive(Default)]
pub(super) struct Fetcher {
    /// `(id, response)`: the headers are in.
    on_response: Option<Function>,
    /// `(id, status, text)`: the body is in.
    on_text: Option<Function>,
    /// `(id, error)`: network error, CORS refusal or abort.
    on_failure: Option<Function>,
    /// Requests in flight, to abort when the machine gives up on them.
    in_flight: Vec<(u64, AbortController)>,
}

fn id_of(v: &JsValue) -> Option<u64> {
    v.as_f64().map(|f| f as u64)
}

impl Fetcher {
    pub(super) fn new(me: &Weak<std::cell::RefCell<App>>) -> Self {
        let app = me.clone();
        let on_response = Closure::<dyn FnMut(JsValue, JsValue)>::new(move |id, resp| {
            if let (Some(app), Some(id)) = (app.upgrade(), id_of(&id)) {
                with_app(&app, |a| {
                    a.on_fetch_response(id, resp);
                    a.after_event();
                });
            }
        });
        let app = me.clone();
        let on_text = Closure::<dyn FnMut(JsValue, JsValue, JsValue)>::new(
            move |id, status: JsValue, text: JsValue| {
                let (Some(app), Some(id)) = (app.upgrade(), id_of(&id)) else {
                    return;
                };
                let status = status.as_f64().unwrap_or(0.0) as u16;
                let body = text.as_string().unwrap_or_default();
                with_app(&app, |a| {
                    a.finish_fetch(id, HttpOutcome::answered(status, body));
                    a.after_event();
                });
            },
        );
        let app = me.clone();
        let on_failure = Closure::<dyn FnMut(JsValue, JsValue)>::new(move |id, _err| {
            if let (Some(app), Some(id)) = (app.upgrade(), id_of(&id)) {
                with_app(&app, |a| {
                    a.finish_fetch(id, HttpOutcome::Failed);
                    a.after_event();
                });
            }
        });
        // Made once, they live as long as the page.
        Fetcher {
            on_response: Some(on_response.into_js_value().unchecked_into()),
            on_text: Some(on_text.into_js_value().unchecked_into()),
            on_failure: Some(on_failure.into_js_value().unchecked_into()),
            in_flight: Vec::new(),
        }
    }

    pub(super) fn cancel(&mut self, id: u64) {
        if let Some(pos) = self.in_flight.iter().position(|(i, _)| *i == id) {
            let (_, controller) = self.in_flight.swap_remove(pos);
            // The promise then rejects, and the machine ignores the id.
            controller.abort();
        }
    }

    fn forget(&mut self, id: u64) {
        self.in_flight.retain(|(i, _)| *i != id);
    }
}

impl App {
    pub(super) fn start_fetch(&mut self, request: HttpRequest) {
        let id = request.id;
        let (Some(on_response), Some(on_failure)) =
            (&self.fetcher.on_response, &self.fetcher.on_failure)
        else {
            self.finish_fetch(id, HttpOutcome::Failed);
            return;
        };
        let init = RequestInit::new();
        init.set_method(request.method);
        // The sign-in cookie goes along: to a peer replica only with
        // "include", which that replica must allow with CORS credentials.
        init.set_credentials(if request.same_origin {
            RequestCredentials::SameOrigin
        } else {
            RequestCredentials::Include
        });
        if let Some(body) = &request.body {
            init.set_body(&JsValue::from_str(body));
            if let Ok(headers) = Headers::new() {
                let _ = headers.set("Content-Type", "application/json");
                init.set_headers(&headers);
            }
        }
        if let Ok(controller) = AbortController::new() {
            init.set_signal(Some(&controller.signal()));
            self.fetcher.in_flight.push((id, controller));
        }
        let key = JsValue::from_f64(id as f64);
        let ok = on_response.bind1(&JsValue::NULL, &key);
        let err = on_failure.bind1(&JsValue::NULL, &key);
        let promise = self.dom.window.fetch_with_str_and_init(&request.url, &init);
        then_call(&promise, ok, err);
    }

    fn on_fetch_response(&mut self, id: u64, response: JsValue) {
        let (Some(on_text), Some(on_failure)) = (&self.fetcher.on_text, &self.fetcher.on_failure)
        else {
            return;
        };
        let Ok(response) = response.dyn_into::<Response>() else {
            self.finish_fetch(id, HttpOutcome::Failed);
            return;
        };
        let Ok(text) = response.text() else {
            self.finish_fetch(id, HttpOutcome::Failed);
            return;
        };
        let key = JsValue::from_f64(id as f64);
        let ok = on_text.bind2(
            &JsValue::NULL,
            &key,
            &JsValue::from_f64(f64::from(response.status())),
        );
        let err = on_failure.bind1(&JsValue::NULL, &key);
        then_call(&text, ok, err);
    }

    fn finish_fetch(&mut self, id: u64, outcome: HttpOutcome) {
        self.fetcher.forget(id);
        if matches!(id, settings_panel::GET_ID | settings_panel::PUT_ID) {
            self.on_settings_answer(id, outcome);
            return;
        }
        let t = self.now();
        self.conn.handle_http(id, outcome, t);
    }
}
