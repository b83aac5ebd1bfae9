"""`parallel_coordinator.config` names its public surface, and each name is the one its module defines."""

from __future__ import annotations

import inspect

import parallel_coordinator.config as config
from parallel_coordinator.config import file, settings


def test_all_is_exactly_the_public_names_the_package_offers() -> None:
    offered = {name for name, value in vars(config).items() if not name.startswith("_") and not inspect.ismodule(value)}
    assert sorted(config.__all__) == sorted(offered)


def test_each_public_name_is_the_object_its_module_defines() -> None:
    for name in config.__all__:
        home = settings if hasattr(settings, name) else file
        assert getattr(config, name) is getattr(home, name), name
