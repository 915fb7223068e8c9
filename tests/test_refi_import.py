"""REFI-QDA import: files written the way other programs write them, and hostile files.

Every rejected import must leave the database as it was, checked with
``qualkit.store.content_hash``. The hand-made archives follow the layout in
section 8 of the REFI-QDA 1.5 specification (project.qde and a sources
folder in a zip archive, ``internal://`` paths), with the departures from
it that the tests name.
"""

from __future__ import annotations

import io
import json
import unicodedata
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from test_refi import _build, copy_database

from qualkit import store
from qualkit.cli import cli
from qualkit.errors import InputError
from qualkit.refi import ReadLimits, import_refi
from qualkit.refi.reader import normalize_colour
from qualkit.refi.xmlsafe import safe_member_name

PROJECT_NS = "urn:QDA-XML:project:1.0"
USER = "{8A0C5E2B-1D3F-4A6B-9C7D-0E1F2A3B4C5D}"
CODE_PARENT = "11111111-2222-4333-8444-555555555555"
CODE_CHILD = "21111111-2222-4333-8444-555555555555"
CODE_PLAIN = "31111111-2222-4333-8444-555555555555"
SOURCE_CRLF = "41111111-2222-4333-8444-555555555555"
SOURCE_ZH = "51111111-2222-4333-8444-555555555555"
NOTE_ON_SELECTION = "61111111-2222-4333-8444-555555555555"
NOTE_LOOSE = "71111111-2222-4333-8444-555555555555"
VARIABLE_REGION = "81111111-2222-4333-8444-555555555555"
VARIABLE_DATE = "91111111-2222-4333-8444-555555555555"

CRLF_TEXT = (
    "Interviewer: How were targets set?\r\nRespondent: We negotiated them down.\r\n"
)
ZH_TEXT = "问：排名怎么样？\r\n答：我们在全省排名第二 🎉，还不错。"


def crlf_span(phrase: str) -> tuple[int, int]:
    """Return a phrase's positions counted in the CRLF text, as the other program counted them."""
    start = CRLF_TEXT.index(phrase)
    return start, start + len(phrase)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def write_qdpx(
    path: Path,
    project_xml: str,
    sources: dict[str, str | bytes],
    qde_name: str = "project.qde",
) -> Path:
    members = {qde_name: project_xml.encode("utf-8")}
    for name, text in sources.items():
        members[name] = text if isinstance(text, bytes) else text.encode("utf-8")
    path.write_bytes(zip_bytes(members))
    return path


