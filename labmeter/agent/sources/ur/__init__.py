"""Universal Robots dashboard server."""
