"""Keys files the tests write, as an operator would: atomically, readable by their owner only."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_keys(path: Path, keys: list[dict[str, Any]], mode: int = 0o600) -> None:
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps({"Keys": keys}))
    staging.chmod(mode)
    os.replace(staging, path)
