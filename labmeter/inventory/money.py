"""Amounts in euro as technicians type them, in Italian or English notation.

A cost moves cost per hour of use by the same factor, so a misread amount is a wrong figure
in a report to the region: ``24.500`` read as 24.5 € would make a CNC look a thousand times
cheaper per hour. Amounts have at most two decimals, which is what lets the notation be
told apart: a separator followed by exactly three digits groups thousands (``1.234``,
``24.500``, ``1,234``), one followed by one or two digits marks the decimals (``1234,50``,
``1234.5``), and both together must disagree (``1.234,50``, ``1,234.50``). What fits none
of these (``0.500``, ``1234.567``, ``1.23.456``) is refused with the forms accepted, never
guessed.
"""

from __future__ import annotations

import re

_CURRENCY = re.compile(r"^(?:€|EUR)\s*|\s*(?:€|EUR)$", re.IGNORECASE)
_PLAIN = re.compile(r"\d+")
_DECIMAL = re.compile(r"(\d+)[.,](\d{1,2})")
_GROUPED = {  # thousands separator -> 1.234.567(,89)
    sep: re.compile(rf"([1-9]\d{{0,2}}(?:\{sep}\d{{3}})+)(?:\{dec}(\d{{1,2}}))?")
    for sep, dec in ((".", ","), (",", "."))
}
FORMS = "1234, 1234,50, 1234.50, 1.234, 1.234,50, 1,234.50 (euro, at most two decimals)"


def parse_cost(text: str) -> float:
    """An amount in euro; ``ValueError`` naming the accepted forms for anything else."""
    cleaned = _CURRENCY.sub("", text.strip()).replace("\u00a0", "").replace(" ", "")
    if _PLAIN.fullmatch(cleaned):
        return float(cleaned)
    if match := _DECIMAL.fullmatch(cleaned):
        return float(f"{match[1]}.{match[2]}")
    for sep, pattern in _GROUPED.items():
        if match := pattern.fullmatch(cleaned):
            whole = match[1].replace(sep, "")
            return float(f"{whole}.{match[2]}" if match[2] else whole)
    raise ValueError(f"{text!r} is not an amount in euro (write it as {FORMS})")
