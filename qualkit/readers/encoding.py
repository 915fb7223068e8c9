"""Decode the bytes of a plain-text transcript, or reject them when unsure.

Order of decisions:

1. An encoding given by the user (``--encoding``) is used strictly.
2. A byte order mark selects UTF-8, UTF-16 or UTF-32.
3. Bytes that are valid UTF-8 are UTF-8 (ASCII included).
4. Otherwise charset-normalizer ranks the possible readings. Chinese
   encodings (GB18030, which reads GBK and GB2312, and Big5) are accepted
   when no other reading scores as well. Windows-1252 is accepted when it
   reads the bytes as plausible Western text.
5. Anything else raises ``TranscriptError`` naming the likeliest encoding,
   because a wrong guess would store mojibake that every later offset and
   quote is built on.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Any

from qualkit.errors import TranscriptError

# Encodings detected without --encoding: what Windows saves "ANSI" text as
# in mainland China, in Taiwan and Hong Kong, and in Western Europe and
# North America.
AUTO_ENCODINGS = ("gb18030", "big5", "cp1252")

# charset-normalizer names whose reading equals one of AUTO_ENCODINGS'
# (GB18030 is a superset of GBK and GB2312, and Big5 reads cp950's
# common characters the same way).
_FAMILY = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "cp936": "gb18030",
    "gb18030": "gb18030",
    "big5": "big5",
    "cp950": "big5",
    "big5hkscs": "big5",
    "cp1252": "cp1252",
}

# Two readings whose charset-normalizer scores differ by no more than this
# are equally plausible. Both scores run from 0 to 1: chaos measures how
# garbled a reading looks, coherence how well its letters fit a language.
_CHAOS_TIE = 0.01
_COHERENCE_TIE = 0.05

# Characters outside ASCII that English transcripts saved as Windows-1252
# contain: typographic punctuation, common symbols and the letters of
# Western European names and loanwords. Cyrillic, Greek or Central European
# bytes read as Windows-1252 give letters such as ð, þ, ¹, ³ or Ÿ instead.
_WESTERN = frozenset(
    "\u00a0\u2018\u2019\u201a\u201c\u201d\u201e\u2013\u2014\u2026\u2022\u00b7"
    "\u20ac\u00a3\u00a5\u00a2\u00b0\u00a7\u00a9\u00ae\u2122\u00b1\u00d7\u00f7"
    "\u00bd\u00bc\u00be\u00ab\u00bb"
    "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿ"
    "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝß"
)

_ADJACENT_NON_ASCII_LETTERS = re.compile(r"[^\x00-\x7f\W\d_]{2}")

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def check_encoding_name(encoding: str) -> str:
    """Return Python's codec name for ``encoding``; raise if Python has no such codec."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise TranscriptError(
            f"unknown encoding {encoding!r}.",
            fix="Use a Python codec name such as utf-8, utf-16, gb18030, big5 or cp1252.",
        ) from None


def decode_bytes(
    data: bytes, *, path: str | Path, encoding: str | None = None
) -> tuple[str, str]:
    """Return the text of ``data`` without a byte order mark, and the codec used."""
    if encoding is not None:
        codec = check_encoding_name(encoding)
        return _decode_as(data, codec, path), codec
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return _decode_as(data, codec, path), codec
    if b"\x00" in data:
        raise TranscriptError(
            "the file contains NUL bytes, so it is binary, or UTF-16 or UTF-32 "
            "text without a byte order mark.",
            path=path,
            fix="If it is text, import it again with --encoding utf-16-le (or utf-16-be).",
        )
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    codec = _detect(data, path)
    return _decode_as(data, codec, path), codec


