// relaysim reference client: the app logic, run in a dedicated Worker (like Smesh's app.wasm).
//
// Theory of operation.  The Worker owns the websocket and every cache.  Cached data (events,
// author names, replies, ...) is copied as UTF-8 into the WebAssembly heap (heap.wasm: a bump
// allocator that never frees, the seed's gc_leaking), so every byte the app keeps shows up in
// the heap counters, per allocation site.  The JS Maps below only hold {p, n} references into
// that heap, integer DOM handle ids, and booleans.  The DOM lives on the main thread (host.mjs):
// the Worker asks it to create elements under integer handle ids (the `_elements` table) and to
// release them, one id at a time or in a batch (`releaseAll`).
//
// After every task that allocated, the heap's counter block (bytes 0..576 of the linear memory)
// is mirrored into a SharedArrayBuffer under a seqlock, so the host reads the counters without
// calling into the Worker and without allocating here.  Without cross-origin isolation the host
// asks by postMessage instead (see docs/hooks.md).
//
// Modes: fixed (default) is the seed's remedy; each leak in `leaks` breaks exactly one part of it.

const SITE_NAMES = [
  'events', 'seen events', 'note elements', 'reactions', 'reposts', 'zaps',
  'author names', 'author pics', 'author content', 'embeds', 'reply cache', 'profile wrappers',
  'thread events', 'ws frames', 'idle timer', 'probe', 'map:events', 'map:authors', 'map:embeds',
  'map:replies', 'map:profile wrappers', 'contacts', 'reconnects',
];
const SITE = Object.fromEntries(SITE_NAMES.map((name, i) => [name, i]));
const OVERFLOW_SITE = 63;
const COUNTER_WORDS = 144; // bytes 0..576 of the linear memory: header + 64 site slots
const enc = new TextEncoder();
const dec = new TextDecoder();

let wasm = null;
let memory = null;
let mirror = null; // Int32Array over the SharedArrayBuffer, or null
let mirrorPending = false;
let config = null;
let leaks = new Set();
let ws = null;

// ---------------------------------------------------------------------------------- the heap

function flushMirror() {
  mirrorPending = false;
  if (!mirror) return;
  // Seqlock: odd while writing, so a reader on the main thread retries a torn read.
  Atomics.add(mirror, 0, 1);
  mirror.set(new Int32Array(memory.buffer, 0, COUNTER_WORDS), 1);
  mirror[1 + COUNTER_WORDS] = memory.buffer.byteLength | 0;
  Atomics.add(mirror, 0, 1);
}

function alloc(site, size) {
  const ptr = wasm.malloc(size, site);
  if (ptr === 0 && size > 0) throw new Error('heap exhausted');
  if (!mirrorPending) {
    mirrorPending = true;
    queueMicrotask(flushMirror);
  }
  return ptr >>> 0;
}

function storeBytes(site, bytes) {
  const p = alloc(site, bytes.length);
  new Uint8Array(memory.buffer, p, bytes.length).set(bytes);
  return { p, n: bytes.length };
}

function storeStr(site, text) {
  return storeBytes(site, enc.encode(text));
}

function loadStr(ref) {
  return dec.decode(new Uint8Array(memory.buffer, ref.p, ref.n));
}

function memStats() {
  return {
    totalAlloc: wasm.total_alloc() >>> 0,
    mallocs: wasm.mallocs() >>> 0,
    heapInuse: wasm.heap_inuse() >>> 0,
    sys: wasm.sys() >>> 0,
  };
}

function allocCounters() {
  const out = SITE_NAMES.map((name, site) => ({
    site, name, count: wasm.site_count(site) >>> 0, bytes: wasm.site_bytes(site) >>> 0,
  }));
  const overflow = wasm.site_count(OVERFLOW_SITE) >>> 0;
  if (overflow) out.push({ site: OVERFLOW_SITE, name: 'overflow', count: overflow, bytes: wasm.site_bytes(OVERFLOW_SITE) >>> 0 });
  return out;
}

// ------------------------------------------------------------------------- rotating caches

// A cache group is the seed's "rotating map pair": every map of the group has a current and an
// *Old generation (both start empty, never nil); when the primary map reaches `limit` new keys,
// the group rotates: handles in the old generation that are not in the current one are released
// in one batch, current becomes old, and fresh maps become current.  The table storage for both
// generations is allocated once at startup (site map:<group>) and reused by every rotation.
// With leaks=maps the group is unbounded instead: its table grows by doubling, each growth a new
// allocation on map:<group>, and no key ever leaves.
class CacheGroup {
  constructor(name, limit, entryBytes, mapNames, onRotate = null) {
    this.name = name;
    this.limit = limit;
    this.entryBytes = entryBytes;
    this.mapNames = mapNames;
    this.primary = mapNames[0];
    this.onRotate = onRotate;
    this.site = SITE[`map:${name}`];
    this.cur = this.fresh();
    this.old = this.fresh();
    this.count = 0;
    this.rotations = 0;
    this.bounded = !leaks.has('maps');
    if (this.bounded) {
      alloc(this.site, limit * entryBytes);
      alloc(this.site, limit * entryBytes);
      this.capacity = limit;
    } else {
      this.capacity = 0;
    }
  }

  fresh() {
    return Object.fromEntries(this.mapNames.map((m) => [m, new Map()]));
  }

