"""Read a ``.qdc`` or ``.qdpx`` file leniently into plain records, without touching the database.

Common departures from the standard are accepted and noted in the report:
a missing or misspelled namespace, an empty ``<Sets/>``, colours written
as ``#RGB``, ``rgb()`` or a name, source paths with or without
``internal://``, and texts with CRLF line endings. Text is stored with
``\\n`` line endings, so positions counted in a CRLF text are moved onto
the normalized text. Every element that is not read is listed by
``unread_elements``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element

from qualkit.errors import InputError
from qualkit.refi.common import stored_datetime
from qualkit.refi.positions import (
    DEFAULT_READING,
    choose_reading,
    normalize_line_endings,
    quote_matches,
)
from qualkit.refi.xmlsafe import (
    ReadLimits,
    parse_xml,
    read_archive,
    read_file_limited,
    safe_member_name,
)

ZIP_PREFIX = b"PK"
ARCHIVE_SUFFIXES = (".qdpx", ".zip")
CANONICAL_NAMESPACES = {
    "Project": "urn:QDA-XML:project:1.0",
    "CodeBook": "urn:QDA-XML:codebook:1.0",
}

# Reasons, by tag, for leaving out an element that qualkit does not read.
UNSUPPORTED = {
    "PDFSource": "PDF sources are not imported; only plain text sources are.",
    "PictureSource": "picture sources are not imported; only plain text sources are.",
    "AudioSource": "audio sources are not imported; only plain text sources are.",
    "VideoSource": "video sources are not imported; only plain text sources are.",
    "Set": "qualkit has no sets of codes or sources.",
    "Links": "qualkit has no links between objects.",
    "Graphs": "qualkit has no graphs.",
    "SelectionRef": "qualkit cases hold whole sources, not selections.",
    "CodeRef": "qualkit cases cannot be coded.",
    "Description": "qualkit has no place for this description.",
}


@dataclass
class ReportRow:
    """One line of the import report: an element, what happened to it, and why."""

    element: str
    name: str
    action: str
    detail: str


@dataclass
class ParsedCode:
    """A ``<Code>`` with its parent's GUID (None at the top level)."""

    guid: str
    name: str
    description: str | None
    colour: str | None
    parent_guid: str | None


@dataclass
class ParsedCoding:
    """A ``<Coding>`` on a selection or a whole source."""

    guid: str
    code_guid: str | None
    user_guid: str | None
    created: str | None
    note_guids: list[str] = field(default_factory=list)


@dataclass
class ParsedSelection:
    """A ``<PlainTextSelection>`` with its positions already moved onto the normalized text."""

    guid: str
    name: str | None
    start: int
    end: int
    user_guid: str | None
    codings: list[ParsedCoding] = field(default_factory=list)
    note_guids: list[str] = field(default_factory=list)
    valid: bool = True
    # The source name and the positions as written in the file, for messages.
    label: str = ""


@dataclass
class ParsedSource:
    """A ``<TextSource>`` with its text normalized to ``\\n`` line endings."""

    guid: str
    name: str
    text: str
    selections: list[ParsedSelection] = field(default_factory=list)
    whole_codings: list[ParsedCoding] = field(default_factory=list)
    note_guids: list[str] = field(default_factory=list)


@dataclass
class ParsedCase:
    """A ``<Case>``: its name, variable values by variable name, and its sources' GUIDs."""

    guid: str
    name: str | None
    values: dict[str, str]
    source_guids: list[str]


@dataclass
class ParsedNote:
    """A ``<Note>`` and its text."""

    guid: str
    name: str | None
    text: str
    user_guid: str | None
    created: str | None


@dataclass
class ParsedFile:
    """Everything read from one REFI-QDA file, and the report rows so far."""

    path: Path
    users: dict[str, str | None] = field(default_factory=dict)
    codes: list[ParsedCode] = field(default_factory=list)
    cases: list[ParsedCase] = field(default_factory=list)
    sources: list[ParsedSource] = field(default_factory=list)
    notes: dict[str, ParsedNote] = field(default_factory=dict)
    project_note_guids: list[str] = field(default_factory=list)
    code_note_guids: dict[str, list[str]] = field(default_factory=dict)
    used_members: set[str] = field(default_factory=set)
    report: list[ReportRow] = field(default_factory=list)
    errors: list[ReportRow] = field(default_factory=list)
    # GUIDs seen so far, by element kind, to reject duplicates.
    guids: dict[str, set[str]] = field(default_factory=dict)


