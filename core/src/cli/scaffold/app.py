"""A Kith plugin. Test: `.venv/bin/python -m unittest`; build: `.venv/bin/python -m
kith_plugin.build` (writes plugin.wasm); install: `kith plugin install .` where Kith's database
is (or with `--database URL`)."""

from kith_plugin import Event, Plugin, export, kv, log, settings


class Hello(Plugin):
    """Kith may run each call in a fresh instance: keep state in `kv` or in records."""

    def on_event(self, event: Event) -> None:
        greeting = settings.get("greeting", "Hello")
        name = event.record_str("firstName") or "there"
        log.info(f"{greeting}, {name}!")
        kv.set_json("greeted", kv.get_json("greeted", 0) + 1)


WitWorld, Extension, HttpHandler = export(Hello)
