// Opens GraphiQL in headless Chromium (Debian's package, driven by playwright-core), runs
// the pre-filled orders query and prints the result pane as JSON. Every request that is not
// for a loopback address is blocked and reported: the page must work with no internet.
// Usage: node graphiql.mjs URL SCREENSHOT_PATH   (BROWSER_DIR: where playwright-core is installed)
import { launch } from './launch.mjs';

const [url, screenshot] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const external = [];
  const consoleErrors = [];
  page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()); });
  await page.route('**/*', (route) => {
    const host = new URL(route.request().url()).hostname;
    if (['127.0.0.1', 'localhost', '[::1]'].includes(host)) return route.continue();
    external.push(route.request().url());
    return route.abort();
  });
  await page.goto(url);
  await page.waitForSelector('.graphiql-execute-button', { timeout: 30000 });
  await page.click('.graphiql-execute-button');
  // The result pane is a CodeMirror editor that renders only visible lines: read its value.
  const readResult = () => {
    const editor = document.querySelector('.result-window .CodeMirror');
    return editor?.CodeMirror?.getValue() || '';
  };
  await page.waitForFunction(readResult, null, { timeout: 30000 });
  const result = await page.evaluate(readResult);
  await page.screenshot({ path: screenshot });
  console.log(JSON.stringify({ result, external, consoleErrors }));
} finally {
  await browser.close();
}
