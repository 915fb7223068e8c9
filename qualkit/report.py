"""Render the evidence report from the database with Jinja templates.

HTML output is autoescaped, and Markdown output escapes every value through the
``md`` filter. Every string that comes from the data passes through the
project's redaction list before a template sees it. The report states the
qualkit version, codebook versions, content hash, options and time of
rendering. Rendering the same data again gives the same bytes apart from the
time stamp, and a file whose only change would be its time stamp is left as
it is, so ``qualkit build`` twice changes no file.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import statistics
import string
import sys
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox
import markupsafe
import sqlite_utils

import qualkit
from qualkit import store
from qualkit.errors import ConfigError, InputError, QualkitError
from qualkit.redaction import Redactor
from qualkit.report_evidence import (
    escape_block_start,
    escape_markdown_characters,
    transcript_markdown,
)
from qualkit.resources import resource_dir
from qualkit.triangulation import rules_as_dict

FORMATS = {"html": "report.html.j2", "md": "report.md.j2"}
SCRIPT_FILE = "report.js"
# The bundled templates that 'qualkit report templates --copy' hands out.
TEMPLATE_FILES = ("report.html.j2", "report.md.j2", SCRIPT_FILE)
DEFAULT_CITATION = (
    "Interview with [a {level}-level official|an official][ in {province} province]"
    " (Interview #{id})"
)
CITATION_FIELDS = ("id", "level", "province", "date")
DEFAULT_STATUSES = ("accepted", "suggested")
DEFAULT_QUOTES_PER_TARGET = 5
# The rendering time is written in this form. Two renderings that differ only
# in such time stamps count as equal when deciding whether to rewrite a file.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
TIMESTAMP_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
TIMESTAMP_MASK = "YYYY-MM-DDTHH:MM:SSZ"
# Characters dropped from the rendered report: C0 and C1 control characters
# other than tab, line feed and carriage return (not allowed in HTML, and
# terminal escapes in Markdown), and lone surrogates, which UTF-8 cannot encode.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def render_report(
    db: sqlite_utils.Database,
    out: Path,
    *,
    formats: tuple[str, ...] = ("html", "md"),
    settings: dict[str, Any] | None = None,
    title: str = "qualkit report",
    redactor: Redactor | None = None,
) -> list[Path]:
    """Write the report in each format to ``out``; return the files written.

    ``redactor`` overrides the list named by ``settings["redact"]``. A file
    whose new content differs from the old one only in the time stamp is
    kept unchanged and still returned.
    """
    settings = settings or {}
    unknown = [name for name in formats if name not in FORMATS]
    if unknown:
        raise QualkitError(f"Unknown report format {unknown[0]!r}. Use: {', '.join(FORMATS)}.")
    # Validate SOURCE_DATE_EPOCH first, because matplotlib's SVG writer (3.11) also
    # reads it for the figures and fails on a bad value with a traceback.
    rendering_time()
    if redactor is None:
        redactor = load_redactor(settings.get("redact"))
    environment = template_environment(settings.get("templates"))
    templates = {name: load_template(environment, FORMATS[name]) for name in formats}
    context = report_context(db, settings, title, redactor)
    context.update(script_context(environment))

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in formats:
        path = out / f"report.{name}"
        text = _UNPRINTABLE.sub("", render_template(templates[name], context))
        write_unless_only_time_changed(path, text)
        written.append(path)
    return written


def load_redactor(path: str | Path | None) -> Redactor:
    """Return the redactor for the list at ``path``, or one that changes nothing.

    Raises InputError when ``path`` is given but the list has no terms, so an
    empty or unfinished list never produces an unredacted output.
    """
    if not path:
        return Redactor.none()
    redactor = Redactor.from_file(path)
    if not redactor:
        raise InputError(
            "The redaction list has no terms (it is empty or contains only comments "
            "and blank lines), so nothing would be redacted.",
            path=path,
            fix="Add one term or pattern a line, or leave out --redact and "
            "[report] redact to write the output without redaction.",
        )
    return redactor


def write_unless_only_time_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless the file differs from it only in time stamps.

    Returns whether the file was written. A change of the data always
    changes the content hash in the report, so it is never masked.
    """
    if path.is_file():
        old = path.read_text(encoding="utf-8", errors="replace")
        if mask_timestamps(old) == mask_timestamps(text):
            return False
    path.write_text(text, encoding="utf-8")
    return True


