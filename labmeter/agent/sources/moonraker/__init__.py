"""Klipper printers through Moonraker's HTTP API (print_stats, job history)."""
