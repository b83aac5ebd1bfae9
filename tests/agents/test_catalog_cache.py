"""The catalogue cache: edits seen on the next read, unchanged folders not parsed again, scans off the loop."""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from parallel_coordinator.agents import CatalogCache, discover_agents
from parallel_coordinator.agents.scan import MAX_DEPTH
from tests.agents.test_discovery import agent_text, write

HOUR_AGO_NS = time.time_ns() - 3600 * 10**9


def backdate(*paths: Path) -> None:
    """Give files and folders an mtime an hour old, as agents installed earlier have."""
    for path in paths:
        os.utime(path, ns=(HOUR_AGO_NS, HOUR_AGO_NS), follow_symlinks=True)


def descriptions(cache: CatalogCache) -> dict[str, str]:
    return {name: agent.description for name, agent in cache.read_now().agents.items()}


def test_an_edited_added_renamed_or_removed_agent_file_is_seen_on_the_next_read(tmp_path: Path) -> None:
    cache = CatalogCache([(tmp_path, "env")])
    a = write(tmp_path, "a.md", agent_text("a", description="first"))
    assert descriptions(cache) == {"a": "first"}

    a.write_text(agent_text("a", description="second"))
    assert descriptions(cache) == {"a": "second"}

    b = write(tmp_path, "nested/b.md", agent_text("b", description="new"))
    assert descriptions(cache) == {"a": "second", "b": "new"}

    b.rename(tmp_path / "nested" / "c.md")
    assert cache.read_now().agents["b"].path == tmp_path / "nested" / "c.md"

    a.unlink()
    assert descriptions(cache) == {"b": "new"}


def test_a_folder_that_did_not_exist_is_seen_once_it_appears(tmp_path: Path) -> None:
    cache = CatalogCache([(tmp_path / "later", "env")])
    assert descriptions(cache) == {}

    write(tmp_path, "later/a.md", agent_text("a", description="arrived"))

    assert descriptions(cache) == {"a": "arrived"}


def test_an_unchanged_folder_is_not_parsed_again(tmp_path: Path) -> None:
    files = [write(tmp_path, f"{name}.md", agent_text(name, description="old")) for name in ("a", "b", "c")]
    backdate(*files, tmp_path)
    cache = CatalogCache([(tmp_path, "env")])
    assert descriptions(cache) == {"a": "old", "b": "old", "c": "old"}
    assert (cache.parses, cache.scans) == (3, 1)

    # New content of the same size behind the same mtime: the cache has no reason to read it.
    files[0].write_text(agent_text("a", description="new"))
    backdate(files[0])
    assert descriptions(cache)["a"] == "old"
    assert (cache.parses, cache.scans) == (3, 1)

    os.utime(files[0])  # what an editor's save does
    assert descriptions(cache) == {"a": "new", "b": "old", "c": "old"}
    assert cache.parses == 4  # only the file that changed


def test_a_file_written_just_now_is_read_again_even_if_its_mtime_did_not_move(tmp_path: Path) -> None:
    path = write(tmp_path, "a.md", agent_text("a", description="one"))
    cache = CatalogCache([(tmp_path, "env")])
    assert descriptions(cache) == {"a": "one"}
    stamp = path.stat().st_mtime_ns

    # Two saves within one tick of the file system's clock leave one mtime.
    path.write_text(agent_text("a", description="two"))
    os.utime(path, ns=(stamp, stamp))

    assert descriptions(cache) == {"a": "two"}


def test_pool_callers_get_their_own_copy_of_the_catalog(tmp_path: Path) -> None:
    write(tmp_path, "a.md", agent_text("a"))
    cache = CatalogCache([(tmp_path, "env")])

    cache.read_now().agents.clear()

    assert cache.read_now().names() == ["a"]


@pytest.mark.anyio
async def test_two_concurrent_readers_share_one_scan(tmp_path: Path) -> None:
    files = [write(tmp_path, f"agent-{i}.md", agent_text(f"agent-{i}")) for i in range(50)]
    backdate(*files, tmp_path)
    cache = CatalogCache([(tmp_path, "env")])
    sizes: list[int] = []

    async def read() -> None:
        sizes.append(len(await cache.read()))

    async with anyio.create_task_group() as group:
        group.start_soon(read)
        group.start_soon(read)

    assert sizes == [50, 50]
    assert (cache.scans, cache.parses) == (1, 50)


@pytest.mark.anyio
async def test_the_event_loop_keeps_running_while_a_large_folder_is_scanned(tmp_path: Path) -> None:
    for i in range(3000):
        (tmp_path / f"agent-{i:04}.md").write_text(agent_text(f"agent-{i:04}", description=f"number {i}"))
    cache = CatalogCache([(tmp_path, "env")])
    ticks = 0
    scanned = anyio.Event()

    async def tick() -> None:
        nonlocal ticks
        while not scanned.is_set():
            ticks += 1
            await anyio.lowlevel.checkpoint()

    with anyio.fail_after(120):
        async with anyio.create_task_group() as group:
            group.start_soon(tick)
            catalog = await cache.read()
            scanned.set()

    assert len(catalog) == 3000 and cache.parses == 3000
    # Parsed on the event loop, the first scan would let the ticker run once at most.
    assert ticks > 50


def test_a_symlink_into_a_large_tree_is_walked_within_the_bound_and_reported(tmp_path: Path) -> None:
    big = tmp_path / "big"
    for i in range(300):
        write(big, f"part-{i // 100}/agent-{i:03}.md", agent_text(f"big-{i:03}"))
    agents = tmp_path / "agents"
    write(agents, "good.md", agent_text("good"))
    (agents / "usr").symlink_to(big, target_is_directory=True)
    cache = CatalogCache([(agents, "env")], max_entries=120)

    catalog = cache.read_now()

    assert "good" in catalog
    assert 0 < cache.parses < 120  # stopped inside the linked tree, never past the bound
    [stopped] = [d for d in catalog.diagnostics if "stopped" in d.problem]
    assert stopped.path == str(agents) and stopped.skipped
    assert "after 120 files and directories" in stopped.problem
    assert str(agents / "usr" / "part-") in stopped.problem  # where: inside the symlink


def test_directories_deeper_than_the_bound_are_not_searched_and_reported(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*(f"level-{i}" for i in range(MAX_DEPTH + 1)))
    write(deep, "hidden-deep.md", agent_text("too-deep"))
    write(tmp_path, "level-0/shallow.md", agent_text("shallow"))

    catalog = discover_agents([(tmp_path, "env")])

    assert catalog.names() == ["shallow"]
    [report] = catalog.diagnostics
    assert report.path == str(tmp_path)
    assert f"1 directory more than {MAX_DEPTH} levels deep was not searched" in report.problem
    assert str(deep) in report.problem
