// The WIT's TypeScript declarations in `wit/` are those of the committed WIT.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

test('wit/ matches the committed WIT', () => {
  const done = spawnSync(process.execPath, ['scripts/wit-types.mjs', '--check'], { encoding: 'utf8' });
  assert.equal(done.status, 0, done.stdout + done.stderr);
});
