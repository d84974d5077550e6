// The SDK's public API is a contract: `public-api.d.ts.txt` holds it, and a change to it is made
// deliberately (`npm run public-api`, then review the diff).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

test('the public API is the checked-in one', () => {
  const done = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', "import { publicApi } from './scripts/public-api.mjs'; process.stdout.write(publicApi());"],
    { encoding: 'utf8' },
  );
  assert.equal(done.status, 0, done.stderr);
  assert.equal(done.stdout, readFileSync('public-api.d.ts.txt', 'utf8'), 'the public API changed: if deliberately, `npm run public-api`');
});
