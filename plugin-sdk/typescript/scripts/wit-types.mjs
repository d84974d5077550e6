// Writes the TypeScript declarations of the `kith:plugin` WIT imports and exports (world
// `plugin`) into `wit/`, from the committed WIT of this checkout, with jco's `guest-types`.
// `npm run wit-types` after a new WIT version; `npm test` fails when they are stale.
//
// jco runs its WIT reader as a component whose filesystem is closed by default: the checkout is
// opened to it read-only here.
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const WIT_VERSION = '1.4.0';
const here = dirname(fileURLToPath(import.meta.url));
export const witDir = resolve(here, '../../../schemas/wit', `v${WIT_VERSION}`);

/** The declarations, as `{relative path: text}`. */
export async function generate() {
  const transpile = import.meta.resolve('@bytecodealliance/jco-transpile');
  const shim = createRequire(new URL(transpile)).resolve('@bytecodealliance/preview2-shim/filesystem');
  const fs = await import(pathToFileURL(shim).href);
  fs._addPreopen(witDir, witDir);
  const { generateGuestTypes } = await import(transpile);
  const files = await generateGuestTypes(witDir, { worldName: 'plugin', outDir: '' });
  return Object.fromEntries(Object.entries(files).map(([name, text]) => [name, new TextDecoder().decode(text)]));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = resolve(here, '../wit');
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [name, text] of Object.entries(await generate())) {
    const path = join(out, name);
    if (check) {
      const current = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
      if (current !== text) {
        console.error(`wit/${name} is stale: \`npm run wit-types\` regenerates it from ${witDir}`);
        stale += 1;
      }
      continue;
    }
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    console.log(`wit/${name}`);
  }
  if (check) console.log(stale === 0 ? `wit/ matches kith:plugin@${WIT_VERSION}` : `${stale} stale file(s)`);
  process.exit(stale === 0 ? 0 : 1);
}
