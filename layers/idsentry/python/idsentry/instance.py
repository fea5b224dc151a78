"""The end of a function instance's initialisation: its objects frozen for the collector."""

from __future__ import annotations

import gc
import os

# Lambda sets AWS_EXECUTION_ENV to the runtime's name, such as AWS_Lambda_python3.12.
_LAMBDA_RUNTIME_PREFIX = "AWS_Lambda_"


def freeze_init_objects() -> None:
    """Exempt the objects made while the function's module loaded from garbage collection.

    Modules, classes, pydantic schemas and clients made during a Lambda instance's
    initialisation live as long as the instance, yet every full collection scans them again,
    the first one usually during the first request. Frozen, they are left out of every later
    collection, which `make bench` measures in the cold start through the first request.

    Only a Lambda runtime's process freezes. The local runtime loads every function into one
    process, again for each new stack, where freezing would also keep whatever garbage
    earlier work left for the collector.
    """
    if os.environ.get("AWS_EXECUTION_ENV", "").startswith(_LAMBDA_RUNTIME_PREFIX):
        gc.freeze()
