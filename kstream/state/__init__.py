"""Operator state: one key-value store per stateful operator and task.

Locally (queue streams) a store is a dict; on Kafka it is RocksDB with a changelog topic.
Operators see only the `Store` interface, so both run the same operator code.
"""

from kstream.state.store import MemoryStore, Store

__all__ = ["MemoryStore", "Store"]