def mask_timestamps(text: str) -> str:
    """Replace every time stamp written in ``TIMESTAMP_FORMAT`` by a fixed mask."""
    return TIMESTAMP_PATTERN.sub(TIMESTAMP_MASK, text)


def rendering_time() -> str:
    """Return the time of rendering, or SOURCE_DATE_EPOCH when it is set, in UTC."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            # Only ASCII digits: a sign, a fraction or an exponent is an error, not a guess.
            if not re.fullmatch(r"[0-9]+", epoch.strip()):
                raise ValueError(epoch)
            moment = dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise QualkitError(
                f"SOURCE_DATE_EPOCH={epoch!r} is not a non-negative whole number of seconds since 1970. "
                "Set it to an integer such as the output of 'date +%s', or unset it."
            ) from None
    else:
        moment = dt.datetime.now(dt.timezone.utc)
    return moment.strftime(TIMESTAMP_FORMAT)


# Templates -----------------------------------------------------------------------------


def template_environment(folder: str | Path | None = None) -> jinja2.Environment:
    """Return the Jinja environment: the user's folder first, then the bundled templates.

    Templates render in Jinja's immutable sandbox, so a template folder that
    came with someone else's project cannot reach Python internals (and so
    cannot run commands) or modify the report's data.
    """
    search = []
    if folder:
        folder = Path(folder)
        if not folder.is_dir():
            raise ConfigError(
                f"the templates folder {str(folder)!r} does not exist.",
                fix="Create it with 'qualkit report templates --copy DIR', or remove "
                "'templates' from [report] in qualkit.toml.",
            )
        search.append(str(folder))
    search.append(str(resource_dir("templates")))
    environment = jinja2.sandbox.ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=jinja2.select_autoescape(["html", "html.j2"], default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["md"] = markdown_escape
    environment.filters["md_block"] = markdown_escape_block
    environment.filters["md_transcript"] = transcript_markdown
    environment.filters["number"] = _number
    return environment


def load_template(environment: jinja2.Environment, name: str) -> jinja2.Template:
    """Load a template; raise InputError naming the file and line of a syntax error."""
    try:
        return environment.get_template(name)
    except jinja2.TemplateSyntaxError as error:
        raise InputError(
            f"template syntax error: {_sentence(error.message)}",
            path=error.filename or error.name or name,
            line=error.lineno,
            fix="Correct the template, or copy the default again with "
            "'qualkit report templates --copy DIR --force'.",
        ) from None
    except jinja2.TemplateNotFound as error:
        raise InputError(
            f"template {error.name!r} not found.",
            fix="Copy the defaults with 'qualkit report templates --copy DIR'.",
        ) from None


def render_template(template: jinja2.Template, context: dict[str, Any]) -> str:
    """Render a template; raise InputError naming the template file and line of an error."""
    try:
        return template.render(**context)
    except jinja2.TemplateSyntaxError as error:
        # Jinja loads an {% include %}d template only at rendering, so a syntax
        # error in it is raised here and not by load_template.
        raise InputError(
            f"template syntax error: {_sentence(error.message)}",
            path=error.filename or error.name,
            line=error.lineno,
        ) from None
    except jinja2.TemplateNotFound as error:
        # An {% include %} of a missing file or of a file outside the template folders.
        path, line = _template_location(sys.exc_info()[2], template)
        raise InputError(
            f"template error: the included template {error.name!r} is not in the templates folder "
            "or the bundled templates.",
            path=path,
            line=line,
            fix="Include only templates from the templates folder, by name.",
        ) from None
    except jinja2.sandbox.SecurityError as error:
        path, line = _template_location(sys.exc_info()[2], template)
        raise InputError(
            f"template error: unsafe access rejected by the template sandbox: {_sentence(str(error))}",
            path=path,
            line=line,
            fix="Use only the names and filters that the bundled templates use.",
        ) from None
    except OverflowError as error:
        # The sandbox limits range() to 100,000 items (jinja2.sandbox.MAX_RANGE in Jinja 3.1).
        path, line = _template_location(sys.exc_info()[2], template)
        raise InputError(
            f"template error: {_sentence(str(error))}",
            path=path,
            line=line,
            fix="Make the loop smaller.",
        ) from None
    except (jinja2.UndefinedError, TypeError, ValueError, AttributeError) as error:
        path, line = _template_location(sys.exc_info()[2], template)
        raise InputError(
            f"template error: {_sentence(str(error))}",
            path=path,
            line=line,
            fix="Use only the names that the bundled templates use "
            "('qualkit report templates --copy DIR' writes them).",
        ) from None


def _sentence(message: str) -> str:
    """Return ``message`` ending in exactly one full stop."""
    return message.rstrip().rstrip(".") + "."


def _template_location(traceback: Any, template: jinja2.Template) -> tuple[str | None, int | None]:
    """Return the innermost template file and line in a traceback of a rendering error.

    Jinja rewrites tracebacks so that a template's frames carry the
    template's file name and line number.
    """
    folders = [Path(folder).resolve() for folder in getattr(template.environment.loader, "searchpath", [])]
    found: tuple[str | None, int | None] = (template.filename, None)
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if filename == template.filename or any(Path(filename).resolve().is_relative_to(folder) for folder in folders):
            found = (filename, traceback.tb_lineno)
        traceback = traceback.tb_next
    return found


def script_context(environment: jinja2.Environment) -> dict[str, Any]:
    """Return the table-sorting script and its hash for the Content-Security-Policy.

    The HTML template writes ``script_source`` between ``<script>`` tags
    unchanged, so the browser computes the same SHA-256 and runs it. The
    policy blocks any other script in the page.
    """
    source, filename, _ = environment.loader.get_source(environment, SCRIPT_FILE)
    if "</" in source or "<!--" in source:
        raise InputError(
            "the script contains '</' or '<!--', which would end or break its script element.",
            path=filename,
            fix="Write the text without them, e.g. '<\\/' inside a string.",
        )
    digest = base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii")
    return {"script_source": markupsafe.Markup(source), "script_hash": f"sha256-{digest}"}


def copy_templates(folder: str | Path, *, force: bool = False) -> list[Path]:
    """Copy the bundled report templates into ``folder``; return the files written.

    Raises QualkitError, and writes nothing, when a file exists and ``force``
    is false.
    """
    folder = Path(folder)
    source = resource_dir("templates")
    targets = [(source / name, folder / name) for name in TEMPLATE_FILES]
    existing = [str(target) for _, target in targets if target.exists()]
    if existing and not force:
        raise QualkitError(
            f"{', '.join(existing)} already exist(s); nothing was copied. "
            "Pass --force to overwrite, or choose another folder."
        )
    folder.mkdir(parents=True, exist_ok=True)
    for original, target in targets:
        target.write_bytes(original.read_bytes())
    return [target for _, target in targets]


# Escaping -----------------------------------------------------------------------------

def markdown_escape(value: Any) -> str:
    """Escape Markdown and inline HTML characters so a value renders as text on one line."""
    text = " ".join(str(value if value is not None else "").split())
    return escape_markdown_characters(text)


def markdown_escape_block(value: Any) -> str:
    """Escape a value like ``md`` but keep its paragraphs, separated by blank lines."""
    text = str(value if value is not None else "")
    paragraphs = [escape_block_start(markdown_escape(part)) for part in re.split(r"\n\s*\n", text)]
    return "\n\n".join(part for part in paragraphs if part)


def _number(value: Any, digits: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and digits == 0:
        return str(int(value))
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


# Citations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CitationStyle:
    """A compiled citation pattern: literal parts and optional groups of alternatives.

    In the pattern, ``{field}`` is a case field (id, level, province, date).
    ``[...]`` is an optional group, left out when a field in it is empty.
    Inside a group, ``|`` separates alternatives, and the first whose fields
    are all present is used. ``[[`` and ``]]`` write literal brackets.
    Outside a group an empty field is written as "unknown".
    """

    pattern: str
    parts: tuple[tuple[str, ...], ...]
    optional: tuple[bool, ...]

    @classmethod
    def parse(cls, pattern: str) -> CitationStyle:
        """Compile ``pattern``; raise ConfigError on an unknown field or unclosed group."""
        parts: list[tuple[str, ...]] = []
        optional: list[bool] = []
        literal, group = "", None
        index = 0
        while index < len(pattern):
            pair = pattern[index : index + 2]
            character = pattern[index]
            if pair in ("[[", "]]"):
                if group is None:
                    literal += character
                else:
                    group[-1] += character
                index += 2
                continue
            if character == "[":
                if group is not None:
                    raise _citation_error(pattern, "a '[' group cannot contain another '['")
                if literal:
                    parts.append((literal,))
                    optional.append(False)
                literal, group = "", [""]
            elif character == "]":
                if group is None:
                    raise _citation_error(pattern, "a ']' has no '[' before it")
                parts.append(tuple(group))
                optional.append(True)
                group = None
            elif character == "|" and group is not None:
                group.append("")
            elif group is not None:
                group[-1] += character
            else:
                literal += character
            index += 1
        if group is not None:
            raise _citation_error(pattern, "a '[' group is not closed with ']'")
        if literal:
            parts.append((literal,))
            optional.append(False)
        style = cls(pattern, tuple(parts), tuple(optional))
        for alternatives in style.parts:
            for text in alternatives:
                _citation_fields(pattern, text)
        return style

    def format(self, values: Mapping[str, Any]) -> str:
        """Return the citation for one case's ``values``."""
        output = []
        for alternatives, is_optional in zip(self.parts, self.optional):
            if not is_optional:
                filled = {name: _present(values.get(name)) or "unknown" for name in CITATION_FIELDS}
                output.append(alternatives[0].format(**filled))
                continue
            for text in alternatives:
                needed = _citation_fields(self.pattern, text)
                if all(_present(values.get(name)) for name in needed):
                    filled = {name: _present(values.get(name)) for name in CITATION_FIELDS}
                    output.append(text.format(**filled))
                    break
        return "".join(output)