  get(map, key) {
    const v = this.cur[map].get(key);
    return v !== undefined ? v : this.old[map].get(key);
  }

  has(map, key) {
    return this.cur[map].has(key) || this.old[map].has(key);
  }

  set(map, key, value) {
    const m = this.cur[map];
    if (map === this.primary && !m.has(key)) {
      this.count += 1;
      if (!this.bounded && this.count > this.capacity) {
        this.capacity = Math.max(8, this.capacity * 2);
        alloc(this.site, this.capacity * this.entryBytes);
      }
    }
    m.set(key, value);
    if (this.bounded && this.count >= this.limit) this.rotate();
  }

  rotate() {
    if (this.onRotate) this.onRotate(this.old, this.cur);
    this.old = this.cur;
    this.cur = this.fresh();
    this.count = 0;
    this.rotations += 1;
  }

  clear(map) {
    this.cur[map].clear();
    this.old[map].clear();
  }

  size() {
    return this.cur[this.primary].size + this.old[this.primary].size;
  }
}

let events; let authors; let embeds; let replies; let profiles;
const threadEvents = new Map(); // id -> heap ref; cleared in closeNoteThread (fixed mode)

function setupCaches() {
  events = new CacheGroup('events', 2000, 64,
    ['eventCache', 'seenEvents', 'noteElements', 'noteReactionMap', 'noteRepostCounts', 'noteZapSeen', 'actionFetchedIDs'],
    (old, cur) => {
      const ids = [];
      for (const [id, h] of old.noteElements) if (!cur.noteElements.has(id)) ids.push(h);
      releaseAll(ids);
    });
  authors = new CacheGroup('authors', 500, 64,
    ['authorNames', 'authorPics', 'authorContent', 'authorTs', 'fetchedK0']);
  embeds = new CacheGroup('embeds', 200, 32, ['embedCache', 'embedRequested']);
  replies = new CacheGroup('replies', 500, 64, ['replyCache', 'replyParent']);
  profiles = new CacheGroup('profile wrappers', 10, 32, ['profileWrappers']);
}

// ------------------------------------------------------------------------------ DOM handles

let nextHandle = 1;
const pageHandles = new Set();
// A page shows at most PAGE_CAP elements: live events push the oldest ones off the bottom (and
// their handles are released), so a tab left on the feed for hours keeps a bounded handle table.
let PAGE_CAP = 1000; // ?page_cap=
let pageOrder = []; // handles of this page's top-level elements, top to bottom
const authorHandles = new Map(); // pubkey -> handles showing that author's name (this page)

function post(msg) {
  self.postMessage(msg);
}

function createElement(kind, data, at = 'end') {
  const h = nextHandle++;
  alloc(SITE['note elements'], 16); // the dom.Element wrapper the app keeps per handle
  pageHandles.add(h);
  post({ t: 'el', h, kind, data, at });
  if (at === 'start') {
    pageOrder.unshift(h);
    if (pageOrder.length > PAGE_CAP) {
      const dropped = pageOrder.splice(PAGE_CAP);
      const gone = new Set(dropped);
      for (const [id, eh] of events.cur.noteElements) if (gone.has(eh)) events.cur.noteElements.delete(id);
      for (const [id, eh] of events.old.noteElements) if (gone.has(eh)) events.old.noteElements.delete(id);
      post({ t: 'remove', ids: dropped });
      releaseAll(dropped);
    }
  } else {
    pageOrder.push(h);
  }
  for (const pk of data.pubkeys || []) {
    if (!authorHandles.has(pk)) authorHandles.set(pk, []);
    authorHandles.get(pk).push(h);
  }
  return h;
}

function releaseAll(ids) {
  if (leaks.has('dom') || ids.length === 0) return;
  for (const h of ids) pageHandles.delete(h);
  post({ t: 'release', ids });
}

// ------------------------------------------------------------------------------ websocket

const subs = new Map(); // sub id -> {filters, page, oneShot, collected, eose, resolve, live}
let oneShotSeq = 0;
let connectedResolve = null;
let connected = new Promise((r) => { connectedResolve = r; });

function send(arr) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  const text = JSON.stringify(arr);
  storeStr(SITE['ws frames'], text); // the app builds the frame in its own heap, like the seed
  ws.send(text);
}

function req(id, filters, { page = null, oneShot = false, live = null } = {}) {
  return new Promise((resolve) => {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      resolve([]); // disconnected: the page is loaded again once the socket is back
      return;
    }
    const old = subs.get(id);
    if (old && !old.eose) old.resolve(old.collected);
    subs.set(id, { id, filters, page, oneShot, collected: [], eose: false, resolve, live });
    send(['REQ', id, ...filters]);
    postState();
  });
}

function oneShot(prefix, filters, page) {
  oneShotSeq += 1;
  return req(`${prefix}-${oneShotSeq}`, filters, { page, oneShot: true });
}

function closeSub(id) {
  const s = subs.get(id);
  if (!s) return;
  subs.delete(id);
  send(['CLOSE', id]);
  if (!s.eose) s.resolve(s.collected);
}

