"""``satiot devices``: the network's devices from a shell."""

from __future__ import annotations

from typing import Annotated

import typer

from satiot.cli_common import OutputOption, fail, out, write_export
from satiot.cli_oss import _migrated

devices_app = typer.Typer(help="The network's devices (terminals).", no_args_is_help=True)


@devices_app.command("export")
def devices_export(
    output: OutputOption = None,
    status: Annotated[
        str | None, typer.Option(help="Only devices in this state, e.g. active")
    ] = None,
    silent_days: Annotated[
        int | None,
        typer.Option(help="Only active devices with no uplink in this many days"),
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's (its slug)")] = None,
) -> None:
    """Every device as CSV, one line each: DevEUI, name, tenant, status, priority, DevAddr,
    last seen and whole days since ("never" for one never heard), frame counters, position
    and creation (China time). UTF-8 with a byte-order mark, as Excel opens it; a progress
    bar when writing to a file. `--silent-days 7` lists the devices to go and look at."""
    from sqlalchemy import ColumnElement, func, select

    from satiot.core.clock import SystemClock
    from satiot.core.models import Tenant
    from satiot.network.device_export import MAX_SILENT_DAYS, export_devices, silent
    from satiot.network.models import Device
    from satiot.network.states import DEVICE

    if status is not None and status not in DEVICE.states:
        fail(f"--status {status!r} is not a device state ({', '.join(DEVICE.states)})")
    if silent_days is not None and not 1 <= silent_days <= MAX_SILENT_DAYS:
        fail(f"--silent-days must be 1 to {MAX_SILENT_DAYS}")
    now = SystemClock().now()
    with _migrated() as database, database.read() as s:
        where: list[ColumnElement[bool]] = []
        if status is not None:
            where.append(Device.status == status)
        if silent_days is not None:
            where.append(silent(silent_days, now))
        if tenant is not None:
            tenant_id = s.scalar(select(Tenant.id).where(Tenant.slug == tenant))
            if tenant_id is None:
                fail(f"no tenant {tenant!r} (give its slug)")
            where.append(Device.tenant_id == tenant_id)
        total = write_export(
            output,
            lambda progress: export_devices(s, where, now=now, progress=progress),
            lambda: s.scalar(select(func.count()).select_from(Device).where(*where)) or 0,
            "devices",
        )
    if total is not None:
        out.print(f"wrote {total} devices to {output}", highlight=False, soft_wrap=True)
