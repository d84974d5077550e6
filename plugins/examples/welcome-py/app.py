"""The welcome plugin's base behaviour in Python, against Kith's WIT (`kith:plugin@1.2.0`,
world `base`) and built with componentize-py, with no Kith SDK: on `contact.created` a TASK
"Welcome {name}" (the `task_subject` setting) for the contact's owner, due in three days; before
a contact is stored, e-mail addresses at a domain of `blocked_domains` are refused."""
import datetime
import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import host, types


def setting(key, default):
    """A setting's value (Kith gives it as JSON text), or `default`."""
    text = host.setting(key)
    value = json.loads(text) if text else None
    return default if value is None else value


def display_name(contact):
    name = " ".join(p.strip() for p in (contact.get("firstName") or "", contact.get("lastName") or "") if p.strip())
    return name or (contact.get("email") or "").strip() or "the new contact"


def due_in_three_days(now):
    at = datetime.datetime.fromisoformat(now.replace("Z", "+00:00")) + datetime.timedelta(days=3)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class WitWorld(wit_world.WitWorld):
    def on_event(self, events):
        for index, event in enumerate(events):
            if event.kind != "contact.created" or event.record_id is None:
                continue
            contact = json.loads(event.payload).get("record") or {}
            name = display_name(contact)
            task = {
                "kind": "TASK",
                "subject": setting("task_subject", "Welcome {name}").replace("{name}", name),
                "body": f"Say hello to {name}: a first contact in the first three days matters.",
                "contactId": event.record_id,
                "dueAt": due_in_three_days(host.now()),
            }
            if contact.get("ownerId"):
                task["ownerId"] = contact["ownerId"]
            try:
                host.create_record("activity", json.dumps(task))
            except Err as err:
                raise Err(types.EventFailure(index=index, message=err.value.message))

    def before_write(self, change):
        email = (json.loads(change.after).get("email") or "").strip()
        if "@" not in email:
            return types.Verdict_Allow()
        domain = email.rsplit("@", 1)[1].strip().lower()
        blocked = [b.strip().lstrip("@").lower() for b in setting("blocked_domains", [])]
        if domain in blocked:
            return types.Verdict_Deny(f"e-mail addresses at {domain} are not accepted")
        return types.Verdict_Allow()
