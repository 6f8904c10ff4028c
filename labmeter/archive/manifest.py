"""The manifest of an evidence package: SHA-256 of every file, its own hash, its signature.

The signature (Ed25519, through ``cryptography``) covers the manifest's bytes, which cover
every file; the public key goes with the package for convenience, never as proof: whoever
can write the folder can re-seal it and put their own key beside it, or none. So a package
is checked against a trust anchor the auditor brings (``Trust``): the lab's published public
key, which must have signed it, and the manifest's SHA-256 cited with the report. A package
no pinned key signed passes only when the auditor says so (``allow_unsigned``), and then
proves no more than that its files agree with each other.

A package is read as hostile input: every path it names stays inside it (no ``..``, no
absolute path), symbolic links and special files are refused rather than followed, and the
JSON files it holds are read up to a size.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from labmeter.errors import EvidenceError

MANIFEST = "manifest.json"
MANIFEST_HASH = "manifest.sha256"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "public_key.pem"
SEALS = (MANIFEST, MANIFEST_HASH, SIGNATURE, PUBLIC_KEY)  # not listed in the manifest
# The JSON a package holds is read whole: a year of a region's report is a few MB.
MAX_JSON_BYTES = 64 << 20
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Trust:
    """What a package is checked against: the anchors the auditor brings, not the package."""

    public_key: Path | None = None  # the lab's published key: it must have signed the package
    allow_unsigned: bool = False  # accept a package no pinned key signed (its hashes only)
    manifest_sha256: str = ""  # the manifest's SHA-256 cited with the report


UNSIGNED_MEANS = (
    "an unsigned package (or one signed by a key nobody pinned) shows only that its files "
    "agree with its own manifest, which anyone who can write the folder can rewrite"
)


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


def read_json(path: Path, what: str) -> Any:
    """A JSON file of a package, read up to ``MAX_JSON_BYTES``; ``EvidenceError`` names it."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError as exc:
        raise EvidenceError(f"{what}: missing") from exc
    except OSError as exc:
        raise EvidenceError(f"{what}: cannot be read ({exc.strerror})") from exc
    if len(data) > MAX_JSON_BYTES:
        raise EvidenceError(f"{what}: larger than {MAX_JSON_BYTES >> 20} MiB")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EvidenceError(f"{what}: not valid JSON ({exc})") from exc


def read_manifest(folder: Path) -> dict[str, Any]:
    if not (folder / MANIFEST).is_file():
        raise EvidenceError(f"{MANIFEST}: missing: {folder} is not an evidence package")
    manifest = read_json(folder / MANIFEST, MANIFEST)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise EvidenceError(f"{MANIFEST}: not an object with a list of files")
    return manifest


def unsafe_path(rel: object) -> str:
    """Why ``rel`` cannot name a file of a package ("" when it can): a relative POSIX path
    of plain names, so that it stays inside the package wherever the package lies."""
    if not isinstance(rel, str) or not rel:
        return "not a path"
    if "\\" in rel or "\0" in rel or len(rel) > 1024:
        return "not a plain relative path"
    path = PurePosixPath(rel)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", rel):
        return "an absolute path: outside the package"
    if any(part in ("", ".", "..") for part in rel.split("/")):
        return "a path with '..' or '.': outside the package, or not one file"
    return ""


def member(folder: Path, rel: object) -> Path:
    """The file ``rel`` names inside the package, or ``EvidenceError``: for the files the
    settings point at (inventory, calendars), which must be plain files inside it."""
    why = unsafe_path(rel)
    if why:
        raise EvidenceError(f"{rel!r}: {why}")
    path = folder / str(rel)
    for parent in [*reversed(path.relative_to(folder).parents)][1:]:
        if (folder / parent).is_symlink():
            raise EvidenceError(f"{parent.as_posix()}: a symbolic link (refused)")
    if path.is_symlink() or not path.is_file():
        raise EvidenceError(f"{rel}: not a plain file of the package")
    return path


def plain_files(folder: Path) -> tuple[set[str], list[str]]:
    """Every regular file under ``folder`` (relative POSIX paths), never through a symbolic
    link; and a problem for each link or special file found, which a package never holds."""
    files: set[str] = set()
    problems: list[str] = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        base = Path(root)
        for name in sorted([*dirs, *names]):
            path = base / name
            rel = path.relative_to(folder).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                problems.append(f"{rel}: a symbolic link: a package holds plain files only")
            elif stat.S_ISREG(mode):
                files.add(rel)
            elif not stat.S_ISDIR(mode):
                problems.append(f"{rel}: not a regular file")
        dirs[:] = [d for d in dirs if not (base / d).is_symlink()]
    return files, problems


