// @nostr-relay/core (CodyTseng's TypeScript relay library) behind a small `ws` server, for bench/peers.py.
//
// Usage: node nostr_relay_ts.cjs PORT SEED.jsonl   (NODE_PATH = the scratch folder's node_modules)
// Prints "ready PORT" once seed1 is loaded and the port listens.
//
// The library leaves transport to its user: this is the wrapper its README describes (validate each
// message with @nostr-relay/validator, hand it to NostrRelay.handleMessage; handleConnection and
// handleDisconnect around each socket). Storage is @nostr-relay/event-repository-sqlite on an
// in-memory SQLite database (better-sqlite3), like the other in-memory relays of the bench;
// defaultLimit 500 makes its maximum limit 5,000 (it allows 10x the default). seed1 is loaded with
// the repository's own upsert (and deleteByDeletionRequest for kind 5), as its event service
// would store them, without re-checking signatures.
'use strict';
const fs = require('fs');
const { NostrRelay } = require('@nostr-relay/core');
const { EventRepositorySqlite } = require('@nostr-relay/event-repository-sqlite');
const { Validator } = require('@nostr-relay/validator');
const { WebSocketServer } = require('ws');

async function main() {
  const port = Number(process.argv[2]);
  const seedPath = process.argv[3];
  const repository = new EventRepositorySqlite(':memory:', { defaultLimit: 500 });
  await repository.init();
  const db = repository.getDatabase();
  const lines = fs.readFileSync(seedPath, 'utf8').split('\n').filter((l) => l.trim());
  for (const line of lines) {
    const event = JSON.parse(line);
    await repository.upsert(event);
    if (event.kind === 5) await repository.deleteByDeletionRequest(event);
  }
  const relay = new NostrRelay(repository, { logLevel: 3, maxSubscriptionsPerClient: 5000 });
  const validator = new Validator();
  const wss = new WebSocketServer({ host: '127.0.0.1', port, maxPayload: 1 << 20 });
  wss.on('connection', (ws, req) => {
    relay.handleConnection(ws, req.socket.remoteAddress);
    ws.on('message', async (data) => {
      try {
        const message = await validator.validateIncomingMessage(data);
        await relay.handleMessage(ws, message);
      } catch (error) {
        ws.send(JSON.stringify(['NOTICE', String(error && error.message ? error.message : error)]));
      }
    });
    ws.on('close', () => relay.handleDisconnect(ws));
    ws.on('error', () => relay.handleDisconnect(ws));
  });
  wss.on('listening', () => console.log(`ready ${wss.address().port}`));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
