"""Tests for reading transcripts: front matter, normalization, turns, offsets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from qualkit import store
from qualkit.codebook import Codebook
from qualkit.errors import TranscriptError
from qualkit.transcripts import find_turns, read_transcript

FRONT_MATTER = """\
---
id: G99X01
province: Guizhou
level: city
date: 2016-07-12
interviewer: Interviewer A
---

Interviewer: How are the targets set?
"""

# Transcript text and the (speaker, role, turn text) expected for each turn.
TURN_CASES = [
    pytest.param(
        "Interviewer: How are targets set?\nRespondent: By the province.\n",
        [
            ("Interviewer", "interviewer", "How are targets set?"),
            ("Respondent", "respondent", "By the province."),
        ],
        id="interviewer-respondent",
    ),
    pytest.param(
        "Q: How are targets set?\n\nA: By the province.",
        [
            ("Q", "interviewer", "How are targets set?"),
            ("A", "respondent", "By the province."),
        ],
        id="q-a",
    ),
    pytest.param(
        "问：指标怎么定？\n答：省里定。\n",
        [("问", "interviewer", "指标怎么定？"), ("答", "respondent", "省里定。")],
        id="wen-da-full-width-colon",
    ),
    pytest.param(
        "问: 指标怎么定？\n答: 省里定。\n",
        [("问", "interviewer", "指标怎么定？"), ("答", "respondent", "省里定。")],
        id="wen-da-ascii-colon",
    ),
    pytest.param(
        "[Li Wei] We asked the province.\n[Wang Fang]: They said no.\n",
        [
            ("Li Wei", None, "We asked the province."),
            ("Wang Fang", None, "They said no."),
        ],
        id="bracketed-names",
    ),
    pytest.param(
        "**Interviewer:** How are targets set?\n**Respondent:** By the province.\n",
        [
            ("Interviewer", "interviewer", "How are targets set?"),
            ("Respondent", "respondent", "By the province."),
        ],
        id="markdown-bold-labels",
    ),
    pytest.param(
        "Respondent: First line.\nSecond line of the same answer.\n\nStill the same turn.",
        [
            (
                "Respondent",
                "respondent",
                "First line.\nSecond line of the same answer.\n\nStill the same turn.",
            )
        ],
        id="multi-paragraph-turn",
    ),
    pytest.param(
        "問：指標怎麼定？\n答：省裡定。\n",
        [("問", "interviewer", "指標怎麼定？"), ("答", "respondent", "省裡定。")],
        id="traditional-wen-da",
    ),
    pytest.param(
        "INTERVIEWER: How are targets set?\nRespondent 2: By the province.\n",
        [
            ("INTERVIEWER", "interviewer", "How are targets set?"),
            ("Respondent 2", "respondent", "By the province."),
        ],
        id="capitals-and-numbered-label",
    ),
    pytest.param(
        "Li Wei: How are targets set?\nWang Fang: By the province.\n"
        "Li Wei: Always?\nWang Fang: Mostly.\n",
        [
            ("Li Wei", None, "How are targets set?"),
            ("Wang Fang", None, "By the province."),
            ("Li Wei", None, "Always?"),
            ("Wang Fang", None, "Mostly."),
        ],
        id="recurring-names",
    ),
    pytest.param(
        "李伟：指标怎么定？\n王芳：省里定。\n李伟：一直这样？\n王芳：差不多。\n",
        [
            ("李伟", None, "指标怎么定？"),
            ("王芳", None, "省里定。"),
            ("李伟", None, "一直这样？"),
            ("王芳", None, "差不多。"),
        ],
        id="recurring-chinese-names",
    ),
    pytest.param(
        "Interviewer: How?\nNote: asked twice.\nRespondent: Fine.\nNote: laughs.\n",
        [
            ("Interviewer", "interviewer", "How?\nNote: asked twice."),
            ("Respondent", "respondent", "Fine.\nNote: laughs."),
        ],
        id="note-lines-not-speakers",
    ),
    pytest.param(
        "Interviewer\tHow are targets set?\n\nRespondent\tBy the province.\n",
        [
            ("Interviewer", "interviewer", "How are targets set?"),
            ("Respondent", "respondent", "By the province."),
        ],
        id="table-row-label-and-tab",
    ),
    pytest.param(
        "[inaudible] at the start.\nRespondent: Fine.\n",
        [(None, None, "[inaudible] at the start."), ("Respondent", "respondent", "Fine.")],
        id="annotation-not-a-name",
    ),
    pytest.param(
        "Interview with a county official, July 2016\n\nInterviewer: How?\nRespondent: Fine.\n",
        [
            (None, None, "Interview with a county official, July 2016"),
            ("Interviewer", "interviewer", "How?"),
            ("Respondent", "respondent", "Fine."),
        ],
        id="text-before-first-label",
    ),
]

# Transcript text and the (speaker, time stamp, turn text) expected for each turn.
TIMED_CASES = [
    pytest.param(
        "Interviewer: [00:07:35] How?\nRespondent: Fine.\n",
        [("Interviewer", "00:07:35", "How?"), ("Respondent", None, "Fine.")],
        id="bracketed-after-label",
    ),
    pytest.param(
        "[00:07:35] Interviewer: How?\n[0:07:41] Respondent: Fine.\n",
        [("Interviewer", "00:07:35", "How?"), ("Respondent", "00:07:41", "Fine.")],
        id="bracketed-before-label",
    ),
    pytest.param(
        "00:07:35.000 Interviewer: How?\n00:07:41,500 Respondent: Fine.\n",
        [("Interviewer", "00:07:35", "How?"), ("Respondent", "00:07:41", "Fine.")],
        id="milliseconds",
    ),
    pytest.param(
        "I: How are targets set? #00:00:05-3#\n\nB: By the province. #00:00:12-0#\n",
        [("I", "00:00:05", "How are targets set?"), ("B", "00:00:12", "By the province.")],
        id="f4-marks-close-turns",
    ),
    pytest.param(
        "[00:07:35]\nInterviewer: How?\n\n[00:07:41]\nRespondent: Fine.\n",
        [("Interviewer", "00:07:35", "How?"), ("Respondent", "00:07:41", "Fine.")],
        id="stamp-line-above-label",
    ),
    pytest.param(
        "Li Wei (00:07:35): How?\n\nWang Fang (00:07:41): Fine.\n\nLi Wei (00:08:02): Why?\n"
        "\nWang Fang (00:08:10): Rules.\n",
        [
            ("Li Wei", "00:07:35", "How?"),
            ("Wang Fang", "00:07:41", "Fine."),
            ("Li Wei", "00:08:02", "Why?"),
            ("Wang Fang", "00:08:10", "Rules."),
        ],
        id="name-with-time-in-parentheses",
    ),
    pytest.param(
        "[07:35] First part of the recording.\n[1:02:03] Second part.\n",
        [(None, "00:07:35", "First part of the recording."), (None, "01:02:03", "Second part.")],
        id="stamps-without-labels",
    ),
    pytest.param(
        "1\n00:00:01,000 --> 00:00:04,000\nInterviewer: How are targets set?\n\n"
        "2\n00:00:04,500 --> 00:00:07,000\nThey are set\nby the city.\n\n"
        "3\n00:00:07,500 --> 00:00:09,000\nRespondent: By the province.\n",
        [
            ("Interviewer", "00:00:01", "How are targets set?"),
            ("Interviewer", "00:00:04", "They are set\nby the city."),
            ("Respondent", "00:00:07", "By the province."),
        ],
        id="srt-speaker-carried-over",
    ),
    pytest.param(
        "WEBVTT\n\nNOTE made by a transcription service\n\n"
        "00:01.000 --> 00:04.000\n<v Interviewer>How are targets set?\n\n"
        "cue-2\n00:00:05.000 --> 00:00:07.000 align:start\n<v.loud Li Wei>By the province.</v>\n",
        [("Interviewer", "00:00:01", "How are targets set?"), ("Li Wei", "00:00:05", "By the province.")],
        id="vtt-voices",
    ),
]

TIMESTAMPED = (
    "Interviewer: [00:07:35] How are targets set?\nRespondent: By the province.\n"
)


def turn_view(text: str) -> list[tuple[str | None, str | None, str]]:
    return [(t.speaker, t.role, text[t.start : t.end]) for t in find_turns(text)]


# Front matter


def test_front_matter_body_starts_after_block(tmp_path: Path) -> None:
    path = tmp_path / "G99X01.md"
    path.write_text(FRONT_MATTER, encoding="utf-8")

    assert read_transcript(path).text == "Interviewer: How are the targets set?\n"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("id", "G99X01", id="id"),
        pytest.param("province", "Guizhou", id="province"),
        pytest.param("level", "city", id="level"),
        pytest.param("interviewer", "Interviewer A", id="attribute"),
    ],
)
def test_front_matter_value(tmp_path: Path, key: str, value: str) -> None:
    path = tmp_path / "G99X01.md"
    path.write_text(FRONT_MATTER, encoding="utf-8")

    assert read_transcript(path).metadata[key] == value


@pytest.mark.parametrize(
    ("key", "line"),
    [pytest.param("id", 2, id="id"), pytest.param("date", 5, id="date")],
)
def test_front_matter_key_line(tmp_path: Path, key: str, line: int) -> None:
    path = tmp_path / "G99X01.md"
    path.write_text(FRONT_MATTER, encoding="utf-8")

    assert read_transcript(path).metadata_lines[key] == line


@pytest.mark.parametrize(
    ("column", "value"),
    [
        pytest.param("province", "Guizhou", id="province"),
        pytest.param("level", "city", id="level"),
        pytest.param("date", "2016-07-12", id="date"),
        pytest.param("attributes", '{"interviewer": "Interviewer A"}', id="attributes"),
    ],
)
def test_front_matter_stored_in_case(
    project: Any, tmp_path: Path, column: str, value: str
) -> None:
    path = tmp_path / "G99X01.md"
    path.write_text(FRONT_MATTER, encoding="utf-8")
    project.import_sources([path])

    stored = project.db.execute(
        f"SELECT [{column}] FROM cases WHERE id = 'G99X01'"
    ).fetchone()[0]
    assert stored == value


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param(
            "---\nid: X1\nprovince: Guizhou\nlevel: city: county\n---\n\nQ: Hi?\n",
            4,
            "invalid YAML",
            id="mapping-in-value-line-4",
        ),
        pytest.param(
            "---\nid: X1\n  province: Guizhou\nlevel: city\n---\n\nQ: Hi?\n",
            3,
            "invalid YAML",
            id="bad-indent-line-3",
        ),
        pytest.param(
            "---\nid: X1\nlevel: city\nid: X2\n---\n\nQ: Hi?\n",
            4,
            "duplicate key 'id'",
            id="duplicate-key-line-4",
        ),
        pytest.param(
            "---\nid: X1\nprovince: Guizhou\n\nQ: Hi?\n",
            1,
            "never closed",
            id="unclosed",
        ),
    ],
)
def test_broken_front_matter_error(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "X1.md"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(TranscriptError) as raised:
        read_transcript(path)

    error = str(raised.value)
    assert str(path) in error
    assert f"line {line}:" in error
    assert message in error


# Byte order mark and line endings

BOM_CASES = [
    pytest.param(b"\xef\xbb\xbf", "\r\n", "utf-8", id="utf8-bom-crlf"),
    pytest.param(b"", "\r\n", "utf-8", id="crlf"),
    pytest.param(b"", "\r", "utf-8", id="cr"),
    pytest.param(b"\xff\xfe", "\r\n", "utf-16-le", id="utf16-bom-crlf"),
]


def _write_encoded(path: Path, bom: bytes, newline: str, encoding: str) -> None:
    lines = ["---", "id: N1", "level: city", "---", "", "Q: 问题？", "A: Answer."]
    path.write_bytes(
        bom + newline.join(lines).encode(encoding) + newline.encode(encoding)
    )


@pytest.mark.parametrize(("bom", "newline", "encoding"), BOM_CASES)
def test_normalized_text(
    tmp_path: Path, bom: bytes, newline: str, encoding: str
) -> None:
    path = tmp_path / "N1.md"
    _write_encoded(path, bom, newline, encoding)

    assert read_transcript(path).text == "Q: 问题？\nA: Answer.\n"


@pytest.mark.parametrize(("bom", "newline", "encoding"), BOM_CASES)
def test_normalized_front_matter(
    tmp_path: Path, bom: bytes, newline: str, encoding: str
) -> None:
    path = tmp_path / "N1.md"
    _write_encoded(path, bom, newline, encoding)

    assert read_transcript(path).metadata == {"id": "N1", "level": "city"}


# Speaker turns


@pytest.mark.parametrize(("text", "expected"), TURN_CASES)
def test_turns_detected(text: str, expected: list[tuple[str, str | None, str]]) -> None:
    assert turn_view(text) == expected


def test_label_inside_line_not_a_turn() -> None:
    text = "Respondent: The form says Q: and A: in places.\n"

    assert turn_view(text) == [
        ("Respondent", "respondent", "The form says Q: and A: in places.")
    ]


def test_paragraphs_without_labels() -> None:
    text = "First paragraph,\nstill the first.\n\n  \nSecond paragraph.\n"

    assert turn_view(text) == [
        (None, None, "First paragraph,\nstill the first."),
        (None, None, "Second paragraph."),
    ]


def test_paragraph_segments_stored(project: Any, tmp_path: Path) -> None:
    path = tmp_path / "P1.txt"
    path.write_text("We asked the province.\n\nThey said no.\n", encoding="utf-8")
    project.import_sources([path])

    kinds = [
        row[0]
        for row in project.db.execute(
            "SELECT kind FROM segments WHERE kind != 'sentence' ORDER BY position"
        )
    ]
    assert kinds == ["paragraph", "paragraph"]


def test_timestamp_after_label_recorded() -> None:
    turns = find_turns(TIMESTAMPED)

    assert turns[0].timestamp == "00:07:35"


def test_timestamp_after_label_not_in_turn() -> None:
    assert turn_view(TIMESTAMPED)[0] == (
        "Interviewer",
        "interviewer",
        "How are targets set?",
    )


def test_timestamp_before_label() -> None:
    text = "[00:07:35] Interviewer: How?\n[00:07:41] Respondent: Fine.\n"

    assert turn_view(text) == [
        ("Interviewer", "interviewer", "How?"),
        ("Respondent", "respondent", "Fine."),
    ]


@pytest.mark.parametrize(("text", "expected"), TIMED_CASES)
def test_timed_turns_detected(text: str, expected: list[tuple[str | None, str | None, str]]) -> None:
    turns = find_turns(text)

    assert [(t.speaker, t.timestamp, text[t.start : t.end]) for t in turns] == expected


def test_vtt_voice_role() -> None:
    text = "WEBVTT\n\n00:01.000 --> 00:04.000\n<v Respondent>By the province.\n"

    assert turn_view(text) == [("Respondent", "respondent", "By the province.")]


def test_speaker_named_in_metadata_gets_role(project: Any, tmp_path: Path) -> None:
    path = tmp_path / "N1.md"
    path.write_text(
        "---\ninterviewer: Li Wei\n---\n\nLi Wei: How?\nWang Fang: Fine.\nLi Wei: Why?\nWang Fang: Rules.\n",
        encoding="utf-8",
    )
    project.import_sources([path])

    roles = project.db.execute(
        "SELECT speaker, role FROM segments WHERE kind = 'turn' ORDER BY position LIMIT 2"
    ).fetchall()
    assert roles == [("Li Wei", "interviewer"), ("Wang Fang", None)]


def test_timestamp_stored_with_turn(project: Any, tmp_path: Path) -> None:
    path = tmp_path / "T1.md"
    path.write_text(TIMESTAMPED, encoding="utf-8")
    project.import_sources([path])

    stamps = project.db.execute(
        "SELECT timestamp FROM segments WHERE kind = 'turn' ORDER BY position"
    ).fetchall()
    assert stamps == [("00:07:35",), (None,)]


# Offsets

EMOJI_EN = """\
Interviewer: 😀 Why did the city talk the target down?

