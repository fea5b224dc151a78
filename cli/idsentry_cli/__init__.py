"""`idsentry`: the operator command line for a local or deployed IDSentry stack."""

import sys
from pathlib import Path

# The CLI validates manifests and derives intake job ids with the shared package's own code,
# which lives in the Lambda layer of this repository rather than in an installed distribution.
_LAYER = str(Path(__file__).resolve().parents[2] / "layers" / "idsentry" / "python")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
