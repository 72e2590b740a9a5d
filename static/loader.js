// Loads the WebAssembly client. Kept as a file (not an inline script) so the
// page works under the CSP `script-src 'self' 'wasm-unsafe-eval'`. The build
// serves it next to the wasm-bindgen glue, both under hashed names
// (xtask/src/page.rs rewrites this import).
import init, { start } from './web_terminal.js';

async function main() {
  try {
    // A share link (static/share.js, loaded only for one).
    const share = /^#share=(.+)/.exec(location.hash);
    if (share) await (await import('./share.js')).redeem(share[1]);
    await init();
    start();
  } catch (err) {
    const status = document.getElementById('status');
    if (status) {
      status.textContent = `the terminal failed to start: ${err}`;
      status.className = 'state-closed';
    }
    throw err;
  }
}

// A link pasted over this very page changes only the fragment: load anew.
addEventListener('hashchange', () => /^#share=/.test(location.hash) && location.reload());

// Files in and out (static/files.js) load only when first needed: a file
// dropped on the page or picked with Upload, or one tl-download offers
// (the client calls thinlineFiles with the host's word).
const files = () => import('./files.js');
const upload = (list) => list.length && files().then((m) => m.upload(list));
window.thinlineFiles = (text, url) => files().then((m) => m.fromHost(text, url));
addEventListener('dragover', (e) => {
  if (e.dataTransfer?.types.includes('Files')) e.preventDefault();
});
addEventListener('drop', (e) => {
  const list = [...(e.dataTransfer?.files ?? [])];
  if (list.length) {
    e.preventDefault();
    upload(list);
  }
});
// The settings panel (static/settings.js) loads on its first opening.
// Opened first while the page's directory is away, it cannot: say so.
const settings = () => import('./settings.js');
document.getElementById('settings-button')?.addEventListener('click', () => {
  settings().then((m) => m.toggle(), () => {
    const overlay = document.getElementById('overlay');
    overlay.textContent = 'the settings panel could not load: the directory that serves '
      + 'this page does not answer (the terminal goes on); try again once it is back';
    overlay.hidden = false;
  });
});
const picker = document.getElementById('upload-input');
picker?.addEventListener('change', () => {
  upload([...picker.files]);
  picker.value = '';
});

main();
