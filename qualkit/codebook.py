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

import pandas as pd
import sqlite_utils

from qualkit.audit import PRIMARY_KEYS, SYSTEM_CODER, ChangeRecorder
from qualkit.errors import CodebookError, InputError, QualkitError
from qualkit.resources import builtin_codebook
from qualkit.store import text_hash, utc_now
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
    parent = entry.get("parent")
    if parent is not None and parent not in known:
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
    return tuple(str(item) for item in items)


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


def store_codebook(
    db: sqlite_utils.Database,
    codebook: Codebook,
    recorder: ChangeRecorder | None = None,
) -> dict[str, int]:
    """Write the codebook's codes to the database and carry codings of replaced codes.

    Codes missing from the new codebook are marked inactive, never deleted,
    so that existing codings keep their code. Codings of a code named in
    another code's ``replaces`` move to that code and keep the codebook
    version they were made under. Every changed row is recorded in the audit
    log, by ``recorder`` or else as the "qualkit" coder. Returns the number
    of codings carried per replaced code id.
    """
    before = _rows(db, "codes"), _rows(db, "codebooks")
    rows = [
        {
            "id": code.id,
            "parent_id": code.parent,
            "label": code.label,
            "definition": code.definition,
            "when_to_use": code.when_to_use,
            "when_not_to_use": code.when_not_to_use,
            "example": code.example,
            "rules": code.rules_json(),
            "position": position,
            "codebook_id": codebook.id,
            "codebook_version": codebook.version,
            "active": 1,
        }
        for position, code in enumerate(codebook.codes.values())
    ]
    db.execute("UPDATE codes SET active = 0 WHERE active = 1")
    # Parents come first in file order, so the foreign key holds row by row.
    db["codes"].upsert_all(rows, pk="id")
    existing = db.execute(
        "SELECT content_hash FROM codebooks WHERE id = ? AND version = ?",
        [codebook.id, codebook.version],
    ).fetchone()
    if existing is None or existing[0] != codebook.content_hash:
        db["codebooks"].upsert(
            {
                "id": codebook.id,
                "version": codebook.version,
                "title": codebook.title,
                "path": str(codebook.path),
                "content_hash": codebook.content_hash,
                "loaded_at": utc_now(),
            },
            pk=("id", "version"),
        )
    after = _rows(db, "codes"), _rows(db, "codebooks")
    replaced = [old for code in codebook.codes.values() for old in code.replaces]
    pending = (
        db.execute(
            f"SELECT count(*) FROM codings WHERE code_id IN ({', '.join('?' for _ in replaced)})",
            replaced,
        ).fetchone()[0]
        if replaced
        else 0
    )
    if before == after and not pending:
        return {}
    if recorder is None:
        recorder = ChangeRecorder(db, SYSTEM_CODER, "codebook store")
    for table, old_rows, new_rows in (
        ("codes", before[0], after[0]),
        ("codebooks", before[1], after[1]),
    ):
        for key in sorted(set(old_rows) | set(new_rows), key=str):
            recorder.record(table, key, old_rows.get(key), new_rows.get(key))
    return _carry_codings(recorder, codebook)


def _rows(db: sqlite_utils.Database, table: str) -> dict[Any, dict[str, Any]]:
    keys = PRIMARY_KEYS[table]
    cursor = db.execute(f"SELECT * FROM [{table}]")
    columns = [d[0] for d in cursor.description]
    rows = {}
    for values in cursor.fetchall():
        row = dict(zip(columns, values))
        key = tuple(row[k] for k in keys)
        rows[key[0] if len(key) == 1 else key] = row
    return rows


# When the same coder coded one span with two codes that merge, one coding
# survives: the accepted one before a rejected one before a suggestion.
STATUS_STRENGTH = {"accepted": 2, "rejected": 1, "suggested": 0}


