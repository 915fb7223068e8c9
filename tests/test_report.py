"""Tests of the evidence report: citations, transcript views, escaping, redaction,
templates and reproducibility.

A small project with one hostile transcript is built once per module; tests
that change it work on a copy. The sample project (conftest.py) is used
read-only.
"""

from __future__ import annotations

import base64
import html
import re
import shutil
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from qualkit import store
from qualkit.cli import cli
from qualkit.errors import ConfigError
from qualkit.redaction import Redactor
from qualkit.report import (
    DEFAULT_CITATION,
    CitationStyle,
    copy_templates,
    markdown_escape,
    mask_timestamps,
    render_report,
)
from qualkit.report_evidence import transcript_markdown, transcript_pieces
from qualkit.report_figures import sanitize_svg
from qualkit.resources import resource_dir

HOSTILE = r"<script>alert(1)</script> & 100% snake_case {braces} C:\temp"

SMALL_CONFIG = """\
[project]
title = "Escaping & redaction test"
database = "qualkit.db"
codebook = "target_bargaining"
targets = "targets.yaml"

[import]
transcripts = ["transcripts/*.md"]

[report]
redact = "redact.txt"
"""

SMALL_TARGETS = """\
targets:
  - id: tourism_revenue
    name: Tourism revenue
    category: economic
    aliases:
      en: [tourism revenue]
      zh: [旅游收入]
"""

# The front matter's "setting" becomes a column of the exported matrix.
SMALL_TRANSCRIPT = f"""\
---
id: X20T01
province: Hunan
level: city
date: 2020-06-01
language: en
setting: Office of Zhang Wei (张伟), county seat
---

Interviewer: How did the tourism targets go?

Respondent: We put in a lowball bid for tourism revenue, as ZHANG WEI told us, and typed {HOSTILE} into the form.

Respondent: Zhang  Wei said the lowball bid for tourism revenue was agreed, and 张伟 signed it.
"""

# Mixed case on purpose: the list matches case-insensitively.
REDACTION_LIST = "zhang wei\n张伟\n"
REDACTED_TERMS = (re.compile(r"zhang\s+wei", re.IGNORECASE), re.compile("张伟"))


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="qualkit")


@pytest.fixture(scope="module")
def small_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built project with the hostile transcript, a redaction list and memos."""
    folder = tmp_path_factory.mktemp("report") / "small"
    (folder / "transcripts").mkdir(parents=True)
    (folder / "qualkit.toml").write_text(SMALL_CONFIG, encoding="utf-8")
    (folder / "targets.yaml").write_text(SMALL_TARGETS, encoding="utf-8")
    (folder / "redact.txt").write_text(REDACTION_LIST, encoding="utf-8")
    (folder / "transcripts" / "X20T01.md").write_text(SMALL_TRANSCRIPT, encoding="utf-8")
    result = invoke("build", str(folder))
    assert result.exit_code == 0, result.stderr
    for args in (
        ("--text", "Project memo: Zhang Wei arranged the visits."),
        ("--code", "strategy", "--text", "Code memo about 张伟's framing."),
        ("--source", "X20T01", "--text", "Source memo: ZHANG WEI asked for anonymity."),
    ):
        result = invoke("--project", str(folder), "memo", "add", "--coder", "tester", *args)
        assert result.exit_code == 0, result.stderr
    result = invoke("--project", str(folder), "report")
    assert result.exit_code == 0, result.stderr
    return folder


@pytest.fixture
def small_copy(small_project: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "small"
    shutil.copytree(small_project, folder)
    return folder


class ElementCollector(HTMLParser):
    """Collect script elements, text and attributes of a parsed HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self.text: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [(name, value or "") for name, value in attrs]
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)


def parse_html(path: Path) -> ElementCollector:
    collector = ElementCollector()
    collector.feed(path.read_text(encoding="utf-8"))
    return collector


# Citations

