"""Front matter: splitting an agent file and reading its keys leniently, as Claude Code does."""

from __future__ import annotations

import pytest

from parallel_coordinator.agents.frontmatter import (
    MAX_FRONT_MATTER_CHARS,
    decode_agent_bytes,
    parse_front_matter,
    read_front_matter,
    split_front_matter,
)
from parallel_coordinator.errors import AgentFileError

BILLION_LAUGHS = "\n".join(
    [
        "name: bomb",
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{key}: &{key} [{','.join([f'*{previous}'] * 9)}]"
            for previous, key in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def test_strict_yaml_front_matter_loads_without_repairs() -> None:
    front = read_front_matter(b"---\nname: a\ndescription: 'Quoted: fine'\ntools: Read, Grep\n---\nBody\n")

    assert front.data == {"name": "a", "description": "Quoted: fine", "tools": "Read, Grep"}
    assert front.body == "Body\n"
    assert front.repairs == []


def test_description_with_unquoted_colon_loads_and_is_marked_repaired() -> None:
    block = "name: gdpr\ndescription: Use for privacy. Triggers on: 'GDPR', 'CCPA'.\ntools: Read, Grep\n"

    data, repairs = parse_front_matter(block)

    assert data == {
        "name": "gdpr",
        "description": "Use for privacy. Triggers on: 'GDPR', 'CCPA'.",
        "tools": "Read, Grep",
    }
    assert len(repairs) == 1
    assert "not strict YAML" in repairs[0]
    assert "mapping values are not allowed here" in repairs[0]
    assert "line 3" in repairs[0]  # counted from the file's top: the opening '---' is line 1


def test_repair_keeps_the_yaml_reading_of_entries_that_are_valid_on_their_own() -> None:
    block = "name: a\ndescription: x: y\ntools:\n  - Read\n  - Grep\nmax_concurrent: 3\nhooks:\n  Stop: []\n"

    data, repairs = parse_front_matter(block)

    assert data["tools"] == ["Read", "Grep"]
    assert data["max_concurrent"] == 3
    assert data["hooks"] == {"Stop": []}
    assert data["description"] == "x: y"
    assert repairs


def test_broken_indented_dash_lines_form_a_list_for_the_key_above() -> None:
    block = "name: a\ntools:\n  - Read: files: all\n  - Grep\n    and more\n"

    data, repairs = parse_front_matter(block)

    assert data["tools"] == ["Read: files: all", "Grep and more"]
    assert repairs


def test_indented_lines_continue_the_previous_value_in_lenient_mode() -> None:
    block = "name: a\ndescription: Use when: the user asks\n  for a review\n  of code\nmodel: haiku\n"

    data, _ = parse_front_matter(block)

    assert data == {
        "name": "a",
        "description": "Use when: the user asks for a review of code",
        "model": "haiku",
    }


def test_matching_quotes_are_stripped_in_lenient_mode() -> None:
    block = "name: 'a'\ndescription: \"Say: \"hi\" now\"\nnote: 'it''s: here'x\n"

    data, _ = parse_front_matter(block)

    assert data["name"] == "a"
    assert data["description"] == 'Say: "hi" now'
    assert data["note"] == "'it''s: here'x"  # quotes that do not match at both ends stay


def test_comments_and_blank_lines_are_ignored_in_lenient_mode() -> None:
    block = "# an agent\nname: a\n\ndescription: a: b\n"

    data, _ = parse_front_matter(block)

    assert data == {"name": "a", "description": "a: b"}


def test_yaml_bomb_is_refused_without_expanding_it() -> None:
    data, repairs = parse_front_matter(BILLION_LAUGHS)

    assert "aliases" in repairs[0]
    assert data["name"] == "bomb"
    # Nothing was expanded: each alias-bearing entry stays the short text it was written as.
    assert all(isinstance(data[key], str) and len(data[key]) < 40 for key in "bcdefghi")


def test_a_single_alias_is_refused_too() -> None:
    data, repairs = parse_front_matter("name: a\nbase: &b {x: 1}\nother: *b\n")

    assert data["base"] == {"x": 1}
    assert data["other"] == "*b"
    assert "aliases (*b) are refused" in repairs[0]


def test_deeply_bracketed_front_matter_is_read_without_crashing() -> None:
    block = "name: a\nx: " + "[" * 100_000 + "]" * 100_000 + "\n"

    data, repairs = parse_front_matter(block)

    assert data["name"] == "a"
    assert "nested more than 64 deep" in repairs[0]


def test_deeply_indented_front_matter_is_read_without_crashing() -> None:
    block = "name: a\nx:\n" + "- " * 50_000 + "deep\n"

    data, repairs = parse_front_matter(block)

    assert data["name"] == "a"
    assert "nested too deeply" in repairs[0]


def test_impossible_date_is_read_as_text() -> None:
    data, repairs = parse_front_matter("name: a\ncreated: 2024-13-45\n")

    assert data == {"name": "a", "created": "2024-13-45"}
    assert repairs


def test_empty_front_matter_is_refused() -> None:
    with pytest.raises(AgentFileError, match="empty front matter"):
        read_front_matter(b"---\n---\nbody\n")


def test_front_matter_of_only_comments_is_empty() -> None:
    with pytest.raises(AgentFileError, match="empty front matter"):
        parse_front_matter("# nothing here\n")


def test_front_matter_without_any_key_is_refused() -> None:
    with pytest.raises(AgentFileError, match="no 'key: value' lines"):
        parse_front_matter("just some words\n")


def test_file_without_front_matter_is_refused() -> None:
    with pytest.raises(AgentFileError, match="must start with a '---' line"):
        read_front_matter(b"# A README\n\nname: not front matter\n")


def test_empty_file_is_refused() -> None:
    with pytest.raises(AgentFileError, match="no front matter"):
        read_front_matter(b"")


def test_unterminated_front_matter_is_refused() -> None:
    with pytest.raises(AgentFileError, match="never closed"):
        read_front_matter(b"---\nname: a\ndescription: b\n")


def test_front_matter_over_the_size_cap_is_refused() -> None:
    text = "---\nname: a\n" + "x: y\n" * (MAX_FRONT_MATTER_CHARS // 5 + 1) + "---\n"

    with pytest.raises(AgentFileError, match="larger than 256 KiB"):
        split_front_matter(text)


def test_body_keeps_horizontal_rules_after_the_closing_delimiter() -> None:
    block, body = split_front_matter("---\nname: a\n---\nIntro\n---\nMore\n")

    assert block == "name: a\n"
    assert body == "Intro\n---\nMore\n"


def test_crlf_line_endings_and_delimiters_with_trailing_blanks_are_understood() -> None:
    front = read_front_matter(b"---  \r\nname: a\r\ndescription: b: c\r\n--- \r\nBody\r\n")

    assert front.data == {"name": "a", "description": "b: c"}
    assert front.body == "Body\n"


def test_utf8_byte_order_mark_is_ignored() -> None:
    front = read_front_matter("\ufeff---\nname: a\n---\n".encode())

    assert front.data == {"name": "a"}
    assert front.repairs == []


def test_binary_file_with_nul_bytes_is_refused() -> None:
    with pytest.raises(AgentFileError, match="binary file"):
        decode_agent_bytes(b"---\nname: a\n---\n\x00\x01\x02")


def test_utf16_file_is_refused_with_a_hint() -> None:
    with pytest.raises(AgentFileError, match="UTF-16"):
        decode_agent_bytes("---\nname: a\n---\n".encode("utf-16"))


def test_invalid_utf8_is_replaced_and_reported() -> None:
    front = read_front_matter(b"---\nname: caf\xe9\n---\nbody\n")

    assert front.data == {"name": "caf\ufffd"}
    assert front.repairs == [
        "invalid UTF-8 at byte 13 (b'\\xe9'); undecodable bytes were replaced with U+FFFD"
    ]
