// `kith-plugin build` says what is wrong before it builds anything.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

const cli = resolve('bin/kith-plugin.mjs');

function build(files: { [name: string]: string }, ...args: string[]) {
  const folder = mkdtempSync(join(tmpdir(), 'kith-plugin-build-'));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(folder, name), text);
    return spawnSync(process.execPath, [cli, 'build', ...args], { cwd: folder, encoding: 'utf8' });
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

test('a missing manifest', () => {
  const done = build({});
  assert.equal(done.status, 1);
  assert.match(done.stderr, /plugin\.toml is missing/);
});

test('another contract version', () => {
  const done = build({ 'plugin.toml': 'id = "x"\nsdk_version = "1.2.0"\n' });
  assert.equal(done.status, 1);
  assert.match(done.stderr, /set sdk_version = "1\.4\.0"/);
});

test('no plugin module', () => {
  const done = build({ 'plugin.toml': 'id = "x"\nsdk_version = "1.4.0"\n' });
  assert.equal(done.status, 1);
  assert.match(done.stderr, /src\/plugin\.ts is missing/);
});

test('an unknown option', () => {
  const done = build({}, '--fast');
  assert.equal(done.status, 1);
  assert.match(done.stderr, /unknown option --fast/);
});
