"""The interface stateful operators use (kept by kstream/state/transaction.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Iterator
from typing import Any

from kstream.codec import Codec, unwritable


class Store(ABC):
    """Key-value state of one operator in one task. Keys and values must be of types the
    operator's codec carries (kstream/codec.py); one it does not stops the run, naming
    the operator (a FormatError: no poison record is at fault).

    Reads see the writes made earlier in the same batch; the writes are kept together
    until a commit applies them (on Kafka, after the batch's outputs are acknowledged).
    """

    def __init__(self, codec: Codec, operator: str):
        self.codec = codec
        self.operator = operator  # as errors name it, e.g. `update_state_by_key-4 (app.add)`

    def _key(self, key: Hashable) -> bytes:
        try:
            return self.codec.dumps_key(key)
        except Exception as e:
            raise unwritable(e, self.codec, f"{self.operator}: a key of its state") from e

    def _value(self, value: Any) -> bytes:
        try:
            return self.codec.dumps(value)
        except Exception as e:
            raise unwritable(e, self.codec, f"{self.operator}: a value of its state") from e

    @abstractmethod
    def get(self, key: Hashable, default: Any = None) -> Any: ...

    @abstractmethod
    def put(self, key: Hashable, value: Any) -> None: ...

    @abstractmethod
    def delete(self, key: Hashable) -> None: ...

    @abstractmethod
    def items(self) -> Iterator[tuple[Hashable, Any]]:
        """Every (key, value), in no particular order; safe to write to while iterating
        over a list() of it."""

    @abstractmethod
    def __len__(self) -> int: ...

    def get_many(self, keys: Iterable[Hashable]) -> list[Any]:
        """Values of many keys at once (None where absent): one call for a whole batch."""
        return [self.get(k) for k in keys]

    def __contains__(self, key: Hashable) -> bool:
        return self.get(key, _MISSING) is not _MISSING


_MISSING = object()
