"""REFI-QDA exchange: export the codebook (``.qdc``) and the project (``.qdpx``), and import both.

The schemas in ``schemas/`` are the REFI-QDA 1.0 ``Codebook.xsd`` and
``Project.xsd``, and exports are checked against them before they are written.
"""

from __future__ import annotations

from qualkit.refi.codebook import export_codebook
from qualkit.refi.importer import ImportReport, import_refi
from qualkit.refi.project import ExportSummary, export_project
from qualkit.refi.xmlsafe import ReadLimits

__all__ = [
    "ExportSummary",
    "ImportReport",
    "ReadLimits",
    "export_codebook",
    "export_project",
    "import_refi",
]
