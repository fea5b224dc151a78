"""Decode JSON text that comes from outside the service: request bodies, cursors, manifests, rows."""

from __future__ import annotations

import json
from typing import Any


def loads(document: str | bytes, **options: Any) -> Any:
    """Decode `document` as json.loads does, raising ValueError for every invalid document.

    CPython's decoder raises RecursionError, not ValueError, for arrays or objects nested
    thousands of levels deep, so a caller that maps ValueError to a rejection would
    otherwise fail on such input. Integers of more than 4,300 digits already raise ValueError.
    """
    try:
        return json.loads(document, **options)
    except RecursionError:
        raise ValueError("invalid JSON: arrays or objects nested too deeply") from None
