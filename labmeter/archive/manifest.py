"""The manifest of an evidence package: SHA-256 of every file, its own hash, its signature.

The signature (Ed25519, through ``cryptography``) covers the manifest's bytes, which cover
every file; the public key goes with the package. A package re-signed by someone else
carries their key, so an auditor who wants to know *who* signed pins the lab's public key
(``labmeter period verify --public-key``).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import orjson

from labmeter.errors import EvidenceError

MANIFEST = "manifest.json"
MANIFEST_HASH = "manifest.sha256"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "public_key.pem"
SEALS = (MANIFEST, MANIFEST_HASH, SIGNATURE, PUBLIC_KEY)  # not listed in the manifest


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def load_private_key(path: str) -> Any:
    """The Ed25519 private key in ``path`` (PEM, unencrypted), or a clear ``EvidenceError``."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise EvidenceError(f"signing key {path} does not exist (evidence.signing_key)") from exc
    except OSError as exc:
        raise EvidenceError(f"signing key {path} cannot be read: {exc.strerror}") from exc
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise EvidenceError(
            f"signing key {path} is not an unencrypted PEM private key ({exc})"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceError(f"signing key {path} is not an Ed25519 key")
    return key


def generate_key(path: Path) -> str:
    """Write a new Ed25519 private key (mode 600) and its public key beside it; return the
    public key's path."""
    import os

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if path.exists():
        raise EvidenceError(f"{path} exists: refusing to overwrite a signing key")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    public = path.with_suffix(".pub.pem")
    public.write_bytes(_public_pem(key))
    return str(public)


def _public_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    pem: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


def seal(folder: Path, meta: dict[str, Any], key: Any | None) -> str:
    """Write the manifest of every file in ``folder`` (and sign it with ``key``); return the
    manifest's SHA-256."""
    files = [
        {
            "path": p.relative_to(folder).as_posix(),
            "sha256": sha256_file(p),
            "bytes": p.stat().st_size,
        }
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() not in SEALS
    ]
    body = orjson.dumps(
        {"format": 1, **meta, "files": files}, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    )
    (folder / MANIFEST).write_bytes(body)
    digest = hashlib.sha256(body).hexdigest()
    (folder / MANIFEST_HASH).write_text(f"{digest}  {MANIFEST}\n")
    if key is not None:
        (folder / SIGNATURE).write_text(base64.b64encode(key.sign(body)).decode() + "\n")
        (folder / PUBLIC_KEY).write_bytes(_public_pem(key))
    return digest


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = orjson.loads((folder / MANIFEST).read_bytes())
    except FileNotFoundError as exc:
        raise EvidenceError(f"{MANIFEST}: missing: {folder} is not an evidence package") from exc
    except orjson.JSONDecodeError as exc:
        raise EvidenceError(f"{MANIFEST}: not valid JSON ({exc})") from exc
    return manifest


def check(folder: Path, public_key: Path | None = None) -> tuple[list[str], str]:
    """Every problem of the package's seals and files, each naming its file; and what signed
    it (a key fingerprint, or "unsigned")."""
    problems: list[str] = []
    try:
        manifest = read_manifest(folder)
    except EvidenceError as exc:
        return [str(exc)], "unknown"
    body = (folder / MANIFEST).read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    try:
        stated = (folder / MANIFEST_HASH).read_text().split()[0]
    except (FileNotFoundError, IndexError):
        problems.append(f"{MANIFEST_HASH}: missing or empty")
    else:
        if stated != digest:
            problems.append(f"{MANIFEST}: its SHA-256 is {digest}, {MANIFEST_HASH} says {stated}")
    listed = {}
    for entry in manifest.get("files", []):
        listed[entry["path"]] = entry
        path = folder / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']}: missing")
            continue
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            problems.append(f"{entry['path']}: SHA-256 {actual} differs from the manifest's")
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and rel not in listed and rel not in SEALS:
            problems.append(f"{rel}: not in the manifest")
    signer, trouble = _check_signature(folder, body, public_key)
    problems += trouble
    return problems, signer


def _check_signature(folder: Path, body: bytes, pinned: Path | None) -> tuple[str, list[str]]:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    sig_path, key_path = folder / SIGNATURE, folder / PUBLIC_KEY
    if not sig_path.exists() and not key_path.exists():
        if pinned is not None:
            return "unsigned", [f"{SIGNATURE}: missing, but a public key was given to check it"]
        return "unsigned", []
    if not sig_path.exists():
        return "unknown", [f"{SIGNATURE}: missing beside {PUBLIC_KEY}"]
    if not key_path.exists() and pinned is None:
        return "unknown", [f"{PUBLIC_KEY}: missing beside {SIGNATURE}"]
    included = key_path.read_bytes() if key_path.exists() else b""
    key_pem = pinned.read_bytes() if pinned is not None else included
    try:
        key = load_pem_public_key(key_pem)
    except ValueError as exc:
        return "unknown", [f"{PUBLIC_KEY if pinned is None else pinned}: not a public key ({exc})"]
    if not isinstance(key, Ed25519PublicKey):
        return "unknown", [f"{PUBLIC_KEY}: not an Ed25519 key"]
    fingerprint = "ed25519:" + hashlib.sha256(key_pem.strip()).hexdigest()[:32]
    problems = []
    if pinned is not None and included and included.strip() != key_pem.strip():
        problems.append(f"{PUBLIC_KEY}: not the key given with --public-key")
    try:
        key.verify(base64.b64decode(sig_path.read_text().strip(), validate=True), body)
    except (InvalidSignature, ValueError):
        problems.append(f"{SIGNATURE}: does not match {MANIFEST} and {PUBLIC_KEY}")
    return fingerprint, problems
