"""A count per key over ever-new keys (map_with_state): state that only grows.

Each batch's output, a (key, count) per record, is summed up in one line of the file
KS_TEST_REPORT, "batch_ms records sum_of_counts", so a test can follow the state without
reading hundreds of thousands of records back. After each batch, glibc's malloc_trim hands
the memory freed back to the system, so the worker's RSS shows what it holds rather than
what its allocator keeps from earlier batches.
"""

import ctypes
import os

import kstream

try:
    _trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc
    _trim = None


def count(key, value, state):
    n = (state.get() if state.exists() else 0) + value
    state.update(n)
    return key, n


def report(t, records):
    with open(os.environ["KS_TEST_REPORT"], "a") as f:
        f.write(f"{round(t * 1000)} {len(records)} {sum(n for _, n in records)}\n")
    if _trim is not None:
        _trim(0)


# the stores' memory comes from the worker's environment (KSTREAM_STATE_MEMORY_MB)
app = kstream.App("it-many-keys", batch_interval=1.0, state_dir=os.environ["KS_TEST_STATE"])
keys = app.stream(os.environ["KS_TEST_INPUT"]).flat_map(str.split).map(lambda k: (k, 1))
keys.map_with_state(kstream.StateSpec(count)).foreach_batch(report)
