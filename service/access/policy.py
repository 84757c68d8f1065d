"""IAM's policy language, as far as Rekognition's actions and resources need it: statements of
Effect Allow or Deny, Action and Resource as a string or a list, `*` and `?` wildcards. An
explicit Deny wins over any Allow; nothing is allowed that no statement allows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

Decision = Literal["allow", "deny", "not allowed"]


class PolicyError(ValueError):
    """A policy that does not parse; the message says where."""


def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE if ignore_case else 0)


@dataclass(frozen=True)
class Statement:
    effect: Literal["Allow", "Deny"]
    actions: tuple[re.Pattern[str], ...]
    resources: tuple[re.Pattern[str], ...]

    def covers(self, action: str, resource: str) -> bool:
        return any(a.fullmatch(action) for a in self.actions) and any(
            r.fullmatch(resource) for r in self.resources
        )


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]

    @classmethod
    def parse(cls, body: Any) -> Policy:
        if not isinstance(body, dict) or not isinstance(body.get("Statement"), list | dict):
            raise PolicyError("a policy needs a Statement list")
        found = body["Statement"]
        return cls(tuple(_statement(s, i) for i, s in enumerate(_as_list(found))))

    def decision(self, action: str, resource: str) -> Decision:
        """IAM's evaluation: an explicit Deny wins, then an Allow, else not allowed."""
        covering = [s.effect for s in self.statements if s.covers(action, resource)]
        if "Deny" in covering:
            return "deny"
        return "allow" if "Allow" in covering else "not allowed"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statement(body: Any, index: int) -> Statement:
    where = f"Statement {index}"
    if not isinstance(body, dict):
        raise PolicyError(f"{where} is not an object")
    effect = body.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"{where}: Effect must be Allow or Deny")
    actions = _strings(body.get("Action"), f"{where}: Action")
    resources = _strings(body.get("Resource", "*"), f"{where}: Resource")
    for action in actions:
        if action != "*" and not action.lower().startswith("rekognition:"):
            raise PolicyError(f"{where}: action {action!r} is not a rekognition: action")
    return Statement(
        effect,
        tuple(_wildcard(a, ignore_case=True) for a in actions),
        tuple(_wildcard(r, ignore_case=False) for r in resources),
    )


def _strings(value: Any, where: str) -> list[str]:
    found = _as_list(value)
    if not found or not all(isinstance(item, str) and item for item in found):
        raise PolicyError(f"{where} must be a string or a list of strings")
    return found
