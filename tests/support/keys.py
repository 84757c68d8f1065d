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


# The keys of the session's server with a keys file (conftest's `policy_server`), shared by
# the modules that need policies: migrate's target and the console.
MIGRATOR = ("MIGRATOR", "migrator-secret-7Hq2xPw4")  # rekognition:* and facebank:ImportFace
READER = ("READER", "reader-secret-7Hq2xPw4")  # rekognition:*, which does not grant ImportFace
NODELETE = ("NODELETE", "nodelete-secret-7Hq2xPw4")  # rekognition:* but DeleteCollection
EVERYTHING = {"Effect": "Allow", "Action": "rekognition:*", "Resource": "*"}
POLICY_KEYS: list[dict[str, Any]] = [
    {
        "AccessKeyId": MIGRATOR[0],
        "SecretAccessKey": MIGRATOR[1],
        "Policy": {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["rekognition:*", "facebank:ImportFace"],
                    "Resource": "*",
                }
            ]
        },
    },
    {"AccessKeyId": READER[0], "SecretAccessKey": READER[1], "Policy": {"Statement": [EVERYTHING]}},
    {
        "AccessKeyId": NODELETE[0],
        "SecretAccessKey": NODELETE[1],
        "Policy": {
            "Statement": [
                EVERYTHING,
                {"Effect": "Deny", "Action": "rekognition:DeleteCollection", "Resource": "*"},
            ]
        },
    },
]