Respondent: 𠀀 is a rare character 😀. We talked the targets down 🎯 in March! Then we beat the ranking.
"""
EMOJI_ZH = """\
问：𠀀😀你们怎么报指标？

答：𠀀字少见😀。他们总是保留一手，不敢全报。排名第二。
"""

# Segments each source must have, as (kind, text at its offsets), in position order.
EXPECTED_SEGMENTS = {
    "E01": [
        ("turn", "😀 Why did the city talk the target down?"),
        ("sentence", "😀 Why did the city talk the target down?"),
        (
            "turn",
            (
                "𠀀 is a rare character 😀. We talked the targets down 🎯 in March! "
                "Then we beat the ranking."
            ),
        ),
        ("sentence", "𠀀 is a rare character 😀."),
        ("sentence", "We talked the targets down 🎯 in March!"),
        ("sentence", "Then we beat the ranking."),
    ],
    "Z01": [
        ("turn", "𠀀😀你们怎么报指标？"),
        ("sentence", "𠀀😀你们怎么报指标？"),
        ("turn", "𠀀字少见😀。他们总是保留一手，不敢全报。排名第二。"),
        ("sentence", "𠀀字少见😀。"),
        ("sentence", "他们总是保留一手，不敢全报。"),
        ("sentence", "排名第二。"),
    ],
}

# Codings the tiny codebook must suggest, as (code, quote, matched text).
EXPECTED_CODINGS = {
    "E01": [
        (
            "strategy.underpromise",
            "We talked the targets down 🎯 in March!",
            "talked the targets down",
        ),
        ("tournament", "Then we beat the ranking.", "ranking"),
    ],
    "Z01": [
        ("strategy.underpromise", "他们总是保留一手，不敢全报。", "留一手"),
        ("tournament", "排名第二。", "排名"),
    ],
}


@pytest.fixture(scope="module")
def astral_project(
    tmp_path_factory: pytest.TempPathFactory, make_codebook: Callable[..., Codebook]
) -> Iterator[Any]:
    """A project with an English and a Chinese transcript holding astral characters."""
    from qualkit.project import Project

    folder = tmp_path_factory.mktemp("astral")
    english = folder / "E01.md"
    english.write_text(
        "---\nid: E01\nlanguage: en\n---\n\n" + EMOJI_EN, encoding="utf-8"
    )
    chinese = folder / "Z01.md"
    chinese.write_text(
        "---\nid: Z01\nlanguage: zh\n---\n\n" + EMOJI_ZH, encoding="utf-8"
    )
    project = Project(folder / "qualkit.db")
    project.import_sources([english, chinese])
    project.autocode(make_codebook())
    yield project
    project.close()


def _source_text(project: Any, source_id: str) -> str:
    return project.db.execute(
        "SELECT text FROM sources WHERE id = ?", [source_id]
    ).fetchone()[0]


@pytest.mark.parametrize(
    "source_id", [pytest.param(s, id=s) for s in EXPECTED_SEGMENTS]
)
def test_segment_offsets_astral(astral_project: Any, source_id: str) -> None:
    text = _source_text(astral_project, source_id)
    rows = astral_project.db.execute(
        "SELECT kind, start_offset, end_offset FROM segments "
        "WHERE source_id = ? ORDER BY id",
        [source_id],
    )
    segments = [(kind, text[start:end]) for kind, start, end in rows]

    assert segments == EXPECTED_SEGMENTS[source_id]


@pytest.mark.parametrize("source_id", [pytest.param(s, id=s) for s in EXPECTED_CODINGS])
def test_coding_offsets_astral(astral_project: Any, source_id: str) -> None:
    text = _source_text(astral_project, source_id)
    rows = astral_project.db.execute(
        "SELECT code_id, start_offset, end_offset, matched_text FROM codings "
        "WHERE source_id = ? ORDER BY start_offset, code_id",
        [source_id],
    )
    codings = [(code, text[start:end], matched) for code, start, end, matched in rows]

    assert codings == EXPECTED_CODINGS[source_id]


@pytest.mark.parametrize("source_id", [pytest.param(s, id=s) for s in EXPECTED_CODINGS])
def test_coding_quote_matches_text_astral(astral_project: Any, source_id: str) -> None:
    text = _source_text(astral_project, source_id)
    rows = astral_project.db.execute(
        "SELECT start_offset, end_offset, quote FROM codings WHERE source_id = ?",
        [source_id],
    ).fetchall()

    assert [text[start:end] for start, end, _ in rows] == [
        quote for _, _, quote in rows
    ]


@pytest.fixture
def sample_db(sample_project: Any) -> Iterator[sqlite_utils.Database]:
    """The built sample's database. Tests must only read from it."""
    db = store.open_database(sample_project.folder / "qualkit.db", create=False)
    yield db
    db.close()


