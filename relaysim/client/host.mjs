// relaysim reference client: the main-thread host (like Smesh's wasm-host.mjs + dom.mjs + ws.mjs).
//
// Theory of operation.  The host owns the DOM, localStorage and the `_elements` handle table; the
// app logic runs in worker.mjs.  The Worker sends DOM operations (create an element under an
// integer handle id, update it, release ids); the host turns clicks into navigation commands.
// The hooks the harness reads (__moxie_*, __relaysim_*) live here on globalThis; see docs/hooks.md.
// Memory counters come from a SharedArrayBuffer the Worker mirrors its heap's counter block into
// (no call into the Worker, no allocation in its heap); without cross-origin isolation, or with
// ?costly-probe=1, a hook asks the Worker by postMessage and returns a Promise.

const params = new URLSearchParams(location.search);
const KNOWN_LEAKS = ['maps', 'dom', 'subs', 'idle', 'thread', 'thread-profile', 'reconnect'];
const leaks = (params.get('leaks') || '').split(',').map((s) => s.trim()).filter(Boolean);
const badLeaks = leaks.filter((l) => !KNOWN_LEAKS.includes(l));
const costlyProbe = ['1', 'true', 'yes'].includes(params.get('costly-probe') || '');
const restartPollS = Number(params.get('restart_poll') ?? 60);
const restartMB = Number(params.get('restart_mb') ?? 128);
const pageCap = Number(params.get('page_cap') ?? 1000);
// ?hooks=off: the same app with no relaysim or __moxie_* hooks on globalThis (the browser-level
// control group: a harness sees it as it sees any third-party client). Removed once installed, below.
const hooksOff = params.get('hooks') === 'off';
const isolated = globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function';
const COUNTER_WORDS = 144;
const SITE_NAMES = [
  'events', 'seen events', 'note elements', 'reactions', 'reposts', 'zaps',
  'author names', 'author pics', 'author content', 'embeds', 'reply cache', 'profile wrappers',
  'thread events', 'ws frames', 'idle timer', 'probe', 'map:events', 'map:authors', 'map:embeds',
  'map:replies', 'map:profile wrappers', 'contacts', 'reconnects',
];
const HANDLE_THRESHOLDS = [100, 500, 1000, 2000, 5000];
const RESTART_KEY = 'relaysim.restart';

const $ = (sel) => document.querySelector(sel);
const main = $('#page');

// ------------------------------------------------------------------- the handle table (dom.mjs)

const _elements = new Map();
globalThis._elements = _elements;
let handleLogged = new Set();

function logAlloc(source, metric, value) {
  if (globalThis.__moxie_instrument !== true) return;
  globalThis.__moxie_alloc_log.push({ ts: Date.now(), source, metric, value });
}
globalThis.__moxie_alloc_log = [];

// Turning instrumentation on logs the current socket count at once, so a harness that sets the
// flag after the page loaded still gets a `ws` record to start from.
let instrument = globalThis.__moxie_instrument === true;
Object.defineProperty(globalThis, '__moxie_instrument', {
  configurable: true,
  get: () => instrument,
  set: (v) => {
    const was = instrument;
    instrument = v;
    if (v === true && !was) {
      logAlloc('ws', '_conns.size', openSockets);
      logAlloc('dom', '_elements.size', _elements.size);
    }
  },
});

function checkHandleThresholds() {
  const n = _elements.size;
  for (const t of HANDLE_THRESHOLDS) {
    if (n >= t && !handleLogged.has(t)) {
      handleLogged.add(t);
      logAlloc('dom', '_elements.size', n);
    } else if (n < t && handleLogged.has(t)) {
      handleLogged.delete(t); // re-armed: a later climb past t is logged again
    }
  }
}

function register(h, el) {
  _elements.set(h, el);
  checkHandleThresholds();
}

// Releasing drops the table's reference only (as dom.mjs does): the element stays wherever it is;
// removing it from the page is a separate operation (`remove`).
function release(id) {
  _elements.delete(id);
}

function releaseAll(ids) {
  for (const id of ids) release(id);
  checkHandleThresholds();
}
globalThis.release = release;
globalThis.releaseAll = releaseAll;

// -------------------------------------------------------------------------------- rendering

function ago(ts) {
  const s = Math.max(0, Math.floor(Date.now() / 1000) - ts);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  if (s < 7 * 86400) return `${Math.floor(s / 86400)}d`;
  return new Date(ts * 1000).toISOString().slice(0, 10);
}

