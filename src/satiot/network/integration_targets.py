"""Where an integration delivers: the forms a target may take, and whether the tenant's
destination allow-list covers it.

A webhook is an absolute http(s) URL; a customer's own MQTT broker is ``mqtt://host:port`` or
``mqtts://host:port`` (TLS), optionally with the PEM of a CA of its own. A visibly private host
is refused here (:mod:`.target_guard` checks the addresses when connecting), and so is one the
tenant's allow-list does not cover (:mod:`.destinations`).
"""

from __future__ import annotations

import ipaddress
import ssl
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509
from sqlalchemy.orm import Session

from satiot.core.errors import InvalidInput
from satiot.network.destinations import Policy, Refused, Resolver, policy_of
from satiot.network.target_guard import check_host

MQTT_DEFAULT_PORT = 1883
MQTTS_DEFAULT_PORT = 8883
MAX_CA_PEM_CHARS = 64 * 1024
MAX_CA_CERTIFICATES = 20
_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False


def parse_mqtt_url(url: str) -> BrokerAddress:
    """``mqtt://host[:port]`` (1883) or ``mqtts://host[:port]`` (TLS, 8883) as a broker
    address; anything else is refused. Credentials go in their own fields, never in the url,
    which API answers show."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"bad port in {url!r}", field="url") from exc
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise InvalidInput(
            "an MQTT broker is named as mqtt://host:port or mqtts://host:port (TLS)", field="url"
        )
    if parts.username or parts.password:
        raise InvalidInput("put credentials in username and password, not in the url", field="url")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidInput("an MQTT url names only host and port", field="url")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        parts.hostname, port or (MQTTS_DEFAULT_PORT if tls else MQTT_DEFAULT_PORT), tls
    )


def check_ca_pem(pem: str) -> str:
    """One or more PEM certificates to trust for a broker's TLS, else :class:`InvalidInput`
    naming ``ca_pem``. Only certificates are taken: a private key pasted by mistake is refused
    rather than stored."""
    if len(pem) > MAX_CA_PEM_CHARS:
        raise InvalidInput(f"ca_pem is longer than {MAX_CA_PEM_CHARS} characters", field="ca_pem")
    if "PRIVATE KEY-----" in pem:
        raise InvalidInput(
            "ca_pem holds a private key; give only the CA certificate", field="ca_pem"
        )
    if _PEM_CERTIFICATE not in pem:
        raise InvalidInput(
            "ca_pem must be PEM: one or more -----BEGIN CERTIFICATE----- blocks", field="ca_pem"
        )
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise InvalidInput(
            f"ca_pem is not a readable PEM certificate: {exc}", field="ca_pem"
        ) from exc
    if len(certificates) > MAX_CA_CERTIFICATES:
        raise InvalidInput(
            f"ca_pem holds more than {MAX_CA_CERTIFICATES} certificates", field="ca_pem"
        )
    try:  # what the TLS connection will load must load
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError) as exc:
        raise InvalidInput(f"ca_pem cannot be used for TLS: {exc}", field="ca_pem") from exc
    return pem


def check_webhook_url(url: str, *, allow_private: bool = False) -> str:
    """An absolute http(s) URL with a host; credentials in the URL are refused because the
    URL is shown back in API answers and the console, where a password must never be. A
    visibly private host is refused unless ``allow_private`` (:mod:`.target_guard`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("a webhook url must be an absolute http:// or https:// URL", field="url")
    if parts.username or parts.password:
        raise InvalidInput("put credentials in the secret, not in the url", field="url")
    try:
        _ = parts.port
    except ValueError as exc:
        raise InvalidInput(f"bad port in {url!r}", field="url") from exc
    if parts.fragment:
        raise InvalidInput("a webhook url has no #fragment", field="url")
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if any(not label for label in host.split(".")):
            raise InvalidInput(f"{host!r} is not a host name", field="url") from None
    if not allow_private:
        check_host(host)
    return url


def target_address(kind: str, url: str | None) -> tuple[str, int] | None:
    """The host and port a delivery connects to, or None for the platform's own broker."""
    if not url:
        return None
    if kind == "mqtt":
        broker = parse_mqtt_url(url)
        return broker.host, broker.port
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True)
class DestinationState:
    """Whether the tenant's allow-list lets deliveries reach an integration, judged without a
    DNS lookup: ``unrestricted`` (no policy, or the platform broker), ``allowed``,
    ``by-address`` (only the addresses its host resolves to can decide, at each delivery)
    or ``refused`` with the ``reason``."""

    state: str
    reason: str | None = None


def destination_state(policy: Policy | None, kind: str, url: str | None) -> DestinationState:
    address = target_address(kind, url)
    if policy is None or address is None:
        return DestinationState("unrestricted")
    why = policy.refusal(*address)
    if why is not None:
        return DestinationState("refused", why)
    if policy.needs_addresses(*address):
        return DestinationState("by-address")
    return DestinationState("allowed")


def check_allowed(
    session: Session,
    tenant_id: uuid.UUID,
    kind: str,
    url: str | None,
    resolve: Resolver | None = None,
) -> None:
    """Refuse a target the tenant's destination allow-list does not cover (directional
    access, :mod:`.destinations`), naming ``url``."""
    address = target_address(kind, url)
    policy = policy_of(session, tenant_id)
    if address is None or policy is None:
        return
    try:
        policy.check(*address, resolve=resolve)
    except Refused as exc:
        raise InvalidInput(str(exc), field="url") from None
