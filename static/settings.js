// The settings panel, loaded by static/loader.js the first time
// #settings-button is pressed, so a visit that changes nothing does not
// download it. The settings themselves (reading, applying, saving them to
// the account, the zoom keys) stay in the client: this module only shows
// them in #settings, one control per field of GET/PUT /v1/settings named
// by its data-setting, and hands a change to window.thinline.set_setting,
// which answers "" when it took it. The client writes how the save went
// into #settings-status and fires `thinline-settings` on window when the
// settings changed elsewhere (the zoom keys, the account's copy arriving).

const FORM = `<h2>Settings <small>saved to your account</small></h2>
<label>Theme <select data-setting="theme">
<option value="dark">Dark</option><option value="light">Light</option>
<option value="solarized-dark">Solarized dark</option>
<option value="solarized-light">Solarized light</option>
<option value="gruvbox-dark">Gruvbox dark</option></select></label>
<label>Font size <input data-setting="font_size" type="number" min="8" max="32"
title="Ctrl+= and Ctrl+- change it, Ctrl+0 resets it"></label>
<label>Font <input data-setting="font_family" placeholder="e.g. Fira Code"
maxlength="64" autocomplete="off" spellcheck="false"></label>
<label>Cursor <select data-setting="cursor"><option value="block">Block</option>
<option value="bar">Bar</option><option value="underline">Underline</option></select></label>
<label><input data-setting="cursor_blink" type="checkbox"> Blinking cursor</label>
<label><input data-setting="copy_on_select" type="checkbox"> Copy on select</label>
<label><input data-setting="right_click_paste" type="checkbox"> Right-click pastes</label>
<label>Bell <select data-setting="bell"><option value="off">Off</option>
<option value="visual">Flash</option>
<option value="notify">Flash, and notify while hidden</option></select></label>
<label title="Show what you type before the host echoes it, checked against its screen">Typing
shown <select data-setting="prediction"><option value="auto">At once on slow links</option>
<option value="always">Always at once</option>
<option value="never">Only as the host echoes it</option></select></label>
<label><input data-setting="clipboard_write" type="checkbox"> Programs may set the
clipboard (OSC 52; never read it)</label>
<p id="settings-status" role="status"></p>
<button id="settings-close" type="button">Done</button>`;

// What a field takes, for a value the client refused.
const CHOICES = {
  font_size: 'a font size from 8 to 32',
  font_family: "a font name: letters, digits, spaces, '-', '_' and '.'",
};

let panel;

function build() {
  panel = document.createElement('form');
  panel.id = 'settings';
  panel.setAttribute('aria-label', 'Settings');
  panel.hidden = true;
  panel.innerHTML = FORM;
  const replaced = document.getElementById('replaced');
  replaced.parentNode.insertBefore(panel, replaced);
  panel.addEventListener('change', changed);
  panel.addEventListener('submit', (e) => e.preventDefault());
  panel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      close();
    }
  });
  document.getElementById('settings-close').addEventListener('click', close);
  addEventListener('thinline-settings', fill);
}

// Shows the settings in use in the controls.
function fill() {
  const settings = JSON.parse(window.thinline.settings());
  for (const control of panel.querySelectorAll('[data-setting]')) {
    const value = settings[control.dataset.setting];
    if (control.type === 'checkbox') control.checked = !!value;
    else if (value !== undefined) control.value = value;
  }
}

function changed(e) {
  const control = e.target;
  const name = control.dataset.setting;
  if (!name) return;
  const value = control.type === 'checkbox' ? control.checked : control.value;
  if (window.thinline.set_setting(name, value) !== '') {
    const status = document.getElementById('settings-status');
    status.textContent = `not changed: choose ${CHOICES[name] ?? 'one of the choices'}`;
    fill();
    return;
  }
  if (name === 'bell' && value === 'notify' && window.Notification) {
    // Leave to notify needs the user's gesture, which this change is.
    Notification.requestPermission();
  }
}

function open() {
  fill();
  document.getElementById('settings-status').textContent = '';
  panel.hidden = false;
  panel.querySelector('[data-setting]')?.focus();
}

function close() {
  panel.hidden = true;
  document.getElementById('keyboard')?.focus();
}

// #settings-button: opens the panel, or closes it when open.
export function toggle() {
  if (!panel) build();
  if (panel.hidden) open();
  else close();
}
