// A real Nostr client written elsewhere (nbd-wtf/nostr-tools, under Node with the `ws` package)
// run against relaysim's relay. Usage:
//
//   node nostr_tools_client.mjs ws://127.0.0.1:PORT/ '{"filters": [{...}], "live_ms": 0, "publish": true}'
//
// It subscribes to `filters`, collects the stored events until EOSE, checks each one with
// nostr-tools' own verifyEvent on a FRESHLY parsed copy (verifyEvent caches its verdict on the
// object it is given), keeps the subscription open `live_ms` more milliseconds to collect live
// traffic, checks replies with nip10.parse and zap receipts with nip57 + light-bolt11-decoder,
// then publishes a new event signed by a fresh key, waits for OK and fetches it back both with a
// new subscription and with SimplePool.querySync. It prints one JSON summary on stdout; the
// Python test asserts on it. Exit code 0 when the run completed (whatever it found), 1 on a
// crash or timeout (the summary then has "error").

import { readFileSync } from 'node:fs'
import WebSocket from 'ws'
import bolt11 from 'light-bolt11-decoder'
import { finalizeEvent, generateSecretKey, getPublicKey, verifyEvent } from 'nostr-tools/pure'
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay'
import { SimplePool, useWebSocketImplementation as usePoolWebSocket } from 'nostr-tools/pool'
import { matchFilters } from 'nostr-tools/filter'
import * as nip10 from 'nostr-tools/nip10'
import * as nip57 from 'nostr-tools/nip57'

const version = JSON.parse(
  readFileSync(new URL('./node_modules/nostr-tools/package.json', import.meta.url), 'utf8'),
).version

// Count every EVENT frame per subscription id before nostr-tools filters anything, so a relay
// that sends events a subscription did not ask for is caught (nostr-tools would drop them).
const rawEventFrames = new Map()
class CountingWebSocket extends WebSocket {
  constructor(...args) {
    super(...args)
    this.addEventListener('message', (msg) => {
      const text = typeof msg.data === 'string' ? msg.data : msg.data.toString('utf8')
      if (text.startsWith('["EVENT"')) {
        const subId = JSON.parse(text)[1]
        rawEventFrames.set(subId, (rawEventFrames.get(subId) || 0) + 1)
      }
    })
  }
}
// relay.js and pool.js each keep their own WebSocket class (Node 20 has no global one).
useWebSocketImplementation(CountingWebSocket)
usePoolWebSocket(WebSocket)

const url = process.argv[2]
const options = JSON.parse(process.argv[3] || '{}')
const filters = options.filters || [{ limit: 50 }]
const liveMs = options.live_ms || 0
const timeoutMs = options.timeout_ms || 30000
const summary = { nostr_tools_version: version, url, filters }

const timer = setTimeout(() => {
  summary.error = `timed out after ${timeoutMs} ms`
  console.log(JSON.stringify(summary))
  process.exit(1)
}, timeoutMs)

function fresh(event) {
  // A new object from the wire form: verifyEvent must not see a cached verdict.
  return JSON.parse(JSON.stringify(event))
}

function newTally() {
  return { received: 0, verified: 0, invalid: [], matched_filter: 0, kinds: {}, ids: [], created_at: [] }
}

function record(tally, event) {
  const copy = fresh(event)
  tally.received += 1
  if (verifyEvent(copy)) tally.verified += 1
  else tally.invalid.push(copy.id)
  if (matchFilters(filters, copy)) tally.matched_filter += 1
  tally.kinds[copy.kind] = (tally.kinds[copy.kind] || 0) + 1
  tally.ids.push(copy.id)
  tally.created_at.push(copy.created_at)
  checkStructure(copy)
}

const replies = { checked: 0, with_root: 0 }
const zaps = { checked: 0, request_valid: 0, amount_matches: 0, sats: 0 }

