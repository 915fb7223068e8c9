"""Tests for reading qualkit.toml: every bad file ends in a ConfigError.

Without the checks in load_config, each case would end in a traceback
(UnicodeDecodeError, RecursionError, TypeError, AttributeError) or be
accepted with a value of the wrong type.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qualkit.config import DEFAULT_CONFIG, load_config
from qualkit.errors import ConfigError


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "qualkit.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_default_config_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, DEFAULT_CONFIG.format(title="Study")))

    assert config.title == "Study"
    assert config.report["formats"] == ["html", "md"]


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        pytest.param("[project]\nlevels = 5\n", "levels in [project] must be a list of texts", 2, id="levels-number"),
        pytest.param("[project]\ntitle = 3\n", "title in [project] must be a text in quotes", 2, id="title-number"),
        pytest.param("project = 5\n", "[project] must be a table", 1, id="project-value"),
        pytest.param("import = 5\n", "[import] must be a table", 1, id="import-value"),
        pytest.param("[autocode]\ninclude_interviewer = \"yes\"\n", "must be true or false", 2, id="bool-text"),
        pytest.param("[report]\nformats = 3\n", "formats in [report] must be a list of texts", 2, id="formats-number"),
        pytest.param("[report]\nquotes_per_target = true\n", "must be a whole number", 2, id="int-bool"),
        pytest.param("[import]\ntranscripts = [1, 2]\n", "must be a list of texts", 2, id="transcripts-numbers"),
    ],
)
def test_wrong_types_name_the_line(tmp_path: Path, text: str, message: str, line: int) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        load_config(path)
    assert raised.value.line == line


def test_single_transcript_pattern_is_accepted(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[import]\ntranscripts = "transcripts/*.md"\n'))

    assert config.transcripts == ["transcripts/*.md"]


def test_invalid_utf8_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(write(tmp_path, b'[project]\ntitle = "caf\xe9"\n'))


def test_deep_nesting_is_an_error(tmp_path: Path) -> None:
    deep = "[report]\nformats = " + "[" * 5000 + "]" * 5000 + "\n"

    with pytest.raises(ConfigError, match="nested too deeply|must be a list"):
        load_config(write(tmp_path, deep))