# The first case is the form in which the reference study on bargaining over
# performance targets in Chinese local governments cites its interviews.


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            {"id": "G36S64", "level": "city", "province": "Guizhou"},
            "Interview with a city-level official in Guizhou province (Interview #G36S64)",
        ),
        (
            {"id": "G36S64", "level": None, "province": "Guizhou"},
            "Interview with an official in Guizhou province (Interview #G36S64)",
        ),
        (
            {"id": "G36S64", "level": "city", "province": ""},
            "Interview with a city-level official (Interview #G36S64)",
        ),
        ({"id": "G36S64"}, "Interview with an official (Interview #G36S64)"),
    ],
)
def test_default_citation(case: dict[str, Any], expected: str) -> None:
    assert CitationStyle.parse(DEFAULT_CITATION).format(case) == expected


def test_plain_citation_fills_unknown() -> None:
    style = CitationStyle.parse("Interview #{id}, {level}-level official, {province}")

    assert style.format({"id": "B16S021", "level": "city"}) == "Interview #B16S021, city-level official, unknown"


def test_citation_literal_brackets() -> None:
    style = CitationStyle.parse("[[{id}]][, {date}]")

    assert style.format({"id": "A1", "date": "2016"}) == "[A1], 2016"
    assert style.format({"id": "A1"}) == "[A1]"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("Interview {name}", "unknown field {name}"),
        ("Interview [with {level}", "not closed"),
        ("Interview with {level}]", "no '['"),
        ("[a [b]]", "cannot contain"),
        ("{id.__class__}", "unknown field"),
    ],
)
def test_invalid_citation_rejected(pattern: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        CitationStyle.parse(pattern)


# Transcript views


def test_overlapping_codings_split_at_boundaries() -> None:
    text = "abcdefghij"
    codings = [(0, 5, "A"), (3, 8, "B")]
    quotes = [{"number": 1, "start": 3, "end": 8, "anchor": "q1", "context_anchor": "ctx-q1"}]

    pieces = transcript_pieces(text, codings, quotes, Redactor.none())

    assert [piece["text"] for piece in pieces] == ["abc", "de", "fgh", "ij"]
    assert [piece["codes"] for piece in pieces] == [["A"], ["A", "B"], ["B"], []]
    assert [piece["quotes"] for piece in pieces] == [[], [1], [1], []]
    assert pieces[1]["anchors"] == [{"number": 1, "id": "ctx-q1", "href": "#q1"}]
    assert [piece["id"] for piece in pieces] == ["m1", "m2", "m3", None]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(1, 12), st.sampled_from("ABC")),
        max_size=8,
    )
)
def test_pieces_match_brute_force(raw: list[tuple[int, int, str]]) -> None:
    text = "x" * 45
    codings = [(start, start + length, code) for start, length, code in raw]

    pieces = transcript_pieces(text, codings, [], Redactor.none())

    assert "".join(piece["text"] for piece in pieces) == text
    position = 0
    for piece in pieces:
        for offset in range(position, position + len(piece["text"])):
            expected = sorted({code for start, end, code in codings if start <= offset < end})
            assert piece["codes"] == expected, (offset, piece)
        position += len(piece["text"])


def test_redacted_name_cut_stays_whole() -> None:
    text = "We met Zhang Wei today."
    # A coding ends inside the name, so the name is cut in two.
    codings = [(0, 10, "A")]
    redactor = Redactor.from_lines(["zhang wei"])

    pieces = transcript_pieces(text, codings, [], redactor)
    joined = "".join(piece["text"] for piece in pieces)

    assert joined == "We met [REDACTED] today."
    assert pieces[0]["codes"] == ["A"]
    assert "Wei" not in joined


