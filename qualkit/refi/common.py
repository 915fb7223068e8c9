"""Namespaces, GUIDs, dates and schemas shared by the REFI-QDA exporters and the importer."""

from __future__ import annotations

import functools
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path
from xml.etree import ElementTree

import xmlschema

from qualkit import __version__

PROJECT_NAMESPACE = "urn:QDA-XML:project:1.0"
CODEBOOK_NAMESPACE = "urn:QDA-XML:codebook:1.0"
ORIGIN = f"qualkit {__version__}"
SCHEMA_DIR = Path(__file__).with_name("schemas")

# GUIDs are uuid5 values in this fixed namespace, so the same project data
# always gets the same GUIDs and a repeated export is byte-identical. Never
# change it: other programs use the GUIDs to recognise codes and sources.
GUID_NAMESPACE = uuid.UUID("6d3c1f0e-5a4b-5c8e-9f21-7b0a4e2d9c13")


def guid_for(kind: str, key: str) -> str:
    """Return the stable upper-case GUID of a qualkit object, e.g. ``guid_for("code", "strategy")``."""
    return str(uuid.uuid5(GUID_NAMESPACE, f"{kind}:{key}")).upper()


def xsd_datetime(value: str | None) -> str | None:
    """Convert a stored ISO 8601 time to an xsd:dateTime in UTC with a ``Z``, or None."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (
        moment.astimezone(timezone.utc)
        .replace(microsecond=0)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
    )


def stored_datetime(value: str | None) -> str | None:
    """Convert an xsd:dateTime to qualkit's stored form (ISO 8601, UTC, seconds), or None."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()
    except OverflowError:
        # A time zone offset can move year 1 or 9999 out of datetime's range.
        return None


@functools.cache
def schema(name: str) -> xmlschema.XMLSchema:
    """Load a bundled REFI-QDA schema, ``Project.xsd`` or ``Codebook.xsd``, once per process."""
    return xmlschema.XMLSchema(str(SCHEMA_DIR / name))


def serialize(root: ElementTree.Element) -> bytes:
    """Serialize an element tree as indented UTF-8 XML with a declaration.

    Attribute order is insertion order, so the same tree gives the same bytes.
    """
    ElementTree.indent(root, space="  ")
    body = ElementTree.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n").encode("utf-8")


_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(value: str) -> str:
    """Return ``value`` without the control characters that XML 1.0 does not allow."""
    return _XML_FORBIDDEN.sub("", value)
