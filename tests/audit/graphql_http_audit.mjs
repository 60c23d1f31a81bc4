// Runs the GraphQL-over-HTTP server audits of the `graphql-http` package against a live
// server and prints one JSON line per audit. Usage: node graphql_http_audit.mjs URL KEY
// AUDIT_DIR names the directory where graphql-http is installed.
import { createRequire } from 'node:module';

const [url, key] = process.argv.slice(2);
const require = createRequire(`${process.env.AUDIT_DIR}/`);
const { serverAudits } = require('graphql-http');

const fetchWithKey = (input, init = {}) =>
  fetch(input, { ...init, headers: { ...(init.headers || {}), authorization: `Bearer ${key}` } });

for (const audit of serverAudits({ url, fetchFn: fetchWithKey })) {
  const result = await audit.fn();
  console.log(JSON.stringify({ id: result.id, name: result.name, status: result.status, reason: result.reason }));
}
