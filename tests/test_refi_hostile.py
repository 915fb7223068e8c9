"""REFI-QDA import of hostile and messy files: each test is one case that once went wrong.

Every rejected import must leave the database as it was, checked with
``qualkit.store.content_hash`` on a project that already has a source,
codes, a coding and a memo.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from qualkit import store
from qualkit.cli import cli
from qualkit.errors import InputError
from qualkit.refi import import_refi

USER = "AAAAAAAA-0000-4000-8000-000000000001"
CODE_A = "CCCCCCCC-0000-4000-8000-000000000001"
CODE_B = "CCCCCCCC-0000-4000-8000-000000000002"
SOURCE = "55555555-0000-4000-8000-000000000001"
TEXT = "Interviewer: Hello.\r\nOfficial: We bargained over dinner 😀.\r\n官员：我们讨价还价。\r\n"


def project_xml(
    selections: str = "",
    *,
    users: str | None = None,
    codes: str | None = None,
    sources: str | None = None,
    tail: str = "",
    namespace: str = "urn:QDA-XML:project:1.0",
) -> str:
    """Return a project.qde with one user, two codes and one text source holding ``selections``."""
    if users is None:
        users = f'<Users><User guid="{USER}" name="carol"/></Users>'
    if codes is None:
        codes = (
            f'<Code guid="{CODE_A}" name="Dinner talk" isCodable="true"/>'
            f'<Code guid="{CODE_B}" name="Bargain" isCodable="true"/>'
        )
    if sources is None:
        sources = (
            f'<Sources><TextSource guid="{SOURCE}" name="T01.txt" '
            f'plainTextPath="internal://{SOURCE}.txt">{selections}</TextSource></Sources>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<Project xmlns="{namespace}" name="hostile">{users}'
        f"<CodeBook><Codes>{codes}</Codes></CodeBook>{sources}{tail}</Project>"
    )


def selection(
    start: Any,
    end: Any,
    *,
    code: str = CODE_A,
    guid: str = "77777777-0000-4000-8000-000000000001",
    coding_guid: str = "88888888-0000-4000-8000-000000000001",
    coding_extra: str = "",
) -> str:
    return (
        f'<PlainTextSelection guid="{guid}" startPosition="{start}" endPosition="{end}">'
        f'<Coding guid="{coding_guid}" creatingUser="{USER}"{coding_extra}>'
        f'<CodeRef targetGUID="{code}"/></Coding></PlainTextSelection>'
    )


def codebook_xml(codes: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<CodeBook xmlns="urn:QDA-XML:codebook:1.0" origin="test"><Codes>{codes}</Codes></CodeBook>'
    )


def code(guid: str, name: str, inner: str = "", description: str = "") -> str:
    described = f"<Description>{description}</Description>" if description else ""
    return (
        f'<Code guid="{guid}" name="{name}" isCodable="true">{described}{inner}</Code>'
    )


def guid(number: int, prefix: str = "CCCCCCCC") -> str:
    return f"{prefix}-0000-4000-8000-{number:012d}"


def write_archive(
    path: Path,
    xml: str | bytes,
    text: bytes | None = None,
    extra: list[tuple[str, bytes]] | None = None,
) -> Path:
    """Write a .qdpx with ``xml`` as project.qde, ``text`` as the source's member, then ``extra``."""
    members = [("project.qde", xml.encode() if isinstance(xml, str) else xml)]
    if text is not None:
        members.append((f"sources/{SOURCE}.txt", text))
    members += extra or []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def seeded_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project database with one source, two codes, one coding and one memo."""
    folder = tmp_path_factory.mktemp("refi-hostile")
    archive = write_archive(
        folder / "seed.qdpx",
        project_xml(
            selection(49, 55),
            tail='<Notes><Note guid="44444444-0000-4000-8000-000000000001" name="n">'
            "<PlainTextContent>seed memo</PlainTextContent></Note></Notes>"
            '<NoteRef targetGUID="44444444-0000-4000-8000-000000000001"/>',
        ),
        TEXT.encode(),
    )
    path = folder / "seed.db"
    db = store.open_database(path)
    import_refi(db, archive)
    db.close()
    return path


@pytest.fixture
def seeded(seeded_file: Path, tmp_path: Path) -> sqlite_utils.Database:
    db = store.open_database(shutil.copy(seeded_file, tmp_path / "project.db"))
    yield db
    db.close()


@pytest.fixture
def fresh(tmp_path: Path) -> sqlite_utils.Database:
    db = store.open_database(tmp_path / "fresh.db")
    yield db
    db.close()


def assert_rejected(
    db: sqlite_utils.Database, path: Path, words: str, **options: Any
) -> str:
    """Import ``path``, expect an InputError containing ``words``, and check nothing changed."""
    before = store.content_hash(db)
    with pytest.raises(InputError) as caught:
        import_refi(db, path, **options)
    message = str(caught.value)
    assert words in message
    assert store.content_hash(db) == before
    return message


def rows_of(report: Any, element: str | None = None) -> list[tuple[str, str, str, str]]:
    return [
        (row.element, row.name, row.action, row.detail)
        for row in report.rows
        if element is None or row.element == element
    ]


# Files that are not what their name says ------------------------------------------


def test_qdpx_not_zip_named_as_such(
    seeded: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = tmp_path / "x.qdpx"
    path.write_bytes(b"hello, this is not a zip")
    message = assert_rejected(seeded, path, "not a zip archive")
    assert "XML" not in message


def test_empty_file_named_as_such(
    seeded: sqlite_utils.Database, tmp_path: Path
) -> None:
    for name in ("x.qdpx", "x.qdc"):
        path = tmp_path / name
        path.write_bytes(b"")
        assert_rejected(seeded, path, "the file is empty")


def test_empty_zip_has_no_project(
    seeded: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = tmp_path / "empty.qdpx"
    with zipfile.ZipFile(path, "w"):
        pass
    assert_rejected(seeded, path, "has no project.qde")


# XML structure ---------------------------------------------------------------------


def test_deeply_nested_codes_rejected(
    seeded: sqlite_utils.Database, tmp_path: Path
) -> None:
    depth = 5000
    opening = "".join(
        f'<Code guid="{guid(i)}" name="c{i}" isCodable="true">' for i in range(depth)
    )
    path = tmp_path / "deep.qdc"
    path.write_text(codebook_xml(opening + "</Code>" * depth), encoding="utf-8")
    assert_rejected(seeded, path, "nested more than")


def test_external_dtd_rejected(seeded: sqlite_utils.Database, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET", encoding="utf-8")
    xml = (
        f'<?xml version="1.0"?><!DOCTYPE Project SYSTEM "{secret.as_uri()}">'
        '<Project xmlns="urn:QDA-XML:project:1.0" name="x"/>'
    )
    path = write_archive(tmp_path / "dtd.qdpx", xml)
    assert_rejected(seeded, path, "external reference")


def test_internal_doctype_still_accepted(
    fresh: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = tmp_path / "doctype.qdc"
    xml = codebook_xml(code(CODE_A, "A")).replace("?>\n", "?>\n<!DOCTYPE CodeBook>", 1)
    path.write_text(xml, encoding="utf-8")
    report = import_refi(fresh, path)
    assert report.counts["codes"] == 1


def test_foreign_namespace_element_not_read(
    fresh: sqlite_utils.Database, tmp_path: Path
) -> None:
    note = (
        '<Notes><Note guid="44444444-0000-4000-8000-000000000002" name="n">'
        '<PlainTextContent>kept <xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
        'href="file:///etc/passwd" parse="text"/></PlainTextContent></Note></Notes>'
    )
    path = write_archive(tmp_path / "xi.qdpx", project_xml(tail=note), TEXT.encode())
    report = import_refi(fresh, path)
    assert [row for row in rows_of(report) if row[1] == "namespace"] == []
    unread = [row for row in rows_of(report) if row[2] == "not imported"]
    assert len(unread) == 1
    assert "XInclude" in unread[0][0]
    memo = fresh.execute("SELECT text FROM memos").fetchone()[0]
    assert "root:" not in memo


# Zip archives ----------------------------------------------------------------------


def test_duplicate_member_names_rejected(
    seeded: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = tmp_path / "twice.qdpx"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("project.qde", project_xml(selection(3, 9)))
        archive.writestr(f"sources/{SOURCE}.txt", TEXT.encode())
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("project.qde", project_xml())
    path.write_bytes(buffer.getvalue())
    assert_rejected(seeded, path, "two members named 'project.qde'")


# Codes -----------------------------------------------------------------------------


def test_same_name_under_two_parents_kept_apart(
    fresh: sqlite_utils.Database, tmp_path: Path
) -> None:
    codes = code(guid(1), "Strategies", code(guid(2), "Other")) + code(
        guid(3), "Channels", code(guid(4), "Other")
    )
    path = tmp_path / "other.qdc"
    path.write_text(codebook_xml(codes), encoding="utf-8")
    report = import_refi(fresh, path)
    assert report.counts["codes"] == 4
    stored = fresh.execute("SELECT id, parent_id FROM codes ORDER BY id").fetchall()
    assert ("channels.other", "channels") in stored
    assert ("strategies.other", "strategies") in stored


def test_names_differing_in_case_kept_apart(
    fresh: sqlite_utils.Database, tmp_path: Path
) -> None:
    codes = code(guid(1), "Same") + code(guid(2), "same") + code(guid(3), "SAME")
    path = tmp_path / "case.qdc"
    path.write_text(codebook_xml(codes), encoding="utf-8")
    report = import_refi(fresh, path)
    assert report.counts["codes"] == 3
    ids = [row[0] for row in fresh.execute("SELECT id FROM codes ORDER BY id")]
    assert ids == ["same", "same_2", "same_3"]


def test_emoji_names_with_shared_guid_prefix(
    fresh: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = tmp_path / "emoji.qdc"
    path.write_text(
        codebook_xml(code(guid(1), "😀") + code(guid(2), "😀")), encoding="utf-8"
    )
    report = import_refi(fresh, path)
    assert report.counts["codes"] == 2


def test_repeated_qualkit_id_makes_new_code(
    fresh: sqlite_utils.Database, tmp_path: Path
) -> None:
    inner = code(guid(3), "A again", description="qualkit id: a")
    codes = code(guid(1), "A", code(guid(2), "B", inner), description="qualkit id: a")
    path = tmp_path / "ids.qdc"
    path.write_text(codebook_xml(codes), encoding="utf-8")
    report = import_refi(fresh, path)
    assert report.counts["codes"] == 3
    parents = dict(fresh.execute("SELECT id, parent_id FROM codes").fetchall())
    assert parents["a"] is None
    assert parents["a.b.a_again"] == "a.b"
    assert any(
        "already has qualkit id 'a'" in row[3] for row in rows_of(report, "Code")
    )


def test_label_match_with_project_still_works(
    seeded: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = tmp_path / "again.qdc"
    path.write_text(codebook_xml(code(guid(9), "dinner TALK")), encoding="utf-8")
    report = import_refi(seeded, path)
    assert report.counts["codes"] == 0
    assert ("Code", "dinner TALK", "merged") in [row[:3] for row in rows_of(report)]


def test_long_code_and_source_names_capped(
    fresh: sqlite_utils.Database, tmp_path: Path
) -> None:
    xml = project_xml(
        selection(3, 9),
        codes=f'<Code guid="{CODE_A}" name="{"N" * 100_000}" isCodable="true"/>',
    ).replace('name="T01.txt"', f'name="{"L" * 50_000}"')
    path = write_archive(tmp_path / "long.qdpx", xml, TEXT.encode())
    import_refi(fresh, path)
    code_id, label = fresh.execute("SELECT id, label FROM codes").fetchone()
    assert len(code_id) <= 60
    assert len(label) == 100_000
    source_id = fresh.execute("SELECT id FROM sources").fetchone()[0]
    assert len(source_id) <= 100


# Duplicate GUIDs -------------------------------------------------------------------


def test_duplicate_code_guid_rejected(
    seeded: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = tmp_path / "dup.qdc"
    path.write_text(
        codebook_xml(code(guid(1), "A") + code(guid(1), "B")), encoding="utf-8"
    )
    assert_rejected(seeded, path, "already used by another Code")


def test_duplicate_code_guid_skipped_keeps_first(
    fresh: sqlite_utils.Database, tmp_path: Path
) -> None:
    nested = code(guid(1), "A", code(guid(2), "B", code(guid(1), "A again")))
    path = tmp_path / "nested.qdc"
    path.write_text(codebook_xml(nested), encoding="utf-8")
    report = import_refi(fresh, path, skip_invalid=True)
    assert report.counts["codes"] == 2
    assert ("Code", "A again", "skipped") in [row[:3] for row in rows_of(report)]


def test_duplicate_user_guid_rejected(
    seeded: sqlite_utils.Database, tmp_path: Path
) -> None:
    users = f'<Users><User guid="{USER}" name="carol"/><User guid="{USER}" name="dave"/></Users>'
    path = write_archive(
        tmp_path / "users.qdpx",
        project_xml(selection(3, 9), users=users),
        TEXT.encode(),
    )
    assert_rejected(seeded, path, "already used by another User")


def test_duplicate_source_guid_rejected(
    seeded: sqlite_utils.Database, tmp_path: Path
) -> None:
    one = f'<TextSource guid="{SOURCE}" name="T01.txt" plainTextPath="internal://{SOURCE}.txt"/>'
    two = one.replace("T01.txt", "T02.txt")
    path = write_archive(
        tmp_path / "sources.qdpx",
        project_xml(sources=f"<Sources>{one}{two}</Sources>"),
        TEXT.encode(),
    )
    assert_rejected(seeded, path, "already used by another TextSource")


def test_duplicate_note_guid_rejected(
    seeded: sqlite_utils.Database, tmp_path: Path
) -> None:
    note = '<Note guid="44444444-0000-4000-8000-000000000009" name="{0}"><PlainTextContent>{0}</PlainTextContent></Note>'
    tail = f"<Notes>{note.format('first')}{note.format('second')}</Notes>"
    path = write_archive(tmp_path / "notes.qdpx", project_xml(tail=tail), TEXT.encode())
    assert_rejected(seeded, path, "already used by another Note")


# Selection positions ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["١٢", "３", "1_0", "0x10", "1e3"])
def test_position_not_xsd_integer_rejected(
    seeded: sqlite_utils.Database, tmp_path: Path, value: str
) -> None:
    path = write_archive(
        tmp_path / "pos.qdpx", project_xml(selection(value, 20)), TEXT.encode()
    )
    assert_rejected(seeded, path, "must be whole numbers")


@pytest.mark.parametrize("start, end", [("+3", "+9"), (" 3 ", " 9 ")])
def test_position_xsd_integer_forms_accepted(
    fresh: sqlite_utils.Database, tmp_path: Path, start: str, end: str
) -> None:
    path = write_archive(
        tmp_path / "pos.qdpx", project_xml(selection(start, end)), TEXT.encode()
    )
    report = import_refi(fresh, path)
    assert report.counts["codings"] == 1


def test_rejection_names_file_positions(
    seeded: sqlite_utils.Database, tmp_path: Path
) -> None:
    selections = selection(30, 20) + selection(
        10,
        500,
        guid="77777777-0000-4000-8000-000000000002",
        coding_guid="88888888-0000-4000-8000-000000000002",
    )
    path = write_archive(tmp_path / "pos.qdpx", project_xml(selections), TEXT.encode())
    message = assert_rejected(seeded, path, "invalid element")
    assert "T01.txt [30:20]" in message
    assert "T01.txt [10:500]" in message


def test_huge_position_quoted_short(
    seeded: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = write_archive(
        tmp_path / "pos.qdpx", project_xml(selection(3, "9" * 5000)), TEXT.encode()
    )
    message = assert_rejected(seeded, path, "must be whole numbers")
    assert len(message) < 600


# Command-line limits ---------------------------------------------------------------


@pytest.mark.parametrize("option", ["--max-member-mb", "--max-total-mb"])
@pytest.mark.parametrize("value", ["inf", "nan"])
def test_cli_limit_not_finite(
    seeded_file: Path, tmp_path: Path, runner: Any, option: str, value: str
) -> None:
    database = shutil.copy(seeded_file, tmp_path / "project.db")
    path = write_archive(
        tmp_path / "ok.qdpx", project_xml(selection(3, 9)), TEXT.encode()
    )
    result = runner.invoke(
        cli, ["--db", str(database), "refi", "import", str(path), option, value]
    )
    assert result.exit_code == 2, result.output
    assert option in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


# The report ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path_value, options",
    [
        ("absolute:///tmp/secret.txt", {}),
        ("relative://../secret.txt", {}),
        ("internal://missing.txt", {"skip_invalid": True}),
    ],
)
def test_source_not_imported_listed_once(
    fresh: sqlite_utils.Database, tmp_path: Path, path_value: str, options: dict
) -> None:
    xml = project_xml(selection(3, 9)).replace(f"internal://{SOURCE}.txt", path_value)
    path = write_archive(tmp_path / "ext.qdpx", xml, TEXT.encode())
    report = import_refi(fresh, path, **options)
    source_rows = [row for row in rows_of(report) if "TextSource" in row[0]]
    assert len(source_rows) == 1
    assert "does not read this element" not in source_rows[0][3]


def test_unknown_variable_listed_once(
    fresh: sqlite_utils.Database, tmp_path: Path
) -> None:
    tail = (
        '<Cases><Case guid="99999999-0000-4000-8000-000000000001" name="K1">'
        '<VariableValue><VariableRef targetGUID="DEADBEEF-0000-4000-8000-000000000000"/>'
        f'<TextValue>orphan</TextValue></VariableValue><SourceRef targetGUID="{SOURCE}"/>'
        "</Case></Cases>"
    )
    path = write_archive(tmp_path / "var.qdpx", project_xml(tail=tail), TEXT.encode())
    report = import_refi(fresh, path)
    value_rows = [row for row in rows_of(report) if "VariableValue" in row[0]]
    assert len(value_rows) == 1
    assert "DEADBEEF" in value_rows[0][3]


def test_case_unknown_source_warned(
    fresh: sqlite_utils.Database, tmp_path: Path
) -> None:
    tail = (
        '<Cases><Case guid="99999999-0000-4000-8000-000000000001" name="K1">'
        '<SourceRef targetGUID="DEADBEEF-0000-4000-8000-000000000000"/></Case></Cases>'
    )
    path = write_archive(tmp_path / "case.qdpx", project_xml(tail=tail), TEXT.encode())
    report = import_refi(fresh, path)
    warnings = [row for row in rows_of(report, "Case") if row[2] == "warning"]
    assert len(warnings) == 1
    assert "DEADBEEF-0000-4000-8000-000000000000" in warnings[0][3]


@pytest.mark.parametrize(
    "value", ["not-a-date", "99999-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00"]
)
def test_unreadable_creation_time_warned(
    fresh: sqlite_utils.Database, tmp_path: Path, value: str
) -> None:
    xml = project_xml(selection(3, 9, coding_extra=f' creationDateTime="{value}"'))
    path = write_archive(tmp_path / "date.qdpx", xml, TEXT.encode())
    report = import_refi(fresh, path)
    assert report.counts["codings"] == 1
    warnings = [row for row in rows_of(report, "Coding") if row[2] == "warning"]
    assert len(warnings) == 1
    assert "creationDateTime" in warnings[0][3]


def test_source_id_reported_once(fresh: sqlite_utils.Database, tmp_path: Path) -> None:
    second = SOURCE.replace("55555555", "66666666")
    sources = (
        f'<Sources><TextSource guid="{SOURCE}" name="T01.txt" plainTextPath="internal://{SOURCE}.txt"/>'
        f'<TextSource guid="{second}" name="T01.txt" plainTextPath="internal://{second}.txt"/></Sources>'
    )
    path = write_archive(
        tmp_path / "two.qdpx",
        project_xml(sources=sources),
        b"first text",
        [(f"sources/{second}.txt", b"second, other text")],
    )
    report = import_refi(fresh, path)
    assert [row[3] for row in rows_of(report, "TextSource")] == [
        "stored as source id 'T01'",
        "the project has a different source 'T01'; stored as 'T01_2'",
    ]


def test_empty_note_only_skipped(fresh: sqlite_utils.Database, tmp_path: Path) -> None:
    tail = '<Notes><Note guid="44444444-0000-4000-8000-000000000003" name="blank"/></Notes>'
    path = write_archive(tmp_path / "note.qdpx", project_xml(tail=tail), TEXT.encode())
    report = import_refi(fresh, path)
    assert [row[2] for row in rows_of(report, "Note")] == ["skipped"]


# Source text -----------------------------------------------------------------------


def test_nul_replaced_keeping_positions(
    fresh: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = write_archive(
        tmp_path / "nul.qdpx", project_xml(selection(4, 7)), b"abc\x00def ghi\x00"
    )
    report = import_refi(fresh, path)
    text = fresh.execute("SELECT text FROM sources").fetchone()[0]
    assert "\x00" not in text
    assert text == "abc\ufffddef ghi\ufffd"
    quote = fresh.execute("SELECT quote FROM codings").fetchone()[0]
    assert quote == "def"
    assert any("NUL" in row[3] for row in rows_of(report, "TextSource"))
