"""MTConnect agents."""
