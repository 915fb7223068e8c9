"""Rich Text Format (.rtf) files, read with striprtf.

Before striprtf runs, paragraph ends become blank lines and table cells
become tabs, so that RTF files come out like Word files: one block per
paragraph or table row. Comments (annotations) are left out by striprtf.
"""

from __future__ import annotations

import re
from pathlib import Path

from qualkit.errors import TranscriptError
from qualkit.readers.common import Document, unreadable
from qualkit.readers.encoding import check_encoding_name

# Control words rewritten before conversion; an escaped backslash ("\\")
# is matched first so that "\\par" in the text is left alone.
_CONTROL = re.compile(r"\\\\|\\(par|row|nestrow|cell|nestcell)(?![a-zA-Z])[ ]?")
_REPLACEMENTS = {
    "par": "\\par\\par ",
    "row": "\\par\\par ",
    "nestrow": "\\par\\par ",
    "cell": "\\tab ",
    "nestcell": "\\tab ",
}
_CODE_PAGE = re.compile(rb"\\ansicpg(\d+)")


def read(path: Path, data: bytes, encoding: str | None) -> Document:
    """Return the text of the RTF document.

    ``encoding`` overrides the code page the file declares (``\\ansicpg``)
    for bytes written as ``\\'hh`` escapes or raw 8-bit characters.
    """
    from striprtf.striprtf import rtf_to_text

    fix = "Open it in the word processor and save it again as RTF or .docx."
    if not data.lstrip().startswith(b"{\\rtf"):
        raise unreadable(path, "RTF", "it does not start with '{\\rtf'", fix)
    codec = _code_page(data, encoding)
    try:
        source = data.decode(codec)
        converted = rtf_to_text(_CONTROL.sub(_rewrite, source), encoding=codec)
    except UnicodeDecodeError as error:
        raise TranscriptError(
            f"the RTF text is not valid {codec} ({error.reason}).",
            path=path,
            fix="Pass the code page the file was written in with --encoding.",
        ) from None
    except (ValueError, IndexError, LookupError, OverflowError) as error:
        raise unreadable(path, "RTF", error, fix) from None
    warnings = []
    if b"\\annotation" in data or b"\\atnid" in data:
        warnings.append("comments left out of the text.")
    if b"\\deleted" in data:
        warnings.append(
            "the file has tracked deletions, and their text is kept; accept or reject "
            "the changes in the word processor and import again."
        )
    return Document(text=_join_surrogates(converted), format="rtf", warnings=warnings)


def _code_page(data: bytes, encoding: str | None) -> str:
    if encoding is not None:
        return check_encoding_name(encoding)
    declared = _CODE_PAGE.search(data[:4096])
    if declared is not None:
        try:
            return check_encoding_name(f"cp{int(declared.group(1))}")
        except TranscriptError:
            pass
    return "cp1252"


def _rewrite(match: re.Match[str]) -> str:
    if match.group(1) is None:
        return match.group(0)
    return _REPLACEMENTS[match.group(1)]


def _join_surrogates(text: str) -> str:
    """Combine the UTF-16 surrogate pairs that RTF uses for characters beyond U+FFFF.

    RTF writes such a character as two ``\\uN`` escapes, and striprtf turns
    each into a lone surrogate.
    """
    if not any(0xD800 <= ord(char) <= 0xDFFF for char in text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