function checkStructure(event) {
  if (event.kind === 1 && event.tags.some((t) => t[0] === 'e')) {
    replies.checked += 1
    const thread = nip10.parse(event)
    if (thread.root && thread.root.id) replies.with_root += 1
  }
  if (event.kind === 9735) {
    zaps.checked += 1
    const description = event.tags.find((t) => t[0] === 'description')?.[1]
    const invoice = event.tags.find((t) => t[0] === 'bolt11')?.[1]
    if (!description || !invoice) return
    const request = JSON.parse(description)
    if (nip57.validateZapRequest(description) === null && verifyEvent(request)) zaps.request_valid += 1
    const amountTag = request.tags.find((t) => t[0] === 'amount')?.[1]
    const decoded = bolt11.decode(invoice)
    const section = decoded.sections.find((s) => s.name === 'amount')
    const sats = nip57.getSatoshisAmountFromBolt11(invoice)
    if (section && section.value === amountTag && sats * 1000 === Number(amountTag)) zaps.amount_matches += 1
    zaps.sats += sats
  }
}

function subscribeOnce(relay, filters) {
  // Resolves with the events stored for `filters` once EOSE arrives, and closes the subscription.
  return new Promise((resolve) => {
    const events = []
    const sub = relay.subscribe(filters, {
      onevent: (event) => events.push(event),
      oneose: () => {
        sub.close()
        resolve(events)
      },
    })
  })
}

try {
  const relay = await Relay.connect(url)
  summary.connected = relay.connected

  // 1. Stored events until EOSE, then live ones on the same subscription.
  const stored = newTally()
  const live = newTally()
  let eoseAt = null
  const started = Date.now()
  await new Promise((resolve) => {
    const sub = relay.subscribe(filters, {
      id: 'interop-main',
      onevent: (event) => record(eoseAt === null ? stored : live, event),
      oneose: () => {
        eoseAt = Date.now()
        summary.eose = true
        summary.eose_ms = eoseAt - started
        setTimeout(() => {
          sub.close()
          resolve()
        }, liveMs)
      },
    })
  })
  summary.raw_event_frames = rawEventFrames.get('interop-main') || 0
  summary.stored = stored
  summary.live = live
  summary.stored_newest_first = stored.created_at.every((t, i, all) => i === 0 || all[i - 1] >= t)
  summary.replies = replies
  summary.zaps = zaps

  // 2. Publish a new event signed by a fresh key; a live subscription on that author gets it.
  if (options.publish !== false) {
    const secret = generateSecretKey()
    const pubkey = getPublicKey(secret)
    const liveCopy = new Promise((resolve) => {
      const sub = relay.subscribe([{ authors: [pubkey] }], {
        onevent: (event) => {
          sub.close()
          resolve(fresh(event))
        },
        oneose: () => {},
      })
    })
    const event = finalizeEvent(
      {
        kind: 1,
        created_at: Math.floor(Date.now() / 1000),
        tags: [['t', 'relaysim-interop']],
        content: `hello from nostr-tools ${version} ✓`,
      },
      secret,
    )
    summary.publish = { id: event.id, pubkey }
    try {
      summary.publish.message = await relay.publish(event)
      summary.publish.ok = true
    } catch (err) {
      summary.publish.ok = false
      summary.publish.message = String(err && err.message ? err.message : err)
    }
    const delivered = await liveCopy
    summary.publish.live_delivery = delivered.id === event.id && verifyEvent(delivered)

    // A tampered copy (content changed after signing) must be refused with an invalid: reason.
    const tampered = { ...fresh(event), content: `${event.content} (tampered)` }
    try {
      await relay.publish(tampered)
      summary.tampered = { ok: true }
    } catch (err) {
      summary.tampered = { ok: false, message: String(err && err.message ? err.message : err) }
    }

    // 3. Fetch it back: a new REQ by id on the same connection, and through SimplePool.
    const byId = await subscribeOnce(relay, [{ ids: [event.id] }])
    summary.fetched_back = byId.length === 1 && byId[0].id === event.id && verifyEvent(fresh(byId[0]))
    const pool = new SimplePool()
    const pooled = await pool.querySync([url], { ids: [event.id] })
    const fields = ['id', 'pubkey', 'created_at', 'kind', 'tags', 'content', 'sig']
    const same = (a, b) => fields.every((f) => JSON.stringify(a[f]) === JSON.stringify(b[f]))
    summary.pool_fetched_back = pooled.length === 1 && same(fresh(pooled[0]), fresh(event))
    pool.close([url])
  }

  relay.close()
  summary.done = true
} catch (err) {
  summary.error = String(err && err.stack ? err.stack : err)
}
clearTimeout(timer)
console.log(JSON.stringify(summary))
process.exit(summary.error ? 1 : 0)
