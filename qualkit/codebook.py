"""The codebook: codes with definitions and the matching rules for auto-coding.

A codebook is a YAML file (format in ``codebooks/README.md``). Loading checks
it whole and raises ``CodebookError`` with the file, the line and a fix.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from qualkit.errors import CodebookError, InputError
from qualkit.resources import builtin_codebook
from qualkit.store import text_hash
from qualkit.yamlfile import LineDict, LineList, parse_yaml

CODE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
LANGUAGES = ("en", "zh")
RULE_KINDS = ("keywords", "patterns", "regex")
LEAF_FIELDS = ("when_to_use", "when_not_to_use", "example")
CODE_FIELDS = {"id", "label", "parent", "definition", "rules", "replaces", *LEAF_FIELDS}


@dataclass(frozen=True)
class LanguageRules:
    """The matching rules of one code in one language."""

    keywords: tuple[str, ...] = ()
    patterns: tuple[tuple[dict[str, Any], ...], ...] = ()
    regex: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """Return True when there is nothing to match."""
        return not (self.keywords or self.patterns or self.regex)


@dataclass(frozen=True)
class Code:
    """One code of the codebook."""

    id: str
    label: str
    definition: str
    parent: str | None = None
    when_to_use: str | None = None
    when_not_to_use: str | None = None
    example: str | None = None
    rules: dict[str, LanguageRules] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()
    line: int = 0

    def rules_json(self) -> str:
        """Return the rules as JSON for storage."""
        data: dict[str, Any] = {
            language: {
                "keywords": list(rules.keywords),
                "patterns": [list(p) for p in rules.patterns],
                "regex": list(rules.regex),
            }
            for language, rules in self.rules.items()
        }
        if self.exclude:
            data["exclude"] = list(self.exclude)
        return json.dumps(data, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class Codebook:
    """A named, versioned set of codes in file order."""

    id: str
    version: str
    title: str
    description: str
    codes: dict[str, Code]
    path: Path
    content_hash: str

    def children(self, code_id: str | None) -> list[Code]:
        """Return the codes whose parent is ``code_id`` (None: the top level)."""
        return [code for code in self.codes.values() if code.parent == code_id]

    def is_leaf(self, code_id: str) -> bool:
        """Return True when no code has ``code_id`` as its parent."""
        return not self.children(code_id)


def resolve_codebook_path(reference: str, *, base: Path | None = None) -> Path:
    """Turn a codebook reference from ``qualkit.toml`` or the CLI into a path.

    A bare name without a suffix, such as ``target_bargaining``, names a
    codebook bundled with qualkit; anything else is a path, relative to ``base``.
    """
    candidate = Path(reference)
    if candidate.suffix == "" and len(candidate.parts) == 1:
        bundled = builtin_codebook(reference)
        if bundled is not None:
            return bundled
    if not candidate.is_absolute() and base is not None:
        candidate = base / candidate
    return candidate


def load_codebook(path: str | Path) -> Codebook:
    """Read, validate and return the codebook at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CodebookError(
            "codebook file not found.",
            path=path,
            fix="Check the path, or name a bundled codebook such as target_bargaining.",
        ) from None
    except UnicodeDecodeError as error:
        line = error.object[: error.start].count(b"\n") + 1
        raise CodebookError(
            f"not valid UTF-8 (byte {error.start}).",
            path=path,
            line=line,
            fix="Save the codebook as UTF-8.",
        ) from None
    except (IsADirectoryError, PermissionError) as error:
        raise CodebookError(f"cannot read the file ({error.strerror}).", path=path) from None
    try:
        data = parse_yaml(text, path=path)
    except InputError as error:
        raise CodebookError(
            error.message, path=error.path, line=error.line, fix=error.fix
        ) from None

    return _build_codebook(data, path, text_hash(text))


def _fail(path: Path, line: int, message: str, fix: str) -> CodebookError:
    return CodebookError(message, path=path, line=line, fix=fix)


