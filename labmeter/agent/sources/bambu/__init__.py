"""Bambu Lab printers through their LAN MQTT broker (TLS, access code), read only."""
