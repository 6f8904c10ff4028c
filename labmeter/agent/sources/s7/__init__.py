"""Siemens S7 PLCs over S7comm (PUT/GET)."""
