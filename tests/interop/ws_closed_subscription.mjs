// CLOSE honoured while live traffic runs, seen from a bare `ws` client (no Nostr library in the
// way to drop late frames). Usage:
//
//   node ws_closed_subscription.mjs ws://127.0.0.1:PORT/ '{"filters": [...], "after_ms": 2000}'
//
// Opens two subscriptions with the same filters: "closed" and "control". After both have seen
// EOSE and "closed" has received at least one live event, it sends CLOSE for "closed" and right
// behind it a REQ "barrier" for an id that does not exist. A relay handles one connection's
// messages in order, so once the barrier's EOSE is back the CLOSE has been handled: frames for
// "closed" between the CLOSE and that EOSE were already in flight (counted as in_flight), frames
// after it break NIP-01. It keeps listening `after_ms` milliseconds; "control" proves traffic
// kept flowing, so zero frames for "closed" means something.

import WebSocket from 'ws'

const url = process.argv[2]
const options = JSON.parse(process.argv[3] || '{}')
const filters = options.filters || [{ limit: 0 }]
const afterMs = options.after_ms || 2000
const timeoutMs = options.timeout_ms || 30000

const summary = {
  url,
  filters,
  eose: {},
  live_before_close: { closed: 0, control: 0 },
  in_flight: { closed: 0, control: 0 },
  after_close: { closed: 0, control: 0 },
  other: [],
}
let phase = 'stored'
const finish = (code) => {
  console.log(JSON.stringify(summary))
  process.exit(code)
}
setTimeout(() => {
  summary.error = `timed out after ${timeoutMs} ms in phase ${phase}`
  finish(1)
}, timeoutMs)

const ws = new WebSocket(url)
ws.on('error', (err) => {
  summary.error = String(err)
  finish(1)
})
ws.on('open', () => {
  ws.send(JSON.stringify(['REQ', 'closed', ...filters]))
  ws.send(JSON.stringify(['REQ', 'control', ...filters]))
})
ws.on('message', (data) => {
  const msg = JSON.parse(data.toString('utf8'))
  const [verb, subId] = msg
  if (verb === 'EOSE') {
    summary.eose[subId] = true
    if (subId === 'barrier') {
      phase = 'after_close'
      setTimeout(() => {
        ws.close()
        finish(0)
      }, afterMs)
    } else if (summary.eose.closed && summary.eose.control && phase === 'stored') {
      phase = 'live'
    }
    return
  }
  if (verb !== 'EVENT') {
    summary.other.push(msg)
    return
  }
  if (phase === 'live') {
    summary.live_before_close[subId] += 1
    if (subId === 'closed') {
      phase = 'in_flight'
      ws.send(JSON.stringify(['CLOSE', 'closed']))
      ws.send(JSON.stringify(['REQ', 'barrier', { ids: ['0'.repeat(64)] }]))
    }
  } else if (phase === 'in_flight') {
    summary.in_flight[subId] += 1
  } else if (phase === 'after_close') {
    summary.after_close[subId] += 1
  }
})
