"""A sliding window count by word (4 s windows every 2 s), incremental with inv_fn."""

import operator
import os

import kstream

app = kstream.App("it-windowed", batch_interval=1.0, state_dir=os.environ["KS_TEST_STATE"])
counts = (
    app.stream(os.environ["KS_TEST_INPUT"])
    .flat_map(str.split)
    .map(lambda w: (w, 1))
    .reduce_by_key_and_window(operator.add, operator.sub, 4, 2)
)
counts.to(os.environ["KS_TEST_OUTPUT"])