def test_transcript_markdown_bold_and_escaped() -> None:
    pieces = [
        {"text": "Respondent: ", "codes": [], "quotes": [], "anchors": []},
        {"text": "a_b *c* ", "codes": ["A"], "quotes": [1], "anchors": [{"number": 1, "id": "x", "href": "#q1"}]},
        {"text": "rest\n\nNext turn", "codes": [], "quotes": [], "anchors": []},
    ]

    markdown = transcript_markdown(pieces)

    assert markdown == "Respondent: \\[Q1\\] **a\\_b \\*c\\*** rest\n\nNext turn"


# Escaping


def test_markdown_escape_specials() -> None:
    assert markdown_escape(HOSTILE) == (
        r"\<script\>alert(1)\</script\> \& 100\% snake\_case \{braces\} C:\\temp"
    )


def test_html_quote_escaped(small_project: Path) -> None:
    page = parse_html(small_project / "report" / "report.html")
    text = "".join(page.text)

    assert HOSTILE in text


def test_html_only_bundled_script(small_project: Path) -> None:
    page = parse_html(small_project / "report" / "report.html")
    bundled = (resource_dir("templates") / "report.js").read_text(encoding="utf-8")

    assert page.scripts == [bundled]


def test_html_no_event_attributes(small_project: Path) -> None:
    page = parse_html(small_project / "report" / "report.html")

    assert [name for name, _ in page.attributes if name.startswith("on")] == []


def test_html_no_external_url(small_project: Path) -> None:
    page = parse_html(small_project / "report" / "report.html")
    links = [value for name, value in page.attributes if name in ("href", "src")]

    assert links
    for value in links:
        assert value.startswith(("#", "data:")), value


def test_markdown_quote_escaped(small_project: Path) -> None:
    markdown = (small_project / "report" / "report.md").read_text(encoding="utf-8")

    assert r"\<script\>alert(1)\</script\> \& 100\% snake\_case \{braces\} C:\\temp" in markdown
    assert re.search(r"(?<!\\)</?script", markdown, re.IGNORECASE) is None


def test_svg_sanitized() -> None:
    hostile = (
        b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" onload="x()">'
        b"<!-- Zhang Wei --><script>alert(1)</script>"
        b"<style>@import url(http://example.invalid/a.css);</style>"
        b"<foreignObject><p>x</p></foreignObject>"
        b'<use xlink:href="#glyph"/><use xlink:href="http://example.invalid/a.svg#b"/>'
        b'<rect style="fill:url(http://example.invalid/)" fill="url(#gradient)"/></svg>'
    )

    cleaned = sanitize_svg(hostile).decode("utf-8")

    for removed in ("script", "onload", "@import", "foreignObject", "example.invalid", "Zhang"):
        assert removed not in cleaned
    assert 'xlink:href="#glyph"' in cleaned
    assert 'fill="url(#gradient)"' in cleaned


# Redaction in every output


def output_texts(path: Path) -> list[str]:
    """Return the text of a file for a redaction scan: XML parts of zip files, decoded."""
    data = path.read_bytes()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return [
                html.unescape(archive.read(name).decode("utf-8", errors="replace"))
                for name in archive.namelist()
                if name.endswith((".xml", ".rels"))
            ]
    if path.suffix == ".dta":
        frame = pd.read_stata(path)
        return [data.decode("utf-8", errors="replace"), frame.to_csv()]
    text = data.decode("utf-8")
    texts = [text, html.unescape(text)]
    if path.suffix == ".html":
        texts.append("".join(parse_html(path).text))
        for encoded in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", text):
            texts.append(base64.b64decode(encoded).decode("utf-8"))
    return texts


def test_redacted_names_in_no_output(small_copy: Path) -> None:
    out = small_copy / "out"
    commands = [
        ("report", "--out", str(out / "report")),
        ("report", "appendix", "--out", str(out / "appendix")),
    ]
    commands += [
        ("export", "matrix", str(out / f"matrix.{suffix}"), "--attribute", "setting", "--status", "suggested")
        for suffix in ("csv", "xlsx", "dta")
    ]
    for command in commands:
        result = invoke("--project", str(small_copy), *command)
        assert result.exit_code == 0, (command, result.stderr)

    files = sorted(path for path in out.rglob("*") if path.is_file())
    suffixes = {path.suffix for path in files}
    assert {".html", ".md", ".tex", ".docx", ".csv", ".xlsx", ".dta"} <= suffixes
    for path in files:
        for text in output_texts(path):
            for term in REDACTED_TERMS:
                assert term.search(text) is None, f"{term.pattern} in {path.name}"


