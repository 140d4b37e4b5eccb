"""The broker for integration tests: KSTREAM_BOOTSTRAP_SERVERS if set, else embedded Tansu."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from kstream.testing import EmbeddedBroker, create_topics


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("KSTREAM_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=str(log)) as broker:
        yield broker.bootstrap


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
