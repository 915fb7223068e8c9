"""Copies of a project for one coder each, blind to the other coders' work.

A clone is made with SQLite's online backup API, so it is consistent even
while another process writes to the project. The copy is written to a
temporary file next to the destination and renamed into place only when it
is complete, so a failed clone leaves no half-written file behind. A blind
copy is made in memory and only written to disk after the other coders'
rows are deleted, so a clone that is killed part-way never leaves their
work in a file.

A blind clone keeps everything a coder needs (sources, segments, cases, the
codebook, targets, the panel, scores and auto-coding suggestions) and the
coder's own codings, memos, history and review position. It leaves out
what other human coders wrote: their codings, memos, audit log entries
about codings, memos and quote links, and their review positions.
"""

from __future__ import annotations

import glob
import hashlib
import os
import sqlite3
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from qualkit import store
from qualkit.audit import SYSTEM_CODER, check_coder_name
from qualkit.errors import QualkitError

# The coder that owns auto-coding suggestions (qualkit.autocode.AUTO_CODER,
# repeated here so that cloning does not import spaCy).
AUTO_CODER = "autocode"
# Audit log tables whose entries reveal a coder's work.
CODER_TABLES = ("codings", "memos", "quote_links")


@dataclass
class CloneResult:
    """The contents of a clone and the counts of what a blind clone left out."""

    path: Path
    coder: str
    blind: bool
    sources: int
    sources_fingerprint: str
    codings_kept: int
    codings_left_out: int
    suggestions_restored: int
    memos_left_out: int
    audit_entries_left_out: int


def sources_fingerprint(db: sqlite_utils.Database | sqlite3.Connection) -> str:
    """Return a SHA-256 digest of every source's id and text hash, in id order.

    Two projects with the same fingerprint contain the same transcripts under
    the same ids, whatever else differs.
    """
    digest = hashlib.sha256()
    rows = db.execute("SELECT id, content_hash FROM sources ORDER BY id")
    for source_id, text_digest in rows:
        digest.update(f"{source_id}\t{text_digest}\n".encode())
    return digest.hexdigest()


def coder_key(name: str) -> str:
    """Return the form of a coder name that two spellings of one coder share.

    Surrounding whitespace is ignored, case is folded, and the result is in
    Unicode NFC, so "Zoë" typed with a combining diaeresis matches "Zoë"
    typed as one character, and "Alice" matches "alice ".
    """
    decomposed = unicodedata.normalize("NFD", name.strip())
    return unicodedata.normalize("NFC", decomposed.casefold())


def database_path(db: sqlite_utils.Database) -> Path:
    """Return the file behind the connection's main database."""
    for _, name, filename in db.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return Path(filename)
    raise QualkitError("The project database has no file (an in-memory database).")


def same_file(first: Path, second: Path) -> bool:
    """Return whether two paths name the same file (both must exist to be equal by inode)."""
    if first.exists() and second.exists():
        return os.path.samefile(first, second)
    return first.resolve() == second.resolve()


def _remove_sidecar_files(path: Path) -> None:
    # A stale -wal file left next to a replaced database would be replayed
    # into the new file when it is next opened, so it goes with the file.
    for candidate in (
        Path(f"{path}-wal"),
        Path(f"{path}-shm"),
        Path(f"{path}-journal"),
    ):
        candidate.unlink(missing_ok=True)


def _remove_database_file(path: Path) -> None:
    path.unlink(missing_ok=True)
    _remove_sidecar_files(path)