def test_redaction_replacement_shown(small_project: Path) -> None:
    markdown = (small_project / "report" / "report.md").read_text(encoding="utf-8")

    assert r"\[REDACTED\]" in markdown
    assert "list of 2 term(s)" in markdown


def test_matrix_cells_redacted(small_copy: Path) -> None:
    target = small_copy / "matrix.csv"
    result = invoke(
        "--project", str(small_copy), "export", "matrix", str(target),
        "--attribute", "setting", "--status", "suggested",
    )
    frame = pd.read_csv(target)

    assert result.exit_code == 0, result.stderr
    assert frame.loc[0, "setting"] == "Office of [REDACTED] ([REDACTED]), county seat"


# Memos and content


def test_memos_where_they_belong(small_project: Path) -> None:
    markdown = (small_project / "report" / "report.md").read_text(encoding="utf-8")
    project_part = markdown.split("## Project memos", 1)[1].split("\n## ", 1)[0]
    codes_part = markdown.split("## Code memos", 1)[1].split("\n## ", 1)[0]
    transcripts_part = markdown.split("## Transcripts of quoted interviews", 1)[1]

    assert "Project memo: [REDACTED] arranged" in project_part.replace("\\", "")
    assert "Code memo about [REDACTED]'s framing." in codes_part.replace("\\", "")
    assert "Source memo: [REDACTED] asked" in transcripts_part.replace("\\", "")


def test_quote_links_both_ways(sample_project: Any) -> None:
    page = (sample_project.folder / "report" / "report.html").read_text(encoding="utf-8")
    quote_ids = set(re.findall(r'<blockquote id="(q\d+)"', page))
    to_context = set(re.findall(r'href="#(ctx-q\d+)"', page))
    context_ids = set(re.findall(r'class="back" id="(ctx-q\d+)" href="#(q\d+)"', page))

    assert quote_ids
    assert to_context == {f"ctx-{quote}" for quote in quote_ids}
    assert {anchor for anchor, _ in context_ids} == to_context
    assert {quote for _, quote in context_ids} == quote_ids


def test_figures_embedded_as_svg(sample_project: Any) -> None:
    page = (sample_project.folder / "report" / "report.html").read_text(encoding="utf-8")
    sources = re.findall(r'<img src="([^"]+)"', page)

    assert len(sources) == 2
    for source in sources:
        assert source.startswith("data:image/svg+xml;base64,")


def test_default_citation_in_new_project(small_project: Path) -> None:
    markdown = (small_project / "report" / "report.md").read_text(encoding="utf-8")

    assert "— Interview with a city-level official in Hunan province (Interview \\#X20T01)" in markdown


# Reproducibility


def test_report_states_build_details(small_project: Path) -> None:
    markdown = (small_project / "report" / "report.md").read_text(encoding="utf-8")
    db = store.open_database(small_project / "qualkit.db", create=False)
    try:
        digest = store.content_hash(db)
        codebooks = db.execute("SELECT id, version FROM codebooks").fetchall()
    finally:
        db.close()

    assert f"Content hash: `{digest}`" in markdown
    assert "qualkit version: 0.1.0" in markdown.replace("\\", "")
    for codebook_id, version in codebooks:
        assert f"{codebook_id} {version}".replace("_", "\\_") in markdown
    assert "Coding statuses: accepted, suggested" in markdown
    assert "Quotes per target: 5" in markdown
    assert "Redaction: on, 2 term(s)" in markdown
    assert re.search(r"^Rendered at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", markdown, re.MULTILINE)


