"""Broker accounts: a password entry per device (or for the collector) and the config to go with it.

The hash is written here rather than by ``mosquitto_passwd`` so that a technician can add a
device from any machine with labmeter installed, the Docker host included, where mosquitto
lives only in its container. The format is mosquitto 2.0's own ``$7$`` (PBKDF2-SHA512, 101
iterations, 12-byte salt), which the test suite checks against the real broker.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from labmeter.config import MAKE_A_SECRET, placeholder
from labmeter.contract import Topic
from labmeter.errors import ConfigError, PayloadRejected

COLLECTOR_USER = "labmeter-collector"  # the name deploy/mosquitto/acl grants read access to
PBKDF2_ITERATIONS = 101  # mosquitto_passwd's default for $7$
SALT_BYTES = 12


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A mosquitto 2.0 password hash: ``$7$<iterations>$<b64 salt>$<b64 PBKDF2-SHA512>``."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    b64 = base64.b64encode
    return f"$7${PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def device_username(site: str, lab: str, device: str) -> str:
    """``<site>/<lab>/<device>``: the ACL's ``pattern write labmeter/v1/%u/+`` needs this shape."""
    try:
        Topic(site, lab, device, "sample")
    except PayloadRejected as exc:
        raise ConfigError("site/lab/device", exc.detail) from exc
    return f"{site}/{lab}/{device}"


def set_password(password_file: Path, username: str, password: str) -> bool:
    """Add or replace ``username``'s entry; True when it replaced one. Other lines are kept."""
    if ":" in username or "\n" in username or not username:
        raise ConfigError("username", f"{username!r} cannot be a mosquitto user name")
    lines = password_file.read_text().splitlines() if password_file.exists() else []
    entry = f"{username}:{hash_password(password)}"
    kept = [ln for ln in lines if ln.split(":", 1)[0] != username]
    replaced = len(kept) != len(lines)
    # Atomic replace: a broker reloading (SIGHUP) mid-write must never read half a file.
    fd, tmp = tempfile.mkstemp(dir=password_file.parent, prefix=".passwd-")
    try:
        with os.fdopen(fd, "w") as out:
            out.write("\n".join([*kept, entry]) + "\n")
        # mosquitto reads the file after dropping to its own user: keep the owner, group and
        # mode the technician gave the file (e.g. root:mosquitto 640), or 640 for a new one.
        if password_file.exists():
            st = password_file.stat()
            if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                os.chown(tmp, st.st_uid, st.st_gid)
            os.chmod(tmp, st.st_mode & 0o777)
        else:
            os.chmod(tmp, 0o640)
        os.replace(tmp, password_file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return replaced


def _toml_str(value: str) -> str:
    # A JSON string with only ASCII is a valid TOML basic string (same escapes).
    return json.dumps(value, ensure_ascii=True)


@dataclass(frozen=True)
class BrokerAccess:
    """How a client reaches the broker: the ``[mqtt]`` section of its config."""

    url: str
    ca_file: str

    def toml(self, username: str, password: str) -> str:
        return (
            "[mqtt]\n"
            f"url = {_toml_str(self.url)}\n"
            f"ca_file = {_toml_str(self.ca_file)}\n"
            f"username = {_toml_str(username)}\n"
            f"password = {_toml_str(password)}\n"
        )


def add_device(
    password_file: Path,
    access: BrokerAccess,
    site: str,
    lab: str,
    device: str,
    kind: str = "pc",
    password: str | None = None,
    pseudonym_secret: str | None = None,
) -> str:
    """Create (or reset) the device's broker password; return the agent's TOML config.
    An example's placeholder given as a password or the site's secret is refused."""
    for key, value in (("mqtt.password", password), ("agent.pseudonym_secret", pseudonym_secret)):
        if value and placeholder(value):
            raise ConfigError(key, f"is an example's placeholder, not a secret: `{MAKE_A_SECRET}`")
    username = device_username(site, lab, device)
    password = password or secrets.token_urlsafe(24)
    set_password(password_file, username, password)
    secret = (
        f"pseudonym_secret = {_toml_str(pseudonym_secret)}\n"
        if pseudonym_secret
        else "# pseudonym_secret = the site's secret, the same on all its agents; make it once\n"
        f"# with `{MAKE_A_SECRET}` and keep it off the data (agent.md)\n"
    )
    return (
        f"# labmeter agent for {username}\n"
        f"# The broker's ACL (deploy/mosquitto/acl) lets it publish labmeter/v1/{username}/+ and\n"
        f"# read the collector's confirmations on labmeter/v1/{username}/confirm/+.\n"
        + access.toml(username, password)
        + "\n[agent]\n"
        f"site = {_toml_str(site)}\n"
        f"lab = {_toml_str(lab)}\n"
        f"device = {_toml_str(device)}\n"
        f"kind = {_toml_str(kind)}\n" + secret
    )


def add_collector(password_file: Path, access: BrokerAccess, password: str | None = None) -> str:
    """Create (or reset) the collector's broker password; return its ``[mqtt]`` section."""
    password = password or secrets.token_urlsafe(24)
    set_password(password_file, COLLECTOR_USER, password)
    return access.toml(COLLECTOR_USER, password)
