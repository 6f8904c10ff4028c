"""The evidence package's format: a manifest of SHA-256 hashes with its signature, and raw
data as gzipped line protocol that restores exactly. The evidence role writes and verifies
packages with it; the API reads a closed period's sealed report through it."""