def foreign_project(
    selections_crlf: str | None = None, namespace: str = PROJECT_NS
) -> str:
    """Return a project.qde as another program might write it.

    It has braces around a user GUID, colours in three notations, a plain
    relative source path beside an ``internal://`` one, and positions
    counted in CRLF text. It also has a note on a selection, a loose note,
    a PDF source, a set, a graph, a link and an element the standard does
    not have. ``selections_crlf`` replaces the selections of the first
    source. An empty ``<Sets/>`` is tested with the codebook file instead.
    """
    start, end = crlf_span("We negotiated them down.")
    selections_crlf = selections_crlf or (
        f'<PlainTextSelection guid="A1111111-2222-4333-8444-555555555555" name="We negotiated them down." '
        f'startPosition="{start}" endPosition="{end}" creatingUser="{USER}">'
        f'<Coding guid="B1111111-2222-4333-8444-555555555555" creatingUser="{USER}" '
        f'creationDateTime="2024-03-01T10:00:00Z"><CodeRef targetGUID="{CODE_CHILD}"/></Coding>'
        f'<NoteRef targetGUID="{NOTE_ON_SELECTION}"/>'
        f"</PlainTextSelection>"
    )
    zh_start = ZH_TEXT.index("排名第二")
    xmlns = f' xmlns="{namespace}"' if namespace else ""
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Project{xmlns} xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="urn:QDA-XML:project:1.0 http://schema.qdasoftware.org/versions/Project/v1.0/Project.xsd"
  name="Field study" origin="OtherQDA 9.1">
  <Users><User guid="{USER}" name="Dana Li"/></Users>
  <CodeBook><Codes>
    <Code guid="{CODE_PARENT}" name="Strategies" isCodable="false" color="#f80">
      <Description>Ways of handling targets.</Description>
      <Code guid="{CODE_CHILD}" name="Négotiation" isCodable="true" color="rgb(0, 128, 0)"/>
    </Code>
    <Code guid="{CODE_PLAIN}" name="排名" isCodable="true" color="Blue"/>
  </Codes></CodeBook>
  <Variables>
    <Variable guid="{VARIABLE_REGION}" name="Province" typeOfVariable="Text"/>
    <Variable guid="{VARIABLE_DATE}" name="Date" typeOfVariable="Date"/>
  </Variables>
  <Cases>
    <Case guid="C1111111-2222-4333-8444-555555555555" name="Case 1">
      <VariableValue><VariableRef targetGUID="{VARIABLE_REGION}"/><TextValue>Hebei</TextValue></VariableValue>
      <VariableValue><VariableRef targetGUID="{VARIABLE_DATE}"/><DateValue>2016-05-01</DateValue></VariableValue>
      <SourceRef targetGUID="{SOURCE_CRLF}"/>
    </Case>
  </Cases>
  <Sources>
    <TextSource guid="{SOURCE_CRLF}" name="Interview 1.docx" plainTextPath="internal://{SOURCE_CRLF}.txt"
        richTextPath="internal://{SOURCE_CRLF}.docx">
      {selections_crlf}
    </TextSource>
    <TextSource guid="{SOURCE_ZH}" name="访谈2" plainTextPath="zh-interview.txt">
      <PlainTextSelection guid="D1111111-2222-4333-8444-555555555555" name="排名第二"
          startPosition="{zh_start}" endPosition="{zh_start + 4}">
        <Coding guid="E1111111-2222-4333-8444-555555555555"><CodeRef targetGUID="{CODE_PLAIN}"/></Coding>
      </PlainTextSelection>
    </TextSource>
    <PDFSource guid="F1111111-2222-4333-8444-555555555555" name="Report.pdf" path="internal://report.pdf"/>
  </Sources>
  <Notes>
    <Note guid="{NOTE_ON_SELECTION}" name="On negotiation" creatingUser="{USER}">
      <PlainTextContent>Said with a laugh.</PlainTextContent>
    </Note>
    <Note guid="{NOTE_LOOSE}" name="Loose note"><PlainTextContent>Check the dates.</PlainTextContent></Note>
  </Notes>
  <Links><Link guid="F2111111-2222-4333-8444-555555555555" name="related"/></Links>
  <Sets><Set guid="F3111111-2222-4333-8444-555555555555" name="Key interviews"><MemberSource targetGUID="{SOURCE_CRLF}"/></Set></Sets>
  <Graphs><Graph guid="F4111111-2222-4333-8444-555555555555" name="Map"/></Graphs>
  <Description>A project with things qualkit has no place for.</Description>
  <Extension vendor="OtherQDA"/>
