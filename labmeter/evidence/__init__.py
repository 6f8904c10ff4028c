"""Evidence packages of closed periods: write them (``close``), check them (``verify``)."""
