"""kstream: Spark Streaming's micro-batch model on plain Kafka."""

from kstream.app import App
from kstream.dstream import DStream
from kstream.errors import ConfigError

__all__ = ["App", "ConfigError", "DStream"]
__version__ = "0.1.0"
