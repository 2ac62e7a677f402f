"""Plain text tables and durations, as the commands print them."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["format_table", "human_seconds"]


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], *,
                 left: int = 1, indent: str = "") -> list[str]:
    """Lines of a table: columns as wide as their widest cell, two spaces apart.

    The first ``left`` columns are left-aligned (names), the others
    right-aligned (numbers). Trailing spaces are stripped.

    Examples
    --------
    >>> print("\\n".join(format_table(["name", "n"], [["a", "1"], ["bb", "22"]])))
    name   n
    a      1
    bb    22
    """
    table = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[c]) for r in table if c < len(r)) for c in range(len(header))]
    lines = []
    for row in table:
        cells = [
            cell.ljust(widths[c]) if c < left else cell.rjust(widths[c])
            for c, cell in enumerate(row)
        ]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def human_seconds(seconds: float) -> str:
    """A duration as people read it: ``"0.4 s"``, ``"42 s"``, ``"7 min"``, ``"3 h 05 min"``.

    Examples
    --------
    >>> [human_seconds(s) for s in (0.42, 42, 420, 11100)]
    ['0.4 s', '42 s', '7 min', '3 h 05 min']
    """
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"