def check(folder: Path, trust: Trust = Trust()) -> tuple[list[str], str]:
    """Every problem of the package's seals and files, each naming its file; and what signed
    it (a key fingerprint, or "unsigned")."""
    if not folder.is_dir():
        return [f"{folder}: not a folder"], "unknown"
    found, problems = plain_files(folder)
    if MANIFEST not in found:  # a link or a FIFO is never opened
        return [*problems, f"{MANIFEST}: missing, or not a plain file"], "unknown"
    try:
        manifest = read_manifest(folder)
    except EvidenceError as exc:
        return [*problems, str(exc)], "unknown"
    body = (folder / MANIFEST).read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    try:
        if MANIFEST_HASH not in found:
            raise OSError
        stated = _head(folder / MANIFEST_HASH, 200).decode(errors="replace").split()[0]
    except (OSError, IndexError):
        problems.append(f"{MANIFEST_HASH}: missing or empty")
    else:
        if stated != digest:
            problems.append(f"{MANIFEST}: its SHA-256 is {digest}, {MANIFEST_HASH} says {stated}")
    cited = trust.manifest_sha256.strip().lower()
    if cited and cited != digest:
        problems.append(f"{MANIFEST}: its SHA-256 is {digest}, not the {cited} given")
    listed: set[str] = set()
    for n, entry in enumerate(manifest["files"]):
        rel = entry.get("path") if isinstance(entry, dict) else None
        why = unsafe_path(rel)
        if why:
            problems.append(f"{MANIFEST}: files[{n}] {str(rel)[:200]!r}: {why}")
            continue
        assert isinstance(rel, str) and isinstance(entry, dict)
        if rel in listed or rel in SEALS:
            problems.append(f"{MANIFEST}: files[{n}] {rel!r} listed twice, or a seal")
            continue
        listed.add(rel)
        expected = entry.get("sha256")
        if not isinstance(expected, str) or not _HEX64.fullmatch(expected):
            problems.append(f"{MANIFEST}: files[{n}] {rel!r}: no SHA-256")
            continue
        if rel not in found:
            problems.append(f"{rel}: missing")
            continue
        actual = sha256_file(folder / rel)
        if actual != expected:
            problems.append(f"{rel}: SHA-256 {actual} differs from the manifest's")
    for rel in sorted(found - listed - set(SEALS)):
        problems.append(f"{rel}: not in the manifest")
    signer, trouble = _check_signature(folder, found, body, trust)
    problems += trouble
    return problems, signer


def _load_public(pem: bytes, where: str) -> tuple[Any, list[str]]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        return None, [f"{where}: not a public key ({exc})"]
    if not isinstance(key, Ed25519PublicKey):
        return None, [f"{where}: not an Ed25519 key"]
    return key, []


def _head(path: Path, size: int = 16384) -> bytes:
    """The start of a small file (a key, a signature): a hostile one cannot fill memory."""
    with path.open("rb") as fh:
        return fh.read(size)


def fingerprint(pem: bytes) -> str:
    return "ed25519:" + hashlib.sha256(pem.strip()).hexdigest()[:32]


def _check_signature(
    folder: Path, found: set[str], body: bytes, trust: Trust
) -> tuple[str, list[str]]:
    """Who signed, as the trust anchor says: the pinned key, or nobody the auditor trusts."""
    from cryptography.exceptions import InvalidSignature

    signed = SIGNATURE in found
    included = _head(folder / PUBLIC_KEY) if PUBLIC_KEY in found else b""
    pinned = b""
    if trust.public_key is not None:
        try:
            pinned = _head(trust.public_key)
        except OSError as exc:
            return "unknown", [f"{trust.public_key}: the public key cannot be read ({exc})"]
    if not signed:
        if trust.allow_unsigned:
            return "unsigned", []
        return "unsigned", [
            f"{SIGNATURE}: missing: the package is unsigned; {UNSIGNED_MEANS}. "
            "--allow-unsigned accepts that, best with --manifest-sha256 (the hash cited with "
            "the report)"
        ]
    if not pinned and not trust.allow_unsigned:
        return "unknown", [
            "no trust anchor: give the lab's published public key (--public-key, or "
            f"[evidence] public_key): a package's own {PUBLIC_KEY} proves nothing, since "
            "whoever re-seals a package puts theirs beside it"
        ]
    pem = pinned or included
    if not pem:
        return "unknown", [f"{PUBLIC_KEY}: missing beside {SIGNATURE}"]
    where = str(trust.public_key) if pinned else PUBLIC_KEY
    key, problems = _load_public(pem, where)
    if key is None:
        return "unknown", problems
    if not included:
        problems.append(f"{PUBLIC_KEY}: missing beside {SIGNATURE}")
    elif pinned and included.strip() != pinned.strip():
        problems.append(f"{PUBLIC_KEY}: not the pinned key {trust.public_key}")
    try:
        raw = _head(folder / SIGNATURE).decode("ascii").strip()
        key.verify(base64.b64decode(raw, validate=True), body)
    except (InvalidSignature, ValueError):
        problems.append(f"{SIGNATURE}: does not match {MANIFEST} and the key {where}")
    signer = fingerprint(pem)
    return (signer if pinned else f"{signer} (the package's own key, not pinned)"), problems
