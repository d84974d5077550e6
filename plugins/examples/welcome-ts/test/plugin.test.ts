// The welcome plugin's unit tests, against the SDK's in-memory test host (the Rust plugin's
// tests, in TypeScript): `npm test`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostError, OperationError, createChange, event, type Fields } from '@kith/plugin-sdk';
import { TestHost } from '@kith/plugin-sdk/testing';
import welcome, { dueInThreeDays } from '../src/plugin.js';

function created(host: TestHost, fields: Fields) {
  return event('contact.created', 'contact', host.insert('contact', fields), fields);
}

test('a new contact gets a welcome task for its owner', () => {
  const host = new TestHost().grant('activities:write').own('greeting').at('2026-02-27T09:30:00.000000Z');
  const contact = created(host, { firstName: 'Ada', lastName: 'Lovelace', ownerId: 'u-1' });
  host.onEvent(welcome, contact);
  // A redelivered event greets nobody twice.
  host.onEvent(welcome, contact);
  const tasks = host.records('activity');
  assert.equal(tasks.length, 1);
  const greetings = host.records('greeting');
  assert.equal(greetings.length, 1);
  assert.equal(greetings[0].fields.taskId, tasks[0].id);
  assert.equal(tasks[0].fields.kind, 'TASK');
  assert.equal(tasks[0].fields.subject, 'Welcome Ada Lovelace');
  assert.equal(tasks[0].fields.ownerId, 'u-1');
  assert.equal(tasks[0].fields.contactId, contact.recordId);
  assert.equal(tasks[0].fields.dueAt, '2026-03-02T09:30:00.000000Z');
  assert.equal(host.logs().length, 1);
});

test('the subject comes from the settings', () => {
  const host = new TestHost().grant('activities:write').own('greeting').setting('task_subject', 'Call {name}');
  host.onEvent(welcome, created(host, { email: 'grace@example.org' }));
  assert.equal(host.records('activity')[0].fields.subject, 'Call grace@example.org');
});

test('without the grant the task is refused and the event fails', () => {
  const host = new TestHost().own('greeting');
  assert.throws(
    () => host.onEvent(welcome, created(host, { firstName: 'Ada' })),
    (err) => err instanceof HostError && err.code === 'denied',
  );
  assert.deepEqual(host.records('activity'), []);
  assert.deepEqual(host.denied(), ['activities:write']);
});

test('other events are ignored', () => {
  const host = new TestHost();
  host.onEvent(welcome, event('contact.updated', 'contact', 'x', {}));
  assert.deepEqual(host.records('activity'), []);
});

test('blocklisted domains are refused ignoring case', () => {
  const host = new TestHost().setting('blocked_domains', ['Mailinator.com', '@spam.test']);
  assert.deepEqual(host.beforeWrite(welcome, createChange('contact', { email: 'x@MAILINATOR.com' })), {
    kind: 'deny',
    reason: 'e-mail addresses at mailinator.com are not accepted',
  });
  assert.equal(host.beforeWrite(welcome, createChange('contact', { email: 'y@spam.test' })).kind, 'deny');
  assert.deepEqual(host.beforeWrite(welcome, createChange('contact', { email: 'ada@example.org' })), { kind: 'allow' });
  assert.deepEqual(host.beforeWrite(welcome, createChange('contact', { firstName: 'No mail' })), { kind: 'allow' });
});

test('welcomeStatus is computed for a page at once', () => {
  const host = new TestHost().grant('activities:write').own('greeting');
  const greeted = created(host, { firstName: 'Ada' });
  host.onEvent(welcome, greeted);
  const other = host.insert('contact', { firstName: 'Grace' });
  assert.deepEqual(host.computeField(welcome, 'contact', 'welcomeStatus', [greeted.recordId!, other]), ['GREETED', 'PENDING']);
});

test('greetingStats count per month', () => {
  const host = new TestHost().own('greeting');
  host.insert('greeting', { contactId: 'a', createdAt: '2026-01-05T10:00:00.000000Z' });
  host.insert('greeting', { contactId: 'b', createdAt: '2026-01-20T10:00:00.000000Z' });
  host.insert('greeting', { contactId: 'c', createdAt: '2026-03-01T10:00:00.000000Z' });
  const stats = host.call(welcome, 'greetingStats', { since: null }) as Fields;
  assert.equal(stats.total, 3);
  assert.deepEqual(stats.byMonth, [
    { month: '2026-01-01', greetings: 2 },
    { month: '2026-03-01', greetings: 1 },
  ]);
  assert.equal(stats.lastAt, '2026-03-01T10:00:00.000000Z');
  assert.equal((host.call(welcome, 'greetingStats', { since: '2026-02-01' }) as Fields).total, 1);
});

test('greetAgain names a missing contact', () => {
  const host = new TestHost().grant('contacts:read').grant('activities:write');
  assert.throws(
    () => host.call(welcome, 'greetAgain', { contactId: 'nope' }, true),
    (err) => err instanceof OperationError && err.code === 'invalid-input' && err.field === 'contactId',
  );
  const id = host.insert('contact', { firstName: 'Ada' });
  const done = host.call(welcome, 'greetAgain', { contactId: id, subject: 'Hi {name}' }, true) as Fields;
  assert.equal(done.subject, 'Hi Ada');
  assert.equal(host.records('activity').length, 1);
});

test('a query may not write: greetAgain called as one is refused', () => {
  const host = new TestHost().grant('contacts:read').grant('activities:write');
  const id = host.insert('contact', { firstName: 'Ada' });
  assert.throws(
    () => host.call(welcome, 'greetAgain', { contactId: id }, false),
    (err) => err instanceof OperationError && err.code === 'unavailable',
  );
});

test('the digest counts yesterday once', () => {
  const host = new TestHost().own('greeting').own('welcomeDigest').at('2026-03-02T00:05:00.000000Z');
  host.insert('greeting', { contactId: 'a', createdAt: '2026-03-01T10:00:00.000000Z' });
  host.insert('greeting', { contactId: 'b', createdAt: '2026-02-28T23:59:00.000000Z' });
  host.runJob(welcome, 'digest');
  host.runJob(welcome, 'digest');
  const digests = host.records('welcomeDigest');
  assert.equal(digests.length, 1);
  assert.equal(digests[0].fields.day, '2026-03-01');
  assert.equal(digests[0].fields.greetings, 1);
});

test('due dates roll over months and leap years', () => {
  assert.equal(dueInThreeDays('2024-02-27T00:00:00.000000Z'), '2024-03-01T00:00:00.000000Z');
  assert.equal(dueInThreeDays('2026-12-30T23:59:59.999999Z'), '2027-01-02T23:59:59.999999Z');
});
