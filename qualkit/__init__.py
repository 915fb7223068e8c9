"""qualkit: qualitative coding of interview transcripts, held against panels of numbers."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Project", "init_project", "__version__"]


def __getattr__(name: str):  # noqa: ANN202 - module-level lazy import
    # Importing spaCy takes a second or more; load the API only when used.
    if name in ("Project", "init_project"):
        from qualkit import project

        return getattr(project, name)
    raise AttributeError(name)
