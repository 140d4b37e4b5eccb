"""The window operators of a stream (Spark's window, reduceByKeyAndWindow, ...), kept out
of kstream/dstream.py as kstream/pair_functions.py keeps the per-key aggregations: each
adds its operator (kstream/ops/windows.py) through the stream's `_through_shuffle`. The
keyed ones read a stream already spread by key without a shuffle, combining their batch
themselves then (`pre_combined=False`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from kstream import durations
from kstream.errors import ConfigError, require_function
from kstream.ops import windows
from kstream.partitioning import BY_RECORD, GLOBAL

if TYPE_CHECKING:
    from kstream.builder import GraphBuilder
    from kstream.graph import Node

Stream = TypeVar("Stream")


class WindowFunctions(Generic[Stream]):
    """Mixed into DStream (as `WindowFunctions["DStream"]`, so this module needs no import
    of it)."""

    if TYPE_CHECKING:
        graph: GraphBuilder
        node: Node
        _through_shuffle: Callable[..., Stream]
        _shuffled: Callable[[int | None, bool], bool]

    def window(
        self,
        length: float,
        slide: float | None = None,
        name: str | None = None,
        serde: str | None = None,
    ) -> Stream:
        """The records of the batches in (T - length, T], at every batch T that is a
        multiple of `slide` (None between slides)."""
        length_ms, slide_ms = self._window("window", length, slide)
        op = windows.Window(length_ms, slide_ms)
        return self._through_shuffle(op, [self], by=BY_RECORD, force=True, serde=serde, name=name)

    def count_by_window(
        self,
        length: float,
        slide: float | None = None,
        name: str | None = None,
        serde: str | None = None,
    ) -> Stream:
        length_ms, slide_ms = self._window("count_by_window", length, slide)
        op = windows.CountByWindow(length_ms, slide_ms)
        return self._through_shuffle(op, [self], by=GLOBAL, force=True, serde=serde, name=name)

    def reduce_by_window(
        self,
        fn: Callable[[Any, Any], Any],
        inv_fn: Callable[[Any, Any], Any] | None = None,
        length: float | None = None,
        slide: float | None = None,
        name: str | None = None,
        serde: str | None = None,
    ) -> Stream:
        require_function(fn, "reduce_by_window", "fn")
        require_function(inv_fn, "reduce_by_window", "inv_fn", optional=True)
        length_ms, slide_ms = self._window("reduce_by_window", length, slide)
        op = windows.ReduceByWindow(fn, inv_fn, length_ms, slide_ms)
        return self._through_shuffle(op, [self], by=GLOBAL, force=True, serde=serde, name=name)

    def reduce_by_key_and_window(
        self,
        fn: Callable[[Any, Any], Any],
        inv_fn: Callable[[Any, Any], Any] | None = None,
        length: float | None = None,
        slide: float | None = None,
        num_partitions: int | None = None,
        filter_fn: Callable[[tuple[Any, Any]], Any] | None = None,
        name: str | None = None,
        serde: str | None = None,
    ) -> Stream:
        """Per key, fn over the window's values; with inv_fn the window is updated
        incrementally (keys whose value returns to zero stay unless filter_fn drops
        them, as in Spark); filter_fn((key, value)) keeps a key in the result."""
        what = "reduce_by_key_and_window"
        require_function(fn, what, "fn")
        require_function(inv_fn, what, "inv_fn", optional=True)
        require_function(filter_fn, what, "filter_fn", optional=True)
        length_ms, slide_ms = self._window(what, length, slide)
        pre_combined = self._shuffled(num_partitions, True)
        op = windows.ReduceByKeyAndWindow(fn, inv_fn, filter_fn, length_ms, slide_ms, pre_combined)
        return self._through_shuffle(op, [self], num_partitions, serde=serde, name=name)

    def count_by_value_and_window(
        self,
        length: float,
        slide: float | None = None,
        num_partitions: int | None = None,
        name: str | None = None,
        serde: str | None = None,
    ) -> Stream:
        length_ms, slide_ms = self._window("count_by_value_and_window", length, slide)
        op = windows.CountByValueAndWindow(length_ms, slide_ms)
        return self._through_shuffle(op, [self], num_partitions, force=True, serde=serde, name=name)

    def group_by_key_and_window(
        self,
        length: float,
        slide: float | None = None,
        num_partitions: int | None = None,
        name: str | None = None,
        serde: str | None = None,
    ) -> Stream:
        length_ms, slide_ms = self._window("group_by_key_and_window", length, slide)
        op = windows.GroupByKeyAndWindow(length_ms, slide_ms, self._shuffled(num_partitions, True))
        return self._through_shuffle(op, [self], num_partitions, serde=serde, name=name)

    def reduce_by_key_and_session(
        self,
        fn: Callable[[Any, Any], Any],
        gap: float,
        late: str = "join",
        num_partitions: int | None = None,
        name: str | None = None,
        serde: str | None = None,
    ) -> Stream:
        """Per key, sessions of records at most `gap` seconds of batch time apart; each is
        emitted as (key, (start, end, value)) in the batch where it closes: the first
        batch `gap` after its last record with no record for the key. See
        kstream.ops.windows.ReduceByKeyAndSession for what `late` means here."""
        what = "reduce_by_key_and_session"
        require_function(fn, what, "fn")
        if late not in windows.LATE_POLICIES:
            choices = ", ".join(windows.LATE_POLICIES)
            raise ConfigError(f"{what}: late={late!r}: choose one of {choices}")
        batch_ms = self.graph.interval_ms
        base = durations.slide_ms(self.node, batch_ms)
        gap_ms = durations.duration_ms(what, "gap", gap, base, batch_ms)
        op = windows.ReduceByKeyAndSession(fn, gap_ms, late)  # reduces its input itself
        return self._through_shuffle(op, [self], num_partitions, serde=serde, name=name)

    def _window(self, name: str, length: Any, slide: Any) -> tuple[int, int]:
        return durations.window_ms(self.node, self.graph.interval_ms, name, length, slide)
