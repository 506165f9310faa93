"""Directional access: where a tenant's messages may be delivered.

An IoT service is default-deny (REFERENCE §5.3): a customer's data goes only to the
destinations its signed contract lists, as IP addresses or networks, domain names (``*.`` for
subdomains) and ports. The network owns the rule as it applies to traffic; the business layer
owns the contract. So the network keeps one row per tenant, :class:`DestinationPolicy`, that
the business layer rewrites whenever the contracts in force change (signing, a new version,
termination), and the network reads nothing above itself. A tenant without a row (the
operator's own test tenants, or a network run without the business layer) is not restricted;
a tenant whose row lists nothing may deliver nowhere.

A target is checked where its address is used:

- a **domain** entry allows a URL naming that host (the domain's owner decides where it
  points); a **network** entry allows an address inside it. A target named by host name that no
  domain entry covers is allowed only if every address it resolves to lies in a listed network;
- an entry with a port allows that port only; one without allows any.

Checked when an integration is registered or changed (a clear 400 naming ``url``) and again
before every delivery round (the contract may have changed since); a refused round is a failed
attempt like any other, so nothing is lost and the messages flow again once the contract or
the integration is put right. A webhook whose host only its addresses can allow is checked a
third time on the very addresses a connection goes to (:data:`delivering_for`, read by the
guarded transport of :mod:`.target_guard`), so a name that resolves elsewhere between the
round's check and the connection is stopped there.
"""

from __future__ import annotations

import ipaddress
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from satiot.network.models import DestinationPolicy

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``resolve(host, port)``: the addresses a connection to the host could go to.
Resolver = Callable[[str, int], list[str]]


#: The allow-list of the tenant a request is being sent for (None: unrestricted), set around
#: each webhook request so the connection can check the addresses it actually uses.
delivering_for: ContextVar[Policy | None] = ContextVar("delivering_for", default=None)


class Refused(ValueError):
    """The target is not on the tenant's allow-list (the message says why)."""


@dataclass(frozen=True)
class Destination:
    """One allow-list entry: a network or a domain (``wildcard``: its subdomains), and a
    port or any."""

    network: IpNetwork | None
    domain: str | None
    wildcard: bool
    port: int | None

    def allows_port(self, port: int) -> bool:
        return self.port is None or self.port == port

    def allows_name(self, host: str, port: int) -> bool:
        if self.domain is None or not self.allows_port(port):
            return False
        if self.wildcard:
            return host.endswith("." + self.domain)
        return host == self.domain

    def allows_address(self, address: str, port: int) -> bool:
        if self.network is None or not self.allows_port(port):
            return False
        ip = ipaddress.ip_address(address)
        forms: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
        # An IPv4 address carried in IPv6 (::ffff:a.b.c.d) is the same destination either way.
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            forms.append(ip.ipv4_mapped)
        elif isinstance(ip, ipaddress.IPv4Address):
            forms.append(ipaddress.IPv6Address(f"::ffff:{ip}"))
        return any(f.version == self.network.version and f in self.network for f in forms)


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text)
    except ValueError:
        return False
    return True


def parse(entry: str) -> Destination:
    """An entry in the canonical form contracts store (``203.0.113.0/24``,
    ``[2001:db8::10]:443``, ``*.example.com:8883`` …); :class:`ValueError` if it is not."""
    text = entry.strip().lower()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else None
        return Destination(ipaddress.ip_network(host), None, False, port)
    if text.count(":") > 1:
        return Destination(ipaddress.ip_network(text), None, False, None)
    host, sep, rest = text.partition(":")
    port = int(rest) if sep else None
    if _is_network(host):
        return Destination(ipaddress.ip_network(host), None, False, port)
    wildcard = host.startswith("*.")
    name = host[2:] if wildcard else host
    if not name or "/" in name:
        raise ValueError(f"{entry!r} is not an allow-list entry")
    return Destination(None, name.rstrip("."), wildcard, port)