function node(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v);
  }
  for (const c of children) if (c) el.append(c);
  return el;
}

function hue(pk) {
  return parseInt(pk.slice(0, 6), 16) % 360;
}

function authorButton(pk, name) {
  return node('button', { class: 'author', 'data-testid': `open-profile-${pk}`, 'data-nav': 'profile', 'data-arg': pk, title: pk },
    node('span', { class: 'avatar', style: `background: hsl(${hue(pk)} 55% 45%)`, text: (name || '?').replace('…', '').slice(0, 1).toUpperCase() }),
    node('span', { class: 'name', 'data-pubkey': pk, text: name }));
}

function countsLine(id, c) {
  return node('footer', { class: 'counts' },
    node('span', { class: 'count', 'data-testid': `reactions-${id}`, title: 'reactions', text: `♥ ${c.reactions}` }),
    node('span', { class: 'count', 'data-testid': `reposts-${id}`, title: 'reposts', text: `↻ ${c.reposts}` }),
    node('span', { class: 'count', 'data-testid': `zaps-${id}`, title: 'zaps', text: `⚡ ${c.zaps}${c.sats ? ` · ${c.sats} sats` : ''}` }),
    node('button', { class: 'link', 'data-testid': `open-thread-${id}`, 'data-nav': 'thread', 'data-arg': id, text: 'Thread' }));
}

function quoteBlock(q) {
  if (!q) return null;
  return node('blockquote', { class: 'quote' },
    node('button', { class: 'author small', 'data-testid': `open-profile-${q.pubkey}`, 'data-nav': 'profile', 'data-arg': q.pubkey, text: q.name }),
    node('div', { text: q.content }),
    node('button', { class: 'link', 'data-testid': `open-thread-${q.id}`, 'data-nav': 'thread', 'data-arg': q.id, text: 'Open quoted note' }));
}

function renderNote(d) {
  const inner = d.repostOf;
  const shown = inner || d;
  const el = node('article', { class: `note${d.focus ? ' focus' : ''}`, 'data-testid': `note-${d.id}`, style: d.depth ? `margin-left: ${Math.min(d.depth, 8) * 1.25}rem` : null },
    inner ? node('div', { class: 'meta' }, node('span', { text: '↻ ' }), node('span', { class: 'name', 'data-pubkey': d.pubkey, text: d.name }), node('span', { text: ' reposted' })) : null,
    node('header', {}, authorButton(shown.pubkey, shown.name), node('time', { text: ago(shown.created_at), title: new Date(shown.created_at * 1000).toISOString() })),
    d.replyTo ? node('div', { class: 'meta', text: `↳ replying to ${d.replyTo.name || 'a note'}` }) : null,
    node('p', { class: 'content', text: shown.content }),
    quoteBlock(d.quote),
    countsLine(shown.id, d.counts));
  return el;
}

const NOTIF_VERB = { 1: 'replied to you', 6: 'reposted your note', 7: 'reacted', 9735: 'zapped you' };

function renderNotif(d) {
  const verb = d.mention ? 'mentioned you' : d.kind === 7 ? `reacted ${d.content === '+' ? '♥' : d.content}` : d.kind === 9735 ? `zapped you ${d.sats} sats` : NOTIF_VERB[d.kind];
  return node('article', { class: `notif kind-${d.kind}`, 'data-testid': `notif-${d.id}` },
    node('header', {}, authorButton(d.pubkey, d.name), node('span', { class: 'verb', text: verb }), node('time', { text: ago(d.created_at) })),
    d.kind === 1 ? node('p', { class: 'content', text: d.content }) : null,
    quoteBlock(d.quote),
    d.targetText ? node('blockquote', { text: d.targetText }) : null,
    d.target ? node('button', { class: 'link', 'data-testid': `open-thread-${d.target}`, 'data-nav': 'thread', 'data-arg': d.target, text: 'Open thread' }) : null);
}

function renderProfile(d) {
  return node('section', { class: 'profile', 'data-testid': `profile-${d.pubkey}` },
    node('div', { class: 'avatar big', style: `background: hsl(${hue(d.pubkey)} 55% 45%)`, text: d.name.replace('…', '').slice(0, 1).toUpperCase() }),
    node('h2', { class: 'name', 'data-pubkey': d.pubkey, text: d.name }),
    d.nip05 ? node('div', { class: 'meta', text: d.nip05 }) : null,
    node('div', { class: 'meta mono', text: d.pubkey }),
    d.about ? node('p', { text: d.about }) : null);
}

