"""Encoding detection: what is accepted, and what is rejected instead of guessed."""

from __future__ import annotations

import codecs
import random

import pytest

from qualkit.errors import TranscriptError
from qualkit.readers.encoding import check_encoding_name, decode_bytes

CHINESE = (
    "问：你们县里的指标是怎么定下来的？\n\n"
    "答：一般是市里先开会，把任务分下来。我们报的时候总是留一手，不敢全报。"
    "排名的压力很大，年底要考核。环保这一块，这几年变化是最大的，我在环保系统干了十五年，"
    "感觉二零一三年是一个分水岭。\n"
)
TRADITIONAL = (
    "問：你們縣裡的指標是怎麼定下來的？\n\n"
    "答：一般是市裡先開會，把任務分下來。我們報的時候總是留一手，不敢全報。"
    "排名的壓力很大，年底要考核。\n"
)
ENGLISH_QUOTES = "Respondent: The \u201cranking\u201d matters \u2014 a lot, and it\u2019s public.\n"
ENGLISH_ACCENTS = (
    "Interviewer: Where did you meet?\n\n"
    "Respondent: In the caf\u00e9 near the office; the na\u00efve ones paid \u20ac20.\n"
)
ASTRAL = "答：𠀀字少见😀。他们总是保留一手，不敢全报。排名第二。年底要考核，压力很大。\n"

ACCEPTED = [
    pytest.param(CHINESE, "gb18030", "gb18030", id="gb18030"),
    pytest.param(CHINESE, "gbk", "gb18030", id="gbk-read-as-gb18030"),
    pytest.param(ASTRAL, "gb18030", "gb18030", id="gb18030-four-byte"),
    pytest.param(TRADITIONAL, "big5", "big5", id="big5"),
    pytest.param(ENGLISH_QUOTES, "cp1252", "cp1252", id="cp1252-punctuation-only"),
    pytest.param(ENGLISH_ACCENTS, "cp1252", "cp1252", id="cp1252-accents"),
    pytest.param(CHINESE, "utf-8", "utf-8", id="utf-8"),
    pytest.param("Respondent: plain ASCII.\n", "ascii", "utf-8", id="ascii"),
]


@pytest.mark.parametrize(("text", "written", "detected"), ACCEPTED)
def test_detected_encoding(text: str, written: str, detected: str) -> None:
    assert decode_bytes(text.encode(written), path="t.txt") == (text, detected)


@pytest.mark.parametrize(
    ("bom", "codec", "expected"),
    [
        pytest.param(codecs.BOM_UTF8, "utf-8", "utf-8-sig", id="utf-8"),
        pytest.param(codecs.BOM_UTF16_LE, "utf-16-le", "utf-16", id="utf-16-le"),
        pytest.param(codecs.BOM_UTF16_BE, "utf-16-be", "utf-16", id="utf-16-be"),
        pytest.param(codecs.BOM_UTF32_LE, "utf-32-le", "utf-32", id="utf-32-le"),
    ],
)
def test_byte_order_mark_decides(bom: bytes, codec: str, expected: str) -> None:
    text, used = decode_bytes(bom + ASTRAL.encode(codec), path="t.txt")

    assert text == ASTRAL
    assert used == expected


REJECTED = [
    pytest.param(
        "Интервьюер: Как устанавливаются цели?\nРеспондент: Провинция их устанавливает каждый год.\n",
        "cp1251",
        "cp1251",
        id="cyrillic-cp1251",
    ),
    pytest.param(
        "インタビュアー：目標はどのように設定されますか？\n回答者：県が決めます。毎年の目標です。\n",
        "shift_jis",
        "cp932",
        id="japanese-shift-jis",
    ),
    pytest.param("면접관: 목표는 어떻게 정해집니까?\n응답자: 성에서 정합니다.\n", "euc-kr", "cp949", id="korean"),
    pytest.param(
        "Respondent: Łódź i Kraków — współpraca z województwem była trudna.\n",
        "cp1250",
        "cp1250",
        id="polish-cp1250",
    ),
    pytest.param("答：好。\n", "gb18030", "big5", id="too-short-to-tell"),
    pytest.param(
        "Respondent: " + "We talked the targets down before the meeting. " * 20
        + "We call it 留一手, 保留一手.\n",
        "gbk",
        "gb18030",
        id="english-with-a-few-gbk-words",
    ),
]


@pytest.mark.parametrize(("text", "written", "named"), REJECTED)
def test_unsure_encoding_rejected(text: str, written: str, named: str) -> None:
    with pytest.raises(TranscriptError) as raised:
        decode_bytes(text.encode(written), path="t.txt")

    message = str(raised.value)
    assert message.startswith("t.txt: ")
    assert named in message
    assert "--encoding" in message


def test_nul_bytes_rejected() -> None:
    with pytest.raises(TranscriptError, match="NUL bytes"):
        decode_bytes("Respondent: yes.\n".encode("utf-16-le"), path="t.txt")


def test_random_bytes_rejected() -> None:
    generator = random.Random(7)
    data = bytes(generator.randrange(1, 256) for _ in range(400))

    with pytest.raises(TranscriptError, match="could not be determined"):
        decode_bytes(data, path="t.txt")


def test_given_encoding_used() -> None:
    text = "Интервьюер: Как устанавливаются цели?\n"

    assert decode_bytes(text.encode("cp1251"), path="t.txt", encoding="cp1251") == (text, "cp1251")


def test_given_utf8_drops_bom() -> None:
    data = codecs.BOM_UTF8 + CHINESE.encode("utf-8")

    assert decode_bytes(data, path="t.txt", encoding="utf-8")[0] == CHINESE


def test_given_encoding_invalid_bytes_located() -> None:
    data = "line one\nline two\nline three caf\u00e9\n".encode("cp1252")

    with pytest.raises(TranscriptError) as raised:
        decode_bytes(data, path="t.txt", encoding="utf-8")

    assert "t.txt, line 3: the file is not valid utf-8 text (byte 32)" in str(raised.value)


def test_unknown_encoding_name() -> None:
    with pytest.raises(TranscriptError, match="unknown encoding 'klingon'"):
        check_encoding_name("klingon")
