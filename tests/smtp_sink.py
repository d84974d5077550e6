"""A real SMTP server for Kith's tests (aiosmtpd): it keeps every message it accepts.

Usage: python smtp_sink.py DIR PORT

Each accepted message is written as DIR/<n>.eml (the data as received) and DIR/<n>.json (the
envelope: from, to). Recipients whose local part starts with `perm` are refused for good (550);
those starting with `temp` are refused for now (451) while the file DIR/fail-temp exists. It
prints `listening` once it accepts connections.
"""
import json
import sys
import threading
import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("perm"):
            return "550 5.1.1 no such user"
        if local.startswith("temp") and (self.out / "fail-temp").exists():
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode()
        (self.out / f"{name}.eml.part").write_bytes(data)
        (self.out / f"{name}.json").write_text(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos}))
        (self.out / f"{name}.eml.part").rename(self.out / f"{name}.eml")
        return "250 2.0.0 queued as " + name


if __name__ == "__main__":
    controller = Controller(Sink(sys.argv[1]), hostname="127.0.0.1", port=int(sys.argv[2]))
    controller.start()
    print("listening", flush=True)
    try:
        threading.Event().wait()
    finally:
        controller.stop()