def _carry_codings(recorder: ChangeRecorder, codebook: Codebook) -> dict[str, int]:
    from qualkit.coding import delete_coding

    db = recorder.db
    carried: dict[str, int] = {}
    now = utc_now()
    for code in codebook.codes.values():
        for old in code.replaces:
            cursor = db.execute(
                "SELECT * FROM codings WHERE code_id = ? ORDER BY id", [old]
            )
            columns = [d[0] for d in cursor.description]
            for row in [dict(zip(columns, values)) for values in cursor.fetchall()]:
                twin = db.execute(
                    "SELECT id, status FROM codings WHERE source_id = ? AND start_offset = ? "
                    "AND end_offset = ? AND code_id = ? AND coder = ?",
                    [
                        row["source_id"],
                        row["start_offset"],
                        row["end_offset"],
                        code.id,
                        row["coder"],
                    ],
                ).fetchone()
                if twin is None:
                    recorder.update(
                        "codings", row["id"], {"code_id": code.id, "updated_at": now}
                    )
                elif STATUS_STRENGTH[twin[1]] >= STATUS_STRENGTH[row["status"]]:
                    delete_coding(recorder, row["id"], memos_to=twin[0])
                else:
                    delete_coding(recorder, twin[0], memos_to=row["id"])
                    recorder.update(
                        "codings", row["id"], {"code_id": code.id, "updated_at": now}
                    )
                carried[old] = carried.get(old, 0) + 1
            for (memo_id,) in db.execute(
                "SELECT id FROM memos WHERE about = 'code' AND about_id = ?", [old]
            ).fetchall():
                recorder.update(
                    "memos", memo_id, {"about_id": code.id, "updated_at": now}
                )
    return carried


# Codebook versions --------------------------------------------------------------

# The fields compared between two versions of a code.
COMPARED_FIELDS = (
    "label",
    "parent_id",
    "definition",
    "when_to_use",
    "when_not_to_use",
    "example",
    "rules",
)


def code_fields(code: Code) -> dict[str, Any]:
    """Return a code's compared fields as they are stored in the ``codes`` table."""
    return {
        "label": code.label,
        "parent_id": code.parent,
        "definition": code.definition,
        "when_to_use": code.when_to_use,
        "when_not_to_use": code.when_not_to_use,
        "example": code.example,
        "rules": code.rules_json(),
    }


def stored_codes(
    db: sqlite_utils.Database, *, active_only: bool = True
) -> dict[str, dict[str, Any]]:
    """Return the stored codes (by default the active ones) by id, in codebook order."""
    where = "WHERE active = 1" if active_only else ""
    cursor = db.execute(
        f"SELECT * FROM codes {where} ORDER BY active DESC, position, id"
    )
    columns = [d[0] for d in cursor.description]
    return {row[0]: dict(zip(columns, row)) for row in cursor.fetchall()}


@dataclass(frozen=True)
class CodebookChange:
    """One difference between two codebook versions.

    ``change`` is added, removed, renamed, merged or changed. ``old``
    contains the replaced ids of a rename or merge.
    """

    change: str
    code: str
    old: tuple[str, ...] = ()
    detail: str = ""


def diff_codes(old: dict[str, dict[str, Any]], new: Codebook) -> list[CodebookChange]:
    """Compare codes by id (as ``code_fields`` or stored rows) with a newer codebook."""
    changes = []
    taken: set[str] = set()
    for code in new.codes.values():
        replaced = tuple(r for r in code.replaces if r in old)
        unknown = [r for r in code.replaces if r not in old]
        taken.update(replaced)
        notes = (
            [f"replaces {', '.join(unknown)}, which the old version does not have"]
            if unknown
            else []
        )
        if code.id not in old:
            kind = (
                "added"
                if not replaced
                else "renamed"
                if len(replaced) == 1
                else "merged"
            )
            changes.append(CodebookChange(kind, code.id, replaced, "; ".join(notes)))
            continue
        fields = code_fields(code)
        edited = [
            name
            for name in COMPARED_FIELDS
            if (old[code.id].get(name) or None) != (fields[name] or None)
        ]
        if edited:
            notes.insert(0, "changed: " + ", ".join(edited))
        if replaced:
            changes.append(
                CodebookChange("merged", code.id, replaced, "; ".join(notes))
            )
        elif edited or notes:
            changes.append(CodebookChange("changed", code.id, (), "; ".join(notes)))
    for code_id in old:
        if code_id not in new.codes and code_id not in taken:
            changes.append(CodebookChange("removed", code_id))
    return changes