def clone_project(
    db: sqlite_utils.Database,
    destination: str | Path,
    coder: str,
    *,
    blind: bool = True,
    force: bool = False,
) -> CloneResult:
    """Copy the project in ``db`` to ``destination`` for ``coder``.

    Raises QualkitError when the destination exists (unless ``force``) or is
    the project itself. With ``blind``, the other human coders' work is left
    out as the module docstring lists.
    """
    coder = check_coder_name(coder)
    destination = Path(destination)
    origin = database_path(db)
    if same_file(destination, origin):
        raise QualkitError(
            f"{destination} is the project database itself. Give the clone another file name."
        )
    for suffix in ("-wal", "-shm", "-journal"):
        # SQLite deletes these files when the project closes, copy or not.
        if same_file(destination, Path(f"{origin}{suffix}")):
            raise QualkitError(
                f"{destination} is a working file of the project database that SQLite "
                "manages. Give the clone another file name."
            )
    if destination.is_dir():
        raise QualkitError(
            f"{destination} is a folder. Give a file name such as {destination / 'alice.db'}."
        )
    if destination.exists() and not force:
        raise QualkitError(
            f"{destination} already exists. Choose another name, or pass --force to replace it."
        )
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise QualkitError(
            f"Cannot create the folder {destination.parent} for the clone ({error.strerror}). "
            "Give a destination in a folder that exists or can be created."
        ) from None
    _remove_stale_partials(destination)
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    _remove_database_file(partial)
    try:
        result = _write_clone(db, origin, partial, coder, blind)
        _remove_sidecar_files(destination)
        os.replace(partial, destination)
    except (OSError, sqlite3.OperationalError) as error:
        raise QualkitError(
            f"Cannot write the clone {destination} ({error}). "
            "Check that its folder is writable and has free space."
        ) from None
    finally:
        _remove_database_file(partial)
    result.path = destination
    return result


def _remove_stale_partials(destination: Path) -> None:
    """Delete temporary files of earlier clones to ``destination`` whose process has ended.

    A clone that was killed leaves its temporary file behind. A file whose
    process id still belongs to a running process is kept, because that
    process may be cloning to the same destination right now.

    NOTE: process ids are only checked on this machine, so a clone to the
    same destination from another machine on a shared folder can lose its
    temporary file and fail with an error.
    """
    prefix = f".{destination.name}."
    for candidate in destination.parent.glob(f"{glob.escape(prefix)}*.partial*"):
        pid_text = candidate.name[len(prefix) :].split(".partial", 1)[0]
        if not pid_text.isdigit() or _process_running(int(pid_text)):
            continue
        candidate.unlink(missing_ok=True)


def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # The process exists but belongs to another user.
        return True
    return True


def _write_clone(
    db: sqlite_utils.Database, origin: Path, partial: Path, coder: str, blind: bool
) -> CloneResult:
    # A blind copy is blinded in memory and then written out with VACUUM
    # INTO, which writes no free pages, so the other coders' rows never reach
    # the disk. NOTE: a blind clone needs memory for one copy of the project.
    copy = sqlite3.connect(":memory:" if blind else str(partial))
    try:
        db.conn.backup(copy)
        if not blind:
            # A rollback journal keeps the copy in one file until it is renamed.
            # qualkit switches it back to WAL when it next opens it.
            copy.execute("PRAGMA journal_mode = DELETE")
        copy.execute("PRAGMA foreign_keys = ON")
        fingerprint = sources_fingerprint(copy)
        with copy:
            left_out = _leave_out_others(copy, coder) if blind else (0, 0, 0, 0)
            meta = {
                "clone_of": fingerprint,
                "clone_coder": coder,
                "cloned_at": store.utc_now(),
                "clone_blind": "1" if blind else "0",
                "clone_source": str(origin.resolve()),
            }
            copy.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta.items()
            )
        if blind:
            copy.execute("VACUUM INTO ?", [str(partial)])
        sources = copy.execute("SELECT count(*) FROM sources").fetchone()[0]
        kept = copy.execute("SELECT count(*) FROM codings").fetchone()[0]
    finally:
        copy.close()
    codings_left_out, restored, memos_left_out, audit_left_out = left_out
    return CloneResult(
        path=partial,
        coder=coder,
        blind=blind,
        sources=sources,
        sources_fingerprint=fingerprint,
        codings_kept=kept,
        codings_left_out=codings_left_out,
        suggestions_restored=restored,
        memos_left_out=memos_left_out,
        audit_entries_left_out=audit_left_out,
    )


