"""Evidence packages made by an adversary: re-sealed, re-signed, reaching outside themselves
through ``..``, absolute paths and symbolic links, or holding data that would fill memory.

The packages here are small and made on the spot with the package format's own ``seal``
(no InfluxDB needed to check seals); ``read_lines`` and ``restore`` get hostile data files.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labmeter.archive.lineprotocol import MAX_LINE_BYTES, read_lines, restore
from labmeter.archive.manifest import (
    MANIFEST,
    PUBLIC_KEY,
    SIGNATURE,
    Trust,
    check,
    generate_key,
    load_private_key,
    member,
    seal,
)
from labmeter.config import Config
from labmeter.errors import EvidenceError
from labmeter.influx import InfluxV1

META = {"start_ms": 0, "end_ms": 86_400_000, "site": "", "closure_id": 1}


def _package(folder: Path, key: Path | None) -> str:
    """A small package: a report, a data file, settings; sealed (and signed with ``key``)."""
    (folder / "report").mkdir(parents=True)
    (folder / "report" / "rapporto.pdf").write_bytes(b"%PDF-1.4 the figures as issued\n")
    (folder / "data").mkdir()
    with gzip.open(folder / "data" / "sample.lp.gz", "wb") as fh:
        fh.write(b"sample,device=pc-1 in_use_s=60.0 0\n")
    (folder / "settings.json").write_bytes(orjson.dumps(META))
    return seal(folder, META, load_private_key(str(key)) if key else None)


@pytest.fixture
def lab_key(tmp_path: Path) -> Path:
    key = tmp_path / "lab.pem"
    generate_key(key)
    return key


@pytest.fixture
def signed(tmp_path: Path, lab_key: Path) -> tuple[Path, str]:
    folder = tmp_path / "package"
    return folder, _package(folder, lab_key)


def test_the_labs_own_package_passes_against_its_pinned_key(
    signed: tuple[Path, str], lab_key: Path
) -> None:
    folder, digest = signed
    problems, signer = check(folder, Trust(lab_key.with_suffix(".pub.pem"), manifest_sha256=digest))
    assert problems == [] and signer.startswith("ed25519:") and "not pinned" not in signer


def test_an_edited_and_resealed_unsigned_package_fails(
    signed: tuple[Path, str], lab_key: Path
) -> None:
    """The finding: the PDF edited, the package sealed again without a signature, and
    ``verify`` without options said OK."""
    folder, digest = signed
    (folder / "report" / "rapporto.pdf").write_bytes(b"%PDF-1.4 better figures\n")
    for seal_file in (SIGNATURE, PUBLIC_KEY):
        (folder / seal_file).unlink()
    seal(folder, META, None)
    problems, _ = check(folder)  # no option at all: no trust anchor, no pass
    assert any(SIGNATURE in p and "unsigned" in p for p in problems), problems
    problems, _ = check(folder, Trust(lab_key.with_suffix(".pub.pem")))
    assert any(SIGNATURE in p for p in problems), problems
    # Accepted only on purpose, and then the hash cited with the report still tells.
    assert check(folder, Trust(allow_unsigned=True))[0] == []
    problems, _ = check(folder, Trust(allow_unsigned=True, manifest_sha256=digest))
    assert any(MANIFEST in p and digest in p for p in problems), problems


def test_a_package_resigned_with_another_key_fails(
    signed: tuple[Path, str], lab_key: Path, tmp_path: Path
) -> None:
    folder, _ = signed
    (folder / "report" / "rapporto.pdf").write_bytes(b"%PDF-1.4 better figures\n")
    other = tmp_path / "other.pem"
    generate_key(other)
    seal(folder, META, load_private_key(str(other)))
    problems, signer = check(folder)  # its own key beside it proves nothing
    assert any("no trust anchor" in p for p in problems), problems
    problems, _ = check(folder, Trust(lab_key.with_suffix(".pub.pem")))
    assert any(PUBLIC_KEY in p and "not the pinned key" in p for p in problems), problems
    assert any(SIGNATURE in p and "does not match" in p for p in problems), problems
    # With --allow-unsigned it is only what it is: signed by a key nobody pinned.
    problems, signer = check(folder, Trust(allow_unsigned=True))
    assert problems == [] and "not pinned" in signer


def _outside(tmp_path: Path) -> tuple[Path, str]:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir(exist_ok=True)
    secret.write_bytes(b"outside the package\n")
    return secret, hashlib.sha256(secret.read_bytes()).hexdigest()


def _list(folder: Path, entries: list[object]) -> None:
    """Rewrite the manifest with ``entries`` added, and its hash file (an unsigned re-seal)."""
    manifest = orjson.loads((folder / MANIFEST).read_bytes())
    manifest["files"] += entries
    body = orjson.dumps(manifest)
    (folder / MANIFEST).write_bytes(body)
    (folder / "manifest.sha256").write_text(f"{hashlib.sha256(body).hexdigest()}  {MANIFEST}\n")


@pytest.mark.parametrize(
    "path",
    ["../outside/secret.txt", "report/../../outside/secret.txt", "ABSOLUTE", "a\\..\\..\\x"],
)
def test_manifest_paths_never_leave_the_package(
    tmp_path: Path, signed: tuple[Path, str], path: str
) -> None:
    folder, _ = signed
    secret, digest = _outside(tmp_path)
    path = str(secret) if path == "ABSOLUTE" else path
    _list(folder, [{"path": path, "sha256": digest, "bytes": 20}])
    problems, _ = check(folder, Trust(allow_unsigned=True))
    assert any("outside the package" in p or "plain relative" in p for p in problems), problems
    with pytest.raises(EvidenceError):
        member(folder, path)


def test_a_symlinked_file_or_folder_is_refused_not_followed(
    tmp_path: Path, signed: tuple[Path, str]
) -> None:
    folder, _ = signed
    secret, digest = _outside(tmp_path)
    # A file that is a link outside, listed with the outside file's hash.
    (folder / "report" / "extra.txt").symlink_to(secret)
    # A folder that is a link: what lies behind it hid from the listing.
    (folder / "more").symlink_to(secret.parent, target_is_directory=True)
    _list(
        folder,
        [
            {"path": "report/extra.txt", "sha256": digest, "bytes": 20},
            {"path": "more/secret.txt", "sha256": digest, "bytes": 20},
        ],
    )
    problems, _ = check(folder, Trust(allow_unsigned=True))
    assert any(p.startswith("report/extra.txt: a symbolic link") for p in problems), problems
    assert any(p.startswith("more: a symbolic link") for p in problems), problems
    assert any(p.startswith("more/secret.txt: missing") for p in problems), problems
    with pytest.raises(EvidenceError, match="symbolic link"):
        member(folder, "more/secret.txt")


def test_a_fifo_in_a_package_is_refused_and_never_opened(
    tmp_path: Path, signed: tuple[Path, str]
) -> None:
    folder, _ = signed
    os.mkfifo(folder / "report" / "pipe")
    os.unlink(folder / "manifest.sha256")
    os.mkfifo(folder / "manifest.sha256")
    problems, _ = check(folder, Trust(allow_unsigned=True))  # would block if it were opened
    assert any(p.startswith("report/pipe: not a regular file") for p in problems), problems
    assert any(p.startswith("manifest.sha256: missing or empty") for p in problems), problems
    os.unlink(folder / MANIFEST)
    os.mkfifo(folder / MANIFEST)
    problems, _ = check(folder, Trust(allow_unsigned=True))
    assert any(p.startswith(f"{MANIFEST}: missing, or not a plain file") for p in problems)


_INT64 = st.integers(-(2**63), 2**63 - 1)
_HOSTILE_PATHS = st.one_of(
    st.sampled_from(
        [
            *("..", "../x", "/etc/passwd", "a/../../x", "./a", "a//b", "C:/x", "c:x", "\\\\srv\\x"),
            *("a\x00b", "", ".", "report/./rapporto.pdf", "report/", "/"),
        ]
    ),
    st.text(alphabet="./\\a:\x00", min_size=0, max_size=12),
    _INT64,
    st.none(),
    st.lists(st.text(max_size=3), max_size=2),
)
_ENTRIES = st.one_of(
    st.fixed_dictionaries({"path": _HOSTILE_PATHS, "sha256": st.text(max_size=70)}),
    st.dictionaries(st.text(max_size=8), _INT64 | st.text(max_size=8), max_size=3),
    _INT64,
    st.text(max_size=10),
    st.none(),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(_ENTRIES, min_size=1, max_size=6), files=st.sampled_from([True, False]))
def test_fuzz_check_with_hostile_manifests(entries: list[object], files: bool) -> None:
    """Whatever the manifest lists, ``check`` names problems and never raises, reads outside,
    or passes a package whose manifest lists anything but its own plain files, once each."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        secret, digest = _outside(root)
        folder = root / "package"
        _package(folder, None)
        _list(folder, entries)
        if not files:
            manifest = orjson.loads((folder / MANIFEST).read_bytes())
            manifest["files"] = entries
            (folder / MANIFEST).write_bytes(orjson.dumps(manifest))
        problems, _ = check(folder, Trust(allow_unsigned=True))
        # Added to the listing, every entry is a path outside, a file that is not there or
        # one listed twice; replacing it, the package's own files go unlisted.
        assert problems, entries
        assert not any(digest in p for p in problems)  # the outside file was never hashed
        assert secret.read_bytes() == b"outside the package\n"


