"""The test host checks what Kith checks: grants, read-only contexts, kv limits, HTTP origins,
versions; and delivers as Kith does."""

import json
import unittest

from kith_plugin import (
    ALLOW,
    BatchFailure,
    Call,
    Change,
    Deny,
    ErrorCode,
    Event,
    HostError,
    Modify,
    OperationError,
    Plugin,
    http,
    kv,
    records,
)
from kith_plugin.filters import desc, field
from kith_plugin.testing import TestHost, origin_of


class Writer(Plugin):
    """Writes in every extension point, to see where the host refuses."""

    def on_event(self, event):
        if event.object == "ticket":
            raise ValueError("no tickets")
        records.create("note", {"text": event.kind})

    def before_write(self, change):
        kv.set("seen", b"1")
        return ALLOW

    def compute_field(self, object, field, ids):
        records.create("note", {"text": "computed"})
        return ids

    def call(self, call):
        if call.name == "fail":
            raise RuntimeError("broken")
        return records.create("note", {"text": call.str("text")}).id


class TestHostTest(unittest.TestCase):
    def test_writes_are_unavailable_where_kith_refuses_them(self):
        host = TestHost().own("note").grant("kv")
        self.assertEqual(host.call(Writer, "note", {"text": "hi"}, write=True), host.records("note")[0].id)
        with self.assertRaises(OperationError) as raised:
            host.call(Writer, "note", {"text": "hi"})
        self.assertEqual(raised.exception.code, ErrorCode.UNAVAILABLE)
        with self.assertRaises(HostError) as raised:
            host.before_write(Writer, Change.create("contact", {}))
        self.assertEqual(raised.exception.code, ErrorCode.UNAVAILABLE)
        with self.assertRaises(HostError):
            host.compute_field(Writer, "contact", "x", ["a"])
        self.assertEqual(len(host.records("note")), 1)

    def test_an_unexpected_exception_is_an_internal_operation_error(self):
        with self.assertRaises(OperationError) as raised:
            TestHost().call(Writer, "fail", write=True)
        self.assertEqual(raised.exception.code, ErrorCode.INTERNAL)
        self.assertIn("broken", raised.exception.message)

    def test_a_batch_failure_names_the_event_and_keeps_the_ones_before(self):
        host = TestHost().own("note")
        events = [Event.new("contact.created", "contact", "1", {}), Event.new("ticket.created", "ticket", "2", {})]
        with self.assertRaises(BatchFailure) as raised:
            host.on_events(Writer, events)
        self.assertEqual(raised.exception.index, 1)
        self.assertEqual([n["text"] for n in host.records("note")], ["contact.created"])

    def test_grants_and_objects_are_checked(self):
        host = TestHost().foreign("donors", "donation", "donations")
        with host:
            for call, capability in [
                (lambda: records.get("contact", "x"), "contacts:read"),
                (lambda: records.create("deal", {}), "deals:write"),
                (lambda: records.query("donation"), "donors/donations:read"),
                (lambda: kv.get("k"), "kv"),
            ]:
                with self.assertRaises(HostError) as raised:
                    call()
                self.assertEqual(raised.exception.code, ErrorCode.DENIED)
            with self.assertRaises(HostError) as raised:
                records.get("nonsense", "x")
            self.assertEqual(raised.exception.code, ErrorCode.INVALID_INPUT)
        self.assertEqual(host.denied(), ["contacts:read", "deals:write", "donors/donations:read", "kv"])
        host.grant("donors/donations:read")
        with host:
            with self.assertRaises(HostError) as raised:
                records.create("donation", {})
            self.assertEqual(raised.exception.code, ErrorCode.INVALID_INPUT)

    def test_updates_bump_versions_and_check_the_expected_one(self):
        host = TestHost().own("note").at("2026-05-01T00:00:00.000000Z")
        with host:
            note = records.create("note", {"text": "a"})
            self.assertEqual((note.version, note["createdAt"]), (1, "2026-05-01T00:00:00.000000Z"))
            self.assertEqual(records.update("note", note.id, {"text": "b"}, expected_version=1).version, 2)
            with self.assertRaises(HostError) as raised:
                records.update("note", note.id, {"text": "c"}, expected_version=1)
            self.assertEqual(raised.exception.code, ErrorCode.CONFLICT)
            with self.assertRaises(HostError) as raised:
                records.update("note", "missing", {})
            self.assertEqual(raised.exception.code, ErrorCode.NOT_FOUND)
        self.assertEqual(host.record("note", note.id)["text"], "b")

    def test_pages_follow_cursors(self):
        host = TestHost().own("note")
        for i in range(5):
            host.insert("note", {"n": i})
        with host:
            seen = [r["n"] for r in records.query_all("note", field("n").gte(1), [desc("n")])]
            self.assertEqual(seen, [4, 3, 2, 1])
            page = records.query("note", first=2)
            self.assertEqual((len(page), page.next_cursor), (2, "2"))
            with self.assertRaises(HostError):
                records.query("note", first=0)
            with self.assertRaises(HostError):
                records.query("note", {"n": {"contains": 1}})

    def test_kv_limits(self):
        with TestHost().grant("kv") as host:
            kv.set_json("k", {"a": 1})
            self.assertEqual(kv.get_json("k"), {"a": 1})
            self.assertEqual(kv.keys("k"), ["k"])
            self.assertTrue(kv.delete("k"))
            self.assertFalse(kv.delete("k"))
            for key, value, code in [("", b"", ErrorCode.INVALID_INPUT), ("k" * 257, b"", ErrorCode.INVALID_INPUT), ("k", b"x" * 65537, ErrorCode.LIMIT_EXCEEDED)]:
                with self.assertRaises(HostError) as raised:
                    kv.set(key, value)
                self.assertEqual(raised.exception.code, code)
        self.assertIsNone(host.kv("k"))

    def test_http_reaches_granted_origins_only(self):
        host = TestHost().grant("http:https://api.example.org").grant("http:setting:base").setting("base", "https://crm.example.net/x")
        host.http_stub("https://api.example.org/a", http.Response(200, b'{"ok": true}'))
        host.http_stub("https://crm.example.net/b", http.Response(201))
        with host:
            self.assertEqual(http.get("https://api.example.org/a").json(), {"ok": True})
            self.assertEqual(http.post_json("https://crm.example.net/b", {"x": 1}).status, 201)
            with self.assertRaises(HostError) as raised:
                http.get("https://evil.example.com/")
            self.assertEqual(raised.exception.code, ErrorCode.DENIED)
            with self.assertRaises(HostError) as raised:
                http.get("https://api.example.org/unstubbed")
            self.assertEqual(raised.exception.code, ErrorCode.UNAVAILABLE)
        self.assertEqual(host.denied(), ["http:https://evil.example.com"])
        sent = host.http_requests()[1]
        self.assertEqual((sent.method, json.loads(sent.body)), ("POST", {"x": 1}))
        self.assertEqual(origin_of("HTTPS://API.example.org:443/p"), "https://api.example.org")
        self.assertEqual(origin_of("http://h:8080/"), "http://h:8080")
        self.assertIsNone(origin_of("ftp://h/"))

    def test_verdicts(self):
        class Gate(Plugin):
            def before_write(self, change):
                if change.operation == "delete":
                    return Deny("kept")
                return Modify({"email": change.after_str("email").lower()})

        host = TestHost()
        self.assertEqual(host.before_write(Gate, Change.create("contact", {"email": "A@B"})), Modify({"email": "a@b"}))
        self.assertEqual(host.before_write(Gate, Change("contact", "delete", "x", {}, {})), Deny("kept"))

    def test_a_plugin_declares_only_what_it_handles(self):
        host = TestHost()
        self.assertEqual(host.before_write(Plugin, Change.create("contact", {})), ALLOW)
        for call in [
            lambda: host.call(Plugin, "nope"),
            lambda: host.compute_field(Plugin, "contact", "x", []),
            lambda: host.run_job(Plugin, "x"),
        ]:
            with self.assertRaises(OperationError):
                call()
        self.assertEqual(Call("x").get("missing", 3), 3)


class OutsideAHostTest(unittest.TestCase):
    def test_host_calls_outside_a_component_or_test_host_say_what_to_do(self):
        with self.assertRaises(RuntimeError) as raised:
            records.get("contact", "x")
        self.assertIn("TestHost", str(raised.exception))


if __name__ == "__main__":
    unittest.main()
