"""labmeter: measured usage of lab equipment (shared wire contract, config, storage)."""

__version__ = "0.1.0"