function onFrame(text) {
  storeStr(SITE['ws frames'], text); // jsbridge copies every incoming message into the heap
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    return;
  }
  if (!Array.isArray(msg)) return;
  const [type, id, payload] = msg;
  const s = subs.get(id);
  if (type === 'EVENT' && s && payload && typeof payload.id === 'string') {
    if (!s.eose) s.collected.push(payload);
    else if (s.live) s.live(payload, s);
    else ingest(payload);
  } else if (type === 'EOSE' && s && !s.eose) {
    s.eose = true;
    if (s.oneShot) {
      subs.delete(id);
      send(['CLOSE', id]);
      postState();
    }
    s.resolve(s.collected);
  } else if (type === 'CLOSED' && s) {
    subs.delete(id);
    if (!s.eose) s.resolve(s.collected);
    postState();
  }
}

let reconnectDelay = 1000;

// leaks=reconnect: every reconnect attempt keeps its state for good -- the socket and its handlers,
// an 8 KiB receive buffer in the heap (`reconnects` site) and a heap copy of the subscription
// records the dropped connection held -- and after each reconnect the page's subscriptions are sent
// again under new ids once per past attempt, ids the app then forgets: they pile up on the live
// connection, where close_all cannot reach them.  The fixed client keeps nothing per attempt.
const attempts = [];
const RECONNECT_BUFFER = 8192;

function keepAttempt(sock, handlers) {
  const records = [...subs.values()].map((s) => ({ id: s.id, page: s.page, filters: s.filters }));
  attempts.push({ n: attempts.length + 1, sock, handlers, records, buffer: alloc(SITE.reconnects, RECONNECT_BUFFER) });
  storeStr(SITE.reconnects, JSON.stringify(records));
}

function resendPast() {
  const page = [...subs.values()].filter((s) => !s.oneShot && s.page === S.page);
  for (const a of attempts) {
    for (const s of page) {
      const id = `${s.id}~r${a.n}`;
      storeStr(SITE.reconnects, JSON.stringify({ id, filters: s.filters }));
      send(['REQ', id, ...s.filters]);
    }
  }
}

// One socket to the relay on the page's own origin.  When it drops, subscriptions are gone with it:
// pending loads are resolved with what they had, and after reconnecting (1 s, doubling to 30 s)
// the current page is loaded again, as a fresh open of that page.
function connect() {
  const sock = new WebSocket(config.wsUrl);
  ws = sock;
  let opened = false;
  sock.onopen = () => {
    opened = true;
    reconnectDelay = 1000;
    post({ t: 'conns', n: 1 });
    if (connectedResolve) {
      connectedResolve();
      connectedResolve = null;
    } else if (S.page) {
      post({ t: 'status', text: 'reconnected' });
      queue = queue.then(() => switchPage(S.page, S.arg, { push: false }));
      if (leaks.has('reconnect')) queue = queue.then(resendPast);
    }
  };
  sock.onmessage = (e) => onFrame(typeof e.data === 'string' ? e.data : '');
  sock.onclose = () => {
    if (opened) post({ t: 'conns', n: 0 });
    post({ t: 'status', text: `disconnected from relay; retrying in ${reconnectDelay / 1000} s` });
    if (leaks.has('reconnect')) keepAttempt(sock, [sock.onopen, sock.onmessage, sock.onclose]);
    for (const s of subs.values()) if (!s.eose) s.resolve(s.collected);
    subs.clear();
    S.token += 1;
    postState();
    setTimeout(connect, reconnectDelay);
    reconnectDelay = Math.min(30000, reconnectDelay * 2);
  };
}

// ------------------------------------------------------------------------------ event data

function tagValues(ev, name) {
  return (ev.tags || []).filter((t) => t[0] === name && typeof t[1] === 'string').map((t) => t[1]);
}

function rootOf(ev) {
  const es = (ev.tags || []).filter((t) => t[0] === 'e');
  const marked = es.find((t) => t[3] === 'root');
  if (marked) return marked[1];
  return es.length ? es[0][1] : ev.id;
}

function parentOf(ev) {
  const es = (ev.tags || []).filter((t) => t[0] === 'e');
  const reply = es.find((t) => t[3] === 'reply');
  if (reply) return reply[1];
  const root = es.find((t) => t[3] === 'root');
  if (root) return root[1];
  return es.length ? es[es.length - 1][1] : null;
}

// Store an event the first time it is seen; a seen event costs nothing more (no re-copy).
function ingest(ev) {
  if (events.has('seenEvents', ev.id)) return false;
  storeStr(SITE['seen events'], ev.id);
  events.set('seenEvents', ev.id, true);
  events.set('eventCache', ev.id, storeStr(SITE.events, JSON.stringify(ev)));
  if (ev.kind === 0) ingestProfile(ev);
  return true;
}

function loadEvent(id) {
  const ref = events.get('eventCache', id) || embeds.get('embedCache', id) || replies.get('replyCache', id);
  return ref ? JSON.parse(loadStr(ref)) : null;
}

function ingestProfile(ev) {
  const ts = authors.get('authorTs', ev.pubkey);
  if (ts !== undefined && ts >= ev.created_at) return;
  let meta = {};
  try {
    meta = JSON.parse(ev.content) || {};
  } catch {
    meta = {};
  }
  const name = String(meta.display_name || meta.name || '').slice(0, 80);
  authors.set('authorNames', ev.pubkey, storeStr(SITE['author names'], name));
  if (meta.picture) authors.set('authorPics', ev.pubkey, storeStr(SITE['author pics'], String(meta.picture)));
  authors.set('authorContent', ev.pubkey, storeStr(SITE['author content'], ev.content));
  authors.set('authorTs', ev.pubkey, ev.created_at);
  const hs = authorHandles.get(ev.pubkey);
  if (hs && name) for (const h of hs) post({ t: 'upd', h, data: { author: { pubkey: ev.pubkey, name } } });
}

