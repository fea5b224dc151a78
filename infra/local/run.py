"""`make run`: keep the local stack up on 127.0.0.1 for manual requests until Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from infra.local.service import LocalService
from infra.local.stack import REPOSITORY_ROOT

OUTBOX = REPOSITORY_ROOT / ".local" / "outbox"


# Headers written above each e-mail in the outbox, as a mail client shows them.
OUTBOX_HEADERS = ("from", "to", "subject", "list-unsubscribe", "list-unsubscribe-post")


def _write_outbox(service: LocalService, written: int) -> int:
    """Write e-mails SES accepted since the last call to .local/outbox; returns the new count.

    Each is `NNNN.html`: the HTML part, after an HTML comment with the message's headers.
    """
    emails = service.sent_emails()
    for number, email in enumerate(emails[written:], start=written + 1):
        headers = dict(email.get("headers") or {})
        headers.setdefault("to", ", ".join(email.get("to") or ()))
        headers.setdefault("subject", str(email.get("subject") or ""))
        lines = [f"{name}: {headers[name]}" for name in OUTBOX_HEADERS if headers.get(name)]
        comment = "<!--\n" + "\n".join(lines).replace("--", "- -") + "\n-->\n"
        page = OUTBOX / f"{number:04d}.html"
        page.write_text(comment + str(email["body"] or ""), encoding="utf-8")
    return len(emails)


def main() -> int:
    """Start the local service on $PORT (default 3000) and wait for SIGINT or SIGTERM."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    try:
        port = int(os.environ.get("PORT", "3000"))
    except ValueError:
        print("PORT must be a number from 1 to 65535", file=sys.stderr)
        return 2
    identities = REPOSITORY_ROOT / "events" / "demo" / "identities.json"
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    OUTBOX.mkdir(parents=True, exist_ok=True)
    for old in OUTBOX.glob("*.html"):
        old.unlink()

    try:
        service = LocalService(port=port, identities_path=identities).start()
    except OSError as exc:
        print(
            f"cannot start the local stack on port {port}: {exc.strerror}; set PORT to a free port",
            file=sys.stderr,
        )
        return 1

    try:
        print(f"IDSentry local stack ready at {service.base_url}", flush=True)
        print(f"Signup page: {service.signup_page_url}", flush=True)
        print(
            f"E-mails are written to {OUTBOX.relative_to(REPOSITORY_ROOT)}/; stop with Ctrl-C.",
            flush=True,
        )
        written = 0
        while not stopped.wait(1.0):
            written = _write_outbox(service, written)
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
        print("IDSentry local stack stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
