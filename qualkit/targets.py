"""Performance targets, their aliases, and links from coded quotes to them.

Targets are declared in a YAML file (``targets.yaml``). A coding is linked to
every target whose alias occurs in its linking scope: the quote itself, the
sentences it overlaps (default), or its whole speaker turn.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from qualkit.errors import InputError
from qualkit.yamlfile import LineDict, LineList, load_yaml

CATEGORIES = ("economic", "social_welfare", "environment", "veto", "other")
LINK_SCOPES = ("quote", "sentence", "turn")
_TARGET_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_OPTION_FIELDS = ("ties", "transitions", "missing", "min_years", "cv_ddof")


@dataclass(frozen=True)
class Target:
    """A performance target as declared in ``targets.yaml``."""

    id: str
    name: str
    category: str
    higher_is_harder: bool = True
    order: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)


def load_targets(path: str | Path) -> list[Target]:
    """Read and validate a targets file."""
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, LineDict) or not isinstance(data.get("targets"), list):
        raise InputError(
            "a targets file needs a top-level 'targets' list.", path=path, line=1,
            fix="Write 'targets:' followed by '- id: ...' items.",
        )
    targets: dict[str, Target] = {}
    # (language, casefolded alias) -> (target id, line) of its first listing.
    alias_owners: dict[tuple[str, str], tuple[str, int]] = {}
    for entry, line in zip(data["targets"], data["targets"].item_lines):
        target = _build_target(entry, line, path)
        if target.id in targets:
            raise InputError(
                f"duplicate target id {target.id!r}.", path=path, line=line,
                fix="Give each target a unique id.",
            )
        targets[target.id] = target
        _check_shared_aliases(entry, target, path, alias_owners)
    return list(targets.values())


def _check_shared_aliases(
    entry: LineDict,
    target: Target,
    path: Path,
    alias_owners: dict[tuple[str, str], tuple[str, int]],
) -> None:
    """Raise InputError when an alias of ``target`` is already an alias of another target.

    Linking gives a passage to one target per matched alias, so an alias
    shared by two targets would link to the first one only.
    """
    for language, aliases in target.aliases.items():
        for alias in aliases:
            key = (language, alias.casefold())
            line = _alias_line(entry, language, alias)
            owner = alias_owners.setdefault(key, (target.id, line))
            if owner[0] == target.id:
                continue
            raise InputError(
                f"alias {alias!r} ({language}) of target {target.id!r} is also an alias of "
                f"target {owner[0]!r} (line {owner[1]}); aliases are compared ignoring case.",
                path=path,
                line=line,
                fix="Keep the alias on one of the two targets, or make it more specific.",
            )


def _alias_line(entry: LineDict, language: str, alias: str) -> int:
    """Return the line of ``alias`` in ``entry``, or of its name when the name is the alias."""
    values = (entry.get("aliases") or {}).get(language)
    if isinstance(values, LineList):
        for value, line in zip(values, values.item_lines):
            if str(value).strip() == alias:
                return line
    return entry.line_of("name")


def _build_target(entry: Any, line: int, path: Path) -> Target:
    if not isinstance(entry, LineDict):
        raise InputError("each target must be a mapping.", path=path, line=line)
    target_id = entry.get("id")
    if not isinstance(target_id, str) or not _TARGET_ID.match(target_id):
        raise InputError(
            f"invalid target id {target_id!r}.", path=path, line=entry.line_of("id"),
            fix="Use lowercase letters, digits and underscores, such as shanty_town.",
        )
    category = entry.get("category", "other")
    if category not in CATEGORIES:
        raise InputError(
            f"unknown category {category!r} for target {target_id!r}.",
            path=path, line=entry.line_of("category"),
            fix=f"Use one of: {', '.join(CATEGORIES)}.",
        )
    _check_field_types(entry, target_id, path)
    options = dict(entry.get("options") or {})
    unknown = sorted(set(options) - set(_OPTION_FIELDS))
    if unknown:
        raise InputError(
            f"unknown option {unknown[0]!r} for target {target_id!r}.",
            path=path, line=entry.line_of("options"),
            fix=f"Use only: {', '.join(_OPTION_FIELDS)}.",
        )
    raw_aliases = entry.get("aliases") or {}
    _check_alias_text(raw_aliases, target_id, path, entry.line_of("aliases"))
    aliases = {
        str(language): tuple(str(alias).strip() for alias in values or ())
        for language, values in raw_aliases.items()
    }
    aliases.setdefault("en", ())
    if str(entry.get("name", "")).strip().lower() not in [a.lower() for a in aliases["en"]]:
        aliases["en"] = (str(entry.get("name", target_id)).strip(), *aliases["en"])

    return Target(
        id=target_id,
        name=str(entry.get("name") or target_id),
        category=category,
        higher_is_harder=bool(entry.get("higher_is_harder", True)),
        order=entry.get("order"),
        options=options,
        note=" ".join(str(entry.get("note") or "").split()) or None,
        aliases=aliases,
    )


def _check_alias_text(raw_aliases: dict[Any, Any], target_id: str, path: Path, default_line: int) -> None:
    """Raise InputError for an empty alias or one without a letter or digit.

    Such an alias would link a target to every passage that contains it,
    for example every "(" or every space.
    """
    for language, values in raw_aliases.items():
        lines = getattr(values, "item_lines", [])
        for index, alias in enumerate(values or ()):
            text = "" if alias is None else str(alias).strip()
            if any(character.isalnum() for character in text):
                continue
            problem = "is empty" if not text else "has no letter or digit"
            raise InputError(
                f"alias {text!r} ({language}) of target {target_id!r} {problem}.",
                path=path,
                line=lines[index] if index < len(lines) else default_line,
                fix="Remove it, or write the word or name that a passage uses for the target.",
            )


def _check_field_types(entry: LineDict, target_id: str, path: Path) -> None:
    """Raise InputError for a field whose YAML type the target cannot use."""

    def fail(key: str, expected: str, example: str) -> InputError:
        value_text = repr(entry[key])
        if len(value_text) > 60:
            value_text = value_text[:60] + "..."
        return InputError(
            f"{key!r} of target {target_id!r} must be {expected}, not {value_text}.",
            path=path,
            line=entry.line_of(key),
            fix=f"Write it like this: {example}",
        )

    for key in ("name", "note"):
        if isinstance(entry.get(key), (dict, list)):
            raise fail(key, "text", f'{key}: "Foreign direct investment"')
    if "higher_is_harder" in entry and not isinstance(entry["higher_is_harder"], bool):
        raise fail("higher_is_harder", "true or false without quotes", "higher_is_harder: false")
    order = entry.get("order")
    if order is not None and (isinstance(order, bool) or not isinstance(order, int)):
        raise fail("order", "a whole number", "order: 3")
    if entry.get("options") is not None and not isinstance(entry["options"], dict):
        raise fail("options", "a mapping", "options: {ties: min}")
    aliases = entry.get("aliases")
    if aliases is None:
        return
    aliases_example = "aliases: {en: [foreign investment, fdi], zh: [外资]}"
    if not isinstance(aliases, dict):
        raise fail("aliases", "a mapping of languages to lists of names", aliases_example)
    for values in aliases.values():
        if values is not None and (
            not isinstance(values, list) or any(isinstance(alias, (dict, list)) for alias in values)
        ):
            raise fail("aliases", "a mapping of languages to lists of names", aliases_example)


def store_targets(db: sqlite_utils.Database, targets: list[Target]) -> None:
    """Write targets and their aliases, replacing the aliases already stored."""
    db["targets"].upsert_all(
        [
            {
                "id": t.id,
                "name": t.name,
                "category": t.category,
                "higher_is_harder": int(t.higher_is_harder),
                "researcher_order": t.order,
                "options": json.dumps(t.options, sort_keys=True),
                "note": t.note,
            }
            for t in targets
        ],
        pk="id",
    )
    db.execute("DELETE FROM target_aliases")
    rows = {
        (t.id, alias): {"target_id": t.id, "alias": alias, "language": language}
        for t in targets
        for language, aliases in t.aliases.items()
        for alias in aliases
    }
    db["target_aliases"].insert_all(rows.values())


def alias_pattern(aliases: list[tuple[str, str]]) -> re.Pattern[str] | None:
    """Compile one case-insensitive pattern matching any alias, longest first.

    Latin-script aliases must stand as whole words; CJK aliases match anywhere.
    Spaces and hyphens between words are interchangeable.
    """
    parts = []
    for alias, target_id in sorted(aliases, key=lambda item: -len(item[0])):
        words = [re.escape(word) for word in re.split(r"[\s\-]+", alias) if word]
        body = r"[\s\-]+".join(words)
        if re.match(r"\w", alias[0], re.ASCII):
            body = rf"(?<!\w){body}(?!\w)"
        parts.append(f"(?P<t_{len(parts)}>{body})")
    if not parts:
        return None
    return re.compile("|".join(parts), re.IGNORECASE)


def link_quotes(
    db: sqlite_utils.Database, *, scope: str = "sentence", statuses: tuple[str, ...] = ("suggested", "accepted")
) -> int:
    """Recompute automatic quote-target links; return how many links exist.

    Manual links are kept. Codings with other statuses (rejected) get none.
    """
    if scope not in LINK_SCOPES:
        raise InputError(f"unknown link scope {scope!r}.", fix=f"Use one of: {', '.join(LINK_SCOPES)}.")
    aliases = db.execute("SELECT alias, target_id FROM target_aliases").fetchall()
    ordered = sorted(aliases, key=lambda item: -len(item[0]))
    pattern = alias_pattern(ordered)
    db.execute("DELETE FROM quote_links WHERE origin = 'auto'")
    if pattern is None:
        return 0
    marks = ",".join("?" for _ in statuses)
    codings = db.execute(
        f"SELECT c.id, c.source_id, c.start_offset, c.end_offset FROM codings c "
        f"WHERE c.status IN ({marks}) ORDER BY c.source_id, c.start_offset",
        list(statuses),
    ).fetchall()
    texts: dict[str, str] = {}
    rows = {}
    for coding_id, source_id, start, end in codings:
        if source_id not in texts:
            texts[source_id] = db.execute("SELECT text FROM sources WHERE id = ?", [source_id]).fetchone()[0]
        text = texts[source_id]
        scope_start, scope_end = _scope_span(db, source_id, start, end, scope)
        for found in pattern.finditer(text, scope_start, scope_end):
            index = int(found.lastgroup.split("_")[1])
            target_id = ordered[index][1]
            rows.setdefault(
                (coding_id, target_id),
                {
                    "coding_id": coding_id,
                    "target_id": target_id,
                    "alias": found.group(0),
                    "alias_start": found.start(),
                    "alias_end": found.end(),
                    "origin": "auto",
                },
            )
    manual = {
        (row[0], row[1])
        for row in db.execute("SELECT coding_id, target_id FROM quote_links WHERE origin = 'manual'")
    }
    db["quote_links"].insert_all(row for key, row in rows.items() if key not in manual)

    return db["quote_links"].count


def _scope_span(db: sqlite_utils.Database, source_id: str, start: int, end: int, scope: str) -> tuple[int, int]:
    if scope == "quote":
        return start, end
    kinds = ("sentence",) if scope == "sentence" else ("turn", "paragraph")
    marks = ",".join("?" for _ in kinds)
    row = db.execute(
        f"SELECT MIN(start_offset), MAX(end_offset) FROM segments WHERE source_id = ? "
        f"AND kind IN ({marks}) AND start_offset < ? AND end_offset > ?",
        [source_id, *kinds, end, start],
    ).fetchone()
    if row is None or row[0] is None:
        return start, end
    return min(row[0], start), max(row[1], end)
