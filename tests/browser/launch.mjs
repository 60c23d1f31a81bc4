// Headless Chromium (Debian's package) driven by playwright-core from BROWSER_DIR, with the
// flags that keep it off the network; shared by the browser scripts.
import { createRequire } from 'node:module';

export async function launch() {
  const require = createRequire(`${process.env.BROWSER_DIR}/`);
  const { chromium } = require('playwright-core');
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
           '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
}
