"""The business's job kinds (:mod:`satiot.core.jobs`), registered by importing this module:
month end (:mod:`satiot.bss.billing_jobs`) and long suspend/resume files
(:mod:`satiot.bss.status_jobs`)."""

from __future__ import annotations

from typing import Final

from satiot.bss import billing_jobs, status_jobs

KINDS: Final = (*billing_jobs.KINDS, *status_jobs.KINDS)
