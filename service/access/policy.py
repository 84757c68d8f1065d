"""IAM's policy language, as far as Rekognition's actions and resources need it: statements of
Effect Allow or Deny; Action or NotAction, Resource or NotResource, as a string or a list, with
`*` and `?` wildcards; and a Condition on the request's source address, transport and time. An
explicit Deny wins over any Allow; nothing is allowed that no statement allows.

Every element, condition operator and condition key is either evaluated as IAM evaluates it or
refuses the policy: a policy never means more than it says."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Decision = Literal["allow", "deny", "not allowed"]
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

POLICY_ELEMENTS = frozenset({"Version", "Id", "Statement"})
STATEMENT_ELEMENTS = frozenset(
    {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)
VERSIONS = frozenset({"2012-10-17", "2008-10-17"})


class PolicyError(ValueError):
    """A policy that does not parse, or uses what is not evaluated; the message says where."""


@dataclass(frozen=True)
class RequestFacts:
    """What a Condition can ask of a request: the client's address (after the proxies the
    server trusts; None where it has none), whether it came over TLS, and when it came."""

    source_ip: IpAddress | None
    secure_transport: bool
    current_time: datetime

    @classmethod
    def of(cls, client_host: str | None, scheme: str) -> RequestFacts:
        try:
            source = ipaddress.ip_address(client_host) if client_host else None
        except ValueError:  # a unix socket's path, or a test client's made-up name
            source = None
        return cls(source, scheme in ("https", "wss"), datetime.now(UTC))

    @classmethod
    def in_process(cls) -> RequestFacts:
        """A call that came over no network (tests, tools calling the operations directly)."""
        return cls(None, False, datetime.now(UTC))


# A condition test: the values a policy names, and the request's value for the key (None when
# the request has none), to whether the condition holds.
Test = Callable[[Any], bool]


@dataclass(frozen=True)
class Condition:
    key: str  # lower-case, as IAM compares condition keys
    test: Test
    negated: bool  # NotIpAddress: true where the key is absent, as IAM's negated operators
    if_exists: bool

    def holds(self, facts: RequestFacts) -> bool:
        value = _fact(facts, self.key)
        if value is None:
            return self.if_exists or self.negated
        return self.test(value) != self.negated


@dataclass(frozen=True)
class Statement:
    effect: Literal["Allow", "Deny"]
    actions: tuple[re.Pattern[str], ...]
    actions_excluded: bool  # NotAction
    resources: tuple[re.Pattern[str], ...]
    resources_excluded: bool  # NotResource
    conditions: tuple[Condition, ...] = ()

    def covers(self, action: str, resource: str, facts: RequestFacts) -> bool:
        named_action = any(a.fullmatch(action) for a in self.actions)
        named_resource = any(r.fullmatch(resource) for r in self.resources)
        return (
            named_action != self.actions_excluded
            and named_resource != self.resources_excluded
            and all(condition.holds(facts) for condition in self.conditions)
        )


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]

    @classmethod
    def parse(cls, body: Any) -> Policy:
        if not isinstance(body, dict) or not isinstance(body.get("Statement"), list | dict):
            raise PolicyError("a policy needs a Statement list")
        _only_known(body, POLICY_ELEMENTS, "the policy")
        if "Version" in body and body["Version"] not in VERSIONS:
            raise PolicyError(f"Version must be one of {sorted(VERSIONS)}")
        found = body["Statement"]
        return cls(tuple(_statement(s, i) for i, s in enumerate(_as_list(found))))

    def decision(self, action: str, resource: str, facts: RequestFacts | None = None) -> Decision:
        """IAM's evaluation: an explicit Deny wins, then an Allow, else not allowed."""
        facts = facts or RequestFacts.in_process()
        covering = [s.effect for s in self.statements if s.covers(action, resource, facts)]
        if "Deny" in covering:
            return "deny"
        return "allow" if "Allow" in covering else "not allowed"


def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE if ignore_case else 0)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _only_known(body: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(body) - known)
    if unknown:
        raise PolicyError(
            f"{where}: element {unknown[0]!r} is not evaluated by facebank "
            f"(known: {', '.join(sorted(known))})"
        )


def _statement(body: Any, index: int) -> Statement:
    where = f"Statement {index}"
    if not isinstance(body, dict):
        raise PolicyError(f"{where} is not an object")
    if isinstance(body.get("Sid"), str) and body["Sid"]:
        where = f"Statement {index} (Sid {body['Sid']!r})"
    _only_known(body, STATEMENT_ELEMENTS, where)
    effect = body.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"{where}: Effect must be Allow or Deny")
    action_element = _one_of(body, "Action", "NotAction", where, default=None)
    resource_element = _one_of(body, "Resource", "NotResource", where, default="Resource")
    actions = _strings(body.get(action_element), f"{where}: {action_element}")
    resources = _strings(body.get(resource_element, "*"), f"{where}: {resource_element}")
    for action in actions:
        if action != "*" and not action.lower().startswith(("rekognition:", "facebank:")):
            raise PolicyError(
                f"{where}: {action_element} {action!r} is not a rekognition: or facebank: action"
            )
    return Statement(
        effect,
        tuple(_wildcard(a, ignore_case=True) for a in actions),
        action_element == "NotAction",
        tuple(_wildcard(r, ignore_case=False) for r in resources),
        resource_element == "NotResource",
        _conditions(body.get("Condition"), where),
    )


