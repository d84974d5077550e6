import unittest

from kith_plugin import Event
from kith_plugin.testing import TestHost

from app import Hello


class HelloTest(unittest.TestCase):
    def test_greets_new_contacts_and_counts_them(self):
        host = TestHost().grant("kv").setting("greeting", "Welcome")
        event = Event.new("contact.created", "contact", "1", {"firstName": "Ada"})
        host.on_event(Hello, event)
        host.on_event(Hello, event)
        self.assertEqual(host.logs()[0], "INFO Welcome, Ada!")
        self.assertEqual(host.kv("greeted"), b"2")


if __name__ == "__main__":
    unittest.main()
