"""What the two XML formats share: parsing a file's bytes and reading a coordinate."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from gigapatch.errors import AnnotationError

__all__ = ["coordinate", "parse_xml"]


def parse_xml(data: bytes, file: str, root: str, kind: str) -> ET.Element:
    """The root element of ``data``, which must be ``<root>``; malformed XML, or another root,
    is an :class:`AnnotationError` naming ``file`` (and the line, or the ``kind`` of file
    expected)."""
    try:
        element = ET.fromstring(data)
    except ET.ParseError as exc:
        line, col = exc.position
        raise AnnotationError(
            f"annotations {file!r}: not well-formed XML (line {line}, column {col})"
        ) from None
    if element.tag != root:
        raise AnnotationError(
            f"annotations {file!r}: expected an {kind} file (root <{root}>); got <{element.tag}>"
        )
    return element


def coordinate(node: ET.Element, key: str, file: str, where: str) -> float:
    """Attribute ``key`` of ``node`` as a number. A decimal comma (``"12,5"``, written by ASAP
    in some locales) counts as a point."""
    text = node.get(key)
    if text is None:
        raise AnnotationError(
            f"annotations {file!r}: {where} has a <{node.tag}> without {key}="
        )
    value = text.strip()
    if "," in value and "." not in value and value.count(",") == 1:
        value = value.replace(",", ".")
    try:
        return float(value)
    except ValueError:
        raise AnnotationError(
            f"annotations {file!r}: {where} has <{node.tag} {key}={text!r}>; expected a number"
        ) from None