def test_render_twice_identical_but_time(
    small_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = store.open_database(small_project / "qualkit.db", create=False)
    options = {"redact": str(small_project / "redact.txt")}
    try:
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
        first = render_report(db, tmp_path / "first", settings=options)
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1800000000")
        second = render_report(db, tmp_path / "second", settings=options)
    finally:
        db.close()

    for one, other in zip(first, second):
        one_text = one.read_text(encoding="utf-8")
        other_text = other.read_text(encoding="utf-8")
        assert "2023-11-14T22:13:20Z" in one_text
        assert "2027-01-15T08:00:00Z" in other_text
        assert one.read_bytes() != other.read_bytes()
        masked = [re.sub(r"(?m)^.*Rendered at .*$", "", text) for text in (one_text, other_text)]
        assert masked[0].encode("utf-8") == masked[1].encode("utf-8")


def test_rerender_keeps_file(small_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = small_copy / "report" / "report.md"
    before = target.read_bytes()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1800000000")

    result = invoke("--project", str(small_copy), "report")

    assert result.exit_code == 0, result.stderr
    assert target.read_bytes() == before


def test_bad_source_date_epoch(small_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")

    result = invoke("--project", str(small_copy), "report")

    assert result.exit_code == 1
    assert "SOURCE_DATE_EPOCH='yesterday'" in result.stderr


def test_mask_timestamps() -> None:
    assert mask_timestamps("at 2026-12-04T17:45:03Z.") == "at YYYY-MM-DDTHH:MM:SSZ."


# Templates


def test_templates_copy_refuses_overwrite(tmp_path: Path) -> None:
    first = invoke("report", "templates", "--copy", str(tmp_path / "mine"))
    (tmp_path / "mine" / "report.md.j2").write_text("edited", encoding="utf-8")
    second = invoke("report", "templates", "--copy", str(tmp_path / "mine"))

    assert first.exit_code == 0, first.stderr
    assert second.exit_code == 1
    assert "--force" in second.stderr
    assert (tmp_path / "mine" / "report.md.j2").read_text(encoding="utf-8") == "edited"


def test_templates_copy_force(tmp_path: Path) -> None:
    copy_templates(tmp_path)
    (tmp_path / "report.md.j2").write_text("edited", encoding="utf-8")

    result = invoke("report", "templates", "--copy", str(tmp_path), "--force")

    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "report.md.j2").read_bytes() == (resource_dir("templates") / "report.md.j2").read_bytes()


def use_templates(project: Path, folder: str) -> None:
    config = project / "qualkit.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[report]\n", f'[report]\ntemplates = "{folder}"\n'), encoding="utf-8")


def test_configured_templates_used(small_copy: Path) -> None:
    copy_templates(small_copy / "mine")
    template = small_copy / "mine" / "report.md.j2"
    template.write_text("Custom report for {{ title | md }}\n", encoding="utf-8")
    use_templates(small_copy, "mine")

    result = invoke("--project", str(small_copy), "report", "--format", "md")

    assert result.exit_code == 0, result.stderr
    assert (small_copy / "report" / "report.md").read_text(encoding="utf-8") == (
        "Custom report for Escaping \\& redaction test\n"
    )


def test_template_syntax_error_located(small_copy: Path) -> None:
    copy_templates(small_copy / "mine")
    template = small_copy / "mine" / "report.md.j2"
    template.write_text("line one\nline two\n{% for x in %}\n", encoding="utf-8")
    use_templates(small_copy, "mine")

    result = invoke("--project", str(small_copy), "report", "--format", "md")

    assert result.exit_code == 1
    assert f"{template}, line 3: template syntax error" in result.stderr


def test_template_undefined_name_located(small_copy: Path) -> None:
    copy_templates(small_copy / "mine")
    template = small_copy / "mine" / "report.html.j2"
    template.write_text("<p>{{ title }}</p>\n<p>{{ no_such_name.field }}</p>\n", encoding="utf-8")
    use_templates(small_copy, "mine")

    result = invoke("--project", str(small_copy), "report", "--format", "html")

    assert result.exit_code == 1
    assert f"{template}, line 2: template error" in result.stderr
    assert "no_such_name" in result.stderr


