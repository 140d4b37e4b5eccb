"""Names that outlive an edit of the pipeline: app ids, operator names, internal topics.

A stateful or shuffling operator's name keys its stores, its changelog and its
repartition topic, so it must not change when the user adds, removes or reorders
stateless steps elsewhere. It is the user's `name=` or, by default, the operator's kind
and its function's qualified name (`update_state_by_key.add_counts`), numbered only among
operators that would otherwise share it (`reduce_by_key.add-2`).

Internal topics are `<app_id>--<name>--<kind>`. Neither app ids nor names may contain
`--` or start or end with `-`, so a topic is this app's exactly when it parses as one:
`orders--...` never belongs to `orders-v2`, nor `orders-v2--...` to `orders`.
"""

from __future__ import annotations

import re
from typing import Any

from kstream.errors import ConfigError

LEGAL = re.compile(r"[A-Za-z0-9._-]+")  # Kafka's topic name characters
SEPARATOR = "--"
INTERNAL_KINDS = ("changelog", "repartition")
MAX_TOPIC = 249  # Kafka's limit on a topic name's length
MAX_NAME = 100
# the longest suffix an app id must leave room for: "--<name>--repartition"
_ROOM = len(SEPARATOR) * 2 + MAX_NAME + max(map(len, INTERNAL_KINDS))


def _check(value: Any, what: str, longest: int) -> str:
    if not isinstance(value, str) or not LEGAL.fullmatch(value):
        raise ConfigError(
            f"{what}={value!r}: use letters, digits, '.', '_' and '-' only (Kafka topic names)"
        )
    if SEPARATOR in value or value.startswith("-") or value.endswith("-"):
        raise ConfigError(
            f"{what}={value!r}: must not contain '--' nor start or end with '-' "
            "(internal topics are <app_id>--<operator>--<kind>)"
        )
    if len(value) > longest:
        raise ConfigError(f"{what}={value!r}: at most {longest} characters")
    return value


def check_app_id(app_id: Any) -> str:
    """An app id from which every internal topic name is legal on Kafka."""
    return _check(app_id, "app_id", MAX_TOPIC - _ROOM)


def check_name(name: Any) -> str:
    return _check(name, "name", MAX_NAME)


def internal_topic(app_id: str, name: str, kind: str) -> str:
    return f"{app_id}{SEPARATOR}{name}{SEPARATOR}{kind}"


def parse_internal(app_id: str, topic: str) -> tuple[str, str] | None:
    """(operator name, kind) if `topic` is one of this app's internal topics, else None."""
    prefix = app_id + SEPARATOR
    if not topic.startswith(prefix):
        return None
    name, sep, kind = topic[len(prefix) :].rpartition(SEPARATOR)
    if not sep or kind not in INTERNAL_KINDS or not LEGAL.fullmatch(name):
        return None
    if SEPARATOR in name or name.startswith("-") or name.endswith("-"):
        return None
    return name, kind


def default_name(op: Any) -> str:
    """The operator's kind and its user function's qualified name, as a legal name."""
    fn = getattr(op, "fn", None)
    if fn is None:
        fn = getattr(getattr(op, "spec", None), "fn", None)
    if fn is None:
        return op.kind
    qualname = getattr(fn, "__qualname__", None) or type(fn).__name__
    qualname = qualname.replace("<locals>.", "")
    cleaned = re.sub(r"[^A-Za-z0-9_.]+", "", qualname).strip(".") or "fn"
    return f"{op.kind}.{cleaned}"[:MAX_NAME]


class OperatorNames:
    """Hands out the names of one app's stateful and shuffling operators."""

    def __init__(self) -> None:
        self.taken: dict[str, str] = {}  # name -> what it names (for the duplicate error)

    def claim(self, op: Any, name: str | None) -> str:
        """`name` checked and reserved, or the operator's default name."""
        what = op.describe()
        if name is not None:
            check_name(name)
            if name in self.taken:
                raise ConfigError(
                    f"two operators are named {name!r}: {self.taken[name]} and {what}; "
                    "give each its own name="
                )
            self.taken[name] = what
            return name
        base = default_name(op)
        chosen, n = base, 1
        while chosen in self.taken:
            n += 1
            chosen = f"{base}-{n}"
        self.taken[chosen] = what
        return chosen
