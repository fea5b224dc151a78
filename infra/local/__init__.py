"""The local stack: moto, emulators, the HTTP API server and the in-process Lambda runtime."""

import sys
from pathlib import Path

# The handlers import the shared package from the layer, as /opt/python does on Lambda.
_LAYER = str(Path(__file__).resolve().parents[2] / "layers" / "idsentry" / "python")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