def _build_codebook(data: Any, path: Path, digest: str) -> Codebook:
    if not isinstance(data, LineDict) or "codes" not in data:
        raise _fail(
            path,
            1,
            "a codebook needs a top-level 'codes' list.",
            "Start from codebooks/target_bargaining.yaml.",
        )
    header = data.get("codebook") or LineDict()
    if (
        not isinstance(header, dict)
        or not header.get("id")
        or not header.get("version")
    ):
        raise _fail(
            path,
            data.line_of("codebook"),
            "the 'codebook' section needs an 'id' and a 'version'.",
            'Add for example: codebook: {id: my_codebook, version: "1.0.0"}.',
        )
    entries = data["codes"]
    if not isinstance(entries, LineList) or not entries:
        raise _fail(
            path,
            data.line_of("codes"),
            "'codes' must be a non-empty list.",
            "List the codes as '- id: ...' items.",
        )
    codes: dict[str, Code] = {}
    for entry, line in zip(entries, entries.item_lines):
        code = _build_code(entry, line, path, codes)
        codes[code.id] = code
    codebook = Codebook(
        id=str(header["id"]),
        version=str(header["version"]),
        title=str(header.get("title") or header["id"]),
        description=str(header.get("description") or "").strip(),
        codes=codes,
        path=path,
        content_hash=digest,
    )
    _check_leaves(codebook)
    _check_replacements(codebook)

    return codebook


def _build_code(entry: Any, line: int, path: Path, known: dict[str, Code]) -> Code:
    if not isinstance(entry, LineDict):
        raise _fail(path, line, "each code must be a mapping.", "Write '- id: ...'.")
    code_id = entry.get("id")
    if not isinstance(code_id, str) or not CODE_ID.match(code_id):
        raise _fail(
            path,
            entry.line_of("id"),
            f"invalid code id {code_id!r}.",
            "Use lowercase dotted ids such as strategy.reframing.",
        )
    if code_id in known:
        raise _fail(
            path,
            entry.line_of("id"),
            f"duplicate code id {code_id!r} (first defined on line {known[code_id].line}).",
            "Give each code a unique id.",
        )
    unknown_fields = sorted(set(entry) - CODE_FIELDS - {"exclude"})
    if unknown_fields:
        raise _fail(
            path,
            entry.line_of(unknown_fields[0]),
            f"unknown field {unknown_fields[0]!r} in code {code_id!r}.",
            f"Use only: {', '.join(sorted(CODE_FIELDS | {'exclude'}))}.",
        )
    for name in ("label", "definition", *LEAF_FIELDS):
        if isinstance(entry.get(name), (dict, list)):
            raise _fail(
                path,
                entry.line_of(name),
                f"'{name}' of {code_id!r} must be text, not a list or mapping.",
                "Write the text on one line, or as a YAML block after '|'.",
            )
    parent = entry.get("parent")
    if parent is not None and (not isinstance(parent, str) or parent not in known):
        raise _fail(
            path,
            entry.line_of("parent"),
            f"unknown parent {parent!r} for code {code_id!r}.",
            "Define the parent code above this one, or correct the parent id.",
        )
    for name in ("label", "definition"):
        if not str(entry.get(name) or "").strip():
            raise _fail(
                path,
                entry.line,
                f"code {code_id!r} has no {name}.",
                f"Add a '{name}:' field.",
            )
    rules, exclude = _build_rules(entry, code_id, path)
    replaces = _build_replaces(entry, code_id, path)

    return Code(
        id=code_id,
        label=str(entry["label"]).strip(),
        definition=_clean(entry["definition"]),
        parent=parent,
        when_to_use=_clean(entry.get("when_to_use")),
        when_not_to_use=_clean(entry.get("when_not_to_use")),
        example=_clean(entry.get("example")),
        rules=rules,
        exclude=exclude,
        replaces=replaces,
        line=entry.line,
    )


def _build_replaces(entry: LineDict, code_id: str, path: Path) -> tuple[str, ...]:
    raw = entry.get("replaces")
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, str) else raw
    line = entry.line_of("replaces")
    if not isinstance(items, list) or not items:
        raise _fail(
            path,
            line,
            f"'replaces' of {code_id!r} must be a code id or a list of code ids.",
            "Write replaces: old.id, or replaces: [old.one, old.two] for a merge.",
        )
    for item in items:
        if not isinstance(item, str) or not CODE_ID.match(item):
            raise _fail(
                path,
                line,
                f"'replaces' of {code_id!r} names an invalid code id {item!r}.",
                "Use the dotted id the code had in the earlier codebook version.",
            )
        if item == code_id:
            raise _fail(
                path,
                line,
                f"code {code_id!r} replaces itself.",
                "Remove its own id from 'replaces'.",
            )
    return tuple(dict.fromkeys(items))


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    return " ".join(str(value).split())


