"""Totals per item from JSON orders, some of them poison: invalid JSON, or a quantity of 0
that the map function divides by."""

import operator
import os

import kstream

app = kstream.App("it-poisoned", batch_interval=1.0)


def price(order):
    return (order["item"], 100 // order["qty"])


totals = (
    app.stream(os.environ["KS_TEST_INPUT"], value_serde="json")
    .map(price)
    .reduce_by_key(operator.add)
)
totals.to(os.environ["KS_TEST_OUTPUT"])
