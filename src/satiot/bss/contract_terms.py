"""What a contract fixes: scenario, terminals, quotas, destinations, service area, tariffs.

REFERENCE §5: the contract fixes the application scenario, the terminal models and the quotas,
and service is default-deny (data only, to an allow-list of destinations, capped monthly).
This module holds the terms' reference data and the checks that need no database; the checks
against the inventory and the catalog are in :mod:`satiot.bss.contracts`.

Terms are stored canonically (sorted, de-duplicated, lower-case names, compressed addresses),
so that two contracts saying the same thing render to the same bytes.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from satiot.bss.realname import PROVINCES
from satiot.core.errors import InvalidInput


@dataclass(frozen=True)
class Scenario:
    code: str
    name: str
    #: GB/T 4754 sections whose customers typically use it (for the scenario review).
    sections: str


#: Application scenarios matching the notice's service objects (industry, transport, energy,
#: agriculture, emergency and other data collection). The operator may extend this list.
SCENARIOS: dict[str, Scenario] = {
    s.code: s
    for s in (
        Scenario("environmental-monitoring", "Environmental and ecological monitoring", "N"),
        Scenario("hydrology-water", "Hydrology, water resources and flood monitoring", "DN"),
        Scenario("agriculture", "Agriculture, forestry, livestock and fishery", "A"),
        Scenario("energy-pipeline", "Energy: power grid, oil and gas pipeline monitoring", "BD"),
        Scenario("industrial-assets", "Industrial equipment and asset monitoring", "BC"),
        Scenario("transport-logistics", "Transport and logistics: vehicles, containers", "G"),
        Scenario("maritime", "Maritime and inland-waterway vessels", "AG"),
        Scenario("aviation-low-altitude", "Aircraft and low-altitude vehicles", "G"),
        Scenario("emergency", "Emergency response and disaster monitoring", "NS"),
        Scenario("public-infrastructure", "Public facilities and infrastructure", "NS"),
    )
}

#: What happens when a device reaches its monthly quota.
QUOTA_ACTIONS: dict[str, str] = {
    "suspend": "service to the device is suspended until the next month",
    "throttle": "the device may send one message per hour until the month ends; messages "
    "over the quota are not charged",
    "notify": "the customer is notified and further use is charged at the disclosed tariff",
}

#: Networks wider than this defeat the allow-list's purpose (directional access).
MIN_PREFIX = {4: 16, 6: 48}
MAX_ALLOW_LIST = 64

_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PORT_RE = re.compile(r"^[0-9]{1,5}$")


@dataclass(frozen=True)
class ContractTerms:
    """The terms of one contract version, canonical once :func:`normalise` returned them."""

    scenario: str
    allowed_models: tuple[str, ...]
    max_devices: int
    quota_action: str
    destination_allow_list: tuple[str, ...]
    service_area: tuple[str, ...]
    offering_ids: tuple[uuid.UUID, ...]
    monthly_messages_per_device: int | None = None
    monthly_bytes_per_device: int | None = None
    scenario_description: str = ""
    stop_at_zero_balance: bool = False


def _bad(field: str, why: str) -> InvalidInput:
    return InvalidInput(f"{field}: {why}", field=field)


def _check_port(text: str, field: str) -> int:
    if not _PORT_RE.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise _bad(field, f"port {text!r} is not a number from 1 to 65535")
    return int(text)


def _check_network(text: str, field: str) -> str:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise _bad(field, f"{text!r} is not an IP address or network ({exc})") from None
    if net.prefixlen < MIN_PREFIX[net.version]:
        raise _bad(
            field,
            f"{text} is too wide for an allow-list (at most /{MIN_PREFIX[net.version]} for "
            f"IPv{net.version})",
        )
    addr = net.network_address
    if addr.is_multicast or addr.is_unspecified or addr.is_loopback:
        raise _bad(field, f"{text} is not a destination a device can reach")
    if net.prefixlen == net.max_prefixlen:
        return str(addr)
    return str(net)


def _check_domain(text: str, field: str) -> str:
    name = text.rstrip(".")
    wildcard = name.startswith("*.")
    if wildcard:
        name = name[2:]
    try:
        ascii_name = name.encode("idna").decode("ascii").lower()
    except (UnicodeError, ValueError):
        raise _bad(field, f"{text!r} is not a valid domain name") from None
    labels = ascii_name.split(".")
    if len(labels) < 2 or len(ascii_name) > 253:
        raise _bad(field, f"{text!r} is not a fully qualified domain name (e.g. example.com)")
    for label in labels:
        if not _LABEL_RE.fullmatch(label):
            raise _bad(field, f"{text!r}: label {label!r} is not a valid domain label")
    if labels[-1].isdigit():
        raise _bad(field, f"{text!r}: the top-level domain cannot be numeric")
    return ("*." if wildcard else "") + ascii_name


def _looks_numeric(host: str) -> bool:
    return bool(re.fullmatch(r"[0-9./]+", host)) or "/" in host


def check_destination(text: str, field: str = "destination_allow_list") -> str:
    """One allow-list entry in canonical form: an IP address or CIDR network, or a domain
    (``*.`` for its subdomains), optionally with ``:port`` (IPv6 in brackets with a port)."""
    entry = (text or "").strip().lower()
    if not entry:
        raise _bad(field, "an empty entry")
    if entry.startswith("["):
        match = re.fullmatch(r"\[([^\]]+)\](?::([^:]*))?", entry)
        if match is None:
            raise _bad(field, f"{text!r}: write an IPv6 address with a port as [address]:port")
        host = _check_network(match.group(1), field)
        if ipaddress.ip_network(host).version != 6:
            raise _bad(field, f"{text!r}: brackets are only for IPv6 addresses")
        if match.group(2) is None:
            return host
        return f"[{host}]:{_check_port(match.group(2), field)}"
    if entry.count(":") > 1:  # IPv6 without a port
        return _check_network(entry, field)
    host, sep, port = entry.partition(":")
    canonical = _check_network(host, field) if _looks_numeric(host) else _check_domain(host, field)
    return f"{canonical}:{_check_port(port, field)}" if sep else canonical


def check_allow_list(entries: Iterable[str]) -> tuple[str, ...]:
    """The allow-list canonical, sorted and without repeats; at least one entry (default
    deny: a device with nowhere to send has no service)."""
    field = "destination_allow_list"
    items = list(entries)
    if not items:
        raise _bad(field, "name at least one destination (service is default-deny)")
    if len(items) > MAX_ALLOW_LIST:
        raise _bad(field, f"at most {MAX_ALLOW_LIST} entries")
    return tuple(sorted({check_destination(e, f"{field}[{i}]") for i, e in enumerate(items)}))


#: The largest caps a contract may state: a message a second for a month is 2.7 million, so
#: these are "no practical cap" while still fitting the columns that store them.
QUOTA_LIMITS: Final = {
    "monthly_messages_per_device": 1_000_000_000,
    "monthly_bytes_per_device": 1_000_000_000_000,
}


def normalise(terms: ContractTerms) -> ContractTerms:
    """The terms checked and canonical; InvalidInput names the first bad field and why."""
    if terms.scenario not in SCENARIOS:
        raise _bad("scenario", f"{terms.scenario!r} is not a known application scenario")
    description = terms.scenario_description.strip()
    if len(description) > 2000:
        raise _bad("scenario_description", "at most 2000 characters")
    models = tuple(sorted({m.strip() for m in terms.allowed_models if m.strip()}))
    if not models:
        raise _bad("allowed_models", "name at least one licensed terminal model")
    if not 1 <= terms.max_devices <= 10_000_000:
        raise _bad("max_devices", "must be from 1 to 10,000,000")
    quotas = (terms.monthly_messages_per_device, terms.monthly_bytes_per_device)
    if quotas == (None, None):
        raise _bad("monthly_messages_per_device", "a contract caps messages or bytes per month")
    for name, quota in zip(
        ("monthly_messages_per_device", "monthly_bytes_per_device"), quotas, strict=True
    ):
        if quota is not None and quota < 1:
            raise _bad(name, "must be at least 1 (leave it out for no cap of this kind)")
        if quota is not None and quota > QUOTA_LIMITS[name]:
            raise _bad(name, f"at most {QUOTA_LIMITS[name]:,} (leave it out for no cap)")
    if terms.quota_action not in QUOTA_ACTIONS:
        raise _bad(
            "quota_action", f"{terms.quota_action!r} is not one of {', '.join(QUOTA_ACTIONS)}"
        )
    area = tuple(sorted({p.strip() for p in terms.service_area}))
    if not area:
        raise _bad("service_area", "name at least one province")
    for code in area:
        if code not in PROVINCES:
            raise _bad("service_area", f"{code!r} is not a GB/T 2260 province code")
    offerings = tuple(sorted(set(terms.offering_ids), key=str))
    if not offerings:
        raise _bad("offering_ids", "disclose at least one tariff (the customer must be told)")
    return ContractTerms(
        scenario=terms.scenario,
        scenario_description=description,
        allowed_models=models,
        max_devices=terms.max_devices,
        monthly_messages_per_device=terms.monthly_messages_per_device,
        monthly_bytes_per_device=terms.monthly_bytes_per_device,
        quota_action=terms.quota_action,
        destination_allow_list=check_allow_list(terms.destination_allow_list),
        service_area=area,
        offering_ids=offerings,
        stop_at_zero_balance=terms.stop_at_zero_balance,
    )
