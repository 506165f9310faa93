"""A real Mosquitto with a TLS listener and password logins, for MQTT delivery tests.

The fixture makes a CA and a server certificate for ``localhost`` (DNS name only, no IP
address, so a client that checked the certificate against 127.0.0.1 instead of the name would
fail), a password file, and a config with ``allow_anonymous false`` and one TLS listener on a
free port of 127.0.0.1; it starts ``/usr/sbin/mosquitto`` on it and stops it afterwards.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.network.mqtt_subscriber import Subscriber

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"


@dataclass(frozen=True)
class Pki:
    ca_pem: str
    server_cert_pem: str
    server_key_pem: str


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_pki(host: str = "localhost") -> Pki:
    """A CA and a server certificate it issued for ``host`` (as a DNS name only)."""
    ca_key, ca_cert = make_ca("satiot test CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Pki(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM).decode(),
        server_cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        server_key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


def other_ca_pem() -> str:
    """A CA that issued nothing the broker presents."""
    return make_ca("some other CA")[1].public_bytes(serialization.Encoding.PEM).decode()


def write_password_file(path: Path, logins: dict[str, str]) -> None:
    """A Mosquitto password file: with ``mosquitto_passwd`` when installed, else in its
    ``$7$`` format (PBKDF2-HMAC-SHA512, 101 iterations) written directly."""
    if os.access(MOSQUITTO_PASSWD, os.X_OK):
        path.touch(mode=0o600)
        for user, password in logins.items():
            subprocess.run([MOSQUITTO_PASSWD, "-b", str(path), user, password], check=True)
        return
    lines = []
    for user, password in logins.items():
        salt = os.urandom(12)
        digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101)
        b64 = base64.b64encode
        lines.append(f"{user}:$7$101${b64(salt).decode()}${b64(digest).decode()}")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TlsBroker:
    """A running Mosquitto with TLS on ``port`` and the ``logins`` it accepts."""

    directory: Path
    logins: dict[str, str]
    pki: Pki = field(default_factory=make_pki)
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtts://localhost:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    def start(self) -> TlsBroker:
        if not os.access(MOSQUITTO, os.X_OK):
            pytest.fail(f"{MOSQUITTO} is missing: install mosquitto to run the MQTT TLS tests")
        d = self.directory
        self.ca_file.write_text(self.pki.ca_pem)
        (d / "server.pem").write_text(self.pki.server_cert_pem)
        (d / "server.key").write_text(self.pki.server_key_pem)
        (d / "server.key").chmod(0o600)
        write_password_file(d / "passwd", self.logins)
        config = d / "mosquitto.conf"
        config.write_text(
            "\n".join(
                [
                    f"user {getpass.getuser()}",
                    "persistence false",
                    "log_dest stderr",
                    "allow_anonymous false",
                    f"password_file {d / 'passwd'}",
                    f"listener {self.port} 127.0.0.1",
                    f"cafile {self.ca_file}",
                    f"certfile {d / 'server.pem'}",
                    f"keyfile {d / 'server.key'}",
                    "",
                ]
            )
        )
        self.log = (d / "mosquitto.log").open("wb")
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(config)], stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {(d / 'mosquitto.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()


def tls_subscriber(broker: TlsBroker, user: str, pattern: str) -> Subscriber:
    """A subscriber on the TLS broker, trusting its CA and logged in as ``user``."""
    return Subscriber(
        pattern, "localhost", broker.port, ca_file=broker.ca_file, login=(user, broker.logins[user])
    )
