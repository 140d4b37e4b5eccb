"""A pipeline whose user function hangs on the record "hang" (for the watchdog test)."""

import os
import time

import kstream


def shout(line: str) -> str:
    if line == "hang":
        time.sleep(3600)
    return line.upper()


app = kstream.App("it-hangs", batch_interval=1.0)
app.stream(os.environ["KS_TEST_INPUT"]).map(shout).to(os.environ["KS_TEST_OUTPUT"])
