// Opens many GraphQL subscriptions (graphql-ws client over `ws`) and measures, per update,
// the time from the change (the event's `at`, taken in the changing transaction) to its
// arrival here. Prints "ready" once every subscription is acknowledged, then reads the
// number of changes made from stdin and, once that many arrived (at most SECONDS after),
// one JSON line: {"received": n, "p50_ms": …, "p99_ms": …}.
// Usage: node live_subscribers.mjs WS_URL KEY SECONDS PER_CONNECTION ORDER_ID:EVENT_SEQ...
// (run where graphql-ws and ws are installed: bench/run.py installs them under target/bench)
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, key, seconds, perConnection, ...orderIds] = process.argv.slice(2);
const per = Number(perConnection);
const latencies = [];
let acknowledged = 0;
const clients = [];
const pending = [];
for (let i = 0; i < orderIds.length; i += per) {
  const client = createClient({
    url,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${key}` },
    lazy: false,
    keepAlive: 10000,
    retryAttempts: 0,
  });
  clients.push(client);
  for (const pair of orderIds.slice(i, i + per)) {
    // The first message of each subscription is a probe: afterSeq one below the order's
    // current sequence replays its last event, which says the subscription is live.
    const [id, seq] = pair.split(':');
    let first = true;
    pending.push(new Promise((ready) => {
      client.subscribe(
        { query: 'subscription($id: ID!, $after: Int) { orderUpdated(orderId: $id, afterSeq: $after) { seq at } }',
          variables: { id, after: Number(seq) - 1 } },
        {
          next: ({ data, errors }) => {
            if (errors) { console.error(JSON.stringify(errors)); process.exit(1); }
            if (first) { first = false; acknowledged += 1; ready(); return; }
            if (data) latencies.push(Date.now() - Date.parse(data.orderUpdated.at));
          },
          error: (error) => { console.error(JSON.stringify(error)); process.exit(1); },
          complete: () => {},
        },
      );
    }));
  }
}
await Promise.all(pending);
console.log('ready');
const expected = await new Promise((resolve) => {
  let text = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    text += chunk;
    if (text.includes('\n')) resolve(Number(text.trim()));
  });
});
const deadline = Date.now() + Number(seconds) * 1000;
while (latencies.length < expected && Date.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 50));
}
// A moment more, so a change delivered twice would show.
await new Promise((resolve) => setTimeout(resolve, 300));
latencies.sort((a, b) => a - b);
const at = (p) => (latencies.length ? latencies[Math.round((latencies.length - 1) * p)] : null);
console.log(JSON.stringify({ subscriptions: acknowledged, received: latencies.length, p50_ms: at(0.5), p99_ms: at(0.99) }));
await Promise.all(clients.map((c) => c.dispose()));
process.exit(0);
