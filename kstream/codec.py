"""The internal format: how repartition frames, changelog records and state stores turn
values into bytes, and the Kafka header that says which format a record is in.

"msgpack" (the default) carries None, bool, int (any size), float, str, bytes, list,
dict, tuple, set and frozenset, exact types only (a subclass is refused: it would come back
as its base class), and reading it runs no code: whoever writes an internal topic can only feed the
app wrong data. "pickle" carries anything picklable, and reading it runs whatever the
bytes say: an app opts in per operator or as a whole, and then anyone who can write its
internal topics can run code in its workers.

A Codec keeps packers: one per worker (or local run), used by one thread at a time.
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from operator import itemgetter
from typing import Any

import msgpack

from kstream.errors import FormatError

HEADER = "kstream.format"
VERSION = 1
SERDES = ("msgpack", "pickle")
CARRIED = "None, bool, int, float, str, bytes, list, dict, tuple, set, frozenset"
OPT_IN = (
    'a value of another type needs serde="pickle" on the operator or '
    'internal_serde="pickle" on the App (--internal-serde): then anyone who can write '
    "the app's internal topics can run code in its workers"
)


class Codec(ABC):
    """Values to bytes and back, in one format (`<name>/<version>`, in every record's
    `kstream.format` header)."""

    name: str

    def __init__(self) -> None:
        self.format = f"{self.name}/{VERSION}"
        self.headers = [(HEADER, self.format.encode())]

    @abstractmethod
    def dumps(self, value: Any) -> bytes: ...

    @abstractmethod
    def loads(self, raw: bytes) -> Any: ...

    @abstractmethod
    def dumps_key(self, key: Any) -> bytes:
        """A store key: equal keys of the same types give the same bytes."""

    @abstractmethod
    def loads_key(self, raw: bytes) -> Any: ...

    @abstractmethod
    def dumps_rows(self, head: tuple[int, ...], rows: list[Any]) -> bytes:
        """A frame: a few ints, then a list of records."""

    @abstractmethod
    def loads_rows(self, raw: bytes) -> tuple[tuple[int, ...], list[Any]]: ...


class Pickle(Codec):
    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, 5)

    def loads(self, raw: bytes) -> Any:
        return pickle.loads(raw)

    def dumps_key(self, key: Any) -> bytes:
        return pickle.dumps(key, 5)

    def loads_key(self, raw: bytes) -> Any:
        return pickle.loads(raw)

    def dumps_rows(self, head: tuple[int, ...], rows: list[Any]) -> bytes:
        return pickle.dumps((head, rows), 5)

    def loads_rows(self, raw: bytes) -> tuple[tuple[int, ...], list[Any]]:
        return pickle.loads(raw)


# Extension types: what msgpack has no type of its own for
_TUPLE, _SET, _FROZENSET, _INT = 1, 2, 3, 4
_ext = msgpack.ExtType
_new = tuple.__new__  # an ExtType without its constructor's checks (Python code, slow)
_unpackb = msgpack.unpackb


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _INT:
        return int.from_bytes(data, "big", signed=True)
    items = _unpackb(data, ext_hook=_ext_hook, strict_map_key=False)
    if code == _TUPLE:
        return tuple(items)
    if code == _FROZENSET:
        return frozenset(items)
    if code == _SET:
        return set(items)
    raise ValueError(f"unknown msgpack extension type {code}")


def _type_name(t: type) -> str:
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


class Msgpack(Codec):
    """Exact types only (the packer's strict_types): a subclass, a namedtuple say, is
    refused rather than silently read back as its base class."""

    name = "msgpack"

    def __init__(self) -> None:
        super().__init__()
        # by nesting depth: a packer is busy while `_default` packs what it holds
        self._packers = [self._packer()]
        self._depth = 0
        self._pack = self._packers[0].pack
        self._array_header = msgpack.Packer().pack_array_header

    def _packer(self) -> msgpack.Packer:
        return msgpack.Packer(default=self._default, strict_types=True, buf_size=4096)

    def _inner(self, value: Any) -> bytes:
        depth = self._depth = self._depth + 1
        try:
            if depth == len(self._packers):
                self._packers.append(self._packer())
            return self._packers[depth].pack(value)
        finally:
            self._depth = depth - 1

    def _default(self, value: Any) -> Any:
        t = type(value)
        if t is tuple:
            return _new(_ext, (_TUPLE, self._inner(list(value))))
        if t is int:  # beyond 64 bits
            data = value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)
            return _new(_ext, (_INT, data))
        if t is frozenset or t is set:
            items = sorted(map(self._inner, value))  # in one order: set keys are stable
            data = self._array_header(len(items)) + b"".join(items)
            return _new(_ext, (_FROZENSET if t is frozenset else _SET, data))
        raise TypeError(f"{_type_name(t)} is not among the types msgpack carries here ({CARRIED})")

    def dumps(self, value: Any) -> bytes:
        return self._pack(value)

    def loads(self, raw: bytes) -> Any:
        return _unpackb(raw, ext_hook=_ext_hook, strict_map_key=False)

    def dumps_key(self, key: Any) -> bytes:
        """A top-level tuple as an array (a key is never a list): store keys are tuples
        like ("k", key), and an extension type costs a Python call each way."""
        return self._pack(list(key) if type(key) is tuple else key)

    def loads_key(self, raw: bytes) -> Any:
        return _unpackb(raw, use_list=False, ext_hook=_ext_hook, strict_map_key=False)

    def dumps_rows(self, head: tuple[int, ...], rows: list[Any]) -> bytes:
        return self._pack([*head, _columns(rows)])

    def loads_rows(self, raw: bytes) -> tuple[tuple[int, ...], list[Any]]:
        *head, columns = self.loads(raw)
        return tuple(head), _rows(columns)


def _columns(rows: list[Any]) -> list[Any]:
    """Records as columns: tuples of one length n become [n, column 1, ..., column n],
    each column alike, so that a frame of pairs needs no extension type per record (the
    packer's C code does it all); any other list becomes [0, its items]."""
    count = len(rows)
    n = len(rows[0]) if count and type(rows[0]) is tuple else 0
    # all tuples, of n items each: none is shorter (column n - 1 has them all), and then
    # none is longer (their lengths add up)
    if n and list(map(type, rows)).count(tuple) == count and sum(map(len, rows)) == n * count:
        try:
            columns = [list(map(itemgetter(i), rows)) for i in range(n)]
        except IndexError:
            return [0, rows]
        return [n, *map(_columns, columns)]
    return [0, rows]


def _rows(columns: list[Any]) -> list[Any]:
    n, *parts = columns
    if n == 0 and len(parts) == 1 and type(parts[0]) is list:
        return parts[0]
    cols = [_rows(c) for c in parts]
    if n < 1 or len(cols) != n or len(set(map(len, cols))) != 1:
        raise ValueError("malformed columns")
    return list(zip(*cols, strict=True))


def codecs() -> dict[str, Codec]:
    """One codec of each serde, for one worker or local run."""
    return {"msgpack": Msgpack(), "pickle": Pickle()}


def refused(
    headers: list[tuple[str, bytes | None]] | None, codec: Codec, where: str
) -> FormatError:
    """The error that stops a worker meeting a record of `where` that is not in `codec`'s
    format: another serde (pickle, when not opted in: reading it could run any code),
    another version, or no format at all (written by an earlier kstream, or not by
    kstream). The record is not read."""
    raw = dict(headers or ()).get(HEADER)
    if raw is None:
        what = f"has no {HEADER} header (written by an earlier kstream, or not by kstream)"
    else:
        what = f"is in format {raw.decode(errors='replace')!r}"
        if raw.startswith(b"pickle/"):
            what += ' (reading pickle can run any code: only serde="pickle" reads it)'
    return FormatError(
        f"{where}: a record that {what}; this worker reads {codec.format} there, so it "
        "stops without reading it (`kstream reset` starts the app's internal topics and "
        "state over)"
    )


def unwritable(error: BaseException, codec: Codec, what: str) -> FormatError:
    """The error that stops a worker (or a local run) whose operator emits or keeps a
    value its format does not carry."""
    advice = "" if codec.name == "pickle" else f"; {OPT_IN}"
    return FormatError(f"{what} cannot be written as {codec.format}: {error}{advice}")
