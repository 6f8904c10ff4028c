"""GRBL and grblHAL CNC controllers (status reports over serial)."""