def _claim_guid(
    result: ParsedFile, kind: str, guid: str, name: str | None, skipped: str = ""
) -> bool:
    """Record ``guid`` for an element of ``kind``, or add an error and return False for a repeat.

    References (``CodeRef``, ``NoteRef``, ``creatingUser``) name their target
    by GUID, so a GUID used twice for one kind makes them ambiguous. The
    first element keeps it, and a later one is invalid. The schema itself
    does not check uniqueness.
    """
    seen = result.guids.setdefault(kind, set())
    if guid not in seen:
        seen.add(guid)
        return True
    detail = (
        f"GUID {guid} is already used by another {kind}, so references to it "
        "would be ambiguous"
    )
    if skipped:
        detail += f" (the later one is skipped, {skipped})"
    result.errors.append(ReportRow(kind, name or guid, "rejected", detail))
    return False


def normalize_guid(value: str | None) -> str | None:
    """Return a GUID upper-case without braces, or None for an empty value."""
    if value is None:
        return None
    cleaned = value.strip().strip("{}").upper()
    return cleaned or None


# The 16 basic CSS colour names, with grey as a second spelling of gray, and orange.
COLOUR_NAMES = {
    "black": "#000000", "silver": "#C0C0C0", "gray": "#808080", "grey": "#808080",
    "white": "#FFFFFF", "maroon": "#800000", "red": "#FF0000", "purple": "#800080",
    "fuchsia": "#FF00FF", "green": "#008000", "lime": "#00FF00", "olive": "#808000",
    "yellow": "#FFFF00", "navy": "#000080", "blue": "#0000FF", "teal": "#008080",
    "aqua": "#00FFFF", "orange": "#FFA500",
}  # fmt: skip


def normalize_colour(value: str | None) -> tuple[str | None, str | None]:
    """Return (``#RRGGBB`` or None, a note when the value was converted or not understood).

    Reads ``#RRGGBB``, ``#RGB``, ``#AARRGGBB`` (alpha dropped), ``RRGGBB``
    without the hash, ``rgb(r, g, b)`` and the names in ``COLOUR_NAMES``.
    """
    if value is None or not value.strip():
        return None, None
    text = value.strip()
    lowered = text.lower()
    if re.fullmatch(r"#[0-9a-f]{6}", lowered):
        return text.upper(), None
    if re.fullmatch(r"#[0-9a-f]{3}", lowered):
        return "#" + "".join(
            c * 2 for c in text[1:]
        ).upper(), f"colour {text!r} read as #RGB"
    if re.fullmatch(r"#[0-9a-f]{8}", lowered):
        return "#" + text[
            3:
        ].upper(), f"colour {text!r} read as #AARRGGBB, alpha dropped"
    if re.fullmatch(r"[0-9a-f]{6}", lowered):
        return "#" + text.upper(), f"colour {text!r} read as RRGGBB"
    match = re.fullmatch(
        r"rgba?\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*(,[^)]*)?\)", lowered
    )
    if match and all(int(part) <= 255 for part in match.groups()[:3]):
        converted = "#" + "".join(f"{int(part):02X}" for part in match.groups()[:3])
        return converted, f"colour {text!r} read as {converted}"
    if lowered in COLOUR_NAMES:
        return COLOUR_NAMES[
            lowered
        ], f"colour name {text!r} read as {COLOUR_NAMES[lowered]}"
    return None, f"colour {text!r} not understood, so the code has no colour"


