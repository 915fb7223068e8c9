"""Figures of the evidence report: the plots of ``qualkit scores`` as data: URIs.

Each figure is drawn by ``qualkit.plots`` as SVG, cleaned of anything that
could run or load (scripts, ``foreignObject``, event attributes, links that
leave the document), and embedded as a ``data:image/svg+xml`` URI. A browser
never runs scripts or loads files for an SVG shown through ``<img>``, so the
cleaning is a second line of defence. Target names are redacted before they
are drawn, because matplotlib writes each label into the SVG as a comment
as well as glyphs.
"""

from __future__ import annotations

import base64
import re
import tempfile
import xml.etree.ElementTree as StandardElementTree
from pathlib import Path
from typing import Any

import pandas as pd
from defusedxml import ElementTree

from qualkit.redaction import Redactor

SVG_NAMESPACE = "http://www.w3.org/2000/svg"
XLINK_NAMESPACE = "http://www.w3.org/1999/xlink"
# Elements that can run code or embed foreign content, dropped with their children.
UNSAFE_ELEMENTS = {"script", "foreignObject", "iframe", "object", "embed", "image", "audio", "video"}
HREF_ATTRIBUTES = {"href", f"{{{XLINK_NAMESPACE}}}href"}
# A CSS reference to another resource. A url(#id) points inside the document.
_CSS_URL = re.compile(r"url\(\s*['\"]?\s*([^)'\"\s]*)", re.IGNORECASE)


def report_figures(
    eligible: list[dict[str, Any]],
    scores: list[dict[str, Any]],
    cuts: dict[str, Any],
    names: dict[str, str],
    redactor: Redactor,
) -> list[dict[str, str]]:
    """Draw the typology and mean-CV figures; return each with its id, title, caption and URI.

    A figure is left out when it has no data (no eligible target, no CV).
    """
    from qualkit.plots import plot_mean_cv, plot_typology

    labels = {target: plain_label(redactor.apply(name)) for target, name in names.items()}
    figures = []
    with tempfile.TemporaryDirectory(prefix="qualkit-figures-") as folder:
        typology_rows = [
            {"target": row["target_id"], "priority": row["mean_points"], "negotiability": row["frequency"]}
            for row in eligible
            if row["mean_points"] is not None and row["frequency"] is not None
        ]
        if typology_rows and cuts["priority"] is not None and cuts["negotiability"] is not None:
            paths = plot_typology(
                pd.DataFrame(typology_rows),
                folder,
                priority_cut=float(cuts["priority"]),
                negotiability_cut=float(cuts["negotiability"]),
                labels=labels,
                formats=("svg",),
            )
            figures.append(
                {
                    "id": "figure-typology",
                    "title": "Priority and negotiability of eligible targets",
                    "caption": "Each point is a target; dashed lines are the cut points of the typology.",
                    "uri": svg_data_uri(paths[0]),
                }
            )
        spread_rows = [
            {"target": row["target_id"], "mean_cv": row["mean_cv"]}
            for row in scores
            if row["mean_cv"] is not None
        ]
        if spread_rows:
            paths = plot_mean_cv(pd.DataFrame(spread_rows), folder, labels=labels, formats=("svg",))
            figures.append(
                {
                    "id": "figure-mean-cv",
                    "title": "Spread of assigned values across units",
                    "caption": "Mean coefficient of variation of each target's values across units.",
                    "uri": svg_data_uri(paths[0]),
                }
            )
    return figures


def plain_label(name: object) -> str:
    """Return ``name`` with its dollar signs escaped, so matplotlib draws it as written.

    matplotlib reads the text between two dollar signs as mathtext: it draws
    it as a formula, and stops with a ValueError when it cannot parse it.
    """
    return str(name).replace("$", "\\$")


def svg_data_uri(path: str | Path) -> str:
    """Return the SVG file at ``path``, cleaned, as a base64 ``data:`` URI."""
    cleaned = sanitize_svg(Path(path).read_bytes())
    return "data:image/svg+xml;base64," + base64.b64encode(cleaned).decode("ascii")


def sanitize_svg(data: bytes) -> bytes:
    """Return the SVG document without scripts, foreign content, event handlers or outside links.

    The parser (defusedxml) rejects entity declarations, so no entity
    expansion or external entity reaches the output. Comments are dropped.
    """
    StandardElementTree.register_namespace("", SVG_NAMESPACE)
    StandardElementTree.register_namespace("xlink", XLINK_NAMESPACE)
    root = ElementTree.fromstring(data)
    _clean(root)
    return StandardElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _local_name(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _loads_outside(css: str) -> bool:
    """Return whether CSS text refers to anything outside the document."""
    if "@import" in css.lower():
        return True
    return any(not target.startswith("#") for target in _CSS_URL.findall(css))


def _clean(element: Any) -> None:
    for child in list(element):
        local = _local_name(child.tag)
        if local in UNSAFE_ELEMENTS or (local == "style" and _loads_outside(child.text or "")):
            element.remove(child)
            continue
        _clean(child)
    for name in list(element.attrib):
        value = element.attrib[name]
        local = _local_name(name).lower()
        runs_code = local.startswith("on")
        leaves_document = name in HREF_ATTRIBUTES and not value.startswith("#")
        if runs_code or leaves_document or _loads_outside(value):
            del element.attrib[name]