function authorName(pk) {
  const ref = authors.get('authorNames', pk);
  const name = ref ? loadStr(ref) : '';
  return name || `${pk.slice(0, 8)}…`;
}

function authorAbout(pk) {
  const ref = authors.get('authorContent', pk);
  if (!ref) return {};
  try {
    return JSON.parse(loadStr(ref)) || {};
  } catch {
    return {};
  }
}

async function ensureMeta(pubkeys, page) {
  const missing = [...new Set(pubkeys)].filter((pk) => !authors.has('authorNames', pk) && !authors.has('fetchedK0', pk));
  if (!missing.length) return;
  for (const pk of missing) authors.set('fetchedK0', pk, true);
  const evs = await oneShot('meta', [{ kinds: [0], authors: missing }], page);
  for (const ev of evs) ingest(ev);
}

function zapAmountSats(ev) {
  const desc = tagValues(ev, 'description')[0];
  if (desc) {
    try {
      const amount = tagValues(JSON.parse(desc), 'amount')[0];
      if (amount) return Math.floor(Number(amount) / 1000);
    } catch { /* fall through to bolt11 */ }
  }
  const bolt = tagValues(ev, 'bolt11')[0] || '';
  const m = /^lnbc(\d+)([munp]?)1/.exec(bolt);
  if (!m) return 0;
  const mult = { '': 1e8, m: 1e5, u: 1e2, n: 1e-1, p: 1e-4 }[m[2]];
  return Math.floor(Number(m[1]) * mult);
}

function zapSender(ev) {
  const desc = tagValues(ev, 'description')[0];
  if (desc) {
    try {
      return JSON.parse(desc).pubkey || ev.pubkey;
    } catch { /* the receipt's own pubkey then */ }
  }
  return ev.pubkey;
}

// Count reactions, reposts and zaps aimed at `ids` (one-shot `acts`), stored per target note.
async function fetchActs(ids, page) {
  const todo = ids.filter((id) => !events.has('actionFetchedIDs', id));
  if (!todo.length) return;
  for (const id of todo) events.set('actionFetchedIDs', id, true);
  // One filter per kind with its own limit, so thousands of reactions on a viral note cannot use
  // up the relay's default limit before the zaps and reposts are counted.
  const evs = await oneShot('acts', [
    { kinds: [7], '#e': todo, limit: 5000 },
    { kinds: [6], '#e': todo, limit: 1000 },
    { kinds: [9735], '#e': todo, limit: 1000 },
  ], page);
  for (const ev of evs) countAct(ev);
}

function countAct(ev) {
  const target = tagValues(ev, 'e').pop();
  if (!target) return;
  const key = `${target}:${ev.id}`;
  const map = ev.kind === 7 ? 'noteReactionMap' : ev.kind === 6 ? 'noteRepostCounts' : 'noteZapSeen';
  const counts = events.get(map, target) || { n: 0, seen: new Set(), sats: 0 };
  if (counts.seen.has(key)) return;
  counts.seen.add(key);
  counts.n += 1;
  const site = ev.kind === 7 ? SITE.reactions : ev.kind === 6 ? SITE.reposts : SITE.zaps;
  storeStr(site, ev.id);
  if (ev.kind === 9735) counts.sats += zapAmountSats(ev);
  events.set(map, target, counts);
}

function countsOf(id) {
  const r = events.get('noteReactionMap', id);
  const p = events.get('noteRepostCounts', id);
  const z = events.get('noteZapSeen', id);
  return { reactions: r ? r.n : 0, reposts: p ? p.n : 0, zaps: z ? z.n : 0, sats: z ? z.sats : 0 };
}

// ------------------------------------------------------------------------------ rendering

function noteData(ev, extra = {}) {
  const data = {
    id: ev.id, kind: ev.kind, pubkey: ev.pubkey, name: authorName(ev.pubkey),
    created_at: ev.created_at, counts: countsOf(ev.id), pubkeys: [ev.pubkey], ...extra,
  };
  const shown = displayContent(ev.content);
  data.content = shown.text;
  if (shown.quote) data.quote = shown.quote;
  if (ev.kind === 6) {
    let inner = null;
    const innerId = tagValues(ev, 'e')[0];
    if (innerId) inner = loadEvent(innerId);
    if (!inner) {
      try {
        inner = JSON.parse(ev.content);
      } catch {
        inner = null;
      }
      if (inner && inner.id && !embeds.has('embedCache', inner.id)) {
        embeds.set('embedCache', inner.id, storeStr(SITE.embeds, JSON.stringify(inner)));
      }
    }
    if (inner && inner.id) {
      const innerShown = displayContent(inner.content);
      data.repostOf = { id: inner.id, pubkey: inner.pubkey, name: authorName(inner.pubkey), content: innerShown.text, created_at: inner.created_at };
      data.quote = innerShown.quote;
      data.counts = countsOf(inner.id);
      data.pubkeys.push(inner.pubkey);
    }
  }
  const parent = ev.kind === 1 ? parentOf(ev) : null;
  if (parent) {
    const p = loadEvent(parent);
    data.replyTo = p ? { id: parent, name: authorName(p.pubkey) } : { id: parent, name: null };
  }
  return data;
}