def _decode_as(data: bytes, codec: str, path: str | Path) -> str:
    if codec == "utf-8" and data.startswith(codecs.BOM_UTF8):
        codec = "utf-8-sig"
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as error:
        line = data[: error.start].decode(codec, errors="replace").count("\n") + 1
        raise TranscriptError(
            f"the file is not valid {codec} text (byte {error.start}).",
            path=path,
            line=line,
            fix="Pass the encoding the file was saved in with --encoding, or save it as UTF-8.",
        ) from None
    return text.removeprefix("\ufeff")


def _detect(data: bytes, path: str | Path) -> str:
    from charset_normalizer import from_bytes
    from charset_normalizer.utils import is_multi_byte_encoding

    matches = list(from_bytes(data))
    best = matches[0] if matches else None
    if best is not None and is_multi_byte_encoding(best.encoding):
        return _chinese_encoding(matches, best, path)
    western = _western_reading(data)
    # A mostly English file with a few Chinese words decodes cleanly as
    # Windows-1252 and as several East Asian encodings at once.
    east_asian = [
        match
        for match in matches
        if is_multi_byte_encoding(match.encoding)
        and western is not None
        and match.chaos <= western.chaos + _CHAOS_TIE
    ]
    if western is not None and not east_asian:
        return "cp1252"
    raise TranscriptError(
        "the encoding could not be determined with confidence"
        + (f" (possible: {', '.join(_candidates(matches))})." if matches else "."),
        path=path,
        fix="Import it again with --encoding NAME, naming the encoding the file was "
        "saved in, or save it as UTF-8.",
    )


def _candidates(matches: list[Any]) -> list[str]:
    """Return up to four encodings that read the bytes, accepted ones first."""
    names = [_family(match) or match.encoding for match in matches]
    ordered = sorted(dict.fromkeys(names), key=lambda name: name not in AUTO_ENCODINGS)
    return ordered[:4]


def _chinese_encoding(matches: list[Any], best: Any, path: str | Path) -> str:
    """Return gb18030 or big5 when exactly one reading of the bytes is plausible."""
    plausible = [match for match in matches if match is best or _tied(match, best)]
    chosen = next(
        (match for match in plausible if _family(match) in ("gb18030", "big5")), None
    )
    if chosen is None:
        raise TranscriptError(
            f"the file looks like {best.encoding} text, which is not detected automatically.",
            path=path,
            fix=f"Import it again with --encoding {best.encoding} if that is right, "
            "or save it as UTF-8.",
        )
    # Short runs of East Asian bytes often decode cleanly in several
    # encodings, which then score alike.
    rivals = [match for match in plausible if str(match) != str(chosen)]
    if rivals:
        raise TranscriptError(
            "the encoding could not be determined with confidence: several encodings "
            f"read the file as different text (possible: {', '.join(_candidates(matches))}).",
            path=path,
            fix="Import it again with --encoding NAME, naming the encoding the file was "
            "saved in, or save it as UTF-8.",
        )
    return _family(chosen)


def _western_reading(data: bytes) -> Any | None:
    """Return charset-normalizer's Windows-1252 reading if it is plausible Western text.

    Every character outside ASCII must be in ``_WESTERN``, no two letters
    outside ASCII may stand side by side (as in the mojibake "ÁôÒ»ÊÖ" that
    GBK bytes become), and charset-normalizer must find the reading no
    more garbled than its default threshold.
    """
    from charset_normalizer import from_bytes

    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    if any(char not in _WESTERN for char in text if ord(char) > 0x7F):
        return None
    if _ADJACENT_NON_ASCII_LETTERS.search(text):
        return None
    return from_bytes(data, cp_isolation=["cp1252"]).best()


def _family(match: Any) -> str | None:
    """Return the accepted encoding that reads the bytes like ``match``, if any."""
    for name in (match.encoding, *match.could_be_from_charset):
        if name in _FAMILY:
            return _FAMILY[name]
    return None


def _tied(first: Any, second: Any) -> bool:
    return (
        abs(first.chaos - second.chaos) <= _CHAOS_TIE
        and abs(first.coherence - second.coherence) <= _COHERENCE_TIE
    )