def _present(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _citation_fields(pattern: str, text: str) -> list[str]:
    """Return the field names in ``text``; raise ConfigError on an invalid one."""
    names = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as error:
        raise _citation_error(pattern, str(error)) from None
    for _, name, _, _ in parsed:
        if name is None:
            continue
        if name not in CITATION_FIELDS:
            raise _citation_error(pattern, f"unknown field {{{name}}}")
        names.append(name)
    return names


def _citation_error(pattern: str, reason: str) -> ConfigError:
    return ConfigError(
        f"invalid citation style {pattern!r} in [report]: {reason}.",
        fix=f"Use the fields {', '.join('{' + name + '}' for name in CITATION_FIELDS)}, "
        "optional parts in [...] and alternatives separated by '|'.",
    )


def cite(style: str | CitationStyle, case_id: str, case: Mapping[str, Any]) -> str:
    """Return the citation of interview ``case_id`` in ``style``."""
    if isinstance(style, str):
        style = CitationStyle.parse(style)
    return style.format({**case, "id": case_id})


# Context ------------------------------------------------------------------------------


def report_context(
    db: sqlite_utils.Database,
    settings: dict[str, Any],
    title: str,
    redactor: Redactor | None = None,
) -> dict[str, Any]:
    """Gather everything the templates show into plain dicts and lists.

    Every string from the data is redacted. The build details (versions,
    hash, options, time) are written as they are.
    """
    redactor = redactor or Redactor.none()
    statuses = tuple(settings.get("statuses", DEFAULT_STATUSES))
    per_target = int(settings.get("quotes_per_target", DEFAULT_QUOTES_PER_TARGET))
    style = CitationStyle.parse(str(settings.get("citation", DEFAULT_CITATION)))
    cases = _cases(db)
    scores = _scores(db)
    eligible = [row for row in scores if row["eligible"]]
    cuts = _cuts(eligible, settings)
    names = dict(db.execute("SELECT id, name FROM targets").fetchall())

    from qualkit.report_evidence import (
        displays,
        number_quotes,
        transcripts,
        triangulation_rules,
    )

    rules = triangulation_rules(settings.get("triangulation"))
    with_transcripts = settings.get("transcripts", True) is not False
    target_displays = displays(db, statuses, per_target, style.format, rules)
    quotes = number_quotes(target_displays, with_context=with_transcripts)
    # Transcript views redact themselves span by span (see transcript_pieces).
    views = transcripts(db, quotes, statuses, style.format, cases, redactor) if with_transcripts else []
    quoted = {quote["case_id"] for quote in quotes}
    data = {
        "title": title,
        "memos": _memos(db, "project"),
        "code_memos": _code_memos(db),
        "appendix": _appendix(cases, quoted),
        "conflicts": _conflicts(db),
        "scores": eligible,
        "ineligible": [row for row in scores if not row["eligible"]],
        "typology": _typology(scores),
        "displays": target_displays,
    }
    data = redact_tree(data, redactor)
    data["transcripts"] = views
    data["figures"] = []
    if settings.get("figures", True) is not False:
        from qualkit.report_figures import report_figures

        data["figures"] = report_figures(eligible, scores, cuts, names, redactor)

    return {
        **data,
        "cuts": cuts,
        "statuses": statuses,
        "quotes_per_target": per_target,
        "counts": _counts(db, statuses),
        "build": _build_details(db, settings, statuses, per_target, style, cuts, redactor, rules),
    }


def quoted_interviews(db: sqlite_utils.Database, settings: dict[str, Any]) -> set[str]:
    """Return the ids of the interviews the report quotes, under the same settings."""
    from qualkit.report_evidence import displays, triangulation_rules

    statuses = tuple(settings.get("statuses", DEFAULT_STATUSES))
    per_target = int(settings.get("quotes_per_target", DEFAULT_QUOTES_PER_TARGET))
    style = CitationStyle.parse(str(settings.get("citation", DEFAULT_CITATION)))
    rules = triangulation_rules(settings.get("triangulation"))
    found = displays(db, statuses, per_target, style.format, rules)
    return {quote["case_id"] for display in found for quote in display["quotes"]}


def redact_tree(value: Any, redactor: Redactor) -> Any:
    """Return ``value`` with every string in it (through dicts, lists and tuples) redacted.

    Dict keys, anchors and links made by qualkit, and strings marked safe
    for HTML (``markupsafe.Markup``) are left alone.
    """
    if not redactor:
        return value
    if isinstance(value, str):
        if hasattr(value, "__html__"):
            return value
        return redactor.apply(value)
    if isinstance(value, dict):
        return {
            key: item if _is_link_key(key) else redact_tree(item, redactor)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_tree(item, redactor) for item in value]
    if isinstance(value, tuple):
        return tuple(redact_tree(item, redactor) for item in value)
    return value


def _is_link_key(key: Any) -> bool:
    """Return whether a context key contains an anchor or link made by qualkit, not data."""
    return isinstance(key, str) and (key.endswith("anchor") or key == "href")


def _build_details(
    db: sqlite_utils.Database,
    settings: dict[str, Any],
    statuses: tuple[str, ...],
    per_target: int,
    style: CitationStyle,
    cuts: dict[str, Any],
    redactor: Redactor,
    rules: Any,
) -> dict[str, Any]:
    """Return what a reader needs to reproduce the report: versions, hash, options, time."""
    codebooks = [
        {"id": row[0], "version": row[1]}
        for row in db.execute("SELECT id, version FROM codebooks ORDER BY id, version")
    ]
    options = [
        ("coding statuses", ", ".join(statuses)),
        ("quotes per target", str(per_target)),
        ("priority cut", _cut_text(cuts["priority"], cuts["priority_rule"])),
        ("negotiability cut", _cut_text(cuts["negotiability"], cuts["negotiability_rule"])),
        ("citation style", style.pattern),
        (
            "redaction",
            f"on, {len(redactor)} term(s)" if redactor else "off",
        ),
        ("templates", "custom" if settings.get("templates") else "bundled"),
    ]
    options += [
        (f"triangulation: {name.replace('_', ' ')}", _option_text(value))
        for name, value in rules_as_dict(rules).items()
    ]
    return {
        "qualkit_version": qualkit.__version__,
        "codebooks": codebooks,
        "content_hash": store.content_hash(db),
        "data_as_of": store.get_meta(db, "updated_at"),
        "rendered_at": rendering_time(),
        "options": options,
        "redacted": bool(redactor),
        "redaction_terms": len(redactor),
    }


def _option_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "none"
    return "none" if value is None else str(value)


def _cut_text(value: float | None, rule: str) -> str:
    if value is None:
        return "none (no eligible targets)"
    return f"{value:.2f} ({rule})"


def _cases(db: sqlite_utils.Database) -> dict[str, dict[str, Any]]:
    # One pass over sources finds every case with a transcript. An EXISTS per
    # case would read the sources table once per case.
    with_sources = {
        row[0] for row in db.execute("SELECT DISTINCT case_id FROM sources")
    }
    rows = db.execute(
        "SELECT c.id, c.province, c.level, c.date, c.appendix_group "
        "FROM cases c ORDER BY c.id"
    )
    keys = ("id", "province", "level", "date", "group", "has_transcript")
    cases: dict[str, dict[str, Any]] = {}
    for row in rows:
        cases[row[0]] = dict(zip(keys, (*row, int(row[0] in with_sources))))
    return cases


def _memos(db: sqlite_utils.Database, about: str, about_id: str | None = None) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT about_id, coder, text, created_at FROM memos WHERE about = ? "
        "AND (? IS NULL OR about_id = ?) ORDER BY created_at, id",
        [about, about_id, about_id],
    )
    return [dict(zip(("about_id", "coder", "text", "created_at"), row)) for row in rows]


