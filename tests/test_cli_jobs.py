"""``satiot jobs list|show|run``: queued month-end work seen and run from a shell."""

from __future__ import annotations

from sqlalchemy import select
from typer.testing import CliRunner

from satiot.bss import billing_jobs
from satiot.bss.models import BillRun, CustomerBill
from satiot.cli import app
from tests.bss.test_billing import setup  # noqa: F401 - the fixture
from tests.test_cli_bills import env  # noqa: F401 - the fixture
from tests.test_cli_oss import _one_error

runner = CliRunner()


def test_queued_work_is_listed_run_and_shown(setup, env, world):  # noqa: F811
    ctx, _s, _off, _subs = setup
    assert runner.invoke(app, ["jobs", "list"]).stdout.strip() == "no job"
    with ctx.db.write() as s:
        job = billing_jobs.queue_run(
            s, world.system, "2026-10", at=ctx.clock.now(), tz="Asia/Shanghai"
        )
        job_id = job.id
    listed = runner.invoke(app, ["jobs", "list", "--state", "queued"])
    assert listed.exit_code == 0, listed.output
    assert str(job_id) in listed.stdout and "Bill 2026-10" in listed.stdout

    ran = runner.invoke(app, ["jobs", "run"])
    assert ran.exit_code == 0, ran.output
    assert f"{job_id}  Bill 2026-10: succeeded, 1 bill, " in ran.stdout
    with ctx.db.read() as s:
        run_id = s.scalars(select(BillRun.id)).one()
    shown = runner.invoke(app, ["jobs", "show", str(job_id)])
    assert shown.exit_code == 0, shown.output
    assert '"period": "2026-10"' in shown.stdout and f'"bill_run_id": "{run_id}"' in shown.stdout
    assert "attempts   1" in shown.stdout
    assert runner.invoke(app, ["jobs", "run"]).stdout == ""  # nothing left

    # A release overtaken by the same release from a shell fails, and says why.
    with ctx.db.write() as s:
        billing_jobs.queue_release(s, world.system, run_id, "validate", at=ctx.clock.now())
    assert runner.invoke(app, ["bills", "validate", "2026-10"]).exit_code == 0
    failed = runner.invoke(app, ["jobs", "run"])
    assert failed.exit_code == 1 and "failed, no bill of run" in failed.stdout
    assert "nothing to validate" in failed.stdout and "1 job failed" in failed.stderr
    with ctx.db.read() as s:
        assert s.scalars(select(CustomerBill.state)).one() == "validated"


def test_bad_arguments_are_one_line_errors(setup, env):  # noqa: F811
    _one_error(runner.invoke(app, ["jobs", "list", "--state", "done"]), "--state", "queued")
    _one_error(runner.invoke(app, ["jobs", "show", "not-an-id"]), "not a job id")
    _one_error(
        runner.invoke(app, ["jobs", "show", "0190a1b2-0000-7000-8000-000000000000"]), "no job"
    )