def _texts(db: sqlite_utils.Database) -> dict[str, str]:
    return dict(db.execute("SELECT id, text FROM sources").fetchall())


def test_sample_codings_quote_at_offsets(sample_db: sqlite_utils.Database) -> None:
    texts = _texts(sample_db)
    rows = sample_db.execute(
        "SELECT id, source_id, start_offset, end_offset, quote FROM codings"
    ).fetchall()
    mismatched = [
        coding_id
        for coding_id, source_id, start, end, quote in rows
        if texts[source_id][start:end] != quote
    ]

    assert rows
    assert mismatched == []


def test_sample_codings_hold_matched_text(sample_db: sqlite_utils.Database) -> None:
    rows = sample_db.execute("SELECT id, quote, matched_text FROM codings").fetchall()
    missing = [coding_id for coding_id, quote, matched in rows if matched not in quote]

    assert missing == []


@pytest.mark.parametrize(
    "kind", [pytest.param("turn", id="turn"), pytest.param("sentence", id="sentence")]
)
def test_sample_segments_trimmed(sample_db: sqlite_utils.Database, kind: str) -> None:
    texts = _texts(sample_db)
    rows = sample_db.execute(
        "SELECT id, source_id, start_offset, end_offset FROM segments WHERE kind = ?",
        [kind],
    ).fetchall()
    untrimmed = [
        segment_id
        for segment_id, source_id, start, end in rows
        if texts[source_id][start:end] != texts[source_id][start:end].strip()
    ]

    assert rows
    assert untrimmed == []


