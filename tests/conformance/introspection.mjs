// graphql-js against kith: its standard introspection query, with every option on and with its
// defaults, must be answered without errors, and `buildClientSchema` must accept the answer.
// The schema it builds must name the same types as GET /graphql/schema.graphql.
// Usage: node introspection.mjs URL TOKEN (URL is the server's base, http://127.0.0.1:PORT).
import { buildClientSchema, buildSchema, getIntrospectionQuery, printSchema } from 'graphql';

const [base, token] = process.argv.slice(2);
if (!base || !token) {
  console.error('usage: node introspection.mjs BASE_URL TOKEN');
  process.exit(2);
}
const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };

async function introspect(label, options) {
  const query = getIntrospectionQuery(options);
  const response = await fetch(`${base}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query }) });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${label}: HTTP ${response.status}, not JSON: ${text.slice(0, 500)}`);
  }
  if (response.status !== 200 || body.errors) {
    throw new Error(`${label}: HTTP ${response.status}: ${JSON.stringify(body.errors ?? body).slice(0, 1000)}`);
  }
  const schema = buildClientSchema(body.data);
  console.log(`  ${label}: ${Object.keys(schema.getTypeMap()).length} types, buildClientSchema accepted it`);
  return schema;
}

const everything = {
  descriptions: true,
  specifiedByUrl: true,
  directiveIsRepeatable: true,
  schemaDescription: true,
  inputValueDeprecation: true,
};
// `oneOf` exists in graphql-js 16.9 and later.
if (getIntrospectionQuery({ oneOf: true }).includes('isOneOf')) {
  everything.oneOf = true;
} else {
  console.log('  (this graphql-js has no `oneOf` introspection option)');
}
const full = await introspect(`every option on (${Object.keys(everything).join(', ')})`, everything);
await introspect('the defaults', undefined);

for (const name of ['Query', 'Mutation', 'Subscription', 'Contact', 'Donation', 'DonorSummary']) {
  if (!full.getType(name)) {
    throw new Error(`the introspected schema has no type ${name} (is the donors plugin enabled?)`);
  }
}

const sdlResponse = await fetch(`${base}/graphql/schema.graphql`, { headers: { authorization: `Bearer ${token}` } });
if (sdlResponse.status !== 200) {
  throw new Error(`GET /graphql/schema.graphql: HTTP ${sdlResponse.status}: ${await sdlResponse.text()}`);
}
const fromSdl = buildSchema(await sdlResponse.text());
const names = (schema) =>
  Object.keys(schema.getTypeMap())
    .filter((name) => !name.startsWith('__'))
    .sort();
const [a, b] = [names(full), names(fromSdl)];
const onlyIntrospected = a.filter((name) => !b.includes(name));
const onlySdl = b.filter((name) => !a.includes(name));
if (onlyIntrospected.length || onlySdl.length) {
  throw new Error(`introspection and the SDL differ: only introspected ${onlyIntrospected}, only in the SDL ${onlySdl}`);
}
if (printSchema(full).length === 0) {
  throw new Error('printSchema printed nothing');
}
console.log(`  GET /graphql/schema.graphql names the same ${b.length} types`);