def _one_of(
    body: Mapping[str, Any], plain: str, negated: str, where: str, default: str | None
) -> str:
    if plain in body and negated in body:
        raise PolicyError(f"{where}: give {plain} or {negated}, not both")
    if negated in body:
        return negated
    if plain in body or default is not None:
        return plain
    raise PolicyError(f"{where}: {plain} or {negated} is required")


def _strings(value: Any, where: str) -> list[str]:
    found = _as_list(value)
    if not found or not all(isinstance(item, str) and item for item in found):
        raise PolicyError(f"{where} must be a string or a list of strings")
    return found


# Conditions: the operators and keys a face service needs; anything else refuses the policy.


def _ip_test(values: list[str], where: str) -> Test:
    try:
        networks = [ipaddress.ip_network(v.strip(), strict=False) for v in values]
    except ValueError as exc:
        raise PolicyError(f"{where}: {exc}") from None
    return lambda address: any(address in network for network in networks)


def _bool_test(values: list[str], where: str) -> Test:
    wanted = set()
    for value in values:
        if value.lower() not in ("true", "false"):
            raise PolicyError(f"{where}: {value!r} is not true or false")
        wanted.add(value.lower() == "true")
    return lambda fact: bool(fact) in wanted


def _date(value: str, where: str) -> datetime:
    try:
        if value.lstrip("-").isdigit():  # epoch seconds, as IAM also accepts
            return datetime.fromtimestamp(int(value), UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise PolicyError(f"{where}: {value!r} is not an ISO 8601 date") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _after_test(values: list[str], where: str) -> Test:
    dates = [_date(v, where) for v in values]
    return lambda now: any(now > date for date in dates)


def _before_test(values: list[str], where: str) -> Test:
    dates = [_date(v, where) for v in values]
    return lambda now: any(now < date for date in dates)


# operator -> (the one key it may test, how its values become a test, negated)
OPERATORS: dict[str, tuple[str, Callable[[list[str], str], Test], bool]] = {
    "IpAddress": ("aws:sourceip", _ip_test, False),
    "NotIpAddress": ("aws:sourceip", _ip_test, True),
    "Bool": ("aws:securetransport", _bool_test, False),
    "DateGreaterThan": ("aws:currenttime", _after_test, False),
    "DateLessThan": ("aws:currenttime", _before_test, False),
}
KEY_NAMES = {
    "aws:sourceip": "aws:SourceIp",
    "aws:securetransport": "aws:SecureTransport",
    "aws:currenttime": "aws:CurrentTime",
}


def _fact(facts: RequestFacts, key: str) -> Any:
    if key == "aws:sourceip":
        return facts.source_ip
    if key == "aws:securetransport":
        return facts.secure_transport
    return facts.current_time


def _conditions(body: Any, where: str) -> tuple[Condition, ...]:
    if body is None:
        return ()
    if not isinstance(body, dict) or not body:
        raise PolicyError(f"{where}: Condition must be an object of operators")
    return tuple(
        _condition(operator, key, values, where)
        for operator, tests in body.items()
        for key, values in _condition_keys(tests, operator, where).items()
    )


def _condition_keys(tests: Any, operator: str, where: str) -> dict[str, Any]:
    if not isinstance(tests, dict) or not tests:
        raise PolicyError(f"{where}: Condition operator {operator!r} must map keys to values")
    return tests


def _condition(operator: str, key: str, values: Any, where: str) -> Condition:
    base = operator.removesuffix("IfExists")
    if base not in OPERATORS:
        raise PolicyError(
            f"{where}: Condition operator {operator!r} is not evaluated by facebank (known: "
            f"{', '.join(sorted(OPERATORS))}, and each with IfExists)"
        )
    wanted_key, make_test, negated = OPERATORS[base]
    if key.lower() != wanted_key:
        raise PolicyError(
            f"{where}: Condition key {key!r} is not evaluated with {operator} by facebank "
            f"(it takes {KEY_NAMES[wanted_key]})"
        )
    listed = [str(v).lower() if isinstance(v, bool) else v for v in _as_list(values)]
    test = make_test(_strings(listed, f"{where}: Condition {operator} {key}"), where)
    return Condition(wanted_key, test, negated, operator.endswith("IfExists"))