def diff_codebooks(old: Codebook, new: Codebook) -> pd.DataFrame:
    """Return the differences between two codebook files as a table."""
    before = {code.id: code_fields(code) for code in old.codes.values()}
    return _changes_frame(diff_codes(before, new))


def _changes_frame(changes: list[CodebookChange]) -> pd.DataFrame:
    records = [
        {
            "change": c.change,
            "code": c.code,
            "replaces": ", ".join(c.old),
            "detail": c.detail,
        }
        for c in changes
    ]
    return pd.DataFrame(records, columns=["change", "code", "replaces", "detail"])


def _coding_counts(db: sqlite_utils.Database) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for code_id, status, count in db.execute(
        "SELECT code_id, status, count(*) FROM codings GROUP BY code_id, status"
    ):
        counts.setdefault(code_id, {})[status] = count
    return counts


@dataclass
class CodebookPlan:
    """The changes that applying a codebook to a database makes.

    ``blocked`` maps each removed code that still has codings to its counts
    by status. Applying raises QualkitError while it is not empty, unless
    forced.
    """

    codebook: Codebook
    changes: list[CodebookChange]
    carried: dict[str, int]
    blocked: dict[str, dict[str, int]]

    def frame(self) -> pd.DataFrame:
        """Return the changes as a table, with the codings each one affects."""
        frame = _changes_frame(self.changes)
        frame["codings"] = [
            sum(self.carried.get(old, 0) for old in change.old)
            if change.old
            else sum(self.blocked.get(change.code, {}).values())
            for change in self.changes
        ]
        return frame


def plan_codebook(db: sqlite_utils.Database, codebook: Codebook) -> CodebookPlan:
    """Compare a codebook with the stored one and count the codings each change affects."""
    counts = _coding_counts(db)
    changes = diff_codes(stored_codes(db), codebook)
    carried = {
        old: sum(counts[old].values())
        for code in codebook.codes.values()
        for old in code.replaces
        if old in counts
    }
    blocked = {
        change.code: counts[change.code]
        for change in changes
        if change.change == "removed" and change.code in counts
    }
    return CodebookPlan(codebook, changes, carried, blocked)


def apply_codebook(
    recorder: ChangeRecorder, codebook: Codebook, *, force: bool = False
) -> CodebookPlan:
    """Store a new codebook version, carrying codings of renamed and merged codes.

    Raises QualkitError, changing nothing, when a code that is dropped without
    a ``replaces`` entry still has codings. With ``force`` set, those codings
    keep their code, which becomes inactive. The caller opens the transaction.
    """
    plan = plan_codebook(recorder.db, codebook)
    if plan.blocked and not force:
        listed = "; ".join(
            f"{code_id} ({', '.join(f'{n} {status}' for status, n in sorted(counts.items()))})"
            for code_id, counts in plan.blocked.items()
        )
        raise QualkitError(
            f"Codebook {codebook.id} {codebook.version} drops codes that still have codings: {listed}. "
            "Name each in 'replaces:' of the code that takes its codings, or pass --force to keep "
            "the codings under the dropped (inactive) code."
        )
    plan.carried = store_codebook(recorder.db, codebook, recorder)
    return plan


