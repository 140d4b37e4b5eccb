"""Operator state: one key-value store per stateful operator and task.

Locally (queue streams) a store is a dict; on Kafka it is RocksDB with a changelog topic.
Both keep a batch's changes in the same transaction (kstream/state/transaction.py), and
operators see only the `Store` interface, so both run the same operator code.
"""

from kstream.state.memory import MemoryStore
from kstream.state.store import Store

__all__ = ["MemoryStore", "Store"]
