// GraphiQL runs a subscription: headless Chromium opens /graphiql, replaces the query with
// an `orderUpdated` subscription, runs it, then this script changes the order over HTTP
// (beside the page, as another client would) and waits for the change in the result pane.
// Prints the result pane as JSON.
// Usage: node graphiql_live.mjs BASE_URL KEY ORDER_ID SCREENSHOT_PATH   (BROWSER_DIR as graphiql.mjs)
import { launch } from './launch.mjs';

const [base, key, orderId, screenshot] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const consoleErrors = [];
  page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()); });
  page.on('response', (r) => { if (r.status() >= 400) consoleErrors.push(`${r.status()} ${r.url()}`); });
  await page.goto(`${base}/graphiql`);
  await page.waitForSelector('.graphiql-execute-button', { timeout: 30000 });
  // From the order's sequence number now: a change made while the subscription starts
  // (a slow machine) is still delivered.
  const before = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
    body: JSON.stringify({ query: `{ order(id: "${orderId}") { eventSeq } }` }),
  }).then((r) => r.json());
  const afterSeq = before.data.order.eventSeq;
  const query = `subscription Live { orderUpdated(orderId: "${orderId}", afterSeq: ${afterSeq}) { seq kind order { status } } }`;
  await page.evaluate((text) => {
    document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(text);
  }, query);
  // Let GraphiQL see the new document (it picks the operation to run from it).
  await page.waitForTimeout(700);
  await page.click('.graphiql-execute-button');
  await page.waitForTimeout(1500);
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
    body: JSON.stringify({ query: `mutation { cancelOrder(input: { id: "${orderId}" }) { status } }` }),
  });
  const changed = await response.json();
  const readResult = () => document.querySelector('.result-window .CodeMirror')?.CodeMirror?.getValue() || '';
  await page.waitForFunction((f) => new Function(`return (${f})()`)().includes('cancelled'), readResult.toString(), { timeout: 15000 })
    .catch(() => {});
  const result = await page.evaluate(readResult);
  await page.screenshot({ path: screenshot });
  console.log(JSON.stringify({ result, changed, consoleErrors }));
} finally {
  await browser.close();
}
