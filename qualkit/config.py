"""The project configuration file, ``qualkit.toml``.

Every path in it is relative to the folder that contains the file.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qualkit.cases import DEFAULT_LEVELS
from qualkit.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_NAME = "qualkit.toml"

DEFAULT_CONFIG = """\
# qualkit project settings. Paths are relative to this file.
[project]
title = "{title}"
database = "qualkit.db"
# A bundled codebook name or a path to a codebook YAML file.
codebook = "target_bargaining"
targets = "targets.yaml"
levels = ["province", "city", "county", "township"]

[import]
transcripts = [
    "transcripts/*.md", "transcripts/*.txt", "transcripts/*.docx", "transcripts/*.odt",
    "transcripts/*.rtf", "transcripts/*.pdf", "transcripts/*.srt", "transcripts/*.vtt",
]
# manifest = "interviews.csv"

[autocode]
unit = "sentence"              # sentence, turn or match
include_interviewer = false

[link]
scope = "sentence"             # quote, sentence or turn

[scores]
values = []                    # CSV files: target,unit,year,value
points = []                    # CSV files: target,year,points
ties = "min"
transitions = "consecutive"    # consecutive (years with data) or adjacent
missing = "common"             # common or each_year

[report]
out = "report"
formats = ["html", "md"]
statuses = ["accepted", "suggested"]
quotes_per_target = 5
# Fields: {{id}} {{level}} {{province}} {{date}}. A part in [...] is left out when
# one of its fields is missing, and "|" separates alternatives, tried in order.
citation = "Interview with [a {{level}}-level official|an official][ in {{province}} province] (Interview #{{id}})"
# A redaction list (one name or pattern a line) for the report, the appendix
# and matrix exports.
# redact = "redact.txt"
# A folder of your own templates ('qualkit report templates --copy DIR').
# templates = "report_templates"
"""


@dataclass
class ProjectConfig:
    """Settings read from ``qualkit.toml``, with paths made absolute."""

    root: Path
    title: str = "qualkit project"
    database: Path = Path("qualkit.db")
    codebook: str = "target_bargaining"
    targets: Path | None = None
    levels: tuple[str, ...] = DEFAULT_LEVELS
    coder: str | None = None
    transcripts: list[str] = field(default_factory=list)
    manifest: Path | None = None
    autocode: dict[str, Any] = field(default_factory=dict)
    link: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    # [triangulation]: the thresholds of qualkit.triangulation.TriangulationRules.
    triangulation: dict[str, Any] = field(default_factory=dict)

    def transcript_paths(self) -> list[Path]:
        """Return the transcript files the import globs match, sorted, without repeats."""
        found: dict[Path, None] = {}
        for pattern in self.transcripts:
            for path in sorted(self.root.glob(pattern)):
                if path.is_file():
                    found[path] = None
        return list(found)

    def paths(self, section: dict[str, Any], key: str) -> list[Path]:
        """Return the list of paths under ``key`` of a section, made absolute."""
        value = section.get(key) or []
        if isinstance(value, str):
            value = [value]
        return [self.root / item for item in value]


def load_config(folder: str | Path) -> ProjectConfig:
    """Read ``qualkit.toml`` from ``folder`` (or the file itself if given)."""
    path = Path(folder)
    if path.is_dir():
        path = path / CONFIG_NAME
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(
            "project file not found.",
            path=path,
            fix="Run 'qualkit init FOLDER' to create one.",
        ) from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"the file is not UTF-8 text (byte {error.start + 1}).",
            path=path,
            fix="Save qualkit.toml as UTF-8.",
        ) from None
    except RecursionError:
        raise ConfigError(
            "arrays or tables are nested too deeply to read.",
            path=path,
            fix="qualkit's settings are at most two levels deep; remove the nesting.",
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"invalid TOML: {error}.", path=path) from None
    _check_keys(data, text, path)
    _check_types(data, text, path)
    return _build_config(data, path)


# Keys checked here; [import] and [scores] are checked by the code that reads them.
KNOWN_KEYS: dict[str, tuple[str, ...] | None] = {
    "project": ("title", "database", "codebook", "targets", "levels", "coder"),
    "import": None,
    "autocode": ("unit", "include_interviewer", "model"),
    "link": ("scope",),
    "scores": None,
    # Checked by qualkit.triangulation.TriangulationRules.from_mapping.
    "triangulation": None,
    "report": (
        "out",
        "formats",
        "statuses",
        "quotes_per_target",
        "citation",
        "templates",
        "redact",
        "figures",
        "transcripts",
    ),
}


def _check_keys(data: dict[str, Any], text: str, path: Path) -> None:
    for section, values in data.items():
        if section not in KNOWN_KEYS:
            raise ConfigError(
                f"unknown section [{section}].",
                path=path,
                line=_line_of(text, rf"^\s*\[{re.escape(section)}\]"),
                fix=f"Use only: {', '.join(f'[{name}]' for name in KNOWN_KEYS)}.",
            )
        allowed = KNOWN_KEYS[section]
        if allowed is None or not isinstance(values, dict):
            continue
        for key in values:
            if key not in allowed:
                raise ConfigError(
                    f"unknown setting {key!r} in [{section}].",
                    path=path,
                    line=_line_of(text, rf"^\s*{re.escape(key)}\s*="),
                    fix=f"Use one of: {', '.join(allowed)}.",
                )


# The type each setting must have: str, bool, int, or a list of str
# (TEXTS). A setting in SINGLE_OR_LIST may also be a single string.
TEXTS = "a list of texts"
SETTING_TYPES: dict[str, dict[str, Any]] = {
    "project": {"title": str, "database": str, "codebook": str, "targets": str, "levels": TEXTS, "coder": str},
    "import": {"transcripts": TEXTS, "manifest": str},
    "autocode": {"unit": str, "include_interviewer": bool, "model": str},
    "link": {"scope": str},
    "scores": {"values": TEXTS, "points": TEXTS, "ties": str, "transitions": str, "missing": str},
    "report": {
        "out": str,
        "formats": TEXTS,
        "statuses": TEXTS,
        "quotes_per_target": int,
        "citation": str,
        "templates": str,
        "redact": str,
        "figures": bool,
        "transcripts": bool,
    },
}
SINGLE_OR_LIST = {("import", "transcripts"), ("scores", "values"), ("scores", "points")}
TYPE_NAMES = {str: "a text in quotes", bool: "true or false", int: "a whole number"}


def _check_types(data: dict[str, Any], text: str, path: Path) -> None:
    for section, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(
                f"[{section}] must be a table of settings, not a single value.",
                path=path,
                line=_line_of(text, rf"^\s*{re.escape(section)}\s*="),
                fix=f"Write it as a section: [{section}] on its own line, then its settings.",
            )
        for key, expected in SETTING_TYPES.get(section, {}).items():
            if key in values and not _has_type(values[key], expected, (section, key) in SINGLE_OR_LIST):
                raise ConfigError(
                    f"{key} in [{section}] must be {TYPE_NAMES.get(expected, expected)}, "
                    f"not {values[key]!r}.",
                    path=path,
                    line=_line_of(text, rf"^\s*{re.escape(key)}\s*="),
                    fix=f"Correct the value of {key}; see the comments 'qualkit init' writes.",
                )


def _has_type(value: Any, expected: Any, single_allowed: bool) -> bool:
    if expected == TEXTS:
        if single_allowed and isinstance(value, str):
            return True
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _line_of(text: str, pattern: str) -> int | None:
    found = re.search(pattern, text, re.MULTILINE)
    return text.count("\n", 0, found.start()) + 1 if found else None


def _build_config(data: dict[str, Any], path: Path) -> ProjectConfig:
    root = path.parent.resolve()
    project = data.get("project", {})
    imports = data.get("import", {})
    levels = tuple(str(level).lower() for level in project.get("levels", DEFAULT_LEVELS))
    if not levels:
        raise ConfigError("'levels' is empty.", path=path, fix="List at least one level.")
    transcripts = imports.get("transcripts", [])
    if isinstance(transcripts, str):
        transcripts = [transcripts]

    return ProjectConfig(
        root=root,
        title=str(project.get("title", root.name)),
        database=root / project.get("database", "qualkit.db"),
        codebook=str(project.get("codebook", "target_bargaining")),
        targets=root / project["targets"] if project.get("targets") else None,
        levels=levels,
        coder=str(project["coder"]) if project.get("coder") else None,
        transcripts=list(transcripts),
        manifest=root / imports["manifest"] if imports.get("manifest") else None,
        autocode=dict(data.get("autocode", {})),
        link=dict(data.get("link", {})),
        scores=dict(data.get("scores", {})),
        report=_report_settings(data.get("report", {}), data.get("triangulation"), root),
        triangulation=dict(data.get("triangulation", {})),
    )


# Settings of [report] that name a file or folder, made absolute here so the
# report code needs no project root.
REPORT_PATHS = ("templates", "redact")


def _report_settings(
    section: dict[str, Any], triangulation: dict[str, Any] | None, root: Path
) -> dict[str, Any]:
    """Return [report] with absolute paths and the [triangulation] rules under "triangulation"."""
    settings = dict(section)
    if triangulation:
        settings["triangulation"] = dict(triangulation)
    for key in REPORT_PATHS:
        if settings.get(key):
            settings[key] = str(root / str(settings[key]))
    return settings
