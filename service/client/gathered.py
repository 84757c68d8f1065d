"""What `facebank evaluate` has gathered from an endpoint, as an append-only JSON-lines file in
its output folder, so an interrupted run resumes: a re-run against the same endpoint, folder
and mode reuses every score already there and asks only for the rest."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A photo that gives no score: no face, several faces, or not an image the endpoint reads.
FACE = "face"


@dataclass
class Gathered:
    path: Path
    identity: dict[str, Any]
    statuses: dict[str, tuple[str, str]] = field(default_factory=dict)
    searches: dict[str, dict[str, float]] = field(default_factory=dict)
    pairs: dict[tuple[str, str], float] = field(default_factory=dict)
    user_rankings: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    reused: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, path: Path, identity: dict[str, Any]) -> Gathered:
        """The records at `path` when they were gathered for the same `identity` (endpoint,
        folder, mode); otherwise a fresh file (the old one is kept beside it)."""
        gathered = cls(path, identity)
        lines = path.read_text().splitlines() if path.exists() else []
        if lines and _header(lines[0]) == identity:
            for line in lines[1:]:
                gathered._load(line)
            gathered.reused = len(gathered.searches) + len(gathered.pairs)
            gathered.reused += len(gathered.user_rankings)
            return gathered
        if lines:
            path.replace(path.with_suffix(".previous.jsonl"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"identity": identity}) + "\n")
        return gathered

    def _load(self, line: str) -> None:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return  # a line cut off by an interruption; its score is asked for again
        kind = record.get("kind")
        if kind == "status":
            self.statuses[record["photo"]] = (record["status"], record["detail"])
        elif kind == "search":
            self.searches[record["photo"]] = record["scores"]
        elif kind == "pair":
            self.pairs[(record["a"], record["b"])] = record["similarity"]
        elif kind == "users":
            self.user_rankings[record["photo"]] = [tuple(item) for item in record["ranking"]]

    def _append(self, record: dict[str, Any]) -> None:
        with self._lock, self.path.open("a") as out:
            out.write(json.dumps(record) + "\n")

    def status(self, photo: str, status: str, detail: str = "") -> None:
        self.statuses[photo] = (status, detail)
        self._append({"kind": "status", "photo": photo, "status": status, "detail": detail})

    def search(self, photo: str, scores: dict[str, float]) -> None:
        self.searches[photo] = scores
        self._append({"kind": "search", "photo": photo, "scores": scores})

    def pair(self, a: str, b: str, similarity: float) -> None:
        self.pairs[(a, b)] = similarity
        self._append({"kind": "pair", "a": a, "b": b, "similarity": similarity})

    def users(self, photo: str, ranking: list[tuple[str, float]]) -> None:
        self.user_rankings[photo] = ranking
        self._append({"kind": "users", "photo": photo, "ranking": ranking})

    def similarity(self, a: str, b: str) -> float:
        """A pair's Similarity from whichever search or comparison gathered it; a face that a
        search at threshold 0 did not return scored 0."""
        if (a, b) in self.pairs:
            return self.pairs[(a, b)]
        if a in self.searches:
            return self.searches[a].get(b, 0.0)
        return self.searches.get(b, {}).get(a, 0.0)


def _header(line: str) -> Any:
    try:
        return json.loads(line).get("identity")
    except (json.JSONDecodeError, AttributeError):
        return None
