"""Fuzzing of every transcript reader with damaged and mutated files.

Each example starts from a valid file of one format (plain text in several
encodings, Markdown with front matter, SubRip, WebVTT, .docx, .odt, RTF,
PDF) and damages it: bytes flipped, inserted, deleted, repeated, or the
file cut short. For the zip formats the XML inside is also mutated and the
archive rebuilt, so the XML parsers and the body walk see hostile input and
not only checksum errors. Reading must either return text that SQLite can
store or raise a ``QualkitError``; any other exception fails the test.

The number of examples per test is fixed and the runs are derandomized, so
CI runs are reproducible. Set QUALKIT_FUZZ_EXAMPLES for a longer run, e.g.
``QUALKIT_FUZZ_EXAMPLES=5000 python3 -m pytest tests/test_fuzz_readers.py``.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qualkit.errors import QualkitError
from qualkit.transcripts import read_transcript

EXAMPLES = int(os.environ.get("QUALKIT_FUZZ_EXAMPLES", "30"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

TURNS = (
    "Interviewer: How were the targets set in 2012?\n\n"
    "Respondent: The province sent them down, and we talked the target down.\n\n"
    "Interviewer: 排名怎么样？\n\nRespondent: 我们留一手，第二名。\n"
)
# Enough Chinese text for charset detection to settle on GB18030.
CHINESE_TURNS = (
    "访谈者：二〇一二年的指标是怎么定的？\n\n"
    "受访者：省里把指标分解下来，我们跟省里讨价还价，把指标往下压。"
    "考核排名出来以后，我们市排在第二名，领导很满意。\n"
)
FRONT_MATTER = "---\nid: F1\nprovince: Hunan\nlevel: city\ndate: 2016-05-04\nlanguage: en\n---\n\n"
SUBRIP = (
    "1\n00:00:01,000 --> 00:00:04,000\nInterviewer: How were the targets set?\n\n"
    "2\n00:00:04,500 --> 00:00:09,000\nRespondent: The province sent them down.\n"
)
WEBVTT = (
    "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v Interviewer>How were the targets set?\n\n"
    "00:00:04.500 --> 00:00:09.000\n<v Respondent>The province sent them down.\n"
)


def _docx() -> bytes:
    import docx

    document = docx.Document()
    for block in TURNS.split("\n\n"):
        document.add_paragraph(block.strip())
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Interviewer"
    table.rows[0].cells[1].text = "Any ranking?"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _odt() -> bytes:
    from odf.opendocument import OpenDocumentText
    from odf.text import P

    document = OpenDocumentText()
    for block in TURNS.split("\n\n"):
        document.text.addElement(P(text=block.strip()))
    buffer = io.BytesIO()
    document.write(buffer)
    return buffer.getvalue()


def _rtf() -> bytes:
    return (
        b"{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0 Arial;}}"
        b"\\f0 Interviewer: How were the targets set?\\par "
        b"Respondent: The province sent them down \\u25105?\\u20204?.\\par "
        b"{\\*\\annotation a comment}\\trowd\\cellx1000\\cellx2000 a\\cell b\\cell\\row }"
    )


def _pdf() -> bytes:
    from fpdf import FPDF

    document = FPDF()
    document.add_page()
    document.set_font("Helvetica", size=12)
    for block in ("Interviewer: How were the targets set?", "Respondent: The province sent them down."):
        document.cell(0, 8, block, new_x="LMARGIN", new_y="NEXT")
    return bytes(document.output())


SEEDS = {
    "utf8.txt": TURNS.encode("utf-8"),
    "bom.txt": TURNS.encode("utf-8-sig"),
    "utf16.txt": TURNS.encode("utf-16"),
    "gbk.txt": (TURNS + CHINESE_TURNS).encode("gb18030"),
    "front.md": (FRONT_MATTER + TURNS).encode("utf-8"),
    "cues.srt": SUBRIP.encode("utf-8"),
    "cues.vtt": WEBVTT.encode("utf-8"),
    "word.docx": _docx(),
    "writer.odt": _odt(),
    "rich.rtf": _rtf(),
    "layer.pdf": _pdf(),
}
ZIP_MEMBERS = {"word.docx": "word/document.xml", "writer.odt": "content.xml"}

# Bytes that carry meaning in the formats read: markup, escapes, line ends,
# zip and PDF structure, byte order marks and invalid UTF-8.
INTERESTING = [
    b"\x00", b"\xff", b"\xfe", b"\xef\xbb\xbf", b"\xc3", b"\xed\xa0\x80", b"\r", b"\n",
    b"---\n", b"<", b">", b"&", b"&amp;", b"<w:p>", b"</w:p>", b"<text:p>", b"<!DOCTYPE x>",
    b"{", b"}", b"\\", b"\\u-1?", b"\\'ff", b"\\par ", b"\\bin9 ", b"PK\x03\x04",
    b"%PDF-", b"obj", b"endobj", b"stream", b"/Length 99999999", b"-->", b"99:99:99,999",
]


@st.composite
def damaged_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """Apply one to six random edits to ``data``."""
    result = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(result)))
        edit = draw(st.sampled_from(["flip", "insert", "delete", "repeat", "truncate"]))
        if edit == "flip" and position < len(result):
            result[position] ^= draw(st.integers(1, 255))
        elif edit == "insert":
            piece = draw(st.one_of(st.sampled_from(INTERESTING), st.binary(min_size=1, max_size=16)))
            result[position:position] = piece
        elif edit == "delete":
            del result[position : position + draw(st.integers(1, 64))]
        elif edit == "repeat":
            chunk = bytes(result[position : position + draw(st.integers(1, 32))])
            result[position:position] = chunk * draw(st.integers(1, 50))
        elif edit == "truncate":
            del result[position:]
    return bytes(result)


def _rebuild(archive_bytes: bytes, member: str, content: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(archive_bytes))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(info, content if info.filename == member else source.read(info))
    return out.getvalue()


def _check_read(path: Path, data: bytes) -> None:
    """Read ``data`` as the file ``path``, failing on any error but a QualkitError."""
    path.write_bytes(data)
    try:
        transcript = read_transcript(path)
    except QualkitError as error:
        assert str(error).strip()
        return
    # SQLite stores text as UTF-8, so lone surrogates would fail at insert.
    transcript.text.encode("utf-8")
    assert "\x00" not in transcript.text
    assert "\r" not in transcript.text


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seed_file_reads(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(SEEDS[name])
    transcript = read_transcript(path)

    assert "province" in transcript.text or "targets" in transcript.text


@pytest.mark.parametrize("name", sorted(SEEDS))
@FUZZ
@given(data=st.data())
def test_damaged_file_fails_cleanly(tmp_path: Path, name: str, data: st.DataObject) -> None:
    damaged = data.draw(damaged_bytes(SEEDS[name]), label="bytes")
    _check_read(tmp_path / name, damaged)


@pytest.mark.parametrize("name", sorted(ZIP_MEMBERS))
@FUZZ
@given(data=st.data())
def test_mutated_xml_fails_cleanly(tmp_path: Path, name: str, data: st.DataObject) -> None:
    member = ZIP_MEMBERS[name]
    xml = zipfile.ZipFile(io.BytesIO(SEEDS[name])).read(member)
    mutated = data.draw(damaged_bytes(xml), label="xml")
    _check_read(tmp_path / name, _rebuild(SEEDS[name], member, mutated))


@FUZZ
@given(data=st.binary(max_size=2048), suffix=st.sampled_from(sorted({Path(name).suffix for name in SEEDS})))
def test_random_bytes_fail_cleanly(tmp_path: Path, data: bytes, suffix: str) -> None:
    _check_read(tmp_path / f"random{suffix}", data)