def _code_memos(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Return the codes that have memos, with their label, definition and memos."""
    by_code: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for memo in _memos(db, "code"):
        by_code[memo["about_id"]].append(memo)
    codes = []
    for code_id, label, definition in db.execute(
        "SELECT id, label, definition FROM codes ORDER BY position, id"
    ).fetchall():
        if code_id in by_code:
            codes.append({"id": code_id, "label": label, "definition": definition, "memos": by_code[code_id]})
    return codes


def _conflicts(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    keys = ("case_id", "field", "kept_value", "kept_origin", "other_value", "other_origin")
    rows = db.execute(f"SELECT {', '.join(keys)} FROM metadata_conflicts ORDER BY 1, 2")
    return [dict(zip(keys, row)) for row in rows]


def _appendix(cases: dict[str, dict[str, Any]], quoted: set[str]) -> list[dict[str, Any]]:
    """Group interviews as the study's appendix does: by group, else place and level."""
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for case in cases.values():
        key = case["group"] or f"{case['province']}|{case['level']}"
        groups[key].append({**case, "quoted": case["id"] in quoted})
    rows = []
    for members in groups.values():
        first = members[0]
        rows.append(
            {
                "interviews": members,
                "province": first["province"],
                "level": first["level"],
                "order": _group_order(first["group"]),
            }
        )
    rows.sort(key=lambda row: (row["order"], row["province"] or "", row["level"] or ""))
    return rows


def _group_order(group: Any) -> tuple[int, Any]:
    text = str(group) if group is not None else ""
    return (0, int(text)) if text.isdigit() else (1, text)


def _scores(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    cursor = db.execute(
        "SELECT t.name, t.researcher_order, t.note, s.* FROM scores s "
        "JOIN targets t ON t.id = s.target_id "
        "ORDER BY s.eligible DESC, coalesce(t.researcher_order, s.variation_order, 999), t.name"
    )
    names = [column[0] for column in cursor.description]
    rows = [dict(zip(names, row)) for row in cursor]
    for row in rows:
        row["options"] = json.loads(row["options"] or "{}")
    return rows


def _typology(scores: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for row in scores:
        if not row["eligible"] or not row.get("cell"):
            continue
        key = (row["negotiability_level"], row["priority_level"])
        cell = cells.setdefault(
            key,
            {"negotiability": key[0], "priority": key[1], "response": row["expected_response"], "targets": []},
        )
        cell["targets"].append(row["name"])
    order = [("more", "low"), ("more", "high"), ("less", "low"), ("less", "high")]
    return [cells[key] for key in order if key in cells]


def _cuts(eligible: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """Return the typology's cut points and whether each is the median split."""
    priorities = [row["mean_points"] for row in eligible if row["mean_points"] is not None]
    frequencies = [row["frequency"] for row in eligible if row["frequency"] is not None]
    priority_cut = settings.get("priority_cut")
    negotiability_cut = settings.get("negotiability_cut")

    return {
        "priority": _cut_or_median(priority_cut, priorities),
        "priority_rule": "given" if priority_cut is not None else "median",
        "negotiability": _cut_or_median(negotiability_cut, frequencies),
        "negotiability_rule": "given" if negotiability_cut is not None else "median",
    }


def _cut_or_median(cut: float | None, values: list[float]) -> float | None:
    if cut is not None:
        return cut
    if not values:
        return None
    return statistics.median(values)


def _counts(db: sqlite_utils.Database, statuses: tuple[str, ...]) -> dict[str, int]:
    marks = ",".join("?" for _ in statuses)
    return {
        "sources": db["sources"].count,
        "cases": db["cases"].count,
        "codings": db.execute(f"SELECT count(*) FROM codings WHERE status IN ({marks})", list(statuses)).fetchone()[0],
        "suggested": db.execute("SELECT count(*) FROM codings WHERE status = 'suggested'").fetchone()[0],
        "links": db["quote_links"].count,
    }
