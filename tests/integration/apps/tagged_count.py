"""The word count of the fault-tolerance tests, keeping what it counted: per batch and
word, the ids of the lines the word came from (a line is "<id> word word ..."). An
output then tells a repeated record from a lost one, which a bare count cannot."""

import operator
import os
import time

import kstream

# librdkafka settings as "key=value,key=value" (the command line's -X take precedence)
kafka = dict(kv.split("=", 1) for kv in os.environ.get("KS_TEST_KAFKA", "").split(",") if kv)
app = kstream.App("it-tagged-count", batch_interval=1.0, kafka=kafka)

# One slow line: the worker notes in KS_TEST_SLOW_MARK that it started on it (one line
# per time it is processed), then takes KS_TEST_SLOW_SECONDS over it.
slow_id = int(os.environ.get("KS_TEST_SLOW_ID", "-1"))
slow_seconds = float(os.environ.get("KS_TEST_SLOW_SECONDS", "0"))
slow_mark = os.environ.get("KS_TEST_SLOW_MARK", "")


def tagged_words(line: str) -> list[tuple[str, list[int]]]:
    rid, *words = line.split()
    if int(rid) == slow_id:
        with open(slow_mark, "a") as f:
            f.write(f"{os.getpid()} {time.time():.3f}\n")
        time.sleep(slow_seconds)
    return [(w, [int(rid)]) for w in words]


counts = app.stream(os.environ["KS_TEST_INPUT"]).flat_map(tagged_words)
counts = counts.reduce_by_key(operator.add)  # key word, value the line ids (JSON list)
counts.to(os.environ["KS_TEST_OUTPUT"])

# A pause per non-empty batch stretches the run so that faults land in the middle of it
# (empty batches, e.g. those closed by the wall clock after the backlog, do not pause).
pause = float(os.environ.get("KS_TEST_PAUSE", "0"))
if pause:
    counts.foreach_batch(lambda records: records and time.sleep(pause))