</Project>
"""


def foreign_sources() -> dict[str, str | bytes]:
    return {
        f"sources/{SOURCE_CRLF}.txt": CRLF_TEXT,
        f"sources/{SOURCE_CRLF}.docx": b"formatted text stand-in",
        "sources/zh-interview.txt": ZH_TEXT,
        "sources/report.pdf": b"%PDF-1.4 stand-in",
    }


@pytest.fixture
def fresh(tmp_path: Path) -> sqlite_utils.Database:
    db = store.open_database(tmp_path / "fresh.db")
    yield db
    db.close()


@pytest.fixture(scope="module")
def built_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("refi-import") / "built")


@pytest.fixture
def project_db(built_database: Path, tmp_path: Path) -> sqlite_utils.Database:
    """A copy of the small project from test_refi, with sources, codes and codings."""
    db = store.open_database(copy_database(built_database, tmp_path / "project.db"))
    yield db
    db.close()


def actions(report: Any) -> set[tuple[str, str, str]]:
    return {(row.element, row.name, row.action) for row in report.rows}


def details(report: Any) -> str:
    return "\n".join(
        f"{row.element} {row.name} {row.action} {row.detail}" for row in report.rows
    )


# A project written by another program -------------------------------------------


def test_foreign_project_imports(fresh: sqlite_utils.Database, tmp_path: Path) -> None:
    path = write_qdpx(tmp_path / "foreign.qdpx", foreign_project(), foreign_sources())
    report = import_refi(fresh, path, coder="importer")
    assert report.counts == {
        "codes": 3,
        "cases": 1,
        "sources": 2,
        "codings": 2,
        "memos": 2,
    }

    codes = {
        row[0]: row[1:]
        for row in fresh.execute("SELECT id, parent_id, label, definition FROM codes")
    }
    assert codes["strategies"] == (None, "Strategies", "Ways of handling targets.")
    assert codes["strategies.negotiation"] == ("strategies", "Négotiation", "")
    assert codes["code_31111111"][1] == "排名"

    colours = json.loads(
        fresh.execute(
            "SELECT value FROM meta WHERE key = 'refi_code_colours'"
        ).fetchone()[0]
    )
    assert colours == {
        "strategies": "#FF8800",
        "strategies.negotiation": "#008000",
        "code_31111111": "#0000FF",
    }

    sources = dict(fresh.execute("SELECT id, text FROM sources").fetchall())
    assert sources["Interview_1"] == CRLF_TEXT.replace("\r\n", "\n")
    assert sources["访谈2"] == ZH_TEXT.replace("\r\n", "\n")

    codings = fresh.execute(
        "SELECT source_id, code_id, coder, quote, created_at FROM codings ORDER BY source_id"
    ).fetchall()
    assert codings == [
        (
            "Interview_1",
            "strategies.negotiation",
            "Dana Li",
            "We negotiated them down.",
            "2024-03-01T10:00:00+00:00",
        ),
        ("访谈2", "code_31111111", "importer", "排名第二", codings[1][4]),
    ]

    case = fresh.execute(
        "SELECT province, date, attributes FROM cases WHERE id = 'Case_1'"
    ).fetchone()
    assert case == ("Hebei", "2016-05-01", "{}")
    assert (
        fresh.execute(
            "SELECT case_id FROM sources WHERE id = 'Interview_1'"
        ).fetchone()[0]
        == "Case_1"
    )

    memos = fresh.execute(
        "SELECT about, coder, text FROM memos ORDER BY text"
    ).fetchall()
    assert memos == [
        ("project", "importer", "Check the dates."),
        ("coding", "Dana Li", "Said with a laugh."),
    ]

    assert (
        fresh.execute(
            "SELECT count(*) FROM segments WHERE source_id = 'Interview_1'"
        ).fetchone()[0]
        > 0
    )


def test_foreign_project_reports_what_is_left_out(
    fresh: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = write_qdpx(tmp_path / "foreign.qdpx", foreign_project(), foreign_sources())
    report = import_refi(fresh, path)
    found = actions(report)
    for element in (
        "PDFSource",
        "Links",
        "Sets/Set",
        "Graphs",
        "Description",
        "Extension",
    ):
        assert any(
            key[0].endswith(element) and key[2] == "not imported" for key in found
        ), f"{element} missing from the report:\n{details(report)}"
    assert ("Project/Sources/PDFSource", "Report.pdf", "not imported") in found
    assert ("TextSource", "Interview 1.docx", "converted") in found
    assert ("Code", "Strategies", "converted") in found
    assert ("Note", "Loose note", "converted") in found
    assert ("archive member", f"sources/{SOURCE_CRLF}.docx", "not imported") in found
    assert ("archive member", "sources/report.pdf", "not imported") in found
    frame = report.frame()
    assert list(frame.columns) == ["element", "name", "action", "detail"]
    assert len(frame) == len(report.rows)


def test_crlf_positions_converted(fresh: sqlite_utils.Database, tmp_path: Path) -> None:
    path = write_qdpx(tmp_path / "foreign.qdpx", foreign_project(), foreign_sources())
    import_refi(fresh, path)
    start, end = fresh.execute(
        "SELECT start_offset, end_offset FROM codings WHERE source_id = 'Interview_1'"
    ).fetchone()
    crlf_start, _ = crlf_span("We negotiated them down.")
    # One CR before the span is dropped from the stored text.
    assert start == crlf_start - 1
    assert end - start == len("We negotiated them down.")


def test_positions_counted_on_lf_text(
    fresh: sqlite_utils.Database, tmp_path: Path
) -> None:
    lf_text = CRLF_TEXT.replace("\r\n", "\n")
    start = lf_text.index("negotiated")
    selection = (
        f'<PlainTextSelection guid="A1111111-2222-4333-8444-555555555555" name="negotiated them" '
        f'startPosition="{start}" endPosition="{start + 15}">'
        f'<Coding guid="B1111111-2222-4333-8444-555555555555"><CodeRef targetGUID="{CODE_CHILD}"/></Coding>'
        f"</PlainTextSelection>"
    )
    path = write_qdpx(
        tmp_path / "lf.qdpx", foreign_project(selection), foreign_sources()
    )
    report = import_refi(fresh, path)
    quote = fresh.execute(
        "SELECT quote FROM codings WHERE source_id = 'Interview_1'"
    ).fetchone()[0]
    assert quote == "negotiated them"
    assert "LF line endings" in details(report)


def test_utf16_positions_detected(fresh: sqlite_utils.Database, tmp_path: Path) -> None:
    text = "Intro 🎉🎉 then the quoted words here."
    code_point_start = text.index("quoted")
    utf16_start = len(text[:code_point_start].encode("utf-16-le")) // 2
    selection = (
        f'<PlainTextSelection guid="A1111111-2222-4333-8444-555555555555" name="quoted words" '
        f'startPosition="{utf16_start}" endPosition="{utf16_start + 12}">'
        f'<Coding guid="B1111111-2222-4333-8444-555555555555"><CodeRef targetGUID="{CODE_CHILD}"/></Coding>'
        f"</PlainTextSelection>"
    )
    sources = {f"sources/{SOURCE_CRLF}.txt": text, "sources/zh-interview.txt": ZH_TEXT}
    path = write_qdpx(tmp_path / "utf16.qdpx", foreign_project(selection), sources)
    report = import_refi(fresh, path)
    quote = fresh.execute(
        "SELECT quote FROM codings WHERE source_id = 'Interview_1'"
    ).fetchone()[0]
    assert quote == "quoted words"
    assert "UTF-16 code units" in details(report)


def test_inclusive_end_detected(fresh: sqlite_utils.Database, tmp_path: Path) -> None:
    lf_text = "Respondent: We negotiated them down."
    start = lf_text.index("negotiated")
    selection = (
        f'<PlainTextSelection guid="A1111111-2222-4333-8444-555555555555" name="negotiated" '
        f'startPosition="{start}" endPosition="{start + len("negotiated") - 1}">'
        f'<Coding guid="B1111111-2222-4333-8444-555555555555"><CodeRef targetGUID="{CODE_CHILD}"/></Coding>'
        f"</PlainTextSelection>"
    )
    sources = {
        f"sources/{SOURCE_CRLF}.txt": lf_text,
        "sources/zh-interview.txt": ZH_TEXT,
    }
    path = write_qdpx(tmp_path / "inclusive.qdpx", foreign_project(selection), sources)
    report = import_refi(fresh, path)
    quote = fresh.execute(
        "SELECT quote FROM codings WHERE source_id = 'Interview_1'"
    ).fetchone()[0]
    assert quote == "negotiated"
    assert "inclusive endPosition" in details(report)


def test_normalized_selection_name_matches(
    fresh: sqlite_utils.Database, tmp_path: Path
) -> None:
    text = "Respondent: the café closed early."
    start = text.index("café")
    # The name is in NFD (e + combining accent) while the text is NFC.
    name = unicodedata.normalize("NFD", "café closed")
    selection = (
        f'<PlainTextSelection guid="A1111111-2222-4333-8444-555555555555" name="{name}" '
        f'startPosition="{start}" endPosition="{start + len("café closed")}">'
        f'<Coding guid="B1111111-2222-4333-8444-555555555555"><CodeRef targetGUID="{CODE_CHILD}"/></Coding>'
        f"</PlainTextSelection>"
    )
    sources = {f"sources/{SOURCE_CRLF}.txt": text, "sources/zh-interview.txt": ZH_TEXT}
    path = write_qdpx(tmp_path / "nfd.qdpx", foreign_project(selection), sources)
    report = import_refi(fresh, path)
    assert not [row for row in report.rows if row.action == "warning"], details(report)
    quote = fresh.execute(
        "SELECT quote FROM codings WHERE source_id = 'Interview_1'"
    ).fetchone()[0]
    assert quote == "café closed"


@pytest.mark.parametrize(
    "namespace",
    [
        "",
        "http://urn:QDA-XML:project:1.0",
        "https://qdasoftware.org/QDA-XML/project/1.0",
        "urn:QDA-XML:project:1.0/",
    ],
)
def test_namespace_variants_accepted(
    fresh: sqlite_utils.Database, tmp_path: Path, namespace: str
) -> None:
    path = write_qdpx(
        tmp_path / "ns.qdpx", foreign_project(namespace=namespace), foreign_sources()
    )
    report = import_refi(fresh, path)
    assert report.counts["codings"] == 2
    rows = [row for row in report.rows if row.name == "namespace"]
    assert len(rows) == 1
    assert rows[0].action == "converted"


def test_external_source_reported(fresh: sqlite_utils.Database, tmp_path: Path) -> None:
    xml = foreign_project().replace(
        'plainTextPath="zh-interview.txt"',
        'plainTextPath="relative:///zh-interview.txt"',
    )
    xml = xml.replace(
        f'<Coding guid="E1111111-2222-4333-8444-555555555555"><CodeRef targetGUID="{CODE_PLAIN}"/></Coding>',
        "",
    )
    path = write_qdpx(tmp_path / "external.qdpx", xml, foreign_sources())
    report = import_refi(fresh, path)
    assert report.counts["sources"] == 1
    assert ("TextSource", "访谈2", "not imported") in actions(report)


def test_project_member_name_variants(
    fresh: sqlite_utils.Database, tmp_path: Path
) -> None:
    sources = {
        f"Sources/{SOURCE_CRLF}.txt": CRLF_TEXT,
        "Sources/zh-interview.txt": ZH_TEXT,
    }
    path = write_qdpx(
        tmp_path / "caps.qdpx", foreign_project(), sources, qde_name="Field study.qde"
    )
    report = import_refi(fresh, path)
    assert report.counts["sources"] == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("#1f77b4", "#1F77B4"),
        ("#f80", "#FF8800"),
        ("#FF1F77B4", "#1F77B4"),
        ("1f77b4", "#1F77B4"),
        ("rgb(31, 119, 180)", "#1F77B4"),
        ("RGBA(31,119,180,0.5)", "#1F77B4"),
        ("Navy", "#000080"),
        ("not a colour", None),
        ("rgb(300, 0, 0)", None),
    ],
)
def test_colour_notations(value: str, expected: str | None) -> None:
    assert normalize_colour(value)[0] == expected


CODEBOOK_QDC = """<?xml version="1.0" encoding="utf-8"?>
<CodeBook xmlns="{namespace}" origin="OtherQDA">
  <Codes>
    <Code guid="{{5E2C0C0E-0B0B-4C0C-8D0D-0E0E0F0F1010}}" name="Barriers" isCodable="true" color="#abc">
      <Description>Things in the way.</Description>
    </Code>
  </Codes>
  <Sets/>