const RENDER = {
  note: renderNote, notif: renderNotif, profile: renderProfile,
  empty: (d) => node('p', { class: 'empty', text: d.text }),
};

function onEl(msg) {
  const el = RENDER[msg.kind](msg.data);
  if (msg.at === 'start') {
    const first = main.querySelector(':scope > article');
    if (first) first.before(el);
    else main.append(el);
  } else {
    main.append(el);
  }
  register(msg.h, el);
}

function onUpd(msg) {
  const el = _elements.get(msg.h);
  if (!el) return;
  if (msg.data.counts) {
    const old = el.querySelector(':scope > footer.counts');
    const id = old && old.querySelector('[data-nav=thread]').dataset.arg;
    if (old && id) old.replaceWith(countsLine(id, msg.data.counts));
  }
  if (msg.data.author) {
    const { pubkey, name } = msg.data.author;
    for (const n of el.querySelectorAll(`.name[data-pubkey="${pubkey}"]`)) n.textContent = name;
  }
}

const TITLES = { feed: 'Feed', notifications: 'Notifications', thread: 'Thread', profile: 'Profile' };

function onClear(msg) {
  main.replaceChildren(); // elements leave the page; their handles stay until the Worker releases them
  main.setAttribute('aria-busy', 'true');
  document.body.dataset.page = msg.page;
  $('#title').textContent = TITLES[msg.page] || msg.page;
  $('[data-testid=load-more]').hidden = !msg.more;
  $('[data-testid=back]').disabled = !msg.canBack;
  for (const b of document.querySelectorAll('nav [data-nav]')) b.classList.toggle('active', b.dataset.nav === msg.page && (msg.page !== 'profile' || msg.arg === viewer));
  window.scrollTo(0, 0);
}

// ------------------------------------------------------------------------------ the Worker

let worker = null;
let state = { page: null, ready: false, subs: [] };
let viewer = null;
let restarts = 0;
let seq = 0;
let openSockets = 0;
let bootError = null;
const pending = new Map(); // seq -> resolve
let sab = null;
let sabWords = null;
let restoring = null;

function ask(msg) {
  const s = ++seq;
  return new Promise((resolve) => {
    pending.set(s, resolve);
    worker.postMessage({ ...msg, seq: s });
  });
}

function onWorkerMessage(e) {
  const msg = e.data;
  switch (msg.t) {
    case 'el': onEl(msg); break;
    case 'upd': onUpd(msg); break;
    case 'release': releaseAll(msg.ids); break;
    case 'remove': for (const h of msg.ids) _elements.get(h)?.remove(); break;
    case 'clear': onClear(msg); break;
    case 'state': state = msg.state; renderStatus(); renderBusy(); break;
    case 'conns':
      openSockets = msg.n;
      logAlloc('ws', '_conns.size', msg.n);
      break;
    case 'status': $('#status').textContent = msg.text; break;
    case 'error':
      bootError = msg.text;
      $('#status').textContent = `error: ${msg.text}`;
      break;
    case 'booted':
      if (restoring) {
        window.scrollTo(0, restoring.scrollY || 0);
        localStorage.removeItem(RESTART_KEY);
        restoring = null;
      }
      booted = true;
      for (const r of bootWaiters.splice(0)) r();
      renderBusy();
      break;
    case 'done':
    case 'answer': {
      const r = pending.get(msg.seq);
      pending.delete(msg.seq);
      if (r) r(msg.t === 'answer' ? msg.value : msg);
      break;
    }
    default: break;
  }
}

let booted = false;
const bootWaiters = [];

function whenBooted() {
  return booted ? Promise.resolve() : new Promise((r) => bootWaiters.push(r));
}

function startWorker(restore = null) {
  booted = false;
  worker = new Worker(new URL('./worker.mjs', import.meta.url), { type: 'module' });
  worker.onmessage = onWorkerMessage;
  worker.onerror = (e) => {
    bootError = String(e.message || e);
    $('#status').textContent = `worker error: ${bootError}`;
  };
  sab = isolated ? new SharedArrayBuffer(4 * (COUNTER_WORDS + 2)) : null;
  sabWords = sab ? new Int32Array(sab) : null;
  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
  worker.postMessage({ t: 'init', sab, restore, config: { wsUrl, viewer, leaks, costlyProbe, pageCap } });
}

