"""The internal format (kstream/codec.py): every value shape the operators keep or send
comes back equal and of the same types, as a value, a store key and in a frame."""

from __future__ import annotations

import collections
import enum
import os
import subprocess
import sys

import pytest

from kstream.codec import Msgpack, Pickle

CODEC = Msgpack()


def same(a, b) -> bool:
    """Equal, and of the same types all the way down (1 == 1.0 == True, (1,) != [1])."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            any(same(k, j) and same(v, b[j]) for j in b if j == k) for k, v in a.items()
        )
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, set | frozenset):
        return a == b and sorted(map(repr, a)) == sorted(map(repr, b))
    return a == b


SCALARS = [
    None,
    True,
    False,
    0,
    -1,
    127,
    2**63 - 1,
    2**64 - 1,  # uint64: msgpack's own
    2**64,  # beyond: an extension type
    -(2**63),
    -(2**63) - 1,
    10**40,
    -(10**40),
    1.5,
    -0.0,
    float("inf"),
    "",
    "word",
    "été ✓",
    b"",
    b"\x00\xff",
]
VALUES = [
    *SCALARS,
    [],
    (),
    (1,),
    ("a", 1),
    [("a", 1), ("b", 2)],
    ((1, (2, (3, None))), [4, (5,)]),  # nested tuples, inside lists and out
    {("a", 1): [1, 2], ("b", (2, 3)): None},  # tuples as dict keys
    {1: "x", None: 2, 2.5: 3, b"k": 4, frozenset({1, 2}): 5, (1, (2,)): 6, 10**30: 7},
    {"k": {"nested": (1, [2, (3,)])}},
    {1, 2, 3},
    frozenset({"a", (1, 2), frozenset({3})}),
    [set(), frozenset()],
    # what the operators keep and send
    ("w", [1, 1, 1]),  # update_state_by_key's map-side combine: (key, [values])
    [7, 5000],  # map_with_state's entry: [state, time of its last update]
    {"batches": [1000, 2000], "through": None},  # a window's META
    {"w1": 3, ("a", 1): 2},  # a window's batch partial
    [1000, 3000, ("x", 2)],  # a session: [start, last, value]
    ("k", ([1, 2], [])),  # cogroup
    ("k", (1, None)),  # an outer join
    ("k", (1.0, 2.0, 9)),  # a closed session: (start, end, value)
    ([("lines", 0), ("lines", 1)], (0,)),  # a marker's (tasks, sides)
]


def stable_id(value: object) -> str:
    """A test id that does not depend on the hash seed (a set's repr does), so every
    pytest-xdist process collects the same tests."""
    text = repr(value)
    return text if "{" not in text or "set" not in text else f"{type(value).__name__}-{len(text)}"


@pytest.mark.parametrize("value", VALUES, ids=stable_id)
def test_every_value_shape_comes_back_the_same(value):
    assert same(CODEC.loads(CODEC.dumps(value)), value)


@pytest.mark.parametrize("value", VALUES, ids=stable_id)
def test_a_frame_of_records_of_every_shape_comes_back_the_same(value):
    rows = [value, value]
    for records in (rows, [("k", value), ("j", value)], [("k", value), value]):
        head, back = CODEC.loads_rows(CODEC.dumps_rows((5000, 1, 2**63), records))
        assert head == (5000, 1, 2**63) and same(back, records)


def hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


HASHABLE = [v for v in VALUES if hashable(v)]


@pytest.mark.parametrize("key", [*HASHABLE, *(("k", v) for v in HASHABLE)], ids=stable_id)
def test_every_key_shape_comes_back_the_same(key):
    assert same(CODEC.loads_key(CODEC.dumps_key(key)), key)


def test_equal_set_keys_give_the_same_bytes_whatever_the_hash_seed():
    code = (
        "import sys; from kstream.codec import Msgpack; "
        "key = ('k', frozenset(f'w{i}' for i in range(50))); "
        "sys.stdout.write(Msgpack().dumps_key(key).hex())"
    )
    out = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(out) == 1


class Point:
    def __init__(self, x):
        self.x = x


class Color(enum.IntEnum):
    RED = 1


Pair = collections.namedtuple("Pair", "a b")


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (Point(1), "tests.unit.test_codec.Point"),
        ([1, {"k": Point(1)}], "tests.unit.test_codec.Point"),
        (Color.RED, "tests.unit.test_codec.Color"),  # an int subclass: not read back as one
        (Pair(1, 2), "tests.unit.test_codec.Pair"),
        (collections.Counter(a=1), "collections.Counter"),
        (("k", Point(1)), "tests.unit.test_codec.Point"),
    ],
)
def test_a_value_msgpack_does_not_carry_is_refused_naming_its_type(value, name):
    with pytest.raises(TypeError, match=rf"{name} is not among the types msgpack carries"):
        CODEC.dumps(value)
    with pytest.raises(TypeError, match=name):
        CODEC.dumps_rows((1, 0, 1), [("k", value)])


def test_a_codec_is_usable_again_after_refusing_a_value():
    with pytest.raises(TypeError):
        CODEC.dumps([("a", (1, Point(1)))])
    assert CODEC.loads(CODEC.dumps([("a", (1, 2))])) == [("a", (1, 2))]


def test_pickle_carries_anything_picklable():
    codec = Pickle()
    value = ("k", Pair(1, Point(2)))
    assert codec.loads(codec.dumps(value))[1].b.x == 2
    head, rows = codec.loads_rows(codec.dumps_rows((1, 0, 3), [value]))
    assert head == (1, 0, 3) and rows[0][1].a == 1
