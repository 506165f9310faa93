"""What an order asks for, before the database is consulted: items and their own checks.

A JSON order and a CSV bulk order both become an :class:`OrderIn` of :class:`ItemIn`; every
item names where it came from (``line``: its index in a JSON order, its line in a CSV file),
so that each error can say which item, which field and why (:class:`ItemError`). The checks
here need no database: the shape of identities (IMEI with its Luhn digit, DevEUI, ICCID,
IMSI, session keys) and which fields each action needs. :mod:`satiot.bss.order_checks` then
checks the items against the customer, the contract, the catalog and the inventory.

Field names in errors are the CSV column names (``imei``, ``dev_eui``, ``terminal_model``,
``offering``, ``add_ons``, ``subscription_id`` …); the JSON API maps them to its own paths.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from satiot.core.errors import DomainError, InvalidInput
from satiot.network.devices import parse_dev_addr, parse_dev_eui, parse_key
from satiot.oss.identifiers import validate_iccid, validate_imsi
from satiot.oss.terminals import validate_imei

ACTIONS = ("add", "modify", "delete")
SESSION_KEYS = ("dev_addr", "nwk_s_key", "app_s_key")


@dataclass(frozen=True)
class TerminalIn:
    """The terminal an ``add`` item activates. The ABP session material is needed only when
    the device is not in the network inventory yet (it is then created with it)."""

    dev_eui: str
    terminal_model: str
    imei: str | None = None
    scenario: str | None = None
    iccid: str | None = None
    imsi: str | None = None
    name: str = ""
    dev_addr: str | None = None
    nwk_s_key: str | None = None
    app_s_key: str | None = None

    @property
    def has_session(self) -> bool:
        return any(getattr(self, k) for k in SESSION_KEYS)

    def public(self) -> dict[str, Any]:
        """What an order item stores and shows of the terminal: never its session keys."""
        view = {
            "dev_eui": self.dev_eui,
            "imei": self.imei,
            "terminal_model": self.terminal_model,
            "scenario": self.scenario,
            "iccid": self.iccid,
            "imsi": self.imsi,
            "name": self.name or None,
            "dev_addr": self.dev_addr,
        }
        return {k: v for k, v in view.items() if v is not None}


@dataclass(frozen=True)
class ItemIn:
    """One line of an order. ``offering`` is an offering version id or a code (the code's
    Active version); ``add_ons`` likewise."""

    action: str
    line: int
    offering: str | None = None
    add_ons: tuple[str, ...] | None = None
    terminal: TerminalIn | None = None
    subscription_id: uuid.UUID | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ItemError:
    """Why one item cannot be accepted: ``item`` is the item's ``line``."""

    item: int
    field: str
    reason: str

    def as_dict(self, item_key: str = "item", field_key: str = "field") -> dict[str, Any]:
        return {item_key: self.item, field_key: self.field, "reason": self.reason}


@dataclass(frozen=True)
class OrderIn:
    items: tuple[ItemIn, ...]
    customer_id: uuid.UUID | None = None
    billing_account_id: uuid.UUID | None = None
    external_id: str | None = None
    note: str | None = None
    requested_start_at: datetime | None = None
    source: str = "api"
    #: Errors found before the database was asked (a CSV file's unreadable rows): reported
    #: together with the items' own.
    errors: tuple[ItemError, ...] = ()


class OrderRejected(InvalidInput):
    """The order (or CSV file) is refused as a whole; ``errors`` lists every bad item."""

    slug = "order-rejected"
    title = "Order rejected"

    def __init__(
        self,
        errors: Sequence[ItemError],
        *,
        item_key: str = "item",
        field_key: str = "field",
        noun: str = "item",
    ) -> None:
        self.errors = list(errors)
        bad = sorted({e.item for e in self.errors})
        first = self.errors[0]
        plural = "s" if len(bad) != 1 else ""
        super().__init__(
            f"{len(bad)} {noun}{plural} cannot be accepted, nothing was applied; first: "
            f"{noun} {first.item}, {first.field}: {first.reason}",
            errors=[e.as_dict(item_key, field_key) for e in self.errors],
        )


def _checked(
    errors: list[ItemError],
    line: int,
    name: str,
    value: str | None,
    check: Callable[[str], Any],
) -> Any:
    """``check(value)`` (None for an empty value), noting a failure under ``name``."""
    if value is None or value == "":
        return None
    try:
        return check(value)
    except DomainError as exc:
        errors.append(ItemError(line, name, exc.detail))
        return None


