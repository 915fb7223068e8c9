"""Importing real files of every supported format and encoding.

Each file is generated here with the library that writes that format
(python-docx, odfpy, fpdf2) or byte by byte in the encoding under test.
RTF has no common Python writer, so it is written as WordPad writes it:
ASCII with \\uN escapes, surrogate pairs for characters beyond U+FFFF.
"""

from __future__ import annotations

import codecs
import logging
import sqlite3
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qualkit import store
from qualkit.codebook import Codebook
from qualkit.codebook_versions import store_codebook
from qualkit.errors import TranscriptError

# Characters that take two UTF-16 code units (and four UTF-8 bytes):
# an emoji and the first character of CJK Extension B.
EMOJI = "\U0001F600"
EXTENSION_B = "\U00020000"

ENGLISH_TURNS = [
    ("Interviewer", "interviewer", f"How are the targets set? {EMOJI}"),
    ("Respondent", "respondent", f"We talked the targets down {EXTENSION_B} before the meeting."),
    ("Interviewer", "interviewer", "And the ranking?"),
    ("Respondent", "respondent", "We came second in the ranking."),
]
CHINESE_TURNS = [
    ("问", "interviewer", f"你们县里的指标是怎么定下来的？{EMOJI}"),
    ("答", "respondent", f"一般是市里先开会，把任务分下来。我们报的时候总是留一手，不敢全报。{EXTENSION_B}字少见。"),
    ("问", "interviewer", "排名的压力大吗？"),
    ("答", "respondent", "排名的压力很大，年底要考核，我们去年排在第二。环保这一块，这几年变化是最大的。"),
]
BIG5_TURNS = [
    ("問", "interviewer", "你們縣裡的指標是怎麼定下來的？"),
    ("答", "respondent", "一般是市裡先開會，把任務分下來。我們報的時候總是留一手，不敢全報。排名的壓力很大，年底要考核。"),
]
# A PDF written with a core font contains only Latin-1 characters.
PDF_TURNS = [
    ("Interviewer", "interviewer", "How are the targets set?"),
    ("Respondent", "respondent", "We talked the targets down before the meeting."),
    ("Interviewer", "interviewer", "And the ranking?"),
    ("Respondent", "respondent", "We came second in the ranking."),
]
WESTERN_TURNS = [
    ("Interviewer", "interviewer", "Where did the \u201cbargaining\u201d happen?"),
    ("Respondent", "respondent", "In the caf\u00e9 near the office \u2014 it\u2019s where the na\u00efve ones learn."),
]


def labelled(turns: list[tuple[str, str | None, str]], colon: str = ": ") -> str:
    """Return a transcript with one 'Label: text' paragraph per turn."""
    return "\n\n".join(f"{label}{colon}{text}" for label, _, text in turns) + "\n"


def stored_turns(project: Any, source_id: str) -> list[tuple[str | None, str | None, str]]:
    text = source_text(project, source_id)
    rows = project.db.execute(
        "SELECT speaker, role, start_offset, end_offset FROM segments "
        "WHERE source_id = ? AND kind = 'turn' ORDER BY position",
        [source_id],
    )
    return [(speaker, role, text[start:end]) for speaker, role, start, end in rows]


def source_text(project: Any, source_id: str) -> str:
    return project.db.execute("SELECT text FROM sources WHERE id = ?", [source_id]).fetchone()[0]


def code_every_sentence(project: Any, codebook: Codebook, source_id: str) -> int:
    """Store one manual coding per sentence segment; return how many."""
    with store.transaction(project.db):
        store_codebook(project.db, codebook)
        text = source_text(project, source_id)
        rows = project.db.execute(
            "SELECT start_offset, end_offset FROM segments WHERE source_id = ? AND kind = 'sentence'",
            [source_id],
        ).fetchall()
        now = store.utc_now()
        project.db["codings"].insert_all(
            {
                "source_id": source_id,
                "start_offset": start,
                "end_offset": end,
                "quote": text[start:end],
                "code_id": "tournament",
                "coder": "tester",
                "origin": "manual",
                "status": "accepted",
                "codebook_version": codebook.version,
                "created_at": now,
                "updated_at": now,
            }
            for start, end in rows
        )
    return len(rows)


def mismatched_quotes(project: Any) -> list[int]:
    texts = dict(project.db.execute("SELECT id, text FROM sources").fetchall())
    rows = project.db.execute("SELECT id, source_id, start_offset, end_offset, quote FROM codings")
    return [
        coding_id
        for coding_id, source_id, start, end, quote in rows
        if texts[source_id][start:end] != quote
    ]