def test_missing_templates_folder(small_copy: Path) -> None:
    use_templates(small_copy, "absent")

    result = invoke("--project", str(small_copy), "report")

    assert result.exit_code == 1
    assert "absent" in result.stderr
    assert "does not exist" in result.stderr


# The command group


def test_report_without_subcommand(small_copy: Path) -> None:
    shutil.rmtree(small_copy / "report")

    result = invoke("--project", str(small_copy), "report")

    assert result.exit_code == 0, result.stderr
    assert sorted(path.name for path in (small_copy / "report").iterdir()) == ["report.html", "report.md"]


def test_group_options_before_subcommand_rejected(small_copy: Path) -> None:
    result = invoke("--project", str(small_copy), "report", "--out", "x", "appendix")

    assert result.exit_code == 2
    assert "go after the subcommand" in result.stderr


def test_redact_option_overrides(small_copy: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text("tourism\n", encoding="utf-8")

    result = invoke("--project", str(small_copy), "report", "--out", str(tmp_path / "out"), "--redact", str(other))
    markdown = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")

    assert result.exit_code == 0, result.stderr
    assert "tourism" not in markdown.lower()
    assert "Redaction: on, 1 term(s)" in markdown


def test_unknown_report_setting_rejected(small_copy: Path) -> None:
    config = small_copy / "qualkit.toml"
    config.write_text(config.read_text(encoding="utf-8") + "redcat = 1\n", encoding="utf-8")

    result = invoke("--project", str(small_copy), "report")

    assert result.exit_code == 1
    assert "unknown setting 'redcat' in [report]" in result.stderr


def test_invalid_redaction_list_located(small_copy: Path) -> None:
    (small_copy / "redact.txt").write_text("fine\nre:(unclosed\n", encoding="utf-8")

    result = invoke("--project", str(small_copy), "report")

    assert result.exit_code == 1
    assert "redact.txt, line 2" in result.stderr


def test_invalid_citation_in_config(small_copy: Path) -> None:
    config = small_copy / "qualkit.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[report]\n", '[report]\ncitation = "Interview {who}"\n'), encoding="utf-8")

    result = invoke("--project", str(small_copy), "report")

    assert result.exit_code == 1
    assert "unknown field {who}" in result.stderr


def test_default_config_citation_valid(tmp_path: Path) -> None:
    from qualkit.config import load_config

    result = invoke("init", str(tmp_path / "new"))
    config = load_config(tmp_path / "new")

    assert result.exit_code == 0, result.stderr
    assert config.report["citation"] == DEFAULT_CITATION


def test_report_paths_relative_to_project(small_project: Path) -> None:
    from qualkit.config import load_config

    config = load_config(small_project)

    assert config.report["redact"] == str(small_project.resolve() / "redact.txt")


def test_triangulation_settings_used(small_copy: Path) -> None:
    config = small_copy / "qualkit.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + "\n[triangulation]\nmin_bargaining_interviews = 1\n",
        encoding="utf-8",
    )

    result = invoke("--project", str(small_copy), "report", "--format", "md")
    markdown = (small_copy / "report" / "report.md").read_text(encoding="utf-8")

    assert result.exit_code == 0, result.stderr
    assert "Triangulation: min bargaining interviews: 1" in markdown
    assert "thresholds: 1 and 1" in markdown


def test_unknown_triangulation_setting(small_copy: Path) -> None:
    config = small_copy / "qualkit.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[triangulation]\nmin_interviews = 1\n", encoding="utf-8")

    result = invoke("--project", str(small_copy), "report")

    assert result.exit_code == 1
    assert "'min_interviews'" in result.stderr
    assert "[triangulation]" in result.stderr
