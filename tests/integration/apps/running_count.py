"""A running word count kept with update_state_by_key: state across batches on Kafka."""

import os
import time

import kstream


def add(new_values, total):
    return sum(new_values) + (total or 0)


app = kstream.App("it-running", batch_interval=1.0, state_dir=os.environ["KS_TEST_STATE"])
words = app.stream(os.environ["KS_TEST_INPUT"]).flat_map(str.split)
if os.environ.get("KS_TEST_VARIANT") == "short-words":  # a changed pipeline
    words = words.filter(lambda w: len(w) < 4)
totals = words.map(lambda w: (w, 1)).update_state_by_key(add)
totals.to(os.environ["KS_TEST_OUTPUT"])

pause = float(os.environ.get("KS_TEST_PAUSE", "0"))
if pause:
    totals.foreach_batch(lambda records: time.sleep(pause))
