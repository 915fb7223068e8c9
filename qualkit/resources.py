"""Locate the codebooks and templates that ship with qualkit.

A wheel carries them under ``qualkit/_data``; a source checkout or an editable
install finds them at the top of the repository.
"""

from __future__ import annotations

from pathlib import Path

from qualkit.errors import QualkitError

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Return the directory of bundled ``codebooks`` or ``templates``."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise QualkitError(
        f"qualkit's bundled {name} folder is missing from {_PACKAGE_DIR}. "
        "Reinstall qualkit."
    )


def builtin_codebook(name: str) -> Path | None:
    """Return the path of the bundled codebook ``name``, or None if there is none."""
    path = resource_dir("codebooks") / f"{name}.yaml"
    return path if path.is_file() else None
