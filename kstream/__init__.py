"""kstream: Spark Streaming's micro-batch model on plain Kafka."""

from kstream.app import App
from kstream.dstream import DStream
from kstream.errors import ConfigError, FormatError
from kstream.ops.state_ops import State, StateSpec

__all__ = ["App", "ConfigError", "DStream", "FormatError", "State", "StateSpec"]
__version__ = "0.1.0"
