// Files in and out of the session. loader.js imports this module the first
// time a file is dropped on the page, picked with Upload, or offered by
// `tl-download`, so a visit that moves no file never downloads it.
//
// The wasm client only carries the requests and answers over the session's
// WebSocket (window.thinline.upload, and the loader's thinlineFiles hook);
// the bytes go straight between the browser and the host over HTTP: an
// upload is a PUT of a slice of the File (the browser reads it from disk as
// it sends), a download is a form POST whose answer the browser's download
// manager saves. Neither side ever holds a whole file, and a big transfer
// never queues in front of the terminal's frames.
//
// An upload that is cut off (a dropped link, a lost host) asks the session
// again, naming the partial file the host gave; the host that answers
// (the same, or the one the session failed over to) says how much it
// holds, and the rest is sent. If no host answers within RESUME_WAIT_MS,
// or the partial file did not survive, the row says so plainly.

const RESUME_WAIT_MS = 120_000;
const RETRY_MS = 1000;
const MAX_FAILURES = 20;

// Files sent at once; the rest wait their turn (a host takes 16 transfers
// of a session at a time, and a browser opens six connections to it).
const AT_ONCE = 3;

const uploads = new Map();
const waiting = [];
let sending = 0;
let nextId = 1;
let panel = null;

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function human(bytes) {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

// How the panel looks: set here (the CSSOM is allowed under the page's
// CSP, inline style attributes are not) so a visit that moves no file
// does not download it with style.css.
const PANEL_STYLE = {
  position: 'absolute', left: '0.8em', bottom: '0.5em', display: 'grid', gap: '0.3em',
  padding: '0.5em 0.8em', border: '1px solid #444', borderRadius: '4px',
  background: '#23252a', color: '#d8d8d8', font: '13px system-ui, sans-serif',
};
const ROW_STYLE = { display: 'flex', gap: '0.6em', alignItems: 'center' };
const BUTTON_STYLE = {
  font: 'inherit', color: '#d8d8d8', background: '#34506f', border: '1px solid #555',
  borderRadius: '3px', cursor: 'pointer',
};

// The panel of transfers, made on first use.
function row(title) {
  if (!panel) {
    panel = element('section');
    Object.assign(panel.style, PANEL_STYLE);
    panel.id = 'files';
    panel.setAttribute('aria-label', 'File transfers');
    panel.setAttribute('aria-live', 'polite');
    document.getElementById('term').append(panel);
  }
  const line = element('div', 'file');
  Object.assign(line.style, ROW_STYLE);
  const name = element('span', 'file-name', title);
  const state = element('span', 'file-state');
  const progress = element('progress');
  const actions = element('span', 'file-actions');
  line.append(name, progress, state, actions);
  panel.append(line);
  panel.style.display = 'grid';
  return { line, state, progress, actions };
}

function button(parent, text, onClick) {
  const b = element('button', '', text);
  Object.assign(b.style, BUTTON_STYLE);
  b.type = 'button';
  b.addEventListener('click', onClick);
  parent.append(b);
  return b;
}

function dismiss(r, after = 0) {
  setTimeout(() => {
    r.line.remove();
    if (panel && !panel.childElementCount) panel.style.display = 'none';
  }, after);
}

class Upload {
  constructor(file) {
    this.id = nextId++;
    this.file = file;
    this.partial = '';
    this.place = null;
    this.xhr = null;
    this.waitingSince = 0;
    this.timer = 0;
    this.finished = false;
    // Transfers that failed in a row with nothing more arriving: past
    // MAX_FAILURES the link is not coming back for this file.
    this.failures = 0;
    this.row = row(file.name);
    this.row.line.dataset.upload = String(this.id);
    this.row.progress.max = Math.max(file.size, 1);
    this.row.progress.value = 0;
    this.cancelButton = button(this.row.actions, 'Cancel', () => this.cancel());
    uploads.set(this.id, this);
    this.say('waiting for the files before it');
    waiting.push(this);
    next();
  }

  start() {
    sending += 1;
    this.say('asking the session');
    this.ask();
  }

  // Ends this file's turn (done, failed or cancelled): the next one goes.
  release() {
    uploads.delete(this.id);
    const queued = waiting.indexOf(this);
    if (queued >= 0) waiting.splice(queued, 1);
    else sending -= 1;
    next();
  }

  say(text) {
    this.row.state.textContent = text;
  }

  // Asks the session (whichever host holds it now) where to send the file.
  ask() {
    clearTimeout(this.timer);
    const request = `${this.id}\0${this.file.size}\0${this.partial}\0${this.file.name}`;
    const api = window.thinline;
    if (api && api.upload(request)) {
      this.waitingSince = 0;
      // The answer may be lost with the socket; ask again if none comes.
      this.timer = setTimeout(() => this.ask(), 10 * RETRY_MS);
      return;
    }
    this.waitingSince ||= Date.now();
    if (Date.now() - this.waitingSince > RESUME_WAIT_MS) {
      const kept = this.partial ? ` What arrived is in ${this.partial}.` : '';
      this.fail(`not completed: the session did not come back within ${RESUME_WAIT_MS / 60000} minutes.${kept} Drop the file again to start over.`);
      return;
    }
    this.say('waiting for the session to come back');
    this.timer = setTimeout(() => this.ask(), RETRY_MS);
  }

  answered(msg) {
    clearTimeout(this.timer);
    if (this.finished || this.xhr) return;
    if (msg.error) {
      this.fail(msg.error);
      return;
    }
    this.place = msg;
    this.partial = msg.partial;
    this.send(msg.offset);
  }

  send(offset) {
    const { file, place } = this;
    const xhr = new XMLHttpRequest();
    this.xhr = xhr;
    xhr.open('PUT', `${place.base}/files/upload`);
    xhr.setRequestHeader('Authorization', `Bearer ${place.token}`);
    if (file.size > 0) {
      xhr.setRequestHeader('Content-Range', `bytes ${offset}-${file.size - 1}/${file.size}`);
    }
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    const shown = (sent) => {
      this.row.progress.value = sent;
      this.say(`${human(sent)} of ${human(file.size)} to ${place.dir}`);
    };
    shown(offset);
    xhr.upload.onprogress = (e) => shown(offset + e.loaded);
    xhr.onload = () => {
      this.xhr = null;
      this.failures = 0;
      let answer = null;
      try {
        answer = JSON.parse(xhr.responseText);
      } catch {
        answer = null;
      }
      if (xhr.status === 200 && answer && answer.name !== undefined) {
        this.done(answer);
      } else if ((xhr.status === 200 || xhr.status === 409) && answer && answer.offset !== undefined) {
        this.send(answer.offset);
      } else if (xhr.status === 404) {
        // The host forgot the token (restarted, or a long pause): ask again.
        this.ask();
      } else {
        this.fail(xhr.responseText || `the host answered ${xhr.status}`);
      }
    };
    xhr.onerror = () => {
      // The host or the link is gone: the session comes back, maybe on
      // another host, and the file goes on from what that host holds.
      this.xhr = null;
      this.place = null;
      this.failures += 1;
      if (this.failures > MAX_FAILURES) {
        this.fail(`not completed: ${MAX_FAILURES} tries to reach the host failed (${place.base}).${this.partial ? ` What arrived is in ${this.partial}.` : ''} Drop the file again to start over.`);
        return;
      }
      this.say('connection lost; waiting for the session to come back');
      this.timer = setTimeout(() => this.ask(), RETRY_MS);
    };
    xhr.send(file.slice(offset));
  }

  done(answer) {
    this.finished = true;
    this.release();
    this.row.progress.value = this.row.progress.max;
    this.row.line.dataset.state = 'done';
    this.say(`uploaded to ${answer.dir}/${answer.name}`);
    this.cancelButton.remove();
    dismiss(this.row, 15_000);
  }

  fail(reason) {
    this.finished = true;
    clearTimeout(this.timer);
    this.release();
    this.row.line.dataset.state = 'failed';
    this.row.state.style.color = '#f08080';
    this.say(reason);
    this.cancelButton.textContent = 'Dismiss';
    this.cancelButton.onclick = () => dismiss(this.row);
  }

  cancel() {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    this.release();
    if (this.xhr) this.xhr.abort();
    if (this.place) {
      fetch(`${this.place.base}/files/upload`, {
        method: 'DELETE',
        headers: { Authorization: `Bearer ${this.place.token}` },
      }).catch(() => {});
    }
    dismiss(this.row);
  }
}

function next() {
  while (sending < AT_ONCE && waiting.length) waiting.shift().start();
}

function offer(msg) {
  const r = row(msg.name);
  r.line.dataset.download = msg.name;
  r.progress.remove();
  r.state.textContent = `${human(msg.size)} offered by tl-download`;
  const save = button(r.actions, 'Save', () => {
    // A form, so the one-time token goes in the body and the browser's
    // download manager saves the stream (with its own progress); a new
    // tab shows the host's words if the token is no longer good.
    const form = element('form');
    form.method = 'post';
    form.action = `${msg.base}/files/download`;
    form.target = '_blank';
    form.rel = 'noopener';
    form.hidden = true;
    const token = element('input');
    token.type = 'hidden';
    token.name = 'token';
    token.value = msg.token;
    form.append(token);
    document.body.append(form);
    form.submit();
    form.remove();
    save.remove();
    r.line.dataset.state = 'saving';
    r.state.textContent = `${human(msg.size)}: saving, see your browser's downloads`;
    dismiss(r, 15_000);
  });
  button(r.actions, 'Dismiss', () => dismiss(r));
}

// Files the user dropped or picked.
export function upload(files) {
  for (const file of files) new Upload(file);
  document.getElementById('keyboard')?.focus();
}

// What the host said, as the wasm client passes it on, with the URL of the
// session's socket (ws[s]://HOST/ws): the host the bytes go to.
export function fromHost(text, socketUrl) {
  const msg = JSON.parse(text);
  msg.base = socketUrl.replace(/^ws/, 'http').replace(/\/ws$/, '');
  if (msg.kind === 'upload') uploads.get(msg.id)?.answered(msg);
  else if (msg.kind === 'download') offer(msg);
}