def _local(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return None, tag


def _normalize_namespaces(root: Element, result: ParsedFile) -> None:
    """Strip the root's namespace from every tag, and report it when it is not the standard's.

    Elements in another namespace (XInclude, say) keep their ``{namespace}``
    tag, so nothing reads them and ``unread_elements`` lists them.
    """
    root_namespace, _ = _local(root.tag)
    seen: set[str | None] = set()
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        namespace, local = _local(element.tag)
        if namespace not in (None, root_namespace):
            continue
        seen.add(namespace)
        element.tag = local
    canonical = CANONICAL_NAMESPACES.get(root.tag)
    for namespace in sorted(seen, key=str):
        if namespace == canonical:
            continue
        if namespace is None:
            detail = f"no namespace; read as {canonical}"
        elif "qda-xml" in namespace.lower() or "qdasoftware" in namespace.lower():
            detail = f"namespace {namespace!r} read as {canonical}"
        else:
            detail = f"unexpected namespace {namespace!r}; its elements were read as {canonical}"
        result.report.append(ReportRow(root.tag, "namespace", "converted", detail))


def read_refi_file(path: str | Path, limits: ReadLimits) -> tuple[ParsedFile, Element]:
    """Read and parse ``path`` (a ``.qdc``, ``.qdpx`` or bare ``.qde`` file).

    Returns the parsed records and the root element, whose elements that
    were read are marked (see ``unread_elements``). Raises InputError for a
    file that is unsafe, too large, or not a REFI-QDA document.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found.", path=path)
    with path.open("rb") as handle:
        magic = handle.read(4)
    if not magic:
        raise InputError(
            "the file is empty, so nothing was imported.",
            path=path,
            fix="Export the project or codebook again from the other program.",
        )
    members: dict[str, bytes] = {}
    # A .qdpx file must be a zip archive. "PK" also starts an empty zip, whose
    # first record is the end of the central directory, not a local header.
    if magic.startswith(ZIP_PREFIX) or path.suffix.lower() in ARCHIVE_SUFFIXES:
        members = read_archive(path, limits)
        document_name = _find_project_member(members, path)
        data = members[document_name]
    else:
        data = read_file_limited(path, limits)
    root = parse_xml(data, path=path)
    result = ParsedFile(path=path)
    _normalize_namespaces(root, result)
    if root.tag == "CodeBook":
        codes = root.find("Codes")
        _mark(codes)
        _read_codes(codes, None, result)
        _read_sets(root.find("Sets"), result)
    elif root.tag == "Project":
        _read_project(root, members, result)
        if members:
            result.used_members.add(document_name)
        _report_unused_members(root, members, result)
    else:
        raise InputError(
            f"the root element is <{root.tag}>, not <Project> or <CodeBook>, "
            "so this is not a REFI-QDA file.",
            path=path,
            fix="Import a .qdpx project or a .qdc codebook exported by a QDA program.",
        )
    _mark(root)
    return result, root


def _find_project_member(members: dict[str, bytes], path: Path) -> str:
    """Return the name of the ``.qde`` member: ``project.qde`` in any case, or the only ``.qde``."""
    candidates = [name for name in members if name.lower().endswith(".qde")]
    top_level = [name for name in candidates if name.lower() == "project.qde"]
    if top_level:
        return top_level[0]
    if len(candidates) == 1:
        return candidates[0]
    raise InputError(
        "the archive has no project.qde"
        + (
            f" but several .qde files ({', '.join(sorted(candidates))})"
            if candidates
            else ""
        )
        + ", so it is not a REFI-QDA project.",
        path=path,
        fix="Export the project again as .qdpx from the other program.",
    )


# Elements are marked as read with this attribute, removed again by unread_elements.
_READ = "{urn:qualkit}read"


def _mark(element: Element | None) -> None:
    if element is not None:
        element.set(_READ, "1")


def _mark_tree(element: Element | None) -> None:
    if element is not None:
        for item in element.iter():
            item.set(_READ, "1")


def unread_elements(root: Element) -> list[ReportRow]:
    """List the elements that were not read, each outermost one once, and clear the marks."""
    rows: list[ReportRow] = []

    def visit(element: Element, trail: str) -> None:
        element_path = f"{trail}/{element.tag}" if trail else element.tag
        if element.get(_READ) is None:
            name = element.get("name") or element.get("guid") or ""
            detail = UNSUPPORTED.get(element.tag, "qualkit does not read this element.")
            rows.append(ReportRow(element_path, name, "not imported", detail))
            return
        for child in element:
            if isinstance(child.tag, str):
                visit(child, element_path)

    visit(root, "")
    for element in root.iter():
        element.attrib.pop(_READ, None)
    return rows


def _read_sets(sets: Element | None, result: ParsedFile) -> None:
    """Mark an empty ``<Sets/>`` as read. Sets with members stay unread and are reported."""
    if sets is not None and len(sets) == 0:
        _mark(sets)
        result.report.append(
            ReportRow(
                "Sets",
                "",
                "ignored",
                "empty <Sets/> (the schema needs at least one Set)",
            )
        )
    elif sets is not None:
        _mark(sets)


def _read_codes(
    container: Element | None, parent_guid: str | None, result: ParsedFile
) -> None:
    """Read the ``<Code>`` children of ``container``, parents before their children.

    The recursion is bounded, because ``parse_xml`` rejects XML nested more
    than ``MAX_XML_DEPTH`` levels deep.
    """
    if container is None:
        return
    for element in container.findall("Code"):
        guid = normalize_guid(element.get("guid"))
        name = (element.get("name") or "").strip()
        if guid and not _claim_guid(
            result, "Code", guid, name, "with the codes under it"
        ):
            _mark_tree(element)
            continue
        if not guid or not name:
            result.errors.append(
                ReportRow(
                    "Code",
                    name or str(guid or ""),
                    "rejected",
                    "a code needs a guid and a name",
                )
            )
            continue
        _mark(element)
        description = element.find("Description")
        _mark(description)
        colour, note = normalize_colour(element.get("color"))
        if note:
            result.report.append(ReportRow("Code", name, "converted", note))
        if (element.get("isCodable") or "").strip().lower() in ("false", "0"):
            result.report.append(
                ReportRow(
                    "Code",
                    name,
                    "converted",
                    "isCodable is false, but qualkit codes can all be applied",
                )
            )
        result.codes.append(
            ParsedCode(
                guid=guid,
                name=name,
                description=description.text if description is not None else None,
                colour=colour,
                parent_guid=parent_guid,
            )
        )
        note_guids = _read_note_refs(element)
        if note_guids:
            result.code_note_guids[guid] = note_guids
        _read_codes(element, guid, result)


def _read_note_refs(element: Element) -> list[str]:
    """Mark the ``<NoteRef>`` children of ``element`` as read and return their target GUIDs."""
    guids = []
    for note_ref in element.findall("NoteRef"):
        guid = normalize_guid(note_ref.get("targetGUID"))
        if guid:
            _mark(note_ref)
            guids.append(guid)
    return guids


def _read_project(root: Element, members: dict[str, bytes], result: ParsedFile) -> None:
    users = root.find("Users")
    _mark(users)
    for user in users.findall("User") if users is not None else []:
        guid = normalize_guid(user.get("guid"))
        if guid:
            _mark(user)
            name = (user.get("name") or user.get("id") or "").strip() or None
            if _claim_guid(result, "User", guid, name):
                result.users[guid] = name

    codebook = root.find("CodeBook")
    if codebook is not None:
        _mark(codebook)
        codes = codebook.find("Codes")
        _mark(codes)
        _read_codes(codes, None, result)

    variables = _read_variables(root.find("Variables"))
    _read_cases(root.find("Cases"), variables, result)

    sources = root.find("Sources")
    _mark(sources)
    for element in sources.findall("TextSource") if sources is not None else []:
        source = _read_text_source(element, members, result)
        if source is not None:
            result.sources.append(source)

    notes = root.find("Notes")
    _mark(notes)
    for element in notes.findall("Note") if notes is not None else []:
        note = _read_note(element, members, result)
        if note is not None and _claim_guid(result, "Note", note.guid, note.name):
            result.notes[note.guid] = note

    _read_sets(root.find("Sets"), result)
    result.project_note_guids = _read_note_refs(root)
    _report_unknown_case_sources(sources, result)


def _report_unknown_case_sources(sources: Element | None, result: ParsedFile) -> None:
    """Add a warning for each case's SourceRef to a GUID that no source of any kind has."""
    known = {
        normalize_guid(element.get("guid"))
        for element in (sources if sources is not None else [])
    }
    for case in result.cases:
        for guid in case.source_guids:
            if guid not in known:
                result.report.append(
                    ReportRow(
                        "Case",
                        case.name or case.guid,
                        "warning",
                        f"it refers to source {guid}, which the file does not have",
                    )
                )


def _report_unused_members(
    root: Element, members: dict[str, bytes], result: ParsedFile
) -> None:
    """Report each archive member that no imported source or note was read from."""
    rich_text = {
        _member_for(element.get("richTextPath", "")): element.get("name") or ""
        for element in root.iter("TextSource")
        if element.get("richTextPath")
    }
    for name in sorted(set(members) - result.used_members):
        if name in rich_text:
            detail = f"the formatted version of {rich_text[name]!r}; its plain text was read instead"
        else:
            detail = "no source or note that qualkit imports refers to it"
        result.report.append(ReportRow("archive member", name, "not imported", detail))


def _read_variables(variables: Element | None) -> dict[str, str]:
    """Return variable names by GUID."""
    _mark(variables)
    names: dict[str, str] = {}
    for variable in variables.findall("Variable") if variables is not None else []:
        guid = normalize_guid(variable.get("guid"))
        name = (variable.get("name") or "").strip()
        if guid and name:
            _mark_tree(variable)
            names[guid] = name
    return names


VALUE_TAGS = (
    "TextValue",
    "BooleanValue",
    "IntegerValue",
    "FloatValue",
    "DateValue",
    "DateTimeValue",
)


def _read_cases(
    cases: Element | None, variables: dict[str, str], result: ParsedFile
) -> None:
    _mark(cases)
    for element in cases.findall("Case") if cases is not None else []:
        guid = normalize_guid(element.get("guid"))
        if not guid:
            continue
        _mark(element)
        values: dict[str, str] = {}
        for value in element.findall("VariableValue"):
            reference = value.find("VariableRef")
            variable = (
                normalize_guid(reference.get("targetGUID"))
                if reference is not None
                else None
            )
            typed = next(
                (value.find(tag) for tag in VALUE_TAGS if value.find(tag) is not None),
                None,
            )
            if variable not in variables:
                _mark_tree(value)
                result.report.append(
                    ReportRow(
                        "Case/VariableValue",
                        element.get("name") or guid,
                        "not imported",
                        f"it refers to variable {variable!r}, which the file does not define",
                    )
                )
                continue
            _mark_tree(value)
            if typed is not None and (typed.text or "").strip():
                values[variables[variable]] = typed.text.strip()
        source_guids = []
        for reference in element.findall("SourceRef"):
            target = normalize_guid(reference.get("targetGUID"))
            if target:
                _mark(reference)
                source_guids.append(target)
        result.cases.append(
            ParsedCase(
                guid, (element.get("name") or "").strip() or None, values, source_guids
            )
        )


# Source paths that name files outside the archive, which qualkit never opens.
EXTERNAL_SCHEMES = ("relative://", "absolute://", "file://", "http://", "https://")


def _member_for(path_value: str) -> str | None:
    """Return the archive member that a source path names, or None for a path out of the archive.

    ``internal://X`` and a plain relative ``X`` or ``sources/X`` all name
    ``sources/X``.
    """
    value = path_value.strip()
    lowered = value.lower()
    if lowered.startswith(EXTERNAL_SCHEMES):
        return None
    if lowered.startswith("internal://"):
        value = value[len("internal://") :]
    value = value.lstrip("/")
    if value.lower().startswith("sources/"):
        value = value[len("sources/") :]
    name = safe_member_name("sources/" + value)
    return name


def _member_text(
    members: dict[str, bytes],
    path_value: str,
    owner: str,
    name: str,
    result: ParsedFile,
) -> str | None:
    if path_value.strip().lower().startswith(EXTERNAL_SCHEMES):
        result.report.append(
            ReportRow(
                owner,
                name,
                "not imported",
                f"its text {path_value!r} is outside the archive",
            )
        )
        return None
    member = _member_for(path_value)
    if member is None:
        result.errors.append(
            ReportRow(
                owner,
                name,
                "rejected",
                f"path {path_value!r} points outside the archive",
            )
        )
        return None
    data = members.get(member)
    if data is None:
        folded = {key.lower(): key for key in members}
        if member.lower() in folded:
            member = folded[member.lower()]
            data = members[member]
    if data is None:
        result.errors.append(
            ReportRow(
                owner,
                name,
                "rejected",
                f"{path_value!r} names {member}, which the archive does not have",
            )
        )
        return None
    result.used_members.add(member)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        result.errors.append(
            ReportRow(
                owner,
                name,
                "rejected",
                f"{member} is not UTF-8 ({error.reason} at byte {error.start})",
            )
        )
        return None


def _read_text_source(
    element: Element, members: dict[str, bytes], result: ParsedFile
) -> ParsedSource | None:
    guid = normalize_guid(element.get("guid"))
    name = (element.get("name") or "").strip() or str(guid)
    if not guid:
        return None
    if not _claim_guid(result, "TextSource", guid, name, "with its codings"):
        _mark_tree(element)
        return None
    content = element.find("PlainTextContent")
    path_value = element.get("plainTextPath")
    if content is not None:
        _mark(content)
        raw = content.text or ""
    elif path_value:
        raw = _member_text(members, path_value, "TextSource", name, result)
        if raw is None:
            # The report already has a row with the reason, so its children are not listed again.
            _mark_tree(element)
            return None
    else:
        _mark_tree(element)
        result.errors.append(
            ReportRow(
                "TextSource",
                name,
                "rejected",
                "it has neither plainTextPath nor PlainTextContent",
            )
        )
        return None

    _mark(element)
    text, convert = normalize_line_endings(raw)
    if "\x00" in text:
        # A replacement character keeps every position, unlike removing the NUL.
        text = text.replace("\x00", "\ufffd")
        result.report.append(
            ReportRow(
                "TextSource",
                name,
                "converted",
                f"{raw.count(chr(0))} NUL character(s) replaced with U+FFFD",
            )
        )
    selections = []
    for item in element.findall("PlainTextSelection"):
        selection = _read_selection(item, name, result)
        if selection is not None:
            selections.append(selection)
    named = [(s.start, s.end, s.name) for s in selections if s.name and s.name.strip()]

    chosen = choose_reading(raw, text, convert, named)
    if chosen.label != DEFAULT_READING and selections:
        result.report.append(
            ReportRow(
                "TextSource",
                name,
                "converted",
                f"selection positions read as {chosen.label}",
            )
        )
    elif "\r" in raw:
        result.report.append(
            ReportRow(
                "TextSource",
                name,
                "converted",
                "CRLF line endings normalized to LF; positions counted with CRLF were moved",
            )
        )

    for selection in selections:
        selection.start, selection.end = chosen.span(selection.start, selection.end)
        _check_selection(selection, text, name, result)

    source = ParsedSource(guid=guid, name=name, text=text, selections=selections)
    for coding in element.findall("Coding"):
        parsed = _read_coding(coding, name, result)
        if parsed is not None:
            source.whole_codings.append(parsed)
    source.note_guids = _read_note_refs(element)
    return source


def _read_selection(
    item: Element, source_name: str, result: ParsedFile
) -> ParsedSelection | None:
    """Parse a ``<PlainTextSelection>``.

    Return None, and add a report row, when its positions are not whole numbers.
    """
    guid = normalize_guid(item.get("guid")) or ""
    raw_start, raw_end = item.get("startPosition"), item.get("endPosition")
    label = f"{source_name} [{_shorten(raw_start)}:{_shorten(raw_end)}]"
    start, end = _xsd_integer(raw_start), _xsd_integer(raw_end)
    if start is None or end is None:
        result.errors.append(
            ReportRow(
                "PlainTextSelection",
                label,
                "rejected",
                "startPosition and endPosition must be whole numbers",
            )
        )
        _mark_tree(item)
        return None

    _mark(item)
    description = item.find("Description")
    _mark(description)
    selection = ParsedSelection(
        guid=guid,
        name=item.get("name"),
        start=start,
        end=end,
        user_guid=normalize_guid(item.get("creatingUser")),
        label=label,
    )

    for coding in item.findall("Coding"):
        parsed = _read_coding(coding, label, result)
        if parsed is not None:
            selection.codings.append(parsed)
    selection.note_guids = _read_note_refs(item)
    return selection


def _read_coding(
    element: Element, owner: str, result: ParsedFile
) -> ParsedCoding | None:
    _mark(element)
    reference = element.find("CodeRef")
    _mark(reference)
    return ParsedCoding(
        guid=normalize_guid(element.get("guid")) or "",
        code_guid=normalize_guid(reference.get("targetGUID"))
        if reference is not None
        else None,
        user_guid=normalize_guid(element.get("creatingUser")),
        created=_creation_time(element, "Coding", owner, result),
        note_guids=_read_note_refs(element),
    )


def _creation_time(
    element: Element, kind: str, name: str, result: ParsedFile
) -> str | None:
    """Return the element's creationDateTime in stored form, and report a value that cannot be read."""
    value = element.get("creationDateTime")
    created = stored_datetime(value)
    if value is not None and value.strip() and created is None:
        result.report.append(
            ReportRow(
                kind,
                name,
                "warning",
                f"creationDateTime {_shorten(value)!r} is not a date and time; "
                "the import time is stored instead",
            )
        )
    return created


def _read_note(
    element: Element, members: dict[str, bytes], result: ParsedFile
) -> ParsedNote | None:
    guid = normalize_guid(element.get("guid"))
    if not guid:
        return None
    name = element.get("name")
    content = element.find("PlainTextContent")
    if content is not None:
        _mark(content)
        text = content.text or ""
    elif element.get("plainTextPath"):
        text = _member_text(
            members, element.get("plainTextPath", ""), "Note", name or guid, result
        )
        if text is None:
            return None
    else:
        text = ""
    _mark(element)
    return ParsedNote(
        guid=guid,
        name=name,
        text=text.replace("\r\n", "\n").replace("\r", "\n"),
        user_guid=normalize_guid(element.get("creatingUser")),
        created=_creation_time(element, "Note", name or guid, result),
    )


def _shorten(value: str | None, limit: int = 24) -> str:
    """Return an attribute value for a message, cut to ``limit`` characters."""
    if value is None:
        return "None"
    return value if len(value) <= limit else value[:limit] + "..."


_XSD_INTEGER = re.compile(r"[+-]?[0-9]+")


def _xsd_integer(value: str | None) -> int | None:
    """Return an xs:integer attribute value as an int, or None when it is not one.

    Python's ``int()`` also accepts other scripts' digits and underscores,
    which the schema does not, so the lexical form is checked first.
    """
    if value is None:
        return None
    value = value.strip()
    if not _XSD_INTEGER.fullmatch(value) or len(value) > 4000:
        return None
    return int(value)


def _check_selection(
    selection: ParsedSelection, text: str, source_name: str, result: ParsedFile
) -> None:
    label = selection.label or f"{source_name} [{selection.start}:{selection.end}]"
    problem = None
    if selection.start < 0 or selection.end < 0:
        problem = "a position is negative"
    elif selection.end < selection.start:
        problem = "endPosition is before startPosition"
    elif selection.end == selection.start:
        problem = "the selection is empty"
    elif selection.end > len(text):
        problem = (
            f"the selection ends past the end of the text ({len(text)} characters)"
        )
    if problem:
        result.errors.append(
            ReportRow("PlainTextSelection", label, "rejected", problem)
        )
        selection.valid = False
        return
    if (
        selection.name
        and selection.name.strip()
        and not quote_matches(text, selection.start, selection.end, selection.name)
    ):
        result.report.append(
            ReportRow(
                "PlainTextSelection",
                label,
                "warning",
                "the selection's name differs from the text at its positions; the positions were kept",
            )
        )
