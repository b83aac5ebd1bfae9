"""Every option does something, every package names its public surface, and the engine writes state one way.

These read the source: an option nobody reads, a module that is neither public nor private, or a
store write outside the recorder is a design slip no behaviour test would notice.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
from pathlib import Path

import pytest

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.policy import SessionPolicy
from parallel_coordinator.schemas.inputs import CoordinateOptions

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "parallel_coordinator"


def source(*exclude: str) -> str:
    return "\n".join(
        path.read_text(encoding="utf-8") for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).as_posix() not in exclude
    )


def read_somewhere(name: str, text: str, owners: str) -> bool:
    """`owners.name` read somewhere: `owners` a regex of what the value is reached through (options, policy, ...)."""
    return re.search(rf"\b(?:{owners})\.{name}\b", text) is not None


_OPTIONS = r"options|plan\.options"
_POLICY = r"policy"
_SETTINGS = r"settings|self"  # self: the settings' own properties (alert_limits, environment_policy)


def _reads(option_property: str) -> set[str]:
    """The option fields a property of CoordinateOptions reads (memory_limit_mb reads max_memory_per_agent)."""
    prop = getattr(CoordinateOptions, option_property, None)
    if not isinstance(prop, property) or prop.fget is None:
        return {option_property}
    return set(re.findall(r"self\.(\w+)", inspect.getsource(prop.fget)))


def test_every_tool_option_is_read_by_the_tools_or_by_the_policy_a_session_runs_by() -> None:
    policy_source = (PACKAGE / "engine" / "policy.py").read_text(encoding="utf-8")
    mapped = dict(re.findall(r"(\w+)=options\.(\w+)", policy_source))  # policy field -> option
    elsewhere = source("schemas/inputs.py", "engine/policy.py")
    unread = []
    for option in CoordinateOptions.model_fields:
        via_policy = [field for field, source_option in mapped.items() if option in _reads(source_option)]
        direct = read_somewhere(option, elsewhere, _OPTIONS)
        if not (direct or any(read_somewhere(f, elsewhere, _POLICY) for f in via_policy)):
            unread.append(option)
    assert unread == [], f"options nothing reads: {unread}"


def test_every_field_of_the_policy_is_filled_from_the_options_and_read_by_the_engine() -> None:
    policy_source = (PACKAGE / "engine" / "policy.py").read_text(encoding="utf-8")
    mapped = dict(re.findall(r"(\w+)=options\.(\w+)", policy_source))
    elsewhere = source("engine/policy.py")
    fields = [f.name for f in dataclasses.fields(SessionPolicy)]
    assert sorted(mapped) == sorted(fields)
    assert [f for f in fields if not read_somewhere(f, elsewhere, _POLICY)] == []


def test_every_setting_has_a_reader_outside_the_configuration() -> None:
    parsing = [p for p in (PACKAGE / "config").glob("*.py") if p.name != "settings.py"]  # where the file is read
    elsewhere = source(*(p.relative_to(PACKAGE).as_posix() for p in parsing))
    unread = [f.name for f in dataclasses.fields(Settings) if not read_somewhere(f.name, elsewhere, _SETTINGS)]
    assert unread == [], f"settings nothing outside config/ reads: {unread}"


def packages() -> list[Path]:
    return sorted(p.parent for p in PACKAGE.rglob("__init__.py"))


@pytest.mark.parametrize("folder", packages(), ids=lambda p: p.relative_to(PACKAGE.parent).as_posix())
def test_each_package_names_its_public_surface_in_all(folder: Path) -> None:
    """A layer package's surface is its modules, and then every module is listed or private; another
    package's surface is the names its __init__ defines or imports."""
    name = ".".join(folder.relative_to(PACKAGE.parent).parts)
    package = importlib.import_module(name)
    public = getattr(package, "__all__", None)
    assert public is not None, f"{name} has no __all__"
    modules = {p.stem for p in folder.glob("*.py") if p.stem not in ("__init__", "__main__")}
    modules |= {p.parent.name for p in folder.glob("*/__init__.py")}
    if public and all(entry in modules for entry in public):
        unlisted = sorted(m for m in modules if not m.startswith("_") and m not in public)
        assert unlisted == [], f"{name}: modules neither named in __all__ nor private: {unlisted}"
        for entry in public:
            importlib.import_module(f"{name}.{entry}")
    else:
        assert public, f"{name}: __all__ is empty"
        assert [entry for entry in public if not hasattr(package, entry)] == []


_STORE_WRITES = {"create_session", "update_task", "update_tasks", "add_attempt", "finish_session"}


def test_the_engine_writes_session_state_only_through_the_recorder() -> None:
    writers = []
    for path in sorted((PACKAGE / "engine").glob("*.py")):
        if path.name == "recorder.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in _STORE_WRITES:
                writers.append(f"{path.name}:{node.lineno} {node.attr}")
    assert writers == []


_PRESENTATION = tuple(
    f"parallel_coordinator.{m}" for m in ("views", "schemas.outputs", "server", "tools", "cli", "report")
)


def test_the_engine_imports_nothing_of_mcp_views_or_the_tool_outputs() -> None:
    found = []
    for path in sorted((PACKAGE / "engine").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):  # `from parallel_coordinator import views` names views too
                names = [node.module or "", *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for imported in names:
                if imported.split(".")[0] == "mcp" or imported.startswith(_PRESENTATION):
                    found.append(f"{path.name}: {imported}")
    assert found == []


# `== "claude"`, `!= "command"`, `in ("claude", ...)`, `case "claude"`, and the name on the left of == or !=.
_RUNNER_NAME_TEST = re.compile(
    r"""(==|!=|\bin\b|\bcase\b)\s*[(\[{]?\s*["'](claude|command)["']|["'](claude|command)["']\s*(==|!=)"""
)


def test_the_engine_does_not_branch_on_a_runners_name() -> None:
    found = [
        f"{path.name}:{number}" for path in sorted((PACKAGE / "engine").glob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _RUNNER_NAME_TEST.search(line)
    ]
    assert found == []