def _build_rules(
    entry: LineDict, code_id: str, path: Path
) -> tuple[dict[str, LanguageRules], tuple[str, ...]]:
    raw = entry.get("rules")
    if raw is None:
        return {}, ()
    if not isinstance(raw, LineDict):
        raise _fail(
            path,
            entry.line_of("rules"),
            f"'rules' of {code_id!r} must be a mapping.",
            "Write rules: {en: {keywords: [...]}, zh: {keywords: [...]}}.",
        )
    rules: dict[str, LanguageRules] = {}
    for language, spec in raw.items():
        if language == "exclude":
            continue
        if language not in LANGUAGES:
            raise _fail(
                path,
                raw.line_of(language),
                f"unknown rule language {language!r} in {code_id!r}.",
                f"Use one of: {', '.join(LANGUAGES)}, exclude.",
            )
        rules[language] = _build_language_rules(
            spec, raw.line_of(language), code_id, path
        )
    exclude = tuple(str(x) for x in raw.get("exclude") or ())

    return rules, exclude


def _build_language_rules(
    spec: Any, line: int, code_id: str, path: Path
) -> LanguageRules:
    if not isinstance(spec, LineDict):
        raise _fail(
            path,
            line,
            f"rules for {code_id!r} must map rule kinds to lists.",
            f"Use the keys: {', '.join(RULE_KINDS)}.",
        )
    for kind in spec:
        if kind not in RULE_KINDS:
            raise _fail(
                path,
                spec.line_of(kind),
                f"unknown rule kind {kind!r} in {code_id!r}.",
                f"Use one of: {', '.join(RULE_KINDS)}.",
            )
        if not isinstance(spec[kind], list):
            raise _fail(
                path,
                spec.line_of(kind),
                f"'{kind}' of {code_id!r} must be a list.",
                "Write one item per line, each starting with '- '.",
            )
    keywords = _check_keywords(spec.get("keywords") or LineList(), code_id, path)
    regexes = _check_regexes(spec.get("regex") or LineList(), code_id, path)
    patterns = _check_patterns(spec.get("patterns") or LineList(), code_id, path)

    return LanguageRules(keywords=keywords, patterns=patterns, regex=regexes)


def _item_line(items: Any, index: int) -> int:
    lines = getattr(items, "item_lines", None)
    return lines[index] if lines else getattr(items, "line", 0)


def _check_keywords(items: list[Any], code_id: str, path: Path) -> tuple[str, ...]:
    keywords = []
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise _fail(
                path,
                _item_line(items, index),
                f"keyword {item!r} of {code_id!r} is not a non-empty string.",
                "Quote the keyword.",
            )
        keywords.append(" ".join(item.split()))
    return tuple(keywords)


def _check_regexes(items: list[Any], code_id: str, path: Path) -> tuple[str, ...]:
    for index, item in enumerate(items):
        try:
            compiled = re.compile(str(item), re.IGNORECASE)
        except re.error as error:
            raise _fail(
                path,
                _item_line(items, index),
                f"regular expression {item!r} of {code_id!r} does not compile: {error}.",
                "Fix the expression; quote it in single quotes so backslashes stay.",
            ) from None
        if compiled.search("") is not None:
            raise _fail(
                path,
                _item_line(items, index),
                f"regular expression {item!r} of {code_id!r} matches the empty string.",
                "Make it require at least one character.",
            )
        if _has_nested_repeat(str(item)):
            raise _fail(
                path,
                _item_line(items, index),
                f"regular expression {item!r} of {code_id!r} repeats a group that "
                "itself contains an unbounded repeat, such as (a+)+; on some text "
                "Python's regex engine then takes exponential time.",
                "Remove the inner or the outer repeat, or use a keyword or token pattern.",
            )
    return tuple(str(item) for item in items)


