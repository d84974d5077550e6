"""Kith's welcome plugin in Python, on the Kith plugin SDK (`plugin-sdk/python`): the same
behaviour as the Rust one (`plugins/welcome`).

- On `contact.created`: a TASK "Welcome {name}" (the `task_subject` setting) for the contact's
  owner, due in three days, and a `greeting` record (its own object), so a redelivered event
  greets nobody twice.
- Before a contact is stored: e-mail addresses at a domain of `blocked_domains` are refused.
- `Contact.welcomeStatus` (one aggregate for a whole page), the `greetingStats(since)` query,
  the `greetAgain(contactId, subject)` mutation and the daily `digest` job.
"""

from __future__ import annotations

import datetime
from typing import Any

from kith_plugin import (
    ALLOW,
    Call,
    Change,
    Deny,
    ErrorCode,
    Event,
    HostError,
    OperationError,
    Plugin,
    Verdict,
    export,
    log,
    now,
    records,
    settings,
)
from kith_plugin.aggregate import Aggregate, run
from kith_plugin.filters import all_of, field


class Welcome(Plugin):
    def on_event(self, event: Event) -> None:
        if event.kind != "contact.created" or event.record_id is None:
            return
        contact_id = event.record_id
        # Delivery is at least once: a contact greeted already is done.
        if records.first("greeting", field("contactId").eq(contact_id)) is not None:
            return
        task_id, subject = welcome_task(contact_id, event.record)
        records.create("greeting", {"contactId": contact_id, "taskId": task_id, "subject": subject})
        log.info(f"welcome task {task_id} for contact {contact_id}")

    def before_write(self, change: Change) -> Verdict:
        email = change.after_str("email")
        if email is None:
            return ALLOW
        blocked = settings.get("blocked_domains", [])
        domain = email.rsplit("@", 1)[1].strip().lower() if "@" in email else ""
        if any(b.strip().lstrip("@").lower() == domain for b in blocked):
            return Deny(f"e-mail addresses at {domain} are not accepted")
        return ALLOW

    def compute_field(self, object: str, field_name: str, ids: list[str]) -> list[Any]:
        if field_name != "welcomeStatus":
            raise OperationError(ErrorCode.INTERNAL, f"no computed field `{field_name}`")
        # One aggregate for the whole page: which of these contacts have a greeting.
        rows = run("greeting", Aggregate().filter(field("contactId").in_(ids)).group_by("contactId").count())
        greeted = {row.key(0) for row in rows}
        return ["GREETED" if id in greeted else "PENDING" for id in ids]

    def call(self, call: Call) -> Any:
        if call.name == "greetingStats":
            since = call.str("since")
            totals = Aggregate().count().min("createdAt").max("createdAt")
            months = Aggregate().group_by("createdAt", "month").count()
            if since is not None:
                totals.filter(field("createdAt").gte(f"{since}T00:00:00Z"))
                months.filter(field("createdAt").gte(f"{since}T00:00:00Z"))
            total = run("greeting", totals)
            first = total[0] if total else None
            return {
                "total": (first.int(0) if first else None) or 0,
                "firstAt": first.value(1) if first else None,
                "lastAt": first.value(2) if first else None,
                "byMonth": [{"month": r.key(0), "greetings": r.int(0) or 0} for r in run("greeting", months)],
            }
        if call.name == "greetAgain":
            contact_id = call.str("contactId") or ""
            try:
                contact = records.get("contact", contact_id)
            except HostError as err:
                if err.code == ErrorCode.INVALID_INPUT:
                    raise OperationError.invalid("contactId", err.message) from None
                raise
            if contact is None:
                raise OperationError.invalid("contactId", f"no contact `{contact_id}`")
            task_id, subject = welcome_task(contact_id, contact.fields, call.str("subject"))
            return {"taskId": task_id, "subject": subject}
        raise OperationError(ErrorCode.INTERNAL, f"no operation `{call.name}`")

    def run_job(self, job: str, scheduled_for: str) -> None:
        if job != "digest":
            raise OperationError(ErrorCode.INTERNAL, f"no job `{job}`")
        # The day before the run was due; one digest per day, so a second run changes nothing.
        day = shift_days(scheduled_for[:10], -1)
        if records.first("welcomeDigest", field("day").eq(day)) is not None:
            return
        counted = run(
            "greeting",
            Aggregate()
            .filter(
                all_of(
                    field("createdAt").gte(f"{day}T00:00:00Z"),
                    field("createdAt").lt(f"{shift_days(day, 1)}T00:00:00Z"),
                )
            )
            .count(),
        )
        greetings = (counted[0].int(0) if counted else None) or 0
        records.create("welcomeDigest", {"day": day, "greetings": greetings})
        log.info(f"digest for {day}: {greetings} greetings")


def welcome_task(contact_id: str, contact: dict[str, Any], subject: str | None = None) -> tuple[str, str]:
    """Creates the welcome TASK for a contact; returns its id and subject."""
    name = display_name(contact)
    template = subject if subject is not None else settings.get("task_subject", "Welcome {name}")
    text = template.replace("{name}", name)
    task = {
        "kind": "TASK",
        "subject": text,
        "body": f"Say hello to {name}: a first contact in the first three days matters.",
        "contactId": contact_id,
        "dueAt": due_in_three_days(now()),
    }
    if isinstance(contact.get("ownerId"), str):
        task["ownerId"] = contact["ownerId"]
    return records.create("activity", task).id, text


def display_name(contact: dict[str, Any]) -> str:
    def part(name: str) -> str:
        value = contact.get(name)
        return value.strip() if isinstance(value, str) else ""

    return f"{part('firstName')} {part('lastName')}".strip() or part("email") or "the new contact"


def shift_days(day: str, delta: int) -> str:
    """`day` (YYYY-MM-DD) moved by `delta` days."""
    try:
        return (datetime.date.fromisoformat(day) + datetime.timedelta(days=delta)).isoformat()
    except ValueError:
        return day


def due_in_three_days(at: str) -> str:
    """`at` plus three days, keeping its RFC 3339 shape (`YYYY-MM-DDTHH:MM:SS.ffffffZ`)."""
    return shift_days(at[:10], 3) + at[10:]


WitWorld, Extension, HttpHandler = export(Welcome)
