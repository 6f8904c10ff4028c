"""Pseudonyms: the only form in which a person's identity leaves the agent."""

from __future__ import annotations

import hashlib
import hmac


def pseudonym(secret: str, login: str) -> str:
    """``p_`` + 16 hex digits of HMAC-SHA256(secret, login); rotating the secret unlinks periods."""
    digest = hmac.new(secret.encode(), login.strip().lower().encode(), hashlib.sha256)
    return "p_" + digest.hexdigest()[:16]
