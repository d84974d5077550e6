// The graphql-http package's server audit (GraphQL over HTTP) against kith's POST /graphql,
// every request with the bearer token. Prints every result; fails on any error (a MUST) and
// on any warning (a SHOULD). Notices (a MAY) are printed and allowed.
// Usage: node audit.mjs BASE_URL TOKEN
import { auditServer } from 'graphql-http';

const [base, token] = process.argv.slice(2);
if (!base || !token) {
  console.error('usage: node audit.mjs BASE_URL TOKEN');
  process.exit(2);
}

const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

const results = await auditServer({ url: `${base}/graphql`, fetchFn });
const count = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const result of results) {
  count[result.status] += 1;
  const line = `  ${result.status.padEnd(6)} ${result.id} ${result.name}`;
  if (result.status === 'ok') {
    console.log(line);
    continue;
  }
  let body = '';
  try {
    body = (await result.response.text()).slice(0, 300);
  } catch {
    // The audit read the body already.
  }
  console.log(`${line}\n         ${result.reason}${body ? `\n         answered: ${body}` : ''}`);
}
console.log(
  `  ${results.length} audits: ${count.ok} ok, ${count.notice} notices (MAY), ${count.warn} warnings (SHOULD), ${count.error} errors (MUST)`,
);
if (count.warn + count.error > 0) {
  console.error(`graphql-http audit: ${count.error} errors and ${count.warn} warnings`);
  process.exit(1);
}
