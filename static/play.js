// The recording player (static/play.html). Time is this script's: it asks
// the directory for a minute of frames at a time, each minute starting
// with the whole screen, and hands each frame to the wasm player at its
// moment; the wasm draws them with the terminal's own screen model and
// painter. Seeking is asking for the minute that starts there.
import init, { Player } from './player.js';

const $ = (id) => document.getElementById(id);
const session = new URLSearchParams(location.search).get('recording') ?? '';
const base = `/v1/recordings/${encodeURIComponent(session)}`;
const WINDOW_MS = 60_000;
// A pause longer than this plays as this long when "skip pauses" is on.
const IDLE_MS = 2_000;

let player = null;
let meta = null;
// The frames loaded, in time order: {at, bytes}; `next` is the first not
// drawn, `loadedTo` where the loaded ones end.
let frames = [];
let next = 0;
let loadedTo = 0;
let fetching = null;
// Bumped by every seek, so an older fetch's answer is dropped.
let generation = 0;
let position = 0;
let playing = false;
let clock = { wall: 0, at: 0 };

function status(text, bad = false) {
  $('player-status').textContent = text;
  $('player-status').className = bad ? 'notice' : '';
}

async function answer(r) {
  if (r.status === 401) {
    location.href = '/login';
    throw new Error('signed out');
  }
  if (r.ok) return r;
  const body = await r.json().catch(() => ({}));
  throw new Error(body.error ?? `the directory answered ${r.status}; reload the page to try again`);
}

