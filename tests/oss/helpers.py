"""Builders the OSS tests share: a licensed model, a block, a device record."""

from __future__ import annotations

from datetime import date

from satiot.oss.identifiers import DeviceRecord
from satiot.oss.number_blocks import BlockSpec
from satiot.oss.terminals import TerminalModelSpec

IMEI = "354178036859789"  # REFERENCE §1
IMEI_BAD_CHECK = "354178036859788"
USCC = "91110000600037341L"
PREFIX = "88.608.8899"


def model_spec(
    name: str = "TQ-M100", licence: str = "00-B182-228209", **kw: object
) -> TerminalModelSpec:
    fields: dict[str, object] = {
        "name": name,
        "equipment_name": "Satellite IoT module",
        "manufacturer": "Example Devices Co.",
        "applicant": "Example Devices Co.",
        "licence_number": licence,
        "issued_on": date(2025, 3, 1),
        "expires_on": date(2028, 2, 29),
    } | kw
    return TerminalModelSpec(**fields)  # type: ignore[arg-type]


def block_spec(
    name: str = "b1",
    prefix: str = "14101234",
    *,
    first: str | None = None,
    last: str | None = None,
    purpose: str = "satellite IoT terminals",
    scope: str = "national",
) -> BlockSpec:
    return BlockSpec(name, prefix, purpose, scope, first=first, last=last)


def record(number: str, terminal_id: str = IMEI, **kw: str | None) -> DeviceRecord:
    fields: dict[str, str | None] = {
        "terminal_id": terminal_id,
        "model": "TQ-M100",
        "licence_number": "00-B182-228209",
        "iot_number": number,
        "credit_code": USCC,
    } | kw
    return DeviceRecord(**fields)  # type: ignore[arg-type]