</CodeBook>
"""


def test_codebook_with_empty_sets(fresh: sqlite_utils.Database, tmp_path: Path) -> None:
    path = tmp_path / "codebook.qdc"
    path.write_text(
        CODEBOOK_QDC.format(namespace="urn:QDA-XML:codebook:1.0/"), encoding="utf-8"
    )
    report = import_refi(fresh, path)
    assert report.counts["codes"] == 1
    assert fresh.execute("SELECT id, label, definition FROM codes").fetchall() == [
        ("barriers", "Barriers", "Things in the way.")
    ]
    assert ("Sets", "", "ignored") in actions(report)


def test_existing_codes_and_coders_reused(
    project_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = tmp_path / "codebook.qdc"
    path.write_text(
        CODEBOOK_QDC.format(namespace="urn:QDA-XML:codebook:1.0").replace(
            "Barriers", "ranking OF jurisdictions"
        ),
        encoding="utf-8",
    )
    report = import_refi(project_db, path)
    assert report.counts["codes"] == 0
    assert ("Code", "ranking OF jurisdictions", "merged") in actions(report)
    assert "kept the project's label, definition" in details(report)


def test_coder_names_matched_without_case(
    project_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    xml = foreign_project().replace('name="Dana Li"', 'name="ALICE"')
    path = write_qdpx(tmp_path / "foreign.qdpx", xml, foreign_sources())
    report = import_refi(project_db, path)
    assert ("User", "ALICE", "merged") in actions(report)
    coders = {row[0] for row in project_db.execute("SELECT coder FROM codings")}
    assert "ALICE" not in coders
    assert "Alice" in coders


def test_dry_run_changes_nothing(
    project_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = write_qdpx(tmp_path / "foreign.qdpx", foreign_project(), foreign_sources())
    before = store.content_hash(project_db)
    report = import_refi(project_db, path, dry_run=True)
    assert report.counts["sources"] == 2
    assert store.content_hash(project_db) == before
    assert report.summary().startswith("Would import")


# Invalid and hostile files ---------------------------------------------------------------

XXE_PROJECT = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE Project [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<Project xmlns="urn:QDA-XML:project:1.0" name="&secret;"/>
"""
ENTITY_EXPANSION = """<?xml version="1.0"?>
<!DOCTYPE CodeBook [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<CodeBook xmlns="urn:QDA-XML:codebook:1.0"><Codes><Code guid="5E2C0C0E-0B0B-4C0C-8D0D-0E0E0F0F1010" name="&b;" isCodable="true"/></Codes></CodeBook>
"""


