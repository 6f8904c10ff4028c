"""Pseudonyms: the only form in which a person's identity leaves the agent."""

from __future__ import annotations

import hashlib
import hmac

from labmeter.config import Secret


def pseudonym(secret: str, login: str) -> str:
    """``p_`` + 16 hex digits of HMAC-SHA256(secret, login); rotating the secret unlinks periods."""
    key = Secret(secret).reveal().encode()
    digest = hmac.new(key, login.strip().lower().encode(), hashlib.sha256)
    return "p_" + digest.hexdigest()[:16]


def job_ref(secret: str, name: str) -> str:
    """``j_`` + 16 hex digits of HMAC-SHA256(secret, job name): a print job's file name can
    carry a person's name, so only this leaves the agent (the same job gives the same ref)."""
    key = Secret(secret).reveal().encode()
    digest = hmac.new(key, b"job:" + name.encode(), hashlib.sha256)
    return "j_" + digest.hexdigest()[:16]