// Read the mirrored counter block under the seqlock; no call into the Worker.
function readMirror() {
  for (;;) {
    const s1 = Atomics.load(sabWords, 0);
    if (s1 & 1) continue;
    const words = sabWords.slice(1, COUNTER_WORDS + 2);
    if (Atomics.load(sabWords, 0) === s1) return new Uint32Array(words.buffer);
  }
}

function statsFromMirror(w) {
  return { totalAlloc: w[3], mallocs: w[4], heapInuse: w[1] - w[2], sys: w[COUNTER_WORDS] };
}

function countersFromMirror(w) {
  const out = SITE_NAMES.map((name, site) => ({ site, name, count: w[16 + 2 * site], bytes: w[17 + 2 * site] }));
  if (w[16 + 126]) out.push({ site: 63, name: 'overflow', count: w[16 + 126], bytes: w[17 + 126] });
  return out;
}

// ------------------------------------------------------------------------------ the hooks

// Before the Worker has its heap there is nothing to read: the message path waits for it.
globalThis.__moxie_mem_stats = () => {
  if (sabWords && !costlyProbe && booted) return statsFromMirror(readMirror());
  return whenBooted().then(() => ask({ t: 'probe', what: 'mem_stats' }));
};

globalThis.__moxie_read_alloc_counters = () => {
  if (sabWords && !costlyProbe && booted) return countersFromMirror(readMirror());
  return whenBooted().then(() => ask({ t: 'probe', what: 'alloc_counters' }));
};

globalThis.__moxie_dom_handles = () => _elements.size;

// Entries per cache group with the limit the app declares, from the state the Worker last posted
// (plain JS numbers on this thread: reading them allocates nothing in the Worker's heap).
// `site` is the allocation site of the group's tables, so a report can name it.
const CACHE_GROUPS = [
  ['events', 'events'], ['authors', 'authors'], ['embeds', 'embeds'], ['replies', 'replies'],
  ['profile wrappers', 'profileWrappers'],
];
globalThis.__moxie_cache_sizes = () => {
  const caches = state.caches || {};
  const limits = state.limits || {};
  return CACHE_GROUPS.filter(([, key]) => typeof caches[key] === 'number').map(([group, key]) => ({
    group, entries: caches[key], limit: typeof limits[key] === 'number' ? limits[key] : null, site: `map:${group}`,
  }));
};

globalThis.__moxie_close_all = async () => {
  await whenBooted();
  return ask({ t: 'close_all' });
};

globalThis.__relaysim_app_state = () => ({
  page: state.page, arg: state.arg ?? null, ready: Boolean(state.ready && booted), subs: state.subs || [],
  restarts, mode: leaks.length ? 'leaks' : 'fixed', leaks: leaks.slice(), viewer, more: state.more || 0,
  history: state.history || [], caches: state.caches || {}, rotations: state.rotations || {},
  handles: _elements.size, sockets: openSockets, isolated, probe: sabWords && !costlyProbe ? 'shared' : 'message',
  costlyProbe, scrollY: window.scrollY, error: bootError,
});

// A person sees a page load finish; so does a harness without hooks: #page[aria-busy] is "true"
// from a page switch until the page has its EOSE and is rendered (set here and in onClear).
function renderBusy() {
  main.setAttribute('aria-busy', state.ready && booted ? 'false' : 'true');
}

function pick(prefix, arg) {
  if (typeof arg === 'number') {
    const all = [...main.querySelectorAll(`[data-testid^="${prefix}"]`)];
    if (!all.length) throw new Error(`no ${prefix}* element on page ${state.page}`);
    return all[arg % all.length].dataset.arg;
  }
  return arg;
}

async function command(cmd, arg) {
  await whenBooted();
  const done = await ask({ t: 'cmd', cmd, arg });
  if (done && done.error) throw new Error(done.error);
  return done;
}

// Navigate like a person would; resolves once the new page has its EOSE and is rendered.
globalThis.__relaysim_action = async (name, arg) => {
  await whenBooted();
  let result;
  if (name === 'feed' || name === 'notifications' || name === 'back') result = await command(name);
  else if (name === 'thread') result = await command('thread', pick('open-thread-', arg ?? 0));
  else if (name === 'profile') result = await command('profile', arg === undefined || arg === null ? viewer : pick('open-profile-', arg));
  else if (name === 'scroll') {
    for (let i = 0; i < (arg ?? 1); i += 1) result = await command('more');
    window.scrollTo(0, document.body.scrollHeight);
  } else throw new Error(`unknown action ${name}`);
  return { ...globalThis.__relaysim_app_state(), result };
};

