"""`make run`: keep the local stack up on 127.0.0.1 for manual requests until Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import threading

from infra.local.service import LocalService
from infra.local.stack import REPOSITORY_ROOT


def main() -> None:
    """Start the local service on $PORT (default 3000) and wait for SIGINT or SIGTERM."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    port = int(os.environ.get("PORT", "3000"))
    identities = REPOSITORY_ROOT / "events" / "demo" / "identities.json"
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())

    with LocalService(port=port, identities_path=identities) as service:
        print(f"IDSentry local stack ready at {service.base_url}", flush=True)
        try:
            stopped.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
