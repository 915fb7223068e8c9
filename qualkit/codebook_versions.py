"""The project's codebook over time: storing versions, comparing and applying them.

Codes dropped from a newer codebook are kept inactive, so their codings keep
a code. Codes that declare ``replaces:`` carry the codings of the codes they
replace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlite_utils

from qualkit.audit import PRIMARY_KEYS, SYSTEM_CODER, ChangeRecorder
from qualkit.codebook import Code, Codebook
from qualkit.errors import QualkitError
from qualkit.store import utc_now


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
    # Parents come first in file order, so each row's parent already exists.
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