def _terminal(line: int, t: TerminalIn, errors: list[ItemError]) -> TerminalIn:
    if not t.dev_eui:
        errors.append(ItemError(line, "dev_eui", "dev_eui is required (16 hex digits)"))
    model = t.terminal_model.strip()
    if not model:
        errors.append(ItemError(line, "terminal_model", "terminal_model is required"))
    elif len(model) > 100:
        errors.append(ItemError(line, "terminal_model", "at most 100 characters"))
    scenario = (t.scenario or "").strip() or None
    if scenario and len(scenario) > 64:
        errors.append(ItemError(line, "scenario", "at most 64 characters"))
    if len(t.name) > 100:
        errors.append(ItemError(line, "name", "at most 100 characters"))
    given = [k for k in SESSION_KEYS if getattr(t, k)]
    if given and len(given) != len(SESSION_KEYS):
        missing = [k for k in SESSION_KEYS if k not in given]
        errors.append(
            ItemError(line, missing[0], "give dev_addr, nwk_s_key and app_s_key together")
        )
    keys = {
        "dev_addr": _checked(errors, line, "dev_addr", t.dev_addr, parse_dev_addr),
        "nwk_s_key": _checked(errors, line, "nwk_s_key", t.nwk_s_key, lambda v: parse_key(v, "")),
        "app_s_key": _checked(errors, line, "app_s_key", t.app_s_key, lambda v: parse_key(v, "")),
    }
    return TerminalIn(
        dev_eui=_checked(errors, line, "dev_eui", t.dev_eui, parse_dev_eui) or t.dev_eui,
        terminal_model=model,
        imei=_checked(errors, line, "imei", t.imei, validate_imei),
        scenario=scenario,
        iccid=_checked(errors, line, "iccid", t.iccid, validate_iccid),
        imsi=_checked(errors, line, "imsi", t.imsi, validate_imsi),
        name=t.name.strip(),
        dev_addr=f"{keys['dev_addr']:08X}" if keys["dev_addr"] is not None else None,
        nwk_s_key=keys["nwk_s_key"].hex().upper() if keys["nwk_s_key"] else None,
        app_s_key=keys["app_s_key"].hex().upper() if keys["app_s_key"] else None,
    )


def check_item(item: ItemIn) -> tuple[ItemIn, list[ItemError]]:
    """The item with identities in canonical form, and what is wrong with it on its own."""
    errors: list[ItemError] = []
    line = item.line
    if item.action not in ACTIONS:
        errors.append(ItemError(line, "action", f"action must be one of {', '.join(ACTIONS)}"))
        return item, errors
    offering = (item.offering or "").strip() or None
    add_ons = tuple(a.strip() for a in item.add_ons if a.strip()) if item.add_ons else item.add_ons
    reason = (item.reason or "").strip() or None
    if reason and len(reason) > 500:
        errors.append(ItemError(line, "reason", "at most 500 characters"))
    terminal = item.terminal
    if item.action == "add":
        if terminal is None:
            errors.append(ItemError(line, "dev_eui", "an add item needs its terminal"))
        else:
            terminal = _terminal(line, terminal, errors)
        if item.subscription_id is not None:
            errors.append(ItemError(line, "subscription_id", "an add item makes a new one"))
    else:
        if item.subscription_id is None:
            errors.append(ItemError(line, "subscription_id", f"a {item.action} item names one"))
        if terminal is not None:
            errors.append(ItemError(line, "dev_eui", f"a {item.action} item names no terminal"))
    if item.action in ("add", "modify") and offering is None:
        errors.append(ItemError(line, "offering", f"an {item.action} item needs an offering"))
    if item.action == "delete" and (offering or add_ons):
        errors.append(ItemError(line, "offering", "a delete item names no offering"))
    return replace(item, offering=offering, add_ons=add_ons, terminal=terminal, reason=reason), (
        errors
    )


@dataclass
class Checked:
    """Items that passed their own checks, and every error found so far."""

    items: list[ItemIn] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)


def check_items(items: Sequence[ItemIn]) -> Checked:
    """Each item checked on its own, plus duplicates across the order (one terminal or one
    subscription in two items)."""
    out = Checked()
    seen: dict[tuple[str, str], int] = {}
    for raw in items:
        item, errors = check_item(raw)
        out.items.append(item)
        keys: list[tuple[str, str | None]] = [("subscription_id", str(item.subscription_id))]
        if item.terminal is not None:
            t = item.terminal
            keys = [("dev_eui", t.dev_eui), ("imei", t.imei), ("iccid", t.iccid), ("imsi", t.imsi)]
        for name, value in keys:
            if value is None or value == "None":
                continue
            first = seen.setdefault((name, value), item.line)
            if first != item.line:
                errors.append(ItemError(item.line, name, f"{value} is already on item {first}"))
        out.errors.extend(errors)
    return out
