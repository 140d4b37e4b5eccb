"""The broker for integration tests: KSTREAM_BOOTSTRAP_SERVERS if set, else embedded Tansu."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from kstream.testing import EmbeddedBroker, create_topics


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker | None]:
    """The embedded broker, or None when the tests run against KSTREAM_BOOTSTRAP_SERVERS."""
    if os.environ.get("KSTREAM_BOOTSTRAP_SERVERS"):
        yield None
        return
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=str(log)) as broker:
        yield broker


@pytest.fixture(scope="session")
def bootstrap(embedded_broker: EmbeddedBroker | None) -> str:
    if embedded_broker is None:
        return os.environ["KSTREAM_BOOTSTRAP_SERVERS"]
    return embedded_broker.bootstrap


@pytest.fixture
def topics(bootstrap: str) -> Callable[..., str]:
    """Make a topic with a unique name: topics("lines", 8) -> "lines-<random>"."""

    def make(prefix: str, partitions: int = 1) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        create_topics(bootstrap, {name: partitions})
        return name

    return make


@pytest.fixture
def app_id() -> str:
    return f"it-{uuid.uuid4().hex[:8]}"