# Writers, one per format


def write_docx(path: Path, turns: list[tuple[str, str | None, str]], *, table: bool = False) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Interview transcript", level=1)
    body, rest = (turns[:2], turns[2:]) if table else (turns, [])
    for label, _, text in body:
        document.add_paragraph(f"{label}: {text}")
    if rest:
        grid = document.add_table(rows=len(rest), cols=2)
        for row, (label, _, text) in zip(grid.rows, rest):
            row.cells[0].text = label
            row.cells[1].text = text
    document.save(str(path))
    return path


def write_odt(path: Path, turns: list[tuple[str, str | None, str]]) -> Path:
    from odf import table as odf_table
    from odf import text as odf_text
    from odf.opendocument import OpenDocumentText

    document = OpenDocumentText()
    document.text.addElement(odf_text.H(outlinelevel=1, text="Interview transcript"))
    for label, _, text in turns[:2]:
        document.text.addElement(odf_text.P(text=f"{label}：{text}"))
    grid = odf_table.Table(name="turns")
    grid.addElement(odf_table.TableColumn(numbercolumnsrepeated=2))
    for label, _, text in turns[2:]:
        row = odf_table.TableRow()
        for value in (label, text):
            cell = odf_table.TableCell()
            cell.addElement(odf_text.P(text=value))
            row.addElement(cell)
        grid.addElement(row)
    document.text.addElement(grid)
    document.save(str(path))
    return path


def rtf_escape(text: str) -> str:
    parts = []
    for char in text:
        if char in "\\{}":
            parts.append("\\" + char)
        elif ord(char) < 128:
            parts.append(char)
        else:
            units = char.encode("utf-16-le")
            for index in range(0, len(units), 2):
                unit = int.from_bytes(units[index : index + 2], "little")
                parts.append(f"\\u{unit - 65536 if unit >= 32768 else unit}?")
    return "".join(parts)


def write_rtf(path: Path, turns: list[tuple[str, str | None, str]]) -> Path:
    header = "{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0\\fswiss Arial;}}\n"
    paragraphs = "".join(f"\\pard {rtf_escape(f'{label}: {text}')}\\par\n" for label, _, text in turns)
    path.write_text(header + paragraphs + "}", encoding="ascii")
    return path


