"""The Python API: one object per project, the same operations as the CLI.

Tables come back as pandas DataFrames. Each write method runs in one
transaction, so a failure leaves the database as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlite_utils

from qualkit import store
from qualkit.autocode import AutocodeOptions, AutocodeResult, Autocoder, autocode, needs_tokens
from qualkit.cases import DEFAULT_LEVELS, import_manifest
from qualkit.codebook import Codebook, load_codebook, resolve_codebook_path
from qualkit.codebook_versions import store_codebook
from qualkit.config import CONFIG_NAME, DEFAULT_CONFIG, ProjectConfig, load_config
from qualkit.errors import NotFoundError, QualkitError
from qualkit.negotiability import NegotiabilityOptions
from qualkit.panel import (
    PanelImport,
    UnitAliases,
    compute_scores,
    import_panel_files,
    unit_aliases_from_settings,
)
from qualkit.sources import ImportResult, import_sources
from qualkit.targets import link_quotes, load_targets, store_targets

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    """The outcome of each step of ``Project.build``."""

    imported: ImportResult | None = None
    autocoded: AutocodeResult | None = None
    links: int = 0
    panel: list[PanelImport] = field(default_factory=list)
    report_files: list[Path] = field(default_factory=list)


def init_project(folder: str | Path, *, title: str | None = None) -> Path:
    """Create a project folder with a ``qualkit.toml`` and an empty database."""
    folder = Path(folder)
    config_path = folder / CONFIG_NAME
    if config_path.exists():
        raise QualkitError(f"{config_path} already exists; the project is set up.")
    (folder / "transcripts").mkdir(parents=True, exist_ok=True)
    config_path.write_text(DEFAULT_CONFIG.format(title=title or folder.resolve().name), encoding="utf-8")
    (folder / "targets.yaml").write_text("targets: []\n", encoding="utf-8")
    store.open_database(folder / "qualkit.db").close()
    return config_path


class Project:
    """A qualkit database, optionally with the project folder's settings."""

    def __init__(
        self, database: str | Path, config: ProjectConfig | None = None, *, create: bool = True
    ) -> None:
        self.config = config
        self.db: sqlite_utils.Database = store.open_database(database, create=create)

    @classmethod
    def open(
        cls, folder: str | Path, database: str | Path | None = None, *, create: bool = True
    ) -> Project:
        """Open the project in ``folder`` using its ``qualkit.toml``."""
        config = load_config(folder)
        return cls(database or config.database, config, create=create)

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Settings -----------------------------------------------------------

    @property
    def levels(self) -> tuple[str, ...]:
        """The government levels metadata may use."""
        return self.config.levels if self.config else DEFAULT_LEVELS

    def codebook(self, reference: str | Path | None = None) -> Codebook:
        """Load the codebook named by ``reference`` or by the project settings."""
        base = self.config.root if self.config else Path.cwd()
        if reference:
            chosen = str(reference)
        elif self.config:
            chosen = self.config.codebook
        else:
            chosen = "target_bargaining"
        return load_codebook(resolve_codebook_path(chosen, base=base))

    # Writes -------------------------------------------------------------

    def import_sources(
        self,
        paths: Iterable[str | Path],
        *,
        manifest: str | Path | None = None,
        progress: Callable[[int], None] | None = None,
        **options: Any,
    ) -> ImportResult:
        """Import transcripts (and a manifest of interviews) in one transaction.

        ``options`` go to ``qualkit.sources.import_sources`` (encoding,
        metadata for a single file, keep_going...).
        """
        with store.transaction(self.db):
            return self._import(list(paths), manifest, progress, **options)

    def _import(
        self, paths: list[str | Path], manifest: str | Path | None, progress: Any, **options: Any
    ) -> ImportResult:
        if manifest is not None:
            import_manifest(self.db, manifest, levels=self.levels)
        result = import_sources(self.db, paths, levels=self.levels, progress=progress, **options)
        if result.changed:
            store.touch(self.db)
        return result

    def autocode(
        self,
        codebook: Codebook | None = None,
        options: AutocodeOptions | None = None,
        *,
        force: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> AutocodeResult:
        """Store the codebook and suggest codings from its rules, in one transaction."""
        codebook = codebook or self.codebook()
        with store.transaction(self.db):
            return self._autocode(codebook, options or self.autocode_options(), force, progress)

    def _autocode(self, codebook: Codebook, options: AutocodeOptions, force: bool, progress: Any) -> AutocodeResult:
        store_codebook(self.db, codebook)
        result = autocode(self.db, codebook, options, force=force, progress=progress)
        if result.added or result.removed:
            store.touch(self.db)
        return result

    def import_and_autocode(
        self,
        paths: Iterable[str | Path],
        *,
        manifest: str | Path | None = None,
        codebook: Codebook | None = None,
        options: AutocodeOptions | None = None,
        progress: Callable[[int], None] | None = None,
        **import_options: Any,
    ) -> tuple[ImportResult, AutocodeResult]:
        """Import transcripts and auto-code them, in one transaction.

        Stores the same rows as ``import_sources`` followed by ``autocode``,
        but each added or changed transcript is auto-coded right after its
        import, from the spaCy docs the import made, so its text is
        tokenized once. ``progress`` counts imported files.
        """
        codebook = codebook or self.codebook()
        with store.transaction(self.db):
            return self._import_and_autocode(
                list(paths), manifest, codebook, options or self.autocode_options(), progress, **import_options
            )

    def _import_and_autocode(
        self,
        paths: list[str | Path],
        manifest: str | Path | None,
        codebook: Codebook,
        options: AutocodeOptions,
        progress: Any,
        **import_options: Any,
    ) -> tuple[ImportResult, AutocodeResult]:
        # Codings name their code, so the codebook is stored before the import codes anything.
        store_codebook(self.db, codebook)
        coder = Autocoder(self.db, codebook, options)
        # Sources split into sentences in a second process come back without
        # docs, which only pays when auto-coding does not need their tokens.
        parallel = tuple(language for language in ("zh",) if not needs_tokens(codebook, language))
        imported = self._import(
            paths,
            manifest,
            progress,
            on_segmented=coder.code_segmented,
            parallel_languages=parallel,
            **import_options,
        )
        autocoded = coder.code_stored()
        if autocoded.added or autocoded.removed:
            store.touch(self.db)
        return imported, autocoded

    def autocode_options(self) -> AutocodeOptions:
        """Return the auto-coding options from the project settings."""
        settings = self.config.autocode if self.config else {}
        return AutocodeOptions(**settings)

    def load_targets(self, path: str | Path | None = None) -> int:
        """Store the targets declared in a targets YAML file; return their number."""
        chosen = path or (self.config.targets if self.config else None)
        if chosen is None:
            raise QualkitError("No targets file given. Pass one or set 'targets' in qualkit.toml.")
        targets = load_targets(chosen)
        with store.transaction(self.db):
            store_targets(self.db, targets)
        return len(targets)

    def link(self, *, scope: str | None = None) -> int:
        """Link coded quotes to the targets they name; return the number of links."""
        settings = self.config.link if self.config else {}
        with store.transaction(self.db):
            return link_quotes(
                self.db, scope=scope or settings.get("scope", "sentence"), statuses=self._statuses()
            )

    def import_panel(self, paths: Iterable[str | Path], *, skip_invalid: bool = False) -> list[PanelImport]:
        """Import value and points CSV files in one transaction."""
        with store.transaction(self.db):
            results = import_panel_files(
                self.db, list(paths), skip_invalid=skip_invalid, aliases=self._unit_aliases()
            )
            store.touch(self.db)
        return results

    def _unit_aliases(self) -> UnitAliases | None:
        if self.config is None:
            return None
        return unit_aliases_from_settings(self.config.scores, self.config.root)

    def negotiability_options(self, **overrides: Any) -> NegotiabilityOptions:
        """Return negotiability options from the settings, with ``overrides`` applied."""
        settings = dict(self.config.scores) if self.config else {}
        fields = NegotiabilityOptions.__dataclass_fields__
        chosen = {key: value for key, value in settings.items() if key in fields}
        chosen.update({key: value for key, value in overrides.items() if value is not None})
        return NegotiabilityOptions(**chosen)

    def negotiability(self, options: NegotiabilityOptions | None = None) -> pd.DataFrame:
        """Compute and store negotiability scores; return them as a DataFrame."""
        settings = self.config.scores if self.config else {}
        with store.transaction(self.db):
            return compute_scores(
                self.db,
                options or self.negotiability_options(),
                priority_cut=settings.get("priority_cut"),
                negotiability_cut=settings.get("negotiability_cut"),
            )

    def build(self, *, report: bool = True, progress: Callable[[str, int], Any] | None = None) -> BuildResult:
        """Run the whole pipeline from the project settings, in one transaction."""
        config = self._require_config()
        result = BuildResult()
        codebook = self.codebook()
        targets = load_targets(config.targets) if config.targets else []
        with store.transaction(self.db):
            result.imported, result.autocoded = self._import_and_autocode(
                config.transcript_paths(), config.manifest, codebook, self.autocode_options(), None
            )
            store_targets(self.db, targets)
            result.links = link_quotes(
                self.db, scope=config.link.get("scope", "sentence"), statuses=self._statuses()
            )
            values = config.paths(config.scores, "values") + config.paths(config.scores, "points")
            result.panel = import_panel_files(self.db, values, aliases=self._unit_aliases())
            compute_scores(
                self.db,
                self.negotiability_options(),
                priority_cut=config.scores.get("priority_cut"),
                negotiability_cut=config.scores.get("negotiability_cut"),
            )
        if report:
            result.report_files = self.report()
        return result

    def report(self, out: str | Path | None = None, formats: Iterable[str] | None = None) -> list[Path]:
        """Render the evidence report; return the files written."""
        from qualkit.report import render_report

        settings = self.config.report if self.config else {}
        root = self.config.root if self.config else Path.cwd()
        target = Path(out) if out else root / settings.get("out", "report")
        return render_report(
            self.db,
            target,
            formats=tuple(formats or settings.get("formats", ("html", "md"))),
            settings={**self._score_cuts(), **settings},
            title=self.config.title if self.config else "qualkit report",
        )

    def _require_known(self, table: str, value: str | None, noun: str, listing: str) -> None:
        """Raise NotFoundError when a filter names an id the project does not have."""
        if value is None:
            return
        if self.db.execute(f"SELECT 1 FROM [{table}] WHERE id = ?", [value]).fetchone() is None:
            raise NotFoundError(f"Unknown {noun} {value!r}. See '{listing}' for the ids.")

    def _statuses(self) -> tuple[str, ...]:
        """Return the coding statuses that links and reports use."""
        settings = self.config.report if self.config else {}
        return tuple(settings.get("statuses", ("accepted", "suggested")))

    def _score_cuts(self) -> dict[str, Any]:
        scores = self.config.scores if self.config else {}
        return {key: scores.get(key) for key in ("priority_cut", "negotiability_cut")}

    def _require_config(self) -> ProjectConfig:
        if self.config is None:
            raise QualkitError("This needs a project folder with a qualkit.toml.")
        return self.config

    # Reads --------------------------------------------------------------

    def table(self, sql: str, params: Iterable[Any] = ()) -> pd.DataFrame:
        """Run a read-only SQL query and return the rows as a DataFrame."""
        return pd.read_sql_query(sql, self.db.conn, params=list(params))

    def sources(self) -> pd.DataFrame:
        """Sources with their case metadata and counts of segments and codings."""
        return self.table(
            "SELECT s.id, s.language, c.province, c.level, c.date, s.path, "
            "length(s.text) AS characters, "
            "(SELECT count(*) FROM codings g WHERE g.source_id = s.id) AS codings "
            "FROM sources s JOIN cases c ON c.id = s.case_id ORDER BY s.id"
        )

    def cases(self) -> pd.DataFrame:
        """Cases (interviews) with their metadata, including those without a transcript."""
        return self.table("SELECT * FROM cases ORDER BY id")

    def conflicts(self) -> pd.DataFrame:
        """Metadata values that disagree between origins, with the value kept."""
        return self.table("SELECT * FROM metadata_conflicts ORDER BY case_id, field")

    def codings(self, *, code: str | None = None, source: str | None = None, status: str | None = None) -> pd.DataFrame:
        """Codings with their quotes, filtered by code (and its children), source or status."""
        clauses, params = [], []
        self._require_known("codes", code, "code", "qualkit codebook show")
        self._require_known("sources", source, "source", "qualkit sources")
        if code:
            clauses.append("(code_id = ? OR code_id LIKE ?)")
            params += [code, code + ".%"]
        if source:
            clauses.append("source_id = ?")
            params.append(source)
        if status:
            clauses.append("status = ?")
            params.append(status)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self.table(
            "SELECT id, source_id, start_offset, end_offset, code_id, coder, origin, status, "
            f"needs_review, quote FROM codings {where} ORDER BY source_id, start_offset, code_id",
            params,
        )

    def links(self, target: str | None = None) -> pd.DataFrame:
        """Quote-target links with the quote and the alias that made the link."""
        self._require_known("targets", target, "target", "qualkit scores negotiability --all")
        where, params = ("WHERE l.target_id = ?", [target]) if target else ("", [])
        return self.table(
            "SELECT l.target_id, l.alias, c.source_id, c.code_id, c.status, c.quote, l.coding_id "
            f"FROM quote_links l JOIN codings c ON c.id = l.coding_id {where} "
            "ORDER BY l.target_id, c.source_id, c.start_offset",
            params,
        )

    def scores(self) -> pd.DataFrame:
        """Return the stored negotiability scores, one row per target."""
        frame = self.table(
            "SELECT t.name, t.researcher_order, s.* FROM scores s JOIN targets t ON t.id = s.target_id "
            "ORDER BY s.eligible DESC, coalesce(t.researcher_order, s.variation_order, 999), t.name"
        )
        return _whole_numbers(frame)


def _whole_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn float columns that hold only whole numbers (or gaps) into Int64.

    SQLite hands back REAL for columns such as a range of rank changes, and a
    gap makes pandas use floats; '-6.0' in a table reads as a measurement.
    """
    for column in frame.columns:
        values = frame[column]
        if values.dtype.kind == "f" and values.dropna().apply(float.is_integer).all():
            frame[column] = values.astype("Int64")
    return frame
