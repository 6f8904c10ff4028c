"""The read API: occupancy and utilisation from InfluxDB, always with their denominators."""
