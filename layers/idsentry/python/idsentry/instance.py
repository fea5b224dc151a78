"""The end of a function instance's initialisation: its objects frozen for the collector."""

from __future__ import annotations

import gc
import importlib
import os
from collections.abc import Iterable

# Lambda sets AWS_EXECUTION_ENV to the runtime's name, such as AWS_Lambda_python3.12.
_LAMBDA_RUNTIME_PREFIX = "AWS_Lambda_"


def freeze_init_objects(load: Iterable[str] = ()) -> None:
    """Import the modules in `load`, then exempt the objects made so far from garbage collection.

    Modules, classes, pydantic schemas and clients made during a Lambda instance's
    initialisation live as long as the instance, yet every full collection scans them again,
    the first one usually during the first request. Frozen, they are left out of every later
    collection, which `make bench` measures in the cold start through the first request.

    `load` names modules that every request of the function imports where they are used, such
    as a provider's SDK. Imported during the first request instead, they stay outside the frozen
    objects and each collection of that request scans them again. They are imported between two
    freezes, so a collection during their import does not scan the objects made before it.

    Only a Lambda runtime's process freezes. The local runtime loads every function into one
    process, again for each new stack, where freezing would also keep whatever garbage
    earlier work left for the collector.
    """
    in_lambda = os.environ.get("AWS_EXECUTION_ENV", "").startswith(_LAMBDA_RUNTIME_PREFIX)
    if in_lambda:
        gc.freeze()
    for name in load:
        importlib.import_module(name)
    if in_lambda:
        gc.freeze()