// ?hooks=off: every hook above removed again, so the page offers a harness nothing but its DOM.
if (hooksOff) {
  for (const name of Object.keys(globalThis)) {
    if (name.startsWith('__moxie_') || name.startsWith('__relaysim_')) delete globalThis[name];
  }
  delete globalThis.__moxie_instrument;
  delete globalThis._elements;
}

// ------------------------------------------------------------------------ proactive restart

function saveAndRestart() {
  const saved = {
    page: state.page, arg: state.arg, more: state.more || 0, history: state.history || [],
    scrollY: window.scrollY, pubkey: viewer, at: Date.now(),
  };
  localStorage.setItem(RESTART_KEY, JSON.stringify(saved));
  worker.terminate();
  for (const r of pending.values()) r({ ok: false, restarted: true });
  pending.clear();
  _elements.clear(); // the handles belonged to the old Worker
  handleLogged = new Set();
  main.replaceChildren();
  restarts += 1;
  openSockets = 0;
  state = { page: null, ready: false, subs: [] };
  const restore = JSON.parse(localStorage.getItem(RESTART_KEY));
  viewer = restore.pubkey;
  restoring = restore;
  startWorker(restore);
}

// At most one restart per 10 polls: a threshold below a fresh tab's heap must not become a loop.
let lastRestartAt = -Infinity;

async function pollHeap() {
  if (!worker || !booted) return;
  const stats = sabWords ? statsFromMirror(readMirror()) : await ask({ t: 'heap' });
  if (stats.heapInuse <= restartMB * 1024 * 1024) return;
  if (performance.now() - lastRestartAt < 10 * restartPollS * 1000) return;
  lastRestartAt = performance.now();
  saveAndRestart();
}

// ---------------------------------------------------------------------------------- status

function renderStatus() {
  const parts = [leaks.length ? `leaks: ${leaks.join(',')}` : 'fixed'];
  if (sabWords) parts.push(`heap ${(statsFromMirror(readMirror()).heapInuse / 1048576).toFixed(2)} MB`);
  parts.push(`${_elements.size} handles`, `${(state.subs || []).length} subs`);
  if (restarts) parts.push(`${restarts} restarts`);
  if (!bootError) $('#status').textContent = parts.join(' · ');
}

// ------------------------------------------------------------------------------------ boot

async function resolveViewer() {
  const fromUrl = params.get('pubkey');
  if (fromUrl === '') return null; // `?pubkey=`: explicitly no viewer (global feed)
  if (fromUrl && /^[0-9a-f]{64}$/.test(fromUrl)) return fromUrl;
  try {
    const r = await fetch('/viewer.json', { cache: 'no-store' });
    if (r.ok) {
      const j = await r.json();
      if (j && /^[0-9a-f]{64}$/.test(j.pubkey || '')) return j.pubkey;
    }
  } catch { /* no viewer.json: global feed */ }
  return null;
}

document.addEventListener('click', (e) => {
  const t = e.target.closest('[data-nav], [data-testid=load-more], [data-testid=back]');
  if (!t || t.disabled) return;
  e.preventDefault();
  const report = (err) => { $('#status').textContent = String(err.message || err); };
  if (t.dataset.testid === 'load-more') command('more').catch(report);
  else if (t.dataset.testid === 'back') command('back').catch(report);
  else if (t.dataset.nav === 'profile' && !t.dataset.arg) command('profile', viewer).catch(report);
  else command(t.dataset.nav, t.dataset.arg || null).catch(report);
});

async function boot() {
  if (badLeaks.length) {
    bootError = `unknown leak ${badLeaks.join(',')}: known leaks are ${KNOWN_LEAKS.join(', ')}`;
    $('#status').textContent = bootError;
    return;
  }
  viewer = await resolveViewer();
  $('[data-testid=nav-profile]').hidden = !viewer;
  $('#mode').textContent = leaks.length ? `leaks: ${leaks.join(', ')}` : 'fixed';
  startWorker(null);
  if (restartPollS > 0) setInterval(pollHeap, restartPollS * 1000);
  setInterval(renderStatus, 1000);
}

boot();
