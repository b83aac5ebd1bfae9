"""Agent discovery: files to AgentSpecs, directories to a catalog, and the real VoltAgent collection."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

import parallel_coordinator.agents
from parallel_coordinator.agents import (
    AgentCatalog,
    AgentSpec,
    Diagnostic,
    default_agent_dirs,
    discover_agents,
    parse_agent_file,
)
from parallel_coordinator.agents.spec import SourceKind

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "agents-voltagent"

# The corpus files whose description holds an unquoted ': ' that strict YAML rejects.
UNQUOTED_COLON_FILES = {
    "04-quality-security/gdpr-ccpa-compliance.md",
    "07-specialized-domains/hipaa-compliance.md",
    "08-business-product/assumption-mapping.md",
    "08-business-product/backlog-grooming.md",
    "08-business-product/growth-loops.md",
    "10-research-analysis/ab-test-analysis.md",
    "10-research-analysis/cohort-analysis.md",
    "10-research-analysis/first-principles-thinking.md",
}


def write(directory: Path, relative: str, text: str) -> Path:
    path = directory / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def agent_text(name: str, **keys: str) -> str:
    lines = [
        "---",
        f"name: {name}",
        *(f"{key}: {value}" for key, value in keys.items()),
        "---",
        f"I am {name}.",
    ]
    return "\n".join(lines) + "\n"


def parse(path: Path, source: SourceKind = "user") -> tuple[AgentSpec | None, list[Diagnostic]]:
    return parse_agent_file(path, source=source, root=path.parent)


def test_package_exports_exactly_the_public_names() -> None:
    assert set(parallel_coordinator.agents.__all__) == {
        "AgentCatalog",
        "AgentSpec",
        "CatalogCache",
        "Diagnostic",
        "default_agent_dirs",
        "discover_agents",
        "parse_agent_file",
    }


def test_claude_code_keys_map_onto_the_spec_and_unknown_keys_are_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "reviewer.md",
        """
        ---
        name: code-reviewer
        description: Reviews code for bugs
        tools: Read, Grep,  Glob
        disallowedTools: [Bash, Write]
        model: claude-sonnet-4-5
        color: purple
        permissionMode: plan
        hooks:
          Stop:
            - command: echo done
        ---

        You review code.
        """,
    )

    spec, diagnostics = parse_agent_file(path, source="project", root=tmp_path)

    assert diagnostics == []
    assert spec is not None
    assert spec.name == "code-reviewer"
    assert spec.description == "Reviews code for bugs"
    assert spec.body == "You review code."
    assert spec.tools == ["Read", "Grep", "Glob"]
    assert spec.disallowed_tools == ["Bash", "Write"]
    assert spec.model == "claude-sonnet-4-5"
    assert spec.runner == "claude"
    assert (spec.path, spec.source, spec.root) == (path, "project", tmp_path)
    assert spec.extra == {
        "color": "purple",
        "permissionMode": "plan",
        "hooks": {"Stop": [{"command": "echo done"}]},
    }


def test_tools_as_a_yaml_list_become_that_list(tmp_path: Path) -> None:
    path = write(tmp_path, "a.md", "---\nname: a\ntools:\n  - Read\n  - mcp__github__search\n---\n")

    spec, _ = parse(path)

    assert spec is not None
    assert spec.tools == ["Read", "mcp__github__search"]


def test_absent_tools_mean_all_tools_and_model_inherit_is_kept(tmp_path: Path) -> None:
    spec, _ = parse(write(tmp_path, "a.md", agent_text("a", model="inherit")))

    assert spec is not None
    assert spec.tools is None
    assert spec.disallowed_tools is None
    assert spec.model == "inherit"


def test_coordinator_keys_are_read(tmp_path: Path) -> None:
    text = agent_text(
        "a",
        max_concurrent="2",
        priority="High",
        fallback_agents="b, c",
        timeout='"90"',
        isolation="worktree",
    )

    spec, diagnostics = parse(write(tmp_path, "a.md", text))

    assert diagnostics == []
    assert spec is not None
    assert (spec.max_concurrent, spec.priority, spec.fallback_agents) == (2, "high", ["b", "c"])
    assert (spec.timeout, spec.isolation) == (90.0, "worktree")


def test_command_as_a_string_is_split_like_a_shell_would(tmp_path: Path) -> None:
    text = agent_text("a", runner="command", command="""python3 -c 'print("hi there")' --flag""")

    spec, diagnostics = parse(write(tmp_path, "a.md", text))

    assert diagnostics == []
    assert spec is not None
    assert spec.runner == "command"
    assert spec.command == ["python3", "-c", 'print("hi there")', "--flag"]


def test_command_as_a_list_is_kept_with_numbers_as_text(tmp_path: Path) -> None:
    spec, _ = parse(write(tmp_path, "a.md", agent_text("a", runner="command", command='["sleep", 5]')))

    assert spec is not None
    assert spec.command == ["sleep", "5"]


def test_runner_command_without_a_usable_command_is_skipped(tmp_path: Path) -> None:
    missing = write(tmp_path, "missing.md", agent_text("missing", runner="command"))
    unbalanced = write(tmp_path, "unbalanced.md", agent_text("unbalanced", runner="command", command="'oops"))

    for path in (missing, unbalanced):
        spec, diagnostics = parse(path)
        assert spec is None
        assert diagnostics[-1].skipped
        assert "'runner: command' but no usable 'command'" in diagnostics[-1].problem


def test_an_unusable_command_is_the_reason_given_when_a_command_agent_is_skipped(tmp_path: Path) -> None:
    spec, diagnostics = parse(write(tmp_path, "a.md", agent_text("a", runner="command", command="\"'oops\"")))

    assert spec is None
    [skip] = diagnostics  # the reason is in the skip, not also in a "repaired" note
    assert skip.problem.startswith("skipped: agent 'a': it has 'runner: command' but no usable 'command' (")
    assert "cannot be split into arguments" in skip.problem


@pytest.mark.parametrize(
    ("runner", "hint"),
    [("clade", "did you mean 'claude'?"), ("Comand", "did you mean 'command'?"), ("codx", "did you mean 'codex'?"),
     ("docker", None), ("", None)],
)
def test_an_unknown_runner_skips_the_agent_and_names_the_closest_runner(
    tmp_path: Path, runner: str, hint: str | None
) -> None:
    spec, diagnostics = parse(write(tmp_path, "a.md", agent_text("a", runner=f'"{runner}"')))

    assert spec is None
    [skip] = diagnostics
    assert skip.skipped and skip.path == str(tmp_path / "a.md")
    assert skip.problem.startswith(f"skipped: agent 'a': unknown runner {runner!r}")
    assert "(this version runs claude, command, codex and gemini agents)" in skip.problem
    assert (hint in skip.problem) if hint else ("did you mean" not in skip.problem)


@pytest.mark.parametrize(("runner", "kind"), [("codex", "codex"), ("Gemini", "gemini")])
def test_a_codex_or_gemini_agent_is_read_with_its_runner(tmp_path: Path, runner: str, kind: str) -> None:
    spec, diagnostics = parse(write(tmp_path, "a.md", agent_text("a", runner=runner)))

    assert diagnostics == []
    assert spec is not None and spec.runner == kind


def test_a_runner_that_is_not_text_skips_the_agent(tmp_path: Path) -> None:
    spec, diagnostics = parse(write(tmp_path, "a.md", agent_text("a", runner="[claude]")))

    assert spec is None
    assert diagnostics[0].problem == (
        "skipped: agent 'a': 'runner' must be one of claude, command, codex, gemini, got ['claude']"
    )


def test_a_nul_byte_in_a_command_element_skips_the_agent_and_names_the_element(tmp_path: Path) -> None:
    text = agent_text("a", runner="command", command=r'[python3, -c, "print(1)\0"]')

    spec, diagnostics = parse(write(tmp_path, "a.md", text))

    assert spec is None
    assert [d.problem for d in diagnostics] == [
        "skipped: agent 'a': command[2] ('print(1)\\x00') holds a NUL byte, which no program can be given; remove it"
    ]


@pytest.mark.parametrize(
    ("key", "value", "where"),
    [("model", r'"sonnet\0"', "model ('sonnet\\x00')"), ("tools", r'[Read, "Gr\0ep"]', "tools[1]"),
     ("permissionMode", r'"plan\0"', "permissionMode"), ("hooks", r'{Stop: ["a\0"]}', "hooks['Stop'][0]")],
)
def test_a_nul_byte_anywhere_in_the_front_matter_skips_the_agent(
    tmp_path: Path, key: str, value: str, where: str
) -> None:
    spec, diagnostics = parse(write(tmp_path, "a.md", agent_text("a", **{key: value})))

    assert spec is None
    assert diagnostics[0].problem.startswith(f"skipped: agent 'a': {where}")
    assert "holds a NUL byte" in diagnostics[0].problem


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ('["", x]', "'command' names no program"),
        ('["  ", x]', "'command' names no program"),
        (r'[echo, "\ud800"]', "command[1] ('\\ud800') holds a character this system cannot pass to a program"),
        (f"[echo, {'x' * 131_072}]", "command[1] is 131072 bytes, over the 131072 a program can be given"),
    ],
)
def test_a_command_that_exec_would_refuse_skips_the_agent_and_says_why(
    tmp_path: Path, command: str, problem: str
) -> None:
    spec, diagnostics = parse(write(tmp_path, "a.md", agent_text("a", runner="command", command=command)))

    assert spec is None
    [skip] = diagnostics
    assert skip.skipped and problem in skip.problem


def test_a_claude_agent_whose_body_cannot_be_one_argument_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "a.md", "---\nname: a\n---\n" + "x" * 131_072 + "\n")

    spec, diagnostics = parse(path)

    assert spec is None
    assert "its body is 131072 bytes, over the 131072 that one argument" in diagnostics[0].problem


def test_a_long_body_skips_a_codex_agent_but_not_a_gemini_one_whose_body_travels_on_stdin(tmp_path: Path) -> None:
    body = "x" * 131_072 + "\n"
    codex, codex_diagnostics = parse(write(tmp_path, "c.md", "---\nname: c\nrunner: codex\n---\n" + body))
    gemini, gemini_diagnostics = parse(write(tmp_path, "g.md", "---\nname: g\nrunner: gemini\n---\n" + body))

    assert codex is None
    assert "the codex runner passes it as the system prompt" in codex_diagnostics[0].problem
    assert gemini is not None and gemini_diagnostics == []


def test_bad_max_concurrent_is_dropped_and_reported_as_repaired(tmp_path: Path) -> None:
    spec, diagnostics = parse(write(tmp_path, "a.md", agent_text("a", max_concurrent="0")))

    assert spec is not None
    assert spec.max_concurrent is None
    assert [(d.skipped, d.problem) for d in diagnostics] == [
        (False, "repaired: 'max_concurrent' must be a whole number of at least 1, got 0; the key was ignored")
    ]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_concurrent", "many"),
        ("max_concurrent", "true"),
        ("max_concurrent", "1.5"),
        ("priority", "urgent"),
        ("timeout", "-3"),
        ("timeout", ".inf"),
        ("fallback_agents", "{a: 1}"),
        ("tools", "[Read, 3]"),
        ("description", "[a, b]"),
    ],
)
def test_every_invalid_optional_value_is_dropped_with_a_diagnostic_naming_key_and_value(
    tmp_path: Path, key: str, value: str
) -> None:
    spec, diagnostics = parse(write(tmp_path, "a.md", agent_text("a", **{key: value})))

    assert spec is not None
    assert len(diagnostics) == 1
    assert not diagnostics[0].skipped
    assert f"'{key}'" in diagnostics[0].problem
    assert diagnostics[0].problem.startswith("repaired: ")


def test_file_without_a_name_is_skipped_and_its_file_name_is_not_used(tmp_path: Path) -> None:
    path = write(tmp_path, "helper.md", "---\ndescription: helps\n---\nBody\n")

    spec, diagnostics = parse(path)

    assert spec is None
    assert diagnostics == [
        Diagnostic(
            path=str(path),
            problem="skipped: no 'name' in the front matter (Claude Code identifies agents by name)",
        )
    ]


@pytest.mark.parametrize(
    ("value", "reason"), [("42", "got int 42"), ("[a, b]", "got list"), ('"  "', "empty")]
)
def test_name_that_is_not_a_usable_string_is_skipped(tmp_path: Path, value: str, reason: str) -> None:
    spec, diagnostics = parse(write(tmp_path, "a.md", f"---\nname: {value}\n---\n"))

    assert spec is None
    assert diagnostics[0].skipped
    assert reason in diagnostics[0].problem


def test_missing_name_in_a_repaired_file_says_both_things(tmp_path: Path) -> None:
    spec, diagnostics = parse(write(tmp_path, "a.md", "---\ndescription: a: b\n---\n"))

    assert spec is None
    assert "no 'name'" in diagnostics[0].problem
    assert "not strict YAML" in diagnostics[0].problem


def test_hostile_files_become_diagnostics_and_the_good_agent_still_loads(tmp_path: Path) -> None:
    write(tmp_path, "good.md", agent_text("good"))
    (tmp_path / "binary.md").write_bytes(b"---\nname: bin\n---\n\x00\xff\x00")
    write(tmp_path, "empty-front.md", "---\n---\nbody\n")
    write(tmp_path, "no-front.md", "# Just a README\n")
    write(tmp_path, "unterminated.md", "---\nname: open\ndescription: never closed\n")
    (tmp_path / "huge.md").write_text(agent_text("huge") + "x" * (1024 * 1024))

    catalog = discover_agents([(tmp_path, "env")])

    assert catalog.names() == ["good"]
    problems = {Path(d.path).name: d.problem for d in catalog.diagnostics}
    assert all(d.skipped for d in catalog.diagnostics)
    assert "binary file" in problems["binary.md"]
    assert "empty front matter" in problems["empty-front.md"]
    assert "no front matter" in problems["no-front.md"]
    assert "never closed" in problems["unterminated.md"]
    assert "over the 1 MiB limit" in problems["huge.md"]


@pytest.mark.timeout(10)  # a backstop: an expanding bomb would take minutes and gigabytes
def test_yaml_bomb_returns_a_diagnostic_instead_of_expanding(tmp_path: Path) -> None:
    levels = [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    text = "\n".join(
        ["---", 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]', *levels, "---"]
    )
    write(tmp_path, "bomb.md", text + "\n")

    catalog = discover_agents([(tmp_path, "env")])

    assert len(catalog) == 0
    assert len(catalog.diagnostics) == 1
    assert catalog.diagnostics[0].skipped
    assert "aliases" in catalog.diagnostics[0].problem


def test_invalid_utf8_is_loaded_with_a_repaired_diagnostic(tmp_path: Path) -> None:
    (tmp_path / "latin.md").write_bytes(b"---\nname: latin\ndescription: caf\xe9\n---\n")

    spec, diagnostics = parse(tmp_path / "latin.md")

    assert spec is not None
    assert spec.description == "caf\ufffd"
    assert not diagnostics[0].skipped
    assert "invalid UTF-8" in diagnostics[0].problem


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_named_pipe_called_md_is_skipped_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.md")

    spec, diagnostics = parse(tmp_path / "pipe.md")

    assert spec is None
    assert "not a regular file" in diagnostics[0].problem


def test_later_source_wins_a_name_clash_and_says_which_file_it_shadowed(tmp_path: Path) -> None:
    user = write(tmp_path / "user", "a.md", agent_text("shared", description="user version"))
    project = write(tmp_path / "project", "nested/b.md", agent_text("shared", description="project version"))

    catalog = discover_agents([(tmp_path / "user", "user"), (tmp_path / "project", "project")])

    spec = catalog.get("shared")
    assert spec is not None
    assert (spec.description, spec.source, spec.path) == ("project version", "project", project)
    assert catalog.diagnostics == [
        Diagnostic(
            path=str(user),
            problem=f"shadowed: agent 'shared' is also defined in {project}, which is used instead "
            "(project agents override user agents)",
            skipped=False,
        )
    ]


def test_duplicate_name_in_one_source_is_won_by_the_later_file(tmp_path: Path) -> None:
    first = write(tmp_path, "a/first.md", agent_text("dup", description="first"))
    second = write(tmp_path, "b/second.md", agent_text("dup", description="second"))

    catalog = discover_agents([(tmp_path, "user")])

    assert catalog.agents["dup"].path == second
    assert len(catalog.diagnostics) == 1
    assert catalog.diagnostics[0].path == str(first)
    assert "same user directory" in catalog.diagnostics[0].problem
    assert not catalog.diagnostics[0].skipped


def test_missing_directories_are_silently_ignored(tmp_path: Path) -> None:
    catalog = discover_agents([(tmp_path / "nope", "user"), (tmp_path / "also-nope", "env")])

    assert (len(catalog), catalog.diagnostics) == (0, [])


def test_a_file_given_as_a_directory_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "file.md", agent_text("a"))

    catalog = discover_agents([(tmp_path / "file.md", "env")])

    assert catalog.diagnostics == [
        Diagnostic(path=str(tmp_path / "file.md"), problem="skipped: not a directory")
    ]


def test_system_protocol_file_is_not_an_agent(tmp_path: Path) -> None:
    write(tmp_path, "system/PROTOCOL.md", "# How agents report\n")
    write(tmp_path, "system/helper.md", agent_text("helper"))
    write(tmp_path, "PROTOCOL.md", agent_text("protocol-at-top"))

    catalog = discover_agents([(tmp_path, "env")])

    assert catalog.names() == ["helper", "protocol-at-top"]
    assert catalog.diagnostics == []
    assert catalog.agents["helper"].root == tmp_path


def test_only_markdown_outside_hidden_directories_is_read(tmp_path: Path) -> None:
    write(tmp_path, "a.md", agent_text("a"))
    write(tmp_path, "notes.txt", agent_text("txt"))
    write(tmp_path, ".github/PULL_REQUEST_TEMPLATE.md", "## What changed\n")
    write(tmp_path, ".hidden.md", agent_text("hidden"))

    catalog = discover_agents([(tmp_path, "env")])

    assert (catalog.names(), catalog.diagnostics) == (["a"], [])


def test_symlinked_directories_are_followed_but_a_loop_is_not(tmp_path: Path) -> None:
    collection = tmp_path / "collection"
    write(collection, "deep/linked.md", agent_text("linked"))
    root = tmp_path / "agents"
    root.mkdir()
    (root / "voltagent").symlink_to(collection, target_is_directory=True)
    (collection / "deep" / "loop").symlink_to(root, target_is_directory=True)

    catalog = discover_agents([(root, "user")])

    assert catalog.names() == ["linked"]
    assert catalog.diagnostics == []


def test_a_directory_listed_twice_is_read_once_at_its_highest_precedence(tmp_path: Path) -> None:
    write(tmp_path, "a.md", agent_text("a"))

    catalog = discover_agents([(tmp_path, "user"), (tmp_path, "project")])

    assert catalog.diagnostics == []
    assert catalog.agents["a"].source == "project"


def test_catalog_answers_lookups_by_name(tmp_path: Path) -> None:
    write(tmp_path, "b.md", agent_text("beta"))
    write(tmp_path, "a.md", agent_text("alpha"))

    catalog = discover_agents([(tmp_path, "env")])

    assert isinstance(catalog, AgentCatalog)
    assert catalog.names() == ["alpha", "beta"]
    assert "alpha" in catalog
    assert "gamma" not in catalog
    assert catalog.get("gamma") is None
    assert len(catalog) == 2


def test_default_dirs_are_user_then_project_then_each_env_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PCOORD_AGENT_DIRS", os.pathsep.join([str(tmp_path / "one"), "", "relative"]))

    dirs = default_agent_dirs(tmp_path / "work")

    assert dirs == [
        (tmp_path / "home" / ".claude" / "agents", "user"),
        (tmp_path / "work" / ".claude" / "agents", "project"),
        (tmp_path / "one", "env"),
        (tmp_path / "work" / "relative", "env"),
    ]


def test_discovery_without_dirs_scans_home_project_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "home" / ".claude" / "agents", "a.md", agent_text("from-user"))
    write(tmp_path / "work" / ".claude" / "agents", "a.md", agent_text("from-project"))
    write(tmp_path / "extra", "a.md", agent_text("from-env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PCOORD_AGENT_DIRS", str(tmp_path / "extra"))
    monkeypatch.chdir(tmp_path / "work")

    catalog = discover_agents()

    assert {name: catalog.agents[name].source for name in catalog.names()} == {
        "from-env": "env",
        "from-project": "project",
        "from-user": "user",
    }


def _corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        pytest.skip(f"the VoltAgent corpus is not at {CORPUS} (it lives in ../shared beside the repository)")
    return sorted(CORPUS.rglob("*.md"))


def _raw_keys(path: Path) -> dict[str, str]:
    """The corpus's own text for each front-matter key: every corpus key sits on one line."""
    lines = path.read_text(encoding="utf-8").split("\n")
    end = lines.index("---", 1)
    return dict(line.split(": ", 1) for line in lines[1:end])


