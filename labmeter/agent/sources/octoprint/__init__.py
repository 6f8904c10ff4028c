"""Printers driven by OctoPrint, through its REST API."""
