"""A running word count kept with update_state_by_key: state across batches on Kafka."""

import os
import time

import kstream


def add(new_values, total):
    return sum(new_values) + (total or 0)


app = kstream.App("it-running", batch_interval=1.0, state_dir=os.environ["KS_TEST_STATE"])
variant = os.environ.get("KS_TEST_VARIANT")
words = app.stream(os.environ["KS_TEST_INPUT"]).flat_map(str.split)
if variant == "edited":  # stateless steps added upstream: the state carries on
    words = words.filter(lambda w: len(w) < 4).map(str.lower)
# renamed: the state is under the default name (update_state_by_key.add), now orphaned
name = "word-totals" if variant == "renamed" else None
totals = words.map(lambda w: (w, 1)).update_state_by_key(add, name=name)
totals.to(os.environ["KS_TEST_OUTPUT"])

pause = float(os.environ.get("KS_TEST_PAUSE", "0"))
if pause:
    totals.foreach_batch(lambda records: time.sleep(pause))
