"""Physical units of pixel sizes, as OME-XML and OME-Zarr write them, in micrometres."""

from __future__ import annotations

__all__ = ["UNIT_TO_UM", "to_micrometres"]

#: Micrometres per unit, under OME-XML's symbols (``µm``) and OME-Zarr's names (``micrometer``).
UNIT_TO_UM: dict[str, float] = {
    "pm": 1e-6, "nm": 1e-3, "µm": 1.0, "um": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6,
    "angstrom": 1e-4, "picometer": 1e-6, "nanometer": 1e-3, "micrometer": 1.0,
    "millimeter": 1e3, "centimeter": 1e4, "meter": 1e6,
}


def to_micrometres(value: float, unit: str) -> float | None:
    """``value`` in ``unit`` as micrometres, or None when the unit is not a length we know."""
    scale = UNIT_TO_UM.get(unit)
    return None if scale is None else float(value) * scale
