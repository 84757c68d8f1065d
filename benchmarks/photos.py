"""Where the benchmarks read photos unless `--faces` names a folder: FACEBANK_PHOTOS_DIR, else the
provisioned test photos (`facebank photos fetch`, run by `make test` and `make bench-accuracy`),
so that a fresh clone runs them. `--faces ../shared/faces` is the team's wider set."""

from __future__ import annotations

import os
from pathlib import Path

from ml.provision.photos import default_photos_dir


def default_faces() -> Path:
    return Path(os.environ.get("FACEBANK_PHOTOS_DIR") or default_photos_dir())
