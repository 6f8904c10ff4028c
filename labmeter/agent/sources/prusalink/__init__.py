"""Prusa printers (MK4, XL, MINI, Core One) through PrusaLink's local API."""
