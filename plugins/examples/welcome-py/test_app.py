"""The welcome plugin's unit tests, against the SDK's in-memory test host (the Rust plugin's
tests, in Python): `python -m unittest` in this folder."""

import unittest

from kith_plugin import ALLOW, Change, Deny, ErrorCode, Event, HostError, OperationError
from kith_plugin.testing import TestHost

from app import Welcome, due_in_three_days


def created(host: TestHost, fields: dict) -> Event:
    id = host.insert("contact", fields)
    return Event.new("contact.created", "contact", id, fields)


class WelcomeTest(unittest.TestCase):
    def test_a_new_contact_gets_a_welcome_task_for_its_owner(self):
        host = TestHost().grant("activities:write").own("greeting").at("2026-02-27T09:30:00.000000Z")
        event = created(host, {"firstName": "Ada", "lastName": "Lovelace", "ownerId": "u-1"})
        host.on_event(Welcome, event)
        # A redelivered event greets nobody twice.
        host.on_event(Welcome, event)
        tasks = host.records("activity")
        self.assertEqual(len(tasks), 1)
        greetings = host.records("greeting")
        self.assertEqual(len(greetings), 1)
        self.assertEqual(greetings[0]["taskId"], tasks[0].id)
        self.assertEqual(tasks[0]["kind"], "TASK")
        self.assertEqual(tasks[0]["subject"], "Welcome Ada Lovelace")
        self.assertEqual(tasks[0]["ownerId"], "u-1")
        self.assertEqual(tasks[0]["contactId"], event.record_id)
        self.assertEqual(tasks[0]["dueAt"], "2026-03-02T09:30:00.000000Z")
        self.assertEqual(len(host.logs()), 1)

    def test_the_subject_comes_from_the_settings(self):
        host = TestHost().grant("activities:write").own("greeting").setting("task_subject", "Call {name}")
        host.on_event(Welcome, created(host, {"email": "grace@example.org"}))
        self.assertEqual(host.records("activity")[0]["subject"], "Call grace@example.org")

    def test_without_the_grant_the_task_is_refused_and_the_event_fails(self):
        host = TestHost().own("greeting")
        with self.assertRaises(HostError) as raised:
            host.on_event(Welcome, created(host, {"firstName": "Ada"}))
        self.assertEqual(raised.exception.code, ErrorCode.DENIED)
        self.assertEqual(host.records("activity"), [])
        self.assertEqual(host.denied(), ["activities:write"])

    def test_other_events_are_ignored(self):
        host = TestHost()
        host.on_event(Welcome, Event.new("contact.updated", "contact", "x", {}))
        self.assertEqual(host.records("activity"), [])

    def test_blocklisted_domains_are_refused_ignoring_case(self):
        host = TestHost().setting("blocked_domains", ["Mailinator.com", "@spam.test"])
        verdict = host.before_write(Welcome, Change.create("contact", {"email": "x@MAILINATOR.com"}))
        self.assertEqual(verdict, Deny("e-mail addresses at mailinator.com are not accepted"))
        self.assertIsInstance(host.before_write(Welcome, Change.create("contact", {"email": "y@spam.test"})), Deny)
        self.assertEqual(host.before_write(Welcome, Change.create("contact", {"email": "ada@example.org"})), ALLOW)
        self.assertEqual(host.before_write(Welcome, Change.create("contact", {"firstName": "No mail"})), ALLOW)

    def test_welcome_status_is_computed_for_a_page_at_once(self):
        host = TestHost().grant("activities:write").own("greeting")
        greeted = created(host, {"firstName": "Ada"})
        host.on_event(Welcome, greeted)
        other = host.insert("contact", {"firstName": "Grace"})
        values = host.compute_field(Welcome, "contact", "welcomeStatus", [greeted.record_id, other])
        self.assertEqual(values, ["GREETED", "PENDING"])

    def test_greeting_stats_count_per_month(self):
        host = TestHost().own("greeting")
        host.insert("greeting", {"contactId": "a", "createdAt": "2026-01-05T10:00:00.000000Z"})
        host.insert("greeting", {"contactId": "b", "createdAt": "2026-01-20T10:00:00.000000Z"})
        host.insert("greeting", {"contactId": "c", "createdAt": "2026-03-01T10:00:00.000000Z"})
        stats = host.call(Welcome, "greetingStats", {"since": None})
        self.assertEqual(stats["total"], 3)
        self.assertEqual(
            stats["byMonth"], [{"month": "2026-01-01", "greetings": 2}, {"month": "2026-03-01", "greetings": 1}]
        )
        self.assertEqual(stats["lastAt"], "2026-03-01T10:00:00.000000Z")
        self.assertEqual(host.call(Welcome, "greetingStats", {"since": "2026-02-01"})["total"], 1)

    def test_greet_again_names_a_missing_contact(self):
        host = TestHost().grant("contacts:read").grant("activities:write")
        with self.assertRaises(OperationError) as raised:
            host.call(Welcome, "greetAgain", {"contactId": "nope"}, write=True)
        self.assertEqual((raised.exception.code, raised.exception.field), (ErrorCode.INVALID_INPUT, "contactId"))
        id = host.insert("contact", {"firstName": "Ada"})
        done = host.call(Welcome, "greetAgain", {"contactId": id, "subject": "Hi {name}"}, write=True)
        self.assertEqual(done["subject"], "Hi Ada")
        self.assertEqual(len(host.records("activity")), 1)

    def test_greet_again_is_a_mutation_and_a_query_may_not_write(self):
        host = TestHost().grant("contacts:read").grant("activities:write")
        id = host.insert("contact", {"firstName": "Ada"})
        with self.assertRaises(OperationError) as raised:
            host.call(Welcome, "greetAgain", {"contactId": id}, write=False)
        self.assertEqual(raised.exception.code, ErrorCode.UNAVAILABLE)

    def test_the_digest_counts_yesterday_once(self):
        host = TestHost().own("greeting").own("welcomeDigest").at("2026-03-02T00:05:00.000000Z")
        host.insert("greeting", {"contactId": "a", "createdAt": "2026-03-01T10:00:00.000000Z"})
        host.insert("greeting", {"contactId": "b", "createdAt": "2026-02-28T23:59:00.000000Z"})
        host.run_job(Welcome, "digest")
        host.run_job(Welcome, "digest")
        digests = host.records("welcomeDigest")
        self.assertEqual(len(digests), 1)
        self.assertEqual(digests[0]["day"], "2026-03-01")
        self.assertEqual(digests[0]["greetings"], 1)

    def test_due_dates_roll_over_months_and_leap_years(self):
        self.assertEqual(due_in_three_days("2024-02-27T00:00:00.000000Z"), "2024-03-01T00:00:00.000000Z")
        self.assertEqual(due_in_three_days("2026-12-30T23:59:59.999999Z"), "2027-01-02T23:59:59.999999Z")


if __name__ == "__main__":
    unittest.main()