function clockTime(ms) {
  // Under a minute, tenths: a short recording's moments stay apart.
  if ((meta?.duration_ms ?? ms) < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor(s / 60) % 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${mm.padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

// Fetches the frames from `from` on: [end u64][at u64, len u32, frame]...
async function fetchWindow(from) {
  const r = await answer(await fetch(`${base}/frames?from_ms=${from}&to_ms=${from + WINDOW_MS}`));
  const bytes = new Uint8Array(await r.arrayBuffer());
  const view = new DataView(bytes.buffer);
  const list = [];
  let at = 8;
  while (at + 12 <= bytes.length) {
    const len = view.getUint32(at + 8, true);
    list.push({ at: Number(view.getBigUint64(at, true)), bytes: bytes.subarray(at + 12, at + 12 + len) });
    at += 12 + len;
  }
  return { end: bytes.length >= 8 ? Number(view.getBigUint64(0, true)) : from, list };
}

function show() {
  const duration = meta?.duration_ms ?? 0;
  $('time').textContent = `${clockTime(position)} / ${clockTime(duration)}`;
  if (document.activeElement !== $('seek')) $('seek').value = String(position);
  $('play').textContent = playing ? 'Pause' : 'Play';
}

// Draws every loaded frame up to `ms`.
function drawTo(ms) {
  while (next < frames.length && frames[next].at <= ms) player.frame(frames[next++].bytes);
}

// Loads the next minute in the background when the loaded frames run low.
function prefetch() {
  if (fetching || loadedTo >= meta.duration_ms || frames.length - next > 200) return;
  if (frames.length && frames[frames.length - 1].at - position > WINDOW_MS / 2) return;
  const mine = generation;
  fetching = fetchWindow(loadedTo).then(({ end, list }) => {
    if (mine !== generation) return;
    // The first frame repaints the whole screen at `loadedTo`: needed
    // after a seek, harmless here.
    frames = frames.slice(next).concat(list);
    next = 0;
    loadedTo = Math.max(end, loadedTo + 1);
  }, (err) => status(`the recording stopped loading: ${err.message}`, true))
    .finally(() => { if (mine === generation) fetching = null; });
}

function tick(now) {
  if (!playing) return;
  const speed = Number($('speed').value) || 1;
  let at = clock.at + (now - clock.wall) * speed;
  const upcoming = frames[next];
  if ($('skip-idle').checked && upcoming && upcoming.at - position > IDLE_MS && at > position + IDLE_MS / 4) {
    // A long pause plays as a short one.
    at = Math.max(at, upcoming.at - IDLE_MS / 4);
    clock = { wall: now, at };
  }
  if (next >= frames.length && fetching && loadedTo < meta.duration_ms) {
    // Waiting for frames: time stands still rather than skip them.
    clock = { wall: now, at: position };
    requestAnimationFrame(tick);
    return;
  }
  position = Math.min(at, meta.duration_ms);
  drawTo(position);
  prefetch();
  if (position >= meta.duration_ms && next >= frames.length && !fetching) {
    playing = false;
    status('the end of the recording');
  }
  show();
  if (playing) requestAnimationFrame(tick);
}

function play(on) {
  if (!meta) return;
  if (on && position >= meta.duration_ms) return seek(0).then(() => play(true));
  playing = on;
  clock = { wall: performance.now(), at: position };
  status(on ? 'playing' : 'paused');
  show();
  if (on) requestAnimationFrame(tick);
}

// Shows the screen as it was at `ms`, then plays on if it was playing.
async function seek(ms) {
  const mine = ++generation;
  const target = Math.max(0, Math.min(Math.round(ms), meta.duration_ms));
  const resume = playing;
  playing = false;
  fetching = null;
  status(`loading ${clockTime(target)}…`);
  let loaded;
  try {
    loaded = await fetchWindow(target);
  } catch (err) {
    if (mine === generation) status(`the recording could not be loaded at ${clockTime(target)}: ${err.message}`, true);
    return;
  }
  if (mine !== generation) return;
  const { end, list } = loaded;
  frames = list;
  next = 0;
  loadedTo = Math.max(end, target + 1);
  position = target;
  drawTo(target);
  status(resume ? 'playing' : 'paused');
  show();
  if (resume) play(true);
}

function markers() {
  const duration = Math.max(meta.duration_ms, 1);
  for (const m of meta.markers) {
    const tick = document.createElement('button');
    tick.type = 'button';
    tick.title = `${clockTime(m.at_ms)}: ${m.text}`;
    tick.setAttribute('aria-label', tick.title);
    tick.style.left = `${(100 * m.at_ms) / duration}%`;
    tick.addEventListener('click', () => seek(m.at_ms));
    $('ticks').append(tick);
    const item = document.createElement('li');
    const go = document.createElement('button');
    go.type = 'button';
    go.textContent = clockTime(m.at_ms);
    go.addEventListener('click', () => seek(m.at_ms));
    item.append(go, m.text);
    $('markers').append(item);
  }
}

async function main() {
  try {
    if (!/^[0-9a-f]{32}$/.test(session)) throw new Error('this address names no recording; open one from the recordings page');
    const [, answered] = await Promise.all([init(), answer(await fetch(base))]);
    meta = await answered.json();
    player = new Player('player-screen');
    $('title').textContent = `${meta.title ?? 'Recording'} · ${new Date(meta.started_at_ms).toLocaleString()}`;
    $('seek').max = String(meta.duration_ms);
    for (const [id, format] of [['export-cast', 'cast'], ['export-cast3', 'cast3'], ['export-txt', 'txt']]) {
      $(id).href = `${base}/export?format=${format}`;
    }
    markers();
    await seek(0);
    $('play').disabled = false;
    $('seek').disabled = false;
    status('ready: press Play (or Space)');
  } catch (err) {
    status(`the recording could not be shown: ${err.message}`, true);
  }
}

$('play').addEventListener('click', () => play(!playing));
$('seek').addEventListener('input', () => { $('time').textContent = `${clockTime(Number($('seek').value))} / ${clockTime(meta?.duration_ms ?? 0)}`; });
$('seek').addEventListener('change', () => seek(Number($('seek').value)));
$('speed').addEventListener('change', () => { clock = { wall: performance.now(), at: position }; });
addEventListener('keydown', (e) => {
  const t = e.target;
  if (!meta || t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLButtonElement) return;
  if (e.key === ' ') play(!playing);
  else if (e.key === 'ArrowRight') seek(position + 5_000);
  else if (e.key === 'ArrowLeft') seek(position - 5_000);
  else return;
  e.preventDefault();
});

window.thinlinePlayer = {
  state: () => JSON.stringify({ position_ms: position, duration_ms: meta?.duration_ms ?? 0, playing, ready: !!player && !$('play').disabled }),
  text: () => player?.text() ?? '',
  seek: (ms) => seek(ms),
};

main();
