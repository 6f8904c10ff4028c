"""The shipped broker config on real mosquitto: TLS with a CA from make-certs.sh, passwords, ACL.

Only paths and the port are rewritten. The broker runs from a world-traversable temp dir
(not pytest's 0700 one): started as root, Debian's mosquitto drops to user ``mosquitto``
and must still read its files and write its persistence there.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labmeter.deploy import BrokerAccess, add_collector, add_device
from labmeter.localstack import Service, free_port, require_binary

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "mosquitto"
DEVICES = [("site-a", "lab-1", "pc-01"), ("site-a", "lab-1", "pc-02")]


@dataclass
class SecureBroker:
    service: Service
    dir: Path
    ca_file: Path
    passwords: dict[str, str]  # username -> password

    @property
    def url(self) -> str:
        return f"mqtts://localhost:{self.service.port}"


def shipped_conf(base: Path, port: int) -> str:
    """deploy/mosquitto/mosquitto.conf with the image's paths and port moved to ``base``."""
    text = (SHIPPED / "mosquitto.conf").read_text()
    for image_dir, local in (
        ("/mosquitto/config/", base / "config"),
        ("/mosquitto/certs/", base / "certs"),
        ("/mosquitto/data/", base / "data"),
    ):
        text = text.replace(image_dir, f"{local}/")
    assert "listener 8883\n" in text
    return text.replace("listener 8883\n", f"listener {port} 127.0.0.1\n")


def _hand_to_mosquitto(paths: list[Path]) -> None:
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for path in paths:
        os.chown(path, user.pw_uid, user.pw_gid)


@pytest.fixture(scope="session")
def secure_broker() -> Iterator[SecureBroker]:
    binary = require_binary("mosquitto")
    base = Path(tempfile.mkdtemp(prefix="labmeter-secure-broker-"))
    base.chmod(0o755)
    try:
        certs, config, data = base / "certs", base / "config", base / "data"
        subprocess.run(
            ["bash", str(SHIPPED / "make-certs.sh"), "-d", str(certs), "server", "localhost"],
            check=True,
            capture_output=True,
        )
        shutil.copytree(SHIPPED / "conf.d", config / "conf.d")
        shutil.copy(SHIPPED / "acl", config / "acl")
        data.mkdir()
        port = free_port()
        (config / "mosquitto.conf").write_text(shipped_conf(base, port))
        passwords: dict[str, str] = {}
        access = BrokerAccess(f"mqtts://localhost:{port}", str(certs / "ca.crt"))
        passwd = config / "passwd"
        for i, (site, lab, device) in enumerate(DEVICES):
            passwords[f"{site}/{lab}/{device}"] = f"device-pw-{i}"
            add_device(passwd, access, site, lab, device, password=f"device-pw-{i}")
        passwords["labmeter-collector"] = "collector-pw"
        add_collector(passwd, access, "collector-pw")
        _hand_to_mosquitto([data, passwd, certs / "server.key"])
        service = Service("mosquitto", [binary, "-c", str(config / "mosquitto.conf")], port, base)
        service.start()
        yield SecureBroker(service, base, certs / "ca.crt", passwords)
        service.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
