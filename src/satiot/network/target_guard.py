"""Customer delivery targets on private networks: refused unless the operator allows them.

A tenant names the URL its webhooks go to (and, for MQTT, its own broker). Unguarded, that name
could point the platform at its own database, a cloud metadata service or any other machine on
the operator's network: server-side request forgery, with the delivery log as the read-back
channel. So targets must be public addresses unless ``SATIOT_DELIVERY_ALLOW_PRIVATE`` is set
(tests, or an operator whose customers' systems sit inside its own network).

The check runs twice. When a target is registered, a literal private address or ``localhost``
is refused at once with a clear 400. When a connection is opened, the name is resolved, every
address it resolves to must be public, and the connection goes to exactly the address that
was checked: a name that was public at registration and resolves to a private address later
(DNS rebinding) is stopped there, and no second lookup can differ from the one checked. The
same addresses are held to the tenant's destination allow-list when only they can decide it
(:mod:`.destinations`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from satiot.core.errors import InvalidInput
from satiot.network.destinations import delivering_for

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SETTING = "SATIOT_DELIVERY_ALLOW_PRIVATE"


def is_public(ip: IpAddress) -> bool:
    """Globally routable unicast: not loopback, private, link-local, shared, reserved or
    multicast. An IPv4 address mapped into IPv6 is judged as the IPv4 address it carries."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_host(host: str, field: str = "url") -> None:
    """Refuse a host that is visibly private without a DNS lookup (registration time)."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        raise InvalidInput(
            f"{host} is this machine; delivery goes to public addresses only ({SETTING})",
            field=field,
        )
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return
    if not is_public(ip):
        raise InvalidInput(
            f"{host} is not a public address; delivery goes to public addresses only ({SETTING})",
            field=field,
        )


class PrivateTarget(OSError):
    """A target name resolved to an address that is not public."""


def public_addresses(host: str, infos: Iterable[tuple[Any, ...]]) -> list[str]:
    """The addresses of ``getaddrinfo`` results, all of them public, else :class:`PrivateTarget`."""
    out: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]
        if not is_public(ipaddress.ip_address(address)):
            raise PrivateTarget(
                f"{host} resolves to {address}, which is not a public address ({SETTING})"
            )
        if address not in out:
            out.append(address)
    if not out:
        raise PrivateTarget(f"{host} resolves to no address")
    return out


def resolve_public(host: str, port: int) -> list[str]:
    """Blocking form, for the MQTT client thread."""
    return public_addresses(host, socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to the checked address itself.

    TLS still verifies and names the URL's host: httpcore takes the server name for the
    handshake from the request, not from the address connected to."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self.inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        try:
            addresses = public_addresses(host, infos)
        except PrivateTarget as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        policy = delivering_for.get()
        why = policy.refusal_of_connection(host, port, addresses) if policy else None
        if why is not None:
            raise httpcore.ConnectError(why)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks do not go to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's own transport with its connection pool's network backend wrapped.

    httpx offers no public hook for the backend; the pool attribute is httpcore's, pinned with
    httpx in pyproject.toml, and the tests that send to 127.0.0.1 with the guard on fail if a
    new release moves it."""
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    pool = transport._pool
    if not isinstance(pool, httpcore.AsyncConnectionPool):  # pragma: no cover - httpx changed
        raise RuntimeError("httpx's transport has no httpcore connection pool to guard")
    pool._network_backend = PublicOnlyBackend(pool._network_backend)
    return transport