def write_pdf(path: Path, turns: list[tuple[str, str | None, str]]) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for label, _, text in turns:
        pdf.cell(0, 8, f"{label}: {text}", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def write_bytes(path: Path, text: str, encoding: str, *, bom: bytes = b"", newline: str = "\n") -> Path:
    path.write_bytes(bom + text.replace("\n", newline).encode(encoding))
    return path


# Plain text in every encoding


ENCODED_CASES = [
    pytest.param("utf-8", b"", "\n", CHINESE_TURNS, "问", id="utf-8"),
    pytest.param("utf-8", codecs.BOM_UTF8, "\n", CHINESE_TURNS, "问", id="utf-8-bom"),
    pytest.param("utf-16-le", codecs.BOM_UTF16_LE, "\r\n", CHINESE_TURNS, "问", id="utf-16-le-unicode-text"),
    pytest.param("utf-16-be", codecs.BOM_UTF16_BE, "\n", ENGLISH_TURNS, "Interviewer", id="utf-16-be"),
    pytest.param("gb18030", b"", "\r\n", CHINESE_TURNS, "问", id="gb18030-crlf"),
    pytest.param("gbk", b"", "\n", CHINESE_TURNS[2:], "问", id="gbk"),
    pytest.param("big5", b"", "\n", BIG5_TURNS, "問", id="big5"),
    pytest.param("cp1252", b"", "\r\n", WESTERN_TURNS, "Interviewer", id="windows-1252-crlf"),
    pytest.param("utf-8", b"", "\r\n", ENGLISH_TURNS, "Interviewer", id="utf-8-crlf"),
    pytest.param("utf-8", b"", "\r", ENGLISH_TURNS, "Interviewer", id="utf-8-cr"),
]


@pytest.mark.parametrize(("encoding", "bom", "newline", "turns", "first_label"), ENCODED_CASES)
def test_encoded_text_stored(
    project: Any,
    tmp_path: Path,
    encoding: str,
    bom: bytes,
    newline: str,
    turns: list[tuple[str, str | None, str]],
    first_label: str,
) -> None:
    colon = "：" if first_label in ("问", "問") else ": "
    text = labelled(turns, colon)
    path = write_bytes(tmp_path / "E1.txt", text, encoding, bom=bom, newline=newline)
    project.import_sources([path])

    assert source_text(project, "E1") == text


@pytest.mark.parametrize(("encoding", "bom", "newline", "turns", "first_label"), ENCODED_CASES)
def test_encoded_text_turns(
    project: Any,
    tmp_path: Path,
    encoding: str,
    bom: bytes,
    newline: str,
    turns: list[tuple[str, str | None, str]],
    first_label: str,
) -> None:
    colon = "：" if first_label in ("问", "問") else ": "
    path = write_bytes(tmp_path / "E1.txt", labelled(turns, colon), encoding, bom=bom, newline=newline)
    project.import_sources([path])

    assert stored_turns(project, "E1") == turns


def test_gb18030_transcript_turn_roles(project: Any, tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "Z1.txt", labelled(CHINESE_TURNS, "："), "gb18030")
    project.import_sources([path])

    roles = [role for _, role, _ in stored_turns(project, "Z1")]
    assert roles == ["interviewer", "respondent", "interviewer", "respondent"]


def test_gb18030_language_detected(project: Any, tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "Z1.txt", labelled(CHINESE_TURNS, "："), "gb18030")
    project.import_sources([path])

    assert project.db.execute("SELECT language FROM sources").fetchone()[0] == "zh"


def test_bom_not_in_text(project: Any, tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "B1.txt", labelled(ENGLISH_TURNS), "utf-16-le", bom=codecs.BOM_UTF16_LE)
    project.import_sources([path])

    assert "\ufeff" not in source_text(project, "B1")


def test_crlf_normalized(project: Any, tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "C1.md", labelled(ENGLISH_TURNS), "utf-8", newline="\r\n")
    project.import_sources([path])

    assert "\r" not in source_text(project, "C1")


def test_markdown_front_matter_with_crlf(project: Any, tmp_path: Path) -> None:
    text = "---\nid: M1\nprovince: Hunan\nlevel: county\n---\n\n" + labelled(ENGLISH_TURNS)
    path = write_bytes(tmp_path / "whatever.md", text, "utf-8", bom=codecs.BOM_UTF8, newline="\r\n")
    project.import_sources([path])

    row = project.db.execute("SELECT province, level FROM cases WHERE id = 'M1'").fetchone()
    assert row == ("Hunan", "county")
    assert source_text(project, "M1") == labelled(ENGLISH_TURNS)


# Word, OpenDocument, RTF and PDF


@pytest.mark.parametrize(
    ("writer", "turns", "suffix", "expected_format"),
    [
        pytest.param(write_docx, ENGLISH_TURNS, ".docx", "docx", id="docx-english"),
        pytest.param(write_docx, CHINESE_TURNS, ".docx", "docx", id="docx-chinese"),
        pytest.param(write_odt, CHINESE_TURNS, ".odt", "odt", id="odt-chinese"),
        pytest.param(write_odt, ENGLISH_TURNS, ".odt", "odt", id="odt-english"),
        pytest.param(write_rtf, ENGLISH_TURNS, ".rtf", "rtf", id="rtf-english"),
        pytest.param(write_rtf, CHINESE_TURNS, ".rtf", "rtf", id="rtf-chinese"),
    ],
)
def test_document_turns(
    project: Any,
    tmp_path: Path,
    writer: Callable[..., Path],
    turns: list[tuple[str, str | None, str]],
    suffix: str,
    expected_format: str,
) -> None:
    path = writer(tmp_path / f"D1{suffix}", turns)
    project.import_sources([path])

    assert stored_turns(project, "D1") == turns
    assert project.db.execute("SELECT format FROM sources").fetchone()[0] == expected_format


def test_docx_table_read_row_by_row(project: Any, tmp_path: Path) -> None:
    path = write_docx(tmp_path / "T1.docx", ENGLISH_TURNS, table=True)
    project.import_sources([path])

    text = source_text(project, "T1")
    assert "Interviewer\tAnd the ranking?\n\nRespondent\tWe came second in the ranking." in text
    assert stored_turns(project, "T1") == ENGLISH_TURNS


def test_docx_heading_is_paragraph(project: Any, tmp_path: Path) -> None:
    path = write_docx(tmp_path / "H1.docx", ENGLISH_TURNS)
    project.import_sources([path])

    first = project.db.execute(
        "SELECT kind, start_offset, end_offset FROM segments WHERE source_id = 'H1' "
        "AND kind != 'sentence' ORDER BY position LIMIT 1"
    ).fetchone()
    assert first[0] == "paragraph"
    assert source_text(project, "H1")[first[1] : first[2]] == "Interview transcript"


def test_pdf_text_layer_turns(project: Any, tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "P1.pdf", PDF_TURNS)
    project.import_sources([path])

    assert stored_turns(project, "P1") == PDF_TURNS
    assert project.db.execute("SELECT format FROM sources").fetchone()[0] == "pdf"


def test_srt_cues_become_turns(project: Any, tmp_path: Path) -> None:
    cues = (
        "1\n00:00:01,000 --> 00:00:04,000\nInterviewer: How are the targets set?\n\n"
        "2\n00:07:35,250 --> 00:07:39,000\nRespondent: We talked them down.\n"
    )
    path = write_bytes(tmp_path / "S1.srt", cues, "utf-8", newline="\r\n")
    project.import_sources([path])

    stamps = project.db.execute(
        "SELECT speaker, timestamp FROM segments WHERE kind = 'turn' ORDER BY position"
    ).fetchall()
    assert stamps == [("Interviewer", "00:00:01"), ("Respondent", "00:07:35")]
    assert stored_turns(project, "S1")[1][2] == "We talked them down."


def test_vtt_voices_become_speakers(project: Any, tmp_path: Path) -> None:
    cues = (
        "WEBVTT\n\n00:01.000 --> 00:04.000\n<v Interviewer>How are the targets set?\n\n"
        "00:00:05.000 --> 00:00:07.000 align:start\n<v Li Wei>By the province.</v>\n"
    )
    path = write_bytes(tmp_path / "V1.vtt", cues, "utf-8")
    project.import_sources([path])

    assert stored_turns(project, "V1") == [
        ("Interviewer", "interviewer", "How are the targets set?"),
        ("Li Wei", None, "By the province."),
    ]


# Offsets round-trip after every import path


ROUND_TRIP_WRITERS = [
    pytest.param(lambda path: write_docx(path.with_suffix(".docx"), CHINESE_TURNS, table=True), id="docx"),
    pytest.param(lambda path: write_odt(path.with_suffix(".odt"), ENGLISH_TURNS), id="odt"),
    pytest.param(lambda path: write_rtf(path.with_suffix(".rtf"), CHINESE_TURNS), id="rtf"),
    pytest.param(
        lambda path: write_pdf(path.with_suffix(".pdf"), PDF_TURNS),
        id="pdf",
    ),
    pytest.param(
        lambda path: write_bytes(path.with_suffix(".txt"), labelled(CHINESE_TURNS, "："), "gb18030", newline="\r\n"),
        id="gb18030",
    ),
    pytest.param(
        lambda path: write_bytes(
            path.with_suffix(".txt"), labelled(ENGLISH_TURNS), "utf-16-le", bom=codecs.BOM_UTF16_LE, newline="\r\n"
        ),
        id="utf-16",
    ),
    pytest.param(
        lambda path: write_bytes(path.with_suffix(".md"), labelled(ENGLISH_TURNS), "utf-8", bom=codecs.BOM_UTF8),
        id="markdown",
    ),
]


@pytest.mark.parametrize("writer", ROUND_TRIP_WRITERS)
def test_coding_quotes_match_offsets(
    project: Any, tmp_path: Path, make_codebook: Callable[..., Codebook], writer: Callable[[Path], Path]
) -> None:
    path = writer(tmp_path / "R1")
    project.import_sources([path])
    coded = code_every_sentence(project, make_codebook(), "R1")

    assert coded >= 4
    assert mismatched_quotes(project) == []


@pytest.mark.parametrize("writer", [case for case in ROUND_TRIP_WRITERS if case.id != "pdf"])
def test_astral_characters_survive(
    project: Any, tmp_path: Path, writer: Callable[[Path], Path]
) -> None:
    path = writer(tmp_path / "R1")
    project.import_sources([path])
    text = source_text(project, "R1")

    assert EMOJI in text
    assert EXTENSION_B in text


@pytest.mark.parametrize("writer", ROUND_TRIP_WRITERS)
def test_auto_codings_match_offsets(
    project: Any, tmp_path: Path, make_codebook: Callable[..., Codebook], writer: Callable[[Path], Path]
) -> None:
    path = writer(tmp_path / "R1")
    project.import_sources([path])
    project.autocode(make_codebook(underpromise_en=("talk the target down",)))

    assert project.db["codings"].count >= 1
    assert mismatched_quotes(project) == []


# Warnings for what a reader leaves out


def test_docx_comments_and_tracked_changes_warned(
    project: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import docx
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    document = docx.Document()
    question = document.add_paragraph("Interviewer: How are the targets set?")
    document.add_comment(question.runs, text="Check the recording here.", author="Coder A")
    answer = document.add_paragraph("Respondent: It was ")
    for tag, text_tag, words in (("w:ins", "w:t", "very "), ("w:del", "w:delText", "not ")):
        change = OxmlElement(tag)
        change.set(qn("w:id"), "1" if tag == "w:ins" else "2")
        change.set(qn("w:author"), "Coder A")
        run = OxmlElement("w:r")
        text = OxmlElement(text_tag)
        text.set(qn("xml:space"), "preserve")
        text.text = words
        run.append(text)
        change.append(run)
        answer._p.append(change)
    answer.add_run("hard.")
    path = tmp_path / "W1.docx"
    document.save(str(path))
    with caplog.at_level(logging.WARNING, logger="qualkit"):
        result = project.import_sources([path])

    assert stored_turns(project, "W1")[1][2] == "It was very hard."
    assert "Check the recording" not in source_text(project, "W1")
    assert any("1 comment(s) left out" in warning for warning in result.warnings)
    assert any("tracked changes read as accepted" in record.message for record in caplog.records)


def test_odt_comments_and_notes_left_out(project: Any, tmp_path: Path) -> None:
    from odf import dc, office
    from odf import text as odf_text
    from odf.opendocument import OpenDocumentText

    document = OpenDocumentText()
    paragraph = odf_text.P(text="Respondent: We talked them down.")
    comment = office.Annotation()
    comment.addElement(dc.Creator(text="Coder A"))
    comment.addElement(odf_text.P(text="A comment."))
    paragraph.addElement(comment)
    note = odf_text.Note(noteclass="footnote")
    body = odf_text.NoteBody()
    body.addElement(odf_text.P(text="A footnote."))
    note.addElement(odf_text.NoteCitation(text="1"))
    note.addElement(body)
    paragraph.addElement(note)
    document.text.addElement(paragraph)
    path = tmp_path / "O1.odt"
    document.save(str(path))
    result = project.import_sources([path])

    assert source_text(project, "O1") == "Respondent: We talked them down."
    assert len(result.warnings) == 2


# Files that cannot be read: a clear error, and the database as it was


def truncated_docx(path: Path) -> Path:
    full = write_docx(path.with_name("full.docx"), ENGLISH_TURNS)
    path.write_bytes(full.read_bytes()[:600])
    return path


def encrypted_office_file(path: Path) -> Path:
    # Office 2007+ documents with a password are OLE2 compound files.
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    return path


def encrypted_odt(path: Path) -> Path:
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
        '<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="AAAA">'
        '<manifest:algorithm manifest:algorithm-name="Blowfish CFB" manifest:initialisation-vector="AAAA"/>'
        '<manifest:key-derivation manifest:key-derivation-name="PBKDF2" manifest:iteration-count="1024" manifest:salt="AAAA"/>'
        "</manifest:encryption-data></manifest:file-entry></manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("content.xml", bytes(range(256)))
    return path


def encrypted_pdf(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.cell(0, 8, "Respondent: We talked them down.")
    pdf.output(str(path))
    return path


def scanned_pdf(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 120, 60, style="F")
    pdf.output(str(path))
    return path


def corrupt_zip(path: Path) -> Path:
    path.write_bytes(b"PK\x03\x04broken")
    return path


def corrupt_pdf(path: Path) -> Path:
    path.write_bytes(b"%PDF-1.4\n1 0 obj")
    return path


def not_rtf(path: Path) -> Path:
    path.write_text("Respondent: plain text saved as .rtf\n", encoding="utf-8")
    return path


def cyrillic_text(path: Path) -> Path:
    text = "Интервьюер: Как устанавливаются цели?\nРеспондент: Провинция их устанавливает каждый год.\n"
    path.write_bytes(text.encode("cp1251"))
    return path


UNREADABLE = [
    pytest.param(truncated_docx, "X1.docx", "not a readable Word file", id="corrupt-docx"),
    pytest.param(encrypted_office_file, "X1.docx", "password-protected", id="encrypted-docx"),
    pytest.param(corrupt_zip, "X1.odt", "not a readable OpenDocument file", id="corrupt-odt"),
    pytest.param(encrypted_odt, "X1.odt", "password-protected", id="encrypted-odt"),
    pytest.param(encrypted_pdf, "X1.pdf", "encrypted and needs a password", id="encrypted-pdf"),
    pytest.param(scanned_pdf, "X1.pdf", "no text layer", id="scanned-pdf"),
    pytest.param(corrupt_pdf, "X1.pdf", "not a readable PDF file", id="corrupt-pdf"),
    pytest.param(not_rtf, "X1.rtf", "not a readable RTF file", id="not-rtf"),
    pytest.param(cyrillic_text, "X1.txt", "encoding could not be determined", id="unknown-encoding"),
]


@pytest.mark.parametrize(("writer", "name", "reason"), UNREADABLE)
def test_unreadable_file_error(
    project: Any, tmp_path: Path, writer: Callable[[Path], Path], name: str, reason: str
) -> None:
    path = writer(tmp_path / name)

    with pytest.raises(TranscriptError) as raised:
        project.import_sources([path])

    assert str(path) in str(raised.value)
    assert reason in str(raised.value)


@pytest.mark.parametrize(("writer", "name", "reason"), UNREADABLE)
def test_unreadable_file_leaves_database(
    project: Any,
    tmp_path: Path,
    writer: Callable[[Path], Path],
    name: str,
    reason: str,
) -> None:
    good = write_bytes(tmp_path / "G1.txt", labelled(ENGLISH_TURNS), "utf-8")
    project.import_sources([good])
    before = store.content_hash(project.db)
    bad = writer(tmp_path / name)
    changed = write_bytes(tmp_path / "G1.txt", labelled(ENGLISH_TURNS[:2]), "utf-8")

    with pytest.raises(TranscriptError):
        project.import_sources([changed, bad])

    assert store.content_hash(project.db) == before


def test_owner_password_pdf_imports(project: Any, tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_encryption(owner_password="owner")
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.cell(0, 8, "Respondent: We talked them down.")
    path = tmp_path / "P2.pdf"
    pdf.output(str(path))
    project.import_sources([path])

    assert stored_turns(project, "P2") == [("Respondent", "respondent", "We talked them down.")]


def test_rtf_saved_as_docx_read_as_rtf(project: Any, tmp_path: Path) -> None:
    path = write_rtf(tmp_path / "F1.docx", ENGLISH_TURNS)
    result = project.import_sources([path])

    assert stored_turns(project, "F1") == ENGLISH_TURNS
    assert "RTF despite its .docx suffix" in result.warnings[0]


def test_mislabeled_level_leaves_database(project: Any, tmp_path: Path) -> None:
    path = tmp_path / "L1.md"
    path.write_text("---\nid: L1\nlevel: village\n---\n\n" + labelled(ENGLISH_TURNS), encoding="utf-8")

    with pytest.raises(TranscriptError, match="level 'village' is not one of the configured levels"):
        project.import_sources([path])

    connection = sqlite3.connect(tmp_path / "qualkit.db")
    counts = [connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in ("cases", "sources", "segments")]
    connection.close()
    assert counts == [0, 0, 0]


def test_docx_front_matter_read(project: Any, tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    for line in ("---", "id: W9", "province: Hunan", "level: city", "---", *labelled(ENGLISH_TURNS).split("\n\n")):
        document.add_paragraph(line.strip())
    path = tmp_path / "recording.docx"
    document.save(str(path))
    project.import_sources([path])

    assert project.db.execute("SELECT id, province, level FROM cases").fetchone() == ("W9", "Hunan", "city")
    assert stored_turns(project, "W9") == ENGLISH_TURNS


def test_docx_table_of_contents_left_out(project: Any, tmp_path: Path) -> None:
    import docx
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    document = docx.Document()
    document.add_paragraph("Respondent: We talked the targets down.")
    contents = parse_xml(
        f"<w:sdt {nsdecls('w')}><w:sdtPr><w:docPartObj>"
        '<w:docPartGallery w:val="Table of Contents"/></w:docPartObj></w:sdtPr>'
        "<w:sdtContent><w:p><w:r><w:t>Contents 1</w:t></w:r></w:p></w:sdtContent></w:sdt>"
    )
    document.element.body.insert(0, contents)
    path = tmp_path / "C9.docx"
    document.save(str(path))
    project.import_sources([path])

    assert source_text(project, "C9") == "Respondent: We talked the targets down."
