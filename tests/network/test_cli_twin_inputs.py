"""``satiot twin …`` refuses bad numbers, paths and files in one line, before any work.

Every case here used to end in a traceback, an allocation of hundreds of GiB, or a run that
did all its work and then failed to write; each must now be one ``error:`` line naming what
was wrong, a non-zero exit, and no file written.
"""

from __future__ import annotations

import errno
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from satiot.cli import app
from satiot.network.orbits import walker
from tests.network.test_scenario import tiny, write

runner = CliRunner()
BINARY = b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A scenario, a TLE file, a sites CSV and a plain file that paths can run into."""
    tles = walker("delta", 6, 3, 1, 800.0, 53.0, datetime(2026, 3, 1, tzinfo=UTC))
    tle = tmp_path / "c.tle"
    tle.write_text("".join(f"{t.name}\n{t.line1}\n{t.line2}\n" for t in tles))
    sites = tmp_path / "sites.csv"
    sites.write_text("name,lat,lon,alt_m\nBeijing,39.9,116.4,50\n")
    blocker = tmp_path / "file.csv"
    blocker.write_text("not a directory\n")
    return {
        "scenario": write(tmp_path, tiny()),
        "tle": tle,
        "sites": sites,
        "file": blocker,
        "dir": tmp_path,
    }


def _contacts(files: dict[str, Path], *over: str) -> list[str]:
    """`twin contacts` with small valid values (one hour), then ``over`` replacing them."""
    args = {
        "--tle": str(files["tle"]),
        "--sites": str(files["sites"]),
        "--start": "2026-03-01T00:00:00Z",
        "--hours": "1",
        "--min-elevation": "10",
        "--out": str(files["dir"] / "plan.csv"),
    }
    args.update(zip(over[::2], over[1::2], strict=True))
    return ["contacts", *[x for kv in args.items() for x in kv]]


#: Each scenario command with the least work that is valid: its words and its options.
SCENARIO_COMMANDS: dict[str, tuple[list[str], dict[str, str]]] = {
    "run": (["run"], {"--hours": "0.1", "--out": "rx.jsonl"}),
    "tracks": (["plot", "tracks"], {"--minutes": "10", "--out": "t.png"}),
    "passes": (["plot", "passes"], {"--site": "Beijing", "--hours": "1", "--out": "p.png"}),
    "latency": (["plot", "latency"], {"--hours": "0.1", "--out": "l.png"}),
    "import": (["import"], {}),
}


def _command(files: dict[str, Path], kind: str, *over: str) -> list[str]:
    """``kind`` with small valid values, then ``over`` replacing or adding options."""
    if kind == "contacts":
        return _contacts(files, *over)
    words, options = SCENARIO_COMMANDS[kind]
    args = {"--scenario": str(files["scenario"])}
    args.update({k: str(files["dir"] / v) if k == "--out" else v for k, v in options.items()})
    args.update(zip(over[::2], over[1::2], strict=True))
    return [*words, *[x for kv in args.items() for x in kv]]


def _twin(argv: list[str]) -> Result:
    return runner.invoke(app, ["twin", *argv])


def _one_error(result: Result, *needles: str) -> None:
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.stderr.startswith("error:"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def _refused_without_a_trace(files: dict[str, Path], argv: list[str], *needles: str) -> None:
    before = {p: p.stat().st_mtime_ns for p in files["dir"].rglob("*")}
    _one_error(_twin(argv), *needles)
    assert {p: p.stat().st_mtime_ns for p in files["dir"].rglob("*")} == before


BAD_NUMBERS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "contacts hours inf": ("contacts", ("--hours", "inf"), "--hours"),
    "contacts hours 1e300": ("contacts", ("--hours", "1e300"), "--hours"),
    "contacts hours 1e9": ("contacts", ("--hours", "1e9"), "--hours"),
    "contacts hours nan": ("contacts", ("--hours", "nan"), "--hours"),
    "contacts step 1e-300": ("contacts", ("--step", "1e-300"), "--step"),
    "contacts step 601": ("contacts", ("--step", "601"), "--step"),
    "contacts cell nan": ("contacts", ("--cell-km", "nan"), "--cell-km"),
    "contacts cell inf": ("contacts", ("--cell-km", "inf"), "--cell-km"),
    "contacts cell negative": ("contacts", ("--cell-km", "-1"), "--cell-km"),
    "contacts elevation nan": ("contacts", ("--min-elevation", "nan"), "--min-elevation"),
    "contacts refine": ("contacts", ("--refine", "cubic"), "--refine"),
    "run hours inf": ("run", ("--hours", "inf"), "--hours"),
    "run hours 1e9": ("run", ("--hours", "1e9"), "--hours"),
    "run top negative": ("run", ("--top", "-3"), "--top"),
    "run terminals huge": ("run", ("--terminals", "1000000000000"), "--terminals"),
    "tracks minutes negative": ("tracks", ("--minutes", "-10"), "--minutes"),
    "tracks minutes 1e12": ("tracks", ("--minutes", "1e12"), "--minutes"),
    "tracks minutes inf": ("tracks", ("--minutes", "inf"), "--minutes"),
    "tracks mask 200": ("tracks", ("--mask", "200"), "--mask"),
    "tracks mask nan": ("tracks", ("--mask", "nan"), "--mask"),
    "tracks extent reversed": ("tracks", ("--extent", "10,0,100,-100"), "--extent"),
    "tracks extent east of west": ("tracks", ("--extent", "10,0,-10,10"), "--extent"),
    "tracks extent south of north": ("tracks", ("--extent", "0,10,20,10"), "--extent"),
    "tracks extent off the map": ("tracks", ("--extent", "0,400,-10,10"), "--extent"),
    "tracks extent nan": ("tracks", ("--extent", "0,10,-10,nan"), "--extent"),
    "passes elevation 120": ("passes", ("--min-elevation", "120"), "--min-elevation"),
    "passes elevation nan": ("passes", ("--min-elevation", "nan"), "--min-elevation"),
    "passes elevation -1e9": ("passes", ("--min-elevation", "-1e9"), "--min-elevation"),
    "passes hours inf": ("passes", ("--hours", "inf"), "--hours"),
    "passes hours 1e9": ("passes", ("--hours", "1e9"), "--hours"),
    "latency terminals 0": ("latency", ("--terminals", "0"), "--terminals"),
    "latency terminals -5": ("latency", ("--terminals", "-5"), "--terminals"),
    "latency hours inf": ("latency", ("--hours", "inf"), "--hours"),
}


@pytest.mark.parametrize("case", list(BAD_NUMBERS), ids=list(BAD_NUMBERS))
def test_bad_numbers_are_one_line_naming_the_option(files: dict[str, Path], case: str) -> None:
    kind, over, option = BAD_NUMBERS[case]
    _refused_without_a_trace(files, _command(files, kind, *over), option)


def test_the_same_option_has_the_same_limit_everywhere(files: dict[str, Path]) -> None:
    """One check per option, so one message per option, whichever command it is given to."""
    messages = {
        _twin(_command(files, kind, "--hours", "200")).stderr
        for kind in ("contacts", "run", "passes", "latency")
    }
    assert len(messages) == 1 and "at most 168" in messages.pop()
    masks = {
        _twin(_command(files, kind, option, "90")).stderr.split(" ", 2)[2]
        for kind, option in (
            ("contacts", "--min-elevation"),
            ("passes", "--min-elevation"),
            ("tracks", "--mask"),
        )
    }
    assert masks == {"must be at least -90 and below 90 degrees, not 90\n"}


OUTPUTS: dict[str, tuple[str, str]] = {
    "contacts": ("contacts", "--out"),
    "run receptions": ("run", "--out"),
    "run latency plot": ("run", "--latency-plot"),
    "tracks": ("tracks", "--out"),
    "passes": ("passes", "--out"),
    "latency": ("latency", "--out"),
}


@pytest.mark.parametrize("case", list(OUTPUTS), ids=list(OUTPUTS))
@pytest.mark.parametrize("where", ["under a file", "a directory", "missing folder"])
def test_unwritable_outputs_are_refused_before_the_work(
    files: dict[str, Path], case: str, where: str
) -> None:
    kind, option = OUTPUTS[case]
    name = "x.png" if option != "--out" or kind not in ("contacts", "run") else "x.out"
    target = {
        "under a file": files["file"] / name,
        "a directory": files["dir"] / f"folder{Path(name).suffix}",
        "missing folder": files["dir"] / "nowhere" / name,
    }[where]
    if where == "a directory":
        target.mkdir()
    needle = {"under a file": "is not a directory", "a directory": "is a directory"}
    message = needle.get(where, "does not exist")
    _refused_without_a_trace(files, _command(files, kind, option, str(target)), option, message)


@pytest.mark.parametrize("kind", ["run", "import", "tracks", "passes", "latency"])
def test_a_binary_scenario_is_named_not_decoded(files: dict[str, Path], kind: str) -> None:
    files["scenario"].write_bytes(BINARY)
    _refused_without_a_trace(files, _command(files, kind), str(files["scenario"]), "UTF-8")


@pytest.mark.parametrize("which", ["tle", "sites"])
def test_binary_tle_and_sites_files_are_named(files: dict[str, Path], which: str) -> None:
    files[which].write_bytes(BINARY)
    _refused_without_a_trace(files, _contacts(files), str(files[which]))


def test_a_window_past_year_9999_is_refused(files: dict[str, Path]) -> None:
    argv = _contacts(files, "--start", "9999-12-31T23:00:00Z", "--hours", "2")
    _refused_without_a_trace(files, argv, "--hours", "9999")


def test_the_limits_themselves_are_accepted(files: dict[str, Path]) -> None:
    argv = _contacts(
        files, "--hours", "168", "--step", "600", "--cell-km", "1000", "--min-elevation", "-90"
    )
    result = _twin(argv)
    assert result.exit_code == 0, result.output
    assert (files["dir"] / "plan.csv").exists()


@pytest.mark.parametrize("top", [0, 2])
def test_top_lists_that_many_satellites(files: dict[str, Path], top: int) -> None:
    result = _twin(
        ["run", "--scenario", str(files["scenario"]), "--hours", "0.1", "--top", str(top)]
    )
    assert result.exit_code == 0, result.output
    assert f"busiest {top} satellites" in result.stdout
    assert len(re.findall(r"^│ T-\d\d-\d\d ", result.stdout, flags=re.MULTILINE)) == top


def test_a_run_that_fails_to_write_its_plot_leaves_no_receptions(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receptions file appears only with the rest of the run's output."""

    def full_disk(*_: object, **__: object) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("satiot.network.plots.plot_latency_histogram", full_disk)
    argv = _command(files, "run", "--latency-plot", str(files["dir"] / "l.png"))
    _refused_without_a_trace(files, argv, "cannot write", "No space left")