def codebook_tree(
    db: sqlite_utils.Database, *, include_inactive: bool = False
) -> pd.DataFrame:
    """Return the stored codes in tree order with coding counts by status.

    ``total`` counts the code's own codings that are not rejected and
    ``with_children`` adds those of all its descendants.
    """
    codes = stored_codes(db, active_only=not include_inactive)
    counts = _coding_counts(db)
    children: dict[str | None, list[str]] = {}
    for code_id, row in codes.items():
        parent = row["parent_id"] if row["parent_id"] in codes else None
        children.setdefault(parent, []).append(code_id)
    records: list[dict[str, Any]] = []

    def visit(code_id: str, depth: int) -> int:
        own = counts.get(code_id, {})
        record = {
            "code": code_id,
            "depth": depth,
            "label": codes[code_id]["label"],
            "active": bool(codes[code_id]["active"]),
            "suggested": own.get("suggested", 0),
            "accepted": own.get("accepted", 0),
            "rejected": own.get("rejected", 0),
        }
        record["total"] = record["suggested"] + record["accepted"]
        records.append(record)
        subtotal = record["total"] + sum(
            visit(child, depth + 1) for child in children.get(code_id, [])
        )
        record["with_children"] = subtotal
        return subtotal

    for root in children.get(None, []):
        visit(root, 0)
    columns = [
        "code",
        "depth",
        "label",
        "active",
        "suggested",
        "accepted",
        "rejected",
        "total",
        "with_children",
    ]
    return pd.DataFrame(records, columns=columns)


def check_codebook(db: sqlite_utils.Database, codebook: Codebook) -> pd.DataFrame:
    """Return problems of a loaded codebook and of the codings stored under it.

    Levels: ``error`` (applying would fail), ``warning`` and ``info``.
    """
    findings: list[tuple[str, str, str]] = []
    plan = plan_codebook(db, codebook)
    for code_id, counts in plan.blocked.items():
        total = sum(counts.values())
        findings.append(
            (
                "error",
                code_id,
                f"dropped without 'replaces:' but has {total} coding{'s' if total != 1 else ''}",
            )
        )
    known = set(stored_codes(db, active_only=False))
    for code in codebook.codes.values():
        for old in code.replaces:
            if known and old not in known:
                findings.append(
                    (
                        "warning",
                        code.id,
                        f"replaces {old!r}, which the database has never had",
                    )
                )
    findings += _shared_keywords(codebook)
    for code_id, count in db.execute(
        "SELECT c.code_id, count(*) FROM codings c JOIN codes d ON d.id = c.code_id "
        "WHERE d.active = 0 GROUP BY c.code_id ORDER BY c.code_id"
    ):
        if code_id not in codebook.codes:
            findings.append(
                ("warning", code_id, f"{count} codings are under this inactive code")
            )
    for code_id, coder, first, second in db.execute(
        "SELECT a.code_id, a.coder, a.id, b.id FROM codings a JOIN codings b ON a.source_id = b.source_id "
        "AND a.code_id = b.code_id AND a.coder = b.coder AND a.id < b.id "
        "AND a.start_offset < b.end_offset AND b.start_offset < a.end_offset "
        "WHERE a.status != 'rejected' AND b.status != 'rejected' ORDER BY a.code_id, a.id"
    ):
        findings.append(
            ("warning", code_id, f"codings #{first} and #{second} of {coder} overlap")
        )
    flagged = db.execute(
        "SELECT count(*) FROM codings WHERE needs_review = 1"
    ).fetchone()[0]
    if flagged:
        findings.append(
            (
                "info",
                "",
                f"{flagged} codings need review after their transcript changed",
            )
        )
    return pd.DataFrame(findings, columns=["level", "code", "message"])


def _shared_keywords(codebook: Codebook) -> list[tuple[str, str, str]]:
    owners: dict[tuple[str, str], list[str]] = {}
    for code in codebook.codes.values():
        for language, rules in code.rules.items():
            for keyword in rules.keywords:
                owners.setdefault((language, keyword.casefold()), []).append(code.id)
    return [
        (
            "warning",
            ids[0],
            f"{language} keyword {keyword!r} also suggests {', '.join(ids[1:])}",
        )
        for (language, keyword), ids in owners.items()
        if len(ids) > 1
    ]
