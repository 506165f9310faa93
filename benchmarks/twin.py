"""Twin speed: simulated hours per wall-clock second for the Tianqi-like national scenario.

Runs ``scenarios/tianqi-like.toml`` resized to 100,000 terminals (``--terminals``) for a few
simulated hours and prints what the run measured beside its speed. The anchor is real time:
the ratio says how many times faster than the network itself the twin runs on this machine.
"""

from __future__ import annotations

from pathlib import Path

import _args
from satiot.network.twin import run_scenario

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = _args.parser(__doc__)
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "tianqi-like.toml")
    parser.add_argument("--terminals", type=_args.at_least(1), default=100_000)
    parser.add_argument("--hours", type=_args.above(0), default=2.0)
    args = parser.parse_args()
    print(_args.tune_runtime())
    report = run_scenario(args.scenario, args.hours, terminals=args.terminals)
    s = report.summary()
    print(
        f"scenario                 {s['scenario']} ({s['satellites']} satellites, "
        f"{s['terminals']:,} terminals, {s['hours']} h)"
    )
    print(
        f"messages                 generated {s['generated']:,}  delivered {s['delivered']:,}"
        f"  collided {s['collided']:,}  dropped frames {s['dropped_frames']:,}"
    )
    p50, p95 = s["latency_p50_s"], s["latency_p95_s"]
    if p50 is not None and p95 is not None:
        print(
            f"latency                  p50 {p50 / 60:.1f} min  p95 {p95 / 60:.1f} min  "
            f"max {s['latency_max_s'] / 60:.1f} min"
        )
    print(f"wall clock               {report.wall_s:.1f} s")
    print(f"simulated h per second   {report.speedup:.3f}")
    print(f"ratio to real time       {report.speedup * 3600:,.0f}x")


if __name__ == "__main__":
    main()
