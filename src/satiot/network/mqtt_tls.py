"""TLS to MQTT brokers: the client context, and the CA file of the platform's own broker.

Every broker connection verifies the certificate chain (against a CA the operator or the
customer gave, else the system store) and that the certificate names the broker's host, over
TLS 1.2 or later; there is no switch to skip either.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from satiot.core.errors import InvalidInput
from satiot.network.integration_targets import check_ca_pem


class _ServerNameContext(ssl.SSLContext):
    """A client context whose handshakes always name ``server_name``.

    paho passes the host it was told to connect to as the TLS server name; for a customer's
    broker that is the checked IP address, not the name on the certificate. This context puts
    the url's host name back, so SNI and the host-name check (``check_hostname``) use it.
    """

    server_name: str

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        return super().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=self.server_name,
            session=session,
        )


def tls_context(server_name: str, ca_pem: str | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ client context that verifies the chain (against ``ca_pem`` only when given,
    else the system store) and that the certificate is for ``server_name``."""
    context = _ServerNameContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
    context.server_name = server_name
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_pem:
        context.load_verify_locations(cadata=ca_pem)
    else:
        context.load_default_certs()
    return context


def read_ca_file(path: Path | None) -> str | None:
    """The platform broker's CA certificates (``SATIOT_MQTT_CA_FILE``), checked as a
    customer's ``ca_pem`` is; a file that cannot serve is a :class:`ValueError` saying why,
    at start-up rather than at the first handshake."""
    if path is None:
        return None
    try:
        pem = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"SATIOT_MQTT_CA_FILE {path}: cannot be read ({exc})") from exc
    try:
        return check_ca_pem(pem)
    except InvalidInput as exc:
        raise ValueError(f"SATIOT_MQTT_CA_FILE {path}: {exc.detail}") from exc
