//! Keys the browser keeps for itself (Ctrl+W, Ctrl+T, Ctrl+N, Ctrl+Tab):
//! the Full screen button takes the page full screen and asks for the
//! Keyboard Lock API (Chromium), under which those keys reach the
//! terminal; installed as an app (the page's web app manifest) the page
//! gets a window of its own. The page says so once, on the first visit.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Document, HtmlElement, MouseEvent};

use super::{App, Shared, element, listen};

/// localStorage key set once the hint has been shown.
const HINT_SHOWN_KEY: &str = "thinline.keys-hint";
const HINT: &str =
    "Ctrl+W, Ctrl+T, Ctrl+N, Ctrl+Tab: use Full screen (hold Esc to leave) or install as an app";

pub(super) fn install(app: &Shared, document: &Document) -> Result<(), JsValue> {
    let button: HtmlElement = element(document, "fullscreen-button")?;
    listen(&button, "click", app, |a, _: MouseEvent| {
        a.toggle_full_screen()
    })?;
    let mut a = app.borrow_mut();
    if let Some(storage) = &a.dom.storage
        && storage.get_item(HINT_SHOWN_KEY).ok().flatten().is_none()
    {
        let _ = storage.set_item(HINT_SHOWN_KEY, "1");
        a.notice(HINT.to_owned());
    }
    Ok(())
}

fn call(target: &JsValue, method: &str) -> Option<JsValue> {
    let function = js_sys::Reflect::get(target, &JsValue::from_str(method))
        .ok()?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    function.call0(target).ok()
}

impl App {
    fn toggle_full_screen(&mut self) {
        let document = &self.dom.document;
        if document.fullscreen_element().is_some() {
            document.exit_fullscreen();
            return;
        }
        let Some(root) = document.document_element() else {
            return;
        };
        if root.request_fullscreen().is_err() {
            self.notice("the browser did not allow full screen here".to_owned());
            return;
        }
        // Every key, while full screen; the browser lets go on leaving it.
        let keyboard = js_sys::Reflect::get(&self.dom.window.navigator(), &"keyboard".into())
            .unwrap_or(JsValue::UNDEFINED);
        if keyboard.is_undefined() || call(&keyboard, "lock").is_none() {
            self.notice(
                "this browser cannot lock the keyboard: Ctrl+W and the like still go to it"
                    .to_owned(),
            );
        }
        let _ = self.dom.keyboard.focus();
    }
}