@dataclass(frozen=True)
class Policy:
    """A tenant's allow-list, parsed once; ``source`` names the contracts it comes from."""

    entries: tuple[Destination, ...]
    source: str

    @classmethod
    def of(cls, entries: Iterable[str], source: str = "") -> Policy:
        return cls(tuple(parse(e) for e in entries), source)

    @property
    def has_networks(self) -> bool:
        return any(d.network is not None for d in self.entries)

    def _why(self, target: str) -> str:
        where = f" of {self.source}" if self.source else ""
        if not self.entries:
            return f"{target}: no contract in force lists a destination; delivery is refused"
        return f"{target} is not on the destination allow-list{where}"

    def refusal(self, host: str, port: int) -> str | None:
        """Why ``host:port`` is refused without a DNS lookup, or None if a domain entry or
        (for an address) a network entry allows it. A host name left undecided here needs
        :meth:`refusal_of_addresses`: :meth:`needs_addresses` says so."""
        name = host.strip("[]").rstrip(".").lower()
        try:
            ipaddress.ip_address(name)
        except ValueError:
            if any(d.allows_name(name, port) for d in self.entries):
                return None
            if self.has_networks:
                return None  # decided by the addresses it resolves to
            return self._why(f"{name}:{port}")
        if self.allows_addresses([name], port):
            return None
        return self._why(f"{name}:{port}")

    def needs_addresses(self, host: str, port: int) -> bool:
        """Whether the decision for ``host`` rests on what it resolves to."""
        name = host.strip("[]").rstrip(".").lower()
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return not any(d.allows_name(name, port) for d in self.entries)
        return False

    def allows_addresses(self, addresses: Sequence[str], port: int) -> bool:
        """Every address lies in a listed network (with the port): a connection may go to
        any of them."""
        return bool(addresses) and all(
            any(d.allows_address(a, port) for d in self.entries) for a in addresses
        )

    def refusal_of_addresses(self, host: str, port: int, addresses: Sequence[str]) -> str | None:
        if self.allows_addresses(addresses, port):
            return None
        listed = ", ".join(addresses) or "no address"
        return self._why(f"{host}:{port} (resolves to {listed})")

    def refusal_of_connection(self, host: str, port: int, addresses: Sequence[str]) -> str | None:
        """Why a connection to ``host`` may not go to these (resolved) addresses, or None:
        only a host whose decision rests on its addresses is held to them."""
        if not self.needs_addresses(host, port):
            return None
        return self.refusal_of_addresses(host, port, addresses)

    def check(self, host: str, port: int, resolve: Resolver | None = None) -> None:
        """Raise :class:`Refused` unless ``host:port`` is allowed, resolving a host name
        with ``resolve`` only when the decision rests on its addresses."""
        why = self.refusal(host, port)
        if why is None and self.needs_addresses(host, port):
            try:
                addresses = (resolve or resolve_all)(host, port)
            except OSError as exc:
                raise Refused(
                    f"{host}:{port}: cannot resolve it to check it against the allow-list ({exc})"
                ) from exc
            why = self.refusal_of_addresses(host, port, addresses)
        if why is not None:
            raise Refused(why)


def resolve_all(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (blocking)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})


def policy_of(session: Session, tenant_id: uuid.UUID) -> Policy | None:
    """The tenant's policy, or None: the tenant is not restricted."""
    row = session.get(DestinationPolicy, tenant_id)
    if row is None:
        return None
    return Policy.of(row.entries, row.source)


def policies_of(session: Session, tenant_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Policy]:
    """The policies of these tenants (one query); a tenant missing from the answer is not
    restricted."""
    wanted = set(tenant_ids)
    if not wanted:
        return {}
    rows = session.scalars(select(DestinationPolicy).where(DestinationPolicy.tenant_id.in_(wanted)))
    return {row.tenant_id: Policy.of(row.entries, row.source) for row in rows}


def set_policy(
    session: Session,
    tenant_id: uuid.UUID,
    entries: Iterable[str],
    *,
    source: str,
    at: datetime,
) -> DestinationPolicy:
    """Replace the tenant's allow-list (the business layer calls this when the contracts in
    force change). Each entry must parse; the list is stored sorted and without repeats."""
    canonical = sorted({e.strip().lower() for e in entries})
    for entry in canonical:
        parse(entry)
    row = session.get(DestinationPolicy, tenant_id)
    if row is None:
        row = DestinationPolicy(tenant_id=tenant_id, entries=canonical, source=source)
        row.updated_at = at
        session.add(row)
    else:
        row.entries, row.source, row.updated_at = canonical, source, at
    session.flush()
    return row
