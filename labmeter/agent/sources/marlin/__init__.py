"""Marlin 3D printers (temperatures, SD progress, busy keepalives)."""
