"""A yardstick for this core now, printed beside each benchmark's figures.

These machines are shared and their speed varies from run to run; a figure means little without
how fast the interpreter was running when it was taken.
"""

from __future__ import annotations

import time


def calibrate() -> float:
    """Millions of simple interpreter steps per second on this core now: a yardstick for
    comparing figures across machines (and with a machine busy with other work)."""
    steps = 2_000_000
    started = time.process_time()
    total = 0
    for i in range(steps):
        total += i
    return steps / (time.process_time() - started) / 1e6
