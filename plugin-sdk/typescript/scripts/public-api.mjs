// The TypeScript SDK's public API as text: the declarations tsc emits for the package's entry
// points (`.`, `./testing`, `./component`), every file they reach, in path order.
// `test/public-api.test.ts` compares it with `public-api.d.ts.txt`; `npm run public-api`
// rewrites that file after a deliberate change.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const sdk = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

export function publicApi() {
  const out = mkdtempSync(join(tmpdir(), 'kith-sdk-api-'));
  try {
    const tsc = join(sdk, 'node_modules/typescript/bin/tsc');
    const args = [
      tsc, 'src/index.ts', 'src/testing.ts', 'src/component.ts',
      '--declaration', '--emitDeclarationOnly', '--outDir', out, '--rootDir', 'src',
      '--target', 'es2022', '--module', 'esnext', '--moduleResolution', 'bundler',
      '--strict', '--skipLibCheck', '--types', 'node',
    ];
    const done = spawnSync(process.execPath, args, { cwd: sdk, encoding: 'utf8' });
    if (done.status !== 0) throw new Error(`tsc: ${done.stdout}${done.stderr}`);
    return files(out)
      .filter((f) => f.endsWith('.d.ts'))
      .sort()
      .map((f) => `// ${relative(out, f)}\n${readFileSync(f, 'utf8')}`)
      .join('\n');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(join(sdk, 'public-api.d.ts.txt'), publicApi());
  console.log('public-api.d.ts.txt');
}
