"""``satiot bench``: run a benchmark script from the checkout's ``benchmarks/``."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Annotated

import typer

from satiot.cli_common import fail, out


def _benchmarks() -> list[str]:
    folder = Path.cwd() / "benchmarks"
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


#: Typer settings of the command: options after the name, ``--help`` too, go to the benchmark.
BENCH_SETTINGS = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    # `satiot bench rating --help` is the benchmark's own help: its options are its own.
    "help_option_names": [],
}


def bench(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="Benchmark script in benchmarks/ (without .py)")
    ] = None,
) -> None:
    """Run a benchmark from benchmarks/ and print its figures and ratio to its anchor.

    Options after the name go to the benchmark, e.g. `satiot bench events --events 50000`;
    `satiot bench <name> --help` lists them.
    """
    if name is None or name in ("--help", "-h"):
        out.print(ctx.get_help())
        names = ", ".join(_benchmarks()) or "none (run from the checkout)"
        out.print(f"\nbenchmarks here: {names}")
        return
    script = Path.cwd() / "benchmarks" / f"{name}.py"
    if name.startswith("_") or not script.exists():
        found = ", ".join(_benchmarks()) or "none"
        fail(f"no benchmark {name!r} (have: {found}; run from the checkout)")
    # As `python benchmarks/<name>.py` would run it (its helpers import from its folder), but
    # named as it was called, so its help and errors say `satiot bench <name>`.
    sys.argv = [f"satiot bench {name}", *ctx.args]
    sys.path.insert(0, str(script.parent))
    runpy.run_module(name, run_name="__main__", alter_sys=False)