def assert_rejected(
    db: sqlite_utils.Database, path: Path, words: str, **options: Any
) -> InputError:
    before = store.content_hash(db)
    with pytest.raises(InputError) as caught:
        import_refi(db, path, **options)
    assert words in str(caught.value)
    assert store.content_hash(db) == before
    return caught.value


def test_external_entity_rejected(
    project_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = write_qdpx(tmp_path / "xxe.qdpx", XXE_PROJECT, {})
    assert_rejected(project_db, path, "external reference")


def test_entity_expansion_rejected(
    project_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = tmp_path / "laughs.qdc"
    path.write_text(ENTITY_EXPANSION, encoding="utf-8")
    assert_rejected(project_db, path, "declares an entity")


def test_oversized_member_rejected(
    project_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    sources = {**foreign_sources(), "sources/padding.txt": "x" * 50_000}
    path = write_qdpx(tmp_path / "big.qdpx", foreign_project(), sources)
    error = assert_rejected(
        project_db,
        path,
        "more than the limit of 20,000 bytes per file",
        limits=ReadLimits(max_member_bytes=20_000),
    )
    assert "padding.txt" in str(error)


def test_oversized_total_rejected(
    project_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    sources = {
        **foreign_sources(),
        "sources/a.txt": "x" * 15_000,
        "sources/b.txt": "y" * 15_000,
    }
    path = write_qdpx(tmp_path / "big.qdpx", foreign_project(), sources)
    assert_rejected(
        project_db, path, "in all", limits=ReadLimits(max_total_bytes=25_000)
    )


def test_oversized_codebook_rejected(
    project_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = tmp_path / "codebook.qdc"
    path.write_text(
        CODEBOOK_QDC.format(namespace="urn:QDA-XML:codebook:1.0") + " " * 5000,
        encoding="utf-8",
    )
    assert_rejected(
        project_db, path, "per file", limits=ReadLimits(max_member_bytes=1000)
    )


@pytest.mark.parametrize(
    "name",
    [
        "../evil.txt",
        "/etc/cron.d/evil",
        "sources/../../evil.txt",
        "C:/evil.txt",
        "a\\..\\evil.txt",
    ],
)
def test_unsafe_member_name_rejected(
    project_db: sqlite_utils.Database, tmp_path: Path, name: str
) -> None:
    sources = {**foreign_sources(), name: "payload"}
    path = write_qdpx(tmp_path / "traversal.qdpx", foreign_project(), sources)
    assert_rejected(project_db, path, "points outside the archive")
    assert not (tmp_path.parent / "evil.txt").exists()


def test_safe_member_names_normalized() -> None:
    assert safe_member_name("sources/./a.txt") == "sources/a.txt"
    assert safe_member_name("sources/a.txt") == "sources/a.txt"


def _selection(start: int, end: int, code: str = CODE_CHILD) -> str:
    return (
        f'<PlainTextSelection guid="A1111111-2222-4333-8444-555555555555" '
        f'startPosition="{start}" endPosition="{end}">'
        f'<Coding guid="B1111111-2222-4333-8444-555555555555"><CodeRef targetGUID="{code}"/></Coding>'
        f"</PlainTextSelection>"
    )


@pytest.mark.parametrize(
    ("selection", "words"),
    [
        (_selection(10, 5000), "past the end of the text"),
        (_selection(-3, 5), "negative"),
        (_selection(20, 10), "endPosition is before startPosition"),
        (_selection(5, 5), "empty"),
        (
            _selection(0, 10, code="00000000-0000-4000-8000-000000000000"),
            "which the file does not define",
        ),
        (
            '<PlainTextSelection guid="A1111111-2222-4333-8444-555555555555" startPosition="x" endPosition="4"/>',
            "whole numbers",
        ),
    ],
)
def test_invalid_selection_rejected(
    project_db: sqlite_utils.Database, tmp_path: Path, selection: str, words: str
) -> None:
    path = write_qdpx(
        tmp_path / "invalid.qdpx", foreign_project(selection), foreign_sources()
    )
    error = assert_rejected(project_db, path, words)
    assert "--skip-invalid" in str(error)


def test_invalid_selection_skipped_on_request(
    project_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = write_qdpx(
        tmp_path / "invalid.qdpx",
        foreign_project(_selection(10, 5000)),
        foreign_sources(),
    )
    report = import_refi(project_db, path, skip_invalid=True)
    assert report.counts["sources"] == 2
    assert report.counts["codings"] == 1
    skipped = [row for row in report.rows if row.action == "skipped"]
    assert len(skipped) == 1
    assert "past the end" in skipped[0].detail


def test_missing_source_member_rejected(
    project_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = write_qdpx(
        tmp_path / "missing.qdpx",
        foreign_project(),
        {"sources/zh-interview.txt": ZH_TEXT},
    )
    assert_rejected(project_db, path, "which the archive does not have")


def test_source_not_utf8_rejected(
    project_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    sources = {
        f"sources/{SOURCE_CRLF}.txt": CRLF_TEXT.encode("utf-16"),
        "sources/zh-interview.txt": ZH_TEXT,
    }
    path = write_qdpx(tmp_path / "utf16.qdpx", foreign_project(), sources)
    assert_rejected(project_db, path, "is not UTF-8")


def test_not_a_refi_file_rejected(
    project_db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = tmp_path / "other.qdc"
    path.write_text("<html><body/></html>", encoding="utf-8")
    assert_rejected(project_db, path, "not a REFI-QDA file")
    broken = tmp_path / "broken.qdpx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    assert_rejected(project_db, broken, "not a zip archive")
    malformed = tmp_path / "malformed.qdc"
    malformed.write_text("<CodeBook><Codes>", encoding="utf-8")
    assert_rejected(project_db, malformed, "not well-formed XML")


def test_cli_rejects_external_entity(
    built_database: Path, tmp_path: Path, runner: Any
) -> None:
    database = copy_database(built_database, tmp_path / "project.db")
    path = write_qdpx(tmp_path / "xxe.qdpx", XXE_PROJECT, {})
    result = runner.invoke(cli, ["--db", str(database), "refi", "import", str(path)])
    assert result.exit_code == 1
    assert "external reference" in result.stderr


def test_cli_member_limit_option(
    built_database: Path, tmp_path: Path, runner: Any
) -> None:
    database = copy_database(built_database, tmp_path / "project.db")
    sources = {**foreign_sources(), "sources/padding.txt": "x" * 200_000}
    path = write_qdpx(tmp_path / "big.qdpx", foreign_project(), sources)
    result = runner.invoke(
        cli,
        ["--db", str(database), "refi", "import", str(path), "--max-member-mb", "0.1"],
    )
    assert result.exit_code == 1
    assert "padding.txt" in result.stderr
    result = runner.invoke(
        cli, ["--db", str(database), "refi", "import", str(path), "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("element,name,action,detail")


INLINE_PROJECT = """<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.0" name="Inline">
  <CodeBook><Codes>
    <Code guid="11111111-2222-4333-8444-555555555555" name="Whole interview" isCodable="true"/>
  </Codes></CodeBook>
  <Sources>
    <TextSource guid="41111111-2222-4333-8444-555555555555" name="memo-like source">
      <PlainTextContent>Respondent: The whole text is coded.</PlainTextContent>
      <Coding guid="B1111111-2222-4333-8444-555555555555">
        <CodeRef targetGUID="11111111-2222-4333-8444-555555555555"/>
      </Coding>
    </TextSource>
  </Sources>
</Project>
"""


def test_bare_qde_with_inline_text(
    fresh: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = tmp_path / "project.qde"
    path.write_text(INLINE_PROJECT, encoding="utf-8")
    report = import_refi(fresh, path)
    assert report.counts["sources"] == 1
    assert report.counts["codings"] == 1
    coding = fresh.execute("SELECT source_id, code_id, quote FROM codings").fetchone()
    assert coding == (
        "memo-like_source",
        "whole_interview",
        "Respondent: The whole text is coded.",
    )
