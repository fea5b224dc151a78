"""The signup page: its files as served, the upload to S3 and the headless Chromium it is tested in."""

import sys
from pathlib import Path

# The site reads the consent versions from the shared package, which lives in the layer.
_LAYER = str(Path(__file__).resolve().parents[2] / "layers" / "idsentry" / "python")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)
