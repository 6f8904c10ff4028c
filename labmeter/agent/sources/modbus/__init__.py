"""Modbus RTU energy meters (power above a threshold = running)."""
