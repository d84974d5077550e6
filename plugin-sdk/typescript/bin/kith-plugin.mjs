#!/usr/bin/env node
// `kith-plugin build`: type-checks the plugin project in the current folder (tsc), bundles
// `src/plugin.ts` with the SDK's component glue (esbuild) and makes `plugin.wasm` with
// componentize-js against the `kith:plugin` WIT this SDK belongs to (the committed
// `schemas/wit/v1.4.0` of its Kith checkout, or $KITH_WIT), world `plugin`, with the engine's
// `http` and `fetch-event` features off (Kith gives plugins `kith:plugin/http`, not `wasi:http`).
// `kith plugin install .` then takes the folder as it is.
//
// `kith-plugin test`: type-checks, bundles each `test/**/*.test.ts` for Node and runs them with
// `node --test`. `--sdk` runs the SDK's own tests (from its folder).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const WIT_VERSION = '1.4.0';
const sdk = resolve(dirname(fileURLToPath(import.meta.url)), '..');
function fail(message) {
  console.error(`kith-plugin: ${message}`);
  process.exit(1);
}

/** The folder of package `name` installed for `from` or a folder above it. */
function packageDir(name, from) {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * A toolchain module's file: `name`'s ES entry (or `file` inside it), from the project's own
 * packages (its devDependencies pin the toolchain), else the SDK's.
 */
function tool(name, file) {
  const dir = packageDir(name, process.cwd()) ?? packageDir(name, sdk);
  if (dir === undefined) fail(`${name} is not installed: run \`npm install\` (the project's package.json lists the toolchain)`);
  if (file) return join(dir, file);
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const root = typeof manifest.exports === 'object' && manifest.exports !== null ? (manifest.exports['.'] ?? manifest.exports) : undefined;
  const entry = typeof root === 'string' ? root : (root?.import ?? root?.default ?? root?.node ?? manifest.module ?? manifest.main ?? 'index.js');
  return pathToFileURL(join(dir, typeof entry === 'string' ? entry : entry.default)).href;
}

function witDir() {
  return process.env.KITH_WIT ? resolve(process.env.KITH_WIT) : resolve(sdk, '../../schemas/wit', `v${WIT_VERSION}`);
}

/** plugin.toml exists and names the contract version this build produces. */
function checkManifest(project) {
  const path = join(project, 'plugin.toml');
  if (!existsSync(path)) fail(`${path} is missing: a plugin folder holds its manifest`);
  const declared = /^sdk_version\s*=\s*"([^"]*)"/m.exec(readFileSync(path, 'utf8'))?.[1];
  if (declared !== WIT_VERSION) {
    fail(`${path}: sdk_version = "${declared}", but this SDK builds against kith:plugin@${WIT_VERSION}: set sdk_version = "${WIT_VERSION}"`);
  }
}

/** tsc over the project (its tsconfig.json). */
function typeCheck(project) {
  const tsc = tool('typescript', 'bin/tsc');
  const done = spawnSync(process.execPath, [tsc, '-p', project, '--noEmit'], { stdio: 'inherit' });
  if (done.status !== 0) fail('the TypeScript does not type-check (see above)');
}

async function bundle(options) {
  const esbuild = await import(tool('esbuild'));
  try {
    await esbuild.build({ bundle: true, format: 'esm', logLevel: 'warning', ...options });
  } catch {
    fail('bundling failed (see above)');
  }
}

async function build(project, args) {
  checkManifest(project);
  const entry = args.entry ?? 'src/plugin.ts';
  if (!existsSync(join(project, entry))) fail(`${join(project, entry)} is missing (the plugin: \`export default definePlugin({...})\`)`);
  const wit = witDir();
  if (!existsSync(join(wit, 'plugin.wit'))) fail(`no kith:plugin WIT at ${wit}: set KITH_WIT to its folder`);
  if (!args.noCheck) typeCheck(project);
  const out = join(project, 'build');
  mkdirSync(out, { recursive: true });
  const bundled = join(out, 'plugin.js');
  await bundle({
    stdin: {
      contents: [
        `import plugin from './${entry.replace(/\\/g, '/')}';`,
        `import { exportPlugin } from '@kith/plugin-sdk/component';`,
        `export const { onEvent, beforeWrite, extension, httpHandler } = exportPlugin(plugin);`,
      ].join('\n'),
      resolveDir: project,
      sourcefile: 'kith-entry.ts',
      loader: 'ts',
    },
    platform: 'neutral',
    mainFields: ['module', 'main'],
    external: ['kith:*', 'wasi:*'],
    outfile: bundled,
  });
  const { componentize } = await import(tool('@bytecodealliance/componentize-js'));
  const { component } = await componentize({
    sourcePath: bundled,
    witPath: wit,
    worldName: 'plugin',
    disableFeatures: ['http', 'fetch-event'],
  });
  const wasm = resolve(project, args.out ?? 'plugin.wasm');
  writeFileSync(wasm, component);
  console.log(`built ${relative(process.cwd(), wasm) || wasm} (${(component.length / 1048576).toFixed(1)} MiB) against kith:plugin@${WIT_VERSION}`);
}

function testFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return testFiles(path);
    return name.endsWith('.test.ts') ? [path] : [];
  });
}

async function test(project, args) {
  if (!args.noCheck) typeCheck(project);
  const files = testFiles(join(project, 'test'));
  if (files.length === 0) fail(`no test/**/*.test.ts in ${project}`);
  const out = join(project, 'build', 'test');
  rmSync(out, { recursive: true, force: true });
  await bundle({
    entryPoints: files,
    outdir: out,
    outbase: join(project, 'test'),
    outExtension: { '.js': '.mjs' },
    platform: 'node',
    target: 'node20',
    packages: 'bundle',
    external: ['node:*'],
  });
  const bundles = files.map((f) => join(out, relative(join(project, 'test'), f)).replace(/\.ts$/, '.mjs'));
  const done = spawnSync(process.execPath, ['--test', ...bundles], { stdio: 'inherit', cwd: project });
  process.exit(done.status ?? 1);
}

const [command, ...rest] = process.argv.slice(2);
const args = {};
for (let i = 0; i < rest.length; i++) {
  const arg = rest[i];
  if (arg === '--entry') args.entry = rest[++i];
  else if (arg === '--out') args.out = rest[++i];
  else if (arg === '--no-check') args.noCheck = true;
  else if (arg === '--sdk') args.sdk = true;
  else fail(`unknown option ${arg}`);
}
const project = args.sdk ? sdk : process.cwd();
if (command === 'build') await build(project, args);
else if (command === 'test') await test(project, args);
else fail('usage: kith-plugin build [--entry src/plugin.ts] [--out plugin.wasm] [--no-check] | kith-plugin test [--no-check]');
