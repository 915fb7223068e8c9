"""YAML loading that keeps line numbers, so errors can point into the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from qualkit.errors import InputError


class LineDict(dict):
    """A mapping from a YAML file that remembers where it and its keys start."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        """Return the 1-based line of ``key``, or of the mapping if it is absent."""
        return self.key_lines.get(key, self.line)


class LineList(list):
    """A sequence from a YAML file that remembers the line of each item."""

    line: int = 0
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    pass


class _BadValue(Exception):
    def __init__(self, key: Any, value: Any, error: ValueError, line: int) -> None:
        self.key = key
        self.value = value
        self.error = error
        self.line = line


class _DuplicateKey(Exception):
    def __init__(self, key: Any, first_line: int, line: int) -> None:
        self.key = key
        self.first_line = first_line
        self.line = line


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    mapping = LineDict()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise _DuplicateKey(
                key, mapping.key_lines[key], key_node.start_mark.line + 1
            )
        try:
            mapping[key] = loader.construct_object(value_node, deep=True)
        except ValueError as error:
            # PyYAML turns "2016-13-45" into a date and fails inside datetime.
            raise _BadValue(key, value_node.value, error, value_node.start_mark.line + 1) from None
        mapping.key_lines[key] = key_node.start_mark.line + 1
    return mapping


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    items = LineList(loader.construct_object(child, deep=True) for child in node.value)
    items.line = node.start_mark.line + 1
    items.item_lines = [child.start_mark.line + 1 for child in node.value]
    return items


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)
_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence
)


def parse_yaml(text: str, *, path: str | Path, first_line: int = 1) -> Any:
    """Parse ``text`` keeping line numbers; raise InputError naming ``path``.

    ``first_line`` is the file line on which ``text`` starts, for YAML that is
    embedded in a larger file such as a transcript's front matter.
    """
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as error:
        shift = first_line - 1
        raise InputError(
            f"duplicate key {error.key!r} (first given on line "
            f"{error.first_line + shift}).",
            path=path,
            line=error.line + shift,
            fix="Remove or rename one of them.",
        ) from None
    except _BadValue as error:
        raise InputError(
            f"invalid value {error.value!r} for {error.key!r} ({error.error}).",
            path=path,
            line=error.line + first_line - 1,
            fix="Correct the value; write dates as YYYY-MM-DD.",
        ) from None
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error)
        mark = getattr(error, "problem_mark", None)
        context = getattr(error, "context_mark", None)
        # An unclosed quote or bracket is reported at the end of the text;
        # the line where it opened is the one to fix.
        if context is not None and (mark is None or "end of stream" in problem):
            mark = context
        line = mark.line + first_line if mark is not None else None
        raise InputError(
            f"invalid YAML: {problem}.",
            path=path,
            line=line,
            fix="Check the indentation and quote values that contain ':' or '#'.",
        ) from error
    if first_line != 1:
        _shift_lines(data, first_line - 1)

    return data


def _shift_lines(data: Any, by: int) -> None:
    if isinstance(data, LineDict):
        data.line += by
        data.key_lines = {key: line + by for key, line in data.key_lines.items()}
        for value in data.values():
            _shift_lines(value, by)
    elif isinstance(data, LineList):
        data.line += by
        data.item_lines = [line + by for line in data.item_lines]
        for value in data:
            _shift_lines(value, by)


def load_yaml(path: str | Path) -> Any:
    """Read and parse the YAML file at ``path`` keeping line numbers."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise InputError("file not found.", path=path) from error
    except UnicodeDecodeError as error:
        raise InputError(
            f"not valid UTF-8 (byte {error.start}).",
            path=path,
            fix="Save the file as UTF-8.",
        ) from error

    return parse_yaml(text, path=path)
