"""Window lengths, slides and gaps: seconds from the user, checked against the stream's
slide (Spark's rule: multiples of the batch interval, or of the slide of the windowed
stream they read), as engine milliseconds."""

from __future__ import annotations

import math
from typing import Any

from kstream.errors import ConfigError
from kstream.graph import Node
from kstream.settings import interval_ms


def slide_ms(node: Node, batch_ms: int) -> int:
    """How often a stream has a result: the batch interval, or a window's slide (Spark's
    slideDuration)."""
    memo: dict[int, int] = {}

    def slide(n: Node) -> int:
        if n.id not in memo:
            own = getattr(n.op, "slide_ms", None)
            if own is not None:
                memo[n.id] = own
            elif not n.parents:
                memo[n.id] = batch_ms
            else:
                memo[n.id] = math.lcm(*(slide(p) for p in n.parents))
        return memo[n.id]

    return slide(node)


def duration_ms(name: str, arg: str, seconds: Any, base: int, batch_ms: int) -> int:
    ms = interval_ms(seconds, f"{name}: {arg}")
    if ms % base:
        what = (
            "the batch interval"
            if base == batch_ms
            else "the slide of the windowed stream it reads"
        )
        raise ConfigError(
            f"{name}: {arg}={seconds!r}: must be a multiple of {what} ({base / 1000:g} s)"
        )
    return ms


def window_ms(node: Node, batch_ms: int, name: str, length: Any, slide: Any) -> tuple[int, int]:
    """A window's (length, slide) over the stream of `node`; the slide defaults to the
    stream's own."""
    base = slide_ms(node, batch_ms)
    if length is None:
        raise ConfigError(f"{name}: length: give the window length in seconds")
    length_ms = duration_ms(name, "length", length, base, batch_ms)
    slide_out = base if slide is None else duration_ms(name, "slide", slide, base, batch_ms)
    return length_ms, slide_out
