"""YAML loading that keeps line numbers, so errors can point into the file."""

from __future__ import annotations

from collections.abc import Hashable
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


# Limits that keep a small hostile file from exhausting the stack or memory.
# PyYAML composes and constructs nested collections recursively, so nesting
# (counting every value, the innermost scalar included) is capped well below
# Python's default recursion limit of 1000. Aliases let
# a file of a few hundred bytes expand to millions of values (the "billion
# laughs" pattern), so the expanded size is capped too. The bundled codebook
# has about 2,300 values (keys, scalars and collections), about 60 per code,
# so the cap leaves room for codebooks of over 3,000 codes.
MAX_NESTING = 100
MAX_EXPANDED_VALUES = 200_000
_SIMPLIFY = "Write the values out without deep nesting or repeated aliases."


class _LineLoader(yaml.SafeLoader):
    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._nesting = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._nesting += 1
        try:
            if self._nesting > MAX_NESTING:
                raise _Rejected(
                    f"values nested deeper than {MAX_NESTING} levels",
                    self.peek_event().start_mark.line + 1,
                )
            return super().compose_node(parent, index)
        finally:
            self._nesting -= 1

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _check_expanded_size(node)
        return self.construct_document(node)


class _Rejected(Exception):
    def __init__(self, problem: str, line: int, fix: str = _SIMPLIFY) -> None:
        self.problem = problem
        self.line = line
        self.fix = fix


def _check_expanded_size(root: yaml.Node) -> None:
    """Raise _Rejected if ``root`` with its aliases expanded is too deep or too big.

    The walk is iterative and counts each shared node once per use, as the
    constructed data repeats it. A node that contains itself through an
    alias is counted once, and the constructor rejects it later.
    """
    sizes: dict[int, tuple[int, int]] = {}
    in_progress: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            in_progress.discard(key)
            children = _children(node)
            size = 1 + sum(sizes.get(id(child), (1, 1))[0] for child in children)
            depth = 1 + max((sizes.get(id(child), (1, 1))[1] for child in children), default=0)
            if depth > MAX_NESTING:
                raise _Rejected(
                    f"values nested deeper than {MAX_NESTING} levels once aliases "
                    "are expanded",
                    node.start_mark.line + 1,
                )
            if size > MAX_EXPANDED_VALUES:
                raise _Rejected(
                    f"more than {MAX_EXPANDED_VALUES:,} values, counting the values of "
                    "an alias again at each use",
                    node.start_mark.line + 1,
                )
            sizes[key] = (size, depth)
            continue
        if key in sizes or key in in_progress:
            continue
        in_progress.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    return []


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
        if not isinstance(key, Hashable):
            raise _Rejected(
                "a key must be a single value, not a list or mapping",
                key_node.start_mark.line + 1,
                "Write the key as plain text.",
            )
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
    except _Rejected as error:
        raise InputError(
            f"invalid YAML: {error.problem}.",
            path=path,
            line=error.line + first_line - 1,
            fix=error.fix,
        ) from None
    except _BadValue as error:
        raise InputError(
            f"invalid value {_shorten(error.value)} for {_shorten(error.key)} "
            f"({_shorten(error.error)}).",
            path=path,
            line=error.line + first_line - 1,
            fix="Correct the value; write dates as YYYY-MM-DD.",
        ) from None
    except yaml.reader.ReaderError as error:
        # A control character such as NUL. The reader reports only its position.
        character = error.character
        code = character if isinstance(character, int) else ord(character)
        raise InputError(
            f"invalid YAML: the control character U+{code:04X} is not allowed.",
            path=path,
            line=text[: error.position].count("\n") + first_line,
            fix="Remove it; the file may be binary or saved in another encoding.",
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


def _shorten(value: Any, limit: int = 60) -> str:
    """Return ``repr(value)`` cut to about ``limit`` characters for a message."""
    text = repr(value) if not isinstance(value, Exception) else str(value)
    return text if len(text) <= limit else text[:limit] + "..."


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
            line=error.object[: error.start].count(b"\n") + 1,
            fix="Save the file as UTF-8.",
        ) from error
    except (IsADirectoryError, PermissionError) as error:
        raise InputError(f"cannot read the file ({error.strerror}).", path=path) from None

    return parse_yaml(text, path=path)
