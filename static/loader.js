// Loads the WebAssembly client. Kept as a file (not an inline script) so the
// page works under the CSP `script-src 'self' 'wasm-unsafe-eval'`. The build
// serves it next to the wasm-bindgen glue, both under hashed names
// (xtask/src/page.rs rewrites this import).
import init, { start } from './web_terminal.js';

async function main() {
  try {
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

main();
