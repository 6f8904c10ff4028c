"""Current clamps: a machine with no data port is judged by the current it draws."""
