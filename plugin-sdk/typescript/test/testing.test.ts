// The test host checks what Kith checks (grants, read-only contexts, kv limits, HTTP origins,
// versions) and delivers as Kith does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BatchFailure,
  HostError,
  HttpResponse,
  OperationError,
  allow,
  createChange,
  definePlugin,
  deny,
  desc,
  event,
  field,
  http,
  kv,
  modify,
  records,
  str,
  type ErrorCode,
} from '../src/index.js';
import { TestHost, originOf } from '../src/testing.js';

const code = (expected: ErrorCode) => (err: unknown) => (err instanceof HostError || err instanceof OperationError) && err.code === expected;

/** Writes in every extension point, to see where the host refuses. */
const writer = definePlugin({
  onEvent(e) {
    if (e.object === 'ticket') throw new Error('no tickets');
    records.create('note', { text: e.kind });
  },
  beforeWrite() {
    kv.set('seen', '1');
    return allow();
  },
  computeField(_object, _field, ids) {
    records.create('note', { text: 'computed' });
    return ids;
  },
  call(call) {
    if (call.name === 'fail') throw new Error('broken');
    return records.create('note', { text: str(call.arguments, 'text') ?? null }).id;
  },
});

test('writes are unavailable where Kith refuses them', () => {
  const host = new TestHost().own('note').grant('kv');
  assert.equal(host.call(writer, 'note', { text: 'hi' }, true), host.records('note')[0].id);
  assert.throws(() => host.call(writer, 'note', { text: 'hi' }), code('unavailable'));
  assert.throws(() => host.beforeWrite(writer, createChange('contact', {})), code('unavailable'));
  assert.throws(() => host.computeField(writer, 'contact', 'x', ['a']), code('unavailable'));
  assert.equal(host.records('note').length, 1);
});

test('an unexpected error is an internal operation error', () => {
  assert.throws(
    () => new TestHost().call(writer, 'fail', {}, true),
    (err) => err instanceof OperationError && err.code === 'internal' && err.message.includes('broken'),
  );
});

test('a batch failure names the event and keeps the ones before', () => {
  const host = new TestHost().own('note');
  assert.throws(
    () => host.onEvents(writer, [event('contact.created', 'contact', '1', {}), event('ticket.created', 'ticket', '2', {})]),
    (err) => err instanceof BatchFailure && err.index === 1,
  );
  assert.deepEqual(host.records('note').map((n) => n.fields.text), ['contact.created']);
});

test('grants and objects are checked', () => {
  const host = new TestHost().foreign('donors', 'donation', 'donations');
  host.run(() => {
    assert.throws(() => records.get('contact', 'x'), code('denied'));
    assert.throws(() => records.create('deal', {}), code('denied'));
    assert.throws(() => records.query('donation'), code('denied'));
    assert.throws(() => kv.get('k'), code('denied'));
    assert.throws(() => records.get('nonsense', 'x'), code('invalid-input'));
  });
  assert.deepEqual(host.denied(), ['contacts:read', 'deals:write', 'donors/donations:read', 'kv']);
  host.grant('donors/donations:read');
  host.run(() => assert.throws(() => records.create('donation', {}), code('invalid-input')));
});

test('updates bump versions and check the expected one', () => {
  const host = new TestHost().own('note').at('2026-05-01T00:00:00.000000Z');
  const note = host.run(() => {
    const note = records.create('note', { text: 'a' });
    assert.deepEqual([note.version, note.fields.createdAt], [1, '2026-05-01T00:00:00.000000Z']);
    assert.equal(records.update('note', note.id, { text: 'b' }, 1).version, 2);
    assert.throws(() => records.update('note', note.id, { text: 'c' }, 1), code('conflict'));
    assert.throws(() => records.update('note', 'missing', {}), code('not-found'));
    return note;
  });
  assert.equal(host.record('note', note.id)?.fields.text, 'b');
});

test('pages follow cursors', () => {
  const host = new TestHost().own('note');
  for (let n = 0; n < 5; n++) host.insert('note', { n });
  host.run(() => {
    assert.deepEqual([...records.queryAll('note', field('n').gte(1), [desc('n')])].map((r) => r.fields.n), [4, 3, 2, 1]);
    const page = records.query('note', undefined, undefined, 2);
    assert.deepEqual([page.records.length, page.nextCursor], [2, '2']);
    assert.throws(() => records.query('note', undefined, undefined, 0), code('invalid-input'));
    assert.throws(() => records.query('note', { n: { contains: 1 } }), code('invalid-input'));
  });
});

test('kv limits', () => {
  const host = new TestHost().grant('kv');
  host.run(() => {
    kv.setJson('k', { a: 1 });
    assert.deepEqual(kv.getJson('k'), { a: 1 });
    assert.deepEqual(kv.keys('k'), ['k']);
    assert.equal(kv.remove('k'), true);
    assert.equal(kv.remove('k'), false);
    assert.throws(() => kv.set('', ''), code('invalid-input'));
    assert.throws(() => kv.set('k'.repeat(257), ''), code('invalid-input'));
    assert.throws(() => kv.set('k', new Uint8Array(65537)), code('limit-exceeded'));
  });
  assert.equal(host.kv('k'), undefined);
});

test('HTTP reaches granted origins only', () => {
  const host = new TestHost().grant('http:https://api.example.org').grant('http:setting:base').setting('base', 'https://crm.example.net/x');
  host.httpStub('https://api.example.org/a', HttpResponse.text(200, '{"ok": true}'));
  host.httpStub('https://crm.example.net/b', new HttpResponse(201));
  host.run(() => {
    assert.deepEqual(http.get('https://api.example.org/a').json(), { ok: true });
    assert.equal(http.postJson('https://crm.example.net/b', { x: 1 }).status, 201);
    assert.throws(() => http.get('https://evil.example.com/'), code('denied'));
    assert.throws(() => http.get('https://api.example.org/unstubbed'), code('unavailable'));
  });
  assert.deepEqual(host.denied(), ['http:https://evil.example.com']);
  const sent = host.httpRequests()[1];
  assert.equal(sent.method, 'POST');
  assert.deepEqual(JSON.parse(new TextDecoder().decode(sent.body)), { x: 1 });
  assert.equal(originOf('HTTPS://API.example.org:443/p'), 'https://api.example.org');
  assert.equal(originOf('http://h:8080/'), 'http://h:8080');
  assert.equal(originOf('ftp://h/'), undefined);
});

test('verdicts', () => {
  const gate = definePlugin({
    beforeWrite(change) {
      if (change.operation === 'delete') return deny('kept');
      return modify({ email: (str(change.after, 'email') ?? '').toLowerCase() });
    },
  });
  const host = new TestHost();
  assert.deepEqual(host.beforeWrite(gate, createChange('contact', { email: 'A@B' })), { kind: 'modify', fields: { email: 'a@b' } });
  assert.deepEqual(host.beforeWrite(gate, { ...createChange('contact', {}), operation: 'delete' }), { kind: 'deny', reason: 'kept' });
});

test('a plugin declares only what it handles', () => {
  const host = new TestHost();
  const empty = definePlugin({});
  assert.deepEqual(host.beforeWrite(empty, createChange('contact', {})), { kind: 'allow' });
  assert.throws(() => host.call(empty, 'nope'), code('internal'));
  assert.throws(() => host.computeField(empty, 'contact', 'x', []), code('internal'));
  assert.throws(() => host.runJob(empty, 'x'), code('internal'));
});

test('host calls outside a component or test host say what to do', () => {
  assert.throws(() => records.get('contact', 'x'), /TestHost/);
});