@settings(max_examples=60, deadline=None)
@given(garbage=st.binary(max_size=300))
def test_fuzz_check_with_a_manifest_that_is_not_one(garbage: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "package"
        _package(folder, None)
        (folder / MANIFEST).write_bytes(garbage)
        problems, signer = check(folder, Trust(allow_unsigned=True))
        assert problems and signer in ("unknown", "unsigned")


def _bomb(path: Path, line: bytes, total: int) -> None:
    """A gzip file of ``total`` bytes of ``line`` repeated, written in blocks."""
    block = line * max(1, (1 << 20) // len(line))
    with gzip.open(path, "wb", compresslevel=9) as fh:
        written = 0
        while written < total:
            fh.write(block)
            written += len(block)


def test_a_gzip_bomb_is_refused_once_it_outgrows_its_size(tmp_path: Path) -> None:
    bomb = tmp_path / "sample.lp.gz"
    _bomb(bomb, b"sample,device=pc-1 in_use_s=60.0 0\n", 16 << 20)
    assert bomb.stat().st_size < 1 << 20  # 16 MiB in some tens of kB
    read = 0
    with pytest.raises(EvidenceError, match="gzip bomb"):
        for text in read_lines(bomb):
            read += len(text) + 1
    assert read <= 100 * bomb.stat().st_size + (1 << 20)


def test_a_line_longer_than_the_bound_is_refused_without_reading_it_whole(
    tmp_path: Path,
) -> None:
    huge = tmp_path / "event.lp.gz"
    # One line of 3 MiB, no newline; random, so it is no gzip bomb.
    huge.write_bytes(gzip.compress(os.urandom(3 * MAX_LINE_BYTES // 2).hex().encode(), 1))
    with pytest.raises(EvidenceError, match="a line longer than"):
        list(read_lines(huge))
    broken = tmp_path / "status.lp.gz"
    broken.write_bytes(gzip.compress(b"status,device=a online=true 1\n")[:-12])
    with pytest.raises(EvidenceError, match="not a gzip file"):
        list(read_lines(broken))


def test_restore_refuses_a_bomb_before_it_fills_the_database(
    config: Config, influx: InfluxV1, tmp_path: Path
) -> None:
    bomb = tmp_path / "sample.lp.gz"
    _bomb(bomb, b"sample,device=pc-1 in_use_s=60.0 0\n", 32 << 20)
    with pytest.raises(EvidenceError, match="gzip bomb"):
        restore(config.influx, [bomb])


def test_verify_refuses_a_hostile_package_from_its_cli(
    tmp_path: Path, signed: tuple[Path, str]
) -> None:
    from typer.testing import CliRunner

    from labmeter.cli.main import app

    folder, _ = signed
    shutil.copytree(folder, tmp_path / "copy")
    (tmp_path / "copy" / "report" / "rapporto.pdf").write_bytes(b"%PDF-1.4 edited\n")
    for seal_file in (SIGNATURE, PUBLIC_KEY):
        (tmp_path / "copy" / seal_file).unlink()
    seal(tmp_path / "copy", META, None)
    result = CliRunner().invoke(app, ["period", "verify", str(tmp_path / "copy")])
    assert result.exit_code == 1
    assert "unsigned" in " ".join(result.output.split()), result.output


def test_read_lines_gives_every_line_across_block_boundaries(tmp_path: Path) -> None:
    lines = [f"m,device=pc-{n % 97} f={'x' * (n % 251)}i {n}" for n in range(60_000)]
    path = tmp_path / "m.lp.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n\n").encode(), 1))  # > 3 blocks
    assert list(read_lines(path)) == lines
    path.write_bytes(gzip.compress("\n".join(lines).encode(), 1))  # no final newline
    assert list(read_lines(path)) == lines
