// A Kith plugin. Test: `npm test`; build: `npm run build` (writes plugin.wasm); install:
// `kith plugin install .` where Kith's database is (or with `--database URL`).
import { definePlugin, kv, log, settings, str } from '@kith/plugin-sdk';

// Kith may run each call in a fresh instance: keep state in `kv` or in records.
export default definePlugin({
  onEvent(event) {
    const greeting = settings.get('greeting', 'Hello');
    const name = str(event.payload.record, 'firstName') ?? 'there';
    log.info(`${greeting}, ${name}!`);
    kv.setJson('greeted', (kv.getJson<number>('greeted') ?? 0) + 1);
  },
});