def _leave_out_others(
    copy: sqlite3.Connection, coder: str
) -> tuple[int, int, int, int]:
    """Delete other human coders' work from the copy and return the counts per kind.

    Coder names are compared by ``coder_key``, so "Alice" keeps the codings
    stored under "alice". A suggestion that another coder accepted or
    rejected became that coder's coding. It is turned back into a
    suggestion, so that the clone's coder reviews it too, unless the same
    suggestion is stored already. Its ``updated_at`` goes back to its
    ``created_at``, as for an undecided suggestion, so the time of the other
    coder's decision does not show which suggestions were decided.
    """
    copy.create_function(
        "qualkit_coder_key",
        1,
        lambda text: coder_key(text) if text else text,
        deterministic=True,
    )
    own = coder_key(coder)
    keep = (own, AUTO_CODER)
    restored = copy.execute(
        "UPDATE OR IGNORE codings SET coder = ?, status = 'suggested', value = NULL, "
        "key_quote = 0, needs_review = 0, updated_at = created_at "
        "WHERE origin = 'auto' AND qualkit_coder_key(coder) NOT IN (?, ?)",
        [AUTO_CODER, *keep],
    ).rowcount
    # Memos about codings go first, while the codings they name still exist.
    # The system coder's memos (notes on re-anchored codings) go with the
    # codings they describe.
    memos = copy.execute(
        "DELETE FROM memos WHERE (qualkit_coder_key(coder) NOT IN (?, ?, ?)) OR (about = 'coding' "
        "AND CAST(about_id AS INTEGER) IN (SELECT id FROM codings "
        "WHERE qualkit_coder_key(coder) NOT IN (?, ?)))",
        [*keep, SYSTEM_CODER, *keep],
    ).rowcount
    codings = copy.execute(
        "DELETE FROM codings WHERE qualkit_coder_key(coder) NOT IN (?, ?)", keep
    ).rowcount
    existing = {
        row[0]
        for row in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    if "audit_log" not in existing:
        # Databases made before the audit log existed have no history to filter.
        return codings, restored, memos, 0
    tables = ", ".join("?" for _ in CODER_TABLES)
    history = copy.execute(
        f"DELETE FROM audit_log WHERE table_name IN ({tables}) "
        "AND qualkit_coder_key(coder) != ?",
        [*CODER_TABLES, own],
    ).rowcount
    history += _leave_out_others_rows_in_own_history(copy, own)
    copy.execute("DELETE FROM review_state WHERE qualkit_coder_key(coder) != ?", [own])
    return codings, restored, memos, history


def _leave_out_others_rows_in_own_history(copy: sqlite3.Connection, own: str) -> int:
    """Delete the coder's own audit entries whose stored rows are other coders' work.

    The coder may have run a command that wrote other coders' rows, such as
    ``qualkit merge --coder NAME``, and each audit entry keeps the whole row
    before and after. A coding entry stays when every stored row belongs to
    the coder or to auto-coding. A memo entry stays when every stored row
    belongs to the coder or is a system memo kept in the copy. A link entry
    stays when its coding is in the copy or in a kept coding entry.
    """
    owners = "qualkit_coder_key(coalesce(json_extract({column}, '$.coder'), '')) NOT IN (?, ?)"
    other_coding = " OR ".join(
        f"({column} IS NOT NULL AND {owners.format(column=column)})"
        for column in ("before", "after")
    )
    deleted = copy.execute(
        f"DELETE FROM audit_log WHERE table_name = 'codings' AND ({other_coding})",
        [own, AUTO_CODER, own, AUTO_CODER],
    ).rowcount
    other_memo = " OR ".join(
        f"({column} IS NOT NULL AND {owners.format(column=column)} "
        f"AND NOT (json_extract({column}, '$.coder') = ? "
        "AND CAST(row_id AS INTEGER) IN (SELECT id FROM memos)))"
        for column in ("before", "after")
    )
    deleted += copy.execute(
        f"DELETE FROM audit_log WHERE table_name = 'memos' AND ({other_memo})",
        [own, own, SYSTEM_CODER, own, own, SYSTEM_CODER],
    ).rowcount
    deleted += copy.execute(
        "DELETE FROM audit_log WHERE table_name = 'quote_links' "
        "AND json_extract(coalesce(after, before), '$.coding_id') NOT IN "
        "(SELECT id FROM codings UNION "
        "SELECT CAST(row_id AS INTEGER) FROM audit_log WHERE table_name = 'codings')"
    ).rowcount
    return deleted
