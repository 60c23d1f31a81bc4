// The graphql-ws npm client against two billing-api processes: subscribe on B to an order,
// change it through A, see the change on B; disconnect, change it three times through A,
// reconnect with afterSeq and collect what arrives. Prints {"first": [...], "resumed": [...]}.
// Usage: node resume.mjs WS_URL_B HTTP_URL_A KEY ORDER_ID
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [wsB, httpA, key, orderId] = process.argv.slice(2);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function change() {
  const response = await fetch(`${httpA}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
    body: JSON.stringify({
      query: 'mutation($id: ID!) { refundOrder(input: { id: $id, amountCents: 100, creditBalance: true }) { id } }',
      variables: { id: orderId },
    }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
}

function listen(afterSeq) {
  const seqs = [];
  const client = createClient({
    url: wsB,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${key}` },
    retryAttempts: 0,
  });
  let failure = null;
  const dispose = client.subscribe(
    {
      query: 'subscription($id: ID!, $after: Int) { orderUpdated(orderId: $id, afterSeq: $after) { seq kind } }',
      variables: { id: orderId, after: afterSeq },
    },
    {
      next: (message) => {
        if (message.errors) failure = message.errors;
        else seqs.push(message.data.orderUpdated.seq);
      },
      error: (error) => {
        failure = error;
      },
      complete: () => {},
    },
  );
  return { seqs, stop: async () => { dispose(); await client.dispose(); if (failure) throw new Error(JSON.stringify(failure)); } };
}

const first = listen(null);
// "From now" starts when B has the subscription: give a loaded machine time for that.
await sleep(1500);
await change();
for (let i = 0; i < 50 && first.seqs.length === 0; i++) await sleep(100);
await sleep(300);
await first.stop();
const last = Math.max(...first.seqs);
for (let i = 0; i < 3; i++) await change();
const resumed = listen(last);
// Wait for the three missed changes (at most 10 s), then a moment more for any repeat.
for (let i = 0; i < 100 && resumed.seqs.length < 3; i++) await sleep(100);
await sleep(300);
await resumed.stop();
console.log(JSON.stringify({ first: first.seqs, resumed: resumed.seqs }));
