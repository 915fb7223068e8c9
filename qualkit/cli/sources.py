"""``qualkit import``: transcripts in."""

from __future__ import annotations

import click
import pandas as pd

from qualkit import store
from qualkit.cases import clean_metadata
from qualkit.cli.common import State, echo_frame, handle_errors, pass_state, progress_bar
from qualkit.errors import QualkitError
from qualkit.readers.encoding import check_encoding_name
from qualkit.sources import ImportResult, find_transcripts, run_import


@click.command("import")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--manifest",
    type=click.Path(exists=True, dir_okay=False),
    help="CSV of interviews: id, province, level, date, language, file, ...",
)
@click.option(
    "--manifest-encoding",
    metavar="CODEC",
    help="Encoding of the manifest CSV, as a Python codec name. Default: detected.",
)
@click.option(
    "--encoding",
    metavar="CODEC",
    help="Encoding of .txt, .md, .srt, .vtt and .rtf files, as a Python codec name "
    "(gb18030, big5, cp1252, utf-16). Default: detected, and for RTF the code page "
    "the file declares.",
)
@click.option("--id", "source_id", help="Interview id of the one file imported.")
@click.option("--province", help="Province of the interviews imported.")
@click.option("--level", help="Government level of the interviews (one of the project's levels).")
@click.option("--date", help="Interview date, YYYY-MM-DD.")
@click.option("--language", help="Transcript language: en or zh. Default: detected.")
@click.option(
    "--keep-going",
    is_flag=True,
    help="Import the files that can be read and list the others, instead of importing nothing.",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Let a file replace the stored transcript of its id when that transcript "
    "came from a file with another name and has a different text.",
)
@pass_state
@handle_errors
def import_command(
    state: State,
    paths: tuple[str, ...],
    manifest: str | None,
    manifest_encoding: str | None,
    encoding: str | None,
    source_id: str | None,
    province: str | None,
    level: str | None,
    date: str | None,
    language: str | None,
    keep_going: bool,
    replace: bool,
) -> None:
    """Import transcripts as sources.

    \b
    PATHS are files, folders (searched recursively) or quoted glob patterns
    such as 'transcripts/**/*.docx'. Formats: .txt, .md (with YAML front
    matter), .srt, .vtt, .docx, .odt, .rtf and .pdf with a text layer.
    Importing a changed transcript again keeps its codings on their words
    and lists the codings whose words changed; importing it unchanged does
    nothing.
    """
    try:
        files = find_transcripts(paths)
    except QualkitError as error:
        raise click.BadParameter(str(error), param_hint="PATHS") from None
    for option, value in (("--encoding", encoding), ("--manifest-encoding", manifest_encoding)):
        if value is not None:
            try:
                check_encoding_name(value)
            except QualkitError as error:
                raise click.BadParameter(str(error), param_hint=option) from None
    options = {"id": source_id, "province": province, "level": level, "date": date, "language": language}
    project = state.project(create=True)
    _check_options(options, len(files), project.levels)
    with progress_bar(len(files), "Importing") as update:
        with store.transaction(project.db):
            result = run_import(
                project.db,
                files,
                manifest=manifest,
                manifest_encoding=manifest_encoding,
                levels=project.levels,
                progress=update,
                encoding=encoding,
                options=options,
                keep_going=keep_going,
                replace=replace,
            )
            if result.changed:
                store.touch(project.db)
    _echo_result(result)
    if result.failures:
        raise click.ClickException(
            f"{len(result.failures)} of {len(files)} files were not imported (listed above)."
        )


def _check_options(options: dict[str, str | None], count: int, levels: tuple[str, ...]) -> None:
    supplied = {key: value for key, value in options.items() if value}
    if "id" in supplied and count != 1:
        raise click.UsageError(f"--id names one interview, but {count} files were given.")
    try:
        clean_metadata(supplied, path=None, levels=levels)
    except QualkitError as error:
        raise click.UsageError(str(error)) from None


def _echo_result(result: ImportResult) -> None:
    click.echo(
        f"{len(result.added)} added, {len(result.updated)} updated, "
        f"{len(result.unchanged)} unchanged."
    )
    if result.moved_codings or result.flagged_codings:
        click.echo(
            f"{result.moved_codings} codings moved with their words; "
            f"{len(result.flagged_codings)} flagged for review because their words changed."
        )
    if result.flagged_codings:
        frame = pd.DataFrame(
            [
                {
                    "id": item.id,
                    "source": item.source_id,
                    "code": item.code_id,
                    "coder": item.coder,
                    "change": item.reason,
                    "before": item.old_quote,
                    "now": item.quote,
                }
                for item in result.flagged_codings
            ]
        )
        echo_frame(frame, "table")
    for conflict in result.conflicts:
        click.echo(
            f"Conflict: {conflict['case_id']} {conflict['field']} is {conflict['kept_value']!r} "
            f"({conflict['kept_origin']}) but {conflict['other_value']!r} in "
            f"{conflict['other_origin']}; kept the first.",
            err=True,
        )
    for failure in result.failures:
        click.echo(f"Not imported: {failure.message}", err=True)

