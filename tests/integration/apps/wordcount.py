"""The word count the integration tests run as real `kstream worker` subprocesses."""

import operator
import os
import time

import kstream

app = kstream.App("it-wordcount", batch_interval=1.0)
counts = (
    app.stream(os.environ["KS_TEST_INPUT"])
    .flat_map(str.split)
    .map(lambda w: (w, 1))
    .reduce_by_key(operator.add)
)
counts.to(os.environ["KS_TEST_OUTPUT"])

# A per-batch pause stretches the run so a test can kill the worker in the middle of it.
pause = float(os.environ.get("KS_TEST_PAUSE", "0"))
if pause:
    counts.foreach_batch(lambda records: time.sleep(pause))
