"""Hardened reading of REFI-QDA files: XML without entities, zip members with size limits.

Nothing from an archive is written to disk. Members are read into memory,
each one and all of them together bounded by ``ReadLimits``, so a zip bomb
or a path such as ``../../etc/passwd`` in a member name cannot reach the
file system.
"""

from __future__ import annotations

import posixpath
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_tree
from defusedxml import DefusedXmlException, DTDForbidden

from qualkit.errors import InputError

MEGABYTE = 1024 * 1024
DEFAULT_MAX_MEMBER_BYTES = 200 * MEGABYTE
DEFAULT_MAX_TOTAL_BYTES = 200 * MEGABYTE
DEFAULT_MAX_MEMBERS = 10_000
# Deeper XML is rejected, because the readers walk the tree recursively and a
# REFI-QDA file needs a few levels plus one per level of its code hierarchy.
MAX_XML_DEPTH = 256


@dataclass(frozen=True)
class ReadLimits:
    """Upper bounds on what an import reads: bytes per file or zip member, bytes in all, members."""

    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS


def parse_xml(data: bytes, *, path: str | Path) -> Element:
    """Parse XML bytes with defusedxml, so entity declarations and external references raise.

    A DOCTYPE without entities and without an external DTD (a SYSTEM or
    PUBLIC identifier) is allowed, because it cannot expand or fetch
    anything. Raises InputError naming ``path`` for forbidden or malformed XML.
    """
    parser = safe_tree.DefusedXMLParser(
        forbid_dtd=False, forbid_entities=True, forbid_external=True
    )
    parser.parser.StartDoctypeDeclHandler = _reject_external_dtd
    try:
        parser.feed(data)
        root = parser.close()
    except DefusedXmlException as error:
        raise InputError(
            f"the XML declares an entity or an external reference ({error!r}), "
            "which qualkit never expands, so nothing was imported.",
            path=path,
            fix="Export the file again without a DOCTYPE, or remove the <!ENTITY> declarations.",
        ) from None
    except ParseError as error:
        raise InputError(
            f"the file is not well-formed XML ({error}), so nothing was imported.",
            path=path,
            fix="Export it again from the other program.",
        ) from None
    if _depth_exceeds(root, MAX_XML_DEPTH):
        raise InputError(
            f"the XML is nested more than {MAX_XML_DEPTH} levels deep, so nothing was imported.",
            path=path,
            fix="Flatten the code hierarchy in the other program and export again.",
        )
    return root


def _depth_exceeds(root: Element, limit: int) -> bool:
    """Return whether any element lies more than ``limit`` levels below the root, without recursion."""
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in element)
    return False


def _reject_external_dtd(
    name: str, system_id: str | None, public_id: str | None, has_internal_subset: bool
) -> None:
    """Raise for a DOCTYPE that names an external DTD.

    Expat does not fetch the DTD, but docs/refi-qda.md promises to reject
    any reference to an external resource.
    """
    if system_id or public_id:
        raise DTDForbidden(name, system_id, public_id)


def read_file_limited(path: str | Path, limits: ReadLimits) -> bytes:
    """Read a whole file, or raise InputError if it is missing or larger than the member limit."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError("file not found.", path=path) from None
    if size > limits.max_member_bytes:
        raise _too_large(path, path.name, size, limits.max_member_bytes)
    with path.open("rb") as handle:
        data = handle.read(limits.max_member_bytes + 1)
    if len(data) > limits.max_member_bytes:
        raise _too_large(path, path.name, len(data), limits.max_member_bytes)
    return data


def safe_member_name(name: str) -> str | None:
    """Return a zip member name in normal form, or None when it could leave the archive.

    Absolute names, drive letters, backslashes and ``..`` parts are unsafe.
    """
    if not name or "\\" in name or "\x00" in name:
        return None
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    parts = name.split("/")
    if any(part == ".." for part in parts):
        return None
    return posixpath.normpath(name)


def read_archive(path: str | Path, limits: ReadLimits) -> dict[str, bytes]:
    """Read every file member of a zip archive into memory, keyed by its normal-form name.

    Raises InputError, before anything is decompressed, for a member name
    that could leave the archive, an encrypted member, more members than
    ``limits.max_members``, and declared sizes over the limits. The sizes are
    checked again while reading, so a header that understates a size
    cannot get past them.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found.", path=path)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise InputError(
            f"the file is not a zip archive ({error}); a .qdpx file is a zip archive "
            "holding project.qde and a sources folder.",
            path=path,
            fix="Export the project again, or import a .qdc codebook file instead.",
        ) from None
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        if len(infos) > limits.max_members:
            raise InputError(
                f"the archive has {len(infos)} members, more than the limit of "
                f"{limits.max_members}, so nothing was imported.",
                path=path,
            )
        names: dict[str, zipfile.ZipInfo] = {}
        declared_total = 0
        for info in infos:
            name = safe_member_name(info.filename)
            if name is None:
                raise InputError(
                    f"the archive member name {info.filename!r} points outside the archive, "
                    "so nothing was imported.",
                    path=path,
                    fix="Only import archives from a source you trust; this one looks crafted.",
                )
            if info.flag_bits & 0x1:
                raise InputError(
                    f"the archive member {info.filename!r} is encrypted, so nothing was imported.",
                    path=path,
                    fix="Export the project again without a password.",
                )
            if info.file_size > limits.max_member_bytes:
                raise _too_large(
                    path, info.filename, info.file_size, limits.max_member_bytes
                )
            if name in names:
                raise InputError(
                    f"the archive has two members named {name!r}, so it is ambiguous which "
                    "one other programs read, and nothing was imported.",
                    path=path,
                    fix="Export the project again from the program that made it.",
                )
            declared_total += info.file_size
            names[name] = info
        if declared_total > limits.max_total_bytes:
            raise _total_too_large(path, declared_total, limits.max_total_bytes)
        members: dict[str, bytes] = {}
        total = 0
        for name, info in names.items():
            with archive.open(info) as handle:
                data = handle.read(limits.max_member_bytes + 1)
            if len(data) > limits.max_member_bytes:
                raise _too_large(
                    path, info.filename, len(data), limits.max_member_bytes
                )
            total += len(data)
            if total > limits.max_total_bytes:
                raise _total_too_large(path, total, limits.max_total_bytes)
            members[name] = data
    return members


def _too_large(path: Path, member: str, size: int, limit: int) -> InputError:
    return InputError(
        f"{member!r} is {size:,} bytes, more than the limit of {limit:,} bytes per file, "
        "so nothing was imported.",
        path=path,
        fix="Raise the limit with --max-member-mb if you trust the file.",
    )


def _total_too_large(path: Path, size: int, limit: int) -> InputError:
    return InputError(
        f"the archive contains at least {size:,} bytes, more than the limit of {limit:,} bytes "
        "in all, so nothing was imported.",
        path=path,
        fix="Raise the limit with --max-total-mb if you trust the file.",
    )
