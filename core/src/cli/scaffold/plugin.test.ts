import assert from 'node:assert/strict';
import { test } from 'node:test';
import { event } from '@kith/plugin-sdk';
import { TestHost } from '@kith/plugin-sdk/testing';
import plugin from '../src/plugin.js';

test('greets new contacts and counts them', () => {
  const host = new TestHost().grant('kv').setting('greeting', 'Welcome');
  const created = event('contact.created', 'contact', '1', { firstName: 'Ada' });
  host.onEvent(plugin, created);
  host.onEvent(plugin, created);
  assert.equal(host.logs()[0], 'INFO Welcome, Ada!');
  assert.equal(new TextDecoder().decode(host.kv('greeted')), '2');
});