def test_every_file_of_the_voltagent_corpus_loads_with_its_name() -> None:
    files = _corpus_files()

    catalog = discover_agents([(CORPUS, "env")])

    assert len(files) == 158
    assert len(catalog) == 158
    assert not [d for d in catalog.diagnostics if d.skipped]
    assert sorted(catalog.names()) == sorted(_raw_keys(path)["name"] for path in files)
    for path in files:
        raw = _raw_keys(path)
        spec = catalog.agents[raw["name"]]
        assert spec.path == path
        assert spec.body
        assert spec.model == raw.get("model")
        assert spec.tools == [tool.strip() for tool in raw["tools"].split(",")]


def test_corpus_descriptions_with_unquoted_colons_load_in_full_and_only_they_are_repaired() -> None:
    files = _corpus_files()

    catalog = discover_agents([(CORPUS, "env")])

    repaired = {Path(d.path).relative_to(CORPUS).as_posix() for d in catalog.diagnostics}
    assert repaired == UNQUOTED_COLON_FILES
    for path in files:
        raw = _raw_keys(path)
        expected = raw["description"]
        if path.relative_to(CORPUS).as_posix() not in UNQUOTED_COLON_FILES:
            expected = expected.removeprefix('"').removesuffix('"')
        assert catalog.agents[raw["name"]].description == expected


def test_corpus_tool_names_holding_colons_stay_whole() -> None:
    _corpus_files()

    spec = discover_agents([(CORPUS, "env")]).get("codebase-orchestrator")

    assert spec is not None
    assert spec.tools is not None
    assert spec.tools[-2:] == ["subagent-catalog:search", "subagent-catalog:fetch"]