def test_sample_sentences_inside_turns(sample_db: sqlite_utils.Database) -> None:
    outside = sample_db.execute(
        "SELECT s.id FROM segments s JOIN segments t ON t.id = s.parent_id "
        "WHERE s.kind = 'sentence' AND "
        "(s.start_offset < t.start_offset OR s.end_offset > t.end_offset)"
    ).fetchall()

    assert outside == []


def test_sample_turns_exclude_labels(sample_db: sqlite_utils.Database) -> None:
    texts = _texts(sample_db)
    rows = sample_db.execute(
        "SELECT id, source_id, start_offset FROM segments WHERE kind = 'turn'"
    ).fetchall()
    labelled = [
        segment_id
        for segment_id, source_id, start in rows
        if texts[source_id].startswith(
            ("Interviewer:", "Respondent:", "问：", "答："), start
        )
    ]

    assert rows
    assert labelled == []


# Word files


def test_docx_imports(project: Any, tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Interviewer: How are the targets set?")
    document.add_paragraph("Respondent: We talked the targets down. It worked.")
    path = tmp_path / "D01.docx"
    document.save(str(path))
    project.import_sources([path])

    text = _source_text(project, "D01")
    turns = [
        text[start:end]
        for start, end in project.db.execute(
            "SELECT start_offset, end_offset FROM segments "
            "WHERE kind = 'turn' ORDER BY position"
        )
    ]
    assert turns == [
        "How are the targets set?",
        "We talked the targets down. It worked.",
    ]


def test_docx_source_format(project: Any, tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Respondent: We talked the targets down.")
    path = tmp_path / "D02.docx"
    document.save(str(path))
    project.import_sources([path])

    assert project.db.execute("SELECT format FROM sources").fetchone()[0] == "docx"


def test_unsupported_suffix_rejected(tmp_path: Path) -> None:
    path = tmp_path / "notes.pages"
    path.write_bytes(b"PK\x03\x04")

    with pytest.raises(TranscriptError, match="unsupported file type '.pages'"):
        read_transcript(path)