function renderNote(ev, at = 'end', extra = {}) {
  const h = createElement('note', noteData(ev, extra), at);
  events.set('noteElements', ev.id, h);
  return h;
}

function targetIds(evs) {
  const ids = [];
  for (const ev of evs) {
    ids.push(ev.id);
    if (ev.kind === 6) {
      const inner = tagValues(ev, 'e')[0];
      if (inner) ids.push(inner);
    }
  }
  return ids;
}

function repostAuthors(evs) {
  const pks = [];
  for (const ev of evs) {
    if (ev.kind === 6) {
      try {
        const inner = JSON.parse(ev.content);
        if (inner && inner.pubkey) pks.push(inner.pubkey);
      } catch { /* no embedded note */ }
    }
  }
  return pks;
}

function newestFirst(a, b) {
  return b.created_at - a.created_at || (a.id < b.id ? -1 : 1);
}

// NIP-27 references in content (nostr:npub1…, nprofile1…, note1…, nevent1…), decoded with a
// minimal bech32 reader (checksum not verified: the relay serves signed data, this is display only).
const BECH32 = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const NOSTR_URI = /nostr:((?:npub|nprofile|note|nevent)1[02-9ac-hj-np-z]+)/g;

function hex(bytes) {
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join('');
}

function decodeNip19(text) {
  const pos = text.lastIndexOf('1');
  const hrp = text.slice(0, pos);
  let acc = 0;
  let bits = 0;
  const bytes = [];
  for (const c of text.slice(pos + 1, -6)) {
    const v = BECH32.indexOf(c);
    if (v < 0) return null;
    acc = ((acc << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((acc >> bits) & 255);
    }
  }
  let value = null;
  if (hrp === 'npub' || hrp === 'note') value = bytes.length === 32 ? hex(bytes) : null;
  else {
    for (let i = 0; i + 1 < bytes.length; i += 2 + bytes[i + 1]) {
      if (bytes[i] === 0 && bytes[i + 1] === 32) value = hex(bytes.slice(i + 2, i + 34));
    }
  }
  if (!value) return null;
  return { type: hrp === 'npub' || hrp === 'nprofile' ? 'pubkey' : 'event', hex: value };
}

function refsOf(content) {
  const pubkeys = [];
  const ids = [];
  for (const m of String(content || '').matchAll(NOSTR_URI)) {
    const d = decodeNip19(m[1]);
    if (d && d.type === 'pubkey') pubkeys.push(d.hex);
    else if (d) ids.push(d.hex);
  }
  return { pubkeys, ids };
}

// Mentions become @name; the first quoted note is shown under the text (embeds cache).
function displayContent(content) {
  let quote = null;
  const text = String(content || '').replace(NOSTR_URI, (whole, code) => {
    const d = decodeNip19(code);
    if (!d) return whole;
    if (d.type === 'pubkey') return `@${authorName(d.hex)}`;
    if (!quote) {
      const q = loadEvent(d.hex);
      if (q) quote = { id: q.id, pubkey: q.pubkey, name: authorName(q.pubkey), content: displayContent(q.content).text };
      return '';
    }
    return whole;
  }).trim();
  return { text, quote };
}

// Fetch what the notes mention: authors' kind 0 and quoted notes (one-shot `emb`, embeds cache).
async function ensureRefs(evs, page) {
  const pubkeys = [];
  const ids = [];
  for (const ev of evs) {
    const r = refsOf(ev.kind === 6 ? '' : ev.content);
    pubkeys.push(...r.pubkeys);
    ids.push(...r.ids);
  }
  const missing = [...new Set(ids)].filter((id) => !loadEvent(id) && !embeds.has('embedRequested', id));
  if (missing.length) {
    for (const id of missing) embeds.set('embedRequested', id, true);
    const got = await oneShot('emb', [{ ids: missing }], page);
    for (const ev of got) {
      if (!embeds.has('embedCache', ev.id)) embeds.set('embedCache', ev.id, storeStr(SITE.embeds, JSON.stringify(ev)));
      pubkeys.push(ev.pubkey);
    }
  }
  return pubkeys;
}

// --------------------------------------------------------------------------------- pages

const S = {
  page: null, arg: null, ready: false, history: [], more: 0, oldest: null,
  viewer: null, follows: [], token: 0, fromThread: null, restoringThread: false, closedAll: false,
};

function postState() {
  post({
    t: 'state',
    state: {
      page: S.page, arg: S.arg, ready: S.ready, subs: [...subs.keys()], more: S.more,
      history: S.history.slice(), viewer: S.viewer,
      caches: {
        events: events ? events.size() : 0, authors: authors ? authors.size() : 0,
        embeds: embeds ? embeds.size() : 0, replies: replies ? replies.size() : 0,
        profileWrappers: profiles ? profiles.size() : 0, threadEvents: threadEvents.size,
      },
      // the limit each group declares (the seed's); with leaks=maps it is declared but not kept
      limits: events ? {
        events: events.limit, authors: authors.limit, embeds: embeds.limit,
        replies: replies.limit, profileWrappers: profiles.limit,
      } : {},
      rotations: events ? {
        events: events.rotations, authors: authors.rotations, embeds: embeds.rotations,
        replies: replies.rotations, profileWrappers: profiles.rotations,
      } : {},
    },
  });
}

function pageFilters(page, arg) {
  if (page === 'feed') {
    if (S.follows.length) return [{ kinds: [1, 6], authors: S.follows, limit: 50 }];
    return [{ kinds: [1, 6], limit: 50 }];
  }
  if (page === 'profile') return [{ kinds: [1, 6], authors: [arg], limit: 50 }];
  return [];
}

function closeNoteThread() {
  if (!leaks.has('thread')) threadEvents.clear();
}

// teardownPage: CLOSE the page's subscriptions and trim its page-local caches (the seed's remedy).
function teardownPage(page) {
  for (const [id, s] of [...subs]) {
    if (s.page !== page) continue;
    if (!leaks.has('subs')) {
      closeSub(id);
    } else {
      // leaks=subs: the page forgets its subscriptions without a CLOSE.  The relay keeps them open
      // (and keeps sending their events, which still cost a frame copy each); close_all cannot
      // close what the app no longer knows about.
      subs.delete(id);
      if (!s.eose) s.resolve(s.collected);
    }
  }
  releaseAll([...pageHandles]);
  pageHandles.clear();
  pageOrder = [];
  events.clear('noteElements');
  authorHandles.clear();
  if (page === 'thread') closeNoteThread();
}

async function switchPage(name, arg, { push = true } = {}) {
  const prev = S.page;
  if (prev) teardownPage(prev);
  if (push && prev) S.history.push({ page: prev, arg: S.arg });
  if (S.history.length > 50) S.history.shift();
  S.restoringThread = false;
  if (name === 'thread' && prev === 'profile' && !push && S.fromThread === arg && leaks.has('thread-profile')) {
    S.restoringThread = true;
  }
  S.fromThread = name === 'profile' && prev === 'thread' ? S.arg : null;
  S.page = name;
  S.arg = arg;
  S.ready = false;
  S.more = 0;
  S.oldest = null;
  S.closedAll = false;
  const token = ++S.token;
  post({ t: 'clear', page: name, arg, more: name === 'feed' || name === 'profile', canBack: S.history.length > 0 });
  postState();
  await LOADERS[name](arg, token);
  if (token === S.token) {
    S.ready = true;
    postState();
  }
  return token === S.token;
}

async function loadNoteList(page, arg, token) {
  const filters = pageFilters(page, arg);
  if (page === 'profile') filters.unshift({ kinds: [0], authors: [arg] });
  const live = (ev) => {
    const fresh = ingest(ev);
    if (!fresh || S.page !== page || token !== S.token || ev.kind === 0) return;
    renderNote(ev, 'start');
  };
  const evs = await req(page, filters, { page, live });
  if (token !== S.token) return;
  for (const ev of evs) ingest(ev);
  const notes = evs.filter((e) => e.kind === 1 || e.kind === 6).sort(newestFirst);
  const mentioned = await ensureRefs(notes, page);
  if (token !== S.token) return;
  await ensureMeta([...notes.map((e) => e.pubkey), ...repostAuthors(notes), ...mentioned], page);
  if (token !== S.token) return;
  if (page === 'profile') {
    const about = authorAbout(arg);
    createElement('profile', {
      pubkey: arg, name: authorName(arg), about: String(about.about || '').slice(0, 500),
      nip05: String(about.nip05 || ''), pubkeys: [arg], self: arg === S.viewer,
    });
  }
  if (!notes.length) createElement('empty', { text: 'No notes yet.' });
  for (const ev of notes) renderNote(ev);
  S.oldest = notes.length ? notes[notes.length - 1].created_at : null;
  await fetchActs(targetIds(notes), page);
  if (token !== S.token) return;
  for (const ev of notes) updateCounts(ev);
}

function updateCounts(ev) {
  const h = events.get('noteElements', ev.id);
  if (!h) return;
  const inner = ev.kind === 6 ? tagValues(ev, 'e')[0] : null;
  post({ t: 'upd', h, data: { counts: countsOf(inner || ev.id) } });
}

async function loadMore(token) {
  if (S.page !== 'feed' && S.page !== 'profile') return;
  if (S.oldest === null) return;
  const page = S.page;
  const filters = pageFilters(page, S.arg).map((f) => ({ ...f, until: S.oldest - 1 }));
  const evs = await oneShot('more', filters, page);
  if (token !== S.token) return;
  for (const ev of evs) ingest(ev);
  const notes = evs.filter((e) => e.kind === 1 || e.kind === 6).sort(newestFirst);
  const mentioned = await ensureRefs(notes, page);
  if (token !== S.token) return;
  await ensureMeta([...notes.map((e) => e.pubkey), ...repostAuthors(notes), ...mentioned], page);
  if (token !== S.token) return;
  if (!notes.length) createElement('empty', { text: 'No older notes.' });
  for (const ev of notes) renderNote(ev);
  if (notes.length) S.oldest = notes[notes.length - 1].created_at;
  S.more += 1;
  await fetchActs(targetIds(notes), page);
  if (token !== S.token) return;
  for (const ev of notes) updateCounts(ev);
}

async function loadNotifications(_arg, token) {
  if (!S.viewer) {
    createElement('empty', { text: 'No viewer: open the app with ?pubkey=<hex> to see notifications.' });
    return;
  }
  const live = (ev) => {
    const fresh = ingest(ev);
    if (fresh && S.page === 'notifications' && token === S.token) renderNotif(ev, 'start');
  };
  const evs = await req('ntf', [{ '#p': [S.viewer], kinds: [1, 6, 7, 9735], limit: 50 }], { page: 'notifications', live });
  if (token !== S.token) return;
  for (const ev of evs) ingest(ev);
  evs.sort(newestFirst);
  const targets = [...new Set(evs.filter((e) => e.kind !== 1).map((e) => tagValues(e, 'e').pop()).filter(Boolean))];
  const missing = targets.filter((id) => !loadEvent(id) && !embeds.has('embedRequested', id));
  if (missing.length) {
    for (const id of missing) embeds.set('embedRequested', id, true);
    const got = await oneShot('emb', [{ ids: missing }], 'notifications');
    if (token !== S.token) return;
    for (const ev of got) {
      if (!embeds.has('embedCache', ev.id)) embeds.set('embedCache', ev.id, storeStr(SITE.embeds, JSON.stringify(ev)));
    }
  }
  const mentioned = await ensureRefs(evs.filter((e) => e.kind === 1), 'notifications');
  if (token !== S.token) return;
  await ensureMeta([...evs.map((e) => (e.kind === 9735 ? zapSender(e) : e.pubkey)), ...mentioned], 'notifications');
  if (token !== S.token) return;
  if (!evs.length) createElement('empty', { text: 'No notifications yet.' });
  for (const ev of evs) renderNotif(ev);
}

function renderNotif(ev, at = 'end') {
  const who = ev.kind === 9735 ? zapSender(ev) : ev.pubkey;
  const targetId = ev.kind === 1 ? ev.id : tagValues(ev, 'e').pop() || null;
  const target = targetId && ev.kind !== 1 ? loadEvent(targetId) : null;
  const shown = displayContent(ev.content);
  const data = {
    id: ev.id, kind: ev.kind, pubkey: who, name: authorName(who), created_at: ev.created_at,
    content: ev.kind === 1 ? shown.text : ev.kind === 7 ? (ev.content || '+') : '',
    quote: ev.kind === 1 ? shown.quote : null, mention: ev.kind === 1 && !parentOf(ev),
    sats: ev.kind === 9735 ? zapAmountSats(ev) : 0, target: targetId,
    targetText: target ? displayContent(target.content).text : '', pubkeys: [who],
  };
  createElement('notif', data, at);
}

async function loadThread(id, token) {
  const known = loadEvent(id);
  const root = known ? rootOf(known) : id;
  const live = (ev) => {
    addThreadEvent(ev, root);
    if (S.page === 'thread' && token === S.token && ev.id !== root) {
      renderNote(ev, 'end', { depth: depthOf(ev, root), inThread: true });
    }
  };
  const ids = root === id ? [root] : [root, id];
  const evs = await req('thread', [{ ids }, { '#e': [root], kinds: [1] }], { page: 'thread', live });
  if (token !== S.token) return;
  for (const ev of evs) addThreadEvent(ev, root);
  // Building the reply tree walks every entry of threadEvents: with leaks=thread those of every
  // thread opened before are still there, so this slice grows with each thread visited.
  alloc(SITE['thread events'], 16 * Math.max(1, threadEvents.size));
  const tree = [...threadEvents.keys()].map((tid) => loadEvent(tid)).filter(Boolean);
  const inThread = tree.filter((ev) => ev.id === root || rootOf(ev) === root);
  const mentioned = await ensureRefs(inThread, 'thread');
  if (token !== S.token) return;
  await ensureMeta([...inThread.map((e) => e.pubkey), ...mentioned], 'thread');
  if (token !== S.token) return;
  const rootEv = inThread.find((e) => e.id === root);
  if (rootEv) renderNote(rootEv, 'end', { depth: 0, inThread: true, focus: rootEv.id === id });
  else createElement('empty', { text: 'The root note of this thread is not on the relay.' });
  const children = new Map();
  for (const ev of inThread) {
    if (ev.id === root) continue;
    const parent = parentOf(ev) || root;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(ev);
  }
  const walk = (pid, depth) => {
    for (const ev of (children.get(pid) || []).sort((a, b) => a.created_at - b.created_at)) {
      renderNote(ev, 'end', { depth, inThread: true, focus: ev.id === id });
      walk(ev.id, depth + 1);
    }
  };
  walk(root, 1);
  S.restoringThread = false;
  await fetchActs(inThread.map((e) => e.id), 'thread');
  if (token !== S.token) return;
  for (const ev of inThread) updateCounts(ev);
}

function depthOf(ev, root) {
  let depth = 1;
  let p = parentOf(ev);
  while (p && p !== root && depth < 20) {
    const pe = loadEvent(p);
    if (!pe) break;
    depth += 1;
    p = parentOf(pe);
  }
  return depth;
}

function addThreadEvent(ev, root) {
  if (ev.id === root) {
    ingest(ev);
  } else if (S.restoringThread || !replies.has('replyCache', ev.id)) {
    // leaks=thread-profile: coming back from a profile opened inside this thread re-copies every
    // reply without looking at replyCache first (and without releasing the old copies).
    replies.set('replyCache', ev.id, storeStr(SITE['reply cache'], JSON.stringify(ev)));
    replies.set('replyParent', ev.id, parentOf(ev));
  }
  if (!threadEvents.has(ev.id)) threadEvents.set(ev.id, true);
}

async function loadProfile(pk, token) {
  if (!profiles.has('profileWrappers', pk)) {
    profiles.set('profileWrappers', pk, storeStr(SITE['profile wrappers'], `profile:${pk}:${'\0'.repeat(180)}`));
  }
  await loadNoteList('profile', pk, token);
}

async function loadFeed(_arg, token) {
  await loadNoteList('feed', null, token);
}

const LOADERS = { feed: loadFeed, notifications: loadNotifications, thread: loadThread, profile: loadProfile };

// ------------------------------------------------------------------------------ commands

async function loadContacts() {
  if (!S.viewer) return;
  const evs = await oneShot('contacts', [{ kinds: [3], authors: [S.viewer], limit: 1 }, { kinds: [0], authors: [S.viewer] }], null);
  const contacts = evs.filter((e) => e.kind === 3).sort(newestFirst)[0];
  for (const ev of evs) if (ev.kind === 0) ingest(ev);
  if (contacts) {
    S.follows = [...new Set(tagValues(contacts, 'p'))].filter((pk) => /^[0-9a-f]{64}$/.test(pk));
    storeStr(SITE.contacts, S.follows.join(','));
  }
}

async function closeAll() {
  const ids = [...subs.keys()];
  S.token += 1; // abandon a page load in flight, so it opens nothing after this
  for (const id of ids) closeSub(id);
  S.closedAll = true;
  S.ready = true;
  postState();
  while (ws && ws.readyState === WebSocket.OPEN && ws.bufferedAmount > 0) {
    await new Promise((r) => setTimeout(r, 5));
  }
  return ids;
}

async function command(cmd, arg) {
  if (cmd === 'back') {
    const prev = S.history.pop();
    if (!prev) return false;
    return switchPage(prev.page, prev.arg, { push: false });
  }
  if (cmd === 'more') {
    const token = S.token;
    S.ready = false;
    postState();
    await loadMore(token);
    if (token === S.token) {
      S.ready = true;
      postState();
    }
    return token === S.token;
  }
  if (cmd === 'feed' || cmd === 'notifications') return switchPage(cmd, null);
  if (cmd === 'thread') return switchPage('thread', arg);
  if (cmd === 'profile') {
    const pk = arg || S.viewer;
    if (!/^[0-9a-f]{64}$/.test(pk || '')) throw new Error('profile needs a pubkey: there is no viewer (open the app with ?pubkey=<hex>)');
    return switchPage('profile', pk);
  }
  throw new Error(`unknown command ${cmd}`);
}

// Probe answers for the host when it cannot read the SharedArrayBuffer (or is told to be costly):
// with costly-probe the answer is built as JSON in the app's heap first, as the seed's
// __moxie_mem_stats does, so each read allocates on the `probe` site.
function answerProbe(what) {
  const value = what === 'mem_stats' ? memStats() : allocCounters();
  if (config.costlyProbe) storeStr(SITE.probe, JSON.stringify(value));
  return value;
}

let queue = Promise.resolve();

async function boot(msg) {
  config = msg.config;
  leaks = new Set(config.leaks);
  if (config.pageCap > 0) PAGE_CAP = config.pageCap;
  const bytes = await (await fetch(new URL('./heap.wasm', import.meta.url))).arrayBuffer();
  const { instance } = await WebAssembly.instantiate(bytes, {});
  wasm = instance.exports;
  memory = wasm.memory;
  if (msg.sab) mirror = new Int32Array(msg.sab);
  setupCaches();
  flushMirror();
  S.viewer = config.viewer;
  if (leaks.has('idle')) {
    // leaks=idle: a "presence" timer that formats 1 KiB into the heap four times a second.
    setInterval(() => storeStr(SITE['idle timer'], 'x'.repeat(1024)), 250);
  }
  connect();
  await connected;
  await loadContacts();
  const restore = msg.restore;
  if (restore && restore.history) S.history = restore.history.slice();
  await switchPage(restore?.page || 'feed', restore?.arg ?? null, { push: false });
  const token = S.token;
  for (let i = 0; i < (restore?.more || 0) && token === S.token; i += 1) await command('more');
  post({ t: 'booted' });
}

self.onmessage = (e) => {
  const msg = e.data;
  if (msg.t === 'init') {
    queue = boot(msg).catch((err) => post({ t: 'error', text: String(err && err.stack || err) }));
  } else if (msg.t === 'cmd') {
    // Navigation commands run one after another, each answered with `done` when its page is ready.
    queue = queue.then(() => command(msg.cmd, msg.arg)).then(
      (ok) => post({ t: 'done', seq: msg.seq, ok }),
      (err) => post({ t: 'done', seq: msg.seq, ok: false, error: String(err) }),
    );
  } else if (msg.t === 'close_all') {
    closeAll().then((ids) => post({ t: 'answer', seq: msg.seq, value: ids }));
  } else if (msg.t === 'probe') {
    post({ t: 'answer', seq: msg.seq, value: answerProbe(msg.what) });
  } else if (msg.t === 'heap') {
    post({ t: 'answer', seq: msg.seq, value: memStats() });
  }
};