def _has_nested_repeat(expression: str) -> bool:
    """Return True if ``expression`` repeats a group that is only an unbounded repeat.

    A group such as ``(a+)+`` or ``(\\w+\\s?)*`` can split a run of text
    between its iterations in exponentially many ways, which is the common
    cause of catastrophic backtracking. A group with a required separator,
    such as ``(?:\\d+,)+``, is fine and passes.
    """
    try:
        from re import _parser as sre_parse  # Python 3.11+
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_parse  # type: ignore[no-redef]
    # NOTE: overlapping alternatives such as (a|ab)+ also backtrack badly and pass this check.
    return _repeats_repeat_only(sre_parse.parse(expression), sre_parse)


def _repeats_repeat_only(items: Any, sre_parse: Any) -> bool:
    for op, argument in items:
        if op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT):
            _low, high, body = argument
            if high > 1 and _only_unbounded_repeat(body, sre_parse):
                return True
            children = [body]
        elif op == sre_parse.SUBPATTERN:
            children = [argument[-1]]
        elif op == sre_parse.BRANCH:
            children = argument[1]
        elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
            children = [argument[1]]
        else:
            continue
        if any(_repeats_repeat_only(child, sre_parse) for child in children):
            return True
    return False


def _only_unbounded_repeat(body: Any, sre_parse: Any) -> bool:
    """Return True if ``body`` has an unbounded repeat and nothing else it must match."""
    found = False
    for item in body:
        if _is_unbounded_part(item, sre_parse):
            found = True
        elif sre_parse.SubPattern(body.state, [item]).getwidth()[0] > 0:
            return False
    return found


def _is_unbounded_part(item: Any, sre_parse: Any) -> bool:
    op, argument = item
    if op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT):
        return argument[1] == sre_parse.MAXREPEAT
    if op == sre_parse.SUBPATTERN:
        return _only_unbounded_repeat(argument[-1], sre_parse)
    if op == sre_parse.BRANCH:
        return any(_only_unbounded_repeat(branch, sre_parse) for branch in argument[1])
    return False


def _check_patterns(
    items: list[Any], code_id: str, path: Path
) -> tuple[tuple[dict[str, Any], ...], ...]:
    from spacy.matcher import Matcher

    matcher = Matcher(_pattern_vocab(), validate=True)
    patterns = []
    for index, item in enumerate(items):
        pattern = [dict(token) for token in item] if isinstance(item, list) else None
        if not pattern or not all(isinstance(token, dict) for token in item):
            raise _fail(
                path,
                _item_line(items, index),
                f"pattern of {code_id!r} must be a non-empty list of token mappings.",
                "Write for example: [{LEMMA: bargain}, {LOWER: over}].",
            )
        try:
            matcher.add(code_id, [pattern])
        except (ValueError, KeyError, TypeError) as error:
            message = " ".join(str(error).split())
            raise _fail(
                path,
                _item_line(items, index),
                f"spaCy Matcher pattern of {code_id!r} does not compile: {message}",
                "See https://spacy.io/usage/rule-based-matching for the token attributes.",
            ) from None
        patterns.append(tuple(pattern))
    return tuple(patterns)


@functools.lru_cache(maxsize=1)
def _pattern_vocab() -> Any:
    # Building a pipeline costs about 0.15 s; one vocabulary serves every check.
    from spacy.lang.en import English

    return English().vocab


def _check_leaves(codebook: Codebook) -> None:
    for code in codebook.codes.values():
        if not codebook.is_leaf(code.id):
            continue
        for name in LEAF_FIELDS:
            if not getattr(code, name):
                raise _fail(
                    codebook.path,
                    code.line,
                    f"leaf code {code.id!r} has no {name}.",
                    f"Add a '{name}:' field; a second coder relies on it.",
                )


def _check_replacements(codebook: Codebook) -> None:
    claimed: dict[str, str] = {}
    for code in codebook.codes.values():
        for old in code.replaces:
            if old in codebook.codes:
                raise _fail(
                    codebook.path,
                    code.line,
                    f"code {code.id!r} replaces {old!r}, which is still a code of this codebook.",
                    "A replaced code must be gone from the file. Remove it, or remove it from 'replaces'.",
                )
            if old in claimed:
                raise _fail(
                    codebook.path,
                    code.line,
                    f"codes {claimed[old]!r} and {code.id!r} both replace {old!r}.",
                    "Splitting a code is not supported: one code takes all of the old code's codings. "
                    "Recode the others by hand after applying.",
                )
            claimed[old] = code.id
