"""The shard tests' fixtures: a desk for agents to report to, and a shard process linked to a hub in the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.supervisor.shard_hub import Desk, LinkedShard, linked_shard


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    desk = Desk(tmp_path)
    yield desk
    desk.close()


@pytest.fixture
def shard(tmp_path: Path, mechanisms: str) -> Iterator[LinkedShard]:
    with linked_shard(tmp_path) as shard:  # started after `mechanisms` set its environment
        yield shard
